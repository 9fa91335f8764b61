/*
 * test_stress.c — threads racing Initialize, Start, Query, Stop and Free on
 * shared handles of real-clock simulated controllers while unplug, reset and
 * halt are injected.  Every failure must carry a documented error code; after
 * the last close no library thread is left (and, in the sanitized build,
 * LeakSanitizer checks that no memory is held).
 */
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "testutil.h"
#include "usbtimesync/usbtimesync.h"

#define NDEV 3
#define NIF 4
#define NTR 8

static HANDLE devs[NDEV];
static _Atomic(WINUSB_INTERFACE_HANDLE) ifs[NIF];
static _Atomic(HANDLE) trs[NTR];
static atomic_bool done;
static atomic_long ops, fails, undocumented, faults, bad_values;

static unsigned long long xs(unsigned long long *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void note(BOOL ok)
{
    atomic_fetch_add(&ops, 1);
    if (ok)
        return;
    atomic_fetch_add(&fails, 1);
    switch (GetLastError()) {
    case ERROR_INVALID_HANDLE:
    case ERROR_INVALID_PARAMETER:
    case ERROR_DEVICE_NOT_CONNECTED:
    case ERROR_TIMEOUT:
    case ERROR_NOT_ENOUGH_MEMORY:
        break;
    default:
        atomic_fetch_add(&undocumented, 1);
    }
}

static void *worker(void *arg)
{
    unsigned long long s = (unsigned long long)(uintptr_t)arg * 0x9E3779B97F4A7C15ull + 1;
    while (!atomic_load(&done)) {
        unsigned op = (unsigned)(xs(&s) % 100);
        WINUSB_INTERFACE_HANDLE ih = atomic_load(&ifs[xs(&s) % NIF]);
        if (op < 5) {
            WINUSB_INTERFACE_HANDLE n;
            BOOL ok = WinUsb_Initialize(devs[xs(&s) % NDEV], &n);
            note(ok);
            if (ok) {
                WINUSB_INTERFACE_HANDLE old = atomic_exchange(&ifs[xs(&s) % NIF], n);
                note(WinUsb_Free(old)); /* may be stale already: INVALID_HANDLE is fine */
            }
        } else if (op < 15) {
            USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION st = {NULL, (BOOLEAN)(xs(&s) & 1)};
            BOOL ok = WinUsb_StartTrackingForTimeSync(ih, &st);
            note(ok);
            if (ok)
                atomic_store(&trs[xs(&s) % NTR], st.TimeTrackingHandle);
        } else if (op < 25) {
            USB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION sp = {atomic_load(&trs[xs(&s) % NTR])};
            note(WinUsb_StopTrackingForTimeSync(ih, &sp));
        } else if (op < 27) {
            note(WinUsb_Free(ih));
        } else {
            USB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION q;
            memset(&q, 0, sizeof q);
            q.TimeTrackingHandle = atomic_load(&trs[xs(&s) % NTR]);
            q.InputFrameNumber = (ULONG)xs(&s);
            q.InputMicroFrameNumber = (ULONG)(xs(&s) % 9); /* 8: INVALID_PARAMETER */
            BOOL ok = WinUsb_GetCurrentFrameNumberAndQpc(ih, &q);
            note(ok);
            if (ok && (q.CurrentHardwareFrameNumber != (q.CurrentUSBFrameNumber & 0x7FF) ||
                       q.CurrentHardwareMicroFrameNumber > 7 || q.PredictedAccuracyInMicroSeconds == 0 ||
                       q.QueryPerformanceCounterFrequency.QuadPart != 10000000))
                atomic_fetch_add(&bad_values, 1);
        }
    }
    return NULL;
}

static void *injector(void *arg)
{
    (void)arg;
    static const char *events[] = {"reset", "halt_ms=30", "reset", "halt_ms=5"};
    struct timespec ts = {0, 40000000};
    for (int i = 0; !atomic_load(&done); i++) {
        nanosleep(&ts, NULL);
        if (usbts_sim_inject(devs[i % 2], events[i % 4]))
            atomic_fetch_add(&faults, 1);
        if (i == 30 && usbts_sim_inject(devs[2], "unplug")) /* the third device goes away for good */
            atomic_fetch_add(&faults, 1);
    }
    return NULL;
}

/* Library threads left: the sampler names itself usbts-sampler. */
static int sampler_threads(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], name[32] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (f) {
            if (fgets(name, sizeof name, f))
                n += strncmp(name, "usbts-sampler", 13) == 0;
            fclose(f);
        }
    }
    if (d)
        closedir(d);
    return n;
}

int main(void)
{
    for (int i = 0; i < NDEV; i++) {
        char spec[64];
        snprintf(spec, sizeof spec, "sim:seed=%d,drift_ppm=%d", i + 1, 100 * i - 100);
        devs[i] = usbts_open(spec);
        CHECK(devs[i] != INVALID_HANDLE_VALUE);
    }
    for (int i = 0; i < NIF; i++) {
        WINUSB_INTERFACE_HANDLE ih;
        CHECK(WinUsb_Initialize(devs[i % NDEV], &ih));
        atomic_store(&ifs[i], ih);
    }
    /* One tracking handle the workers never see, so a sampler surely runs. */
    WINUSB_INTERFACE_HANDLE own;
    USB_START_TRACKING_FOR_TIME_SYNC_INFORMATION own_st = {NULL, TRUE};
    CHECK(WinUsb_Initialize(devs[0], &own) && WinUsb_StartTrackingForTimeSync(own, &own_st));
    pthread_t w[4], inj;
    for (int i = 0; i < 4; i++)
        pthread_create(&w[i], NULL, worker, (void *)(uintptr_t)(i + 1));
    pthread_create(&inj, NULL, injector, NULL);
    struct timespec run = {2, 500000000};
    nanosleep(&run, NULL);
    int samplers_running = sampler_threads();
    atomic_store(&done, true);
    for (int i = 0; i < 4; i++)
        pthread_join(w[i], NULL);
    pthread_join(inj, NULL);

    for (int i = 0; i < NIF; i++)
        WinUsb_Free(atomic_load(&ifs[i])); /* some are stale: that is fine */
    CHECK(WinUsb_Free(own));
    for (int i = 0; i < NDEV; i++)
        CHECK(usbts_close(devs[i]));
    printf("stress: %ld operations, %ld failed (all with documented codes: %s), %ld faults injected\n",
           atomic_load(&ops), atomic_load(&fails), atomic_load(&undocumented) ? "no" : "yes", atomic_load(&faults));
    CHECK_EQ(atomic_load(&undocumented), 0);
    CHECK_EQ(atomic_load(&bad_values), 0);
    CHECK(atomic_load(&ops) > 1000);
    CHECK(atomic_load(&faults) > 10);
    /* Every tracker is gone with its device: no sampler thread is left. */
    CHECK_MSG(samplers_running >= 1, "no sampler thread seen while tracking (%d)", samplers_running);
    CHECK_EQ(sampler_threads(), 0);
    return test_finish();
}
