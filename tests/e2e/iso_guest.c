/* SPDX-License-Identifier: MIT */
/*
 * iso_guest.c — runs inside a QEMU guest (Debian's kernel, qemu-xhci with
 * QEMU's usb-audio), statically linked; the kernel's own record is the truth.
 *
 *   iso_guest [URBS]
 *
 * Finds the device with an isochronous OUT endpoint (usb-audio: interface 1,
 * alternate 1, endpoint 0x01, full speed), claims it through usbfs, tracks
 * its controller, and streams URBs of silence.  Each SUBMITURB is bracketed
 * by clock reads and placed by usbts_iso_submitted.  usbmon's text interface
 * (debugfs usb/usbmon/<bus>u) prints the start_frame the xHCI driver chose on
 * each completion ('C') line; submission and completion lines are paired by
 * URB tag, and the k-th submission on the endpoint is the k-th URB streamed.
 *
 * Checks: no URB's start_frame (modulo 2048) lies outside its reported range;
 * at least 50 unambiguous URBs are exactly right; and the same comparison
 * against start_frame + 1 fails (the test can see an off-by-one).  Prints
 * "E2E RESULT ..." with the figures, then "E2E PASS" or "E2E FAIL: why".
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/usbdevice_fs.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "usbtimesync/usbtimesync.h"
#include "usbtimesync/winusb.h"

#define PACKETS 8
#define DEPTH 2
#define MAX_URBS 2000

static int failures;

static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("E2E FAIL: ");
    vprintf(fmt, ap);
    printf(" (errno %d, last error %u: %s)\n", errno, (unsigned)GetLastError(), usbts_last_error_message());
    va_end(ap);
    fflush(stdout);
    failures++;
}

/* An isochronous OUT endpoint found in the device's descriptors. */
struct iso_ep {
    int iface, alt, ep, bInterval, maxpacket;
};

/* usbfs gives the device and configuration descriptors on read(). */
static int find_iso_out(int fd, struct iso_ep *out)
{
    unsigned char d[4096];
    ssize_t n = pread(fd, d, sizeof d, 0);
    int iface = -1, alt = -1;
    for (ssize_t i = 0; n > 0 && i + 1 < n && d[i] >= 2; i += d[i]) {
        if (d[i + 1] == 4 && i + 3 < n) { /* interface */
            iface = d[i + 2];
            alt = d[i + 3];
        } else if (d[i + 1] == 5 && i + 6 < n && (d[i + 3] & 3) == 1 && !(d[i + 2] & 0x80)) {
            out->iface = iface;
            out->alt = alt;
            out->ep = d[i + 2];
            out->maxpacket = (d[i + 4] | d[i + 5] << 8) & 0x7FF;
            out->bInterval = d[i + 6];
            return 0;
        }
    }
    return -1;
}

/* usbmon: the k-th submission line on our endpoint and its completion. */
struct mon_urb {
    char tag[32];
    int start_frame; /* from the completion line; -1 until then */
};
static struct mon_urb mon[MAX_URBS + 64];
static int nmon;
static char monbuf[65536];
static size_t monlen;

static void mon_line(const char *line, const char *addr)
{
    char tag[32], ts[32], type[4], a[32], st[64];
    if (sscanf(line, "%31s %31s %3s %31s %63s", tag, ts, type, a, st) != 5 || strcmp(a, addr) != 0)
        return;
    if (strcmp(type, "S") == 0 && nmon < (int)(sizeof mon / sizeof mon[0])) {
        snprintf(mon[nmon].tag, sizeof mon[nmon].tag, "%s", tag);
        mon[nmon++].start_frame = -1;
    } else if (strcmp(type, "C") == 0) {
        int status, interval, sf, errs;
        if (sscanf(st, "%d:%d:%d:%d", &status, &interval, &sf, &errs) != 4)
            return;
        for (int k = 0; k < nmon; k++)
            if (mon[k].start_frame < 0 && strcmp(mon[k].tag, tag) == 0) {
                mon[k].start_frame = sf;
                break;
            }
    }
}

static void mon_drain(int mfd, const char *addr)
{
    for (;;) {
        ssize_t r = read(mfd, monbuf + monlen, sizeof monbuf - 1 - monlen);
        if (r <= 0)
            return;
        monlen += (size_t)r;
        monbuf[monlen] = '\0';
        char *start = monbuf, *nl;
        while ((nl = strchr(start, '\n'))) {
            *nl = '\0';
            mon_line(start, addr);
            start = nl + 1;
        }
        monlen = strlen(start);
        memmove(monbuf, start, monlen + 1);
    }
}

static LONGLONG now_ns(HANDLE dev)
{
    LONGLONG t = 0;
    usbts_now_ns(dev, &t);
    return t;
}

static bool in_range(unsigned v, unsigned lo, unsigned hi)
{
    return ((v - lo) & 2047u) <= ((hi - lo) & 2047u);
}

struct placed {
    USBTS_ISO_RESULT res;
    LONGLONG bracket_ns;
};
static struct placed placed[MAX_URBS];

int main(int argc, char **argv)
{
    int urbs = argc > 1 ? atoi(argv[1]) : 300;
    if (urbs < 1 || urbs > MAX_URBS)
        urbs = 300;
    /* The device with an isochronous OUT endpoint. */
    char path[64] = "";
    int fd = -1, bus = 0, devnum = 0;
    struct iso_ep ep = {0, 0, 0, 0, 0};
    DIR *dir = opendir("/dev/bus/usb");
    struct dirent *b, *e;
    while (dir && fd < 0 && (b = readdir(dir))) {
        if (b->d_name[0] == '.')
            continue;
        char bdir[300];
        snprintf(bdir, sizeof bdir, "/dev/bus/usb/%s", b->d_name);
        DIR *dd = opendir(bdir);
        while (dd && fd < 0 && (e = readdir(dd))) {
            if (e->d_name[0] == '.')
                continue;
            snprintf(path, sizeof path, "/dev/bus/usb/%.3s/%.3s", b->d_name, e->d_name);
            int f = open(path, O_RDWR | O_CLOEXEC);
            if (f >= 0 && find_iso_out(f, &ep) == 0) {
                fd = f;
                bus = atoi(b->d_name);
                devnum = atoi(e->d_name);
            } else if (f >= 0) {
                close(f);
            }
        }
        if (dd)
            closedir(dd);
    }
    if (dir)
        closedir(dir);
    if (fd < 0) {
        fail("no device with an isochronous OUT endpoint under /dev/bus/usb");
        return 1;
    }
    printf("E2E iso: %s interface %d alt %d endpoint 0x%02x bInterval %d maxpacket %d\n", path, ep.iface, ep.alt,
           ep.ep, ep.bInterval, ep.maxpacket);

    HANDLE dev = usbts_open(path);
    WINUSB_INTERFACE_HANDLE ih;
    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION st = {NULL, FALSE};
    if (dev == INVALID_HANDLE_VALUE || !WinUsb_Initialize(dev, &ih) || !WinUsb_StartTrackingForTimeSync(ih, &st)) {
        fail("tracking %s", path);
        return 1;
    }
    USBTS_DEVICE_INFO info;
    usbts_get_device_info(dev, &info);
    USBTS_CONTROLLER_CAPS caps;
    if (!usbts_get_controller_caps(dev, &caps)) {
        fail("usbts_get_controller_caps");
        return 1;
    }
    printf("E2E iso: controller %s source %s speed %u HCSPARAMS2 0x%08x HCCPARAMS1 0x%08x: IST %u microframes, CFC "
           "%s\n",
           info.Controller, info.Source, (unsigned)info.Speed, (unsigned)caps.HcsParams2, (unsigned)caps.HccParams1,
           (unsigned)caps.IstMicroFrames, caps.Cfc ? "yes" : "no");

    /* A kernel driver (snd-usb-audio) would be detached only if loaded; this
     * boot loads none. */
    unsigned int ifno = (unsigned)ep.iface;
    struct usbdevfs_setinterface si = {(unsigned)ep.iface, (unsigned)ep.alt};
    if (ioctl(fd, USBDEVFS_CLAIMINTERFACE, &ifno) != 0 || ioctl(fd, USBDEVFS_SETINTERFACE, &si) != 0) {
        fail("claiming interface %d alt %d", ep.iface, ep.alt);
        return 1;
    }
    char monpath[64], addr[32];
    snprintf(monpath, sizeof monpath, "/sys/kernel/debug/usb/usbmon/%du", bus);
    snprintf(addr, sizeof addr, "Zo:%d:%03d:%d", bus, devnum, ep.ep & 0x0F);
    int mfd = open(monpath, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (mfd < 0) {
        fail("opening %s (usbmon loaded? debugfs mounted?)", monpath);
        return 1;
    }

    USBTS_ISO_ENDPOINT iep = {info.Speed, (UCHAR)ep.bInterval, caps.Ist, caps.Cfc};
    USBTS_ISO_STREAM stream;
    if (!usbts_iso_stream_init(&stream, &iep)) {
        fail("usbts_iso_stream_init");
        return 1;
    }
    size_t urbsize = sizeof(struct usbdevfs_urb) + PACKETS * sizeof(struct usbdevfs_iso_packet_desc);
    struct usbdevfs_urb *slot[DEPTH];
    static unsigned char silence[DEPTH][PACKETS * 1024];
    for (int k = 0; k < DEPTH; k++)
        slot[k] = calloc(1, urbsize);
    /* How many placements come out unambiguous depends on how the guest was
     * scheduled around each SUBMITURB: a bracket a busy host stretched across
     * the frames the driver could have chosen is ambiguous.  So while fewer
     * than UNAMBIGUOUS_WANTED of those streamed are unambiguous (50 must
     * match usbmon exactly, and a few may go unseen by it), the stream goes
     * on, up to MAX_URBS in all. */
    enum { UNAMBIGUOUS_WANTED = 60 };
    int submitted = 0, reaped = 0, inflight = 0, unambiguous = 0, asked = urbs;
    while (reaped < urbs) {
        if (submitted == urbs && unambiguous < UNAMBIGUOUS_WANTED && urbs < MAX_URBS)
            urbs++;
        while (inflight < DEPTH && submitted < urbs) {
            struct usbdevfs_urb *u = slot[submitted % DEPTH];
            memset(u, 0, urbsize);
            u->type = USBDEVFS_URB_TYPE_ISO;
            u->endpoint = (unsigned char)ep.ep;
            u->flags = USBDEVFS_URB_ISO_ASAP;
            u->buffer = silence[submitted % DEPTH];
            u->buffer_length = PACKETS * ep.maxpacket;
            u->number_of_packets = PACKETS;
            u->usercontext = (void *)(intptr_t)submitted;
            for (int i = 0; i < PACKETS; i++)
                u->iso_frame_desc[i].length = (unsigned)ep.maxpacket;
            USBTS_ISO_SUBMISSION sub = {0, 0, PACKETS, (ULONG)inflight};
            sub.BeforeNs = now_ns(dev);
            int rc = ioctl(fd, USBDEVFS_SUBMITURB, u);
            sub.AfterNs = now_ns(dev);
            if (rc != 0) {
                fail("SUBMITURB %d", submitted);
                return 1;
            }
            if (!usbts_iso_submitted(ih, st.TimeTrackingHandle, &stream, &sub, &placed[submitted].res, NULL)) {
                fail("usbts_iso_submitted %d", submitted);
                return 1;
            }
            placed[submitted].bracket_ns = sub.AfterNs - sub.BeforeNs;
            unambiguous += !(placed[submitted].res.Flags & USBTS_ISO_AMBIGUOUS);
            submitted++;
            inflight++;
        }
        struct usbdevfs_urb *done = NULL;
        if (ioctl(fd, USBDEVFS_REAPURB, &done) != 0) {
            fail("REAPURB");
            return 1;
        }
        reaped++;
        inflight--;
        mon_drain(mfd, addr);
    }
    if (urbs > asked)
        printf("E2E iso: streamed %d URBs, not %d, for %d unambiguous placements\n", urbs, asked, unambiguous);
    for (int k = 0; k < 50; k++) { /* the last completion lines */
        mon_drain(mfd, addr);
        usleep(10000);
    }

    /* The comparison, and the same one a frame off. */
    int matched = 0, ambiguous = 0, exact = 0, outside = 0, shifted_outside = 0, shifted_exact = 0, confirmed = 0;
    LONGLONG wmax = 0, wsum = 0;
    for (int k = 0; k < urbs && k < nmon; k++) {
        const USBTS_ISO_RESULT *r = &placed[k].res;
        if (mon[k].start_frame < 0)
            continue;
        matched++;
        unsigned truth = (unsigned)mon[k].start_frame & 2047u, off = (truth + 1) & 2047u;
        bool amb = (r->Flags & USBTS_ISO_AMBIGUOUS) != 0;
        ambiguous += amb;
        wsum += placed[k].bracket_ns;
        wmax = placed[k].bracket_ns > wmax ? placed[k].bracket_ns : wmax;
        outside += !in_range(truth, r->KernelStartEarliest, r->KernelStartLatest);
        shifted_outside += !in_range(off, r->KernelStartEarliest, r->KernelStartLatest);
        if (!amb) {
            exact += r->KernelStartFrame == truth;
            shifted_exact += r->KernelStartFrame == off;
        }
        confirmed += usbts_iso_confirm(ih, st.TimeTrackingHandle, r) ? 1 : 0;
        if (k < 5 || !in_range(truth, r->KernelStartEarliest, r->KernelStartLatest))
            printf("E2E iso: urb %d usbmon start_frame %d (mod 2048: %u) inferred %u range [%u, %u]%s bracket %lld us\n",
                   k, mon[k].start_frame, truth, (unsigned)r->KernelStartFrame, (unsigned)r->KernelStartEarliest,
                   (unsigned)r->KernelStartLatest, amb ? " ambiguous" : "", (long long)placed[k].bracket_ns / 1000);
    }
    printf("E2E RESULT iso: %d URBs streamed, %d submissions seen by usbmon, %d matched; %d unambiguous of which %d "
           "equal usbmon's start_frame; %d ambiguous; %d outside the reported range; shifted by one frame: %d "
           "outside, %d unambiguous equal; submit bracket mean %lld us, max %lld us; %d confirmed\n",
           urbs, nmon, matched, matched - ambiguous, exact, ambiguous, outside, shifted_outside, shifted_exact,
           (long long)(matched ? wsum / matched / 1000 : 0), (long long)wmax / 1000, confirmed);
    if (matched < urbs * 9 / 10)
        fail("usbmon showed only %d of %d URBs", matched, urbs);
    if (outside != 0)
        fail("%d URBs' start_frame outside the reported range", outside);
    if (exact < 50)
        fail("only %d unambiguous URBs equal usbmon's start_frame (need 50)", exact);
    if (exact != matched - ambiguous)
        fail("%d unambiguous URBs differ from usbmon", matched - ambiguous - exact);
    /* The comparison must be able to fail: a frame off, it does. */
    if (shifted_outside == 0 || shifted_exact >= 50)
        fail("the comparison shifted by one frame still passes (%d outside, %d equal)", shifted_outside,
             shifted_exact);
    if (failures == 0)
        printf("E2E PASS iso\n");
    return failures ? 1 : 0;
}
