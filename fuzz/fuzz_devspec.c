/*
 * fuzz_devspec.c — the device-spec parser (and with it the simulator's key
 * parser): any byte string must parse or be refused with a message, and a
 * spec that parses as a simulator must open and close cleanly.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devspec.h"
#include "usbtimesync/usbtimesync.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *spec = malloc(size + 1);
    if (!spec)
        return 0;
    memcpy(spec, data, size);
    spec[size] = '\0';
    struct usbts_devspec ds;
    char msg[256] = "";
    DWORD err = usbts_devspec_parse(spec, &ds, msg, sizeof msg);
    if (err != ERROR_SUCCESS && (err != ERROR_INVALID_PARAMETER || msg[0] == '\0'))
        abort(); /* refused without the documented code or without saying why */
    if (err == ERROR_SUCCESS && ds.kind == USBTS_SPEC_SIM && strlen(spec) == size) {
        HANDLE h = usbts_open(spec);
        if (h == INVALID_HANDLE_VALUE || !usbts_close(h))
            abort();
    }
    free(spec);
    return 0;
}
