/* SPDX-License-Identifier: MIT */
/*
 * test_noalloc.c — the query path allocates nothing.
 *
 * malloc, calloc, realloc and free are interposed here and count the calls
 * made by this thread; 10,000 queries of each kind after a warm-up must make
 * none.  AddressSanitizer owns malloc in the sanitized build, so there the
 * test says so and passes without counting.
 */
#include <stddef.h>
#include <string.h>

#include "testutil.h"
#include "usbtimesync/usbtimesync.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define USBTS_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define USBTS_SANITIZED 1
#endif
#endif

#ifndef USBTS_SANITIZED
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

static _Thread_local long allocations;

void *malloc(size_t n)
{
    allocations++;
    return __libc_malloc(n);
}

void *calloc(size_t a, size_t b)
{
    allocations++;
    return __libc_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
    allocations++;
    return __libc_realloc(p, n);
}

void free(void *p)
{
    if (p)
        allocations++;
    __libc_free(p);
}
#endif

int main(void)
{
#ifdef USBTS_SANITIZED
    printf("skipped under a sanitizer, which owns malloc\n");
    return test_finish();
#else
    HANDLE d = usbts_open("sim"); /* a real clock: the sampler thread runs meanwhile */
    WINUSB_INTERFACE_HANDLE ih;
    CHECK(WinUsb_Initialize(d, &ih));
    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION s = {NULL, FALSE};
    CHECK(WinUsb_StartTrackingForTimeSync(ih, &s));
    USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;
    memset(&q, 0, sizeof q);
    q.TimeTrackingHandle = s.TimeTrackingHandle;
    USBTS_FRAME_TIME ft;
    CHECK(WinUsb_GetCurrentFrameNumberAndQpc(ih, &q)); /* warm-up */
    CHECK(usbts_frame_to_ns(ih, q.TimeTrackingHandle, q.CurrentUSBFrameNumber, 0, &ft));
    CHECK(usbts_ns_to_frame(ih, q.TimeTrackingHandle, ft.StartNs, &ft));

    long before = allocations;
    int failed = 0;
    for (int i = 0; i < 10000; i++) {
        q.InputFrameNumber = (ULONG)i;
        q.InputMicroFrameNumber = (ULONG)(i & 7);
        failed += !WinUsb_GetCurrentFrameNumberAndQpc(ih, &q);
        failed += !usbts_frame_to_ns(ih, q.TimeTrackingHandle, (ULONG)i, 1, &ft);
        failed += !usbts_ns_to_frame(ih, q.TimeTrackingHandle, ft.StartNs + 1000, &ft);
    }
    long during = allocations - before;
    /* Nor the other timelines, single or bulk (the conversion is measured on
     * the stack, the arrays are the caller's). */
    static ULONG frames[256];
    static LONGLONG starts[256], bounds[256];
    for (int i = 0; i < 256; i++)
        frames[i] = q.CurrentUSBFrameNumber - (ULONG)i;
    ULONG gen;
    before = allocations;
    for (int i = 0; i < 1000; i++) {
        failed += !usbts_frame_to_clock_ns(ih, q.TimeTrackingHandle, (ULONG)(i & 3), (ULONG)i, 2, &ft);
        failed += !usbts_frames_to_clock_ns(ih, q.TimeTrackingHandle, (ULONG)(i & 3), 256, frames, NULL, starts,
                                            bounds, &gen);
    }
    long during_clocks = allocations - before;
    printf("allocations in 2,000 queries on other clocks (1,000 of 256 frames): %ld\n", during_clocks);
    CHECK_EQ(during_clocks, 0);
    /* Failing queries allocate nothing either (no message buffers). */
    before = allocations;
    USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION bad = q;
    bad.InputMicroFrameNumber = 9;
    for (int i = 0; i < 1000; i++)
        failed -= !WinUsb_GetCurrentFrameNumberAndQpc(ih, &bad);
    long during_errors = allocations - before;
    printf("allocations in 30,000 queries: %ld; in 1,000 failing ones: %ld\n", during, during_errors);
    CHECK_EQ(failed, -1000);
    CHECK_EQ(during, 0);
    CHECK_EQ(during_errors, 0);
    /* Placing isochronous URBs and extending SOF numbers (issue #13) allocate
     * nothing either. */
    USBTS_ISO_ENDPOINT iso_ep = {FullSpeed, 1, 0xF, FALSE};
    USBTS_ISO_STREAM iso;
    CHECK(usbts_iso_stream_init(&iso, &iso_ep));
    LONGLONG t0;
    CHECK(usbts_now_ns(d, &t0));
    USBTS_ISO_SUBMISSION sub = {t0, t0 + 50000, 8, 1};
    USBTS_ISO_RESULT res;
    USBTS_ISO_PACKET pk[8];
    ULONG full;
    CHECK(usbts_iso_submitted(ih, q.TimeTrackingHandle, &iso, &sub, &res, pk)); /* warm-up */
    before = allocations;
    int iso_failed = 0;
    for (int i = 0; i < 1000; i++) {
        iso_failed += !usbts_iso_submitted(ih, q.TimeTrackingHandle, &iso, &sub, &res, pk);
        iso_failed += !usbts_extend_frame_number(ih, q.TimeTrackingHandle, (ULONG)i & 0x7FF, NULL, 2047, 0, &full);
    }
    CHECK_EQ(allocations - before, 0);
    CHECK_EQ(iso_failed, 0);
    /* The counter counts: opening a device does allocate. */
    before = allocations;
    HANDLE d2 = usbts_open("sim:clock=virtual");
    CHECK(allocations > before);
    CHECK(usbts_close(d2));

    USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION p = {s.TimeTrackingHandle};
    CHECK(WinUsb_StopTrackingForTimeSync(ih, &p));
    CHECK(WinUsb_Free(ih));
    CHECK(usbts_close(d));
    return test_finish();
#endif
}
