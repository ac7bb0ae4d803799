/* zerowaste/gc.h - CPython's generational cycle collector for a zerowaste runtime, its whole
 * `gc` module API, weak references with callbacks, finalize, and weak containers.
 * See docs/gc.md for the algorithm step by step.
 *
 * Every runtime collects automatically (thresholds 700, 10, 10, as CPython 3.11) once the gc
 * layer is linked in, which it always is in libzerowaste. Ownership rules are obj.h's. */
#ifndef ZEROWASTE_GC_H
#define ZEROWASTE_GC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <zerowaste/common.h>
#include <zerowaste/obj.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ZW_GC_NGEN 3

/* ---- automatic collection ---- */

ZW_API void zw_gc_enable(zw_rt *rt);
ZW_API void zw_gc_disable(zw_rt *rt);
ZW_API bool zw_gc_isenabled(zw_rt *rt);

/* Collects `generation` (0, 1 or 2) and every younger one, even when automatic collection is
 * disabled. Returns the number of unreachable objects found, counted as CPython counts them
 * (collected + uncollectable); 0 when a collection is already running; -1 with ValueError
 * ("invalid generation") outside 0..2. A full collection (2) also empties the free lists. */
ZW_API intptr_t zw_gc_collect(zw_rt *rt, int generation);

/* (count0, count1, count2): gen 0 counts allocations minus deallocations of GC objects; the
 * older ones count collections of the generation below since they were last collected. */
ZW_API void zw_gc_get_count(zw_rt *rt, int count[ZW_GC_NGEN]);
ZW_API void zw_gc_get_threshold(zw_rt *rt, int threshold[ZW_GC_NGEN]);
/* Sets thresholds; threshold[0] == 0 disables automatic collection. Negative values are
 * refused (-1, ValueError). */
ZW_API int zw_gc_set_threshold(zw_rt *rt, const int threshold[ZW_GC_NGEN]);

typedef struct zw_gc_stats {
    size_t collections;   /* collections of this generation (as the oldest one collected) */
    size_t collected;     /* unreachable objects freed by them */
    size_t uncollectable; /* unreachable objects kept (legacy finalizers) */
} zw_gc_stats;
ZW_API void zw_gc_get_stats(zw_rt *rt, zw_gc_stats stats[ZW_GC_NGEN]);

/* ---- what the collector knows ---- */

/* A new list of the tracked objects of `generation` (0..2), or of all three when generation is
 * -1 (frozen objects excluded). ValueError for other values. */
ZW_API zw_obj *zw_gc_get_objects(zw_rt *rt, int generation);
/* len(zw_gc_get_objects(rt, generation)) without making the list. */
ZW_API size_t zw_gc_count_objects(zw_rt *rt, int generation);
/* A new list of the tracked objects (generations 0..2) whose traverse visits any of objs. */
ZW_API zw_obj *zw_gc_get_referrers(zw_rt *rt, size_t n, zw_obj *const *objs);
/* A new list of what each of objs visits in its traverse (non-GC objects: nothing). */
ZW_API zw_obj *zw_gc_get_referents(zw_rt *rt, size_t n, zw_obj *const *objs);
ZW_API bool zw_gc_is_tracked(const zw_obj *o);
/* True once the object's finalize slot has run (PEP 442); false for non-GC objects. */
ZW_API bool zw_gc_is_finalized(const zw_obj *o);
/* Track / untrack an object of a user type with ZW_TPFLAGS_GC (fill it before tracking it).
 * Tracking an already tracked object is a bug (abort with a message); untrack is idempotent. */
ZW_API void zw_gc_track(zw_obj *o);
ZW_API void zw_gc_untrack(zw_obj *o);

/* gc.freeze(): every tracked object moves to the permanent generation, never examined again;
 * all counts become 0. unfreeze() moves them back into the oldest generation. */
ZW_API void zw_gc_freeze(zw_rt *rt);
ZW_API void zw_gc_unfreeze(zw_rt *rt);
ZW_API size_t zw_gc_get_freeze_count(zw_rt *rt);

/* ---- debugging ---- */

enum zw_gc_debug {
    ZW_GC_DEBUG_STATS = 1,         /* a line per collection: generation, sizes, result, time */
    ZW_GC_DEBUG_COLLECTABLE = 2,   /* "gc: collectable <list 0x...>" per object found */
    ZW_GC_DEBUG_UNCOLLECTABLE = 4, /* "gc: uncollectable <...>" per object kept */
    ZW_GC_DEBUG_SAVEALL = 32,      /* keep what is found in zw_gc_garbage instead of freeing it */
    ZW_GC_DEBUG_LEAK = 38,         /* COLLECTABLE | UNCOLLECTABLE | SAVEALL */
};
ZW_API void zw_gc_set_debug(zw_rt *rt, unsigned flags);
ZW_API unsigned zw_gc_get_debug(zw_rt *rt);
/* Where the debug lines go (NULL: stderr, the default). */
ZW_API void zw_gc_set_debug_output(zw_rt *rt, FILE *out);
/* gc.garbage: the list of uncollectable objects (legacy finalizers), and with SAVEALL of every
 * object found. Borrowed; the program may empty it. */
ZW_API zw_obj *zw_gc_garbage(zw_rt *rt);

/* gc.callbacks: fn(rt, phase, info, arg) before ("start") and after ("stop") each collection,
 * in registration order. */
typedef struct zw_gc_info {
    int generation;
    size_t collected;
    size_t uncollectable;
} zw_gc_info;
typedef void (*zw_gc_callback)(zw_rt *rt, const char *phase, const zw_gc_info *info, void *arg);
ZW_API int zw_gc_add_callback(zw_rt *rt, zw_gc_callback fn, void *arg);
/* Removes the first registration of (fn, arg); 0, or -1 with ValueError if absent. */
ZW_API int zw_gc_remove_callback(zw_rt *rt, zw_gc_callback fn, void *arg);

/* ---- weak references ---- */

/* A weak reference to `o` with an optional callback (a callable, called with the weakref when
 * `o` dies; NULL or None for none). Callback-less refs are shared: the same object comes back. Only
 * types with ZW_TPFLAGS_WEAKREFABLE (classes of LAYOUT_DICT, user types that opt in) accept
 * them: TypeError "cannot create weak reference to 'int' object" otherwise. New reference. */
ZW_API zw_obj *zw_weakref_new(zw_obj *o, zw_obj *callback);
/* The weakref type of a runtime (borrowed): a base for subtypes (zw_type_new with .base set;
 * the subtype's basicsize may add fields after the weakref's). */
ZW_API zw_type *zw_weakref_type(zw_rt *rt);
/* A weak reference of `type` (the weakref type or a subtype). Refs of a subtype are never
 * shared, and come after the plain shared ref in zw_weakref_list. New reference. */
ZW_API zw_obj *zw_weakref_new_ex(zw_type *type, zw_obj *o, zw_obj *callback);
/* The referent (new reference), or None once it died. */
ZW_API zw_obj *zw_weakref_get(zw_obj *ref);
ZW_API bool zw_weakref_check(const zw_obj *o);
/* The callback (borrowed), NULL if none or after the referent died. */
ZW_API zw_obj *zw_weakref_callback(zw_obj *ref);
/* getweakrefcount(o) / getweakrefs(o) (new list, callback-less ref first). */
ZW_API size_t zw_weakref_count(zw_obj *o);
ZW_API zw_obj *zw_weakref_list(zw_obj *o);

/* ---- finalize ---- */

/* weakref.finalize(o, fn, *args): calls fn(*args) once when `o` dies, when called, or at
 * zw_rt_free (if atexit, the default), newest first. The runtime keeps the finalizer alive;
 * `args` is a tuple or NULL. New reference to the finalizer. */
ZW_API zw_obj *zw_finalize_new(zw_obj *o, zw_obj *fn, zw_obj *args);
/* f(): runs it now if alive and returns fn's result (new), else None. */
ZW_API zw_obj *zw_finalize_call(zw_obj *f);
ZW_API bool zw_finalize_alive(zw_obj *f);
/* (obj, fn, args) as a new tuple and unregisters it; None if dead. */
ZW_API zw_obj *zw_finalize_detach(zw_obj *f);
/* (obj, fn, args) without unregistering; None if dead. */
ZW_API zw_obj *zw_finalize_peek(zw_obj *f);
ZW_API bool zw_finalize_get_atexit(zw_obj *f);
ZW_API void zw_finalize_set_atexit(zw_obj *f, bool atexit);

#ifdef __cplusplus
}
#endif

#endif /* ZEROWASTE_GC_H */
