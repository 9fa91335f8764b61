/* SPDX-License-Identifier: MIT */
/*
 * est_epoch.c — what a new capture means: part of the current line
 * (accepted), a surprise (the rate moved: the old fit stopped being valid),
 * or a discontinuity (a capture far from any prediction is held; two such
 * that agree with each other start a new epoch, a lone one is dropped).  A
 * counter that stands still starts a STOPPED epoch, and its moving again
 * another.
 */
#include "est_internal.h"

#include <math.h>
#include <string.h>

void est_clear_epoch(struct usbts_est *e)
{
    e->epoch++;
    if (e->epoch > 1)
        e->stats.discontinuities++;
    e->cap_head = e->cap_count = 0;
    e->pending_count = 0;
    e->odd_valid = false;
    e->have_fit = false;
    e->stopped = false;
    e->long_probe = false;
    e->win = 0;
    e->since_gap = 0;
    memset(e->pred_ewma, 0, sizeof e->pred_ewma);
    memset(e->pred_n, 0, sizeof e->pred_n);
    e->noise_ewma = 0;
    e->snap_head = e->snap_count = 0; /* another count: the old fits predict nothing */
    e->unconfirmed = false;
    e->unconfirmed_resid = 0;
    e->change_confirmed = false;
    e->contradicted = false;
    e->unverified_ns = 0;
    e->model_err2_held = 0;
    e->frozen_lo_ns = 0;
    e->coarse_run = false;
    e->phase_valid = false;
}

static void est_push_capture(struct usbts_est *e, const struct usbts_est_capture *c)
{
    /* (est_history: the fits stop reaching back across a gap) */
    if (e->cap_count > 0 && c->t_ns - e->last_capture_ns > GAP_NS)
        e->since_gap = 1;
    else if (e->cap_count == 0)
        e->since_gap = 0;
    else if (e->since_gap > 0 && ++e->since_gap >= USBTS_EST_MAX_WINDOW)
        e->since_gap = 0; /* the gap has left the history */
    e->cap[e->cap_head] = *c;
    e->cap_head = (e->cap_head + 1) % USBTS_EST_MAX_WINDOW;
    if (e->cap_count < USBTS_EST_MAX_WINDOW)
        e->cap_count++;
    e->anchor_mf = c->mf;
    e->anchor_ns = (double)c->t_ns;
    e->have_anchor = true;
    e->last_capture_ns = c->t_ns;
    e->stats.captures++;
    e->phase_valid = false; /* the fit moves: the reads' offsets from it start afresh */
    /* (a coarse capture scores no window: est_score_windows) */
    double v = (double)c->sd_ns * c->sd_ns;
    if (e->cap_count == 1 || !est_coarse(e, c))
        e->noise_ewma = e->cap_count == 1 ? v : e->noise_ewma + PRED_ALPHA * (v - e->noise_ewma);
}

static void est_accept_capture(struct usbts_est *e, const struct usbts_est_capture *c)
{
    if (e->fast_left > 0)
        e->fast_left--;
    /* How far the capture lies from what the fit expected, in units of the
     * random part of the bound: the latch term is an offset every capture
     * shares, so it hides nothing a capture could reveal. */
    double z = 0, resid = 0;
    bool coarse = est_coarse(e, c);
    if (e->have_fit) {
        resid = (double)c->t_ns - est_fit_time(&e->fit, c->mf);
        z = K * fabs(resid) / (est_yardstick_bound(e, c->mf) - est_fit_latch(e, c->mf) + K * c->sd_ns);
    }
    bool surprise = z > K;
    /* While a surprise is unconfirmed, a capture fine enough to tell (its
     * spread under the surprise's residual) decides it: one on the
     * surprise's side and at least half as far confirms the change, though
     * not itself surprising, since the surprise it confirms already moved
     * the records its own surprise is judged by (issue #16 soak, seed
     * 23068699: a 280 ppm host-clock step showed 3.9 us off, then 4.7 us,
     * the doubt was cleared, and the old line ran on across a 100 ms stall
     * to a capture 35 us off, taken for a reset).  One nearer the old line
     * clears the doubt.  Only a doubt about the old line: once a change is
     * confirmed, the line through the two captures that showed it is new,
     * and its next capture, as often on one side as on the other, would
     * restart it again and again. */
    bool sided = e->unconfirmed && !e->change_confirmed && !surprise && K * c->sd_ns < fabs(e->unconfirmed_resid) &&
                 resid * e->unconfirmed_resid > 0 && fabs(resid) > 0.5 * fabs(e->unconfirmed_resid);
    bool gap = c->t_ns - e->last_capture_ns > GAP_NS;
    /* A capture the fit did not expect means the rate may have just
     * changed: look again soon, so the change is confirmed and the windows
     * re-scored within milliseconds rather than over several steady-state
     * periods.  One a little off (a rate step that has only begun to show)
     * is worth one early look. */
    if (surprise || sided || gap)
        e->fast_left = SURPRISE_CAPTURES;
    else if (z > MILD_Z && e->fast_left < 1)
        e->fast_left = 1;
    /* A surprise, and every capture while one is unconfirmed, may be a
     * step of rate, not wander: the fits before it would read the step as
     * wander, and the bound's wander terms, which grow with the square of
     * distance, would keep it for seconds, and widen the yardstick the
     * step's own confirmation is judged by (issue #16 soak: a FLADJ step,
     * coarse captures after it, bounds of milliseconds). */
    if (!surprise && !e->unconfirmed)
        est_learn_wander(e, c);
    /* A surprise says the old fit stopped being valid after the previous
     * capture, but one point cannot say at what rate the clock now runs:
     * until a capture confirms a line, the bound grows at the prior rate
     * from this one, as the surprise test judged. */
    bool confirmed_change = (surprise || sided) && e->unconfirmed;
    /* Only a capture fine enough to have seen the surprise's deviation
     * settles it by not being surprised; a coarse one (a run of slow reads
     * right after a host-clock step) cannot tell, and the rate stays
     * unknown until one can (issue #16 soak: one fine capture showed a
     * step, the coarse ones after it cleared the doubt, and the old rate
     * ran on 7 us off). */
    if (surprise || sided) {
        e->change_confirmed = e->unconfirmed;
        e->unconfirmed = true;
        e->unconfirmed_resid = resid;
    } else if (K * c->sd_ns < fabs(e->unconfirmed_resid)) {
        e->unconfirmed = false;
    }
    e->contradicted = false; /* this capture checks the fit afresh */
    if (surprise && gap) {
        /* Across a stall the old line missed this capture: the rate changed
         * (NTP slewed the host clock) at some moment inside the gap, so
         * neither the old captures nor a line from them to this one tell
         * the rate now.  Only captures from here on do: the line restarts
         * from this one, with the prior rate until the fast captures that
         * follow narrow it.  The count goes on (it was extended within the
         * prior rate over the gap): it is the same counter. */
        e->cap_count = 0;
        e->unconfirmed = false;
    } else if (confirmed_change) {
        /* The second surprise in a row: the rate has changed (a host-clock
         * step), not one outlier.  The old fit stopped being valid before
         * the first surprise, so its data leaves the fit: the line starts
         * again from the two captures that showed the change, with the
         * uncertainty two points have, and narrows as the fast captures
         * come.  The count goes on: it is the same counter. */
        e->cap_count = 1;
        e->since_gap = 0;
    }
    if ((surprise && gap) || confirmed_change)
        e->snap_head = e->snap_count = 0; /* they predict across the step */
    if (gap || confirmed_change) {
        /* After a long gap (a stalled sampler) or a change of rate, every
         * window's record was made before and says nothing about now, and
         * a long window would hold the new captures to the old rate with a
         * bound that only knows the old data.  The shortest window, whose
         * line runs from just before the gap to this capture, follows at
         * once; the windows compete afresh. */
        memset(e->pred_ewma, 0, sizeof e->pred_ewma);
        memset(e->pred_n, 0, sizeof e->pred_n);
        e->win = 0;
    }
    est_score_windows(e, c);
    est_hold_model_err(e);
    est_push_capture(e, c);
    est_refit(e);
    /* The fit is as good as its data, but its data may be old.  When the
     * newest capture is far coarser than the fit's (a run of slow reads:
     * every capture 10 us wide for a second), the fit barely moves with it
     * and goes on at the rate its fine captures had; a change of rate since
     * (NTP slewing the host clock) shows only in coarse captures, each
     * within its spread and its latch's half width of the truth.  So that
     * capture bounds how far the fit has gone: its residual, its spread and
     * half its width, until a fine capture checks the fit again (in a run
     * of coarse captures, a much finer one: est_coarse). */
    e->unverified_ns = coarse ? fabs(resid) + K * c->sd_ns + 0.5 * c->w_ns : 0;
    e->coarse_run = coarse;
    e->pending_count = 0;
}

/* A capture the model cannot explain: hold it; two that agree with each other
 * are a discontinuity. */
static void est_hold_capture(struct usbts_est *e, const struct usbts_est_capture *c)
{
    e->stats.rejected++;
    if (e->pending_count == 2) {
        e->pending[0] = e->pending[1];
        e->pending_count = 1;
    }
    e->pending[e->pending_count++] = *c;
    if (e->pending_count < 2)
        return;
    const struct usbts_est_capture *p = &e->pending[0], *q = &e->pending[1];
    double period = e->have_fit ? e->fit.b : NOMINAL_NS;
    uint32_t dlow = (q->mfindex - p->mfindex) & MASK;
    double dt = (double)(q->t_ns - p->t_ns);
    /* (within their own spreads too: two coarse captures from a run of slow
     * reads, each a few us uncertain, would otherwise be held in turn for
     * as long as the run lasts, and a reset go unnoticed) */
    double spread = K * sqrt((double)p->sd_ns * p->sd_ns + (double)q->sd_ns * q->sd_ns);
    if (fabs(dt - dlow * period) > 5000.0 + spread + PRIOR_RATE * fabs(dt)) {
        e->pending[0] = *q;
        e->pending_count = 1;
        return;
    }
    struct usbts_est_capture a = *p, b = *q;
    est_clear_epoch(e);
    a.mf = (int64_t)a.mfindex; /* a fresh count: the old one means nothing now */
    b.mf = a.mf + dlow;
    est_push_capture(e, &a);
    est_push_capture(e, &b);
    est_refit(e);
}

void est_add_capture(struct usbts_est *e, double t, double sd, double w, uint32_t mfindex)
{
    struct usbts_est_capture c = {0, llround(t), (int32_t)(sd < 1 ? 1 : sd > 1e9 ? 1e9 : sd), mfindex & MASK,
                                  (int32_t)(w > 1e9 ? 1e9 : w)};
    double m_pred, unc;
    if (!est_predict(e, t, &m_pred, &unc)) {
        /* nothing explains it: start over from here */
        est_clear_epoch(e);
        c.mf = (int64_t)c.mfindex;
        est_push_capture(e, &c);
        return;
    }
    c.mf = est_extend_low(c.mfindex, m_pred);
    double expect, tol;
    if (e->have_fit) {
        expect = est_fit_time(&e->fit, c.mf);
        tol = fmax(ACCEPT_FLOOR_NS, 4 * est_accept_bound(e, c.mf));
        /* After a stalled sampler the fit's bound only knows the data before
         * the gap: the host clock may have been slewed (NTP, up to the prior
         * rate) all along, and the counter did not jump.  A capture the
         * prior rate over the gap explains is the same counter; only one it
         * cannot explain is a discontinuity. */
        double gap = t - (double)e->last_capture_ns;
        if (gap > GAP_NS)
            tol = fmax(tol, ACCEPT_FLOOR_NS + PRIOR_RATE * gap);
    } else if (e->cap_count > 0) {
        const struct usbts_est_capture *l = est_cap_at(e, 0);
        expect = (double)l->t_ns + (double)(c.mf - l->mf) * e->last_period_ns;
        tol = ACCEPT_FLOOR_NS + fabs((double)(c.mf - l->mf)) * e->last_period_ns * PRIOR_RATE;
    } else {
        expect = t; /* only a single-read anchor: nothing to disagree with */
        tol = 1;
    }
    if (fabs(t - expect) > tol)
        est_hold_capture(e, &c);
    else
        est_accept_capture(e, &c);
}

/* The counter has stood still since `e->first`.  Counting on from the anchor
 * is right for a plain halt; but a reset followed by a halt freezes the
 * counter at a small value, and counting forward to it would put the frozen
 * microframe's start up to a wrap (2 s) in the future.  Such a count starts
 * a fresh one.  A microframe frozen after it began started between the
 * latest read that showed another value and the first that showed this
 * one.  Microframe 0 of a controller reset while halted has not begun: it
 * begins when the controller runs again, and each read that still shows 0
 * says that is no earlier than a microframe before it (est_note_unstarted;
 * issue #16 soak, seed 317718671: a halt noticed only as it ended, its
 * microframe 0 placed 10 ms before the restart). */
void est_enter_stopped(struct usbts_est *e, const struct usbts_read *r)
{
    uint32_t low = r->mfindex & MASK;
    int64_t frozen = e->anchor_mf + (int64_t)((low - (uint32_t)e->anchor_mf) & MASK);
    double d = (double)(frozen - e->anchor_mf);
    double start = e->have_fit ? est_fit_time(&e->fit, frozen) : e->anchor_ns + d * NOMINAL_NS;
    double tol = e->have_fit ? est_check_bound(e, frozen) : NOMINAL_NS * (1 + d * PRIOR_RATE);
    double half = 0;
    double seen = (double)e->first.after_ns;
    bool unstarted = false;
    if (start > seen + tol) {
        double from = seen - 2 * NOMINAL_NS;
        if (e->value_since_ns > 0 && (double)e->value_since_ns < from)
            from = (double)e->value_since_ns;
        frozen = (int64_t)low;
        start = 0.5 * (from + seen);
        half = 0.5 * (seen - from);
        unstarted = low == 0;
    }
    est_clear_epoch(e);
    e->stopped = true;
    e->frozen_mf = frozen;
    e->frozen_start_ns = start;
    e->frozen_half_ns = half;
    e->anchor_mf = frozen;
    e->anchor_ns = est_mid(r);
    if (unstarted)
        est_note_unstarted(e, r);
}

/* A read that still shows a reset-and-halted controller's 0: microframe 0
 * begins after a microframe before the read began (it would show 1
 * otherwise), and may begin any time from then on.  The next probe of a
 * stopped counter comes STOPPED_PROBE_NS later (later still if the sampler
 * wakes late) and sees it run: until then the model must hold a start
 * anywhere up to it (issue #16 soak, seed 105906209: the restart 0.4 ms
 * after the last read that showed 0).  It moves on with every read. */
void est_note_unstarted(struct usbts_est *e, const struct usbts_read *r)
{
    e->frozen_lo_ns = fmax(e->frozen_lo_ns, (double)r->before_ns - NOMINAL_NS);
    double hi = fmax((double)r->after_ns + 2.0 * STOPPED_PROBE_NS, e->frozen_lo_ns);
    e->frozen_start_ns = 0.5 * (e->frozen_lo_ns + hi);
    e->frozen_half_ns = 0.5 * (hi - e->frozen_lo_ns);
}

void est_leave_stopped(struct usbts_est *e, const struct usbts_read *r)
{
    int64_t m = e->frozen_mf + (int64_t)((r->mfindex - (uint32_t)e->frozen_mf) & MASK);
    est_clear_epoch(e);
    e->anchor_mf = m;
    e->anchor_ns = est_mid(r);
    /* any read that shows the counter moving again, a preempted one too:
     * its own width says how well it places the new count */
    e->anchor_half_ns = 0.5 * est_width(r);
    e->have_anchor = true;
}
