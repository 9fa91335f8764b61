/* SPDX-License-Identifier: MIT */
/*
 * usbtimesync bench — the estimator's accuracy scenarios (virtual time, so
 * independent of machine load) and what a query costs against a clock read.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "benchutil.h"
#include "cli.h"
#include "scenario.h"
#include "svg.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s bench [--seeds N] [--long] [--json] [--svg FILE]\n"
            "\n"
            "Runs the accuracy scenarios on the virtual-clock simulator (nominal, drift, preemptions,\n"
            "slow reads, host-clock slew, a 10 s sampler stall, reset, halt) and prints per scenario\n"
            "the p50/p99/max error, the share of values outside their reported bound, and the bound\n"
            "over the p99 error; then the cost of a query against clock_gettime, measured in the\n"
            "same run.  Baselines: one bracketed MFINDEX read per query, and one sample per MFINDEX\n"
            "wrap with 20 us interrupt latency (the documented Windows scheme).\n"
            "\n"
            "  --seeds N    seeds per scenario (default 1; --long: 5)\n"
            "  --long       more seeds and longer latency batches\n"
            "  --json       one JSON object per line\n"
            "  --svg FILE   plot p99 error per scenario: ours and both baselines; FILE is checked\n"
            "               before the scenarios run (not writable: exit status 1)\n",
            cli_prog);
}

/* Query and clock_gettime, interleaved batch by batch; medians. */
static bool latency(int rounds, double *query_ns, double *clock_ns)
{
    HANDLE d = usbts_open("sim");
    WINUSB_INTERFACE_HANDLE ih;
    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION s = {NULL, FALSE};
    if (d == INVALID_HANDLE_VALUE || !WinUsb_Initialize(d, &ih) || !WinUsb_StartTrackingForTimeSync(ih, &s))
        return false;
    USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;
    memset(&q, 0, sizeof q);
    q.TimeTrackingHandle = s.TimeTrackingHandle;
    double *qv = malloc(sizeof(double) * (size_t)rounds), *cv = malloc(sizeof(double) * (size_t)rounds);
    volatile long long sink = 0;
    for (int r = 0; r < rounds && qv && cv; r++) {
        double t0 = bench_now_s();
        for (int i = 0; i < 10000; i++) {
            WinUsb_GetCurrentFrameNumberAndQpc(ih, &q);
            sink += q.CurrentQueryPerformanceCounter.QuadPart;
        }
        double t1 = bench_now_s();
        for (int i = 0; i < 10000; i++) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            sink += ts.tv_nsec;
        }
        double t2 = bench_now_s();
        qv[r] = (t1 - t0) * 1e5;
        cv[r] = (t2 - t1) * 1e5;
    }
    bool ok = qv && cv;
    if (ok) {
        *query_ns = bench_median(qv, rounds);
        *clock_ns = bench_median(cv, rounds);
    }
    free(qv);
    free(cv);
    USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION p = {s.TimeTrackingHandle};
    WinUsb_StopTrackingForTimeSync(ih, &p);
    WinUsb_Free(ih);
    usbts_close(d);
    return ok;
}

int cmd_bench(int argc, char **argv)
{
    unsigned long long seeds = 0;
    bool json = false, lng = false;
    const char *svg = NULL, *v;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "--long")) {
            lng = true;
        } else if (!strcmp(a, "--seeds")) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_ulong(v, 100, &seeds) || seeds == 0)
                return cli_usage_error("bench", usage, "--seeds needs a number from 1 to 100");
        } else if (!strcmp(a, "--svg")) {
            if (!(svg = cli_value(argc, argv, &i)))
                return cli_usage_error("bench", usage, "--svg needs a file name");
        } else {
            return cli_usage_error("bench", usage, "unexpected argument '%s'", a);
        }
    }
    if (seeds == 0)
        seeds = lng ? 5 : 1;
    /* The plot's path is checked before the scenarios run, not after. */
    struct cli_output out = {NULL, -1, false};
    if (svg && !cli_output_open("bench", svg, &out))
        return EXIT_RUNTIME;

    int ns = usbts_nscenarios;
    double ours[32], base_a[32], base_b[32], xs[32];
    const char *names[32];
    if (!json) {
        printf("# accuracy: virtual-clock simulator, %llu seed(s) per scenario, worst seed shown; errors in ns\n",
               seeds);
        printf("%-14s %7s %7s %8s %8s %9s %10s %10s %8s %8s\n", "scenario", "p50", "p99", "max", "outside", "bound/p99",
               "read p99", "wrap p99", "newgen", "frames");
    }
    int failed = 0;
    for (int k = 0; k < ns; k++) {
        const struct scenario *sc = &usbts_scenarios[k];
        struct scenario_result w;
        memset(&w, 0, sizeof w);
        w.new_generation_ms = -1;
        double ratio = 0;
        for (unsigned long long s = 1; s <= seeds; s++) {
            struct scenario_result r;
            cli_progress(sc->name, ((double)k + (double)(s - 1) / (double)seeds) / ns);
            if (!scenario_run(sc, s, &r)) {
                cli_progress_done();
                fprintf(stderr, "%s bench: %s: %s\n", cli_prog, sc->name, r.failure);
                failed++;
                continue;
            }
            w.p50_ns = fmax(w.p50_ns, r.p50_ns);
            w.p99_ns = fmax(w.p99_ns, r.p99_ns);
            w.max_ns = fmax(w.max_ns, r.max_ns);
            w.outside_share = fmax(w.outside_share, r.outside_share);
            w.base_read_p99_ns = fmax(w.base_read_p99_ns, r.base_read_p99_ns);
            w.base_wrap_p99_ns = fmax(w.base_wrap_p99_ns, r.base_wrap_p99_ns);
            w.new_generation_ms = fmax(w.new_generation_ms, r.new_generation_ms);
            ratio = fmax(ratio, r.bound_p99_ratio);
            if (llabs(r.frame_jump_error) > llabs(w.frame_jump_error))
                w.frame_jump_error = r.frame_jump_error;
        }
        names[k] = sc->name;
        xs[k] = k;
        ours[k] = w.p99_ns / 1000;
        base_a[k] = w.base_read_p99_ns / 1000;
        base_b[k] = w.base_wrap_p99_ns / 1000;
        if (json) {
            printf("{\"scenario\": \"%s\", \"seeds\": %llu, \"p50_ns\": %.0f, \"p99_ns\": %.0f, \"max_ns\": %.0f, "
                   "\"outside_share\": %.5f, \"bound_over_p99\": %.3f, \"read_per_query_p99_ns\": %.0f, "
                   "\"wrap_sampling_p99_ns\": %.0f, \"new_generation_ms\": %.2f, \"frame_error\": %lld}\n",
                   sc->name, seeds, w.p50_ns, w.p99_ns, w.max_ns, w.outside_share, ratio, w.base_read_p99_ns,
                   w.base_wrap_p99_ns, w.new_generation_ms, w.frame_jump_error);
        } else {
            char ng[16] = "-";
            if (w.new_generation_ms >= 0)
                snprintf(ng, sizeof ng, "%.1fms", w.new_generation_ms);
            cli_progress_done();
            printf("%-14s %7.0f %7.0f %8.0f %7.2f%% %9.2f %10.0f %10.0f %8s %8lld\n", sc->name, w.p50_ns, w.p99_ns,
                   w.max_ns, 100 * w.outside_share, ratio, w.base_read_p99_ns, w.base_wrap_p99_ns, ng,
                   w.frame_jump_error);
        }
        fflush(stdout);
    }
    cli_progress_done();

    double qns = 0, cns = 0;
    if (!latency(lng ? 51 : 11, &qns, &cns)) {
        fprintf(stderr, "%s bench: latency: %s\n", cli_prog, usbts_last_error_message());
        failed++;
    } else if (json) {
        printf("{\"latency\": \"WinUsb_GetCurrentFrameNumberAndQpc\", \"query_ns\": %.1f, \"clock_gettime_ns\": %.1f, "
               "\"ratio\": %.3f}\n",
               qns, cns, qns / cns);
    } else {
        printf("\n# latency, measured in this run (ratios are the figures; ns only hints)\n");
        printf("%-48s %8.1f ns\n", "clock_gettime(CLOCK_MONOTONIC)", cns);
        printf("%-48s %8.1f ns  %.2f x clock_gettime\n", "WinUsb_GetCurrentFrameNumberAndQpc", qns, qns / cns);
    }

    if (svg) {
        struct svg_series s[3] = {{"usbtimesync", "#1f77b4", xs, ours, ns, false, true},
                                  {"one read per query", "#ff7f0e", xs, base_a, ns, true, true},
                                  {"wrap sampling + 20 us IRQ", "#2ca02c", xs, base_b, ns, true, true}};
        struct svg_panel p = {"p99 error of returned frame times, per scenario", "scenario", "p99 error (us, log)",
                              s, 3, true, names, ns};
        FILE *f = cli_output_begin(&out);
        if (!cli_output_end("bench", &out, f, f && svg_write(f, "usbtimesync bench", &p, 1)))
            failed++;
    }
    cli_output_discard(&out);
    return failed ? EXIT_RUNTIME : 0;
}
