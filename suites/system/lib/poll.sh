# Sourced by the system tests: every wait polls a condition with a deadline.
#
# poll_until SECONDS CMD...        runs CMD (quiet) every 50 ms until it
#                                  succeeds (0) or SECONDS pass (1, said on
#                                  stderr).
# poll_alive PID SECONDS CMD...    the same, but gives up at once (2) when
#                                  PID has ended: the process that was to
#                                  bring the condition about is gone.
poll_alive() {
	_poll_pid=$1
	shift
	_poll_limit=$(($1 * 20))
	shift
	_poll_n=0
	until "$@" >/dev/null 2>&1; do
		if [ -n "$_poll_pid" ] && ! kill -0 "$_poll_pid" 2>/dev/null; then
			"$@" >/dev/null 2>&1 && return 0
			echo "process $_poll_pid ended before: $*" >&2
			return 2
		fi
		_poll_n=$((_poll_n + 1))
		if [ $_poll_n -ge $_poll_limit ]; then
			echo "timed out after $((_poll_limit / 20)) s waiting for: $*" >&2
			return 1
		fi
		sleep 0.05 # polling a condition, bounded
	done
}

poll_until() {
	poll_alive "" "$@"
}
