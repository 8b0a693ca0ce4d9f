#!/bin/sh
# The nightly report, end to end: four runs of one Sichuan scenario copied
# into a temp suites folder, its expectation altered so that the case
# passes, fails, passes, fails; each run goes into the history (the same
# file twice is one run, a truncated file is refused and changes nothing);
# the page is rendered and opened in headless Chromium, whose DOM must show
# the case as newly failing and as flaky, and one matrix row per catalog
# ID, with no console error. The run's junit.xml carries what CI reads.
# The screenshot stays in $OUT/nightly-report.png.
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
catalog=${TOKENRIG_CATALOG:-../shared/spec/failure-paths.md}
[ -f "$catalog" ] || { echo "the catalog is not at $catalog (set TOKENRIG_CATALOG)"; exit 1; }
command -v chromium > /dev/null || { echo "no chromium: run ci/install-deps"; exit 1; }
scn=suites/sichuan/SC-E01-outdated-assistant.scn
db="$tmp/history.sqlite"
mkdir -p "$tmp/suites/sichuan"
copy="$tmp/suites/sichuan/$(basename "$scn")"
grep -q '^expect.message = 插件异常$' "$scn" || { echo "$scn no longer has the expectation this test alters"; exit 1; }

# pass, fail, pass, fail
n=0
for outcome in pass fail pass fail; do
	n=$((n + 1))
	if [ $outcome = pass ]; then
		cp "$scn" "$copy"
	else
		sed 's/^expect.message = 插件异常$/expect.message = 插件异常（改）/' "$scn" > "$copy"
	fi
	rc=0
	timeout 120 "$BUILD/tokenrig" run --suites "$tmp/suites" --out "$tmp/run$n" --filter SC-E01 \
		--no-cards > "$tmp/run$n.log" 2>&1 || rc=$?
	want=0
	[ $outcome = pass ] || want=1
	[ $rc -eq $want ] || { cat "$tmp/run$n.log"; echo "run $n ($outcome) exited $rc"; exit 1; }
	"$BUILD/tokenrig" history add "$tmp/run$n/results.json" --db "$db" --label system-test \
		> "$tmp/add$n.log" || { cat "$tmp/add$n.log"; exit 1; }
	grep -q "run $n added" "$tmp/add$n.log" || { cat "$tmp/add$n.log"; echo "run $n not added"; exit 1; }
done

# What the runs record (results.json and junit.xml of the last, failing run).
json="$tmp/run4/results.json"
xml="$tmp/run4/junit.xml"
jq -e '.tool.version != "" and .tool.revision != "" and .host != "" and .seed > 0
	and (.command_line | test("--filter SC-E01")) and .started != "" and .finished != ""
	and (.versions | has("openssl") and has("softhsm2") and has("opensc") and has("pcsc-lite"))' \
	"$json" > /dev/null || { echo "$json lacks the run's facts"; jq 'del(.cases, .coverage)' "$json"; exit 1; }
xmllint --noout "$xml"
xmllint --xpath 'string(/testsuites/@time)' "$xml" | grep -qE '^[0-9]+\.[0-9]+$' ||
	{ echo "$xml: no testsuites@time"; exit 1; }
for a in timestamp hostname id; do
	[ -n "$(xmllint --xpath "string(/testsuites/testsuite[1]/@$a)" "$xml")" ] ||
		{ echo "$xml: testsuite without $a"; exit 1; }
done
for p in seed revision; do
	[ -n "$(xmllint --xpath "string(/testsuites/testsuite[1]/properties/property[@name='$p']/@value)" "$xml")" ] ||
		{ echo "$xml: testsuite without the $p property"; exit 1; }
done
[ "$(xmllint --xpath 'string(//testcase[failure][1]/failure/@type)' "$xml")" = SC_PLUGIN_ERROR ] ||
	{ echo "$xml: the failure's type is not the answer code"; grep -A3 '<failure' "$xml"; exit 1; }
xmllint --xpath 'string(//testcase[failure][1]/@file)' "$xml" | grep -q 'SC-E01-outdated-assistant.scn$' ||
	{ echo "$xml: the failed testcase does not name its .scn"; exit 1; }

# The same file again is the same run; a truncated file is refused, nothing changes.
"$BUILD/tokenrig" history add "$json" --db "$db" | grep -q "run 4 was already there" ||
	{ echo "the same results file was added twice"; exit 1; }
head -c 2000 "$json" > "$tmp/truncated.json"
rc=0
"$BUILD/tokenrig" history add "$tmp/truncated.json" --db "$db" 2> "$tmp/err" || rc=$?
[ $rc -eq 2 ] && grep -q "truncated.json" "$tmp/err" || { echo "truncated file: exit $rc"; cat "$tmp/err"; exit 1; }
[ "$(sqlite3 "$db" 'SELECT count(*) FROM runs')" -eq 4 ] || { echo "the history does not hold 4 runs"; exit 1; }

"$BUILD/tokenrig" report --db "$db" --html "$tmp/report.html" --markdown "$tmp/summary.md" \
	--catalog "$catalog" > /dev/null
grep -qE '^- newly failing: [1-9]' "$tmp/summary.md" || { cat "$tmp/summary.md"; echo "summary: no newly failing case"; exit 1; }
# Self-contained: nothing is fetched.
if grep -qiE '<script|<link|@import|url\(|src="http' "$tmp/report.html"; then
	echo "the page refers to something outside itself"; exit 1
fi

chrome() {
	timeout 60 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
		--user-data-dir="$tmp/chrome" --enable-logging=stderr --v=0 "$@"
}
chrome --dump-dom "file://$tmp/report.html" > "$tmp/dom.html" 2> "$tmp/chrome-dom.log" ||
	{ cat "$tmp/chrome-dom.log"; echo "chromium could not open the page"; exit 1; }
mkdir -p "$OUT"
chrome --window-size=1400,2400 --screenshot="$OUT/nightly-report.png" "file://$tmp/report.html" \
	> /dev/null 2> "$tmp/chrome-shot.log" || { cat "$tmp/chrome-shot.log"; echo "no screenshot"; exit 1; }
[ -s "$OUT/nightly-report.png" ] || { echo "empty screenshot"; exit 1; }
if grep -iE 'Uncaught|CONSOLE' "$tmp/chrome-dom.log" "$tmp/chrome-shot.log"; then
	echo "console errors"; exit 1
fi

# Newly failing: the case, with the step's expected vs actual.
sed -n '/id="newly-failing"/,/<\/table>/p' "$tmp/dom.html" > "$tmp/newly.html"
grep -q 'SC-E01' "$tmp/newly.html" || { echo "SC-E01 is not in the newly failing list"; exit 1; }
grep -q '插件异常（改）' "$tmp/newly.html" || { echo "the newly failing row lacks the expected answer"; exit 1; }
grep -q 'SC_PLUGIN_ERROR' "$tmp/newly.html" || { echo "the newly failing row lacks the actual answer"; exit 1; }
# Flaky: pass, fail, pass, fail is 3 flips.
sed -n '/id="flaky"/,/<\/table>/p' "$tmp/dom.html" > "$tmp/flaky.html"
grep -q 'SC-E01' "$tmp/flaky.html" || { echo "SC-E01 is not in the flaky list"; exit 1; }
grep -q '<td>3</td>' "$tmp/flaky.html" || { echo "SC-E01 flaky without its 3 flips"; exit 1; }
# The matrix: one row per catalog ID, each once.
grep -oE '^\| [A-Z]{2}-[A-Za-z0-9-]+ ' "$catalog" | sed 's/^| //; s/ $//' | sort -u > "$tmp/catalog-ids"
grep -o 'class="id-row" data-id="[^"]*"' "$tmp/dom.html" | sed 's/.*data-id="//; s/"$//' | sort > "$tmp/matrix-ids"
[ -s "$tmp/catalog-ids" ] || { echo "no IDs read from $catalog"; exit 1; }
diff "$tmp/catalog-ids" "$tmp/matrix-ids" > "$tmp/ids.diff" ||
	{ echo "matrix rows differ from the catalog's IDs:"; cat "$tmp/ids.diff"; exit 1; }
# SC-E01's failing cell and four points per trend chart.
grep -q 'data-id="SC-E01"><td class="id">SC-E01</td>.*class="cell fail"' "$tmp/dom.html" ||
	{ echo "SC-E01's matrix row shows no failure"; exit 1; }
grep -q 'data-points="4"' "$tmp/dom.html" || { echo "no trend chart with the 4 runs"; exit 1; }
echo "nightly report: 4 runs, SC-E01 newly failing and flaky, $(wc -l < "$tmp/matrix-ids") catalog rows; screenshot $OUT/nightly-report.png"
