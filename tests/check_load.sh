#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `make check-load`: make check's tests (plain, then ASan+UBSan) N times, with
# LOAD busy loops running beside them the whole time, so a test that depends
# on how fast the machine happens to be shows up here rather than in CI.
# The builds exist already (the make target builds once); each run calls
# `make ctest-plain` and `make ctest-asan`.  Every failure is printed with
# its test and the failing line (tests/ctest_failures.sh), then a final
# "k of N runs passed".  The busy loops are killed on exit and on ^C.
#
#   N=10 LOAD=3 BUILD=build BUILD_ASAN=build-asan MAKE=make tests/check_load.sh
set -u
cd "$(dirname "$0")/.."
N=${N:-10}
LOAD=${LOAD:-$(nproc)}
BUILD=${BUILD:-build}
BUILD_ASAN=${BUILD_ASAN:-build-asan}
MAKE=${MAKE:-make}
case "$N$LOAD" in *[!0-9]*) echo "check-load: N and LOAD must be numbers (N=$N LOAD=$LOAD)" >&2; exit 2 ;; esac

logs=$BUILD/check-load
mkdir -p "$logs"
rm -f "$logs"/run-*.log

busy=()
stop_load() {
    local p
    for p in "${busy[@]}"; do
        kill "$p" 2>/dev/null
    done
    for p in "${busy[@]}"; do
        wait "$p" 2>/dev/null
    done
    busy=()
}
trap stop_load EXIT
trap 'echo "check-load: interrupted"; stop_load; exit 130' INT TERM HUP

for ((i = 0; i < LOAD; i++)); do
    (while :; do :; done) &
    busy+=($!)
done
echo "check-load: $N runs of make check's tests beside $LOAD busy loops (pids ${busy[*]:-none}) on $(nproc) cores;" \
    "load average $(cut -d' ' -f1-3 /proc/loadavg)"

# "100% tests passed, 0 tests failed out of 20" -> "20/20"
counts() {
    sed -n 's/^[0-9]*% tests passed, \([0-9]*\) tests\{0,1\} failed out of \([0-9]*\).*/\1 \2/p' "$1" | tail -n 1 |
        awk '{ printf "%d/%d passed", $2 - $1, $2 }'
}

passed=0
for ((run = 1; run <= N; run++)); do
    start=$(date +%s)
    status=pass
    summary=""
    for kind in plain asan; do
        dir=$BUILD
        [ $kind = asan ] && dir=$BUILD_ASAN
        log=$logs/run-$run-$kind.log
        rm -f "$dir"/Testing/Temporary/LastTestsFailed*.log
        if ! $MAKE --no-print-directory ctest-$kind >"$log" 2>&1; then
            status=FAIL
        fi
        summary+=" $kind $(counts "$log"),"
    done
    skips=$(grep -h '^SKIP: ' "$logs"/run-$run-plain.log | sort -u)
    echo "check-load: run $run/$N: $status (${summary# } in $(($(date +%s) - start)) s; load average" \
        "$(cut -d' ' -f1 /proc/loadavg))"
    [ -n "$skips" ] && echo "$skips" | sed 's/^/  /'
    if [ $status = pass ]; then
        passed=$((passed + 1))
    else
        for kind in plain asan; do
            dir=$BUILD
            [ $kind = asan ] && dir=$BUILD_ASAN
            log=$logs/run-$run-$kind.log
            if grep -q "tests failed out of\|Errors while running CTest" "$log"; then
                tests/ctest_failures.sh "$dir" "$kind"
            elif ! grep -q "tests passed, 0 tests failed" "$log"; then
                echo "  [$kind] did not run its tests:"
                tail -n 5 "$log" | sed 's/^/    /'
            fi
        done
        echo "  logs: $logs/run-$run-plain.log, $logs/run-$run-asan.log"
    fi
done
stop_load
echo "check-load: $passed of $N runs passed (LOAD=$LOAD busy loops, $(nproc) cores)"
[ "$passed" -eq "$N" ]
