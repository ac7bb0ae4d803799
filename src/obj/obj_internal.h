/* obj/obj_internal.h - the runtime and the layouts of the built-in types, shared by the files
 * of the obj layer (and read by gc, the layer above).
 *
 * Memory of an object, as CPython 3.11 lays it out (docs/obj.md#layout):
 *
 *   [values ptr][dict ptr]   managed-dict classes only (ZW_TPFLAGS_MANAGED_DICT), 16 bytes
 *   [gc next][gc prev]       GC types only (ZW_TPFLAGS_GC), 16 bytes
 *   [refcnt][type]           every object, 16 bytes  <- the zw_obj * points here
 *   [size]                   variable-size types, 8 bytes
 *   payload
 *
 * type->preheader is the number of bytes in front of the object (0, 16 or 32); the block the
 * heap handed out starts at (char *)o - type->preheader.
 *
 * Every object's memory comes from its runtime's heap through zwi_rt_malloc (which counts,
 * injects faults and sets MemoryError). Singletons (None, True, False, small ints, the empty
 * tuple and str) live inside the zw_rt struct, outside the heap, as CPython's static objects
 * live outside pymalloc: they never count as allocated blocks. */
#ifndef ZW_OBJ_INTERNAL_H
#define ZW_OBJ_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <zerowaste/obj.h>
#include <zerowaste/raw.h>

#include "mem_internal.h"
#include "zw_assert.h"

/* The count of an immortal object (singletons, types). Far from 0 and from overflow, so
 * incref/decref need no test, as in CPython 3.11. */
#define ZWI_IMMORTAL_REFCNT ((intptr_t)1 << 40)

/* ---- the GC header ---- */

/* In front of every object of a GC type. next == 0 <=> untracked. The two low bits of prev
 * are flags (objects are 16-byte aligned, so the bits are free). */
typedef struct zwi_gchead {
    uintptr_t next; /* next in the generation list (a zwi_gchead *), or 0: untracked */
    uintptr_t prev; /* previous in the list | flags */
} zwi_gchead;

#define ZWI_GC_FINALIZED  ((uintptr_t)1) /* the finalize slot already ran (PEP 442) */
#define ZWI_GC_COLLECTING ((uintptr_t)2) /* in the generation being collected */
#define ZWI_GC_FLAGS      ((uintptr_t)3)

#define ZWI_GC_HEAD(o)  ((zwi_gchead *)(o)-1)
#define ZWI_GC_OBJ(g)   ((zw_obj *)((zwi_gchead *)(g) + 1))
#define ZWI_IS_GC(o)    (((o)->type->flags & ZW_TPFLAGS_GC) != 0)
#define ZWI_TRACKED(o)  (ZWI_GC_HEAD(o)->next != 0)

#define ZWI_NGEN 3

/* One generation: a circular list through zwi_gchead with `head` as its sentinel. */
typedef struct zwi_gen {
    zwi_gchead head;
    int threshold; /* collect when count exceeds it */
    int count;     /* gen 0: allocations - deallocations of GC objects; older: collections
                    * of the generation below since this one was collected */
} zwi_gen;

/* ---- the collector's interface (docs/architecture.md#layers-and-what-each-may-call) ----
 *
 * gc sits above obj: it may read everything in this header, obj never names a gc function.
 * The two meet here:
 *   - the generation lists and counts below are obj's: obj links each new GC object into gen 0
 *     and counts it (inline, on every allocation), unlinks it at its death, and gc moves objects
 *     between the lists while it collects (with its own list operations, gc_internal.h);
 *   - obj calls gc only through hooks that gc installs: zwi_gc_hooks, once per process, for a
 *     runtime's birth and end, and the two per-runtime hooks of zwi_gcstate that `attach` sets;
 *   - `ext` is gc's own state, allocated and freed by gc, opaque to obj.
 * Without gc linked in (a static link that names no gc function) no hooks are installed: the
 * runtime works by reference counting alone, as before the collector attaches. */

/* The collector's state kept by obj. The gc layer (src/gc) runs the collections; obj only
 * keeps the lists and counts on allocation, and calls `collect_hook` when gen 0 fills. */
typedef struct zwi_gcstate {
    zwi_gen gen[ZWI_NGEN];
    zwi_gchead permanent;   /* frozen objects (gc.freeze) */
    bool enabled;           /* automatic collection */
    bool collecting;        /* a collection is running (no automatic one may start) */
    bool stress;            /* ZW_GC_STRESS: collect at every allocation of a GC object */
    void (*collect_hook)(zw_rt *rt); /* set by gc's attach; NULL: nothing collects */
    /* called by zw_dealloc for an object with weak references, before its dealloc; set by
     * gc's attach */
    void (*clear_weakrefs_hook)(zw_obj *o);
    void *ext;              /* the gc layer's own state, NULL until attach */
} zwi_gcstate;

/* The collector's entry points for a runtime's life, installed by the gc layer. */
typedef struct zwi_gc_hooks {
    /* End of zw_rt_new, once the built-in types exist: makes `ext` and sets the two hooks of
     * zwi_gcstate. 0, or -1 and zw_rt_new fails. */
    int (*attach)(zw_rt *rt);
    /* First thing in zw_rt_free: atexit finalizers, a last collection, gc.garbage, `ext` freed. */
    void (*detach)(zw_rt *rt);
} zwi_gc_hooks;

/* Installs the collector for every runtime made afterwards (runtime.c keeps the pointer, the
 * one process-wide state of obj). The gc layer calls it from a constructor, before main and
 * before any other constructor of the program can make a runtime; `hooks` lives as long as the
 * process. */
ZW_HIDDEN void zwi_obj_install_gc(const zwi_gc_hooks *hooks);

/* ---- types ---- */

struct zw_type {
    zw_obj ob;            /* types are immortal objects of type `type` */
    zw_rt *rt;            /* the runtime that owns the type */
    char *name;           /* owned copy */
    size_t basicsize;     /* bytes from the object header on */
    size_t itemsize;      /* bytes per item, or 0 */
    unsigned flags;       /* enum zw_type_flags; kind flags inherited from the base */
    size_t preheader;     /* 0, 16 or 32: bytes in front of the object */
    zw_type *base;        /* NULL only for `object` */
    void (*dealloc)(zw_obj *);
    int (*traverse)(zw_obj *, zw_visit_fn, void *);
    int (*clear)(zw_obj *);
    void (*finalize)(zw_obj *);
    zw_obj *(*repr)(zw_obj *);
    int64_t (*hash)(zw_obj *);
    int (*compare)(zw_obj *, zw_obj *, zw_cmp);
    zw_obj *(*iter)(zw_obj *);
    zw_obj *(*next)(zw_obj *);
    size_t (*size_of)(zw_obj *);
    const zw_method *methods; /* NULL-terminated table, or NULL */
    size_t weaklist_offset;   /* WEAKREFABLE types: where the weak reference list is */
    void (*legacy_del)(zw_obj *);
    /* ---- user classes (ZW_TPFLAGS_HEAPTYPE) ---- */
    zw_class_layout layout;
    size_t nfields;            /* slots / namedtuple fields / __init__ names */
    zw_obj **fields;           /* interned field names (owned) */
    zw_method *own_methods;    /* owned copy of the spec's methods */
    struct zwi_shared_keys *shared; /* LAYOUT_DICT: attribute names shared by instances */
    zw_type *next_type;        /* the runtime's list of types, newest first */
};

/* ---- built-in layouts (sizes are CPython 3.11's on 64-bit) ---- */

typedef uint32_t zwi_digit;
#define ZWI_DIGIT_BITS 30
#define ZWI_DIGIT_BASE ((zwi_digit)1 << ZWI_DIGIT_BITS)
#define ZWI_DIGIT_MASK (ZWI_DIGIT_BASE - 1)

/* int: |size| digits of 30 bits, least significant first; the sign of size is the sign of the
 * number; 0 has size 0 but one digit allocated (28 bytes, as 3.11). */
typedef struct zwi_int {
    zw_varobj vo;
    zwi_digit digits[1];
} zwi_int; /* offsetof(digits) == 24 */
#define ZWI_INT_BASICSIZE 24
#define ZWI_SMALL_NEG     5   /* small ints -5 .. 256 are singletons */
#define ZWI_SMALL_POS     257
#define ZWI_NSMALL        (ZWI_SMALL_NEG + ZWI_SMALL_POS)

typedef struct zwi_float {
    zw_obj ob;
    double value;
} zwi_float; /* 24 */

/* str: a 48-byte header for ASCII text, 72 for the rest, then length + 1 code units of
 * `kind` bytes (the last is 0). The reserved words are where 3.11 keeps its wstr fields; we
 * keep the room so that every size equals 3.11's (docs/obj.md#str). */
typedef struct zwi_str {
    zw_obj ob;
    intptr_t length; /* code points */
    int64_t hash;    /* -1 until computed */
    uint32_t state;  /* ZWI_STR_* bits below */
    uint32_t pad_;
    void *reserved_; /* 3.11: wstr */
} zwi_str;           /* 48 */

typedef struct zwi_ustr {
    zwi_str base;
    intptr_t utf8_length; /* bytes of utf8, without the NUL */
    char *utf8;           /* cached UTF-8 (from the heap), or NULL until asked for */
    intptr_t reserved_;   /* 3.11: wstr_length */
} zwi_ustr;               /* 72 */

#define ZWI_STR_KIND_MASK 7u         /* 1, 2 or 4 bytes per code point */
#define ZWI_STR_ASCII     (1u << 3)  /* every code point < 128: data after the 48-byte header */
#define ZWI_STR_INTERNED  (1u << 4)  /* in the runtime's interned table */
#define ZWI_STR_STATIC    (1u << 5)  /* a singleton inside zw_rt (immortal) */

#define ZWI_STR(o)       ((zwi_str *)(o))
#define ZWI_STR_KIND(o)  (ZWI_STR(o)->state & ZWI_STR_KIND_MASK)
#define ZWI_STR_IS_ASCII(o) ((ZWI_STR(o)->state & ZWI_STR_ASCII) != 0)
#define ZWI_STR_DATA(o)                                                                            \
    ((void *)((char *)(o) + (ZWI_STR_IS_ASCII(o) ? sizeof(zwi_str) : sizeof(zwi_ustr))))

typedef struct zwi_bytes {
    zw_varobj vo;
    int64_t hash;  /* -1 until computed */
    char data[1];  /* size + 1 bytes, the last 0 */
} zwi_bytes;       /* basicsize 33 (offsetof data + 1), itemsize 1 */
#define ZWI_BYTES_BASICSIZE 33

typedef struct zwi_tuple {
    zw_varobj vo;
    zw_obj *items[]; /* size items, never NULL once built */
} zwi_tuple;         /* 24 + 8 per item, GC */
#define ZWI_TUPLE_MAXSAVESIZE 20   /* tuples of 1..20 items are kept on free lists */
#define ZWI_TUPLE_MAXFREELIST 2000 /* ... at most this many per length */

typedef struct zwi_list {
    zw_varobj vo;       /* size: items in use */
    zw_obj **items;     /* allocated slots, from the heap; NULL when allocated == 0 */
    intptr_t allocated; /* 0 <= size <= allocated */
} zwi_list;             /* 40, GC */
#define ZWI_LIST_MAXFREELIST 80

/* The traverse slots of tuple and list, inline: the collector's passes call them directly so
 * that its visit functions are inlined into the loop (tuple.c and list.c's slots are these).
 * A list is visited last item first, as CPython's list_traverse. */
static inline int
zwi_tuple_traverse(zw_obj *o, zw_visit_fn visit, void *arg)
{
    zwi_tuple *t = (zwi_tuple *)o;
    for (intptr_t i = 0; i < t->vo.size; i++) {
        zw_obj *x = t->items[i];
        if (x != NULL) {
            int r = visit(x, arg);
            if (r != 0)
                return r;
        }
    }
    return 0;
}

static inline int
zwi_list_traverse(zw_obj *o, zw_visit_fn visit, void *arg)
{
    zwi_list *l = (zwi_list *)o;
    for (intptr_t i = l->vo.size; --i >= 0;) {
        int r = visit(l->items[i], arg);
        if (r != 0)
            return r;
    }
    return 0;
}

/* dict, as 3.11's: a table of indices into an array of entries kept in insertion order. */
typedef struct zwi_dictkeys {
    intptr_t refcnt;            /* 1 for a dict's own keys */
    uint8_t log2_size;          /* slots in the index table = 1 << log2_size (>= 8) */
    uint8_t log2_index_bytes;   /* bytes of the index table = 1 << log2_index_bytes */
    uint8_t unicode;            /* all keys are str: entries are (key, value) */
    uint8_t pad_;
    uint32_t version;
    intptr_t usable;            /* entries that can still be appended before a resize */
    intptr_t nentries;          /* entries used, deleted ones included */
    char indices[];             /* then the entries */
} zwi_dictkeys;                 /* 32 + index bytes + usable * entry size */

typedef struct zwi_dictentry {  /* general keys */
    int64_t hash;
    zw_obj *key;   /* NULL: deleted */
    zw_obj *value;
} zwi_dictentry;                /* 24 */

typedef struct zwi_dictuentry { /* str keys: the hash is in the str */
    zw_obj *key;   /* NULL: deleted */
    zw_obj *value;
} zwi_dictuentry;               /* 16 */

typedef struct zwi_dict {
    zw_obj ob;
    intptr_t used;      /* items */
    uint64_t version;   /* changes on every mutation; iterators check `used` */
    zwi_dictkeys *keys; /* NULL: empty, no table (3.11's shared empty keys) */
    zw_obj **values;    /* always NULL: we keep no split tables (docs/obj.md#instances) */
} zwi_dict;             /* 48, GC */
#define ZWI_DICT_MAXFREELIST 80

typedef struct zwi_range {
    zw_obj ob;
    int64_t start, stop, step, length;
} zwi_range; /* 48 */

/* A C function as an object (zw_func_new). */
typedef struct zwi_func_obj {
    zw_obj ob;
    zw_obj *self;         /* bound object, or NULL */
    const zw_method *def;
} zwi_func_obj;

/* A bound method: what zw_getattr returns for a method of a class. */
typedef struct zwi_method_obj {
    zw_obj ob;
    zw_obj *self;
    const zw_method *def;
} zwi_method_obj;

/* Instance attributes of a LAYOUT_DICT class: names shared by all instances of the class
 * (3.11's cached keys); each instance holds a values array in the same order, or a real dict
 * once it has been asked for __dict__ or has grown an attribute the keys cannot take. */
typedef struct zwi_shared_keys {
    size_t n;        /* names known */
    size_t cap;
    zw_obj **names;  /* interned str, owned */
} zwi_shared_keys;
#define ZWI_SHARED_KEYS_MAX 30 /* as 3.11's SHARED_KEYS_MAX_SIZE */

/* The managed-dict pre-header of a LAYOUT_DICT instance. */
typedef struct zwi_values {
    size_t cap;     /* slots */
    size_t n;       /* slots in use (names[0..n) of the shared keys) */
    zw_obj *v[];    /* NULL: attribute absent */
} zwi_values;
typedef struct zwi_managed {
    zwi_values *values; /* at o - 32 */
    zw_obj *dict;       /* at o - 24: the materialised dict, or NULL */
} zwi_managed;
#define ZWI_MANAGED(o) ((zwi_managed *)((char *)(o) - 32))

/* ---- the runtime ---- */

/* Debug registry of live objects: an open-addressing set of pointers on raw pages. */
typedef struct zwi_registry {
    uintptr_t *slots; /* 0 empty, 1 deleted, else an object address */
    size_t cap;       /* power of two */
    size_t n;         /* live entries */
    size_t used;      /* live + deleted */
} zwi_registry;

/* A static int singleton: the object followed by room for its digit. */
typedef struct zwi_small_int {
    zwi_int i;
} zwi_small_int;

struct zw_rt {
    zw_heap *heap;
    zw_raw *raw;           /* the heap's door; types and the registry come from it */
    unsigned flags;        /* enum zw_rt_flags */
    bool debug;
    FILE *report;
    /* errors */
    zw_exc exc;
    char errmsg[512];
    char errfull[560];
    /* allocation accounting and fault injection */
    uint64_t nallocs;
    long fail_countdown; /* > 0: the allocation that brings it to 0 fails */
    bool fault_fired;
    /* types */
    zw_type *builtin[ZW_NBUILTIN];
    zw_type *types; /* every type, newest first */
    /* str hashing (siphash13 keys derived from the seed) */
    uint64_t hash_k0, hash_k1;
    zw_obj *interned; /* a dict str -> str, or NULL until the first intern */
    /* singletons, outside the heap */
    zw_obj none_obj;
    zw_obj notimpl_obj;
    zwi_int true_obj;
    zwi_int false_obj;
    zwi_small_int small_ints[ZWI_NSMALL];
    struct {
        zwi_gchead gc;
        zwi_tuple t;
    } empty_tuple;
    struct {
        zwi_str s;
        char data[8];
    } empty_str;
    struct {
        zwi_bytes b;
        char pad[7];
    } empty_bytes;
    /* free lists, as CPython's */
    zw_obj *tuple_free[ZWI_TUPLE_MAXSAVESIZE + 1]; /* linked through items[0] */
    int tuple_nfree[ZWI_TUPLE_MAXSAVESIZE + 1];
    zw_obj *list_free[ZWI_LIST_MAXFREELIST];
    int list_nfree;
    zw_obj *dict_free[ZWI_DICT_MAXFREELIST];
    int dict_nfree;
    zwi_dictkeys *keys_free[ZWI_DICT_MAXFREELIST]; /* 8-slot str-key tables */
    int keys_nfree;
    zw_obj *float_free; /* linked through the type field */
    int float_nfree;
    /* the trashcan (object.c): deallocations of containers under way, and those put off until
     * the outermost one returns, linked through their GC header's prev, newest first */
    int trash_nesting;
    zw_obj *trash_later;
    /* repr of containers: the ones being printed, to print a cycle as [...] */
    zw_obj *repr_active[64];
    int repr_depth;
    /* the collector's lists */
    zwi_gcstate gc;
    /* debug */
    zwi_registry registry;
};

#define ZWI_RT(o)   ((o)->type->rt)
#define ZWI_WEAKLIST(o) ((zw_obj **)((char *)(o) + (o)->type->weaklist_offset))

#define ZWI_TYPE(rt, which) ((rt)->builtin[(which)])

/* ---- runtime.c ---- */

ZW_HIDDEN void zwi_registry_add(zw_rt *rt, zw_obj *o);
/* The failed or refused allocation: MemoryError (and the fault record), NULL. */
ZW_HIDDEN void *zwi_rt_nomemory(zw_rt *rt, bool injected);

/* Allocates from the runtime's heap; counts the allocation; MemoryError (and NULL) on failure
 * or when fault injection says so. Inline, with the heap's fast path (mem_internal.h): every
 * object creation runs it. */
static inline void *
zwi_rt_malloc(zw_rt *rt, size_t n)
{
    rt->nallocs++;
    if (ZW_UNLIKELY(rt->fail_countdown > 0) && --rt->fail_countdown == 0)
        return zwi_rt_nomemory(rt, true);
    void *p = zwi_mem_try_malloc(rt->heap, n);
    if (ZW_LIKELY(p != NULL))
        return p;
    p = zw_heap_malloc(rt->heap, n);
    if (ZW_UNLIKELY(p == NULL))
        return zwi_rt_nomemory(rt, false);
    return p;
}

static inline void *
zwi_rt_realloc(zw_rt *rt, void *p, size_t n)
{
    rt->nallocs++;
    if (ZW_UNLIKELY(rt->fail_countdown > 0) && --rt->fail_countdown == 0)
        return zwi_rt_nomemory(rt, true);
    void *q = zwi_mem_try_realloc(rt->heap, p, n);
    if (ZW_LIKELY(q != NULL))
        return q;
    q = zw_heap_realloc(rt->heap, p, n);
    if (ZW_UNLIKELY(q == NULL))
        return zwi_rt_nomemory(rt, false);
    return q;
}

static inline void
zwi_rt_free(zw_rt *rt, void *p)
{
    if (!zwi_mem_try_free(rt->heap, p))
        zw_heap_free(rt->heap, p);
}
ZW_HIDDEN void zwi_registry_remove(zw_rt *rt, zw_obj *o);
/* Makes a statically stored object immortal and of type t. */
ZW_HIDDEN void zwi_init_static(zw_obj *o, zw_type *t);

/* ---- object.c ---- */

/* Allocates `size` bytes for an object of a non-GC type whose size is not basic + items
 * (str, int): only the header is set. New reference, or NULL with MemoryError. */
static inline zw_obj *
zwi_obj_alloc_sized(zw_type *t, size_t size)
{
    ZW_ASSERT(!(t->flags & ZW_TPFLAGS_GC) && t->preheader == 0);
    zw_rt *rt = t->rt;
    zw_obj *o = zwi_rt_malloc(rt, size);
    if (o == NULL)
        return NULL;
    o->refcnt = 1;
    o->type = t;
    if (ZW_UNLIKELY(rt->debug))
        zwi_registry_add(rt, o);
    return o;
}

/* Frees an object without the registry and gen-0 bookkeeping (free lists use this when full). */
ZW_HIDDEN void zwi_obj_forget(zw_obj *o);
/* Called by a type's dealloc when it keeps the object on a free list instead of freeing it. */
static inline void
zwi_obj_cached(zw_obj *o)
{
    zw_rt *rt = ZWI_RT(o);
    if (ZW_UNLIKELY(rt->debug))
        zwi_registry_remove(rt, o);
}

/* Revives an object taken from a free list: refcount 1, registry entry back. */
static inline void
zwi_obj_revive(zw_obj *o, zw_type *t)
{
    o->refcnt = 1;
    o->type = t;
    if (ZW_UNLIKELY(t->rt->debug))
        zwi_registry_add(t->rt, o);
}

/* ---- generation lists (inline: every container's creation and death links or unlinks) ---- */

static inline void
zwi_gc_list_append(zwi_gchead *node, zwi_gchead *list)
{
    zwi_gchead *last = (zwi_gchead *)(list->prev & ~ZWI_GC_FLAGS);
    node->prev = (uintptr_t)last | (node->prev & ZWI_GC_FLAGS);
    last->next = (uintptr_t)node;
    node->next = (uintptr_t)list;
    list->prev = (uintptr_t)node | (list->prev & ZWI_GC_FLAGS);
}

static inline void
zwi_gc_list_remove(zwi_gchead *node)
{
    zwi_gchead *prev = (zwi_gchead *)(node->prev & ~ZWI_GC_FLAGS);
    zwi_gchead *next = (zwi_gchead *)node->next;
    prev->next = (uintptr_t)next;
    next->prev = (uintptr_t)prev | (next->prev & ZWI_GC_FLAGS);
    node->next = 0;
    /* as _PyObject_GC_UNTRACK: only FINALIZED survives. An object that dies in a collection is
     * COLLECTING; kept on a free list and revived, it must not enter gen 0 still marked (the
     * collector's one-pass count in collect.c takes COLLECTING for "already counted"). */
    node->prev &= ZWI_GC_FINALIZED;
}

/* Link into / unlink from generation 0 (no-op if already in that state). */
static inline void
zwi_gc_track(zw_obj *o)
{
    ZW_ASSERT(ZWI_IS_GC(o));
    zwi_gchead *g = ZWI_GC_HEAD(o);
    if (g->next == 0)
        zwi_gc_list_append(g, &ZWI_RT(o)->gc.gen[0].head);
}

static inline void
zwi_gc_untrack(zw_obj *o)
{
    ZW_ASSERT(ZWI_IS_GC(o));
    zwi_gchead *g = ZWI_GC_HEAD(o);
    if (g->next != 0)
        zwi_gc_list_remove(g);
}
ZW_HIDDEN zw_obj *zwi_type_error_unsupported(zw_obj *o, const char *what);
/* Repr recursion guard: 1 if `o` is already being printed (print "..."), 0 if entered, -1 with
 * RecursionError when too deep. zwi_repr_leave undoes a 0. */
ZW_HIDDEN int zwi_repr_enter(zw_obj *o);
ZW_HIDDEN void zwi_repr_leave(zw_obj *o);
/* repr of a sequence of items between `open` and `close` ("[", "]"), ", " between them. */
ZW_HIDDEN zw_obj *zwi_seq_repr(zw_obj *self, zw_obj *const *items, size_t n, const char *open,
                               const char *close);

/* ---- per-type files: specs and set-up/tear-down of the type's runtime state ---- */

extern ZW_HIDDEN const zw_type_spec zwi_int_spec, zwi_bool_spec, zwi_float_spec, zwi_str_spec,
    zwi_bytes_spec, zwi_tuple_spec, zwi_list_spec, zwi_dict_spec, zwi_range_spec,
    zwi_generator_spec, zwi_tuple_iter_spec, zwi_list_iter_spec, zwi_dict_keyiter_spec,
    zwi_dict_valueiter_spec, zwi_dict_itemiter_spec, zwi_range_iter_spec, zwi_str_iter_spec,
    zwi_bytes_iter_spec, zwi_method_spec, zwi_func_spec;

ZW_HIDDEN void zwi_int_init(zw_rt *rt);   /* the small ints, True and False */
ZW_HIDDEN void zwi_str_init(zw_rt *rt);   /* the empty str, hash keys */
ZW_HIDDEN void zwi_str_fini(zw_rt *rt);   /* drops the interned table */
ZW_HIDDEN void zwi_bytes_init(zw_rt *rt); /* the empty bytes */
ZW_HIDDEN void zwi_tuple_init(zw_rt *rt); /* the empty tuple */
/* Empty the free lists (zw_rt_free and tests use it). */
ZW_HIDDEN void zwi_float_clear_freelist(zw_rt *rt);
ZW_HIDDEN void zwi_tuple_clear_freelist(zw_rt *rt);
ZW_HIDDEN void zwi_list_clear_freelist(zw_rt *rt);
ZW_HIDDEN void zwi_dict_clear_freelist(zw_rt *rt);

/* str internals the dict and the classes use */
ZW_HIDDEN int64_t zwi_str_hash(zw_obj *s);
ZW_HIDDEN bool zwi_str_equal(zw_obj *a, zw_obj *b); /* both str */
/* siphash13 of bytes with the runtime's keys (str of kind 1 and bytes hash this way). */
ZW_HIDDEN int64_t zwi_obj_hash_bytes(zw_rt *rt, const void *p, size_t n);
/* Hash of an int64 value as Python's int hash (mod 2**61 - 1). */
ZW_HIDDEN int64_t zwi_hash_i64(int64_t v);
ZW_HIDDEN int64_t zwi_hash_double(double v);

/* dict internals the classes use */
ZW_HIDDEN zw_obj *zwi_dict_get_hashed(zw_obj *d, zw_obj *key, int64_t hash);
ZW_HIDDEN int zwi_dict_set_hashed(zw_obj *d, zw_obj *key, int64_t hash, zw_obj *value);

#endif /* ZW_OBJ_INTERNAL_H */
