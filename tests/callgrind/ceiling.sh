#!/bin/sh
# SPDX-License-Identifier: MIT
# Instructions per WinUsb_GetCurrentFrameNumberAndQpc under callgrind, kept
# under a ceiling.  Instruction counts repeat exactly where wall time does not.
#   ceiling.sh QUERY_LOOP_BINARY CEILING
set -eu
bin=$1
ceiling=$2
n=20000
if ! command -v valgrind >/dev/null 2>&1; then
    echo "SKIP: valgrind is not installed (apt-get install valgrind)"
    exit 77
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
valgrind --tool=callgrind --toggle-collect=query_loop --callgrind-out-file="$out" "$bin" virtual "$n" >/dev/null 2>&1
total=$(sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$out")
[ -z "$total" ] && total=$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$out")
if [ -z "$total" ]; then
    echo "FAIL: no instruction total in callgrind's output"
    exit 1
fi
per=$((total / n))
echo "instructions per query: $per (ceiling $ceiling)"
if [ "$per" -gt "$ceiling" ]; then
    echo "FAIL: the query path grew past its ceiling"
    exit 1
fi
echo "1 passed, 0 failed"
