/* SPDX-License-Identifier: MIT */
/*
 * daemon_guest — the client side of the daemon's QEMU boot (run_daemon.sh).
 * Runs as an unprivileged uid (it drops to the uid given) against the
 * emulated keyboard (0627:0001):
 *
 *   daemon_guest UID refused   no daemon: Start fails with ERROR_ACCESS_DENIED naming it
 *   daemon_guest UID track     through the daemon: no sampler thread here; prints the bound;
 *                              then waits for /tmp/rebound (the boot script unbinds and binds
 *                              the controller), expects ERROR_DEVICE_NOT_CONNECTED on the old
 *                              handles and a new generation on a device opened after
 *
 * Prints "E2E ..." lines; exit 0 when every fact held.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "usbtimesync/usbtimesync.h"

#define KEYBOARD "0627:0001"

static int failed;

#define FACT(cond, ...)                                                                                          \
    do {                                                                                                         \
        if (!(cond)) {                                                                                           \
            failed = 1;                                                                                          \
            printf("E2E FAIL: ");                                                                                \
        } else {                                                                                                 \
            printf("E2E ok: ");                                                                                  \
        }                                                                                                        \
        printf(__VA_ARGS__);                                                                                     \
        printf("\n");                                                                                            \
        fflush(stdout);                                                                                          \
    } while (0)

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static int threads(void)
{
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

struct tracked {
    HANDLE dev;
    WINUSB_INTERFACE_HANDLE ih;
    HANDLE th;
};

static BOOL start(struct tracked *t)
{
    t->dev = usbts_open(KEYBOARD);
    if (t->dev == INVALID_HANDLE_VALUE)
        return FALSE;
    if (!WinUsb_Initialize(t->dev, &t->ih))
        return FALSE;
    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION s = {NULL, FALSE};
    if (!WinUsb_StartTrackingForTimeSync(t->ih, &s))
        return FALSE;
    t->th = s.TimeTrackingHandle;
    return TRUE;
}

/* Queries for `ms`; the largest and the last bound, the generation. */
static BOOL watch(struct tracked *t, int ms, ULONG *max_acc, ULONG *last_acc, ULONG *gen)
{
    *max_acc = 0;
    for (int i = 0; i < ms / 10; i++) {
        USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;
        memset(&q, 0, sizeof q);
        q.TimeTrackingHandle = t->th;
        if (!WinUsb_GetCurrentFrameNumberAndQpc(t->ih, &q))
            return FALSE;
        if (i >= ms / 20 && q.PredictedAccuracyInMicroSeconds > *max_acc) /* after the first half */
            *max_acc = q.PredictedAccuracyInMicroSeconds;
        *last_acc = q.PredictedAccuracyInMicroSeconds;
        *gen = q.CurrentGenerationID;
        sleep_ms(10);
    }
    return TRUE;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    uid_t uid = (uid_t)atoi(argv[1]);
    if (setgid(uid) != 0 || setuid(uid) != 0) {
        printf("E2E FAIL: cannot become uid %u\n", (unsigned)uid);
        return 1;
    }
    struct tracked t;
    if (!strcmp(argv[2], "refused")) {
        BOOL ok = start(&t);
        DWORD err = GetLastError();
        FACT(!ok && err == ERROR_ACCESS_DENIED && strstr(usbts_last_error_message(), "usbtimesyncd"),
             "uid %u without a daemon: Start refused with ERROR_ACCESS_DENIED naming the daemon (%u: %s)",
             (unsigned)uid, (unsigned)err, usbts_last_error_message());
        return failed;
    }
    BOOL ok = start(&t);
    FACT(ok, "uid %u tracks %s through the daemon (%s)", (unsigned)uid, KEYBOARD,
         ok ? "started" : usbts_last_error_message());
    if (!ok)
        return 1;
    FACT(threads() == 1, "no sampler thread in the client (%d threads)", threads());
    USBTS_DEVICE_INFO info;
    if (usbts_get_device_info(t.dev, &info))
        printf("E2E daemon source=%s controller=%s\n", info.Source, info.Controller);
    ULONG max_acc = 0, last_acc = 0, gen1 = 0;
    ok = watch(&t, 3000, &max_acc, &last_acc, &gen1);
    FACT(ok, "queries through the daemon's page answer (%s)", ok ? "all" : usbts_last_error_message());
    printf("E2E daemon bound: largest %u us over the last 1.5 s, last %u us, generation %u\n", (unsigned)max_acc,
           (unsigned)last_acc, (unsigned)gen1);
    USBTS_TRACKING_STATS st;
    if (usbts_get_tracking_stats(t.dev, &st))
        printf("E2E daemon stats: reads %llu captures %llu bracket %lld ns\n", (unsigned long long)st.Reads,
               (unsigned long long)st.Captures, (long long)st.BracketNs);
    printf("E2E unbind now\n");
    fflush(stdout);
    for (int i = 0; i < 300 && access("/tmp/rebound", F_OK) != 0; i++)
        sleep_ms(100);
    USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;
    memset(&q, 0, sizeof q);
    q.TimeTrackingHandle = t.th;
    ok = WinUsb_GetCurrentFrameNumberAndQpc(t.ih, &q);
    FACT(!ok && GetLastError() == ERROR_DEVICE_NOT_CONNECTED,
         "after unbind the old handles give ERROR_DEVICE_NOT_CONNECTED (%u)", (unsigned)GetLastError());
    usbts_close(t.dev);
    struct tracked n;
    ok = FALSE;
    for (int i = 0; i < 100 && !(ok = start(&n)); i++)
        sleep_ms(100);
    FACT(ok, "the keyboard opened again after the rebind (%s)", ok ? "tracking" : usbts_last_error_message());
    if (!ok)
        return 1;
    ULONG gen2 = 0;
    ok = watch(&n, 2000, &max_acc, &last_acc, &gen2);
    FACT(ok && gen2 != 0 && gen2 != gen1, "a new generation after the rebind (%u, was %u)", (unsigned)gen2,
         (unsigned)gen1);
    printf("E2E daemon bound after rebind: largest %u us, last %u us\n", (unsigned)max_acc, (unsigned)last_acc);
    usbts_close(n.dev);
    return failed;
}
