/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/*
 * usbts_mfindex.h - the interface of /dev/usbts_mfindex, shared by the
 * kernel module (kmod/usbts_mfindex.c) and user space (src/source_kmod.c).
 *
 * One request reads a controller's MFINDEX register COUNT times, each read
 * bracketed by two ktime_get_ns() (CLOCK_MONOTONIC) readings with local
 * interrupts disabled around that single read only.  The controller is named
 * by its USB bus number (either of an xHCI controller's two root hubs) or,
 * when busnum is 0, by the name of its device (a PCI address such as
 * "0000:00:14.0").  Errors:
 *   EINVAL     a malformed request (size, flags, count, name, both or no
 *              controller named)
 *   EFAULT     a pointer that cannot be read or written
 *   ENOTTY     an unknown command
 *   ENODEV     no such controller: never there, removed, or the module is
 *              going away
 *   EOPNOTSUPP the controller is not xHCI (no MFINDEX register)
 *   EAGAIN     the controller is suspended (its registers cannot be read now)
 *   EINTR      a signal arrived before the request started
 */
#ifndef USBTS_MFINDEX_H
#define USBTS_MFINDEX_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define USBTS_MFINDEX_DEVICE "/dev/usbts_mfindex"
#define USBTS_MFINDEX_ABI 1
#define USBTS_MFINDEX_MAX_BURST 64
#define USBTS_MFINDEX_NAME_LEN 32

/* Stop the burst at the first sample whose MFINDEX differs from the first
 * sample's: a burst aimed at a microframe boundary then ends right after it.
 */
#define USBTS_MFINDEX_STOP_ON_CHANGE 0x1u

struct usbts_mfindex_info {
	__u32 size;		/* in: sizeof(struct usbts_mfindex_info) */
	__u32 abi;		/* out: USBTS_MFINDEX_ABI */
	__u32 max_burst;	/* out: USBTS_MFINDEX_MAX_BURST */
	__u32 reserved;		/* out: 0 */
};

struct usbts_mfindex_sample {
	__s64 before_ns;	/* ktime_get_ns() just before the read */
	__s64 after_ns;		/* ktime_get_ns() just after */
	__u32 mfindex;		/* the raw register; bits 13:0 count uframes */
	__u32 reserved;		/* 0 */
};

struct usbts_mfindex_burst {
	__u32 size;		/* in: sizeof(struct usbts_mfindex_burst) */
	__u32 flags;		/* in: 0 or USBTS_MFINDEX_STOP_ON_CHANGE */
	__u32 busnum;		/* in: USB bus number, or 0 to go by name */
	__u32 count;		/* in: samples wanted, 1..64; out: taken */
	char controller[USBTS_MFINDEX_NAME_LEN]; /* in: NUL-terminated, or "" */
	__u64 samples;		/* in: user address of count samples */
};

#define USBTS_MFINDEX_IOC_MAGIC 0xB7
#define USBTS_MFINDEX_IOC_INFO \
	_IOWR(USBTS_MFINDEX_IOC_MAGIC, 0, struct usbts_mfindex_info)
#define USBTS_MFINDEX_IOC_BURST \
	_IOWR(USBTS_MFINDEX_IOC_MAGIC, 1, struct usbts_mfindex_burst)

#endif
