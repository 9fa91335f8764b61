/* SPDX-License-Identifier: MIT */
/*
 * fuzz_api.c — random call sequences, decoded from the input, over a pool of
 * valid, stale, foreign and garbage handles on virtual-clock simulated
 * controllers, with injected events (reset, halt_ms, stall_ms, unplug) and
 * usbts_sim_advance between calls.
 *
 * The harness keeps its own model of which handles are live, which devices
 * are unplugged or halted, and which tracking handle belongs to which
 * interface.  From it, it predicts each call's outcome: success (and then the
 * last error must be left as it was), or the exact error SPEC §3 documents
 * for that case.  Successful results are checked for self-consistency and,
 * where the estimator has had a fair chance, against the simulator's truth.
 * At the end of each input every device is closed and the library's tables
 * must be empty: no handle, no tracker, no sampler; LeakSanitizer sees any
 * memory left.  Virtual clocks make every input deterministic.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"
#include "page.h"
#include "tracker.h"
#include "usbtimesync/usbtimesync.h"

#define ND 4
#define NI 8
#define NT 16
#define NSTALE 16
#define MAX_STEPS 96
#define SENTINEL 0xF00Du

/* ---- the input ------------------------------------------------------------ */

static const uint8_t *in_p;
static size_t in_n;

static unsigned byte(void)
{
    if (!in_n)
        return 0;
    in_n--;
    return *in_p++;
}

static uint32_t u32(void)
{
    uint32_t v = byte();
    v |= byte() << 8;
    v |= byte() << 16;
    return v | (uint32_t)byte() << 24;
}

static uint64_t u64(void)
{
    uint64_t lo = u32();
    return lo | (uint64_t)u32() << 32;
}

/* ---- the model ------------------------------------------------------------ */

struct mdev {
    HANDLE h;
    bool live, unplugged;
    int64_t halt_end;    /* virtual ns until which MFINDEX stands still */
    int64_t quiet_since; /* last reset, halt end or unplug: the truth check waits after it */
    int64_t tracked_since;
    int64_t last_now;
    int64_t adv_aim; /* where the last usbts_sim_advance aimed ... */
    int64_t adv_end; /* ... and where the clock stood after it */
    char spec[128];
};
struct mif {
    HANDLE h;
    bool live;
    int dev;
};
struct mtr {
    HANDLE h;
    bool live;
    int itf;
    uint32_t gen;
    int64_t mf;      /* last CurrentUSBFrame*8 + microframe seen, in that generation */
    int64_t acc_ns;
};

static struct mdev devs[ND];
static struct mif ifs[NI];
static struct mtr trs[NT];
static HANDLE stale[NSTALE];
static unsigned nstale;
static HANDLE issued[4 * MAX_STEPS];
static unsigned nissued;
static int step;
static const char *op_name;

#define FAIL(...)                                                                                                \
    do {                                                                                                         \
        fprintf(stderr, "fuzz_api: step %d, %s: ", step, op_name);                                              \
        fprintf(stderr, __VA_ARGS__);                                                                            \
        if (GetLastError() != SENTINEL)                                                                          \
            fprintf(stderr, " (last error %u: %s)", (unsigned)GetLastError(), usbts_last_error_message());      \
        fprintf(stderr, "\n");                                                                                   \
        abort();                                                                                                 \
    } while (0)

static void bury(HANDLE h)
{
    stale[nstale++ % NSTALE] = h;
}

static void new_handle(HANDLE h)
{
    if (h == NULL || h == INVALID_HANDLE_VALUE)
        FAIL("a new handle is NULL or INVALID_HANDLE_VALUE");
    for (unsigned i = 0; i < nissued && i < sizeof issued / sizeof issued[0]; i++)
        if (issued[i] == h)
            FAIL("handle %p issued twice", h);
    if (nissued < sizeof issued / sizeof issued[0])
        issued[nissued++] = h;
}

static int dev_of(HANDLE h)
{
    for (int i = 0; i < ND; i++)
        if (devs[i].live && devs[i].h == h && h)
            return i;
    return -1;
}

static int if_of(HANDLE h)
{
    for (int i = 0; i < NI; i++)
        if (ifs[i].live && ifs[i].h == h && h)
            return i;
    return -1;
}

/* The tracking handle th, live and started on interface ih; -1 if not. */
static int tr_of(HANDLE ih, HANDLE th)
{
    int ii = if_of(ih);
    for (int i = 0; i < NT && ii >= 0; i++)
        if (trs[i].live && trs[i].h == th && trs[i].itf == ii && th)
            return i;
    return -1;
}

static int users_of(int d)
{
    int n = 0;
    for (int i = 0; i < NT; i++)
        if (trs[i].live && ifs[trs[i].itf].dev == d)
            n++;
    return n;
}

static int64_t now_of(int d)
{
    LONGLONG ns = 0;
    if (!usbts_now_ns(devs[d].h, &ns))
        FAIL("usbts_now_ns on a live device");
    if (ns < devs[d].last_now)
        FAIL("the virtual clock went back from %lld to %lld", (long long)devs[d].last_now, (long long)ns);
    devs[d].last_now = ns;
    return ns;
}

static void kill_tr(int t)
{
    trs[t].live = false;
    bury(trs[t].h);
}

static void kill_if(int i)
{
    int d = ifs[i].dev;
    ifs[i].live = false;
    bury(ifs[i].h);
    for (int t = 0; t < NT; t++)
        if (trs[t].live && trs[t].itf == i)
            kill_tr(t);
    if (users_of(d) == 0)
        devs[d].tracked_since = INT64_MAX;
}

static void kill_dev(int d)
{
    devs[d].live = false;
    bury(devs[d].h);
    for (int i = 0; i < NI; i++)
        if (ifs[i].live && ifs[i].dev == d)
            kill_if(i);
}

/* ---- handle picking --------------------------------------------------------- */

enum kind { K_DEV, K_IF, K_TR };
static int scratch;

static HANDLE slot_handle(enum kind k, unsigned i)
{
    switch (k) {
    case K_DEV: return devs[i % ND].h;
    case K_IF: return ifs[i % NI].h;
    default: return trs[i % NT].h;
    }
}

/* A handle for a parameter of kind k: one from its pool (live, dead or never
 * filled), NULL, INVALID_HANDLE_VALUE, a stale one, one of another kind, a
 * near miss of a real one, garbage, or a pointer to the harness's memory. */
static HANDLE pick(enum kind k)
{
    unsigned b = byte();
    switch (b % 13) {
    default: return slot_handle(k, b >> 4);
    case 6: return NULL;
    case 7: return INVALID_HANDLE_VALUE;
    case 8: return stale[(b >> 4) % NSTALE];
    case 9: return slot_handle((enum kind)((k + 1 + (b >> 7)) % 3), b >> 4);
    case 10: {
        uint64_t v = (uint64_t)(uintptr_t)slot_handle(k, b >> 4);
        return (HANDLE)(uintptr_t)(v ^ ((uint64_t)1 << (byte() % 64)));
    }
    case 11: return (HANDLE)(uintptr_t)u64();
    case 12: return &scratch;
    }
}

/* ---- checking outcomes ---------------------------------------------------------- */

/* USBTS_FUZZ_TRACE=1 prints each call and its outcome: for reading a crash
 * input or a seed (./fuzz_api INPUT). */
static int trace = -1;

static void pre(const char *name)
{
    if (trace < 0)
        trace = getenv("USBTS_FUZZ_TRACE") != NULL;
    op_name = name;
    SetLastError(SENTINEL);
}

/* want 0: must succeed and leave the last error alone; else fail with it. */
static void expect(BOOL ok, DWORD want)
{
    DWORD got = GetLastError();
    if (trace)
        fprintf(stderr, "step %2d %-34s %s (error %u, expected %u)\n", step, op_name, ok ? "TRUE " : "FALSE",
                ok ? 0u : (unsigned)got, (unsigned)want);
    if (want == 0) {
        if (!ok)
            FAIL("expected success");
        if (got != SENTINEL)
            FAIL("succeeded but changed the last error to %u", (unsigned)got);
    } else {
        if (ok)
            FAIL("expected failure with error %u, got success", (unsigned)want);
        if (got != want)
            FAIL("expected error %u, got %u", (unsigned)want, (unsigned)got);
    }
}

/* ---- the calls ---------------------------------------------------------------------- */

static void op_open(void)
{
    static const unsigned read_ns[] = {5000, 20000, 50000, 500};
    static const char *const prob[] = {"0", "0", "0.01", "0.05"};
    static const char *const latch[] = {"0.5", "0", "1", "0.25"};
    unsigned k = byte() % ND, b = byte();
    char spec[128];
    snprintf(spec, sizeof spec, "sim:clock=virtual,seed=%u,read_ns=%u,drift_ppm=%d,preempt_prob=%s,latch=%s",
             byte(), read_ns[b % 4], (int)(u32() % 2001) - 1000, prob[(b >> 2) % 4], latch[(b >> 4) % 4]);
    if (devs[k].live) {
        pre("usbts_close (to reuse a pool slot)");
        expect(usbts_close(devs[k].h), 0);
        kill_dev((int)k);
    }
    pre("usbts_open");
    if (trace)
        fprintf(stderr, "        open %s\n", spec);
    HANDLE h = usbts_open(spec);
    if (h == INVALID_HANDLE_VALUE)
        FAIL("usbts_open(%s) failed", spec);
    if (GetLastError() != SENTINEL)
        FAIL("usbts_open succeeded but changed the last error");
    new_handle(h);
    memset(&devs[k], 0, sizeof devs[k]);
    devs[k].h = h;
    devs[k].live = true;
    devs[k].tracked_since = INT64_MAX;
    snprintf(devs[k].spec, sizeof devs[k].spec, "%s", spec);
    devs[k].quiet_since = now_of((int)k);
}

static void op_close(void)
{
    HANDLE h = pick(K_DEV);
    int d = dev_of(h);
    pre("usbts_close");
    expect(usbts_close(h), d >= 0 ? 0 : ERROR_INVALID_HANDLE);
    if (d >= 0)
        kill_dev(d);
}

static void op_initialize(void)
{
    HANDLE h = pick(K_DEV);
    bool null_out = byte() % 16 == 0;
    int d = dev_of(h);
    unsigned k = byte() % NI;
    WINUSB_INTERFACE_HANDLE ih = NULL;
    pre("WinUsb_Initialize");
    BOOL ok = WinUsb_Initialize(h, null_out ? NULL : &ih);
    expect(ok, null_out ? ERROR_INVALID_PARAMETER
               : d < 0  ? ERROR_INVALID_HANDLE
               : devs[d].unplugged ? ERROR_DEVICE_NOT_CONNECTED
                                   : 0);
    if (!ok)
        return;
    new_handle(ih);
    if (ifs[k].live) { /* the pool slot is taken: free what it holds first */
        pre("WinUsb_Free (to reuse a pool slot)");
        expect(WinUsb_Free(ifs[k].h), 0);
        kill_if((int)k);
    }
    ifs[k] = (struct mif){ih, true, d};
}

static void op_free(void)
{
    HANDLE h = pick(K_IF);
    int i = if_of(h);
    pre("WinUsb_Free");
    expect(WinUsb_Free(h), i >= 0 ? 0 : ERROR_INVALID_HANDLE);
    if (i >= 0)
        kill_if(i);
}

static void op_start(void)
{
    HANDLE ih = pick(K_IF);
    unsigned b = byte();
    bool null_info = b % 16 == 0;
    HANDLE in = (b >> 4) % 4 == 0 ? INVALID_HANDLE_VALUE : (b >> 4) % 4 == 1 ? pick(K_TR) : NULL;
    BOOLEAN tolerable = (BOOLEAN)((b >> 6) & 1);
    int i = if_of(ih), d = i >= 0 ? ifs[i].dev : -1;
    DWORD want;
    bool may_time_out = false;
    if (!ih || null_info)
        want = ERROR_INVALID_HANDLE;
    else if (in != NULL && in != INVALID_HANDLE_VALUE)
        want = ERROR_INVALID_PARAMETER;
    else if (i < 0)
        want = ERROR_INVALID_HANDLE;
    else if (devs[d].unplugged)
        want = ERROR_DEVICE_NOT_CONNECTED;
    else {
        want = 0;
        /* Waiting for a boundary can time out only if the counter stands
         * still for a good part of the 2.048 s it waits. */
        may_time_out = !tolerable && devs[d].halt_end > now_of(d);
    }
    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION s = {in, tolerable};
    pre("WinUsb_StartTrackingForTimeSync");
    BOOL ok = WinUsb_StartTrackingForTimeSync(ih, null_info ? NULL : &s);
    if (!ok && may_time_out && GetLastError() == ERROR_TIMEOUT) {
        if (trace)
            fprintf(stderr, "step %2d %-34s FALSE (error %u, the counter is halted)\n", step, op_name,
                    (unsigned)ERROR_TIMEOUT);
        if (s.TimeTrackingHandle != in)
            FAIL("a failed Start wrote TimeTrackingHandle");
        return;
    }
    expect(ok, want);
    if (!ok) {
        if (!null_info && s.TimeTrackingHandle != in)
            FAIL("a failed Start wrote TimeTrackingHandle");
        return;
    }
    new_handle(s.TimeTrackingHandle);
    if (s.IsStartupDelayTolerable != tolerable)
        FAIL("Start changed IsStartupDelayTolerable");
    int t = -1;
    for (int j = 0; j < NT && t < 0; j++)
        if (!trs[j].live)
            t = j;
    if (t < 0) { /* every pool slot holds a live handle: stop one */
        t = (int)(byte() % NT);
        USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION p = {trs[t].h};
        pre("WinUsb_StopTrackingForTimeSync (to reuse a pool slot)");
        expect(WinUsb_StopTrackingForTimeSync(ifs[trs[t].itf].h, &p), 0);
        kill_tr(t);
    }
    if (users_of(d) == 0)
        devs[d].tracked_since = now_of(d);
    trs[t] = (struct mtr){s.TimeTrackingHandle, true, i, 0, 0, 0};
}

static void op_stop(void)
{
    HANDLE ih = pick(K_IF), th = pick(K_TR);
    bool null_info = byte() % 16 == 0;
    int t = tr_of(ih, th);
    USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION s = {th};
    pre("WinUsb_StopTrackingForTimeSync");
    expect(WinUsb_StopTrackingForTimeSync(ih, null_info ? NULL : &s), (null_info || t < 0) ? ERROR_INVALID_HANDLE : 0);
    if (!null_info && t >= 0) {
        int d = ifs[trs[t].itf].dev;
        kill_tr(t);
        if (users_of(d) == 0)
            devs[d].tracked_since = INT64_MAX;
    }
}

/* True when tracking handle t's model is too old to answer (its sampler
 * starved by a long stall_ms): queries fail with ERROR_GEN_FAILURE (model.h). */
static bool model_dead(int t)
{
    uint32_t ii;
    struct usbts_model m;
    if (t < 0 || !usbts_if_valid(ifs[trs[t].itf].h, &ii))
        return false;
    usbts_tracker_read_model(&atomic_load(&usbts_dev_slots[atomic_load(&usbts_if_slots[ii].dev_idx)].page)->pub, &m);
    return usbts_model_dead(&m, now_of(ifs[trs[t].itf].dev));
}

/* Microframes to allow for a bound of acc_ns either side. */
static int64_t slack_mf(int64_t acc_ns)
{
    return 2 + 2 * acc_ns / 125000;
}

static void check_query(int t, const USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION *q, ULONG frame, ULONG uf)
{
    int d = ifs[trs[t].itf].dev;
    int64_t now = now_of(d);
    /* The model the query evaluated (the clock is virtual: nothing moved). */
    uint32_t ii;
    struct usbts_model m;
    if (!usbts_if_valid(ifs[trs[t].itf].h, &ii))
        FAIL("a live interface does not validate");
    usbts_tracker_read_model(&atomic_load(&usbts_dev_slots[atomic_load(&usbts_if_slots[ii].dev_idx)].page)->pub, &m);
    if (trace) {
        {
            fprintf(stderr,
                    "        now %lld: frame %u.%u at %lld, accuracy %u us; model: generation %u flags %u, "
                    "mf %lld at %lld ns, period %.3f ns, bound %lld ns + %.3g ns/ns\n",
                    (long long)now, (unsigned)q->CurrentUSBFrameNumber, (unsigned)q->CurrentHardwareMicroFrameNumber,
                    (long long)q->CurrentQueryPerformanceCounter.QuadPart * 100,
                    (unsigned)q->PredictedAccuracyInMicroSeconds, (unsigned)m.generation, (unsigned)m.flags,
                    (long long)m.ref_mf, (long long)m.ref_ns, (double)m.period_fp / 4294967296.0,
                    (long long)m.bound0_ns, (double)m.bound_slope_fp / 4294967296.0);
        }
    }
    int64_t acc = (int64_t)q->PredictedAccuracyInMicroSeconds * 1000;
    int64_t cur = q->CurrentQueryPerformanceCounter.QuadPart * 100;
    int64_t mf = (int64_t)q->CurrentUSBFrameNumber * 8 + q->CurrentHardwareMicroFrameNumber;
    if (q->QueryPerformanceCounterFrequency.QuadPart != 10000000)
        FAIL("frequency %lld", (long long)q->QueryPerformanceCounterFrequency.QuadPart);
    if (q->CurrentHardwareFrameNumber != (q->CurrentUSBFrameNumber & 0x7FF) || q->CurrentHardwareMicroFrameNumber > 7)
        FAIL("hardware frame %u.%u for USB frame %u", (unsigned)q->CurrentHardwareFrameNumber,
             (unsigned)q->CurrentHardwareMicroFrameNumber, (unsigned)q->CurrentUSBFrameNumber);
    if (q->CurrentGenerationID == 0 || acc < 1000)
        FAIL("generation %u, accuracy %u", (unsigned)q->CurrentGenerationID,
             (unsigned)q->PredictedAccuracyInMicroSeconds);
    if (q->TimeTrackingHandle != trs[t].h || q->InputFrameNumber != frame || q->InputMicroFrameNumber != uf)
        FAIL("the query changed its inputs");
    /* The current microframe began no later than now. */
    if (cur > now + acc + 100)
        FAIL("the current microframe starts %lld ns after now, accuracy %lld ns", (long long)(cur - now),
             (long long)acc);
    /* The input microframe lies as far from the current one as their
     * numbers say, at the nominal rate within ±1000 ppm (and a margin). */
    int64_t qin = q->QueryPerformanceCounterAtInputFrameOrMicroFrame.QuadPart;
    if (frame == 0 && uf == 0) {
        if (qin != 0)
            FAIL("frame 0.0 gave QPC %lld, not 0", (long long)qin);
    } else {
        int64_t dmf = (int64_t)(int32_t)(frame - q->CurrentUSBFrameNumber) * 8 + (int64_t)uf -
                      (int64_t)q->CurrentHardwareMicroFrameNumber;
        /* While the counter stands still, when a later microframe will
         * begin is anybody's guess: no answer can be checked. */
        bool unknowable = dmf > 0 && (m.flags & USBTS_MODEL_STOPPED);
        /* A bound past 2^32 us cannot be stated: the saturated value only
         * says "at least this much". */
        unknowable |= q->PredictedAccuracyInMicroSeconds == 0xFFFFFFFFu;
        __int128 diff = (__int128)(qin * 100 - cur) - (__int128)dmf * 125000;
        __int128 tol = (__int128)(dmf < 0 ? -dmf : dmf) * 125000 / 400 + 4 * acc + 1000;
        if (!unknowable && (diff > tol || diff < -tol))
            FAIL("frame %u.%u is %lld microframes from the current one but %lld ns away", (unsigned)frame,
                 (unsigned)uf, (long long)dmf, (long long)(qin * 100 - cur));
    }
    /* Within a generation the current microframe does not go back. */
    if (trs[t].gen == q->CurrentGenerationID &&
        mf < trs[t].mf - slack_mf(acc > trs[t].acc_ns ? acc : trs[t].acc_ns))
        FAIL("the current microframe went back from %lld to %lld in generation %u", (long long)trs[t].mf,
             (long long)mf, (unsigned)q->CurrentGenerationID);
    trs[t].gen = q->CurrentGenerationID;
    trs[t].mf = mf;
    trs[t].acc_ns = acc;
    /* Against the truth, once tracking has run 2 s undisturbed (SPEC §6:
     * recovery within 2 s), with a wide margin: this looks for gross errors,
     * not for the 99th percentile. */
    if (devs[d].halt_end <= devs[d].quiet_since && now - devs[d].quiet_since > 3000000000LL &&
        devs[d].tracked_since != INT64_MAX && now - devs[d].tracked_since > 2000000000LL) {
        LONGLONG truth;
        pre("usbts_sim_truth");
        expect(usbts_sim_truth(devs[d].h, q->CurrentUSBFrameNumber, q->CurrentHardwareMicroFrameNumber, &truth), 0);
        if (cur - truth > 4 * acc + 1000 || truth - cur > 4 * acc + 1000)
            FAIL("frame %u.%u: QPC %lld ns, truth %lld ns, accuracy %lld ns", (unsigned)q->CurrentUSBFrameNumber,
                 (unsigned)q->CurrentHardwareMicroFrameNumber, (long long)cur, (long long)truth, (long long)acc);
    }
}

static void op_query(void)
{
    HANDLE ih = pick(K_IF), th = pick(K_TR);
    unsigned b = byte();
    bool null_info = b % 32 == 0;
    ULONG frame = (b & 32) ? u32() : (b & 64) ? 0 : byte();
    ULONG uf = (b & 128) ? byte() % 10 : (b & 64) ? 0 : byte() % 8;
    int t = tr_of(ih, th);
    int d = t >= 0 ? ifs[trs[t].itf].dev : -1;
    USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;
    memset(&q, 0x5A, sizeof q);
    q.TimeTrackingHandle = th;
    q.InputFrameNumber = frame;
    q.InputMicroFrameNumber = uf;
    pre("WinUsb_GetCurrentFrameNumberAndQpc");
    BOOL ok = WinUsb_GetCurrentFrameNumberAndQpc(ih, null_info ? NULL : &q);
    expect(ok, (!ih || null_info || t < 0) ? ERROR_INVALID_HANDLE
               : devs[d].unplugged         ? ERROR_DEVICE_NOT_CONNECTED
               : model_dead(t)             ? ERROR_GEN_FAILURE
               : uf > 7                    ? ERROR_INVALID_PARAMETER
                                           : 0);
    if (ok)
        check_query(t, &q, frame, uf);
}

/* The other timelines, single and bulk: a clock id that may be unknown, NULL
 * pointers, arrays with a bad microframe anywhere.  Checks happen in this
 * order: NULL handle or output, the clock, then the query path's own. */
static void op_frame_clock(void)
{
    HANDLE ih = pick(K_IF), th = pick(K_TR);
    unsigned b = byte();
    ULONG clock = byte() % 6; /* 4 and 5 are not clocks */
    int t = tr_of(ih, th);
    int d = t >= 0 ? ifs[trs[t].itf].dev : -1;
    if (b & 1) {
        bool null_out = b % 32 == 1;
        ULONG frame = u32(), uf = byte() % 9;
        USBTS_FRAME_TIME ft;
        pre("usbts_frame_to_clock_ns");
        BOOL ok = usbts_frame_to_clock_ns(ih, th, clock, frame, uf, null_out ? NULL : &ft);
        expect(ok, (!ih || null_out) ? ERROR_INVALID_HANDLE
                   : clock > 3       ? ERROR_INVALID_PARAMETER
                   : t < 0           ? ERROR_INVALID_HANDLE
                   : devs[d].unplugged ? ERROR_DEVICE_NOT_CONNECTED
                   : model_dead(t)     ? ERROR_GEN_FAILURE
                   : uf > 7            ? ERROR_INVALID_PARAMETER
                                       : 0);
        if (ok && (ft.UsbFrameNumber != frame || ft.MicroFrameNumber != uf || ft.BoundNs < 1 || ft.GenerationId == 0))
            FAIL("clock %u: frame %u.%u came back as %u.%u (bound %lld)", (unsigned)clock, (unsigned)frame,
                 (unsigned)uf, (unsigned)ft.UsbFrameNumber, (unsigned)ft.MicroFrameNumber, (long long)ft.BoundNs);
        return;
    }
    enum { MAXN = 64 };
    ULONG frames[MAXN], ufs[MAXN], gen = 0;
    LONGLONG start[MAXN], bound[MAXN];
    ULONG n = byte() % (MAXN + 1);
    bool with_uf = b & 2, null_frames = b % 16 == 4, null_start = b % 16 == 8, null_gen = b % 32 == 12;
    bool bad_uf = false;
    ULONG near = d >= 0 ? (ULONG)(now_of(d) / 1000000) : 0; /* about the current frame */
    for (ULONG i = 0; i < n; i++) {
        frames[i] = (b & 4) ? u32() : near + (ULONG)(int8_t)byte();
        ufs[i] = byte() % (b & 32 ? 9 : 8);
        bad_uf |= with_uf && ufs[i] > 7;
    }
    pre("usbts_frames_to_clock_ns");
    BOOL ok = usbts_frames_to_clock_ns(ih, th, clock, n, null_frames ? NULL : frames, with_uf ? ufs : NULL,
                                       null_start ? NULL : start, (b & 64) ? NULL : bound, null_gen ? NULL : &gen);
    expect(ok, !ih                                             ? ERROR_INVALID_HANDLE
               : null_gen || (n > 0 && (null_frames || null_start)) ? ERROR_INVALID_PARAMETER
               : clock > 3                                    ? ERROR_INVALID_PARAMETER
               : t < 0                                        ? ERROR_INVALID_HANDLE
               : devs[d].unplugged                            ? ERROR_DEVICE_NOT_CONNECTED
               : model_dead(t)                                ? ERROR_GEN_FAILURE
               : bad_uf                                       ? ERROR_INVALID_PARAMETER
                                                              : 0);
    if (ok && gen == 0)
        FAIL("usbts_frames_to_clock_ns: generation 0 for %u frames", (unsigned)n);
    for (ULONG i = 0; ok && !(b & 64) && i < n; i++)
        if (bound[i] < 1)
            FAIL("usbts_frames_to_clock_ns: bound %lld at %u", (long long)bound[i], (unsigned)i);
}

static void op_frame_ns(void)
{
    HANDLE ih = pick(K_IF), th = pick(K_TR);
    unsigned b = byte();
    bool null_out = b % 32 == 0, to_ns = b & 1;
    int t = tr_of(ih, th);
    int d = t >= 0 ? ifs[trs[t].itf].dev : -1;
    USBTS_FRAME_TIME ft;
    if (to_ns) {
        ULONG frame = u32(), uf = byte() % 9;
        pre("usbts_frame_to_ns");
        BOOL ok = usbts_frame_to_ns(ih, th, frame, uf, null_out ? NULL : &ft);
        expect(ok, (!ih || null_out || t < 0) ? ERROR_INVALID_HANDLE
                   : devs[d].unplugged         ? ERROR_DEVICE_NOT_CONNECTED
                   : model_dead(t)             ? ERROR_GEN_FAILURE
                   : uf > 7                    ? ERROR_INVALID_PARAMETER
                                               : 0);
        if (ok && (ft.UsbFrameNumber != frame || ft.MicroFrameNumber != uf || ft.BoundNs < 1 ||
                   ft.OffsetNs != 0 || ft.GenerationId == 0))
            FAIL("frame %u.%u came back as %u.%u (bound %lld, offset %lld)", (unsigned)frame, (unsigned)uf,
                 (unsigned)ft.UsbFrameNumber, (unsigned)ft.MicroFrameNumber, (long long)ft.BoundNs,
                 (long long)ft.OffsetNs);
    } else {
        /* Anything, near now, or around the 2^31 ms either side it accepts. */
        const int64_t range = (int64_t)1000000 << 31;
        int64_t now = d >= 0 ? now_of(d) : 0;
        LONGLONG ns = (b & 6) == 2   ? (LONGLONG)u64()
                      : (b & 6) == 4 ? now + ((b & 8) ? range : -range) + (int8_t)byte()
                                     : now + (int32_t)u32();
        __int128 dist = (__int128)ns - now;
        pre("usbts_ns_to_frame");
        BOOL ok = usbts_ns_to_frame(ih, th, ns, null_out ? NULL : &ft);
        expect(ok, (!ih || null_out || t < 0)          ? ERROR_INVALID_HANDLE
                   : devs[d].unplugged                  ? ERROR_DEVICE_NOT_CONNECTED
                   : model_dead(t)                      ? ERROR_GEN_FAILURE
                   : dist > range || dist < -range      ? ERROR_INVALID_PARAMETER
                                                        : 0);
        if (ok && (ft.MicroFrameNumber > 7 || ft.BoundNs < 1 || ft.GenerationId == 0 ||
                   (LONGLONG)((uint64_t)ft.StartNs + (uint64_t)ft.OffsetNs) != ns))
            FAIL("usbts_ns_to_frame(%lld): start %lld + offset %lld, microframe %u, bound %lld", (long long)ns,
                 (long long)ft.StartNs, (long long)ft.OffsetNs, (unsigned)ft.MicroFrameNumber, (long long)ft.BoundNs);
    }
}

static void op_advance(void)
{
    HANDLE h = pick(K_DEV);
    int d = dev_of(h);
    unsigned b = byte();
    ULONGLONG ns;
    switch (b % 8) {
    case 0: ns = byte(); break;                                 /* ns */
    case 1: ns = (ULONGLONG)u32() % 1000000; break;             /* up to 1 ms */
    case 2: case 3: ns = (ULONGLONG)u32() % 50000000; break;    /* up to 50 ms */
    case 4: case 5: ns = (ULONGLONG)u32() % 3000000000u; break; /* up to 3 s */
    case 6: ns = u64(); break;                                  /* anything, mostly refused */
    default: ns = (ULONGLONG)INT64_MAX / 4 + (b >> 7); break;   /* the limit, and one past it */
    }
    /* Sampling runs for all of a span while tracking: keep inputs fast. */
    if (d >= 0 && users_of(d) > 0 && ns <= (ULONGLONG)INT64_MAX / 4 && ns > 5000000000ull)
        ns %= 5000000000ull;
    int64_t before = d >= 0 ? now_of(d) : 0;
    pre("usbts_sim_advance");
    if (trace)
        fprintf(stderr, "        advance %llu ns\n", (unsigned long long)ns);
    BOOL ok = usbts_sim_advance(h, ns);
    /* At most 2^61 ns at a time, and the clock stops at 2^62 ns. */
    expect(ok, d < 0                                                   ? ERROR_INVALID_HANDLE
               : ns > (ULONGLONG)INT64_MAX / 4                         ? ERROR_INVALID_PARAMETER
               : (ULONGLONG)before + ns > (ULONGLONG)(INT64_MAX / 2) ? ERROR_INVALID_PARAMETER
                                                                       : 0);
    /* The documented aim: ns past where the previous advance aimed when
     * nothing has moved the clock since (a burst may overrun an aim), else ns
     * past the clock; never backwards. */
    if (ok) {
        int64_t base = before;
        if (devs[d].adv_end == before && devs[d].adv_aim > 0 && devs[d].adv_aim < before)
            base = devs[d].adv_aim;
        if (now_of(d) < base + (int64_t)ns || now_of(d) < before)
            FAIL("advanced %llu ns from aim %lld but the clock moved from %lld to %lld", (unsigned long long)ns,
                 (long long)base, (long long)before, (long long)now_of(d));
        devs[d].adv_aim = base + (int64_t)ns;
        devs[d].adv_end = now_of(d);
    }
}

/* Is this event one usbts_sim_inject must accept?  N in 1..60000, digits only. */
static bool valid_ms(const char *v)
{
    if (!*v)
        return false;
    long long x = 0;
    for (const char *p = v; *p; p++) {
        if (*p < '0' || *p > '9' || x > 1000000)
            return false;
        x = x * 10 + (*p - '0');
    }
    return x >= 1 && x <= 60000;
}

static void op_inject(void)
{
    HANDLE h = pick(K_DEV);
    int d = dev_of(h);
    unsigned b = byte();
    char ev[40];
    const char *event = ev;
    switch (b % 10) {
    case 0: case 1: snprintf(ev, sizeof ev, "reset"); break;
    case 2: case 3: snprintf(ev, sizeof ev, "halt_ms=%u", 1 + byte() % 40); break;
    case 4: snprintf(ev, sizeof ev, "halt_ms=%u", u32() % 70000); break;
    case 5: snprintf(ev, sizeof ev, "stall_ms=%u", u32() % (b & 16 ? 70000 : 3000)); break;
    case 6: snprintf(ev, sizeof ev, "unplug"); break;
    case 7: event = NULL; break;
    default: { /* bytes from the input, sometimes after a real prefix */
        static const char *const prefix[] = {"", "halt_ms=", "stall_ms=", "reset"};
        size_t n = (size_t)snprintf(ev, sizeof ev, "%s", prefix[(b >> 4) % 4]);
        unsigned len = byte() % 12;
        for (unsigned i = 0; i < len && n + 1 < sizeof ev; i++) {
            char c = (char)byte();
            if (c)
                ev[n++] = c;
        }
        ev[n] = '\0';
    }
    }
    bool reset = event && strcmp(event, "reset") == 0, unplug = event && strcmp(event, "unplug") == 0;
    bool halt = event && strncmp(event, "halt_ms=", 8) == 0 && valid_ms(event + 8);
    bool stall = event && strncmp(event, "stall_ms=", 9) == 0 && valid_ms(event + 9);
    pre("usbts_sim_inject");
    if (trace)
        fprintf(stderr, "        inject %s\n", event ? event : "(null)");
    BOOL ok = usbts_sim_inject(h, event);
    expect(ok, !event ? ERROR_INVALID_PARAMETER
               : d < 0 ? ERROR_INVALID_HANDLE
               : (reset || unplug || halt || stall) ? 0
                                                    : ERROR_INVALID_PARAMETER);
    if (!ok)
        return;
    int64_t now = now_of(d);
    if (reset) {
        devs[d].halt_end = 0; /* a reset restarts the counter, ending any halt */
        devs[d].quiet_since = now;
    } else if (halt) {
        devs[d].halt_end = now + 1000000LL * atoll(event + 8);
        devs[d].quiet_since = devs[d].halt_end;
    } else if (unplug) {
        devs[d].unplugged = true;
    }
}

static void op_sim_read_truth(void)
{
    HANDLE h = pick(K_DEV);
    int d = dev_of(h);
    unsigned b = byte();
    if (b & 1) {
        LONGLONG before, after;
        ULONG mfindex;
        bool null_out = b % 32 == 1;
        int64_t t0 = d >= 0 ? now_of(d) : 0;
        pre("usbts_sim_read");
        BOOL ok = usbts_sim_read(h, null_out ? NULL : &before, &mfindex, &after);
        expect(ok, null_out ? ERROR_INVALID_PARAMETER
                   : d < 0  ? ERROR_INVALID_HANDLE
                   : devs[d].unplugged ? ERROR_DEVICE_NOT_CONNECTED
                                       : 0);
        if (ok && (before < t0 || after < before || mfindex > 0x3FFF || now_of(d) < after))
            FAIL("sim read [%lld, %lld] MFINDEX %u, clock was %lld", (long long)before, (long long)after,
                 (unsigned)mfindex, (long long)t0);
    } else {
        LONGLONG ns;
        ULONG uf = byte() % 9;
        bool null_out = b % 32 == 0;
        pre("usbts_sim_truth");
        expect(usbts_sim_truth(h, u32(), uf, null_out ? NULL : &ns),
               (null_out || uf > 7) ? ERROR_INVALID_PARAMETER : d < 0 ? ERROR_INVALID_HANDLE : 0);
    }
}

static void op_frame_number(void)
{
    HANDLE ih = pick(K_IF);
    unsigned b = byte();
    bool null_out = b % 16 == 0;
    int i = if_of(ih), d = i >= 0 ? ifs[i].dev : -1;
    ULONG frame;
    LARGE_INTEGER ts;
    pre("WinUsb_GetCurrentFrameNumber");
    BOOL ok = WinUsb_GetCurrentFrameNumber(ih, null_out ? NULL : &frame, &ts);
    DWORD want = null_out ? ERROR_INVALID_PARAMETER
                 : i < 0  ? ERROR_INVALID_HANDLE
                 : devs[d].unplugged ? ERROR_DEVICE_NOT_CONNECTED
                                     : 0;
    /* One read that no count explains (after a reset) is refused as a
     * generic failure, "try again". */
    if (!ok && want == 0 && GetLastError() == ERROR_GEN_FAILURE)
        return;
    expect(ok, want);
    if (ok && ts.QuadPart * 100 > now_of(d) + 100)
        FAIL("the frame number's timestamp %lld lies after now %lld", (long long)ts.QuadPart * 100,
             (long long)now_of(d));
}

static void op_device_info(void)
{
    HANDLE h = pick(K_DEV);
    unsigned b = byte();
    int d = dev_of(h);
    bool null_out = b % 16 == 0;
    switch ((b >> 4) % 3) {
    case 0: {
        USBTS_DEVICE_INFO di;
        pre("usbts_get_device_info");
        BOOL ok = usbts_get_device_info(h, null_out ? NULL : &di);
        expect(ok, null_out ? ERROR_INVALID_PARAMETER : d < 0 ? ERROR_INVALID_HANDLE : 0);
        if (ok && (!di.IsSimulated || !di.IsVirtualClock || di.Speed != HighSpeed ||
                   strncmp(di.Spec, devs[d].spec, sizeof di.Spec - 1) != 0))
            FAIL("device info: simulated %d, virtual %d, speed %d, spec '%s'", di.IsSimulated, di.IsVirtualClock,
                 di.Speed, di.Spec);
        break;
    }
    case 1: {
        LONGLONG ns;
        pre("usbts_now_ns");
        BOOL ok = usbts_now_ns(h, null_out ? NULL : &ns);
        expect(ok, null_out ? ERROR_INVALID_PARAMETER : d < 0 ? ERROR_INVALID_HANDLE : 0);
        if (ok && ns < devs[d].last_now)
            FAIL("the virtual clock went back");
        break;
    }
    default: {
        HANDLE ih = pick(K_IF);
        int i = if_of(ih);
        ULONG type = byte() % 3, len = byte() % 3;
        UCHAR buf[2] = {0, 0};
        bool null_buf = b & 128;
        DWORD want = i < 0                        ? ERROR_INVALID_HANDLE
                     : devs[ifs[i].dev].unplugged ? ERROR_DEVICE_NOT_CONNECTED
                     : type != DEVICE_SPEED || null_buf ? ERROR_INVALID_PARAMETER
                     : len < 1                          ? ERROR_INSUFFICIENT_BUFFER
                                                        : 0;
        pre("WinUsb_QueryDeviceInformation");
        BOOL ok = WinUsb_QueryDeviceInformation(ih, type, &len, null_buf ? NULL : buf);
        expect(ok, want);
        if (ok && (len != 1 || buf[0] != HighSpeed))
            FAIL("DEVICE_SPEED: length %u, speed %u", (unsigned)len, buf[0]);
        if (want == ERROR_INSUFFICIENT_BUFFER && len != 1)
            FAIL("a too small buffer must be answered with the length needed");
        break;
    }
    }
}

/* ---- one input ------------------------------------------------------------------------- */

/* After closing everything: the library holds nothing. */
static void check_empty(void)
{
    op_name = "after closing every device";
    for (int i = 0; i < USBTS_MAX_DEVICES; i++)
        if (atomic_load(&usbts_dev_slots[i].handle))
            FAIL("device slot %d still live", i);
    for (int i = 0; i < USBTS_MAX_INTERFACES; i++)
        if (atomic_load(&usbts_if_slots[i].handle))
            FAIL("interface slot %d still live", i);
    for (int i = 0; i < USBTS_MAX_TRACKING; i++)
        if (atomic_load(&usbts_tr_slots[i].handle))
            FAIL("tracking slot %d still live", i);
    for (uint32_t i = 0; i < USBTS_MAX_TRACKERS; i++) {
        struct usbts_tracker_status st;
        usbts_tracker_status(i, &st);
        if (st.source[0] || st.users || st.sampling_thread)
            FAIL("tracker %u left behind (source '%s', %u users)", (unsigned)i, st.source, (unsigned)st.users);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    in_p = data;
    in_n = size;
    memset(devs, 0, sizeof devs);
    memset(ifs, 0, sizeof ifs);
    memset(trs, 0, sizeof trs);
    memset(stale, 0, sizeof stale);
    nstale = nissued = 0;
    for (step = 0; in_n && step < MAX_STEPS; step++) {
        switch (byte() % 16) {
        case 0: case 1: op_open(); break;
        case 2: op_close(); break;
        case 3: op_initialize(); break;
        case 4: op_free(); break;
        case 5: case 6: op_start(); break;
        case 7: op_stop(); break;
        case 8: case 9: op_query(); break;
        case 10:
            if (byte() & 1)
                op_frame_ns();
            else
                op_frame_clock();
            break;
        case 11: op_advance(); break;
        case 12: op_inject(); break;
        case 13: op_sim_read_truth(); break;
        case 14: op_frame_number(); break;
        default: op_device_info(); break;
        }
    }
    for (int d = 0; d < ND; d++) {
        if (devs[d].live) {
            pre("usbts_close (end of input)");
            expect(usbts_close(devs[d].h), 0);
            kill_dev(d);
        }
    }
    check_empty();
    return 0;
}
