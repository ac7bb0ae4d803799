/* tests/obj/test_format.c - zw_str_from_format against CPython 3.11's PyUnicode_FromFormat
 * (expected texts from python3 3.11.7 through ctypes.pythonapi.PyUnicode_FromFormat, command
 * beside each), the object directives, long output leaving the stack buffer, errors, and
 * MemoryError at each allocation with no leaked block. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zerowaste/zerowaste.h>

#include "zw_obj_test.h"
#include "zw_test.h"

/* ---- helpers ---- */

TestSuite(obj_format, .init = zwt_rt_setup, .fini = zwt_rt_teardown);

/* Asserts that `s` (a new str, dropped here) holds the UTF-8 text `want`. */
static void
expect_str(zw_obj *s, const char *want)
{
    cr_assert_not_null(s, "formatting failed: %s (wanted \"%s\")", zw_errmsg(rt), want);
    cr_assert(zw_str_check(s));
    size_t len;
    const char *got = zw_str_utf8(s, &len);
    cr_expect_eq(len, strlen(want));
    cr_expect_str_eq(got, want);
    zw_decref(s);
}

/* ---- directives ---- */

Test(obj_format, integers_as_cpython)
{
    /* python3 -c 'import ctypes; f = ctypes.pythonapi.PyUnicode_FromFormat; f.restype =
     *     ctypes.py_object; print(f(b"%5d|%.3d|%x|%lu|%zd|%%|%lld|%i|%u|%ld", ...))' */
    expect_str(zw_str_from_format(rt, "%5d|%.3d|%x|%lu|%zd|%%|%lld|%i|%u|%ld", 42, 7, 255,
                                  (unsigned long)UINT64_MAX, (ptrdiff_t)-5, (long long)INT64_MIN,
                                  -1, 4294967295u, -7L),
               "   42|007|ff|18446744073709551615|-5|%|-9223372036854775808|-1|4294967295|-7");
    expect_str(zw_str_from_format(rt, "%d %d %d", 0, INT32_MIN, INT32_MAX),
               "0 -2147483648 2147483647");
    expect_str(zw_str_from_format(rt, "%zu %llu %lx", (size_t)SIZE_MAX, 0ull, 0xdeadbeefUL),
               "18446744073709551615 0 deadbeef");
    expect_str(zw_str_from_format(rt, "%5.3d|", 3), "  003|");
}

Test(obj_format, integer_flags_follow_printf)
{
    expect_str(zw_str_from_format(rt, "[%05d][%-5d][%-5d][%*d][%.*d]", -42, 3, -3, 4, 9, 3, 1),
               "[-0042][3    ][-3   ][   9][001]");
    expect_str(zw_str_from_format(rt, "[%08x][%.0d]", 0xabcu, 5), "[00000abc][5]");
}

Test(obj_format, strings_and_characters_as_cpython)
{
    /* f(b"%5s|%.2s|%c|%3c", b"ab", b"hello", 0x20ac, 65) -> '   ab|he|€|A' */
    expect_str(zw_str_from_format(rt, "%5s|%.2s|%c|%3c", "ab", "hello", 0x20ac, 65),
               "   ab|he|\xe2\x82\xac|A");
    /* f(b"[%10.3s]", "héllo".encode()) -> '[        hé]': precision in bytes, width in
     * characters */
    expect_str(zw_str_from_format(rt, "[%10.3s]", "h\xc3\xa9llo"), "[        h\xc3\xa9]");
    /* f(b"[%.2s]", "héllo".encode()) -> '[h\ufffd]': a cut sequence is replaced */
    expect_str(zw_str_from_format(rt, "[%.2s]", "h\xc3\xa9llo"), "[h\xef\xbf\xbd]");
    expect_str(zw_str_from_format(rt, "[%-4s][%s]", "\xe2\x82\xac", (const char *)NULL),
               "[\xe2\x82\xac   ][(null)]");
    expect_str(zw_str_from_format(rt, "%c%c%c", 0x41, 0xe9, 0x1F600), "A\xc3\xa9\xf0\x9f\x98\x80");
    expect_str(zw_str_from_format(rt, "%s", ""), "");
    expect_str(zw_str_from_format(rt, "no directives"), "no directives");
    expect_str(zw_str_from_format(rt, ""), "");
}

Test(obj_format, pointers_have_0x)
{
    char want[64];
    int x;
    snprintf(want, sizeof(want), "<%p>", (void *)&x);
    expect_str(zw_str_from_format(rt, "<%p>", (void *)&x), want);
    expect_str(zw_str_from_format(rt, "%p", NULL), "0x0");
}

Test(obj_format, objects_as_cpython)
{
    /* f(b"[%6R][%.2R][%8.3S]", b"a", "abc", "abcdef") -> "[  b'a']['a][     abc]" */
    zw_obj *b = zw_bytes_new(rt, "a", 1);
    zw_obj *abc = zw_str_new(rt, "abc");
    zw_obj *abcdef = zw_str_new(rt, "abcdef");
    expect_str(zw_str_from_format(rt, "[%6R][%.2R][%8.3S]", b, abc, abcdef),
               "[  b'a']['a][     abc]");
    /* f(b"%R %S %U", "x", "x", "y") -> "'x' x y" */
    zw_obj *x = zw_str_new(rt, "x");
    zw_obj *y = zw_str_new(rt, "y");
    expect_str(zw_str_from_format(rt, "%R %S %U", x, x, y), "'x' x y");
    zw_obj *n = zw_int_from_str(rt, "-1267650600228229401496703205376");
    zw_obj *f = zw_float_new(rt, 0.1);
    expect_str(zw_str_from_format(rt, "%S|%R|%R|%R", n, f, zw_true(rt), zw_none(rt)),
               "-1267650600228229401496703205376|0.1|True|None");
    zw_obj *e = zw_str_from_utf8(rt, "h\xc3\xa9llo", 6);
    expect_str(zw_str_from_format(rt, "[%.2U][%-7U]", e, e), "[h\xc3\xa9][h\xc3\xa9llo  ]");
    expect_str(zw_str_from_format(rt, "%V|%V", x, "unused", (zw_obj *)NULL, "fallback"),
               "x|fallback");
    zw_obj *objs[] = {b, abc, abcdef, x, y, n, f, e};
    for (size_t k = 0; k < sizeof(objs) / sizeof(objs[0]); k++)
        zw_decref(objs[k]);
}

Test(obj_format, long_output_leaves_the_stack_buffer)
{
    char *big = malloc(5001);
    memset(big, 'q', 5000);
    big[5000] = '\0';
    zw_obj *s = zw_str_from_format(rt, "<%s|%s>", big, big);
    cr_assert_not_null(s);
    size_t len;
    const char *text = zw_str_utf8(s, &len);
    cr_expect_eq(len, 10003);
    cr_expect_eq(text[0], '<');
    cr_expect_eq(text[5001], '|');
    cr_expect_eq(text[10002], '>');
    zw_decref(s);
    expect_str(zw_str_from_format(rt, "%3000d", 1) /* padding alone grows it too */,
               (memset(big, ' ', 2999), big[2999] = '1', big[3000] = '\0', big));
    free(big);
}

/* ---- errors ---- */

static void
expect_error(zw_obj *s, zw_exc exc, const char *message)
{
    cr_expect_null(s);
    cr_expect_eq(zw_err_occurred(rt), exc, "got %s", zw_errmsg(rt));
    if (message != NULL)
        cr_expect_str_eq(zw_err_message(rt), message);
    zw_err_clear(rt);
}

Test(obj_format, bad_directives_and_arguments_are_errors)
{
    expect_error(zw_str_from_format(rt, "%q"), ZW_SystemError, "invalid format string: '%q'");
    expect_error(zw_str_from_format(rt, "abc %"), ZW_SystemError, NULL);
    expect_error(zw_str_from_format(rt, "%c", 0x110000), ZW_OverflowError,
                 "character argument not in range(0x110000)");
    expect_error(zw_str_from_format(rt, "%R", (zw_obj *)NULL), ZW_SystemError, NULL);
    zw_obj *i = zw_int_from_i64(rt, 3);
    expect_error(zw_str_from_format(rt, "%U", i), ZW_TypeError, "%U expects a str, not 'int'");
    zw_decref(i);
    expect_error(zw_str_from_format(rt, "%s", "\xff"), ZW_UnicodeDecodeError, NULL);
    cr_expect_eq(zw_rt_allocated_blocks(rt), baseline);
}

Test(obj_format, every_failed_allocation_is_a_clean_memory_error)
{
    char *big = malloc(1001);
    memset(big, 'z', 1000);
    big[1000] = '\0';
    zw_obj *n = zw_int_from_str(rt, "-1267650600228229401496703205376");
    zw_obj *b = zw_bytes_new(rt, "\x01\x02", 2);
    size_t before = zw_rt_allocated_blocks(rt);
    for (long k = 1;; k++) {
        zw_rt_fail_nth(rt, k);
        zw_obj *s = zw_str_from_format(rt, "%s %R %S %d", big, b, n, 5);
        bool fired = zw_rt_fault_fired(rt);
        zw_rt_fail_nth(rt, 0);
        if (s == NULL) {
            cr_assert(fired, "failed with no fault injected (k=%ld): %s", k, zw_errmsg(rt));
            cr_assert_eq(zw_err_occurred(rt), ZW_MemoryError);
            zw_err_clear(rt);
        } else {
            cr_expect_eq(zw_str_len(s), 1000 + 1 + 11 + 1 + 32 + 1 + 1);
            zw_decref(s);
        }
        cr_assert_eq(zw_rt_allocated_blocks(rt), before, "leak with k=%ld", k);
        if (!fired)
            break;
    }
    zw_decref(n);
    zw_decref(b);
    free(big);
}
