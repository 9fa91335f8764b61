/* SPDX-License-Identifier: MIT */
/*
 * est_regress.c — the weighted straight-line fit of host time against the
 * microframe count, over the newest n captures: sums, solution, every
 * candidate window at once, and how curved the data the line runs through
 * are.  Knows nothing of windows' scores, bounds or epochs (as chrony keeps
 * its regression apart from its source statistics).
 */
#include "est_internal.h"

#include <math.h>

void est_add_sums(struct est_sums *s, double x, double y, double w)
{
    s->S += w;
    s->Sww += w * w;
    s->Sx += w * x;
    s->Sy += w * y;
    s->Sxx += w * x * x;
    s->Sxy += w * x * y;
}

/* How curved the newest n captures are: |q2| of a weighted fit
 * t = q0 + q1 u + q2 u^2 (u = x / CURV_UNIT_MF).  A host clock that NTP
 * slews ramps its rate: the line lags it where its data lie far from the
 * newest capture (issue #16 soak: a run of coarse captures, the fit leaning
 * on fine ones a second old, 5 us off with a bound of 3 us).  On a straight
 * line q2 is noise, small beside the line's own spread where the data are
 * fine; a step of rate inside the window reads as curvature too, as it
 * should: a line through a kink is off as well. */
static double est_curvature(const struct usbts_est *e, int n, int64_t ref_mf, int64_t ref_t)
{
    if (n < 5)
        return 0;
    double m[3][3] = {{0}}, v[3] = {0};
    for (int i = 0; i < n; i++) {
        const struct usbts_est_capture *c = est_cap_at(e, i);
        double u = (double)(c->mf - ref_mf) / CURV_UNIT_MF, y = (double)(c->t_ns - ref_t), w = est_weight(c);
        double p[3] = {1, u, u * u};
        for (int r = 0; r < 3; r++) {
            v[r] += w * p[r] * y;
            for (int k = 0; k < 3; k++)
                m[r][k] += w * p[r] * p[k];
        }
    }
    /* q2 by Cramer's rule: the cofactors of the third column */
    double c0 = m[1][0] * m[2][1] - m[1][1] * m[2][0];
    double c1 = -(m[0][0] * m[2][1] - m[0][1] * m[2][0]);
    double c2 = m[0][0] * m[1][1] - m[0][1] * m[1][0];
    double det = m[0][2] * c0 + m[1][2] * c1 + m[2][2] * c2;
    if (!(det > 0))
        return 0;
    return fabs((v[0] * c0 + v[1] * c1 + v[2] * c2) / det);
}

/* Fit from sums over the newest n captures; with e, a second pass over them
 * for their widths, curvature and chi-square. */
bool est_solve(const struct usbts_est *e, const struct est_sums *s, int n, int64_t ref_mf, int64_t ref_t,
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
    f->sd_typ = sqrt(s->S / s->Sww);
    f->lat_a = f->lat_b = f->curv = f->curv_a = f->curv_b = 0;
    double scale = 1;
    if (e) {
        /* each capture's weight in the intercept and in the slope, and its
         * residual */
        double chi2 = 0;
        for (int i = 0; i < n; i++) {
            const struct usbts_est_capture *c = est_cap_at(e, i);
            double x = (double)(c->mf - ref_mf), w = est_weight(c);
            double wa = w * (s->Sxx - s->Sx * x) / D, wb = w * (s->S * x - s->Sx) / D;
            double u = x / CURV_UNIT_MF;
            f->lat_a += wa * c->w_ns;
            f->lat_b += wb * c->w_ns;
            f->curv_a += wa * u * u;
            f->curv_b += wb * u * u;
            double r = (double)(c->t_ns - ref_t) - f->a - f->b * x;
            chi2 += r * r / ((double)c->sd_ns * c->sd_ns);
        }
        f->curv_a = fabs(f->curv_a);
        f->curv_b = fabs(f->curv_b);
        /* from at least CURV_MIN_CAPTURES: a short window's line (4
         * captures, one of them across a gap) cannot show its own curve */
        int m = n > CURV_MIN_CAPTURES ? n : CURV_MIN_CAPTURES, history = est_history(e);
        f->curv = est_curvature(e, m < history ? m : history, ref_mf, ref_t);
        if (n > 4 && chi2 / (n - 2) > 1)
            scale = chi2 / (n - 2);
    }
    f->var_a = scale * s->Sxx / D;
    f->var_b = scale * s->S / D;
    f->cov_ab = -scale * s->Sx / D;
    return f->b > 0;
}

double est_weight(const struct usbts_est_capture *c)
{
    double sd = c->sd_ns < 1 ? 1 : c->sd_ns;
    return 1.0 / (sd * sd);
}

/* Fits every window at once, newest to oldest; fits[j] valid when ok[j].
 * A window longer than the history is fitted once, as the whole history. */
void est_fit_all(const struct usbts_est *e, struct usbts_est_fit fits[USBTS_EST_NWIN], bool ok[USBTS_EST_NWIN])
{
    struct est_sums s = {0};
    int64_t ref_mf = est_cap_at(e, 0)->mf, ref_t = est_cap_at(e, 0)->t_ns;
    for (int j = 0; j < USBTS_EST_NWIN; j++)
        ok[j] = false;
    int history = est_history(e);
    for (int i = 0; i < history; i++) {
        const struct usbts_est_capture *c = est_cap_at(e, i);
        est_add_sums(&s, (double)(c->mf - ref_mf), (double)(c->t_ns - ref_t), est_weight(c));
        int n = i + 1;
        for (int j = 0; j < USBTS_EST_NWIN; j++) {
            bool whole = n == history && EST_WIN_SIZE(j) > n && (j == 0 || EST_WIN_SIZE(j - 1) < n);
            if (EST_WIN_SIZE(j) == n || whole)
                ok[j] = est_solve(NULL, &s, n, ref_mf, ref_t, &fits[j]);
        }
    }
}

double est_fit_time(const struct usbts_est_fit *f, int64_t mf)
{
    return (double)f->ref_t + f->a + f->b * (double)(mf - f->ref_mf);
}
