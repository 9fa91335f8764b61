/* SPDX-License-Identifier: MIT */
/*
 * page.h — the model page: what a query reads, in one fixed layout.
 *
 * In-process a tracker publishes into a page in static memory; with the
 * daemon (usbtimesyncd) the same bytes are a file under the run directory,
 * written by the daemon alone and mapped read-only by its clients.  The
 * query path reads one `const struct usbts_page` through usbts_page_read()
 * and does not know which kind it holds: the page's flags say whether the
 * writer is another process, and only then does the staleness rule apply.
 *
 * Layout: magic, layout version and the page's own size come first, so a
 * reader refuses what it does not understand before looking further.  Then
 * the writer's identity (controller, instance, source, pid), its heartbeat
 * and live flag, the presence of each device it watches, and last the seqlock
 * word and the model words (struct usbts_tracker_pub).  Every field a reader
 * may see change is atomic; the rest is written once, before the page is
 * renamed into place.
 */
#ifndef USBTS_PAGE_H
#define USBTS_PAGE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hostclock.h"
#include "model.h"
#include "tracker.h"

#define USBTS_PAGE_MAGIC 0x3147505354425355ull /* "USBTSPG1" little-endian */
#define USBTS_PAGE_VERSION 1u
#define USBTS_PAGE_FILE_SIZE 4096u /* a page file is this long: one memory page */
#define USBTS_PAGE_MAX_DEVICES 64

/* flags */
#define USBTS_PAGE_SHARED 0x1u /* written by another process (the daemon): staleness rule applies */

/* A shared page whose heartbeat is older than this is from a writer that may
 * be dead: the bound grows by USBTS_PAGE_STALE_PPM of the heartbeat's age.
 * A live daemon beats at least every 50 ms while it samples. */
#define USBTS_PAGE_GRACE_NS 200000000ll
/* Past this age queries fail with ERROR_GEN_FAILURE: a dead writer cannot see
 * a reset, halt or unbind, so no bound it left can be trusted for long. */
#define USBTS_PAGE_STALE_MAX_NS 2000000000ll
#define USBTS_PAGE_STALE_PPM 1000

struct usbts_page_device {
    _Atomic uint32_t minor; /* usbfs minor (bus - 1) * 128 + dev - 1; UINT32_MAX: slot unused */
    atomic_bool unplugged;  /* the daemon's watch saw the device go */
    uint8_t pad[3];
};

struct usbts_page {
    /* --- what a reader checks before anything else --- */
    uint64_t magic;
    uint32_t version;
    uint32_t size;          /* sizeof(struct usbts_page) of the writer */
    /* --- identity, written before the page is published --- */
    char controller[64];    /* PCI address, or "sim" */
    uint64_t instance;      /* the controller's binding (root hub inode): a rebound controller is a new page */
    char source[16];        /* "mmio", "debugfs", "kmod", "sim" */
    uint32_t flags;         /* USBTS_PAGE_* */
    uint32_t writer_pid;
    /* --- the writer's liveness --- */
    _Atomic int64_t heartbeat_ns; /* CLOCK_MONOTONIC of the writer's last sampler pass */
    _Atomic uint32_t live;        /* 0 once the daemon stopped (SIGTERM) or before it started */
    _Atomic uint32_t ndevices;    /* devices[] slots in use (high-water mark) */
    struct usbts_page_device devices[USBTS_PAGE_MAX_DEVICES];
    /* --- the model --- */
    struct usbts_tracker_pub pub;
};

_Static_assert(sizeof(struct usbts_page) <= USBTS_PAGE_FILE_SIZE, "a page fits one page file");

/* What usbts_page_read() found. */
enum usbts_page_state {
    USBTS_PAGE_OK = 0,
    USBTS_PAGE_AGED,    /* answers, with the bound grown: the writer has not beaten for a while */
    USBTS_PAGE_GONE,    /* the controller or the device is gone */
    USBTS_PAGE_STALE,   /* a shared page's writer stopped beating long ago */
    USBTS_PAGE_NOMODEL, /* no model published (yet), or a writer died mid-update */
};

/* A flag of a page another process wrote, read as a byte: a corrupted page
 * may hold any value there, and loading that as a bool is undefined. */
static inline bool usbts_page_flag(const atomic_bool *b)
{
    return __atomic_load_n((const unsigned char *)b, __ATOMIC_RELAXED) != 0;
}

/* Fills an in-process page's header (static memory; not shared). */
void usbts_page_init_local(struct usbts_page *p);

/*
 * The one reader, on the query path: seqlock read of the model, then the
 * clock, then the staleness rule for a shared page (bound grown by
 * ±USBTS_PAGE_STALE_PPM of the heartbeat's age once it passes the grace,
 * STALE past USBTS_PAGE_STALE_MAX_NS).  dev: index in devices[], or
 * UINT32_MAX for none.  No syscall, no lock, no allocation.
 */
static inline __attribute__((always_inline)) enum usbts_page_state
usbts_page_read(const struct usbts_page *p, uint32_t dev, struct usbts_model *m,
                                                    int64_t *now)
{
    if (usbts_page_flag(&p->pub.gone))
        return USBTS_PAGE_GONE;
    if (dev < USBTS_PAGE_MAX_DEVICES && usbts_page_flag(&p->devices[dev].unplugged))
        return USBTS_PAGE_GONE;
    /* (relaxed: an in-process page's header is written again, the same
     * values, whenever its tracker slot is taken anew, while queries on
     * other handles may read it) */
    if (!(__atomic_load_n(&p->flags, __ATOMIC_RELAXED) & USBTS_PAGE_SHARED)) {
        usbts_tracker_read_model(&p->pub, m);
        *now = usbts_clock_now(&p->pub.clock);
        return USBTS_PAGE_OK;
    }
    /* Another process writes: it may have died inside an update, so the
     * spin is bounded, and the clock is always the real one. */
    if (!usbts_tracker_try_read_model(&p->pub, m))
        return USBTS_PAGE_NOMODEL;
    *now = usbts_monotonic_ns();
    if (m->generation == 0)
        return USBTS_PAGE_NOMODEL;
    int64_t hb = atomic_load_explicit(&p->heartbeat_ns, memory_order_acquire);
    uint64_t age = hb >= *now ? 0 : (uint64_t)*now - (uint64_t)hb;
    if (age > (uint64_t)USBTS_PAGE_STALE_MAX_NS)
        return USBTS_PAGE_STALE;
    if (age > (uint64_t)USBTS_PAGE_GRACE_NS) {
        m->bound0_ns += (int64_t)age / (1000000 / USBTS_PAGE_STALE_PPM);
        return USBTS_PAGE_AGED;
    }
    return USBTS_PAGE_OK;
}

/*
 * Checks a page a reader is about to trust: `len` bytes (the file's size).
 * Refuses a short file, an unknown magic, version or size, identity strings
 * without their terminator, a virtual clock or a device count that cannot be
 * right.  false with msg saying what.
 */
bool usbts_page_check(const void *bytes, size_t len, char *msg, size_t msglen);

#endif
