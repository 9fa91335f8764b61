/* SPDX-License-Identifier: MIT */
/*
 * fuzz_uvc — UVC payload headers and V4L2_META_FMT_UVC buffers from
 * anywhere.  The first byte picks the path:
 *   even: the bytes are one metadata buffer, handed to usbts_uvc_add_meta on a
 *         virtual-clock sim (every block checked before any is used), then a
 *         frame asked for;
 *   odd:  the bytes are a run of raw headers, each prefixed with its length
 *         byte, parsed and fed to the pure camera clock (uvc_clock.c) with
 *         host times made from the bytes, then PTS values mapped.
 * Nothing may read past the input, and no answer may come with a bound below
 * 1 ns.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "usbtimesync/usbtimesync.h"
#include "uvc_clock.h"
#include "uvc_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static HANDLE dev = INVALID_HANDLE_VALUE;
static WINUSB_INTERFACE_HANDLE ih;
static HANDLE th;

static void open_sim(void)
{
    if (dev != INVALID_HANDLE_VALUE)
        return;
    dev = usbts_open("sim:clock=virtual,seed=4");
    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION st = {NULL, FALSE};
    if (dev == INVALID_HANDLE_VALUE || !WinUsb_Initialize(dev, &ih) || !WinUsb_StartTrackingForTimeSync(ih, &st))
        abort();
    th = st.TimeTrackingHandle;
    usbts_sim_advance(dev, 300000000ull);
}

static void meta_path(const uint8_t *data, size_t size)
{
    open_sim();
    USBTS_UVC *u = usbts_uvc_create(48000000, size > 0 ? data[0] & 1 : 0);
    if (!u)
        abort();
    /* The buffer in its own allocation, so ASan sees a read past its end. */
    uint8_t *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    usbts_uvc_add_meta(u, ih, th, buf, (ULONG)size);
    USBTS_UVC_FRAME f;
    if (usbts_uvc_frame(u, USBTS_CLOCK_MONOTONIC, &f) && f.BoundNs < 1)
        abort();
    free(buf);
    usbts_uvc_destroy(u);
}

static void raw_path(const uint8_t *data, size_t size)
{
    struct usbts_uvc_clock c;
    if (!usbts_uvc_clock_init(&c, 1e6 + (double)(size % 7) * 1e7, 0, 0))
        abort();
    int64_t t = 1000000000;
    size_t at = 0;
    while (at < size) {
        size_t n = data[at++];
        if (n > size - at)
            n = size - at;
        uint8_t *h = malloc(n ? n : 1);
        memcpy(h, data + at, n);
        struct usbts_uvc_hdr hd;
        if (!usbts_uvc_parse_header(h, n, &hd) && hd.has_scr) {
            t += (int64_t)(hd.pts & 0xFFFFF);
            usbts_uvc_clock_add(&c, hd.stc, hd.sof, t - (int64_t)(hd.sof * 1000), 100, hd.info & 3, t);
            int64_t host, bound;
            uint32_t gen, fg, pairs;
            if (usbts_uvc_clock_map(&c, hd.pts, &host, &bound, &gen, &fg, &pairs) && bound < 1)
                abort();
        }
        free(h);
        at += n;
    }
    usbts_uvc_clock_free(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] & 1)
        raw_path(data + 1, size - 1);
    else
        meta_path(data + 1, size - 1);
    return 0;
}
