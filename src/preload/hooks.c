/* preload/hooks.c - the interposed malloc family of libzwpreload.so, and its bootstrap.
 *
 *   bootstrap: until dlsym(RTLD_NEXT, ...) has found the real functions, blocks come from a static
 *              arena (G.boot); freeing one of them does nothing
 *   hook:      guard up -> the real function -> record -> guard down. Recording is, on the
 *              program's thread: the traceback captured, the thread's allocation counts, the
 *              temporary-allocation test, and a record posted to the ring, with the traceback's
 *              frames that differ from the last ones its thread posted (post_frames: the
 *              bookkeeping interns it) or its ref (interned here: when the thread's memo of the
 *              site has it, or the bookkeeping is behind); the table, the site counters, the
 *              frees and the peak are the bookkeeping's (apply(), run by consumer.c's thread in
 *              ticket order, or by the hook itself with ZW_BOOKKEEPING=inline)
 *
 * Reentrancy: the engine's per-thread guard (zwi_trace_guard, initial-exec TLS) is this library's
 * depth counter too: a hook that finds it up forwards to the real function untraced, so the
 * engine, the symboliser and the sampler allocate through malloc without being traced. A hook's
 * traceback starts at its own frame: this file is built with -fno-omit-frame-pointer, and the
 * unwinder (unwinder.h) repairs walks through code without frame pointers.
 * See docs/zw.md#how-it-works. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "preload_internal.h"

#define BOOT_HEADER 16 /* before each bootstrap block: its size */
/* This thread's counters (a slot of G.slots), or NULL before its first traced allocation, and its
 * last allocation until it frees any block (a temporary allocation is freed next). initial-exec:
 * reading them never enters the dynamic loader, which may call malloc. */
static _Thread_local tstats *my_stats __attribute__((tls_model("initial-exec")));
/* The thread's last allocation, hidden (XOR HIDE_PTR) so that the leak scan, which reads every
 * thread's TLS, does not take it for a pointer that keeps the block reachable. */
#define HIDE_PTR ((uintptr_t)0x5a5a5a5a5a5a5a5aull)
static _Thread_local uintptr_t my_last __attribute__((tls_model("initial-exec")));

/* ---- bootstrap ---- */

static void *
boot_alloc(size_t n, size_t align)
{
    if (align < 16)
        align = 16;
    for (;;) {
        size_t used = atomic_load(&G.boot.used);
        size_t start = (used + BOOT_HEADER + align - 1) & ~(align - 1);
        if (start + n > BOOT_SIZE || n > BOOT_SIZE)
            return NULL;
        if (atomic_compare_exchange_weak(&G.boot.used, &used, start + n)) {
            memcpy(G.boot.bytes + start - sizeof(size_t), &n, sizeof(size_t));
            return G.boot.bytes + start;
        }
    }
}

static inline bool
in_boot(const void *p)
{
    return (const unsigned char *)p >= G.boot.bytes &&
           (const unsigned char *)p < G.boot.bytes + BOOT_SIZE;
}

static size_t
boot_size(const void *p)
{
    size_t n;
    memcpy(&n, (const unsigned char *)p - sizeof(size_t), sizeof(size_t));
    return n;
}

/* Finds the real functions; false while dlsym() itself is running (then the caller serves the
 * request from the bootstrap arena). The first calls only: see resolve(). */
static __attribute__((noinline)) bool
resolve_slow(void)
{
    if (atomic_load_explicit(&G.ready, memory_order_acquire))
        return true;
    if (atomic_exchange(&G.resolving, true))
        return false;
    real_fns r;
    r.malloc = dlsym(RTLD_NEXT, "malloc");
    r.free = dlsym(RTLD_NEXT, "free");
    r.calloc = dlsym(RTLD_NEXT, "calloc");
    r.realloc = dlsym(RTLD_NEXT, "realloc");
    r.posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
    r.aligned_alloc = dlsym(RTLD_NEXT, "aligned_alloc");
    r.memalign = dlsym(RTLD_NEXT, "memalign");
    r.valloc = dlsym(RTLD_NEXT, "valloc");
    r.pvalloc = dlsym(RTLD_NEXT, "pvalloc");
    r.malloc_usable_size = dlsym(RTLD_NEXT, "malloc_usable_size");
    r.exit_ = dlsym(RTLD_NEXT, "_exit");
    r.execve = dlsym(RTLD_NEXT, "execve");
    r.execvp = dlsym(RTLD_NEXT, "execvp");
    r.execvpe = dlsym(RTLD_NEXT, "execvpe");
    r.fexecve = dlsym(RTLD_NEXT, "fexecve");
    r.execveat = dlsym(RTLD_NEXT, "execveat");
    r.posix_spawn = dlsym(RTLD_NEXT, "posix_spawn");
    r.posix_spawnp = dlsym(RTLD_NEXT, "posix_spawnp");
    r.brk = dlsym(RTLD_NEXT, "brk");
    r.sbrk = dlsym(RTLD_NEXT, "sbrk");
    r.getattr = dlsym(RTLD_NEXT, "pthread_getattr_np");
    if (r.malloc == NULL || r.free == NULL || r.calloc == NULL || r.realloc == NULL ||
        r.memalign == NULL || r.exit_ == NULL) {
        static const char msg[] = "zw: preload: cannot find the real malloc functions\n";
        (void)!write(2, msg, sizeof(msg) - 1);
        abort();
    }
    G.real = r;
    atomic_store_explicit(&G.ready, true, memory_order_release);
    atomic_store(&G.resolving, false);
    return true;
}

/* resolve_slow(), with its answer once the functions are found inlined into every hook */
static inline bool
resolve(void)
{
    if (ZW_LIKELY(atomic_load_explicit(&G.ready, memory_order_acquire)))
        return true;
    return resolve_slow();
}

bool
zwi_preload_resolve(void)
{
    return resolve();
}

/* ---- counters ---- */

/* At a thread's exit: its counts go to the shared slot (added there first: a SIGKILL in between
 * counts them twice, never loses them), and its slot is free for the next thread. Whatever the
 * thread allocates after this (later TLS destructors) counts in the shared slot. */
static void
stats_release(void *p)
{
    tstats *ts = p;
    if (G.live == NULL || ts < G.slots || ts >= G.slots + G.live->nslots - 1)
        return; /* a slot of another mapping (none should be left: forget_stats) */
    tstats *shared = &G.slots[G.live->nslots - 1];
    my_stats = shared;
    _Atomic uint64_t *from[6] = {&ts->allocs, &ts->frees, &ts->temps,
                                 &ts->bytes,  &ts->freed_bytes, &ts->untraced};
    _Atomic uint64_t *to[6] = {&shared->allocs, &shared->frees,       &shared->temps,
                               &shared->bytes,  &shared->freed_bytes, &shared->untraced};
    for (int k = 0; k < 6; k++)
        atomic_fetch_add(to[k], atomic_load(from[k]));
    for (int k = 0; k < 6; k++)
        atomic_store(from[k], 0);
    atomic_store(&G.slot_free[ts - G.slots], 1);
}

/* This thread's counters, made on first use: a slot of the LIVE section (a free one, else a new
 * one), or the last one, shared, once they are all taken. */
static tstats *
stats_make(void)
{
    if (G.slots == NULL)
        return NULL;
    unsigned last = G.live->nslots - 1;
    unsigned i = atomic_load(&G.slots_used);
    for (unsigned k = 0; k < i && k < last; k++) {
        unsigned char one = 1;
        if (atomic_load_explicit(&G.slot_free[k], memory_order_relaxed) &&
            atomic_compare_exchange_strong(&G.slot_free[k], &one, 0)) {
            i = k;
            goto found;
        }
    }
    i = atomic_fetch_add(&G.slots_used, 1);
found:
    my_stats = &G.slots[i < last ? i : last];
    if (i < last && G.slot_key_ok) /* released at the thread's exit */
        pthread_setspecific(G.slot_key, my_stats);
    return my_stats;
}

void
zwi_preload_make_slot_key(void)
{
    G.slot_key_ok = pthread_key_create(&G.slot_key, stats_release) == 0;
}

void
zwi_preload_forget_stats(void)
{
    my_stats = NULL;
    my_last = 0;
    if (G.slot_key_ok)
        pthread_setspecific(G.slot_key, NULL);
}

/* Adds n to a counter of this thread's slot: a plain load and store (no locked instruction) on a
 * slot of its own, an atomic add on the shared one. */
static inline void
bump(tstats *ts, _Atomic uint64_t *c, uint64_t n)
{
    if (ZW_UNLIKELY(ts == G.shared_slot))
        atomic_fetch_add_explicit(c, n, memory_order_relaxed);
    else
        atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                              memory_order_relaxed);
}

/* ---- the hooks' common steps ---- */

static inline bool
tracing(void)
{
    if (ZW_LIKELY(zwi_trace_guard == 0 && atomic_load_explicit(&G.active, memory_order_acquire)))
        return true;
    if (ZW_UNLIKELY(zwi_trace_guard == 0 && !atomic_load_explicit(&G.started, memory_order_relaxed))) {
        zwi_preload_start(); /* an allocation before our constructor ran: traced too */
        return atomic_load(&G.active);
    }
    return false;
}

/* Leaves a hook: the guard down, and a signal from outside that landed while it was up (when this
 * thread may have held a lock of the engine or of malloc) served now. */
static inline __attribute__((always_inline)) void
guard_down(void)
{
    zwi_trace_guard--;
    if (ZW_UNLIKELY(atomic_load_explicit(&G.deferred_signal, memory_order_relaxed) != 0) &&
        zwi_trace_guard == 0)
        zwi_preload_serve_deferred();
}

/* The traceback of the caller of the hook this is inlined into: nf frames at *frames (of `total`),
 * or one unknown frame. */
static inline __attribute__((always_inline)) unsigned
capture_frames(zwi_thread *th, const uintptr_t **frames, unsigned *total)
{
    static const uintptr_t unknown[1] = {0};
    unsigned nf = 0;
    *frames = unknown;
    *total = 1;
    if (th != NULL) {
        *frames = th->frames;
        /* a caller in a module known not to keep frame pointers: the unwinder's walk; else the
         * frame-pointer chain, trusted from a caller in a module known to keep them; from the C
         * or C++ runtime it is repaired, otherwise walked by the unwinder */
        const uintptr_t *hook_fp = __builtin_frame_address(0);
        nf = zwi_preload_unwind_nofp_caller(&G.unw, th->frames, G.nframe, total, th->stack_lo,
                                            th->stack_hi, hook_fp);
        if (nf == 0) {
            nf = zwi_capture(th, 0, th->frames, G.nframe, total);
            nf = zwi_preload_unwind_fix(&G.unw, th->frames, nf, G.nframe, total, th->stack_lo,
                                        th->stack_hi, hook_fp);
        }
        if (ZW_UNLIKELY(atomic_load_explicit(&G.unloaded.n, memory_order_relaxed) != 0))
            zwi_preload_tag_frames(th->frames, nf); /* code was unloaded: whose frames are these */
    }
    if (nf == 0) {
        *frames = unknown;
        nf = *total = 1;
    }
    return nf;
}

/* ---- bookkeeping: applied by the consumer thread, or inline ---- */

/* Adds n to counter c of a site: a plain load and store when the caller is its only writer
 * (`sole`: the consumer, on a heap site; mmaps.c marks its sites' domain before it counts there,
 * with atomic adds), else an atomic add. */
static inline void
site_add(bool sole, const site *x, _Atomic uint64_t *c, uint64_t n)
{
    if (sole && atomic_load_explicit(&x->domain, memory_order_relaxed) == 0)
        atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                              memory_order_relaxed);
    else
        atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* Counts a block of `rec`'s site as freed (n = 1) or, for a realloc that failed, back (n = -1). */
static inline void
site_free(const zwi_trace_rec *rec, int64_t n, bool sole)
{
    if (G.sites == NULL || rec->tb == 0 || rec->tb >= G.site_refs)
        return;
    site *x = &G.sites[rec->tb];
    site_add(sole, x, &x->freed, (uint64_t)n);
    site_add(sole, x, &x->freed_bytes, (uint64_t)n * (uint64_t)rec->size);
    zwi_preload_site_dirty(rec->tb);
}

/* The ALLOC (or RESTORE) of `r` recorded in the table: its site and the peak. */
static inline void
apply_alloc(const zwi_rec *r, bool sole)
{
    uint32_t ref = r->ref;
    if (G.sites != NULL && ref < G.site_refs) {
        site *x = &G.sites[ref];
        site_add(sole, x, &x->count, 1);
        site_add(sole, x, &x->bytes, r->size);
        zwi_preload_site_dirty(ref);
        unsigned max = atomic_load_explicit(&G.site_max, memory_order_relaxed);
        /* release: a reader of site_max (acquire) sees the tracebacks below it (ahead.c) */
        while (ref > max && !atomic_compare_exchange_weak_explicit(
                                &G.site_max, &max, ref, memory_order_release, memory_order_relaxed))
            ; /* only when a new traceback is interned: rare */
    }
    int64_t peak = zwi_tracer_peak_hint(G.tracer);
    if (ZW_UNLIKELY(peak >= atomic_load_explicit(&G.peak_next, memory_order_relaxed)))
        zwi_preload_save_peak(peak);
}

/* A realloc's old block kept aside for a RESTORE (direct-mapped: a collision loses the restore,
 * and the block stays counted as freed). */
static inline zwi_stash *
stash_of(uintptr_t ptr)
{
    return &G.ring.stash[(ptr >> 4) * 0x9E3779B97F4A7C15ull >> (64 - 10)];
}

_Static_assert(ZWI_STASH == 1024, "stash_of() takes 10 bits");

/* Applies `r` (see zwi_preload_apply); `st` is where a KEEP free puts the block it removed and a
 * RESTORE finds it. */
static inline __attribute__((always_inline)) void
apply(zwi_rec *r, tstats *cs, bool sole, zwi_stash *st)
{
    uint32_t op = r->op & ZWI_OP_MASK;
    if (op == ZWI_OP_ALLOC) {
        if (ZW_UNLIKELY(r->ref == 0)) { /* its traceback (ZWI_REC_FRAMES) found no memory */
            if (cs != NULL) {
                bump(cs, &cs->allocs, (uint64_t)-1);
                bump(cs, &cs->bytes, (uint64_t)0 - r->size);
                bump(cs, &cs->untraced, 1);
            }
            return;
        }
        if (zwi_tracer_add_ref(G.tracer, ZW_TRACE_DEFAULT_DOMAIN, r->ptr, r->size, r->ref) != 0) {
            if (cs != NULL) { /* the table ran out of memory: counted as such, not as an alloc */
                bump(cs, &cs->allocs, (uint64_t)-1);
                bump(cs, &cs->bytes, (uint64_t)0 - r->size);
                bump(cs, &cs->untraced, 1);
            }
            return;
        }
        apply_alloc(r, sole);
    } else if (op == ZWI_OP_FREE) {
        zwi_trace_rec rec;
        bool found = zwi_tracer_remove(G.tracer, ZW_TRACE_DEFAULT_DOMAIN, r->ptr, &rec);
        if (r->op & ZWI_REC_KEEP)
            *st = (zwi_stash){r->ptr, rec, found ? r->op : 0};
        if (!found)
            return;
        site_free(&rec, 1, sole);
        bool temporary = (r->op & ZWI_REC_TEMP) != 0;
        if (cs != NULL) {
            bump(cs, &cs->frees, 1);
            bump(cs, &cs->freed_bytes, rec.size);
            if (temporary)
                bump(cs, &cs->temps, 1);
        }
        if (temporary && G.sites != NULL && rec.tb != 0 && rec.tb < G.site_refs)
            site_add(sole, &G.sites[rec.tb], &G.sites[rec.tb].temps, 1);
    } else if (op == ZWI_OP_RESTORE) {
        if (st->ptr != r->ptr || st->op == 0)
            return; /* untraced, or lost to a collision */
        zwi_stash kept = *st;
        st->ptr = 0;
        if (zwi_tracer_add_ref(G.tracer, kept.rec.domain, r->ptr, kept.rec.size, kept.rec.tb) != 0)
            return;
        site_free(&kept.rec, -1, sole); /* the free is taken back */
        bool temporary = (kept.op & ZWI_REC_TEMP) != 0;
        if (cs != NULL) {
            bump(cs, &cs->frees, (uint64_t)-1);
            bump(cs, &cs->freed_bytes, (uint64_t)0 - kept.rec.size);
            if (temporary)
                bump(cs, &cs->temps, (uint64_t)-1);
        }
        if (temporary && G.sites != NULL && kept.rec.tb != 0 && kept.rec.tb < G.site_refs)
            site_add(sole, &G.sites[kept.rec.tb], &G.sites[kept.rec.tb].temps, (uint64_t)-1);
    }
}

void
zwi_preload_apply(zwi_rec *r, tstats *cs, bool sole)
{
    zwi_stash *st = stash_of(r->ptr);
    if (sole)
        apply(r, cs, true, st);
    else
        apply(r, cs, false, st);
}

tstats *
zwi_preload_stats_self(void)
{
    return my_stats != NULL ? my_stats : stats_make();
}

/* Where this thread's next post surely has room: tickets below it (the ring's tail as last read,
 * plus its size; the tail only grows, so an old bound is still a bound). */
static _Thread_local uint64_t my_room __attribute__((tls_model("initial-exec")));

/* Set in the ring's solo thread (tickets.h). */
static _Thread_local bool my_solo __attribute__((tls_model("initial-exec")));

void
zwi_preload_ring_solo(void)
{
    zwi_tickets_solo(&G.ring.tickets, &my_solo);
}

/* Hands record (op, ptr, size, ref) to the bookkeeping: posted to the ring, its ticket taken now
 * (a free's before the real free, an allocation's after the real function returned, so that a
 * block freed by one thread and handed to another is recorded in that order), or applied here
 * in the inline mode. */
static inline __attribute__((always_inline)) void
post(uint32_t op, uintptr_t ptr, uint64_t size, uint32_t ref, tstats *ts, zwi_stash *st)
{
    if (!G.ring.on) {
        zwi_rec r = {0, ptr, size, ref, op};
        apply(&r, ts, false, st);
        return;
    }
    uint64_t t = zwi_tickets_take(&G.ring.tickets, &my_solo, 1);
    if (ZW_UNLIKELY(t >= my_room)) {
        if (!zwi_preload_ring_room(t))
            return; /* closed: the capture has ended */
        my_room = atomic_load_explicit(&G.ring.tail, memory_order_acquire) + G.ring.mask + 1;
    }
    zwi_rec *c = &G.ring.cells[t & G.ring.mask];
    /* the cell 8 lines on, for writing: its line comes while this thread does other things, not
     * at the next locked add, which waits for this thread's stores */
    __builtin_prefetch(&G.ring.cells[(t + 16) & G.ring.mask], 1, 3);
    c->ptr = ptr;
    c->size = size;
    c->ref = ref;
    c->op = op;
    atomic_store_explicit(&c->seq, t + 1, memory_order_release);
    if (ZW_UNLIKELY((t & G.ring.wake_mask) == 0))
        zwi_preload_wake_consumer();
}

/* Word j (< 4) of a cell that follows a ZWI_REC_FRAMES record: its seq, ptr, size, then ref and
 * op as one word. */
static inline __attribute__((always_inline)) void
extra_put(zwi_rec *c, unsigned j, uint64_t w)
{
    if (j == 0)
        atomic_store_explicit(&c->seq, w | ZWI_FR_MARK, memory_order_relaxed);
    else if (j == 1)
        c->ptr = w;
    else if (j == 2)
        c->size = w;
    else
        memcpy(&c->ref, &w, sizeof(w));
}

uint64_t
zwi_preload_extra_get(const zwi_rec *c, unsigned j)
{
    uint64_t w;
    if (j == 0)
        return atomic_load_explicit(&c->seq, memory_order_relaxed) & ~ZWI_FR_MARK;
    if (j == 1)
        return c->ptr;
    if (j == 2)
        return c->size;
    memcpy(&w, &c->ref, sizeof(w));
    return w;
}

_Static_assert(offsetof(zwi_rec, op) == offsetof(zwi_rec, ref) + 4, "ref and op make one word");

/* Posts the allocation of block p (n bytes) by the thread of slot `id` with its traceback for the
 * consumer to intern (see ZWI_FR_ID): the frames it shares with the id's last one are not
 * posted again. False, nothing posted, when the traceback needs more cells than a record may
 * take (the caller interns it). */
static inline __attribute__((always_inline)) bool
post_frames(uintptr_t p, uint64_t n, const uintptr_t *frames, unsigned nf, unsigned total,
            unsigned id)
{
    uintptr_t *row = &G.ring.sent[id * G.ring.stride];
    uintptr_t *path = row + 1; /* outermost frame first */
    unsigned d = zwi_shared_outer(path, frames, nf, nf < row[0] ? nf : (unsigned)row[0]);
    unsigned tot = total != nf;
    unsigned words = nf - d + tot;
    unsigned k = (words + 3) / 4;
    if (ZW_UNLIKELY(k > G.ring.extra_max))
        return false;
    uint64_t t = zwi_tickets_take(&G.ring.tickets, &my_solo, k + 1);
    if (ZW_UNLIKELY(t + k >= my_room)) {
        if (!zwi_preload_ring_room(t + k))
            return true; /* closed: the capture has ended */
        my_room = atomic_load_explicit(&G.ring.tail, memory_order_acquire) + G.ring.mask + 1;
    }
    __builtin_prefetch(&G.ring.cells[(t + k + 16) & G.ring.mask], 1, 3);
    for (unsigned i = 0; i < words; i++)
        extra_put(&G.ring.cells[(t + 1 + i / 4) & G.ring.mask], i & 3,
                  tot ? (i == 0 ? total : frames[i - 1]) : frames[i]);
    zwi_rec *c = &G.ring.cells[t & G.ring.mask];
    c->ptr = p;
    c->size = n;
    c->ref = ZWI_FR_REF(id, nf, d, tot);
    c->op = ZWI_OP_ALLOC | ZWI_REC_FRAMES | k << ZWI_REC_EXTRA_SHIFT;
    atomic_store_explicit(&c->seq, t + 1, memory_order_release);
    for (unsigned j = d; j < nf; j++)
        path[j] = frames[nf - 1 - j];
    row[0] = nf;
    if (ZW_UNLIKELY(((t - 1) ^ (t + k)) > G.ring.wake_mask))
        zwi_preload_wake_consumer(); /* a quarter of the ring passed */
    return true;
}

/* Inside pthread_getattr_np (interposed below): glibc's holds the calling thread's own lock while
 * it allocates (the affinity mask), and making the thread's state asks pthread_getattr_np for the
 * stack, which waits on that lock for ever. A thread whose first traced allocation is that one
 * (the JVM's threads ask for their stack before anything else) makes its state at its next
 * allocation; until then, its blocks have one unknown frame. */
static _Thread_local unsigned in_getattr __attribute__((tls_model("initial-exec")));

/* This thread's state, made on first use, not inside pthread_getattr_np; NULL if none. */
static inline zwi_thread *
thread_state(void)
{
    zwi_thread *th = zwi_trace_self;
    if (ZW_UNLIKELY(th == NULL) && in_getattr == 0)
        th = zwi_thread_make();
    return th;
}

/* Records block `p` of `n` bytes allocated by the caller of the hook this is inlined into (which
 * keeps a frame: this file is built with -fno-omit-frame-pointer): its traceback captured and
 * the thread's counters here, the rest by the bookkeeping (post_frames, or post with the
 * traceback interned here). Guard up. */
static inline __attribute__((always_inline)) void
on_alloc(void *p, size_t n)
{
    zwi_tracer *t = G.tracer;
    if (!G.ring.on)
        zwi_tracer_prefetch(t, (uintptr_t)p); /* the table's slot loads while the frames are taken */
    zwi_thread *th = thread_state();
    const uintptr_t *frames;
    unsigned total;
    unsigned nf = capture_frames(th, &frames, &total);
    tstats *ts = my_stats != NULL ? my_stats : stats_make();
    if (ts != NULL) {
        bump(ts, &ts->allocs, 1);
        bump(ts, &ts->bytes, n);
    }
    my_last = (uintptr_t)p ^ HIDE_PTR;
    /* Interned here if this site's memo has it (nothing shared read); else by the consumer,
     * while it keeps up (less than half the ring waiting); else here. A ref of 0 (the tracer's
     * memory ran out) is counted as untraced by apply(), and reported by zw. */
    uint32_t ref = zwi_tracer_intern_memo(t, frames, nf, total);
    if (ref == 0 && G.ring.on && G.ring.sent != NULL && ts != NULL && ts != G.shared_slot &&
        atomic_load_explicit(&G.ring.tickets.head, memory_order_relaxed) -
                atomic_load_explicit(&G.ring.tail, memory_order_relaxed) <=
            G.ring.mask / 2 &&
        post_frames((uintptr_t)p, n, frames, nf, total, (unsigned)(ts - G.slots)))
        return;
    if (ref == 0)
        ref = zwi_tracer_intern(t, frames, nf, total);
    post(ZWI_OP_ALLOC, (uintptr_t)p, n, ref, ts, NULL);
}

/* Records the free of `p` (its trace removed, if traced, and the free counted), before the real
 * function frees it; `keep`: a realloc's, whose block a RESTORE may bring back (from `keep` in
 * the inline mode, from the consumer's stash otherwise). Any free ends
 * the thread's run: an allocation is temporary when the thread's next free is of it (as in
 * heaptrack). Guard up. */
static inline void
on_free(void *p, zwi_stash *keep)
{
    /* the block's header, which the real free or realloc reads next, loads meanwhile */
    __builtin_prefetch((const char *)p - sizeof(size_t), 1, 3);
    uint32_t temporary = my_last == ((uintptr_t)p ^ HIDE_PTR) ? ZWI_REC_TEMP : 0;
    my_last = 0;
    tstats *ts = my_stats != NULL ? my_stats : stats_make();
    post(ZWI_OP_FREE | temporary | (keep != NULL ? ZWI_REC_KEEP : 0), (uintptr_t)p, 0, 0, ts, keep);
}

/* ---- the interposed functions ---- */

EXPORT void *
malloc(size_t n)
{
    if (ZW_UNLIKELY(!resolve()))
        return boot_alloc(n, 16);
    if (!tracing())
        return G.real.malloc(n);
    zwi_trace_guard++;
    void *p = G.real.malloc(n);
    if (p != NULL)
        on_alloc(p, n);
    guard_down();
    return p;
}

EXPORT void
free(void *p)
{
    if (p == NULL || in_boot(p) || !resolve())
        return;
    if (!tracing()) {
        G.real.free(p);
        return;
    }
    /* the guard stays up in the real free too: a fatal signal raised there (glibc's double-free
     * abort, holding its arena's lock) is known to come from inside the allocator */
    zwi_trace_guard++;
    on_free(p, NULL);
    G.real.free(p);
    guard_down();
}

EXPORT void *
calloc(size_t nelem, size_t elsize)
{
    if (ZW_UNLIKELY(!resolve())) {
        size_t n;
        if (__builtin_mul_overflow(nelem, elsize, &n))
            return NULL;
        return boot_alloc(n, 16); /* never reused: still zero */
    }
    if (!tracing())
        return G.real.calloc(nelem, elsize);
    zwi_trace_guard++;
    void *p = G.real.calloc(nelem, elsize);
    if (p != NULL)
        on_alloc(p, nelem * elsize);
    guard_down();
    return p;
}

/* realloc's body, inlined into realloc and reallocarray so that the traceback starts at their
 * caller. */
static inline __attribute__((always_inline)) void *
do_realloc(void *p, size_t n)
{
    if (ZW_UNLIKELY(!resolve() || in_boot(p))) {
        /* a bootstrap block moves out of the arena (or, during dlsym, within it) */
        void *q = resolve() ? malloc(n) : boot_alloc(n, 16);
        if (q != NULL && p != NULL) {
            size_t old = boot_size(p);
            memcpy(q, p, old < n ? old : n);
        }
        return q;
    }
    if (!tracing())
        return G.real.realloc(p, n);
    zwi_trace_guard++;
    zwi_stash kept = {0};
    if (p != NULL)
        on_free(p, &kept);
    void *q = G.real.realloc(p, n);
    if (q != NULL) {
        on_alloc(q, n);
    } else if (p != NULL && n != 0) { /* failed: the old block stays (realloc(p, 0) freed it) */
        tstats *ts = my_stats != NULL ? my_stats : stats_make();
        post(ZWI_OP_RESTORE, (uintptr_t)p, 0, 0, ts, &kept);
    }
    guard_down();
    return q;
}

EXPORT void *
realloc(void *p, size_t n)
{
    return do_realloc(p, n);
}

EXPORT void *
reallocarray(void *p, size_t nelem, size_t elsize)
{
    size_t n;
    if (__builtin_mul_overflow(nelem, elsize, &n)) {
        errno = ENOMEM;
        return NULL;
    }
    return do_realloc(p, n);
}

/* The aligned family: one body, the real function chosen by `which`. */
enum { AL_MEMALIGN, AL_ALIGNED, AL_VALLOC, AL_PVALLOC };

static inline __attribute__((always_inline)) void *
aligned(int which, size_t align, size_t n)
{
    if (ZW_UNLIKELY(!resolve()))
        return boot_alloc(n, align ? align : 4096);
    bool on = tracing();
    if (on)
        zwi_trace_guard++;
    void *p;
    switch (which) {
    case AL_MEMALIGN:
        p = G.real.memalign(align, n);
        break;
    case AL_ALIGNED:
        p = G.real.aligned_alloc != NULL ? G.real.aligned_alloc(align, n)
                                         : G.real.memalign(align, n);
        break;
    case AL_VALLOC:
        p = G.real.valloc != NULL ? G.real.valloc(n) : G.real.memalign(4096, n);
        break;
    default:
        p = G.real.pvalloc != NULL ? G.real.pvalloc(n)
                                   : G.real.memalign(4096, (n + 4095) & ~(size_t)4095);
        break;
    }
    if (on) {
        if (p != NULL)
            on_alloc(p, n);
        guard_down();
    }
    return p;
}

EXPORT void *
memalign(size_t align, size_t n)
{
    return aligned(AL_MEMALIGN, align, n);
}

EXPORT void *
aligned_alloc(size_t align, size_t n)
{
    return aligned(AL_ALIGNED, align, n);
}

EXPORT void *
valloc(size_t n)
{
    return aligned(AL_VALLOC, 4096, n);
}

EXPORT void *
pvalloc(size_t n)
{
    return aligned(AL_PVALLOC, 4096, n);
}

EXPORT int
posix_memalign(void **out, size_t align, size_t n)
{
    if (ZW_UNLIKELY(!resolve())) {
        *out = boot_alloc(n, align);
        return *out != NULL ? 0 : ENOMEM;
    }
    if (G.real.posix_memalign == NULL) {
        *out = memalign(align, n);
        return *out != NULL ? 0 : ENOMEM;
    }
    bool on = tracing();
    if (on)
        zwi_trace_guard++;
    int rc = G.real.posix_memalign(out, align, n);
    if (on) {
        if (rc == 0 && *out != NULL)
            on_alloc(*out, n);
        guard_down();
    }
    return rc;
}

EXPORT size_t
malloc_usable_size(void *p)
{
    if (p == NULL)
        return 0;
    if (in_boot(p))
        return boot_size(p);
    if (!resolve() || G.real.malloc_usable_size == NULL)
        return 0;
    return G.real.malloc_usable_size(p);
}

/* ---- the mmap family: the program's own mappings (mmaps.c keeps them) ---- */

#ifndef MREMAP_DONTUNMAP
#    define MREMAP_DONTUNMAP 4
#endif

/* Whether a mapping call is the program's to record: not one made inside a hook (malloc's own
 * mappings when it runs under ours, the engine's tables, the writer's buffers), nor one before
 * tracing started or after it ended. */
static inline bool
recording_map(void)
{
    return zwi_trace_guard == 0 && atomic_load_explicit(&G.active, memory_order_acquire);
}

/* `n` rounded up to whole pages: what the kernel maps. */
static inline size_t
page_round(size_t n)
{
    static _Atomic size_t page_size;
    size_t page = atomic_load_explicit(&page_size, memory_order_relaxed);
    if (page == 0) {
        long v = sysconf(_SC_PAGESIZE);
        page = v > 0 ? (size_t)v : 4096;
        atomic_store_explicit(&page_size, page, memory_order_relaxed);
    }
    return n > SIZE_MAX - page ? SIZE_MAX & ~(page - 1) : (n + page - 1) & ~(page - 1);
}

/* Records the mapping [p, p + len) made by the caller of the hook this is inlined into. */
static inline __attribute__((always_inline)) void
on_map(void *p, size_t len)
{
    zwi_trace_guard++;
    const uintptr_t *frames;
    unsigned total;
    unsigned nf = capture_frames(thread_state(), &frames, &total);
    zwi_preload_mmap_map((uintptr_t)p, len, frames, nf, total);
    guard_down();
}

/* The system calls themselves (glibc's wrappers add nothing to them on Linux): usable before
 * dlsym() found anything, and never re-entering these hooks. */
EXPORT void *
mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    void *p = (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
    if (p != MAP_FAILED && recording_map())
        on_map(p, page_round(len));
    return p;
}

EXPORT void *
mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    void *p = (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
    if (p != MAP_FAILED && recording_map())
        on_map(p, page_round(len));
    return p;
}

EXPORT int
munmap(void *addr, size_t len)
{
    int rc = (int)syscall(SYS_munmap, addr, len);
    if (rc == 0 && recording_map()) {
        zwi_trace_guard++;
        zwi_preload_mmap_unmap((uintptr_t)addr, page_round(len));
        guard_down();
    }
    return rc;
}

EXPORT void *
mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
    void *want = NULL;
    if (flags & MREMAP_FIXED) {
        va_list ap;
        va_start(ap, flags);
        want = va_arg(ap, void *);
        va_end(ap);
    }
    void *p = (void *)syscall(SYS_mremap, old, old_len, new_len, flags, want);
    if (p == MAP_FAILED || !recording_map())
        return p;
    /* the old pages go (unless kept, or old_len 0: a second mapping of shared pages), the new
     * range is a mapping of this call's: a resize is traced as realloc is, at its caller */
    if (old_len != 0 && !(flags & MREMAP_DONTUNMAP)) {
        zwi_trace_guard++;
        zwi_preload_mmap_unmap((uintptr_t)old, page_round(old_len));
        guard_down();
    }
    on_map(p, page_round(new_len));
    return p;
}

/* brk and sbrk called by the program itself (malloc's own calls are libc's internal ones): the
 * break's growth is a mapping of the caller's, its shrinking an unmapping. */
EXPORT void *
sbrk(intptr_t incr)
{
    if (!resolve() || G.real.sbrk == NULL) {
        errno = ENOMEM;
        return (void *)-1;
    }
    void *old = G.real.sbrk(incr);
    if (old == (void *)-1 || incr == 0 || !recording_map())
        return old;
    if (incr > 0) {
        on_map(old, (size_t)incr);
    } else {
        zwi_trace_guard++;
        zwi_preload_mmap_unmap((uintptr_t)old - (uintptr_t)-incr, (size_t)-incr);
        guard_down();
    }
    return old;
}

EXPORT int
brk(void *addr)
{
    if (!resolve() || G.real.brk == NULL || G.real.sbrk == NULL) {
        errno = ENOMEM;
        return -1;
    }
    uintptr_t old = (uintptr_t)G.real.sbrk(0);
    int rc = G.real.brk(addr);
    if (rc != 0 || !recording_map() || old == (uintptr_t)-1)
        return rc;
    uintptr_t now = (uintptr_t)addr;
    if (now > old) {
        on_map((void *)old, now - old);
    } else if (now < old) {
        zwi_trace_guard++;
        zwi_preload_mmap_unmap(now, old - now);
        guard_down();
    }
    return rc;
}

/* ---- pthread_getattr_np ---- */

EXPORT int
pthread_getattr_np(pthread_t th, pthread_attr_t *attr)
{
    if (!resolve() || G.real.getattr == NULL)
        return ENOSYS;
    in_getattr++; /* see thread_state() */
    int rc = G.real.getattr(th, attr);
    in_getattr--;
    return rc;
}

/* ---- pipe2 ---- */

/* libunwind checks that an address is readable by writing a byte of it to a pipe of its own, made
 * with pipe2 the first time zw's unwinder has it walk a frame its own way: on the lowest free
 * descriptors, the program's (3 and 4 in most), which it would then find taken, or replace with
 * dup2 (a shell's `exec 4>file`: libunwind's next byte would go to the file). Made inside zw (the
 * guard up), a pipe goes to descriptors 1000 and above, as zw's own. */
EXPORT int
pipe2(int fds[2], int flags)
{
    static int (*_Atomic real_pipe2)(int *, int);
    int (*fn)(int *, int) = atomic_load_explicit(&real_pipe2, memory_order_relaxed);
    if (fn == NULL) {
        fn = (int (*)(int *, int))dlsym(RTLD_NEXT, "pipe2");
        if (fn == NULL) {
            errno = ENOSYS;
            return -1;
        }
        atomic_store_explicit(&real_pipe2, fn, memory_order_relaxed);
    }
    int rc = fn(fds, flags);
    if (rc != 0 || zwi_trace_guard == 0)
        return rc;
    for (int i = 0; i < 2; i++)
        fds[i] = zwi_fd_high(fds[i], flags & O_CLOEXEC);
    return 0;
}

/* ---- dlclose ---- */

EXPORT int
dlclose(void *handle)
{
    return zwi_preload_dlclose(handle); /* modules.c */
}
