/* SPDX-License-Identifier: MIT */
/*
 * winusb.c — the WinUSB time-sync API: argument checks, last error, handles.
 *
 * The query calls (WinUsb_GetCurrentFrameNumberAndQpc, usbts_frame_to_ns,
 * usbts_ns_to_frame) take no lock, make no syscall beyond one vDSO clock read,
 * allocate nothing and write no shared memory: they validate handles against
 * their slots, read the tracker's model through its seqlock, evaluate it, and
 * re-validate, so a racing Stop or Free makes them fail with
 * ERROR_INVALID_HANDLE rather than return values for a dead handle.
 */
#include <stdio.h>
#include <string.h>

#include "lasterror.h"
#include "model.h"
#include "page.h"
#include "query.h"
#include "registry.h"
#include "tracker.h"
#include "unaligned.h"
#include "usbtimesync/usbtimesync.h"

#define QPC_FREQUENCY 10000000 /* ticks per second: 100 ns each */
#define QPC_TICK_NS 100
#define ERROR_INVALID_DATA_PAGE 0xFFFF0001u /* internal: reported as ERROR_GEN_FAILURE */
#define ERROR_DAEMON_STALE 0xFFFF0002u      /* internal: reported as ERROR_GEN_FAILURE */
#define NS_TO_FRAME_RANGE ((int64_t)1000000 << 31) /* 2^31 frames, in ns */

/* floor(a / b) for b > 0 */
static inline int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

/* The QPC tick nearest a host-clock instant.  Host times are positive in
 * practice, where an unsigned division by a constant is a multiply-shift. */
static inline LONGLONG ns_to_qpc(int64_t ns)
{
    if (ns >= -QPC_TICK_NS / 2)
        return (LONGLONG)((uint64_t)(ns + QPC_TICK_NS / 2) / QPC_TICK_NS);
    return floor_div(ns + QPC_TICK_NS / 2, QPC_TICK_NS);
}

static const char bad_interface[] =
    "InterfaceHandle is not a live WinUSB interface handle (NULL, freed, or never returned by WinUsb_Initialize)";
static const char bad_tracking[] =
    "TimeTrackingHandle is not live on this interface (stopped, started on another interface, or never returned by "
    "WinUsb_StartTrackingForTimeSync)";
static const char not_connected[] =
    "the device is no longer connected (unplugged, deauthorized, or its controller unbound); open it again";

/* ---- interfaces ------------------------------------------------------------ */

/* Takes the registry lock and finds a live interface, and with `connected`
 * also requires its device to be there.  On failure the lock is released and
 * the last error set. */
static bool lock_interface(WINUSB_INTERFACE_HANDLE ih, bool connected, uint32_t *ii, uint32_t *di)
{
    usbts_registry_lock();
    if (!usbts_if_valid(ih, ii)) {
        usbts_registry_unlock();
        usbts_fail(ERROR_INVALID_HANDLE, bad_interface);
        return false;
    }
    *di = atomic_load(&usbts_if_slots[*ii].dev_idx);
    if (connected && !usbts_dev_connected_locked(*di)) {
        usbts_registry_unlock();
        usbts_fail(ERROR_DEVICE_NOT_CONNECTED, not_connected);
        return false;
    }
    return true;
}


BOOL WinUsb_Initialize(HANDLE device, PWINUSB_INTERFACE_HANDLE out)
{
    uint32_t di;
    if (!out)
        return usbts_fail(ERROR_INVALID_PARAMETER, "WinUsb_Initialize needs somewhere to write: InterfaceHandle is NULL");
    usbts_registry_lock();
    if (!usbts_dev_valid(device, &di)) {
        usbts_registry_unlock();
        return usbts_fail(ERROR_INVALID_HANDLE, "DeviceHandle is not an open device: get one from usbts_open()");
    }
    if (!usbts_dev_connected_locked(di)) {
        usbts_registry_unlock();
        return usbts_fail(ERROR_DEVICE_NOT_CONNECTED, not_connected);
    }
    int ii = usbts_if_slot_free();
    if (ii < 0) {
        usbts_registry_unlock();
        return usbts_fail(ERROR_NOT_ENOUGH_MEMORY, "too many interfaces open at once (at most %d); WinUsb_Free some",
                          USBTS_MAX_INTERFACES);
    }
    struct usbts_if_slot *s = &usbts_if_slots[ii];
    atomic_store_explicit(&s->dev_idx, di, memory_order_relaxed);
    uint64_t hv = usbts_handle_new(USBTS_HK_INTERFACE, (uint32_t)ii);
    atomic_store_explicit(&s->handle, hv, memory_order_release);
    usbts_registry_unlock();
    *out = (WINUSB_INTERFACE_HANDLE)(uintptr_t)hv;
    return TRUE;
}

BOOL WinUsb_Free(WINUSB_INTERFACE_HANDLE ih)
{
    uint32_t ii, di;
    if (!lock_interface(ih, false, &ii, &di))
        return FALSE;
    usbts_if_free_locked(ii);
    usbts_registry_unlock();
    return TRUE;
}

BOOL WinUsb_QueryDeviceInformation(WINUSB_INTERFACE_HANDLE ih, ULONG type, PULONG len, PVOID buffer)
{
    uint32_t ii;
    uint32_t di;
    if (!lock_interface(ih, true, &ii, &di))
        return FALSE;
    if (type != DEVICE_SPEED) {
        usbts_registry_unlock();
        return usbts_fail(ERROR_INVALID_PARAMETER, "InformationType %u is not supported: only DEVICE_SPEED (1)",
                          (unsigned)type);
    }
    if (!len || !buffer) {
        usbts_registry_unlock();
        return usbts_fail(ERROR_INVALID_PARAMETER, "BufferLength and Buffer must not be NULL");
    }
    if (usbts_load_u32(len) < 1) {
        usbts_registry_unlock();
        usbts_store_u32(len, 1);
        return usbts_fail(ERROR_INSUFFICIENT_BUFFER, "DEVICE_SPEED needs a buffer of 1 byte");
    }
    struct usbts_device *d = usbts_dev_slots[di].dev;
    UCHAR speed = d->info.Speed;
    if (d->real_open) {
        uint8_t s;
        if (usbts_backend_speed(&d->real, &s) == ERROR_SUCCESS)
            speed = s;
    }
    usbts_registry_unlock();
    *(UCHAR *)buffer = speed;
    usbts_store_u32(len, 1);
    return TRUE;
}

/* ---- tracking ----------------------------------------------------------------- */

BOOL WinUsb_StartTrackingForTimeSync(WINUSB_INTERFACE_HANDLE ih, PUSB_START_TRACKING_FOR_TIME_SYNC_INFORMATION info)
{
    uint32_t ii;
    if (!ih || !info)
        return usbts_fail(ERROR_INVALID_HANDLE, "InterfaceHandle or StartTrackingInfo is NULL");
    if (info->TimeTrackingHandle != NULL && info->TimeTrackingHandle != INVALID_HANDLE_VALUE)
        return usbts_fail(ERROR_INVALID_PARAMETER,
                          "StartTrackingInfo->TimeTrackingHandle must be NULL or INVALID_HANDLE_VALUE on input");
    uint32_t di;
    if (!lock_interface(ih, true, &ii, &di))
        return FALSE;
    int ti = usbts_tr_slot_free();
    if (ti < 0) {
        usbts_registry_unlock();
        return usbts_fail(ERROR_NOT_ENOUGH_MEMORY, "too many tracking handles open at once (at most %d)",
                          USBTS_MAX_TRACKING);
    }
    char msg[1024] = "";
    DWORD err = usbts_dev_acquire_locked(di, info->IsStartupDelayTolerable != FALSE, msg, sizeof msg);
    if (err != ERROR_SUCCESS) {
        if (err == ERROR_DEVICE_NOT_CONNECTED)
            atomic_store(&usbts_dev_slots[di].unplugged, true);
        usbts_registry_unlock();
        return usbts_fail_msg(err, msg);
    }
    struct usbts_tr_slot *s = &usbts_tr_slots[ti];
    atomic_store_explicit(&s->owner, (uint64_t)(uintptr_t)ih, memory_order_relaxed);
    atomic_store_explicit(&s->dev_idx, di, memory_order_relaxed);
    atomic_store_explicit(&s->page, atomic_load(&usbts_dev_slots[di].page), memory_order_relaxed);
    atomic_store_explicit(&s->page_dev, atomic_load(&usbts_dev_slots[di].page_dev), memory_order_relaxed);
    uint64_t hv = usbts_handle_new(USBTS_HK_TRACKING, (uint32_t)ti);
    atomic_store_explicit(&s->handle, hv, memory_order_release);
    usbts_registry_unlock();
    info->TimeTrackingHandle = (HANDLE)(uintptr_t)hv;
    return TRUE;
}

BOOL WinUsb_StopTrackingForTimeSync(WINUSB_INTERFACE_HANDLE ih, PUSB_STOP_TRACKING_FOR_TIME_SYNC_INFORMATION info)
{
    uint32_t ii, ti;
    if (!ih || !info)
        return usbts_fail(ERROR_INVALID_HANDLE, "InterfaceHandle or StopTrackingInfo is NULL");
    uint32_t di;
    if (!lock_interface(ih, false, &ii, &di))
        return FALSE;
    if (!usbts_tr_valid(info->TimeTrackingHandle, ih, &ti)) {
        usbts_registry_unlock();
        return usbts_fail(ERROR_INVALID_HANDLE, bad_tracking);
    }
    usbts_tr_free_locked(ti);
    usbts_registry_unlock();
    return TRUE;
}

/* ---- the lock-free query path --------------------------------------------------- */

struct query {
    uint32_t ii, ti;
    struct usbts_model m;
    int64_t now;
};

/* Validates both handles and reads the model and the clock.  ERROR_SUCCESS or
 * the error to report. */
static inline __attribute__((always_inline)) DWORD query_begin(WINUSB_INTERFACE_HANDLE ih, HANDLE th,
                                                               struct query *q)
{
    if (!usbts_if_valid(ih, &q->ii) || !usbts_tr_valid(th, ih, &q->ti))
        return ERROR_INVALID_HANDLE;
    uint32_t di = atomic_load_explicit(&usbts_if_slots[q->ii].dev_idx, memory_order_relaxed);
    const struct usbts_page *page = atomic_load_explicit(&usbts_tr_slots[q->ti].page, memory_order_relaxed);
    uint32_t page_dev = atomic_load_explicit(&usbts_tr_slots[q->ti].page_dev, memory_order_relaxed);
    if (di >= USBTS_MAX_DEVICES || !page)
        return ERROR_INVALID_HANDLE; /* a slot recycled under us; re-validation would fail anyway */
    if (atomic_load_explicit(&usbts_dev_slots[di].unplugged, memory_order_relaxed))
        return ERROR_DEVICE_NOT_CONNECTED;
    /* The one seam: an in-process page or the daemon's, read the same way. */
    switch (usbts_page_read(page, page_dev, &q->m, &q->now)) {
    case USBTS_PAGE_OK:
        break;
    case USBTS_PAGE_AGED:
        usbts_dev_revive(); /* the daemon may be back, or may not know this process (fork) */
        break;
    case USBTS_PAGE_GONE:
        return ERROR_DEVICE_NOT_CONNECTED;
    case USBTS_PAGE_STALE:
        usbts_dev_revive();
        return ERROR_DAEMON_STALE;
    case USBTS_PAGE_NOMODEL:
    default:
        usbts_dev_revive();
        return ERROR_INVALID_DATA_PAGE;
    }
    if (usbts_model_dead(&q->m, q->now))
        return ERROR_GEN_FAILURE; /* the writer has been silent too long to answer (model.h) */
    return ERROR_SUCCESS;
}

/* True when both handles are still the ones validated: everything read in
 * between belongs to them. */
static inline bool query_still_valid(WINUSB_INTERFACE_HANDLE ih, HANDLE th, const struct query *q)
{
    return atomic_load_explicit(&usbts_tr_slots[q->ti].handle, memory_order_acquire) == (uint64_t)(uintptr_t)th &&
           atomic_load_explicit(&usbts_if_slots[q->ii].handle, memory_order_acquire) == (uint64_t)(uintptr_t)ih;
}

static BOOL query_error(DWORD err, const struct query *q)
{
    if (err == ERROR_DEVICE_NOT_CONNECTED)
        return usbts_fail_msg(err, not_connected);
    if (err == ERROR_GEN_FAILURE)
        return usbts_fail(err,
                          "the frame-clock model was last updated %.1f s ago (more than %d s): its sampler is not "
                          "running (starved of CPU, or the process or daemon that tracks the controller is stuck); "
                          "no answer is honest until it reads the controller again",
                          (double)(q->now - q->m.heartbeat_ns) / 1e9, (int)(USBTS_MODEL_DEAD_NS / 1000000000));
    if (err == ERROR_DAEMON_STALE)
        return usbts_fail_msg(ERROR_GEN_FAILURE,
                              "the daemon usbtimesyncd has not updated this controller's model for over 2 s (stopped "
                              "or killed?): its bound can no longer be trusted; restart it (systemctl restart "
                              "usbtimesyncd)");
    if (err == ERROR_INVALID_DATA_PAGE)
        return usbts_fail_msg(ERROR_GEN_FAILURE, "the daemon usbtimesyncd's page holds no usable model (it died "
                                                 "inside an update, or has not sampled yet); restart it");
    return usbts_fail_msg(ERROR_INVALID_HANDLE, "InterfaceHandle or TimeTrackingHandle is not live (stopped, freed, "
                                                "or from another interface)");
}

/* The extended microframe count of (frame, microframe), reading the 32-bit
 * frame number as the one nearest the current frame. */
static inline int64_t nearest_mf(int64_t mf_now, ULONG frame, ULONG microframe)
{
    int32_t dframes = (int32_t)(frame - (ULONG)(mf_now >> 3));
    return (mf_now & ~(int64_t)7) + (int64_t)dframes * 8 + (int64_t)microframe;
}

BOOL WinUsb_GetCurrentFrameNumberAndQpc(WINUSB_INTERFACE_HANDLE ih,
                                        PUSB_FRAME_NUMBER_AND_QPC_FOR_TIME_SYNC_INFORMATION info)
{
    if (!ih || !info)
        return usbts_fail(ERROR_INVALID_HANDLE, "InterfaceHandle or FrameQpcInfo is NULL");
    HANDLE th = info->TimeTrackingHandle;
    struct query q;
    DWORD err = query_begin(ih, th, &q);
    if (err != ERROR_SUCCESS)
        return query_error(err, &q);
    ULONG in_frame = info->InputFrameNumber, in_uf = info->InputMicroFrameNumber;
    if (in_uf > 7) {
        return usbts_fail(ERROR_INVALID_PARAMETER, "InputMicroFrameNumber %u out of range: a frame has microframes 0..7",
                          (unsigned)in_uf);
    }

    int64_t t_cur;
    int64_t mf_now = usbts_model_locate(&q.m, q.now, &t_cur);
    /* The bound grows with distance from the model's reference, so the value
     * farther from it has the larger one: evaluate it once, there. */
    int64_t t_far = t_cur;
    LONGLONG qpc_in = 0;
    if (in_frame != 0 || in_uf != 0) {
        int64_t t_in = usbts_model_start_ns(&q.m, nearest_mf(mf_now, in_frame, in_uf));
        if ((t_in > q.m.ref_ns ? t_in - q.m.ref_ns : q.m.ref_ns - t_in) >
            (t_cur > q.m.ref_ns ? t_cur - q.m.ref_ns : q.m.ref_ns - t_cur))
            t_far = t_in;
        qpc_in = ns_to_qpc(t_in);
    }
    int64_t bound = usbts_model_bound_ns(&q.m, t_far, q.now);
    /* Rounding to a 100 ns tick adds up to 50 ns; report whole µs, at least 1. */
    int64_t acc_us = (int64_t)(((uint64_t)bound + QPC_TICK_NS / 2 + 999) / 1000);
    if (acc_us < 1)
        acc_us = 1;
    if (acc_us > 0xFFFFFFFFll)
        acc_us = 0xFFFFFFFFll;

    if (!query_still_valid(ih, th, &q))
        return query_error(ERROR_INVALID_HANDLE, &q);
    uint32_t usb_frame = (uint32_t)(mf_now >> 3);
    info->QueryPerformanceCounterAtInputFrameOrMicroFrame.QuadPart = qpc_in;
    info->QueryPerformanceCounterFrequency.QuadPart = QPC_FREQUENCY;
    info->PredictedAccuracyInMicroSeconds = (ULONG)acc_us;
    info->CurrentGenerationID = q.m.generation;
    info->CurrentQueryPerformanceCounter.QuadPart = ns_to_qpc(t_cur);
    info->CurrentUSBFrameNumber = usb_frame;
    info->CurrentHardwareFrameNumber = usb_frame & 0x7FF;
    info->CurrentHardwareMicroFrameNumber = (ULONG)(mf_now & 7);
    return TRUE;
}

BOOL usbts_query_frames(WINUSB_INTERFACE_HANDLE ih, HANDLE th, size_t n, const ULONG *frames, const ULONG *microframes,
                        const struct usbts_clock_shift *shift, int64_t *start_ns, int64_t *bound_ns, int64_t *mf_out,
                        uint32_t *generation)
{
    struct query q;
    DWORD err = query_begin(ih, th, &q);
    if (err != ERROR_SUCCESS)
        return query_error(err, &q);
    for (size_t i = 0; microframes && i < n; i++)
        if (microframes[i] > 7)
            return n == 1 ? usbts_fail(ERROR_INVALID_PARAMETER,
                                       "MicroFrameNumber %u out of range: a frame has microframes 0..7",
                                       (unsigned)microframes[i])
                          : usbts_fail(ERROR_INVALID_PARAMETER,
                                       "MicroFrameNumbers[%zu] = %u out of range: a frame has microframes 0..7", i,
                                       (unsigned)microframes[i]);
    int64_t mf_now = usbts_model_mf_at(&q.m, q.now);
    int64_t add = shift ? shift->offset_ns : 0, widen = shift ? shift->uncertainty_ns : 0;
    /* Every element is evaluated in the one model snapshot read above: one
     * generation for the whole array. */
    for (size_t i = 0; i < n; i++) {
        int64_t mf = nearest_mf(mf_now, frames[i], microframes ? microframes[i] : 0);
        int64_t t = usbts_model_start_ns(&q.m, mf);
        int64_t bound = usbts_model_bound_ns(&q.m, t, q.now);
        start_ns[i] = t + add;
        if (bound_ns)
            bound_ns[i] = (bound < 1 ? 1 : bound) + widen;
        if (mf_out)
            mf_out[i] = mf;
    }
    if (!query_still_valid(ih, th, &q))
        return query_error(ERROR_INVALID_HANDLE, &q);
    *generation = q.m.generation;
    return TRUE;
}

BOOL usbts_query_frame_time(WINUSB_INTERFACE_HANDLE ih, HANDLE th, ULONG frame, ULONG microframe,
                            const struct usbts_clock_shift *shift, USBTS_FRAME_TIME *out)
{
    int64_t t, bound, mf;
    uint32_t gen;
    if (!usbts_query_frames(ih, th, 1, &frame, &microframe, shift, &t, &bound, &mf, &gen))
        return FALSE;
    out->UsbFrameNumber = (ULONG)(mf >> 3);
    out->MicroFrameNumber = (ULONG)(mf & 7);
    out->StartNs = t;
    out->OffsetNs = 0;
    out->BoundNs = bound;
    out->GenerationId = gen;
    return TRUE;
}

BOOL usbts_frame_to_ns(WINUSB_INTERFACE_HANDLE ih, HANDLE th, ULONG frame, ULONG microframe, USBTS_FRAME_TIME *out)
{
    if (!ih || !out)
        return usbts_fail(ERROR_INVALID_HANDLE, "InterfaceHandle or Out is NULL");
    return usbts_query_frame_time(ih, th, frame, microframe, NULL, out);
}

BOOL usbts_ns_to_frame(WINUSB_INTERFACE_HANDLE ih, HANDLE th, LONGLONG ns, USBTS_FRAME_TIME *out)
{
    if (!ih || !out)
        return usbts_fail(ERROR_INVALID_HANDLE, "InterfaceHandle or Out is NULL");
    struct query q;
    DWORD err = query_begin(ih, th, &q);
    if (err != ERROR_SUCCESS)
        return query_error(err, &q);
    /* A 32-bit frame number names an instant only within 2^31 frames of now;
     * farther off the answer would mean nothing (and its arithmetic would
     * overflow). */
    __int128 dist = (__int128)ns - q.now;
    if (dist > NS_TO_FRAME_RANGE || dist < -NS_TO_FRAME_RANGE)
        return usbts_fail(ERROR_INVALID_PARAMETER,
                          "Ns lies more than 2^31 ms (24.8 days) from now: no 32-bit frame number names it");
    int64_t t;
    int64_t mf = usbts_model_locate(&q.m, ns, &t);
    int64_t bound = usbts_model_bound_ns(&q.m, ns, q.now);
    if (!query_still_valid(ih, th, &q))
        return query_error(ERROR_INVALID_HANDLE, &q);
    out->UsbFrameNumber = (ULONG)(mf >> 3);
    out->MicroFrameNumber = (ULONG)(mf & 7);
    out->StartNs = t;
    out->OffsetNs = ns - t;
    out->BoundNs = bound < 1 ? 1 : bound;
    out->GenerationId = q.m.generation;
    return TRUE;
}

/* ---- frame numbers without a tracking handle --------------------------------- */

BOOL WinUsb_GetCurrentFrameNumber(WINUSB_INTERFACE_HANDLE ih, PULONG frame, LARGE_INTEGER *timestamp)
{
    uint32_t ii;
    if (!frame || !timestamp)
        return usbts_fail(ERROR_INVALID_PARAMETER, "CurrentFrameNumber and TimeStamp must not be NULL");
    uint32_t di;
    if (!lock_interface(ih, true, &ii, &di))
        return FALSE;
    int64_t mf, t;
    char msg[512] = "";
    DWORD err = usbts_dev_read_now_locked(di, &mf, &t, msg, sizeof msg);
    usbts_registry_unlock();
    if (err != ERROR_SUCCESS)
        return usbts_fail_msg(err, msg);
    usbts_store_u32(frame, (uint32_t)(mf >> 3));
    usbts_store_i64(timestamp, ns_to_qpc(t));
    return TRUE;
}

BOOL WinUsb_GetAdjustedFrameNumber(PULONG frame, LARGE_INTEGER timestamp)
{
    if (!frame)
        return usbts_fail(ERROR_INVALID_PARAMETER, "CurrentFrameNumber must not be NULL");
    LARGE_INTEGER now;
    QueryPerformanceCounter(&now);
    LONGLONG elapsed_ms = (now.QuadPart - timestamp.QuadPart) / (QPC_FREQUENCY / 1000);
    if (elapsed_ms < 0)
        return usbts_fail(ERROR_INVALID_PARAMETER, "TimeStamp lies in the future of QueryPerformanceCounter");
    usbts_store_u32(frame, usbts_load_u32(frame) + (uint32_t)elapsed_ms);
    return TRUE;
}

/* ---- the host clock ------------------------------------------------------------ */

BOOL QueryPerformanceCounter(LARGE_INTEGER *count)
{
    if (!count)
        return usbts_fail(ERROR_INVALID_PARAMETER, "lpPerformanceCount is NULL");
    usbts_store_i64(count, usbts_monotonic_ns() / QPC_TICK_NS);
    return TRUE;
}

BOOL QueryPerformanceFrequency(LARGE_INTEGER *freq)
{
    if (!freq)
        return usbts_fail(ERROR_INVALID_PARAMETER, "lpFrequency is NULL");
    usbts_store_i64(freq, QPC_FREQUENCY);
    return TRUE;
}
