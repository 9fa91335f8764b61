/* SPDX-License-Identifier: MIT */
/*
 * sysfs_parse.h — the text the kernel shows in sysfs and debugfs, parsed.
 *
 * Pure functions over a buffer and its length (no NUL needed, no I/O), so
 * they are unit-tested on fixture files and fuzzed.  Each is strict: it
 * accepts what the kernel writes, one trailing newline included, and
 * refuses anything else rather than guessing.
 */
#ifndef USBTS_SYSFS_PARSE_H
#define USBTS_SYSFS_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* debugfs reg-runtime: the line "MFINDEX = 0x0000abcd" among others. */
bool usbts_parse_mfindex(const char *text, size_t len, uint32_t *mfindex);

/* A PCI device's `resource` file, first line (BAR 0):
 * "0x00000000fe800000 0x00000000fe803fff 0x0000000000140204".
 * *size is end - start + 1; an unset BAR (all zero) is refused. */
bool usbts_parse_pci_resource0(const char *text, size_t len, uint64_t *start, uint64_t *size, uint64_t *flags);

/* A sysfs attribute holding one unsigned number (busnum, devnum: base 10;
 * idVendor, idProduct: base 16, no 0x), at most max. */
bool usbts_parse_uint_attr(const char *text, size_t len, int base, uint64_t max, uint64_t *out);

/* A USB device's `speed` attribute in Mbit/s: "1.5", "12", "480", "5000",
 * "10000", "20000".  Returns LowSpeed (1), FullSpeed (2) or HighSpeed (3;
 * every faster speed is reported as HighSpeed, the fastest DEVICE_SPEED
 * has), or 0 for anything else. */
int usbts_parse_speed(const char *text, size_t len);

/* Is name a PCI address, "DDDD:BB:DD.F" in lower-case hex? */
bool usbts_is_pci_address(const char *name, size_t len);

/* Is name safe as one component of a sysfs or debugfs path: 1..63
 * characters of [A-Za-z0-9._:-], not "." or ".."? */
bool usbts_is_safe_name(const char *name, size_t len);

/* The last component of a symlink target such as
 * "../../../devices/pci0000:00/0000:00:04.0/usb1" with `up` components
 * dropped first (up = 1 gives "0000:00:04.0").  False if there are too few
 * components or the result is not a safe name. */
bool usbts_parse_link_component(const char *target, size_t len, int up, char *out, size_t outlen);

#endif
