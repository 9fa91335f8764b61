/* SPDX-License-Identifier: MIT */
/*
 * estimator.c — from bracketed MFINDEX reads to a frame-clock model.
 *
 * 1. Capture: two back-to-back reads whose counter differs by one microframe
 *    bracket that microframe's start; its time is estimated between the two
 *    reads' midpoints.  Reads stretched by a preemption are not used.
 * 2. Extension: the fitted model (or, before one exists, the last anchor and
 *    the nominal rate) predicts the 64-bit count at a capture's time; the
 *    count congruent to the 14-bit MFINDEX nearest that prediction is taken.
 *    Long gaps are fine as long as the prediction is good to well under half
 *    a wrap, which even the ±1000 ppm prior gives for minutes.
 * 3. Fit: weighted least squares of host time against count, over one of
 *    several windows (4 .. 512 captures).  Each new capture is first predicted
 *    by every window; the window whose recent predictions were best is used,
 *    so a rate step (NTP slewing the host clock) moves the fit to a short
 *    window within a few captures, and a steady clock gets the longest one.
 * 4. Discontinuity: a capture far from the prediction is held; two such that
 *    agree with each other start a new epoch, a lone one is dropped.  A
 *    counter that does not move for 2.5 microframes starts a STOPPED epoch,
 *    and its moving again another.
 * 5. Bound: three standard deviations of (fit uncertainty + the recent model
 *    prediction error beyond capture noise), plus half a typical bracket for
 *    the register's unobservable latch position inside its bracket, growing
 *    with distance by the rate's uncertainty.
 */
#include "estimator.h"

#include <math.h>
#include <string.h>

#define NOMINAL_NS 125000.0
#define WRAP 16384
#define MASK 0x3FFFu
#define PRIOR_RATE 1.1e-3          /* a priori rate uncertainty: ±1000 ppm and margin */
#define CADENCE_NS 20000000        /* steady state: a capture every 20 ms */
#define FAST_CADENCE_NS 2000000    /* converging, or confirming a suspect capture */
#define FAST_CAPTURES 25
#define SURPRISE_CAPTURES 8        /* fast captures after one the fit did not expect */
#define STOP_NS 312500.0           /* 2.5 microframes without a change: halted */
#define PROBE_NS 450000            /* a search burst: more than three microframes */
#define STOPPED_PROBE_NS 2000000
#define ACCEPT_FLOOR_NS 20000.0    /* a rate step of 500 ppm needs 40 ms to reach this */
#define K 3.0                      /* standard deviations in the bound */
#define PRED_ALPHA 0.1
#define WINDOW_SLACK 1.5          /* a longer window may score this much worse and still win */
#define WANDER_FLOOR 0.02e-6       /* rate uncertainty floor: slow oscillator wander */
#define MIN_LEAD_NS 1000.0
#define MAX_LEAD_NS 200000.0
/* The SOF reaches the wire some way from the MFINDEX edge the host reads
 * (controller pipeline, SYNC field, hub repeaters): invisible to every read,
 * so the published bound covers it up to this much, like the latch position
 * (the simulator's sof_ns, USBTS_SIM_SOF_COVERED_NS, must not exceed it). */
#define SOF_ALLOWANCE_NS 250.0

static const int32_t win_size[USBTS_EST_NWIN] = {4, 8, 16, 32, 64, 128, 256, 512};

static double mid(const struct usbts_read *r)
{
    return 0.5 * ((double)r->before_ns + (double)r->after_ns);
}

static double width(const struct usbts_read *r)
{
    return (double)(r->after_ns - r->before_ns);
}

static const struct usbts_est_capture *cap_at(const struct usbts_est *e, int i) /* 0 = newest */
{
    return &e->cap[(e->cap_head - 1 - i + 2 * USBTS_EST_MAX_WINDOW) % USBTS_EST_MAX_WINDOW];
}

static int64_t extend(uint32_t low, double m_pred)
{
    return (int64_t)low + (int64_t)WRAP * (int64_t)llround((m_pred - (double)low) / WRAP);
}

/* ---- bracket statistics ---------------------------------------------------- */

/* Tracks the 25th percentile of bracket widths: the typical width of an
 * unpreempted read, unmoved by the occasional very long one. */
static void note_bracket(struct usbts_est *e, double w)
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

static bool preempted(const struct usbts_est *e, double w)
{
    return w > 3.0 * e->bracket_ns + 1000.0;
}

static double latch_term(const struct usbts_est *e)
{
    /* The register latches somewhere in its bracket; assuming the middle can
     * be wrong by half a bracket, systematically, and nothing we read shows it. */
    return 0.55 * e->bracket_ns;
}

/* ---- the fit ------------------------------------------------------------------ */

struct sums {
    double S, Sx, Sy, Sxx, Sxy;
};

static void add_sums(struct sums *s, double x, double y, double w)
{
    s->S += w;
    s->Sx += w * x;
    s->Sy += w * y;
    s->Sxx += w * x * x;
    s->Sxy += w * x * y;
}

/* Fit from sums over the newest n captures; chi-square from a second pass. */
static bool solve(const struct usbts_est *e, const struct sums *s, int n, int64_t ref_mf, int64_t ref_t,
                  struct usbts_est_fit *f)
{
    double D = s->S * s->Sxx - s->Sx * s->Sx;
    if (n < 2 || D <= 0)
        return false;
    f->n = n;
    f->ref_mf = ref_mf;
    f->ref_t = ref_t;
    f->b = (s->S * s->Sxy - s->Sx * s->Sy) / D;
    f->a = (s->Sy - f->b * s->Sx) / s->S;
    double scale = 1;
    if (e && n > 4) {
        double chi2 = 0;
        for (int i = 0; i < n; i++) {
            const struct usbts_est_capture *c = cap_at(e, i);
            double x = (double)(c->mf - ref_mf), y = (double)(c->t_ns - ref_t);
            double r = y - f->a - f->b * x;
            chi2 += r * r / ((double)c->sd_ns * c->sd_ns);
        }
        if (chi2 / (n - 2) > 1)
            scale = chi2 / (n - 2);
    }
    f->var_a = scale * s->Sxx / D;
    f->var_b = scale * s->S / D;
    f->cov_ab = -scale * s->Sx / D;
    return f->b > 0;
}

static double weight(const struct usbts_est_capture *c)
{
    double sd = c->sd_ns < 1 ? 1 : c->sd_ns;
    return 1.0 / (sd * sd);
}

/* Fits every window at once, newest to oldest; fits[j] valid when ok[j].
 * A window longer than the history is fitted once, as the whole history. */
static void fit_all(const struct usbts_est *e, struct usbts_est_fit fits[USBTS_EST_NWIN], bool ok[USBTS_EST_NWIN])
{
    struct sums s = {0};
    int64_t ref_mf = cap_at(e, 0)->mf, ref_t = cap_at(e, 0)->t_ns;
    for (int j = 0; j < USBTS_EST_NWIN; j++)
        ok[j] = false;
    for (int i = 0; i < e->cap_count; i++) {
        const struct usbts_est_capture *c = cap_at(e, i);
        add_sums(&s, (double)(c->mf - ref_mf), (double)(c->t_ns - ref_t), weight(c));
        int n = i + 1;
        for (int j = 0; j < USBTS_EST_NWIN; j++) {
            bool whole = n == e->cap_count && win_size[j] > n && (j == 0 || win_size[j - 1] < n);
            if (win_size[j] == n || whole)
                ok[j] = solve(NULL, &s, n, ref_mf, ref_t, &fits[j]);
        }
    }
}

static double fit_time(const struct usbts_est_fit *f, int64_t mf)
{
    return (double)f->ref_t + f->a + f->b * (double)(mf - f->ref_mf);
}

/* Squared model error beyond capture noise, from recent predictions. */
static double model_err2(const struct usbts_est *e)
{
    if (e->pred_n[e->win] < 3)
        return 0;
    double v = e->pred_ewma[e->win] - e->noise_ewma;
    return v > 0 ? v : 0;
}

/* The error bound of the fitted time of microframe count mf. */
static double fit_bound(const struct usbts_est *e, int64_t mf)
{
    const struct usbts_est_fit *f = &e->fit;
    double x = (double)(mf - f->ref_mf);
    double rate_sd = sqrt(f->var_b) / f->b + WANDER_FLOOR;
    return K * sqrt(f->var_a + model_err2(e)) + latch_term(e) + K * rate_sd * fabs(x * f->b);
}

static void refit(struct usbts_est *e)
{
    struct sums s = {0};
    int n = e->cap_count < win_size[e->win] ? e->cap_count : win_size[e->win];
    int64_t ref_mf = cap_at(e, 0)->mf, ref_t = cap_at(e, 0)->t_ns;
    for (int i = 0; i < n; i++) {
        const struct usbts_est_capture *c = cap_at(e, i);
        add_sums(&s, (double)(c->mf - ref_mf), (double)(c->t_ns - ref_t), weight(c));
    }
    e->have_fit = solve(e, &s, n, ref_mf, ref_t, &e->fit);
    if (e->have_fit) {
        /* Kept for a stopped counter's model, whose bound grows at the prior
         * rate: only a rate known well inside that may stand in for nominal
         * (a young fit's slope can be off by percent). */
        double rate_sd = sqrt(e->fit.var_b) / e->fit.b;
        if (K * rate_sd < 0.1 * PRIOR_RATE && fabs(e->fit.b / NOMINAL_NS - 1) < PRIOR_RATE)
            e->last_period_ns = e->fit.b;
        e->stats.rate_ppm = (NOMINAL_NS / e->fit.b - 1.0) * 1e6;
        e->stats.window = n;
    }
}

/* ---- prediction and epochs ------------------------------------------------------ */

/* The count expected at host time t and how uncertain it is, in microframes. */
static bool predict(const struct usbts_est *e, double t, double *m, double *unc)
{
    if (e->have_fit) {
        const struct usbts_est_fit *f = &e->fit;
        *m = (double)f->ref_mf + (t - (double)f->ref_t - f->a) / f->b;
        double dt = fabs(t - (double)f->ref_t);
        *unc = (K * sqrt(f->var_a + model_err2(e)) + dt * PRIOR_RATE) / f->b + 2;
        return *unc < WRAP / 4;
    }
    if (e->have_anchor) {
        double dt = t - e->anchor_ns;
        *m = (double)e->anchor_mf + dt / NOMINAL_NS;
        *unc = fabs(dt) * PRIOR_RATE / NOMINAL_NS + 2;
        return *unc < WRAP / 4;
    }
    return false;
}

static void clear_epoch(struct usbts_est *e)
{
    e->epoch++;
    if (e->epoch > 1)
        e->stats.discontinuities++;
    e->cap_head = e->cap_count = 0;
    e->pending_count = 0;
    e->have_fit = false;
    e->stopped = false;
    e->long_probe = false;
    e->win = 0;
    memset(e->pred_ewma, 0, sizeof e->pred_ewma);
    memset(e->pred_n, 0, sizeof e->pred_n);
    e->noise_ewma = 0;
}

static void push_capture(struct usbts_est *e, const struct usbts_est_capture *c)
{
    e->cap[e->cap_head] = *c;
    e->cap_head = (e->cap_head + 1) % USBTS_EST_MAX_WINDOW;
    if (e->cap_count < USBTS_EST_MAX_WINDOW)
        e->cap_count++;
    e->anchor_mf = c->mf;
    e->anchor_ns = (double)c->t_ns;
    e->have_anchor = true;
    e->last_capture_ns = c->t_ns;
    e->stats.captures++;
    double v = (double)c->sd_ns * c->sd_ns;
    e->noise_ewma = e->cap_count == 1 ? v : e->noise_ewma + PRED_ALPHA * (v - e->noise_ewma);
}

/* Before a capture joins the fit, every window predicts it; the record of
 * those predictions picks the window. */
static void score_windows(struct usbts_est *e, const struct usbts_est_capture *c)
{
    if (e->cap_count < 2)
        return;
    struct usbts_est_fit fits[USBTS_EST_NWIN];
    bool ok[USBTS_EST_NWIN] = {0};
    fit_all(e, fits, ok);
    int last_ok = -1;
    for (int j = 0; j < USBTS_EST_NWIN; j++) {
        if (!ok[j])
            continue;
        double err = (double)c->t_ns - fit_time(&fits[j], c->mf);
        double e2 = err * err;
        e->pred_ewma[j] = e->pred_n[j] == 0 ? e2 : e->pred_ewma[j] + PRED_ALPHA * (e2 - e->pred_ewma[j]);
        e->pred_n[j]++;
        last_ok = j;
    }
    /* Windows longer than the history share the longest fit's record. */
    for (int j = last_ok + 1; j < USBTS_EST_NWIN && last_ok >= 0; j++) {
        e->pred_ewma[j] = e->pred_ewma[last_ok];
        e->pred_n[j] = e->pred_n[last_ok];
    }
    int best = e->win;
    for (int j = 0; j < USBTS_EST_NWIN; j++)
        if (e->pred_n[j] >= 3 && (e->pred_n[best] < 3 || e->pred_ewma[j] <= e->pred_ewma[best]))
            best = j;
    /* Capture noise is common to every window's record, so their scores
     * differ by little more than noise while the frame clock keeps its
     * rate: then the longest window, whose fit averages the most captures,
     * is the better one even when its score is not quite the lowest.  A
     * rate change makes the long windows' scores grow far past the noise. */
    for (int j = USBTS_EST_NWIN - 1; j > best; j--)
        if (e->pred_n[j] >= 3 && e->pred_ewma[j] <= WINDOW_SLACK * e->pred_ewma[best]) {
            best = j;
            break;
        }
    e->win = best;
}

static void accept_capture(struct usbts_est *e, const struct usbts_est_capture *c)
{
    /* A capture well outside what the fit expected means the rate has just
     * changed: look again soon, so the windows are re-scored within
     * milliseconds rather than over several steady-state periods. */
    if (e->fast_left > 0)
        e->fast_left--;
    if (e->have_fit && fabs((double)c->t_ns - fit_time(&e->fit, c->mf)) > fit_bound(e, c->mf) + K * c->sd_ns)
        e->fast_left = SURPRISE_CAPTURES;
    score_windows(e, c);
    push_capture(e, c);
    refit(e);
    e->pending_count = 0;
}

/* A capture the model cannot explain: hold it; two that agree with each other
 * are a discontinuity. */
static void hold_capture(struct usbts_est *e, const struct usbts_est_capture *c)
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
    if (fabs(dt - dlow * period) > 5000.0 + PRIOR_RATE * fabs(dt)) {
        e->pending[0] = *q;
        e->pending_count = 1;
        return;
    }
    struct usbts_est_capture a = *p, b = *q;
    clear_epoch(e);
    a.mf = (int64_t)a.mfindex; /* a fresh count: the old one means nothing now */
    b.mf = a.mf + dlow;
    push_capture(e, &a);
    push_capture(e, &b);
    refit(e);
}

static void add_capture(struct usbts_est *e, double t, double sd, uint32_t mfindex)
{
    struct usbts_est_capture c = {0, llround(t), (int32_t)(sd < 1 ? 1 : sd > 1e9 ? 1e9 : sd), mfindex & MASK};
    double m_pred, unc;
    if (!predict(e, t, &m_pred, &unc)) {
        /* nothing explains it: start over from here */
        clear_epoch(e);
        c.mf = (int64_t)c.mfindex;
        push_capture(e, &c);
        return;
    }
    c.mf = extend(c.mfindex, m_pred);
    double expect, tol;
    if (e->have_fit) {
        expect = fit_time(&e->fit, c.mf);
        tol = fmax(ACCEPT_FLOOR_NS, 4 * fit_bound(e, c.mf));
    } else if (e->cap_count > 0) {
        const struct usbts_est_capture *l = cap_at(e, 0);
        expect = (double)l->t_ns + (double)(c.mf - l->mf) * NOMINAL_NS;
        tol = ACCEPT_FLOOR_NS + fabs((double)(c.mf - l->mf)) * NOMINAL_NS * PRIOR_RATE;
    } else {
        expect = t; /* only a single-read anchor: nothing to disagree with */
        tol = 1;
    }
    if (fabs(t - expect) > tol)
        hold_capture(e, &c);
    else
        accept_capture(e, &c);
}

/* The counter has stood still since `e->first`.  Counting on from the anchor
 * is right for a plain halt; but a reset followed by a halt freezes the
 * counter at a small value, and counting forward to it would put the frozen
 * microframe's start up to a wrap (2 s) in the future.  A microframe cannot
 * start after it was seen, so such a count starts a fresh one, whose start
 * lies between the latest read that showed another value and the first that
 * showed this one. */
static void enter_stopped(struct usbts_est *e, const struct usbts_read *r)
{
    uint32_t low = r->mfindex & MASK;
    int64_t frozen = e->anchor_mf + (int64_t)((low - (uint32_t)e->anchor_mf) & MASK);
    double d = (double)(frozen - e->anchor_mf);
    double start = e->have_fit ? fit_time(&e->fit, frozen) : e->anchor_ns + d * NOMINAL_NS;
    double tol = e->have_fit ? fit_bound(e, frozen) : NOMINAL_NS * (1 + d * PRIOR_RATE);
    double half = 0;
    double seen = (double)e->first.after_ns;
    if (start > seen + tol) {
        double from = seen - 2 * NOMINAL_NS;
        if (e->value_since_ns > 0 && (double)e->value_since_ns < from)
            from = (double)e->value_since_ns;
        frozen = (int64_t)low;
        start = 0.5 * (from + seen);
        half = 0.5 * (seen - from);
    }
    clear_epoch(e);
    e->stopped = true;
    e->frozen_mf = frozen;
    e->frozen_start_ns = start;
    e->frozen_half_ns = half;
    e->anchor_mf = frozen;
    e->anchor_ns = mid(r);
}

static void leave_stopped(struct usbts_est *e, const struct usbts_read *r)
{
    int64_t m = e->frozen_mf + (int64_t)((r->mfindex - (uint32_t)e->frozen_mf) & MASK);
    clear_epoch(e);
    e->anchor_mf = m;
    e->anchor_ns = mid(r);
    e->have_anchor = true;
}

/* ---- the public interface --------------------------------------------------------- */

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

void usbts_est_plan(struct usbts_est *e, int64_t now, struct usbts_est_plan *p)
{
    p->max_reads = 4096;
    e->plan_target_ns = 0;
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
        int64_t target = 0;
        if (predict(e, (double)when, &m, &unc)) {
            target = (int64_t)floor(m) + 1;
            if (e->have_fit) {
                t_b = fit_time(&e->fit, target);
                u = fit_bound(e, target);
            } else if (e->cap_count > 0) {
                const struct usbts_est_capture *c = cap_at(e, 0);
                t_b = (double)c->t_ns + (double)(target - c->mf) * NOMINAL_NS;
                u = K * c->sd_ns + latch_term(e) + fabs(t_b - (double)c->t_ns) * PRIOR_RATE;
            }
        }
        if (u > 50000) {
            /* too uncertain to aim: search */
            p->start_ns = when;
            p->deadline_ns = when + PROBE_NS;
        } else {
            double lead = u + e->lead_ns + 2 * e->bracket_ns;
            if (t_b - lead < (double)now) { /* too close to catch: aim at the next one */
                target++;
                t_b += e->have_fit ? e->fit.b : NOMINAL_NS;
            }
            /* Dither the start over one read spacing: a burst aimed at the
             * predicted boundary would otherwise lock the read grid's phase to
             * the boundary, and the midpoint estimate would stop being
             * unbiased.  A fixed sequence keeps the estimator deterministic. */
            double dither = (double)((e->stats.bursts * 0x9E3779B97F4A7C15ull) >> 40) / (double)(1 << 24);
            lead += dither * (e->bracket_ns + 50);
            p->start_ns = (int64_t)(t_b - lead);
            if (p->start_ns < now)
                p->start_ns = now;
            p->deadline_ns = (int64_t)(t_b + u + 4 * e->bracket_ns + 2000);
            e->plan_target_ns = (int64_t)t_b;
            e->plan_target_low = (uint32_t)target & MASK;
            e->plan_target_unc = u;
        }
    }
    e->plan_start_ns = p->start_ns;
}

void usbts_est_burst_begin(struct usbts_est *e)
{
    e->in_burst = true;
    e->burst_reads = 0;
    e->burst_captured = e->burst_missed = e->burst_changed = e->burst_surprised = false;
}

bool usbts_est_feed(struct usbts_est *e, const struct usbts_read *r)
{
    e->stats.reads++;
    if (e->latest_before_ns > 0 && e->latest_low != (r->mfindex & MASK))
        e->value_since_ns = e->latest_before_ns;
    e->latest_low = r->mfindex & MASK;
    e->latest_before_ns = r->before_ns;
    e->heartbeat_ns = r->after_ns;
    double w = width(r);
    bool pre = e->bracket_ns > 0 && preempted(e, w);
    note_bracket(e, w);
    if (!pre)
        e->stats.bracket_ns = (int64_t)e->bracket_ns;
    bool first = e->burst_reads == 0;
    e->burst_reads++;

    if (!e->have_anchor) { /* the very first read */
        clear_epoch(e);
        e->anchor_mf = (int64_t)(r->mfindex & MASK);
        e->anchor_ns = mid(r);
        e->have_anchor = true;
        e->first = e->prev = *r;
        return false;
    }
    if (e->stopped) {
        if ((r->mfindex & MASK) != ((uint32_t)e->frozen_mf & MASK)) {
            leave_stopped(e, r);
            e->first = e->prev = *r;
            return true;
        }
        e->prev = *r;
        return false;
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
            /* the latch lies in [before, after]: lateness explains the
             * counter when the read could have latched after the start */
            if ((double)r->after_ns >= (double)e->plan_target_ns - e->plan_target_unc) {
                /* (a preempted read is no evidence of a late wake-up: it
                 * does not count towards the misses that bring a probe) */
                e->burst_missed = !pre;
                e->lead_ns = fmin(MAX_LEAD_NS, 2 * e->lead_ns + 5000);
                return true;
            }
            e->burst_surprised = true;
        }
        if (e->cap_count == 0 && !pre) { /* keep a single-read anchor fresh */
            double m, unc;
            int64_t ext = 0;
            bool fits = predict(e, mid(r), &m, &unc);
            if (fits) {
                ext = extend(r->mfindex & MASK, m);
                fits = fabs((double)ext - m) <= unc + 1;
            }
            if (!fits) { /* no count explains it (a reset): a fresh one */
                clear_epoch(e);
                ext = (int64_t)(r->mfindex & MASK);
            }
            e->anchor_mf = ext;
            e->anchor_ns = mid(r);
        }
        return false;
    }

    uint32_t d = (r->mfindex - e->prev.mfindex) & MASK;
    double gap = mid(r) - mid(&e->prev);
    /* Reads must be back to back: a thread descheduled between them leaves a
     * wide gap, an honest but poor capture; a clean one is a microframe away. */
    bool clean = !pre && !preempted(e, width(&e->prev)) && gap <= 4.0 * e->bracket_ns + 2000.0;
    if (d == 1 && clean) {
        double t0 = mid(&e->prev), t1 = mid(r);
        /* uniform between the two latch instants, plus latch jitter */
        double sd = sqrt(gap * gap / 12.0 + 0.01 * (w * w + width(&e->prev) * width(&e->prev)));
        add_capture(e, 0.5 * (t0 + t1), sd, r->mfindex);
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
        enter_stopped(e, r);
        e->prev = *r;
        return true;
    }
    e->prev = *r;
    return false;
}

void usbts_est_burst_end(struct usbts_est *e)
{
    if (!e->in_burst)
        return;
    e->in_burst = false;
    e->stats.bursts++;
    bool was_probe = e->long_probe;
    e->long_probe = false;
    if (e->burst_captured) {
        /* caught it: the lead may shrink towards what the model needs */
        double min_lead = MIN_LEAD_NS + 2 * e->bracket_ns;
        e->lead_ns = fmax(min_lead, e->lead_ns * 0.97);
        e->misses = 0;
    } else if (e->burst_missed) {
        /* Woken late again and again (a loaded machine, a lead that cannot
         * grow enough): a probe looks for any boundary, so the model is fed
         * whatever the wake-ups do. */
        if (++e->misses >= 3) {
            e->long_probe = true;
            e->misses = 0;
        }
    } else if (!e->stopped && !was_probe && (e->burst_surprised || (e->plan_target_ns && e->burst_reads >= 2 &&
                                                                     !e->burst_changed))) {
        /* the boundary we aimed at never came, or the counter was already
         * past it: look for a while */
        e->long_probe = true;
    }
    e->plan_target_ns = 0;
}

bool usbts_est_model(const struct usbts_est *e, struct usbts_model *out)
{
    if (e->epoch == 0 || !e->have_anchor)
        return false;
    memset(out, 0, sizeof *out);
    out->generation = e->epoch;
    out->heartbeat_ns = e->heartbeat_ns;
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
        bound0 = K * sqrt(e->fit.var_a + model_err2(e)) + latch_term(e) + SOF_ALLOWANCE_NS;
        slope = K * sqrt(e->fit.var_b) / e->fit.b + WANDER_FLOOR;
        out->flags = USBTS_MODEL_CAPTURED;
    } else if (e->cap_count > 0) {
        const struct usbts_est_capture *c = cap_at(e, 0);
        out->ref_mf = c->mf;
        out->ref_ns = c->t_ns;
        bound0 = K * c->sd_ns + latch_term(e) + SOF_ALLOWANCE_NS;
        slope = PRIOR_RATE;
        out->flags = USBTS_MODEL_CAPTURED;
    } else {
        /* one read: the microframe began somewhere in the 125 µs before the
         * latch, and the latch is somewhere in the bracket */
        out->ref_mf = e->anchor_mf;
        out->ref_ns = llround(e->anchor_ns - NOMINAL_NS / 2);
        bound0 = NOMINAL_NS / 2 + e->bracket_ns + 1000;
        slope = PRIOR_RATE;
    }
    out->period_fp = usbts_period_to_fp(period);
    out->rate_fp = usbts_period_to_rate_fp(period);
    out->bound0_ns = (int64_t)ceil(bound0) + 1;
    out->bound_slope_fp = usbts_slope_to_fp(slope);
    return true;
}

bool usbts_est_extend(const struct usbts_est *e, const struct usbts_read *r, int64_t *mf)
{
    if (e->stopped && (r->mfindex & MASK) == ((uint32_t)e->frozen_mf & MASK)) {
        *mf = e->frozen_mf;
        return true;
    }
    double m, unc;
    if (!predict(e, mid(r), &m, &unc))
        return false;
    *mf = extend(r->mfindex & MASK, m);
    return true;
}

void usbts_est_get_stats(const struct usbts_est *e, struct usbts_est_stats *out)
{
    *out = e->stats;
}
