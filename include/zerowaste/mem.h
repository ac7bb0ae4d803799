/* zerowaste/mem.h - the small-object allocator: CPython's pymalloc geometry with exact
 * accounting and a debug mode.
 *
 *   requests of 1..512 bytes  -> 32 size classes, 16 bytes apart, carved from 16 KiB pools,
 *                                carved from 1 MiB arenas mapped from the OS (raw);
 *   0 bytes                   -> the 16-byte class (a unique pointer, as malloc(0) may give);
 *   more than 512 bytes       -> a block from raw (the C library's malloc) with a 32-byte header.
 *
 * A heap is used by one thread at a time (like an interpreter under its lock): it takes no lock
 * of its own. The process default heap behind zw_mem_malloc() and friends is shared by all
 * threads and guarded by a mutex. See docs/mem.md. */
#ifndef ZEROWASTE_MEM_H
#define ZEROWASTE_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <zerowaste/common.h>
#include <zerowaste/raw.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ZW_MEM_ALIGNMENT  16                                 /* every block's address */
#define ZW_MEM_SMALL_MAX  512                                /* largest request served by pools */
#define ZW_MEM_NCLASSES   (ZW_MEM_SMALL_MAX / ZW_MEM_ALIGNMENT) /* 32 */
#define ZW_MEM_POOL_SIZE  ((size_t)16 << 10)                 /* 16 KiB */
#define ZW_MEM_ARENA_SIZE ((size_t)1 << 20)                  /* 1 MiB, aligned to its size */

typedef struct zw_heap zw_heap;

/* Flags of zw_heap_config. */
enum zw_heap_flags {
    ZW_HEAP_DEBUG = 1u << 0,          /* guard bytes, fill patterns, checks (as ZW_MALLOC=debug) */
    ZW_HEAP_DEBUG_CONTINUE = 1u << 1, /* debug errors are reported and counted, not fatal */
    ZW_HEAP_IGNORE_ENV = 1u << 2,     /* do not read ZW_MALLOC */
};

typedef struct zw_heap_config {
    unsigned flags;       /* enum zw_heap_flags */
    zw_raw *raw;          /* where pages and big blocks come from; NULL: a door of the heap's own */
    int arena_cache;      /* wholly free arenas kept mapped for reuse; 0: the default (2);
                           * negative: none */
    FILE *report;         /* where debug reports go; NULL: stderr */
} zw_heap_config;

/* Returns a new heap with the default configuration, in debug mode if the environment
 * variable ZW_MALLOC is "debug"; NULL with errno = ENOMEM if the OS refuses the memory. */
ZW_API zw_heap *zw_heap_new(void);
/* Same, configured; `cfg` NULL is the default configuration. */
ZW_API zw_heap *zw_heap_new_ex(const zw_heap_config *cfg);
/* Gives every arena and big block back to the OS. Pointers from the heap become invalid. */
ZW_API void zw_heap_destroy(zw_heap *h);

/* The malloc family on one heap. On failure NULL with errno = ENOMEM, the heap unchanged.
 * malloc(0) returns a unique pointer; free(NULL) does nothing; realloc(p, 0) returns a valid
 * pointer (it is not a free); calloc fails when nelem * elsize overflows, and every call when
 * the size exceeds PTRDIFF_MAX. Every block is aligned to 16 bytes. */
ZW_API void *zw_heap_malloc(zw_heap *h, size_t n);
ZW_API void *zw_heap_calloc(zw_heap *h, size_t nelem, size_t elsize);
ZW_API void *zw_heap_realloc(zw_heap *h, void *p, size_t n);
ZW_API void zw_heap_free(zw_heap *h, void *p);

/* Bytes usable at `p`: the size class for a small block, the request for a big one (in
 * AddressSanitizer builds, the request for both: only that much is addressable). */
ZW_API size_t zw_heap_usable_size(const zw_heap *h, const void *p);
/* True if `p` lies in one of this heap's arenas (O(1); big blocks are not looked up). */
ZW_API bool zw_heap_owns(const zw_heap *h, const void *p);
/* The raw door the heap takes its memory from (borrowed; valid while the heap lives). */
ZW_API zw_raw *zw_heap_raw(const zw_heap *h);
/* True if the heap runs in debug mode. */
ZW_API bool zw_heap_is_debug(const zw_heap *h);
/* Errors the debug mode has reported so far (only grows with ZW_HEAP_DEBUG_CONTINUE). */
ZW_API size_t zw_heap_debug_errors(const zw_heap *h);

/* ---- accounting ---- */

/* Blocks handed out and not yet freed, small and big: the counterpart of
 * sys.getallocatedblocks(). Exact at every moment, O(1). */
ZW_API size_t zw_heap_allocated_blocks(const zw_heap *h);
/* Bytes handed out and not yet freed: size-class bytes of small blocks plus the requested bytes
 * of big ones. O(1). */
ZW_API size_t zw_heap_allocated_bytes(const zw_heap *h);

typedef struct zw_mem_class_stats {
    size_t block_size;    /* bytes of one block of this class: 16 * (index + 1) */
    size_t pools;         /* pools serving this class (with a block in use, or its spare) */
    size_t blocks_in_use; /* blocks handed out */
    size_t blocks_free;   /* blocks of those pools not in use (freed or never handed out) */
} zw_mem_class_stats;

/* A census of a heap, in the terms of CPython's sys._debugmallocstats(). Between any two calls
 * of the heap, arenas_current * ZW_MEM_ARENA_SIZE == bytes_in_blocks + bytes_available +
 * bytes_unused_pools + bytes_quantization: pool headers are kept outside the arenas, in
 * arena records (bytes_arena_records), so a pool of class size s holds 16384 / s blocks. */
typedef struct zw_mem_stats {
    zw_mem_class_stats classes[ZW_MEM_NCLASSES];
    size_t arenas_allocated_total; /* arenas ever mapped */
    size_t arenas_reclaimed;       /* arenas given back to the OS: total - current */
    size_t arenas_highwater;       /* the most arenas mapped at once */
    size_t arenas_current;         /* arenas mapped now */
    size_t arenas_cached;          /* of those, idle ones kept for reuse (no block in use) */
    size_t pools_in_use;           /* pools serving a class: with a block in use, or a spare */
    size_t pools_unused;           /* freed or never carved pools of current arenas */
    size_t small_blocks;           /* small blocks in use */
    size_t bytes_in_blocks;        /* sum of blocks_in_use * block_size */
    size_t bytes_available;        /* free and never handed out blocks of pools in use */
    size_t bytes_unused_pools;     /* pools_unused * ZW_MEM_POOL_SIZE */
    size_t bytes_quantization;     /* per pool in use: POOL_SIZE % block_size */
    size_t bytes_arena_records;    /* pages of arena records with the pool headers (outside) */
    size_t big_blocks;             /* blocks of more than 512 bytes in use */
    size_t big_bytes;              /* bytes requested for them */
    size_t allocated_blocks;       /* small_blocks + big_blocks: zw_heap_allocated_blocks() */
    size_t map_bytes;              /* the address map's own pages (arena lookup) */
    size_t mapped_bytes;           /* all pages mapped by the heap's raw door now */
    size_t debug_errors;           /* see zw_heap_debug_errors() */
} zw_mem_stats;

/* Fills `out` by walking the heap's pools (O(arenas * pools)). */
ZW_API void zw_heap_stats(const zw_heap *h, zw_mem_stats *out);
/* Prints the census in the shape of sys._debugmallocstats(). */
ZW_API void zw_heap_print_stats(const zw_heap *h, FILE *out);

/* Gives the spare pools and the wholly free cached arenas back to the OS now; returns the
 * number of arenas released. A debug heap keeps its arenas and only empties its quarantine. */
ZW_API size_t zw_heap_trim(zw_heap *h);

/* ---- allocator domains, as PyMem_SetAllocator ---- */

typedef enum zw_mem_domain {
    ZW_MEM_DOMAIN_RAW, /* zw_mem_raw_*: the C library's malloc; thread-safe */
    ZW_MEM_DOMAIN_MEM, /* zw_mem_*: the default heap; thread-safe (a mutex) */
    ZW_MEM_DOMAIN_OBJ, /* zw_mem_obj_*: the default heap; for objects */
} zw_mem_domain;

#define ZW_MEM_NDOMAINS 3

/* One domain's functions. `ctx` is passed first to each; they follow the malloc family's
 * contract above (the RAW default gives malloc(0) one byte so the pointer is unique). */
typedef struct zw_allocator {
    void *ctx;
    void *(*malloc)(void *ctx, size_t n);
    void *(*calloc)(void *ctx, size_t nelem, size_t elsize);
    void *(*realloc)(void *ctx, void *p, size_t n);
    void (*free)(void *ctx, void *p);
} zw_allocator;

/* Copies the domain's current functions into `out` (all NULL for an unknown domain). */
ZW_API void zw_mem_get_allocator(zw_mem_domain domain, zw_allocator *out);
/* Replaces the domain's functions (ignored for an unknown domain). A hook saves the old table
 * with zw_mem_get_allocator() and forwards to it; hooks stack. Not thread-safe: install hooks
 * while no other thread allocates through the domains. */
ZW_API void zw_mem_set_allocator(zw_mem_domain domain, const zw_allocator *alloc);

ZW_API void *zw_mem_raw_malloc(size_t n);
ZW_API void *zw_mem_raw_calloc(size_t nelem, size_t elsize);
ZW_API void *zw_mem_raw_realloc(void *p, size_t n);
ZW_API void zw_mem_raw_free(void *p);
ZW_API void *zw_mem_malloc(size_t n);
ZW_API void *zw_mem_calloc(size_t nelem, size_t elsize);
ZW_API void *zw_mem_realloc(void *p, size_t n);
ZW_API void zw_mem_free(void *p);
ZW_API void *zw_mem_obj_malloc(size_t n);
ZW_API void *zw_mem_obj_calloc(size_t nelem, size_t elsize);
ZW_API void *zw_mem_obj_realloc(void *p, size_t n);
ZW_API void zw_mem_obj_free(void *p);

/* The process default heap behind the MEM and OBJ domains' defaults, created on first use
 * (debug mode if ZW_MALLOC=debug). Lock it while reading its statistics from several threads. */
ZW_API zw_heap *zw_mem_default_heap(void);
ZW_API void zw_mem_default_heap_lock(void);
ZW_API void zw_mem_default_heap_unlock(void);

/* ---- debug reports ---- */

/* Called by a debug report to say where the damaged block was allocated (the tracer installs
 * one): it writes lines to `out` and returns true, or returns false when it knows nothing of
 * `ptr` (the report then says how to get a traceback). NULL removes the hook. */
typedef bool (*zw_mem_traceback_fn)(void *ctx, const void *ptr, FILE *out);
ZW_API void zw_mem_set_traceback_hook(zw_mem_traceback_fn fn, void *ctx);

/* ---- the heap observer ---- */

/* A process-wide observer of every heap's malloc family (the tracer installs one so that blocks
 * of private heaps are traced too). `alloc` is called after a block of `size` requested bytes
 * was handed out at `ptr` (calloc: nelem * elsize); `free` before `ptr` is given back (never
 * with NULL); a successful realloc is a `free` of the old pointer then an `alloc` of the new
 * one; a failed call is not reported. Callbacks run on the allocating thread, must not call
 * back into the same heap, and receive `ctx` first. */
typedef struct zw_heap_hook {
    void *ctx;
    void (*alloc)(void *ctx, zw_heap *h, void *ptr, size_t size);
    void (*free)(void *ctx, zw_heap *h, void *ptr);
} zw_heap_hook;

/* Installs `hook` (copied; both callbacks set) for every heap, or removes it (NULL). Costs one
 * predictable branch per call while none is installed. Not thread-safe, like
 * zw_mem_set_allocator(): install and remove while no other thread allocates from a heap. */
ZW_API void zw_mem_set_heap_hook(const zw_heap_hook *hook);
/* Copies the installed hook into `out` (all NULL when none). */
ZW_API void zw_mem_get_heap_hook(zw_heap_hook *out);

#ifdef __cplusplus
}
#endif

#endif /* ZEROWASTE_MEM_H */
