/* bench/trace/bench_trace.c - what tracing costs (bench/trace/README.md).
 *
 *   bench_trace loop <impl> <nframe> [ops]   10M x (malloc a random small size; write; free) in
 *                                            3-level-deep calls; nframe 0 = not tracing
 *   bench_trace memory [blocks]              the tracer's own bytes per live traced block at 1M
 *                                            live blocks (from 4 allocation sites)
 *
 * impl: mem  - zw_mem_malloc/zw_mem_free (the MEM domain: the default heap behind a mutex; the
 *              counterpart of CPython's PyMem_Malloc, traced through the domain wrappers);
 *       heap - zw_heap_malloc/zw_heap_free on a private heap (traced through the heap observer).
 * Each prints one line: bench=trace workload=.. impl=.. nframe=.. ns_per_op=.. (one run; the run
 * script takes the median of 5 processes). Sizes come from a fixed table (seeded), so every run
 * and every implementation allocates the same sequence. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zerowaste/zerowaste.h>

#define NSIZES 4096 /* a power of two */

static size_t sizes[NSIZES];
static zw_heap *heap;
static int use_heap;

static void
fill_sizes(void)
{
    uint64_t s = 0x5eed;
    for (size_t i = 0; i < NSIZES; i++) {
        s += 0x9E3779B97F4A7C15ULL;
        uint64_t z = s;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        sizes[i] = 1 + (size_t)((z ^ (z >> 31)) % 256); /* 1..256 bytes */
    }
}

static double
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* ---- the loop: three levels of calls, each keeping its frame ---- */

static __attribute__((noinline)) void
level3(size_t n)
{
    char *p = use_heap ? zw_heap_malloc(heap, n) : zw_mem_malloc(n);
    p[0] = (char)n;
    __asm__ volatile("" : : "r"(p) : "memory");
    if (use_heap)
        zw_heap_free(heap, p);
    else
        zw_mem_free(p);
}

static __attribute__((noinline)) void
level2(size_t n)
{
    level3(n);
    __asm__ volatile("" ::: "memory");
}

static __attribute__((noinline)) void
level1(size_t n)
{
    level2(n);
    __asm__ volatile("" ::: "memory");
}

static int
run_loop(const char *impl, int nframe, long ops)
{
    use_heap = strcmp(impl, "heap") == 0;
    if (!use_heap && strcmp(impl, "mem") != 0) {
        fprintf(stderr, "bench_trace: error: unknown impl '%s' (mem or heap)\n", impl);
        return 2;
    }
    heap = zw_heap_new();
    zw_error err;
    if (nframe > 0 && zw_trace_start(nframe, &err) != 0) {
        fprintf(stderr, "bench_trace: error: %s\n", err.msg);
        return 1;
    }
    for (long i = 0; i < ops / 10; i++) /* warm-up: pools, tables, caches */
        level1(sizes[i & (NSIZES - 1)]);
    double t0 = now_ns();
    for (long i = 0; i < ops; i++)
        level1(sizes[i & (NSIZES - 1)]);
    double t1 = now_ns();
    size_t cur = 0;
    zw_trace_get_traced_memory(&cur, NULL);
    zw_trace_stop();
    zw_heap_destroy(heap);
    printf("bench=trace workload=loop-3deep impl=zw-%s nframe=%d ns_per_op=%.2f "
           "tracer_bytes_per_block=- ops=%ld traced_after=%zu\n",
           impl, nframe, (t1 - t0) / (double)ops, ops, cur);
    return 0;
}

/* ---- memory: 1M live blocks from 4 sites ---- */

static __attribute__((noinline)) void *
site(int k, size_t n)
{
    void *p;
    switch (k) {
    case 0:
        p = zw_mem_malloc(n);
        break;
    case 1:
        p = zw_mem_malloc(n);
        break;
    case 2:
        p = zw_mem_obj_malloc(n);
        break;
    default:
        p = zw_mem_raw_malloc(n);
        break;
    }
    __asm__ volatile("" : : "r"(p) : "memory");
    return p;
}

static __attribute__((noinline)) void *
mid(int k, size_t n)
{
    void *p = site(k, n);
    __asm__ volatile("" ::: "memory");
    return p;
}

static int
run_memory(long blocks, int nframe)
{
    zw_error err;
    if (zw_trace_start(nframe, &err) != 0) {
        fprintf(stderr, "bench_trace: error: %s\n", err.msg);
        return 1;
    }
    size_t idle = zw_trace_get_memory();
    void **p = malloc((size_t)blocks * sizeof(void *)); /* the C library's: not traced */
    if (p == NULL)
        return 1;
    double t0 = now_ns();
    for (long i = 0; i < blocks; i++)
        p[i] = mid((int)(i & 3), sizes[i & (NSIZES - 1)]);
    double t1 = now_ns();
    size_t mem = zw_trace_get_memory();
    size_t cur;
    zw_trace_get_traced_memory(&cur, NULL);
    zw_snapshot *snap = zw_trace_take_snapshot(&err);
    zw_stat_list *l = zw_snapshot_statistics(snap, ZW_GROUP_TRACEBACK, false, &err);
    size_t ntb = zw_stat_list_len(l);
    zw_stat_list_free(l);
    zw_snapshot_free(snap);
    for (long i = 0; i < blocks; i++) {
        int k = (int)(i & 3);
        k == 2 ? zw_mem_obj_free(p[i]) : k == 3 ? zw_mem_raw_free(p[i]) : zw_mem_free(p[i]);
    }
    free(p);
    zw_trace_stop();
    printf("bench=trace workload=live-1M impl=zw-domains nframe=%d ns_per_op=%.2f "
           "tracer_bytes_per_block=%.1f blocks=%ld tracer_bytes=%zu idle_bytes=%zu "
           "traced_bytes=%zu tracebacks=%zu\n",
           nframe, (t1 - t0) / (double)blocks, (double)(mem - idle) / (double)blocks, blocks, mem,
           idle, cur, ntb);
    return 0;
}

int
main(int argc, char **argv)
{
    fill_sizes();
    if (argc >= 4 && strcmp(argv[1], "loop") == 0)
        return run_loop(argv[2], atoi(argv[3]), argc > 4 ? atol(argv[4]) : 10000000L);
    if (argc >= 2 && strcmp(argv[1], "memory") == 0)
        return run_memory(argc > 2 ? atol(argv[2]) : 1000000L, argc > 3 ? atoi(argv[3]) : 8);
    fprintf(stderr, "usage: bench_trace loop mem|heap NFRAME [OPS] | memory [BLOCKS [NFRAME]]\n");
    return 2;
}
