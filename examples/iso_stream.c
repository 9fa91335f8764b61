/* SPDX-License-Identifier: MIT */
/*
 * iso_stream.c — isochronous packets on the host's timeline: streams from
 * (or to) a real isochronous endpoint through usbfs and prints, for every
 * packet, the USB frame it was scheduled in, when that frame started on the
 * host clock (CLOCK_MONOTONIC), and the bound.
 *
 * Linux never says which frame an isochronous URB went out in (usbfs does not
 * return start_frame; libusb has no field for it).  usbtimesync infers it from
 * the host times just before and after the SUBMITURB call and the xHCI
 * driver's scheduling rule; where the bracket admits more than one frame it
 * says so and gives the range.
 *
 *   cc iso_stream.c $(pkg-config --cflags --libs usbtimesync) -o iso_stream
 *   sudo ./iso_stream [options] DEVICE [DEVICE...]
 *
 * DEVICE: /dev/bus/usb/BBB/DDD, BUS:DEV or VID:PID.  Several devices stream
 * side by side, each tracked on its own controller.  Options:
 *   --interface N --alt N   the interface and alternate setting to use (default: the
 *                           first with an isochronous endpoint)
 *   --endpoint 0xNN         the endpoint (default: the first isochronous one there)
 *   --urbs N --packets N    how many URBs, packets per URB (default 20, 8)
 *   --detach                detach a kernel driver bound to the interface (never
 *                           done without this flag)
 *   --ist X --cfc 0|1       the controller's IST field and CFC, when its
 *                           registers cannot be read (default: read them)
 * OUT endpoints are sent silence (zeros); IN endpoints' data is discarded.
 */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/usbdevice_fs.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <usbtimesync/usbtimesync.h>
#include <usbtimesync/winusb.h>

#define MAX_DEVICES 8
#define DEPTH 3

struct options {
    int iface, alt, endpoint, urbs, packets, detach, ist, cfc;
};

struct stream {
    const char *spec;
    HANDLE dev;
    WINUSB_INTERFACE_HANDLE ih;
    HANDLE th;
    int fd;
    int iface, alt, ep, maxpacket;
    USBTS_ISO_STREAM iso;
    struct usbdevfs_urb *urb[DEPTH];
    unsigned char *buf[DEPTH];
    USBTS_ISO_RESULT res[DEPTH];
    USBTS_ISO_PACKET *pk[DEPTH];
    int submitted, reaped, inflight;
};

static int fail(const char *spec, const char *what)
{
    fprintf(stderr, "iso_stream: %s: %s: %s\n", spec, what, usbts_last_error_message());
    return -1;
}

/* The first isochronous endpoint matching the options, from the descriptors
 * usbfs returns on read(). */
static int find_endpoint(struct stream *s, const struct options *o, int *binterval)
{
    unsigned char d[8192];
    ssize_t n = pread(s->fd, d, sizeof d, 0);
    int iface = -1, alt = -1;
    for (ssize_t i = 0; n > 0 && i + 1 < n && d[i] >= 2; i += d[i]) {
        if (d[i + 1] == 4 && i + 3 < n) {
            iface = d[i + 2];
            alt = d[i + 3];
        } else if (d[i + 1] == 5 && i + 6 < n && (d[i + 3] & 3) == 1 && (o->iface < 0 || o->iface == iface) &&
                   (o->alt < 0 || o->alt == alt) && (o->endpoint < 0 || o->endpoint == d[i + 2])) {
            s->iface = iface;
            s->alt = alt;
            s->ep = d[i + 2];
            int w = d[i + 4] | d[i + 5] << 8;
            s->maxpacket = (w & 0x7FF) * (1 + ((w >> 11) & 3)); /* high bandwidth: up to 3 per microframe */
            *binterval = d[i + 6];
            return 0;
        }
    }
    return -1;
}

static int setup(struct stream *s, const struct options *o)
{
    s->dev = usbts_open(s->spec);
    if (s->dev == INVALID_HANDLE_VALUE)
        return fail(s->spec, "open");
    USBTS_DEVICE_INFO info;
    usbts_get_device_info(s->dev, &info);
    if (info.IsSimulated) {
        fprintf(stderr, "iso_stream: %s: a simulated controller has no endpoints to stream from; name a real device\n",
                s->spec);
        return -1;
    }
    char path[64];
    snprintf(path, sizeof path, "/dev/bus/usb/%03u/%03u", info.BusNumber, info.DeviceAddress);
    s->fd = open(path, O_RDWR | O_CLOEXEC);
    if (s->fd < 0) {
        fprintf(stderr, "iso_stream: %s: %s: %s (streaming needs write access to the usbfs node)\n", s->spec, path,
                strerror(errno));
        return -1;
    }
    int binterval;
    if (find_endpoint(s, o, &binterval) != 0) {
        fprintf(stderr, "iso_stream: %s: no isochronous endpoint matches\n", s->spec);
        return -1;
    }
    if (o->detach) {
        struct usbdevfs_ioctl cmd = {s->iface, USBDEVFS_DISCONNECT, NULL};
        if (ioctl(s->fd, USBDEVFS_IOCTL, &cmd) == 0)
            printf("# %s: detached the kernel driver of interface %d\n", s->spec, s->iface);
    }
    unsigned int ifno = (unsigned)s->iface;
    if (ioctl(s->fd, USBDEVFS_CLAIMINTERFACE, &ifno) != 0) {
        fprintf(stderr, "iso_stream: %s: cannot claim interface %d: %s%s\n", s->spec, s->iface, strerror(errno),
                errno == EBUSY ? " (a kernel driver has it: --detach takes it away)" : "");
        return -1;
    }
    struct usbdevfs_setinterface si = {(unsigned)s->iface, (unsigned)s->alt};
    if (ioctl(s->fd, USBDEVFS_SETINTERFACE, &si) != 0) {
        fprintf(stderr, "iso_stream: %s: SETINTERFACE %d/%d: %s\n", s->spec, s->iface, s->alt, strerror(errno));
        return -1;
    }

    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION st = {NULL, FALSE};
    if (!WinUsb_Initialize(s->dev, &s->ih) || !WinUsb_StartTrackingForTimeSync(s->ih, &st))
        return fail(s->spec, "start tracking");
    s->th = st.TimeTrackingHandle;
    usbts_get_device_info(s->dev, &info); /* now with the source tracking chose */
    USBTS_ISO_ENDPOINT ep = {info.Speed, (UCHAR)binterval, (UCHAR)o->ist, (BOOLEAN)o->cfc};
    USBTS_CONTROLLER_CAPS caps;
    if (o->ist < 0 || o->cfc < 0) {
        if (!usbts_get_controller_caps(s->dev, &caps))
            return fail(s->spec, "reading the controller's IST and CFC (give --ist and --cfc)");
        if (o->ist < 0)
            ep.Ist = caps.Ist;
        if (o->cfc < 0)
            ep.Cfc = caps.Cfc;
    }
    if (!usbts_iso_stream_init(&s->iso, &ep))
        return fail(s->spec, "endpoint");
    printf("# %s: %s endpoint 0x%02x (interface %d alt %d), bInterval %d, %d bytes; controller %s (source %s), IST "
           "0x%x, CFC %s\n",
           s->spec, info.Speed == FullSpeed ? "full-speed" : "high-speed", s->ep, s->iface, s->alt, binterval,
           s->maxpacket, info.Controller, info.Source, ep.Ist, ep.Cfc ? "yes" : "no");
    size_t urbsize = sizeof(struct usbdevfs_urb) + (size_t)o->packets * sizeof(struct usbdevfs_iso_packet_desc);
    for (int k = 0; k < DEPTH; k++) {
        s->urb[k] = calloc(1, urbsize);
        s->buf[k] = calloc((size_t)o->packets, (size_t)s->maxpacket);
        s->pk[k] = calloc((size_t)o->packets, sizeof(USBTS_ISO_PACKET));
        if (!s->urb[k] || !s->buf[k] || !s->pk[k])
            return -1;
    }
    return 0;
}

static int submit(struct stream *s, const struct options *o)
{
    int k = s->submitted % DEPTH;
    struct usbdevfs_urb *u = s->urb[k];
    memset(u, 0, sizeof *u);
    u->type = USBDEVFS_URB_TYPE_ISO;
    u->endpoint = (unsigned char)s->ep;
    u->flags = USBDEVFS_URB_ISO_ASAP;
    u->buffer = s->buf[k];
    u->buffer_length = o->packets * s->maxpacket;
    u->number_of_packets = o->packets;
    u->usercontext = (void *)(intptr_t)k;
    for (int i = 0; i < o->packets; i++)
        u->iso_frame_desc[i].length = (unsigned)s->maxpacket;
    USBTS_ISO_SUBMISSION sub = {0, 0, (ULONG)o->packets, (ULONG)s->inflight};
    usbts_now_ns(s->dev, &sub.BeforeNs); /* just before ... */
    int rc = ioctl(s->fd, USBDEVFS_SUBMITURB, u);
    usbts_now_ns(s->dev, &sub.AfterNs); /* ... and just after the submission */
    if (rc != 0) {
        fprintf(stderr, "iso_stream: %s: SUBMITURB: %s\n", s->spec, strerror(errno));
        return -1;
    }
    if (!usbts_iso_submitted(s->ih, s->th, &s->iso, &sub, &s->res[k], s->pk[k]))
        return fail(s->spec, "usbts_iso_submitted");
    s->submitted++;
    s->inflight++;
    return 0;
}

static void print_urb(const struct stream *s, int k, const struct usbdevfs_urb *u, int number)
{
    const USBTS_ISO_RESULT *r = &s->res[k];
    printf("%s urb %d: %s%s%s start_frame %u (mod %u)", s->spec, number,
           r->Flags & USBTS_ISO_CONTINUED ? "continues the stream," : "",
           r->Flags & USBTS_ISO_RESTARTED ? "started afresh," : "",
           r->Flags & USBTS_ISO_NEW_GENERATION ? " new generation," : "", (unsigned)r->KernelStartFrame,
           (unsigned)r->KernelModulus);
    if (r->Flags & USBTS_ISO_AMBIGUOUS)
        printf(", ambiguous: %u..%u", (unsigned)r->KernelStartEarliest, (unsigned)r->KernelStartLatest);
    printf(", status %d\n", u->status);
    for (int i = 0; i < u->number_of_packets; i++) {
        const USBTS_ISO_PACKET *p = &s->pk[k][i];
        printf("  packet %3d: frame %10u.%u  host %lld.%09lld s  +-%lld ns  %u bytes", i, (unsigned)p->UsbFrameNumber,
               (unsigned)p->MicroFrameNumber, (long long)(p->StartNs / 1000000000), (long long)(p->StartNs % 1000000000),
               (long long)p->BoundNs, u->iso_frame_desc[i].actual_length);
        if (p->Ambiguous)
            printf("  (one of %u.%u .. %u.%u)", (unsigned)p->EarliestFrame, (unsigned)p->EarliestMicroFrame,
                   (unsigned)p->LatestFrame, (unsigned)p->LatestMicroFrame);
        printf("\n");
    }
}

int main(int argc, char **argv)
{
    struct options o = {-1, -1, -1, 20, 8, 0, -1, -1};
    struct stream st[MAX_DEVICES];
    int n = 0;
    memset(st, 0, sizeof st);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int *opt = strcmp(a, "--interface") == 0 ? &o.iface
                   : strcmp(a, "--alt") == 0     ? &o.alt
                   : strcmp(a, "--endpoint") == 0 ? &o.endpoint
                   : strcmp(a, "--urbs") == 0     ? &o.urbs
                   : strcmp(a, "--packets") == 0  ? &o.packets
                   : strcmp(a, "--ist") == 0      ? &o.ist
                   : strcmp(a, "--cfc") == 0      ? &o.cfc
                                                  : NULL;
        if (opt && i + 1 < argc) {
            *opt = (int)strtol(argv[++i], NULL, 0);
        } else if (strcmp(a, "--detach") == 0) {
            o.detach = 1;
        } else if (a[0] != '-' && n < MAX_DEVICES) {
            st[n++].spec = a;
        } else {
            n = 0;
            break;
        }
    }
    if (n == 0 || o.packets < 1 || o.packets > 128 || o.urbs < 1) {
        fprintf(stderr, "usage: iso_stream [--interface N] [--alt N] [--endpoint 0xNN] [--urbs N] [--packets 1..128] "
                        "[--detach] [--ist X --cfc 0|1] DEVICE [DEVICE...]\n");
        return 2;
    }
    for (int d = 0; d < n; d++) {
        st[d].fd = -1;
        if (setup(&st[d], &o) != 0)
            return 1;
    }
    /* Half a second of tracking first: the frame model's bound is then a few
     * microseconds instead of tens. */
    usleep(500000);
    /* Every device keeps DEPTH URBs in flight; completions are reaped as
     * they come, from whichever device. */
    for (int d = 0; d < n; d++)
        while (st[d].inflight < DEPTH && st[d].submitted < o.urbs)
            if (submit(&st[d], &o) != 0)
                return 1;
    for (;;) {
        struct pollfd pf[MAX_DEVICES];
        int active = 0;
        for (int d = 0; d < n; d++) {
            pf[d] = (struct pollfd){st[d].fd, POLLOUT, 0};
            active += st[d].reaped < o.urbs;
        }
        if (!active)
            break;
        if (poll(pf, (nfds_t)n, 2000) <= 0) {
            fprintf(stderr, "iso_stream: no completion within 2 s\n");
            return 1;
        }
        for (int d = 0; d < n; d++) {
            struct usbdevfs_urb *u;
            while (st[d].reaped < o.urbs && ioctl(st[d].fd, USBDEVFS_REAPURBNDELAY, &u) == 0) {
                print_urb(&st[d], (int)(intptr_t)u->usercontext, u, st[d].reaped);
                st[d].reaped++;
                st[d].inflight--;
                if (st[d].submitted < o.urbs && submit(&st[d], &o) != 0)
                    return 1;
            }
        }
    }
    for (int d = 0; d < n; d++) {
        unsigned int ifno = (unsigned)st[d].iface;
        ioctl(st[d].fd, USBDEVFS_RELEASEINTERFACE, &ifno);
        close(st[d].fd);
        WinUsb_Free(st[d].ih);
        usbts_close(st[d].dev);
    }
    return 0;
}
