/* SPDX-License-Identifier: MIT */
/*
 * sof_sync.c — device-to-host clock synchronisation the way firmware authors
 * do it, with usbtimesync.
 *
 * The device latches its own clock at the start of frame N (the SOF) and
 * reports (N, device_time).  The host asks usbtimesync at which QPC frame N
 * started, and fits device time against host time: offset and rate of the
 * device's clock.  Here the "device" is simulated: a clock running 37 ppm fast
 * with a 1.5 ms offset, reporting every 50th frame.
 *
 * Built and run as README.md says ("Building against it"):
 *   cc examples/sof_sync.c $(pkg-config --cflags --libs usbtimesync) -o sof_sync
 *   LD_LIBRARY_PATH=$(pkg-config --variable=libdir usbtimesync) ./sof_sync [SPEC]   (default: sim)
 * It needs nothing but the library: no -lm (hence its own absd()).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <usbtimesync/usbtimesync.h>
#include <usbtimesync/winusb.h>

#define REPORTS 40

static double absd(double x)
{
    return x < 0 ? -x : x;
}

int main(int argc, char **argv)
{
    const char *spec = argc > 1 ? argv[1] : "sim";
    HANDLE dev = usbts_open(spec);
    WINUSB_INTERFACE_HANDLE ih;
    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION start = {NULL, FALSE};
    if (dev == INVALID_HANDLE_VALUE || !WinUsb_Initialize(dev, &ih) || !WinUsb_StartTrackingForTimeSync(ih, &start)) {
        fprintf(stderr, "sof_sync: %s (error %u)\n", usbts_last_error_message(), (unsigned)GetLastError());
        return 1;
    }

    double host_s[REPORTS], dev_s[REPORTS];
    int n = 0;
    for (int i = 0; i < REPORTS; i++) {
        struct timespec wait = {0, 50000000};
        nanosleep(&wait, NULL);
        USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;
        memset(&q, 0, sizeof q);
        q.TimeTrackingHandle = start.TimeTrackingHandle;
        if (!WinUsb_GetCurrentFrameNumberAndQpc(ih, &q))
            break;
        /* The device's report: it latched its clock at the SOF of a recent frame. */
        ULONG frame = q.CurrentUSBFrameNumber - 3;
        LONGLONG truth_ns;
        double sof_true_s;
        if (usbts_sim_truth(dev, frame, 0, &truth_ns))
            sof_true_s = (double)truth_ns * 1e-9; /* what the simulated device's clock saw */
        else
            sof_true_s = (double)q.CurrentQueryPerformanceCounter.QuadPart * 1e-7;
        double device_time = 0.0015 + sof_true_s * (1 + 37e-6);

        /* The host's side: when did frame N start? */
        q.InputFrameNumber = frame;
        q.InputMicroFrameNumber = 0;
        if (!WinUsb_GetCurrentFrameNumberAndQpc(ih, &q))
            break;
        host_s[n] = (double)q.QueryPerformanceCounterAtInputFrameOrMicroFrame.QuadPart /
                    (double)q.QueryPerformanceCounterFrequency.QuadPart;
        dev_s[n] = device_time;
        n++;
    }

    /* Least squares: device = offset + rate * host. */
    double mh = 0, md = 0, shh = 0, shd = 0;
    for (int i = 0; i < n; i++) {
        mh += host_s[i] / n;
        md += dev_s[i] / n;
    }
    for (int i = 0; i < n; i++) {
        shh += (host_s[i] - mh) * (host_s[i] - mh);
        shd += (host_s[i] - mh) * (dev_s[i] - md);
    }
    double rate = n > 1 ? shd / shh : 0, offset = md - rate * mh;
    double worst = 0;
    for (int i = 0; i < n; i++)
        if (absd(dev_s[i] - (offset + rate * host_s[i])) > worst)
            worst = absd(dev_s[i] - (offset + rate * host_s[i]));
    printf("%d SOF reports: device clock runs %+.2f ppm against the host, residual %.2f us at worst\n", n,
           (rate - 1) * 1e6, worst * 1e6);

    USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION stop = {start.TimeTrackingHandle};
    WinUsb_StopTrackingForTimeSync(ih, &stop);
    WinUsb_Free(ih);
    usbts_close(dev);
    /* The simulated device runs 37 ppm fast: the fit must find it. */
    return (n == REPORTS && absd((rate - 1) * 1e6 - 37) < 2 && worst < 5e-6) ? 0 : 1;
}
