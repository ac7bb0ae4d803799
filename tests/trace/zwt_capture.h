/* tests/trace/zwt_capture.h - what the tests of the capture codec share (test_capture_format.c,
 * test_capture_packed.c): a raw door made before each test (`raw`; the suite's .init and .fini
 * are zwt_capture_setup and zwt_capture_teardown), cursors over an encoded payload, and the check
 * that a payload decodes whole while every shorter prefix of it fails with a reason. Header only:
 * each test file gets its own copy of `raw`. */
#ifndef ZWT_CAPTURE_H
#define ZWT_CAPTURE_H

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "capture_format.h"

static zw_raw *raw;

static void
zwt_capture_setup(void)
{
    raw = zw_raw_new(NULL);
    cr_assert_not_null(raw);
}

static void
zwt_capture_teardown(void)
{
    zw_raw_destroy(raw);
}

/* Decodes a payload; what it keeps is freed again or left to `raw`. */
typedef int (*decode_fn)(zwi_cursor *c);

/* A cursor over a copy of the first `len` bytes of `b`, in a buffer of exactly that size. */
static inline zwi_cursor
cursor_over(const zwi_cbuf *b, size_t len, unsigned char **copy)
{
    *copy = malloc(len > 0 ? len : 1);
    cr_assert_not_null(*copy);
    memcpy(*copy, b->data, len);
    return zwi_cursor_of(*copy, len, raw);
}

/* The whole payload decodes and is used up; every shorter prefix fails with a reason found
 * within it (each decoded from a buffer of exactly its length: ASan sees an overread). */
static inline void
assert_prefixes_fail(const zwi_cbuf *b, decode_fn decode)
{
    cr_assert(!b->failed);
    for (size_t len = 0; len <= b->len; len++) {
        unsigned char *copy;
        zwi_cursor c = cursor_over(b, len, &copy);
        int rc = decode(&c);
        if (len == b->len) {
            cr_assert_eq(rc, 0, "whole payload (%zu bytes): %s", len, c.why);
            cr_assert_eq(c.pos, c.len, "whole payload not used up");
        } else {
            cr_assert_eq(rc, -1, "a %zu-byte prefix of %zu decoded", len, b->len);
            cr_assert_neq(c.why[0], '\0', "a %zu-byte prefix failed without a reason", len);
            cr_assert_leq(c.why_pos, len);
        }
        free(copy);
    }
}

/* A cursor over all of `b` (no copy: the buffer outlives the decode). */
static inline zwi_cursor
whole(const zwi_cbuf *b)
{
    cr_assert(!b->failed);
    return zwi_cursor_of(b->data, b->len, raw);
}

#endif
