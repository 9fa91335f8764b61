/* SPDX-License-Identifier: MIT */
/*
 * estimator.c — the estimator's public face: initial state, the model it
 * publishes (model.h) and its statistics.  The work is done in rooms of one
 * concern each, layered so that none reaches back into another:
 *
 *   est_regress.c   the weighted line fit                (uses nothing)
 *   est_bound.c     what the bound is made of, wander    (regress)
 *   est_window.c    which fit window                     (regress, bound)
 *   est_extend.c    14-bit counter to 64-bit count       (regress, bound)
 *   est_epoch.c     accept, surprise, hold, new epochs   (all above)
 *   est_capture.c   reads to captures                    (epoch, extend)
 *   est_plan.c      when and how long to read            (extend, bound)
 *
 * est_internal.h, below them all, holds the shared constants and helpers.
 * Pure math: no I/O, no clock, no thread, no allocation.
 */
#include "est_internal.h"

#include <math.h>
#include <string.h>

/* The SOF reaches the wire some way from the MFINDEX edge the host reads
 * (controller pipeline, SYNC field, hub repeaters): invisible to every read,
 * so the published bound covers it up to this much, like the latch position
 * (the simulator's sof_ns, USBTS_SIM_SOF_COVERED_NS, must not exceed it). */
#define SOF_ALLOWANCE_NS 250.0

void usbts_est_init(struct usbts_est *e)
{
    memset(e, 0, sizeof *e);
    e->lead_ns = 20000;
    e->last_period_ns = NOMINAL_NS;
}

void usbts_est_reset(struct usbts_est *e)
{
    struct usbts_est_stats st = e->stats;
    uint32_t epoch = e->epoch;
    double lead = e->lead_ns, bracket = e->bracket_ns;
    usbts_est_init(e);
    e->stats = st;
    e->epoch = epoch;
    e->lead_ns = lead;
    e->bracket_ns = bracket;
}

bool usbts_est_model(const struct usbts_est *e, struct usbts_model *out)
{
    if (e->epoch == 0 || !e->have_anchor)
        return false;
    memset(out, 0, sizeof *out);
    out->generation = e->epoch;
    /* The heartbeat vouches for the model, not just for the reading: reads
     * that capture nothing for longer than a gap (every one preempted, or
     * the first bursts after a stall) leave the model as old as its newest
     * capture, and the reader's staleness rule must see that. */
    out->heartbeat_ns = e->heartbeat_ns;
    if (!e->stopped && e->cap_count > 0 && e->heartbeat_ns > e->last_capture_ns + GAP_NS)
        out->heartbeat_ns = e->last_capture_ns + GAP_NS;
    double period = NOMINAL_NS, bound0, slope;
    if (e->stopped) {
        out->flags = USBTS_MODEL_STOPPED;
        out->ref_mf = e->frozen_mf;
        out->ref_ns = llround(e->frozen_start_ns);
        out->period_fp = usbts_period_to_fp(e->last_period_ns);
        out->rate_fp = 0;
        out->bound0_ns = (int64_t)(NOMINAL_NS + 2 * e->bracket_ns + e->frozen_half_ns);
        out->bound_slope_fp = usbts_slope_to_fp(PRIOR_RATE);
        return true;
    }
    if (e->have_fit) {
        out->ref_mf = e->fit.ref_mf;
        out->ref_ns = llround((double)e->fit.ref_t + e->fit.a);
        period = e->fit.b;
        est_bound_terms(e, true, &bound0, &slope);
        bound0 += SOF_ALLOWANCE_NS;
        /* The fit's rate holds between captures that come a cadence apart:
         * a change of the host clock's rate (NTP slewing it) shows in the
         * next one.  When captures stop coming (every burst preempted) the
         * model reaches further than anything has checked: from OVERDUE_NS
         * after the newest capture, the bound grows at the rate NTP may
         * slew by, so that it covers the answer at the newest read.  The
         * slope is published from the newest capture, so the growth is
         * spread over the whole distance: exact at this read, and the next
         * burst publishes afresh. */
        double since = (double)(e->heartbeat_ns - e->last_capture_ns);
        if (since > OVERDUE_NS)
            slope += SLEW_ALLOWANCE * (1 - OVERDUE_NS / since);
        out->bound_wander_fp = usbts_wander_to_fp(e->wander);
        out->flags = USBTS_MODEL_CAPTURED;
    } else if (e->cap_count > 0) {
        const struct usbts_est_capture *c = est_cap_at(e, 0);
        period = e->last_period_ns;
        out->ref_mf = c->mf;
        out->ref_ns = c->t_ns;
        bound0 = K * c->sd_ns + fmax(est_latch_term(e), LATCH_HALF * c->w_ns) + SOF_ALLOWANCE_NS;
        slope = PRIOR_RATE;
        out->flags = USBTS_MODEL_CAPTURED;
    } else {
        /* one read: the microframe began somewhere in the 125 µs before the
         * latch, and the latch is somewhere in the bracket */
        period = e->last_period_ns;
        out->ref_mf = e->anchor_mf;
        out->ref_ns = llround(e->anchor_ns - NOMINAL_NS / 2);
        bound0 = NOMINAL_NS / 2 + fmax(e->bracket_ns, e->anchor_half_ns) + 1000;
        slope = PRIOR_RATE;
    }
    out->period_fp = usbts_period_to_fp(period);
    out->rate_fp = usbts_period_to_rate_fp(period);
    out->bound0_ns = (int64_t)ceil(bound0) + 1;
    out->bound_slope_fp = usbts_slope_to_fp(slope);
    return true;
}

void usbts_est_get_stats(const struct usbts_est *e, struct usbts_est_stats *out)
{
    *out = e->stats;
}
