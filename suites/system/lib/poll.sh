# Sourced by the system tests: every wait polls a condition with a deadline.
#
# poll_until SECONDS CMD...        runs CMD (quiet) every 50 ms until it
#                                  succeeds (0) or SECONDS of wall time
#                                  pass (1, said on stderr).
# poll_alive PID SECONDS CMD...    the same, but gives up at once (2) when
#                                  PID has ended: the process that was to
#                                  bring the condition about is gone.
poll_alive() {
	_poll_pid=$1
	_poll_secs=$2
	shift 2
	_poll_end=$(($(date +%s) + _poll_secs))
	until "$@" >/dev/null 2>&1; do
		if [ -n "$_poll_pid" ] && ! kill -0 "$_poll_pid" 2>/dev/null; then
			"$@" >/dev/null 2>&1 && return 0
			echo "process $_poll_pid ended before: $*" >&2
			return 2
		fi
		if [ "$(date +%s)" -ge $_poll_end ]; then
			echo "timed out after $_poll_secs s waiting for: $*" >&2
			return 1
		fi
		sleep 0.05 # polling a condition, bounded
	done
}

poll_until() {
	poll_alive "" "$@"
}
