#!/bin/sh
# The PKCS#11 interposer is transparent: `pkcs11-tool --test` through it
# reports what it reports against SoftHSM2 directly. Then the key-like PIN
# semantics (TK-E01, TK-E02, SZ-E09) across separate pkcs11-tool processes:
# wrong PINs lock the token at the limit, the right PIN gets CKR_PIN_LOCKED,
# the SO reset restores it. Last, a token pulled by the configuration is
# gone for pkcs11-tool (TK-E04). Everything lives in a temporary folder.
set -eu
BUILD=${BUILD:-build}
SHIM="$(cd "$(dirname "$BUILD/tokenrig-p11shim.so")" && pwd)/tokenrig-p11shim.so"
MODULE=/usr/lib/softhsm/libsofthsm2.so
[ -f "$SHIM" ] || { echo "no $SHIM (build it first)"; exit 1; }
[ -f "$MODULE" ] || { echo "no SoftHSM2 at $MODULE"; exit 1; }

# A SAN=1 shim needs the ASan runtime first in an unsanitized pkcs11-tool.
PRE=$(ldd "$SHIM" | awk '/libasan/ { print $3 }')
if [ -n "$PRE" ]; then
	export ASAN_OPTIONS=detect_leaks=0
fi
shimtool() { LD_PRELOAD="$PRE" pkcs11-tool --module "$SHIM" "$@"; }

tmp=$(mktemp -d /tmp/tokenrig-shimsys.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/tokens"
cat > "$tmp/softhsm2.conf" <<CONF
directories.tokendir = $tmp/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
export SOFTHSM2_CONF="$tmp/softhsm2.conf"
cat > "$tmp/shim.conf" <<CONF
# tokenrig p11shim, system test
module = $MODULE
state = $tmp/pin.state
max_tries = 3
CONF
export TOKENRIG_SHIM_CONF="$tmp/shim.conf"

LABEL=shimsys PIN=246810 SO=13579135 NEWPIN=112233
softhsm2-util --init-token --free --label "$LABEL" --so-pin "$SO" --pin "$PIN" >/dev/null
pkcs11-tool --module "$MODULE" --token-label "$LABEL" --login --pin "$PIN" \
	--keypairgen --key-type rsa:2048 --id 01 --label unit >/dev/null 2>&1

# 1. Transparency: the same report and exit status, byte for byte. (With an
# RSA key SoftHSM 2.6.1 itself fails the OAEP-with-label step of --test; the
# shim must report exactly that too.)
rc_direct=0 rc_shim=0
pkcs11-tool --module "$MODULE" --login --pin "$PIN" --test > "$tmp/direct.txt" 2>&1 || rc_direct=$?
shimtool --login --pin "$PIN" --test > "$tmp/shim.txt" 2>&1 || rc_shim=$?
if ! diff -u "$tmp/direct.txt" "$tmp/shim.txt" || [ "$rc_direct" != "$rc_shim" ]; then
	echo "pkcs11-tool --test differs through the shim (exit $rc_direct vs $rc_shim)"
	exit 1
fi
grep -q "RSA-PKCS: OK" "$tmp/shim.txt" || { echo "--test signed nothing:"; cat "$tmp/shim.txt"; exit 1; }

# 2. Lockout at the limit, one pkcs11-tool process per try.
p11() { shimtool --token-label "$LABEL" "$@" 2>&1 || true; }
for try in 1 2 3; do
	out=$(p11 --login --pin 999999 -O)
	echo "$out" | grep -q CKR_PIN_INCORRECT || { echo "try $try: $out"; exit 1; }
done
p11 -T | grep -q "user PIN locked" || { echo "token not shown locked"; p11 -T; exit 1; }
out=$(p11 --login --pin "$PIN" -O)
echo "$out" | grep -q CKR_PIN_LOCKED || { echo "right PIN on a locked token: $out"; exit 1; }

# 3. The SO resets the user PIN: unlocked, the new PIN works.
out=$(p11 --init-pin --login --login-type so --so-pin "$SO" --new-pin "$NEWPIN")
echo "$out" | grep -qi "successfully" || { echo "SO reset: $out"; exit 1; }
p11 -T | grep -q "user PIN locked" && { echo "still locked after the SO reset"; exit 1; }
out=$(p11 --login --pin "$NEWPIN" -O)
echo "$out" | grep -q "Private Key Object" || { echo "login after reset: $out"; exit 1; }

# 4. A pulled token is not there for pkcs11-tool.
echo "token.$LABEL.present = no" >> "$tmp/shim.conf"
out=$(p11 --login --pin "$NEWPIN" -O)
echo "$out" | grep -q "Private Key Object" && { echo "pulled token still usable"; exit 1; }
echo "shim transparency: --test identical; lockout, SO reset and removal behave like a key"
