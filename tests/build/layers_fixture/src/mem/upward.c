/* A fixture of build_layers_fixture: mem calling up into gc, by a header and by a symbol. The
 * layer check must fail on it, naming this file and the arrow mem -> gc. Compiled, never linked. */
#include <zerowaste/gc.h>

intptr_t zwt_fixture_upward(zw_rt *rt);

intptr_t
zwt_fixture_upward(zw_rt *rt)
{
    return zw_gc_collect(rt, 2);
}
