/* SPDX-License-Identifier: MIT */
/*
 * page.c — checking a model page before trusting it, and the header of an
 * in-process page.  The reader itself is inline in page.h (the query path).
 */
#include "page.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

void usbts_page_init_local(struct usbts_page *p)
{
    p->magic = USBTS_PAGE_MAGIC;
    p->version = USBTS_PAGE_VERSION;
    p->size = (uint32_t)sizeof *p;
    __atomic_store_n(&p->flags, 0u, __ATOMIC_RELAXED); /* read by queries meanwhile (page.h) */
    p->writer_pid = (uint32_t)getpid();
    atomic_store(&p->live, 1);
    atomic_store(&p->ndevices, 0);
}

static bool terminated(const char *s, size_t n)
{
    return memchr(s, '\0', n) != NULL;
}

bool usbts_page_check(const void *bytes, size_t len, char *msg, size_t msglen)
{
    const struct usbts_page *p = bytes;
    if (len < offsetof(struct usbts_page, controller)) {
        snprintf(msg, msglen, "the model page is truncated (%zu bytes): not a usbtimesync page", len);
        return false;
    }
    if (p->magic != USBTS_PAGE_MAGIC) {
        snprintf(msg, msglen, "the model page has an unknown magic 0x%016llx: not a usbtimesync page",
                 (unsigned long long)p->magic);
        return false;
    }
    if (p->version != USBTS_PAGE_VERSION || p->size != sizeof *p) {
        snprintf(msg, msglen,
                 "the model page has layout version %u of %u bytes; this library reads version %u of %zu bytes: "
                 "the daemon and the library are from different releases, restart the daemon after upgrading",
                 (unsigned)p->version, (unsigned)p->size, USBTS_PAGE_VERSION, sizeof *p);
        return false;
    }
    if (len < sizeof *p || len > USBTS_PAGE_FILE_SIZE) {
        snprintf(msg, msglen, "the model page is %zu bytes, not %u: truncated or not a page file", len,
                 USBTS_PAGE_FILE_SIZE);
        return false;
    }
    if (!terminated(p->controller, sizeof p->controller) || !terminated(p->source, sizeof p->source)) {
        snprintf(msg, msglen, "the model page's controller or source name is not terminated: a corrupted page");
        return false;
    }
    if (!(p->flags & USBTS_PAGE_SHARED) || (p->flags & ~USBTS_PAGE_SHARED)) {
        snprintf(msg, msglen, "the model page's flags 0x%x are not those of a daemon's page", (unsigned)p->flags);
        return false;
    }
    if (usbts_page_flag(&p->pub.clock.is_virtual)) {
        snprintf(msg, msglen, "the model page claims a virtual clock: a daemon's page runs on CLOCK_MONOTONIC");
        return false;
    }
    if (atomic_load(&p->ndevices) > USBTS_PAGE_MAX_DEVICES) {
        snprintf(msg, msglen, "the model page lists %u devices, more than %d: a corrupted page",
                 (unsigned)atomic_load(&p->ndevices), USBTS_PAGE_MAX_DEVICES);
        return false;
    }
    struct usbts_model m;
    if (usbts_tracker_try_read_model(&p->pub, &m) && m.generation != 0) {
        /* A real model maps a microframe to 125 µs ± 1000 ppm of host time
         * (a stopped counter keeps its last period, with rate 0), and its
         * reference lies within a year of now: values outside could only
         * come from a corrupted page, and would overflow a query's sums. */
        double period = (double)m.period_fp / 4294967296.0;
        double rate_period = m.rate_fp ? 18446744073709551616.0 / (double)m.rate_fp : 125000.0;
        if (period < 124875.0 || period > 125125.0 || rate_period < 124875.0 || rate_period > 125125.0) {
            snprintf(msg, msglen, "the model page's microframe period %.1f ns cannot be right (125000 ± 125)",
                     period < 124875.0 || period > 125125.0 ? period : rate_period);
            return false;
        }
        int64_t now = usbts_monotonic_ns(), year = (int64_t)1 << 55;
        if (m.ref_ns < now - year || m.ref_ns > now + year || m.ref_mf < -((int64_t)1 << 60) ||
            m.ref_mf > ((int64_t)1 << 60) || m.bound_slope_fp > ((uint64_t)1 << 32) ||
            m.bound0_ns > ((int64_t)1 << 50) || m.heartbeat_ns < now - year || m.heartbeat_ns > now + year) {
            snprintf(msg, msglen, "the model page's reference or bound is out of any possible range: a corrupted page");
            return false;
        }
        if (m.bound0_ns < 0) {
            snprintf(msg, msglen, "the model page's bound %lld ns is negative: a corrupted page",
                     (long long)m.bound0_ns);
            return false;
        }
    }
    return true;
}
