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

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s track [SPEC] [--duration S] [--interval MS] [--json] [--svg FILE]\n"
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
            "  --json          one JSON object per line instead of a table\n"
            "  --svg FILE      also plot the run: error and bound over time (simulated\n"
            "                  controller), or bound and frame-clock rate (real one); FILE is\n"
            "                  checked before tracking starts (not writable: exit status 1)\n"
            "\n"
            "SIGINT (Ctrl-C) or SIGTERM ends tracking early: the lines so far and the plot of\n"
            "them are written whole, and the exit status is 0.\n",
            cli_prog);
}

struct row {
    double t_s, err_us, acc_us, rate_ppm;
};

static bool plot(FILE *f, const char *spec, const struct row *rows, int n, bool sim)
{
    if (!f)
        return false;
    double *t = malloc(sizeof(double) * (size_t)(n + 1)), *a = malloc(sizeof(double) * (size_t)(n + 1)),
           *b = malloc(sizeof(double) * (size_t)(n + 1));
    if (!t || !a || !b) {
        free(t);
        free(a);
        free(b);
        return false;
    }
    for (int i = 0; i < n; i++) {
        t[i] = rows[i].t_s;
        a[i] = sim ? fabs(rows[i].err_us) : rows[i].acc_us;
        b[i] = sim ? rows[i].acc_us : rows[i].rate_ppm;
    }
    char title[200];
    snprintf(title, sizeof title, "usbtimesync track %.150s", spec);
    bool ok;
    if (sim) {
        struct svg_series s[2] = {{"|true error| (us)", "#d62728", t, a, n, false, true},
                                  {"predicted bound (us)", "#1f77b4", t, b, n, true, false}};
        struct svg_panel p = {title, "time since start (s)", "microseconds", s, 2, false, NULL, 0};
        ok = svg_write(f, title, &p, 1);
    } else {
        struct svg_series s1[1] = {{"predicted bound (us)", "#1f77b4", t, a, n, false, true}};
        struct svg_series s2[1] = {{"frame-clock rate (ppm)", "#2ca02c", t, b, n, false, true}};
        struct svg_panel p[2] = {{title, "time since start (s)", "bound (microseconds)", s1, 1, false, NULL, 0},
                                 {"frame-clock rate against CLOCK_MONOTONIC", "time since start (s)",
                                  "rate error (ppm)", s2, 1, false, NULL, 0}};
        ok = svg_write(f, title, p, 2);
    }
    free(t);
    free(a);
    free(b);
    return ok;
}

int cmd_track(int argc, char **argv)
{
    const char *spec = "sim", *svg = NULL;
    double duration = 5, interval_ms = 500;
    bool have_spec = false, json = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = true;
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
    struct row *rows = calloc((size_t)steps, sizeof *rows);
    if (!rows) {
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
    if (!json) {
        printf("# tracking %s: controller %s (%s), source %s%s\n", spec, di.Controller, di.Driver, di.Source,
               di.IsVirtualClock ? ", virtual clock" : "");
        printf("# %8s %10s %10s %3s %18s %8s%s\n", "t_s", "generation", "usb_frame", "uf", "qpc", "acc_us",
               sim ? "  true_err_us" : "   rate_ppm");
        fflush(stdout);
    }

    long long prev_mf = 0, prev_ns = 0, t0 = cli_now_ns(), t_prev = 0;
    int n = 0;
    for (long long k = 1; k <= steps; k++) {
        long long t_k = k < steps ? k * interval_ns : duration_ns;
        if (di.IsVirtualClock) {
            if ((stopped_by = cli_poll_stop()) != 0)
                break;
            if (!usbts_sim_advance(dev, (ULONGLONG)(t_k - t_prev))) {
                rc = cli_library_error("track", "usbts_sim_advance");
                break;
            }
        } else if ((stopped_by = cli_wait_stop(t0 + t_k)) != 0) {
            break;
        }
        t_prev = t_k;
        USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;
        memset(&q, 0, sizeof q);
        q.TimeTrackingHandle = start.TimeTrackingHandle;
        USBTS_FRAME_TIME ft;
        if (!WinUsb_GetCurrentFrameNumberAndQpc(ih, &q) ||
            !usbts_frame_to_ns(ih, start.TimeTrackingHandle, q.CurrentUSBFrameNumber,
                               q.CurrentHardwareMicroFrameNumber, &ft)) {
            rc = cli_library_error("track", "WinUsb_GetCurrentFrameNumberAndQpc");
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
        r->err_us = NAN;
        if (sim) {
            LONGLONG truth;
            if (usbts_sim_truth(dev, q.CurrentUSBFrameNumber, q.CurrentHardwareMicroFrameNumber, &truth))
                r->err_us = (double)(ft.StartNs - truth) / 1000.0;
        }
        if (json) {
            printf("{\"t_s\": %.3f, \"generation\": %u, \"usb_frame\": %u, \"microframe\": %u, \"qpc\": %lld, "
                   "\"start_ns\": %lld, \"accuracy_us\": %u, \"bound_ns\": %lld",
                   r->t_s, (unsigned)q.CurrentGenerationID, (unsigned)q.CurrentUSBFrameNumber,
                   (unsigned)q.CurrentHardwareMicroFrameNumber, (long long)q.CurrentQueryPerformanceCounter.QuadPart,
                   (long long)ft.StartNs, (unsigned)q.PredictedAccuracyInMicroSeconds, (long long)ft.BoundNs);
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
                printf("  %11.3f\n", r->err_us);
            else
                printf("  %9.3f\n", r->rate_ppm);
        }
        fflush(stdout);
        if (duration >= 2)
            cli_progress("track", (double)k / (double)steps);
    }
    cli_progress_done();
    if (stopped_by)
        fprintf(stderr, "%s track: stopped by %s after %d line%s\n", cli_prog,
                stopped_by == SIGINT ? "SIGINT" : "SIGTERM", n, n == 1 ? "" : "s");
    if (rc == 0 && svg) {
        FILE *f = cli_output_begin(&out);
        if (!cli_output_end("track", &out, f, plot(f, spec, rows, n, sim)))
            rc = EXIT_RUNTIME;
    }
    USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION stop = {start.TimeTrackingHandle};
    if (!WinUsb_StopTrackingForTimeSync(ih, &stop) && rc == 0)
        rc = cli_library_error("track", "WinUsb_StopTrackingForTimeSync");
out_free:
    WinUsb_Free(ih);
out_close:
    usbts_close(dev);
out_rows:
    free(rows);
    cli_output_discard(&out); /* nothing, once written; else leaves the path as it was */
    cli_unblock_stop_signals();
    return rc;
}
