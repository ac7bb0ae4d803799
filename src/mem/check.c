/* mem/check.c - the heap's validity check: walks the arena records, the usable list, the class
 * lists, the pools and their free lists, and the big blocks, and checks the equations stated on
 * the structs of mem_internal.h. Nothing here changes the heap (an ASan build unpoisons a free
 * block's link word to read it and poisons it again).
 *
 * Debug builds with ZW_DEBUG_FULL run it (ZW_ASSERT_EXPENSIVE) where the heap changes shape: a
 * pool taken from an arena (and an arena mapped), a pool emptied (and an arena unmapped), a full
 * pool partial again, a trim. There it checks the records and lists of every arena, the pools of
 * the arena that changed and the free list of the pool that did, in O(arenas + pools of one
 * arena + blocks of one pool); tests (and a trim) check the whole heap, counters included. See
 * docs/mem.md#invariants. */
#include <inttypes.h>
#include <stdarg.h>

#include <zerowaste/mem.h>

#include "mem_internal.h"

/* ---- reporting ---- */

/* Reports the first broken invariant on stderr and returns false. */
static bool __attribute__((format(printf, 2, 3))) broken(const zw_heap *h, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "zw: mem: heap %p is corrupt: ", (const void *)h);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(stderr);
    return false;
}

/* ---- one pool ---- */

/* The block after `b` on a free list (ASan builds keep free blocks poisoned). */
static void *
free_next(const zw_heap *h, void *b)
{
    ASAN_UNPOISON(h, b, sizeof(void *));
    void *next = *(void **)b;
    ASAN_POISON(h, b, sizeof(void *));
    return next;
}

/* A pool in use or spare (not on its arena's freepools): its class, offsets and, with
 * `walk_free`, the pool equation nused + (blocks on `free`) == nextoffset / size, each block of
 * the free list inside the handed-out part of the pool, on a block boundary. */
static bool
pool_is_valid(const zw_heap *h, const pool *p, bool walk_free)
{
    if (p->cls >= ZW_MEM_NCLASSES)
        return broken(h, "pool %p serves class %" PRIu32 ", not one of the %d classes",
                      (void *)p->base, p->cls, ZW_MEM_NCLASSES);
    uint32_t size = (uint32_t)CLASS_SIZE(p->cls);
    uint32_t capacity = (uint32_t)(POOL_SIZE / size);
    uint32_t last = (uint32_t)(POOL_SIZE - size); /* where the last block starts */
    if (p->maxnextoffset != last)
        return broken(h, "pool %p (%" PRIu32 "-byte blocks): maxnextoffset %" PRIu32 " != %" PRIu32,
                      (void *)p->base, size, p->maxnextoffset, last);
    if (p->nextoffset % size != 0 || p->nextoffset > POOL_SIZE || p->nextoffset == 0)
        return broken(h,
                      "pool %p (%" PRIu32 "-byte blocks): nextoffset %" PRIu32
                      " is not a block boundary inside the pool",
                      (void *)p->base, size, p->nextoffset);
    uint32_t carved = p->nextoffset / size; /* blocks handed out at least once */
    if (p->nused > carved)
        return broken(h,
                      "pool %p (%" PRIu32 "-byte blocks): %" PRIu32 " blocks in use, only %" PRIu32
                      " ever handed out",
                      (void *)p->base, size, p->nused, carved);
    if ((p->free == NULL) != (p->nused == capacity))
        return broken(h,
                      "pool %p (%" PRIu32 "-byte blocks): %" PRIu32 " of %" PRIu32
                      " blocks in use but its free list is %s",
                      (void *)p->base, size, p->nused, capacity, p->free == NULL ? "empty" : "not");
    if (!walk_free)
        return true;
    uint32_t nfree = 0;
    for (char *b = p->free; b != NULL; b = free_next(h, b)) {
        uintptr_t off = (uintptr_t)(b - p->base);
        if (b < p->base || off >= p->nextoffset || off % size != 0)
            return broken(h,
                          "pool %p (%" PRIu32 "-byte blocks): free list holds %p, not a "
                          "handed-out block of the pool",
                          (void *)p->base, size, (void *)b);
        if (++nfree > carved)
            return broken(h,
                          "pool %p (%" PRIu32 "-byte blocks): free list longer than the %" PRIu32
                          " blocks handed out (a cycle?)",
                          (void *)p->base, size, carved);
    }
    if (p->nused + nfree != carved)
        return broken(h,
                      "pool %p (%" PRIu32 "-byte blocks): nused %" PRIu32 " + free %" PRIu32
                      " != %" PRIu32 " blocks handed out (nextoffset %" PRIu32 ")",
                      (void *)p->base, size, p->nused, nfree, carved, p->nextoffset);
    return true;
}

/* ---- one arena ---- */

/* What the walk of the arenas adds up, to compare with the heap's totals. */
typedef struct totals {
    size_t nused[ZW_MEM_NCLASSES];   /* blocks in use per class */
    size_t partial[ZW_MEM_NCLASSES]; /* pools with a free block and one in use, per class */
    size_t usable;                   /* arenas with a free pool */
    size_t idle;                     /* arenas with every pool free */
    bool whole;                      /* every pool was walked: the sums above are the heap's */
} totals;

/* The record of one arena: its address, nfreepools == pools on freepools + pools never carved,
 * then each carved pool that is not free. With a `focus` elsewhere, only the record's own fields;
 * in the arena holding `focus`, every pool, and the free list of the pool holding it (of every
 * pool if `focus` is NULL). */
static bool
arena_is_valid(const zw_heap *h, const arena *a, const void *focus, totals *t)
{
    _Static_assert(POOLS_PER_ARENA <= 64, "a pool is a bit of a uint64_t");
    uint64_t free_mask = 0;
    if (a->base == NULL || (uintptr_t)a->base % ARENA_SIZE != 0)
        return broken(h, "arena record %p: base %p is not an arena", (const void *)a,
                      (void *)a->base);
    if (zwi_mem_arena_of(h, a->base) != a)
        return broken(h, "arena %p: the address map does not lead to its record", (void *)a->base);
    if (a->nextpool > POOLS_PER_ARENA || a->nfreepools > POOLS_PER_ARENA)
        return broken(h, "arena %p: nextpool %" PRIu32 " or nfreepools %" PRIu32 " > %u",
                      (void *)a->base, a->nextpool, a->nfreepools, POOLS_PER_ARENA);
    t->usable += a->nfreepools > 0;
    t->idle += a->nfreepools == POOLS_PER_ARENA;
    if (focus != NULL &&
        (focus < (const void *)a->base || focus >= (const void *)(a->base + ARENA_SIZE)))
        return true;
    uint32_t nfree = 0;
    for (const pool *p = a->freepools; p != NULL; p = p->next) {
        ptrdiff_t i = p - a->pools;
        if (i < 0 || i >= (ptrdiff_t)a->nextpool)
            return broken(h, "arena %p: its free pools hold %p, not one of its carved pools",
                          (void *)a->base, (const void *)p);
        if (p->nused != 0)
            return broken(h, "arena %p: free pool %p has %" PRIu32 " blocks in use",
                          (void *)a->base, (void *)p->base, p->nused);
        if (free_mask & ((uint64_t)1 << i))
            return broken(h, "arena %p: free pool %p is twice on its list (a cycle?)",
                          (void *)a->base, (void *)p->base);
        free_mask |= (uint64_t)1 << i;
        nfree++;
    }
    if (a->nfreepools != nfree + (POOLS_PER_ARENA - a->nextpool))
        return broken(
            h, "arena %p: nfreepools %" PRIu32 " != %" PRIu32 " free + %" PRIu32 " never carved",
            (void *)a->base, a->nfreepools, nfree, POOLS_PER_ARENA - a->nextpool);
    for (uint32_t i = 0; i < a->nextpool; i++) {
        const pool *p = &a->pools[i];
        if (p->base != a->base + (size_t)i * POOL_SIZE)
            return broken(h, "arena %p: pool %" PRIu32 " has base %p", (void *)a->base, i,
                          (void *)p->base);
        if (free_mask & ((uint64_t)1 << i))
            continue;
        bool walk = focus == NULL ||
                    (focus >= (const void *)p->base && focus < (const void *)(p->base + POOL_SIZE));
        if (!pool_is_valid(h, p, walk))
            return false;
        t->nused[p->cls] += p->nused;
        if (p->nused > 0 && p->free != NULL)
            t->partial[p->cls]++;
    }
    return true;
}

/* ---- the heap's lists ---- */

/* heap->usable: doubly linked, sorted by nfreepools ascending, every arena with a free pool;
 * heap->last[n] is its last arena with n free pools. */
static bool
usable_is_valid(const zw_heap *h, const totals *t)
{
    size_t n = 0;
    const arena *prev = NULL;
    for (const arena *a = h->usable; a != NULL; prev = a, a = a->next) {
        if (a->prev != prev)
            return broken(h, "usable list: arena %p does not point back to its predecessor",
                          (void *)a->base);
        if (a->nfreepools == 0)
            return broken(h, "usable list: arena %p has no free pool", (void *)a->base);
        if (prev != NULL && prev->nfreepools > a->nfreepools)
            return broken(h,
                          "usable list: arena %p (%" PRIu32 " free pools) after one with %" PRIu32,
                          (void *)a->base, a->nfreepools, prev->nfreepools);
        bool last_of_n = a->next == NULL || a->next->nfreepools != a->nfreepools;
        if (last_of_n && h->last[a->nfreepools] != a)
            return broken(h,
                          "usable list: last[%" PRIu32 "] is not arena %p, the last with %" PRIu32
                          " free pools",
                          a->nfreepools, (void *)a->base, a->nfreepools);
        if (++n > h->nrecords)
            return broken(h, "usable list longer than the %zu arenas (a cycle?)", h->nrecords);
    }
    if (n != t->usable)
        return broken(h, "usable list holds %zu arenas, %zu have a free pool", n, t->usable);
    for (unsigned k = 0; k <= POOLS_PER_ARENA; k++) {
        const arena *a = h->last[k];
        if (a != NULL && a->nfreepools != k)
            return broken(h, "last[%u] is arena %p, which has %" PRIu32 " free pools", k,
                          (void *)a->base, a->nfreepools);
    }
    return true;
}

/* used[c]: doubly linked pools of class c, each partial, or a single spare (nused == 0); after
 * a whole walk, they are all the class's partial pools and hold what its counter says. */
static bool
class_lists_are_valid(const zw_heap *h, const totals *t)
{
    for (unsigned c = 0; c < ZW_MEM_NCLASSES; c++) {
        size_t partial = 0;
        size_t bound = h->nrecords * POOLS_PER_ARENA;
        const pool *prev = NULL;
        for (const pool *p = h->used[c]; p != NULL; prev = p, p = p->next) {
            if (p->prev != prev)
                return broken(h,
                              "class %u list: pool %p does not point back to its "
                              "predecessor",
                              c, (void *)p->base);
            if (p->cls != c)
                return broken(h, "class %u list: pool %p serves class %" PRIu32, c, (void *)p->base,
                              p->cls);
            if (p->free == NULL)
                return broken(h, "class %u list: pool %p is full", c, (void *)p->base);
            if (p->nused == 0 && (prev != NULL || p->next != NULL))
                return broken(h, "class %u list: spare pool %p is not alone", c, (void *)p->base);
            partial += p->nused > 0;
            if (partial > bound)
                return broken(h, "class %u list: longer than the heap's pools (a cycle?)", c);
        }
        if (!t->whole)
            continue;
        if (partial != t->partial[c])
            return broken(h, "class %u: %zu partial pools on its list, %zu in the arenas", c,
                          partial, t->partial[c]);
#if ZW_MEM_COUNTERS
        if (h->nused[c] != t->nused[c])
            return broken(h, "class %u: counter says %zu blocks in use, its pools hold %zu", c,
                          h->nused[c], t->nused[c]);
#endif
    }
    return true;
}

/* heap->big: doubly linked, tagged; nbig and big_bytes count the ones not in quarantine. */
static bool
big_blocks_are_valid(const zw_heap *h)
{
    size_t n = 0;
    size_t bytes = 0;
    const big_header *prev = NULL;
    for (const big_header *b = h->big; b != NULL; prev = b, b = b->next) {
        if (b->prev != prev)
            return broken(h, "big block %p does not point back to its predecessor",
                          (const void *)(b + 1));
        if (b->tag != BIG_TAG(h, b))
            return broken(h, "big block %p has a wrong tag", (const void *)(b + 1));
        bool quarantined = false;
        for (unsigned i = 0; i < QUARANTINE_LEN; i++)
            quarantined |= h->quarantine[i] == b;
        if (!quarantined) {
            n++;
            bytes += b->size;
        }
    }
    if (n != h->nbig || bytes != h->big_bytes)
        return broken(h, "big blocks: %zu blocks of %zu bytes in use, counters say %zu of %zu", n,
                      bytes, h->nbig, h->big_bytes);
    return true;
}

/* ---- the whole heap ---- */

bool
zwi_mem_heap_is_valid(const zw_heap *h, const void *focus)
{
    totals t = {.whole = focus == NULL};
    size_t n = 0;
    size_t highest = 0;
    const arena *prev = NULL;
    for (const arena *a = h->records; a != NULL; prev = a, a = a->all_next) {
        if (a->all_prev != prev)
            return broken(h, "arena record %p does not point back to its predecessor",
                          (const void *)a);
        if (++n > h->nrecords)
            return broken(h, "more arena records than the %zu counted (a cycle?)", h->nrecords);
        if (!arena_is_valid(h, a, focus, &t))
            return false;
        highest = n;
    }
    if (highest != h->nrecords || h->nrecords != h->arenas_current)
        return broken(h, "%zu arena records, counters say %zu records and %zu arenas", highest,
                      h->nrecords, h->arenas_current);
    if (h->arenas_highwater < h->arenas_current || h->arenas_total < h->arenas_current)
        return broken(h, "%zu arenas mapped, more than the high-water mark %zu or the total %zu",
                      h->arenas_current, h->arenas_highwater, h->arenas_total);
    if (t.idle != h->arenas_idle || h->arenas_idle > h->arena_cache)
        return broken(h, "%zu arenas wholly free, counter says %zu (cache %zu)", t.idle,
                      h->arenas_idle, h->arena_cache);
    return usable_is_valid(h, &t) && class_lists_are_valid(h, &t) &&
           (focus != NULL || big_blocks_are_valid(h));
}
