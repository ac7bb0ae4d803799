/* tests/zw/progs/rust_names.c - two functions named as rustc names them, for zw to demangle
 * without a Rust compiler: the legacy mangling (_ZN...17h<hash>E) and v0 (_R...). Built without
 * debug information, so the frames take the symbol table's names. 200 blocks of 100 bytes from
 * the legacy one, 100 of 50 bytes from the v0 one, kept to the end. */
#include <stdio.h>
#include <stdlib.h>

void *legacy(size_t n) __asm__("_ZN7mycrate4grab17h0123456789abcdefE");
void *v0(size_t n) __asm__("_RNvNtC7mycrate5inner4make");

__attribute__((noinline)) void *
legacy(size_t n)
{
    void *p = malloc(n);
    __asm__ volatile("" ::: "memory"); /* no tail call: this frame stays */
    return p;
}

__attribute__((noinline)) void *
v0(size_t n)
{
    void *p = malloc(n);
    __asm__ volatile("" ::: "memory");
    return p;
}

static void *keep[300];

int
main(void)
{
    for (int i = 0; i < 200; i++)
        keep[i] = legacy(100);
    for (int i = 200; i < 300; i++)
        keep[i] = v0(50);
    printf("%d\n", keep[0] != NULL && keep[299] != NULL);
    return 0;
}
