#!/bin/sh
# `tokenrig run --require-kinds`: a required token kind that could not run at
# all (here the card kinds, with --no-cards) makes the run fail, naming it and
# why, instead of a green run of skips; a kind that ran keeps it green.
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rc=0
"$BUILD/tokenrig" run --no-cards --filter SZ-REG-OK --out "$tmp/a" \
	--require-kinds softhsm,vcard,opensc > "$tmp/a.log" 2>&1 || rc=$?
[ $rc -eq 1 ] || { cat "$tmp/a.log"; echo "exit $rc, expected 1"; exit 1; }
for k in vcard opensc; do
	grep -q "^REQUIRED KIND $k could not run: not asked for (--no-cards)" "$tmp/a.log" ||
		{ cat "$tmp/a.log"; echo "$k not named"; exit 1; }
done
grep -q 'REQUIRED KIND softhsm' "$tmp/a.log" && { echo "softhsm ran, yet named"; exit 1; }
"$BUILD/tokenrig" run --no-cards --filter SZ-REG-OK --out "$tmp/b" --require-kinds softhsm \
	> "$tmp/b.log" 2>&1 || { cat "$tmp/b.log"; echo "softhsm alone: not green"; exit 1; }
rc=0
"$BUILD/tokenrig" run --require-kinds softhsm,nosuch --out "$tmp/c" > "$tmp/c.log" 2>&1 || rc=$?
[ $rc -eq 2 ] && grep -q "unknown token kind 'nosuch'" "$tmp/c.log" ||
	{ cat "$tmp/c.log"; echo "an unknown kind: exit $rc, expected 2"; exit 1; }
echo "require-kinds: card kinds without cards fail the run, named with the reason"
