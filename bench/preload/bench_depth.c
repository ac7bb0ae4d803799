/* bench/preload/bench_depth.c - a traced program's cost per allocation as its stack deepens: the
 * program recurses `depth` frames, then makes `pairs` malloc/free pairs from the bottom, from a
 * few call sites in turn (the frames under them stay, the top ones change, as in an interpreter's
 * loop). Built twice by bench/CMakeLists.txt: with frame pointers (bench_depth_fp) and without
 * (bench_depth_nofp, every traceback from the unwinder). bench/preload/run_depth runs it under
 * `zw run` with each ZW_UNWIND scheme and plain, and prints ns per allocation.
 *
 *   bench_depth DEPTH PAIRS   prints "ns_per_pair=<x>": the loop's CPU time per pair (this
 *                             thread's clock: on a shared machine, less noisy than wall time)
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static volatile long sink;

/* the call sites: each a frame of its own above the recursion */
static __attribute__((noinline)) void
site_a(size_t n)
{
    char *p = malloc(n);
    sink = sink + (long)(p != NULL);
    free(p);
}

static __attribute__((noinline)) void
site_b(size_t n)
{
    char *p = malloc(n + 16);
    sink = sink + (long)(p != NULL);
    free(p);
}

static __attribute__((noinline)) void
via(size_t n)
{
    site_a(n);
    sink = sink + 1;
}

static double
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static __attribute__((noinline)) double
bottom(long pairs)
{
    for (long i = 0; i < 1000; i++) /* warm-up: the unwinders' caches, the tracer's tables */
        site_a(32);
    double t0 = now_ns();
    for (long i = 0; i < pairs; i += 4) {
        site_a(32);
        site_b(48);
        via(64);
        site_a(24);
    }
    return (now_ns() - t0) / (double)pairs;
}

/* A frame that stays on the stack: locals that survive the call keep it from being a tail call. */
static __attribute__((noinline)) double
recurse(int depth, long pairs)
{
    volatile int here = depth;
    if (depth <= 0)
        return bottom(pairs);
    double r = recurse(depth - 1, pairs);
    return r + here * 0;
}

int
main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: bench_depth DEPTH PAIRS\n");
        return 2;
    }
    char *end;
    long depth = strtol(argv[1], &end, 10);
    if (*end != '\0' || depth < 0 || depth > 100000) {
        fprintf(stderr, "bench_depth: bad depth '%s'\n", argv[1]);
        return 2;
    }
    long pairs = strtol(argv[2], &end, 10);
    if (*end != '\0' || pairs < 4) {
        fprintf(stderr, "bench_depth: bad pair count '%s'\n", argv[2]);
        return 2;
    }
    printf("ns_per_pair=%.1f\n", recurse((int)depth, pairs));
    return 0;
}
