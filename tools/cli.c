/* SPDX-License-Identifier: MIT */
/*
 * cli.c — what every subcommand shares: error reporting with the command's
 * exit statuses, argument parsing, progress on a terminal, JSON strings,
 * output files checked before the work starts, and a clean stop on SIGINT or
 * SIGTERM.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

const char *cli_prog = "usbtimesync";

int cli_usage_error(const char *cmd, void (*u)(FILE *), const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s %s: ", cli_prog, cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n\n", stderr);
    u(stderr);
    return EXIT_USAGE;
}

int cli_library_error(const char *cmd, const char *what)
{
    DWORD err = GetLastError();
    fprintf(stderr, "%s %s: %s: %s (error %u)\n", cli_prog, cmd, what, usbts_last_error_message(), (unsigned)err);
    return err == ERROR_INVALID_PARAMETER ? EXIT_USAGE : EXIT_RUNTIME;
}

bool cli_parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        return false;
    *out = v;
    return true;
}

bool cli_parse_ulong(const char *s, unsigned long long max, unsigned long long *out)
{
    char *end;
    errno = 0;
    if (*s < '0' || *s > '9')
        return false;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end || v > max)
        return false;
    *out = v;
    return true;
}

const char *cli_value(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc)
        return NULL;
    return argv[++*i];
}

static bool progress_shown;

void cli_progress(const char *what, double fraction)
{
    if (!isatty(STDERR_FILENO))
        return;
    int pct = (int)(fraction * 100 + 0.5);
    fprintf(stderr, "\r%s: %3d%% [%-30.*s]", what, pct, pct * 30 / 100, "##############################");
    fflush(stderr);
    progress_shown = true;
}

void cli_progress_done(void)
{
    if (progress_shown && isatty(STDERR_FILENO))
        fputs("\r\033[K", stderr);
    progress_shown = false;
}

void cli_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* ---- output files ------------------------------------------------------------ */

bool cli_output_open(const char *cmd, const char *path, struct cli_output *o)
{
    o->path = path;
    o->created = false;
    /* No O_TRUNC: a file that exists keeps its content until there is
     * something to replace it with; O_EXCL first tells whether we made it. */
    o->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (o->fd >= 0) {
        o->created = true;
        return true;
    }
    if (errno == EEXIST)
        o->fd = open(path, O_WRONLY | O_CLOEXEC);
    if (o->fd < 0) {
        fprintf(stderr, "%s %s: cannot write %s: %s; choose a writable path\n", cli_prog, cmd, path, strerror(errno));
        return false;
    }
    return true;
}

FILE *cli_output_begin(struct cli_output *o)
{
    /* ftruncate fails on what is not a regular file (/dev/stdout, a pipe),
     * which has nothing to truncate anyway. */
    if (ftruncate(o->fd, 0) != 0 && errno != EINVAL)
        return NULL;
    FILE *f = fdopen(o->fd, "w");
    if (f)
        o->fd = -1; /* the FILE owns it now */
    return f;
}

bool cli_output_end(const char *cmd, struct cli_output *o, FILE *f, bool ok)
{
    int err = 0;
    if (!f) {
        err = errno;
        ok = false;
        close(o->fd);
        o->fd = -1;
    } else {
        if (!ok || ferror(f))
            err = errno ? errno : EIO;
        if (fclose(f) != 0 && !err)
            err = errno;
    }
    if (ok && !err) {
        o->created = false; /* written: it stays */
        return true;
    }
    fprintf(stderr, "%s %s: cannot write %s: %s; choose a writable path\n", cli_prog, cmd, o->path,
            strerror(err ? err : EIO));
    return false;
}

void cli_output_discard(struct cli_output *o)
{
    if (o->fd >= 0)
        close(o->fd);
    o->fd = -1;
    if (o->created)
        unlink(o->path);
    o->created = false;
}

/* ---- SIGINT and SIGTERM --------------------------------------------------------- */

/* The signals stay blocked in every thread (the library's sampler threads
 * inherit the mask) and are taken with sigtimedwait: no handler, no race
 * between checking a flag and starting to sleep, and nothing interrupts a
 * half-written line or file. */
static sigset_t stop_set, saved_mask;
static bool stop_blocked;

void cli_block_stop_signals(void)
{
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGINT);
    sigaddset(&stop_set, SIGTERM);
    stop_blocked = pthread_sigmask(SIG_BLOCK, &stop_set, &saved_mask) == 0;
}

void cli_unblock_stop_signals(void)
{
    if (!stop_blocked)
        return;
    /* Consume what arrived, so restoring the mask does not kill the
     * process after a clean stop. */
    struct timespec zero = {0, 0};
    while (sigtimedwait(&stop_set, NULL, &zero) > 0) {
    }
    pthread_sigmask(SIG_SETMASK, &saved_mask, NULL);
    stop_blocked = false;
}

static long long monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int cli_wait_stop(long long deadline_ns)
{
    for (;;) {
        long long left = deadline_ns - monotonic_ns();
        if (left < 0)
            left = 0;
        struct timespec ts = {.tv_sec = left / 1000000000, .tv_nsec = left % 1000000000};
        if (!stop_blocked) {
            while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
            }
            return 0;
        }
        int sig = sigtimedwait(&stop_set, NULL, &ts);
        if (sig > 0)
            return sig;
        if (errno != EINTR || left == 0)
            return 0; /* EAGAIN: the deadline */
        /* EINTR: some other signal's handler ran; wait for what is left */
    }
}

int cli_poll_stop(void)
{
    if (!stop_blocked)
        return 0;
    struct timespec zero = {0, 0};
    int sig = sigtimedwait(&stop_set, NULL, &zero);
    return sig > 0 ? sig : 0;
}

long long cli_now_ns(void)
{
    return monotonic_ns();
}
