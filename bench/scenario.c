/* SPDX-License-Identifier: MIT */
/*
 * scenario.c — runs one accuracy scenario on the virtual-clock simulator and
 * measures our estimator and two baselines against the simulator's truth.
 * Only the public API is used.
 */
#include "scenario.h"

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
    {"nominal", "", NULL, 0, 8000},
    {"drift-500ppm", "drift_ppm=-500", NULL, 0, 8000},
    {"drift+500ppm", "drift_ppm=500", NULL, 0, 8000},
    {"preempt-1%", "preempt_prob=0.01", NULL, 0, 8000},
    {"preempt-10%", "preempt_prob=0.1", NULL, 0, 8000},
    {"read_ns=5000", "read_ns=5000", NULL, 0, 8000},
    {"latch=1,5us", "read_ns=5000,latch=1", NULL, 0, 8000}, /* the register latches late */
    {"slew-200ppm", "slew_ppm=200,slew_at_ms=4000", NULL, 0, 8000},
    {"stall-10s", "", "stall_ms=10000", 3000, 16000},
    {"reset", "", "reset", 4000, 8000},
    {"halt-100ms", "", "halt_ms=100", 4000, 8000},
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

bool scenario_run(const struct scenario *sc, uint64_t seed, struct scenario_result *r)
{
    memset(r, 0, sizeof *r);
    r->new_generation_ms = -1;
    char spec[256];
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
    long long event_at = sc->event ? t0 + (long long)(sc->event_at_ms * MS) : -1;
    long long exclude_until = -1;
    if (sc->event) {
        long long stall_ms = 0;
        if (sscanf(sc->event, "stall_ms=%lld", &stall_ms) != 1)
            stall_ms = 0;
        exclude_until = event_at + stall_ms * MS + RECOVERY_NS;
    }
    bool event_done = false;
    ULONG gen_before = 0;
    ULONG frame_before = 0;
    LONGLONG now_before = 0;
    bool checked_jump = false;
    long long end = t0 + (long long)(sc->duration_ms * MS);
    LONGLONG now = t0;
    bool ok = true;

    while (now < end) {
        long long step = 100000 + (long long)(splitmix(&rng) % 2900000); /* 0.1 .. 3 ms: any phase */
        if (sc->event && !event_done && now + step >= event_at) {
            if (event_at > now && !usbts_sim_advance(dev, (ULONGLONG)(event_at - now))) {
                ok = fail(r, "usbts_sim_advance");
                break;
            }
            USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q0;
            memset(&q0, 0, sizeof q0);
            q0.TimeTrackingHandle = start.TimeTrackingHandle;
            if (!WinUsb_GetCurrentFrameNumberAndQpc(ih, &q0)) {
                ok = fail(r, "query before the event");
                break;
            }
            gen_before = q0.CurrentGenerationID;
            frame_before = q0.CurrentUSBFrameNumber;
            usbts_now_ns(dev, &now_before);
            if (!usbts_sim_inject(dev, sc->event)) {
                ok = fail(r, sc->event);
                break;
            }
            event_done = true;
            usbts_now_ns(dev, &now);
            continue;
        }
        if (!usbts_sim_advance(dev, (ULONGLONG)step)) {
            ok = fail(r, "usbts_sim_advance");
            break;
        }
        USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;
        memset(&q, 0, sizeof q);
        q.TimeTrackingHandle = start.TimeTrackingHandle;
        if (!WinUsb_GetCurrentFrameNumberAndQpc(ih, &q)) {
            ok = fail(r, "WinUsb_GetCurrentFrameNumberAndQpc");
            break;
        }
        q.InputFrameNumber = q.CurrentUSBFrameNumber + (ULONG)((int)(splitmix(&rng) % 201) - 100);
        q.InputMicroFrameNumber = (ULONG)(splitmix(&rng) % 8);
        if (!WinUsb_GetCurrentFrameNumberAndQpc(ih, &q)) {
            ok = fail(r, "WinUsb_GetCurrentFrameNumberAndQpc");
            break;
        }
        usbts_now_ns(dev, &now);
        long long elapsed = now - t0;

        if (event_done && r->new_generation_ms < 0 && q.CurrentGenerationID != gen_before)
            r->new_generation_ms = (double)(now - event_at) / MS;

        /* Wrap safety: once the stall is over, the frame number must have
         * advanced by the elapsed time (a wrong wrap count is 2048 frames off). */
        if (event_done && !checked_jump && sc->event && strncmp(sc->event, "stall_ms=", 9) == 0 &&
            now >= exclude_until - RECOVERY_NS + 50 * MS) {
            long long frames = (long long)(q.CurrentUSBFrameNumber - frame_before);
            long long expect = llround((double)(now - now_before) / 1e6);
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

        bool in_event_window = sc->event && event_done && now < exclude_until;
        if (elapsed < WARMUP_NS || in_event_window)
            continue;

        push(&ours, e_in);
        push(&ours, e_cur);
        push(&bounds, bound);
        r->outside_share += (e_in > bound) + (e_cur > bound);
        if (event_done)
            push(&recovered, e_cur);

        /* Baseline (a): one bracketed read, the microframe's start guessed
         * half a microframe before the bracket's middle. */
        LONGLONG b, a, t_read;
        ULONG mf;
        if (!usbts_sim_read(dev, &b, &mf, &a)) {
            ok = fail(r, "usbts_sim_read");
            break;
        }
        if (usbts_sim_truth(dev, (mf >> 3) & 0x7FF, mf & 7, &t_read))
            push(&base_a, fabs((double)(b + a) / 2.0 - MICROFRAME_NS / 2.0 - (double)t_read));

        if (wb.n >= 1) {
            double period = wb.n >= 2 ? (wb.sample[1] - wb.sample[0]) / WRAP_MICROFRAMES : (double)MICROFRAME_NS;
            long long off = (long long)((q.CurrentUSBFrameNumber & 0x7FF) * 8 + q.CurrentHardwareMicroFrameNumber);
            if (t_cur < wb.true_wrap)
                off -= WRAP_MICROFRAMES;
            push(&base_b, fabs(wb.sample[1] + (double)off * period - (double)t_cur));
        }
    }

    if (ok && ours.n > 0) {
        r->n = ours.n;
        r->outside_share /= (double)ours.n;
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
