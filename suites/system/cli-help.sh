#!/bin/sh
# The command line helps itself: every command's --help, -h and `help NAME`
# print that command's own usage (exit 0), no other command's; a bad
# option is one line and where help is (exit 2); --version names the
# libraries; bad input fails at once without starting anything; the hint
# after `env up` works as printed, and env up draws a live line on a TTY.
set -eu
tr=$(cd "$BUILD" && pwd)/tokenrig
suites=$(pwd)/suites
tmp=$(mktemp -d)
envdir=$tmp/env
down() {
	[ ! -f "$envdir/pids" ] || "$tr" env down --dir "$envdir" > /dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap down EXIT
fail() { echo "FAIL: $*"; exit 1; }

# --- help -------------------------------------------------------------------
"$tr" help > "$tmp/help" || fail "tokenrig help: exit $?"
commands=$(awk '/^commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 } /^$/ && on { on = 0 }' "$tmp/help")
[ "$(echo "$commands" | wc -w)" -ge 8 ] || fail "tokenrig help lists: $commands"
for c in run certify env bench coverage compare history report help; do
	echo "$commands" | grep -qx "$c" || fail "tokenrig help does not list $c"
done
for c in $commands; do
	for form in "$c --help" "$c -h" "help $c"; do
		rc=0; "$tr" $form > "$tmp/out" 2> "$tmp/err" || rc=$?
		[ $rc -eq 0 ] || fail "tokenrig $form: exit $rc"
		[ ! -s "$tmp/err" ] || fail "tokenrig $form wrote to stderr: $(cat "$tmp/err")"
		grep -q "tokenrig $c" "$tmp/out" || fail "tokenrig $form does not name itself"
		for other in $commands; do
			[ "$other" = "$c" ] && continue
			# Another command's synopsis (a mention in passing is fine).
			! grep -qE "^(usage: *| +)tokenrig $other( |\$)" "$tmp/out" ||
				fail "tokenrig $form shows another command's usage ($other):$(cat "$tmp/out")"
		done
		if [ "$form" != "$c --help" ]; then
			"$tr" $c --help | cmp -s - "$tmp/out" || fail "tokenrig $form differs from $c --help"
		fi
	done
done
# Subcommand verbs answer too.
"$tr" env up --help | grep -q "tokenrig env up" || fail "env up --help"
"$tr" history add --help | grep -q "tokenrig history add" || fail "history add --help"

# --- bad options: one line, where help is, exit 2 ----------------------------
one_line() {
	want=$1; shift
	rc=0; "$tr" "$@" > "$tmp/out" 2> "$tmp/err" || rc=$?
	[ $rc -eq 2 ] || fail "tokenrig $*: exit $rc, expected 2"
	[ "$(wc -l < "$tmp/err")" -eq 1 ] || fail "tokenrig $*: not one line:$(cat "$tmp/err")"
	[ ! -s "$tmp/out" ] || fail "tokenrig $*: wrote to stdout: $(cat "$tmp/out")"
	grep -qF -- "$want" "$tmp/err" || fail "tokenrig $*: no '$want' in: $(cat "$tmp/err")"
}
one_line "unknown option '--bogus' (tokenrig run --help)" run --bogus
one_line "unknown option '-x' (tokenrig run --help)" run -x
one_line "option needs a value: '--seed' (tokenrig run --help)" run --seed
one_line "unexpected argument 'extra' (tokenrig run --help)" run extra
one_line "(tokenrig env --help)" env up --bogus
one_line "(tokenrig env --help)" env sideways
one_line "(tokenrig bench --help)" bench --bogus
one_line "(tokenrig coverage --help)" coverage --bogus
one_line "(tokenrig compare --help)" compare --bogus
one_line "(tokenrig compare --help)" compare only-one.json
one_line "(tokenrig history --help)" history add --bogus
one_line "(tokenrig report --help)" report --bogus
one_line "tokenrig certify --help" certify --bogus
one_line "(tokenrig help --help)" help no-such-command
one_line "unknown command 'frobnicate' (tokenrig help)" frobnicate

# --- --version: the tool and the libraries found -----------------------------
"$tr" --version > "$tmp/version" || fail "--version: exit $?"
grep -qE "^tokenrig [0-9]+\.[0-9]+\.[0-9]+ \(revision [^)]+\)" "$tmp/version" ||
	fail "--version: $(cat "$tmp/version")"
for lib in OpenSSL libcurl libmicrohttpd pcsc-lite SoftHSM2; do
	grep -qE "^  $lib +.*[0-9]+\.[0-9]+" "$tmp/version" ||
		fail "--version names no $lib version: $(cat "$tmp/version")"
done

# --- bad input fails at once, before anything starts --------------------------
touch "$tmp/afile"
mkdir "$tmp/empty"
quick() {
	want=$1; shift
	t0=$(date +%s%N)
	one_line "$want" "$@"
	ms=$(( ($(date +%s%N) - t0) / 1000000 ))
	# The start-up takes ~10 s; what fails first fails in well under 2 s.
	[ "$ms" -lt 2000 ] || fail "tokenrig $*: took $ms ms to refuse"
	[ ! -e "$tmp/o/run" ] || fail "tokenrig $*: created $tmp/o/run"
	! pgrep -f "$tmp/o" > /dev/null || fail "tokenrig $*: left a process of $tmp/o"
}
quick "cannot open suites folder" run --suites "$tmp/absent" --out "$tmp/o"
quick "holds no scenario file" run --suites "$tmp/empty" --out "$tmp/o"
quick "matches none" run --suites "$suites" --filter NO-SUCH-ID --out "$tmp/o"
quick "--seed 'abc'" run --suites "$suites" --seed abc --out "$tmp/o"
quick "--case-timeout '0'" run --suites "$suites" --case-timeout 0 --out "$tmp/o"
quick "is not a folder" run --suites "$suites" --filter SC-W01 --out "$tmp/afile/o"
quick "cannot write in /proc" run --suites "$suites" --filter SC-W01 --out /proc/tokenrig-o
[ ! -e "$tmp/afile/o" ] && [ ! -e /proc/tokenrig-o ] || fail "--out was created anyway"
[ -z "$(ls -A "$tmp/empty")" ] || fail "the probe of --out was left behind"

# --- env up: a live line on a TTY, and a hint that works as printed -----------
# `script` gives env up a TTY; its output keeps the live line's redraws.
(timeout 120 script -qec "'$tr' env up --no-cards --dir '$envdir'" "$tmp/tty" \
	> /dev/null 2>&1) || { tail -n 5 "$tmp/tty"; fail "env up failed"; }
grep -q "$(printf '\033\\[K')env up: [0-9.]* s" "$tmp/tty" || fail "env up drew no live line on a TTY"
esc=$(printf '\033')
tr '\r' '\n' < "$tmp/tty" | sed "s/$esc\\[K//g" | sed -n '/^environment up in /,$p' |
	sed -n 's/^  //p' > "$tmp/hint"
[ "$(wc -l < "$tmp/hint")" -eq 3 ] || fail "the hint: $(cat "$tmp/hint")"
grep -q " env down --dir " "$tmp/hint" || fail "the hint has no env down: $(cat "$tmp/hint")"
# A SAN=1 interposer needs the ASan runtime first in the plain pkcs11-tool.
pre=$(. "$envdir/env.sh" && ldd "$TOKENRIG_P11_MODULE" | awk '/libasan/ { print $3 }')
{
	echo "set -e"
	[ -z "$pre" ] || echo "export LD_PRELOAD='$pre' ASAN_OPTIONS=detect_leaks=0"
	cat "$tmp/hint"
} > "$tmp/hint.sh"
(cd / && timeout 60 sh "$tmp/hint.sh") > "$tmp/hint.out" 2>&1 ||
	{ cat "$tmp/hint.out"; fail "the hint after env up does not work as printed"; }
grep -q "Private Key Object" "$tmp/hint.out" || fail "the hint's pkcs11-tool listed no key"
grep -q "is down" "$tmp/hint.out" || fail "the hint's env down: $(cat "$tmp/hint.out")"
# bench --runs N: a live line per run on a TTY, showing the run's own last line.
(timeout 300 script -qec "'$tr' bench --runs 2 --count 20 --warmup 2 --rounds 2 --threads 1 \
	--kinds softhsm --out '$tmp/bench' --json '$tmp/bench.json'" "$tmp/bench.tty" > /dev/null 2>&1) ||
	{ tail -n 5 "$tmp/bench.tty"; fail "bench failed"; }
grep -q "$(printf '\033\\[K')bench run 1 of 2: [0-9.]* s" "$tmp/bench.tty" ||
	fail "bench drew no live line on a TTY"
tr '\r' '\n' < "$tmp/bench.tty" | sed "s/$esc\\[K//g" | grep -q "^bench run 2 of 2 done" ||
	fail "bench: no line when a run is done"
echo "cli: every command helps itself; bad options one line; --version lists the libraries;"
echo "     bad input refused at once; env up's hint works as printed"
