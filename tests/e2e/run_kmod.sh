#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The kernel module's end-to-end test (ctest e2e_kmod, label e2e): boots
# Debian's kernel in QEMU twice with the usbts_mfindex module that
# kmod_build built against that kernel's headers, and runs kmod_boot.sh in
# the guest: once with a stock command line (the module on its own, malformed
# requests, unbind/bind and rmmod while tracking, a clean kernel log), once
# with iomem=relaxed to compare the module with the MMIO source in the same
# boot.  Prints the read bracket and the largest bound after Start of each.
#
#   run_kmod.sh E2E_GUEST KMOD_GUEST STATIC_CLI MODULE_KO WORK_DIR
#
# Exits 77 (ctest: skipped) with the reason when QEMU, busybox, the kernel or
# the module (no kernel headers) is missing; tests/e2e/setup.sh installs them.
set -uo pipefail
guest=$1
kguest=$2
cli=$3
ko=$4
work=$5
. "$(dirname "$0")/lib.sh"
e2e_require
[ -f "$ko" ] || e2e_skip "the module $ko was not built (kmod_build skipped: no kernel headers)"
kernel=$(sed -n 's/^linux-image-//p' "$E2E_CACHE/PACKAGE" 2>/dev/null)
vermagic=$(objcopy -O binary --only-section=.modinfo "$ko" /dev/stdout 2>/dev/null | tr '\0' '\n' |
    sed -n 's/^vermagic=\([^ ]*\).*/\1/p')
[ -n "$kernel" ] && [ "$vermagic" = "$kernel" ] ||
    e2e_skip "the module was built for ${vermagic:-?}, the cached kernel is ${kernel:-?}"
mkdir -p "$work"
e2e_initramfs "$work" "$E2E_HERE/init" "$guest=e2e_guest" "$kguest=kmod_guest" "$cli=usbtimesync" \
    "$ko=usbts_mfindex.ko" "$E2E_HERE/kmod_boot.sh=boot.sh" || exit 1
e2e_banner

status=0
declare -A console
for mode in stock compare; do
    extra=""
    [ "$mode" = compare ] && extra="iomem=relaxed"
    if ! e2e_boot "$work" "kmod-$mode" "$extra usbts.kmod=$mode" \
        -device qemu-xhci,id=xhci -device usb-kbd,bus=xhci.0 -device usb-tablet,bus=xhci.0; then
        status=1
    fi
    console[$mode]=$E2E_CONSOLE
    if ! grep -q "^E2E KMOD PASS $mode" <<<"$E2E_CONSOLE" || grep -q "^E2E FAIL" <<<"$E2E_CONSOLE"; then
        echo "e2e kmod-$mode: the guest reported failures:"
        grep "^E2E FAIL" <<<"$E2E_CONSOLE"
        status=1
    fi
done

# The figures, side by side: each source's typical read bracket and the
# largest bound after Start (e2e_guest's RESULT lines), and the module's own
# bracket distribution.
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2" | head -n 1; }
echo "e2e kmod: figures (this emulator, this run):"
for mode in stock compare; do
    for src in kmod mmio; do
        line=$(grep "^E2E RESULT source=$src " <<<"${console[$mode]}" | head -n 1)
        [ -n "$line" ] || continue
        printf "  %-7s boot  %-5s  bracket_ns %-6s bound_us median %-3s p99 %-3s max %s\n" "$mode" "$src" \
            "$(field bracket_ns "$line")" "$(field bound_us_median "$line")" "$(field bound_us_p99 "$line")" \
            "$(field bound_us_max "$line")"
    done
    grep "^E2E kmod read bracket\|^E2E kmod ioctl" <<<"${console[$mode]}" |
        sed "s/^E2E kmod /  $(printf %-7s "$mode") boot  module: /"
done
exit $status
