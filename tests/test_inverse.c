/* SPDX-License-Identifier: MIT */
/*
 * test_inverse.c — frame -> time -> frame names the same microframe, at
 * every boundary (issue #16): the instant a microframe starts belongs to it,
 * the nanosecond before to the one before.
 *
 * First on the model itself (src/model.h), over random periods within
 * ±1000 ppm and counts up to 2^31 frames either side of the reference; then
 * through the API (usbts_frame_to_ns, usbts_ns_to_frame, and
 * WinUsb_GetCurrentFrameNumberAndQpc) on drifting simulated controllers.
 */
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "testutil.h"
#include "usbtimesync/usbtimesync.h"

static uint64_t rng = 0x243F6A8885A308D3ull;

static uint64_t next(void)
{
    uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double unit(void)
{
    return (double)(next() >> 11) / 9007199254740992.0;
}

static void model_property(void)
{
    int bad_start = 0, bad_before = 0, bad_last = 0, bad_random = 0, n = 0;
    for (int i = 0; i < 2000; i++) {
        struct usbts_model m;
        memset(&m, 0, sizeof m);
        double period = 125000.0 * (1 + (unit() - 0.5) * 2e-3);
        m.period_fp = usbts_period_to_fp(period) + (next() & 0xFFFF); /* any fractional bits */
        m.rate_fp = usbts_period_to_rate_fp((double)m.period_fp / 4294967296.0);
        m.ref_ns = (int64_t)(next() >> 4);
        m.ref_mf = (int64_t)(next() >> 20);
        for (int j = 0; j < 50; j++) {
            /* near the reference, or anywhere within 2^31 frames */
            int64_t k = j < 25 ? (int64_t)(next() % 20001) - 10000 : (int64_t)(next() % (1ull << 35)) - (1ll << 34);
            int64_t mf = m.ref_mf + k, s, s_next, got;
            int64_t t = usbts_model_start_ns(&m, mf);
            s_next = usbts_model_start_ns(&m, mf + 1);
            got = usbts_model_locate(&m, t, &s);
            bad_start += got != mf || s != t;
            got = usbts_model_locate(&m, t - 1, &s);
            bad_before += got != mf - 1;
            got = usbts_model_locate(&m, s_next - 1, &s);
            bad_last += got != mf || s != t;
            int64_t r = t + (int64_t)(next() % (uint64_t)(s_next - t));
            got = usbts_model_locate(&m, r, &s);
            bad_random += got != mf || s != t;
            n++;
        }
    }
    CHECK_MSG(bad_start == 0, "%d of %d microframe starts located in another microframe", bad_start, n);
    CHECK_MSG(bad_before == 0, "%d of %d instants 1 ns before a start not in the previous microframe", bad_before, n);
    CHECK_MSG(bad_last == 0, "%d of %d last nanoseconds of a microframe located elsewhere", bad_last, n);
    CHECK_MSG(bad_random == 0, "%d of %d instants inside a microframe located elsewhere", bad_random, n);

    /* A stopped counter stays on its microframe whenever asked. */
    struct usbts_model m;
    memset(&m, 0, sizeof m);
    m.period_fp = usbts_period_to_fp(125000);
    m.ref_ns = 5000000000;
    m.ref_mf = 777;
    int64_t s;
    CHECK_EQ(usbts_model_locate(&m, m.ref_ns + 3000000000, &s), 777);
    CHECK_EQ(s, m.ref_ns);
    printf("model: %d microframes at random periods, each located at its start, its last ns and inside\n",
           n);
}

static void api_property(const char *spec)
{
    HANDLE d = usbts_open(spec);
    WINUSB_INTERFACE_HANDLE ih;
    CHECK(WinUsb_Initialize(d, &ih));
    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION s = {NULL, FALSE};
    CHECK(WinUsb_StartTrackingForTimeSync(ih, &s));
    HANDLE th = s.TimeTrackingHandle;
    int bad_fwd = 0, bad_prev = 0, bad_back = 0, bad_cur = 0, n = 0;
    for (int round = 0; round < 20; round++) {
        CHECK(usbts_sim_advance(d, 100000000ull + (ULONGLONG)(next() % 50000000)));
        USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;
        memset(&q, 0, sizeof q);
        q.TimeTrackingHandle = th;
        CHECK(WinUsb_GetCurrentFrameNumberAndQpc(ih, &q));
        /* the current microframe started no later than now, at exactly
         * the start usbts_ns_to_frame names for now */
        LONGLONG now;
        usbts_now_ns(d, &now);
        USBTS_FRAME_TIME cur;
        CHECK(usbts_ns_to_frame(ih, th, now, &cur));
        bad_cur += cur.UsbFrameNumber != q.CurrentUSBFrameNumber ||
                   cur.MicroFrameNumber != q.CurrentHardwareMicroFrameNumber || cur.StartNs > now;
        for (int i = 0; i < 250; i++) {
            /* frames near now, and up to ~16 s either side */
            int32_t df = i < 200 ? (int32_t)(next() % 401) - 200 : (int32_t)(next() % 32001) - 16000;
            ULONG frame = q.CurrentUSBFrameNumber + (ULONG)df, uf = (ULONG)(next() % 8);
            USBTS_FRAME_TIME ft, back, prev;
            CHECK(usbts_frame_to_ns(ih, th, frame, uf, &ft));
            CHECK(usbts_ns_to_frame(ih, th, ft.StartNs, &back));
            bad_fwd += back.UsbFrameNumber != frame || back.MicroFrameNumber != uf || back.StartNs != ft.StartNs ||
                       back.OffsetNs != 0;
            CHECK(usbts_ns_to_frame(ih, th, ft.StartNs - 1, &prev));
            ULONG pf = uf == 0 ? frame - 1 : frame, puf = uf == 0 ? 7 : uf - 1;
            bad_prev += prev.UsbFrameNumber != pf || prev.MicroFrameNumber != puf;
            /* and time -> frame -> time: the start named is the start of
             * the microframe named, at or before the instant */
            LONGLONG t = now + (LONGLONG)(next() % 4000000000ull) - 2000000000;
            USBTS_FRAME_TIME at, start;
            CHECK(usbts_ns_to_frame(ih, th, t, &at));
            CHECK(usbts_frame_to_ns(ih, th, at.UsbFrameNumber, at.MicroFrameNumber, &start));
            bad_back += start.StartNs != at.StartNs || at.StartNs > t || at.StartNs + at.OffsetNs != t ||
                        at.OffsetNs > 125200;
            n++;
        }
    }
    CHECK_MSG(bad_fwd == 0, "%s: %d of %d frame starts named another microframe", spec, bad_fwd, n);
    CHECK_MSG(bad_prev == 0, "%s: %d of %d instants 1 ns before a start not in the previous microframe", spec,
              bad_prev, n);
    CHECK_MSG(bad_back == 0, "%s: %d of %d instants named a microframe that starts elsewhere", spec, bad_back, n);
    CHECK_MSG(bad_cur == 0, "%s: the current microframe disagreed with usbts_ns_to_frame(now) %d times", spec,
              bad_cur);
    printf("%s: %d frames and %d instants mapped both ways\n", spec, n, n);
    USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION p = {th};
    CHECK(WinUsb_StopTrackingForTimeSync(ih, &p));
    CHECK(WinUsb_Free(ih));
    CHECK(usbts_close(d));
}

int main(void)
{
    model_property();
    api_property("sim:clock=virtual,seed=41");
    api_property("sim:clock=virtual,seed=42,drift_ppm=-487");
    api_property("sim:clock=virtual,seed=43,drift_ppm=333,wander_ppm=1");
    return test_finish();
}
