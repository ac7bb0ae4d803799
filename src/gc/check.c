/* gc/check.c - the collector's list check, as CPython's validate_list: a list's links agree
 * both ways, every object on it is of a GC type and carries the flags the phase of the
 * collection expects. Nothing here changes a list. Debug builds with ZW_DEBUG_FULL run it at
 * each phase of collect_generation (ZW_ASSERT_EXPENSIVE); tests call it. See docs/gc.md. */
#include <stdio.h>

#include <zerowaste/gc.h>

#include "gc_internal.h"

/* Reports the first broken link or flag on stderr and returns false. */
static bool
broken(const gchead *head, const gchead *g, const char *what)
{
    fprintf(stderr, "zw: gc: list %p is corrupt at %p: %s\n", (const void *)head, (const void *)g,
            what);
    fflush(stderr);
    return false;
}

bool
zwi_gc_list_is_valid(gchead *head, unsigned expect)
{
    if (head->prev & ZWI_GC_FLAGS)
        return broken(head, head, "the list head carries flags");
    if (head->next & NEXT_MASK_UNREACHABLE)
        return broken(head, head, "the list head is marked unreachable");
    uintptr_t collecting = (expect & ZWI_GC_EXPECT_COLLECTING) ? ZWI_GC_COLLECTING : 0;
    uintptr_t unreachable = (expect & ZWI_GC_EXPECT_UNREACHABLE) ? NEXT_MASK_UNREACHABLE : 0;
    gchead *prev = head;
    gchead *g = (gchead *)(head->next & ~NEXT_MASK_UNREACHABLE);
    while (g != head) {
        if (g == NULL)
            return broken(head, prev, "a next link is NULL (an untracked object on the list)");
        if (gc_prev(g) != prev)
            return broken(head, g, "its prev link does not lead to its predecessor");
        if ((g->prev & ZWI_GC_COLLECTING) != collecting)
            return broken(head, g,
                          collecting ? "COLLECTING is clear, the phase expects it set"
                                     : "COLLECTING is set, the phase expects it clear");
        if ((g->next & NEXT_MASK_UNREACHABLE) != unreachable)
            return broken(head, g,
                          unreachable ? "not marked unreachable, the phase expects it"
                                      : "marked unreachable, the phase expects no mark");
        zw_obj *op = ZWI_GC_OBJ(g);
        if (op->type == NULL || !ZWI_IS_GC(op))
            return broken(head, g, "the object is not of a GC type");
        prev = g;
        g = (gchead *)(g->next & ~NEXT_MASK_UNREACHABLE);
    }
    if (gc_prev(head) != prev)
        return broken(head, head, "the head's prev link is not the last object");
    return true;
}

bool
zwi_gc_generations_are_valid(zw_rt *rt)
{
    for (int i = 0; i < ZWI_NGEN; i++)
        if (!zwi_gc_list_is_valid(&rt->gc.gen[i].head, 0))
            return false;
    return zwi_gc_list_is_valid(&rt->gc.permanent, 0);
}
