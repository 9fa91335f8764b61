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
    /* the less kind simulator (issue #16); each off by default */
    double sof_ns;        /* the SOF reaches the wire this long after the MFINDEX edge (negative: before) */
    double latch_spread;  /* per-read spread of the latch position around `latch` (uniform, this wide) */
    double slow_prob;     /* chance per read that a run of slow reads begins */
    double slow_reads;    /* mean length of such a run, in reads */
    double slow_ns;       /* extra duration of each read in a slow run */
    double wake_prob;     /* chance that a read after a sleep starts late (a late sampler wake-up) */
    double wake_us;       /* mean lateness */
    double torn_prob;     /* chance a read returns garbage with reserved bits 31:14 set */
    double allones_prob;  /* chance a read returns 0xFFFFFFFF (a PCIe read that got no answer) */
    double ntp_ppm;       /* host clock slewed NTP-style: rate offsets up to this, ramped ... */
    double ntp_ms;        /* ... linearly from one to the next over this long */
    double walk_ppm;      /* random-walk frequency drift of the frame clock, ppm per sqrt(s) */
    double fladj;         /* xHCI FLADJ register: microframe = (59488 + 16 FLADJ) HS bit times; 32 = 125 us */
    bool boot_anchored;   /* not a spec key: the daemon's sim counts from host time 0 (boot), so the
                             same seed gives the same phase in a restarted daemon */
};

/* The largest |sof_ns| the estimator's bound allows for: an offset between
 * the MFINDEX edge and the SOF on the wire is invisible to the host (every
 * read sees the edge, never the wire), so like the latch position it can only
 * be covered, never measured.  Controller pipeline, SYNC field and a couple
 * of hub repeaters stay inside it. */
#define USBTS_SIM_SOF_COVERED_NS 250


/* Defaults: clock=real, seed=1, drift 0, read_ns 500, no preemption,
 * preempt_us 200, latch 0.5, latch_spread 0.2, no slew, no wander, sof_ns 0,
 * no slow runs (slow_reads 50, slow_ns 5000), no late wake-ups (wake_us 50),
 * no torn or all-ones reads, no NTP slew (ntp_ms 1000), no random walk,
 * fladj 32. */
void usbts_sim_params_default(struct usbts_sim_params *p);

/* Parses "key=value,key=value" (may be NULL or "").  Unknown keys, malformed
 * or out-of-range values: ERROR_INVALID_PARAMETER with a message naming the
 * key and the accepted range. */
DWORD usbts_sim_params_parse(const char *kv, struct usbts_sim_params *p, char *msg, size_t msglen);

/* Creates the simulated controller as a frame-clock source reading `clock`.
 * For a virtual clock it sets the clock's initial value. */
DWORD usbts_sim_create(const struct usbts_sim_params *p, struct usbts_hostclock *clock, struct usbts_source **out);

bool usbts_is_sim_source(const struct usbts_source *s);

/* True host-clock ns at which (usb_frame, microframe) started ON THE WIRE
 * (the SOF, sof_ns after the MFINDEX edge): current generation (since the
 * latest reset), the frame nearest the current one with usb_frame's low 11
 * bits.  Across halts, suspends and FLADJ changes it follows the clock's real
 * history, not an extrapolation. */
DWORD usbts_sim_truth_ns(struct usbts_source *s, uint32_t usb_frame, uint32_t microframe, int64_t *ns);

/* Applies an event: "reset", "halt_ms=N", "stall_ms=N", "unplug",
 * "reset_halt_ms=N" (halted first: MFINDEX reads 0 for N ms, then counts from
 * 0), "suspend_ms=N" (bus suspended: MFINDEX stands still for N ms, then a
 * fresh microframe begins at resume), "fladj=N" (0..63: the frame length
 * changes now, the count continues), "vanish" (every read returns 0xFFFFFFFF
 * from now on, as MMIO of a surprise-removed PCIe device does).  For
 * stall_ms, *stall_until_ns receives the host time until which the sampler
 * gets no CPU (the caller enforces it); otherwise it is left alone.
 * ERROR_INVALID_PARAMETER for an unknown or malformed event;
 * ERROR_NOT_SUPPORTED for stall_ms on a real clock. */
DWORD usbts_sim_inject_event(struct usbts_source *s, const char *event, int64_t *stall_until_ns, char *msg,
                             size_t msglen);

bool usbts_sim_unplugged(const struct usbts_source *s);

#endif
