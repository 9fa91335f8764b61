#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the kernel module (kmod/) against installed kernel headers, with the
# kernel's W=1 warnings, and fails on any warning; checks the module's
# metadata (license, version magic) and, when the headers ship it, runs
# checkpatch.pl on the source.  ctest kmod_build; the end-to-end boot
# (run_kmod.sh) loads the module this builds.
#
#   build.sh SOURCE_DIR OUT_DIR
#
# The headers: $USBTS_KDIR if set; else those of the kernel the QEMU
# end-to-end test boots (tests/e2e/setup.sh installs linux-headers-<version>
# from the same package query as the image); else the running kernel's.
# None of them installed: exit 77 (ctest: skipped), saying why.
set -uo pipefail
src=$1
out=$2
cache=${USBTS_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/usbtimesync-e2e}

# No module from an earlier build may outlive a skip (run_kmod.sh would load it).
rm -rf "$out"
kdir=${USBTS_KDIR:-}
if [ -z "$kdir" ] && [ -f "$cache/HEADERS" ]; then
    kdir=$(cat "$cache/HEADERS")
fi
if [ -z "$kdir" ] || [ ! -d "$kdir" ]; then
    [ -d "/lib/modules/$(uname -r)/build" ] && kdir="/lib/modules/$(uname -r)/build"
fi
if [ -z "$kdir" ] || [ ! -f "$kdir/Makefile" ]; then
    echo "SKIP: no kernel headers to build kmod/ against (no USBTS_KDIR, no $cache/HEADERS from tests/e2e/setup.sh," \
        "no /lib/modules/$(uname -r)/build); tests/e2e/setup.sh installs Debian's linux-headers for the e2e kernel"
    exit 77
fi
# The release the module's version magic must name (Debian's headers give
# uname -r here; include/config/kernel.release holds the upstream version).
release=$(sed -n 's/^#define UTS_RELEASE "\(.*\)"$/\1/p' "$kdir/include/generated/utsrelease.h" 2>/dev/null)
echo "kmod: building against $kdir (kernel $release)"

# Out of the source tree: Kbuild writes its objects next to the sources.
mkdir -p "$out"
cp "$src"/kmod/Kbuild "$src"/kmod/Makefile "$src"/kmod/*.c "$src"/kmod/*.h "$out"/
log="$out/build.log"
if ! make -C "$out" KDIR="$kdir" W=1 >"$log" 2>&1; then
    cat "$log"
    echo "FAIL: the module does not build against $kdir"
    exit 1
fi
if grep -E 'warning:|error:' "$log"; then
    echo "FAIL: the module builds with warnings (W=1)"
    exit 1
fi
ko="$out/usbts_mfindex.ko"
[ -f "$ko" ] || { echo "FAIL: no $ko"; exit 1; }

# The metadata modinfo would show, read from the .modinfo section.
info=$(objcopy -O binary --only-section=.modinfo "$ko" /dev/stdout 2>/dev/null | tr '\0' '\n')
status=0
grep -qx 'license=Dual MIT/GPL' <<<"$info" || { echo "FAIL: license is not 'Dual MIT/GPL'"; status=1; }
grep -q '^version=' <<<"$info" || { echo "FAIL: no version"; status=1; }
grep -q '^description=' <<<"$info" || { echo "FAIL: no description"; status=1; }
if [ -n "$release" ] && ! grep -q "^vermagic=$release " <<<"$info"; then
    echo "FAIL: vermagic $(grep ^vermagic= <<<"$info") is not for $release"
    status=1
fi
grep -E '^(license|version|vermagic)=' <<<"$info" | sed 's/^/kmod: /'

checkpatch=""
for c in "$kdir/scripts/checkpatch.pl" "${USBTS_CHECKPATCH:-}"; do
    [ -n "$c" ] && [ -f "$c" ] && checkpatch=$c && break
done
if [ -n "$checkpatch" ]; then
    if perl "$checkpatch" --no-tree --quiet --strict -f "$src"/kmod/usbts_mfindex.c "$src"/kmod/usbts_mfindex.h; then
        echo "kmod: checkpatch.pl --strict: clean"
    else
        echo "FAIL: checkpatch.pl --strict complains"
        status=1
    fi
else
    echo "kmod: checkpatch.pl is not in these headers (set USBTS_CHECKPATCH to run it)"
fi
[ $status -eq 0 ] && echo "kmod: $ko built, W=1 clean"
exit $status
