/* tests/obj/test_fault.c - out of memory in the object runtime, on purpose. The talk's workload
 * (1000 instances of a dict-layout class held in a list, a dict of 100 str keys, 100 formatted
 * strings, lists grown by append) runs with allocation N failing (zw_rt_fail_nth), for every N
 * from 1 to the number of allocations a whole run makes. Each run must give up with -1 and
 * MemoryError set, the injected failure must have fired, and once the workload has released
 * what it made the heap must hold exactly the blocks it held before: no leak on any path, no
 * crash, nothing for ASan to report.
 *
 * One runtime serves every run. Its free lists (float, tuple, list, dict, dict keys) keep
 * blocks, so each run starts either with them full ("warm": filled to their limits first; a full
 * free list is full again after any run, whatever the run took from it) or empty ("cold":
 * emptied after each run, so the objects a warm run takes from them are fresh allocations that
 * can fail too). Either way the baseline stays exact. At the end, with the free lists emptied,
 * the heap must hold what it held before the first run. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <zerowaste/zerowaste.h>

#include "zw_test.h"

#define NINSTANCES 1000 /* the talk's instances */
#define NKEYS      100  /* str keys of the dict */
#define NTEXTS     100  /* formatted strings */
/* Objects of each free-list kind made and dropped at once: more than any free list keeps
 * (CPython's largest, the tuples', keeps 2000 per length). */
#define SATURATE   2500
#define MAX_REPORT 10 /* failing N reported one by one; the rest are counted */

/* ---- the workload ---- */

/* Appends `item` to `list` and drops the caller's reference to it, whatever happens. */
static int
append_new(zw_obj *list, zw_obj *item)
{
    if (item == NULL)
        return -1;
    int rc = zw_list_append(list, item);
    zw_decref(item);
    return rc;
}

/* A Point with x = i, y = -i * 1000 (an int the heap must allocate): for even i the call
 * fills both attributes, for odd i they are set one by one after an empty call. New reference,
 * or NULL with the error set. */
static zw_obj *
make_point(zw_rt *rt, zw_type *cls, int64_t i)
{
    zw_obj *o = NULL;
    zw_obj *xy[2] = {zw_int_from_i64(rt, i), zw_int_from_i64(rt, -i * 1000)};
    if (xy[0] == NULL || xy[1] == NULL)
        goto out_release;
    if (i % 2 == 0) {
        o = zw_call(cls, 2, xy);
        goto out_release;
    }
    o = zw_call(cls, 0, NULL);
    if (o != NULL && (zw_setattr(o, "x", xy[0]) != 0 || zw_setattr(o, "y", xy[1]) != 0))
        ZW_CLEAR(o);
out_release:
    zw_xdecref(xy[0]);
    zw_xdecref(xy[1]);
    return o;
}

/* 1000 Points held in `instances`. */
static int
fill_instances(zw_rt *rt, zw_type *cls, zw_obj *instances)
{
    for (int64_t i = 0; i < NINSTANCES; i++) {
        if (append_new(instances, make_point(rt, cls, i)) != 0)
            return -1;
    }
    return 0;
}

/* table["key<i>"] = 1000 + i for 100 keys. */
static int
fill_table(zw_rt *rt, zw_obj *table)
{
    for (int i = 0; i < NKEYS; i++) {
        char key[16];
        snprintf(key, sizeof(key), "key%d", i);
        zw_obj *v = zw_int_from_i64(rt, 1000 + i);
        if (v == NULL)
            return -1;
        int rc = zw_dict_set_str(table, key, v);
        zw_decref(v);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* 100 strings "row <i>: '<key>' -> <value>" formatted from the table's entries. */
static int
fill_texts(zw_rt *rt, zw_obj *table, zw_obj *texts)
{
    size_t pos = 0;
    zw_obj *key;
    zw_obj *value;
    for (int i = 0; i < NTEXTS && zw_dict_next(table, &pos, &key, &value); i++) {
        if (append_new(texts, zw_str_from_format(rt, "row %d: %R -> %S", i, key, value)) != 0)
            return -1;
    }
    return 0;
}

/* The whole workload; releases everything it made, on success (0) as on failure (-1). */
static int
workload(zw_rt *rt, zw_type *cls)
{
    int status = -1;
    zw_obj *table = NULL;
    zw_obj *texts = NULL;
    zw_obj *instances = zw_list_new(rt, 0);
    if (instances == NULL || fill_instances(rt, cls, instances) != 0)
        goto out_release;
    table = zw_dict_new(rt);
    if (table == NULL || fill_table(rt, table) != 0)
        goto out_release;
    texts = zw_list_new(rt, 0);
    if (texts == NULL || fill_texts(rt, table, texts) != 0)
        goto out_release;
    if (zw_list_len(instances) != NINSTANCES || zw_dict_len(table) != NKEYS ||
        zw_list_len(texts) != NTEXTS) {
        zw_err_set(rt, ZW_SystemError, "workload: %zu instances, %zu keys, %zu texts",
                   zw_list_len(instances), zw_dict_len(table), zw_list_len(texts));
        goto out_release;
    }
    status = 0;
out_release:
    zw_xdecref(texts);
    zw_xdecref(table);
    zw_xdecref(instances);
    return status;
}

/* ---- set-up ---- */

static zw_type *
make_class(zw_rt *rt)
{
    static const char *const fields[] = {"x", "y", NULL};
    zw_class_spec spec = {.name = "Point", .layout = ZW_LAYOUT_DICT, .fields = fields};
    zw_type *cls = zw_class_new(rt, &spec);
    cr_assert_not_null(cls, "zw_class_new: %s", zw_errmsg(rt));
    return cls;
}

/* Makes SATURATE objects of each kind that has a free list, all alive at once, then drops them:
 * every free list is full afterwards and stays full after any run of the workload. */
static void
saturate_free_lists(zw_rt *rt)
{
    zw_obj *keep = zw_list_new(rt, 0);
    cr_assert_not_null(keep, "%s", zw_errmsg(rt));
    for (size_t i = 0; i < SATURATE; i++) {
        cr_assert_eq(append_new(keep, zw_float_new(rt, (double)i)), 0, "%s", zw_errmsg(rt));
        cr_assert_eq(append_new(keep, zw_list_new(rt, 0)), 0, "%s", zw_errmsg(rt));
        zw_obj *d = zw_dict_new(rt); /* with one str key: its 8-slot table is kept too */
        cr_assert_not_null(d, "%s", zw_errmsg(rt));
        cr_assert_eq(zw_dict_set_str(d, "k", zw_none(rt)), 0, "%s", zw_errmsg(rt));
        cr_assert_eq(append_new(keep, d), 0, "%s", zw_errmsg(rt));
        for (size_t n = 1; n <= 20; n++) {
            zw_obj *t = zw_tuple_new(rt, n);
            cr_assert_not_null(t, "%s", zw_errmsg(rt));
            for (size_t k = 0; k < n; k++)
                zw_tuple_init_item(t, k, zw_newref(zw_none(rt)));
            cr_assert_eq(append_new(keep, t), 0, "%s", zw_errmsg(rt));
        }
    }
    zw_decref(keep);
}

static double
seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* ---- the fault loop ---- */

/* Blocks the heap holds after a run; in a cold run, once the free lists are emptied. */
static size_t
blocks_after_run(zw_rt *rt, bool cold)
{
    if (cold)
        zw_rt_clear_freelists(rt);
    return zw_rt_allocated_blocks(rt);
}

static void
fail_each_allocation(unsigned flags, bool cold)
{
    zw_rt_config cfg = {.flags = flags | ZW_RT_IGNORE_ENV, .hash_seed = 0};
    zw_rt *rt = zw_rt_new(&cfg);
    cr_assert_not_null(rt, "zw_rt_new: %s", strerror(errno));
    zw_type *cls = make_class(rt);
    size_t start = zw_rt_allocated_blocks(rt);
    if (!cold)
        saturate_free_lists(rt);
    /* warm-up: interns the names and keys, sizes the interned table */
    cr_assert_eq(workload(rt, cls), 0, "the workload fails with no fault: %s", zw_errmsg(rt));
    size_t baseline = blocks_after_run(rt, cold);
    size_t live = zw_rt_live_objects(rt); /* 0 unless the runtime is in debug mode */
    uint64_t before = zw_rt_allocations(rt);
    cr_assert_eq(workload(rt, cls), 0, "the workload fails with no fault: %s", zw_errmsg(rt));
    long count = (long)(zw_rt_allocations(rt) - before);
    cr_assert_gt(count, NINSTANCES, "the workload made %ld allocations", count);
    size_t blocks = blocks_after_run(rt, cold);
    cr_assert_eq(blocks, baseline, "a run with no fault leaves %zu blocks, %zu before", blocks,
                 baseline);

    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long failures = 0;
    for (long n = 1; n <= count; n++) {
        zw_rt_fail_nth(rt, n);
        int rc = workload(rt, cls);
        bool fired = zw_rt_fault_fired(rt);
        zw_exc exc = zw_err_occurred(rt);
        char msg[160];
        snprintf(msg, sizeof(msg), "%s", zw_errmsg(rt));
        zw_rt_fail_nth(rt, 0);
        zw_err_clear(rt);
        blocks = blocks_after_run(rt, cold);
        size_t objects = zw_rt_live_objects(rt);
        if (rc == -1 && fired && exc == ZW_MemoryError && blocks == baseline && objects == live)
            continue;
        if (++failures <= MAX_REPORT)
            cr_expect_fail("allocation %ld of %ld failed: the workload returned %d, fault %s, "
                           "error '%s', %zu blocks (baseline %zu), %zu live objects (%zu)",
                           n, count, rc, fired ? "fired" : "not fired", msg, blocks, baseline,
                           objects, live);
    }
    double took = seconds_since(&t0);
    cr_assert_eq(failures, 0, "%ld of %ld runs went wrong (the first %d are listed)", failures,
                 count, MAX_REPORT);

    /* one past the count: the fault is never reached and the workload succeeds */
    zw_rt_fail_nth(rt, count + 1);
    cr_assert_eq(workload(rt, cls), 0, "fail_nth(%ld), past the count: %s", count + 1,
                 zw_errmsg(rt));
    cr_assert(!zw_rt_fault_fired(rt), "fail_nth(%ld) fired: the count is wrong", count + 1);
    zw_rt_fail_nth(rt, 0);
    cr_assert_eq(blocks_after_run(rt, cold), baseline);
    zw_rt_clear_freelists(rt);
    cr_assert_eq(zw_rt_allocated_blocks(rt), start,
                 "%zu blocks once the free lists are emptied, %zu before the workload",
                 zw_rt_allocated_blocks(rt), start);
    fprintf(stderr,
            "obj_fault: %s runtime, %s free lists: %ld allocations per run, each failed "
            "in %.2f s\n",
            (flags & ZW_RT_DEBUG) ? "debug" : "plain", cold ? "empty" : "full", count, took);
    zw_rt_free(rt);
}

Test(obj_fault, every_allocation_failing_leaves_memoryerror_and_no_leak)
{
    fail_each_allocation(0, false);
}

Test(obj_fault, every_allocation_failing_with_empty_free_lists)
{
    fail_each_allocation(0, true);
}

Test(obj_fault, every_allocation_failing_in_a_debug_runtime)
{
    fail_each_allocation(ZW_RT_DEBUG, false);
}

Test(obj_fault, every_allocation_failing_in_a_debug_runtime_with_empty_free_lists)
{
    fail_each_allocation(ZW_RT_DEBUG, true);
}
