/* tests/preload/early.c - linked with early_lib.c, whose constructor allocates 3 blocks of 333
 * bytes before libzwpreload.so starts; main keeps them and exits. */
#include <stdio.h>

extern void *zwp_early_blocks[3];

int
main(void)
{
    return zwp_early_blocks[0] == NULL || zwp_early_blocks[2] == NULL;
}
