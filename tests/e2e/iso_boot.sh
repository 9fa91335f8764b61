#!/bin/busybox sh
# SPDX-License-Identifier: MIT
# The isochronous boot's guest script (run by init as /boot.sh, usbmon
# loaded): waits for QEMU's usb-audio to enumerate, then streams from it.
i=0
while ! grep -qx 46f4 /sys/bus/usb/devices/*/idVendor 2>/dev/null && [ $i -lt 100 ]; do
    sleep 0.1
    i=$((i + 1))
done
echo "E2E guest: kernel $(uname -r); $(cat /sys/bus/usb/devices/*/product 2>/dev/null | tr '\n' ',')"
/iso_guest 300 || exit 1
# The example, on the same device (BUS:DEV from sysfs).
if [ -x /iso_stream ]; then
    for d in /sys/bus/usb/devices/*; do
        [ "$(cat "$d/idVendor" 2>/dev/null)" = 46f4 ] || continue
        /iso_stream --urbs 4 --packets 4 "$(cat "$d/busnum"):$(cat "$d/devnum")" 2>&1 | sed 's/^/E2E example: /'
    done
fi
