/* tests/obj/test_bytes.c - bytes against CPython 3.11: sizes, repr, hash (siphash13 keyed as
 * PYTHONHASHSEED, equal to the str of the same Latin-1 text), ordering, concatenation, the
 * empty singleton, the iterator, errors, and no leaked block after any test. Expected values
 * computed with python3 (3.11.7). */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include <zerowaste/zerowaste.h>

#include "zw_obj_test.h"
#include "zw_test.h"

/* ---- helpers ---- */

TestSuite(obj_bytes, .init = zwt_rt_setup, .fini = zwt_rt_teardown);

static zw_obj *
bytes(const void *data, size_t len)
{
    zw_obj *o = zw_bytes_new(rt, data, len);
    cr_assert_not_null(o, "zw_bytes_new: %s", zw_errmsg(rt));
    return o;
}

#define BYTES_LIT(s) bytes((s), sizeof(s) - 1)

static void
expect_repr(zw_obj *o, const char *want)
{
    zw_obj *r = zw_repr(o);
    cr_assert_not_null(r, "repr: %s", zw_errmsg(rt));
    cr_expect_str_eq(zw_str_utf8(r, NULL), want);
    zw_decref(r);
}

/* ---- construction and access ---- */

Test(obj_bytes, getsizeof_matches_cpython_3_11)
{
    /* python3 -c 'import sys; print(sys.getsizeof(b""), sys.getsizeof(b"abc"),
     *     sys.getsizeof(b"x"*100), sys.getsizeof(iter(b"abc")))' -> 33 36 133 48 */
    zw_obj *e = bytes("", 0);
    zw_obj *abc = BYTES_LIT("abc");
    char hundred[100];
    memset(hundred, 'x', sizeof(hundred));
    zw_obj *h = bytes(hundred, sizeof(hundred));
    zw_obj *it = zw_iter(abc);
    cr_assert_not_null(it);
    cr_expect_eq(zw_getsizeof(e), 33);
    cr_expect_eq(zw_getsizeof(abc), 36);
    cr_expect_eq(zw_getsizeof(h), 133);
    cr_expect_eq(zw_getsizeof(it), 48);
    zw_decref(it);
    zw_decref(e);
    zw_decref(abc);
    zw_decref(h);
}

Test(obj_bytes, empty_bytes_is_a_singleton_outside_the_heap)
{
    zw_obj *a = bytes("", 0);
    zw_obj *b = bytes("xyz", 0);
    cr_expect_eq(a, b);
    cr_expect_eq(zw_rt_allocated_blocks(rt), baseline);
    cr_expect_eq(zw_bytes_len(a), 0);
    cr_expect_str_eq(zw_bytes_data(a), "");
    zw_obj *c = zw_bytes_concat(a, b);
    cr_expect_eq(c, a);
    zw_decref(a);
    zw_decref(b);
    zw_decref(c);
}

Test(obj_bytes, data_is_copied_and_nul_terminated)
{
    char src[] = {'a', 0, 'b'};
    zw_obj *b = bytes(src, sizeof(src));
    src[0] = 'z';
    cr_expect_eq(zw_bytes_len(b), 3);
    cr_expect_eq(memcmp(zw_bytes_data(b), "a\0b", 4), 0, "the data plus a final NUL");
    cr_expect_eq(zw_len(b), 3);
    cr_expect_eq(zw_truth(b), 1);
    cr_expect(zw_bytes_check(b));
    cr_expect_str_eq(zw_type_name(zw_type_of(b)), "bytes");
    zw_decref(b);
}

Test(obj_bytes, concat_joins_and_refuses_other_types)
{
    zw_obj *a = BYTES_LIT("abc");
    zw_obj *b = BYTES_LIT("\x00"
                          "def");
    zw_obj *c = zw_bytes_concat(a, b);
    cr_assert_not_null(c);
    cr_expect_eq(zw_bytes_len(c), 7);
    cr_expect_eq(memcmp(zw_bytes_data(c), "abc\0def", 8), 0);
    zw_obj *s = zw_str_new(rt, "x");
    cr_expect_null(zw_bytes_concat(a, s));
    cr_expect_eq(zw_err_occurred(rt), ZW_TypeError);
    cr_expect_str_eq(zw_err_message(rt), "can't concat str to bytes");
    zw_err_clear(rt);
    cr_expect_eq(zw_bytes_len(s), 0);
    cr_expect_eq(zw_err_occurred(rt), ZW_TypeError);
    zw_err_clear(rt);
    cr_expect_null(zw_bytes_data(s));
    zw_err_clear(rt);
    cr_expect(!zw_bytes_check(s));
    zw_decref(s);
    zw_decref(a);
    zw_decref(b);
    zw_decref(c);
}

/* ---- repr, hash, compare ---- */

Test(obj_bytes, repr_matches_python)
{
    /* python3 -c 'print(repr(b"abc\x00"), repr(b"\x27"), repr(b"\x27\""),
     *     repr(b"\t\n\r\\\x7f\x80\xff"))' */
    zw_obj *a = BYTES_LIT("abc\x00");
    zw_obj *b = BYTES_LIT("'");
    zw_obj *c = BYTES_LIT("'\"");
    zw_obj *d = BYTES_LIT("\t\n\r\\\x7f\x80\xff");
    zw_obj *e = bytes("", 0);
    expect_repr(a, "b'abc\\x00'");
    expect_repr(b, "b\"'\"");
    expect_repr(c, "b'\\'\"'");
    expect_repr(d, "b'\\t\\n\\r\\\\\\x7f\\x80\\xff'");
    expect_repr(e, "b''");
    char big[1000];
    memset(big, 0x01, sizeof(big));
    zw_obj *f = bytes(big, sizeof(big)); /* 4002 characters: the repr leaves the stack */
    zw_obj *r = zw_repr(f);
    cr_assert_not_null(r);
    size_t len;
    const char *text = zw_str_utf8(r, &len);
    cr_expect_eq(len, 3 + 4 * sizeof(big));
    cr_expect_eq(strncmp(text, "b'\\x01\\x01", 10), 0);
    zw_decref(r);
    zw_obj *objs[] = {a, b, c, d, e, f};
    for (size_t k = 0; k < sizeof(objs) / sizeof(objs[0]); k++)
        zw_decref(objs[k]);
}

Test(obj_bytes, hashes_equal_cpython_and_the_latin1_str)
{
    /* PYTHONHASHSEED=0 python3 -c 'print(hash(b"abc"), hash(b""), hash(b"\x00\xff"),
     *     hash(b"hello world, a longer bytes object"))' */
    static const struct {
        const char *data;
        size_t len;
        int64_t hash;
    } cases[] = {
        {"abc", 3, -4594863902769663758},
        {"", 0, 0},
        {"\x00\xff", 2, -2713640983873221217},
        {"hello world, a longer bytes object", 34, -8470254560590199583},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        zw_obj *b = bytes(cases[i].data, cases[i].len);
        cr_expect_eq(zw_hash(b), cases[i].hash, "hash of case %zu: %lld, CPython says %lld", i,
                     (long long)zw_hash(b), (long long)cases[i].hash);
        cr_expect_eq(zw_hash(b), zw_hash(b), "cached");
        zw_decref(b);
    }
    /* the str '\x00\xff' (U+0000 U+00FF) hashes as its Latin-1 bytes */
    zw_obj *s = zw_str_from_utf8(rt, "\x00\xc3\xbf", 3);
    zw_obj *b = bytes("\x00\xff", 2);
    cr_assert_not_null(s);
    cr_expect_eq(zw_hash(s), zw_hash(b));
    zw_decref(s);
    zw_decref(b);
}

Test(obj_bytes, hash_follows_the_seed)
{
    /* PYTHONHASHSEED=12345 python3 -c 'print(hash(b"abc"))' */
    zw_rt *r2 = zw_rt_new(&(zw_rt_config){.flags = ZW_RT_IGNORE_ENV, .hash_seed = 12345});
    cr_assert_not_null(r2);
    zw_obj *b = zw_bytes_new(r2, "abc", 3);
    cr_expect_eq(zw_hash(b), 2962436275791859092);
    zw_decref(b);
    zw_rt_free(r2);
}

Test(obj_bytes, orders_by_unsigned_bytes_with_prefixes_first)
{
    /* python3: b"abc" < b"abd", b"ab" < b"abc", b"\xff" > b"\x01", b"" < b"\x00" */
    zw_obj *abc = BYTES_LIT("abc");
    zw_obj *abd = BYTES_LIT("abd");
    zw_obj *ab = BYTES_LIT("ab");
    zw_obj *ff = BYTES_LIT("\xff");
    zw_obj *one = BYTES_LIT("\x01");
    zw_obj *e = bytes("", 0);
    zw_obj *nul = BYTES_LIT("\x00");
    zw_obj *abc2 = BYTES_LIT("abc");
    cr_expect_eq(zw_compare(abc, abd, ZW_LT), 1);
    cr_expect_eq(zw_compare(ab, abc, ZW_LT), 1);
    cr_expect_eq(zw_compare(abc, ab, ZW_GE), 1);
    cr_expect_eq(zw_compare(ff, one, ZW_GT), 1);
    cr_expect_eq(zw_compare(e, nul, ZW_LT), 1);
    cr_expect_eq(zw_compare(abc, abc2, ZW_EQ), 1);
    cr_expect_eq(zw_compare(abc, abc2, ZW_LE), 1);
    cr_expect_eq(zw_compare(abc, abd, ZW_NE), 1);
    cr_expect_eq(zw_compare(abc, ab, ZW_EQ), 0);
    zw_obj *s = zw_str_new(rt, "abc");
    cr_expect_eq(zw_compare(abc, s, ZW_EQ), 0, "bytes never equal a str");
    cr_expect_eq(zw_compare(abc, s, ZW_LT), -1);
    cr_expect_eq(zw_err_occurred(rt), ZW_TypeError);
    zw_err_clear(rt);
    zw_obj *objs[] = {abc, abd, ab, ff, one, e, nul, abc2, s};
    for (size_t k = 0; k < sizeof(objs) / sizeof(objs[0]); k++)
        zw_decref(objs[k]);
}

/* ---- the iterator ---- */

Test(obj_bytes, iterates_its_bytes_as_ints)
{
    zw_obj *b = BYTES_LIT("\x00\x7f\xff"
                          "A");
    zw_obj *it = zw_iter(b);
    cr_assert_not_null(it);
    cr_expect_str_eq(zw_type_name(zw_type_of(it)), "bytes_iterator");
    static const int64_t want[] = {0, 127, 255, 65};
    size_t before = zw_rt_allocated_blocks(rt);
    for (size_t i = 0; i < 4; i++) {
        zw_obj *x = zw_iter_next(it);
        cr_assert_not_null(x, "item %zu: %s", i, zw_errmsg(rt));
        cr_expect(zw_int_check(x));
        cr_expect_eq(zw_int_as_i64(x), want[i]);
        zw_decref(x);
    }
    cr_expect_eq(zw_rt_allocated_blocks(rt), before, "bytes are small ints: no allocation");
    cr_expect_null(zw_iter_next(it));
    cr_expect_eq(zw_err_occurred(rt), ZW_NoError, "exhaustion is no error");
    cr_expect_null(zw_iter_next(it), "stays exhausted");
    cr_expect_eq(zw_getrefcount(b), 1, "an exhausted iterator lets its bytes go");
    zw_decref(it);
    zw_obj *sum = zw_sum(b);
    cr_assert_not_null(sum, "%s", zw_errmsg(rt));
    cr_expect_eq(zw_int_as_i64(sum), 0 + 127 + 255 + 65);
    zw_decref(sum);
    zw_decref(b);
}

Test(obj_bytes, iterator_holds_its_bytes)
{
    zw_obj *b = BYTES_LIT("xy");
    zw_obj *it = zw_iter(b);
    cr_assert_not_null(it);
    cr_expect_eq(zw_getrefcount(b), 2);
    zw_decref(b); /* the iterator keeps it alive */
    zw_obj *x = zw_iter_next(it);
    cr_expect_eq(zw_int_as_i64(x), 'x');
    zw_decref(x);
    zw_decref(it);
}

/* ---- running out of memory ---- */

Test(obj_bytes, allocation_failure_is_a_memory_error)
{
    zw_obj *a = BYTES_LIT("abc");
    zw_rt_fail_nth(rt, 1);
    cr_expect_null(zw_bytes_new(rt, "abc", 3));
    cr_expect_eq(zw_err_occurred(rt), ZW_MemoryError);
    zw_err_clear(rt);
    zw_rt_fail_nth(rt, 1);
    cr_expect_null(zw_bytes_concat(a, a));
    cr_expect_eq(zw_err_occurred(rt), ZW_MemoryError);
    zw_err_clear(rt);
    zw_rt_fail_nth(rt, 1);
    cr_expect_null(zw_iter(a));
    cr_expect_eq(zw_err_occurred(rt), ZW_MemoryError);
    zw_err_clear(rt);
    for (long n = 1;; n++) { /* repr: its buffer and its str */
        char big[1000] = {0};
        zw_obj *f = bytes(big, sizeof(big));
        zw_rt_fail_nth(rt, n);
        zw_obj *r = zw_repr(f);
        bool fired = zw_rt_fault_fired(rt);
        zw_rt_fail_nth(rt, 0);
        cr_expect(r != NULL || zw_err_occurred(rt) == ZW_MemoryError);
        zw_xdecref(r);
        zw_err_clear(rt);
        zw_decref(f);
        cr_assert_eq(zw_rt_allocated_blocks(rt), baseline + 1, "leak with n=%ld", n);
        if (!fired)
            break;
    }
    zw_rt_fail_nth(rt, 0);
    zw_decref(a);
}
