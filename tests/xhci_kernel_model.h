/* SPDX-License-Identifier: MIT */
/*
 * xhci_kernel_model.h — the simulation side's stand-in for the Linux xHCI
 * driver's isochronous scheduling, written from the kernel's rule
 * (drivers/usb/host/xhci-ring.c, xhci_queue_isoc_tx_prepare and
 * xhci_queue_isoc_tx) and kept apart from the library's inference on
 * purpose: the tests compare the two.
 *
 * In the kernel's own units: urb->interval and urb->start_frame count frames
 * at full speed and microframes at high speed; the MFINDEX read is masked to
 * 14 bits, the sum is not.  With CFC, a URB submitted while the ring still
 * holds TDs of the endpoint (td_list not empty, endpoint running) takes
 * next_frame_id, the previous URB's start plus its packets times the
 * interval; otherwise it starts afresh.
 */
#ifndef XHCI_KERNEL_MODEL_H
#define XHCI_KERNEL_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#define KM_MAX_URBS 64

struct km_endpoint {
    bool full_speed;
    int interval;          /* urb->interval after usb_submit_urb: frames (FS) or microframes (HS) */
    unsigned hcs_ist;      /* HCSPARAMS2 & 0xF */
    bool cfc;
    int next_frame_id;
    /* URBs on the ring: host time at which each is given back (its TDs leave td_list) */
    int64_t giveback_ns[KM_MAX_URBS];
    int on_ring;
};

static inline void km_init(struct km_endpoint *ep, bool full_speed, int binterval, unsigned ist, bool cfc)
{
    ep->full_speed = full_speed;
    ep->interval = 1 << (binterval - 1); /* usbfs: 1 << min(15, bInterval - 1) */
    ep->hcs_ist = ist;
    ep->cfc = cfc;
    ep->next_frame_id = 0;
    ep->on_ring = 0;
}

/* TDs whose URB has been given back by host time now leave the ring. */
static inline void km_retire(struct km_endpoint *ep, int64_t now)
{
    int k = 0;
    for (int i = 0; i < ep->on_ring; i++)
        if (ep->giveback_ns[i] > now)
            ep->giveback_ns[k++] = ep->giveback_ns[i];
    ep->on_ring = k;
}

static inline int km_roundup(int x, int m)
{
    return ((x + m - 1) / m) * m;
}

/* The submission: the driver looks at td_list at host time `now` and reads
 * MFINDEX (`mfindex`, raw).  Returns urb->start_frame as the kernel sets it. */
static inline int km_submit(struct km_endpoint *ep, uint32_t mfindex, int64_t now, int packets)
{
    int start_frame;
    km_retire(ep, now);
    if (ep->cfc && ep->on_ring > 0) {
        start_frame = ep->next_frame_id;
    } else {
        int sf = (int)(mfindex & 0x3fff);
        int ist = (int)(ep->hcs_ist & 0x7);
        if (ep->hcs_ist & (1 << 3))
            ist <<= 3;
        sf += ist + 10; /* XHCI_CFC_DELAY */
        sf = km_roundup(sf, 8);
        if (ep->full_speed) {
            sf = km_roundup(sf, ep->interval << 3);
            start_frame = sf >> 3;
        } else {
            sf = km_roundup(sf, ep->interval);
            start_frame = sf;
        }
    }
    if (ep->cfc)
        ep->next_frame_id = start_frame + packets * ep->interval;
    return start_frame;
}

/* The URB just submitted will be given back at host time t. */
static inline void km_queued(struct km_endpoint *ep, int64_t giveback_ns)
{
    if (ep->on_ring < KM_MAX_URBS)
        ep->giveback_ns[ep->on_ring++] = giveback_ns;
}

/* A controller reset kills every URB: the ring empties. */
static inline void km_flush(struct km_endpoint *ep)
{
    ep->on_ring = 0;
}

#endif
