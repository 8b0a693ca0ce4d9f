#!/bin/sh
# The interposer's README promises to forward every call: it must name
# every symbol the built module exports (nm -D) and say that the slot list
# is sorted by token label, the one answer that differs from the module's
# without any rule.
set -eu
BUILD=${BUILD:-build}
SHIM="$BUILD/tokenrig-p11shim.so"
README=emulators/p11shim/README.md
[ -f "$SHIM" ] || { echo "no $SHIM (build it first)"; exit 1; }
command -v nm >/dev/null || { echo "nm missing (binutils)"; exit 1; }

syms=$(nm -D --defined-only "$SHIM" | awk '$2 == "T" { print $3 }')
[ -n "$syms" ] || { echo "FAIL: $SHIM exports nothing"; exit 1; }
n=0
for s in $syms; do
	grep -q "\`[^\`]*\\b$s\\b" "$README" || { echo "FAIL: $README does not name the export $s"; exit 1; }
	n=$((n + 1))
done
grep -qi "sorted by token label" "$README" || { echo "FAIL: $README does not say the slot list is sorted by label"; exit 1; }
echo "shim-exports-documented: all $n exports named in $README, slot order stated"
