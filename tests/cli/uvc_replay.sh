#!/bin/sh
# SPDX-License-Identifier: MIT
# examples/uvc_timestamps.c's parsing, tested without a camera: the simulated
# camera's metadata buffers (kernel block format) are recorded on a
# virtual-clock sim, replayed through the example on the same sim spec, and
# every frame's printed start of exposure is compared with the recorded truth:
# at most 1% outside the printed bound, and nearly every frame answered.
#   uvc_replay.sh RECORDER EXAMPLE [junk]
set -eu
rec=$1
ex=$2
mode=${3:-}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
spec="sim:clock=virtual,seed=21,drift_ppm=25,preempt_prob=0.01"
"$rec" "$spec" 600 "$dir/blocks" "$dir/truth" $mode
"$ex" --replay "$dir/blocks" "$spec" 48000000 >"$dir/out"
head -n 3 "$dir/out"
awk -v mode="$mode" '
    FNR == NR { truth[$2] = $4; n_truth++; next }
    $1 == "frame" && ($2 in truth) {
        e = $6 - truth[$2]; if (e < 0) e = -e
        n++; if (e > $8) out++
        errs[n] = e
        if (mode == "junk" && $12 !~ /junk-sof/) unflagged++
    }
    END {
        # p99 by selection: sort the errors
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (errs[j] < errs[i]) { t = errs[i]; errs[i] = errs[j]; errs[j] = t }
        p99 = n ? errs[int((n - 1) * 0.99) + 1] : -1
        printf "replayed %d of %d frames, p99 error %d ns, %d outside the bound\n", n, n_truth, p99, out
        if (n < n_truth * 0.95) { print "FAIL: too few frames answered"; exit 1 }
        if (out > n * 0.01) { print "FAIL: more than 1% outside the bound"; exit 1 }
        if (mode == "junk" && unflagged > 40) { print "FAIL: junk SOF not flagged on " unflagged " frames"; exit 1 }
        if (mode != "junk" && p99 > 20000) { print "FAIL: p99 above 20 us on a sound camera"; exit 1 }
    }' "$dir/truth" "$dir/out"
