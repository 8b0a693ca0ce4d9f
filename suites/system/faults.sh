#!/bin/sh
# Fault injection (issue 13): signals mid-run, a killed run followed by a new
# one into the same --out, the portal or the virtual cards killed mid-run, a
# full disk on --out, bad CLI values. Checks files, exit codes and what is
# left running: no process the run recorded in OUT/run/pids survives it.
# Each run is bounded by `timeout` (60-90 s); the whole test takes about 75 s.
#
# What fails on the old code: a run after `kill -9` was refused (and had
# deleted results.json); SIGINT from a non-interactive shell was ignored and
# SIGTERM left no mark; a dead portal or card made failures ("status is '0'",
# "the step was refused"); --threshold abc exited without a word and
# --count abc was taken as 0. The full-disk sub-test guards behaviour that
# already held (exit 1 naming the file and "No space left on device").
set -eu
tr=$(cd "$BUILD" && pwd)/tokenrig
suites=$(pwd)/suites
tmp=$(mktemp -d)
mounted=
cleanup() {
	[ -z "$mounted" ] || umount "$mounted" 2>/dev/null || true
	for f in "$tmp"/*/run/pids "$tmp"/*.pids; do
		[ -f "$f" ] && leftovers "$f" | while read -r name pid; do kill -9 "$pid" 2>/dev/null; done
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "faults: $*"; exit 1; }

# The recorded processes (pids file: "name pid starttime") that still run:
# same start time, not a zombie. The run's own "owner" line is not a child.
leftovers() {
	while read -r name pid start; do
		[ "$name" = owner ] && continue
		[ -r "/proc/$pid/stat" ] || continue
		set -- $(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null) || continue
		[ $# -ge 20 ] || continue
		st=$1; shift 19
		[ "$1" = "$start" ] && [ "$st" != Z ] && echo "$name $pid"
	done < "$1"
	return 0
}

. "$suites/system/lib/poll.sh"
no_leftovers() { [ -z "$(leftovers "$1")" ]; }

# Polls (bounded, 10 s) until nothing recorded in $1 runs.
none_left() {
	poll_until 10 no_leftovers "$1" || { echo "left running after $2:"; leftovers "$1"; return 1; }
}

# Polls until OUT/results.json holds at least N cases (bounded, 60 s) while
# the run ($3) goes on.
cases_in() {
	python3 -c 'import json,sys
try: print(len(json.load(open(sys.argv[1]))["cases"]))
except Exception: print(0)' "$1/results.json"
}
has_cases() { [ "$(cases_in "$1")" -ge "$2" ]; }
wait_cases() {
	rc=0
	poll_alive "$3" 60 has_cases "$1" "$2" || rc=$?
	[ $rc -ne 1 ] || fail "$1: not $2 cases within 60 s"
	[ $rc -ne 2 ] || fail "$1: the run ended before $2 cases"
	[ $rc -eq 0 ] || fail "$1: waiting for $2 cases: poll_alive exit $rc"
}

# Starts a SoftHSM-only run of every suite in the background: $! is its PID.
start_run() {
	timeout 60 "$tr" run --suites "$suites" --no-cards --out "$1" > "$1.log" 2>&1 &
}

# FAULTS="2 3" runs only those sub-tests (default: all six).
want() { case " ${FAULTS:-1 2 3 4 5 6} " in *" $1 "*) return 0 ;; esac; return 1; }

json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

# --- 1. kill -9, then a new run into the same --out -------------------------
if want 1; then
o=$tmp/k
mkdir -p "$o"
start_run "$o"; pid=$!
wait_cases "$o" 3 "$pid"
cp "$o/run/pids" "$tmp/k.pids"
# timeout's child is the run: kill that one, as a crash would.
run_pid=$(pgrep -P "$pid" -x tokenrig || true)
[ -n "$run_pid" ] || fail "no run process under $pid"
kill -9 "$run_pid"
wait "$pid" 2>/dev/null || true
json "$o/results.json" 'len(d["cases"])' > /dev/null || fail "results.json of the killed run is not complete JSON"
rc=0
timeout 60 "$tr" run --suites "$suites" --filter SC-W01 --no-cards --out "$o" > "$tmp/k2.log" 2>&1 || rc=$?
[ $rc -eq 0 ] || { cat "$tmp/k2.log"; fail "the run after kill -9 exited $rc"; }
grep -q "is gone; cleaned it up" "$tmp/k2.log" || { cat "$tmp/k2.log"; fail "no line about the cleanup"; }
[ "$(json "$o/results.json" 'd["summary"]["passed"]')" = 2 ] || fail "the new run's results are not in $o"
none_left "$tmp/k.pids" "kill -9 and a new run"

# A run that cannot start (an env is up in its run folder) keeps the earlier results.
o=$tmp/e
mkdir -p "$o"
printf '{"schema": "tokenrig-results/1", "marker": 1}\n' > "$o/results.json"
echo '<testsuites/>' > "$o/junit.xml"
timeout 60 "$tr" env up --dir "$o/run" --no-cards > "$tmp/e.log" 2>&1 || { cat "$tmp/e.log"; fail "env up"; }
cp "$o/run/pids" "$tmp/e.pids"
rc=0
timeout 60 "$tr" run --suites "$suites" --filter SC-W01 --no-cards --out "$o" > "$tmp/e2.log" 2>&1 || rc=$?
timeout 60 "$tr" env down --dir "$o/run" > /dev/null 2>&1 || true
[ $rc -eq 1 ] || { cat "$tmp/e2.log"; fail "a run over a live env exited $rc, expected 1"; }
grep -q "already up" "$tmp/e2.log" || { cat "$tmp/e2.log"; fail "no refusal line"; }
[ "$(json "$o/results.json" 'd.get("marker")')" = 1 ] || fail "a refused run touched results.json"
[ -s "$o/junit.xml" ] || fail "a refused run deleted junit.xml"
none_left "$tmp/e.pids" "env down"
fi

# --- 2. SIGTERM and SIGINT mid-run ------------------------------------------
if want 2; then
for sig in TERM INT; do
	o=$tmp/$sig
	mkdir -p "$o"
	# sh -c: a background job of a non-interactive shell starts with SIGINT ignored.
	sh -c "exec timeout 60 '$tr' run --suites '$suites' --no-cards --out '$o' > '$o.log' 2>&1" &
	pid=$!
	wait_cases "$o" 3 "$pid"
	cp "$o/run/pids" "$tmp/$sig.pids"
	run_pid=$(pgrep -P "$pid" -x tokenrig || true)
	[ -n "$run_pid" ] || fail "no run process under $pid"
	kill -"$sig" "$run_pid"
	rc=0; wait "$pid" || rc=$?
	want=$([ $sig = TERM ] && echo 143 || echo 130)
	[ $rc -eq "$want" ] || { tail -n 5 "$o.log"; fail "SIG$sig: exit $rc, expected $want"; }
	n=$(json "$o/results.json" 'len(d["cases"])')
	[ "$(json "$o/results.json" 'd["interrupted"]["signal"]')" = "SIG$sig" ] ||
		fail "SIG$sig: results.json has no interrupted mark"
	[ "$(json "$o/results.json" 'd["interrupted"]["after_cases"]')" = "$n" ] ||
		fail "SIG$sig: after_cases is not the $n cases recorded"
	[ "$(json "$o/results.json" 'd["summary"]["passed"] + d["summary"]["skipped"]')" = "$n" ] ||
		fail "SIG$sig: a case in flight did not finish cleanly"
	grep -q "run interrupted by SIG$sig after $n cases" "$o/junit.xml" ||
		fail "SIG$sig: junit.xml has no interrupted testcase"
	none_left "$tmp/$sig.pids" "SIG$sig"
done
fi

# --- 3. the portal killed mid-run: the rig's fault, never the product's ------
if want 3; then
o=$tmp/p
mkdir -p "$o"
start_run "$o"; pid=$!
wait_cases "$o" 3 "$pid"
cp "$o/run/pids" "$tmp/p.pids"
portal=$(awk '$1 == "portal" { print $2 }' "$o/run/pids")
kill -9 "$portal"
rc=0; wait "$pid" || rc=$?
[ $rc -eq 1 ] || { tail -n 5 "$o.log"; fail "portal killed: exit $rc, expected 1"; }
[ "$(json "$o/results.json" 'd["summary"]["failed"]')" = 0 ] ||
	fail "portal killed: cases were blamed on the product: $(json "$o/results.json" \
		'[c["message"] for c in d["cases"] if c["status"] == "failed"][:3]')"
[ "$(json "$o/results.json" "sum(1 for c in d['cases'] if c['status'] == 'error' and
	'rig fault: the portal process (PID $portal) died' in c['message'])")" -gt 0 ] ||
	fail "portal killed: no error names the rig fault"
grep -q '"interrupted"' "$o/results.json" && fail "portal killed: marked interrupted"
none_left "$tmp/p.pids" "the portal's death"
fi

# --- 6. the virtual cards killed mid-run (when this machine has them) -------
if want 6; then
o=$tmp/c
mkdir -p "$o"
timeout 90 "$tr" run --suites "$suites" --filter suzhou --out "$o" > "$o.log" 2>&1 &
pid=$!
wait_cases "$o" 3 "$pid"
if grep -q '^card0 ' "$o/run/pids"; then
	cp "$o/run/pids" "$tmp/c.pids"
	# Every card of the run's first worker; the error may name any of them
	# (they die at once; an ASan build's processes take a while to go).
	killed=$(awk '$1 ~ /^card[0-9]/ { printf "%s%s=%s", sep, $1, $2; sep = " " }' "$o/run/pids")
	kill -9 $(awk '$1 ~ /^card[0-9]/ { print $2 }' "$o/run/pids")
	rc=0; wait "$pid" || rc=$?
	[ $rc -eq 1 ] || { tail -n 5 "$o.log"; fail "cards killed: exit $rc, expected 1"; }
	[ "$(json "$o/results.json" 'd["summary"]["failed"]')" = 0 ] ||
		fail "cards killed: cases were blamed on the product: $(json "$o/results.json" \
			'[c["message"] for c in d["cases"] if c["status"] == "failed"][:3]')"
	[ "$(json "$o/results.json" "sum(1 for c in d['cases'] for k in '$killed'.split()
		if c['status'] == 'error' and 'rig fault: the virtual card process %s (PID %s) died'
		% tuple(k.split('=')) in c['message'])")" -gt 0 ] ||
		fail "cards killed: no error names the rig fault ($killed): $(json "$o/results.json" \
			'[c["message"][:200] for c in d["cases"] if c["status"] == "error"][:3]')"
	none_left "$tmp/c.pids" "the cards' death"
else
	kill -TERM "$(pgrep -P "$pid" -x tokenrig)" 2>/dev/null || true
	wait "$pid" || true
	echo "faults: no virtual cards on this machine; the card sub-test is skipped"
fi
fi

# --- 4. a full disk on --out ------------------------------------------------
if want 4; then
if mkdir -p "$tmp/full" && mount -t tmpfs -o size=64k tmpfs "$tmp/full" 2>/dev/null; then
	mounted=$tmp/full
	mkdir -p "$tmp/full/o" "$tmp/fullrun"
	# The environment lives elsewhere (OUT/run is a link): the result files hit the full disk.
	ln -s "$tmp/fullrun" "$tmp/full/o/run"
	dd if=/dev/zero of="$tmp/full/fill" bs=4k 2>/dev/null || true
	rc=0
	timeout 60 "$tr" run --suites "$suites" --filter SC-W01 --no-cards --out "$tmp/full/o" \
		> "$tmp/full.log" 2>&1 || rc=$?
	[ $rc -eq 1 ] || { cat "$tmp/full.log"; fail "full disk: exit $rc, expected 1"; }
	grep -q "No space left on device" "$tmp/full.log" ||
		{ cat "$tmp/full.log"; fail "full disk: no clear message"; }
	umount "$tmp/full"
	mounted=
else
	echo "faults: full disk: cannot mount a tmpfs here (not root?); sub-test skipped"
fi
fi

# --- 5. bad CLI values ------------------------------------------------------
if want 5; then
expect2() {
	want=$1; shift
	rc=0; "$tr" "$@" > "$tmp/cli" 2>&1 || rc=$?
	[ $rc -eq 2 ] || { cat "$tmp/cli"; fail "tokenrig $*: exit $rc, expected 2"; }
	grep -q -- "$want" "$tmp/cli" || { cat "$tmp/cli"; fail "tokenrig $*: no '$want'"; }
}
echo '{}' > "$tmp/a.json"
expect2 "--threshold 'abc'" compare "$tmp/a.json" "$tmp/a.json" --threshold abc
expect2 "--threshold '0'" compare "$tmp/a.json" "$tmp/a.json" --threshold 0
expect2 "--alpha '2'" compare "$tmp/a.json" "$tmp/a.json" --alpha 2
expect2 "--alpha 'nan'" compare "$tmp/a.json" "$tmp/a.json" --alpha nan
expect2 "--min-us '1us'" compare "$tmp/a.json" "$tmp/a.json" --min-us 1us
for o in count warmup rounds threads runs; do
	expect2 "--$o 'abc'" bench --out "$tmp/b" --$o abc
	expect2 "--$o '-1'" bench --out "$tmp/b" --$o -1
done
expect2 "--threads '65'" bench --out "$tmp/b" --threads 65
[ ! -e "$tmp/b" ] || fail "bench started with a bad value"
fi

echo "faults: sub-tests ${FAULTS:-1 2 3 4 5 6} (kill -9 + re-run, SIGTERM/SIGINT, dead portal, dead cards, full disk, bad CLI values): ok"
