#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The end-to-end test (ctest label e2e): boots Debian's kernel in QEMU with a
# busybox initramfs and qemu-xhci carrying a USB keyboard and tablet, and
# runs e2e_guest inside it twice: booted with iomem=relaxed (the library must
# choose MMIO) and without (the kernel refuses the mapping, so debugfs).
#
#   run.sh GUEST_BINARY WORK_DIR [STATIC_CLI]
#
# Exits 77 (ctest: skipped) with the reason when QEMU, busybox or the kernel
# is missing; tests/e2e/setup.sh installs them, and .ci/run calls it.
set -uo pipefail
guest=$1
work=$2
cli=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
cache=${USBTS_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/usbtimesync-e2e}

skip() {
    echo "SKIP: $*; run tests/e2e/setup.sh to install QEMU and busybox and fetch Debian's kernel"
    exit 77
}
qemu=$(command -v qemu-system-x86_64) || skip "qemu-system-x86_64 not found"
[ -x /bin/busybox ] && /bin/busybox --list | grep -x insmod >/dev/null || skip "a static busybox (busybox-static) not found"
command -v cpio >/dev/null || skip "cpio not found"
[ -f "$cache/vmlinuz" ] || skip "no kernel in $cache"
[ -x "$guest" ] || { echo "FAIL: $guest not built"; exit 1; }

# The initramfs: busybox, the USB modules, the init script and the test.
root="$work/root"
rm -rf "$root"
mkdir -p "$root"/{bin,lib/modules,proc,sys,dev,tmp}
cp /bin/busybox "$root/bin/busybox"
cp "$cache"/modules/*.ko "$root/lib/modules/"
cp "$here/init" "$root/init"
cp "$guest" "$root/e2e_guest"
[ -n "$cli" ] && cp "$cli" "$root/usbtimesync"
chmod 755 "$root/init" "$root/e2e_guest"
(cd "$root" && find . | cpio -o -H newc --quiet) >"$work/initramfs.cpio" || { echo "FAIL: cpio"; exit 1; }

# TCG by default: it runs anywhere, and KVM inside a VM (nested) can hang.
accel=${USBTS_E2E_ACCEL:-tcg}
echo "e2e: $(cat "$cache/PACKAGE" 2>/dev/null || echo kernel), QEMU $("$qemu" --version | head -n 1 | awk '{print $4}'), accel $accel"

status=0
for source in mmio debugfs; do
    extra=""
    [ "$source" = mmio ] && extra="iomem=relaxed"
    log="$work/guest-$source.log"
    start=$(date +%s)
    timeout 80 "$qemu" -M q35 -m 256M -smp 2 -accel "$accel" -display none -monitor none -serial stdio \
        -no-reboot -kernel "$cache/vmlinuz" -initrd "$work/initramfs.cpio" \
        -append "console=ttyS0 quiet loglevel=3 panic=-1 $extra usbts.expect=$source" \
        -device qemu-xhci,id=xhci -device usb-kbd,bus=xhci.0 -device usb-tablet,bus=xhci.0 \
        </dev/null >"$log" 2>&1
    rc=$?
    took=$(( $(date +%s) - start ))
    tr -d '\r' <"$log" | grep -E '^(E2E|usbtimesync:)' | sed "s/^/  [$source] /"
    console=$(tr -d '\r' <"$log")
    why=""
    if [ -n "$cli" ]; then
        # `list` shows the controller with this boot's usable sources, and
        # `track` on the keyboard names the source it uses.
        want_mmio=no
        [ "$source" = mmio ] && want_mmio=yes
        grep -E "^E2E cli: .*xhci_hcd +sources: mmio $want_mmio, debugfs yes" >/dev/null <<<"$console" ||
            why="usbtimesync list did not show xhci_hcd with mmio $want_mmio, debugfs yes"
        grep -E "^E2E cli: # tracking 0627:0001: controller .* source $source" >/dev/null <<<"$console" ||
            why="usbtimesync track did not name the $source source"
    fi
    if [ $rc -ne 0 ] || [ -n "$why" ] || ! grep "^E2E PASS source=$source" >/dev/null <<<"$console"; then
        [ -n "$why" ] && echo "e2e $source: $why"
        echo "e2e $source: FAILED after ${took} s (qemu exit $rc); the guest's console:"
        tail -n 40 "$log"
        status=1
    else
        echo "e2e $source: passed in ${took} s"
    fi
done
exit $status
