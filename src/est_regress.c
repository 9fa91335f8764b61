/* SPDX-License-Identifier: MIT */
/*
 * est_regress.c — the weighted straight-line fit of host time against the
 * microframe count, over the newest n captures: sums, solution, and every
 * candidate window at once.  Knows nothing of windows' scores, bounds or
 * epochs (as chrony keeps its regression apart from its source statistics).
 */
#include "est_internal.h"

#include <math.h>

void est_add_sums(struct est_sums *s, double x, double y, double w)
{
    s->S += w;
    s->Sx += w * x;
    s->Sy += w * y;
    s->Sxx += w * x * x;
    s->Sxy += w * x * y;
}

/* Fit from sums over the newest n captures; chi-square from a second pass. */
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
    f->sd_typ = sqrt(n / s->S);
    f->lat_a = f->lat_b = 0;
    if (e) {
        /* each capture's weight in the intercept and in the slope */
        for (int i = 0; i < n; i++) {
            const struct usbts_est_capture *c = est_cap_at(e, i);
            double x = (double)(c->mf - ref_mf), w = est_weight(c);
            f->lat_a += w * (s->Sxx - s->Sx * x) / D * c->w_ns;
            f->lat_b += w * (s->S * x - s->Sx) / D * c->w_ns;
        }
    }
    double scale = 1;
    if (e && n > 4) {
        double chi2 = 0;
        for (int i = 0; i < n; i++) {
            const struct usbts_est_capture *c = est_cap_at(e, i);
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
    for (int i = 0; i < e->cap_count; i++) {
        const struct usbts_est_capture *c = est_cap_at(e, i);
        est_add_sums(&s, (double)(c->mf - ref_mf), (double)(c->t_ns - ref_t), est_weight(c));
        int n = i + 1;
        for (int j = 0; j < USBTS_EST_NWIN; j++) {
            bool whole = n == e->cap_count && EST_WIN_SIZE(j) > n && (j == 0 || EST_WIN_SIZE(j - 1) < n);
            if (EST_WIN_SIZE(j) == n || whole)
                ok[j] = est_solve(NULL, &s, n, ref_mf, ref_t, &fits[j]);
        }
    }
}

double est_fit_time(const struct usbts_est_fit *f, int64_t mf)
{
    return (double)f->ref_t + f->a + f->b * (double)(mf - f->ref_mf);
}
