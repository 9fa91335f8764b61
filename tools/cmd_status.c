/* SPDX-License-Identifier: MIT */
/*
 * usbtimesync status — how good the daemon's tracking is right now, in the
 * manner of `chronyc tracking`: for each controller page in the run
 * directory, its writer, age, generation, rate and bound.  Reads the pages
 * the way a client does (read-only, checked, trusted or refused), so it
 * works for an ordinary user.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"
#include "daemon_client.h"
#include "page.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s status [--run-dir DIR]\n"
            "\n"
            "Shows whether usbtimesyncd runs and, for each controller it has a page for: the\n"
            "source, the writer's pid, how old its heartbeat is, whether it is live, the\n"
            "generation, the frame clock's rate against the host clock, the bound on a query\n"
            "now and the devices it watches.  DIR defaults to $%s or %s.\n",
            cli_prog, USBTS_ENV_RUN_DIR, USBTS_DEFAULT_RUN_DIR);
}

bool cli_daemon_page(const char *controller, struct cli_page_summary *out)
{
    char name[96], msg[512];
    snprintf(name, sizeof name, "%s.page", controller);
    const struct usbts_page *p;
    memset(out, 0, sizeof *out);
    if (usbts_daemon_map_page(name, &p, msg, sizeof msg) != ERROR_SUCCESS) {
        snprintf(out->why, sizeof out->why, "%s", msg);
        return false;
    }
    out->found = true;
    snprintf(out->source, sizeof out->source, "%s", p->source);
    out->pid = p->writer_pid;
    out->pid_alive = p->writer_pid && (kill((pid_t)p->writer_pid, 0) == 0 || errno == EPERM);
    out->live = atomic_load(&p->live) != 0;
    int64_t now = usbts_monotonic_ns();
    out->age_s = (double)(now - atomic_load(&p->heartbeat_ns)) / 1e9;
    struct usbts_model m;
    int64_t t;
    enum usbts_page_state st = usbts_page_read(p, UINT32_MAX, &m, &t);
    out->state = st == USBTS_PAGE_OK      ? "fresh"
                 : st == USBTS_PAGE_AGED  ? "aging (writer silent)"
                 : st == USBTS_PAGE_STALE ? "stale (queries fail)"
                 : st == USBTS_PAGE_GONE  ? "gone (controller removed or rebound)"
                                          : "no model";
    if (st == USBTS_PAGE_OK || st == USBTS_PAGE_AGED || st == USBTS_PAGE_STALE) {
        if (st == USBTS_PAGE_STALE)
            usbts_tracker_try_read_model(&p->pub, &m);
        out->generation = m.generation;
        out->ppm = m.period_fp ? ((double)m.period_fp / 4294967296.0 / 125000.0 - 1.0) * 1e6 : 0;
        out->bound_us = (double)usbts_model_bound_ns(&m, t, t) / 1000.0;
        out->stopped = (m.flags & USBTS_MODEL_STOPPED) != 0;
    }
    unsigned n = atomic_load(&p->ndevices);
    for (unsigned i = 0; i < n && i < USBTS_PAGE_MAX_DEVICES; i++)
        out->devices += atomic_load(&p->devices[i].minor) != UINT32_MAX;
    return true;
}

static bool daemon_answers(const char *dir)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s/%s", dir, USBTS_SOCKET_NAME);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

int cmd_status(int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--run-dir")) {
            const char *v = cli_value(argc, argv, &i);
            if (!v)
                return cli_usage_error("status", usage, "--run-dir needs a directory");
            setenv(USBTS_ENV_RUN_DIR, v, 1);
        } else {
            return cli_usage_error("status", usage, "unexpected argument '%s'", argv[i]);
        }
    }
    const char *dir = usbts_daemon_run_dir();
    printf("Daemon          : %s (%s)\n", daemon_answers(dir) ? "running" : "not running", dir);
    DIR *d = opendir(dir);
    if (!d) {
        printf("Pages           : none (%s)\n", strerror(errno));
        return EXIT_RUNTIME;
    }
    int shown = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || len < 6 || strcmp(e->d_name + len - 5, ".page") != 0 || len - 5 >= 64)
            continue;
        char ctl[64];
        snprintf(ctl, sizeof ctl, "%.*s", (int)(len - 5), e->d_name);
        struct cli_page_summary s;
        printf("\nController      : %s\n", ctl);
        shown++;
        if (!cli_daemon_page(ctl, &s)) {
            printf("Page            : refused: %s\n", s.why);
            continue;
        }
        printf("Source          : %s\n", s.source[0] ? s.source : "(none yet)");
        printf("Writer          : pid %u (%s), %s\n", s.pid, s.pid_alive ? "running" : "gone",
               s.live ? "live" : "not live (stopped)");
        printf("Heartbeat       : %.3f s ago\n", s.age_s);
        printf("State           : %s\n", s.state);
        printf("Generation      : %u\n", s.generation);
        printf("Frame clock     : %+.3f ppm against CLOCK_MONOTONIC%s\n", s.ppm, s.stopped ? " (stopped)" : "");
        printf("Bound now       : %.3f us\n", s.bound_us);
        printf("Devices watched : %u\n", s.devices);
    }
    closedir(d);
    if (!shown)
        printf("Pages           : none (no client has tracked a controller yet)\n");
    return 0;
}
