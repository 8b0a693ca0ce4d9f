#!/bin/sh
# A header change rebuilds what includes it, the interposer too: make must
# read the dependency files of $(BUILD)/shim (built apart from the library)
# as well as $(BUILD)/obj. Checked on a copy of the sources in a temporary
# folder (the shared tree's headers are never touched): build the
# interposer and one library object, touch emulators/p11shim/shim.h and
# common/error.h, and require make to call them out of date (make -q) and
# a real make to produce a newer tokenrig-p11shim.so and object. It also
# holds the interposer to reentrant libc calls: it is loaded into
# multithreaded programs, so it imports no strtok, localtime, gmtime, ctime
# or asctime (nm -u).
set -eu
command -v make >/dev/null || { echo "make missing"; exit 1; }
command -v nm >/dev/null || { echo "nm missing (binutils)"; exit 1; }
src=$(pwd)
[ -f "$src/Makefile" ] && [ -f "$src/emulators/p11shim/shim.h" ] ||
	{ echo "run from the top of the tree"; exit 1; }
dir=$(mktemp -d /tmp/tokenrig-make-deps-XXXXXX)
trap 'rm -rf "$dir"' EXIT INT TERM
fail() { echo "FAIL: $*"; exit 1; }

# Sources only: the Makefile, ci/ and the source folders, no build output.
tar -C "$src" -cf - Makefile ci common emulators fixtures harness suites/unit suites/fuzz |
	tar -C "$dir" -xf -
b=build-deps
mkdir -p "$dir/$b" && touch "$dir/$b/.deps-ok"   # dependencies are the caller's
so="$b/tokenrig-p11shim.so"
obj="$b/obj/common/buf.o"
mk() { make -C "$dir" BUILD=$b TOKENRIG_REVISION=test "$@"; }
# The build output dated a minute back, so that a header touched now is
# newer than it without waiting out the file system's one-second mtime.
age_build() { find "$dir/$b" -exec touch -h -d "@$(($(date +%s) - 60))" {} +; }

mk "$so" "$obj" >"$dir/build.log" 2>&1 || { tail -n 20 "$dir/build.log"; fail "first build"; }
[ -f "$dir/$so" ] && [ -f "$dir/$obj" ] || fail "the first build made no $so / $obj"
ls "$dir/$b/shim/emulators/p11shim/"*.d >/dev/null 2>&1 ||
	fail "the interposer's objects have no dependency files (-MMD)"
mk -q "$so" "$obj" || fail "make calls a fresh build out of date"

# Headers made newer than every object, as an edit would.
age_build
so_before=$(stat -c %Y "$dir/$so")
touch "$dir/emulators/p11shim/shim.h"
if mk -q "$so" >/dev/null 2>&1; then
	fail "touching emulators/p11shim/shim.h leaves $so up to date"
fi
mk "$so" >"$dir/build.log" 2>&1 || { tail -n 20 "$dir/build.log"; fail "rebuild"; }
age_build
touch "$dir/common/error.h"
mk -q "$so" >/dev/null 2>&1 && fail "touching common/error.h leaves $so up to date"
mk -q "$obj" >/dev/null 2>&1 && fail "touching common/error.h leaves $obj up to date"
mk "$so" "$obj" >"$dir/build.log" 2>&1 || { tail -n 20 "$dir/build.log"; fail "rebuild"; }
[ "$(stat -c %Y "$dir/$so")" -gt "$so_before" ] || fail "$so was not rebuilt"
mk -q "$so" "$obj" || fail "make still calls the rebuilt files out of date"

bad=$(nm -u "$dir/$so" | awk '{ print $2 }' | sed 's/@.*//' |
	grep -xE 'strtok|localtime|gmtime|ctime|asctime' || true)
[ -z "$bad" ] || fail "the interposer calls non-reentrant $(echo $bad)"
echo "make-deps: shim.h and error.h changes rebuild $so and the library; no non-reentrant libc calls"
