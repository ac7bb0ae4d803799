/* mem/heap.c - the malloc family of a heap: the fast paths for small blocks (pop and push on a
 * pool's free list), big blocks through raw, and the heap's life cycle. Pools and arenas change
 * state only in arena.c; debug mode wraps all of this in debug.c. See docs/mem.md#blocks. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <zerowaste/mem.h>

#include "mem_internal.h"

/* ---- small blocks ---- */

/* After its last free block was handed out: carve the next never-used block, or, if there is
 * none, the pool is full and leaves the class list (it returns when a block is freed). */
static void
pool_exhausted(zw_heap *h, pool *p)
{
    size_t size = CLASS_SIZE(p->cls);
    if (p->nextoffset <= p->maxnextoffset) {
        void *b = p->base + p->nextoffset;
        p->nextoffset += (uint32_t)size;
        ASAN_UNPOISON(h, b, sizeof(void *));
        *(void **)b = NULL;
        ASAN_POISON(h, b, sizeof(void *));
        p->free = b;
        return;
    }
    ZW_ASSERT(h->used[p->cls] == p && p->prev == NULL);
    h->used[p->cls] = p->next;
    if (p->next != NULL)
        p->next->prev = NULL;
    p->next = NULL;
}

/* Pops a block of class `cls` from the head pool, taking a pool first if the class has none.
 * `n` (<= the class size) is what the caller asked for: only ASan builds use it, to leave the
 * rest of the block poisoned. zw_heap_malloc() inlines the common case. */
static __attribute__((noinline)) void *
small_alloc(zw_heap *h, unsigned cls, size_t n)
{
    pool *p = h->used[cls];
    if (ZW_UNLIKELY(p == NULL)) {
        p = zwi_mem_take_pool(h, cls);
        if (p == NULL)
            return NULL;
    }
    void *b = p->free;
    ZW_ASSERT(b != NULL && p->cls == cls);
    ASAN_UNPOISON(h, b, sizeof(void *));
    p->nused++;
    p->free = *(void **)b;
    if (ZW_UNLIKELY(p->free == NULL))
        pool_exhausted(h, p);
#if ZW_MEM_COUNTERS
    h->nused[cls]++;
#endif
    ASAN_FIT(h, b, n, CLASS_SIZE(cls));
    (void)n;
    return b;
}

/* A block of a full pool was freed: the pool is partial again and serves the next request of
 * its class (CPython puts it first, so the pool that was just full refills first). */
static void
pool_was_full(zw_heap *h, pool *p)
{
    ZW_ASSERT(p->nused > 0);
    pool *head = h->used[p->cls];
    if (head != NULL && head->nused == 0) {
        zwi_mem_pool_to_arena(h, head); /* the class has a pool again: no spare needed */
        head = h->used[p->cls];
        ZW_ASSERT(head == NULL);
    }
    p->prev = NULL;
    p->next = head;
    if (head != NULL)
        head->prev = p;
    h->used[p->cls] = p;
    ZW_ASSERT_EXPENSIVE(zwi_mem_heap_is_valid(h, p->base));
}

/* Pushes block `b` of arena `a` on its pool's free list and moves the pool between states when
 * it was full or is now empty. zw_heap_free() inlines the common cases. */
static __attribute__((noinline)) void
small_free(zw_heap *h, arena *a, void *b)
{
    pool *p = zwi_mem_pool_of(a, b);
    void *last = p->free;
    ZW_ASSERT(p->nused > 0);
    ASAN_UNPOISON(h, b, sizeof(void *));
    *(void **)b = last;
    ASAN_POISON(h, b, CLASS_SIZE(p->cls));
    p->free = b;
    p->nused--;
#if ZW_MEM_COUNTERS
    h->nused[p->cls]--;
#endif
    if (ZW_UNLIKELY(last == NULL)) {
        pool_was_full(h, p);
    } else if (ZW_UNLIKELY(p->nused == 0) && !zwi_mem_stays_spare(h, a, p)) {
        zwi_mem_pool_emptied(h, p); /* arena.c decides */
    }
}

/* ---- big blocks ---- */

/* A block handed out at `hdr` is no longer one freed lately. */
static void
freed_forget(zw_heap *h, const big_header *hdr)
{
    for (unsigned i = 0; i < FREED_LEN; i++) {
        if (h->freed[i] == hdr)
            h->freed[i] = NULL;
    }
}

bool
zwi_mem_big_freed(const zw_heap *h, const big_header *hdr)
{
    for (unsigned i = 0; i < FREED_LEN; i++) {
        if (h->freed[i] == hdr)
            return true;
    }
    return false;
}

static void
big_link(zw_heap *h, big_header *hdr, size_t n)
{
    freed_forget(h, hdr);
    hdr->size = n;
    hdr->tag = BIG_TAG(h, hdr);
    hdr->prev = NULL;
    hdr->next = h->big;
    if (h->big != NULL)
        h->big->prev = hdr;
    h->big = hdr;
}

static void
big_unlink(zw_heap *h, big_header *hdr)
{
    if (hdr->prev != NULL)
        hdr->prev->next = hdr->next;
    else
        h->big = hdr->next;
    if (hdr->next != NULL)
        hdr->next->prev = hdr->prev;
    hdr->tag = 0;
}

static void *
big_alloc(zw_heap *h, size_t n, bool zero)
{
    if (n > PTRDIFF_MAX - sizeof(big_header)) { /* as CPython: no object is that big */
        errno = ENOMEM;
        return NULL;
    }
    size_t total = sizeof(big_header) + n;
    big_header *hdr = zero ? zw_raw_calloc(h->raw, 1, total) : zw_raw_malloc(h->raw, total);
    if (hdr == NULL)
        return NULL;
    big_link(h, hdr, n);
    h->nbig++;
    h->big_bytes += n;
    return hdr + 1;
}

/* True if the 32 bytes before `p` can be read. They always can for a big block; a foreign
 * pointer may start a mapping (the first block of another heap's arena does), so when they
 * lie on the page before `p`'s, that page is asked about (mincore: 1 free in 128 at most). */
static bool
header_mapped(const void *p)
{
    if (((uintptr_t)p & 4095) >= sizeof(big_header)) /* same page, whatever the page size */
        return true;
    uintptr_t page = (uintptr_t)getpagesize();
    uintptr_t at = ((uintptr_t)p - sizeof(big_header)) & ~(page - 1);
    unsigned char vec;
    return (uintptr_t)p >= sizeof(big_header) && mincore((void *)at, 1, &vec) == 0;
}

/* The header of big block `p`, or NULL if `p` is not a live big block of this heap. Reads the
 * 32 bytes before `p`, which any pointer from a malloc-family function has, once they are
 * known to be mapped. */
static big_header *
big_header_of(const zw_heap *h, const void *p)
{
    if (ZW_UNLIKELY(!header_mapped(p)))
        return NULL;
    big_header *hdr = (big_header *)p - 1;
    return hdr->tag == BIG_TAG(h, hdr) ? hdr : NULL;
}

/* Gives a big block back to raw; the counters are the caller's business. */
void
zwi_mem_big_release(zw_heap *h, big_header *hdr)
{
    big_unlink(h, hdr);
    zw_raw_free(h->raw, hdr);
    h->freed[h->freed_next] = hdr;
    h->freed_next = (h->freed_next + 1) % FREED_LEN;
}

/* Aborts after saying what `verb` (free, realloc) of `p`, not a live big block, is. */
static void __attribute__((noreturn))
big_misuse(const zw_heap *h, const char *verb, void *p, bool freed)
{
    if (freed)
        fprintf(stderr, "zw: mem: %s of %p, a big block already freed (double free)\n", verb, p);
    else
        fprintf(stderr, "zw: mem: %s of %p, a pointer not from this heap "
                        "(run with ZW_MALLOC=debug for details)\n", verb, p);
    (void)h;
    abort();
}

static void
big_free(zw_heap *h, void *p)
{
    if (zwi_mem_big_freed(h, (big_header *)p - 1)) /* its memory may be unmapped: read none */
        big_misuse(h, "free", p, true);
    big_header *hdr = big_header_of(h, p);
    if (hdr == NULL)
        big_misuse(h, "free", p, false);
    h->nbig--;
    h->big_bytes -= hdr->size;
    zwi_mem_big_release(h, hdr);
}

static void *
big_realloc(zw_heap *h, big_header *hdr, size_t n)
{
    if (n > PTRDIFF_MAX - sizeof(big_header)) {
        errno = ENOMEM;
        return NULL;
    }
    size_t old = hdr->size;
    big_header *prev = hdr->prev;
    big_header *next = hdr->next;
    big_header *q = zw_raw_realloc(h->raw, hdr, sizeof(big_header) + n);
    if (q == NULL)
        return NULL; /* the old block is untouched and still linked */
    if (q != hdr) { /* moved: the old place is freed, the new one is live */
        freed_forget(h, q);
        h->freed[h->freed_next] = hdr;
        h->freed_next = (h->freed_next + 1) % FREED_LEN;
    }
    q->size = n;
    q->tag = BIG_TAG(h, q);
    if (prev != NULL)
        prev->next = q;
    else
        h->big = q;
    if (next != NULL)
        next->prev = q;
    h->big_bytes += n - old; /* modular: exact whether the block grew or shrank */
    return q + 1;
}

/* ---- the malloc family without debug checks ---- */

void *
zwi_mem_alloc_block(zw_heap *h, size_t n)
{
    if (n <= ZW_MEM_SMALL_MAX)
        return small_alloc(h, n == 0 ? 0 : (unsigned)((n - 1) >> 4), n);
    return big_alloc(h, n, false);
}

void *
zwi_mem_calloc_block(zw_heap *h, size_t n)
{
    if (n > ZW_MEM_SMALL_MAX)
        return big_alloc(h, n, true);
    void *p = zwi_mem_alloc_block(h, n);
    if (p != NULL)
        memset(p, 0, n);
    return p;
}

void
zwi_mem_free_block(zw_heap *h, void *p)
{
    arena *a = zwi_mem_arena_of(h, p);
    if (a != NULL)
        small_free(h, a, p);
    else
        big_free(h, p);
}

size_t
zwi_mem_block_size(const zw_heap *h, const void *p)
{
    arena *a = zwi_mem_arena_of(h, p);
    if (a != NULL)
        return CLASS_SIZE(zwi_mem_pool_of(a, p)->cls);
    big_header *hdr = big_header_of(h, p);
    return hdr != NULL ? hdr->size : 0;
}

/* ---- public entry points ---- */

/* The fast paths (mem_internal.h) touch the heap's first lines, the pool header and the block,
 * take no stack frame, and leave every state change to small_alloc()/small_free(). ASan builds
 * always take those, which manage the poisoning. */
static inline __attribute__((always_inline)) void *
malloc_unhooked(zw_heap *h, size_t n)
{
    void *b = zwi_mem_pop_fast(h, n);
    if (ZW_LIKELY(b != NULL))
        return b;
    if (ZW_LIKELY(n - 1 < h->small_limit)) {
        unsigned cls = (unsigned)((n - 1) >> 4);
        return small_alloc(h, cls, n);
    }
    if (h->debug)
        return zwi_mem_debug_malloc(h, n, false);
    return zwi_mem_alloc_block(h, n);
}

static inline __attribute__((always_inline)) void *
calloc_unhooked(zw_heap *h, size_t nelem, size_t elsize)
{
    size_t n;
    if (__builtin_mul_overflow(nelem, elsize, &n)) {
        errno = ENOMEM;
        return NULL;
    }
    if (h->debug)
        return zwi_mem_debug_malloc(h, n, true);
    return zwi_mem_calloc_block(h, n);
}

static inline __attribute__((always_inline)) void
free_unhooked(zw_heap *h, void *p)
{
    arena *a = zwi_mem_arena_of(h, p);
    if (ZW_LIKELY(a != NULL && !h->debug)) {
        if (ZW_LIKELY(zwi_mem_push_fast(h, a, p)))
            return;
        small_free(h, a, p);
        return;
    }
    if (p == NULL)
        return;
    if (h->debug)
        zwi_mem_debug_free(h, p);
    else
        big_free(h, p);
}

static inline __attribute__((always_inline)) void *
realloc_unhooked(zw_heap *h, void *p, size_t n)
{
    if (p == NULL)
        return malloc_unhooked(h, n);
    if (h->debug)
        return zwi_mem_debug_realloc(h, p, n);
    arena *a = zwi_mem_arena_of(h, p);
    if (a == NULL) {
        if (zwi_mem_big_freed(h, (big_header *)p - 1))
            big_misuse(h, "realloc", p, true);
        big_header *hdr = big_header_of(h, p);
        if (hdr == NULL)
            big_misuse(h, "realloc", p, false);
        /* As CPython: a big block stays big, even when it shrinks under 512 bytes. */
        return big_realloc(h, hdr, n);
    }
    size_t size = CLASS_SIZE(zwi_mem_pool_of(a, p)->cls);
    if (n <= size && 4 * n > 3 * size) {
        ASAN_FIT(h, p, n, size);
        return p; /* same class, or shrinking by less than a quarter: keep the block */
    }
    /* a list's item array grows 32 -> 64 -> 128 bytes this way: take malloc's and free's fast
     * paths, and copy small blocks in 16-byte steps rather than through the C library */
    void *q = malloc_unhooked(h, n);
    if (q == NULL)
        return NULL;
#ifdef ZW_ASAN
    /* only the bytes the caller asked for are addressable: copy those */
    const char *poisoned = __asan_region_is_poisoned(p, size);
    if (poisoned != NULL)
        size = (size_t)(poisoned - (const char *)p);
    memcpy(q, p, n < size ? n : size);
#else
    /* size is a multiple of 16 and the new block holds n (a whole class, or a big block of
     * n > 512 >= size bytes): rounding the copy up to 16 stays inside both blocks */
    size_t len = n < size ? n : size;
    for (size_t i = 0; i < len; i += 16)
        memcpy((char *)q + i, (const char *)p + i, 16);
#endif
    free_unhooked(h, p);
    return q;
}

/* The public calls: one branch on the observer (zw_mem_set_heap_hook), then the fast paths
 * above, inlined. With an observer, a tail call to hook.c, which reports and calls back here. */
void *
zw_heap_malloc(zw_heap *h, size_t n)
{
    if (ZW_UNLIKELY(zwi_mem_get_hook() != NULL))
        return zwi_mem_hooked_malloc(h, n);
    return malloc_unhooked(h, n);
}

void *
zw_heap_calloc(zw_heap *h, size_t nelem, size_t elsize)
{
    if (ZW_UNLIKELY(zwi_mem_get_hook() != NULL))
        return zwi_mem_hooked_calloc(h, nelem, elsize);
    return calloc_unhooked(h, nelem, elsize);
}

void *
zw_heap_realloc(zw_heap *h, void *p, size_t n)
{
    if (ZW_UNLIKELY(zwi_mem_get_hook() != NULL))
        return zwi_mem_hooked_realloc(h, p, n);
    return realloc_unhooked(h, p, n);
}

void
zw_heap_free(zw_heap *h, void *p)
{
    if (ZW_UNLIKELY(zwi_mem_get_hook() != NULL)) {
        zwi_mem_hooked_free(h, p);
        return;
    }
    free_unhooked(h, p);
}

void *
zwi_mem_malloc_unhooked(zw_heap *h, size_t n)
{
    return malloc_unhooked(h, n);
}

void *
zwi_mem_calloc_unhooked(zw_heap *h, size_t nelem, size_t elsize)
{
    return calloc_unhooked(h, nelem, elsize);
}

void *
zwi_mem_realloc_unhooked(zw_heap *h, void *p, size_t n)
{
    return realloc_unhooked(h, p, n);
}

void
zwi_mem_free_unhooked(zw_heap *h, void *p)
{
    free_unhooked(h, p);
}

size_t
zw_heap_usable_size(const zw_heap *h, const void *p)
{
    if (p == NULL)
        return 0;
    if (h->debug)
        return zwi_mem_debug_usable_size(h, p);
    size_t size = zwi_mem_block_size(h, p);
#ifdef ZW_ASAN
    /* ASan builds make only the requested bytes of a small block addressable */
    const char *poisoned = __asan_region_is_poisoned((void *)p, size);
    if (poisoned != NULL)
        size = (size_t)(poisoned - (const char *)p);
#endif
    return size;
}

bool
zw_heap_owns(const zw_heap *h, const void *p)
{
    return zwi_mem_arena_of(h, p) != NULL;
}

zw_raw *
zw_heap_raw(const zw_heap *h)
{
    return h->raw;
}

bool
zw_heap_is_debug(const zw_heap *h)
{
    return h->debug;
}

size_t
zw_heap_debug_errors(const zw_heap *h)
{
    return h->debug_errors;
}

/* ---- accounting ---- */

#if !ZW_MEM_COUNTERS
static void
count_arena(const arena *a, void *ctx)
{
    size_t *sums = ctx;
    for (unsigned i = 0; i < a->nextpool; i++) {
        const pool *p = &a->pools[i];
        sums[0] += p->nused;
        sums[1] += p->nused * CLASS_SIZE(p->cls);
    }
}
#endif

/* Small blocks and their bytes: the per-class counters (O(32)), or a walk when they are
 * compiled out. */
static void
small_totals(const zw_heap *h, size_t *blocks, size_t *bytes)
{
#if ZW_MEM_COUNTERS
    *blocks = 0;
    *bytes = 0;
    for (unsigned c = 0; c < ZW_MEM_NCLASSES; c++) {
        *blocks += h->nused[c];
        *bytes += h->nused[c] * CLASS_SIZE(c);
    }
#else
    size_t sums[2] = {0, 0};
    zwi_mem_for_each_arena(h, count_arena, sums);
    *blocks = sums[0];
    *bytes = sums[1];
#endif
}

size_t
zw_heap_allocated_blocks(const zw_heap *h)
{
    size_t blocks;
    size_t bytes;
    small_totals(h, &blocks, &bytes);
    return blocks + h->nbig;
}

size_t
zw_heap_allocated_bytes(const zw_heap *h)
{
    size_t blocks;
    size_t bytes;
    small_totals(h, &blocks, &bytes);
    return bytes + h->big_bytes;
}

/* ---- life cycle ---- */

zw_heap *
zw_heap_new(void)
{
    return zw_heap_new_ex(NULL);
}

zw_heap *
zw_heap_new_ex(const zw_heap_config *cfg)
{
    static const zw_heap_config defaults = {0};
    if (cfg == NULL)
        cfg = &defaults;
    zw_raw *raw = cfg->raw;
    bool owns_raw = raw == NULL;
    if (owns_raw && (raw = zw_raw_new(NULL)) == NULL)
        return NULL;
    /* The heap lives in pages of its own: most of it is the map's root, touched sparsely. It
     * starts HEAP_OFFSET bytes in (mem_internal.h says why). */
    char *pages = zw_raw_map(raw, HEAP_OFFSET + sizeof(zw_heap), 0);
    zw_heap *h = pages != NULL ? (zw_heap *)(pages + HEAP_OFFSET) : NULL;
    if (h == NULL) {
        if (owns_raw)
            zw_raw_destroy(raw);
        errno = ENOMEM;
        return NULL;
    }
    unsigned flags = cfg->flags;
    if (!(flags & ZW_HEAP_IGNORE_ENV))
        flags |= zwi_mem_env_flags();
    h->raw = raw;
    h->owns_raw = owns_raw;
    h->flags = flags;
    h->debug = (flags & ZW_HEAP_DEBUG) != 0;
    h->small_limit = h->debug ? 0 : ZW_MEM_SMALL_MAX;
    h->report = cfg->report;
    h->arena_cache = cfg->arena_cache == 0  ? DEFAULT_CACHE
                     : cfg->arena_cache < 0 ? 0
                                            : (size_t)cfg->arena_cache;
    if (h->debug)
        h->arena_cache = SIZE_MAX; /* a stale pointer into an unmapped arena could not be read */
    return h;
}

void
zw_heap_destroy(zw_heap *h)
{
    if (h == NULL)
        return;
    if (h->debug)
        zwi_mem_debug_release(h); /* checks what waits in quarantine */
    while (h->big != NULL)
        zwi_mem_big_release(h, h->big); /* quarantined big blocks are on this list too */
    zwi_mem_release_all_arenas(h);
    zw_raw *raw = h->raw;
    bool owns_raw = h->owns_raw;
    zw_raw_unmap(raw, (char *)h - HEAP_OFFSET, HEAP_OFFSET + sizeof(zw_heap));
    if (owns_raw)
        zw_raw_destroy(raw);
}

size_t
zw_heap_trim(zw_heap *h)
{
    if (h->debug) {
        zwi_mem_debug_flush_quarantine(h);
        return 0; /* debug heaps keep their arenas: a stale pointer must stay readable */
    }
    return zwi_mem_trim(h);
}
