/* SPDX-License-Identifier: MIT */
/*
 * hostclock.h — the host clock a tracker measures against.
 *
 * Real: CLOCK_MONOTONIC (a vDSO read, no syscall).  Virtual: a private clock
 * owned by a simulated controller that only moves when told to.  The clock
 * lives in static memory (inside a tracker slot) so the lock-free query path
 * can read it without ever touching memory that could be freed under it.
 */
#ifndef USBTS_HOSTCLOCK_H
#define USBTS_HOSTCLOCK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct usbts_hostclock {
    _Atomic int64_t virt_ns; /* virtual clock value; unused when real */
    atomic_bool is_virtual;
};

static inline int64_t usbts_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline int64_t usbts_clock_now(const struct usbts_hostclock *c)
{
    if (atomic_load_explicit(&c->is_virtual, memory_order_relaxed))
        return atomic_load_explicit(&c->virt_ns, memory_order_acquire);
    return usbts_monotonic_ns();
}

/* Virtual clock only: never moves backwards. */
static inline void usbts_clock_set_at_least(struct usbts_hostclock *c, int64_t ns)
{
    int64_t cur = atomic_load_explicit(&c->virt_ns, memory_order_relaxed);
    while (cur < ns &&
           !atomic_compare_exchange_weak_explicit(&c->virt_ns, &cur, ns, memory_order_release, memory_order_relaxed)) {
    }
}

#endif
