/* tests/gc/test_fault.c - out of memory in a collecting workload, on purpose. The workload
 * registers gc callbacks, makes two classes (one with __del__), builds cycles of instances with
 * weak references that have callbacks and weakref.finalize objects on them, drops them and
 * collects. It runs on a fresh runtime whose raw door is the test's own, first with no fault (the
 * reference: what a collection finds and which callbacks run), then once for every N with the
 * runtime's allocation N failing (zw_rt_fail_nth: the collector's and weakref's own allocations
 * count there too), then once for every N with the door's request N failing (the heap's pages,
 * the gc callbacks' table, the weakref clearing batch).
 *
 * Each run must end in one of two ways: the workload gives up with -1 and MemoryError set, or it
 * completes and every callback, finalizer and __del__ it expects has run, except where an
 * "Exception ignored in" report naming MemoryError says one could not (Python's unraisable
 * errors). Either way, once it has dropped what it made, a full collection brings the tracked
 * objects back to what a fresh runtime has, a second clean pass of cycles collects exactly what
 * the reference collected, and after zw_rt_free the door holds no block and no page: no leak, no
 * crash, nothing for ASan to report. zw_rt_new itself is failed request by request the same way
 * (its allocations happen before the runtime's own switch can be armed). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zerowaste/zerowaste.h>

#define NCYCLES   24 /* cycles a <-> b */
#define NHUB      20 /* weakrefs on one object: more than weakref.c clears on the stack (16) */
#define NWEAK     (NCYCLES + NHUB) /* weakref callbacks a run makes */
#define NCALLBACK 5                /* gc callbacks: the table grows past its first capacity (4) */
#define SAFETY    200000L

/* What one run saw its callbacks do. */
typedef struct tally {
    int gc_start;  /* "start" calls of the gc callbacks */
    int gc_stop;   /* "stop" calls */
    int weak_cb;   /* weakref callbacks run */
    int finalized; /* finalize functions run */
    int dels;      /* __del__ calls */
} tally;

static tally T;

static void
on_gc(zw_rt *rt, const char *phase, const zw_gc_info *info, void *arg)
{
    (void)rt;
    (void)info;
    (void)arg;
    if (strcmp(phase, "start") == 0)
        T.gc_start++;
    else
        T.gc_stop++;
}

/* Each callback allocates (an int too big to be cached), so that a failure can land inside it
 * while the collector runs it: that failure is reported as unraisable, and the callback does not
 * count as run. */
static zw_obj *
ran(zw_rt *rt, int *count)
{
    zw_obj *big = zw_int_from_i64(rt, (int64_t)1 << 40);
    if (big == NULL)
        return NULL;
    zw_decref(big);
    (*count)++;
    return zw_newref(zw_none(rt));
}

static zw_obj *
weak_cb(zw_obj *self, zw_obj *const *args, size_t nargs)
{
    return ran(zw_rt_of(args[0]), &T.weak_cb);
}

static zw_obj *
fin_fn(zw_obj *self, zw_obj *const *args, size_t nargs)
{
    return ran(zw_rt_of(self), &T.finalized);
}

static zw_obj *
d_del(zw_obj *self, zw_obj *const *args, size_t nargs)
{
    return ran(zw_rt_of(self), &T.dels);
}

/* A runtime on `raw` whose collector writes its unraisable reports to `out`; automatic
 * collection stays on with a low threshold, so that collections also start inside allocations. */
static zw_rt *
new_rt(zw_raw *raw, FILE *out)
{
    zw_rt_config cfg = {.flags = ZW_RT_IGNORE_ENV, .hash_seed = 0, .raw = raw};
    zw_rt *rt = zw_rt_new(&cfg);
    cr_assert_not_null(rt, "zw_rt_new with no fault: %s", strerror(errno));
    zw_gc_set_debug_output(rt, out);
    int th[ZW_GC_NGEN] = {40, 5, 5};
    zw_gc_set_threshold(rt, th);
    zw_gc_collect(rt, 2);
    return rt;
}

/* ---- the workload ---- */

/* One cycle a <-> b, a of class D (with __del__), b of class A; a weakref with callback on a
 * (appended to `refs`), a finalize on b with fn_obj. 0 or -1 (error set). */
static int
make_cycle(zw_type *cls_a, zw_type *cls_d, zw_obj *cb, zw_obj *fn, zw_obj *refs)
{
    int rc = -1;
    zw_obj *w = NULL;
    zw_obj *f = NULL;
    zw_obj *a = zw_call(cls_d, 0, NULL);
    zw_obj *b = zw_call(cls_a, 0, NULL);
    if (a == NULL || b == NULL)
        goto out;
    if (zw_setattr(a, "peer", b) != 0 || zw_setattr(b, "peer", a) != 0)
        goto out;
    w = zw_weakref_new(a, cb);
    if (w == NULL || zw_list_append(refs, w) != 0)
        goto out;
    f = zw_finalize_new(b, fn, NULL);
    if (f == NULL)
        goto out;
    rc = 0;
out:
    zw_xdecref(f);
    zw_xdecref(w);
    zw_xdecref(b);
    zw_xdecref(a);
    return rc;
}

/* An instance in a cycle with itself and NHUB weakrefs with callbacks on it (appended to `refs`):
 * when it dies their callbacks run from an array the collector allocates. 0 or -1. */
static int
make_hub(zw_type *cls_a, zw_obj *cb, zw_obj *refs)
{
    int rc = -1;
    zw_obj *hub = zw_call(cls_a, 0, NULL);
    if (hub == NULL || zw_setattr(hub, "self", hub) != 0)
        goto out;
    for (int i = 0; i < NHUB; i++) {
        zw_obj *w = zw_weakref_new(hub, cb);
        if (w == NULL)
            goto out;
        int appended = zw_list_append(refs, w);
        zw_decref(w);
        if (appended != 0)
            goto out;
    }
    rc = 0;
out:
    zw_xdecref(hub);
    return rc;
}

/* The workload on `rt`: callbacks, classes, NCYCLES cycles, a hub, a full collection, whose result
 * goes to *collected. 0, or -1 with the error set; releases everything it made on both paths (the
 * gc callbacks stay registered: the runtime drops them at zw_rt_free). */
static int
workload(zw_rt *rt, intptr_t *collected)
{
    int rc = -1;
    zw_obj *cb = NULL;
    zw_obj *fn = NULL;
    zw_obj *refs = NULL;
    for (int i = 0; i < NCALLBACK; i++) {
        if (zw_gc_add_callback(rt, on_gc, &T) != 0)
            return -1;
    }
    static const zw_method del_methods[] = {{"__del__", d_del, 0, NULL}, {NULL, NULL, 0, NULL}};
    zw_class_spec spec_a = {.name = "A"};
    zw_class_spec spec_d = {.name = "D", .methods = del_methods};
    zw_type *cls_a = zw_class_new(rt, &spec_a);
    zw_type *cls_d = cls_a ? zw_class_new(rt, &spec_d) : NULL;
    if (cls_d == NULL)
        return -1;
    static const zw_method cb_def = {"on_dead", weak_cb, 1, NULL};
    static const zw_method fn_def = {"on_final", fin_fn, 0, NULL};
    cb = zw_func_new(rt, &cb_def, NULL);
    fn = cb ? zw_func_new(rt, &fn_def, NULL) : NULL;
    refs = fn ? zw_list_new(rt, 0) : NULL;
    if (refs == NULL)
        goto out;
    for (int i = 0; i < NCYCLES; i++) {
        if (make_cycle(cls_a, cls_d, cb, fn, refs) != 0)
            goto out;
    }
    if (make_hub(cls_a, cb, refs) != 0)
        goto out;
    intptr_t n = zw_gc_collect(rt, 2);
    if (n < 0)
        goto out;
    *collected = n;
    /* every weakref in `refs` now points at nothing */
    for (size_t i = 0; i < zw_list_len(refs); i++) {
        zw_obj *r = zw_weakref_get(zw_list_get(refs, i));
        if (r == NULL)
            goto out;
        bool dead = r == zw_none(rt);
        zw_decref(r);
        cr_assert(dead, "weakref %zu still alive after the collection", i);
    }
    rc = zw_err_occurred(rt) == ZW_NoError ? 0 : -1;
out:
    zw_xdecref(refs);
    zw_xdecref(fn);
    zw_xdecref(cb);
    return rc;
}

/* ---- checks shared by every run ---- */

/* What the reference run (no fault) found. */
typedef struct reference {
    intptr_t collected; /* zw_gc_collect's count for the workload's cycles */
    size_t tracked;     /* tracked objects of a fresh runtime after one collection */
    tally seen;         /* the callbacks that ran */
} reference;

static size_t
tracked(zw_rt *rt)
{
    return zw_gc_count_objects(rt, -1);
}

/* The part of a run after the workload: a full collection, the tracked objects as in a fresh
 * runtime (plus the two classes, when the workload made them and they stay with the runtime),
 * then a clean pass of cycles collecting exactly what the reference did, then the runtime goes
 * and the door must hold nothing. */
static void
check_after(zw_rt *rt, zw_raw *raw, const reference *ref, const char *what, long n)
{
    zw_gc_collect(rt, 2);
    cr_assert_eq(zw_err_occurred(rt), ZW_NoError, "%s %ld: error left after the collection: %s",
                 what, n, zw_errmsg(rt));
    size_t after = tracked(rt);
    cr_assert(after >= ref->tracked && after <= ref->tracked + 4,
              "%s %ld: %zu tracked objects after the run and a collection, a fresh runtime has "
              "%zu (+ the run's classes): a leak of objects",
              what, n, after, ref->tracked);
    /* the collector still works: a clean pass finds exactly what the reference found */
    T = (tally){0};
    intptr_t collected = -1;
    zw_gc_disable(rt); /* the reference collected once, in the workload's own call */
    int rc = workload(rt, &collected);
    cr_assert_eq(rc, 0, "%s %ld: the clean pass after the fault fails: %s", what, n, zw_errmsg(rt));
    cr_assert_eq(collected, ref->collected,
                 "%s %ld: the clean pass's collection found %zd objects, the reference %zd", what,
                 n, (ssize_t)collected, (ssize_t)ref->collected);
    cr_assert(T.weak_cb == NWEAK && T.finalized == NCYCLES && T.dels == NCYCLES,
              "%s %ld: the clean pass ran %d weakref callbacks, %d finalizers, %d __del__, "
              "expected %d, %d, %d",
              what, n, T.weak_cb, T.finalized, T.dels, NWEAK, NCYCLES, NCYCLES);
    zw_rt_free(rt);
    zw_raw_stats st;
    zw_raw_get_stats(raw, &st);
    cr_assert(st.blocks == 0 && st.mapped_bytes == 0,
              "%s %ld: after zw_rt_free the door still holds %zu blocks and %zu bytes of pages",
              what, n, st.blocks, st.mapped_bytes);
}

/* A run's outcome: gave up with MemoryError, or completed with every callback run except where
 * a MemoryError was reported as unraisable. `report` is what the collector wrote. */
static void
check_outcome(zw_rt *rt, int rc, bool fired, const char *report, const char *what, long n)
{
    if (rc != 0) {
        cr_assert(fired, "%s %ld: the workload failed with no fault injected: %s", what, n,
                  zw_errmsg(rt));
        cr_assert_eq(zw_err_occurred(rt), ZW_MemoryError,
                     "%s %ld: the workload failed with '%s', not MemoryError", what, n,
                     zw_errmsg(rt));
        zw_err_clear(rt);
        return;
    }
    bool reported = strstr(report, "MemoryError") != NULL;
    if (strstr(report, "Exception ignored") != NULL)
        cr_assert(reported, "%s %ld: an unraisable error that is not MemoryError:\n%s", what, n,
                  report);
    cr_assert_eq(T.gc_start, T.gc_stop, "%s %ld: %d gc 'start' calls, %d 'stop'", what, n,
                 T.gc_start, T.gc_stop);
    if (!reported)
        cr_assert(T.weak_cb == NWEAK && T.finalized == NCYCLES && T.dels == NCYCLES,
                  "%s %ld: the run succeeded with %d weakref callbacks, %d finalizers, %d "
                  "__del__ run (expected %d, %d, %d), and no MemoryError reported",
                  what, n, T.weak_cb, T.finalized, T.dels, NWEAK, NCYCLES, NCYCLES);
}

static reference
reference_run(zw_raw *raw)
{
    reference ref;
    zw_rt *rt = new_rt(raw, stderr);
    ref.tracked = tracked(rt);
    zw_gc_disable(rt); /* as the clean passes: the workload's own collection finds every cycle */
    T = (tally){0};
    cr_assert_eq(workload(rt, &ref.collected), 0, "the workload fails with no fault: %s",
                 zw_errmsg(rt));
    ref.seen = T;
    /* a, b and their weakref callbacks' targets: at least the two instances of each cycle */
    cr_assert_geq(ref.collected, 2 * NCYCLES, "the reference collection found %zd objects",
                  (ssize_t)ref.collected);
    cr_assert(T.weak_cb == NWEAK && T.finalized == NCYCLES && T.dels == NCYCLES);
    cr_assert_gt(T.gc_start, 0);
    zw_rt_free(rt);
    return ref;
}

/* ---- the fault loops ---- */

Test(gc_fault, every_runtime_allocation_failing_in_a_collecting_workload)
{
    zw_raw *raw = zw_raw_new(NULL);
    cr_assert_not_null(raw);
    reference ref = reference_run(raw);
    long failed = 0;
    long swallowed = 0;
    long n;
    for (n = 1; n < SAFETY; n++) {
        char *report = NULL;
        size_t report_len = 0;
        FILE *out = open_memstream(&report, &report_len);
        cr_assert_not_null(out);
        zw_rt *rt = new_rt(raw, out);
        T = (tally){0};
        intptr_t collected = -1;
        zw_rt_fail_nth(rt, n);
        int rc = workload(rt, &collected);
        bool fired = zw_rt_fault_fired(rt);
        zw_rt_fail_nth(rt, 0);
        fflush(out);
        check_outcome(rt, rc, fired, report, "allocation", n);
        failed += rc != 0;
        swallowed += rc == 0 && fired;
        bool done = !fired;
        check_after(rt, raw, &ref, "allocation", n);
        fclose(out);
        free(report);
        if (done)
            break;
    }
    cr_assert_lt(n, SAFETY);
    cr_assert_gt(failed, 0, "no run failed");
    cr_log_info("gc_fault: %ld runtime allocations per run, each failed once: %ld runs gave up "
                "with MemoryError, %ld completed (errors reported as unraisable)",
                n - 1, failed, swallowed);
    zw_raw_destroy(raw);
}

Test(gc_fault, every_door_request_failing_in_a_collecting_workload)
{
    zw_raw *raw = zw_raw_new(NULL);
    cr_assert_not_null(raw);
    reference ref = reference_run(raw);
    long failed = 0;
    long n;
    for (n = 0; n < SAFETY; n++) {
        char *report = NULL;
        size_t report_len = 0;
        FILE *out = open_memstream(&report, &report_len);
        cr_assert_not_null(out);
        zw_rt *rt = new_rt(raw, out);
        T = (tally){0};
        intptr_t collected = -1;
        zw_raw_fail_nth(raw, n);
        int rc = workload(rt, &collected);
        bool fired = zw_raw_fault_fired(raw);
        zw_raw_fail_nth(raw, -1);
        fflush(out);
        check_outcome(rt, rc, fired, report, "door request", n);
        failed += rc != 0;
        bool done = !fired;
        check_after(rt, raw, &ref, "door request", n);
        fclose(out);
        free(report);
        if (done)
            break;
    }
    cr_assert_lt(n, SAFETY);
    cr_assert_gt(failed, 0, "no run failed");
    cr_log_info("gc_fault: %ld door requests per run, each failed once: %ld runs gave up with "
                "MemoryError",
                n, failed);
    zw_raw_destroy(raw);
}

/* zw_rt_new takes its heap, its types and the collector's state (the weakref, finalize and weak
 * container types, the callbacks' table) before a caller can arm zw_rt_fail_nth: fail each of its
 * door's requests instead. Each failure is NULL with ENOMEM and leaves nothing behind. */
Test(gc_fault, every_door_request_failing_in_runtime_creation)
{
    zw_raw *raw = zw_raw_new(NULL);
    cr_assert_not_null(raw);
    long n;
    long failed = 0;
    for (n = 0; n < SAFETY; n++) {
        zw_raw_fail_nth(raw, n);
        errno = 0;
        zw_rt_config cfg = {.flags = ZW_RT_IGNORE_ENV, .hash_seed = 0, .raw = raw};
        zw_rt *rt = zw_rt_new(&cfg);
        bool fired = zw_raw_fault_fired(raw);
        zw_raw_fail_nth(raw, -1);
        if (rt == NULL) {
            cr_assert(fired, "zw_rt_new failed with no fault injected (request %ld)", n);
            cr_assert_eq(errno, ENOMEM, "request %ld: errno %d", n, errno);
            failed++;
        } else {
            cr_assert(!fired, "request %ld failed and zw_rt_new still returned a runtime", n);
            zw_rt_free(rt);
        }
        zw_raw_stats st;
        zw_raw_get_stats(raw, &st);
        cr_assert(st.blocks == 0 && st.mapped_bytes == 0,
                  "request %ld: the door still holds %zu blocks and %zu bytes of pages", n,
                  st.blocks, st.mapped_bytes);
        if (rt != NULL)
            break;
    }
    cr_assert_gt(failed, 0);
    cr_log_info("gc_fault: zw_rt_new makes %ld door requests, each failed once", n);
    zw_raw_destroy(raw);
}
