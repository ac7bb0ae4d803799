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

/* ---- weak containers ---- */

/* weakref.WeakValueDictionary, WeakKeyDictionary and WeakSet (Lib/weakref.py, _weakrefset.py).
 * Each container is a GC object of its own type, itself weakly referenceable. An entry vanishes
 * when its weak side dies, by refcount or in a collection: the container holds one weak
 * reference with a callback per entry, and that is the only weak reference it makes to the
 * weak side (zw_weakref_count of a value or key stays 1). The weak side must accept weak
 * references (TypeError otherwise, as zw_weakref_new); keys must be hashable.
 *
 * Iteration: the *_iter functions return iterators for zw_iter_next, which yields new
 * references to live entries only. While an iterator of a container is alive and not
 * exhausted, entries whose weak side dies are queued, not removed, so a walk never sees the
 * table change under it; the queue is applied when the last such iterator is exhausted or
 * freed. len counts live entries: stored minus queued. Explicit changes during a walk are
 * allowed (re-inserting the key of a queued entry works); adding or removing entries makes the
 * walking iterator's next call fail with RuntimeError, as a dict's iterator does.
 * See docs/gc.md#weak-containers. */

/* A new, empty WeakValueDictionary. NULL with the error set. */
ZW_API zw_obj *zw_weakvaluedict_new(zw_rt *rt);
/* wd[key] = value: the container keeps its own reference to `key` and a weak one to `value`.
 * 0, or -1 (TypeError if `value` is not weakly referenceable or `key` unhashable). */
ZW_API int zw_weakvaluedict_set(zw_obj *wd, zw_obj *key, zw_obj *value);
/* wd.get(key): a new reference to the value; NULL with no error set when `key` is absent or
 * its value died (queued or not); NULL with the error set on failure (key unhashable, a
 * comparison failed): tell them apart with zw_err_occurred. */
ZW_API zw_obj *zw_weakvaluedict_get(zw_obj *wd, zw_obj *key);
/* del wd[key]: 0, or -1 with KeyError when absent or dead. */
ZW_API int zw_weakvaluedict_del(zw_obj *wd, zw_obj *key);
/* key in wd, its value alive: 1, 0, or -1 with the error set. */
ZW_API int zw_weakvaluedict_contains(zw_obj *wd, zw_obj *key);
/* len(wd): entries stored minus the ones queued for removal. */
ZW_API size_t zw_weakvaluedict_len(zw_obj *wd);
/* wd.copy(): a new WeakValueDictionary of the live entries. */
ZW_API zw_obj *zw_weakvaluedict_copy(zw_obj *wd);
/* New iterators over the live keys, values, or (key, value) tuples, in insertion order. */
ZW_API zw_obj *zw_weakvaluedict_keys_iter(zw_obj *wd);
ZW_API zw_obj *zw_weakvaluedict_values_iter(zw_obj *wd);
ZW_API zw_obj *zw_weakvaluedict_items_iter(zw_obj *wd);
/* wd.valuerefs(): a new list of the weak references to the live values (the container's own
 * refs, with their callbacks: keep them no longer than needed). */
ZW_API zw_obj *zw_weakvaluedict_valuerefs(zw_obj *wd);
/* wd.setdefault(key, default_): the live value for `key` if there is one, else stores
 * `default_` (weakly) and returns it. New reference; NULL with the error set. */
ZW_API zw_obj *zw_weakvaluedict_setdefault(zw_obj *wd, zw_obj *key, zw_obj *default_);
/* wd.pop(key[, default_]): removes `key` and returns its value (new reference); when absent or
 * dead returns `default_` (new reference) or, if it is NULL, fails with KeyError. */
ZW_API zw_obj *zw_weakvaluedict_pop(zw_obj *wd, zw_obj *key, zw_obj *default_);
/* wd.popitem(): removes the last live entry inserted and gives its key and value as new
 * references in *key and *value. 0, or -1 with KeyError when there is none. */
ZW_API int zw_weakvaluedict_popitem(zw_obj *wd, zw_obj **key, zw_obj **value);
/* wd.update(other): `other` is a dict or a WeakValueDictionary (its live entries). 0 or -1
 * (TypeError for other kinds; entries set before a failure stay). */
ZW_API int zw_weakvaluedict_update(zw_obj *wd, zw_obj *other);
ZW_API bool zw_weakvaluedict_check(const zw_obj *o);

/* A new, empty WeakKeyDictionary. NULL with the error set. */
ZW_API zw_obj *zw_weakkeydict_new(zw_rt *rt);
/* wd[key] = value: a weak reference to `key`, a reference of its own to `value`. An equal live
 * key already stored stays (as dict keeps its first key). 0, or -1 (TypeError if `key` is not
 * weakly referenceable or unhashable). */
ZW_API int zw_weakkeydict_set(zw_obj *wd, zw_obj *key, zw_obj *value);
/* wd.get(key): the value, a new reference; NULL with no error set when absent; NULL with the
 * error set on failure (TypeError when `key` is not weakly referenceable, as CPython). */
ZW_API zw_obj *zw_weakkeydict_get(zw_obj *wd, zw_obj *key);
/* del wd[key]: 0, or -1 with KeyError (TypeError if `key` is not weakly referenceable). */
ZW_API int zw_weakkeydict_del(zw_obj *wd, zw_obj *key);
/* key in wd: 1, 0 (also for keys that cannot be weakly referenced), -1 on error. */
ZW_API int zw_weakkeydict_contains(zw_obj *wd, zw_obj *key);
ZW_API size_t zw_weakkeydict_len(zw_obj *wd);
/* wd.copy(): a new WeakKeyDictionary of the live entries. */
ZW_API zw_obj *zw_weakkeydict_copy(zw_obj *wd);
/* New iterators over the live keys, values, or (key, value) tuples, in insertion order. */
ZW_API zw_obj *zw_weakkeydict_keys_iter(zw_obj *wd);
ZW_API zw_obj *zw_weakkeydict_values_iter(zw_obj *wd);
ZW_API zw_obj *zw_weakkeydict_items_iter(zw_obj *wd);
/* wd.keyrefs(): a new list of the weak references to the live keys (the container's own). */
ZW_API zw_obj *zw_weakkeydict_keyrefs(zw_obj *wd);
/* As the zw_weakvaluedict_ ones, keys weak. */
ZW_API zw_obj *zw_weakkeydict_setdefault(zw_obj *wd, zw_obj *key, zw_obj *default_);
ZW_API zw_obj *zw_weakkeydict_pop(zw_obj *wd, zw_obj *key, zw_obj *default_);
ZW_API int zw_weakkeydict_popitem(zw_obj *wd, zw_obj **key, zw_obj **value);
/* wd.update(other): `other` is a dict or a WeakKeyDictionary (its live entries). */
ZW_API int zw_weakkeydict_update(zw_obj *wd, zw_obj *other);
ZW_API bool zw_weakkeydict_check(const zw_obj *o);

/* A new, empty WeakSet. NULL with the error set. */
ZW_API zw_obj *zw_weakset_new(zw_rt *rt);
/* ws.add(item): 0, or -1 (TypeError if `item` is not weakly referenceable or unhashable). */
ZW_API int zw_weakset_add(zw_obj *ws, zw_obj *item);
/* ws.discard(item): 0 whether or not it was there (also for items that cannot be weakly
 * referenced); -1 on error. */
ZW_API int zw_weakset_discard(zw_obj *ws, zw_obj *item);
/* item in ws: 1, 0 (also for items that cannot be weakly referenced), -1 on error. */
ZW_API int zw_weakset_contains(zw_obj *ws, zw_obj *item);
ZW_API size_t zw_weakset_len(zw_obj *ws);
/* A new iterator over the live items, in insertion order. */
ZW_API zw_obj *zw_weakset_iter(zw_obj *ws);
ZW_API bool zw_weakset_check(const zw_obj *o);

#ifdef __cplusplus
}
#endif

#endif /* ZEROWASTE_GC_H */
