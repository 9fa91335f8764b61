/* SPDX-License-Identifier: MIT */
/*
 * uvc.c — UVC cameras' PTS on the host clock: the public face of uvc_parse.c
 * (the bytes) and uvc_clock.c (the fit and its checks).  The only thing done
 * here is the query: put an SCR's 11-bit SOF on the host clock, extended next
 * to the reception of the header that carried it, in one model snapshot.
 */
#include <stdlib.h>
#include <string.h>

#include "iso_rule.h"
#include "lasterror.h"
#include "snapshot.h"
#include "usbtimesync/usbtimesync.h"
#include "uvc_clock.h"
#include "uvc_parse.h"

/* The SOF an SCR names lies at most this many frames before the reception of
 * its header (the 11-bit window, less one), or one after (a reception stamped
 * at a boundary the model has not passed yet). */
#define SOF_BACK_FRAMES 2046
#define SOF_AHEAD_FRAMES 1
#define MAX_DISTANCE_NS (2147483647ll * 1000000ll) /* 2^31 ms, as usbts_ns_to_frame */

struct USBTS_UVC {
    struct usbts_uvc_clock clock;
    bool have_pts, pts_fresh;
    uint32_t pts;
    uint32_t last_fit_gen;
};

USBTS_UVC *usbts_uvc_create(ULONG hz, ULONG flags)
{
    if (hz == 0 || (flags & ~USBTS_UVC_SOF_ANY_MICROFRAME)) {
        usbts_fail(ERROR_INVALID_PARAMETER, "usbts_uvc_create: ClockFrequency %u (the camera's dwClockFrequency, > 0), "
                                            "Flags 0x%x (USBTS_UVC_SOF_ANY_MICROFRAME or 0)",
                   (unsigned)hz, (unsigned)flags);
        return NULL;
    }
    USBTS_UVC *u = calloc(1, sizeof *u);
    bool any = flags & USBTS_UVC_SOF_ANY_MICROFRAME;
    if (!u || !usbts_uvc_clock_init(&u->clock, (double)hz, any ? 437500 : 0, any ? 437500 : 0)) {
        free(u);
        usbts_fail(ERROR_NOT_ENOUGH_MEMORY, "no memory for a UVC clock");
        return NULL;
    }
    return u;
}

void usbts_uvc_destroy(USBTS_UVC *u)
{
    if (!u)
        return;
    usbts_uvc_clock_free(&u->clock);
    free(u);
}

/* An SCR's SOF on the host clock, next to its reception (0: now). */
static BOOL take_scr(USBTS_UVC *u, WINUSB_INTERFACE_HANDLE ih, HANDLE th, const struct usbts_uvc_hdr *h,
                     int64_t recv)
{
    struct usbts_snapshot s;
    DWORD err = usbts_snapshot_take(ih, th, &s);
    if (err != ERROR_SUCCESS)
        return usbts_snapshot_fail(err);
    if (recv == 0)
        recv = s.now;
    if (recv < 0)
        return usbts_fail(ERROR_INVALID_PARAMETER, "the reception time %lld ns is negative: pass the host clock's "
                                                   "time (usbts_now_ns), or 0 for now", (long long)recv);
    if (recv > s.now + MAX_DISTANCE_NS || recv < s.now - MAX_DISTANCE_NS)
        return usbts_fail(ERROR_INVALID_PARAMETER,
                          "the reception time %lld ns is not within 2^31 ms of now (%lld ns): pass the host clock's "
                          "time (usbts_now_ns), or 0 for now",
                          (long long)recv, (long long)s.now);
    int64_t mf_recv = usbts_model_mf_at(&s.m, recv);
    uint32_t cur = (uint32_t)(uint64_t)(mf_recv >> 3), full = cur;
    if (usbts_frame_extend(h->sof, cur, SOF_BACK_FRAMES, SOF_AHEAD_FRAMES, &full) != USBTS_EXTEND_ONE)
        full = cur; /* unreachable: a 2048-frame window holds exactly one */
    int64_t mf = (mf_recv & ~(int64_t)7) + (int64_t)(int32_t)(full - cur) * 8;
    int64_t host = usbts_model_start_ns(&s.m, mf);
    int64_t bound = usbts_snapshot_bound(&s, host);
    if (!usbts_snapshot_still_valid(ih, th, &s))
        return usbts_snapshot_fail(ERROR_INVALID_HANDLE);
    usbts_uvc_clock_add(&u->clock, h->stc, h->sof, host, bound, s.m.generation, recv);
    return TRUE;
}

static BOOL take_header(USBTS_UVC *u, WINUSB_INTERFACE_HANDLE ih, HANDLE th, const struct usbts_uvc_hdr *h,
                        int64_t recv)
{
    if (h->has_scr && !take_scr(u, ih, th, h, recv))
        return FALSE;
    if (h->has_pts) {
        u->have_pts = true;
        u->pts_fresh = true;
        u->pts = h->pts;
    }
    return TRUE;
}

BOOL usbts_uvc_add_header(USBTS_UVC *u, WINUSB_INTERFACE_HANDLE ih, HANDLE th, const void *hdr, ULONG len,
                          LONGLONG recv)
{
    if (!u)
        return usbts_fail(ERROR_INVALID_PARAMETER, "Uvc is NULL (usbts_uvc_create makes one)");
    struct usbts_uvc_hdr h;
    const char *why = usbts_uvc_parse_header(hdr, len, &h);
    if (why)
        return usbts_fail(ERROR_INVALID_PARAMETER, "not a UVC payload header: %s", why);
    return take_header(u, ih, th, &h, recv);
}

BOOL usbts_uvc_add_meta(USBTS_UVC *u, WINUSB_INTERFACE_HANDLE ih, HANDLE th, const void *buf, ULONG len)
{
    if (!u)
        return usbts_fail(ERROR_INVALID_PARAMETER, "Uvc is NULL (usbts_uvc_create makes one)");
    if (!buf && len)
        return usbts_fail(ERROR_INVALID_PARAMETER, "Buffer is NULL");
    const uint8_t *p = buf;
    /* Every block first: a buffer that is bad anywhere changes nothing. */
    size_t at = 0, blocks = 0;
    while (at < len) {
        uint64_t ts;
        uint16_t sof;
        struct usbts_uvc_hdr h;
        size_t used;
        const char *why = usbts_uvc_parse_block(p + at, len - at, &ts, &sof, &h, &used);
        if (why)
            return usbts_fail(ERROR_INVALID_PARAMETER, "V4L2_META_FMT_UVC block %zu at byte %zu: %s", blocks, at,
                              why);
        if (ts == 0 || ts > (uint64_t)INT64_MAX)
            return usbts_fail(ERROR_INVALID_PARAMETER,
                              "V4L2_META_FMT_UVC block %zu at byte %zu: reception time %llu is not a host time",
                              blocks, at, (unsigned long long)ts);
        at += used;
        blocks++;
    }
    for (at = 0; at < len;) {
        uint64_t ts;
        uint16_t sof;
        struct usbts_uvc_hdr h;
        size_t used;
        usbts_uvc_parse_block(p + at, len - at, &ts, &sof, &h, &used);
        if (!take_header(u, ih, th, &h, (int64_t)ts))
            return FALSE;
        at += used;
    }
    return TRUE;
}

BOOL usbts_uvc_map(USBTS_UVC *u, ULONG clock, ULONG pts, USBTS_UVC_FRAME *out)
{
    if (!u || !out)
        return usbts_fail(ERROR_INVALID_PARAMETER, "usbts_uvc_map needs a Uvc and a Frame");
    LONGLONG off = 0, unc = 0;
    if (clock != USBTS_CLOCK_MONOTONIC && !usbts_clock_offset(clock, &off, &unc))
        return FALSE;
    int64_t host, bound;
    uint32_t gen, fit_gen, pairs;
    int how = usbts_uvc_clock_map(&u->clock, pts, &host, &bound, &gen, &fit_gen, &pairs);
    if (!how)
        return usbts_fail(ERROR_GEN_FAILURE, "the camera's clock is not known yet: it needs 4 SCRs (has %llu)",
                          (unsigned long long)u->clock.scrs);
    memset(out, 0, sizeof *out);
    out->Pts = pts;
    out->StartNs = host + off;
    out->BoundNs = bound + unc;
    out->GenerationId = gen;
    out->FitGeneration = fit_gen;
    out->Pairs = pairs;
    out->Flags = (how == USBTS_UVC_MAP_FALLBACK ? USBTS_UVC_FALLBACK : 0) | (u->clock.junk ? USBTS_UVC_JUNK_SOF : 0) |
                 (u->last_fit_gen && fit_gen != u->last_fit_gen ? USBTS_UVC_NEW_GENERATION : 0);
    out->Scrs = u->clock.scrs;
    out->Repeats = u->clock.repeats;
    out->Bad = u->clock.bad;
    u->last_fit_gen = fit_gen;
    return TRUE;
}

BOOL usbts_uvc_frame(USBTS_UVC *u, ULONG clock, USBTS_UVC_FRAME *out)
{
    if (!u || !out)
        return usbts_fail(ERROR_INVALID_PARAMETER, "usbts_uvc_frame needs a Uvc and a Frame");
    if (!u->pts_fresh)
        return usbts_fail(ERROR_NOT_FOUND, "no payload header with a PTS since the last frame");
    /* Taken even when it cannot be answered: the next call is about the next frame. */
    u->pts_fresh = false;
    return usbts_uvc_map(u, clock, u->pts, out);
}
