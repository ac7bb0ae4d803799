/* tests/mem/test_heap.c - the malloc family of one heap at its edges, in the manner of mimalloc's
 * test/api.c: zero and impossible sizes, alignment, usable sizes, reuse order, calloc, CPython's
 * realloc rules (reference/cpython-memory.md 1.6), ownership, exact accounting, destroy, and
 * misuse a release heap still catches. Heaps ignore ZW_MALLOC, so the environment cannot turn
 * them into debug heaps with another layout. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zerowaste/zerowaste.h>

#include "zw_debug_test.h"

#define NBIG 6
static const size_t big_sizes[NBIG] = {513, 1000, 4096, 65536, (size_t)1 << 20, (size_t)3 << 20};

/* A release heap with the default arena cache (a zeroed config would ask for no cache). */
static zw_heap *
release_heap(void)
{
    zw_heap *h = zw_heap_new_ex(&(zw_heap_config){.flags = ZW_HEAP_IGNORE_ENV, .arena_cache = 0});
    cr_assert_not_null(h, "cannot create a heap");
    return h;
}

/* The class size a small request gets: 16 * ceil(n / 16), and 16 for 0. */
static size_t
class_of(size_t n)
{
    return n == 0 ? 16 : (n + 15) / 16 * 16;
}

/* What zw_heap_usable_size() reports for a small block of n bytes: its class size, or in ASan
 * builds the n bytes that are addressable there (mem.h). */
static size_t
usable_of(size_t n)
{
    return ZWT_ASAN ? n : class_of(n);
}

static uintptr_t
pool_of(const void *p)
{
    return (uintptr_t)p & ~(uintptr_t)(ZW_MEM_POOL_SIZE - 1);
}

static void
fill(void *p, size_t n, unsigned seed)
{
    unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(seed * 31 + i * 7 + 1);
}

/* The first index where `p` does not hold fill(p, n, seed)'s bytes, or n. */
static size_t
first_wrong(const void *p, size_t n, unsigned seed)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        if (b[i] != (unsigned char)(seed * 31 + i * 7 + 1))
            return i;
    }
    return n;
}

static size_t
first_nonzero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        if (b[i] != 0)
            return i;
    }
    return n;
}

/* ---- free(NULL), malloc(0) ---- */

Test(mem_heap, free_of_null_does_nothing)
{
    zw_heap *h = release_heap();
    void *keep = zw_heap_malloc(h, 24);
    zw_heap_free(h, NULL);
    zw_heap_free(h, NULL);
    cr_assert_eq(zw_heap_allocated_blocks(h), 1);
    cr_assert_eq(zw_heap_allocated_bytes(h), 32);
    cr_assert_neq(zw_heap_malloc(h, 24), keep, "the live block was handed out again");
    zw_heap_destroy(h);
}

Test(mem_heap, malloc_of_zero_returns_distinct_freeable_pointers)
{
    zw_heap *h = release_heap();
    void *a = zw_heap_malloc(h, 0);
    void *b = zw_heap_malloc(h, 0);
    cr_assert_not_null(a);
    cr_assert_not_null(b);
    cr_assert_neq(a, b, "malloc(0) returned the same pointer twice");
    cr_assert_eq(zw_heap_usable_size(h, a), usable_of(0),
                 "malloc(0) is served by the 16-byte class (ASan: nothing addressable)");
    cr_assert_eq(zw_heap_allocated_blocks(h), 2);
    zw_heap_free(h, a);
    zw_heap_free(h, b);
    cr_assert_eq(zw_heap_allocated_blocks(h), 0);
    cr_assert_eq(zw_heap_allocated_bytes(h), 0);
    zw_heap_destroy(h);
}

/* ---- sizes, alignment, overlap ---- */

Test(mem_heap, every_small_size_gets_an_aligned_block_of_its_class)
{
    zw_heap *h = release_heap();
    for (size_t n = 0; n <= ZW_MEM_SMALL_MAX; n++) {
        void *p = zw_heap_malloc(h, n);
        cr_assert_not_null(p, "malloc(%zu)", n);
        cr_assert_eq((uintptr_t)p % ZW_MEM_ALIGNMENT, 0, "malloc(%zu) = %p is misaligned", n, p);
        cr_assert_eq(zw_heap_usable_size(h, p), usable_of(n), "usable size of malloc(%zu)", n);
        cr_assert(zw_heap_owns(h, p), "malloc(%zu) is a small block of the heap", n);
    }
    zw_heap_destroy(h);
}

Test(mem_heap, every_big_size_gets_an_aligned_block_of_exactly_its_size)
{
    zw_heap *h = release_heap();
    for (size_t n = ZW_MEM_SMALL_MAX + 1; n <= 600; n++) {
        void *p = zw_heap_malloc(h, n);
        cr_assert_not_null(p, "malloc(%zu)", n);
        cr_assert_eq((uintptr_t)p % ZW_MEM_ALIGNMENT, 0, "malloc(%zu) = %p is misaligned", n, p);
        cr_assert_eq(zw_heap_usable_size(h, p), n, "usable size of malloc(%zu)", n);
        cr_assert_not(zw_heap_owns(h, p), "malloc(%zu) is a big block, not in an arena", n);
    }
    for (int i = 0; i < NBIG; i++) {
        void *p = zw_heap_malloc(h, big_sizes[i]);
        cr_assert_not_null(p, "malloc(%zu)", big_sizes[i]);
        cr_assert_eq((uintptr_t)p % ZW_MEM_ALIGNMENT, 0, "malloc(%zu) is misaligned", big_sizes[i]);
        cr_assert_eq(zw_heap_usable_size(h, p), big_sizes[i]);
        zw_heap_free(h, p);
    }
    zw_heap_destroy(h);
}

typedef struct span {
    uintptr_t start;
    size_t len;
} span;

static int
by_start(const void *a, const void *b)
{
    const span *x = a;
    const span *y = b;
    return (x->start > y->start) - (x->start < y->start);
}

Test(mem_heap, live_blocks_do_not_overlap)
{
    enum { NSMALL = 601, N = NSMALL + NBIG };
    zw_heap *h = release_heap();
    void *ptr[N];
    size_t len[N];
    span spans[N];
    for (size_t i = 0; i < N; i++) {
        len[i] = i < NSMALL ? i : big_sizes[i - NSMALL];
        ptr[i] = zw_heap_malloc(h, len[i]);
        cr_assert_not_null(ptr[i], "malloc(%zu)", len[i]);
        spans[i] = (span){(uintptr_t)ptr[i], zw_heap_usable_size(h, ptr[i])};
        fill(ptr[i], len[i], (unsigned)i);
    }
    for (size_t i = 0; i < N; i++) {
        size_t bad = first_wrong(ptr[i], len[i], (unsigned)i);
        cr_assert_eq(bad, len[i], "block %zu (%p) was overwritten at byte %zu", i, ptr[i], bad);
    }
    qsort(spans, N, sizeof(spans[0]), by_start);
    for (size_t i = 1; i < N; i++)
        cr_assert(spans[i - 1].start + spans[i - 1].len <= spans[i].start,
                  "[%#zx, +%zu) overlaps the block at %#zx", (size_t)spans[i - 1].start,
                  spans[i - 1].len, (size_t)spans[i].start);
    for (size_t i = 0; i < N; i++)
        zw_heap_free(h, ptr[i]);
    cr_assert_eq(zw_heap_allocated_blocks(h), 0);
    zw_heap_destroy(h);
}

/* mem.h: "bytes usable at p": the size class for a small block; in ASan builds the bytes
 * requested, which are all that is addressable there. Either way all of them can be written. */
Test(mem_heap, whole_usable_size_of_every_block_can_be_written)
{
    enum { N = 601 };
    zw_heap *h = release_heap();
    void *ptr[N];
    for (size_t n = 0; n < N; n++) {
        ptr[n] = zw_heap_malloc(h, n);
        fill(ptr[n], zw_heap_usable_size(h, ptr[n]), (unsigned)n);
    }
    for (size_t n = 0; n < N; n++) {
        size_t usable = zw_heap_usable_size(h, ptr[n]);
        cr_assert_eq(first_wrong(ptr[n], usable, (unsigned)n), usable,
                     "malloc(%zu): a neighbour wrote into its %zu usable bytes", n, usable);
        zw_heap_free(h, ptr[n]);
    }
    zw_heap_destroy(h);
}

/* ---- reuse order ---- */

Test(mem_heap, freed_small_block_is_reused_first)
{
    zw_heap *h = release_heap();
    void *anchor = zw_heap_malloc(h, 40); /* keeps the pool in use */
    void *a = zw_heap_malloc(h, 40);
    void *b = zw_heap_malloc(h, 48);
    void *other = zw_heap_malloc(h, 100);
    zw_heap_free(h, a);
    zw_heap_free(h, b);
    cr_assert_neq(zw_heap_malloc(h, 16), b, "a freed block serves its own class only");
    cr_assert_eq(zw_heap_malloc(h, 33), b, "the last block freed is handed out first");
    cr_assert_eq(zw_heap_malloc(h, 48), a, "then the one freed before it");
    zw_heap_free(h, other);
    cr_assert_eq(zw_heap_malloc(h, 97), other);
    (void)anchor;
    zw_heap_destroy(h);
}

Test(mem_heap, block_freed_from_a_full_pool_is_handed_out_next)
{
    zw_heap *h = release_heap();
    enum { MAX = 64 };
    void *p[MAX];
    int n = 0;
    /* 512-byte blocks: 32 fit in a pool (headers live outside the pools); fill the first and start a second one. */
    do {
        cr_assert_lt(n, MAX);
        p[n] = zw_heap_malloc(h, 512);
        n++;
    } while (pool_of(p[n - 1]) == pool_of(p[0]));
    cr_assert_eq(n - 1, (int)(ZW_MEM_POOL_SIZE / 512), "blocks per pool");
    zw_heap_free(h, p[7]); /* the first pool is partial again and goes first (CPython) */
    cr_assert_eq(zw_heap_malloc(h, 512), p[7]);
    zw_heap_destroy(h);
}

Test(mem_heap, lone_emptied_pool_stays_its_class_spare)
{
    zw_heap *h = release_heap();
    void *p = zw_heap_malloc(h, 16);
    zw_heap_free(h, p); /* the class's only pool stays with it (docs/mem.md, spares) */
    void *q = zw_heap_malloc(h, 512);
    cr_assert_neq(pool_of(q), pool_of(p), "another class took the 16-byte class's spare");
    cr_assert_eq(zw_heap_malloc(h, 16), p, "the spare serves its class again");
    zw_heap_destroy(h);
}

Test(mem_heap, emptied_pool_is_reused_for_another_class)
{
    enum { PER16 = ZW_MEM_POOL_SIZE / 16, NA = 3 * PER16 + 1 };
    enum { PER256 = ZW_MEM_POOL_SIZE / 256, NB = 3 * PER256 };
    zw_raw *raw = zw_raw_new(NULL);
    zw_heap *h = zw_heap_new_ex(
        &(zw_heap_config){.flags = ZW_HEAP_IGNORE_ENV, .raw = raw, .arena_cache = 0});
    /* Three full pools of 16-byte blocks and one more block in a fourth pool, which keeps the
     * class list from being left with a lone (spare) pool. */
    void **a = malloc(NA * sizeof(*a));
    for (int i = 0; i < NA; i++)
        a[i] = zw_heap_malloc(h, 16);
    uintptr_t pools[3] = {pool_of(a[0]), pool_of(a[PER16]), pool_of(a[2 * PER16])};
    cr_assert(pools[0] != pools[1] && pools[1] != pools[2] && pools[0] != pools[2]);
    cr_assert_eq(pool_of(a[PER16 - 1]), pools[0], "%d blocks fill a pool", PER16);
    cr_assert_neq(pool_of(a[NA - 1]), pools[2], "the last block starts a fourth pool");
    zw_raw_stats before;
    zw_raw_get_stats(raw, &before);
    for (int i = 0; i < NA - 1; i++)
        zw_heap_free(h, a[i]); /* the three pools are emptied and go back to their arena */
    for (int i = 0; i < NB; i++) {
        void *b = zw_heap_malloc(h, 256);
        uintptr_t pl = pool_of(b);
        cr_assert(pl == pools[0] || pl == pools[1] || pl == pools[2],
                  "256-byte block %d is not in a pool the 16-byte class emptied", i);
        cr_assert_eq(zw_heap_usable_size(h, b), usable_of(256));
    }
    zw_raw_stats after;
    zw_raw_get_stats(raw, &after);
    cr_assert_eq(after.maps, before.maps, "no new pages were needed");
    free(a);
    zw_heap_destroy(h);
    zw_raw_destroy(raw);
}

/* ---- calloc ---- */

Test(mem_heap, calloc_zeroes_a_reused_dirty_small_block)
{
    zw_heap *h = release_heap();
    for (size_t n = 1; n <= ZW_MEM_SMALL_MAX; n += 37) {
        void *dirty = zw_heap_malloc(h, n);
        memset(dirty, 0xAA, n);
        zw_heap_free(h, dirty);
        unsigned char *p = zw_heap_calloc(h, 1, n);
        cr_assert_eq(p, dirty, "calloc(1, %zu) reuses the freed block", n);
        cr_assert_eq(first_nonzero(p, n), n, "calloc(1, %zu) left byte %zu dirty", n,
                     first_nonzero(p, n));
        zw_heap_free(h, p);
    }
    zw_heap_destroy(h);
}

Test(mem_heap, calloc_zeroes_a_big_block_after_dirty_ones)
{
    zw_heap *h = release_heap();
    for (int i = 0; i < NBIG; i++) {
        size_t n = big_sizes[i];
        void *dirty = zw_heap_malloc(h, n);
        memset(dirty, 0xAA, n);
        zw_heap_free(h, dirty);
        unsigned char *p = zw_heap_calloc(h, n, 1);
        cr_assert_not_null(p);
        cr_assert_eq(first_nonzero(p, n), n, "calloc of %zu bytes left a byte dirty", n);
        cr_assert_eq(zw_heap_usable_size(h, p), n);
        zw_heap_free(h, p);
    }
    zw_heap_destroy(h);
}

Test(mem_heap, calloc_of_zero_elements_returns_a_block)
{
    zw_heap *h = release_heap();
    void *a = zw_heap_calloc(h, 0, 8);
    void *b = zw_heap_calloc(h, 8, 0);
    cr_assert_not_null(a);
    cr_assert_not_null(b);
    cr_assert_neq(a, b);
    zw_heap_free(h, a);
    zw_heap_free(h, b);
    zw_heap_destroy(h);
}

Test(mem_heap, calloc_overflow_fails_with_enomem)
{
    static const size_t pairs[][2] = {{SIZE_MAX, 2},
                                      {2, SIZE_MAX},
                                      {SIZE_MAX / 2 + 1, 2},
                                      {(size_t)1 << 32, (size_t)1 << 32},
                                      {SIZE_MAX, SIZE_MAX}};
    zw_heap *h = release_heap();
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        errno = 0;
        void *p = zw_heap_calloc(h, pairs[i][0], pairs[i][1]);
        cr_assert_null(p, "calloc(%zu, %zu) overflows", pairs[i][0], pairs[i][1]);
        cr_assert_eq(errno, ENOMEM, "calloc(%zu, %zu): errno %d", pairs[i][0], pairs[i][1], errno);
    }
    cr_assert_eq(zw_heap_allocated_blocks(h), 0);
    zw_heap_destroy(h);
}

/* ---- impossible sizes ---- */

Test(mem_heap, malloc_of_size_max_fails_with_enomem)
{
    zw_heap *h = release_heap();
    static const size_t sizes[] = {SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 31};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        errno = 0;
        cr_assert_null(zw_heap_malloc(h, sizes[i]), "malloc(%zu)", sizes[i]);
        cr_assert_eq(errno, ENOMEM);
    }
    cr_assert_eq(zw_heap_allocated_blocks(h), 0);
    cr_assert_eq(zw_heap_allocated_bytes(h), 0);
    zw_heap_destroy(h);
}

Test(mem_heap, realloc_to_size_max_fails_and_keeps_the_block)
{
    zw_heap *h = release_heap();
    static const size_t sizes[] = {10, 512, 513, 5000};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t n = sizes[i];
        void *p = zw_heap_malloc(h, n);
        fill(p, n, 9);
        size_t usable = zw_heap_usable_size(h, p);
        size_t bytes = zw_heap_allocated_bytes(h);
        errno = 0;
        cr_assert_null(zw_heap_realloc(h, p, SIZE_MAX), "realloc(p of %zu, SIZE_MAX)", n);
        cr_assert_eq(errno, ENOMEM);
        cr_assert_eq(first_wrong(p, n, 9), n, "the block of %zu bytes was changed", n);
        cr_assert_eq(zw_heap_usable_size(h, p), usable);
        cr_assert_eq(zw_heap_allocated_bytes(h), bytes);
        zw_heap_free(h, p);
    }
    cr_assert_eq(zw_heap_allocated_blocks(h), 0);
    zw_heap_destroy(h);
}

/* As CPython's entry points refuse more than PY_SSIZE_T_MAX bytes (reference 1.1), the heap
 * refuses more than PTRDIFF_MAX itself: the request never reaches the C library. */
Test(mem_heap, malloc_of_more_than_ptrdiff_max_fails_with_enomem)
{
    zw_heap *h = release_heap();
    static const size_t sizes[] = {(size_t)PTRDIFF_MAX + 1, SIZE_MAX - 32};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        errno = 0;
        cr_assert_null(zw_heap_malloc(h, sizes[i]), "malloc(%zu)", sizes[i]);
        cr_assert_eq(errno, ENOMEM);
        void *p = zw_heap_malloc(h, 10);
        errno = 0;
        cr_assert_null(zw_heap_realloc(h, p, sizes[i]), "realloc(p, %zu)", sizes[i]);
        cr_assert_eq(errno, ENOMEM);
        zw_heap_free(h, p);
    }
    cr_assert_eq(zw_heap_allocated_blocks(h), 0);
    zw_heap_destroy(h);
}

/* ---- realloc ---- */

Test(mem_heap, realloc_of_null_is_malloc)
{
    zw_heap *h = release_heap();
    void *p = zw_heap_realloc(h, NULL, 20);
    cr_assert_not_null(p);
    cr_assert(zw_heap_owns(h, p));
    cr_assert_eq(zw_heap_usable_size(h, p), usable_of(20));
    void *q = zw_heap_realloc(h, NULL, 700);
    cr_assert_not_null(q);
    cr_assert_eq(zw_heap_usable_size(h, q), 700);
    void *z = zw_heap_realloc(h, NULL, 0);
    cr_assert_not_null(z);
    cr_assert_eq(zw_heap_allocated_blocks(h), 3);
    cr_assert_eq(zw_heap_allocated_bytes(h), 32 + 700 + 16);
    zw_heap_free(h, p);
    zw_heap_free(h, q);
    zw_heap_free(h, z);
    zw_heap_destroy(h);
}

Test(mem_heap, realloc_keeps_the_block_within_its_class_or_shrinking_by_under_a_quarter)
{
    zw_heap *h = release_heap();
    for (size_t s = 16; s <= ZW_MEM_SMALL_MAX; s += 16) {
        for (size_t n = 0; n <= 600; n++) {
            void *p = zw_heap_malloc(h, s);
            fill(p, s, (unsigned)n);
            void *q = zw_heap_realloc(h, p, n);
            cr_assert_not_null(q, "realloc(%zu-byte block, %zu)", s, n);
            bool keep = n <= s && 4 * n > 3 * s; /* CPython's rule */
            if (keep)
                cr_assert_eq(q, p, "realloc(%zu-byte block, %zu) must keep the block", s, n);
            else
                cr_assert_neq(q, p, "realloc(%zu-byte block, %zu) must move", s, n);
            size_t kept = n < s ? n : s;
            cr_assert_eq(first_wrong(q, kept, (unsigned)n), kept,
                         "realloc(%zu-byte block, %zu) lost byte %zu", s, n,
                         first_wrong(q, kept, (unsigned)n));
            cr_assert_geq(zw_heap_usable_size(h, q), n);
            if (!keep && n <= ZW_MEM_SMALL_MAX)
                cr_assert_eq(zw_heap_usable_size(h, q), usable_of(n), "moved to n's class");
            zw_heap_free(h, q);
        }
    }
    cr_assert_eq(zw_heap_allocated_blocks(h), 0);
    cr_assert_eq(zw_heap_allocated_bytes(h), 0);
    zw_heap_destroy(h);
}

Test(mem_heap, realloc_to_zero_returns_a_valid_block)
{
    zw_heap *h = release_heap();
    void *small = zw_heap_malloc(h, 100);
    void *big = zw_heap_malloc(h, 1000);
    void *s0 = zw_heap_realloc(h, small, 0);
    void *b0 = zw_heap_realloc(h, big, 0);
    cr_assert_not_null(s0, "realloc(p, 0) is not a free");
    cr_assert_not_null(b0, "realloc(p, 0) is not a free");
    cr_assert_eq(zw_heap_allocated_blocks(h), 2);
    cr_assert_eq(zw_heap_usable_size(h, s0), usable_of(0));
    cr_assert_eq(zw_heap_usable_size(h, b0), 0, "a big block stays big, even at 0 bytes");
    zw_heap_free(h, s0);
    zw_heap_free(h, b0);
    cr_assert_eq(zw_heap_allocated_blocks(h), 0);
    cr_assert_eq(zw_heap_allocated_bytes(h), 0);
    zw_heap_destroy(h);
}

Test(mem_heap, small_block_grown_past_512_bytes_becomes_big)
{
    zw_heap *h = release_heap();
    void *p = zw_heap_malloc(h, 300);
    fill(p, 300, 3);
    void *q = zw_heap_realloc(h, p, 5000);
    cr_assert_not_null(q);
    cr_assert_not(zw_heap_owns(h, q));
    cr_assert_eq(zw_heap_usable_size(h, q), 5000);
    cr_assert_eq(first_wrong(q, 300, 3), 300, "the 300 old bytes were copied");
    cr_assert_eq(zw_heap_allocated_blocks(h), 1);
    cr_assert_eq(zw_heap_allocated_bytes(h), 5000);
    zw_heap_free(h, q);
    zw_heap_destroy(h);
}

Test(mem_heap, big_block_stays_big_when_shrunk_under_512_bytes)
{
    zw_heap *h = release_heap();
    void *p = zw_heap_malloc(h, 4000);
    fill(p, 4000, 4);
    void *q = zw_heap_realloc(h, p, 2000);
    cr_assert_eq(first_wrong(q, 2000, 4), 2000);
    void *r = zw_heap_realloc(h, q, 100);
    cr_assert_not_null(r);
    cr_assert_not(zw_heap_owns(h, r), "a big block is never migrated into a pool (CPython)");
    cr_assert_eq(zw_heap_usable_size(h, r), 100, "a big block's usable size is its request");
    cr_assert_eq(first_wrong(r, 100, 4), 100);
    cr_assert_eq(zw_heap_allocated_blocks(h), 1);
    cr_assert_eq(zw_heap_allocated_bytes(h), 100);
    void *s = zw_heap_realloc(h, r, 30000);
    cr_assert_eq(first_wrong(s, 100, 4), 100, "growing a big block keeps its bytes");
    cr_assert_eq(zw_heap_allocated_bytes(h), 30000);
    zw_heap_free(h, s);
    cr_assert_eq(zw_heap_allocated_bytes(h), 0);
    zw_heap_destroy(h);
}

/* ---- ownership ---- */

static char not_a_block[64];

Test(mem_heap, owns_only_its_own_small_blocks)
{
    zw_heap *h = release_heap();
    zw_heap *other = release_heap();
    int on_stack = 0;
    void *small = zw_heap_malloc(h, 64);
    void *zero = zw_heap_malloc(h, 0);
    void *big = zw_heap_malloc(h, 1000);
    void *theirs = zw_heap_malloc(other, 64);
    cr_assert(zw_heap_owns(h, small));
    cr_assert(zw_heap_owns(h, zero));
    cr_assert_not(zw_heap_owns(h, big), "big blocks are not looked up");
    cr_assert_not(zw_heap_owns(h, &on_stack));
    cr_assert_not(zw_heap_owns(h, not_a_block));
    cr_assert_not(zw_heap_owns(h, NULL));
    cr_assert_not(zw_heap_owns(h, theirs), "a block of another heap");
    cr_assert(zw_heap_owns(other, theirs));
    cr_assert_not(zw_heap_owns(other, small));
    zw_heap_free(h, small);
    zw_heap_free(h, zero);
    zw_heap_free(h, big);
    zw_heap_free(other, theirs);
    zw_heap_destroy(other);
    zw_heap_destroy(h);
}

/* ---- accounting ---- */

Test(mem_heap, counters_move_by_one_block_and_its_class_or_requested_size)
{
    zw_heap *h = release_heap();
    void *keep = zw_heap_malloc(h, 1); /* start from a non-zero baseline */
    for (size_t n = 0; n <= 2000; n += (n < 600 ? 1 : 97)) {
        size_t blocks = zw_heap_allocated_blocks(h);
        size_t bytes = zw_heap_allocated_bytes(h);
        size_t expect = n <= ZW_MEM_SMALL_MAX ? class_of(n) : n;
        void *p = n % 2 ? zw_heap_malloc(h, n) : zw_heap_calloc(h, 1, n);
        cr_assert_eq(zw_heap_allocated_blocks(h), blocks + 1, "after malloc(%zu)", n);
        cr_assert_eq(zw_heap_allocated_bytes(h), bytes + expect, "after malloc(%zu)", n);
        zw_heap_free(h, p);
        cr_assert_eq(zw_heap_allocated_blocks(h), blocks, "after free of %zu bytes", n);
        cr_assert_eq(zw_heap_allocated_bytes(h), bytes, "after free of %zu bytes", n);
    }
    /* A moving realloc swaps one block for another: same count, the new size. */
    void *p = zw_heap_malloc(h, 100);
    size_t blocks = zw_heap_allocated_blocks(h);
    size_t bytes = zw_heap_allocated_bytes(h);
    p = zw_heap_realloc(h, p, 300);
    cr_assert_eq(zw_heap_allocated_blocks(h), blocks);
    cr_assert_eq(zw_heap_allocated_bytes(h), bytes - 112 + 304);
    p = zw_heap_realloc(h, p, 900);
    cr_assert_eq(zw_heap_allocated_blocks(h), blocks);
    cr_assert_eq(zw_heap_allocated_bytes(h), bytes - 112 + 900);
    zw_heap_free(h, p);
    zw_heap_free(h, keep);
    cr_assert_eq(zw_heap_allocated_blocks(h), 0);
    cr_assert_eq(zw_heap_allocated_bytes(h), 0);
    zw_heap_destroy(h);
}

/* ---- heaps ---- */

Test(mem_heap, destroy_gives_back_every_byte_of_its_raw_door)
{
    zw_raw *raw = zw_raw_new(NULL);
    cr_assert_not_null(raw);
    zw_heap *h = zw_heap_new_ex(
        &(zw_heap_config){.flags = ZW_HEAP_IGNORE_ENV, .raw = raw, .arena_cache = 0});
    cr_assert_eq(zw_heap_raw(h), raw);
    /* 2.6 MiB of small blocks live in every class (three arenas), some freed, and big blocks. */
    for (size_t i = 0; i < 15000; i++) {
        void *p = zw_heap_malloc(h, 1 + (i * 67) % ZW_MEM_SMALL_MAX);
        cr_assert_not_null(p);
        if (i % 3 == 0)
            zw_heap_free(h, p);
    }
    for (size_t i = 0; i < 20; i++)
        cr_assert_not_null(zw_heap_malloc(h, 600 + i * 1000));
    zw_raw_stats st;
    zw_raw_get_stats(raw, &st);
    cr_assert_geq(st.mapped_bytes, 3 * ZW_MEM_ARENA_SIZE);
    cr_assert_eq(st.blocks, 20);
    zw_heap_destroy(h);
    zw_raw_get_stats(raw, &st);
    cr_assert_eq(st.mapped_bytes, 0, "%zu bytes still mapped after destroy", st.mapped_bytes);
    cr_assert_eq(st.blocks, 0, "%zu big blocks still allocated after destroy", st.blocks);
    cr_assert_eq(st.maps, st.unmaps, "each mapping was unmapped once");
    zw_raw_destroy(raw);
}

Test(mem_heap, destroy_finds_big_blocks_moved_by_realloc)
{
    zw_raw *raw = zw_raw_new(NULL);
    zw_heap *h = zw_heap_new_ex(
        &(zw_heap_config){.flags = ZW_HEAP_IGNORE_ENV, .raw = raw, .arena_cache = 0});
    enum { N = 8 };
    void *p[N];
    for (int i = 0; i < N; i++)
        p[i] = zw_heap_malloc(h, 600 + (size_t)i);
    /* Grow every other one far enough that the C library moves it, shrink the rest. */
    for (int i = 0; i < N; i++) {
        size_t n = i % 2 ? ((size_t)2 << 20) + (size_t)i : 520;
        p[i] = zw_heap_realloc(h, p[i], n);
        cr_assert_not_null(p[i]);
        cr_assert_eq(zw_heap_usable_size(h, p[i]), n);
    }
    zw_heap_free(h, p[3]);
    zw_heap_free(h, p[0]);
    cr_assert_eq(zw_heap_allocated_blocks(h), N - 2);
    zw_heap_destroy(h); /* six big blocks still live, some of them moved */
    zw_raw_stats st;
    zw_raw_get_stats(raw, &st);
    cr_assert_eq(st.blocks, 0, "%zu big blocks were not found by destroy", st.blocks);
    cr_assert_eq(st.mapped_bytes, 0);
    zw_raw_destroy(raw);
}

Test(mem_heap, two_heaps_are_independent)
{
    zw_heap *h1 = release_heap();
    zw_heap *h2 = release_heap();
    enum { N = 500 };
    void *a[N];
    void *b[N];
    for (int i = 0; i < N; i++) {
        a[i] = zw_heap_malloc(h1, 48);
        b[i] = zw_heap_malloc(h2, (size_t)(i % 700));
        fill(b[i], (size_t)(i % 700), (unsigned)i);
    }
    cr_assert_eq(zw_heap_allocated_blocks(h1), N);
    cr_assert_eq(zw_heap_allocated_bytes(h1), N * 48);
    cr_assert_eq(zw_heap_allocated_blocks(h2), N);
    for (int i = 0; i < N; i++)
        zw_heap_free(h1, a[i]);
    cr_assert_eq(zw_heap_allocated_blocks(h2), N, "frees in h1 do not count in h2");
    zw_heap_destroy(h1);
    for (int i = 0; i < N; i++) {
        size_t n = (size_t)(i % 700);
        cr_assert_eq(first_wrong(b[i], n, (unsigned)i), n, "h2's block %d changed", i);
        zw_heap_free(h2, b[i]);
    }
    cr_assert_eq(zw_heap_allocated_blocks(h2), 0);
    cr_assert_eq(zw_heap_allocated_bytes(h2), 0);
    zw_heap_destroy(h2);
}

/* ---- misuse a release heap still catches ---- */

/* These run in a child (zw_debug_test.h), which must not use cr_assert as release_heap() does. */
static const zw_heap_config child_config = {.flags = ZW_HEAP_IGNORE_ENV, .arena_cache = 0};

static void
free_stack_pointer(FILE *out, void *arg)
{
    (void)arg;
    _Alignas(16) unsigned char frame[128] = {0}; /* the heap reads 32 bytes before the pointer */
    zw_heap *h = zw_heap_new_ex(&child_config);
    fprintf(out, "pointer %p\n", (void *)(frame + 64));
    fflush(out);
    zw_heap_free(h, frame + 64);
}

Test(mem_heap, free_of_a_stack_pointer_aborts_naming_debug_mode)
{
    zwt_child c;
    zwt_child_run(&c, free_stack_pointer, NULL);
    zwt_assert_aborted(&c);
    void *p = NULL;
    cr_assert_eq(sscanf(c.text, "pointer %p", &p), 1);
    char want[200];
    snprintf(want, sizeof(want),
             "zw: mem: free of %p, a pointer not from this heap (run with ZW_MALLOC=debug for "
             "details)\n",
             p);
    zwt_assert_has(c.text, want);
    zwt_child_release(&c);
}

static void
realloc_other_heaps_big_block(FILE *out, void *arg)
{
    (void)arg;
    zw_heap *h = zw_heap_new_ex(&child_config);
    zw_heap *other = zw_heap_new_ex(&child_config);
    void *p = zw_heap_malloc(other, 1000);
    fprintf(out, "pointer %p\n", p);
    fflush(out);
    zw_heap_realloc(h, p, 2000);
}

Test(mem_heap, realloc_of_another_heaps_big_block_aborts)
{
    zwt_child c;
    zwt_child_run(&c, realloc_other_heaps_big_block, NULL);
    zwt_assert_aborted(&c);
    void *p = NULL;
    cr_assert_eq(sscanf(c.text, "pointer %p", &p), 1);
    char want[200];
    snprintf(want, sizeof(want), "zw: mem: realloc of %p, a pointer not from this heap", p);
    zwt_assert_has(c.text, want);
    zwt_child_release(&c);
}

/* A double free of a big block is told as one, without reading the block's memory (a block of
 * 4 MiB is mapped on its own by the C library and unmapped at its first free: reading its
 * header again would crash). */
static void
double_free_big_block(FILE *out, void *arg)
{
    size_t n = *(const size_t *)arg;
    zw_heap *h = zw_heap_new_ex(&child_config);
    void *p = zw_heap_malloc(h, n);
    fprintf(out, "pointer %p\n", p);
    fflush(out);
    zw_heap_free(h, p);
    zw_heap_free(h, p);
}

Test(mem_heap, double_free_of_a_big_block_aborts_naming_a_double_free)
{
    static const size_t sizes[] = {2000, 4 * ZWT_MIB};
    for (size_t i = 0; i < 2; i++) {
        zwt_child c;
        zwt_child_run(&c, double_free_big_block, (void *)&sizes[i]);
        zwt_assert_aborted(&c);
        void *p = NULL;
        cr_assert_eq(sscanf(c.text, "pointer %p", &p), 1);
        char want[200];
        snprintf(want, sizeof(want), "zw: mem: free of %p, a big block already freed (double free)\n",
                 p);
        zwt_assert_has(c.text, want);
        zwt_child_release(&c);
    }
}

/* The first block of another heap's arena starts its mapping: the 32 bytes before it, where a
 * big block's header would be, are not mapped, and reading them crashed. */
static void
free_other_heaps_first_block(FILE *out, void *arg)
{
    bool realloc_it = arg != NULL;
    zw_heap *h = zw_heap_new_ex(&child_config);
    zw_heap *other = zw_heap_new_ex(&child_config);
    void *p = zw_heap_malloc(other, 8);
    fprintf(out, "pointer %p page start %d\n", p, ((uintptr_t)p & 4095) == 0);
    fflush(out);
    if (realloc_it)
        zw_heap_realloc(h, p, 16);
    else
        zw_heap_free(h, p);
}

Test(mem_heap, free_or_realloc_of_the_first_block_of_another_heaps_arena_aborts)
{
    for (int i = 0; i < 2; i++) {
        zwt_child c;
        zwt_child_run(&c, free_other_heaps_first_block, i ? (void *)1 : NULL);
        zwt_assert_aborted(&c);
        void *p = NULL;
        int page_start = 0;
        cr_assert_eq(sscanf(c.text, "pointer %p page start %d", &p, &page_start), 2);
        cr_assert(page_start, "the block does not start a page: the test tests nothing");
        char want[200];
        snprintf(want, sizeof(want), "zw: mem: %s of %p, a pointer not from this heap",
                 i ? "realloc" : "free", p);
        zwt_assert_has(c.text, want);
        zwt_child_release(&c);
    }
}
