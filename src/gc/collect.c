/* gc/collect.c - one collection, as CPython 3.11's gcmodule.c does it, and the choice of which
 * generation to collect. Each step is a static function below, called in this order by
 * collect_generation(); docs/gc.md walks through them with a picture.
 *
 * Contracts: a collection never allocates except to append to gc.garbage (a failure there is
 * ignored); finalizers and weakref callbacks it runs may allocate, create cycles or call
 * zw_gc_collect (which then returns 0: rt->gc.collecting is set); every object it examines is
 * back in a generation list (or freed) when it returns. */
#include <string.h>
#include <time.h>

#include <zerowaste/gc.h>

#include "gc_internal.h"

#define GEN_HEAD(rt, g) (&(rt)->gc.gen[(g)].head)

/* ---- scratch reference counts ---- */

static inline intptr_t
gc_get_refs(gchead *g)
{
    return (intptr_t)(g->prev >> PREV_SHIFT);
}

static inline void
gc_set_refs(gchead *g, intptr_t refs)
{
    g->prev = (g->prev & ~PREV_MASK) | ((uintptr_t)refs << PREV_SHIFT);
}

static inline void
gc_reset_refs(gchead *g, intptr_t refs)
{
    g->prev = (g->prev & ZWI_GC_FINALIZED) | ZWI_GC_COLLECTING | ((uintptr_t)refs << PREV_SHIFT);
}

static void __attribute__((noreturn))
fatal_refcount(zw_obj *op, const char *why)
{
    fprintf(stderr,
            "zw: gc: %s: object at %p, refcount %ld, type '%s'\n"
            "zw: gc: an extension decref'ed an object it did not own, or forgot an incref\n",
            why, (void *)op, (long)op->refcnt, op->type->name);
    fflush(stderr);
    abort();
}

/* gc_refs = refcount, COLLECTING set, for each object of `containers`. */
static void
update_refs(zw_rt *rt, gchead *containers)
{
    for (gchead *g = gc_next(containers); g != containers; g = gc_next(g)) {
        zw_obj *op = ZWI_GC_OBJ(g);
        if (ZW_UNLIKELY(op->refcnt <= 0) && rt->debug)
            fatal_refcount(op, "refcount is too small (a tracked object with refcount <= 0)");
        gc_reset_refs(g, op->refcnt);
    }
}

/* Calls `visit` on each reference of `op`, as its type's traverse slot does. Lists and tuples,
 * the commonest containers, take the inline copy of their slot (obj_internal.h), in which the
 * collector's visit function is inlined too: no indirect call per object or per reference. */
static inline __attribute__((always_inline)) void
traverse(zw_rt *rt, zw_obj *op, zw_visit_fn visit, void *arg)
{
    zw_type *t = op->type;
    if (t == rt->builtin[ZW_T_LIST])
        zwi_list_traverse(op, visit, arg);
    else if (t == rt->builtin[ZW_T_TUPLE])
        zwi_tuple_traverse(op, visit, arg);
    else if (t->traverse != NULL)
        t->traverse(op, visit, arg);
}

static inline int
visit_decref(zw_obj *op, void *parent)
{
    if (ZWI_IS_GC(op)) {
        gchead *g = ZWI_GC_HEAD(op);
        if (gc_is_collecting(g)) {
            if (ZW_UNLIKELY(gc_get_refs(g) == 0) && ZWI_RT(op)->debug)
                fatal_refcount(op, "refcount is too small (more references found than counted)");
            g->prev -= (uintptr_t)1 << PREV_SHIFT;
        }
    }
    return 0;
}

/* gc_refs -= references from inside `containers`: what is left comes from outside. */
static void
subtract_refs(zw_rt *rt, gchead *containers)
{
    for (gchead *g = gc_next(containers); g != containers; g = gc_next(g)) {
        zw_obj *op = ZWI_GC_OBJ(g);
        traverse(rt, op, visit_decref, op);
    }
}

/* update_refs and subtract_refs in one pass, for a full collection with nothing frozen. Then
 * every tracked object is in `young`, so a tracked referent that is not COLLECTING yet is one the
 * pass has not reached: it gets its gc_refs from its refcount at that first touch, as
 * update_refs would have given it, before the reference is subtracted. Each object is
 * initialised once and each reference subtracted once, so the counts are those of the two
 * passes; the objects are read once instead of twice. */
static inline __attribute__((always_inline)) void
init_refs(zw_rt *rt, gchead *g)
{
    zw_obj *op = ZWI_GC_OBJ(g);
    if (ZW_UNLIKELY(op->refcnt <= 0) && rt->debug)
        fatal_refcount(op, "refcount is too small (a tracked object with refcount <= 0)");
    gc_reset_refs(g, op->refcnt);
}

static inline int
visit_decref_full(zw_obj *op, void *arg)
{
    if (ZWI_IS_GC(op)) {
        gchead *g = ZWI_GC_HEAD(op);
        if (!gc_is_collecting(g)) {
            if (g->next == 0)
                return 0; /* untracked */
            init_refs(arg, g);
        }
        if (ZW_UNLIKELY(gc_get_refs(g) == 0) && ZWI_RT(op)->debug)
            fatal_refcount(op, "refcount is too small (more references found than counted)");
        g->prev -= (uintptr_t)1 << PREV_SHIFT;
    }
    return 0;
}

static void
update_and_subtract_refs(zw_rt *rt, gchead *young)
{
    for (gchead *g = gc_next(young); g != young; g = gc_next(g)) {
        if (!gc_is_collecting(g))
            init_refs(rt, g);
        traverse(rt, ZWI_GC_OBJ(g), visit_decref_full, rt);
    }
}

static inline int
visit_reachable(zw_obj *op, void *arg)
{
    gchead *reachable = arg;
    if (!ZWI_IS_GC(op))
        return 0;
    gchead *g = ZWI_GC_HEAD(op);
    /* objects of other generations, and the ones the scan already passed, are not collecting */
    if (!gc_is_collecting(g))
        return 0;
    if (g->next & NEXT_MASK_UNREACHABLE) {
        /* tentatively unreachable: back to the end of the young list, to be scanned again */
        gchead *prev = gc_prev(g);
        gchead *next = (gchead *)(g->next & ~NEXT_MASK_UNREACHABLE);
        prev->next = g->next; /* keeps the mask */
        gc_set_prev(next, prev);
        gc_list_append(g, reachable);
        gc_set_refs(g, 1);
    } else if (gc_get_refs(g) == 0) {
        gc_set_refs(g, 1);
    }
    return 0;
}

/* What move_unreachable learnt about the survivors of a collection. */
typedef struct survivors {
    size_t n;   /* reachable objects left in young (untracked tuples not counted) */
    bool dicts; /* one of them is a dict (untrack_dicts has work to do) */
} survivors;

/* Tuples holding only atomic or untracked items need no tracking (_PyTuple_MaybeUntrack). */
static inline bool
tuple_untrackable(zwi_tuple *t, zw_type *tuple_type)
{
    for (intptr_t i = 0; i < t->vo.size; i++) {
        zw_obj *x = t->items[i];
        if (x == NULL || (ZWI_IS_GC(x) && (x->type != tuple_type || ZWI_TRACKED(x))))
            return false;
    }
    return true;
}

/* One pass over `young`: an object with gc_refs > 0 is reachable, and so is what it reaches;
 * an object with gc_refs == 0 moves to `unreachable` unless something later reaches it.
 *
 * With `sv` (the collection's own pass, not the resurrection check) the pass also does
 * CPython's untrack_tuples and counts the survivors for long_lived_pending / _total, which
 * 3.11 does in two more passes over young afterwards. The result is the same: a reachable
 * object is never moved again, so the order in which this pass decides is the final order of
 * young, the one untrack_tuples walks; when a tuple is decided, the tuples before it have been
 * decided and the ones after it not yet, in both. */
static inline __attribute__((always_inline)) void
move_unreachable(zw_rt *rt, gchead *young, gchead *unreachable, survivors *sv)
{
    zw_type *tuple_type = rt->builtin[ZW_T_TUPLE];
    zw_type *dict_type = rt->builtin[ZW_T_DICT];
    size_t n = 0;
    bool dicts = false;
    gchead *prev = young;
    gchead *g = gc_next(young);
    while (g != young) {
        if (gc_get_refs(g) != 0) {
            zw_obj *op = ZWI_GC_OBJ(g);
            traverse(rt, op, visit_reachable, young);
            if (sv != NULL) {
                if (op->type == tuple_type && tuple_untrackable((zwi_tuple *)op, tuple_type)) {
                    /* untracked: out of young (prev stays the last survivor) */
                    prev->next = g->next;
                    g->next = 0;
                    g->prev &= ZWI_GC_FINALIZED;
                    g = (gchead *)prev->next;
                    continue;
                }
                n++;
                dicts |= op->type == dict_type;
            }
            gc_set_prev(g, prev); /* young is doubly linked again up to here */
            gc_clear_collecting(g);
            prev = g;
        } else {
            /* to the tentatively unreachable list, marked in `next` */
            prev->next = g->next;
            gchead *last = gc_prev(unreachable);
            last->next = NEXT_MASK_UNREACHABLE | (uintptr_t)g;
            gc_set_prev(g, last);
            g->next = NEXT_MASK_UNREACHABLE | (uintptr_t)unreachable;
            unreachable->prev = (uintptr_t)g;
        }
        g = (gchead *)prev->next;
    }
    young->prev = (uintptr_t)prev;
    unreachable->next &= ~NEXT_MASK_UNREACHABLE;
    if (sv != NULL) {
        sv->n = n;
        sv->dicts = dicts;
    }
}

static inline __attribute__((always_inline)) void
deduce_unreachable(zw_rt *rt, gchead *base, gchead *unreachable, survivors *sv)
{
    ZW_ASSERT_EXPENSIVE(zwi_gc_list_is_valid(base, 0));
    if (sv != NULL && base == GEN_HEAD(rt, ZWI_NGEN - 1) && gc_list_is_empty(&rt->gc.permanent)) {
        update_and_subtract_refs(rt, base);
    } else {
        update_refs(rt, base);
        subtract_refs(rt, base);
    }
    gc_list_init(unreachable);
    move_unreachable(rt, base, unreachable, sv);
    ZW_ASSERT_EXPENSIVE(zwi_gc_list_is_valid(base, 0));
    ZW_ASSERT_EXPENSIVE(
        zwi_gc_list_is_valid(unreachable, ZWI_GC_EXPECT_COLLECTING | ZWI_GC_EXPECT_UNREACHABLE));
}

static void
clear_unreachable_mask(gchead *unreachable)
{
    for (gchead *g = gc_next(unreachable); g != unreachable;) {
        g->next &= ~NEXT_MASK_UNREACHABLE;
        g = gc_next(g);
    }
}

/* ---- lazy untracking ---- */

static bool
may_be_tracked(zw_obj *o)
{
    if (!ZWI_IS_GC(o))
        return false;
    if (o->type == ZWI_RT(o)->builtin[ZW_T_TUPLE])
        return ZWI_TRACKED(o);
    return true;
}

/* Dicts holding only atomic or untracked keys and values; full collections only (issue 14775).
 * Returns how many it untracked. */
static size_t
untrack_dicts(zw_rt *rt, gchead *head)
{
    size_t untracked = 0;
    zw_type *dict = rt->builtin[ZW_T_DICT];
    for (gchead *g = gc_next(head), *next; g != head; g = next) {
        next = gc_next(g);
        zw_obj *op = ZWI_GC_OBJ(g);
        if (op->type != dict)
            continue;
        size_t pos = 0;
        zw_obj *k, *v;
        bool keep = false;
        while (!keep && zw_dict_next(op, &pos, &k, &v))
            keep = may_be_tracked(k) || may_be_tracked(v);
        if (!keep) {
            gc_list_remove(g);
            untracked++;
        }
    }
    return untracked;
}

/* ---- legacy finalizers ---- */

static int
visit_move(zw_obj *op, void *arg)
{
    if (ZWI_IS_GC(op)) {
        gchead *g = ZWI_GC_HEAD(op);
        if (gc_is_collecting(g)) {
            gc_list_move(g, arg);
            gc_clear_collecting(g);
        }
    }
    return 0;
}

/* What the pass over the unreachable set learnt: whether anything in it can run code before
 * delete_garbage (a weak reference to clear, a finalize slot not yet run), and its size. */
typedef struct unreachable_scan {
    bool weakrefs;   /* a weakref, or an object with weak references to it */
    bool finalizers; /* an object whose finalize slot has not run yet */
    size_t n;        /* objects left in the unreachable set */
} unreachable_scan;

/* Objects with a legacy finalizer, and everything they reach in the unreachable set, are
 * uncollectable: they go to `finalizers`. Also clears the unreachable mark of every object and,
 * in the same pass, fills `scan` (conservatively: objects later moved to `finalizers` count). */
static void
move_legacy_finalizers(zw_rt *rt, gchead *unreachable, gchead *finalizers, unreachable_scan *scan)
{
    zw_type *weakref_type = GC_EXT(rt)->weakref_type;
    zw_type *last_type = NULL; /* the set is mostly runs of one type: test each type once */
    bool last_is_weakref = false;
    size_t n = 0;
    scan->weakrefs = scan->finalizers = false;
    for (gchead *g = gc_next(unreachable), *next; g != unreachable; g = next) {
        g->next &= ~NEXT_MASK_UNREACHABLE;
        next = gc_next(g);
        zw_obj *op = ZWI_GC_OBJ(g);
        zw_type *t = op->type;
        if (t->legacy_del != NULL) {
            gc_clear_collecting(g);
            gc_list_move(g, finalizers);
            continue;
        }
        n++;
        if (t != last_type) {
            last_type = t;
            last_is_weakref = weakref_type != NULL && zw_type_is_subtype(t, weakref_type);
        }
        if (last_is_weakref || ((t->flags & ZW_TPFLAGS_WEAKREFABLE) && *ZWI_WEAKLIST(op) != NULL))
            scan->weakrefs = true;
        if (t->finalize != NULL && !(g->prev & ZWI_GC_FINALIZED))
            scan->finalizers = true;
    }
    scan->n = n;
    if (gc_list_is_empty(finalizers))
        return;
    for (gchead *g = gc_next(finalizers); g != finalizers; g = gc_next(g)) {
        zw_obj *op = ZWI_GC_OBJ(g);
        if (op->type->traverse != NULL)
            op->type->traverse(op, visit_move, finalizers);
    }
    scan->n = gc_list_size(unreachable);
}

/* ---- finalizers, resurrection, clearing ---- */

/* tp_finalize of each object not yet finalized, once per object lifetime (PEP 442). */
static void
finalize_garbage(zw_rt *rt, gchead *collectable)
{
    gchead seen;
    gc_list_init(&seen);
    while (!gc_list_is_empty(collectable)) {
        gchead *g = gc_next(collectable);
        zw_obj *op = ZWI_GC_OBJ(g);
        gc_list_move(g, &seen);
        if (!(g->prev & ZWI_GC_FINALIZED) && op->type->finalize != NULL) {
            g->prev |= ZWI_GC_FINALIZED;
            zw_incref(op);
            op->type->finalize(op);
            if (rt->exc != ZW_NoError)
                zwi_gc_write_unraisable(rt, "finalizer of", op);
            zw_decref(op);
        }
    }
    gc_list_merge(&seen, collectable);
}

/* Redoes the reachability test on the unreachable set alone: what a finalizer made reachable
 * again, and all it reaches, goes to the older generation. */
static void
handle_resurrected_objects(zw_rt *rt, gchead *unreachable, gchead *still_unreachable,
                           gchead *old)
{
    for (gchead *g = gc_next(unreachable); g != unreachable; g = gc_next(g))
        gc_clear_collecting(g);
    deduce_unreachable(rt, unreachable, still_unreachable, NULL);
    clear_unreachable_mask(still_unreachable);
    gc_list_merge(unreachable, old);
}

static void
debug_cycle(zw_rt *rt, const char *msg, zw_obj *op)
{
    fprintf(zwi_gc_out(rt), "gc: %s <%s %p>\n", msg, op->type->name, (void *)op);
}

/* Breaks the cycles: tp_clear drops each object's references so refcounts reach 0. With
 * SAVEALL the objects go to gc.garbage instead. */
static void
delete_garbage(zw_rt *rt, zwi_gc_ext *ext, gchead *collectable, gchead *old)
{
    while (!gc_list_is_empty(collectable)) {
        gchead *g = gc_next(collectable);
        zw_obj *op = ZWI_GC_OBJ(g);
        if (ext->debug & ZW_GC_DEBUG_SAVEALL) {
            zw_obj *garbage = zw_gc_garbage(rt);
            if (garbage == NULL || zw_list_append(garbage, op) != 0)
                zw_err_clear(rt);
        } else if (op->type->clear != NULL) {
            zw_incref(op);
            op->type->clear(op);
            if (rt->exc != ZW_NoError)
                zwi_gc_write_unraisable(rt, "clear of", op);
            zw_decref(op);
        }
        if (gc_next(collectable) == g) {
            /* still alive: move it on, it may die later */
            gc_clear_collecting(g);
            gc_list_move(g, old);
        }
    }
}

/* gc.garbage gets the objects with a legacy finalizer (every one with SAVEALL). */
static void
handle_legacy_finalizers(zw_rt *rt, zwi_gc_ext *ext, gchead *finalizers, gchead *old)
{
    for (gchead *g = gc_next(finalizers); g != finalizers; g = gc_next(g)) {
        zw_obj *op = ZWI_GC_OBJ(g);
        if ((ext->debug & ZW_GC_DEBUG_SAVEALL) || op->type->legacy_del != NULL) {
            zw_obj *garbage = zw_gc_garbage(rt);
            if (garbage == NULL || zw_list_append(garbage, op) != 0) {
                zw_err_clear(rt);
                break;
            }
        }
    }
    gc_list_merge(finalizers, old);
}

/* ---- debug output (zw_gc_set_debug), kept out of the collection's steps ---- */

static double
now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ZW_GC_DEBUG_STATS: the generation and the lists' sizes; returns the start time (0 without). */
static double
debug_collection_start(zw_rt *rt, zwi_gc_ext *ext, int generation)
{
    if (!(ext->debug & ZW_GC_DEBUG_STATS))
        return 0;
    FILE *out = zwi_gc_out(rt);
    fprintf(out, "gc: collecting generation %d...\n", generation);
    fprintf(out, "gc: objects in each generation: %zu %zu %zu\n", gc_list_size(GEN_HEAD(rt, 0)),
            gc_list_size(GEN_HEAD(rt, 1)), gc_list_size(GEN_HEAD(rt, 2)));
    fprintf(out, "gc: objects in permanent generation: %zu\n", gc_list_size(&rt->gc.permanent));
    return now_seconds();
}

/* ZW_GC_DEBUG_COLLECTABLE or _UNCOLLECTABLE (`flag`): one line per object of `list`. */
static void
debug_objects(zw_rt *rt, zwi_gc_ext *ext, unsigned flag, const char *msg, gchead *list)
{
    if (!(ext->debug & flag))
        return;
    for (gchead *g = gc_next(list); g != list; g = gc_next(g))
        debug_cycle(rt, msg, ZWI_GC_OBJ(g));
}

/* ZW_GC_DEBUG_STATS: what the collection found and how long it took. */
static void
debug_collection_done(zw_rt *rt, zwi_gc_ext *ext, double t0, size_t unreachable,
                      size_t uncollectable)
{
    if (ext->debug & ZW_GC_DEBUG_STATS)
        fprintf(zwi_gc_out(rt), "gc: done, %zu unreachable, %zu uncollectable, %.4fs elapsed\n",
                unreachable, uncollectable, now_seconds() - t0);
}

/* ---- one collection ---- */

/* The counts (this collection is one more for the next generation, the younger ones restart)
 * and the list to collect: generation `generation` with every younger one merged into it. */
static gchead *
merge_younger_into(zw_rt *rt, int generation)
{
    if (generation + 1 < ZWI_NGEN)
        rt->gc.gen[generation + 1].count += 1;
    for (int i = 0; i <= generation; i++)
        rt->gc.gen[i].count = 0;
    for (int i = 0; i < generation; i++)
        gc_list_merge(GEN_HEAD(rt, i), GEN_HEAD(rt, generation));
    return GEN_HEAD(rt, generation);
}

/* The reachable objects of `young` move to the older generation (a full collection keeps them
 * where they are and untracks the dicts that need no tracking); the counts of long-lived
 * objects that pace full collections follow (as 3.11). */
static void
move_survivors(zw_rt *rt, zwi_gc_ext *ext, int generation, gchead *young, gchead *old,
               survivors *sv)
{
    if (young != old) {
        if (generation == ZWI_NGEN - 2)
            ext->long_lived_pending += (intptr_t)sv->n;
        gc_list_merge(young, old);
    } else {
        if (sv->dicts)
            sv->n -= untrack_dicts(rt, young);
        ext->long_lived_pending = 0;
        ext->long_lived_total = (intptr_t)sv->n;
    }
}

/* Clears the weak references to the unreachable set, runs its finalizers and takes back what
 * they resurrected: `final_unreachable` gets what is still garbage. Returns its size plus the
 * weakrefs that died with it (m). */
static size_t
finalize_unreachable(zw_rt *rt, gchead *unreachable, gchead *final_unreachable, gchead *old,
                     const unreachable_scan *scan)
{
    if (scan->weakrefs || scan->finalizers) {
        size_t m = zwi_gc_handle_weakrefs(rt, unreachable, old);
        finalize_garbage(rt, unreachable);
        handle_resurrected_objects(rt, unreachable, final_unreachable, old);
        return m + gc_list_size(final_unreachable);
    }
    /* Nothing to clear and no finalizer to run: handle_weakrefs and finalize_garbage would do
     * nothing, no code runs, so no refcount changes and the resurrection check would find
     * every object unreachable again, in the same order (each one's referrers are all in the
     * set: a reference from outside, or from an object moved to `finalizers`, would have kept
     * it out). Skip its five passes; the set is final as it is. */
    gc_list_init(final_unreachable);
    gc_list_merge(unreachable, final_unreachable);
    return scan->n;
}

static void
count_collection(zwi_gc_ext *ext, int generation, size_t collected, size_t uncollectable)
{
    ext->stats[generation].collections++;
    ext->stats[generation].collected += collected;
    ext->stats[generation].uncollectable += uncollectable;
}

/* Collects `generation` and the younger ones; returns unreachable objects found (m + n). Each
 * step is a function above, called in this order; between them, ZW_DEBUG_FULL builds check the
 * lists with the flags the next step expects (validate_list). */
static size_t
collect_generation(zw_rt *rt, int generation, size_t *collected, size_t *uncollectable)
{
    zwi_gc_ext *ext = GC_EXT(rt);
    ZW_ASSERT(rt->gc.collecting && generation >= 0 && generation < ZWI_NGEN);
    ZW_ASSERT_EXPENSIVE(zwi_gc_generations_are_valid(rt));
    double t0 = debug_collection_start(rt, ext, generation);
    gchead *young = merge_younger_into(rt, generation);
    gchead *old = generation < ZWI_NGEN - 1 ? GEN_HEAD(rt, generation + 1) : young;

    gchead unreachable, finalizers, final_unreachable;
    survivors sv;
    deduce_unreachable(rt, young, &unreachable, &sv); /* and untrack_tuples, see there */
    move_survivors(rt, ext, generation, young, old, &sv);
    ZW_ASSERT(young == old || gc_list_is_empty(young));
    gc_list_init(&finalizers);
    unreachable_scan scan;
    move_legacy_finalizers(rt, &unreachable, &finalizers, &scan);
    ZW_ASSERT_EXPENSIVE(zwi_gc_list_is_valid(&unreachable, ZWI_GC_EXPECT_COLLECTING));
    ZW_ASSERT_EXPENSIVE(zwi_gc_list_is_valid(&finalizers, 0));
    debug_objects(rt, ext, ZW_GC_DEBUG_COLLECTABLE, "collectable", &unreachable);
    size_t m = finalize_unreachable(rt, &unreachable, &final_unreachable, old, &scan);
    ZW_ASSERT(gc_list_is_empty(&unreachable));
    ZW_ASSERT_EXPENSIVE(zwi_gc_list_is_valid(&final_unreachable, ZWI_GC_EXPECT_COLLECTING));
    delete_garbage(rt, ext, &final_unreachable, old);
    ZW_ASSERT(gc_list_is_empty(&final_unreachable));
    size_t n = gc_list_size(&finalizers);
    debug_objects(rt, ext, ZW_GC_DEBUG_UNCOLLECTABLE, "uncollectable", &finalizers);
    debug_collection_done(rt, ext, t0, n + m, n);
    handle_legacy_finalizers(rt, ext, &finalizers, old);
    ZW_ASSERT(gc_list_is_empty(&finalizers));
    ZW_ASSERT_EXPENSIVE(zwi_gc_generations_are_valid(rt));
    if (generation == ZWI_NGEN - 1)
        zw_rt_clear_freelists(rt);
    count_collection(ext, generation, m, n);
    *collected = m;
    *uncollectable = n;
    return n + m;
}

static void
invoke_callbacks(zw_rt *rt, const char *phase, int generation, size_t collected,
                 size_t uncollectable)
{
    zwi_gc_ext *ext = GC_EXT(rt);
    zw_gc_info info = {generation, collected, uncollectable};
    /* a callback may add or remove callbacks: walk by index over what is there now */
    for (size_t i = 0; i < ext->ncallbacks; i++) {
        zwi_gc_cb cb = ext->callbacks[i];
        cb.fn(rt, phase, &info, cb.arg);
        if (rt->exc != ZW_NoError)
            zwi_gc_write_unraisable(rt, "gc callback", NULL);
    }
}

/* The collection with the callbacks around it, the caller's pending error put aside. */
ZW_HIDDEN size_t
zwi_gc_collect_with_callback(zw_rt *rt, int generation)
{
    zw_exc saved = rt->exc;
    char msg[sizeof(rt->errmsg)];
    if (saved != ZW_NoError)
        memcpy(msg, rt->errmsg, sizeof(msg));
    rt->exc = ZW_NoError;
    invoke_callbacks(rt, "start", generation, 0, 0);
    size_t collected, uncollectable;
    size_t result = collect_generation(rt, generation, &collected, &uncollectable);
    invoke_callbacks(rt, "stop", generation, collected, uncollectable);
    rt->exc = saved;
    if (saved != ZW_NoError)
        memcpy(rt->errmsg, msg, sizeof(msg));
    return result;
}

/* The automatic collection: the oldest generation over its threshold, except that a full
 * collection waits until the objects moved into gen 2 since the last one exceed a quarter of
 * those it kept (amortised linear cost, as 3.11). */
static void
collect_generations(zw_rt *rt)
{
    zwi_gc_ext *ext = GC_EXT(rt);
    for (int i = ZWI_NGEN - 1; i >= 0; i--) {
        if (rt->gc.gen[i].count > rt->gc.gen[i].threshold) {
            if (i == ZWI_NGEN - 1 && ext->long_lived_pending < ext->long_lived_total / 4)
                continue;
            zwi_gc_collect_with_callback(rt, i);
            break;
        }
    }
}

/* Called by obj when an allocation of a GC object crosses the threshold (or at every one in
 * stress mode: a young collection each time, a full one every 1000). */
static void
auto_collect(zw_rt *rt)
{
    rt->gc.collecting = true;
    if (rt->gc.stress) {
        zwi_gc_ext *ext = GC_EXT(rt);
        if (++ext->stress_allocs >= 1000) {
            ext->stress_allocs = 0;
            zwi_gc_collect_with_callback(rt, ZWI_NGEN - 1);
        } else {
            zwi_gc_collect_with_callback(rt, 0);
        }
    } else {
        collect_generations(rt);
    }
    rt->gc.collecting = false;
}

/* ---- attaching the collector to a runtime ---- */

/* zwi_gc_hooks.attach: the collector's state for a new runtime, and obj's two hooks. */
static int
attach(zw_rt *rt)
{
    zwi_gc_ext *ext = zw_raw_calloc(rt->raw, 1, sizeof(*ext));
    if (ext == NULL)
        return -1;
    rt->gc.ext = ext;
    if (zwi_weakref_init(rt) != 0 || zwi_weakcontainers_init(rt) != 0) {
        zw_raw_free(rt->raw, ext);
        rt->gc.ext = NULL;
        return -1;
    }
    rt->gc.collect_hook = auto_collect;
    rt->gc.clear_weakrefs_hook = zwi_weakref_clear_all;
    return 0;
}

/* zwi_gc_hooks.detach: as interpreter shutdown, then the state goes. */
static void
detach(zw_rt *rt)
{
    zwi_gc_ext *ext = GC_EXT(rt);
    if (ext == NULL)
        return;
    /* as interpreter shutdown: finalize's atexit functions, then a last full collection */
    zwi_finalize_atexit(rt);
    if (!rt->gc.collecting) {
        rt->gc.collecting = true;
        zwi_gc_collect_with_callback(rt, ZWI_NGEN - 1);
        rt->gc.collecting = false;
    }
    if (ext->garbage != NULL && zw_list_len(ext->garbage) > 0 &&
        !(ext->debug & ZW_GC_DEBUG_SAVEALL)) {
        FILE *out = zwi_gc_out(rt);
        size_t n = zw_list_len(ext->garbage);
        if (ext->debug & ZW_GC_DEBUG_UNCOLLECTABLE) {
            fprintf(out, "ResourceWarning: gc: %zu uncollectable objects at shutdown\n", n);
            zw_print(ext->garbage, out);
            fputc('\n', out);
            zw_err_clear(rt);
        } else {
            fprintf(out,
                    "ResourceWarning: gc: %zu uncollectable objects at shutdown; use "
                    "zw_gc_set_debug(rt, ZW_GC_DEBUG_UNCOLLECTABLE) to list them\n",
                    n);
        }
    }
    rt->gc.collect_hook = NULL;
    ZW_CLEAR(ext->garbage);
    ZW_CLEAR(ext->registry);
    zw_raw_free(rt->raw, ext->callbacks);
    zw_raw_free(rt->raw, ext);
    rt->gc.ext = NULL;
}

/* obj calls the collector only through this table (obj_internal.h). Installed before main, and
 * before the program's own constructors (priority 101, the first one not reserved), so that a
 * runtime made by one of them has its collector too. */
static const zwi_gc_hooks collector = {.attach = attach, .detach = detach};

__attribute__((constructor(101))) static void
install_collector(void)
{
    zwi_obj_install_gc(&collector);
}
