/* SPDX-License-Identifier: MIT */
/*
 * devspec.c — the device specs usbts_open() accepts, parsed strictly: a spec
 * that could mean two things, or nothing, is refused with a message rather
 * than guessed at.
 */
#include "devspec.h"

#include <stdio.h>
#include <string.h>

/* Parses exactly [first,last) as an unsigned number in `base` with 1..maxdigits digits. */
static bool parse_uint(const char *first, const char *last, int base, int maxdigits, unsigned *out)
{
    int n = (int)(last - first);
    if (n < 1 || n > maxdigits)
        return false;
    unsigned v = 0;
    for (const char *p = first; p < last; p++) {
        int d;
        if (*p >= '0' && *p <= '9')
            d = *p - '0';
        else if (base == 16 && *p >= 'a' && *p <= 'f')
            d = *p - 'a' + 10;
        else if (base == 16 && *p >= 'A' && *p <= 'F')
            d = *p - 'A' + 10;
        else
            return false;
        v = v * (unsigned)base + (unsigned)d;
    }
    *out = v;
    return true;
}

static DWORD invalid(char *msg, size_t msglen, const char *spec, const char *why)
{
    snprintf(msg, msglen,
             "device spec '%.64s' %s; use sim[:key=value,...], sim-daemon, /dev/bus/usb/BBB/DDD, BUS:DEV (decimal) or "
             "VVVV:PPPP (hex)",
             spec, why);
    return ERROR_INVALID_PARAMETER;
}

static DWORD parse_busdev(const char *spec, const char *sep, struct usbts_devspec *out, char *msg, size_t msglen)
{
    unsigned bus, dev;
    if (!parse_uint(spec, sep, 10, 3, &bus) || !parse_uint(sep + 1, sep + 1 + strlen(sep + 1), 10, 3, &dev))
        return invalid(msg, msglen, spec, "is not BUS:DEV");
    if (bus < 1 || dev < 1 || dev > 127)
        return invalid(msg, msglen, spec, "names no possible device (bus >= 1, device 1..127)");
    out->kind = USBTS_SPEC_BUSDEV;
    out->bus = bus;
    out->dev = dev;
    return ERROR_SUCCESS;
}

DWORD usbts_devspec_parse(const char *spec, struct usbts_devspec *out, char *msg, size_t msglen)
{
    memset(out, 0, sizeof *out);
    usbts_sim_params_default(&out->sim);
    if (!spec)
        return invalid(msg, msglen, "(null)", "is missing");
    size_t len = strnlen(spec, USBTS_SPEC_MAX_LEN + 1);
    if (len == 0)
        return invalid(msg, msglen, spec, "is empty");
    if (len > USBTS_SPEC_MAX_LEN)
        return invalid(msg, msglen, spec, "is too long");

    if (strcmp(spec, "sim") == 0) {
        out->kind = USBTS_SPEC_SIM;
        return ERROR_SUCCESS;
    }
    if (strcmp(spec, "sim-daemon") == 0) {
        out->kind = USBTS_SPEC_DAEMON_SIM;
        return ERROR_SUCCESS;
    }
    if (strncmp(spec, "sim:", 4) == 0) {
        out->kind = USBTS_SPEC_SIM;
        if (spec[4] == '\0')
            return invalid(msg, msglen, spec, "has an empty key list after 'sim:'");
        return usbts_sim_params_parse(spec + 4, &out->sim, msg, msglen);
    }

    static const char prefix[] = "/dev/bus/usb/";
    if (strncmp(spec, prefix, sizeof prefix - 1) == 0) {
        const char *b = spec + sizeof prefix - 1;
        const char *slash = strchr(b, '/');
        unsigned bus, dev;
        if (!slash || !parse_uint(b, slash, 10, 3, &bus) ||
            !parse_uint(slash + 1, slash + 1 + strlen(slash + 1), 10, 3, &dev))
            return invalid(msg, msglen, spec, "is not a usbfs node /dev/bus/usb/BBB/DDD");
        if (bus < 1 || dev < 1 || dev > 127)
            return invalid(msg, msglen, spec, "names no possible device (bus >= 1, device 1..127)");
        out->kind = USBTS_SPEC_PATH;
        out->bus = bus;
        out->dev = dev;
        return ERROR_SUCCESS;
    }

    const char *colon = strchr(spec, ':');
    if (colon && !strchr(colon + 1, ':')) {
        size_t left = (size_t)(colon - spec), right = strlen(colon + 1);
        /* lsusb prints ids as four hex digits and bus/device as at most three decimal ones */
        if (left == 4 && right == 4) {
            unsigned vid, pid;
            if (!parse_uint(spec, colon, 16, 4, &vid) || !parse_uint(colon + 1, colon + 5, 16, 4, &pid))
                return invalid(msg, msglen, spec, "is not VVVV:PPPP in hex");
            out->kind = USBTS_SPEC_VIDPID;
            out->vid = (uint16_t)vid;
            out->pid = (uint16_t)pid;
            return ERROR_SUCCESS;
        }
        return parse_busdev(spec, colon, out, msg, msglen);
    }
    return invalid(msg, msglen, spec, "is not recognised");
}
