/* tests/preload/dlexit.c LIB - dlopens LIB, whose constructor allocates and calls exit(43): the
 * program ends inside dlopen, with the dynamic loader's lock held
 * (tests/preload/test_never_hang.sh). Returns 1 if dlopen comes back. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

int
main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: dlexit LIB\n");
        return 2;
    }
    void *h = dlopen(argv[1], RTLD_NOW);
    fprintf(stderr, "dlexit: dlopen returned %p\n", h);
    return 1;
}
