#!/bin/sh
# ci/nightly run twice in a row (on a small filter and a short SoftHSM bench,
# to stay quick): a two-run history, both runs with their bench, and a
# report whose every trend chart has two points and which gives the bench
# verdict between the two.
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nightly() {
	rc=0
	BUILD="$BUILD" OUT="$tmp/nightly" NO_BUILD=1 LABEL=twice RUN_TIMEOUT=120 BENCH_TIMEOUT=120 \
		RUN_ARGS="--filter SC-E01 --no-cards" \
		BENCH_ARGS="--count 200 --warmup 20 --rounds 5 --threads 2 --kinds softhsm" \
		timeout 300 ci/nightly > "$tmp/nightly$1.log" 2>&1 || rc=$?
	# 0: every case passed; 1: some failed (not this test's concern).
	[ $rc -le 1 ] || { cat "$tmp/nightly$1.log"; echo "ci/nightly run $1 exited $rc"; exit 1; }
}
nightly 1
nightly 2
db="$tmp/nightly/history.sqlite"
[ "$(sqlite3 "$db" 'SELECT count(*) FROM runs')" -eq 2 ] || { echo "the history does not hold 2 runs"; exit 1; }
[ "$(sqlite3 "$db" 'SELECT count(*) FROM bench')" -eq 2 ] || { echo "a run lacks its bench"; exit 1; }
[ "$(sqlite3 "$db" "SELECT count(*) FROM runs WHERE label = 'twice'")" -eq 2 ] || { echo "no label"; exit 1; }
html="$tmp/nightly/report.html"
charts=$(grep -o 'data-points="[0-9]*"' "$html" | wc -l)
two=$(grep -o 'data-points="2"' "$html" | wc -l)
[ "$charts" -ge 2 ] && [ "$two" -eq "$charts" ] ||
	{ echo "trend charts: $two of $charts have two points"; exit 1; }
grep -q 'id="bench-verdict"' "$html" || { echo "no bench verdict in the report"; exit 1; }
grep -q '^## tokenrig nightly: ' "$tmp/nightly/summary.md" || { echo "no summary"; exit 1; }
[ -s "$tmp/nightly/run/junit.xml" ] || { echo "no junit.xml for CI"; exit 1; }
echo "ci/nightly twice: 2 runs with their bench, $charts trend charts of two points"
