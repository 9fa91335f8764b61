/* SPDX-License-Identifier: MIT */
/*
 * source_mmio.c — MFINDEX read straight from the xHCI controller's registers.
 *
 * BAR 0 is mapped read-only through /sys/bus/pci/devices/<pci>/resource0,
 * its length taken from the `resource` file.  The runtime registers start at
 * the offset the capability register RTSOFF (0x18) gives, bits 4:0 reserved;
 * MFINDEX is the first of them.  One read is one 32-bit load: a few hundred
 * ns on real hardware, no system call.  The mapping is PROT_READ, so no
 * controller register can ever be written through it.
 *
 * Kernels built with CONFIG_IO_STRICT_DEVMEM refuse to map a BAR that a
 * driver (xhci_hcd) has claimed unless booted with iomem=relaxed; the caller
 * then falls back to debugfs.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "failpoint.h"
#include "source.h"
#include "sysfs_parse.h"

#define XHCI_RTSOFF 0x18
#define IORESOURCE_MEM 0x200
#define MAX_BAR_MAP (16u << 20) /* an xHCI BAR is 64 KiB or so; more is not one */

struct mmio_source {
    struct usbts_source base;
    const volatile uint32_t *mfindex; /* inside the mapping */
    void *map;
    size_t map_len;
};

static uint32_t load32(const void *base, size_t off)
{
    return *(const volatile uint32_t *)((const char *)base + off);
}

static DWORD mmio_read(struct usbts_source *s, int64_t *before_ns, uint32_t *mfindex, int64_t *after_ns)
{
    struct mmio_source *m = (struct mmio_source *)s;
    *before_ns = usbts_clock_now(s->clock);
    uint32_t v = *m->mfindex;
    *after_ns = usbts_clock_now(s->clock);
    /* A device gone from the bus reads as all ones. */
    if (v == 0xFFFFFFFFu)
        return ERROR_DEVICE_NOT_CONNECTED;
    *mfindex = v;
    return ERROR_SUCCESS;
}

static void mmio_destroy(struct usbts_source *s)
{
    struct mmio_source *m = (struct mmio_source *)s;
    munmap(m->map, m->map_len);
    free(m);
}

static const struct usbts_source_ops mmio_ops = {"mmio", mmio_read, mmio_destroy};

/* BAR 0's length from the `resource` file. */
static DWORD bar0_size(const char *root, const char *pci, uint64_t *size, char *msg, size_t msglen)
{
    char path[PATH_MAX], text[512];
    snprintf(path, sizeof path, "%s/sys/bus/pci/devices/%s/resource", root, pci);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        snprintf(msg, msglen, "%s cannot be read (%s): %s is not a PCI device, so it has no BAR to map", path,
                 strerror(errno), pci);
        return ERROR_NOT_SUPPORTED;
    }
    ssize_t n = read(fd, text, sizeof text);
    close(fd);
    uint64_t start, flags;
    if (n <= 0 || !usbts_parse_pci_resource0(text, (size_t)n, &start, size, &flags) || !(flags & IORESOURCE_MEM) ||
        *size < 0x40 || *size > MAX_BAR_MAP) {
        snprintf(msg, msglen, "%s does not describe a memory BAR 0 of a plausible size for an xHCI controller", path);
        return ERROR_NOT_SUPPORTED;
    }
    return ERROR_SUCCESS;
}

DWORD usbts_mmio_source_open(const char *root, const char *controller, struct usbts_hostclock *clock,
                             struct usbts_source **out, char *msg, size_t msglen)
{
    if (!usbts_is_pci_address(controller, strlen(controller))) {
        snprintf(msg, msglen, "controller %.63s is not on PCI: no BAR to map; use debugfs (USBTS_SOURCE=debugfs)",
                 controller);
        return ERROR_NOT_SUPPORTED;
    }
    uint64_t size;
    DWORD err = bar0_size(root, controller, &size, msg, msglen);
    if (err != ERROR_SUCCESS)
        return err;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/sys/bus/pci/devices/%s/resource0", root, controller);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == EACCES || errno == EPERM) {
            snprintf(msg, msglen, "cannot open %s: mapping controller registers needs root; run as root", path);
            return ERROR_ACCESS_DENIED;
        }
        snprintf(msg, msglen, "cannot open %s (%s)", path, strerror(errno));
        return ERROR_NOT_SUPPORTED;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || (uint64_t)st.st_size < size) {
        close(fd);
        snprintf(msg, msglen, "%s is shorter than BAR 0's %llu bytes: refusing to map past its end", path,
                 (unsigned long long)size);
        return ERROR_NOT_SUPPORTED;
    }
    void *map = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
    int map_errno = errno;
    close(fd); /* the mapping keeps what it needs */
    if (map == MAP_FAILED) {
        if (map_errno == EPERM && geteuid() != 0) {
            snprintf(msg, msglen, "mapping %s needs root; run as root", path);
            return ERROR_ACCESS_DENIED;
        }
        snprintf(msg, msglen,
                 "the kernel refused to map %s (%s): it was built with CONFIG_IO_STRICT_DEVMEM, which keeps a "
                 "driver's registers from user space; boot with iomem=relaxed to allow MMIO",
                 path, strerror(map_errno));
        return ERROR_NOT_SUPPORTED;
    }
    uint32_t cap0 = load32(map, 0);
    uint32_t caplength = cap0 & 0xFF, hciversion = cap0 >> 16;
    uint64_t rtsoff = load32(map, XHCI_RTSOFF) & ~0x1Fu;
    if (cap0 == 0xFFFFFFFFu || caplength < 0x20 || hciversion < 0x0090 || hciversion > 0x01FF || rtsoff < 0x20 ||
        rtsoff + 4 > size) {
        munmap(map, (size_t)size);
        snprintf(msg, msglen,
                 "%s does not look like xHCI registers (CAPLENGTH 0x%x, HCIVERSION 0x%x, RTSOFF 0x%llx in a BAR of "
                 "0x%llx bytes)",
                 path, (unsigned)caplength, (unsigned)hciversion, (unsigned long long)rtsoff,
                 (unsigned long long)size);
        return ERROR_NOT_SUPPORTED;
    }
    struct mmio_source *m = usbts_failpoint() ? NULL : calloc(1, sizeof *m);
    if (!m) {
        munmap(map, (size_t)size);
        snprintf(msg, msglen, "out of memory opening the MMIO source");
        return ERROR_NOT_ENOUGH_MEMORY;
    }
    m->base.ops = &mmio_ops;
    m->base.clock = clock;
    m->map = map;
    m->map_len = (size_t)size;
    m->mfindex = (const volatile uint32_t *)((const char *)map + rtsoff);
    *out = &m->base;
    return ERROR_SUCCESS;
}
