/* SPDX-License-Identifier: MIT */
/* uvc_parse.c — strict parsing of UVC payload headers and V4L2 metadata blocks
 * (uvc_parse.h says what the bytes are). */
#include "uvc_parse.h"

#include <string.h>

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

const char *usbts_uvc_parse_header(const uint8_t *p, size_t n, struct usbts_uvc_hdr *h)
{
    memset(h, 0, sizeof *h);
    if (!p || n < 2)
        return "a payload header has at least 2 bytes (bHeaderLength, bmHeaderInfo)";
    h->length = p[0];
    h->info = p[1];
    if (h->length < 2)
        return "bHeaderLength is below 2";
    if (h->length > n)
        return "bHeaderLength is longer than the bytes given";
    h->fid = h->info & 0x01;
    h->eof = (h->info & 0x02) != 0;
    h->has_pts = (h->info & 0x04) != 0;
    h->has_scr = (h->info & 0x08) != 0;
    h->err = (h->info & 0x40) != 0;
    size_t need = 2 + (h->has_pts ? 4u : 0u) + (h->has_scr ? 6u : 0u);
    if (need > h->length)
        return "bmHeaderInfo announces a PTS or SCR that bHeaderLength has no room for";
    size_t at = 2;
    if (h->has_pts) {
        h->pts = le32(p + at);
        at += 4;
    }
    if (h->has_scr) {
        h->stc = le32(p + at);
        h->sof = (uint16_t)((p[at + 4] | p[at + 5] << 8) & 0x7FF);
    }
    return 0;
}

const char *usbts_uvc_parse_block(const uint8_t *p, size_t n, uint64_t *ts, uint16_t *host_sof,
                                  struct usbts_uvc_hdr *h, size_t *used)
{
    if (!p || n < USBTS_UVC_BLOCK_PREFIX + 2)
        return "a metadata block has at least 12 bytes (ts, sof, bHeaderLength, bmHeaderInfo)";
    uint64_t t;
    uint16_t s;
    memcpy(&t, p, 8); /* host byte order, unaligned */
    memcpy(&s, p + 8, 2);
    const char *why = usbts_uvc_parse_header(p + USBTS_UVC_BLOCK_PREFIX, n - USBTS_UVC_BLOCK_PREFIX, h);
    if (why)
        return why;
    *ts = t;
    *host_sof = s;
    *used = USBTS_UVC_BLOCK_PREFIX + (size_t)h->length;
    return 0;
}
