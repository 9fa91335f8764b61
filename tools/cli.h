/* SPDX-License-Identifier: MIT */
/*
 * cli.h — what the subcommands of the usbtimesync command share.
 *
 * Exit status: 0 success, 1 runtime failure, 2 usage error (unknown command or
 * option, a bad number, a malformed device spec).
 */
#ifndef USBTS_CLI_H
#define USBTS_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "usbtimesync/usbtimesync.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

extern const char *cli_prog;

int cmd_track(int argc, char **argv);
int cmd_query(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_bench(int argc, char **argv);

/* Prints "usbtimesync CMD: message" and the subcommand's usage; returns 2. */
int cli_usage_error(const char *cmd, void (*usage)(FILE *), const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prints the library's last error with its cause and fix; returns 1, or 2
 * when the error was a malformed argument (ERROR_INVALID_PARAMETER). */
int cli_library_error(const char *cmd, const char *what);

bool cli_parse_double(const char *s, double lo, double hi, double *out);
bool cli_parse_ulong(const char *s, unsigned long long max, unsigned long long *out);
/* Consumes "--opt VALUE" at argv[*i]; false (after a usage error message) if absent. */
const char *cli_value(int argc, char **argv, int *i);

/* A one-line progress indicator on stderr, only when stderr is a terminal. */
void cli_progress(const char *what, double fraction);
void cli_progress_done(void);

/* --clock: "monotonic", "realtime", "tai", "boottime" to a USBTS_CLOCK_* and back. */
#define CLI_CLOCK_CHOICES "monotonic|realtime|tai|boottime"
bool cli_parse_clock(const char *s, ULONG *clock);
const char *cli_clock_name(ULONG clock);
/* A REALTIME or TAI instant as an ISO 8601 date with ns; "" for other clocks. */
void cli_clock_calendar(ULONG clock, long long ns, char *buf, size_t len);

/* Writes s as a JSON string literal. */
void cli_json_string(FILE *f, const char *s);

#endif
