/* SPDX-License-Identifier: MIT */
/*
 * test_devclock.c — device-clock synchronisation and 11-bit frame numbers.
 *
 * A simulated device latches its own clock (±500 ppm against the host, its
 * counter narrower than 64 bits so it wraps) at the SOF of recent frames, with
 * latch jitter and now and then a late latch (an interrupt that came late),
 * and some reports lost.  The fit must map device time to host time within
 * its bound against the simulator's truth for at least 99% of checks, find
 * the rate, and restart (saying so) when the controller is reset.
 */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "usbtimesync/usbtimesync.h"

static uint64_t rng = 99;

static double urand(void)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return ((double)(rng >> 11) + 0.5) / 9007199254740992.0;
}

static double gauss(void)
{
    return sqrt(-2 * log(urand())) * cos(6.283185307179586 * urand());
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

struct device {
    double hz, ppm, jitter_ns, late_prob;
    unsigned bits;
    double d0;      /* device count at host time h0 */
    int64_t h0;
};

/* The true host time at which the counter reads exactly the tick it reads at
 * h (a counter of coarse ticks names the instant its tick began... or, with
 * rounding, the middle): what mapping that tick back must give. */
static double tick_instant(const struct device *dv, double h)
{
    double ticks = dv->d0 + (h - (double)dv->h0) * 1e-9 * dv->hz * (1 + dv->ppm * 1e-6);
    return h - (ticks - (double)llround(ticks)) / (1e-9 * dv->hz * (1 + dv->ppm * 1e-6));
}

/* The device's counter at true host time h (no jitter), wrapped. */
static uint64_t device_at(const struct device *dv, double h)
{
    double ticks = dv->d0 + (h - (double)dv->h0) * 1e-9 * dv->hz * (1 + dv->ppm * 1e-6);
    uint64_t t = (uint64_t)llround(ticks);
    return dv->bits == 64 ? t : t & (((uint64_t)1 << dv->bits) - 1);
}

struct figures {
    double errs[4096];
    long checks, outside, restarts, rejected_late, late;
    double worst_ns, bound_sum;
};

static void scenario(const char *name, const char *spec, struct device dv, int frame_bits, bool high_speed,
                     bool reset, struct figures *fig)
{
    HANDLE d = usbts_open(spec);
    WINUSB_INTERFACE_HANDLE ih;
    CHECK(WinUsb_Initialize(d, &ih));
    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION st = {NULL, FALSE};
    CHECK(WinUsb_StartTrackingForTimeSync(ih, &st));
    HANDLE th = st.TimeTrackingHandle;
    CHECK(usbts_sim_advance(d, 2000000000ull));
    LONGLONG now;
    CHECK(usbts_now_ns(d, &now));
    dv.h0 = now;
    USBTS_DEVCLOCK *c = usbts_devclock_create(dv.hz, dv.bits, 128);
    CHECK(c != NULL);
    memset(fig, 0, sizeof *fig);
    int steps = 400, reset_at = reset ? 200 : -1;
    LONGLONG reset_ns = -1;
    ULONG gen_before = 0;
    double rate_seen = 0;
    for (int i = 0; i < steps; i++) {
        if (i == reset_at) {
            CHECK(usbts_sim_inject(d, "reset"));
            CHECK(usbts_now_ns(d, &reset_ns));
            USBTS_DEVCLOCK_STATUS s0;
            CHECK(usbts_devclock_status(c, &s0));
            gen_before = s0.Generation;
        }
        CHECK(usbts_sim_advance(d, 30000000ull + (ULONGLONG)(urand() * 40e6)));
        if (urand() < 0.2)
            continue; /* a report lost */
        USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;
        memset(&q, 0, sizeof q);
        q.TimeTrackingHandle = th;
        CHECK(WinUsb_GetCurrentFrameNumberAndQpc(ih, &q));
        ULONG frame = q.CurrentUSBFrameNumber - 1 - (ULONG)(urand() * 5);
        ULONG uf = high_speed && frame_bits == 32 ? (ULONG)(urand() * 8) : 0;
        LONGLONG sof;
        CHECK(usbts_sim_truth(d, frame, uf, &sof));
        double latch = (double)sof + dv.jitter_ns * gauss();
        bool late = urand() < dv.late_prob;
        if (late)
            latch += 50e3 + urand() * 450e3;
        fig->late += late;
        USBTS_DEVCLOCK_STATUS s;
        ULONG f = frame_bits == 11 ? (frame & 0x7FF) : frame;
        CHECK_SUCCEEDS(usbts_devclock_add(c, ih, th, device_at(&dv, latch), f, (ULONG)frame_bits, uf, &s));
        fig->restarts += s.Restarted;
        fig->rejected_late += late && s.Rejected;
        if (s.Restarted)
            CHECK_MSG(reset_ns >= 0 && s.Generation == gen_before + 1, "%s: a restart only after the reset", name);
        /* The blind window: until the tracker sees the reset (50 ms), the
         * frame model itself is wrong; checks resume 150 ms after it. */
        CHECK(usbts_now_ns(d, &now));
        if (!s.Ready || s.Pairs < 8 || (reset_ns >= 0 && now < reset_ns + 150000000))
            continue;
        rate_seen = s.RatePpm;
        /* Clean device times across the window and 100 ms beyond it. */
        for (int k = 0; k < 4; k++) {
            /* within half the counter's wrap: beyond it a device time names two instants */
            double span = dv.bits < 64 && ldexp(1, (int)dv.bits) / dv.hz * 0.4e9 < 2e9 ? ldexp(1, (int)dv.bits) / dv.hz * 0.4e9 : 2e9;
            double h = (double)now - urand() * span + 100e6 * (k == 0);
            if (reset_ns >= 0 && h < (double)reset_ns + 150e6 && now >= reset_ns)
                h = (double)now - urand() * ((double)now - (double)reset_ns - 150e6);
            LONGLONG host, bound;
            CHECK(usbts_devclock_to_host(c, device_at(&dv, h), &host, &bound));
            double err = fabs((double)host - tick_instant(&dv, h));
            if (fig->checks < 4096)
                fig->errs[fig->checks] = err;
            fig->checks++;
            fig->outside += err > (double)bound;
            fig->worst_ns = err > fig->worst_ns ? err : fig->worst_ns;
            fig->bound_sum += (double)bound;
        }
    }
    long ne = fig->checks < 4096 ? fig->checks : 4096;
    qsort(fig->errs, (size_t)ne, sizeof fig->errs[0], cmp_double);
    double p99 = ne ? fig->errs[(long)(0.99 * (double)(ne - 1))] : 0;
    printf("%-40s checks %5ld outside bound %3ld (%.2f%%) p99 error %.2f us worst %.2f us mean bound %.2f us | rate %+.2f ppm (true "
           "%+.2f) | late latches %ld, set aside %ld | restarts %ld\n",
           name, fig->checks, fig->outside, 100.0 * (double)fig->outside / (double)(fig->checks ? fig->checks : 1),
           p99 / 1e3, fig->worst_ns / 1e3, fig->bound_sum / (double)(fig->checks ? fig->checks : 1) / 1e3, rate_seen, dv.ppm,
           fig->late, fig->rejected_late, fig->restarts);
    CHECK_MSG(fig->checks > 500, "%s: %ld checks", name, fig->checks);
    CHECK_MSG(fig->outside * 100 <= fig->checks, "%s: %ld of %ld outside the bound", name, fig->outside, fig->checks);
    /* The device's rate is found; the frame clock's own drift does not leak in. */
    CHECK_MSG(fabs(rate_seen - dv.ppm) < 2, "%s: rate %.2f ppm, true %.2f", name, rate_seen, dv.ppm);
    CHECK_MSG(fig->restarts == (reset ? 1 : 0), "%s: %ld restarts", name, fig->restarts);
    /* Not padded: jitter of a few us over 100 pairs leaves a sub-10 us bound. */
    CHECK_MSG(fig->bound_sum / (double)fig->checks < 10e3, "%s: mean bound %.0f ns", name,
              fig->bound_sum / (double)fig->checks);
    if (dv.late_prob > 0)
        CHECK_MSG(fig->rejected_late * 10 >= fig->late * 8, "%s: late latches set aside %ld of %ld", name,
                  fig->rejected_late, fig->late);
    usbts_devclock_destroy(c);
    USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION stop = {th};
    CHECK(WinUsb_StopTrackingForTimeSync(ih, &stop));
    CHECK(WinUsb_Free(ih));
    CHECK(usbts_close(d));
}

static void extension(void)
{
    /* Pure: a reference given, no handles needed. */
    ULONG out = 0, ref = 5000;
    CHECK_SUCCEEDS(usbts_extend_frame_number(NULL, NULL, 5000 & 0x7FF, &ref, 1023, 1024, &out));
    CHECK_EQ(out, 5000);
    CHECK_SUCCEEDS(usbts_extend_frame_number(NULL, NULL, (5000 - 7) & 0x7FF, &ref, 2047, 0, &out));
    CHECK_EQ(out, 4993);
    CHECK_SUCCEEDS(usbts_extend_frame_number(NULL, NULL, (5000 + 3) & 0x7FF, &ref, 2044, 3, &out));
    CHECK_EQ(out, 5003);
    /* the answer for every low value, across the 32-bit wrap */
    ULONG refs[] = {0, 1, 2047, 2048, 0xFFFFFFFFu, 0xFFFFF800u, 123456789u};
    int bad = 0;
    for (size_t r = 0; r < sizeof refs / sizeof refs[0]; r++)
        for (ULONG hw = 0; hw < 2048; hw++) {
            ULONG before = 1000, after = 1047;
            if (!usbts_extend_frame_number(NULL, NULL, hw, &refs[r], before, after, &out) || (out & 0x7FF) != hw ||
                (ULONG)(out - (refs[r] - before)) > before + after)
                bad++;
        }
    CHECK_EQ(bad, 0);
    /* A window of 10 frames misses most values; one of 2049 holds two of some. */
    CHECK_FAILS_WITH(usbts_extend_frame_number(NULL, NULL, (5000 + 100) & 0x7FF, &ref, 5, 5, &out), ERROR_NOT_FOUND);
    CHECK_FAILS_WITH(usbts_extend_frame_number(NULL, NULL, (5000 - 1024) & 0x7FF, &ref, 1024, 1024, &out),
                     ERROR_MORE_DATA);
    CHECK_SUCCEEDS(usbts_extend_frame_number(NULL, NULL, (5000 - 1023) & 0x7FF, &ref, 1024, 1024, &out));
    CHECK_EQ(out, 5000 - 1023);
    ULONG huge = 0xFFFFFFFFu;
    CHECK_FAILS_WITH(usbts_extend_frame_number(NULL, NULL, 3, &ref, huge, huge, &out), ERROR_MORE_DATA);
    CHECK_FAILS_WITH(usbts_extend_frame_number(NULL, NULL, 2048, &ref, 10, 10, &out), ERROR_INVALID_PARAMETER);
    CHECK_FAILS_WITH(usbts_extend_frame_number(NULL, NULL, 3, &ref, 10, 10, NULL), ERROR_INVALID_PARAMETER);
    CHECK_FAILS_WITH(usbts_extend_frame_number(NULL, NULL, 3, NULL, 10, 10, &out), ERROR_INVALID_HANDLE);

    /* Default reference: the tracker's current frame. */
    HANDLE d = usbts_open("sim:clock=virtual,seed=5");
    WINUSB_INTERFACE_HANDLE ih;
    CHECK(WinUsb_Initialize(d, &ih));
    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION st = {NULL, FALSE};
    CHECK(WinUsb_StartTrackingForTimeSync(ih, &st));
    CHECK(usbts_sim_advance(d, 300000000ull));
    int wrong = 0;
    for (int i = 0; i < 200; i++) {
        CHECK(usbts_sim_advance(d, 7000000ull));
        USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;
        memset(&q, 0, sizeof q);
        q.TimeTrackingHandle = st.TimeTrackingHandle;
        CHECK(WinUsb_GetCurrentFrameNumberAndQpc(ih, &q));
        ULONG past = q.CurrentUSBFrameNumber - (ULONG)(i * 9 % 1500) - 2;
        if (!usbts_extend_frame_number(ih, st.TimeTrackingHandle, past & 0x7FF, NULL, 2000, 10, &out) || out != past)
            wrong++;
    }
    CHECK_EQ(wrong, 0);
    CHECK_FAILS_WITH(usbts_extend_frame_number(ih, (HANDLE)(intptr_t)0x99, 3, NULL, 10, 10, &out),
                     ERROR_INVALID_HANDLE);
    CHECK(WinUsb_Free(ih));
    CHECK(usbts_close(d));
}

static void pure_fit(void)
{
    CHECK(usbts_devclock_create(0, 32, 0) == NULL && GetLastError() == ERROR_INVALID_PARAMETER);
    CHECK(usbts_devclock_create(1e6, 7, 0) == NULL && GetLastError() == ERROR_INVALID_PARAMETER);
    CHECK(usbts_devclock_create(1e6, 32, 5000) == NULL && GetLastError() == ERROR_INVALID_PARAMETER);
    CHECK(usbts_devclock_create(NAN, 32, 0) == NULL && GetLastError() == ERROR_INVALID_PARAMETER);
    USBTS_DEVCLOCK *c = usbts_devclock_create(1e6, 16, 16); /* 1 MHz, wraps every 65.5 ms */
    CHECK(c != NULL);
    LONGLONG h, b;
    CHECK_FAILS_WITH(usbts_devclock_to_host(c, 0, &h, &b), ERROR_GEN_FAILURE);
    CHECK_FAILS_WITH(usbts_devclock_add_host(c, 1u << 16, 0, 1, 1, NULL), ERROR_INVALID_PARAMETER);
    CHECK_FAILS_WITH(usbts_devclock_add_host(NULL, 1, 0, 1, 1, NULL), ERROR_INVALID_PARAMETER);
    CHECK_FAILS_WITH(usbts_devclock_add_host(c, 1, 0, -1, 1, NULL), ERROR_INVALID_PARAMETER);
    /* Exact pairs every 20 ms of a clock 100 ppm fast: the counter wraps
     * between many of them and the fit does not notice. */
    USBTS_DEVCLOCK_STATUS s;
    for (int i = 0; i < 40; i++) {
        double host = 5e9 + i * 20e6;
        uint64_t dev = (uint64_t)llround((host - 5e9) * 1e-3 * (1 + 100e-6) + 777) & 0xFFFF;
        CHECK_SUCCEEDS(usbts_devclock_add_host(c, dev, (LONGLONG)host, 100, 7, &s));
        CHECK(!s.Restarted);
    }
    CHECK(s.Ready && s.Generation == 1 && s.FrameGeneration == 7);
    CHECK_MSG(fabs(s.RatePpm - 100) < 1, "rate %.3f", s.RatePpm);
    uint64_t probe = (uint64_t)llround(39 * 20e6 * 1e-3 * (1 + 100e-6) + 777 - 5000) & 0xFFFF;
    CHECK_SUCCEEDS(usbts_devclock_to_host(c, probe, &h, &b));
    double truth = 5e9 + (39 * 20e6 * (1 + 100e-6) - 5e6) / (1 + 100e-6);
    CHECK_MSG(fabs((double)h - truth) <= (double)b && b < 2000, "mapped %lld truth %.0f bound %lld", (long long)h,
              truth, (long long)b);
    /* A device clock stepping back (the device reset): a new generation. */
    uint64_t last = (uint64_t)llround(39 * 20e6 * 1e-3 * (1 + 100e-6) + 777) & 0xFFFF;
    CHECK_SUCCEEDS(usbts_devclock_add_host(c, (last - 3000) & 0xFFFF, 6000000000, 100, 7, &s));
    CHECK(s.Restarted && s.Generation == 2 && !s.Ready);
    /* A new frame-clock generation: another. */
    CHECK_SUCCEEDS(usbts_devclock_add_host(c, 20, 6000010000, 100, 8, &s));
    CHECK(s.Restarted && s.Generation == 3 && s.FrameGeneration == 8);
    CHECK_FAILS_WITH(usbts_devclock_to_host(c, 20, &h, &b), ERROR_GEN_FAILURE);
    CHECK_FAILS_WITH(usbts_devclock_status(c, NULL), ERROR_INVALID_PARAMETER);
    usbts_devclock_destroy(c);
    usbts_devclock_destroy(NULL);

    /* A late latch as the newest of eight pairs has the most leverage on a
     * least-squares line: the robust start still sets it aside. */
    c = usbts_devclock_create(1e6, 32, 0);
    for (int i = 0; i < 8; i++) {
        double host = 1e9 + i * 50e6 + (i % 2 ? 300 : -300);
        double late = i == 7 ? 180e3 : 0;
        CHECK_SUCCEEDS(usbts_devclock_add_host(c, (ULONGLONG)llround((host + late) * 1e-3), (LONGLONG)host, 500, 1, &s));
    }
    CHECK(s.Ready && s.Rejected && s.Pairs == 7);
    usbts_devclock_destroy(c);
}

int main(void)
{
    extension();
    pure_fit();
    static struct figures f;
    static const struct {
        const char *name, *spec;
        struct device dv;
        int bits;
        bool hs, reset;
    } sc[] = {
        {"48 MHz +500 ppm, 32-bit, 11-bit SOF", "sim:clock=virtual,seed=41,drift_ppm=120",
         {48e6, 500, 2000, 0.02, 32, 12345, 0}, 11, false, false},
        {"1 MHz -500 ppm, 24-bit, 32-bit frames, HS", "sim:clock=virtual,seed=42,drift_ppm=-300",
         {1e6, -500, 1500, 0.02, 24, 99, 0}, 32, true, false},
        {"12 MHz +37 ppm, 64-bit, jitter 5 us", "sim:clock=virtual,seed=43,drift_ppm=0,preempt_prob=0.01",
         {12e6, 37, 5000, 0.03, 64, 1e9, 0}, 11, false, false},
        {"1 GHz -250 ppm, 64-bit, reset mid-way", "sim:clock=virtual,seed=44,drift_ppm=450",
         {1e9, -250, 1000, 0.02, 64, 5e12, 0}, 11, false, true},
        {"32.768 kHz +480 ppm, 16-bit, reset", "sim:clock=virtual,seed=45,drift_ppm=-450",
         {32768, 480, 2000, 0.0, 16, 0, 0}, 32, false, true},
    };
    for (size_t i = 0; i < sizeof sc / sizeof sc[0]; i++)
        scenario(sc[i].name, sc[i].spec, sc[i].dv, sc[i].bits, sc[i].hs, sc[i].reset, &f);
    return test_finish();
}
