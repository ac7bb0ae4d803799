/* preload/leaks.c - the leak check at a way out of the process (docs/zw.md#leak-kinds): the
 * tracer's live heap blocks scanned for reachability (leakscan.c), then the exit set's records
 * with the kind of each, in the order the exit set is written.
 *
 *   gather:   every live block of the heap domain into the scan (the tracer's shard locks, one at
 *             a time; no thread is stopped yet)
 *   scan:     the roots of this process, the other threads stopped meanwhile
 *   classify: cliques of lost blocks
 *   collect:  the records again, each with its kind, for the EXIT_SET and LEAKS sections
 *
 * Runs under G.lock with this thread's guard up: on the thread that finishes the capture, or on
 * the thread that called zw_mark (with ZW_LEAK_MARKS=1). */
#include <dlfcn.h>
#include <malloc.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "leakscan.h"
#include "preload_internal.h"

/* ---- gather and collect ---- */

static int
add_block(void *ctx, uintptr_t ptr, const zwi_trace_rec *rec)
{
    return zwi_leakscan_add(ctx, ptr, rec->size);
}

typedef struct collector {
    zwi_leak_check *out;
    const zwi_leakscan *ls;
} collector;

/* Grows the check's parallel arrays (mapped: the shard we hold may be malloc's caller's; populated:
 * they are written through, and a first touch is a page fault, dear on a virtual machine). */
static int
reserve(zwi_leak_check *c)
{
    if (c->n < c->cap)
        return 0;
    size_t cap = c->cap ? 2 * c->cap : 4096;
    zwi_trace_rec *recs = mmap(NULL, cap * sizeof(*recs), PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    uint8_t *kinds = mmap(NULL, cap, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (recs == MAP_FAILED || kinds == MAP_FAILED) {
        if (recs != MAP_FAILED)
            munmap(recs, cap * sizeof(*recs));
        if (kinds != MAP_FAILED)
            munmap(kinds, cap);
        return -1;
    }
    if (c->n > 0) {
        memcpy(recs, c->recs, c->n * sizeof(*recs));
        memcpy(kinds, c->kinds, c->n);
        munmap(c->recs, c->cap * sizeof(*c->recs));
        munmap(c->kinds, c->cap);
    }
    c->recs = recs;
    c->kinds = kinds;
    c->cap = cap;
    return 0;
}

static int
collect_block(void *ctx, uintptr_t ptr, const zwi_trace_rec *rec)
{
    collector *col = ctx;
    zwi_leak_check *c = col->out;
    if (reserve(c) != 0)
        return -1;
    int kind = zwi_leakscan_kind(col->ls, ptr);
    if (kind < 0)
        kind = ZWI_LEAK_REACHABLE; /* allocated after the scan's gathering: not judged */
    c->recs[c->n] = *rec;
    c->kinds[c->n] = (uint8_t)kind;
    c->n++;
    c->blocks[kind]++;
    c->bytes[kind] += rec->size;
    return 0;
}

/* glibc's chunk headers: main_arena (in libc's data, a root) points at its top chunk and its free
 * chunks; a chunk's header lies in the last word of the block before it, when the program asked
 * for all of that block's usable size. Such a word is the allocator's, not the program's. The
 * usable size is read from the chunk's size word, as malloc_usable_size() does, but without
 * following it to the next chunk: for a block the table holds that the heap no longer does (a fork
 * child's table keeps the frees its parent's other threads had in flight) the word is anything,
 * and the next chunk anywhere (glibc's function faulted there). */
static bool
glibc_chunk_header(uintptr_t start, size_t size, uintptr_t p)
{
    (void)size;
    if ((p & 15) != 0)
        return false;
    uint64_t word = *(const volatile uint64_t *)(start - 8); /* the scan guards the read */
    uint64_t chunk = word & ~(uint64_t)7;
    uint64_t overhead = (word & 2) != 0 ? 16 : 8; /* IS_MMAPPED: its header is 16 bytes */
    if (chunk < overhead + 8)
        return false;
    return p == start + (chunk - overhead) - 8;
}

/* Whether the real malloc is glibc's (the one whose chunk layout glibc_chunk_header knows). */
static bool
malloc_is_glibc(void)
{
    Dl_info a, b;
    return dladdr((void *)G.real.malloc, &a) != 0 && dladdr((void *)&malloc_stats, &b) != 0 &&
           a.dli_fbase == b.dli_fbase;
}

/* ---- the check ---- */

static uint64_t
clock_of(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void
zwi_preload_leak_check(zwi_leak_check *c, const zwi_leak_thread *who)
{
    uint64_t t0 = clock_of(CLOCK_MONOTONIC), cpu0 = clock_of(CLOCK_THREAD_CPUTIME_ID);
    zw_capture_sample now = zwi_preload_sample_now();
    zwi_leakscan *ls = zwi_leakscan_new(now.heap_blocks + now.heap_blocks / 64 + 1024);
    if (ls == NULL)
        goto out_failed;
    if (zwi_tracer_foreach_block(G.tracer, ZW_TRACE_DEFAULT_DOMAIN, add_block, ls) != 0 ||
        zwi_leakscan_prepare(ls) != 0)
        goto out_free;
    if (malloc_is_glibc())
        zwi_leakscan_set_ignore(ls, glibc_chunk_header);
    if (zwi_leakscan_process_roots(ls, (const void *)zwi_preload_leak_check, who, &c->roots) != 0)
        goto out_free;
    zwi_leakscan_classify(ls);
    c->scan_ns = clock_of(CLOCK_MONOTONIC) - t0;
    c->scan_cpu_ns = clock_of(CLOCK_THREAD_CPUTIME_ID) - cpu0;
    c->scan_memory = zwi_leakscan_memory(ls);
    collector col = {c, ls};
    if (zwi_tracer_foreach_block(G.tracer, ZW_TRACE_DEFAULT_DOMAIN, collect_block, &col) != 0)
        goto out_free;
    zwi_leakscan_free(ls);
    c->status = ZW_LEAKS_SCANNED;
    return;
out_free:
    zwi_leakscan_free(ls);
out_failed:
    zwi_preload_leak_release(c);
    memset(c->blocks, 0, sizeof(c->blocks));
    memset(c->bytes, 0, sizeof(c->bytes));
    c->status = ZW_LEAKS_FAILED;
}

void
zwi_preload_leak_release(zwi_leak_check *c)
{
    if (c->recs != NULL)
        munmap(c->recs, c->cap * sizeof(*c->recs));
    if (c->kinds != NULL)
        munmap(c->kinds, c->cap);
    c->recs = NULL;
    c->kinds = NULL;
    c->n = 0;
    c->cap = 0;
}
