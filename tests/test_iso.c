/* SPDX-License-Identifier: MIT */
/*
 * test_iso.c — isochronous packet times against the truth of a simulated
 * controller and a model of the xHCI driver's scheduling
 * (xhci_kernel_model.h, written from the kernel's rule, separately from the
 * library's inference).
 *
 * Each scenario streams URBs on a virtual clock: the application brackets its
 * submit call with clock reads; inside the bracket the "driver" reads MFINDEX
 * (a real bracketed read of the simulated register) and schedules the URB by
 * the kernel's rule; the URB is given back after its last packet's frame plus
 * an interrupt latency, and the application reaps it some time later.
 * Submission times vary (now and then a long stall inside the call, so the
 * bracket spans several microframes), streams run dry and restart, and one
 * scenario resets the controller mid-stream.
 *
 * Facts asserted, for every packet: its inferred (micro)frame equals the
 * kernel's choice, or the result is flagged ambiguous and the kernel's choice
 * lies inside the reported range; the start time of an exactly inferred
 * packet lies within its bound of the simulator's truth (>= 99%).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "usbtimesync/usbtimesync.h"
#include "xhci_kernel_model.h"

static uint64_t rng_state = 12345;

static double urand(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return ((double)(rng_state >> 11) + 0.5) / 9007199254740992.0;
}

static uint64_t exp_ns(double mean_ns)
{
    return (uint64_t)(-mean_ns * log(urand())) + 1;
}

struct scenario {
    const char *name;
    UCHAR speed;
    UCHAR binterval;
    UCHAR ist;
    bool cfc;
    int packets;       /* per submission; > 128: a split libusb transfer */
    int urbs;          /* submissions */
    int depth;         /* submissions kept in flight */
    double dry_prob;   /* chance the application stalls until the stream ran dry */
    double stall_prob; /* chance of a long stall inside the submit call */
    bool reset;        /* reset the controller half way */
    double drift_ppm;
};

struct totals {
    long packets, exact, ambiguous_ok, wrong, time_checked, time_outside, urbs_ambiguous, continued, restarted,
        new_gen, confirm_rejected, wrong_confirmed, split, refused;
};

struct flight {
    int64_t giveback_ns;
    USBTS_ISO_RESULT res;
    bool wrong;
};

static HANDLE dev;
static WINUSB_INTERFACE_HANDLE ih;
static HANDLE th;

static int64_t now_ns(void)
{
    LONGLONG t = 0;
    usbts_now_ns(dev, &t);
    return t;
}

static void advance(uint64_t ns)
{
    if (ns)
        usbts_sim_advance(dev, ns);
}

/* (kernel value - lo) mod m <= (hi - lo) mod m */
static bool in_mod_range(uint32_t v, uint32_t lo, uint32_t hi, uint32_t m)
{
    return ((v - lo) % m + m) % m <= ((hi - lo) % m + m) % m;
}

static uint32_t packet_value(bool fs, ULONG frame, ULONG uf)
{
    return fs ? (frame & 0x7FFu) : ((frame * 8u + uf) & 0x3FFFu);
}

/* The truth: host ns at which the kernel's value v (frames or microframes) starts. */
static int64_t truth_of(bool fs, long v)
{
    LONGLONG t = 0;
    if (fs)
        usbts_sim_truth(dev, (ULONG)(v & 0x7FF), 0, &t);
    else
        usbts_sim_truth(dev, (ULONG)((v >> 3) & 0x7FF), (ULONG)(v & 7), &t);
    return t;
}

/* URBs given back by t leave the ring; the application confirms each once
 * the host clock has passed its ConfirmFromNs. */
static struct flight pending[4096];
static int npending;

static void reap_until(struct flight *fl, int *nfl, int64_t t, struct totals *tot)
{
    int k = 0;
    for (int i = 0; i < *nfl; i++) {
        if (fl[i].giveback_ns <= t && npending < 4096)
            pending[npending++] = fl[i];
        else
            fl[k++] = fl[i];
    }
    *nfl = k;
    k = 0;
    for (int i = 0; i < npending; i++) {
        struct flight *f = &pending[i];
        if (f->res.ConfirmFromNs > t) {
            pending[k++] = *f;
            continue;
        }
        if (f->res.GenerationId == 0)
            continue; /* never placed */
        SetLastError(0);
        if (!usbts_iso_confirm(ih, th, &f->res)) {
            CHECK_EQ(GetLastError(), ERROR_GEN_FAILURE);
            tot->confirm_rejected++;
        } else if (f->wrong) {
            tot->wrong_confirmed++;
            if (getenv("ISO_DEBUG"))
                printf("  confirmed a wrong urb of gen %u at %lld (giveback %lld)\n", (unsigned)f->res.GenerationId,
                       (long long)t, (long long)f->giveback_ns);
        }
    }
    npending = k;
}

static void run(const struct scenario *sc, struct totals *all, uint64_t seed)
{
    char spec[128];
    snprintf(spec, sizeof spec, "sim:clock=virtual,seed=%llu,drift_ppm=%g", (unsigned long long)seed, sc->drift_ppm);
    dev = usbts_open(spec);
    CHECK(dev != INVALID_HANDLE_VALUE);
    CHECK(WinUsb_Initialize(dev, &ih));
    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION st = {NULL, FALSE};
    CHECK(WinUsb_StartTrackingForTimeSync(ih, &st));
    th = st.TimeTrackingHandle;
    advance(2500000000ull);

    bool fs = sc->speed == FullSpeed;
    struct km_endpoint kep;
    km_init(&kep, fs, sc->binterval, sc->ist, sc->cfc);
    USBTS_ISO_ENDPOINT ep = {sc->speed, sc->binterval, sc->ist, sc->cfc};
    USBTS_ISO_STREAM stream;
    CHECK(usbts_iso_stream_init(&stream, &ep));
    USBTS_ISO_PACKET *pk = calloc((size_t)sc->packets, sizeof *pk);
    struct flight fl[KM_MAX_URBS];
    int nfl = 0;
    npending = 0;
    struct totals tot;
    memset(&tot, 0, sizeof tot);
    long frame_len = fs ? 1000000 : 125000;

    for (int u = 0; u < sc->urbs; u++) {
        if (sc->reset && u == sc->urbs / 2) {
            CHECK(usbts_sim_inject(dev, "reset"));
            km_flush(&kep); /* the driver kills every URB: the application reaps them with errors */
            nfl = 0;
        }
        /* The application: waits for room, reaping what was given back. */
        if (nfl > 0 && (urand() < sc->dry_prob || (sc->dry_prob > 0 && u % 12 == 11))) {
            int64_t last = 0;
            for (int i = 0; i < nfl; i++)
                last = fl[i].giveback_ns > last ? fl[i].giveback_ns : last;
            int64_t t = last + (int64_t)exp_ns(3e6);
            advance((uint64_t)(t - now_ns()));
            reap_until(fl, &nfl, now_ns(), &tot);
        }
        while (nfl >= sc->depth) {
            int64_t first = fl[0].giveback_ns;
            for (int i = 1; i < nfl; i++)
                first = fl[i].giveback_ns < first ? fl[i].giveback_ns : first;
            int64_t t = first + (int64_t)exp_ns(100e3);
            if (t > now_ns())
                advance((uint64_t)(t - now_ns()));
            reap_until(fl, &nfl, now_ns(), &tot);
        }

        /* The submit call, bracketed.  A split transfer is several URBs
         * submitted back to back inside one call. */
        USBTS_ISO_SUBMISSION sub;
        memset(&sub, 0, sizeof sub);
        sub.BeforeNs = now_ns();
        sub.Packets = (ULONG)sc->packets;
        sub.Outstanding = (ULONG)nfl;
        int nurb = (sc->packets + 127) / 128;
        long starts[16];
        int64_t giveback = 0;
        for (int j = 0; j < nurb; j++) {
            advance(urand() < sc->stall_prob ? (uint64_t)(300e3 + urand() * 4e6) : exp_ns(20e3));
            LONGLONG b, a;
            ULONG mfindex;
            CHECK(usbts_sim_read(dev, &b, &mfindex, &a));
            int n = sc->packets - j * 128 > 128 ? 128 : sc->packets - j * 128;
            starts[j] = km_submit(&kep, mfindex, a, n);
            long last = starts[j] + (long)(n - 1) * kep.interval;
            giveback = truth_of(fs, last) + (fs ? 1000000 : 125000) * 0 + frame_len + (int64_t)exp_ns(300e3);
            if (giveback < a)
                giveback = a + (int64_t)exp_ns(100e3); /* scheduled in the past: given back at once */
            km_queued(&kep, giveback);
        }
        advance(urand() < sc->stall_prob ? (uint64_t)(300e3 + urand() * 4e6) : exp_ns(20e3));
        sub.AfterNs = now_ns();

        USBTS_ISO_RESULT res;
        SetLastError(0);
        if (!usbts_iso_submitted(ih, th, &stream, &sub, &res, pk)) {
            /* Only ever: continuity lost across a reset, said so. */
            CHECK_EQ(GetLastError(), ERROR_GEN_FAILURE);
            CHECK(sc->reset && sc->cfc);
            tot.refused++;
            if (nfl < KM_MAX_URBS)
                fl[nfl++] = (struct flight){giveback, {0, 0, 0, 0, 0, 0, 0, 0}, false};
            continue;
        }
        CHECK_EQ(res.Urbs, (ULONG)nurb);
        CHECK_EQ(res.KernelModulus, fs ? 2048u : 16384u);
        tot.urbs_ambiguous += (res.Flags & USBTS_ISO_AMBIGUOUS) != 0;
        tot.continued += (res.Flags & USBTS_ISO_CONTINUED) != 0;
        tot.restarted += (res.Flags & USBTS_ISO_RESTARTED) != 0;
        tot.new_gen += (res.Flags & USBTS_ISO_NEW_GENERATION) != 0;
        tot.split += (res.Flags & USBTS_ISO_SPLIT) != 0;
        CHECK_EQ((res.Flags & USBTS_ISO_SPLIT) != 0, nurb > 1);
        CHECK((res.Flags & (USBTS_ISO_CONTINUED | USBTS_ISO_RESTARTED)) != 0);

        bool wrong = false;
        uint32_t m = res.KernelModulus;
        uint32_t k0 = (uint32_t)(starts[0] % (long)m);
        if (res.Flags & USBTS_ISO_AMBIGUOUS)
            wrong |= !in_mod_range(k0, res.KernelStartEarliest, res.KernelStartLatest, m);
        else
            wrong |= res.KernelStartFrame != k0;
        for (int i = 0; i < sc->packets; i++) {
            int j = i / 128;
            long v = starts[j] + (long)(i % 128) * kep.interval;
            uint32_t kv = (uint32_t)(v % (long)m);
            const USBTS_ISO_PACKET *p = &pk[i];
            wrong |= p->Urb != (ULONG)j;
            uint32_t got = packet_value(fs, p->UsbFrameNumber, p->MicroFrameNumber);
            uint32_t lo = packet_value(fs, p->EarliestFrame, p->EarliestMicroFrame);
            uint32_t hi = packet_value(fs, p->LatestFrame, p->LatestMicroFrame);
            tot.packets++;
            if (!p->Ambiguous) {
                if (got != kv || lo != got || hi != got) {
                    wrong = true;
                    continue;
                }
                tot.exact++;
                /* time: within its bound of the truth */
                int64_t truth = truth_of(fs, v);
                tot.time_checked++;
                tot.time_outside += llabs(p->StartNs - truth) > p->BoundNs;
            } else {
                if (!in_mod_range(kv, lo, hi, m) || !(res.Flags & USBTS_ISO_AMBIGUOUS)) {
                    wrong = true;
                    continue;
                }
                tot.ambiguous_ok++;
                int64_t truth = truth_of(fs, v);
                if (truth < p->EarliestNs - p->BoundNs || truth > p->LatestNs + p->BoundNs)
                    wrong = true;
            }
        }
        tot.wrong += wrong;
        if (wrong && getenv("ISO_DEBUG"))
            printf("  wrong urb %d gen %u flags 0x%x start %ld got %u [%u,%u] outstanding %u\n", u,
                   (unsigned)res.GenerationId, (unsigned)res.Flags, starts[0], (unsigned)res.KernelStartFrame,
                   (unsigned)res.KernelStartEarliest, (unsigned)res.KernelStartLatest, (unsigned)sub.Outstanding);
        if (nfl < KM_MAX_URBS)
            fl[nfl++] = (struct flight){giveback, res, wrong};
    }
    /* Reap the rest. */
    for (int i = 0; i < nfl; i++)
        if (fl[i].giveback_ns > now_ns())
            advance((uint64_t)(fl[i].giveback_ns - now_ns()));
    advance(100000000ull);
    reap_until(fl, &nfl, now_ns(), &tot);
    CHECK_EQ(npending, 0);
    CHECK_EQ(nfl, 0);

    printf("%-34s packets %6ld exact %6ld ambiguous-ok %5ld | urbs %3d ambiguous %3ld continued %3ld restarted %3ld "
           "newgen %ld split %ld refused %ld | wrong %ld (caught by confirm %ld, uncaught %ld) | time outside bound %ld/%ld\n",
           sc->name, tot.packets, tot.exact, tot.ambiguous_ok, sc->urbs, tot.urbs_ambiguous, tot.continued,
           tot.restarted, tot.new_gen, tot.split, tot.refused, tot.wrong, tot.confirm_rejected, tot.wrong_confirmed,
           tot.time_outside, tot.time_checked);
    /* Every wrong answer is one the library could not have known about (a
     * reset it had not seen yet), and confirm caught it at reap time. */
    CHECK_MSG(tot.wrong_confirmed == 0, "%s: %ld URBs wrong and confirmed", sc->name, tot.wrong_confirmed);
    if (!sc->reset) {
        CHECK_MSG(tot.wrong == 0, "%s: %ld URBs wrong", sc->name, tot.wrong);
        CHECK_MSG(tot.confirm_rejected == 0, "%s: confirm rejected %ld", sc->name, tot.confirm_rejected);
    } else {
        CHECK_MSG(tot.new_gen >= 1, "%s: the reset restarts the stream with a new generation", sc->name);
    }
    if (sc->cfc && sc->depth > 1)
        CHECK_MSG(tot.continued > sc->urbs / 3, "%s: a CFC stream continues (%ld)", sc->name, tot.continued);
    if (!sc->cfc)
        CHECK_MSG(tot.continued == 0, "%s: without CFC every URB restarts", sc->name);
    if (sc->dry_prob > 0 && sc->cfc)
        CHECK_MSG(tot.restarted > 1, "%s: a stream that ran dry restarts (%ld)", sc->name, tot.restarted);
    /* Without CFC most packets are placed exactly: ambiguity comes from long
     * stalls in the submit call.  (A CFC chain keeps the ambiguity of the
     * start it continues, so there it depends on how streams happen to
     * start.) */
    if (!sc->cfc)
        CHECK_MSG(tot.exact * 10 >= tot.packets * 6, "%s: %ld of %ld packets exact", sc->name, tot.exact, tot.packets);
    CHECK_MSG(tot.time_outside * 100 <= tot.time_checked, "%s: %ld of %ld start times outside their bound",
              sc->name, tot.time_outside, tot.time_checked);

    all->packets += tot.packets;
    all->exact += tot.exact;
    all->ambiguous_ok += tot.ambiguous_ok;
    all->wrong += tot.wrong;
    all->time_checked += tot.time_checked;
    all->time_outside += tot.time_outside;
    free(pk);
    USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION stop = {th};
    CHECK(WinUsb_StopTrackingForTimeSync(ih, &stop));
    CHECK(WinUsb_Free(ih));
    CHECK(usbts_close(dev));
}

static void arguments(void)
{
    HANDLE d = usbts_open("sim:clock=virtual,seed=3");
    WINUSB_INTERFACE_HANDLE i;
    CHECK(WinUsb_Initialize(d, &i));
    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION st = {NULL, FALSE};
    CHECK(WinUsb_StartTrackingForTimeSync(i, &st));
    CHECK(usbts_sim_advance(d, 500000000ull));
    USBTS_ISO_STREAM s, before;
    USBTS_ISO_ENDPOINT ep = {FullSpeed, 1, 0xF, FALSE};
    CHECK_FAILS_WITH(usbts_iso_stream_init(NULL, &ep), ERROR_INVALID_PARAMETER);
    USBTS_ISO_ENDPOINT bad[] = {{LowSpeed, 1, 0, 0}, {FullSpeed, 0, 0, 0}, {HighSpeed, 17, 0, 0}, {FullSpeed, 1, 16, 0},
                                {7, 1, 0, 0}};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
        CHECK_FAILS_WITH(usbts_iso_stream_init(&s, &bad[k]), ERROR_INVALID_PARAMETER);
    CHECK_SUCCEEDS(usbts_iso_stream_init(&s, &ep));
    LONGLONG now;
    CHECK(usbts_now_ns(d, &now));
    USBTS_ISO_SUBMISSION sub = {now, now + 1000, 8, 0};
    USBTS_ISO_RESULT r;
    USBTS_ISO_PACKET p[8];
    CHECK_SUCCEEDS(usbts_iso_submitted(i, st.TimeTrackingHandle, &s, &sub, &r, p));
    CHECK_SUCCEEDS(usbts_iso_submitted(i, st.TimeTrackingHandle, &s, &sub, &r, NULL));
    before = s;
    USBTS_ISO_SUBMISSION bads[] = {{now, now - 1, 8, 0}, {now, now + 2000000000, 8, 0}, {now, now + 1, 0, 0},
                                   {now, now + 1, (1u << 20) + 1, 0}, {now - (1ll << 62), now, 8, 0}};
    for (size_t k = 0; k < sizeof bads / sizeof bads[0]; k++) {
        CHECK_FAILS_WITH(usbts_iso_submitted(i, st.TimeTrackingHandle, &s, &bads[k], &r, p), ERROR_INVALID_PARAMETER);
        CHECK(memcmp(&s, &before, sizeof s) == 0);
    }
    CHECK_FAILS_WITH(usbts_iso_submitted(i, st.TimeTrackingHandle, NULL, &sub, &r, p), ERROR_INVALID_PARAMETER);
    CHECK_FAILS_WITH(usbts_iso_submitted(i, st.TimeTrackingHandle, &s, &sub, NULL, p), ERROR_INVALID_PARAMETER);
    CHECK_FAILS_WITH(usbts_iso_submitted(NULL, st.TimeTrackingHandle, &s, &sub, &r, p), ERROR_INVALID_HANDLE);
    CHECK_FAILS_WITH(usbts_iso_submitted(i, (HANDLE)(intptr_t)0x1234, &s, &sub, &r, p), ERROR_INVALID_HANDLE);
    USBTS_ISO_STREAM zero;
    memset(&zero, 0, sizeof zero);
    CHECK_FAILS_WITH(usbts_iso_submitted(i, st.TimeTrackingHandle, &zero, &sub, &r, p), ERROR_INVALID_PARAMETER);
    CHECK(memcmp(&s, &before, sizeof s) == 0);
    CHECK_FAILS_WITH(usbts_iso_confirm(i, st.TimeTrackingHandle, &r), ERROR_TIMEOUT);
    CHECK(usbts_sim_advance(d, 101000000ull));
    CHECK_SUCCEEDS(usbts_iso_confirm(i, st.TimeTrackingHandle, &r));
    CHECK(usbts_sim_inject(d, "reset"));
    CHECK(usbts_sim_advance(d, 100000000ull));
    CHECK_FAILS_WITH(usbts_iso_confirm(i, st.TimeTrackingHandle, &r), ERROR_GEN_FAILURE);
    CHECK_FAILS_WITH(usbts_iso_confirm(i, st.TimeTrackingHandle, NULL), ERROR_INVALID_PARAMETER);
    /* A simulated controller has no capability registers. */
    USBTS_CONTROLLER_CAPS caps;
    CHECK_FAILS_WITH(usbts_get_controller_caps(d, &caps), ERROR_NOT_SUPPORTED);
    CHECK_FAILS_WITH(usbts_get_controller_caps(d, NULL), ERROR_INVALID_PARAMETER);
    CHECK_FAILS_WITH(usbts_get_controller_caps(NULL, &caps), ERROR_INVALID_HANDLE);
    USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION stop = {st.TimeTrackingHandle};
    CHECK(WinUsb_StopTrackingForTimeSync(i, &stop));
    CHECK_FAILS_WITH(usbts_iso_submitted(i, st.TimeTrackingHandle, &s, &sub, &r, p), ERROR_INVALID_HANDLE);
    CHECK(WinUsb_Free(i));
    CHECK(usbts_close(d));
}

int main(void)
{
    arguments();
    static const struct scenario sc[] = {
        /* full speed, qemu-xhci's facts: IST 7 frames, no CFC */
        {"FS bInterval 1 IST=7fr", FullSpeed, 1, 0xF, false, 8, 120, 2, 0.05, 0.08, false, 120},
        {"FS bInterval 2 IST=7fr", FullSpeed, 2, 0xF, false, 8, 80, 2, 0.05, 0.08, false, -250},
        {"FS bInterval 3 IST=7fr", FullSpeed, 3, 0xF, false, 8, 60, 2, 0.05, 0.08, false, 480},
        {"FS bInterval 4 IST=7fr", FullSpeed, 4, 0xF, false, 4, 60, 2, 0.05, 0.08, false, -480},
        {"FS bInterval 5 IST=7fr", FullSpeed, 5, 0xF, false, 4, 50, 2, 0.05, 0.08, false, 0},
        {"FS bInterval 6 IST=7fr", FullSpeed, 6, 0xF, false, 2, 50, 2, 0.05, 0.08, false, 33},
        /* full speed, a CFC controller with a threshold in microframes */
        {"FS bInterval 1 IST=1uf CFC", FullSpeed, 1, 0x1, true, 8, 120, 3, 0.08, 0.08, false, 200},
        {"FS bInterval 2 IST=4uf CFC", FullSpeed, 2, 0x4, true, 8, 80, 3, 0.08, 0.08, false, -100},
        {"FS bInterval 3 IST=1fr CFC", FullSpeed, 3, 0x9, true, 8, 60, 3, 0.08, 0.08, false, 400},
        {"FS bInterval 4 IST=1uf CFC", FullSpeed, 4, 0x1, true, 4, 60, 3, 0.08, 0.08, false, -400},
        {"FS bInterval 5 IST=2fr CFC", FullSpeed, 5, 0xA, true, 4, 50, 3, 0.08, 0.08, false, 10},
        {"FS bInterval 6 IST=0 CFC", FullSpeed, 6, 0x0, true, 2, 50, 3, 0.08, 0.08, false, -10},
        /* high speed, 1..8 microframes and more */
        {"HS bInterval 1 IST=7fr", HighSpeed, 1, 0xF, false, 32, 100, 2, 0.05, 0.08, false, 150},
        {"HS bInterval 2 IST=7fr", HighSpeed, 2, 0xF, false, 32, 80, 2, 0.05, 0.08, false, -150},
        {"HS bInterval 3 IST=4uf", HighSpeed, 3, 0x4, false, 32, 80, 2, 0.05, 0.08, false, 300},
        {"HS bInterval 4 IST=1fr", HighSpeed, 4, 0x9, false, 16, 80, 2, 0.05, 0.08, false, -300},
        {"HS bInterval 5 IST=2uf", HighSpeed, 5, 0x2, false, 8, 60, 2, 0.05, 0.08, false, 0},
        {"HS bInterval 7 IST=7fr", HighSpeed, 7, 0xF, false, 4, 50, 2, 0.05, 0.08, false, 60},
        {"HS bInterval 1 IST=1uf CFC", HighSpeed, 1, 0x1, true, 32, 120, 3, 0.08, 0.08, false, 250},
        {"HS bInterval 2 IST=4uf CFC", HighSpeed, 2, 0x4, true, 32, 100, 3, 0.08, 0.08, false, -250},
        {"HS bInterval 3 IST=1fr CFC", HighSpeed, 3, 0x9, true, 16, 80, 3, 0.08, 0.08, false, 500},
        {"HS bInterval 4 IST=7fr CFC", HighSpeed, 4, 0xF, true, 16, 80, 3, 0.08, 0.08, false, -500},
        {"HS bInterval 6 IST=2uf CFC", HighSpeed, 6, 0x2, true, 8, 60, 3, 0.08, 0.08, false, 77},
        {"HS bInterval 10 IST=7fr CFC", HighSpeed, 10, 0xF, true, 2, 40, 3, 0.08, 0.08, false, -77},
        /* libusb splitting a transfer into URBs of 128 packets */
        {"FS split 300 packets", FullSpeed, 1, 0xF, false, 300, 30, 2, 0.05, 0.05, false, 90},
        {"FS split 300 packets CFC", FullSpeed, 1, 0x1, true, 300, 30, 2, 0.1, 0.05, false, -90},
        {"HS split 512 packets CFC", HighSpeed, 1, 0x4, true, 512, 30, 2, 0.1, 0.05, false, 45},
        /* a controller reset mid-stream */
        {"FS reset mid-stream", FullSpeed, 1, 0xF, false, 8, 120, 2, 0.05, 0.05, true, 20},
        {"FS reset mid-stream CFC", FullSpeed, 1, 0x1, true, 8, 120, 3, 0.05, 0.05, true, -20},
        {"HS reset mid-stream CFC", HighSpeed, 2, 0x4, true, 32, 120, 3, 0.05, 0.05, true, 200},
    };
    struct totals all;
    memset(&all, 0, sizeof all);
    for (size_t k = 0; k < sizeof sc / sizeof sc[0]; k++)
        run(&sc[k], &all, 100 + k);
    printf("all: %ld packets, %ld exact, %ld ambiguous with the truth in range; %ld of %ld start times outside "
           "their bound\n",
           all.packets, all.exact, all.ambiguous_ok, all.time_outside, all.time_checked);
    return test_finish();
}
