/* tests/trace/inlined.c - an allocation inside an always-inlined function, in a translation unit
 * built with -O2 -g: test_symbols.c checks that its traceback has a frame for the inlined function
 * (at the allocation's line) and one for the function it was inlined into (at the call's line). */
#include <stddef.h>

#include <zerowaste/mem.h>

void *zwt_inlined_outer(size_t n);

const unsigned zwt_inlined_alloc_line = __LINE__ + 5; /* the zw_mem_malloc() line below */

static inline __attribute__((always_inline)) void *
inner_alloc(size_t n)
{
    void *p = zw_mem_malloc(n);
    __asm__ volatile("" : : "r"(p) : "memory");
    return p;
}

const unsigned zwt_inlined_call_line = __LINE__ + 5; /* the inner_alloc() line below */

__attribute__((noinline)) void *
zwt_inlined_outer(size_t n)
{
    void *p = inner_alloc(n + 1);
    __asm__ volatile("" : : "r"(p) : "memory");
    return p;
}
