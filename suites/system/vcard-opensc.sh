#!/bin/sh
# The virtual PIV card behind the rig's private pcscd, driven by unmodified
# OpenSC: opensc-tool sees the ATR, pkcs11-tool --test passes on an RSA and
# a P-256 card, wrong PINs block, the PUK unblocks (pkcs15-tool; and
# pkcs11-tool's C_SetPIN with OpenSC's set_pin_in_unlogged_session style,
# not without it), counters survive a removal and a killed card process, a
# card pulled mid-signature fails the signature and works again once
# inserted. Everything stops by PID.
set -eu
BUILD=${BUILD:-build}
VC="$BUILD/tokenrig-vcard"
MOD=/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so
ATR="3b:88:80:01:74:6f:6b:65:6e:72:69:67:0e"

[ "$(id -u)" -eq 0 ] || { echo "needs root: the rig's pcscd runs in a private mount namespace"; exit 77; }
[ -x "$VC" ] || { echo "$VC missing: make $VC"; exit 1; }

card_test_name=vcard-sys
. suites/system/lib/card-test.sh

base=$("$VC" free-ports 2) || fail "no free ports for vpcd"
PIN0=246810
PUK0=87654321

"$VC" provision --image "$dir/card0.img" --pki "$dir/pki" --province suzhou --index 0 \
	--alg rsa2048 --pin $PIN0 --puk $PUK0 --tries 3
"$VC" provision --image "$dir/card1.img" --pki "$dir/pki" --province sichuan --index 0 \
	--alg p256

"$VC" pcscd --dir "$dir/rig" --base-port $base --cards 2 >"$dir/rig.log" 2>&1 &
pids="$pids $!"
start_card() {
	"$VC" serve --image "$dir/card$1.img" --port $((base + $1)) \
		--control "$dir/card$1.ctl" >>"$dir/card$1.log" 2>&1 &
	eval "card$1_pid=$!"
	pids="$pids $!"
}
start_card 0
start_card 1
poll test -s "$dir/rig/pcscd.env" || { cat "$dir/rig.log"; exit 1; }
. "$dir/rig/pcscd.env"
export PCSCLITE_CSOCK_NAME
pids="$PCSCD_PID $pids"
"$VC" wait --readers 2 --cards 2 --timeout 10000

cat >"$dir/opensc.conf" <<CONF
app default {
	framework pkcs15 {
		use_file_caching = no;
	}
}
CONF
export OPENSC_CONF="$dir/opensc.conf"
ctl() { "$VC" ctl "$dir/card$1.ctl" "$2" ${3:-} ${4:-}; }

# ATR of both cards.
for r in 0 1; do
	atr=$(opensc-tool --reader $r -a 2>&1)
	echo "$atr" | grep -q "$ATR" || fail "reader $r ATR: $atr"
done

# pkcs11-tool --test: RSA card (slot 0), P-256 card (slot 1, Sichuan's PIN).
out=$(pkcs11-tool --module $MOD --slot-index 0 --login --pin $PIN0 --test 2>&1) || true
echo "$out" | grep -q "No errors" || fail "RSA card --test: $out"
out=$(pkcs11-tool --module $MOD --slot-index 1 --login --pin 12345678 --test 2>&1) || true
echo "$out" | grep -q "No errors" || fail "P-256 card --test: $out"
objs=$(pkcs11-tool --module $MOD --slot-index 0 -O 2>&1)
[ "$(echo "$objs" | grep -c 'Certificate Object')" -ge 2 ] || fail "certificates: $objs"
echo "$objs" | grep -q "Certificate for Digital Signature" || fail "no 9C certificate: $objs"

# Wrong PINs up to the limit block the card; the right PIN is refused then.
for i in 1 2 3; do
	out=$(pkcs11-tool --module $MOD --slot-index 0 --login --pin 000000 -O 2>&1) || true
	echo "$out" | grep -q CKR_PIN_INCORRECT || fail "wrong PIN $i: $out"
done
out=$(pkcs11-tool --module $MOD --slot-index 0 --login --pin $PIN0 -O 2>&1) || true
echo "$out" | grep -q CKR_PIN_LOCKED || fail "blocked card accepted: $out"
ctl 0 status | grep -q "pin_tries=0/3" || fail "status: $(ctl 0 status)"

# The block survives a pulled card and a killed card process.
ctl 0 remove >/dev/null
poll sh -c "opensc-tool --reader 0 -a 2>&1 | grep -qv '$ATR'"
kill -9 "$card0_pid"
start_card 0
poll "$VC" wait --readers 2 --cards 2 --timeout 200
ctl 0 status | grep -q "pin_tries=0/3" || fail "counter lost on restart: $(ctl 0 status)"

# The PUK unblocks (OpenSC's PIV driver refuses an SO login with the PUK, so
# pkcs11-tool cannot; pkcs15-tool sends RESET RETRY COUNTER).
out=$(pkcs15-tool --reader 0 --unblock-pin --puk 11111111 --new-pin 135790 2>&1) || true
ctl 0 status | grep -q "puk_tries=9/10" || fail "wrong PUK not counted: $out $(ctl 0 status)"
pkcs15-tool --reader 0 --unblock-pin --puk $PUK0 --new-pin 135790 >/dev/null 2>&1 || true
ctl 0 status | grep -q "pin_tries=3/3 puk_tries=10/10" || fail "PUK did not unblock: $(ctl 0 status)"
out=$(pkcs11-tool --module $MOD --slot-index 0 --login --pin 135790 --test 2>&1) || true
echo "$out" | grep -q "No errors" || fail "after unblock: $out"

# OpenSC's PKCS#11 unblocks too, with the rig's unblock style: C_SetPIN(PUK,
# new PIN) in a session nobody is logged in to. Without the style the same
# call is a PIN change and the blocked card stays blocked. PINs from the
# environment (pkcs11-tool's env:NAME), not argv.
export TR_WRONG=000000 TR_PUK=$PUK0 TR_NEW=246802
for i in 1 2 3; do
	pkcs11-tool --module $MOD --slot-index 0 --login --pin env:TR_WRONG -O >/dev/null 2>&1 || true
done
ctl 0 status | grep -q "pin_tries=0/3" || fail "not blocked again: $(ctl 0 status)"
out=$(pkcs11-tool --module $MOD --slot-index 0 --unlock-pin --puk env:TR_PUK --new-pin env:TR_NEW 2>&1) &&
	fail "unblocked without the unblock style: $out"
ctl 0 status | grep -q "pin_tries=0/3" || fail "unblocked without the style: $(ctl 0 status)"
sed 's/^app default {$/app opensc-pkcs11 {\n\tpkcs11 {\n\t\tuser_pin_unblock_style = set_pin_in_unlogged_session;\n\t}\n}\napp default {/' \
	"$dir/opensc.conf" >"$dir/opensc-unblock.conf"
grep -q set_pin_in_unlogged_session "$dir/opensc-unblock.conf" || fail "no unblock style written"
out=$(OPENSC_CONF="$dir/opensc-unblock.conf" pkcs11-tool --module $MOD --slot-index 0 \
	--unlock-pin --puk env:TR_PUK --new-pin env:TR_NEW 2>&1) || fail "PKCS#11 unblock: $out"
ctl 0 status | grep -q "pin_tries=3/3" || fail "PKCS#11 unblock left: $(ctl 0 status)"
out=$(pkcs11-tool --module $MOD --slot-index 0 --login --pin env:TR_NEW -O 2>&1) ||
	fail "new PIN after the PKCS#11 unblock: $out"

# Pulled mid-signature: the signature fails, the card is gone, then back.
# (pkcs11-tool --test signs with RSA keys only: sign explicitly with ECDSA.)
printf '0123456789abcdef0123456789abcdef' >"$dir/hash"
sign1() {
	pkcs11-tool --module $MOD --slot-index 1 --login --pin 12345678 --sign -m ECDSA \
		--id 01 -i "$dir/hash" -o "$dir/sig" 2>&1
}
out=$(sign1) || fail "ECDSA sign: $out"
out=$(pkcs11-tool --module $MOD --slot-index 1 --verify -m ECDSA --id 01 -i "$dir/hash" \
	--signature-file "$dir/sig" 2>&1) || true
echo "$out" | grep -q "Signature is valid" || fail "ECDSA signature: $out"
ctl 1 remove-during-sign >/dev/null
out=$(sign1) && fail "signature survived a pulled card: $out"
ctl 1 status | grep -q "present=0" || fail "card 1 still present: $(ctl 1 status)"
ctl 1 insert >/dev/null
"$VC" wait --readers 2 --cards 2 --timeout 10000
out=$(sign1) || fail "sign after re-insert: $out"

echo "vcard-opensc: ATR, pkcs11-tool --test (RSA, P-256), PIN block, PUK unblock (pkcs15, PKCS#11)," \
	"persistence and pull-during-sign all as expected"
