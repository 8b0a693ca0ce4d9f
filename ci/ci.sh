#!/bin/sh
# What CI runs: install, build warning-free, `make check`, the same under
# AddressSanitizer + UBSan (any report fails the run), then the fuzz targets
# for a bounded time.
set -eu
ci/install-deps
make -j2 CFLAGS="-O2 -g -Werror"
make check
rm -rf build-san
mkdir -p build-san
export ASAN_OPTIONS="detect_leaks=1:log_path=$(pwd)/build-san/asan"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$(pwd)/build-san/ubsan"
export LSAN_OPTIONS="suppressions=$(pwd)/ci/lsan.supp:print_suppressions=0"
make -j2 SAN=1 CFLAGS="-O1 -g -Werror"
make SAN=1 check
if ls build-san/asan.* build-san/ubsan.* >/dev/null 2>&1; then
	echo "sanitizer reports:" >&2
	cat build-san/asan.* build-san/ubsan.* >&2
	exit 1
fi
echo "ci: sanitizers clean"
unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
make fuzz FUZZ_SECONDS=10
