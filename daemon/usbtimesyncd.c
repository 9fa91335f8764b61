/* SPDX-License-Identifier: MIT */
/*
 * usbtimesyncd — one tracker per host controller for the whole machine.
 *
 * Clients (any process using libusbtimesync) register the devices they open
 * over a Unix socket, proving access with the device's usbfs descriptor; the
 * daemon samples a controller, with the library's own tracker and sources,
 * only while at least one client tracks it, and publishes its model in a
 * page file that clients map read-only.  See protocol.h and usbtimesyncd(8).
 *
 * One thread serves the socket; each tracked controller has the library's
 * sampler thread.  Everything here runs on the serving thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include "backend.h"
#include "daemon_client.h"
#include "devspec.h"
#include "log.h"
#include "page.h"
#include "pagefile.h"
#include "protocol.h"
#include "registry.h"
#include "sim.h"
#include "tracker.h"

#define MAX_CLIENTS 256
#define MAX_CTLS 64
#define MAX_DEVS 1024
#define SIM_NAME "sim"

struct ctl {
    bool used;
    char key[96];      /* the library's tracker key: controller#instance */
    char name[64];     /* controller (PCI address), or "sim" */
    uint64_t instance;
    struct usbts_page *page;
    uint32_t tracker;  /* USBTS_NO_TRACKER while no device is registered */
    int refs;          /* devices registered */
    bool slot_used[USBTS_PAGE_MAX_DEVICES];
};

struct dev {
    bool used;
    int client;
    uint32_t id;
    int ctl;
    uint32_t page_dev; /* UINT32_MAX: none (the simulated controller) */
    struct usbts_realdev real;
    bool is_sim;
    uint32_t starts;
};

static struct ctl ctls[MAX_CTLS];
static struct dev devs[MAX_DEVS];
static int client_fd[MAX_CLIENTS];
static uint32_t next_id = 1;

static const char *opt_run_dir = USBTS_DEFAULT_RUN_DIR;
static const char *opt_controller;
static bool opt_sim;
static struct usbts_sim_params sim_params;
static const char *opt_test_root; /* TESTS ONLY: a fixture tree stands in for /sys and /dev */

/* ---- replies -------------------------------------------------------------------- */

static void reply(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply(int fd, const char *fmt, ...)
{
    char buf[USBTSD_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof buf)
        n = sizeof buf - 1;
    (void)send(fd, buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void reply_err(int fd, DWORD err, const char *msg)
{
    reply(fd, "ERR %u %s", (unsigned)(err ? err : ERROR_GEN_FAILURE), msg && *msg ? msg : "failed");
}

/* ---- controllers ------------------------------------------------------------------ */

static DWORD real_factory(const void *ctx, struct usbts_hostclock *clock, struct usbts_source **out, char *msg,
                          size_t msglen)
{
    return usbts_backend_source_open((const struct usbts_realdev *)ctx, clock, out, msg, msglen);
}

static bool real_present(const void *ctx)
{
    return usbts_backend_present((const struct usbts_realdev *)ctx);
}

/* The page of a controller being registered: its tracker takes over what an
 * earlier writer left, carrying the generation on if it still agrees. */
static DWORD ctl_tracker(struct ctl *c, const struct usbts_realdev *real, char *msg, size_t msglen)
{
    if (c->tracker != USBTS_NO_TRACKER)
        return ERROR_SUCCESS;
    uint32_t idx;
    usbts_registry_lock();
    DWORD err = usbts_tracker_get(c->key, false, c->page, &idx);
    if (err == ERROR_SUCCESS) {
        if (real) {
            err = usbts_tracker_set_factory(idx, real_factory, real, sizeof *real);
        } else {
            struct usbts_source *src;
            err = usbts_sim_create(&sim_params, &c->page->pub.clock, &src);
            if (err == ERROR_SUCCESS)
                usbts_tracker_set_source(idx, src);
        }
        if (err != ERROR_SUCCESS)
            usbts_tracker_put(idx);
    }
    if (err == ERROR_SUCCESS) {
        struct usbts_model m;
        if (usbts_tracker_try_read_model(&c->page->pub, &m) && m.generation != 0)
            usbts_tracker_inherit(idx, &m, atomic_load(&c->page->heartbeat_ns));
        c->tracker = idx;
    }
    usbts_registry_unlock();
    if (err != ERROR_SUCCESS)
        snprintf(msg, msglen, "the daemon is out of memory or trackers");
    return err;
}

static int ctl_find_or_create(const char *key, const char *name, uint64_t instance, char *msg, size_t msglen)
{
    int free_i = -1;
    for (int i = 0; i < MAX_CTLS; i++) {
        struct ctl *c = &ctls[i];
        if (!c->used) {
            if (free_i < 0)
                free_i = i;
            continue;
        }
        if (strcmp(c->key, key) == 0 && !atomic_load(&c->page->pub.gone))
            return i;
    }
    /* Another instance of the same controller (rebound) keeps its old page
     * marked gone: its clients' handles answer ERROR_DEVICE_NOT_CONNECTED. */
    for (int i = 0; i < MAX_CTLS; i++)
        if (ctls[i].used && strcmp(ctls[i].name, name) == 0)
            atomic_store(&ctls[i].page->pub.gone, true);
    if (free_i < 0) {
        snprintf(msg, msglen, "the daemon serves %d controllers already", MAX_CTLS);
        return -1;
    }
    bool reused = false;
    struct usbts_page *p = pagefile_open(name, name, instance, &reused);
    if (!p) {
        snprintf(msg, msglen, "the daemon cannot write its page file for %s (see its log)", name);
        return -1;
    }
    struct ctl *c = &ctls[free_i];
    memset(c, 0, sizeof *c);
    c->used = true;
    snprintf(c->key, sizeof c->key, "%s", key);
    snprintf(c->name, sizeof c->name, "%s", name);
    c->instance = instance;
    c->page = p;
    c->tracker = USBTS_NO_TRACKER;
    logmsg(LOG_INFO, "controller %s: page %s/%s.page (%s)", name, opt_run_dir, name,
           reused ? "taken over from an earlier daemon" : "new");
    return free_i;
}

static struct dev *dev_new(int client, int ctl)
{
    for (int i = 0; i < MAX_DEVS; i++) {
        if (!devs[i].used) {
            struct dev *d = &devs[i];
            memset(d, 0, sizeof *d);
            d->used = true;
            d->client = client;
            d->ctl = ctl;
            d->id = next_id++;
            d->page_dev = UINT32_MAX;
            d->real.usbfs_fd = -1;
            return d;
        }
    }
    return NULL;
}

static struct dev *dev_of(int client, const char *args)
{
    unsigned long id = strtoul(args, NULL, 10);
    for (int i = 0; i < MAX_DEVS; i++)
        if (devs[i].used && devs[i].client == client && devs[i].id == id)
            return &devs[i];
    return NULL;
}

static void dev_close(struct dev *d)
{
    struct ctl *c = &ctls[d->ctl];
    usbts_registry_lock();
    for (; d->starts > 0; d->starts--)
        usbts_tracker_release(c->tracker);
    if (d->page_dev != UINT32_MAX) {
        usbts_tracker_unwatch(c->tracker, &c->page->devices[d->page_dev].unplugged);
        atomic_store(&c->page->devices[d->page_dev].minor, UINT32_MAX);
        c->slot_used[d->page_dev] = false;
    }
    if (--c->refs == 0) {
        usbts_tracker_put(c->tracker); /* the last device: no sampling, no thread */
        c->tracker = USBTS_NO_TRACKER;
    }
    usbts_registry_unlock();
    usbts_backend_close(&d->real);
    logmsg(LOG_DEBUG, "client %d: device %u closed", d->client, (unsigned)d->id);
    d->used = false;
}

/* ---- access ------------------------------------------------------------------------ */

/* Is fd an open descriptor of bus:dev's usbfs node?  Proof of access: usbfs
 * let the client open it (permissions, groups and ACLs all applied there). */
static bool check_usbfs_fd(int fd, unsigned bus, unsigned dev, char *msg, size_t msglen)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || (fl & O_PATH)) {
        snprintf(msg, msglen, "the descriptor passed for device %u:%u is an O_PATH one (opening it needs no "
                 "permission on the node): open /dev/bus/usb/%03u/%03u for reading", bus, dev, bus, dev);
        return false;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(msg, msglen, "cannot fstat the descriptor passed for device %u:%u", bus, dev);
        return false;
    }
    unsigned want = (bus - 1) * 128 + (dev - 1);
    if (S_ISCHR(st.st_mode) && major(st.st_rdev) == USBTSD_USB_MAJOR && minor(st.st_rdev) == want)
        return true;
    if (opt_test_root && S_ISREG(st.st_mode)) {
        /* TESTS ONLY: in a fixture tree a plain file stands in for the node;
         * it must be that very file. */
        char path[512];
        struct stat ft;
        snprintf(path, sizeof path, "%s/dev/bus/usb/%03u/%03u", opt_test_root, bus, dev);
        if (stat(path, &ft) == 0 && ft.st_dev == st.st_dev && ft.st_ino == st.st_ino)
            return true;
    }
    snprintf(msg, msglen,
             "the descriptor passed for device %u:%u is not its usbfs node /dev/bus/usb/%03u/%03u (character "
             "device %u:%u): access to a device is proven by opening its node",
             bus, dev, bus, dev, USBTSD_USB_MAJOR, want);
    return false;
}

/* ---- requests ------------------------------------------------------------------------- */

static void req_open(int client, int fd, const char *args, int passed_fd)
{
    char msg[600] = "";
    unsigned bus, devnum;
    if (sscanf(args, "%u %u", &bus, &devnum) != 2 || bus < 1 || bus > 999 || devnum < 1 || devnum > 127) {
        reply_err(fd, ERROR_INVALID_PARAMETER, "OPEN needs a bus (1..999) and a device number (1..127)");
        return;
    }
    if (passed_fd < 0) {
        reply_err(fd, ERROR_ACCESS_DENIED, "OPEN needs the device's usbfs descriptor (SCM_RIGHTS)");
        return;
    }
    if (!check_usbfs_fd(passed_fd, bus, devnum, msg, sizeof msg)) {
        logmsg(LOG_WARNING, "client %d: refused: %s", client, msg);
        reply_err(fd, ERROR_ACCESS_DENIED, msg);
        return;
    }
    struct usbts_devspec spec = {.kind = USBTS_SPEC_BUSDEV, .bus = bus, .dev = devnum};
    struct usbts_realdev real;
    DWORD err = usbts_backend_open(&spec, &real, msg, sizeof msg);
    if (err != ERROR_SUCCESS) {
        reply_err(fd, err, msg);
        return;
    }
    if (opt_controller && strcmp(real.controller, opt_controller) != 0) {
        usbts_backend_close(&real);
        snprintf(msg, sizeof msg, "this usbtimesyncd serves only controller %s, and device %u:%u is on %s",
                 opt_controller, bus, devnum, real.controller);
        reply_err(fd, ERROR_NOT_SUPPORTED, msg);
        return;
    }
    const char *hash = strrchr(real.tracker_key, '#');
    uint64_t instance = hash ? strtoull(hash + 1, NULL, 10) : 0;
    int ci = ctl_find_or_create(real.tracker_key, real.controller, instance, msg, sizeof msg);
    struct dev *d = ci >= 0 ? dev_new(client, ci) : NULL;
    if (!d) {
        usbts_backend_close(&real);
        reply_err(fd, ERROR_NOT_ENOUGH_MEMORY, msg[0] ? msg : "the daemon serves too many devices");
        return;
    }
    struct ctl *c = &ctls[ci];
    d->real = real;
    uint32_t k;
    for (k = 0; k < USBTS_PAGE_MAX_DEVICES && c->slot_used[k]; k++) {
    }
    err = ctl_tracker(c, &d->real, msg, sizeof msg);
    if (err == ERROR_SUCCESS && k < USBTS_PAGE_MAX_DEVICES) {
        atomic_store(&c->page->devices[k].unplugged, false);
        atomic_store(&c->page->devices[k].minor, (bus - 1) * 128 + devnum - 1);
        if (atomic_load(&c->page->ndevices) <= k)
            atomic_store(&c->page->ndevices, k + 1);
        usbts_registry_lock();
        if (usbts_tracker_watch(c->tracker, real_present, &d->real, &c->page->devices[k].unplugged) ==
            ERROR_SUCCESS) {
            c->slot_used[k] = true;
            d->page_dev = k;
        }
        usbts_registry_unlock();
    }
    c->refs++;
    if (err != ERROR_SUCCESS) {
        dev_close(d);
        reply_err(fd, err, msg);
        return;
    }
    char file[128];
    pagefile_name(c->name, file, sizeof file);
    logmsg(LOG_INFO, "client %d: device %u:%u on %s registered (id %u)", client, bus, devnum, c->name,
           (unsigned)d->id);
    reply(fd, "OK %u %s %u", (unsigned)d->id, file, (unsigned)d->page_dev);
}

static void req_opensim(int client, int fd)
{
    char msg[300] = "";
    if (!opt_sim) {
        reply_err(fd, ERROR_FILE_NOT_FOUND,
                  "this usbtimesyncd serves no simulated controller: start it with --sim for sim-daemon");
        return;
    }
    int ci = ctl_find_or_create(SIM_NAME, SIM_NAME, 0, msg, sizeof msg);
    struct dev *d = ci >= 0 ? dev_new(client, ci) : NULL;
    if (!d) {
        reply_err(fd, ERROR_NOT_ENOUGH_MEMORY, msg[0] ? msg : "the daemon serves too many devices");
        return;
    }
    d->is_sim = true;
    struct ctl *c = &ctls[ci];
    DWORD err = ctl_tracker(c, NULL, msg, sizeof msg);
    c->refs++;
    if (err != ERROR_SUCCESS) {
        dev_close(d);
        reply_err(fd, err, msg);
        return;
    }
    snprintf(c->page->source, sizeof c->page->source, "sim");
    char file[128];
    pagefile_name(c->name, file, sizeof file);
    logmsg(LOG_DEBUG, "client %d: simulated controller registered (id %u)", client, (unsigned)d->id);
    reply(fd, "OK %u %s %u", (unsigned)d->id, file, (unsigned)UINT32_MAX);
}

struct sim_op {
    const char *what;
    uint32_t frame, uf;
    int64_t before, after, ns;
    uint32_t mfindex;
    char event[128];
    char msg[256];
};

static DWORD do_sim_op(struct usbts_tracker_pub *pub, struct usbts_source *src, void *arg)
{
    struct sim_op *a = arg;
    if (!usbts_is_sim_source(src))
        return ERROR_NOT_SUPPORTED;
    if (!strcmp(a->what, "READ"))
        return usbts_source_read(src, &a->before, &a->mfindex, &a->after);
    if (!strcmp(a->what, "TRUTH"))
        return usbts_sim_truth_ns(src, a->frame, a->uf, &a->ns);
    int64_t stall = 0;
    DWORD err = usbts_sim_inject_event(src, a->event, &stall, a->msg, sizeof a->msg);
    if (err == ERROR_SUCCESS && stall) {
        snprintf(a->msg, sizeof a->msg, "stall_ms needs a virtual clock; the daemon's simulated controller runs on "
                 "the real one");
        return ERROR_NOT_SUPPORTED;
    }
    if (err == ERROR_SUCCESS && usbts_sim_unplugged(src))
        atomic_store(&pub->gone, true);
    return err;
}

static void req_dev(int client, int fd, const char *verb, const char *args)
{
    struct dev *d = dev_of(client, args);
    if (!d) {
        reply_err(fd, ERROR_INVALID_HANDLE, "no such device on this connection");
        return;
    }
    struct ctl *c = &ctls[d->ctl];
    const char *rest = strchr(args, ' ');
    rest = rest ? rest + 1 : "";
    char msg[600] = "";
    if (!strcmp(verb, "START")) {
        bool tolerable = atoi(rest) != 0;
        usbts_registry_lock();
        DWORD err = usbts_tracker_acquire(c->tracker, tolerable, msg, sizeof msg);
        usbts_registry_unlock();
        if (err != ERROR_SUCCESS) {
            reply_err(fd, err, msg);
            return;
        }
        d->starts++;
        struct usbts_tracker_status st;
        usbts_tracker_status(c->tracker, &st);
        if (!c->page->source[0])
            snprintf(c->page->source, sizeof c->page->source, "%s", st.source);
        reply(fd, "OK");
    } else if (!strcmp(verb, "STOP")) {
        if (d->starts > 0) {
            usbts_registry_lock();
            usbts_tracker_release(c->tracker);
            usbts_registry_unlock();
            d->starts--;
        }
        reply(fd, "OK");
    } else if (!strcmp(verb, "CLOSE")) {
        dev_close(d);
        reply(fd, "OK");
    } else if (!strcmp(verb, "STATS")) {
        struct usbts_tracker_status st;
        usbts_tracker_status(c->tracker, &st);
        reply(fd, "OK %u %llu %llu %llu %llu %lld %.6f %u", (unsigned)st.users, (unsigned long long)st.est.reads,
              (unsigned long long)st.est.captures, (unsigned long long)st.est.rejected,
              (unsigned long long)st.est.discontinuities, (long long)st.est.bracket_ns, st.est.rate_ppm,
              (unsigned)st.est.window);
    } else if (!strcmp(verb, "FRAME")) {
        int64_t mf, t;
        usbts_registry_lock();
        DWORD err = usbts_tracker_read_now(c->tracker, &mf, &t, msg, sizeof msg);
        usbts_registry_unlock();
        if (err != ERROR_SUCCESS)
            reply_err(fd, err, msg);
        else
            reply(fd, "OK %" PRId64 " %" PRId64, mf, t);
    } else if (!strcmp(verb, "READ") || !strcmp(verb, "TRUTH") || !strcmp(verb, "INJECT")) {
        struct sim_op a = {.what = verb};
        if (!strcmp(verb, "TRUTH") && sscanf(rest, "%u %u", &a.frame, &a.uf) != 2) {
            reply_err(fd, ERROR_INVALID_PARAMETER, "TRUTH needs a frame and a microframe");
            return;
        }
        if (!strcmp(verb, "INJECT"))
            snprintf(a.event, sizeof a.event, "%s", rest);
        DWORD err = usbts_tracker_with_source(c->tracker, do_sim_op, &a);
        if (err != ERROR_SUCCESS)
            reply_err(fd, err, a.msg[0] ? a.msg : "not possible on this controller (a simulated one only)");
        else if (!strcmp(verb, "READ"))
            reply(fd, "OK %lld %u %lld", (long long)a.before, (unsigned)a.mfindex, (long long)a.after);
        else if (!strcmp(verb, "TRUTH"))
            reply(fd, "OK %lld", (long long)a.ns);
        else
            reply(fd, "OK");
    } else {
        reply_err(fd, ERROR_INVALID_PARAMETER, "unknown request");
    }
}

static void handle(int client)
{
    int fd = client_fd[client];
    char buf[USBTSD_MSG_MAX];
    union {
        char b[CMSG_SPACE(sizeof(int) * 4)];
        struct cmsghdr align;
    } u;
    struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf - 1};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof u.b};
    ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    int passed = -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int nfds = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            for (int i = 0; i < nfds; i++) {
                int f;
                memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof f);
                if (passed < 0)
                    passed = f;
                else
                    close(f); /* one descriptor per request */
            }
        }
    }
    if (n <= 0) {
        /* The client is gone (exited, killed): everything it had stops. */
        if (passed >= 0)
            close(passed);
        for (int i = 0; i < MAX_DEVS; i++)
            if (devs[i].used && devs[i].client == client)
                dev_close(&devs[i]);
        close(fd);
        client_fd[client] = -1;
        logmsg(LOG_DEBUG, "client %d: disconnected", client);
        return;
    }
    buf[n] = '\0';
    if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
        reply_err(fd, ERROR_INVALID_PARAMETER, "request too long");
    } else {
        char verb[16] = "";
        int off = 0;
        sscanf(buf, "%15s %n", verb, &off);
        const char *args = off > 0 ? buf + off : "";
        if (!strcmp(verb, "OPEN"))
            req_open(client, fd, args, passed);
        else if (!strcmp(verb, "OPENSIM"))
            req_opensim(client, fd);
        else
            req_dev(client, fd, verb, args);
    }
    if (passed >= 0)
        close(passed);
}

/* ---- the socket, signals, the loop ------------------------------------------------------ */

static int listen_socket(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int n = snprintf(sa.sun_path, sizeof sa.sun_path, "%s/%s", opt_run_dir, USBTS_SOCKET_NAME);
    if (n < 0 || (size_t)n >= sizeof sa.sun_path) {
        logmsg(LOG_ERR, "the run directory %s is too long a path for a socket", opt_run_dir);
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    /* Another daemon answering there?  Then this one must not take over. */
    int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof sa) == 0) {
        logmsg(LOG_ERR, "another usbtimesyncd already serves %s", opt_run_dir);
        close(probe);
        close(fd);
        return -1;
    }
    if (probe >= 0)
        close(probe);
    unlink(sa.sun_path);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || chmod(sa.sun_path, 0666) != 0 || listen(fd, 64) != 0) {
        logmsg(LOG_ERR, "cannot listen on %s: %s", sa.sun_path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: usbtimesyncd [OPTIONS]\n"
            "\n"
            "Serves USB frame-clock tracking to every process of the machine: one sampler per host\n"
            "controller, shared read-only through model pages in the run directory.\n"
            "\n"
            "  -r, --run-dir DIR       run directory (default %s)\n"
            "  -c, --controller PCI    serve only this controller (e.g. 0000:00:14.0)\n"
            "  -s, --sim[=KEYS]        also serve a simulated controller, spec sim-daemon (real clock;\n"
            "                          KEYS as for sim:, e.g. drift_ppm=20,seed=3)\n"
            "  -f, --foreground        stay in the foreground (it always does: for systemd and scripts)\n"
            "  -v, --verbose           log every registration and disconnection\n"
            "      --test-root DIR     TESTS ONLY: a fixture tree stands in for /sys and /dev\n"
            "  -h, --help              this text\n"
            "\n"
            "Logs to stderr (the journal under systemd).  SIGTERM marks its pages not live and keeps\n"
            "their models, so that a restart carries generations on.  See usbtimesyncd(8).\n",
            USBTS_DEFAULT_RUN_DIR);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"run-dir", required_argument, NULL, 'r'}, {"controller", required_argument, NULL, 'c'},
        {"sim", optional_argument, NULL, 's'},     {"foreground", no_argument, NULL, 'f'},
        {"verbose", no_argument, NULL, 'v'},       {"test-root", required_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    usbts_sim_params_default(&sim_params);
    int o;
    while ((o = getopt_long(argc, argv, "r:c:s::fvh", opts, NULL)) != -1) {
        char msg[300];
        switch (o) {
        case 'r':
            opt_run_dir = optarg;
            break;
        case 'c':
            opt_controller = optarg;
            break;
        case 's':
            opt_sim = true;
            if (optarg && usbts_sim_params_parse(optarg, &sim_params, msg, sizeof msg) != ERROR_SUCCESS) {
                fprintf(stderr, "usbtimesyncd: --sim: %s\n", msg);
                return 2;
            }
            if (sim_params.virtual_clock) {
                fprintf(stderr, "usbtimesyncd: --sim: the daemon's simulated controller runs on the real clock\n");
                return 2;
            }
            break;
        case 'f':
            break;
        case 'v':
            log_verbose = true;
            break;
        case 'T':
            opt_test_root = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    sim_params.boot_anchored = true;
    if (opt_test_root) {
        logmsg(LOG_WARNING, "TEST MODE: %s stands in for /sys and /dev", opt_test_root);
        usbts_backend_set_root(opt_test_root);
    }
    umask(022);
    if (!pagefile_init(opt_run_dir))
        return 1;
    usbts_set_generation_source(pagefile_next_generation);

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    /* Blocked before any sampler thread exists, so they inherit the mask. */
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
    int lfd = listen_socket();
    if (sfd < 0 || lfd < 0)
        return 1;
    for (int i = 0; i < MAX_CLIENTS; i++)
        client_fd[i] = -1;
    logmsg(LOG_INFO, "serving %s%s (pid %d)", opt_run_dir, opt_sim ? " with a simulated controller" : "",
           (int)getpid());

    for (;;) {
        struct pollfd p[MAX_CLIENTS + 2];
        int map[MAX_CLIENTS + 2];
        int np = 0;
        p[np] = (struct pollfd){.fd = sfd, .events = POLLIN};
        map[np++] = -2;
        p[np] = (struct pollfd){.fd = lfd, .events = POLLIN};
        map[np++] = -1;
        for (int i = 0; i < MAX_CLIENTS; i++) {
            if (client_fd[i] >= 0) {
                p[np] = (struct pollfd){.fd = client_fd[i], .events = POLLIN};
                map[np++] = i;
            }
        }
        if (poll(p, (nfds_t)np, -1) < 0) {
            if (errno == EINTR)
                continue;
            logmsg(LOG_ERR, "poll: %s", strerror(errno));
            return 1;
        }
        if (p[0].revents) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
                logmsg(LOG_INFO, "signal %u: stopping; pages kept for a restart", (unsigned)si.ssi_signo);
                for (int i = 0; i < MAX_CLIENTS; i++) {
                    if (client_fd[i] < 0)
                        continue;
                    for (int j = 0; j < MAX_DEVS; j++)
                        if (devs[j].used && devs[j].client == i)
                            dev_close(&devs[j]);
                }
                pagefile_all_not_live();
                char path[400];
                snprintf(path, sizeof path, "%s/%s", opt_run_dir, USBTS_SOCKET_NAME);
                unlink(path);
                return 0;
            }
        }
        if (p[1].revents & POLLIN) {
            int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (c >= 0) {
                int slot = -1;
                for (int i = 0; i < MAX_CLIENTS && slot < 0; i++)
                    if (client_fd[i] < 0)
                        slot = i;
                if (slot < 0) {
                    logmsg(LOG_WARNING, "refusing a client: %d connected already", MAX_CLIENTS);
                    close(c);
                } else {
                    client_fd[slot] = c;
                    logmsg(LOG_DEBUG, "client %d: connected", slot);
                }
            }
        }
        for (int i = 2; i < np; i++)
            if (p[i].revents)
                handle(map[i]);
    }
}
