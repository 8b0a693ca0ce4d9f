#!/bin/sh
# tokenrig bench writes a complete bench file: every parameter, the machine,
# and for each metric its samples, rounds and runs (--runs 3: three bench
# processes, each with fresh tokens and portal, merged). Two plain benches
# compare with exit 0 on a busy 2-core CI runner too: the verdict is over
# runs (their spread sets the interval), relative to each round's own
# baseline, and rounds the machine disturbed are left out or make a metric
# "inconclusive", never "SLOWER". A bench with latency added in the
# interposer (+300 us on C_Sign: about +500% on a SoftHSM P-256 signature)
# is reported slower with exit 1, and compare warns that its parameters
# differ; one run a side is "undecided"; another schema is exit 2.
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# SoftHSM only: the card columns (vcard, opensc) take the runs past minutes.
bench() { "$BUILD/tokenrig" bench --out "$tmp/run" --runs 3 --count 240 --warmup 40 --rounds 8 --threads 2 --kinds softhsm "$@"; }
bench --json "$tmp/a.json" > "$tmp/a.log" 2>&1 || { cat "$tmp/a.log"; exit 1; }
for m in openssl.sign module.c_sign interposer.c_sign token.sign portal.login; do
	grep -q "softhsm/p256/$m" "$tmp/a.log" || { echo "no $m in the table"; cat "$tmp/a.log"; exit 1; }
done
grep -q '"schema":"tokenrig-bench/1"' "$tmp/a.json" || { echo "no schema in the bench file"; exit 1; }
grep -q '"git_revision"' "$tmp/a.json" || { echo "no machine facts"; exit 1; }
grep -q '"rounds":\[30,30,30,30,30,30,30,30,30,30,30,30,30,30,30,30,30,30,30,30,30,30,30,30\]' "$tmp/a.json" ||
	{ echo "no rounds in the bench file"; exit 1; }
grep -q '"runs":\[8,8,8\]' "$tmp/a.json" || { echo "no runs in the bench file"; exit 1; }
for p in '"count":240' '"warmup":40' '"rounds":8' '"threads":2' '"runs":3' '"latency":null' \
	 '"kinds":"softhsm"' '"benched":\["softhsm/p256","softhsm/rsa2048"\]'; do
	grep -q "\"params\":{[^}]*$p" "$tmp/a.json" || { echo "params lack $p"; exit 1; }
done
bench --json "$tmp/b.json" > "$tmp/b.log" 2>&1 || { cat "$tmp/b.log"; exit 1; }
bench --json "$tmp/slow.json" --latency "C_Sign fixed 300us" > "$tmp/slow.log" 2>&1 ||
	{ cat "$tmp/slow.log"; exit 1; }
grep -q '"params":{[^}]*"latency":"C_Sign fixed 300us"' "$tmp/slow.json" || { echo "no latency in params"; exit 1; }

# Same code, same machine, whatever else the runner does meanwhile: exit 0,
# and no gated metric called slower or faster.
rc=0
"$BUILD/tokenrig" compare "$tmp/a.json" "$tmp/b.json" > "$tmp/same.txt" || rc=$?
cat "$tmp/same.txt"
[ $rc -eq 0 ] || { echo "two plain benches: exit $rc, expected 0"; exit 1; }
if grep -v "not gated" "$tmp/same.txt" | grep -q "  SLOWER\|  faster"; then
	echo "two plain benches: a gated metric moved"; exit 1
fi
grep -q "^warning: " "$tmp/same.txt" && { echo "a warning between benches made alike"; exit 1; }

# Relative to the direct C_Sign loop (which has no interposer), the added
# time stands out even when the whole machine slowed down meanwhile. A
# metric the machine disturbed too much is inconclusive instead: then, and
# only then, it may miss SLOWER.
rc=0
"$BUILD/tokenrig" compare "$tmp/a.json" "$tmp/slow.json" > "$tmp/slow.txt" || rc=$?
cat "$tmp/slow.txt"
grep -q '^warning: the files were made with different bench parameters: latency null vs "C_Sign fixed 300us"' \
	"$tmp/slow.txt" || { echo "no warning about the different --latency"; exit 1; }
slower=0
for m in interposer.c_sign token.sign; do
	line=$(grep "softhsm/p256/$m " "$tmp/slow.txt")
	case "$line" in
	*"  SLOWER"*) slower=$((slower + 1)) ;;
	*"inconclusive: the machine was busy"*) ;;
	*) echo "p256 $m neither slower nor inconclusive"; exit 1 ;;
	esac
done
[ $slower -eq 0 ] || [ $rc -eq 1 ] || { echo "a metric slower, but exit $rc"; exit 1; }
[ $slower -gt 0 ] || echo "note: the machine was too busy for a verdict on the slowed run"

# One run a side: no spread between runs to judge by, so no verdict and exit 0.
rc=0
"$BUILD/tokenrig" compare "$tmp/run/bench-runs/run-1.json" "$tmp/run/bench-runs/run-2.json" \
	> "$tmp/one.txt" || rc=$?
[ $rc -eq 0 ] && grep -q "softhsm/p256/token.sign .*undecided: one run a side" "$tmp/one.txt" ||
	{ cat "$tmp/one.txt"; echo "one run a side: exit $rc"; exit 1; }

sed 's/tokenrig-bench\/1/tokenrig-bench\/9/' "$tmp/a.json" > "$tmp/other.json"
rc=0
"$BUILD/tokenrig" compare "$tmp/a.json" "$tmp/other.json" > /dev/null 2> "$tmp/err" || rc=$?
[ $rc -eq 2 ] && grep -q 'other.json: schema "tokenrig-bench/9"' "$tmp/err" ||
	{ echo "another schema: exit $rc"; cat "$tmp/err"; exit 1; }
echo "bench and compare: plain benches exit 0, the added latency detected, parameters recorded"
