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
#include "registry.h"
#include "tracker.h"
#include "unaligned.h"
#include "usbtimesync/usbtimesync.h"

#define QPC_FREQUENCY 10000000 /* ticks per second: 100 ns each */
#define QPC_TICK_NS 100
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
    atomic_store_explicit(&s->tracker, atomic_load(&usbts_dev_slots[di].tracker), memory_order_relaxed);
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
    uint32_t tracker = atomic_load(&usbts_if_slots[ii].tracker);
    char msg[512] = "";
    DWORD err = usbts_tracker_acquire(tracker, info->IsStartupDelayTolerable != FALSE, msg, sizeof msg);
    if (err != ERROR_SUCCESS) {
        if (err == ERROR_DEVICE_NOT_CONNECTED)
            atomic_store(&usbts_dev_slots[di].unplugged, true);
        usbts_registry_unlock();
        return usbts_fail_msg(err, msg);
    }
    struct usbts_tr_slot *s = &usbts_tr_slots[ti];
    atomic_store_explicit(&s->owner, (uint64_t)(uintptr_t)ih, memory_order_relaxed);
    atomic_store_explicit(&s->tracker, tracker, memory_order_relaxed);
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
    const struct usbts_tracker_pub *pub;
    struct usbts_model m;
    int64_t now;
};

/* Validates both handles and reads the model and the clock.  ERROR_SUCCESS or
 * the error to report. */
static inline DWORD query_begin(WINUSB_INTERFACE_HANDLE ih, HANDLE th, struct query *q)
{
    if (!usbts_if_valid(ih, &q->ii) || !usbts_tr_valid(th, ih, &q->ti))
        return ERROR_INVALID_HANDLE;
    uint32_t di = atomic_load_explicit(&usbts_if_slots[q->ii].dev_idx, memory_order_relaxed);
    uint32_t tracker = atomic_load_explicit(&usbts_tr_slots[q->ti].tracker, memory_order_relaxed);
    if (di >= USBTS_MAX_DEVICES || tracker >= USBTS_MAX_TRACKERS)
        return ERROR_INVALID_HANDLE; /* a slot recycled under us; re-validation would fail anyway */
    q->pub = &usbts_tracker_pubs[tracker];
    if (atomic_load_explicit(&usbts_dev_slots[di].unplugged, memory_order_relaxed) ||
        atomic_load_explicit(&q->pub->gone, memory_order_relaxed))
        return ERROR_DEVICE_NOT_CONNECTED;
    usbts_tracker_read_model(q->pub, &q->m);
    q->now = usbts_clock_now(&q->pub->clock);
    return ERROR_SUCCESS;
}

/* True when both handles are still the ones validated: everything read in
 * between belongs to them. */
static inline bool query_still_valid(WINUSB_INTERFACE_HANDLE ih, HANDLE th, const struct query *q)
{
    return atomic_load_explicit(&usbts_tr_slots[q->ti].handle, memory_order_acquire) == (uint64_t)(uintptr_t)th &&
           atomic_load_explicit(&usbts_if_slots[q->ii].handle, memory_order_acquire) == (uint64_t)(uintptr_t)ih;
}

static BOOL query_error(DWORD err)
{
    if (err == ERROR_DEVICE_NOT_CONNECTED)
        return usbts_fail_msg(err, not_connected);
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
        return query_error(err);
    ULONG in_frame = info->InputFrameNumber, in_uf = info->InputMicroFrameNumber;
    if (in_uf > 7) {
        return usbts_fail(ERROR_INVALID_PARAMETER, "InputMicroFrameNumber %u out of range: a frame has microframes 0..7",
                          (unsigned)in_uf);
    }

    int64_t mf_now = usbts_model_mf_at(&q.m, q.now);
    int64_t t_cur = usbts_model_start_ns(&q.m, mf_now);
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
    int64_t bound = usbts_model_bound_ns(&q.m, t_far);
    /* Rounding to a 100 ns tick adds up to 50 ns; report whole µs, at least 1. */
    int64_t acc_us = (int64_t)(((uint64_t)bound + QPC_TICK_NS / 2 + 999) / 1000);
    if (acc_us < 1)
        acc_us = 1;
    if (acc_us > 0xFFFFFFFFll)
        acc_us = 0xFFFFFFFFll;

    if (!query_still_valid(ih, th, &q))
        return query_error(ERROR_INVALID_HANDLE);
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

BOOL usbts_frame_to_ns(WINUSB_INTERFACE_HANDLE ih, HANDLE th, ULONG frame, ULONG microframe, USBTS_FRAME_TIME *out)
{
    if (!ih || !out)
        return usbts_fail(ERROR_INVALID_HANDLE, "InterfaceHandle or Out is NULL");
    struct query q;
    DWORD err = query_begin(ih, th, &q);
    if (err != ERROR_SUCCESS)
        return query_error(err);
    if (microframe > 7)
        return usbts_fail(ERROR_INVALID_PARAMETER, "MicroFrameNumber %u out of range: a frame has microframes 0..7",
                          (unsigned)microframe);
    int64_t mf = nearest_mf(usbts_model_mf_at(&q.m, q.now), frame, microframe);
    int64_t t = usbts_model_start_ns(&q.m, mf);
    int64_t bound = usbts_model_bound_ns(&q.m, t);
    if (!query_still_valid(ih, th, &q))
        return query_error(ERROR_INVALID_HANDLE);
    out->UsbFrameNumber = (ULONG)(mf >> 3);
    out->MicroFrameNumber = (ULONG)(mf & 7);
    out->StartNs = t;
    out->OffsetNs = 0;
    out->BoundNs = bound < 1 ? 1 : bound;
    out->GenerationId = q.m.generation;
    return TRUE;
}

BOOL usbts_ns_to_frame(WINUSB_INTERFACE_HANDLE ih, HANDLE th, LONGLONG ns, USBTS_FRAME_TIME *out)
{
    if (!ih || !out)
        return usbts_fail(ERROR_INVALID_HANDLE, "InterfaceHandle or Out is NULL");
    struct query q;
    DWORD err = query_begin(ih, th, &q);
    if (err != ERROR_SUCCESS)
        return query_error(err);
    /* A 32-bit frame number names an instant only within 2^31 frames of now;
     * farther off the answer would mean nothing (and its arithmetic would
     * overflow). */
    __int128 dist = (__int128)ns - q.now;
    if (dist > NS_TO_FRAME_RANGE || dist < -NS_TO_FRAME_RANGE)
        return usbts_fail(ERROR_INVALID_PARAMETER,
                          "Ns lies more than 2^31 ms (24.8 days) from now: no 32-bit frame number names it");
    int64_t mf = usbts_model_mf_at(&q.m, ns);
    int64_t t = usbts_model_start_ns(&q.m, mf);
    int64_t bound = usbts_model_bound_ns(&q.m, ns);
    if (!query_still_valid(ih, th, &q))
        return query_error(ERROR_INVALID_HANDLE);
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
    uint32_t tracker = atomic_load(&usbts_if_slots[ii].tracker);
    int64_t mf, t;
    char msg[512] = "";
    DWORD err = usbts_tracker_read_now(tracker, &mf, &t, msg, sizeof msg);
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
