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
# A pending ID is reported, not a problem; once it passes, listing it is one.
rm -rf "$tmp/suites"; cp -r suites "$tmp/suites"
printf '# test\nSZ-E99 nobody wrote it yet\n' >> "$tmp/suites/pending-ids.txt"
rc=0; "$BUILD/tokenrig" coverage --catalog "$tmp/catalog.md" --suites "$tmp/suites" > "$tmp/out" || rc=$?
[ $rc -eq 0 ] && grep -q "^PENDING  SZ-E99 *nobody wrote it yet" "$tmp/out" ||
	{ echo "a pending ID was not reported as pending"; cat "$tmp/out"; exit 1; }
echo "SZ-E05 listed although it passes" >> "$tmp/suites/pending-ids.txt"
rc=0; "$BUILD/tokenrig" coverage --catalog "$catalog" --suites "$tmp/suites" --results "$OUT/results.json" > "$tmp/out" || rc=$?
[ $rc -eq 1 ] && grep -q "SZ-E05 .*pending, yet it passed" "$tmp/out" || { echo "a pending ID that passed went unnoticed"; exit 1; }
# A line that is not "ID reason" is an error naming the file and line.
echo "SZ-E97" > "$tmp/suites/pending-ids.txt"
rc=0; "$BUILD/tokenrig" coverage --catalog "$catalog" --suites "$tmp/suites" > "$tmp/out" 2>&1 || rc=$?
[ $rc -eq 2 ] && grep -q "pending-ids.txt:1: SZ-E97: say why" "$tmp/out" || { echo "a pending line without reason went unnoticed"; exit 1; }
if [ -f suites/pending-ids.txt ]; then
	n=$(grep -c '^PENDING  ' "$OUT/coverage.txt")
	echo "coverage: PENDING: $n catalog ID(s) listed in suites/pending-ids.txt are not covered yet"
fi
echo "coverage: complete, and the check catches a missing, unknown or wrongly pending ID"
