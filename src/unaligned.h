/* SPDX-License-Identifier: MIT */
/*
 * unaligned.h — loads and stores through caller-supplied pointers that may be
 * unaligned.
 *
 * The WinUSB time-sync structures are byte-packed (as on Windows), and Windows
 * code passes their members' addresses to the API:
 * QueryPerformanceCounter(&q.CurrentQueryPerformanceCounter),
 * WinUsb_GetAdjustedFrameNumber(&q.CurrentUSBFrameNumber, ...).  When the
 * structure itself sits at an odd address (inside a byte buffer, a record read
 * from a file), such a pointer is misaligned for its type, and dereferencing it
 * as that type is undefined behaviour (UBSan's alignment check, a trap on
 * strict-alignment CPUs).  Every output the library writes through such a
 * pointer goes through memcpy on a byte pointer instead.
 */
#ifndef USBTS_UNALIGNED_H
#define USBTS_UNALIGNED_H

#include <stdint.h>
#include <string.h>

static inline void usbts_store_i64(void *p, int64_t v)
{
    memcpy((unsigned char *)p, &v, sizeof v);
}

static inline void usbts_store_u32(void *p, uint32_t v)
{
    memcpy((unsigned char *)p, &v, sizeof v);
}

static inline uint32_t usbts_load_u32(const void *p)
{
    uint32_t v;
    memcpy(&v, (const unsigned char *)p, sizeof v);
    return v;
}

#endif
