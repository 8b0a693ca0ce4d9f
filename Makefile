# tokenrig: a plain Makefile over pkg-config.
#   make            build everything into $(BUILD)
#   make run        run every scenario; results in $(OUT)
#   make check      unit tests + scenario suites + report checks
#   make SAN=1 ...  the same with AddressSanitizer + UBSan (in build-san/)
#   make clean

SAN ?=
ifeq ($(SAN),1)
BUILD ?= build-san
SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT = -O1
else
BUILD ?= build
SANFLAGS =
OPT = -O2
endif
OUT ?= out

# What results.json, junit.xml and the history record as the tool's version
# and revision; `make TOKENRIG_REVISION=abc1234` outside a git checkout.
TOKENRIG_VERSION = 0.1.0
TOKENRIG_REVISION ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)

CC ?= cc
PKGS = openssl libcurl libmicrohttpd jansson p11-kit-1 libpcsclite sqlite3
# pkg-config is asked only once the dependencies are in place.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) check 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CHECK_LIBS = $(shell pkg-config --libs check 2>/dev/null)

CFLAGS ?= $(OPT) -g
override CFLAGS += -std=gnu11 -Wall -Wextra -Wno-unused-parameter $(SANFLAGS) -I. $(PKG_CFLAGS) -MMD -MP

# Install paths known at build time (common/paths.h says why): pcsc-lite's
# driver folder, and SoftHSM2's module as p11-kit's registry names it (the
# interposer's default; it cannot ask p11-kit at run time). Asked on first
# use, once the dependencies are in place, then remembered.
PCSC_DROPDIR = $(eval PCSC_DROPDIR := $(shell pkg-config --variable=usbdropdir libpcsclite 2>/dev/null))$(PCSC_DROPDIR)
P11_CONFIGS = $(shell pkg-config --variable=p11_module_configs p11-kit-1 2>/dev/null)
P11_MODDIR = $(shell pkg-config --variable=p11_module_path p11-kit-1 2>/dev/null)
SOFTHSM2_REGISTERED = $(shell sed -n 's/^module: *//p' $(P11_CONFIGS)/softhsm2.module 2>/dev/null)
SOFTHSM2_MODULE = $(eval SOFTHSM2_MODULE := $(realpath $(if $(filter /%,$(SOFTHSM2_REGISTERED)),,$(P11_MODDIR)/)$(SOFTHSM2_REGISTERED)))$(SOFTHSM2_MODULE)
override CFLAGS += -DTR_BUILD_PCSC_DROPDIR='"$(PCSC_DROPDIR)"' -DTR_BUILD_SOFTHSM2_MODULE='"$(SOFTHSM2_MODULE)"'
override LDFLAGS += $(SANFLAGS)
LDLIBS = $(PKG_LIBS) -ldl -lpthread -lm

# Every .c of these folders is library code, except main.c (a program).
LIB_DIRS = common fixtures emulators/portal emulators/softhsm emulators/vcard harness \
	harness/pcsc
LIB_SRCS = $(filter-out %/main.c,$(wildcard $(addsuffix /*.c,$(LIB_DIRS))))
LIB_OBJS = $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
TEST_SRCS = $(wildcard suites/unit/*.c)
TEST_OBJS = $(TEST_SRCS:%.c=$(BUILD)/obj/%.o)

PROGS = $(BUILD)/tokenrig $(BUILD)/tokenrig-portal $(BUILD)/tokenrig-fixtures \
	$(if $(wildcard emulators/vcard/main.c),$(BUILD)/tokenrig-vcard) \
	$(if $(wildcard emulators/p11shim/*.c),$(BUILD)/tokenrig-p11shim.so)

# The PKCS#11 interposer is loaded into other programs (pkcs11-tool, vendor
# tools): it is built alone, from its folder and the few common files it uses.
SHIM_SRCS = $(wildcard emulators/p11shim/*.c) common/error.c common/clock.c common/fsutil.c
SHIM_OBJS = $(SHIM_SRCS:%.c=$(BUILD)/shim/%.o)

# libFuzzer targets: suites/fuzz/fuzz_NAME.c, built with clang in build-fuzz/.
FUZZ_SRCS = $(wildcard suites/fuzz/fuzz_*.c)
FUZZ_SECONDS ?= 20
DEPS_OK = $(BUILD)/.deps-ok

.PHONY: all run check clean deps fuzz FORCE
all: $(PROGS) $(BUILD)/unit-tests

deps: $(DEPS_OK)
$(DEPS_OK): ci/install-deps
	@ci/install-deps
	@mkdir -p $(@D) && touch $@

$(BUILD)/obj/%.o: %.c | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c $< -o $@

# revision.h changes only when the revision does, so a commit rebuilds one file.
$(BUILD)/revision.h: FORCE
	@mkdir -p $(@D)
	@printf '#define TOKENRIG_VERSION "%s"\n#define TOKENRIG_REVISION "%s"\n' \
		'$(TOKENRIG_VERSION)' '$(TOKENRIG_REVISION)' > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi
$(BUILD)/obj/harness/version.o: $(BUILD)/revision.h
$(BUILD)/obj/harness/version.o: CFLAGS += -I$(BUILD)
FORCE:

$(BUILD)/libtokenrig.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/tokenrig: $(BUILD)/obj/harness/main.o $(BUILD)/libtokenrig.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
$(BUILD)/tokenrig-portal: $(BUILD)/obj/emulators/portal/main.o $(BUILD)/libtokenrig.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
$(BUILD)/tokenrig-fixtures: $(BUILD)/obj/fixtures/main.o $(BUILD)/libtokenrig.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
$(BUILD)/tokenrig-vcard: $(BUILD)/obj/emulators/vcard/main.o $(BUILD)/libtokenrig.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/shim/%.o: %.c | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -fPIC -fvisibility=hidden -c $< -o $@
$(BUILD)/tokenrig-p11shim.so: $(SHIM_OBJS)
	$(CC) $(LDFLAGS) -shared -Wl,-z,defs $^ -ldl -lpthread -lm -o $@

fuzz: | $(DEPS_OK)
	$(MAKE) BUILD=build-fuzz CC=clang SANFLAGS="-fsanitize=fuzzer-no-link,address,undefined" \
		build-fuzz/libtokenrig.a $(FUZZ_SRCS:suites/fuzz/%.c=build-fuzz/%)
	@for t in $(FUZZ_SRCS:suites/fuzz/%.c=%); do \
		mkdir -p build-fuzz/corpus-$$t; \
		echo "== $$t ($(FUZZ_SECONDS) s)"; \
		build-fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -timeout=5 -rss_limit_mb=2048 \
			build-fuzz/corpus-$$t $$([ -d suites/fuzz/corpus/$$t ] && echo suites/fuzz/corpus/$$t) \
			> build-fuzz/$$t.log 2>&1 || { tail -n 40 build-fuzz/$$t.log; exit 1; }; \
		tail -n 2 build-fuzz/$$t.log; \
	done
# $^ would also name the headers its .d file adds as prerequisites.
build-fuzz/fuzz_%: suites/fuzz/fuzz_%.c build-fuzz/libtokenrig.a
	$(CC) $(CFLAGS) -fsanitize=fuzzer,address,undefined $(filter %.c %.a,$^) $(LDLIBS) -o $@

# Unit suites are found by their constructor: `Suite *NAME_suite(void)`.
$(BUILD)/suites.inc: $(TEST_SRCS) | $(DEPS_OK)
	@mkdir -p $(@D)
	@grep -ho 'Suite \*[a-z0-9_]*_suite(void)' $(TEST_SRCS) | \
		sed 's/Suite \*\(.*\)(void)/SUITE(\1)/' | sort -u > $@.tmp && mv $@.tmp $@
$(BUILD)/obj/suites/unit/check_main.o: $(BUILD)/suites.inc
$(BUILD)/obj/suites/unit/%.o: CFLAGS += -I$(BUILD)
$(BUILD)/unit-tests: $(TEST_OBJS) $(BUILD)/libtokenrig.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) $(CHECK_LIBS) -o $@

run: all
	$(BUILD)/tokenrig run --suites suites --out $(OUT)

check: all
	BUILD=$(BUILD) sh ci/check.sh

clean:
	rm -rf build build-san build-fuzz $(OUT)

# Every object's header dependencies: the library's, the interposer's (built
# apart in $(BUILD)/shim) and the fuzz targets'; suites/system/make-deps.sh
# checks that touching a header rebuilds what includes it.
-include $(shell find $(BUILD)/obj $(BUILD)/shim -name '*.d' 2>/dev/null) \
	$(wildcard $(BUILD)/fuzz_*.d)
