/* tests/zw_test.h - helpers shared by the test files: a seeded generator, byte patterns that
 * name the block they fill, the stress knobs read from the environment, and a raw door whose
 * arenas can be placed far apart. Header only: every function is static. */
#ifndef ZW_TEST_H
#define ZW_TEST_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <zerowaste/mem.h>
#include <zerowaste/raw.h>

/* AddressSanitizer builds (gcc defines the first, clang answers the second). */
#if defined(__SANITIZE_ADDRESS__)
#    define ZWT_ASAN 1
#elif defined(__has_feature)
#    if __has_feature(address_sanitizer)
#        define ZWT_ASAN 1
#    endif
#endif
#ifndef ZWT_ASAN
#    define ZWT_ASAN 0
#endif

#define ZWT_MIB ((size_t)1 << 20)

/* The arena cache the tests ask for: the default, asked for by number. */
#define ZWT_CACHE 2

/* ---- a seeded generator (splitmix64: one word of state, every seed is good) ---- */

typedef struct zwt_rng {
    uint64_t s; /* advanced by a fixed odd constant per draw */
} zwt_rng;

static inline uint64_t
zwt_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static inline uint64_t
zwt_next(zwt_rng *r)
{
    r->s += 0x9E3779B97F4A7C15ULL;
    return zwt_mix(r->s);
}

/* A number in [0, n); n > 0. The modulo bias is far below what a test can see. */
static inline uint64_t
zwt_below(zwt_rng *r, uint64_t n)
{
    return zwt_next(r) % n;
}

/* A number in [lo, hi]. */
static inline size_t
zwt_range(zwt_rng *r, size_t lo, size_t hi)
{
    return lo + (size_t)zwt_below(r, (uint64_t)(hi - lo) + 1);
}

/* Shuffles `n` pointers in place (Fisher-Yates). */
static inline void
zwt_shuffle(zwt_rng *r, void **v, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)zwt_below(r, i);
        void *t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

/* ---- patterns: byte k of a block with key K is a function of (K, k) only ---- */

/* The key of block `id` filled to `size` bytes: two blocks, or one block before and after a
 * realloc, get different bytes. */
static inline uint64_t
zwt_key(uint64_t id, size_t size)
{
    return zwt_mix(id * 0x100000001B3ULL + size + 1);
}

/* Word k of the pattern is key + k * ZWT_STEP: the loops below add, so they vectorize. */
#define ZWT_STEP 0x9E3779B97F4A7C15ULL

/* Writes the pattern of `key` on the first `n` bytes at `p`. */
static inline void
zwt_fill(void *p, size_t n, uint64_t key)
{
    unsigned char *b = p;
    size_t words = n / 8;
    uint64_t w = key;
    for (size_t k = 0; k < words; k++, w += ZWT_STEP)
        memcpy(b + 8 * k, &w, 8);
    memcpy(b + 8 * words, &w, n % 8);
}

/* The offset of the first of `n` bytes at `p` that differs from the pattern of `key`, or
 * SIZE_MAX if they all match. */
static inline size_t
zwt_check(const void *p, size_t n, uint64_t key)
{
    const unsigned char *b = p;
    size_t words = n / 8;
    uint64_t diff = 0;
    uint64_t w = key;
    for (size_t k = 0; k < words; k++, w += ZWT_STEP) {
        uint64_t v;
        memcpy(&v, b + 8 * k, 8);
        diff |= v ^ w;
    }
    unsigned char tail[8];
    memcpy(tail, &w, 8);
    if (diff == 0 && memcmp(b + 8 * words, tail, n % 8) == 0)
        return SIZE_MAX;
    /* something differs: find the first byte, slowly */
    w = key;
    for (size_t i = 0; i < n; i++) {
        if (i % 8 == 0 && i != 0)
            w += ZWT_STEP;
        memcpy(tail, &w, 8);
        if (b[i] != tail[i % 8])
            return i;
    }
    return SIZE_MAX;
}

/* The offset of the first non-zero byte of `n` at `p`, or SIZE_MAX. */
static inline size_t
zwt_check_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    size_t words = n / 8;
    uint64_t any = 0;
    for (size_t k = 0; k < words; k++) {
        uint64_t v;
        memcpy(&v, b + 8 * k, 8);
        any |= v;
    }
    for (size_t i = 8 * words; i < n; i++)
        any |= b[i];
    if (any == 0)
        return SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        if (b[i] != 0)
            return i;
    }
    return SIZE_MAX;
}

/* ---- the stress knobs ---- */

/* ZW_TEST_SEED (decimal or 0x hex) or `def`; -1 with a message if the variable is malformed. */
static inline int
zwt_seed(uint64_t def, uint64_t *out)
{
    const char *v = getenv("ZW_TEST_SEED");
    *out = def;
    if (v == NULL || *v == '\0')
        return 0;
    char *end;
    errno = 0;
    unsigned long long s = strtoull(v, &end, 0);
    if (errno != 0 || *end != '\0' || *v == '-') {
        fprintf(stderr, "zw: test: bad ZW_TEST_SEED '%s': expected an unsigned number\n", v);
        return -1;
    }
    *out = (uint64_t)s;
    return 0;
}

/* ZW_TEST_SCALE (a positive number, 1.0 when unset); -1 with a message if malformed. */
static inline int
zwt_scale(double *out)
{
    const char *v = getenv("ZW_TEST_SCALE");
    *out = 1.0;
    if (v == NULL || *v == '\0')
        return 0;
    char *end;
    errno = 0;
    double s = strtod(v, &end);
    if (errno != 0 || *end != '\0' || !(s > 0.0) || s > 1e6) {
        fprintf(stderr, "zw: test: bad ZW_TEST_SCALE '%s': expected a number in (0, 1e6]\n", v);
        return -1;
    }
    *out = s;
    return 0;
}

/* ---- heaps ---- */

/* A heap on `raw` (NULL: a door of its own) keeping `arena_cache` (> 0) free arenas, that
 * ignores ZW_MALLOC: a test must not change shape with the environment. */
static inline zw_heap *
zwt_heap_cache(zw_raw *raw, int arena_cache)
{
    zw_heap_config cfg = {.flags = ZW_HEAP_IGNORE_ENV, .raw = raw, .arena_cache = arena_cache};
    return zw_heap_new_ex(&cfg);
}

/* The same with the default cache of two arenas. */
static inline zw_heap *
zwt_heap(zw_raw *raw)
{
    return zwt_heap_cache(raw, ZWT_CACHE);
}

/* The right side of the census identity: what the arenas' bytes are made of (pool headers
 * live in the arena records, outside the arenas). */
static inline size_t
zwt_census_total(const zw_mem_stats *st)
{
    return st->bytes_in_blocks + st->bytes_available + st->bytes_unused_pools +
           st->bytes_quantization;
}

/* Bytes zw_heap_allocated_bytes() counts for a fresh block of `n` bytes. */
static inline size_t
zwt_counted(size_t n)
{
    if (n > ZW_MEM_SMALL_MAX)
        return n;
    return n == 0 ? ZW_MEM_ALIGNMENT : (n + ZW_MEM_ALIGNMENT - 1) & ~(size_t)(ZW_MEM_ALIGNMENT - 1);
}

/* The size class of a small request of `n` bytes. */
static inline unsigned
zwt_class(size_t n)
{
    return n == 0 ? 0 : (unsigned)((n - 1) / ZW_MEM_ALIGNMENT);
}

/* Blocks of class `cls` one pool holds: all its 16 KiB are blocks (the pool's header is kept
 * in its arena's record). */
static inline size_t
zwt_capacity(unsigned cls)
{
    return ZW_MEM_POOL_SIZE / (((size_t)cls + 1) * ZW_MEM_ALIGNMENT);
}

/* Bytes of a pool of class `cls` no block can use. */
static inline size_t
zwt_quantization(unsigned cls)
{
    return ZW_MEM_POOL_SIZE % (((size_t)cls + 1) * ZW_MEM_ALIGNMENT);
}

/* The arena (1 MiB aligned) holding small block `p`. */
static inline uintptr_t
zwt_arena_of(const void *p)
{
    return (uintptr_t)p & ~(uintptr_t)(ZW_MEM_ARENA_SIZE - 1);
}

/* ---- a door that spreads arenas over the address space ---- */

/* Every `every`-th arena (1 MiB mapping aligned to 1 MiB) is placed in a 16 GiB slice of its
 * own, so the heap's address map needs a leaf for it; other mappings are ordinary. Unmapped
 * ordinary arenas are kept (up to ZWT_RECYCLE) and handed out again zeroed by memset: a page
 * fault costs ~30 us on the project's machines, a test that maps thousands of arenas would
 * spend its time there. */
#define ZWT_RECYCLE 256

typedef struct zwt_spread {
    unsigned every;    /* 0: place nothing */
    uintptr_t region;  /* first slice tried; above ASan's shadow on x86-64 */
    size_t arena_maps; /* arena mappings made so far */
    size_t next_slice; /* next slice to try */
    size_t placed;     /* arenas placed in a slice of their own */
    size_t small_maps; /* mappings of less than 128 KiB (a map leaf): pages of arena records */
    void *recycled[ZWT_RECYCLE]; /* unmapped ordinary arenas kept for the next map */
    size_t nrecycled;
    void *parked[64]; /* parked[k]: the unmapped arena of slice k, kept mapped for reuse */
} zwt_spread;

#define ZWT_SLICE ((uintptr_t)1 << 34) /* 16 GiB: one leaf of the address map */

/* `size` zeroed bytes aligned to `align`: over-map, then cut the ends off (at page
 * boundaries: munmap() refuses others). */
static inline void *
zwt_aligned_map(size_t size, size_t align)
{
    if (align < 4096)
        align = 4096;
    size = (size + 4095) & ~(size_t)4095;
    size_t span = size + align;
    char *q = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (q == MAP_FAILED)
        return NULL;
    char *start = (char *)(((uintptr_t)q + align - 1) & ~(uintptr_t)(align - 1));
    size_t head = (size_t)(start - q);
    size_t tail = span - head - size;
    if (head != 0)
        munmap(q, head);
    if (tail != 0)
        munmap(start + size, tail);
    return start;
}

static inline bool
zwt_spread_is_placed(const zwt_spread *s, const void *p)
{
    return s->every != 0 && (uintptr_t)p >= s->region &&
           (uintptr_t)p < s->region + s->next_slice * ZWT_SLICE;
}

static inline void *
zwt_spread_map(void *ctx, size_t size, size_t align)
{
    zwt_spread *s = ctx;
    bool arena = size == ZW_MEM_ARENA_SIZE && align == ZW_MEM_ARENA_SIZE;
    s->small_maps += size < ((size_t)128 << 10);
    s->arena_maps += arena;
    if (arena && s->every != 0 && s->arena_maps % s->every == 0) {
        for (int tries = 0; tries < 8; tries++) {
            size_t slice = s->next_slice++;
            void *want = (void *)(s->region + slice * ZWT_SLICE);
            if (slice < 64 && s->parked[slice] == want) {
                s->parked[slice] = NULL;
                s->placed++;
                memset(want, 0, size);
                return want;
            }
            void *p = mmap(want, size, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
            if (p == want) {
                s->placed++;
                return p;
            }
            if (p != MAP_FAILED)
                munmap(p, size);
        }
    }
    if (arena && s->nrecycled > 0) {
        void *p = s->recycled[--s->nrecycled];
        memset(p, 0, size);
        return p;
    }
    return zwt_aligned_map(size, align);
}

static inline void
zwt_spread_unmap(void *ctx, void *p, size_t size)
{
    zwt_spread *s = ctx;
    if (size == ZW_MEM_ARENA_SIZE && (uintptr_t)p % ZW_MEM_ARENA_SIZE == 0) {
        if (zwt_spread_is_placed(s, p)) {
            size_t slice = ((uintptr_t)p - s->region) / ZWT_SLICE;
            if (slice < 64 && (uintptr_t)p == s->region + slice * ZWT_SLICE &&
                s->parked[slice] == NULL) {
                s->parked[slice] = p;
                return;
            }
        } else if (s->nrecycled < ZWT_RECYCLE) {
            s->recycled[s->nrecycled++] = p;
            return;
        }
    }
    munmap(p, size);
}

static inline void
zwt_spread_discard(void *ctx, void *p, size_t size)
{
    madvise(p, size, MADV_DONTNEED);
}

static inline void *
zwt_spread_malloc(void *ctx, size_t n)
{
    return malloc(n);
}

static inline void *
zwt_spread_calloc(void *ctx, size_t nelem, size_t elsize)
{
    return calloc(nelem, elsize);
}

static inline void *
zwt_spread_realloc(void *ctx, void *p, size_t n)
{
    return realloc(p, n);
}

static inline void
zwt_spread_free(void *ctx, void *p)
{
    free(p);
}

/* A new door over `s` (which must outlive it); NULL if it cannot be made. */
static inline zw_raw *
zwt_spread_door(zwt_spread *s)
{
    zw_raw_ops ops = {
        .ctx = s,
        .map = zwt_spread_map,
        .unmap = zwt_spread_unmap,
        .discard = zwt_spread_discard,
        .malloc = zwt_spread_malloc,
        .calloc = zwt_spread_calloc,
        .realloc = zwt_spread_realloc,
        .free = zwt_spread_free,
    };
    return zw_raw_new(&ops);
}

/* Unmaps the arenas `s` kept for reuse (after the door's last heap is destroyed). */
static inline void
zwt_spread_release(zwt_spread *s)
{
    while (s->nrecycled > 0)
        munmap(s->recycled[--s->nrecycled], ZW_MEM_ARENA_SIZE);
    for (size_t k = 0; k < 64; k++) {
        if (s->parked[k] != NULL)
            munmap(s->parked[k], ZW_MEM_ARENA_SIZE);
        s->parked[k] = NULL;
    }
}

#endif /* ZW_TEST_H */
