/*
 * usbtimesync — the command-line tool.
 *
 *   usbtimesync track [SPEC] [--duration S] [--interval MS]
 *
 * Exit status: 0 success, 1 runtime failure, 2 usage error.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "usbtimesync/usbtimesync.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

static const char *prog = "usbtimesync";

static void usage_main(FILE *f)
{
    fprintf(f,
            "usage: %s COMMAND [ARGS]\n"
            "\n"
            "USB time synchronization for Linux: which host-clock instant a USB (micro)frame\n"
            "started at, through the WinUSB time-sync API.\n"
            "\n"
            "commands:\n"
            "  track [SPEC]   track a controller and print a line per interval\n"
            "  help [COMMAND] show help\n"
            "  version        print the version\n"
            "\n"
            "SPEC: sim (default), sim:key=value,..., /dev/bus/usb/BBB/DDD, BUS:DEV, VVVV:PPPP\n",
            prog);
}

static void usage_track(FILE *f)
{
    fprintf(f,
            "usage: %s track [SPEC] [--duration S] [--interval MS]\n"
            "\n"
            "Starts time tracking on the device's controller and prints, every interval:\n"
            "elapsed seconds, generation, USB frame, microframe, the QPC (100 ns ticks) at\n"
            "the start of the current microframe, the predicted accuracy in microseconds,\n"
            "and on a simulated controller the true error of that QPC in microseconds.\n"
            "\n"
            "  SPEC            device to track (default: sim)\n"
            "  --duration S    how long to track, seconds (default 5)\n"
            "  --interval MS   time between lines, milliseconds (default 500)\n",
            prog);
}

static int fail_runtime(const char *what)
{
    fprintf(stderr, "%s: %s: %s (error %u)\n", prog, what, usbts_last_error_message(), (unsigned)GetLastError());
    return EXIT_RUNTIME;
}

static int usage_error(void (*usage)(FILE *), const char *fmt, const char *arg)
{
    fprintf(stderr, "%s: ", prog);
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    usage(stderr);
    return EXIT_USAGE;
}

static bool parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        return false;
    *out = v;
    return true;
}

static void sleep_ns(long long ns)
{
    struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int cmd_track(int argc, char **argv)
{
    const char *spec = "sim";
    double duration = 5, interval_ms = 500;
    bool have_spec = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage_track(stdout);
            return 0;
        } else if (!strcmp(a, "--duration") || !strcmp(a, "--interval")) {
            if (i + 1 >= argc)
                return usage_error(usage_track, "%s needs a value", a);
            bool ok = !strcmp(a, "--duration") ? parse_double(argv[++i], 0.001, 86400, &duration)
                                               : parse_double(argv[++i], 1, 3600000, &interval_ms);
            if (!ok)
                return usage_error(usage_track, "bad value '%s' (duration 0.001..86400 s, interval 1..3600000 ms)",
                                   argv[i]);
        } else if (a[0] == '-' && a[1] != '\0') {
            return usage_error(usage_track, "unknown option '%s'", a);
        } else if (!have_spec) {
            spec = a;
            have_spec = true;
        } else {
            return usage_error(usage_track, "unexpected argument '%s'", a);
        }
    }

    HANDLE dev = usbts_open(spec);
    if (dev == INVALID_HANDLE_VALUE)
        return fail_runtime(spec);
    int rc = 0;
    WINUSB_INTERFACE_HANDLE ih = NULL;
    USBTS_DEVICE_INFO di;
    if (!WinUsb_Initialize(dev, &ih)) {
        rc = fail_runtime("WinUsb_Initialize");
        goto out_close;
    }
    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION start = {NULL, FALSE};
    if (!WinUsb_StartTrackingForTimeSync(ih, &start)) {
        rc = fail_runtime("WinUsb_StartTrackingForTimeSync");
        goto out_free;
    }
    usbts_get_device_info(dev, &di);
    printf("# tracking %s: controller %s (%s), source %s%s\n", spec, di.Controller, di.Driver, di.Source,
           di.IsVirtualClock ? ", virtual clock" : "");
    printf("# %8s %10s %10s %3s %18s %8s%s\n", "t_s", "generation", "usb_frame", "uf", "qpc", "acc_us",
           di.IsSimulated ? "  true_err_us" : "");

    long long interval_ns = (long long)(interval_ms * 1e6);
    long long steps = (long long)(duration * 1e9 / (double)interval_ns + 0.5);
    if (steps < 1)
        steps = 1;
    for (long long k = 1; k <= steps; k++) {
        if (di.IsVirtualClock) {
            if (!usbts_sim_advance(dev, (ULONGLONG)interval_ns)) {
                rc = fail_runtime("usbts_sim_advance");
                break;
            }
        } else {
            sleep_ns(interval_ns);
        }
        USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;
        memset(&q, 0, sizeof q);
        q.TimeTrackingHandle = start.TimeTrackingHandle;
        if (!WinUsb_GetCurrentFrameNumberAndQpc(ih, &q)) {
            rc = fail_runtime("WinUsb_GetCurrentFrameNumberAndQpc");
            break;
        }
        printf("  %8.3f %10u %10u %3u %18lld %8u", (double)k * (double)interval_ns / 1e9,
               (unsigned)q.CurrentGenerationID, (unsigned)q.CurrentUSBFrameNumber,
               (unsigned)q.CurrentHardwareMicroFrameNumber, (long long)q.CurrentQueryPerformanceCounter.QuadPart,
               (unsigned)q.PredictedAccuracyInMicroSeconds);
        if (di.IsSimulated) {
            LONGLONG truth;
            if (usbts_sim_truth(dev, q.CurrentUSBFrameNumber, q.CurrentHardwareMicroFrameNumber, &truth))
                printf("  %11.3f", (double)(q.CurrentQueryPerformanceCounter.QuadPart * 100 - truth) / 1000.0);
        }
        putchar('\n');
        fflush(stdout);
    }

    USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION stop = {start.TimeTrackingHandle};
    if (!WinUsb_StopTrackingForTimeSync(ih, &stop) && rc == 0)
        rc = fail_runtime("WinUsb_StopTrackingForTimeSync");
out_free:
    WinUsb_Free(ih);
out_close:
    usbts_close(dev);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage_main(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "track"))
        return cmd_track(argc - 2, argv + 2);
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("usbtimesync %s\n", USBTIMESYNC_VERSION_STRING);
        return 0;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
        if (argc > 2 && !strcmp(argv[2], "track"))
            usage_track(stdout);
        else
            usage_main(stdout);
        return 0;
    }
    fprintf(stderr, "%s: unknown command '%s'\n", prog, cmd);
    usage_main(stderr);
    return EXIT_USAGE;
}
