/* bench/preload/bench_leakscan.c - what the leak scan (src/preload/leakscan.c) costs for N live
 * blocks (default 1M): a heap of malloc'd blocks of 16-256 bytes, fixed seed, half hung as trees
 * from a global array, a quarter in lost lists, a quarter reached only through interior pointers
 * (the blocks are shuffled in memory by the allocator's order, not the graph's);
 * the scan's steps timed, median of BENCH_RUNS (default 5) after a warm-up, and its memory per
 * block. Targets: <= 0.5 s and <= 16 bytes per block for 1M blocks. Times are CPU seconds of
 * the process (BENCH_WALL=1: wall seconds), so that a loaded machine inflates them less. Never
 * part of ctest.
 *
 *   bench_leakscan [NBLOCKS]   result line: bench=leakscan blocks=N add_s= prepare_s= roots_s=
 *                              classify_s= total_s= bytes_per_block= */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../src/preload/leakscan.h"

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint64_t
next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static double
now(void)
{
    struct timespec ts;
    clock_gettime(getenv("BENCH_WALL") != NULL ? CLOCK_MONOTONIC : CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int
by_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#define ROOTS 4096
static void *roots[ROOTS];

int
main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    int runs = getenv("BENCH_RUNS") != NULL ? atoi(getenv("BENCH_RUNS")) : 5;
    void **blocks = malloc(n * sizeof(void *));
    size_t *sizes = malloc(n * sizeof(size_t));
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        sizes[i] = 24 + (next() % 30) * 8;
        blocks[i] = calloc(1, sizes[i]);
        bytes += sizes[i];
    }
    /* [0, n/2): binary trees under roots[] (block i's children in its words 1 and 2);
     * [n/2, 3n/4): lost lists of 16; [3n/4, n): interior pointers from the trees' blocks */
    for (size_t i = 0; i < n / 2; i++) {
        if (i < ROOTS)
            roots[i] = blocks[i];
        else
            ((void **)blocks[(i - ROOTS) / 2])[1 + (i - ROOTS) % 2] = blocks[i];
    }
    for (size_t i = n / 2 + 1; i < 3 * n / 4; i++)
        if (i % 16 != 0)
            ((void **)blocks[i - 1])[0] = blocks[i];
    for (size_t i = 3 * n / 4; i < n; i++)
        ((void **)blocks[next() % (n / 2)])[0] = (char *)blocks[i] + 8;
    double *t[5];
    for (int k = 0; k < 5; k++)
        t[k] = calloc((size_t)runs + 1, sizeof(double));
    size_t memory = 0;
    size_t counts[ZWI_LEAK_KINDS] = {0};
    for (int r = -1; r < runs; r++) { /* run -1: warm-up */
        double t0 = now();
        zwi_leakscan *ls = zwi_leakscan_new(n);
        for (size_t i = 0; i < n; i++)
            zwi_leakscan_add(ls, (uintptr_t)blocks[i], sizes[i]);
        double t1 = now();
        zwi_leakscan_prepare(ls);
        double t2 = now();
        zwi_leakscan_root(ls, (uintptr_t)roots, (uintptr_t)(roots + ROOTS));
        double t3 = now();
        zwi_leakscan_classify(ls);
        double t4 = now();
        if (r >= 0) {
            t[0][r] = t1 - t0;
            t[1][r] = t2 - t1;
            t[2][r] = t3 - t2;
            t[3][r] = t4 - t3;
            t[4][r] = t4 - t0;
        }
        memory = zwi_leakscan_memory(ls);
        memset(counts, 0, sizeof(counts));
        for (size_t i = 0; i < n; i++)
            counts[zwi_leakscan_kind(ls, (uintptr_t)blocks[i])]++;
        zwi_leakscan_free(ls);
    }
    double med[5];
    for (int k = 0; k < 5; k++) {
        qsort(t[k], (size_t)runs, sizeof(double), by_double);
        med[k] = t[k][runs / 2];
    }
    printf("%-10s %10s %10s %10s %10s %10s %14s\n", "blocks", "add s", "prepare s", "roots s",
           "classify s", "total s", "bytes/block");
    printf("%-10zu %10.3f %10.3f %10.3f %10.3f %10.3f %14.2f\n", n, med[0], med[1], med[2],
           med[3], med[4], (double)memory / (double)n);
    printf("kinds: definite %zu indirect %zu possible %zu reachable %zu (%zu MiB of blocks)\n",
           counts[ZWI_LEAK_DEFINITE], counts[ZWI_LEAK_INDIRECT], counts[ZWI_LEAK_POSSIBLE],
           counts[ZWI_LEAK_REACHABLE], bytes >> 20);
    printf("bench=leakscan blocks=%zu add_s=%.4f prepare_s=%.4f roots_s=%.4f classify_s=%.4f "
           "total_s=%.4f bytes_per_block=%.2f\n",
           n, med[0], med[1], med[2], med[3], med[4], (double)memory / (double)n);
    return 0;
}
