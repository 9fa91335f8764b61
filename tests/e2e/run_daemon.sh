#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The daemon's end-to-end boots (ctest e2e_daemon, label e2e): Debian's kernel
# in QEMU, qemu-xhci with a keyboard.  Their /boot.sh (daemon_boot.sh) shows
# an unprivileged client refused with ERROR_ACCESS_DENIED before usbtimesyncd
# starts, tracking the keyboard through it after with no sampler thread of its
# own, and a new generation after the controller is unbound and bound again;
# it prints the bound.  Two boots:
#   mmio  iomem=relaxed: the daemon maps the controller's registers
#   kmod  a stock command line with the usbts_mfindex module (kmod_build's)
#         loaded: the daemon reads MFINDEX through it.  Skipped (said so,
#         not failed) when the module was not built for the cached kernel.
# The daemon runs with its systemd unit's CapabilityBoundingSet only (capbset),
# so each boot shows that set is enough for its source and for opening a
# usbfs node root does not own.
#
#   run_daemon.sh DAEMON CLIENT CLI WORK_DIR CAPBSET [MODULE_KO]
set -uo pipefail
daemon=$1
client=$2
cli=$3
work=$4
capbset=$5
ko=${6:-}
. "$(dirname "$0")/lib.sh"
e2e_require
mkdir -p "$work"
# The module goes in only when it was built for the kernel the guest boots.
kernel=$(sed -n 's/^linux-image-//p' "$E2E_CACHE/PACKAGE" 2>/dev/null)
kmod_skip=""
if [ -z "$ko" ] || [ ! -f "$ko" ]; then
    kmod_skip="the module was not built (kmod_build skipped: no kernel headers)"
else
    vermagic=$(objcopy -O binary --only-section=.modinfo "$ko" /dev/stdout 2>/dev/null | tr '\0' '\n' |
        sed -n 's/^vermagic=\([^ ]*\).*/\1/p')
    [ -n "$kernel" ] && [ "$vermagic" = "$kernel" ] ||
        kmod_skip="the module was built for ${vermagic:-?}, the cached kernel is ${kernel:-?}"
fi
files=("$daemon=usbtimesyncd" "$client=daemon_guest" "$cli=usbtimesync" "$E2E_HERE/daemon_boot.sh=boot.sh"
    "$capbset=capbset" "$E2E_HERE/../../daemon/usbtimesyncd.service=usbtimesyncd.service")
[ -z "$kmod_skip" ] && files+=("$ko=usbts_mfindex.ko")
e2e_initramfs "$work" "$E2E_HERE/init" "${files[@]}" || exit 1
e2e_banner

# One boot: its name, its source, its kernel command line.
boot() {
    local name=$1 source=$2 append=$3
    e2e_boot "$work" "$name" "$append usbts.daemon=$source" -device qemu-xhci,id=xhci -device usb-kbd,bus=xhci.0 ||
        return 1
    grep -q "^E2E PASS daemon" <<<"$E2E_CONSOLE" || { echo "e2e $name: no E2E PASS daemon"; return 1; }
    # list names the daemon that serves the controller, status says how well.
    grep -qE "^E2E list: .*daemon: served by pid [0-9]+ \(running\)" <<<"$E2E_CONSOLE" ||
        { echo "e2e $name: usbtimesync list did not show the daemon serving the controller"; return 1; }
    grep -qE "^E2E status: Source +: $source\$" <<<"$E2E_CONSOLE" ||
        { echo "e2e $name: usbtimesync status did not show the $source source"; return 1; }
    grep -qE "^E2E daemon caps: CapBnd:[[:space:]]+0000000000000002$" <<<"$E2E_CONSOLE" ||
        { echo "e2e $name: the daemon did not run with the unit's bounding set alone (CAP_DAC_OVERRIDE)"; return 1; }
    grep -E "^E2E (daemon (bound|source|caps)|list: .*daemon:)" <<<"$E2E_CONSOLE" | sed "s/^/  [$name] /"
    return 0
}

status=0
boot daemon mmio "iomem=relaxed" || status=1
if [ -n "$kmod_skip" ]; then
    echo "e2e daemon-kmod: not booted: $kmod_skip"
else
    boot daemon-kmod kmod "" || status=1
fi
exit $status
