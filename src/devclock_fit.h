/* SPDX-License-Identifier: MIT */
/*
 * devclock_fit.h — a device clock on the host's timeline: a robust straight
 * line through (device time, host time) pairs, with an honest bound.
 *
 * Pure math: no I/O, no clock, no thread, no allocation after create.
 *
 * Each pair is a device timestamp (ticks of its own counter, which may wrap)
 * and the host time of the SOF it was latched at, with that host time's error
 * bound.  The fit keeps the newest `window` pairs, fits host = a + b·x by
 * least squares (x: device ticks from the newest pair), sets aside pairs more
 * than 5 robust sigmas off (firmware latency spikes, a late interrupt), and
 * refits.  The bound on a mapped time is the line's own standard error at
 * that point times a Student-like factor for the number of pairs, plus the
 * host times' bound (their common error the scatter cannot show).
 *
 * A generation is one continuous stretch: a new frame-clock generation, or a
 * device counter that steps backwards, starts a new one with an empty fit.
 */
#ifndef USBTS_DEVCLOCK_FIT_H
#define USBTS_DEVCLOCK_FIT_H

#include <stdbool.h>
#include <stdint.h>

struct usbts_dc_pair {
    int64_t dev;   /* unwrapped device ticks */
    int64_t host;  /* host ns of the SOF */
    int64_t bound; /* its error bound, ns */
};

struct usbts_dcfit {
    double hz;           /* nominal device ticks per second */
    unsigned bits;       /* counter width */
    uint32_t window;     /* pairs kept */
    struct usbts_dc_pair *ring;
    bool *outlier;       /* per ring slot, from the last fit */
    double *scratch;     /* 2 * window doubles for medians */
    uint32_t count, head; /* pairs held; next slot to write */
    bool have_last;
    uint64_t last_raw;
    int64_t last_ext;    /* unwrapped value of the newest pair */
    uint32_t generation; /* 1, 2, ... */
    uint32_t frame_generation;
    /* the current fit: host = host_ref + a + b * (dev - dev_ref) */
    bool ready;
    int64_t dev_ref, host_ref;
    double a, b, xbar, sxx, sigma, k, host_bound;
    uint32_t inliers;
    bool last_rejected;
};

/* false: bad arguments (hz <= 0 or not finite, bits outside 8..64, window
 * outside 8..4096) or no memory. */
bool usbts_dcfit_init(struct usbts_dcfit *f, double hz, unsigned bits, uint32_t window);
void usbts_dcfit_free(struct usbts_dcfit *f);

/* Adds a pair.  *restarted: it began a new generation. */
void usbts_dcfit_add(struct usbts_dcfit *f, uint64_t dev_raw, int64_t host_ns, int64_t host_bound_ns,
                     uint32_t frame_generation, bool *restarted);

/* Host time and bound for a raw device time (unwrapped next to the newest
 * pair).  false until ready (4 pairs that agree). */
bool usbts_dcfit_map(const struct usbts_dcfit *f, uint64_t dev_raw, int64_t *host_ns, int64_t *bound_ns);

/* Device rate against the host clock in ppm, and host ns at device count 0. */
double usbts_dcfit_rate_ppm(const struct usbts_dcfit *f);
int64_t usbts_dcfit_offset_ns(const struct usbts_dcfit *f);

#endif
