/* SPDX-License-Identifier: MIT */
/* devclock_fit.c — the robust device-clock line (see devclock_fit.h). */
#include "devclock_fit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MIN_PAIRS 4
#define REJECT_SIGMAS 5.0
#define ROBUST_PASSES 2
/* The robust start uses at most this many pairs, evenly spread: their
 * pairwise slopes fit in the scratch space. */
#define SEED_PAIRS 64
#define SCRATCH_WORDS(w) ((size_t)(w) > SEED_PAIRS * SEED_PAIRS / 2 ? (size_t)(w) : SEED_PAIRS * SEED_PAIRS / 2)

bool usbts_dcfit_init(struct usbts_dcfit *f, double hz, unsigned bits, uint32_t window)
{
    memset(f, 0, sizeof *f);
    if (!(hz > 0) || !isfinite(hz) || bits < 8 || bits > 64 || window < 8 || window > 4096)
        return false;
    f->ring = calloc(window, sizeof *f->ring);
    f->outlier = calloc(window, sizeof *f->outlier);
    f->scratch = calloc(SCRATCH_WORDS(window), sizeof *f->scratch);
    if (!f->ring || !f->outlier || !f->scratch) {
        usbts_dcfit_free(f);
        return false;
    }
    f->hz = hz;
    f->bits = bits;
    f->window = window;
    f->generation = 1;
    return true;
}

void usbts_dcfit_free(struct usbts_dcfit *f)
{
    free(f->ring);
    free(f->outlier);
    free(f->scratch);
    f->ring = NULL;
    f->outlier = NULL;
    f->scratch = NULL;
}

/* The raw counter value unwrapped next to the newest pair's. */
static int64_t unwrap(const struct usbts_dcfit *f, uint64_t raw)
{
    if (!f->have_last)
        return (int64_t)raw;
    if (f->bits == 64)
        return f->last_ext + (int64_t)(raw - f->last_raw);
    uint64_t mask = ((uint64_t)1 << f->bits) - 1, half = (uint64_t)1 << (f->bits - 1);
    uint64_t d = (raw - f->last_raw) & mask;
    return d < half ? f->last_ext + (int64_t)d : f->last_ext - (int64_t)(mask + 1 - d);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, uint32_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static const struct usbts_dc_pair *pair_at(const struct usbts_dcfit *f, uint32_t i)
{
    /* i = 0 is the oldest held */
    return &f->ring[(f->head + f->window - f->count + i) % f->window];
}

static bool *outlier_at(struct usbts_dcfit *f, uint32_t i)
{
    return &f->outlier[(f->head + f->window - f->count + i) % f->window];
}

/* Least squares over the pairs not marked as outliers. */
static bool fit_line(struct usbts_dcfit *f)
{
    double sx = 0, sy = 0;
    uint32_t n = 0;
    for (uint32_t i = 0; i < f->count; i++) {
        if (*outlier_at(f, i))
            continue;
        const struct usbts_dc_pair *p = pair_at(f, i);
        sx += (double)(p->dev - f->dev_ref);
        sy += (double)(p->host - f->host_ref);
        n++;
    }
    if (n < 2)
        return false;
    double xbar = sx / n, ybar = sy / n, sxx = 0, sxy = 0;
    for (uint32_t i = 0; i < f->count; i++) {
        if (*outlier_at(f, i))
            continue;
        const struct usbts_dc_pair *p = pair_at(f, i);
        double dx = (double)(p->dev - f->dev_ref) - xbar, dy = (double)(p->host - f->host_ref) - ybar;
        sxx += dx * dx;
        sxy += dx * dy;
    }
    if (!(sxx > 0))
        return false;
    f->b = sxy / sxx;
    f->a = ybar - f->b * xbar;
    f->xbar = xbar;
    f->sxx = sxx;
    f->inliers = n;
    return true;
}

/* A start no single bad pair can drag: the median of pairwise slopes
 * (Theil-Sen) over up to SEED_PAIRS pairs, and the median intercept.  A late
 * latch at the end of the window has the most leverage on least squares. */
static void seed_line(struct usbts_dcfit *f)
{
    uint32_t m = f->count < SEED_PAIRS ? f->count : SEED_PAIRS, k = 0;
    for (uint32_t i = 0; i < m; i++) {
        const struct usbts_dc_pair *p = pair_at(f, (uint32_t)((uint64_t)i * (f->count - 1) / (m - 1)));
        for (uint32_t j = i + 1; j < m; j++) {
            const struct usbts_dc_pair *q = pair_at(f, (uint32_t)((uint64_t)j * (f->count - 1) / (m - 1)));
            if (q->dev != p->dev)
                f->scratch[k++] = (double)(q->host - p->host) / (double)(q->dev - p->dev);
        }
    }
    if (k == 0)
        return;
    f->b = median(f->scratch, k);
    for (uint32_t i = 0; i < f->count; i++) {
        const struct usbts_dc_pair *p = pair_at(f, i);
        f->scratch[i] = (double)(p->host - f->host_ref) - f->b * (double)(p->dev - f->dev_ref);
    }
    f->a = median(f->scratch, f->count);
}

static double residual(const struct usbts_dcfit *f, const struct usbts_dc_pair *p)
{
    return (double)(p->host - f->host_ref) - (f->a + f->b * (double)(p->dev - f->dev_ref));
}

static void refit(struct usbts_dcfit *f)
{
    f->ready = false;
    if (f->count < MIN_PAIRS)
        return;
    const struct usbts_dc_pair *newest = pair_at(f, f->count - 1);
    f->dev_ref = newest->dev;
    f->host_ref = newest->host;
    for (uint32_t i = 0; i < f->count; i++)
        *outlier_at(f, i) = false;
    if (!fit_line(f))
        return;
    seed_line(f);
    /* The host times' own bound: the scatter floor and the common error. */
    for (uint32_t i = 0; i < f->count; i++)
        f->scratch[i] = (double)pair_at(f, i)->bound;
    f->host_bound = median(f->scratch, f->count);
    for (int pass = 0; pass < ROBUST_PASSES; pass++) {
        /* Robust sigma from the median absolute residual of every pair, so a
         * pair set aside once can come back. */
        for (uint32_t i = 0; i < f->count; i++)
            f->scratch[i] = fabs(residual(f, pair_at(f, i)));
        double s = 1.4826 * median(f->scratch, f->count);
        double floor_ns = f->host_bound / 3 > 1 ? f->host_bound / 3 : 1;
        if (s < floor_ns)
            s = floor_ns;
        uint32_t kept = 0;
        for (uint32_t i = 0; i < f->count; i++) {
            bool out = fabs(residual(f, pair_at(f, i))) > REJECT_SIGMAS * s;
            *outlier_at(f, i) = out;
            kept += !out;
        }
        if (kept < MIN_PAIRS) {
            for (uint32_t i = 0; i < f->count; i++)
                *outlier_at(f, i) = false;
        }
        if (!fit_line(f))
            return;
    }
    double ss = 0;
    for (uint32_t i = 0; i < f->count; i++) {
        if (*outlier_at(f, i))
            continue;
        double r = residual(f, pair_at(f, i));
        ss += r * r;
    }
    if (f->inliers < MIN_PAIRS)
        return;
    uint32_t dof = f->inliers - 2;
    f->sigma = sqrt(ss / dof);
    /* Roughly Student's t at 99.5% for dof degrees of freedom, and a quarter
     * more for residuals that are not quite Gaussian. */
    f->k = 1.25 * (2.576 + 12.0 / pow((double)dof, 1.3));
    f->last_rejected = *outlier_at(f, f->count - 1);
    f->ready = true;
}

void usbts_dcfit_add(struct usbts_dcfit *f, uint64_t dev_raw, int64_t host_ns, int64_t host_bound_ns,
                     uint32_t frame_generation, bool *restarted)
{
    int64_t ext = unwrap(f, dev_raw);
    bool restart = f->count > 0 && (frame_generation != f->frame_generation || ext < f->last_ext);
    if (restart) {
        f->generation++;
        f->count = 0;
        f->head = 0;
        f->have_last = false;
        f->ready = false;
        ext = (int64_t)dev_raw;
    }
    if (restarted)
        *restarted = restart;
    f->frame_generation = frame_generation;
    f->ring[f->head] = (struct usbts_dc_pair){ext, host_ns, host_bound_ns < 1 ? 1 : host_bound_ns};
    f->head = (f->head + 1) % f->window;
    if (f->count < f->window)
        f->count++;
    f->have_last = true;
    f->last_raw = dev_raw;
    f->last_ext = ext;
    f->last_rejected = false;
    refit(f);
}

bool usbts_dcfit_map(const struct usbts_dcfit *f, uint64_t dev_raw, int64_t *host_ns, int64_t *bound_ns)
{
    if (!f->ready)
        return false;
    double x = (double)(unwrap(f, dev_raw) - f->dev_ref);
    double y = f->a + f->b * x;
    double se = f->sigma * sqrt(1.0 / f->inliers + (x - f->xbar) * (x - f->xbar) / f->sxx);
    double bound = f->k * se + f->host_bound;
    *host_ns = f->host_ref + (int64_t)llround(y);
    *bound_ns = bound < 1 ? 1 : bound > 9e18 ? (int64_t)9e18 : (int64_t)ceil(bound);
    return true;
}

double usbts_dcfit_rate_ppm(const struct usbts_dcfit *f)
{
    if (!f->ready || !(f->b > 0))
        return 0;
    /* b is host ns per device tick: the device makes 1e9 / b ticks per host second. */
    return (1e9 / f->b / f->hz - 1) * 1e6;
}

int64_t usbts_dcfit_offset_ns(const struct usbts_dcfit *f)
{
    if (!f->ready)
        return 0;
    return f->host_ref + (int64_t)llround(f->a - f->b * (double)f->dev_ref);
}
