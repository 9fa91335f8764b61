/* SPDX-License-Identifier: MIT */
/*
 * e2e_clock.c — run inside the QEMU guest (tests/e2e/run_clock.sh), where the
 * clocks may be changed: sets the kernel's TAI offset to 37 s with adjtimex,
 * steps CLOCK_REALTIME forward and back by an exact amount (ADJ_SETOFFSET,
 * as phc2sys steps a clock), and checks that frame times on each timeline
 * move by exactly that and nothing else: TAI − REALTIME becomes 37 s, a
 * REALTIME step moves the REALTIME and TAI answers by the step, and the
 * MONOTONIC and BOOTTIME answers do not move.  "Exactly" means within the
 * conversions' own uncertainty, which the bound carries; on the virtual clock
 * the MONOTONIC answer is bit-identical before and after.
 *
 * Prints "E2E PASS clock" when every check holds.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timex.h>
#include <time.h>

#include "usbtimesync/usbtimesync.h"

#define S_NS 1000000000LL
#define STEP_NS (1234 * S_NS + 567891234LL) /* not a whole second: a rounding slip would show */
#define TAI_OFFSET_S 37
#define NFRAMES 64

static int failures;

#define EXPECT(cond, ...)                                                                                          \
    do {                                                                                                           \
        if (!(cond)) {                                                                                             \
            printf("E2E FAIL: " __VA_ARGS__);                                                                      \
            printf("\n");                                                                                          \
            failures++;                                                                                            \
        }                                                                                                          \
    } while (0)

/* One frame's answers on the four timelines, and a bulk REALTIME array. */
struct snap {
    USBTS_FRAME_TIME t[4];
    LONGLONG bulk[NFRAMES], bulk_bound[NFRAMES];
    ULONG bulk_gen;
};

static const char *const names[] = {"MONOTONIC", "REALTIME", "TAI", "BOOTTIME"};

static void take(WINUSB_INTERFACE_HANDLE ih, HANDLE th, ULONG frame, const ULONG *frames, struct snap *s)
{
    for (ULONG c = 0; c < 4; c++)
        EXPECT(usbts_frame_to_clock_ns(ih, th, c, frame, 3, &s->t[c]), "frame_to_clock_ns(%s): %s", names[c],
               usbts_last_error_message());
    EXPECT(usbts_frames_to_clock_ns(ih, th, USBTS_CLOCK_REALTIME, NFRAMES, frames, NULL, s->bulk, s->bulk_bound,
                                    &s->bulk_gen),
           "frames_to_clock_ns: %s", usbts_last_error_message());
}

/* How far apart two answers may honestly be when the truth moved by `want`:
 * on the virtual clock only the two conversions differ (each bound minus the
 * MONOTONIC one); on the real clock the model may also be republished, so
 * the whole bounds count. */
static long long allowance(bool virt, const USBTS_FRAME_TIME *a, const USBTS_FRAME_TIME *b, const struct snap *sa,
                           const struct snap *sb)
{
    if (virt)
        return (a->BoundNs - sa->t[0].BoundNs) + (b->BoundNs - sb->t[0].BoundNs);
    return a->BoundNs + b->BoundNs;
}

static void compare(const char *what, bool virt, const struct snap *a, const struct snap *b, long long rt_step,
                    long long tai_step)
{
    long long want[4] = {0, rt_step, tai_step, 0};
    for (int c = 0; c < 4; c++) {
        long long moved = b->t[c].StartNs - a->t[c].StartNs;
        long long allow = allowance(virt, &a->t[c], &b->t[c], a, b);
        if (c == 0 && virt)
            allow = 0; /* the virtual clock did not move: bit-identical */
        EXPECT(llabs(moved - want[c]) <= allow, "%s: %s answer moved %lld ns, expected %lld +/- %lld", what,
               names[c], moved, want[c], allow);
        printf("E2E clock %s: %-9s moved %20lld ns (expected %20lld, off by %4lld, allowed %5lld)\n", what, names[c],
               moved, want[c], moved - want[c], allow);
    }
    int bad = 0;
    for (int i = 0; i < NFRAMES; i++) {
        long long moved = b->bulk[i] - a->bulk[i];
        long long allow = virt ? (b->bulk_bound[i] - b->t[0].BoundNs) + (a->bulk_bound[i] - a->t[0].BoundNs) + 4000
                               : a->bulk_bound[i] + b->bulk_bound[i];
        bad += llabs(moved - rt_step) > allow;
    }
    EXPECT(bad == 0, "%s: %d of %d bulk REALTIME answers did not move by %lld", what, bad, NFRAMES, rt_step);
    EXPECT(a->bulk_gen == b->bulk_gen, "%s: generation changed %u -> %u", what, (unsigned)a->bulk_gen,
           (unsigned)b->bulk_gen);
}

static int set_tai(int seconds)
{
    struct timex tx;
    memset(&tx, 0, sizeof tx);
    tx.modes = ADJ_TAI;
    tx.constant = seconds;
    if (adjtimex(&tx) < 0)
        return -1;
    memset(&tx, 0, sizeof tx);
    return adjtimex(&tx) < 0 ? -1 : tx.tai;
}

static int step_realtime(long long ns)
{
    struct timex tx;
    memset(&tx, 0, sizeof tx);
    tx.modes = ADJ_SETOFFSET | ADJ_NANO;
    long long sec = ns / S_NS, frac = ns % S_NS;
    if (frac < 0) {
        frac += S_NS;
        sec--;
    }
    tx.time.tv_sec = sec;
    tx.time.tv_usec = frac; /* ns with ADJ_NANO */
    return clock_adjtime(CLOCK_REALTIME, &tx) < 0 ? -1 : 0;
}

static void run(const char *spec)
{
    bool virt = strstr(spec, "virtual") != NULL;
    printf("E2E clock: %s\n", spec);
    HANDLE d = usbts_open(spec);
    WINUSB_INTERFACE_HANDLE ih;
    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION s = {NULL, FALSE};
    if (d == INVALID_HANDLE_VALUE || !WinUsb_Initialize(d, &ih) || !WinUsb_StartTrackingForTimeSync(ih, &s)) {
        EXPECT(0, "%s: cannot start tracking: %s", spec, usbts_last_error_message());
        return;
    }
    HANDLE th = s.TimeTrackingHandle;
    if (virt) {
        usbts_sim_advance(d, 2 * S_NS);
    } else {
        struct timespec ts = {1, 0};
        nanosleep(&ts, NULL);
    }
    LONGLONG now;
    USBTS_FRAME_TIME cur;
    usbts_now_ns(d, &now);
    usbts_ns_to_frame(ih, th, now, &cur);
    ULONG frame = cur.UsbFrameNumber - 20, frames[NFRAMES];
    for (int i = 0; i < NFRAMES; i++)
        frames[i] = cur.UsbFrameNumber - 200 + (ULONG)i * 3;

    struct snap a, b, c, e;
    EXPECT(set_tai(0) == 0, "adjtimex: cannot set the TAI offset to 0");
    take(ih, th, frame, frames, &a);
    long long tai_rt = a.t[2].StartNs - a.t[1].StartNs;
    EXPECT(llabs(tai_rt) <= allowance(virt, &a.t[1], &a.t[2], &a, &a), "TAI offset 0: TAI - REALTIME = %lld ns",
           tai_rt);

    int tai = set_tai(TAI_OFFSET_S);
    EXPECT(tai == TAI_OFFSET_S, "adjtimex(ADJ_TAI, 37) left the offset at %d", tai);
    take(ih, th, frame, frames, &b);
    tai_rt = b.t[2].StartNs - b.t[1].StartNs;
    EXPECT(llabs(tai_rt - TAI_OFFSET_S * S_NS) <= allowance(virt, &b.t[1], &b.t[2], &b, &b),
           "TAI offset 37 s: TAI - REALTIME = %lld ns", tai_rt);
    printf("E2E clock: TAI offset %d s: TAI - REALTIME answers differ by %lld ns\n", tai, tai_rt);
    compare("tai+37s", virt, &a, &b, 0, TAI_OFFSET_S * S_NS);

    EXPECT(step_realtime(STEP_NS) == 0, "clock_adjtime(ADJ_SETOFFSET) failed");
    take(ih, th, frame, frames, &c);
    compare("realtime+step", virt, &b, &c, STEP_NS, STEP_NS);

    EXPECT(step_realtime(-STEP_NS) == 0, "clock_adjtime(ADJ_SETOFFSET) back failed");
    take(ih, th, frame, frames, &e);
    compare("realtime-step", virt, &c, &e, -STEP_NS, -STEP_NS);
    set_tai(0);

    USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION st = {th};
    WinUsb_StopTrackingForTimeSync(ih, &st);
    WinUsb_Free(ih);
    usbts_close(d);
}

int main(void)
{
    run("sim:clock=virtual,seed=11,drift_ppm=90");
    run("sim:seed=12,drift_ppm=-40");
    if (failures) {
        printf("E2E FAILED clock: %d checks failed\n", failures);
        return 1;
    }
    printf("E2E PASS clock\n");
    return 0;
}
