/* SPDX-License-Identifier: MIT */
/*
 * xhci_caps.c — the two capability registers isochronous scheduling depends
 * on: HCSPARAMS2 (bits 3:0, the isochronous scheduling threshold) and
 * HCCPARAMS1 (bit 11, the Contiguous Frame Capability).
 *
 * debugfs prints them in usb/xhci/<controller>/reg-cap; without debugfs, BAR 0
 * is mapped read-only for the two loads (capability registers have no side
 * effects).  Both need root.  Read once per call, never on a query path.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backend.h"
#include "sysfs_parse.h"

#define XHCI_HCSPARAMS2 0x08
#define XHCI_HCCPARAMS1 0x10

/* "NAME = 0x...." somewhere in the dump. */
static bool find_reg(const char *buf, const char *name, uint32_t *v)
{
    size_t nl = strlen(name);
    for (const char *p = strstr(buf, name); p; p = strstr(p + 1, name)) {
        if ((p != buf && p[-1] != '\n') || (p[nl] != ' ' && p[nl] != '='))
            continue;
        const char *q = p + nl;
        while (*q == ' ' || *q == '=')
            q++;
        char *end;
        errno = 0;
        unsigned long x = strtoul(q, &end, 16);
        if (errno || end == q || x > 0xFFFFFFFFul)
            return false;
        *v = (uint32_t)x;
        return true;
    }
    return false;
}

static DWORD from_debugfs(const char *root, const char *ctl, uint32_t *p2, uint32_t *c1, char *msg, size_t msglen)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/sys/kernel/debug/usb/xhci/%s/reg-cap", root, ctl);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(msg, msglen, "cannot open %.180s (%.40s)", path, strerror(errno));
        return errno == EACCES || errno == EPERM ? ERROR_ACCESS_DENIED : ERROR_NOT_SUPPORTED;
    }
    char buf[2048];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) {
        snprintf(msg, msglen, "cannot read %.180s", path);
        return ERROR_NOT_SUPPORTED;
    }
    buf[n] = '\0';
    if (!find_reg(buf, "HCSPARAMS2", p2) || !find_reg(buf, "HCCPARAMS1", c1)) {
        snprintf(msg, msglen, "%.180s names no HCSPARAMS2 and HCCPARAMS1", path);
        return ERROR_NOT_SUPPORTED;
    }
    return ERROR_SUCCESS;
}

static DWORD from_bar(const char *root, const char *ctl, uint32_t *p2, uint32_t *c1, char *msg, size_t msglen)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/sys/bus/pci/devices/%s/resource0", root, ctl);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        snprintf(msg, msglen, "cannot open %.180s (%.40s)", path, strerror(errno));
        return errno == EACCES || errno == EPERM ? ERROR_ACCESS_DENIED : ERROR_NOT_SUPPORTED;
    }
    long page = sysconf(_SC_PAGESIZE);
    void *map = mmap(NULL, (size_t)page, PROT_READ, MAP_SHARED, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED) {
        snprintf(msg, msglen, "cannot map %.150s (%.40s): mount debugfs, or boot with iomem=relaxed", path, strerror(e));
        return e == EPERM && geteuid() != 0 ? ERROR_ACCESS_DENIED : ERROR_NOT_SUPPORTED;
    }
    const volatile uint32_t *regs = (const volatile uint32_t *)map;
    *p2 = regs[XHCI_HCSPARAMS2 / 4];
    *c1 = regs[XHCI_HCCPARAMS1 / 4];
    munmap(map, (size_t)page);
    if (*p2 == 0xFFFFFFFFu) {
        snprintf(msg, msglen, "%.180s reads all ones: the controller is gone or powered down", path);
        return ERROR_NOT_SUPPORTED;
    }
    return ERROR_SUCCESS;
}

DWORD usbts_xhci_caps_read(const char *controller, uint32_t *hcsparams2, uint32_t *hccparams1, char *msg,
                           size_t msglen)
{
    if (!usbts_is_pci_address(controller, strlen(controller))) {
        snprintf(msg, msglen,
                 "controller %.63s is not an xHCI controller on PCI: give the endpoint's Ist and Cfc yourself",
                 controller);
        return ERROR_NOT_SUPPORTED;
    }
    const char *root = usbts_backend_root();
    char m1[256], m2[256];
    DWORD e1 = from_debugfs(root, controller, hcsparams2, hccparams1, m1, sizeof m1);
    if (e1 == ERROR_SUCCESS)
        return e1;
    DWORD e2 = from_bar(root, controller, hcsparams2, hccparams1, m2, sizeof m2);
    if (e2 == ERROR_SUCCESS)
        return e2;
    snprintf(msg, msglen, "the controller's capability registers cannot be read: %.250s; %.250s", m1, m2);
    return e1 == ERROR_ACCESS_DENIED || e2 == ERROR_ACCESS_DENIED ? ERROR_ACCESS_DENIED : ERROR_NOT_SUPPORTED;
}
