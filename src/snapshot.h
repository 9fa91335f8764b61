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
#include "page.h"
#include "registry.h"
#include "tracker.h"

struct usbts_snapshot {
    uint32_t ii, ti;
    struct usbts_model m;
    int64_t now;
};

/* ERROR_SUCCESS, ERROR_INVALID_HANDLE or ERROR_DEVICE_NOT_CONNECTED. */
static inline __attribute__((always_inline)) DWORD usbts_snapshot_take(WINUSB_INTERFACE_HANDLE ih, HANDLE th, struct usbts_snapshot *s)
{
    if (!ih || !th || !usbts_if_valid(ih, &s->ii) || !usbts_tr_valid(th, ih, &s->ti))
        return ERROR_INVALID_HANDLE;
    uint32_t di = atomic_load_explicit(&usbts_if_slots[s->ii].dev_idx, memory_order_relaxed);
    const struct usbts_page *page = atomic_load_explicit(&usbts_tr_slots[s->ti].page, memory_order_relaxed);
    uint32_t page_dev = atomic_load_explicit(&usbts_tr_slots[s->ti].page_dev, memory_order_relaxed);
    if (di >= USBTS_MAX_DEVICES || !page)
        return ERROR_INVALID_HANDLE;
    if (atomic_load_explicit(&usbts_dev_slots[di].unplugged, memory_order_relaxed))
        return ERROR_DEVICE_NOT_CONNECTED;
    /* The same seam as the queries: an in-process page or the daemon's. */
    switch (usbts_page_read(page, page_dev, &s->m, &s->now)) {
    case USBTS_PAGE_OK:
        break;
    case USBTS_PAGE_AGED:
        usbts_dev_revive();
        break;
    case USBTS_PAGE_GONE:
        return ERROR_DEVICE_NOT_CONNECTED;
    default: /* a dead daemon, or a page it left mid-update */
        usbts_dev_revive();
        return ERROR_GEN_FAILURE;
    }
    /* A model whose writer fell silent answers nothing (model.h). */
    if (usbts_model_dead(&s->m, s->now))
        return ERROR_GEN_FAILURE;
    return ERROR_SUCCESS;
}

static inline bool usbts_snapshot_still_valid(WINUSB_INTERFACE_HANDLE ih, HANDLE th, const struct usbts_snapshot *s)
{
    return atomic_load_explicit(&usbts_tr_slots[s->ti].handle, memory_order_acquire) == (uint64_t)(uintptr_t)th &&
           atomic_load_explicit(&usbts_if_slots[s->ii].handle, memory_order_acquire) == (uint64_t)(uintptr_t)ih;
}

/* The model's error bound for host time t (>= 1), asked now (the bound ages
 * with the writer's silence: model.h). */
static inline int64_t usbts_snapshot_bound(const struct usbts_snapshot *s, int64_t t)
{
    int64_t b = usbts_model_bound_ns(&s->m, t, s->now);
    return b < 1 ? 1 : b;
}

/* Sets the last error for a failed snapshot and returns FALSE. */
BOOL usbts_snapshot_fail(DWORD err);

#endif
