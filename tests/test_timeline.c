/* SPDX-License-Identifier: MIT */
/*
 * test_timeline.c — frame times on CLOCK_REALTIME, CLOCK_TAI and
 * CLOCK_BOOTTIME, on this machine without ever changing its clocks: the
 * REALTIME answer minus the MONOTONIC answer for the same frame is the
 * measured offset of the two clocks, within the bound; TAI minus REALTIME is
 * the kernel's TAI offset; the bulk call agrees with the single one and
 * answers from one generation.  Stepping the clocks is done inside the QEMU
 * guest (tests/e2e/run_clock.sh).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timex.h>
#include <time.h>

#include "testutil.h"
#include "usbtimesync/usbtimesync.h"

static const char *names[] = {"MONOTONIC", "REALTIME", "TAI", "BOOTTIME"};

int main(void)
{
    /* The kernel's TAI offset, read without changing anything (modes 0). */
    struct timex tx;
    memset(&tx, 0, sizeof tx);
    int tai_offset_s = adjtimex(&tx) >= 0 ? tx.tai : -1;
    printf("kernel TAI offset: %d s\n", tai_offset_s);

    LONGLONG off, unc;
    CHECK(usbts_clock_offset(USBTS_CLOCK_MONOTONIC, &off, &unc));
    CHECK(off == 0 && unc == 0);
    for (ULONG c = 1; c <= 3; c++) {
        CHECK_SUCCEEDS(usbts_clock_offset(c, &off, &unc));
        CHECK_MSG(unc >= 1 && unc < 1000000, "%s offset uncertainty %lld ns", names[c], (long long)unc);
        printf("%s - MONOTONIC = %lld ns +/- %lld ns\n", names[c], (long long)off, (long long)unc);
    }
    CHECK_FAILS_WITH(usbts_clock_offset(4, &off, &unc), ERROR_INVALID_PARAMETER);
    CHECK_FAILS_WITH(usbts_clock_offset(USBTS_CLOCK_REALTIME, NULL, &unc), ERROR_INVALID_PARAMETER);

    /* Both kinds of simulated controller: the real clock (CLOCK_MONOTONIC
     * itself) and the virtual one (standing in for it). */
    const char *specs[] = {"sim:clock=virtual,seed=5,drift_ppm=140", "sim:seed=6,drift_ppm=-75"};
    for (int k = 0; k < 2; k++) {
        bool virt = k == 0;
        HANDLE d = usbts_open(specs[k]);
        WINUSB_INTERFACE_HANDLE ih;
        CHECK(WinUsb_Initialize(d, &ih));
        USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION s = {NULL, FALSE};
        CHECK(WinUsb_StartTrackingForTimeSync(ih, &s));
        HANDLE th = s.TimeTrackingHandle;
        if (virt)
            CHECK(usbts_sim_advance(d, 2000000000ull));
        else {
            struct timespec ts = {0, 300000000};
            nanosleep(&ts, NULL);
        }

        int bad_off = 0, bad_tai = 0, bad_boot = 0, n = 0;
        long long worst_off = 0, widest = 0;
        for (int i = 0; i < 200; i++) {
            if (virt)
                CHECK(usbts_sim_advance(d, 1000000 + (ULONGLONG)i * 7919));
            USBTS_FRAME_TIME now;
            LONGLONG t_now;
            CHECK(usbts_now_ns(d, &t_now));
            CHECK(usbts_ns_to_frame(ih, th, t_now, &now));
            ULONG frame = now.UsbFrameNumber - 100 + (ULONG)(i % 200), uf = (ULONG)(i % 8);

            USBTS_FRAME_TIME m, r, t, b;
            CHECK(usbts_frame_to_clock_ns(ih, th, USBTS_CLOCK_MONOTONIC, frame, uf, &m));
            CHECK(usbts_frame_to_clock_ns(ih, th, USBTS_CLOCK_REALTIME, frame, uf, &r));
            CHECK(usbts_clock_offset(USBTS_CLOCK_REALTIME, &off, &unc));
            CHECK(usbts_frame_to_clock_ns(ih, th, USBTS_CLOCK_TAI, frame, uf, &t));
            CHECK(usbts_frame_to_clock_ns(ih, th, USBTS_CLOCK_BOOTTIME, frame, uf, &b));
            CHECK(r.UsbFrameNumber == frame && r.MicroFrameNumber == uf && r.GenerationId == m.GenerationId);
            /* The MONOTONIC call is the plain nanosecond call. */
            USBTS_FRAME_TIME p;
            CHECK(usbts_frame_to_ns(ih, th, frame, uf, &p));
            if (virt)
                CHECK(p.StartNs == m.StartNs && p.BoundNs == m.BoundNs);
            /* The conversion widens the bound, by at least its 1 ns. */
            CHECK(r.BoundNs > m.BoundNs || !virt);
            /* On the virtual clock the MONOTONIC answer does not move between
             * the calls, so REALTIME - MONOTONIC is the conversion alone and
             * must equal the independently measured offset within the two
             * conversions' uncertainties.  On the real clock the model may be
             * republished in between: both model bounds count too. */
            long long widen = virt ? (r.BoundNs - m.BoundNs) + unc : r.BoundNs + m.BoundNs + unc;
            long long dev = llabs((r.StartNs - m.StartNs) - off);
            bad_off += dev > widen;
            worst_off = dev > worst_off ? dev : worst_off;
            widest = widen > widest ? widen : widest;
            /* TAI is REALTIME plus the kernel's whole-second TAI offset. */
            if (tai_offset_s >= 0)
                bad_tai += llabs((t.StartNs - r.StartNs) - (long long)tai_offset_s * 1000000000) >
                           (virt ? (t.BoundNs - m.BoundNs) + (r.BoundNs - m.BoundNs) : t.BoundNs + r.BoundNs);
            /* BOOTTIME is MONOTONIC plus the time suspended: never behind it. */
            bad_boot += b.StartNs < m.StartNs - (b.BoundNs + m.BoundNs);
            n++;
        }
        printf("%s: REALTIME - MONOTONIC answers vs measured offset: worst %lld ns, allowance up to %lld ns, "
               "%d of %d outside\n",
               specs[k], worst_off, widest, bad_off, n);
        CHECK_EQ(bad_off, 0);
        CHECK_EQ(bad_tai, 0);
        CHECK_EQ(bad_boot, 0);

        /* The bulk call: one generation, the same answers as one by one on
         * the virtual clock (same model), each within its bound of the truth. */
        enum { N = 1000 };
        static ULONG frames[N], ufs[N];
        static LONGLONG starts[N], bounds[N], mono[N];
        USBTS_FRAME_TIME now;
        LONGLONG t_now;
        CHECK(usbts_now_ns(d, &t_now));
        CHECK(usbts_ns_to_frame(ih, th, t_now, &now));
        for (int i = 0; i < N; i++) {
            frames[i] = now.UsbFrameNumber - 500 + (ULONG)i;
            ufs[i] = (ULONG)(i * 3 % 8);
        }
        ULONG gen = 0;
        CHECK_SUCCEEDS(usbts_frames_to_clock_ns(ih, th, USBTS_CLOCK_MONOTONIC, N, frames, ufs, mono, bounds, &gen));
        CHECK(gen == now.GenerationId);
        int outside = 0, differ = 0;
        for (int i = 0; i < N; i++) {
            LONGLONG truth;
            if (virt) {
                CHECK(usbts_sim_truth(d, frames[i], ufs[i], &truth));
                outside += llabs(mono[i] - truth) > bounds[i];
                USBTS_FRAME_TIME one;
                CHECK(usbts_frame_to_ns(ih, th, frames[i], ufs[i], &one));
                differ += one.StartNs != mono[i] || one.BoundNs != bounds[i];
            }
            if (i > 0)
                differ += mono[i] <= mono[i - 1] - 125000; /* increasing frames, increasing times */
        }
        CHECK_MSG(outside * 100 <= N, "%d of %d bulk answers outside their bound", outside, N);
        CHECK_EQ(differ, 0);
        CHECK(usbts_frames_to_clock_ns(ih, th, USBTS_CLOCK_REALTIME, N, frames, NULL, starts, NULL, &gen));
        CHECK(usbts_clock_offset(USBTS_CLOCK_REALTIME, &off, &unc));
        USBTS_FRAME_TIME f0;
        CHECK(usbts_frame_to_ns(ih, th, frames[7], 0, &f0));
        CHECK_MSG(llabs(starts[7] - f0.StartNs - off) <= (virt ? 2 * unc : 2 * unc + 2 * f0.BoundNs),
                  "bulk REALTIME answer %lld, MONOTONIC %lld, offset %lld", (long long)starts[7],
                  (long long)f0.StartNs, (long long)off);
        /* Bad input fails the whole call and writes nothing. */
        ufs[N / 2] = 8;
        starts[0] = 12345;
        CHECK_FAILS_WITH(usbts_frames_to_clock_ns(ih, th, USBTS_CLOCK_REALTIME, N, frames, ufs, starts, bounds, &gen),
                         ERROR_INVALID_PARAMETER);
        CHECK(starts[0] == 12345);
        CHECK_FAILS_WITH(usbts_frames_to_clock_ns(ih, th, 9, 1, frames, NULL, starts, NULL, &gen),
                         ERROR_INVALID_PARAMETER);
        CHECK_FAILS_WITH(usbts_frames_to_clock_ns(ih, th, 1, 1, NULL, NULL, starts, NULL, &gen),
                         ERROR_INVALID_PARAMETER);
        CHECK_FAILS_WITH(usbts_frames_to_clock_ns(ih, th, 1, 1, frames, NULL, starts, NULL, NULL),
                         ERROR_INVALID_PARAMETER);
        CHECK_FAILS_WITH(usbts_frame_to_clock_ns(ih, th, 4, 0, 0, &f0), ERROR_INVALID_PARAMETER);
        CHECK_FAILS_WITH(usbts_frame_to_clock_ns(ih, th, 1, 0, 8, &f0), ERROR_INVALID_PARAMETER);
        CHECK_FAILS_WITH(usbts_frame_to_clock_ns(NULL, th, 1, 0, 0, &f0), ERROR_INVALID_HANDLE);
        USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION st = {th};
        CHECK(WinUsb_StopTrackingForTimeSync(ih, &st));
        CHECK_FAILS_WITH(usbts_frames_to_clock_ns(ih, th, 1, 1, frames, NULL, starts, NULL, &gen),
                         ERROR_INVALID_HANDLE);
        CHECK_FAILS_WITH(usbts_frame_to_clock_ns(ih, th, 2, 0, 0, &f0), ERROR_INVALID_HANDLE);
        CHECK(WinUsb_Free(ih));
        CHECK(usbts_close(d));
    }
    return test_finish();
}
