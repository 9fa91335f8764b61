/* SPDX-License-Identifier: MIT */
/*
 * test_truth.c — returned QPCs against the simulated controller's truth.
 *
 * Stated bound: on a virtual-clock sim with read_ns=500 and drift up to
 * ±500 ppm, after 2 s of tracking, the 99th percentile error of returned
 * QPCs is at most 1 µs, and at least 99% of them lie within their
 * PredictedAccuracyInMicroSeconds.
 */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "usbtimesync/usbtimesync.h"

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

static unsigned long long rng_state = 88172645463325252ull;
static unsigned long long rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

#define NQ 2000

static void run(const char *spec)
{
    HANDLE d = usbts_open(spec);
    CHECK_MSG(d != INVALID_HANDLE_VALUE, "open %s: %s", spec, usbts_last_error_message());
    WINUSB_INTERFACE_HANDLE ih;
    CHECK(WinUsb_Initialize(d, &ih));
    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION s = {NULL, FALSE};
    CHECK(WinUsb_StartTrackingForTimeSync(ih, &s));
    CHECK(usbts_sim_advance(d, 2000000000ull));

    static long long err_ns[2 * NQ];
    int n = 0, outside = 0, sof_bad = 0;
    unsigned max_acc = 0;
    for (int i = 0; i < NQ; i++) {
        CHECK(usbts_sim_advance(d, 100000 + rnd() % 3000000)); /* 0.1..3.1 ms, any phase */
        USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;
        memset(&q, 0, sizeof q);
        q.TimeTrackingHandle = s.TimeTrackingHandle;
        /* an input frame up to ±100 frames away, any microframe */
        if (!WinUsb_GetCurrentFrameNumberAndQpc(ih, &q)) {
            CHECK_MSG(0, "query failed: %s", usbts_last_error_message());
            break;
        }
        q.InputFrameNumber = q.CurrentUSBFrameNumber + (ULONG)((int)(rnd() % 201) - 100);
        q.InputMicroFrameNumber = (ULONG)(rnd() % 8);
        if (!WinUsb_GetCurrentFrameNumberAndQpc(ih, &q)) {
            CHECK_MSG(0, "query failed: %s", usbts_last_error_message());
            break;
        }
        LONGLONG t_in, t_cur, t_sof;
        CHECK(usbts_sim_truth(d, q.InputFrameNumber, q.InputMicroFrameNumber, &t_in));
        CHECK(usbts_sim_truth(d, q.CurrentUSBFrameNumber, q.CurrentHardwareMicroFrameNumber, &t_cur));
        CHECK(usbts_sim_truth(d, q.CurrentUSBFrameNumber, 0, &t_sof));
        long long e_in = q.QueryPerformanceCounterAtInputFrameOrMicroFrame.QuadPart * 100 - t_in;
        long long e_cur = q.CurrentQueryPerformanceCounter.QuadPart * 100 - t_cur;
        long long acc_ns = (long long)q.PredictedAccuracyInMicroSeconds * 1000;
        outside += llabs(e_in) > acc_ns;
        outside += llabs(e_cur) > acc_ns;
        err_ns[n++] = llabs(e_in);
        err_ns[n++] = llabs(e_cur);
        if (q.PredictedAccuracyInMicroSeconds > max_acc)
            max_acc = q.PredictedAccuracyInMicroSeconds;

        /* The SOF time as device authors derive it: current microframe's QPC
         * minus microframe x 125 µs, against the library's QPC for
         * (current frame, microframe 0). */
        USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q0 = q;
        q0.InputFrameNumber = q.CurrentUSBFrameNumber;
        q0.InputMicroFrameNumber = 0;
        CHECK(WinUsb_GetCurrentFrameNumberAndQpc(ih, &q0));
        if (q0.CurrentUSBFrameNumber == q.CurrentUSBFrameNumber) {
            long long derived = q.CurrentQueryPerformanceCounter.QuadPart - (long long)q.CurrentHardwareMicroFrameNumber * 1250;
            long long lib = q0.QueryPerformanceCounterAtInputFrameOrMicroFrame.QuadPart;
            /* Device authors assume a nominal 125 µs microframe; the frame
             * clock may run up to 1000 ppm off, which over 7 microframes is
             * under 9 ticks.  Beyond that, the two disagree. */
            long long allow = 1 + (long long)q.CurrentHardwareMicroFrameNumber * 125000 / 1000 / 100 + 1;
            sof_bad += llabs(derived - lib) > allow;
            sof_bad += llabs(lib * 100 - t_sof) > (long long)q0.PredictedAccuracyInMicroSeconds * 1000;
        }
    }
    qsort(err_ns, (size_t)n, sizeof err_ns[0], cmp_ll);
    long long p50 = err_ns[n / 2], p99 = err_ns[(n * 99) / 100], mx = err_ns[n - 1];
    printf("%-60s p50 %5lld ns  p99 %5lld ns  max %6lld ns  outside bound %d/%d  max bound %u us\n", spec, p50, p99, mx,
           outside, n, max_acc);
    CHECK_MSG(p99 <= 1000, "%s: p99 error %lld ns > 1 µs", spec, p99);
    CHECK_MSG(outside * 100 <= n, "%s: %d of %d values outside their bound", spec, outside, n);
    CHECK_MSG(max_acc <= 4 * (unsigned)((p99 + 999) / 1000) + 1 || max_acc <= 1, "%s: bound %u µs padded", spec,
              max_acc);
    CHECK_EQ(sof_bad, 0);

    USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION st = {s.TimeTrackingHandle};
    CHECK(WinUsb_StopTrackingForTimeSync(ih, &st));
    CHECK(WinUsb_Free(ih));
    CHECK(usbts_close(d));
}

/* The first query after Start(FALSE): Start returns with a captured
 * boundary, so that query is already inside its bound.  The query's microframe
 * is checked against the truth: an answer one microframe off is 125 µs off,
 * give or take the model's own error, so the check catches it only while the
 * bound is under half a microframe (TELLS_US).  Returns the bound (µs). */
#define TELLS_US 62
static unsigned first_query(const char *spec, long long *err_out)
{
    HANDLE d = usbts_open(spec);
    CHECK_MSG(d != INVALID_HANDLE_VALUE, "open %s: %s", spec, usbts_last_error_message());
    WINUSB_INTERFACE_HANDLE ih;
    CHECK(WinUsb_Initialize(d, &ih));
    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION s = {NULL, FALSE};
    CHECK(WinUsb_StartTrackingForTimeSync(ih, &s));
    USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;
    memset(&q, 0, sizeof q);
    q.TimeTrackingHandle = s.TimeTrackingHandle;
    CHECK(WinUsb_GetCurrentFrameNumberAndQpc(ih, &q));
    LONGLONG truth;
    CHECK(usbts_sim_truth(d, q.CurrentUSBFrameNumber, q.CurrentHardwareMicroFrameNumber, &truth));
    long long err = q.CurrentQueryPerformanceCounter.QuadPart * 100 - truth;
    unsigned bound = (unsigned)q.PredictedAccuracyInMicroSeconds;
    printf("%s, first query: error %lld ns, bound %u us\n", spec, err, bound);
    /* What holds whatever the load: the bound is finite (at least 1 µs, not
     * saturated at 0xFFFFFFFF) and the answer lies inside it. */
    CHECK_MSG(bound >= 1 && bound < 0xFFFFFFFFu, "%s: first query bound %u µs", spec, bound);
    CHECK_MSG(llabs(err) <= (long long)bound * 1000, "%s: first query error %lld ns outside its bound %u µs", spec, err,
              bound);
    USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION st = {s.TimeTrackingHandle};
    CHECK(WinUsb_StopTrackingForTimeSync(ih, &st));
    CHECK(WinUsb_Free(ih));
    CHECK(usbts_close(d));
    *err_out = err;
    return bound;
}

/* Virtual clock: deterministic, so here the bound itself is asserted.  A
 * Start that returned before capturing a boundary would state the coarse
 * bound of a single read (65 µs for this spec); a captured one is a few µs. */
static void first_query_virtual_clock(void)
{
    long long err;
    unsigned bound = first_query("sim:clock=virtual,seed=3,drift_ppm=300", &err);
    CHECK_MSG(bound <= 20, "virtual clock: first query bound %u µs (a captured boundary gives a few µs)", bound);
}

/* Real clock: how tight the first bound is depends on how the sampler's reads
 * were scheduled (a busy machine stretches them), so it is printed, never
 * asserted.  The error-within-bound check tells a wrong microframe only while
 * the bound is under TELLS_US; an attempt whose reads a loaded machine
 * stretched past that cannot show it, so it is retried, at most 5 times in
 * all.  Every attempt must still be honest. */
static void first_query_real_clock(void)
{
    enum { ATTEMPTS = 5 };
    int tries = 0;
    unsigned bound = 0;
    long long err = 0;
    do {
        bound = first_query("sim:seed=3,drift_ppm=300", &err);
        tries++;
    } while (bound >= TELLS_US && tries < ATTEMPTS);
    if (bound >= TELLS_US)
        printf("real clock: all %d first bounds >= %d us (a loaded machine); the microframe was checked on the virtual "
               "clock only\n",
               tries, TELLS_US);
    else
        printf("real clock: the first query named the right microframe (error %lld ns, bound %u us, attempt %d)\n", err,
               bound, tries);
}

int main(void)
{
    run("sim:clock=virtual,seed=1");
    run("sim:clock=virtual,seed=2,drift_ppm=500,preempt_prob=0.01");
    run("sim:clock=virtual,seed=3,drift_ppm=-500,preempt_prob=0.01");
    run("sim:clock=virtual,seed=4,drift_ppm=123.4,latch=0.9");
    first_query_virtual_clock();
    first_query_real_clock();
    return test_finish();
}
