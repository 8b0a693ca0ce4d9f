#!/bin/sh
# `tokenrig run --jobs N` (issue 11): the same case list, in the same order,
# with the same statuses whatever the number of worker processes, on a
# filter that holds SoftHSM and (where this machine has them) card cases;
# results.json records the jobs and the run's figures, and --jobs is checked
# before the start-up; the summary shows "-" for columns that ran nothing
# and a TTY gets live counts and an ETA. Each run bounded by `timeout`;
# about 30 s.
#
# What fails on the old code: --jobs is an unknown option (exit 2); the
# table showed 0.000 ms; the live line had no counts.
set -eu
tr=$(cd "$BUILD" && pwd)/tokenrig
tmp=$(mktemp -d /tmp/tokenrig-jobs-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "jobs-compare: $*"; exit 1; }
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

for j in 1 2; do
	rc=0
	timeout 180 "$tr" run --suites suites --out "$tmp/j$j" --filter HB-E0 --jobs "$j" \
		> "$tmp/j$j.log" 2>&1 || rc=$?
	echo "$rc" > "$tmp/j$j.rc"
	[ "$(json "$tmp/j$j/results.json" 'd["figures"]["jobs"]')" = "$j" ] ||
		{ tail -n 5 "$tmp/j$j.log"; fail "--jobs $j: results.json does not record jobs $j"; }
	json "$tmp/j$j/results.json" 'd["figures"]["startup_s"] + d["figures"]["wall_s"] + d["figures"]["case_fixed_cost_ms_median"]' > /dev/null ||
		fail "--jobs $j: figures missing"
	grep -q '^run: '"$j"' job' "$tmp/j$j.log" || fail "--jobs $j: no figures line"
done
[ "$(cat "$tmp/j1.rc")" = "$(cat "$tmp/j2.rc")" ] || fail "exit codes differ: $(cat "$tmp/j1.rc") vs $(cat "$tmp/j2.rc")"
list() { json "$1" "'\n'.join(c['name'] + ' = ' + c['status'] for c in d['cases'])"; }
list "$tmp/j1/results.json" > "$tmp/j1.list"
list "$tmp/j2/results.json" > "$tmp/j2.list"
diff "$tmp/j1.list" "$tmp/j2.list" > "$tmp/diff" || { cat "$tmp/diff"; fail "--jobs 1 and --jobs 2 differ"; }
n=$(wc -l < "$tmp/j1.list")
[ "$n" -ge 20 ] || fail "only $n cases"
grep -q 'softhsm/p256\] = passed' "$tmp/j1.list" || fail "no SoftHSM case passed"
if [ "$(id -u)" = 0 ] && [ -x /usr/sbin/pcscd ]; then
	grep -q 'vcard/p256\] = passed' "$tmp/j1.list" || fail "no card case passed"
fi
# Every worker had its own environment.
[ -d "$tmp/j2/run/w1" ] && [ -d "$tmp/j2/run/w2" ] || fail "--jobs 2 did not make run/w1 and run/w2"
# The summary: "-" for the latency of a column that ran nothing (no
# suzhou case in this filter), never 0.000 ms; a header says what is counted.
grep -Eq '^suzhou +softhsm/p256 +0 +0 +0 +0 +- +- +- +-$' "$tmp/j1.log" ||
	{ grep '^suzhou' "$tmp/j1.log"; fail "a column that ran nothing shows no '-'"; }
grep -q '0\.000 ms' "$tmp/j1.log" && fail "the summary shows 0.000 ms"
grep -Eq '^ +cases +latency' "$tmp/j1.log" || fail "the summary's header does not say cases"
# On a TTY the live line counts passed/failed/skipped/errors and gives an ETA.
if command -v script > /dev/null; then
	timeout 120 script -q -c "'$tr' run --suites suites --out '$tmp/tty' --filter HB-E01 --jobs 2" \
		/dev/null > "$tmp/tty.log" 2>&1 || true
	tr '\r' '\n' < "$tmp/tty.log" | grep -Eq '^.*\[[0-9]+/[0-9]+\] [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped, [0-9]+ errors, ETA [0-9]+ s' ||
		{ tr '\r' '\n' < "$tmp/tty.log" | tail -n 5; fail "no live counts and ETA on a TTY"; }
fi
# Bad values are refused before the start-up.
for bad in 0 abc 65; do
	rc=0; "$tr" run --suites suites --out "$tmp/bad" --jobs "$bad" > "$tmp/bad.log" 2>&1 || rc=$?
	[ $rc -eq 2 ] && grep -q -- "--jobs '$bad'" "$tmp/bad.log" || { cat "$tmp/bad.log"; fail "--jobs $bad: exit $rc"; }
done
[ ! -e "$tmp/bad/run" ] || fail "a bad --jobs started the environment"
echo "jobs-compare: $n cases, --jobs 1 and --jobs 2 alike: ok"
