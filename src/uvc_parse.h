/* SPDX-License-Identifier: MIT */
/*
 * uvc_parse.h — UVC payload headers and V4L2_META_FMT_UVC blocks, parsed
 * strictly.  Pure: no I/O, no state, no allocation; every length is checked
 * before a byte is read.
 *
 * A payload header (UVC 1.5, 2.4.3.3): bHeaderLength, bmHeaderInfo (bit 0 FID,
 * 1 EOF, 2 PTS present, 3 SCR present, 6 ERR), then a 4-byte PTS if bit 2,
 * then a 6-byte SCR if bit 3: the camera's clock (STC, 32 bits) and the 11-bit
 * SOF number it was latched at (bits 15:11 reserved).  All little-endian.
 *
 * A V4L2 metadata block: the host's reception time (u64 ns) and frame number
 * (u16), both in host byte order, then the header's bytes exactly as the
 * camera sent them, so the block is 10 + bHeaderLength bytes long.
 */
#ifndef USBTS_UVC_PARSE_H
#define USBTS_UVC_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define USBTS_UVC_BLOCK_PREFIX 10 /* ts (8) + sof (2) */

struct usbts_uvc_hdr {
    uint8_t length; /* bHeaderLength */
    uint8_t info;   /* bmHeaderInfo */
    bool fid, eof, err, has_pts, has_scr;
    uint32_t pts;
    uint32_t stc;
    uint16_t sof; /* 11 bits */
};

/* 0, or a static sentence saying what is wrong with the bytes. */
const char *usbts_uvc_parse_header(const uint8_t *p, size_t n, struct usbts_uvc_hdr *h);

/* One block at p (n bytes available): its reception time and host frame, the
 * header, and how many bytes the block takes (*used). */
const char *usbts_uvc_parse_block(const uint8_t *p, size_t n, uint64_t *ts, uint16_t *host_sof,
                                  struct usbts_uvc_hdr *h, size_t *used);

#endif
