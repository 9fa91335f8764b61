/* SPDX-License-Identifier: MIT */
#include "testutil.h"

#include <dirent.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

int test_passed, test_failed;

void test_report(int ok, const char *file, int line, const char *fmt, ...)
{
    if (ok) {
        test_passed++;
        return;
    }
    test_failed++;
    fprintf(stderr, "FAIL %s:%d: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int test_finish(void)
{
    printf("%d passed, %d failed\n", test_passed, test_failed);
    return test_failed ? 1 : 0;
}

int test_task_count(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

int test_task_count_settled(int want)
{
    int n = test_task_count();
    for (int i = 0; i < 5000 && n != want; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
        n = test_task_count();
    }
    return n;
}

bool test_track(struct test_tracked *k, const char *spec)
{
    memset(k, 0, sizeof *k);
    k->d = usbts_open(spec);
    if (k->d == INVALID_HANDLE_VALUE || !WinUsb_Initialize(k->d, &k->ih))
        return false;
    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION s = {NULL, FALSE};
    if (!WinUsb_StartTrackingForTimeSync(k->ih, &s))
        return false;
    k->th = s.TimeTrackingHandle;
    return true;
}

bool test_untrack(struct test_tracked *k)
{
    USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION p = {k->th};
    bool stopped = WinUsb_StopTrackingForTimeSync(k->ih, &p);
    bool freed = WinUsb_Free(k->ih);
    bool closed = usbts_close(k->d);
    return stopped && freed && closed;
}
