/* tests/obj/zw_obj_test.h - what the obj tests share: a runtime per test with a fixed hash
 * seed, and the check that every block a test made is back once the free lists are emptied. */
#ifndef ZW_OBJ_TEST_H
#define ZW_OBJ_TEST_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include <zerowaste/obj.h>

static zw_rt *rt;
static size_t baseline;

static inline void
zwt_rt_setup(void)
{
    zw_rt_config cfg = {.flags = ZW_RT_IGNORE_ENV, .hash_seed = 0};
    rt = zw_rt_new(&cfg);
    cr_assert_not_null(rt);
    baseline = zw_rt_allocated_blocks(rt);
}

/* Every test leaves the runtime as it found it: no error pending, no block left. */
static inline void
zwt_rt_teardown(void)
{
    cr_expect_eq(zw_err_occurred(rt), ZW_NoError, "error left pending: %s", zw_errmsg(rt));
    zw_rt_clear_freelists(rt);
    cr_expect_eq(zw_rt_allocated_blocks(rt), baseline, "blocks leaked: %zu -> %zu", baseline,
                 zw_rt_allocated_blocks(rt));
    zw_rt_free(rt);
}

static inline zw_obj *
zwt_int(long long v)
{
    zw_obj *o = zw_int_from_i64(rt, v);
    cr_assert_not_null(o, "%s", zw_errmsg(rt));
    return o;
}

static inline zw_obj *
zwt_str(const char *s)
{
    zw_obj *o = zw_str_new(rt, s);
    cr_assert_not_null(o, "%s", zw_errmsg(rt));
    return o;
}

/* Asserts that repr(o) is `want`. */
#define zwt_assert_repr(o, want)                                                                   \
    do {                                                                                           \
        zw_obj *r_ = zw_repr(o);                                                                   \
        cr_assert_not_null(r_, "repr failed: %s", zw_errmsg(rt));                                  \
        cr_assert_str_eq(zw_str_utf8(r_, NULL), (want));                                           \
        zw_decref(r_);                                                                             \
    } while (0)

#endif /* ZW_OBJ_TEST_H */
