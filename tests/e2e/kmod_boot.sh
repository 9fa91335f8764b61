#!/bin/busybox sh
# SPDX-License-Identifier: MIT
# The guest side of run_kmod.sh's boots, run by the init as /boot.sh with the
# USB core loaded.  usbts.kmod= on the kernel command line picks the boot:
#   stock    a stock command line: insmod, the module's brackets, malformed
#            requests, e2e_guest tracking the keyboard with source kmod
#            (deauthorize, unbind and bind while tracking), the requests again
#            on the rebound controller, three unbinds under a process sending
#            bursts back to back (ENODEV only), rmmod while a tracker is open (must
#            be refused; the tracker goes on), rmmod after it (then the
#            library falls back to debugfs without a word)
#   compare  iomem=relaxed: e2e_guest with the MMIO source and with kmod in
#            the same boot, so their figures compare like with like
# Either way the kernel log must hold no BUG, WARNING or Oops.  Prints
# "E2E KMOD PASS <mode>" when all went well.
mode=$(sed -n 's/.*usbts\.kmod=\([a-z]*\).*/\1/p' /proc/cmdline)
status=0
fail() {
    echo "E2E FAIL: $*"
    status=1
}
# The controller of bus 1 and the bus numbers of the QEMU devices.
controller() { basename "$(readlink -f /sys/bus/usb/devices/usb1/..)"; }
wait_devices() {
    i=0
    while [ "$(cat /sys/bus/usb/devices/*/idVendor 2>/dev/null | grep -c 0627)" -lt 2 ] && [ $i -lt 300 ]; do
        sleep 0.1
        i=$((i + 1))
    done
}

echo "E2E kmod boot $mode: kernel $(uname -r), command line: $(cat /proc/cmdline)"
insmod /usbts_mfindex.ko || fail "insmod usbts_mfindex.ko"
[ -c /dev/usbts_mfindex ] || fail "no /dev/usbts_mfindex after insmod"
wait_devices
ctl=$(controller)
/kmod_guest bracket "$ctl" 4000 || fail "kmod_guest bracket"

if [ "$mode" = stock ]; then
    grep -q iomem=relaxed /proc/cmdline && fail "the stock boot has iomem=relaxed"
    /usbtimesync list >/tmp/list.log 2>&1
    sed 's/^/E2E cli: /' /tmp/list.log
    grep -q "xhci_hcd *sources: kmod yes, mmio no, debugfs yes" /tmp/list.log ||
        fail "list does not show kmod yes, mmio no, debugfs yes"
    /e2e_guest kmod || fail "e2e_guest kmod"
    wait_devices
    ctl=$(controller)
    /kmod_guest requests "$ctl" 1 || fail "kmod_guest requests"
    # Unbind and bind under a reader hammering the module from another process.
    /kmod_guest removal "$ctl" 3 || fail "kmod_guest removal"
    wait_devices

    # rmmod while a tracker has the module open: refused, the tracker goes on.
    /usbtimesync track 0627:0001 --duration 4 --interval 500 >/tmp/track.log 2>&1 &
    pid=$!
    sleep 2
    if rmmod usbts_mfindex 2>/tmp/rmmod.err; then
        fail "rmmod succeeded while a tracker had /dev/usbts_mfindex open"
    else
        echo "E2E kmod rmmod while a tracker is open: refused ($(cat /tmp/rmmod.err))"
    fi
    wait $pid
    rc=$?
    sed 's/^/E2E track: /' /tmp/track.log
    [ $rc = 0 ] || fail "the tracker exited with $rc after the refused rmmod"
    grep -q "source kmod" /tmp/track.log || fail "the tracker did not use the kmod source"
    if rmmod usbts_mfindex; then
        echo "E2E kmod rmmod after the tracker closed: unloaded"
    else
        fail "rmmod after the tracker closed"
    fi
    [ -e /dev/usbts_mfindex ] && fail "/dev/usbts_mfindex is still there after rmmod"
    # Without the module, the library falls back to debugfs without a word.
    /usbtimesync track 0627:0001 --duration 1 --interval 500 >/tmp/track2.log 2>&1 || fail "track without the module"
    sed 's/^/E2E track without the module: /' /tmp/track2.log | head -n 3
    grep -q "source debugfs" /tmp/track2.log || fail "without the module, track did not use debugfs"
    grep "usbtimesync: using" /tmp/track2.log | grep -q kmod && fail "the fallback past the absent module was not silent"
    # ... and list says how to install it.
    /usbtimesync list >/tmp/list2.log 2>&1
    grep -q "sources: kmod no, mmio no, debugfs yes - kmod: the usbts_mfindex kernel module is not loaded.*DKMS" \
        /tmp/list2.log || fail "without the module, list does not say how to install it"
    grep -m 1 "sources:" /tmp/list2.log | sed 's/^/E2E cli without the module: /'
else
    USBTS_SOURCE=mmio /e2e_guest mmio || fail "e2e_guest mmio"
    wait_devices
    /e2e_guest kmod || fail "e2e_guest kmod"
fi

if dmesg | grep -E 'BUG|WARNING|Oops|Call Trace|general protection'; then
    fail "the kernel log has a BUG, WARNING or Oops"
fi
[ $status = 0 ] && echo "E2E KMOD PASS $mode"
exit $status
