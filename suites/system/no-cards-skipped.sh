#!/bin/sh
# A run without virtual cards (no root, no pcscd, or --no-cards) still lists
# the card columns: every case there is skipped with the reason, never
# silently dropped from results.json and junit.xml.
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$BUILD/tokenrig" run --no-cards --filter SZ-REG-OK --out "$tmp/out" > "$tmp/log" 2>&1 ||
	{ cat "$tmp/log"; exit 1; }
grep -q 'scenarios: 2 passed, 0 failed, 5 skipped' "$tmp/log" || { cat "$tmp/log"; exit 1; }
for col in vcard/p256 vcard/rsa2048 vcard/sm2 opensc/p256 opensc/rsa2048; do
	grep -q "SKIP .*SZ-REG-OK .*\[$col\]" "$tmp/log" || { echo "no skipped $col case"; exit 1; }
done
n=$(grep -o '"message": "no virtual cards in this run: not asked for (--no-cards)"' \
	"$tmp/out/results.json" | wc -l)
[ "$n" -eq 5 ] || { echo "results.json: $n card cases skipped with the reason, expected 5"; exit 1; }
n=$(grep -o '<skipped message="no virtual cards in this run: [^"]*"' "$tmp/out/junit.xml" | wc -l)
[ "$n" -eq 5 ] || { echo "junit.xml: $n card cases skipped with the reason, expected 5"; exit 1; }
echo "no cards: their 5 columns skipped with the reason"
