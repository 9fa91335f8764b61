#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The isochronous end-to-end test (ctest e2e_iso, label e2e): boots Debian's
# kernel in QEMU with two qemu-xhci controllers, each carrying QEMU's
# usb-audio (full speed, isochronous OUT endpoint 0x01), and usbmon loaded,
# and runs iso_guest, which compares every URB's inferred start frame with the
# one usbmon recorded.
#
#   run_iso.sh GUEST_BINARY WORK_DIR [ISO_STREAM]
#
# ISO_STREAM, the example statically linked, then streams a few URBs too and
# must print a frame, host time and bound for each packet.
#
# Exits 77 (ctest: skipped) with the reason when QEMU, busybox, the kernel or
# the usbmon module is missing (tests/e2e/setup.sh fetches them).  Booted with
# iomem=relaxed, so the library tracks through MMIO (the tighter bound).
set -uo pipefail
guest=$1
work=$2
example=${3:-}
E2E_MODULES="usbmon"
. "$(dirname "$0")/lib.sh"
e2e_require
mkdir -p "$work"
files=("$guest=iso_guest" "$E2E_HERE/iso_boot.sh=boot.sh")
[ -n "$example" ] && files+=("$example=iso_stream")
e2e_initramfs "$work" "$E2E_HERE/init" "${files[@]}" || exit 1
e2e_banner
e2e_boot "$work" iso "iomem=relaxed" -device qemu-xhci,id=xhci -audiodev none,id=snd0 \
    -device usb-audio,audiodev=snd0,bus=xhci.0 -device qemu-xhci,id=xhci2 -audiodev none,id=snd1 \
    -device usb-audio,audiodev=snd1,bus=xhci2.0 || exit 1
grep -q "^E2E PASS iso" <<<"$E2E_CONSOLE" || { echo "e2e iso: no pass line"; exit 1; }
if [ -n "$example" ]; then
    grep -E "^E2E example: " <<<"$E2E_CONSOLE" | head -n 12
    n=$(grep -cE "^E2E example:   packet +[0-9]+: frame +[0-9]+\.0  host [0-9]+\.[0-9]{9} s  \+-[0-9]+ ns" <<<"$E2E_CONSOLE")
    [ "$n" -eq 32 ] || { echo "e2e iso: the example printed $n packet lines, not 32"; exit 1; }
    ctl=$(grep -E "^E2E example: # .*controller " <<<"$E2E_CONSOLE" | sed 's/.*controller \([^ ]*\) .*/\1/' | sort -u | wc -l)
    [ "$ctl" -eq 2 ] || { echo "e2e iso: the example streamed on $ctl controllers, not 2"; exit 1; }
    echo "e2e iso: the example streamed 4 URBs of 4 packets from each of two devices on two controllers"
fi
