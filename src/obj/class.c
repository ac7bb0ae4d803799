/* obj/class.c - user classes in the talk's three layouts, attribute access by name, methods as
 * C functions, bound method objects and calls. See docs/obj.md#classes.
 *
 *   LAYOUT_DICT       [values][dict][gc][refcnt type][weakref slot]   getsizeof 56, as 3.11
 *                     attributes in a values array ordered by the class's shared key names
 *                     (3.11's "inline values" with cached keys), a real dict once __dict__ is
 *                     asked for or the class knows 30 names already;
 *   LAYOUT_SLOTS      [gc][refcnt type][field 0]...[field n-1]       16 + 16 + 8n, as __slots__
 *   LAYOUT_NAMEDTUPLE a tuple subtype: [gc][refcnt type size][item 0]... (+1 spare item, as
 *                     CPython's generic allocation of variable-size subtypes)
 *
 * Invariants: for a LAYOUT_DICT instance, at most one of values and dict is non-NULL;
 * values->n <= values->cap <= the class's shared key count, and values->v[i] is the value
 * of shared name i or NULL. */
#include <string.h>

#include <zerowaste/obj.h>

#include "obj_internal.h"

#define WEAKREF_SLOT_SIZE sizeof(zw_obj *)

/* ---- attribute names ---- */

/* The index of `name` among `names` (interned str), or -1. Compares the C text, so a lookup
 * by a C string allocates nothing. */
static intptr_t
find_name(zw_obj *const *names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (zw_str_eq_utf8(names[i], name))
            return (intptr_t)i;
    return -1;
}

static intptr_t
shared_find(zw_type *t, const char *name)
{
    if (t->shared == NULL)
        return -1;
    return find_name(t->shared->names, t->shared->n, name);
}

/* Adds a name to the class's shared keys; its index, or -1 when the keys are full (no error
 * set) or on error (error set). */
static intptr_t
shared_add(zw_type *t, const char *name)
{
    zw_rt *rt = t->rt;
    zwi_shared_keys *sk = t->shared;
    if (sk->n >= ZWI_SHARED_KEYS_MAX)
        return -1;
    if (sk->n == sk->cap) {
        size_t cap = sk->cap ? sk->cap * 2 : 4;
        zw_obj **names = zw_raw_realloc(rt->raw, sk->names, cap * sizeof(zw_obj *));
        if (names == NULL) {
            zw_err_nomemory(rt);
            return -1;
        }
        sk->names = names;
        sk->cap = cap;
    }
    /* the class's names are immortal interned strings: a class lives as long as its runtime */
    zw_obj *s = zw_str_intern_utf8(rt, name);
    if (s == NULL)
        return -1;
    sk->names[sk->n] = s;
    return (intptr_t)sk->n++;
}

/* ---- LAYOUT_DICT instances ---- */

static zwi_values *
values_new(zw_rt *rt, size_t cap)
{
    zwi_values *v = zwi_rt_malloc(rt, sizeof(zwi_values) + cap * sizeof(zw_obj *));
    if (v == NULL)
        return NULL;
    v->cap = cap;
    v->n = 0;
    memset(v->v, 0, cap * sizeof(zw_obj *));
    return v;
}

/* Makes room for value index i in the instance's values array. */
static int
values_reserve(zw_obj *o, size_t i)
{
    zw_rt *rt = ZWI_RT(o);
    zwi_managed *m = ZWI_MANAGED(o);
    if (m->values != NULL && i < m->values->cap)
        return 0;
    size_t cap = o->type->shared->n > i + 1 ? o->type->shared->n : i + 1;
    size_t old = m->values ? m->values->cap : 0;
    zwi_values *v = zwi_rt_realloc(rt, m->values, sizeof(zwi_values) + cap * sizeof(zw_obj *));
    if (v == NULL)
        return -1;
    if (m->values == NULL)
        v->n = 0;
    memset(v->v + old, 0, (cap - old) * sizeof(zw_obj *));
    v->cap = cap;
    m->values = v;
    return 0;
}

/* Moves the instance's attributes from its values array into a real dict. */
static int
materialise_dict(zw_obj *o)
{
    zw_rt *rt = ZWI_RT(o);
    zwi_managed *m = ZWI_MANAGED(o);
    if (m->dict != NULL)
        return 0;
    zw_obj *d = zw_dict_new(rt);
    if (d == NULL)
        return -1;
    zwi_values *v = m->values;
    for (size_t i = 0; v != NULL && i < v->n; i++) {
        if (v->v[i] == NULL)
            continue;
        if (zw_dict_set(d, o->type->shared->names[i], v->v[i]) != 0) {
            zw_decref(d);
            return -1;
        }
    }
    if (v != NULL) {
        for (size_t i = 0; i < v->n; i++)
            zw_xdecref(v->v[i]);
        zwi_rt_free(rt, v);
        m->values = NULL;
    }
    m->dict = d;
    return 0;
}

static zw_obj *
dict_instance_get(zw_obj *o, const char *name)
{
    zwi_managed *m = ZWI_MANAGED(o);
    if (m->dict != NULL)
        return zw_dict_get_str(m->dict, name);
    intptr_t i = shared_find(o->type, name);
    if (i < 0 || m->values == NULL || (size_t)i >= m->values->n)
        return NULL;
    return m->values->v[i];
}

/* value NULL deletes; returns 0, -1 on error, 1 when deleting an absent attribute */
static int
dict_instance_set(zw_obj *o, const char *name, zw_obj *value)
{
    zwi_managed *m = ZWI_MANAGED(o);
    zw_type *t = o->type;
    if (m->dict == NULL) {
        intptr_t i = shared_find(t, name);
        if (i < 0 && value != NULL) {
            i = shared_add(t, name);
            if (i < 0 && ZWI_RT(o)->exc != ZW_NoError)
                return -1;
        }
        if (i >= 0) {
            if (value == NULL) {
                if (m->values == NULL || (size_t)i >= m->values->n || m->values->v[i] == NULL)
                    return 1;
                ZW_CLEAR(m->values->v[i]);
                return 0;
            }
            if (values_reserve(o, (size_t)i) != 0)
                return -1;
            zw_incref(value);
            ZW_SETREF(m->values->v[i], value);
            if ((size_t)i >= m->values->n)
                m->values->n = (size_t)i + 1;
            return 0;
        }
        if (materialise_dict(o) != 0) /* the shared keys are full */
            return -1;
    }
    if (value != NULL)
        return zw_dict_set_str(m->dict, name, value);
    zw_obj *k = zw_str_new(ZWI_RT(o), name);
    if (k == NULL)
        return -1;
    int c = zw_dict_contains(m->dict, k);
    int rc = c < 0 ? -1 : c == 0 ? 1 : zw_dict_del(m->dict, k);
    zw_decref(k);
    return rc;
}

zw_obj *
zw_obj_dict(zw_obj *o)
{
    if (!(o->type->flags & ZW_TPFLAGS_MANAGED_DICT)) {
        zw_err_set(ZWI_RT(o), ZW_AttributeError, "'%s' object has no attribute '__dict__'",
                   o->type->name);
        return NULL;
    }
    if (materialise_dict(o) != 0)
        return NULL;
    return zw_newref(ZWI_MANAGED(o)->dict);
}

static int
instance_traverse(zw_obj *o, zw_visit_fn visit, void *arg)
{
    zw_type *t = o->type;
    if (t->layout == ZW_LAYOUT_DICT) {
        zwi_managed *m = ZWI_MANAGED(o);
        if (m->dict != NULL) {
            int r = visit(m->dict, arg);
            if (r != 0)
                return r;
        }
        for (size_t i = 0; m->values != NULL && i < m->values->n; i++) {
            if (m->values->v[i] != NULL) {
                int r = visit(m->values->v[i], arg);
                if (r != 0)
                    return r;
            }
        }
        return 0;
    }
    zw_obj **fields = (zw_obj **)(o + 1);
    for (size_t i = 0; i < t->nfields; i++) {
        if (fields[i] != NULL) {
            int r = visit(fields[i], arg);
            if (r != 0)
                return r;
        }
    }
    return 0;
}

static int
instance_clear(zw_obj *o)
{
    zw_type *t = o->type;
    if (t->layout == ZW_LAYOUT_DICT) {
        zwi_managed *m = ZWI_MANAGED(o);
        zwi_values *v = m->values;
        m->values = NULL;
        for (size_t i = 0; v != NULL && i < v->n; i++)
            zw_xdecref(v->v[i]);
        zwi_rt_free(ZWI_RT(o), v);
        ZW_CLEAR(m->dict);
        return 0;
    }
    zw_obj **fields = (zw_obj **)(o + 1);
    for (size_t i = 0; i < t->nfields; i++)
        ZW_CLEAR(fields[i]);
    return 0;
}

static void
instance_dealloc(zw_obj *o)
{
    zwi_gc_untrack(o);
    instance_clear(o);
    zw_obj_free(o);
}

static zw_obj *
namedtuple_repr(zw_obj *o)
{
    zw_rt *rt = ZWI_RT(o);
    zw_type *t = o->type;
    int r = zwi_repr_enter(o);
    if (r != 0)
        return r < 0 ? NULL : zw_str_from_format(rt, "%s(...)", t->name);
    zw_obj *parts = zw_list_new(rt, t->nfields);
    zw_obj *result = NULL;
    if (parts == NULL)
        goto out;
    for (size_t i = 0; i < t->nfields; i++) {
        zw_obj *s = zw_str_from_format(rt, "%U=%R", t->fields[i], ((zwi_tuple *)o)->items[i]);
        if (s == NULL || zw_list_append(parts, s) != 0) {
            zw_xdecref(s);
            goto out;
        }
        zw_decref(s);
    }
    zw_obj *sep = zw_str_new(rt, ", ");
    zw_obj *body = sep ? zw_str_join(sep, parts) : NULL;
    zw_xdecref(sep);
    if (body != NULL)
        result = zw_str_from_format(rt, "%s(%U)", t->name, body);
    zw_xdecref(body);
out:
    zw_xdecref(parts);
    zwi_repr_leave(o);
    return result;
}

static const zw_method *find_method(zw_type *t, const char *name);

/* The finalize slot of a class with a __del__ method (PEP 442: the collector and refcount death
 * both run it once). An error it raises is reported by the caller and ignored, as Python's
 * "Exception ignored in" does. */
static void
instance_del(zw_obj *o)
{
    const zw_method *def = find_method(o->type, "__del__");
    zw_obj *r = def->fn(o, NULL, 0);
    zw_xdecref(r);
}

/* ---- making classes ---- */

static int
copy_fields(zw_type *t, const char *const *fields)
{
    zw_rt *rt = t->rt;
    size_t n = 0;
    while (fields != NULL && fields[n] != NULL)
        n++;
    if (n == 0)
        return 0;
    t->fields = zw_raw_calloc(rt->raw, n, sizeof(zw_obj *));
    if (t->fields == NULL)
        return zw_err_nomemory(rt);
    for (size_t i = 0; i < n; i++) {
        if (fields[i][0] == '\0' || find_name(t->fields, i, fields[i]) >= 0)
            return zw_err_set(rt, ZW_TypeError, "class '%s': field name '%s' is %s", t->name,
                              fields[i], fields[i][0] ? "repeated" : "empty");
        /* interned and immortal for the runtime's life, like the class itself */
        t->fields[i] = zw_str_intern_utf8(rt, fields[i]);
        if (t->fields[i] == NULL)
            return -1;
        t->nfields = i + 1;
    }
    return 0;
}

static int
copy_methods(zw_type *t, const zw_method *methods)
{
    size_t n = 0;
    while (methods != NULL && methods[n].name != NULL)
        n++;
    if (n == 0)
        return 0;
    t->own_methods = zw_raw_calloc(t->rt->raw, n + 1, sizeof(zw_method));
    if (t->own_methods == NULL)
        return zw_err_nomemory(t->rt);
    memcpy(t->own_methods, methods, n * sizeof(zw_method));
    t->methods = t->own_methods;
    return 0;
}

zw_type *
zw_class_new(zw_rt *rt, const zw_class_spec *spec)
{
    if (spec == NULL || spec->name == NULL || spec->name[0] == '\0') {
        zw_err_set(rt, ZW_TypeError, "a class needs a name");
        return NULL;
    }
    size_t nfields = 0;
    while (spec->fields != NULL && spec->fields[nfields] != NULL)
        nfields++;
    zw_type_spec ts = {.name = spec->name};
    switch (spec->layout) {
    case ZW_LAYOUT_DICT:
        ts.basicsize = sizeof(zw_obj) + WEAKREF_SLOT_SIZE;
        ts.flags = ZW_TPFLAGS_GC | ZW_TPFLAGS_BASETYPE | ZW_TPFLAGS_HEAPTYPE |
                   ZW_TPFLAGS_MANAGED_DICT | ZW_TPFLAGS_WEAKREFABLE;
        ts.dealloc = instance_dealloc;
        ts.traverse = instance_traverse;
        ts.clear = instance_clear;
        ts.weaklist_offset = sizeof(zw_obj);
        break;
    case ZW_LAYOUT_SLOTS:
        ts.basicsize = sizeof(zw_obj) + nfields * sizeof(zw_obj *);
        ts.flags = ZW_TPFLAGS_GC | ZW_TPFLAGS_BASETYPE | ZW_TPFLAGS_HEAPTYPE;
        ts.dealloc = instance_dealloc;
        ts.traverse = instance_traverse;
        ts.clear = instance_clear;
        break;
    case ZW_LAYOUT_NAMEDTUPLE:
        ts.base = rt->builtin[ZW_T_TUPLE];
        ts.basicsize = sizeof(zwi_tuple);
        ts.itemsize = sizeof(zw_obj *);
        ts.flags = ZW_TPFLAGS_HEAPTYPE | ZW_TPFLAGS_BASETYPE;
        ts.repr = namedtuple_repr;
        break;
    default:
        zw_err_set(rt, ZW_ValueError, "class '%s': unknown layout %d", spec->name,
                   (int)spec->layout);
        return NULL;
    }
    if (spec->layout != ZW_LAYOUT_DICT && nfields > 255) {
        zw_err_set(rt, ZW_TypeError, "class '%s': %zu fields (at most 255)", spec->name, nfields);
        return NULL;
    }
    zw_type *t = zw_type_new(rt, &ts);
    if (t == NULL)
        return NULL;
    t->layout = spec->layout;
    if (copy_fields(t, spec->fields) != 0 || copy_methods(t, spec->methods) != 0)
        return NULL; /* the half-made type stays on rt->types and goes at zw_rt_free */
    if (find_method(t, "__del__") != NULL)
        t->finalize = instance_del;
    if (spec->layout == ZW_LAYOUT_DICT) {
        t->shared = zw_raw_calloc(rt->raw, 1, sizeof(zwi_shared_keys));
        if (t->shared == NULL) {
            zw_err_nomemory(rt);
            return NULL;
        }
    }
    return t;
}

/* ---- methods ---- */

static const zw_method *
find_method(zw_type *t, const char *name)
{
    for (; t != NULL; t = t->base)
        for (const zw_method *m = t->methods; m != NULL && m->name != NULL; m++)
            if (strcmp(m->name, name) == 0)
                return m;
    return NULL;
}

static zw_obj *
call_def(const zw_method *def, zw_obj *self, size_t nargs, zw_obj *const *args)
{
    if (def->nargs >= 0 && (size_t)def->nargs != nargs) {
        zw_err_set(ZWI_RT(self), ZW_TypeError, "%s() takes %d argument%s (%zu given)", def->name,
                   def->nargs, def->nargs == 1 ? "" : "s", nargs);
        return NULL;
    }
    return def->fn(self, args, nargs);
}

static zw_obj *
method_new(zw_obj *self, const zw_method *def)
{
    zwi_method_obj *m = (zwi_method_obj *)zw_obj_alloc(ZWI_TYPE(ZWI_RT(self), ZW_T_METHOD), 0);
    if (m == NULL)
        return NULL;
    m->self = zw_newref(self);
    m->def = def;
    zwi_gc_track(&m->ob);
    return &m->ob;
}

static int
method_traverse(zw_obj *o, zw_visit_fn visit, void *arg)
{
    return visit(((zwi_method_obj *)o)->self, arg);
}

static zw_obj *
method_repr(zw_obj *o)
{
    zwi_method_obj *m = (zwi_method_obj *)o;
    return zw_str_from_format(ZWI_RT(o), "<bound method %s.%s of %R>", m->self->type->name,
                              m->def->name, m->self);
}

ZW_HIDDEN const zw_type_spec zwi_method_spec = {
    .name = "method",
    .basicsize = sizeof(zwi_method_obj),
    .flags = ZW_TPFLAGS_GC,
    .traverse = method_traverse,
    .repr = method_repr,
};

zw_obj *
zw_call_method(zw_obj *o, const char *name, size_t nargs, zw_obj *const *args)
{
    const zw_method *def = find_method(o->type, name);
    if (def == NULL) {
        zw_err_set(ZWI_RT(o), ZW_AttributeError, "'%s' object has no attribute '%s'",
                   o->type->name, name);
        return NULL;
    }
    return call_def(def, o, nargs, args);
}

/* ---- attribute access ---- */

zw_obj *
zw_getattr(zw_obj *o, const char *name)
{
    zw_type *t = o->type;
    zw_rt *rt = t->rt;
    if (t->flags & ZW_TPFLAGS_HEAPTYPE) {
        if (t->layout == ZW_LAYOUT_DICT) {
            zw_obj *v = dict_instance_get(o, name);
            if (v != NULL)
                return zw_newref(v);
            if (rt->exc != ZW_NoError)
                return NULL;
            if (strcmp(name, "__dict__") == 0)
                return zw_obj_dict(o);
        } else {
            intptr_t i = find_name(t->fields, t->nfields, name);
            if (i >= 0) {
                zw_obj *v = t->layout == ZW_LAYOUT_SLOTS ? ((zw_obj **)(o + 1))[i]
                                                         : ((zwi_tuple *)o)->items[i];
                if (v != NULL)
                    return zw_newref(v);
                zw_err_set(rt, ZW_AttributeError, "'%s' object has no attribute '%s'", t->name,
                           name);
                return NULL;
            }
        }
    }
    const zw_method *def = find_method(t, name);
    if (def != NULL)
        return method_new(o, def);
    zw_err_set(rt, ZW_AttributeError, "'%s' object has no attribute '%s'", t->name, name);
    return NULL;
}

static int
set_or_del(zw_obj *o, const char *name, zw_obj *value)
{
    zw_type *t = o->type;
    zw_rt *rt = t->rt;
    if (t->flags & ZW_TPFLAGS_HEAPTYPE) {
        if (t->layout == ZW_LAYOUT_DICT) {
            int r = dict_instance_set(o, name, value);
            if (r == 1)
                return zw_err_set(rt, ZW_AttributeError, "'%s' object has no attribute '%s'",
                                  t->name, name);
            return r;
        }
        if (t->layout == ZW_LAYOUT_NAMEDTUPLE)
            return zw_err_set(rt, ZW_AttributeError, "can't set attribute");
        intptr_t i = find_name(t->fields, t->nfields, name);
        if (i >= 0) {
            zw_obj **slot = &((zw_obj **)(o + 1))[i];
            if (value == NULL && *slot == NULL)
                return zw_err_set(rt, ZW_AttributeError, "'%s' object has no attribute '%s'",
                                  t->name, name);
            zw_xincref(value);
            ZW_SETREF(*slot, value);
            return 0;
        }
    }
    return zw_err_set(rt, ZW_AttributeError, "'%s' object has no attribute '%s'", t->name, name);
}

int
zw_setattr(zw_obj *o, const char *name, zw_obj *value)
{
    if (value == NULL)
        return zw_err_set(ZWI_RT(o), ZW_TypeError, "zw_setattr needs a value (use zw_delattr)");
    return set_or_del(o, name, value);
}

int
zw_delattr(zw_obj *o, const char *name)
{
    return set_or_del(o, name, NULL);
}

/* ---- calls ---- */

zw_obj *
zw_call(zw_type *cls, size_t nargs, zw_obj *const *args)
{
    zw_rt *rt = cls->rt;
    if (!(cls->flags & ZW_TPFLAGS_HEAPTYPE)) {
        zw_err_set(rt, ZW_TypeError, "cannot create '%s' instances with zw_call", cls->name);
        return NULL;
    }
    if (cls->layout == ZW_LAYOUT_NAMEDTUPLE) {
        if (nargs != cls->nfields) {
            zw_err_set(rt, ZW_TypeError, "%s() takes %zu positional argument%s but %zu were given",
                       cls->name, cls->nfields, cls->nfields == 1 ? "" : "s", nargs);
            return NULL;
        }
        zw_obj *o = zw_obj_alloc(cls, nargs);
        if (o == NULL)
            return NULL;
        for (size_t i = 0; i < nargs; i++)
            ((zwi_tuple *)o)->items[i] = zw_newref(args[i]);
        zwi_gc_track(o);
        return o;
    }
    zw_obj *o = zw_obj_alloc(cls, 0);
    if (o == NULL)
        return NULL;
    if (cls->layout == ZW_LAYOUT_DICT && cls->shared->n > 0) {
        /* as 3.11, an instance of a class that knows its attribute names gets its values
         * array at once, sized for all of them */
        ZWI_MANAGED(o)->values = values_new(rt, cls->shared->n);
        if (ZWI_MANAGED(o)->values == NULL) {
            zw_obj_free(o);
            return NULL;
        }
    }
    zwi_gc_track(o);
    const zw_method *init = find_method(cls, "__init__");
    if (init != NULL) {
        zw_obj *r = call_def(init, o, nargs, args);
        if (r == NULL) {
            zw_decref(o);
            return NULL;
        }
        zw_decref(r);
        return o;
    }
    if (nargs > cls->nfields) {
        zw_err_set(rt, ZW_TypeError, "%s() takes at most %zu argument%s (%zu given)", cls->name,
                   cls->nfields, cls->nfields == 1 ? "" : "s", nargs);
        zw_decref(o);
        return NULL;
    }
    for (size_t i = 0; i < nargs; i++) {
        if (cls->layout == ZW_LAYOUT_SLOTS) {
            ((zw_obj **)(o + 1))[i] = zw_newref(args[i]);
        } else if (dict_instance_set(o, zw_str_utf8(cls->fields[i], NULL), args[i]) != 0) {
            zw_decref(o);
            return NULL;
        }
    }
    return o;
}

/* ---- function objects ---- */

zw_obj *
zw_func_new(zw_rt *rt, const zw_method *def, zw_obj *self)
{
    if (def == NULL || def->fn == NULL || def->name == NULL) {
        zw_err_set(rt, ZW_ValueError, "a function needs a name and a C function");
        return NULL;
    }
    zwi_func_obj *f = (zwi_func_obj *)zw_obj_alloc(rt->builtin[ZW_T_FUNCTION], 0);
    if (f == NULL)
        return NULL;
    f->self = self ? zw_newref(self) : NULL;
    f->def = def;
    zwi_gc_track(&f->ob);
    return &f->ob;
}

static int
func_traverse(zw_obj *o, zw_visit_fn visit, void *arg)
{
    zwi_func_obj *f = (zwi_func_obj *)o;
    return f->self ? visit(f->self, arg) : 0;
}

static int
func_clear(zw_obj *o)
{
    ZW_CLEAR(((zwi_func_obj *)o)->self);
    return 0;
}

static zw_obj *
func_repr(zw_obj *o)
{
    return zw_str_from_format(ZWI_RT(o), "<built-in function %s>", ((zwi_func_obj *)o)->def->name);
}

ZW_HIDDEN const zw_type_spec zwi_func_spec = {
    .name = "builtin_function_or_method",
    .basicsize = sizeof(zwi_func_obj),
    .flags = ZW_TPFLAGS_GC,
    .traverse = func_traverse,
    .clear = func_clear,
    .repr = func_repr,
};

zw_obj *
zw_call_object(zw_obj *callable, size_t nargs, zw_obj *const *args)
{
    zw_rt *rt = ZWI_RT(callable);
    if (callable->type == rt->builtin[ZW_T_TYPE])
        return zw_call((zw_type *)callable, nargs, args);
    if (callable->type == rt->builtin[ZW_T_FUNCTION]) {
        zwi_func_obj *f = (zwi_func_obj *)callable;
        return call_def(f->def, f->self ? f->self : callable, nargs, args);
    }
    if (callable->type == rt->builtin[ZW_T_METHOD]) {
        zwi_method_obj *m = (zwi_method_obj *)callable;
        return call_def(m->def, m->self, nargs, args);
    }
    zw_err_set(rt, ZW_TypeError, "'%s' object is not callable", callable->type->name);
    return NULL;
}
