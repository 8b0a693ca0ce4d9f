#!/bin/sh
# `make check`: the unit tests, the scenario suites, then the system tests of
# suites/system/ against the results of that run. Ends with one line
# "check: N passed, N failed".
set -u
BUILD=${BUILD:-build}
OUT=$BUILD/check-out
passed=0
failed=0

# Reads "LABEL: N passed, N failed" from a log and adds it up.
tally() {
	line=$(grep -E "^$2: [0-9]+ passed, [0-9]+ failed" "$1" | tail -n 1)
	if [ -z "$line" ]; then
		echo "check: $2 printed no summary; counted as one failure" >&2
		failed=$((failed + 1))
		return
	fi
	p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')
	f=$(echo "$line" | sed -E 's/.*passed, ([0-9]+) failed.*/\1/')
	passed=$((passed + p))
	failed=$((failed + f))
}

echo "== unit tests"
"$BUILD/unit-tests" > "$BUILD/unit-tests.log" 2>&1
rc=$?
cat "$BUILD/unit-tests.log"
tally "$BUILD/unit-tests.log" unit
[ $rc -eq 0 ] || grep -q "failed" "$BUILD/unit-tests.log" || failed=$((failed + 1))

echo "== scenario suites"
"$BUILD/tokenrig" run --suites suites --out "$OUT" > "$BUILD/scenarios.log" 2>&1
rc=$?
cat "$BUILD/scenarios.log"
tally "$BUILD/scenarios.log" scenarios
if [ $rc -ne 0 ] && ! grep -qE '^scenarios: [0-9]+ passed, [1-9]' "$BUILD/scenarios.log"; then
	echo "check: tokenrig run exited $rc" >&2
	failed=$((failed + 1))
fi

echo "== system tests"
# Each under a timeout; exit 77 is SKIPPED with its reason (ci/system-tests.sh).
BUILD="$BUILD" OUT="$OUT" LOG="$BUILD/scenarios.log" sh ci/system-tests.sh 2>&1 |
	tee "$BUILD/system-tests.log"
tally "$BUILD/system-tests.log" system

echo "check: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
