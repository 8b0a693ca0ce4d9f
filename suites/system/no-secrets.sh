#!/bin/sh
# No PIN or SO PIN appears in any log, result or report of the run. The PINs
# come from the run's own env.sh (the one file meant to hold them) and the
# Suzhou rule (last 6 of each operator's ID); grep -w, because a PIN is by
# that rule also the tail of an operator ID, which reports may show.
set -eu
run="$OUT/run"
pins=$(mktemp)
trap 'rm -f "$pins"' EXIT
sed -n "s/^export TOKENRIG_\(USER\|SO\)_PIN='\(.*\)'$/\2/p" "$run/env.sh" > "$pins"
grep -o '"operator_id": "[0-9X]*"' "$run/tokens.json" | sed 's/.*"\([0-9X]*\)"$/\1/' |
	sed -E 's/.*(.{6})$/\1/' >> "$pins"
n=$(grep -c . "$pins")
[ "$n" -ge 2 ] || { echo "could not learn the PINs of the run ($n)"; exit 1; }
# The check must be able to fail: env.sh does hold the PINs.
grep -qwFf "$pins" "$run/env.sh" || { echo "positive control failed: no PIN found in env.sh"; exit 1; }
found=0
for f in "$OUT/results.json" "$OUT/junit.xml" "$run/portal.log" "$LOG"; do
	[ -f "$f" ] || { echo "missing $f"; exit 1; }
	if grep -nwFf "$pins" "$f" > /dev/null; then
		echo "a PIN appears in $f"
		found=1
	fi
done
[ $found -eq 0 ]
echo "no PIN in results, JUnit, portal log or run log ($n PINs checked)"
