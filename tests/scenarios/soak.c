/* SPDX-License-Identifier: MIT */
/*
 * soak — randomised adversarial scenarios on the virtual-clock simulator
 * (issue #16).  Each scenario is a pure function of its own seed: a random
 * mix of the simulator's misfortunes (drift, wander, random walk, NTP-style
 * slews, slow and preempted and torn reads, late wake-ups, an SOF offset, a
 * latch anywhere in the bracket) and up to three events (reset, halt, reset
 * while halted, suspend, sampler stall, FLADJ change, a controller that
 * vanishes).  A scenario fails on
 *   - more than 1% of returned times outside their bound (PredictedAccuracy,
 *     and BoundNs of usbts_frame_to_ns),
 *   - any query naming a wrong (micro)frame or a wrong wrap count,
 *   - a spinning sampler: more than SCENARIO_SPIN_SHARE of any 100 ms spent
 *     reading (counted from its reads, never from CPU time),
 *   - a reset, halt or suspend without a new generation within 50 ms of
 *     virtual time after the counter runs again, or a vanished controller
 *     not reported gone within 200 ms,
 *   - any API failure.
 * It prints the worst error and the recovery times, and for each failure the
 * seed and the command that replays it.
 *
 *   soak [--seconds S] [--count N] [--seed N]   run scenarios (default: 100 of them, seed 1)
 *   soak --one SEED [-v]                        replay one scenario
 *   soak --keys K [--event WHAT@MS]... [--duration MS] [--count N] [--seed N] [-v]
 *                                               one fixed scenario over N seeds
 *
 * --seconds bounds the wall time spent (at least one scenario runs); it
 * decides how many scenarios run, never whether one passes.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "known_failures.h"
#include "scenario.h"
#include "sim.h" /* USBTS_SIM_SOF_COVERED_NS */

struct gen {
    uint64_t s;
};

static uint64_t next(struct gen *g)
{
    uint64_t z = (g->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double unif(struct gen *g, double lo, double hi)
{
    return lo + (hi - lo) * (double)(next(g) >> 11) * (1.0 / 9007199254740992.0);
}

static bool chance(struct gen *g, double p)
{
    return unif(g, 0, 1) < p;
}

struct made {
    struct scenario sc;
    char keys[512];
    char ev[SCENARIO_MAX_EVENTS][32];
    char name[32];
};

static void add_key(char *keys, size_t len, const char *fmt, double v)
{
    size_t n = strlen(keys);
    if (n)
        snprintf(keys + n, len - n, ",");
    n = strlen(keys);
    snprintf(keys + n, len - n, fmt, v);
}

/* The scenario of one seed.  Ranges stay inside what the library claims to
 * handle: ±1000 ppm in all, |sof_ns| <= 250, FLADJ 30..34. */
static void make_scenario(uint64_t seed, struct made *m)
{
    memset(m, 0, sizeof *m);
    struct gen g = {seed * 0x2545F4914F6CDD1Dull + 7};
    char *k = m->keys;
    size_t kl = sizeof m->keys;
    double drift = unif(&g, -400, 400);
    add_key(k, kl, "drift_ppm=%.1f", drift);
    add_key(k, kl, "read_ns=%.0f", exp(unif(&g, log(100), log(5000))));
    if (chance(&g, 0.4)) {
        add_key(k, kl, "preempt_prob=%.3f", unif(&g, 0, 0.1));
        add_key(k, kl, "preempt_us=%.0f", unif(&g, 10, 500));
    }
    if (chance(&g, 0.3))
        add_key(k, kl, "latch=%.2f", unif(&g, 0, 1));
    if (chance(&g, 0.3))
        add_key(k, kl, "latch_spread=%.2f", unif(&g, 0, 1));
    if (chance(&g, 0.3))
        add_key(k, kl, "sof_ns=%.0f", unif(&g, -USBTS_SIM_SOF_COVERED_NS, USBTS_SIM_SOF_COVERED_NS));
    if (chance(&g, 0.3)) {
        add_key(k, kl, "slow_prob=%.4f", unif(&g, 0, 0.005));
        add_key(k, kl, "slow_reads=%.0f", unif(&g, 1, 500));
        add_key(k, kl, "slow_ns=%.0f", unif(&g, 1000, 20000));
    }
    if (chance(&g, 0.3)) {
        add_key(k, kl, "wake_prob=%.2f", unif(&g, 0, 0.5));
        add_key(k, kl, "wake_us=%.0f", unif(&g, 10, 500));
    }
    if (chance(&g, 0.3)) {
        add_key(k, kl, "torn_prob=%.3f", unif(&g, 0, 0.05));
        add_key(k, kl, "allones_prob=%.3f", unif(&g, 0, 0.02));
    }
    if (chance(&g, 0.25)) {
        add_key(k, kl, "ntp_ppm=%.0f", unif(&g, 0, 200));
        add_key(k, kl, "ntp_ms=%.0f", unif(&g, 500, 5000));
    }
    if (chance(&g, 0.25))
        add_key(k, kl, "walk_ppm=%.2f", unif(&g, 0, 1));
    if (chance(&g, 0.25))
        add_key(k, kl, "wander_ppm=%.2f", unif(&g, 0, 2));
    double slew_at = -1;
    if (chance(&g, 0.2)) {
        add_key(k, kl, "slew_ppm=%.0f", unif(&g, -300, 300));
        slew_at = unif(&g, 2000, 8000);
        add_key(k, kl, "slew_at_ms=%.0f", slew_at);
    }
    if (chance(&g, 0.2))
        add_key(k, kl, "fladj=%.0f", floor(unif(&g, 30, 35)));

    /* Events, at least 3 s apart, the first after the 2 s warm-up. */
    int nev = (int)floor(unif(&g, 0, 4));
    double t = 2000;
    for (int i = 0; i < nev; i++) {
        t += unif(&g, 1000, 4000);
        double d = floor(unif(&g, 0, 7));
        char *e = m->ev[i];
        size_t el = sizeof m->ev[i];
        double ms = 0;
        if (d < 1) {
            snprintf(e, el, "reset");
        } else if (d < 2) {
            ms = floor(unif(&g, 1, 500));
            snprintf(e, el, "halt_ms=%.0f", ms);
        } else if (d < 3) {
            ms = floor(unif(&g, 1, 500));
            snprintf(e, el, "reset_halt_ms=%.0f", ms);
        } else if (d < 4) {
            ms = floor(unif(&g, 10, 2000));
            snprintf(e, el, "suspend_ms=%.0f", ms);
        } else if (d < 5) {
            ms = floor(unif(&g, 10, 10000));
            snprintf(e, el, "stall_ms=%.0f", ms);
        } else if (d < 6) {
            snprintf(e, el, "fladj=%.0f", floor(unif(&g, 30, 35)));
        } else if (i == nev - 1) {
            /* A vanish ends what can be judged.  It comes 5 s later than
             * another event would, so that a scenario that ends in one
             * judges about as long as one that does not: one 1 s after the
             * warm-up left 1 s to judge, where the few ms a host-clock rate
             * step goes unseen until the next capture (up to a cadence, 20
             * ms) alone came to more than 1%. */
            snprintf(e, el, "vanish");
            t += 5000;
        } else {
            snprintf(e, el, "reset");
        }
        m->sc.events[i].at_ms = t;
        m->sc.events[i].what = e;
        t += ms + 2000;
    }
    snprintf(m->name, sizeof m->name, "soak-%llu", (unsigned long long)seed);
    m->sc.name = m->name;
    m->sc.keys = m->keys;
    m->sc.duration_ms = t + unif(&g, 3000, 8000);
    /* A host-clock step is an event too, and the scenario goes on at least
     * 3 s after it, as after every event: the answers until the first
     * capture that can see the step (a cadence, more with coarse reads)
     * are the old fit's, and in a scenario ending 0.5 s after it they came
     * to more than 1% of all judged. */
    if (slew_at >= 0 && m->sc.duration_ms < slew_at + 3000)
        m->sc.duration_ms = slew_at + 3000;
}

struct tally {
    long long scenarios, failed, known, xpass, queries, values;
    double worst_max_ns, worst_p99_ns, worst_outside, worst_outside_ns, worst_share;
    uint64_t worst_max_seed, worst_p99_seed, worst_outside_seed;
    double rec[4096];
    int nrec;
    double gone_max;
    double virtual_s;
};

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void describe(const struct made *m)
{
    printf("  keys: %s\n  events:", m->keys[0] ? m->keys : "(none)");
    for (int i = 0; i < SCENARIO_MAX_EVENTS && m->sc.events[i].what; i++)
        printf(" %s@%.0fms", m->sc.events[i].what, m->sc.events[i].at_ms);
    printf("%s; %.0f ms in all\n", m->sc.events[0].what ? "" : " (none)", m->sc.duration_ms);
}

static struct made fixed; /* --keys: the scenario every seed runs */
static bool use_fixed;

/* Runs one; returns true when it passed. */
static bool one(uint64_t seed, struct tally *t, bool verbose)
{
    struct made m;
    if (use_fixed) {
        m = fixed;
        for (int i = 0; i < SCENARIO_MAX_EVENTS && fixed.sc.events[i].what; i++)
            m.sc.events[i].what = m.ev[i];
        m.sc.keys = m.keys;
        m.sc.name = m.name;
    } else {
        make_scenario(seed, &m);
    }
    struct scenario_result r;
    bool ok = scenario_run(&m.sc, seed, &r);
    char why[256] = "";
    size_t wl = sizeof why;
#define WHY(...) snprintf(why + strlen(why), wl - strlen(why), __VA_ARGS__)
    if (!ok)
        WHY("API failure: %s; ", r.failure);
    if (r.outside_share > 0.01)
        WHY("%.2f%% outside PredictedAccuracy; ", 100 * r.outside_share);
    if (r.outside_ns_share > 0.01)
        WHY("%.2f%% outside BoundNs; ", 100 * r.outside_ns_share);
    if (r.frame_errors)
        WHY("%lld wrong frame numbers; ", r.frame_errors);
    if (r.max_read_share > SCENARIO_SPIN_SHARE)
        WHY("sampler spun: %.0f%% of 100 ms reading; ", 100 * r.max_read_share);
    if (r.worst_recovery_ms > SCENARIO_RECOVERY_MS)
        WHY("no new generation within %.0f ms (%.1f ms); ", SCENARIO_RECOVERY_MS, r.worst_recovery_ms);
    /* 1 frame, plus the rate error (drift, FLADJ, slews: under 0.15%) */
    if ((double)llabs(r.frame_jump_error) > 1 + 0.0015 * (double)r.stall_frames)
        WHY("frame number off by %lld after a stall of %lld frames; ", r.frame_jump_error, r.stall_frames);
    if (r.stall_new_generation)
        WHY("a sampler stall started a new generation; ");
    bool vanish = false;
    for (int i = 0; i < SCENARIO_MAX_EVENTS && m.sc.events[i].what; i++)
        vanish |= strcmp(m.sc.events[i].what, "vanish") == 0;
    if (vanish && (r.gone_ms < 0 || r.gone_ms > 200))
        WHY("vanished controller not reported gone within 200 ms (%.1f ms); ", r.gone_ms);
    bool pass = why[0] == '\0';

    t->scenarios++;
    t->queries += r.queries;
    t->values += r.n;
    t->virtual_s += m.sc.duration_ms / 1000;
    if (r.n > 0) {
        if (r.max_ns > t->worst_max_ns) {
            t->worst_max_ns = r.max_ns;
            t->worst_max_seed = seed;
        }
        if (r.p99_ns > t->worst_p99_ns) {
            t->worst_p99_ns = r.p99_ns;
            t->worst_p99_seed = seed;
        }
        if (r.outside_share > t->worst_outside) {
            t->worst_outside = r.outside_share;
            t->worst_outside_seed = seed;
        }
        t->worst_outside_ns = fmax(t->worst_outside_ns, r.outside_ns_share);
    }
    t->worst_share = fmax(t->worst_share, r.max_read_share);
    for (int i = 0; i < SCENARIO_MAX_EVENTS && m.sc.events[i].what; i++)
        if (r.recovery_ms[i] >= 0 && t->nrec < (int)(sizeof t->rec / sizeof t->rec[0]))
            t->rec[t->nrec++] = r.recovery_ms[i];
    if (r.gone_ms > t->gone_max)
        t->gone_max = r.gone_ms;
    const char *known = use_fixed ? NULL : usbts_known_failure("soak", (long long)seed);
    if (!pass && known) {
        t->known++;
        printf("XFAIL seed %llu (%s): %s\n", (unsigned long long)seed, known, why);
        describe(&m);
    } else if (known) {
        t->xpass++;
        printf("XPASS seed %llu: passes now; delete it from tests/scenarios/known_failures.h\n",
               (unsigned long long)seed);
    } else if (!pass) {
        t->failed++;
        printf("FAIL seed %llu: %s\n", (unsigned long long)seed, why);
        describe(&m);
        printf("  replay: soak --one %llu -v\n", (unsigned long long)seed);
    } else if (verbose) {
        printf("pass seed %llu\n", (unsigned long long)seed);
        describe(&m);
    }
    if (verbose)
        printf("  p50 %.0f ns, p99 %.0f ns, max %.0f ns, outside %.2f%% (ns bound %.2f%%), median bound %.0f ns, "
               "worst recovery %.1f ms, gone %.1f ms, frame errors %lld, max read share %.4f, reads %lld, "
               "unforeseeable %lld\n",
               r.p50_ns, r.p99_ns, r.max_ns, 100 * r.outside_share, 100 * r.outside_ns_share, r.bound_med_ns,
               r.worst_recovery_ms, r.gone_ms, r.frame_errors, r.max_read_share, r.reads, r.unforeseeable);
    if (verbose)
        for (int i = 0; i < SCENARIO_MAX_EVENTS && m.sc.events[i].what; i++)
            if (r.recovery_ms[i] >= 0)
                printf("  %s@%.0fms: new generation %.1f ms after the counter ran again\n", m.sc.events[i].what,
                       m.sc.events[i].at_ms, r.recovery_ms[i]);
    return pass;
}

static double wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    double seconds = 0;
    long long count = 100;
    uint64_t seed = 1;
    bool verbose = false;
    long long replay = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--seconds") && i + 1 < argc) {
            seconds = atof(argv[++i]);
            count = -1;
        } else if (!strcmp(a, "--count") && i + 1 < argc) {
            count = atoll(argv[++i]);
        } else if (!strcmp(a, "--seed") && i + 1 < argc) {
            seed = strtoull(argv[++i], NULL, 10);
        } else if (!strcmp(a, "--one") && i + 1 < argc) {
            replay = atoll(argv[++i]);
        } else if (!strcmp(a, "--keys") && i + 1 < argc) {
            use_fixed = true;
            snprintf(fixed.keys, sizeof fixed.keys, "%s", argv[++i]);
            snprintf(fixed.name, sizeof fixed.name, "fixed");
            if (fixed.sc.duration_ms == 0)
                fixed.sc.duration_ms = 10000;
        } else if (!strcmp(a, "--event") && i + 1 < argc) {
            int n = 0;
            while (n < SCENARIO_MAX_EVENTS - 1 && fixed.sc.events[n].what)
                n++;
            const char *at = strchr(argv[++i], '@');
            if (!at) {
                fprintf(stderr, "--event WHAT@MS\n");
                return 2;
            }
            snprintf(fixed.ev[n], sizeof fixed.ev[n], "%.*s", (int)(at - argv[i]), argv[i]);
            fixed.sc.events[n].what = fixed.ev[n];
            fixed.sc.events[n].at_ms = atof(at + 1);
        } else if (!strcmp(a, "--duration") && i + 1 < argc) {
            fixed.sc.duration_ms = atof(argv[++i]);
        } else if (!strcmp(a, "-v")) {
            verbose = true;
        } else {
            fprintf(stderr, "usage: soak [--seconds S] [--count N] [--seed N] | soak --one SEED [-v]\n");
            return 2;
        }
    }
    static struct tally t;
    if (replay >= 0) {
        bool pass = one((uint64_t)replay, &t, true);
        return pass ? 0 : 1;
    }

    printf("# soak: randomised adversarial scenarios on the virtual clock, seed %llu, %s\n",
           (unsigned long long)seed, count >= 0 ? "fixed count" : "for a wall-time budget");
    fflush(stdout);
    double t0 = wall();
    /* Scenario i has seed (seed << 20) + i: any one can be replayed alone. */
    for (long long i = 0; count < 0 ? (i == 0 || wall() - t0 < seconds) : i < count; i++)
        one(use_fixed ? seed + (uint64_t)i : (seed << 20) + (uint64_t)i, &t, verbose);

    qsort(t.rec, (size_t)t.nrec, sizeof t.rec[0], cmpd);
    printf("# %lld scenarios (%.0f s of virtual time, %lld queries, %lld values judged), %lld failed, %lld known "
           "failures (XFAIL), %lld known failures now passing (XPASS)\n",
           t.scenarios, t.virtual_s, t.queries, t.values, t.failed, t.known, t.xpass);
    printf("# worst error %.0f ns (seed %llu); worst p99 %.0f ns (seed %llu)\n", t.worst_max_ns,
           (unsigned long long)t.worst_max_seed, t.worst_p99_ns, (unsigned long long)t.worst_p99_seed);
    printf("# worst share outside PredictedAccuracy %.2f%% (seed %llu), outside BoundNs %.2f%%\n",
           100 * t.worst_outside, (unsigned long long)t.worst_outside_seed, 100 * t.worst_outside_ns);
    if (t.nrec)
        printf("# recoveries (counter running again -> new generation): %d, median %.1f ms, p99 %.1f ms, max %.1f ms\n",
               t.nrec, t.rec[t.nrec / 2], t.rec[(int)floor(0.99 * (t.nrec - 1))], t.rec[t.nrec - 1]);
    if (t.gone_max > 0)
        printf("# vanished controller reported gone after at most %.1f ms\n", t.gone_max);
    printf("# largest share of 100 ms the sampler spent reading: %.2f%%\n", 100 * t.worst_share);
    return t.failed ? 1 : 0;
}
