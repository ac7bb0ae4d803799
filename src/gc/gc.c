/* gc/gc.c - the gc module's API over a runtime: enable/disable, collect, counts, thresholds,
 * stats, get_objects/referrers/referents, tracking, freeze, debug flags, garbage, callbacks.
 * See docs/gc.md#api. */
#include <string.h>

#include <zerowaste/gc.h>

#include "gc_internal.h"

ZW_HIDDEN size_t zwi_gc_collect_with_callback(zw_rt *rt, int generation);

FILE *
zwi_gc_out(zw_rt *rt)
{
    zwi_gc_ext *ext = GC_EXT(rt);
    return ext != NULL && ext->out != NULL ? ext->out : stderr;
}

void
zwi_gc_write_unraisable(zw_rt *rt, const char *where, zw_obj *obj)
{
    FILE *out = zwi_gc_out(rt);
    if (obj != NULL)
        fprintf(out, "Exception ignored in: %s <%s %p>\n", where, obj->type->name, (void *)obj);
    else
        fprintf(out, "Exception ignored in: %s\n", where);
    fprintf(out, "%s\n", zw_errmsg(rt));
    zw_err_clear(rt);
}

/* ---- automatic collection ---- */

void
zw_gc_enable(zw_rt *rt)
{
    rt->gc.enabled = true;
}

void
zw_gc_disable(zw_rt *rt)
{
    rt->gc.enabled = false;
}

bool
zw_gc_isenabled(zw_rt *rt)
{
    return rt->gc.enabled;
}

intptr_t
zw_gc_collect(zw_rt *rt, int generation)
{
    if (generation < 0 || generation >= ZWI_NGEN)
        return zw_err_set(rt, ZW_ValueError, "invalid generation");
    if (rt->gc.collecting || rt->gc.ext == NULL)
        return 0;
    rt->gc.collecting = true;
    size_t n = zwi_gc_collect_with_callback(rt, generation);
    ZW_ASSERT(rt->gc.collecting); /* callbacks and finalizers cannot start another */
    rt->gc.collecting = false;
    return (intptr_t)n;
}

void
zw_gc_get_count(zw_rt *rt, int count[ZW_GC_NGEN])
{
    for (int i = 0; i < ZWI_NGEN; i++)
        count[i] = rt->gc.gen[i].count;
}

void
zw_gc_get_threshold(zw_rt *rt, int threshold[ZW_GC_NGEN])
{
    for (int i = 0; i < ZWI_NGEN; i++)
        threshold[i] = rt->gc.gen[i].threshold;
}

int
zw_gc_set_threshold(zw_rt *rt, const int threshold[ZW_GC_NGEN])
{
    for (int i = 0; i < ZWI_NGEN; i++)
        if (threshold[i] < 0)
            return zw_err_set(rt, ZW_ValueError, "threshold %d must be >= 0 (got %d)", i,
                              threshold[i]);
    for (int i = 0; i < ZWI_NGEN; i++)
        rt->gc.gen[i].threshold = threshold[i];
    return 0;
}

void
zw_gc_get_stats(zw_rt *rt, zw_gc_stats stats[ZW_GC_NGEN])
{
    zwi_gc_ext *ext = GC_EXT(rt);
    for (int i = 0; i < ZWI_NGEN; i++)
        stats[i] = ext ? ext->stats[i] : (zw_gc_stats){0};
}

/* ---- what the collector knows ---- */

static int
append_list(zw_obj *result, gchead *list)
{
    for (gchead *g = gc_next(list); g != list; g = gc_next(g)) {
        zw_obj *op = ZWI_GC_OBJ(g);
        if (op == result)
            continue;
        if (zw_list_append(result, op) != 0)
            return -1;
    }
    return 0;
}

zw_obj *
zw_gc_get_objects(zw_rt *rt, int generation)
{
    if (generation < -1 || generation >= ZWI_NGEN) {
        zw_err_set(rt, ZW_ValueError,
                   "generation parameter must be less than the number of available generations "
                   "(%d)", ZWI_NGEN);
        return NULL;
    }
    zw_obj *result = zw_list_new(rt, 0);
    if (result == NULL)
        return NULL;
    for (int g = 0; g < ZWI_NGEN; g++) {
        if (generation != -1 && g != generation)
            continue;
        if (append_list(result, &rt->gc.gen[g].head) != 0) {
            zw_decref(result);
            return NULL;
        }
    }
    return result;
}

size_t
zw_gc_count_objects(zw_rt *rt, int generation)
{
    size_t n = 0;
    for (int g = 0; g < ZWI_NGEN; g++)
        if (generation == -1 || g == generation)
            n += gc_list_size(&rt->gc.gen[g].head);
    return n;
}

typedef struct referrer_search {
    zw_obj *const *objs;
    size_t n;
} referrer_search;

static int
visit_referrer(zw_obj *o, void *arg)
{
    referrer_search *s = arg;
    for (size_t i = 0; i < s->n; i++)
        if (s->objs[i] == o)
            return 1;
    return 0;
}

zw_obj *
zw_gc_get_referrers(zw_rt *rt, size_t n, zw_obj *const *objs)
{
    zw_obj *result = zw_list_new(rt, 0);
    if (result == NULL)
        return NULL;
    referrer_search s = {objs, n};
    for (int g = 0; g < ZWI_NGEN; g++) {
        gchead *list = &rt->gc.gen[g].head;
        for (gchead *h = gc_next(list); h != list; h = gc_next(h)) {
            zw_obj *op = ZWI_GC_OBJ(h);
            if (op == result || op->type->traverse == NULL)
                continue;
            if (op->type->traverse(op, visit_referrer, &s) && zw_list_append(result, op) != 0) {
                zw_decref(result);
                return NULL;
            }
        }
    }
    return result;
}

static int
visit_append(zw_obj *o, void *arg)
{
    return zw_list_append(arg, o) != 0;
}

zw_obj *
zw_gc_get_referents(zw_rt *rt, size_t n, zw_obj *const *objs)
{
    zw_obj *result = zw_list_new(rt, 0);
    if (result == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        zw_obj *op = objs[i];
        if (!ZWI_IS_GC(op) || op->type->traverse == NULL)
            continue;
        if (op->type->traverse(op, visit_append, result) != 0) {
            zw_decref(result);
            return NULL;
        }
    }
    return result;
}

bool
zw_gc_is_tracked(const zw_obj *o)
{
    return ZWI_IS_GC(o) && ZWI_TRACKED(o);
}

bool
zw_gc_is_finalized(const zw_obj *o)
{
    return ZWI_IS_GC(o) && (ZWI_GC_HEAD(o)->prev & ZWI_GC_FINALIZED) != 0;
}

void
zw_gc_track(zw_obj *o)
{
    if (!ZWI_IS_GC(o) || ZWI_TRACKED(o)) {
        fprintf(stderr, "zw: gc: zw_gc_track of %p (type '%s'): %s\n", (void *)o,
                o->type->name, ZWI_IS_GC(o) ? "object already tracked" : "not a GC type");
        abort();
    }
    zwi_gc_track(o);
}

void
zw_gc_untrack(zw_obj *o)
{
    if (ZWI_IS_GC(o))
        zwi_gc_untrack(o);
}

/* ---- freeze ---- */

void
zw_gc_freeze(zw_rt *rt)
{
    for (int g = 0; g < ZWI_NGEN; g++) {
        gc_list_merge(&rt->gc.gen[g].head, &rt->gc.permanent);
        rt->gc.gen[g].count = 0;
        ZW_ASSERT(gc_list_is_empty(&rt->gc.gen[g].head));
    }
    ZW_ASSERT_EXPENSIVE(zwi_gc_list_is_valid(&rt->gc.permanent, 0));
}

void
zw_gc_unfreeze(zw_rt *rt)
{
    gc_list_merge(&rt->gc.permanent, &rt->gc.gen[ZWI_NGEN - 1].head);
    ZW_ASSERT(gc_list_is_empty(&rt->gc.permanent));
    ZW_ASSERT_EXPENSIVE(zwi_gc_list_is_valid(&rt->gc.gen[ZWI_NGEN - 1].head, 0));
}

size_t
zw_gc_get_freeze_count(zw_rt *rt)
{
    return gc_list_size(&rt->gc.permanent);
}

/* ---- debugging ---- */

void
zw_gc_set_debug(zw_rt *rt, unsigned flags)
{
    if (GC_EXT(rt))
        GC_EXT(rt)->debug = flags;
}

unsigned
zw_gc_get_debug(zw_rt *rt)
{
    return GC_EXT(rt) ? GC_EXT(rt)->debug : 0;
}

void
zw_gc_set_debug_output(zw_rt *rt, FILE *out)
{
    if (GC_EXT(rt))
        GC_EXT(rt)->out = out;
}

zw_obj *
zw_gc_garbage(zw_rt *rt)
{
    zwi_gc_ext *ext = GC_EXT(rt);
    if (ext == NULL)
        return NULL;
    if (ext->garbage == NULL)
        ext->garbage = zw_list_new(rt, 0);
    return ext->garbage;
}

int
zw_gc_add_callback(zw_rt *rt, zw_gc_callback fn, void *arg)
{
    zwi_gc_ext *ext = GC_EXT(rt);
    if (ext->ncallbacks == ext->capcallbacks) {
        size_t cap = ext->capcallbacks ? ext->capcallbacks * 2 : 4;
        zwi_gc_cb *cbs = zw_raw_realloc(rt->raw, ext->callbacks, cap * sizeof(*cbs));
        if (cbs == NULL)
            return zw_err_nomemory(rt);
        ext->callbacks = cbs;
        ext->capcallbacks = cap;
    }
    ext->callbacks[ext->ncallbacks++] = (zwi_gc_cb){fn, arg};
    return 0;
}

int
zw_gc_remove_callback(zw_rt *rt, zw_gc_callback fn, void *arg)
{
    zwi_gc_ext *ext = GC_EXT(rt);
    for (size_t i = 0; i < ext->ncallbacks; i++) {
        if (ext->callbacks[i].fn == fn && ext->callbacks[i].arg == arg) {
            memmove(ext->callbacks + i, ext->callbacks + i + 1,
                    (ext->ncallbacks - i - 1) * sizeof(*ext->callbacks));
            ext->ncallbacks--;
            return 0;
        }
    }
    return zw_err_set(rt, ZW_ValueError, "callback not registered");
}
