/* SPDX-License-Identifier: MIT */
/*
 * test_stress.c — threads racing Start, Query, Stop, Initialize, Free, open
 * and close on shared handles of real-clock simulated controllers, while
 * resets, halts and unplugs are injected.
 *
 * Every call must succeed or fail with one of the codes documented for it;
 * a successful query must be self-consistent.  Handles are shared through
 * atomics without any lock in the test, so calls constantly meet handles
 * that another thread has just stopped, freed, closed or replaced (and
 * tracking handles paired with the wrong interface).  At the end, once the
 * last device is closed, no library thread may be left; the ASan build's
 * LeakSanitizer checks at exit that no memory is.  Run under ThreadSanitizer
 * too (label "concurrency").
 *
 * USBTS_STRESS_SECONDS sets how long the threads race (default 3).
 */
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"
#include "usbtimesync/usbtimesync.h"

#define NDEV 3
#define NIF 8
#define NTR 16

/* ---- shared handles ------------------------------------------------------- */

static _Atomic(HANDLE) devs[NDEV];
static _Atomic(WINUSB_INTERFACE_HANDLE) ifs[NIF];
static _Atomic(HANDLE) trs[NTR];
static _Atomic(WINUSB_INTERFACE_HANDLE) tr_owner[NTR]; /* the interface trs[k] was started on (racy on purpose) */
static atomic_bool done;

/* ---- counters ----------------------------------------------------------------- */

enum op { OP_START, OP_QUERY, OP_FRAME_TO_NS, OP_FRAME_NUMBER, OP_STOP, OP_INIT, OP_FREE, OP_OPEN, OP_CLOSE,
          OP_INJECT, NOPS };
static const char *const op_names[NOPS] = {"Start", "Query", "frame_to_ns", "GetCurrentFrameNumber", "Stop",
                                           "Initialize", "Free", "open", "close", "inject"};

enum errs { E_INVALID_HANDLE, E_INVALID_PARAMETER, E_NOT_CONNECTED, E_TIMEOUT, E_NO_MEMORY, E_GEN_FAILURE, NERRS };
static const char *const err_names[NERRS] = {"INVALID_HANDLE", "INVALID_PARAMETER", "DEVICE_NOT_CONNECTED",
                                             "TIMEOUT", "NOT_ENOUGH_MEMORY", "GEN_FAILURE"};

static atomic_long ok_count[NOPS], fail_count[NOPS][NERRS];
static atomic_long undocumented, inconsistent;
static atomic_long n_reset, n_halt, n_unplug, n_reopen;

static int err_index(DWORD e)
{
    switch (e) {
    case ERROR_INVALID_HANDLE: return E_INVALID_HANDLE;
    case ERROR_INVALID_PARAMETER: return E_INVALID_PARAMETER;
    case ERROR_DEVICE_NOT_CONNECTED: return E_NOT_CONNECTED;
    case ERROR_TIMEOUT: return E_TIMEOUT;
    case ERROR_NOT_ENOUGH_MEMORY: return E_NO_MEMORY;
    case ERROR_GEN_FAILURE: return E_GEN_FAILURE;
    default: return -1;
    }
}

/* Records the outcome of one call; `allowed` is a bit mask over enum errs of
 * the failures documented for it. */
static void record(enum op op, BOOL ok, unsigned allowed)
{
    if (ok) {
        atomic_fetch_add(&ok_count[op], 1);
        return;
    }
    DWORD e = GetLastError();
    int i = err_index(e);
    if (i < 0 || !(allowed & (1u << i))) {
        if (atomic_fetch_add(&undocumented, 1) < 10)
            fprintf(stderr, "%s failed with undocumented error %u: %s\n", op_names[op], (unsigned)e,
                    usbts_last_error_message());
        return;
    }
    atomic_fetch_add(&fail_count[op][i], 1);
}

#define A(e) (1u << (e))

static void inconsistency(const char *what)
{
    if (atomic_fetch_add(&inconsistent, 1) < 10)
        fprintf(stderr, "inconsistent query result: %s\n", what);
}

/* ---- helpers ---------------------------------------------------------------------- */

static unsigned long long xs(unsigned long long *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void pause_us(long us)
{
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

static HANDLE open_sim(unsigned long long *seed)
{
    char spec[96];
    snprintf(spec, sizeof spec, "sim:seed=%llu,drift_ppm=%d", xs(seed) % 1000, (int)(xs(seed) % 401) - 200);
    HANDLE d = usbts_open(spec);
    record(OP_OPEN, d != INVALID_HANDLE_VALUE, A(E_NO_MEMORY));
    return d == INVALID_HANDLE_VALUE ? NULL : d;
}

/* ---- the racing threads ----------------------------------------------------------- */

static void *starter(void *arg)
{
    unsigned long long seed = (uintptr_t)arg * 0x9E3779B97F4A7C15ull + 1;
    while (!atomic_load(&done)) {
        WINUSB_INTERFACE_HANDLE ih = atomic_load(&ifs[xs(&seed) % NIF]);
        /* Mostly tolerable: a non-tolerable Start on a halted counter holds
         * the registry until the halt ends. */
        USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION s = {(xs(&seed) & 1) ? NULL : INVALID_HANDLE_VALUE,
                                                          (BOOLEAN)(xs(&seed) % 4 != 0)};
        BOOL ok = WinUsb_StartTrackingForTimeSync(ih, &s);
        record(OP_START, ok, A(E_INVALID_HANDLE) | A(E_NOT_CONNECTED) | A(E_TIMEOUT) | A(E_NO_MEMORY));
        if (ok) {
            if (s.TimeTrackingHandle == NULL || s.TimeTrackingHandle == INVALID_HANDLE_VALUE)
                inconsistency("Start returned NULL or INVALID_HANDLE_VALUE");
            unsigned k = (unsigned)(xs(&seed) % NTR);
            /* Replace slot k; stop what it held (the pair may be torn by a
             * racing replacement: then Stop fails with INVALID_HANDLE). */
            WINUSB_INTERFACE_HANDLE old_owner = atomic_exchange(&tr_owner[k], ih);
            HANDLE old = atomic_exchange(&trs[k], s.TimeTrackingHandle);
            if (old) {
                USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION p = {old};
                record(OP_STOP, WinUsb_StopTrackingForTimeSync(old_owner, &p), A(E_INVALID_HANDLE));
            }
        }
        pause_us(100);
    }
    return NULL;
}

static void *querier(void *arg)
{
    unsigned long long seed = (uintptr_t)arg * 0x9E3779B97F4A7C15ull + 7;
    unsigned n = 0;
    while (!atomic_load(&done)) {
        unsigned k = (unsigned)(xs(&seed) % NTR);
        WINUSB_INTERFACE_HANDLE ih = atomic_load(&tr_owner[k]);
        HANDLE th = atomic_load(&trs[k]);
        if (++n % 16 == 0) {
            USBTS_FRAME_TIME ft;
            BOOL ok = usbts_frame_to_ns(ih, th, (ULONG)xs(&seed), (ULONG)(xs(&seed) % 8), &ft);
            record(OP_FRAME_TO_NS, ok, A(E_INVALID_HANDLE) | A(E_NOT_CONNECTED));
            if (ok && (ft.BoundNs < 1 || ft.MicroFrameNumber > 7 || ft.GenerationId == 0))
                inconsistency("usbts_frame_to_ns");
            continue;
        }
        if (n % 64 == 1) {
            ULONG frame;
            LARGE_INTEGER ts;
            BOOL ok = WinUsb_GetCurrentFrameNumber(atomic_load(&ifs[xs(&seed) % NIF]), &frame, &ts);
            /* GEN_FAILURE: the one read met a reset ("try again"). */
            record(OP_FRAME_NUMBER, ok, A(E_INVALID_HANDLE) | A(E_NOT_CONNECTED) | A(E_GEN_FAILURE));
            continue;
        }
        USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;
        memset(&q, 0, sizeof q);
        q.TimeTrackingHandle = th;
        q.InputFrameNumber = (ULONG)xs(&seed);
        q.InputMicroFrameNumber = (ULONG)(xs(&seed) % 9); /* 8: INVALID_PARAMETER */
        LARGE_INTEGER after;
        BOOL ok = WinUsb_GetCurrentFrameNumberAndQpc(ih, &q);
        QueryPerformanceCounter(&after);
        record(OP_QUERY, ok, A(E_INVALID_HANDLE) | A(E_NOT_CONNECTED) | A(E_INVALID_PARAMETER));
        if (ok && q.InputMicroFrameNumber > 7)
            inconsistency("InputMicroFrameNumber 8 accepted");
        if (!ok)
            continue;
        if (q.QueryPerformanceCounterFrequency.QuadPart != 10000000)
            inconsistency("frequency");
        if (q.CurrentHardwareFrameNumber != (q.CurrentUSBFrameNumber & 0x7FF) || q.CurrentHardwareMicroFrameNumber > 7)
            inconsistency("hardware frame fields");
        if (q.CurrentGenerationID == 0 || q.PredictedAccuracyInMicroSeconds == 0)
            inconsistency("generation or accuracy zero");
        if (q.TimeTrackingHandle != th)
            inconsistency("TimeTrackingHandle changed");
        /* The current microframe started no later than the call returned
         * (give or take the stated accuracy). */
        if (q.CurrentQueryPerformanceCounter.QuadPart >
            after.QuadPart + 10 * (LONGLONG)q.PredictedAccuracyInMicroSeconds + 1) {
            char why[200];
            snprintf(why, sizeof why,
                     "the current microframe starts %lld ticks after the call returned (accuracy %u us, generation %u)",
                     (long long)(q.CurrentQueryPerformanceCounter.QuadPart - after.QuadPart),
                     (unsigned)q.PredictedAccuracyInMicroSeconds, (unsigned)q.CurrentGenerationID);
            inconsistency(why);
        }
        if ((q.InputFrameNumber != 0 || q.InputMicroFrameNumber != 0) &&
            q.QueryPerformanceCounterAtInputFrameOrMicroFrame.QuadPart == 0)
            inconsistency("no QPC for a non-zero input frame");
    }
    return NULL;
}

static void *stopper(void *arg)
{
    unsigned long long seed = (uintptr_t)arg * 0x9E3779B97F4A7C15ull + 13;
    while (!atomic_load(&done)) {
        unsigned k = (unsigned)(xs(&seed) % NTR);
        USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION p = {atomic_load(&trs[k])};
        record(OP_STOP, WinUsb_StopTrackingForTimeSync(atomic_load(&tr_owner[k]), &p), A(E_INVALID_HANDLE));
        pause_us(300);
    }
    return NULL;
}

static void *initfree(void *arg)
{
    unsigned long long seed = (uintptr_t)arg * 0x9E3779B97F4A7C15ull + 17;
    while (!atomic_load(&done)) {
        WINUSB_INTERFACE_HANDLE ih = NULL;
        BOOL ok = WinUsb_Initialize(atomic_load(&devs[xs(&seed) % NDEV]), &ih);
        record(OP_INIT, ok, A(E_INVALID_HANDLE) | A(E_NOT_CONNECTED) | A(E_NO_MEMORY));
        if (ok) {
            WINUSB_INTERFACE_HANDLE old = atomic_exchange(&ifs[xs(&seed) % NIF], ih);
            if (old)
                record(OP_FREE, WinUsb_Free(old), A(E_INVALID_HANDLE));
        } else if (xs(&seed) % 4 == 0) {
            /* Free whatever a slot holds, live or not. */
            record(OP_FREE, WinUsb_Free(atomic_load(&ifs[xs(&seed) % NIF])), A(E_INVALID_HANDLE));
        }
        pause_us(500);
    }
    return NULL;
}

/* Faults: resets and halts often, now and then an unplug or a close, after
 * which the device is replaced by a newly opened one. */
static void *injector(void *arg)
{
    unsigned long long seed = (uintptr_t)arg * 0x9E3779B97F4A7C15ull + 23;
    int dead_for[NDEV] = {0};
    while (!atomic_load(&done)) {
        unsigned d = (unsigned)(xs(&seed) % NDEV);
        HANDLE dev = atomic_load(&devs[d]);
        unsigned r = (unsigned)(xs(&seed) % 100);
        char ev[32];
        if (dead_for[d] > 0) {
            if (--dead_for[d] == 0) {
                HANDLE fresh = open_sim(&seed);
                HANDLE old = atomic_exchange(&devs[d], fresh);
                /* Already closed when it "died" by close: INVALID_HANDLE. */
                record(OP_CLOSE, usbts_close(old), A(E_INVALID_HANDLE));
                atomic_fetch_add(&n_reopen, 1);
            }
        } else if (r < 45) {
            record(OP_INJECT, usbts_sim_inject(dev, "reset"), A(E_INVALID_HANDLE));
            atomic_fetch_add(&n_reset, 1);
        } else if (r < 90) {
            snprintf(ev, sizeof ev, "halt_ms=%u", 1 + (unsigned)(xs(&seed) % 30));
            record(OP_INJECT, usbts_sim_inject(dev, ev), A(E_INVALID_HANDLE));
            atomic_fetch_add(&n_halt, 1);
        } else if (r < 95) {
            record(OP_INJECT, usbts_sim_inject(dev, "unplug"), A(E_INVALID_HANDLE));
            atomic_fetch_add(&n_unplug, 1);
            dead_for[d] = 3;
        } else {
            record(OP_CLOSE, usbts_close(dev), A(E_INVALID_HANDLE));
            dead_for[d] = 3;
        }
        pause_us(2000 + (long)(xs(&seed) % 8000));
    }
    return NULL;
}

/* Library threads: the sampler names itself usbts-sampler. */
static int sampler_threads(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], name[32] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (f) {
            if (fgets(name, sizeof name, f))
                n += strncmp(name, "usbts-sampler", 13) == 0;
            fclose(f);
        }
    }
    if (d)
        closedir(d);
    return n;
}

/* The race was a real one: each kind of call both succeeded and met dead
 * handles, and faults were injected. */
static bool race_covered(void)
{
    return atomic_load(&ok_count[OP_START]) > 0 && atomic_load(&ok_count[OP_QUERY]) > 0 &&
           atomic_load(&fail_count[OP_QUERY][E_INVALID_HANDLE]) > 0 && atomic_load(&ok_count[OP_STOP]) > 0 &&
           atomic_load(&ok_count[OP_FREE]) > 0 && atomic_load(&n_reset) + atomic_load(&n_halt) > 0;
}

static void *nothing(void *arg)
{
    return arg;
}

int main(void)
{
    double seconds = 3;
    const char *env = getenv("USBTS_STRESS_SECONDS");
    if (env && atof(env) > 0)
        seconds = atof(env);
    /* ThreadSanitizer starts a helper thread of its own with the first
     * pthread_create: let it, before counting. */
    pthread_t warm;
    if (pthread_create(&warm, NULL, nothing, NULL) == 0)
        pthread_join(warm, NULL);
    int tasks0 = test_task_count();
    CHECK(tasks0 >= 1);

    unsigned long long seed = 12345;
    for (int d = 0; d < NDEV; d++) {
        atomic_store(&devs[d], open_sim(&seed));
        CHECK(atomic_load(&devs[d]) != NULL);
    }
    for (int i = 0; i < NIF; i++) {
        WINUSB_INTERFACE_HANDLE ih = NULL;
        CHECK(WinUsb_Initialize(atomic_load(&devs[i % NDEV]), &ih));
        atomic_store(&ifs[i], ih);
    }

    /* A device and tracking handle the racing threads never touch, so a
     * sampler surely runs throughout; it is closed with the rest. */
    HANDLE quiet = open_sim(&seed);
    WINUSB_INTERFACE_HANDLE quiet_if = NULL;
    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION quiet_st = {NULL, TRUE};
    CHECK(WinUsb_Initialize(quiet, &quiet_if) && WinUsb_StartTrackingForTimeSync(quiet_if, &quiet_st));

    void *(*const fns[])(void *) = {starter, starter, querier, querier, stopper, initfree, injector};
    enum { NTHREADS = sizeof fns / sizeof fns[0] };
    pthread_t th[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        CHECK(pthread_create(&th[i], NULL, fns[i], (void *)(uintptr_t)(i + 1)) == 0);
    struct timespec run = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    nanosleep(&run, NULL);
    /* How much of the race happens in that time depends on the machine's
     * load: if some kind of outcome has not happened yet, the race goes on
     * until it has, checked every 100 ms, for at most 30 s more. */
    double extra = 0;
    for (; !race_covered() && extra < 30; extra += 0.1) {
        struct timespec tick = {0, 100000000};
        nanosleep(&tick, NULL);
    }
    seconds += extra;
    int samplers_running = sampler_threads();
    atomic_store(&done, true);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);

    /* Close everything: every interface and tracking handle goes with its
     * device, and with the last tracking handle each sampler thread. */
    for (int d = 0; d < NDEV; d++)
        record(OP_CLOSE, usbts_close(atomic_load(&devs[d])), A(E_INVALID_HANDLE));
    CHECK(usbts_close(quiet));
    for (int i = 0; i < NIF; i++)
        CHECK_FAILS_WITH(WinUsb_Free(atomic_load(&ifs[i])), ERROR_INVALID_HANDLE);
    for (int k = 0; k < NTR; k++) {
        USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;
        memset(&q, 0, sizeof q);
        q.TimeTrackingHandle = atomic_load(&trs[k]);
        CHECK_FAILS_WITH(WinUsb_GetCurrentFrameNumberAndQpc(atomic_load(&tr_owner[k]), &q), ERROR_INVALID_HANDLE);
    }
    int tasks1 = test_task_count_settled(tasks0), samplers_left = sampler_threads();

    long total = 0;
    printf("%-22s %9s", "operation", "ok");
    for (int e = 0; e < NERRS; e++)
        printf(" %s", err_names[e]);
    printf("\n");
    for (int o = 0; o < NOPS; o++) {
        long sum = atomic_load(&ok_count[o]);
        printf("%-22s %9ld", op_names[o], atomic_load(&ok_count[o]));
        for (int e = 0; e < NERRS; e++) {
            long v = atomic_load(&fail_count[o][e]);
            printf(" %*ld", (int)strlen(err_names[e]), v);
            sum += v;
        }
        printf("\n");
        total += sum;
    }
    printf("operations %ld in %.1f s; faults injected: %ld resets, %ld halts, %ld unplugs, %ld devices replaced\n",
           total, seconds, atomic_load(&n_reset), atomic_load(&n_halt), atomic_load(&n_unplug),
           atomic_load(&n_reopen));
    printf("threads: %d before, %d after the last close; sampler threads %d while racing, %d after\n", tasks0,
           tasks1, samplers_running, samplers_left);

    CHECK_EQ(atomic_load(&undocumented), 0);
    CHECK_EQ(atomic_load(&inconsistent), 0);
    CHECK_EQ(tasks1, tasks0);
    CHECK_MSG(samplers_running >= 1, "a sampler thread ran while tracking (%d seen)", samplers_running);
    CHECK_EQ(samplers_left, 0);
    /* The race was a real one (race_covered(), one fact at a time). */
    CHECK(atomic_load(&ok_count[OP_START]) > 0);
    CHECK(atomic_load(&ok_count[OP_QUERY]) > 0);
    CHECK(atomic_load(&fail_count[OP_QUERY][E_INVALID_HANDLE]) > 0);
    CHECK(atomic_load(&ok_count[OP_STOP]) > 0);
    CHECK(atomic_load(&ok_count[OP_FREE]) > 0);
    CHECK(atomic_load(&n_reset) + atomic_load(&n_halt) > 0);
    return test_finish();
}
