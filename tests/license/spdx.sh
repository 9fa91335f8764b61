#!/bin/sh
# SPDX-License-Identifier: MIT
# Every source file carries an SPDX identifier in its first lines (SPEC §9):
# MIT in user space, "GPL-2.0-only OR MIT" under kmod/.  Prints each file that
# lacks one and fails.
#
#   spdx.sh SOURCE_DIR
set -u
cd "$1" || exit 1
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    files=$(git ls-files)
else
    files=$(find . -type f ! -path './.git/*' ! -path './build*' | sed 's|^\./||')
fi
bad=0
n=0
for f in $files; do
    case "$f" in
        fuzz/corpus/* | tests/fixtures/* | *.md | LICENSE | */LICENSE | .gitignore | debian/*) continue ;;
        *.c | *.h | *.cpp | *.py | *.sh | *.cmake | *.map | *.1 | *.in | Makefile | */Makefile | CMakeLists.txt | .ci/* | tests/e2e/init) ;;
        *) continue ;;
    esac
    [ -f "$f" ] || continue
    n=$((n + 1))
    case "$f" in
        kmod/*) want='SPDX-License-Identifier: GPL-2.0-only OR MIT' ;;
        *) want='SPDX-License-Identifier: MIT' ;;
    esac
    if ! head -n 3 "$f" | grep -qF "$want"; then
        echo "FAIL: $f has no '$want' in its first three lines"
        bad=$((bad + 1))
    fi
done
[ -f LICENSE ] || { echo "FAIL: no LICENSE at the root"; bad=$((bad + 1)); }
echo "spdx: $n source files checked, $bad without an identifier"
[ "$bad" -eq 0 ]
