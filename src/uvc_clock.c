/* SPDX-License-Identifier: MIT */
/* uvc_clock.c — a UVC camera's clock on the host's timeline (uvc_clock.h). */
#include "uvc_clock.h"

#include <math.h>
#include <string.h>

#define SOF_WINDOW 128
#define RECV_WINDOW 128
/* Pairs closer than this (camera time) to the last one fed add little and
 * cost a refit each: at 240 fps with an SCR in every payload, most are skipped. */
#define FEED_SPACING_NS 8e6
#define AGREE_NS 200000.0
#define AGREE_PPM 1500.0
/* A SOF may be named by a header received this long before it started, at most
 * (the model's bound aside): a reception stamped near a frame boundary. */
#define CAUSAL_SLACK_NS 100000
/* A camera's clock against the receptions: they wander by transfer and
 * interrupt latency, not by more. */
#define STC_RECV_AGREE_NS 20e6

bool usbts_uvc_clock_init(struct usbts_uvc_clock *c, double hz, int64_t sof_offset_ns, int64_t sof_extra_bound_ns)
{
    memset(c, 0, sizeof *c);
    if (!usbts_dcfit_init(&c->sof_fit, hz, 32, SOF_WINDOW))
        return false;
    if (!usbts_dcfit_init(&c->recv_fit, hz, 32, RECV_WINDOW)) {
        usbts_dcfit_free(&c->sof_fit);
        return false;
    }
    c->hz = hz;
    c->sof_offset_ns = sof_offset_ns;
    c->sof_extra_bound_ns = sof_extra_bound_ns;
    return true;
}

void usbts_uvc_clock_free(struct usbts_uvc_clock *c)
{
    usbts_dcfit_free(&c->sof_fit);
    usbts_dcfit_free(&c->recv_fit);
}

/* An empty SOF fit, its generation moved on (junk never stays in it). */
static void restart_sof_fit(struct usbts_dcfit *f)
{
    f->generation++;
    f->count = 0;
    f->head = 0;
    f->have_last = false;
    f->ready = false;
}

static int popcount32(uint32_t v)
{
    int n = 0;
    for (; v; v &= v - 1)
        n++;
    return n;
}

/* Camera ticks from a to b (32-bit counter, either direction within half a wrap), in ns. */
static double stc_delta_ns(const struct usbts_uvc_clock *c, uint32_t a, uint32_t b)
{
    return (double)(int32_t)(b - a) * 1e9 / c->hz;
}

/* Two SCRs' STCs against their receptions. */
static bool stc_agrees(const struct usbts_uvc_clock *c, uint32_t stc0, int64_t recv0, uint32_t stc1, int64_t recv1)
{
    double ds = stc_delta_ns(c, stc0, stc1), dr = (double)(recv1 - recv0);
    return fabs(dr - ds) <= STC_RECV_AGREE_NS + AGREE_PPM * 1e-6 * fabs(ds);
}

static int64_t lat_floor(const struct usbts_uvc_clock *c)
{
    int64_t m = INT64_MAX;
    for (uint32_t i = 0; i < c->lat_count; i++)
        m = c->lat_ring[i] < m ? c->lat_ring[i] : m;
    return m;
}

/* Junk when 4 of the last 32 checks failed or the latency floor is too high;
 * sound again after 32 good ones.  The SOF fit restarts at both turns. */
static void update_junk(struct usbts_uvc_clock *c, bool far)
{
    uint32_t mask = c->checks >= 32 ? 0xFFFFFFFFu : (1u << c->checks) - 1;
    int bads = popcount32(c->bad_bits & mask);
    if (!c->junk && (bads >= USBTS_UVC_JUNK_BAD || far)) {
        c->junk = true;
        c->junk_episodes++;
        restart_sof_fit(&c->sof_fit);
    } else if (c->junk && bads == 0 && c->checks >= USBTS_UVC_CHECK_RING && !far) {
        c->junk = false;
        restart_sof_fit(&c->sof_fit);
    }
}

void usbts_uvc_clock_add(struct usbts_uvc_clock *c, uint32_t stc, uint16_t sof, int64_t sof_ns, int64_t sof_bound,
                         uint32_t gen, int64_t recv_ns)
{
    if (c->have_prev && stc == c->prev_stc && sof == c->prev_sof) {
        c->repeats++;
        return;
    }
    c->scrs++;
    sof_ns += c->sof_offset_ns;
    sof_bound += c->sof_extra_bound_ns;

    /* An STC the receptions contradict (garbage in the SCR, not just in its
     * SOF) goes nowhere, and the previous SCR stays the reference, unless
     * eight in a row agree with each other: then the reference was the
     * garbage, and the reception fit starts again from them. */
    if (c->recv_count > 0) {
        uint32_t last = (c->recv_head + USBTS_UVC_RECV_RING - 1) % USBTS_UVC_RECV_RING;
        if (!stc_agrees(c, c->recv_ring[last].stc, c->recv_ring[last].recv, stc, recv_ns)) {
            if (c->cand_run > 0 && stc_agrees(c, c->cand_stc, c->cand_recv, stc, recv_ns))
                c->cand_run++;
            else
                c->cand_run = 1;
            c->cand_stc = stc;
            c->cand_recv = recv_ns;
            if (c->cand_run < 8) {
                c->bad++;
                c->bad_bits = c->bad_bits << 1 | 1u;
                if (c->checks < USBTS_UVC_CHECK_RING)
                    c->checks++;
                update_junk(c, false);
                return;
            }
            restart_sof_fit(&c->recv_fit);
            c->recv_count = 0;
        }
    }
    c->cand_run = 0;

    /* The reception fit takes every new SCR: it needs no SOF. */
    bool feed_recv = c->recv_count == 0 ||
                     fabs(stc_delta_ns(c, c->recv_ring[(c->recv_head + USBTS_UVC_RECV_RING - 1) % USBTS_UVC_RECV_RING].stc,
                                       stc)) >= FEED_SPACING_NS;
    if (feed_recv) {
        bool r;
        usbts_dcfit_add(&c->recv_fit, stc, recv_ns, 1, 0, &r);
        if (r)
            c->recv_count = 0;
        c->recv_ring[c->recv_head].stc = stc;
        c->recv_ring[c->recv_head].recv = recv_ns;
        c->recv_head = (c->recv_head + 1) % USBTS_UVC_RECV_RING;
        if (c->recv_count < USBTS_UVC_RECV_RING)
            c->recv_count++;
    }

    /* The checks. */
    bool bad = false;
    int64_t lat = recv_ns - sof_ns;
    if (lat < -(CAUSAL_SLACK_NS + sof_bound))
        bad = true; /* the SOF started after the header was received */
    if (c->have_prev && c->prev_frame_gen == gen) {
        double dh = (double)(sof_ns - c->prev_sof_ns), ds = stc_delta_ns(c, c->prev_stc, stc);
        if (fabs(dh - ds) > AGREE_NS + AGREE_PPM * 1e-6 * fabs(ds))
            bad = true;
    }
    c->have_prev = true;
    c->prev_stc = stc;
    c->prev_sof = sof;
    c->prev_sof_ns = sof_ns;
    c->prev_frame_gen = gen;
    c->bad_bits = c->bad_bits << 1 | (bad ? 1u : 0u);
    c->bad += bad;
    if (c->checks < USBTS_UVC_CHECK_RING)
        c->checks++;
    c->lat_ring[c->lat_head] = lat;
    c->lat_head = (c->lat_head + 1) % USBTS_UVC_CHECK_RING;
    if (c->lat_count < USBTS_UVC_CHECK_RING)
        c->lat_count++;

    update_junk(c, lat_floor(c) > USBTS_UVC_LATENCY_NS && c->lat_count >= 8);
    if (bad)
        return;
    /* Spacing for the SOF fit too, against the newest pair it holds. */
    if (c->sof_fit.have_last && c->sof_fit.frame_generation == gen &&
        fabs(stc_delta_ns(c, (uint32_t)c->sof_fit.last_raw, stc)) < FEED_SPACING_NS)
        return;
    bool r;
    usbts_dcfit_add(&c->sof_fit, stc, sof_ns, sof_bound, gen, &r);
}

int usbts_uvc_clock_map(const struct usbts_uvc_clock *c, uint32_t pts, int64_t *host, int64_t *bound, uint32_t *gen,
                        uint32_t *fit_gen, uint32_t *pairs)
{
    *gen = c->sof_fit.frame_generation;
    *fit_gen = c->sof_fit.generation;
    *pairs = c->sof_fit.ready ? c->sof_fit.inliers : 0;
    if (!c->junk && usbts_dcfit_map(&c->sof_fit, pts, host, bound))
        return USBTS_UVC_MAP_SOF;
    /* Fallback: the reception line, down to the envelope of the receptions. */
    int64_t h, b;
    if (!usbts_dcfit_map(&c->recv_fit, pts, &h, &b) || c->recv_count == 0)
        return 0;
    int64_t env = INT64_MAX;
    for (uint32_t i = 0; i < c->recv_count; i++) {
        int64_t hi, bi;
        if (!usbts_dcfit_map(&c->recv_fit, c->recv_ring[i].stc, &hi, &bi))
            continue;
        int64_t r = c->recv_ring[i].recv - hi;
        env = r < env ? r : env;
    }
    if (env == INT64_MAX)
        return 0;
    /* The line's own uncertainty is that of the envelope point's, not of its
     * mean: the fit's bound counts the latency scatter, which is honest here. */
    *host = h + env - USBTS_UVC_LATENCY_NS / 2;
    *bound = USBTS_UVC_LATENCY_NS / 2 + b;
    *pairs = c->recv_fit.ready ? c->recv_fit.inliers : 0;
    return USBTS_UVC_MAP_FALLBACK;
}
