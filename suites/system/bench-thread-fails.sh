#!/bin/sh
# A concurrent signer that cannot start must not hang the bench: the
# concurrency phase starts K signer threads that meet at a barrier, and a
# barrier counting a thread that never started waits forever. A preloaded
# pthread_create (built here) refuses the 3rd thread the tokenrig program
# itself starts (EAGAIN; the 2nd signer of the 2-signer round, the 1st
# already waiting at the barrier): `bench` must end within its time bound, exit
# non-zero and name the signer that could not start, with no process left.
set -eu
BUILD=${BUILD:-build}
command -v cc >/dev/null || { echo "cc missing"; exit 1; }
[ -x "$BUILD/tokenrig" ] || { echo "$BUILD/tokenrig missing (build it first)"; exit 1; }
dir=$(mktemp -d /tmp/tokenrig-bench-thread-XXXXXX)
trap 'rm -rf "$dir"' EXIT INT TERM
fail() { echo "FAIL: $*"; exit 1; }

cat >"$dir/failpt.c" <<'EOF'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

/* 1 when fn lives in the program itself (not in a library). */
static int in_program(void *fn)
{
	char exe[PATH_MAX], obj[PATH_MAX];
	Dl_info info;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n <= 0 || !dladdr(fn, &info) || !info.dli_fname || !realpath(info.dli_fname, obj))
		return 0;
	exe[n] = '\0';
	return strcmp(exe, obj) == 0;
}

int pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg)
{
	static create_fn real;
	static int seen;
	const char *at = getenv("FAILPT_AT");

	if (!real)
		real = (create_fn)dlsym(RTLD_NEXT, "pthread_create");
	if (at && in_program((void *)fn) && __atomic_add_fetch(&seen, 1, __ATOMIC_SEQ_CST) == atoi(at))
		return EAGAIN;
	return real(t, a, fn, arg);
}
EOF
cc -shared -fPIC -O1 -o "$dir/failpt.so" "$dir/failpt.c" -ldl || fail "building the preload"

preload="$dir/failpt.so"
# An ASan build wants its runtime first; it is already linked in the program.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
rc=0
FAILPT_AT=3 LD_PRELOAD="$preload" timeout 300 "$BUILD/tokenrig" bench --kinds softhsm --runs 1 \
	--count 8 --warmup 2 --rounds 2 --threads 2 --out "$dir/out" --json "$dir/bench.json" \
	>"$dir/log" 2>&1 || rc=$?
[ $rc -ne 124 ] || { tail -n 20 "$dir/log"; fail "bench hung when a signer thread could not start"; }
[ $rc -ne 0 ] || { tail -n 20 "$dir/log"; fail "bench exited 0 although a signer could not start"; }
grep -q "starting concurrent signer 2 of 2" "$dir/log" ||
	{ tail -n 20 "$dir/log"; fail "bench did not name the signer that could not start"; }
left=$(ps -eo args | grep -F "$dir" | grep -v grep || true)
[ -z "$left" ] || fail "processes left running: $left"
echo "bench-thread-fails: a signer refused by pthread_create ends the bench (exit $rc), named"
