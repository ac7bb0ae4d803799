/* bench/preload/bench_pairs.c - a traced program's fixed cost per malloc/free pair: a program
 * built with frame pointers (the walk is a few loads, so what is left is the hook itself: the
 * guard, the real call, the traceback's interning, the live-block table, the counters), its stack
 * shallow, making pairs of mixed sizes from four call sites. bench/preload/run_pairs runs it plain,
 * under `zw run` and under heaptrack, and prints ns per pair and their ratios.
 *
 *   bench_pairs WORKLOAD PAIRS [THREADS]   prints "ns_per_pair=<x>": the loops' CPU time per pair
 *                                          (the threads' own clocks, summed: on a shared machine,
 *                                          less noisy than wall time)
 *
 * Workloads:
 *   temp  each pair a malloc and the free of that block at once (a temporary): the table's slot
 *         stays in the cache, the floor of the per-pair cost
 *   ring  a working set of 65536 live blocks; each pair frees a random one and allocates its
 *         replacement (sizes 8 B-4 KiB): the table holds 64k blocks and its slots are cold, as
 *         in a program that keeps what it allocates for a while
 * THREADS (default 1) threads run the workload side by side, each with its own working set.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RING 65536

static volatile long sink;

/* sizes of the mix: mostly small, a few larger, as a C or C++ program allocates */
static const unsigned short SIZES[16] = {8,  16, 24, 32,  32,  48,  64,   64,
                                         96, 128, 160, 256, 384, 512, 1024, 4096};

static inline uint64_t
next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* the call sites: each a frame of its own */
static __attribute__((noinline)) void *
site_a(size_t n)
{
    void *p = malloc(n);
    sink = sink + (long)(p != NULL);
    return p;
}

static __attribute__((noinline)) void *
site_b(size_t n)
{
    void *p = malloc(n);
    sink = sink + (long)(p != NULL);
    return p;
}

static __attribute__((noinline)) void *
site_c(size_t n)
{
    void *p = site_a(n);
    sink = sink + 1;
    return p;
}

static __attribute__((noinline)) void *
site_d(size_t n)
{
    void *p = calloc(1, n);
    sink = sink + (long)(p != NULL);
    return p;
}

static void *
alloc_from(unsigned site, size_t n)
{
    switch (site & 3) {
    case 0:
        return site_a(n);
    case 1:
        return site_b(n);
    case 2:
        return site_c(n);
    default:
        return site_d(n);
    }
}

static double
cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

typedef struct job {
    int ring; /* 0: temp */
    long pairs;
    uint64_t seed;
    double ns; /* out: CPU time of the loop */
} job;

static __attribute__((noinline)) void
run_temp(job *j)
{
    uint64_t s = j->seed;
    for (long i = 0; i < 1000; i++) /* warm-up: the tracer's tables and caches */
        free(alloc_from((unsigned)i, 32));
    double t0 = cpu_ns();
    for (long i = 0; i < j->pairs; i++) {
        uint64_t r = next_rand(&s);
        void *p = alloc_from((unsigned)(r >> 8), SIZES[r & 15]);
        free(p);
    }
    j->ns = cpu_ns() - t0;
}

static __attribute__((noinline)) void
run_ring(job *j)
{
    uint64_t s = j->seed;
    void **slots = calloc(RING, sizeof(void *));
    if (slots == NULL) {
        fprintf(stderr, "bench_pairs: out of memory\n");
        exit(1);
    }
    for (long i = 0; i < RING; i++) { /* the working set, and the warm-up */
        uint64_t r = next_rand(&s);
        slots[i] = alloc_from((unsigned)(r >> 8), SIZES[r & 15]);
    }
    double t0 = cpu_ns();
    for (long i = 0; i < j->pairs; i++) {
        uint64_t r = next_rand(&s);
        size_t k = (size_t)(r >> 32) & (RING - 1);
        free(slots[k]);
        slots[k] = alloc_from((unsigned)(r >> 8), SIZES[r & 15]);
    }
    j->ns = cpu_ns() - t0;
    for (long i = 0; i < RING; i++)
        free(slots[i]);
    free(slots);
}

static void *
thread_main(void *arg)
{
    job *j = arg;
    if (j->ring)
        run_ring(j);
    else
        run_temp(j);
    return NULL;
}

int
main(int argc, char **argv)
{
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: bench_pairs temp|ring PAIRS [THREADS]\n");
        return 2;
    }
    int ring;
    if (strcmp(argv[1], "temp") == 0) {
        ring = 0;
    } else if (strcmp(argv[1], "ring") == 0) {
        ring = 1;
    } else {
        fprintf(stderr, "bench_pairs: unknown workload '%s' (temp or ring)\n", argv[1]);
        return 2;
    }
    char *end;
    long pairs = strtol(argv[2], &end, 10);
    if (*end != '\0' || pairs < 1) {
        fprintf(stderr, "bench_pairs: bad pair count '%s'\n", argv[2]);
        return 2;
    }
    long nthread = 1;
    if (argc == 4) {
        nthread = strtol(argv[3], &end, 10);
        if (*end != '\0' || nthread < 1 || nthread > 64) {
            fprintf(stderr, "bench_pairs: bad thread count '%s' (1-64)\n", argv[3]);
            return 2;
        }
    }
    job jobs[64];
    pthread_t tids[64];
    for (long i = 0; i < nthread; i++)
        jobs[i] = (job){ring, pairs, 0x9E3779B97F4A7C15ull + (uint64_t)i * 7919, 0};
    if (nthread == 1) {
        thread_main(&jobs[0]);
    } else {
        for (long i = 0; i < nthread; i++) {
            if (pthread_create(&tids[i], NULL, thread_main, &jobs[i]) != 0) {
                fprintf(stderr, "bench_pairs: cannot start thread %ld\n", i);
                return 1;
            }
        }
        for (long i = 0; i < nthread; i++)
            pthread_join(tids[i], NULL);
    }
    double ns = 0;
    for (long i = 0; i < nthread; i++)
        ns += jobs[i].ns;
    printf("ns_per_pair=%.1f\n", ns / ((double)pairs * (double)nthread));
    return 0;
}
