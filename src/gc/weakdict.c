/* gc/weakdict.c - weak containers: WeakValueDictionary, WeakKeyDictionary and WeakSet
 * (Lib/weakref.py, Lib/_weakrefset.py) and their iterators. See docs/gc.md#weak-containers.
 *
 * A container keeps its entries in a dict, `data`:
 *   WeakValueDictionary  key -> weakref(value, callback bound to the tuple (selfref, key))
 *   WeakKeyDictionary    weakref(key, callback `remove` bound to selfref) -> value
 *   WeakSet              weakref(item, `remove`) -> None
 * `selfref` is the shared callback-less weakref to the container. The callbacks reach the
 * container only through it, so nothing the container owns refers back to it: a container dies
 * by refcount, and once it is dead, or unreachable in a collection (whose first step clears the
 * weakrefs to garbage), its callbacks do nothing. A dead weakref compares by identity and keeps
 * the hash it had, so a WeakKeyDictionary finds its dead keys without running user code.
 *
 * Invariants, between calls:
 *   guards == iterators not yet exhausted + operations in progress (which may run user code);
 *   guards == 0  =>  pending is empty;
 *   pending holds (lookup key, weakref) pairs: each weakref is dead, stored in data, listed once;
 *   len == zw_dict_len(data) - pairs in pending, unless `sweep` is set.
 * A death while guards > 0 is queued on pending; the guard that brings guards back to 0 applies
 * the queue. So `data` never changes under a walk or a lookup because something died, which is
 * also why a key whose compare slot kills another key cannot upset a deletion (scenario 40). */
#include <string.h>

#include <zerowaste/gc.h>

#include "gc_internal.h"

typedef enum kind { KIND_VALUE, KIND_KEY, KIND_SET, NKINDS } kind;
typedef enum what { ITER_KEYS, ITER_VALUES, ITER_ITEMS, ITER_REFS } what;

typedef struct weakdict {
    zw_obj ob;
    zw_obj *weaklist; /* weak references to this container (selfref among them) */
    zw_obj *data;     /* the dict described above; never NULL in a made container */
    zw_obj *selfref;  /* the callback-less weakref to this container, owned */
    zw_obj *remove;   /* KIND_KEY, KIND_SET: every entry's callback; NULL for KIND_VALUE */
    zw_obj *pending;  /* flat list of (lookup key, dead weakref) pairs; NULL until needed */
    size_t guards;    /* see the invariants above */
    bool sweep;       /* a death could not be queued (no memory): the last guard removes every
                       * dead entry, and len counts that one until then */
    kind kind;
} weakdict;

typedef struct weakiter {
    zw_obj ob;
    zw_obj *container; /* owned; NULL once the walk ended and gave its guard back */
    size_t pos;        /* zw_dict_next position in the container's data */
    size_t used;       /* zw_dict_len(data) when the walk began: another size is a user change */
    what what;
} weakiter;

#define WD(o) ((weakdict *)(o))
#define WI(o) ((weakiter *)(o))

static void weakdict_dealloc(zw_obj *o);
static void weakiter_dealloc(zw_obj *o);
static const zw_type_spec weakdict_specs[NKINDS];
static const zw_type_spec weakiter_spec;

static bool
is_weakdict(const zw_obj *o, kind k)
{
    return o->type->dealloc == weakdict_dealloc && WD(o)->kind == k;
}

/* The type zwi_weakcontainers_init made from `spec` (one of weakdict_specs, or weakiter_spec). */
static zw_type *
find_type(zw_rt *rt, const zw_type_spec *spec)
{
    zwi_gc_ext *ext = GC_EXT(rt);
    size_t i = spec == &weakiter_spec ? NKINDS : (size_t)(spec - weakdict_specs);
    if (ext == NULL || ext->weakcontainer_types[i] == NULL) {
        zw_err_set(rt, ZW_SystemError, "type '%s' missing: the gc layer is not attached",
                   spec->name);
        return NULL;
    }
    return ext->weakcontainer_types[i];
}

/* The referent of weakref `w` as a new reference, or NULL (no error) once it died. */
static zw_obj *
referent(zw_obj *w)
{
    zw_obj *o = zw_weakref_get(w);
    if (zw_is_none(o)) {
        zw_decref(o);
        return NULL;
    }
    return o;
}

static bool
is_dead(zw_obj *w)
{
    zw_obj *o = referent(w);
    zw_xdecref(o);
    return o == NULL;
}

static int
key_error(zw_rt *rt, zw_obj *key)
{
    zw_obj *r = zw_repr(key);
    if (r == NULL)
        return -1;
    const char *text = zw_str_utf8(r, NULL);
    zw_err_set(rt, ZW_KeyError, "%s", text ? text : "?");
    zw_decref(r);
    return -1;
}

/* ---- the removal queue and the guards ---- */

/* 1 if data still holds weakref `w` under lookup key `k`, 0 if not, -1 on error. */
static int
is_stored(weakdict *wd, zw_obj *k, zw_obj *w)
{
    zw_obj *v = zw_dict_get(wd->data, k);
    if (v == NULL)
        return zw_err_occurred(ZWI_RT(&wd->ob)) != ZW_NoError ? -1 : 0;
    return wd->kind == KIND_VALUE ? v == w : 1; /* a dead key matches only itself */
}

static int
remove_if_stored(weakdict *wd, zw_obj *k, zw_obj *w)
{
    int stored = is_stored(wd, k, w);
    return stored <= 0 ? stored : zw_dict_del(wd->data, k);
}

static int
queue_removal(weakdict *wd, zw_obj *k, zw_obj *w)
{
    int stored = is_stored(wd, k, w);
    if (stored <= 0)
        return stored;
    if (wd->pending == NULL) {
        zw_obj *l = zw_list_new(ZWI_RT(&wd->ob), 0); /* may collect, and queue more */
        if (l == NULL)
            return -1;
        if (wd->pending == NULL)
            wd->pending = l;
        else
            zw_decref(l);
    }
    if (zw_list_append(wd->pending, k) != 0)
        return -1;
    if (zw_list_append(wd->pending, w) != 0) {
        zw_decref(zw_list_pop(wd->pending, -1));
        return -1;
    }
    return 0;
}

/* Forgets the queued removal of `w`, whose entry an explicit change just replaced. */
static void
unqueue(weakdict *wd, zw_obj *w)
{
    size_t n = wd->pending ? zw_list_len(wd->pending) : 0;
    for (size_t i = 1; i < n; i += 2) {
        if (zw_list_get(wd->pending, (intptr_t)i) == w) {
            zw_decref(zw_list_pop(wd->pending, (intptr_t)i));
            zw_decref(zw_list_pop(wd->pending, (intptr_t)i - 1));
            return;
        }
    }
}

static size_t
queued(weakdict *wd)
{
    return wd->pending ? zw_list_len(wd->pending) / 2 : 0;
}

/* Removes every entry whose weak side is dead, without allocating (a death that could not be
 * queued for lack of memory left one). Deleting leaves a hole, so the walk's position holds. */
static void
sweep_dead(weakdict *wd)
{
    zw_rt *rt = ZWI_RT(&wd->ob);
    size_t pos = 0;
    zw_obj *k;
    zw_obj *v;
    wd->sweep = false;
    while (wd->guards == 1 && zw_dict_next(wd->data, &pos, &k, &v)) {
        zw_obj *w = wd->kind == KIND_VALUE ? v : k;
        if (!is_dead(w))
            continue;
        zw_incref(k);
        zw_incref(w);
        if (remove_if_stored(wd, k, w) != 0)
            zwi_gc_write_unraisable(rt, "weak container removal", &wd->ob);
        zw_decref(w);
        zw_decref(k);
    }
}

/* Applies the queue, newest first. Runs with guards == 1 (the caller's), so deaths caused by
 * its own lookups queue behind and are applied by the same loop; stops early if user code
 * started a walk. An error pending in the caller survives; the loop's own are reported. */
static void
commit_removals(weakdict *wd)
{
    zw_rt *rt = ZWI_RT(&wd->ob);
    zw_exc saved = rt->exc;
    char msg[sizeof(rt->errmsg)];
    if (saved != ZW_NoError)
        memcpy(msg, rt->errmsg, sizeof(msg));
    rt->exc = ZW_NoError;
    while (wd->guards == 1 && queued(wd) > 0) {
        zw_obj *w = zw_list_pop(wd->pending, -1);
        zw_obj *k = zw_list_pop(wd->pending, -1);
        if (remove_if_stored(wd, k, w) != 0)
            zwi_gc_write_unraisable(rt, "weak container removal", &wd->ob);
        zw_decref(k);
        zw_decref(w);
    }
    if (wd->guards == 1 && wd->sweep)
        sweep_dead(wd);
    rt->exc = saved;
    if (saved != ZW_NoError)
        memcpy(rt->errmsg, msg, sizeof(msg));
}

/* A walk's guard: the walk holds its own (traversed) reference to the container. */
static void
guard_enter(weakdict *wd)
{
    wd->guards++;
}

static void
guard_leave(weakdict *wd)
{
    ZW_ASSERT(wd->guards > 0);
    if (wd->guards == 1 && (queued(wd) > 0 || wd->sweep))
        commit_removals(wd);
    wd->guards--;
}

/* An operation's guard, with a reference: user code it runs may drop the caller's. */
static void
op_begin(weakdict *wd)
{
    zw_incref(&wd->ob);
    guard_enter(wd);
}

static void
op_end(weakdict *wd)
{
    guard_leave(wd);
    zw_decref(&wd->ob);
}

/* ---- the callbacks ---- */

/* The weak side of an entry died: `w` is its weakref, stored under lookup key `k`. */
static int
entry_died(zw_obj *selfref, zw_obj *k, zw_obj *w)
{
    zw_obj *c = referent(selfref);
    if (c == NULL)
        return 0; /* the container died first */
    weakdict *wd = WD(c);
    int rc;
    if (wd->guards > 0) {
        rc = queue_removal(wd, k, w);
        if (rc != 0 && zw_err_occurred(ZWI_RT(c)) == ZW_MemoryError) {
            zw_err_clear(ZWI_RT(c));
            wd->sweep = true;
            rc = 0;
        }
    } else {
        op_begin(wd);
        rc = remove_if_stored(wd, k, w);
        op_end(wd);
    }
    zw_decref(c);
    return rc;
}

/* A WeakValueDictionary entry's callback: self is the tuple (selfref, key). */
static zw_obj *
value_died(zw_obj *self, zw_obj *const *args, size_t nargs)
{
    if (entry_died(zw_tuple_get(self, 0), zw_tuple_get(self, 1), args[0]) != 0)
        return NULL;
    return zw_newref(zw_none(ZWI_RT(self)));
}

/* A WeakKeyDictionary's or WeakSet's callback: self is selfref; the dead weakref is the key. */
static zw_obj *
key_died(zw_obj *self, zw_obj *const *args, size_t nargs)
{
    if (entry_died(self, args[0], args[0]) != 0)
        return NULL;
    return zw_newref(zw_none(ZWI_RT(self)));
}

static const zw_method value_died_def = {"WeakValueDictionary.remove", value_died, 1, NULL};
static const zw_method key_died_def = {"WeakKeyDictionary.remove", key_died, 1, NULL};

/* ---- walking ---- */

/* The next live entry at or after *pos: new references to its key and value (the weak side
 * resolved) and, borrowed, its weakref. False at the end. */
static bool
next_live(weakdict *wd, size_t *pos, zw_obj **key, zw_obj **value, zw_obj **ref)
{
    zw_obj *k;
    zw_obj *v;
    while (zw_dict_next(wd->data, pos, &k, &v)) {
        zw_obj *w = wd->kind == KIND_VALUE ? v : k;
        zw_obj *o = referent(w);
        if (o == NULL)
            continue; /* queued */
        *key = wd->kind == KIND_VALUE ? zw_newref(k) : o;
        *value = wd->kind == KIND_VALUE ? o : zw_newref(v);
        *ref = w;
        return true;
    }
    return false;
}

/* What a walk yields for one entry: a new reference (takes key and value). */
static zw_obj *
walk_item(zw_rt *rt, what what, zw_obj *key, zw_obj *value, zw_obj *ref)
{
    zw_obj *r = NULL;
    switch (what) {
    case ITER_KEYS:
        r = zw_newref(key);
        break;
    case ITER_VALUES:
        r = zw_newref(value);
        break;
    case ITER_ITEMS:
        r = zw_tuple_pack(rt, 2, key, value);
        break;
    case ITER_REFS:
        r = zw_newref(ref);
        break;
    }
    zw_decref(key);
    zw_decref(value);
    return r;
}

/* A new list of what a walk of the live entries yields. */
static zw_obj *
snapshot(weakdict *wd, what what)
{
    zw_rt *rt = ZWI_RT(&wd->ob);
    zw_obj *l = zw_list_new(rt, 0);
    if (l == NULL)
        return NULL;
    op_begin(wd);
    size_t pos = 0;
    zw_obj *k;
    zw_obj *v;
    zw_obj *w;
    while (next_live(wd, &pos, &k, &v, &w)) {
        zw_obj *item = walk_item(rt, what, k, v, w);
        if (item == NULL || zw_list_append(l, item) != 0) {
            zw_xdecref(item);
            ZW_CLEAR(l);
            break;
        }
        zw_decref(item);
    }
    op_end(wd);
    return l;
}

/* The last live entry (new references), removed. 0, or -1 with KeyError. O(len): the dict
 * API has no popitem, so the walk goes from the first entry. */
static int
popitem(weakdict *wd, zw_obj **key, zw_obj **value)
{
    zw_rt *rt = ZWI_RT(&wd->ob);
    op_begin(wd);
    size_t pos = 0;
    zw_obj *k = NULL;
    zw_obj *v = NULL;
    zw_obj *w = NULL;
    zw_obj *lk;
    zw_obj *lv;
    zw_obj *lw;
    while (next_live(wd, &pos, &lk, &lv, &lw)) {
        zw_xdecref(k);
        zw_xdecref(v);
        zw_xdecref(w);
        k = lk;
        v = lv;
        w = zw_newref(lw);
    }
    int rc = -1;
    if (k == NULL) {
        zw_err_set(rt, ZW_KeyError, "popitem(): dictionary is empty");
    } else {
        rc = zw_dict_del(wd->data, wd->kind == KIND_VALUE ? k : w);
        zw_decref(w);
        if (rc == 0) {
            *key = k;
            *value = v;
        } else {
            zw_decref(k);
            zw_decref(v);
        }
    }
    op_end(wd);
    return rc;
}

/* ---- the iterator type ---- */

static zw_obj *
weakiter_new(zw_obj *container, what what)
{
    zw_rt *rt = ZWI_RT(container);
    zw_type *t = find_type(rt, &weakiter_spec);
    weakiter *it = t ? (weakiter *)zw_obj_alloc(t, 0) : NULL;
    if (it == NULL)
        return NULL;
    weakdict *wd = WD(container);
    it->container = zw_newref(container);
    it->what = what;
    guard_enter(wd);
    it->used = zw_dict_len(wd->data);
    zwi_gc_track(&it->ob);
    return &it->ob;
}

/* Gives back the walk's guard (applying the queue if it was the last) and the container. */
static void
end_walk(weakiter *it)
{
    zw_obj *c = it->container;
    if (c == NULL)
        return;
    it->container = NULL;
    guard_leave(WD(c));
    zw_decref(c);
}

static zw_obj *
weakiter_next(zw_obj *o)
{
    weakiter *it = WI(o);
    if (it->container == NULL)
        return NULL;
    weakdict *wd = WD(it->container);
    zw_rt *rt = ZWI_RT(o);
    if (zw_dict_len(wd->data) != it->used) {
        zw_err_set(rt, ZW_RuntimeError, "%s changed size during iteration",
                   zw_type_name(wd->ob.type));
        end_walk(it);
        return NULL;
    }
    zw_obj *k;
    zw_obj *v;
    zw_obj *w;
    if (!next_live(wd, &it->pos, &k, &v, &w)) {
        end_walk(it);
        return NULL;
    }
    return walk_item(rt, it->what, k, v, w);
}

static int
weakiter_traverse(zw_obj *o, zw_visit_fn visit, void *arg)
{
    return WI(o)->container ? visit(WI(o)->container, arg) : 0;
}

static int
weakiter_clear(zw_obj *o)
{
    end_walk(WI(o));
    return 0;
}

static void
weakiter_dealloc(zw_obj *o)
{
    zwi_gc_untrack(o);
    end_walk(WI(o));
    zw_obj_free(o);
}

static const zw_type_spec weakiter_spec = {
    .name = "weak_container_iterator",
    .basicsize = sizeof(weakiter),
    .flags = ZW_TPFLAGS_GC,
    .dealloc = weakiter_dealloc,
    .traverse = weakiter_traverse,
    .clear = weakiter_clear,
    .next = weakiter_next,
};

/* ---- the container types ---- */

static zw_obj *
weakdict_new(zw_rt *rt, kind kind)
{
    zw_type *t = find_type(rt, &weakdict_specs[kind]);
    weakdict *wd = t ? (weakdict *)zw_obj_alloc(t, 0) : NULL;
    if (wd == NULL)
        return NULL;
    wd->kind = kind;
    if ((wd->data = zw_dict_new(rt)) == NULL)
        goto out_free;
    if ((wd->selfref = zw_weakref_new(&wd->ob, NULL)) == NULL)
        goto out_free;
    if (kind != KIND_VALUE && (wd->remove = zw_func_new(rt, &key_died_def, wd->selfref)) == NULL)
        goto out_free;
    zwi_gc_track(&wd->ob);
    return &wd->ob;
out_free:
    zw_decref(&wd->ob);
    return NULL;
}

static int
weakdict_traverse(zw_obj *o, zw_visit_fn visit, void *arg)
{
    weakdict *wd = WD(o);
    zw_obj *refs[] = {wd->data, wd->selfref, wd->remove, wd->pending};
    for (size_t i = 0; i < sizeof(refs) / sizeof(refs[0]); i++)
        if (refs[i] != NULL && visit(refs[i], arg))
            return 1;
    return 0;
}

/* The collector breaks cycles through the entries; the container stays a valid empty one
 * (a live iterator of it may still end its walk). selfref and remove form no cycle. */
static int
weakdict_clear(zw_obj *o)
{
    weakdict *wd = WD(o);
    ZW_CLEAR(wd->pending);
    if (wd->data != NULL)
        zw_dict_clear(wd->data);
    return 0;
}

static void
weakdict_dealloc(zw_obj *o)
{
    weakdict *wd = WD(o);
    ZW_ASSERT(wd->guards == 0); /* walks and operations hold a reference */
    zwi_gc_untrack(o);
    ZW_CLEAR(wd->pending);
    ZW_CLEAR(wd->data);
    ZW_CLEAR(wd->remove);
    ZW_CLEAR(wd->selfref);
    zw_obj_free(o);
}

static zw_obj *
weakdict_repr(zw_obj *o)
{
    return zw_str_from_format(ZWI_RT(o), "<%s at %p>", zw_type_name(o->type), (void *)o);
}

static zw_obj *
weakdict_iter(zw_obj *o)
{
    return weakiter_new(o, ITER_KEYS);
}

#define WEAKDICT_SPEC(pyname)                                                                      \
    {                                                                                              \
        .name = pyname, .basicsize = sizeof(weakdict),                                             \
        .flags = ZW_TPFLAGS_GC | ZW_TPFLAGS_WEAKREFABLE, .dealloc = weakdict_dealloc,              \
        .traverse = weakdict_traverse, .clear = weakdict_clear, .repr = weakdict_repr,             \
        .iter = weakdict_iter, .weaklist_offset = offsetof(weakdict, weaklist),                    \
    }
static const zw_type_spec weakdict_specs[NKINDS] = {
    [KIND_VALUE] = WEAKDICT_SPEC("WeakValueDictionary"),
    [KIND_KEY] = WEAKDICT_SPEC("WeakKeyDictionary"),
    [KIND_SET] = WEAKDICT_SPEC("WeakSet"),
};

int
zwi_weakcontainers_init(zw_rt *rt)
{
    zwi_gc_ext *ext = GC_EXT(rt);
    for (int k = 0; k < NKINDS; k++)
        if ((ext->weakcontainer_types[k] = zw_type_new(rt, &weakdict_specs[k])) == NULL)
            return -1;
    ext->weakcontainer_types[NKINDS] = zw_type_new(rt, &weakiter_spec);
    return ext->weakcontainer_types[NKINDS] ? 0 : -1;
}

/* ---- operations shared by the three kinds ---- */

static size_t
weakdict_len(zw_obj *o)
{
    return zw_dict_len(WD(o)->data) - queued(WD(o));
}

/* Stores `w` (a new weakref with its callback) as the entry of lookup key `k` with value `v`:
 * data[k] = w for values, data[w] = v for keys. 0 or -1. */
static int
store(weakdict *wd, zw_obj *k, zw_obj *w, zw_obj *v)
{
    if (wd->kind != KIND_VALUE)
        return zw_dict_set(wd->data, w, v); /* an equal live key stays, as dict keeps it */
    zw_obj *old = zw_dict_get(wd->data, k);
    if (old == NULL && zw_err_occurred(ZWI_RT(&wd->ob)) != ZW_NoError)
        return -1;
    zw_xincref(old);
    int rc = zw_dict_set(wd->data, k, w);
    if (rc == 0 && old != NULL && is_dead(old))
        unqueue(wd, old); /* its entry now holds a live value */
    zw_xdecref(old);
    return rc;
}

/* The value stored for lookup key `k` (the weak side resolved for values): a new reference,
 * NULL with no error when absent or dead. */
static zw_obj *
lookup_live(weakdict *wd, zw_obj *k)
{
    op_begin(wd);
    zw_obj *v = zw_dict_get(wd->data, k);
    if (v != NULL)
        v = wd->kind == KIND_VALUE ? referent(v) : zw_newref(v);
    op_end(wd);
    return v;
}

/* Removes the live entry of lookup key `k` and returns its value (new), or NULL: absent or
 * dead (no error; a dead entry stays queued) or failed (error set). */
static zw_obj *
pop_live(weakdict *wd, zw_obj *k)
{
    op_begin(wd);
    zw_obj *v = lookup_live(wd, k);
    if (v != NULL && zw_dict_del(wd->data, k) != 0)
        ZW_CLEAR(v);
    op_end(wd);
    return v;
}

static zw_obj *
pop_or_default(weakdict *wd, zw_obj *k, zw_obj *key, zw_obj *default_)
{
    zw_rt *rt = ZWI_RT(&wd->ob);
    zw_obj *v = pop_live(wd, k);
    if (v != NULL || zw_err_occurred(rt) != ZW_NoError)
        return v;
    if (default_ != NULL)
        return zw_newref(default_);
    key_error(rt, key);
    return NULL;
}

/* A new callback-less weakref to `key`, to look a weak key up (the shared one if it exists). */
static zw_obj *
probe(zw_obj *key)
{
    return zw_weakref_new(key, NULL);
}

static bool
weakrefable(const zw_obj *o)
{
    return (zw_type_flags(zw_type_of(o)) & ZW_TPFLAGS_WEAKREFABLE) != 0;
}

/* ---- WeakValueDictionary ---- */

zw_obj *
zw_weakvaluedict_new(zw_rt *rt)
{
    return weakdict_new(rt, KIND_VALUE);
}

bool
zw_weakvaluedict_check(const zw_obj *o)
{
    return is_weakdict(o, KIND_VALUE);
}

int
zw_weakvaluedict_set(zw_obj *o, zw_obj *key, zw_obj *value)
{
    ZW_ASSERT(is_weakdict(o, KIND_VALUE));
    weakdict *wd = WD(o);
    zw_rt *rt = ZWI_RT(o);
    if (!weakrefable(value))
        return zw_err_set(rt, ZW_TypeError, "cannot create weak reference to '%s' object",
                          zw_type_name(zw_type_of(value)));
    zw_obj *pair = zw_tuple_pack(rt, 2, wd->selfref, key);
    zw_obj *cb = pair ? zw_func_new(rt, &value_died_def, pair) : NULL;
    zw_obj *w = cb ? zw_weakref_new(value, cb) : NULL;
    zw_xdecref(cb);
    zw_xdecref(pair);
    if (w == NULL)
        return -1;
    op_begin(wd);
    int rc = store(wd, key, w, value);
    op_end(wd);
    zw_decref(w);
    return rc;
}

zw_obj *
zw_weakvaluedict_get(zw_obj *o, zw_obj *key)
{
    ZW_ASSERT(is_weakdict(o, KIND_VALUE));
    return lookup_live(WD(o), key);
}

int
zw_weakvaluedict_del(zw_obj *o, zw_obj *key)
{
    ZW_ASSERT(is_weakdict(o, KIND_VALUE));
    zw_rt *rt = ZWI_RT(o);
    zw_obj *v = pop_live(WD(o), key);
    if (v == NULL)
        return zw_err_occurred(rt) != ZW_NoError ? -1 : key_error(rt, key);
    zw_decref(v);
    return 0;
}

int
zw_weakvaluedict_contains(zw_obj *o, zw_obj *key)
{
    ZW_ASSERT(is_weakdict(o, KIND_VALUE));
    zw_obj *v = lookup_live(WD(o), key);
    if (v == NULL)
        return zw_err_occurred(ZWI_RT(o)) != ZW_NoError ? -1 : 0;
    zw_decref(v);
    return 1;
}

size_t
zw_weakvaluedict_len(zw_obj *o)
{
    ZW_ASSERT(is_weakdict(o, KIND_VALUE));
    return weakdict_len(o);
}

zw_obj *
zw_weakvaluedict_copy(zw_obj *o)
{
    ZW_ASSERT(is_weakdict(o, KIND_VALUE));
    zw_obj *c = zw_weakvaluedict_new(ZWI_RT(o));
    if (c != NULL && zw_weakvaluedict_update(c, o) != 0)
        ZW_CLEAR(c);
    return c;
}

zw_obj *
zw_weakvaluedict_keys_iter(zw_obj *o)
{
    ZW_ASSERT(is_weakdict(o, KIND_VALUE));
    return weakiter_new(o, ITER_KEYS);
}

zw_obj *
zw_weakvaluedict_values_iter(zw_obj *o)
{
    ZW_ASSERT(is_weakdict(o, KIND_VALUE));
    return weakiter_new(o, ITER_VALUES);
}

zw_obj *
zw_weakvaluedict_items_iter(zw_obj *o)
{
    ZW_ASSERT(is_weakdict(o, KIND_VALUE));
    return weakiter_new(o, ITER_ITEMS);
}

zw_obj *
zw_weakvaluedict_valuerefs(zw_obj *o)
{
    ZW_ASSERT(is_weakdict(o, KIND_VALUE));
    return snapshot(WD(o), ITER_REFS);
}

zw_obj *
zw_weakvaluedict_setdefault(zw_obj *o, zw_obj *key, zw_obj *default_)
{
    ZW_ASSERT(is_weakdict(o, KIND_VALUE));
    zw_obj *v = lookup_live(WD(o), key);
    if (v != NULL || zw_err_occurred(ZWI_RT(o)) != ZW_NoError)
        return v;
    if (zw_weakvaluedict_set(o, key, default_) != 0)
        return NULL;
    return zw_newref(default_);
}

zw_obj *
zw_weakvaluedict_pop(zw_obj *o, zw_obj *key, zw_obj *default_)
{
    ZW_ASSERT(is_weakdict(o, KIND_VALUE));
    return pop_or_default(WD(o), key, key, default_);
}

int
zw_weakvaluedict_popitem(zw_obj *o, zw_obj **key, zw_obj **value)
{
    ZW_ASSERT(is_weakdict(o, KIND_VALUE));
    return popitem(WD(o), key, value);
}

/* Calls set(wd, key, value) for each entry of a dict, or each live entry of a container of
 * kind `k`. */
static int
update_from(zw_obj *o, zw_obj *other, kind k, int (*set)(zw_obj *, zw_obj *, zw_obj *))
{
    zw_rt *rt = ZWI_RT(o);
    if (zw_dict_check(other)) {
        size_t pos = 0;
        zw_obj *key;
        zw_obj *value;
        int rc = 0;
        zw_incref(other);
        while (rc == 0 && zw_dict_next(other, &pos, &key, &value)) {
            zw_incref(key);
            zw_incref(value);
            rc = set(o, key, value);
            zw_decref(key);
            zw_decref(value);
        }
        zw_decref(other);
        return rc;
    }
    if (!is_weakdict(other, k))
        return zw_err_set(rt, ZW_TypeError, "%s.update() needs a dict or a %s, not '%s'",
                          zw_type_name(o->type), zw_type_name(o->type), zw_type_name(other->type));
    zw_obj *items = snapshot(WD(other), ITER_ITEMS);
    if (items == NULL)
        return -1;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < zw_list_len(items); i++) {
        zw_obj *item = zw_list_get(items, (intptr_t)i);
        rc = set(o, zw_tuple_get(item, 0), zw_tuple_get(item, 1));
    }
    zw_decref(items);
    return rc;
}

int
zw_weakvaluedict_update(zw_obj *o, zw_obj *other)
{
    ZW_ASSERT(is_weakdict(o, KIND_VALUE));
    return update_from(o, other, KIND_VALUE, zw_weakvaluedict_set);
}

/* ---- WeakKeyDictionary ---- */

zw_obj *
zw_weakkeydict_new(zw_rt *rt)
{
    return weakdict_new(rt, KIND_KEY);
}

bool
zw_weakkeydict_check(const zw_obj *o)
{
    return is_weakdict(o, KIND_KEY);
}

/* data[weakref(key, remove)] = value, for keys and sets. */
static int
store_key(weakdict *wd, zw_obj *key, zw_obj *value)
{
    zw_obj *w = zw_weakref_new(key, wd->remove);
    if (w == NULL)
        return -1;
    op_begin(wd);
    int rc = store(wd, w, w, value);
    op_end(wd);
    zw_decref(w);
    return rc;
}

int
zw_weakkeydict_set(zw_obj *o, zw_obj *key, zw_obj *value)
{
    ZW_ASSERT(is_weakdict(o, KIND_KEY));
    return store_key(WD(o), key, value);
}

zw_obj *
zw_weakkeydict_get(zw_obj *o, zw_obj *key)
{
    ZW_ASSERT(is_weakdict(o, KIND_KEY));
    zw_obj *p = probe(key);
    if (p == NULL)
        return NULL;
    zw_obj *v = lookup_live(WD(o), p);
    zw_decref(p);
    return v;
}

int
zw_weakkeydict_del(zw_obj *o, zw_obj *key)
{
    ZW_ASSERT(is_weakdict(o, KIND_KEY));
    zw_obj *p = probe(key);
    if (p == NULL)
        return -1;
    weakdict *wd = WD(o);
    op_begin(wd);
    int rc = zw_dict_del(wd->data, p);
    op_end(wd);
    zw_decref(p);
    return rc;
}

/* key in the container: 1, 0 (also for keys that take no weakref), -1 on error. */
static int
contains_key(weakdict *wd, zw_obj *key)
{
    if (!weakrefable(key))
        return 0;
    zw_obj *p = probe(key);
    if (p == NULL)
        return -1;
    op_begin(wd);
    int rc = zw_dict_contains(wd->data, p);
    op_end(wd);
    zw_decref(p);
    return rc;
}

int
zw_weakkeydict_contains(zw_obj *o, zw_obj *key)
{
    ZW_ASSERT(is_weakdict(o, KIND_KEY));
    return contains_key(WD(o), key);
}

size_t
zw_weakkeydict_len(zw_obj *o)
{
    ZW_ASSERT(is_weakdict(o, KIND_KEY));
    return weakdict_len(o);
}

zw_obj *
zw_weakkeydict_copy(zw_obj *o)
{
    ZW_ASSERT(is_weakdict(o, KIND_KEY));
    zw_obj *c = zw_weakkeydict_new(ZWI_RT(o));
    if (c != NULL && zw_weakkeydict_update(c, o) != 0)
        ZW_CLEAR(c);
    return c;
}

zw_obj *
zw_weakkeydict_keys_iter(zw_obj *o)
{
    ZW_ASSERT(is_weakdict(o, KIND_KEY));
    return weakiter_new(o, ITER_KEYS);
}

zw_obj *
zw_weakkeydict_values_iter(zw_obj *o)
{
    ZW_ASSERT(is_weakdict(o, KIND_KEY));
    return weakiter_new(o, ITER_VALUES);
}

zw_obj *
zw_weakkeydict_items_iter(zw_obj *o)
{
    ZW_ASSERT(is_weakdict(o, KIND_KEY));
    return weakiter_new(o, ITER_ITEMS);
}

zw_obj *
zw_weakkeydict_keyrefs(zw_obj *o)
{
    ZW_ASSERT(is_weakdict(o, KIND_KEY));
    return snapshot(WD(o), ITER_REFS);
}

zw_obj *
zw_weakkeydict_setdefault(zw_obj *o, zw_obj *key, zw_obj *default_)
{
    ZW_ASSERT(is_weakdict(o, KIND_KEY));
    zw_obj *v = zw_weakkeydict_get(o, key);
    if (v != NULL || zw_err_occurred(ZWI_RT(o)) != ZW_NoError)
        return v;
    if (zw_weakkeydict_set(o, key, default_) != 0)
        return NULL;
    return zw_newref(default_);
}

zw_obj *
zw_weakkeydict_pop(zw_obj *o, zw_obj *key, zw_obj *default_)
{
    ZW_ASSERT(is_weakdict(o, KIND_KEY));
    zw_obj *p = probe(key);
    if (p == NULL)
        return NULL;
    zw_obj *v = pop_or_default(WD(o), p, key, default_);
    zw_decref(p);
    return v;
}

int
zw_weakkeydict_popitem(zw_obj *o, zw_obj **key, zw_obj **value)
{
    ZW_ASSERT(is_weakdict(o, KIND_KEY));
    return popitem(WD(o), key, value);
}

int
zw_weakkeydict_update(zw_obj *o, zw_obj *other)
{
    ZW_ASSERT(is_weakdict(o, KIND_KEY));
    return update_from(o, other, KIND_KEY, zw_weakkeydict_set);
}

/* ---- WeakSet ---- */

zw_obj *
zw_weakset_new(zw_rt *rt)
{
    return weakdict_new(rt, KIND_SET);
}

bool
zw_weakset_check(const zw_obj *o)
{
    return is_weakdict(o, KIND_SET);
}

int
zw_weakset_add(zw_obj *o, zw_obj *item)
{
    ZW_ASSERT(is_weakdict(o, KIND_SET));
    return store_key(WD(o), item, zw_none(ZWI_RT(o)));
}

int
zw_weakset_discard(zw_obj *o, zw_obj *item)
{
    ZW_ASSERT(is_weakdict(o, KIND_SET));
    if (!weakrefable(item))
        return 0;
    zw_obj *p = probe(item);
    if (p == NULL)
        return -1;
    zw_obj *v = pop_live(WD(o), p);
    zw_decref(p);
    zw_xdecref(v);
    return v != NULL || zw_err_occurred(ZWI_RT(o)) == ZW_NoError ? 0 : -1;
}

int
zw_weakset_contains(zw_obj *o, zw_obj *item)
{
    ZW_ASSERT(is_weakdict(o, KIND_SET));
    return contains_key(WD(o), item);
}

size_t
zw_weakset_len(zw_obj *o)
{
    ZW_ASSERT(is_weakdict(o, KIND_SET));
    return weakdict_len(o);
}

zw_obj *
zw_weakset_iter(zw_obj *o)
{
    ZW_ASSERT(is_weakdict(o, KIND_SET));
    return weakiter_new(o, ITER_KEYS);
}
