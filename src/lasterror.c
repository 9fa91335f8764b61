/* SPDX-License-Identifier: MIT */
/*
 * lasterror.c — per-thread last error, as Windows keeps it, plus a message
 * that names the cause and the fix (usbts_last_error_message()).
 */
#include "lasterror.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "usbtimesync/usbtimesync.h"

static _Thread_local DWORD last_error;
static _Thread_local char last_message[512];

DWORD GetLastError(void)
{
    return last_error;
}

void SetLastError(DWORD err)
{
    last_error = err;
}

const char *usbts_last_error_message(void)
{
    return last_message;
}

BOOL usbts_fail_msg(DWORD err, const char *msg)
{
    last_error = err;
    if (msg && msg[0])
        snprintf(last_message, sizeof last_message, "%s", msg);
    else
        last_message[0] = '\0';
    return FALSE;
}

BOOL usbts_fail(DWORD err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_message, sizeof last_message, fmt, ap);
    va_end(ap);
    last_error = err;
    return FALSE;
}
