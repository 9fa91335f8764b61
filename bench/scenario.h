/* SPDX-License-Identifier: MIT */
/*
 * scenario.h — accuracy scenarios on the virtual-clock simulator.
 *
 * A scenario opens a simulated controller, tracks it, and at random instants
 * asks for the start time of the current microframe and of a random nearby
 * one, comparing each returned value with the simulator's truth.  On the same
 * simulated timeline it runs two baselines:
 *   (a) one bracketed MFINDEX read per query (what an application without a
 *       tracker would do), and
 *   (b) one sample per MFINDEX wrap taken with up to 20 µs of interrupt
 *       latency, extrapolated with the rate from the last two samples (the
 *       documented Windows scheme).
 * Used by bench/accuracy (tables) and by the scenario ctest (assertions).
 */
#ifndef USBTS_BENCH_SCENARIO_H
#define USBTS_BENCH_SCENARIO_H

#include <stdbool.h>
#include <stdint.h>

struct scenario {
    const char *name;
    const char *keys;       /* sim keys beyond clock=virtual,seed=N */
    const char *event;      /* injected at event_at_ms, or NULL */
    double event_at_ms;     /* after tracking started */
    double duration_ms;     /* total tracking time */
};

struct scenario_result {
    /* our estimator, values measured from 2 s after start, excluding the
     * 2 s after an event */
    long long n;
    double p50_ns, p99_ns, max_ns;
    double outside_share;    /* share of values outside their reported bound */
    double bound_med_ns;     /* median reported bound (whole µs, as the API gives it) */
    double bound_p99_ratio;  /* median bound / p99 error */
    /* the honesty target: bound <= 4 * p99 + 1 µs, judged on the median bound */
    bool honest;
    /* baselines over the same instants */
    double base_read_p99_ns;
    double base_wrap_p99_ns;
    /* events */
    double new_generation_ms;  /* from the event to the first query showing a new generation; -1 none */
    double recovered_p99_ns;   /* p99 error in the window 2 s .. end after the event */
    /* wrap safety: after a stall, the frame number advanced by elapsed time */
    long long frame_jump_error;    /* frames; 0 = correct */
    bool failed;                   /* an API call failed */
    char failure[160];
};

/* The scenarios of issue #3, in a fixed order. */
extern const struct scenario usbts_scenarios[];
extern const int usbts_nscenarios;

/* Runs one scenario with one seed; returns false on an API failure. */
bool scenario_run(const struct scenario *sc, uint64_t seed, struct scenario_result *out);

#endif
