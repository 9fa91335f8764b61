/* SPDX-License-Identifier: MIT */
/*
 * lasterror.h — the calling thread's last error code and message.
 */
#ifndef USBTS_LASTERROR_H
#define USBTS_LASTERROR_H

#include "usbtimesync/winusb.h"

#if defined(__GNUC__)
#define USBTS_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define USBTS_PRINTF(a, b)
#endif

/* Sets the last error and its message; returns FALSE for `return usbts_fail(...)`. */
BOOL usbts_fail(DWORD err, const char *fmt, ...) USBTS_PRINTF(2, 3);

/* Sets the last error with a message composed elsewhere (may be NULL or ""). */
BOOL usbts_fail_msg(DWORD err, const char *msg);

#endif
