/* SPDX-License-Identifier: MIT */
/*
 * kmod_guest.c — runs inside the QEMU guest with the usbts_mfindex module
 * loaded, statically linked (run_kmod.sh's boots).
 *
 *   kmod_guest requests CONTROLLER BUS
 *       Sends /dev/usbts_mfindex malformed requests — a size the command does
 *       not carry, a wrong size field, unknown commands, unreadable and
 *       unwritable pointers, unknown flags, burst lengths 0, 65 and 2^32 - 1,
 *       controller names that are too long, unterminated, empty, a path, or
 *       name no controller, both a name and a bus, absurd bus numbers — and
 *       checks each fails with its documented errno and writes nothing; after
 *       each, a good request still works.  Then checks good requests by name
 *       and by bus: the samples are in time order, each bracket non-empty,
 *       MFINDEX 14 bits, and a burst with STOP_ON_CHANGE ends at the first step.
 *   kmod_guest bracket CONTROLLER N
 *       N bursts of 64 reads: prints the distribution of the module's read
 *       bracket (the time interrupts are off, less one clock read) and of the
 *       whole ioctl seen from user space.
 *   kmod_guest removal CONTROLLER N
 *       N times: unbinds the controller from xhci_hcd while a child process
 *       sends bursts of 64 back to back through its own open file; a request
 *       after the unbind must fail with ENODEV; after binding it again,
 *       requests by the same name must work again (the module learns the new
 *       root hubs).  The child's requests may only succeed or fail with
 *       ENODEV.
 *
 * Prints "E2E kmod ..." lines, "E2E FAIL: ..." for each failure; exits 0 when
 * nothing failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../kmod/usbts_mfindex.h"

static int failures;
static const char *controller;
static unsigned bus;

#define FAIL(...)                                                                                                   \
    do {                                                                                                           \
        printf("E2E FAIL: " __VA_ARGS__);                                                                          \
        printf("\n");                                                                                              \
        failures++;                                                                                                \
    } while (0)

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static struct usbts_mfindex_burst good_req(struct usbts_mfindex_sample *buf, uint32_t count)
{
    struct usbts_mfindex_burst r;
    memset(&r, 0, sizeof r);
    r.size = sizeof r;
    r.count = count;
    snprintf(r.controller, sizeof r.controller, "%s", controller);
    r.samples = (uint64_t)(uintptr_t)buf;
    return r;
}

/* The samples of a burst are sane: each bracket non-empty and short of a
 * second, in time order, MFINDEX within 14 bits, reserved fields zero. */
static int check_samples(const char *what, const struct usbts_mfindex_sample *s, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        if (s[i].after_ns < s[i].before_ns || s[i].after_ns - s[i].before_ns > 1000000000 ||
            (i > 0 && s[i].before_ns < s[i - 1].after_ns) || s[i].mfindex > 0x3FFF || s[i].reserved != 0) {
            FAIL("%s: sample %u is not sane (%lld..%lld mfindex %#x reserved %u)", what, i,
                 (long long)s[i].before_ns, (long long)s[i].after_ns, s[i].mfindex, s[i].reserved);
            return -1;
        }
    }
    return 0;
}

/* A good request still works after a bad one. */
static void still_works(int fd, const char *after)
{
    struct usbts_mfindex_sample buf[4];
    struct usbts_mfindex_burst r = good_req(buf, 4);
    if (ioctl(fd, USBTS_MFINDEX_IOC_BURST, &r) != 0 || r.count != 4)
        FAIL("a good request failed after %s: %s", after, strerror(errno));
    else
        check_samples(after, buf, 4);
}

/* One malformed request: must fail with `want`, leave *guard untouched. */
static void expect_err(int fd, const char *what, unsigned long cmd, void *arg, int want,
                       const struct usbts_mfindex_sample *guard)
{
    errno = 0;
    int rc = ioctl(fd, cmd, arg);
    int e = errno;
    if (rc == 0 || e != want)
        FAIL("%s: got %s (rc %d), want %s", what, rc == 0 ? "success" : strerror(e), rc, strerror(want));
    else
        printf("E2E kmod request %-44s -> %s\n", what, strerror(e));
    if (guard && (guard->before_ns != -1 || guard->after_ns != -1 || guard->mfindex != 0xDEADBEEF))
        FAIL("%s: the samples buffer was written", what);
    still_works(fd, what);
}

static int requests(int fd)
{
    static struct usbts_mfindex_sample buf[USBTS_MFINDEX_MAX_BURST + 1];
    const struct usbts_mfindex_sample poison = {-1, -1, 0xDEADBEEF, 0};
    for (int i = 0; i <= USBTS_MFINDEX_MAX_BURST; i++)
        buf[i] = poison;
    struct usbts_mfindex_burst r;

    /* ---- the interface's version ---- */
    struct usbts_mfindex_info info = {.size = sizeof info};
    if (ioctl(fd, USBTS_MFINDEX_IOC_INFO, &info) != 0 || info.abi != USBTS_MFINDEX_ABI ||
        info.max_burst != USBTS_MFINDEX_MAX_BURST)
        FAIL("INFO: %s, abi %u max_burst %u", strerror(errno), info.abi, info.max_burst);
    info.size = 4;
    expect_err(fd, "INFO with size field 4", USBTS_MFINDEX_IOC_INFO, &info, EINVAL, NULL);
    expect_err(fd, "INFO at NULL", USBTS_MFINDEX_IOC_INFO, NULL, EFAULT, NULL);

    /* ---- commands ---- */
    r = good_req(buf, 1);
    expect_err(fd, "BURST's number with a 40-byte size", _IOWR(USBTS_MFINDEX_IOC_MAGIC, 1, char[40]), &r,
               ENOTTY, &buf[0]);
    expect_err(fd, "BURST's number as _IOR", _IOR(USBTS_MFINDEX_IOC_MAGIC, 1, struct usbts_mfindex_burst), &r,
               ENOTTY, &buf[0]);
    expect_err(fd, "unknown command 0xB7/99", _IO(USBTS_MFINDEX_IOC_MAGIC, 99), &r, ENOTTY, &buf[0]);
    expect_err(fd, "a terminal's TCGETS", 0x5401, &r, ENOTTY, &buf[0]);
    expect_err(fd, "command 0", 0, &r, ENOTTY, &buf[0]);

    /* ---- the request itself ---- */
    r = good_req(buf, 1);
    r.size = sizeof r - 8;
    expect_err(fd, "size field 8 bytes short", USBTS_MFINDEX_IOC_BURST, &r, EINVAL, &buf[0]);
    r = good_req(buf, 1);
    r.flags = 0x80;
    expect_err(fd, "unknown flag 0x80", USBTS_MFINDEX_IOC_BURST, &r, EINVAL, &buf[0]);
    uint32_t counts[] = {0, USBTS_MFINDEX_MAX_BURST + 1, 1000000, 0xFFFFFFFFu};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "burst length %u", counts[i]);
        r = good_req(buf, counts[i]);
        expect_err(fd, what, USBTS_MFINDEX_IOC_BURST, &r, EINVAL, &buf[0]);
    }

    /* ---- names and bus numbers ---- */
    r = good_req(buf, 1);
    memset(r.controller, 'a', sizeof r.controller); /* no NUL inside */
    expect_err(fd, "a name without its NUL", USBTS_MFINDEX_IOC_BURST, &r, EINVAL, &buf[0]);
    const char *bad_names[] = {"", "../../../etc/passwd", "0000:00:04.0 ", "name\nwith newline", "%s%s%n"};
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        char what[80];
        snprintf(what, sizeof what, "name \"%.20s\"", bad_names[i]);
        for (char *p = what; *p; p++)
            if (*p == '\n')
                *p = '|';
        r = good_req(buf, 1);
        snprintf(r.controller, sizeof r.controller, "%s", bad_names[i]);
        expect_err(fd, what, USBTS_MFINDEX_IOC_BURST, &r, EINVAL, &buf[0]);
    }
    r = good_req(buf, 1);
    r.busnum = bus;
    expect_err(fd, "both a name and a bus", USBTS_MFINDEX_IOC_BURST, &r, EINVAL, &buf[0]);
    r = good_req(buf, 1);
    snprintf(r.controller, sizeof r.controller, "0000:ff:1f.7");
    expect_err(fd, "a controller that is not there", USBTS_MFINDEX_IOC_BURST, &r, ENODEV, &buf[0]);
    unsigned buses[] = {999, 0x7FFFFFFF, 0xFFFFFFFFu};
    for (size_t i = 0; i < sizeof buses / sizeof buses[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "bus %u", buses[i]);
        r = good_req(buf, 1);
        r.controller[0] = '\0';
        r.busnum = buses[i];
        expect_err(fd, what, USBTS_MFINDEX_IOC_BURST, &r, ENODEV, &buf[0]);
    }

    /* ---- pointers ---- */
    expect_err(fd, "request at NULL", USBTS_MFINDEX_IOC_BURST, NULL, EFAULT, NULL);
    expect_err(fd, "request at address 1", USBTS_MFINDEX_IOC_BURST, (void *)1, EFAULT, NULL);
    expect_err(fd, "request at a kernel address", USBTS_MFINDEX_IOC_BURST, (void *)0xffffffff81000000ul, EFAULT,
               NULL);
    r = good_req(NULL, 1);
    expect_err(fd, "samples at NULL", USBTS_MFINDEX_IOC_BURST, &r, EFAULT, NULL);
    r = good_req(NULL, 1);
    r.samples = 0xffffffff81000000ull;
    expect_err(fd, "samples at a kernel address", USBTS_MFINDEX_IOC_BURST, &r, EFAULT, NULL);
    r = good_req(NULL, 1);
    r.samples = ~0ull - 7;
    expect_err(fd, "samples wrapping the address space", USBTS_MFINDEX_IOC_BURST, &r, EFAULT, NULL);
    long page = sysconf(_SC_PAGESIZE);
    char *ro = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (ro != MAP_FAILED) {
        mprotect(ro, (size_t)page, PROT_READ);
        r = good_req((struct usbts_mfindex_sample *)ro, 1);
        expect_err(fd, "samples in a read-only page", USBTS_MFINDEX_IOC_BURST, &r, EFAULT, NULL);
        munmap(ro + page, (size_t)page);
        /* 64 samples starting 24 bytes before the end of the mapping */
        r = good_req((struct usbts_mfindex_sample *)(ro + page - sizeof(struct usbts_mfindex_sample)),
                     USBTS_MFINDEX_MAX_BURST);
        mprotect(ro, (size_t)page, PROT_READ | PROT_WRITE);
        expect_err(fd, "samples running off the mapping", USBTS_MFINDEX_IOC_BURST, &r, EFAULT, NULL);
        /* the request itself in a read-only page: count cannot be written back */
        struct usbts_mfindex_burst good = good_req(buf, 1);
        memcpy(ro, &good, sizeof good);
        mprotect(ro, (size_t)page, PROT_READ);
        expect_err(fd, "request in a read-only page", USBTS_MFINDEX_IOC_BURST, ro, EFAULT, NULL);
        munmap(ro, (size_t)page);
    }

    /* ---- good requests ---- */
    for (int i = 0; i <= USBTS_MFINDEX_MAX_BURST; i++)
        buf[i] = poison;
    r = good_req(buf, USBTS_MFINDEX_MAX_BURST);
    if (ioctl(fd, USBTS_MFINDEX_IOC_BURST, &r) != 0 || r.count != USBTS_MFINDEX_MAX_BURST)
        FAIL("64 samples by name: %s, count %u", strerror(errno), r.count);
    else if (check_samples("64 by name", buf, r.count) == 0 && buf[USBTS_MFINDEX_MAX_BURST].mfindex != 0xDEADBEEF)
        FAIL("a burst of 64 wrote a 65th sample");
    r = good_req(buf, 8);
    r.controller[0] = '\0';
    r.busnum = bus;
    if (ioctl(fd, USBTS_MFINDEX_IOC_BURST, &r) != 0 || r.count != 8)
        FAIL("8 samples by bus %u: %s, count %u", bus, strerror(errno), r.count);
    else
        check_samples("8 by bus", buf, r.count);
    /* STOP_ON_CHANGE: the burst ends at the first step, which a microframe
     * (125 us) brings well within a few hundred bursts of 64. */
    int stopped = 0;
    for (int tries = 0; tries < 2000 && !stopped; tries++) {
        r = good_req(buf, USBTS_MFINDEX_MAX_BURST);
        r.flags = USBTS_MFINDEX_STOP_ON_CHANGE;
        if (ioctl(fd, USBTS_MFINDEX_IOC_BURST, &r) != 0 || r.count < 1 || r.count > USBTS_MFINDEX_MAX_BURST) {
            FAIL("STOP_ON_CHANGE burst: %s, count %u", strerror(errno), r.count);
            break;
        }
        if (check_samples("STOP_ON_CHANGE", buf, r.count))
            break;
        for (uint32_t i = 1; i < r.count; i++)
            if (buf[i].mfindex != buf[0].mfindex && i != r.count - 1) {
                FAIL("STOP_ON_CHANGE went on past the step at sample %u of %u", i, r.count);
                tries = 1 << 30;
                break;
            }
        if (r.count > 1 && buf[r.count - 1].mfindex != buf[0].mfindex) {
            stopped = 1;
            printf("E2E kmod STOP_ON_CHANGE: a burst ended at the step %#x -> %#x after %u samples\n",
                   buf[0].mfindex, buf[r.count - 1].mfindex, r.count);
        }
    }
    if (!stopped && failures == 0)
        FAIL("no STOP_ON_CHANGE burst saw MFINDEX step");
    return failures ? 1 : 0;
}

static int write_attr(const char *path, const char *value)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, value, strlen(value));
    close(fd);
    return n == (ssize_t)strlen(value) ? 0 : -1;
}

static int one_request(int fd)
{
    static struct usbts_mfindex_sample buf[USBTS_MFINDEX_MAX_BURST];
    struct usbts_mfindex_burst r = good_req(buf, USBTS_MFINDEX_MAX_BURST);
    return ioctl(fd, USBTS_MFINDEX_IOC_BURST, &r) == 0 ? 0 : errno;
}

/* The child: bursts until the pipe closes; exit 0 if every request either
 * worked or failed with ENODEV. */
static int hammer(int stop_fd)
{
    int fd = open(USBTS_MFINDEX_DEVICE, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 1;
    long ok = 0, gone = 0, other = 0;
    int last_other = 0;
    fcntl(stop_fd, F_SETFL, O_NONBLOCK);
    for (;;) {
        char c;
        if (read(stop_fd, &c, 1) == 0)
            break;
        int e = one_request(fd);
        if (e == 0)
            ok++;
        else if (e == ENODEV)
            gone++;
        else if (e != EINTR) {
            other++;
            last_other = e;
        }
    }
    printf("E2E kmod removal: a concurrent reader made %ld requests that worked, %ld that failed with ENODEV, %ld "
           "otherwise%s%s\n",
           ok, gone, other, other ? ": " : "", other ? strerror(last_other) : "");
    close(fd);
    return other == 0 && ok > 0 ? 0 : 1;
}

static int removal(int fd, int rounds)
{
    int pipefd[2];
    if (pipe(pipefd) != 0)
        return 1;
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        close(pipefd[1]);
        _exit(hammer(pipefd[0]));
    }
    close(pipefd[0]);
    for (int i = 0; i < rounds; i++) {
        usleep(200000);
        if (write_attr("/sys/bus/pci/drivers/xhci_hcd/unbind", controller) != 0) {
            FAIL("cannot unbind %s: %s", controller, strerror(errno));
            break;
        }
        int e = one_request(fd);
        if (e != ENODEV)
            FAIL("a request after unbinding %s gave %s, want ENODEV", controller, e ? strerror(e) : "success");
        if (write_attr("/sys/bus/pci/drivers/xhci_hcd/bind", controller) != 0) {
            FAIL("cannot bind %s: %s", controller, strerror(errno));
            break;
        }
        int64_t t0 = mono_ns();
        while ((e = one_request(fd)) != 0 && mono_ns() - t0 < 10000000000)
            usleep(10000);
        if (e != 0)
            FAIL("10 s after binding %s again, requests still fail: %s", controller, strerror(e));
        else
            printf("E2E kmod removal %d: ENODEV while unbound; readable again %.0f ms after bind\n", i + 1,
                   (double)(mono_ns() - t0) / 1e6);
    }
    close(pipefd[1]);
    int status = 0;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        FAIL("the concurrent reader saw an error other than ENODEV, or never read");
    return failures ? 1 : 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void print_dist(const char *what, int64_t *v, int n)
{
    qsort(v, (size_t)n, sizeof v[0], cmp_i64);
    printf("E2E kmod %s: min %lld median %lld p99 %lld max %lld ns over %d\n", what, (long long)v[0],
           (long long)v[n / 2], (long long)v[n * 99 / 100], (long long)v[n - 1], n);
}

static int bracket(int fd, int bursts)
{
    static struct usbts_mfindex_sample buf[USBTS_MFINDEX_MAX_BURST];
    int64_t *widths = calloc((size_t)bursts * USBTS_MFINDEX_MAX_BURST, sizeof *widths);
    int64_t *calls = calloc((size_t)bursts, sizeof *calls);
    if (!widths || !calls)
        return 1;
    int nw = 0, nc = 0;
    for (int b = 0; b < bursts; b++) {
        struct usbts_mfindex_burst r = good_req(buf, b % 2 ? USBTS_MFINDEX_MAX_BURST : 1);
        int64_t t0 = mono_ns();
        int rc = ioctl(fd, USBTS_MFINDEX_IOC_BURST, &r);
        int64_t t1 = mono_ns();
        if (rc != 0) {
            FAIL("burst %d: %s", b, strerror(errno));
            break;
        }
        if (r.count == 1)
            calls[nc++] = t1 - t0; /* one read: the whole system call around it */
        for (uint32_t i = 0; i < r.count; i++)
            widths[nw++] = buf[i].after_ns - buf[i].before_ns;
    }
    if (nw > 0)
        print_dist("read bracket (interrupts off for this plus one clock read)", widths, nw);
    if (nc > 0)
        print_dist("ioctl of one read, seen from user space", calls, nc);
    free(widths);
    free(calls);
    return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc != 4 ||
        (strcmp(argv[1], "requests") != 0 && strcmp(argv[1], "bracket") != 0 && strcmp(argv[1], "removal") != 0)) {
        fprintf(stderr, "usage: kmod_guest requests CONTROLLER BUS | bracket CONTROLLER N | removal CONTROLLER N\n");
        return 2;
    }
    controller = argv[2];
    int fd = open(USBTS_MFINDEX_DEVICE, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        FAIL("cannot open %s: %s", USBTS_MFINDEX_DEVICE, strerror(errno));
        return 1;
    }
    int rc;
    if (strcmp(argv[1], "requests") == 0) {
        bus = (unsigned)strtoul(argv[3], NULL, 10);
        rc = requests(fd);
    } else if (strcmp(argv[1], "bracket") == 0) {
        rc = bracket(fd, atoi(argv[3]));
    } else {
        rc = removal(fd, atoi(argv[3]));
    }
    close(fd);
    if (rc == 0)
        printf("E2E kmod %s: ok\n", argv[1]);
    return rc;
}
