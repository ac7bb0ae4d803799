/* tests/zw/data/inline.c - the program behind inline.zwc: allocations made inside functions
 * inlined into their callers, so that one return address symbolises to several frames. Made by
 *   gcc -O2 -g -fno-omit-frame-pointer -o build/inline tests/zw/data/inline.c
 *   build/zw run -o tests/zw/data/inline.zwc -- build/inline */
#include <stdlib.h>
#include <string.h>

static inline __attribute__((always_inline)) char *
make_buffer(size_t n)
{
    char *p = malloc(n); /* INLINED: into fill_buffers, itself inlined into main */
    if (p != NULL)
        memset(p, 'x', n);
    return p;
}

static inline __attribute__((always_inline)) char *
fill_buffers(size_t n)
{
    return make_buffer(n * 2);
}

__attribute__((noinline)) static char *
outer(size_t n)
{
    return make_buffer(n); /* INLINED: into outer, a function of its own */
}

int
main(int argc, char **argv)
{
    (void)argv;
    char *keep[64];
    for (int i = 0; i < 64; i++)
        keep[i] = i % 2 ? fill_buffers(1000 + (size_t)argc) : outer(3000);
    for (int i = 0; i < 32; i++)
        free(keep[i]);
    return keep[40][0] == 'x' ? 0 : 1;
}
