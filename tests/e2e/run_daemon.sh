#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The daemon's end-to-end boot (ctest e2e_daemon, label e2e): Debian's kernel
# in QEMU, iomem=relaxed, qemu-xhci with a keyboard.  Its /boot.sh
# (daemon_boot.sh) shows an unprivileged client refused with
# ERROR_ACCESS_DENIED before usbtimesyncd starts, tracking the keyboard
# through it after with no sampler thread of its own, and a new generation
# after the controller is unbound and bound again; it prints the bound.
#
#   run_daemon.sh DAEMON CLIENT CLI WORK_DIR
set -uo pipefail
daemon=$1
client=$2
cli=$3
work=$4
. "$(dirname "$0")/lib.sh"
e2e_require
mkdir -p "$work"
e2e_initramfs "$work" "$E2E_HERE/init" "$daemon=usbtimesyncd" "$client=daemon_guest" "$cli=usbtimesync" \
    "$E2E_HERE/daemon_boot.sh=boot.sh" || exit 1
e2e_banner
e2e_boot "$work" daemon "iomem=relaxed" -device qemu-xhci,id=xhci -device usb-kbd,bus=xhci.0 || exit 1
grep -q "^E2E PASS daemon" <<<"$E2E_CONSOLE" || { echo "e2e daemon: no E2E PASS daemon"; exit 1; }
# list names the daemon that serves the controller, status says how well.
grep -qE "^E2E list: .*daemon: served by pid [0-9]+ \(running\)" <<<"$E2E_CONSOLE" ||
    { echo "e2e daemon: usbtimesync list did not show the daemon serving the controller"; exit 1; }
grep -qE "^E2E status: Source +: mmio" <<<"$E2E_CONSOLE" ||
    { echo "e2e daemon: usbtimesync status did not show the mmio source"; exit 1; }
grep -E "^E2E (daemon (bound|source)|list: .*daemon:)" <<<"$E2E_CONSOLE" | sed 's/^/  /'
exit 0
