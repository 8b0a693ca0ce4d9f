#!/bin/sh
# The system tests (suites/system/*.sh, or the files given), each under a
# timeout: SYSTEM_TEST_TIMEOUT seconds (default 600) or the test's own
# "# timeout: N" line; when it expires the test is killed and fails, saying
# so. Exit 77 means SKIPPED: the test cannot run here (root, a capability)
# and its last line says why (suites/README.md). Each test runs in a
# session of its own: what it leaves running when it ends (or is killed:
# an inner `timeout` has its own process group) is killed and named.
# Ends with "system: N passed, N failed, N skipped"; exits 1 when one failed.
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
	sidf=$BUILD/system.sid
	start=$(date +%s)
	BUILD="$BUILD" OUT="${OUT:-}" LOG="${LOG:-}" setsid -w sh -c \
		'echo $$ > "$0"; exec timeout -k 10 "$1" sh "$2"' "$sidf" "$limit" "$t" > "$log" 2>&1 ||
		rc=$?
	elapsed=$(($(date +%s) - start))
	sid=$(cat "$sidf" 2>/dev/null || echo 0)
	# Zombies are ended already: only their parent can reap them.
	left=$(ps -eo pid=,sid=,stat=,args= |
		awk -v s="$sid" '$2 == s && s > 1 && $3 !~ /^Z/ { $2 = $3 = ""; print }')
	if [ -n "$left" ]; then
		echo "      $t left running, killed:"
		echo "$left" | sed 's/^/        /'
		echo "$left" | awk '{ print $1 }' | xargs kill -9 2>/dev/null
	fi
	# timeout's 124, or its KILL's 137, say a timeout only once the limit passed.
	timed_out=0
	[ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] || [ "$elapsed" -lt "$limit" ] || timed_out=1
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
		[ $timed_out -eq 1 ] || { echo "FAIL  $t (exit $rc)"; sed 's/^/      /' "$log";
			failed=$((failed + 1)); continue; }
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
