/* SPDX-License-Identifier: MIT */
/*
 * snapshot.h — one lock-free read of a tracker's model for the helpers built
 * on top of the queries (isochronous packet times, device clocks, frame-number
 * extension).
 *
 * It is the same protocol as the WinUSB queries in winusb.c: validate both
 * handles against their slots, read the model through the seqlock and the
 * clock (a vDSO read, no syscall), evaluate, then re-validate so that a racing
 * Stop or Free turns into ERROR_INVALID_HANDLE instead of values for a dead
 * handle.  Each helper call is one snapshot: "costs one query".
 */
#ifndef USBTS_SNAPSHOT_H
#define USBTS_SNAPSHOT_H

#include <stdbool.h>
#include <stdint.h>

#include "model.h"
#include "registry.h"
#include "tracker.h"

struct usbts_snapshot {
    uint32_t ii, ti;
    struct usbts_model m;
    int64_t now;
};

/* ERROR_SUCCESS, ERROR_INVALID_HANDLE or ERROR_DEVICE_NOT_CONNECTED. */
static inline DWORD usbts_snapshot_take(WINUSB_INTERFACE_HANDLE ih, HANDLE th, struct usbts_snapshot *s)
{
    if (!ih || !th || !usbts_if_valid(ih, &s->ii) || !usbts_tr_valid(th, ih, &s->ti))
        return ERROR_INVALID_HANDLE;
    uint32_t di = atomic_load_explicit(&usbts_if_slots[s->ii].dev_idx, memory_order_relaxed);
    uint32_t tracker = atomic_load_explicit(&usbts_tr_slots[s->ti].tracker, memory_order_relaxed);
    if (di >= USBTS_MAX_DEVICES || tracker >= USBTS_MAX_TRACKERS)
        return ERROR_INVALID_HANDLE;
    const struct usbts_tracker_pub *pub = &usbts_tracker_pubs[tracker];
    if (atomic_load_explicit(&usbts_dev_slots[di].unplugged, memory_order_relaxed) ||
        atomic_load_explicit(&pub->gone, memory_order_relaxed))
        return ERROR_DEVICE_NOT_CONNECTED;
    usbts_tracker_read_model(pub, &s->m);
    s->now = usbts_clock_now(&pub->clock);
#ifdef USBTS_MODEL_DEAD_NS
    /* A model whose writer fell silent answers nothing (model.h). */
    if (usbts_model_dead(&s->m, s->now))
        return ERROR_GEN_FAILURE;
#endif
    return ERROR_SUCCESS;
}

static inline bool usbts_snapshot_still_valid(WINUSB_INTERFACE_HANDLE ih, HANDLE th, const struct usbts_snapshot *s)
{
    return atomic_load_explicit(&usbts_tr_slots[s->ti].handle, memory_order_acquire) == (uint64_t)(uintptr_t)th &&
           atomic_load_explicit(&usbts_if_slots[s->ii].handle, memory_order_acquire) == (uint64_t)(uintptr_t)ih;
}

/* The model's error bound for host time t (>= 1), asked now.  The one place
 * that knows the bound's signature: the model that ages its bound with the
 * writer's silence (USBTS_MODEL_DEAD_NS defined) takes the time of asking. */
static inline int64_t usbts_snapshot_bound(const struct usbts_snapshot *s, int64_t t)
{
#ifdef USBTS_MODEL_DEAD_NS
    int64_t b = usbts_model_bound_ns(&s->m, t, s->now);
#else
    (void)s->now;
    int64_t b = usbts_model_bound_ns(&s->m, t);
#endif
    return b < 1 ? 1 : b;
}

/* Sets the last error for a failed snapshot and returns FALSE. */
BOOL usbts_snapshot_fail(DWORD err);

#endif
