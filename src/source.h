/* SPDX-License-Identifier: MIT */
/*
 * source.h — a frame-clock source: something that can read a host
 * controller's MFINDEX register, bracketed by host-clock reads.
 *
 * One small ops table per implementation (simulated, the kernel module, xHCI
 * MMIO, xHCI debugfs); adding one is one new file that fills this in and one
 * row in backend_linux.c's table, from which the order, USBTS_SOURCE and
 * `usbtimesync list` all follow.
 */
#ifndef USBTS_SOURCE_H
#define USBTS_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "hostclock.h"
#include "usbtimesync/winusb.h"

struct usbts_source;

struct usbts_source_ops {
    const char *name; /* "sim", "kmod", "mmio", "debugfs" */
    /*
     * One bracketed read: *before_ns is taken just before the register
     * access, *after_ns just after; the register was latched somewhere in
     * between.  *mfindex is the raw register (bits 13:0 meaningful).
     * Returns ERROR_SUCCESS, ERROR_DEVICE_NOT_CONNECTED if the controller is
     * gone, or another Windows error code; then the outputs are unspecified.
     */
    DWORD (*read)(struct usbts_source *src, int64_t *before_ns, uint32_t *mfindex, int64_t *after_ns);
    /* Releases everything the source holds (files, mappings, memory). */
    void (*destroy)(struct usbts_source *src);
};

struct usbts_source {
    const struct usbts_source_ops *ops;
    struct usbts_hostclock *clock; /* the clock the brackets are read from */
};

static inline DWORD usbts_source_read(struct usbts_source *s, int64_t *before, uint32_t *mfindex, int64_t *after)
{
    return s->ops->read(s, before, mfindex, after);
}

static inline void usbts_source_destroy(struct usbts_source *s)
{
    if (s)
        s->ops->destroy(s);
}

/*
 * Real controllers' sources.  `root` prefixes every path ("" on a real
 * machine, a fixture tree in tests); `controller` is the host controller's
 * sysfs name (a PCI address for xHCI on PCI), already checked to be a safe
 * path component.  Errors: ERROR_ACCESS_DENIED (privilege), ERROR_NOT_SUPPORTED
 * (this source cannot work here; msg says why and the fix), ERROR_FILE_NOT_FOUND
 * (this source is not installed on this machine: the automatic choice moves on
 * without a word; msg says how to install it).
 */
typedef DWORD (*usbts_source_open_fn)(const char *root, const char *controller, struct usbts_hostclock *clock,
                                      struct usbts_source **out, char *msg, size_t msglen);
DWORD usbts_kmod_source_open(const char *root, const char *controller, struct usbts_hostclock *clock,
                             struct usbts_source **out, char *msg, size_t msglen);
DWORD usbts_debugfs_source_open(const char *root, const char *controller, struct usbts_hostclock *clock,
                                struct usbts_source **out, char *msg, size_t msglen);
DWORD usbts_mmio_source_open(const char *root, const char *controller, struct usbts_hostclock *clock,
                             struct usbts_source **out, char *msg, size_t msglen);

#define USBTS_MFINDEX_BITS 14
#define USBTS_MFINDEX_MASK 0x3FFFu
#define USBTS_MFINDEX_WRAP 16384 /* microframes: 2.048 s */
#define USBTS_MICROFRAME_NS 125000

/* Bits 31:14 of MFINDEX are reserved (read as zero): a read with any of them
 * set is not a sample.  When every read for USBTS_BAD_READS_GONE_NS of host
 * time, and at least USBTS_BAD_READS_GONE_MIN reads, was like that, the
 * controller is gone (ERROR_DEVICE_NOT_CONNECTED). */
#define USBTS_BAD_READS_GONE_NS 100000000
#define USBTS_BAD_READS_GONE_MIN 16

#endif
