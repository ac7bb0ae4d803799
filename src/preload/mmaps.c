/* preload/mmaps.c - the mmap domain (ZW_CAPTURE_MMAP_DOMAIN): the mappings the program makes
 * itself with mmap, mremap, brk and sbrk (hooks.c interposes them), each a trace of its own with
 * the traceback of the call that made it, counted apart from the heap.
 *
 *   whose:  a call made by the program through the dynamic linker. ld.so maps libraries with its
 *           own internal calls and glibc's malloc maps its large blocks and arenas with libc's,
 *           so neither reaches the hooks; a call made while a hook runs (the guard is up: the
 *           engine's tables, the writer's buffers, an allocator under malloc's hook) is not the
 *           program's either. A heap block glibc serves by mmap counts in the heap only.
 *   what:   every mapping, anonymous or file-backed, at its length in whole pages: the memory the
 *           program asked for, as a malloc'ed block counts whether it was touched or not. How
 *           much of it is resident is RSS's to say (zw stat shows both).
 *   table:  G.mmaps.v, sorted by start and disjoint. Each mapping is the trace (domain, start)
 *           of the tracer; unmapping part of one shrinks it or splits it in two, the pieces
 *           keeping its traceback, so the domain's bytes are exact at page granularity.
 *   sites:  a mapping counts at its traceback's site as a block does (the steps rebuild live
 *           sets with it); a split is one more live block there, counted as -1 freed.
 * See docs/zw.md#the-mmap-domain. */
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "preload_internal.h"

#define MMAP_PEAK_MIN_STEP ((int64_t)65536) /* an mmap peak step needs +1% and at least this */

/* ---- the table ---- */

/* The table with room for `need` mappings: grown (by the system call, never by a hook) or not. */
static bool
reserve_locked(size_t need)
{
    if (need <= G.mmaps.cap)
        return true;
    size_t cap = G.mmaps.cap ? 2 * G.mmaps.cap : 1024;
    while (cap < need)
        cap *= 2;
    void *p = (void *)syscall(SYS_mmap, NULL, cap * sizeof(mapping), PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return false;
    if (G.mmaps.n > 0)
        memcpy(p, G.mmaps.v, G.mmaps.n * sizeof(mapping));
    if (G.mmaps.v != NULL)
        syscall(SYS_munmap, G.mmaps.v, G.mmaps.cap * sizeof(mapping));
    G.mmaps.v = p;
    G.mmaps.cap = cap;
    return true;
}

/* The index of the first mapping that ends after `addr` (G.mmaps.n if none). */
static size_t
first_after_locked(uintptr_t addr)
{
    size_t lo = 0, hi = G.mmaps.n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (G.mmaps.v[mid].start + G.mmaps.v[mid].len <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* ---- counters ---- */

/* Adds `delta` bytes to the domain (a new peak too), mirrored in the LIVE section. */
static void
count_locked(int64_t delta)
{
    uint64_t now = atomic_load(&G.mmaps.bytes) + (uint64_t)delta;
    atomic_store(&G.mmaps.bytes, now);
    if (now > atomic_load(&G.mmaps.peak))
        atomic_store(&G.mmaps.peak, now);
    if (G.live != NULL) {
        atomic_store(&G.live->mmap_bytes, now);
        atomic_store(&G.live->mmap_peak, atomic_load(&G.mmaps.peak));
    }
}

/* Site `ref` made `allocs` mappings of `bytes` bytes, or lost `freed` blocks (-1: a split made
 * one more) and `freed_bytes` bytes. */
static void
site_change(uint32_t ref, uint64_t allocs, uint64_t bytes, int64_t freed, uint64_t freed_bytes)
{
    if (G.sites == NULL || ref == 0 || ref >= G.site_refs)
        return;
    site *x = &G.sites[ref];
    atomic_store_explicit(&x->domain, ZW_CAPTURE_MMAP_DOMAIN, memory_order_relaxed);
    atomic_fetch_add(&x->count, allocs);
    atomic_fetch_add(&x->bytes, bytes);
    atomic_fetch_add(&x->freed, (uint64_t)freed); /* modulo 2^64, as the heap's sites */
    atomic_fetch_add(&x->freed_bytes, freed_bytes);
    zwi_preload_site_dirty(ref);
    unsigned max = atomic_load_explicit(&G.site_max, memory_order_relaxed);
    while (ref > max && !atomic_compare_exchange_weak_explicit(
                            &G.site_max, &max, ref, memory_order_release, memory_order_relaxed))
        ; /* release: see apply_alloc() in hooks.c */
}

/* A step flagged as the domain's peak when it passed the last saved one by 1%. */
static void
maybe_save_peak(void)
{
    uint64_t now = atomic_load(&G.mmaps.bytes);
    if ((int64_t)now >= atomic_load_explicit(&G.mmaps.peak_next, memory_order_relaxed) && now > 0)
        zwi_preload_save_mmap_peak(now);
}

/* ---- mapping and unmapping ---- */

/* Takes [lo, hi) out of the mappings it overlaps: each shrinks, splits in two, or goes. */
static void
unmap_locked(uintptr_t lo, uintptr_t hi)
{
    size_t i = first_after_locked(lo);
    while (i < G.mmaps.n && G.mmaps.v[i].start < hi) {
        mapping m = G.mmaps.v[i];
        uintptr_t end = m.start + m.len;
        bool head = m.start < lo;
        bool tail = end > hi;
        size_t cut = (tail ? hi : end) - (head ? lo : m.start);
        zwi_trace_rec rec = {ZW_CAPTURE_MMAP_DOMAIN, 0, m.tb};
        zwi_tracer_remove(G.tracer, ZW_CAPTURE_MMAP_DOMAIN, m.start, NULL);
        if (head) {
            rec.size = lo - m.start;
            zwi_tracer_restore(G.tracer, m.start, &rec);
        }
        if (tail) {
            rec.size = end - hi;
            zwi_tracer_restore(G.tracer, hi, &rec);
        }
        count_locked(-(int64_t)cut);
        site_change(m.tb, 0, 0, 1 - (int64_t)head - (int64_t)tail, cut);
        if (head && tail) { /* the middle went: two mappings */
            if (!reserve_locked(G.mmaps.n + 1)) {
                /* no room for the tail: untraced, as a mapping the tracer had no memory for */
                zwi_tracer_remove(G.tracer, ZW_CAPTURE_MMAP_DOMAIN, hi, NULL);
                count_locked(-(int64_t)(end - hi));
                site_change(m.tb, 0, 0, 1, end - hi);
                G.mmaps.v[i].len = lo - m.start;
                return;
            }
            memmove(&G.mmaps.v[i + 2], &G.mmaps.v[i + 1], (G.mmaps.n - i - 1) * sizeof(mapping));
            G.mmaps.v[i].len = lo - m.start;
            G.mmaps.v[i + 1] = (mapping){hi, end - hi, m.tb};
            G.mmaps.n++;
            return;
        }
        if (head) {
            G.mmaps.v[i].len = lo - m.start;
            i++;
        } else if (tail) {
            G.mmaps.v[i] = (mapping){hi, end - hi, m.tb};
            return;
        } else {
            memmove(&G.mmaps.v[i], &G.mmaps.v[i + 1], (G.mmaps.n - i - 1) * sizeof(mapping));
            G.mmaps.n--;
        }
    }
}

void
zwi_preload_mmap_map(uintptr_t start, size_t len, const uintptr_t *frames, unsigned nf,
                     unsigned total)
{
    if (len == 0 || start + len < start)
        return;
    pthread_mutex_lock(&G.mmaps.lock);
    unmap_locked(start, start + len); /* MAP_FIXED over mappings of ours */
    zwi_trace_rec rec;
    if (!reserve_locked(G.mmaps.n + 1) ||
        zwi_tracer_add(G.tracer, ZW_CAPTURE_MMAP_DOMAIN, start, len, frames, nf, total) != 0 ||
        !zwi_tracer_lookup(G.tracer, ZW_CAPTURE_MMAP_DOMAIN, start, &rec)) {
        zwi_tracer_remove(G.tracer, ZW_CAPTURE_MMAP_DOMAIN, start, NULL);
        pthread_mutex_unlock(&G.mmaps.lock); /* the tracer's memory ran out: not traced */
        return;
    }
    size_t i = first_after_locked(start);
    memmove(&G.mmaps.v[i + 1], &G.mmaps.v[i], (G.mmaps.n - i) * sizeof(mapping));
    G.mmaps.v[i] = (mapping){start, len, rec.tb};
    G.mmaps.n++;
    count_locked((int64_t)len);
    site_change(rec.tb, 1, len, 0, 0);
    pthread_mutex_unlock(&G.mmaps.lock);
    maybe_save_peak();
}

void
zwi_preload_mmap_unmap(uintptr_t start, size_t len)
{
    if (len == 0 || start + len < start)
        return;
    pthread_mutex_lock(&G.mmaps.lock);
    unmap_locked(start, start + len);
    pthread_mutex_unlock(&G.mmaps.lock);
}

/* ---- fork ---- */

void
zwi_preload_mmap_lock(void)
{
    pthread_mutex_lock(&G.mmaps.lock);
}

void
zwi_preload_mmap_unlock(void)
{
    pthread_mutex_unlock(&G.mmaps.lock);
}

void
zwi_preload_mmap_restart(void)
{
    uint64_t now = atomic_load(&G.mmaps.bytes);
    atomic_store(&G.mmaps.peak, now);
    atomic_store(&G.mmaps.peak_next, 0);
    if (G.live != NULL) {
        atomic_store(&G.live->mmap_bytes, now);
        atomic_store(&G.live->mmap_peak, now);
    }
}

/* ---- the peak step (writer.c's lock) ---- */

void
zwi_preload_save_mmap_peak(uint64_t bytes)
{
    if (pthread_mutex_trylock(&G.lock) != 0)
        return; /* another thread writes: the next mapping tries again */
    if ((int64_t)bytes >= atomic_load(&G.mmaps.peak_next) && atomic_load(&G.active)) {
        uint64_t time_ns = zwi_preload_now_ns();
        zwi_preload_scan_sites_locked(time_ns, ZWI_STEP_MMAP_PEAK);
        int64_t step =
            (int64_t)bytes / 100 > MMAP_PEAK_MIN_STEP ? (int64_t)bytes / 100 : MMAP_PEAK_MIN_STEP;
        atomic_store(&G.mmaps.peak_next, (int64_t)bytes + step);
        zw_capture_sample s = zwi_preload_sample_now();
        s.time_ns = time_ns;
        zwi_preload_push_sample_locked(s);
    }
    pthread_mutex_unlock(&G.lock);
}
