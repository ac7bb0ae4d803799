/* tests/preload/own_unwinder.c - runs own_unwinder_run (own_unwinder_lib.cc: exceptions raised
 * by an unwinder linked into the module) from 12 frames that each allocated first, so that the
 * shadow unwinder had patched them before. Linked with that code (zwp_own_unwinder), or loading
 * it with dlopen after those frames were patched (zwp_own_unwinder_dl, OWN_UNWINDER_LIB).
 * Prints "caught N" (N = 100 of 300 rounds). */
#include <stdio.h>
#include <stdlib.h>
#ifdef OWN_UNWINDER_LIB
#    include <dlfcn.h>
#endif

static int (*run)(int);

#ifndef OWN_UNWINDER_LIB
int own_unwinder_run(int rounds);
#endif

/* n frames, each holding a block while the ones below it allocate, then the runs */
__attribute__((noinline)) static int
descend(int n)
{
    char *p = malloc(32 + (size_t)n);
    if (p == NULL)
        return -1;
    p[0] = (char)n;
    int r = n > 0 ? descend(n - 1) : run != NULL ? run(300) : 0;
    __asm__ volatile("" : : "r"(p) : "memory"); /* not a tail call: this frame stays */
    free(p);
    return r;
}

int
main(void)
{
#ifdef OWN_UNWINDER_LIB
    descend(12); /* frames walked (and patched) with no such module loaded yet */
    void *h = dlopen(OWN_UNWINDER_LIB, RTLD_NOW);
    if (h == NULL) {
        fprintf(stderr, "own_unwinder: %s\n", dlerror());
        return 1;
    }
    run = (int (*)(int))dlsym(h, "own_unwinder_run");
    if (run == NULL)
        return 1;
#else
    run = own_unwinder_run;
#endif
    int caught = descend(12);
    printf("caught %d\n", caught);
    return caught == 100 ? 0 : 1;
}
