#!/bin/sh
# Card administration by the clients people use, on the virtual PIV card
# behind the rig's private pcscd: yubico-piv-tool (status, verify-pin,
# generate, import-certificate, test-signature, change-pin, unblock-pin) and
# OpenSC's piv-tool -A M:9B:03, both of which authenticate the management
# key with PIV mutual authentication (7C 02 80 00 witness request). Every
# client call is bounded in time; PINs go on stdin (yubico-piv-tool
# --stdin-input), never on argv, and are never printed. Stops by PID.
set -eu
BUILD=${BUILD:-build}
VC="$BUILD/tokenrig-vcard"
T=20 # seconds any one client call may take

[ "$(id -u)" -eq 0 ] || { echo "needs root: the rig's pcscd runs in a private mount namespace"; exit 77; }
[ -x "$VC" ] || { echo "$VC missing: make $VC"; exit 1; }
command -v yubico-piv-tool >/dev/null || { echo "yubico-piv-tool missing: ci/install-deps"; exit 1; }
command -v piv-tool >/dev/null || { echo "piv-tool missing (opensc): ci/install-deps"; exit 1; }

card_test_name=vcard-yk
. suites/system/lib/card-test.sh

base=$("$VC" free-ports 2) || fail "no free ports for vpcd"
# A silver P-256 card of Hebei: its provisioned PIN (123456) and PUK
# (12345678) are the card's defaults, so no secret is on any command line.
"$VC" provision --image "$dir/card0.img" --pki "$dir/pki" --province hebei --index 0 \
	--alg p256 --tries 3
PIN=123456
PUK=12345678

"$VC" pcscd --dir "$dir/rig" --base-port "$base" --cards 1 >"$dir/rig.log" 2>&1 &
pids="$pids $!"
"$VC" serve --image "$dir/card0.img" --port "$base" --control "$dir/card0.ctl" \
	>"$dir/card0.log" 2>&1 &
pids="$pids $!"
poll test -s "$dir/rig/pcscd.env" || { cat "$dir/rig.log"; exit 1; }
. "$dir/rig/pcscd.env"
export PCSCLITE_CSOCK_NAME
pids="$PCSCD_PID $pids"
"$VC" wait --readers 2 --cards 1 --timeout 10000
ctl() { "$VC" ctl "$dir/card0.ctl" "$@"; }
export OPENSC_CONF="$dir/opensc.conf"
printf 'app default {\n\tframework pkcs15 {\n\t\tuse_file_caching = no;\n\t}\n}\n' >"$OPENSC_CONF"

# yk ARGS...: yubico-piv-tool on the rig's reader, secrets from $dir/in.
yk() {
	timeout $T yubico-piv-tool -r "tokenrig vpcd" --stdin-input "$@" <"$dir/in" 2>&1
}
secrets() { printf '%s\n' "$@" >"$dir/in"; }
tries() { ctl status | sed -n 's/.* pin_tries=\([0-9]*\/[0-9]*\).*/\1/p'; }

secrets
out=$(yk -a status) || fail "status: $out"
echo "$out" | grep -q "Slot 9a" || fail "status shows no slot 9a: $out"
echo "$out" | grep -q "PIN tries left:.*3" || fail "status PIN tries: $out"

# verify-pin: a wrong PIN counts down, the right one passes.
secrets 999999
out=$(yk -a verify-pin) && fail "a wrong PIN verified: $out"
[ "$(tries)" = "2/3" ] || fail "wrong PIN not counted: $(tries)"
secrets $PIN
out=$(yk -a verify-pin) || fail "verify-pin: $out"
echo "$out" | grep -q "Successfully verified PIN" || fail "verify-pin: $out"
[ "$(tries)" = "3/3" ] || fail "right PIN did not restore the count: $(tries)"

# generate needs the management key (mutual authentication); a wrong key is refused.
out=$(yk -k 0102030405060708010203040506070801020304050607FF -a generate -s 9a \
	-A ECCP256 -o "$dir/pub.pem") && fail "a wrong management key generated: $out"
out=$(yk -a generate -s 9a -A ECCP256 -o "$dir/pub.pem") || fail "generate: $out"
grep -q "BEGIN PUBLIC KEY" "$dir/pub.pem" || fail "generate wrote no public key"
# A certificate of the new key (made by openssl: Debian 12's
# yubico-piv-tool 2.2.0 cannot selfsign-certificate under OpenSSL 3, its
# key wrapper is not used by X509_sign, whatever the card).
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/ca.key" \
	-subj "/CN=tokenrig yubico test CA" -x509 -days 30 -out "$dir/ca.pem" >/dev/null 2>&1
openssl req -new -key "$dir/ca.key" -subj "/CN=tokenrig yubico test" -out "$dir/req.csr" 2>/dev/null
openssl x509 -req -in "$dir/req.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
	-force_pubkey "$dir/pub.pem" -days 30 -out "$dir/cert.pem" 2>/dev/null ||
	fail "openssl could not certify the generated key"
out=$(yk -a import-certificate -s 9a -i "$dir/cert.pem") || fail "import-certificate: $out"
out=$(yk -a read-certificate -s 9a -o "$dir/back.pem") || fail "read-certificate: $out"
cmp -s "$dir/back.pem" "$dir/cert.pem" || fail "the certificate read back differs"
# The card signs with the generated key: yubico-piv-tool checks the
# signature against the certificate read back.
secrets $PIN
out=$(yk -a verify-pin -a test-signature -s 9a -i "$dir/back.pem") || fail "test-signature: $out"
echo "$out" | grep -q "Successful" || fail "test-signature: $out"
# ... and the certificate is saved in the card image.
grep -q "^slot 9a p256 [0-9a-f]* [0-9a-f]" "$dir/card0.img" || fail "image has no 9a certificate"

# change-pin: the old PIN then fails, the new one verifies.
NEW=246801
secrets $PIN $NEW
out=$(yk -a change-pin) || fail "change-pin: $out"
secrets $PIN
out=$(yk -a verify-pin) && fail "the old PIN still verifies: $out"
secrets $NEW
out=$(yk -a verify-pin) || fail "the new PIN: $out"

# Block the PIN, then unblock-pin with the PUK (a wrong PUK counts first).
secrets 999999
for i in 1 2 3; do yk -a verify-pin >/dev/null && fail "wrong PIN $i verified"; done
[ "$(tries)" = "0/3" ] || fail "not blocked: $(tries)"
secrets 11111111 135790
out=$(yk -a unblock-pin) && fail "a wrong PUK unblocked: $out"
ctl status | grep -q "puk_tries=9/10" || fail "wrong PUK not counted"
secrets $PUK 135790
out=$(yk -a unblock-pin) || fail "unblock-pin: $out"
[ "$(tries)" = "3/3" ] || fail "unblock left $(tries)"
secrets 135790
out=$(yk -a verify-pin) || fail "PIN after unblock: $out"

# OpenSC's piv-tool: -A M:9B:03 (mutual) with the key file of PIV_EXT_AUTH_KEY.
echo 010203040506070801020304050607080102030405060708 >"$dir/mgmt.key"
out=$(PIV_EXT_AUTH_KEY="$dir/mgmt.key" timeout $T piv-tool -r 0 -A M:9B:03 2>&1) ||
	fail "piv-tool -A M:9B:03: $out"
echo 0102030405060708010203040506070801020304050607FF >"$dir/bad.key"
out=$(PIV_EXT_AUTH_KEY="$dir/bad.key" timeout $T piv-tool -r 0 -A M:9B:03 2>&1) &&
	fail "piv-tool with a wrong key: $out"
# ... and the card takes its GENERATE after it: the image's 9C holds an RSA
# key now. (piv-tool 0.23 then fails on its own side under OpenSSL 3, "gen_key
# unable to gen RSA": it builds a key pair from n and e; its P-256 path
# fails on "invalid curve" before any APDU. Its exit code is not the card's.)
grep -q "^slot 9c p256 " "$dir/card0.img" || fail "9C is not the provisioned P-256 key"
PIV_EXT_AUTH_KEY="$dir/mgmt.key" timeout $T piv-tool -r 0 -A M:9B:03 -G 9C:07 \
	-o "$dir/pub9c.der" >"$dir/piv-tool.log" 2>&1 || true
grep -q "^slot 9c rsa2048 " "$dir/card0.img" ||
	fail "piv-tool's GENERATE after -A M:9B:03 not taken: $(cat "$dir/piv-tool.log")"

# Why the opensc kind still skips key generation and certificate writing:
# with the management key at hand (PIV_EXT_AUTH_KEY) and mutual
# authentication working, OpenSC 0.23's PKCS#11 module still has no key
# generation mechanism and no C_CreateObject for a PIV card (its pkcs15init
# has no PIV driver). Should a new OpenSC write, this fails: drop the skips.
MOD=/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so
p11() { PIV_EXT_AUTH_KEY="$dir/mgmt.key" timeout $T pkcs11-tool --module $MOD --slot-index 0 "$@" 2>&1; }
export TR_TEST_PIN=135790 # pkcs11-tool reads it with --pin env:TR_TEST_PIN
out=$(p11 --login --pin env:TR_TEST_PIN --keypairgen --key-type EC:prime256v1 --id 0b) &&
	fail "OpenSC generated a key on the PIV card: drop the opensc keygen skips"
echo "$out" | grep -q "mechanism .* not supported" || fail "OpenSC keygen: $out"
openssl x509 -in "$dir/cert.pem" -outform der -out "$dir/cert.der"
out=$(p11 --login --pin env:TR_TEST_PIN --write-object "$dir/cert.der" --type cert --id 0b) &&
	fail "OpenSC wrote a certificate on the PIV card: drop the opensc writing skips"
echo "$out" | grep -q CKR_FUNCTION_NOT_SUPPORTED || fail "OpenSC C_CreateObject: $out"

echo "vcard-yubico: yubico-piv-tool status, verify-pin, generate, import-certificate," \
	"test-signature, change-pin, unblock-pin, piv-tool -A M:9B:03 and its GENERATE all as expected"
