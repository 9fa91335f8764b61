# SPDX-License-Identifier: MIT
# The two commands a newcomer runs:
#   make run    build, then track a simulated controller for a few seconds
#   make check  build, then run every test, plain and under ASan+UBSan
# CMake and ctest do the work underneath.  `make check-load` runs check's
# tests N times beside LOAD busy loops (docs/TESTING.md).

BUILD       ?= build
BUILD_ASAN  ?= build-asan
BUILD_TSAN  ?= build-tsan
PREFIX      ?= /usr/local
JOBS        ?= $(shell nproc 2>/dev/null || echo 2)
CTEST_ARGS  ?=
N           ?= 10
LOAD        ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all build build-asan build-tsan run check check-plain check-asan check-tsan check-load ctest-plain ctest-asan \
	install bench fuzz clean

all: build

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=$(PREFIX)

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

$(BUILD_ASAN)/CMakeCache.txt:
	cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DUSBTS_SANITIZE=address,undefined

build-asan: $(BUILD_ASAN)/CMakeCache.txt
	cmake --build $(BUILD_ASAN) -j $(JOBS)

$(BUILD_TSAN)/CMakeCache.txt:
	cmake -S . -B $(BUILD_TSAN) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUSBTS_SANITIZE=thread

build-tsan: $(BUILD_TSAN)/CMakeCache.txt
	cmake --build $(BUILD_TSAN) -j $(JOBS)

run: build
	./$(BUILD)/usbtimesync track sim --duration 3 --interval 500

# The tests of each build; ctest-plain and ctest-asan run them without building.
# A skipped test (the QEMU end-to-end test without QEMU or a kernel) says why.
TESTS_PLAIN = cd $(BUILD) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS); rc=$$?; \
	grep -h '^SKIP: ' Testing/Temporary/LastTest*.log 2>/dev/null | sort -u; exit $$rc
TESTS_ASAN = cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	ctest --output-on-failure -j $(JOBS) -LE 'e2e|bench|nosan' $(CTEST_ARGS)

check-plain: build
	@$(TESTS_PLAIN)

check-asan: build-asan
	$(TESTS_ASAN)

ctest-plain:
	@$(TESTS_PLAIN)

ctest-asan:
	$(TESTS_ASAN)

check-tsan: build-tsan
	cd $(BUILD_TSAN) && TSAN_OPTIONS=halt_on_error=1 ctest --output-on-failure -j $(JOBS) -L concurrency $(CTEST_ARGS)

check: check-plain check-asan

# make check's tests, N times (default 10), each run beside LOAD busy loops
# (default one per core): builds once, prints every failure with its test and
# failing line, and "k of N runs passed".  Logs in $(BUILD)/check-load/.
check-load: build build-asan
	@N='$(N)' LOAD='$(LOAD)' BUILD='$(BUILD)' BUILD_ASAN='$(BUILD_ASAN)' MAKE='$(MAKE)' tests/check_load.sh

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

bench: build
	cd $(BUILD) && ctest --output-on-failure -L bench -V

# libFuzzer targets for a bounded time (clang and libclang-rt-14-dev needed;
# FUZZ_SECONDS=N per target, default 75 s in all).
fuzz:
	.ci/stage-fuzz

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_TSAN) build-fuzz
