/* mem/arena.c - arenas and pools: the slow paths. A pool moves between three states (partial on
 * heap->used[cls], full on no list, empty on its arena's freepools) only here and in heap.c's
 * pool_exhausted()/pool_was_full(). Arenas are kept on heap->usable sorted by free pools, so
 * allocation fills the fullest arena first and nearly empty arenas drain; an arena whose pools
 * are all free is unmapped unless the small cache of free arenas has room.
 * See docs/mem.md#arenas. */
#include <errno.h>
#include <string.h>

#include <zerowaste/mem.h>

#include "mem_internal.h"

/* ---- the address map ---- */

/* Records `a` (or NULL) as the arena at `base`; 0, or -1 if a leaf cannot be mapped. */
static int
map_set(zw_heap *h, const char *base, arena *a)
{
    uintptr_t key = (uintptr_t)base >> 20;
    ZW_ASSERT((key >> (MAP_ROOT_BITS + MAP_LEAF_BITS)) == 0);
    arena ***slot = &h->map[key >> MAP_LEAF_BITS];
    if (*slot == NULL) {
        if (a == NULL)
            return 0;
        size_t leaf_size = MAP_LEAF_LEN * sizeof(arena *);
        *slot = zw_raw_map(h->raw, leaf_size, 0);
        if (*slot == NULL)
            return -1;
        h->map_bytes += leaf_size;
    }
    (*slot)[key & (MAP_LEAF_LEN - 1)] = a;
    return 0;
}

/* ---- arena records ---- */

/* A record for a new arena, on a page of its own (zeroed by raw); NULL if raw refuses it. */
static arena *
record_new(zw_heap *h)
{
    arena *a = zw_raw_map(h->raw, RECORD_SIZE, 0);
    if (a == NULL)
        return NULL;
    a->all_next = h->records;
    if (h->records != NULL)
        h->records->all_prev = a;
    h->records = a;
    h->nrecords++;
    return a;
}

/* Unlinks a record and gives its page back. */
static void
record_release(zw_heap *h, arena *a)
{
    if (a->all_prev != NULL)
        a->all_prev->all_next = a->all_next;
    else
        h->records = a->all_next;
    if (a->all_next != NULL)
        a->all_next->all_prev = a->all_prev;
    h->nrecords--;
    zw_raw_unmap(h->raw, a, RECORD_SIZE);
}

/* Calls `fn` on every mapped arena. */
void
zwi_mem_for_each_arena(const zw_heap *h, void (*fn)(const arena *a, void *ctx), void *ctx)
{
    for (const arena *a = h->records; a != NULL; a = a->all_next)
        fn(a, ctx);
}

/* ---- the usable list, sorted by free pools ---- */

static void
usable_unlink(zw_heap *h, arena *a)
{
    unsigned n = a->nfreepools;
    if (h->last[n] == a)
        h->last[n] = (a->prev != NULL && a->prev->nfreepools == n) ? a->prev : NULL;
    if (a->prev != NULL)
        a->prev->next = a->next;
    else
        h->usable = a->next;
    if (a->next != NULL)
        a->next->prev = a->prev;
    a->next = a->prev = NULL;
}

static void
usable_insert_after(zw_heap *h, arena *a, arena *after)
{
    a->prev = after;
    a->next = after != NULL ? after->next : h->usable;
    if (a->next != NULL)
        a->next->prev = a;
    if (after != NULL)
        after->next = a;
    else
        h->usable = a;
}

/* `a`, on the list with n free pools, now has n + 1: move it behind the other arenas with n. */
static void
usable_moved_up(zw_heap *h, arena *a, unsigned n)
{
    arena *last_n = h->last[n];
    ZW_ASSERT(last_n != NULL);
    if (last_n == a)
        h->last[n] = (a->prev != NULL && a->prev->nfreepools == n) ? a->prev : NULL;
    if (h->last[n + 1] == NULL)
        h->last[n + 1] = a;
    if (last_n != a) {
        usable_unlink(h, a);
        usable_insert_after(h, a, last_n);
    }
    a->nfreepools = n + 1;
}

/* ---- arenas ---- */

/* Maps a new arena and makes it the only usable one (called when none has a free pool). */
static arena *
arena_new(zw_heap *h)
{
    ZW_ASSERT(h->usable == NULL);
    arena *a = record_new(h);
    if (a == NULL)
        return NULL;
    char *base = zw_raw_map(h->raw, ARENA_SIZE, ARENA_SIZE);
    if (base == NULL)
        goto out_record;
    if (map_set(h, base, a) != 0)
        goto out_unmap;
    a->base = base;
    a->nfreepools = POOLS_PER_ARENA;
    usable_insert_after(h, a, NULL);
    h->last[POOLS_PER_ARENA] = a;
    h->arenas_idle++; /* for a moment: the caller takes a pool at once */
    h->arenas_total++;
    h->arenas_current++;
    if (h->arenas_current > h->arenas_highwater)
        h->arenas_highwater = h->arenas_current;
    return a;
out_unmap:
    zw_raw_unmap(h->raw, base, ARENA_SIZE);
out_record:
    record_release(h, a);
    errno = ENOMEM;
    return NULL;
}

/* Unmaps an arena that is on the usable list with all its pools free. */
static void
arena_release(zw_heap *h, arena *a)
{
    ZW_ASSERT(a->nfreepools == POOLS_PER_ARENA);
    usable_unlink(h, a);
    map_set(h, a->base, NULL); /* the leaf exists: it cannot fail */
    ASAN_UNPOISON(h, a->base, ARENA_SIZE); /* the next user of these addresses starts clean */
    zw_raw_unmap(h->raw, a->base, ARENA_SIZE);
    record_release(h, a);
    h->arenas_idle--;
    h->arenas_current--;
}

/* Makes `p` (fresh or empty) a partial pool of class `cls` with a free block at its head. */
static void
pool_init(zw_heap *h, pool *p, unsigned cls)
{
    p->nused = 0;
    p->next = p->prev = NULL;
    if (p->cls == cls && p->free != NULL)
        return; /* it last served this class: its free list is still good (CPython does this) */
    size_t size = CLASS_SIZE(cls);
    p->cls = cls;
    p->maxnextoffset = (uint32_t)(POOL_SIZE - size);
    if (h->debug)
        zwi_mem_debug_prepare_pool(p);
    ASAN_POISON(h, p->base, POOL_SIZE);
    p->free = p->base;
    ASAN_UNPOISON(h, p->free, sizeof(void *));
    *(void **)p->free = NULL;
    ASAN_POISON(h, p->free, sizeof(void *));
    p->nextoffset = (uint32_t)size;
}

/* Takes a pool from the fullest usable arena (mapping one if needed) and puts it at the head of
 * used[cls]. NULL with errno = ENOMEM if no arena can be mapped. */
pool *
zwi_mem_take_pool(zw_heap *h, unsigned cls)
{
    ZW_ASSERT(h->used[cls] == NULL);
    arena *a = h->usable;
    if (a == NULL && (a = arena_new(h)) == NULL)
        return NULL;
    unsigned n = a->nfreepools;
    ZW_ASSERT(n > 0 && a->prev == NULL);
    pool *p;
    if (a->freepools != NULL) {
        p = a->freepools;
        a->freepools = p->next;
    } else {
        ZW_ASSERT(a->nextpool < POOLS_PER_ARENA);
        p = &a->pools[a->nextpool];
        p->base = a->base + (size_t)a->nextpool * POOL_SIZE;
        a->nextpool++;
        p->cls = UINT32_MAX; /* never served a class: pool_init() must carve it */
        p->free = NULL;
    }
    if (n == POOLS_PER_ARENA)
        h->arenas_idle--;
    /* `a` is the head and has the fewest free pools, so it stays first with one fewer. */
    if (h->last[n] == a)
        h->last[n] = NULL;
    a->nfreepools = n - 1;
    if (n - 1 == 0) {
        h->usable = a->next;
        if (a->next != NULL)
            a->next->prev = NULL;
        a->next = NULL;
    } else if (h->last[n - 1] == NULL) {
        h->last[n - 1] = a;
    }
    pool_init(h, p, cls);
    h->used[cls] = p;
    ZW_ASSERT_EXPENSIVE(zwi_mem_heap_is_valid(h, p->base));
    return p;
}

/* Spares of arena `a`: they are heads of class lists with no block in use. */
static unsigned
count_spares(const zw_heap *h, const arena *a)
{
    unsigned n = 0;
    for (unsigned c = 0; c < ZW_MEM_NCLASSES; c++) {
        const pool *p = h->used[c];
        n += p != NULL && p->nused == 0 && zwi_mem_arena_of_pool((pool *)p) == a;
    }
    return n;
}

/* True if nothing in `a` is in use but spares, and the heap is big enough that the arena
 * should not be kept for them: then the spares go back and the arena is free. */
static bool
holds_only_spares(const zw_heap *h, const arena *a)
{
    return a->nfreepools < POOLS_PER_ARENA && a->nfreepools + ZW_MEM_NCLASSES >= POOLS_PER_ARENA &&
           h->arenas_current > h->arena_cache &&
           a->nfreepools + count_spares(h, a) == POOLS_PER_ARENA;
}

static void
return_spares(zw_heap *h, arena *a)
{
    for (unsigned c = 0; c < ZW_MEM_NCLASSES; c++) {
        pool *p = h->used[c];
        if (p != NULL && p->nused == 0 && (a == NULL || zwi_mem_arena_of_pool(p) == a))
            zwi_mem_pool_to_arena(h, p);
    }
}

/* Empty pool `p` (a spare, or a pool whose last block was just freed) leaves its class list
 * for its arena's free pools; the arena moves up the usable list, and is unmapped (with its
 * record, which holds `p`) if wholly free with the cache of free arenas full. Returns false
 * if it was unmapped. */
bool
zwi_mem_pool_to_arena(zw_heap *h, pool *p)
{
    ZW_ASSERT(p->nused == 0);
    if (p->prev != NULL)
        p->prev->next = p->next;
    else
        h->used[p->cls] = p->next;
    if (p->next != NULL)
        p->next->prev = p->prev;
    p->prev = NULL;
    arena *a = zwi_mem_arena_of_pool(p);
    p->next = a->freepools;
    a->freepools = p;
    unsigned n = a->nfreepools;
    if (n == 0) {
        /* The arena was full, so on no list; with one free pool it is the fullest usable. */
        a->nfreepools = 1;
        usable_insert_after(h, a, NULL);
        if (h->last[1] == NULL)
            h->last[1] = a;
        return true;
    }
    usable_moved_up(h, a, n);
    if (n + 1 == POOLS_PER_ARENA) {
        h->arenas_idle++;
        if (h->arenas_idle > h->arena_cache) {
            arena_release(h, a);
            return false;
        }
    }
    return true;
}

/* The last block of pool `p` was freed and heap.c could not simply keep it as its class's
 * spare. A pool alone on its class list stays as the spare unless its arena would then hold
 * only spares in a heap bigger than the arena cache; such an arena gets all its spares back.
 * A pool with company on its list goes back to its arena, and if that leaves the arena with
 * only spares, they go back too. */
void
zwi_mem_pool_emptied(zw_heap *h, pool *p)
{
    ZW_ASSERT(p->nused == 0);
    arena *a = zwi_mem_arena_of_pool(p);
    const char *base = p->base; /* `p` goes if its arena is unmapped */
    (void)base;
    if (p->prev != NULL || p->next != NULL) {
        if (zwi_mem_pool_to_arena(h, p) && holds_only_spares(h, a))
            return_spares(h, a);
    } else if (holds_only_spares(h, a)) {
        return_spares(h, a); /* p is one of them */
    }
    ZW_ASSERT_EXPENSIVE(zwi_mem_heap_is_valid(h, base));
}

/* Gives the spares back, then unmaps every wholly free arena; returns how many. */
size_t
zwi_mem_trim(zw_heap *h)
{
    return_spares(h, NULL);
    size_t released = 0;
    while (h->last[POOLS_PER_ARENA] != NULL) {
        arena_release(h, h->last[POOLS_PER_ARENA]);
        released++;
    }
    ZW_ASSERT_EXPENSIVE(zwi_mem_heap_is_valid(h, NULL));
    return released;
}

/* Unmaps every arena, the map's leaves and the record pages (zw_heap_destroy). */
void
zwi_mem_release_all_arenas(zw_heap *h)
{
    for (arena *a = h->records; a != NULL; a = a->all_next) {
        ASAN_UNPOISON(h, a->base, ARENA_SIZE);
        zw_raw_unmap(h->raw, a->base, ARENA_SIZE);
    }
    for (size_t i = 0; i < MAP_ROOT_LEN; i++) {
        if (h->map[i] != NULL)
            zw_raw_unmap(h->raw, h->map[i], MAP_LEAF_LEN * sizeof(arena *));
    }
    while (h->records != NULL)
        record_release(h, h->records);
}
