/* raw/raw.c - the door to the operating system. Pages come from anonymous mmap, aligned by
 * over-mapping and trimming; blocks come from the C library. Each door counts what it hands out
 * and can fail a chosen request, so every caller's out-of-memory path can be tested.
 * See docs/mem.md#raw. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <zerowaste/raw.h>

#include "zw_assert.h"

/* Between calls: stats.mapped_bytes is the sum of the sizes of live mappings made through this
 * door; fail_in < 0 means no failure is armed. */
struct zw_raw {
    zw_raw_ops ops;     /* copied at creation, never changed */
    zw_raw_stats stats; /* see zw_raw_stats */
    long fail_in;       /* requests still to pass before the armed failure; -1: none armed */
    bool fired;         /* an armed failure happened since zw_raw_fail_nth() */
};

/* ---- the operating system's operations ---- */

static void *
os_map(void *ctx, size_t size, size_t align)
{
    (void)ctx;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (align < page)
        align = page;
    if (size > SIZE_MAX - page)
        return NULL;
    size = (size + page - 1) & ~(page - 1); /* whole pages, so the trimmed tail is one too */
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    if (((uintptr_t)p & (align - 1)) == 0)
        return p; /* the kernel maps top-down, so after one trim the next map is often aligned */
    munmap(p, size);
    /* Over-map by `align` and cut the ends off: three system calls, paid once per mapping. */
    size_t span = size + align;
    if (span < size)
        return NULL;
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

static void
os_unmap(void *ctx, void *p, size_t size)
{
    (void)ctx;
    munmap(p, size); /* the kernel rounds size up to whole pages, as os_map() did */
}

static void
os_discard(void *ctx, void *p, size_t size)
{
    (void)ctx;
    madvise(p, size, MADV_DONTNEED);
}

static void *
os_malloc(void *ctx, size_t n)
{
    (void)ctx;
    return malloc(n);
}

static void *
os_calloc(void *ctx, size_t nelem, size_t elsize)
{
    (void)ctx;
    return calloc(nelem, elsize);
}

static void *
os_realloc(void *ctx, void *p, size_t n)
{
    (void)ctx;
    return realloc(p, n == 0 ? 1 : n); /* realloc(p, 0) would free p: the contract keeps it */
}

static void
os_free(void *ctx, void *p)
{
    (void)ctx;
    free(p);
}

static const zw_raw_ops os_ops = {
    .ctx = NULL,
    .map = os_map,
    .unmap = os_unmap,
    .discard = os_discard,
    .malloc = os_malloc,
    .calloc = os_calloc,
    .realloc = os_realloc,
    .free = os_free,
};

/* ---- the door ---- */

zw_raw *
zw_raw_new(const zw_raw_ops *ops)
{
    /* The door lives on its own page, so creating one never calls malloc (the preload layer
     * creates doors while malloc is being interposed). */
    zw_raw *raw = mmap(NULL, sizeof(*raw), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                       -1, 0);
    if (raw == MAP_FAILED)
        return NULL;
    raw->ops = ops != NULL ? *ops : os_ops;
    raw->fail_in = -1;
    return raw;
}

void
zw_raw_destroy(zw_raw *raw)
{
    if (raw != NULL)
        munmap(raw, sizeof(*raw));
}

/* Counts a request and says whether it must fail on purpose. */
static bool
request_fails(zw_raw *raw)
{
    raw->stats.requests++;
    if (ZW_LIKELY(raw->fail_in < 0))
        return false;
    if (raw->fail_in-- > 0)
        return false;
    raw->fired = true;
    raw->stats.injected_failures++;
    return true;
}

void *
zw_raw_map(zw_raw *raw, size_t size, size_t align)
{
    void *p = request_fails(raw) ? NULL : raw->ops.map(raw->ops.ctx, size, align);
    if (p == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    raw->stats.maps++;
    raw->stats.mapped_bytes += size;
    if (raw->stats.mapped_bytes > raw->stats.mapped_peak)
        raw->stats.mapped_peak = raw->stats.mapped_bytes;
    return p;
}

void
zw_raw_unmap(zw_raw *raw, void *p, size_t size)
{
    if (p == NULL)
        return;
    ZW_ASSERT(raw->stats.mapped_bytes >= size);
    raw->ops.unmap(raw->ops.ctx, p, size);
    raw->stats.unmaps++;
    raw->stats.mapped_bytes -= size;
}

void
zw_raw_discard(zw_raw *raw, void *p, size_t size)
{
    raw->ops.discard(raw->ops.ctx, p, size);
}

void *
zw_raw_malloc(zw_raw *raw, size_t n)
{
    void *p = request_fails(raw) ? NULL : raw->ops.malloc(raw->ops.ctx, n);
    if (p == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    raw->stats.blocks++;
    return p;
}

void *
zw_raw_calloc(zw_raw *raw, size_t nelem, size_t elsize)
{
    void *p = request_fails(raw) ? NULL : raw->ops.calloc(raw->ops.ctx, nelem, elsize);
    if (p == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    raw->stats.blocks++;
    return p;
}

void *
zw_raw_realloc(zw_raw *raw, void *p, size_t n)
{
    void *q = request_fails(raw) ? NULL : raw->ops.realloc(raw->ops.ctx, p, n);
    if (q == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    if (p == NULL)
        raw->stats.blocks++;
    return q;
}

void
zw_raw_free(zw_raw *raw, void *p)
{
    if (p == NULL)
        return;
    ZW_ASSERT(raw->stats.blocks > 0);
    raw->ops.free(raw->ops.ctx, p);
    raw->stats.blocks--;
}

void
zw_raw_get_stats(const zw_raw *raw, zw_raw_stats *out)
{
    *out = raw->stats;
}

void
zw_raw_fail_nth(zw_raw *raw, long n)
{
    raw->fail_in = n < 0 ? -1 : n;
    raw->fired = false;
}

bool
zw_raw_fault_fired(const zw_raw *raw)
{
    return raw->fired;
}
