/* SPDX-License-Identifier: MIT */
/*
 * iso.c — isochronous packet times: which (micro)frame the Linux xHCI driver
 * put each packet of a URB in, and when that frame started on the host clock.
 *
 * The driver picks a URB's start from the MFINDEX value it reads inside the
 * submission (iso_rule.c), or, on a CFC controller whose ring still holds the
 * endpoint's earlier URBs, right after the previous URB.  The application
 * brackets the submission call with host-clock reads; the model turns the
 * bracket into the microframes that could have been on the bus during it,
 * each candidate into a start, and the set of starts into a range.  The
 * bracket is widened by a few model bounds on each side, so the range holds
 * the kernel's choice even when a microframe boundary lies right at an edge.
 *
 * One snapshot of the model per call, whatever the packet count: no lock, no
 * syscall, no allocation, no thread.
 */
#include <string.h>

#include "backend.h"
#include "iso_rule.h"
#include "lasterror.h"
#include "snapshot.h"
#include "usbtimesync/usbtimesync.h"

#define MAX_BRACKET_NS 1000000000LL
#define MAX_PACKETS (1u << 20)
#define NS_RANGE ((int64_t)1000000 << 31)
/* How many model bounds the bracket is widened by on each side: the bound
 * holds 99% of answers, the range is meant to hold all of them. */
#define BOUND_MARGIN 4
/* A reset is noticed within 50 ms (the recovery target); twice that before
 * a confirmation means anything. */
#define CONFIRM_DELAY_NS 100000000LL

BOOL usbts_snapshot_fail(DWORD err)
{
    if (err == ERROR_GEN_FAILURE)
        return usbts_fail(err, "the frame-clock model has not been updated for too long: its sampler is not running "
                               "(starved of CPU, or the process or daemon tracking the controller is stuck)");
    if (err == ERROR_DEVICE_NOT_CONNECTED)
        return usbts_fail(err, "the device is no longer connected (unplugged, deauthorized, or its controller "
                               "unbound); open it again");
    return usbts_fail(ERROR_INVALID_HANDLE, "InterfaceHandle or TimeTrackingHandle is not live (stopped, freed, or "
                                            "from another interface)");
}

static bool endpoint_rule(const USBTS_ISO_ENDPOINT *e, struct usbts_iso_rule *r)
{
    return usbts_iso_rule_init(r, e->Speed, e->Interval, e->Ist, e->Cfc != 0);
}

BOOL usbts_iso_stream_init(USBTS_ISO_STREAM *stream, const USBTS_ISO_ENDPOINT *ep)
{
    if (!stream || !ep)
        return usbts_fail(ERROR_INVALID_PARAMETER, "usbts_iso_stream_init needs a Stream and an Endpoint");
    struct usbts_iso_rule r;
    if (ep->Speed == LowSpeed)
        return usbts_fail(ERROR_INVALID_PARAMETER, "low-speed devices have no isochronous endpoints");
    if (!endpoint_rule(ep, &r))
        return usbts_fail(ERROR_INVALID_PARAMETER,
                          "isochronous endpoint: Speed %u (use FullSpeed or HighSpeed), bInterval %u (1..16), IST "
                          "0x%x (the 4-bit HCSPARAMS2 field, 0..15)",
                          (unsigned)ep->Speed, (unsigned)ep->Interval, (unsigned)ep->Ist);
    memset(stream, 0, sizeof *stream);
    stream->Endpoint = *ep;
    return TRUE;
}

/* A microframe count as the public (frame, microframe) pair. */
static void split_mf(int64_t mf, ULONG *frame, ULONG *uf)
{
    *frame = (ULONG)(uint64_t)(mf >> 3);
    *uf = (ULONG)(mf & 7);
}

/* Where one URB of the submission starts: [lo, hi] and the likeliest. */
struct urb_place {
    int64_t lo, hi, pick;
    bool continued, restarted;
    bool either; /* continued or restarted: the library cannot tell */
};

/*
 * The first URB, or (for a split libusb transfer) the next one, given the
 * stream so far.  m_lo..m_hi: microframes that could have been on the bus
 * while the driver ran; m_mid: the one at the middle of the bracket.
 */
static void place_urb(const struct usbts_iso_rule *r, bool have_prev, int64_t next_lo, int64_t next_hi,
                      int64_t last_packet_lo, bool outstanding, int64_t m_lo, int64_t m_mid, int64_t m_hi,
                      struct urb_place *p)
{
    int64_t f_lo = usbts_iso_rule_asap(r, m_lo), f_hi = usbts_iso_rule_asap(r, m_hi);
    int64_t f_pick = usbts_iso_rule_asap(r, m_mid);
    memset(p, 0, sizeof *p);
    if (!r->cfc || !have_prev || !outstanding) {
        /* No CFC: every URB afresh.  With CFC, a ring with nothing left on it
         * (every earlier URB reaped, so given back) restarts too. */
        p->lo = f_lo, p->hi = f_hi, p->pick = f_pick, p->restarted = true;
        return;
    }
    if (m_hi < last_packet_lo) {
        /* The previous URB's last packet had not even started when the
         * driver looked: its TDs were still on the ring. */
        p->lo = next_lo, p->hi = next_hi, p->pick = next_lo + (next_hi - next_lo) / 2, p->continued = true;
        return;
    }
    /* The previous URB may or may not have been given back by then: either
     * start is possible.  Likelier: still on the ring if the driver looked
     * before the last packet's interval was over. */
    p->either = true;
    p->lo = next_lo < f_lo ? next_lo : f_lo;
    p->hi = next_hi > f_hi ? next_hi : f_hi;
    if (m_mid < last_packet_lo + r->interval_uf) {
        p->pick = next_lo + (next_hi - next_lo) / 2;
        p->continued = true;
    } else {
        p->pick = f_pick;
        p->restarted = true;
    }
}

BOOL usbts_iso_submitted(WINUSB_INTERFACE_HANDLE ih, HANDLE th, USBTS_ISO_STREAM *stream,
                         const USBTS_ISO_SUBMISSION *sub, USBTS_ISO_RESULT *res, USBTS_ISO_PACKET *packets)
{
    if (!ih || !th)
        return usbts_fail(ERROR_INVALID_HANDLE, "InterfaceHandle or TimeTrackingHandle is NULL");
    if (!stream || !sub || !res)
        return usbts_fail(ERROR_INVALID_PARAMETER, "usbts_iso_submitted needs a Stream, a Submission and a Result");
    struct usbts_iso_rule r;
    if (!endpoint_rule(&stream->Endpoint, &r))
        return usbts_fail(ERROR_INVALID_PARAMETER, "the stream was never initialised (usbts_iso_stream_init)");
    if (sub->Packets == 0 || sub->Packets > MAX_PACKETS)
        return usbts_fail(ERROR_INVALID_PARAMETER, "Packets %u: use 1..%u", (unsigned)sub->Packets, MAX_PACKETS);
    if (sub->AfterNs < sub->BeforeNs || sub->AfterNs - sub->BeforeNs > MAX_BRACKET_NS)
        return usbts_fail(ERROR_INVALID_PARAMETER,
                          "the submission bracket [%lld, %lld] ns is %s: take BeforeNs just before the submit call "
                          "and AfterNs just after it",
                          (long long)sub->BeforeNs, (long long)sub->AfterNs,
                          sub->AfterNs < sub->BeforeNs ? "reversed" : "longer than 1 s");

    struct usbts_snapshot s;
    DWORD err = usbts_snapshot_take(ih, th, &s);
    if (err != ERROR_SUCCESS)
        return usbts_snapshot_fail(err);
    __int128 dist = (__int128)sub->BeforeNs - s.now;
    if (dist > NS_RANGE || dist < -NS_RANGE)
        return usbts_fail(ERROR_INVALID_PARAMETER, "BeforeNs lies more than 2^31 ms from now: it is not a time on "
                                                   "this device's host clock (usbts_now_ns)");

    /* The microframes that could have been on the bus inside the bracket. */
    int64_t b_before = usbts_snapshot_bound(&s, sub->BeforeNs), b_after = usbts_snapshot_bound(&s, sub->AfterNs);
    int64_t m_lo = usbts_model_mf_at(&s.m, sub->BeforeNs - BOUND_MARGIN * b_before);
    int64_t m_hi = usbts_model_mf_at(&s.m, sub->AfterNs + BOUND_MARGIN * b_after);
    int64_t m_mid = usbts_model_mf_at(&s.m, sub->BeforeNs + (sub->AfterNs - sub->BeforeNs) / 2);

    /* A stream placed under another generation has numbers that mean
     * nothing now. */
    bool new_gen = stream->GenerationId != 0 && stream->GenerationId != s.m.generation;
    bool have_prev = stream->GenerationId != 0;
    bool outstanding = sub->Outstanding > 0;
    int64_t next_lo = stream->NextEarliest, next_hi = stream->NextLatest, last_lo = stream->LastPacketStart;
    LONGLONG a_before = stream->AnchorBeforeNs, a_after = stream->AnchorAfterNs;
    int64_t a_next = stream->AnchorNextOffset, a_last = stream->AnchorLastOffset;
    bool a_exact = stream->AnchorExact, lost = stream->Lost;
    if (!outstanding)
        lost = false; /* the ring is empty: whatever came before is over */
    if (r.cfc && outstanding && (new_gen || lost)) {
        if (lost || !a_exact) {
            if (!usbts_snapshot_still_valid(ih, th, &s))
                return usbts_snapshot_fail(ERROR_INVALID_HANDLE);
            stream->GenerationId = s.m.generation;
            stream->Lost = TRUE;
            return usbts_fail(ERROR_GEN_FAILURE,
                              "the controller's frame clock changed generation while this CFC stream was running, "
                              "and the stream's course since its start is not certain: its frames cannot be "
                              "inferred until it has run dry (Outstanding 0)");
        }
        /* The chain's start, placed again under the new model: right if it
         * began after the discontinuity, and if it began before, the reset
         * emptied the ring and nothing is outstanding. */
        int64_t ab = usbts_snapshot_bound(&s, a_before), aa = usbts_snapshot_bound(&s, a_after);
        int64_t s_lo = usbts_iso_rule_asap(&r, usbts_model_mf_at(&s.m, a_before - BOUND_MARGIN * ab));
        int64_t s_hi = usbts_iso_rule_asap(&r, usbts_model_mf_at(&s.m, a_after + BOUND_MARGIN * aa));
        next_lo = s_lo + a_next;
        next_hi = s_hi + a_next;
        last_lo = s_lo + a_last;
    } else if (new_gen) {
        have_prev = false;
    }

    ULONG urbs = (sub->Packets + USBTS_ISO_PACKETS_PER_URB - 1) / USBTS_ISO_PACKETS_PER_URB;
    ULONG flags = 0;
    struct urb_place first = {0, 0, 0, false, false, false}, cur;
    for (ULONG u = 0; u < urbs; u++) {
        ULONG n = sub->Packets - u * USBTS_ISO_PACKETS_PER_URB;
        if (n > USBTS_ISO_PACKETS_PER_URB)
            n = USBTS_ISO_PACKETS_PER_URB;
        /* libusb submits a split transfer's URBs back to back inside the
         * bracket: each one after the first has the one before still on the
         * ring (its packets lie in the future). */
        place_urb(&r, have_prev, next_lo, next_hi, last_lo, outstanding, m_lo, m_mid, m_hi, &cur);
        if (u == 0)
            first = cur;
        if (cur.hi != cur.lo)
            flags |= USBTS_ISO_AMBIGUOUS;
        if (packets) {
            /* One bound for the URB, taken at whichever end of it lies farther
             * from the model's reference (the bound grows with that
             * distance): no packet's own bound is larger. */
            int64_t t_first = usbts_model_start_ns(&s.m, cur.pick);
            int64_t t_last = usbts_model_start_ns(&s.m, cur.pick + (int64_t)(n - 1) * r.interval_uf);
            int64_t bf = usbts_snapshot_bound(&s, t_first), bl = usbts_snapshot_bound(&s, t_last);
            int64_t urb_bound = bf > bl ? bf : bl;
            /* Packets an interval apart: each start is the one before plus
             * the interval's product (exact, so equal to start_ns of each). */
            __int128 step_fp = (__int128)r.interval_uf * (__int128)s.m.period_fp;
            __int128 mf_fp = usbts_model_offset_fp(&s.m, cur.pick);
            __int128 lo_fp = usbts_model_offset_fp(&s.m, cur.lo), hi_fp = usbts_model_offset_fp(&s.m, cur.hi);
            for (ULONG i = 0; i < n; i++) {
                USBTS_ISO_PACKET *p = &packets[u * USBTS_ISO_PACKETS_PER_URB + i];
                int64_t step = (int64_t)i * r.interval_uf;
                int64_t mf = cur.pick + step, lo = cur.lo + step, hi = cur.hi + step;
                memset(p, 0, sizeof *p);
                split_mf(mf, &p->UsbFrameNumber, &p->MicroFrameNumber);
                split_mf(lo, &p->EarliestFrame, &p->EarliestMicroFrame);
                split_mf(hi, &p->LatestFrame, &p->LatestMicroFrame);
                p->StartNs = usbts_model_start_at_fp(&s.m, mf_fp);
                p->EarliestNs = usbts_model_start_at_fp(&s.m, lo_fp);
                p->LatestNs = usbts_model_start_at_fp(&s.m, hi_fp);
                p->BoundNs = urb_bound;
                p->Urb = u;
                p->Ambiguous = lo != hi;
                mf_fp += step_fp, lo_fp += step_fp, hi_fp += step_fp;
            }
        }
        int64_t span = (int64_t)n * r.interval_uf;
        if (cur.restarted && !cur.either) {
            /* a fresh start: a new chain from this bracket */
            a_before = sub->BeforeNs, a_after = sub->AfterNs;
            a_next = span, a_last = span - r.interval_uf, a_exact = true;
        } else {
            a_next += span, a_last = a_next - r.interval_uf;
            a_exact = a_exact && !cur.either;
        }
        have_prev = true;
        outstanding = true;
        next_lo = cur.lo + span;
        next_hi = cur.hi + span;
        last_lo = cur.lo + span - r.interval_uf;
    }

    if (!usbts_snapshot_still_valid(ih, th, &s))
        return usbts_snapshot_fail(ERROR_INVALID_HANDLE);
    stream->GenerationId = s.m.generation;
    stream->NextEarliest = next_lo;
    stream->NextLatest = next_hi;
    stream->LastPacketStart = last_lo;
    stream->AnchorBeforeNs = a_before;
    stream->AnchorAfterNs = a_after;
    stream->AnchorNextOffset = a_next;
    stream->AnchorLastOffset = a_last;
    stream->AnchorExact = a_exact;
    stream->Lost = FALSE;

    if (first.continued)
        flags |= USBTS_ISO_CONTINUED;
    if (first.restarted)
        flags |= USBTS_ISO_RESTARTED;
    if (urbs > 1)
        flags |= USBTS_ISO_SPLIT;
    if (new_gen)
        flags |= USBTS_ISO_NEW_GENERATION;
    memset(res, 0, sizeof *res);
    res->Flags = flags;
    res->Urbs = urbs;
    res->GenerationId = s.m.generation;
    res->KernelStartFrame = usbts_iso_rule_kernel_value(&r, first.pick);
    res->KernelStartEarliest = usbts_iso_rule_kernel_value(&r, first.lo);
    res->KernelStartLatest = usbts_iso_rule_kernel_value(&r, first.hi);
    res->KernelModulus = usbts_iso_rule_kernel_modulus(&r);
    res->ConfirmFromNs = sub->AfterNs + CONFIRM_DELAY_NS;
    return TRUE;
}

BOOL usbts_iso_confirm(WINUSB_INTERFACE_HANDLE ih, HANDLE th, const USBTS_ISO_RESULT *res)
{
    if (!ih || !th)
        return usbts_fail(ERROR_INVALID_HANDLE, "InterfaceHandle or TimeTrackingHandle is NULL");
    if (!res)
        return usbts_fail(ERROR_INVALID_PARAMETER, "usbts_iso_confirm needs the Result to confirm");
    struct usbts_snapshot s;
    DWORD err = usbts_snapshot_take(ih, th, &s);
    if (err != ERROR_SUCCESS)
        return usbts_snapshot_fail(err);
    if (!usbts_snapshot_still_valid(ih, th, &s))
        return usbts_snapshot_fail(ERROR_INVALID_HANDLE);
    if (s.now < res->ConfirmFromNs)
        return usbts_fail(ERROR_TIMEOUT,
                          "too early to confirm: a reset during the submission is noticed within 50 ms; ask again "
                          "from ConfirmFromNs (%lld ns) on",
                          (long long)res->ConfirmFromNs);
    if (s.m.generation != res->GenerationId)
        return usbts_fail(ERROR_GEN_FAILURE,
                          "the controller's frame clock changed generation (%u, was %u: a reset or halt) since this "
                          "URB was placed: its frames may be wrong",
                          (unsigned)s.m.generation, (unsigned)res->GenerationId);
    return TRUE;
}

/* ---- 11-bit frame numbers ---------------------------------------------------- */

BOOL usbts_extend_frame_number(WINUSB_INTERFACE_HANDLE ih, HANDLE th, ULONG hw, const ULONG *reference,
                               ULONG before, ULONG after, ULONG *out)
{
    if (!out)
        return usbts_fail(ERROR_INVALID_PARAMETER, "usbts_extend_frame_number needs somewhere to write");
    if (hw > 0x7FF)
        return usbts_fail(ERROR_INVALID_PARAMETER, "HardwareFrame %u is not an 11-bit SOF number (0..2047)",
                          (unsigned)hw);
    uint32_t ref;
    if (reference) {
        ref = *reference;
    } else {
        struct usbts_snapshot s;
        DWORD err = usbts_snapshot_take(ih, th, &s);
        if (err != ERROR_SUCCESS)
            return usbts_snapshot_fail(err);
        ref = (uint32_t)(uint64_t)(usbts_model_mf_at(&s.m, s.now) >> 3);
        if (!usbts_snapshot_still_valid(ih, th, &s))
            return usbts_snapshot_fail(ERROR_INVALID_HANDLE);
    }
    uint32_t v;
    int found = usbts_frame_extend(hw, ref, before, after, &v);
    DWORD err = found == USBTS_EXTEND_NONE ? ERROR_NOT_FOUND : found == USBTS_EXTEND_SEVERAL ? ERROR_MORE_DATA : 0;
    if (err == ERROR_NOT_FOUND)
        return usbts_fail(err, "no frame in [%u - %u, %u + %u] has SOF number %u: widen the window (2048 frames "
                               "always hold one)",
                          (unsigned)ref, (unsigned)before, (unsigned)ref, (unsigned)after, (unsigned)hw);
    if (err == ERROR_MORE_DATA)
        return usbts_fail(err, "several frames in [%u - %u, %u + %u] have SOF number %u: narrow the window to "
                               "2048 frames or fewer",
                          (unsigned)ref, (unsigned)before, (unsigned)ref, (unsigned)after, (unsigned)hw);
    *out = v;
    return TRUE;
}

/* ---- the controller's facts ---------------------------------------------------- */

BOOL usbts_get_controller_caps(HANDLE device, USBTS_CONTROLLER_CAPS *caps)
{
    if (!caps)
        return usbts_fail(ERROR_INVALID_PARAMETER, "usbts_get_controller_caps needs somewhere to write: Caps is NULL");
    USBTS_DEVICE_INFO info;
    if (!usbts_get_device_info(device, &info))
        return FALSE;
    if (info.IsSimulated)
        return usbts_fail(ERROR_NOT_SUPPORTED, "a simulated controller has no capability registers: give the "
                                               "endpoint's Ist and Cfc yourself");
    if (strcmp(info.Driver, "xhci_hcd") != 0)
        return usbts_fail(ERROR_NOT_SUPPORTED, "controller %s is driven by %s, not xhci_hcd: no xHCI capability "
                                               "registers",
                          info.Controller, info.Driver);
    uint32_t p2, c1;
    char msg[600];
    DWORD err = usbts_xhci_caps_read(info.Controller, &p2, &c1, msg, sizeof msg);
    if (err != ERROR_SUCCESS)
        return usbts_fail_msg(err, msg);
    memset(caps, 0, sizeof *caps);
    caps->HcsParams2 = p2;
    caps->HccParams1 = c1;
    caps->Ist = (UCHAR)(p2 & 0xFu);
    caps->IstMicroFrames = (UCHAR)((p2 & 7u) << ((p2 & 8u) ? 3 : 0));
    caps->Cfc = (c1 >> 11) & 1u;
    return TRUE;
}
