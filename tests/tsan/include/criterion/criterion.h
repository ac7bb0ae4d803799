/* tests/tsan/include/criterion/criterion.h - the part of Criterion's API the threaded tests use,
 * for their ThreadSanitizer build: Criterion's runner does not start under TSan, so these tests
 * are compiled against this header instead, with tests/tsan/runner.c as their main. Each test
 * runs in a child process of its own (as with Criterion: a table a test installs does not reach
 * the next); a failed assertion ends the child with status 1, a skipped test with 77, and a
 * TSan report with TSAN_OPTIONS' exitcode. Assertions take an optional message, a string
 * literal and its arguments. */
#ifndef ZWT_TSAN_CRITERION_H
#define ZWT_TSAN_CRITERION_H

#include <stdbool.h>
#include <string.h>

typedef void (*zwt_test_fn)(void);

void zwt_register(const char *suite, const char *name, zwt_test_fn fn);
__attribute__((noreturn)) void zwt_fail(const char *file, int line, const char *expr,
                                        const char *fmt, ...);
__attribute__((noreturn)) void zwt_skip(const char *fmt, ...);
void zwt_log(const char *fmt, ...);

/* Test(suite, name): options after the name (.init, .signal...) are not supported. */
#define Test(suite, name)                                                                          \
    static void suite##_##name(void);                                                              \
    __attribute__((constructor)) static void zwt_reg_##suite##_##name(void)                        \
    {                                                                                              \
        zwt_register(#suite, #name, suite##_##name);                                               \
    }                                                                                              \
    static void suite##_##name(void)

#define cr_assert(cond, ...)                                                                       \
    do {                                                                                           \
        if (!(cond))                                                                               \
            zwt_fail(__FILE__, __LINE__, #cond, "" __VA_ARGS__);                                   \
    } while (0)
#define cr_assert_not(cond, ...)    cr_assert(!(cond), ##__VA_ARGS__)
#define cr_assert_eq(a, b, ...)     cr_assert((a) == (b), ##__VA_ARGS__)
#define cr_assert_neq(a, b, ...)    cr_assert((a) != (b), ##__VA_ARGS__)
#define cr_assert_lt(a, b, ...)     cr_assert((a) < (b), ##__VA_ARGS__)
#define cr_assert_leq(a, b, ...)    cr_assert((a) <= (b), ##__VA_ARGS__)
#define cr_assert_gt(a, b, ...)     cr_assert((a) > (b), ##__VA_ARGS__)
#define cr_assert_geq(a, b, ...)    cr_assert((a) >= (b), ##__VA_ARGS__)
#define cr_assert_null(p, ...)      cr_assert((p) == NULL, ##__VA_ARGS__)
#define cr_assert_not_null(p, ...)  cr_assert((p) != NULL, ##__VA_ARGS__)
#define cr_assert_str_eq(a, b, ...) cr_assert(strcmp((a), (b)) == 0, ##__VA_ARGS__)
#define cr_expect(cond, ...)        cr_assert(cond, ##__VA_ARGS__)
#define cr_expect_eq(a, b, ...)     cr_assert_eq(a, b, ##__VA_ARGS__)
#define cr_skip_test(...)           zwt_skip("" __VA_ARGS__)
#define cr_log_info(...)            zwt_log(__VA_ARGS__)

#endif /* ZWT_TSAN_CRITERION_H */
