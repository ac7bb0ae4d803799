/* obj/type.c - type descriptors: building a zw_type from a zw_type_spec (built-in types and
 * users' types go through the same code), inheritance of slots and flags, and the types
 * `object`, `type`, NoneType and NotImplementedType. See docs/obj.md#types.
 *
 * Types are immortal objects owned by their runtime: they live on rt->types and are released
 * by zw_rt_free, never by a decref. Their memory comes from raw, not from the heap. */
#include <string.h>

#include <zerowaste/obj.h>

#include "obj_internal.h"

/* Kind and behaviour flags a subtype inherits from its base. */
#define INHERITED_FLAGS                                                                            \
    (ZW_TPFLAGS_GC | ZW_TPFLAGS_INT | ZW_TPFLAGS_FLOAT | ZW_TPFLAGS_STR | ZW_TPFLAGS_BYTES |        \
     ZW_TPFLAGS_TUPLE | ZW_TPFLAGS_LIST | ZW_TPFLAGS_DICT | ZW_TPFLAGS_TYPE |                      \
     ZW_TPFLAGS_IMMUTABLE)

static void
inherit_slots(zw_type *t, const zw_type *b)
{
#define INHERIT(slot)                                                                              \
    if (t->slot == NULL)                                                                           \
    t->slot = b->slot
    INHERIT(dealloc);
    INHERIT(traverse);
    INHERIT(clear);
    INHERIT(repr);
    INHERIT(hash);
    INHERIT(compare);
    INHERIT(iter);
    INHERIT(next);
    INHERIT(size_of);
    INHERIT(legacy_del);
    if (t->weaklist_offset == 0 && (b->flags & ZW_TPFLAGS_WEAKREFABLE)) {
        t->weaklist_offset = b->weaklist_offset;
        t->flags |= ZW_TPFLAGS_WEAKREFABLE;
    }
#undef INHERIT
}

/* Builds a type; NULL (no error set: the runtime may not exist yet) when raw refuses memory or
 * the spec is inconsistent. */
zw_type *
zwi_type_make(zw_rt *rt, const zw_type_spec *spec, zw_type *base)
{
    if (spec->name == NULL || spec->basicsize < sizeof(zw_obj))
        return NULL;
    if (base != NULL && (spec->basicsize < base->basicsize ||
                         (base->itemsize != 0 && spec->itemsize != base->itemsize)))
        return NULL;
    zw_type *t = zw_raw_calloc(rt->raw, 1, sizeof(*t));
    if (t == NULL)
        return NULL;
    size_t len = strlen(spec->name);
    t->name = zw_raw_malloc(rt->raw, len + 1);
    if (t->name == NULL) {
        zw_raw_free(rt->raw, t);
        return NULL;
    }
    memcpy(t->name, spec->name, len + 1);
    t->ob.refcnt = ZWI_IMMORTAL_REFCNT;
    t->ob.type = rt->builtin[ZW_T_TYPE]; /* NULL while `type` itself is being made */
    t->rt = rt;
    t->basicsize = spec->basicsize;
    t->itemsize = spec->itemsize;
    t->flags = spec->flags | (base ? (base->flags & INHERITED_FLAGS) : 0);
    t->base = base;
    t->dealloc = spec->dealloc;
    t->traverse = spec->traverse;
    t->clear = spec->clear;
    t->finalize = spec->finalize;
    t->repr = spec->repr;
    t->hash = spec->hash;
    t->compare = spec->compare;
    t->iter = spec->iter;
    t->next = spec->next;
    t->size_of = spec->size_of;
    t->methods = spec->methods;
    t->weaklist_offset = spec->weaklist_offset;
    t->legacy_del = spec->legacy_del;
    if (base != NULL)
        inherit_slots(t, base);
    t->preheader = ((t->flags & ZW_TPFLAGS_GC) ? sizeof(zwi_gchead) : 0) +
                   ((t->flags & ZW_TPFLAGS_MANAGED_DICT) ? sizeof(zwi_managed) : 0);
    t->next_type = rt->types;
    rt->types = t;
    return t;
}

zw_type *
zw_type_new(zw_rt *rt, const zw_type_spec *spec)
{
    zw_type *base = spec->base ? spec->base : rt->builtin[ZW_T_OBJECT];
    if (base->rt != rt) {
        zw_err_set(rt, ZW_TypeError, "base type '%s' belongs to another runtime", base->name);
        return NULL;
    }
    if (!(base->flags & ZW_TPFLAGS_BASETYPE) && base != rt->builtin[ZW_T_OBJECT]) {
        zw_err_set(rt, ZW_TypeError, "type '%s' is not an acceptable base type", base->name);
        return NULL;
    }
    if (spec->name == NULL || spec->basicsize < base->basicsize) {
        zw_err_set(rt, ZW_TypeError, "type '%s': basicsize %zu is smaller than its base's (%zu)",
                   spec->name ? spec->name : "?", spec->basicsize, base->basicsize);
        return NULL;
    }
    if ((spec->flags & ZW_TPFLAGS_WEAKREFABLE) &&
        (spec->weaklist_offset < sizeof(zw_obj) ||
         spec->weaklist_offset + sizeof(zw_obj *) > spec->basicsize)) {
        zw_err_set(rt, ZW_TypeError, "type '%s': weaklist_offset %zu is not a field of the object",
                   spec->name, spec->weaklist_offset);
        return NULL;
    }
    if ((spec->flags & ZW_TPFLAGS_GC) && spec->traverse == NULL && base->traverse == NULL) {
        zw_err_set(rt, ZW_TypeError, "type '%s' has the GC flag but no traverse slot",
                   spec->name);
        return NULL;
    }
    if (base->itemsize != 0 && spec->itemsize != base->itemsize) {
        zw_err_set(rt, ZW_TypeError, "type '%s': inconsistent item size with its base",
                   spec->name);
        return NULL;
    }
    zw_type *t = zwi_type_make(rt, spec, base); /* the spec is consistent: NULL is memory */
    if (t == NULL)
        zw_err_nomemory(rt);
    return t;
}

/* Drops the references classes hold on their field and attribute names (interned strs). */
void
zwi_type_drop_names(zw_rt *rt)
{
    for (zw_type *t = rt->types; t != NULL; t = t->next_type) {
        for (size_t i = 0; i < t->nfields; i++)
            ZW_CLEAR(t->fields[i]);
        t->nfields = 0;
        for (size_t i = 0; t->shared != NULL && i < t->shared->n; i++)
            ZW_CLEAR(t->shared->names[i]);
        if (t->shared != NULL)
            t->shared->n = 0;
    }
}

void
zwi_type_release_all(zw_rt *rt)
{
    zw_type *t = rt->types;
    while (t != NULL) {
        zw_type *next = t->next_type;
        if (t->shared != NULL) {
            zw_raw_free(rt->raw, t->shared->names);
            zw_raw_free(rt->raw, t->shared);
        }
        zw_raw_free(rt->raw, t->fields);
        zw_raw_free(rt->raw, t->own_methods);
        zw_raw_free(rt->raw, t->name);
        zw_raw_free(rt->raw, t);
        t = next;
    }
    rt->types = NULL;
}

const char *
zw_type_name(const zw_type *t)
{
    return t->name;
}

zw_type *
zw_type_of(const zw_obj *o)
{
    return o->type;
}

bool
zw_type_is_subtype(const zw_type *t, const zw_type *base)
{
    for (; t != NULL; t = t->base)
        if (t == base)
            return true;
    return false;
}

unsigned
zw_type_flags(const zw_type *t)
{
    return t->flags;
}

size_t
zw_type_basicsize(const zw_type *t)
{
    return t->basicsize;
}

size_t
zw_type_itemsize(const zw_type *t)
{
    return t->itemsize;
}

size_t
zw_type_preheader(const zw_type *t)
{
    return t->preheader;
}

/* ---- object, type, None, NotImplemented ---- */

static zw_obj *
object_repr(zw_obj *self)
{
    return zw_str_from_format(ZWI_RT(self), "<%s object at %p>", self->type->name, (void *)self);
}

static int64_t
object_hash(zw_obj *self)
{
    /* identity hash, as CPython's _Py_HashPointer: rotate out the alignment bits */
    uintptr_t y = (uintptr_t)self;
    y = (y >> 4) | (y << (8 * sizeof(y) - 4));
    int64_t h = (int64_t)y;
    return h == -1 ? -2 : h;
}

static zw_obj *
type_repr(zw_obj *self)
{
    return zw_str_from_format(ZWI_RT(self), "<class '%s'>", ((zw_type *)self)->name);
}

static zw_obj *
none_repr(zw_obj *self)
{
    return zw_str_new(ZWI_RT(self), "None");
}

static zw_obj *
notimpl_repr(zw_obj *self)
{
    return zw_str_new(ZWI_RT(self), "NotImplemented");
}

static void
immortal_dealloc(zw_obj *self)
{
    /* an immortal's count reached 0: more decrefs than increfs somewhere. Restore it. */
    self->refcnt = ZWI_IMMORTAL_REFCNT;
}

static size_t
type_size_of(zw_obj *self)
{
    return sizeof(zw_type);
}

ZW_HIDDEN const zw_type_spec zwi_object_spec = {
    .name = "object",
    .basicsize = sizeof(zw_obj),
    .flags = ZW_TPFLAGS_BASETYPE,
    .repr = object_repr,
    .hash = object_hash,
};

ZW_HIDDEN const zw_type_spec zwi_type_spec = {
    .name = "type",
    .basicsize = sizeof(zw_type),
    .flags = ZW_TPFLAGS_TYPE,
    .dealloc = immortal_dealloc,
    .repr = type_repr,
    .size_of = type_size_of,
};

ZW_HIDDEN const zw_type_spec zwi_none_spec = {
    .name = "NoneType",
    .basicsize = sizeof(zw_obj),
    .dealloc = immortal_dealloc,
    .repr = none_repr,
};

ZW_HIDDEN const zw_type_spec zwi_notimpl_spec = {
    .name = "NotImplementedType",
    .basicsize = sizeof(zw_obj),
    .dealloc = immortal_dealloc,
    .repr = notimpl_repr,
};

zw_obj *
zw_none(zw_rt *rt)
{
    return &rt->none_obj;
}

zw_obj *
zw_notimplemented(zw_rt *rt)
{
    return &rt->notimpl_obj;
}

bool
zw_is_none(const zw_obj *o)
{
    return o == &o->type->rt->none_obj;
}
