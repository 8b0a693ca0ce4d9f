#!/bin/sh
# The harness's PC/SC backend (harness/token_pcsc.c) against virtual PIV
# cards behind the rig's private pcscd: the Check suite token_pcsc starts,
# in every test's process, its own pcscd and three cards (P-256, RSA-2048,
# SM2) exactly as vcard-opensc.sh does, and stops them all by PID. It
# covers: open by reader and by unit, wrong PIN -> tries down -> blocked,
# PUK reset and PUK block, change PIN, logout, sign + OpenSSL verify for
# every algorithm, card pulled mid-signature -> TOKEN_REMOVED, re-insert ->
# a new open signs, corrupt-next -> clean errors, mute card -> TOKEN_TIMEOUT
# in bounded time, pcscd unreachable -> NO_TOKEN.
# With PCSC_BENCH=1 it also prints the card's own bench (tr_bench_vcard)
# next to the backend's tr_token_sign p50, for the harness's overhead.
set -eu
BUILD=${BUILD:-build}
export BUILD

[ "$(id -u)" -eq 0 ] || { echo "needs root: the rig's pcscd runs in a private mount namespace"; exit 77; }
for f in "$BUILD/unit-tests" "$BUILD/tokenrig-vcard"; do
	[ -x "$f" ] || { echo "$f missing: make BUILD=$BUILD $f"; exit 1; }
done

before=$(ls -d /tmp/tokenrig-pcsc-* 2>/dev/null | wc -l)
log=$(mktemp /tmp/tr-pcsc-backend-log.XXXXXX)
trap 'rm -f "$log"' EXIT INT TERM

rc=0
if [ "${PCSC_BENCH:-0}" = 1 ]; then
	TOKENRIG_PCSC_BENCH=1 CK_RUN_SUITE=token_pcsc CK_VERBOSITY=verbose \
		"$BUILD/unit-tests" >"$log" 2>&1 || rc=$?
else
	CK_RUN_SUITE=token_pcsc CK_VERBOSITY=verbose "$BUILD/unit-tests" >"$log" 2>&1 || rc=$?
fi
cat "$log"
[ $rc -eq 0 ] || { echo "FAIL: token_pcsc suite"; exit 1; }
grep -q "not run" "$log" && { echo "FAIL: the suite skipped although root"; exit 1; }
grep -q "Sanitizer\|runtime error" "$log" && { echo "FAIL: sanitizer report"; exit 1; }

# Nothing left behind: the suite's folders are gone, and no card or pcscd
# of its folders runs (each test stopped its own by PID).
after=$(ls -d /tmp/tokenrig-pcsc-* 2>/dev/null | wc -l)
[ "$after" -le "$before" ] || { echo "FAIL: /tmp/tokenrig-pcsc-* left behind"; exit 1; }
if ps -eo args | grep -v grep | grep -q "/tmp/tokenrig-pcsc-"; then
	echo "FAIL: processes of the suite still running:"
	ps -eo pid,args | grep -v grep | grep "/tmp/tokenrig-pcsc-"
	exit 1
fi
echo "pcsc-backend: open by reader and unit, PIN/PUK, every algorithm signs verifiably," \
	"pull mid-signature, corrupt answers, mute card bounded; all stopped"
