/* SPDX-License-Identifier: MIT */
/*
 * backend_linux.c — real USB devices on Linux.
 *
 * A spec names a device; sysfs (/sys/bus/usb/devices) says which one, its
 * speed, and its host controller (the parent of the root hub usbN).  The
 * usbfs node is held open so that a removal shows (ENODEV).  The frame
 * clock comes from the controller through the first of the sources in
 * real_sources[] that works: the kernel module, MMIO where the kernel allows
 * it, debugfs.
 *
 * Every path is built from a fixed pattern and names that sysfs gave us and
 * that passed usbts_is_safe_name(); nothing from the caller reaches a path
 * except the bus and device numbers, which the spec parser bounded.
 */
#include "backend.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/usbdevice_fs.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "sysfs_parse.h"

#define USB_DEVICE_MAJOR 189
#define XHCI_PCI_DRIVER "xhci_hcd"

static char root_prefix[256];

void usbts_backend_set_root(const char *root)
{
    snprintf(root_prefix, sizeof root_prefix, "%s", root ? root : "");
}

const char *usbts_backend_root(void)
{
    return root_prefix;
}

/* ---- small sysfs readers ---------------------------------------------------- */

/* root_prefix + path into full; false (and no file touched) if it would not fit. */
static bool full_path(char full[PATH_MAX], const char *path)
{
    int n = snprintf(full, PATH_MAX, "%s%s", root_prefix, path);
    return n > 0 && n < PATH_MAX;
}

/* Reads root_prefix + path into buf (at most len - 1 bytes, NUL-terminated);
 * returns the length, or -1. */
static ssize_t read_file(const char *path, char *buf, size_t len)
{
    char full[PATH_MAX];
    if (!full_path(full, path))
        return -1;
    int fd = open(full, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    return n;
}

static bool read_uint(const char *dir, const char *attr, int base, uint64_t max, uint64_t *out)
{
    char path[PATH_MAX], buf[64];
    snprintf(path, sizeof path, "/sys/bus/usb/devices/%s/%s", dir, attr);
    ssize_t n = read_file(path, buf, sizeof buf);
    return n > 0 && usbts_parse_uint_attr(buf, (size_t)n, base, max, out);
}

/* The component `up` levels above the end of the symlink root_prefix + path. */
static bool link_component(const char *path, int up, char *out, size_t outlen)
{
    char full[PATH_MAX], target[PATH_MAX];
    if (!full_path(full, path))
        return false;
    ssize_t n = readlink(full, target, sizeof target - 1);
    if (n <= 0)
        return false;
    return usbts_parse_link_component(target, (size_t)n, up, out, outlen);
}

static bool inode_of(const char *path, uint64_t *ino)
{
    char full[PATH_MAX];
    struct stat st;
    if (!full_path(full, path) || stat(full, &st) != 0)
        return false;
    *ino = (uint64_t)st.st_ino;
    return true;
}

/* The controller behind bus N (the parent of its root hub) and its driver. */
static bool controller_of_bus(unsigned bus, char *ctl, size_t ctl_len, char *drv, size_t drv_len)
{
    char path[96];
    snprintf(path, sizeof path, "/sys/bus/usb/devices/usb%u", bus);
    if (!link_component(path, 1, ctl, ctl_len))
        return false;
    snprintf(path, sizeof path, "/sys/bus/usb/devices/usb%u/../driver", bus);
    if (!link_component(path, 0, drv, drv_len))
        snprintf(drv, drv_len, "(no driver)");
    return true;
}

/* The identity of the controller's current binding: the inode of its
 * lowest-numbered root hub (an xHCI controller has one per speed, USB 2 and
 * USB 3; both are recreated when the driver is rebound, the controller's own
 * directory is not). */
static bool controller_instance(unsigned bus, uint64_t *ino)
{
    char dir[PATH_MAX], path[96];
    snprintf(path, sizeof path, "/sys/bus/usb/devices/usb%u/..", bus);
    if (!full_path(dir, path))
        return false;
    DIR *d = opendir(dir);
    if (!d)
        return false;
    unsigned lowest = bus;
    struct dirent *e;
    while ((e = readdir(d))) {
        uint64_t n;
        if (strncmp(e->d_name, "usb", 3) == 0 && usbts_parse_uint_attr(e->d_name + 3, strlen(e->d_name + 3), 10, 999, &n) &&
            n > 0 && n < lowest)
            lowest = (unsigned)n;
    }
    closedir(d);
    snprintf(path, sizeof path, "/sys/bus/usb/devices/usb%u", lowest);
    return inode_of(path, ino);
}

/* ---- finding a device -------------------------------------------------------- */

struct found {
    char name[64];
    unsigned bus, dev;
    uint16_t vid, pid;
};

/* Reads one /sys/bus/usb/devices entry; false for interfaces and oddities. */
static bool read_device(const char *name, struct found *f)
{
    uint64_t bus, dev, vid, pid;
    if (strchr(name, ':') || !usbts_is_safe_name(name, strlen(name)))
        return false; /* interfaces are "1-2:1.0" */
    if (!read_uint(name, "busnum", 10, 999, &bus) || !read_uint(name, "devnum", 10, 999, &dev) || bus == 0 ||
        dev == 0 || !read_uint(name, "idVendor", 16, 0xFFFF, &vid) || !read_uint(name, "idProduct", 16, 0xFFFF, &pid))
        return false;
    snprintf(f->name, sizeof f->name, "%s", name);
    f->bus = (unsigned)bus;
    f->dev = (unsigned)dev;
    f->vid = (uint16_t)vid;
    f->pid = (uint16_t)pid;
    return true;
}

/* The device a spec names: bus and device numbers, or the first (lowest
 * bus:dev) with that vendor and product. */
static DWORD find_device(const struct usbts_devspec *spec, struct found *out, char *msg, size_t msglen)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/sys/bus/usb/devices", root_prefix);
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(msg, msglen, "cannot read /sys/bus/usb/devices (%s): is sysfs mounted, and USB support loaded?",
                 strerror(errno));
        return ERROR_FILE_NOT_FOUND;
    }
    bool any = false;
    struct dirent *e;
    while ((e = readdir(d))) {
        struct found f;
        if (!read_device(e->d_name, &f))
            continue;
        bool match = spec->kind == USBTS_SPEC_VIDPID ? f.vid == spec->vid && f.pid == spec->pid
                                                     : f.bus == spec->bus && f.dev == spec->dev;
        if (match && (!any || f.bus < out->bus || (f.bus == out->bus && f.dev < out->dev))) {
            *out = f;
            any = true;
        }
    }
    closedir(d);
    if (any)
        return ERROR_SUCCESS;
    if (spec->kind == USBTS_SPEC_VIDPID)
        snprintf(msg, msglen, "no USB device %04x:%04x is connected; see 'usbtimesync list' or lsusb", spec->vid,
                 spec->pid);
    else
        snprintf(msg, msglen, "no USB device %u:%u (bus:device) is connected; see 'usbtimesync list' or lsusb",
                 spec->bus, spec->dev);
    return ERROR_FILE_NOT_FOUND;
}

/* A PATH spec must name the usbfs node of bus:dev (major 189, minor
 * (bus - 1) * 128 + dev - 1); in a fixture tree a plain file stands in. */
static DWORD check_node(const struct usbts_devspec *spec, char *msg, size_t msglen)
{
    char path[PATH_MAX];
    struct stat st;
    snprintf(path, sizeof path, "%s/dev/bus/usb/%03u/%03u", root_prefix, spec->bus, spec->dev);
    if (stat(path, &st) != 0) {
        snprintf(msg, msglen, "/dev/bus/usb/%03u/%03u does not exist: check the bus and device numbers with lsusb",
                 spec->bus, spec->dev);
        return ERROR_FILE_NOT_FOUND;
    }
    if (root_prefix[0] && S_ISREG(st.st_mode))
        return ERROR_SUCCESS;
    unsigned minor_want = (spec->bus - 1) * 128 + (spec->dev - 1);
    if (!S_ISCHR(st.st_mode) || major(st.st_rdev) != USB_DEVICE_MAJOR || minor(st.st_rdev) != minor_want) {
        snprintf(msg, msglen, "/dev/bus/usb/%03u/%03u is not the usbfs node of device %u:%u (character device %u:%u)",
                 spec->bus, spec->dev, spec->bus, spec->dev, USB_DEVICE_MAJOR, minor_want);
        return ERROR_FILE_NOT_FOUND;
    }
    return ERROR_SUCCESS;
}

DWORD usbts_backend_open(const struct usbts_devspec *spec, struct usbts_realdev *out, char *msg, size_t msglen)
{
    if (spec->kind == USBTS_SPEC_PATH) {
        DWORD err = check_node(spec, msg, msglen);
        if (err != ERROR_SUCCESS)
            return err;
    }
    struct found f;
    DWORD err = find_device(spec, &f, msg, msglen);
    if (err != ERROR_SUCCESS)
        return err;

    memset(out, 0, sizeof *out);
    out->usbfs_fd = -1;
    snprintf(out->sysfs_name, sizeof out->sysfs_name, "%s", f.name);
    out->bus = (uint8_t)(f.bus > 255 ? 0 : f.bus);
    out->addr = (uint8_t)f.dev;
    out->vid = f.vid;
    out->pid = f.pid;
    if (!controller_of_bus(f.bus, out->controller, sizeof out->controller, out->driver, sizeof out->driver)) {
        snprintf(msg, msglen, "cannot find the host controller of bus %u in sysfs (/sys/bus/usb/devices/usb%u)", f.bus,
                 f.bus);
        return ERROR_FILE_NOT_FOUND;
    }
    char path[PATH_MAX], buf[64];
    snprintf(path, sizeof path, "/sys/bus/usb/devices/%s/speed", f.name);
    ssize_t n = read_file(path, buf, sizeof buf);
    out->speed = (uint8_t)(n > 0 ? usbts_parse_speed(buf, (size_t)n) : 0);
    if (out->speed == 0)
        out->speed = HighSpeed;
    snprintf(path, sizeof path, "/sys/bus/usb/devices/%s", f.name);
    uint64_t hub_ino = 0;
    if (!inode_of(path, &out->sysfs_ino) || !controller_instance(f.bus, &hub_ino)) {
        snprintf(msg, msglen, "USB device %u:%u went away while being opened", f.bus, f.dev);
        return ERROR_FILE_NOT_FOUND;
    }
    snprintf(out->tracker_key, sizeof out->tracker_key, "%s#%llu", out->controller, (unsigned long long)hub_ino);

    /* Held open so that removal shows: usbfs answers ENODEV once the device
     * is gone.  Its ioctls need write access; where only reading is allowed
     * the descriptor still pins the device and sysfs still shows removal. */
    snprintf(out->usbfs_path, sizeof out->usbfs_path, "/dev/bus/usb/%03u/%03u", f.bus, f.dev);
    if (!full_path(path, out->usbfs_path))
        return ERROR_FILE_NOT_FOUND;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0 && (errno == EACCES || errno == EPERM))
        fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == EACCES || e == EPERM) {
            snprintf(msg, msglen,
                     "no permission to open %s: run as root, or give your user access with a udev rule "
                     "(SUBSYSTEM==\"usb\", ATTR{idVendor}==\"%04x\", MODE=\"0660\", GROUP=\"plugdev\")",
                     out->usbfs_path, f.vid);
            return ERROR_ACCESS_DENIED;
        }
        snprintf(msg, msglen, "cannot open %s (%s): is devtmpfs mounted on /dev?", out->usbfs_path, strerror(e));
        return ERROR_FILE_NOT_FOUND;
    }
    struct stat st;
    out->usbfs_is_chr = fstat(fd, &st) == 0 && S_ISCHR(st.st_mode);
    out->usbfs_fd = fd;
    return ERROR_SUCCESS;
}

void usbts_backend_close(struct usbts_realdev *d)
{
    if (d->usbfs_fd >= 0)
        close(d->usbfs_fd);
    d->usbfs_fd = -1;
}

bool usbts_backend_present(const struct usbts_realdev *d)
{
    char path[PATH_MAX], buf[16];
    uint64_t ino;
    snprintf(path, sizeof path, "/sys/bus/usb/devices/%s", d->sysfs_name);
    if (!inode_of(path, &ino) || ino != d->sysfs_ino)
        return false; /* gone, or another device enumerated under its name */
    snprintf(path, sizeof path, "/sys/bus/usb/devices/%s/authorized", d->sysfs_name);
    ssize_t n = read_file(path, buf, sizeof buf);
    if (n > 0 && buf[0] == '0')
        return false; /* deauthorized: no configuration, no traffic */
    if (d->usbfs_is_chr && d->usbfs_fd >= 0) {
        struct usbdevfs_connectinfo ci;
        if (ioctl(d->usbfs_fd, USBDEVFS_CONNECTINFO, &ci) != 0 && errno == ENODEV)
            return false;
    }
    return true;
}

DWORD usbts_backend_speed(const struct usbts_realdev *d, uint8_t *speed)
{
    char path[PATH_MAX], buf[64];
    snprintf(path, sizeof path, "/sys/bus/usb/devices/%s/speed", d->sysfs_name);
    ssize_t n = read_file(path, buf, sizeof buf);
    int s = n > 0 ? usbts_parse_speed(buf, (size_t)n) : 0;
    *speed = (uint8_t)(s ? s : d->speed);
    return ERROR_SUCCESS;
}

/* ---- frame-clock sources ------------------------------------------------------ */

/* Tried in this order when USBTS_SOURCE does not choose; everything that
 * names the sources (USBTS_SOURCE, its error, `list`) is derived from here. */
static const struct {
    const char *name;
    usbts_source_open_fn open;
} real_sources[] = {
    {"kmod", usbts_kmod_source_open},
    {"mmio", usbts_mmio_source_open},
    {"debugfs", usbts_debugfs_source_open},
};
#define NSOURCES ((int)(sizeof real_sources / sizeof real_sources[0]))
_Static_assert(NSOURCES <= USBTS_MAX_SOURCES, "struct usbts_controller_info has room for every source");

int usbts_backend_source_count(void)
{
    return NSOURCES;
}

const char *usbts_backend_source_name(int i)
{
    return i >= 0 && i < NSOURCES ? real_sources[i].name : NULL;
}

/* The source USBTS_SOURCE asks for: 0 automatic, i + 1 real_sources[i], -1
 * a value that names none. */
static int source_choice(const char *env)
{
    if (!env || !*env || strcmp(env, "auto") == 0)
        return 0;
    for (int i = 0; i < NSOURCES; i++)
        if (strcmp(env, real_sources[i].name) == 0)
            return i + 1;
    return -1;
}

/* "kmod, mmio or debugfs" */
static void source_names(char *out, size_t len)
{
    size_t n = 0;
    out[0] = '\0';
    for (int i = 0; i < NSOURCES && n < len; i++)
        n += (size_t)snprintf(out + n, len - n, "%s%s", i == 0 ? "" : i == NSOURCES - 1 ? " or " : ", ",
                              real_sources[i].name);
}

/* Appends "name: what" to a "; "-separated list. */
static void add_reason(char *list, size_t len, const char *name, const char *what)
{
    size_t n = strlen(list);
    if (n < len)
        snprintf(list + n, len - n, "%s%s: %s", n ? "; " : "", name, what);
}

static bool has_mfindex(const char *driver)
{
    return strcmp(driver, XHCI_PCI_DRIVER) == 0 || strcmp(driver, "xhci-hcd") == 0;
}

static void say_once(const char *what)
{
    static atomic_bool said;
    if (!atomic_exchange(&said, true))
        fprintf(stderr, "usbtimesync: %s\n", what);
}

DWORD usbts_backend_source_open(const struct usbts_realdev *d, struct usbts_hostclock *clock,
                                struct usbts_source **out, char *msg, size_t msglen)
{
    if (!has_mfindex(d->driver)) {
        snprintf(msg, msglen,
                 "controller %s is driven by %s, which has no MFINDEX frame counter (only xHCI controllers, "
                 "xhci_hcd, have one): connect the device to an xHCI (USB 3) port",
                 d->controller, d->driver);
        return ERROR_NOT_SUPPORTED;
    }
    const char *env = getenv("USBTS_SOURCE");
    int choice = source_choice(env);
    if (choice < 0) {
        char names[64];
        source_names(names, sizeof names);
        snprintf(msg, msglen, "USBTS_SOURCE=%.32s is not a frame-clock source: use %s, or unset it", env, names);
        return ERROR_INVALID_PARAMETER;
    }
    if (choice > 0) {
        DWORD err = real_sources[choice - 1].open(root_prefix, d->controller, clock, out, msg, msglen);
        return err == ERROR_FILE_NOT_FOUND ? ERROR_NOT_SUPPORTED : err; /* the device is there; the source is not */
    }

    /* told: the failures worth a note when a later source is used (a source
     * that is not installed is not news); all: every failure, for when
     * nothing works. */
    char told[600] = "", all[900] = "";
    for (int i = 0; i < NSOURCES; i++) {
        char m[400] = "";
        DWORD err = real_sources[i].open(root_prefix, d->controller, clock, out, m, sizeof m);
        if (err == ERROR_SUCCESS) {
            if (told[0]) {
                char note[800];
                snprintf(note, sizeof note, "using the %s source for %s, because %s", real_sources[i].name,
                         d->controller, told);
                say_once(note);
            }
            return ERROR_SUCCESS;
        }
        if (err != ERROR_FILE_NOT_FOUND)
            add_reason(told, sizeof told, real_sources[i].name, m);
        add_reason(all, sizeof all, real_sources[i].name, m);
        if (err == ERROR_ACCESS_DENIED || err == ERROR_NOT_ENOUGH_MEMORY) {
            /* Privilege is the reason for the rest too: say what was tried. */
            snprintf(msg, msglen, "%s", all);
            return err;
        }
    }
    snprintf(msg, msglen, "%s", all);
    return ERROR_NOT_SUPPORTED;
}

/* ---- listing ------------------------------------------------------------------ */

static void probe_sources(struct usbts_controller_info *c)
{
    if (!has_mfindex(c->driver)) {
        snprintf(c->why, sizeof c->why, "%s has no MFINDEX frame counter: no frame-clock source", c->driver);
        return;
    }
    struct usbts_hostclock clock = {0};
    for (int i = 0; i < NSOURCES; i++) {
        struct usbts_source *s = NULL;
        char m[400] = "";
        c->source_ok[i] = real_sources[i].open(root_prefix, c->pci, &clock, &s, m, sizeof m) == ERROR_SUCCESS;
        if (c->source_ok[i])
            usbts_source_destroy(s);
        else
            add_reason(c->why, sizeof c->why, real_sources[i].name, m);
    }
}

int usbts_backend_list(struct usbts_controller_info *ctl, int max_ctl, int *nctl, struct usbts_usbdev_info *dev,
                       int max_dev, int *ndev)
{
    *nctl = *ndev = 0;
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/sys/bus/usb/devices", root_prefix);
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -1; /* no USB subsystem at all: nothing to list */
    struct dirent *e;
    while ((e = readdir(d))) {
        struct found f;
        if (!read_device(e->d_name, &f))
            continue;
        if (strncmp(f.name, "usb", 3) == 0 && *nctl < max_ctl) { /* a root hub: its controller */
            struct usbts_controller_info *c = &ctl[*nctl];
            memset(c, 0, sizeof *c);
            c->bus = (int)f.bus;
            if (controller_of_bus(f.bus, c->pci, sizeof c->pci, c->driver, sizeof c->driver)) {
                /* An xHCI controller has a root hub per speed: probe it once. */
                int same = 0;
                while (same < *nctl && strcmp(ctl[same].pci, c->pci) != 0)
                    same++;
                if (same < *nctl) {
                    memcpy(c->source_ok, ctl[same].source_ok, sizeof c->source_ok);
                    memcpy(c->why, ctl[same].why, sizeof c->why);
                } else {
                    probe_sources(c);
                }
                (*nctl)++;
            }
        }
        if (*ndev >= max_dev)
            continue;
        struct usbts_usbdev_info *u = &dev[*ndev];
        memset(u, 0, sizeof *u);
        u->bus = (int)f.bus;
        u->dev = (int)f.dev;
        u->vid = f.vid;
        u->pid = f.pid;
        char path[PATH_MAX], buf[128];
        snprintf(path, sizeof path, "/sys/bus/usb/devices/%s/speed", f.name);
        ssize_t n = read_file(path, buf, sizeof buf);
        if (n > 0)
            snprintf(u->speed, sizeof u->speed, "%.*s", (int)strcspn(buf, "\n"), buf);
        snprintf(path, sizeof path, "/sys/bus/usb/devices/%s/product", f.name);
        n = read_file(path, buf, sizeof buf);
        if (n > 0)
            snprintf(u->product, sizeof u->product, "%.*s", (int)strcspn(buf, "\n"), buf);
        char drv[32];
        if (!controller_of_bus(f.bus, u->controller, sizeof u->controller, drv, sizeof drv))
            snprintf(u->controller, sizeof u->controller, "?");
        (*ndev)++;
    }
    closedir(d);
    return 0;
}
