#!/bin/sh
# The run wrote both result files, complete, naming the Suzhou catalog IDs.
set -eu
json="$OUT/results.json"
xml="$OUT/junit.xml"
[ -s "$json" ] || { echo "missing $json"; exit 1; }
[ -s "$xml" ] || { echo "missing $xml"; exit 1; }
grep -q '"schema": "tokenrig-results/1"' "$json" || { echo "$json: no schema"; exit 1; }
grep -q '</testsuites>' "$xml" || { echo "$xml is truncated"; exit 1; }
for id in SZ-REG-OK SZ-LOGIN-OK SZ-SIGN-OK SZ-E01 SZ-E02a SZ-E02b SZ-E05 SZ-E07; do
	grep -q "\"$id\"" "$json" || { echo "$json does not name $id"; exit 1; }
	# JUnit testcase names start with the catalog ID.
	grep -q "<testcase [^>]*name=\"$id " "$xml" || { echo "$xml has no testcase named '$id ...'"; exit 1; }
done
# Each passed case is listed under its portal and token column.
grep -q '"coverage"' "$json" || { echo "$json has no coverage"; exit 1; }
echo "results files complete"
