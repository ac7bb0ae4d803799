/* tests/preload/leaky_lib.c - a library leaky.c loads with dlopen: a block it allocates is held
 * only by this library's data. */
#include <stdlib.h>

void *leaky_lib_holder; /* the only pointer to its block */

void
leaky_lib_keep(void *p)
{
    leaky_lib_holder = p;
}
