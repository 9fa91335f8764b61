/* SPDX-License-Identifier: MIT */
/*
 * test_watchdog.c — the tracker's watchdog property (issue #16): whatever the
 * counter does, the sampler never spins, Stop returns, and a reset yields a
 * new generation within 50 ms of the counter being readable again.
 *
 * The hard case is a reset that lands a few microframes before an MFINDEX
 * wrap: the counter restarts from 0 just where the model expected the wrap
 * to 0, so every burst's first read looks like a sampler that woke a little
 * late.  That once locked the tracker up for good.
 *
 * Virtual clock: a reset at every distance 1..64 microframes before a wrap;
 * exact facts (new generation within 50 ms of virtual time, answers inside
 * their bound afterwards, reads within the watchdog's budget).
 * Real clock: the same distances spread over a few devices tracked at once;
 * Stop must return and the sampler's read count must stay within the
 * watchdog's budget (never asserted in time: the machine is shared).
 */
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "usbtimesync/usbtimesync.h"

#define UF_NS 125000LL
#define WRAP_NS (16384 * UF_NS)
#define RECOVERY_NS 50000000LL
#define READ_NS 500.0
/* The sampler reads at most 1/8 of the time (src/tracker.c), and no
 * simulated read is shorter than half the median: this many reads in t ns,
 * plus one burst's worth, is the most a sampler that does not spin can do.
 * One that spins reads back to back, four times as many. */
static long long read_budget(long long t_ns)
{
    return (long long)((double)t_ns / 8 / (READ_NS / 2)) + 4096;
}

static bool query(const struct test_tracked *k, USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION *q)
{
    memset(q, 0, sizeof *q);
    q->TimeTrackingHandle = k->th;
    return WinUsb_GetCurrentFrameNumberAndQpc(k->ih, q);
}

static unsigned long long reads_of(HANDLE d)
{
    USBTS_TRACKING_STATS st;
    return usbts_get_tracking_stats(d, &st) ? st.Reads : 0;
}

/* Host time of the next MFINDEX wrap at least `after` ns from now. */
static long long next_wrap(HANDLE d, long long after)
{
    LONGLONG now, t;
    usbts_now_ns(d, &now);
    usbts_sim_truth(d, 0, 0, &t);
    while (t < now + after)
        t += WRAP_NS;
    return t;
}

/* ---- virtual clock: exact ------------------------------------------------ */

static void virtual_resets(void)
{
    long long worst_ns = 0, worst_reads = 0;
    int recovered = 0, honest = 0;
    for (int n = 1; n <= 64; n++) {
        char spec[96];
        snprintf(spec, sizeof spec, "sim:clock=virtual,seed=%d,drift_ppm=%d,read_ns=%g", 100 + n, (n % 9 - 4) * 37,
                 READ_NS);
        struct test_tracked k;
        if (!test_track(&k, spec)) {
            CHECK_MSG(false, "distance %d: cannot start tracking: %s", n, usbts_last_error_message());
            continue;
        }
        CHECK(usbts_sim_advance(k.d, 1000000000ull));
        /* n microframes before the wrap, at a point inside the microframe
         * that moves with n */
        LONGLONG now;
        usbts_now_ns(k.d, &now);
        long long at = next_wrap(k.d, 10000000) - n * UF_NS + 3000 + (n * 1913) % 120000;
        CHECK(usbts_sim_advance(k.d, (ULONGLONG)(at - now)));
        USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;
        CHECK(query(&k, &q));
        ULONG g0 = q.CurrentGenerationID;
        unsigned long long r0 = reads_of(k.d);
        LONGLONG t0;
        usbts_now_ns(k.d, &t0);
        CHECK(usbts_sim_inject(k.d, "reset"));
        long long took = -1;
        for (long long step = 0; step < 200 && took < 0; step++) {
            CHECK(usbts_sim_advance(k.d, 250000));
            if (query(&k, &q) && q.CurrentGenerationID != g0) {
                LONGLONG t;
                usbts_now_ns(k.d, &t);
                took = t - t0;
            }
        }
        LONGLONG t1;
        usbts_now_ns(k.d, &t1);
        long long reads = (long long)(reads_of(k.d) - r0);
        CHECK_MSG(took >= 0 && took <= RECOVERY_NS, "reset %d microframes before a wrap: new generation after %lld ns",
                  n, took);
        CHECK_MSG(reads <= read_budget(t1 - t0), "reset %d microframes before a wrap: %lld reads in %lld ns", n, reads,
                  (long long)(t1 - t0));
        recovered += took >= 0 && took <= RECOVERY_NS;
        worst_ns = took > worst_ns ? took : worst_ns;
        worst_reads = reads > worst_reads ? reads : worst_reads;
        /* and the new generation tells the truth */
        CHECK(usbts_sim_advance(k.d, 300000000ull));
        CHECK(query(&k, &q));
        LONGLONG truth;
        CHECK(usbts_sim_truth(k.d, q.CurrentUSBFrameNumber, q.CurrentHardwareMicroFrameNumber, &truth));
        long long err = llabs(q.CurrentQueryPerformanceCounter.QuadPart * 100 - truth);
        bool inside = err <= (long long)q.PredictedAccuracyInMicroSeconds * 1000 + 50;
        CHECK_MSG(inside, "reset %d microframes before a wrap: 300 ms later off by %lld ns, accuracy %u us", n, err,
                  (unsigned)q.PredictedAccuracyInMicroSeconds);
        honest += inside;
        CHECK(test_untrack(&k));
    }
    printf("virtual clock: %d/64 resets before a wrap recovered within 50 ms (worst %.2f ms, at most %lld reads), "
           "%d/64 honest 300 ms later\n",
           recovered, (double)worst_ns / 1e6, worst_reads, honest);
}

/* A halt that ends with a reset close to where the wrap was due: the counter
 * reads 0 while halted, then counts from 0.  A new generation for the halt,
 * and another for the restart. */
static void virtual_halt_near_wrap(void)
{
    struct test_tracked k;
    CHECK(test_track(&k, "sim:clock=virtual,seed=7"));
    CHECK(usbts_sim_advance(k.d, 1000000000ull));
    LONGLONG now;
    usbts_now_ns(k.d, &now);
    CHECK(usbts_sim_advance(k.d, (ULONGLONG)(next_wrap(k.d, 10000000) - 3 * UF_NS - now)));
    USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;
    CHECK(query(&k, &q));
    ULONG g0 = q.CurrentGenerationID;
    CHECK(usbts_sim_inject(k.d, "reset"));
    CHECK(usbts_sim_inject(k.d, "halt_ms=5"));
    CHECK(usbts_sim_advance(k.d, 5000000));
    CHECK(usbts_sim_advance(k.d, RECOVERY_NS));
    CHECK(query(&k, &q));
    CHECK_MSG(q.CurrentGenerationID != g0, "no new generation 50 ms after a halted reset ended");
    CHECK(test_untrack(&k));
}

/* ---- real clock: Stop returns, no spin ------------------------------------ */

#define REAL_DEVICES 8
#define REAL_ROUNDS 8 /* REAL_DEVICES * REAL_ROUNDS distances: 1..64 */

struct real_result {
    int failures;     /* calls that failed */
    int over_budget;  /* rounds with more reads than the watchdog allows */
    int recovered;    /* rounds that saw a new generation */
    long long worst_reads_per_ms;
    bool stopped;     /* Stop returned */
};

static struct real_result results[REAL_DEVICES];

static void sleep_until(HANDLE d, long long t)
{
    LONGLONG now;
    usbts_now_ns(d, &now);
    if (t - now > 300000) {
        struct timespec ts = {0, 0};
        long long dt = t - now - 300000;
        ts.tv_sec = dt / 1000000000;
        ts.tv_nsec = dt % 1000000000;
        nanosleep(&ts, NULL);
    }
    do
        usbts_now_ns(d, &now);
    while (now < t);
}

static void *real_device(void *arg)
{
    int i = (int)(intptr_t)arg;
    struct real_result *res = &results[i];
    char spec[96];
    snprintf(spec, sizeof spec, "sim:seed=%d,read_ns=%g", 300 + i, READ_NS);
    struct test_tracked k;
    if (!test_track(&k, spec)) {
        res->failures++;
        return NULL;
    }
    for (int round = 0; round < REAL_ROUNDS; round++) {
        int n = 1 + round * REAL_DEVICES + i;
        sleep_until(k.d, next_wrap(k.d, 2000000) - n * UF_NS + 20000);
        USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;
        res->failures += !query(&k, &q);
        ULONG g0 = q.CurrentGenerationID;
        unsigned long long r0 = reads_of(k.d);
        LONGLONG t0, t1;
        usbts_now_ns(k.d, &t0);
        res->failures += !usbts_sim_inject(k.d, "reset");
        /* Watch for a while; the figures are counts, not times. */
        bool seen = false;
        for (int ms = 0; ms < 200; ms++) {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
            if (query(&k, &q) && q.CurrentGenerationID != g0)
                seen = true;
        }
        usbts_now_ns(k.d, &t1);
        long long reads = (long long)(reads_of(k.d) - r0);
        res->over_budget += reads > read_budget(t1 - t0);
        long long per_ms = reads * 1000000 / (t1 - t0 > 0 ? t1 - t0 : 1);
        if (per_ms > res->worst_reads_per_ms)
            res->worst_reads_per_ms = per_ms;
        res->recovered += seen;
    }
    res->stopped = test_untrack(&k);
    return NULL;
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "FAIL test_watchdog: still running after 240 s: Stop did not return (lock-up)\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    _exit(1);
}

static void real_resets(void)
{
    pthread_t th[REAL_DEVICES];
    for (int i = 0; i < REAL_DEVICES; i++)
        CHECK(pthread_create(&th[i], NULL, real_device, (void *)(intptr_t)i) == 0);
    int recovered = 0;
    long long worst = 0;
    for (int i = 0; i < REAL_DEVICES; i++) {
        pthread_join(th[i], NULL);
        CHECK_MSG(results[i].failures == 0, "device %d: %d calls failed", i, results[i].failures);
        CHECK_MSG(results[i].over_budget == 0, "device %d: the sampler read more than the watchdog allows in %d rounds",
                  i, results[i].over_budget);
        CHECK_MSG(results[i].stopped, "device %d: Stop failed", i);
        recovered += results[i].recovered;
        worst = results[i].worst_reads_per_ms > worst ? results[i].worst_reads_per_ms : worst;
    }
    printf("real clock: %d resets before a wrap, Stop returned on every device, at most %lld reads per ms "
           "(a spinning sampler: about %.0f), %d seen as a new generation within about 200 ms\n",
           REAL_DEVICES * REAL_ROUNDS, worst, 1e6 / READ_NS, recovered);
}

int main(void)
{
    signal(SIGALRM, on_alarm);
    alarm(240);
    virtual_resets();
    virtual_halt_near_wrap();
    real_resets();
    return test_finish();
}
