#!/bin/sh
# Shards: a filtered matrix (Hebei's error cases on SoftHSM and the cards) run
# whole and as 3 shards (--shard 1/3, and --shard auto from TOKENRIG_SHARD_*
# and GitLab's CI_NODE_*), merged by `tokenrig merge`: the merge has the whole
# run's cases with their statuses, summary and coverage, and coverage,
# history add and report take it. Balanced by the whole run's durations, the
# same. The merge refuses an overlap and a run that is no shard (exit 2),
# and names a missing shard (exit 1).
# timeout: 900
set -eu
tr=$BUILD/tokenrig
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
filter=HB-E0

run() { # run OUT [args...]
	out=$1; shift
	rc=0
	"$tr" run --suites suites --filter "$filter" --out "$out" "$@" > "$out.log" 2>&1 || rc=$?
	[ $rc -le 1 ] || { tail -n 20 "$out.log"; fail "run $*: exit $rc"; }
	echo $rc > "$out.rc"
}
# name<TAB>status of every case, sorted: what "the same run" means here
cases() { jq -r '.cases[] | .name + "\t" + .status' "$1/results.json" | sort; }

run "$tmp/whole"
run "$tmp/s1" --shard 1/3
(export TOKENRIG_SHARD_INDEX=2 TOKENRIG_SHARD_TOTAL=3; run "$tmp/s2" --shard auto)
(export CI_NODE_INDEX=3 CI_NODE_TOTAL=3; run "$tmp/s3" --shard auto)

n=$(jq '.cases | length' "$tmp/whole/results.json")
[ "$n" -ge 30 ] || fail "the filter $filter ran $n cases"
jq -e '[.cases[].kind] | index("softhsm") and (index("vcard") or index("opensc"))' \
	"$tmp/whole/results.json" > /dev/null || fail "no SoftHSM and card cases in $filter"
sum=0
for i in 1 2 3; do
	jq -e ".shard == {\"index\": $i, \"total\": 3}" "$tmp/s$i/results.json" > /dev/null ||
		fail "s$i: shard $(jq -c .shard "$tmp/s$i/results.json")"
	k=$(jq '.cases | length' "$tmp/s$i/results.json")
	[ "$k" -gt 0 ] || fail "shard $i ran no case"
	sum=$((sum + k))
	[ "$(jq -r .case_list_sha256 "$tmp/s$i/results.json")" = \
	  "$(jq -r .case_list_sha256 "$tmp/whole/results.json")" ] || fail "s$i: another case list"
done
[ "$sum" -eq "$n" ] || fail "the shards ran $sum cases, the whole run $n"

# --- the merge is the whole run ----------------------------------------------
rc=0
"$tr" merge "$tmp/s3" "$tmp/s1" "$tmp/s2" --out "$tmp/merged" > "$tmp/merge.log" 2>&1 || rc=$?
cat "$tmp/merge.log"
[ $rc -eq "$(cat "$tmp/whole.rc")" ] || fail "merge: exit $rc, the whole run $(cat "$tmp/whole.rc")"
grep -q "^merge: 3 of 3 shards, $n cases" "$tmp/merge.log" || fail "merge said: $(cat "$tmp/merge.log")"
cases "$tmp/whole" > "$tmp/whole.cases"
cases "$tmp/merged" > "$tmp/merged.cases"
diff "$tmp/whole.cases" "$tmp/merged.cases" || fail "the merge's cases differ from the whole run's"
# shards by count are slices of the case list: the merge keeps the whole run's order
[ "$(jq -c '[.cases[].name]' "$tmp/whole/results.json")" = \
  "$(jq -c '[.cases[].name]' "$tmp/merged/results.json")" ] || fail "the merge's order differs"
for key in summary coverage; do
	[ "$(jq -S ".$key" "$tmp/whole/results.json")" = "$(jq -S ".$key" "$tmp/merged/results.json")" ] ||
		fail "the merge's $key differs from the whole run's"
done
jq -e '.schema == "tokenrig-results/1" and .merged.total == 3 and (.merged.missing | length) == 0
	and (has("shard") | not) and (.latency | length) > 0' "$tmp/merged/results.json" > /dev/null ||
	fail "merged header: $(jq -c '{schema, merged, shard}' "$tmp/merged/results.json")"
xmllint --noout "$tmp/merged/junit.xml" || fail "merged junit.xml is not XML"
[ "$(grep -c '<testcase ' "$tmp/merged/junit.xml")" -eq "$n" ] || fail "merged junit.xml: not $n testcases"
[ "$(grep -o '<testsuites [^>]*tests="[0-9]*"' "$tmp/merged/junit.xml" | sed 's/.*tests="//; s/"//')" \
	-eq "$n" ] || fail "merged junit.xml: testsuites@tests"

# coverage says the same of the merge as of the whole run; history and report take it
rc1=0; "$tr" coverage --results "$tmp/whole/results.json" > "$tmp/cov.whole" 2>&1 || rc1=$?
rc2=0; "$tr" coverage --results "$tmp/merged/results.json" > "$tmp/cov.merged" 2>&1 || rc2=$?
[ $rc1 -eq $rc2 ] && [ $rc2 -le 1 ] || fail "coverage: exit $rc2 on the merge, $rc1 on the whole run"
diff "$tmp/cov.whole" "$tmp/cov.merged" || fail "coverage differs on the merge"
"$tr" history add "$tmp/merged/results.json" --db "$tmp/h.sqlite" --label shards > "$tmp/h.log" 2>&1 ||
	{ cat "$tmp/h.log"; fail "history add refused the merge"; }
"$tr" report --db "$tmp/h.sqlite" --html "$tmp/r.html" --markdown "$tmp/r.md" > "$tmp/r.log" 2>&1 ||
	{ cat "$tmp/r.log"; fail "report on the merge failed"; }
[ -s "$tmp/r.html" ] || fail "no report page"

# --- balanced by the whole run's durations: the same cases -------------------
for i in 1 2 3; do
	run "$tmp/d$i" --shard "$i/3" --shard-durations "$tmp/whole/results.json"
done
rc=0
"$tr" merge "$tmp/d1" "$tmp/d2" "$tmp/d3" --out "$tmp/dmerged" > "$tmp/dmerge.log" 2>&1 || rc=$?
[ $rc -eq "$(cat "$tmp/whole.rc")" ] ||
	{ cat "$tmp/dmerge.log"; fail "merge by durations: exit $rc, the whole run $(cat "$tmp/whole.rc")"; }
cases "$tmp/dmerged" | diff "$tmp/whole.cases" - || fail "the durations merge's cases differ"

# --- refusals ---------------------------------------------------------------
# An overlap: shard 2 also holds shard 1's first case.
cp -r "$tmp/s2" "$tmp/s2x"
first=$(jq -r '.cases[0].name' "$tmp/s1/results.json")
jq --slurpfile one "$tmp/s1/results.json" '.cases += [$one[0].cases[0]]' "$tmp/s2/results.json" \
	> "$tmp/s2x/results.json"
t=$(grep -o '<testsuites [^>]*tests="[0-9]*"' "$tmp/s2/junit.xml" | sed 's/.*tests="//; s/"//')
sed -i "0,/tests=\"$t\"/s//tests=\"$((t + 1))\"/" "$tmp/s2x/junit.xml"
rc=0
"$tr" merge "$tmp/s1" "$tmp/s2x" "$tmp/s3" --out "$tmp/overlap" > "$tmp/o.log" 2> "$tmp/o.err" || rc=$?
[ $rc -eq 2 ] || fail "an overlap: exit $rc, expected 2: $(cat "$tmp/o.err")"
grep -qF "case '$first' is in both $tmp/s1/results.json (shard 1/3) and $tmp/s2x/results.json (shard 2/3)" \
	"$tmp/o.err" || fail "the overlap is not named: $(cat "$tmp/o.err")"
[ ! -e "$tmp/overlap/results.json" ] || fail "an overlap was written"

# A missing shard: named, exit 1, the rest merged.
rc=0
"$tr" merge "$tmp/s1" "$tmp/s3" --out "$tmp/missing" > "$tmp/m.log" 2> "$tmp/m.err" || rc=$?
[ $rc -eq 1 ] || fail "a missing shard: exit $rc, expected 1"
grep -q "shard 2 of 3 is missing (given: 1/3 ($tmp/s1/results.json), 3/3 ($tmp/s3/results.json))" \
	"$tmp/m.err" || fail "the missing shard is not named: $(cat "$tmp/m.err")"
jq -e '.merged.missing == [2]' "$tmp/missing/results.json" > /dev/null || fail "missing not recorded"

# run: a bad --shard, and auto without a CI's variables, refused before start-up.
rc=0
"$tr" run --suites suites --filter "$filter" --out "$tmp/bad" --shard 4/3 > /dev/null 2> "$tmp/b.err" ||
	rc=$?
[ $rc -eq 2 ] && grep -q "shard index must be 1..3" "$tmp/b.err" || fail "--shard 4/3: exit $rc"
rc=0
env -u TOKENRIG_SHARD_INDEX -u TOKENRIG_SHARD_TOTAL -u CI_NODE_INDEX -u CI_NODE_TOTAL \
	-u BUILDKITE_PARALLEL_JOB -u BUILDKITE_PARALLEL_JOB_COUNT -u CIRCLE_NODE_INDEX \
	-u CIRCLE_NODE_TOTAL "$tr" run --suites suites --filter "$filter" --out "$tmp/bad" \
	--shard auto > /dev/null 2> "$tmp/b.err" || rc=$?
[ $rc -eq 2 ] && grep -q "looked for TOKENRIG_SHARD_INDEX/TOKENRIG_SHARD_TOTAL, CI_NODE_INDEX" \
	"$tmp/b.err" || fail "--shard auto without variables: exit $rc: $(cat "$tmp/b.err")"
rc=0
"$tr" run --suites suites --filter "$filter" --out "$tmp/bad" --shard 1/3 \
	--shard-durations "$tmp/no-such.json" > /dev/null 2> "$tmp/b.err" || rc=$?
[ $rc -eq 2 ] && grep -q "shard-durations .*no-such.json" "$tmp/b.err" ||
	fail "--shard-durations of a missing file: exit $rc: $(cat "$tmp/b.err")"
[ ! -e "$tmp/bad/run" ] || fail "a refused --shard started the rig"

# Not a shard; another --out than a shard's; bad options.
rc=0
"$tr" merge "$tmp/whole" --out "$tmp/no" > /dev/null 2> "$tmp/n.err" || rc=$?
[ $rc -eq 2 ] && grep -q "not a shard" "$tmp/n.err" || fail "an unsharded run: exit $rc $(cat "$tmp/n.err")"
rc=0
"$tr" merge "$tmp/s1" "$tmp/s2" "$tmp/s3" --out "$tmp/s1" > /dev/null 2> "$tmp/n.err" || rc=$?
[ $rc -eq 2 ] && grep -q "would overwrite it" "$tmp/n.err" || fail "--out a shard: exit $rc"
rc=0
"$tr" merge "$tmp/s1" > /dev/null 2> "$tmp/n.err" || rc=$?
[ $rc -eq 2 ] && grep -q -- "--out DIR is needed" "$tmp/n.err" || fail "no --out: exit $rc"
rc=0
"$tr" merge --bogus > /dev/null 2> "$tmp/n.err" || rc=$?
[ $rc -eq 2 ] && [ "$(wc -l < "$tmp/n.err")" -eq 1 ] || fail "merge --bogus: exit $rc"
"$tr" merge --help | grep -q -- "--out DIR" || fail "merge --help"
echo "shards: 3 shards of $n cases merged into the whole run (by count and by durations);"
echo "        an overlap refused, a missing shard named"
