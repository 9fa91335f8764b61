#!/bin/sh
# SPDX-License-Identifier: MIT
# README.md's "Building against it" steps, word for word, as a new user runs
# them: every ```sh block of that section, in order, in a scratch directory
# laid out like a clone (the Makefile and examples/), with HOME there too so
# $HOME/.local is private, and make pointed at this build tree (BUILD), which
# was configured with whatever prefix (normally /usr/local, by `make run`).
# Then the same with `cmake --install --prefix` instead of `make install`.
# Each time the installed usbtimesync.pc must name the prefix installed to,
# and the example must build with the documented line alone and run.
#   example.sh BUILD_DIR SOURCE_DIR
set -eu
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
for tool in pkg-config cc make; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "SKIP: $tool is not installed (apt-get install pkg-config build-essential)"
        exit 77
    fi
done
# The steps, from the README itself.
steps=$(awk '/^#+ Building against it/ { on = 1; next }
             on && !code && /^#/ { exit }
             on && /^```sh$/ { code = 1; next }
             on && /^```$/ { code = 0; next }
             on && code { print }' "$src/README.md")
if [ -z "$steps" ]; then
    echo "FAIL: README.md has no \"Building against it\" section with sh blocks"
    exit 1
fi
# What a user's shell would not have: the outer make's and pkg-config's settings.
unset MAKEFLAGS MFLAGS MAKELEVEL PKG_CONFIG_PATH PKG_CONFIG_LIBDIR LD_LIBRARY_PATH || true
export BUILD="$build"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
passed=0
for way in make cmake; do
    home="$scratch/$way"
    mkdir -p "$home/clone"
    ln -s "$src/Makefile" "$home/clone/Makefile"
    ln -s "$src/examples" "$home/clone/examples"
    script=$steps
    if [ "$way" = cmake ]; then
        script=$(printf '%s\n' "$steps" | sed 's|^make install PREFIX=\$PREFIX.*|cmake --install "$BUILD" --prefix "$PREFIX"|')
    fi
    echo "== the README's steps, installing with $way"
    printf '%s\n' "$script"
    (cd "$home/clone" && HOME="$home" sh -eu -c "$script
pc_prefix=\$(pkg-config --variable=prefix usbtimesync)
if [ \"\$pc_prefix\" != \"\$PREFIX\" ]; then
    echo \"FAIL: usbtimesync.pc says prefix=\$pc_prefix, installed to \$PREFIX\"; exit 1
fi
echo \"usbtimesync.pc: prefix=\$pc_prefix\"")
    passed=$((passed + 1))
done
echo "$passed passed, 0 failed"
