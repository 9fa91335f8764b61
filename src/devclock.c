/* SPDX-License-Identifier: MIT */
/*
 * devclock.c — device-clock synchronisation through SOF frame numbers: the
 * public face of devclock_fit.c.  usbts_devclock_add turns a (device time,
 * frame) pair into (device time, host time) with one query of the frame
 * model; everything else is the pure fit.
 *
 * A USBTS_DEVCLOCK belongs to its caller: it is not locked, so one thread at
 * a time uses it (the queries it makes are thread-safe as always).
 */
#include <stdlib.h>
#include <string.h>

#include "devclock_fit.h"
#include "iso_rule.h"
#include "lasterror.h"
#include "snapshot.h"
#include "usbtimesync/usbtimesync.h"

#define DEFAULT_WINDOW 256
/* An 11-bit SOF number is read as the frame at most this far back from the
 * model's current frame (or one ahead: at a boundary the model may not have
 * moved on yet). */
#define LATCH_BACK_FRAMES 2046
#define LATCH_AHEAD_FRAMES 1

struct USBTS_DEVCLOCK {
    struct usbts_dcfit fit;
};

USBTS_DEVCLOCK *usbts_devclock_create(double hz, ULONG bits, ULONG window)
{
    if (window == 0)
        window = DEFAULT_WINDOW;
    if (!(hz > 0) || hz > 1e12 || bits < 8 || bits > 64 || window < 8 || window > 4096) {
        usbts_fail(ERROR_INVALID_PARAMETER,
                   "usbts_devclock_create: DeviceHz %g (use a rate in (0, 1e12]), DeviceBits %u (8..64), Window %u "
                   "(8..4096, 0 for 256)",
                   hz, (unsigned)bits, (unsigned)window);
        return NULL;
    }
    USBTS_DEVCLOCK *c = calloc(1, sizeof *c);
    if (!c || !usbts_dcfit_init(&c->fit, hz, bits, window)) {
        free(c);
        usbts_fail(ERROR_NOT_ENOUGH_MEMORY, "no memory for a device clock of %u pairs", (unsigned)window);
        return NULL;
    }
    return c;
}

void usbts_devclock_destroy(USBTS_DEVCLOCK *c)
{
    if (!c)
        return;
    usbts_dcfit_free(&c->fit);
    free(c);
}

static void fill_status(const struct usbts_dcfit *f, bool restarted, USBTS_DEVCLOCK_STATUS *st)
{
    memset(st, 0, sizeof *st);
    st->Generation = f->generation;
    st->FrameGeneration = f->frame_generation;
    st->Restarted = restarted;
    st->Rejected = f->ready && f->last_rejected;
    st->Ready = f->ready;
    st->Pairs = f->ready ? f->inliers : f->count;
    if (f->ready) {
        st->OffsetNs = usbts_dcfit_offset_ns(f);
        st->RatePpm = usbts_dcfit_rate_ppm(f);
        st->ResidualNs = (LONGLONG)(f->sigma + 0.5);
        LONGLONG h;
        usbts_dcfit_map(f, f->last_raw, &h, &st->BoundNs);
    }
}

BOOL usbts_devclock_add_host(USBTS_DEVCLOCK *c, ULONGLONG dev, LONGLONG host_ns, LONGLONG bound_ns,
                             ULONG frame_generation, USBTS_DEVCLOCK_STATUS *st)
{
    if (!c)
        return usbts_fail(ERROR_INVALID_PARAMETER, "Clock is NULL (usbts_devclock_create makes one)");
    if (bound_ns < 0)
        return usbts_fail(ERROR_INVALID_PARAMETER, "HostBoundNs %lld is negative", (long long)bound_ns);
    if (c->fit.bits < 64 && (dev >> c->fit.bits) != 0)
        return usbts_fail(ERROR_INVALID_PARAMETER, "DeviceTime 0x%llx has more than the clock's %u bits",
                          (unsigned long long)dev, c->fit.bits);
    bool restarted;
    usbts_dcfit_add(&c->fit, dev, host_ns, bound_ns, frame_generation, &restarted);
    if (st)
        fill_status(&c->fit, restarted, st);
    return TRUE;
}

BOOL usbts_devclock_add(USBTS_DEVCLOCK *c, WINUSB_INTERFACE_HANDLE ih, HANDLE th, ULONGLONG dev, ULONG frame,
                        ULONG frame_bits, ULONG microframe, USBTS_DEVCLOCK_STATUS *st)
{
    if (!ih || !th)
        return usbts_fail(ERROR_INVALID_HANDLE, "InterfaceHandle or TimeTrackingHandle is NULL");
    if (!c)
        return usbts_fail(ERROR_INVALID_PARAMETER, "Clock is NULL (usbts_devclock_create makes one)");
    if (frame_bits != 11 && frame_bits != 32)
        return usbts_fail(ERROR_INVALID_PARAMETER, "FrameBits %u: use 11 (a SOF number) or 32 (a USB frame number)",
                          (unsigned)frame_bits);
    if (frame_bits == 11 && frame > 0x7FF)
        return usbts_fail(ERROR_INVALID_PARAMETER, "Frame %u is not an 11-bit SOF number", (unsigned)frame);
    if (microframe > 7)
        return usbts_fail(ERROR_INVALID_PARAMETER, "MicroFrame %u out of range: a frame has microframes 0..7",
                          (unsigned)microframe);
    struct usbts_snapshot s;
    DWORD err = usbts_snapshot_take(ih, th, &s);
    if (err != ERROR_SUCCESS)
        return usbts_snapshot_fail(err);
    int64_t mf_now = usbts_model_mf_at(&s.m, s.now);
    uint32_t cur = (uint32_t)(uint64_t)(mf_now >> 3), full = frame;
    if (frame_bits == 11 &&
        usbts_frame_extend(frame, cur, LATCH_BACK_FRAMES, LATCH_AHEAD_FRAMES, &full) != USBTS_EXTEND_ONE)
        full = cur; /* unreachable: a 2048-frame window holds exactly one */
    int64_t mf = (mf_now & ~(int64_t)7) + (int64_t)(int32_t)(full - cur) * 8 + microframe;
    int64_t host = usbts_model_start_ns(&s.m, mf);
    int64_t bound = usbts_snapshot_bound(&s, host);
    if (!usbts_snapshot_still_valid(ih, th, &s))
        return usbts_snapshot_fail(ERROR_INVALID_HANDLE);
    return usbts_devclock_add_host(c, dev, host, bound, s.m.generation, st);
}

BOOL usbts_devclock_to_host(const USBTS_DEVCLOCK *c, ULONGLONG dev, LONGLONG *host_ns, LONGLONG *bound_ns)
{
    if (!c || !host_ns || !bound_ns)
        return usbts_fail(ERROR_INVALID_PARAMETER, "usbts_devclock_to_host needs a Clock, HostNs and BoundNs");
    int64_t h, b;
    if (!usbts_dcfit_map(&c->fit, dev, &h, &b))
        return usbts_fail(ERROR_GEN_FAILURE, "the device clock's fit is not ready: it needs 4 pairs in generation %u "
                                             "(has %u)",
                          (unsigned)c->fit.generation, (unsigned)c->fit.count);
    *host_ns = h;
    *bound_ns = b;
    return TRUE;
}

BOOL usbts_devclock_status(const USBTS_DEVCLOCK *c, USBTS_DEVCLOCK_STATUS *st)
{
    if (!c || !st)
        return usbts_fail(ERROR_INVALID_PARAMETER, "usbts_devclock_status needs a Clock and a Status");
    fill_status(&c->fit, false, st);
    return TRUE;
}
