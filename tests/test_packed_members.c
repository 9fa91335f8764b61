/* SPDX-License-Identifier: MIT */
/*
 * test_packed_members.c — the byte-packed WinUSB structures used the way
 * Windows code uses them: members' addresses passed to the API
 * (QueryPerformanceCounter(&q.CurrentQueryPerformanceCounter),
 * WinUsb_GetAdjustedFrameNumber(&q.CurrentUSBFrameNumber, ...)), and whole
 * structures at odd addresses inside a byte buffer, as when they are read from
 * a file or a socket shared with Windows.  Built with -Werror and
 * -Waddress-of-packed-member (and compiled with clang by the ctest
 * clang_test_packed_members); under ASan+UBSan every misaligned store the library made
 * would be reported.
 */
#include <stdalign.h>
#include <string.h>

#include "testutil.h"
#include "usbtimesync/usbtimesync.h"

typedef USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION QPC_INFO;

/* The members the library answers, compared field by field. */
static int same_answer(const QPC_INFO *a, const QPC_INFO *b)
{
    return a->QueryPerformanceCounterAtInputFrameOrMicroFrame.QuadPart ==
               b->QueryPerformanceCounterAtInputFrameOrMicroFrame.QuadPart &&
           a->QueryPerformanceCounterFrequency.QuadPart == b->QueryPerformanceCounterFrequency.QuadPart &&
           a->PredictedAccuracyInMicroSeconds == b->PredictedAccuracyInMicroSeconds &&
           a->CurrentGenerationID == b->CurrentGenerationID &&
           a->CurrentQueryPerformanceCounter.QuadPart == b->CurrentQueryPerformanceCounter.QuadPart &&
           a->CurrentHardwareFrameNumber == b->CurrentHardwareFrameNumber &&
           a->CurrentHardwareMicroFrameNumber == b->CurrentHardwareMicroFrameNumber &&
           a->CurrentUSBFrameNumber == b->CurrentUSBFrameNumber;
}

/* An aligned structure, members passed by address as Windows code does. */
static void member_addresses(WINUSB_INTERFACE_HANDLE ih, HANDLE th)
{
    alignas(8) QPC_INFO q;
    memset(&q, 0, sizeof q);
    q.TimeTrackingHandle = th;
    CHECK_SUCCEEDS(WinUsb_GetCurrentFrameNumberAndQpc(ih, &q));

    LARGE_INTEGER t0, t1;
    CHECK_SUCCEEDS(QueryPerformanceCounter(&t0));
    LARGE_INTEGER *p = (LARGE_INTEGER *)&q.CurrentQueryPerformanceCounter;
    CHECK_SUCCEEDS(QueryPerformanceCounter(p));
    CHECK_SUCCEEDS(QueryPerformanceCounter(&t1));
    CHECK_MSG(t0.QuadPart <= p->QuadPart && p->QuadPart <= t1.QuadPart,
              "QueryPerformanceCounter(&q.CurrentQueryPerformanceCounter) = %lld, between %lld and %lld",
              (long long)p->QuadPart, (long long)t0.QuadPart, (long long)t1.QuadPart);
    CHECK_SUCCEEDS(QueryPerformanceFrequency(&q.QueryPerformanceCounterFrequency));
    CHECK_EQ(q.QueryPerformanceCounterFrequency.QuadPart, 10000000);

    PULONG frame = &q.CurrentUSBFrameNumber;
    ULONG f0 = *frame;
    CHECK_SUCCEEDS(WinUsb_GetAdjustedFrameNumber(frame, t0));
    CHECK_MSG(q.CurrentUSBFrameNumber - f0 < 60000u, "adjusted frame %u from %u: the milliseconds since t0",
              (unsigned)q.CurrentUSBFrameNumber, (unsigned)f0);
    CHECK_SUCCEEDS(WinUsb_GetCurrentFrameNumber(ih, &q.InputFrameNumber, &q.QueryPerformanceCounterAtInputFrameOrMicroFrame));
    CHECK(q.QueryPerformanceCounterAtInputFrameOrMicroFrame.QuadPart > 0);
}

/* Structures at every misalignment inside a byte buffer: the library reads its
 * inputs and writes every output, including through members' addresses. */
static void odd_addresses(HANDLE dev, WINUSB_INTERFACE_HANDLE ih)
{
    for (size_t off = 0; off < 8; off++) {
        alignas(8) unsigned char buf[3 * sizeof(QPC_INFO) + 16];
        memset(buf, 0xA5, sizeof buf);
        USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION *start =
            (USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION *)(buf + off);
        start->TimeTrackingHandle = NULL;
        start->IsStartupDelayTolerable = FALSE;
        CHECK_SUCCEEDS(WinUsb_StartTrackingForTimeSync(ih, start));
        HANDLE th = start->TimeTrackingHandle;
        CHECK_MSG(th != NULL && buf[off + 9] == 0xA5, "offset %zu: a handle, and nothing written past 9 bytes", off);

        QPC_INFO *q = (QPC_INFO *)(buf + off + 16);
        memset(q, 0, sizeof *q);
        q->TimeTrackingHandle = th;
        q->InputFrameNumber = 1000;
        q->InputMicroFrameNumber = 3;
        CHECK_SUCCEEDS(WinUsb_GetCurrentFrameNumberAndQpc(ih, q));
        CHECK_MSG(buf[off + 16 + 60] == 0xA5, "offset %zu: nothing written past 60 bytes", off);
        /* The same question in an aligned structure gets the same answer (the
         * virtual clock does not move between the two). */
        QPC_INFO aligned;
        memset(&aligned, 0, sizeof aligned);
        aligned.TimeTrackingHandle = th;
        aligned.InputFrameNumber = 1000;
        aligned.InputMicroFrameNumber = 3;
        CHECK_SUCCEEDS(WinUsb_GetCurrentFrameNumberAndQpc(ih, &aligned));
        CHECK_MSG(same_answer(q, &aligned), "offset %zu: the misaligned answer equals the aligned one", off);

        LONGLONG truth_ns = 0;
        CHECK_SUCCEEDS(usbts_sim_truth(dev, 1000, 3, &q->QueryPerformanceCounterAtInputFrameOrMicroFrame.QuadPart));
        CHECK_SUCCEEDS(usbts_sim_truth(dev, 1000, 3, &truth_ns));
        CHECK_EQ(q->QueryPerformanceCounterAtInputFrameOrMicroFrame.QuadPart, truth_ns);
        CHECK_SUCCEEDS(usbts_now_ns(dev, &q->CurrentQueryPerformanceCounter.QuadPart));
        CHECK(q->CurrentQueryPerformanceCounter.QuadPart > 0);
        CHECK_SUCCEEDS(usbts_sim_read(dev, &q->QueryPerformanceCounterFrequency.QuadPart, &q->CurrentUSBFrameNumber,
                                      &q->CurrentQueryPerformanceCounter.QuadPart));
        CHECK(q->CurrentQueryPerformanceCounter.QuadPart >= q->QueryPerformanceCounterFrequency.QuadPart);

        CHECK_SUCCEEDS(QueryPerformanceCounter(&q->CurrentQueryPerformanceCounter));
        CHECK_SUCCEEDS(QueryPerformanceFrequency(&q->QueryPerformanceCounterFrequency));
        CHECK_EQ(q->QueryPerformanceCounterFrequency.QuadPart, 10000000);
        LARGE_INTEGER stamp = q->CurrentQueryPerformanceCounter;
        q->CurrentUSBFrameNumber = 77;
        CHECK_SUCCEEDS(WinUsb_GetAdjustedFrameNumber(&q->CurrentUSBFrameNumber, stamp));
        CHECK(q->CurrentUSBFrameNumber >= 77 && q->CurrentUSBFrameNumber < 77 + 60000);
        CHECK_SUCCEEDS(WinUsb_GetCurrentFrameNumber(ih, &q->CurrentUSBFrameNumber, &q->CurrentQueryPerformanceCounter));

        q->PredictedAccuracyInMicroSeconds = 1; /* a BufferLength inside the structure */
        UCHAR speed = 0;
        CHECK_SUCCEEDS(WinUsb_QueryDeviceInformation(ih, DEVICE_SPEED, &q->PredictedAccuracyInMicroSeconds, &speed));
        CHECK(speed == HighSpeed && q->PredictedAccuracyInMicroSeconds == 1);
        q->CurrentGenerationID = 0; /* too short: the needed length comes back */
        CHECK_FAILS_WITH(WinUsb_QueryDeviceInformation(ih, DEVICE_SPEED, &q->CurrentGenerationID, &speed),
                         ERROR_INSUFFICIENT_BUFFER);
        CHECK_EQ(q->CurrentGenerationID, 1);

        USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION *stop =
            (USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION *)(buf + off + 16 + 61);
        stop->TimeTrackingHandle = th;
        CHECK_SUCCEEDS(WinUsb_StopTrackingForTimeSync(ih, stop));
        CHECK_FAILS_WITH(WinUsb_StopTrackingForTimeSync(ih, stop), ERROR_INVALID_HANDLE);
    }
}

int main(void)
{
    HANDLE dev = usbts_open("sim:clock=virtual,seed=9");
    CHECK(dev != INVALID_HANDLE_VALUE);
    WINUSB_INTERFACE_HANDLE ih = NULL;
    CHECK_SUCCEEDS(WinUsb_Initialize(dev, &ih));
    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION start = {NULL, FALSE};
    CHECK_SUCCEEDS(WinUsb_StartTrackingForTimeSync(ih, &start));
    CHECK_SUCCEEDS(usbts_sim_advance(dev, 300000000ull));

    member_addresses(ih, start.TimeTrackingHandle);
    odd_addresses(dev, ih);

    USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION stop = {start.TimeTrackingHandle};
    CHECK_SUCCEEDS(WinUsb_StopTrackingForTimeSync(ih, &stop));
    CHECK_SUCCEEDS(WinUsb_Free(ih));
    CHECK_SUCCEEDS(usbts_close(dev));
    return test_finish();
}
