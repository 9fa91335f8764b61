#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The isochronous end-to-end test (ctest e2e_iso, label e2e): boots Debian's
# kernel in QEMU with qemu-xhci carrying QEMU's usb-audio (full speed,
# isochronous OUT endpoint 0x01) and usbmon loaded, and runs iso_guest, which
# compares every URB's inferred start frame with the one usbmon recorded.
#
#   run_iso.sh GUEST_BINARY WORK_DIR
#
# Exits 77 (ctest: skipped) with the reason when QEMU, busybox, the kernel or
# the usbmon module is missing (tests/e2e/setup.sh fetches them).  Booted with
# iomem=relaxed, so the library tracks through MMIO (the tighter bound).
set -uo pipefail
guest=$1
work=$2
E2E_MODULES="usbmon"
. "$(dirname "$0")/lib.sh"
e2e_require
mkdir -p "$work"
e2e_initramfs "$work" "$E2E_HERE/init" "$guest=iso_guest" "$E2E_HERE/iso_boot.sh=boot.sh" || exit 1
e2e_banner
e2e_boot "$work" iso "iomem=relaxed" -device qemu-xhci,id=xhci -audiodev none,id=snd0 \
    -device usb-audio,audiodev=snd0,bus=xhci.0 || exit 1
grep -q "^E2E PASS iso" <<<"$E2E_CONSOLE" || { echo "e2e iso: no pass line"; exit 1; }
