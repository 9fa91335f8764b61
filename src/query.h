/* SPDX-License-Identifier: MIT */
/*
 * query.h — the one native query path (in winusb.c), shared by the
 * nanosecond calls on every host timeline (timeline.c).
 */
#ifndef USBTS_QUERY_H
#define USBTS_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "usbtimesync/usbtimesync.h"

/* Moves answers from the tracker's host clock onto another timeline: added to
 * every start time, and its uncertainty to every bound. */
struct usbts_clock_shift {
    int64_t offset_ns;
    int64_t uncertainty_ns;
};

/* Validates both handles, reads ONE model snapshot and evaluates n
 * (frame, microframe) pairs in it (microframes NULL: all 0), each frame read
 * as the 32-bit frame number nearest the current one.  Writes start_ns[n],
 * and when not NULL bound_ns[n] (>= 1) and mf_out[n] (extended microframe
 * counts).  shift may be NULL (the tracker's own clock).  FALSE with the last
 * error set, and nothing meaningful written, on any failure: a microframe
 * above 7 anywhere in the array fails the whole call. */
BOOL usbts_query_frames(WINUSB_INTERFACE_HANDLE ih, HANDLE th, size_t n, const ULONG *frames, const ULONG *microframes,
                        const struct usbts_clock_shift *shift, int64_t *start_ns, int64_t *bound_ns, int64_t *mf_out,
                        uint32_t *generation);

/* One frame through usbts_query_frames, as a USBTS_FRAME_TIME (OffsetNs 0):
 * usbts_frame_to_ns (shift NULL) and usbts_frame_to_clock_ns share it. */
BOOL usbts_query_frame_time(WINUSB_INTERFACE_HANDLE ih, HANDLE th, ULONG frame, ULONG microframe,
                            const struct usbts_clock_shift *shift, USBTS_FRAME_TIME *out);

#endif
