#!/bin/sh
# timeout: 600
# What an unprivileged container gets (README "Containers"): without
# CAP_SYS_ADMIN no mount namespace can be made for the rig's pcscd. Where
# the standard socket /run/pcscd/pcscd.comm is free, the rig's pcscd serves
# it and the card kinds run, and the run says so; where it is taken (a
# pcscd running, or systemd's pcscd.socket listening), every card case is
# skipped with that reason. A system pcscd is never touched: not stopped,
# its socket not replaced, a socket-activated one not started.
#
# A. This machine as it is, under capsh --drop=cap_sys_admin: either
#    outcome, each checked for what it implies.
# B. With CAP_SYS_ADMIN to spare, each case for sure, in the test's own
#    mount namespace (tmpfs over /run/pcscd, the machine's left alone):
#    free; taken by a socket listener (systemd-socket-activate playing
#    pcscd.socket; proves no connection activated it); taken by a pcscd.
# Exit 77 (skipped, with the reason) when it cannot run at all.
set -eu
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
. suites/system/lib/poll.sh

[ "$(id -u)" -eq 0 ] || skip "the virtual cards need root"
[ -x /usr/sbin/pcscd ] || fail "pcscd is not installed (ci/install-deps)"
if [ "${1:-}" = --inside ]; then
	tmp=$TR_CONTAINER_TMP # the outer run's folder, removed by it
else
	tmp=$(mktemp -d /tmp/tokenrig-container-XXXXXX)
fi
helpers=""
cleanup() {
	for p in $helpers; do kill "$p" 2>/dev/null || true; done
	[ "${1:-}" = --inside ] || rm -rf "$tmp"
}
trap 'cleanup "${1:-}"' EXIT INT TERM
self=$(readlink -f "$0")
tokenrig=$(readlink -f "$BUILD/tokenrig")

# How to run without CAP_SYS_ADMIN.
cap_sys_admin() { # 1 when this shell has it in its effective set
	eff=$(sed -n 's/^CapEff:[[:space:]]*//p' /proc/self/status)
	[ $(( 0x$eff >> 21 & 1 )) -eq 1 ]
}
command -v capsh > /dev/null || fail "capsh is not installed (ci/install-deps installs libcap2-bin)"
if capsh --drop=cap_sys_admin -- -c true 2>/dev/null; then
	dropped() { capsh --drop=cap_sys_admin -- -c '"$@"' -- "$@"; }
elif ! cap_sys_admin; then
	dropped() { "$@"; } # already an unprivileged container
else
	skip "cannot drop CAP_SYS_ADMIN here (capsh --drop refused)"
fi

# A run of the card kinds' modest filter without CAP_SYS_ADMIN: NAME.log, NAME/results.json.
run_dropped() {
	# Two workers: one pcscd fits on the standard socket, so only worker 1 shows cards.
	dropped "$tokenrig" run --jobs 2 --filter SZ-LOGIN-OK --out "$tmp/$1" > "$tmp/$1.log" 2>&1 || true
	[ -f "$tmp/$1/results.json" ] || { cat "$tmp/$1.log"; fail "$1: no results.json"; }
}
card_status() { # the card kinds' statuses, one per line
	jq -r '.cases[] | select(.kind == "vcard" or .kind == "opensc") | .status' "$1/results.json"
}
expect_ran() {
	grep -q "the rig's pcscd serves the standard socket /run/pcscd/pcscd.comm, which is free" \
		"$tmp/$1.log" || { cat "$tmp/$1.log"; fail "$1: the run did not say it took the free standard socket"; }
	[ "$(card_status "$tmp/$1" | sort -u)" = passed ] ||
		{ cat "$tmp/$1.log"; fail "$1: card cases did not all pass"; }
	[ "$(card_status "$tmp/$1" | wc -l)" -eq 5 ] || fail "$1: not 5 card cases"
	! grep -q '^tokenrig: worker [0-9]*:' "$tmp/$1.log" ||
		{ cat "$tmp/$1.log"; fail "$1: a worker could not start (both wanted the standard socket)"; }
	echo "$1: no mount namespace, socket free: the 5 card cases ran (worker 1 shows the cards)"
}
expect_skipped() { # NAME REASON-TEXT
	[ "$(card_status "$tmp/$1" | sort -u)" = skipped ] ||
		{ cat "$tmp/$1.log"; fail "$1: card cases were not all skipped"; }
	n=$(jq -r '.cases[] | select(.kind == "vcard" or .kind == "opensc") | .message' \
		"$tmp/$1/results.json" | grep -c "standard pcscd socket is taken: .*$2" || true)
	[ "$n" -eq 5 ] ||
		{ cat "$tmp/$1.log"; fail "$1: $n of 5 card cases say the socket is taken ($2)"; }
	[ "$(jq -r '[.cases[] | select(.kind == "softhsm") | .status] | unique | join(",")' \
		"$tmp/$1/results.json")" = passed ] || fail "$1: the SoftHSM cases did not pass"
	echo "$1: no mount namespace, socket taken ($2): card cases skipped with the reason"
}
# The system's pcscd and its socket, to compare before and after.
system_state() {
	ls -li /run/pcscd 2>/dev/null | grep -v '^total' || true
	for p in $(pgrep -x pcscd || true); do
		if [ "$(readlink "/proc/$p/ns/mnt")" = "$(readlink /proc/self/ns/mnt)" ]; then
			echo "pcscd $p $(cut -d' ' -f22 "/proc/$p/stat")"
		fi
	done
}

if [ "${1:-}" = --inside ]; then
	# B, in the test's own mount namespace: $2 = free | listener | pcscd.
	mount -t tmpfs tokenrig-test /run/pcscd
	case "$2" in
	listener)
		command -v systemd-socket-activate > /dev/null ||
			fail "systemd-socket-activate is not installed (ci/install-deps installs systemd)"
		systemd-socket-activate -l /run/pcscd/pcscd.comm \
			sh -c "echo activated > '$tmp/activated'" > /dev/null 2>&1 &
		helpers="$!"
		poll_until 5 test -S /run/pcscd/pcscd.comm || fail "the listener did not start"
		run_dropped listener
		[ ! -e "$tmp/activated" ] || fail "the socket-activated daemon was started by the rig"
		expect_skipped listener "something listens on /run/pcscd/pcscd.comm"
		;;
	pcscd)
		mkdir -p "$tmp/readers"
		/usr/sbin/pcscd -f -c "$tmp/readers" > /dev/null 2>&1 &
		helpers="$!"
		poll_until 5 test -S /run/pcscd/pcscd.comm || fail "the test's pcscd did not start"
		before=$(ls -i /run/pcscd/pcscd.comm)
		run_dropped pcscd
		kill -0 "$helpers" || fail "the rig stopped the running pcscd"
		[ "$(ls -i /run/pcscd/pcscd.comm)" = "$before" ] || fail "the rig replaced pcscd's socket"
		expect_skipped pcscd "a pcscd process (PID $helpers) runs in this mount namespace"
		;;
	free)
		run_dropped free
		expect_ran free
		[ -z "$(ls -A /run/pcscd)" ] || fail "the rig left files in /run/pcscd: $(ls -A /run/pcscd)"
		;;
	esac
	exit 0
fi

# A. This machine as it is.
state_before=$(system_state)
run_dropped machine
if grep -q "the rig's pcscd serves the standard socket" "$tmp/machine.log"; then
	expect_ran machine
else
	expect_skipped machine ""
fi
[ "$(system_state)" = "$state_before" ] || fail "the system's pcscd or its socket changed during the run"

# B. Each case for sure, if a mount namespace can be made for the test.
if unshare -m true 2> /dev/null; then
	for c in free listener pcscd; do
		rc=0
		BUILD="$BUILD" TR_CONTAINER_TMP="$tmp" unshare -m --propagation private \
			sh "$self" --inside "$c" || rc=$?
		[ $rc -eq 0 ] || fail "case $c failed"
	done
	[ "$(system_state)" = "$state_before" ] || fail "the system's pcscd or its socket changed"
else
	skip "A passed; B needs CAP_SYS_ADMIN to make the test's own mount namespaces"
fi
echo "container: the card kinds run on a free standard socket, are skipped with the reason on a taken one"
