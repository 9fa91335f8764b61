/* SPDX-License-Identifier: MIT */
/*
 * devspec.h — parsing the device specs usbts_open() accepts.  Pure: no I/O.
 */
#ifndef USBTS_DEVSPEC_H
#define USBTS_DEVSPEC_H

#include <stddef.h>
#include <stdint.h>

#include "sim.h"

enum usbts_devspec_kind {
    USBTS_SPEC_SIM,    /* sim, sim:key=value,... */
    USBTS_SPEC_DAEMON_SIM, /* sim-daemon: the simulated controller usbtimesyncd --sim serves */
    USBTS_SPEC_PATH,   /* /dev/bus/usb/BBB/DDD */
    USBTS_SPEC_BUSDEV, /* BUS:DEV, decimal */
    USBTS_SPEC_VIDPID, /* vvvv:pppp, hex */
};

struct usbts_devspec {
    enum usbts_devspec_kind kind;
    unsigned bus, dev;     /* PATH, BUSDEV: bus 1..999, dev 1..999 */
    uint16_t vid, pid;     /* VIDPID */
    struct usbts_sim_params sim; /* SIM */
};

#define USBTS_SPEC_MAX_LEN 1024

/* ERROR_SUCCESS, or ERROR_INVALID_PARAMETER with msg saying what is wrong. */
DWORD usbts_devspec_parse(const char *spec, struct usbts_devspec *out, char *msg, size_t msglen);

#endif
