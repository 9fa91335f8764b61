/* SPDX-License-Identifier: MIT */
/*
 * test_source_kmod.c — the kmod source against a scripted stand-in for the
 * usbts_mfindex module: source_kmod.c is compiled here with its ioctl()
 * calls sent to fake_ioctl(), and a virtual clock decides which reads come
 * back to back.  (The real module is tested in QEMU by run_kmod.sh.)
 *
 * Checks: the module absent is ERROR_FILE_NOT_FOUND naming DKMS (the
 * backend's silent fallback hangs on it); a node that is not the module, a
 * controller the module does not know or cannot read, and a name too long
 * are ERROR_NOT_SUPPORTED with the reason; the probe read at open is not
 * handed out; one ioctl's burst is handed out one sample per read, in order,
 * and asks with STOP_ON_CHANGE for the controller by name; a read after a
 * pause drops what was left and starts a new burst; EINTR is retried; ENODEV
 * is ERROR_DEVICE_NOT_CONNECTED; other errors and impossible counts are
 * ERROR_GEN_FAILURE, and nothing buffered is handed out after one.
 */
#include <stdarg.h>
#include <stdint.h>

#define ioctl fake_ioctl
#define usbts_kmod_source_open test_kmod_source_open
#include "../src/source_kmod.c"
#undef ioctl

#include <sys/stat.h>

#include "testutil.h"

/* ---- the scripted module ---- */
static struct {
    int info_errno;           /* INFO fails with this */
    uint32_t info_abi;        /* INFO's answer */
    int burst_errno[8];       /* the next BURSTs fail with these, in turn (0: succeed) */
    int nerr;
    uint32_t give;            /* samples a BURST returns (at most asked; 0: as asked) */
    int bad_count;            /* a BURST claims this many (overrides) */
    int bursts;               /* BURST calls seen */
    uint32_t last_count, last_flags, last_busnum;
    char last_name[USBTS_MFINDEX_NAME_LEN];
    uint32_t mfindex;         /* the next sample's value */
    int64_t t;                /* the next sample's before_ns */
} mod;

int fake_ioctl(int fd, unsigned long cmd, ...)
{
    (void)fd;
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    if (cmd == USBTS_MFINDEX_IOC_INFO) {
        struct usbts_mfindex_info *info = arg;
        if (mod.info_errno) {
            errno = mod.info_errno;
            return -1;
        }
        info->abi = mod.info_abi;
        info->max_burst = USBTS_MFINDEX_MAX_BURST;
        return 0;
    }
    if (cmd != USBTS_MFINDEX_IOC_BURST) {
        errno = ENOTTY;
        return -1;
    }
    struct usbts_mfindex_burst *r = arg;
    mod.bursts++;
    mod.last_count = r->count;
    mod.last_flags = r->flags;
    mod.last_busnum = r->busnum;
    memcpy(mod.last_name, r->controller, sizeof mod.last_name);
    if (mod.nerr > 0) {
        int e = mod.burst_errno[0];
        memmove(mod.burst_errno, mod.burst_errno + 1, sizeof mod.burst_errno - sizeof mod.burst_errno[0]);
        mod.nerr--;
        if (e) {
            errno = e;
            return -1;
        }
    }
    uint32_t n = mod.give && mod.give < r->count ? mod.give : r->count;
    struct usbts_mfindex_sample *s = (struct usbts_mfindex_sample *)(uintptr_t)r->samples;
    for (uint32_t i = 0; i < n; i++) {
        s[i].before_ns = mod.t;
        s[i].after_ns = mod.t + 300;
        s[i].mfindex = mod.mfindex++;
        s[i].reserved = 0;
        mod.t += 400;
    }
    r->count = mod.bad_count ? (uint32_t)mod.bad_count : n;
    return 0;
}

static char tmp[] = "/tmp/usbts-kmod-XXXXXX";
static struct usbts_hostclock clk;

static void reset_module(void)
{
    memset(&mod, 0, sizeof mod);
    mod.info_abi = USBTS_MFINDEX_ABI;
    mod.t = 1000000;
}

static DWORD open_source(const char *ctl, struct usbts_source **s, char *msg, size_t len)
{
    msg[0] = '\0';
    *s = NULL;
    return test_kmod_source_open(tmp, ctl, &clk, s, msg, len);
}

static void test_open_errors(void)
{
    char msg[512];
    struct usbts_source *s;
    reset_module();
    /* No /dev/usbts_mfindex: not installed, which the fallback passes over silently. */
    CHECK_EQ(open_source("0000:00:04.0", &s, msg, sizeof msg), ERROR_FILE_NOT_FOUND);
    CHECK_MSG(strstr(msg, "DKMS") && strstr(msg, "not loaded"), "msg: %s", msg);

    char node[256];
    snprintf(node, sizeof node, "%s/dev", tmp);
    CHECK(mkdir(node, 0700) == 0);
    snprintf(node, sizeof node, "%s/dev/usbts_mfindex", tmp);
    FILE *f = fopen(node, "we");
    CHECK(f != NULL);
    if (f)
        fclose(f);

    mod.info_errno = ENOTTY; /* not the module's node */
    CHECK_EQ(open_source("0000:00:04.0", &s, msg, sizeof msg), ERROR_NOT_SUPPORTED);
    CHECK_MSG(strstr(msg, "does not speak usbts_mfindex"), "msg: %s", msg);
    reset_module();
    mod.info_abi = USBTS_MFINDEX_ABI + 1; /* another version */
    CHECK_EQ(open_source("0000:00:04.0", &s, msg, sizeof msg), ERROR_NOT_SUPPORTED);
    CHECK_MSG(strstr(msg, "does not speak usbts_mfindex"), "msg: %s", msg);

    const struct {
        int e;
        const char *says;
    } probe[] = {{ENODEV, "knows no USB controller 0000:00:04.0"},
                 {EOPNOTSUPP, "not an xHCI controller"},
                 {EAGAIN, "suspended"},
                 {EIO, "refused"}};
    for (size_t i = 0; i < sizeof probe / sizeof probe[0]; i++) {
        reset_module();
        mod.burst_errno[0] = probe[i].e;
        mod.nerr = 1;
        CHECK_EQ(open_source("0000:00:04.0", &s, msg, sizeof msg), ERROR_NOT_SUPPORTED);
        CHECK_MSG(strstr(msg, probe[i].says), "errno %d: msg %s", probe[i].e, msg);
    }
    reset_module();
    CHECK_EQ(open_source("0000:00:04.0-with-a-name-longer-than-31", &s, msg, sizeof msg), ERROR_NOT_SUPPORTED);
    CHECK_EQ(mod.bursts, 0);
}

static void test_bursts(void)
{
    char msg[512];
    struct usbts_source *s;
    reset_module();
    CHECK_EQ(open_source("0000:00:04.0", &s, msg, sizeof msg), ERROR_SUCCESS);
    if (!s)
        return;
    /* The probe: one sample by name, no flag. */
    CHECK(mod.bursts == 1 && mod.last_count == 1 && mod.last_flags == 0 && mod.last_busnum == 0 &&
          strcmp(mod.last_name, "0000:00:04.0") == 0);
    CHECK(strcmp(s->ops->name, "kmod") == 0);

    /* A burst of 5 handed out as 5 reads, in order, by one ioctl. */
    mod.give = 5;
    mod.mfindex = 100;
    int64_t t0 = mod.t;
    usbts_clock_set_at_least(&clk, 5000000);
    int64_t b, a;
    uint32_t mf;
    for (int i = 0; i < 5; i++) {
        CHECK_EQ(usbts_source_read(s, &b, &mf, &a), ERROR_SUCCESS);
        CHECK_EQ(mf, 100 + i); /* not the probe's sample */
        CHECK(b == t0 + 400 * i && a == b + 300);
        usbts_clock_set_at_least(&clk, atomic_load(&clk.virt_ns) + 1000); /* 1 us apart: back to back */
    }
    CHECK_EQ(mod.bursts, 2);
    CHECK(mod.last_count == KMOD_BURST && mod.last_flags == USBTS_MFINDEX_STOP_ON_CHANGE);
    /* Used up: the next read asks again. */
    CHECK_EQ(usbts_source_read(s, &b, &mf, &a), ERROR_SUCCESS);
    CHECK_EQ(mod.bursts, 3);
    CHECK_EQ(mf, 105);

    /* A pause drops what was left: the next read is a new burst's first. */
    usbts_clock_set_at_least(&clk, atomic_load(&clk.virt_ns) + 1000000);
    CHECK_EQ(usbts_source_read(s, &b, &mf, &a), ERROR_SUCCESS);
    CHECK_EQ(mod.bursts, 4);
    CHECK_EQ(mf, 110); /* 106..109 were never handed out */

    /* EINTR is retried inside the read. */
    mod.burst_errno[0] = EINTR;
    mod.nerr = 1;
    usbts_clock_set_at_least(&clk, atomic_load(&clk.virt_ns) + 1000000);
    CHECK_EQ(usbts_source_read(s, &b, &mf, &a), ERROR_SUCCESS);
    CHECK_EQ(mod.bursts, 6);

    /* Errors: buffered samples are not handed out after one. */
    const struct {
        int e;
        DWORD want;
    } errs[] = {{ENODEV, ERROR_DEVICE_NOT_CONNECTED}, {EAGAIN, ERROR_GEN_FAILURE}, {EIO, ERROR_GEN_FAILURE}};
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
        usbts_clock_set_at_least(&clk, atomic_load(&clk.virt_ns) + 1000000);
        mod.burst_errno[0] = errs[i].e;
        mod.nerr = 1;
        int before = mod.bursts;
        CHECK_EQ(usbts_source_read(s, &b, &mf, &a), errs[i].want);
        CHECK_EQ(usbts_source_read(s, &b, &mf, &a), ERROR_SUCCESS); /* back to back, yet a new burst */
        CHECK_EQ(mod.bursts, before + 2);
    }
    /* A module that claims no samples, or more than asked for. */
    mod.bad_count = 0;
    for (int bad = 0; bad < 2; bad++) {
        usbts_clock_set_at_least(&clk, atomic_load(&clk.virt_ns) + 1000000);
        mod.bad_count = bad == 0 ? -1 : KMOD_BURST + 1; /* -1: 0xFFFFFFFF */
        CHECK_EQ(usbts_source_read(s, &b, &mf, &a), ERROR_GEN_FAILURE);
    }
    usbts_source_destroy(s);
}

int main(void)
{
    CHECK(mkdtemp(tmp) != NULL);
    atomic_store(&clk.is_virtual, true);
    test_open_errors();
    test_bursts();
    char path[256];
    snprintf(path, sizeof path, "%s/dev/usbts_mfindex", tmp);
    unlink(path);
    snprintf(path, sizeof path, "%s/dev", tmp);
    rmdir(path);
    rmdir(tmp);
    return test_finish();
}
