/* tests/preload/early_lib.c - a library whose constructor allocates: a program linked with it
 * runs this constructor before libzwpreload.so's own (it is initialised first, as libselinux is
 * in mkdir). Its 3 blocks of 333 bytes must be traced like any other. */
#include <stdlib.h>

__attribute__((visibility("default"))) void *zwp_early_blocks[3];

__attribute__((constructor)) static void
early(void)
{
    for (int i = 0; i < 3; i++)
        zwp_early_blocks[i] = malloc(333);
}
