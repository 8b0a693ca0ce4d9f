# Sourced by the system tests that start their own cards (vcard-*.sh):
# a private folder `$dir` (prefix in $card_test_name), the PIDs the test
# starts in `$pids` (stopped by PID at exit, TERM then KILL after 5 s),
# `poll CMD...` (retries for at most 10 s) and `fail MESSAGE`.
dir=$(mktemp -d "/tmp/tokenrig-${card_test_name:-vcard}-XXXXXX")
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	for p in $pids; do
		i=0
		while kill -0 "$p" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
		kill -9 "$p" 2>/dev/null || true
	done
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM

. suites/system/lib/poll.sh
poll() { poll_until 10 "$@"; }
fail() { echo "FAIL: $*"; exit 1; }
