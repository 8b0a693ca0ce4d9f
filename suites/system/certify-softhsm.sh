#!/bin/sh
# tokenrig certify against a vendor's module the rig does not intercept:
# SoftHSM2's own libsofthsm2.so, a batch of 6 tokens initialised with
# softhsm2-util in a private SOFTHSM2_CONF, each holding a "vendor" key pair.
#  1. Without --destructive: every lockout ID is skipped as destructive, the
#     verdict names what SoftHSM2 fails (no retry counter: TK-E01), and every
#     token is left exactly as it was (pkcs11-tool's object lists).
#  2. With --destructive: NOT CERTIFIED, TK-E02 failed on every token (the
#     token never locks), and again nothing is left behind.
#  3. A run killed with SIGKILL leaves objects; --cleanup removes exactly them.
#  4. A token at its final PIN try (the rig's interposer as a vendor module
#     with a retry counter) is not touched at all: not one PIN is tried; with
#     3 tries the same token is CERTIFIED (non-destructive), and CERTIFIED
#     with --destructive (TK-E IDs).
#  5. Usage errors exit 2; PINs appear in no output.
set -eu
. suites/system/lib/poll.sh
: "${BUILD:=build}"
module=/usr/lib/softhsm/libsofthsm2.so
for tool in softhsm2-util pkcs11-tool jq; do
	command -v "$tool" >/dev/null || { echo "FAIL: $tool is not installed (ci/install-deps)"; exit 1; }
done
[ -r "$module" ] || { echo "FAIL: $module is not installed (ci/install-deps)"; exit 1; }
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
mkdir "$tmp/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' \
	"$tmp" > "$tmp/softhsm2.conf"
export SOFTHSM2_CONF="$tmp/softhsm2.conf"
# Unusual PINs, so that a leak is found by grep.
export CERT_TEST_PIN=739146 CERT_TEST_SO=58203917
N=6
i=1
while [ $i -le $N ]; do
	softhsm2-util --init-token --free --label "batch-$i" --pin "$CERT_TEST_PIN" \
		--so-pin "$CERT_TEST_SO" >/dev/null
	pkcs11-tool --module "$module" --token-label "batch-$i" --login --pin "$CERT_TEST_PIN" \
		--keypairgen --key-type EC:prime256v1 --id 01 --label vendor-key >/dev/null 2>&1
	i=$((i + 1))
done

objects() { # the object list of every token, as pkcs11-tool shows it
	i=1
	while [ $i -le $N ]; do
		echo "== batch-$i"
		pkcs11-tool --module "$module" --token-label "batch-$i" --login \
			--pin "$CERT_TEST_PIN" -O 2>/dev/null
		i=$((i + 1))
	done
}
objects > "$tmp/before"
grep -q vendor-key "$tmp/before" || { echo "no vendor key made"; cat "$tmp/before"; exit 1; }

certify() {
	"$BUILD/tokenrig" certify --module "$module" --pin-env CERT_TEST_PIN \
		--so-pin-env CERT_TEST_SO --count 50 "$@"
}

# 1. Non-destructive: the whole catalog on every token.
rc=0
certify --out "$tmp/nd" > "$tmp/nd.log" 2>&1 || rc=$?
[ $rc -eq 1 ] || { cat "$tmp/nd.log"; echo "non-destructive: exit $rc, expected 1"; exit 1; }
json="$tmp/nd/certification.json"
jq -e '.schema == "tokenrig-certification/1" and (.tokens | length) == 6 and
       .batch.tokens == 6 and .destructive == false' "$json" >/dev/null ||
	{ echo "certification.json: wrong schema or batch"; exit 1; }
for id in TK-E02 SZ-E09 HB-E08 SC-E03; do
	n=$(jq --arg id "$id" '[.tokens[] | select(.skipped[] |
		select(.id == $id and .reason == "destructive: needs --destructive and the SO PIN/PUK"))
		| select(.not_tested | index($id))] | length' "$json")
	[ "$n" -eq 6 ] || { echo "$id: skipped as destructive on $n of 6 tokens"; exit 1; }
done
# SoftHSM2 reports no retry counter: that is named, with expected and actual.
n=$(jq '[.tokens[] | select(.status == "NOT CERTIFIED") | .failed[] |
	select(.id == "TK-E01" and (.expected | startswith("tries = ")) and
	       (.message | contains("tries is '"'"'-1'"'"'")))] | length' "$json")
[ "$n" -eq 6 ] || { echo "TK-E01 (no retry counter) named on $n of 6 tokens"; exit 1; }
# No lockout was tried: nothing failed that needs one; every token checked back.
n=$(jq '[.tokens[] | select(.final_check.ok == true and .final_check.removed > 0)] | length' "$json")
[ "$n" -eq 6 ] || { echo "final check passed on $n of 6 tokens"; exit 1; }
n=$(jq '[.tokens[] | select((.passed | length) > 50)] | length' "$json")
[ "$n" -eq 6 ] || { echo "the catalog ran on $n of 6 tokens"; exit 1; }
jq -e '.batch.latency.p256.tokens == 6 and .batch.latency.rsa2048.tokens == 6 and
       (.tokens[0].latency.p256.openssl.p50 > 0)' "$json" >/dev/null ||
	{ echo "no latency with its OpenSSL baseline"; exit 1; }
n=$(grep -c '<testsuite name="[0-9a-f]\{16\}"' "$tmp/nd/junit.xml")
[ "$n" -eq 6 ] || { echo "junit.xml: $n testsuites named by serial, expected 6"; exit 1; }
grep -q '^[0-9a-f]\{16\} *batch-[1-6] *NOT CERTIFIED' "$tmp/nd.log" ||
	{ cat "$tmp/nd.log"; echo "no verdict table"; exit 1; }
objects > "$tmp/after"
cmp -s "$tmp/before" "$tmp/after" ||
	{ diff "$tmp/before" "$tmp/after"; echo "non-destructive: the tokens changed"; exit 1; }

# The verdict goes into the nightly history and the report's per-token rows.
res="$tmp/nd/$(jq -r '.tokens[0].results' "$json")"
"$BUILD/tokenrig" history add "$res" "$json" --db "$tmp/h.sqlite" > "$tmp/h.log" 2>&1 ||
	{ cat "$tmp/h.log"; echo "history add of a certification failed"; exit 1; }
"$BUILD/tokenrig" report --db "$tmp/h.sqlite" --html "$tmp/r.html" --markdown "$tmp/r.md" \
	> "$tmp/r.log" 2>&1 || { cat "$tmp/r.log"; echo "report failed"; exit 1; }
n=$(grep -o '<tr class="cert-token">' "$tmp/r.html" | wc -l)
[ "$n" -eq 6 ] || { echo "report: $n certification rows, expected 6"; exit 1; }
grep -q 'NOT CERTIFIED' "$tmp/r.html" && grep -q '0 of 6 token(s) certified' "$tmp/r.md" ||
	{ echo "report: the certification verdict is missing"; exit 1; }

# 2. Destructive: the SO PIN checked, the lockout tried; SoftHSM2 never locks.
rc=0
certify --destructive --filter TK-E0 --out "$tmp/d" > "$tmp/d.log" 2>&1 || rc=$?
[ $rc -eq 1 ] || { cat "$tmp/d.log"; echo "destructive: exit $rc, expected 1"; exit 1; }
n=$(jq '[.tokens[] | select(.status == "NOT CERTIFIED" and (.not_tested | length) == 0) |
	.failed[] | select(.id == "TK-E02")] | length' "$tmp/d/certification.json")
[ "$n" -eq 6 ] || { cat "$tmp/d.log"; echo "destructive: TK-E02 failed on $n of 6 tokens"; exit 1; }
objects > "$tmp/after"
cmp -s "$tmp/before" "$tmp/after" ||
	{ diff "$tmp/before" "$tmp/after"; echo "destructive: the tokens changed"; exit 1; }

# 3. Killed mid-run (SIGKILL: no undo at all), then --cleanup.
"$BUILD/tokenrig" certify --module "$module" --pin-env CERT_TEST_PIN --so-pin-env CERT_TEST_SO \
	--out "$tmp/k" > "$tmp/k.log" 2>&1 &
pid=$!
rc=0
poll_alive "$pid" 30 grep -q 'catalog: running' "$tmp/k.log" || rc=$?
[ $rc -ne 1 ] || { cat "$tmp/k.log"; echo "the run never reached the catalog"; exit 1; }
[ $rc -ne 2 ] || { cat "$tmp/k.log"; echo "the run ended early"; exit 1; }
[ $rc -eq 0 ] || exit 1
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
pid=
objects > "$tmp/killed"
grep -q 'tokenrig-' "$tmp/killed" || { echo "the killed run left nothing to clean"; exit 1; }
# A kill inside SoftHSM's C_CreateObject can leave an object without its
# label: made here on purpose (a data object with no label), so that the
# cleanup must find it by the inventory the killed run wrote at its start.
printf torn > "$tmp/torn"
pkcs11-tool --module "$module" --token-label batch-1 --login --pin "$CERT_TEST_PIN" \
	--write-object "$tmp/torn" --type data > /dev/null 2>&1
ls "$tmp"/k/tokens/*/objects-before.json > /dev/null ||
	{ echo "the killed run left no inventory"; exit 1; }
"$BUILD/tokenrig" certify --module "$module" --pin-env CERT_TEST_PIN --cleanup --out "$tmp/k" \
	> "$tmp/clean.log" 2>&1 || { cat "$tmp/clean.log"; echo "--cleanup failed"; exit 1; }
grep -q "removed [1-9][0-9]* object(s) labelled tokenrig-\* or not in the run's inventory" \
	"$tmp/clean.log" || { cat "$tmp/clean.log"; echo "--cleanup removed nothing"; exit 1; }
objects > "$tmp/after"
cmp -s "$tmp/before" "$tmp/after" ||
	{ diff "$tmp/before" "$tmp/after"; echo "--cleanup: the tokens are not as before"; exit 1; }

# 4. Never brick a real key: a token whose PIN is at its final try is not
#    touched at all. The rig's interposer plays a vendor module with a retry
#    counter (2 tries); one wrong PIN beforehand leaves CKF_USER_PIN_FINAL_TRY.
shim="$BUILD/tokenrig-p11shim.so"
# A SAN=1 shim needs the ASan runtime first in an unsanitized pkcs11-tool.
pre=$(ldd "$shim" | awk '/libasan/ { print $3 }')
shimtool() { LD_PRELOAD="$pre" ASAN_OPTIONS=detect_leaks=0 pkcs11-tool --module "$shim" "$@"; }
printf 'module = %s\nstate = %s/shim.state\nmax_tries = 2\n' "$module" "$tmp" > "$tmp/shim.conf"
export TOKENRIG_SHIM_CONF="$tmp/shim.conf"
shimtool --token-label batch-1 --login --pin 000000 -O >/dev/null 2>&1 || true
shimtool -T 2>/dev/null | grep -q 'final user PIN try' ||
	{ echo "the interposer shows no final try"; exit 1; }
cp "$tmp/shim.state" "$tmp/shim.state.before"
rc=0
"$BUILD/tokenrig" certify --module "$shim" --token 'pkcs11:token=batch-1' \
	--pin-env CERT_TEST_PIN --out "$tmp/f" > "$tmp/f.log" 2>&1 || rc=$?
[ $rc -eq 1 ] || { cat "$tmp/f.log"; echo "final try: exit $rc, expected 1"; exit 1; }
jq -e '.tokens[0].status == "NOT CERTIFIED" and
       (.tokens[0].first_line | contains("final try before the run: nothing was tried"))' \
	"$tmp/f/certification.json" >/dev/null || { cat "$tmp/f.log"; echo "final try not said first"; exit 1; }
cmp -s "$tmp/shim.state" "$tmp/shim.state.before" ||
	{ echo "the token's tries changed (a PIN was tried)"; exit 1; }
# The same vendor module with 3 tries, as the catalog's tokens have: the TK-E
# IDs certify, non-destructively and then with the lockout and the SO reset.
printf 'module = %s\nstate = %s/shim.state\nmax_tries = 3\n' "$module" "$tmp" > "$tmp/shim.conf"
for mode in non-destructive destructive; do
	rc=0
	"$BUILD/tokenrig" certify --module "$shim" --token 'pkcs11:token=batch-1' \
		--pin-env CERT_TEST_PIN --so-pin-env CERT_TEST_SO --filter TK-E --count 20 \
		$( [ $mode = destructive ] && echo --destructive ) --out "$tmp/g-$mode" \
		> "$tmp/g-$mode.log" 2>&1 || rc=$?
	want="CERTIFIED (non-destructive)"
	[ $mode = destructive ] && want=CERTIFIED
	[ $rc -eq 0 ] && jq -e --arg w "$want" '.tokens[0].status == $w' \
		"$tmp/g-$mode/certification.json" >/dev/null ||
		{ cat "$tmp/g-$mode.log"; echo "a token with a retry counter, $mode: not $want"; exit 1; }
done
unset TOKENRIG_SHIM_CONF
objects > "$tmp/after"
cmp -s "$tmp/before" "$tmp/after" || { echo "final try: the tokens changed"; exit 1; }

# 5. Usage and secrets.
printf '%s\n' "$CERT_TEST_PIN" > "$tmp/pin"
chmod 0644 "$tmp/pin"
rc=0
"$BUILD/tokenrig" certify --module "$module" --pin-file "$tmp/pin" --out "$tmp/u" \
	> "$tmp/u.log" 2>&1 || rc=$?
[ $rc -eq 2 ] && grep -q 'must be 0600' "$tmp/u.log" ||
	{ cat "$tmp/u.log"; echo "a PIN file readable by others: exit $rc, expected 2"; exit 1; }
rc=0
"$BUILD/tokenrig" certify --module "$module" --pin-env CERT_TEST_PIN --destructive \
	--out "$tmp/u" > "$tmp/u.log" 2>&1 || rc=$?
[ $rc -eq 2 ] || { echo "--destructive without the SO PIN: exit $rc, expected 2"; exit 1; }
rc=0
"$BUILD/tokenrig" certify --module no-such-module --pin-env CERT_TEST_PIN --out "$tmp/u" \
	> "$tmp/u.log" 2>&1 || rc=$?
[ $rc -eq 2 ] || { echo "an unknown module: exit $rc, expected 2"; exit 1; }
"$BUILD/tokenrig" certify --help | grep -q -- '--destructive' || { echo "no --help"; exit 1; }
if grep -rlq -e "$CERT_TEST_PIN" -e "$CERT_TEST_SO" "$tmp/nd" "$tmp/d" "$tmp/f" "$tmp"/g-* "$tmp"/*.log; then
	echo "a PIN appears in the output:"
	grep -rl -e "$CERT_TEST_PIN" -e "$CERT_TEST_SO" "$tmp/nd" "$tmp/d" "$tmp/f" "$tmp"/g-* "$tmp"/*.log
	exit 1
fi
echo "certify: 6 SoftHSM2 tokens, lockouts skipped as destructive and left as they were;" \
	"--destructive: TK-E02 failed (never locks); --cleanup after SIGKILL;" \
	"a token at its final try left untouched; one with a retry counter certified"
