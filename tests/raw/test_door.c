/* tests/raw/test_door.c - the raw door: pages come zeroed and aligned as asked, the counters
 * are exact after every call, fault injection fails exactly the request it names, and a door
 * built on a caller's operations calls them, with their context, for everything it does. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <zerowaste/zerowaste.h>

#include "zw_test.h"

#define KIB ((size_t)1 << 10)

static zw_raw_stats
stats_of(const zw_raw *raw)
{
    zw_raw_stats st;
    zw_raw_get_stats(raw, &st);
    return st;
}

/* Asserts every counter of `raw`, in the order of zw_raw_stats. */
#define assert_stats(raw, mapped, peak, nmaps, nunmaps, nblocks, nrequests, ninjected)             \
    do {                                                                                           \
        zw_raw_stats st_ = stats_of(raw);                                                          \
        cr_assert_eq(st_.mapped_bytes, (mapped), "mapped_bytes %zu, expected %zu",                 \
                     st_.mapped_bytes, (size_t)(mapped));                                          \
        cr_assert_eq(st_.mapped_peak, (peak), "mapped_peak %zu, expected %zu", st_.mapped_peak,    \
                     (size_t)(peak));                                                              \
        cr_assert_eq(st_.maps, (nmaps), "maps %zu, expected %zu", st_.maps, (size_t)(nmaps));      \
        cr_assert_eq(st_.unmaps, (nunmaps), "unmaps %zu, expected %zu", st_.unmaps,                \
                     (size_t)(nunmaps));                                                           \
        cr_assert_eq(st_.blocks, (nblocks), "blocks %zu, expected %zu", st_.blocks,                \
                     (size_t)(nblocks));                                                           \
        cr_assert_eq(st_.requests, (nrequests), "requests %zu, expected %zu", st_.requests,        \
                     (size_t)(nrequests));                                                         \
        cr_assert_eq(st_.injected_failures, (ninjected), "injected_failures %zu, expected %zu",    \
                     st_.injected_failures, (size_t)(ninjected));                                  \
    } while (0)

/* ---- pages ---- */

static void
assert_zeroed_and_writable(unsigned char *p, size_t size)
{
    cr_assert_eq(zwt_check_zero(p, size), SIZE_MAX, "mapped byte %zu of %zu is not zero",
                 zwt_check_zero(p, size), size);
    memset(p, 0xA5, size);
    cr_assert(p[0] == 0xA5 && p[size - 1] == 0xA5);
}

Test(raw_door, map_returns_zeroed_pages_aligned_as_asked)
{
    zw_raw *raw = zw_raw_new(NULL);
    cr_assert_not_null(raw);
    static const struct {
        size_t size;
        size_t align;
    } cases[] = {
        {4 * KIB, 0},           {4 * KIB, 4 * KIB},       {100, 0},
        {64 * KIB, 64 * KIB},   {ZWT_MIB, ZWT_MIB},       {3 * ZWT_MIB, ZWT_MIB},
        {ZWT_MIB, 2 * ZWT_MIB}, {128 * KIB, 8 * ZWT_MIB},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t size = cases[i].size;
        size_t align = cases[i].align < 4096 ? 4096 : cases[i].align;
        unsigned char *p = zw_raw_map(raw, size, cases[i].align);
        cr_assert_not_null(p, "map(%zu, %zu) failed", size, cases[i].align);
        cr_assert_eq((uintptr_t)p % align, 0, "map(%zu, %zu) = %p", size, cases[i].align, p);
        assert_zeroed_and_writable(p, size);
        zw_raw_unmap(raw, p, size);
    }
    zw_raw_destroy(raw);
}

Test(raw_door, many_arena_sized_maps_are_all_aligned_and_distinct)
{
    /* After the first unaligned answer the kernel tends to hand out aligned ones: map enough
     * that both ways of getting an aligned mapping are taken. */
    enum { N = 24 };
    zw_raw *raw = zw_raw_new(NULL);
    unsigned char *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = zw_raw_map(raw, ZWT_MIB, ZWT_MIB);
        cr_assert_not_null(p[i]);
        cr_assert_eq((uintptr_t)p[i] % ZWT_MIB, 0, "arena %d at %p", i, p[i]);
        cr_assert_eq(p[i][0] | p[i][ZWT_MIB - 1], 0);
        p[i][0] = (unsigned char)i;
        p[i][ZWT_MIB - 1] = (unsigned char)i;
    }
    for (int i = 0; i < N; i++) {
        cr_assert(p[i][0] == i && p[i][ZWT_MIB - 1] == i, "mapping %d overlaps another", i);
        zw_raw_unmap(raw, p[i], ZWT_MIB);
    }
    assert_stats(raw, 0, N * ZWT_MIB, N, N, 0, N, 0);
    zw_raw_destroy(raw);
}

Test(raw_door, discarded_pages_stay_mapped_and_read_zero)
{
    zw_raw *raw = zw_raw_new(NULL);
    unsigned char *p = zw_raw_map(raw, 64 * KIB, 0);
    memset(p, 0x5A, 64 * KIB);
    zw_raw_discard(raw, p + 16 * KIB, 32 * KIB);
    /* anonymous private pages come back as zeros on Linux; the rest is untouched */
    cr_assert_eq(p[0], 0x5A);
    cr_assert_eq(p[16 * KIB - 1], 0x5A);
    cr_assert_eq(zwt_check_zero(p + 16 * KIB, 32 * KIB), SIZE_MAX);
    cr_assert_eq(p[48 * KIB], 0x5A);
    p[20 * KIB] = 1; /* still mapped and writable */
    assert_stats(raw, 64 * KIB, 64 * KIB, 1, 0, 0, 1, 0);
    zw_raw_unmap(raw, p, 64 * KIB);
    zw_raw_destroy(raw);
}

/* ---- counters ---- */

Test(raw_door, counters_are_exact_after_each_call)
{
    zw_raw *raw = zw_raw_new(NULL);
    assert_stats(raw, 0, 0, 0, 0, 0, 0, 0);

    void *a = zw_raw_map(raw, 64 * KIB, 0);
    assert_stats(raw, 64 * KIB, 64 * KIB, 1, 0, 0, 1, 0);
    void *b = zw_raw_map(raw, ZWT_MIB, ZWT_MIB);
    assert_stats(raw, 64 * KIB + ZWT_MIB, 64 * KIB + ZWT_MIB, 2, 0, 0, 2, 0);
    zw_raw_unmap(raw, a, 64 * KIB);
    assert_stats(raw, ZWT_MIB, 64 * KIB + ZWT_MIB, 2, 1, 0, 2, 0);
    void *c = zw_raw_map(raw, 32 * KIB, 0); /* below the peak: the peak stays */
    assert_stats(raw, ZWT_MIB + 32 * KIB, 64 * KIB + ZWT_MIB, 3, 1, 0, 3, 0);
    void *d = zw_raw_map(raw, 64 * KIB, 0); /* above it: a new peak */
    assert_stats(raw, ZWT_MIB + 96 * KIB, ZWT_MIB + 96 * KIB, 4, 1, 0, 4, 0);
    zw_raw_unmap(raw, b, ZWT_MIB);
    zw_raw_unmap(raw, c, 32 * KIB);
    zw_raw_unmap(raw, d, 64 * KIB);
    assert_stats(raw, 0, ZWT_MIB + 96 * KIB, 4, 4, 0, 4, 0);

    /* blocks: malloc, calloc and realloc(NULL) add one; realloc(p) and discard change none */
    void *m = zw_raw_malloc(raw, 100);
    assert_stats(raw, 0, ZWT_MIB + 96 * KIB, 4, 4, 1, 5, 0);
    void *z = zw_raw_calloc(raw, 10, 10);
    assert_stats(raw, 0, ZWT_MIB + 96 * KIB, 4, 4, 2, 6, 0);
    void *r = zw_raw_realloc(raw, NULL, 50);
    assert_stats(raw, 0, ZWT_MIB + 96 * KIB, 4, 4, 3, 7, 0);
    cr_assert(m != NULL && z != NULL && r != NULL);
    r = zw_raw_realloc(raw, r, 5000);
    cr_assert_not_null(r);
    assert_stats(raw, 0, ZWT_MIB + 96 * KIB, 4, 4, 3, 8, 0);
    zw_raw_free(raw, m);
    zw_raw_free(raw, NULL); /* nothing: not a request, not a block */
    assert_stats(raw, 0, ZWT_MIB + 96 * KIB, 4, 4, 2, 8, 0);
    zw_raw_free(raw, z);
    zw_raw_free(raw, r);
    assert_stats(raw, 0, ZWT_MIB + 96 * KIB, 4, 4, 0, 8, 0);
    zw_raw_destroy(raw);
}

Test(raw_door, blocks_behave_as_the_c_library)
{
    zw_raw *raw = zw_raw_new(NULL);
    unsigned char *z = zw_raw_calloc(raw, 1000, 7);
    cr_assert_not_null(z);
    cr_assert_eq(zwt_check_zero(z, 7000), SIZE_MAX);
    unsigned char *p = zw_raw_malloc(raw, 300);
    zwt_fill(p, 300, 42);
    p = zw_raw_realloc(raw, p, 100000);
    cr_assert_not_null(p);
    cr_assert_eq(zwt_check(p, 300, 42), SIZE_MAX, "realloc lost the block's bytes");
    p = zw_raw_realloc(raw, p, 17);
    cr_assert_eq(zwt_check(p, 17, 42), SIZE_MAX);
    zw_raw_free(raw, p);
    zw_raw_free(raw, z);
    assert_stats(raw, 0, 0, 0, 0, 0, 4, 0);
    zw_raw_destroy(raw);
}

Test(raw_door, refused_map_is_enomem_and_counted_as_a_request_only)
{
    zw_raw *raw = zw_raw_new(NULL);
    errno = 0;
    /* more address space than any machine has: the kernel refuses it */
    void *p = zw_raw_map(raw, (size_t)1 << 60, 0);
    cr_assert_null(p);
    cr_assert_eq(errno, ENOMEM);
    assert_stats(raw, 0, 0, 0, 0, 0, 1, 0);
    cr_assert(!zw_raw_fault_fired(raw), "a real failure is not an injected one");
    zw_raw_destroy(raw);
}

/* True if no page of [p, p + size) is mapped (mincore fails with ENOMEM on unmapped pages). */
static bool
nothing_mapped(const void *p, size_t size)
{
    unsigned char vec;
    for (uintptr_t a = (uintptr_t)p & ~(uintptr_t)4095; a < (uintptr_t)p + size; a += 4096) {
        if (mincore((void *)a, 4096, &vec) == 0 || errno != ENOMEM)
            return false;
    }
    return true;
}

Test(raw_door, unmap_gives_back_the_whole_aligned_mapping)
{
    zw_raw *raw = zw_raw_new(NULL);
    for (int i = 0; i < 4; i++) {
        void *p = zw_raw_map(raw, ZWT_MIB, ZWT_MIB);
        zw_raw_unmap(raw, p, ZWT_MIB);
        cr_assert(nothing_mapped(p, ZWT_MIB), "pages of %p stayed mapped after unmap", p);
    }
    zw_raw_destroy(raw);
}

/* The process's mapped virtual memory in KiB (VmSize). */
static long
vm_size_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    cr_assert_not_null(f);
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "VmSize: %ld kB", &kib) == 1)
            break;
    }
    fclose(f);
    cr_assert_geq(kib, 0, "no VmSize in /proc/self/status");
    return kib;
}

/* A size that is not a multiple of the page: the over-mapping's tail must be cut at a page
 * boundary, or munmap() refuses it and ~1 MiB stays mapped, unreachable, at every call. Other
 * mappings may lie in the MiB after p (only one page was asked for), so the process's mapped
 * total is what is checked: 8 calls would leak ~8 MiB. */
Test(raw_door, map_of_a_size_not_in_pages_leaves_nothing_mapped)
{
    zw_raw *raw = zw_raw_new(NULL);
    long before = vm_size_kib();
    for (int i = 0; i < 8; i++) {
        unsigned char *p = zw_raw_map(raw, 100, ZWT_MIB);
        cr_assert_not_null(p);
        cr_assert_eq((uintptr_t)p % ZWT_MIB, 0);
        cr_assert_eq(zwt_check_zero(p, 100), SIZE_MAX);
        zw_raw_unmap(raw, p, 100);
        cr_assert(nothing_mapped(p, 4096), "the page at %p stayed mapped after unmap", p);
    }
    long after = vm_size_kib();
    cr_assert_lt(after - before, 1024, "VmSize grew by %ld KiB over 8 map+unmap pairs",
                 after - before);
    cr_assert_eq(stats_of(raw).mapped_bytes, 0);
    zw_raw_destroy(raw);
}

/* realloc(p, 0) of the C library frees p and returns NULL (glibc, and ASan's); the door must
 * not pass 0 on, or it would report a failure for a block that is gone. */
Test(raw_door, realloc_to_zero_bytes_keeps_its_contract)
{
    zw_raw *raw = zw_raw_new(NULL);
    void *p = zw_raw_malloc(raw, 16);
    cr_assert_not_null(p);
    errno = 0;
    void *q = zw_raw_realloc(raw, p, 0);
    int err = errno;
    zw_raw_stats st = stats_of(raw);
    if (q == NULL) /* p is gone: do not free it again */
        cr_assert_fail("zw_raw_realloc(p, 0) returned NULL with errno %d and counts %zu block(s): "
                       "the C library freed p, so the caller's p (\"left as it was\") dangles",
                       err, st.blocks);
    cr_assert_eq(st.blocks, 1);
    zw_raw_free(raw, q);
    cr_assert_eq(stats_of(raw).blocks, 0);
    zw_raw_destroy(raw);
}

/* ---- fault injection ---- */

Test(raw_door, fail_nth_zero_fails_the_next_request_once)
{
    zw_raw *raw = zw_raw_new(NULL);
    cr_assert(!zw_raw_fault_fired(raw));
    zw_raw_fail_nth(raw, 0);
    cr_assert(!zw_raw_fault_fired(raw), "armed is not fired");
    errno = 0;
    cr_assert_null(zw_raw_malloc(raw, 10));
    cr_assert_eq(errno, ENOMEM);
    cr_assert(zw_raw_fault_fired(raw));
    assert_stats(raw, 0, 0, 0, 0, 0, 1, 1);

    void *p = zw_raw_malloc(raw, 10); /* once only */
    cr_assert_not_null(p);
    cr_assert(zw_raw_fault_fired(raw), "fired stays true until the next zw_raw_fail_nth()");
    assert_stats(raw, 0, 0, 0, 0, 1, 2, 1);
    zw_raw_free(raw, p);
    zw_raw_fail_nth(raw, -1);
    cr_assert(!zw_raw_fault_fired(raw), "zw_raw_fail_nth() clears fired");
    zw_raw_destroy(raw);
}

Test(raw_door, fail_nth_counts_requests_of_every_kind)
{
    zw_raw *raw = zw_raw_new(NULL);
    zw_raw_fail_nth(raw, 3);
    void *m = zw_raw_map(raw, 4096, 0); /* request 0 */
    void *a = zw_raw_malloc(raw, 8);    /* 1 */
    void *c = zw_raw_calloc(raw, 2, 8); /* 2 */
    cr_assert(m != NULL && a != NULL && c != NULL);
    cr_assert(!zw_raw_fault_fired(raw));
    errno = 0;
    void *r = zw_raw_realloc(raw, a, 4096); /* 3: fails, `a` stays */
    cr_assert_null(r);
    cr_assert_eq(errno, ENOMEM);
    cr_assert(zw_raw_fault_fired(raw));
    void *m2 = zw_raw_map(raw, 4096, 0); /* 4: passes */
    cr_assert_not_null(m2);
    assert_stats(raw, 8192, 8192, 2, 0, 2, 5, 1);
    zw_raw_free(raw, a);
    zw_raw_free(raw, c);
    zw_raw_unmap(raw, m, 4096);
    zw_raw_unmap(raw, m2, 4096);
    zw_raw_destroy(raw);
}

Test(raw_door, each_kind_of_request_can_be_failed)
{
    zw_raw *raw = zw_raw_new(NULL);
    for (int kind = 0; kind < 4; kind++) {
        unsigned char *old = zw_raw_malloc(raw, 64);
        zwt_fill(old, 64, 7);
        zw_raw_stats before = stats_of(raw);
        zw_raw_fail_nth(raw, 0);
        errno = 0;
        void *p = kind == 0   ? zw_raw_map(raw, ZWT_MIB, ZWT_MIB)
                  : kind == 1 ? zw_raw_malloc(raw, 64)
                  : kind == 2 ? zw_raw_calloc(raw, 8, 8)
                              : zw_raw_realloc(raw, old, 1 << 20);
        cr_assert_null(p, "request kind %d was not failed", kind);
        cr_assert_eq(errno, ENOMEM, "request kind %d: errno %d", kind, errno);
        cr_assert(zw_raw_fault_fired(raw));
        zw_raw_stats after = stats_of(raw);
        cr_assert_eq(after.requests, before.requests + 1);
        cr_assert_eq(after.injected_failures, before.injected_failures + 1);
        cr_assert_eq(after.maps, before.maps);
        cr_assert_eq(after.mapped_bytes, before.mapped_bytes);
        cr_assert_eq(after.blocks, before.blocks);
        /* a failed realloc leaves the block as it was */
        cr_assert_eq(zwt_check(old, 64, 7), SIZE_MAX);
        zw_raw_free(raw, old);
    }
    assert_stats(raw, 0, 0, 0, 0, 0, 8, 4);
    zw_raw_destroy(raw);
}

Test(raw_door, disarmed_door_never_fails)
{
    zw_raw *raw = zw_raw_new(NULL);
    zw_raw_fail_nth(raw, 5);
    zw_raw_fail_nth(raw, -1);
    for (int i = 0; i < 100; i++) {
        void *p = zw_raw_malloc(raw, 16);
        cr_assert_not_null(p, "request %d failed with no fault armed", i);
        zw_raw_free(raw, p);
    }
    cr_assert(!zw_raw_fault_fired(raw));
    assert_stats(raw, 0, 0, 0, 0, 0, 100, 0);
    zw_raw_destroy(raw);
}

Test(raw_door, rearming_clears_fired_and_restarts_the_count)
{
    zw_raw *raw = zw_raw_new(NULL);
    zw_raw_fail_nth(raw, 0);
    cr_assert_null(zw_raw_malloc(raw, 1));
    cr_assert(zw_raw_fault_fired(raw));
    zw_raw_fail_nth(raw, 1);
    cr_assert(!zw_raw_fault_fired(raw));
    void *p = zw_raw_malloc(raw, 1);
    cr_assert_not_null(p);
    cr_assert(!zw_raw_fault_fired(raw));
    cr_assert_null(zw_raw_malloc(raw, 1));
    cr_assert(zw_raw_fault_fired(raw));
    zw_raw_fail_nth(raw, 2);
    zw_raw_fail_nth(raw, 0); /* the last call wins */
    cr_assert_null(zw_raw_malloc(raw, 1));
    assert_stats(raw, 0, 0, 0, 0, 1, 4, 3);
    zw_raw_free(raw, p);
    zw_raw_destroy(raw);
}

Test(raw_door, release_calls_are_not_requests_and_never_fail)
{
    zw_raw *raw = zw_raw_new(NULL);
    void *m = zw_raw_map(raw, 8192, 0);
    void *b = zw_raw_malloc(raw, 32);
    zw_raw_fail_nth(raw, 0);
    zw_raw_discard(raw, m, 4096);
    zw_raw_unmap(raw, m, 8192);
    zw_raw_free(raw, b);
    zw_raw_free(raw, NULL);
    cr_assert(!zw_raw_fault_fired(raw), "unmap, discard or free consumed the armed failure");
    assert_stats(raw, 0, 8192, 1, 1, 0, 2, 0);
    cr_assert_null(zw_raw_malloc(raw, 32), "the armed failure is still for the next request");
    assert_stats(raw, 0, 8192, 1, 1, 0, 3, 1);
    zw_raw_destroy(raw);
}

/* ---- a door on the caller's operations ---- */

/* Calls of each operation, and the context every call came with. */
typedef struct counting {
    size_t map, unmap, discard, malloc, calloc, realloc, free;
    size_t wrong_ctx; /* calls whose ctx was not this struct */
    bool refuse;      /* map and the block operations return NULL */
} counting;

static counting *current; /* the struct the test passed as ctx */

/* The counters an operation was called with; a ctx other than the test's is counted. */
static counting *
seen(void *ctx)
{
    counting *k = ctx;
    if (k != current) {
        current->wrong_ctx++;
        return current;
    }
    return k;
}

static void *
count_map(void *ctx, size_t size, size_t align)
{
    counting *k = seen(ctx);
    k->map++;
    return k->refuse ? NULL : zwt_aligned_map(size, align);
}

static void
count_unmap(void *ctx, void *p, size_t size)
{
    counting *k = seen(ctx);
    k->unmap++;
    munmap(p, size);
}

static void
count_discard(void *ctx, void *p, size_t size)
{
    counting *k = seen(ctx);
    k->discard++;
    madvise(p, size, MADV_DONTNEED);
}

static void *
count_malloc(void *ctx, size_t n)
{
    counting *k = seen(ctx);
    k->malloc++;
    return k->refuse ? NULL : malloc(n);
}

static void *
count_calloc(void *ctx, size_t nelem, size_t elsize)
{
    counting *k = seen(ctx);
    k->calloc++;
    return k->refuse ? NULL : calloc(nelem, elsize);
}

static void *
count_realloc(void *ctx, void *p, size_t n)
{
    counting *k = seen(ctx);
    k->realloc++;
    return k->refuse ? NULL : realloc(p, n);
}

static void
count_free(void *ctx, void *p)
{
    counting *k = seen(ctx);
    k->free++;
    free(p);
}

static zw_raw *
counting_door(counting *k)
{
    memset(k, 0, sizeof(*k));
    current = k;
    zw_raw_ops ops = {
        .ctx = k,
        .map = count_map,
        .unmap = count_unmap,
        .discard = count_discard,
        .malloc = count_malloc,
        .calloc = count_calloc,
        .realloc = count_realloc,
        .free = count_free,
    };
    zw_raw *raw = zw_raw_new(&ops);
    memset(&ops, 0xFF, sizeof(ops)); /* the door keeps its own copy */
    return raw;
}

#define assert_calls(k, nmap, nunmap, ndiscard, nmalloc, ncalloc, nrealloc, nfree)                 \
    do {                                                                                           \
        cr_assert_eq((k)->map, (nmap), "map called %zu times", (k)->map);                          \
        cr_assert_eq((k)->unmap, (nunmap), "unmap called %zu times", (k)->unmap);                  \
        cr_assert_eq((k)->discard, (ndiscard), "discard called %zu times", (k)->discard);          \
        cr_assert_eq((k)->malloc, (nmalloc), "malloc called %zu times", (k)->malloc);              \
        cr_assert_eq((k)->calloc, (ncalloc), "calloc called %zu times", (k)->calloc);              \
        cr_assert_eq((k)->realloc, (nrealloc), "realloc called %zu times", (k)->realloc);          \
        cr_assert_eq((k)->free, (nfree), "free called %zu times", (k)->free);                      \
        cr_assert_eq((k)->wrong_ctx, 0, "%zu calls came with another ctx", (k)->wrong_ctx);        \
    } while (0)

Test(raw_door, custom_ops_serve_every_operation_with_their_ctx)
{
    counting k;
    zw_raw *raw = counting_door(&k);
    cr_assert_not_null(raw);
    assert_calls(&k, 0, 0, 0, 0, 0, 0, 0);

    void *m = zw_raw_map(raw, ZWT_MIB, ZWT_MIB);
    cr_assert_eq((uintptr_t)m % ZWT_MIB, 0);
    zw_raw_discard(raw, m, 4096);
    void *a = zw_raw_malloc(raw, 10);
    void *c = zw_raw_calloc(raw, 3, 3);
    a = zw_raw_realloc(raw, a, 1000);
    void *r = zw_raw_realloc(raw, NULL, 5);
    assert_calls(&k, 1, 0, 1, 1, 1, 2, 0);
    zw_raw_free(raw, a);
    zw_raw_free(raw, c);
    zw_raw_free(raw, r);
    zw_raw_free(raw, NULL); /* never reaches the operation */
    zw_raw_unmap(raw, m, ZWT_MIB);
    assert_calls(&k, 1, 1, 1, 1, 1, 2, 3);
    assert_stats(raw, 0, ZWT_MIB, 1, 1, 0, 5, 0);
    zw_raw_destroy(raw);
}

Test(raw_door, injected_failure_never_calls_the_operation)
{
    counting k;
    zw_raw *raw = counting_door(&k);
    for (int kind = 0; kind < 4; kind++) {
        zw_raw_fail_nth(raw, 0);
        void *p = kind == 0   ? zw_raw_map(raw, 4096, 0)
                  : kind == 1 ? zw_raw_malloc(raw, 1)
                  : kind == 2 ? zw_raw_calloc(raw, 1, 1)
                              : zw_raw_realloc(raw, NULL, 1);
        cr_assert_null(p);
    }
    assert_calls(&k, 0, 0, 0, 0, 0, 0, 0);
    assert_stats(raw, 0, 0, 0, 0, 0, 4, 4);
    zw_raw_destroy(raw);
}

Test(raw_door, operation_returning_null_is_enomem_and_not_injected)
{
    counting k;
    zw_raw *raw = counting_door(&k);
    void *old = zw_raw_malloc(raw, 8);
    k.refuse = true;
    for (int kind = 0; kind < 4; kind++) {
        errno = 0;
        void *p = kind == 0   ? zw_raw_map(raw, 4096, 0)
                  : kind == 1 ? zw_raw_malloc(raw, 1)
                  : kind == 2 ? zw_raw_calloc(raw, 1, 1)
                              : zw_raw_realloc(raw, old, 100);
        cr_assert_null(p);
        cr_assert_eq(errno, ENOMEM, "kind %d: errno %d", kind, errno);
    }
    cr_assert(!zw_raw_fault_fired(raw));
    assert_calls(&k, 1, 0, 0, 2, 1, 1, 0);
    assert_stats(raw, 0, 0, 0, 0, 1, 5, 0);
    k.refuse = false;
    zw_raw_free(raw, old);
    zw_raw_destroy(raw);
}

Test(raw_door, heap_takes_every_page_and_big_block_through_its_door)
{
    counting k;
    zw_raw *raw = counting_door(&k);
    zw_heap *h = zwt_heap(raw);
    cr_assert_not_null(h);
    cr_assert_eq(zw_heap_raw(h), raw);
    cr_assert_eq(k.map, 1, "the heap's own pages come through the door");

    void *small = zw_heap_malloc(h, 100); /* an arena, its record page, a map leaf */
    cr_assert_not_null(small);
    size_t maps = k.map;
    cr_assert(maps >= 2, "no page was mapped for the first small block");
    void *big = zw_heap_malloc(h, 5000);
    void *zero = zw_heap_calloc(h, 1000, 2);
    big = zw_heap_realloc(h, big, 9000);
    cr_assert(big != NULL && zero != NULL);
    assert_calls(&k, maps, 0, 0, 1, 1, 1, 0);
    zw_heap_free(h, big);
    zw_heap_free(h, zero);
    zw_heap_free(h, small);
    assert_calls(&k, maps, 0, 0, 1, 1, 1, 2);
    zw_raw_stats st = stats_of(raw);
    cr_assert_eq(st.maps, maps);
    zw_heap_destroy(h);
    assert_calls(&k, maps, maps, 0, 1, 1, 1, 2);
    st = stats_of(raw);
    cr_assert_eq(st.mapped_bytes, 0, "the heap left %zu bytes mapped", st.mapped_bytes);
    cr_assert_eq(st.blocks, 0);
    zw_raw_destroy(raw);
}
