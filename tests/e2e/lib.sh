# SPDX-License-Identifier: MIT
# Shared by every end-to-end boot script (run.sh and run_*.sh): the checks
# that skip a boot when its tools are missing, the initramfs, and one QEMU
# boot whose console is kept and whose E2E lines are echoed.  Source it:
#
#   . "$(dirname "$0")/lib.sh"
#   e2e_require                            # exits 77 (ctest: skipped) with the reason
#   e2e_initramfs WORK INIT [FILE...]      # busybox, the USB modules, INIT as /init, each FILE at /
#   e2e_boot WORK NAME APPEND [QEMU ARG...]  # boots; 0 when the guest printed "E2E PASS"
#
# A boot script names what its guest needs: extra kernel modules go in
# $E2E_MODULES (names from the cache's modules/ directory, loaded in order
# after the USB core by the init script); extra files are FILE arguments
# (a "src=dst" argument puts src at /dst).  The guest's init reads
# usbts.* words from the kernel command line (APPEND).
E2E_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_CACHE=${USBTS_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/usbtimesync-e2e}
E2E_ACCEL=${USBTS_E2E_ACCEL:-tcg} # TCG runs anywhere; KVM inside a VM (nested) can hang
# A guard against a hung guest, not a speed limit: a boot takes ~15 s on an
# idle host and ~55 s beside three busy loops on two cores (TCG); 240 s
# leaves room for a host busier still.  ctest's TIMEOUT covers two boots.
E2E_BOOT_TIMEOUT=${USBTS_E2E_BOOT_TIMEOUT:-240}
E2E_MODULES=${E2E_MODULES:-}

e2e_skip() {
    echo "SKIP: $*; run tests/e2e/setup.sh to install QEMU and busybox and fetch Debian's kernel"
    exit 77
}

e2e_require() {
    E2E_QEMU=$(command -v qemu-system-x86_64) || e2e_skip "qemu-system-x86_64 not found"
    [ -x /bin/busybox ] && /bin/busybox --list | grep -x insmod >/dev/null ||
        e2e_skip "a static busybox (busybox-static) not found"
    command -v cpio >/dev/null || e2e_skip "cpio not found"
    [ -f "$E2E_CACHE/vmlinuz" ] || e2e_skip "no kernel in $E2E_CACHE"
    local m
    for m in $E2E_MODULES; do
        [ -f "$E2E_CACHE/modules/$m.ko" ] || e2e_skip "module $m not in $E2E_CACHE/modules"
    done
}

e2e_initramfs() {
    local work=$1 init=$2 f src dst
    shift 2
    local root="$work/root"
    rm -rf "$root"
    mkdir -p "$root"/{bin,lib/modules,proc,sys,dev,tmp,run}
    cp /bin/busybox "$root/bin/busybox"
    for m in usb-common usbcore xhci-hcd xhci-pci $E2E_MODULES; do
        cp "$E2E_CACHE/modules/$m.ko" "$root/lib/modules/"
    done
    echo "$E2E_MODULES" >"$root/lib/modules/extra"
    cp "$init" "$root/init"
    chmod 755 "$root/init"
    for f in "$@"; do
        src=${f%%=*}
        dst=$(basename "$src")
        [ "$src" != "$f" ] && dst=${f#*=}
        [ -e "$src" ] || { echo "FAIL: $src not built"; return 1; }
        cp "$src" "$root/$dst"
        [ -x "$src" ] && chmod 755 "$root/$dst"
    done
    (cd "$root" && find . | cpio -o -H newc --quiet) >"$work/initramfs.cpio" || { echo "FAIL: cpio"; return 1; }
}

# no_timer_check: early in boot the kernel counts timer interrupts over a
# delay loop and panics ("IO-APIC + timer doesn't work!") when too few came;
# an emulated CPU starved by a busy host fails that count with nothing wrong
# (seen beside three busy loops).  KVM guests skip the check for that reason.
#
# Boots the initramfs once.  The console goes to $work/guest-NAME.log; its
# E2E and usbtimesync lines are echoed, prefixed with [NAME].  Sets
# E2E_CONSOLE (the console without carriage returns) and E2E_TOOK (s).
e2e_boot() {
    local work=$1 name=$2 append=$3
    shift 3
    local log="$work/guest-$name.log" start rc
    start=$(date +%s)
    timeout "$E2E_BOOT_TIMEOUT" "$E2E_QEMU" -M q35 -m 256M -smp 2 -accel "$E2E_ACCEL" -display none \
        -monitor none -serial stdio -no-reboot -kernel "$E2E_CACHE/vmlinuz" -initrd "$work/initramfs.cpio" \
        -append "console=ttyS0 quiet loglevel=3 panic=-1 no_timer_check $append" "$@" </dev/null >"$log" 2>&1
    rc=$?
    E2E_TOOK=$(($(date +%s) - start))
    E2E_CONSOLE=$(tr -d '\r' <"$log")
    grep -E '^(E2E|usbtimesync:)' <<<"$E2E_CONSOLE" | sed "s/^/  [$name] /"
    if [ $rc -ne 0 ] || ! grep -q "^E2E PASS" <<<"$E2E_CONSOLE"; then
        echo "e2e $name: FAILED after ${E2E_TOOK} s (qemu exit $rc$([ $rc = 124 ] && echo ": timed out after ${E2E_BOOT_TIMEOUT} s")); the guest's console:"
        tail -n 40 "$log"
        return 1
    fi
    echo "e2e $name: passed in ${E2E_TOOK} s"
}

e2e_banner() {
    echo "e2e: $(cat "$E2E_CACHE/PACKAGE" 2>/dev/null || echo kernel), QEMU $("$E2E_QEMU" --version | head -n 1 | awk '{print $4}'), accel $E2E_ACCEL"
}
