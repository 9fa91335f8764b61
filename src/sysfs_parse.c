/* SPDX-License-Identifier: MIT */
/*
 * sysfs_parse.c — strict parsers for sysfs and debugfs text (see the header).
 */
#include "sysfs_parse.h"

#include <string.h>

#include "usbtimesync/winusb.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Drops one trailing newline: sysfs attributes end with exactly one. */
static size_t chomp(const char *text, size_t len)
{
    return len > 0 && text[len - 1] == '\n' ? len - 1 : len;
}

/* Parses digits of `base` in text[*i..len) into *out, at most max; needs at
 * least one digit and stops at the first non-digit. */
static bool digits(const char *text, size_t len, size_t *i, int base, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    size_t start = *i;
    for (; *i < len; (*i)++) {
        int d = base == 16 ? hexval(text[*i]) : (text[*i] >= '0' && text[*i] <= '9' ? text[*i] - '0' : -1);
        if (d < 0 || d >= base)
            break;
        if (v > (max - (uint64_t)d) / (uint64_t)base)
            return false;
        v = v * (uint64_t)base + (uint64_t)d;
    }
    if (*i == start)
        return false;
    *out = v;
    return true;
}

static void skip_blanks(const char *text, size_t len, size_t *i)
{
    while (*i < len && (text[*i] == ' ' || text[*i] == '\t'))
        (*i)++;
}

bool usbts_parse_mfindex(const char *text, size_t len, uint32_t *mfindex)
{
    static const char key[] = "MFINDEX";
    size_t line = 0;
    while (line < len) {
        const char *nl = memchr(text + line, '\n', len - line);
        size_t end = nl ? (size_t)(nl - text) : len;
        if (end - line > sizeof key - 1 && memcmp(text + line, key, sizeof key - 1) == 0) {
            size_t i = line + sizeof key - 1;
            skip_blanks(text, end, &i);
            if (i >= end || text[i] != '=')
                return false;
            i++;
            skip_blanks(text, end, &i);
            if (end - i < 3 || text[i] != '0' || (text[i + 1] != 'x' && text[i + 1] != 'X'))
                return false;
            i += 2;
            size_t first = i;
            uint64_t v;
            if (!digits(text, end, &i, 16, UINT32_MAX, &v) || i - first > 8)
                return false;
            skip_blanks(text, end, &i);
            if (i != end)
                return false;
            *mfindex = (uint32_t)v;
            return true;
        }
        line = end + 1;
    }
    return false;
}

bool usbts_parse_pci_resource0(const char *text, size_t len, uint64_t *start, uint64_t *size, uint64_t *flags)
{
    const char *nl = memchr(text, '\n', len);
    size_t end = nl ? (size_t)(nl - text) : len;
    uint64_t v[3];
    size_t i = 0;
    for (int k = 0; k < 3; k++) {
        if (k > 0) {
            if (i >= end || text[i] != ' ')
                return false;
            skip_blanks(text, end, &i);
        }
        if (end - i < 3 || text[i] != '0' || text[i + 1] != 'x')
            return false;
        i += 2;
        if (!digits(text, end, &i, 16, UINT64_MAX, &v[k]))
            return false;
    }
    if (i != end || v[0] == 0 || v[1] < v[0] || v[1] - v[0] == UINT64_MAX)
        return false;
    *start = v[0];
    *size = v[1] - v[0] + 1;
    *flags = v[2];
    return true;
}

bool usbts_parse_uint_attr(const char *text, size_t len, int base, uint64_t max, uint64_t *out)
{
    if (base != 10 && base != 16)
        return false;
    len = chomp(text, len);
    size_t i = 0;
    uint64_t v;
    if (!digits(text, len, &i, base, max, &v) || i != len)
        return false;
    *out = v;
    return true;
}

int usbts_parse_speed(const char *text, size_t len)
{
    static const struct {
        const char *s;
        int speed;
    } speeds[] = {{"1.5", LowSpeed},      {"12", FullSpeed},     {"480", HighSpeed},
                  {"5000", HighSpeed},    {"10000", HighSpeed},  {"20000", HighSpeed}};
    len = chomp(text, len);
    for (size_t k = 0; k < sizeof speeds / sizeof speeds[0]; k++)
        if (strlen(speeds[k].s) == len && memcmp(speeds[k].s, text, len) == 0)
            return speeds[k].speed;
    return 0;
}

bool usbts_is_pci_address(const char *name, size_t len)
{
    /* DDDD:BB:DD.F */
    static const char shape[] = "xxxx:xx:xx.x";
    if (len != sizeof shape - 1)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (shape[i] == 'x') {
            if (hexval(name[i]) < 0 || (name[i] >= 'A' && name[i] <= 'F'))
                return false;
        } else if (name[i] != shape[i]) {
            return false;
        }
    }
    return name[len - 1] <= '7'; /* a function number is 0..7 */
}

bool usbts_is_safe_name(const char *name, size_t len)
{
    if (len == 0 || len > 63)
        return false;
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                  c == '_' || c == ':' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

bool usbts_parse_link_component(const char *target, size_t len, int up, char *out, size_t outlen)
{
    if (up < 0)
        return false;
    while (len > 0 && target[len - 1] == '/')
        len--;
    size_t end = len;
    for (;;) {
        size_t start = end;
        while (start > 0 && target[start - 1] != '/')
            start--;
        if (up == 0) {
            size_t n = end - start;
            if (!usbts_is_safe_name(target + start, n) || n + 1 > outlen)
                return false;
            memcpy(out, target + start, n);
            out[n] = '\0';
            return true;
        }
        if (start == 0)
            return false;
        end = start - 1;
        while (end > 0 && target[end - 1] == '/')
            end--;
        up--;
    }
}
