/* Placeholder until the real-controller backend lands: real devices are not supported yet. */
#include "backend.h"

#include <stdio.h>
#include <errno.h>
#include <sys/stat.h>

DWORD usbts_backend_open(const struct usbts_devspec *spec, struct usbts_realdev *out, char *msg, size_t msglen)
{
    (void)out;
    if (spec->kind == USBTS_SPEC_PATH) {
        char path[64];
        struct stat st;
        snprintf(path, sizeof path, "/dev/bus/usb/%03u/%03u", spec->bus, spec->dev);
        if (stat(path, &st) != 0) {
            snprintf(msg, msglen, "%s does not exist: check the bus and device numbers with lsusb", path);
            return ERROR_FILE_NOT_FOUND;
        }
    }
    snprintf(msg, msglen, "real USB devices are not supported yet; use a 'sim' spec");
    return ERROR_NOT_SUPPORTED;
}

void usbts_backend_close(struct usbts_realdev *d) { (void)d; }

bool usbts_backend_present(const struct usbts_realdev *d)
{
    (void)d;
    return false;
}

DWORD usbts_backend_speed(const struct usbts_realdev *d, uint8_t *speed)
{
    *speed = d->speed;
    return ERROR_SUCCESS;
}

DWORD usbts_backend_source_open(const struct usbts_realdev *d, struct usbts_hostclock *clock,
                                struct usbts_source **out, char *msg, size_t msglen)
{
    (void)d;
    (void)clock;
    (void)out;
    snprintf(msg, msglen, "no frame-clock source for real controllers yet");
    return ERROR_NOT_SUPPORTED;
}

/* ---- listing ------------------------------------------------------------------ */

#include <dirent.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char root_prefix[256];

/* Copies with explicit truncation: every name here fits, and one that did
 * not would only be cut short in a listing. */
static void set_str(char *dst, size_t len, const char *src)
{
    size_t n = strnlen(src, len - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void usbts_backend_set_root(const char *root)
{
    set_str(root_prefix, sizeof root_prefix, root ? root : "");
}

/* Reads the first line of root_prefix + path, without its newline. */
static bool read_line(const char *path, char *buf, size_t len)
{
    char full[PATH_MAX];
    snprintf(full, sizeof full, "%.255s%.1000s", root_prefix, path);
    FILE *f = fopen(full, "re");
    if (!f)
        return false;
    bool ok = fgets(buf, (int)len, f) != NULL;
    fclose(f);
    if (ok)
        buf[strcspn(buf, "\n")] = '\0';
    return ok;
}

/* The last path component a symlink points to. */
static bool link_base(const char *path, char *buf, size_t len)
{
    char full[PATH_MAX], target[PATH_MAX];
    snprintf(full, sizeof full, "%.255s%.1000s", root_prefix, path);
    ssize_t n = readlink(full, target, sizeof target - 1);
    if (n <= 0)
        return false;
    target[n] = '\0';
    char *slash = strrchr(target, '/');
    set_str(buf, len, slash ? slash + 1 : target);
    return true;
}

static bool exists(const char *path, int mode)
{
    char full[PATH_MAX];
    snprintf(full, sizeof full, "%.255s%.1000s", root_prefix, path);
    return access(full, mode) == 0;
}

/* The controller of bus N: the parent of its root hub in the device tree. */
static bool controller_of_bus(int bus, char *pci, size_t len)
{
    char path[96], full[PATH_MAX], target[PATH_MAX];
    snprintf(path, sizeof path, "/sys/bus/usb/devices/usb%d", bus);
    snprintf(full, sizeof full, "%.255s%.1000s", root_prefix, path);
    ssize_t n = readlink(full, target, sizeof target - 1);
    if (n <= 0)
        return false;
    target[n] = '\0';
    char *last = strrchr(target, '/');
    if (!last)
        return false;
    *last = '\0';
    char *parent = strrchr(target, '/');
    set_str(pci, len, parent ? parent + 1 : target);
    return true;
}

int usbts_backend_list(struct usbts_controller_info *ctl, int max_ctl, int *nctl, struct usbts_usbdev_info *dev,
                       int max_dev, int *ndev)
{
    *nctl = *ndev = 0;
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%.255s/sys/bus/usb/devices", root_prefix);
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -1; /* no USB subsystem at all: nothing to list */
    struct dirent *e;
    while ((e = readdir(d))) {
        char path[512], buf[128];
        int bus = 0, devnum = 0;
        if (strncmp(e->d_name, "usb", 3) == 0 && *nctl < max_ctl) {
            bus = atoi(e->d_name + 3);
            struct usbts_controller_info *c = &ctl[*nctl];
            memset(c, 0, sizeof *c);
            c->bus = bus;
            if (!controller_of_bus(bus, c->pci, sizeof c->pci))
                continue;
            snprintf(path, sizeof path, "/sys/bus/pci/devices/%.63s/driver", c->pci);
            if (!link_base(path, c->driver, sizeof c->driver))
                snprintf(c->driver, sizeof c->driver, "unknown");
            if (strcmp(c->driver, "xhci_hcd") != 0) {
                snprintf(c->why, sizeof c->why, "%.31s has no MFINDEX register: no frame-clock source", c->driver);
            } else {
                snprintf(path, sizeof path, "/sys/kernel/debug/usb/xhci/%.63s/reg-runtime", c->pci);
                c->debugfs_ok = exists(path, R_OK);
                snprintf(path, sizeof path, "/sys/bus/pci/devices/%.63s/resource0", c->pci);
                c->mmio_ok = exists(path, R_OK);
                if (!c->debugfs_ok && !c->mmio_ok)
                    snprintf(c->why, sizeof c->why,
                             "needs root, and debugfs mounted (mount -t debugfs none /sys/kernel/debug)");
            }
            (*nctl)++;
        }
        if (strchr(e->d_name, ':') || *ndev >= max_dev)
            continue; /* interfaces, not devices */
        snprintf(path, sizeof path, "/sys/bus/usb/devices/%.200s/busnum", e->d_name);
        if (!read_line(path, buf, sizeof buf) || (bus = atoi(buf)) <= 0)
            continue;
        snprintf(path, sizeof path, "/sys/bus/usb/devices/%.200s/devnum", e->d_name);
        if (!read_line(path, buf, sizeof buf) || (devnum = atoi(buf)) <= 0)
            continue;
        struct usbts_usbdev_info *u = &dev[*ndev];
        memset(u, 0, sizeof *u);
        u->bus = bus;
        u->dev = devnum;
        snprintf(path, sizeof path, "/sys/bus/usb/devices/%.200s/idVendor", e->d_name);
        if (read_line(path, buf, sizeof buf))
            u->vid = (uint16_t)strtoul(buf, NULL, 16);
        snprintf(path, sizeof path, "/sys/bus/usb/devices/%.200s/idProduct", e->d_name);
        if (read_line(path, buf, sizeof buf))
            u->pid = (uint16_t)strtoul(buf, NULL, 16);
        snprintf(path, sizeof path, "/sys/bus/usb/devices/%.200s/speed", e->d_name);
        if (read_line(path, buf, sizeof buf))
            set_str(u->speed, sizeof u->speed, buf);
        snprintf(path, sizeof path, "/sys/bus/usb/devices/%.200s/product", e->d_name);
        if (read_line(path, buf, sizeof buf))
            set_str(u->product, sizeof u->product, buf);
        controller_of_bus(bus, u->controller, sizeof u->controller);
        (*ndev)++;
    }
    closedir(d);
    return 0;
}
