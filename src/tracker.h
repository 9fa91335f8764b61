/* SPDX-License-Identifier: MIT */
/*
 * tracker.h — one tracker per host controller.
 *
 * A tracker owns one frame-clock source and one estimator.  It samples only
 * while at least one tracking handle is open: on a real clock from a sampler
 * thread that exists only then, on a virtual clock inside usbts_sim_advance().
 * It publishes the estimator's model through a seqlock in static memory, so
 * queries take no lock, make no syscall and can never touch freed memory.
 *
 * Locking: callers serialise create/destroy/acquire/release with the
 * registry lock; everything else a tracker does is under its own mutex.
 */
#ifndef USBTS_TRACKER_H
#define USBTS_TRACKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "estimator.h"
#include "hostclock.h"
#include "model.h"
#include "source.h"

#define USBTS_MAX_TRACKERS 64

/* What a query reads, lock-free. */
struct usbts_tracker_pub {
    _Atomic uint32_t seq; /* odd while the model is being written */
    _Atomic uint64_t model[USBTS_MODEL_WORDS];
    struct usbts_hostclock clock;
    atomic_bool gone; /* the controller stopped answering (removed, unbound) */
};

struct usbts_page;
/* The page a tracker publishes into: its slot of static memory in-process,
 * or the daemon's mapped page file.  Never freed. */
struct usbts_page *usbts_tracker_page(uint32_t idx);

typedef DWORD (*usbts_source_factory)(const void *ctx, struct usbts_hostclock *clock, struct usbts_source **out,
                                      char *msg, size_t msglen);

/* A tracker for `key` (a controller's identity) is shared: an existing one is
 * referenced again.  key NULL: a private tracker (a simulated controller).
 * page NULL: the tracker's in-process page (reset); otherwise a page the
 * caller prepared (the daemon's page file), whose model is left as it is. */
DWORD usbts_tracker_get(const char *key, bool virtual_clock, struct usbts_page *page, uint32_t *idx);

/* The daemon after a restart: the model an earlier writer left.  The
 * tracker carries its generation on as long as what it measures agrees with
 * it (old bound grown by ±1000 ppm of its age, plus the new bound); the first
 * disagreement, or no agreement by the first capture, starts a new one. */
void usbts_tracker_inherit(uint32_t idx, const struct usbts_model *old, int64_t old_heartbeat_ns);

/* The daemon numbers generations for the whole machine (persisted, never
 * repeated within a boot); in-process it is a counter of this process. */
void usbts_set_generation_source(uint32_t (*next)(void));

/* fork: pthread_atfork handlers (the registry lock is taken first).  The
 * child has no sampler thread: it forgets the parent's, so that nothing ever
 * waits for it, and starts its own at its next Start. */
void usbts_tracker_fork_prepare(void);
void usbts_tracker_fork_parent(void);
void usbts_tracker_fork_child(void);
/* Drops a reference; the last one stops sampling and frees the tracker. */
void usbts_tracker_put(uint32_t idx);

/* Gives the tracker its source (it takes ownership), or a way to open one at
 * the first Start (ctx is copied). */
void usbts_tracker_set_source(uint32_t idx, struct usbts_source *src);
DWORD usbts_tracker_set_factory(uint32_t idx, usbts_source_factory f, const void *ctx, size_t ctx_size);

/* Devices on this controller whose presence the sampler polls (every 50 ms
 * while sampling); `flag` is set once present() says no. */
DWORD usbts_tracker_watch(uint32_t idx, bool (*present)(const void *ctx), const void *ctx, atomic_bool *flag);
void usbts_tracker_unwatch(uint32_t idx, atomic_bool *flag);

/* A tracking handle opens (acquire) or closes (release).  acquire with
 * tolerable == false returns once a boundary has been captured (ERROR_TIMEOUT
 * after 2.048 s).  On failure nothing changes.  Message in msg. */
DWORD usbts_tracker_acquire(uint32_t idx, bool tolerable, char *msg, size_t msglen);
void usbts_tracker_release(uint32_t idx);

/* One direct read for WinUsb_GetCurrentFrameNumber when the model is not being
 * kept up: *mf extended microframe count, *t_ns host time it was read at. */
DWORD usbts_tracker_read_now(uint32_t idx, int64_t *mf, int64_t *t_ns, char *msg, size_t msglen);

/* Runs fn on the source under the tracker's mutex (sim operations). */
DWORD usbts_tracker_with_source(uint32_t idx, DWORD (*fn)(struct usbts_tracker_pub *pub, struct usbts_source *src,
                                                          void *arg),
                                void *arg);

/* Virtual clock: advance by ns, running the sampling that falls due. */
DWORD usbts_tracker_advance(uint32_t idx, uint64_t ns);
/* Virtual clock: the sampler gets no CPU until until_ns. */
void usbts_tracker_stall(uint32_t idx, int64_t until_ns);

/* Seqlock read of the published model (lock-free, no syscall).  tries == 0
 * spins until a consistent copy is read (the writer is in this process and
 * always finishes); otherwise false after that many inconsistent passes (a
 * writer in another process may have died inside an update), with *m
 * holding nothing meaningful. */
static inline bool usbts_tracker_read_model_n(const struct usbts_tracker_pub *pub, struct usbts_model *m,
                                              uint32_t tries)
{
    uint64_t w0;
    uint32_t s1, s2;
    for (;;) {
        s1 = atomic_load_explicit(&pub->seq, memory_order_acquire);
        /* Acquire loads keep the second sequence read after the data (a
         * plain load on x86, and a pattern ThreadSanitizer understands,
         * unlike a standalone fence).  Written out: a loop of atomics is
         * not unrolled, and this is the query's hot path.  Each word goes
         * straight into its field (the caller's struct), not through a
         * local array: nine live registers across the loop spilled, and the
         * copy cost a load and a store per word.  A torn pass is simply
         * overwritten by the next. */
        w0 = atomic_load_explicit(&pub->model[0], memory_order_acquire);
        m->ref_ns = (int64_t)atomic_load_explicit(&pub->model[1], memory_order_acquire);
        m->ref_mf = (int64_t)atomic_load_explicit(&pub->model[2], memory_order_acquire);
        m->period_fp = atomic_load_explicit(&pub->model[3], memory_order_acquire);
        m->rate_fp = atomic_load_explicit(&pub->model[4], memory_order_acquire);
        m->bound0_ns = (int64_t)atomic_load_explicit(&pub->model[5], memory_order_acquire);
        m->bound_slope_fp = atomic_load_explicit(&pub->model[6], memory_order_acquire);
        m->bound_wander_fp = atomic_load_explicit(&pub->model[7], memory_order_acquire);
        m->heartbeat_ns = (int64_t)atomic_load_explicit(&pub->model[8], memory_order_acquire);
        s2 = atomic_load_explicit(&pub->seq, memory_order_relaxed);
        if (!(s1 & 1u) && s1 == s2)
            break;
        if (tries && --tries == 0)
            return false;
    }
    /* the order of usbts_model_pack */
    _Static_assert(USBTS_MODEL_WORDS == 9, "the seqlock read names every word");
    m->generation = (uint32_t)w0;
    m->flags = (uint32_t)(w0 >> 32);
    return true;
}

static inline void usbts_tracker_read_model(const struct usbts_tracker_pub *pub, struct usbts_model *m)
{
    (void)usbts_tracker_read_model_n(pub, m, 0);
}

/* A writer in another process takes well under a microsecond per update;
 * this many passes is milliseconds of spinning. */
#define USBTS_SHARED_READ_TRIES 100000u
static inline bool usbts_tracker_try_read_model(const struct usbts_tracker_pub *pub, struct usbts_model *m)
{
    return usbts_tracker_read_model_n(pub, m, USBTS_SHARED_READ_TRIES);
}

struct usbts_tracker_status {
    char source[16];
    uint32_t users;
    bool sampling_thread;
    uint64_t discarded_reads; /* reads with reserved bits set, never fed to the estimator */
    struct usbts_est_stats est;
};
void usbts_tracker_status(uint32_t idx, struct usbts_tracker_status *st);

/* A process-wide generation ID never handed out before. */
uint32_t usbts_new_generation(void);

#endif
