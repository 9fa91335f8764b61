/* SPDX-License-Identifier: MIT */
/*
 * log.h — the daemon's log: lines on stderr (the journal under systemd),
 * with a syslog-style priority prefix the journal understands.
 */
#ifndef USBTSD_LOG_H
#define USBTSD_LOG_H

#include <stdbool.h>

enum { LOG_ERR = 3, LOG_WARNING = 4, LOG_INFO = 6, LOG_DEBUG = 7 };

extern bool log_verbose;

void logmsg(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
