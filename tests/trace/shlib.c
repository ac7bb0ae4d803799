/* tests/trace/shlib.c - a tiny shared library for test_symbols.c, loaded with dlopen: a function
 * that allocates through the allocator it is given, at a line the test asks for. Built -O0 -g
 * with frame pointers. */
#include <stddef.h>

unsigned zwt_shlib_line(void);
void *zwt_shlib_alloc(void *(*alloc)(size_t), size_t n);

static unsigned alloc_line;

unsigned
zwt_shlib_line(void)
{
    return alloc_line;
}

void *
zwt_shlib_alloc(void *(*alloc)(size_t), size_t n)
{
    alloc_line = __LINE__ + 1;
    void *p = alloc(n);
    return p;
}
