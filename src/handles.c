/* SPDX-License-Identifier: MIT */
#include "handles.h"

#include <stdatomic.h>

/* Starts at 1 so that no handle has serial 0. */
static _Atomic uint64_t next_serial = 1;

uint64_t usbts_handle_new(enum usbts_handle_kind kind, uint32_t index)
{
    uint64_t serial = atomic_fetch_add_explicit(&next_serial, 1, memory_order_relaxed);
    serial &= ((uint64_t)1 << USBTS_HANDLE_SERIAL_BITS) - 1; /* 2^40 handles: never wraps in practice */
    return ((uint64_t)kind << 56) | (serial << USBTS_HANDLE_INDEX_BITS) | (uint64_t)index;
}
