/* SPDX-License-Identifier: MIT */
/*
 * test_native_ns.c — the nanosecond API: usbts_frame_to_ns and its inverse
 * usbts_ns_to_frame, against the simulator's truth, and their agreement with
 * the WinUSB values derived from the same model.
 */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "usbtimesync/usbtimesync.h"

int main(void)
{
    HANDLE d = usbts_open("sim:clock=virtual,seed=21,drift_ppm=-321");
    WINUSB_INTERFACE_HANDLE ih;
    CHECK(WinUsb_Initialize(d, &ih));
    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION s = {NULL, FALSE};
    CHECK(WinUsb_StartTrackingForTimeSync(ih, &s));
    HANDLE th = s.TimeTrackingHandle;
    CHECK(usbts_sim_advance(d, 2500000000ull));

    /* The figures behind the bound: a frame clock 321 ppm slow (its period
     * longer, so the rate error is about -321 ppm), reads ~500 ns wide. */
    USBTS_TRACKING_STATS ts;
    CHECK(usbts_get_tracking_stats(d, &ts));
    CHECK_MSG(ts.RatePpm > -331 && ts.RatePpm < -311, "rate %.1f ppm", ts.RatePpm);
    CHECK_MSG(ts.BracketNs > 250 && ts.BracketNs < 1000, "bracket %lld ns", (long long)ts.BracketNs);
    CHECK(ts.Captures > 20 && ts.Reads > ts.Captures && ts.Window >= 4 && ts.Sampling);
    CHECK_FAILS_WITH(usbts_get_tracking_stats(d, NULL), ERROR_INVALID_PARAMETER);
    CHECK_FAILS_WITH(usbts_get_tracking_stats(NULL, &ts), ERROR_INVALID_HANDLE);

    int outside = 0, n = 0, inverse_bad = 0, winusb_bad = 0;
    long long worst = 0;
    for (int i = 0; i < 500; i++) {
        CHECK(usbts_sim_advance(d, 1000000 + (ULONGLONG)(i % 7) * 131313));
        USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;
        memset(&q, 0, sizeof q);
        q.TimeTrackingHandle = th;
        CHECK(WinUsb_GetCurrentFrameNumberAndQpc(ih, &q));
        ULONG frame = q.CurrentUSBFrameNumber - 50 + (ULONG)(i % 100), uf = (ULONG)(i % 8);

        USBTS_FRAME_TIME ft;
        CHECK(usbts_frame_to_ns(ih, th, frame, uf, &ft));
        CHECK_EQ(ft.UsbFrameNumber, frame);
        CHECK_EQ(ft.MicroFrameNumber, uf);
        CHECK_EQ(ft.GenerationId, q.CurrentGenerationID);
        CHECK(ft.BoundNs >= 1);
        LONGLONG truth;
        CHECK(usbts_sim_truth(d, frame, uf, &truth));
        long long err = llabs(ft.StartNs - truth);
        outside += err > ft.BoundNs;
        worst = err > worst ? err : worst;
        n++;

        /* The inverse: a time inside that microframe maps back to it. */
        USBTS_FRAME_TIME back;
        LONGLONG probe = ft.StartNs + 40000;
        CHECK(usbts_ns_to_frame(ih, th, probe, &back));
        inverse_bad += back.UsbFrameNumber != frame || back.MicroFrameNumber != uf || back.StartNs != ft.StartNs ||
                       back.OffsetNs != 40000;

        /* The WinUSB value is the same time in 100 ns ticks. */
        q.InputFrameNumber = frame;
        q.InputMicroFrameNumber = uf;
        CHECK(WinUsb_GetCurrentFrameNumberAndQpc(ih, &q));
        long long qpc = q.QueryPerformanceCounterAtInputFrameOrMicroFrame.QuadPart;
        winusb_bad += llabs(qpc * 100 - ft.StartNs) > 50;
    }
    printf("frame_to_ns: worst error %lld ns over %d values, %d outside their bound\n", worst, n, outside);
    CHECK_MSG(outside * 100 <= n, "%d of %d outside the bound", outside, n);
    CHECK_MSG(worst <= 1500, "worst error %lld ns", worst);
    CHECK_EQ(inverse_bad, 0);
    CHECK_EQ(winusb_bad, 0);

    /* The current instant maps to the current microframe. */
    LONGLONG now;
    CHECK(usbts_now_ns(d, &now));
    USBTS_FRAME_TIME cur;
    CHECK(usbts_ns_to_frame(ih, th, now, &cur));
    CHECK(cur.OffsetNs >= 0 && cur.OffsetNs < 125100);
    LONGLONG truth;
    CHECK(usbts_sim_truth(d, cur.UsbFrameNumber, cur.MicroFrameNumber, &truth));
    CHECK(llabs(cur.StartNs - truth) <= cur.BoundNs);

    /* Argument checks, as the WinUSB calls do them. */
    USBTS_FRAME_TIME ft;
    CHECK_FAILS_WITH(usbts_frame_to_ns(ih, th, 0, 8, &ft), ERROR_INVALID_PARAMETER);
    CHECK_FAILS_WITH(usbts_frame_to_ns(NULL, th, 0, 0, &ft), ERROR_INVALID_HANDLE);
    CHECK_FAILS_WITH(usbts_frame_to_ns(ih, th, 0, 0, NULL), ERROR_INVALID_HANDLE);
    CHECK_FAILS_WITH(usbts_ns_to_frame(ih, (HANDLE)ih, now, &ft), ERROR_INVALID_HANDLE);
    USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION st = {th};
    CHECK(WinUsb_StopTrackingForTimeSync(ih, &st));
    CHECK_FAILS_WITH(usbts_frame_to_ns(ih, th, 0, 0, &ft), ERROR_INVALID_HANDLE);
    CHECK_FAILS_WITH(usbts_ns_to_frame(ih, th, now, &ft), ERROR_INVALID_HANDLE);
    CHECK(WinUsb_Free(ih));
    CHECK(usbts_close(d));
    return test_finish();
}
