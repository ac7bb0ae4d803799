/* obj/object.c - every object's life (allocation, reference counting's slow path, finalization
 * on refcount death, freeing), the collector's generation-0 bookkeeping, and the generic
 * protocol (repr, hash, compare, truth, len, iteration, sum) and introspection (getrefcount,
 * getsizeof). See docs/obj.md#life.
 *
 * Contracts: zw_obj_alloc returns zeroed memory after the header; a GC object is untracked
 * until its constructor has filled it (zwi_gc_track); zw_obj_free untracks first, so a dealloc
 * may call it at any point after dropping its references. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zerowaste/obj.h>

#include "obj_internal.h"

/* ---- allocation and freeing ---- */

zw_obj *
zw_obj_alloc(zw_type *t, size_t nitems)
{
    zw_rt *rt = t->rt;
    size_t items = nitems;
    /* CPython's generic allocation gives a variable-size subtype one more item (a sentinel);
     * the namedtuple experiment's figures depend on it, so we do the same. */
    if ((t->flags & ZW_TPFLAGS_HEAPTYPE) && t->itemsize != 0)
        items++;
    if (t->itemsize != 0 && items > (PTRDIFF_MAX - t->basicsize - t->preheader) / t->itemsize) {
        zw_err_nomemory(rt);
        return NULL;
    }
    size_t size = t->preheader + t->basicsize + items * t->itemsize;
    size = (size + 7) & ~(size_t)7; /* as _PyObject_VAR_SIZE: whole words */
    char *mem = zwi_rt_malloc(rt, size);
    if (mem == NULL)
        return NULL;
    memset(mem, 0, size);
    zw_obj *o = (zw_obj *)(mem + t->preheader);
    o->refcnt = 1;
    o->type = t;
    if (t->itemsize != 0)
        ((zw_varobj *)o)->size = (intptr_t)nitems;
    if (t->flags & ZW_TPFLAGS_GC) {
        zwi_gcstate *gc = &rt->gc;
        gc->gen[0].count++;
        if ((gc->stress || (gc->gen[0].count > gc->gen[0].threshold && gc->gen[0].threshold)) &&
            gc->enabled && !gc->collecting && gc->collect_hook != NULL && rt->exc == ZW_NoError)
            gc->collect_hook(rt);
    }
    if (ZW_UNLIKELY(rt->debug))
        zwi_registry_add(rt, o);
    return o;
}

void
zwi_obj_forget(zw_obj *o)
{
    zw_type *t = o->type;
    zwi_rt_free(t->rt, (char *)o - t->preheader);
}

void
zw_obj_free(zw_obj *o)
{
    zw_type *t = o->type;
    zw_rt *rt = t->rt;
    if (t->flags & ZW_TPFLAGS_GC) {
        zwi_gchead *g = ZWI_GC_HEAD(o);
        if (g->next != 0)
            zwi_gc_list_remove(g);
        if (rt->gc.gen[0].count > 0)
            rt->gc.gen[0].count--;
    }
    if (ZW_UNLIKELY(rt->debug))
        zwi_registry_remove(rt, o);
    zwi_rt_free(rt, (char *)o - t->preheader);
}

/* ---- refcount death ---- */

#define DEAD_FILL_WORD 0xDBDBDBDBDBDBDBDBull /* the debug heap's fill of freed memory */

static void __attribute__((noreturn))
report_overrelease(zw_obj *o)
{
    if ((uint64_t)(o->refcnt + 1) == DEAD_FILL_WORD)
        fprintf(stderr,
                "zw: obj: decref of a dead object at %p: its memory was freed (it holds the "
                "debug heap's dead fill); a reference was used after its last decref\n",
                (void *)o);
    else
        fprintf(stderr,
                "zw: obj: decref of %p (type '%s') made its refcount negative (%ld): it was "
                "released more times than it was referenced\n",
                (void *)o, o->type ? o->type->name : "?", (long)o->refcnt);
    fflush(stderr);
    abort();
}

static int
visit_decref(zw_obj *o, void *arg)
{
    zw_xdecref(o);
    return 0;
}

/* The dealloc of a type without one: drop what clear or traverse reaches, then free. */
static void
default_dealloc(zw_obj *o)
{
    zw_type *t = o->type;
    if (t->flags & ZW_TPFLAGS_GC)
        zwi_gc_untrack(o);
    if (t->clear != NULL)
        t->clear(o);
    else if (t->traverse != NULL)
        t->traverse(o, visit_decref, NULL);
    zw_obj_free(o);
}

/* Runs the finalize slot once (PEP 442) with a temporary reference; true if the object came
 * back to life (someone kept a reference), as PyObject_CallFinalizerFromDealloc. */
static bool
finalize_resurrects(zw_obj *o)
{
    zw_type *t = o->type;
    if (t->flags & ZW_TPFLAGS_GC) {
        zwi_gchead *g = ZWI_GC_HEAD(o);
        if (g->prev & ZWI_GC_FINALIZED)
            return false;
        g->prev |= ZWI_GC_FINALIZED;
        /* as 3.11's subtype_dealloc: untracked, then tracked again for the finalizer, so an
         * object it resurrects moves to the end of generation 0 (the order of the next
         * collection's finalizers depends on it) */
        zwi_gc_untrack(o);
        zwi_gc_track(o);
    }
    o->refcnt = 1;
    zw_rt *rt = t->rt;
    zw_exc saved = rt->exc; /* a finalizer runs with the caller's error put aside */
    char msg[sizeof(rt->errmsg)];
    if (saved != ZW_NoError)
        memcpy(msg, rt->errmsg, sizeof(msg));
    rt->exc = ZW_NoError;
    t->finalize(o);
    if (rt->exc != ZW_NoError && rt->debug)
        fprintf(rt->report, "zw: obj: error in the finalizer of a '%s': %s (ignored)\n", t->name,
                zw_errmsg(rt));
    rt->exc = saved;
    if (saved != ZW_NoError)
        memcpy(rt->errmsg, msg, sizeof(msg));
    return --o->refcnt != 0;
}

void
zw_base_dealloc(zw_type *base, zw_obj *o)
{
    if (base->dealloc != NULL)
        base->dealloc(o);
    else
        default_dealloc(o);
}

int
zw_base_clear(zw_type *base, zw_obj *o)
{
    return base->clear != NULL ? base->clear(o) : 0;
}

/* The finalizer, the weak references, then the type's dealloc. */
static void
dealloc_body(zw_obj *o)
{
    zw_type *t = o->type;
    if (t->finalize != NULL && finalize_resurrects(o))
        return;
    /* as subtype_dealloc: after the finalizer, before the fields go, weak references are
     * cleared and their callbacks run (the gc layer does it) */
    if ((t->flags & ZW_TPFLAGS_WEAKREFABLE) && *ZWI_WEAKLIST(o) != NULL &&
        t->rt->gc.clear_weakrefs_hook != NULL) {
        /* untracked first: a callback may collect, and a tracked object with refcount 0 would
         * look like garbage to the collector, which would free it a second time */
        if (t->flags & ZW_TPFLAGS_GC)
            zwi_gc_untrack(o);
        t->rt->gc.clear_weakrefs_hook(o);
    }
    if (t->dealloc != NULL)
        t->dealloc(o);
    else
        default_dealloc(o);
}

/* ---- the trashcan ---- */

/* As CPython 3.11's Py_TRASHCAN_BEGIN/END (Objects/object.c, _PyTrash_begin/_end): the
 * deallocation of a container that dies while ZWI_TRASH_UNWIND_LEVEL others are being
 * deallocated in the same runtime is put off until the outermost one returns, so the death of
 * a deep chain of containers uses a bounded C stack. The same types as CPython's take part
 * (tuples, lists, dicts, instances of classes) and at the same depth, so finalizers run in
 * CPython's order. */
#define ZWI_TRASH_UNWIND_LEVEL 50

static inline bool
uses_trashcan(const zw_type *t)
{
    const unsigned kinds =
        ZW_TPFLAGS_HEAPTYPE | ZW_TPFLAGS_TUPLE | ZW_TPFLAGS_LIST | ZW_TPFLAGS_DICT;
    return (t->flags & ZW_TPFLAGS_GC) && (t->flags & kinds);
}

static void trash_destroy_chain(zw_rt *rt);

static void
dealloc_in_trashcan(zw_rt *rt, zw_obj *o)
{
    if (rt->trash_nesting >= ZWI_TRASH_UNWIND_LEVEL) {
        /* put off: untracked (as the deallocs do first), linked through the GC header's prev
         * with its flags kept, as _PyTrash_thread_deposit_object */
        zwi_gc_untrack(o);
        zwi_gchead *g = ZWI_GC_HEAD(o);
        g->prev = (g->prev & ZWI_GC_FLAGS) | (uintptr_t)rt->trash_later;
        rt->trash_later = o;
        return;
    }
    rt->trash_nesting++;
    dealloc_body(o);
    rt->trash_nesting--;
    if (rt->trash_later != NULL && rt->trash_nesting <= 0)
        trash_destroy_chain(rt);
}

/* Deallocates what was put off, newest first, one level deep (as
 * _PyTrash_thread_destroy_chain: the nesting stays at 1 so that this is not re-entered). */
static void
trash_destroy_chain(zw_rt *rt)
{
    ZW_ASSERT(rt->trash_nesting == 0);
    rt->trash_nesting++;
    while (rt->trash_later != NULL) {
        zw_obj *o = rt->trash_later;
        zwi_gchead *g = ZWI_GC_HEAD(o);
        rt->trash_later = (zw_obj *)(g->prev & ~ZWI_GC_FLAGS);
        g->prev &= ZWI_GC_FLAGS;
        ZW_ASSERT(o->refcnt == 0);
        dealloc_in_trashcan(rt, o);
        ZW_ASSERT(rt->trash_nesting == 1);
    }
    rt->trash_nesting--;
}

/* zw_dealloc's way for an object that needs more than its type's dealloc: an over-release,
 * the trashcan, a finalizer or weak references. */
static void __attribute__((noinline))
dealloc_slow(zw_obj *o)
{
    if (ZW_UNLIKELY(o->refcnt < 0))
        report_overrelease(o);
    zw_type *t = o->type;
    if (uses_trashcan(t)) {
        /* untracked before, as the deallocs of CPython's containers do */
        zwi_gc_untrack(o);
        dealloc_in_trashcan(t->rt, o);
        return;
    }
    dealloc_body(o);
}

void
zw_dealloc(zw_obj *o)
{
    /* the common case first, a tail call that needs no frame: a type with a dealloc and none of
     * the trashcan, a finalizer or weak references (dealloc_body would go straight to it) */
    zw_type *t = o->type;
    if (ZW_LIKELY(o->refcnt == 0 && !(t->flags & ZW_TPFLAGS_WEAKREFABLE) && t->finalize == NULL &&
                  t->dealloc != NULL)) {
        if (!uses_trashcan(t)) {
            t->dealloc(o);
            return;
        }
        /* dealloc_in_trashcan with nothing put off and nothing to put off */
        zw_rt *rt = t->rt;
        if (ZW_LIKELY(rt->trash_nesting < ZWI_TRASH_UNWIND_LEVEL)) {
            zwi_gc_untrack(o);
            rt->trash_nesting++;
            t->dealloc(o);
            rt->trash_nesting--;
            if (ZW_UNLIKELY(rt->trash_later != NULL) && rt->trash_nesting <= 0)
                trash_destroy_chain(rt);
            return;
        }
    }
    dealloc_slow(o);
}

/* ---- introspection ---- */

intptr_t
zw_getrefcount(const zw_obj *o)
{
    return o->refcnt;
}

size_t
zw_getsizeof(zw_obj *o)
{
    zw_type *t = o->type;
    size_t size;
    if (t->size_of != NULL) {
        size = t->size_of(o);
    } else {
        size = t->basicsize;
        if (t->itemsize != 0) {
            intptr_t n = ((zw_varobj *)o)->size;
            size += (size_t)(n < 0 ? -n : n) * t->itemsize;
        }
    }
    return size + t->preheader;
}

/* ---- the generic protocol ---- */

zw_obj *
zwi_type_error_unsupported(zw_obj *o, const char *what)
{
    zw_err_set(ZWI_RT(o), ZW_TypeError, "'%s' object %s", o->type->name, what);
    return NULL;
}

zw_obj *
zw_repr(zw_obj *o)
{
    zw_type *t = o->type;
    if (t->repr == NULL)
        return zw_str_from_format(t->rt, "<%s object at %p>", t->name, (void *)o);
    return t->repr(o);
}

zw_obj *
zw_str(zw_obj *o)
{
    if (zw_str_check(o))
        return zw_newref(o);
    return zw_repr(o);
}

int64_t
zw_hash(zw_obj *o)
{
    zw_type *t = o->type;
    if (t->hash == NULL) {
        zw_err_set(t->rt, ZW_TypeError, "unhashable type: '%s'", t->name);
        return -1;
    }
    return t->hash(o);
}

static const zw_cmp swapped_op[] = {
    [ZW_LT] = ZW_GT, [ZW_LE] = ZW_GE, [ZW_EQ] = ZW_EQ,
    [ZW_NE] = ZW_NE, [ZW_GT] = ZW_LT, [ZW_GE] = ZW_LE,
};
static const char *const op_text[] = {"<", "<=", "==", "!=", ">", ">="};

int
zw_compare(zw_obj *a, zw_obj *b, zw_cmp op)
{
    if ((unsigned)op > ZW_GE)
        return zw_err_set(ZWI_RT(a), ZW_ValueError, "bad comparison operator %d", (int)op);
    int r = ZW_CMP_UNSUPPORTED;
    if (a->type->compare != NULL)
        r = a->type->compare(a, b, op);
    if (r == ZW_CMP_UNSUPPORTED && b->type->compare != NULL)
        r = b->type->compare(b, a, swapped_op[op]);
    if (r != ZW_CMP_UNSUPPORTED)
        return r;
    if (op == ZW_EQ)
        return a == b;
    if (op == ZW_NE)
        return a != b;
    return zw_err_set(ZWI_RT(a), ZW_TypeError,
                      "'%s' not supported between instances of '%s' and '%s'", op_text[op],
                      a->type->name, b->type->name);
}

int
zw_equal(zw_obj *a, zw_obj *b)
{
    if (a == b)
        return 1;
    return zw_compare(a, b, ZW_EQ);
}

intptr_t
zw_len(zw_obj *o)
{
    unsigned f = o->type->flags;
    if (f & (ZW_TPFLAGS_TUPLE | ZW_TPFLAGS_LIST | ZW_TPFLAGS_BYTES))
        return ((zw_varobj *)o)->size;
    if (f & ZW_TPFLAGS_STR)
        return ZWI_STR(o)->length;
    if (f & ZW_TPFLAGS_DICT)
        return ((zwi_dict *)o)->used;
    if (o->type == ZWI_TYPE(ZWI_RT(o), ZW_T_RANGE))
        return (intptr_t)((zwi_range *)o)->length;
    zw_err_set(ZWI_RT(o), ZW_TypeError, "object of type '%s' has no len()", o->type->name);
    return -1;
}

int
zw_truth(zw_obj *o)
{
    zw_rt *rt = ZWI_RT(o);
    if (o == &rt->none_obj)
        return 0;
    unsigned f = o->type->flags;
    if (f & ZW_TPFLAGS_INT)
        return ((zw_varobj *)o)->size != 0;
    if (f & ZW_TPFLAGS_FLOAT)
        return ((zwi_float *)o)->value != 0.0;
    if (f & (ZW_TPFLAGS_TUPLE | ZW_TPFLAGS_LIST | ZW_TPFLAGS_BYTES | ZW_TPFLAGS_STR |
             ZW_TPFLAGS_DICT) ||
        o->type == ZWI_TYPE(rt, ZW_T_RANGE)) {
        intptr_t n = zw_len(o);
        return n < 0 ? -1 : n != 0;
    }
    return 1;
}

zw_obj *
zw_iter(zw_obj *o)
{
    zw_type *t = o->type;
    if (t->iter != NULL)
        return t->iter(o);
    if (t->next != NULL)
        return zw_newref(o);
    return zwi_type_error_unsupported(o, "is not iterable");
}

zw_obj *
zw_iter_next(zw_obj *it)
{
    zw_type *t = it->type;
    if (t->next == NULL)
        return zwi_type_error_unsupported(it, "is not an iterator");
    return t->next(it);
}

/* sum(iterable): ints are added as int64 while they fit (CPython's fast path), then as ints
 * of any size; a float switches the rest to double. */
zw_obj *
zw_sum(zw_obj *iterable)
{
    zw_rt *rt = ZWI_RT(iterable);
    zw_obj *it = zw_iter(iterable);
    if (it == NULL)
        return NULL;
    int64_t iacc = 0;     /* the sum so far while it fits in int64 and no float was seen */
    zw_obj *big = NULL;   /* the sum so far as an int object once it no longer fits */
    double facc = 0.0;    /* the sum so far once a float was seen */
    bool is_float = false;
    zw_obj *item;
    while ((item = zw_iter_next(it)) != NULL) {
        if (zw_float_check(item) && !is_float) {
            facc = big ? zw_float_as_double(big) : (double)iacc;
            ZW_CLEAR(big);
            is_float = true;
        }
        if (is_float) {
            if (!zw_float_check(item) && !zw_int_check(item))
                goto unsupported;
            double v = zw_float_as_double(item);
            if (v == -1.0 && rt->exc != ZW_NoError)
                goto fail;
            facc += v;
        } else if (zw_int_check(item)) {
            int64_t v = 0;
            bool fits = big == NULL;
            if (fits) {
                v = zw_int_as_i64(item);
                if (v == -1 && rt->exc != ZW_NoError) {
                    zw_err_clear(rt);
                    fits = false;
                }
            }
            if (fits && !__builtin_add_overflow(iacc, v, &iacc)) {
                zw_decref(item);
                continue;
            }
            if (big == NULL && (big = zw_int_from_i64(rt, iacc)) == NULL)
                goto fail;
            zw_obj *sum = zw_int_add(big, item);
            if (sum == NULL)
                goto fail;
            ZW_SETREF(big, sum);
        } else {
            goto unsupported;
        }
        zw_decref(item);
    }
    zw_decref(it);
    if (rt->exc != ZW_NoError) {
        zw_xdecref(big);
        return NULL;
    }
    if (is_float)
        return zw_float_new(rt, facc);
    return big ? big : zw_int_from_i64(rt, iacc);
unsupported:
    zw_err_set(rt, ZW_TypeError, "unsupported operand type(s) for +: '%s' and '%s'",
               is_float ? "float" : "int", item->type->name);
fail:
    zw_decref(item);
    zw_decref(it);
    zw_xdecref(big);
    return NULL;
}

zw_obj *
zw_list_from_iter(zw_obj *iterable)
{
    zw_rt *rt = ZWI_RT(iterable);
    /* as 3.11's list(): an iterable with a length gets an exact array first */
    unsigned f = iterable->type->flags;
    bool sized = (f & (ZW_TPFLAGS_TUPLE | ZW_TPFLAGS_LIST | ZW_TPFLAGS_BYTES | ZW_TPFLAGS_STR |
                       ZW_TPFLAGS_DICT)) ||
                 iterable->type == rt->builtin[ZW_T_RANGE];
    zw_obj *list = zw_list_new(rt, sized ? (size_t)zw_len(iterable) : 0);
    if (list == NULL)
        return NULL;
    if (zw_list_extend(list, iterable) != 0) {
        zw_decref(list);
        return NULL;
    }
    return list;
}

int
zw_print(zw_obj *o, FILE *f)
{
    zw_obj *r = zw_repr(o);
    if (r == NULL)
        return -1;
    size_t len;
    const char *s = zw_str_utf8(r, &len);
    int rc = s != NULL && fwrite(s, 1, len, f) == len ? 0 : -1;
    zw_decref(r);
    return rc;
}

/* ---- repr of containers ---- */

int
zwi_repr_enter(zw_obj *o)
{
    zw_rt *rt = ZWI_RT(o);
    for (int i = 0; i < rt->repr_depth; i++)
        if (rt->repr_active[i] == o)
            return 1;
    if (rt->repr_depth == (int)(sizeof(rt->repr_active) / sizeof(rt->repr_active[0])))
        return zw_err_set(rt, ZW_RecursionError, "maximum recursion depth exceeded while "
                                                 "getting the repr of an object");
    rt->repr_active[rt->repr_depth++] = o;
    return 0;
}

void
zwi_repr_leave(zw_obj *o)
{
    zw_rt *rt = ZWI_RT(o);
    ZW_ASSERT(rt->repr_depth > 0 && rt->repr_active[rt->repr_depth - 1] == o);
    rt->repr_depth--;
}

zw_obj *
zwi_seq_repr(zw_obj *self, zw_obj *const *items, size_t n, const char *open, const char *close)
{
    zw_rt *rt = ZWI_RT(self);
    int r = zwi_repr_enter(self);
    if (r != 0)
        return r < 0 ? NULL : zw_str_from_format(rt, "%s...%s", open, close);
    zw_obj *parts = zw_list_new(rt, n);
    zw_obj *result = NULL;
    if (parts == NULL)
        goto out;
    for (size_t i = 0; i < n; i++) {
        zw_obj *s = zw_repr(items[i]);
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
        result = zw_str_from_format(rt, "%s%U%s", open, body, close);
    zw_xdecref(body);
out:
    zw_xdecref(parts);
    zwi_repr_leave(self);
    return result;
}
