#!/bin/sh
# A card's full PIN count must not depend on what other cases saw before:
# SC-E02 alone in a fresh process (its first open of each card already
# follows wrong PINs in earlier steps' handles) still reads 3 tries after
# the right PIN. The full run hid this: an earlier case had taught the
# process the card's maximum.
set -eu
[ "$(id -u)" -eq 0 ] || { echo "needs root: the rig's pcscd runs in a private mount namespace"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rc=0
"$BUILD/tokenrig" run --suites suites --filter SC-E02 --out "$tmp/out" > "$tmp/log" 2>&1 || rc=$?
grep -E '^scenarios: ' "$tmp/log"
[ $rc -eq 0 ] || { grep -E -A3 '^(FAIL|ERROR)' "$tmp/log"; exit 1; }
n=$(jq '[.cases[] | select(.kind == "vcard" and .status == "passed")] | length' "$tmp/out/results.json")
[ "$n" -eq 3 ] || { echo "expected SC-E02 to pass on the 3 vcard columns, passed on $n"; exit 1; }
