#!/bin/sh
# Coverage is counted against the catalog: every ID has a scenario, no
# scenario names an ID the catalog lacks, and every ID passed on at least
# one token kind in this run. The negative controls prove the check bites.
set -eu
catalog=${TOKENRIG_CATALOG:-../shared/spec/failure-paths.md}
[ -f "$catalog" ] || { echo "the catalog is not at $catalog (set TOKENRIG_CATALOG)"; exit 1; }
"$BUILD/tokenrig" coverage --catalog "$catalog" --results "$OUT/results.json" > "$OUT/coverage.txt" ||
	{ grep -E '<-|problem' "$OUT/coverage.txt"; exit 1; }
tail -n 1 "$OUT/coverage.txt"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# An ID the catalog gains without a scenario...
{ cat "$catalog"; echo "| SZ-E99 | a path nobody wrote a scenario for | - | - |"; } > "$tmp/catalog.md"
rc=0; "$BUILD/tokenrig" coverage --catalog "$tmp/catalog.md" > "$tmp/out" || rc=$?
[ $rc -eq 1 ] && grep -q "SZ-E99 .*no scenario" "$tmp/out" || { echo "a missing scenario went unnoticed"; exit 1; }
# ...and a scenario naming an ID the catalog lacks.
cp -r suites "$tmp/suites"
sed 's/^ids    = SZ-E05$/ids    = SZ-E05 SZ-E98/' suites/suzhou/SZ-E05-already-registered.scn \
	> "$tmp/suites/suzhou/SZ-E05-already-registered.scn"
rc=0; "$BUILD/tokenrig" coverage --catalog "$catalog" --suites "$tmp/suites" > "$tmp/out" || rc=$?
[ $rc -eq 1 ] && grep -q "SZ-E98 .*not in the catalog" "$tmp/out" || { echo "an unknown ID went unnoticed"; exit 1; }
echo "coverage: complete, and the check catches a missing or unknown ID"
