# SPDX-License-Identifier: MIT
# The clock boot's guest script (/boot.sh, run by the init): the timeline
# checks, which change the guest's clocks (never the host's).
echo "E2E guest: kernel $(uname -r), clock checks"
/e2e_clock
