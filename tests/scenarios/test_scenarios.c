/* SPDX-License-Identifier: MIT */
/*
 * test_scenarios.c — SPEC §6's accuracy, honesty, wrap and recovery targets,
 * asserted in virtual time (deterministic) on the scenarios of bench/accuracy
 * for several seeds each.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "known_failures.h"
#include "scenario.h"
#include "testutil.h"

#define SEEDS 3

/* A check that a known failure (known_failures.h) may fail: printed as
 * XFAIL with its reason instead of counted. */
#define EXPECT(cond, ...)                                                                                        \
    do {                                                                                                         \
        if (known && !(cond)) {                                                                                  \
            printf("XFAIL (%s): ", known);                                                                       \
            printf(__VA_ARGS__);                                                                                 \
            printf("\n");                                                                                        \
        } else {                                                                                                 \
            CHECK_MSG(cond, __VA_ARGS__);                                                                        \
        }                                                                                                        \
    } while (0)

static bool is(const struct scenario *sc, const char *name)
{
    return strcmp(sc->name, name) == 0;
}

int main(void)
{
    for (int i = 0; i < usbts_nscenarios; i++) {
        const struct scenario *sc = &usbts_scenarios[i];
        for (int s = 1; s <= SEEDS; s++) {
            struct scenario_result r;
            bool ok = scenario_run(sc, (uint64_t)s, &r);
            CHECK_MSG(ok, "%s seed %d: %s", sc->name, s, r.failure);
            if (!ok)
                continue;
            const char *known = usbts_known_failure(sc->name, s);
            printf("%-14s seed %d: p99 %6.0f ns, outside %.2f%%, bound %5.0f ns, read/ours %5.0fx, wrap/ours %4.0fx, "
                   "newgen %.1f ms, recovered p99 %.0f ns, frames %lld, recovery %.1f ms, gone %.1f ms, "
                   "frame errors %lld, read share %.3f, outside ns bound %.2f%%\n",
                   sc->name, s, r.p99_ns, 100 * r.outside_share, r.bound_med_ns, r.base_read_p99_ns / r.p99_ns,
                   r.base_wrap_p99_ns / r.p99_ns, r.new_generation_ms, r.recovered_p99_ns, r.frame_jump_error,
                   r.worst_recovery_ms, r.gone_ms, r.frame_errors, r.max_read_share, 100 * r.outside_ns_share);
            /* Honesty, everywhere: >= 99% within the bound, bound not padded
             * beyond what nothing observable can remove: where inside its
             * bracket the register latched.  A constant latch position shifts
             * every capture alike, so no estimator sees it; the bound allows
             * half a bracket for it (the latch=1 scenario shows that error
             * is real), which at debugfs-like 5 us reads exceeds the 1 us of
             * slack that covers it at 500 ns. */
            const char *rk = strstr(sc->keys, "read_ns=");
            double latch_allowance = 0.55 * (rk ? atof(rk + 8) : 500);
            EXPECT(r.outside_share <= 0.01, "%s seed %d: %.2f%% outside the bound", sc->name, s,
                      100 * r.outside_share);
            EXPECT(r.outside_ns_share <= 0.01, "%s seed %d: %.2f%% outside usbts_frame_to_ns's BoundNs", sc->name,
                      s, 100 * r.outside_ns_share);
            /* The watchdog's facts (issue #16), everywhere: the right frame
             * numbers, no spinning sampler, recoveries within 50 ms. */
            EXPECT(r.frame_errors == 0, "%s seed %d: %lld queries named a wrong frame", sc->name, s, r.frame_errors);
            EXPECT(r.max_read_share <= SCENARIO_SPIN_SHARE, "%s seed %d: the sampler spent %.0f%% of 100 ms reading",
                      sc->name, s, 100 * r.max_read_share);
            EXPECT(r.worst_recovery_ms <= SCENARIO_RECOVERY_MS, "%s seed %d: a new generation only after %.1f ms",
                      sc->name, s, r.worst_recovery_ms);
            EXPECT(r.bound_med_ns <= 4 * r.p99_ns + 1000 + (latch_allowance > 1000 ? latch_allowance : 0),
                      "%s seed %d: bound %.0f ns > 4 x p99 %.0f ns + 1 us (+ latch allowance %.0f ns)", sc->name, s,
                      r.bound_med_ns, r.p99_ns, latch_allowance);
            /* Accuracy: read_ns=500, drift within ±500 ppm, 1% preemptions. */
            if (is(sc, "nominal") || is(sc, "drift-500ppm") || is(sc, "drift+500ppm") || is(sc, "preempt-1%")) {
                EXPECT(r.p99_ns <= 1000, "%s seed %d: p99 %.0f ns > 1 us", sc->name, s, r.p99_ns);
                EXPECT(r.base_read_p99_ns >= 50 * r.p99_ns, "%s seed %d: only %.1fx better than a read per query",
                          sc->name, s, r.base_read_p99_ns / r.p99_ns);
                EXPECT(r.base_wrap_p99_ns >= 10 * r.p99_ns, "%s seed %d: only %.1fx better than wrap sampling",
                          sc->name, s, r.base_wrap_p99_ns / r.p99_ns);
            }
            /* Wrap safety: five wraps without the sampler, frames still right,
             * and no generation change for a mere stall. */
            if (is(sc, "stall-10s")) {
                EXPECT(llabs(r.frame_jump_error) <= 1, "%s seed %d: frame number off by %lld after the stall",
                          sc->name, s, r.frame_jump_error);
                EXPECT(r.new_generation_ms < 0 && !r.stall_new_generation, "%s seed %d: a stall started a new generation", sc->name, s);
            }
            /* The truth is the SOF on the wire: an offset the host cannot see
             * is a real error (covered by the bound, checked above). */
            if (is(sc, "sof+250ns") || is(sc, "sof-250ns"))
                EXPECT(r.p99_ns >= 200, "%s seed %d: p99 %.0f ns: the SOF offset does not show in the truth",
                          sc->name, s, r.p99_ns);
            /* Reads that are not samples are thrown away; late wake-ups and a
             * latch anywhere in the bracket cost no accuracy. */
            if (is(sc, "torn-reads") || is(sc, "late-wakeups") || is(sc, "latch-spread"))
                EXPECT(r.p99_ns <= 1000, "%s seed %d: p99 %.0f ns > 1 us", sc->name, s, r.p99_ns);
            /* A controller whose reads come back all ones is gone after
             * 100 ms of them (and 16 reads): ERROR_DEVICE_NOT_CONNECTED. */
            if (is(sc, "vanish"))
                EXPECT(r.gone_ms >= 100 && r.gone_ms <= 200, "%s seed %d: reported gone after %.1f ms", sc->name, s,
                          r.gone_ms);
            /* Recovery: a new generation within 50 ms, accuracy back within 2 s. */
            if (is(sc, "reset") || is(sc, "halt-100ms") || is(sc, "reset-halted") || is(sc, "suspend")) {
                EXPECT(r.new_generation_ms >= 0 && r.new_generation_ms <= 50, "%s seed %d: new generation after %.1f ms",
                          sc->name, s, r.new_generation_ms);
                EXPECT(r.recovered_p99_ns <= 1000, "%s seed %d: p99 %.0f ns 2 s after the event", sc->name, s,
                          r.recovered_p99_ns);
            }
        }
    }
    return test_finish();
}
