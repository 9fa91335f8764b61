/* SPDX-License-Identifier: MIT */
/*
 * test_wander.c — a bound that knows the frame clock wanders (issue #16).
 *
 * A real crystal's rate wanders with temperature (the simulator's
 * wander_ppm: 0.2-2 ppm, periods of 5-60 s).  Extrapolating the fit is then
 * only as good as the rate stays put, so the bound must grow with the
 * distance from the fitted window by a rate uncertainty measured from the
 * data.  On the virtual clock, against the simulator's truth:
 *   - the sampler stalls for 1.5 s and for 10 s: queries in the stall's last
 *     100 ms and in the 100 ms after it;
 *   - frames asked 1-2 s ahead of the fit (their truth is read once they are
 *     near, since a truth names the frame nearest now);
 * each with at least 99% inside the bound, and without wander the bound
 * stays tight (no regression of the nominal accuracy).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "usbtimesync/usbtimesync.h"

struct tally {
    long n, outside;
    long long worst_err;
    double worst_ratio;
    double bound_sum;
};

static void count(struct tally *t, long long err, long long bound)
{
    t->n++;
    t->outside += err > bound;
    if (err > t->worst_err)
        t->worst_err = err;
    double r = (double)err / (double)bound;
    if (r > t->worst_ratio)
        t->worst_ratio = r;
    t->bound_sum += (double)bound;
}

static ULONG current_mf(const struct test_tracked *k)
{
    USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;
    memset(&q, 0, sizeof q);
    q.TimeTrackingHandle = k->th;
    CHECK(WinUsb_GetCurrentFrameNumberAndQpc(k->ih, &q));
    return q.CurrentUSBFrameNumber * 8 + q.CurrentHardwareMicroFrameNumber;
}

/* The current microframe's start, checked against the truth now. */
static void ask_now(const struct test_tracked *k, struct tally *t)
{
    ULONG m = current_mf(k);
    USBTS_FRAME_TIME ft;
    LONGLONG truth;
    if (!usbts_frame_to_ns(k->ih, k->th, m >> 3, m & 7, &ft) || !usbts_sim_truth(k->d, m >> 3, m & 7, &truth)) {
        CHECK_MSG(false, "query failed: %s", usbts_last_error_message());
        return;
    }
    count(t, llabs(ft.StartNs - truth), ft.BoundNs);
}

static uint64_t rng = 12345;
static uint32_t next_u32(void)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng >> 33);
}

/* Frames 1-2 s ahead of now (the fit's newest capture is at most a cadence
 * old), answered now and judged once they are near. */
static void ask_ahead(const struct test_tracked *k, struct tally *t)
{
    enum { N = 300 };
    ULONG mf[N];
    LONGLONG start[N], bound[N];
    for (int i = 0; i < N; i++) {
        CHECK(usbts_sim_advance(k->d, 3000)); /* all asked within ~1 ms */
        mf[i] = current_mf(k) + 8000 + next_u32() % 8000;
        USBTS_FRAME_TIME ft;
        CHECK(usbts_frame_to_ns(k->ih, k->th, mf[i] >> 3, mf[i] & 7, &ft));
        start[i] = ft.StartNs;
        bound[i] = ft.BoundNs;
    }
    CHECK(usbts_sim_advance(k->d, 1500000000ull));
    for (int i = 0; i < N; i++) {
        LONGLONG truth;
        CHECK(usbts_sim_truth(k->d, mf[i] >> 3, mf[i] & 7, &truth));
        count(t, llabs(start[i] - truth), bound[i]);
    }
}

static void report(const char *what, const struct tally *t, double min_inside)
{
    double inside = t->n ? 1.0 - (double)t->outside / (double)t->n : 0;
    printf("%-46s %6ld values, %6.2f%% inside, worst %7lld ns (%.2f of its bound), mean bound %8.0f ns\n", what, t->n,
           100 * inside, t->worst_err, t->worst_ratio, t->n ? t->bound_sum / (double)t->n : 0.0);
    CHECK_MSG(t->n > 0 && inside >= min_inside, "%s: %.2f%% inside the bound", what, 100 * inside);
}

static void stall_and_ahead(double wander, int stall_ms, int seeds)
{
    struct tally during = {0}, after = {0}, ahead = {0};
    for (int s = 1; s <= seeds; s++) {
        char spec[96];
        snprintf(spec, sizeof spec, "sim:clock=virtual,seed=%d,wander_ppm=%g,drift_ppm=%d", 40 + s, wander,
                 (s % 5 - 2) * 90);
        struct test_tracked k;
        if (!test_track(&k, spec)) {
            CHECK_MSG(false, "%s: %s", spec, usbts_last_error_message());
            continue;
        }
        CHECK(usbts_sim_advance(k.d, 20000000000ull));
        ask_ahead(&k, &ahead);
        char ev[32];
        snprintf(ev, sizeof ev, "stall_ms=%d", stall_ms);
        CHECK(usbts_sim_inject(k.d, ev));
        CHECK(usbts_sim_advance(k.d, (ULONGLONG)stall_ms * 1000000 - 100000000));
        for (int i = 0; i < 100; i++) {
            CHECK(usbts_sim_advance(k.d, 1000000));
            ask_now(&k, &during);
        }
        for (int i = 0; i < 1000; i++) {
            CHECK(usbts_sim_advance(k.d, 100000));
            ask_now(&k, &after);
        }
        CHECK(test_untrack(&k));
    }
    char what[96];
    snprintf(what, sizeof what, "wander %.1f ppm, last 100 ms of a %.1f s stall", wander, stall_ms / 1000.0);
    report(what, &during, 0.99);
    snprintf(what, sizeof what, "wander %.1f ppm, 100 ms after a %.1f s stall", wander, stall_ms / 1000.0);
    report(what, &after, 0.99);
    snprintf(what, sizeof what, "wander %.1f ppm, frames 1-2 s ahead", wander);
    report(what, &ahead, 0.99);
}

/* Without wander nothing grows where nothing is extrapolated: the bound on
 * the current microframe stays near its nominal size. */
static void tight_without_wander(void)
{
    struct test_tracked k;
    CHECK(test_track(&k, "sim:clock=virtual,seed=5"));
    CHECK(usbts_sim_advance(k.d, 10000000000ull));
    struct tally t = {0};
    for (int i = 0; i < 2000; i++) {
        CHECK(usbts_sim_advance(k.d, 100000 + next_u32() % 2900000));
        ask_now(&k, &t);
    }
    report("no wander, current microframe", &t, 0.99);
    CHECK_MSG(t.bound_sum / (double)t.n < 1000, "mean bound %.0f ns without wander", t.bound_sum / (double)t.n);
    CHECK(test_untrack(&k));
}

int main(void)
{
    tight_without_wander();
    stall_and_ahead(0.2, 10000, 3);
    stall_and_ahead(1.0, 1500, 3);
    stall_and_ahead(2.0, 1500, 3);
    stall_and_ahead(2.0, 10000, 3);
    return test_finish();
}
