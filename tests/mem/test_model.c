/* tests/mem/test_model.c - the heap against a shadow model kept by the test. Millions of random
 * malloc, calloc, realloc and free calls; every block carries a pattern derived from its id and
 * size, checked before the block is freed or moved (realloc keeps min(old, new) bytes); every
 * 10,000 calls the heap's counters and census are compared with the model's. A second test runs
 * the heap through waves (allocate many, free all in random order) and follows its arenas.
 * Knobs: ZW_TEST_SEED (printed at start), ZW_TEST_SCALE (multiplies the number of calls). */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zerowaste/zerowaste.h>

#include "zw_test.h"

#define DEFAULT_SEED 0x5A57C0DE2026ULL
#define MODEL_OPS    10000000 /* at ZW_TEST_SCALE=1 */
#define CHECK_EVERY  10000    /* calls between two comparisons of counters and census */
#define PHASE_OPS    250000   /* calls between two changes of the working-set window */
#define MAX_SLOTS    131072   /* the largest window */
#define BIG          UINT32_MAX
#define ARENA_CACHE  ZWT_CACHE /* wholly free arenas kept mapped */

/* One block the model knows of. A slot is empty when p == NULL. */
typedef struct block {
    unsigned char *p; /* from the heap; NULL: the slot is empty */
    size_t size;      /* bytes requested, all filled with the pattern of `key` */
    uint64_t key;     /* zwt_key(id, size) */
    uint32_t cls;     /* small class the block occupies, or BIG */
} block;

/* What the heap should report. Between two calls: blocks == sum of class_blocks + big_blocks,
 * bytes == sum of class_blocks[c] * 16 * (c + 1) + big_bytes. */
typedef struct model {
    zw_heap *h;
    zw_raw *raw; /* the heap's door (borrowed) */
    zwt_rng rng;
    block *slots;                         /* MAX_SLOTS of them */
    size_t blocks;                        /* blocks handed out and not freed */
    size_t bytes;                         /* what zw_heap_allocated_bytes() must say */
    size_t class_blocks[ZW_MEM_NCLASSES]; /* small blocks in use, per class */
    size_t big_blocks;
    size_t big_bytes;
    uint64_t next_id;   /* id of the next block (patterns differ per block) */
    size_t base_mapped; /* the door's mapped bytes before the first arena: the heap itself */
    size_t highwater;   /* the most arenas_current seen by a census */
    size_t ops;         /* calls made */
    size_t moved;       /* reallocs that moved the block */
    size_t in_place;    /* reallocs that kept it */
} model;

/* ---- the model's bookkeeping ---- */

static size_t
class_size(uint32_t cls)
{
    return ((size_t)cls + 1) * ZW_MEM_ALIGNMENT;
}

static void
model_add(model *m, block *b, void *p, size_t n, uint32_t cls)
{
    b->p = p;
    b->size = n;
    b->key = zwt_key(m->next_id++, n);
    b->cls = cls;
    m->blocks++;
    if (cls == BIG) {
        m->big_blocks++;
        m->big_bytes += n;
        m->bytes += n;
    } else {
        m->class_blocks[cls]++;
        m->bytes += class_size(cls);
    }
}

static void
model_remove(model *m, block *b)
{
    m->blocks--;
    if (b->cls == BIG) {
        m->big_blocks--;
        m->big_bytes -= b->size;
        m->bytes -= b->size;
    } else {
        m->class_blocks[b->cls]--;
        m->bytes -= class_size(b->cls);
    }
    b->p = NULL;
}

/* What the heap must say about a live block: aligned, ours or not, its usable size, and the
 * pattern on all its `size` bytes. */
static void
verify_block(const model *m, const block *b, const char *when)
{
    if ((uintptr_t)b->p % ZW_MEM_ALIGNMENT != 0)
        cr_assert_fail("%s: block %p of %zu bytes is not 16-byte aligned", when, (void *)b->p,
                       b->size);
    bool small = b->cls != BIG;
    if (zw_heap_owns(m->h, b->p) != small)
        cr_assert_fail("%s: zw_heap_owns(%p) is %d for a %s block of %zu bytes", when, (void *)b->p,
                       !small, small ? "small" : "big", b->size);
    /* ASan builds make only the requested bytes of a small block addressable, and say so */
    size_t usable = small && !ZWT_ASAN ? class_size(b->cls) : b->size;
    if (zw_heap_usable_size(m->h, b->p) != usable)
        cr_assert_fail("%s: usable size of %p is %zu, expected %zu", when, (void *)b->p,
                       zw_heap_usable_size(m->h, b->p), usable);
    size_t bad = zwt_check(b->p, b->size, b->key);
    if (bad != SIZE_MAX)
        cr_assert_fail("%s: block %p (%zu bytes) corrupted at offset %zu after %zu calls", when,
                       (void *)b->p, b->size, bad, m->ops);
}

/* The counters are O(1): compared after every call. */
static void
check_counters(const model *m)
{
    size_t blocks = zw_heap_allocated_blocks(m->h);
    size_t bytes = zw_heap_allocated_bytes(m->h);
    if (blocks != m->blocks || bytes != m->bytes)
        cr_assert_fail(
            "after %zu calls: heap counts %zu blocks, %zu bytes; model %zu blocks, %zu bytes",
            m->ops, blocks, bytes, m->blocks, m->bytes);
}

/* The census against the model, and its own identities. */
static void
check_census(model *m)
{
    zw_mem_stats st;
    zw_heap_stats(m->h, &st);
    size_t pools = 0;
    size_t small = 0;
    size_t in_blocks = 0;
    size_t available = 0;
    size_t quantization = 0;
    for (unsigned c = 0; c < ZW_MEM_NCLASSES; c++) {
        const zw_mem_class_stats *cs = &st.classes[c];
        size_t cap = zwt_capacity(c);
        cr_assert_eq(cs->block_size, class_size(c));
        cr_assert_eq(cs->blocks_in_use, m->class_blocks[c],
                     "class %u: %zu blocks in use, model %zu (after %zu calls)", c,
                     cs->blocks_in_use, m->class_blocks[c], m->ops);
        cr_assert_eq(cs->blocks_in_use + cs->blocks_free, cs->pools * cap,
                     "class %u: %zu in use + %zu free != %zu pools * %zu", c, cs->blocks_in_use,
                     cs->blocks_free, cs->pools, cap);
        /* every pool holds a block in use, but for at most one kept empty for the class */
        cr_assert(cs->pools * cap >= cs->blocks_in_use && cs->pools <= cs->blocks_in_use + 1,
                  "class %u: %zu pools for %zu blocks", c, cs->pools, cs->blocks_in_use);
        pools += cs->pools;
        small += cs->blocks_in_use;
        in_blocks += cs->blocks_in_use * cs->block_size;
        available += cs->blocks_free * cs->block_size;
        quantization += cs->pools * zwt_quantization(c);
    }
    cr_assert_eq(st.pools_in_use, pools);
    cr_assert_eq(st.small_blocks, small);
    cr_assert_eq(st.bytes_in_blocks, in_blocks);
    cr_assert_eq(st.bytes_available, available);
    cr_assert_eq(st.bytes_quantization, quantization);
    cr_assert_eq(st.bytes_unused_pools, st.pools_unused * ZW_MEM_POOL_SIZE);
    cr_assert_eq(st.arenas_current * (ZW_MEM_ARENA_SIZE / ZW_MEM_POOL_SIZE),
                 st.pools_in_use + st.pools_unused);
    cr_assert_eq(st.arenas_current * ZW_MEM_ARENA_SIZE, zwt_census_total(&st),
                 "census identity broken after %zu calls (%zu arenas)", m->ops, st.arenas_current);
    cr_assert_eq(st.big_blocks, m->big_blocks);
    cr_assert_eq(st.big_bytes, m->big_bytes);
    cr_assert_eq(st.allocated_blocks, m->blocks);
    cr_assert_eq(st.arenas_reclaimed, st.arenas_allocated_total - st.arenas_current);
    cr_assert(st.arenas_cached <= ARENA_CACHE && st.arenas_cached <= st.arenas_current,
              "%zu arenas cached of %zu", st.arenas_cached, st.arenas_current);
    if (st.arenas_current > m->highwater)
        m->highwater = st.arenas_current;
    cr_assert(st.arenas_highwater >= m->highwater, "highwater %zu, seen %zu", st.arenas_highwater,
              m->highwater);

    /* The door: big blocks are its only blocks; its pages are the heap, the arenas, the map's
     * leaves and pages of arena records (at most 8 KiB of them per arena ever mapped at once). */
    zw_raw_stats rs;
    zw_raw_get_stats(m->raw, &rs);
    cr_assert_eq(rs.blocks, m->big_blocks, "door holds %zu blocks, model %zu big blocks", rs.blocks,
                 m->big_blocks);
    cr_assert_eq(st.mapped_bytes, rs.mapped_bytes);
    size_t known = m->base_mapped + st.arenas_current * ZW_MEM_ARENA_SIZE + st.map_bytes;
    cr_assert(rs.mapped_bytes >= known, "door maps %zu bytes, less than %zu", rs.mapped_bytes,
              known);
    size_t records = rs.mapped_bytes - known;
    cr_assert(records % 4096 == 0 && records <= 8192 * (1 + st.arenas_highwater),
              "%zu bytes mapped beyond heap, arenas and map (%zu arenas at most)", records,
              st.arenas_highwater);
}

/* ---- the calls ---- */

/* A request size: mostly 0..512 (0 a little more often than chance), some big up to 64 KiB. */
static size_t
random_size(zwt_rng *r)
{
    uint64_t d = zwt_below(r, 1000);
    if (d < 6) /* big, log-uniform: 513 .. 64 KiB */
        return zwt_range(r, 513, (size_t)1024 << zwt_below(r, 7));
    if (d < 16)
        return 0;
    if (d < 400)
        return zwt_range(r, 1, 64);
    return zwt_range(r, 1, 512);
}

enum how { BY_MALLOC, BY_CALLOC, BY_REALLOC_NULL };

static void
op_alloc(model *m, block *b, size_t n, enum how how)
{
    void *p;
    if (how == BY_MALLOC)
        p = zw_heap_malloc(m->h, n);
    else if (how == BY_CALLOC)
        p = n % 3 == 0 ? zw_heap_calloc(m->h, 3, n / 3) : zw_heap_calloc(m->h, n, 1);
    else
        p = zw_heap_realloc(m->h, NULL, n);
    if (p == NULL)
        cr_assert_fail("allocation of %zu bytes failed (how %d) after %zu calls", n, (int)how,
                       m->ops);
    if (how == BY_CALLOC && zwt_check_zero(p, n) != SIZE_MAX)
        cr_assert_fail("calloc(%zu) block %p not zeroed at offset %zu", n, p, zwt_check_zero(p, n));
    model_add(m, b, p, n, n > ZW_MEM_SMALL_MAX ? BIG : zwt_class(n));
    zwt_fill(b->p, n, b->key);
    verify_block(m, b, "after allocation");
}

/* CPython's rule: a small block stays where it is when the new size fits its class and shrinks
 * it by less than a quarter; a big block stays big, whatever the new size. */
static void
op_realloc(model *m, block *b, size_t n)
{
    verify_block(m, b, "before realloc");
    block old = *b;
    void *q = zw_heap_realloc(m->h, b->p, n);
    if (q == NULL)
        cr_assert_fail("realloc(%p, %zu) failed after %zu calls", (void *)old.p, n, m->ops);
    size_t keep = old.size < n ? old.size : n;
    size_t bad = zwt_check(q, keep, old.key);
    if (bad != SIZE_MAX)
        cr_assert_fail("realloc(%p of %zu, %zu) = %p lost byte %zu", (void *)old.p, old.size, n, q,
                       bad);
    uint32_t cls;
    if (old.cls == BIG) {
        cls = BIG;
    } else if (n <= class_size(old.cls) && 4 * n > 3 * class_size(old.cls)) {
        cls = old.cls;
        if (q != old.p)
            cr_assert_fail("realloc(%p of class %zu, %zu) moved the block to %p", (void *)old.p,
                           class_size(old.cls), n, q);
    } else {
        cls = n > ZW_MEM_SMALL_MAX ? BIG : zwt_class(n);
        if (q == old.p)
            cr_assert_fail("realloc(%p of class %zu, %zu) kept the block", (void *)old.p,
                           class_size(old.cls), n);
    }
    if (q == old.p)
        m->in_place++;
    else
        m->moved++;
    model_remove(m, b);
    model_add(m, b, q, n, cls);
    zwt_fill(b->p, n, b->key);
    verify_block(m, b, "after realloc");
}

static void
op_free(model *m, block *b)
{
    verify_block(m, b, "before free");
    zw_heap_free(m->h, b->p);
    model_remove(m, b);
}

/* One random call on slot `i`. */
static void
random_op(model *m, size_t i)
{
    block *b = &m->slots[i];
    uint64_t d = zwt_below(&m->rng, 100);
    if (b->p == NULL) {
        enum how how = d < 85 ? BY_MALLOC : d < 95 ? BY_CALLOC : BY_REALLOC_NULL;
        op_alloc(m, b, random_size(&m->rng), how);
    } else if (d < 50) {
        op_free(m, b);
    } else if (d < 52) {
        zw_heap_free(m->h, NULL); /* does nothing */
    } else if (b->cls != BIG && d < 70) {
        /* near the old size: exercises the stay-in-place rule both ways */
        size_t s = class_size(b->cls);
        op_realloc(m, b, zwt_range(&m->rng, s / 2, s + 32 < 600 ? s + 32 : 600));
    } else {
        op_realloc(m, b, random_size(&m->rng));
    }
    m->ops++;
}

static void
free_all(model *m, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        if (m->slots[i].p != NULL) {
            op_free(m, &m->slots[i]);
            m->ops++;
            check_counters(m);
            if (m->ops % CHECK_EVERY == 0)
                check_census(m);
        }
    }
}

static void
model_init(model *m, uint64_t seed)
{
    memset(m, 0, sizeof(*m));
    m->h = zwt_heap(NULL);
    cr_assert_not_null(m->h);
    m->raw = zw_heap_raw(m->h);
    m->rng.s = seed;
    m->slots = calloc(MAX_SLOTS, sizeof(*m->slots));
    cr_assert_not_null(m->slots);
    zw_raw_stats rs;
    zw_raw_get_stats(m->raw, &rs);
    m->base_mapped = rs.mapped_bytes;
}

static void
model_release(model *m)
{
    zw_heap_destroy(m->h);
    free(m->slots);
}

/* The seed and scale knobs, printed so a failure can be replayed. */
static void
read_knobs(const char *test, uint64_t *seed, double *scale)
{
    if (zwt_seed(DEFAULT_SEED, seed) != 0 || zwt_scale(scale) != 0)
        cr_assert_fail("bad test knob in the environment (see above)");
    fprintf(stderr, "%s: seed 0x%" PRIx64 " (ZW_TEST_SEED), scale %g (ZW_TEST_SCALE)\n", test,
            *seed, *scale);
}

/* ---- the tests ---- */

Test(mem_model, random_ops_match_shadow_model)
{
    uint64_t seed;
    double scale;
    read_knobs("mem_model.random_ops_match_shadow_model", &seed, &scale);
    size_t nops = (size_t)(MODEL_OPS * scale);
    if (nops < CHECK_EVERY)
        nops = CHECK_EVERY;
    fprintf(stderr, "mem_model.random_ops_match_shadow_model: %zu calls\n", nops);

    static const size_t windows[] = {64, 1024, 8192, 32768, MAX_SLOTS};
    const size_t nwindows = sizeof(windows) / sizeof(windows[0]);
    model m;
    model_init(&m, seed);
    size_t window = MAX_SLOTS;
    while (m.ops < nops) {
        if (m.ops % PHASE_OPS == 0) {
            /* a new working set; a smaller one frees the blocks outside it, so arenas drain */
            size_t next = windows[zwt_below(&m.rng, nwindows)];
            if (next < window)
                free_all(&m, next, window);
            window = next;
        }
        random_op(&m, (size_t)zwt_below(&m.rng, window));
        check_counters(&m);
        if (m.ops % CHECK_EVERY == 0)
            check_census(&m);
    }
    check_census(&m);
    if (nops >= MODEL_OPS) { /* a short run (small ZW_TEST_SCALE) may not get that far */
        cr_assert(m.highwater > 4, "the run never needed more than %zu arenas", m.highwater);
        cr_assert(m.moved > 0 && m.in_place > 0);
    }

    free_all(&m, 0, MAX_SLOTS);
    check_census(&m);
    zw_mem_stats st;
    zw_heap_stats(m.h, &st);
    cr_assert_eq(zw_heap_allocated_blocks(m.h), 0);
    cr_assert_eq(zw_heap_allocated_bytes(m.h), 0);
    cr_assert(st.arenas_cached <= st.arenas_current && st.arenas_current <= ARENA_CACHE,
              "%zu arenas left mapped (%zu cached) with no block in use", st.arenas_current,
              st.arenas_cached);
    cr_assert_eq(zw_heap_trim(m.h), st.arenas_current);
    zw_heap_stats(m.h, &st);
    cr_assert_eq(st.arenas_current, 0);
    cr_assert_eq(st.arenas_reclaimed, st.arenas_allocated_total);
    fprintf(stderr,
            "mem_model.random_ops_match_shadow_model: %zu calls, %zu arenas mapped in all, "
            "highwater %zu, reallocs %zu moved / %zu in place\n",
            m.ops, st.arenas_allocated_total, st.arenas_highwater, m.moved, m.in_place);
    model_release(&m);
}

static int
cmp_uintptr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a;
    uintptr_t y = *(const uintptr_t *)b;
    return (x > y) - (x < y);
}

/* Sorts `v` and drops repeats; returns how many are left. */
static size_t
sort_unique(uintptr_t *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_uintptr);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k == 0 || v[k - 1] != v[i])
            v[k++] = v[i];
    }
    return k;
}

static bool
contains(const uintptr_t *v, size_t n, uintptr_t x)
{
    return bsearch(&x, v, n, sizeof(x), cmp_uintptr) != NULL;
}

Test(mem_model, waves_reuse_cached_arenas_and_return_the_rest)
{
    uint64_t seed;
    double scale;
    read_knobs("mem_model.waves_reuse_cached_arenas_and_return_the_rest", &seed, &scale);
    size_t max_wave = (size_t)(120000 * scale);
    if (max_wave < 40000)
        max_wave = 40000; /* a wave must need more arenas than the cache holds */
    const int nwaves = 10;

    model m;
    model_init(&m, seed ^ 0x3A7E5ULL);
    block *live = calloc(max_wave, sizeof(*live));
    void **order = calloc(max_wave, sizeof(*order));
    uintptr_t *bases = calloc(max_wave, sizeof(*bases));
    uintptr_t cached[ARENA_CACHE];
    size_t ncached = 0;
    cr_assert(live != NULL && order != NULL && bases != NULL);

    for (int w = 0; w < nwaves; w++) {
        zw_mem_stats before;
        zw_heap_stats(m.h, &before);
        cr_assert_eq(before.arenas_current, ncached);
        cr_assert(before.arenas_cached <= ncached);

        /* allocate: the arenas kept mapped take the first blocks, new arenas the rest */
        size_t count = (size_t)zwt_range(&m.rng, max_wave / 2, max_wave);
        size_t nbases = 0;
        for (size_t i = 0; i < count; i++) {
            size_t n = zwt_below(&m.rng, 200) == 0 ? zwt_range(&m.rng, 513, 8192)
                                                   : zwt_range(&m.rng, 0, 512);
            op_alloc(&m, &live[i], n, zwt_below(&m.rng, 8) == 0 ? BY_CALLOC : BY_MALLOC);
            m.ops++;
            if (live[i].cls != BIG)
                bases[nbases++] = zwt_arena_of(live[i].p);
            if (i == 0 && ncached > 0)
                cr_assert(live[0].cls == BIG || zwt_arena_of(live[0].p) == cached[0] ||
                              (ncached > 1 && zwt_arena_of(live[0].p) == cached[1]),
                          "wave %d: first block %p is in none of the cached arenas", w,
                          (void *)live[0].p);
        }
        check_counters(&m);
        check_census(&m);
        zw_mem_stats peak;
        zw_heap_stats(m.h, &peak);
        nbases = sort_unique(bases, nbases);
        cr_assert(peak.arenas_current > ARENA_CACHE, "wave %d needed only %zu arenas", w,
                  peak.arenas_current);
        cr_assert_eq(nbases, peak.arenas_current, "wave %d: blocks in %zu arenas, %zu mapped", w,
                     nbases, peak.arenas_current);
        for (size_t k = 0; k < ncached; k++)
            cr_assert(contains(bases, nbases, cached[k]),
                      "wave %d: cached arena %#" PRIxPTR " was not reused", w, cached[k]);
        cr_assert_eq(peak.arenas_allocated_total,
                     before.arenas_allocated_total + (peak.arenas_current - ncached),
                     "wave %d: %zu arenas mapped in all, expected %zu + (%zu - %zu cached)", w,
                     peak.arenas_allocated_total, before.arenas_allocated_total,
                     peak.arenas_current, ncached);
        size_t hw = before.arenas_highwater > peak.arenas_current ? before.arenas_highwater
                                                                  : peak.arenas_current;
        cr_assert_eq(peak.arenas_highwater, hw);

        /* free all in random order: arenas drain and go back, but for the cache */
        for (size_t i = 0; i < count; i++)
            order[i] = &live[i];
        zwt_shuffle(&m.rng, order, count);
        for (size_t i = 0; i < count; i++) {
            op_free(&m, order[i]);
            m.ops++;
            if (i == count / 2) {
                check_counters(&m);
                check_census(&m);
            }
        }
        check_counters(&m);
        check_census(&m);
        zw_mem_stats after;
        zw_heap_stats(m.h, &after);
        cr_assert_eq(after.allocated_blocks, 0);
        cr_assert_eq(after.arenas_current, ARENA_CACHE, "wave %d: %zu arenas left mapped", w,
                     after.arenas_current);
        cr_assert(after.arenas_cached <= ARENA_CACHE);
        cr_assert_eq(after.arenas_allocated_total, peak.arenas_allocated_total);
        cr_assert_eq(after.arenas_reclaimed, after.arenas_allocated_total - ARENA_CACHE);

        /* the arenas kept are two of this wave's; the others are unmapped */
        ncached = 0;
        for (size_t k = 0; k < nbases; k++) {
            if (zw_heap_owns(m.h, (void *)bases[k])) {
                cr_assert(ncached < ARENA_CACHE, "wave %d: more arenas owned than cached", w);
                cached[ncached++] = bases[k];
            }
        }
        cr_assert_eq(ncached, ARENA_CACHE);
    }

    cr_assert_eq(zw_heap_trim(m.h), ARENA_CACHE);
    cr_assert(!zw_heap_owns(m.h, (void *)cached[0]) && !zw_heap_owns(m.h, (void *)cached[1]));
    check_census(&m);
    free(bases);
    free(order);
    free(live);
    model_release(&m);
}
