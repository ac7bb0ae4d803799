/* common/zw_assert.h - internal: assertions and branch hints shared by every layer.
 * ZW_ASSERT checks what our own code guarantees (on with ZW_DEBUG); ZW_ASSERT_EXPENSIVE walks
 * whole structures (on with ZW_DEBUG_FULL). Neither may have side effects. */
#ifndef ZW_COMMON_ASSERT_H
#define ZW_COMMON_ASSERT_H

#include <stdio.h>
#include <stdlib.h>

#define ZW_LIKELY(x)   __builtin_expect(!!(x), 1)
#define ZW_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define ZW_HIDDEN      __attribute__((visibility("hidden")))

#define ZW_ASSERT_FAIL(expr)                                                                      \
    (fprintf(stderr, "zw: internal error: %s:%d: %s: assertion '%s' failed\n", __FILE__,          \
             __LINE__, __func__, expr),                                                            \
     abort())

#if defined(ZW_DEBUG) || defined(ZW_DEBUG_FULL)
#    define ZW_ASSERT(e) ((e) ? (void)0 : ZW_ASSERT_FAIL(#e))
#else
#    define ZW_ASSERT(e) ((void)0)
#endif

#ifdef ZW_DEBUG_FULL
#    define ZW_ASSERT_EXPENSIVE(e) ((e) ? (void)0 : ZW_ASSERT_FAIL(#e))
#else
#    define ZW_ASSERT_EXPENSIVE(e) ((void)0)
#endif

#endif /* ZW_COMMON_ASSERT_H */
