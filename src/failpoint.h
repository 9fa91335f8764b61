/* SPDX-License-Identifier: MIT */
/*
 * failpoint.h — allocation-failure injection, for the failure-atomicity tests.
 *
 * The few places where the library allocates or creates a thread ask
 * usbts_failpoint() first.  Armed with n, the n-th such check from then on
 * reports a failure, once, so a test can walk a call through each of its
 * failure exits in turn and see that every one leaves nothing behind.
 * Unarmed (always, outside those tests) a check is one relaxed load of a
 * counter that is zero; none sits on the query path.
 */
#ifndef USBTS_FAILPOINT_H
#define USBTS_FAILPOINT_H

#include <stdatomic.h>
#include <stdbool.h>

extern _Atomic int usbts_failpoint_countdown;

/* The n-th check from now fails (n >= 1); 0 disarms. */
void usbts_failpoint_arm(int n);

/* Checks still to pass before the armed failure: 0 once it has fired (or
 * when nothing is armed), so "> 0" after a call means the call passed fewer
 * than n checks. */
int usbts_failpoint_pending(void);

/* True when this allocation or thread creation is to fail. */
static inline bool usbts_failpoint(void)
{
    int c = atomic_load_explicit(&usbts_failpoint_countdown, memory_order_relaxed);
    if (__builtin_expect(c == 0, 1))
        return false;
    while (c > 0 && !atomic_compare_exchange_weak_explicit(&usbts_failpoint_countdown, &c, c - 1,
                                                           memory_order_relaxed, memory_order_relaxed)) {
    }
    return c == 1;
}

#endif
