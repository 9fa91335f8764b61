/* SPDX-License-Identifier: MIT */
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
    double wander_ppm_s;      /* measured wander: rate uncertainty growth, ppm per s of distance */
    int32_t window;           /* captures in the current fit */
};

#define USBTS_EST_MAX_WINDOW 512
#define USBTS_EST_NWIN 8 /* candidate fit windows: 4, 8, ..., 512 captures */

struct usbts_est_capture {
    int64_t mf;      /* extended microframe count of the boundary */
    int64_t t_ns;    /* estimated host time of the boundary */
    int32_t sd_ns;   /* standard deviation of t_ns */
    uint32_t mfindex; /* the raw counter after the boundary */
    int32_t w_ns;    /* the mean width of its two reads' brackets */
};

/* A weighted straight-line fit t = a + b * (mf - ref_mf), a relative to ref_t. */
struct usbts_est_fit {
    int32_t n;
    int64_t ref_mf;  /* the newest capture's count ... */
    int64_t ref_t;   /* ... and time: the fit is relative to them */
    double a, b;     /* ns, ns per microframe */
    double var_a;    /* variance of the fitted time at ref_mf, ns^2 */
    double var_b;    /* variance of b */
    double cov_ab;
    /* The fit's share of its captures' read widths: the fitted time at
     * ref_mf + x moves by (lat_a + lat_b * x) * (f - 1/2) when every read
     * latches at the fraction f of its bracket (est_bound.c). */
    double lat_a, lat_b;
    /* How curved its data are, and how much that moves it.  Fitted with a
     * quadratic in u = x / CURV_UNIT_MF, the data's curvature is `curv`
     * (|q2|, ns per u^2); a line through such data is off at ref_mf + x by
     * curv * (curv_a + curv_b * |x|): curv_a is |the sum of its intercept
     * weights times u^2|, curv_b the same for its slope weights (per
     * microframe). */
    double curv, curv_a, curv_b;
    double sd_typ;   /* the sd of the captures that carry it: sqrt(sum w / sum w^2), w = 1/sd^2 */
};

/* A past fit kept to see how well it predicts captures seconds later: the
 * frame clock's wander, measured (the bound's wander term). */
struct usbts_est_snap {
    int64_t t_ns;    /* when it was the current fit (its newest capture) */
    int64_t mf;      /* a count ... */
    double mf_t;     /* ... and its fitted time */
    double period;   /* ns per microframe */
    double b0, slope; /* its bound without wander: b0 + slope * distance */
};

#define USBTS_EST_NSNAP 48

/* Everything by value so a tracker can embed it: no pointers, no heap.
 * Treat as opaque outside src/estimator.c and src/est_*.c. */
struct usbts_est {
    uint32_t epoch;          /* 0 before any data; +1 per discontinuity */
    bool stopped;            /* the counter is not advancing */
    bool have_anchor;        /* the extension knows one (mf, time) pair */
    int64_t anchor_mf;       /* extended count of the latest accepted read */
    double anchor_ns;        /* its latch estimate ... */
    double anchor_half_ns;   /* ... good to half its read's bracket */
    int64_t frozen_mf;       /* while stopped */
    double frozen_start_ns;  /* estimated start of the frozen microframe ... */
    double frozen_half_ns;   /* ... give or take this much beyond one microframe */
    double frozen_lo_ns;     /* a reset while halted: microframe 0 begins no earlier (0: not that) */
    bool coarse_run;         /* the newest capture was coarse (est_coarse) */
    /* Where every read since the newest capture puts the fitted boundaries:
     * their true start lies phase_lo_ns..phase_hi_ns after the fit's, as of
     * phase_at_ns (est_note_phase; phase_valid false: no read yet) */
    bool phase_valid;
    double phase_lo_ns, phase_hi_ns, phase_at_ns;
    /* the current burst */
    bool in_burst;
    int32_t burst_reads;
    bool burst_captured, burst_missed, burst_changed, burst_surprised;
    bool burst_in_time; /* its first read came before the aimed boundary could have begun */
    struct usbts_read first, prev;
    uint32_t latest_low;      /* MFINDEX of the latest read ... */
    int64_t latest_before_ns; /* ... and when it began (0: no read yet) */
    int64_t value_since_ns;   /* the counter has shown latest_low since after this (0: unknown) */
    int64_t heartbeat_ns;     /* when the latest read ended: the model's heartbeat */
    /* the last plan */
    int64_t plan_start_ns, plan_target_ns;
    uint32_t plan_target_low; /* MFINDEX of the microframe the burst aims to see begin */
    double plan_target_unc;   /* the model's uncertainty of plan_target_ns */
    bool plan_bisect;         /* the burst halves the phase interval (est_plan) */
    int32_t misses;           /* bursts in a row that woke too late */
    bool long_probe;         /* the expected boundary did not come: look longer */
    double lead_ns;          /* how early bursts start before a boundary */
    /* captures of this epoch, a ring, newest at cap_head-1 */
    struct usbts_est_capture cap[USBTS_EST_MAX_WINDOW];
    int32_t cap_head, cap_count;
    int64_t last_capture_ns;
    int64_t epoch_start_ns;
    /* captures no count explains: a possible discontinuity */
    struct usbts_est_capture pending[2];
    int32_t pending_count;
    /* the latest clean single read the model cannot explain (odd_valid) */
    struct usbts_read odd;
    bool odd_valid;
    /* statistics the bound is made of */
    int32_t fast_left;       /* captures still to take at the fast cadence after a surprise */
    bool unconfirmed;        /* a capture surprised the fit and none has settled it: its rate is unknown */
    double unconfirmed_resid; /* how far that capture lay from the fit (signed: its side), ns */
    bool change_confirmed;   /* ... and a second capture confirmed it: the line restarted from the two */
    bool contradicted;       /* a read since the newest capture lay outside the fit's bound (est_check_read) */
    double unverified_ns;    /* how loosely the newest capture checked the fit (0: as tight as its bound) */
    double bracket_ns;       /* low quantile of read brackets */
    double burst_min_w_ns;   /* the narrowest read of the current burst ... */
    double spacing_ns;       /* ... and of the last burst of two or more: the read grid now */
    double pred_ewma[USBTS_EST_NWIN]; /* squared prediction error per window */
    double model_err2_held;  /* the model error's recent peak, fading (est_bound.c) */
    int32_t pred_n[USBTS_EST_NWIN];
    double noise_ewma;       /* mean capture variance, ns^2 */
    /* each window's prediction error beyond the capture's own variance,
     * weighted by the capture's precision: excess_num / excess_den, ns^2 */
    double excess_num[USBTS_EST_NWIN], excess_den[USBTS_EST_NWIN];
    int32_t win;             /* chosen window index */
    int32_t since_gap;       /* captures since the newest gap in the history, its own included (0: none) */
    struct usbts_est_fit fit; /* of the chosen window */
    double last_period_ns;   /* kept across epochs for a stopped counter's model */
    /* wander: snapshots of this epoch's fits, a ring, and what they showed */
    struct usbts_est_snap snap[USBTS_EST_NSNAP];
    int32_t snap_head, snap_count;
    double wander;           /* bound growth per ns^2 of distance (kept across epochs) */
    int64_t wander_at_ns;    /* when it was last raised or decayed */
    bool have_fit;
    struct usbts_est_stats stats;
};

void usbts_est_init(struct usbts_est *e);

/* Forget the fit and the counter extension; the next data starts a new epoch. */
void usbts_est_reset(struct usbts_est *e);

/* Not const: the estimator remembers what it planned, to learn how late
 * bursts start and whether the expected boundary came. */
void usbts_est_plan(struct usbts_est *e, int64_t now_ns, struct usbts_est_plan *plan);

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
