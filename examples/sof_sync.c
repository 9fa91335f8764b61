/* SPDX-License-Identifier: MIT */
/*
 * sof_sync.c — device-to-host clock synchronisation the way firmware authors
 * do it, with usbtimesync's device-clock fit.
 *
 * The device latches its own clock at the start of a frame (the SOF) and
 * reports (device time, the 11-bit SOF number it saw).  usbts_devclock_add
 * extends the SOF number to the 32-bit frame number, asks the frame model
 * when that frame started on the host clock, and fits device time to host
 * time robustly; usbts_devclock_to_host then puts any device timestamp on the
 * host's timeline, with a bound.
 *
 * Here the "device" is simulated: a 1 MHz, 32-bit counter running 37 ppm fast,
 * reporting every 50 ms, one report in ten latched late (a slow interrupt).
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
#define DEVICE_HZ 1e6
#define DEVICE_PPM 37.0

static double absd(double x)
{
    return x < 0 ? -x : x;
}

/* The simulated device's counter at host time t_ns: 1 MHz, 37 ppm fast,
 * 1.5 ms ahead, 32 bits. */
static ULONGLONG device_clock(double t_ns)
{
    return (ULONGLONG)(1500.0 + t_ns * 1e-9 * DEVICE_HZ * (1 + DEVICE_PPM * 1e-6) + 0.5) & 0xFFFFFFFFull;
}

static int fail(const char *what)
{
    fprintf(stderr, "sof_sync: %s: %s (error %u)\n", what, usbts_last_error_message(), (unsigned)GetLastError());
    return 1;
}

int main(int argc, char **argv)
{
    const char *spec = argc > 1 ? argv[1] : "sim";
    HANDLE dev = usbts_open(spec);
    WINUSB_INTERFACE_HANDLE ih;
    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION start = {NULL, FALSE};
    if (dev == INVALID_HANDLE_VALUE || !WinUsb_Initialize(dev, &ih) || !WinUsb_StartTrackingForTimeSync(ih, &start))
        return fail("start");
    HANDLE th = start.TimeTrackingHandle;
    USBTS_DEVCLOCK *clk = usbts_devclock_create(DEVICE_HZ, 32, 0);
    if (!clk)
        return fail("usbts_devclock_create");

    USBTS_DEVCLOCK_STATUS st;
    memset(&st, 0, sizeof st);
    int n = 0, rejected = 0;
    for (int i = 0; i < REPORTS; i++) {
        struct timespec wait = {0, 50000000};
        nanosleep(&wait, NULL);
        USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;
        memset(&q, 0, sizeof q);
        q.TimeTrackingHandle = th;
        if (!WinUsb_GetCurrentFrameNumberAndQpc(ih, &q))
            return fail("query");
        /* The device's report: its clock, latched at the SOF of a recent
         * frame, and that SOF's 11-bit number. */
        ULONG frame = q.CurrentUSBFrameNumber - 3;
        LONGLONG sof_ns;
        if (!usbts_sim_truth(dev, frame, 0, &sof_ns)) /* what the simulated device's clock saw */
            sof_ns = q.CurrentQueryPerformanceCounter.QuadPart * 100;
        double latch_ns = (double)sof_ns + (i % 10 == 7 ? 180e3 : 0); /* now and then a late interrupt */
        if (!usbts_devclock_add(clk, ih, th, device_clock(latch_ns), frame & 0x7FF, USBTS_DEVCLOCK_FRAME_BITS_11, 0,
                                &st))
            return fail("usbts_devclock_add");
        n++;
        rejected += st.Rejected;
        if (st.Restarted)
            printf("the controller's frame clock changed generation: the fit restarted (generation %u)\n",
                   (unsigned)st.Generation);
    }
    printf("%d SOF reports, %d set aside as late: device clock runs %+.2f ppm against the host, scatter %lld ns, "
           "bound %lld ns\n",
           n, rejected, st.RatePpm, (long long)st.ResidualNs, (long long)st.BoundNs);

    /* Any device timestamp on the host's timeline: here, "now" on the device. */
    LONGLONG now_ns, host_ns, bound_ns;
    usbts_now_ns(dev, &now_ns);
    ULONGLONG dnow = device_clock((double)now_ns);
    if (!usbts_devclock_to_host(clk, dnow, &host_ns, &bound_ns))
        return fail("usbts_devclock_to_host");
    double err_ns = (double)host_ns - (double)now_ns;
    printf("device time %llu us is host time %lld ns (+-%lld ns); true error %.0f ns\n", (unsigned long long)dnow, (long long)host_ns,
           (long long)bound_ns, err_ns);

    usbts_devclock_destroy(clk);
    USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION stop = {th};
    WinUsb_StopTrackingForTimeSync(ih, &stop);
    WinUsb_Free(ih);
    usbts_close(dev);
    /* The simulated device runs 37 ppm fast, and its late reports are outliers:
     * the fit must find the rate, set them aside, and bound its answer. The
     * device counts whole microseconds, so the answer is good to half of one. */
    return (st.Ready && absd(st.RatePpm - DEVICE_PPM) < 2 && rejected >= 3 && absd(err_ns) <= (double)bound_ns + 500)
               ? 0
               : 1;
}
