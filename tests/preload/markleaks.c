/* tests/preload/markleaks.c - a mark's leak scan against the exit's (tests/preload/
 * test_markleaks.sh). At zw_mark("mid") one block of 1111 bytes is definitely lost and one of
 * 2222 bytes still reachable; then the lost one is freed and the reachable one lost, so that at
 * exit the only block of the program's own is the 2222 one, definitely lost.
 *
 * Pointers that must not count are kept complemented (~p): no longer an address. Dead stack
 * below a frame may hold copies of pointers; scrub() clears it before the mark and the exit. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void zw_mark(const char *label) __attribute__((weak));

static char *kept;          /* the reachable block at the mark */
static uintptr_t hidden[2]; /* complemented pointers: no root */

static __attribute__((noinline)) void
scrub(void)
{
    volatile char junk[32768];
    memset((char *)junk, 0, sizeof(junk));
}

static __attribute__((noinline)) void
make_blocks(void)
{
    char *lost = malloc(1111); /* definitely lost at the mark, freed before exit */
    memset(lost, 1, 1111);
    hidden[0] = ~(uintptr_t)lost;
    kept = malloc(2222); /* reachable at the mark, definitely lost at exit */
    memset(kept, 2, 2222);
}

static __attribute__((noinline)) void
change_blocks(void)
{
    free((void *)~hidden[0]);
    hidden[1] = ~(uintptr_t)kept;
    kept = NULL;
}

int
main(void)
{
    make_blocks();
    scrub();
    if (zw_mark != NULL)
        zw_mark("mid");
    change_blocks();
    scrub();
    return 0;
}
