/* SPDX-License-Identifier: MIT */
/*
 * source_kmod.c — MFINDEX through the usbts_mfindex kernel module (kmod/).
 *
 * The module reads the register with interrupts off around that one access,
 * bracketed by ktime_get_ns() — CLOCK_MONOTONIC, the library's host clock —
 * so its brackets are MMIO-class on a stock kernel, without iomem=relaxed.
 *
 * One ioctl returns a burst of back-to-back samples (at most 64), stopping
 * at the first MFINDEX step: the estimator's bursts, which are aimed at a
 * microframe boundary, usually need one system call.  The samples are handed
 * out one per read, as individual reads; what the estimator did not want
 * before it paused is dropped, so no read is ever older than the call
 * sequence it is fed into.
 *
 * The module being absent is ERROR_FILE_NOT_FOUND: the backend then falls
 * back to the next source without a word, and `list` says how to install it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "../kmod/usbts_mfindex.h"
#include "failpoint.h"
#include "source.h"

/* Samples one ioctl asks for; the module stops earlier at an MFINDEX step. */
#define KMOD_BURST 32
/* Buffered samples are handed out only while reads come back to back: a
 * read more than this after the previous one starts a fresh burst. */
#define KMOD_FRESH_NS 50000

struct kmod_source {
    struct usbts_source base;
    int fd;
    struct usbts_mfindex_burst req; /* the controller, filled once */
    struct usbts_mfindex_sample buf[USBTS_MFINDEX_MAX_BURST];
    uint32_t pos, n;
    int64_t last_read_ns;
};

static DWORD errno_to_error(int e)
{
    return e == ENODEV ? ERROR_DEVICE_NOT_CONNECTED : ERROR_GEN_FAILURE;
}

/* One ioctl for up to `count` samples into k->buf; 0 or an errno. */
static int fetch(struct kmod_source *k, uint32_t count, uint32_t flags)
{
    struct usbts_mfindex_burst req = k->req;
    req.count = count;
    req.flags = flags;
    req.samples = (uint64_t)(uintptr_t)k->buf;
    int rc;
    do
        rc = ioctl(k->fd, USBTS_MFINDEX_IOC_BURST, &req);
    while (rc < 0 && errno == EINTR);
    if (rc < 0)
        return errno;
    if (req.count < 1 || req.count > count)
        return EPROTO;
    k->pos = 0;
    k->n = req.count;
    return 0;
}

static DWORD kmod_read(struct usbts_source *s, int64_t *before_ns, uint32_t *mfindex, int64_t *after_ns)
{
    struct kmod_source *k = (struct kmod_source *)s;
    /* The source's clock is CLOCK_MONOTONIC, the kernel's ktime_get_ns(); a
     * test's virtual clock decides what "back to back" means there. */
    int64_t now = usbts_clock_now(s->clock);
    bool fresh = k->pos < k->n && now - k->last_read_ns <= KMOD_FRESH_NS;
    k->last_read_ns = now;
    if (!fresh) {
        int e = fetch(k, KMOD_BURST, USBTS_MFINDEX_STOP_ON_CHANGE);
        if (e) {
            k->pos = k->n = 0;
            return errno_to_error(e);
        }
    }
    const struct usbts_mfindex_sample *smp = &k->buf[k->pos++];
    *before_ns = smp->before_ns;
    *after_ns = smp->after_ns;
    *mfindex = smp->mfindex;
    return ERROR_SUCCESS;
}

static void kmod_destroy(struct usbts_source *s)
{
    struct kmod_source *k = (struct kmod_source *)s;
    close(k->fd);
    free(k);
}

static const struct usbts_source_ops kmod_ops = {"kmod", kmod_read, kmod_destroy};

DWORD usbts_kmod_source_open(const char *root, const char *controller, struct usbts_hostclock *clock,
                             struct usbts_source **out, char *msg, size_t msglen)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s%s", root, USBTS_MFINDEX_DEVICE);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        int e = errno;
        if (e == EACCES || e == EPERM) {
            snprintf(msg, msglen,
                     "no permission to open %s: run as root, or join its group (usbtimesync, set by "
                     "kmod/60-usbts-mfindex.rules)",
                     USBTS_MFINDEX_DEVICE);
            return ERROR_ACCESS_DENIED;
        }
        snprintf(msg, msglen,
                 "the usbts_mfindex kernel module is not loaded (%s: %s); it gives the best accuracy on a stock "
                 "kernel: install it with DKMS (docs/KMOD.md) and 'modprobe usbts_mfindex'",
                 USBTS_MFINDEX_DEVICE, strerror(e));
        return e == ENOENT || e == ENXIO || e == ENODEV ? ERROR_FILE_NOT_FOUND : ERROR_NOT_SUPPORTED;
    }
    struct usbts_mfindex_info info = {.size = sizeof info};
    if (ioctl(fd, USBTS_MFINDEX_IOC_INFO, &info) != 0 || info.abi != USBTS_MFINDEX_ABI ||
        info.max_burst < KMOD_BURST) {
        snprintf(msg, msglen,
                 "%s does not speak usbts_mfindex interface %d (a different module version?): rebuild and reload "
                 "the module from this release's kmod/",
                 USBTS_MFINDEX_DEVICE, USBTS_MFINDEX_ABI);
        close(fd);
        return ERROR_NOT_SUPPORTED;
    }
    if (strlen(controller) >= USBTS_MFINDEX_NAME_LEN) {
        snprintf(msg, msglen, "controller name %.40s is too long for the kernel module", controller);
        close(fd);
        return ERROR_NOT_SUPPORTED;
    }
    struct kmod_source *k = usbts_failpoint() ? NULL : calloc(1, sizeof *k);
    if (!k) {
        close(fd);
        snprintf(msg, msglen, "out of memory opening the kmod source");
        return ERROR_NOT_ENOUGH_MEMORY;
    }
    k->base.ops = &kmod_ops;
    k->base.clock = clock;
    k->fd = fd;
    k->req.size = sizeof k->req;
    memcpy(k->req.controller, controller, strlen(controller) + 1);
    /* One read now: a controller the module cannot read fails here. */
    int e = fetch(k, 1, 0);
    if (e) {
        if (e == ENODEV)
            snprintf(msg, msglen, "the usbts_mfindex module knows no USB controller %s", controller);
        else if (e == EOPNOTSUPP)
            snprintf(msg, msglen, "the usbts_mfindex module cannot read %s: not an xHCI controller", controller);
        else if (e == EAGAIN)
            snprintf(msg, msglen, "the usbts_mfindex module cannot read %s now: the controller is suspended",
                     controller);
        else
            snprintf(msg, msglen, "the usbts_mfindex module refused to read %s (%s)", controller, strerror(e));
        kmod_destroy(&k->base);
        return ERROR_NOT_SUPPORTED;
    }
    k->pos = k->n; /* that sample was a probe, not a read */
    *out = &k->base;
    return ERROR_SUCCESS;
}
