/* SPDX-License-Identifier: MIT */
/*
 * handles.h — generation-tagged handles.
 *
 * A handle is never a pointer.  It packs a kind tag, a process-wide serial
 * and a slot index:
 *
 *     bits 63..56  kind tag (never 0x00 or 0xFF, so never NULL or INVALID_HANDLE_VALUE)
 *     bits 55..16  serial: every handle ever issued gets a new one, so none is reused
 *     bits 15..0   slot index
 *
 * A slot records the full handle value it currently holds.  A handle is live
 * exactly when its slot (bounds-checked from the index) holds that value, so
 * a stale, foreign or forged handle is rejected by one load and a compare —
 * never dereferenced, and validation writes no shared memory.
 */
#ifndef USBTS_HANDLES_H
#define USBTS_HANDLES_H

#include <stdbool.h>
#include <stdint.h>

#include "usbtimesync/winusb.h"

enum usbts_handle_kind {
    USBTS_HK_DEVICE = 0xD1,
    USBTS_HK_INTERFACE = 0xA1,
    USBTS_HK_TRACKING = 0x71,
};

#define USBTS_HANDLE_INDEX_BITS 16
#define USBTS_HANDLE_SERIAL_BITS 40

/* A handle value for a new object of `kind` in slot `index`, with a serial
 * never issued before in this process. */
uint64_t usbts_handle_new(enum usbts_handle_kind kind, uint32_t index);

/* Splits a handle of the expected kind; false if the kind tag or the index
 * cannot be right.  Liveness is the slot's business. */
static inline bool usbts_handle_index(const void *h, enum usbts_handle_kind kind, uint32_t limit, uint32_t *index)
{
    uint64_t v = (uint64_t)(uintptr_t)h;
    if ((v >> 56) != (uint64_t)kind)
        return false;
    uint32_t i = (uint32_t)(v & ((1u << USBTS_HANDLE_INDEX_BITS) - 1));
    if (i >= limit)
        return false;
    *index = i;
    return true;
}

#endif
