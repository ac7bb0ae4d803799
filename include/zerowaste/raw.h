/* zerowaste/raw.h - the only door to the operating system: pages (mmap, munmap, madvise) and
 * blocks from the C library's malloc family, behind operations a test can replace. Every raw
 * door counts what it hands out and can be told to fail its n-th request (fault injection).
 * A door is used by one thread at a time, like the heap that owns it. See docs/mem.md#raw. */
#ifndef ZEROWASTE_RAW_H
#define ZEROWASTE_RAW_H

#include <stdbool.h>
#include <stddef.h>

#include <zerowaste/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The operations behind a door. The default ones call mmap/munmap/madvise and malloc/calloc/
 * realloc/free of the C library. A test may supply its own (all fields set). */
typedef struct zw_raw_ops {
    void *ctx; /* passed first to every operation */
    /* `size` bytes of zeroed pages aligned to `align` (a power of two, at least the page size);
     * NULL on failure. */
    void *(*map)(void *ctx, size_t size, size_t align);
    void (*unmap)(void *ctx, void *p, size_t size); /* whole mappings only */
    /* The pages may be dropped: their contents are undefined afterwards, the range stays mapped. */
    void (*discard)(void *ctx, void *p, size_t size);
    void *(*malloc)(void *ctx, size_t n);
    void *(*calloc)(void *ctx, size_t nelem, size_t elsize);
    void *(*realloc)(void *ctx, void *p, size_t n);
    void (*free)(void *ctx, void *p);
} zw_raw_ops;

/* What a door has handed out. Requests are counted whether they succeeded or not. */
typedef struct zw_raw_stats {
    size_t mapped_bytes;      /* bytes of pages mapped now */
    size_t mapped_peak;       /* the most `mapped_bytes` has been */
    size_t maps;              /* successful map requests */
    size_t unmaps;            /* unmap requests */
    size_t blocks;            /* blocks from malloc/calloc/realloc not yet freed */
    size_t requests;          /* map, malloc, calloc and realloc requests, failed ones included */
    size_t injected_failures; /* requests failed on purpose by zw_raw_fail_nth() */
} zw_raw_stats;

typedef struct zw_raw zw_raw;

/* Returns a new door using `ops` (copied), or the operating system's when `ops` is NULL;
 * NULL if the door itself cannot be created (errno says why). */
ZW_API zw_raw *zw_raw_new(const zw_raw_ops *ops);
/* Destroys the door. What it handed out and was not given back stays with the program. */
ZW_API void zw_raw_destroy(zw_raw *raw);

/* Pages: see zw_raw_ops.map. NULL with errno = ENOMEM on failure. */
ZW_API void *zw_raw_map(zw_raw *raw, size_t size, size_t align);
ZW_API void zw_raw_unmap(zw_raw *raw, void *p, size_t size);
ZW_API void zw_raw_discard(zw_raw *raw, void *p, size_t size);

/* Blocks, as the C library's functions; NULL with errno = ENOMEM on failure (realloc then
 * leaves `p` as it was; realloc to 0 bytes returns a valid block, never frees `p`).
 * zw_raw_free(raw, NULL) does nothing. */
ZW_API void *zw_raw_malloc(zw_raw *raw, size_t n);
ZW_API void *zw_raw_calloc(zw_raw *raw, size_t nelem, size_t elsize);
ZW_API void *zw_raw_realloc(zw_raw *raw, void *p, size_t n);
ZW_API void zw_raw_free(zw_raw *raw, void *p);

ZW_API void zw_raw_get_stats(const zw_raw *raw, zw_raw_stats *out);

/* Fault injection: request number `n` from now fails (0 = the next one), once; -1 switches it
 * off. Unmap, discard and free never fail. */
ZW_API void zw_raw_fail_nth(zw_raw *raw, long n);
/* True if a request was failed on purpose since the last zw_raw_fail_nth() call. */
ZW_API bool zw_raw_fault_fired(const zw_raw *raw);

#ifdef __cplusplus
}
#endif

#endif /* ZEROWASTE_RAW_H */
