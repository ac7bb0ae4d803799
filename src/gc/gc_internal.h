/* gc/gc_internal.h - the collector's state and the list operations shared by the files of the
 * gc layer. The generation lists and counts live in obj's zwi_gcstate (obj keeps them on every
 * allocation); what only the collector needs lives here, in zwi_gc_ext, one per runtime.
 *
 * The gc layer reads obj's internal layouts (obj_internal.h): the collector walks GC headers
 * and type slots, as CPython's gcmodule.c does with object internals. See docs/gc.md. */
#ifndef ZW_GC_INTERNAL_H
#define ZW_GC_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <zerowaste/gc.h>
#include <zerowaste/obj.h>

#include "obj_internal.h"

typedef zwi_gchead gchead;

/* While a collection runs, the objects of the generation being collected keep a scratch
 * reference count in `prev` (shifted left by 2 above the two flag bits) and are linked only
 * through `next`; the low bit of `next` marks "tentatively unreachable". */
#define NEXT_MASK_UNREACHABLE ((uintptr_t)1)
#define PREV_SHIFT            2
#define PREV_MASK             (~ZWI_GC_FLAGS)

typedef struct zwi_gc_cb {
    zw_gc_callback fn;
    void *arg;
} zwi_gc_cb;

typedef struct zwi_gc_ext {
    zw_gc_stats stats[ZWI_NGEN];
    intptr_t long_lived_total;   /* objects in gen 2 after the last full collection */
    intptr_t long_lived_pending; /* objects moved into gen 2 since then */
    unsigned debug;              /* enum zw_gc_debug */
    FILE *out;                   /* debug lines and ignored errors; NULL: stderr */
    zw_obj *garbage;             /* gc.garbage, a list made on first need */
    zwi_gc_cb *callbacks;        /* from raw */
    size_t ncallbacks, capcallbacks;
    zw_type *weakref_type;
    zw_type *finalize_type;
    zw_type *weakcontainer_types[4]; /* WeakValueDictionary, WeakKeyDictionary, WeakSet, and
                                      * their iterator (weakdict.c) */
    zw_obj *registry;            /* live finalizers: dict finalizer -> None, creation order */
    uint64_t finalize_index;
    size_t stress_allocs;        /* GC-object allocations since the last stress full collection */
} zwi_gc_ext;

#define GC_EXT(rt) ((zwi_gc_ext *)(rt)->gc.ext)

/* ---- list operations (as gcmodule.c's) ---- */

static inline gchead *
gc_next(gchead *g)
{
    return (gchead *)g->next;
}

static inline gchead *
gc_prev(gchead *g)
{
    return (gchead *)(g->prev & PREV_MASK);
}

static inline void
gc_set_prev(gchead *g, gchead *p)
{
    g->prev = (g->prev & ~PREV_MASK) | (uintptr_t)p;
}

static inline void
gc_list_init(gchead *list)
{
    list->prev = (uintptr_t)list;
    list->next = (uintptr_t)list;
}

static inline bool
gc_list_is_empty(gchead *list)
{
    return list->next == (uintptr_t)list;
}

static inline void
gc_list_append(gchead *node, gchead *list)
{
    gchead *last = (gchead *)list->prev;
    gc_set_prev(node, last);
    last->next = (uintptr_t)node;
    node->next = (uintptr_t)list;
    list->prev = (uintptr_t)node;
}

static inline void
gc_list_remove(gchead *node)
{
    gchead *prev = gc_prev(node);
    gchead *next = gc_next(node);
    prev->next = (uintptr_t)next;
    gc_set_prev(next, prev);
    node->next = 0;
}

static inline void
gc_list_move(gchead *node, gchead *list)
{
    gchead *from_prev = gc_prev(node);
    gchead *from_next = gc_next(node);
    from_prev->next = (uintptr_t)from_next;
    gc_set_prev(from_next, from_prev);
    gchead *to_prev = (gchead *)list->prev;
    gc_set_prev(node, to_prev);
    to_prev->next = (uintptr_t)node;
    list->prev = (uintptr_t)node;
    node->next = (uintptr_t)list;
}

/* Appends every node of `from` to `to`; `from` becomes empty. */
static inline void
gc_list_merge(gchead *from, gchead *to)
{
    if (gc_list_is_empty(from))
        return;
    gchead *tail = (gchead *)to->prev;
    gchead *head = gc_next(from);
    gchead *ftail = (gchead *)from->prev;
    tail->next = (uintptr_t)head;
    gc_set_prev(head, tail);
    ftail->next = (uintptr_t)to;
    to->prev = (uintptr_t)ftail;
    gc_list_init(from);
}

static inline size_t
gc_list_size(gchead *list)
{
    size_t n = 0;
    for (gchead *g = gc_next(list); g != list; g = gc_next(g))
        n++;
    return n;
}

static inline bool
gc_is_collecting(gchead *g)
{
    return (g->prev & ZWI_GC_COLLECTING) != 0;
}

static inline void
gc_clear_collecting(gchead *g)
{
    g->prev &= ~ZWI_GC_COLLECTING;
}

/* ---- check.c ---- */

/* What each object of a list must carry at a phase of a collection (CPython's flagstates). */
#define ZWI_GC_EXPECT_COLLECTING  1u /* COLLECTING set in prev (else clear) */
#define ZWI_GC_EXPECT_UNREACHABLE 2u /* the unreachable mark set in next (else clear) */

/* validate_list: true if `head`'s list is linked consistently both ways and each object is of
 * a GC type with the flags of `expect` (ZWI_GC_EXPECT_*) and no others; otherwise reports the
 * first fault on stderr and returns false. Not while prev holds scratch counts (between
 * update_refs and move_unreachable). */
ZW_HIDDEN bool zwi_gc_list_is_valid(gchead *head, unsigned expect);
/* Every generation list and the permanent one, outside a collection: no flags. */
ZW_HIDDEN bool zwi_gc_generations_are_valid(zw_rt *rt);

/* ---- weakref.c ---- */

/* Makes the weakref and finalize types of a runtime. 0 or -1. */
ZW_HIDDEN int zwi_weakref_init(zw_rt *rt);
/* handle_weakrefs of gcmodule.c: clears every weak reference to an object of `unreachable`
 * (and every weakref in it), then calls the callbacks of the cleared weakrefs that are not
 * garbage themselves; returns how many of those weakrefs died as a result. */
ZW_HIDDEN size_t zwi_gc_handle_weakrefs(zw_rt *rt, gchead *unreachable, gchead *old);
/* PyObject_ClearWeakRefs: clears the weak references to `o` at its refcount death and calls
 * their callbacks, newest first. */
ZW_HIDDEN void zwi_weakref_clear_all(zw_obj *o);
/* Runs the live finalizers with atexit set, newest first (zw_rt_free). */
ZW_HIDDEN void zwi_finalize_atexit(zw_rt *rt);

/* ---- weakdict.c ---- */

/* Makes the weak container types of a runtime (WeakValueDictionary ...). 0 or -1. */
ZW_HIDDEN int zwi_weakcontainers_init(zw_rt *rt);

/* ---- gc.c ---- */

/* Reports an error a callback, finalizer or clear left, as Python's "Exception ignored in",
 * and clears it. */
ZW_HIDDEN void zwi_gc_write_unraisable(zw_rt *rt, const char *where, zw_obj *obj);
ZW_HIDDEN FILE *zwi_gc_out(zw_rt *rt);

#endif /* ZW_GC_INTERNAL_H */
