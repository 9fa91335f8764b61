/* SPDX-License-Identifier: MIT */
/*
 * fuzz_devspec.c — the device-spec parser, and with it the simulator's key
 * parser: any byte string must parse or be refused with
 * ERROR_INVALID_PARAMETER and a message saying why; what parses must lie in
 * the documented ranges; and a simulator spec that parses must open and close
 * cleanly.  The message buffer is allocated at a size taken from the input,
 * so a write past it, however short, is caught.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devspec.h"
#include "usbtimesync/usbtimesync.h"

static void fail(const char *spec, const char *why)
{
    fprintf(stderr, "fuzz_devspec: '%s': %s\n", spec, why);
    abort();
}

static void check_ranges(const char *spec, const struct usbts_devspec *ds)
{
    switch (ds->kind) {
    case USBTS_SPEC_SIM: {
        const struct usbts_sim_params *p = &ds->sim;
        if (!(fabs(p->drift_ppm) <= 1000) || !(p->read_ns >= 1 && p->read_ns <= 1e6) ||
            !(p->preempt_prob >= 0 && p->preempt_prob <= 1) || !(p->preempt_us >= 0 && p->preempt_us <= 1e6) ||
            !(p->latch >= 0 && p->latch <= 1) || !(fabs(p->slew_ppm) <= 1000) || !(p->wander_ppm >= 0 &&
            p->wander_ppm <= 100) || !(p->slew_at_ms <= 1e9))
            fail(spec, "a simulator parameter outside its documented range");
        break;
    }
    case USBTS_SPEC_PATH:
    case USBTS_SPEC_BUSDEV:
        if (ds->bus < 1 || ds->bus > 999 || ds->dev < 1 || ds->dev > 127)
            fail(spec, "bus or device number outside 1..999 / 1..127");
        break;
    case USBTS_SPEC_VIDPID:
    case USBTS_SPEC_DAEMON_SIM: /* names the daemon's controller; opening it needs a daemon */
        break;
    default:
        fail(spec, "unknown kind");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* First byte: the message buffer's size (1..256). */
    size_t msglen = (size_t)data[0] + 1;
    data++;
    size--;
    char *spec = malloc(size + 1);
    char *msg = malloc(msglen);
    if (!spec || !msg)
        abort();
    memcpy(spec, data, size);
    spec[size] = '\0';
    msg[0] = '\0';
    struct usbts_devspec ds;
    DWORD err = usbts_devspec_parse(spec, &ds, msg, msglen);
    if (err == ERROR_SUCCESS) {
        check_ranges(spec, &ds);
        if (ds.kind == USBTS_SPEC_SIM) {
            SetLastError(0xF00D);
            HANDLE h = usbts_open(spec);
            if (h == INVALID_HANDLE_VALUE)
                fail(spec, "parses as a simulator but does not open");
            USBTS_DEVICE_INFO info;
            if (!usbts_get_device_info(h, &info) || !info.IsSimulated ||
                info.IsVirtualClock != (ds.sim.virtual_clock ? TRUE : FALSE))
                fail(spec, "opened, but the device information does not match the spec");
            if (!usbts_close(h) || GetLastError() != 0xF00D)
                fail(spec, "does not close cleanly");
        }
    } else {
        if (err != ERROR_INVALID_PARAMETER)
            fail(spec, "refused with an undocumented code");
        if (msglen > 1 && msg[0] == '\0')
            fail(spec, "refused without saying why");
        if (strnlen(msg, msglen) == msglen)
            fail(spec, "message not terminated inside its buffer");
        /* usbts_open must refuse it the same way, naming nothing. */
        HANDLE h = usbts_open(spec);
        if (h != INVALID_HANDLE_VALUE || GetLastError() != ERROR_INVALID_PARAMETER ||
            usbts_last_error_message()[0] == '\0')
            fail(spec, "usbts_open does not refuse it with ERROR_INVALID_PARAMETER and a message");
    }
    free(spec);
    free(msg);
    return 0;
}
