/* SPDX-License-Identifier: MIT */
/*
 * usbtimesync query — when did a given (micro)frame start?
 *
 * It asks through the native nanosecond API (usbts_frame_to_ns), not through
 * WinUsb_GetCurrentFrameNumberAndQpc: there InputFrameNumber 0 with
 * InputMicroFrameNumber 0 means "no frame asked" (as on Windows), while here
 * every frame, 0 included, is a question.
 */
#include <string.h>
#include <time.h>

#include "cli.h"

/* An answer whose bound reaches a whole frame cannot tell the frame asked
 * from its neighbours: the tracker cannot answer for it. */
#define MAX_BOUND_NS 1000000LL

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s query SPEC FRAME [MICROFRAME] [--clock CLOCK] [--json]\n"
            "\n"
            "Tracks the device's controller for a quarter second, then answers: the QPC (100 ns ticks)\n"
            "and the CLOCK_MONOTONIC nanoseconds at which that microframe started, with the\n"
            "error bound.  FRAME is a 32-bit USB frame number (0 included), read as the one nearest\n"
            "the current frame, or 'now' for the current frame; MICROFRAME is 0..7 (default 0).\n"
            "\n"
            "Exit status 1, with the reason, when the tracker cannot answer: the frame would have\n"
            "started before the host clock's origin (a negative host time), or so far from now\n"
            "that the error bound reaches a whole frame (1 ms).\n"
            "\n"
            "  --clock CLOCK   also give the start on another host timeline: " CLI_CLOCK_CHOICES "\n"
            "                  (default monotonic).  realtime and tai are the timelines ptp4l/phc2sys\n"
            "                  or chrony keep in step across machines; the bound then includes the\n"
            "                  conversion's uncertainty, not the PTP or NTP servo's own error.\n"
            "  --json          one JSON object; \"clock\" names the timeline of clock_start_ns\n",
            cli_prog);
}

/* The QPC tick nearest a non-negative host time, as the WinUSB calls round. */
static long long ns_to_qpc(long long ns)
{
    return (ns + 50) / 100;
}

static int answer(HANDLE dev, WINUSB_INTERFACE_HANDLE ih, HANDLE th, bool now, unsigned long long frame,
                  unsigned long long uf, ULONG clock, bool json)
{
    /* A quarter second of tracking fits the rate, so frames far from now get
     * a tight bound too. */
    USBTS_DEVICE_INFO di;
    usbts_get_device_info(dev, &di);
    if (di.IsVirtualClock) {
        usbts_sim_advance(dev, 250000000ull);
    } else {
        struct timespec ts = {0, 250000000};
        nanosleep(&ts, NULL);
    }
    /* The current frame: the WinUSB call's 0/0 input asks for nothing else. */
    USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;
    memset(&q, 0, sizeof q);
    q.TimeTrackingHandle = th;
    if (!WinUsb_GetCurrentFrameNumberAndQpc(ih, &q))
        return cli_library_error("query", "WinUsb_GetCurrentFrameNumberAndQpc");
    if (now)
        frame = q.CurrentUSBFrameNumber;
    USBTS_FRAME_TIME ft;
    if (!usbts_frame_to_ns(ih, th, (ULONG)frame, (ULONG)uf, &ft))
        return cli_library_error("query", "usbts_frame_to_ns");
    if (ft.StartNs < 0) {
        fprintf(stderr,
                "%s query: frame %llu microframe %llu would have started %.3f s before the host clock's origin "
                "(0 ns: boot for CLOCK_MONOTONIC, the start of a virtual clock): no host time names it; ask for a "
                "frame nearer %u, the current one\n",
                cli_prog, frame, uf, (double)-ft.StartNs / 1e9, (unsigned)q.CurrentUSBFrameNumber);
        return EXIT_RUNTIME;
    }
    if (ft.BoundNs >= MAX_BOUND_NS) {
        fprintf(stderr,
                "%s query: frame %llu microframe %llu lies %.1f s from now, too far to answer: the error bound there "
                "(+/- %.3f ms) reaches a whole frame; ask for a frame nearer %u, the current one\n",
                cli_prog, frame, uf, (double)(ft.StartNs - (long long)q.CurrentQueryPerformanceCounter.QuadPart * 100) / 1e9,
                (double)ft.BoundNs / 1e6, (unsigned)q.CurrentUSBFrameNumber);
        return EXIT_RUNTIME;
    }
    /* The same frame on the timeline asked for, its conversion measured now. */
    USBTS_FRAME_TIME ct;
    if (!usbts_frame_to_clock_ns(ih, th, clock, (ULONG)frame, (ULONG)uf, &ct))
        return cli_library_error("query", "usbts_frame_to_clock_ns");
    /* As PredictedAccuracyInMicroSeconds: whole µs, the tick's rounding
     * included, at least 1. */
    long long acc_us = (ft.BoundNs + 50 + 999) / 1000;
    if (acc_us < 1)
        acc_us = 1;
    if (json) {
        printf("{\"usb_frame\": %llu, \"microframe\": %llu, \"qpc\": %lld, \"start_ns\": %lld, \"bound_ns\": %lld, "
               "\"accuracy_us\": %lld, \"generation\": %u, \"current_usb_frame\": %u, \"clock\": \"%s\", "
               "\"clock_start_ns\": %lld, \"clock_bound_ns\": %lld}\n",
               frame, uf, ns_to_qpc(ft.StartNs), (long long)ft.StartNs, (long long)ft.BoundNs, acc_us,
               (unsigned)ft.GenerationId, (unsigned)q.CurrentUSBFrameNumber, cli_clock_name(clock),
               (long long)ct.StartNs, (long long)ct.BoundNs);
    } else {
        printf("frame %llu microframe %llu started at QPC %lld (CLOCK_MONOTONIC %lld ns) +/- %lld us\n"
               "  bound %lld ns, generation %u, current frame %u\n",
               frame, uf, ns_to_qpc(ft.StartNs), (long long)ft.StartNs, acc_us, (long long)ft.BoundNs,
               (unsigned)ft.GenerationId, (unsigned)q.CurrentUSBFrameNumber);
        if (clock != USBTS_CLOCK_MONOTONIC) {
            char cal[64];
            cli_clock_calendar(clock, ct.StartNs, cal, sizeof cal);
            printf("  on CLOCK_%s: %lld ns%s%s%s +/- %lld ns (conversion measured now)\n",
                   clock == USBTS_CLOCK_REALTIME ? "REALTIME" : clock == USBTS_CLOCK_TAI ? "TAI" : "BOOTTIME",
                   (long long)ct.StartNs, cal[0] ? " (" : "", cal, cal[0] ? ")" : "", (long long)ct.BoundNs);
        }
    }
    return 0;
}

int cmd_query(int argc, char **argv)
{
    const char *pos[3];
    int npos = 0;
    bool json = false;
    ULONG clock = USBTS_CLOCK_MONOTONIC;
    for (int i = 0; i < argc; i++) {
        const char *v;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--json")) {
            json = true;
        } else if (!strcmp(argv[i], "--clock")) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_clock(v, &clock))
                return cli_usage_error("query", usage, "--clock needs one of " CLI_CLOCK_CHOICES);
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            return cli_usage_error("query", usage, "unknown option '%s'", argv[i]);
        } else if (npos == 3) {
            return cli_usage_error("query", usage, "unexpected argument '%s'", argv[i]);
        } else {
            pos[npos++] = argv[i];
        }
    }
    if (npos < 2)
        return cli_usage_error("query", usage, "needs a SPEC and a FRAME");
    unsigned long long frame = 0, uf = 0;
    bool now = !strcmp(pos[1], "now");
    if (!now && !cli_parse_ulong(pos[1], 0xFFFFFFFFull, &frame))
        return cli_usage_error("query", usage, "FRAME '%s' is not a number from 0 to 4294967295, or 'now'", pos[1]);
    if (npos == 3 && !cli_parse_ulong(pos[2], 7, &uf))
        return cli_usage_error("query", usage, "MICROFRAME '%s' is not 0..7", pos[2]);

    HANDLE dev = usbts_open(pos[0]);
    if (dev == INVALID_HANDLE_VALUE)
        return cli_library_error("query", pos[0]);
    int rc;
    WINUSB_INTERFACE_HANDLE ih;
    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION s = {NULL, FALSE};
    if (!WinUsb_Initialize(dev, &ih)) {
        rc = cli_library_error("query", "WinUsb_Initialize");
    } else {
        if (!WinUsb_StartTrackingForTimeSync(ih, &s)) {
            rc = cli_library_error("query", "WinUsb_StartTrackingForTimeSync");
        } else {
            rc = answer(dev, ih, s.TimeTrackingHandle, now, frame, uf, clock, json);
            USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION p = {s.TimeTrackingHandle};
            WinUsb_StopTrackingForTimeSync(ih, &p);
        }
        WinUsb_Free(ih);
    }
    usbts_close(dev);
    return rc;
}
