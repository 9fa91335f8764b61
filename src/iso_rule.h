/* SPDX-License-Identifier: MIT */
/*
 * iso_rule.h — where the Linux xHCI driver schedules an isochronous URB, as
 * pure arithmetic on extended microframe counts (no I/O, no clock).
 *
 * The driver (drivers/usb/host/xhci-ring.c) reads MFINDEX inside the
 * submission, masks it to 14 bits, adds the isochronous scheduling threshold
 * and a fixed 10-microframe delay, rounds up to a frame and then to the
 * endpoint's interval.  The result is not masked again, so a start past the
 * wrap is a number >= 16384 microframes (2048 frames): "the next wrap".  Here
 * the same computation is done on the 14-bit part of an extended count and
 * the extended base is added back, which is exactly the microframe the
 * kernel's number names.
 */
#ifndef USBTS_ISO_RULE_H
#define USBTS_ISO_RULE_H

#include <stdbool.h>
#include <stdint.h>

struct usbts_iso_rule {
    int64_t interval_uf; /* the endpoint's service interval, microframes */
    int64_t ist_uf;      /* the scheduling threshold, microframes */
    bool frames;         /* full speed: the kernel's start_frame counts frames */
    bool cfc;
};

/* The kernel's fixed scheduling delay (XHCI_CFC_DELAY), microframes. */
#define USBTS_ISO_KERNEL_DELAY_UF 10

/* speed: 2 full speed, 3 high speed (and faster); binterval 1..16; ist the
 * 4-bit HCSPARAMS2 field.  False for anything else. */
bool usbts_iso_rule_init(struct usbts_iso_rule *r, unsigned speed, unsigned binterval, unsigned ist, bool cfc);

/* The first packet's microframe (extended) when the driver read the
 * microframe `mf` (extended) and started the stream afresh. */
int64_t usbts_iso_rule_asap(const struct usbts_iso_rule *r, int64_t mf);

/* The kernel's start_frame value for an extended start microframe, modulo
 * what usbmon can be compared with (2048 frames or 16384 microframes). */
uint32_t usbts_iso_rule_kernel_value(const struct usbts_iso_rule *r, int64_t start_mf);
uint32_t usbts_iso_rule_kernel_modulus(const struct usbts_iso_rule *r);

/* 11-bit SOF numbers: the one 32-bit frame number in [ref - before,
 * ref + after] (modulo 2^32) whose low 11 bits are hw. */
#define USBTS_EXTEND_ONE 0
#define USBTS_EXTEND_NONE 1    /* the window holds no such frame */
#define USBTS_EXTEND_SEVERAL 2 /* it holds two or more */
int usbts_frame_extend(uint32_t hw, uint32_t ref, uint32_t before, uint32_t after, uint32_t *out);

#endif
