/* SPDX-License-Identifier: MIT */
/*
 * sim.c — the simulated xHCI controller.
 *
 * Its truth is a phase function: phase(h) is the (real-valued) number of
 * microframes counted at host time h, and microframe k starts where
 * phase(h) == k.  MFINDEX at h is floor(phase(h)) mod 16384.
 *
 * G(h), the count of an uninterrupted frame clock, combines a constant drift,
 * a slow wander (three sinusoids, closed-form integral), a random walk of the
 * frequency, NTP-style ramps of the host clock's own rate and an optional
 * step in it.  The walk and the ramps are piecewise linear in frequency
 * between knots whose values are a pure function of the seed and the knot's
 * index, so G is the same whatever order it is evaluated in.
 *
 * Events cut the timeline into segments: phase(h) = seg.phase + seg.mult *
 * (G(h) - G(seg.h)) on a running segment (mult: the FLADJ frame-length
 * factor), constant on a stopped one (halt, suspend, a reset's halt).  A reset
 * starts a segment at phase 0 and a new numbering; the truth looks back
 * through the segments since the latest reset.
 *
 * A read is bracketed like a real one: the register latches somewhere inside
 * [before, after], at a position drawn around `latch`, and preemptions, slow
 * runs and late wake-ups stretch or delay it.  Each kind of misfortune draws
 * from its own random stream, so switching one on leaves the others' draws
 * (and every existing scenario's numbers) as they were.  On a virtual clock
 * a read moves the clock by its duration; on the real clock it busy-waits
 * that long.  The SOF reaches the wire sof_ns after the MFINDEX edge; the
 * truth is the wire.
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
#define SEG_MAX 8
#define KNOT_CACHE 64
#define WALK_KNOT_NS 100000000.0 /* the random walk's frequency changes every 100 ms */
#define WALK_LIMIT 200e-6        /* ... and reflects off ±200 ppm, inside the estimator's prior */
#define SLEEP_GAP_NS 20000       /* a read this long after the previous one follows a sleep */
#define PI2 6.283185307179586

/* A piecewise-linear relative-rate modulation: value v_k at knot k (host
 * time h0 + k T), linear in between, v_0 = 0 and 0 before h0.  The cache
 * holds the newest KNOT_CACHE knots with their integrals from h0; knots are
 * always computed forward from 0 in one order, so their values never depend
 * on which were asked for first. */
enum pwl_kind { PWL_OFF, PWL_WALK, PWL_NTP };
struct pwl {
    enum pwl_kind kind;
    double T, amp;
    uint64_t key;
    int64_t k0; /* first cached knot */
    int n;
    double v[KNOT_CACHE], I[KNOT_CACHE];
};

struct segment {
    int64_t h;    /* host time it begins */
    double phase; /* phase at h */
    double G;     /* G(h), cached */
    double mult;  /* FLADJ factor; 0: stopped */
    bool reset;   /* a new numbering begins here */
};

struct sim {
    struct usbts_source base;
    struct usbts_sim_params p;
    uint64_t rng;                /* read duration, latch, preemption (the original stream) */
    uint64_t rng_slow, rng_wake, rng_glitch;
    int64_t h0;           /* creation time: origin of drift, wander and slew */
    double r0;            /* microframes per ns before the slew */
    double slew_factor;   /* 1 / (1 + slew) once the host clock's rate changed */
    int64_t slew_h;       /* when; INT64_MAX for never */
    double w_amp[WANDER_TERMS], w_period[WANDER_TERMS], w_phase[WANDER_TERMS];
    struct pwl walk, ntp;
    struct segment seg[SEG_MAX];
    int nseg;
    double fladj_mult;    /* the current frame-length factor */
    int slow_left;        /* reads left in the current slow run */
    int64_t last_after;   /* end of the previous read (0: none) */
    bool unplugged;
    bool vanished;        /* reads return all ones */
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
    return sqrt(-2.0 * log(uniform(s))) * cos(PI2 * uniform(s));
}

/* ---- piecewise-linear modulations ------------------------------------------ */

/* v_{k+1} from v_k: a pure function of (key, k). */
static double knot_next(const struct pwl *w, int64_t k, double v)
{
    uint64_t st = w->key ^ ((uint64_t)k * 0xD1B54A32D192ED03ull);
    if (w->kind == PWL_WALK) {
        v += w->amp * sqrt(w->T * 1e-9) * gaussian(&st);
        if (v > WALK_LIMIT)
            v = 2 * WALK_LIMIT - v;
        if (v < -WALK_LIMIT)
            v = -2 * WALK_LIMIT - v;
        return v;
    }
    return w->amp * (2 * uniform(&st) - 1); /* NTP: each knot a fresh rate offset */
}

static void pwl_init(struct pwl *w, enum pwl_kind kind, double T, double amp, uint64_t key)
{
    memset(w, 0, sizeof *w);
    w->kind = amp > 0 ? kind : PWL_OFF;
    w->T = T;
    w->amp = amp;
    w->key = key;
    w->n = 1; /* knot 0: value 0, integral 0 */
}

/* Makes knots k and k+1 cached. */
static void pwl_reach(struct pwl *w, int64_t k)
{
    if (k < w->k0) { /* behind the cache: recompute from the start, the same way */
        w->k0 = 0;
        w->n = 1;
        w->v[0] = w->I[0] = 0;
    }
    while (w->k0 + w->n - 1 < k + 1) {
        int last = w->n - 1;
        int64_t kl = w->k0 + last;
        double v = knot_next(w, kl, w->v[last]);
        double I = w->I[last] + w->T * 0.5 * (w->v[last] + v);
        if (w->n == KNOT_CACHE) {
            memmove(w->v, w->v + 1, (KNOT_CACHE - 1) * sizeof w->v[0]);
            memmove(w->I, w->I + 1, (KNOT_CACHE - 1) * sizeof w->I[0]);
            w->k0++;
            w->n--;
        }
        w->v[w->n] = v;
        w->I[w->n] = I;
        w->n++;
    }
}

/* The modulation's value and integral (ns x relative rate) d ns after h0. */
static void pwl_eval(struct pwl *w, double d, double *val, double *integral)
{
    if (w->kind == PWL_OFF || d <= 0) {
        *val = 0;
        *integral = 0;
        return;
    }
    int64_t k = (int64_t)floor(d / w->T);
    pwl_reach(w, k);
    int i = (int)(k - w->k0);
    double x = d - (double)k * w->T, slope = (w->v[i + 1] - w->v[i]) / w->T;
    *val = w->v[i] + slope * x;
    *integral = w->I[i] + w->v[i] * x + 0.5 * slope * x * x;
}

/* ---- the truth ------------------------------------------------------------ */

/* Integral of the wander term from h0 to h, in ns·(relative rate). */
static double wander_integral(const struct sim *s, double dh)
{
    double w = 0;
    for (int i = 0; i < WANDER_TERMS; i++) {
        double k = PI2 / s->w_period[i];
        w += s->w_amp[i] / k * (cos(s->w_phase[i]) - cos(k * dh + s->w_phase[i]));
    }
    return w;
}

/* The walk (frame clock faster) and the NTP ramps (host clock faster, so the
 * frame clock looks slower): their summed value and integral. */
static void modulation(struct sim *s, double d, double *val, double *integral)
{
    double wv, wi, nv, ni;
    pwl_eval(&s->walk, d, &wv, &wi);
    pwl_eval(&s->ntp, d, &nv, &ni);
    *val = wv - nv;
    *integral = wi - ni;
}

/* G(h): microframes counted from h0 to h on an uninterrupted clock. */
static double G(struct sim *s, int64_t h)
{
    double d = (double)(h - s->h0), mv, mi;
    modulation(s, d, &mv, &mi);
    double extra = s->r0 * mi;
    if (h <= s->slew_h)
        return s->r0 * (d + wander_integral(s, d)) + extra;
    double ds = (double)(s->slew_h - s->h0);
    double before = s->r0 * (ds + wander_integral(s, ds));
    return before + s->r0 * s->slew_factor * ((d - ds) + wander_integral(s, d) - wander_integral(s, ds)) + extra;
}

/* Instantaneous rate of G (microframes per ns), for Newton steps. */
static double rate(struct sim *s, double h)
{
    double d = h - (double)s->h0, w = 0, mv, mi;
    for (int i = 0; i < WANDER_TERMS; i++)
        w += s->w_amp[i] * sin(PI2 / s->w_period[i] * d + s->w_phase[i]);
    modulation(s, d, &mv, &mi);
    return s->r0 * (1 + w) * (h > (double)s->slew_h ? s->slew_factor : 1.0) + s->r0 * mv;
}

/* G at a fractional host time: G(floor) plus the rate over the fraction. */
static double G_at(struct sim *s, double h)
{
    double fl = floor(h);
    return G(s, (int64_t)fl) + (h - fl) * rate(s, h);
}

/* The segment in force at h: the newest that began at or before it (the
 * oldest kept, extrapolated, for times before them all). */
static const struct segment *seg_at(const struct sim *s, double h)
{
    for (int i = s->nseg - 1; i > 0; i--)
        if ((double)s->seg[i].h <= h)
            return &s->seg[i];
    return &s->seg[0];
}

static double seg_phase(struct sim *s, const struct segment *g, double h)
{
    return g->mult == 0 ? g->phase : g->phase + g->mult * (G_at(s, h) - g->G);
}

static double phase_at(struct sim *s, double h)
{
    return seg_phase(s, seg_at(s, h), h);
}

static void push_segment(struct sim *s, int64_t h, double phase, double mult, bool reset)
{
    if (s->nseg == SEG_MAX) {
        memmove(s->seg, s->seg + 1, (SEG_MAX - 1) * sizeof s->seg[0]);
        s->nseg--;
    }
    s->seg[s->nseg++] = (struct segment){h, phase, G(s, h), mult, reset};
}

/* Drops segments scheduled after `now` (a pending resume that an event
 * overrides). */
static void drop_future(struct sim *s, int64_t now)
{
    while (s->nseg > 1 && s->seg[s->nseg - 1].h > now)
        s->nseg--;
}

/* The host time at which phase k was reached in the current numbering: the
 * newest running segment since the latest reset whose start phase is at most
 * k (extrapolating the numbering's first segment for phases before it). */
static double time_of_phase(struct sim *s, double k)
{
    int first = 0;
    for (int i = s->nseg - 1; i >= 0; i--)
        if (s->seg[i].reset) {
            first = i;
            break;
        }
    const struct segment *g = NULL;
    for (int i = s->nseg - 1; i >= first && !g; i--)
        if (s->seg[i].mult > 0 && s->seg[i].phase <= k)
            g = &s->seg[i];
    for (int i = first; i < s->nseg && !g; i++)
        if (s->seg[i].mult > 0)
            g = &s->seg[i];
    if (!g)
        g = &s->seg[s->nseg - 1];
    double m = g->mult > 0 ? g->mult : 1.0;
    double h = (double)g->h + (k - g->phase) / (s->r0 * m);
    for (int i = 0; i < 12; i++) {
        double err = g->phase + m * (G_at(s, h) - g->G) - k;
        h -= err / (m * rate(s, h));
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
    bool is_virtual = atomic_load(&src->clock->is_virtual);
    double dur = s->p.read_ns * exp(0.1 * gaussian(&s->rng));
    double f = s->p.latch + s->p.latch_spread * (uniform(&s->rng) - 0.5);
    f = f < 0 ? 0 : f > 1 ? 1 : f;
    if (s->p.slow_prob > 0) {
        /* Slow reads come in runs (a PCIe link waking from a power state, a
         * busy bus): the run's length is geometric around slow_reads. */
        if (s->slow_left == 0 && uniform(&s->rng_slow) < s->p.slow_prob)
            s->slow_left = 1 + (int)floor(-log(uniform(&s->rng_slow)) * s->p.slow_reads);
        if (s->slow_left > 0) {
            s->slow_left--;
            dur += s->p.slow_ns * exp(0.1 * gaussian(&s->rng_slow));
        }
    }
    double latch_off = f * dur, total = dur;
    if (s->p.preempt_prob > 0 && uniform(&s->rng) < s->p.preempt_prob) {
        double stretch = -s->p.preempt_us * 1000.0 * log(uniform(&s->rng));
        if (!is_virtual && stretch > REAL_STRETCH_CAP_NS)
            stretch = REAL_STRETCH_CAP_NS;
        total += stretch;
        if (uniform(&s->rng) < 0.5)
            latch_off += stretch; /* the preemption came before the latch */
    }
    /* A read that follows a sleep may begin late: the sampler's timer fired,
     * but the thread ran only later. */
    double late = 0;
    int64_t now0 = usbts_clock_now(src->clock);
    if (s->p.wake_prob > 0 && s->last_after > 0 && now0 - s->last_after >= SLEEP_GAP_NS &&
        uniform(&s->rng_wake) < s->p.wake_prob) {
        late = -s->p.wake_us * 1000.0 * log(uniform(&s->rng_wake));
        if (!is_virtual && late > REAL_STRETCH_CAP_NS)
            late = REAL_STRETCH_CAP_NS;
    }
    int64_t b, a;
    if (is_virtual) {
        b = now0 + (int64_t)ceil(late);
        a = b + (int64_t)ceil(total);
        usbts_clock_set_at_least(src->clock, a);
    } else {
        int64_t until0 = now0 + (int64_t)ceil(late);
        do
            b = usbts_monotonic_ns();
        while (b < until0);
        int64_t until = b + (int64_t)ceil(total);
        do
            a = usbts_monotonic_ns();
        while (a < until);
    }
    s->last_after = a;
    double ph = phase_at(s, (double)b + latch_off);
    uint32_t v = (uint32_t)((int64_t)floor(ph) & USBTS_MFINDEX_MASK);
    if (s->vanished) {
        v = 0xFFFFFFFFu;
    } else if (s->p.torn_prob > 0 || s->p.allones_prob > 0) {
        double u = uniform(&s->rng_glitch);
        uint64_t junk = next_u64(&s->rng_glitch);
        if (u < s->p.allones_prob)
            v = 0xFFFFFFFFu;
        else if (u < s->p.allones_prob + s->p.torn_prob) /* garbage, some reserved bit set */
            v = (uint32_t)junk | (1u << (USBTS_MFINDEX_BITS + (unsigned)((junk >> 32) % 18)));
    }
    *mfindex = v;
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

static double fladj_factor(double fladj)
{
    return 60000.0 / (59488.0 + 16.0 * fladj);
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
    s->rng_slow = p->seed ^ 0x9E3779B97F4A7C15ull;
    s->rng_wake = p->seed ^ 0xC2B2AE3D27D4EB4Full;
    s->rng_glitch = p->seed ^ 0x165667B19E3779F9ull;
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
        s->w_phase[i] = PI2 * uniform(&s->rng);
    }
    pwl_init(&s->walk, PWL_WALK, WALK_KNOT_NS, p->walk_ppm * 1e-6, p->seed * 0xA24BAED4963EE407ull + 1);
    pwl_init(&s->ntp, PWL_NTP, p->ntp_ms * 1e6, p->ntp_ppm * 1e-6, p->seed * 0x9FB21C651E98DF25ull + 2);
    s->fladj_mult = fladj_factor(p->fladj);
    double phase0 = floor(uniform(&s->rng) * USBTS_MFINDEX_WRAP) + uniform(&s->rng);
    push_segment(s, s->h0, phase0, s->fladj_mult, true);
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
    *ns = (int64_t)llround(time_of_phase(s, k) + s->p.sof_ns);
    return ERROR_SUCCESS;
}

bool usbts_sim_unplugged(const struct usbts_source *src)
{
    return ((const struct sim *)src)->unplugged;
}

/* ---- events ------------------------------------------------------------------- */

static bool parse_num(const char *v, long long lo, long long hi, long long *out)
{
    char *end;
    errno = 0;
    if (*v < '0' || *v > '9')
        return false;
    long long x = strtoll(v, &end, 10);
    if (errno || *end || x < lo || x > hi)
        return false;
    *out = x;
    return true;
}

static bool parse_ms(const char *v, long long *out)
{
    return parse_num(v, 1, 60000, out);
}

static bool is_event(const char *event, const char *prefix, long long *ms)
{
    size_t n = strlen(prefix);
    return strncmp(event, prefix, n) == 0 && parse_ms(event + n, ms);
}

DWORD usbts_sim_inject_event(struct usbts_source *src, const char *event, int64_t *stall_until_ns, char *msg,
                             size_t msglen)
{
    struct sim *s = (struct sim *)src;
    int64_t now = usbts_clock_now(src->clock);
    long long ms;
    if (strcmp(event, "reset") == 0) {
        drop_future(s, now); /* MFINDEX restarts from 0, any halt ends */
        push_segment(s, now, 0, s->fladj_mult, true);
    } else if (strcmp(event, "unplug") == 0) {
        s->unplugged = true;
    } else if (strcmp(event, "vanish") == 0) {
        s->vanished = true;
    } else if (is_event(event, "halt_ms=", &ms)) {
        double frozen = phase_at(s, (double)now);
        drop_future(s, now);
        push_segment(s, now, frozen, 0, false);
        push_segment(s, now + ms * 1000000, frozen, s->fladj_mult, false);
    } else if (is_event(event, "reset_halt_ms=", &ms)) {
        /* HCRST while halted: MFINDEX reads 0 until Run/Stop is set again. */
        drop_future(s, now);
        push_segment(s, now, 0, 0, true);
        push_segment(s, now + ms * 1000000, 0, s->fladj_mult, false);
    } else if (is_event(event, "suspend_ms=", &ms)) {
        /* No SOFs while the bus is suspended; on resume the frame timer
         * starts a fresh microframe, so the old phase does not carry over. */
        double frozen = phase_at(s, (double)now);
        drop_future(s, now);
        push_segment(s, now, frozen, 0, false);
        push_segment(s, now + ms * 1000000, floor(frozen) + 1, s->fladj_mult, false);
    } else if (strncmp(event, "fladj=", 6) == 0 && parse_num(event + 6, 0, 63, &ms)) {
        s->fladj_mult = fladj_factor((double)ms);
        const struct segment *g = &s->seg[s->nseg - 1];
        if (g->h > now) {
            s->seg[s->nseg - 1].mult = s->fladj_mult; /* halted: takes effect at the resume */
        } else if (g->mult > 0) {
            push_segment(s, now, phase_at(s, (double)now), s->fladj_mult, false);
        }
    } else if (is_event(event, "stall_ms=", &ms)) {
        if (!atomic_load(&src->clock->is_virtual)) {
            snprintf(msg, msglen, "stall_ms needs a virtual clock (open with 'sim:clock=virtual'): on the real clock "
                                  "the sampler's CPU time is the scheduler's to give");
            return ERROR_NOT_SUPPORTED;
        }
        *stall_until_ns = now + ms * 1000000;
    } else {
        snprintf(msg, msglen,
                 "unknown event '%.40s': use reset, halt_ms=N, reset_halt_ms=N, suspend_ms=N, stall_ms=N (N in "
                 "1..60000), fladj=N (0..63), vanish or unplug",
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
    p->latch_spread = 0.2;
    p->slew_at_ms = -1;
    p->slow_reads = 50;
    p->slow_ns = 5000;
    p->wake_us = 50;
    p->ntp_ms = 1000;
    p->fladj = 32;
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
    {"sof_ns", -1000, 1000, offsetof(struct usbts_sim_params, sof_ns)},
    {"latch_spread", 0, 1, offsetof(struct usbts_sim_params, latch_spread)},
    {"slow_prob", 0, 1, offsetof(struct usbts_sim_params, slow_prob)},
    {"slow_reads", 1, 100000, offsetof(struct usbts_sim_params, slow_reads)},
    {"slow_ns", 0, 1000000, offsetof(struct usbts_sim_params, slow_ns)},
    {"wake_prob", 0, 1, offsetof(struct usbts_sim_params, wake_prob)},
    {"wake_us", 0, 100000, offsetof(struct usbts_sim_params, wake_us)},
    {"torn_prob", 0, 0.5, offsetof(struct usbts_sim_params, torn_prob)},
    {"allones_prob", 0, 0.5, offsetof(struct usbts_sim_params, allones_prob)},
    {"ntp_ppm", 0, 500, offsetof(struct usbts_sim_params, ntp_ppm)},
    {"ntp_ms", 10, 600000, offsetof(struct usbts_sim_params, ntp_ms)},
    {"walk_ppm", 0, 10, offsetof(struct usbts_sim_params, walk_ppm)},
    {"fladj", 0, 63, offsetof(struct usbts_sim_params, fladj)},
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
                           "preempt_us, latch, slew_ppm, slew_at_ms, wander_ppm, sof_ns, latch_spread, slow_prob, "
                           "slow_reads, slow_ns, wake_prob, wake_us, torn_prob, allones_prob, ntp_ppm, ntp_ms, "
                           "walk_ppm, fladj",
                           name, "");
            bit = (unsigned)i;
            char *e;
            errno = 0;
            double x = strtod(val, &e);
            if (errno || *e || e == val || !isfinite(x) || x < keys[i].lo || x > keys[i].hi) {
                snprintf(msg, msglen, "%s=%.40s: use a number from %g to %g", name, val, keys[i].lo, keys[i].hi);
                return ERROR_INVALID_PARAMETER;
            }
            if (strcmp(name, "fladj") == 0 && x != floor(x)) {
                snprintf(msg, msglen, "fladj=%.40s: use a whole number from 0 to 63 (the register's 6 bits)", val);
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
