/* SPDX-License-Identifier: MIT */
/*
 * usbtimesync track — follow a controller's frame clock, a line per interval.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "svg.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s track [SPEC] [--duration S] [--interval MS] [--clock CLOCK] [--json]\n"
            "          [--svg FILE]\n"
            "\n"
            "Starts time tracking on the device's controller and prints, every interval: elapsed\n"
            "seconds, generation, USB frame, microframe, the QPC (100 ns ticks) at the start of\n"
            "the current microframe, the predicted accuracy in microseconds, and on a simulated\n"
            "controller the true error of that microframe's start time in microseconds.\n"
            "\n"
            "  SPEC            device to track (default: sim)\n"
            "  --duration S    how long to track, in seconds (default 5)\n"
            "  --interval MS   time between lines, in milliseconds (default 500)\n"
            "  --clock CLOCK   also give each start time on " CLI_CLOCK_CHOICES "\n"
            "                  (default monotonic); the conversion is measured at each query\n"
            "  --json          one JSON object per line instead of a table; \"clock\" names the\n"
            "                  timeline of clock_start_ns\n"
            "  --svg FILE      also plot the run: error and bound over time (simulated\n"
            "                  controller), or bound and frame-clock rate (real one)\n",
            cli_prog);
}

struct row {
    double t_s, err_us, acc_us, rate_ppm;
};

static void sleep_ns(long long ns)
{
    struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static bool plot(const char *path, const char *spec, const struct row *rows, int n, bool sim)
{
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
        ok = svg_write(path, title, &p, 1);
    } else {
        struct svg_series s1[1] = {{"predicted bound (us)", "#1f77b4", t, a, n, false, true}};
        struct svg_series s2[1] = {{"frame-clock rate (ppm)", "#2ca02c", t, b, n, false, true}};
        struct svg_panel p[2] = {{title, "time since start (s)", "bound (microseconds)", s1, 1, false, NULL, 0},
                                 {"frame-clock rate against CLOCK_MONOTONIC", "time since start (s)",
                                  "rate error (ppm)", s2, 1, false, NULL, 0}};
        ok = svg_write(path, title, p, 2);
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
    ULONG clock = USBTS_CLOCK_MONOTONIC;
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

    HANDLE dev = usbts_open(spec);
    if (dev == INVALID_HANDLE_VALUE)
        return cli_library_error("track", spec);
    int rc = 0;
    WINUSB_INTERFACE_HANDLE ih = NULL;
    USBTS_DEVICE_INFO di;
    struct row *rows = NULL;
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
        printf("# %8s %10s %10s %3s %18s %8s%s", "t_s", "generation", "usb_frame", "uf", "qpc", "acc_us",
               sim ? "  true_err_us" : "   rate_ppm");
        if (clock != USBTS_CLOCK_MONOTONIC)
            printf(" %20s_ns", cli_clock_name(clock));
        printf("\n");
    }

    long long interval_ns = (long long)(interval_ms * 1e6);
    long long steps = (long long)(duration * 1e9 / (double)interval_ns + 0.5);
    if (steps < 1)
        steps = 1;
    rows = calloc((size_t)steps, sizeof *rows);
    if (!rows) {
        fprintf(stderr, "%s track: out of memory for %lld rows: use a longer --interval\n", cli_prog, steps);
        rc = EXIT_RUNTIME;
        goto out_stop;
    }
    long long prev_mf = 0, prev_ns = 0;
    int n = 0;
    for (long long k = 1; k <= steps; k++) {
        if (di.IsVirtualClock) {
            if (!usbts_sim_advance(dev, (ULONGLONG)interval_ns)) {
                rc = cli_library_error("track", "usbts_sim_advance");
                break;
            }
        } else {
            sleep_ns(interval_ns);
        }
        USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;
        memset(&q, 0, sizeof q);
        q.TimeTrackingHandle = start.TimeTrackingHandle;
        USBTS_FRAME_TIME ft, ct;
        if (!WinUsb_GetCurrentFrameNumberAndQpc(ih, &q) ||
            !usbts_frame_to_ns(ih, start.TimeTrackingHandle, q.CurrentUSBFrameNumber,
                               q.CurrentHardwareMicroFrameNumber, &ft)) {
            rc = cli_library_error("track", "WinUsb_GetCurrentFrameNumberAndQpc");
            break;
        }
        if (!usbts_frame_to_clock_ns(ih, start.TimeTrackingHandle, clock, q.CurrentUSBFrameNumber,
                                     q.CurrentHardwareMicroFrameNumber, &ct)) {
            rc = cli_library_error("track", "usbts_frame_to_clock_ns");
            break;
        }
        struct row *r = &rows[n++];
        r->t_s = (double)k * (double)interval_ns / 1e9;
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
    cli_progress_done();
    if (rc == 0 && svg && !plot(svg, spec, rows, n, sim)) {
        fprintf(stderr, "%s track: cannot write %s: %s; choose a writable path\n", cli_prog, svg, strerror(errno));
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
    free(rows);
    return rc;
}
