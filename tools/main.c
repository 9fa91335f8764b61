/* SPDX-License-Identifier: MIT */
/*
 * usbtimesync — the command-line tool: list, track, query, bench.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

const char *cli_prog = "usbtimesync";

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s COMMAND [ARGS]\n"
            "\n"
            "USB time synchronization for Linux: at which host-clock instant a USB (micro)frame\n"
            "started, through the WinUSB time-sync API.\n"
            "\n"
            "commands:\n"
            "  list                      host controllers, their frame-clock sources, USB devices\n"
            "  track [SPEC]              track a controller, a line per interval (--json, --svg)\n"
            "  query SPEC FRAME [UF]     host time at which a (micro)frame started, with its bound\n"
            "  bench                     accuracy scenarios and query latency, as tables\n"
            "  help [COMMAND]            this text, or a command's\n"
            "  version                   the version\n"
            "\n"
            "SPEC: sim (default), sim:key=value,..., /dev/bus/usb/BBB/DDD, BUS:DEV, VVVV:PPPP\n"
            "Exit status: 0 success, 1 runtime failure, 2 usage error (including a malformed SPEC).\n"
            "See usbtimesync(1).\n",
            cli_prog);
}

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

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "track"))
        return cmd_track(argc - 2, argv + 2);
    if (!strcmp(cmd, "query"))
        return cmd_query(argc - 2, argv + 2);
    if (!strcmp(cmd, "list"))
        return cmd_list(argc - 2, argv + 2);
    if (!strcmp(cmd, "bench"))
        return cmd_bench(argc - 2, argv + 2);
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("usbtimesync %s\n", USBTIMESYNC_VERSION_STRING);
        return 0;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
        if (argc > 2) {
            char *sub[] = {argv[2], "--help"};
            if (!strcmp(argv[2], "track"))
                return cmd_track(1, sub + 1);
            if (!strcmp(argv[2], "query"))
                return cmd_query(1, sub + 1);
            if (!strcmp(argv[2], "list"))
                return cmd_list(1, sub + 1);
            if (!strcmp(argv[2], "bench"))
                return cmd_bench(1, sub + 1);
            fprintf(stderr, "%s help: no command '%s'\n\n", cli_prog, argv[2]);
            usage(stderr);
            return EXIT_USAGE;
        }
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "%s: unknown command '%s'\n\n", cli_prog, cmd);
    usage(stderr);
    return EXIT_USAGE;
}
