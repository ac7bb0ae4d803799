/* tests/preload/dlexit_lib.c - a library whose constructor keeps a block of 4321 bytes and ends the
 * program with exit(43), inside the dlopen that loads it (tests/preload/dlexit.c). */
#include <stdlib.h>
#include <string.h>

__attribute__((visibility("default"))) void *zwp_dlexit_block;

__attribute__((constructor)) static void
end_here(void)
{
    zwp_dlexit_block = malloc(4321);
    memset(zwp_dlexit_block, 1, 4321);
    exit(43);
}
