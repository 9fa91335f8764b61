/* SPDX-License-Identifier: MIT */
/*
 * bench/latency — what a query costs, against a clock read measured in the
 * same run, and what tracking costs while nobody asks.
 *
 *   latency [SECONDS_FOR_SAMPLER]      (default 10)
 *
 * Every figure that matters is a ratio against a baseline measured in the
 * same run, interleaved batch by batch: absolute times on a shared machine
 * are only hints.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "benchutil.h"
#include "usbtimesync/usbtimesync.h"

/* ---- the contenders ------------------------------------------------------- */

static WINUSB_INTERFACE_HANDLE ih;
static HANDLE th;
static int debugfs_fd = -1;
/* Thread-local: a shared sink would bounce a cache line between the querying
 * threads and measure that instead of the library. */
static _Thread_local volatile long long sink;

static void do_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    sink += ts.tv_nsec;
}

static void do_query00(void)
{
    USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;
    q.TimeTrackingHandle = th;
    q.InputFrameNumber = 0;
    q.InputMicroFrameNumber = 0;
    if (!WinUsb_GetCurrentFrameNumberAndQpc(ih, &q))
        abort();
    sink += q.CurrentQueryPerformanceCounter.QuadPart;
}

static ULONG some_frame;
static void do_query_frame(void)
{
    USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;
    q.TimeTrackingHandle = th;
    q.InputFrameNumber = some_frame;
    q.InputMicroFrameNumber = 3;
    if (!WinUsb_GetCurrentFrameNumberAndQpc(ih, &q))
        abort();
    sink += q.QueryPerformanceCounterAtInputFrameOrMicroFrame.QuadPart;
}

static void do_frame_to_ns(void)
{
    USBTS_FRAME_TIME ft;
    if (!usbts_frame_to_ns(ih, th, some_frame, 3, &ft))
        abort();
    sink += ft.StartNs;
}

/* Another timeline: the same query plus the clock-offset measurement. */
static void do_frame_to_realtime(void)
{
    USBTS_FRAME_TIME ft;
    if (!usbts_frame_to_clock_ns(ih, th, USBTS_CLOCK_REALTIME, some_frame, 3, &ft))
        abort();
    sink += ft.StartNs;
}

/* 1000 frames in one call: one snapshot, one conversion. */
#define BULK_N 1000
static ULONG bulk_frames[BULK_N];
static LONGLONG bulk_start[BULK_N], bulk_bound[BULK_N];
static void do_bulk(void)
{
    ULONG gen;
    if (!usbts_frames_to_clock_ns(ih, th, USBTS_CLOCK_REALTIME, BULK_N, bulk_frames, NULL, bulk_start, bulk_bound,
                                  &gen))
        abort();
    sink += bulk_start[BULK_N - 1];
}

/* Placing one isochronous URB of 8 packets (issue #13): one query's worth. */
static USBTS_ISO_STREAM iso_stream;
static LONGLONG iso_before;
static void do_iso_urb(void)
{
    USBTS_ISO_SUBMISSION sub = {iso_before, iso_before + 20000, 8, 0};
    USBTS_ISO_RESULT r;
    USBTS_ISO_PACKET pk[8];
    if (!usbts_iso_submitted(ih, th, &iso_stream, &sub, &r, pk))
        abort();
    sink += pk[7].StartNs;
}

static void do_get_frame(void)
{
    ULONG f;
    LARGE_INTEGER ts;
    if (!WinUsb_GetCurrentFrameNumber(ih, &f, &ts))
        abort();
    sink += f;
}

/* The shape of a syscall-per-query design: one pread of a debugfs-like file
 * and parsing its MFINDEX line, then the clock read it would still need. */
static void do_pread(void)
{
    char buf[128];
    ssize_t n = pread(debugfs_fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        abort();
    buf[n] = '\0';
    unsigned v = 0;
    const char *p = strstr(buf, "MFINDEX = ");
    if (p)
        v = (unsigned)strtoul(p + 10, NULL, 16);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    sink += v + ts.tv_nsec;
}

struct contender {
    const char *name;
    void (*fn)(void);
    int batch;
    double ns[64];
};

static double batch_ns(void (*fn)(void), int n)
{
    double t0 = bench_now_s();
    for (int i = 0; i < n; i++)
        fn();
    return (bench_now_s() - t0) * 1e9 / n;
}

/* ---- two threads ---------------------------------------------------------------- */

static atomic_bool go, stop_threads;

static void *query_thread(void *arg)
{
    double *rate = arg;
    while (!atomic_load(&go)) {
    }
    long long n = 0;
    double t0 = bench_now_s();
    while (!atomic_load(&stop_threads)) {
        for (int i = 0; i < 1000; i++)
            do_query00();
        n += 1000;
    }
    *rate = (double)n / (bench_now_s() - t0);
    return NULL;
}

static double run_threads(int nthreads, double seconds, double *rates)
{
    pthread_t t[2];
    atomic_store(&go, false);
    atomic_store(&stop_threads, false);
    for (int i = 0; i < nthreads; i++)
        pthread_create(&t[i], NULL, query_thread, &rates[i]);
    atomic_store(&go, true);
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    nanosleep(&ts, NULL);
    atomic_store(&stop_threads, true);
    double sum = 0;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(t[i], NULL);
        sum += rates[i];
    }
    return sum / nthreads;
}

/* ---- threads of this process ------------------------------------------------------ */

static int list_tasks(int *tids, int max)
{
    int n = 0;
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.' && n < max)
            tids[n++] = atoi(e->d_name);
    if (d)
        closedir(d);
    return n;
}

static double task_cpu_ns(int tid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/schedstat", tid);
    FILE *f = fopen(path, "r");
    double v = -1;
    if (f) {
        if (fscanf(f, "%lf", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

static long task_wakeups(int tid)
{
    char path[64], line[128];
    snprintf(path, sizeof path, "/proc/self/task/%d/status", tid);
    FILE *f = fopen(path, "r");
    long v = 0, nv = 0;
    while (f && fgets(line, sizeof line, f)) {
        if (!strncmp(line, "voluntary_ctxt_switches:", 24))
            v = atol(line + 24);
        if (!strncmp(line, "nonvoluntary_ctxt_switches:", 27))
            nv = atol(line + 27);
    }
    if (f)
        fclose(f);
    return v + nv;
}

static long all_wakeups(void)
{
    int tids[64], n = list_tasks(tids, 64);
    long sum = 0;
    for (int i = 0; i < n; i++)
        sum += task_wakeups(tids[i]);
    return sum;
}

int main(int argc, char **argv)
{
    double sampler_seconds = argc > 1 ? atof(argv[1]) : 10;
    if (sampler_seconds <= 0)
        sampler_seconds = 10;
    int failures = 0;

    char path[] = "/tmp/usbts-latency-XXXXXX";
    debugfs_fd = mkstemp(path);
    if (debugfs_fd < 0 || write(debugfs_fd, "MFINDEX = 0x00001234\nIMAN = 0x00000000\n", 38) != 38) {
        perror("temp file");
        return 1;
    }
    unlink(path);

    /* Threads and wake-ups while nothing is tracked. */
    int tids[64];
    int tasks_idle = list_tasks(tids, 64);
    HANDLE dev = usbts_open("sim");
    if (dev == INVALID_HANDLE_VALUE || !WinUsb_Initialize(dev, &ih)) {
        fprintf(stderr, "latency: %s\n", usbts_last_error_message());
        return 1;
    }
    int tasks_open = list_tasks(tids, 64);
    long w0 = all_wakeups();
    struct timespec one = {1, 0};
    nanosleep(&one, NULL);
    long idle_wakeups = all_wakeups() - w0 - 1; /* our own sleep is one */

    /* Start latency with IsStartupDelayTolerable FALSE: each Start here begins
     * tracking from nothing (no other handle open). */
    double starts[50];
    for (int i = 0; i < 50; i++) {
        USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION s = {NULL, FALSE};
        double t0 = bench_now_s();
        if (!WinUsb_StartTrackingForTimeSync(ih, &s)) {
            fprintf(stderr, "latency: Start: %s\n", usbts_last_error_message());
            return 1;
        }
        starts[i] = (bench_now_s() - t0) * 1e3;
        USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION p = {s.TimeTrackingHandle};
        WinUsb_StopTrackingForTimeSync(ih, &p);
    }
    double start_max = 0;
    for (int i = 0; i < 50; i++)
        start_max = starts[i] > start_max ? starts[i] : start_max;
    double start_med = bench_median(starts, 50);
    int tasks_after_stops = list_tasks(tids, 64);

    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION s = {NULL, FALSE};
    if (!WinUsb_StartTrackingForTimeSync(ih, &s)) {
        fprintf(stderr, "latency: Start: %s\n", usbts_last_error_message());
        return 1;
    }
    th = s.TimeTrackingHandle;
    int tasks_tracking = list_tasks(tids, 64);
    USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q0;
    memset(&q0, 0, sizeof q0);
    q0.TimeTrackingHandle = th;
    WinUsb_GetCurrentFrameNumberAndQpc(ih, &q0);
    some_frame = q0.CurrentUSBFrameNumber - 10;
    for (int i = 0; i < BULK_N; i++)
        bulk_frames[i] = q0.CurrentUSBFrameNumber - (ULONG)i;
    USBTS_ISO_ENDPOINT iso_ep = {FullSpeed, 1, 0xF, FALSE};
    usbts_iso_stream_init(&iso_stream, &iso_ep);
    usbts_now_ns(dev, &iso_before);

    /* Per-call cost, interleaved: each round times one batch of every contender. */
    struct contender c[] = {
        {"clock_gettime(CLOCK_MONOTONIC)", do_clock, 20000, {0}},
        {"WinUsb_GetCurrentFrameNumberAndQpc, input 0/0", do_query00, 20000, {0}},
        {"WinUsb_GetCurrentFrameNumberAndQpc, input frame", do_query_frame, 20000, {0}},
        {"usbts_frame_to_ns", do_frame_to_ns, 20000, {0}},
        {"WinUsb_GetCurrentFrameNumber (reads the counter)", do_get_frame, 500, {0}},
        {"syscall-per-query design (pread + parse)", do_pread, 2000, {0}},
        {"usbts_iso_submitted, one URB of 8 packets", do_iso_urb, 20000, {0}},
        {"usbts_frame_to_clock_ns(REALTIME)", do_frame_to_realtime, 20000, {0}},
        {"usbts_frames_to_clock_ns(REALTIME), 1000 frames", do_bulk, 100, {0}},
    };
    int nc = (int)(sizeof c / sizeof c[0]), rounds = 31;
    for (int k = 0; k < nc; k++)
        batch_ns(c[k].fn, c[k].batch / 10); /* warm up */
    for (int r = 0; r < rounds; r++)
        for (int k = 0; k < nc; k++)
            c[k].ns[r] = batch_ns(c[k].fn, c[k].batch);
    double med[12];
    for (int k = 0; k < nc; k++)
        med[k] = bench_median(c[k].ns, rounds);

    /* Two threads querying at once against one thread alone. */
    double r1[2], r2[2];
    double one_rate = run_threads(1, 0.5, r1);
    run_threads(2, 0.5, r2);
    double two_min = r2[0] < r2[1] ? r2[0] : r2[1];

    /* The sampler's share of a core while a handle is open. */
    int sampler = 0;
    int now_tids[64], nn = list_tasks(now_tids, 64);
    for (int i = 0; i < nn; i++)
        if (now_tids[i] != getpid())
            sampler = now_tids[i];
    double cpu0 = task_cpu_ns(sampler);
    long sw0 = task_wakeups(sampler);
    double t0 = bench_now_s();
    struct timespec ss = {(time_t)sampler_seconds, (long)((sampler_seconds - (double)(time_t)sampler_seconds) * 1e9)};
    nanosleep(&ss, NULL);
    double wall = bench_now_s() - t0;
    double share = (task_cpu_ns(sampler) - cpu0) / (wall * 1e9);
    double sampler_wakeups = (double)(task_wakeups(sampler) - sw0) / wall;

    USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION p = {th};
    WinUsb_StopTrackingForTimeSync(ih, &p);
    int tasks_stopped = list_tasks(tids, 64);
    WinUsb_Free(ih);
    usbts_close(dev);

    printf("# usbtimesync latency: ratios measured in one run (absolute ns are hints only)\n");
    printf("%-52s %10s %12s\n", "call", "ns/call", "/ clock_gettime");
    for (int k = 0; k < nc; k++)
        printf("%-52s %10.1f %12.2f\n", c[k].name, med[k], med[k] / med[0]);
    printf("\n");
    printf("%-52s %10.2f   (target <= 2)\n", "query / clock_gettime", med[1] / med[0]);
    printf("%-52s %10.2f\n", "query with input frame / clock_gettime", med[2] / med[0]);
    printf("%-52s %10.1f\n", "syscall design / our query", med[5] / med[1]);
    printf("%-52s %10.2f   (target: one query's worth)\n", "iso URB of 8 packets placed / query", med[6] / med[1]);
    printf("%-52s %10.2f\n", "frame_to_clock_ns(REALTIME) / frame_to_ns", med[7] / med[3]);
    printf("%-52s %10.3f\n", "bulk, per frame / frame_to_ns", med[8] / BULK_N / med[3]);
    printf("%-52s %10.2f   (target >= 0.8; 2 cores, shared)\n", "2-thread rate per thread / 1-thread rate",
           two_min / one_rate);
    printf("%-52s %9.3f%%   (target <= 1%%), %.0f wake-ups/s\n", "sampler share of one core", 100 * share,
           sampler_wakeups);
    printf("%-52s %10.3f   max %.3f ms (target <= 5 ms)\n", "Start, IsStartupDelayTolerable FALSE, median ms",
           start_med, start_max);
    printf("%-52s %d idle, %d open, %d tracking, %d after Stop\n", "threads", tasks_idle, tasks_open,
           tasks_tracking, tasks_stopped);
    printf("%-52s %ld\n", "wake-ups in 1 s with no handle open (all threads)", idle_wakeups < 0 ? 0 : idle_wakeups);

    /* Functional facts (not timing): fail on these only. */
    if (tasks_open != tasks_idle || tasks_after_stops != tasks_idle || tasks_stopped != tasks_idle) {
        printf("FAIL: a library thread exists while nothing is tracked\n");
        failures++;
    }
    if (tasks_tracking != tasks_idle + 1) {
        printf("FAIL: expected exactly one sampler thread while tracking\n");
        failures++;
    }
    return failures ? 1 : 0;
}
