#!/bin/sh
# A run under a deep --out: its UNIX sockets (pcscd's, the cards' control
# sockets) would be longer than sun_path holds (108 bytes), and the card
# columns errored ("card 0 did not start", then "pcscd ... did not answer")
# for any --out past ~85 bytes. Now the cards' control sockets are reached
# through their folder (/proc/self/fd/N/NAME) and pcscd's through a short
# link in /tmp, removed with it. Past 900 bytes SoftHSM2 cannot read its
# own configuration (lines of 1023 bytes): refused at once, in one line.
# timeout: 300
set -eu
tmp=$(mktemp -d /tmp/tokenrig-deep-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "deep-out: $*"; cat "$tmp/log" 2>/dev/null | tail -n 20; exit 1; }
seg=$(printf 'd%.0s' $(seq 200))
deep="$tmp/$seg/$seg/$seg/$seg"
[ ${#deep} -le 900 ] || fail "the test's own path is ${#deep} bytes"
before=$(ls -d /tmp/tokenrig-sock-* 2>/dev/null | wc -l)

cards="--no-cards"
want="2 passed, 0 failed, 5 skipped"
if [ "$(id -u)" -eq 0 ] && [ -x /usr/sbin/pcscd ]; then
	cards=""
	want="5 passed, 0 failed, 2 skipped"  # TK-E01 is for softhsm and vcard only
fi
rc=0
"$BUILD/tokenrig" run --out "$deep" --filter TK-E01 --jobs 1 $cards > "$tmp/log" 2>&1 || rc=$?
[ $rc -eq 0 ] || fail "a ${#deep}-byte --out: exit $rc"
grep -q "scenarios: $want" "$tmp/log" || fail "a ${#deep}-byte --out: not '$want'"
[ -s "$deep/results.json" ] || fail "no results.json under the deep --out"
after=$(ls -d /tmp/tokenrig-sock-* 2>/dev/null | wc -l)
[ "$after" -le "$before" ] || fail "a short link to pcscd's socket was left in /tmp"

# env up leaves its daemons running: env down removes the link with them.
if [ -z "$cards" ]; then
	rc=0
	"$BUILD/tokenrig" env up --dir "$deep/env" > "$tmp/log" 2>&1 || rc=$?
	[ $rc -eq 0 ] || fail "env up under a deep --dir: exit $rc"
	[ "$(ls -d /tmp/tokenrig-sock-* 2>/dev/null | wc -l)" -gt "$before" ] ||
		fail "env up under a deep --dir: no short link to pcscd's socket"
	"$BUILD/tokenrig" env down --dir "$deep/env" > "$tmp/log" 2>&1 || fail "env down"
	[ "$(ls -d /tmp/tokenrig-sock-* 2>/dev/null | wc -l)" -le "$before" ] ||
		fail "env down left the short link to pcscd's socket in /tmp"
fi

# Too deep: refused before anything starts, nothing made.
deeper="$deep/$seg"
rc=0
"$BUILD/tokenrig" run --out "$deeper" --no-cards > "$tmp/log" 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "a ${#deeper}-byte --out: exit $rc, expected 2"
grep -q "tokenrig run: --out: ${#deeper} bytes as an absolute path, at most 900" "$tmp/log" ||
	fail "a ${#deeper}-byte --out: not said in one line"
[ "$(wc -l < "$tmp/log")" -eq 1 ] || fail "more than one line for a too deep --out"
[ ! -e "$deeper" ] || fail "a refused --out was made"
rc=0
"$BUILD/tokenrig" env up --dir "$deeper" --no-cards > "$tmp/log" 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "env up --dir too deep: exit $rc, expected 2"
for cmd in "bench --out" "certify --module softhsm --out"; do
	rc=0
	"$BUILD/tokenrig" $cmd "$deeper" > "$tmp/log" 2>&1 || rc=$?
	[ $rc -eq 2 ] && grep -q "at most 900" "$tmp/log" || fail "$cmd too deep: exit $rc"
done
[ ! -e "$deeper" ] || fail "a refused folder was made"
if [ -n "$cards" ]; then
	echo "SKIP: the SoftHSM part passed; the card and pcscd sockets need root"
	exit 77
fi
echo "deep-out: a ${#deep}-byte --out runs its cards; ${#deeper} bytes refused in one line"
