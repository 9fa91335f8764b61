/* SPDX-License-Identifier: MIT */
/*
 * uvc_camera.h — a simulated UVC camera on the simulated controller, for the
 * tests, the benchmark and the example's replay (header only: each user
 * compiles its own copy; nothing here is in the library).
 *
 * The camera has its own clock (STC: ClockFrequency Hz, a ppm error against
 * the host clock, 32 bits, so it wraps), starts exposing frame k at a known
 * host time (the truth), stamps the frame with PTS = STC at that instant, and
 * sends the frame in `payloads` payloads spread over part of the frame
 * interval.  Each payload header carries the PTS and an SCR: the STC latched at
 * the SOF of the bus frame the payload goes out in (the sim's truth for that
 * SOF), with latch jitter, and that frame's 11-bit number.  The host receives
 * each payload a transfer time plus an interrupt latency later; a metadata
 * block records that reception time and the frame number on the bus then, as
 * the kernel's driver does.
 *
 * Defects, the kinds the kernel quirks for: junk SOF numbers (random, or a
 * counter run from the camera's own clock, not the bus), stale SCRs (latched
 * once per frame and repeated), headers without SCR, a stretch of garbage
 * SCRs, slow frame rates.
 *
 * Needs a virtual-clock sim with a tracking handle; it moves the clock.
 */
#ifndef USBTS_UVC_CAMERA_H
#define USBTS_UVC_CAMERA_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "usbtimesync/usbtimesync.h"

#define CAM_JUNK_NONE 0
#define CAM_JUNK_RANDOM 1 /* SOF numbers drawn at random */
#define CAM_JUNK_OWN 2    /* a millisecond counter run from the camera's clock, not the bus */

struct cam_opts {
    double hz, ppm, fps;
    int payloads;
    double jitter_ns;      /* SCR latch jitter, sigma */
    int junk_sof;          /* CAM_JUNK_* */
    bool stale_scr;        /* one SCR per frame, repeated in every payload */
    double missing_scr;    /* chance that a header has no SCR */
    uint32_t stc_start;    /* STC at the first frame's exposure */
    long junk_from, junk_to; /* frames whose SCRs carry garbage STCs */
    double irq_ns;         /* mean interrupt latency after a transfer completes */
    uint64_t seed;
};

static inline struct cam_opts cam_defaults(void)
{
    struct cam_opts o;
    memset(&o, 0, sizeof o);
    o.hz = 48e6;
    o.ppm = 80;
    o.fps = 30;
    o.payloads = 8;
    o.jitter_ns = 200;
    o.junk_from = o.junk_to = -1;
    o.irq_ns = 30e3;
    o.seed = 7;
    return o;
}

struct cam_header {
    uint8_t bytes[12];
    uint8_t len;
    int64_t recv_ns;     /* host time the payload was received */
    uint16_t host_sof;   /* the bus frame then (11 bits) */
    uint32_t scr_frame;  /* the true 32-bit frame of the SCR's SOF (the baseline's not to know) */
};

#define CAM_MAX_PAYLOADS 64

struct cam_frame {
    long index;
    int64_t exposure_ns; /* the truth: start of exposure on the host clock */
    uint32_t pts;
    int n;
    struct cam_header h[CAM_MAX_PAYLOADS];
};

struct cam {
    struct cam_opts o;
    HANDLE dev;
    WINUSB_INTERFACE_HANDLE ih;
    HANDLE th;
    int64_t t0;
    long next;
    uint64_t rng;
    bool fid;
};

static inline double cam_urand(struct cam *c)
{
    c->rng = c->rng * 6364136223846793005ull + 1442695040888963407ull;
    return ((double)(c->rng >> 11) + 0.5) / 9007199254740992.0;
}

static inline double cam_gauss(struct cam *c)
{
    return sqrt(-2 * log(cam_urand(c))) * cos(6.283185307179586 * cam_urand(c));
}

/* The camera's clock at host time t, unwrapped ticks. */
static inline double cam_ticks(const struct cam *c, double t)
{
    return (double)c->o.stc_start + (t - (double)c->t0) * 1e-9 * c->o.hz * (1 + c->o.ppm * 1e-6);
}

static inline uint32_t cam_stc(const struct cam *c, double t)
{
    return (uint32_t)(uint64_t)(int64_t)llround(cam_ticks(c, t));
}

/* Starts the camera: the first exposure 10 ms from now. */
static inline void cam_start(struct cam *c, const struct cam_opts *o, HANDLE dev, WINUSB_INTERFACE_HANDLE ih,
                             HANDLE th)
{
    memset(c, 0, sizeof *c);
    c->o = *o;
    c->dev = dev;
    c->ih = ih;
    c->th = th;
    c->rng = o->seed * 2654435761u + 1;
    LONGLONG now = 0;
    usbts_now_ns(dev, &now);
    c->t0 = now + 10000000;
}

static inline void cam_advance_to(struct cam *c, int64_t t)
{
    LONGLONG now = 0;
    usbts_now_ns(c->dev, &now);
    if (t > now)
        usbts_sim_advance(c->dev, (ULONGLONG)(t - now));
}

/* The frame on the wire at host time t (the clock near t): its 32-bit number
 * and the true time its SOF went out. */
static inline uint32_t cam_frame_at(struct cam *c, int64_t t, LONGLONG *sof_ns)
{
    USBTS_FRAME_TIME ft;
    memset(&ft, 0, sizeof ft);
    usbts_ns_to_frame(c->ih, c->th, t, &ft);
    uint32_t f = ft.UsbFrameNumber;
    LONGLONG s = 0, s1 = 0;
    usbts_sim_truth(c->dev, f, 0, &s);
    if (s > t) {
        f--;
        usbts_sim_truth(c->dev, f, 0, &s);
    } else if (usbts_sim_truth(c->dev, f + 1, 0, &s1) && s1 <= t) {
        f++;
        s = s1;
    }
    *sof_ns = s;
    return f;
}

/* The next frame: moves the virtual clock to its last reception. */
static inline void cam_next_frame(struct cam *c, struct cam_frame *fr)
{
    const struct cam_opts *o = &c->o;
    double period = 1e9 / o->fps;
    memset(fr, 0, sizeof *fr);
    fr->index = c->next++;
    fr->exposure_ns = c->t0 + (int64_t)llround((double)fr->index * period);
    fr->pts = cam_stc(c, (double)fr->exposure_ns);
    c->fid = !c->fid;
    int n = o->payloads < 1 ? 1 : o->payloads > CAM_MAX_PAYLOADS ? CAM_MAX_PAYLOADS : o->payloads;
    /* Exposure, then readout: the payloads go out from 3 ms after the start of
     * exposure, over at most 60% of the interval (30 ms at most). */
    double span = fmin(0.6 * period, 30e6);
    int64_t last_recv = 0;
    uint32_t stale_stc = 0, stale_sof = 0, stale_frame = 0;
    for (int j = 0; j < n; j++) {
        int64_t send = fr->exposure_ns + 3000000 + (int64_t)(span * j / n);
        cam_advance_to(c, send);
        LONGLONG sof_ns;
        uint32_t f = cam_frame_at(c, send, &sof_ns);
        uint32_t stc = cam_stc(c, (double)sof_ns + o->jitter_ns * cam_gauss(c));
        uint32_t sof = f & 0x7FF;
        if (o->junk_sof == CAM_JUNK_RANDOM)
            sof = (uint32_t)(cam_urand(c) * 2048) & 0x7FF;
        else if (o->junk_sof == CAM_JUNK_OWN)
            sof = (uint32_t)(int64_t)floor(cam_ticks(c, (double)sof_ns) / o->hz * 1e3 + 777) & 0x7FF;
        if (fr->index >= o->junk_from && fr->index < o->junk_to)
            stc = (uint32_t)(cam_urand(c) * 4294967295.0);
        if (o->stale_scr) {
            if (j == 0) {
                stale_stc = stc;
                stale_sof = sof;
                stale_frame = f;
            }
            stc = stale_stc;
            sof = stale_sof;
            f = stale_frame;
        }
        bool scr = !(o->missing_scr > 0 && cam_urand(c) < o->missing_scr);
        struct cam_header *h = &fr->h[fr->n++];
        uint8_t *b = h->bytes;
        b[1] = (uint8_t)(0x80 | (c->fid ? 0x01 : 0) | (j == n - 1 ? 0x02 : 0) | 0x04 | (scr ? 0x08 : 0));
        memcpy(b + 2, (uint8_t[4]){(uint8_t)fr->pts, (uint8_t)(fr->pts >> 8), (uint8_t)(fr->pts >> 16),
                                   (uint8_t)(fr->pts >> 24)}, 4);
        if (scr) {
            uint8_t s6[6] = {(uint8_t)stc, (uint8_t)(stc >> 8), (uint8_t)(stc >> 16), (uint8_t)(stc >> 24),
                             (uint8_t)sof, (uint8_t)(sof >> 8)};
            memcpy(b + 6, s6, 6);
        }
        h->len = (uint8_t)(scr ? 12 : 6);
        b[0] = h->len;
        h->scr_frame = f;
        /* Transfer (50 us .. 1 ms) and interrupt latency (exponential). */
        int64_t recv = send + 50000 + (int64_t)(cam_urand(c) * 950000) +
                       (int64_t)(-o->irq_ns * log(cam_urand(c)));
        if (recv < last_recv)
            recv = last_recv;
        last_recv = recv;
        h->recv_ns = recv;
    }
    /* The host frames at the receptions, in order (the clock moves forward). */
    for (int j = 0; j < fr->n; j++) {
        cam_advance_to(c, fr->h[j].recv_ns);
        LONGLONG s;
        fr->h[j].host_sof = (uint16_t)(cam_frame_at(c, fr->h[j].recv_ns, &s) & 0x7FF);
    }
}

/* The frame as a V4L2_META_FMT_UVC buffer, as the kernel's driver fills it:
 * headers without an SCR, or with the previous header's SCR, are left out.
 * prev_scr (6 bytes, kept by the caller across frames; all 0xFF at first).
 * Returns bytesused. */
static inline size_t cam_meta_buffer(const struct cam_frame *fr, uint8_t *buf, size_t cap, uint8_t prev_scr[6])
{
    size_t at = 0;
    for (int j = 0; j < fr->n; j++) {
        const struct cam_header *h = &fr->h[j];
        if (!(h->bytes[1] & 0x08) || memcmp(prev_scr, h->bytes + 6, 6) == 0)
            continue;
        memcpy(prev_scr, h->bytes + 6, 6);
        if (at + 10 + h->len > cap)
            break;
        uint64_t ts = (uint64_t)h->recv_ns;
        uint16_t sof = h->host_sof;
        memcpy(buf + at, &ts, 8);
        memcpy(buf + at + 8, &sof, 2);
        memcpy(buf + at + 10, h->bytes, h->len);
        at += 10 + h->len;
    }
    return at;
}

#endif
