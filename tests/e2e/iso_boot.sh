#!/bin/busybox sh
# SPDX-License-Identifier: MIT
# The isochronous boot's guest script (run by init as /boot.sh, usbmon
# loaded): waits for QEMU's two usb-audio devices (one on each controller) to
# enumerate, then streams from them.
# (~1 s on an idle host, longer when a busy one starves the emulated CPUs;
# at most 30 s).  One count over all the files: grep -c over several prints
# a count per file, which the test cannot compare, so it never waited.
i=0
while [ "$(cat /sys/bus/usb/devices/*/idVendor 2>/dev/null | grep -cx 46f4)" -lt 2 ] && [ $i -lt 300 ]; do
    sleep 0.1
    i=$((i + 1))
done
echo "E2E guest: kernel $(uname -r); $(cat /sys/bus/usb/devices/*/product 2>/dev/null | tr '\n' ',')"
/iso_guest 300 || exit 1
# The example, on every usb-audio device at once (one per controller: each
# has its own tracker), named BUS:DEV from sysfs.
if [ -x /iso_stream ]; then
    devs=""
    for d in /sys/bus/usb/devices/*; do
        [ "$(cat "$d/idVendor" 2>/dev/null)" = 46f4 ] && devs="$devs $(cat "$d/busnum"):$(cat "$d/devnum")"
    done
    /iso_stream --urbs 4 --packets 4 $devs 2>&1 | sed 's/^/E2E example: /'
fi
