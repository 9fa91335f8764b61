/* SPDX-License-Identifier: MIT */
/*
 * usbtimesync track — follow a controller's frame clock, a line per interval.
 */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "svg.h"

#define SUBSAMPLES 20      /* queries per printed line, for the plot */
#define MAX_SAMPLES 200000 /* fewer per line on very long runs */
#define MAX_EVENTS 8

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s track [SPEC] [--duration S] [--interval MS] [--clock CLOCK] [--json]\n"
            "          [--svg FILE] [--sim-event S:EVENT]\n"
            "\n"
            "Starts time tracking on the device's controller and prints, every interval: elapsed\n"
            "seconds, generation, USB frame, microframe, the QPC (100 ns ticks) at the start of\n"
            "the current microframe, the predicted accuracy in microseconds, and on a simulated\n"
            "controller the true error of that microframe's start time in microseconds.\n"
            "\n"
            "  SPEC            device to track (default: sim)\n"
            "  --duration S    how long to track, in seconds (default 5); the last line comes\n"
            "                  at S even when S is not a whole number of intervals\n"
            "  --interval MS   time between lines, in milliseconds (default 500)\n"
            "  --clock CLOCK   also give each start time on " CLI_CLOCK_CHOICES "\n"
            "                  (default monotonic); the conversion is measured at each query\n"
            "  --json          one JSON object per line instead of a table; \"clock\" names the\n"
            "                  timeline of clock_start_ns\n"
            "  --svg FILE      also plot the run: the nanosecond bound (and on a simulated\n"
            "                  controller the true error) of every query, including the %d\n"
            "                  made between two printed lines, so a step, a stall or a new\n"
            "                  generation shows where it happened; a log axis when the values\n"
            "                  span decades; on a real controller also the frame-clock rate.\n"
            "                  FILE is checked before tracking starts (not writable: exit 1)\n"
            "  --sim-event S:EVENT\n"
            "                  simulated controller: inject EVENT (reset, halt_ms=N, stall_ms=N)\n"
            "                  S seconds after the start; up to %d of them\n"
            "\n"
            "SIGINT (Ctrl-C) or SIGTERM ends tracking early: the lines so far and the plot of\n"
            "them are written whole, and the exit status is 0.\n",
            cli_prog, SUBSAMPLES - 1, MAX_EVENTS);
}

struct row {
    double t_s, err_us, acc_us, rate_ppm;
};

/* One query, printed or not: what the plot draws. */
struct sample {
    double t_s, err_ns, bound_ns;
    unsigned generation;
    bool printed;
};

struct event {
    double at_s;
    const char *what;
    bool done;
};

/* The plot: every query's nanosecond bound (and true error on a simulator)
 * against time, the printed lines picked out, a line where each new
 * generation began. */
static bool plot(FILE *f, const char *spec, const struct sample *sm, int ns, const struct row *rows, int nr, bool sim)
{
    if (!f)
        return false;
    size_t cap = (size_t)(ns > nr ? ns : nr) + 1;
    double *t = malloc(sizeof(double) * cap), *err = malloc(sizeof(double) * cap), *bd = malloc(sizeof(double) * cap),
           *pt = malloc(sizeof(double) * cap), *pb = malloc(sizeof(double) * cap),
           *rt = malloc(sizeof(double) * cap), *rr = malloc(sizeof(double) * cap);
    struct svg_vline *gl = malloc(sizeof(struct svg_vline) * cap);
    char(*glabel)[32] = malloc(32 * cap);
    bool ok = false;
    if (!t || !err || !bd || !pt || !pb || !rt || !rr || !gl || !glabel)
        goto out;
    int np = 0, ng = 0;
    for (int i = 0; i < ns; i++) {
        t[i] = sm[i].t_s;
        err[i] = fabs(sm[i].err_ns);
        bd[i] = sm[i].bound_ns;
        if (sm[i].printed) {
            pt[np] = sm[i].t_s;
            pb[np++] = sm[i].bound_ns;
        }
        if (i > 0 && sm[i].generation != sm[i - 1].generation) {
            snprintf(glabel[ng], sizeof glabel[ng], "generation %u", sm[i].generation);
            gl[ng].x = sm[i].t_s;
            gl[ng].label = glabel[ng];
            ng++;
        }
    }
    for (int i = 0; i < nr; i++) {
        rt[i] = rows[i].t_s;
        rr[i] = rows[i].rate_ppm;
    }
    char title[200];
    snprintf(title, sizeof title, "usbtimesync track %.150s", spec);
    if (sim) {
        struct svg_series s[3] = {{"|true error| (ns)", "#d62728", t, err, ns, false, false},
                                  {"bound (ns)", "#1f77b4", t, bd, ns, true, false},
                                  {"printed lines (bound, ns)", "#1f77b4", pt, pb, np, false, true}};
        bool logy = svg_spans_decades(s, 3);
        struct svg_panel p = {title, "time since start (s)", logy ? "nanoseconds (log)" : "nanoseconds", s, 3, logy,
                              NULL, 0};
        struct svg_panel_extra ex = {gl, ng, 1u << 2};
        ok = svg_write_ex(f, title, &p, &ex, 1);
    } else {
        struct svg_series s1[2] = {{"bound (ns)", "#1f77b4", t, bd, ns, false, false},
                                   {"printed lines (bound, ns)", "#1f77b4", pt, pb, np, false, true}};
        struct svg_series s2[1] = {{"frame-clock rate (ppm)", "#2ca02c", rt, rr, nr, false, true}};
        bool logy = svg_spans_decades(s1, 2);
        struct svg_panel p[2] = {{title, "time since start (s)", logy ? "bound (ns, log)" : "bound (ns)", s1, 2, logy,
                                  NULL, 0},
                                 {"frame-clock rate against CLOCK_MONOTONIC", "time since start (s)",
                                  "rate error (ppm)", s2, 1, false, NULL, 0}};
        struct svg_panel_extra ex[2] = {{gl, ng, 1u << 1}, {gl, ng, 0}};
        ok = svg_write_ex(f, title, p, ex, 2);
    }
out:
    free(t);
    free(err);
    free(bd);
    free(pt);
    free(pb);
    free(rt);
    free(rr);
    free(gl);
    free(glabel);
    return ok;
}

int cmd_track(int argc, char **argv)
{
    const char *spec = "sim", *svg = NULL;
    double duration = 5, interval_ms = 500;
    bool have_spec = false, json = false;
    ULONG clock = USBTS_CLOCK_MONOTONIC;
    struct event events[MAX_EVENTS];
    int nevents = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "--clock")) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_clock(v, &clock))
                return cli_usage_error("track", usage, "--clock needs one of " CLI_CLOCK_CHOICES);
        } else if (!strcmp(a, "--sim-event")) {
            const char *colon;
            if (!(v = cli_value(argc, argv, &i)) || !(colon = strchr(v, ':')) || colon == v || !colon[1])
                return cli_usage_error("track", usage, "--sim-event needs S:EVENT, e.g. 2.5:reset");
            if (nevents == MAX_EVENTS)
                return cli_usage_error("track", usage, "--sim-event: at most %d events", MAX_EVENTS);
            char secs[32];
            snprintf(secs, sizeof secs, "%.*s", (int)(colon - v < 31 ? colon - v : 31), v);
            if (!cli_parse_double(secs, 0, 86400, &events[nevents].at_s))
                return cli_usage_error("track", usage, "--sim-event '%s': S must be seconds from 0 to 86400", v);
            events[nevents].what = colon + 1;
            events[nevents++].done = false;
        } else if (!strcmp(a, "--svg")) {
            if (!(svg = cli_value(argc, argv, &i)))
                return cli_usage_error("track", usage, "--svg needs a file name");
        } else if (!strcmp(a, "--duration")) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_double(v, 0.001, 86400, &duration))
                return cli_usage_error("track", usage, "--duration needs seconds from 0.001 to 86400");
        } else if (!strcmp(a, "--interval")) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_double(v, 1, 3600000, &interval_ms))
                return cli_usage_error("track", usage, "--interval needs milliseconds from 1 to 3600000");
        } else if (a[0] == '-' && a[1] != '\0') {
            return cli_usage_error("track", usage, "unknown option '%s'", a);
        } else if (!have_spec) {
            spec = a;
            have_spec = true;
        } else {
            return cli_usage_error("track", usage, "unexpected argument '%s': one SPEC at most", a);
        }
    }

    /* The plot's path is checked now, not after the whole run. */
    struct cli_output out = {NULL, -1, false};
    if (svg && !cli_output_open("track", svg, &out))
        return EXIT_RUNTIME;
    /* Before the device is opened: the library's sampler thread inherits the
     * blocked mask, so the signals reach only the waits below. */
    cli_block_stop_signals();

    long long interval_ns = (long long)(interval_ms * 1e6 + 0.5);
    long long duration_ns = (long long)(duration * 1e9 + 0.5);
    /* A line every interval, and the last one at the duration itself. */
    long long steps = (duration_ns + interval_ns - 1) / interval_ns;
    int rc = 0, stopped_by = 0;
    /* The plot also draws the queries between printed lines. */
    long long sub = svg ? SUBSAMPLES : 1;
    if (steps * sub > MAX_SAMPLES)
        sub = MAX_SAMPLES / steps > 1 ? MAX_SAMPLES / steps : 1;
    struct row *rows = calloc((size_t)steps, sizeof *rows);
    struct sample *samples = calloc((size_t)(steps * sub), sizeof *samples);
    int nsamples = 0;
    if (!rows || !samples) {
        free(rows);
        free(samples);
        fprintf(stderr, "%s track: out of memory for %lld rows: use a longer --interval\n", cli_prog, steps);
        cli_output_discard(&out);
        cli_unblock_stop_signals();
        return EXIT_RUNTIME;
    }

    HANDLE dev = usbts_open(spec);
    if (dev == INVALID_HANDLE_VALUE) {
        rc = cli_library_error("track", spec);
        goto out_rows;
    }
    WINUSB_INTERFACE_HANDLE ih = NULL;
    USBTS_DEVICE_INFO di;
    if (!WinUsb_Initialize(dev, &ih)) {
        rc = cli_library_error("track", "WinUsb_Initialize");
        goto out_close;
    }
    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION start = {NULL, FALSE};
    if (!WinUsb_StartTrackingForTimeSync(ih, &start)) {
        rc = cli_library_error("track", "WinUsb_StartTrackingForTimeSync");
        goto out_free;
    }
    usbts_get_device_info(dev, &di);
    bool sim = di.IsSimulated;
    if (nevents > 0 && !sim) {
        fprintf(stderr, "%s track: --sim-event needs a simulated controller (SPEC sim or sim:...), not %s\n",
                cli_prog, spec);
        rc = EXIT_USAGE;
        goto out_stop;
    }
    if (!json) {
        printf("# tracking %s: controller %s (%s), source %s%s\n", spec, di.Controller, di.Driver, di.Source,
               di.IsVirtualClock ? ", virtual clock" : "");
        printf("# %8s %10s %10s %3s %18s %8s%s", "t_s", "generation", "usb_frame", "uf", "qpc", "acc_us",
               sim ? "  true_err_us" : "   rate_ppm");
        if (clock != USBTS_CLOCK_MONOTONIC)
            printf(" %20s_ns", cli_clock_name(clock));
        printf("\n");
        fflush(stdout);
    }

    long long prev_mf = 0, prev_ns = 0, t0 = cli_now_ns(), t_prev = 0;
    int n = 0;
    for (long long k = 1; k <= steps; k++) {
        long long t_k = k < steps ? k * interval_ns : duration_ns;
        USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;
        USBTS_FRAME_TIME ft, ct;
        /* sub queries per line, evenly spaced; the last is the printed one. */
        long long line0 = t_prev;
        for (long long j = 1; j <= sub; j++) {
            long long t_j = j < sub ? line0 + (t_k - line0) * j / sub : t_k;
            if (di.IsVirtualClock) {
                if ((stopped_by = cli_poll_stop()) != 0)
                    goto loop_end;
                if (!usbts_sim_advance(dev, (ULONGLONG)(t_j - t_prev))) {
                    rc = cli_library_error("track", "usbts_sim_advance");
                    goto loop_end;
                }
            } else if ((stopped_by = cli_wait_stop(t0 + t_j)) != 0) {
                goto loop_end;
            }
            t_prev = t_j;
            /* On a real clock the time the query really ran: a stall shows. */
            double t_s = di.IsVirtualClock ? (double)t_j / 1e9 : (double)(cli_now_ns() - t0) / 1e9;
            for (int e = 0; e < nevents; e++)
                if (!events[e].done && t_s >= events[e].at_s) {
                    events[e].done = true;
                    if (!usbts_sim_inject(dev, events[e].what)) {
                        rc = cli_library_error("track", events[e].what);
                        goto loop_end;
                    }
                }
            memset(&q, 0, sizeof q);
            q.TimeTrackingHandle = start.TimeTrackingHandle;
            if (!WinUsb_GetCurrentFrameNumberAndQpc(ih, &q) ||
                !usbts_frame_to_ns(ih, start.TimeTrackingHandle, q.CurrentUSBFrameNumber,
                                   q.CurrentHardwareMicroFrameNumber, &ft)) {
                rc = cli_library_error("track", "WinUsb_GetCurrentFrameNumberAndQpc");
                goto loop_end;
            }
            struct sample *sp = &samples[nsamples++];
            sp->t_s = t_s;
            sp->bound_ns = (double)ft.BoundNs;
            sp->generation = q.CurrentGenerationID;
            sp->printed = j == sub;
            sp->err_ns = NAN;
            LONGLONG truth;
            if (sim && usbts_sim_truth(dev, q.CurrentUSBFrameNumber, q.CurrentHardwareMicroFrameNumber, &truth))
                sp->err_ns = (double)(ft.StartNs - truth);
        }
        if (!usbts_frame_to_clock_ns(ih, start.TimeTrackingHandle, clock, q.CurrentUSBFrameNumber,
                                     q.CurrentHardwareMicroFrameNumber, &ct)) {
            rc = cli_library_error("track", "usbts_frame_to_clock_ns");
            break;
        }
        struct row *r = &rows[n++];
        r->t_s = (double)t_k / 1e9;
        r->acc_us = q.PredictedAccuracyInMicroSeconds;
        long long mf = (long long)q.CurrentUSBFrameNumber * 8 + q.CurrentHardwareMicroFrameNumber;
        r->rate_ppm = NAN;
        if (k > 1 && mf != prev_mf)
            r->rate_ppm = (125000.0 * (double)(mf - prev_mf) / (double)(ft.StartNs - prev_ns) - 1.0) * 1e6;
        prev_mf = mf;
        prev_ns = ft.StartNs;
        r->err_us = samples[nsamples - 1].err_ns / 1000.0;
        if (json) {
            printf("{\"t_s\": %.3f, \"generation\": %u, \"usb_frame\": %u, \"microframe\": %u, \"qpc\": %lld, "
                   "\"start_ns\": %lld, \"accuracy_us\": %u, \"bound_ns\": %lld",
                   r->t_s, (unsigned)q.CurrentGenerationID, (unsigned)q.CurrentUSBFrameNumber,
                   (unsigned)q.CurrentHardwareMicroFrameNumber, (long long)q.CurrentQueryPerformanceCounter.QuadPart,
                   (long long)ft.StartNs, (unsigned)q.PredictedAccuracyInMicroSeconds, (long long)ft.BoundNs);
            printf(", \"clock\": \"%s\", \"clock_start_ns\": %lld, \"clock_bound_ns\": %lld", cli_clock_name(clock),
                   (long long)ct.StartNs, (long long)ct.BoundNs);
            if (sim)
                printf(", \"true_error_us\": %.3f", r->err_us);
            else if (!isnan(r->rate_ppm))
                printf(", \"rate_ppm\": %.3f", r->rate_ppm);
            printf("}\n");
        } else {
            printf("  %8.3f %10u %10u %3u %18lld %8u", r->t_s, (unsigned)q.CurrentGenerationID,
                   (unsigned)q.CurrentUSBFrameNumber, (unsigned)q.CurrentHardwareMicroFrameNumber,
                   (long long)q.CurrentQueryPerformanceCounter.QuadPart, (unsigned)q.PredictedAccuracyInMicroSeconds);
            if (sim)
                printf("  %11.3f", r->err_us);
            else
                printf("  %9.3f", r->rate_ppm);
            if (clock != USBTS_CLOCK_MONOTONIC)
                printf(" %23lld", (long long)ct.StartNs);
            printf("\n");
        }
        fflush(stdout);
        if (duration >= 2)
            cli_progress("track", (double)k / (double)steps);
    }
loop_end:
    cli_progress_done();
    if (stopped_by)
        fprintf(stderr, "%s track: stopped by %s after %d line%s\n", cli_prog,
                stopped_by == SIGINT ? "SIGINT" : "SIGTERM", n, n == 1 ? "" : "s");
    if (rc == 0 && svg) {
        FILE *f = cli_output_begin(&out);
        if (!cli_output_end("track", &out, f, plot(f, spec, samples, nsamples, rows, n, sim)))
            rc = EXIT_RUNTIME;
    }
out_stop:;
    USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION stop = {start.TimeTrackingHandle};
    if (!WinUsb_StopTrackingForTimeSync(ih, &stop) && rc == 0)
        rc = cli_library_error("track", "WinUsb_StopTrackingForTimeSync");
out_free:
    WinUsb_Free(ih);
out_close:
    usbts_close(dev);
out_rows:
    free(rows);
    free(samples);
    cli_output_discard(&out); /* nothing, once written; else leaves the path as it was */
    cli_unblock_stop_signals();
    return rc;
}
