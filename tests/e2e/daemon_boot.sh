# SPDX-License-Identifier: MIT
# /boot.sh of the daemon's boot (run_daemon.sh): an unprivileged client is
# refused before the daemon runs, tracks the keyboard through it after, and
# sees a new generation once the controller is unbound and bound again.
TEST_UID=1000
kbd_node() {
    for d in /sys/bus/usb/devices/*; do
        [ "$(cat $d/idVendor 2>/dev/null):$(cat $d/idProduct 2>/dev/null)" = 0627:0001 ] || continue
        printf '/dev/bus/usb/%03d/%03d\n' "$(cat $d/busnum)" "$(cat $d/devnum)"
        return 0
    done
    return 1
}
# The guest has no udev: give the keyboard's node to the test uid, as a rule would.
give_node() {
    i=0
    while ! node=$(kbd_node) && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
    [ -n "$node" ] || { echo "E2E FAIL: no keyboard"; return 1; }
    chown $TEST_UID "$node" && chmod 0600 "$node"
    echo "E2E node $node given to uid $TEST_UID"
}
give_node || exit 1
ctl=$(basename "$(readlink -f /sys/bus/usb/devices/usb1/..)")
echo "E2E controller $ctl"
status=0
/daemon_guest $TEST_UID refused || status=1
/usbtimesyncd -v 2>&1 | sed 's/^/E2E daemon log: /' &
i=0
while [ ! -S /run/usbtimesync/socket ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
/daemon_guest $TEST_UID track >/tmp/client.log 2>&1 &
client=$!
i=0
while ! grep -q "^E2E unbind now" /tmp/client.log && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
echo "$ctl" >/sys/bus/pci/drivers/xhci_hcd/unbind
sleep 0.5
echo "$ctl" >/sys/bus/pci/drivers/xhci_hcd/bind
give_node || status=1
touch /tmp/rebound
wait $client || status=1
cat /tmp/client.log
/usbtimesync status 2>&1 | sed 's/^/E2E status: /'
/usbtimesync list 2>&1 | sed 's/^/E2E list: /'
grep -q "^E2E FAIL" /tmp/client.log && status=1
[ $status = 0 ] && echo "E2E PASS daemon"
exit $status
