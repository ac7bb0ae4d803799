/* obj/runtime.c - the runtime: its heap, its types, its error state, its allocations (counted,
 * fault-injectable) and, in debug mode, the registry of live objects. See docs/obj.md#runtime.
 *
 * Invariant: every block the runtime's objects use comes from zwi_rt_malloc/realloc on
 * rt->heap, so zw_rt_allocated_blocks(rt) == zw_heap_allocated_blocks(rt->heap) counts them
 * all; the zw_rt struct itself, the types and the registry come from raw and are not counted,
 * as CPython's static types and interpreter state are not. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zerowaste/obj.h>

#include "obj_internal.h"

/* ---- errors ---- */

static const char *const exc_names[ZW_NEXC] = {
    [ZW_NoError] = "NoError",
    [ZW_Exception] = "Exception",
    [ZW_TypeError] = "TypeError",
    [ZW_ValueError] = "ValueError",
    [ZW_KeyError] = "KeyError",
    [ZW_IndexError] = "IndexError",
    [ZW_AttributeError] = "AttributeError",
    [ZW_OverflowError] = "OverflowError",
    [ZW_ZeroDivisionError] = "ZeroDivisionError",
    [ZW_MemoryError] = "MemoryError",
    [ZW_UnicodeDecodeError] = "UnicodeDecodeError",
    [ZW_StopIteration] = "StopIteration",
    [ZW_RuntimeError] = "RuntimeError",
    [ZW_RecursionError] = "RecursionError",
    [ZW_NotImplementedError] = "NotImplementedError",
    [ZW_SystemError] = "SystemError",
    [ZW_ReferenceError] = "ReferenceError",
};

const char *
zw_exc_name(zw_exc exc)
{
    if ((unsigned)exc >= ZW_NEXC)
        return "UnknownError";
    return exc_names[exc];
}

int
zw_err_setv(zw_rt *rt, zw_exc exc, const char *fmt, va_list ap)
{
    if ((unsigned)exc >= ZW_NEXC || exc == ZW_NoError)
        exc = ZW_SystemError;
    rt->exc = exc;
    vsnprintf(rt->errmsg, sizeof(rt->errmsg), fmt, ap);
    return -1;
}

int
zw_err_set(zw_rt *rt, zw_exc exc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    zw_err_setv(rt, exc, fmt, ap);
    va_end(ap);
    return -1;
}

int
zw_err_nomemory(zw_rt *rt)
{
    rt->exc = ZW_MemoryError;
    rt->errmsg[0] = '\0';
    return -1;
}

zw_exc
zw_err_occurred(zw_rt *rt)
{
    return rt->exc;
}

bool
zw_err_matches(zw_rt *rt, zw_exc exc)
{
    if (rt->exc == ZW_NoError)
        return false;
    return exc == ZW_Exception || rt->exc == exc;
}

void
zw_err_clear(zw_rt *rt)
{
    rt->exc = ZW_NoError;
    rt->errmsg[0] = '\0';
}

const char *
zw_err_message(zw_rt *rt)
{
    return rt->exc == ZW_NoError ? "" : rt->errmsg;
}

const char *
zw_errmsg(zw_rt *rt)
{
    if (rt->exc == ZW_NoError)
        return "";
    if (rt->errmsg[0] == '\0')
        snprintf(rt->errfull, sizeof(rt->errfull), "%s", zw_exc_name(rt->exc));
    else
        snprintf(rt->errfull, sizeof(rt->errfull), "%s: %s", zw_exc_name(rt->exc), rt->errmsg);
    return rt->errfull;
}

/* ---- allocation ---- */

void *
zwi_rt_nomemory(zw_rt *rt, bool injected)
{
    if (injected)
        rt->fault_fired = true;
    zw_err_nomemory(rt);
    return NULL;
}

void
zw_rt_fail_nth(zw_rt *rt, long n)
{
    rt->fail_countdown = n > 0 ? n : 0;
    rt->fault_fired = false;
}

bool
zw_rt_fault_fired(zw_rt *rt)
{
    return rt->fault_fired;
}

uint64_t
zw_rt_allocations(zw_rt *rt)
{
    return rt->nallocs;
}

size_t
zw_rt_allocated_blocks(zw_rt *rt)
{
    return zw_heap_allocated_blocks(rt->heap);
}

zw_heap *
zw_rt_heap(zw_rt *rt)
{
    return rt->heap;
}

zw_rt *
zw_rt_of(const zw_obj *o)
{
    return o->type->rt;
}

/* ---- the debug registry of live objects ---- */

#define REG_EMPTY   ((uintptr_t)0)
#define REG_DELETED ((uintptr_t)1)

static size_t
reg_hash(uintptr_t p, size_t mask)
{
    uint64_t h = (uint64_t)p * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 20) & mask;
}

static bool
reg_grow(zw_rt *rt)
{
    zwi_registry *r = &rt->registry;
    size_t cap = r->cap ? r->cap * 2 : 1024;
    uintptr_t *slots = zw_raw_calloc(rt->raw, cap, sizeof(uintptr_t));
    if (slots == NULL)
        return false;
    for (size_t i = 0; i < r->cap; i++) {
        uintptr_t p = r->slots[i];
        if (p <= REG_DELETED)
            continue;
        size_t j = reg_hash(p, cap - 1);
        while (slots[j] != REG_EMPTY)
            j = (j + 1) & (cap - 1);
        slots[j] = p;
    }
    zw_raw_free(rt->raw, r->slots);
    r->slots = slots;
    r->cap = cap;
    r->used = r->n;
    return true;
}

void
zwi_registry_add(zw_rt *rt, zw_obj *o)
{
    zwi_registry *r = &rt->registry;
    if ((r->used + 1) * 4 >= r->cap * 3 && !reg_grow(rt))
        return; /* the registry is a debugging aid: out of memory, it forgets this object */
    size_t mask = r->cap - 1;
    size_t i = reg_hash((uintptr_t)o, mask);
    while (r->slots[i] > REG_DELETED)
        i = (i + 1) & mask;
    if (r->slots[i] == REG_EMPTY)
        r->used++;
    r->slots[i] = (uintptr_t)o;
    r->n++;
}

void
zwi_registry_remove(zw_rt *rt, zw_obj *o)
{
    zwi_registry *r = &rt->registry;
    if (r->cap == 0)
        return;
    size_t mask = r->cap - 1;
    for (size_t i = reg_hash((uintptr_t)o, mask);; i = (i + 1) & mask) {
        if (r->slots[i] == REG_EMPTY)
            return;
        if (r->slots[i] == (uintptr_t)o) {
            r->slots[i] = REG_DELETED;
            r->n--;
            return;
        }
    }
}

size_t
zw_rt_live_objects(zw_rt *rt)
{
    return rt->debug ? rt->registry.n : 0;
}

size_t
zw_rt_dump_live(zw_rt *rt, FILE *out)
{
    if (!rt->debug)
        return 0;
    size_t n = 0;
    for (size_t i = 0; i < rt->registry.cap; i++) {
        uintptr_t p = rt->registry.slots[i];
        if (p <= REG_DELETED)
            continue;
        zw_obj *o = (zw_obj *)p;
        fprintf(out, "zw: obj:   %s at %p, refcount %ld, %zu bytes\n", o->type->name, (void *)o,
                (long)o->refcnt, zw_getsizeof(o));
        n++;
    }
    return n;
}

/* ---- the runtime's life ---- */

/* The collector, installed once by the gc layer's constructor before main (NULL: gc is not
 * linked in); read-only afterwards. obj's only process-wide state. */
static const zwi_gc_hooks *gc_hooks;

void
zwi_obj_install_gc(const zwi_gc_hooks *hooks)
{
    gc_hooks = hooks;
}

void
zwi_init_static(zw_obj *o, zw_type *t)
{
    o->refcnt = ZWI_IMMORTAL_REFCNT;
    o->type = t;
}

/* The built-in types in creation order, with their bases. `object` and `type` are made by
 * hand first (each is the other's type or base). */
static const struct {
    zw_builtin which;
    const zw_type_spec *spec;
    zw_builtin base;
} builtin_types[] = {
    {ZW_T_INT, &zwi_int_spec, ZW_T_OBJECT},
    {ZW_T_BOOL, &zwi_bool_spec, ZW_T_INT},
    {ZW_T_FLOAT, &zwi_float_spec, ZW_T_OBJECT},
    {ZW_T_STR, &zwi_str_spec, ZW_T_OBJECT},
    {ZW_T_BYTES, &zwi_bytes_spec, ZW_T_OBJECT},
    {ZW_T_TUPLE, &zwi_tuple_spec, ZW_T_OBJECT},
    {ZW_T_LIST, &zwi_list_spec, ZW_T_OBJECT},
    {ZW_T_DICT, &zwi_dict_spec, ZW_T_OBJECT},
    {ZW_T_RANGE, &zwi_range_spec, ZW_T_OBJECT},
    {ZW_T_GENERATOR, &zwi_generator_spec, ZW_T_OBJECT},
    {ZW_T_TUPLE_ITER, &zwi_tuple_iter_spec, ZW_T_OBJECT},
    {ZW_T_LIST_ITER, &zwi_list_iter_spec, ZW_T_OBJECT},
    {ZW_T_DICT_KEYITER, &zwi_dict_keyiter_spec, ZW_T_OBJECT},
    {ZW_T_DICT_VALUEITER, &zwi_dict_valueiter_spec, ZW_T_OBJECT},
    {ZW_T_DICT_ITEMITER, &zwi_dict_itemiter_spec, ZW_T_OBJECT},
    {ZW_T_RANGE_ITER, &zwi_range_iter_spec, ZW_T_OBJECT},
    {ZW_T_STR_ITER, &zwi_str_iter_spec, ZW_T_OBJECT},
    {ZW_T_BYTES_ITER, &zwi_bytes_iter_spec, ZW_T_OBJECT},
    {ZW_T_METHOD, &zwi_method_spec, ZW_T_OBJECT},
    {ZW_T_FUNCTION, &zwi_func_spec, ZW_T_OBJECT},
};

extern ZW_HIDDEN const zw_type_spec zwi_object_spec, zwi_type_spec, zwi_none_spec,
    zwi_notimpl_spec;
ZW_HIDDEN zw_type *zwi_type_make(zw_rt *rt, const zw_type_spec *spec, zw_type *base);
ZW_HIDDEN void zwi_type_release_all(zw_rt *rt);
ZW_HIDDEN void zwi_type_drop_names(zw_rt *rt);

static bool
env_flag(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' && strcmp(v, "0") != 0;
}

static int64_t
seed_from_env(int64_t seed)
{
    const char *v = getenv("ZW_HASHSEED");
    if (v == NULL || v[0] == '\0' || strcmp(v, "random") == 0)
        return seed;
    char *end;
    errno = 0;
    unsigned long long s = strtoull(v, &end, 10);
    if (errno != 0 || *end != '\0' || s > 4294967295ull) {
        fprintf(stderr, "zw: obj: ignoring ZW_HASHSEED='%s' (expected \"random\" or an integer "
                        "in [0; 4294967295])\n", v);
        return seed;
    }
    return (int64_t)s;
}

static bool
make_builtin_types(zw_rt *rt)
{
    zw_type *object = zwi_type_make(rt, &zwi_object_spec, NULL);
    zw_type *type = object ? zwi_type_make(rt, &zwi_type_spec, object) : NULL;
    if (type == NULL)
        return false;
    object->ob.type = type;
    type->ob.type = type;
    rt->builtin[ZW_T_OBJECT] = object;
    rt->builtin[ZW_T_TYPE] = type;
    rt->builtin[ZW_T_NONE] = zwi_type_make(rt, &zwi_none_spec, object);
    rt->builtin[ZW_T_NOTIMPLEMENTED] = zwi_type_make(rt, &zwi_notimpl_spec, object);
    if (rt->builtin[ZW_T_NONE] == NULL || rt->builtin[ZW_T_NOTIMPLEMENTED] == NULL)
        return false;
    for (size_t i = 0; i < sizeof(builtin_types) / sizeof(builtin_types[0]); i++) {
        zw_type *t = zwi_type_make(rt, builtin_types[i].spec, rt->builtin[builtin_types[i].base]);
        if (t == NULL)
            return false;
        rt->builtin[builtin_types[i].which] = t;
    }
    return true;
}

zw_rt *
zw_rt_new(const zw_rt_config *cfg)
{
    zw_rt_config def = {.hash_seed = -1};
    if (cfg == NULL)
        cfg = &def;
    bool debug = (cfg->flags & ZW_RT_DEBUG) != 0;
    int64_t seed = cfg->hash_seed;
    if (!(cfg->flags & ZW_RT_IGNORE_ENV)) {
        debug = debug || env_flag("ZW_RT_DEBUG");
        seed = seed_from_env(seed);
    }
    zw_heap_config hc = {
        .flags = (debug ? ZW_HEAP_DEBUG : 0) | ((cfg->flags & ZW_RT_IGNORE_ENV) ? ZW_HEAP_IGNORE_ENV : 0),
        .raw = cfg->raw,
        .report = cfg->report,
    };
    zw_heap *heap = zw_heap_new_ex(&hc);
    if (heap == NULL)
        return NULL;
    zw_raw *raw = zw_heap_raw(heap);
    zw_rt *rt = zw_raw_calloc(raw, 1, sizeof(*rt));
    if (rt == NULL) {
        zw_heap_destroy(heap);
        errno = ENOMEM;
        return NULL;
    }
    rt->heap = heap;
    rt->raw = raw;
    rt->flags = cfg->flags;
    rt->debug = debug;
    rt->report = cfg->report ? cfg->report : stderr;
    rt->gc.enabled = true;
    static const int thresholds[ZWI_NGEN] = {700, 10, 10};
    for (int g = 0; g < ZWI_NGEN; g++) {
        rt->gc.gen[g].head.next = rt->gc.gen[g].head.prev = (uintptr_t)&rt->gc.gen[g].head;
        rt->gc.gen[g].threshold = thresholds[g];
    }
    rt->gc.permanent.next = rt->gc.permanent.prev = (uintptr_t)&rt->gc.permanent;
    if (!make_builtin_types(rt))
        goto fail;
    zwi_init_static(&rt->none_obj, rt->builtin[ZW_T_NONE]);
    zwi_init_static(&rt->notimpl_obj, rt->builtin[ZW_T_NOTIMPLEMENTED]);
    rt->hash_k0 = (uint64_t)seed; /* zwi_str_init derives the keys; -1 asks for random ones */
    zwi_int_init(rt);
    zwi_str_init(rt);
    zwi_bytes_init(rt);
    zwi_tuple_init(rt);
    /* a test mode that must reach every runtime of a test suite: read even with IGNORE_ENV */
    const char *stress = getenv("ZW_GC_STRESS");
    rt->gc.stress = stress != NULL && stress[0] != '\0' && strcmp(stress, "0") != 0;
    if (gc_hooks != NULL && gc_hooks->attach(rt) != 0)
        goto fail;
    zw_err_clear(rt);
    return rt;
fail:
    zwi_type_release_all(rt);
    zw_raw_free(raw, rt);
    zw_heap_destroy(heap);
    errno = ENOMEM;
    return NULL;
}

void
zw_rt_free(zw_rt *rt)
{
    if (rt == NULL)
        return;
    if (gc_hooks != NULL)
        gc_hooks->detach(rt); /* atexit finalizers, a last collection, gc.garbage */
    zwi_type_drop_names(rt); /* the classes' interned names, before the interned table goes */
    zwi_str_fini(rt); /* the interned table is an object: leave it out of the live list */
    zwi_float_clear_freelist(rt);
    zwi_tuple_clear_freelist(rt);
    zwi_list_clear_freelist(rt);
    zwi_dict_clear_freelist(rt);
    if (rt->debug && rt->registry.n > 0) {
        fprintf(rt->report, "zw: obj: %zu object(s) still alive at zw_rt_free:\n",
                rt->registry.n);
        zw_rt_dump_live(rt, rt->report);
    }
    zw_raw *raw = rt->raw;
    zw_heap *heap = rt->heap;
    zwi_type_release_all(rt);
    zw_raw_free(raw, rt->registry.slots);
    zw_raw_free(raw, rt);
    zw_heap_destroy(heap); /* every block of every object still alive goes with it */
}

size_t
zw_rt_clear_freelists(zw_rt *rt)
{
    size_t before = zw_heap_allocated_blocks(rt->heap);
    zwi_float_clear_freelist(rt);
    zwi_tuple_clear_freelist(rt);
    zwi_list_clear_freelist(rt);
    zwi_dict_clear_freelist(rt);
    return before - zw_heap_allocated_blocks(rt->heap);
}

zw_type *
zw_builtin_type(zw_rt *rt, zw_builtin which)
{
    if ((unsigned)which >= ZW_NBUILTIN)
        return NULL;
    return rt->builtin[which];
}
