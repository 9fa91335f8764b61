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

#define SCENARIO_MAX_EVENTS 6

struct scenario_event {
    double at_ms;           /* after tracking started; events in time order */
    const char *what;       /* a usbts_sim_inject event; NULL ends the list */
};

struct scenario {
    const char *name;
    const char *keys;       /* sim keys beyond clock=virtual,seed=N */
    struct scenario_event events[SCENARIO_MAX_EVENTS];
    double duration_ms;     /* total tracking time */
};

struct scenario_result {
    /* our estimator, values measured from 2 s after start, excluding from
     * each reset, halt, suspend or stall to 2 s after its end */
    long long n;
    double p50_ns, p99_ns, max_ns;
    double outside_share;    /* share of values outside their reported bound */
    double outside_ns_share; /* the same for usbts_frame_to_ns against its BoundNs (not rounded to µs) */
    double bound_med_ns;     /* median reported bound (whole µs, as the API gives it) */
    double bound_p99_ratio;  /* median bound / p99 error */
    /* the honesty target: bound <= 4 * p99 + 1 µs, judged on the median bound */
    bool honest;
    /* baselines over the same instants */
    double base_read_p99_ns;
    double base_wrap_p99_ns;
    /* events */
    double new_generation_ms;  /* from the first event to the first query showing a new generation; -1 none */
    double recovered_p99_ns;   /* p99 error in the window 2 s .. end after the event */
    /* wrap safety: after a stall, the frame number advanced by elapsed time */
    long long frame_jump_error;    /* frames; 0 = correct, give or take the frame clock's rate error */
    long long stall_frames;        /* frames the stall and 50 ms took */
    bool stall_new_generation;     /* a stall with nothing else happening started a new generation */
    /* the watchdog's facts, over the whole run */
    double recovery_ms[SCENARIO_MAX_EVENTS]; /* from the counter running again after a reset, halt or
                                              * suspend to the first query with a new generation;
                                              * -1: none expected, INFINITY: none came */
    double worst_recovery_ms;  /* the largest of them; -1 when no event expects one */
    double gone_ms;            /* vanish: until queries fail with ERROR_DEVICE_NOT_CONNECTED; -1 none */
    long long frame_errors;    /* queries outside event windows naming a wrong (micro)frame, or whose
                                * frame number moved unlike the true clock within one generation */
    long long reads;           /* the sampler's register reads, all told */
    double max_read_share;     /* the largest share of any 100 ms the sampler spent reading */
    long long queries;
    long long unforeseeable;   /* future frames past a scripted host-clock rate step: not judged */
    bool failed;                   /* an API call failed */
    char failure[160];
};

/* The sampler spins if it spends more than this share of 100 ms reading. */
#define SCENARIO_SPIN_SHARE 0.25
/* A recovery within this much virtual time is prompt enough (issue #16). */
#define SCENARIO_RECOVERY_MS 50.0

/* The scenarios of issues #3 and #16, in a fixed order. */
extern const struct scenario usbts_scenarios[];
extern const int usbts_nscenarios;

/* Runs one scenario with one seed; returns false on an API failure. */
bool scenario_run(const struct scenario *sc, uint64_t seed, struct scenario_result *out);

#endif
