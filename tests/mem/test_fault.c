/* tests/mem/test_fault.c - out of memory, on purpose. A heap takes its memory through a door of
 * the test's own, which fails request n (zw_raw_fail_nth) for n = 0, 1, 2, ... during a
 * workload that needs arenas, map leaves, pages of arena records and big blocks, until a run
 * never reaches request n. Each failure must come back as NULL with errno = ENOMEM and leave
 * the heap exact and intact: the workload retries and goes on, every block keeps its pattern,
 * the counters match the test's, and destroying the heap gives every page and block back. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zerowaste/zerowaste.h>

#include "zw_test.h"

#define SPREAD_REGION ((uintptr_t)0x300000000000ULL) /* 48 TiB: free in ASan builds too */
#define RECORD_PAGES  2       /* pages of arena records the workload must need, at least */
#define SAFETY_LIMIT  100000L /* no workload here makes that many requests */

/* A block of the workload. Empty when p == NULL. */
typedef struct fblock {
    unsigned char *p;
    size_t size;    /* bytes requested */
    uint64_t key;   /* pattern key */
    size_t counted; /* bytes zw_heap_allocated_bytes() counts for it */
    bool big;       /* a big block (from raw), which stays big through reallocs */
    bool sparse;    /* the pattern covers the first bytes only (see mark()) */
} fblock;

/* A sparse block carries the pattern on its first 32 bytes only (one cache line): the blocks
 * that fill arenas are tens of thousands per run and there are hundreds of runs, so writing
 * and reading them whole would be most of the test's time. The first words are where a
 * free-list link or a block handed out twice would show. */
#define SPARSE_HEAD 32

static size_t
marked_bytes(const fblock *b)
{
    return b->sparse && b->size > SPARSE_HEAD ? SPARSE_HEAD : b->size;
}

static void
mark(fblock *b)
{
    zwt_fill(b->p, marked_bytes(b), b->key);
}

/* The offset of the first byte of `b` off its pattern, or SIZE_MAX. */
static size_t
check_marks(const fblock *b)
{
    return zwt_check(b->p, marked_bytes(b), b->key);
}

/* One run of the workload on a fresh heap, with request `fail_at` failing (-1: none). */
typedef struct run {
    zw_heap *h;
    zw_raw *raw;   /* the door (borrowed) */
    fblock *b;     /* the workload's blocks */
    size_t blocks; /* blocks the heap must count */
    size_t bytes;  /* bytes the heap must count */
    uint64_t next_id;
    long fail_at;      /* the request failed in this run, or -1 */
    bool debug;        /* the heap runs in debug mode */
    size_t nulls;      /* calls that returned NULL (the injected failure) */
    size_t swallowed;  /* calls that met the failure and still succeeded */
    const char *stage; /* what the workload is doing, for messages */
} run;

/* ---- the calls, each checked ---- */

/* Bytes the heap counts for a new block of `n` bytes: its class, or its size when big. A debug
 * block lies in an ordinary block of n + 48 bytes (docs/mem.md, debug mode). */
static size_t
counted(const run *r, size_t n)
{
    return zwt_counted(r->debug ? n + 48 : n);
}

/* The same after realloc(b, n), CPython's rules: a small block stays in its class when n fits
 * it and shrinks it by less than a quarter, a big block stays big; debug realloc always moves. */
static size_t
counted_after_realloc(const run *r, const fblock *b, size_t n)
{
    if (r->debug)
        return counted(r, n);
    if (b->big)
        return n;
    if (n <= b->counted && 4 * n > 3 * b->counted)
        return b->counted;
    return counted(r, n);
}

static void
check_counts(const run *r)
{
    size_t blocks = zw_heap_allocated_blocks(r->h);
    size_t bytes = zw_heap_allocated_bytes(r->h);
    if (blocks != r->blocks || bytes != r->bytes)
        cr_assert_fail("request %ld failed, %s: heap counts %zu blocks / %zu bytes, the test "
                       "%zu / %zu",
                       r->fail_at, r->stage, blocks, bytes, r->blocks, r->bytes);
}

static void
verify(const run *r, const fblock *b)
{
    size_t bad = check_marks(b);
    if (bad != SIZE_MAX)
        cr_assert_fail("request %ld failed, %s: block %p (%zu bytes) corrupted at offset %zu",
                       r->fail_at, r->stage, (void *)b->p, b->size, bad);
}

/* A call came back NULL: it must be the injected failure, reported as ENOMEM, and the heap
 * must count what it counted before. */
static void
expect_injected(run *r, bool fired_now, int err, const char *call, size_t n)
{
    if (!fired_now)
        cr_assert_fail("request %ld armed, %s: %s(%zu) failed with no injected failure "
                       "(errno %d)",
                       r->fail_at, r->stage, call, n, err);
    if (err != ENOMEM)
        cr_assert_fail("request %ld failed, %s: %s(%zu) returned NULL with errno %d, not ENOMEM",
                       r->fail_at, r->stage, call, n, err);
    r->nulls++;
    check_counts(r);
}

enum how { BY_MALLOC, BY_CALLOC };

/* Allocates `n` bytes into empty slot `b`, retrying once if the injected failure hits. */
static void
alloc_into(run *r, fblock *b, size_t n, enum how how, bool sparse)
{
    for (int attempt = 0;; attempt++) {
        if (attempt == 2)
            cr_assert_fail("%s: the heap failed twice in a row for one injected failure", r->stage);
        bool before = zw_raw_fault_fired(r->raw);
        errno = 0;
        void *p = how == BY_MALLOC ? zw_heap_malloc(r->h, n) : zw_heap_calloc(r->h, 1, n);
        int err = errno;
        bool fired_now = !before && zw_raw_fault_fired(r->raw);
        if (p == NULL) {
            expect_injected(r, fired_now, err, how == BY_MALLOC ? "malloc" : "calloc", n);
            continue;
        }
        r->swallowed += fired_now;
        if ((uintptr_t)p % ZW_MEM_ALIGNMENT != 0)
            cr_assert_fail("%s: block %p not aligned", r->stage, p);
        if (how == BY_CALLOC && zwt_check_zero(p, n) != SIZE_MAX)
            cr_assert_fail("%s: calloc(%zu) not zeroed at byte %zu", r->stage, n,
                           zwt_check_zero(p, n));
        b->p = p;
        b->size = n;
        b->key = zwt_key(r->next_id++, n);
        b->counted = counted(r, n);
        b->big = (r->debug ? n + 48 : n) > ZW_MEM_SMALL_MAX;
        b->sparse = sparse;
        mark(b);
        r->blocks++;
        r->bytes += b->counted;
        if (!sparse || r->blocks % 128 == 0)
            check_counts(r);
        return;
    }
}

/* Resizes the block in `b`; a failure must leave it whole, then the retry goes through. */
static void
realloc_slot(run *r, fblock *b, size_t n)
{
    verify(r, b);
    b->sparse = false; /* every byte kept must be checked */
    mark(b);
    for (int attempt = 0;; attempt++) {
        if (attempt == 2)
            cr_assert_fail("%s: the heap failed twice in a row for one injected failure", r->stage);
        bool before = zw_raw_fault_fired(r->raw);
        errno = 0;
        void *q = zw_heap_realloc(r->h, b->p, n);
        int err = errno;
        bool fired_now = !before && zw_raw_fault_fired(r->raw);
        if (q == NULL) {
            expect_injected(r, fired_now, err, "realloc", n);
            verify(r, b); /* the old block is untouched */
            continue;
        }
        r->swallowed += fired_now;
        size_t keep = b->size < n ? b->size : n;
        size_t bad = zwt_check(q, keep, b->key);
        if (bad != SIZE_MAX)
            cr_assert_fail("%s: realloc(%zu -> %zu) lost byte %zu", r->stage, b->size, n, bad);
        size_t now = counted_after_realloc(r, b, n);
        r->bytes -= b->counted;
        r->bytes += now;
        b->counted = now;
        b->big = r->debug ? n + 48 > ZW_MEM_SMALL_MAX : b->big || n > ZW_MEM_SMALL_MAX;
        if (b->big == zw_heap_owns(r->h, q))
            cr_assert_fail("%s: realloc to %zu gave a %s block", r->stage, n,
                           b->big ? "small" : "big");
        b->p = q;
        b->size = n;
        b->key = zwt_key(r->next_id++, n);
        mark(b);
        check_counts(r);
        return;
    }
}

static void
free_slot(run *r, fblock *b)
{
    verify(r, b);
    r->bytes -= b->counted;
    r->blocks--;
    zw_heap_free(r->h, b->p); /* never a request: cannot fail */
    b->p = NULL;
    if (!b->sparse || r->blocks % 128 == 0)
        check_counts(r);
}

/* ---- the workload ---- */

/* The census identity, which holds between any two calls, failed or not. */
static void
check_census(const run *r)
{
    zw_mem_stats st;
    zw_heap_stats(r->h, &st);
    cr_assert_eq(st.arenas_current * ZW_MEM_ARENA_SIZE, zwt_census_total(&st),
                 "request %ld failed, %s: census identity broken", r->fail_at, r->stage);
    cr_assert_eq(st.allocated_blocks, r->blocks);
    cr_assert_eq(st.arenas_reclaimed, st.arenas_allocated_total - st.arenas_current);
}

/* The workload's dimensions, fixed before the first run so that every run makes the same
 * requests as the clean one up to the failed request. */
typedef struct plan {
    unsigned flags;      /* of the heap: 0 or ZW_HEAP_DEBUG */
    size_t nfill;        /* blocks allocated first */
    size_t big_every;    /* one block in so many of the fill is big */
    size_t resize_every; /* one block in so many is reallocated */
} plan;

/* The largest request a pool serves, so that arenas come quickly: 512 bytes, or 464 in debug
 * mode, whose layout adds 48. */
static size_t
largest_small(bool debug)
{
    return debug ? ZW_MEM_SMALL_MAX - 48 : ZW_MEM_SMALL_MAX;
}

/* Block i of the fill: mostly the largest small block, some of every class, now and then a big
 * one (never when big_every is 0). */
static size_t
fill_size(bool debug, size_t big_every, size_t i)
{
    size_t largest = largest_small(debug);
    if (big_every != 0 && i % big_every == big_every / 2)
        return 513 + (i * 7919) % 20000;
    if (i % 5 == 1)
        return (i * 31) % (largest + 1);
    return largest;
}

/* Allocates the fill, reallocates some blocks across classes and into and out of big blocks,
 * frees every third and allocates those again. Every call that fails is retried once. */
static void
workload(run *r, const plan *pl)
{
    size_t largest = largest_small(r->debug);
    r->stage = "filling";
    for (size_t i = 0; i < pl->nfill; i++) {
        size_t n = fill_size(r->debug, pl->big_every, i);
        alloc_into(r, &r->b[i], n, i % 11 == 3 ? BY_CALLOC : BY_MALLOC, n == largest);
    }
    check_census(r);

    r->stage = "reallocating";
    for (size_t i = 0; i < pl->nfill; i += pl->resize_every) {
        fblock *b = &r->b[i];
        size_t n;
        switch ((i / pl->resize_every) % 5) {
        case 0: /* a big block grows, a small one goes big */
            n = b->big ? b->size * 2 : 700 + i % 3000;
            break;
        case 1: /* a big block shrinks under 512 bytes and stays big */
            n = b->big ? 100 : (b->size + 200) % 513;
            break;
        case 2:
            n = 0;
            break;
        case 3: /* a small block may stay where it is */
            n = 3 * b->size / 4 + 1;
            break;
        default:
            n = 2000 + i % 30000;
            break;
        }
        realloc_slot(r, b, n);
    }
    check_census(r);

    r->stage = "freeing every third block";
    for (size_t i = 0; i < pl->nfill; i += 3)
        free_slot(r, &r->b[i]);
    check_census(r);

    r->stage = "allocating them again";
    for (size_t i = 0; i < pl->nfill; i += 3) {
        size_t n = fill_size(r->debug, pl->big_every, i + 1);
        alloc_into(r, &r->b[i], n, i % 2 ? BY_CALLOC : BY_MALLOC, n == largest);
    }
    check_census(r);
}

/* Sizes the fill for a heap with `flags` on `raw`: enough blocks for `min_arenas` arenas and
 * RECORD_PAGES pages of arena records (counted by the door), with 3% to spare; about 40 big
 * blocks and 120 reallocs. */
static plan
plan_workload(zw_raw *raw, zwt_spread *spread, unsigned flags, size_t min_arenas)
{
    zw_heap_config cfg = {
        .flags = ZW_HEAP_IGNORE_ENV | flags, .raw = raw, .arena_cache = ZWT_CACHE};
    zw_heap *h = zw_heap_new_ex(&cfg);
    cr_assert_not_null(h);
    bool debug = zw_heap_is_debug(h);
    spread->arena_maps = 0;
    spread->next_slice = 0;
    spread->small_maps = 0;
    size_t cap = 1 << 16;
    size_t n = 0;
    void **p = malloc(cap * sizeof(*p));
    while (spread->arena_maps < min_arenas || spread->small_maps < RECORD_PAGES) {
        cr_assert(n < 1000000, "%zu blocks and still %zu arenas, %zu record pages", n,
                  spread->arena_maps, spread->small_maps);
        if (n == cap)
            p = realloc(p, (cap *= 2) * sizeof(*p));
        p[n] = zw_heap_malloc(h, fill_size(debug, 0, n));
        cr_assert_not_null(p[n]);
        n++;
    }
    for (size_t i = 0; i < n; i++)
        zw_heap_free(h, p[i]);
    free(p);
    zw_heap_destroy(h);
    plan pl = {.flags = flags, .nfill = n + n / 33};
    pl.big_every = pl.nfill / 40;
    pl.resize_every = pl.nfill / 120;
    return pl;
}

/* What the door held when a run's workload ended (before anything was freed). */
typedef struct shape {
    size_t requests;     /* requests the workload made */
    size_t arenas;       /* arenas mapped */
    size_t leaves;       /* map leaves (128 KiB each) */
    size_t record_pages; /* the rest of the heap's pages, in 4 KiB pages */
    size_t big_blocks;
} shape;

/* One run: a fresh heap on `raw`, request `fail_at` of the workload failing. Returns true if
 * the failure fired. The heap is destroyed and the door must be back to nothing. */
static bool
run_once(zw_raw *raw, zwt_spread *spread, const plan *pl, long fail_at, shape *out)
{
    spread->arena_maps = 0; /* every run places the same arenas apart */
    spread->next_slice = 0;
    spread->placed = 0;
    zw_heap_config cfg = {
        .flags = ZW_HEAP_IGNORE_ENV | pl->flags, .raw = raw, .arena_cache = ZWT_CACHE};
    zw_heap *h = zw_heap_new_ex(&cfg);
    cr_assert_not_null(h);
    zw_raw_stats rs0;
    zw_raw_get_stats(raw, &rs0);

    run r = {.h = h, .raw = raw, .fail_at = fail_at, .debug = zw_heap_is_debug(h)};
    r.b = calloc(pl->nfill, sizeof(*r.b));
    cr_assert_not_null(r.b);
    zw_raw_fail_nth(raw, fail_at);
    workload(&r, pl);
    bool fired = zw_raw_fault_fired(raw);
    zw_raw_fail_nth(raw, -1);
    if (fail_at >= 0) {
        cr_assert(!fired || r.nulls + r.swallowed == 1,
                  "request %ld: %zu calls failed, %zu recovered; one failure was injected", fail_at,
                  r.nulls, r.swallowed);
        cr_assert(fired || r.nulls == 0);
    }

    if (out != NULL) {
        zw_raw_stats rs;
        zw_raw_get_stats(raw, &rs);
        zw_mem_stats st;
        zw_heap_stats(h, &st);
        out->requests = rs.requests - rs0.requests;
        out->arenas = st.arenas_current;
        out->leaves = st.map_bytes / (128 * 1024);
        out->record_pages = (rs.mapped_bytes - rs0.mapped_bytes - st.map_bytes -
                             st.arenas_current * ZW_MEM_ARENA_SIZE) /
                            4096;
        out->big_blocks = st.big_blocks;
    }

    r.stage = "freeing everything"; /* each block is checked as it goes */
    for (size_t i = 0; i < pl->nfill; i++)
        free_slot(&r, &r.b[i]);
    cr_assert_eq(zw_heap_allocated_blocks(h), 0, "request %ld failed: %zu blocks left", fail_at,
                 zw_heap_allocated_blocks(h));
    cr_assert_eq(zw_heap_allocated_bytes(h), 0);
    check_census(&r);
    zw_heap_destroy(h);
    free(r.b);

    zw_raw_stats rs;
    zw_raw_get_stats(raw, &rs);
    cr_assert_eq(rs.mapped_bytes, 0, "request %ld failed: %zu bytes still mapped after destroy",
                 fail_at, rs.mapped_bytes);
    cr_assert_eq(rs.blocks, 0, "request %ld failed: %zu blocks still held after destroy", fail_at,
                 rs.blocks);
    return fired;
}

/* Runs the workload clean, checks it needs what it should, then fails each of its requests in
 * turn: a run failing request n < the clean run's count makes the same requests up to n, so
 * the loop must stop exactly there. */
static void
fail_each_request(const char *test, unsigned flags, unsigned spread_every, size_t min_arenas,
                  size_t min_leaves)
{
    /* every few arenas one goes 16 GiB away from the others: the map needs a leaf for it */
    zwt_spread spread = {.every = spread_every, .region = SPREAD_REGION};
    zw_raw *raw = zwt_spread_door(&spread);
    cr_assert_not_null(raw);
    plan pl = plan_workload(raw, &spread, flags, min_arenas);

    shape ref;
    cr_assert(!run_once(raw, &spread, &pl, -1, &ref));
    cr_assert(ref.arenas >= min_arenas, "the workload needs only %zu arenas", ref.arenas);
    cr_assert(ref.leaves >= min_leaves, "the workload needs %zu map leaves (%zu arenas placed)",
              ref.leaves, spread.placed);
    cr_assert(ref.record_pages >= RECORD_PAGES, "the workload needs %zu record pages",
              ref.record_pages);
    cr_assert(ref.big_blocks >= 20, "the workload keeps %zu big blocks", ref.big_blocks);

    long n;
    for (n = 0; n < SAFETY_LIMIT; n++) {
        if (!run_once(raw, &spread, &pl, n, NULL))
            break;
    }
    cr_assert_eq((size_t)n, ref.requests, "stopped at request %ld, the clean run makes %zu", n,
                 ref.requests);
    zw_raw_stats rs;
    zw_raw_get_stats(raw, &rs);
    cr_assert_eq(rs.injected_failures, (size_t)n);
    fprintf(stderr,
            "%s: %zu blocks, %zu arenas, %zu map leaves, %zu record pages, %zu big blocks; "
            "failed each of %ld requests in turn\n",
            test, pl.nfill, ref.arenas, ref.leaves, ref.record_pages, ref.big_blocks, n);
    zwt_spread_release(&spread);
    zw_raw_destroy(raw);
}

/* ---- the tests ---- */

Test(mem_fault, every_failed_request_leaves_the_heap_usable_and_exact)
{
    fail_each_request("mem_fault.every_failed_request_leaves_the_heap_usable_and_exact", 0, 4, 12,
                      4);
}

Test(mem_fault, every_failed_request_leaves_a_debug_heap_usable_and_exact)
{
    fail_each_request("mem_fault.every_failed_request_leaves_a_debug_heap_usable_and_exact",
                      ZW_HEAP_DEBUG, 3, 6, 3);
}

Test(mem_fault, first_small_block_fails_at_each_request_it_makes_and_leaks_nothing)
{
    zw_raw *raw = zw_raw_new(NULL);
    long n;
    for (n = 0;; n++) {
        zw_heap *h = zwt_heap(raw);
        zw_raw_stats rs0;
        zw_raw_get_stats(raw, &rs0);
        zw_raw_fail_nth(raw, n);
        errno = 0;
        void *p = zw_heap_malloc(h, 100);
        int err = errno;
        bool fired = zw_raw_fault_fired(raw);
        zw_raw_fail_nth(raw, -1);
        if (!fired) {
            cr_assert_not_null(p);
            zw_heap_free(h, p);
            zw_heap_destroy(h);
            break;
        }
        cr_assert_null(p, "request %ld failed but malloc succeeded", n);
        cr_assert_eq(err, ENOMEM);
        /* nothing half made is kept: no arena, no block */
        zw_mem_stats st;
        zw_heap_stats(h, &st);
        cr_assert_eq(st.arenas_current, 0, "request %ld failed: an arena stayed mapped", n);
        cr_assert_eq(st.allocated_blocks, 0);
        zw_raw_stats rs;
        zw_raw_get_stats(raw, &rs);
        cr_assert(rs.mapped_bytes - rs0.mapped_bytes < ZW_MEM_ARENA_SIZE,
                  "request %ld failed: %zu bytes more mapped", n,
                  rs.mapped_bytes - rs0.mapped_bytes);
        p = zw_heap_malloc(h, 100); /* and the next try works */
        cr_assert_not_null(p);
        zw_heap_free(h, p);
        zw_heap_destroy(h);
        zw_raw_get_stats(raw, &rs);
        cr_assert_eq(rs.mapped_bytes, 0);
    }
    /* an arena, a map leaf and a page of records */
    cr_assert(n >= 3, "the first small block made only %ld requests", n);
    zw_raw_destroy(raw);
}

/* Fills a fresh heap's first arena exactly: one 16-byte block, then 63 pools of 512-byte
 * blocks. Returns the 16-byte block; the next pool of any class needs a new arena. */
static unsigned char *
fill_first_arena(zw_heap *h, void **fill, size_t nfill)
{
    unsigned char *probe = zw_heap_malloc(h, 16);
    cr_assert_not_null(probe);
    cr_assert_eq(nfill, 63 * zwt_capacity(31));
    for (size_t i = 0; i < nfill; i++) {
        fill[i] = zw_heap_malloc(h, 512);
        cr_assert_not_null(fill[i]);
    }
    zw_mem_stats st;
    zw_heap_stats(h, &st);
    cr_assert_eq(st.arenas_current, 1);
    cr_assert_eq(st.pools_unused, 0, "the first arena still has %zu free pools", st.pools_unused);
    return probe;
}

/* realloc(p, n) with the next request failing: NULL, ENOMEM, p untouched and counted. */
static void
assert_realloc_fails_cleanly(zw_heap *h, zw_raw *raw, unsigned char *p, size_t size, size_t n)
{
    size_t blocks = zw_heap_allocated_blocks(h);
    size_t bytes = zw_heap_allocated_bytes(h);
    size_t usable = zw_heap_usable_size(h, p);
    zwt_fill(p, size, size);
    zw_raw_fail_nth(raw, 0);
    errno = 0;
    void *q = zw_heap_realloc(h, p, n);
    int err = errno;
    bool fired = zw_raw_fault_fired(raw);
    zw_raw_fail_nth(raw, -1);
    cr_assert(fired, "realloc(%zu -> %zu) made no request", size, n);
    cr_assert_null(q, "realloc(%zu -> %zu) succeeded though its request failed", size, n);
    cr_assert_eq(err, ENOMEM);
    cr_assert_eq(zwt_check(p, size, size), SIZE_MAX, "realloc(%zu -> %zu) damaged the block", size,
                 n);
    cr_assert_eq(zw_heap_usable_size(h, p), usable);
    cr_assert_eq(zw_heap_allocated_blocks(h), blocks);
    cr_assert_eq(zw_heap_allocated_bytes(h), bytes);
}

Test(mem_fault, failed_realloc_leaves_the_old_block_intact)
{
    zw_raw *raw = zw_raw_new(NULL);
    zw_heap *h = zwt_heap(raw);
    size_t nfill = 63 * zwt_capacity(31);
    void **fill = calloc(nfill, sizeof(*fill));
    unsigned char *p = fill_first_arena(h, fill, nfill);

    /* small to small of another class: the new pool needs an arena */
    assert_realloc_fails_cleanly(h, raw, p, 16, 100);
    /* small to big: a block from raw */
    assert_realloc_fails_cleanly(h, raw, p, 16, 1000);
    /* big to bigger, and big to small (it stays big) */
    unsigned char *big = zw_heap_malloc(h, 3000);
    cr_assert_not_null(big);
    assert_realloc_fails_cleanly(h, raw, big, 3000, 100000);
    assert_realloc_fails_cleanly(h, raw, big, 3000, 10);
    assert_realloc_fails_cleanly(h, raw, big, 3000, 0);

    /* without the failure the same calls work and keep the bytes */
    p = zw_heap_realloc(h, p, 100);
    cr_assert_not_null(p);
    cr_assert_eq(zwt_check(p, 16, 16), SIZE_MAX);
    big = zw_heap_realloc(h, big, 10);
    cr_assert_not_null(big);
    cr_assert_eq(zwt_check(big, 10, 3000), SIZE_MAX);
    cr_assert(!zw_heap_owns(h, big), "a big block stays big when it shrinks");
    zw_heap_free(h, p);
    zw_heap_free(h, big);
    for (size_t i = 0; i < nfill; i++)
        zw_heap_free(h, fill[i]);
    cr_assert_eq(zw_heap_allocated_blocks(h), 0);
    free(fill);
    zw_heap_destroy(h);
    zw_raw_stats rs;
    zw_raw_get_stats(raw, &rs);
    cr_assert_eq(rs.mapped_bytes, 0);
    cr_assert_eq(rs.blocks, 0);
    zw_raw_destroy(raw);
}

Test(mem_fault, calloc_overflow_is_enomem_and_leaves_the_heap_intact)
{
    zw_raw *raw = zw_raw_new(NULL);
    zw_heap *h = zwt_heap(raw);
    enum { N = 300 };
    unsigned char *b[N];
    for (int i = 0; i < N; i++) {
        size_t n = i % 10 == 0 ? 600 + (size_t)i : (size_t)i;
        b[i] = zw_heap_malloc(h, n);
        zwt_fill(b[i], n, (uint64_t)i);
    }
    size_t blocks = zw_heap_allocated_blocks(h);
    size_t bytes = zw_heap_allocated_bytes(h);
    zw_raw_stats before;
    zw_raw_get_stats(raw, &before);

    static const size_t bad[][2] = {
        {SIZE_MAX, 2},         {2, SIZE_MAX},
        {SIZE_MAX / 2 + 1, 2}, {(size_t)1 << 33, (size_t)1 << 31},
        {SIZE_MAX, SIZE_MAX},  {(SIZE_MAX / 16) + 1, 16},
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        errno = 0;
        void *p = zw_heap_calloc(h, bad[k][0], bad[k][1]);
        cr_assert_null(p, "calloc(%zu, %zu) did not fail", bad[k][0], bad[k][1]);
        cr_assert_eq(errno, ENOMEM, "calloc(%zu, %zu): errno %d", bad[k][0], bad[k][1], errno);
    }
    /* a request the big-block header would overflow fails the same way, before raw */
    static const size_t huge[] = {SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 31};
    for (size_t k = 0; k < sizeof(huge) / sizeof(huge[0]); k++) {
        errno = 0;
        cr_assert_null(zw_heap_malloc(h, huge[k]), "malloc(%zu) did not fail", huge[k]);
        cr_assert_eq(errno, ENOMEM);
        errno = 0;
        cr_assert_null(zw_heap_realloc(h, b[1], huge[k]), "realloc(small, %zu)", huge[k]);
        cr_assert_eq(errno, ENOMEM);
        errno = 0;
        cr_assert_null(zw_heap_realloc(h, b[10], huge[k]), "realloc(big, %zu)", huge[k]);
        cr_assert_eq(errno, ENOMEM);
    }

    zw_raw_stats after;
    zw_raw_get_stats(raw, &after);
    cr_assert_eq(after.requests, before.requests, "an impossible size reached the door");
    cr_assert_eq(zw_heap_allocated_blocks(h), blocks);
    cr_assert_eq(zw_heap_allocated_bytes(h), bytes);
    for (int i = 0; i < N; i++) {
        size_t n = i % 10 == 0 ? 600 + (size_t)i : (size_t)i;
        cr_assert_eq(zwt_check(b[i], n, (uint64_t)i), SIZE_MAX, "block %d damaged", i);
        zw_heap_free(h, b[i]);
    }
    /* zero elements, or zero-sized ones, is no overflow: a unique block */
    void *z1 = zw_heap_calloc(h, 0, SIZE_MAX);
    void *z2 = zw_heap_calloc(h, SIZE_MAX, 0);
    cr_assert(z1 != NULL && z2 != NULL && z1 != z2);
    zw_heap_free(h, z1);
    zw_heap_free(h, z2);
    cr_assert_eq(zw_heap_allocated_blocks(h), 0);
    zw_heap_destroy(h);
    zw_raw_destroy(raw);
}

Test(mem_fault, heap_creation_fails_cleanly_when_its_door_fails)
{
    zw_raw *raw = zw_raw_new(NULL);
    zw_raw_fail_nth(raw, 0);
    errno = 0;
    zw_heap *h = zwt_heap(raw);
    cr_assert_null(h);
    cr_assert_eq(errno, ENOMEM);
    cr_assert(zw_raw_fault_fired(raw));
    zw_raw_stats rs;
    zw_raw_get_stats(raw, &rs);
    cr_assert_eq(rs.mapped_bytes, 0, "a failed heap left %zu bytes mapped", rs.mapped_bytes);
    cr_assert_eq(rs.blocks, 0);
    cr_assert_eq(rs.requests, 1);

    /* the door is still good, and the next heap on it works */
    zw_raw_fail_nth(raw, -1);
    h = zwt_heap(raw);
    cr_assert_not_null(h);
    void *p = zw_heap_malloc(h, 10);
    cr_assert_not_null(p);
    zw_heap_free(h, p);
    zw_heap_destroy(h);
    zw_raw_get_stats(raw, &rs);
    cr_assert_eq(rs.mapped_bytes, 0);
    zw_raw_destroy(raw);
}
