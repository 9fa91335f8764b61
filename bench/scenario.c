/* SPDX-License-Identifier: MIT */
/*
 * scenario.c — runs one accuracy scenario on the virtual-clock simulator and
 * measures our estimator and two baselines against the simulator's truth.
 * Only the public API is used.
 */
#include "scenario.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchutil.h"
#include "usbtimesync/usbtimesync.h"

#define MS 1000000LL
#define WARMUP_NS (2000 * MS)
#define RECOVERY_NS (2000 * MS)
#define MICROFRAME_NS 125000LL
#define WRAP_MICROFRAMES 16384
#define IRQ_JITTER_NS 20000

const struct scenario usbts_scenarios[] = {
    {"nominal", "", {{0, NULL}}, 8000},
    {"drift-500ppm", "drift_ppm=-500", {{0, NULL}}, 8000},
    {"drift+500ppm", "drift_ppm=500", {{0, NULL}}, 8000},
    {"preempt-1%", "preempt_prob=0.01", {{0, NULL}}, 8000},
    {"preempt-10%", "preempt_prob=0.1", {{0, NULL}}, 8000},
    {"read_ns=5000", "read_ns=5000", {{0, NULL}}, 8000},
    {"latch=1,5us", "read_ns=5000,latch=1", {{0, NULL}}, 8000}, /* the register latches late */
    {"slew-200ppm", "slew_ppm=200,slew_at_ms=4000", {{0, NULL}}, 8000},
    {"stall-10s", "", {{3000, "stall_ms=10000"}}, 16000},
    {"reset", "", {{4000, "reset"}}, 8000},
    {"halt-100ms", "", {{4000, "halt_ms=100"}}, 8000},
    /* issue #16: a less kind simulator */
    {"sof+250ns", "sof_ns=250,read_ns=150", {{0, NULL}}, 8000}, /* MMIO-fast reads: the latch term is small */
    {"sof-250ns", "sof_ns=-250,read_ns=150", {{0, NULL}}, 8000},
    {"latch-spread", "latch_spread=1", {{0, NULL}}, 8000},
    {"slow-runs", "slow_prob=0.002,slow_reads=200,slow_ns=5000", {{0, NULL}}, 8000},
    {"late-wakeups", "wake_prob=0.3,wake_us=100", {{0, NULL}}, 8000},
    {"torn-reads", "torn_prob=0.05,allones_prob=0.02", {{0, NULL}}, 8000},
    {"reset-halted", "", {{4000, "reset_halt_ms=30"}}, 8000},
    {"ntp-slews", "ntp_ppm=100,ntp_ms=2000", {{0, NULL}}, 10000},
    {"random-walk", "walk_ppm=0.5", {{0, NULL}}, 10000},
    {"fladj-33", "", {{4000, "fladj=33"}}, 8000},
    {"suspend", "", {{4000, "suspend_ms=200"}}, 8000},
    {"vanish", "", {{4000, "vanish"}}, 8000},
};
const int usbts_nscenarios = (int)(sizeof usbts_scenarios / sizeof usbts_scenarios[0]);

struct series {
    double *v;
    long long n, cap;
};

static void push(struct series *s, double x)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 4096;
        s->v = realloc(s->v, (size_t)s->cap * sizeof *s->v);
        if (!s->v)
            abort();
    }
    s->v[s->n++] = x;
}

static double quantile(struct series *s, double q)
{
    if (s->n == 0)
        return NAN;
    qsort(s->v, (size_t)s->n, sizeof *s->v, bench_cmp_double);
    long long i = (long long)ceil(q * (double)s->n) - 1;
    if (i < 0)
        i = 0;
    if (i >= s->n)
        i = s->n - 1;
    return s->v[i];
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Baseline (b): the wrap samples seen so far. */
struct wrap_baseline {
    int n;
    long long true_wrap;     /* true time of the latest wrap, to notice the next */
    double sample[2];        /* [0] previous, [1] latest: wrap time + interrupt latency */
};

static bool fail(struct scenario_result *r, const char *what)
{
    r->failed = true;
    snprintf(r->failure, sizeof r->failure, "%.40s: %.100s (error %u)", what, usbts_last_error_message(),
             (unsigned)GetLastError());
    return false;
}

/* What an event does to the counter: how long it stops it (0: a reset, which
 * restarts it at once), or -1 when it does not stop it. */
static long long stop_ms(const char *what)
{
    long long ms;
    if (strcmp(what, "reset") == 0)
        return 0;
    if (sscanf(what, "halt_ms=%lld", &ms) == 1 || sscanf(what, "reset_halt_ms=%lld", &ms) == 1 ||
        sscanf(what, "suspend_ms=%lld", &ms) == 1)
        return ms;
    return -1;
}

static long long stall_ms_of(const char *what)
{
    long long ms;
    return sscanf(what, "stall_ms=%lld", &ms) == 1 ? ms : -1;
}

static int count_events(const struct scenario *sc)
{
    int n = 0;
    while (n < SCENARIO_MAX_EVENTS && sc->events[n].what)
        n++;
    return n;
}

static bool vanished(const struct scenario *sc, int injected)
{
    return injected > 0 && strcmp(sc->events[injected - 1].what, "vanish") == 0 &&
           GetLastError() == ERROR_DEVICE_NOT_CONNECTED;
}

static void break_gone(struct scenario_result *r, long long now, long long at, bool *gone)
{
    r->gone_ms = (double)(now - at) / MS;
    *gone = true;
}

struct query {
    LONGLONG now;
    ULONG gen, frame, micro;
    LONGLONG t_cur; /* truth of (frame, micro) */
    bool unrecovered; /* asked while a stop or a stall was not yet recovered from */
};

bool scenario_run(const struct scenario *sc, uint64_t seed, struct scenario_result *r)
{
    memset(r, 0, sizeof *r);
    r->new_generation_ms = -1;
    r->worst_recovery_ms = -1;
    r->gone_ms = -1;
    char spec[512];
    snprintf(spec, sizeof spec, "sim:clock=virtual,seed=%llu%s%s", (unsigned long long)seed, sc->keys[0] ? "," : "",
             sc->keys);
    HANDLE dev = usbts_open(spec);
    if (dev == INVALID_HANDLE_VALUE)
        return fail(r, spec);
    WINUSB_INTERFACE_HANDLE ih;
    if (!WinUsb_Initialize(dev, &ih)) {
        usbts_close(dev);
        return fail(r, "WinUsb_Initialize");
    }
    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION start = {NULL, FALSE};
    if (!WinUsb_StartTrackingForTimeSync(ih, &start)) {
        usbts_close(dev);
        return fail(r, "WinUsb_StartTrackingForTimeSync");
    }

    struct series ours = {0}, bounds = {0}, base_a = {0}, base_b = {0}, recovered = {0};
    uint64_t rng = seed * 7919 + 17;
    struct wrap_baseline wb = {0};
    LONGLONG t0;
    usbts_now_ns(dev, &t0);
    int nev = count_events(sc);
    /* per event: when it happens, when the counter runs again (-1: it does
     * not stop it), and the window excluded from the statistics */
    long long at[SCENARIO_MAX_EVENTS], readable[SCENARIO_MAX_EVENTS], excl_to[SCENARIO_MAX_EVENTS];
    ULONG gen_at_readable[SCENARIO_MAX_EVENTS];
    bool readable_seen[SCENARIO_MAX_EVENTS];
    for (int i = 0; i < nev; i++) {
        at[i] = t0 + (long long)(sc->events[i].at_ms * MS);
        long long st = stop_ms(sc->events[i].what), sl = stall_ms_of(sc->events[i].what);
        readable[i] = st >= 0 ? at[i] + st * MS : -1;
        excl_to[i] = st >= 0 ? readable[i] + RECOVERY_NS : sl >= 0 ? at[i] + sl * MS + RECOVERY_NS : at[i];
        /* A vanished controller sends no more frames: its frames have no
         * true time to judge against.  What is judged is how soon it is
         * reported gone (gone_ms). */
        if (strcmp(sc->events[i].what, "vanish") == 0)
            excl_to[i] = LLONG_MAX;
        r->recovery_ms[i] = -1;
        readable_seen[i] = false;
        gen_at_readable[i] = 0;
    }
    int next_ev = 0;
    bool any_event = false, gone = false;
    ULONG gen_first = 0, frame_before = 0;
    LONGLONG now_before = 0;
    bool checked_jump = false;
    long long stall_end_check = -1;
    long long end = t0 + (long long)(sc->duration_ms * MS);
    LONGLONG now = t0;
    bool ok = true;
    struct query prev = {0};
    bool have_prev = false;
    long long last_stop_event = -1; /* when the latest counter-stopping event happened */
    ULONG prev_gen = 0, gen_stall = 0;
    long long n_ns = 0;
    /* A scripted step of the host clock's rate (slew_at_ms): a frame asked
     * for before it, whose true time lies after it, is a prediction of the
     * future no estimator can make (the step is 2% of the host clock's
     * rate away from anything the past shows).  Such answers are not
     * judged; they are counted (r->unforeseeable). */
    const char *sk = strstr(sc->keys, "slew_at_ms=");
    long long slew_at = sk && strstr(sc->keys, "slew_ppm=") ? t0 + (long long)(atof(sk + 11) * MS) : -1;
    const char *rk = strstr(sc->keys, "read_ns=");
    double read_ns = rk ? atof(rk + 8) : 500; /* the median read: how many reads 100 ms can hold */
    /* the sampler's reads, per 100 ms */
    USBTS_TRACKING_STATS ts;
    long long bucket_t = t0, bucket_reads = 0;
    if (usbts_get_tracking_stats(dev, &ts))
        bucket_reads = (long long)ts.Reads;

    while (now < end && !gone) {
        long long step = 100000 + (long long)(splitmix(&rng) % 2900000); /* 0.1 .. 3 ms: any phase */
        /* Land exactly on the next event, and on each instant a stopped
         * counter runs again, so recoveries are timed from there. */
        long long mark = end;
        for (int i = 0; i < nev; i++)
            if (readable[i] >= 0 && !readable_seen[i] && i < next_ev && readable[i] < mark)
                mark = readable[i];
        if (next_ev < nev && at[next_ev] < mark)
            mark = at[next_ev];
        bool at_mark = now + step >= mark;
        if (at_mark)
            step = mark - now;
        ULONG gen_before_step = prev_gen;
        if (step > 0 && !usbts_sim_advance(dev, (ULONGLONG)step)) {
            ok = fail(r, "usbts_sim_advance");
            break;
        }
        usbts_now_ns(dev, &now);
        USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;
        memset(&q, 0, sizeof q);
        q.TimeTrackingHandle = start.TimeTrackingHandle;
        if (!WinUsb_GetCurrentFrameNumberAndQpc(ih, &q)) {
            if (vanished(sc, next_ev))
                break_gone(r, now, at[next_ev - 1], &gone);
            else
                ok = fail(r, "WinUsb_GetCurrentFrameNumberAndQpc");
            break;
        }
        r->queries++;
        prev_gen = q.CurrentGenerationID;
        if (usbts_get_tracking_stats(dev, &ts)) {
            r->reads = (long long)ts.Reads;
            if (now - bucket_t >= 100 * MS) {
                double share = (double)(r->reads - bucket_reads) * read_ns / (double)(now - bucket_t);
                if (share > r->max_read_share)
                    r->max_read_share = share;
                if (share > SCENARIO_SPIN_SHARE && getenv("SCENARIO_DEBUG"))
                    fprintf(stderr, "spin: %lld reads in %.1f ms to %.3f ms (gen %u)\n", r->reads - bucket_reads,
                            (double)(now - bucket_t) / MS, (double)(now - t0) / MS, (unsigned)q.CurrentGenerationID);
                bucket_t = now;
                bucket_reads = r->reads;
            }
        }
        /* Recoveries: the first generation after the counter ran again. */
        for (int i = 0; i < next_ev; i++) {
            if (readable[i] < 0)
                continue;
            if (!readable_seen[i] && now >= readable[i]) {
                readable_seen[i] = true;
                /* The generation while it stood still.  A query that landed
                 * exactly on the instant it runs again shows it too: every
                 * read done by then latched no later than that instant, so no
                 * estimator can yet have seen the counter move.  The previous
                 * query's generation is older when the halt was noticed after
                 * it, and taking the halted counter's own generation for the
                 * recovery judged its model (a reset-halt's microframe 0, whose
                 * start the truth puts at the restart) before any read could
                 * show the restart (issue #16 soak, seed 4448060516). */
                gen_at_readable[i] = now == readable[i] ? q.CurrentGenerationID : gen_before_step;
                r->recovery_ms[i] = INFINITY;
            }
            if (readable_seen[i] && isinf(r->recovery_ms[i]) && q.CurrentGenerationID != gen_at_readable[i])
                r->recovery_ms[i] = (double)(now - readable[i]) / MS;
        }
        if (any_event && r->new_generation_ms < 0 && q.CurrentGenerationID != gen_first)
            r->new_generation_ms = (double)(now - at[0]) / MS;

        if (at_mark && next_ev < nev && now >= at[next_ev]) {
            const char *what = sc->events[next_ev].what;
            if (!any_event)
                gen_first = q.CurrentGenerationID;
            if (stall_ms_of(what) >= 0 && stall_end_check < 0) { /* the frame number before the (first) stall */
                frame_before = q.CurrentUSBFrameNumber;
                now_before = now;
                gen_stall = q.CurrentGenerationID;
            }
            if (readable[next_ev] >= 0)
                last_stop_event = now;
            if (stall_ms_of(what) >= 0 && stall_end_check < 0)
                stall_end_check = at[next_ev] + stall_ms_of(what) * MS + 50 * MS;
            if (!usbts_sim_inject(dev, what)) {
                ok = fail(r, what);
                break;
            }
            any_event = true;
            next_ev++;
            if (readable[next_ev - 1] == at[next_ev - 1]) { /* a reset: the counter runs again at once */
                readable_seen[next_ev - 1] = true;
                gen_at_readable[next_ev - 1] = q.CurrentGenerationID;
                r->recovery_ms[next_ev - 1] = INFINITY;
            }
            continue;
        }

        q.InputFrameNumber = q.CurrentUSBFrameNumber + (ULONG)((int)(splitmix(&rng) % 201) - 100);
        q.InputMicroFrameNumber = (ULONG)(splitmix(&rng) % 8);
        if (!WinUsb_GetCurrentFrameNumberAndQpc(ih, &q)) {
            if (vanished(sc, next_ev))
                break_gone(r, now, at[next_ev - 1], &gone);
            else
                ok = fail(r, "WinUsb_GetCurrentFrameNumberAndQpc");
            break;
        }
        long long elapsed = now - t0;

        /* Wrap safety: once the stall is over, the frame number must have
         * advanced by the elapsed time (a wrong wrap count is 2048 frames off). */
        if (stall_end_check >= 0 && !checked_jump && now >= stall_end_check) {
            long long frames = (long long)(int32_t)(q.CurrentUSBFrameNumber - frame_before);
            long long expect = llround((double)(now - now_before) / 1e6);
            r->stall_frames = expect;
            if (q.CurrentGenerationID != gen_stall && last_stop_event < now_before)
                r->stall_new_generation = true; /* a new numbering: frames not comparable */
            else
                r->frame_jump_error = frames - expect;
            checked_jump = true;
        }

        LONGLONG t_in, t_cur;
        if (!usbts_sim_truth(dev, q.InputFrameNumber, q.InputMicroFrameNumber, &t_in) ||
            !usbts_sim_truth(dev, q.CurrentUSBFrameNumber, q.CurrentHardwareMicroFrameNumber, &t_cur)) {
            ok = fail(r, "usbts_sim_truth");
            break;
        }
        double e_in = fabs((double)(q.QueryPerformanceCounterAtInputFrameOrMicroFrame.QuadPart * 100 - t_in));
        double e_cur = fabs((double)(q.CurrentQueryPerformanceCounter.QuadPart * 100 - t_cur));
        double bound = (double)q.PredictedAccuracyInMicroSeconds * 1000.0;

        /* Baseline (b): notice each wrap as it passes, record it with latency. */
        LONGLONG w;
        if (usbts_sim_truth(dev, 0, 0, &w) && w <= now && w > wb.true_wrap + 1000 * MS) {
            wb.true_wrap = w;
            wb.sample[0] = wb.sample[1];
            wb.sample[1] = (double)w + (double)(splitmix(&rng) % IRQ_JITTER_NS);
            wb.n++;
        }

        bool in_event_window = false;
        for (int i = 0; i < next_ev; i++)
            if (now >= at[i] && now < excl_to[i])
                in_event_window = true;

        /* The right frame: the time returned for the microframe it names is
         * within half a microframe of that microframe's true start (or within
         * the bound, if that is wider).  A smaller error is a time error,
         * counted against the bound; this one names the wrong microframe.
         * Not while a reset, halt or suspend is still unrecovered, nor just
         * after a stall: there the old model cannot know yet. */
        bool unrecovered = false;
        for (int i = 0; i < next_ev; i++) {
            long long sl = stall_ms_of(sc->events[i].what);
            if ((readable[i] >= 0 && r->recovery_ms[i] != -1 && isinf(r->recovery_ms[i])) ||
                (readable[i] >= 0 && now < readable[i]) || (sl >= 0 && now < at[i] + sl * MS + 50 * MS) ||
                excl_to[i] == LLONG_MAX)
                unrecovered = true;
        }
        struct query cur = {now, q.CurrentGenerationID, q.CurrentUSBFrameNumber, q.CurrentHardwareMicroFrameNumber,
                            t_cur, unrecovered};
        if (!unrecovered && elapsed >= WARMUP_NS && e_cur > fmax(62500.0, bound)) {
            r->frame_errors++;
            if (getenv("SCENARIO_DEBUG"))
                fprintf(stderr, "frame error (a) at %.3f ms (gen %u): returned time off by %.0f ns, bound %.0f\n",
                        (double)elapsed / MS, (unsigned)q.CurrentGenerationID, e_cur, bound);
        }
        /* ... and within one generation, with nothing stopping the counter in
         * between, the frame number moved as the true clock did (a wrong
         * wrap count moves it 2048 frames). */
        if (have_prev && prev.gen == cur.gen && last_stop_event < prev.now && !prev.unrecovered && !cur.unrecovered) {
            double moved = (double)(int32_t)(cur.frame - prev.frame) * 8 + (double)cur.micro - (double)prev.micro;
            double truly = (double)(cur.t_cur - prev.t_cur) / 125000.0;
            if (fabs(moved - truly) > 2 + 0.0025 * fabs(truly)) {
                r->frame_errors++;
                if (getenv("SCENARIO_DEBUG"))
                    fprintf(stderr, "frame error (b) at %.3f ms: moved %.0f, truly %.3f microframes\n",
                            (double)elapsed / MS, moved, truly);
            }
        }
        prev = cur;
        have_prev = true;

        if (elapsed < WARMUP_NS || in_event_window)
            continue;

        /* The same microframe through usbts_frame_to_ns, against its bound in
         * ns (PredictedAccuracyInMicroSeconds rounds up to whole µs). */
        USBTS_FRAME_TIME ft;
        if (usbts_frame_to_ns(ih, start.TimeTrackingHandle, q.CurrentUSBFrameNumber, q.CurrentHardwareMicroFrameNumber,
                              &ft)) {
            double err_ns = fabs((double)(ft.StartNs - t_cur));
            bool out_ns = err_ns > (double)ft.BoundNs;
            r->outside_ns_share += out_ns;
            if (out_ns && getenv("SCENARIO_DEBUG"))
                fprintf(stderr, "outside BoundNs at %.3f ms (gen %u): err %.0f, bound %lld\n", (double)elapsed / MS,
                        (unsigned)q.CurrentGenerationID, err_ns, (long long)ft.BoundNs);
            n_ns++;
        }
        bool judge_in = !(slew_at > now && t_in >= slew_at);
        r->unforeseeable += !judge_in;
        if (judge_in)
            push(&ours, e_in);
        push(&ours, e_cur);
        push(&bounds, bound);
        r->outside_share += (judge_in && e_in > bound) + (e_cur > bound);
        if (((judge_in && e_in > bound) || e_cur > bound) && getenv("SCENARIO_DEBUG"))
            fprintf(stderr, "outside at %.3f ms (gen %u): in %+d frames err %.0f, cur err %.0f, bound %.0f\n",
                    (double)elapsed / MS, (unsigned)q.CurrentGenerationID,
                    (int)(int32_t)(q.InputFrameNumber - q.CurrentUSBFrameNumber), e_in, e_cur, bound);
        if (any_event)
            push(&recovered, e_cur);

        /* Baseline (a): one bracketed read, the microframe's start guessed
         * half a microframe before the bracket's middle.  A read with
         * reserved bits set is no reading; it is left out. */
        LONGLONG b, a, t_read;
        ULONG mf;
        if (!usbts_sim_read(dev, &b, &mf, &a)) {
            ok = fail(r, "usbts_sim_read");
            break;
        }
        if (!(mf & ~0x3FFFu) && usbts_sim_truth(dev, (mf >> 3) & 0x7FF, mf & 7, &t_read))
            push(&base_a, fabs((double)(b + a) / 2.0 - MICROFRAME_NS / 2.0 - (double)t_read));

        if (wb.n >= 1) {
            double period = wb.n >= 2 ? (wb.sample[1] - wb.sample[0]) / WRAP_MICROFRAMES : (double)MICROFRAME_NS;
            long long off = (long long)((q.CurrentUSBFrameNumber & 0x7FF) * 8 + q.CurrentHardwareMicroFrameNumber);
            if (t_cur < wb.true_wrap)
                off -= WRAP_MICROFRAMES;
            push(&base_b, fabs(wb.sample[1] + (double)off * period - (double)t_cur));
        }
    }

    for (int i = 0; i < nev; i++)
        if (r->recovery_ms[i] > r->worst_recovery_ms)
            r->worst_recovery_ms = r->recovery_ms[i];
    if (ok && ours.n > 0) {
        r->n = ours.n;
        r->outside_share /= (double)ours.n;
        r->outside_ns_share = n_ns ? r->outside_ns_share / (double)n_ns : 0;
        r->p50_ns = quantile(&ours, 0.50);
        r->p99_ns = quantile(&ours, 0.99);
        r->max_ns = quantile(&ours, 1.0);
        r->bound_med_ns = quantile(&bounds, 0.50);
        r->bound_p99_ratio = r->p99_ns > 0 ? r->bound_med_ns / r->p99_ns : INFINITY;
        r->honest = r->outside_share <= 0.01 && r->bound_med_ns <= 4 * r->p99_ns + 1000;
        r->base_read_p99_ns = quantile(&base_a, 0.99);
        r->base_wrap_p99_ns = quantile(&base_b, 0.99);
        r->recovered_p99_ns = quantile(&recovered, 0.99);
    }
    free(ours.v);
    free(bounds.v);
    free(base_a.v);
    free(base_b.v);
    free(recovered.v);
    USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION stop = {start.TimeTrackingHandle};
    WinUsb_StopTrackingForTimeSync(ih, &stop);
    WinUsb_Free(ih);
    usbts_close(dev);
    return ok;
}
