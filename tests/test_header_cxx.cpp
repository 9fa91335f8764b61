// SPDX-License-Identifier: MIT
// test_header_cxx.cpp — the public headers compile as C++, the structures have
// Windows' byte-packed layouts, Windows-style brace initialisation works, and
// members bind to pointers and references as in code ported from Windows.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "testutil.h"
#include "usbtimesync/usbtimesync.h"

typedef USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION QPC_INFO;

static_assert(std::is_same<ULONG, std::uint32_t>::value, "ULONG is 32-bit, as on Windows");
static_assert(sizeof(USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION) == 9, "start: byte-packed, 9 bytes");
static_assert(offsetof(USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION, TimeTrackingHandle) == 0, "start layout");
static_assert(offsetof(USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION, IsStartupDelayTolerable) == 8, "start layout");
static_assert(sizeof(USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION) == 8, "stop: 8 bytes");
static_assert(offsetof(USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION, TimeTrackingHandle) == 0, "stop layout");
static_assert(sizeof(QPC_INFO) == 60, "frame number and QPC: byte-packed, 60 bytes");
static_assert(offsetof(QPC_INFO, TimeTrackingHandle) == 0, "qpc layout");
static_assert(offsetof(QPC_INFO, InputFrameNumber) == 8, "qpc layout");
static_assert(offsetof(QPC_INFO, InputMicroFrameNumber) == 12, "qpc layout");
static_assert(offsetof(QPC_INFO, QueryPerformanceCounterAtInputFrameOrMicroFrame) == 16, "qpc layout");
static_assert(offsetof(QPC_INFO, QueryPerformanceCounterFrequency) == 24, "qpc layout");
static_assert(offsetof(QPC_INFO, PredictedAccuracyInMicroSeconds) == 32, "qpc layout");
static_assert(offsetof(QPC_INFO, CurrentGenerationID) == 36, "qpc layout");
static_assert(offsetof(QPC_INFO, CurrentQueryPerformanceCounter) == 40, "qpc layout");
static_assert(offsetof(QPC_INFO, CurrentHardwareFrameNumber) == 48, "qpc layout");
static_assert(offsetof(QPC_INFO, CurrentHardwareMicroFrameNumber) == 52, "qpc layout");
static_assert(offsetof(QPC_INFO, CurrentUSBFrameNumber) == 56, "qpc layout");
static_assert(alignof(QPC_INFO) == 1 && alignof(USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION) == 1,
              "byte-packed: any address will do");
static_assert(alignof(LARGE_INTEGER) == 8, "the packing does not leak past the structures");

// A Windows-style helper that takes its output by reference.
static void stamp(LARGE_INTEGER &out)
{
    QueryPerformanceCounter(&out);
}

int main()
{
    HANDLE dev = usbts_open("sim:clock=virtual");
    CHECK(dev != INVALID_HANDLE_VALUE);
    WINUSB_INTERFACE_HANDLE ih = nullptr;
    CHECK(WinUsb_Initialize(dev, &ih) == TRUE);

    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION info{ NULL, TRUE };
    CHECK(WinUsb_StartTrackingForTimeSync(ih, &info) == TRUE);
    CHECK(info.TimeTrackingHandle != NULL);

    alignas(8) QPC_INFO q{};
    q.TimeTrackingHandle = info.TimeTrackingHandle;
    CHECK(WinUsb_GetCurrentFrameNumberAndQpc(ih, &q) == TRUE);
    CHECK(q.QueryPerformanceCounterFrequency.QuadPart == 10000000);
    LARGE_INTEGER li{};
    li.QuadPart = 0x100000002LL;
    CHECK(li.LowPart == 2 && li.HighPart == 1 && li.u.LowPart == 2);

    // Members by reference and by address, as Windows code takes them.
    LARGE_INTEGER t0{}, t1{};
    QueryPerformanceCounter(&t0);
    LARGE_INTEGER &cur = q.CurrentQueryPerformanceCounter;
    stamp(cur);
    LARGE_INTEGER *p = reinterpret_cast<LARGE_INTEGER *>(&q.QueryPerformanceCounterAtInputFrameOrMicroFrame);
    CHECK(QueryPerformanceCounter(p) == TRUE);
    QueryPerformanceCounter(&t1);
    CHECK(t0.QuadPart <= cur.QuadPart && cur.QuadPart <= p->QuadPart && p->QuadPart <= t1.QuadPart);
    ULONG &frame = q.CurrentUSBFrameNumber;
    ULONG f0 = frame;
    CHECK(WinUsb_GetAdjustedFrameNumber(&frame, t0) == TRUE);
    CHECK(q.CurrentUSBFrameNumber - f0 < 60000u);
    CHECK(WinUsb_GetCurrentFrameNumber(ih, &q.InputFrameNumber, &q.CurrentQueryPerformanceCounter) == TRUE);
    const QPC_INFO &cq = q;
    const ULONG &gen = cq.CurrentGenerationID;
    CHECK(gen == q.CurrentGenerationID);

    USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION stop{ info.TimeTrackingHandle };
    CHECK(WinUsb_StopTrackingForTimeSync(ih, &stop) == TRUE);
    CHECK(WinUsb_Free(ih) == TRUE);
    CHECK(usbts_close(dev) == TRUE);
    return test_finish();
}
