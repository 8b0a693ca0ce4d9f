#!/bin/sh
# What CI runs: install, build warning-free, `make check`, then again under
# AddressSanitizer + UBSan. Any sanitizer report fails the run.
set -eu
ci/install-deps
make -j2 CFLAGS="-O2 -g -Werror"
make check
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:log_path=build-san/asan"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=build-san/ubsan"
export LSAN_OPTIONS="suppressions=$(pwd)/ci/lsan.supp:print_suppressions=0"
rm -rf build-san
make -j2 SAN=1 CFLAGS="-O1 -g -Werror"
make SAN=1 check
if ls build-san/asan.* build-san/ubsan.* >/dev/null 2>&1; then
	echo "sanitizer reports:" >&2
	cat build-san/asan.* build-san/ubsan.* >&2
	exit 1
fi
echo "ci: sanitizers clean"
