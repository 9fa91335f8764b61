/* SPDX-License-Identifier: MIT */
/*
 * est_capture.c — from reads to captures.  Two back-to-back reads whose
 * counter differs by one microframe bracket that microframe's start; its
 * time is estimated between the two reads' midpoints.  Reads stretched by a
 * preemption are not used; a counter that stands still for 2.5 microframes
 * is halted.  Also the burst's own bookkeeping: a sampler that woke too late
 * for the boundary it aimed at, or a counter already past it.
 */
#include "est_internal.h"

#include <math.h>

/* Tracks the 25th percentile of bracket widths: the typical width of an
 * unpreempted read, unmoved by the occasional very long one. */
static void est_note_bracket(struct usbts_est *e, double w)
{
    if (e->bracket_ns <= 0) {
        e->bracket_ns = w;
        return;
    }
    double step = 0.02 * e->bracket_ns;
    e->bracket_ns += w < e->bracket_ns ? -3 * step : step;
    if (e->bracket_ns < 1)
        e->bracket_ns = 1;
}

static bool est_preempted(const struct usbts_est *e, double w)
{
    return w > 3.0 * e->bracket_ns + 1000.0;
}

/* A reset seen in single reads.  The held-captures path needs two clean
 * captures, and under heavy preemption (reads preempted 8% of the time for
 * 200 us and more: nearly all of the wall time inside long reads) a clean
 * pair around a boundary is rare: a reset then went unnoticed for 100 ms and
 * more (issue #16 soak).  One unstretched read already tells the count to a
 * microframe.  Two that the model cannot explain, taken at least 2.5
 * microframes apart, that show the counter running at the nominal rate
 * between them (a halted counter does not), are a discontinuity: the epoch
 * restarts from the newer as a single-read anchor, whose bound is honest
 * (a microframe and the bracket) until captures come. */
bool est_odd_read(struct usbts_est *e, const struct usbts_read *r, double w)
{
    /* A slow read (a busy bus: 15 us for a second) still places the count
     * within its width, which the tolerances below allow for; a run of them
     * must not hide a reset for as long as it lasts (issue #16 soak: 50 ms).
     * A read stretched past a quarter microframe (preempted) says too
     * little. */
    if (w > fmax(2 * e->bracket_ns + 2000, ODD_MAX_WIDTH_NS))
        return false;
    double m, unc;
    uint32_t low = r->mfindex & MASK;
    if (!est_predict(e, est_mid(r), &m, &unc) ||
        fabs((double)est_extend_low(low, m) - m) <= unc + 0.5 * w / NOMINAL_NS + 1) {
        e->odd_valid = false;
        return false;
    }
    if (e->odd_valid) {
        double dt = est_mid(r) - est_mid(&e->odd);
        double dm = (double)((low - e->odd.mfindex) & MASK);
        double tol = 2 + (0.5 * (w + est_width(&e->odd)) + PRIOR_RATE * dt) / NOMINAL_NS;
        if (dt >= STOP_NS && dt < WRAP / 4 * NOMINAL_NS && fabs(dm - dt / NOMINAL_NS) <= tol) {
            est_clear_epoch(e);
            e->anchor_mf = (int64_t)low;
            e->anchor_ns = est_mid(r);
            e->anchor_half_ns = 0.5 * w;
            e->have_anchor = true;
            return true;
        }
    }
    e->odd = *r;
    e->odd.mfindex = low;
    e->odd_valid = true;
    return false;
}

/* A read the fit cannot have produced.  Whatever preemption stretched it,
 * the register latched inside [before, after], so the microframe it shows
 * began before `after` and the next one after `before`.  A read showing the
 * counter before a boundary the fit placed, give or take its published
 * bound, before the read began (or past one placed after it ended) proves
 * the rate moved since the newest capture (a FLADJ step).  Under heavy
 * preemption or a run of slow reads the capture that would show it may take
 * 100 ms to come, and a bound kept at the old fit's let the error grow past
 * half a microframe (issue #16 soak: wrong frame numbers).  Until a capture
 * checks the fit again, the published bound grows at the prior rate from the
 * newest capture, as after a surprising capture (est_bound.c). */
static void est_check_read(struct usbts_est *e, const struct usbts_read *r, int64_t mf, double start)
{
    if (e->unconfirmed || e->contradicted)
        return;
    double u = est_check_bound(e, mf);
    if (start - u > (double)r->after_ns || start + e->fit.b + u < (double)r->before_ns)
        e->contradicted = true;
    /* and the reads since the newest capture together, each consistent on
     * its own: the interval they leave for the true boundaries
     * (est_note_phase) lies outside the fit's bound */
    if (e->phase_valid && (e->phase_hi_ns < -u || e->phase_lo_ns > u))
        e->contradicted = true;
}

/* Where a read puts the fitted boundaries.  The register latched inside
 * [before, after] and showed count c: microframe c began before `after` and
 * c + 1 after `before`.  So the true start of c lies between before - b and
 * after, whatever the fit says: an offset from the fit's start of c.  Every
 * read since the newest capture narrows the interval, preempted ones too
 * (they are only wider), and reads at scattered phases bracket the true
 * boundary as a capture would, without needing two clean reads around it.
 * That is what finds a boundary a reset moved by a fraction of a microframe
 * under heavy preemption: bursts aimed by the fit looked where it no longer
 * was, and a clean pair of reads around it came about once in 60 ms (issue
 * #16 soak, seed 69206338: a reset 1 microframe before a wrap noticed after
 * 117 ms).  The interval widens at the prior rate with time, since the rate
 * may have moved too; one that no read fits restarts from the newest read
 * (a torn value). */
/* The interval as of t: widened at the prior rate since the newest read. */
static void est_phase_as_of(const struct usbts_est *e, double t, double *lo, double *hi)
{
    double grow = PRIOR_RATE * fabs(t - e->phase_at_ns);
    *lo = e->phase_lo_ns - grow;
    *hi = e->phase_hi_ns + grow;
}

static void est_note_phase(struct usbts_est *e, const struct usbts_read *r, double start)
{
    double t = est_mid(r);
    double lo = (double)r->before_ns - e->fit.b - start, hi = (double)r->after_ns - start;
    if (e->phase_valid) {
        double plo, phi;
        est_phase_as_of(e, t, &plo, &phi);
        if (fmax(lo, plo) <= fmin(hi, phi)) {
            lo = fmax(lo, plo);
            hi = fmin(hi, phi);
        }
    }
    e->phase_valid = true;
    e->phase_lo_ns = lo;
    e->phase_hi_ns = hi;
    e->phase_at_ns = t;
}

/* Where to look when the reads since the newest capture put the fitted
 * boundaries further off than a slew of the host clock since then could
 * have moved them (beyond u, the fit's own bound, by SLEW_ALLOWANCE times the
 * time since): only a jump of the count explains that (a reset).  The part
 * of the interval (as of `t`) a slew cannot reach, as offsets from the fit.
 * Within that reach the fit still aims: aimed by the interval, bursts
 * following NTP ramps under heavy preemption grew long, were preempted
 * more, and captures came too seldom to follow the ramps (seeds 5248124247,
 * 317718913); and halving it, they came sooner but each restarted a line
 * whose bound did not know the ramp (seeds 1052771750, 11534614). */
bool est_phase_jump(const struct usbts_est *e, double u, double t, double *lo, double *hi)
{
    if (!e->phase_valid)
        return false;
    double l, h;
    est_phase_as_of(e, t, &l, &h);
    double reach = u + SLEW_ALLOWANCE * fabs(e->phase_at_ns - (double)e->last_capture_ns);
    if (h < -u && l < -reach) {
        *lo = l;
        *hi = fmin(h, -reach);
    } else if (l > u && h > reach) {
        *lo = fmax(l, reach);
        *hi = h;
    } else {
        return false;
    }
    return true;
}

void usbts_est_burst_begin(struct usbts_est *e)
{
    e->in_burst = true;
    e->burst_reads = 0;
    e->burst_captured = e->burst_missed = e->burst_changed = e->burst_surprised = e->burst_in_time = false;
    e->burst_min_w_ns = INFINITY;
}

bool usbts_est_feed(struct usbts_est *e, const struct usbts_read *r)
{
    e->stats.reads++;
    if (e->latest_before_ns > 0 && e->latest_low != (r->mfindex & MASK))
        e->value_since_ns = e->latest_before_ns;
    e->latest_low = r->mfindex & MASK;
    e->latest_before_ns = r->before_ns;
    e->heartbeat_ns = r->after_ns;
    double w = est_width(r);
    bool pre = e->bracket_ns > 0 && est_preempted(e, w);
    est_note_bracket(e, w);
    if (w < e->burst_min_w_ns)
        e->burst_min_w_ns = w;
    if (!pre)
        e->stats.bracket_ns = (int64_t)e->bracket_ns;
    bool first = e->burst_reads == 0;
    e->burst_reads++;

    if (!e->have_anchor) { /* the very first read */
        est_clear_epoch(e);
        e->anchor_mf = (int64_t)(r->mfindex & MASK);
        e->anchor_ns = est_mid(r);
        e->anchor_half_ns = 0.5 * w;
        e->have_anchor = true;
        e->first = e->prev = *r;
        return false;
    }
    if (e->stopped) {
        if ((r->mfindex & MASK) != ((uint32_t)e->frozen_mf & MASK)) {
            est_leave_stopped(e, r);
            e->first = e->prev = *r;
            return true;
        }
        if (e->frozen_lo_ns > 0)
            est_note_unstarted(e, r);
        e->prev = *r;
        return false;
    }
    if (e->have_fit) {
        /* the count this read shows and where the fit puts its start: what
         * the read is checked against, and what it says of the fit's phase */
        const struct usbts_est_fit *f = &e->fit;
        double m = (double)f->ref_mf + (est_mid(r) - (double)f->ref_t - f->a) / f->b;
        int64_t mf = est_extend_low(r->mfindex & MASK, m);
        double start = est_fit_time(f, mf);
        est_note_phase(e, r, start);
        est_check_read(e, r, mf, start);
    }
    if (e->cap_count > 0 && est_odd_read(e, r, w)) {
        e->first = e->prev = *r;
        return true;
    }
    if (first) {
        e->first = e->prev = *r;
        /* The counter already shows the microframe this burst aimed to see
         * begin.  If the host clock agrees that its start has passed, the
         * sampler woke too late: give up rather than spin a whole
         * microframe, and start earlier next time.  If the clock says the
         * boundary is still ahead, the counter is not where the model puts
         * it (a reset, a jump): that is news, not lateness, and only
         * reading on to capture a boundary can tell what happened.  Giving
         * up there would repeat forever, each burst seeing the same offset
         * (the lock-up of a reset just before a wrap, issue #16). */
        if (e->plan_target_ns && ((r->mfindex - e->plan_target_low) & MASK) < WRAP / 2) {
            if (e->plan_bisect)
                return true; /* the boundary lies in the lower half (est_note_phase noted it) */
            /* the latch lies in [before, after]: lateness explains the
             * counter when the read could have latched after the start */
            if ((double)r->after_ns >= (double)e->plan_target_ns - e->plan_target_unc) {
                /* (a preempted read is no evidence of a late wake-up: it
                 * does not count towards the misses that bring a probe) */
                e->burst_missed = !pre;
                /* One late wake-up is chance (a loaded machine wakes some
                 * sampler late now and then, by any amount): no lead fixes
                 * it, and a long lead costs, since the longer a burst reads
                 * before the boundary, the likelier a preemption swallows
                 * it, captures stop, and the lead (which only captures
                 * shrink) grows on to its maximum (issue #16 soak: 200 us
                 * leads, 9.7% of reads preempted, no capture for 165 ms
                 * across a FLADJ step).  Woken late twice in a row, the
                 * sampler is late by habit (timer slack): start earlier. */
                if (e->burst_missed && e->misses >= 1)
                    e->lead_ns = fmin(MAX_LEAD_NS, 2 * e->lead_ns + 5000);
                return true;
            }
            e->burst_surprised = true;
        }
        /* Woken in time for the aim (the first read came before the target
         * could have begun): the run of late wake-ups the lead answers is
         * broken.  Counted across bursts that were not late, two chance late
         * wake-ups far apart doubled the lead, again and again, to 190 us:
         * bursts then began more than a microframe early, were preempted
         * before the boundary, and a reset went uncaught for 75 ms (issue
         * #16 soak, seed 1055916658). */
        if (e->plan_target_ns && !pre) {
            e->misses = 0;
            e->burst_in_time = true;
        }
        if (e->cap_count == 0 && !pre) { /* keep a single-read anchor fresh */
            double m, unc;
            int64_t ext = 0;
            bool fits = est_predict(e, est_mid(r), &m, &unc);
            if (fits) {
                ext = est_extend_low(r->mfindex & MASK, m);
                fits = fabs((double)ext - m) <= unc + 1;
            }
            if (!fits) { /* no count explains it (a reset): a fresh one */
                est_clear_epoch(e);
                ext = (int64_t)(r->mfindex & MASK);
            }
            e->anchor_mf = ext;
            e->anchor_ns = est_mid(r);
            e->anchor_half_ns = 0.5 * w;
        }
        return false;
    }

    uint32_t d = (r->mfindex - e->prev.mfindex) & MASK;
    double gap = est_mid(r) - est_mid(&e->prev);
    /* Reads must be back to back: a thread descheduled between them leaves a
     * wide gap, an honest but poor capture; a clean one is a microframe away. */
    bool clean = !pre && !est_preempted(e, est_width(&e->prev)) && gap <= 4.0 * e->bracket_ns + 2000.0;
    if (d == 1 && clean) {
        double t0 = est_mid(&e->prev), t1 = est_mid(r);
        /* uniform between the two latch instants, plus latch jitter */
        double sd = sqrt(gap * gap / 12.0 + 0.01 * (w * w + est_width(&e->prev) * est_width(&e->prev)));
        est_add_capture(e, 0.5 * (t0 + t1), sd, 0.5 * (w + est_width(&e->prev)), r->mfindex);
        e->burst_captured = true;
        e->prev = *r;
        return true;
    }
    if (d != 0) { /* a boundary passed unclean (preempted read, or skipped) */
        e->burst_changed = true;
        e->prev = *r;
        return true;
    }
    /* Both latches lie inside their brackets, so the counter provably stood
     * still from first.after to r->before, whatever preemption stretched. */
    if ((double)(r->before_ns - e->first.after_ns) > STOP_NS && !e->burst_changed) {
        est_enter_stopped(e, r);
        e->prev = *r;
        return true;
    }
    e->prev = *r;
    return false;
}
