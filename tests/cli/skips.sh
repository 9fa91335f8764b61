#!/bin/sh
# SPDX-License-Identifier: MIT
# make check never drops a test group silently: on a machine without python3,
# valgrind and clang (hidden here from PATH), the groups that need them are
# reported as SKIP lines naming what to install, and the check still passes.
# Configures a scratch build tree (no compiling: the groups that would run are
# placeholders) and runs the Makefile's check-plain on those groups.
#   skips.sh SOURCE_DIR
set -eu
src=$(cd "$1" && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# A PATH with everything but the optional tools.
mkdir "$scratch/bin"
for dir in /usr/local/bin /usr/bin /bin; do
    [ -d "$dir" ] || continue
    for f in "$dir"/*; do
        name=${f##*/}
        case "$name" in
            python3* | valgrind* | clang*) continue ;;
        esac
        [ -e "$scratch/bin/$name" ] || ln -s "$f" "$scratch/bin/$name"
    done
done
unset MAKEFLAGS MFLAGS MAKELEVEL || true
PATH="$scratch/bin"
export PATH
# find_program also searches the system directories, whatever PATH says: keep
# it to the scratch one (the compilers are named, through it).
cmake -S "$src" -B "$scratch/build" -DCMAKE_IGNORE_PATH="/usr/local/bin;/usr/bin;/bin;/usr/local/sbin;/usr/sbin;/sbin" \
    -DCMAKE_C_COMPILER="$scratch/bin/cc" -DCMAKE_CXX_COMPILER="$scratch/bin/c++" \
    >"$scratch/configure.log" 2>&1 || { cat "$scratch/configure.log"; exit 1; }
out=$(make -s -C "$src" -o build check-plain BUILD="$scratch/build" \
      CTEST_ARGS="-R 'cli_tool|memcheck_conformance|clang_test_header|python_binding'" 2>&1) || {
    printf '%s\n' "$out" | sed 's/^/  | /'
    echo "FAIL: check-plain failed with the optional tools missing"
    exit 1
}
# Indented: this test's own log must not read as a SKIP of the real build.
printf '%s\n' "$out" | sed 's/^/  | /'
passed=0
failed=0
for want in 'SKIP: python3 is not installed (apt-get install python3)' \
            'SKIP: valgrind is not installed (apt-get install valgrind)' \
            'SKIP: clang is not installed (apt-get install clang)' \
            'SKIP: python binding not tested: no python3 on PATH; apt-get install python3 python3-pytest python3-numpy'; do
    if printf '%s\n' "$out" | grep -qF "$want"; then
        passed=$((passed + 1))
    else
        echo "FAIL: make check-plain did not say: $want"
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
