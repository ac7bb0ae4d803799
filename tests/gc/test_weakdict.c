/* tests/gc/test_weakdict.c - weak containers: the reference's scenarios 26 and 35-40 (section
 * 6.2 of cpython-memory.md), ported to C, and the containers' own invariants; the number in a
 * test's comment is the scenario's. Values and keys are instances of a dict-layout class, or of
 * "Obj", a weakly referenceable type that compares and hashes by an int (CPython's test
 * Object), whose compare can drop another key (scenario 40). */
#include <stdlib.h>

#include "zw_gc_test.h"

TestSuite(gc_weakdict, .init = zwt_gc_setup, .fini = zwt_gc_teardown);

#define N 10

/* ---- Obj: equal by value, hash = value ---- */

typedef struct obj_t {
    zw_obj ob;
    zw_obj *weaklist;
    int64_t value;
} obj_t;

static bool mutate;             /* Obj's compare drops the last item of `objs` */
static zw_obj *objs;            /* a list, or NULL */
static int compares;            /* calls of Obj's compare */
static zw_obj *drop_on_compare; /* a reference Obj's compare drops, or NULL */

static int64_t
obj_hash(zw_obj *o)
{
    return ((obj_t *)o)->value;
}

static int
obj_compare(zw_obj *a, zw_obj *b, zw_cmp op)
{
    if (zw_type_of(a) != zw_type_of(b) || (op != ZW_EQ && op != ZW_NE))
        return ZW_CMP_UNSUPPORTED;
    compares++;
    ZW_CLEAR(drop_on_compare);
    if (mutate && objs != NULL && zw_list_len(objs) > 0)
        zw_decref(zw_list_pop(objs, -1)); /* the last strong reference to another key */
    bool eq = ((obj_t *)a)->value == ((obj_t *)b)->value;
    return op == ZW_EQ ? eq : !eq;
}

static zw_obj *
obj_new(int64_t v)
{
    static const zw_type_spec spec = {
        .name = "Obj",
        .basicsize = sizeof(obj_t),
        .flags = ZW_TPFLAGS_WEAKREFABLE,
        .hash = obj_hash,
        .compare = obj_compare,
        .weaklist_offset = offsetof(obj_t, weaklist),
    };
    static zw_type *t;
    static zw_rt *t_rt;
    if (t_rt != rt) {
        t = zw_type_new(rt, &spec);
        cr_assert_not_null(t);
        t_rt = rt;
        mutate = false;
        objs = NULL;
        compares = 0;
        drop_on_compare = NULL;
    }
    obj_t *o = (obj_t *)zw_obj_alloc(t, 0);
    cr_assert_not_null(o);
    o->value = v;
    return &o->ob;
}

static int64_t
obj_value(zw_obj *o)
{
    return ((obj_t *)o)->value;
}

static zw_obj *
num(int64_t v)
{
    zw_obj *i = zw_int_from_i64(rt, v);
    cr_assert_not_null(i);
    return i;
}

/* A list of n Obj(0) .. Obj(n-1) (new). */
static zw_obj *
make_objects(size_t n)
{
    zw_obj *l = zw_list_new(rt, n);
    for (size_t i = 0; i < n; i++) {
        zw_obj *o = obj_new((int64_t)i);
        zw_list_append(l, o);
        zw_decref(o);
    }
    return l;
}

/* CPython's make_weak_valued_dict: {o.value: o} for each of `objects`. */
static zw_obj *
make_valued(zw_obj *objects)
{
    zw_obj *wd = zw_weakvaluedict_new(rt);
    cr_assert_not_null(wd, "%s", zw_errmsg(rt));
    for (size_t i = 0; i < zw_list_len(objects); i++) {
        zw_obj *o = zw_list_get(objects, (intptr_t)i);
        zw_obj *k = num(obj_value(o));
        cr_assert_eq(zw_weakvaluedict_set(wd, k, o), 0, "%s", zw_errmsg(rt));
        zw_decref(k);
    }
    return wd;
}

/* CPython's make_weak_keyed_dict: {o: o.value} for each of `objects`. */
static zw_obj *
make_keyed(zw_obj *objects)
{
    zw_obj *wd = zw_weakkeydict_new(rt);
    cr_assert_not_null(wd, "%s", zw_errmsg(rt));
    for (size_t i = 0; i < zw_list_len(objects); i++) {
        zw_obj *o = zw_list_get(objects, (intptr_t)i);
        zw_obj *v = num(obj_value(o));
        cr_assert_eq(zw_weakkeydict_set(wd, o, v), 0, "%s", zw_errmsg(rt));
        zw_decref(v);
    }
    return wd;
}

/* Drains an iterator; returns how many items it gave. */
static size_t
drain(zw_obj *it)
{
    size_t n = 0;
    zw_obj *x;
    while ((x = zw_iter_next(it)) != NULL) {
        zw_decref(x);
        n++;
    }
    cr_assert_eq(zw_err_occurred(rt), ZW_NoError, "%s", zw_errmsg(rt));
    return n;
}

static void
expect_error(zw_exc exc)
{
    cr_assert_eq(zw_err_occurred(rt), exc, "expected %s, got %s", zw_exc_name(exc), zw_errmsg(rt));
    zw_err_clear(rt);
}

/* ---- WeakValueDictionary ---- */

Test(gc_weakdict, value_dict_holds_one_weakref_per_value_and_loses_dead_ones) /* 35 */
{
    zw_obj *objects = make_objects(N);
    zw_obj *wd = make_valued(objects);
    cr_assert_eq(zw_weakvaluedict_len(wd), N);
    for (size_t i = 0; i < N; i++) {
        zw_obj *o = zw_list_get(objects, (intptr_t)i);
        cr_assert_eq(zw_weakref_count(o), 1, "the container's ref is the only one");
        zw_obj *k = num((int64_t)i);
        zw_obj *v = zw_weakvaluedict_get(wd, k);
        cr_assert_eq(v, o, "the identical object comes back");
        cr_assert_eq(zw_weakvaluedict_contains(wd, k), 1);
        zw_decref(v);
        zw_decref(k);
    }
    zw_obj *c = zw_weakvaluedict_copy(wd);
    cr_assert_not_null(c, "%s", zw_errmsg(rt));
    cr_assert_eq(zw_weakvaluedict_len(c), N);
    for (size_t i = 0; i < N; i++) {
        zw_obj *k = num((int64_t)i);
        zw_obj *a = zw_weakvaluedict_get(wd, k);
        zw_obj *b = zw_weakvaluedict_get(c, k);
        cr_assert_eq(a, b, "the copy is equal");
        zw_decref(a);
        zw_decref(b);
        zw_decref(k);
    }
    zw_decref(c);
    /* the last strong reference goes: the entry goes */
    zw_decref(zw_list_pop(objects, 0));
    cr_assert_eq(zw_weakvaluedict_len(wd), N - 1);
    zw_obj *k0 = num(0);
    cr_assert_null(zw_weakvaluedict_get(wd, k0));
    cr_assert_eq(zw_err_occurred(rt), ZW_NoError, "absent: no error");
    cr_assert_eq(zw_weakvaluedict_contains(wd, k0), 0);
    cr_assert_eq(zw_weakvaluedict_del(wd, k0), -1);
    expect_error(ZW_KeyError);
    zw_obj *missing = num(1000);
    cr_assert_eq(zw_weakvaluedict_del(wd, missing), -1);
    expect_error(ZW_KeyError);
    cr_assert_null(zw_weakvaluedict_pop(wd, missing, NULL));
    expect_error(ZW_KeyError);
    zw_obj *dflt = zw_weakvaluedict_pop(wd, missing, missing);
    cr_assert_eq(dflt, missing);
    zw_decref(dflt);
    zw_decref(missing);
    zw_decref(k0);
    zw_decref(objects);
    cr_assert_eq(zw_weakvaluedict_len(wd), 0, "every value died");
    zw_decref(wd);
}

Test(gc_weakdict, value_dict_refuses_values_without_weakrefs)
{
    zw_obj *wd = zw_weakvaluedict_new(rt);
    zw_obj *k = num(1);
    cr_assert_eq(zw_weakvaluedict_set(wd, k, k), -1);
    cr_assert_str_eq(zw_errmsg(rt), "TypeError: cannot create weak reference to 'int' object");
    zw_err_clear(rt);
    zw_obj *l = zw_list_new(rt, 0);
    zw_obj *o = obj_new(1);
    cr_assert_eq(zw_weakvaluedict_set(wd, l, o), -1, "unhashable key");
    expect_error(ZW_TypeError);
    cr_assert_eq(zw_weakvaluedict_len(wd), 0);
    cr_assert_eq(zw_weakref_count(o), 0, "the refused entry's weakref is gone");
    zw_decref(o);
    zw_decref(l);
    zw_decref(k);
    zw_decref(wd);
}

Test(gc_weakdict, value_dict_loses_values_the_collector_frees)
{
    zw_type *A = zwt_make_class("A", false);
    zw_obj *wd = zw_weakvaluedict_new(rt);
    for (int i = 0; i < N; i++) {
        zw_obj *a = zwt_new(A);
        zwt_set(a, "self", a); /* a cycle: only the collector frees it */
        zw_obj *k = num(i);
        cr_assert_eq(zw_weakvaluedict_set(wd, k, a), 0);
        zw_decref(k);
        zw_decref(a);
    }
    cr_assert_eq(zw_weakvaluedict_len(wd), N);
    /* each value, and each container weakref its callback freed (as CPython counts) */
    cr_assert_eq(zw_gc_collect(rt, 2), 2 * N);
    cr_assert_eq(zw_weakvaluedict_len(wd), 0);
    zw_decref(wd);
}

Test(gc_weakdict, value_dict_entry_replaced_keeps_one_weakref)
{
    zw_obj *wd = zw_weakvaluedict_new(rt);
    zw_obj *k = num(7);
    zw_obj *a = obj_new(1);
    zw_obj *b = obj_new(2);
    cr_assert_eq(zw_weakvaluedict_set(wd, k, a), 0);
    cr_assert_eq(zw_weakvaluedict_set(wd, k, a), 0);
    cr_assert_eq(zw_weakref_count(a), 1, "the replaced entry's weakref died");
    cr_assert_eq(zw_weakvaluedict_set(wd, k, b), 0);
    cr_assert_eq(zw_weakref_count(a), 0);
    cr_assert_eq(zw_weakvaluedict_len(wd), 1);
    zw_decref(a); /* no longer in it: nothing happens */
    cr_assert_eq(zw_weakvaluedict_len(wd), 1);
    zw_decref(b);
    cr_assert_eq(zw_weakvaluedict_len(wd), 0);
    zw_decref(k);
    zw_decref(wd);
}

Test(gc_weakdict, valuerefs_are_the_containers_weakrefs)
{
    zw_obj *objects = make_objects(3);
    zw_obj *wd = make_valued(objects);
    zw_obj *refs = zw_weakvaluedict_valuerefs(wd);
    cr_assert_not_null(refs);
    cr_assert_eq(zw_list_len(refs), 3);
    for (size_t i = 0; i < 3; i++) {
        zw_obj *r = zw_list_get(refs, (intptr_t)i);
        cr_assert(zw_weakref_check(r));
        zw_obj *o = zw_weakref_get(r);
        cr_assert_eq(o, zw_list_get(objects, (intptr_t)i));
        zw_decref(o);
        cr_assert_eq(zw_weakref_count(zw_list_get(objects, (intptr_t)i)), 1);
    }
    /* a ref held outside outlives its entry: its callback must not touch a newer entry */
    zw_obj *k0 = num(0);
    zw_obj *fresh = obj_new(100);
    cr_assert_eq(zw_weakvaluedict_set(wd, k0, fresh), 0);
    zw_decref(zw_list_pop(objects, 0)); /* the old value of key 0 dies */
    cr_assert_eq(zw_weakvaluedict_len(wd), 3);
    zw_obj *v = zw_weakvaluedict_get(wd, k0);
    cr_assert_eq(v, fresh);
    zw_decref(v);
    zw_decref(fresh);
    zw_decref(k0);
    zw_decref(refs);
    zw_decref(objects);
    cr_assert_eq(zw_weakvaluedict_len(wd), 0);
    zw_decref(wd);
}

/* ---- WeakKeyDictionary ---- */

Test(gc_weakdict, key_dict_holds_one_weakref_per_key_and_loses_dead_ones) /* 36 */
{
    zw_obj *objects = make_objects(N);
    zw_obj *wd = make_keyed(objects);
    cr_assert_eq(zw_weakkeydict_len(wd), N);
    for (size_t i = 0; i < N; i++) {
        zw_obj *o = zw_list_get(objects, (intptr_t)i);
        cr_assert_eq(zw_weakkeydict_contains(wd, o), 1);
        zw_obj *v = zw_weakkeydict_get(wd, o);
        cr_assert_not_null(v);
        cr_assert_eq(zw_int_as_i64(v), (int64_t)i);
        zw_decref(v);
        cr_assert_eq(zw_weakref_count(o), 1, "lookups leave no weakref behind");
    }
    zw_obj *unrelated = num(34);
    cr_assert_eq(zw_weakkeydict_contains(wd, unrelated), 0, "not weakrefable: not in it");
    cr_assert_eq(zw_err_occurred(rt), ZW_NoError);
    zw_obj *other = obj_new(1000);
    cr_assert_eq(zw_weakkeydict_contains(wd, other), 0);
    cr_assert_null(zw_weakkeydict_get(wd, other));
    cr_assert_eq(zw_err_occurred(rt), ZW_NoError, "absent: no error");
    cr_assert_eq(zw_weakkeydict_del(wd, other), -1);
    expect_error(ZW_KeyError);
    cr_assert_null(zw_weakkeydict_get(wd, unrelated));
    expect_error(ZW_TypeError);
    zw_obj *c = zw_weakkeydict_copy(wd);
    cr_assert_eq(zw_weakkeydict_len(c), N);
    zw_obj *first = zw_list_get(objects, 0);
    zw_obj *v = zw_weakkeydict_get(c, first);
    cr_assert_eq(zw_int_as_i64(v), 0);
    zw_decref(v);
    cr_assert_eq(zw_weakref_count(first), 2, "one per container");
    zw_decref(c);
    zw_decref(zw_list_pop(objects, 0));
    cr_assert_eq(zw_weakkeydict_len(wd), N - 1);
    zw_decref(objects);
    cr_assert_eq(zw_weakkeydict_len(wd), 0);
    zw_decref(other);
    zw_decref(unrelated);
    zw_decref(wd);
}

Test(gc_weakdict, key_dict_loses_keys_the_collector_frees)
{
    zw_type *A = zwt_make_class("A", false);
    zw_obj *wd = zw_weakkeydict_new(rt);
    for (int i = 0; i < N; i++) {
        zw_obj *a = zwt_new(A);
        zwt_set(a, "self", a);
        zw_obj *v = num(i);
        cr_assert_eq(zw_weakkeydict_set(wd, a, v), 0);
        zw_decref(v);
        zw_decref(a);
    }
    cr_assert_eq(zw_gc_collect(rt, 2), 2 * N);
    cr_assert_eq(zw_weakkeydict_len(wd), 0);
    zw_decref(wd);
}

Test(gc_weakdict, key_dict_refuses_keys_without_weakrefs)
{
    zw_obj *wd = zw_weakkeydict_new(rt);
    zw_obj *k = num(1);
    cr_assert_eq(zw_weakkeydict_set(wd, k, k), -1);
    expect_error(ZW_TypeError);
    cr_assert_eq(zw_weakkeydict_len(wd), 0);
    zw_decref(k);
    zw_decref(wd);
}

/* CPython's test_trashcan_16602: each C(parent) holds a weakref to its parent whose callback
 * reads a weakref to the child; d[parent] = child. Dropping the root frees the whole chain. */
static zw_obj *
chain_cb(zw_obj *wself, zw_obj *const *args, size_t nargs)
{
    zw_obj *o = zw_weakref_get(wself);
    zw_decref(o);
    return zw_newref(zw_none(rt));
}

Test(gc_weakdict, chain_of_weakrefs_with_callbacks_in_a_key_dict) /* 26 */
{
    static const zw_method cb_def = {"cb", chain_cb, 1, NULL};
    zw_type *C = zwt_make_class("C", false);
    zw_obj *d = zw_weakkeydict_new(rt);
    zw_obj *root = zwt_new(C);
    zw_obj *c = zw_newref(root);
    for (int n = 0; n < 100; n++) {
        zw_obj *child = zwt_new(C);
        zw_obj *wself = zw_weakref_new(child, NULL);
        zw_obj *cb = zw_func_new(rt, &cb_def, wself);
        zw_obj *wparent = zw_weakref_new(c, cb);
        cr_assert_not_null(wparent, "%s", zw_errmsg(rt));
        zwt_set(child, "wparent", wparent);
        zw_decref(wparent);
        zw_decref(cb);
        zw_decref(wself);
        cr_assert_eq(zw_weakkeydict_set(d, c, child), 0);
        zw_decref(c);
        c = child;
    }
    cr_assert_eq(zw_weakkeydict_len(d), 100);
    zw_decref(root); /* the chain goes, one death queuing the next */
    zw_gc_collect(rt, 2);
    cr_assert_eq(zw_weakkeydict_len(d), 0);
    zw_decref(c);
    zw_decref(d);
}

Test(gc_weakdict, deletion_whose_compare_drops_another_key) /* 40 */
{
    zw_obj *d = zw_weakkeydict_new(rt);
    zw_obj *made = make_objects(4);
    for (size_t i = 0; i < 4; i++) {
        zw_obj *o = zw_list_get(made, (intptr_t)i);
        zw_obj *v = num(obj_value(o));
        zw_weakkeydict_set(d, o, v);
        zw_decref(v);
    }
    zw_obj *it = zw_weakkeydict_keys_iter(d);
    objs = zw_list_from_iter(it); /* the order the walk sees them, then reversed */
    zw_decref(it);
    zw_decref(made);
    cr_assert_eq(zw_list_len(objs), 4);
    zw_obj *rev = zw_list_new(rt, 4);
    for (intptr_t i = 3; i >= 0; i--)
        zw_list_append(rev, zw_list_get(objs, i));
    zw_decref(objs);
    objs = rev; /* the only strong references to the keys */
    mutate = true;
    int count = 0;
    for (size_t i = 0; i < zw_list_len(objs); i++) {
        zw_obj *o = zw_newref(zw_list_get(objs, (intptr_t)i));
        count++;
        cr_assert_eq(zw_weakkeydict_del(d, o), 0, "%s", zw_errmsg(rt));
        zw_decref(o);
    }
    mutate = false;
    cr_assert_gt(compares, 0, "the keys' compare ran");
    zw_gc_collect(rt, 2);
    cr_assert_eq(zw_weakkeydict_len(d), 0);
    cr_assert_eq(count, 2);
    zw_decref(objs);
    objs = NULL;
    zw_decref(d);
}

Test(gc_weakdict, container_dropped_by_a_keys_compare_during_a_lookup)
{
    zw_obj *d = zw_weakkeydict_new(rt);
    zw_obj *key = obj_new(1);
    zw_obj *twin = obj_new(1);
    zw_obj *one = num(1);
    cr_assert_eq(zw_weakkeydict_set(d, key, one), 0);
    zw_obj *r = zw_weakref_new(d, NULL);
    drop_on_compare = d; /* our only reference goes in the middle of the lookup */
    zw_obj *v = zw_weakkeydict_get(d, twin);
    cr_assert_eq(v, one);
    zw_decref(v);
    cr_assert_null(drop_on_compare);
    zw_obj *o = zw_weakref_get(r);
    cr_assert(zw_is_none(o), "gone once the lookup ended");
    zw_decref(o);
    cr_assert_eq(zw_weakref_count(key), 0);
    zw_decref(r);
    zw_decref(one);
    zw_decref(twin);
    zw_decref(key);
}

/* ---- len under cycles and collections (37) ---- */

typedef zw_obj *(*make_fn)(zw_obj *items);

/* {o: 1} / {i: o} of n self-referencing instances (only the collector frees them) */
static zw_obj *
cycles_keyed(zw_obj *items)
{
    zw_obj *d = zw_weakkeydict_new(rt);
    zw_obj *one = num(1);
    for (size_t i = 0; i < zw_list_len(items); i++)
        cr_assert_eq(zw_weakkeydict_set(d, zw_list_get(items, (intptr_t)i), one), 0);
    zw_decref(one);
    return d;
}

static zw_obj *
cycles_valued(zw_obj *items)
{
    zw_obj *d = zw_weakvaluedict_new(rt);
    for (size_t i = 0; i < zw_list_len(items); i++) {
        zw_obj *k = num((int64_t)i);
        cr_assert_eq(zw_weakvaluedict_set(d, k, zw_list_get(items, (intptr_t)i)), 0);
        zw_decref(k);
    }
    return d;
}

static zw_obj *
ref_cycles(zw_type *A, size_t n)
{
    zw_obj *items = zw_list_new(rt, n);
    for (size_t i = 0; i < n; i++) {
        zw_obj *a = zwt_new(A);
        zwt_set(a, "self", a);
        zw_list_append(items, a);
        zw_decref(a);
    }
    return items;
}

static size_t
len_of(zw_obj *d)
{
    return zw_weakkeydict_check(d) ? zw_weakkeydict_len(d) : zw_weakvaluedict_len(d);
}

static zw_obj *
items_of(zw_obj *d)
{
    return zw_weakkeydict_check(d) ? zw_weakkeydict_items_iter(d) : zw_weakvaluedict_items_iter(d);
}

static void
check_len_cycles(make_fn make)
{
    zw_type *A = zwt_make_class("RefCycle", false);
    zw_obj *items = ref_cycles(A, 20);
    zw_obj *d = make(items);
    zw_obj *it = items_of(d);
    zw_obj *first = zw_iter_next(it);
    cr_assert_not_null(first);
    zw_decref(first);
    zw_decref(items);
    zw_gc_collect(rt, 2);
    size_t n1 = len_of(d);
    zw_decref(it);
    zw_gc_collect(rt, 2);
    size_t n2 = len_of(d);
    cr_assert(n1 <= 1, "n1 = %zu", n1);
    cr_assert_eq(n2, 0);
    zw_decref(d);
}

static void
check_len_race(make_fn make)
{
    zw_type *A = zwt_make_class("RefCycle", false);
    zw_gc_enable(rt);
    for (int th = 1; th < 100; th++) {
        zw_gc_collect(rt, 0);
        int t[3] = {th, th, th};
        zw_gc_set_threshold(rt, t);
        zw_obj *items = ref_cycles(A, 20);
        zw_obj *d = make(items);
        zw_decref(items); /* all of them go at the next collection */
        zw_obj *it = items_of(d);
        zw_obj *x = zw_iter_next(it);
        zw_xdecref(x);
        cr_assert_eq(zw_err_occurred(rt), ZW_NoError, "%s", zw_errmsg(rt));
        size_t n1 = len_of(d);
        zw_decref(it);
        size_t n2 = len_of(d);
        cr_assert(n1 <= 20, "th %d: n1 = %zu", th, n1);
        cr_assert(n2 <= n1, "th %d: len grew from %zu to %zu", th, n1, n2);
        zw_decref(d);
    }
    int t[3] = {700, 10, 10};
    zw_gc_set_threshold(rt, t);
    zw_gc_disable(rt);
}

Test(gc_weakdict, key_dict_len_under_cycles) /* 37 */
{
    check_len_cycles(cycles_keyed);
}

Test(gc_weakdict, value_dict_len_under_cycles) /* 37 */
{
    check_len_cycles(cycles_valued);
}

Test(gc_weakdict, key_dict_len_under_collection_races) /* 37 */
{
    check_len_race(cycles_keyed);
}

Test(gc_weakdict, value_dict_len_under_collection_races) /* 37 */
{
    check_len_race(cycles_valued);
}

/* ---- deaths during iteration (38) ---- */

typedef zw_obj *(*iter_fn)(zw_obj *d);

static zw_obj *
keyrefs_iter(zw_obj *d)
{
    zw_obj *l = zw_weakkeydict_keyrefs(d);
    zw_obj *it = zw_iter(l);
    zw_decref(l);
    return it;
}

static zw_obj *
valuerefs_iter(zw_obj *d)
{
    zw_obj *l = zw_weakvaluedict_valuerefs(d);
    zw_obj *it = zw_iter(l);
    zw_decref(l);
    return it;
}

/* CPython's check_weak_destroy_while_iterating: one object dies after the first next(); the
 * walk goes on without it, and the removal is applied when the walk ends. */
static void
check_destroy_while_iterating(zw_obj *d, zw_obj *objects, iter_fn make_iter)
{
    size_t before = len_of(d);
    zw_obj *it = make_iter(d);
    cr_assert_not_null(it, "%s", zw_errmsg(rt));
    zw_obj *x = zw_iter_next(it);
    cr_assert_not_null(x);
    zw_decref(x);
    zw_decref(zw_list_pop(objects, -1)); /* dies now, while the walk is on */
    cr_assert_eq(len_of(d), before - 1, "len = stored - queued");
    size_t rest = 0;
    while ((x = zw_iter_next(it)) != NULL) {
        zw_decref(x);
        rest++;
    }
    cr_assert_eq(zw_err_occurred(rt), ZW_NoError, "%s", zw_errmsg(rt));
    cr_assert(rest == before - 2 || rest == before - 1, "rest %zu of %zu", rest, before);
    zw_decref(it);
    cr_assert_eq(len_of(d), before - 1);
}

Test(gc_weakdict, key_dict_objects_dying_during_iteration) /* 38 */
{
    zw_obj *objects = make_objects(N);
    zw_obj *d = make_keyed(objects);
    check_destroy_while_iterating(d, objects, zw_weakkeydict_keys_iter);
    check_destroy_while_iterating(d, objects, zw_weakkeydict_items_iter);
    check_destroy_while_iterating(d, objects, zw_weakkeydict_values_iter);
    check_destroy_while_iterating(d, objects, keyrefs_iter);
    check_destroy_while_iterating(d, objects, zw_iter);
    cr_assert_eq(zw_weakkeydict_len(d), N - 5);
    zw_decref(objects);
    zw_decref(d);
}

Test(gc_weakdict, value_dict_objects_dying_during_iteration) /* 38 */
{
    zw_obj *objects = make_objects(N);
    zw_obj *d = make_valued(objects);
    check_destroy_while_iterating(d, objects, zw_weakvaluedict_keys_iter);
    check_destroy_while_iterating(d, objects, zw_weakvaluedict_items_iter);
    check_destroy_while_iterating(d, objects, zw_weakvaluedict_values_iter);
    check_destroy_while_iterating(d, objects, valuerefs_iter);
    check_destroy_while_iterating(d, objects, zw_iter);
    cr_assert_eq(zw_weakvaluedict_len(d), N - 5);
    zw_decref(objects);
    zw_decref(d);
}

Test(gc_weakdict, removals_wait_for_the_last_of_two_walks) /* 38 */
{
    zw_obj *objects = make_objects(N);
    zw_obj *d = make_keyed(objects);
    zw_obj *it1 = zw_weakkeydict_keys_iter(d);
    zw_obj *it2 = zw_weakkeydict_values_iter(d);
    zw_decref(zw_list_pop(objects, 0));
    zw_decref(zw_list_pop(objects, 0));
    zw_decref(it1);
    cr_assert_eq(zw_weakkeydict_len(d), N - 2);
    cr_assert_eq(drain(it2), N - 2, "the dead keys are skipped");
    cr_assert_eq(zw_weakkeydict_len(d), N - 2);
    zw_decref(it2);
    zw_decref(objects);
    cr_assert_eq(zw_weakkeydict_len(d), 0);
    zw_decref(d);
}

/* The context of CPython's check_weak_destroy_and_mutate_while_iterating: a walk has begun and
 * the last object died (its removal queued); `k`, `v` stand for the dead entry, made anew. */
typedef struct ctx {
    zw_obj *it;
    zw_obj *k;
    zw_obj *v;
} ctx;

static ctx
ctx_enter(zw_obj *d, zw_obj *objects)
{
    ctx c;
    c.it = items_of(d);
    zw_obj *x = zw_iter_next(c.it);
    cr_assert_not_null(x, "%s", zw_errmsg(rt));
    zw_decref(x);
    zw_obj *last = zw_list_pop(objects, -1);
    int64_t value = obj_value(last);
    zw_decref(last);
    if (zw_weakkeydict_check(d)) { /* {Obj(v): v} */
        c.k = obj_new(value);
        c.v = num(value);
    } else { /* {v: Obj(v)} */
        c.k = num(value);
        c.v = obj_new(value);
    }
    return c;
}

static void
ctx_leave(ctx *c)
{
    zw_decref(c->it); /* applies the queued removals */
    zw_gc_collect(rt, 2);
}

static void
ctx_release(ctx *c)
{
    zw_decref(c->k);
    zw_decref(c->v);
}

static int
wd_set(zw_obj *d, zw_obj *k, zw_obj *v)
{
    return zw_weakkeydict_check(d) ? zw_weakkeydict_set(d, k, v) : zw_weakvaluedict_set(d, k, v);
}

static zw_obj *
wd_get(zw_obj *d, zw_obj *k)
{
    return zw_weakkeydict_check(d) ? zw_weakkeydict_get(d, k) : zw_weakvaluedict_get(d, k);
}

static int
wd_contains(zw_obj *d, zw_obj *k)
{
    return zw_weakkeydict_check(d) ? zw_weakkeydict_contains(d, k)
                                   : zw_weakvaluedict_contains(d, k);
}

static int
wd_del(zw_obj *d, zw_obj *k)
{
    return zw_weakkeydict_check(d) ? zw_weakkeydict_del(d, k) : zw_weakvaluedict_del(d, k);
}

static zw_obj *
wd_pop(zw_obj *d, zw_obj *k)
{
    return zw_weakkeydict_check(d) ? zw_weakkeydict_pop(d, k, NULL)
                                   : zw_weakvaluedict_pop(d, k, NULL);
}

static int
wd_popitem(zw_obj *d)
{
    zw_obj *k;
    zw_obj *v;
    int rc = zw_weakkeydict_check(d) ? zw_weakkeydict_popitem(d, &k, &v)
                                     : zw_weakvaluedict_popitem(d, &k, &v);
    if (rc == 0) {
        zw_decref(k);
        zw_decref(v);
    }
    return rc;
}

/* next(iter(d)), deleted: the first live key */
static void
wd_del_first(zw_obj *d)
{
    zw_obj *it = zw_iter(d);
    zw_obj *k = zw_iter_next(it);
    zw_decref(it);
    cr_assert_not_null(k);
    cr_assert_eq(wd_del(d, k), 0, "%s", zw_errmsg(rt));
    zw_decref(k);
}

static void
check_destroy_and_mutate_while_iterating(zw_obj *d, zw_obj *objects)
{
    ctx c = ctx_enter(d, objects);
    cr_assert_eq(wd_contains(d, c.k), 0, "the dead entry is not in it");
    ctx_leave(&c);
    ctx_release(&c);

    c = ctx_enter(d, objects);
    cr_assert_eq(wd_del(d, c.k), -1);
    expect_error(ZW_KeyError);
    ctx_leave(&c);
    cr_assert_eq(wd_contains(d, c.k), 0);
    ctx_release(&c);

    c = ctx_enter(d, objects);
    cr_assert_null(wd_pop(d, c.k));
    expect_error(ZW_KeyError);
    ctx_leave(&c);
    cr_assert_eq(wd_contains(d, c.k), 0);
    ctx_release(&c);

    c = ctx_enter(d, objects);
    size_t n = len_of(d);
    cr_assert_eq(wd_set(d, c.k, c.v), 0, "re-inserting the dead entry's key: %s", zw_errmsg(rt));
    cr_assert_eq(len_of(d), n + 1);
    ctx_leave(&c);
    cr_assert_eq(len_of(d), n + 1, "the queued removal did not take the new entry");
    zw_obj *got = wd_get(d, c.k);
    cr_assert_not_null(got);
    cr_assert_eq(got, c.v);
    zw_decref(got);
    ctx_release(&c); /* the new entry's weak side dies: removed at once */
    cr_assert_eq(len_of(d), n);

    zw_obj *copy = zw_weakkeydict_check(d) ? zw_weakkeydict_copy(d) : zw_weakvaluedict_copy(d);
    c = ctx_enter(d, objects);
    int rc =
        zw_weakkeydict_check(d) ? zw_weakkeydict_update(d, copy) : zw_weakvaluedict_update(d, copy);
    cr_assert_eq(rc, 0, "%s", zw_errmsg(rt));
    ctx_leave(&c);
    ctx_release(&c);
    cr_assert_eq(len_of(d), len_of(copy));
    cr_assert_eq(len_of(d), zw_list_len(objects));
    zw_decref(copy);
}

Test(gc_weakdict, key_dict_mutated_while_objects_die_during_iteration) /* 38 */
{
    zw_obj *objects = make_objects(N);
    zw_obj *d = make_keyed(objects);
    check_destroy_and_mutate_while_iterating(d, objects);
    zw_decref(objects);
    cr_assert_eq(zw_weakkeydict_len(d), 0);
    zw_decref(d);
}

Test(gc_weakdict, value_dict_mutated_while_objects_die_during_iteration) /* 38 */
{
    zw_obj *objects = make_objects(N);
    zw_obj *d = make_valued(objects);
    check_destroy_and_mutate_while_iterating(d, objects);
    zw_decref(objects);
    cr_assert_eq(zw_weakvaluedict_len(d), 0);
    zw_decref(d);
}

/* CPython's check_weak_del_and_len_while_iterating (issue 21173): len stays right when entries
 * go explicitly while removals are queued. */
static void
check_del_and_len_while_iterating(zw_obj *d, zw_obj *objects)
{
    zw_obj *o = obj_new(123456);
    zw_obj *ok = zw_weakkeydict_check(d) ? zw_newref(o) : num(123456);
    ctx c = ctx_enter(d, objects);
    size_t n = len_of(d);
    wd_del_first(d);
    cr_assert_eq(len_of(d), n - 1);
    cr_assert_eq(wd_set(d, ok, o), 0);
    cr_assert_eq(len_of(d), n);
    ctx_leave(&c);
    ctx_release(&c);

    c = ctx_enter(d, objects);
    cr_assert_eq(len_of(d), n - 1);
    cr_assert_eq(wd_popitem(d), 0, "%s", zw_errmsg(rt)); /* (o, o) */
    cr_assert_eq(len_of(d), n - 2);
    ctx_leave(&c);
    ctx_release(&c);

    c = ctx_enter(d, objects);
    cr_assert_eq(len_of(d), n - 3);
    wd_del_first(d);
    cr_assert_eq(len_of(d), n - 4);
    ctx_leave(&c);
    ctx_release(&c);

    c = ctx_enter(d, objects);
    cr_assert_eq(len_of(d), n - 5);
    cr_assert_eq(wd_popitem(d), 0, "%s", zw_errmsg(rt));
    cr_assert_eq(len_of(d), n - 6);
    ctx_leave(&c);
    ctx_release(&c);
    cr_assert_eq(len_of(d), n - 6);
    zw_decref(ok);
    zw_decref(o);
}

Test(gc_weakdict, key_dict_len_with_explicit_and_queued_removals) /* 38 */
{
    zw_obj *objects = make_objects(N);
    zw_obj *d = make_keyed(objects);
    check_del_and_len_while_iterating(d, objects);
    zw_decref(objects);
    cr_assert_eq(zw_weakkeydict_len(d), 0);
    zw_decref(d);
}

Test(gc_weakdict, value_dict_len_with_explicit_and_queued_removals) /* 38 */
{
    zw_obj *objects = make_objects(N);
    zw_obj *d = make_valued(objects);
    check_del_and_len_while_iterating(d, objects);
    zw_decref(objects);
    cr_assert_eq(zw_weakvaluedict_len(d), 0);
    zw_decref(d);
}

Test(gc_weakdict, adding_during_a_walk_fails_its_next_call)
{
    zw_obj *objects = make_objects(3);
    zw_obj *d = make_valued(objects);
    zw_obj *it = zw_weakvaluedict_keys_iter(d);
    zw_obj *x = zw_iter_next(it);
    zw_decref(x);
    zw_obj *k = num(99);
    zw_weakvaluedict_set(d, k, zw_list_get(objects, 0));
    cr_assert_null(zw_iter_next(it));
    cr_assert_str_eq(zw_errmsg(rt),
                     "RuntimeError: WeakValueDictionary changed size during iteration");
    zw_err_clear(rt);
    cr_assert_null(zw_iter_next(it), "stays exhausted");
    cr_assert_eq(zw_err_occurred(rt), ZW_NoError);
    zw_decref(it);
    zw_decref(k);
    zw_decref(objects);
    zw_decref(d);
}

/* ---- construction, update, setdefault, popitem (39) ---- */

Test(gc_weakdict, value_dict_from_dict_and_weak_dict_like_dict) /* 39 */
{
    zw_obj *objects = make_objects(3);
    zw_obj *plain = zw_dict_new(rt);
    for (size_t i = 0; i < 3; i++) {
        zw_obj *k = num((int64_t)i);
        zw_dict_set(plain, k, zw_list_get(objects, (intptr_t)i));
        zw_decref(k);
    }
    zw_obj *d = zw_weakvaluedict_new(rt);
    cr_assert_eq(zw_weakvaluedict_update(d, plain), 0, "%s", zw_errmsg(rt));
    cr_assert_eq(zw_weakvaluedict_len(d), 3);
    zw_obj *d2 = zw_weakvaluedict_new(rt);
    cr_assert_eq(zw_weakvaluedict_update(d2, d), 0, "%s", zw_errmsg(rt));
    for (size_t i = 0; i < 3; i++) {
        zw_obj *k = num((int64_t)i);
        zw_obj *v = zw_weakvaluedict_get(d2, k);
        cr_assert_eq(v, zw_list_get(objects, (intptr_t)i));
        zw_decref(v);
        zw_decref(k);
    }
    /* update overwrites: {0: objects[2]} */
    zw_obj *k0 = num(0);
    zw_obj *o2 = zw_list_get(objects, 2);
    zw_dict_clear(plain);
    zw_dict_set(plain, k0, o2);
    cr_assert_eq(zw_weakvaluedict_update(d2, plain), 0);
    zw_obj *v = zw_weakvaluedict_get(d2, k0);
    cr_assert_eq(v, o2);
    zw_decref(v);
    cr_assert_eq(zw_weakvaluedict_len(d2), 3);
    /* setdefault: the existing value stays; a missing key takes the default */
    v = zw_weakvaluedict_setdefault(d2, k0, zw_list_get(objects, 0));
    cr_assert_eq(v, o2);
    zw_decref(v);
    zw_obj *k9 = num(9);
    v = zw_weakvaluedict_setdefault(d2, k9, zw_list_get(objects, 1));
    cr_assert_eq(v, zw_list_get(objects, 1));
    zw_decref(v);
    cr_assert_eq(zw_weakvaluedict_len(d2), 4);
    /* popitem: the last inserted first, then KeyError when empty */
    zw_obj *pk;
    zw_obj *pv;
    cr_assert_eq(zw_weakvaluedict_popitem(d2, &pk, &pv), 0);
    cr_assert_eq(zw_int_as_i64(pk), 9);
    cr_assert_eq(pv, zw_list_get(objects, 1));
    zw_decref(pk);
    zw_decref(pv);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(zw_weakvaluedict_popitem(d2, &pk, &pv), 0);
        cr_assert_eq(zw_int_as_i64(pk), 2 - i);
        zw_decref(pk);
        zw_decref(pv);
    }
    cr_assert_eq(zw_weakvaluedict_popitem(d2, &pk, &pv), -1);
    cr_assert_str_eq(zw_errmsg(rt), "KeyError: popitem(): dictionary is empty");
    zw_err_clear(rt);
    cr_assert_eq(zw_weakvaluedict_len(d2), 0);
    /* update from something else */
    cr_assert_eq(zw_weakvaluedict_update(d2, objects), -1);
    expect_error(ZW_TypeError);
    zw_obj *kd = zw_weakkeydict_new(rt);
    cr_assert_eq(zw_weakvaluedict_update(d2, kd), -1, "a WeakKeyDictionary is not a source");
    expect_error(ZW_TypeError);
    zw_decref(kd);
    zw_decref(k9);
    zw_decref(k0);
    zw_decref(d2);
    zw_decref(d);
    zw_decref(plain);
    zw_decref(objects);
}

Test(gc_weakdict, key_dict_from_dict_and_weak_dict_like_dict) /* 39 */
{
    zw_obj *objects = make_objects(3);
    zw_obj *plain = zw_dict_new(rt);
    for (size_t i = 0; i < 3; i++) {
        zw_obj *v = num((int64_t)i);
        zw_dict_set(plain, zw_list_get(objects, (intptr_t)i), v);
        zw_decref(v);
    }
    zw_obj *d = zw_weakkeydict_new(rt);
    cr_assert_eq(zw_weakkeydict_update(d, plain), 0, "%s", zw_errmsg(rt));
    zw_obj *d2 = zw_weakkeydict_new(rt);
    cr_assert_eq(zw_weakkeydict_update(d2, d), 0, "%s", zw_errmsg(rt));
    cr_assert_eq(zw_weakkeydict_len(d2), 3);
    for (size_t i = 0; i < 3; i++) {
        zw_obj *o = zw_list_get(objects, (intptr_t)i);
        zw_obj *v = zw_weakkeydict_get(d2, o);
        cr_assert_eq(zw_int_as_i64(v), (int64_t)i);
        zw_decref(v);
        cr_assert_eq(zw_weakref_count(o), 2, "one weakref per container");
    }
    /* an equal key made anew finds the stored one; the stored key stays */
    zw_obj *twin = obj_new(0);
    zw_obj *v42 = num(42);
    cr_assert_eq(zw_weakkeydict_set(d2, twin, v42), 0);
    cr_assert_eq(zw_weakkeydict_len(d2), 3);
    cr_assert_eq(zw_weakref_count(twin), 0, "the stored key stayed");
    zw_obj *v = zw_weakkeydict_setdefault(d2, twin, zw_none(rt));
    cr_assert_eq(v, v42);
    zw_decref(v);
    zw_obj *extra = obj_new(7);
    v = zw_weakkeydict_setdefault(d2, extra, v42);
    cr_assert_eq(v, v42);
    zw_decref(v);
    cr_assert_eq(zw_weakkeydict_len(d2), 4);
    v = zw_weakkeydict_pop(d2, twin, NULL);
    cr_assert_eq(v, v42);
    zw_decref(v);
    cr_assert_null(zw_weakkeydict_pop(d2, twin, NULL));
    expect_error(ZW_KeyError);
    v = zw_weakkeydict_pop(d2, twin, zw_none(rt));
    cr_assert(zw_is_none(v));
    zw_decref(v);
    zw_obj *pk;
    zw_obj *pv;
    cr_assert_eq(zw_weakkeydict_popitem(d2, &pk, &pv), 0);
    cr_assert_eq(pk, extra, "the last inserted first");
    zw_decref(pk);
    zw_decref(pv);
    cr_assert_eq(zw_weakkeydict_len(d2), 2);
    zw_obj *refs = zw_weakkeydict_keyrefs(d2);
    cr_assert_eq(zw_list_len(refs), 2);
    zw_decref(refs);
    zw_decref(extra);
    zw_decref(v42);
    zw_decref(twin);
    zw_decref(d2);
    zw_decref(d);
    zw_decref(plain);
    zw_decref(objects);
}

/* ---- WeakSet ---- */

Test(gc_weakdict, weak_set_members_come_and_go)
{
    zw_type *A = zwt_make_class("A", false);
    zw_obj *s = zw_weakset_new(rt);
    cr_assert(zw_weakset_check(s));
    zw_obj *objects = make_objects(N);
    for (size_t i = 0; i < N; i++)
        cr_assert_eq(zw_weakset_add(s, zw_list_get(objects, (intptr_t)i)), 0);
    cr_assert_eq(zw_weakset_add(s, zw_list_get(objects, 0)), 0, "twice is once");
    cr_assert_eq(zw_weakset_len(s), N);
    cr_assert_eq(zw_weakref_count(zw_list_get(objects, 0)), 1);
    zw_obj *twin = obj_new(3);
    cr_assert_eq(zw_weakset_contains(s, twin), 1, "equal members are found");
    zw_obj *i34 = num(34);
    cr_assert_eq(zw_weakset_contains(s, i34), 0);
    cr_assert_eq(zw_weakset_discard(s, i34), 0);
    cr_assert_eq(zw_weakset_add(s, i34), -1);
    expect_error(ZW_TypeError);
    cr_assert_eq(zw_weakset_discard(s, twin), 0);
    cr_assert_eq(zw_weakset_contains(s, twin), 0);
    cr_assert_eq(zw_weakset_discard(s, twin), 0, "absent: no error");
    cr_assert_eq(zw_weakset_len(s), N - 1);
    /* a walk sees live members; one that dies meanwhile waits for the walk's end */
    zw_obj *it = zw_weakset_iter(s);
    zw_obj *x = zw_iter_next(it);
    cr_assert_not_null(x);
    zw_decref(x);
    zw_decref(zw_list_pop(objects, -1));
    cr_assert_eq(zw_weakset_len(s), N - 2);
    cr_assert_eq(drain(it), N - 3);
    zw_decref(it);
    cr_assert_eq(zw_weakset_len(s), N - 2);
    /* members the collector frees */
    zw_obj *a = zwt_new(A);
    zwt_set(a, "self", a);
    cr_assert_eq(zw_weakset_add(s, a), 0);
    zw_decref(a);
    cr_assert_eq(zw_weakset_len(s), N - 1);
    zw_gc_collect(rt, 2);
    cr_assert_eq(zw_weakset_len(s), N - 2);
    zw_decref(objects);
    cr_assert_eq(zw_weakset_len(s), 0);
    zw_decref(i34);
    zw_decref(twin);
    zw_decref(s);
}

/* ---- the containers' own lifetime ---- */

Test(gc_weakdict, containers_die_by_refcount)
{
    zw_obj *objects = make_objects(3);
    zw_obj *ds[] = {make_valued(objects), make_keyed(objects), zw_weakset_new(rt)};
    zw_weakset_add(ds[2], zw_list_get(objects, 0));
    for (size_t i = 0; i < 3; i++) {
        zw_obj *r = zw_weakref_new(ds[i], NULL);
        cr_assert_not_null(r, "containers take weak references");
        zw_decref(ds[i]);
        zw_obj *o = zw_weakref_get(r);
        cr_assert(zw_is_none(o), "no cycle keeps a container alive");
        zw_decref(o);
        zw_decref(r);
    }
    for (size_t i = 0; i < 3; i++)
        cr_assert_eq(zw_weakref_count(zw_list_get(objects, (intptr_t)i)), 0);
    zw_decref(objects);
}

Test(gc_weakdict, container_in_a_cycle_through_its_values_is_collected)
{
    zw_obj *objects = make_objects(2);
    zw_obj *d = make_keyed(objects);
    zw_obj *l = zw_list_new(rt, 0);
    zw_list_append(l, d);
    zw_weakkeydict_set(d, zw_list_get(objects, 0), l); /* d -> l -> d */
    zw_obj *it = zw_weakkeydict_items_iter(d);
    zw_obj *x = zw_iter_next(it);
    zw_decref(x);
    zw_list_append(l, it); /* a walk in the cycle too */
    zw_decref(it);
    zw_decref(zw_list_pop(objects, -1)); /* a removal queued by the walk */
    zw_obj *r = zw_weakref_new(d, NULL);
    zw_decref(l);
    zw_decref(d);
    cr_assert_gt(zw_gc_collect(rt, 2), 0);
    zw_obj *o = zw_weakref_get(r);
    cr_assert(zw_is_none(o));
    zw_decref(o);
    zw_decref(r);
    cr_assert_eq(zw_weakref_count(zw_list_get(objects, 0)), 0);
    zw_decref(objects);
}

Test(gc_weakdict, no_block_leaks)
{
    zw_obj *probe = make_objects(1); /* makes the Obj type before the baseline */
    zw_decref(probe);
    zw_gc_collect(rt, 2);
    size_t before = zw_rt_allocated_blocks(rt);
    for (int round = 0; round < 3; round++) {
        zw_obj *objects = make_objects(N);
        zw_obj *v = make_valued(objects);
        zw_obj *k = make_keyed(objects);
        zw_obj *it1 = zw_weakvaluedict_items_iter(v);
        zw_obj *it2 = zw_weakkeydict_items_iter(k);
        zw_decref(zw_iter_next(it1));
        zw_decref(zw_iter_next(it2));
        zw_decref(zw_list_pop(objects, 0));
        zw_obj *c = zw_weakkeydict_copy(k);
        zw_decref(it1);
        zw_decref(objects);
        zw_decref(c);
        zw_decref(v);
        zw_decref(it2);
        zw_decref(k);
    }
    zw_gc_collect(rt, 2);
    cr_assert_eq(zw_rt_allocated_blocks(rt), before, "blocks: %zu -> %zu", before,
                 zw_rt_allocated_blocks(rt));
}

/* Each allocation of a workload fails in turn: an error or success, never a leak or a crash. */
static int
fault_workload(zw_obj *objects)
{
    int rc = -1;
    zw_obj *v = zw_weakvaluedict_new(rt);
    zw_obj *k = zw_weakkeydict_new(rt);
    zw_obj *it = NULL;
    if (v == NULL || k == NULL)
        goto out;
    for (size_t i = 0; i < 4; i++) {
        zw_obj *o = zw_list_get(objects, (intptr_t)i);
        zw_obj *n = zw_int_from_i64(rt, (int64_t)i);
        if (n == NULL)
            goto out;
        int a = zw_weakvaluedict_set(v, n, o);
        int b = zw_weakkeydict_set(k, o, n);
        zw_decref(n);
        if (a != 0 || b != 0)
            goto out;
    }
    if ((it = zw_weakkeydict_items_iter(k)) == NULL)
        goto out;
    zw_obj *x = zw_iter_next(it);
    if (x == NULL)
        goto out;
    zw_decref(x);
    zw_decref(zw_list_pop(objects, 0)); /* queued */
    zw_decref(zw_list_pop(objects, 0));
    zw_obj *c = zw_weakvaluedict_copy(v);
    if (c == NULL)
        goto out;
    zw_decref(c);
    rc = 0;
out:
    zw_xdecref(it);
    zw_xdecref(k);
    zw_xdecref(v);
    return rc;
}

Test(gc_weakdict, failed_allocations_leak_nothing)
{
    zw_decref(make_objects(1));
    zw_gc_collect(rt, 2);
    size_t before = zw_rt_allocated_blocks(rt);
    for (long n = 1;; n++) {
        zw_obj *objects = make_objects(4);
        zw_rt_fail_nth(rt, n);
        int rc = fault_workload(objects);
        bool fired = zw_rt_fault_fired(rt);
        zw_rt_fail_nth(rt, 0);
        if (zw_err_occurred(rt) != ZW_NoError)
            zw_err_clear(rt);
        zw_decref(objects);
        cr_assert(rc == 0 || fired, "failed with no fault injected (n=%ld)", n);
        zw_gc_collect(rt, 2);
        cr_assert_eq(zw_rt_allocated_blocks(rt), before, "leak when allocation %ld failed", n);
        if (!fired)
            break;
    }
}

/* ---- a seeded model run ---- */

/* Random operations on the three kinds with walks held open, automatic collections at low
 * thresholds and self-referencing members; whenever no walk is open, len must equal the live
 * entries a walk sees. ZW_WEAKDICT_STEPS scales it (default 20000). */
Test(gc_weakdict, random_operations_keep_len_exact)
{
    enum { NOBJ = 48, NIT = 4 };
    const char *env = getenv("ZW_WEAKDICT_STEPS");
    long steps = env ? atol(env) : 20000;
    unsigned seed = 20261128;
    srand(seed);
    cr_log_info("seed %u, %ld steps", seed, steps);
    zw_type *A = zwt_make_class("A", false);
    int th[3] = {3, 2, 2};
    zw_gc_set_threshold(rt, th);
    zw_gc_enable(rt);
    zw_obj *objs_[NOBJ] = {0};
    zw_obj *ds[3] = {zw_weakvaluedict_new(rt), zw_weakkeydict_new(rt), zw_weakset_new(rt)};
    zw_obj *its[NIT] = {0};
    for (long step = 0; step < steps; step++) {
        int r = rand() % 100;
        int i = rand() % NOBJ;
        int d = rand() % 3;
        int s = rand() % NIT;
        zw_obj *k = num(i);
        zw_obj *kk;
        zw_obj *vv;
        if (r < 30) {
            if (objs_[i] == NULL) {
                objs_[i] = zwt_new(A);
                if (rand() % 2)
                    zwt_set(objs_[i], "self", objs_[i]);
            }
            int rc = d == 0   ? zw_weakvaluedict_set(ds[0], k, objs_[i])
                     : d == 1 ? zw_weakkeydict_set(ds[1], objs_[i], k)
                              : zw_weakset_add(ds[2], objs_[i]);
            cr_assert_eq(rc, 0, "%s", zw_errmsg(rt));
        } else if (r < 50) {
            ZW_CLEAR(objs_[i]);
        } else if (r < 60) {
            ZW_SETREF(its[s], d == 0   ? zw_weakvaluedict_items_iter(ds[0])
                              : d == 1 ? zw_weakkeydict_items_iter(ds[1])
                                       : zw_weakset_iter(ds[2]));
        } else if (r < 75) {
            zw_obj *x = its[s] ? zw_iter_next(its[s]) : NULL;
            if (x != NULL)
                zw_decref(x);
            else if (zw_err_occurred(rt) != ZW_NoError)
                expect_error(ZW_RuntimeError); /* a walk whose container changed size */
        } else if (r < 80) {
            ZW_CLEAR(its[s]);
        } else if (r < 90 && objs_[i] != NULL) {
            int rc = d == 0   ? zw_weakvaluedict_del(ds[0], k)
                     : d == 1 ? zw_weakkeydict_del(ds[1], objs_[i])
                              : zw_weakset_discard(ds[2], objs_[i]);
            if (rc != 0)
                expect_error(ZW_KeyError);
        } else if (r < 93 && d < 2) {
            int rc = d == 0 ? zw_weakvaluedict_popitem(ds[0], &kk, &vv)
                            : zw_weakkeydict_popitem(ds[1], &kk, &vv);
            if (rc == 0) {
                zw_decref(kk);
                zw_decref(vv);
            } else {
                expect_error(ZW_KeyError);
            }
        } else if (r < 95 && d < 2) {
            zw_obj *c = d == 0 ? zw_weakvaluedict_copy(ds[0]) : zw_weakkeydict_copy(ds[1]);
            cr_assert_not_null(c);
            zw_decref(c);
        } else if (r >= 95) {
            zw_gc_collect(rt, rand() % 3);
        }
        zw_decref(k);
        cr_assert_eq(zw_err_occurred(rt), ZW_NoError, "step %ld: %s", step, zw_errmsg(rt));
        bool walking = false;
        for (int j = 0; j < NIT; j++)
            walking |= its[j] != NULL;
        for (int j = 0; j < 3 && !walking && step % 61 == 0; j++) {
            zw_obj *it = zw_iter(ds[j]);
            size_t live = drain(it);
            zw_decref(it);
            size_t len = j == 0   ? zw_weakvaluedict_len(ds[j])
                         : j == 1 ? zw_weakkeydict_len(ds[j])
                                  : zw_weakset_len(ds[j]);
            cr_assert_eq(len, live, "step %ld, %s: len %zu, live %zu", step,
                         zw_type_name(zw_type_of(ds[j])), len, live);
        }
    }
    for (int j = 0; j < NIT; j++)
        zw_xdecref(its[j]);
    for (int j = 0; j < NOBJ; j++)
        zw_xdecref(objs_[j]);
    for (int j = 0; j < 3; j++)
        zw_decref(ds[j]);
    zw_gc_disable(rt);
}
