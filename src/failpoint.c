/* SPDX-License-Identifier: MIT */
#include "failpoint.h"

_Atomic int usbts_failpoint_countdown;

void usbts_failpoint_arm(int n)
{
    atomic_store_explicit(&usbts_failpoint_countdown, n > 0 ? n : 0, memory_order_relaxed);
}

int usbts_failpoint_pending(void)
{
    return atomic_load_explicit(&usbts_failpoint_countdown, memory_order_relaxed);
}
