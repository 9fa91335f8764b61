/* SPDX-License-Identifier: MIT */
/* test_header_c99.c — the public headers compile as C99 (built with
 * -std=c99), and the types have their Windows sizes and layouts: the three
 * time-sync structures byte-packed as Windows' winusb.h packs them (SPEC §3). */
#include <stddef.h>

#include "testutil.h"
#include "usbtimesync/usbtimesync.h"

/* Compile-time too, in the C99 spelling (no _Static_assert in C99). */
#define STATIC_CHECK(c, name) typedef char static_check_##name[(c) ? 1 : -1]
STATIC_CHECK(sizeof(USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION) == 9, start_size);
STATIC_CHECK(offsetof(USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION, IsStartupDelayTolerable) == 8, start_flag);
STATIC_CHECK(sizeof(USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION) == 8, stop_size);
STATIC_CHECK(sizeof(USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION) == 60, qpc_size);
STATIC_CHECK(offsetof(USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION, CurrentQueryPerformanceCounter) == 40,
             qpc_current);
STATIC_CHECK(offsetof(USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION, CurrentUSBFrameNumber) == 56, qpc_usb);

#define QPC USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION

/* Two of a structure in an array: packed means no padding between them. */
struct two_qpc {
    QPC a[2];
};

int main(void)
{
    CHECK_EQ(sizeof(ULONG), 4);
    CHECK_EQ(sizeof(DWORD), 4);
    CHECK_EQ(sizeof(LONG), 4);
    CHECK_EQ(sizeof(BOOL), 4);
    CHECK_EQ(sizeof(BOOLEAN), 1);
    CHECK_EQ(sizeof(USHORT), 2);
    CHECK_EQ(sizeof(LONGLONG), 8);
    CHECK_EQ(sizeof(LARGE_INTEGER), 8);
    CHECK_EQ(sizeof(HANDLE), sizeof(void *));
    CHECK(INVALID_HANDLE_VALUE == (HANDLE)(intptr_t)-1);

    /* SPEC §3's table, every field. */
    CHECK_EQ(sizeof(USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION), 9);
    CHECK_EQ(offsetof(USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION, TimeTrackingHandle), 0);
    CHECK_EQ(offsetof(USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION, IsStartupDelayTolerable), 8);
    CHECK_EQ(sizeof(USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION), 8);
    CHECK_EQ(offsetof(USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION, TimeTrackingHandle), 0);
    CHECK_EQ(sizeof(QPC), 60);
    CHECK_EQ(offsetof(QPC, TimeTrackingHandle), 0);
    CHECK_EQ(offsetof(QPC, InputFrameNumber), 8);
    CHECK_EQ(offsetof(QPC, InputMicroFrameNumber), 12);
    CHECK_EQ(offsetof(QPC, QueryPerformanceCounterAtInputFrameOrMicroFrame), 16);
    CHECK_EQ(offsetof(QPC, QueryPerformanceCounterFrequency), 24);
    CHECK_EQ(offsetof(QPC, PredictedAccuracyInMicroSeconds), 32);
    CHECK_EQ(offsetof(QPC, CurrentGenerationID), 36);
    CHECK_EQ(offsetof(QPC, CurrentQueryPerformanceCounter), 40);
    CHECK_EQ(offsetof(QPC, CurrentHardwareFrameNumber), 48);
    CHECK_EQ(offsetof(QPC, CurrentHardwareMicroFrameNumber), 52);
    CHECK_EQ(offsetof(QPC, CurrentUSBFrameNumber), 56);
    CHECK_EQ(sizeof(struct two_qpc), 120);
    CHECK_EQ(sizeof(USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION[4]), 36);
    /* The packing stops at the structures: the header's pragma is balanced. */
    struct after { char c; LARGE_INTEGER li; };
    CHECK_EQ(offsetof(struct after, li), 8);

    CHECK_EQ(ERROR_INVALID_HANDLE, 6);
    CHECK_EQ(ERROR_DEVICE_NOT_CONNECTED, 1167);
    CHECK_EQ(ERROR_TIMEOUT, 1460);
    CHECK_EQ(HighSpeed, 3);
    LARGE_INTEGER li;
    li.QuadPart = -1;
    CHECK(li.HighPart == -1 && li.LowPart == 0xFFFFFFFFu);
    return test_finish();
}
