#!/bin/sh
# `tokenrig env up` gives a person working tokens and portals: pkcs11-tool
# lists the unit's key and certificate, curl reaches the portal over verified
# TLS; `env down` leaves no process of the rig behind.
set -eu
dir="$BUILD/check-env"
# Down on any exit, even when env up itself fails half-way.
down() { "$BUILD/tokenrig" env down --dir "$dir" > /dev/null 2>&1 || true; }
trap down EXIT
"$BUILD/tokenrig" env up --dir "$dir"
pid=$(awk '$1 == "portal" { print $2 }' "$dir/pids")
. "$dir/env.sh"
# A SAN=1 interposer needs the ASan runtime first in the unsanitized pkcs11-tool.
PRE=$(ldd "$TOKENRIG_P11_MODULE" | awk '/libasan/ { print $3 }')
p11tool() {
	if [ -n "$PRE" ]; then
		LD_PRELOAD="$PRE" ASAN_OPTIONS=detect_leaks=0 pkcs11-tool "$@"
	else
		pkcs11-tool "$@"
	fi
}
# The command of the README, as a person types it: the first token is
# TOKENRIG_TOKEN_LABEL (the interposer lists tokens by label).
objects=$(p11tool --module "$TOKENRIG_P11_MODULE" --login --pin "$TOKENRIG_USER_PIN" -O 2>&1)
echo "$objects" | grep -q "Private Key Object" || { echo "no private key listed:"; echo "$objects"; exit 1; }
echo "$objects" | grep -q "Certificate Object" || { echo "no certificate listed:"; echo "$objects"; exit 1; }
# Through the interposer the token locks like a real key, and the SO resets it.
p11() { p11tool --module "$TOKENRIG_P11_MODULE" --token-label "$TOKENRIG_TOKEN_LABEL" "$@" 2>&1; }
for i in 1 2 3; do
	p11 --login --pin 000000 -O | grep -q CKR_PIN_INCORRECT || { echo "wrong PIN $i not refused"; exit 1; }
done
p11 --login --pin "$TOKENRIG_USER_PIN" -O | grep -q CKR_PIN_LOCKED ||
	{ echo "the right PIN was not refused with CKR_PIN_LOCKED"; exit 1; }
p11 --init-pin --login --login-type so --so-pin "$TOKENRIG_SO_PIN" --new-pin "$TOKENRIG_USER_PIN" \
	> /dev/null || { echo "SO reset failed"; exit 1; }
p11 --login --pin "$TOKENRIG_USER_PIN" -O | grep -q "Private Key Object" ||
	{ echo "the PIN does not work after the SO reset"; exit 1; }
# The virtual card, through OpenSC, as issue 3's "done when" has it.
if [ -n "${TOKENRIG_VCARD_READER:-}" ]; then
	card=$(pkcs11-tool --module "$TOKENRIG_OPENSC_MODULE" --login --pin "$TOKENRIG_VCARD_PIN" --test 2>&1) ||
		{ echo "pkcs11-tool --test on the card failed:"; echo "$card"; exit 1; }
	echo "$card" | grep -q "No errors" || { echo "pkcs11-tool --test on the card:"; echo "$card"; exit 1; }
	pkcs11-tool --module "$TOKENRIG_OPENSC_MODULE" --login --pin "$TOKENRIG_VCARD_PIN" -O 2>&1 |
		grep -q "Certificate Object" || { echo "OpenSC lists no certificate on the card"; exit 1; }
fi
root=$(curl -sS --max-time 10 --cacert "$TOKENRIG_CA_BUNDLE" "$TOKENRIG_PORTAL_SUZHOU_URL/")
echo "$root" | grep -q '"portal": *"suzhou"' || { echo "portal answered: $root"; exit 1; }
ch=$(curl -sS --max-time 10 --cacert "$TOKENRIG_CA_BUNDLE" -H 'Content-Type: application/json' \
	-d '{}' "$TOKENRIG_PORTAL_SUZHOU_URL/hall/challenge")
echo "$ch" | grep -q '"nonce"' || { echo "challenge answered: $ch"; exit 1; }
trap - EXIT
"$BUILD/tokenrig" env down --dir "$dir"
# Gone, or a zombie waiting for init to reap it: either way it has exited.
state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1 || true)
if [ -n "$state" ] && [ "$state" != Z ]; then
	echo "portal $pid still runs after env down (state $state)"
	exit 1
fi
[ ! -e "$dir/pids" ] || { echo "pids file left behind"; exit 1; }
echo "env up/down: pkcs11-tool (objects, lockout, SO reset) and curl worked; nothing left running"
