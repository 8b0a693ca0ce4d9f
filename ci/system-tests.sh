#!/bin/sh
# The system tests (suites/system/*.sh, or the files given), each under a
# timeout: SYSTEM_TEST_TIMEOUT seconds (default 600) or the test's own
# "# timeout: N" line; when it expires the test is killed and fails, saying
# so. Exit 77 means SKIPPED: the test cannot run here (root, a capability)
# and its last line says why (suites/system/README.md). Ends with
# "system: N passed, N failed, N skipped"; exits 1 when one failed.
# Runs with BUILD, OUT and LOG as ci/check.sh sets them.
set -u
BUILD=${BUILD:-build}
passed=0
failed=0
skipped=0
log=$BUILD/system.log
mkdir -p "$BUILD"
[ $# -gt 0 ] || set -- suites/system/*.sh
for t in "$@"; do
	limit=$(sed -n 's/^# timeout: *\([0-9][0-9]*\).*/\1/p' "$t" | head -n 1)
	limit=${limit:-${SYSTEM_TEST_TIMEOUT:-600}}
	rc=0
	BUILD="$BUILD" OUT="${OUT:-}" LOG="${LOG:-}" timeout -k 10 "$limit" sh "$t" > "$log" 2>&1 ||
		rc=$?
	case $rc in
	0)
		echo "PASS  $t"
		passed=$((passed + 1))
		;;
	77)
		echo "SKIP  $t: $(tail -n 1 "$log")"
		skipped=$((skipped + 1))
		;;
	124 | 137)
		echo "FAIL  $t: timed out after $limit s and was killed (\"# timeout: N\" in the test sets its own)"
		sed 's/^/      /' "$log"
		failed=$((failed + 1))
		;;
	*)
		echo "FAIL  $t (exit $rc)"
		sed 's/^/      /' "$log"
		failed=$((failed + 1))
		;;
	esac
done
echo "system: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
