/* gc/weakref.c - weak references with callbacks (Objects/weakrefobject.c), their clearing at
 * refcount death and in a collection (handle_weakrefs), and weakref.finalize.
 * See docs/gc.md#weak-references.
 *
 * Invariants: a live weakref is on its referent's list (doubly linked through prev/next, head in
 * the referent's weaklist slot); a callback-less ref, if any, is the head and is shared; refs
 * with callbacks follow, newest first. A cleared weakref has object == None and is on no list.
 * The referent is not counted by the weakref. */
#include <string.h>

#include <zerowaste/gc.h>

#include "gc_internal.h"

typedef struct weakref {
    zw_obj ob;
    zw_obj *object;        /* the referent (not counted), or None once cleared */
    zw_obj *callback;      /* owned, or NULL */
    int64_t hash;          /* -1 until computed */
    struct weakref *prev;  /* on the referent's list */
    struct weakref *next;
    void *reserved_;       /* 3.11's vectorcall slot: 64 bytes, getsizeof 80 as CPython */
} weakref;

#define WR(o) ((weakref *)(o))

bool
zw_weakref_check(const zw_obj *o)
{
    zwi_gc_ext *ext = GC_EXT(o->type->rt);
    return ext != NULL && zw_type_is_subtype(o->type, ext->weakref_type);
}

/* Unlinks a weakref from its referent's list; the callback stays (_PyWeakref_ClearRef). */
static void
clear_ref(weakref *wr)
{
    zw_rt *rt = ZWI_RT(&wr->ob);
    if (wr->object == &rt->none_obj)
        return;
    zw_obj **list = ZWI_WEAKLIST(wr->object);
    /* a live weakref is on its referent's list: the head, or after another ref */
    ZW_ASSERT((*list == &wr->ob) == (wr->prev == NULL));
    ZW_ASSERT(wr->prev == NULL || wr->prev->next == wr);
    ZW_ASSERT(wr->next == NULL || wr->next->prev == wr);
    if (*list == &wr->ob)
        *list = wr->next ? &wr->next->ob : NULL;
    if (wr->prev != NULL)
        wr->prev->next = wr->next;
    if (wr->next != NULL)
        wr->next->prev = wr->prev;
    wr->prev = wr->next = NULL;
    wr->object = &rt->none_obj;
}

/* clear_weakref: unlinks and drops the callback. */
static void
clear_weakref(weakref *wr)
{
    clear_ref(wr);
    ZW_CLEAR(wr->callback);
}

static void
handle_callback(weakref *wr, zw_obj *callback)
{
    zw_rt *rt = ZWI_RT(&wr->ob);
    zw_obj *arg = &wr->ob;
    zw_obj *r = zw_call_object(callback, 1, &arg);
    if (r == NULL)
        zwi_gc_write_unraisable(rt, "weakref callback", callback);
    else
        zw_decref(r);
}

void
zwi_weakref_clear_all(zw_obj *o)
{
    zw_rt *rt = ZWI_RT(o);
    zw_obj **list = ZWI_WEAKLIST(o);
    /* the shared callback-less ref goes first, silently */
    if (*list != NULL && WR(*list)->callback == NULL)
        clear_weakref(WR(*list));
    if (*list == NULL)
        return;
    zw_exc saved = rt->exc;
    char msg[sizeof(rt->errmsg)];
    if (saved != ZW_NoError)
        memcpy(msg, rt->errmsg, sizeof(msg));
    rt->exc = ZW_NoError;
    /* clear them all before any callback runs, keeping (ref, callback) pairs, newest first */
    size_t count = 0;
    for (weakref *w = WR(*list); w != NULL; w = w->next)
        count++;
    zw_obj **pairs = zw_raw_malloc(rt->raw, 2 * count * sizeof(zw_obj *));
    size_t k = 0;
    while (*list != NULL) {
        weakref *w = WR(*list);
        zw_obj *cb = w->callback;
        w->callback = NULL;
        clear_ref(w);
        if (pairs != NULL && w->ob.refcnt > 0) {
            pairs[k++] = zw_newref(&w->ob);
            pairs[k++] = cb;
        } else {
            zw_xdecref(cb);
        }
    }
    for (size_t i = 0; i < k; i += 2) {
        if (pairs[i + 1] != NULL)
            handle_callback(WR(pairs[i]), pairs[i + 1]);
        zw_xdecref(pairs[i + 1]);
        zw_decref(pairs[i]);
    }
    zw_raw_free(rt->raw, pairs);
    ZW_ASSERT(*list == NULL); /* callbacks cannot make new weakrefs to a dying object */
    rt->exc = saved;
    if (saved != ZW_NoError)
        memcpy(rt->errmsg, msg, sizeof(msg));
}

size_t
zwi_gc_handle_weakrefs(zw_rt *rt, gchead *unreachable, gchead *old)
{
    gchead wrcb_to_call;
    gc_list_init(&wrcb_to_call);
    zwi_gc_ext *ext = GC_EXT(rt);
    for (gchead *g = gc_next(unreachable), *next; g != unreachable; g = next) {
        zw_obj *op = ZWI_GC_OBJ(g);
        next = gc_next(g);
        ZW_ASSERT(gc_is_collecting(g)); /* the unreachable set, before its finalizers */
        if (zw_type_is_subtype(op->type, ext->weakref_type))
            clear_ref(WR(op)); /* garbage itself: its callback never runs */
        if (!(op->type->flags & ZW_TPFLAGS_WEAKREFABLE))
            continue;
        zw_obj **list = ZWI_WEAKLIST(op);
        while (*list != NULL) {
            weakref *wr = WR(*list);
            ZW_ASSERT(wr->object == op);
            clear_ref(wr);
            if (wr->callback == NULL)
                continue;
            if (gc_is_collecting(ZWI_GC_HEAD(&wr->ob)))
                continue; /* the weakref is garbage too: no callback */
            zw_incref(&wr->ob);
            gc_list_move(ZWI_GC_HEAD(&wr->ob), &wrcb_to_call);
        }
    }
    size_t freed = 0;
    while (!gc_list_is_empty(&wrcb_to_call)) {
        gchead *g = gc_next(&wrcb_to_call);
        weakref *wr = WR(ZWI_GC_OBJ(g));
        handle_callback(wr, wr->callback);
        zw_decref(&wr->ob);
        if (gc_next(&wrcb_to_call) == g)
            gc_list_move(g, old); /* still alive */
        else
            freed++;
    }
    return freed;
}

/* ---- the weakref type ---- */

zw_type *
zw_weakref_type(zw_rt *rt)
{
    return GC_EXT(rt) ? GC_EXT(rt)->weakref_type : NULL;
}

zw_obj *
zw_weakref_new(zw_obj *o, zw_obj *callback)
{
    zwi_gc_ext *ext = GC_EXT(ZWI_RT(o));
    return zw_weakref_new_ex(ext ? ext->weakref_type : NULL, o, callback);
}

zw_obj *
zw_weakref_new_ex(zw_type *type, zw_obj *o, zw_obj *callback)
{
    zw_rt *rt = ZWI_RT(o);
    zwi_gc_ext *ext = GC_EXT(rt);
    if (ext == NULL || !(o->type->flags & ZW_TPFLAGS_WEAKREFABLE)) {
        zw_err_set(rt, ZW_TypeError, "cannot create weak reference to '%s' object",
                   o->type->name);
        return NULL;
    }
    if (type == NULL || !zw_type_is_subtype(type, ext->weakref_type)) {
        zw_err_set(rt, ZW_TypeError, "'%s' is not a weakref type", type ? type->name : "NULL");
        return NULL;
    }
    if (callback == &rt->none_obj)
        callback = NULL;
    bool plain = type == ext->weakref_type;
    zw_obj **list = ZWI_WEAKLIST(o);
    /* the shared ref: plain and callback-less, always at the head when it exists */
    weakref *basic = (*list != NULL && WR(*list)->callback == NULL &&
                      (*list)->type == ext->weakref_type)
                         ? WR(*list)
                         : NULL;
    if (callback == NULL && plain && basic != NULL)
        return zw_newref(&basic->ob);
    weakref *wr = (weakref *)zw_obj_alloc(type, 0);
    if (wr == NULL)
        return NULL;
    wr->object = o;
    wr->callback = callback ? zw_newref(callback) : NULL;
    wr->hash = -1;
    ZW_ASSERT(basic == NULL || basic->prev == NULL);
    if ((callback == NULL && plain) || basic == NULL) { /* at the head */
        wr->next = *list ? WR(*list) : NULL;
        if (wr->next)
            wr->next->prev = wr;
        *list = &wr->ob;
    } else { /* right after the shared ref: callbacks newest first */
        wr->prev = basic;
        wr->next = basic->next;
        if (wr->next)
            wr->next->prev = wr;
        basic->next = wr;
    }
    zwi_gc_track(&wr->ob);
    return &wr->ob;
}

zw_obj *
zw_weakref_get(zw_obj *ref)
{
    return zw_newref(WR(ref)->object);
}

zw_obj *
zw_weakref_callback(zw_obj *ref)
{
    return WR(ref)->callback;
}

size_t
zw_weakref_count(zw_obj *o)
{
    if (!(o->type->flags & ZW_TPFLAGS_WEAKREFABLE))
        return 0;
    size_t n = 0;
    for (zw_obj *w = *ZWI_WEAKLIST(o); w != NULL; w = WR(w)->next ? &WR(w)->next->ob : NULL)
        n++;
    return n;
}

zw_obj *
zw_weakref_list(zw_obj *o)
{
    zw_obj *l = zw_list_new(ZWI_RT(o), 0);
    if (l == NULL || !(o->type->flags & ZW_TPFLAGS_WEAKREFABLE))
        return l;
    for (weakref *w = WR(*ZWI_WEAKLIST(o)); w != NULL; w = w->next) {
        if (zw_list_append(l, &w->ob) != 0) {
            zw_decref(l);
            return NULL;
        }
    }
    return l;
}

static void
weakref_dealloc(zw_obj *o)
{
    zwi_gc_untrack(o);
    clear_weakref(WR(o));
    zw_obj_free(o);
}

static int
weakref_traverse(zw_obj *o, zw_visit_fn visit, void *arg)
{
    return WR(o)->callback ? visit(WR(o)->callback, arg) : 0;
}

static int
weakref_clear(zw_obj *o)
{
    clear_weakref(WR(o));
    return 0;
}

static zw_obj *
weakref_repr(zw_obj *o)
{
    zw_rt *rt = ZWI_RT(o);
    weakref *w = WR(o);
    if (w->object == &rt->none_obj)
        return zw_str_from_format(rt, "<weakref at %p; dead>", (void *)o);
    return zw_str_from_format(rt, "<weakref at %p; to '%s' at %p>", (void *)o,
                              w->object->type->name, (void *)w->object);
}

/* hash(ref) = hash(referent), cached so it survives the referent's death */
static int64_t
weakref_hash(zw_obj *o)
{
    zw_rt *rt = ZWI_RT(o);
    weakref *w = WR(o);
    if (w->hash != -1)
        return w->hash;
    if (w->object == &rt->none_obj) {
        zw_err_set(rt, ZW_TypeError, "weak object has gone away");
        return -1;
    }
    w->hash = zw_hash(w->object);
    return w->hash;
}

/* both alive: the referents compare; otherwise identity */
static int
weakref_compare(zw_obj *a, zw_obj *b, zw_cmp op)
{
    if ((op != ZW_EQ && op != ZW_NE) || !zw_weakref_check(b))
        return ZW_CMP_UNSUPPORTED;
    zw_rt *rt = ZWI_RT(a);
    zw_obj *x = WR(a)->object, *y = WR(b)->object;
    if (x == &rt->none_obj || y == &rt->none_obj) {
        bool eq = a == b;
        return op == ZW_EQ ? eq : !eq;
    }
    zw_incref(x);
    zw_incref(y);
    int r = zw_compare(x, y, op);
    zw_decref(x);
    zw_decref(y);
    return r;
}

static const zw_type_spec weakref_spec = {
    .name = "weakref",
    .basicsize = sizeof(weakref),
    .flags = ZW_TPFLAGS_GC | ZW_TPFLAGS_BASETYPE,
    .dealloc = weakref_dealloc,
    .traverse = weakref_traverse,
    .clear = weakref_clear,
    .repr = weakref_repr,
    .hash = weakref_hash,
    .compare = weakref_compare,
};

/* ---- finalize ---- */

typedef struct finalizer {
    zw_obj ob;
    zw_obj *weaklist; /* finalizers are weakly referenceable */
    zw_obj *ref;      /* weakref to the object, whose callback runs us; NULL once dead */
    zw_obj *fn;
    zw_obj *args;     /* a tuple */
    uint64_t index;   /* creation order */
    bool atexit;
} finalizer;

#define FIN(o) ((finalizer *)(o))

static bool
registered(zw_obj *f)
{
    zwi_gc_ext *ext = GC_EXT(ZWI_RT(f));
    return ext->registry != NULL && zw_dict_get(ext->registry, f) != NULL;
}

/* Takes the finalizer out of the registry and drops what it holds; its fn and args come back
 * to the caller (new references) when wanted. False if it was not alive. */
static bool
unregister(zw_obj *f, zw_obj **fn, zw_obj **args, zw_obj **obj)
{
    zw_rt *rt = ZWI_RT(f);
    zwi_gc_ext *ext = GC_EXT(rt);
    if (!registered(f))
        return false;
    finalizer *fz = FIN(f);
    if (obj != NULL)
        *obj = fz->ref ? zw_weakref_get(fz->ref) : zw_newref(&rt->none_obj);
    if (fn != NULL)
        *fn = zw_newref(fz->fn);
    if (args != NULL)
        *args = zw_newref(fz->args);
    zw_incref(f);
    if (zw_dict_del(ext->registry, f) != 0)
        zw_err_clear(rt);
    ZW_CLEAR(fz->ref);
    ZW_CLEAR(fz->fn);
    ZW_CLEAR(fz->args);
    zw_decref(f);
    return true;
}

static zw_obj *
run(zw_obj *f)
{
    zw_rt *rt = ZWI_RT(f);
    zw_obj *fn, *args;
    if (!unregister(f, &fn, &args, NULL))
        return zw_newref(&rt->none_obj);
    zw_obj *r = zw_call_object(fn, zw_tuple_len(args), ((zwi_tuple *)args)->items);
    zw_decref(fn);
    zw_decref(args);
    return r;
}

/* the weakref's callback: the object died */
static zw_obj *
finalize_callback(zw_obj *self, zw_obj *const *args, size_t nargs)
{
    zw_obj *r = run(self);
    return r;
}

static const zw_method finalize_callback_def = {"finalize", finalize_callback, 1, NULL};

zw_obj *
zw_finalize_new(zw_obj *o, zw_obj *fn, zw_obj *args)
{
    zw_rt *rt = ZWI_RT(o);
    zwi_gc_ext *ext = GC_EXT(rt);
    if (args != NULL && !zw_tuple_check(args)) {
        zw_err_set(rt, ZW_TypeError, "finalize: args must be a tuple, not '%s'", args->type->name);
        return NULL;
    }
    if (ext->registry == NULL && (ext->registry = zw_dict_new(rt)) == NULL)
        return NULL;
    finalizer *f = (finalizer *)zw_obj_alloc(ext->finalize_type, 0);
    if (f == NULL)
        return NULL;
    f->fn = zw_newref(fn);
    f->args = args ? zw_newref(args) : zw_tuple_new(rt, 0);
    f->atexit = true;
    f->index = ext->finalize_index++;
    zwi_gc_track(&f->ob);
    zw_obj *cb = zw_func_new(rt, &finalize_callback_def, &f->ob);
    if (cb != NULL) {
        f->ref = zw_weakref_new(o, cb);
        zw_decref(cb);
    }
    if (f->ref == NULL || zw_dict_set(ext->registry, &f->ob, &rt->none_obj) != 0) {
        zw_decref(&f->ob);
        return NULL;
    }
    return &f->ob;
}

zw_obj *
zw_finalize_call(zw_obj *f)
{
    return run(f);
}

bool
zw_finalize_alive(zw_obj *f)
{
    return registered(f);
}

static zw_obj *
info_tuple(zw_obj *f, bool detach)
{
    zw_rt *rt = ZWI_RT(f);
    if (!registered(f))
        return zw_newref(&rt->none_obj);
    finalizer *fz = FIN(f);
    zw_obj *obj = zw_weakref_get(fz->ref);
    if (obj == &rt->none_obj)
        return obj;
    zw_obj *t = zw_tuple_pack(rt, 3, obj, fz->fn, fz->args);
    zw_decref(obj);
    if (t != NULL && detach)
        unregister(f, NULL, NULL, NULL);
    return t;
}

zw_obj *
zw_finalize_detach(zw_obj *f)
{
    return info_tuple(f, true);
}

zw_obj *
zw_finalize_peek(zw_obj *f)
{
    return info_tuple(f, false);
}

bool
zw_finalize_get_atexit(zw_obj *f)
{
    return FIN(f)->atexit;
}

void
zw_finalize_set_atexit(zw_obj *f, bool atexit)
{
    FIN(f)->atexit = atexit;
}

void
zwi_finalize_atexit(zw_rt *rt)
{
    zwi_gc_ext *ext = GC_EXT(rt);
    if (ext->registry == NULL)
        return;
    /* newest first; a function may register more, which then run too */
    for (;;) {
        zw_obj *latest = NULL;
        size_t pos = 0;
        zw_obj *k, *v;
        while (zw_dict_next(ext->registry, &pos, &k, &v))
            if (FIN(k)->atexit && (latest == NULL || FIN(k)->index > FIN(latest)->index))
                latest = k;
        if (latest == NULL)
            break;
        zw_incref(latest);
        zw_obj *r = run(latest);
        if (r == NULL)
            zwi_gc_write_unraisable(rt, "finalize at exit", latest);
        zw_xdecref(r);
        zw_decref(latest);
    }
}

static int
finalizer_traverse(zw_obj *o, zw_visit_fn visit, void *arg)
{
    finalizer *f = FIN(o);
    zw_obj *refs[] = {f->ref, f->fn, f->args};
    for (int i = 0; i < 3; i++)
        if (refs[i] != NULL && visit(refs[i], arg))
            return 1;
    return 0;
}

static int
finalizer_clear(zw_obj *o)
{
    finalizer *f = FIN(o);
    ZW_CLEAR(f->ref);
    ZW_CLEAR(f->fn);
    ZW_CLEAR(f->args);
    return 0;
}

static void
finalizer_dealloc(zw_obj *o)
{
    zwi_gc_untrack(o);
    finalizer_clear(o);
    zw_obj_free(o);
}

static const zw_type_spec finalize_spec = {
    .name = "finalize",
    .basicsize = sizeof(finalizer),
    .flags = ZW_TPFLAGS_GC | ZW_TPFLAGS_WEAKREFABLE,
    .dealloc = finalizer_dealloc,
    .traverse = finalizer_traverse,
    .clear = finalizer_clear,
    .weaklist_offset = offsetof(finalizer, weaklist),
};

int
zwi_weakref_init(zw_rt *rt)
{
    zwi_gc_ext *ext = GC_EXT(rt);
    ext->weakref_type = zw_type_new(rt, &weakref_spec);
    ext->finalize_type = ext->weakref_type ? zw_type_new(rt, &finalize_spec) : NULL;
    return ext->finalize_type ? 0 : -1;
}
