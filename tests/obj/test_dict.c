/* tests/obj/test_dict.c - dict: CPython 3.11's sizes and resize points, order, deletion,
 * non-str keys, iteration, copy, tracking, and a model check against a simple table. */
#include "zw_obj_test.h"

TestSuite(obj_dict, .init = zwt_rt_setup, .fini = zwt_rt_teardown);

Test(obj_dict, sizes_follow_cpython_3_11_resizes)
{
    /* python3.11: d = {}; d['k%d' % i] = i ... sys.getsizeof(d) changes at these sizes */
    struct { size_t n, size; } steps[] = {{0, 64}, {1, 184}, {5, 184}, {6, 272}, {10, 272},
                                          {11, 464}, {21, 464}, {22, 832}, {43, 1584},
                                          {86, 3328}, {100, 3328}};
    zw_obj *d = zw_dict_new(rt);
    size_t n = 0;
    for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
        for (; n < steps[s].n; n++) {
            char k[32];
            snprintf(k, sizeof(k), "k%zu", n);
            zw_obj *v = zwt_int((long long)n);
            cr_assert_eq(zw_dict_set_str(d, k, v), 0);
            zw_decref(v);
        }
        cr_expect_eq(zw_getsizeof(d), steps[s].size, "%zu keys: %zu", n, zw_getsizeof(d));
    }
    zw_decref(d);
}

Test(obj_dict, keeps_insertion_order_through_deletes_and_updates)
{
    zw_obj *d = zw_dict_new(rt);
    const char *keys[] = {"b", "a", "d", "c"};
    for (int i = 0; i < 4; i++) {
        zw_obj *v = zwt_int(i);
        zw_dict_set_str(d, keys[i], v);
        zw_decref(v);
    }
    zw_obj *a = zwt_str("a");
    cr_assert_eq(zw_dict_del(d, a), 0);
    cr_assert_eq(zw_dict_del(d, a), -1);
    cr_assert_eq(zw_err_occurred(rt), ZW_KeyError);
    cr_assert_str_eq(zw_errmsg(rt), "KeyError: 'a'");
    zw_err_clear(rt);
    zw_obj *nine = zwt_int(9);
    zw_dict_set(d, a, nine);     /* goes to the end */
    zw_dict_set_str(d, "b", nine); /* stays first */
    zwt_assert_repr(d, "{'b': 9, 'd': 2, 'c': 3, 'a': 9}");
    cr_assert_eq(zw_dict_len(d), 4);
    cr_assert_eq(zw_dict_contains(d, a), 1);
    cr_assert_eq(zw_dict_get_str(d, "zz"), NULL);
    cr_assert_eq(zw_err_occurred(rt), ZW_NoError, "absent is not an error");
    zw_decref(a), zw_decref(nine), zw_decref(d);
}

Test(obj_dict, non_str_keys_switch_the_table_to_general_entries)
{
    zw_obj *d = zw_dict_new(rt);
    zw_obj *v = zwt_int(1);
    zw_dict_set_str(d, "a", v);
    cr_assert_eq(zw_getsizeof(d), 184);
    zw_obj *k = zwt_int(5);
    zw_dict_set(d, k, v);
    /* 3.11: d = {}; d['a'] = 1; d[5] = 1 gives 352 bytes: rebuilt for used * 3 = 3, which
     * calculate_log2_keysize makes 16 slots (10 entries of 24 bytes) */
    cr_assert_eq(zw_getsizeof(d), 352);
    zw_obj *k2 = zwt_int(5);
    cr_assert_eq(zw_dict_get(d, k2), v, "equal keys find the entry");
    zw_obj *l = zw_list_new(rt, 0);
    cr_assert_eq(zw_dict_set(d, l, v), -1);
    cr_assert_str_eq(zw_errmsg(rt), "TypeError: unhashable type: 'list'");
    zw_err_clear(rt);
    zw_decref(d), zw_decref(v), zw_decref(k), zw_decref(k2), zw_decref(l);
}

Test(obj_dict, iterators_walk_keys_values_and_items_and_catch_resizes)
{
    zw_obj *d = zw_dict_new(rt);
    for (int i = 0; i < 3; i++) {
        char k[4] = {(char)('x' + i), 0};
        zw_obj *v = zwt_int(i * 10);
        zw_dict_set_str(d, k, v);
        zw_decref(v);
    }
    zw_obj *keys = zw_list_from_iter(d);
    zwt_assert_repr(keys, "['x', 'y', 'z']");
    zw_obj *vi = zw_dict_values_iter(d);
    zw_obj *values = zw_list_from_iter(vi);
    zwt_assert_repr(values, "[0, 10, 20]");
    zw_obj *ii = zw_dict_items_iter(d);
    zw_obj *items = zw_list_from_iter(ii);
    zwt_assert_repr(items, "[('x', 0), ('y', 10), ('z', 20)]");
    zw_obj *it = zw_dict_keys_iter(d);
    zw_obj *first = zw_iter_next(it);
    zw_dict_set_str(d, "new", first);
    cr_assert_null(zw_iter_next(it));
    cr_assert_str_eq(zw_errmsg(rt), "RuntimeError: dictionary changed size during iteration");
    zw_err_clear(rt);
    zw_decref(first), zw_decref(it), zw_decref(keys), zw_decref(vi), zw_decref(values);
    zw_decref(ii), zw_decref(items), zw_decref(d);
}

Test(obj_dict, copy_clones_a_compact_table_and_compacts_a_holed_one)
{
    zw_obj *d = zw_dict_new(rt);
    zw_obj *v = zwt_int(1);
    for (int i = 0; i < 7; i++) {
        char k[8];
        snprintf(k, sizeof(k), "k%d", i);
        zw_dict_set_str(d, k, v);
    }
    zw_obj *c = zw_dict_copy(d);
    cr_assert_eq(zw_getsizeof(c), zw_getsizeof(d));
    cr_assert_eq(zw_compare(c, d, ZW_EQ), 1);
    zw_obj *k0 = zwt_str("k0");
    zw_dict_del(d, k0);
    cr_assert_eq(zw_compare(c, d, ZW_NE), 1);
    zw_obj *c2 = zw_dict_copy(d);
    cr_assert_eq(zw_dict_len(c2), 6);
    zw_decref(c), zw_decref(c2), zw_decref(k0), zw_decref(v), zw_decref(d);
}

Test(obj_dict, empty_dicts_allocate_no_table_and_clear_returns_to_that)
{
    size_t before = zw_rt_allocated_blocks(rt);
    zw_obj *d = zw_dict_new(rt);
    cr_assert_eq(zw_rt_allocated_blocks(rt), before + 1, "just the object");
    zw_obj *v = zwt_int(1);
    zw_dict_set_str(d, "a", v);
    zw_dict_clear(d);
    cr_assert_eq(zw_getsizeof(d), 64);
    cr_assert_eq(zw_dict_len(d), 0);
    zw_decref(v), zw_decref(d);
}

/* A model check: random sets and deletes of 64 possible keys, against a plain array. */
Test(obj_dict, random_operations_agree_with_a_model)
{
    zw_obj *d = zw_dict_new(rt);
    long model[64];
    for (int i = 0; i < 64; i++)
        model[i] = -1;
    zw_obj *keys[64];
    for (int i = 0; i < 64; i++) {
        if (i % 2)
            keys[i] = zwt_int(i * 1000003LL);
        else {
            char k[16];
            snprintf(k, sizeof(k), "key%d", i);
            keys[i] = zwt_str(k);
        }
    }
    uint64_t x = 42;
    for (int step = 0; step < 20000; step++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        int k = (int)((x >> 33) % 64);
        if ((x >> 20) % 3 == 0) {
            int rc = zw_dict_del(d, keys[k]);
            cr_assert_eq(rc, model[k] >= 0 ? 0 : -1);
            zw_err_clear(rt);
            model[k] = -1;
        } else {
            zw_obj *v = zwt_int(step);
            cr_assert_eq(zw_dict_set(d, keys[k], v), 0);
            zw_decref(v);
            model[k] = step;
        }
        if (step % 97 == 0) {
            size_t live = 0;
            for (int i = 0; i < 64; i++) {
                zw_obj *got = zw_dict_get(d, keys[i]);
                if (model[i] < 0)
                    cr_assert_null(got);
                else
                    cr_assert_eq(zw_int_as_i64(got), model[i]);
                live += model[i] >= 0;
            }
            cr_assert_eq(zw_dict_len(d), live);
        }
    }
    for (int i = 0; i < 64; i++)
        zw_decref(keys[i]);
    zw_decref(d);
}

/* A key type whose equality deletes the entry it is being compared with, then says "equal":
 * the lookup must notice the entry changed and start over (as CPython's does). */
static zw_obj *victim_dict, *victim_key;

static int64_t
same_hash(zw_obj *o)
{
    return 1;
}

static int
deleting_compare(zw_obj *a, zw_obj *b, zw_cmp op)
{
    if (op != ZW_EQ && op != ZW_NE)
        return ZW_CMP_UNSUPPORTED;
    if (victim_key != NULL) {
        zw_obj *k = victim_key;
        victim_key = NULL;
        zw_dict_del(victim_dict, k);
        zw_decref(k);
    }
    return op == ZW_EQ;
}

Test(obj_dict, a_comparison_that_deletes_the_entry_restarts_the_lookup)
{
    zw_type_spec spec = {.name = "X", .basicsize = sizeof(zw_obj), .hash = same_hash,
                         .compare = deleting_compare};
    zw_type *X = zw_type_new(rt, &spec);
    victim_dict = zw_dict_new(rt);
    zw_obj *stored = zw_obj_alloc(X, 0), *probe = zw_obj_alloc(X, 0);
    zw_dict_set(victim_dict, stored, zw_none(rt));
    victim_key = zw_newref(stored);
    cr_assert_eq(zw_dict_del(victim_dict, probe), -1, "the entry went during the compare");
    cr_assert_eq(zw_err_occurred(rt), ZW_KeyError);
    zw_err_clear(rt);
    cr_assert_eq(zw_dict_len(victim_dict), 0);
    zw_decref(stored), zw_decref(probe), zw_decref(victim_dict);
}
