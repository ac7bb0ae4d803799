/* tests/preload/dlreuse.c FIRST SECOND - dlopens FIRST, allocates 100 times through its lib_mid,
 * dlcloses it (unless NOCLOSE is set), then the same with SECOND from another line; prints
 * whether both were mapped at the same address ("dlreuse same"). See test_dlreuse.sh. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

static __attribute__((noinline)) int
use(const char *path, void **where)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        fprintf(stderr, "%s\n", dlerror());
        return 1;
    }
    void *(*f)(void) = (void *(*)(void))dlsym(h, "lib_mid");
    *where = (void *)f;
    for (int i = 0; i < 100; i++)
        free(f());
    if (getenv("NOCLOSE") == NULL && dlclose(h) != 0)
        return 1;
    return 0;
}

int
main(int argc, char **argv)
{
    void *first = NULL, *second = NULL;
    if (argc < 3)
        return 2;
    if (use(argv[1], &first) != 0) /* the first library's site */
        return 1;
    if (use(argv[2], &second) != 0) /* the second's */
        return 1;
    printf("dlreuse %s\n", first == second ? "same" : "moved");
    return 0;
}
