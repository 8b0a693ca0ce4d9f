#!/bin/sh
# ci/system-tests.sh, the runner of these tests: a test past its timeout is
# killed and fails saying so; exit 77 is SKIPPED with the test's reason, not
# a failure; the summary counts each; what a test leaves running, even in a
# process group of its own (an inner `timeout`), is killed and named.
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; cat "$tmp/out"; exit 1; }
printf '#!/bin/sh\necho fine\n' > "$tmp/a-pass.sh"
printf '#!/bin/sh\necho "needs root: the rig'"'"'s pcscd runs in a private mount namespace"\nexit 77\n' \
	> "$tmp/b-root.sh"
# Its own limit of 1 s; the sleep would outlast any runner without one.
printf '#!/bin/sh\nsleep 600\n' > "$tmp/c-sleeper.sh"
printf '#!/bin/sh\n# timeout: 1\necho started\nsh "%s/c-sleeper.sh"\n' "$tmp" > "$tmp/c-hang.sh"
printf '#!/bin/sh\necho broken\nexit 3\n' > "$tmp/d-fail.sh"
printf '#!/bin/sh\ntimeout 300 sh "%s/c-sleeper.sh" &\necho gone\n' "$tmp" > "$tmp/e-leaves.sh"
rc=0
BUILD="$tmp/build" sh ci/system-tests.sh "$tmp/a-pass.sh" "$tmp/b-root.sh" "$tmp/c-hang.sh" \
	"$tmp/d-fail.sh" "$tmp/e-leaves.sh" > "$tmp/out" 2>&1 || rc=$?
[ $rc -eq 1 ] || fail "runner exit $rc, expected 1"
grep -qx "PASS  $tmp/a-pass.sh" "$tmp/out" || fail "no PASS line"
grep -qx "SKIP  $tmp/b-root.sh: needs root: the rig's pcscd runs in a private mount namespace" \
	"$tmp/out" || fail "exit 77 not reported as SKIP with its reason"
grep -q "^FAIL  $tmp/c-hang.sh: timed out after 1 s" "$tmp/out" || fail "no timeout message"
grep -q "^      started" "$tmp/out" || fail "the timed-out test's output is not shown"
grep -qx "FAIL  $tmp/d-fail.sh (exit 3)" "$tmp/out" || fail "no FAIL line with the exit code"
grep -q "^      $tmp/e-leaves.sh left running, killed:" "$tmp/out" ||
	fail "a process left by a test was not named"
grep -qx "system: 2 passed, 2 failed, 1 skipped" "$tmp/out" || fail "wrong summary"
! pgrep -f "$tmp/c-" > /dev/null || fail "a test's process still runs: $(pgrep -af "$tmp/c-")"
# Only skips: success.
BUILD="$tmp/build" sh ci/system-tests.sh "$tmp/b-root.sh" > "$tmp/out" 2>&1 || fail "a skip failed the run"
echo "runner: timeouts fail with a message, exit 77 is a skip with its reason"
