#!/bin/sh
# tokenrig bench writes a complete bench file; two plain runs compare as no
# change; a run with latency added in the interposer (+300 us on C_Sign: about
# +350% on a SoftHSM P-256 signature, still +75% under ASan, where SoftHSM's
# allocations go through the sanitizer) is reported slower, with exit 1; a
# file of another schema is refused with exit 2. Verdicts are taken relative
# to each run's interleaved baseline (--normalize): separate runs on a shared
# machine drift by more than the threshold on their own.
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# SoftHSM only: the card columns (vcard, opensc) take the three runs past a minute.
bench() { "$BUILD/tokenrig" bench --out "$tmp/run" --count 600 --warmup 100 --rounds 6 --threads 2 --kinds softhsm "$@"; }
bench --json "$tmp/a.json" > "$tmp/a.log" 2>&1 || { cat "$tmp/a.log"; exit 1; }
for m in openssl.sign module.c_sign interposer.c_sign token.sign portal.login; do
	grep -q "softhsm/p256/$m" "$tmp/a.log" || { echo "no $m in the table"; cat "$tmp/a.log"; exit 1; }
done
grep -q '"schema":"tokenrig-bench/1"' "$tmp/a.json" || { echo "no schema in the bench file"; exit 1; }
grep -q '"git_revision"' "$tmp/a.json" || { echo "no machine facts"; exit 1; }
bench --json "$tmp/b.json" > "$tmp/b.log" 2>&1 || { cat "$tmp/b.log"; exit 1; }
bench --json "$tmp/slow.json" --latency "C_Sign fixed 300us" > "$tmp/slow.log" 2>&1 ||
	{ cat "$tmp/slow.log"; exit 1; }

# Same code, same machine: the token's figures relative to their in-run
# baselines do not move. (The whole file usually says "no change" too, but a
# machine shared with other work moves the raw OpenSSL floor itself, and
# this test must not flake.)
"$BUILD/tokenrig" compare --normalize "$tmp/a.json" "$tmp/b.json" > "$tmp/same.txt" || true
cat "$tmp/same.txt"
for m in p256/token.sign rsa2048/token.sign; do
	grep -q "softhsm/$m .*no change" "$tmp/same.txt" ||
		{ echo "softhsm/$m moved between two plain runs"; exit 1; }
done

# Relative to the direct C_Sign loop (which has no interposer), the added
# time stands out even when the whole machine slowed down meanwhile.
rc=0
"$BUILD/tokenrig" compare --normalize "$tmp/a.json" "$tmp/slow.json" > "$tmp/slow.txt" || rc=$?
cat "$tmp/slow.txt"
[ $rc -eq 1 ] || { echo "compare against the slowed run exited $rc, expected 1"; exit 1; }
for m in interposer.c_sign token.sign; do
	grep -q "softhsm/p256/$m .*SLOWER" "$tmp/slow.txt" || { echo "p256 $m not reported slower"; exit 1; }
done

sed 's/tokenrig-bench\/1/tokenrig-bench\/9/' "$tmp/a.json" > "$tmp/other.json"
rc=0
"$BUILD/tokenrig" compare "$tmp/a.json" "$tmp/other.json" > /dev/null 2> "$tmp/err" || rc=$?
[ $rc -eq 2 ] && grep -q 'other.json: schema "tokenrig-bench/9"' "$tmp/err" ||
	{ echo "another schema: exit $rc"; cat "$tmp/err"; exit 1; }
echo "bench and compare: no change between plain runs, the added latency detected"
