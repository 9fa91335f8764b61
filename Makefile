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

.PHONY: soak all build build-asan build-tsan run check check-plain check-asan check-tsan check-load ctest-plain ctest-asan \
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

# An optional group that cannot run here (no python3, valgrind, clang,
# pkg-config, QEMU) is a ctest that prints "SKIP: why (what to install)" and
# exits 77; each check lists those lines, never skipping silently.
skipped = grep -h '^SKIP: ' $(1)/Testing/Temporary/LastTest*.log 2>/dev/null | sort -u

# The tests of each build; ctest-plain and ctest-asan run them without
# building (make check-load builds once, then runs these N times).
TESTS_PLAIN = cd $(BUILD) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS); rc=$$?; \
	$(call skipped,.); exit $$rc
TESTS_ASAN = cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	ctest --output-on-failure -j $(JOBS) -LE 'e2e|bench|nosan' $(CTEST_ARGS); rc=$$?; \
	$(call skipped,.); exit $$rc

check-plain: build
	@$(TESTS_PLAIN)

check-asan: build-asan
	@$(TESTS_ASAN)

ctest-plain:
	@$(TESTS_PLAIN)

ctest-asan:
	@$(TESTS_ASAN)

check-tsan: build-tsan
	cd $(BUILD_TSAN) && TSAN_OPTIONS=halt_on_error=1 ctest --output-on-failure -j $(JOBS) -L concurrency $(CTEST_ARGS)

check: check-plain check-asan
	@{ $(call skipped,$(BUILD)); $(call skipped,$(BUILD_ASAN)); } | sort -u | \
		sed '1i make check: these optional groups did not run; install what each line names to run them:'
	@command -v clang >/dev/null 2>&1 || echo "SKIP: fuzzing is 'make fuzz', not part of make check, and needs clang (apt-get install clang libclang-rt-14-dev)"

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

# The randomised adversarial scenario soak for a minute from a fresh seed
# (SOAK_SECONDS, SOAK_SEED); CI runs a fixed draw of it (.ci/stage-soak).
soak: build
	SOAK_SEED=$${SOAK_SEED:-$$(date +%s)} SOAK_SECONDS=$${SOAK_SECONDS:-60} .ci/stage-soak
