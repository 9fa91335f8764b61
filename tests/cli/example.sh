#!/bin/sh
# SPDX-License-Identifier: MIT
# Installs the build tree into a private prefix, then builds examples/sof_sync.c
# against the installed library through pkg-config, and runs it.
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
echo "1 passed, 0 failed"
