/* SPDX-License-Identifier: MIT */
/*
 * backend.h — real USB devices on Linux: resolving specs to usbfs devices,
 * finding their host controller through sysfs, and opening a frame-clock
 * source (xHCI MMIO or debugfs) for that controller.
 *
 * The device layer calls these; it never touches sysfs or usbfs itself.
 */
#ifndef USBTS_BACKEND_H
#define USBTS_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devspec.h"
#include "source.h"

struct usbts_realdev {
    char controller[64];  /* the host controller's sysfs name: a PCI address such as "0000:00:14.0" */
    char driver[32];      /* its driver, e.g. "xhci_hcd" */
    char tracker_key[96]; /* controller plus its root hub's identity: a rebound controller is a new one */
    char sysfs_name[64];  /* the device's name under /sys/bus/usb/devices, e.g. "1-2" */
    char usbfs_path[32];  /* /dev/bus/usb/001/002 */
    uint64_t sysfs_ino;   /* identity of its sysfs directory: a re-enumerated device has another */
    int usbfs_fd;         /* held open while the device is; -1 if none */
    bool usbfs_is_chr;    /* a real usbfs node (not a fixture file): ask it whether it is connected */
    uint16_t vid, pid;
    uint8_t bus, addr;
    uint8_t speed;        /* LowSpeed, FullSpeed, HighSpeed */
};

/* Resolves a PATH, BUSDEV or VIDPID spec and opens the device.  Errors:
 * ERROR_FILE_NOT_FOUND, ERROR_ACCESS_DENIED, ERROR_NOT_SUPPORTED; msg names
 * the cause and the fix. */
DWORD usbts_backend_open(const struct usbts_devspec *spec, struct usbts_realdev *out, char *msg, size_t msglen);

void usbts_backend_close(struct usbts_realdev *d);

/* Is the device still there?  (usbfs answers, sysfs node present.) */
bool usbts_backend_present(const struct usbts_realdev *d);

/* Current speed from sysfs (the device may have re-enumerated). */
DWORD usbts_backend_speed(const struct usbts_realdev *d, uint8_t *speed);

/* Opens the frame-clock source for the device's controller: the first of
 * the kernel module, MMIO and debugfs that works here; USBTS_SOURCE names one
 * to force it.
 * ERROR_NOT_SUPPORTED (no MFINDEX source for this driver; msg names it),
 * ERROR_ACCESS_DENIED (needs root). */
DWORD usbts_backend_source_open(const struct usbts_realdev *d, struct usbts_hostclock *clock,
                                struct usbts_source **out, char *msg, size_t msglen);

/* ---- listing, for `usbtimesync list` ---- */

#define USBTS_MAX_SOURCES 4

/* The real frame-clock sources, in the order the automatic choice tries them:
 * usbts_backend_source_name(0 .. usbts_backend_source_count() - 1). */
int usbts_backend_source_count(void);
const char *usbts_backend_source_name(int i);

struct usbts_controller_info {
    char pci[64];       /* PCI address */
    char driver[32];    /* e.g. xhci_hcd, ehci-pci */
    int bus;            /* USB bus number of its root hub */
    bool source_ok[USBTS_MAX_SOURCES]; /* usable here, by usbts_backend_source_name(i) */
    char why[768];      /* why a source is not usable here, or "" */
};

struct usbts_usbdev_info {
    int bus, dev;
    uint16_t vid, pid;
    char speed[16];     /* as sysfs says: 1.5, 12, 480, 5000, ... */
    char product[64];
    char controller[64];
};

/* Fills up to max_ctl controllers and max_dev devices; returns 0, or -1 when
 * sysfs cannot be read at all.  No USB hardware: 0 with both counts 0. */
int usbts_backend_list(struct usbts_controller_info *ctl, int max_ctl, int *nctl, struct usbts_usbdev_info *dev,
                       int max_dev, int *ndev);

/* Tests point every sysfs/debugfs/dev path at a fixture tree ("" = the real
 * root).  Not thread-safe: call it before opening anything. */
void usbts_backend_set_root(const char *root);
const char *usbts_backend_root(void);

/* The xHCI capability registers HCSPARAMS2 and HCCPARAMS1 of a controller (a
 * PCI address), from debugfs reg-cap or else BAR 0; read once, never written.
 * ERROR_NOT_SUPPORTED / ERROR_ACCESS_DENIED with msg naming cause and fix. */
DWORD usbts_xhci_caps_read(const char *controller, uint32_t *hcsparams2, uint32_t *hccparams1, char *msg,
                           size_t msglen);

#endif
