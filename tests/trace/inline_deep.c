/* tests/trace/inline_deep.c - code whose addresses lie in nested inlined calls, built with -O2 -g
 * (tests/CMakeLists.txt): always-inlined functions three deep, called from several places, inside
 * lexical blocks and loops, so that the compiler splits their code into several ranges.
 * test_inline_index.c symbolises every address of zwt_deep_a and zwt_deep_b. */
#include <stddef.h>
#include <stdlib.h>

static inline __attribute__((always_inline)) unsigned
leaf(unsigned x)
{
    void *volatile p = malloc(x + 1);
    unsigned r = (unsigned)((size_t)p >> 4) ^ x;
    free(p);
    return r;
}

static inline __attribute__((always_inline)) unsigned
middle(unsigned x)
{
    unsigned r = leaf(x);
    if (r & 1) {
        unsigned k = leaf(r + 3);
        r ^= k;
    }
    return r + leaf(x * 3);
}

static inline __attribute__((always_inline)) unsigned
upper(unsigned x)
{
    unsigned r = 0;
    for (unsigned i = 0; i < x % 5; i++)
        r += middle(x + i);
    return r ^ leaf(r);
}

__attribute__((noinline)) unsigned
zwt_deep_a(unsigned x)
{
    unsigned r = upper(x);
    {
        unsigned y = middle(r);
        r += y;
    }
    return r + leaf(x);
}

__attribute__((noinline)) unsigned
zwt_deep_b(unsigned x)
{
    unsigned r = 0;
    while (x != 0) {
        r += x & 1 ? upper(x) : middle(x);
        x >>= 1;
    }
    return r;
}
