/* mem/domain.c - the three allocator domains (RAW, MEM, OBJ) as PyMem_SetAllocator has them,
 * the process default heap behind MEM and OBJ, the ZW_MALLOC environment variable and the
 * traceback hook of debug reports.
 *
 * This file holds the mem layer's only process-wide state, one struct `G`, because the domains
 * are process-wide by definition (a tracer wraps them for the whole process). Each field says
 * what guards it. See docs/mem.md#domains. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <zerowaste/mem.h>

#include "mem_internal.h"

/* ---- default functions ---- */

static void *
raw_malloc(void *ctx, size_t n)
{
    (void)ctx;
    return malloc(n == 0 ? 1 : n);
}

static void *
raw_calloc(void *ctx, size_t nelem, size_t elsize)
{
    (void)ctx;
    if (nelem == 0 || elsize == 0)
        nelem = elsize = 1;
    return calloc(nelem, elsize);
}

static void *
raw_realloc(void *ctx, void *p, size_t n)
{
    (void)ctx;
    return realloc(p, n == 0 ? 1 : n);
}

static void
raw_free(void *ctx, void *p)
{
    (void)ctx;
    free(p);
}

/* The default heap's domain functions keep a frame pointer (gcc; clang ignores the attribute
 * and is not used for the library): a tracer's stack walk from the heap observer passes through
 * them to the caller of zw_mem_malloc() (docs/trace.md#frames). Not on any hot path of its own:
 * each takes the default heap's mutex. */
#if defined(__GNUC__) && !defined(__clang__)
#    define KEEP_FRAME __attribute__((optimize("no-omit-frame-pointer")))
#else
#    define KEEP_FRAME
#endif

static void *heap_malloc(void *ctx, size_t n);
static void *heap_calloc(void *ctx, size_t nelem, size_t elsize);
static void *heap_realloc(void *ctx, void *p, size_t n);
static void heap_free(void *ctx, void *p);

#define RAW_ALLOCATOR  {NULL, raw_malloc, raw_calloc, raw_realloc, raw_free}
#define HEAP_ALLOCATOR {NULL, heap_malloc, heap_calloc, heap_realloc, heap_free}

static struct {
    /* The domains' tables. Changed only by zw_mem_set_allocator() and the ZW_MALLOC=malloc
     * constructor, which callers must run while no other thread allocates through them. */
    zw_allocator domains[ZW_MEM_NDOMAINS];
    pthread_once_t heap_once; /* creates `heap` on first use */
    zw_heap *heap;            /* the default heap: set once, then used under `lock` */
    pthread_mutex_t lock;     /* guards every use of `heap` */
    /* The debug reports' traceback hook: set by a tracer while no block is being freed. */
    zw_mem_traceback_fn traceback_fn;
    void *traceback_ctx;
} G = {
    .domains = {RAW_ALLOCATOR, HEAP_ALLOCATOR, HEAP_ALLOCATOR},
    .heap_once = PTHREAD_ONCE_INIT,
    .lock = PTHREAD_MUTEX_INITIALIZER,
};

/* ---- ZW_MALLOC ---- */

/* What ZW_MALLOC asks of heaps created with the default configuration. */
unsigned
zwi_mem_env_flags(void)
{
    const char *v = getenv("ZW_MALLOC");
    return (v != NULL && strcmp(v, "debug") == 0) ? ZW_HEAP_DEBUG : 0;
}

/* Reads ZW_MALLOC once at load: "malloc" sends MEM and OBJ to the C library; an unknown value
 * is reported (a library cannot exit its host) and the default kept. */
__attribute__((constructor)) static void
read_env(void)
{
    const char *v = getenv("ZW_MALLOC");
    if (v == NULL || v[0] == '\0' || strcmp(v, "default") == 0 || strcmp(v, "debug") == 0)
        return;
    if (strcmp(v, "malloc") == 0) {
        G.domains[ZW_MEM_DOMAIN_MEM] = (zw_allocator)RAW_ALLOCATOR;
        G.domains[ZW_MEM_DOMAIN_OBJ] = (zw_allocator)RAW_ALLOCATOR;
        return;
    }
    fprintf(stderr, "zw: warning: ZW_MALLOC='%s' is not one of default, debug, malloc; "
                    "using default\n", v);
}

/* ---- the default heap ---- */

static void
create_default_heap(void)
{
    G.heap = zw_heap_new();
}

zw_heap *
zw_mem_default_heap(void)
{
    pthread_once(&G.heap_once, create_default_heap);
    return G.heap;
}

void
zw_mem_default_heap_lock(void)
{
    pthread_mutex_lock(&G.lock);
}

void
zw_mem_default_heap_unlock(void)
{
    pthread_mutex_unlock(&G.lock);
}

/* Returns the default heap locked, or NULL with errno = ENOMEM if it could not be created. */
static zw_heap *
lock_default_heap(void)
{
    zw_heap *h = zw_mem_default_heap();
    if (h == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    pthread_mutex_lock(&G.lock);
    return h;
}

static KEEP_FRAME void *
heap_malloc(void *ctx, size_t n)
{
    (void)ctx;
    zw_heap *h = lock_default_heap();
    if (h == NULL)
        return NULL;
    void *p = zw_heap_malloc(h, n);
    pthread_mutex_unlock(&G.lock);
    return p;
}

static KEEP_FRAME void *
heap_calloc(void *ctx, size_t nelem, size_t elsize)
{
    (void)ctx;
    zw_heap *h = lock_default_heap();
    if (h == NULL)
        return NULL;
    void *p = zw_heap_calloc(h, nelem, elsize);
    pthread_mutex_unlock(&G.lock);
    return p;
}

static KEEP_FRAME void *
heap_realloc(void *ctx, void *p, size_t n)
{
    (void)ctx;
    zw_heap *h = lock_default_heap();
    if (h == NULL)
        return NULL;
    void *q = zw_heap_realloc(h, p, n);
    pthread_mutex_unlock(&G.lock);
    return q;
}

static KEEP_FRAME void
heap_free(void *ctx, void *p)
{
    (void)ctx;
    if (p == NULL)
        return;
    zw_heap *h = lock_default_heap(); /* not NULL: p came from it */
    zw_heap_free(h, p);
    pthread_mutex_unlock(&G.lock);
}

/* ---- the domains ---- */

void
zw_mem_get_allocator(zw_mem_domain domain, zw_allocator *out)
{
    if ((unsigned)domain >= ZW_MEM_NDOMAINS) {
        memset(out, 0, sizeof(*out));
        return;
    }
    *out = G.domains[domain];
}

void
zw_mem_set_allocator(zw_mem_domain domain, const zw_allocator *alloc)
{
    if ((unsigned)domain >= ZW_MEM_NDOMAINS || alloc == NULL)
        return;
    G.domains[domain] = *alloc;
}

/* Each domain's entry points: one indirect call through the table. */
#define DOMAIN_ENTRY_POINTS(prefix, d)                                                            \
    void *prefix##malloc(size_t n)                                                                 \
    {                                                                                              \
        const zw_allocator *a = &G.domains[d];                                                     \
        return a->malloc(a->ctx, n);                                                               \
    }                                                                                              \
    void *prefix##calloc(size_t nelem, size_t elsize)                                              \
    {                                                                                              \
        const zw_allocator *a = &G.domains[d];                                                     \
        return a->calloc(a->ctx, nelem, elsize);                                                   \
    }                                                                                              \
    void *prefix##realloc(void *p, size_t n)                                                       \
    {                                                                                              \
        const zw_allocator *a = &G.domains[d];                                                     \
        return a->realloc(a->ctx, p, n);                                                           \
    }                                                                                              \
    void prefix##free(void *p)                                                                     \
    {                                                                                              \
        const zw_allocator *a = &G.domains[d];                                                     \
        a->free(a->ctx, p);                                                                        \
    }

DOMAIN_ENTRY_POINTS(zw_mem_raw_, ZW_MEM_DOMAIN_RAW)
DOMAIN_ENTRY_POINTS(zw_mem_, ZW_MEM_DOMAIN_MEM)
DOMAIN_ENTRY_POINTS(zw_mem_obj_, ZW_MEM_DOMAIN_OBJ)

/* ---- the heap observer ---- */

/* The installed observer: NULL, or one of the two copies in `hook_slots`. Its own variable (not
 * a field of G) so that heap.c reads it with one load on every call. Changed only by
 * zw_mem_set_heap_hook(), which alternates slots so that a racing reader never sees a half
 * written copy; callers install and remove while no other thread allocates (see mem.h). */
const zw_heap_hook *zwi_mem_heap_hook;
static zw_heap_hook hook_slots[2];
static unsigned hook_next_slot;

void
zw_mem_set_heap_hook(const zw_heap_hook *hook)
{
    if (hook == NULL || hook->alloc == NULL || hook->free == NULL) {
        __atomic_store_n(&zwi_mem_heap_hook, NULL, __ATOMIC_RELEASE);
        return;
    }
    zw_heap_hook *slot = &hook_slots[hook_next_slot];
    hook_next_slot ^= 1;
    *slot = *hook;
    __atomic_store_n(&zwi_mem_heap_hook, slot, __ATOMIC_RELEASE);
}

void
zw_mem_get_heap_hook(zw_heap_hook *out)
{
    const zw_heap_hook *k = zwi_mem_get_hook();
    if (k == NULL)
        memset(out, 0, sizeof(*out));
    else
        *out = *k;
}

/* ---- the traceback hook ---- */

void
zw_mem_set_traceback_hook(zw_mem_traceback_fn fn, void *ctx)
{
    G.traceback_fn = fn;
    G.traceback_ctx = ctx;
}

bool
zwi_mem_traceback(const void *ptr, FILE *out)
{
    return G.traceback_fn != NULL && G.traceback_fn(G.traceback_ctx, ptr, out);
}
