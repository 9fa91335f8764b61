#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The scenario soak (`make soak`; issue #16): randomised adversarial scenarios on the simulator's
# virtual clock for a minute of wall time, from a fresh seed each run (printed
# first; every failure prints its own seed and the command that replays it).
# Fails on more than 1% of values outside the bound in any scenario, any wrong
# frame number, a spinning sampler, or a recovery slower than 50 ms of virtual
# time; prints the worst error and the recovery times.
#
#   SOAK_SECONDS  wall-time budget (default 60)
#   SOAK_SEED     seed (default: from the clock)
#   BUILD         build directory holding tests/soak (default build; built if missing)
set -euo pipefail
cd "$(dirname "$0")/../.."

b=${BUILD:-build}
secs=${SOAK_SECONDS:-60}
seed=${SOAK_SEED:-$(date +%s)}
if [ ! -x "$b/tests/soak" ]; then
    cmake -S . -B "$b" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$b" -j "$(nproc 2>/dev/null || echo 2)" --target soak >/dev/null
fi
echo "stage-soak: seed $seed, ${secs} s (replay all: $b/tests/soak --seconds $secs --seed $seed)"
"$b/tests/soak" --seconds "$secs" --seed "$seed"
