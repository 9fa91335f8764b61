#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The timeline boot (ctest e2e_clock, label e2e): inside the QEMU guest, where
# changing the clocks disturbs nothing, e2e_clock sets the TAI offset to 37 s
# and steps CLOCK_REALTIME, and checks that frame times on REALTIME, TAI,
# BOOTTIME and MONOTONIC move by exactly that.  lib.sh has the shared parts.
#
#   run_clock.sh GUEST_BINARY WORK_DIR
set -uo pipefail
guest=$1
work=$2
. "$(dirname "$0")/lib.sh"
e2e_require
mkdir -p "$work"
e2e_initramfs "$work" "$E2E_HERE/init" "$guest=e2e_clock" "$E2E_HERE/boot_clock.sh=boot.sh" || exit 1
e2e_banner
e2e_boot "$work" clock "" || exit 1
grep -q "^E2E PASS clock" <<<"$E2E_CONSOLE" || { echo "e2e clock: no E2E PASS clock line"; exit 1; }
