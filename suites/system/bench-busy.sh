#!/bin/sh
# A bench taken while CPU hogs run does not cry wolf: against a bench of
# the same build on the same machine, compare exits 0, calls no metric
# slower, and names the metrics the hogs disturbed "inconclusive: the
# machine was busy (rounds ...)"; `tokenrig report` shows that verdict as
# such in its bench section and summary. The hogs (three busy loops, on one
# second and off one second, at most 40 s) start after the bench has
# started and are stopped by their PIDs. One run a side keeps it short: the
# undisturbed metrics are then "undecided" (no spread between runs), and
# the busy ones must still be named.
set -eu
tmp=$(mktemp -d)
hogs=""
stop_hogs() { for p in $hogs; do kill "$p" 2> /dev/null || true; done; hogs=""; }
trap 'stop_hogs; rm -rf "$tmp"' EXIT
# Rounds of ~0.5 s: long enough that a hog's on and off seconds fall on whole rounds.
bench() { "$BUILD/tokenrig" bench --out "$tmp/b" --runs 1 --count 3200 --warmup 100 --rounds 16 --threads 1 --kinds softhsm "$@"; }
# The duty cycle of a hog: 1 s of busy loop, 1 s idle, for at most 40 s.
hog() {
	end=$(($(date +%s) + 40))
	while [ "$(date +%s)" -lt $end ]; do
		timeout 1 sh -c 'while :; do :; done' || true
		timeout 1 tail -f /dev/null > /dev/null 2>&1 || true
	done
}

bench --json "$tmp/quiet.json" > "$tmp/quiet.log" 2>&1 || { cat "$tmp/quiet.log"; exit 1; }
bench --json "$tmp/busy.json" > "$tmp/busy.log" 2>&1 &
bench_pid=$!
hog & hogs="$hogs $!"
hog & hogs="$hogs $!"
hog & hogs="$hogs $!"
rc=0
wait $bench_pid || rc=$?
stop_hogs
[ $rc -eq 0 ] || { cat "$tmp/busy.log"; echo "the bench under load exited $rc"; exit 1; }

rc=0
"$BUILD/tokenrig" compare "$tmp/quiet.json" "$tmp/busy.json" > "$tmp/cmp.txt" || rc=$?
cat "$tmp/cmp.txt"
[ $rc -eq 0 ] || { echo "quiet against busy: exit $rc, expected 0"; exit 1; }
if grep -v "not gated" "$tmp/cmp.txt" | grep -q "  SLOWER\|  faster"; then
	echo "a verdict taken on a busy machine"; exit 1
fi
grep -v "not gated" "$tmp/cmp.txt" | grep -q "inconclusive: the machine was busy (rounds .*new [0-9]" ||
	{ echo "no metric named inconclusive, the busy rounds unnamed"; exit 1; }

# The report's bench section says it, as such.
for n in 1 2; do
	timeout 120 "$BUILD/tokenrig" run --suites suites --out "$tmp/run$n" --filter SC-E01 --no-cards \
		> "$tmp/run$n.log" 2>&1 || { cat "$tmp/run$n.log"; echo "run $n failed"; exit 1; }
done
"$BUILD/tokenrig" history add "$tmp/run1/results.json" "$tmp/quiet.json" --db "$tmp/h.sqlite" > /dev/null
"$BUILD/tokenrig" history add "$tmp/run2/results.json" "$tmp/busy.json" --db "$tmp/h.sqlite" > /dev/null
"$BUILD/tokenrig" report --db "$tmp/h.sqlite" --html "$tmp/r.html" --markdown "$tmp/r.md" > /dev/null
grep -q 'class="bench-verdict busy" id="bench-verdict">inconclusive: the machine was busy<' "$tmp/r.html" ||
	{ grep -A3 'id="bench"' "$tmp/r.html"; echo "the report does not show the busy verdict"; exit 1; }
grep -q '\*\*inconclusive: the machine was busy\*\*' "$tmp/r.md" ||
	{ cat "$tmp/r.md"; echo "the summary does not show the busy verdict"; exit 1; }
echo "bench under CPU hogs: inconclusive, never slower; the report says the machine was busy"
