/* SPDX-License-Identifier: MIT */
/*
 * test_concurrency.c — threads racing Query, Stop and Free on shared handles,
 * while the sampler thread publishes models.  Every call must succeed or fail
 * with ERROR_INVALID_HANDLE, and a successful query must be self-consistent;
 * run under ASan and TSan it also shows that nothing touches freed memory.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "testutil.h"
#include "usbtimesync/usbtimesync.h"

#define NT 6

static HANDLE dev;
static _Atomic(WINUSB_INTERFACE_HANDLE) iface;
static _Atomic(HANDLE) trk[NT];
static atomic_bool done;
static atomic_int bad_result, ok_queries, failed_queries, ok_stops, ok_frees;

static unsigned long long xs(unsigned long long *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void *querier(void *arg)
{
    unsigned long long seed = (unsigned long long)(uintptr_t)arg * 2654435761u + 1;
    while (!atomic_load(&done)) {
        USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;
        memset(&q, 0, sizeof q);
        q.TimeTrackingHandle = atomic_load(&trk[xs(&seed) % NT]);
        q.InputFrameNumber = (ULONG)xs(&seed);
        q.InputMicroFrameNumber = (ULONG)(xs(&seed) % 8);
        if (WinUsb_GetCurrentFrameNumberAndQpc(atomic_load(&iface), &q)) {
            atomic_fetch_add(&ok_queries, 1);
            if (q.QueryPerformanceCounterFrequency.QuadPart != 10000000 ||
                q.CurrentHardwareFrameNumber != (q.CurrentUSBFrameNumber & 0x7FF) ||
                q.CurrentHardwareMicroFrameNumber > 7 || q.CurrentGenerationID == 0 ||
                q.PredictedAccuracyInMicroSeconds == 0)
                atomic_fetch_add(&bad_result, 1);
        } else {
            atomic_fetch_add(&failed_queries, 1);
            if (GetLastError() != ERROR_INVALID_HANDLE)
                atomic_fetch_add(&bad_result, 1);
        }
    }
    return NULL;
}

static void *stopper(void *arg)
{
    unsigned long long seed = (unsigned long long)(uintptr_t)arg + 99;
    struct timespec ts = {0, 200000};
    while (!atomic_load(&done)) {
        USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION s = {atomic_load(&trk[xs(&seed) % NT])};
        if (WinUsb_StopTrackingForTimeSync(atomic_load(&iface), &s))
            atomic_fetch_add(&ok_stops, 1);
        else if (GetLastError() != ERROR_INVALID_HANDLE)
            atomic_fetch_add(&bad_result, 1);
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void *freer(void *arg)
{
    (void)arg;
    struct timespec ts = {0, 3000000};
    nanosleep(&ts, NULL);
    if (WinUsb_Free(atomic_load(&iface)))
        atomic_fetch_add(&ok_frees, 1);
    else if (GetLastError() != ERROR_INVALID_HANDLE)
        atomic_fetch_add(&bad_result, 1);
    return NULL;
}

int main(void)
{
    dev = usbts_open("sim:seed=5,drift_ppm=100");
    CHECK(dev != INVALID_HANDLE_VALUE);
    /* Which calls meet live handles and which dead ones depends on how the
     * threads are scheduled: on a loaded machine a round can pass before a
     * querier runs at all.  So after the 20 rounds, rounds go on until queries
     * have both succeeded and failed, up to MAX_ROUNDS in all. */
    enum { MIN_ROUNDS = 20, MAX_ROUNDS = 500 };
    int rounds = 0;
    for (int round = 0; round < MAX_ROUNDS; round++) {
        if (round >= MIN_ROUNDS && atomic_load(&ok_queries) > 0 && atomic_load(&failed_queries) > 0)
            break;
        rounds = round + 1;
        WINUSB_INTERFACE_HANDLE ih;
        CHECK(WinUsb_Initialize(dev, &ih));
        atomic_store(&iface, ih);
        for (int i = 0; i < NT; i++) {
            USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION s = {NULL, (BOOLEAN)(i & 1)};
            CHECK(WinUsb_StartTrackingForTimeSync(ih, &s));
            atomic_store(&trk[i], s.TimeTrackingHandle);
        }
        atomic_store(&done, false);
        pthread_t th[4];
        pthread_create(&th[0], NULL, querier, (void *)(uintptr_t)(round * 4 + 1));
        pthread_create(&th[1], NULL, querier, (void *)(uintptr_t)(round * 4 + 2));
        pthread_create(&th[2], NULL, stopper, (void *)(uintptr_t)round);
        pthread_create(&th[3], NULL, freer, NULL);
        struct timespec ts = {0, 8000000};
        nanosleep(&ts, NULL);
        atomic_store(&done, true);
        for (int i = 0; i < 4; i++)
            pthread_join(th[i], NULL);
        /* Everything on the interface is dead now. */
        CHECK_EQ(ok_frees, round + 1);
        USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;
        memset(&q, 0, sizeof q);
        q.TimeTrackingHandle = atomic_load(&trk[0]);
        CHECK(!WinUsb_GetCurrentFrameNumberAndQpc(ih, &q) && GetLastError() == ERROR_INVALID_HANDLE);
    }
    printf("%d rounds: queries ok %d, failed %d; stops %d; frees %d\n", rounds, atomic_load(&ok_queries),
           atomic_load(&failed_queries), atomic_load(&ok_stops), atomic_load(&ok_frees));
    CHECK_EQ(bad_result, 0);
    CHECK(ok_queries > 0);
    CHECK(failed_queries > 0);
    CHECK(usbts_close(dev));
    return test_finish();
}
