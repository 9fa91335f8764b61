/* SPDX-License-Identifier: MIT */
/* iso_rule.c — the xHCI driver's "as soon as possible" isochronous start. */
#include "iso_rule.h"

#define MFINDEX_WRAP 16384

/* m is a power of two here (8, or an interval of 2^k microframes). */
static int64_t roundup_to(int64_t x, int64_t m)
{
    return (x + m - 1) & ~(m - 1);
}

bool usbts_iso_rule_init(struct usbts_iso_rule *r, unsigned speed, unsigned binterval, unsigned ist, bool cfc)
{
    if ((speed != 2 && speed != 3) || binterval < 1 || binterval > 16 || ist > 15)
        return false;
    r->frames = speed == 2;
    /* 2^(bInterval-1) frames at full speed, microframes above it. */
    r->interval_uf = (int64_t)1 << (binterval - 1);
    if (r->frames)
        r->interval_uf *= 8;
    /* IST bit 3 set: IST[2:0] counts frames. */
    r->ist_uf = (int64_t)(ist & 7u) << ((ist & 8u) ? 3 : 0);
    r->cfc = cfc;
    return true;
}

int64_t usbts_iso_rule_asap(const struct usbts_iso_rule *r, int64_t mf)
{
    int64_t low = mf & (MFINDEX_WRAP - 1), base = mf - low;
    int64_t s = roundup_to(low + r->ist_uf + USBTS_ISO_KERNEL_DELAY_UF, 8);
    return base + roundup_to(s, r->interval_uf);
}

uint32_t usbts_iso_rule_kernel_value(const struct usbts_iso_rule *r, int64_t start_mf)
{
    if (r->frames)
        return (uint32_t)((start_mf >> 3) & 0x7FF);
    return (uint32_t)(start_mf & 0x3FFF);
}

uint32_t usbts_iso_rule_kernel_modulus(const struct usbts_iso_rule *r)
{
    return r->frames ? 2048u : 16384u;
}

int usbts_frame_extend(uint32_t hw, uint32_t ref, uint32_t before, uint32_t after, uint32_t *out)
{
    /* Offsets from the window's first frame: the wrap of the 32-bit numbers
     * costs nothing. */
    uint64_t width = (uint64_t)before + after + 1;
    uint32_t first = ref - before;
    uint32_t off = (hw - (first & 0x7FFu)) & 0x7FFu; /* the first candidate */
    if (off >= width)
        return USBTS_EXTEND_NONE;
    if ((uint64_t)off + 2048 < width)
        return USBTS_EXTEND_SEVERAL;
    *out = first + off;
    return USBTS_EXTEND_ONE;
}
