/* SPDX-License-Identifier: MIT */
/*
 * fuzz_page — the model page reader against corrupted and truncated pages.
 *
 * The input is a page file's bytes (up to one page; shorter is a truncated
 * file).  usbts_page_check() must refuse what it cannot trust without
 * reading past the bytes it was given; a page it accepts must then be read
 * (usbts_page_read, device slot from the first byte) and evaluated the way a
 * query evaluates it without a sanitizer report.
 */
#include <stdint.h>
#include <string.h>

#include "model.h"
#include "page.h"

static _Alignas(4096) unsigned char buf[USBTS_PAGE_FILE_SIZE];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t len = size < sizeof buf ? size : sizeof buf;
    memset(buf, 0, sizeof buf);
    memcpy(buf, data, len);
    char msg[512];
    /* A truncated file is checked on what it has; the rest of the buffer is
     * the mapping's zero fill, as mmap gives past a file's end. */
    if (!usbts_page_check(buf, len, msg, sizeof msg))
        return 0;
    const struct usbts_page *p = (const struct usbts_page *)buf;
    uint32_t dev = size > 0 ? data[0] % (USBTS_PAGE_MAX_DEVICES + 8) : UINT32_MAX;
    struct usbts_model m;
    int64_t now;
    enum usbts_page_state st = usbts_page_read(p, dev, &m, &now);
    if (st != USBTS_PAGE_OK && st != USBTS_PAGE_AGED)
        return 0;
    /* What WinUsb_GetCurrentFrameNumberAndQpc computes. */
    int64_t mf = usbts_model_mf_at(&m, now);
    int64_t t = usbts_model_start_ns(&m, mf);
    int64_t t_in = usbts_model_start_ns(&m, mf - 8 * 1000);
    volatile int64_t sink = t + t_in + usbts_model_bound_ns(&m, t, now) + usbts_model_bound_ns(&m, t_in, now);
    (void)usbts_model_dead(&m, now);
    (void)sink;
    return 0;
}
