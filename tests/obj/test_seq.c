/* tests/obj/test_seq.c - tuple and list: sizes, CPython's growth pattern, free lists, slicing,
 * insertion, popping, extending, sorting (stable), comparison, repr. */
#include "zw_obj_test.h"

TestSuite(obj_seq, .init = zwt_rt_setup, .fini = zwt_rt_teardown);

Test(obj_seq, tuple_sizes_and_singleton)
{
    for (size_t n = 0; n <= 20; n++) {
        zw_obj *t = zw_tuple_new(rt, n);
        for (size_t i = 0; i < n; i++)
            zw_tuple_init_item(t, i, zwt_int((long long)i));
        cr_expect_eq(zw_getsizeof(t), 40 + 8 * n, "tuple of %zu", n);
        cr_expect_eq(zw_tuple_len(t), n);
        zw_decref(t);
    }
    cr_assert_null(zw_tuple_get(zw_tuple_new(rt, 0), 0));
    cr_assert_eq(zw_err_occurred(rt), ZW_IndexError);
    zw_err_clear(rt);
    zw_decref(zw_tuple_new(rt, 0));
}

Test(obj_seq, dead_small_tuples_are_reused_without_new_blocks)
{
    zw_obj *t = zw_tuple_pack(rt, 2, zw_none(rt), zw_none(rt));
    zw_decref(t);
    size_t blocks = zw_rt_allocated_blocks(rt);
    zw_obj *u = zw_tuple_pack(rt, 2, zw_none(rt), zw_none(rt));
    cr_assert_eq(u, t, "taken from the free list of 2-tuples");
    cr_assert_eq(zw_rt_allocated_blocks(rt), blocks);
    zw_decref(u);
    cr_assert_eq(zw_rt_clear_freelists(rt), 1);
}

Test(obj_seq, tuple_hash_and_compare_are_pythons)
{
    /* python3 -c "print(hash((1, 2)), hash(()), hash((1, (2, 3))))" */
    zw_obj *one = zwt_int(1), *two = zwt_int(2), *three = zwt_int(3);
    zw_obj *t12 = zw_tuple_pack(rt, 2, one, two);
    zw_obj *t23 = zw_tuple_pack(rt, 2, two, three);
    zw_obj *nested = zw_tuple_pack(rt, 2, one, t23);
    zw_obj *empty = zw_tuple_new(rt, 0);
    cr_expect_eq(zw_hash(t12), -3550055125485641917LL);
    cr_expect_eq(zw_hash(empty), 5740354900026072187LL);
    cr_expect_eq(zw_hash(nested), 7267574591690527098LL);
    cr_assert_eq(zw_compare(t12, t23, ZW_LT), 1);
    cr_assert_eq(zw_compare(t12, t12, ZW_EQ), 1);
    cr_assert_eq(zw_compare(empty, t12, ZW_LT), 1);
    zwt_assert_repr(nested, "(1, (2, 3))");
    zw_obj *single = zw_tuple_pack(rt, 1, one);
    zwt_assert_repr(single, "(1,)");
    zw_decref(single), zw_decref(t12), zw_decref(t23), zw_decref(nested), zw_decref(empty);
    zw_decref(one), zw_decref(two), zw_decref(three);
}

Test(obj_seq, list_grows_as_cpython_3_11)
{
    /* capacities after each append in CPython 3.11: 4, 8, 16, 24, 32, 40, 52, 64, 76, 92, 108 */
    size_t want[] = {4, 8, 16, 24, 32, 40, 52, 64, 76, 92, 108};
    size_t k = 0, last = 0;
    zw_obj *l = zw_list_new(rt, 0);
    cr_assert_eq(zw_getsizeof(l), 56);
    zw_obj *x = zwt_int(7);
    for (int i = 0; i < 100; i++) {
        zw_list_append(l, x);
        size_t cap = zw_list_capacity(l);
        if (cap != last) {
            cr_assert_lt(k, sizeof(want) / sizeof(want[0]));
            cr_expect_eq(cap, want[k], "growth step %zu", k);
            k++;
            last = cap;
        }
    }
    cr_assert_eq(zw_getsizeof(l), 920, "sys.getsizeof of a list grown by 100 appends");
    zw_obj *r = zw_list_repeat(rt, x, 100);
    cr_assert_eq(zw_getsizeof(r), 856, "[x] * 100 is exact");
    zw_decref(l), zw_decref(r), zw_decref(x);
}

Test(obj_seq, list_get_set_insert_pop_with_python_indexing)
{
    zw_obj *l = zw_list_new(rt, 0);
    for (int i = 0; i < 5; i++) {
        zw_obj *v = zwt_int(i);
        zw_list_append(l, v);
        zw_decref(v);
    }
    zw_obj *nine = zwt_int(9);
    cr_assert_eq(zw_list_insert(l, 0, nine), 0);
    cr_assert_eq(zw_list_insert(l, -1, nine), 0);
    cr_assert_eq(zw_list_insert(l, 100, nine), 0);
    zwt_assert_repr(l, "[9, 0, 1, 2, 3, 9, 4, 9]");
    cr_assert_eq(zw_list_get(l, -1), nine);
    cr_assert_null(zw_list_get(l, 8));
    cr_assert_eq(zw_err_occurred(rt), ZW_IndexError);
    zw_err_clear(rt);
    zw_obj *p = zw_list_pop(l, 1);
    cr_assert_eq(zw_int_as_i64(p), 0);
    zw_decref(p);
    p = zw_list_pop(l, -1);
    cr_assert_eq(p, nine);
    zw_decref(p);
    cr_assert_eq(zw_list_set(l, -1, nine), 0);
    zwt_assert_repr(l, "[9, 1, 2, 3, 9, 9]");
    cr_assert_eq(zw_list_set(l, 6, nine), -1);
    zw_err_clear(rt);
    zw_obj *s = zw_list_slice(l, -3, 100);
    zwt_assert_repr(s, "[3, 9, 9]");
    cr_assert_eq(zw_getsizeof(s), 56 + 3 * 8, "a slice is exact");
    zw_obj *e = zw_list_slice(l, 4, 2);
    cr_assert_eq(zw_list_len(e), 0);
    zw_decref(s), zw_decref(e), zw_decref(l), zw_decref(nine);
    zw_obj *empty = zw_list_new(rt, 0);
    cr_assert_null(zw_list_pop(empty, -1));
    cr_assert(strstr(zw_errmsg(rt), "pop from empty list"));
    zw_err_clear(rt);
    zw_decref(empty);
}

Test(obj_seq, list_extend_from_lists_tuples_itself_and_iterators)
{
    zw_obj *l = zw_list_new(rt, 0);
    zw_obj *r = zw_range_new(rt, 0, 3, 1);
    cr_assert_eq(zw_list_extend(l, r), 0);
    cr_assert_eq(zw_list_extend(l, l), 0);
    zw_obj *t = zw_tuple_pack(rt, 1, zw_none(rt));
    cr_assert_eq(zw_list_extend(l, t), 0);
    zwt_assert_repr(l, "[0, 1, 2, 0, 1, 2, None]");
    zw_obj *from_range = zw_list_from_iter(r);
    cr_assert_eq(zw_list_capacity(from_range), 3, "a range's length is known: exact");
    zw_obj *one = zwt_int(1);
    cr_assert_eq(zw_list_extend(l, one), -1);
    cr_assert(strstr(zw_errmsg(rt), "'int' object is not iterable"));
    zw_err_clear(rt);
    zw_decref(l), zw_decref(r), zw_decref(t), zw_decref(from_range), zw_decref(one);
}

Test(obj_seq, sort_is_stable_and_reverse_keeps_equal_items_in_order)
{
    /* 300 (key, seq) pairs with many equal keys: sorting by key keeps seq increasing */
    zw_obj *l = zw_list_new(rt, 0);
    uint64_t x = 12345;
    for (int i = 0; i < 300; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        zw_obj *k = zwt_int((long long)((x >> 33) % 10));
        zw_obj *seq = zwt_int(i);
        zw_obj *t = zw_tuple_pack(rt, 2, k, seq);
        zw_list_append(l, t);
        zw_decref(t), zw_decref(k), zw_decref(seq);
    }
    cr_assert_eq(zw_list_sort(l, false), 0, "%s", zw_errmsg(rt));
    for (size_t i = 1; i < 300; i++) {
        zw_obj *a = zw_list_get(l, (intptr_t)i - 1), *b = zw_list_get(l, (intptr_t)i);
        cr_assert_eq(zw_compare(a, b, ZW_LE), 1, "sorted at %zu", i);
    }
    cr_assert_eq(zw_list_sort(l, true), 0);
    for (size_t i = 1; i < 300; i++) {
        zw_obj *a = zw_list_get(l, (intptr_t)i - 1), *b = zw_list_get(l, (intptr_t)i);
        cr_assert_eq(zw_compare(a, b, ZW_GE), 1, "reverse sorted at %zu", i);
    }
    zw_decref(l);
}

Test(obj_seq, sort_stability_with_equal_keys)
{
    /* strs compare by text only; equal texts at different addresses must keep their order */
    zw_obj *l = zw_list_new(rt, 0);
    zw_obj *objs[200];
    for (int i = 0; i < 200; i++) {
        char buf[8];
        snprintf(buf, sizeof(buf), "k%d", (i * 7) % 5);
        objs[i] = zwt_str(buf);
        zw_list_append(l, objs[i]);
    }
    cr_assert_eq(zw_list_sort(l, false), 0);
    size_t at = 0;
    for (int key = 0; key < 5; key++)
        for (int i = 0; i < 200; i++)
            if ((i * 7) % 5 == key)
                cr_assert_eq(zw_list_get(l, (intptr_t)at++), objs[i], "stable at %zu", at);
    cr_assert_eq(zw_list_sort(l, true), 0);
    at = 0;
    for (int key = 4; key >= 0; key--)
        for (int i = 0; i < 200; i++)
            if ((i * 7) % 5 == key)
                cr_assert_eq(zw_list_get(l, (intptr_t)at++), objs[i], "reverse stable at %zu", at);
    for (int i = 0; i < 200; i++)
        zw_decref(objs[i]);
    zw_decref(l);
}

Test(obj_seq, sort_of_uncomparable_items_fails_and_keeps_every_item)
{
    zw_obj *l = zw_list_new(rt, 0);
    zw_obj *one = zwt_int(1000), *s = zwt_str("a");
    zw_list_append(l, one);
    zw_list_append(l, s);
    zw_list_append(l, one);
    cr_assert_eq(zw_list_sort(l, false), -1);
    cr_assert_eq(zw_err_occurred(rt), ZW_TypeError);
    zw_err_clear(rt);
    cr_assert_eq(zw_list_len(l), 3);
    cr_assert_eq(zw_getrefcount(one), 3);
    zw_decref(l), zw_decref(one), zw_decref(s);
}

Test(obj_seq, a_list_that_contains_itself_prints_as_python)
{
    zw_obj *l = zw_list_new(rt, 0);
    zw_list_append(l, l);
    zwt_assert_repr(l, "[[...]]");
    zw_list_pop(l, 0); /* the reference the list held on itself is ours now */
    zw_decref(l);
    zw_decref(l);
}

Test(obj_seq, list_compare_is_lexicographic)
{
    zw_obj *a = zw_list_new(rt, 0), *b = zw_list_new(rt, 0);
    zw_obj *one = zwt_int(1), *two = zwt_int(2);
    zw_list_append(a, one);
    zw_list_append(b, one);
    cr_assert_eq(zw_compare(a, b, ZW_EQ), 1);
    zw_list_append(b, two);
    cr_assert_eq(zw_compare(a, b, ZW_LT), 1);
    cr_assert_eq(zw_compare(b, a, ZW_GT), 1);
    cr_assert_eq(zw_hash(a), -1);
    cr_assert_eq(zw_err_occurred(rt), ZW_TypeError);
    zw_err_clear(rt);
    zw_decref(a), zw_decref(b), zw_decref(one), zw_decref(two);
}
