/* SPDX-License-Identifier: MIT */
/*
 * testutil.h — the few assertion helpers every test uses.
 *
 * A failed CHECK prints where and why and the test goes on, so one run shows
 * every broken fact; test_finish() prints "N passed, N failed" and returns
 * the exit status.
 */
#ifndef USBTS_TESTUTIL_H
#define USBTS_TESTUTIL_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>

#include "usbtimesync/usbtimesync.h"

#ifdef __cplusplus
extern "C" {
#endif

extern int test_passed, test_failed;

void test_report(int ok, const char *file, int line, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
int test_finish(void);

/* Threads in this process now (/proc/self/task), or -1. */
int test_task_count(void);

/* The thread count once it equals want, or, if it does not within 5 s, the
 * count then.  A thread that pthread_join has just returned for may still be
 * listed for a moment: the kernel wakes the joiner when the thread clears its
 * tid, before it releases the thread.  So a count expected to fall after a
 * join is polled (every ms, bounded) rather than read once; a thread really
 * left running still fails the comparison. */
int test_task_count_settled(int want);

/* A device opened from spec, its interface and one tracking handle started
 * with IsStartupDelayTolerable FALSE: the set-up most tests begin with. */
struct test_tracked {
    HANDLE d;
    WINUSB_INTERFACE_HANDLE ih;
    HANDLE th;
};
bool test_track(struct test_tracked *k, const char *spec);
/* Stops the handle, frees the interface, closes the device: true if all did. */
bool test_untrack(struct test_tracked *k);

#ifdef __cplusplus
}
#endif

#define CHECK(cond) test_report(!!(cond), __FILE__, __LINE__, "%s", #cond)
#define CHECK_MSG(cond, ...) test_report(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define CHECK_EQ(a, b)                                                                                           \
    do {                                                                                                         \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                                          \
        test_report(check_a_ == check_b_, __FILE__, __LINE__, "%s == %s (%lld vs %lld)", #a, #b, check_a_,      \
                    check_b_);                                                                                   \
    } while (0)
/* A call that must fail with exactly this last error. */
#define CHECK_FAILS_WITH(call, err)                                                                              \
    do {                                                                                                         \
        SetLastError(0xDEADu);                                                                                   \
        BOOL check_r_ = (call);                                                                                  \
        DWORD check_e_ = GetLastError();                                                                         \
        test_report(!check_r_ && check_e_ == (DWORD)(err), __FILE__, __LINE__,                                   \
                    "%s fails with %s (got %s, error %u)", #call, #err, check_r_ ? "TRUE" : "FALSE",             \
                    (unsigned)check_e_);                                                                         \
    } while (0)
/* A call that must succeed and leave the last error as it was. */
#define CHECK_SUCCEEDS(call)                                                                                     \
    do {                                                                                                         \
        SetLastError(0xBEEFu);                                                                                   \
        BOOL check_r_ = (call);                                                                                  \
        DWORD check_e_ = GetLastError();                                                                         \
        test_report(check_r_ && check_e_ == 0xBEEFu, __FILE__, __LINE__, "%s succeeds (got %s, error %u: %s)",  \
                    #call, check_r_ ? "TRUE" : "FALSE", (unsigned)check_e_, usbts_last_error_message());         \
    } while (0)

#endif
