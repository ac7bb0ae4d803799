/* tests/preload/dlreuse_lib.c - built twice (zwp_dlreuse_a, zwp_dlreuse_b) without frame pointers,
 * with frame sizes (FRAME, MIDFRAME) chosen so that the code of both is the same bytes at the same
 * offsets and only the CFA rules differ: a's lib_alloc rule (CFA = rsp + 1008) applied to b's
 * lib_alloc lands exactly on b's lib_mid's CFA (200 + 8 + 792 + 8), skipping lib_mid; b's applied
 * to a's lands inside a's lib_alloc frame. See test_dlreuse.sh. */
#include <stdlib.h>

__attribute__((noinline)) void *
lib_alloc(void)
{
    volatile char buf[FRAME];
    buf[0] = 1;
    void *p = malloc(24);
    __asm__ volatile("" ::"r"(buf) : "memory");
    return p;
}

__attribute__((noinline)) void *
lib_mid(void)
{
    volatile char buf[MIDFRAME];
    buf[0] = 1;
    void *p = lib_alloc();
    __asm__ volatile("" ::"r"(buf) : "memory");
    return p;
}
