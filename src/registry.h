/* SPDX-License-Identifier: MIT */
/*
 * registry.h — the live devices, interfaces and tracking handles.
 *
 * Slots live in static arrays and are never freed, so the lock-free query
 * path can validate a handle and read through it without any chance of
 * touching freed memory: a slot that was recycled under a query no longer
 * holds the query's handle value, which the query sees when it re-validates.
 * Every change to the registry happens under one mutex.
 */
#ifndef USBTS_REGISTRY_H
#define USBTS_REGISTRY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "backend.h"
#include "handles.h"
#include "usbtimesync/usbtimesync.h"

#define USBTS_MAX_DEVICES 256
#define USBTS_MAX_INTERFACES 1024
#define USBTS_MAX_TRACKING 4096

#define USBTS_NO_TRACKER UINT32_MAX /* a device the daemon tracks: no tracker in this process */

struct usbts_page;

struct usbts_device {
    USBTS_DEVICE_INFO info;
    bool is_sim;
    bool real_open;
    struct usbts_realdev real;
    uint32_t tracker;       /* in-process tracker, or USBTS_NO_TRACKER */
    /* served by the daemon (usbtimesyncd) */
    bool via_daemon;
    bool daemon_sim;        /* the daemon's simulated controller ("sim-daemon") */
    uint32_t daemon_id;     /* its id on the connection it was registered on */
    uint32_t daemon_epoch;  /* that connection (a new one after fork or a daemon restart) */
    uint32_t starts;        /* tracking handles started through the daemon */
    const struct usbts_page *page;
    uint32_t page_dev;      /* its presence slot in the page, or UINT32_MAX */
};

struct usbts_dev_slot {
    _Atomic uint64_t handle; /* the live handle, 0 when free */
    _Atomic uint32_t tracker;
    atomic_bool unplugged;
    struct usbts_device *dev; /* under the registry lock only */
    const struct usbts_page *_Atomic page; /* what its queries read (never freed) */
    _Atomic uint32_t page_dev;
};

struct usbts_if_slot {
    _Atomic uint64_t handle;
    _Atomic uint32_t dev_idx;
};

struct usbts_tr_slot {
    _Atomic uint64_t handle;
    _Atomic uint64_t owner; /* the interface handle it was started on */
    _Atomic uint32_t dev_idx;
    const struct usbts_page *_Atomic page;
    _Atomic uint32_t page_dev;
};

extern struct usbts_dev_slot usbts_dev_slots[USBTS_MAX_DEVICES];
extern struct usbts_if_slot usbts_if_slots[USBTS_MAX_INTERFACES];
extern struct usbts_tr_slot usbts_tr_slots[USBTS_MAX_TRACKING];

void usbts_registry_lock(void);
void usbts_registry_unlock(void);
bool usbts_registry_trylock(void);

/* Lock-free validation: true when h is the live handle of its slot. */
static inline bool usbts_dev_valid(HANDLE h, uint32_t *idx)
{
    return h && usbts_handle_index(h, USBTS_HK_DEVICE, USBTS_MAX_DEVICES, idx) &&
           atomic_load_explicit(&usbts_dev_slots[*idx].handle, memory_order_acquire) == (uint64_t)(uintptr_t)h;
}

static inline bool usbts_if_valid(HANDLE h, uint32_t *idx)
{
    return h && usbts_handle_index(h, USBTS_HK_INTERFACE, USBTS_MAX_INTERFACES, idx) &&
           atomic_load_explicit(&usbts_if_slots[*idx].handle, memory_order_acquire) == (uint64_t)(uintptr_t)h;
}

/* A tracking handle live and started on interface `owner`. */
static inline bool usbts_tr_valid(HANDLE h, HANDLE owner, uint32_t *idx)
{
    return h && usbts_handle_index(h, USBTS_HK_TRACKING, USBTS_MAX_TRACKING, idx) &&
           atomic_load_explicit(&usbts_tr_slots[*idx].handle, memory_order_acquire) == (uint64_t)(uintptr_t)h &&
           atomic_load_explicit(&usbts_tr_slots[*idx].owner, memory_order_relaxed) == (uint64_t)(uintptr_t)owner;
}

/* Is the device still there?  Checks the flag, and for a real device asks
 * the system (not for the query path).  Registry lock held. */
bool usbts_dev_connected_locked(uint32_t dev_idx);

/* Under the registry lock: the device's tracker or the daemon, whichever
 * serves it.  A Start (acquire) / its Stop (release); one frame read for
 * WinUsb_GetCurrentFrameNumber; the sampler's status. */
DWORD usbts_dev_acquire_locked(uint32_t dev_idx, bool tolerable, char *msg, size_t msglen);
void usbts_dev_release_locked(uint32_t dev_idx);
DWORD usbts_dev_read_now_locked(uint32_t dev_idx, int64_t *mf, int64_t *t_ns, char *msg, size_t msglen);

/* The query path found a shared page aging: its daemon may have died or
 * restarted, or this is a forked child it does not know.  Reconnects and
 * registers again, at most every 100 ms, never waiting for the registry
 * lock.  The only syscalls a query can make, and only on a page that is
 * already degraded. */
void usbts_dev_revive(void);

/* Under the registry lock: a free slot index, or -1. */
int usbts_if_slot_free(void);
int usbts_tr_slot_free(void);

/* Under the registry lock: stops and frees one tracking handle / every
 * tracking handle of an interface and the interface itself. */
void usbts_tr_free_locked(uint32_t tr_idx);
void usbts_if_free_locked(uint32_t if_idx);

#endif
