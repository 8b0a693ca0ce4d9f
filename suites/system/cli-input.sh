#!/bin/sh
# Bad command-line input fails at once (exit 2, one line naming the option),
# before the seconds of start-up; a run works from any folder.
set -eu
tr=$(cd "$BUILD" && pwd)/tokenrig
suites=$(pwd)/suites
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

expect2() {
	want=$1; shift
	rc=0; "$tr" "$@" > "$tmp/out" 2>&1 || rc=$?
	[ $rc -eq 2 ] || { echo "tokenrig $*: exit $rc, expected 2"; cat "$tmp/out"; exit 1; }
	grep -q -- "$want" "$tmp/out" || { echo "tokenrig $*: no '$want' in:"; cat "$tmp/out"; exit 1; }
	[ ! -e "$tmp/o/run" ] || { echo "tokenrig $*: started the environment anyway"; exit 1; }
}
expect2 "--seed 'abc'" run --seed abc --out "$tmp/o"
expect2 "--case-timeout '-1'" run --case-timeout -1 --out "$tmp/o"
expect2 "--case-timeout 'abc'" run --case-timeout abc --out "$tmp/o"
expect2 "matches none" run --suites "$suites" --filter NO-SUCH-ID --out "$tmp/o"
mkdir "$tmp/empty"
expect2 "holds no scenario file" run --suites "$tmp/empty" --out "$tmp/o"
expect2 "cannot open suites folder" run --suites "$tmp/absent" --out "$tmp/o"
echo '{"schema":"tokenrig-bench/1"}' > "$tmp/other.json"
expect2 "not a tokenrig-results/1 file" coverage --suites "$suites" --results "$tmp/other.json"
# From another folder, with the suites given by absolute path: their own
# tokens.conf is used.
(cd "$tmp" && "$tr" run --suites "$suites" --filter SC-W01 --no-cards --out "$tmp/o2" > "$tmp/log" 2>&1) ||
	{ tail -n 5 "$tmp/log"; exit 1; }
grep -q '^scenarios: 2 passed, 0 failed' "$tmp/log" || { tail -n 3 "$tmp/log"; exit 1; }
echo "cli: bad values refused before start-up; runs from any folder"
