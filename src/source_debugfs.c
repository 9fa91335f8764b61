/* SPDX-License-Identifier: MIT */
/*
 * source_debugfs.c — MFINDEX through the xhci driver's debugfs register dump.
 *
 * /sys/kernel/debug/usb/xhci/<controller>/reg-runtime prints the runtime
 * registers, MFINDEX first.  One read is one pread of that file: a system
 * call and a kernel-side formatting pass, so the bracket is some 10 µs wide
 * and the register is latched early inside it.  It works on stock
 * distribution kernels, as root with debugfs mounted.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>

#include "failpoint.h"
#include "source.h"
#include "sysfs_parse.h"

struct debugfs_source {
    struct usbts_source base;
    int fd;
};

static DWORD debugfs_read(struct usbts_source *s, int64_t *before_ns, uint32_t *mfindex, int64_t *after_ns)
{
    struct debugfs_source *d = (struct debugfs_source *)s;
    /* The whole dump is a few hundred bytes; MFINDEX is its first line. */
    char buf[1024];
    ssize_t n;
    do {
        *before_ns = usbts_clock_now(s->clock);
        n = pread(d->fd, buf, sizeof buf, 0);
        *after_ns = usbts_clock_now(s->clock);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == ENODEV || errno == EIO || errno == ENOENT || errno == ESHUTDOWN ? ERROR_DEVICE_NOT_CONNECTED
                                                                                       : ERROR_GEN_FAILURE;
    if (n == 0)
        return ERROR_DEVICE_NOT_CONNECTED; /* the file emptied: its controller went away */
    return usbts_parse_mfindex(buf, (size_t)n, mfindex) ? ERROR_SUCCESS : ERROR_GEN_FAILURE;
}

static void debugfs_destroy(struct usbts_source *s)
{
    struct debugfs_source *d = (struct debugfs_source *)s;
    close(d->fd);
    free(d);
}

static const struct usbts_source_ops debugfs_ops = {"debugfs", debugfs_read, debugfs_destroy};

static bool dir_has_entries(const char *path)
{
    DIR *dir = opendir(path);
    if (!dir)
        return false;
    bool any = false;
    struct dirent *e;
    while (!any && (e = readdir(dir)))
        any = strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(dir);
    return any;
}

/* Why the register file could not be opened, as the error and a message
 * naming the fix. */
static DWORD explain_open_failure(const char *root, const char *controller, const char *path, int err, char *msg,
                                  size_t msglen)
{
    char dir[PATH_MAX];
    if (err == EACCES || err == EPERM) {
        snprintf(msg, msglen, "cannot read %s: debugfs is readable by root only; run as root", path);
        return ERROR_ACCESS_DENIED;
    }
    snprintf(dir, sizeof dir, "%s/sys/kernel/debug", root);
    if (access(dir, X_OK) != 0 && (errno == EACCES || errno == EPERM)) {
        snprintf(msg, msglen, "cannot enter %s: debugfs is readable by root only; run as root", dir);
        return ERROR_ACCESS_DENIED;
    }
    if (!dir_has_entries(dir)) {
        snprintf(msg, msglen,
                 "debugfs is not mounted, so the xHCI registers cannot be read through it: mount it with "
                 "'mount -t debugfs none /sys/kernel/debug' (as root), or use the MMIO source (USBTS_SOURCE=mmio)");
        return ERROR_NOT_SUPPORTED;
    }
    snprintf(dir, sizeof dir, "%s/sys/kernel/debug/usb/xhci", root);
    if (access(dir, F_OK) != 0) {
        snprintf(msg, msglen,
                 "debugfs has no usb/xhci directory: the xhci_hcd module is not loaded or the kernel was built "
                 "without xHCI debugfs; use the MMIO source (USBTS_SOURCE=mmio)");
        return ERROR_NOT_SUPPORTED;
    }
    snprintf(msg, msglen, "%s cannot be opened (%s): controller %s has no xHCI debugfs entry; is it driven by xhci_hcd?",
             path, strerror(err), controller);
    return ERROR_NOT_SUPPORTED;
}

DWORD usbts_debugfs_source_open(const char *root, const char *controller, struct usbts_hostclock *clock,
                                struct usbts_source **out, char *msg, size_t msglen)
{
    if (!usbts_is_safe_name(controller, strlen(controller))) {
        snprintf(msg, msglen, "controller name is not a valid sysfs name");
        return ERROR_NOT_SUPPORTED;
    }
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/sys/kernel/debug/usb/xhci/%s/reg-runtime", root, controller);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return explain_open_failure(root, controller, path, errno, msg, msglen);
    struct debugfs_source *d = usbts_failpoint() ? NULL : calloc(1, sizeof *d);
    if (!d) {
        close(fd);
        snprintf(msg, msglen, "out of memory opening the debugfs source");
        return ERROR_NOT_ENOUGH_MEMORY;
    }
    d->base.ops = &debugfs_ops;
    d->base.clock = clock;
    d->fd = fd;
    /* One read now, so a file that is not what we expect fails here, not in
     * the sampler. */
    int64_t b, a;
    uint32_t mf;
    DWORD err = debugfs_read(&d->base, &b, &mf, &a);
    if (err != ERROR_SUCCESS) {
        debugfs_destroy(&d->base);
        if (err == ERROR_DEVICE_NOT_CONNECTED) {
            snprintf(msg, msglen, "%s could not be read: the controller is going away", path);
            return err;
        }
        snprintf(msg, msglen, "%s holds no 'MFINDEX = 0x...' line: not an xHCI runtime register dump", path);
        return ERROR_NOT_SUPPORTED;
    }
    *out = &d->base;
    return ERROR_SUCCESS;
}
