/* tests/obj/test_iter.c - range, iterators, generators (a resumable C function with its own
 * state), zw_sum and zw_list_from_iter. */
#include "zw_obj_test.h"

TestSuite(obj_iter, .init = zwt_rt_setup, .fini = zwt_rt_teardown);

Test(obj_iter, range_lengths_and_values_follow_python)
{
    struct { int64_t a, b, s; const char *list; } cases[] = {
        {0, 5, 1, "[0, 1, 2, 3, 4]"}, {5, 0, -2, "[5, 3, 1]"}, {0, 0, 1, "[]"},
        {3, 10, 4, "[3, 7]"},         {-3, 3, 3, "[-3, 0]"},   {10, 0, 1, "[]"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        zw_obj *r = zw_range_new(rt, cases[i].a, cases[i].b, cases[i].s);
        zw_obj *l = zw_list_from_iter(r);
        zwt_assert_repr(l, cases[i].list);
        cr_assert_eq(zw_len(r), (intptr_t)zw_list_len(l));
        zw_decref(l);
        zw_decref(r);
    }
    cr_assert_null(zw_range_new(rt, 0, 1, 0));
    cr_assert_str_eq(zw_errmsg(rt), "ValueError: range() arg 3 must not be zero");
    zw_err_clear(rt);
    zw_obj *r = zw_range_new(rt, 0, 10, 3);
    zwt_assert_repr(r, "range(0, 10, 3)");
    cr_assert_eq(zw_getsizeof(r), 48);
    zw_obj *big = zw_range_new(rt, INT64_MIN, INT64_MAX, INT64_MAX);
    cr_assert_eq(zw_len(big), 3, "no overflow in the length");
    zw_decref(big);
    zw_decref(r);
}

Test(obj_iter, iterators_of_containers_end_and_stay_ended)
{
    zw_obj *t = zw_tuple_pack(rt, 2, zw_none(rt), zw_true(rt));
    zw_obj *it = zw_iter(t);
    zw_obj *a = zw_iter_next(it), *b = zw_iter_next(it);
    cr_assert_eq(a, zw_none(rt));
    cr_assert_eq(b, zw_true(rt));
    cr_assert_null(zw_iter_next(it));
    cr_assert_eq(zw_err_occurred(rt), ZW_NoError, "exhaustion is not an error");
    cr_assert_null(zw_iter_next(it));
    cr_assert_eq(zw_iter(it), it, "an iterator is its own iterator");
    zw_decref(it);
    zw_decref(a), zw_decref(b), zw_decref(it), zw_decref(t);
    zw_obj *one = zwt_int(1);
    cr_assert_null(zw_iter(one));
    cr_assert_str_eq(zw_errmsg(rt), "TypeError: 'int' object is not iterable");
    zw_err_clear(rt);
    zw_decref(one);
}

/* The talk's generator: yield 0 .. n-1 with a counter in the state. */
typedef struct counter {
    int64_t i, n;
} counter;

static zw_obj *
count_body(zw_rt *r, void *state)
{
    counter *c = state;
    if (c->i >= c->n)
        return NULL;
    return zw_int_from_i64(r, c->i++);
}

static zw_obj *
counter_gen(int64_t n)
{
    zw_obj *g = zw_gen_new(rt, sizeof(counter), count_body, NULL);
    cr_assert_not_null(g);
    counter *c = zw_gen_state(g);
    cr_assert_eq(c->i, 0, "the state starts zeroed");
    c->n = n;
    return g;
}

Test(obj_iter, a_generator_resumes_with_its_state_and_sums_like_a_list)
{
    zw_obj *g = counter_gen(10000);
    zw_obj *s = zw_sum(g);
    cr_assert_eq(zw_int_as_i64(s), 49995000);
    cr_assert_null(zw_iter_next(g), "exhausted");
    zw_decref(s), zw_decref(g);
    zw_obj *r = zw_range_new(rt, 0, 10000, 1);
    zw_obj *l = zw_list_from_iter(r);
    s = zw_sum(l);
    cr_assert_eq(zw_int_as_i64(s), 49995000);
    zw_decref(s), zw_decref(l), zw_decref(r);
    g = counter_gen(5);
    l = zw_list_from_iter(g);
    zwt_assert_repr(l, "[0, 1, 2, 3, 4]");
    zw_decref(l), zw_decref(g);
    /* python3.11: sys.getsizeof(list(g(n))) for a generator g of n items: the list grows by a
     * length hint of 8, then by appends, and keeps what it has when within half of it */
    struct { int64_t n; size_t size; } cases[] = {{5, 120}, {9, 184}, {100, 920}};
    for (size_t i = 0; i < 3; i++) {
        g = counter_gen(cases[i].n);
        l = zw_list_from_iter(g);
        cr_expect_eq(zw_getsizeof(l), cases[i].size, "list(g(%lld))", (long long)cases[i].n);
        zw_decref(l), zw_decref(g);
    }
}

Test(obj_iter, a_generator_costs_one_object_while_a_list_costs_every_item)
{
    size_t before = zw_rt_allocated_blocks(rt);
    zw_obj *g = counter_gen(10000);
    cr_assert_eq(zw_rt_allocated_blocks(rt), before + 1);
    zw_decref(g);
    zw_obj *r = zw_range_new(rt, 1000, 11000, 1);
    zw_obj *l = zw_list_from_iter(r);
    /* 10000 ints above 256 (one block each), the list object, its item array, the range */
    cr_assert_eq(zw_rt_allocated_blocks(rt), before + 10000 + 3);
    zw_decref(l), zw_decref(r);
}

typedef struct holder {
    zw_obj *held;
    int step;
} holder;

static int released;

static zw_obj *
hold_body(zw_rt *r, void *state)
{
    holder *h = state;
    if (h->step++ == 0)
        return zw_newref(h->held);
    zw_err_set(r, ZW_ValueError, "failed at step %d", h->step);
    return NULL;
}

static int
hold_traverse(void *state, zw_visit_fn visit, void *arg)
{
    holder *h = state;
    return h->held ? visit(h->held, arg) : 0;
}

static void
hold_release(void *state)
{
    holder *h = state;
    ZW_CLEAR(h->held);
    released++;
}

Test(obj_iter, a_failing_generator_reports_its_error_and_releases_its_state_once)
{
    zw_obj *s = zwt_str("held");
    zw_obj *g = zw_gen_new_ex(rt, sizeof(holder), hold_body, hold_traverse, hold_release);
    ((holder *)zw_gen_state(g))->held = zw_newref(s);
    released = 0;
    zw_obj *v = zw_iter_next(g);
    cr_assert_eq(v, s);
    zw_decref(v);
    cr_assert_null(zw_iter_next(g));
    cr_assert_str_eq(zw_errmsg(rt), "ValueError: failed at step 2");
    zw_err_clear(rt);
    cr_assert_eq(released, 1);
    cr_assert_eq(zw_getrefcount(s), 1);
    cr_assert_null(zw_iter_next(g));
    cr_assert_eq(zw_err_occurred(rt), ZW_NoError);
    zw_decref(g);
    cr_assert_eq(released, 1);
    /* a generator dropped before its end releases its state too */
    g = zw_gen_new_ex(rt, sizeof(holder), hold_body, hold_traverse, hold_release);
    ((holder *)zw_gen_state(g))->held = zw_newref(s);
    zw_decref(g);
    cr_assert_eq(released, 2);
    cr_assert_eq(zw_getrefcount(s), 1);
    zw_decref(s);
}

Test(obj_iter, sum_mixes_ints_and_floats_and_refuses_strs)
{
    zw_obj *l = zw_list_new(rt, 0);
    zw_obj *one = zwt_int(1), *half = zw_float_new(rt, 0.5);
    zw_list_append(l, one);
    zw_list_append(l, half);
    zw_list_append(l, one);
    zw_obj *s = zw_sum(l);
    cr_assert(zw_float_check(s));
    cr_assert_float_eq(zw_float_as_double(s), 2.5, 1e-12);
    zw_decref(s);
    zw_obj *x = zwt_str("x");
    zw_list_append(l, x);
    cr_assert_null(zw_sum(l));
    cr_assert_eq(zw_err_occurred(rt), ZW_TypeError);
    zw_err_clear(rt);
    zw_decref(x), zw_decref(l), zw_decref(one), zw_decref(half);
}
