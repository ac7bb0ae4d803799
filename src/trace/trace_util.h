/* trace/trace_util.h - the small containers of the trace layer (util.c): memory from a zw_raw door,
 * a table of byte strings with dense ids, a map from 64-bit keys, a growable byte buffer. None of
 * them allocates through mem, which the tracer may be tracing.
 *
 * This is the one internal header of trace that a layer above may include: the zw command
 * (tools/zw/) builds its tables (export's pprof strings and stacks, the report's frames and
 * sites) with these instead of kits of its own. Everything here is ZW_HIDDEN: it links into
 * programs that link the static library (zw does), never into users of the shared one. */
#ifndef ZW_TRACE_UTIL_H
#define ZW_TRACE_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>

#include <zerowaste/raw.h>

#include "zw_assert.h"

/* ---- memory ---- */

/* `n` bytes from `raw` (never through mem), NULL with errno = ENOMEM. */
ZW_HIDDEN void *zwi_alloc(zw_raw *raw, size_t n);
ZW_HIDDEN void *zwi_realloc(zw_raw *raw, void *p, size_t n);
ZW_HIDDEN void zwi_free(zw_raw *raw, void *p);
/* Grows *v (of *cap elements of `size` bytes) to hold at least `need`; 0 or -1. */
ZW_HIDDEN int zwi_reserve(zw_raw *raw, void **v, size_t *cap, size_t need, size_t size);
/* The mapping `base` (`limit` bytes, `*ready` of them populated) made ready past byte `need`, a
 * step (256 KiB) ahead: one system call (MADV_POPULATE_WRITE) for many first touches, each a
 * page fault that costs ~10 us under a hypervisor. *ready: bytes ready; SIZE_MAX once the kernel
 * refused (before 5.14, or no memory: the pages then fault in as they are written). */
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif
#define ZWI_READY_STEP ((size_t)256 << 10)
static inline void
zwi_make_ready(char *base, size_t *ready, size_t need, size_t limit)
{
    if (need <= *ready)
        return;
    size_t to = (need + ZWI_READY_STEP) / ZWI_READY_STEP * ZWI_READY_STEP;
    if (to > limit)
        to = limit;
    if (to <= *ready || madvise(base + *ready, to - *ready, MADV_POPULATE_WRITE) != 0)
        *ready = SIZE_MAX;
    else
        *ready = to;
}

/* Where the descriptors zw keeps open while a traced program runs go (the capture, the sampler's
 * wake pipe, the symboliser's files, libunwind's pipe): out of the way of the program's, which
 * are the lowest free ones. */
#define ZWI_HIGH_FD 1000

/* `fd` moved to ZWI_HIGH_FD or above (closed on exec if `cloexec`) and the old one closed; `fd`
 * itself if it is negative or high already, or if there is no room up there (a low limit). */
ZW_HIDDEN int zwi_fd_high(int fd, bool cloexec);

/* FNV-1a, 64 bits, folded. */
ZW_HIDDEN uint64_t zwi_hash_bytes(const void *p, size_t n, uint64_t seed);

/* ---- strings ---- */

/* A set of byte strings: each distinct one stored once, with a stable pointer, its length, a NUL
 * after it and a dense index (0..count-1) in insertion order. A key may hold NUL bytes (the zw
 * command keys its tables by binary records), so keys are compared by length and bytes. */
typedef struct zwi_strtab {
    zw_raw *raw;
    const char **strs; /* by index; each is preceded by its length (see util.c) */
    size_t count;
    size_t cap;
    uint32_t *slots; /* index + 1, 0 empty; mask + 1 of them, at most half used */
    size_t mask;
    size_t bytes; /* bytes held for the strings themselves */
} zwi_strtab;

ZW_HIDDEN void zwi_strtab_init(zwi_strtab *st, zw_raw *raw);
ZW_HIDDEN void zwi_strtab_release(zwi_strtab *st);
/* The stored copy of the `len` bytes at `s` (NULL stays NULL, index UINT32_MAX), its index in
 * *index if not NULL; NULL if out of memory (then *index is untouched). */
ZW_HIDDEN const char *zwi_strtab_add(zwi_strtab *st, const char *s, size_t len, uint32_t *index);
ZW_HIDDEN const char *zwi_strtab_intern(zwi_strtab *st, const char *s);
/* The stored copy of NUL-terminated `s`, NULL if the table does not hold it. */
ZW_HIDDEN const char *zwi_strtab_find(const zwi_strtab *st, const char *s);
/* The index of stored string `s` (a pointer from this table), or UINT32_MAX for NULL. */
ZW_HIDDEN uint32_t zwi_strtab_index(const zwi_strtab *st, const char *s);
/* The length of stored string `s` (a pointer from this table). */
ZW_HIDDEN size_t zwi_strtab_len(const char *s);

/* ---- maps ---- */

/* A map from non-zero 64-bit keys to pointers (open addressing). */
typedef struct zwi_map {
    zw_raw *raw;
    struct zwi_map_slot {
        uint64_t key; /* 0: empty */
        void *value;
    } * slots;
    size_t mask;
    size_t count;
} zwi_map;

ZW_HIDDEN void zwi_map_init(zwi_map *m, zw_raw *raw);
ZW_HIDDEN void zwi_map_release(zwi_map *m);
ZW_HIDDEN void *zwi_map_get(const zwi_map *m, uint64_t key);
/* 0, or -1 if out of memory. Replaces the value of a present key. */
ZW_HIDDEN int zwi_map_put(zwi_map *m, uint64_t key, void *value);

/* ---- byte buffers ---- */

/* Bytes appended at the end, in memory of a raw door. After a failed allocation `failed` is set
 * and later appends do nothing: a writer checks once, at the end. */
typedef struct zwi_cbuf {
    zw_raw *raw;
    unsigned char *data; /* NULL until the first append */
    size_t len;          /* bytes in use */
    size_t cap;          /* bytes allocated */
    bool failed;         /* an allocation failed: the contents are incomplete */
} zwi_cbuf;

/* `n` more bytes at the end, for the caller to fill; NULL (and `failed`) if out of memory. */
ZW_HIDDEN unsigned char *zwi_cbuf_grow(zwi_cbuf *b, size_t n);
/* The low `nbytes` bytes of `v` (1 to 8), little-endian. */
ZW_HIDDEN void zwi_cbuf_put(zwi_cbuf *b, uint64_t v, int nbytes);
ZW_HIDDEN void zwi_cbuf_bytes(zwi_cbuf *b, const void *p, size_t n);
/* `v` as a varint: 7 bits a byte, low bits first, the high bit set on every byte but the last
 * (LEB128; 1 byte below 128, at most 10). */
ZW_HIDDEN void zwi_cbuf_varint(zwi_cbuf *b, uint64_t v);
/* Signed values as varints: 0, -1, 1, -2 ... as 0, 1, 2, 3 ... (zigzag). */
static inline uint64_t
zwi_zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}
static inline int64_t
zwi_unzigzag(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}
/* Overwrites `nbytes` already written at `at` (a count known only later). */
ZW_HIDDEN void zwi_cbuf_patch(zwi_cbuf *b, size_t at, uint64_t v, int nbytes);
ZW_HIDDEN void zwi_cbuf_printf(zwi_cbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
ZW_HIDDEN void zwi_cbuf_release(zwi_cbuf *b);

#endif /* ZW_TRACE_UTIL_H */
