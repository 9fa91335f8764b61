/* SPDX-License-Identifier: MIT */
/*
 * est_internal.h — what the estimator's rooms share: constants, the small
 * helpers every room needs, and each room's entry points, listed room by
 * room in the order they depend on one another (a room calls only rooms
 * listed before it).  Not part of any API: only src/est*.c include it.
 */
#ifndef USBTS_EST_INTERNAL_H
#define USBTS_EST_INTERNAL_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "estimator.h"

#define NOMINAL_NS 125000.0
#define WRAP 16384
#define MASK 0x3FFFu
#define PRIOR_RATE 1.1e-3          /* a priori rate uncertainty: ±1000 ppm and margin */
#define CADENCE_NS 20000000        /* steady state: a capture every 20 ms */
#define FAST_CADENCE_NS 2000000    /* converging, or confirming a suspect capture */
#define FAST_CAPTURES 25
#define BISECT_HALF_NS 1000.0      /* a phase interval wider than this is halved, not covered */
#define SURPRISE_CAPTURES 8        /* fast captures after one the fit did not expect */
#define MILD_Z 2.0                 /* a capture this many sd off earns one early look */
#define STOP_NS 312500.0           /* 2.5 microframes without a change: halted */
#define PROBE_NS 450000            /* a search burst: more than three microframes */
#define STOPPED_PROBE_NS 2000000
#define ACCEPT_FLOOR_NS 20000.0    /* a rate step of 500 ppm needs 40 ms to reach this */
#define K 3.0                      /* standard deviations in the bound */
#define LATCH_HALF 0.55            /* half a bracket, with a margin: where a latch may lie off the middle */
#define PRED_ALPHA 0.1
#define WINDOW_SLACK 1.5           /* a longer window may score this much worse and still win */
#define WANDER_FLOOR 0.02e-6       /* rate uncertainty floor: slow oscillator wander */
#define GAP_NS 200000000           /* captures this far apart: the sampler stalled */
#define GAP_MIN_CAPTURES 64        /* after a gap, fits stop reaching across it from this many captures */
#define SNAP_NS 500000000          /* a fit snapshot every 500 ms, 48 kept: 24 s of horizons */
#define SNAP_MIN_HORIZON_NS 1e9    /* shorter horizons say little about wander beyond noise */
#define WANDER_MARGIN 2.0          /* the estimate covers the worst horizon seen this much over */
#define WANDER_HALF_LIFE_NS 60e9   /* a wander not seen again fades over minutes */
#define COARSE_SD 3.0              /* a capture this much coarser than the fit's checks it loosely */
#define COARSE_SD_EXIT 2.0         /* ... and, in a run of such, one this much coarser still does */
#define OVERDUE_NS 40e6            /* two cadences without a capture: the fit's rate is unchecked */
#define SLEW_ALLOWANCE 500e-6      /* how far NTP may move the host clock's rate (adjtimex's limit) */
#define MODEL_ERR_FADE 0.6         /* per capture: a model error's peak fades over a few captures */
#define ODD_MAX_WIDTH_NS 31250.0   /* a read this wide still tells a reset's count */
#define CURV_UNIT_MF 8000.0       /* the curvature's unit of distance: a second of microframes */
#define CURV_MIN_CAPTURES 16      /* the fewest captures the curvature is measured over */
#define MIN_LEAD_NS 1000.0
#define MAX_LEAD_NS 200000.0

/* Captures in candidate window j: 4, 8, ..., 512. */
#define EST_WIN_SIZE(j) ((int32_t)4 << (j))

static inline double est_mid(const struct usbts_read *r)
{
    return 0.5 * ((double)r->before_ns + (double)r->after_ns);
}

static inline double est_width(const struct usbts_read *r)
{
    return (double)(r->after_ns - r->before_ns);
}

/* A capture far coarser than the fit's typical one (a run of slow reads)
 * checks the fit only loosely: its error is mostly its own noise.  Once in
 * a run of such, a capture must be much finer to end it: the slow reads'
 * widths vary, and with one threshold every other capture of the run
 * counted as fine, each one dropping the reach the coarse one before had
 * left unverified (issue #16 soak, seed 6297748071: the bound falling from
 * 30 us to 3.4 us and back, the error 4.3 us). */
static inline bool est_coarse(const struct usbts_est *e, const struct usbts_est_capture *c)
{
    return e->have_fit && c->sd_ns > (e->coarse_run ? COARSE_SD_EXIT : COARSE_SD) * e->fit.sd_typ;
}

/* The captures a fit may use: not across a gap (a stalled sampler) once
 * enough have come after it.  The frame clock's rate wanders over a stall
 * with no capture to show it, and a line through both sides runs at their
 * mean rate, off the clock's rate now (issue #16 soak, seeds 2146435360 and
 * 1059061822: 5 s after a stall, the line through it 0.5 and 1.4 ppm off
 * the clock, its error growing past its bound while coarse captures could
 * not tell the windows apart). */
static inline int est_history(const struct usbts_est *e)
{
    return e->since_gap >= GAP_MIN_CAPTURES && e->since_gap < e->cap_count ? e->since_gap : e->cap_count;
}

/* The i-th newest capture of the epoch (0 = newest). */
static inline const struct usbts_est_capture *est_cap_at(const struct usbts_est *e, int i)
{
    return &e->cap[(e->cap_head - 1 - i + 2 * USBTS_EST_MAX_WINDOW) % USBTS_EST_MAX_WINDOW];
}

/* The count congruent to the 14-bit `low` nearest the predicted count. */
static inline int64_t est_extend_low(uint32_t low, double m_pred)
{
    return (int64_t)low + (int64_t)WRAP * (int64_t)llround((m_pred - (double)low) / WRAP);
}

/* ---- est_regress.c: the weighted line fit --------------------------------- */

struct est_sums {
    double S, Sx, Sy, Sxx, Sxy, Sww;
};

void est_add_sums(struct est_sums *s, double x, double y, double w);
/* Fit from sums over the newest n captures; with e, the variances are scaled
 * by the residuals' chi-square when they exceed the captures' own. */
bool est_solve(const struct usbts_est *e, const struct est_sums *s, int n, int64_t ref_mf, int64_t ref_t,
               struct usbts_est_fit *f);
double est_weight(const struct usbts_est_capture *c);
void est_fit_all(const struct usbts_est *e, struct usbts_est_fit fits[USBTS_EST_NWIN], bool ok[USBTS_EST_NWIN]);
double est_fit_time(const struct usbts_est_fit *f, int64_t mf);

/* ---- est_bound.c: what the bound is made of --------------------------------- */

double est_latch_term(const struct usbts_est *e);
double est_fit_latch(const struct usbts_est *e, int64_t mf);
double est_model_err2(const struct usbts_est *e);
void est_hold_model_err(struct usbts_est *e);
/* as published, or (false) what the fitted data alone say */
void est_bound_terms(const struct usbts_est *e, bool as_published, double *b0, double *slope);
/* the bound at count mf that a new capture's surprise is judged by */
double est_yardstick_bound(const struct usbts_est *e, int64_t mf);
/* ... that captures are held to and bursts aim by */
double est_accept_bound(const struct usbts_est *e, int64_t mf);
/* ... that reads and a halted counter are checked against */
double est_check_bound(const struct usbts_est *e, int64_t mf);
void est_learn_wander(struct usbts_est *e, const struct usbts_est_capture *c);
void est_take_snapshot(struct usbts_est *e);

/* ---- est_window.c: which window ---------------------------------------------- */

void est_score_windows(struct usbts_est *e, const struct usbts_est_capture *c);
void est_refit(struct usbts_est *e);

/* ---- est_extend.c: 14 bits to 64 ------------------------------------------------ */

/* The count expected at host time t and how uncertain it is, in microframes;
 * false when nothing predicts it well enough to extend a 14-bit count. */
bool est_predict(const struct usbts_est *e, double t, double *m, double *unc);

/* ---- est_epoch.c: what a capture means -------------------------------------------- */

void est_clear_epoch(struct usbts_est *e);
void est_add_capture(struct usbts_est *e, double t, double sd, double w, uint32_t mfindex);
void est_enter_stopped(struct usbts_est *e, const struct usbts_read *r);
void est_note_unstarted(struct usbts_est *e, const struct usbts_read *r);

/* ---- est_capture.c ------------------------------------------------------------------ */

/* The part of the reads' interval for the fitted boundaries (offsets from
 * the fit, as of `t`) that only a jump of the count explains, if any
 * (est_capture.c). */
bool est_phase_jump(const struct usbts_est *e, double u, double t, double *lo, double *hi);

bool est_odd_read(struct usbts_est *e, const struct usbts_read *r, double w);
void est_leave_stopped(struct usbts_est *e, const struct usbts_read *r);

#endif
