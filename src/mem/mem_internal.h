/* mem/mem_internal.h - the heap's data structures, shared by the files of the mem layer.
 *
 *   heap --usable--> arena records (sorted by free pools, fullest first)
 *        --used[c]--> partial pools of class c (the head serves allocations)
 *        --map------> two-level table: address >> 20 -> arena record (arenas are 1 MiB aligned)
 *   arena (1 MiB, mapped by raw) = 64 pools of 16 KiB, each all blocks of one class;
 *   arena record (the end of a page, outside the arena) = the arena's fields + its 64 pool
 *   headers.
 * Keeping the headers out of the arenas means a free touches the freed block and a header in
 * a small, dense array instead of a second page of a big heap.
 *
 * See docs/mem.md for the walk-through; the invariants are stated on each struct. */
#ifndef ZW_MEM_INTERNAL_H
#define ZW_MEM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <zerowaste/mem.h>

#include "zw_assert.h"

/* Exact counters on the hot path (blocks and bytes in use). The benchmark builds a copy with
 * ZW_MEM_COUNTERS=0 to measure what they cost; the getters then walk the heap. */
#ifndef ZW_MEM_COUNTERS
#    define ZW_MEM_COUNTERS 1
#endif

#define POOL_SIZE        ZW_MEM_POOL_SIZE
#define POOL_MASK        (POOL_SIZE - 1)
#define ARENA_SIZE       ZW_MEM_ARENA_SIZE
#define POOLS_PER_ARENA  ((unsigned)(ARENA_SIZE / POOL_SIZE)) /* 64: arenas are aligned */
#define CLASS_SIZE(c)    (((size_t)(c) + 1) << 4)
#define POOL_INDEX(p)    (((uintptr_t)(p) >> 14) & (POOLS_PER_ARENA - 1))
#define DEFAULT_CACHE    2

/* The address map: bits 20..33 of an address pick a leaf entry, bits 34..47 the leaf. */
#define MAP_LEAF_BITS 14
#define MAP_ROOT_BITS 14
#define MAP_LEAF_LEN  ((size_t)1 << MAP_LEAF_BITS)
#define MAP_ROOT_LEN  ((size_t)1 << MAP_ROOT_BITS)

/* Debug-mode byte patterns (docs/mem.md#debug). */
#define ZW_FILL_FRESH 0xCB /* handed out, never written: reading it is a bug */
#define ZW_FILL_DEAD  0xDB /* freed: a changed byte found at reuse is a write after free */
#define ZW_FILL_GUARD 0xFB /* red zone around a block: a changed byte is an overrun/underrun */

struct arena;

/* A pool: blocks of one size class. Between calls into the heap:
 *   - in use (nused > 0): free == NULL iff the pool is full; a partial pool is on used[cls],
 *     a full pool on no list;
 *   - spare (nused == 0, on used[cls]): the class's only pool, kept when its last block was
 *     freed so that allocating and freeing one block does not move a pool in and out of its
 *     arena each time. A spare is always alone on its list. An arena holding nothing in use
 *     but spares keeps them only while the heap has no more arenas than heap->arena_cache, so
 *     spares never keep more than arena_cache arenas mapped;
 *   - empty (nused == 0): on its arena's freepools list, linked through `next`; `cls`, `free`
 *     and `nextoffset` still describe the last class it served, so it can be reused as is;
 *   - blocks at offsets < nextoffset have been handed out at least once; blocks from
 *     nextoffset to maxnextoffset never were (their memory may never have been touched). */
typedef struct pool {
    void *free;             /* freed blocks, last in first out, linked through their first word */
    uint32_t nused;         /* blocks handed out and not yet returned */
    uint32_t cls;           /* size class: blocks are CLASS_SIZE(cls) bytes; UINT32_MAX: none yet */
    struct pool *next;      /* next partial pool of the class, or next empty pool of the arena */
    struct pool *prev;      /* previous partial pool of the class; NULL at the head */
    char *base;             /* the pool's 16 KiB of blocks, inside its arena */
    uint32_t nextoffset;    /* offset from base of the first block never handed out */
    uint32_t maxnextoffset; /* POOL_SIZE - block size: the last offset a block may start at */
} pool;

_Static_assert(sizeof(pool) == 48, "a pool header is 48 bytes, as in CPython"); 

/* An arena record, kept outside the arena (so all 64 pools hold blocks). Between calls:
 *   - base != NULL iff the record describes a mapped arena;
 *   - nfreepools = pools on `freepools` + pools never carved (from pool_address to the end);
 *   - the arena is on heap->usable iff nfreepools > 0; that list is sorted by nfreepools,
 *     ascending, and heap->last[n] is its last arena with nfreepools == n (NULL if none);
 *   - heap->arenas_idle counts arenas with all their pools free; it never exceeds
 *     heap->arena_cache between calls;
 *   - every record is on heap->records (linked through all_next/all_prev) from the arena's
 *     mapping to its unmapping, when the record's page is unmapped too. */
typedef struct arena {
    char *base;           /* the arena's first byte, aligned to ARENA_SIZE */
    pool *freepools;      /* empty pools, linked through pool->next */
    uint32_t nextpool;    /* index of the next pool never carved; POOLS_PER_ARENA once all are */
    uint32_t nfreepools;  /* pools available for any class */
    struct arena *next;   /* on heap->usable: the arena with as many or more free pools */
    struct arena *prev;   /* on heap->usable: the arena with as many or fewer free pools */
    struct arena *all_next; /* on heap->records: every arena's record */
    struct arena *all_prev;
    pool pools[64];       /* header of the pool at base + i * POOL_SIZE; valid for i < nextpool */
} arena;

#define RECORD_SIZE 4096 /* each arena record is one page of its own */
_Static_assert(sizeof(arena) <= RECORD_SIZE, "an arena record fits a page");

/* Where the record and the heap sit in their pages. Everything raw maps is page aligned, so
 * the heap's hot first lines, every record's first lines and the first block of every pool
 * would all fall in L1 set 0; AMD's L1 picks a way by a hash of the address bits above the
 * page offset, and two such lines whose hashes match evict each other at every access (seen:
 * a malloc+free pair at 6-7 ns or 18-21 ns depending on where ASLR put the pages, and the
 * heap-to-record distance made the match frequent). So the record ends its page (sets 15-63)
 * and the heap starts one line into its mapping (its hot fields in sets 1-9): the heap's and
 * the records' lines never share a set, and set 0 is left to the blocks. */
#define RECORD_OFFSET ((RECORD_SIZE - sizeof(arena)) & ~(size_t)63) /* 960 */
#define HEAP_OFFSET   64


/* The header in front of a big block (more than 512 bytes). Big blocks of a heap are on one
 * doubly linked list so that zw_heap_destroy() can give them all back. */
typedef struct big_header {
    size_t size;             /* bytes requested */
    uintptr_t tag;           /* BIG_TAG(heap, block): says the block is a live big block of it */
    struct big_header *prev; /* NULL at the head of heap->big */
    struct big_header *next;
} big_header;

#define BIG_MAGIC       ((uintptr_t)0x5a57424947424c4bULL) /* "ZWBIGBLK" */
#define BIG_TAG(h, hdr) ((uintptr_t)(h) ^ (uintptr_t)(hdr) ^ BIG_MAGIC)

/* Big blocks freed in debug mode wait here before going back to raw, so that a second free
 * or a write to them is still seen. */
#define QUARANTINE_LEN 16
#define FREED_LEN      16


struct zw_heap {
    /* -- hot: read by every malloc and free -- */
    size_t small_limit;             /* 512, or 0 in debug mode: requests above go the slow way */
    bool debug;                     /* debug mode: every call goes through debug.c */
    pool *used[ZW_MEM_NCLASSES];    /* partial pools of each class; allocations come from the head */
    size_t nused[ZW_MEM_NCLASSES];  /* blocks of each class in use (ZW_MEM_COUNTERS) */

    /* -- big blocks -- */
    big_header *big;                /* live big blocks (and quarantined ones in debug mode) */
    size_t nbig;                    /* big blocks in use (not counting the quarantine) */
    size_t big_bytes;               /* bytes requested for them */
    /* the headers of the last FREED_LEN big blocks given back to raw (and not handed out again
     * since): a free of one is a double free, told as such without reading its memory */
    const big_header *freed[FREED_LEN];
    unsigned freed_next;            /* next slot of `freed` to fill */

    /* -- arenas -- */
    arena *usable;                  /* arenas with a free pool, fullest first */
    arena *last[POOLS_PER_ARENA + 1]; /* last[n]: last arena of `usable` with n free pools */
    arena *records;                 /* the records of all mapped arenas */
    size_t nrecords;                /* records on that list: each is a RECORD_SIZE page */
    size_t arenas_total;            /* arenas ever mapped */
    size_t arenas_current;          /* arenas mapped now */
    size_t arenas_highwater;        /* the most arenas mapped at once */
    size_t arenas_idle;             /* arenas with all their pools free (see arena) */
    size_t arena_cache;             /* the most such arenas kept mapped */

    /* -- configuration and debug state -- */
    zw_raw *raw;                    /* the door every page and big block comes from */
    bool owns_raw;                  /* the heap created `raw` and destroys it */
    unsigned flags;                 /* enum zw_heap_flags */
    FILE *report;                   /* where debug reports go; NULL: stderr */
    size_t debug_errors;            /* errors reported by debug mode */
    uint64_t serial;                /* debug mode: serial number of the last block handed out */
    big_header *quarantine[QUARANTINE_LEN]; /* debug mode: freed big blocks, oldest at qhead */
    unsigned qhead;                 /* next slot of `quarantine` to fill (and to evict) */
    size_t map_bytes;               /* pages mapped for map leaves */
    /* debug mode: the set of big blocks (live and quarantined), open addressing with linear
     * probing; a debug free looks a pointer up here before reading anything near it */
    big_header **bigset;            /* bigset_cap slots: NULL empty, BIGSET_GONE removed */
    size_t bigset_cap;              /* a power of two, or 0 before the first big block */
    size_t bigset_used;             /* slots not NULL (live + removed); at most cap / 2 */

    /* -- the address map; its untouched pages cost nothing -- */
    arena **map[MAP_ROOT_LEN];
};

_Static_assert(HEAP_OFFSET + offsetof(struct zw_heap, big) <= RECORD_OFFSET,
               "the heap's hot lines come before the lines of a record in a page");

/* AddressSanitizer builds: free blocks inside pools are poisoned, so a use after free or an
 * overrun into a neighbour is reported by ASan. Invariant: every free block of a pool (on a
 * free list or never handed out) is poisoned whole; a handed-out block is addressable for the
 * bytes requested only. Debug heaps are left alone: their own checks read freed blocks. */
#if defined(__SANITIZE_ADDRESS__)
#    define ZW_ASAN 1
#elif defined(__has_feature)
#    if __has_feature(address_sanitizer)
#        define ZW_ASAN 1
#    endif
#endif
#ifdef ZW_ASAN
#    include <sanitizer/asan_interface.h>
#    define ASAN_POISON(h, p, n)                                                                  \
        ((h)->debug ? (void)0 : ASAN_POISON_MEMORY_REGION((p), (n)))
#    define ASAN_UNPOISON(h, p, n)                                                                \
        ((h)->debug ? (void)0 : ASAN_UNPOISON_MEMORY_REGION((p), (n)))
/* Makes the first `n` of a block's `size` bytes addressable and the rest not. */
#    define ASAN_FIT(h, p, n, size) (ASAN_POISON(h, p, size), ASAN_UNPOISON(h, p, n))
#else
#    define ASAN_POISON(h, p, n)    ((void)0)
#    define ASAN_UNPOISON(h, p, n)  ((void)0)
#    define ASAN_FIT(h, p, n, size) ((void)0)
#endif

/* The arena holding `p`, or NULL if `p` is not in one of this heap's arenas. */
static inline arena *
zwi_mem_arena_of(const zw_heap *h, const void *p)
{
    uintptr_t key = (uintptr_t)p >> 20;
    if (ZW_UNLIKELY(key >> (MAP_ROOT_BITS + MAP_LEAF_BITS)))
        return NULL;
    arena **leaf = h->map[key >> MAP_LEAF_BITS];
    return leaf != NULL ? leaf[key & (MAP_LEAF_LEN - 1)] : NULL;
}

/* The header of the pool holding block `b` of arena `a`. */
static inline pool *
zwi_mem_pool_of(arena *a, const void *b)
{
    return &a->pools[POOL_INDEX(b)];
}

/* The record holding pool header `p`. */
static inline arena *
zwi_mem_arena_of_pool(pool *p)
{
    return (arena *)((char *)(p - POOL_INDEX(p->base)) - offsetof(arena, pools));
}

/* The installed heap observer, or NULL: read by every public heap call (see zw_heap_hook). */
ZW_HIDDEN extern const zw_heap_hook *zwi_mem_heap_hook;

static inline const zw_heap_hook *
zwi_mem_get_hook(void)
{
    return __atomic_load_n(&zwi_mem_heap_hook, __ATOMIC_ACQUIRE);
}

/* True if pool `p` of arena `a`, whose last block is being freed, can stay as its class's
 * spare with no further check: it is alone on its class list, and its arena surely holds a
 * pool that is not a spare (more in use than there are classes) or the heap is small. */
static inline bool
zwi_mem_stays_spare(const zw_heap *h, const arena *a, const pool *p)
{
    return p->prev == NULL && p->next == NULL &&
           (a->nfreepools + ZW_MEM_NCLASSES < POOLS_PER_ARENA ||
            h->arenas_current <= h->arena_cache);
}

/* ---- the fast paths, inline for the layers above ----
 *
 * The common case of zw_heap_malloc() and zw_heap_free() on a small block: a pop from, or a push
 * on, a pool's free list that changes no pool's state. heap.c inlines them into the public calls,
 * and obj into every object's allocation and death (through zwi_mem_try_malloc/_free, which
 * check the observer first). Each answers NULL (or false) when the call must go the full way:
 * debug mode, a big block, a pool to take, to fill or to empty, and always in ASan builds (the
 * full way keeps the poisoning). Neither changes anything then. */

/* A block of n bytes (1..512) from the head pool of its class, or NULL. */
static inline __attribute__((always_inline)) void *
zwi_mem_pop_fast(zw_heap *h, size_t n)
{
#ifndef ZW_ASAN
    if (ZW_LIKELY(n - 1 < h->small_limit)) { /* 1..512 and not debug; n == 0 wraps around */
        unsigned cls = (unsigned)((n - 1) >> 4);
        pool *p = h->used[cls];
        if (ZW_LIKELY(p != NULL)) {
            void *b = p->free;
            void *next = *(void **)b;
            if (ZW_LIKELY(next != NULL)) {
                /* The next block of the class is handed out later, maybe after many others:
                 * start bringing it in now (a freed block is usually cold in a big heap). */
                __builtin_prefetch(next, 1, 3);
                p->free = next;
                p->nused++;
#    if ZW_MEM_COUNTERS
                h->nused[cls]++;
#    endif
                return b;
            }
        }
    }
#endif
    (void)h;
    (void)n;
    return NULL;
}

/* Pushes block `p` of arena `a` on its pool's free list if that changes no pool's state (not
 * full before, and not empty after unless it stays its class's spare); false otherwise. */
static inline __attribute__((always_inline)) bool
zwi_mem_push_fast(zw_heap *h, arena *a, void *p)
{
#ifndef ZW_ASAN
    pool *pl = zwi_mem_pool_of(a, p);
    void *last = pl->free;
    uint32_t nused = pl->nused;
    if (ZW_LIKELY(last != NULL && (nused > 1 || zwi_mem_stays_spare(h, a, pl)))) {
        *(void **)p = last;
        pl->free = p;
        pl->nused = nused - 1;
#    if ZW_MEM_COUNTERS
        h->nused[pl->cls]--;
#    endif
        return true;
    }
#endif
    (void)h;
    (void)a;
    (void)p;
    return false;
}

/* Moves small block `p` of arena `a` to a block of another class for n bytes when both the
 * pop and the push take the fast path; NULL otherwise, with nothing changed. The push is
 * checked before the pop: the new block comes from a pool of another class, so the pop cannot
 * change what the push depends on. */
static inline __attribute__((always_inline)) void *
zwi_mem_move_fast(zw_heap *h, arena *a, void *p, size_t n)
{
#ifndef ZW_ASAN
    pool *pl = zwi_mem_pool_of(a, p);
    size_t size = CLASS_SIZE(pl->cls);
    if (ZW_UNLIKELY(pl->free == NULL || (pl->nused <= 1 && !zwi_mem_stays_spare(h, a, pl))))
        return NULL;
    void *q = zwi_mem_pop_fast(h, n);
    if (ZW_UNLIKELY(q == NULL))
        return NULL;
    /* size is a multiple of 16 and the new block holds a whole class: rounding the copy up to
     * 16 stays inside both blocks */
    size_t len = n < size ? n : size;
    for (size_t i = 0; i < len; i += 16)
        memcpy((char *)q + i, (const char *)p + i, 16);
    *(void **)p = pl->free;
    pl->free = p;
    pl->nused--;
#    if ZW_MEM_COUNTERS
    h->nused[pl->cls]--;
#    endif
    return q;
#else
    (void)h;
    (void)a;
    (void)p;
    (void)n;
    return NULL;
#endif
}

/* zw_heap_malloc()'s fast path: a block, or NULL (call zw_heap_malloc()). */
static inline __attribute__((always_inline)) void *
zwi_mem_try_malloc(zw_heap *h, size_t n)
{
    if (ZW_UNLIKELY(zwi_mem_get_hook() != NULL))
        return NULL;
    return zwi_mem_pop_fast(h, n);
}

/* zw_heap_realloc()'s fast path for small blocks: the block (moved or not), or NULL: call
 * zw_heap_realloc(). Keeps the block when n fits its class and is more than three quarters of
 * it, as zw_heap_realloc() does. */
static inline __attribute__((always_inline)) void *
zwi_mem_try_realloc(zw_heap *h, void *p, size_t n)
{
    if (ZW_UNLIKELY(zwi_mem_get_hook() != NULL))
        return NULL;
    if (p == NULL)
        return zwi_mem_pop_fast(h, n);
    arena *a = zwi_mem_arena_of(h, p);
    if (ZW_UNLIKELY(a == NULL || h->debug))
        return NULL;
#ifndef ZW_ASAN
    size_t size = CLASS_SIZE(zwi_mem_pool_of(a, p)->cls);
    if (n <= size && 4 * n > 3 * size)
        return p;
#endif
    return zwi_mem_move_fast(h, a, p, n);
}

/* zw_heap_free()'s fast path: true if `p` was freed, false: call zw_heap_free(). */
static inline __attribute__((always_inline)) bool
zwi_mem_try_free(zw_heap *h, void *p)
{
    if (ZW_UNLIKELY(zwi_mem_get_hook() != NULL))
        return false;
    arena *a = zwi_mem_arena_of(h, p);
    return a != NULL && !h->debug && zwi_mem_push_fast(h, a, p);
}

/* arena.c: pools and arenas, the slow paths */
ZW_HIDDEN pool *zwi_mem_take_pool(zw_heap *h, unsigned cls);
ZW_HIDDEN void zwi_mem_pool_emptied(zw_heap *h, pool *p);
ZW_HIDDEN bool zwi_mem_pool_to_arena(zw_heap *h, pool *p);

ZW_HIDDEN void zwi_mem_release_all_arenas(zw_heap *h);
ZW_HIDDEN size_t zwi_mem_trim(zw_heap *h);
ZW_HIDDEN void zwi_mem_for_each_arena(const zw_heap *h, void (*fn)(const arena *a, void *ctx),
                                      void *ctx);

/* heap.c: the allocator without debug checks, used by debug.c underneath its own layout */
ZW_HIDDEN void *zwi_mem_alloc_block(zw_heap *h, size_t n);
ZW_HIDDEN void *zwi_mem_calloc_block(zw_heap *h, size_t n);
ZW_HIDDEN void zwi_mem_free_block(zw_heap *h, void *p);
ZW_HIDDEN size_t zwi_mem_block_size(const zw_heap *h, const void *p);
ZW_HIDDEN void zwi_mem_big_release(zw_heap *h, big_header *hdr);
/* True if `hdr` is the header of a big block of `h` given back to raw lately (reads nothing of
 * it): a free or realloc of its data is a double free. */
ZW_HIDDEN bool zwi_mem_big_freed(const zw_heap *h, const big_header *hdr);

/* debug.c */
ZW_HIDDEN void *zwi_mem_debug_malloc(zw_heap *h, size_t n, bool zero);
ZW_HIDDEN void *zwi_mem_debug_realloc(zw_heap *h, void *p, size_t n);
ZW_HIDDEN void zwi_mem_debug_free(zw_heap *h, void *p);
ZW_HIDDEN size_t zwi_mem_debug_usable_size(const zw_heap *h, const void *p);
ZW_HIDDEN void zwi_mem_debug_prepare_pool(pool *p);
ZW_HIDDEN void zwi_mem_debug_flush_quarantine(zw_heap *h);
ZW_HIDDEN void zwi_mem_debug_release(zw_heap *h);

/* check.c: true if every invariant stated on the structs above holds (pools, arenas, the
 * usable and class lists, the counters, the big blocks); otherwise reports the first broken one
 * on stderr and returns false. `focus` NULL checks everything; otherwise the arena records and
 * lists, the pools of the arena holding `focus` and the free list of its pool (the one that just
 * changed shape): what changed, in O(arenas), without the whole-heap sums.
 * Debug builds with ZW_DEBUG_FULL run it at each change of shape (ZW_ASSERT_EXPENSIVE). */
ZW_HIDDEN bool zwi_mem_heap_is_valid(const zw_heap *h, const void *focus);

/* domain.c */
ZW_HIDDEN bool zwi_mem_traceback(const void *ptr, FILE *out);

/* heap.c: the public calls without the observer */
ZW_HIDDEN void *zwi_mem_malloc_unhooked(zw_heap *h, size_t n);
ZW_HIDDEN void *zwi_mem_calloc_unhooked(zw_heap *h, size_t nelem, size_t elsize);
ZW_HIDDEN void *zwi_mem_realloc_unhooked(zw_heap *h, void *p, size_t n);
ZW_HIDDEN void zwi_mem_free_unhooked(zw_heap *h, void *p);

/* hook.c: the public calls while an observer is installed (built with frame pointers, so a
 * tracer walking the stack from the callback reaches the caller of zw_heap_malloc()) */
ZW_HIDDEN void *zwi_mem_hooked_malloc(zw_heap *h, size_t n);
ZW_HIDDEN void *zwi_mem_hooked_calloc(zw_heap *h, size_t nelem, size_t elsize);
ZW_HIDDEN void *zwi_mem_hooked_realloc(zw_heap *h, void *p, size_t n);
ZW_HIDDEN void zwi_mem_hooked_free(zw_heap *h, void *p);
ZW_HIDDEN unsigned zwi_mem_env_flags(void);

#endif /* ZW_MEM_INTERNAL_H */
