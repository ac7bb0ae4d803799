/* tests/trace/test_faults.c - the tracer out of memory: its n-th own request (a table growing,
 * the wide table, a new traceback, a thread state, the tracer itself) fails, for every n in turn
 * until a workload (allocate, realloc, free, snapshot, clear) never reaches it. Each run checks
 * that nothing crashed and nothing was lost silently: every block the program holds is either in
 * the snapshot, or its call failed (NULL, errno ENOMEM), or it was counted by
 * zw_trace_get_untraced(); and the snapshot's totals are the traced memory. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zerowaste/zerowaste.h>

#include "trace_internal.h"

#define NBLOCK 1500
#define NSITE  24
#define TRACK_DOMAIN 7 /* a caller's domain: its blocks go to the wide table */

enum kind { RAW, MEM, OBJ, HEAP, TRACKED, NKIND };

typedef struct block {
    void *p;
    size_t size;
    enum kind kind;
    bool traced; /* the tracer was told and reported no failure */
} block;

typedef struct run {
    block b[NBLOCK + NBLOCK / 4];
    size_t n;
    zw_heap *heap;
    size_t nulls;   /* calls failed because the tracer ran out of memory */
    size_t counted; /* blocks counted by zw_trace_get_untraced() */
    char tracked[NBLOCK];
} run;

static void *
alloc_kind(run *r, enum kind k, size_t size, size_t i)
{
    switch (k) {
    case RAW:
        return (i & 1) ? zw_mem_raw_malloc(size) : zw_mem_raw_calloc(1, size);
    case MEM:
        return (i & 1) ? zw_mem_malloc(size) : zw_mem_calloc(size, 1);
    case OBJ:
        return zw_mem_obj_malloc(size);
    case HEAP:
        return zw_heap_malloc(r->heap, size);
    default:
        return NULL;
    }
}

static void
free_block(run *r, block *b)
{
    switch (b->kind) {
    case RAW: zw_mem_raw_free(b->p); break;
    case MEM: zw_mem_free(b->p); break;
    case OBJ: zw_mem_obj_free(b->p); break;
    case HEAP: zw_heap_free(r->heap, b->p); break;
    case TRACKED: cr_assert_eq(zw_trace_untrack(TRACK_DOMAIN, (uintptr_t)b->p), 0); break;
    default: break;
    }
    b->p = NULL;
}

/* Allocates one block at a call depth `depth` deep (a new traceback per depth). */
static __attribute__((noinline)) void
alloc_at(run *r, unsigned depth, size_t i)
{
    if (depth > 0) {
        alloc_at(r, depth - 1, i);
        __asm__ volatile("" ::: "memory"); /* no tail call: each depth keeps its frame */
        return;
    }
    block *b = &r->b[r->n];
    b->kind = (enum kind)(i % NKIND);
    b->size = 8 + (i * 37) % 700;
    size_t before = zw_trace_get_untraced();
    if (b->kind == TRACKED) {
        b->p = &r->tracked[i % NBLOCK];
        int rc = zw_trace_track(TRACK_DOMAIN, (uintptr_t)b->p, b->size);
        if (rc != 0) {
            cr_assert_eq(rc, -1);
            r->nulls++;
            return;
        }
    } else {
        errno = 0;
        b->p = alloc_kind(r, b->kind, b->size, i);
        if (b->p == NULL) {
            cr_assert_eq(errno, ENOMEM);
            cr_assert(zwi_tracer_fault_fired(), "a call failed with no failure injected");
            r->nulls++;
            return;
        }
        memset(b->p, 0xab, b->size);
    }
    size_t added = zw_trace_get_untraced() - before;
    cr_assert_leq(added, 1);
    r->counted += added;
    b->traced = added == 0;
    r->n++;
}

/* Resizes block `b` (a domain's realloc), keeping its traced flag exact. */
static void
realloc_block(run *r, block *b, size_t size)
{
    size_t before = zw_trace_get_untraced();
    void *q = NULL;
    errno = 0;
    switch (b->kind) {
    case RAW: q = zw_mem_raw_realloc(b->p, size); break;
    case MEM: q = zw_mem_realloc(b->p, size); break;
    case OBJ: q = zw_mem_obj_realloc(b->p, size); break;
    case HEAP: q = zw_heap_realloc(r->heap, b->p, size); break;
    default: return;
    }
    size_t added = zw_trace_get_untraced() - before;
    cr_assert_leq(added, 1);
    r->counted += added;
    /* a block that exists cannot be given back: the tracer's failure never fails the call */
    cr_assert_not_null(q, "realloc to %zu bytes failed", size);
    b->p = q;
    b->size = size;
    b->traced = added == 0; /* a realloc records the block again */
}

/* The snapshot must be exactly the traced blocks the run holds. */
static void
check(run *r)
{
    size_t count = 0, bytes = 0;
    for (size_t i = 0; i < r->n; i++) {
        if (r->b[i].p != NULL && r->b[i].traced) {
            count++;
            bytes += r->b[i].size;
        }
    }
    zw_error err;
    zw_snapshot *snap = zw_trace_take_snapshot(&err);
    cr_assert_not_null(snap, "%s", err.msg); /* snapshots do not use the tracer's page requests */
    size_t sbytes = 0;
    for (size_t i = 0; i < zw_snapshot_len(snap); i++)
        sbytes += zw_snapshot_trace(snap, i).size;
    cr_assert_eq(zw_snapshot_len(snap), count, "snapshot: %zu traces, %zu traced blocks held",
                 zw_snapshot_len(snap), count);
    cr_assert_eq(sbytes, bytes, "snapshot: %zu bytes, %zu traced bytes held", sbytes, bytes);
    size_t current;
    zw_trace_get_traced_memory(&current, NULL);
    cr_assert_eq(current, bytes, "traced memory %zu, %zu traced bytes held", current, bytes);
    zw_snapshot_free(snap);
}

/* One run of the workload with the tracer's request `nth` failing. True if the failure fired. */
static bool
workload(run *r, long nth)
{
    memset(r, 0, sizeof(*r));
    r->heap = zw_heap_new();
    cr_assert_not_null(r->heap);
    zwi_tracer_fail_nth(nth);
    zw_error err;
    if (zw_trace_start(4, &err) != 0) {
        cr_assert(zwi_tracer_fault_fired(), "start failed: %s", err.msg);
        cr_assert_not(zw_trace_is_tracing());
        zw_heap_destroy(r->heap);
        return true;
    }
    for (size_t i = 0; i < NBLOCK; i++)
        alloc_at(r, (unsigned)(i % NSITE), i);
    check(r);
    for (size_t i = 0; i < r->n; i += 3) /* free a third */
        free_block(r, &r->b[i]);
    for (size_t i = 1; i < r->n; i += 5) /* resize some */
        if (r->b[i].p != NULL)
            realloc_block(r, &r->b[i], r->b[i].size * 2 + 1);
    check(r);
    zw_trace_clear(); /* every block the run holds is untraced from here */
    for (size_t i = 0; i < r->n; i++)
        r->b[i].traced = false;
    check(r);
    size_t more = r->n + NBLOCK / 4;
    for (size_t i = 0; r->n < more && i < NBLOCK / 4 + 64; i++)
        alloc_at(r, (unsigned)((i * 7) % NSITE), i);
    check(r);
    for (size_t i = 0; i < r->n; i++)
        if (r->b[i].p != NULL)
            free_block(r, &r->b[i]);
    check(r); /* nothing left */
    bool fired = zwi_tracer_fault_fired();
    zw_trace_stop();
    zw_heap_destroy(r->heap);
    zwi_tracer_fail_nth(-1);
    if (!fired) {
        cr_assert_eq(r->nulls, 0);
        cr_assert_eq(r->counted, 0);
    }
    return fired;
}

Test(trace_faults, every_tracer_request_can_fail, .timeout = 600)
{
    static run r;
    size_t runs = 0, nulls = 0, counted = 0;
    long nth = 0;
    while (workload(&r, nth)) {
        runs++;
        nulls += r.nulls;
        counted += r.counted;
        nth++;
        cr_assert_lt(nth, 100000, "the workload never stops reaching the failure");
    }
    cr_assert_gt(runs, 10, "only %zu requests in the workload", runs);
    /* both outcomes were met: calls failed, and blocks counted where no call could fail */
    cr_assert_gt(nulls, 0);
    cr_assert_gt(counted, 0);
    cr_log_info("%zu runs, %zu failed calls, %zu untraced blocks counted", runs, nulls, counted);
}
