/* SPDX-License-Identifier: MIT */
/*
 * uvc_clock.h — a UVC camera's clock (STC, the clock its PTS and SCR count
 * in) on the host's timeline.  Pure: the caller has already put each SCR's
 * SOF on the host clock (uvc.c does that with one query); here are the fit,
 * the checks on what the camera sends, and the fallback.
 *
 * Normal mode: each new SCR is a pair (STC, host time of the SOF it was
 * latched at); the device-clock fit (devclock_fit.h) maps a PTS to host time
 * with its bound.
 *
 * Checks, each against a defect real cameras have (the kernel carries quirks
 * for them):
 *  - a repeated SCR (the same STC and SOF again) adds nothing and is skipped;
 *  - an STC must agree with the receptions (against the previous SCR's, within
 *    20 ms): garbage STCs go nowhere, unless 8 in a row agree with each other;
 *  - two consecutive SCRs must agree: the SOF times they name and their STC
 *    difference (at the nominal rate, +-1500 ppm) within 200 us;
 *  - a SOF may not lie after the reception of the header that carries it;
 *  - of the newest 32 SCRs, one at least must have been received within
 *    3 ms of its SOF (a camera whose SOF counter runs on its own clock passes
 *    the checks above but names frames far from the bus's).
 * A failed check marks a pair bad; 4 bad of the last 32, or the latency
 * floor, declare the SOF counter junk.  Junk means fallback: the STC is fitted
 * to the reception times instead, the line moved down to their lower envelope
 * and then by half the same 3 ms, with that half added to the bound: larger,
 * never wrongly small while the assumption holds.  32 good pairs in a row end
 * it (the SOF fit restarts both ways round, so junk never stays in it).
 *
 * The one assumption, behind both the floor and the fallback: among 32
 * headers with new SCRs, one reaches the host within 3 ms of the SOF its SCR
 * names.  An isochronous camera meets it easily (a high-speed URB lasts at
 * most 4 ms and the payloads fall all over it); a bulk camera sending a whole
 * frame as one slow transfer may not, and is then reported junk (a larger
 * bound) even if its SOF is sound.  A SOF counter that runs on its own but
 * stays within 3 ms of the bus cannot be told from latency; it shows only
 * when it slips a frame against the bus.
 */
#ifndef USBTS_UVC_CLOCK_H
#define USBTS_UVC_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "devclock_fit.h"

#define USBTS_UVC_RECV_RING 64
#define USBTS_UVC_CHECK_RING 32
#define USBTS_UVC_JUNK_BAD 4                  /* bad pairs among the last 32 that mean junk */
#define USBTS_UVC_LATENCY_NS 3000000ll /* of 32 new SCRs, one at least is received this soon after its SOF */


struct usbts_uvc_clock {
    double hz;
    int64_t sof_offset_ns, sof_extra_bound_ns; /* the SOF-in-microframe allowance (flags) */
    struct usbts_dcfit sof_fit;  /* STC -> host time of the latched SOF */
    struct usbts_dcfit recv_fit; /* STC -> reception time (fallback) */
    struct {
        uint32_t stc;
        int64_t recv;
    } recv_ring[USBTS_UVC_RECV_RING];
    uint32_t recv_count, recv_head;
    /* the previous SCR, for repeats and the consecutive check */
    bool have_prev;
    uint32_t prev_stc;
    uint16_t prev_sof;
    int64_t prev_sof_ns;
    uint32_t prev_frame_gen;
    /* the last 32 checks */
    uint32_t bad_bits, checks;
    int64_t lat_ring[USBTS_UVC_CHECK_RING];
    uint32_t lat_count, lat_head;
    bool junk;
    uint32_t cand_run; /* SCRs in a row that contradict the reference but agree with each other */
    uint32_t cand_stc;
    int64_t cand_recv;
    /* figures */
    uint64_t scrs, repeats, bad, junk_episodes;
};

/* false: no memory.  hz > 0 (dwClockFrequency). */
bool usbts_uvc_clock_init(struct usbts_uvc_clock *c, double hz, int64_t sof_offset_ns, int64_t sof_extra_bound_ns);
void usbts_uvc_clock_free(struct usbts_uvc_clock *c);

/* One SCR: its STC and raw 11-bit SOF, that SOF's host time and bound under
 * frame-clock generation gen, and when the header carrying it was received. */
void usbts_uvc_clock_add(struct usbts_uvc_clock *c, uint32_t stc, uint16_t sof, int64_t sof_ns, int64_t sof_bound,
                         uint32_t gen, int64_t recv_ns);

#define USBTS_UVC_MAP_SOF 1      /* from the SOF fit */
#define USBTS_UVC_MAP_FALLBACK 2 /* from reception times */

/* Host time and bound at camera time pts; 0 when nothing answers yet, else
 * USBTS_UVC_MAP_*.  *gen: the frame generation the SOF fit is built on. */
int usbts_uvc_clock_map(const struct usbts_uvc_clock *c, uint32_t pts, int64_t *host, int64_t *bound,
                        uint32_t *gen, uint32_t *fit_gen, uint32_t *pairs);

#endif
