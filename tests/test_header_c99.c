/* SPDX-License-Identifier: MIT */
/* test_header_c99.c — the public headers compile as C99 (built with
 * -std=c99), and the types have their Windows sizes and layouts. */
#include <stddef.h>

#include "testutil.h"
#include "usbtimesync/usbtimesync.h"

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
    CHECK_EQ(sizeof(USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION), 16);
    CHECK_EQ(offsetof(USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION, IsStartupDelayTolerable), 8);
    CHECK_EQ(sizeof(USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION), 8);
    CHECK_EQ(sizeof(USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION), 64);
    CHECK_EQ(offsetof(USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION, QueryPerformanceCounterFrequency), 24);
    CHECK_EQ(offsetof(USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION, CurrentUSBFrameNumber), 56);
    CHECK_EQ(ERROR_INVALID_HANDLE, 6);
    CHECK_EQ(ERROR_DEVICE_NOT_CONNECTED, 1167);
    CHECK_EQ(ERROR_TIMEOUT, 1460);
    CHECK_EQ(HighSpeed, 3);
    LARGE_INTEGER li;
    li.QuadPart = -1;
    CHECK(li.HighPart == -1 && li.LowPart == 0xFFFFFFFFu);
    return test_finish();
}
