/* SPDX-License-Identifier: MIT */
/*
 * test_estimator.c — the pure estimator on synthetic read streams.
 *
 * A small generator (independent of the simulator) makes the truth: microframe
 * k starts at t(k), with a drift, an optional rate step, counter resets and
 * halts.  Reads are brackets [b, b + w] latched at b + f·w.  The driver plays
 * the tracker on a virtual clock: plan, jump to the start, read back to back
 * until the estimator is satisfied, publish.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "estimator.h"
#include "testutil.h"

struct gen {
    double t0;          /* host time of microframe 0 of the current counter */
    double period;      /* ns per microframe */
    double step_at;     /* a rate change at this host time (0: none) */
    double step_period;
    double halt_from, halt_to; /* counter frozen in between */
    double w;           /* bracket width */
    double latch;       /* latch position 0..1 */
    double preempt_until; /* every read preempted until then */
    bool alternate;     /* every other read preempted: no clean pair, clean single reads */
    double preempt_prob; /* each read preempted (by 300 us) with this probability */
    int nread;
    double now;
    uint64_t rng;
};

static double urand(struct gen *g)
{
    g->rng ^= g->rng << 13;
    g->rng ^= g->rng >> 7;
    g->rng ^= g->rng << 17;
    return (double)(g->rng >> 11) / 9007199254740992.0;
}

/* The true (real-valued) count at host time t. */
static double count_at(const struct gen *g, double t)
{
    if (g->halt_to > 0 && t >= g->halt_from) {
        if (t < g->halt_to)
            t = g->halt_from;
        else
            t -= g->halt_to - g->halt_from;
    }
    if (g->step_at > 0 && t > g->step_at)
        return (g->step_at - g->t0) / g->period + (t - g->step_at) / g->step_period;
    return (t - g->t0) / g->period;
}

/* The true start time of microframe k (no halt in these queries). */
static double time_of(const struct gen *g, double k)
{
    double k_step = g->step_at > 0 ? (g->step_at - g->t0) / g->period : INFINITY;
    if (k <= k_step)
        return g->t0 + k * g->period;
    return g->step_at + (k - k_step) * g->step_period;
}

static struct usbts_read gen_read(struct gen *g)
{
    struct usbts_read r;
    double w = g->w * (0.9 + 0.2 * urand(g));
    if (g->now < g->preempt_until || (g->alternate && (g->nread & 1)) ||
        (g->preempt_prob > 0 && urand(g) < g->preempt_prob))
        w += 300000;
    g->nread++;
    double latch = g->now + w * fmin(1, fmax(0, g->latch + 0.1 * (urand(g) - 0.5)));
    r.before_ns = (int64_t)g->now;
    r.after_ns = (int64_t)(g->now + w);
    r.mfindex = (uint32_t)((int64_t)floor(count_at(g, latch)) & 0x3FFF);
    g->now += w + 30; /* back to back, with the clock reads between */
    return r;
}

/* Runs the tracker loop until host time `until`. */
static int max_burst_reads;
static void run(struct usbts_est *e, struct gen *g, double until)
{
    while (g->now < until) {
        struct usbts_est_plan p;
        usbts_est_plan(e, (int64_t)g->now, &p);
        if ((double)p.start_ns > until) {
            g->now = until;
            break;
        }
        if ((double)p.start_ns > g->now)
            g->now = (double)p.start_ns;
        usbts_est_burst_begin(e);
        int n = 0;
        for (; n < p.max_reads; n++) {
            struct usbts_read r = gen_read(g);
            if (usbts_est_feed(e, &r) || r.after_ns >= p.deadline_ns)
                break;
        }
        usbts_est_burst_end(e);
        if (n + 1 > max_burst_reads)
            max_burst_reads = n + 1;
    }
}

struct acc {
    double worst, p99;
    int outside, n;
    int64_t offset;
    uint32_t generation;
    int miscounted;
};

/* Errors of the model's start time for the current microframe and a few
 * nearby ones, at random instants over `span` ns of further tracking. */
static struct acc measure(struct usbts_est *e, struct gen *g, double span)
{
    static double err[4000];
    struct acc a;
    memset(&a, 0, sizeof a);
    double end = g->now + span;
    while (g->now < end && a.n < 4000) {
        run(e, g, g->now + 100000 + urand(g) * 2900000);
        struct usbts_model m;
        if (!usbts_est_model(e, &m))
            continue;
        int64_t mf = usbts_model_mf_at(&m, (int64_t)g->now) + (int64_t)(urand(g) * 1600) - 800;
        double t = (double)usbts_model_start_ns(&m, mf);
        /* The model's count and the true one differ by a constant within an
         * epoch: pair each value with the true microframe starting nearest,
         * and check that the pairing never shifts (a miscount would). */
        double truth_k = round(count_at(g, t));
        int64_t offset = mf - (int64_t)truth_k;
        if (a.n == 0 || m.generation != a.generation) {
            a.offset = offset;
            a.generation = m.generation;
        }
        a.miscounted += offset != a.offset;
        double t_true = time_of(g, truth_k);
        double ae = fabs(t - t_true);
        a.outside += ae > (double)usbts_model_bound_ns(&m, (int64_t)t, (int64_t)g->now);
        err[a.n++] = ae;
        if (ae > a.worst)
            a.worst = ae;
    }
    /* p99 by partial selection */
    for (int i = 0; i < a.n; i++)
        for (int j = i + 1; j < a.n; j++)
            if (err[j] < err[i]) {
                double x = err[i];
                err[i] = err[j];
                err[j] = x;
            }
    a.p99 = a.n ? err[(a.n * 99) / 100] : 0;
    return a;
}

static void gen_init(struct gen *g, double drift_ppm, double w, double latch, uint64_t seed)
{
    memset(g, 0, sizeof *g);
    g->period = 125000.0 / (1 + drift_ppm * 1e-6);
    g->t0 = 1e9 - 5000.37 * g->period; /* counter already running, any phase */
    g->w = w;
    g->latch = latch;
    g->now = 1e9;
    g->rng = seed * 2654435761u + 1;
}

/* An estimator that has followed a generator with 500 ns reads for 2 s: where
 * most tests below start from. */
static void settled(struct usbts_est *e, struct gen *g, double drift_ppm, double latch, uint64_t seed)
{
    usbts_est_init(e);
    gen_init(g, drift_ppm, 500, latch, seed);
    run(e, g, g->now + 2e9);
}

static void test_accuracy(double drift, double latch)
{
    struct usbts_est e;
    struct gen g;
    settled(&e, &g, drift, latch, 11);
    struct acc a = measure(&e, &g, 3e9);
    printf("drift %+5.0f ppm latch %.1f: p99 %4.0f ns, worst %4.0f ns, outside %d/%d\n", drift, latch, a.p99, a.worst,
           a.outside, a.n);
    CHECK_MSG(a.p99 <= 1000, "p99 %.0f ns", a.p99);
    CHECK_MSG(a.outside * 100 <= a.n, "%d of %d outside the bound", a.outside, a.n);
    CHECK_EQ(a.miscounted, 0);
    struct usbts_est_stats st;
    usbts_est_get_stats(&e, &st);
    CHECK_MSG(fabs(st.rate_ppm - drift) < 1, "fitted rate %.3f ppm, true %.0f", st.rate_ppm, drift);
    CHECK_EQ(st.discontinuities, 0);
}

static void test_gap_of_five_wraps(void)
{
    struct usbts_est e;
    struct gen g;
    settled(&e, &g, 300, 0.5, 12);
    uint32_t epoch = e.epoch;
    struct usbts_model m0;
    CHECK(usbts_est_model(&e, &m0));
    int64_t probe = usbts_model_start_ns(&m0, usbts_model_mf_at(&m0, (int64_t)g.now)) + 62500; /* mid-microframe */
    int64_t offset_before = usbts_model_mf_at(&m0, probe) - (int64_t)floor(count_at(&g, (double)probe));
    g.now += 10.3e9; /* the sampler did not run: five wraps and more */
    run(&e, &g, g.now + 0.1e9);
    struct usbts_model m;
    CHECK(usbts_est_model(&e, &m));
    CHECK_EQ(m.generation, epoch);
    int64_t mid_now = usbts_model_start_ns(&m, usbts_model_mf_at(&m, (int64_t)g.now)) + 62500;
    int64_t mf_model = usbts_model_mf_at(&m, mid_now);
    int64_t mf_true = (int64_t)floor(count_at(&g, (double)mid_now));
    /* the fitted count must have kept its origin: same offset as before the gap */
    struct acc a = measure(&e, &g, 0.5e9);
    CHECK_MSG(a.p99 <= 1000 && a.outside * 100 <= a.n, "after the gap: p99 %.0f ns, %d outside", a.p99, a.outside);
    CHECK_EQ(a.miscounted, 0);
    /* the count kept its origin through the gap: the model's count minus the
     * true one is what it was before */
    CHECK_EQ(mf_model - mf_true, offset_before);
}

static void test_wild_sample(void)
{
    struct usbts_est e;
    struct gen g;
    settled(&e, &g, -200, 0.5, 13);
    uint32_t epoch = e.epoch;
    /* a fake boundary: two reads whose counter steps by one, 40 µs off the truth */
    usbts_est_burst_begin(&e);
    uint32_t c = (uint32_t)((int64_t)floor(count_at(&g, g.now - 40000)) & 0x3FFF);
    struct usbts_read a = {(int64_t)g.now, (int64_t)g.now + 500, c};
    struct usbts_read b = {(int64_t)g.now + 530, (int64_t)g.now + 1030, (c + 1) & 0x3FFF};
    usbts_est_feed(&e, &a);
    usbts_est_feed(&e, &b);
    usbts_est_burst_end(&e);
    g.now += 1100;
    struct acc r = measure(&e, &g, 1e9);
    CHECK_EQ(e.epoch, epoch);
    CHECK_MSG(r.p99 <= 1000 && r.outside * 100 <= r.n, "after a wild sample: p99 %.0f ns, %d outside", r.p99,
              r.outside);
}

static void test_all_preempted(void)
{
    struct usbts_est e;
    struct gen g;
    settled(&e, &g, 100, 0.5, 14);
    uint32_t epoch = e.epoch;
    struct usbts_est_stats before, after;
    usbts_est_get_stats(&e, &before);
    g.preempt_until = g.now + 1e9;
    run(&e, &g, g.now + 1e9);
    usbts_est_get_stats(&e, &after);
    CHECK_MSG(after.captures == before.captures, "%llu captures from preempted reads",
              (unsigned long long)(after.captures - before.captures));
    CHECK_EQ(e.epoch, epoch);
    struct acc a = measure(&e, &g, 1e9);
    CHECK_MSG(a.p99 <= 1000 && a.outside * 100 <= a.n, "after preemption: p99 %.0f ns, %d outside", a.p99, a.outside);
}

static void test_counter_jump(void)
{
    struct usbts_est e;
    struct gen g;
    settled(&e, &g, 0, 0.5, 15);
    uint32_t epoch = e.epoch;
    double jump = g.now;
    g.t0 = g.now - 0.37 * g.period; /* reset: MFINDEX restarts near 0 at another phase */
    double seen = -1;
    while (g.now < jump + 0.2e9) {
        run(&e, &g, g.now + 1e6);
        if (e.epoch != epoch && seen < 0)
            seen = g.now - jump;
    }
    printf("counter jump: new epoch after %.1f ms\n", seen / 1e6);
    CHECK_MSG(seen >= 0 && seen <= 50e6, "new epoch after %.1f ms", seen / 1e6);
    run(&e, &g, jump + 2e9);
    struct acc a = measure(&e, &g, 1e9);
    CHECK_MSG(a.p99 <= 1000 && a.outside * 100 <= a.n, "2 s after the jump: p99 %.0f ns, %d outside", a.p99, a.outside);
}

static void test_halt(void)
{
    struct usbts_est e;
    struct gen g;
    settled(&e, &g, 0, 0.5, 16);
    uint32_t epoch = e.epoch;
    g.halt_from = g.now;
    g.halt_to = g.now + 100e6;
    bool saw_stopped = false;
    while (g.now < g.halt_to - 10e6) {
        run(&e, &g, g.now + 1e6);
        struct usbts_model m;
        if (usbts_est_model(&e, &m) && (m.flags & USBTS_MODEL_STOPPED))
            saw_stopped = true;
    }
    CHECK(saw_stopped);
    CHECK(e.epoch > epoch);
    uint32_t halted_epoch = e.epoch;
    run(&e, &g, g.halt_to + 50e6);
    CHECK(e.epoch > halted_epoch);
    struct usbts_model m;
    CHECK(usbts_est_model(&e, &m) && !(m.flags & USBTS_MODEL_STOPPED));
}

/* A reset followed at once by a halt: the counter freezes at a small value.
 * Counting forward from the old count to it would put the frozen
 * microframe's start most of a wrap (up to 2 s) in the future. */
static void test_reset_then_halt(void)
{
    struct usbts_est e;
    struct gen g;
    settled(&e, &g, 0, 0.5, 17);
    uint32_t epoch = e.epoch;
    g.t0 = g.now - 3.37 * g.period; /* MFINDEX restarts: 3 now */
    g.halt_from = g.now + 0.5 * g.period;
    g.halt_to = g.now + 100e6;
    double frozen_k = floor(count_at(&g, g.halt_from));
    double frozen_start = time_of(&g, frozen_k);
    int stopped_models = 0, wrong = 0;
    while (g.now < g.halt_to - 10e6) {
        run(&e, &g, g.now + 1e6);
        struct usbts_model m;
        if (!usbts_est_model(&e, &m) || !(m.flags & USBTS_MODEL_STOPPED))
            continue;
        stopped_models++;
        double err = (double)m.ref_ns - frozen_start;
        if ((double)m.ref_ns > g.now || fabs(err) > (double)m.bound0_ns || (m.ref_mf & 0x3FFF) != (int64_t)frozen_k) {
            if (wrong++ == 0)
                printf("reset then halt: frozen microframe %lld at %+.0f ns from the truth, bound %lld ns, %.0f ns "
                       "after now\n",
                       (long long)m.ref_mf, err, (long long)m.bound0_ns, (double)m.ref_ns - g.now);
        }
    }
    CHECK(e.epoch > epoch);
    CHECK_MSG(stopped_models > 0, "the halt was never seen");
    CHECK_MSG(wrong == 0, "%d of %d stopped models put the frozen microframe elsewhere", wrong, stopped_models);
    run(&e, &g, g.halt_to + 1e6);
    g.t0 += g.halt_to - g.halt_from; /* the same counter, without the halt */
    g.halt_to = 0;
    run(&e, &g, g.now + 2e9);
    struct acc a = measure(&e, &g, 1e9);
    CHECK_MSG(a.p99 <= 1000 && a.outside * 100 <= a.n, "2 s after the halt: p99 %.0f ns, %d outside", a.p99,
              a.outside);
}

static void test_rate_step(void)
{
    struct usbts_est e;
    struct gen g;
    settled(&e, &g, 0, 0.5, 17);
    g.step_at = g.now;
    g.step_period = g.period / (1 + 200e-6);
    /* The first capture after the step is a surprise: the next ones come
     * fast, and within 100 ms the model follows the new rate again. */
    uint64_t captures = e.stats.captures;
    run(&e, &g, g.now + 100e6);
    CHECK_MSG(e.stats.captures - captures >= 10, "%llu captures in the 100 ms after the step",
              (unsigned long long)(e.stats.captures - captures));
    struct acc soon = measure(&e, &g, 200e6);
    printf("100-300 ms after a 200 ppm rate step: p99 %.0f ns, outside %d/%d\n", soon.p99, soon.outside, soon.n);
    CHECK_MSG(soon.p99 <= 1000, "p99 %.0f ns 100-300 ms after the step", soon.p99);
    run(&e, &g, g.step_at + 2e9);
    struct acc a = measure(&e, &g, 2e9);
    printf("2 s after a 200 ppm rate step: p99 %.0f ns, outside %d/%d\n", a.p99, a.outside, a.n);
    CHECK_MSG(a.p99 <= 1000 && a.outside * 100 <= a.n, "p99 %.0f ns, %d outside", a.p99, a.outside);
    CHECK_EQ(e.stats.discontinuities, 0); /* a rate change is not a discontinuity */
}

/* A sampler stalled for 3.7 s while the host clock was slewed by 229 ppm (a
 * soak failure, issue #16): the first capture after the gap lies ~850 us off
 * the old line, far outside the old fit's bound but within the prior rate
 * over the gap.  The counter did not jump, so it is the same epoch, the count
 * keeps its origin, and the answers are inside their bounds.  A real reset
 * during such a gap is still a new epoch. */
static void test_stall_across_slew(void)
{
    struct usbts_est e;
    struct gen g;
    settled(&e, &g, 0, 0.5, 21);
    uint32_t epoch = e.epoch;
    g.step_at = g.now;
    g.step_period = g.period / (1 + 229e-6);
    g.now += 3.7e9;
    run(&e, &g, g.now + 0.2e9);
    CHECK_EQ(e.epoch, epoch);
    CHECK_EQ(e.stats.discontinuities, 0);
    struct acc a = measure(&e, &g, 0.5e9);
    printf("after a 3.7 s stall across a 229 ppm slew: p99 %.0f ns, outside %d/%d\n", a.p99, a.outside, a.n);
    CHECK_MSG(a.outside * 100 <= a.n, "%d of %d outside", a.outside, a.n);
    CHECK_EQ(a.miscounted, 0);

    settled(&e, &g, 0, 0.5, 22);
    epoch = e.epoch;
    g.now += 3.7e9;
    g.t0 = g.now - 0.37 * g.period; /* reset while the sampler was stalled */
    double back = g.now;
    run(&e, &g, g.now + 50e6);
    printf("reset during a 3.7 s stall: epoch %u -> %u within 50 ms\n", epoch, e.epoch);
    CHECK_MSG(e.epoch != epoch, "no new epoch within 50 ms of a reset after a stall");
    run(&e, &g, back + 2e9);
    a = measure(&e, &g, 0.5e9);
    CHECK_MSG(a.outside * 100 <= a.n && a.miscounted == 0, "after the reset: %d of %d outside, %d miscounted",
              a.outside, a.n, a.miscounted);
}

/* A long run of slow reads (a link in a power state: every read 6 us instead
 * of 0.9 us, issue #16 soak).  Bursts aimed at the predicted boundary and
 * dithered only over the usual bracket lock the read grid's phase to the
 * boundary; the midpoint captures are then biased by microseconds and agree
 * with the fit's own error.  Dithered over the reads' spacing as it is now,
 * the captures stay unbiased and the answers inside their bounds. */
static void test_slow_read_run(void)
{
    struct usbts_est e;
    struct gen g;
    usbts_est_init(&e);
    gen_init(&g, 40, 900, 0.5, 23);
    run(&e, &g, g.now + 2e9);
    g.w = 6700;
    run(&e, &g, g.now + 40e6);
    /* The bursts' starts must be dithered over a whole read spacing from the
     * run's first bursts on (the low-quantile bracket learns it only after
     * a hundred reads or so), or the
     * boundary falls at the same place between two reads every time: the
     * lead beyond what the model's uncertainty, the wake-up lead and the
     * brackets ask for is the dither. */
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < 10; i++) {
        struct usbts_est_plan p;
        usbts_est_plan(&e, (int64_t)g.now, &p);
        double extra = (double)(e.plan_target_ns - p.start_ns) -
                       (e.plan_target_unc + e.lead_ns + 2 * e.bracket_ns);
        if (e.plan_target_ns && (double)p.start_ns > g.now && extra >= 0 && extra < 1e5) {
            lo = fmin(lo, extra);
            hi = fmax(hi, extra);
        }
        run(&e, &g, g.now + 20e6);
    }
    printf("a run of 6.7 us reads: the bursts' starts dithered over %.0f ns\n", hi - lo);
    CHECK_MSG(hi - lo >= 0.7 * 6700, "starts dithered over %.0f ns only, the reads are 6.7 us apart", hi - lo);
    run(&e, &g, g.now + 1e9);
    struct acc a = measure(&e, &g, 2e9);
    printf("a run of 6.7 us reads: p99 %.0f ns, worst %.0f ns, outside %d/%d\n", a.p99, a.worst, a.outside, a.n);
    CHECK_MSG(a.outside * 100 <= a.n, "%d of %d outside the bound", a.outside, a.n);
    CHECK_MSG(a.p99 <= 2000, "p99 %.0f ns with 6.7 us reads", a.p99);
    CHECK_EQ(a.miscounted, 0);
}

/* A rate step (FLADJ, 300 ppm) inside a run of 18 us reads (issue #16
 * soak, seed 4448060850): every capture is coarse.  Each one must be judged
 * by what the fit's data say, not by the reach the previous coarse capture
 * left unverified: judged so, none was ever a surprise, the old line ran on
 * and the error passed half a microframe (wrong frame numbers). */
static void test_rate_step_under_coarse_reads(void)
{
    struct usbts_est e;
    struct gen g;
    settled(&e, &g, 0, 0.5, 26);
    g.w = 18000;
    run(&e, &g, g.now + 0.3e9);
    g.step_at = g.now;
    g.step_period = g.period / (1 + 300e-6);
    run(&e, &g, g.now + 0.2e9);
    struct acc a = measure(&e, &g, 1e9);
    printf("a 300 ppm step inside 18 us reads: p99 %.0f ns, worst %.0f ns, outside %d/%d\n", a.p99, a.worst,
           a.outside, a.n);
    CHECK_MSG(a.worst < 62500, "worst %.0f ns: half a microframe or more names the wrong one", a.worst);
    CHECK_MSG(a.outside * 100 <= a.n, "%d of %d outside the bound", a.outside, a.n);
    CHECK_EQ(a.miscounted, 0);
}

/* A reset while every other read is preempted (issue #16 soak: 8% of reads
 * preempted by 200 us and more, so a clean pair of reads around a boundary
 * is rare): no capture can show it, but the clean single reads do.  A new
 * epoch within 50 ms, whose (single-read) answers lie inside their bound. */
static void test_reset_seen_in_single_reads(void)
{
    struct usbts_est e;
    struct gen g;
    settled(&e, &g, 0, 0.5, 24);
    uint32_t epoch = e.epoch;
    uint64_t captures = e.stats.captures;
    g.alternate = true;
    double jump = g.now;
    g.t0 = g.now - 0.37 * g.period - 4000 * g.period; /* reset to 4000 at another phase */
    double seen = -1;
    while (g.now < jump + 0.1e9) {
        run(&e, &g, g.now + 1e6);
        if (e.epoch != epoch && seen < 0)
            seen = g.now - jump;
    }
    printf("reset with no clean pair of reads: new epoch after %.1f ms, %llu captures\n", seen / 1e6,
           (unsigned long long)(e.stats.captures - captures));
    CHECK_EQ(e.stats.captures, captures); /* nothing but single reads could show it */
    CHECK_MSG(seen >= 0 && seen <= 50e6, "new epoch after %.1f ms", seen / 1e6);
    struct usbts_model m;
    CHECK(usbts_est_model(&e, &m));
    int64_t now = (int64_t)g.now;
    int64_t mf = usbts_model_mf_at(&m, now);
    double t = (double)usbts_model_start_ns(&m, mf);
    double truth = time_of(&g, round(count_at(&g, t)));
    CHECK_MSG(fabs(t - truth) <= (double)usbts_model_bound_ns(&m, (int64_t)t, now), "off by %.0f ns, bound %lld",
              t - truth, (long long)usbts_model_bound_ns(&m, (int64_t)t, now));
    /* and a halted counter is not mistaken for one: see test_halt */
}

/* The counter runs again after a halt, and the read that first shows it was
 * stretched by a preemption that came after the latch (issue #16 soak:
 * frame errors of 2 microframes just after a halt, bound 169 us).  The new
 * count is anchored on that read; its bound must cover the read's width,
 * not a typical bracket's. */
static void test_halt_ends_in_preempted_read(void)
{
    struct usbts_est e;
    struct gen g;
    settled(&e, &g, 0, 0.5, 25);
    /* the model's count minus the generator's, as in test_gap_of_five_wraps */
    struct usbts_model m0;
    CHECK(usbts_est_model(&e, &m0));
    int64_t probe = usbts_model_start_ns(&m0, usbts_model_mf_at(&m0, (int64_t)g.now)) + 62500;
    int64_t offset = usbts_model_mf_at(&m0, probe) - (int64_t)floor(count_at(&g, (double)probe));
    g.halt_from = g.now;
    g.halt_to = g.now + 100e6;
    run(&e, &g, g.halt_to - 1e6);
    CHECK(e.stopped);
    uint32_t halted_epoch = e.epoch;
    g.preempt_until = g.halt_to + 20e6; /* every read 300 us longer ... */
    g.latch = 0;                        /* ... and latched at its start */
    while (e.epoch == halted_epoch && g.now < g.halt_to + 15e6)
        run(&e, &g, g.now + 2.5e6);
    CHECK(e.epoch > halted_epoch);
    struct usbts_model m;
    CHECK(usbts_est_model(&e, &m) && !(m.flags & USBTS_MODEL_STOPPED));
    int64_t now = (int64_t)g.now;
    int64_t mf = usbts_model_mf_at(&m, now);
    double t = (double)usbts_model_start_ns(&m, mf);
    /* the true start of the microframe the model names (the count goes on
     * through a halt; the generator's time_of knows no halt: add it) */
    double truth = time_of(&g, (double)(mf - offset)) + (g.halt_to - g.halt_from);
    double err = t - truth;
    long long bound = (long long)usbts_model_bound_ns(&m, (int64_t)t, now);
    printf("halt ended in a preempted read: first answer off by %.0f ns, bound %lld ns\n", err, bound);
    CHECK_MSG(fabs(err) <= (double)bound, "off by %.0f ns, bound %lld", err, bound);
}

static void test_cheap_bursts_and_determinism(void)
{
    struct usbts_est e1, e2;
    struct gen g1, g2;
    usbts_est_init(&e1);
    usbts_est_init(&e2);
    gen_init(&g1, 50, 500, 0.5, 18);
    gen_init(&g2, 50, 500, 0.5, 18);
    run(&e1, &g1, g1.now + 2e9);
    max_burst_reads = 0;
    run(&e1, &g1, g1.now + 2e9);
    printf("steady state: at most %d reads per burst\n", max_burst_reads);
    CHECK_MSG(max_burst_reads <= 16, "%d reads in one burst", max_burst_reads);
    run(&e2, &g2, g2.now + 4e9);
    struct usbts_model m1, m2;
    CHECK(usbts_est_model(&e1, &m1) && usbts_est_model(&e2, &m2));
    CHECK(memcmp(&m1, &m2, sizeof m1) == 0);
    /* ~50 captures a second: dense enough to follow, sparse enough to be cheap */
    CHECK_MSG(e1.stats.captures > 150 && e1.stats.captures < 400, "%llu captures in 4 s",
              (unsigned long long)e1.stats.captures);
}

static void test_single_reads_only(void)
{
    struct usbts_est e;
    struct gen g;
    usbts_est_init(&e);
    gen_init(&g, 0, 500, 0.5, 19);
    usbts_est_burst_begin(&e);
    struct usbts_read r = gen_read(&g);
    usbts_est_feed(&e, &r);
    usbts_est_burst_end(&e);
    struct usbts_model m;
    CHECK(usbts_est_model(&e, &m));
    CHECK(!(m.flags & USBTS_MODEL_CAPTURED));
    /* honest: covers the whole microframe the read could be in */
    int64_t mf = usbts_model_mf_at(&m, r.after_ns);
    double t_true = time_of(&g, floor(count_at(&g, (double)r.after_ns)));
    CHECK(fabs((double)usbts_model_start_ns(&m, mf) - t_true) <= (double)usbts_model_bound_ns(&m, r.after_ns, r.after_ns));
    CHECK(m.bound0_ns >= 62500);
    int64_t ext;
    CHECK(usbts_est_extend(&e, &r, &ext) && (ext & 0x3FFF) == r.mfindex);

    /* A reset before any capture: the next single read no count explains
     * starts a new epoch; the count never goes back inside one. */
    g.now += 300000;
    g.t0 = g.now - 2.5 * g.period;
    uint32_t epoch = e.epoch;
    usbts_est_burst_begin(&e);
    r = gen_read(&g);
    usbts_est_feed(&e, &r);
    usbts_est_burst_end(&e);
    CHECK(usbts_est_model(&e, &m));
    CHECK_MSG(e.epoch > epoch, "the reset went unseen: epoch %u, count %lld", e.epoch, (long long)m.ref_mf);
    mf = usbts_model_mf_at(&m, r.after_ns);
    t_true = time_of(&g, floor(count_at(&g, (double)r.after_ns)));
    CHECK(fabs((double)usbts_model_start_ns(&m, mf) - t_true) <= (double)usbts_model_bound_ns(&m, r.after_ns, r.after_ns));
}

/* One burst as test_lead_after_chance_lateness drives it: woken late (past
 * its boundary) or in time, its first read clean, the next preempted across
 * the boundary, so that nothing is captured. */
static void uncaptured_burst(struct usbts_est *e, struct gen *g, bool wake_late)
{
    struct usbts_est_plan p;
    usbts_est_plan(e, (int64_t)g->now, &p);
    if (!e->plan_target_ns) { /* a probe: let it run as planned */
        run(e, g, g->now + 1e6);
        return;
    }
    g->now = wake_late ? (double)e->plan_target_ns + 10000 : fmax(g->now, (double)p.start_ns);
    usbts_est_burst_begin(e);
    struct usbts_read r = gen_read(g);
    if (!usbts_est_feed(e, &r)) {
        g->preempt_until = g->now + 1;
        r = gen_read(g);
        usbts_est_feed(e, &r);
        g->preempt_until = 0;
    }
    usbts_est_burst_end(e);
    g->now += 300000;
}

/* Late wake-ups that come by chance, far apart, are no habit a longer lead
 * fixes (issue #16 soak, seed 1055916658: between them, bursts woke in
 * time but were preempted before the boundary, so none captured, and each
 * late one counted as the second in a row: the lead doubled to 190 us,
 * bursts began more than a microframe early and were preempted long before
 * the boundary).  Here every fourth burst wakes past its boundary, the
 * others wake in time and are preempted across it: the lead must not double. */
static void test_lead_after_chance_lateness(void)
{
    struct usbts_est e;
    struct gen g;
    settled(&e, &g, 0, 0.5, 27);
    double lead0 = e.lead_ns, lead_max = lead0;
    for (int b = 0; b < 80; b++) {
        uncaptured_burst(&e, &g, b % 4 == 3);
        lead_max = fmax(lead_max, e.lead_ns);
    }
    printf("20 chance late wake-ups among 60 bursts that woke in time: lead %.0f ns, at most %.0f ns (%.0f before)\n",
           e.lead_ns, lead_max, lead0);
    /* (it may follow the brackets' floor, but never double) */
    CHECK_MSG(lead_max < 2 * lead0 + 5000, "the lead doubled: %.0f ns, %.0f before", lead_max, lead0);
    /* A lead grown long ago shrinks on wake-ups in time, captures or not
     * (issue #16 soak, seed 2116027790: it stayed at 100 us for seconds
     * while heavy preemption let no capture through). */
    e.lead_ns = 100000;
    for (int b = 0; b < 80; b++)
        uncaptured_burst(&e, &g, false);
    printf("80 bursts in time, none captured: a 100 us lead down to %.0f ns\n", e.lead_ns);
    CHECK_MSG(e.lead_ns < 20000, "the lead stayed at %.0f ns", e.lead_ns);
}

/* A reset that moves the boundaries by a fraction of a microframe while most
 * reads are preempted (issue #16 soak, seed 1055916658: 28 us, 100 ns reads,
 * 4% of them stretched by 420 us; 157 ms to a new epoch).  Bursts aimed by
 * the old fit read only beside its boundaries, and a probe after them is
 * preempted within a few us; the reads' interval for the true boundaries,
 * halved burst by burst where only a jump explains it, finds them. */
static void test_small_reset_under_preemption(void)
{
    struct usbts_est e;
    struct gen g;
    settled(&e, &g, 0, 0.5, 28);
    g.w = 100;
    run(&e, &g, g.now + 0.5e9);
    g.preempt_prob = 0.04;
    run(&e, &g, g.now + 0.5e9);
    uint32_t epoch = e.epoch;
    double jump = g.now;
    g.t0 -= 28000; /* the boundaries come 28 us earlier, the counts as before */
    double seen = -1;
    while (g.now < jump + 0.3e9 && seen < 0) {
        run(&e, &g, g.now + 1e6);
        if (e.epoch != epoch)
            seen = g.now - jump;
    }
    printf("a reset by 28 us under 4%% preemption: new epoch after %.1f ms\n", seen / 1e6);
    CHECK_MSG(seen >= 0 && seen <= 50e6, "new epoch after %.1f ms", seen / 1e6);
}

int main(void)
{
    test_accuracy(0, 0.5);
    test_accuracy(-500, 0.5);
    test_accuracy(500, 0.5);
    test_accuracy(1000, 0.0);
    test_accuracy(-1000, 1.0);
    test_gap_of_five_wraps();
    test_wild_sample();
    test_all_preempted();
    test_counter_jump();
    test_halt();
    test_reset_then_halt();
    test_rate_step();
    test_stall_across_slew();
    test_slow_read_run();
    test_rate_step_under_coarse_reads();
    test_reset_seen_in_single_reads();
    test_halt_ends_in_preempted_read();
    test_cheap_bursts_and_determinism();
    test_single_reads_only();
    test_lead_after_chance_lateness();
    test_small_reset_under_preemption();
    return test_finish();
}
