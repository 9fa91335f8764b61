/* SPDX-License-Identifier: MIT */
/*
 * est_plan.c — when to read next and for how long: the steady and fast
 * cadences, bursts aimed just before a predicted boundary with a learnt
 * wake-up lead, probes when the aim failed, and the slow poll of a halted
 * counter.
 */
#include "est_internal.h"

#include <math.h>

void usbts_est_plan(struct usbts_est *e, int64_t now, struct usbts_est_plan *p)
{
    p->max_reads = 4096;
    e->plan_target_ns = 0;
    e->plan_bisect = false;
    if (!e->have_anchor || e->long_probe) {
        p->start_ns = now;
        p->deadline_ns = now + PROBE_NS;
    } else if (e->stopped) {
        p->start_ns = now + STOPPED_PROBE_NS;
        p->deadline_ns = p->start_ns + 1000;
        p->max_reads = 2;
    } else {
        bool fast = e->pending_count > 0 || e->cap_count < FAST_CAPTURES || e->fast_left > 0;
        int64_t when = e->cap_count > 0 ? e->last_capture_ns + (fast ? FAST_CADENCE_NS : CADENCE_NS) : now;
        if (when < now)
            when = now;
        /* Aim at the first boundary after `when`, starting early by the
         * model's uncertainty there plus the learnt wake-up lead. */
        double m, unc, t_b = 0, u = INFINITY;
        bool bisect = false;
        int64_t target = 0;
        if (est_predict(e, (double)when, &m, &unc)) {
            target = (int64_t)floor(m) + 1;
            if (e->have_fit) {
                t_b = est_fit_time(&e->fit, target);
                /* what the captures say: a contradicting read widens what
                 * is published, and aiming wider on it changed which
                 * captures came (issue #16 soak, seed 4448060469) */
                u = est_accept_bound(e, target);
                /* The reads since the newest capture put the boundaries
                 * where only a jump of the count explains them (a reset by
                 * a fraction of a microframe), est_phase_jump: look there.
                 * A wide stretch is halved, burst by burst: read from its
                 * middle through its upper end, and a boundary there is
                 * caught while one below shows at the first read.  Bursts
                 * aimed by the old fit read only beside its boundaries, and
                 * under heavy preemption the probes that follow them
                 * seldom catch one: a reset that moved the boundaries by
                 * 28 us went unseen for 150 ms (issue #16 soak, seed
                 * 1055916658; 24 ms now). */
                /* (not when the counter has shown one value for longer than
                 * a halt takes to show: it stands still, no boundary is
                 * there to find, and the probe that follows a burst aimed
                 * by the fit sees it stand; halving, the short bursts never
                 * did, and ran at the watchdog's limit for a whole halt,
                 * soak seed 16777281) */
                bool standing = e->value_since_ns > 0 && (double)(e->latest_before_ns - e->value_since_ns) > STOP_NS;
                double lo, hi;
                if (!standing && est_phase_jump(e, u, (double)when, &lo, &hi)) {
                    double mid = 0.5 * (lo + hi), half = 0.5 * (hi - lo);
                    t_b += mid;
                    /* the first of the moved boundaries after `when` (a
                     * reset moves counts too: the offset may be many
                     * microframes either way) */
                    int64_t k = (int64_t)ceil(((double)when - t_b) / e->fit.b);
                    target += k;
                    t_b += (double)k * e->fit.b;
                    u = half;
                    bisect = half > BISECT_HALF_NS + 4 * e->bracket_ns;
                }
            } else if (e->cap_count > 0) {
                const struct usbts_est_capture *c = est_cap_at(e, 0);
                t_b = (double)c->t_ns + (double)(target - c->mf) * e->last_period_ns;
                u = K * c->sd_ns + est_latch_term(e) + fabs(t_b - (double)c->t_ns) * PRIOR_RATE;
            }
        }
        if (u > 50000 && !bisect) {
            /* too uncertain to aim: search */
            p->start_ns = when;
            p->deadline_ns = when + PROBE_NS;
        } else {
            /* Halving, the burst reads from the stretch's middle through
             * its upper end: a boundary there is caught, one below shows
             * at the first read, and either way the stretch halves. */
            double lead = (bisect ? 0 : u) + e->lead_ns + 2 * e->bracket_ns;
            if (t_b - lead < (double)now) { /* too close to catch: aim at the next one */
                target++;
                t_b += e->have_fit ? e->fit.b : NOMINAL_NS;
            }
            /* Dither the start over one read spacing: a burst aimed at the
             * predicted boundary would otherwise lock the read grid's phase to
             * the boundary, and the midpoint estimate would stop being
             * unbiased.  The spacing is the reads' as they are now: during a
             * run of slow reads, dithering over the usual (narrower) bracket
             * locked the phase, and the biased captures held the fit microseconds
             * off, agreeing with its own error (issue #16 soak).  Capped so
             * that one preempted read cannot make bursts long.  A fixed
             * sequence keeps the estimator deterministic. */
            if (!bisect) {
                double spacing = fmin(fmax(e->bracket_ns, e->spacing_ns), 50000.0);
                double dither = (double)((e->stats.bursts * 0x9E3779B97F4A7C15ull) >> 40) / (double)(1 << 24);
                lead += dither * (spacing + 50);
            }
            p->start_ns = (int64_t)(t_b - lead);
            if (p->start_ns < now)
                p->start_ns = now;
            p->deadline_ns = (int64_t)(t_b + u + 4 * e->bracket_ns + 2000);
            e->plan_target_ns = (int64_t)t_b;
            e->plan_target_low = (uint32_t)target & MASK;
            e->plan_target_unc = u;
            e->plan_bisect = bisect;
        }
    }
    e->plan_start_ns = p->start_ns;
}

void usbts_est_burst_end(struct usbts_est *e)
{
    if (!e->in_burst)
        return;
    e->in_burst = false;
    e->stats.bursts++;
    /* The read grid the next burst will most likely see: a run of slow
     * reads (a link in a power state, a busy bus) widens every read of a
     * burst, which the low-quantile bracket learns only after many. */
    if (e->burst_reads >= 2 && isfinite(e->burst_min_w_ns))
        e->spacing_ns = e->burst_min_w_ns;
    bool was_probe = e->long_probe;
    e->long_probe = false;
    if (e->burst_captured || e->burst_in_time) {
        /* caught it, or woke in time for it: the lead may shrink towards
         * what the model needs.  Not only on captures: under heavy
         * preemption they come seldom, and a lead that chance lateness had
         * grown stayed at 100 us for seconds, every burst preempted long
         * before its boundary (issue #16 soak, seed 2116027790). */
        double min_lead = MIN_LEAD_NS + 2 * e->bracket_ns;
        e->lead_ns = fmax(min_lead, e->lead_ns * 0.97);
    }
    if (e->burst_captured) {
        e->misses = 0;
    } else if (e->burst_missed) {
        /* Woken late again and again (a loaded machine, a lead that cannot
         * grow enough): a probe looks for any boundary, so the model is fed
         * whatever the wake-ups do. */
        if (++e->misses >= 3) {
            e->long_probe = true;
            e->misses = 0;
        }
    } else if (!e->stopped && !was_probe && !e->plan_bisect &&
               (e->burst_surprised || (e->plan_target_ns && e->burst_reads >= 2 && !e->burst_changed))) {
        /* the boundary we aimed at never came, or the counter was already
         * past it: look for a while (a halving burst narrowed its stretch
         * whatever it saw: the next one halves again) */
        e->long_probe = true;
    }
    e->plan_target_ns = 0;
    e->plan_bisect = false;
}
