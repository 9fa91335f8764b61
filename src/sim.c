/* SPDX-License-Identifier: MIT */
/*
 * sim.c — the simulated xHCI controller.
 *
 * Its truth is a phase function: phase(h) is the (real-valued) number of
 * microframes counted at host time h, and microframe k starts where
 * phase(h) == k.  MFINDEX at h is floor(phase(h)) mod 16384.  The frame
 * clock's rate against the host clock combines a constant drift, a slow
 * wander (three sinusoids, so its integral is closed-form and memory stays
 * bounded) and an optional step in the host clock's own rate (NTP slewing
 * CLOCK_MONOTONIC).  Resets and halts start a new epoch: the phase restarts
 * from 0, or stays frozen for the halt and then continues.
 *
 * A read is bracketed like a real one: the register latches somewhere inside
 * [before, after], at a position drawn around `latch`, and preemptions
 * stretch the bracket.  On a virtual clock the read moves the clock by its
 * duration; on the real clock it busy-waits that long.
 */
#include "sim.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOMINAL_NS 125000.0
#define VIRTUAL_START_NS 1000000000LL
#define WANDER_TERMS 3
#define REAL_STRETCH_CAP_NS 5000000.0

struct sim {
    struct usbts_source base;
    struct usbts_sim_params p;
    uint64_t rng;
    int64_t h0;           /* creation time: origin of drift, wander and slew */
    double r0;            /* microframes per ns before the slew */
    double slew_factor;   /* 1 / (1 + slew) once the host clock's rate changed */
    int64_t slew_h;       /* when; INT64_MAX for never */
    double w_amp[WANDER_TERMS], w_period[WANDER_TERMS], w_phase[WANDER_TERMS];
    /* the current epoch: phase(h) = ep_phase + F(h) - F(ep_h) for h >= ep_h */
    int64_t ep_h;
    double ep_phase;
    int64_t halt_from;    /* frozen at ep_phase on [halt_from, ep_h) */
    bool unplugged;
};

static const struct usbts_source_ops sim_ops;

/* ---- randomness (deterministic for a seed) ---------------------------- */

static uint64_t next_u64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in (0, 1): never 0, so logarithms are safe. */
static double uniform(uint64_t *s)
{
    return ((double)(next_u64(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static double gaussian(uint64_t *s)
{
    return sqrt(-2.0 * log(uniform(s))) * cos(6.283185307179586 * uniform(s));
}

/* ---- the truth ------------------------------------------------------------ */

/* Integral of the wander term from h0 to h, in ns·(relative rate). */
static double wander_integral(const struct sim *s, double dh)
{
    double w = 0;
    for (int i = 0; i < WANDER_TERMS; i++) {
        double k = 6.283185307179586 / s->w_period[i];
        w += s->w_amp[i] / k * (cos(s->w_phase[i]) - cos(k * dh + s->w_phase[i]));
    }
    return w;
}

/* F(h): microframes counted from h0 to h on an uninterrupted clock. */
static double F(const struct sim *s, int64_t h)
{
    double d = (double)(h - s->h0);
    if (h <= s->slew_h)
        return s->r0 * (d + wander_integral(s, d));
    double ds = (double)(s->slew_h - s->h0);
    double before = s->r0 * (ds + wander_integral(s, ds));
    return before + s->r0 * s->slew_factor * ((d - ds) + wander_integral(s, d) - wander_integral(s, ds));
}

/* Instantaneous rate (microframes per ns), for Newton steps. */
static double rate(const struct sim *s, double h)
{
    double d = h - (double)s->h0, w = 0;
    for (int i = 0; i < WANDER_TERMS; i++)
        w += s->w_amp[i] * sin(6.283185307179586 / s->w_period[i] * d + s->w_phase[i]);
    return s->r0 * (1 + w) * (h > (double)s->slew_h ? s->slew_factor : 1.0);
}

/* F at a fractional host time: F(floor) plus the rate over the fraction. */
static double F_at(const struct sim *s, double h)
{
    double fl = floor(h);
    return F(s, (int64_t)fl) + (h - fl) * rate(s, h);
}

static double phase_at(const struct sim *s, double h)
{
    if (h < (double)s->ep_h && h >= (double)s->halt_from)
        return s->ep_phase; /* halted */
    return s->ep_phase + F_at(s, h) - F(s, s->ep_h);
}

/* The host time at which the current epoch's phase equals k (extrapolating
 * the epoch's rate for phases before its start). */
static double time_of_phase(const struct sim *s, double k)
{
    double h = (double)s->ep_h + (k - s->ep_phase) / s->r0;
    for (int i = 0; i < 8; i++) {
        double err = s->ep_phase + F_at(s, h) - F(s, s->ep_h) - k;
        h -= err / rate(s, h);
        if (fabs(err) < 1e-9)
            break;
    }
    return h;
}

/* ---- reads ------------------------------------------------------------------- */

static DWORD sim_read(struct usbts_source *src, int64_t *before, uint32_t *mfindex, int64_t *after)
{
    struct sim *s = (struct sim *)src;
    if (s->unplugged)
        return ERROR_DEVICE_NOT_CONNECTED;
    double dur = s->p.read_ns * exp(0.1 * gaussian(&s->rng));
    double f = s->p.latch + 0.2 * (uniform(&s->rng) - 0.5);
    f = f < 0 ? 0 : f > 1 ? 1 : f;
    double latch_off = f * dur, total = dur;
    if (s->p.preempt_prob > 0 && uniform(&s->rng) < s->p.preempt_prob) {
        double stretch = -s->p.preempt_us * 1000.0 * log(uniform(&s->rng));
        if (!atomic_load(&src->clock->is_virtual) && stretch > REAL_STRETCH_CAP_NS)
            stretch = REAL_STRETCH_CAP_NS;
        total += stretch;
        if (uniform(&s->rng) < 0.5)
            latch_off += stretch; /* the preemption came before the latch */
    }
    int64_t b, a;
    if (atomic_load(&src->clock->is_virtual)) {
        b = usbts_clock_now(src->clock);
        a = b + (int64_t)ceil(total);
        usbts_clock_set_at_least(src->clock, a);
    } else {
        b = usbts_monotonic_ns();
        int64_t until = b + (int64_t)ceil(total);
        do
            a = usbts_monotonic_ns();
        while (a < until);
    }
    double ph = phase_at(s, (double)b + latch_off);
    *mfindex = (uint32_t)((int64_t)floor(ph) & USBTS_MFINDEX_MASK);
    *before = b;
    *after = a;
    return ERROR_SUCCESS;
}

static void sim_destroy(struct usbts_source *src)
{
    free(src);
}

static const struct usbts_source_ops sim_ops = {"sim", sim_read, sim_destroy};

bool usbts_is_sim_source(const struct usbts_source *s)
{
    return s && s->ops == &sim_ops;
}

DWORD usbts_sim_create(const struct usbts_sim_params *p, struct usbts_hostclock *clock, struct usbts_source **out)
{
    struct sim *s = calloc(1, sizeof *s);
    if (!s)
        return ERROR_NOT_ENOUGH_MEMORY;
    s->base.ops = &sim_ops;
    s->base.clock = clock;
    s->p = *p;
    s->rng = p->seed ^ 0x5DEECE66Dull;
    if (p->virtual_clock) {
        atomic_store(&clock->is_virtual, true);
        atomic_store(&clock->virt_ns, VIRTUAL_START_NS);
    }
    s->h0 = p->boot_anchored && !p->virtual_clock ? 0 : usbts_clock_now(clock);
    s->r0 = (1.0 + p->drift_ppm * 1e-6) / NOMINAL_NS;
    s->slew_factor = 1.0 / (1.0 + p->slew_ppm * 1e-6);
    s->slew_h = p->slew_at_ms >= 0 ? s->h0 + (int64_t)(p->slew_at_ms * 1e6) : INT64_MAX;
    for (int i = 0; i < WANDER_TERMS; i++) {
        s->w_amp[i] = p->wander_ppm * 1e-6 / WANDER_TERMS;
        s->w_period[i] = (5.0 + 55.0 * uniform(&s->rng)) * 1e9;
        s->w_phase[i] = 6.283185307179586 * uniform(&s->rng);
    }
    s->ep_h = s->h0;
    s->ep_phase = floor(uniform(&s->rng) * USBTS_MFINDEX_WRAP) + uniform(&s->rng);
    s->halt_from = INT64_MAX;
    *out = &s->base;
    return ERROR_SUCCESS;
}

DWORD usbts_sim_truth_ns(struct usbts_source *src, uint32_t usb_frame, uint32_t microframe, int64_t *ns)
{
    struct sim *s = (struct sim *)src;
    if (microframe > 7)
        return ERROR_INVALID_PARAMETER;
    double now_phase = phase_at(s, (double)usbts_clock_now(src->clock));
    double low = (double)(((usb_frame & 0x7FFu) << 3) | microframe);
    double k = low + USBTS_MFINDEX_WRAP * round((now_phase - low) / USBTS_MFINDEX_WRAP);
    *ns = (int64_t)llround(time_of_phase(s, k));
    return ERROR_SUCCESS;
}

bool usbts_sim_unplugged(const struct usbts_source *src)
{
    return ((const struct sim *)src)->unplugged;
}

/* ---- events ------------------------------------------------------------------- */

static bool parse_ms(const char *v, long long *out)
{
    char *end;
    errno = 0;
    if (*v < '0' || *v > '9')
        return false;
    long long x = strtoll(v, &end, 10);
    if (errno || *end || x < 1 || x > 60000)
        return false;
    *out = x;
    return true;
}

DWORD usbts_sim_inject_event(struct usbts_source *src, const char *event, int64_t *stall_until_ns, char *msg,
                             size_t msglen)
{
    struct sim *s = (struct sim *)src;
    int64_t now = usbts_clock_now(src->clock);
    long long ms;
    if (strcmp(event, "reset") == 0) {
        s->ep_h = now; /* MFINDEX restarts from 0, any halt ends */
        s->ep_phase = 0;
        s->halt_from = INT64_MAX;
    } else if (strcmp(event, "unplug") == 0) {
        s->unplugged = true;
    } else if (strncmp(event, "halt_ms=", 8) == 0 && parse_ms(event + 8, &ms)) {
        double frozen = phase_at(s, (double)now);
        s->halt_from = now;
        s->ep_h = now + ms * 1000000;
        s->ep_phase = frozen;
    } else if (strncmp(event, "stall_ms=", 9) == 0 && parse_ms(event + 9, &ms)) {
        if (!atomic_load(&src->clock->is_virtual)) {
            snprintf(msg, msglen, "stall_ms needs a virtual clock (open with 'sim:clock=virtual'): on the real clock "
                                  "the sampler's CPU time is the scheduler's to give");
            return ERROR_NOT_SUPPORTED;
        }
        *stall_until_ns = now + ms * 1000000;
    } else {
        snprintf(msg, msglen, "unknown event '%.40s': use reset, halt_ms=N, stall_ms=N (N in 1..60000) or unplug",
                 event);
        return ERROR_INVALID_PARAMETER;
    }
    return ERROR_SUCCESS;
}

/* ---- parameters ----------------------------------------------------------------- */

void usbts_sim_params_default(struct usbts_sim_params *p)
{
    memset(p, 0, sizeof *p);
    p->seed = 1;
    p->read_ns = 500;
    p->preempt_us = 200;
    p->latch = 0.5;
    p->slew_at_ms = -1;
}

struct key {
    const char *name;
    double lo, hi;
    size_t offset; /* of a double in usbts_sim_params */
};

static const struct key keys[] = {
    {"drift_ppm", -1000, 1000, offsetof(struct usbts_sim_params, drift_ppm)},
    {"read_ns", 1, 1000000, offsetof(struct usbts_sim_params, read_ns)},
    {"preempt_prob", 0, 1, offsetof(struct usbts_sim_params, preempt_prob)},
    {"preempt_us", 0, 1000000, offsetof(struct usbts_sim_params, preempt_us)},
    {"latch", 0, 1, offsetof(struct usbts_sim_params, latch)},
    {"slew_ppm", -1000, 1000, offsetof(struct usbts_sim_params, slew_ppm)},
    {"slew_at_ms", 0, 1e9, offsetof(struct usbts_sim_params, slew_at_ms)},
    {"wander_ppm", 0, 100, offsetof(struct usbts_sim_params, wander_ppm)},
};
#define NKEYS (sizeof keys / sizeof keys[0])

static DWORD bad(char *msg, size_t msglen, const char *fmt, const char *a, const char *b)
{
    snprintf(msg, msglen, fmt, a, b);
    return ERROR_INVALID_PARAMETER;
}

DWORD usbts_sim_params_parse(const char *kv, struct usbts_sim_params *p, char *msg, size_t msglen)
{
    usbts_sim_params_default(p);
    if (!kv || !*kv)
        return ERROR_SUCCESS;
    unsigned seen = 0; /* bit per key; bits NKEYS, NKEYS+1 for clock and seed */
    const char *cur = kv;
    for (;;) {
        const char *end = strchr(cur, ',');
        size_t len = end ? (size_t)(end - cur) : strlen(cur);
        char item[128];
        if (len == 0 || len >= sizeof item)
            return bad(msg, msglen, "simulator keys '%.64s': %s", kv,
                       len ? "an item is too long" : "empty item (two commas, or a trailing comma)");
        memcpy(item, cur, len);
        item[len] = '\0';
        char *eq = strchr(item, '=');
        if (!eq || eq == item || eq[1] == '\0')
            return bad(msg, msglen, "simulator key '%.40s' needs the form key=value%s", item, "");
        *eq = '\0';
        const char *name = item, *val = eq + 1;
        unsigned bit;
        if (strcmp(name, "clock") == 0) {
            bit = NKEYS;
            if (strcmp(val, "real") == 0)
                p->virtual_clock = false;
            else if (strcmp(val, "virtual") == 0)
                p->virtual_clock = true;
            else
                return bad(msg, msglen, "clock=%.40s: use clock=real or clock=virtual%s", val, "");
        } else if (strcmp(name, "seed") == 0) {
            bit = NKEYS + 1;
            char *e;
            errno = 0;
            if (*val < '0' || *val > '9')
                return bad(msg, msglen, "seed=%.40s: %s", val, "use a non-negative whole number");
            unsigned long long x = strtoull(val, &e, 10);
            if (errno || *e)
                return bad(msg, msglen, "seed=%.40s: %s", val, "use a whole number below 2^64");
            p->seed = x;
        } else {
            size_t i;
            for (i = 0; i < NKEYS && strcmp(keys[i].name, name) != 0; i++) {
            }
            if (i == NKEYS)
                return bad(msg, msglen,
                           "unknown simulator key '%.40s'%s: use clock, seed, drift_ppm, read_ns, preempt_prob, "
                           "preempt_us, latch, slew_ppm, slew_at_ms, wander_ppm",
                           name, "");
            bit = (unsigned)i;
            char *e;
            errno = 0;
            double x = strtod(val, &e);
            if (errno || *e || e == val || !isfinite(x) || x < keys[i].lo || x > keys[i].hi) {
                snprintf(msg, msglen, "%s=%.40s: use a number from %g to %g", name, val, keys[i].lo, keys[i].hi);
                return ERROR_INVALID_PARAMETER;
            }
            *(double *)((char *)p + keys[i].offset) = x;
        }
        if (seen & (1u << bit))
            return bad(msg, msglen, "simulator key '%.40s' given twice%s", name, "");
        seen |= 1u << bit;
        if (!end)
            break;
        cur = end + 1;
    }
    if ((seen & (1u << 6)) && !(seen & (1u << 5))) /* slew_at_ms without slew_ppm */
        return bad(msg, msglen, "slew_at_ms%s needs slew_ppm%s", "", " (the size of the host clock's rate change)");
    if ((seen & (1u << 5)) && !(seen & (1u << 6)))
        p->slew_at_ms = 0; /* slew from the start */
    return ERROR_SUCCESS;
}
