/* SPDX-License-Identifier: MIT */
/*
 * e2e_guest.c — runs inside a QEMU guest (real Debian kernel, qemu-xhci with
 * a USB keyboard and tablet), statically linked, as PID 1's child.
 *
 *   e2e_guest mmio|debugfs
 *
 * Tracks the keyboard through usbfs with the source the library chooses by
 * itself, and checks: that source is the expected one; frames advance at
 * 1000/s within 1000 ppm of CLOCK_MONOTONIC over 2.5 s (plus what the
 * clock reads bracketing the queries at each end leave uncertain), and every
 * query's microframe lies on that line; frame times are monotonic; a bound
 * is reported; QueryPerformanceCounter is CLOCK_MONOTONIC / 100.  Then
 * deauthorizes the keyboard (its calls must fail with
 * ERROR_DEVICE_NOT_CONNECTED, the tablet's keep working), unbinds and
 * rebinds xhci_hcd (the tablet's calls fail; a new open works under a
 * new generation).  Prints "E2E RESULT ..." with the figures, then
 * "E2E PASS" or "E2E FAIL: why"; exits 0 on a pass.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "usbtimesync/usbtimesync.h"
#include "usbtimesync/winusb.h"

static int failures;

static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("E2E FAIL: ");
    vprintf(fmt, ap);
    printf(" (last error %u: %s)\n", (unsigned)GetLastError(), usbts_last_error_message());
    va_end(ap);
    fflush(stdout);
    failures++;
}

static long long mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* One query with the clock read just before and just after it. */
struct bracketed {
    long long before, after, mf;
};

static long long width(const struct bracketed *b) { return b->after - b->before; }
static long long midpoint(const struct bracketed *b) { return b->before + width(b) / 2; }

/* The narrowest-bracketed of s[from, to), which is not empty. */
static struct bracketed tightest(const struct bracketed *s, int from, int to)
{
    struct bracketed best = s[from];
    for (int i = from + 1; i < to; i++)
        if (width(&s[i]) < width(&best))
            best = s[i];
    return best;
}

static int write_attr(const char *path, const char *value)
{
    FILE *f = fopen(path, "we");
    if (!f)
        return -1;
    int ok = fputs(value, f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static int read_int(const char *dir, const char *attr, int base)
{
    char path[512], buf[32];
    snprintf(path, sizeof path, "/sys/bus/usb/devices/%s/%s", dir, attr);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    char *ok = fgets(buf, sizeof buf, f);
    fclose(f);
    return ok ? (int)strtol(buf, NULL, base) : -1;
}

/* The QEMU devices (vendor 0627, product 0001), lowest bus:dev first. */
struct qdev {
    char name[64];
    int bus, dev;
};

static int find_qemu_devices(struct qdev *out, int max)
{
    int n = 0;
    DIR *d = opendir("/sys/bus/usb/devices");
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < max) {
        if (strchr(e->d_name, ':') || e->d_name[0] == '.')
            continue;
        if (read_int(e->d_name, "idVendor", 16) != 0x0627 || read_int(e->d_name, "idProduct", 16) != 0x0001)
            continue;
        if (strlen(e->d_name) >= sizeof out[n].name)
            continue;
        memcpy(out[n].name, e->d_name, strlen(e->d_name) + 1);
        out[n].bus = read_int(e->d_name, "busnum", 10);
        out[n].dev = read_int(e->d_name, "devnum", 10);
        n++;
    }
    closedir(d);
    for (int i = 0; i < n; i++) /* sort by bus:dev */
        for (int j = i + 1; j < n; j++)
            if (out[j].bus * 1000 + out[j].dev < out[i].bus * 1000 + out[i].dev) {
                struct qdev t = out[i];
                out[i] = out[j];
                out[j] = t;
            }
    return n;
}

static int wait_for_devices(struct qdev *out, int want, int timeout_ms)
{
    int n = 0;
    for (int waited = 0; waited <= timeout_ms; waited += 50) {
        n = find_qemu_devices(out, 4);
        if (n >= want)
            return n;
        sleep_ms(50);
    }
    return n;
}

struct opened {
    HANDLE dev;
    WINUSB_INTERFACE_HANDLE ih;
    HANDLE th;
};

static int open_track(const char *spec, struct opened *o, double *start_ms)
{
    o->dev = usbts_open(spec);
    if (o->dev == INVALID_HANDLE_VALUE) {
        fail("usbts_open(%s)", spec);
        return -1;
    }
    if (!WinUsb_Initialize(o->dev, &o->ih)) {
        fail("WinUsb_Initialize(%s)", spec);
        return -1;
    }
    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION st = {NULL, FALSE};
    long long t0 = mono_ns();
    if (!WinUsb_StartTrackingForTimeSync(o->ih, &st)) {
        fail("WinUsb_StartTrackingForTimeSync(%s)", spec);
        return -1;
    }
    if (start_ms)
        *start_ms = (double)(mono_ns() - t0) / 1e6;
    o->th = st.TimeTrackingHandle;
    return 0;
}

static BOOL query(const struct opened *o, USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION *q, ULONG frame)
{
    memset(q, 0, sizeof *q);
    q->TimeTrackingHandle = o->th;
    q->InputFrameNumber = frame;
    return WinUsb_GetCurrentFrameNumberAndQpc(o->ih, q);
}

/* A query reads no sysfs: it learns of a removal from the sampler thread,
 * which polls every 50 ms, so on an idle host the query fails ~50 ms after
 * the removal.  A guest vCPU starved by a busy host takes longer: retry every
 * 10 ms until the query fails, for at most 10 s.  Returns the ms waited. */
static int wait_query_fails(const struct opened *o)
{
    USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;
    int waited = 0;
    while (query(o, &q, 0) && waited < 10000) {
        sleep_ms(10);
        waited += 10;
    }
    return waited;
}

static int cmp_ulong(const void *a, const void *b)
{
    ULONG x = *(const ULONG *)a, y = *(const ULONG *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *expect = argc > 1 ? argv[1] : "";
    struct qdev qd[4];
    int n = wait_for_devices(qd, 2, 30000);
    if (n < 2) {
        fail("found %d QEMU USB devices (0627:0001), want the keyboard and the tablet", n);
        return 1;
    }
    printf("E2E devices: keyboard %s (%d:%d), tablet %s (%d:%d)\n", qd[0].name, qd[0].bus, qd[0].dev, qd[1].name,
           qd[1].bus, qd[1].dev);

    /* ---- QueryPerformanceCounter is CLOCK_MONOTONIC / 100 ---- */
    for (int i = 0; i < 1000; i++) {
        long long a = mono_ns();
        LARGE_INTEGER qpc, f;
        QueryPerformanceCounter(&qpc);
        long long b = mono_ns();
        QueryPerformanceFrequency(&f);
        if (qpc.QuadPart < a / 100 || qpc.QuadPart > b / 100 || f.QuadPart != 10000000) {
            fail("QPC %lld outside CLOCK_MONOTONIC/100 [%lld, %lld] or frequency %lld", (long long)qpc.QuadPart,
                 a / 100, b / 100, (long long)f.QuadPart);
            break;
        }
    }

    /* ---- without tracking, the frame number is one register read ---- */
    {
        HANDLE d = usbts_open("0627:0001");
        WINUSB_INTERFACE_HANDLE ih;
        ULONG f1 = 0, f2 = 0;
        LARGE_INTEGER t1, t2;
        /* The register latched, and the TimeStamp was taken, within the call:
         * a vCPU descheduled inside a call (TCG on a busy host) widens the
         * tolerance by what the call took. */
        long long a0 = 0, a1 = 0, b0 = 0, b1 = 0;
        /* The first call opens the frame-clock source; time the later ones. */
        if (d == INVALID_HANDLE_VALUE || !WinUsb_Initialize(d, &ih) || !WinUsb_GetCurrentFrameNumber(ih, &f1, &t1) ||
            (a0 = mono_ns(), !WinUsb_GetCurrentFrameNumber(ih, &f1, &t1))) {
            fail("GetCurrentFrameNumber without tracking");
        } else {
            a1 = mono_ns();
            sleep_ms(100);
            b0 = mono_ns();
            if (!WinUsb_GetCurrentFrameNumber(ih, &f2, &t2))
                fail("second GetCurrentFrameNumber");
            b1 = mono_ns();
            double ms = (double)(t2.QuadPart - t1.QuadPart) / 1e4;
            double call_ms = (double)(a1 - a0 + b1 - b0) / 1e6;
            long long moved = (long long)(f2 - f1);
            if ((double)llabs(moved - (long long)(ms + 0.5)) > 2 + call_ms)
                fail("the frame moved by %lld in %.1f ms (the calls took %.3f ms)", moved, ms, call_ms);
            printf("E2E GetCurrentFrameNumber without tracking: %lld frames in %.1f ms (the calls took %.3f ms)\n",
                   moved, ms, call_ms);
        }
        if (d != INVALID_HANDLE_VALUE)
            usbts_close(d);
    }

    /* ---- track the keyboard (by vid:pid) and the tablet (by usbfs path) ---- */
    struct opened kbd, tab;
    char tab_spec[64];
    snprintf(tab_spec, sizeof tab_spec, "/dev/bus/usb/%03d/%03d", qd[1].bus, qd[1].dev);
    double start_ms = 0;
    if (open_track("0627:0001", &kbd, &start_ms) || open_track(tab_spec, &tab, NULL))
        return 1;
    USBTS_DEVICE_INFO di;
    usbts_get_device_info(kbd.dev, &di);
    printf("E2E tracking: controller %s driver %s source %s speed %u, Start took %.2f ms\n", di.Controller, di.Driver,
           di.Source, (unsigned)di.Speed, start_ms);
    if (strcmp(di.Source, expect) != 0)
        fail("source %s, expected %s", di.Source, expect);
    if (di.VendorId != 0x0627 || di.BusNumber != qd[0].bus || di.DeviceAddress != qd[0].dev)
        fail("device info names %04x:%04x at %u:%u", di.VendorId, di.ProductId, di.BusNumber, di.DeviceAddress);

    enum { MAXQ = 1000 }; /* more than 2.5 s of 5 ms sleeps: the loop ends on time */
    static ULONG bounds[MAXQ];
    static struct bracketed samples[MAXQ];
    long long prev_qpc = 0;
    ULONG gen = 0;
    int nq = 0;
    long long t_end = mono_ns() + 2500000000LL;
    while (mono_ns() < t_end && nq < MAXQ) {
        USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;
        long long before = mono_ns();
        if (!query(&kbd, &q, 0)) {
            fail("query %d", nq);
            break;
        }
        long long after = mono_ns();
        long long mf = (long long)q.CurrentUSBFrameNumber * 8 + q.CurrentHardwareMicroFrameNumber;
        long long cur = q.CurrentQueryPerformanceCounter.QuadPart;
        samples[nq] = (struct bracketed){before, after, mf};
        if (nq == 0) {
            gen = q.CurrentGenerationID;
        } else if (q.CurrentGenerationID != gen) {
            fail("generation changed from %u to %u while tracking", (unsigned)gen, (unsigned)q.CurrentGenerationID);
        }
        if (cur < prev_qpc)
            fail("frame times went back: %lld after %lld", cur, prev_qpc);
        if (q.PredictedAccuracyInMicroSeconds == 0)
            fail("no accuracy bound");
        /* the current microframe started before the call returned, give or take the bound */
        if (cur * 100 > after + 1000LL * q.PredictedAccuracyInMicroSeconds)
            fail("current microframe starts %lld ns after the call returned", cur * 100 - after);
        /* frame N's microframe 0 is no later than the current microframe */
        USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q2;
        if (query(&kbd, &q2, q.CurrentUSBFrameNumber) &&
            q2.QueryPerformanceCounterAtInputFrameOrMicroFrame.QuadPart > cur + q.PredictedAccuracyInMicroSeconds * 10)
            fail("frame %u starts after its microframe %u", (unsigned)q.CurrentUSBFrameNumber,
                 (unsigned)q.CurrentHardwareMicroFrameNumber);
        prev_qpc = cur;
        bounds[nq++] = q.PredictedAccuracyInMicroSeconds;
        sleep_ms(5);
    }
    if (nq < 2) {
        fail("only %d queries answered", nq);
        return 1;
    }
    /* The rate over the run, from the best-bracketed query of the first and
     * of the last tenth: a guest vCPU descheduled between a query and the
     * clock read after it (TCG on a busy host) must not pass for a fast bus. */
    int tenth = nq >= 10 ? nq / 10 : 1;
    struct bracketed s0 = tightest(samples, 0, tenth), s1 = tightest(samples, nq - tenth, nq);
    double tracked_s = (double)(samples[nq - 1].after - samples[0].before) / 1e9;
    double span_s = (double)(midpoint(&s1) - midpoint(&s0)) / 1e9;
    double frames_per_s = (double)(s1.mf - s0.mf) / 8.0 / span_s;
    double rate_ppm = (frames_per_s / 1000.0 - 1.0) * 1e6;
    /* Each end's microframe was current somewhere in its bracket and began
     * up to one microframe before: the half-brackets and 125 us widen the
     * 1000 ppm that real crystals stay within. */
    double slack_ppm = ((double)(width(&s0) + width(&s1)) / 2 + 125000.0) / (span_s * 1e9) * 1e6;
    /* Every query's microframe lies on that line: it was current somewhere in
     * the query's own bracket, give or take its bound, the ends' brackets and
     * a microframe each way.  A model wrong by a few microframes in mid-run
     * (a bad extension, a stale fit) fails here even when the ends agree. */
    double mf_per_ns = (double)(s1.mf - s0.mf) / (double)(midpoint(&s1) - midpoint(&s0));
    int off_line = 0;
    for (int i = 0; i < nq; i++) {
        double tol = 2 + ((double)bounds[i] * 1000 + (double)(width(&s0) + width(&s1)) / 2) / 125000.0;
        double lo = (double)s0.mf + (double)(samples[i].before - midpoint(&s0)) * mf_per_ns - tol;
        double hi = (double)s0.mf + (double)(samples[i].after - midpoint(&s0)) * mf_per_ns + tol;
        if ((double)samples[i].mf < lo || (double)samples[i].mf > hi) {
            if (off_line++ == 0)
                fail("query %d named microframe %lld, off the run's line [%.1f, %.1f]", i, samples[i].mf, lo, hi);
        }
    }
    qsort(bounds, (size_t)nq, sizeof bounds[0], cmp_ulong);
    USBTS_TRACKING_STATS ts;
    usbts_get_tracking_stats(kbd.dev, &ts);
    printf("E2E RESULT source=%s span_s=%.3f frames_per_s=%.3f rate_ppm=%+.1f (ends bracketed by %lld and %lld "
           "ns) fitted_rate_ppm=%+.1f bracket_ns=%lld bound_us_median=%u bound_us_p99=%u bound_us_max=%u "
           "captures=%llu reads=%llu start_ms=%.2f\n",
           di.Source, span_s, frames_per_s, rate_ppm, width(&s0), width(&s1), ts.RatePpm, (long long)ts.BracketNs,
           (unsigned)bounds[nq / 2], (unsigned)bounds[nq * 99 / 100], (unsigned)bounds[nq - 1],
           (unsigned long long)ts.Captures, (unsigned long long)ts.Reads, start_ms);
    if (tracked_s < 2.0)
        fail("tracked for only %.2f s", tracked_s);
    if (rate_ppm < -1000 - slack_ppm || rate_ppm > 1000 + slack_ppm)
        fail("frames advance at %.3f per second: %+.1f ppm from 1000/s (allowed 1000 + %.1f)", frames_per_s,
             rate_ppm, slack_ppm);
    if (ts.BracketNs <= 0 || ts.Captures == 0)
        fail("no captures (%llu) or bracket width (%lld ns)", (unsigned long long)ts.Captures,
             (long long)ts.BracketNs);

    /* ---- deauthorize the keyboard ---- */
    char path[512];
    snprintf(path, sizeof path, "/sys/bus/usb/devices/%s/authorized", qd[0].name);
    if (write_attr(path, "0\n") != 0)
        fail("cannot write %s: %s", path, strerror(errno));
    USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;
    int noticed_ms = wait_query_fails(&kbd);
    SetLastError(0);
    if (query(&kbd, &q, 0) || GetLastError() != ERROR_DEVICE_NOT_CONNECTED)
        fail("a deauthorized keyboard's query gave %u", (unsigned)GetLastError());
    ULONG frame;
    LARGE_INTEGER stamp;
    SetLastError(0);
    if (WinUsb_GetCurrentFrameNumber(kbd.ih, &frame, &stamp) || GetLastError() != ERROR_DEVICE_NOT_CONNECTED)
        fail("a deauthorized keyboard's GetCurrentFrameNumber gave %u", (unsigned)GetLastError());
    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION st = {NULL, TRUE};
    SetLastError(0);
    if (WinUsb_StartTrackingForTimeSync(kbd.ih, &st) || GetLastError() != ERROR_DEVICE_NOT_CONNECTED)
        fail("a deauthorized keyboard's Start gave %u", (unsigned)GetLastError());
    if (!query(&tab, &q, 0))
        fail("the tablet stopped answering when the keyboard was deauthorized");
    ULONG gen1 = q.CurrentGenerationID;
    printf("E2E deauthorized the keyboard: its calls fail with ERROR_DEVICE_NOT_CONNECTED (queries after ~%d ms), "
           "the tablet's work (generation %u)\n",
           noticed_ms, (unsigned)gen1);

    /* ---- unbind and rebind the controller ---- */
    char ctl[64];
    snprintf(ctl, sizeof ctl, "%s", di.Controller);
    if (write_attr("/sys/bus/pci/drivers/xhci_hcd/unbind", ctl) != 0)
        fail("cannot unbind %s: %s", ctl, strerror(errno));
    noticed_ms = wait_query_fails(&tab);
    SetLastError(0);
    if (query(&tab, &q, 0) || GetLastError() != ERROR_DEVICE_NOT_CONNECTED)
        fail("the tablet's query after unbind gave %u", (unsigned)GetLastError());
    printf("E2E unbound %s: the tablet's queries fail after ~%d ms\n", di.Controller, noticed_ms);
    if (write_attr("/sys/bus/pci/drivers/xhci_hcd/bind", ctl) != 0)
        fail("cannot bind %s: %s", ctl, strerror(errno));
    n = wait_for_devices(qd, 2, 30000);
    if (n < 2) {
        fail("after rebind, %d QEMU devices came back", n);
        return 1;
    }
    struct opened again;
    if (open_track("0627:0001", &again, NULL))
        return 1;
    USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION a, b;
    long long a0 = mono_ns();
    BOOL ok = query(&again, &a, 0);
    long long a1 = mono_ns();
    sleep_ms(100);
    long long b0 = mono_ns();
    ok = ok && query(&again, &b, 0);
    long long b1 = mono_ns();
    long long moved = ((long long)b.CurrentUSBFrameNumber - (long long)a.CurrentUSBFrameNumber);
    /* between the two queries, at least b0 - a1 and at most b1 - a0 passed */
    double least_ms = (double)(b0 - a1) / 1e6, most_ms = (double)(b1 - a0) / 1e6;
    if (!ok)
        fail("queries after rebind");
    else if (b.CurrentGenerationID == gen1 || a.CurrentGenerationID == gen1)
        fail("the rebound controller kept generation %u", (unsigned)gen1);
    else if (moved < (long long)least_ms - 2 || moved > (long long)most_ms + 2)
        fail("after rebind, %.1f to %.1f ms moved the frame by %lld", least_ms, most_ms, moved);
    printf("E2E rebound %s: a new open tracks under generation %u (was %u), %.1f ms = %lld frames\n", ctl,
           (unsigned)b.CurrentGenerationID, (unsigned)gen1, (least_ms + most_ms) / 2, moved);
    usbts_close(again.dev);
    usbts_close(kbd.dev);
    usbts_close(tab.dev);
    if (failures == 0)
        printf("E2E PASS source=%s\n", expect);
    return failures ? 1 : 0;
}
