/* SPDX-License-Identifier: MIT */
/*
 * tracker.c — per-controller tracking: sampling schedule, sampler thread,
 * seqlock publication.  The estimator decides when and what to read; this file
 * only does the reading, the sleeping and the publishing.
 */
#include "tracker.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "failpoint.h"
#include "lasterror.h"
#include "page.h"

#define WATCH_MAX 32
#define WATCH_PERIOD_NS 50000000           /* presence polled every 50 ms while sampling */
#define START_TIMEOUT_NS 2048000000        /* one MFINDEX wrap */
#define CAPTURE_BURST_NS 400000            /* an inline capture burst: over three microframes */
#define CAPTURE_BURST_READS 4096
/* The watchdog: whatever the estimator plans and whatever the source returns,
 * a burst lasts at most MAX_BURST_NS and MAX_BURST_READS reads, and the next
 * one starts no sooner than MIN_PAUSE_NS, and PAUSE_PER_BURST times the last
 * burst's CPU time (reads x the narrowest bracket), after it ended: the
 * sampler reads at most 1/8 of the time and always sleeps between bursts
 * (releasing the mutex Stop needs). */
#define MAX_BURST_NS 3000000
#define MAX_BURST_READS 4096
#define MIN_PAUSE_NS 250000
#define PAUSE_PER_BURST 7

struct watch {
    bool (*present)(const void *ctx);
    const void *ctx;
    atomic_bool *flag;
};

struct tracker {
    pthread_mutex_t mu;
    pthread_cond_t cv;          /* wakes the sampler for stop */
    char key[96];
    bool keyed;
    uint32_t refs;
    uint32_t users;             /* open tracking handles */
    struct usbts_source *src;
    usbts_source_factory factory;
    void *factory_ctx;
    struct usbts_est est;
    uint32_t last_epoch;        /* estimator epoch behind `generation` */
    uint32_t generation;
    bool thread_running;
    atomic_bool stop;           /* set before taking the mutex: the sampler sees it between bursts */
    pthread_t thread;
    int64_t stall_until_ns;     /* virtual clock: sampler starved until then */
    struct usbts_est_plan next; /* virtual clock: the plan made when the last burst ended ... */
    bool have_next;             /* ... kept, so that how the caller slices time changes nothing */
    int64_t adv_target;         /* virtual clock: where the last advance aimed ... */
    int64_t adv_end;            /* ... and where the clock stood after it (a burst may overrun the aim) */
    int64_t bad_since_ns;       /* reads with reserved bits set, back to back since then (0: none) */
    uint32_t bad_reads;
    int64_t bad_last_ns;        /* the latest of them */
    uint64_t discarded_reads;   /* all of them, ever */
    int64_t next_burst_ns;      /* the watchdog: no burst before this host time */
    int64_t last_watch_ns;
    struct watch watches[WATCH_MAX];
    int nwatches;
    bool inherit;               /* an earlier writer's model to carry on (daemon restart) */
    struct usbts_model inherited;
    int64_t inherited_heartbeat_ns;
    int64_t mf_offset;          /* added to the estimator's microframe count: continues an inherited one */
};

/* A tracker's page: its own slot here, unless the daemon gave it a mapped
 * page file.  Neither is ever freed: a query may be reading it. */
static struct usbts_page local_pages[USBTS_MAX_TRACKERS];
static struct usbts_page *_Atomic page_of[USBTS_MAX_TRACKERS];
static struct tracker *trackers[USBTS_MAX_TRACKERS]; /* under the registry lock */
static _Atomic uint32_t generation_counter;
static uint32_t (*_Atomic generation_source)(void);

struct usbts_page *usbts_tracker_page(uint32_t idx)
{
    struct usbts_page *p = atomic_load_explicit(&page_of[idx], memory_order_acquire);
    return p ? p : &local_pages[idx];
}

#define PUB(idx) (&usbts_tracker_page(idx)->pub)

void usbts_set_generation_source(uint32_t (*next)(void))
{
    atomic_store(&generation_source, next);
}

uint32_t usbts_new_generation(void)
{
    uint32_t (*next)(void) = atomic_load(&generation_source);
    if (next)
        return next();
    uint32_t g;
    do
        g = atomic_fetch_add_explicit(&generation_counter, 1, memory_order_relaxed) + 1;
    while (g == 0);
    return g;
}

static struct tracker *T(uint32_t idx)
{
    return idx < USBTS_MAX_TRACKERS ? trackers[idx] : NULL;
}

/* ---- publication ------------------------------------------------------- */

static void publish_model(struct usbts_tracker_pub *pub, const struct usbts_model *m)
{
    uint64_t w[USBTS_MODEL_WORDS];
    usbts_model_pack(m, w);
    /* | 1: a page an earlier writer left mid-update is odd already. */
    uint32_t s = atomic_load_explicit(&pub->seq, memory_order_relaxed) | 1u;
    atomic_store_explicit(&pub->seq, s, memory_order_relaxed);
    /* Release stores: a reader that sees any new word also sees the odd
     * sequence number, and so retries. */
    for (int i = 0; i < USBTS_MODEL_WORDS; i++)
        atomic_store_explicit(&pub->model[i], w[i], memory_order_release);
    atomic_store_explicit(&pub->seq, s + 1, memory_order_release);
}

static void heartbeat(uint32_t idx)
{
    struct usbts_page *p = usbts_tracker_page(idx);
    atomic_store_explicit(&p->heartbeat_ns, usbts_clock_now(&p->pub.clock), memory_order_release);
}

/* Does the new model tell the same story as the inherited one?  The new
 * estimator counts microframes from its own first read: *offset (whole
 * MFINDEX wraps) aligns its count with the old one.  Then both are evaluated
 * at the new model's reference, and must differ by no more than the old
 * bound grown by ±1000 ppm of the old model's age plus the new bound. */
static bool agrees(const struct usbts_model *old, int64_t old_heartbeat, const struct usbts_model *m,
                   int64_t *offset)
{
    if (old->generation == 0 || old->period_fp == 0 || m->period_fp == 0)
        return false;
    int64_t t = m->ref_ns;
    int64_t d = usbts_model_mf_at(old, t) - m->ref_mf + USBTS_MFINDEX_WRAP / 2;
    int64_t wraps = d / USBTS_MFINDEX_WRAP - (d % USBTS_MFINDEX_WRAP < 0);
    *offset = wraps * USBTS_MFINDEX_WRAP;
    int64_t age = t - old_heartbeat;
    if (age < 0)
        age = 0;
    int64_t old_t = usbts_model_start_ns(old, m->ref_mf + *offset);
    int64_t diff = old_t > t ? old_t - t : t - old_t;
    int64_t allowed = usbts_model_bound_ns(old, t, old->heartbeat_ns) + age / 1000 + m->bound0_ns;
    return diff <= allowed;
}

/* The estimator numbers its epochs; the world sees process-wide generations. */
static void publish(uint32_t idx, struct tracker *t)
{
    struct usbts_model m;
    if (!usbts_est_model(&t->est, &m))
        return;
    if (t->inherit) {
        /* Carried on while it agrees; decided at the first capture. */
        int64_t offset;
        if (agrees(&t->inherited, t->inherited_heartbeat_ns, &m, &offset)) {
            t->mf_offset = offset;
            t->generation = t->inherited.generation;
            t->last_epoch = m.generation;
            if (m.flags & USBTS_MODEL_CAPTURED)
                t->inherit = false;
        } else {
            t->inherit = false;
            t->generation = 0;
        }
    }
    if (m.generation != t->last_epoch || t->generation == 0) {
        t->last_epoch = m.generation;
        t->generation = usbts_new_generation();
    }
    m.generation = t->generation;
    m.ref_mf += t->mf_offset;
    publish_model(PUB(idx), &m);
    heartbeat(idx);
}

/* ---- reading ------------------------------------------------------------ */

/* Bits 31:14 of MFINDEX are reserved and read as zero: a value with any of
 * them set is not a sample (a torn read, or all ones from a PCIe device that
 * no longer answers).  It never reaches the estimator.  If every read for
 * USBTS_BAD_READS_GONE_NS, and at least USBTS_BAD_READS_GONE_MIN of them, is
 * like that, the controller is gone. */
#define NOT_A_SAMPLE ((DWORD)-1)
#define BAD_READS_PER_BURST 8 /* a burst gives up after this many in a row, so it cannot spin on them */
#define BAD_BACKOFF_NS 1000000 /* and after that many in a row, the next burst waits this long */

/* The earliest a burst may start: a source that keeps answering garbage is
 * read about once a millisecond until it answers or is declared gone. */
static int64_t not_before(const struct tracker *t)
{
    return t->bad_reads >= BAD_READS_PER_BURST / 2 ? t->bad_last_ns + BAD_BACKOFF_NS : INT64_MIN;
}

static DWORD read_once(uint32_t idx, struct tracker *t, struct usbts_read *r)
{
    int64_t before, after;
    uint32_t mf;
    DWORD err = usbts_source_read(t->src, &before, &mf, &after);
    if (err == ERROR_SUCCESS && (mf & ~(uint32_t)USBTS_MFINDEX_MASK)) {
        t->discarded_reads++;
        if (t->bad_reads++ == 0)
            t->bad_since_ns = before;
        t->bad_last_ns = after;
        if (t->bad_reads < USBTS_BAD_READS_GONE_MIN || after - t->bad_since_ns < USBTS_BAD_READS_GONE_NS)
            return NOT_A_SAMPLE;
        err = ERROR_DEVICE_NOT_CONNECTED;
    } else if (err == ERROR_SUCCESS) {
        t->bad_reads = 0;
    }
    if (err == ERROR_DEVICE_NOT_CONNECTED)
        atomic_store(&PUB(idx)->gone, true);
    if (err != ERROR_SUCCESS)
        return err;
    r->before_ns = before;
    r->after_ns = after;
    r->mfindex = mf;
    return ERROR_SUCCESS;
}

/* One burst of back-to-back reads, as the estimator asked for.  Reads that
 * are not samples are skipped (the estimator sees the gap they leave); a
 * burst gives up after BAD_READS_PER_BURST of them in a row, so it cannot
 * spin on them.  *cpu_ns (may be NULL): the reads' count times the narrowest
 * bracket among them, what the burst cost in CPU (a preempted read's bracket
 * is mostly another thread's time). */
static DWORD run_burst(uint32_t idx, struct tracker *t, int64_t deadline_ns, int32_t max_reads, int64_t *cpu_ns)
{
    DWORD err = ERROR_SUCCESS;
    int64_t narrowest = INT64_MAX;
    int32_t n = 0, bad = 0, all = 0;
    t->have_next = false; /* the estimator learns from this burst: plan afresh */
    usbts_est_burst_begin(&t->est);
    while (n < max_reads) {
        struct usbts_read r;
        err = read_once(idx, t, &r);
        all++;
        if (err == NOT_A_SAMPLE) {
            err = ERROR_SUCCESS;
            if (++bad >= BAD_READS_PER_BURST || usbts_clock_now(t->src->clock) >= deadline_ns)
                break;
            continue;
        }
        if (err != ERROR_SUCCESS)
            break;
        bad = 0;
        n++;
        if (r.after_ns - r.before_ns < narrowest)
            narrowest = r.after_ns - r.before_ns;
        if (usbts_est_feed(&t->est, &r) || r.after_ns >= deadline_ns)
            break;
    }
    usbts_est_burst_end(&t->est);
    publish(idx, t);
    if (cpu_ns)
        *cpu_ns = n ? all * (narrowest > 0 ? narrowest : 1) : 0;
    return err;
}

/* A burst the sampler runs on its own schedule, under the watchdog's limits. */
static void run_sampler_burst(uint32_t idx, struct tracker *t, const struct usbts_est_plan *plan)
{
    const struct usbts_hostclock *clock = &PUB(idx)->clock;
    int64_t start = usbts_clock_now(clock);
    int64_t len = plan->deadline_ns - plan->start_ns;
    if (len > MAX_BURST_NS)
        len = MAX_BURST_NS;
    int64_t cpu;
    run_burst(idx, t, start + len, plan->max_reads < MAX_BURST_READS ? plan->max_reads : MAX_BURST_READS, &cpu);
    int64_t end = usbts_clock_now(clock);
    int64_t pause = PAUSE_PER_BURST * cpu;
    t->next_burst_ns = end + (pause > MIN_PAUSE_NS ? pause : MIN_PAUSE_NS);
}

static void run_watches(struct tracker *t, int64_t now)
{
    if (now - t->last_watch_ns < WATCH_PERIOD_NS)
        return;
    t->last_watch_ns = now;
    for (int i = 0; i < t->nwatches; i++)
        if (!atomic_load(t->watches[i].flag) && !t->watches[i].present(t->watches[i].ctx))
            atomic_store(t->watches[i].flag, true);
}

/* ---- the sampler thread (real clock) ------------------------------------ */

struct sampler_arg {
    uint32_t idx;
};

static void *sampler_main(void *arg)
{
    uint32_t idx = ((struct sampler_arg *)arg)->idx;
    free(arg);
    struct tracker *t = trackers[idx];
    struct usbts_tracker_pub *pub = PUB(idx);

    /* Wake-ups aimed microseconds before a boundary: the default 50 µs timer
     * slack would make every burst spin that much longer. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    /* Named, so that users (top -H) and tests can tell it from their own. */
    pthread_setname_np(pthread_self(), "usbts-sampler");

    /* The kernel wakes us late by some tens of µs; asking that much early
     * leaves the estimator's lead to cover only the variation, and every µs
     * of lead is a µs of spinning. */
    int64_t lateness = 0;
    pthread_mutex_lock(&t->mu);
    while (!atomic_load(&t->stop)) {
        int64_t now = usbts_monotonic_ns();
        heartbeat(idx); /* at least every WATCH_PERIOD_NS: readers of a shared page tell alive from dead */
        run_watches(t, now);
        struct usbts_est_plan plan;
        /* Planned from the earliest instant the watchdog allows, so the
         * estimator aims at a boundary the burst can still catch. */
        usbts_est_plan(&t->est, now > t->next_burst_ns ? now : t->next_burst_ns, &plan);
        int64_t wake = plan.start_ns - lateness;
        if (wake < t->next_burst_ns)
            wake = t->next_burst_ns;
        if (wake < not_before(t))
            wake = not_before(t);
        bool for_burst = true;
        if (atomic_load(&pub->gone) || wake > now + WATCH_PERIOD_NS) {
            wake = now + WATCH_PERIOD_NS; /* keep polling presence; re-plan after */
            for_burst = false;
        }
        if (wake > now) {
            struct timespec ts = {.tv_sec = wake / 1000000000, .tv_nsec = wake % 1000000000};
            int rc = pthread_cond_timedwait(&t->cv, &t->mu, &ts);
            if (rc != ETIMEDOUT)
                continue; /* stop requested, or spurious: re-plan */
            int64_t late = usbts_monotonic_ns() - wake;
            if (late >= 0 && late < 1000000)
                lateness += (late - lateness) / 8;
            if (!for_burst)
                continue;
        }
        if (atomic_load(&pub->gone))
            continue;
        run_sampler_burst(idx, t, &plan);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

static DWORD start_thread(uint32_t idx, struct tracker *t)
{
    struct sampler_arg *a = usbts_failpoint() ? NULL : malloc(sizeof *a);
    if (!a)
        return ERROR_NOT_ENOUGH_MEMORY;
    a->idx = idx;
    atomic_store(&t->stop, false);
    if (usbts_failpoint() || pthread_create(&t->thread, NULL, sampler_main, a) != 0) {
        free(a);
        return ERROR_NOT_ENOUGH_MEMORY;
    }
    t->thread_running = true;
    return ERROR_SUCCESS;
}

/* Called with t->mu NOT held (the thread takes it). */
static void stop_thread(struct tracker *t)
{
    if (!t->thread_running)
        return;
    atomic_store(&t->stop, true);
    pthread_mutex_lock(&t->mu);
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
    pthread_mutex_lock(&t->mu);
    t->thread_running = false;
    pthread_mutex_unlock(&t->mu);
}

/* ---- lifecycle ---------------------------------------------------------- */

DWORD usbts_tracker_get(const char *key, bool virtual_clock, struct usbts_page *page, uint32_t *idx)
{
    if (key) {
        for (uint32_t i = 0; i < USBTS_MAX_TRACKERS; i++) {
            struct tracker *t = trackers[i];
            if (t && t->keyed && strcmp(t->key, key) == 0 && !atomic_load(&PUB(i)->gone)) {
                t->refs++;
                *idx = i;
                return ERROR_SUCCESS;
            }
        }
    }
    uint32_t i;
    for (i = 0; i < USBTS_MAX_TRACKERS && trackers[i]; i++) {
    }
    if (i == USBTS_MAX_TRACKERS)
        return ERROR_NOT_ENOUGH_MEMORY;
    struct tracker *t = usbts_failpoint() ? NULL : calloc(1, sizeof *t);
    if (!t)
        return ERROR_NOT_ENOUGH_MEMORY;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (pthread_mutex_init(&t->mu, NULL) != 0 || pthread_cond_init(&t->cv, &ca) != 0) {
        pthread_condattr_destroy(&ca);
        free(t);
        return ERROR_NOT_ENOUGH_MEMORY;
    }
    pthread_condattr_destroy(&ca);
    if (key) {
        snprintf(t->key, sizeof t->key, "%s", key);
        t->keyed = true;
    }
    t->refs = 1;
    usbts_est_init(&t->est);

    if (page) {
        atomic_store_explicit(&page_of[i], page, memory_order_release);
    } else {
        atomic_store_explicit(&page_of[i], NULL, memory_order_release);
        struct usbts_page *p = &local_pages[i];
        usbts_page_init_local(p);
        static const struct usbts_model none;
        publish_model(&p->pub, &none);
        atomic_store(&p->pub.gone, false);
        atomic_store(&p->pub.clock.virt_ns, 0);
        atomic_store(&p->pub.clock.is_virtual, virtual_clock);
    }
    trackers[i] = t;
    *idx = i;
    return ERROR_SUCCESS;
}

void usbts_tracker_put(uint32_t idx)
{
    struct tracker *t = T(idx);
    if (!t || --t->refs > 0)
        return;
    stop_thread(t);
    usbts_source_destroy(t->src);
    free(t->factory_ctx);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    trackers[idx] = NULL;
    free(t);
    /* The pub slot keeps its memory: a racing query may still read it, and
     * then finds its handle dead when it re-validates. */
}

void usbts_tracker_set_source(uint32_t idx, struct usbts_source *src)
{
    struct tracker *t = T(idx);
    pthread_mutex_lock(&t->mu);
    t->src = src;
    pthread_mutex_unlock(&t->mu);
}

DWORD usbts_tracker_set_factory(uint32_t idx, usbts_source_factory f, const void *ctx, size_t ctx_size)
{
    struct tracker *t = T(idx);
    if (t->factory) /* a shared controller: the first device set it */
        return ERROR_SUCCESS;
    void *copy = usbts_failpoint() ? NULL : malloc(ctx_size ? ctx_size : 1);
    if (!copy)
        return ERROR_NOT_ENOUGH_MEMORY;
    memcpy(copy, ctx, ctx_size);
    t->factory = f;
    t->factory_ctx = copy;
    return ERROR_SUCCESS;
}

DWORD usbts_tracker_watch(uint32_t idx, bool (*present)(const void *ctx), const void *ctx, atomic_bool *flag)
{
    struct tracker *t = T(idx);
    DWORD err = ERROR_SUCCESS;
    pthread_mutex_lock(&t->mu);
    if (t->nwatches == WATCH_MAX)
        err = ERROR_NOT_ENOUGH_MEMORY;
    else
        t->watches[t->nwatches++] = (struct watch){present, ctx, flag};
    pthread_mutex_unlock(&t->mu);
    return err;
}

void usbts_tracker_unwatch(uint32_t idx, atomic_bool *flag)
{
    struct tracker *t = T(idx);
    pthread_mutex_lock(&t->mu);
    for (int i = 0; i < t->nwatches; i++) {
        if (t->watches[i].flag == flag) {
            t->watches[i] = t->watches[--t->nwatches];
            break;
        }
    }
    pthread_mutex_unlock(&t->mu);
}

/* ---- tracking handles ------------------------------------------------------ */

static DWORD ensure_source(uint32_t idx, struct tracker *t, char *msg, size_t msglen)
{
    if (t->src)
        return ERROR_SUCCESS;
    if (!t->factory) {
        snprintf(msg, msglen, "this controller has no frame-clock source");
        return ERROR_NOT_SUPPORTED;
    }
    return t->factory(t->factory_ctx, &PUB(idx)->clock, &t->src, msg, msglen);
}

static void read_error_message(DWORD err, struct tracker *t, char *msg, size_t msglen)
{
    if (err == ERROR_DEVICE_NOT_CONNECTED)
        snprintf(msg, msglen, "the host controller is gone (device unplugged or driver unbound); open the device again");
    else
        snprintf(msg, msglen, "reading MFINDEX through the %s source failed (error %u)", t->src->ops->name,
                 (unsigned)err);
}

/* Captures a fresh microframe boundary with the calling thread, so the very
 * first query after Start is accurate. */
static DWORD capture_inline(uint32_t idx, struct tracker *t, char *msg, size_t msglen)
{
    struct usbts_hostclock *clock = &PUB(idx)->clock;
    struct usbts_est_stats st;
    usbts_est_get_stats(&t->est, &st);
    uint64_t captures0 = st.captures;
    int64_t start = usbts_clock_now(clock);
    for (;;) {
        int64_t now = usbts_clock_now(clock);
        if (now - start > START_TIMEOUT_NS) {
            snprintf(msg, msglen,
                     "no microframe boundary seen within 2.048 s: the controller's frame counter is not running "
                     "(halted or suspended); retry, or pass IsStartupDelayTolerable = TRUE");
            return ERROR_TIMEOUT;
        }
        DWORD err = run_burst(idx, t, now + CAPTURE_BURST_NS, CAPTURE_BURST_READS, NULL);
        if (err != ERROR_SUCCESS) {
            read_error_message(err, t, msg, msglen);
            return err;
        }
        usbts_est_get_stats(&t->est, &st);
        if (st.captures > captures0)
            return ERROR_SUCCESS;
    }
}

DWORD usbts_tracker_acquire(uint32_t idx, bool tolerable, char *msg, size_t msglen)
{
    struct tracker *t = T(idx);
    struct usbts_tracker_pub *pub = PUB(idx);
    DWORD err;
    pthread_mutex_lock(&t->mu);
    if (atomic_load(&pub->gone)) {
        pthread_mutex_unlock(&t->mu);
        snprintf(msg, msglen, "the host controller is gone (device unplugged or driver unbound); open the device again");
        return ERROR_DEVICE_NOT_CONNECTED;
    }
    err = ensure_source(idx, t, msg, msglen);
    if (err == ERROR_SUCCESS) {
        struct usbts_model m;
        usbts_tracker_read_model(pub, &m);
        if (!tolerable && (t->users == 0 || !(m.flags & USBTS_MODEL_CAPTURED))) {
            err = capture_inline(idx, t, msg, msglen);
        } else if (t->users == 0) {
            /* One read: proves the counter is readable and anchors a coarse
             * model whose bound says how coarse it is. */
            err = run_burst(idx, t, INT64_MAX, 1, NULL);
            if (err != ERROR_SUCCESS)
                read_error_message(err, t, msg, msglen);
        }
    }
    if (err == ERROR_SUCCESS) {
        t->users++;
        /* The first user starts the sampler; so does any user of a forked
         * child, which inherited users but no thread. */
        if (!t->thread_running && !atomic_load(&pub->clock.is_virtual)) {
            t->last_watch_ns = usbts_monotonic_ns();
            err = start_thread(idx, t);
            if (err != ERROR_SUCCESS) {
                t->users--;
                snprintf(msg, msglen, "cannot start the sampler thread: out of memory or thread limit reached");
            }
        }
    }
    pthread_mutex_unlock(&t->mu);
    return err;
}

void usbts_tracker_release(uint32_t idx)
{
    struct tracker *t = T(idx);
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    bool last = t->users > 0 && --t->users == 0;
    pthread_mutex_unlock(&t->mu);
    if (last)
        stop_thread(t); /* no thread and no wake-ups while nobody tracks */
}

DWORD usbts_tracker_read_now(uint32_t idx, int64_t *mf, int64_t *t_ns, char *msg, size_t msglen)
{
    struct tracker *t = T(idx);
    pthread_mutex_lock(&t->mu);
    DWORD err = ensure_source(idx, t, msg, msglen);
    struct usbts_read r = {0};
    if (err == ERROR_SUCCESS) {
        for (int tries = 0; tries < 4; tries++) {
            err = read_once(idx, t, &r);
            if (err != NOT_A_SAMPLE)
                break;
        }
        if (err == NOT_A_SAMPLE) {
            snprintf(msg, msglen, "MFINDEX read back with reserved bits set four times: the controller did not "
                                  "answer cleanly; try again");
            err = ERROR_GEN_FAILURE;
        } else if (err != ERROR_SUCCESS) {
            read_error_message(err, t, msg, msglen);
        }
    }
    if (err == ERROR_SUCCESS) {
        /* Feeding it keeps the counter extension continuous across calls. */
        t->have_next = false;
        usbts_est_burst_begin(&t->est);
        usbts_est_feed(&t->est, &r);
        usbts_est_burst_end(&t->est);
        publish(idx, t);
        if (!usbts_est_extend(&t->est, &r, mf)) {
            snprintf(msg, msglen, "the frame counter jumped; try again");
            err = ERROR_GEN_FAILURE;
        }
        *mf += t->mf_offset;
        *t_ns = r.before_ns + (r.after_ns - r.before_ns) / 2;
    }
    pthread_mutex_unlock(&t->mu);
    return err;
}

DWORD usbts_tracker_with_source(uint32_t idx, DWORD (*fn)(struct usbts_tracker_pub *, struct usbts_source *, void *),
                                void *arg)
{
    struct tracker *t = T(idx);
    pthread_mutex_lock(&t->mu);
    DWORD err = t->src ? fn(PUB(idx), t->src, arg) : ERROR_NOT_SUPPORTED;
    pthread_mutex_unlock(&t->mu);
    return err;
}

DWORD usbts_tracker_advance(uint32_t idx, uint64_t ns)
{
    struct tracker *t = T(idx);
    struct usbts_tracker_pub *pub = PUB(idx);
    struct usbts_hostclock *clock = &pub->clock;
    if (ns > (uint64_t)INT64_MAX / 4)
        return ERROR_INVALID_PARAMETER;
    pthread_mutex_lock(&t->mu);
    /* The clock stops at 2^62 ns (146 years), so that no time the queries
     * compute from it, up to 2^31 frames either side, overflows. */
    if (usbts_clock_now(clock) > INT64_MAX / 2 - (int64_t)ns) {
        pthread_mutex_unlock(&t->mu);
        return ERROR_INVALID_PARAMETER;
    }
    /* A burst may end past the aim; if nothing has moved the clock since,
     * aim on from the previous aim, so that a thousand advances of 1 ms end
     * where one of 1 s does. */
    int64_t base = usbts_clock_now(clock);
    if (t->adv_end == base && t->adv_target > 0 && t->adv_target < base)
        base = t->adv_target;
    int64_t target = base + (int64_t)ns;
    while (t->users > 0 && t->src && !atomic_load(&pub->gone)) {
        int64_t now = usbts_clock_now(clock);
        int64_t earliest = now > t->next_burst_ns ? now : t->next_burst_ns;
        /* The plan is made where the last burst ended (or the watchdog lets
         * the next begin), not where this call began: one advance of a
         * second and a thousand of a millisecond then read at the same
         * instants and get the same answers. */
        if (!t->have_next) {
            usbts_est_plan(&t->est, earliest, &t->next); /* as the sampler thread does */
            t->have_next = true;
        }
        struct usbts_est_plan plan = t->next;
        int64_t start = plan.start_ns > earliest ? plan.start_ns : earliest;
        if (start < t->stall_until_ns)
            start = t->stall_until_ns;
        if (start < t->next_burst_ns)
            start = t->next_burst_ns;
        if (start < not_before(t))
            start = not_before(t);
        if (start > target)
            break;
        usbts_clock_set_at_least(clock, start);
        t->have_next = false;
        run_sampler_burst(idx, t, &plan);
        if (usbts_clock_now(clock) == now)
            usbts_clock_set_at_least(clock, now + 1); /* always make progress */
    }
    usbts_clock_set_at_least(clock, target);
    t->adv_target = target;
    t->adv_end = usbts_clock_now(clock);
    pthread_mutex_unlock(&t->mu);
    return ERROR_SUCCESS;
}

void usbts_tracker_stall(uint32_t idx, int64_t until_ns)
{
    struct tracker *t = T(idx);
    pthread_mutex_lock(&t->mu);
    if (until_ns > t->stall_until_ns)
        t->stall_until_ns = until_ns;
    pthread_mutex_unlock(&t->mu);
}

void usbts_tracker_status(uint32_t idx, struct usbts_tracker_status *st)
{
    struct tracker *t = T(idx);
    memset(st, 0, sizeof *st);
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    if (t->src)
        snprintf(st->source, sizeof st->source, "%s", t->src->ops->name);
    st->users = t->users;
    st->sampling_thread = t->thread_running;
    st->discarded_reads = t->discarded_reads;
    usbts_est_get_stats(&t->est, &st->est);
    pthread_mutex_unlock(&t->mu);
}

void usbts_tracker_inherit(uint32_t idx, const struct usbts_model *old, int64_t old_heartbeat_ns)
{
    struct tracker *t = T(idx);
    pthread_mutex_lock(&t->mu);
    t->inherit = old->generation != 0;
    t->inherited = *old;
    t->inherited_heartbeat_ns = old_heartbeat_ns;
    pthread_mutex_unlock(&t->mu);
}

/* ---- fork ------------------------------------------------------------------ */

/* The registry lock is held (trackers[] is stable).  Taking every tracker's
 * mutex waits for a sampler to finish its burst: the child then never
 * inherits a mutex held by a thread it does not have. */
void usbts_tracker_fork_prepare(void)
{
    for (uint32_t i = 0; i < USBTS_MAX_TRACKERS; i++)
        if (trackers[i])
            pthread_mutex_lock(&trackers[i]->mu);
}

void usbts_tracker_fork_parent(void)
{
    for (uint32_t i = USBTS_MAX_TRACKERS; i-- > 0;)
        if (trackers[i])
            pthread_mutex_unlock(&trackers[i]->mu);
}

void usbts_tracker_fork_child(void)
{
    for (uint32_t i = USBTS_MAX_TRACKERS; i-- > 0;) {
        struct tracker *t = trackers[i];
        if (!t)
            continue;
        /* The sampler thread stayed in the parent: forget it, so that Stop
         * and close never join it.  The condition variable may have had it
         * as a waiter: start it afresh. */
        t->thread_running = false;
        t->stop = false;
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&t->cv, &ca);
        pthread_condattr_destroy(&ca);
        pthread_mutex_unlock(&t->mu);
    }
}
