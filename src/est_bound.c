/* SPDX-License-Identifier: MIT */
/*
 * est_bound.c — what the error bound is made of (docs/BOUND.md): the fit's
 * own uncertainty, the recent prediction error beyond capture noise, the
 * register's unobservable latch position, the rate's uncertainty, and the
 * frame clock's wander, measured by how well past fits predicted captures
 * seconds later.
 */
#include "est_internal.h"

#include <math.h>

/* The register latches somewhere in its bracket; assuming the middle is
 * wrong by up to half a bracket, systematically, and nothing we read shows
 * it.  For the typical bracket (a quartile of the widths, not the widths a
 * capture had), with a margin over the half. */
double est_latch_term(const struct usbts_est *e)
{
    return LATCH_HALF * e->bracket_ns;
}

/* The same for the fitted time of count mf, from the widths its captures
 * actually had: every capture is off by its own reads' widths times one
 * unknown (1/2 - latch fraction), so the fit is off by its weighted sum of
 * widths (lat_a, lat_b) times that, at most half of it.  A run of slow
 * reads (a busy bus) makes wide captures whose shared offset no residual
 * shows: the bound widens with them (issue #16 soak). */
double est_fit_latch(const struct usbts_est *e, int64_t mf)
{
    return 0.5 * (fabs(e->fit.lat_a) + fabs(e->fit.lat_b * (double)(mf - e->fit.ref_mf)));
}

/* Squared model error beyond capture noise, from recent predictions. */
static double est_model_err2_now(const struct usbts_est *e)
{
    if (e->pred_n[e->win] < 3)
        return 0;
    double v = e->pred_ewma[e->win] - e->noise_ewma;
    return v > 0 ? v : 0;
}

/* With coarse captures the difference above is a small one between two
 * noisy records, and swings to zero at the next lucky capture while the
 * fit still lags a slewing clock (issue #16 soak: 0 to 2.6 us from one
 * capture to the next, the error 14 us steady).  The bound uses its recent
 * peak, fading by MODEL_ERR_FADE per capture. */
double est_model_err2(const struct usbts_est *e)
{
    return fmax(est_model_err2_now(e), e->model_err2_held);
}

void est_hold_model_err(struct usbts_est *e)
{
    e->model_err2_held = fmax(est_model_err2_now(e), MODEL_ERR_FADE * e->model_err2_held);
}

/* The same excess with each capture weighed by how well it can show one
 * (est_score_windows): with a mix of fine and slow-read captures the plain
 * difference is one of two records the slow reads' variance swamps, and it
 * was 0.3 us while the fine captures showed the fit 1.2 us off (issue #16
 * soak, seed 5248124353).  Only for readers, as the curvature: what the
 * estimator itself is held to and aims by stays with the plain record,
 * whose dynamics the soak has measured (weighed there too, the smaller
 * estimate it mostly gives let fewer captures in, and the fit lagged). */
static double est_model_err2_weighted(const struct usbts_est *e)
{
    if (e->pred_n[e->win] < 3 || !(e->excess_den[e->win] > 0))
        return 0;
    double v = e->excess_num[e->win] / e->excess_den[e->win];
    return v > 0 ? v : 0;
}

/* What a bound is for decides what it holds (docs/BOUND.md). */
enum est_use {
    EST_YARDSTICK, /* what the fitted data alone say: a new capture's surprise is judged by it */
    EST_ACCEPT,    /* + a coarse capture's unverified reach, an unconfirmed surprise's prior rate:
                      what captures are held to and bursts aim by */
    EST_CHECK,     /* + that surprise's residual, a contradicting read's prior rate: what reads and a
                      halted count are checked against */
    EST_PUBLISHED, /* + the data's curvature: what readers get */
};

/* The bound's terms for the current fit (model.h): at distance d ns from
 * the newest capture, b0 + d * (slope + d * wander). */
static void est_terms(const struct usbts_est *e, enum est_use use, double *b0, double *slope)
{
    const struct usbts_est_fit *f = &e->fit;
    /* A line through curved data is off where its data lie far from the
     * newest capture: a run of coarse captures leaves it leaning on fine
     * ones a second old while NTP ramps the host clock's rate (issue #16
     * soak: 5 us off, its bound 3 us).  A model error like the one
     * predictions show, so it adds the same way.  Only for readers: a step
     * of rate reads as curvature too, and aimed or judged by, it lengthened
     * bursts (more of them preempted, captures fewer) and slowed the
     * estimator's reactions. */
    double curv_a = use == EST_PUBLISHED ? f->curv * f->curv_a : 0;
    double me2 = est_model_err2(e);
    if (use == EST_PUBLISHED)
        me2 = fmax(me2, est_model_err2_weighted(e));
    *b0 = K * sqrt(f->var_a + me2 + curv_a * curv_a) + 0.5 * fabs(f->lat_a);
    *slope = K * sqrt(f->var_b) / f->b + 0.5 * fabs(f->lat_b) / f->b + WANDER_FLOOR;
    if (use == EST_PUBLISHED) {
        *slope += K * f->curv * f->curv_b / f->b;
        /* The wander measured from past fits' predictions is a curvature
         * the window lies on whether or not its own data show it: coarse
         * captures hid an NTP ramp in their noise, and the line lagged it
         * by several us beyond its bound (issue #16 soak, seed 1058013736:
         * 4 us reads latching at 96%, 1.13% of answers outside).  Only the
         * part the prediction record cannot show adds: a lag larger than
         * sqrt(PRED_ALPHA) of the captures' noise stands out in the model
         * error above.  Added whole, the lag of a long window under a
         * random walk of the rate (which the squared-distance wander
         * overstates there) doubled bounds that were right. */
        double q2 = e->wander * (CURV_UNIT_MF * f->b) * (CURV_UNIT_MF * f->b);
        double lag = q2 * f->curv_a, hidden = sqrt(PRED_ALPHA * e->noise_ewma);
        double share = lag > hidden ? hidden / lag : 1;
        *b0 += share * lag;
        *slope += share * q2 * f->curv_b / f->b;
    }
    if (use == EST_YARDSTICK)
        return;
    /* Not in the yardstick: a run of coarse captures after a rate step
     * (FLADJ) would each be judged against the previous one's residual, no
     * surprise ever seen, and the old line kept while the error grew past
     * half a microframe (issue #16 soak: wrong frame numbers). */
    *b0 += e->unverified_ns;
    /* A surprising capture also says how far off the fit already is there:
     * one that joins a long window barely moves it, and the old line runs
     * on from the surprise, its error as large as the surprise's residual
     * (issue #16 soak: a FLADJ step under heavy preemption, a capture 57 us
     * off accepted 100 ms after it, the bound growing from there alone).
     * Not what bursts aim by: aimed that wide under heavy preemption, they
     * were preempted more, the confirming captures came late, and the old
     * line ran on 170 us off for half a second (seed 814743927). */
    if (e->unconfirmed) {
        if (use >= EST_CHECK)
            *b0 += fabs(e->unconfirmed_resid);
        *slope = fmax(*slope, PRIOR_RATE);
    }
    if (use >= EST_CHECK && e->contradicted)
        *slope = fmax(*slope, PRIOR_RATE);
}

void est_bound_terms(const struct usbts_est *e, bool as_published, double *b0, double *slope)
{
    est_terms(e, as_published ? EST_PUBLISHED : EST_YARDSTICK, b0, slope);
}

static double est_bound_from(const struct usbts_est *e, double b0, double slope, int64_t mf)
{
    double d = fabs((double)(mf - e->fit.ref_mf) * e->fit.b);
    return b0 + d * (slope + fmin(d * e->wander, PRIOR_RATE));
}

static double est_bound_for(const struct usbts_est *e, enum est_use use, int64_t mf)
{
    double b0, slope;
    est_terms(e, use, &b0, &slope);
    return est_bound_from(e, b0, slope, mf);
}

double est_yardstick_bound(const struct usbts_est *e, int64_t mf)
{
    return est_bound_for(e, EST_YARDSTICK, mf);
}

/* A read contradicting the fit (est_check_read) widens only what is checked
 * and published: a capture made of those same reads (a wild sample) would
 * otherwise be let into the fit by the very contradiction it causes. */
double est_accept_bound(const struct usbts_est *e, int64_t mf)
{
    return est_bound_for(e, EST_ACCEPT, mf);
}

double est_check_bound(const struct usbts_est *e, int64_t mf)
{
    return est_bound_for(e, EST_CHECK, mf);
}

/* A fit's predictions seconds later show how fast the frame clock's rate
 * wanders: the error beyond what the fit's own bound allowed, over the
 * squared horizon, is the wander term that would have covered it.  The
 * worst seen, with a margin, stands until it fades. */
void est_learn_wander(struct usbts_est *e, const struct usbts_est_capture *c)
{
    if (e->wander_at_ns && c->t_ns > e->wander_at_ns)
        e->wander *= exp2(-(double)(c->t_ns - e->wander_at_ns) / WANDER_HALF_LIFE_NS);
    e->wander_at_ns = c->t_ns;
    for (int i = 0; i < e->snap_count; i++) {
        const struct usbts_est_snap *s = &e->snap[i];
        double h = (double)(c->t_ns - s->t_ns);
        if (h < SNAP_MIN_HORIZON_NS)
            continue;
        double err = fabs((double)c->t_ns - (s->mf_t + (double)(c->mf - s->mf) * s->period));
        double excess = err - (s->b0 + s->slope * h + K * c->sd_ns);
        if (excess > 0 && WANDER_MARGIN * excess / (h * h) > e->wander)
            e->wander = WANDER_MARGIN * excess / (h * h);
    }
    e->stats.wander_ppm_s = e->wander * 1e15;
}

void est_take_snapshot(struct usbts_est *e)
{
    if (!e->have_fit)
        return;
    const struct usbts_est_snap *last =
        e->snap_count ? &e->snap[(e->snap_head - 1 + USBTS_EST_NSNAP) % USBTS_EST_NSNAP] : NULL;
    if (last && e->fit.ref_t - last->t_ns < SNAP_NS)
        return;
    struct usbts_est_snap *s = &e->snap[e->snap_head];
    s->t_ns = e->fit.ref_t;
    s->mf = e->fit.ref_mf;
    s->mf_t = (double)e->fit.ref_t + e->fit.a;
    s->period = e->fit.b;
    est_bound_terms(e, false, &s->b0, &s->slope);
    e->snap_head = (e->snap_head + 1) % USBTS_EST_NSNAP;
    if (e->snap_count < USBTS_EST_NSNAP)
        e->snap_count++;
}
