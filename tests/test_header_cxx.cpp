// SPDX-License-Identifier: MIT
// test_header_cxx.cpp — the public headers compile as C++ and Windows-style
// brace initialisation works, as in code ported from Windows.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "testutil.h"
#include "usbtimesync/usbtimesync.h"

static_assert(std::is_same<ULONG, std::uint32_t>::value, "ULONG is 32-bit, as on Windows");
static_assert(sizeof(USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION) == 64, "Windows x64 layout");

int main()
{
    HANDLE dev = usbts_open("sim:clock=virtual");
    CHECK(dev != INVALID_HANDLE_VALUE);
    WINUSB_INTERFACE_HANDLE ih = nullptr;
    CHECK(WinUsb_Initialize(dev, &ih) == TRUE);

    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION info{ NULL, TRUE };
    CHECK(WinUsb_StartTrackingForTimeSync(ih, &info) == TRUE);
    CHECK(info.TimeTrackingHandle != NULL);

    USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q{};
    q.TimeTrackingHandle = info.TimeTrackingHandle;
    CHECK(WinUsb_GetCurrentFrameNumberAndQpc(ih, &q) == TRUE);
    CHECK(q.QueryPerformanceCounterFrequency.QuadPart == 10000000);
    LARGE_INTEGER li{};
    li.QuadPart = 0x100000002LL;
    CHECK(li.LowPart == 2 && li.HighPart == 1 && li.u.LowPart == 2);

    USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION stop{ info.TimeTrackingHandle };
    CHECK(WinUsb_StopTrackingForTimeSync(ih, &stop) == TRUE);
    CHECK(WinUsb_Free(ih) == TRUE);
    CHECK(usbts_close(dev) == TRUE);
    return test_finish();
}
