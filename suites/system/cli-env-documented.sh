#!/bin/sh
# Every environment variable the C sources read by name (getenv("NAME"):
# tokenrig, the interposer, the emulators, the fixtures, the unit tests) is
# listed in README.md's "Environment variables" section.
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
grep -rhoE 'getenv\("[A-Za-z_][A-Za-z0-9_]*"\)' --include='*.c' --include='*.h' \
	common fixtures emulators harness suites |
	sed -E 's/getenv\("(.*)"\)/\1/' | sort -u > "$tmp/read"
[ "$(wc -l < "$tmp/read")" -ge 10 ] || { echo "FAIL: found only: $(cat "$tmp/read")"; exit 1; }
# The section: from its heading to the next one.
sed -n '/^## Environment variables$/,/^## /p' README.md > "$tmp/section"
[ -s "$tmp/section" ] || { echo "FAIL: README.md has no '## Environment variables' section"; exit 1; }
missing=""
for v in $(cat "$tmp/read"); do
	grep -q "\`$v\`" "$tmp/section" || missing="$missing $v"
done
[ -z "$missing" ] || { echo "FAIL: read with getenv, not in README.md's Environment variables:$missing"; exit 1; }
echo "env: all $(wc -l < "$tmp/read") variables read by name are documented"
