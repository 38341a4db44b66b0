/* The benchmarks' clocks and medians (bench_*.c). */
#ifndef BD_BENCH_CLOCK_H
#define BD_BENCH_CLOCK_H

#include <stdlib.h>
#include <time.h>

/* Seconds on `clock` (CLOCK_MONOTONIC: wall; CLOCK_PROCESS_CPUTIME_ID:
 * CPU of all this process's threads). */
static inline double clock_seconds(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static inline double now(void) { return clock_seconds(CLOCK_MONOTONIC); }
static inline double cpu_now(void) { return clock_seconds(CLOCK_PROCESS_CPUTIME_ID); }

static inline int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of v[0 .. n), n > 0 (v is sorted in place). */
static inline double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

#endif
