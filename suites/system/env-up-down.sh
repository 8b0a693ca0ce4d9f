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
pkcs11tool() {
	if [ -n "$PRE" ]; then
		LD_PRELOAD="$PRE" ASAN_OPTIONS=detect_leaks=0 pkcs11-tool "$@"
	else
		pkcs11-tool "$@"
	fi
}
# The command of the README, as a person types it: the first token is
# TOKENRIG_TOKEN_LABEL (the interposer lists tokens by label).
objects=$(pkcs11tool --module "$TOKENRIG_P11_MODULE" --login --pin "$TOKENRIG_USER_PIN" -O 2>&1)
echo "$objects" | grep -q "Private Key Object" || { echo "no private key listed:"; echo "$objects"; exit 1; }
echo "$objects" | grep -q "Certificate Object" || { echo "no certificate listed:"; echo "$objects"; exit 1; }
# GnuTLS scans at most 48 slots: env.sh's default interposer configuration
# shows one portal's tokens, so p11tool lists them (nothing on all 63), and
# every portal's configuration stays under 48; _ALL keeps the full set.
# (Not with a SAN=1 interposer: GnuTLS's p11tool with the ASan runtime
# preloaded hangs; the plain build's `make check` runs this part.)
if [ -n "$PRE" ]; then
	echo "p11tool: not checked with an ASan-built interposer (the plain build checks it)"
elif env p11tool --version > /dev/null 2>&1; then
	gnutls() { timeout 30 env p11tool "$@"; }
	tokens=$(gnutls --provider "$TOKENRIG_P11_MODULE" --list-tokens 2>&1)
	echo "$tokens" | grep -q "Label: $TOKENRIG_TOKEN_LABEL\$" ||
		{ echo "p11tool does not list $TOKENRIG_TOKEN_LABEL:"; echo "$tokens"; exit 1; }
	for conf in "$TOKENRIG_SHIM_CONF_SUZHOU" "$TOKENRIG_SHIM_CONF_HEBEI" \
		    "$TOKENRIG_SHIM_CONF_SICHUAN" "$TOKENRIG_SHIM_CONF_HUNAN"; do
		n=$(TOKENRIG_SHIM_CONF="$conf" gnutls --provider "$TOKENRIG_P11_MODULE" --list-tokens 2>&1 |
			grep -c '^Token ') || true
		[ "$n" -ge 1 ] && [ "$n" -le 48 ] ||
			{ echo "p11tool lists $n tokens with $conf (want 1 to 48)"; exit 1; }
	done
	all=$(TOKENRIG_SHIM_CONF="$TOKENRIG_SHIM_CONF_ALL" pkcs11tool --module "$TOKENRIG_P11_MODULE" -L 2>&1 |
		grep -c 'token label') || true
	[ "$all" -gt 48 ] || { echo "the full set shows $all tokens, not every one"; exit 1; }
else
	echo "p11tool (gnutls-bin) missing: ci/install-deps installs it" >&2
	exit 1
fi
# Through the interposer the token locks like a real key, and the SO resets it.
p11() { pkcs11tool --module "$TOKENRIG_P11_MODULE" --token-label "$TOKENRIG_TOKEN_LABEL" "$@" 2>&1; }
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
