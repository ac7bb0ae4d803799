/* obj/list.c - list: a growable array of references (a 40-byte object behind a GC header, and
 * an item array from the heap) with CPython 3.11's growth pattern, free list of 80 list
 * objects, and a stable merge sort. See docs/obj.md#list.
 *
 * Invariants: 0 <= size <= allocated; items == NULL <=> allocated == 0; items[0..size) are
 * never NULL. list_resize is the only place that changes `allocated`. */
#include <string.h>

#include <zerowaste/obj.h>

#include "obj_internal.h"

#define LIST(o) ((zwi_list *)(o))

ZW_HIDDEN int zwi_seq_compare(zw_obj *const *a, size_t na, zw_obj *const *b, size_t nb,
                              zw_cmp op);
ZW_HIDDEN zw_obj *zwi_seq_iter_new(zw_obj *seq, zw_builtin which);
ZW_HIDDEN intptr_t zwi_length_hint(zw_obj *o, intptr_t dflt);

bool
zw_list_check(const zw_obj *o)
{
    return (o->type->flags & ZW_TPFLAGS_LIST) != 0;
}

/* Sets the size to newsize, reallocating with CPython 3.11's over-allocation:
 * new_allocated = (newsize + newsize/8 + 6) & ~3, or exactly (newsize + 3) & ~3 when that
 * would not even cover the growth; nothing moves while newsize is within [allocated/2,
 * allocated]. */
static inline __attribute__((always_inline)) int
resize_body(zw_obj *o, intptr_t newsize)
{
    zwi_list *l = LIST(o);
    intptr_t allocated = l->allocated;
    if (allocated >= newsize && newsize >= (allocated >> 1)) {
        l->vo.size = newsize;
        return 0;
    }
    size_t new_allocated = ((size_t)newsize + ((size_t)newsize >> 3) + 6) & ~(size_t)3;
    if (newsize - l->vo.size > (intptr_t)(new_allocated - (size_t)newsize))
        new_allocated = ((size_t)newsize + 3) & ~(size_t)3;
    if (newsize == 0)
        new_allocated = 0;
    zw_rt *rt = ZWI_RT(o);
    if (new_allocated > (size_t)PTRDIFF_MAX / sizeof(zw_obj *))
        return zw_err_nomemory(rt);
    zw_obj **items;
    if (new_allocated == 0) {
        zwi_rt_free(rt, l->items);
        items = NULL;
    } else {
        items = zwi_rt_realloc(rt, l->items, new_allocated * sizeof(zw_obj *));
        if (items == NULL)
            return -1;
    }
    l->items = items;
    l->vo.size = newsize;
    l->allocated = (intptr_t)new_allocated;
    return 0;
}

static int
list_resize(zw_obj *o, intptr_t newsize)
{
    return resize_body(o, newsize);
}

/* A list object with `allocated` slots and size 0, untracked. */
static zw_obj *
list_alloc(zw_rt *rt, size_t allocated)
{
    zw_obj *o;
    if (rt->list_nfree > 0) {
        o = rt->list_free[--rt->list_nfree];
        zwi_obj_revive(o, rt->builtin[ZW_T_LIST]);
    } else {
        o = zw_obj_alloc(rt->builtin[ZW_T_LIST], 0);
        if (o == NULL)
            return NULL;
    }
    zwi_list *l = LIST(o);
    l->vo.size = 0;
    l->items = NULL;
    l->allocated = 0;
    if (allocated > 0) {
        if (allocated > (size_t)PTRDIFF_MAX / sizeof(zw_obj *)) {
            zw_err_nomemory(rt);
            zw_decref(o);
            return NULL;
        }
        l->items = zwi_rt_malloc(rt, allocated * sizeof(zw_obj *));
        if (l->items == NULL) {
            zw_decref(o);
            return NULL;
        }
        l->allocated = (intptr_t)allocated;
    }
    return o;
}

zw_obj *
zw_list_new(zw_rt *rt, size_t capacity)
{
    zw_obj *o = list_alloc(rt, capacity);
    if (o != NULL)
        zwi_gc_track(o);
    return o;
}

zw_obj *
zw_list_repeat(zw_rt *rt, zw_obj *item, size_t n)
{
    zw_obj *o = list_alloc(rt, n);
    if (o == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        LIST(o)->items[i] = zw_newref(item);
    LIST(o)->vo.size = (intptr_t)n;
    zwi_gc_track(o);
    return o;
}

size_t
zw_list_len(zw_obj *l)
{
    return (size_t)LIST(l)->vo.size;
}

size_t
zw_list_capacity(zw_obj *l)
{
    return (size_t)LIST(l)->allocated;
}

static bool
normalise_index(zw_obj *l, intptr_t *i)
{
    intptr_t n = LIST(l)->vo.size;
    if (*i < 0)
        *i += n;
    return *i >= 0 && *i < n;
}

zw_obj *
zw_list_get(zw_obj *l, intptr_t i)
{
    if (!normalise_index(l, &i)) {
        zw_err_set(ZWI_RT(l), ZW_IndexError, "list index out of range");
        return NULL;
    }
    return LIST(l)->items[i];
}

int
zw_list_set(zw_obj *l, intptr_t i, zw_obj *item)
{
    if (!normalise_index(l, &i))
        return zw_err_set(ZWI_RT(l), ZW_IndexError, "list assignment index out of range");
    zw_incref(item);
    ZW_SETREF(LIST(l)->items[i], item);
    return 0;
}

/* zw_list_append when the list is full: grow it (list_resize in line: a growing list comes
 * here 3 times in its first 10 appends), then append. */
static int __attribute__((noinline))
append_grow(zw_obj *l, zw_obj *item)
{
    intptr_t n = LIST(l)->vo.size;
    if (resize_body(l, n + 1) != 0)
        return -1;
    LIST(l)->items[n] = zw_newref(item);
    return 0;
}

int
zw_list_append(zw_obj *l, zw_obj *item)
{
    /* the room is there in most appends: that case alone, needing no frame */
    zwi_list *x = LIST(l);
    intptr_t n = x->vo.size;
    if (ZW_LIKELY(n < x->allocated)) {
        x->items[n] = zw_newref(item);
        x->vo.size = n + 1;
        return 0;
    }
    return append_grow(l, item);
}

int
zw_list_insert(zw_obj *l, intptr_t i, zw_obj *item)
{
    intptr_t n = LIST(l)->vo.size;
    if (i < 0) {
        i += n;
        if (i < 0)
            i = 0;
    }
    if (i > n)
        i = n;
    if (list_resize(l, n + 1) != 0)
        return -1;
    zw_obj **items = LIST(l)->items;
    memmove(items + i + 1, items + i, (size_t)(n - i) * sizeof(zw_obj *));
    items[i] = zw_newref(item);
    return 0;
}

zw_obj *
zw_list_pop(zw_obj *l, intptr_t i)
{
    zw_rt *rt = ZWI_RT(l);
    intptr_t n = LIST(l)->vo.size;
    if (n == 0) {
        zw_err_set(rt, ZW_IndexError, "pop from empty list");
        return NULL;
    }
    if (!normalise_index(l, &i)) {
        zw_err_set(rt, ZW_IndexError, "pop index out of range");
        return NULL;
    }
    zw_obj **items = LIST(l)->items;
    zw_obj *item = items[i];
    memmove(items + i, items + i + 1, (size_t)(n - i - 1) * sizeof(zw_obj *));
    if (list_resize(l, n - 1) != 0) {
        /* shrinking failed: keep the array as it is, one shorter (the item is already out) */
        LIST(l)->vo.size = n - 1;
        zw_err_clear(rt);
    }
    return item;
}

static void
clamp_slice(intptr_t n, intptr_t *lo, intptr_t *hi)
{
    if (*lo < 0)
        *lo = *lo + n < 0 ? 0 : *lo + n;
    if (*hi < 0)
        *hi = *hi + n < 0 ? 0 : *hi + n;
    if (*lo > n)
        *lo = n;
    if (*hi > n)
        *hi = n;
    if (*hi < *lo)
        *hi = *lo;
}

zw_obj *
zw_list_slice(zw_obj *l, intptr_t lo, intptr_t hi)
{
    clamp_slice(LIST(l)->vo.size, &lo, &hi);
    size_t len = (size_t)(hi - lo);
    zw_obj *o = list_alloc(ZWI_RT(l), len);
    if (o == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++)
        LIST(o)->items[i] = zw_newref(LIST(l)->items[lo + (intptr_t)i]);
    LIST(o)->vo.size = (intptr_t)len;
    zwi_gc_track(o);
    return o;
}

/* extend from a list or tuple: one resize, as CPython's list_extend fast path */
static int
extend_from_array(zw_obj *l, zw_obj *const *src, size_t n)
{
    if (n == 0)
        return 0;
    intptr_t m = LIST(l)->vo.size;
    if (list_resize(l, m + (intptr_t)n) != 0)
        return -1;
    /* src may be l's own items, which the resize may have moved: index it afresh */
    zw_obj *const *from = src == NULL ? LIST(l)->items : src;
    for (size_t i = 0; i < n; i++)
        LIST(l)->items[m + (intptr_t)i] = zw_newref(from[i]);
    return 0;
}

int
zw_list_extend(zw_obj *l, zw_obj *iterable)
{
    zw_rt *rt = ZWI_RT(l);
    if (zw_list_check(iterable))
        return extend_from_array(l, iterable == l ? NULL : LIST(iterable)->items,
                                 (size_t)LIST(iterable)->vo.size);
    if (zw_tuple_check(iterable))
        return extend_from_array(l, ((zwi_tuple *)iterable)->items,
                                 (size_t)((zwi_tuple *)iterable)->vo.size);
    zw_obj *it = zw_iter(iterable);
    if (it == NULL)
        return -1;
    /* as CPython: grow by the length hint (8 when unknown) first, append in place, then give
     * back what was not used */
    intptr_t hint = zwi_length_hint(iterable, 8);
    intptr_t m = LIST(l)->vo.size;
    if (hint > 0) {
        if (list_resize(l, m + hint) != 0) {
            zw_decref(it);
            return -1;
        }
        LIST(l)->vo.size = m;
    }
    int rc = 0;
    for (;;) {
        zw_obj *item = zw_iter_next(it);
        if (item == NULL) {
            rc = rt->exc == ZW_NoError ? 0 : -1;
            break;
        }
        zwi_list *x = LIST(l);
        if (x->vo.size < x->allocated) {
            x->items[x->vo.size++] = item;
        } else {
            rc = zw_list_append(l, item);
            zw_decref(item);
            if (rc != 0)
                break;
        }
    }
    zw_decref(it);
    if (LIST(l)->vo.size < LIST(l)->allocated && list_resize(l, LIST(l)->vo.size) != 0)
        zw_err_clear(rt); /* a failed shrink loses nothing */
    return rc;
}

/* ---- sorting: a stable merge sort (runs of 32 by binary insertion, then merges) ---- */

/* a < b through zw_compare; -1 on error */
static int
less(zw_obj *a, zw_obj *b)
{
    return zw_compare(a, b, ZW_LT);
}

static int
insertion_sort(zw_obj **a, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        zw_obj *x = a[i];
        size_t lo = 0, hi = i;
        while (lo < hi) { /* first position whose item is > x: keeps equal items in order */
            size_t mid = (lo + hi) / 2;
            int r = less(x, a[mid]);
            if (r < 0)
                return -1;
            if (r)
                hi = mid;
            else
                lo = mid + 1;
        }
        memmove(a + lo + 1, a + lo, (i - lo) * sizeof(zw_obj *));
        a[lo] = x;
    }
    return 0;
}

static int
merge(zw_obj **a, size_t mid, size_t n, zw_obj **tmp)
{
    memcpy(tmp, a, mid * sizeof(zw_obj *));
    size_t i = 0, j = mid, k = 0;
    while (i < mid && j < n) {
        int r = less(a[j], tmp[i]); /* take from the right only when strictly smaller */
        if (r < 0) {
            /* keep every item: put back what is still in tmp */
            memcpy(a + k, tmp + i, (mid - i) * sizeof(zw_obj *));
            return -1;
        }
        a[k++] = r ? a[j++] : tmp[i++];
    }
    while (i < mid)
        a[k++] = tmp[i++];
    return 0;
}

static void
reverse(zw_obj **a, size_t n)
{
    for (size_t i = 0, j = n ? n - 1 : 0; i < j; i++, j--) {
        zw_obj *t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

int
zw_list_sort(zw_obj *l, bool rev)
{
    zw_rt *rt = ZWI_RT(l);
    zwi_list *x = LIST(l);
    /* as CPython, the list is empty while it sorts, so a compare that changes it is caught */
    zw_obj **a = x->items;
    size_t n = (size_t)x->vo.size;
    intptr_t allocated = x->allocated;
    x->items = NULL;
    x->vo.size = 0;
    x->allocated = 0;
    int rc = 0;
    zw_obj **tmp = NULL;
    if (rev)
        reverse(a, n);
    const size_t run = 32;
    for (size_t lo = 0; lo < n && rc == 0; lo += run)
        rc = insertion_sort(a + lo, n - lo < run ? n - lo : run);
    if (rc == 0 && n > run) {
        tmp = zwi_rt_malloc(rt, n * sizeof(zw_obj *)); /* a merge copies its left run: < n */
        if (tmp == NULL)
            rc = -1;
    }
    for (size_t width = run; rc == 0 && width < n; width *= 2) {
        for (size_t lo = 0; lo + width < n && rc == 0; lo += 2 * width) {
            size_t len = n - lo < 2 * width ? n - lo : 2 * width;
            rc = merge(a + lo, width, len, tmp);
        }
    }
    zwi_rt_free(rt, tmp);
    if (rev)
        reverse(a, n);
    bool modified = x->items != NULL || x->vo.size != 0;
    if (modified) { /* drop what the compare put in, keep the sorted items */
        for (intptr_t i = 0; i < x->vo.size; i++)
            zw_decref(x->items[i]);
        zwi_rt_free(rt, x->items);
    }
    x->items = a;
    x->vo.size = (intptr_t)n;
    x->allocated = allocated;
    if (modified && rc == 0)
        rc = zw_err_set(rt, ZW_ValueError, "list modified during sort");
    return rc;
}

/* ---- the type ---- */

static int
list_clear(zw_obj *o)
{
    zwi_list *l = LIST(o);
    zw_obj **items = l->items;
    intptr_t n = l->vo.size;
    l->items = NULL;
    l->vo.size = 0;
    l->allocated = 0;
    for (intptr_t i = n; --i >= 0;)
        zw_decref(items[i]);
    zwi_rt_free(ZWI_RT(o), items);
    return 0;
}

static void
list_dealloc(zw_obj *o)
{
    zw_rt *rt = ZWI_RT(o);
    zwi_gc_untrack(o);
    list_clear(o);
    if (o->type == rt->builtin[ZW_T_LIST] && rt->list_nfree < ZWI_LIST_MAXFREELIST) {
        zwi_obj_cached(o);
        rt->list_free[rt->list_nfree++] = o;
        return;
    }
    zw_obj_free(o);
}

static int
list_traverse(zw_obj *o, zw_visit_fn visit, void *arg)
{
    return zwi_list_traverse(o, visit, arg); /* obj_internal.h: the collector inlines it */
}

static zw_obj *
list_repr(zw_obj *o)
{
    if (LIST(o)->vo.size == 0)
        return zw_str_new(ZWI_RT(o), "[]");
    return zwi_seq_repr(o, LIST(o)->items, (size_t)LIST(o)->vo.size, "[", "]");
}

static int
list_compare(zw_obj *a, zw_obj *b, zw_cmp op)
{
    if (!zw_list_check(b))
        return ZW_CMP_UNSUPPORTED;
    return zwi_seq_compare(LIST(a)->items, (size_t)LIST(a)->vo.size, LIST(b)->items,
                           (size_t)LIST(b)->vo.size, op);
}

static zw_obj *
list_iter(zw_obj *o)
{
    return zwi_seq_iter_new(o, ZW_T_LIST_ITER);
}

static size_t
list_size_of(zw_obj *o)
{
    return sizeof(zwi_list) + (size_t)LIST(o)->allocated * sizeof(zw_obj *);
}

static int64_t
list_hash(zw_obj *o)
{
    zw_err_set(ZWI_RT(o), ZW_TypeError, "unhashable type: 'list'");
    return -1;
}

ZW_HIDDEN const zw_type_spec zwi_list_spec = {
    .name = "list",
    .basicsize = sizeof(zwi_list),
    .flags = ZW_TPFLAGS_GC | ZW_TPFLAGS_LIST | ZW_TPFLAGS_BASETYPE,
    .dealloc = list_dealloc,
    .traverse = list_traverse,
    .clear = list_clear,
    .repr = list_repr,
    .hash = list_hash,
    .compare = list_compare,
    .iter = list_iter,
    .size_of = list_size_of,
};

void
zwi_list_clear_freelist(zw_rt *rt)
{
    while (rt->list_nfree > 0)
        zwi_obj_forget(rt->list_free[--rt->list_nfree]);
}
