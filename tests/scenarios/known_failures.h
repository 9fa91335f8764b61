/* SPDX-License-Identifier: MIT */
/*
 * known_failures.h — scenario failures that are known, reported and owned
 * elsewhere (the estimator's half of issue #16, branch est), listed here so
 * that `make check` stays green while they stay visible: each prints as
 * XFAIL with its reason, and one that starts passing prints XPASS (delete
 * its line then).  Anything not listed fails as usual.
 *
 * scenario: a test_scenarios name, or "soak" for a soak scenario's seed;
 * seed -1: every seed.
 */
#ifndef USBTS_KNOWN_FAILURES_H
#define USBTS_KNOWN_FAILURES_H

#include <string.h>

struct known_failure {
    const char *scenario;
    long long seed;
    const char *why;
};

static const struct known_failure usbts_known_failures[] = {
    {"slow-runs", -1, "est: since merging est (2251edc..033f696) the bound is 2-3 us for p99 130-180 ns (1 us and 66-79 ns before)"},
    /* soak --count 60 --seed 1 (make check's soak_short) */
    {"soak", 1048577, "est: 1.1% outside after reset_halt + halt with torn reads and NTP ramps (passed before est)"},
    {"soak", 1048580, "est: suspend/reset recovery 480 ms under 8% preemptions (passed before est)"},
    {"soak", 1048585, "est: 2.3% outside with 20 us slow-read runs, NTP ramps, random walk (bound aging)"},
    {"soak", 1048587, "est: reset recovery 120 ms under 9% preemptions (passed before est)"},
    {"soak", 1048598, "est: 2.3% outside around a host-clock slew with NTP ramps and slow runs (passed before est)"},
    {"soak", 1048599, "est: a 6 s stall under NTP ramps starts a new generation; reset recovery 90 ms"},
    {"soak", 1048609, "est: 1.5% outside around a 183 ppm host-clock slew (slew agreement; passed before est)"},
    {"soak", 1048619, "est: a 9.5 s stall across a 19 ppm host-clock slew starts a new generation"},
    {"soak", 1048628, "est: 4.5% outside and 138 wrong frames after a suspend, walk 1 ppm/sqrt(s) (passed before est)"},
    {"soak", 1048631, "est: 1.7% outside after a 155 ppm slew and a 4.7 s stall (passed before est)"},
    {"soak", 1048635, "est: reset recovery 81 ms under 4% preemptions and late wake-ups (passed before est)"},
};

static inline const char *usbts_known_failure(const char *scenario, long long seed)
{
    for (size_t i = 0; i < sizeof usbts_known_failures / sizeof usbts_known_failures[0]; i++)
        if (strcmp(usbts_known_failures[i].scenario, scenario) == 0 &&
            (usbts_known_failures[i].seed < 0 || usbts_known_failures[i].seed == seed))
            return usbts_known_failures[i].why;
    return NULL;
}

#endif
