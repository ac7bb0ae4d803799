/* obj/iter.c - range, the iterators over tuples, lists and ranges, length hints, and
 * generators: a resumable C function with its state stored in the generator object, consumed
 * by zw_iter_next, zw_sum and zw_list_from_iter. See docs/obj.md#generators.
 *
 * Invariants: an exhausted iterator has dropped its sequence (seq == NULL) and stays
 * exhausted; a generator's body is never called again once it returned NULL, and its release
 * function has then run exactly once. */
#include <stdalign.h>
#include <string.h>

#include <zerowaste/obj.h>

#include "obj_internal.h"

/* ---- iterators over tuples and lists ---- */

typedef struct seq_iter {
    zw_obj ob;
    zw_obj *seq;  /* NULL once exhausted */
    size_t index; /* the next item */
} seq_iter;

ZW_HIDDEN zw_obj *
zwi_seq_iter_new(zw_obj *seq, zw_builtin which)
{
    seq_iter *it = (seq_iter *)zw_obj_alloc(ZWI_TYPE(ZWI_RT(seq), which), 0);
    if (it == NULL)
        return NULL;
    it->seq = zw_newref(seq);
    zwi_gc_track(&it->ob);
    return &it->ob;
}

static zw_obj *
seq_iter_next(zw_obj *o)
{
    seq_iter *it = (seq_iter *)o;
    if (it->seq == NULL)
        return NULL;
    zw_obj *seq = it->seq;
    size_t n = zw_tuple_check(seq) ? zw_tuple_len(seq) : zw_list_len(seq);
    if (it->index >= n) {
        ZW_CLEAR(it->seq);
        return NULL;
    }
    zw_obj *item = zw_tuple_check(seq) ? ((zwi_tuple *)seq)->items[it->index]
                                       : ((zwi_list *)seq)->items[it->index];
    it->index++;
    return zw_newref(item);
}

static int
seq_iter_traverse(zw_obj *o, zw_visit_fn visit, void *arg)
{
    seq_iter *it = (seq_iter *)o;
    return it->seq ? visit(it->seq, arg) : 0;
}

ZW_HIDDEN const zw_type_spec zwi_tuple_iter_spec = {
    .name = "tuple_iterator",
    .basicsize = sizeof(seq_iter),
    .flags = ZW_TPFLAGS_GC,
    .traverse = seq_iter_traverse,
    .next = seq_iter_next,
};

ZW_HIDDEN const zw_type_spec zwi_list_iter_spec = {
    .name = "list_iterator",
    .basicsize = sizeof(seq_iter),
    .flags = ZW_TPFLAGS_GC,
    .traverse = seq_iter_traverse,
    .next = seq_iter_next,
};

/* ---- range ---- */

zw_obj *
zw_range_new(zw_rt *rt, int64_t start, int64_t stop, int64_t step)
{
    if (step == 0) {
        zw_err_set(rt, ZW_ValueError, "range() arg 3 must not be zero");
        return NULL;
    }
    zwi_range *r = (zwi_range *)zw_obj_alloc(rt->builtin[ZW_T_RANGE], 0);
    if (r == NULL)
        return NULL;
    r->start = start;
    r->stop = stop;
    r->step = step;
    /* computed in unsigned arithmetic: stop - start may not fit in int64 */
    uint64_t len = 0;
    if (step > 0 && start < stop)
        len = ((uint64_t)stop - (uint64_t)start - 1) / (uint64_t)step + 1;
    else if (step < 0 && start > stop)
        len = ((uint64_t)start - (uint64_t)stop - 1) / (0 - (uint64_t)step) + 1;
    r->length = (int64_t)len; /* a range of more than 2**63 items is not supported */
    return &r->ob;
}

static zw_obj *
range_repr(zw_obj *o)
{
    zwi_range *r = (zwi_range *)o;
    if (r->step == 1)
        return zw_str_from_format(ZWI_RT(o), "range(%lld, %lld)", (long long)r->start,
                                  (long long)r->stop);
    return zw_str_from_format(ZWI_RT(o), "range(%lld, %lld, %lld)", (long long)r->start,
                              (long long)r->stop, (long long)r->step);
}

/* equal ranges are equal sequences (range(0) == range(2, 2)), as Python compares them */
static int
range_compare(zw_obj *a, zw_obj *b, zw_cmp op)
{
    if (b->type != a->type || (op != ZW_EQ && op != ZW_NE))
        return ZW_CMP_UNSUPPORTED;
    zwi_range *x = (zwi_range *)a, *y = (zwi_range *)b;
    bool eq = x->length == y->length &&
              (x->length == 0 || (x->start == y->start && (x->length == 1 || x->step == y->step)));
    return op == ZW_EQ ? eq : !eq;
}

static int64_t
range_hash(zw_obj *o)
{
    zwi_range *r = (zwi_range *)o;
    int64_t h = zwi_hash_i64(r->length);
    if (r->length > 0)
        h = h * 1000003 ^ zwi_hash_i64(r->start);
    if (r->length > 1)
        h = h * 1000003 ^ zwi_hash_i64(r->step);
    return h == -1 ? -2 : h;
}

typedef struct range_iter {
    zw_obj ob;
    int64_t next;      /* the next value */
    int64_t step;
    uint64_t remaining;
} range_iter;

static zw_obj *
range_iter_new(zw_obj *o)
{
    zwi_range *r = (zwi_range *)o;
    range_iter *it = (range_iter *)zw_obj_alloc(ZWI_TYPE(ZWI_RT(o), ZW_T_RANGE_ITER), 0);
    if (it == NULL)
        return NULL;
    it->next = r->start;
    it->step = r->step;
    it->remaining = (uint64_t)r->length;
    return &it->ob;
}

static zw_obj *
range_iter_next(zw_obj *o)
{
    range_iter *it = (range_iter *)o;
    if (it->remaining == 0)
        return NULL;
    it->remaining--;
    int64_t v = it->next;
    it->next = (int64_t)((uint64_t)it->next + (uint64_t)it->step);
    return zw_int_from_i64(ZWI_RT(o), v);
}

ZW_HIDDEN const zw_type_spec zwi_range_spec = {
    .name = "range",
    .basicsize = sizeof(zwi_range),
    .flags = ZW_TPFLAGS_IMMUTABLE,
    .repr = range_repr,
    .hash = range_hash,
    .compare = range_compare,
    .iter = range_iter_new,
};

ZW_HIDDEN const zw_type_spec zwi_range_iter_spec = {
    .name = "range_iterator",
    .basicsize = sizeof(range_iter),
    .next = range_iter_next,
};

/* ---- length hints (operator.length_hint) ---- */

ZW_HIDDEN intptr_t
zwi_length_hint(zw_obj *o, intptr_t dflt)
{
    zw_rt *rt = ZWI_RT(o);
    zw_type *t = o->type;
    unsigned f = t->flags;
    if (f & (ZW_TPFLAGS_TUPLE | ZW_TPFLAGS_LIST | ZW_TPFLAGS_BYTES | ZW_TPFLAGS_STR |
             ZW_TPFLAGS_DICT) ||
        t == rt->builtin[ZW_T_RANGE])
        return zw_len(o);
    if (t == rt->builtin[ZW_T_TUPLE_ITER] || t == rt->builtin[ZW_T_LIST_ITER]) {
        seq_iter *it = (seq_iter *)o;
        if (it->seq == NULL)
            return 0;
        intptr_t n = zw_len(it->seq);
        return n > (intptr_t)it->index ? n - (intptr_t)it->index : 0;
    }
    if (t == rt->builtin[ZW_T_RANGE_ITER])
        return (intptr_t)((range_iter *)o)->remaining;
    return dflt;
}

/* ---- generators ---- */

typedef struct gen_obj {
    zw_obj ob;
    zw_gen_fn body;
    zw_gen_traverse_fn traverse;
    zw_gen_release_fn release;
    size_t state_size;
    bool running;    /* the body is on the stack: a re-entrant next is an error */
    bool finished;   /* the body returned NULL; the state was released */
    char pad_[6];
    alignas(16) unsigned char state[]; /* state_size bytes, zeroed at creation */
} gen_obj;

#define GEN(o) ((gen_obj *)(o))

zw_obj *
zw_gen_new_ex(zw_rt *rt, size_t state_size, zw_gen_fn next_fn, zw_gen_traverse_fn traverse_fn,
              zw_gen_release_fn release_fn)
{
    if (next_fn == NULL) {
        zw_err_set(rt, ZW_ValueError, "a generator needs a body (next_fn is NULL)");
        return NULL;
    }
    zw_obj *o = zw_obj_alloc(rt->builtin[ZW_T_GENERATOR], state_size);
    if (o == NULL)
        return NULL;
    gen_obj *g = GEN(o);
    g->body = next_fn;
    g->traverse = traverse_fn;
    g->release = release_fn;
    g->state_size = state_size;
    zwi_gc_track(o);
    return o;
}

zw_obj *
zw_gen_new(zw_rt *rt, size_t state_size, zw_gen_fn next_fn, zw_gen_traverse_fn traverse_fn)
{
    return zw_gen_new_ex(rt, state_size, next_fn, traverse_fn, NULL);
}

void *
zw_gen_state(zw_obj *gen)
{
    return GEN(gen)->state;
}

static void
gen_finish(gen_obj *g)
{
    g->finished = true;
    if (g->release != NULL)
        g->release(g->state);
}

static zw_obj *
gen_next(zw_obj *o)
{
    gen_obj *g = GEN(o);
    zw_rt *rt = ZWI_RT(o);
    if (g->finished)
        return NULL;
    if (g->running) {
        zw_err_set(rt, ZW_ValueError, "generator already executing");
        return NULL;
    }
    g->running = true;
    zw_obj *v = g->body(rt, g->state);
    g->running = false;
    if (v == NULL)
        gen_finish(g);
    return v;
}

static int
gen_traverse(zw_obj *o, zw_visit_fn visit, void *arg)
{
    gen_obj *g = GEN(o);
    if (g->finished || g->traverse == NULL)
        return 0;
    return g->traverse(g->state, visit, arg);
}

static void
gen_dealloc(zw_obj *o)
{
    gen_obj *g = GEN(o);
    zwi_gc_untrack(o);
    if (!g->finished)
        gen_finish(g);
    zw_obj_free(o);
}

static size_t
gen_size_of(zw_obj *o)
{
    return offsetof(gen_obj, state) + GEN(o)->state_size;
}

ZW_HIDDEN const zw_type_spec zwi_generator_spec = {
    .name = "generator",
    .basicsize = offsetof(gen_obj, state),
    .itemsize = 1,
    .flags = ZW_TPFLAGS_GC,
    .dealloc = gen_dealloc,
    .traverse = gen_traverse,
    .next = gen_next,
    .size_of = gen_size_of,
};
