/* SPDX-License-Identifier: MIT */
/*
 * query_loop.c — runs a fixed number of queries inside one function, so that
 * callgrind (--toggle-collect=query_loop) counts exactly their instructions.
 *
 *   query_loop real|virtual N
 *
 * Instruction counts are repeatable where wall time is not: the ctest keeps
 * a ceiling on instructions per query.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "usbtimesync/usbtimesync.h"

__attribute__((noinline)) long long query_loop(WINUSB_INTERFACE_HANDLE ih, HANDLE th, int n)
{
    long long sum = 0;
    USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;
    memset(&q, 0, sizeof q);
    q.TimeTrackingHandle = th;
    for (int i = 0; i < n; i++) {
        q.InputFrameNumber = (ULONG)i;
        q.InputMicroFrameNumber = (ULONG)(i & 7);
        if (!WinUsb_GetCurrentFrameNumberAndQpc(ih, &q))
            return -1;
        sum += q.QueryPerformanceCounterAtInputFrameOrMicroFrame.QuadPart;
    }
    return sum;
}

int main(int argc, char **argv)
{
    const char *clock = argc > 1 ? argv[1] : "virtual";
    int n = argc > 2 ? atoi(argv[2]) : 10000;
    char spec[64];
    snprintf(spec, sizeof spec, "sim:clock=%s", clock);
    HANDLE d = usbts_open(spec);
    WINUSB_INTERFACE_HANDLE ih;
    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION s = {NULL, FALSE};
    if (d == INVALID_HANDLE_VALUE || !WinUsb_Initialize(d, &ih) || !WinUsb_StartTrackingForTimeSync(ih, &s)) {
        fprintf(stderr, "query_loop: %s\n", usbts_last_error_message());
        return 1;
    }
    if (strcmp(clock, "virtual") == 0)
        usbts_sim_advance(d, 1000000000ull);
    long long r = query_loop(ih, s.TimeTrackingHandle, n);
    printf("%d queries (checksum %lld)\n", n, r);
    USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION p = {s.TimeTrackingHandle};
    WinUsb_StopTrackingForTimeSync(ih, &p);
    WinUsb_Free(ih);
    usbts_close(d);
    return r < 0;
}
