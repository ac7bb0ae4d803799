/* tests/obj/test_float.c - float against CPython 3.11: repr (shortest round trip, Python's
 * switch to exponents), hash (equal to the int hash for integral values), exact comparisons
 * with ints of any size, ints converted to the nearest double, the free list of 100, size,
 * errors, and no leaked block after any test. Expected values computed with python3 (3.11.7). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zerowaste/zerowaste.h>

#include "zw_obj_test.h"
#include "zw_test.h"

/* ---- helpers ---- */

/* 10**k as decimal text, for literals too long for a line */
#define Z10        "0000000000"
#define Z100       Z10 Z10 Z10 Z10 Z10 Z10 Z10 Z10 Z10 Z10
#define TEN_TO_300 "1" Z100 Z100 Z100
#define TEN_TO_400 "1" Z100 Z100 Z100 Z100

TestSuite(obj_float, .init = zwt_rt_setup, .fini = zwt_rt_teardown);

static zw_obj *
num(const char *s)
{
    zw_obj *o = zw_int_from_str(rt, s);
    cr_assert_not_null(o, "zw_int_from_str(\"%s\"): %s", s, zw_errmsg(rt));
    return o;
}

static zw_obj *
flt(double v)
{
    zw_obj *o = zw_float_new(rt, v);
    cr_assert_not_null(o, "zw_float_new: %s", zw_errmsg(rt));
    return o;
}

static void
expect_repr(double v, const char *want)
{
    zw_obj *f = flt(v);
    zw_obj *r = zw_repr(f);
    cr_assert_not_null(r, "repr: %s", zw_errmsg(rt));
    cr_expect_str_eq(zw_str_utf8(r, NULL), want, "repr(%.17g)", v);
    zw_decref(r);
    zw_decref(f);
}

/* ---- repr ---- */

Test(obj_float, repr_matches_python)
{
    /* python3 -c 'print([repr(v) for v in [...]])' */
    expect_repr(1e16, "1e+16");
    expect_repr(1e22, "1e+22");
    expect_repr(1e21, "1e+21");
    expect_repr(0.1, "0.1");
    expect_repr(-0.0, "-0.0");
    expect_repr(0.0, "0.0");
    expect_repr(1e-5, "1e-05");
    expect_repr(123456789012345678.0, "1.2345678901234568e+17");
    expect_repr(5e-324, "5e-324");
    expect_repr(1.7976931348623157e308, "1.7976931348623157e+308");
    expect_repr(1e15, "1000000000000000.0");
    expect_repr(0.0001, "0.0001");
    expect_repr(0.00012345, "0.00012345");
    expect_repr(1.0 / 3, "0.3333333333333333");
    expect_repr(2.0 / 3, "0.6666666666666666");
    expect_repr(100.0, "100.0");
    expect_repr(-1.5e-7, "-1.5e-07");
    expect_repr(9007199254740993.0, "9007199254740992.0");
    expect_repr(12345678.9, "12345678.9");
    expect_repr(INFINITY, "inf");
    expect_repr(-INFINITY, "-inf");
    expect_repr(NAN, "nan");
}

Test(obj_float, repr_of_powers_of_two_takes_the_shorter_neighbour)
{
    /* A power of two has a gap above twice the gap below: the correctly rounded 16-digit
     * decimal may miss while the one on the other side reads back, and Python prints that one.
     * python3 -c 'print([repr(2.0**k) for k in (405, 275, -549, -140, -808, 89)])' */
    expect_repr(0x1p405, "8.263199609878108e+121");
    expect_repr(0x1p275, "6.070840288205404e+82");
    expect_repr(0x1p-549, "5.426657103235053e-166");
    expect_repr(0x1p-140, "7.174648137343064e-43");
    expect_repr(0x1p-808, "5.858190679279809e-244");
    expect_repr(0x1p89, "6.189700196426902e+26");
    expect_repr(-0x1p89, "-6.189700196426902e+26");
}

Test(obj_float, repr_round_trips_random_doubles)
{
    zwt_rng r = {.s = 7};
    for (int i = 0; i < 20000; i++) {
        uint64_t bits = zwt_next(&r);
        double v;
        memcpy(&v, &bits, sizeof(v));
        if (!isfinite(v))
            continue;
        zw_obj *f = flt(v);
        zw_obj *s = zw_repr(f);
        cr_assert_not_null(s);
        const char *text = zw_str_utf8(s, NULL);
        cr_assert_eq(strtod(text, NULL), v, "repr %s does not read back as %.17g", text, v);
        zw_decref(s);
        zw_decref(f);
    }
}

/* ---- hash ---- */

Test(obj_float, hashes_equal_cpython)
{
    /* python3 -c 'print([hash(v) for v in (1.5, -1.0, 0.1, 1e100, float("inf"), -2.5,
     *     float("-inf"), 2.0**100, -0.0, 0.0, 1e-300, 123.456, 2.0**61, 5e-324)])' */
    static const struct {
        double v;
        int64_t hash;
    } cases[] = {
        {1.5, 1152921504606846977},
        {-1.0, -2},
        {0.1, 230584300921369408},
        {1e100, 1822893315824342674},
        {INFINITY, 314159},
        {-2.5, -1152921504606846978},
        {-INFINITY, -314159},
        {0x1p100, 549755813888},
        {-0.0, 0},
        {0.0, 0},
        {1e-300, 482449582752280463},
        {123.456, 1051464412201451643},
        {0x1p61, 1},
        {5e-324, 16777216},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        zw_obj *f = flt(cases[i].v);
        cr_expect_eq(zw_hash(f), cases[i].hash, "hash(%.17g) = %lld, CPython says %lld", cases[i].v,
                     (long long)zw_hash(f), (long long)cases[i].hash);
        zw_decref(f);
    }
}

Test(obj_float, integral_floats_hash_as_the_equal_int)
{
    const char *ints[] = {"0",
                          "1",
                          "-1",
                          "12345",
                          "1267650600228229401496703205376",
                          "-9223372036854775808",
                          "1000000000000000000000"};
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        zw_obj *n = num(ints[i]);
        zw_obj *f = flt(zw_float_as_double(n));
        cr_expect_eq(zw_equal(n, f), 1, "%s == float(%s)", ints[i], ints[i]);
        cr_expect_eq(zw_hash(n), zw_hash(f), "hash(%s) differs from its float's", ints[i]);
        zw_decref(n);
        zw_decref(f);
    }
}

Test(obj_float, nan_hashes_by_identity)
{
    zw_obj *a = flt(NAN);
    zw_obj *b = flt(NAN);
    cr_expect_neq(zw_hash(a), zw_hash(b));
    cr_expect_eq(zw_hash(a), zw_hash(a));
    cr_expect_eq(zw_equal(a, a), 1, "identity first, as containers");
    cr_expect_eq(zw_compare(a, a, ZW_EQ), 0, "nan != nan");
    zw_decref(a);
    zw_decref(b);
}

/* ---- comparisons ---- */

static int
cmp(zw_obj *a, zw_obj *b, zw_cmp op)
{
    int r = zw_compare(a, b, op);
    cr_assert_neq(r, -1, "compare failed: %s", zw_errmsg(rt));
    return r;
}

Test(obj_float, compares_with_ints_exactly)
{
    /* python3 -c 'print(2**53+1 > 2.0**53, 2**53+1 == 2.0**53, 10**400 > 1e308, ...)' */
    zw_obj *i53 = num("9007199254740993"); /* 2**53 + 1 */
    zw_obj *f53 = flt(0x1p53);
    cr_expect_eq(cmp(i53, f53, ZW_GT), 1);
    cr_expect_eq(cmp(i53, f53, ZW_EQ), 0);
    cr_expect_eq(cmp(f53, i53, ZW_LT), 1);
    cr_expect_eq(cmp(f53, i53, ZW_NE), 1);
    zw_obj *huge = num(TEN_TO_400);
    zw_obj *big_f = flt(1e308);
    cr_expect_eq(cmp(huge, big_f, ZW_GT), 1, "10**400 > 1e308");
    zw_obj *neg_huge = zw_int_neg(huge);
    zw_obj *neg_big_f = flt(-1e308);
    cr_expect_eq(cmp(neg_huge, neg_big_f, ZW_LT), 1, "-10**400 < -1e308");
    zw_obj *inf = flt(INFINITY);
    cr_expect_eq(cmp(huge, inf, ZW_LT), 1, "any int < inf");
    zw_obj *nan = flt(NAN);
    cr_expect_eq(cmp(huge, nan, ZW_EQ), 0);
    cr_expect_eq(cmp(huge, nan, ZW_LT), 0);
    cr_expect_eq(cmp(huge, nan, ZW_GE), 0);
    cr_expect_eq(cmp(huge, nan, ZW_NE), 1);
    /* 2**1000 == 2.0**1000; 2**1000 + 1 > 2.0**1000 */
    zw_obj *two = zw_int_from_i64(rt, 2);
    zw_obj *p = zw_int_from_i64(rt, 1);
    for (int k = 0; k < 1000; k++)
        ZW_SETREF(p, zw_int_mul(p, two));
    zw_obj *one = zw_int_from_i64(rt, 1);
    zw_obj *p1 = zw_int_add(p, one);
    zw_obj *fp = flt(0x1p1000);
    cr_expect_eq(cmp(p, fp, ZW_EQ), 1);
    cr_expect_eq(cmp(p1, fp, ZW_GT), 1);
    cr_expect_eq(cmp(fp, p1, ZW_LT), 1);
    /* fractions: 5 < 5.5 < 6, -5 > -5.5; 10**20 == 1e20 but 10**23 != 1e23 */
    zw_obj *five = zw_int_from_i64(rt, 5);
    zw_obj *six = zw_int_from_i64(rt, 6);
    zw_obj *mfive = zw_int_from_i64(rt, -5);
    zw_obj *half = flt(5.5);
    zw_obj *mhalf = flt(-5.5);
    cr_expect_eq(cmp(five, half, ZW_LT), 1);
    cr_expect_eq(cmp(six, half, ZW_GT), 1);
    cr_expect_eq(cmp(mfive, mhalf, ZW_GT), 1);
    cr_expect_eq(cmp(half, five, ZW_GE), 1);
    zw_obj *e20 = num("100000000000000000000");
    zw_obj *e23 = num("100000000000000000000000");
    zw_obj *f20 = flt(1e20);
    zw_obj *f23 = flt(1e23);
    cr_expect_eq(cmp(e20, f20, ZW_EQ), 1);
    cr_expect_eq(cmp(e23, f23, ZW_EQ), 0);
    cr_expect_eq(cmp(zw_true(rt), f53, ZW_LT), 1);
    zw_obj *fone = flt(1.0);
    cr_expect_eq(cmp(zw_true(rt), fone, ZW_EQ), 1, "True == 1.0");
    zw_obj *objs[] = {i53, f53,  huge, big_f, neg_huge, neg_big_f, inf, nan, two, p,   one, p1,
                      fp,  five, six,  mfive, half,     mhalf,     e20, e23, f20, f23, fone};
    for (size_t k = 0; k < sizeof(objs) / sizeof(objs[0]); k++)
        zw_decref(objs[k]);
}

Test(obj_float, compares_with_floats_and_refuses_other_types)
{
    zw_obj *a = flt(1.5);
    zw_obj *b = flt(2.5);
    cr_expect_eq(cmp(a, b, ZW_LT), 1);
    cr_expect_eq(cmp(a, b, ZW_LE), 1);
    cr_expect_eq(cmp(a, b, ZW_GT), 0);
    cr_expect_eq(cmp(a, a, ZW_EQ), 1);
    zw_obj *by = zw_bytes_new(rt, "x", 1);
    cr_expect_eq(zw_compare(a, by, ZW_LT), -1);
    cr_expect_eq(zw_err_occurred(rt), ZW_TypeError);
    zw_err_clear(rt);
    cr_expect_eq(zw_compare(a, by, ZW_EQ), 0, "== falls back to identity");
    zw_decref(by);
    zw_decref(a);
    zw_decref(b);
}

/* ---- ints as doubles ---- */

static void
expect_double(const char *text, double want)
{
    zw_obj *n = num(text);
    double got = zw_float_as_double(n);
    cr_expect_eq(zw_err_occurred(rt), ZW_NoError, "float(%s): %s", text, zw_errmsg(rt));
    cr_expect_eq(got, want, "float(%s) = %.17g, CPython says %.17g", text, got, want);
    zw_decref(n);
}

Test(obj_float, ints_convert_to_the_nearest_double)
{
    /* python3 -c 'print(repr(float(2**53+1)), repr(float(2**53+3)), ...)' */
    expect_double("9007199254740993", 9007199254740992.0); /* 2**53 + 1: tie, to even */
    expect_double("9007199254740995", 9007199254740996.0); /* 2**53 + 3: tie, to even */
    expect_double("-18446744073709551615", -1.8446744073709552e+19);
    expect_double("18446744073709553664", 1.8446744073709552e+19); /* 2**64 + 2**11: tie */
    expect_double("18446744073709553665", 1.8446744073709556e+19); /* just above the tie */
    expect_double(TEN_TO_300, 1e300);
    zw_obj *one = zw_int_from_i64(rt, 1);
    zw_obj *f = zw_float_new(rt, 2.5);
    cr_expect_eq(zw_float_as_double(one), 1.0);
    cr_expect_eq(zw_float_as_double(zw_true(rt)), 1.0);
    cr_expect_eq(zw_float_as_double(f), 2.5);
    zw_decref(one);
    zw_decref(f);
}

Test(obj_float, too_large_ints_overflow)
{
    /* 2**1024 - 2**970 rounds up to 2**1024; one less rounds down to DBL_MAX */
    zw_obj *two = zw_int_from_i64(rt, 2);
    zw_obj *p1024 = zw_int_from_i64(rt, 1);
    zw_obj *p970 = NULL;
    for (int k = 0; k < 1024; k++) {
        if (k == 970)
            p970 = zw_newref(p1024);
        ZW_SETREF(p1024, zw_int_mul(p1024, two));
    }
    zw_obj *up = zw_int_sub(p1024, p970);
    zw_obj *one = zw_int_from_i64(rt, 1);
    zw_obj *down = zw_int_sub(up, one);
    cr_expect_eq(zw_float_as_double(down), 1.7976931348623157e308);
    cr_expect_eq(zw_err_occurred(rt), ZW_NoError);
    zw_obj *bad[] = {up, p1024};
    for (int k = 0; k < 2; k++) {
        cr_expect_eq(zw_float_as_double(bad[k]), -1.0);
        cr_expect_eq(zw_err_occurred(rt), ZW_OverflowError);
        cr_expect_str_eq(zw_err_message(rt), "int too large to convert to float");
        zw_err_clear(rt);
    }
    zw_obj *by = zw_bytes_new(rt, "", 0);
    cr_expect_eq(zw_float_as_double(by), -1.0);
    cr_expect_eq(zw_err_occurred(rt), ZW_TypeError);
    zw_err_clear(rt);
    zw_obj *objs[] = {two, p1024, p970, up, one, down, by};
    for (size_t k = 0; k < sizeof(objs) / sizeof(objs[0]); k++)
        zw_decref(objs[k]);
}

/* ---- life: size, free list, errors ---- */

Test(obj_float, getsizeof_is_24_and_check_knows_floats)
{
    /* python3 -c 'import sys; print(sys.getsizeof(1.5))' -> 24 */
    zw_obj *f = flt(1.5);
    cr_expect_eq(zw_getsizeof(f), 24);
    cr_expect(zw_float_check(f));
    cr_expect(!zw_float_check(zw_true(rt)));
    cr_expect_str_eq(zw_type_name(zw_type_of(f)), "float");
    cr_expect_eq(zw_truth(f), 1);
    zw_decref(f);
}

Test(obj_float, free_list_keeps_up_to_100_dead_floats)
{
    enum { N = 150 };
    zw_obj *fs[N];
    for (int i = 0; i < N; i++)
        fs[i] = flt(i);
    cr_expect_eq(zw_rt_allocated_blocks(rt), baseline + N);
    zw_obj *last = fs[99]; /* the 100th freed fills the list; later ones go back to the heap */
    for (int i = 0; i < N; i++)
        zw_decref(fs[i]);
    cr_expect_eq(zw_rt_allocated_blocks(rt), baseline + 100, "100 kept, the rest freed");
    zw_obj *again = flt(3.25);
    cr_expect_eq(again, last, "the last float put on the list is reused first");
    cr_expect_eq(zw_getrefcount(again), 1);
    cr_expect_eq(zw_float_as_double(again), 3.25);
    cr_expect_eq(zw_rt_allocated_blocks(rt), baseline + 100, "a reused float allocates nothing");
    zw_decref(again);
    zw_rt_clear_freelists(rt);
    cr_expect_eq(zw_rt_allocated_blocks(rt), baseline);
}

Test(obj_float, free_list_is_invisible_to_the_debug_registry)
{
    zw_rt *drt = zw_rt_new(&(zw_rt_config){.flags = ZW_RT_IGNORE_ENV | ZW_RT_DEBUG});
    cr_assert_not_null(drt);
    size_t live = zw_rt_live_objects(drt);
    zw_obj *f = zw_float_new(drt, 1.0);
    cr_expect_eq(zw_rt_live_objects(drt), live + 1);
    zw_decref(f);
    cr_expect_eq(zw_rt_live_objects(drt), live, "a float on the free list is not alive");
    f = zw_float_new(drt, 2.0);
    cr_expect_eq(zw_rt_live_objects(drt), live + 1);
    zw_decref(f);
    zw_rt_clear_freelists(drt);
    zw_rt_free(drt);
}

Test(obj_float, allocation_failure_is_a_memory_error)
{
    zw_rt_fail_nth(rt, 1);
    cr_expect_null(zw_float_new(rt, 1.0));
    cr_expect_eq(zw_err_occurred(rt), ZW_MemoryError);
    zw_rt_fail_nth(rt, 0);
    zw_err_clear(rt);
}
