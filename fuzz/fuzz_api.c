/*
 * fuzz_api.c — random call sequences over a pool of valid, stale, foreign and
 * garbage handles on virtual-clock simulated controllers, with injected
 * events.  After every call: FALSE carries a documented error code, TRUE
 * results are self-consistent.  Everything is closed at the end of each
 * input, so LeakSanitizer sees any leak.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "usbtimesync/usbtimesync.h"

#define POOL 8

struct in {
    const uint8_t *p;
    size_t n;
};

static unsigned byte(struct in *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}

static uint32_t u32(struct in *in)
{
    return byte(in) | byte(in) << 8 | byte(in) << 16 | (uint32_t)byte(in) << 24;
}

static void expect(BOOL ok)
{
    if (ok)
        return;
    switch (GetLastError()) {
    case ERROR_INVALID_HANDLE:
    case ERROR_INVALID_PARAMETER:
    case ERROR_DEVICE_NOT_CONNECTED:
    case ERROR_TIMEOUT:
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_NOT_SUPPORTED:
    case ERROR_INSUFFICIENT_BUFFER:
        return;
    default:
        abort();
    }
}

/* A handle from the pools, a stale one, or garbage from the input. */
static HANDLE pick(struct in *in, HANDLE *pool, HANDLE *stale)
{
    unsigned b = byte(in);
    switch (b % 4) {
    case 0:
    case 1:
        return pool[(b >> 2) % POOL];
    case 2:
        return stale[(b >> 2) % POOL];
    default:
        return (HANDLE)(uintptr_t)((uint64_t)u32(in) << 32 | u32(in));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct in in = {data, size};
    HANDLE dev[POOL] = {0}, itf[POOL] = {0}, trk[POOL] = {0};
    HANDLE stale_dev[POOL] = {0}, stale_itf[POOL] = {0}, stale_trk[POOL] = {0};
    static const char *events[] = {"reset", "halt_ms=3", "halt_ms=15", "stall_ms=40", "unplug", "bogus", "halt_ms=0",
                                   "stall_ms=x"};
    int steps = 0;
    while (in.n && steps++ < 64) {
        unsigned op = byte(&in) % 14, k = byte(&in) % POOL;
        switch (op) {
        case 0: {
            char spec[96];
            snprintf(spec, sizeof spec, "sim:clock=virtual,seed=%u,drift_ppm=%d,preempt_prob=0.0%u", byte(&in),
                     (int)(byte(&in) % 201) - 100, byte(&in) % 10);
            HANDLE h = usbts_open(spec);
            if (h == INVALID_HANDLE_VALUE) {
                expect(FALSE);
            } else {
                if (dev[k]) {
                    expect(usbts_close(dev[k]));
                    stale_dev[k] = dev[k];
                }
                dev[k] = h;
            }
            break;
        }
        case 1:
            expect(usbts_close(pick(&in, dev, stale_dev)));
            break;
        case 2: {
            WINUSB_INTERFACE_HANDLE ih;
            if (WinUsb_Initialize(pick(&in, dev, stale_dev), &ih)) {
                if (itf[k])
                    stale_itf[k] = itf[k];
                itf[k] = ih;
            } else {
                expect(FALSE);
            }
            break;
        }
        case 3:
            expect(WinUsb_Free(pick(&in, itf, stale_itf)));
            break;
        case 4: {
            USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION s = {byte(&in) < 16 ? pick(&in, trk, stale_trk) : NULL,
                                                             (BOOLEAN)(byte(&in) & 1)};
            if (WinUsb_StartTrackingForTimeSync(pick(&in, itf, stale_itf), &s)) {
                if (!s.TimeTrackingHandle || s.TimeTrackingHandle == INVALID_HANDLE_VALUE)
                    abort();
                trk[k] = s.TimeTrackingHandle;
            } else {
                expect(FALSE);
            }
            break;
        }
        case 5: {
            USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION s = {pick(&in, trk, stale_trk)};
            BOOL ok = WinUsb_StopTrackingForTimeSync(pick(&in, itf, stale_itf), &s);
            expect(ok);
            if (ok)
                stale_trk[k] = s.TimeTrackingHandle;
            break;
        }
        case 6: {
            USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;
            memset(&q, 0, sizeof q);
            q.TimeTrackingHandle = pick(&in, trk, stale_trk);
            q.InputFrameNumber = u32(&in);
            q.InputMicroFrameNumber = byte(&in) % 10;
            BOOL ok = WinUsb_GetCurrentFrameNumberAndQpc(pick(&in, itf, stale_itf), &q);
            expect(ok);
            if (ok && (q.QueryPerformanceCounterFrequency.QuadPart != 10000000 || q.CurrentGenerationID == 0 ||
                       q.CurrentHardwareFrameNumber != (q.CurrentUSBFrameNumber & 0x7FF) ||
                       q.CurrentHardwareMicroFrameNumber > 7 || q.PredictedAccuracyInMicroSeconds == 0))
                abort();
            break;
        }
        case 7: {
            USBTS_FRAME_TIME ft;
            BOOL ok = (byte(&in) & 1) ? usbts_frame_to_ns(pick(&in, itf, stale_itf), pick(&in, trk, stale_trk),
                                                          u32(&in), byte(&in) % 9, &ft)
                                      : usbts_ns_to_frame(pick(&in, itf, stale_itf), pick(&in, trk, stale_trk),
                                                          (LONGLONG)u32(&in) << 8, &ft);
            expect(ok);
            if (ok && (ft.MicroFrameNumber > 7 || ft.BoundNs < 1))
                abort();
            break;
        }
        case 8:
            expect(usbts_sim_advance(pick(&in, dev, stale_dev), (ULONGLONG)(u32(&in) % 50000000)));
            break;
        case 9:
            expect(usbts_sim_inject(pick(&in, dev, stale_dev), events[byte(&in) % 8]));
            break;
        case 10: {
            LONGLONG b, a, t;
            ULONG mf;
            BOOL ok = usbts_sim_read(pick(&in, dev, stale_dev), &b, &mf, &a);
            expect(ok);
            if (ok && (a < b || mf > 0x3FFF))
                abort();
            expect(usbts_sim_truth(pick(&in, dev, stale_dev), u32(&in), byte(&in) % 9, &t));
            break;
        }
        case 11: {
            ULONG f;
            LARGE_INTEGER ts;
            expect(WinUsb_GetCurrentFrameNumber(pick(&in, itf, stale_itf), &f, &ts));
            break;
        }
        case 12: {
            UCHAR speed[2];
            ULONG len = byte(&in) % 3;
            expect(WinUsb_QueryDeviceInformation(pick(&in, itf, stale_itf), byte(&in) % 3, &len, speed));
            break;
        }
        default: {
            USBTS_DEVICE_INFO di;
            LONGLONG now;
            expect(usbts_get_device_info(pick(&in, dev, stale_dev), &di));
            expect(usbts_now_ns(pick(&in, dev, stale_dev), &now));
            break;
        }
        }
    }
    for (int i = 0; i < POOL; i++)
        if (dev[i])
            usbts_close(dev[i]); /* frees its interfaces and tracking; may be closed already */
    return 0;
}
