/* Placeholder until the real-controller backend lands: real devices are not supported yet. */
#include "backend.h"

#include <stdio.h>
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
