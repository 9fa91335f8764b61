/* SPDX-License-Identifier: MIT */
/*
 * benchutil.h — the small pieces every benchmark needs: a wall clock in
 * seconds and the median of a sample.  Shared by bench/accuracy,
 * bench/latency and `usbtimesync bench`.
 */
#ifndef USBTS_BENCHUTIL_H
#define USBTS_BENCHUTIL_H

/* CLOCK_MONOTONIC in seconds. */
double bench_now_s(void);

/* qsort comparison for doubles, ascending. */
int bench_cmp_double(const void *a, const void *b);

/* Sorts v[0..n) in place and returns its median (n > 0). */
double bench_median(double *v, int n);

#endif
