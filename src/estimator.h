/*
 * estimator.h — the frame-clock estimator: pure math, samples in, model out.
 *
 * No I/O, no clock, no thread, no allocation: everything it knows arrives
 * through usbts_est_feed() as bracketed MFINDEX reads, so it is unit-tested
 * with synthetic read streams and runs identically on real and virtual time.
 *
 * How a tracker drives it:
 *
 *     usbts_est_plan(e, now, &plan);        // when to read next, how long
 *     ...sleep until plan.start_ns...
 *     usbts_est_burst_begin(e);
 *     do read(&r) while (!usbts_est_feed(e, &r) && within plan limits);
 *     usbts_est_burst_end(e);
 *     if (usbts_est_model(e, &m)) publish(m);
 *
 * A burst of back-to-back reads that sees MFINDEX step by one microframe
 * captures that microframe boundary: it lies between the two reads' latch
 * instants.  A burst of a single read (e.g. an isolated frame-number read)
 * only extends the counter and anchors a coarse model.
 */
#ifndef USBTS_ESTIMATOR_H
#define USBTS_ESTIMATOR_H

#include <stdbool.h>
#include <stdint.h>

#include "model.h"

struct usbts_read {
    int64_t before_ns; /* host clock just before the register access */
    int64_t after_ns;  /* host clock just after */
    uint32_t mfindex;  /* raw MFINDEX; bits 13:0 count microframes */
};

struct usbts_est_plan {
    int64_t start_ns;    /* host time at which the next burst should begin */
    int64_t deadline_ns; /* stop reading at this host time even without a capture */
    int32_t max_reads;   /* ... or after this many reads */
};

struct usbts_est_stats {
    uint64_t reads;           /* reads fed */
    uint64_t bursts;          /* bursts ended */
    uint64_t captures;        /* boundaries captured and accepted */
    uint64_t rejected;        /* captures or reads rejected (preempted, outliers) */
    uint64_t discontinuities; /* epochs started after the first */
    int64_t bracket_ns;       /* typical (low-quantile) read bracket width */
    double rate_ppm;          /* fitted frame-clock rate error against the host clock */
    int32_t window;           /* captures in the current fit */
};

#define USBTS_EST_MAX_WINDOW 512

struct usbts_est_capture {
    int64_t mf;        /* extended microframe count of the boundary */
    int64_t t_ns;      /* estimated host time of the boundary */
    int32_t half_ns;   /* half-width of the interval it lies in */
    int32_t reserved;
};

/* Everything by value so a tracker can embed it; treat as opaque outside
 * estimator.c. */
struct usbts_est {
    /* epoch: increments on each discontinuity; 0 before any data */
    uint32_t epoch;
    uint32_t flags;
    /* extension state */
    bool have_anchor;
    int64_t last_mf;       /* extended count of the latest accepted read */
    int64_t last_read_ns;  /* its latch estimate */
    /* current burst */
    bool in_burst;
    int32_t burst_reads;
    bool burst_captured;
    struct usbts_read prev;
    bool have_prev;
    /* captures, a ring */
    struct usbts_est_capture cap[USBTS_EST_MAX_WINDOW];
    int32_t cap_head, cap_count;
    /* pending inconsistent captures (a possible discontinuity) */
    struct usbts_est_capture pending[4];
    int32_t pending_count;
    /* bracket-width statistics */
    int64_t bracket_ns;
    /* fit */
    bool have_fit;
    double fit_period_ns;  /* ns per microframe */
    double fit_t0_ns;      /* fitted host time of microframe fit_mf0 */
    int64_t fit_mf0;
    double fit_sigma_ns;   /* residual scale */
    double fit_period_sd;  /* standard deviation of the period estimate */
    double pred_err_ns;    /* tracked prediction-error scale */
    int32_t fit_n;
    struct usbts_model model;
    bool model_valid;
    struct usbts_est_stats stats;
    uint8_t scratch[64];   /* room for implementation-private state */
};

void usbts_est_init(struct usbts_est *e);

/* Forget the fit and the counter extension; the next data starts a new epoch. */
void usbts_est_reset(struct usbts_est *e);

void usbts_est_plan(const struct usbts_est *e, int64_t now_ns, struct usbts_est_plan *plan);

void usbts_est_burst_begin(struct usbts_est *e);
/* Returns true when the burst has what it needs and reading may stop. */
bool usbts_est_feed(struct usbts_est *e, const struct usbts_read *r);
void usbts_est_burst_end(struct usbts_est *e);

/* The current model.  model->generation holds the estimator's epoch (the
 * tracker maps epochs to process-wide generation IDs).  Returns false when
 * there is no model yet. */
bool usbts_est_model(const struct usbts_est *e, struct usbts_model *out);

/* The extended microframe count for a read, as the estimator would assign it
 * now, without feeding it (for one-off frame-number reads).  Returns false when
 * no count explains it. */
bool usbts_est_extend(const struct usbts_est *e, const struct usbts_read *r, int64_t *mf);

void usbts_est_get_stats(const struct usbts_est *e, struct usbts_est_stats *out);

#endif
