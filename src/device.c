/* SPDX-License-Identifier: MIT */
/*
 * device.c — devices: usbts_open/usbts_close, device information, and the
 * simulated controller's native calls.  Also the registry's lock and slots.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devspec.h"
#include "failpoint.h"
#include "lasterror.h"
#include "registry.h"
#include "sim.h"
#include "tracker.h"
#include "unaligned.h"

struct usbts_dev_slot usbts_dev_slots[USBTS_MAX_DEVICES];
struct usbts_if_slot usbts_if_slots[USBTS_MAX_INTERFACES];
struct usbts_tr_slot usbts_tr_slots[USBTS_MAX_TRACKING];

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;

void usbts_registry_lock(void)
{
    pthread_mutex_lock(&registry_mu);
}

void usbts_registry_unlock(void)
{
    pthread_mutex_unlock(&registry_mu);
}

static int free_slot(_Atomic uint64_t *first, size_t stride, int count)
{
    for (int i = 0; i < count; i++) {
        _Atomic uint64_t *h = (_Atomic uint64_t *)((char *)first + (size_t)i * stride);
        if (atomic_load_explicit(h, memory_order_relaxed) == 0)
            return i;
    }
    return -1;
}

int usbts_if_slot_free(void)
{
    return free_slot(&usbts_if_slots[0].handle, sizeof usbts_if_slots[0], USBTS_MAX_INTERFACES);
}

int usbts_tr_slot_free(void)
{
    return free_slot(&usbts_tr_slots[0].handle, sizeof usbts_tr_slots[0], USBTS_MAX_TRACKING);
}

void usbts_tr_free_locked(uint32_t tr_idx)
{
    struct usbts_tr_slot *s = &usbts_tr_slots[tr_idx];
    /* Dead first, so a racing query fails cleanly from here on. */
    atomic_store_explicit(&s->handle, 0, memory_order_release);
    atomic_store_explicit(&s->owner, 0, memory_order_relaxed);
    usbts_tracker_release(atomic_load_explicit(&s->tracker, memory_order_relaxed));
}

void usbts_if_free_locked(uint32_t if_idx)
{
    struct usbts_if_slot *s = &usbts_if_slots[if_idx];
    uint64_t h = atomic_load_explicit(&s->handle, memory_order_relaxed);
    atomic_store_explicit(&s->handle, 0, memory_order_release);
    for (uint32_t i = 0; i < USBTS_MAX_TRACKING; i++)
        if (atomic_load_explicit(&usbts_tr_slots[i].handle, memory_order_relaxed) != 0 &&
            atomic_load_explicit(&usbts_tr_slots[i].owner, memory_order_relaxed) == h)
            usbts_tr_free_locked(i);
}

bool usbts_dev_connected_locked(uint32_t dev_idx)
{
    struct usbts_dev_slot *s = &usbts_dev_slots[dev_idx];
    if (atomic_load(&s->unplugged) || atomic_load(&usbts_tracker_pubs[atomic_load(&s->tracker)].gone))
        return false;
    if (s->dev->real_open && !usbts_backend_present(&s->dev->real)) {
        atomic_store(&s->unplugged, true);
        return false;
    }
    return true;
}

/* ---- open / close ----------------------------------------------------------- */

static DWORD real_source_factory(const void *ctx, struct usbts_hostclock *clock, struct usbts_source **out, char *msg,
                                 size_t msglen)
{
    return usbts_backend_source_open((const struct usbts_realdev *)ctx, clock, out, msg, msglen);
}

static bool real_present(const void *ctx)
{
    return usbts_backend_present((const struct usbts_realdev *)ctx);
}

static DWORD open_sim(const struct usbts_devspec *spec, struct usbts_device *d, char *msg, size_t msglen)
{
    DWORD err = usbts_tracker_get(NULL, spec->sim.virtual_clock, &d->tracker);
    if (err != ERROR_SUCCESS) {
        snprintf(msg, msglen, "too many controllers open at once (at most %d); close some devices",
                 USBTS_MAX_TRACKERS);
        return err;
    }
    struct usbts_source *src;
    err = usbts_sim_create(&spec->sim, &usbts_tracker_pubs[d->tracker].clock, &src);
    if (err != ERROR_SUCCESS) {
        usbts_tracker_put(d->tracker);
        snprintf(msg, msglen, "out of memory creating the simulated controller");
        return err;
    }
    usbts_tracker_set_source(d->tracker, src);
    d->is_sim = true;
    snprintf(d->info.Controller, sizeof d->info.Controller, "sim");
    snprintf(d->info.Driver, sizeof d->info.Driver, "xhci_hcd");
    snprintf(d->info.Source, sizeof d->info.Source, "sim");
    d->info.VendorId = 0x1d6b; /* the Linux Foundation's id, as root hubs use */
    d->info.ProductId = 0x0104;
    d->info.BusNumber = 1;
    d->info.DeviceAddress = 2;
    d->info.Speed = HighSpeed;
    d->info.IsSimulated = TRUE;
    d->info.IsVirtualClock = spec->sim.virtual_clock ? TRUE : FALSE;
    return ERROR_SUCCESS;
}

static DWORD open_real(const struct usbts_devspec *spec, struct usbts_device *d, atomic_bool *unplugged, char *msg,
                       size_t msglen)
{
    DWORD err = usbts_backend_open(spec, &d->real, msg, msglen);
    if (err != ERROR_SUCCESS)
        return err;
    err = usbts_tracker_get(d->real.tracker_key, false, &d->tracker);
    if (err == ERROR_SUCCESS) {
        err = usbts_tracker_set_factory(d->tracker, real_source_factory, &d->real, sizeof d->real);
        if (err == ERROR_SUCCESS)
            err = usbts_tracker_watch(d->tracker, real_present, &d->real, unplugged);
        if (err != ERROR_SUCCESS)
            usbts_tracker_put(d->tracker);
    }
    if (err != ERROR_SUCCESS) {
        usbts_backend_close(&d->real);
        snprintf(msg, msglen, "out of memory or too many controllers open");
        return err;
    }
    d->real_open = true;
    snprintf(d->info.Controller, sizeof d->info.Controller, "%s", d->real.controller);
    snprintf(d->info.Driver, sizeof d->info.Driver, "%s", d->real.driver);
    d->info.VendorId = d->real.vid;
    d->info.ProductId = d->real.pid;
    d->info.BusNumber = d->real.bus;
    d->info.DeviceAddress = d->real.addr;
    d->info.Speed = d->real.speed;
    return ERROR_SUCCESS;
}

HANDLE usbts_open(const char *spec)
{
    char msg[512] = "";
    struct usbts_devspec ds;
    DWORD err = usbts_devspec_parse(spec, &ds, msg, sizeof msg);
    if (err != ERROR_SUCCESS) {
        usbts_fail_msg(err, msg);
        return INVALID_HANDLE_VALUE;
    }
    struct usbts_device *d = usbts_failpoint() ? NULL : calloc(1, sizeof *d);
    if (!d) {
        usbts_fail(ERROR_NOT_ENOUGH_MEMORY, "out of memory opening '%.64s'", spec);
        return INVALID_HANDLE_VALUE;
    }
    d->real.usbfs_fd = -1;
    snprintf(d->info.Spec, sizeof d->info.Spec, "%s", spec);

    usbts_registry_lock();
    int idx = free_slot(&usbts_dev_slots[0].handle, sizeof usbts_dev_slots[0], USBTS_MAX_DEVICES);
    if (idx < 0) {
        err = ERROR_NOT_ENOUGH_MEMORY;
        snprintf(msg, sizeof msg, "too many devices open at once (at most %d); close some with usbts_close",
                 USBTS_MAX_DEVICES);
    } else {
        struct usbts_dev_slot *s = &usbts_dev_slots[idx];
        atomic_store(&s->unplugged, false);
        err = ds.kind == USBTS_SPEC_SIM ? open_sim(&ds, d, msg, sizeof msg)
                                        : open_real(&ds, d, &s->unplugged, msg, sizeof msg);
    }
    HANDLE h = INVALID_HANDLE_VALUE;
    if (err == ERROR_SUCCESS) {
        struct usbts_dev_slot *s = &usbts_dev_slots[idx];
        s->dev = d;
        atomic_store_explicit(&s->tracker, d->tracker, memory_order_relaxed);
        uint64_t hv = usbts_handle_new(USBTS_HK_DEVICE, (uint32_t)idx);
        atomic_store_explicit(&s->handle, hv, memory_order_release);
        h = (HANDLE)(uintptr_t)hv;
    }
    usbts_registry_unlock();
    if (err != ERROR_SUCCESS) {
        free(d);
        usbts_fail_msg(err, msg);
    }
    return h;
}

BOOL usbts_close(HANDLE device)
{
    uint32_t idx;
    usbts_registry_lock();
    if (!usbts_dev_valid(device, &idx)) {
        usbts_registry_unlock();
        return usbts_fail(ERROR_INVALID_HANDLE, "not an open device handle (closed already, or never opened)");
    }
    struct usbts_dev_slot *s = &usbts_dev_slots[idx];
    atomic_store_explicit(&s->handle, 0, memory_order_release);
    for (uint32_t i = 0; i < USBTS_MAX_INTERFACES; i++)
        if (atomic_load_explicit(&usbts_if_slots[i].handle, memory_order_relaxed) != 0 &&
            atomic_load_explicit(&usbts_if_slots[i].dev_idx, memory_order_relaxed) == idx)
            usbts_if_free_locked(i);
    struct usbts_device *d = s->dev;
    if (d->real_open) {
        usbts_tracker_unwatch(d->tracker, &s->unplugged);
        usbts_backend_close(&d->real);
    }
    usbts_tracker_put(d->tracker);
    s->dev = NULL;
    usbts_registry_unlock();
    free(d);
    return TRUE;
}

/* Looks up a device under the registry lock; on failure the lock is released
 * and the last error set. */
static bool lock_device(HANDLE device, uint32_t *idx)
{
    usbts_registry_lock();
    if (usbts_dev_valid(device, idx))
        return true;
    usbts_registry_unlock();
    usbts_fail(ERROR_INVALID_HANDLE, "not an open device handle (closed already, or never opened)");
    return false;
}

static bool lock_sim(HANDLE device, uint32_t *idx)
{
    if (!lock_device(device, idx))
        return false;
    if (!usbts_dev_slots[*idx].dev->is_sim) {
        usbts_registry_unlock();
        usbts_fail(ERROR_NOT_SUPPORTED, "this call needs a simulated controller (a device opened with a 'sim' spec)");
        return false;
    }
    return true;
}

BOOL usbts_get_device_info(HANDLE device, USBTS_DEVICE_INFO *info)
{
    uint32_t idx;
    if (!info)
        return usbts_fail(ERROR_INVALID_PARAMETER, "usbts_get_device_info needs somewhere to write: Info is NULL");
    if (!lock_device(device, &idx))
        return FALSE;
    struct usbts_device *d = usbts_dev_slots[idx].dev;
    struct usbts_tracker_status st;
    usbts_tracker_status(d->tracker, &st);
    if (st.source[0])
        snprintf(d->info.Source, sizeof d->info.Source, "%s", st.source);
    *info = d->info;
    usbts_registry_unlock();
    return TRUE;
}

BOOL usbts_get_tracking_stats(HANDLE device, USBTS_TRACKING_STATS *stats)
{
    uint32_t idx;
    if (!stats)
        return usbts_fail(ERROR_INVALID_PARAMETER, "usbts_get_tracking_stats needs somewhere to write: Stats is NULL");
    if (!lock_device(device, &idx))
        return FALSE;
    struct usbts_tracker_status st;
    usbts_tracker_status(usbts_dev_slots[idx].dev->tracker, &st);
    usbts_registry_unlock();
    memset(stats, 0, sizeof *stats);
    stats->Reads = st.est.reads;
    stats->Captures = st.est.captures;
    stats->Rejected = st.est.rejected;
    stats->Discontinuities = st.est.discontinuities;
    stats->BracketNs = st.est.bracket_ns;
    stats->RatePpm = st.est.rate_ppm;
    stats->Window = st.est.window;
    stats->Sampling = st.users > 0;
    return TRUE;
}

BOOL usbts_now_ns(HANDLE device, LONGLONG *ns)
{
    uint32_t idx;
    if (!ns)
        return usbts_fail(ERROR_INVALID_PARAMETER, "usbts_now_ns needs somewhere to write: Ns is NULL");
    if (!usbts_dev_valid(device, &idx))
        return usbts_fail(ERROR_INVALID_HANDLE, "not an open device handle (closed already, or never opened)");
    usbts_store_i64(ns, usbts_clock_now(&usbts_tracker_pubs[atomic_load(&usbts_dev_slots[idx].tracker)].clock));
    return TRUE;
}

/* ---- the simulated controller's calls ---------------------------------------- */

struct sim_read_args {
    int64_t before, after;
    uint32_t mfindex;
};

static DWORD do_sim_read(struct usbts_tracker_pub *pub, struct usbts_source *src, void *arg)
{
    (void)pub;
    struct sim_read_args *a = arg;
    return usbts_source_read(src, &a->before, &a->mfindex, &a->after);
}

BOOL usbts_sim_read(HANDLE device, LONGLONG *before_ns, ULONG *mfindex, LONGLONG *after_ns)
{
    uint32_t idx;
    if (!before_ns || !mfindex || !after_ns)
        return usbts_fail(ERROR_INVALID_PARAMETER, "usbts_sim_read needs three output pointers");
    if (!lock_sim(device, &idx))
        return FALSE;
    struct sim_read_args a;
    DWORD err = usbts_tracker_with_source(usbts_dev_slots[idx].dev->tracker, do_sim_read, &a);
    usbts_registry_unlock();
    if (err != ERROR_SUCCESS)
        return usbts_fail(err, "the simulated controller is unplugged");
    usbts_store_i64(before_ns, a.before);
    usbts_store_u32(mfindex, a.mfindex);
    usbts_store_i64(after_ns, a.after);
    return TRUE;
}

BOOL usbts_sim_advance(HANDLE device, ULONGLONG ns)
{
    uint32_t idx;
    if (!lock_sim(device, &idx))
        return FALSE;
    struct usbts_device *d = usbts_dev_slots[idx].dev;
    if (!d->info.IsVirtualClock) {
        usbts_registry_unlock();
        return usbts_fail(ERROR_NOT_SUPPORTED, "usbts_sim_advance needs a virtual clock: open with 'sim:clock=virtual'");
    }
    DWORD err = usbts_tracker_advance(d->tracker, ns);
    usbts_registry_unlock();
    if (err != ERROR_SUCCESS)
        return usbts_fail(err,
                          "cannot advance the virtual clock by %llu ns: at most 2^61 ns at a time, to at most 2^62 ns",
                          (unsigned long long)ns);
    return TRUE;
}

struct sim_truth_args {
    uint32_t frame, microframe;
    int64_t ns;
};

static DWORD do_sim_truth(struct usbts_tracker_pub *pub, struct usbts_source *src, void *arg)
{
    (void)pub;
    struct sim_truth_args *a = arg;
    return usbts_sim_truth_ns(src, a->frame, a->microframe, &a->ns);
}

BOOL usbts_sim_truth(HANDLE device, ULONG usb_frame, ULONG microframe, LONGLONG *qpc_ns)
{
    uint32_t idx;
    if (!qpc_ns)
        return usbts_fail(ERROR_INVALID_PARAMETER, "usbts_sim_truth needs somewhere to write: QpcNs is NULL");
    if (microframe > 7)
        return usbts_fail(ERROR_INVALID_PARAMETER, "microframe %u out of range: a frame has microframes 0..7",
                          (unsigned)microframe);
    if (!lock_sim(device, &idx))
        return FALSE;
    struct sim_truth_args a = {usb_frame, microframe, 0};
    DWORD err = usbts_tracker_with_source(usbts_dev_slots[idx].dev->tracker, do_sim_truth, &a);
    usbts_registry_unlock();
    if (err != ERROR_SUCCESS)
        return usbts_fail(err, "no true time for frame %u microframe %u", (unsigned)usb_frame, (unsigned)microframe);
    usbts_store_i64(qpc_ns, a.ns);
    return TRUE;
}

struct sim_inject_args {
    const char *event;
    int64_t stall_until;
    char msg[256];
};

static DWORD do_sim_inject(struct usbts_tracker_pub *pub, struct usbts_source *src, void *arg)
{
    struct sim_inject_args *a = arg;
    DWORD err = usbts_sim_inject_event(src, a->event, &a->stall_until, a->msg, sizeof a->msg);
    if (err == ERROR_SUCCESS && usbts_sim_unplugged(src))
        atomic_store(&pub->gone, true);
    return err;
}

BOOL usbts_sim_inject(HANDLE device, const char *event)
{
    uint32_t idx;
    if (!event)
        return usbts_fail(ERROR_INVALID_PARAMETER,
                          "no event given: use reset, halt_ms=N, stall_ms=N (virtual clock) or unplug");
    if (!lock_sim(device, &idx))
        return FALSE;
    struct usbts_dev_slot *s = &usbts_dev_slots[idx];
    struct sim_inject_args a = {event, 0, ""};
    DWORD err = usbts_tracker_with_source(s->dev->tracker, do_sim_inject, &a);
    if (err == ERROR_SUCCESS && a.stall_until)
        usbts_tracker_stall(s->dev->tracker, a.stall_until);
    if (err == ERROR_SUCCESS && atomic_load(&usbts_tracker_pubs[s->dev->tracker].gone))
        atomic_store(&s->unplugged, true);
    usbts_registry_unlock();
    if (err != ERROR_SUCCESS)
        return usbts_fail_msg(err, a.msg);
    return TRUE;
}
