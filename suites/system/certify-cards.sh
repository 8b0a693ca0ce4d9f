#!/bin/sh
# tokenrig certify on cards in PC/SC readers: the rig's virtual PIV cards
# behind its own private pcscd (reached through PCSCLITE_CSOCK_NAME, as a
# vendor's readers would be), certified as if they were real cards.
#  1. --reader (a comma list) through the rig's PC/SC backend, --destructive
#     with the PUK (--so-pin-env) and the management key (--mgmt-key-env):
#     3 cards CERTIFIED; each card's 9A certificate is as before (read with
#     OpenSC's pkcs11-tool), the management key is in no output.
#  2. --readers all with two defects: card 2's signing slowed with the card's
#     latency control -> the batch's latency outlier; card 3 provisioned with
#     5 PIN tries instead of 3 -> an inventory outlier and NOT CERTIFIED
#     (TK-E01: 5 tries where 3 are expected).
#  3. Through OpenSC (--module opensc), on the cards' own certificates
#     (--trust the issuing CA): the 3 good cards CERTIFIED, the 5-try card
#     failing TK-E02; cases needing a certificate the rig makes skipped with
#     the reason. The same through the PC/SC backend: nothing written.
#  4. SIGINT once: the step in flight is undone, every card checked, exit 130,
#     nothing left. SIGINT twice: exit at once, certification.json's
#     first_line names the certificate left in 9A; --cleanup writes the
#     originals back. SIGKILL, then --cleanup: nothing left on any card.
#  5. Usage: a bad management key, --reader of no card: exit 2. Another
#     management key than the card's: PUT DATA refused, named, card as before.
# timeout: 180
set -eu
BUILD=${BUILD:-build}
VC="$BUILD/tokenrig-vcard"
TR="$BUILD/tokenrig"
MOD=/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so

[ "$(id -u)" -eq 0 ] || { echo "needs root: the rig's pcscd runs in a private mount namespace"; exit 77; }
for f in "$VC" "$TR"; do [ -x "$f" ] || { echo "$f missing: make BUILD=$BUILD"; exit 1; }; done
for tool in jq pkcs11-tool; do
	command -v "$tool" >/dev/null || { echo "FAIL: $tool is not installed (ci/install-deps)"; exit 1; }
done

card_test_name=certify-cards
. suites/system/lib/card-test.sh

# Unusual secrets, so that a leak is found by grep. Sichuan's scenarios type
# its factory PIN (12345678) literally: the batch has it (README).
export CT_PIN=12345678 CT_PUK=73915824
# The virtual card's management key is the PIV default (emulators/vcard/README.md).
export CT_MGMT=010203040506070801020304050607080102030405060708
N=4
base=$("$VC" free-ports $N) || fail "no free ports for vpcd"
i=0
while [ $i -lt $N ]; do
	tries=3
	[ $i -eq 3 ] && tries=5  # the defective card: its retry limit changed
	# Units whose names fit OpenSC's 32-byte token label (a longer one is cut
	# inside a character: a finding that fails the inventory).
	index=$(echo 2 5 10 13 | cut -d' ' -f$((i + 1)))
	"$VC" provision --image "$dir/card$i.img" --pki "$dir/pki" --province suzhou --index $index \
		--alg p256 --pin $CT_PIN --puk $CT_PUK --tries $tries >/dev/null
	i=$((i + 1))
done
"$VC" pcscd --dir "$dir/rig" --base-port $base --cards $N >"$dir/rig.log" 2>&1 &
pids="$pids $!"
i=0
while [ $i -lt $N ]; do
	"$VC" serve --image "$dir/card$i.img" --port $((base + i)) --control "$dir/card$i.ctl" \
		>>"$dir/card$i.log" 2>&1 &
	pids="$pids $!"
	i=$((i + 1))
done
poll test -s "$dir/rig/pcscd.env" || { cat "$dir/rig.log"; fail "the rig's pcscd did not start"; }
. "$dir/rig/pcscd.env"
export PCSCLITE_CSOCK_NAME
pids="$PCSCD_PID $pids"
"$VC" wait --readers $N --cards $N --timeout 10000 || fail "the cards did not show"
ctl() { "$VC" ctl "$dir/card$1.ctl" "$2" ${3:-} ${4:-} >/dev/null; }

cat >"$dir/opensc.conf" <<CONF
app default {
	framework pkcs15 {
		use_file_caching = no;
	}
}
app opensc-pkcs11 {
	pkcs11 {
		slots_per_card = 1;
		user_pin_unblock_style = set_pin_in_unlogged_session;
	}
}
CONF
export OPENSC_CONF="$dir/opensc.conf"

# Every card's 9A certificate (sha256), read by OpenSC: the proof of "as before".
certs() {
	i=0
	while [ $i -lt $N ]; do
		timeout 30 pkcs11-tool --module $MOD --slot-index $i --read-object --type cert --id 01 \
			-o "$dir/c.der" >/dev/null 2>&1 || echo "card $i: unreadable"
		sha256sum <"$dir/c.der"
		i=$((i + 1))
	done
}
certs >"$dir/before"
grep -q unreadable "$dir/before" && { cat "$dir/before"; fail "OpenSC cannot read the cards"; }
unchanged() {
	certs >"$dir/after"
	cmp -s "$dir/before" "$dir/after" || { diff "$dir/before" "$dir/after"; fail "$1: a card changed"; }
}
reader() { printf 'tokenrig vpcd %s 00 %02d' $(( $1 / 2 )) $(( $1 % 2 )); }
"$VC" wait --readers $N --cards $N --timeout 1000 >/dev/null
r0=$(reader 0); r1=$(reader 1); r2=$(reader 2)
T="timeout 300"
certify() {
	$T "$TR" certify --pin-env CT_PIN --so-pin-env CT_PUK --mgmt-key-env CT_MGMT --count 20 "$@"
}
noleak() {
	! grep -rq -e "$CT_PIN" -e "$CT_PUK" -e "$CT_MGMT" "$@" || fail "a secret in the output: $*"
}

# 1. Three cards through the PC/SC backend: CERTIFIED.
rc=0
certify --reader "$r0,$r1" --reader "$r2" --destructive --out "$dir/a" >"$dir/a.log" 2>&1 || rc=$?
json="$dir/a/certification.json"
[ $rc -eq 0 ] || { cat "$dir/a.log"; fail "readers: exit $rc, expected 0 (every card certified)"; }
jq -e '.backend == "pcsc" and .batch.tokens == 3 and .batch.certified == 3 and
       ([.tokens[] | select(.status == "CERTIFIED")] | length) == 3' "$json" >/dev/null ||
	fail "readers: not 3 cards CERTIFIED"
# The lockout ran (with the PUK), the catalog ran, the card's facts are there.
jq -e '[.tokens[] | select((.passed | index("TK-E02")) and (.passed | index("TK-E01")) and
        (.passed | index("SZ-E09")) and (.passed | index("HB-E08")) and
        (.passed | index("SC-E03")) and (.not_tested | length) == 0 and
        (.passed | length) > 30 and (.inventory.atr | length) > 0 and
        (.inventory.certificate.sha256 | length) == 64 and .final_check.ok and
        .final_check.removed == 1)] | length == 3' "$json" >/dev/null ||
	{ jq '.tokens[0]' "$json"; fail "readers: lockout, catalog, inventory or final check missing"; }
# Cases needing a certificate the rig does not make on a card: skipped, saying why.
jq -e '[.tokens[0].skipped[] | select(.id == "JS-E07" and (.reason | contains("expired")))] |
       length == 1' "$json" >/dev/null || fail "readers: JS-E07 not skipped with its reason"
unchanged "readers"
noleak "$dir/a.log" "$dir/a"

# 2. The whole batch, two cards defective on purpose.
ctl 2 latency sign-ec 40
rc=0
certify --readers all --destructive --out "$dir/b" >"$dir/b.log" 2>&1 || rc=$?
ctl 2 clear
json="$dir/b/certification.json"
[ $rc -eq 1 ] || { cat "$dir/b.log"; fail "defects: exit $rc, expected 1"; }
s2=$(jq -r --arg r "$r2" '.tokens[] | select(.reader == $r) | .serial' "$json")
s3=$(jq -r --arg r "$(reader 3)" '.tokens[] | select(.reader == $r) | .serial' "$json")
# Every card is named by its CHUID GUID, read through the backend's APDU channel.
jq -e '[.tokens[].serial | test("^[0-9a-f]{32}$")] | all' "$json" >/dev/null ||
	{ jq '[.tokens[] | {reader, serial}]' "$json"; fail "a card without its CHUID GUID as serial"; }
jq -e --arg s "$s2" '.batch.latency.p256.tokens == 4 and .batch.latency.p256.outliers == [$s]' \
	"$json" >/dev/null || { jq .batch "$json"; fail "defects: the slowed card is not the latency outlier"; }
jq -e --arg s "$s3" '[.tokens[] | select(.status == "NOT CERTIFIED") | .serial] == [$s] and
       ([.batch.inventory_outliers[] | select(.serial == $s and .field == "pin_policy")] | length) == 1 and
       ([.tokens[] | select(.serial == $s) | .failed[] | select(.id == "TK-E01")] | length) == 1' \
	"$json" >/dev/null || { jq '.batch, [.tokens[] | {serial, status, failed}]' "$json";
				fail "defects: the card with 5 tries is not the failing token"; }
grep -q "OUTLIER: $s2" "$dir/b.log" || fail "defects: the table names no outlier"
unchanged "defects"

# 3. Through OpenSC, on the cards' own certificates: the 3 good cards
# CERTIFIED with a lockout and the PUK; the 5-try card fails there too
# (OpenSC shows CKF_USER_PIN_FINAL_TRY one wrong PIN later than expected).
rc=0
certify --module opensc --trust "$dir/pki/suzhou/chain.pem" --destructive \
	--filter TK-E02,TK-E06,suites/hebei,SC-E03 --out "$dir/o" >"$dir/o.log" 2>&1 || rc=$?
json="$dir/o/certification.json"
[ $rc -eq 1 ] || { cat "$dir/o.log"; fail "opensc: exit $rc, expected 1 (the 5-try card)"; }
jq -e --argjson n $N '.backend == "pkcs11" and .batch.tokens == $n and .batch.certified == $n - 1 and
       ([.tokens[] | select(.status == "CERTIFIED" and (.passed | index("TK-E02")) and
                            (.passed | index("HB-E08")))] | length) == $n - 1 and
       ([.tokens[] | select(.status == "NOT CERTIFIED" and (.label | startswith("苏州金桥")) and
                            ([.failed[].id] | index("TK-E02")))] | length) == 1' \
	"$json" >/dev/null || { cat "$dir/o.log"; fail "opensc: not the 3 good cards CERTIFIED and the 5-try one failing"; }
jq -e '[.tokens[0].skipped[] | select(.reason | contains("--trust"))] | length > 0' "$json" \
	>/dev/null || fail "opensc: no case skipped for a certificate the rig would make"
unchanged "opensc"
noleak "$dir/o.log" "$dir/o"

# 3b. The cards on their own certificates through the PC/SC backend: nothing
# is written (no original kept, none written back), CERTIFIED (non-destructive).
rc=0
certify --readers all --trust "$dir/pki/suzhou/chain.pem" --filter TK-E06,HB- --out "$dir/t" \
	>"$dir/t.log" 2>&1 || rc=$?
[ $rc -eq 0 ] || { cat "$dir/t.log"; fail "own certificates: exit $rc, expected 0"; }
jq -e --argjson n $N '.trust != null and .batch.certified == $n and
       ([.tokens[] | select(.status == "CERTIFIED (non-destructive)" and
                            (.not_tested | index("HB-E08")) and (.passed | index("HB-E01")) and
                            .final_check.ok and .final_check.removed == 0)] | length) == $n' \
	"$dir/t/certification.json" >/dev/null || { cat "$dir/t.log"; fail "own certificates: verdict"; }
! ls "$dir"/t/tokens/*/original-9a.der >/dev/null 2>&1 || fail "own certificates: a certificate was written"
unchanged "own certificates"

# 4a. One SIGINT during the latency (a long --count): undone, checked, exit 130.
# Started straight in the background ($! is timeout's PID: it passes signals on).
# SIGKILL needs tokenrig's own PID: that run goes without timeout (stopped at exit).
slow() {
	if [ "${2:-}" = bare ]; then
		"$TR" certify --pin-env CT_PIN --mgmt-key-env CT_MGMT --count 1000000 \
			--filter TK-E06 --reader "$r0,$r1,$r2" --out "$1" >"$1.log" 2>&1 &
	else
		timeout 60 "$TR" certify --pin-env CT_PIN --mgmt-key-env CT_MGMT --count 1000000 \
			--filter TK-E06 --reader "$r0,$r1,$r2" --out "$1" >"$1.log" 2>&1 &
	fi
	pid=$!
	pids="$pid $pids"
}
wait_latency() {
	poll grep -q "latency:" "$1" || { cat "$1"; fail "$2: never reached the latency"; }
}
slow "$dir/i"
wait_latency "$dir/i.log" "one SIGINT"
kill -INT $pid
rc=0
wait $pid || rc=$?
[ $rc -eq 130 ] || { cat "$dir/i.log"; fail "one SIGINT: exit $rc, expected 130"; }
jq -e '[.tokens[] | select((.first_line | startswith("interrupted (SIGINT)")) and .final_check.ok)]
       | length == 3' "$dir/i/certification.json" >/dev/null ||
	{ cat "$dir/i.log"; jq '[.tokens[] | {first_line, final_check, failed}]' "$dir/i/certification.json";
	  fail "one SIGINT: not every card checked after the interrupt"; }
unchanged "one SIGINT"

# 4b. Twice: out at once; the report names the certificate left in 9A.
# Bare: GNU timeout ignores the signal it passed on, so a second one would stop there.
slow "$dir/j" bare
wait_latency "$dir/j.log" "two SIGINTs"
for c in 0 1 2; do ctl $c latency any 500; done  # the undo now takes seconds
kill -INT $pid
sleep 1  # a second interrupt, as a person's: not the same one passed on twice
kill -INT $pid
# At once: well before the undo of 3 cards at 300 ms an APDU would be done.
gone() { [ ! -e /proc/$1 ] || grep -q ') Z ' /proc/$1/stat; }  # a zombie is gone too
poll gone $pid || { kill -9 $pid; fail "two SIGINTs: still running after 10 s"; }
rc=0
wait $pid || rc=$?
for c in 0 1 2; do ctl $c clear; done
[ $rc -eq 130 ] || { cat "$dir/j.log"; fail "two SIGINTs: exit $rc, expected 130"; }
n=$(jq '[.tokens[] | select(.first_line | contains("LEFT ON THE TOKEN: the certificate the rig wrote into key 9A"))] | length' \
	"$dir/j/certification.json")
[ "$n" -ge 1 ] || { cat "$dir/j.log"; fail "two SIGINTs: the report names nothing left"; }
grep -q "LEFT ON THE TOKEN" "$dir/j.log" || fail "two SIGINTs: nothing left said on the terminal"
$T "$TR" certify --readers all --pin-env CT_PIN --mgmt-key-env CT_MGMT --cleanup --out "$dir/j" \
	>"$dir/jc.log" 2>&1 || { cat "$dir/jc.log"; fail "two SIGINTs: --cleanup failed"; }
grep -q "wrote the original 9A certificate back" "$dir/jc.log" ||
	{ cat "$dir/jc.log"; fail "two SIGINTs: --cleanup wrote nothing back"; }
unchanged "two SIGINTs, then --cleanup"

# 4c. SIGKILL (no undo at all), then --cleanup.
slow "$dir/k" bare
wait_latency "$dir/k.log" "SIGKILL"
kill -KILL $pid
wait $pid 2>/dev/null || true
certs >"$dir/after"
cmp -s "$dir/before" "$dir/after" && fail "SIGKILL: nothing was left to clean up (test too late?)"
$T "$TR" certify --readers all --pin-env CT_PIN --mgmt-key-env CT_MGMT --cleanup --out "$dir/k" \
	>"$dir/kc.log" 2>&1 || { cat "$dir/kc.log"; fail "SIGKILL: --cleanup failed"; }
[ "$(grep -c "wrote the original 9A certificate back" "$dir/kc.log")" -eq 3 ] ||
	{ cat "$dir/kc.log"; fail "SIGKILL: --cleanup did not restore the 3 cards"; }
unchanged "SIGKILL, then --cleanup"
noleak "$dir/i.log" "$dir/j.log" "$dir/k.log" "$dir/kc.log" "$dir/jc.log"

# 5. Usage errors: exit 2, before anything starts.
rc=0
CT_BAD=0102 "$TR" certify --readers all --pin-env CT_PIN --mgmt-key-env CT_BAD --out "$dir/u" \
	>"$dir/u.log" 2>&1 || rc=$?
[ $rc -eq 2 ] && grep -q "48 hex digits" "$dir/u.log" || fail "a bad management key: exit $rc"
rc=0
"$TR" certify --reader "no such reader" --pin-env CT_PIN --out "$dir/u" >"$dir/u.log" 2>&1 || rc=$?
[ $rc -eq 2 ] && grep -q "no card in a reader named 'no such reader'" "$dir/u.log" ||
	{ cat "$dir/u.log"; fail "--reader of no card: exit $rc"; }
# The management key is the variable's: another key is refused by the card
# (PUT DATA never happens), named, and the card is as before.
export CT_OTHER=0f0e0d0c0b0a09080f0e0d0c0b0a09080f0e0d0c0b0a0908
rc=0
$T "$TR" certify --reader "$r0" --pin-env CT_PIN --mgmt-key-env CT_OTHER --filter TK-E06 \
	--out "$dir/w" >"$dir/w.log" 2>&1 || rc=$?
[ $rc -eq 1 ] || { cat "$dir/w.log"; fail "another management key: exit $rc, expected 1"; }
jq -e '[.tokens[0].failed[] | select(.id == "CERT-PROVISION" and
        (.message | contains("PUT DATA of the rig'"'"'s certificate into 9A")))] | length == 1' \
	"$dir/w/certification.json" >/dev/null ||
	{ cat "$dir/w.log"; fail "another management key: not named as the provisioning's failure"; }
! grep -rq "$CT_OTHER" "$dir/w.log" "$dir/w" || fail "the management key in the output"
unchanged "the end"
echo "certify-cards: 3 cards CERTIFIED through the PC/SC backend and 3 of $N through OpenSC" \
	"(--destructive, PUK); the slowed card the latency outlier, the 5-try card NOT CERTIFIED;" \
	"SIGINT once/twice and SIGKILL + --cleanup leave every card as before"
