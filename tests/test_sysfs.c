/* SPDX-License-Identifier: MIT */
/*
 * test_sysfs.c — the real-controller backend on fixture trees
 * (tests/fixtures/sysfs): the sysfs and debugfs parsers, device lookup by
 * each spec form, speed, controller and driver, source choice (MMIO,
 * debugfs, USBTS_SOURCE), the errors that name a fix, removal, and
 * privilege.  Each tree is copied to a temporary directory first, since
 * some tests change it (deauthorize a device, write BAR 0).
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "sysfs_parse.h"
#include "testutil.h"
#include "usbtimesync/usbtimesync.h"
#include "usbtimesync/winusb.h"

#ifndef USBTS_FIXTURES
#error "USBTS_FIXTURES must name tests/fixtures"
#endif

static char tmp[64];

/* Reads a fixture file as it is committed. */
static size_t slurp(const char *tree, const char *path, char *buf, size_t len)
{
    char full[PATH_MAX];
    snprintf(full, sizeof full, "%s/sysfs/%s%s", USBTS_FIXTURES, tree, path);
    FILE *f = fopen(full, "re");
    if (!f) {
        CHECK_MSG(0, "fixture %s missing", full);
        return 0;
    }
    size_t n = fread(buf, 1, len, f);
    fclose(f);
    return n;
}

/* A fresh, writable copy of a fixture tree; returns its root. */
static const char *use_tree(const char *tree)
{
    char cmd[3 * PATH_MAX];
    if (tmp[0]) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
        CHECK(system(cmd) == 0);
    }
    snprintf(tmp, sizeof tmp, "/tmp/usbts-sysfs-XXXXXX");
    CHECK(mkdtemp(tmp) != NULL);
    chmod(tmp, 0755);
    snprintf(cmd, sizeof cmd, "cp -a '%s/sysfs/%s/.' '%s/'", USBTS_FIXTURES, tree, tmp);
    CHECK(system(cmd) == 0);
    usbts_backend_set_root(tmp);
    return tmp;
}

static void put_file(const char *path, const char *text)
{
    char full[PATH_MAX];
    snprintf(full, sizeof full, "%s%s", tmp, path);
    FILE *f = fopen(full, "we");
    CHECK_MSG(f != NULL, "cannot write %s", full);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* BAR 0 of an xHCI controller as a file: CAPLENGTH 0x20, HCIVERSION 1.0,
 * RTSOFF `rtsoff`, MFINDEX there. */
static void put_bar0(const char *pci, uint32_t rtsoff, uint32_t mfindex, off_t size)
{
    char full[PATH_MAX];
    snprintf(full, sizeof full, "%s/sys/bus/pci/devices/%s/resource0", tmp, pci);
    int fd = open(full, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    CHECK(ftruncate(fd, size) == 0);
    uint32_t cap0 = 0x01000020, rt = rtsoff;
    CHECK(pwrite(fd, &cap0, 4, 0) == 4);
    CHECK(pwrite(fd, &rt, 4, 0x18) == 4);
    if ((off_t)rtsoff + 4 <= size)
        CHECK(pwrite(fd, &mfindex, 4, rtsoff) == 4);
    close(fd);
}

/* ---- parsers ------------------------------------------------------------------- */

static void test_parsers(void)
{
    char buf[2048];
    uint32_t mf = 0;
    size_t n = slurp("xhci", "/sys/kernel/debug/usb/xhci/0000:00:04.0/reg-runtime", buf, sizeof buf);
    CHECK(usbts_parse_mfindex(buf, n, &mf) && mf == 0x1a2b);
    n = slurp("malformed", "/sys/kernel/debug/usb/xhci/0000:00:04.0/reg-runtime", buf, sizeof buf);
    CHECK(!usbts_parse_mfindex(buf, n, &mf));
    n = slurp("truncated", "/sys/kernel/debug/usb/xhci/0000:00:04.0/reg-runtime", buf, sizeof buf);
    CHECK(!usbts_parse_mfindex(buf, n, &mf));
    const char *mf_bad[] = {"MFINDEX = 0x123456789\n", "MFINDEX 0x12\n",  "MFINDEX = 12\n", "MFINDEX = 0x12 z\n",
                            "MFINDEXX = 0x12\n",       " MFINDEX = 0x1\n", "",               "IR0_IMAN = 0x2\n"};
    for (size_t i = 0; i < sizeof mf_bad / sizeof *mf_bad; i++)
        CHECK_MSG(!usbts_parse_mfindex(mf_bad[i], strlen(mf_bad[i]), &mf), "refuses '%s'", mf_bad[i]);
    const char *later = "IR0_IMAN = 0x2\nMFINDEX\t=\t0xFFFFFFFF";
    CHECK(usbts_parse_mfindex(later, strlen(later), &mf) && mf == 0xFFFFFFFFu);

    uint64_t start, size, flags;
    n = slurp("xhci", "/sys/devices/pci0000:00/0000:00:04.0/resource", buf, sizeof buf);
    CHECK(usbts_parse_pci_resource0(buf, n, &start, &size, &flags) && start == 0xfe800000 && size == 0x4000 &&
          (flags & 0x200));
    n = slurp("malformed", "/sys/devices/pci0000:00/0000:00:04.0/resource", buf, sizeof buf);
    CHECK(!usbts_parse_pci_resource0(buf, n, &start, &size, &flags)); /* ends before it starts */
    n = slurp("truncated", "/sys/devices/pci0000:00/0000:00:04.0/resource", buf, sizeof buf);
    CHECK(!usbts_parse_pci_resource0(buf, n, &start, &size, &flags));
    const char *zero = "0x0000000000000000 0x0000000000000000 0x0000000000000000\n";
    CHECK(!usbts_parse_pci_resource0(zero, strlen(zero), &start, &size, &flags)); /* unset BAR */
    const char *all = "0x0000000000000001 0xffffffffffffffff 0x0\n";
    CHECK(usbts_parse_pci_resource0(all, strlen(all), &start, &size, &flags) && size == UINT64_MAX);
    const char *full = "0x0 0xffffffffffffffff 0x0\n";
    CHECK(!usbts_parse_pci_resource0(full, strlen(full), &start, &size, &flags)); /* start 0: unset */

    uint64_t v = 0;
    CHECK(usbts_parse_uint_attr("12\n", 3, 10, 999, &v) && v == 12);
    CHECK(usbts_parse_uint_attr("1d6b\n", 5, 16, 0xFFFF, &v) && v == 0x1d6b);
    CHECK(!usbts_parse_uint_attr("1000\n", 5, 10, 999, &v));
    CHECK(!usbts_parse_uint_attr("1x\n", 3, 10, 999, &v));
    CHECK(!usbts_parse_uint_attr("\n", 1, 10, 999, &v));
    CHECK(!usbts_parse_uint_attr("12\n\n", 4, 10, 999, &v));
    CHECK(!usbts_parse_uint_attr("99999999999999999999999", 23, 10, UINT64_MAX, &v));

    CHECK_EQ(usbts_parse_speed("1.5\n", 4), LowSpeed);
    CHECK_EQ(usbts_parse_speed("12\n", 3), FullSpeed);
    CHECK_EQ(usbts_parse_speed("480\n", 4), HighSpeed);
    CHECK_EQ(usbts_parse_speed("5000\n", 5), HighSpeed);
    CHECK_EQ(usbts_parse_speed("fast\n", 5), 0);
    CHECK_EQ(usbts_parse_speed("48", 2), 0);
    CHECK_EQ(usbts_parse_speed("", 0), 0);

    CHECK(usbts_is_pci_address("0000:00:14.0", 12));
    CHECK(!usbts_is_pci_address("0000:00:14.8", 12));
    CHECK(!usbts_is_pci_address("0000:00:1D.0", 12));
    CHECK(!usbts_is_pci_address("vhci_hcd.0", 10));
    CHECK(usbts_is_safe_name("vhci_hcd.0", 10));
    CHECK(!usbts_is_safe_name("..", 2));
    CHECK(!usbts_is_safe_name("a/b", 3));
    CHECK(!usbts_is_safe_name("", 0));

    char out[64];
    const char *t = "../../../devices/pci0000:00/0000:00:04.0/usb1";
    CHECK(usbts_parse_link_component(t, strlen(t), 1, out, sizeof out) && strcmp(out, "0000:00:04.0") == 0);
    CHECK(usbts_parse_link_component(t, strlen(t), 0, out, sizeof out) && strcmp(out, "usb1") == 0);
    CHECK(!usbts_parse_link_component(t, strlen(t), 4, out, sizeof out)); /* ".." */
    CHECK(!usbts_parse_link_component(t, strlen(t), 9, out, sizeof out));
    CHECK(!usbts_parse_link_component("usb1", 4, 1, out, sizeof out));
    CHECK(!usbts_parse_link_component(t, strlen(t), 1, out, 5)); /* does not fit */
}

/* ---- devices --------------------------------------------------------------------- */

static void check_open_fails(const char *spec, DWORD err, const char *needle)
{
    SetLastError(0);
    HANDLE d = usbts_open(spec);
    CHECK_MSG(d == INVALID_HANDLE_VALUE && GetLastError() == err, "%s fails with %u (got %u: %s)", spec,
              (unsigned)err, (unsigned)GetLastError(), usbts_last_error_message());
    if (needle)
        CHECK_MSG(strstr(usbts_last_error_message(), needle) != NULL, "%s: '%s' names '%s'", spec,
                  usbts_last_error_message(), needle);
    if (d != INVALID_HANDLE_VALUE)
        usbts_close(d);
}

static void test_lookup(void)
{
    use_tree("xhci");
    struct {
        const char *spec;
        unsigned char bus, addr, speed;
        unsigned short vid, pid;
    } cases[] = {
        {"1:2", 1, 2, FullSpeed, 0x0627, 0x0001},
        {"001:003", 1, 3, LowSpeed, 0x0627, 0x0001},
        {"/dev/bus/usb/001/004", 1, 4, HighSpeed, 0x46f4, 0x0001},
        {"0627:0001", 1, 2, FullSpeed, 0x0627, 0x0001}, /* two match: the lowest bus:dev */
        {"46f4:0001", 1, 4, HighSpeed, 0x46f4, 0x0001},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        HANDLE d = usbts_open(cases[i].spec);
        CHECK_MSG(d != INVALID_HANDLE_VALUE, "open %s: %s", cases[i].spec, usbts_last_error_message());
        if (d == INVALID_HANDLE_VALUE)
            continue;
        USBTS_DEVICE_INFO di;
        CHECK(usbts_get_device_info(d, &di));
        CHECK_MSG(di.BusNumber == cases[i].bus && di.DeviceAddress == cases[i].addr && di.Speed == cases[i].speed &&
                      di.VendorId == cases[i].vid && di.ProductId == cases[i].pid,
                  "%s: %u:%u speed %u %04x:%04x", cases[i].spec, di.BusNumber, di.DeviceAddress, di.Speed,
                  di.VendorId, di.ProductId);
        CHECK(strcmp(di.Controller, "0000:00:04.0") == 0 && strcmp(di.Driver, "xhci_hcd") == 0);
        CHECK(!di.IsSimulated && di.Source[0] == '\0');
        WINUSB_INTERFACE_HANDLE ih;
        CHECK_SUCCEEDS(WinUsb_Initialize(d, &ih));
        UCHAR speed = 0;
        ULONG len = 1;
        CHECK(WinUsb_QueryDeviceInformation(ih, DEVICE_SPEED, &len, &speed) && speed == cases[i].speed);
        /* Without tracking, the frame number is one read of the register
         * (debugfs here: the fixture has no BAR file); it stands at 0x1a2b. */
        ULONG frame = 0;
        LARGE_INTEGER stamp;
        CHECK_SUCCEEDS(WinUsb_GetCurrentFrameNumber(ih, &frame, &stamp));
        CHECK_MSG(frame == 0x1a2b >> 3, "frame %lu", (unsigned long)frame);
        CHECK(usbts_close(d));
    }
    check_open_fails("1:9", ERROR_FILE_NOT_FOUND, "1:9");
    check_open_fails("3:1", ERROR_FILE_NOT_FOUND, "lsusb");
    check_open_fails("/dev/bus/usb/001/009", ERROR_FILE_NOT_FOUND, "/dev/bus/usb/001/009");
    check_open_fails("dead:beef", ERROR_FILE_NOT_FOUND, "dead:beef");

    /* Broken trees: what is not a whole device is not found, never half-read. */
    use_tree("malformed");
    check_open_fails("1:2", ERROR_FILE_NOT_FOUND, NULL); /* busnum "1x" */
    check_open_fails("1:9", ERROR_FILE_NOT_FOUND, NULL); /* no ids */
    use_tree("truncated");
    check_open_fails("0627:0001", ERROR_FILE_NOT_FOUND, NULL); /* empty idProduct */
}

/* Opens spec, starts tracking without waiting, and returns the Start error
 * (ERROR_SUCCESS with *source filled on success). */
static DWORD try_start(const char *spec, char *source, size_t len)
{
    HANDLE d = usbts_open(spec);
    if (d == INVALID_HANDLE_VALUE)
        return GetLastError() | 0x80000000u;
    WINUSB_INTERFACE_HANDLE ih;
    DWORD err = ERROR_SUCCESS;
    if (!WinUsb_Initialize(d, &ih)) {
        err = GetLastError() | 0x40000000u;
    } else {
        USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION st = {NULL, TRUE};
        if (!WinUsb_StartTrackingForTimeSync(ih, &st)) {
            err = GetLastError();
        } else {
            USBTS_DEVICE_INFO di;
            usbts_get_device_info(d, &di);
            snprintf(source, len, "%s", di.Source);
            USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;
            memset(&q, 0, sizeof q);
            q.TimeTrackingHandle = st.TimeTrackingHandle;
            if (!WinUsb_GetCurrentFrameNumberAndQpc(ih, &q))
                err = GetLastError() | 0x20000000u;
            else if (((q.CurrentUSBFrameNumber * 8 + q.CurrentHardwareMicroFrameNumber - 0x1a2b) & 0x3FFF) > 800)
                err = 0x10000000u; /* the fixture's counter stands at 0x1a2b: no more than 100 ms on */
            USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION sp = {st.TimeTrackingHandle};
            WinUsb_StopTrackingForTimeSync(ih, &sp);
        }
    }
    usbts_close(d);
    return err;
}

static void check_start(const char *spec, DWORD want, const char *want_source, const char *needle)
{
    char source[16] = "";
    DWORD err = try_start(spec, source, sizeof source);
    CHECK_MSG(err == want, "%s: Start gives %#x, want %u (%s)", spec, (unsigned)err, (unsigned)want,
              usbts_last_error_message());
    if (want == ERROR_SUCCESS && want_source)
        CHECK_MSG(strcmp(source, want_source) == 0, "%s: source %s, want %s", spec, source, want_source);
    if (needle)
        CHECK_MSG(strstr(usbts_last_error_message(), needle) != NULL, "%s: '%s' names '%s'", spec,
                  usbts_last_error_message(), needle);
}

static void test_sources(void)
{
    use_tree("xhci");
    /* No BAR 0 file yet: MMIO cannot open, automatic choice falls back to debugfs. */
    unsetenv("USBTS_SOURCE");
    check_start("1:2", ERROR_SUCCESS, "debugfs", NULL);
    setenv("USBTS_SOURCE", "mmio", 1);
    check_start("1:2", ERROR_NOT_SUPPORTED, NULL, "resource0");
    put_bar0("0000:00:04.0", 0x1000, 0x1a2b, 0x4000);
    check_start("1:2", ERROR_SUCCESS, "mmio", NULL);
    unsetenv("USBTS_SOURCE");
    check_start("1:4", ERROR_SUCCESS, "mmio", NULL); /* automatic: MMIO first */
    setenv("USBTS_SOURCE", "debugfs", 1);
    check_start("1:3", ERROR_SUCCESS, "debugfs", NULL);
    setenv("USBTS_SOURCE", "auto", 1);
    check_start("1:3", ERROR_SUCCESS, "mmio", NULL);
    setenv("USBTS_SOURCE", "pio", 1);
    check_start("1:2", ERROR_INVALID_PARAMETER, NULL, "kmod, mmio or debugfs");
    /* The kernel module is not loaded in the tree: the automatic choice went
     * past it without a word (above); forced, it names how to install it. */
    setenv("USBTS_SOURCE", "kmod", 1);
    check_start("1:2", ERROR_NOT_SUPPORTED, NULL, "DKMS");
    /* A node that is not the module's (a plain file answers no ioctl). */
    put_file("/dev/usbts_mfindex", "");
    check_start("1:2", ERROR_NOT_SUPPORTED, NULL, "does not speak usbts_mfindex");
    unsetenv("USBTS_SOURCE");
    check_start("1:2", ERROR_SUCCESS, "mmio", NULL);
    char node[PATH_MAX];
    snprintf(node, sizeof node, "%s/dev/usbts_mfindex", tmp);
    CHECK(unlink(node) == 0);

    /* A BAR that is not xHCI registers, or a file shorter than the BAR. */
    setenv("USBTS_SOURCE", "mmio", 1);
    put_bar0("0000:00:04.0", 0x4000, 0x1a2b, 0x4000); /* RTSOFF past the end */
    check_start("1:2", ERROR_NOT_SUPPORTED, NULL, "RTSOFF");
    put_bar0("0000:00:04.0", 0x1000, 0x1a2b, 0x2000);
    check_start("1:2", ERROR_NOT_SUPPORTED, NULL, "shorter");
    unsetenv("USBTS_SOURCE");
    check_start("1:2", ERROR_SUCCESS, "debugfs", NULL);

    /* A controller with no MFINDEX at all: the driver is named. */
    use_tree("ehci");
    check_start("3:2", ERROR_NOT_SUPPORTED, NULL, "ehci-pci");

    /* Nor has a virtual one, which is not even on PCI. */
    use_tree("vhci");
    check_start("3:2", ERROR_NOT_SUPPORTED, NULL, "vhci_hcd");
    HANDLE vd = usbts_open("0781:5567");
    USBTS_DEVICE_INFO vdi;
    CHECK(vd != INVALID_HANDLE_VALUE && usbts_get_device_info(vd, &vdi) && strcmp(vdi.Controller, "vhci_hcd.0") == 0 &&
          strcmp(vdi.Driver, "vhci_hcd") == 0);
    usbts_close(vd);

    /* debugfs not mounted: the fix is named. */
    use_tree("no-debugfs");
    setenv("USBTS_SOURCE", "debugfs", 1);
    check_start("1:5", ERROR_NOT_SUPPORTED, NULL, "mount -t debugfs");
    unsetenv("USBTS_SOURCE");
    check_start("1:5", ERROR_NOT_SUPPORTED, NULL, "mount -t debugfs");

    /* Malformed and truncated register files are refused when opened. */
    use_tree("malformed");
    setenv("USBTS_SOURCE", "debugfs", 1);
    put_file("/sys/devices/pci0000:00/0000:00:04.0/usb1/1-1/busnum", "1\n");
    check_start("1:2", ERROR_NOT_SUPPORTED, NULL, "MFINDEX");
    setenv("USBTS_SOURCE", "mmio", 1);
    check_start("1:2", ERROR_NOT_SUPPORTED, NULL, "BAR 0");
    use_tree("truncated");
    put_file("/sys/devices/pci0000:00/0000:00:04.0/usb1/1-1/idProduct", "0001\n");
    setenv("USBTS_SOURCE", "debugfs", 1);
    check_start("1:2", ERROR_NOT_SUPPORTED, NULL, "MFINDEX");
    setenv("USBTS_SOURCE", "mmio", 1);
    check_start("1:2", ERROR_NOT_SUPPORTED, NULL, "BAR 0");
    unsetenv("USBTS_SOURCE");
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Devices on the USB 2 and the USB 3 bus of one xHCI controller share its
 * tracker: one sampler, one generation. */
static void test_shared_controller(void)
{
    use_tree("xhci");
    HANDLE d1 = usbts_open("1:2"), d2 = usbts_open("2:2");
    CHECK(d1 != INVALID_HANDLE_VALUE && d2 != INVALID_HANDLE_VALUE);
    WINUSB_INTERFACE_HANDLE i1, i2;
    CHECK_SUCCEEDS(WinUsb_Initialize(d1, &i1));
    CHECK_SUCCEEDS(WinUsb_Initialize(d2, &i2));
    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION s1 = {NULL, TRUE}, s2 = {NULL, TRUE};
    CHECK_SUCCEEDS(WinUsb_StartTrackingForTimeSync(i1, &s1));
    CHECK_SUCCEEDS(WinUsb_StartTrackingForTimeSync(i2, &s2));
    USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q1, q2;
    memset(&q1, 0, sizeof q1);
    memset(&q2, 0, sizeof q2);
    q1.TimeTrackingHandle = s1.TimeTrackingHandle;
    q2.TimeTrackingHandle = s2.TimeTrackingHandle;
    CHECK(WinUsb_GetCurrentFrameNumberAndQpc(i1, &q1) && WinUsb_GetCurrentFrameNumberAndQpc(i2, &q2));
    CHECK_MSG(q1.CurrentGenerationID == q2.CurrentGenerationID, "generations %u and %u",
              (unsigned)q1.CurrentGenerationID, (unsigned)q2.CurrentGenerationID);
    USBTS_TRACKING_STATS t1, t2;
    CHECK(usbts_get_tracking_stats(d1, &t1) && usbts_get_tracking_stats(d2, &t2));
    CHECK(t1.Reads > 0 && t1.Sampling && t2.Sampling);
    CHECK(usbts_close(d1) && usbts_close(d2));
}

/* Deauthorized, or gone from sysfs: every call says so, a query once the
 * sampler has noticed. */
static void test_removal(void)
{
    for (int how = 0; how < 3; how++) {
        use_tree("xhci");
        HANDLE d = usbts_open("1:2");
        CHECK(d != INVALID_HANDLE_VALUE);
        WINUSB_INTERFACE_HANDLE ih;
        CHECK_SUCCEEDS(WinUsb_Initialize(d, &ih));
        USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION st = {NULL, TRUE};
        CHECK_SUCCEEDS(WinUsb_StartTrackingForTimeSync(ih, &st));
        char from[PATH_MAX], to[PATH_MAX];
        if (how == 0) {
            put_file("/sys/devices/pci0000:00/0000:00:04.0/usb1/1-1/authorized", "0\n");
        } else {
            /* gone (1); or gone and another device enumerated under its name (2) */
            snprintf(from, sizeof from, "%s/sys/devices/pci0000:00/0000:00:04.0/usb1/1-1", tmp);
            snprintf(to, sizeof to, "%s/sys/devices/pci0000:00/0000:00:04.0/usb1/old", tmp);
            CHECK(rename(from, to) == 0);
            if (how == 2) {
                char cmd[3 * PATH_MAX];
                snprintf(cmd, sizeof cmd, "cp -a '%s' '%s'", to, from);
                CHECK(system(cmd) == 0);
            }
        }
        /* A query reads no sysfs: it learns of the removal from the sampler,
         * which polls every 50 ms, so on an idle machine the query fails
         * ~50 ms later.  A sampler thread starved by a loaded machine takes
         * longer: the query is retried every 10 ms until it fails, for at
         * most 10 s, and the time it took is printed. */
        USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;
        memset(&q, 0, sizeof q);
        q.TimeTrackingHandle = st.TimeTrackingHandle;
        int waited_ms = 0;
        while (WinUsb_GetCurrentFrameNumberAndQpc(ih, &q) && waited_ms < 10000) {
            sleep_ms(10);
            waited_ms += 10;
        }
        printf("removal %d: queries failed after ~%d ms\n", how, waited_ms);
        CHECK_FAILS_WITH(WinUsb_GetCurrentFrameNumberAndQpc(ih, &q), ERROR_DEVICE_NOT_CONNECTED);
        ULONG frame;
        LARGE_INTEGER ts;
        CHECK_FAILS_WITH(WinUsb_GetCurrentFrameNumber(ih, &frame, &ts), ERROR_DEVICE_NOT_CONNECTED);
        USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION st2 = {NULL, TRUE};
        CHECK_FAILS_WITH(WinUsb_StartTrackingForTimeSync(ih, &st2), ERROR_DEVICE_NOT_CONNECTED);
        WINUSB_INTERFACE_HANDLE ih2;
        CHECK_FAILS_WITH(WinUsb_Initialize(d, &ih2), ERROR_DEVICE_NOT_CONNECTED);
        CHECK(strstr(usbts_last_error_message(), "open it again") != NULL);
        CHECK(usbts_close(d));
    }
    /* Not tracking: the check happens in the call itself. */
    use_tree("xhci");
    HANDLE d = usbts_open("1:4");
    WINUSB_INTERFACE_HANDLE ih;
    CHECK_SUCCEEDS(WinUsb_Initialize(d, &ih));
    put_file("/sys/devices/pci0000:00/0000:00:04.0/usb1/1-3/authorized", "0\n");
    ULONG frame;
    LARGE_INTEGER ts;
    CHECK_FAILS_WITH(WinUsb_GetCurrentFrameNumber(ih, &frame, &ts), ERROR_DEVICE_NOT_CONNECTED);
    CHECK(usbts_close(d));
}

/* A user without privilege gets ERROR_ACCESS_DENIED and the fix, not a crash.
 * Runs in a child that drops root; skipped when not started as root. */
static void test_privilege(void)
{
    if (geteuid() != 0) {
        printf("privilege: not root, so no user to drop to: skipped\n");
        return;
    }
    use_tree("xhci");
    put_bar0("0000:00:04.0", 0x1000, 0x1a2b, 0x4000);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/sys/kernel/debug/usb/xhci/0000:00:04.0/reg-runtime", tmp);
    chmod(path, 0600);
    snprintf(path, sizeof path, "%s/dev/bus/usb/001/003", tmp);
    chmod(path, 0600);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(3);
        int bad = 0;
        char source[16];
        HANDLE d = usbts_open("1:3"); /* its usbfs node is root's */
        bad |= !(d == INVALID_HANDLE_VALUE && GetLastError() == ERROR_ACCESS_DENIED &&
                 strstr(usbts_last_error_message(), "udev") != NULL);
        bad |= (try_start("1:2", source, sizeof source) != ERROR_ACCESS_DENIED) << 1; /* resource0 and reg-runtime */
        bad |= !strstr(usbts_last_error_message(), "root") << 2;
        setenv("USBTS_SOURCE", "debugfs", 1);
        bad |= (try_start("1:2", source, sizeof source) != ERROR_ACCESS_DENIED) << 3;
        if (bad)
            fprintf(stderr, "privilege: %#x: %s\n", (unsigned)bad, usbts_last_error_message());
        _exit(bad ? 1 : 0);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "as user nobody: status %#x", (unsigned)status);
}

/* Descriptors this process inherited (the shell's, the test runner's). */
static bool inherited[4096];

static void note_inherited(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d) && atoi(e->d_name) < 4096)
            inherited[atoi(e->d_name)] = true;
    if (d)
        closedir(d);
}

/* Every descriptor the library holds is close-on-exec; returns how many it
 * holds (beyond what the process inherited). */
static int library_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    CHECK(d != NULL);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] == '.' || fd == dirfd(d) || (fd < 4096 && inherited[fd]))
            continue;
        n++;
        int flags = fcntl(fd, F_GETFD);
        char link[64], target[PATH_MAX] = "";
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t len = readlink(link, target, sizeof target - 1);
        if (len > 0)
            target[len] = '\0';
        CHECK_MSG(flags >= 0 && (flags & FD_CLOEXEC), "fd %d (%s) is not close-on-exec", fd, target);
    }
    closedir(d);
    return n;
}

/* The register mapping is read-only (and shared: the device's, not a copy). */
static int register_mappings(const char *want_perms)
{
    FILE *f = fopen("/proc/self/maps", "re");
    CHECK(f != NULL);
    if (!f)
        return 0;
    char line[PATH_MAX + 128];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        if (!strstr(line, "/resource0"))
            continue;
        n++;
        char perms[8] = "";
        sscanf(line, "%*s %7s", perms);
        CHECK_MSG(strcmp(perms, want_perms) == 0, "resource0 mapped %s, want %s", perms, want_perms);
    }
    fclose(f);
    return n;
}

static void test_hygiene(void)
{
    use_tree("xhci");
    put_bar0("0000:00:04.0", 0x1000, 0x1a2b, 0x4000);
    const char *sources[] = {"mmio", "debugfs"};
    for (int i = 0; i < 2; i++) {
        setenv("USBTS_SOURCE", sources[i], 1);
        int before = library_fds();
        HANDLE d = usbts_open("1:2");
        WINUSB_INTERFACE_HANDLE ih;
        CHECK_SUCCEEDS(WinUsb_Initialize(d, &ih));
        USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION st = {NULL, TRUE};
        CHECK_SUCCEEDS(WinUsb_StartTrackingForTimeSync(ih, &st));
        int held = library_fds() - before;
        /* the usbfs node, and for debugfs its register file */
        CHECK_MSG(held == (i == 0 ? 1 : 2), "%s: the library holds %d descriptors", sources[i], held);
        CHECK_EQ(register_mappings("r--s"), i == 0 ? 1 : 0);
        CHECK(usbts_close(d));
        CHECK_EQ(library_fds(), before); /* nothing left open */
        CHECK_EQ(register_mappings("r--s"), 0);
    }
    unsetenv("USBTS_SOURCE");
}

/* Listing: controllers with their usable sources, devices with speed. */
enum { KMOD, MMIO, DEBUGFS };
static void test_list(void)
{
    /* The sources' names and order come from the backend's one table. */
    CHECK_EQ(usbts_backend_source_count(), 3);
    CHECK(!strcmp(usbts_backend_source_name(KMOD), "kmod") && !strcmp(usbts_backend_source_name(MMIO), "mmio") &&
          !strcmp(usbts_backend_source_name(DEBUGFS), "debugfs") && !usbts_backend_source_name(3));
    use_tree("xhci");
    put_bar0("0000:00:04.0", 0x1000, 0x1a2b, 0x4000);
    struct usbts_controller_info ctl[4];
    struct usbts_usbdev_info dev[8];
    int nctl, ndev;
    CHECK(usbts_backend_list(ctl, 4, &nctl, dev, 8, &ndev) == 0);
    CHECK_EQ(nctl, 2); /* one controller, a row per root hub (USB 2 and USB 3) */
    CHECK_EQ(ndev, 6); /* two root hubs and four devices; interfaces are not devices */
    for (int i = 0; i < nctl && i < 4; i++)
        CHECK(strcmp(ctl[i].pci, "0000:00:04.0") == 0 && strcmp(ctl[i].driver, "xhci_hcd") == 0 &&
              !ctl[i].source_ok[KMOD] && ctl[i].source_ok[MMIO] && ctl[i].source_ok[DEBUGFS] &&
              (ctl[i].bus == 1 || ctl[i].bus == 2));
    /* The module is not installed in the tree: list says how to install it. */
    CHECK_MSG(strstr(ctl[0].why, "kmod: ") && strstr(ctl[0].why, "DKMS"), "why: %s", ctl[0].why);
    use_tree("ehci");
    CHECK(usbts_backend_list(ctl, 4, &nctl, dev, 8, &ndev) == 0);
    CHECK(nctl == 1 && !ctl[0].source_ok[KMOD] && !ctl[0].source_ok[MMIO] && !ctl[0].source_ok[DEBUGFS] &&
          strstr(ctl[0].why, "ehci-pci"));
    use_tree("no-debugfs");
    CHECK(usbts_backend_list(ctl, 4, &nctl, dev, 8, &ndev) == 0);
    CHECK(nctl == 1 && !ctl[0].source_ok[MMIO] && !ctl[0].source_ok[DEBUGFS] && strstr(ctl[0].why, "mount -t debugfs"));
    usbts_backend_set_root("/nonexistent-root");
    CHECK(usbts_backend_list(ctl, 4, &nctl, dev, 8, &ndev) == 0 && nctl == 0 && ndev == 0);
}

int main(void)
{
    note_inherited();
    test_parsers();
    test_lookup();
    test_sources();
    test_shared_controller();
    test_removal();
    test_privilege();
    test_hygiene();
    test_list();
    if (tmp[0]) {
        char cmd[PATH_MAX + 16];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
        if (system(cmd) != 0)
            printf("could not remove %s\n", tmp);
    }
    usbts_backend_set_root("");
    return test_finish();
}
