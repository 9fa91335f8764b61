/* SPDX-License-Identifier: MIT */
/*
 * clock_opt.c — the --clock option that query and track share: which host
 * timeline the frame times are given on.
 */
#include <string.h>
#include <time.h>

#include "cli.h"

static const char *const clock_names[] = {"monotonic", "realtime", "tai", "boottime"};

bool cli_parse_clock(const char *s, ULONG *clock)
{
    for (ULONG c = 0; c < sizeof clock_names / sizeof clock_names[0]; c++)
        if (!strcmp(s, clock_names[c])) {
            *clock = c;
            return true;
        }
    return false;
}

const char *cli_clock_name(ULONG clock)
{
    return clock < sizeof clock_names / sizeof clock_names[0] ? clock_names[clock] : "?";
}

void cli_clock_calendar(ULONG clock, long long ns, char *buf, size_t len)
{
    buf[0] = '\0';
    if (clock != USBTS_CLOCK_REALTIME && clock != USBTS_CLOCK_TAI)
        return;
    time_t sec = (time_t)(ns / 1000000000);
    long long frac = ns % 1000000000;
    if (frac < 0) {
        frac += 1000000000;
        sec--;
    }
    struct tm tm;
    if (!gmtime_r(&sec, &tm))
        return;
    char day[32];
    strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%09lld%s", day, frac, clock == USBTS_CLOCK_TAI ? " TAI" : "Z");
}
