/* obj/tuple.c - tuple: an immutable array of references, 24 bytes + 8 per item behind a GC
 * header, with CPython 3.11's empty-tuple singleton and free lists for tuples of 1 to 20 items
 * (at most 2000 each), and its xxHash-based hash. See docs/obj.md#tuple.
 *
 * Invariants: a tuple on a free list has refcount 0, its type field intact and items[0] linking
 * to the next one of the same length; it is untracked and out of the debug registry. Tuples of
 * subtypes (namedtuple classes) never go on a free list. */
#include <stdarg.h>
#include <string.h>

#include <zerowaste/obj.h>

#include "obj_internal.h"

#define TUPLE(o) ((zwi_tuple *)(o))

bool
zw_tuple_check(const zw_obj *o)
{
    return (o->type->flags & ZW_TPFLAGS_TUPLE) != 0;
}

/* Sets the n (<= 20) items of a tuple from a free list to NULL. A plain loop: the compiler
 * would make memset of it, which it inlines as `rep stos`, whose start-up costs more than a
 * whole tuple-2's creation (the empty asm keeps the loop a loop). */
static inline void
clear_items(zw_obj **items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        __asm__("" : "+r"(i));
        items[i] = NULL;
    }
}

static zw_obj *
tuple_alloc(zw_rt *rt, size_t n)
{
    if (n <= ZWI_TUPLE_MAXSAVESIZE && rt->tuple_free[n] != NULL) {
        zw_obj *o = rt->tuple_free[n];
        rt->tuple_free[n] = TUPLE(o)->items[0];
        rt->tuple_nfree[n]--;
        zwi_obj_revive(o, rt->builtin[ZW_T_TUPLE]);
        clear_items(TUPLE(o)->items, n);
        return o;
    }
    return zw_obj_alloc(rt->builtin[ZW_T_TUPLE], n);
}

zw_obj *
zw_tuple_new(zw_rt *rt, size_t n)
{
    if (n == 0)
        return zw_newref(&rt->empty_tuple.t.vo.ob);
    zw_obj *o = tuple_alloc(rt, n);
    if (o != NULL)
        zwi_gc_track(o);
    return o;
}

void
zw_tuple_init_item(zw_obj *t, size_t i, zw_obj *item)
{
    ZW_ASSERT(zw_tuple_check(t) && i < (size_t)TUPLE(t)->vo.size);
    ZW_SETREF(TUPLE(t)->items[i], item);
}

zw_obj *
zw_tuple_from_array(zw_rt *rt, zw_obj *const *items, size_t n)
{
    zw_obj *t = zw_tuple_new(rt, n);
    if (t == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        TUPLE(t)->items[i] = zw_newref(items[i]);
    return t;
}

zw_obj *
zw_tuple_pack(zw_rt *rt, size_t n, ...)
{
    zw_obj *t = zw_tuple_new(rt, n);
    if (t == NULL)
        return NULL;
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++)
        TUPLE(t)->items[i] = zw_newref(va_arg(ap, zw_obj *));
    va_end(ap);
    return t;
}

zw_obj *
zw_tuple_get(zw_obj *t, size_t i)
{
    if (i >= (size_t)TUPLE(t)->vo.size) {
        zw_err_set(ZWI_RT(t), ZW_IndexError, "tuple index out of range");
        return NULL;
    }
    return TUPLE(t)->items[i];
}

size_t
zw_tuple_len(zw_obj *t)
{
    return (size_t)TUPLE(t)->vo.size;
}

/* ---- the type ---- */

static void
tuple_dealloc(zw_obj *o)
{
    zw_rt *rt = ZWI_RT(o);
    size_t n = (size_t)TUPLE(o)->vo.size;
    if (n == 0 && o == &rt->empty_tuple.t.vo.ob) {
        o->refcnt = ZWI_IMMORTAL_REFCNT;
        return;
    }
    zwi_gc_untrack(o);
    for (size_t i = 0; i < n; i++)
        zw_xdecref(TUPLE(o)->items[i]);
    if (o->type == rt->builtin[ZW_T_TUPLE] && n <= ZWI_TUPLE_MAXSAVESIZE &&
        rt->tuple_nfree[n] < ZWI_TUPLE_MAXFREELIST) {
        zwi_obj_cached(o);
        TUPLE(o)->items[0] = rt->tuple_free[n];
        rt->tuple_free[n] = o;
        rt->tuple_nfree[n]++;
        return;
    }
    zw_obj_free(o);
}

static int
tuple_traverse(zw_obj *o, zw_visit_fn visit, void *arg)
{
    return zwi_tuple_traverse(o, visit, arg); /* obj_internal.h: the collector inlines it */
}

static zw_obj *
tuple_repr(zw_obj *o)
{
    size_t n = (size_t)TUPLE(o)->vo.size;
    if (n == 1) {
        zw_obj *r = zw_repr(TUPLE(o)->items[0]);
        if (r == NULL)
            return NULL;
        zw_obj *s = zw_str_from_format(ZWI_RT(o), "(%U,)", r);
        zw_decref(r);
        return s;
    }
    return zwi_seq_repr(o, TUPLE(o)->items, n, "(", ")");
}

/* xxHash-based, as CPython 3.8+ (Objects/tupleobject.c tuplehash). */
static int64_t
tuple_hash(zw_obj *o)
{
    const uint64_t p1 = 11400714785074694791ull, p2 = 14029467366897019727ull,
                   p5 = 2870177450012600261ull;
    uint64_t acc = p5;
    size_t n = (size_t)TUPLE(o)->vo.size;
    for (size_t i = 0; i < n; i++) {
        int64_t lane = zw_hash(TUPLE(o)->items[i]);
        if (lane == -1)
            return -1;
        acc += (uint64_t)lane * p2;
        acc = (acc << 31) | (acc >> 33);
        acc *= p1;
    }
    acc += n ^ (p5 ^ 3527539ull);
    if (acc == (uint64_t)-1)
        return 1546275796;
    return (int64_t)acc;
}

/* Lexicographic comparison of two arrays, as tuples and lists compare. */
ZW_HIDDEN int
zwi_seq_compare(zw_obj *const *a, size_t na, zw_obj *const *b, size_t nb, zw_cmp op)
{
    size_t i = 0;
    for (; i < na && i < nb; i++) {
        int eq = zw_equal(a[i], b[i]);
        if (eq < 0)
            return -1;
        if (!eq)
            break;
    }
    if (i >= na || i >= nb) {
        switch (op) {
        case ZW_LT: return na < nb;
        case ZW_LE: return na <= nb;
        case ZW_EQ: return na == nb;
        case ZW_NE: return na != nb;
        case ZW_GT: return na > nb;
        default: return na >= nb;
        }
    }
    if (op == ZW_EQ)
        return 0;
    if (op == ZW_NE)
        return 1;
    return zw_compare(a[i], b[i], op);
}

static int
tuple_compare(zw_obj *a, zw_obj *b, zw_cmp op)
{
    if (!zw_tuple_check(b))
        return ZW_CMP_UNSUPPORTED;
    return zwi_seq_compare(TUPLE(a)->items, (size_t)TUPLE(a)->vo.size, TUPLE(b)->items,
                           (size_t)TUPLE(b)->vo.size, op);
}

ZW_HIDDEN zw_obj *zwi_seq_iter_new(zw_obj *seq, zw_builtin which);

static zw_obj *
tuple_iter(zw_obj *o)
{
    return zwi_seq_iter_new(o, ZW_T_TUPLE_ITER);
}

ZW_HIDDEN const zw_type_spec zwi_tuple_spec = {
    .name = "tuple",
    .basicsize = sizeof(zwi_tuple),
    .itemsize = sizeof(zw_obj *),
    .flags = ZW_TPFLAGS_GC | ZW_TPFLAGS_TUPLE | ZW_TPFLAGS_BASETYPE | ZW_TPFLAGS_IMMUTABLE,
    .dealloc = tuple_dealloc,
    .traverse = tuple_traverse,
    .repr = tuple_repr,
    .hash = tuple_hash,
    .compare = tuple_compare,
    .iter = tuple_iter,
};

void
zwi_tuple_init(zw_rt *rt)
{
    rt->empty_tuple.gc.next = 0;
    rt->empty_tuple.gc.prev = 0;
    zwi_init_static(&rt->empty_tuple.t.vo.ob, rt->builtin[ZW_T_TUPLE]);
    rt->empty_tuple.t.vo.size = 0;
}

void
zwi_tuple_clear_freelist(zw_rt *rt)
{
    for (size_t n = 1; n <= ZWI_TUPLE_MAXSAVESIZE; n++) {
        while (rt->tuple_free[n] != NULL) {
            zw_obj *o = rt->tuple_free[n];
            rt->tuple_free[n] = TUPLE(o)->items[0];
            zwi_obj_forget(o);
        }
        rt->tuple_nfree[n] = 0;
    }
}
