/* SPDX-License-Identifier: MIT */
/*
 * uvc_timestamps.c — each video frame's start of exposure on the host clock,
 * from a UVC camera's own timestamps, with a bound.
 *
 * The uvcvideo driver gives every payload header to user space on the
 * camera's metadata node (V4L2_META_FMT_UVC): one metadata buffer per video
 * frame, holding the headers that carried a new SCR, each after the host's
 * reception time and frame number.  This program streams the video node and
 * the metadata node together, hands each metadata buffer to usbts_uvc_add_meta
 * and asks usbts_uvc_frame for the frame's start of exposure:
 *
 *   uvc_timestamps /dev/video0 /dev/video1 CLOCK_HZ [FRAMES]
 *
 * CLOCK_HZ is the camera's dwClockFrequency (lsusb -v prints it in the
 * VideoControl interface header).  The USB device is found from the video
 * node in sysfs; tracking its controller needs what usbtimesync needs (root or
 * usbtimesyncd).  Each line: the video buffer's sequence, the kernel's own
 * timestamp, ours, our bound, and flags.
 *
 * No emulator offers a UVC camera, so the same parsing also runs on recorded
 * metadata buffers (a 4-byte little-endian bytesused, then the buffer, per
 * frame) against a simulated controller's virtual clock, which is moved to
 * each buffer's reception times first:
 *
 *   uvc_timestamps --replay FILE SPEC CLOCK_HZ
 *
 * Built as README.md says:
 *   cc examples/uvc_timestamps.c $(pkg-config --cflags --libs usbtimesync) -o uvc_timestamps
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/videodev2.h>
#include <usbtimesync/usbtimesync.h>
#include <usbtimesync/winusb.h>

#define MAX_META 65536
#define NBUF 4

static int fail(const char *what)
{
    fprintf(stderr, "uvc_timestamps: %s: %s (error %u)\n", what, usbts_last_error_message(),
            (unsigned)GetLastError());
    return 1;
}

static void print_frame(unsigned long seq, long long kernel_ns, const USBTS_UVC_FRAME *f)
{
    printf("frame %lu kernel_ns %lld start_ns %lld bound_ns %lld gen %u flags %s%s%s%s\n", seq, kernel_ns,
           (long long)f->StartNs, (long long)f->BoundNs, (unsigned)f->GenerationId,
           f->Flags & USBTS_UVC_FALLBACK ? "fallback," : "", f->Flags & USBTS_UVC_JUNK_SOF ? "junk-sof," : "",
           f->Flags & USBTS_UVC_NEW_GENERATION ? "new-generation," : "", f->Flags ? "" : "-");
}

/* The tracking handles for a spec. */
static int start(const char *spec, HANDLE *dev, WINUSB_INTERFACE_HANDLE *ih, HANDLE *th)
{
    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION st = {NULL, FALSE};
    *dev = usbts_open(spec);
    if (*dev == INVALID_HANDLE_VALUE || !WinUsb_Initialize(*dev, ih) || !WinUsb_StartTrackingForTimeSync(*ih, &st))
        return fail(spec);
    *th = st.TimeTrackingHandle;
    return 0;
}

/* ---- replay: recorded metadata buffers on a simulated controller ---------- */

static int replay(const char *file, const char *spec, ULONG hz)
{
    FILE *in = fopen(file, "rb");
    if (!in) {
        fprintf(stderr, "uvc_timestamps: %s: %s\n", file, strerror(errno));
        return 1;
    }
    HANDLE dev;
    WINUSB_INTERFACE_HANDLE ih;
    HANDLE th;
    if (start(spec, &dev, &ih, &th))
        return 1;
    USBTS_UVC *u = usbts_uvc_create(hz, 0);
    if (!u)
        return fail("usbts_uvc_create");
    static unsigned char buf[MAX_META];
    unsigned char len4[4];
    unsigned long seq = 0;
    int rc = 0;
    while (fread(len4, 1, 4, in) == 4) {
        uint32_t len = (uint32_t)len4[0] | (uint32_t)len4[1] << 8 | (uint32_t)len4[2] << 16 | (uint32_t)len4[3] << 24;
        if (len > sizeof buf || fread(buf, 1, len, in) != len) {
            fprintf(stderr, "uvc_timestamps: %s: record %lu is cut short or longer than %d bytes\n", file, seq,
                    MAX_META);
            rc = 1;
            break;
        }
        /* The virtual clock to the last reception in the buffer, as time would
         * have passed while it filled (blocks are 10 + bHeaderLength bytes). */
        long long last = 0;
        for (uint32_t at = 0; at + 11 <= len; at += 10u + buf[at + 10]) {
            long long ts;
            memcpy(&ts, buf + at, 8);
            last = ts > last ? ts : last;
            if (buf[at + 10] < 2)
                break; /* malformed: usbts_uvc_add_meta says so below */
        }
        LONGLONG now;
        if (usbts_now_ns(dev, &now) && last > now)
            usbts_sim_advance(dev, (ULONGLONG)(last - now));
        if (!usbts_uvc_add_meta(u, ih, th, buf, len)) {
            fail("a recorded buffer");
            rc = 1;
            break;
        }
        USBTS_UVC_FRAME f;
        if (usbts_uvc_frame(u, USBTS_CLOCK_MONOTONIC, &f))
            print_frame(seq, 0, &f);
        else if (GetLastError() != ERROR_GEN_FAILURE && GetLastError() != ERROR_NOT_FOUND) {
            fail("usbts_uvc_frame");
            rc = 1;
            break;
        }
        seq++;
    }
    fclose(in);
    usbts_uvc_destroy(u);
    usbts_close(dev);
    return rc;
}

/* ---- live: a video node and its metadata node ---------------------------- */

struct node {
    int fd;
    enum v4l2_buf_type type;
    void *map[NBUF];
    size_t size[NBUF];
};

static int xioctl(int fd, unsigned long req, void *arg)
{
    int r;
    do
        r = ioctl(fd, req, arg);
    while (r < 0 && errno == EINTR);
    return r;
}

static int node_start(struct node *n, const char *path, enum v4l2_buf_type type)
{
    n->type = type;
    n->fd = open(path, O_RDWR | O_CLOEXEC);
    if (n->fd < 0) {
        fprintf(stderr, "uvc_timestamps: %s: %s\n", path, strerror(errno));
        return 1;
    }
    if (type == V4L2_BUF_TYPE_META_CAPTURE) {
        struct v4l2_format fmt;
        memset(&fmt, 0, sizeof fmt);
        fmt.type = type;
        fmt.fmt.meta.dataformat = V4L2_META_FMT_UVC;
        if (xioctl(n->fd, VIDIOC_S_FMT, &fmt) < 0) {
            fprintf(stderr, "uvc_timestamps: %s is not a UVC metadata node: %s\n", path, strerror(errno));
            return 1;
        }
    }
    struct v4l2_requestbuffers req;
    memset(&req, 0, sizeof req);
    req.count = NBUF;
    req.type = type;
    req.memory = V4L2_MEMORY_MMAP;
    if (xioctl(n->fd, VIDIOC_REQBUFS, &req) < 0 || req.count < 1) {
        fprintf(stderr, "uvc_timestamps: %s: VIDIOC_REQBUFS: %s\n", path, strerror(errno));
        return 1;
    }
    for (unsigned i = 0; i < req.count && i < NBUF; i++) {
        struct v4l2_buffer b;
        memset(&b, 0, sizeof b);
        b.type = type;
        b.memory = V4L2_MEMORY_MMAP;
        b.index = i;
        if (xioctl(n->fd, VIDIOC_QUERYBUF, &b) < 0)
            return 1;
        n->size[i] = b.length;
        n->map[i] = mmap(NULL, b.length, PROT_READ | PROT_WRITE, MAP_SHARED, n->fd, b.m.offset);
        if (n->map[i] == MAP_FAILED || xioctl(n->fd, VIDIOC_QBUF, &b) < 0) {
            fprintf(stderr, "uvc_timestamps: %s: buffer %u: %s\n", path, i, strerror(errno));
            return 1;
        }
    }
    int t = type;
    if (xioctl(n->fd, VIDIOC_STREAMON, &t) < 0) {
        fprintf(stderr, "uvc_timestamps: %s: VIDIOC_STREAMON: %s\n", path, strerror(errno));
        return 1;
    }
    return 0;
}

/* The USB device behind a video node, as BUS:DEV, from sysfs. */
static int usb_spec(const char *video, char *spec, size_t n)
{
    const char *name = strrchr(video, '/') ? strrchr(video, '/') + 1 : video;
    char path[PATH_MAX];
    unsigned bus = 0, devnum = 0;
    snprintf(path, sizeof path, "/sys/class/video4linux/%s/device/../busnum", name);
    FILE *f = fopen(path, "r");
    int ok = f && fscanf(f, "%u", &bus) == 1;
    if (f)
        fclose(f);
    snprintf(path, sizeof path, "/sys/class/video4linux/%s/device/../devnum", name);
    f = fopen(path, "r");
    ok = ok && f && fscanf(f, "%u", &devnum) == 1;
    if (f)
        fclose(f);
    if (!ok) {
        fprintf(stderr, "uvc_timestamps: %s: no USB device found in sysfs\n", video);
        return 1;
    }
    snprintf(spec, n, "%u:%u", bus, devnum);
    return 0;
}

static int live(const char *video, const char *meta, ULONG hz, unsigned long frames)
{
    char spec[32];
    HANDLE dev;
    WINUSB_INTERFACE_HANDLE ih;
    HANDLE th;
    if (usb_spec(video, spec, sizeof spec) || start(spec, &dev, &ih, &th))
        return 1;
    USBTS_UVC *u = usbts_uvc_create(hz, 0);
    if (!u)
        return fail("usbts_uvc_create");
    struct node m, v;
    if (node_start(&m, meta, V4L2_BUF_TYPE_META_CAPTURE) || node_start(&v, video, V4L2_BUF_TYPE_VIDEO_CAPTURE))
        return 1;
    for (unsigned long k = 0; k < frames;) {
        struct pollfd p[2] = {{m.fd, POLLIN, 0}, {v.fd, POLLIN, 0}};
        if (poll(p, 2, 2000) <= 0) {
            fprintf(stderr, "uvc_timestamps: no frame for 2 s\n");
            return 1;
        }
        struct v4l2_buffer mb, vb;
        memset(&mb, 0, sizeof mb);
        memset(&vb, 0, sizeof vb);
        mb.type = m.type;
        mb.memory = V4L2_MEMORY_MMAP;
        vb.type = v.type;
        vb.memory = V4L2_MEMORY_MMAP;
        /* The two queues deliver a frame's buffers together: metadata first. */
        if (xioctl(m.fd, VIDIOC_DQBUF, &mb) < 0 || xioctl(v.fd, VIDIOC_DQBUF, &vb) < 0)
            continue;
        if (!usbts_uvc_add_meta(u, ih, th, m.map[mb.index], mb.bytesused))
            fail("metadata buffer");
        USBTS_UVC_FRAME f;
        long long kernel_ns = (long long)vb.timestamp.tv_sec * 1000000000ll + vb.timestamp.tv_usec * 1000ll;
        if (usbts_uvc_frame(u, USBTS_CLOCK_MONOTONIC, &f))
            print_frame(vb.sequence, kernel_ns, &f);
        else
            printf("frame %u kernel_ns %lld (%s)\n", vb.sequence, kernel_ns, usbts_last_error_message());
        fflush(stdout);
        xioctl(m.fd, VIDIOC_QBUF, &mb);
        xioctl(v.fd, VIDIOC_QBUF, &vb);
        k++;
    }
    usbts_uvc_destroy(u);
    usbts_close(dev);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--replay") == 0)
        return replay(argv[2], argv[3], (ULONG)strtoul(argv[4], NULL, 10));
    if (argc == 4 || argc == 5)
        return live(argv[1], argv[2], (ULONG)strtoul(argv[3], NULL, 10),
                    argc == 5 ? strtoul(argv[4], NULL, 10) : 100);
    fprintf(stderr, "usage: uvc_timestamps VIDEO_NODE META_NODE CLOCK_HZ [FRAMES]\n"
                    "       uvc_timestamps --replay FILE SPEC CLOCK_HZ\n");
    return 2;
}
