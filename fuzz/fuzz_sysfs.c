/* SPDX-License-Identifier: MIT */
/*
 * fuzz_sysfs.c — the parsers of sysfs and debugfs text (sysfs_parse.h).
 * The first byte picks a parser (and its base, bound or level); the rest is
 * the file's text, copied into a buffer of exactly its size with no NUL, so
 * any read past the end is caught.  What a parser accepts must be what it
 * claims: values in range, output NUL-terminated inside its buffer, and a
 * canonical rendering of the value parsed back to the same value.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sysfs_parse.h"

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_sysfs: %s\n", what);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    size_t len = size - 1;
    char *text = malloc(len ? len : 1);
    if (!text)
        abort();
    memcpy(text, data + 1, len);
    char canon[96];
    switch ((sel & 7) % 7) { /* low bits: the parser; high bits: its options */
    case 0: {
        uint32_t v;
        if (usbts_parse_mfindex(text, len, &v)) {
            if (!memmem(text, len, "MFINDEX", 7))
                fail("MFINDEX accepted from text without the word");
            int n = snprintf(canon, sizeof canon, "IR0_IMAN = 0x1\nMFINDEX = 0x%08x\n", v);
            uint32_t w;
            if (!usbts_parse_mfindex(canon, (size_t)n, &w) || w != v)
                fail("MFINDEX does not survive its canonical form");
        }
        break;
    }
    case 1: {
        uint64_t start, sz, flags;
        if (usbts_parse_pci_resource0(text, len, &start, &sz, &flags)) {
            if (start == 0 || sz == 0 || start + (sz - 1) < start)
                fail("resource: an unset or wrapping BAR accepted");
            int n = snprintf(canon, sizeof canon, "0x%016llx 0x%016llx 0x%016llx\n", (unsigned long long)start,
                             (unsigned long long)(start + sz - 1), (unsigned long long)flags);
            uint64_t s2, z2, f2;
            if (!usbts_parse_pci_resource0(canon, (size_t)n, &s2, &z2, &f2) || s2 != start || z2 != sz || f2 != flags)
                fail("resource does not survive its canonical form");
        }
        break;
    }
    case 2: {
        int base = (sel & 0x80) ? 16 : 10;
        uint64_t max = (sel & 0x40) ? UINT64_MAX : (sel & 0x20) ? 0xFFFF : 999;
        uint64_t v;
        if (usbts_parse_uint_attr(text, len, base, max, &v)) {
            if (v > max)
                fail("attribute above its maximum accepted");
            int n = snprintf(canon, sizeof canon, base == 16 ? "%llx\n" : "%llu\n", (unsigned long long)v);
            uint64_t w;
            if (!usbts_parse_uint_attr(canon, (size_t)n, base, max, &w) || w != v)
                fail("attribute does not survive its canonical form");
        }
        break;
    }
    case 3: {
        int s = usbts_parse_speed(text, len);
        if (s < 0 || s > 3)
            fail("speed outside DEVICE_SPEED");
        break;
    }
    case 4:
        if (usbts_is_pci_address(text, len) && (len != 12 || !usbts_is_safe_name(text, len)))
            fail("a PCI address that is not 12 safe characters");
        break;
    case 5:
        if (usbts_is_safe_name(text, len) && (len == 0 || len > 63 || memchr(text, '/', len)))
            fail("an unsafe name accepted");
        break;
    case 6: {
        /* outlen from the selector too, so a write one past it is caught */
        size_t outlen = (size_t)(sel >> 3) + 1;
        char *out = malloc(outlen);
        if (!out)
            abort();
        if (usbts_parse_link_component(text, len, (sel >> 3) & 3, out, outlen)) {
            size_t n = strnlen(out, outlen);
            if (n == outlen || !usbts_is_safe_name(out, n))
                fail("link component unterminated or unsafe");
        }
        free(out);
        break;
    }
    }
    free(text);
    return 0;
}
