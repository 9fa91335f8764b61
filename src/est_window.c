/* SPDX-License-Identifier: MIT */
/*
 * est_window.c — which window the fit uses.  Before a capture joins the fit,
 * every window (4 .. 512 captures) predicts it; the record of those
 * predictions picks the window, so a rate step moves the fit to a short
 * window within a few captures, and a steady clock gets the longest one.
 */
#include "est_internal.h"

#include <math.h>

/* A record's running mean over about 2 / PRED_ALPHA captures; its first
 * value starts it. */
static void est_ewma(double *mean, double x, bool first)
{
    *mean = first ? x : *mean + PRED_ALPHA * (x - *mean);
}

/* Before a capture joins the fit, every window predicts it; the record of
 * those predictions picks the window. */
void est_score_windows(struct usbts_est *e, const struct usbts_est_capture *c)
{
    /* A coarse capture cannot tell the windows apart: its own noise swamps
     * the difference between their predictions, and scoring it would
     * level their records, so that the longest window wins by the slack
     * rule below even when it lags a wandering clock by more than the
     * fine captures would have shown (issue #16 soak: a second of 13 us
     * reads, the 512-capture fit 1.1 us off and its bound 0.8 us). */
    if (e->cap_count < 2 || est_coarse(e, c))
        return;
    struct usbts_est_fit fits[USBTS_EST_NWIN];
    bool ok[USBTS_EST_NWIN] = {0};
    est_fit_all(e, fits, ok);
    int last_ok = -1;
    for (int j = 0; j < USBTS_EST_NWIN; j++) {
        if (!ok[j])
            continue;
        double err = (double)c->t_ns - est_fit_time(&fits[j], c->mf);
        double e2 = err * err;
        bool first = e->pred_n[j] == 0;
        est_ewma(&e->pred_ewma[j], e2, first);
        /* The excess beyond the capture's own variance, each capture
         * weighed by how well it can show one (the inverse variance of a
         * squared error, 1/sd^4; why: est_model_err2_weighted).  The
         * variance is floored at a quarter of a bracket squared: a capture
         * whose reads came unusually close has a small spread on paper but
         * latch jitter like any other, and weighed by its spread alone its
         * excess read as a model error (the bound doubled on reads that
         * latch anywhere in their bracket, tests/test_scenarios).  Equal
         * captures give the plain mean. */
        double v = (double)c->sd_ns * c->sd_ns, vf = v + 0.25 * e->bracket_ns * e->bracket_ns, w = 1.0 / (vf * vf);
        est_ewma(&e->excess_num[j], w * (e2 - v), first);
        est_ewma(&e->excess_den[j], w, first);
        e->pred_n[j]++;
        last_ok = j;
    }
    /* Windows longer than the history share the longest fit's record. */
    for (int j = last_ok + 1; j < USBTS_EST_NWIN && last_ok >= 0; j++) {
        e->pred_ewma[j] = e->pred_ewma[last_ok];
        e->excess_num[j] = e->excess_num[last_ok];
        e->excess_den[j] = e->excess_den[last_ok];
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

void est_refit(struct usbts_est *e)
{
    struct est_sums s = {0};
    int history = est_history(e);
    int n = history < EST_WIN_SIZE(e->win) ? history : EST_WIN_SIZE(e->win);
    int64_t ref_mf = est_cap_at(e, 0)->mf, ref_t = est_cap_at(e, 0)->t_ns;
    for (int i = 0; i < n; i++) {
        const struct usbts_est_capture *c = est_cap_at(e, i);
        est_add_sums(&s, (double)(c->mf - ref_mf), (double)(c->t_ns - ref_t), est_weight(c));
    }
    e->have_fit = est_solve(e, &s, n, ref_mf, ref_t, &e->fit);
    if (e->have_fit) {
        /* Kept for the models without a fit (a stopped counter, a single
         * read or capture after a restart), whose bound grows at the prior
         * rate from it: the frame clock runs on at the rate it had, and
         * drift, a FLADJ setting and a slewed host clock together may put
         * that past the prior from nominal (issue #16 soak, seed 92275573:
         * 1180 ppm, a capture 86 ms after a halt's restart, the nominal
         * model 95 us off, wrong frame numbers).  Only a rate known well
         * inside the prior may stand in (a young fit's slope can be off by
         * percent), and none beyond twice it from nominal. */
        double rate_sd = sqrt(e->fit.var_b) / e->fit.b;
        if (K * rate_sd < 0.1 * PRIOR_RATE && fabs(e->fit.b / NOMINAL_NS - 1) < 2 * PRIOR_RATE)
            e->last_period_ns = e->fit.b;
        e->stats.rate_ppm = (NOMINAL_NS / e->fit.b - 1.0) * 1e6;
        e->stats.window = n;
        est_take_snapshot(e);
    }
}
