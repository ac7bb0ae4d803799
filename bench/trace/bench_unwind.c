/* bench/trace/bench_unwind.c - the candidates for capturing native tracebacks, measured on the
 * same stacks: the frame-pointer walk the tracer uses (zwi_capture), glibc's backtrace() (the
 * DWARF unwinder of libgcc, with its per-object cache) and libunwind's unw_backtrace().
 *
 *   bench_unwind           one line per (method, stack depth, frames kept):
 *   bench=trace workload=unwind-d<depth> impl=<method> nframe=<n> ns_per_op=<x>
 *
 * Each figure is the median of 5 runs of 200k captures at the bottom of a recursion of `depth`
 * frames (plus main's), built with frame pointers as the tracer's users are. */
#define UNW_LOCAL_ONLY
#include <execinfo.h>
#include <libunwind.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "trace_internal.h"

#define RUNS  5
#define CALLS 200000

enum method { FP, BACKTRACE, LIBUNWIND };
static const char *const names[] = {"frame-pointers", "glibc-backtrace", "libunwind"};

static void *frames[256];
static volatile unsigned sink;

static double
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static __attribute__((noinline)) unsigned
capture(enum method m, int max)
{
    unsigned n = 0;
    switch (m) {
    case FP: {
        unsigned total;
        n = zwi_capture(zwi_thread_get(), 0, (uintptr_t *)frames, (unsigned)max, &total);
        break;
    }
    case BACKTRACE:
        n = (unsigned)backtrace(frames, max);
        break;
    case LIBUNWIND:
        n = (unsigned)unw_backtrace(frames, max);
        break;
    }
    __asm__ volatile("" ::: "memory");
    return n;
}

/* Captures CALLS times at depth `depth`; returns ns per capture. */
static __attribute__((noinline)) double
at_depth(int depth, enum method m, int max)
{
    if (depth > 0) {
        double r = at_depth(depth - 1, m, max);
        __asm__ volatile("" ::: "memory");
        return r;
    }
    for (int i = 0; i < 1000; i++) /* warm-up: unwinders' caches */
        sink += capture(m, max);
    double t0 = now_ns();
    for (int i = 0; i < CALLS; i++)
        sink += capture(m, max);
    return (now_ns() - t0) / CALLS;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int
main(void)
{
    static const int depths[] = {3, 10, 30};
    static const int maxes[] = {1, 8, 32, 128};
    for (size_t d = 0; d < sizeof(depths) / sizeof(depths[0]); d++) {
        for (size_t k = 0; k < sizeof(maxes) / sizeof(maxes[0]); k++) {
            for (int m = 0; m < 3; m++) {
                double t[RUNS];
                for (int r = 0; r < RUNS; r++)
                    t[r] = at_depth(depths[d], (enum method)m, maxes[k]);
                qsort(t, RUNS, sizeof(double), cmp_double);
                printf("bench=trace workload=unwind-d%d impl=%s nframe=%d ns_per_op=%.1f "
                       "tracer_bytes_per_block=-\n",
                       depths[d], names[m], maxes[k], t[RUNS / 2]);
                fflush(stdout);
            }
        }
    }
    return 0;
}
