/* SPDX-License-Identifier: MIT */
/*
 * device.c — devices: usbts_open/usbts_close, device information, and the
 * simulated controller's native calls.  Also the registry's lock and slots.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon_client.h"
#include "devspec.h"
#include "failpoint.h"
#include "lasterror.h"
#include "page.h"
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

bool usbts_registry_trylock(void)
{
    return pthread_mutex_trylock(&registry_mu) == 0;
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
    usbts_dev_release_locked(atomic_load_explicit(&s->dev_idx, memory_order_relaxed));
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
    const struct usbts_page *page = s->dev->page;
    if (atomic_load(&s->unplugged) || usbts_page_flag(&page->pub.gone) ||
        (s->dev->page_dev < USBTS_PAGE_MAX_DEVICES && usbts_page_flag(&page->devices[s->dev->page_dev].unplugged)))
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
    DWORD err = usbts_backend_source_open((const struct usbts_realdev *)ctx, clock, out, msg, msglen);
    if (err == ERROR_ACCESS_DENIED) {
        /* Ordinary users track through the daemon: say so first, so that a
         * long list of sources' reasons can never cut it off. */
        char why[768];
        snprintf(why, sizeof why, "%s", msg);
        snprintf(msg, msglen,
                 "tracking a real controller needs root: as an ordinary user, track through the daemon (start "
                 "usbtimesyncd as root, e.g. systemctl start usbtimesyncd, then open the device again); %s",
                 why);
    }
    return err;
}

static bool real_present(const void *ctx)
{
    return usbts_backend_present((const struct usbts_realdev *)ctx);
}

static void fill_real_info(struct usbts_device *d)
{
    snprintf(d->info.Controller, sizeof d->info.Controller, "%s", d->real.controller);
    snprintf(d->info.Driver, sizeof d->info.Driver, "%s", d->real.driver);
    d->info.VendorId = d->real.vid;
    d->info.ProductId = d->real.pid;
    d->info.BusNumber = d->real.bus;
    d->info.DeviceAddress = d->real.addr;
    d->info.Speed = d->real.speed;
}

/* ---- devices the daemon serves ------------------------------------------------- */

/* Registers d on connection `epoch`: proves access with the usbfs descriptor
 * (a real device), maps the page, and starts again the tracking handles it
 * had started on an earlier connection.  Registry lock held. */
static DWORD daemon_register_locked(struct usbts_device *d, uint32_t epoch, char *msg, size_t msglen)
{
    char req[64], reply[256];
    DWORD err;
    if (d->daemon_sim) {
        snprintf(req, sizeof req, "OPENSIM");
        err = usbts_daemon_request(req, -1, reply, sizeof reply, msg, msglen);
    } else {
        snprintf(req, sizeof req, "OPEN %u %u", (unsigned)d->real.bus, (unsigned)d->real.addr);
        err = usbts_daemon_request(req, d->real.usbfs_fd, reply, sizeof reply, msg, msglen);
    }
    if (err != ERROR_SUCCESS)
        return err;
    unsigned id, page_dev;
    char name[80];
    if (sscanf(reply, "%u %79s %u", &id, name, &page_dev) != 3) {
        snprintf(msg, msglen, "the daemon usbtimesyncd sent a reply this library does not understand");
        return ERROR_GEN_FAILURE;
    }
    const struct usbts_page *page;
    err = usbts_daemon_map_page(name, &page, msg, msglen);
    if (err == ERROR_SUCCESS && d->page && page != d->page) {
        /* Another page: another instance of the controller (rebound while
         * the daemon was away).  This device's handles are done. */
        snprintf(msg, msglen, "the controller was rebound while the daemon restarted; open the device again");
        err = ERROR_DEVICE_NOT_CONNECTED;
    }
    if (err != ERROR_SUCCESS) {
        snprintf(req, sizeof req, "CLOSE %u", id);
        char m2[256];
        (void)usbts_daemon_request(req, -1, reply, sizeof reply, m2, sizeof m2);
        return err;
    }
    d->daemon_id = id;
    d->daemon_epoch = epoch;
    d->page = page;
    d->page_dev = page_dev < USBTS_PAGE_MAX_DEVICES ? page_dev : UINT32_MAX;
    for (uint32_t i = 0; i < d->starts; i++) {
        snprintf(req, sizeof req, "START %u 1", id);
        if (usbts_daemon_request(req, -1, reply, sizeof reply, msg, msglen) != ERROR_SUCCESS)
            break; /* its handles age, then fail, honestly */
    }
    return ERROR_SUCCESS;
}

/* A connection on which d is registered (registering it again after a
 * fork or a daemon restart).  Registry lock held. */
static DWORD daemon_ready_locked(struct usbts_device *d, char *msg, size_t msglen)
{
    uint32_t epoch;
    DWORD err = usbts_daemon_connect(&epoch, msg, msglen);
    if (err == ERROR_FILE_NOT_FOUND) {
        size_t n = strlen(msg);
        snprintf(msg + n, msglen - n, ": the daemon usbtimesyncd that served this device is not running; start it "
                                      "(systemctl start usbtimesyncd)");
        return ERROR_GEN_FAILURE;
    }
    if (err == ERROR_SUCCESS && d->daemon_epoch != epoch)
        err = daemon_register_locked(d, epoch, msg, msglen);
    return err;
}

static DWORD daemon_simple_locked(struct usbts_device *d, const char *verb, const char *args, char *reply,
                                  size_t replylen, char *msg, size_t msglen)
{
    DWORD err = daemon_ready_locked(d, msg, msglen);
    if (err != ERROR_SUCCESS)
        return err;
    char req[300];
    snprintf(req, sizeof req, "%s %u%s%s", verb, d->daemon_id, args[0] ? " " : "", args);
    return usbts_daemon_request(req, -1, reply, replylen, msg, msglen);
}

DWORD usbts_dev_acquire_locked(uint32_t dev_idx, bool tolerable, char *msg, size_t msglen)
{
    struct usbts_device *d = usbts_dev_slots[dev_idx].dev;
    if (!d->via_daemon)
        return usbts_tracker_acquire(d->tracker, tolerable, msg, msglen);
    char reply[64];
    DWORD err = daemon_simple_locked(d, "START", tolerable ? "1" : "0", reply, sizeof reply, msg, msglen);
    if (err == ERROR_SUCCESS)
        d->starts++;
    return err;
}

void usbts_dev_release_locked(uint32_t dev_idx)
{
    struct usbts_device *d = usbts_dev_slots[dev_idx].dev;
    if (!d)
        return;
    if (!d->via_daemon) {
        usbts_tracker_release(d->tracker);
        return;
    }
    if (d->starts > 0)
        d->starts--;
    char reply[64], msg[256];
    /* Only on the connection it was started on: a new one started only what remained. */
    if (!usbts_daemon_dead() && d->daemon_epoch != 0) {
        uint32_t epoch;
        if (usbts_daemon_connect(&epoch, msg, sizeof msg) == ERROR_SUCCESS && epoch == d->daemon_epoch)
            (void)daemon_simple_locked(d, "STOP", "", reply, sizeof reply, msg, sizeof msg);
    }
}

DWORD usbts_dev_read_now_locked(uint32_t dev_idx, int64_t *mf, int64_t *t_ns, char *msg, size_t msglen)
{
    struct usbts_device *d = usbts_dev_slots[dev_idx].dev;
    if (!d->via_daemon)
        return usbts_tracker_read_now(d->tracker, mf, t_ns, msg, msglen);
    char reply[128];
    DWORD err = daemon_simple_locked(d, "FRAME", "", reply, sizeof reply, msg, msglen);
    if (err == ERROR_SUCCESS && sscanf(reply, "%" SCNd64 " %" SCNd64, mf, t_ns) != 2) {
        snprintf(msg, msglen, "the daemon usbtimesyncd sent a reply this library does not understand");
        err = ERROR_GEN_FAILURE;
    }
    return err;
}

static void dev_status_locked(struct usbts_device *d, struct usbts_tracker_status *st)
{
    if (!d->via_daemon) {
        usbts_tracker_status(d->tracker, st);
        return;
    }
    memset(st, 0, sizeof *st);
    snprintf(st->source, sizeof st->source, "%s", d->page->source);
    char reply[300], msg[256];
    unsigned users = 0, window = 0;
    unsigned long long reads = 0, captures = 0, rejected = 0, disc = 0;
    long long bracket = 0;
    double ppm = 0;
    if (daemon_simple_locked(d, "STATS", "", reply, sizeof reply, msg, sizeof msg) == ERROR_SUCCESS &&
        sscanf(reply, "%u %llu %llu %llu %llu %lld %lf %u", &users, &reads, &captures, &rejected, &disc, &bracket,
               &ppm, &window) == 8) {
        st->users = users;
        st->est.reads = reads;
        st->est.captures = captures;
        st->est.rejected = rejected;
        st->est.discontinuities = disc;
        st->est.bracket_ns = bracket;
        st->est.rate_ppm = ppm;
        st->est.window = (int)window;
    }
}

void usbts_dev_revive(void)
{
    static _Atomic int64_t last_try;
    int64_t now = usbts_monotonic_ns(), prev = atomic_load_explicit(&last_try, memory_order_relaxed);
    if (now - prev < 100000000 ||
        !atomic_compare_exchange_strong_explicit(&last_try, &prev, now, memory_order_relaxed, memory_order_relaxed))
        return;
    if (!usbts_registry_trylock())
        return;
    if (usbts_daemon_dead()) {
        char msg[256];
        for (uint32_t i = 0; i < USBTS_MAX_DEVICES; i++) {
            struct usbts_dev_slot *s = &usbts_dev_slots[i];
            if (atomic_load_explicit(&s->handle, memory_order_relaxed) && s->dev && s->dev->via_daemon &&
                daemon_ready_locked(s->dev, msg, sizeof msg) == ERROR_DEVICE_NOT_CONNECTED)
                atomic_store(&s->unplugged, true);
        }
    }
    usbts_registry_unlock();
}

/* ---- fork ------------------------------------------------------------------------ */

static void fork_prepare(void)
{
    pthread_mutex_lock(&registry_mu);
    usbts_tracker_fork_prepare();
}

static void fork_parent(void)
{
    usbts_tracker_fork_parent();
    pthread_mutex_unlock(&registry_mu);
}

static void fork_child(void)
{
    usbts_tracker_fork_child();
    usbts_daemon_fork_child();
    pthread_mutex_unlock(&registry_mu);
}

static void register_fork_handlers(void)
{
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

static DWORD open_sim(const struct usbts_devspec *spec, struct usbts_device *d, char *msg, size_t msglen)
{
    DWORD err = usbts_tracker_get(NULL, spec->sim.virtual_clock, NULL, &d->tracker);
    if (err != ERROR_SUCCESS) {
        snprintf(msg, msglen, "too many controllers open at once (at most %d); close some devices",
                 USBTS_MAX_TRACKERS);
        return err;
    }
    struct usbts_source *src;
    err = usbts_sim_create(&spec->sim, &usbts_tracker_page(d->tracker)->pub.clock, &src);
    if (err != ERROR_SUCCESS) {
        usbts_tracker_put(d->tracker);
        snprintf(msg, msglen, "out of memory creating the simulated controller");
        return err;
    }
    usbts_tracker_set_source(d->tracker, src);
    d->page = usbts_tracker_page(d->tracker);
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
    if (!usbts_daemon_disabled()) {
        uint32_t epoch;
        err = usbts_daemon_connect(&epoch, msg, msglen);
        if (err == ERROR_SUCCESS) {
            d->via_daemon = true;
            d->tracker = USBTS_NO_TRACKER;
            err = daemon_register_locked(d, epoch, msg, msglen);
            if (err != ERROR_SUCCESS) {
                usbts_backend_close(&d->real);
                return err;
            }
            d->real_open = true;
            fill_real_info(d);
            snprintf(d->info.Source, sizeof d->info.Source, "%s", d->page->source);
            return ERROR_SUCCESS;
        }
        if (err != ERROR_FILE_NOT_FOUND) {
            usbts_backend_close(&d->real);
            return err;
        }
        msg[0] = '\0'; /* no daemon: this process tracks by itself */
    }
    err = usbts_tracker_get(d->real.tracker_key, false, NULL, &d->tracker);
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
    d->page = usbts_tracker_page(d->tracker);
    fill_real_info(d);
    return ERROR_SUCCESS;
}

/* The daemon's simulated controller: no device node to prove anything with
 * (it is a simulation anyone may use). */
static DWORD open_daemon_sim(struct usbts_device *d, char *msg, size_t msglen)
{
    uint32_t epoch;
    if (usbts_daemon_disabled()) {
        snprintf(msg, msglen, "sim-daemon is the simulated controller usbtimesyncd serves, and %s is set",
                 USBTS_ENV_NO_DAEMON);
        return ERROR_FILE_NOT_FOUND;
    }
    DWORD err = usbts_daemon_connect(&epoch, msg, msglen);
    if (err == ERROR_FILE_NOT_FOUND) {
        size_t n = strlen(msg);
        snprintf(msg + n, msglen - n, "; sim-daemon needs the daemon: start usbtimesyncd --sim");
    }
    if (err != ERROR_SUCCESS)
        return err;
    d->via_daemon = true;
    d->daemon_sim = true;
    d->is_sim = true;
    d->tracker = USBTS_NO_TRACKER;
    err = daemon_register_locked(d, epoch, msg, msglen);
    if (err != ERROR_SUCCESS)
        return err;
    snprintf(d->info.Controller, sizeof d->info.Controller, "%s", d->page->controller);
    snprintf(d->info.Driver, sizeof d->info.Driver, "xhci_hcd");
    snprintf(d->info.Source, sizeof d->info.Source, "sim");
    d->info.VendorId = 0x1d6b;
    d->info.ProductId = 0x0104;
    d->info.BusNumber = 1;
    d->info.DeviceAddress = 2;
    d->info.Speed = HighSpeed;
    d->info.IsSimulated = TRUE;
    d->info.IsVirtualClock = FALSE;
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
    d->page_dev = UINT32_MAX;
    snprintf(d->info.Spec, sizeof d->info.Spec, "%s", spec);
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, register_fork_handlers);

    usbts_registry_lock();
    int idx = free_slot(&usbts_dev_slots[0].handle, sizeof usbts_dev_slots[0], USBTS_MAX_DEVICES);
    if (idx < 0) {
        err = ERROR_NOT_ENOUGH_MEMORY;
        snprintf(msg, sizeof msg, "too many devices open at once (at most %d); close some with usbts_close",
                 USBTS_MAX_DEVICES);
    } else {
        struct usbts_dev_slot *s = &usbts_dev_slots[idx];
        atomic_store(&s->unplugged, false);
        err = ds.kind == USBTS_SPEC_SIM          ? open_sim(&ds, d, msg, sizeof msg)
              : ds.kind == USBTS_SPEC_DAEMON_SIM ? open_daemon_sim(d, msg, sizeof msg)
                                                 : open_real(&ds, d, &s->unplugged, msg, sizeof msg);
    }
    HANDLE h = INVALID_HANDLE_VALUE;
    if (err == ERROR_SUCCESS) {
        struct usbts_dev_slot *s = &usbts_dev_slots[idx];
        s->dev = d;
        atomic_store_explicit(&s->tracker, d->tracker, memory_order_relaxed);
        atomic_store_explicit(&s->page, d->page, memory_order_relaxed);
        atomic_store_explicit(&s->page_dev, d->page_dev, memory_order_relaxed);
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
    if (d->via_daemon) {
        char reply[64], msg[256];
        uint32_t epoch;
        if (!usbts_daemon_dead() && usbts_daemon_connect(&epoch, msg, sizeof msg) == ERROR_SUCCESS &&
            epoch == d->daemon_epoch)
            (void)daemon_simple_locked(d, "CLOSE", "", reply, sizeof reply, msg, sizeof msg);
        if (d->real_open)
            usbts_backend_close(&d->real);
    } else {
        if (d->real_open) {
            usbts_tracker_unwatch(d->tracker, &s->unplugged);
            usbts_backend_close(&d->real);
        }
        usbts_tracker_put(d->tracker);
    }
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
    dev_status_locked(d, &st);
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
    dev_status_locked(usbts_dev_slots[idx].dev, &st);
    usbts_registry_unlock();
    memset(stats, 0, sizeof *stats);
    stats->Reads = st.est.reads + st.discarded_reads; /* every register read, samples or not */
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
    const struct usbts_page *page = atomic_load_explicit(&usbts_dev_slots[idx].page, memory_order_relaxed);
    usbts_store_i64(ns, usbts_clock_now(&page->pub.clock));
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
    struct usbts_device *d = usbts_dev_slots[idx].dev;
    DWORD err;
    if (d->via_daemon) {
        char reply[128], msg[300];
        long long b = 0, af = 0;
        unsigned mfi = 0;
        err = daemon_simple_locked(d, "READ", "", reply, sizeof reply, msg, sizeof msg);
        if (err == ERROR_SUCCESS && sscanf(reply, "%lld %u %lld", &b, &mfi, &af) != 3)
            err = ERROR_GEN_FAILURE;
        usbts_registry_unlock();
        if (err != ERROR_SUCCESS)
            return usbts_fail_msg(err, msg);
        usbts_store_i64(before_ns, b);
        usbts_store_u32(mfindex, mfi);
        usbts_store_i64(after_ns, af);
        return TRUE;
    }
    err = usbts_tracker_with_source(d->tracker, do_sim_read, &a);
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
    struct usbts_device *d = usbts_dev_slots[idx].dev;
    DWORD err;
    if (d->via_daemon) {
        char reply[128], msg[300], args[64];
        long long ns = 0;
        snprintf(args, sizeof args, "%u %u", (unsigned)usb_frame, (unsigned)microframe);
        err = daemon_simple_locked(d, "TRUTH", args, reply, sizeof reply, msg, sizeof msg);
        if (err == ERROR_SUCCESS && sscanf(reply, "%lld", &ns) != 1)
            err = ERROR_GEN_FAILURE;
        usbts_registry_unlock();
        if (err != ERROR_SUCCESS)
            return usbts_fail_msg(err, msg);
        usbts_store_i64(qpc_ns, ns);
        return TRUE;
    }
    err = usbts_tracker_with_source(d->tracker, do_sim_truth, &a);
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
    if (s->dev->via_daemon) {
        char reply[64], msg[300], args[200];
        if (strlen(event) > 100 || strpbrk(event, " \n")) {
            usbts_registry_unlock();
            return usbts_fail(ERROR_INVALID_PARAMETER, "event '%.40s' is malformed: use reset, halt_ms=N or unplug",
                              event);
        }
        snprintf(args, sizeof args, "%s", event);
        DWORD err = daemon_simple_locked(s->dev, "INJECT", args, reply, sizeof reply, msg, sizeof msg);
        usbts_registry_unlock();
        if (err != ERROR_SUCCESS)
            return usbts_fail_msg(err, msg);
        return TRUE;
    }
    struct sim_inject_args a = {event, 0, ""};
    DWORD err = usbts_tracker_with_source(s->dev->tracker, do_sim_inject, &a);
    if (err == ERROR_SUCCESS && a.stall_until)
        usbts_tracker_stall(s->dev->tracker, a.stall_until);
    if (err == ERROR_SUCCESS && atomic_load(&s->dev->page->pub.gone))
        atomic_store(&s->unplugged, true);
    usbts_registry_unlock();
    if (err != ERROR_SUCCESS)
        return usbts_fail_msg(err, a.msg);
    return TRUE;
}
