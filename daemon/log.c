/* SPDX-License-Identifier: MIT */
/*
 * log.c — stderr logging with <N> priority prefixes (sd-daemon(3) style).
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

bool log_verbose;

void logmsg(int prio, const char *fmt, ...)
{
    if (prio >= LOG_DEBUG && !log_verbose)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "<%d>usbtimesyncd: ", prio);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}
