/* SPDX-License-Identifier: MIT */
/*
 * test_conformance.c — one check per row of SPEC §3's behaviour table, with
 * the exact return value and error code.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"
#include "usbtimesync/usbtimesync.h"

static HANDLE open_sim(const char *spec)
{
    HANDLE d = usbts_open(spec);
    CHECK_MSG(d != INVALID_HANDLE_VALUE && d != NULL, "usbts_open(%s): %s", spec, usbts_last_error_message());
    return d;
}

static HANDLE start(WINUSB_INTERFACE_HANDLE ih, BOOLEAN tolerable)
{
    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION s = {NULL, tolerable};
    CHECK_SUCCEEDS(WinUsb_StartTrackingForTimeSync(ih, &s));
    return s.TimeTrackingHandle;
}

static BOOL query(WINUSB_INTERFACE_HANDLE ih, HANDLE th, ULONG frame, ULONG uf,
                  USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION *q)
{
    memset(q, 0, sizeof *q);
    q->TimeTrackingHandle = th;
    q->InputFrameNumber = frame;
    q->InputMicroFrameNumber = uf;
    return WinUsb_GetCurrentFrameNumberAndQpc(ih, q);
}

static BOOL stop(WINUSB_INTERFACE_HANDLE ih, HANDLE th)
{
    USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION s = {th};
    return WinUsb_StopTrackingForTimeSync(ih, &s);
}

static void test_null_and_garbage_handles(void)
{
    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION s = {NULL, TRUE};
    USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION p = {NULL};
    USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;
    memset(&q, 0, sizeof q);
    /* Garbage that would crash if dereferenced, and near-misses of real encodings. */
    WINUSB_INTERFACE_HANDLE garbage[] = {(void *)(uintptr_t)0x1, (void *)(uintptr_t)0xdeadbeef, INVALID_HANDLE_VALUE,
                                         (void *)(uintptr_t)0xA100000000010000ull, (void *)&s,
                                         (void *)(uintptr_t)0xA1FFFFFFFFFFFFFFull};

    CHECK_FAILS_WITH(WinUsb_StartTrackingForTimeSync(NULL, &s), ERROR_INVALID_HANDLE);
    CHECK_FAILS_WITH(WinUsb_GetCurrentFrameNumberAndQpc(NULL, &q), ERROR_INVALID_HANDLE);
    CHECK_FAILS_WITH(WinUsb_StopTrackingForTimeSync(NULL, &p), ERROR_INVALID_HANDLE);
    CHECK_FAILS_WITH(WinUsb_Free(NULL), ERROR_INVALID_HANDLE);
    for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
        CHECK_FAILS_WITH(WinUsb_StartTrackingForTimeSync(garbage[i], &s), ERROR_INVALID_HANDLE);
        CHECK_FAILS_WITH(WinUsb_GetCurrentFrameNumberAndQpc(garbage[i], &q), ERROR_INVALID_HANDLE);
        CHECK_FAILS_WITH(WinUsb_StopTrackingForTimeSync(garbage[i], &p), ERROR_INVALID_HANDLE);
        CHECK_FAILS_WITH(WinUsb_Free(garbage[i]), ERROR_INVALID_HANDLE);
        ULONG f;
        LARGE_INTEGER ts;
        CHECK_FAILS_WITH(WinUsb_GetCurrentFrameNumber(garbage[i], &f, &ts), ERROR_INVALID_HANDLE);
        UCHAR speed;
        ULONG len = 1;
        CHECK_FAILS_WITH(WinUsb_QueryDeviceInformation(garbage[i], DEVICE_SPEED, &len, &speed), ERROR_INVALID_HANDLE);
    }

    /* NULL structure pointers on a live interface. */
    HANDLE d = open_sim("sim:clock=virtual");
    WINUSB_INTERFACE_HANDLE ih;
    CHECK_SUCCEEDS(WinUsb_Initialize(d, &ih));
    CHECK_FAILS_WITH(WinUsb_StartTrackingForTimeSync(ih, NULL), ERROR_INVALID_HANDLE);
    CHECK_FAILS_WITH(WinUsb_GetCurrentFrameNumberAndQpc(ih, NULL), ERROR_INVALID_HANDLE);
    CHECK_FAILS_WITH(WinUsb_StopTrackingForTimeSync(ih, NULL), ERROR_INVALID_HANDLE);
    /* A device handle is not an interface handle, nor the reverse. */
    CHECK_FAILS_WITH(WinUsb_StartTrackingForTimeSync((WINUSB_INTERFACE_HANDLE)d, &s), ERROR_INVALID_HANDLE);
    WINUSB_INTERFACE_HANDLE ih2;
    CHECK_FAILS_WITH(WinUsb_Initialize((HANDLE)ih, &ih2), ERROR_INVALID_HANDLE);
    CHECK_FAILS_WITH(WinUsb_Initialize(NULL, &ih2), ERROR_INVALID_HANDLE);
    CHECK_FAILS_WITH(usbts_close((HANDLE)ih), ERROR_INVALID_HANDLE);

    /* Stale interface handle. */
    CHECK_SUCCEEDS(WinUsb_Free(ih));
    CHECK_FAILS_WITH(WinUsb_Free(ih), ERROR_INVALID_HANDLE);
    s.TimeTrackingHandle = NULL;
    CHECK_FAILS_WITH(WinUsb_StartTrackingForTimeSync(ih, &s), ERROR_INVALID_HANDLE);
    CHECK_SUCCEEDS(usbts_close(d));
    CHECK_FAILS_WITH(usbts_close(d), ERROR_INVALID_HANDLE);
    CHECK_FAILS_WITH(WinUsb_Initialize(d, &ih2), ERROR_INVALID_HANDLE);
}

static void test_start_input_handle(void)
{
    HANDLE d = open_sim("sim:clock=virtual");
    WINUSB_INTERFACE_HANDLE ih;
    CHECK_SUCCEEDS(WinUsb_Initialize(d, &ih));
    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION s = {(HANDLE)(uintptr_t)0x1234, TRUE};
    CHECK_FAILS_WITH(WinUsb_StartTrackingForTimeSync(ih, &s), ERROR_INVALID_PARAMETER);
    CHECK(s.TimeTrackingHandle == (HANDLE)(uintptr_t)0x1234); /* left as it was */
    s.TimeTrackingHandle = INVALID_HANDLE_VALUE;
    CHECK_SUCCEEDS(WinUsb_StartTrackingForTimeSync(ih, &s));
    CHECK(s.TimeTrackingHandle != NULL && s.TimeTrackingHandle != INVALID_HANDLE_VALUE);
    /* A live tracking handle as input is not allowed either. */
    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION s2 = {s.TimeTrackingHandle, TRUE};
    CHECK_FAILS_WITH(WinUsb_StartTrackingForTimeSync(ih, &s2), ERROR_INVALID_PARAMETER);
    CHECK_SUCCEEDS(stop(ih, s.TimeTrackingHandle));
    CHECK_SUCCEEDS(WinUsb_Free(ih));
    CHECK_SUCCEEDS(usbts_close(d));
}

static void test_tracking_handle_rules(void)
{
    HANDLE d = open_sim("sim:clock=virtual,seed=7");
    WINUSB_INTERFACE_HANDLE a, b;
    CHECK_SUCCEEDS(WinUsb_Initialize(d, &a));
    CHECK_SUCCEEDS(WinUsb_Initialize(d, &b));
    HANDLE ta = start(a, FALSE);
    USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;

    CHECK_SUCCEEDS(query(a, ta, 0, 0, &q));
    /* Used on another interface of the same device: foreign. */
    CHECK_FAILS_WITH(query(b, ta, 0, 0, &q), ERROR_INVALID_HANDLE);
    CHECK_FAILS_WITH(stop(b, ta), ERROR_INVALID_HANDLE);
    /* An interface handle passed as a tracking handle. */
    CHECK_FAILS_WITH(query(a, (HANDLE)a, 0, 0, &q), ERROR_INVALID_HANDLE);
    CHECK_FAILS_WITH(query(a, NULL, 0, 0, &q), ERROR_INVALID_HANDLE);
    /* Microframe 8. */
    CHECK_FAILS_WITH(query(a, ta, 100, 8, &q), ERROR_INVALID_PARAMETER);
    CHECK_FAILS_WITH(query(a, ta, 100, 0xFFFFFFFFu, &q), ERROR_INVALID_PARAMETER);
    /* Input 0/0 gives QPC 0 and still fills the current fields. */
    CHECK_SUCCEEDS(query(a, ta, 0, 0, &q));
    CHECK_EQ(q.QueryPerformanceCounterAtInputFrameOrMicroFrame.QuadPart, 0);
    CHECK_EQ(q.QueryPerformanceCounterFrequency.QuadPart, 10000000);
    CHECK(q.CurrentQueryPerformanceCounter.QuadPart > 0);
    CHECK(q.CurrentGenerationID != 0);
    CHECK(q.PredictedAccuracyInMicroSeconds >= 1);
    CHECK_EQ(q.CurrentHardwareFrameNumber, q.CurrentUSBFrameNumber & 0x7FF);
    CHECK(q.CurrentHardwareMicroFrameNumber <= 7);
    /* Frame 0 microframe 1 is a real microframe, not the 0/0 special case. */
    CHECK_SUCCEEDS(query(a, ta, 0, 1, &q));
    CHECK(q.QueryPerformanceCounterAtInputFrameOrMicroFrame.QuadPart != 0);

    /* Double stop; query after stop. */
    CHECK_SUCCEEDS(stop(a, ta));
    CHECK_FAILS_WITH(stop(a, ta), ERROR_INVALID_HANDLE);
    CHECK_FAILS_WITH(query(a, ta, 0, 0, &q), ERROR_INVALID_HANDLE);

    /* Free with live tracking handles: they die with the interface. */
    HANDLE t1 = start(a, TRUE), t2 = start(a, FALSE);
    CHECK(t1 != t2);
    CHECK_SUCCEEDS(WinUsb_Free(a));
    CHECK_FAILS_WITH(query(a, t1, 0, 0, &q), ERROR_INVALID_HANDLE);
    CHECK_FAILS_WITH(query(a, t2, 0, 0, &q), ERROR_INVALID_HANDLE);
    CHECK_FAILS_WITH(stop(a, t1), ERROR_INVALID_HANDLE);
    CHECK_FAILS_WITH(WinUsb_Free(a), ERROR_INVALID_HANDLE);
    /* The other interface is unaffected. */
    HANDLE tb = start(b, FALSE);
    CHECK_SUCCEEDS(query(b, tb, 0, 0, &q));
    /* Closing the device frees its interfaces and their tracking. */
    CHECK_SUCCEEDS(usbts_close(d));
    CHECK_FAILS_WITH(query(b, tb, 0, 0, &q), ERROR_INVALID_HANDLE);
    CHECK_FAILS_WITH(WinUsb_Free(b), ERROR_INVALID_HANDLE);
}

static void test_handles_never_reused(void)
{
    HANDLE d = open_sim("sim:clock=virtual");
    WINUSB_INTERFACE_HANDLE ih;
    CHECK_SUCCEEDS(WinUsb_Initialize(d, &ih));
    enum { N = 500 };
    HANDLE *seen = calloc(N, sizeof *seen);
    int dup = 0, failed = 0;
    for (int i = 0; i < N; i++) {
        USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION s = {NULL, TRUE};
        if (!WinUsb_StartTrackingForTimeSync(ih, &s)) {
            failed++;
            continue;
        }
        for (int j = 0; j < i; j++)
            dup += seen[j] == s.TimeTrackingHandle;
        seen[i] = s.TimeTrackingHandle;
        if (!stop(ih, s.TimeTrackingHandle))
            failed++;
        dup += s.TimeTrackingHandle == ih || s.TimeTrackingHandle == d;
    }
    CHECK_EQ(failed, 0);
    CHECK_EQ(dup, 0);
    /* Interfaces and devices too. */
    WINUSB_INTERFACE_HANDLE ih2;
    CHECK_SUCCEEDS(WinUsb_Free(ih));
    CHECK_SUCCEEDS(WinUsb_Initialize(d, &ih2));
    CHECK(ih2 != ih);
    CHECK_SUCCEEDS(usbts_close(d));
    HANDLE d2 = open_sim("sim:clock=virtual");
    CHECK(d2 != d);
    CHECK_SUCCEEDS(usbts_close(d2));
    free(seen);
}

struct thread_err {
    DWORD seen;
};

static void *other_thread(void *arg)
{
    struct thread_err *t = arg;
    t->seen = GetLastError(); /* a new thread starts clean */
    WinUsb_Free(NULL);         /* sets ERROR_INVALID_HANDLE here only */
    return NULL;
}

static void test_last_error_per_thread(void)
{
    SetLastError(ERROR_TIMEOUT);
    struct thread_err t = {12345};
    pthread_t th;
    pthread_create(&th, NULL, other_thread, &t);
    pthread_join(th, NULL);
    CHECK_EQ(t.seen, ERROR_SUCCESS);
    CHECK_EQ(GetLastError(), ERROR_TIMEOUT);
    /* Success leaves it alone; failure sets it and a message. */
    LARGE_INTEGER f;
    CHECK_SUCCEEDS(QueryPerformanceFrequency(&f));
    CHECK_EQ(f.QuadPart, 10000000);
    CHECK_FAILS_WITH(WinUsb_Free(NULL), ERROR_INVALID_HANDLE);
    CHECK(strlen(usbts_last_error_message()) > 10);
}

static void test_frame_number_calls(void)
{
    HANDLE d = open_sim("sim"); /* real clock: GetAdjustedFrameNumber counts real time */
    WINUSB_INTERFACE_HANDLE ih;
    CHECK_SUCCEEDS(WinUsb_Initialize(d, &ih));
    ULONG f1 = 0, f2 = 0;
    LARGE_INTEGER ts1, ts2, t_begin, t_mid1, t_mid2, t_end;
    /* Every limit comes from the time that really passed, read around each
     * call, so a test thread descheduled on a busy machine does not fail a
     * correct library: the counter latched, and the timestamp was taken,
     * somewhere between the clock reads around the call. */
    QueryPerformanceCounter(&t_begin);
    CHECK_SUCCEEDS(WinUsb_GetCurrentFrameNumber(ih, &f1, &ts1));
    QueryPerformanceCounter(&t_mid1);
    struct timespec req = {0, 20000000};
    nanosleep(&req, NULL);
    QueryPerformanceCounter(&t_mid2);
    CHECK_SUCCEEDS(WinUsb_GetCurrentFrameNumber(ih, &f2, &ts2));
    QueryPerformanceCounter(&t_end);
    /* (TimeStamps round to the nearest tick, the clock reads truncate: +1.) */
    CHECK_MSG(ts1.QuadPart >= t_begin.QuadPart && ts1.QuadPart <= t_mid1.QuadPart + 1 &&
                  ts2.QuadPart >= t_mid2.QuadPart && ts2.QuadPart <= t_end.QuadPart + 1,
              "each TimeStamp lies within its call");
    long long moved = (long long)(f2 - f1);
    long long qpc_ms = (ts2.QuadPart - ts1.QuadPart) / 10000;
    /* Two frame numbers and a ms truncated: 2 frames; plus how long each call
     * took (the latch and the timestamp may lie that far apart). */
    double call_ms = (double)(t_mid1.QuadPart - t_begin.QuadPart + t_end.QuadPart - t_mid2.QuadPart) / 1e4;
    printf("GetCurrentFrameNumber: frame moved %lld in %lld ms between TimeStamps (calls took %.3f ms)\n", moved,
           qpc_ms, call_ms);
    CHECK_MSG((double)llabs(moved - qpc_ms) <= 2 + call_ms, "frame moved %lld in %lld ms (calls took %.3f ms)", moved,
              qpc_ms, call_ms);

    ULONG adj = f1;
    CHECK_SUCCEEDS(WinUsb_GetAdjustedFrameNumber(&adj, ts1));
    QueryPerformanceCounter(&t_end);
    long long passed_ms = (t_end.QuadPart - t_begin.QuadPart) / 10000;
    CHECK_MSG(moved >= 19 && moved <= passed_ms + 2, "frame moved %lld in >= 20 ms (%lld ms passed)", moved,
              passed_ms);
    long long adj_moved = (long long)(adj - f1);
    CHECK_MSG(adj_moved >= moved - 1 && adj_moved <= passed_ms + 2,
              "adjusted by %lld after %lld frames (%lld ms passed)", adj_moved, moved, passed_ms);
    CHECK_FAILS_WITH(WinUsb_GetAdjustedFrameNumber(NULL, ts1), ERROR_INVALID_PARAMETER);
    CHECK_FAILS_WITH(WinUsb_GetCurrentFrameNumber(ih, NULL, &ts1), ERROR_INVALID_PARAMETER);

    /* DEVICE_SPEED: the simulated device is high speed. */
    UCHAR speed = 0;
    ULONG len = 1;
    CHECK_SUCCEEDS(WinUsb_QueryDeviceInformation(ih, DEVICE_SPEED, &len, &speed));
    CHECK_EQ(speed, HighSpeed);
    CHECK_EQ(len, 1);
    len = 0;
    CHECK_FAILS_WITH(WinUsb_QueryDeviceInformation(ih, DEVICE_SPEED, &len, &speed), ERROR_INSUFFICIENT_BUFFER);
    len = 1;
    CHECK_FAILS_WITH(WinUsb_QueryDeviceInformation(ih, 2, &len, &speed), ERROR_INVALID_PARAMETER);
    CHECK_FAILS_WITH(WinUsb_QueryDeviceInformation(ih, DEVICE_SPEED, NULL, &speed), ERROR_INVALID_PARAMETER);
    CHECK_SUCCEEDS(WinUsb_Free(ih));
    CHECK_SUCCEEDS(usbts_close(d));
}

static void test_qpc_is_monotonic_over_100(void)
{
    LARGE_INTEGER a;
    struct timespec before, after;
    clock_gettime(CLOCK_MONOTONIC, &before);
    CHECK_SUCCEEDS(QueryPerformanceCounter(&a));
    clock_gettime(CLOCK_MONOTONIC, &after);
    long long lo = (before.tv_sec * 1000000000LL + before.tv_nsec) / 100;
    long long hi = (after.tv_sec * 1000000000LL + after.tv_nsec) / 100;
    CHECK(a.QuadPart >= lo && a.QuadPart <= hi);
    CHECK_FAILS_WITH(QueryPerformanceCounter(NULL), ERROR_INVALID_PARAMETER);
}

static void test_unplug(void)
{
    HANDLE d = open_sim("sim:clock=virtual");
    WINUSB_INTERFACE_HANDLE ih;
    CHECK_SUCCEEDS(WinUsb_Initialize(d, &ih));
    HANDLE th = start(ih, FALSE);
    CHECK_SUCCEEDS(usbts_sim_inject(d, "unplug"));
    USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;
    CHECK_FAILS_WITH(query(ih, th, 0, 0, &q), ERROR_DEVICE_NOT_CONNECTED);
    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION s = {NULL, TRUE};
    CHECK_FAILS_WITH(WinUsb_StartTrackingForTimeSync(ih, &s), ERROR_DEVICE_NOT_CONNECTED);
    CHECK(s.TimeTrackingHandle == NULL);
    ULONG f;
    LARGE_INTEGER ts;
    CHECK_FAILS_WITH(WinUsb_GetCurrentFrameNumber(ih, &f, &ts), ERROR_DEVICE_NOT_CONNECTED);
    /* Stop and Free still work: they release, they do not talk to the device. */
    CHECK_SUCCEEDS(stop(ih, th));
    CHECK_SUCCEEDS(WinUsb_Free(ih));
    CHECK_FAILS_WITH(WinUsb_Initialize(d, &ih), ERROR_DEVICE_NOT_CONNECTED);
    CHECK_SUCCEEDS(usbts_close(d));
}

static void test_start_timeout_on_halted_counter(void)
{
    HANDLE d = open_sim("sim:clock=virtual");
    WINUSB_INTERFACE_HANDLE ih;
    CHECK_SUCCEEDS(WinUsb_Initialize(d, &ih));
    CHECK_SUCCEEDS(usbts_sim_inject(d, "halt_ms=5000"));
    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION s = {NULL, FALSE};
    CHECK_FAILS_WITH(WinUsb_StartTrackingForTimeSync(ih, &s), ERROR_TIMEOUT);
    CHECK(s.TimeTrackingHandle == NULL);
    /* Tolerant start does not wait, and says how little it knows. */
    s.IsStartupDelayTolerable = TRUE;
    CHECK_SUCCEEDS(WinUsb_StartTrackingForTimeSync(ih, &s));
    USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;
    CHECK_SUCCEEDS(query(ih, s.TimeTrackingHandle, 0, 0, &q));
    CHECK_MSG(q.PredictedAccuracyInMicroSeconds >= 125, "uncaptured bound %u µs",
              (unsigned)q.PredictedAccuracyInMicroSeconds);
    CHECK_SUCCEEDS(stop(ih, s.TimeTrackingHandle));
    CHECK_SUCCEEDS(WinUsb_Free(ih));
    CHECK_SUCCEEDS(usbts_close(d));
}

static void test_open_errors(void)
{
    const char *bad[] = {"", "simulated", "sim:", "sim:foo=1", "sim:drift_ppm=5000", "sim:clock=fast",
                         "sim:seed=", "sim:seed=1,seed=2", "/dev/bus/usb/", "/dev/bus/usb/001", "/dev/bus/usb/a/b",
                         "/dev/bus/usb/001/002/", "1:", ":2", "1:2:3", "0:1", "1:0", "1:128", "12345:1", "xyz",
                         "1d6b:00022", "g000:0001", "../../etc/passwd"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        SetLastError(0);
        HANDLE h = usbts_open(bad[i]);
        CHECK_MSG(h == INVALID_HANDLE_VALUE && GetLastError() == ERROR_INVALID_PARAMETER,
                  "usbts_open(\"%s\") -> error %u", bad[i], (unsigned)GetLastError());
        CHECK_MSG(strlen(usbts_last_error_message()) > 0, "message for \"%s\"", bad[i]);
    }
    SetLastError(0);
    CHECK(usbts_open(NULL) == INVALID_HANDLE_VALUE && GetLastError() == ERROR_INVALID_PARAMETER);
    /* Well-formed but absent. */
    SetLastError(0);
    HANDLE h = usbts_open("/dev/bus/usb/999/127");
    CHECK_MSG(h == INVALID_HANDLE_VALUE && GetLastError() == ERROR_FILE_NOT_FOUND, "absent node -> error %u",
              (unsigned)GetLastError());
}

int main(void)
{
    test_null_and_garbage_handles();
    test_start_input_handle();
    test_tracking_handle_rules();
    test_handles_never_reused();
    test_last_error_per_thread();
    test_frame_number_calls();
    test_qpc_is_monotonic_over_100();
    test_unplug();
    test_start_timeout_on_halted_counter();
    test_open_errors();
    return test_finish();
}
