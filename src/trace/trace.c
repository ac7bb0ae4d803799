/* trace/trace.c - the in-process front door: zw_trace_start() wraps mem's three domains and
 * installs the heap observer, each feeding one global tracer (engine.c) in domain 0; the rest of
 * the zw_trace_* API reads that tracer. All of this file's state is the one struct `G` below.
 *
 * Frames: each wrapper walks the frame-pointer chain from its own frame. Between that frame and
 * the caller of zw_mem_malloc() or zw_heap_malloc() lie zero or more of mem's frames, depending
 * on how the compiler built them (tail calls, frames kept or not): zw_trace_start() measures that
 * number once per path with a probe allocation (calibrate()) and the wrappers skip it.
 * See docs/trace.md#frames. */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <zerowaste/mem.h>
#include <zerowaste/trace.h>

#include "trace_internal.h"

#define PATH_HEAP ZW_MEM_NDOMAINS /* index of the heap observer's path in G.skip */
#define NPATHS    (ZW_MEM_NDOMAINS + 1)

/* The process's tracing session. start/stop follow mem's rule for hooks: no other thread
 * allocates through mem while they run; everything else may run on any thread. */
static struct {
    /* non-NULL while tracing: set by start, cleared by stop; wrappers read it */
    zwi_tracer *_Atomic tracer;
    unsigned nframe;      /* the tracer's traceback limit, read by every wrapper */
    pthread_mutex_t lock; /* serialises start, stop, clear, snapshots and symbolisation */
    zwi_symbolizer *sym;  /* symbol cache, under `lock`; kept from start to stop */
    int limit;            /* the last traceback limit; 1 before the first start */
    zw_allocator saved[ZW_MEM_NDOMAINS]; /* each domain's table before start: wrappers forward */
    zw_heap_hook saved_hook; /* the observer installed before start (restored by stop) */
    unsigned skip[NPATHS];   /* mem frames between a wrapper and its caller (calibrate()) */
    /* Domains whose calls reach the default heap, and so the heap observer: their wrappers only
     * forward, and the observer records their blocks (one dispatch instead of two). A block of
     * such a domain reaches the observer with a return address into mem's domain code first,
     * `via[i].ra`; then `via[i].extra` frames (that one included) are mem's, not the caller's. */
    bool forwarded[ZW_MEM_NDOMAINS];
    struct {
        uintptr_t ra;
        unsigned extra;
    } via[3 * ZW_MEM_NDOMAINS];
    unsigned nvia;
    unsigned max_extra; /* the largest via[].extra */
    /* calibration scratch (calibrate() only) */
    uintptr_t calib_fp;  /* the probe's frame pointer */
    int calib_found;     /* frames between the calibration wrapper and the probe, or -1 */
    uintptr_t calib_ra;  /* the observer's first return address past its heap-path skip */
    zw_heap *calib_heap; /* the heap the calibration observer saw */
    void *calib_ptr;     /* the block it saw allocated */
    bool calib_freed;    /* it saw that block freed */
    void *probe_ptr;     /* the block the probe allocated */
    /* changes at each start, stop and clear: a traceback ref saved before is stale after */
    atomic_uint epoch;
    /* blocks left untraced since the last start because the tracer ran out of memory where the
     * call could not be failed instead (zw_trace_get_untraced()) */
    atomic_size_t untraced;
} G = {.lock = PTHREAD_MUTEX_INITIALIZER, .limit = 1};

#define MAX_EXTRA 16 /* the most domain frames the observer drops (zwi_thread.frames has room) */

static inline zwi_tracer *
tracer(void)
{
    return atomic_load_explicit(&G.tracer, memory_order_acquire);
}

/* ---- recording ---- */

/* The trace this thread removed last, at a free: a debug heap checks a block after the tracer
 * has seen it freed, and its report asks for the block's traceback then (print_allocation). */
static _Thread_local struct {
    uintptr_t ptr;
    uint32_t tb;
    unsigned epoch;
} last_freed;

/* Removes the trace of block `p` at its free, keeping its traceback ref in last_freed. */
static inline void
remove_freed(zwi_tracer *t, void *p)
{
    zwi_trace_rec old;
    unsigned epoch = atomic_load_explicit(&G.epoch, memory_order_relaxed);
    if (zwi_tracer_remove(t, ZW_TRACE_DEFAULT_DOMAIN, (uintptr_t)p, &old)) {
        last_freed.ptr = (uintptr_t)p;
        last_freed.tb = old.tb;
        last_freed.epoch = epoch;
    }
}

/* Counts a block that stays untraced: the tracer ran out of memory and the call cannot fail. */
static void
count_untraced(void)
{
    atomic_fetch_add_explicit(&G.untraced, 1, memory_order_relaxed);
}

/* Records block `p` of `n` bytes allocated through path `path`, with the frames above the
 * function this is inlined into (which keeps a frame). 0, or -1 if the tracer is out of memory
 * (the block is then untraced). */
static inline __attribute__((always_inline)) int
record(zwi_tracer *t, unsigned path, void *p, size_t n)
{
    zwi_thread *th = zwi_thread_get();
    static const uintptr_t unknown[1] = {0}; /* no frame at all: tracemalloc's <unknown> */
    const uintptr_t *frames = unknown;
    unsigned total = 1;
    unsigned nf = 0;
    if (th != NULL) {
        nf = zwi_capture(th, G.skip[path], th->frames, G.nframe, &total);
        frames = th->frames;
    }
    if (nf == 0) {
        frames = unknown;
        nf = total = 1;
    }
    return zwi_tracer_add(t, ZW_TRACE_DEFAULT_DOMAIN, (uintptr_t)p, n, frames, nf, total);
}

/* ---- the domain wrappers ---- */

/* One wrapper set per domain (ctx is the domain's index). The guard is up while the saved
 * allocator runs, so the default heap's observer call underneath records nothing: a block is
 * traced once, by the outermost door. A free removes the trace before the block is given back
 * (then its address can be handed to another thread); a realloc takes the old trace out first and
 * puts it back if the call fails. As tracemalloc: a new block that cannot be traced (the tracer is
 * out of memory) is freed and the call fails with ENOMEM; a block resized in place or moved
 * cannot be given back, so it stays untraced and is counted (G.untraced), as is an old block
 * whose trace cannot be put back after a failed realloc. */
#define DOMAIN_WRAPPERS(d)                                                                         \
    static void *wrap_malloc_##d(void *ctx, size_t n)                                              \
    {                                                                                              \
        const zw_allocator *a = &G.saved[d];                                                       \
        zwi_tracer *t = tracer();                                                                  \
        if (zwi_trace_guard || t == NULL)                                                          \
            return a->malloc(a->ctx, n);                                                           \
        zwi_trace_guard++;                                                                         \
        void *p = a->malloc(a->ctx, n);                                                            \
        if (p != NULL && record(t, d, p, n) != 0) {                                                \
            a->free(a->ctx, p);                                                                    \
            p = NULL;                                                                              \
            errno = ENOMEM;                                                                        \
        }                                                                                          \
        zwi_trace_guard--;                                                                         \
        return p;                                                                                  \
    }                                                                                              \
    static void *wrap_calloc_##d(void *ctx, size_t nelem, size_t elsize)                           \
    {                                                                                              \
        const zw_allocator *a = &G.saved[d];                                                       \
        zwi_tracer *t = tracer();                                                                  \
        if (zwi_trace_guard || t == NULL)                                                          \
            return a->calloc(a->ctx, nelem, elsize);                                               \
        zwi_trace_guard++;                                                                         \
        void *p = a->calloc(a->ctx, nelem, elsize);                                                \
        if (p != NULL && record(t, d, p, nelem * elsize) != 0) {                                   \
            a->free(a->ctx, p);                                                                    \
            p = NULL;                                                                              \
            errno = ENOMEM;                                                                        \
        }                                                                                          \
        zwi_trace_guard--;                                                                         \
        return p;                                                                                  \
    }                                                                                              \
    static void *wrap_realloc_##d(void *ctx, void *p, size_t n)                                    \
    {                                                                                              \
        const zw_allocator *a = &G.saved[d];                                                       \
        zwi_tracer *t = tracer();                                                                  \
        if (zwi_trace_guard || t == NULL)                                                          \
            return a->realloc(a->ctx, p, n);                                                       \
        zwi_trace_guard++;                                                                         \
        zwi_trace_rec old;                                                                         \
        bool had = p != NULL && zwi_tracer_remove(t, ZW_TRACE_DEFAULT_DOMAIN, (uintptr_t)p, &old); \
        void *q = a->realloc(a->ctx, p, n);                                                        \
        if (q != NULL && record(t, d, q, n) != 0) {                                                \
            if (p == NULL) { /* a new block: fail the call */                                      \
                a->free(a->ctx, q);                                                                \
                q = NULL;                                                                          \
                errno = ENOMEM;                                                                    \
            } else {                                                                               \
                count_untraced();                                                                  \
            }                                                                                      \
        } else if (q == NULL && had && zwi_tracer_restore(t, (uintptr_t)p, &old) != 0) {          \
            count_untraced();                                                                      \
        }                                                                                          \
        zwi_trace_guard--;                                                                         \
        return q;                                                                                  \
    }                                                                                              \
    static void wrap_free_##d(void *ctx, void *p)                                                  \
    {                                                                                              \
        const zw_allocator *a = &G.saved[d];                                                       \
        zwi_tracer *t = tracer();                                                                  \
        if (!zwi_trace_guard && t != NULL && p != NULL) {                                          \
            zwi_trace_guard++;                                                                     \
            remove_freed(t, p);                                                                    \
            zwi_trace_guard--;                                                                     \
        }                                                                                          \
        a->free(a->ctx, p);                                                                        \
    }

DOMAIN_WRAPPERS(0)
DOMAIN_WRAPPERS(1)
DOMAIN_WRAPPERS(2)

_Static_assert(ZW_MEM_DOMAIN_RAW == 0 && ZW_MEM_DOMAIN_MEM == 1 && ZW_MEM_DOMAIN_OBJ == 2,
               "the wrappers are numbered by domain");

static const zw_allocator wrappers[ZW_MEM_NDOMAINS] = {
    {NULL, wrap_malloc_0, wrap_calloc_0, wrap_realloc_0, wrap_free_0},
    {NULL, wrap_malloc_1, wrap_calloc_1, wrap_realloc_1, wrap_free_1},
    {NULL, wrap_malloc_2, wrap_calloc_2, wrap_realloc_2, wrap_free_2},
};

/* The wrappers of a forwarded domain: the observer underneath records (see G.forwarded). */
#define FORWARDERS(d)                                                                              \
    static void *fwd_malloc_##d(void *ctx, size_t n)                                               \
    {                                                                                              \
        const zw_allocator *a = &G.saved[d];                                                       \
        return a->malloc(a->ctx, n);                                                               \
    }                                                                                              \
    static void *fwd_calloc_##d(void *ctx, size_t nelem, size_t elsize)                            \
    {                                                                                              \
        const zw_allocator *a = &G.saved[d];                                                       \
        return a->calloc(a->ctx, nelem, elsize);                                                   \
    }                                                                                              \
    static void *fwd_realloc_##d(void *ctx, void *p, size_t n)                                     \
    {                                                                                              \
        const zw_allocator *a = &G.saved[d];                                                       \
        return a->realloc(a->ctx, p, n);                                                           \
    }                                                                                              \
    static void fwd_free_##d(void *ctx, void *p)                                                   \
    {                                                                                              \
        const zw_allocator *a = &G.saved[d];                                                       \
        a->free(a->ctx, p);                                                                        \
    }

FORWARDERS(0)
FORWARDERS(1)
FORWARDERS(2)

static const zw_allocator forwarders[ZW_MEM_NDOMAINS] = {
    {NULL, fwd_malloc_0, fwd_calloc_0, fwd_realloc_0, fwd_free_0},
    {NULL, fwd_malloc_1, fwd_calloc_1, fwd_realloc_1, fwd_free_1},
    {NULL, fwd_malloc_2, fwd_calloc_2, fwd_realloc_2, fwd_free_2},
};

/* ---- the heap observer ---- */

/* record() for the observer: the block came from a private heap, or from a forwarded domain,
 * recognised by its first return address, whose frames in mem are dropped. */
static inline __attribute__((always_inline)) int
record_observed(zwi_tracer *t, void *p, size_t n)
{
    zwi_thread *th = zwi_thread_get();
    static const uintptr_t unknown[1] = {0};
    const uintptr_t *frames = unknown;
    unsigned total = 1;
    unsigned nf = 0;
    if (th != NULL) {
        nf = zwi_capture(th, G.skip[PATH_HEAP], th->frames, G.nframe + G.max_extra, &total);
        frames = th->frames;
        for (unsigned i = 0; i < G.nvia && nf > 0; i++) {
            if (frames[0] == G.via[i].ra) {
                unsigned e = G.via[i].extra;
                frames += e;
                nf = nf > e ? nf - e : 0;
                total = total > e ? total - e : 0;
                break;
            }
        }
        if (nf > G.nframe)
            nf = G.nframe;
    }
    if (nf == 0) {
        frames = unknown;
        nf = total = 1;
    }
    return zwi_tracer_add(t, ZW_TRACE_DEFAULT_DOMAIN, (uintptr_t)p, n, frames, nf, total);
}

static void
observe_alloc(void *ctx, zw_heap *h, void *ptr, size_t size)
{
    zwi_tracer *t = tracer();
    if (zwi_trace_guard || t == NULL)
        return;
    zwi_trace_guard++;
    if (record_observed(t, ptr, size) != 0) /* the block is made already: it stays untraced */
        count_untraced();
    zwi_trace_guard--;
}

static void
observe_free(void *ctx, zw_heap *h, void *ptr)
{
    zwi_tracer *t = tracer();
    if (zwi_trace_guard || t == NULL)
        return;
    zwi_trace_guard++;
    remove_freed(t, ptr);
    zwi_trace_guard--;
}

static const zw_heap_hook observer = {NULL, observe_alloc, observe_free};

/* ---- calibration ---- */

/* Frames between the frame of the function this is inlined into and the frame whose pointer is
 * G.calib_fp (the probe), or -1. Runs only in calibrate(), on chains we made ourselves. */
static inline __attribute__((always_inline)) int
frames_to_probe(void)
{
    const uintptr_t *fp = __builtin_frame_address(0);
    for (int i = 0; i < 16; i++) {
        const uintptr_t *next = (const uintptr_t *)fp[0];
        if ((uintptr_t)next == G.calib_fp)
            return i;
        if (next <= fp)
            return -1;
        fp = next;
    }
    return -1;
}

static void *
calib_malloc(void *ctx, size_t n)
{
    const zw_allocator *a = ctx;
    G.calib_found = frames_to_probe();
    return a->malloc(a->ctx, n);
}

static void
calib_free(void *ctx, void *p)
{
    const zw_allocator *a = ctx;
    a->free(a->ctx, p);
}

/* The return address `idx` frames above the function this is inlined into (calibration). */
static inline __attribute__((always_inline)) uintptr_t
return_address_at(unsigned idx)
{
    const uintptr_t *fp = __builtin_frame_address(0);
    for (unsigned i = 0; i < idx; i++) {
        const uintptr_t *next = (const uintptr_t *)fp[0];
        if (next <= fp)
            return 0;
        fp = next;
    }
    return fp[1];
}

static void
calib_heap_alloc(void *ctx, zw_heap *h, void *ptr, size_t size)
{
    G.calib_found = frames_to_probe();
    G.calib_ra = return_address_at(G.skip[PATH_HEAP]);
    G.calib_heap = h;
    G.calib_ptr = ptr;
}

static void
calib_heap_free(void *ctx, zw_heap *h, void *ptr)
{
    G.calib_freed |= ptr == G.calib_ptr && ptr != NULL;
}

enum probe_op { PROBE_MALLOC, PROBE_CALLOC, PROBE_REALLOC };

/* Allocates (with `op`) and frees one block through `path` from a frame of its own. */
static __attribute__((noinline)) void
probe(unsigned path, zw_heap *heap, enum probe_op op)
{
    G.calib_fp = (uintptr_t)__builtin_frame_address(0);
    void *p;
    switch (path) {
    case ZW_MEM_DOMAIN_RAW:
        p = op == PROBE_MALLOC   ? zw_mem_raw_malloc(8)
            : op == PROBE_CALLOC ? zw_mem_raw_calloc(1, 8)
                                 : zw_mem_raw_realloc(NULL, 8);
        G.probe_ptr = p;
        zw_mem_raw_free(p);
        break;
    case ZW_MEM_DOMAIN_MEM:
        p = op == PROBE_MALLOC   ? zw_mem_malloc(8)
            : op == PROBE_CALLOC ? zw_mem_calloc(1, 8)
                                 : zw_mem_realloc(NULL, 8);
        G.probe_ptr = p;
        zw_mem_free(p);
        break;
    case ZW_MEM_DOMAIN_OBJ:
        p = op == PROBE_MALLOC   ? zw_mem_obj_malloc(8)
            : op == PROBE_CALLOC ? zw_mem_obj_calloc(1, 8)
                                 : zw_mem_obj_realloc(NULL, 8);
        G.probe_ptr = p;
        zw_mem_obj_free(p);
        break;
    default:
        p = zw_heap_malloc(heap, 8);
        G.probe_ptr = p;
        zw_heap_free(heap, p);
        break;
    }
    __asm__ volatile("" ::: "memory"); /* keep the frame: no tail call above */
}

/* Can domain `d` be forwarded (G.forwarded)? With its forwarders and a calibration observer
 * installed, each of malloc, calloc and realloc must reach the observer on the default heap with
 * the probe's block, which the domain's free must give back through it too; then the return
 * address and the frame count seen are added to G.via. */
static bool
try_forward(unsigned d)
{
    zw_heap *dh = zw_mem_default_heap();
    unsigned nvia = G.nvia;
    bool ok = dh != NULL;
    zw_heap_hook calib = {NULL, calib_heap_alloc, calib_heap_free};
    zw_mem_set_allocator((zw_mem_domain)d, &forwarders[d]);
    zw_mem_set_heap_hook(&calib);
    for (int op = PROBE_MALLOC; op <= PROBE_REALLOC && ok; op++) {
        G.calib_found = -1;
        G.calib_ra = 0;
        G.calib_heap = NULL;
        G.calib_ptr = NULL;
        G.calib_freed = false;
        G.probe_ptr = NULL;
        probe(d, NULL, (enum probe_op)op);
        int extra = G.calib_found - (int)G.skip[PATH_HEAP];
        ok = G.calib_heap == dh && G.calib_ptr == G.probe_ptr && G.calib_freed && G.calib_ra != 0 &&
             extra >= 1 && extra <= MAX_EXTRA && nvia < 3 * ZW_MEM_NDOMAINS;
        for (unsigned i = 0; ok && i < nvia; i++) {
            if (G.via[i].ra == G.calib_ra && G.via[i].extra != (unsigned)extra)
                ok = false; /* one return address, two meanings: do not guess */
        }
        if (ok) {
            G.via[nvia].ra = G.calib_ra;
            G.via[nvia].extra = (unsigned)extra;
            nvia++;
        }
    }
    zw_mem_set_heap_hook(NULL);
    zw_mem_set_allocator((zw_mem_domain)d, &G.saved[d]);
    if (!ok)
        return false;
    for (unsigned i = G.nvia; i < nvia; i++) {
        if (G.via[i].extra > G.max_extra)
            G.max_extra = G.via[i].extra;
    }
    G.nvia = nvia;
    return true;
}

/* Measures G.skip[] for each path: installs calibration wrappers that count the frames up to the
 * probe's, allocates through each path, and puts the saved tables back. The count seen by the
 * calibration wrapper is the number of mem frames the real wrapper must skip: both sit at the same
 * place of the chain. A path that cannot be measured skips nothing (its tracebacks then start
 * with a frame of mem). */
static void
calibrate(void)
{
    zw_heap_config cfg = {.flags = ZW_HEAP_IGNORE_ENV};
    zw_heap *heap = zw_heap_new_ex(&cfg);
    for (unsigned k = 0; k < NPATHS; k++) {
        unsigned path = (PATH_HEAP + k) % NPATHS; /* the heap first: forwarding needs its skip */
        G.calib_found = -1;
        if (path < ZW_MEM_NDOMAINS) {
            /* the probe calls only malloc and free */
            zw_allocator calib = {&G.saved[path], calib_malloc, NULL, NULL, calib_free};
            zw_mem_set_allocator((zw_mem_domain)path, &calib);
            probe(path, NULL, PROBE_MALLOC);
            zw_mem_set_allocator((zw_mem_domain)path, &G.saved[path]);
        } else if (heap != NULL) {
            zw_heap_hook calib = {NULL, calib_heap_alloc, calib_heap_free};
            zw_mem_set_heap_hook(&calib);
            probe(path, heap, PROBE_MALLOC);
            zw_mem_set_heap_hook(NULL);
        }
        G.skip[path] = G.calib_found < 0 ? 0 : (unsigned)G.calib_found;
    }
    zw_heap_destroy(heap);
    G.nvia = 0;
    G.max_extra = 0;
    for (unsigned d = 0; d < ZW_MEM_NDOMAINS; d++)
        G.forwarded[d] = try_forward(d);
}

/* ---- starting and stopping ---- */

/* The debug heap's traceback hook (zw_mem_set_traceback_hook) while tracing: a report about a
 * damaged block says where it was allocated, as PYTHONMALLOC=debug does with tracemalloc. */
static bool
print_allocation(void *ctx, const void *ptr, FILE *out)
{
    (void)ctx;
    zw_traceback *tb = NULL;
    pthread_mutex_lock(&G.lock);
    zwi_tracer *t = tracer();
    zwi_trace_rec rec;
    zwi_trace_guard++;
    if (t != NULL && zwi_tracer_lookup(t, ZW_TRACE_DEFAULT_DOMAIN, (uintptr_t)ptr, &rec))
        tb = zwi_traceback_from_tracer(t, G.sym, rec.tb);
    else if (t != NULL && last_freed.ptr == (uintptr_t)ptr &&
             last_freed.epoch == atomic_load_explicit(&G.epoch, memory_order_relaxed))
        tb = zwi_traceback_from_tracer(t, G.sym, last_freed.tb); /* a free being checked */
    zwi_trace_guard--;
    pthread_mutex_unlock(&G.lock);
    if (tb == NULL)
        return false;
    fprintf(out, "    Memory block allocated at (most recent call first):\n");
    zw_traceback_format(tb, ZW_NO_LIMIT, true, out);
    zw_traceback_free(tb);
    return true;
}

int
zw_trace_start(int nframe, zw_error *err)
{
    if (nframe < 1 || nframe > ZW_TRACE_MAX_NFRAME)
        return zw_error_set(err, "the number of frames must be in range [1; %d], not %d",
                            ZW_TRACE_MAX_NFRAME, nframe);
    int rc = 0;
    pthread_mutex_lock(&G.lock);
    if (tracer() != NULL)
        goto out; /* as tracemalloc: already tracing, the limit stays */
    zwi_trace_guard++;
    zwi_tracer *t = zwi_tracer_new((unsigned)nframe);
    if (t != NULL && G.sym == NULL)
        G.sym = zwi_symbolizer_new();
    if (t == NULL || G.sym == NULL) {
        zwi_tracer_free(t);
        zwi_trace_guard--;
        rc = zw_error_set(err, "cannot start tracing: %s", strerror(ENOMEM));
        goto out;
    }
    for (unsigned d = 0; d < ZW_MEM_NDOMAINS; d++)
        zw_mem_get_allocator((zw_mem_domain)d, &G.saved[d]);
    zw_mem_get_heap_hook(&G.saved_hook);
    calibrate();
    (void)zwi_thread_get(); /* this thread's stack bounds, before the first traced block */
    G.limit = nframe;
    G.nframe = (unsigned)nframe;
    atomic_store_explicit(&G.untraced, 0, memory_order_relaxed);
    atomic_fetch_add_explicit(&G.epoch, 1, memory_order_relaxed);
    atomic_store_explicit(&G.tracer, t, memory_order_release);
    for (unsigned d = 0; d < ZW_MEM_NDOMAINS; d++)
        zw_mem_set_allocator((zw_mem_domain)d, G.forwarded[d] ? &forwarders[d] : &wrappers[d]);
    zw_mem_set_heap_hook(&observer);
    zw_mem_set_traceback_hook(print_allocation, NULL);
    zwi_trace_guard--;
out:
    pthread_mutex_unlock(&G.lock);
    return rc;
}

void
zw_trace_stop(void)
{
    pthread_mutex_lock(&G.lock);
    zwi_tracer *t = tracer();
    if (t != NULL) {
        for (unsigned d = 0; d < ZW_MEM_NDOMAINS; d++)
            zw_mem_set_allocator((zw_mem_domain)d, &G.saved[d]);
        zw_mem_set_heap_hook(G.saved_hook.alloc != NULL ? &G.saved_hook : NULL);
        zw_mem_set_traceback_hook(NULL, NULL);
        atomic_store_explicit(&G.tracer, NULL, memory_order_release);
        atomic_fetch_add_explicit(&G.epoch, 1, memory_order_relaxed);
        zwi_trace_guard++;
        zwi_tracer_free(t);
        zwi_symbolizer_free(G.sym);
        G.sym = NULL;
        zwi_trace_guard--;
    }
    pthread_mutex_unlock(&G.lock);
}

bool
zw_trace_is_tracing(void)
{
    return tracer() != NULL;
}

int
zw_trace_get_traceback_limit(void)
{
    return G.limit;
}

void
zw_trace_clear(void)
{
    pthread_mutex_lock(&G.lock);
    zwi_tracer *t = tracer();
    zwi_trace_guard++; /* a signal handler allocating now is not traced into a half-cleared table */
    if (t != NULL) {
        /* around the clear: a free that loads either value may have found an old trace */
        atomic_fetch_add_explicit(&G.epoch, 1, memory_order_relaxed);
        zwi_tracer_clear(t);
        atomic_fetch_add_explicit(&G.epoch, 1, memory_order_relaxed);
    }
    zwi_trace_guard--;
    pthread_mutex_unlock(&G.lock);
}

void
zw_trace_get_traced_memory(size_t *current, size_t *peak)
{
    zwi_tracer *t = tracer();
    if (t == NULL) {
        if (current != NULL)
            *current = 0;
        if (peak != NULL)
            *peak = 0;
        return;
    }
    zwi_tracer_traced_memory(t, current, peak);
}

void
zw_trace_reset_peak(void)
{
    zwi_tracer *t = tracer();
    if (t != NULL)
        zwi_tracer_reset_peak(t);
}

size_t
zw_trace_get_untraced(void)
{
    return atomic_load_explicit(&G.untraced, memory_order_relaxed);
}

size_t
zw_trace_get_memory(void)
{
    pthread_mutex_lock(&G.lock);
    zwi_tracer *t = tracer();
    size_t n = 0;
    if (t != NULL)
        n = zwi_tracer_memory(t);
    if (G.sym != NULL)
        n += zwi_symbolizer_memory(G.sym);
    pthread_mutex_unlock(&G.lock);
    return n;
}

/* ---- the caller's own domains ---- */

int
zw_trace_track(unsigned domain, uintptr_t ptr, size_t size)
{
    zwi_tracer *t = tracer();
    if (t == NULL)
        return -2;
    if (zwi_trace_guard)
        return 0; /* called from inside the tracer: not traced, as an allocation there */
    zwi_trace_guard++;
    int rc = -1;
    zwi_thread *th = zwi_thread_get();
    static const uintptr_t unknown[1] = {0};
    const uintptr_t *frames = unknown;
    unsigned total = 1;
    unsigned nf = 0;
    if (th != NULL) {
        nf = zwi_capture(th, 0, th->frames, zwi_tracer_nframe(t), &total);
        frames = th->frames;
    }
    if (nf == 0) {
        frames = unknown;
        nf = total = 1;
    }
    rc = zwi_tracer_add(t, domain, ptr, size, frames, nf, total);
    zwi_trace_guard--;
    return rc;
}

int
zw_trace_untrack(unsigned domain, uintptr_t ptr)
{
    zwi_tracer *t = tracer();
    if (t == NULL)
        return -2;
    zwi_trace_guard++;
    zwi_tracer_remove(t, domain, ptr, NULL);
    zwi_trace_guard--;
    return 0;
}

/* ---- tracebacks and snapshots ---- */

zw_traceback *
zw_trace_get_traceback(const void *ptr)
{
    zw_traceback *tb = NULL;
    pthread_mutex_lock(&G.lock);
    zwi_tracer *t = tracer();
    zwi_trace_rec rec;
    zwi_trace_guard++;
    if (t != NULL && zwi_tracer_lookup(t, ZW_TRACE_DEFAULT_DOMAIN, (uintptr_t)ptr, &rec))
        tb = zwi_traceback_from_tracer(t, G.sym, rec.tb);
    zwi_trace_guard--;
    pthread_mutex_unlock(&G.lock);
    return tb;
}

zw_snapshot *
zw_trace_take_snapshot(zw_error *err)
{
    zw_snapshot *snap = NULL;
    pthread_mutex_lock(&G.lock);
    zwi_tracer *t = tracer();
    if (t == NULL) {
        zw_error_set(err, "the tracer must be tracing memory allocations to take a snapshot");
        goto out;
    }
    zwi_trace_guard++;
    snap = zwi_snapshot_from_tracer(t, G.sym, err);
    zwi_trace_guard--;
out:
    pthread_mutex_unlock(&G.lock);
    return snap;
}
