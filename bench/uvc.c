/* SPDX-License-Identifier: MIT */
/*
 * bench/uvc — start-of-exposure times of a simulated UVC camera: ours
 * (usbts_uvc_*) against the kernel driver's published method
 * (bench/uvc_kernel.h), both fed the same metadata blocks, both compared with
 * the simulator's truth.  Prints each method's median and p99 error and the
 * ratio kernel / ours for: nominal, jittery SCR, a slow frame rate, and a junk
 * SOF counter (the kernel then with its invalid-SOF quirk, ours detecting it).
 * Virtual clock: the figures are the same on every run and every machine.
 *   uvc [SECONDS]   (default 30 s of camera time per scenario)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "usbtimesync/usbtimesync.h"
#include "uvc_camera.h"
#include "uvc_kernel.h"

#define MAX_ERRS 20000

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, long n, double p)
{
    if (n == 0)
        return -1;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[(size_t)((double)(n - 1) * p)];
}

static void scenario(const char *name, struct cam_opts o, double seconds)
{
    HANDLE d = usbts_open("sim:clock=virtual,seed=11,drift_ppm=-35,preempt_prob=0.01");
    WINUSB_INTERFACE_HANDLE ih;
    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION st = {NULL, FALSE};
    if (d == INVALID_HANDLE_VALUE || !WinUsb_Initialize(d, &ih) || !WinUsb_StartTrackingForTimeSync(ih, &st)) {
        fprintf(stderr, "uvc: %s\n", usbts_last_error_message());
        exit(1);
    }
    usbts_sim_advance(d, 2000000000ull);
    USBTS_UVC *u = usbts_uvc_create((ULONG)o.hz, 0);
    struct kuvc k;
    kuvc_init(&k, o.junk_sof != CAM_JUNK_NONE);
    struct cam cam;
    cam_start(&cam, &o, d, ih, st.TimeTrackingHandle);
    static double ours[MAX_ERRS], kern[MAX_ERRS];
    long n_ours = 0, n_kern = 0, outside = 0, frames = (long)(seconds * o.fps), fallback = 0;
    uint8_t prev[6], buf[CAM_MAX_PAYLOADS * 22];
    memset(prev, 0xFF, sizeof prev);
    for (long f = 0; f < frames; f++) {
        struct cam_frame fr;
        cam_next_frame(&cam, &fr);
        size_t len = cam_meta_buffer(&fr, buf, sizeof buf, prev);
        usbts_uvc_add_meta(u, ih, st.TimeTrackingHandle, buf, (ULONG)len);
        /* The kernel reads the same blocks. */
        for (size_t at = 0; at + 22 <= len; at += 22) {
            uint64_t ts;
            uint16_t hsof;
            memcpy(&ts, buf + at, 8);
            memcpy(&hsof, buf + at + 8, 2);
            const uint8_t *h = buf + at + 10;
            uint32_t stc = (uint32_t)h[6] | (uint32_t)h[7] << 8 | (uint32_t)h[8] << 16 | (uint32_t)h[9] << 24;
            uint16_t sof = (uint16_t)((h[10] | h[11] << 8) & 0x7FF);
            kuvc_sample(&k, stc, sof, hsof, (int64_t)ts);
        }
        USBTS_UVC_FRAME out;
        int64_t kh;
        bool ok_ours = usbts_uvc_frame(u, USBTS_CLOCK_MONOTONIC, &out);
        bool ok_kern = kuvc_convert(&k, fr.pts, &kh);
        /* Both once warmed up (the kernel's ring full, 4 SCRs for ours), on the
         * same frames. */
        if (!ok_ours || !ok_kern || f < 10)
            continue;
        double e = fabs((double)(out.StartNs - fr.exposure_ns));
        outside += e > (double)out.BoundNs;
        fallback += (out.Flags & USBTS_UVC_FALLBACK) != 0;
        if (n_ours < MAX_ERRS)
            ours[n_ours++] = e;
        if (n_kern < MAX_ERRS)
            kern[n_kern++] = fabs((double)(kh - fr.exposure_ns));
    }
    double o50 = pct(ours, n_ours, 0.5), o99 = pct(ours, n_ours, 0.99);
    double k50 = pct(kern, n_kern, 0.5), k99 = pct(kern, n_kern, 0.99);
    printf("%-26s %6ld frames  ours p50 %9.0f p99 %9.0f ns (outside bound %.2f%%, fallback %ld)  kernel p50 %9.0f "
           "p99 %9.0f ns  kernel/ours p99 %.1fx\n",
           name, n_ours, o50, o99, n_ours ? 100.0 * (double)outside / (double)n_ours : 0, fallback, k50, k99,
           o99 > 0 ? k99 / o99 : 0);
    usbts_uvc_destroy(u);
    usbts_close(d);
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 30;
    if (!(seconds > 0) || seconds > 3600) {
        fprintf(stderr, "usage: uvc [SECONDS]   (camera time per scenario, 0 < s <= 3600)\n");
        return 2;
    }
    struct cam_opts o = cam_defaults();
    scenario("nominal (30 fps)", o, seconds);
    o = cam_defaults();
    o.jitter_ns = 20000;
    scenario("jittery SCR (20 us)", o, seconds);
    o = cam_defaults();
    o.fps = 1;
    o.stale_scr = true;
    o.payloads = 16;
    scenario("slow (1 fps, stale SCR)", o, seconds * 4);
    o = cam_defaults();
    o.junk_sof = CAM_JUNK_OWN;
    scenario("junk SOF (own counter)", o, seconds);
    o = cam_defaults();
    o.junk_sof = CAM_JUNK_RANDOM;
    scenario("junk SOF (random)", o, seconds);
    return 0;
}
