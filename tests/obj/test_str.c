/* tests/obj/test_str.c - str: PEP 393 kinds and sizes, UTF-8 in and out, comparison, join,
 * repr, interning. */
#include <stdint.h>

#include "zw_obj_test.h"

TestSuite(obj_str, .init = zwt_rt_setup, .fini = zwt_rt_teardown);

Test(obj_str, the_widest_code_point_chooses_the_kind_and_the_size)
{
    struct { const char *utf8; int kind; size_t len, size; } cases[] = {
        {"", 1, 0, 49},                        /* sys.getsizeof('') on 3.11 */
        {"a", 1, 1, 50},
        {"hello", 1, 5, 54},
        {"\xc3\xa9", 1, 1, 74},                /* 'é': latin-1, 72-byte header */
        {"\xe2\x82\xac", 2, 1, 76},            /* '€': UCS-2 */
        {"\xf0\x9f\x98\x80", 4, 1, 80},        /* U+1F600: UCS-4 */
        {"a\xe2\x82\xac" "b", 2, 3, 80},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        zw_obj *s = zwt_str(cases[i].utf8);
        cr_expect_eq(zw_str_kind(s), cases[i].kind, "case %zu", i);
        cr_expect_eq((size_t)zw_str_len(s), cases[i].len, "case %zu", i);
        cr_expect_eq(zw_getsizeof(s), cases[i].size, "case %zu: %zu", i, zw_getsizeof(s));
        zw_decref(s);
    }
}

Test(obj_str, utf8_round_trips_and_is_cached_for_non_ascii)
{
    const char *text = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z";
    zw_obj *s = zwt_str(text);
    cr_assert_eq(zw_str_len(s), 5);
    cr_assert_eq(zw_str_char(s, 3), 0x1F600);
    size_t before = zw_getsizeof(s);
    size_t len;
    const char *u = zw_str_utf8(s, &len);
    cr_assert_eq(len, strlen(text));
    cr_assert_str_eq(u, text);
    cr_assert_eq(zw_getsizeof(s), before + len + 1, "the cached UTF-8 counts, as in CPython");
    cr_assert_eq(zw_str_utf8(s, NULL), u, "cached");
    zw_decref(s);
}

Test(obj_str, invalid_utf8_is_refused_naming_the_byte_and_position)
{
    struct { const char *bytes; size_t len; const char *msg; } cases[] = {
        {"ab\xff", 3, "can't decode byte 0xff in position 2: invalid start byte"},
        {"\xc0\x80", 2, "byte 0xc0 in position 0: invalid start byte"},         /* overlong */
        {"x\xe2\x82", 3, "byte 0xe2 in position 1: unexpected end of data"},
        {"\xed\xa0\x80", 3, "byte 0xed in position 0: invalid continuation byte"}, /* surrogate */
        {"\xf4\x90\x80\x80", 4, "byte 0xf4 in position 0: invalid continuation byte"},
        {"\xe0\x80\x80", 3, "byte 0xe0 in position 0: invalid continuation byte"},
        {"a\xc3(", 3, "byte 0xc3 in position 1: invalid continuation byte"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cr_assert_null(zw_str_from_utf8(rt, cases[i].bytes, cases[i].len), "case %zu", i);
        cr_assert_eq(zw_err_occurred(rt), ZW_UnicodeDecodeError);
        cr_expect(strstr(zw_errmsg(rt), cases[i].msg) != NULL, "case %zu: %s", i, zw_errmsg(rt));
        zw_err_clear(rt);
    }
    zw_obj *nul = zw_str_from_utf8(rt, "a\0b", 3);
    cr_assert_eq(zw_str_len(nul), 3, "NUL is a character");
    zw_decref(nul);
}

Test(obj_str, codepoints_build_the_same_string_as_utf8)
{
    uint32_t cps[] = {0x48, 0xE9, 0x20AC, 0x1F600};
    zw_obj *a = zw_str_from_codepoints(rt, cps, 4);
    zw_obj *b = zwt_str("H\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    cr_assert_eq(zw_equal(a, b), 1);
    cr_assert_eq(zw_hash(a), zw_hash(b));
    uint32_t bad[] = {0xD800};
    cr_assert_null(zw_str_from_codepoints(rt, bad, 1));
    cr_assert_eq(zw_err_occurred(rt), ZW_ValueError);
    zw_err_clear(rt);
    zw_decref(a);
    zw_decref(b);
}

Test(obj_str, compare_orders_by_code_point)
{
    zw_obj *a = zwt_str("abc"), *b = zwt_str("abd"), *c = zwt_str("ab"),
           *e = zwt_str("\xc3\xa9"), *f = zwt_str("\xe2\x82\xac");
    cr_assert_lt(zw_str_cmp(a, b), 0);
    cr_assert_gt(zw_str_cmp(a, c), 0);
    cr_assert_lt(zw_str_cmp(e, f), 0, "U+00E9 < U+20AC across kinds");
    cr_assert_eq(zw_compare(a, b, ZW_LT), 1);
    cr_assert_eq(zw_compare(b, a, ZW_GE), 1);
    cr_assert_eq(zw_compare(a, a, ZW_EQ), 1);
    zw_obj *one = zwt_int(1);
    cr_assert_eq(zw_compare(a, one, ZW_EQ), 0);
    cr_assert_eq(zw_compare(a, one, ZW_LT), -1);
    cr_assert_eq(zw_err_occurred(rt), ZW_TypeError);
    cr_assert(strstr(zw_errmsg(rt), "'<' not supported between instances of 'str' and 'int'"));
    zw_err_clear(rt);
    cr_assert(zw_str_eq_utf8(e, "\xc3\xa9"));
    cr_assert_not(zw_str_eq_utf8(e, "e"));
    zw_decref(a), zw_decref(b), zw_decref(c), zw_decref(e), zw_decref(f), zw_decref(one);
}

Test(obj_str, concat_and_join_widen_to_the_widest_part)
{
    zw_obj *a = zwt_str("x"), *b = zwt_str("\xe2\x82\xac");
    zw_obj *ab = zw_str_concat(a, b);
    cr_assert_eq(zw_str_kind(ab), 2);
    cr_assert(zw_str_eq_utf8(ab, "x\xe2\x82\xac"));
    zw_obj *l = zw_list_new(rt, 0);
    zw_list_append(l, a);
    zw_list_append(l, b);
    zw_list_append(l, a);
    zw_obj *sep = zwt_str("--");
    zw_obj *j = zw_str_join(sep, l);
    cr_assert(zw_str_eq_utf8(j, "x--\xe2\x82\xac--x"));
    zw_obj *one = zwt_int(1);
    zw_list_append(l, one);
    cr_assert_null(zw_str_join(sep, l));
    cr_assert(strstr(zw_errmsg(rt), "sequence item 3: expected str instance, int found"));
    zw_err_clear(rt);
    cr_assert_null(zw_str_concat(a, one));
    zw_err_clear(rt);
    zw_decref(a), zw_decref(b), zw_decref(ab), zw_decref(l), zw_decref(sep), zw_decref(j);
    zw_decref(one);
}

Test(obj_str, repr_quotes_and_escapes_as_python)
{
    struct { const char *in, *out; } cases[] = {
        {"abc", "'abc'"},
        {"it's", "\"it's\""},
        {"'\"", "'\\'\"'"},
        {"a\nb\t\\", "'a\\nb\\t\\\\'"},
        {"\x01\x7f", "'\\x01\\x7f'"},
        {"\xc3\xa9", "'\xc3\xa9'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        zw_obj *s = zwt_str(cases[i].in);
        zwt_assert_repr(s, cases[i].out);
        zw_decref(s);
    }
}

Test(obj_str, interning_gives_one_object_per_text_and_lets_it_die)
{
    zw_obj *a = zwt_str("name");
    zw_obj *b = zwt_str("name");
    cr_assert_neq(a, b);
    cr_assert_eq(zw_str_intern(&a), 0);
    cr_assert_eq(zw_str_intern(&b), 0);
    cr_assert_eq(a, b);
    cr_assert(zw_str_is_interned(a));
    cr_assert_eq(zw_getrefcount(a), 2, "the table's references are not counted");
    zw_obj *c = zw_str_intern_utf8(rt, "name");
    cr_assert_eq(c, a);
    zw_decref(c);
    zw_decref(b);
    zw_decref(a); /* dies and leaves the table */
    zw_obj *d = zw_str_intern_utf8(rt, "name");
    cr_assert_eq(zw_getrefcount(d), 1);
    zw_decref(d);
}

Test(obj_str, iteration_yields_characters)
{
    zw_obj *s = zwt_str("a\xe2\x82\xac");
    zw_obj *l = zw_list_from_iter(s);
    cr_assert_eq(zw_list_len(l), 2);
    cr_assert(zw_str_eq_utf8(zw_list_get(l, 1), "\xe2\x82\xac"));
    zw_decref(l);
    zw_decref(s);
}
