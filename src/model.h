/* SPDX-License-Identifier: MIT */
/*
 * model.h — the frame-clock model a tracker publishes and queries evaluate.
 *
 * It maps an extended (64-bit) microframe count to host-clock ns and back with
 * integer multiply-shifts only: the query path does no division.
 *
 *   start_ns(mf) = ref_ns + ((mf - ref_mf) * period_fp) >> 32
 *   mf(t)        = ref_mf + floor(((t - ref_ns) * rate_fp) >> 64)
 *
 * The 32-bit USB frame number is (mf >> 3) truncated to 32 bits; its low 11
 * bits are the hardware frame number, and mf's low 14 bits are MFINDEX.
 * rate_fp == 0 means the counter is stopped (controller halted): mf(t) stays
 * at ref_mf.
 *
 * THE BOUND AND HOW IT AGES (docs/BOUND.md explains each term).  A reader
 * asking about host time t at host time now computes
 *
 *   d     = |t - ref_ns|                    distance from the newest capture
 *   s     = bound_slope_fp + min(WANDER_CAP, (d * bound_wander_fp) >> 32)
 *   bound = bound0_ns + (d * s) >> 32
 *   age   = now - heartbeat_ns              how long the writer has been silent
 *   if age > USBTS_MODEL_STALE_NS:
 *       bound += ((age - USBTS_MODEL_STALE_NS) * USBTS_MODEL_STALE_RATE_FP) >> 32
 *   if age > USBTS_MODEL_DEAD_NS: no answer (ERROR_GEN_FAILURE)
 *
 * ref_ns is the newest capture the fit holds, so d is at once the distance of
 * an asked frame from the fitted window and, for a question about the
 * present, the time since the last good sample: a sampler that stalls makes
 * every answer about "now" an extrapolation, and it grows by the same rule.
 * bound_slope_fp is the rate uncertainty measured from the fit's own data;
 * bound_wander_fp says how fast that uncertainty itself grows (the frame
 * clock's frequency wanders), also from the data.  Both are the writer's
 * business; the reader only evaluates.
 *
 * heartbeat_ns is the host time up to which the writer vouches for the
 * model: its last successful register read, but while the counter runs no
 * later than 200 ms after the newest capture (reads that capture nothing do
 * not make an old fit new).  A live writer moves it every few ms; a stalled
 * sampler or a dead daemon does not.  A silent writer
 * cannot see a reset or a change in the host clock's rate, so past
 * USBTS_MODEL_STALE_NS of silence the bound also grows at the rate a frame
 * clock and a host clock can at most disagree (±1000 ppm, SPEC §7), and past
 * USBTS_MODEL_DEAD_NS a query fails instead of answering.  The same rule, on
 * the same fields, serves an in-process tracker (whose writer is its sampler
 * thread) and a daemon's page (issue #11).
 *
 * Layout: the published form is USBTS_MODEL_WORDS 64-bit words in this
 * order (usbts_model_pack/unpack); a page that carries them copies the words
 * as they are.
 *
 *   0 generation | flags << 32     5 bound0_ns
 *   1 ref_ns                       6 bound_slope_fp
 *   2 ref_mf                       7 bound_wander_fp
 *   3 period_fp                    8 heartbeat_ns
 *   4 rate_fp
 */
#ifndef USBTS_MODEL_H
#define USBTS_MODEL_H

#include <stdbool.h>
#include <stdint.h>

struct usbts_model {
    uint32_t generation;      /* 0: no model */
    uint32_t flags;           /* USBTS_MODEL_* */
    int64_t ref_ns;           /* host ns at which microframe ref_mf started (the newest capture) */
    int64_t ref_mf;           /* extended microframe count */
    uint64_t period_fp;       /* ns per microframe, << 32 */
    uint64_t rate_fp;         /* microframes per ns, << 64 (0 = stopped) */
    int64_t bound0_ns;        /* error bound at ref_ns, ns, >= 1 */
    uint64_t bound_slope_fp;  /* rate uncertainty: bound per ns of distance from ref_ns, << 32 */
    uint64_t bound_wander_fp; /* its growth per ns of distance (frequency wander), << 64 */
    int64_t heartbeat_ns;     /* host time up to which the writer vouches for the model */
};

#define USBTS_MODEL_WORDS 9

#define USBTS_MODEL_CAPTURED 0x1u /* at least one microframe boundary captured */
#define USBTS_MODEL_STOPPED 0x2u  /* the counter is not advancing */

/* The writer silent this long: the bound starts growing at ±1000 ppm of the
 * excess (about one MFINDEX wrap; a live writer reads every 2-20 ms). */
#define USBTS_MODEL_STALE_NS 2000000000LL
/* ... and this long: no answer at all.  A silent writer cannot see a reset,
 * and by now the bound has grown past 28 ms anyway. */
#define USBTS_MODEL_DEAD_NS 30000000000LL
/* 1000 ppm << 32, rounded up. */
#define USBTS_MODEL_STALE_RATE_FP 4294968ull
/* The wander's share of the rate uncertainty never exceeds what a frame clock
 * and a host clock can disagree by (1000 ppm plus margin, << 32). */
#define USBTS_MODEL_WANDER_CAP_FP 4724464ull

static inline int64_t usbts_model_start_ns(const struct usbts_model *m, int64_t mf)
{
    __int128 d = (__int128)(mf - m->ref_mf) * (__int128)m->period_fp;
    return m->ref_ns + (int64_t)(d >> 32);
}

/* start_ns in two halves, for a run of microframes a fixed step apart
 * (isochronous packets): the product for one, then each next one's by adding
 * the step's product.  Exact integers, so the same answers as start_ns, with
 * an addition per packet where start_ns costs a 128-bit multiply. */
static inline __int128 usbts_model_offset_fp(const struct usbts_model *m, int64_t mf)
{
    return (__int128)(mf - m->ref_mf) * (__int128)m->period_fp;
}

static inline int64_t usbts_model_start_at_fp(const struct usbts_model *m, __int128 offset_fp)
{
    return m->ref_ns + (int64_t)(offset_fp >> 32);
}

static inline int64_t usbts_model_mf_at(const struct usbts_model *m, int64_t t)
{
    __int128 d = (__int128)(t - m->ref_ns) * (__int128)m->rate_fp;
    return m->ref_mf + (int64_t)(d >> 64);
}

/* The microframe in progress at host time t, exactly: *start_ns <= t and the
 * next one starts after t, so the instant a microframe starts belongs to it
 * (mf_at alone can name the previous one: rate_fp is 1/period rounded).  The
 * candidate from rate_fp is off by at most one; its neighbours' starts
 * differ from its own by period_fp, so checking them costs additions only. */
static inline int64_t usbts_model_locate(const struct usbts_model *m, int64_t t, int64_t *start_ns)
{
    int64_t x = t - m->ref_ns;
    int64_t k = (int64_t)(((__int128)x * (__int128)m->rate_fp) >> 64);
    __int128 p = (__int128)k * (__int128)m->period_fp;
    int64_t s = (int64_t)(p >> 32);
    if (m->rate_fp) { /* a stopped counter stays at ref_mf */
        /* With p = s * 2^32 + low, the neighbours' starts are s plus or
         * minus a carry out of low +- period_fp: 64-bit arithmetic. */
        uint64_t low = (uint64_t)p & 0xFFFFFFFFu;
        if (s > x) {
            k--;
            s -= (int64_t)((m->period_fp - low + 0xFFFFFFFFu) >> 32);
        } else {
            int64_t next = s + (int64_t)((low + m->period_fp) >> 32);
            if (next <= x) {
                k++;
                s = next;
            }
        }
    }
    *start_ns = m->ref_ns + s;
    return m->ref_mf + k;
}

/* The error bound of the model's answer for host time t, asked at host time
 * `now` (the rule above).  Saturates at INT64_MAX / 2. */
static inline int64_t usbts_model_bound_ns(const struct usbts_model *m, int64_t t, int64_t now)
{
    int64_t dist = t - m->ref_ns;
    uint64_t d = dist < 0 ? (uint64_t)-dist : (uint64_t)dist;
    /* the wander's share of the slope, (d * wander) >> 32, capped: a
     * product past 64 bits is far past the cap */
    uint64_t dw, w = USBTS_MODEL_WANDER_CAP_FP;
    if (!__builtin_mul_overflow(d, m->bound_wander_fp, &dw) && (dw >> 32) < w)
        w = dw >> 32;
    uint64_t s = m->bound_slope_fp + w;
    unsigned __int128 grow = ((unsigned __int128)d * s) >> 32;
    int64_t age = now - m->heartbeat_ns;
    if (age > USBTS_MODEL_STALE_NS)
        grow += ((unsigned __int128)(uint64_t)(age - USBTS_MODEL_STALE_NS) * USBTS_MODEL_STALE_RATE_FP) >> 32;
    if (grow > (unsigned __int128)INT64_MAX / 2)
        return INT64_MAX / 2;
    return m->bound0_ns + (int64_t)grow;
}

/* True when the writer has been silent too long for the model to answer. */
static inline bool usbts_model_dead(const struct usbts_model *m, int64_t now)
{
    return now - m->heartbeat_ns > USBTS_MODEL_DEAD_NS;
}

static inline void usbts_model_pack(const struct usbts_model *m, uint64_t w[USBTS_MODEL_WORDS])
{
    w[0] = (uint64_t)m->generation | ((uint64_t)m->flags << 32);
    w[1] = (uint64_t)m->ref_ns;
    w[2] = (uint64_t)m->ref_mf;
    w[3] = m->period_fp;
    w[4] = m->rate_fp;
    w[5] = (uint64_t)m->bound0_ns;
    w[6] = m->bound_slope_fp;
    w[7] = m->bound_wander_fp;
    w[8] = (uint64_t)m->heartbeat_ns;
}

static inline void usbts_model_unpack(const uint64_t w[USBTS_MODEL_WORDS], struct usbts_model *m)
{
    m->generation = (uint32_t)w[0];
    m->flags = (uint32_t)(w[0] >> 32);
    m->ref_ns = (int64_t)w[1];
    m->ref_mf = (int64_t)w[2];
    m->period_fp = w[3];
    m->rate_fp = w[4];
    m->bound0_ns = (int64_t)w[5];
    m->bound_slope_fp = w[6];
    m->bound_wander_fp = w[7];
    m->heartbeat_ns = (int64_t)w[8];
}

/* Helpers for building a model from floating-point estimates (not used on
 * the query path). */
static inline uint64_t usbts_period_to_fp(double period_ns)
{
    return (uint64_t)(period_ns * 4294967296.0 + 0.5);
}

static inline uint64_t usbts_period_to_rate_fp(double period_ns)
{
    /* 2^64 / period_ns */
    return (uint64_t)(18446744073709551616.0 / period_ns);
}

static inline uint64_t usbts_slope_to_fp(double ns_per_ns)
{
    if (ns_per_ns < 0)
        ns_per_ns = 0;
    if (ns_per_ns > 1.0)
        ns_per_ns = 1.0;
    return (uint64_t)(ns_per_ns * 4294967296.0 + 0.5);
}

/* Growth of the rate uncertainty per ns of distance (1/ns) << 64; at most
 * 2^-20 per ns, far beyond any clock. */
static inline uint64_t usbts_wander_to_fp(double per_ns)
{
    if (!(per_ns > 0))
        return 0;
    if (per_ns > 0x1p-20)
        per_ns = 0x1p-20;
    return (uint64_t)(per_ns * 18446744073709551616.0 + 0.5);
}

#endif
