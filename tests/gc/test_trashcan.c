/* tests/gc/test_trashcan.c - the trashcan: the death of a 10-million-deep chain of lists, of
 * dicts or of instances, by refcount or by the collector, takes a bounded C stack (without it,
 * each level is a few nested calls and the default 8 MiB stack overflows near depth 50 000);
 * and a 100-deep chain mixing lists, dicts and instances with __del__ runs its finalizers in
 * the order CPython 3.11 does (tests/gc/data/trashcan-3.11.txt, written by
 * scripts/gen-trashcan-order.py). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zerowaste/gc.h>
#include <zerowaste/obj.h>

#include "zw_gc_test.h"
#include "zw_test.h"

#ifndef ZW_TEST_DATA_DIR
#    error "ZW_TEST_DATA_DIR must name tests/gc/data (tests/CMakeLists.txt sets it)"
#endif

/* 10 million levels in the release suite. The ASan build (each level several times slower)
 * and the GC stress run (which repeats this suite: the collector is off while chains are
 * built) take 1 million, still 20 times what the 8 MiB stack held without the trashcan. */
static long DEEP = 10000000L;

static void
pick_depth(void)
{
    const char *stress = getenv("ZW_GC_STRESS");
    if (ZWT_ASAN || (stress != NULL && stress[0] != '\0' && strcmp(stress, "0") != 0))
        DEEP = 1000000L;
}

static void
setup(void)
{
    pick_depth();
    zwt_gc_setup();
}

enum chain_kind { CHAIN_LIST, CHAIN_DICT, CHAIN_INSTANCE };

static zw_type *node_class; /* slots: next */

/* A chain of `depth` containers of one kind, each holding the next; returns the top (new
 * reference). With `cycle`, the bottom one holds the top too. */
static zw_obj *
deep_chain(enum chain_kind kind, long depth, bool cycle)
{
    static const char *const fields[] = {"next", NULL};
    if (kind == CHAIN_INSTANCE) {
        zw_class_spec spec = {.name = "Node", .layout = ZW_LAYOUT_SLOTS, .fields = fields};
        node_class = zw_class_new(rt, &spec);
        cr_assert_not_null(node_class, "%s", zw_errmsg(rt));
    }
    zw_obj *bottom = NULL;
    zw_obj *top = NULL;
    for (long i = 0; i < depth; i++) {
        zw_obj *o;
        zw_obj *below = top != NULL ? top : zw_none(rt);
        switch (kind) {
        case CHAIN_LIST:
            o = zw_list_new(rt, 1);
            cr_assert_not_null(o);
            cr_assert_eq(zw_list_append(o, below), 0);
            break;
        case CHAIN_DICT:
            o = zw_dict_new(rt);
            cr_assert_not_null(o);
            cr_assert_eq(zw_dict_set_str(o, "next", below), 0);
            break;
        default:
            o = zw_call(node_class, 1, &below);
            cr_assert_not_null(o, "%s", zw_errmsg(rt));
            break;
        }
        if (top == NULL)
            bottom = o;
        else
            zw_decref(top);
        top = o;
    }
    if (cycle) {
        switch (kind) {
        case CHAIN_LIST:
            cr_assert_eq(zw_list_set(bottom, 0, top), 0);
            break;
        case CHAIN_DICT:
            cr_assert_eq(zw_dict_set_str(bottom, "next", top), 0);
            break;
        default:
            cr_assert_eq(zw_setattr(bottom, "next", top), 0, "%s", zw_errmsg(rt));
            break;
        }
    }
    return top;
}

static void
refcount_death(enum chain_kind kind)
{
    zw_obj *top = deep_chain(kind, DEEP, false);
    /* a dict holding only None is not tracked (as CPython's): the bottom one of its chain */
    cr_assert_eq(zwt_tracked(), baseline + (size_t)DEEP - (kind == CHAIN_DICT));
    zw_decref(top); /* overflowed the stack without the trashcan */
    cr_assert_eq(zwt_tracked(), baseline, "the whole chain is freed");
}

static void
collection(enum chain_kind kind)
{
    zw_obj *top = deep_chain(kind, DEEP, true);
    zw_decref(top);
    cr_assert_eq(zwt_tracked(), baseline + (size_t)DEEP, "a cycle: nothing freed yet");
    intptr_t n = zw_gc_collect(rt, 2);
    cr_assert_eq(n, DEEP, "collected %ld", (long)n);
    cr_assert_eq(zwt_tracked(), baseline, "the whole chain is freed");
}

TestSuite(gc_trashcan, .init = setup, .fini = zwt_gc_teardown, .timeout = 300);

Test(gc_trashcan, refcount_death_of_a_deep_list_chain)
{
    refcount_death(CHAIN_LIST);
}

Test(gc_trashcan, refcount_death_of_a_deep_dict_chain)
{
    refcount_death(CHAIN_DICT);
}

Test(gc_trashcan, refcount_death_of_a_deep_instance_chain)
{
    refcount_death(CHAIN_INSTANCE);
}

Test(gc_trashcan, collection_of_a_deep_list_cycle)
{
    collection(CHAIN_LIST);
}

Test(gc_trashcan, collection_of_a_deep_dict_cycle)
{
    collection(CHAIN_DICT);
}

Test(gc_trashcan, collection_of_a_deep_instance_cycle)
{
    collection(CHAIN_INSTANCE);
}

/* ---- the order of finalizers, against CPython ---- */

static long logged[1024];
static size_t nlogged;

static zw_obj *
log_del(zw_obj *self, zw_obj *const *args, size_t nargs)
{
    (void)args;
    (void)nargs;
    zw_obj *id = zw_getattr(self, self->type == node_class ? "d" : "id");
    cr_assert_not_null(id, "%s", zw_errmsg(rt));
    if (nlogged < sizeof(logged) / sizeof(logged[0]))
        logged[nlogged++] = (long)zw_int_as_i64(id);
    zw_decref(id);
    return zw_newref(zw_none(zw_rt_of(self)));
}

static zw_obj *
new_f(zw_type *f, long id)
{
    zw_obj *i = zw_int_from_i64(rt, id);
    zw_obj *o = zw_call(f, 1, &i);
    cr_assert_not_null(o, "%s", zw_errmsg(rt));
    zw_decref(i);
    return o;
}

Test(gc_trashcan, finalizers_run_in_cpython_order_at_depth_100)
{
    FILE *in = fopen(ZW_TEST_DATA_DIR "/trashcan-3.11.txt", "r");
    cr_assert_not_null(in, "cannot open " ZW_TEST_DATA_DIR "/trashcan-3.11.txt");
    long depth;
    cr_assert_eq(fscanf(in, "%ld", &depth), 1);
    long want[1024];
    size_t nwant = 0;
    while (nwant < 1024 && fscanf(in, "%ld", &want[nwant]) == 1)
        nwant++;
    fclose(in);
    cr_assert(depth > 50 && nwant > 0, "data file: depth %ld, %zu events", depth, nwant);

    static const zw_method del[] = {{"__del__", log_del, 0, NULL}, {NULL, NULL, 0, NULL}};
    static const char *const f_fields[] = {"id", NULL};
    static const char *const n_fields[] = {"a", "b", "c", "d", NULL};
    zw_class_spec fs = {.name = "F", .layout = ZW_LAYOUT_SLOTS, .fields = f_fields, .methods = del};
    zw_class_spec ns = {.name = "N", .layout = ZW_LAYOUT_SLOTS, .fields = n_fields, .methods = del};
    zw_type *f = zw_class_new(rt, &fs);
    node_class = zw_class_new(rt, &ns);
    cr_assert(f != NULL && node_class != NULL, "%s", zw_errmsg(rt));

    zw_obj *next = zw_newref(zw_none(rt));
    for (long i = depth - 1; i >= 0; i--) {
        zw_obj *a = new_f(f, 3 * i);
        zw_obj *c = new_f(f, 3 * i + 1);
        zw_obj *node;
        if (i % 3 == 0) {
            node = zw_list_new(rt, 3);
            cr_assert(zw_list_append(node, a) == 0 && zw_list_append(node, next) == 0 &&
                      zw_list_append(node, c) == 0);
        } else if (i % 3 == 1) {
            node = zw_dict_new(rt);
            cr_assert(zw_dict_set_str(node, "a", a) == 0 && zw_dict_set_str(node, "b", next) == 0 &&
                      zw_dict_set_str(node, "c", c) == 0);
        } else {
            zw_obj *id = zw_int_from_i64(rt, 3 * i + 2);
            zw_obj *args[] = {a, next, c, id};
            node = zw_call(node_class, 4, args);
            cr_assert_not_null(node, "%s", zw_errmsg(rt));
            zw_decref(id);
        }
        zw_decref(a);
        zw_decref(c);
        zw_decref(next);
        next = node;
    }
    nlogged = 0;
    zw_decref(next);
    cr_assert_eq(nlogged, nwant, "%zu finalizers ran, CPython ran %zu", nlogged, nwant);
    for (size_t i = 0; i < nwant; i++)
        cr_assert_eq(logged[i], want[i], "finalizer %zu: id %ld, CPython's %ld", i, logged[i],
                     want[i]);
}
