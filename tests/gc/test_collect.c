/* tests/gc/test_collect.c - the reference's test_gc scenarios (section 6.1 of
 * cpython-memory.md), ported to C; the number in each test's comment is the scenario's. */
#include <signal.h>

#include "zw_debug_test.h"
#include "zw_gc_test.h"

TestSuite(gc_collect, .init = zwt_gc_setup, .fini = zwt_gc_teardown);

Test(gc_collect, list_self_cycle_is_one) /* 1 */
{
    zw_obj *l = zwt_self_list();
    zw_decref(l);
    cr_assert_eq(zw_gc_collect(rt, 2), 1);
}

Test(gc_collect, dict_self_cycle_is_one) /* 2 */
{
    zw_obj *d = zw_dict_new(rt);
    zw_obj *k = zw_int_from_i64(rt, 1);
    zw_dict_set(d, k, d);
    zw_decref(k);
    zw_decref(d);
    cr_assert_eq(zw_gc_collect(rt, 2), 1);
}

Test(gc_collect, list_tuple_cycle_is_two) /* 3 */
{
    zw_obj *l = zw_list_new(rt, 0);
    zw_obj *t = zw_tuple_pack(rt, 1, l);
    zw_list_append(l, t);
    zw_decref(t);
    zw_decref(l);
    cr_assert_eq(zw_gc_collect(rt, 2), 2);
}

Test(gc_collect, instance_self_cycle_is_one_then_two_with_its_dict) /* 5 */
{
    zw_type *A = zwt_make_class("A", false);
    zw_obj *a = zwt_new(A);
    zwt_set(a, "a", a);
    zw_decref(a);
    cr_assert_eq(zw_gc_collect(rt, 2), 1, "the values array is not an object");
    a = zwt_new(A);
    zwt_set(a, "a", a);
    zw_decref(zw_obj_dict(a)); /* touching __dict__ materialises it */
    zw_decref(a);
    cr_assert_eq(zw_gc_collect(rt, 2), 2);
}

Test(gc_collect, instance_holding_its_own_bound_method) /* 7 */
{
    static const zw_method m[] = {{"init", d_del, 0, NULL}, {NULL, NULL, 0, NULL}};
    zw_class_spec spec = {.name = "M", .methods = m};
    zw_type *M = zw_class_new(rt, &spec);
    zw_obj *a = zwt_new(M);
    zw_obj *bound = zw_getattr(a, "init");
    zwt_set(a, "init", bound);
    zw_decref(bound);
    zw_decref(a);
    cr_assert_eq(zw_gc_collect(rt, 2), 2);
}

Test(gc_collect, a_function_bound_to_the_list_holding_it) /* 9, functions */
{
    static const zw_method def = {"f", d_del, 0, NULL};
    zw_obj *l = zw_list_new(rt, 0);
    zw_obj *f = zw_func_new(rt, &def, l);
    zw_list_append(l, f);
    zw_decref(f);
    zw_decref(l);
    cr_assert_eq(zw_gc_collect(rt, 2), 2);
}

Test(gc_collect, legacy_finalizer_cycle_is_uncollectable) /* 8 */
{
    zw_obj *x = zwt_legacy(NULL);
    ((legacy *)x)->a = zw_newref(x);
    zw_obj *l = zwt_self_list();
    zw_decref(x);
    zw_decref(l);
    cr_assert_eq(zw_gc_collect(rt, 2), 2);
    zw_obj *g = zw_gc_garbage(rt);
    cr_assert_eq(zw_list_len(g), 1);
    cr_assert_eq(zw_list_get(g, 0), x, "the tp_del object is kept, the list freed");
    zw_gc_stats st[3];
    zw_gc_get_stats(rt, st);
    cr_assert_eq(st[2].uncollectable, 1);
    cr_assert_eq(st[2].collected, 1);
    legacy_clear(x); /* break it for the teardown */
}

Test(gc_collect, saveall_keeps_what_it_finds) /* 11 */
{
    zw_gc_set_debug(rt, ZW_GC_DEBUG_SAVEALL);
    zw_obj *l = zwt_self_list();
    zw_decref(l);
    cr_assert_eq(zw_gc_collect(rt, 2), 1);
    zw_obj *g = zw_gc_garbage(rt);
    cr_assert_eq(zw_list_len(g), 1);
    cr_assert_eq(zw_list_get(g, 0), l, "the same object, alive");
    zw_gc_set_debug(rt, 0);
    zw_list_pop(g, 0);
    zw_decref(l);
    cr_assert_eq(zw_gc_collect(rt, 2), 1);
}

static zw_obj *
del_allocates(zw_obj *self, zw_obj *const *args, size_t nargs)
{
    zw_rt *r = zw_rt_of(self);
    for (int i = 0; i < 50; i++) {
        zw_obj *l = zw_list_new(r, 0);
        zw_list_append(l, l);
        zw_decref(l);
    }
    return zw_newref(zw_none(r));
}

Test(gc_collect, collection_during_a_finalizer_that_allocates) /* 12 */
{
    static const zw_method m[] = {{"__del__", del_allocates, 0, NULL}, {NULL, NULL, 0, NULL}};
    zw_class_spec spec = {.name = "Alloc", .methods = m};
    zw_type *T = zw_class_new(rt, &spec);
    int th[3] = {1, 1, 1};
    zw_gc_set_threshold(rt, th);
    zw_gc_enable(rt);
    for (int i = 0; i < 20; i++) {
        zw_obj *a = zwt_new(T);
        zwt_set(a, "me", a);
        zw_decref(a);
    }
    zw_gc_disable(rt);
    int d[3] = {700, 10, 10};
    zw_gc_set_threshold(rt, d);
    zw_gc_collect(rt, 2);
    zw_gc_collect(rt, 2);
}

Test(gc_collect, counts_after_a_collection) /* 13 */
{
    zw_gc_collect(rt, 2);
    int c[3];
    zw_gc_get_count(rt, c);
    cr_assert_eq(c[1], 0);
    cr_assert_eq(c[2], 0);
    cr_assert_lt(c[0], 5);
    zw_obj *l = zw_list_new(rt, 0);
    zw_obj *d = zw_dict_new(rt);
    int c2[3];
    zw_gc_get_count(rt, c2);
    cr_assert_gt(c2[0], c[0], "allocating GC objects raises count0");
    zw_decref(l);
    zw_decref(d);
}

Test(gc_collect, objects_trickle_through_the_generations) /* 14, 26 */
{
    zw_gc_collect(rt, 2);
    zw_obj *l = zwt_self_list();
    int c[3];
    zw_gc_collect(rt, 0);
    zw_gc_get_count(rt, c);
    cr_assert(c[1] == 1 && c[2] == 0, "(%d, %d)", c[1], c[2]);
    zw_obj *g1 = zw_gc_get_objects(rt, 1);
    cr_assert_eq(zw_list_len(g1), 1);
    cr_assert_eq(zw_list_get(g1, 0), l);
    zw_decref(g1);
    zw_gc_collect(rt, 1);
    zw_gc_get_count(rt, c);
    cr_assert(c[1] == 0 && c[2] == 1, "(%d, %d)", c[1], c[2]);
    zw_obj *g2 = zw_gc_get_objects(rt, 2);
    bool found = false;
    for (size_t i = 0; i < zw_list_len(g2); i++)
        found |= zw_list_get(g2, (intptr_t)i) == l;
    cr_assert(found, "in generation 2");
    zw_decref(g2);
    zw_gc_collect(rt, 2);
    zw_gc_get_count(rt, c);
    cr_assert(c[1] == 0 && c[2] == 0);
    zw_obj *g0 = zw_gc_get_objects(rt, 0);
    cr_assert_eq(zw_list_len(g0), 0, "the returned list is not listed");
    zw_decref(g0);
    zw_list_pop(l, 0);
    zw_decref(l);
    zw_decref(l);
}

Test(gc_collect, deeply_nested_containers_die_without_a_crash) /* 15 */
{
    zw_obj *outer = zw_list_new(rt, 0);
    zw_obj *cur = outer;
    zw_incref(cur);
    for (int i = 0; i < 20000; i++) {
        zw_obj *inner = zw_list_new(rt, 0);
        zw_list_append(cur, inner);
        zw_decref(cur);
        cur = inner;
    }
    zw_list_append(cur, outer); /* close the cycle: the whole chain is garbage */
    zw_decref(cur);
    zw_decref(outer);
    cr_assert_eq(zw_gc_collect(rt, 2), 20001);
}

Test(gc_collect, get_referents_lists_what_traverse_visits) /* 17 */
{
    zw_obj *one = zw_int_from_i64(rt, 1), *three = zw_int_from_i64(rt, 3);
    zw_obj *l = zw_list_new(rt, 0);
    zw_list_append(l, one);
    zw_list_append(l, three);
    zw_obj *d = zw_dict_new(rt);
    zw_dict_set(d, one, three);
    zw_obj *args[] = {l, d};
    zw_obj *r = zw_gc_get_referents(rt, 2, args);
    cr_assert_eq(zw_list_len(r), 4);
    zw_obj *atoms[] = {one, three};
    zw_obj *none = zw_gc_get_referents(rt, 2, atoms);
    cr_assert_eq(zw_list_len(none), 0, "atoms contribute nothing");
    zw_obj *refs = zw_gc_get_referrers(rt, 1, &l);
    cr_assert_eq(zw_list_len(refs), 0);
    zw_obj *holder = zw_list_new(rt, 0);
    zw_list_append(holder, l);
    zw_obj *refs2 = zw_gc_get_referrers(rt, 1, &l);
    cr_assert_eq(zw_list_len(refs2), 1);
    cr_assert_eq(zw_list_get(refs2, 0), holder);
    zw_decref(refs2), zw_decref(holder), zw_decref(refs), zw_decref(none), zw_decref(r);
    zw_decref(d), zw_decref(l), zw_decref(one), zw_decref(three);
}

Test(gc_collect, is_tracked_for_atoms_and_containers) /* 18 */
{
    zw_obj *i = zw_int_from_i64(rt, 5), *f = zw_float_new(rt, 1.5), *s = zw_str_new(rt, "x");
    zw_obj *b = zw_bytes_new(rt, "x", 1);
    cr_assert_not(zw_gc_is_tracked(zw_none(rt)));
    cr_assert_not(zw_gc_is_tracked(i));
    cr_assert_not(zw_gc_is_tracked(f));
    cr_assert_not(zw_gc_is_tracked(s));
    cr_assert_not(zw_gc_is_tracked(b));
    cr_assert_not(zw_gc_is_tracked(zw_true(rt)));
    cr_assert_not(zw_gc_is_tracked((zw_obj *)zw_builtin_type(rt, ZW_T_INT)));
    zw_obj *l = zw_list_new(rt, 0);
    cr_assert(zw_gc_is_tracked(l));
    zw_type *A = zwt_make_class("A", false);
    zw_obj *a = zwt_new(A);
    cr_assert(zw_gc_is_tracked(a));
    const char *none[] = {NULL};
    zw_class_spec sspec = {.name = "E", .layout = ZW_LAYOUT_SLOTS, .fields = none};
    zw_obj *e = zwt_new(zw_class_new(rt, &sspec));
    cr_assert(zw_gc_is_tracked(e), "empty __slots__ instances are tracked");
    zw_decref(e), zw_decref(a), zw_decref(l), zw_decref(i), zw_decref(f), zw_decref(s);
    zw_decref(b);
}

Test(gc_collect, is_finalized_after_a_resurrecting_del) /* 19, 28 */
{
    zw_obj *three = zw_int_from_i64(rt, 3);
    cr_assert_not(zw_gc_is_finalized(three));
    zw_type *D = zwt_make_class("D", true);
    resurrect = true;
    zw_obj *d = zwt_new(D);
    cr_assert_not(zw_gc_is_finalized(d));
    zwt_set(d, "me", d);
    zw_decref(d);
    cr_assert_eq(zw_gc_collect(rt, 2), 0, "resurrected");
    cr_assert_eq(del_calls, 1);
    cr_assert_eq(saved, d);
    cr_assert(zw_gc_is_finalized(d));
    ZW_CLEAR(saved);
    cr_assert_eq(zw_gc_collect(rt, 2), 1);
    cr_assert_eq(del_calls, 1, "__del__ runs once per object");
    zw_decref(three);
}

Test(gc_collect, resurrection_keeps_the_whole_cycle) /* 29 */
{
    zw_type *D = zwt_make_class("D", true);
    zw_type *A = zwt_make_class("A", false);
    resurrect = true;
    zw_obj *d = zwt_new(D), *a = zwt_new(A);
    zwt_set(d, "partner", a);
    zwt_set(a, "partner", d);
    zw_obj *tag = zw_str_new(rt, "kept");
    zwt_set(a, "tag", tag);
    zw_decref(tag);
    zw_decref(d);
    zw_decref(a);
    cr_assert_eq(zw_gc_collect(rt, 2), 0);
    cr_assert_eq(saved, d);
    zw_obj *p = zw_getattr(saved, "partner");
    zw_obj *t = zw_getattr(p, "tag");
    cr_assert(zw_str_eq_utf8(t, "kept"), "the partner survived intact");
    zw_obj *back = zw_getattr(p, "partner");
    cr_assert_eq(back, saved);
    zw_decref(back), zw_decref(t), zw_decref(p);
    ZW_CLEAR(saved);
    cr_assert_eq(zw_gc_collect(rt, 2), 2);
}

static zw_obj *wr_list[2];
static int cb_calls, cb_nones;

static zw_obj *
read_all_refs(zw_obj *self, zw_obj *const *args, size_t nargs)
{
    cb_calls++;
    for (int i = 0; i < 2; i++) {
        zw_obj *o = zw_weakref_get(wr_list[i]);
        cb_nones += zw_is_none(o);
        zw_decref(o);
    }
    return zw_newref(zw_none(zw_rt_of(self)));
}

Test(gc_collect, callbacks_see_every_weakref_to_garbage_cleared) /* 20 */
{
    static const zw_method def = {"cb", read_all_refs, 1, NULL};
    zw_type *A = zwt_make_class("A", false);
    zw_obj *cb = zw_func_new(rt, &def, NULL);
    cb_calls = cb_nones = 0;
    for (int i = 0; i < 2; i++) {
        zw_obj *a = zwt_new(A);
        zwt_set(a, "me", a);
        wr_list[i] = zw_weakref_new(a, cb);
        zw_decref(a);
    }
    cr_assert_eq(zw_gc_collect(rt, 2), 2);
    cr_assert_eq(cb_calls, 2);
    cr_assert_eq(cb_nones, 4, "every read returns None");
    zw_decref(wr_list[0]), zw_decref(wr_list[1]), zw_decref(cb);
}

static zw_obj *
del_touches_partner(zw_obj *self, zw_obj *const *args, size_t nargs)
{
    zw_rt *r = zw_rt_of(self);
    zw_obj *p = zw_getattr(self, "partner");
    if (p != NULL) {
        zw_setattr(p, "touched", self);
        zw_decref(p);
    }
    zw_err_clear(r);
    return zw_newref(zw_none(r));
}

Test(gc_collect, a_del_that_writes_to_a_cycle_member) /* 21 */
{
    static const zw_method m[] = {{"__del__", del_touches_partner, 0, NULL}, {NULL}};
    zw_class_spec spec = {.name = "T", .methods = m};
    zw_type *T = zw_class_new(rt, &spec);
    zw_obj *a = zwt_new(T), *b = zwt_new(T);
    zwt_set(a, "partner", b);
    zwt_set(b, "partner", a);
    zw_decref(a);
    zw_decref(b);
    cr_assert_eq(zw_gc_collect(rt, 2), 2);
}

Test(gc_collect, stats_count_per_generation) /* 24, 30 */
{
    zw_gc_stats before[3], after[3];
    zw_gc_get_stats(rt, before);
    zw_gc_collect(rt, 0);
    zw_gc_get_stats(rt, after);
    cr_assert_eq(after[0].collections, before[0].collections + 1);
    cr_assert_eq(after[1].collections, before[1].collections);
    cr_assert_eq(after[2].collections, before[2].collections);
    for (int i = 0; i < 100; i++)
        zw_decref(zwt_self_list());
    cr_assert_eq(zw_gc_collect(rt, 2), 100);
    zw_gc_get_stats(rt, after);
    cr_assert_eq(after[2].collections, before[2].collections + 1);
    cr_assert_eq(after[2].collected, before[2].collected + 100);
    cr_assert_eq(after[2].uncollectable, 0);
}

Test(gc_collect, resurrection_does_not_block_the_cleanup_of_others) /* 30 */
{
    zw_type *A = zwt_make_class("A", false);
    zw_type *Z = zwt_make_class("Z", true);
    resurrect = true;
    zs = zw_list_new(rt, 0);
    zw_obj *dict_of_first = NULL;
    for (int i = 0; i < 100; i++) { /* A(): self.me = self, with its __dict__ touched */
        zw_obj *a = zwt_new(A);
        zwt_set(a, "me", a);
        dict_of_first = zw_obj_dict(a);
        zw_decref(dict_of_first);
        zw_decref(a);
    }
    cr_assert_eq(zw_gc_collect(rt, 2), 200, "instance and its dict");
    zw_obj *z = zwt_new(Z);
    zwt_set(z, "me", z);
    zw_decref(z);
    cr_assert_eq(zw_gc_collect(rt, 2), 0, "Z() is merely resurrected");
    for (int i = 0; i < 100; i++) {
        zw_obj *a = zwt_new(A);
        zwt_set(a, "me", a);
        zw_decref(zw_obj_dict(a));
        zw_decref(a);
    }
    z = zwt_new(Z);
    zwt_set(z, "me", z);
    zw_obj *zd = zw_obj_dict(z);
    zw_decref(zd);
    zw_decref(z);
    cr_assert_eq(zw_gc_collect(rt, 2), 200, "Z() does not prevent anything else");
    cr_assert_eq(zw_list_len(zs), 2);
    zw_gc_stats st[3];
    zw_gc_get_stats(rt, st);
    cr_assert_eq(st[2].uncollectable, 0);
    zw_obj *l = zs;
    zs = NULL;
    zw_decref(l);
    cr_assert_eq(zw_gc_collect(rt, 2), 3, "the two Z (one with its dict)");
    cr_assert_eq(del_calls, 2, "no second __del__");
}

static char cb_log[256];

static void
log_cb(zw_rt *r, const char *phase, const zw_gc_info *info, void *arg)
{
    char buf[64];
    snprintf(buf, sizeof(buf), "%s%s:%d/%zu/%zu ", (const char *)arg, phase, info->generation,
             info->collected, info->uncollectable);
    strncat(cb_log, buf, sizeof(cb_log) - strlen(cb_log) - 1);
}

Test(gc_collect, callbacks_see_start_and_stop) /* 32, 33 */
{
    cb_log[0] = '\0';
    cr_assert_eq(zw_gc_add_callback(rt, log_cb, "A"), 0);
    cr_assert_eq(zw_gc_add_callback(rt, log_cb, "B"), 0);
    for (int i = 0; i < 2; i++) { /* two tp_del pairs */
        zw_obj *x = zwt_legacy(NULL), *y = zwt_legacy(x);
        ((legacy *)x)->a = zw_newref(y);
        zw_decref(x), zw_decref(y);
    }
    zw_decref(zwt_self_list());
    cr_assert_eq(zw_gc_collect(rt, 1), 5);
    cr_assert_str_eq(cb_log, "Astart:1/0/0 Bstart:1/0/0 Astop:1/1/4 Bstop:1/1/4 ");
    cr_assert_eq(zw_list_len(zw_gc_garbage(rt)), 4);
    cr_assert_eq(zw_gc_remove_callback(rt, log_cb, "A"), 0);
    cr_assert_eq(zw_gc_remove_callback(rt, log_cb, "A"), -1);
    zw_err_clear(rt);
    zw_obj *g = zw_gc_garbage(rt);
    for (size_t i = 0; i < zw_list_len(g); i++)
        legacy_clear(zw_list_get(g, (intptr_t)i));
}

Test(gc_collect, a_tp_del_object_with_a_plain_partner) /* 41 */
{
    zw_obj *l = zw_list_new(rt, 0);
    zw_obj *x = zwt_legacy(l);
    zw_list_append(l, x);
    zw_decref(x), zw_decref(l);
    zw_gc_stats st[3];
    cr_assert_eq(zw_gc_collect(rt, 2), 2);
    zw_gc_get_stats(rt, st);
    cr_assert_eq(st[2].uncollectable, 2, "both uncollectable");
    cr_assert_eq(zw_list_len(zw_gc_garbage(rt)), 1, "only the tp_del one in garbage");
    legacy_clear(x);
}

Test(gc_collect, freeze_hides_garbage_until_unfrozen) /* 25, 40 */
{
    zw_obj *l = zwt_self_list();
    zw_decref(l);
    zw_gc_freeze(rt);
    cr_assert_gt(zw_gc_get_freeze_count(rt), 0);
    int c[3];
    zw_gc_get_count(rt, c);
    cr_assert(c[0] == 0 && c[1] == 0 && c[2] == 0);
    cr_assert_eq(zw_gc_collect(rt, 2), 0);
    zw_gc_unfreeze(rt);
    cr_assert_eq(zw_gc_get_freeze_count(rt), 0);
    cr_assert_eq(zw_gc_collect(rt, 2), 1);
}

Test(gc_collect, get_objects_checks_its_generation) /* 27 */
{
    zw_obj *l = zw_list_new(rt, 0);
    zw_obj *all = zw_gc_get_objects(rt, -1);
    cr_assert_gt(zw_list_len(all), 0);
    zw_decref(all);
    cr_assert_null(zw_gc_get_objects(rt, 3));
    cr_assert_eq(zw_err_occurred(rt), ZW_ValueError);
    cr_assert(strstr(zw_errmsg(rt), "must be less than the number of available generations (3)"));
    zw_err_clear(rt);
    cr_assert_null(zw_gc_get_objects(rt, -1000));
    zw_err_clear(rt);
    zw_decref(l);
}

Test(gc_collect, external_weakref_callback_runs_garbage_one_does_not) /* 36 */
{
    static const zw_method def = {"cb", read_all_refs, 1, NULL};
    zw_type *A = zwt_make_class("A", false);
    wr_list[0] = wr_list[1] = NULL;
    zw_obj *a = zwt_new(A);
    zwt_set(a, "me", a);
    zw_obj *cb_a = zw_func_new(rt, &def, NULL);
    zw_obj *outside = zw_weakref_new(a, cb_a); /* held by the test: reachable */
    zw_obj *b = zwt_new(A);
    zwt_set(b, "me", b);
    zw_obj *cb_b = zw_func_new(rt, &def, NULL);
    zw_obj *inside = zw_weakref_new(b, cb_b);
    zwt_set(b, "wr", inside); /* B's weakref and its callback are garbage with B */
    zw_decref(inside);
    zw_decref(cb_b);
    wr_list[0] = outside;
    wr_list[1] = outside;
    cb_calls = 0;
    zw_decref(a);
    zw_decref(b);
    cr_assert_eq(zw_gc_collect(rt, 2), 4, "A, B, B's weakref, B's callback");
    cr_assert_eq(cb_calls, 1, "only A's callback ran");
    zw_decref(outside);
    zw_decref(cb_a);
}

static zw_obj *
log_c(zw_obj *self, zw_obj *const *args, size_t nargs)
{
    zwt_event('c');
    return zw_newref(zw_none(zw_rt_of(self)));
}

Test(gc_collect, callback_before_del_in_cycles_del_before_callback_on_refcount) /* 37 */
{
    static const zw_method def = {"cb", log_c, 1, NULL};
    zw_type *D = zwt_make_class("D", true);
    zw_obj *cb = zw_func_new(rt, &def, NULL);
    zw_obj *d = zwt_new(D);
    zwt_set(d, "me", d);
    zw_obj *wr = zw_weakref_new(d, cb);
    zw_decref(d);
    zw_gc_collect(rt, 2);
    cr_assert_str_eq(order, "cd", "cycle garbage: callback, then __del__");
    zw_decref(wr);
    order[0] = '\0';
    d = zwt_new(D);
    wr = zw_weakref_new(d, cb);
    zw_decref(d);
    cr_assert_str_eq(order, "dc", "refcount death: __del__, then callback");
    zw_decref(wr);
    zw_decref(cb);
}

Test(gc_collect, atomic_tuples_and_dicts_are_untracked_lazily) /* 38 */
{
    zw_obj *one = zw_int_from_i64(rt, 1), *x = zw_str_new(rt, "x");
    zw_obj *t = zw_tuple_pack(rt, 2, one, x);
    cr_assert(zw_gc_is_tracked(t));
    zw_gc_collect(rt, 0);
    cr_assert_not(zw_gc_is_tracked(t), "untracked by one collection");
    zw_obj *l = zw_list_new(rt, 0);
    zw_obj *tl = zw_tuple_pack(rt, 1, l);
    zw_gc_collect(rt, 2);
    cr_assert(zw_gc_is_tracked(tl), "([],) stays tracked");
    zw_obj *d = zw_dict_new(rt);
    cr_assert_not(zw_gc_is_tracked(d));
    zw_dict_set(d, one, l);
    cr_assert(zw_gc_is_tracked(d), "tracked once it holds a list");
    zw_dict_set(d, one, one);
    zw_gc_collect(rt, 1);
    cr_assert(zw_gc_is_tracked(d), "a gen-1 collection keeps dicts");
    zw_gc_collect(rt, 2);
    cr_assert_not(zw_gc_is_tracked(d), "a full collection untracks it");
    zw_decref(d), zw_decref(tl), zw_decref(l), zw_decref(t), zw_decref(one), zw_decref(x);
}

Test(gc_collect, lazy_untracking_follows_the_order_of_the_generation)
{
    /* untrack_tuples walks the survivors in list order: an outer tuple examined before its
     * inner one stays tracked one more collection; dicts are examined after every tuple */
    zw_obj *one = zw_int_from_i64(rt, 1);
    zw_obj *inner = zw_tuple_pack(rt, 1, one);
    zw_obj *outer = zw_tuple_pack(rt, 1, inner);
    zw_gc_collect(rt, 0);
    cr_assert_not(zw_gc_is_tracked(inner));
    cr_assert_not(zw_gc_is_tracked(outer), "its item was untracked just before it");
    zw_obj *o2 = zw_tuple_new(rt, 1);
    zw_obj *i2 = zw_tuple_pack(rt, 1, one);
    zw_tuple_init_item(o2, 0, i2);
    zw_gc_collect(rt, 0);
    cr_assert_not(zw_gc_is_tracked(i2));
    cr_assert(zw_gc_is_tracked(o2), "its item was still tracked when it was examined");
    zw_gc_collect(rt, 1);
    cr_assert_not(zw_gc_is_tracked(o2), "one collection per nesting level");
    zw_obj *l = zw_list_new(rt, 0);
    zw_obj *d = zw_dict_new(rt);
    zw_dict_set(d, one, l); /* tracked now: before t in generation 0 */
    zw_obj *t = zw_tuple_pack(rt, 1, one);
    zw_dict_set(d, one, t);
    zw_gc_collect(rt, 2);
    cr_assert_not(zw_gc_is_tracked(t));
    cr_assert_not(zw_gc_is_tracked(d), "the tuple it holds was untracked by the same collection");
    zw_decref(d), zw_decref(t), zw_decref(l), zw_decref(o2), zw_decref(outer), zw_decref(inner);
    zw_decref(one);
}

/* A full collection with nothing frozen counts references in one pass (first touch sets a
 * referent's count); with a frozen object it takes update_refs and subtract_refs: same result. */
static intptr_t
collect_mixed_graph(bool with_frozen)
{
    zw_obj *frozen = NULL;
    if (with_frozen) {
        frozen = zw_list_new(rt, 0);
        zw_gc_freeze(rt);
    }
    zw_obj *holder = zw_list_new(rt, 0); /* older than what it holds */
    zw_obj *d = zw_list_new(rt, 0), *c = zw_list_new(rt, 0);
    zw_list_append(c, d), zw_list_append(d, c); /* garbage: d is before c */
    zw_obj *a = zw_list_new(rt, 0), *b = zw_list_new(rt, 0);
    zw_list_append(a, b), zw_list_append(b, a), zw_list_append(holder, b);
    zw_obj *t = zw_tuple_pack(rt, 2, a, holder); /* reachable from outside */
    zw_decref(a), zw_decref(b), zw_decref(c), zw_decref(d), zw_decref(holder);
    intptr_t found = zw_gc_collect(rt, 2);
    cr_assert(zw_gc_is_tracked(t) && zw_gc_is_tracked(zw_tuple_get(t, 0)));
    zw_decref(t);
    cr_assert_eq(zw_gc_collect(rt, 2), 2, "the a-b cycle is garbage now");
    if (with_frozen) {
        zw_gc_unfreeze(rt);
        zw_decref(frozen);
    }
    return found;
}

Test(gc_collect, full_collection_counts_alike_with_and_without_frozen_objects)
{
    cr_assert_eq(collect_mixed_graph(false), 2, "the c-d cycle");
    cr_assert_eq(collect_mixed_graph(true), 2, "the c-d cycle");
}

Test(gc_collect, a_list_revived_from_the_free_list_is_counted_afresh)
{
    /* a list freed by a young collection dies marked COLLECTING and goes to the free list; the
     * next list comes from there and must enter gen 0 unmarked (as _PyObject_GC_UNTRACK) */
    zw_obj *l = zw_list_new(rt, 0);
    zw_list_append(l, l);
    zw_decref(l);
    cr_assert_eq(zw_gc_collect(rt, 0), 1);
    zw_obj *a = zw_list_new(rt, 0);
    cr_assert_eq(a, l, "the same memory, from the free list");
    zw_list_append(a, a);
    zw_decref(a);
    cr_assert_eq(zw_gc_collect(rt, 2), 1, "the revived list's self-cycle is found");
}

Test(gc_collect, invalid_generation_and_zero_threshold) /* 39 */
{
    cr_assert_eq(zw_gc_collect(rt, 3), -1);
    cr_assert_str_eq(zw_errmsg(rt), "ValueError: invalid generation");
    zw_err_clear(rt);
    int th[3] = {0, 10, 10};
    zw_gc_set_threshold(rt, th);
    zw_gc_enable(rt);
    zw_gc_stats before[3], after[3];
    zw_gc_get_stats(rt, before);
    for (int i = 0; i < 5000; i++)
        zw_decref(zw_list_new(rt, 0));
    zw_gc_get_stats(rt, after);
    cr_assert_eq(after[0].collections, before[0].collections, "threshold 0: no collection");
    zw_gc_disable(rt);
    int d[3] = {700, 10, 10};
    zw_gc_set_threshold(rt, d);
    int neg[3] = {-1, 10, 10};
    cr_assert_eq(zw_gc_set_threshold(rt, neg), -1);
    zw_err_clear(rt);
}

Test(gc_collect, automatic_collection_follows_the_thresholds) /* 35 */
{
    zw_gc_enable(rt);
    zw_gc_stats before[3], after[3];
    zw_gc_get_stats(rt, before);
    zw_obj *keep = zw_list_new(rt, 0);
    for (int i = 0; i < 7000; i++) { /* 10 young collections' worth of survivors */
        zw_obj *l = zw_list_new(rt, 0);
        zw_list_append(keep, l);
        zw_decref(l);
    }
    zw_gc_get_stats(rt, after);
    size_t young = after[0].collections - before[0].collections;
    const char *st = getenv("ZW_GC_STRESS");
    if (st != NULL && st[0] != '\0' && strcmp(st, "0") != 0) {
        /* stress mode: a collection at every allocation, a full one every 1000th */
        size_t full = after[2].collections - before[2].collections;
        cr_assert_eq(young + full, 7000, "%zu young + %zu full for 7000 allocations", young, full);
        cr_assert(full >= 6 && full <= 7, "%zu full collections", full);
    } else {
        cr_assert(young >= 9 && young <= 10, "%zu young collections for 7000 allocations", young);
        cr_assert_eq(after[1].collections - before[1].collections, 0, "gen 1 waits for 11");
    }
    zw_gc_disable(rt);
    zw_decref(keep);
}

Test(gc_collect, debug_output_has_cpythons_shape) /* 42 */
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    zw_gc_set_debug_output(rt, out);
    zw_gc_set_debug(rt, ZW_GC_DEBUG_STATS | ZW_GC_DEBUG_COLLECTABLE);
    zw_type *A = zwt_make_class("A", false);
    zw_obj *a = zwt_new(A);
    zwt_set(a, "me", a);
    zw_decref(a);
    zw_decref(zwt_self_list());
    zw_gc_collect(rt, 1);
    zw_gc_set_debug(rt, 0);
    zw_gc_set_debug_output(rt, NULL);
    fclose(out);
    cr_assert(strncmp(text, "gc: collecting generation 1...\n"
                            "gc: objects in each generation: ", 63) == 0, "%s", text);
    cr_assert(strstr(text, "gc: objects in permanent generation: 0\n"), "%s", text);
    cr_assert(strstr(text, "gc: collectable <A 0x"), "%s", text);
    cr_assert(strstr(text, "gc: collectable <list 0x"), "%s", text);
    cr_assert(strstr(text, "gc: done, 2 unreachable, 0 uncollectable, 0.0"), "%s", text);
    cr_assert(strstr(text, "s elapsed\n"), "%s", text);
    free(text);
}

static void
drop_a_reference_and_collect(FILE *out, void *arg)
{
    zw_rt_config cfg = {.flags = ZW_RT_DEBUG | ZW_RT_IGNORE_ENV, .report = out};
    zw_rt *d = zw_rt_new(&cfg);
    zw_obj *a = zw_list_new(d, 0);
    zw_obj *b = zw_list_new(d, 0);
    zw_list_append(b, a);
    a->refcnt--; /* as if an extension forgot an incref: b's reference is the only one counted */
    a->refcnt--;
    zw_gc_collect(d, 2);
}

Test(gc_collect_debug, a_refcount_too_small_aborts_with_the_object) /* 34 */
{
    zwt_child c;
    zwt_child_run(&c, drop_a_reference_and_collect, NULL);
    zwt_assert_aborted(&c);
    zwt_assert_has(c.text, "zw: gc: refcount is too small");
    zwt_assert_has(c.text, "type 'list'");
    zwt_child_release(&c);
}

static void
shutdown_with_uncollectable(FILE *out, void *arg)
{
    unsigned flags = *(unsigned *)arg;
    zw_rt_config cfg = {.flags = ZW_RT_IGNORE_ENV};
    rt = zw_rt_new(&cfg);
    zw_gc_set_debug(rt, flags);
    zw_gc_set_debug_output(rt, out);
    zw_obj *x = zwt_legacy(NULL), *y = zwt_legacy(x);
    ((legacy *)x)->a = zw_newref(y);
    zw_decref(x), zw_decref(y);
    zw_rt_free(rt);
}

Test(gc_collect_debug, shutdown_reports_uncollectable_objects) /* 22 */
{
    unsigned flags[] = {0, ZW_GC_DEBUG_UNCOLLECTABLE, ZW_GC_DEBUG_SAVEALL};
    for (int i = 0; i < 3; i++) {
        zwt_child c;
        zwt_child_run(&c, shutdown_with_uncollectable, &flags[i]);
        cr_assert(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0, "%s", c.text);
        if (i == 0) {
            zwt_assert_has(c.text, "ResourceWarning: gc: 2 uncollectable objects at shutdown; use");
            zwt_assert_lacks(c.text, "<Legacy");
        } else if (i == 1) {
            zwt_assert_has(c.text, "ResourceWarning: gc: 2 uncollectable objects at shutdown\n");
            zwt_assert_has(c.text, "[<Legacy object at 0x");
        } else {
            zwt_assert_lacks(c.text, "ResourceWarning");
        }
        zwt_child_release(&c);
    }
}

static void
module_cycle_with_del(FILE *out, void *arg)
{
    zw_rt_config cfg = {.flags = ZW_RT_IGNORE_ENV};
    rt = zw_rt_new(&cfg);
    zw_type *D = zwt_make_class("D", true);
    zw_obj *d = zwt_new(D);
    zwt_set(d, "me", d);
    zw_decref(d);
    zw_rt_free(rt);
    fprintf(out, "del calls: %d\n", del_calls);
}

Test(gc_collect_debug, del_of_a_cycle_runs_at_rt_free) /* 23 */
{
    zwt_child c;
    zwt_child_run(&c, module_cycle_with_del, NULL);
    zwt_assert_has(c.text, "del calls: 1");
    zwt_child_release(&c);
}
