/* SPDX-License-Identifier: MIT */
/*
 * usbtimesync — the command-line tool: list, track, query, bench.
 *
 * This file only dispatches: a table of the commands, and help built from it.
 * What the commands share lives in cli.c.
 */
#include <string.h>

#include "cli.h"

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
};

static const struct command commands[] = {
    {"list", cmd_list}, {"track", cmd_track}, {"query", cmd_query},
    {"bench", cmd_bench}, {"status", cmd_status}, {"help", cmd_help}, {"version", cmd_version},
};

static const struct command *find(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(commands[i].name, name))
            return &commands[i];
    return NULL;
}

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
            "  status                    the daemon usbtimesyncd and its controllers' tracking now\n"
            "  help [COMMAND]            this text, or a command's\n"
            "  version                   the version\n"
            "\n"
            "SPEC: sim (default), sim:key=value,..., /dev/bus/usb/BBB/DDD, BUS:DEV, VVVV:PPPP\n"
            "Exit status: 0 success, 1 runtime failure, 2 usage error (including a malformed SPEC).\n"
            "See usbtimesync(1).\n",
            cli_prog);
}

static void help_usage(FILE *f)
{
    fprintf(f,
            "usage: %s help [COMMAND]\n"
            "\n"
            "Without COMMAND, lists the commands; with one, prints its usage and options\n"
            "(the same as '%s COMMAND --help').  Commands: list, track, query, bench, status, help, version.\n",
            cli_prog, cli_prog);
}

static void version_usage(FILE *f)
{
    fprintf(f,
            "usage: %s version\n"
            "\n"
            "Prints the version of usbtimesync.\n",
            cli_prog);
}

int cmd_help(int argc, char **argv)
{
    if (argc == 0) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[0], "-h") || !strcmp(argv[0], "--help")) {
        help_usage(stdout);
        return 0;
    }
    if (argc > 1)
        return cli_usage_error("help", help_usage, "unexpected argument '%s': one COMMAND at most", argv[1]);
    const struct command *c = find(argv[0]);
    if (!c)
        return cli_usage_error("help", help_usage, "no command '%s'", argv[0]);
    char help[] = "--help";
    char *sub[] = {help, NULL};
    return c->run(1, sub);
}

int cmd_version(int argc, char **argv)
{
    if (argc > 0 && (!strcmp(argv[0], "-h") || !strcmp(argv[0], "--help"))) {
        version_usage(stdout);
        return 0;
    }
    if (argc > 0)
        return cli_usage_error("version", version_usage, "unexpected argument '%s'", argv[0]);
    printf("usbtimesync %s\n", USBTIMESYNC_VERSION_STRING);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[1];
    if (!strcmp(name, "-h") || !strcmp(name, "--help"))
        name = "help";
    else if (!strcmp(name, "--version"))
        name = "version";
    const struct command *c = find(name);
    if (!c) {
        fprintf(stderr, "%s: unknown command '%s'\n\n", cli_prog, name);
        usage(stderr);
        return EXIT_USAGE;
    }
    return c->run(argc - 2, argv + 2);
}
