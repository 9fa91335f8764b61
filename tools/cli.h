/* SPDX-License-Identifier: MIT */
/*
 * cli.h — what the subcommands of the usbtimesync command share.
 *
 * Exit status: 0 success, 1 runtime failure (including an output file that
 * cannot be written, and a frame `query` cannot answer), 2 usage error
 * (unknown command or option, a bad number, a malformed device spec).
 * cli.c defines what is declared here; main.c only dispatches.
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
int cmd_status(int argc, char **argv);

/* What the daemon's page for a controller says (cmd_status.c); false with
 * why when there is none or it is refused. */
struct cli_page_summary {
    bool found, live, pid_alive, stopped;
    char source[16];
    unsigned pid, generation, devices;
    double age_s, ppm, bound_us;
    const char *state;
    char why[512];
};
bool cli_daemon_page(const char *controller, struct cli_page_summary *out);
int cmd_help(int argc, char **argv);
int cmd_version(int argc, char **argv);

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

/* An output file named on the command line (--svg FILE), opened before any
 * work starts so an unwritable path fails at once, and without truncating: a
 * file that exists is replaced only when its new content is ready, a file
 * this run created is removed again if the run writes nothing into it. */
struct cli_output {
    const char *path;
    int fd;
    bool created;
};
/* false (after "cannot write PATH: why" on stderr) if the path is not writable. */
bool cli_output_open(const char *cmd, const char *path, struct cli_output *o);
/* Truncates the file and hands it over as a stream; NULL (errno set) on failure. */
FILE *cli_output_begin(struct cli_output *o);
/* Closes the stream from cli_output_begin (f may be NULL: it failed); ok false
 * if writing failed.  Reports a failure on stderr and returns false. */
bool cli_output_end(const char *cmd, struct cli_output *o, FILE *f, bool ok);
/* Nothing will be written: leaves the path as it was found. */
void cli_output_discard(struct cli_output *o);

/* SIGINT and SIGTERM as a request to stop cleanly.  Block them before the
 * device is opened (so the library's threads inherit the mask); then
 * cli_wait_stop sleeps until a CLOCK_MONOTONIC deadline and returns 0, or
 * returns the signal that asked to stop; cli_poll_stop checks without
 * sleeping.  cli_unblock_stop_signals drops what arrived and restores the mask. */
void cli_block_stop_signals(void);
void cli_unblock_stop_signals(void);
int cli_wait_stop(long long deadline_ns);
int cli_poll_stop(void);
long long cli_now_ns(void);

#endif
