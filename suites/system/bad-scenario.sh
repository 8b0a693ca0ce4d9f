#!/bin/sh
# A malformed scenario file is reported as an error naming file:line; the run
# goes on with the other scenarios and exits non-zero.
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/suites/suzhou"
cp suites/suzhou/SZ-REG-OK-register-unit.scn "$tmp/suites/suzhou/"
cat > "$tmp/suites/suzhou/broken.scn" <<'EOS'
[scenario]
ids    = SZ-E05
title  = broken on purpose
portal = suzhou

[step]
do   = ca-login
sight = reg
EOS
rc=0
"$BUILD/tokenrig" run --no-cards --suites "$tmp/suites" --out "$tmp/out" > "$tmp/log" 2>&1 || rc=$?
[ $rc -eq 1 ] || { echo "exit $rc, expected 1"; cat "$tmp/log"; exit 1; }
grep -q "broken.scn:8: action ca-login takes no key 'sight'" "$tmp/out/results.json" ||
	{ echo "no file:line error in results.json"; cat "$tmp/log"; exit 1; }
grep -q '"error": 1' "$tmp/out/results.json" || { echo "error not counted"; exit 1; }
# The good scenario still ran, on every token kind.
[ "$(grep -c '"status": "passed"' "$tmp/out/results.json")" -ge 2 ] ||
	{ echo "the good scenario did not run"; cat "$tmp/log"; exit 1; }
grep -q '^scenarios: [0-9]* passed, 1 failed' "$tmp/log" || { echo "summary line wrong"; cat "$tmp/log"; exit 1; }
echo "malformed scenario reported with file:line; the run went on"
