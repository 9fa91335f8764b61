/* SPDX-License-Identifier: MIT */
/*
 * est_extend.c — from the 14-bit MFINDEX to a 64-bit count: the fitted model
 * (or, before one exists, the last anchor and the nominal rate) predicts the
 * count at a read's time, and the count congruent to MFINDEX nearest that
 * prediction is taken.  Long gaps are fine as long as the prediction is good
 * to well under half a wrap, which even the +-1000 ppm prior gives for
 * minutes.
 */
#include "est_internal.h"

#include <math.h>

/* The count expected at host time t and how uncertain it is, in microframes. */
bool est_predict(const struct usbts_est *e, double t, double *m, double *unc)
{
    if (e->have_fit) {
        const struct usbts_est_fit *f = &e->fit;
        *m = (double)f->ref_mf + (t - (double)f->ref_t - f->a) / f->b;
        double dt = fabs(t - (double)f->ref_t);
        *unc = (K * sqrt(f->var_a + est_model_err2(e)) + dt * PRIOR_RATE) / f->b + 2;
        return *unc < WRAP / 4;
    }
    if (e->have_anchor) {
        double dt = t - e->anchor_ns;
        *m = (double)e->anchor_mf + dt / e->last_period_ns;
        *unc = fabs(dt) * PRIOR_RATE / e->last_period_ns + 2;
        return *unc < WRAP / 4;
    }
    return false;
}

bool usbts_est_extend(const struct usbts_est *e, const struct usbts_read *r, int64_t *mf)
{
    if (e->stopped && (r->mfindex & MASK) == ((uint32_t)e->frozen_mf & MASK)) {
        *mf = e->frozen_mf;
        return true;
    }
    double m, unc;
    if (!est_predict(e, est_mid(r), &m, &unc))
        return false;
    *mf = est_extend_low(r->mfindex & MASK, m);
    return true;
}
