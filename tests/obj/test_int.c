/* tests/obj/test_int.c - int and bool against CPython 3.11: sizes (sys.getsizeof), hashes,
 * decimal text both ways, Python's floor division and modulo on every sign combination,
 * random arithmetic checked against __int128, the small-int singletons, errors (overflow,
 * invalid literals, division by zero, wrong types, MemoryError) and no leaked block after any
 * test. Expected values computed once with python3 (3.11.7); the command is beside each. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <zerowaste/zerowaste.h>

#include "zw_obj_test.h"
#include "zw_test.h"

/* ---- helpers ---- */

/* 10**k as decimal text, for literals too long for a line */
#define Z10        "0000000000"
#define Z100       Z10 Z10 Z10 Z10 Z10 Z10 Z10 Z10 Z10 Z10
#define TEN_TO_100 "1" Z100

TestSuite(obj_int, .init = zwt_rt_setup, .fini = zwt_rt_teardown);

static zw_obj *
num(const char *s)
{
    zw_obj *o = zw_int_from_str(rt, s);
    cr_assert_not_null(o, "zw_int_from_str(\"%s\"): %s", s, zw_errmsg(rt));
    return o;
}

/* Asserts that the decimal text of `o` is `want`, then drops `o` (the test's reference). */
static void
expect_text(zw_obj *o, const char *want)
{
    cr_assert_not_null(o, "NULL where %s was expected: %s", want, zw_errmsg(rt));
    zw_obj *s = zw_int_to_str(o);
    cr_assert_not_null(s, "zw_int_to_str: %s", zw_errmsg(rt));
    const char *got = zw_str_utf8(s, NULL);
    cr_expect_str_eq(got, want);
    zw_decref(s);
    zw_decref(o);
}

static void
i128_text(__int128 v, char *buf, size_t cap)
{
    char tmp[64];
    size_t n = 0;
    unsigned __int128 m = v < 0 ? -(unsigned __int128)v : (unsigned __int128)v;
    do {
        tmp[n++] = (char)('0' + (int)(m % 10));
        m /= 10;
    } while (m != 0);
    size_t k = 0;
    if (v < 0)
        buf[k++] = '-';
    while (n > 0 && k < cap - 1)
        buf[k++] = tmp[--n];
    buf[k] = '\0';
}

static zw_obj *
from_i128(__int128 v)
{
    char buf[64];
    i128_text(v, buf, sizeof(buf));
    return num(buf);
}

/* A random value of up to `bits` bits (at least 1), either sign. */
static __int128
random_i128(zwt_rng *r, int bits)
{
    int b = (int)zwt_range(r, 1, (size_t)bits);
    unsigned __int128 m = ((unsigned __int128)zwt_next(r) << 64) | zwt_next(r);
    m >>= 128 - b;
    __int128 v = (__int128)m;
    return zwt_below(r, 2) ? -v : v;
}

/* ---- sizes: sys.getsizeof in 3.11 ---- */

/* python3 -c 'import sys; print([sys.getsizeof(x) for x in (0, 1, 111, 2**30, 2**60,
 *     10**100, -5, True, False)])' -> [28, 28, 28, 32, 36, 72, 28, 28, 28] */
Test(obj_int, getsizeof_matches_cpython_3_11)
{
    static const struct {
        const char *text;
        size_t size;
    } cases[] = {
        {"0", 28},
        {"1", 28},
        {"111", 28},
        {"1073741824", 32},          /* 2**30 */
        {"1152921504606846976", 36}, /* 2**60 */
        {TEN_TO_100, 72},            /* 10**100 */
        {"-5", 28},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        zw_obj *o = num(cases[i].text);
        cr_expect_eq(zw_getsizeof(o), cases[i].size, "getsizeof(%s) = %zu, CPython says %zu",
                     cases[i].text, zw_getsizeof(o), cases[i].size);
        zw_decref(o);
    }
    cr_expect_eq(zw_getsizeof(zw_true(rt)), 28);
    cr_expect_eq(zw_getsizeof(zw_false(rt)), 28);
}

/* ---- construction and the singletons ---- */

Test(obj_int, small_ints_are_singletons_and_allocate_nothing)
{
    for (int64_t v = -5; v <= 256; v++) {
        zw_obj *a = zw_int_from_i64(rt, v);
        zw_obj *b = zw_int_from_u64(rt, (uint64_t)(v < 0 ? 0 : v));
        if (v >= 0)
            cr_expect_eq(a, b, "%lld is not a singleton", (long long)v);
        cr_expect_eq(zw_int_as_i64(a), v);
        zw_decref(a);
        zw_decref(b);
    }
    cr_expect_eq(zw_rt_allocated_blocks(rt), baseline);
    zw_obj *a = zw_int_from_i64(rt, 257);
    zw_obj *b = zw_int_from_i64(rt, 257);
    cr_expect_neq(a, b, "257 is outside the cache, as in CPython");
    cr_expect_eq(zw_rt_allocated_blocks(rt), baseline + 2);
    zw_decref(a);
    zw_decref(b);
}

Test(obj_int, results_in_small_range_are_the_singletons)
{
    zw_obj *big = num("1267650600228229401496703205376"); /* 2**100 */
    zw_obj *big3 = num("1267650600228229401496703205379");
    zw_obj *d = zw_int_sub(big3, big);
    zw_obj *three = zw_int_from_i64(rt, 3);
    cr_expect_eq(d, three, "2**100+3 - 2**100 must be the singleton 3");
    zw_obj *z = zw_int_sub(big, big);
    cr_expect_eq(z, zw_int_from_i64(rt, 0));
    zw_decref(z); /* twice: zw_int_from_i64(0) above took a reference too */
    zw_decref(z);
    zw_decref(d);
    zw_decref(three);
    zw_decref(big);
    zw_decref(big3);
}

Test(obj_int, i64_and_u64_extremes_round_trip)
{
    expect_text(zw_int_from_i64(rt, INT64_MIN), "-9223372036854775808");
    expect_text(zw_int_from_i64(rt, INT64_MAX), "9223372036854775807");
    expect_text(zw_int_from_u64(rt, UINT64_MAX), "18446744073709551615");
    expect_text(zw_int_from_u64(rt, (uint64_t)1 << 63), "9223372036854775808");
    expect_text(zw_int_from_i64(rt, -((int64_t)1 << 30)), "-1073741824");
    zw_obj *o = zw_int_from_i64(rt, INT64_MIN);
    cr_expect_eq(zw_int_as_i64(o), INT64_MIN);
    zw_decref(o);
    o = zw_int_from_i64(rt, INT64_MAX);
    cr_expect_eq(zw_int_as_i64(o), INT64_MAX);
    zw_decref(o);
}

Test(obj_int, as_i64_overflows_past_int64)
{
    const char *too_big[] = {"9223372036854775808", "-9223372036854775809", "18446744073709551616",
                             "1267650600228229401496703205376"};
    for (size_t i = 0; i < sizeof(too_big) / sizeof(too_big[0]); i++) {
        zw_obj *o = num(too_big[i]);
        cr_expect_eq(zw_int_as_i64(o), -1);
        cr_expect_eq(zw_err_occurred(rt), ZW_OverflowError, "%s: %s", too_big[i], zw_errmsg(rt));
        cr_expect_str_eq(zw_err_message(rt), "Python int too large to convert to C int64_t");
        zw_err_clear(rt);
        zw_decref(o);
    }
}

/* ---- decimal text ---- */

Test(obj_int, powers_have_their_known_decimal_text)
{
    zw_obj *two = zw_int_from_i64(rt, 2);
    zw_obj *ten = zw_int_from_i64(rt, 10);
    zw_obj *p2 = zw_int_from_i64(rt, 1);
    zw_obj *p10 = zw_int_from_i64(rt, 1);
    for (int i = 0; i < 100; i++) {
        ZW_SETREF(p2, zw_int_mul(p2, two));
        ZW_SETREF(p10, zw_int_mul(p10, ten));
        cr_assert_not_null(p2);
        cr_assert_not_null(p10);
    }
    expect_text(p2, "1267650600228229401496703205376");
    char want[102] = "1";
    memset(want + 1, '0', 100);
    want[101] = '\0';
    expect_text(p10, want);
    zw_decref(two);
    zw_decref(ten);
}

Test(obj_int, parses_signs_whitespace_and_leading_zeros_as_python)
{
    expect_text(zw_int_from_str(rt, " 007\n"), "7");
    expect_text(zw_int_from_str(rt, "\t+5\v\f\r"), "5");
    expect_text(zw_int_from_str(rt, "-0"), "0");
    expect_text(zw_int_from_str(rt, "-000000000000000000000000000000000000000001"), "-1");
    /* python3 -c 'print(str(3**200))' */
    const char *p3 = "265613988875874769338781322035779626829233452653394495974574961739092490901"
                     "302182994384699044001";
    expect_text(num(p3), p3);
    /* python3 -c 'print(str(-(7**150)))' */
    const char *m7 = "-58170929338243431654325240033911691649198596497195405326275672076076568590"
                     "34356995566589707894210757866827613621721127496191249";
    expect_text(num(m7), m7);
}

Test(obj_int, invalid_literals_are_value_errors_quoting_the_text)
{
    /* python3: for s in ...: int(s) -> the messages below */
    static const struct {
        const char *text;
        const char *message;
    } cases[] = {
        {"", "invalid literal for int() with base 10: ''"},
        {" ", "invalid literal for int() with base 10: ' '"},
        {"+", "invalid literal for int() with base 10: '+'"},
        {"-", "invalid literal for int() with base 10: '-'"},
        {"1 2", "invalid literal for int() with base 10: '1 2'"},
        {"1_000", "invalid literal for int() with base 10: '1_000'"},
        {"x'y", "invalid literal for int() with base 10: \"x'y\""},
        {"a\"b'", "invalid literal for int() with base 10: 'a\"b\\''"},
        {"\x01", "invalid literal for int() with base 10: '\\x01'"},
        {"12a", "invalid literal for int() with base 10: '12a'"},
        {"0x10", "invalid literal for int() with base 10: '0x10'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cr_expect_null(zw_int_from_str(rt, cases[i].text), "'%s' parsed", cases[i].text);
        cr_expect_eq(zw_err_occurred(rt), ZW_ValueError);
        cr_expect_str_eq(zw_err_message(rt), cases[i].message);
        zw_err_clear(rt);
    }
}

Test(obj_int, invalid_literal_quotes_are_cut_at_200_characters)
{
    /* python3 -c 'for s in ["x"*300, "\x01"*100]: ...': str(e) has 240 characters and ends in
     * "xxxx" (no closing quote) and in "\\x01\\x0" */
    char text[301];
    memset(text, 'x', 300);
    text[300] = '\0';
    cr_expect_null(zw_int_from_str(rt, text));
    const char *m = zw_err_message(rt);
    cr_expect_eq(strlen(m), 240);
    cr_expect_eq(m[strlen(m) - 1], 'x');
    zw_err_clear(rt);
    memset(text, 1, 100);
    text[100] = '\0';
    cr_expect_null(zw_int_from_str(rt, text));
    m = zw_err_message(rt);
    cr_expect_eq(strlen(m), 240);
    cr_expect_str_eq(m + strlen(m) - 8, "1\\x01\\x0");
    zw_err_clear(rt);
}

Test(obj_int, huge_decimals_round_trip)
{
    zwt_rng r = {.s = 20261128};
    char *buf = malloc(3001);
    for (int iter = 0; iter < 200; iter++) {
        size_t n = zwt_range(&r, 1, 3000);
        size_t k = 0;
        if (zwt_below(&r, 2))
            buf[k++] = '-';
        buf[k++] = (char)('1' + zwt_below(&r, 9));
        for (size_t i = 1; i < n && k < 3000; i++)
            buf[k++] = (char)('0' + zwt_below(&r, 10));
        buf[k] = '\0';
        expect_text(num(buf), buf);
    }
    free(buf);
}

/* ---- arithmetic ---- */

/* Python's // and % on int128, the reference. */
static void
floor_divmod(__int128 a, __int128 b, __int128 *q, __int128 *m)
{
    *q = a / b;
    *m = a % b;
    if (*m != 0 && ((*m < 0) != (b < 0))) {
        *q -= 1;
        *m += b;
    }
}

static void
expect_i128(zw_obj *o, __int128 want, const char *what, __int128 a, __int128 b)
{
    char w[64], sa[64], sb[64];
    i128_text(want, w, sizeof(w));
    i128_text(a, sa, sizeof(sa));
    i128_text(b, sb, sizeof(sb));
    cr_assert_not_null(o, "%s(%s, %s): %s", what, sa, sb, zw_errmsg(rt));
    zw_obj *s = zw_int_to_str(o);
    cr_expect_str_eq(zw_str_utf8(s, NULL), w, "%s(%s, %s)", what, sa, sb);
    zw_decref(s);
    zw_decref(o);
}

Test(obj_int, random_arithmetic_matches_int128)
{
    uint64_t seed;
    cr_assert_eq(zwt_seed(424242, &seed), 0);
    zwt_rng r = {.s = seed};
    for (int iter = 0; iter < 3000; iter++) {
        int bits = (int)zwt_range(&r, 1, 120);
        __int128 a = random_i128(&r, bits);
        __int128 b = random_i128(&r, (int)zwt_range(&r, 1, 120));
        zw_obj *x = from_i128(a);
        zw_obj *y = from_i128(b);
        expect_i128(zw_int_add(x, y), a + b, "add", a, b);
        expect_i128(zw_int_sub(x, y), a - b, "sub", a, b);
        if (b != 0) {
            __int128 q, m;
            floor_divmod(a, b, &q, &m);
            expect_i128(zw_int_floordiv(x, y), q, "floordiv", a, b);
            expect_i128(zw_int_mod(x, y), m, "mod", a, b);
        }
        zw_obj *neg = zw_int_neg(x);
        expect_i128(neg, -a, "neg", a, 0);
        cr_expect_eq(zw_int_cmp(x, y), a < b ? -1 : a > b, "cmp");
        cr_expect_eq(zw_int_sign(x), a < 0 ? -1 : a > 0);
        zw_decref(x);
        zw_decref(y);
        /* products of operands up to 2**63 fit in int128 */
        __int128 c = random_i128(&r, (int)zwt_range(&r, 1, 63));
        __int128 d = random_i128(&r, (int)zwt_range(&r, 1, 63));
        x = from_i128(c);
        y = from_i128(d);
        expect_i128(zw_int_mul(x, y), c * d, "mul", c, d);
        zw_decref(x);
        zw_decref(y);
    }
}

Test(obj_int, floor_division_and_modulo_follow_the_divisor_sign)
{
    /* python3 -c 'print([divmod(a, b) for a in (7, -7) for b in (2, -2)])' */
    static const int64_t small[][4] = {
        {7, 2, 3, 1}, {7, -2, -4, -1}, {-7, 2, -4, 1}, {-7, -2, 3, -1},
        {6, 3, 2, 0}, {-6, 3, -2, 0},  {0, -5, 0, 0},  {1, 1000000000000, 0, 1},
    };
    for (size_t i = 0; i < sizeof(small) / sizeof(small[0]); i++) {
        zw_obj *a = zw_int_from_i64(rt, small[i][0]);
        zw_obj *b = zw_int_from_i64(rt, small[i][1]);
        zw_obj *q = zw_int_floordiv(a, b);
        zw_obj *m = zw_int_mod(a, b);
        cr_expect_eq(zw_int_as_i64(q), small[i][2], "%lld // %lld", (long long)small[i][0],
                     (long long)small[i][1]);
        cr_expect_eq(zw_int_as_i64(m), small[i][3], "%lld %% %lld", (long long)small[i][0],
                     (long long)small[i][1]);
        zw_decref(a);
        zw_decref(b);
        zw_decref(q);
        zw_decref(m);
    }
    /* python3 -c 'A = 2**100 + 1; B = 2**50 + 3; print([divmod(a, b) for a in (A, -A) for b
     *     in (B, -B)])' */
    static const char *const big[][4] = {
        {"1267650600228229401496703205377", "1125899906842627", "1125899906842621", "10"},
        {"1267650600228229401496703205377", "-1125899906842627", "-1125899906842622",
         "-1125899906842617"},
        {"-1267650600228229401496703205377", "1125899906842627", "-1125899906842622",
         "1125899906842617"},
        {"-1267650600228229401496703205377", "-1125899906842627", "1125899906842621", "-10"},
        /* python3 -c 'print(divmod(10**40 + 7, 97), divmod(-(10**40 + 7), 97))': one digit */
        {"10000000000000000000000000000000000000007", "97",
         "103092783505154639175257731958762886598", "1"},
        {"-10000000000000000000000000000000000000007", "97",
         "-103092783505154639175257731958762886599", "96"},
        /* python3 -c 'print(divmod(3**200, 7**50))': many digits by many digits */
        {"265613988875874769338781322035779626829233452653394495974574961739092490901302182994"
         "384699044001",
         "1798465042647412146620280340569649349251249",
         "147689269781346654697366079240021362541"
         "982658661987020",
         "1043054234746676783066714664998769142256021"},
    };
    for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
        zw_obj *a = num(big[i][0]);
        zw_obj *b = num(big[i][1]);
        expect_text(zw_int_floordiv(a, b), big[i][2]);
        expect_text(zw_int_mod(a, b), big[i][3]);
        zw_decref(a);
        zw_decref(b);
    }
}

/* A random int of 1..ndig 30-bit digits, either sign, with runs of all-ones and all-zero
 * digits that drive algorithm D into its rare corrections (q estimate too large, add back). */
static zw_obj *
random_big(zwt_rng *r, size_t ndig)
{
    size_t n = zwt_range(r, 1, ndig);
    zw_obj *acc = zw_int_from_i64(rt, 0);
    zw_obj *base = num("1073741824"); /* 2**30 */
    for (size_t i = 0; i < n; i++) {
        uint64_t kind = zwt_below(r, 4);
        int64_t d = kind == 0 ? 0x3FFFFFFF : kind == 1 ? 0 : (int64_t)zwt_below(r, 1u << 30);
        if (i == 0 && d == 0)
            d = 1;
        zw_obj *dig = zw_int_from_i64(rt, d);
        zw_obj *shifted = zw_int_mul(acc, base);
        cr_assert_not_null(shifted);
        ZW_SETREF(acc, zw_int_add(shifted, dig));
        zw_decref(shifted);
        zw_decref(dig);
    }
    zw_decref(base);
    if (zwt_below(r, 2))
        ZW_SETREF(acc, zw_int_neg(acc));
    return acc;
}

Test(obj_int, big_division_satisfies_its_identities)
{
    uint64_t seed;
    cr_assert_eq(zwt_seed(99, &seed), 0);
    zwt_rng r = {.s = seed};
    for (int iter = 0; iter < 2000; iter++) {
        zw_obj *a = random_big(&r, 40);
        zw_obj *b = random_big(&r, 20);
        if (zw_int_sign(b) == 0) {
            zw_decref(a);
            zw_decref(b);
            continue;
        }
        zw_obj *q = zw_int_floordiv(a, b);
        zw_obj *m = zw_int_mod(a, b);
        cr_assert(q != NULL && m != NULL, "%s", zw_errmsg(rt));
        /* a == q * b + m, m has b's sign (or is 0) and |m| < |b| */
        zw_obj *qb = zw_int_mul(q, b);
        zw_obj *back = zw_int_add(qb, m);
        cr_assert_eq(zw_int_cmp(back, a), 0, "q * b + m != a at iteration %d", iter);
        cr_assert(zw_int_sign(m) == 0 || zw_int_sign(m) == zw_int_sign(b), "sign of m");
        zw_obj *nb = zw_int_sign(b) < 0 ? zw_int_neg(b) : zw_newref(b);
        zw_obj *nm = zw_int_sign(m) < 0 ? zw_int_neg(m) : zw_newref(m);
        cr_assert_lt(zw_int_cmp(nm, nb), 0, "|m| >= |b| at iteration %d", iter);
        /* (a * b) // b == a and (a * b) % b == 0 */
        zw_obj *ab = zw_int_mul(a, b);
        zw_obj *ab_b = zw_int_floordiv(ab, b);
        zw_obj *ab_m = zw_int_mod(ab, b);
        cr_assert_eq(zw_int_cmp(ab_b, a), 0);
        cr_assert_eq(zw_int_sign(ab_m), 0);
        zw_obj *objs[] = {a, b, q, m, qb, back, nb, nm, ab, ab_b, ab_m};
        for (size_t k = 0; k < sizeof(objs) / sizeof(objs[0]); k++)
            zw_decref(objs[k]);
    }
}

Test(obj_int, karatsuba_products_are_exact)
{
    /* (10**n - 1)**2 == 9...9 8 0...0 1 (n - 1 nines, n - 1 zeros); n = 3000 is 333 digits */
    enum { N = 3000 };
    char *text = malloc(2 * N + 1);
    memset(text, '9', N);
    text[N] = '\0';
    zw_obj *nines = num(text);
    zw_obj *sq = zw_int_mul(nines, nines);
    memset(text, '9', N - 1);
    text[N - 1] = '8';
    memset(text + N, '0', N - 1);
    text[2 * N - 1] = '1';
    text[2 * N] = '\0';
    expect_text(sq, text);
    zw_decref(nines);
    free(text);
    /* distributivity across the cutoff, balanced and lopsided: a (b + c) == a b + a c */
    zwt_rng r = {.s = 70};
    for (int iter = 0; iter < 60; iter++) {
        zw_obj *a = random_big(&r, 400);
        zw_obj *b = random_big(&r, 400);
        zw_obj *c = random_big(&r, 150);
        zw_obj *bc = zw_int_add(b, c);
        zw_obj *left = zw_int_mul(a, bc);
        zw_obj *ab = zw_int_mul(a, b);
        zw_obj *ac = zw_int_mul(a, c);
        zw_obj *right = zw_int_add(ab, ac);
        cr_assert(left != NULL && right != NULL, "%s", zw_errmsg(rt));
        cr_assert_eq(zw_int_cmp(left, right), 0, "a (b + c) != a b + a c at iteration %d", iter);
        zw_obj *back = zw_int_floordiv(ab, b);
        cr_assert_eq(zw_int_cmp(back, a), 0, "(a b) // b != a at iteration %d", iter);
        zw_obj *objs[] = {a, b, c, bc, left, ab, ac, right, back};
        for (size_t k = 0; k < sizeof(objs) / sizeof(objs[0]); k++)
            zw_decref(objs[k]);
    }
}

Test(obj_int, division_by_zero_is_an_error)
{
    zw_obj *a = num("123456789012345678901234567890");
    zw_obj *s = zw_int_from_i64(rt, 5);
    zw_obj *z = zw_int_from_i64(rt, 0);
    zw_obj *args[] = {a, s};
    for (int i = 0; i < 2; i++) {
        cr_expect_null(zw_int_floordiv(args[i], z));
        cr_expect_eq(zw_err_occurred(rt), ZW_ZeroDivisionError);
        cr_expect_str_eq(zw_err_message(rt), "integer division or modulo by zero");
        zw_err_clear(rt);
        cr_expect_null(zw_int_mod(args[i], z));
        cr_expect_eq(zw_err_occurred(rt), ZW_ZeroDivisionError);
        zw_err_clear(rt);
    }
    zw_decref(a);
    zw_decref(s);
    zw_decref(z);
}

Test(obj_int, other_types_are_type_errors)
{
    zw_obj *i = zw_int_from_i64(rt, 1);
    zw_obj *f = zw_float_new(rt, 1.0);
    zw_obj *(*ops[])(zw_obj *, zw_obj *) = {zw_int_add, zw_int_sub, zw_int_mul, zw_int_floordiv,
                                            zw_int_mod};
    for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
        cr_expect_null(ops[k](i, f));
        cr_expect_eq(zw_err_occurred(rt), ZW_TypeError, "op %zu", k);
        zw_err_clear(rt);
        cr_expect_null(ops[k](f, i));
        cr_expect_eq(zw_err_occurred(rt), ZW_TypeError, "op %zu swapped", k);
        zw_err_clear(rt);
    }
    zw_obj *ops_add = zw_int_add(i, f);
    cr_expect_null(ops_add);
    cr_expect_str_eq(zw_err_message(rt), "unsupported operand type(s) for +: 'int' and 'float'");
    zw_err_clear(rt);
    cr_expect_null(zw_int_neg(f));
    cr_expect_eq(zw_err_occurred(rt), ZW_TypeError);
    zw_err_clear(rt);
    cr_expect_eq(zw_int_as_i64(f), -1);
    cr_expect_eq(zw_err_occurred(rt), ZW_TypeError);
    zw_err_clear(rt);
    cr_expect(!zw_int_check(f));
    cr_expect(zw_int_check(i));
    cr_expect(zw_int_check(zw_true(rt)));
    zw_decref(i);
    zw_decref(f);
}

/* ---- hash, compare, repr ---- */

Test(obj_int, hashes_equal_cpython)
{
    /* python3 -c 'print([hash(x) for x in (2**61, -1, 2**100, -2**100, 10**100, 2**61-1,
     *     2**62, -(2**63), 2**64+5, 2**90+12345, -(3**200))])' */
    static const struct {
        const char *text;
        int64_t hash;
    } cases[] = {
        {"2305843009213693952", 1},
        {"-1", -2},
        {"1267650600228229401496703205376", 549755813888},
        {"-1267650600228229401496703205376", -549755813888},
        {TEN_TO_100, 910685213754167845},
        {"2305843009213693951", 0},
        {"4611686018427387904", 2},
        {"-9223372036854775808", -4},
        {"18446744073709551621", 13},
        {"1237940039285380274899136569", 536883257},
        {"-265613988875874769338781322035779626829233452653394495974574961739092490901302182994"
         "384699044001",
         -424410663027747676},
        {"0", 0},
        {"-2", -2},
        {"12345", 12345},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        zw_obj *o = num(cases[i].text);
        cr_expect_eq(zw_hash(o), cases[i].hash, "hash(%s) = %lld, CPython says %lld", cases[i].text,
                     (long long)zw_hash(o), (long long)cases[i].hash);
        zw_decref(o);
    }
    cr_expect_eq(zw_hash(zw_true(rt)), 1);
    cr_expect_eq(zw_hash(zw_false(rt)), 0);
}

Test(obj_int, compares_by_value)
{
    zw_obj *a = num("-1267650600228229401496703205376");
    zw_obj *b = num("-5");
    zw_obj *c = num("1267650600228229401496703205376");
    zw_obj *c2 = num("1267650600228229401496703205376");
    cr_expect_eq(zw_compare(a, b, ZW_LT), 1);
    cr_expect_eq(zw_compare(b, c, ZW_LT), 1);
    cr_expect_eq(zw_compare(c, a, ZW_GT), 1);
    cr_expect_eq(zw_compare(c, c2, ZW_EQ), 1);
    cr_expect_eq(zw_compare(c, c2, ZW_NE), 0);
    cr_expect_eq(zw_compare(c, c2, ZW_GE), 1);
    cr_expect_eq(zw_compare(a, c, ZW_LE), 1);
    cr_expect_eq(zw_int_cmp(c, c2), 0);
    cr_expect_eq(zw_int_cmp(a, b), -1);
    cr_expect_eq(zw_compare(zw_true(rt), c, ZW_LT), 1);
    zw_obj *one = zw_int_from_i64(rt, 1);
    cr_expect_eq(zw_equal(zw_true(rt), one), 1, "True == 1");
    cr_expect_eq(zw_hash(zw_true(rt)), zw_hash(one));
    zw_decref(one);
    zw_decref(a);
    zw_decref(b);
    zw_decref(c);
    zw_decref(c2);
}

static void
expect_repr(zw_obj *o, const char *want)
{
    zw_obj *r = zw_repr(o);
    cr_assert_not_null(r, "repr: %s", zw_errmsg(rt));
    cr_expect_str_eq(zw_str_utf8(r, NULL), want);
    zw_decref(r);
}

Test(obj_int, bool_is_an_int_with_its_own_repr)
{
    expect_repr(zw_true(rt), "True");
    expect_repr(zw_false(rt), "False");
    zw_obj *i = zw_int_from_i64(rt, -42);
    expect_repr(i, "-42");
    zw_decref(i);
    cr_expect_str_eq(zw_type_name(zw_type_of(zw_true(rt))), "bool");
    cr_expect(zw_type_is_subtype(zw_type_of(zw_true(rt)), zw_builtin_type(rt, ZW_T_INT)));
    zw_obj *t = zw_bool_from(rt, true);
    cr_expect_eq(t, zw_true(rt));
    zw_obj *two = zw_int_add(t, t);
    cr_expect_eq(zw_int_as_i64(two), 2);
    cr_expect_str_eq(zw_type_name(zw_type_of(two)), "int", "True + True is an int");
    zw_decref(two);
    zw_decref(t);
    /* True % 2**100 is the int 1, not True */
    zw_obj *big = num("1267650600228229401496703205376");
    zw_obj *m = zw_int_mod(zw_true(rt), big);
    cr_assert_not_null(m);
    cr_expect_str_eq(zw_type_name(zw_type_of(m)), "int");
    cr_expect_eq(zw_int_as_i64(m), 1);
    zw_decref(m);
    zw_decref(big);
    zw_obj *f = zw_bool_from(rt, false);
    cr_expect_eq(f, zw_false(rt));
    cr_expect_eq(zw_int_sign(f), 0);
    zw_decref(f);
}

Test(obj_int, debug_runtime_sees_each_int_live_and_dead)
{
    zw_rt *drt = zw_rt_new(&(zw_rt_config){.flags = ZW_RT_IGNORE_ENV | ZW_RT_DEBUG});
    cr_assert_not_null(drt);
    size_t live = zw_rt_live_objects(drt);
    zw_obj *a = zw_int_from_i64(drt, 1000);
    zw_obj *b = zw_int_from_str(drt, "-123456789012345678901234567890");
    zw_obj *c = zw_int_mul(a, b);
    zw_obj *small = zw_int_from_i64(drt, 7);
    cr_expect_eq(zw_rt_live_objects(drt), live + 3, "singletons are not registered");
    zw_decref(small);
    zw_decref(c);
    zw_decref(b);
    cr_expect_eq(zw_rt_live_objects(drt), live + 1);
    zw_decref(a);
    cr_expect_eq(zw_rt_live_objects(drt), live);
    zw_rt_free(drt);
}

/* ---- running out of memory ---- */

Test(obj_int, allocation_failure_is_a_memory_error)
{
    zw_rt_fail_nth(rt, 1);
    cr_expect_null(zw_int_from_i64(rt, 1000));
    cr_expect_eq(zw_err_occurred(rt), ZW_MemoryError);
    cr_expect(zw_rt_fault_fired(rt));
    zw_err_clear(rt);
    zw_rt_fail_nth(rt, 1);
    zw_obj *small = zw_int_from_i64(rt, 7); /* a singleton: nothing to allocate */
    cr_expect_not_null(small);
    cr_expect(!zw_rt_fault_fired(rt));
    zw_rt_fail_nth(rt, 0);
    zw_decref(small);
}

/* Runs `op` with allocation n failing, for n = 1, 2, ... until a run succeeds without the
 * fault firing; each failed run must report MemoryError and leak nothing. */
static void
fail_each_allocation(zw_obj *(*op)(zw_obj *, zw_obj *), zw_obj *a, zw_obj *b, const char *name)
{
    size_t before = zw_rt_allocated_blocks(rt);
    for (long n = 1;; n++) {
        zw_rt_fail_nth(rt, n);
        zw_obj *r = op(a, b);
        bool fired = zw_rt_fault_fired(rt);
        zw_rt_fail_nth(rt, 0);
        if (r != NULL) {
            zw_decref(r);
        } else {
            cr_assert(fired, "%s failed with no fault injected (n=%ld): %s", name, n,
                      zw_errmsg(rt));
            cr_assert_eq(zw_err_occurred(rt), ZW_MemoryError, "%s: %s", name, zw_errmsg(rt));
            zw_err_clear(rt);
        }
        cr_assert_eq(zw_rt_allocated_blocks(rt), before, "%s leaked with n=%ld", name, n);
        if (!fired)
            break;
    }
}

static zw_obj *
to_str_op(zw_obj *a, zw_obj *b)
{
    return zw_int_to_str(a);
}

static zw_obj *
from_str_op(zw_obj *a, zw_obj *b)
{
    zw_obj *s = zw_int_to_str(a);
    if (s == NULL)
        return NULL;
    zw_obj *r = zw_int_from_str(rt, zw_str_utf8(s, NULL));
    zw_decref(s);
    return r;
}

Test(obj_int, every_failed_allocation_is_a_clean_memory_error)
{
    zw_obj *a = num("-265613988875874769338781322035779626829233452653394495974574961739092490"
                    "901302182994384699044001");
    zw_obj *b = num("1798465042647412146620280340569649349251249");
    zw_obj *(*ops[])(zw_obj *, zw_obj *) = {zw_int_add, zw_int_sub, zw_int_mul, zw_int_floordiv,
                                            zw_int_mod, to_str_op,  from_str_op};
    const char *names[] = {"add", "sub", "mul", "floordiv", "mod", "to_str", "from_str"};
    for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++)
        fail_each_allocation(ops[k], a, b, names[k]);
    zw_decref(a);
    zw_decref(b);
    /* Karatsuba's scratch space, balanced (300 x 250 digits) and lopsided (300 x 100) */
    zwt_rng r = {.s = 3};
    zw_obj *x = random_big(&r, 1);
    zw_obj *one = zw_int_from_i64(rt, 1);
    zw_obj *base = num("1073741824");
    for (int i = 0; i < 300; i++) { /* x = a 300-digit number with no zero digit */
        ZW_SETREF(x, zw_int_mul(x, base));
        ZW_SETREF(x, zw_int_add(x, base));
        ZW_SETREF(x, zw_int_sub(x, one));
    }
    zw_obj *y = zw_int_floordiv(x, base);
    for (int i = 0; i < 49; i++)
        ZW_SETREF(y, zw_int_floordiv(y, base));
    zw_obj *w = zw_int_floordiv(y, base);
    for (int i = 0; i < 149; i++)
        ZW_SETREF(w, zw_int_floordiv(w, base));
    fail_each_allocation(zw_int_mul, x, y, "karatsuba");
    fail_each_allocation(zw_int_mul, x, w, "lopsided");
    zw_decref(x);
    zw_decref(y);
    zw_decref(w);
    zw_decref(one);
    zw_decref(base);
}
