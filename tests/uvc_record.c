/* SPDX-License-Identifier: MIT */
/*
 * uvc_record — the simulated camera (uvc_camera.h) on a virtual-clock sim,
 * written out as V4L2_META_FMT_UVC buffers in the kernel's block format
 * (a 4-byte little-endian bytesused, then the buffer, per frame) for
 * examples/uvc_timestamps.c --replay, with the truth beside them
 * ("frame K exposure_ns T" per line).
 *   uvc_record SPEC FRAMES BLOCKFILE TRUTHFILE [junk]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uvc_camera.h"

int main(int argc, char **argv)
{
    if (argc != 5 && argc != 6) {
        fprintf(stderr, "usage: uvc_record SPEC FRAMES BLOCKFILE TRUTHFILE [junk]\n");
        return 2;
    }
    HANDLE d = usbts_open(argv[1]);
    WINUSB_INTERFACE_HANDLE ih;
    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION st = {NULL, FALSE};
    if (d == INVALID_HANDLE_VALUE || !WinUsb_Initialize(d, &ih) || !WinUsb_StartTrackingForTimeSync(ih, &st)) {
        fprintf(stderr, "uvc_record: %s\n", usbts_last_error_message());
        return 1;
    }
    FILE *blocks = fopen(argv[3], "wb"), *truth = fopen(argv[4], "w");
    if (!blocks || !truth) {
        fprintf(stderr, "uvc_record: cannot write %s or %s\n", argv[3], argv[4]);
        return 1;
    }
    struct cam_opts o = cam_defaults();
    if (argc == 6 && strcmp(argv[5], "junk") == 0)
        o.junk_sof = CAM_JUNK_RANDOM;
    struct cam cam;
    cam_start(&cam, &o, d, ih, st.TimeTrackingHandle);
    uint8_t prev[6], buf[CAM_MAX_PAYLOADS * 22];
    memset(prev, 0xFF, sizeof prev);
    long frames = atol(argv[2]);
    for (long k = 0; k < frames; k++) {
        struct cam_frame fr;
        cam_next_frame(&cam, &fr);
        size_t len = cam_meta_buffer(&fr, buf, sizeof buf, prev);
        uint8_t l4[4] = {(uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16), (uint8_t)(len >> 24)};
        fwrite(l4, 1, 4, blocks);
        fwrite(buf, 1, len, blocks);
        fprintf(truth, "frame %ld exposure_ns %lld\n", k, (long long)fr.exposure_ns);
    }
    fclose(blocks);
    fclose(truth);
    usbts_close(d);
    return 0;
}
