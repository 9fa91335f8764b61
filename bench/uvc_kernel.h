/* SPDX-License-Identifier: MIT */
/*
 * uvc_kernel.h — the baseline: the Linux uvcvideo driver's published way of
 * turning a PTS into host time, written here from its description (the
 * driver's uvc_video_clock_decode / uvc_video_clock_update), not from its
 * code, so that bench/uvc can feed it the same streams as ours.
 *
 * The driver keeps a ring of the last 32 samples, one per header with a new
 * SCR: the camera's STC and SOF, and the host's frame number and time read
 * when the header was received.  Once the ring is full, a frame's PTS goes
 * through two straight lines, each drawn from the oldest sample to the newest:
 * camera STC -> camera SOF (with a 16-bit fraction; here a double), then, the
 * camera's SOF moved onto the host's numbering, host frame number -> host
 * time.  The camera's and host's SOF numbers may differ by a constant: it is
 * taken from the first sample, and ignored when below 10 frames.  Cameras
 * quirked as having an invalid SOF get the host's frame number in its place.
 */
#ifndef USBTS_BENCH_UVC_KERNEL_H
#define USBTS_BENCH_UVC_KERNEL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define KUVC_RING 32

struct kuvc_sample {
    uint32_t stc;
    uint16_t dev_sof, host_sof;
    int64_t host_ns;
};

struct kuvc {
    bool invalid_sof_quirk;
    struct kuvc_sample ring[KUVC_RING];
    unsigned count, head;
    bool have_last, have_offset;
    uint32_t last_stc;
    uint16_t last_sof;
    int sof_offset;
};

static inline void kuvc_init(struct kuvc *k, bool quirk)
{
    memset(k, 0, sizeof *k);
    k->invalid_sof_quirk = quirk;
}

/* One received header with an SCR. */
static inline void kuvc_sample(struct kuvc *k, uint32_t stc, uint16_t dev_sof, uint16_t host_sof, int64_t host_ns)
{
    dev_sof &= 0x7FF;
    host_sof &= 0x7FF;
    if (k->have_last && stc == k->last_stc && dev_sof == k->last_sof)
        return; /* the same SCR again */
    k->have_last = true;
    k->last_stc = stc;
    k->last_sof = dev_sof;
    if (k->invalid_sof_quirk)
        dev_sof = host_sof;
    if (!k->have_offset) {
        int d = (host_sof - dev_sof) & 0xFF;
        k->sof_offset = d >= 10 ? d : 0;
        k->have_offset = true;
    }
    k->ring[k->head] = (struct kuvc_sample){stc, (uint16_t)((dev_sof + k->sof_offset) & 0x7FF), host_sof, host_ns};
    k->head = (k->head + 1) % KUVC_RING;
    if (k->count < KUVC_RING)
        k->count++;
}

/* Signed distance a -> b on an 11-bit counter. */
static inline int kuvc_sof_delta(uint16_t a, uint16_t b)
{
    int d = (b - a) & 0x7FF;
    return d >= 1024 ? d - 2048 : d;
}

/* The PTS on the host clock; false until the ring is full (or when its ends
 * coincide). */
static inline bool kuvc_convert(const struct kuvc *k, uint32_t pts, int64_t *host_ns)
{
    if (k->count < KUVC_RING)
        return false;
    const struct kuvc_sample *first = &k->ring[k->head % KUVC_RING];
    const struct kuvc_sample *last = &k->ring[(k->head + KUVC_RING - 1) % KUVC_RING];
    /* STC -> camera SOF, counted from the oldest sample's SOF.  A span that
     * went backwards is taken as a wrap of 2048 frames, as the driver does. */
    double x2 = (double)(uint32_t)(last->stc - first->stc);
    double y2 = (double)((last->dev_sof - first->dev_sof) & 0x7FF);
    if (x2 == 0)
        return false;
    double y = y2 * (double)(int32_t)(pts - first->stc) / x2;
    /* Onto the host's numbering, still counted from the oldest sample. */
    y += (double)kuvc_sof_delta(first->host_sof, first->dev_sof);
    /* Host frame number -> host time. */
    double hx2 = (double)((last->host_sof - first->host_sof) & 0x7FF);
    if (hx2 == 0)
        return false;
    *host_ns = first->host_ns + (int64_t)(y * (double)(last->host_ns - first->host_ns) / hx2);
    return true;
}

#endif
