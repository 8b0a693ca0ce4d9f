#!/bin/sh
# Isolation of a run's worker processes (issue 11): a case past its deadline,
# a worker killed with kill -9, the portal, a virtual card or pcscd killed
# mid-case. Each time the case in flight is an error naming its step and the
# cause, the run goes on with a fresh worker (the cases after it pass, the
# card ones included), finishes and exits 1, and no process of the run is
# left (every process it starts names the test's folder on its command line).
# Also: the token driver's stderr during a case goes into that case's log,
# not onto the run's output. Scenarios of a temporary suites folder; every
# run bounded by `timeout`. About 90 s.
#
# What fails on the old code: the hung case ended the whole run (exit 3);
# a dead portal or card made every later case an error (no restart); no
# worker existed to kill; the interposer's line went to the screen.
set -eu
tr=$(cd "$BUILD" && pwd)/tokenrig
tmp=$(mktemp -d /tmp/tokenrig-isolation-XXXXXX)
cleanup() {
	pids=$(pgrep -f "$tmp" || true)
	[ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "isolation: $*"; exit 1; }
. suites/system/lib/poll.sh
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

mkdir -p "$tmp/suites/hebei"
cp suites/hebei/HB-SIGN-OK*.scn "$tmp/suites/hebei/"
cp suites/tokens.conf "$tmp/suites/"
# SLOW: how long C_Sign takes, set per sub-test.
cat > "$tmp/slow.scn" <<'EOF'
[scenario]
ids    = HB-SIGN-OK
title  = isolation: a slow signature, then the portal
portal = hebei
kinds  = softhsm
algorithms = p256

[step a slow key]
do      = token-control
latency = C_Sign fixed SLOW

[step sign slowly]
do   = token-sign
data = isolation
pin  = ${pin}
expect.verified = true

[step the portal answers]
do     = request
method = POST
path   = /prov/accounts
json.username = unit1
json.password = secret-123
json.region   = 130000
expect.status = 201
EOF
cat > "$tmp/suites/hebei/nodriver.scn" <<'EOF'
[scenario]
ids    = HB-SIGN-OK
title  = isolation: the driver is missing and the token is read anyway
portal = hebei
kinds  = softhsm
algorithms = p256

[step the driver is not installed]
do     = token-control
driver = missing

[step read the token]
do = token-info
expect.algorithm = p256
EOF

# No process that names the test's folder survives the run (bounded, 10 s).
nothing_named() { ! pgrep -f "$1" > /dev/null; }
none_left() {
	poll_until 10 nothing_named "$tmp" ||
		{ ps -o pid,args -p "$(pgrep -d, -f "$tmp")"; fail "$1: processes left"; }
}

# Polls (bounded, 60 s) until worker 1 is inside the slow step.
in_slow_step() {
	rc=0
	poll_alive "$2" 60 grep -aq "sign slowly" "$1/run/w1/case.state" || rc=$?
	[ $rc -ne 1 ] || fail "$1: the slow step never started"
	[ $rc -ne 2 ] || fail "$1: the run ended before the slow step"
	[ $rc -eq 0 ] || fail "$1: waiting for the slow step: poll_alive exit $rc"
}

# The slow case's status and message; every other case must have passed or been skipped.
check_run() {
	o=$1 want=$2
	msg=$(json "$o/results.json" "[c['status'] + ': ' + c.get('message', '') for c in d['cases']
		if 'slow signature' in c['title'] and c['kind'] == 'softhsm' and c['algorithm'] == 'p256'][0]")
	case "$msg" in error:*"$want"*) ;; *) fail "$o: the slow case says '$msg', wanted an error with '$want'" ;; esac
	others=$(json "$o/results.json" "sum(1 for c in d['cases'] if c['status'] not in ('passed', 'skipped')
		and 'slow signature' not in c['title'] and 'driver is missing' not in c['title'])")
	[ "$others" = 0 ] || fail "$o: $others other cases did not pass: $(json "$o/results.json" \
		"[c['name'] + ': ' + c.get('message', '') for c in d['cases'] if c['status'] not in ('passed', 'skipped') and 'slow signature' not in c['title']][:3]")"
	# The run went on: cases after the slow one in the list passed.
	after=$(json "$o/results.json" "sum(1 for c in d['cases'] if c['status'] == 'passed')")
	[ "$after" -ge 2 ] || fail "$o: only $after cases passed"
}

run_slow() { # $1 name, $2 ms, then run options
	o=$tmp/$1; ms=$2; shift 2
	sed "s/SLOW/$ms/" "$tmp/slow.scn" > "$tmp/suites/hebei/slow.scn"
	timeout 120 "$tr" run --suites "$tmp/suites" --out "$o" --jobs 1 "$@" > "$o.log" 2>&1 &
	pid=$!
}

# --- 1. a hung case: past its deadline, killed; the run goes on ------------
run_slow deadline 600s --case-timeout 3000
rc=0; wait "$pid" || rc=$?
[ $rc -eq 1 ] || { tail -n 5 "$o.log"; fail "deadline: exit $rc, expected 1"; }
check_run "$o" "the case ran past its deadline (3000 ms) in step sign slowly"
[ "$(json "$o/results.json" "[c.get('step', '') for c in d['cases'] if 'slow signature' in c['title'] and c['status'] == 'error'][0]")" = \
	"sign slowly (token-sign, line 12)" ] || fail "deadline: the error names no step"
[ "$(json "$o/results.json" 'd["figures"]["restarts"]')" -ge 1 ] || fail "deadline: no restart recorded"
# The driver's stderr went into its case's log, not onto the output.
grep -q "the token driver is missing" "$o.log" && fail "the interposer's stderr reached the run's output"
json "$o/results.json" "[l for c in d['cases'] for l in c.get('log', []) if l.startswith('stderr: ') and 'driver is missing' in l][0]" > /dev/null ||
	fail "the interposer's stderr is not in its case's log"
none_left deadline

# --- 2. a crashed worker (kill -9 of its PID) --------------------------------
run_slow crash 20s
in_slow_step "$o" "$pid"
worker=$(awk '$1 == "worker1" { print $2 }' "$o/run/pids")
[ -n "$worker" ] || fail "crash: no worker1 in $o/run/pids"
kill -9 "$worker"
rc=0; wait "$pid" || rc=$?
[ $rc -eq 1 ] || { tail -n 5 "$o.log"; fail "crash: exit $rc, expected 1"; }
check_run "$o" "its worker crashed (signal 9, SIGKILL) in step sign slowly"
none_left crash

# --- 3-5. the portal, a card, pcscd killed in the middle of a case -----------
kill_mid_case() { # $1 sub-test, $2 pids name, $3 what the error says
	run_slow "$1" 3s
	in_slow_step "$o" "$pid"
	victim=$(awk -v n="$2" '$1 == n { print $2 }' "$o/run/pids")
	[ -n "$victim" ] || fail "$1: no $2 in $o/run/pids"
	kill -9 "$victim"
	rc=0; wait "$pid" || rc=$?
	[ $rc -eq 1 ] || { tail -n 5 "$o.log"; fail "$1: exit $rc, expected 1"; }
	check_run "$o" "$3 (PID $victim) died"
	none_left "$1"
}
kill_mid_case portal portal "rig fault: the portal process"
if [ "$(id -u)" = 0 ] && [ -x /usr/sbin/pcscd ] && [ -r /usr/lib/pcsc/drivers/serial/libifdvpcd.so ]; then
	kill_mid_case card card0 "rig fault: the virtual card process card0"
	# The card cases after it passed on the fresh worker's cards.
	[ "$(json "$o/results.json" "sum(1 for c in d['cases'] if c['kind'] == 'vcard' and c['status'] == 'passed')")" -ge 3 ] ||
		fail "card: the card cases did not pass on a fresh worker"
	kill_mid_case pcscd pcscd "rig fault: the smart-card daemon process pcscd"
else
	echo "SKIP: deadline, crashed worker and dead portal passed; no virtual cards here (root, pcscd, vpcd) for the card and pcscd sub-tests"
	exit 77
fi
echo "isolation: deadline, crashed worker, dead portal, card and pcscd, driver stderr in the case log: ok"
