#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The end-to-end test (ctest e2e_qemu, label e2e): boots Debian's kernel in
# QEMU with a busybox initramfs and qemu-xhci carrying a USB keyboard and
# tablet, and runs e2e_guest inside it twice: booted with iomem=relaxed (the
# library must choose MMIO) and without (the kernel refuses the mapping, so
# debugfs).  lib.sh has the parts every boot script shares.
#
#   run.sh GUEST_BINARY WORK_DIR [STATIC_CLI]
#
# Exits 77 (ctest: skipped) with the reason when QEMU, busybox or the kernel
# is missing; tests/e2e/setup.sh installs them, and .ci/run calls it.
set -uo pipefail
guest=$1
work=$2
cli=${3:-}
. "$(dirname "$0")/lib.sh"
e2e_require
mkdir -p "$work"
files=("$guest=e2e_guest")
[ -n "$cli" ] && files+=("$cli=usbtimesync")
e2e_initramfs "$work" "$E2E_HERE/init" "${files[@]}" || exit 1
e2e_banner

status=0
for source in mmio debugfs; do
    extra=""
    [ "$source" = mmio ] && extra="iomem=relaxed"
    if ! e2e_boot "$work" "$source" "$extra usbts.expect=$source" \
        -device qemu-xhci,id=xhci -device usb-kbd,bus=xhci.0 -device usb-tablet,bus=xhci.0; then
        status=1
        continue
    fi
    if ! grep -q "^E2E PASS source=$source" <<<"$E2E_CONSOLE"; then
        echo "e2e $source: the guest passed with another source than $source"
        status=1
    fi
    if [ -n "$cli" ]; then
        # `list` shows the controller with this boot's usable sources, and
        # `track` on the keyboard names the source it uses.
        want_mmio=no
        [ "$source" = mmio ] && want_mmio=yes
        grep -qE "^E2E cli: .*xhci_hcd +sources: kmod no, mmio $want_mmio, debugfs yes" <<<"$E2E_CONSOLE" ||
            { echo "e2e $source: usbtimesync list did not show xhci_hcd with kmod no, mmio $want_mmio, debugfs yes"; status=1; }
        grep -qE "^E2E cli: # tracking 0627:0001: controller .* source $source" <<<"$E2E_CONSOLE" ||
            { echo "e2e $source: usbtimesync track did not name the $source source"; status=1; }
    fi
done
exit $status
