/* SPDX-License-Identifier: MIT */
/*
 * bench/daemon — what the daemon costs: a query through a mapped page
 * against an in-process query and clock_gettime, in the same run, and the
 * daemon's CPU time while 1 and while 16 client processes track one
 * controller.  Prints ratios; fails only when something does not work
 * (never on a figure).  Needs root (the daemon's run directory); skips
 * otherwise.
 *
 *   daemon [SECONDS_PER_CPU_WINDOW]      (default 4)
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "benchutil.h"
#include "usbtimesync/usbtimesync.h"

#ifndef USBTSD_PATH
#error "USBTSD_PATH must name the usbtimesyncd binary"
#endif

static char top[64], run_dir[96];
static volatile long long sink;

struct tracked {
    HANDLE dev;
    WINUSB_INTERFACE_HANDLE ih;
    HANDLE th;
};

static bool track(const char *spec, struct tracked *t)
{
    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION s = {NULL, FALSE};
    t->dev = usbts_open(spec);
    if (t->dev == INVALID_HANDLE_VALUE || !WinUsb_Initialize(t->dev, &t->ih) ||
        !WinUsb_StartTrackingForTimeSync(t->ih, &s)) {
        fprintf(stderr, "daemon bench: %s: %s\n", spec, usbts_last_error_message());
        return false;
    }
    t->th = s.TimeTrackingHandle;
    return true;
}

static struct tracked in_proc, via_page;

static void do_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    sink += ts.tv_nsec;
}

static void do_query(struct tracked *t)
{
    USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;
    q.TimeTrackingHandle = t->th;
    q.InputFrameNumber = 0;
    q.InputMicroFrameNumber = 0;
    if (!WinUsb_GetCurrentFrameNumberAndQpc(t->ih, &q))
        abort();
    sink += q.CurrentQueryPerformanceCounter.QuadPart;
}

static void do_in_proc(void)
{
    do_query(&in_proc);
}

static void do_page(void)
{
    do_query(&via_page);
}

static double batch_ns(void (*fn)(void), int n)
{
    double t0 = bench_now_s();
    for (int i = 0; i < n; i++)
        fn();
    return (bench_now_s() - t0) * 1e9 / n;
}

static pid_t spawn_daemon(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(USBTSD_PATH, "usbtimesyncd", "-r", run_dir, "--sim", (char *)NULL);
        _exit(127);
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s/socket", run_dir);
    for (int i = 0; i < 500; i++) {
        int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        bool ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
        close(fd);
        if (ok)
            return pid;
        usleep(10000);
    }
    return -1;
}

/* CPU seconds of the threads of pid (schedstat: ns, not clock ticks): all of
 * them, or only the main thread (which serves the socket; the samplers are
 * the others). */
static double cpu_s(pid_t pid, bool main_only)
{
    char path[96];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    double total = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || (main_only && atoi(e->d_name) != (int)pid))
            continue;
        char f[320];
        snprintf(f, sizeof f, "/proc/%d/task/%s/schedstat", (int)pid, e->d_name);
        FILE *fp = fopen(f, "re");
        unsigned long long ns = 0;
        if (fp) {
            if (fscanf(fp, "%llu", &ns) == 1)
                total += (double)ns / 1e9;
            fclose(fp);
        }
    }
    closedir(d);
    return total;
}

/* A client process: tracks sim-daemon and queries a thousand times a second. */
static pid_t spawn_client(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        struct tracked t;
        if (!track("sim-daemon", &t))
            _exit(1);
        for (;;) {
            do_query(&t);
            usleep(1000);
        }
    }
    return pid;
}

/* The daemon's CPU seconds per second with n clients tracking; *serving
 * gets its main thread's share. */
static double daemon_load(pid_t daemon, int n, double seconds, double *serving)
{
    pid_t c[16];
    for (int i = 0; i < n; i++)
        c[i] = spawn_client();
    usleep(1000000); /* every client registered, the estimator settled */
    double c0 = cpu_s(daemon, false), m0 = cpu_s(daemon, true), t0 = bench_now_s();
    usleep((useconds_t)(seconds * 1e6));
    double c1 = cpu_s(daemon, false), m1 = cpu_s(daemon, true), t1 = bench_now_s();
    *serving = (m1 - m0) / (t1 - t0);
    for (int i = 0; i < n; i++) {
        kill(c[i], SIGKILL);
        waitpid(c[i], NULL, 0);
    }
    usleep(300000);
    return (c1 - c0) / (t1 - t0);
}

int main(int argc, char **argv)
{
    double window = argc > 1 ? atof(argv[1]) : 4;
    if (!(window > 0))
        window = 4;
    if (geteuid() != 0) {
        printf("SKIP: bench daemon needs root (the daemon's run directory)\n");
        return 0;
    }
    snprintf(top, sizeof top, "/tmp/usbts-bench-XXXXXX");
    if (!mkdtemp(top))
        return 1;
    snprintf(run_dir, sizeof run_dir, "%s/run", top);
    unsetenv("USBTS_NO_DAEMON");
    setenv("USBTS_RUN_DIR", run_dir, 1);
    pid_t d = spawn_daemon();
    int rc = 0;
    if (d < 0 || !track("sim", &in_proc) || !track("sim-daemon", &via_page)) {
        rc = 1;
        goto out;
    }
    usleep(500000);
    /* Interleaved batches; the median of each contender. */
    enum { BATCHES = 41, N = 20000 };
    double clk[BATCHES], inp[BATCHES], pg[BATCHES];
    for (int b = 0; b < BATCHES; b++) {
        clk[b] = batch_ns(do_clock, N);
        inp[b] = batch_ns(do_in_proc, N);
        pg[b] = batch_ns(do_page, N);
    }
    double mc = bench_median(clk, BATCHES), mi = bench_median(inp, BATCHES), mp = bench_median(pg, BATCHES);
    printf("query cost (median of %d interleaved batches of %d)\n", BATCHES, N);
    printf("  clock_gettime            %7.1f ns  1.00x\n", mc);
    printf("  in-process query         %7.1f ns  %.2fx clock_gettime\n", mi, mi / mc);
    printf("  query through the page   %7.1f ns  %.2fx clock_gettime, %.2fx in-process (target <= 2x clock_gettime)\n",
           mp, mp / mc, mp / mi);
    usbts_close(via_page.dev);
    usbts_close(in_proc.dev);
    usleep(300000);

    double s1, s16;
    double l1 = daemon_load(d, 1, window, &s1), l16 = daemon_load(d, 16, window, &s16);
    printf("daemon CPU while clients track one controller (%.0f s windows; serving = its socket thread)\n", window);
    printf("   1 client : %6.3f%% of a CPU (serving %.4f%%)\n", l1 * 100, s1 * 100);
    printf("  16 clients: %6.3f%% of a CPU (serving %.4f%%)  (%.2fx one client; target: equal within 10%%)\n",
           l16 * 100, s16 * 100, l1 > 0 ? l16 / l1 : 0);
out:
    if (d > 0) {
        kill(d, SIGKILL);
        waitpid(d, NULL, 0);
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", top);
    if (system(cmd) != 0)
        rc = 1;
    return rc;
}
