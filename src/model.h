/* SPDX-License-Identifier: MIT */
/*
 * model.h — the frame-clock model a tracker publishes and queries evaluate.
 *
 * It maps an extended (64-bit) microframe count to host-clock ns and back with
 * integer multiply-shifts only: the query path does no division.
 *
 *   start_ns(mf) = ref_ns + ((mf - ref_mf) * period_fp) >> 32
 *   mf(t)        = ref_mf + floor(((t - ref_ns) * rate_fp) >> 64)
 *   bound(t)     = bound0_ns + (|t - ref_ns| * bound_slope_fp) >> 32
 *
 * The 32-bit USB frame number is (mf >> 3) truncated to 32 bits; its low 11
 * bits are the hardware frame number, and mf's low 14 bits are MFINDEX.
 * rate_fp == 0 means the counter is stopped (controller halted): mf(t) stays
 * at ref_mf.
 */
#ifndef USBTS_MODEL_H
#define USBTS_MODEL_H

#include <stdint.h>

struct usbts_model {
    uint32_t generation;     /* 0: no model */
    uint32_t flags;          /* USBTS_MODEL_* */
    int64_t ref_ns;          /* host ns at which microframe ref_mf started */
    int64_t ref_mf;          /* extended microframe count */
    uint64_t period_fp;      /* ns per microframe, << 32 */
    uint64_t rate_fp;        /* microframes per ns, << 64 (0 = stopped) */
    int64_t bound0_ns;       /* error bound at ref_ns, ns, >= 1 */
    uint64_t bound_slope_fp; /* added bound per ns of distance from ref_ns, << 32 */
};

#define USBTS_MODEL_CAPTURED 0x1u /* at least one microframe boundary captured */
#define USBTS_MODEL_STOPPED 0x2u  /* the counter is not advancing */

static inline int64_t usbts_model_start_ns(const struct usbts_model *m, int64_t mf)
{
    __int128 d = (__int128)(mf - m->ref_mf) * (__int128)m->period_fp;
    return m->ref_ns + (int64_t)(d >> 32);
}

static inline int64_t usbts_model_mf_at(const struct usbts_model *m, int64_t t)
{
    __int128 d = (__int128)(t - m->ref_ns) * (__int128)m->rate_fp;
    return m->ref_mf + (int64_t)(d >> 64);
}

static inline int64_t usbts_model_bound_ns(const struct usbts_model *m, int64_t t)
{
    int64_t dist = t - m->ref_ns;
    uint64_t udist = dist < 0 ? (uint64_t)-dist : (uint64_t)dist;
    unsigned __int128 grow = ((unsigned __int128)udist * m->bound_slope_fp) >> 32;
    if (grow > (unsigned __int128)INT64_MAX / 2)
        return INT64_MAX / 2;
    return m->bound0_ns + (int64_t)grow;
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

#endif
