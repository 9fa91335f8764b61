/* SPDX-License-Identifier: MIT */
/*
 * timeline.c — frame times on CLOCK_REALTIME, CLOCK_TAI and CLOCK_BOOTTIME.
 *
 * The tracker models the frame clock against CLOCK_MONOTONIC (or a virtual
 * clock standing in for it); another timeline is MONOTONIC plus an offset
 * that the kernel may change at any moment (settimeofday, a PTP or NTP servo
 * stepping the clock, adjtimex setting the TAI offset, a suspend).  So the
 * offset is measured inside every call, from bracketed clock reads, and never
 * kept: a cached offset would silently carry an answer across a step.
 */
#include <stdbool.h>
#include <time.h>

#include "lasterror.h"
#include "query.h"
#include "usbtimesync/usbtimesync.h"

#ifndef CLOCK_TAI
#define CLOCK_TAI 11
#endif
#ifndef CLOCK_BOOTTIME
#define CLOCK_BOOTTIME 7
#endif

#define OFFSET_TRIES 3     /* brackets at most; the narrowest wins (a preempted one is wide) */
#define OFFSET_GOOD_NS 100 /* a bracket this narrow is not bettered by trying again */

static inline int64_t read_ns(clockid_t id, bool *ok)
{
    struct timespec ts;
    if (clock_gettime(id, &ts) != 0) {
        *ok = false;
        return 0;
    }
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static bool clock_known(ULONG clock, clockid_t *id)
{
    switch (clock) {
    case USBTS_CLOCK_MONOTONIC:
        *id = CLOCK_MONOTONIC;
        return true;
    case USBTS_CLOCK_REALTIME:
        *id = CLOCK_REALTIME;
        return true;
    case USBTS_CLOCK_TAI:
        *id = CLOCK_TAI;
        return true;
    case USBTS_CLOCK_BOOTTIME:
        *id = CLOCK_BOOTTIME;
        return true;
    default:
        return false;
    }
}

static BOOL bad_clock(ULONG clock)
{
    return usbts_fail(ERROR_INVALID_PARAMETER,
                      "Clock %u is not a host timeline: use USBTS_CLOCK_MONOTONIC (0), _REALTIME (1), _TAI (2) or "
                      "_BOOTTIME (3)",
                      (unsigned)clock);
}

/* The clock's offset from MONOTONIC: the clock is read between two MONOTONIC
 * reads, so MONOTONIC at that instant lies inside the bracket; its middle is
 * the estimate and half its width (rounded up) plus the 1 ns resolution of
 * each read is the uncertainty. */
static BOOL measure(ULONG clock, struct usbts_clock_shift *s)
{
    clockid_t id;
    if (!clock_known(clock, &id))
        return bad_clock(clock);
    if (clock == USBTS_CLOCK_MONOTONIC) {
        s->offset_ns = 0;
        s->uncertainty_ns = 0;
        return TRUE;
    }
    bool ok = true;
    int64_t best = INT64_MAX;
    for (int i = 0; i < OFFSET_TRIES; i++) {
        int64_t m1 = read_ns(CLOCK_MONOTONIC, &ok);
        int64_t c = read_ns(id, &ok);
        int64_t m2 = read_ns(CLOCK_MONOTONIC, &ok);
        if (!ok)
            return usbts_fail(ERROR_NOT_SUPPORTED, "this kernel has no %s clock",
                              clock == USBTS_CLOCK_TAI ? "CLOCK_TAI" : "CLOCK_BOOTTIME");
        int64_t w = m2 - m1;
        if (w < best) {
            best = w;
            s->offset_ns = c - (m1 + w / 2);
        }
        if (best <= OFFSET_GOOD_NS)
            break;
    }
    s->uncertainty_ns = (best + 1) / 2 + 1;
    return TRUE;
}

BOOL usbts_clock_offset(ULONG clock, LONGLONG *offset_ns, LONGLONG *uncertainty_ns)
{
    if (!offset_ns || !uncertainty_ns)
        return usbts_fail(ERROR_INVALID_PARAMETER, "OffsetNs and UncertaintyNs must not be NULL");
    struct usbts_clock_shift s;
    if (!measure(clock, &s))
        return FALSE;
    *offset_ns = s.offset_ns;
    *uncertainty_ns = s.uncertainty_ns;
    return TRUE;
}

BOOL usbts_frame_to_clock_ns(WINUSB_INTERFACE_HANDLE ih, HANDLE th, ULONG clock, ULONG frame, ULONG microframe,
                             USBTS_FRAME_TIME *out)
{
    if (!ih || !out)
        return usbts_fail(ERROR_INVALID_HANDLE, "InterfaceHandle or Out is NULL");
    struct usbts_clock_shift s;
    if (!measure(clock, &s))
        return FALSE;
    return usbts_query_frame_time(ih, th, frame, microframe, &s, out);
}

BOOL usbts_frames_to_clock_ns(WINUSB_INTERFACE_HANDLE ih, HANDLE th, ULONG clock, ULONG count, const ULONG *frames,
                              const ULONG *microframes, LONGLONG *start_ns, LONGLONG *bound_ns, ULONG *generation)
{
    if (!ih)
        return usbts_fail(ERROR_INVALID_HANDLE, "InterfaceHandle is NULL");
    if (!generation || (count > 0 && (!frames || !start_ns)))
        return usbts_fail(ERROR_INVALID_PARAMETER,
                          "GenerationId, and with Count > 0 UsbFrameNumbers and StartNs, must not be NULL");
    struct usbts_clock_shift s;
    if (!measure(clock, &s))
        return FALSE;
    uint32_t gen;
    if (!usbts_query_frames(ih, th, count, frames, microframes, &s, start_ns, bound_ns, NULL, &gen))
        return FALSE;
    *generation = gen;
    return TRUE;
}
