/* SPDX-License-Identifier: MIT */
/*
 * test_uvc.c — UVC start-of-exposure times against the simulated camera's
 * truth (tests/uvc_camera.h), on a virtual clock.
 *
 * Each scenario streams frames through the helper (as V4L2 metadata buffers,
 * or as raw headers the way a libusb stack sees them) and compares every
 * frame's StartNs with the true start of exposure: the p99 error is printed,
 * and at most 1% may lie outside BoundNs.  Then the defects: wraps of the
 * 11-bit SOF and the 32-bit STC, slow and fast frame rates, stale and missing
 * SCRs, junk SOF counters (detected, flagged, a larger bound that still
 * holds), a controller reset (a new generation, then back within the bound)
 * and a stretch of garbage SCRs (back to the SOF fit afterwards).  Malformed
 * input fails cleanly and changes nothing.
 */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "usbtimesync/usbtimesync.h"
#include "uvc_camera.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

struct figures {
    long frames, answered, outside, fallback, junk_flag, new_gen;
    double p99_ns, max_bound_ns, median_bound_ns;
    ULONG last_flags;
    ULONGLONG repeats, bad;
};

#define MAX_FRAMES 8192

struct run {
    const char *name;
    const char *spec;
    struct cam_opts cam;
    long frames;
    bool raw;           /* raw headers instead of metadata buffers */
    long reset_at;      /* frame at which the controller is reset (-1: never) */
    long check_from;    /* frames before this are not counted (warm-up) */
    long skip_from, skip_to; /* frames not counted (a blind window the test knows about) */
};

static void stream(const struct run *r, struct figures *fig)
{
    memset(fig, 0, sizeof *fig);
    HANDLE d = usbts_open(r->spec);
    CHECK(d != INVALID_HANDLE_VALUE);
    WINUSB_INTERFACE_HANDLE ih;
    CHECK(WinUsb_Initialize(d, &ih));
    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION st = {NULL, FALSE};
    CHECK(WinUsb_StartTrackingForTimeSync(ih, &st));
    CHECK(usbts_sim_advance(d, 2000000000ull));
    USBTS_UVC *u = usbts_uvc_create((ULONG)r->cam.hz, 0);
    CHECK(u != NULL);
    struct cam cam;
    cam_start(&cam, &r->cam, d, ih, st.TimeTrackingHandle);
    static double errs[MAX_FRAMES], bounds[MAX_FRAMES];
    long n = 0;
    uint8_t prev_scr[6];
    memset(prev_scr, 0xFF, sizeof prev_scr);
    static uint8_t buf[CAM_MAX_PAYLOADS * 22];
    for (long k = 0; k < r->frames; k++) {
        if (k == r->reset_at)
            CHECK(usbts_sim_inject(d, "reset"));
        struct cam_frame fr;
        cam_next_frame(&cam, &fr);
        if (r->raw) {
            for (int j = 0; j < fr.n; j++)
                CHECK_SUCCEEDS(usbts_uvc_add_header(u, ih, st.TimeTrackingHandle, fr.h[j].bytes, fr.h[j].len,
                                                    fr.h[j].recv_ns));
        } else {
            size_t len = cam_meta_buffer(&fr, buf, sizeof buf, prev_scr);
            CHECK_SUCCEEDS(usbts_uvc_add_meta(u, ih, st.TimeTrackingHandle, buf, (ULONG)len));
        }
        USBTS_UVC_FRAME out;
        if (!usbts_uvc_frame(u, USBTS_CLOCK_MONOTONIC, &out)) {
            /* Only "not enough SCRs yet", and only early or just after a reset. */
            CHECK_MSG(GetLastError() == ERROR_GEN_FAILURE || GetLastError() == ERROR_NOT_FOUND,
                      "%s frame %ld: %s", r->name, k, usbts_last_error_message());
            continue;
        }
        CHECK_MSG(out.Pts == fr.pts, "%s: the frame's own PTS is mapped", r->name);
        fig->new_gen += (out.Flags & USBTS_UVC_NEW_GENERATION) != 0;
        fig->last_flags = out.Flags;
        fig->repeats = out.Repeats;
        fig->bad = out.Bad;
        if (k < r->check_from || (k >= r->skip_from && k < r->skip_to))
            continue;
        fig->answered++;
        fig->fallback += (out.Flags & USBTS_UVC_FALLBACK) != 0;
        fig->junk_flag += (out.Flags & USBTS_UVC_JUNK_SOF) != 0;
        double err = fabs((double)(out.StartNs - fr.exposure_ns));
        fig->outside += err > (double)out.BoundNs;
        if (getenv("UVC_DEBUG") && err > (double)out.BoundNs)
            printf("  outside: frame %ld err %.0f bound %lld flags 0x%x pairs %u\n", k, err, (long long)out.BoundNs, (unsigned)out.Flags, (unsigned)out.Pairs);
        if (n < MAX_FRAMES) {
            errs[n] = err;
            bounds[n] = (double)out.BoundNs;
            n++;
        }
    }
    fig->frames = r->frames;
    if (n > 0) {
        qsort(errs, (size_t)n, sizeof *errs, cmp_double);
        qsort(bounds, (size_t)n, sizeof *bounds, cmp_double);
        fig->p99_ns = errs[(size_t)((n - 1) * 0.99)];
        fig->median_bound_ns = bounds[n / 2];
        fig->max_bound_ns = bounds[n - 1];
    }
    printf("%-22s frames %5ld answered %5ld  p99 %10.0f ns  bound median %9.0f max %9.0f  outside %.2f%%  "
           "fallback %ld junk %ld new-gen %ld repeats %llu bad %llu\n",
           r->name, fig->frames, fig->answered, fig->p99_ns, fig->median_bound_ns, fig->max_bound_ns,
           fig->answered ? 100.0 * (double)fig->outside / (double)fig->answered : 0.0, fig->fallback, fig->junk_flag,
           fig->new_gen, (unsigned long long)fig->repeats, (unsigned long long)fig->bad);
    CHECK_MSG(fig->answered > 0, "%s: frames answered", r->name);
    CHECK_MSG((double)fig->outside <= 0.01 * (double)fig->answered, "%s: %ld of %ld outside the bound", r->name,
              fig->outside, fig->answered);
    usbts_uvc_destroy(u);
    WinUsb_Free(ih);
    usbts_close(d);
}

static struct run base(const char *name, double fps, long frames)
{
    struct run r;
    memset(&r, 0, sizeof r);
    r.name = name;
    r.spec = "sim:clock=virtual,seed=3,drift_ppm=40,preempt_prob=0.01";
    r.cam = cam_defaults();
    r.cam.fps = fps;
    r.frames = frames;
    r.reset_at = -1;
    r.check_from = fps < 5 ? 8 : 30;
    r.skip_from = r.skip_to = -1;
    return r;
}

static void nominal_and_rates(void)
{
    struct figures f;
    struct run r = base("nominal 30 fps", 30, 900);
    stream(&r, &f);
    /* SOF-mapped, never the fallback, and tight: a few us, where the
     * reception time alone is off by up to a millisecond. */
    CHECK_MSG(f.fallback == 0 && f.junk_flag == 0, "nominal: no fallback");
    CHECK_MSG(f.p99_ns < 20000, "nominal: p99 %.0f ns under 20 us", f.p99_ns);
    CHECK_MSG(f.median_bound_ns < 50000, "nominal: the bound (%.0f ns) is not padded to a millisecond",
              f.median_bound_ns);

    r = base("raw headers 60 fps", 60, 900);
    r.raw = true;
    r.cam.missing_scr = 0.5; /* headers without SCR still bring their PTS */
    stream(&r, &f);
    CHECK_MSG(f.fallback == 0, "raw headers: no fallback");
    CHECK_MSG(f.p99_ns < 20000, "raw headers: p99 %.0f ns", f.p99_ns);

    r = base("1 fps, stale SCR", 1, 90);
    r.cam.stale_scr = true;
    r.cam.payloads = 16;
    stream(&r, &f);
    CHECK_MSG(f.fallback == 0 && f.p99_ns < 20000, "1 fps: SOF-mapped, p99 %.0f ns", f.p99_ns);
    CHECK_MSG(f.repeats == 0, "1 fps: the metadata node already drops repeated SCRs (%llu)",
              (unsigned long long)f.repeats);

    r = base("raw 5 fps, stale SCR", 5, 200);
    r.raw = true;
    r.cam.stale_scr = true;
    stream(&r, &f);
    CHECK_MSG(f.repeats > 1000, "raw stale SCRs are recognised as repeats (%llu)", (unsigned long long)f.repeats);
    CHECK_MSG(f.fallback == 0 && f.p99_ns < 20000, "5 fps stale: p99 %.0f ns", f.p99_ns);

    r = base("240 fps", 240, 4000);
    r.cam.payloads = 4;
    stream(&r, &f);
    CHECK_MSG(f.fallback == 0 && f.p99_ns < 20000, "240 fps: p99 %.0f ns", f.p99_ns);

    r = base("jittery SCR (20 us)", 30, 900);
    r.cam.jitter_ns = 20000;
    stream(&r, &f);
    CHECK_MSG(f.fallback == 0, "jittery SCR: SOF-mapped");
}

static void wraps(void)
{
    /* The STC wraps 1 s into the stream (48 MHz: every 89 s); 12 s span six
     * wraps of the 11-bit SOF. */
    struct figures f;
    struct run r = base("STC and SOF wraps", 30, 360);
    r.cam.stc_start = 0xFFFFFFFFu - 48000000u;
    stream(&r, &f);
    CHECK_MSG(f.fallback == 0 && f.p99_ns < 20000, "wraps: p99 %.0f ns", f.p99_ns);
    r = base("STC wrap, 1 MHz clock", 15, 300);
    r.cam.hz = 1e6;
    r.cam.stc_start = 0xFFFFFFFFu - 3000000u; /* a 1 MHz STC wraps every 71 min: start next to it */
    stream(&r, &f);
    CHECK_MSG(f.fallback == 0 && f.p99_ns < 20000, "1 MHz wrap: p99 %.0f ns", f.p99_ns);
}

static void junk(void)
{
    struct figures f;
    struct run r = base("junk SOF (random)", 30, 600);
    r.cam.junk_sof = CAM_JUNK_RANDOM;
    stream(&r, &f);
    CHECK_MSG(f.junk_flag == f.answered && f.fallback == f.answered, "random SOF: every answer flagged (%ld/%ld)",
              f.junk_flag, f.answered);
    CHECK_MSG(f.median_bound_ns >= 1000000, "random SOF: the bound is at least 1 ms (%.0f)", f.median_bound_ns);

    r = base("junk SOF (own counter)", 30, 600);
    r.cam.junk_sof = CAM_JUNK_OWN;
    stream(&r, &f);
    CHECK_MSG(f.junk_flag == f.answered && f.fallback == f.answered, "own-counter SOF: every answer flagged (%ld/%ld)",
              f.junk_flag, f.answered);

    /* Garbage SCRs for frames 300..309: the fit keeps them out or falls back,
     * and from frame 450 answers come from the SOF fit again. */
    r = base("SCR junk, recovery", 30, 900);
    r.cam.junk_from = 300;
    r.cam.junk_to = 310;
    stream(&r, &f);
    CHECK_MSG(f.bad > 0, "SCR junk: bad SCRs seen (%llu)", (unsigned long long)f.bad);
    CHECK_MSG(!(f.last_flags & (USBTS_UVC_FALLBACK | USBTS_UVC_JUNK_SOF)), "SCR junk: back to the SOF fit");
    r.check_from = 450;
    r.name = "SCR junk, after 450";
    stream(&r, &f);
    CHECK_MSG(f.fallback == 0 && f.p99_ns < 20000, "after SCR junk: p99 %.0f ns", f.p99_ns);
}

static void generation(void)
{
    /* A reset at frame 300 (10 s): the tracker notices within 50 ms; frames in
     * the 200 ms after are not counted (the frame model itself is wrong until
     * it notices), every other one must be within its bound. */
    struct figures f;
    struct run r = base("reset at frame 300", 30, 900);
    r.reset_at = 300;
    r.skip_from = 300;
    r.skip_to = 306;
    stream(&r, &f);
    CHECK_MSG(f.new_gen >= 1, "reset: a new generation is reported (%ld)", f.new_gen);
    CHECK_MSG(!(f.last_flags & USBTS_UVC_FALLBACK), "reset: back on the SOF fit");
    r.check_from = 330;
    r.name = "after reset (+1 s)";
    stream(&r, &f);
    CHECK_MSG(f.fallback == 0 && f.p99_ns < 20000, "after reset: p99 %.0f ns", f.p99_ns);
}

static void bad_input(void)
{
    HANDLE d = usbts_open("sim:clock=virtual,seed=5");
    WINUSB_INTERFACE_HANDLE ih;
    CHECK(WinUsb_Initialize(d, &ih));
    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION st = {NULL, FALSE};
    CHECK(WinUsb_StartTrackingForTimeSync(ih, &st));
    CHECK(usbts_sim_advance(d, 500000000ull));
    HANDLE th = st.TimeTrackingHandle;
    CHECK(usbts_uvc_create(0, 0) == NULL && GetLastError() == ERROR_INVALID_PARAMETER);
    CHECK(usbts_uvc_create(48000000, 0x80) == NULL && GetLastError() == ERROR_INVALID_PARAMETER);
    USBTS_UVC *u = usbts_uvc_create(48000000, 0);
    CHECK(u != NULL);
    uint8_t h[12] = {12, 0x8D, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    CHECK_FAILS_WITH(usbts_uvc_add_header(u, ih, th, h, 1, 0), ERROR_INVALID_PARAMETER);
    CHECK_FAILS_WITH(usbts_uvc_add_header(u, ih, th, h, 11, 0), ERROR_INVALID_PARAMETER); /* shorter than bHeaderLength */
    uint8_t short_scr[8] = {8, 0x8C, 1, 2, 3, 4, 5, 6}; /* PTS and SCR announced in 8 bytes */
    CHECK_FAILS_WITH(usbts_uvc_add_header(u, ih, th, short_scr, 8, 0), ERROR_INVALID_PARAMETER);
    CHECK_FAILS_WITH(usbts_uvc_add_header(u, ih, th, NULL, 12, 0), ERROR_INVALID_PARAMETER);
    CHECK_FAILS_WITH(usbts_uvc_add_header(u, ih, th, h, 12, -5), ERROR_INVALID_PARAMETER); /* not a host time */
    CHECK_FAILS_WITH(usbts_uvc_add_header(NULL, ih, th, h, 12, 0), ERROR_INVALID_PARAMETER);
    CHECK_FAILS_WITH(usbts_uvc_add_header(u, NULL, th, h, 12, 0), ERROR_INVALID_HANDLE);
    /* A metadata buffer whose second block is cut short: nothing of it is taken. */
    uint8_t meta[44];
    LONGLONG now;
    CHECK(usbts_now_ns(d, &now));
    uint64_t ts = (uint64_t)now;
    uint16_t sof = 1;
    memcpy(meta, &ts, 8);
    memcpy(meta + 8, &sof, 2);
    memcpy(meta + 10, h, 12);
    memcpy(meta + 22, meta, 22);
    CHECK_FAILS_WITH(usbts_uvc_add_meta(u, ih, th, meta, 43), ERROR_INVALID_PARAMETER);
    USBTS_UVC_FRAME out;
    CHECK_FAILS_WITH(usbts_uvc_frame(u, USBTS_CLOCK_MONOTONIC, &out), ERROR_NOT_FOUND); /* the PTS was not taken */
    CHECK_SUCCEEDS(usbts_uvc_add_meta(u, ih, th, meta, 44));
    CHECK_FAILS_WITH(usbts_uvc_frame(u, USBTS_CLOCK_MONOTONIC, &out), ERROR_GEN_FAILURE); /* one SCR is not a clock */
    CHECK_FAILS_WITH(usbts_uvc_frame(u, USBTS_CLOCK_MONOTONIC, &out), ERROR_NOT_FOUND);
    CHECK_FAILS_WITH(usbts_uvc_map(u, 99, 0, &out), ERROR_INVALID_PARAMETER);
    usbts_uvc_destroy(u);
    usbts_uvc_destroy(NULL);
    usbts_close(d);
}

static void other_clock(void)
{
    /* REALTIME answers are the MONOTONIC ones plus the clock's offset. */
    HANDLE d = usbts_open("sim:clock=virtual,seed=9");
    WINUSB_INTERFACE_HANDLE ih;
    CHECK(WinUsb_Initialize(d, &ih));
    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION st = {NULL, FALSE};
    CHECK(WinUsb_StartTrackingForTimeSync(ih, &st));
    CHECK(usbts_sim_advance(d, 2000000000ull));
    struct cam_opts o = cam_defaults();
    struct cam cam;
    cam_start(&cam, &o, d, ih, st.TimeTrackingHandle);
    USBTS_UVC *u = usbts_uvc_create(48000000, 0);
    uint8_t prev[6], buf[CAM_MAX_PAYLOADS * 22];
    memset(prev, 0xFF, sizeof prev);
    struct cam_frame fr;
    for (int k = 0; k < 60; k++) {
        cam_next_frame(&cam, &fr);
        size_t len = cam_meta_buffer(&fr, buf, sizeof buf, prev);
        CHECK(usbts_uvc_add_meta(u, ih, st.TimeTrackingHandle, buf, (ULONG)len));
    }
    USBTS_UVC_FRAME mono, real;
    LONGLONG off, unc;
    CHECK(usbts_uvc_map(u, USBTS_CLOCK_MONOTONIC, fr.pts, &mono));
    CHECK(usbts_uvc_map(u, USBTS_CLOCK_REALTIME, fr.pts, &real));
    CHECK(usbts_clock_offset(USBTS_CLOCK_REALTIME, &off, &unc));
    CHECK_MSG(llabs(real.StartNs - mono.StartNs - off) < 1000000, "REALTIME = MONOTONIC + offset");
    CHECK_MSG(real.BoundNs > mono.BoundNs, "REALTIME's bound includes the conversion");
    usbts_uvc_destroy(u);
    usbts_close(d);
}

int main(void)
{
    nominal_and_rates();
    wraps();
    junk();
    generation();
    bad_input();
    other_clock();
    return test_finish();
}
