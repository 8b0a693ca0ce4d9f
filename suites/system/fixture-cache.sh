#!/bin/sh
# timeout: 900
# The fixture cache (harness/fixture_cache.h): a second run copies the
# fixtures of the first (the same CAs, the same results) instead of making
# them; the cases change only the run's copies (HB-E07 revokes a certificate
# and writes a new one to the token); a cache file damaged by hand is found,
# said in one line, discarded and made anew; --fresh makes them anew and
# replaces the entry.
set -eu
tmp=$(mktemp -d /tmp/tokenrig-fxcache-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export TOKENRIG_CACHE="$tmp/cache"
fail() { echo "FAIL: $*"; exit 1; }

run() { # NAME ARGS...: a run into $tmp/NAME, its output in $tmp/NAME.log
	name=$1; shift
	"$BUILD/tokenrig" run --filter HB-E07 --out "$tmp/$name" "$@" > "$tmp/$name.log" 2>&1 ||
		{ cat "$tmp/$name.log"; fail "run $name exited non-zero"; }
	grep -q '^tokenrig: start-up: ' "$tmp/$name.log" || fail "run $name printed no start-up figures"
}
statuses() { jq -r '.cases[] | "\(.name) \(.status)"' "$1/results.json" | sort; }
# Every file of every entry as its manifest says (sha256sum, independently).
entries_intact() {
	for m in "$TOKENRIG_CACHE"/*/MANIFEST; do
		e=$(dirname "$m")
		grep '^file ' "$m" | while read -r _ sum _ _ rel; do
			echo "$sum  $e/$rel"
		done | sha256sum -c --quiet - || return 1
	done
}
ca() { sha256sum < "$1/run/pki/hebei/root.pem"; }

# 1. Cold, then warm: same fixtures, same results, much less start-up.
run cold
grep -q 'start-up: fixture cache miss' "$tmp/cold.log" || fail "the first run did not miss"
ls "$TOKENRIG_CACHE"/*/MANIFEST > /dev/null 2>&1 || fail "nothing published in $TOKENRIG_CACHE"
run warm
grep -q 'start-up: fixtures from the cache' "$tmp/warm.log" || { cat "$tmp/warm.log"; fail "the second run did not use the cache"; }
[ "$(ca "$tmp/cold")" = "$(ca "$tmp/warm")" ] || fail "the second run has other CAs than the first"
statuses "$tmp/cold" > "$tmp/cold.st"
statuses "$tmp/warm" > "$tmp/warm.st"
[ -s "$tmp/cold.st" ] || fail "no cases ran"
diff "$tmp/cold.st" "$tmp/warm.st" || fail "the cached run's results differ"
# The cases revoked and re-issued certificates in the runs' copies only.
entries_intact || fail "a run changed the cache itself"
echo "cold $(grep -o 'ready in [0-9.]* s' "$tmp/cold.log"), warm $(grep -o 'ready in [0-9.]* s' "$tmp/warm.log")"

# 2. A damaged cache file: detected, one line, discarded, made anew.
run nc1 --no-cards
entry=$(grep -l '^created ' "$TOKENRIG_CACHE"/*/MANIFEST | xargs ls -t | head -n 1 | xargs dirname)
obj=$(find "$entry/softhsm/tokens" -name '*.object' ! -name token.object | head -n 1)
[ -n "$obj" ] || fail "no token object in $entry"
printf 'x' >> "$obj"
run nc2 --no-cards
n=$(grep -c 'fixture cache entry .* is corrupt .*: discarded, regenerating' "$tmp/nc2.log" || true)
[ "$n" -eq 1 ] || { cat "$tmp/nc2.log"; fail "the damaged file was reported $n times, not once"; }
grep -q "${obj#"$entry"/}" "$tmp/nc2.log" || fail "the notice does not name the damaged file"
grep -q 'start-up: .*softhsm tokens' "$tmp/nc2.log" || fail "the tokens were not made anew"
[ "$(ca "$tmp/nc1")" != "$(ca "$tmp/nc2")" ] || fail "the damaged entry's CAs were used"
[ "$(statuses "$tmp/nc1")" = "$(statuses "$tmp/nc2")" ] || fail "results differ after regenerating"
entries_intact || fail "the regenerated entry does not verify"

# 3. --fresh: made anew although cached, and the entry replaced.
run nc3 --no-cards
grep -q 'start-up: fixtures from the cache' "$tmp/nc3.log" || fail "the regenerated entry was not used"
[ "$(ca "$tmp/nc2")" = "$(ca "$tmp/nc3")" ] || fail "the regenerated entry's CAs were not used"
run nc4 --no-cards --fresh
grep -q 'fixture cache skipped (--fresh)' "$tmp/nc4.log" || fail "--fresh used the cache"
[ "$(ca "$tmp/nc3")" != "$(ca "$tmp/nc4")" ] || fail "--fresh kept the old CAs"
run nc5 --no-cards
grep -q 'start-up: fixtures from the cache' "$tmp/nc5.log" || fail "no cache after --fresh"
[ "$(ca "$tmp/nc4")" = "$(ca "$tmp/nc5")" ] || fail "--fresh did not replace the entry"
[ "$(statuses "$tmp/nc1")" = "$(statuses "$tmp/nc5")" ] || fail "results differ after --fresh"
entries_intact || fail "an entry does not verify"
ls -A "$TOKENRIG_CACHE" | grep -q '^\.' && fail "temporary folders left in the cache"
echo "fixture cache: reused, verified, damage regenerated, --fresh replaces"
