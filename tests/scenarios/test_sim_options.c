/* SPDX-License-Identifier: MIT */
/*
 * test_sim_options.c — the less kind simulator's options (issue #16), each
 * against what it promises, and the virtual clock's promise that how the
 * caller slices time changes nothing.
 */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"
#include "usbtimesync/usbtimesync.h"

#define MS 1000000ull

struct dev {
    HANDLE d;
    WINUSB_INTERFACE_HANDLE ih;
    HANDLE th;
};

static bool open_tracked(const char *spec, struct dev *v)
{
    memset(v, 0, sizeof *v);
    v->d = usbts_open(spec);
    if (v->d == INVALID_HANDLE_VALUE) {
        CHECK_MSG(0, "open %s: %s", spec, usbts_last_error_message());
        return false;
    }
    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION s = {NULL, FALSE};
    if (!WinUsb_Initialize(v->d, &v->ih) || !WinUsb_StartTrackingForTimeSync(v->ih, &s)) {
        CHECK_MSG(0, "start %s: %s", spec, usbts_last_error_message());
        usbts_close(v->d);
        return false;
    }
    v->th = s.TimeTrackingHandle;
    return true;
}

static void close_dev(struct dev *v)
{
    usbts_close(v->d); /* frees the interface and stops its tracking */
}

static void parse_errors(void)
{
    static const char *bad[] = {
        "sim:sof_ns=1001",     "sim:sof_ns=-1001", "sim:fladj=32.5",      "sim:fladj=64",   "sim:torn_prob=0.6",
        "sim:allones_prob=-1", "sim:ntp_ms=5",     "sim:ntp_ppm=501",     "sim:walk_ppm=11", "sim:slow_reads=0",
        "sim:latch_spread=2",  "sim:wake_prob=1.5", "sim:slow_ns=2000000",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        SetLastError(0);
        HANDLE d = usbts_open(bad[i]);
        CHECK_MSG(d == INVALID_HANDLE_VALUE && GetLastError() == ERROR_INVALID_PARAMETER, "%s refused", bad[i]);
        if (d != INVALID_HANDLE_VALUE)
            usbts_close(d);
    }
    HANDLE d = usbts_open("sim:clock=virtual,sof_ns=-1000,fladj=0,torn_prob=0.5,allones_prob=0.5,ntp_ppm=500,"
                          "ntp_ms=10,walk_ppm=10,slow_prob=1,slow_reads=1,slow_ns=0,latch_spread=1,wake_prob=1,"
                          "wake_us=0");
    CHECK_MSG(d != INVALID_HANDLE_VALUE, "every option at an end of its range: %s", usbts_last_error_message());
    if (d == INVALID_HANDLE_VALUE)
        return;
    static const char *events[] = {"reset_halt_ms=5", "suspend_ms=5", "fladj=0", "fladj=63", "vanish"};
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++)
        CHECK_MSG(usbts_sim_inject(d, events[i]), "event %s: %s", events[i], usbts_last_error_message());
    static const char *bad_events[] = {"fladj=64", "fladj=", "suspend_ms=0", "reset_halt_ms=60001", "vanish=1"};
    for (size_t i = 0; i < sizeof bad_events / sizeof bad_events[0]; i++)
        CHECK_FAILS_WITH(usbts_sim_inject(d, bad_events[i]), ERROR_INVALID_PARAMETER);
    usbts_close(d);
}

/* The truth is the SOF on the wire: sof_ns later than the MFINDEX edge,
 * exactly, and the reads do not change with it. */
static void sof_truth(void)
{
    HANDLE a = usbts_open("sim:clock=virtual,seed=5"), b = usbts_open("sim:clock=virtual,seed=5,sof_ns=-700");
    CHECK(a != INVALID_HANDLE_VALUE && b != INVALID_HANDLE_VALUE);
    for (int i = 0; i < 50; i++) {
        LONGLONG ba = 0, aa = 0, bb = 0, ab = 0, ta = 0, tb = 0;
        ULONG ma = 0, mb = 0;
        CHECK(usbts_sim_read(a, &ba, &ma, &aa) && usbts_sim_read(b, &bb, &mb, &ab));
        CHECK(ba == bb && aa == ab && ma == mb);
        CHECK(usbts_sim_truth(a, (ma >> 3) & 0x7FF, ma & 7, &ta) && usbts_sim_truth(b, (mb >> 3) & 0x7FF, mb & 7, &tb));
        CHECK_EQ(tb - ta, -700);
        CHECK(usbts_sim_advance(a, 37 * 1000 * (ULONGLONG)i + 1) && usbts_sim_advance(b, 37 * 1000 * (ULONGLONG)i + 1));
    }
    usbts_close(a);
    usbts_close(b);
}

/* A reset that halts first reads 0 until the controller runs, then counts
 * from 0; a suspend stands still and resumes where it stood. */
static void halting_events(void)
{
    HANDLE d = usbts_open("sim:clock=virtual,seed=9");
    CHECK(d != INVALID_HANDLE_VALUE);
    LONGLONG b, a, now;
    ULONG mf;
    CHECK(usbts_sim_advance(d, 3 * MS));
    CHECK(usbts_sim_inject(d, "reset_halt_ms=20"));
    LONGLONG t_halt;
    usbts_now_ns(d, &t_halt);
    int zeros = 0, n = 0;
    do {
        CHECK(usbts_sim_read(d, &b, &mf, &a));
        zeros += mf == 0;
        n++;
        usbts_sim_advance(d, 100000);
        usbts_now_ns(d, &now);
    } while (now < t_halt + 19 * (LONGLONG)MS);
    CHECK_MSG(zeros == n, "MFINDEX read 0 while halted after the reset (%d of %d reads)", zeros, n);
    CHECK(usbts_sim_advance(d, 5 * MS));
    CHECK(usbts_sim_read(d, &b, &mf, &a));
    CHECK_MSG(mf >= 8 && mf <= 48, "counting from 0 after the halt: MFINDEX %u about 2-5 ms later", (unsigned)mf);

    ULONG before;
    CHECK(usbts_sim_read(d, &b, &before, &a));
    CHECK(usbts_sim_inject(d, "suspend_ms=30"));
    LONGLONG t_suspend;
    usbts_now_ns(d, &t_suspend);
    CHECK(usbts_sim_advance(d, 29 * MS));
    CHECK(usbts_sim_read(d, &b, &mf, &a));
    CHECK_MSG(mf == before || mf == ((before + 1) & 0x3FFF), "suspended: MFINDEX stands (%u, then %u)", (unsigned)before,
              (unsigned)mf);
    ULONG frozen = mf;
    CHECK(usbts_sim_advance(d, 2 * MS));
    LONGLONG t_next;
    ULONG next = (frozen + 1) & 0x3FFF;
    CHECK(usbts_sim_truth(d, next >> 3, next & 7, &t_next));
    CHECK_MSG(llabs(t_next - (t_suspend + 30 * (LONGLONG)MS)) <= 1,
              "the microframe after a suspend begins at the resume (%lld ns away)",
              (long long)(t_next - (t_suspend + 30 * (LONGLONG)MS)));
    usbts_close(d);
}

/* FLADJ sets the microframe's length: (59488 + 16 FLADJ) bit times of 480 MHz;
 * the truth shows it, and the count carries on through a change. */
static void fladj(void)
{
    HANDLE d = usbts_open("sim:clock=virtual,seed=3,fladj=30");
    CHECK(d != INVALID_HANDLE_VALUE);
    LONGLONG b = 0, a = 0, t0 = 0, t1 = 0;
    ULONG mf;
    CHECK(usbts_sim_advance(d, 1500 * MS));
    CHECK(usbts_sim_read(d, &b, &mf, &a));
    ULONG m0 = (mf - 4000) & 0x3FFF, m1 = mf;
    CHECK(usbts_sim_truth(d, m0 >> 3, m0 & 7, &t0) && usbts_sim_truth(d, m1 >> 3, m1 & 7, &t1));
    double period = (double)(t1 - t0) / 4000;
    CHECK_MSG(fabs(period - 125000.0 * (59488 + 16 * 30) / 60000) < 0.01, "fladj=30: microframe %.4f ns", period);
    CHECK(usbts_sim_inject(d, "fladj=33"));
    CHECK(usbts_sim_advance(d, 1 * MS));
    ULONG mid;
    CHECK(usbts_sim_read(d, &b, &mid, &a));
    CHECK_MSG(((mid - mf) & 0x3FFF) >= 7 && ((mid - mf) & 0x3FFF) <= 10, "the count carries on through a FLADJ change");
    CHECK(usbts_sim_advance(d, 600 * MS));
    CHECK(usbts_sim_read(d, &b, &mf, &a));
    m0 = (mf - 4000) & 0x3FFF;
    CHECK(usbts_sim_truth(d, m0 >> 3, m0 & 7, &t0) && usbts_sim_truth(d, mf >> 3, mf & 7, &t1));
    period = (double)(t1 - t0) / 4000;
    CHECK_MSG(fabs(period - 125000.0 * (59488 + 16 * 33) / 60000) < 0.01, "fladj=33: microframe %.4f ns", period);
    usbts_close(d);
}

/* Raw reads: torn and all-ones values carry reserved bits; slow runs stretch
 * brackets; a read after a sleep may begin late. */
static void raw_reads(void)
{
    HANDLE d = usbts_open("sim:clock=virtual,seed=4,torn_prob=0.2,allones_prob=0.1");
    CHECK(d != INVALID_HANDLE_VALUE);
    int torn = 0, ones = 0, n = 2000;
    for (int i = 0; i < n; i++) {
        LONGLONG b, a;
        ULONG mf;
        CHECK(usbts_sim_read(d, &b, &mf, &a));
        ones += mf == 0xFFFFFFFFu;
        torn += mf != 0xFFFFFFFFu && (mf & ~0x3FFFu) != 0;
    }
    CHECK_MSG(torn > n / 10 && torn < n * 3 / 10 && ones > n / 20 && ones < n * 3 / 20,
              "torn %d and all-ones %d of %d reads", torn, ones, n);
    usbts_close(d);

    d = usbts_open("sim:clock=virtual,seed=4,slow_prob=1,slow_reads=1000,slow_ns=20000,wake_prob=1,wake_us=100");
    CHECK(d != INVALID_HANDLE_VALUE);
    double late = 0;
    int slow = 0;
    for (int i = 0; i < 200; i++) {
        LONGLONG b, a, now;
        ULONG mf;
        CHECK(usbts_sim_advance(d, 50000)); /* a sleep */
        usbts_now_ns(d, &now);
        CHECK(usbts_sim_read(d, &b, &mf, &a));
        late += (double)(b - now);
        slow += a - b >= 15000;
    }
    CHECK_MSG(late / 200 > 50000 && late / 200 < 200000, "late wake-ups: %.0f ns late on average (mean 100 us)",
              late / 200);
    CHECK_MSG(slow == 200, "a slow run stretches every read in it (%d of 200)", slow);
    usbts_close(d);
}

/* A controller that vanishes (reads all ones) is reported gone once that has
 * persisted 100 ms, not before. */
static void vanish(void)
{
    struct dev v;
    if (!open_tracked("sim:clock=virtual,seed=2", &v))
        return;
    CHECK(usbts_sim_advance(v.d, 500 * MS));
    USBTS_TRACKING_STATS st0;
    CHECK(usbts_get_tracking_stats(v.d, &st0));
    CHECK(usbts_sim_inject(v.d, "vanish"));
    CHECK(usbts_sim_advance(v.d, 60 * MS));
    USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;
    memset(&q, 0, sizeof q);
    q.TimeTrackingHandle = v.th;
    CHECK_MSG(WinUsb_GetCurrentFrameNumberAndQpc(v.ih, &q), "60 ms of all-ones reads: not gone yet (%s)",
              usbts_last_error_message());
    CHECK(usbts_sim_advance(v.d, 100 * MS));
    CHECK_FAILS_WITH(WinUsb_GetCurrentFrameNumberAndQpc(v.ih, &q), ERROR_DEVICE_NOT_CONNECTED);
    USBTS_TRACKING_STATS st;
    if (usbts_get_tracking_stats(v.d, &st)) /* at most 8 reads a ms: the back-off */
        CHECK_MSG(st.Reads - st0.Reads <= 8 * 161 + 100, "no spinning on a vanished controller: %llu reads in 160 ms",
                  (unsigned long long)(st.Reads - st0.Reads));
    close_dev(&v);
}

/* The same on the real clock, with the sampler thread: it backs off instead
 * of spinning on garbage (counted in reads per elapsed ms, so a loaded
 * machine only makes the count smaller), declares the controller gone, and
 * Stop returns. */
static void vanish_real_clock(void)
{
    struct dev v;
    if (!open_tracked("sim:seed=2", &v))
        return;
    struct timespec pause = {0, 50 * 1000 * 1000};
    nanosleep(&pause, NULL);
    USBTS_TRACKING_STATS st0, st1;
    CHECK(usbts_get_tracking_stats(v.d, &st0));
    LONGLONG t0, t1;
    usbts_now_ns(v.d, &t0);
    CHECK(usbts_sim_inject(v.d, "vanish"));
    USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;
    bool gone = false;
    for (int i = 0; i < 600 && !gone; i++) { /* up to a minute on a very slow machine */
        nanosleep(&pause, NULL);
        memset(&q, 0, sizeof q);
        q.TimeTrackingHandle = v.th;
        gone = !WinUsb_GetCurrentFrameNumberAndQpc(v.ih, &q) && GetLastError() == ERROR_DEVICE_NOT_CONNECTED;
    }
    usbts_now_ns(v.d, &t1);
    CHECK_MSG(gone, "real clock: a vanished controller is reported gone");
    bool have = usbts_get_tracking_stats(v.d, &st1);
    if (have) {
        double ms = (double)(t1 - t0) / 1e6;
        unsigned long long reads = (unsigned long long)(st1.Reads - st0.Reads);
        CHECK_MSG((double)reads <= 8 * (ms + 1) + 100, "real clock: %llu reads in %.0f ms after vanishing", reads, ms);
        CHECK_MSG(reads >= 16, "real clock: gone only after at least 16 reads of all ones (%llu)", reads);
        printf("vanish, real clock: gone after %.0f ms (polled every 50 ms), %llu reads meanwhile\n", ms, reads);
    }
    USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION stop = {v.th};
    WinUsb_StopTrackingForTimeSync(v.ih, &stop); /* returns: the test would hang otherwise */
    close_dev(&v);
}

/* ---- slicing ------------------------------------------------------------ */

struct answers {
    ULONGLONG reads, captures, rejected, discontinuities;
    LONGLONG now;
    ULONG frame, micro, acc;
    LONGLONG qpc_cur, qpc_in;
    LONGLONG start_ns[8], bound_ns[8];
    ULONG gen_changes;
};

static void answer(struct dev *v, struct answers *ans, ULONG *last_gen)
{
    USBTS_TRACKING_STATS st;
    CHECK(usbts_get_tracking_stats(v->d, &st));
    ans->reads = st.Reads;
    ans->captures = st.Captures;
    ans->rejected = st.Rejected;
    ans->discontinuities = st.Discontinuities;
    usbts_now_ns(v->d, &ans->now);
    USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;
    memset(&q, 0, sizeof q);
    q.TimeTrackingHandle = v->th;
    CHECK(WinUsb_GetCurrentFrameNumberAndQpc(v->ih, &q));
    q.InputFrameNumber = q.CurrentUSBFrameNumber - 37;
    q.InputMicroFrameNumber = 5;
    CHECK(WinUsb_GetCurrentFrameNumberAndQpc(v->ih, &q));
    ans->frame = q.CurrentUSBFrameNumber;
    ans->micro = q.CurrentHardwareMicroFrameNumber;
    ans->acc = q.PredictedAccuracyInMicroSeconds;
    ans->qpc_cur = q.CurrentQueryPerformanceCounter.QuadPart;
    ans->qpc_in = q.QueryPerformanceCounterAtInputFrameOrMicroFrame.QuadPart;
    if (*last_gen && q.CurrentGenerationID != *last_gen)
        ans->gen_changes++;
    *last_gen = q.CurrentGenerationID;
    for (int i = 0; i < 8; i++) {
        USBTS_FRAME_TIME ft;
        CHECK(usbts_frame_to_ns(v->ih, v->th, q.CurrentUSBFrameNumber + (ULONG)(i * 300) - 1000, (ULONG)i, &ft));
        ans->start_ns[i] = ft.StartNs;
        ans->bound_ns[i] = ft.BoundNs;
    }
}

static bool same(const struct answers *x, const struct answers *y)
{
    return memcmp(x, y, sizeof *x) == 0;
}

/* One advance of a second, a thousand of a millisecond, and uneven slices:
 * the same reads, the same answers, events and all. */
static void slicing(const char *keys)
{
    char spec[512];
    snprintf(spec, sizeof spec, "sim:clock=virtual,seed=11,%s", keys);
    struct dev v[3];
    for (int i = 0; i < 3; i++)
        if (!open_tracked(spec, &v[i]))
            return;
    static const char *events[] = {NULL, "reset", NULL, "halt_ms=30", NULL, "stall_ms=700", NULL, "suspend_ms=50",
                                   "fladj=34", NULL};
    struct answers ans[3];
    memset(ans, 0, sizeof ans);
    ULONG last_gen[3] = {0, 0, 0};
    uint64_t rng = 99;
    bool all_same = true;
    for (int s = 0; s < 10; s++) {
        if (events[s])
            for (int i = 0; i < 3; i++)
                CHECK(usbts_sim_inject(v[i].d, events[s]));
        CHECK(usbts_sim_advance(v[0].d, 1000 * MS));
        for (int k = 0; k < 1000; k++)
            CHECK(usbts_sim_advance(v[1].d, MS));
        ULONGLONG left = 1000 * MS;
        while (left > 0) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            ULONGLONG step = 1 + (rng >> 33) % (7 * MS);
            if (step > left)
                step = left;
            CHECK(usbts_sim_advance(v[2].d, step));
            left -= step;
        }
        for (int i = 0; i < 3; i++)
            answer(&v[i], &ans[i], &last_gen[i]);
        bool ok = same(&ans[0], &ans[1]) && same(&ans[0], &ans[2]);
        if (!ok)
            printf("  [%s] second %d: reads %llu / %llu / %llu, frame %u / %u / %u, qpc %lld / %lld / %lld\n", keys,
                   s, (unsigned long long)ans[0].reads, (unsigned long long)ans[1].reads, (unsigned long long)ans[2].reads, (unsigned)ans[0].frame, (unsigned)ans[1].frame,
                   (unsigned)ans[2].frame, (long long)ans[0].qpc_cur, (long long)ans[1].qpc_cur,
                   (long long)ans[2].qpc_cur);
        all_same &= ok;
    }
    CHECK_MSG(all_same, "[%s] one advance of 1 s, 1000 of 1 ms and uneven slices: the same reads and answers", keys);
    printf("slicing [%s]: %llu reads, %llu captures, %llu discontinuities, %u generation changes, all alike: %s\n", keys,
           (unsigned long long)ans[0].reads, (unsigned long long)ans[0].captures,
           (unsigned long long)ans[0].discontinuities, (unsigned)ans[0].gen_changes,
           all_same ? "yes" : "NO");
    for (int i = 0; i < 3; i++)
        close_dev(&v[i]);
}

int main(void)
{
    parse_errors();
    sof_truth();
    halting_events();
    fladj();
    raw_reads();
    vanish();
    vanish_real_clock();
    slicing("drift_ppm=120");
    slicing("drift_ppm=-80,preempt_prob=0.05,slow_prob=0.003,wake_prob=0.3,torn_prob=0.02,allones_prob=0.01,"
            "ntp_ppm=50,ntp_ms=700,walk_ppm=0.5,wander_ppm=1,latch_spread=0.8,sof_ns=100");
    return test_finish();
}
