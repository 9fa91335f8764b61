#!/bin/sh
# SPDX-License-Identifier: MIT
# Installs the build tree into a private prefix, then builds examples/sof_sync.c
# and examples/iso_stream.c against the installed library through pkg-config
# with the README's line, and runs them (iso_stream needs a real isochronous
# device: on the simulator it must refuse clearly; the QEMU test e2e_iso runs
# it on one).
#   example.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1
src=$2
for tool in pkg-config cc; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "SKIP: $tool is not installed (apt-get install pkg-config build-essential)"
        exit 77
    fi
done
prefix="$build/test-prefix"
rm -rf "$prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
pc=$(find "$prefix" -name usbtimesync.pc | head -n 1)
export PKG_CONFIG_PATH="$(dirname "$pc")"
# The .pc file names the configured prefix; point it at this one.
flags=$(pkg-config --define-variable=prefix="$prefix" --cflags --libs usbtimesync)
libdir=$(pkg-config --define-variable=prefix="$prefix" --variable=libdir usbtimesync)
cc -std=c11 -Wall -Wextra -Werror "$src/examples/sof_sync.c" $flags -lm -o "$build/sof_sync"
LD_LIBRARY_PATH="$libdir" "$build/sof_sync" sim
cc -std=c11 -Wall -Wextra -Werror "$src/examples/iso_stream.c" $flags -o "$build/iso_stream"
set +e
out=$(LD_LIBRARY_PATH="$libdir" "$build/iso_stream" sim 2>&1)
rc=$?
set -e
echo "$out"
[ $rc -eq 1 ] && echo "$out" | grep -q "no endpoints to stream from" || { echo "FAIL: iso_stream on sim: rc $rc"; exit 1; }
usage=$(LD_LIBRARY_PATH="$libdir" "$build/iso_stream" 2>&1 || true)
echo "$usage" | grep -q "^usage: iso_stream" || { echo "FAIL: iso_stream without a device prints no usage"; exit 1; }
echo "3 passed, 0 failed"
