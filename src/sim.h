/* SPDX-License-Identifier: MIT */
/*
 * sim.h — the simulated xHCI controller: a frame-clock source whose truth is
 * known, with a real (CLOCK_MONOTONIC) or virtual host clock.
 *
 * Not thread-safe by itself: every call on one sim is serialised by its
 * tracker's mutex.
 */
#ifndef USBTS_SIM_H
#define USBTS_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "source.h"

struct usbts_sim_params {
    bool virtual_clock;   /* clock=virtual */
    uint64_t seed;        /* seed=N */
    double drift_ppm;     /* frame-clock rate error against the host clock, |d| <= 1000 */
    double read_ns;       /* median duration of one register read */
    double preempt_prob;  /* chance a read is stretched by a preemption */
    double preempt_us;    /* mean stretch */
    double latch;         /* mean latch position inside the bracket, 0..1 */
    double slew_ppm;      /* host-clock rate change ... */
    double slew_at_ms;    /* ... this long after creation (negative: never) */
    double wander_ppm;    /* amplitude of slow random wander of the frame-clock rate */
    bool boot_anchored;   /* not a spec key: the daemon's sim counts from host time 0 (boot), so the
                             same seed gives the same phase in a restarted daemon */
};

/* Defaults: clock=real, seed=1, drift 0, read_ns 500, no preemption,
 * preempt_us 200, latch 0.5, no slew, no wander. */
void usbts_sim_params_default(struct usbts_sim_params *p);

/* Parses "key=value,key=value" (may be NULL or "").  Unknown keys, malformed
 * or out-of-range values: ERROR_INVALID_PARAMETER with a message naming the
 * key and the accepted range. */
DWORD usbts_sim_params_parse(const char *kv, struct usbts_sim_params *p, char *msg, size_t msglen);

/* Creates the simulated controller as a frame-clock source reading `clock`.
 * For a virtual clock it sets the clock's initial value. */
DWORD usbts_sim_create(const struct usbts_sim_params *p, struct usbts_hostclock *clock, struct usbts_source **out);

bool usbts_is_sim_source(const struct usbts_source *s);

/* True host-clock ns at which (usb_frame, microframe) started: current
 * generation, the frame nearest the current one with usb_frame's low 11 bits. */
DWORD usbts_sim_truth_ns(struct usbts_source *s, uint32_t usb_frame, uint32_t microframe, int64_t *ns);

/* Applies an event: "reset", "halt_ms=N", "stall_ms=N", "unplug".  For
 * stall_ms, *stall_until_ns receives the host time until which the sampler
 * gets no CPU (the caller enforces it); otherwise it is left alone.
 * ERROR_INVALID_PARAMETER for an unknown or malformed event;
 * ERROR_NOT_SUPPORTED for stall_ms on a real clock. */
DWORD usbts_sim_inject_event(struct usbts_source *s, const char *event, int64_t *stall_until_ns, char *msg,
                             size_t msglen);

bool usbts_sim_unplugged(const struct usbts_source *s);

#endif
