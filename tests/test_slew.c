/* SPDX-License-Identifier: MIT */
/*
 * test_slew.c — a host-clock rate step (NTP changing CLOCK_MONOTONIC's
 * rate), and when the old fit stopped being valid (issue #16).
 *
 * Until a capture shows the step nothing can: answers in between are the
 * old fit's, and may fall outside its bound.  From the capture that shows
 * it on, the estimator and the bound must agree that the old fit is over:
 * every answer is inside its bound.  On the virtual clock, for steps of
 * 500 and 1000 ppm either way, with a query every 0.1 ms from 50 ms before
 * the step to 250 ms after: any capture 2 ms or more after the step finds
 * it at least 1 us off the old line and must show it.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "usbtimesync/usbtimesync.h"

#define STEP_AT_MS 4000
#define SHOWN_AFTER_NS 2000000

static void step(double ppm, int seed, long *outside_total, long *late_total, long *n_total, double *worst_late_ms)
{
    char spec[96];
    snprintf(spec, sizeof spec, "sim:clock=virtual,seed=%d,slew_ppm=%g,slew_at_ms=%d", seed, ppm, STEP_AT_MS);
    HANDLE d = usbts_open(spec);
    WINUSB_INTERFACE_HANDLE ih;
    CHECK(WinUsb_Initialize(d, &ih));
    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION s = {NULL, FALSE};
    CHECK(WinUsb_StartTrackingForTimeSync(ih, &s));
    LONGLONG t0;
    CHECK(usbts_now_ns(d, &t0));
    LONGLONG step_at = t0 + STEP_AT_MS * 1000000LL;
    CHECK(usbts_sim_advance(d, (STEP_AT_MS - 50) * 1000000ull));
    unsigned long long caps_at_step = 0;
    bool seen_step = false, captured_after = false;
    for (int i = 0; i < 3000; i++) {
        CHECK(usbts_sim_advance(d, 100000));
        LONGLONG now;
        CHECK(usbts_now_ns(d, &now));
        USBTS_TRACKING_STATS st;
        CHECK(usbts_get_tracking_stats(d, &st));
        if (now >= step_at && !seen_step) {
            seen_step = true;
            caps_at_step = st.Captures;
        }
        /* A capture 2 ms after the step sees it 1 us or more off the old
         * line, far beyond the capture noise: it must show the step. */
        if (seen_step && now < step_at + SHOWN_AFTER_NS)
            caps_at_step = st.Captures;
        if (seen_step && st.Captures > caps_at_step)
            captured_after = true;
        USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;
        memset(&q, 0, sizeof q);
        q.TimeTrackingHandle = s.TimeTrackingHandle;
        CHECK(WinUsb_GetCurrentFrameNumberAndQpc(ih, &q));
        LONGLONG truth;
        CHECK(usbts_sim_truth(d, q.CurrentUSBFrameNumber, q.CurrentHardwareMicroFrameNumber, &truth));
        bool out = llabs(q.CurrentQueryPerformanceCounter.QuadPart * 100 - truth) >
                   (long long)q.PredictedAccuracyInMicroSeconds * 1000;
        *outside_total += out;
        (*n_total)++;
        if (out && captured_after) {
            (*late_total)++;
            double ms = (double)(now - step_at) / 1e6;
            if (ms > *worst_late_ms)
                *worst_late_ms = ms;
        }
    }
    USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION p = {s.TimeTrackingHandle};
    CHECK(WinUsb_StopTrackingForTimeSync(ih, &p));
    CHECK(WinUsb_Free(ih));
    CHECK(usbts_close(d));
}

int main(void)
{
    static const double steps[] = {500, -500, 1000, -1000};
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        long outside = 0, late = 0, n = 0;
        double worst_late_ms = 0;
        for (int seed = 1; seed <= 6; seed++)
            step(steps[k], seed, &outside, &late, &n, &worst_late_ms);
        printf("host clock rate step %+5.0f ppm: %ld of %ld answers outside their bound (%.2f%%), all before a "
               "capture showed the step: %s\n",
               steps[k], outside, n, 100.0 * (double)outside / (double)n, late ? "no" : "yes");
        CHECK_MSG(late == 0, "%+.0f ppm: %ld answers outside their bound after a capture had shown the step (up to "
                             "%.1f ms after it)",
                  steps[k], late, worst_late_ms);
        CHECK_MSG(outside * 100 <= n, "%+.0f ppm: %.2f%% outside", steps[k], 100.0 * (double)outside / (double)n);
    }
    return test_finish();
}
