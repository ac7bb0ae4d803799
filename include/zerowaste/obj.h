/* zerowaste/obj.h - a reference-counted object runtime with CPython's object model: a 16-byte
 * header (refcount, type) on every object, a 16-byte GC header in front of containers, type
 * descriptors with slots, and the built-in types with CPython 3.11's layouts and sizes.
 * See docs/obj.md for the layouts, the size formulas and the ownership rules.
 *
 * Ownership, as CPython's refcounts.dat: each function returning `zw_obj *` says whether the
 * result is a *new* reference (the caller owns it and must zw_decref it) or a *borrowed* one
 * (valid while its holder keeps it). Arguments are borrowed unless a function says it *steals*
 * one. A function that fails returns NULL (or -1) with the runtime's error set (zw_errmsg).
 *
 * Threads: a runtime (and every object of it) is used by one thread at a time; many runtimes
 * may live in one process, each with its own heap. */
#ifndef ZEROWASTE_OBJ_H
#define ZEROWASTE_OBJ_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <zerowaste/common.h>
#include <zerowaste/mem.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct zw_rt zw_rt;
typedef struct zw_type zw_type;

/* ---- the object header ---- */

/* Every object starts with this header: 16 bytes, as PyObject. */
typedef struct zw_obj {
    intptr_t refcnt; /* references held; the type's dealloc runs when it reaches 0 */
    zw_type *type;   /* never NULL; borrowed (types live as long as their runtime) */
} zw_obj;

/* Variable-size objects (int, bytes, tuple, list) add an item count: 24 bytes, as PyVarObject. */
typedef struct zw_varobj {
    zw_obj ob;
    intptr_t size; /* items; for int, the signed number of 30-bit digits */
} zw_varobj;

/* Called by zw_decref when a count drops to 0 (runs the type's dealloc) or below 0 (reports
 * the over-release and aborts: a bug in the program, never input). */
ZW_API void zw_dealloc(zw_obj *o);

static inline void
zw_incref(zw_obj *o)
{
    o->refcnt++;
}

static inline void
zw_decref(zw_obj *o)
{
    if (--o->refcnt <= 0)
        zw_dealloc(o);
}

static inline void
zw_xincref(zw_obj *o)
{
    if (o != NULL)
        zw_incref(o);
}

static inline void
zw_xdecref(zw_obj *o)
{
    if (o != NULL)
        zw_decref(o);
}

/* Returns `o` with one more reference (new), so `x = zw_newref(y)` reads as an assignment. */
static inline zw_obj *
zw_newref(zw_obj *o)
{
    zw_incref(o);
    return o;
}

/* Replaces *slot with `value` (stolen; NULL allowed) and drops the old value last, so a dealloc
 * that looks at *slot sees the new value: CPython's Py_SETREF / Py_CLEAR. */
#define ZW_SETREF(slot, value)                                                                     \
    do {                                                                                           \
        zw_obj *zw_old_ = (zw_obj *)(slot);                                                        \
        (slot) = (value);                                                                          \
        zw_xdecref(zw_old_);                                                                       \
    } while (0)
#define ZW_CLEAR(slot) ZW_SETREF(slot, NULL)

/* ---- the runtime ---- */

enum zw_rt_flags {
    ZW_RT_DEBUG = 1u << 0,     /* debug heap (guards, fills) + registry of live objects; zw_rt_free
                                * lists the objects still alive; decref misuse reported clearly */
    ZW_RT_IGNORE_ENV = 1u << 1 /* do not read ZW_RT_DEBUG / ZW_HASHSEED from the environment */
};

typedef struct zw_rt_config {
    unsigned flags;     /* enum zw_rt_flags */
    int64_t hash_seed;  /* seed of str/bytes hashing; -1: random (the default when cfg is NULL),
                         * as PYTHONHASHSEED; the environment variable ZW_HASHSEED overrides */
    zw_raw *raw;        /* where the heap's pages come from; NULL: its own door */
    FILE *report;       /* where debug reports and the live-object list go; NULL: stderr */
} zw_rt_config;

/* Returns a new runtime (`cfg` NULL: defaults, debug if ZW_RT_DEBUG=1 in the environment), or
 * NULL with errno set when its heap cannot be created. */
ZW_API zw_rt *zw_rt_new(const zw_rt_config *cfg);
/* Releases every object and the heap. In debug mode first writes the objects still alive
 * (type, refcount, size) to the report stream. Pointers into the runtime become invalid. */
ZW_API void zw_rt_free(zw_rt *rt);
/* The runtime an object belongs to (borrowed). */
ZW_API zw_rt *zw_rt_of(const zw_obj *o);
/* The runtime's heap (borrowed): zw_heap_stats and friends work on it. */
ZW_API zw_heap *zw_rt_heap(zw_rt *rt);
/* Blocks currently allocated by the runtime: sys.getallocatedblocks(). */
ZW_API size_t zw_rt_allocated_blocks(zw_rt *rt);
/* Empties the types' free lists (dead tuples, lists, dicts, floats and dict tables kept for
 * reuse, as CPython's), as a full collection does; returns the number of blocks freed. */
ZW_API size_t zw_rt_clear_freelists(zw_rt *rt);
/* Objects currently alive in a debug runtime (0 when not in debug mode). */
ZW_API size_t zw_rt_live_objects(zw_rt *rt);
/* Writes the live objects of a debug runtime (type, refcount, size, address) to `out`;
 * returns how many. */
ZW_API size_t zw_rt_dump_live(zw_rt *rt, FILE *out);
/* Fault injection: the `n`th allocation from now (1 = the next one) fails with MemoryError;
 * 0 or negative turns it off. zw_rt_fault_fired says whether it fired since. */
ZW_API void zw_rt_fail_nth(zw_rt *rt, long n);
ZW_API bool zw_rt_fault_fired(zw_rt *rt);
/* Allocations made by the runtime since it was created (what fail_nth counts). */
ZW_API uint64_t zw_rt_allocations(zw_rt *rt);

/* ---- errors, like Python exceptions ---- */

typedef enum zw_exc {
    ZW_NoError = 0,
    ZW_Exception,
    ZW_TypeError,
    ZW_ValueError,
    ZW_KeyError,
    ZW_IndexError,
    ZW_AttributeError,
    ZW_OverflowError,
    ZW_ZeroDivisionError,
    ZW_MemoryError,
    ZW_UnicodeDecodeError,
    ZW_StopIteration,
    ZW_RuntimeError,
    ZW_RecursionError,
    ZW_NotImplementedError,
    ZW_SystemError,
    ZW_ReferenceError,
    ZW_NEXC
} zw_exc;

/* Sets the runtime's error (replacing any) and returns -1, so `return zw_err_set(...)` works;
 * functions returning pointers write `zw_err_set(...); return NULL;`. */
ZW_API int zw_err_set(zw_rt *rt, zw_exc exc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
ZW_API int zw_err_setv(zw_rt *rt, zw_exc exc, const char *fmt, va_list ap);
/* Sets MemoryError (never allocates) and returns -1. */
ZW_API int zw_err_nomemory(zw_rt *rt);
/* The pending error's kind, ZW_NoError if none. */
ZW_API zw_exc zw_err_occurred(zw_rt *rt);
/* True if the pending error is `exc` (or a kind that Python would catch with it: every kind
 * matches ZW_Exception; ZW_KeyError and ZW_IndexError match ZW_Exception only). */
ZW_API bool zw_err_matches(zw_rt *rt, zw_exc exc);
ZW_API void zw_err_clear(zw_rt *rt);
/* The pending error's message without its kind ("" if none); valid until the next error. */
ZW_API const char *zw_err_message(zw_rt *rt);
/* "KeyError: 'x'": kind and message, as Python prints the last line of a traceback. */
ZW_API const char *zw_errmsg(zw_rt *rt);
/* The Python name of a kind: "TypeError". */
ZW_API const char *zw_exc_name(zw_exc exc);

/* ---- type descriptors ---- */

/* Type flags. The kind flags let a check be one AND, as CPython's *_SUBCLASS flags. */
enum zw_type_flags {
    ZW_TPFLAGS_GC = 1u << 0,           /* instances carry the 16-byte GC header (containers) */
    ZW_TPFLAGS_BASETYPE = 1u << 1,     /* may be subclassed */
    ZW_TPFLAGS_HEAPTYPE = 1u << 2,     /* created at run time by zw_class_new */
    ZW_TPFLAGS_MANAGED_DICT = 1u << 3, /* attribute dict managed in front of the object */
    ZW_TPFLAGS_WEAKREFABLE = 1u << 4,  /* has a weak reference list slot (the gc layer uses it) */
    ZW_TPFLAGS_IMMUTABLE = 1u << 5,    /* instances never change after creation */
    ZW_TPFLAGS_INT = 1u << 8,
    ZW_TPFLAGS_FLOAT = 1u << 9,
    ZW_TPFLAGS_STR = 1u << 10,
    ZW_TPFLAGS_BYTES = 1u << 11,
    ZW_TPFLAGS_TUPLE = 1u << 12,
    ZW_TPFLAGS_LIST = 1u << 13,
    ZW_TPFLAGS_DICT = 1u << 14,
    ZW_TPFLAGS_TYPE = 1u << 15,
};

/* Rich comparison operators, as Py_LT ... Py_GE. */
typedef enum zw_cmp { ZW_LT, ZW_LE, ZW_EQ, ZW_NE, ZW_GT, ZW_GE } zw_cmp;

/* What a compare slot returns when it does not know how to compare with the other operand. */
#define ZW_CMP_UNSUPPORTED (-2)

typedef int (*zw_visit_fn)(zw_obj *o, void *arg);
/* A C function exposed as a method; `self` borrowed, args borrowed; returns a new reference or
 * NULL with the error set. */
typedef zw_obj *(*zw_cfunc)(zw_obj *self, zw_obj *const *args, size_t nargs);

typedef struct zw_method {
    const char *name; /* NULL ends a table */
    zw_cfunc fn;
    int nargs;        /* arguments after self; -1: any number */
    const char *doc;
} zw_method;

/* The descriptor of a type. Built-in types are made from the same specs with zw_type_new. */
typedef struct zw_type_spec {
    const char *name;     /* copied */
    size_t basicsize;     /* bytes of an instance from the object header on (>= 16) */
    size_t itemsize;      /* bytes per item of a variable-size type, or 0 */
    unsigned flags;       /* enum zw_type_flags */
    zw_type *base;        /* NULL: object */
    /* Releases what the object holds and frees it with zw_obj_free. NULL: a default that drops
     * what traverse visits, then frees. */
    void (*dealloc)(zw_obj *self);
    /* Calls visit on each object reference held (GC types); stops at the first non-zero. */
    int (*traverse)(zw_obj *self, zw_visit_fn visit, void *arg);
    /* Drops the references that may form cycles (the collector calls it). */
    int (*clear)(zw_obj *self);
    /* Runs once before the object dies (PEP 442); may resurrect it. */
    void (*finalize)(zw_obj *self);
    zw_obj *(*repr)(zw_obj *self);                      /* new str */
    int64_t (*hash)(zw_obj *self);                      /* -1 with the error set: unhashable */
    int (*compare)(zw_obj *a, zw_obj *b, zw_cmp op);    /* 1, 0, -1 error, ZW_CMP_UNSUPPORTED */
    zw_obj *(*iter)(zw_obj *self);                      /* new iterator */
    zw_obj *(*next)(zw_obj *self);                      /* new item; NULL: exhausted (no error
                                                         * set) or failed (error set) */
    size_t (*size_of)(zw_obj *self);                    /* __sizeof__; NULL: basic + items */
    const zw_method *methods;                           /* NULL-terminated, or NULL */
    /* With ZW_TPFLAGS_WEAKREFABLE: the offset of a zw_obj * field (NULL at creation) where the
     * gc layer keeps the object's weak references. */
    size_t weaklist_offset;
    /* A legacy finalizer (CPython's tp_del): the collector never breaks a cycle that holds an
     * object with one; it keeps them in zw_gc_garbage as uncollectable. */
    void (*legacy_del)(zw_obj *self);
} zw_type_spec;

/* Creates a type in the runtime (it lives until zw_rt_free). NULL with the error set. */
ZW_API zw_type *zw_type_new(zw_rt *rt, const zw_type_spec *spec);
ZW_API const char *zw_type_name(const zw_type *t);
ZW_API zw_type *zw_type_of(const zw_obj *o); /* borrowed */
/* True if `t` is `base` or derives from it. */
ZW_API bool zw_type_is_subtype(const zw_type *t, const zw_type *base);
ZW_API unsigned zw_type_flags(const zw_type *t);
ZW_API size_t zw_type_basicsize(const zw_type *t);
ZW_API size_t zw_type_itemsize(const zw_type *t);
/* Bytes in front of each instance: 0, 16 (GC header) or 32 (GC header + managed dict). */
ZW_API size_t zw_type_preheader(const zw_type *t);

/* Allocates an instance of `t` with `nitems` items (0 for fixed-size types): the header is set
 * (refcount 1), the rest zeroed. New reference; NULL with MemoryError. The object is not yet
 * tracked by the collector. */
ZW_API zw_obj *zw_obj_alloc(zw_type *t, size_t nitems);
/* Frees the memory of an object whose refcount reached 0 (called by dealloc slots). */
ZW_API void zw_obj_free(zw_obj *o);
/* For a subtype's slots that handle only the fields they add: run `base`'s dealloc (which frees
 * the object) or clear on `o`, as CPython's tp_base->tp_dealloc(self). */
ZW_API void zw_base_dealloc(zw_type *base, zw_obj *o);
ZW_API int zw_base_clear(zw_type *base, zw_obj *o);

/* The built-in types of a runtime (borrowed). */
typedef enum zw_builtin {
    ZW_T_OBJECT, ZW_T_TYPE, ZW_T_NONE, ZW_T_NOTIMPLEMENTED, ZW_T_BOOL, ZW_T_INT, ZW_T_FLOAT,
    ZW_T_STR, ZW_T_BYTES, ZW_T_TUPLE, ZW_T_LIST, ZW_T_DICT, ZW_T_RANGE, ZW_T_GENERATOR,
    ZW_T_TUPLE_ITER, ZW_T_LIST_ITER, ZW_T_DICT_KEYITER, ZW_T_DICT_VALUEITER, ZW_T_DICT_ITEMITER,
    ZW_T_RANGE_ITER, ZW_T_STR_ITER, ZW_T_BYTES_ITER, ZW_T_METHOD, ZW_T_FUNCTION,
    ZW_NBUILTIN
} zw_builtin;
ZW_API zw_type *zw_builtin_type(zw_rt *rt, zw_builtin which);

/* ---- generic object protocol ---- */

/* repr(o): new str, or NULL. */
ZW_API zw_obj *zw_repr(zw_obj *o);
/* str(o): the str itself for a str, else repr. New reference. */
ZW_API zw_obj *zw_str(zw_obj *o);
/* hash(o); -1 with TypeError for unhashable objects. */
ZW_API int64_t zw_hash(zw_obj *o);
/* Rich comparison as a truth value: 1, 0, or -1 with the error set (TypeError when neither side
 * supports it; == and != fall back to identity). */
ZW_API int zw_compare(zw_obj *a, zw_obj *b, zw_cmp op);
/* a == b as a truth value (identity first, as CPython's containers do); -1 on error. */
ZW_API int zw_equal(zw_obj *a, zw_obj *b);
/* bool(o): 1 or 0 (-1 on error). */
ZW_API int zw_truth(zw_obj *o);
/* len(o) for the built-in containers and str/bytes; -1 with TypeError otherwise. */
ZW_API intptr_t zw_len(zw_obj *o);
/* iter(o): new iterator, or NULL with TypeError. */
ZW_API zw_obj *zw_iter(zw_obj *o);
/* next(it): new item; NULL when exhausted (zw_err_occurred is then ZW_NoError) or on error. */
ZW_API zw_obj *zw_iter_next(zw_obj *it);
/* sum(iterable, start=0) of ints and floats: new reference. */
ZW_API zw_obj *zw_sum(zw_obj *iterable);
/* list(iterable): new list. */
ZW_API zw_obj *zw_list_from_iter(zw_obj *iterable);
/* Writes repr(o) to `f`; 0 or -1. */
ZW_API int zw_print(zw_obj *o, FILE *f);
ZW_API bool zw_is_none(const zw_obj *o);

/* ---- introspection: the talk's `sys` tools ---- */

/* The object's reference count. Python's sys.getrefcount reports one more in the same
 * situation (its argument is a temporary reference); C has no such temporary. */
ZW_API intptr_t zw_getrefcount(const zw_obj *o);
/* sys.getsizeof(o): __sizeof__ plus the GC header and the managed-dict pre-header. */
ZW_API size_t zw_getsizeof(zw_obj *o);

/* ---- singletons (borrowed; immortal: their counts never reach 0) ---- */

ZW_API zw_obj *zw_none(zw_rt *rt);
ZW_API zw_obj *zw_true(zw_rt *rt);
ZW_API zw_obj *zw_false(zw_rt *rt);
ZW_API zw_obj *zw_notimplemented(zw_rt *rt);
/* New reference to True or False. */
ZW_API zw_obj *zw_bool_from(zw_rt *rt, bool v);

/* ---- int: arbitrary precision in 30-bit digits, as CPython's longobject ---- */

ZW_API zw_obj *zw_int_from_i64(zw_rt *rt, int64_t v);             /* new */
ZW_API zw_obj *zw_int_from_u64(zw_rt *rt, uint64_t v);            /* new */
/* Parses an optionally signed decimal string ("-123", "1_000" is refused); ValueError with
 * the text quoted on bad input. New reference. */
ZW_API zw_obj *zw_int_from_str(zw_rt *rt, const char *s);
/* The value as int64; -1 with OverflowError when it does not fit (check zw_err_occurred). */
ZW_API int64_t zw_int_as_i64(zw_obj *o);
/* Decimal text: new str. */
ZW_API zw_obj *zw_int_to_str(zw_obj *o);
ZW_API zw_obj *zw_int_add(zw_obj *a, zw_obj *b);      /* new */
ZW_API zw_obj *zw_int_sub(zw_obj *a, zw_obj *b);      /* new */
ZW_API zw_obj *zw_int_mul(zw_obj *a, zw_obj *b);      /* new */
ZW_API zw_obj *zw_int_floordiv(zw_obj *a, zw_obj *b); /* new; ZeroDivisionError */
ZW_API zw_obj *zw_int_mod(zw_obj *a, zw_obj *b);      /* new; sign of the divisor, as Python */
ZW_API zw_obj *zw_int_neg(zw_obj *a);                 /* new */
/* -1, 0 or 1 as a < b, a == b, a > b. */
ZW_API int zw_int_cmp(zw_obj *a, zw_obj *b);
ZW_API int zw_int_sign(zw_obj *a);
ZW_API bool zw_int_check(const zw_obj *o); /* int or a subclass (bool included) */

/* ---- float ---- */

ZW_API zw_obj *zw_float_new(zw_rt *rt, double v); /* new */
/* The value of a float or an int (-1.0 with the error set otherwise or on overflow). */
ZW_API double zw_float_as_double(zw_obj *o);
ZW_API bool zw_float_check(const zw_obj *o);

/* ---- str: immutable, compact storage of 1, 2 or 4 bytes per code point (PEP 393) ---- */

/* Decodes UTF-8 (`len` bytes); UnicodeDecodeError naming the byte offset on invalid input
 * (overlong forms, surrogates and code points above U+10FFFF are invalid). New reference. */
ZW_API zw_obj *zw_str_from_utf8(zw_rt *rt, const char *s, size_t len);
/* Same for a NUL-terminated string. */
ZW_API zw_obj *zw_str_new(zw_rt *rt, const char *s);
/* From code points (each <= 0x10FFFF). New reference. */
ZW_API zw_obj *zw_str_from_codepoints(zw_rt *rt, const uint32_t *cps, size_t n);
/* printf-like: %s (UTF-8 char *), %d %i %u %ld %lu %lld %llu %zd %zu %x %c %p %% and
 * %R (repr of a zw_obj *), %S (str of a zw_obj *), %U (a str object). New reference. */
ZW_API zw_obj *zw_str_from_format(zw_rt *rt, const char *fmt, ...);
ZW_API zw_obj *zw_str_from_formatv(zw_rt *rt, const char *fmt, va_list ap);
/* The UTF-8 text, NUL-terminated, owned by the string (cached for non-ASCII strings, which then
 * grow by its size, as CPython does); *len receives its length if not NULL. NULL on error. */
ZW_API const char *zw_str_utf8(zw_obj *s, size_t *len);
ZW_API intptr_t zw_str_len(zw_obj *s);           /* code points */
ZW_API int zw_str_kind(zw_obj *s);               /* 1, 2 or 4 bytes per code point */
ZW_API uint32_t zw_str_char(zw_obj *s, size_t i); /* code point i (no check beyond an assert) */
ZW_API zw_obj *zw_str_concat(zw_obj *a, zw_obj *b);       /* new */
/* sep.join(iterable of str). New reference; TypeError for a non-str item. */
ZW_API zw_obj *zw_str_join(zw_obj *sep, zw_obj *iterable);
/* -1, 0, 1 by code point order. */
ZW_API int zw_str_cmp(zw_obj *a, zw_obj *b);
/* True if equal to the UTF-8 text `s`. */
ZW_API bool zw_str_eq_utf8(zw_obj *a, const char *s);
/* Interns `*s`: replaces it with the runtime's canonical equal string (stealing and returning
 * a reference); 0 or -1. */
ZW_API int zw_str_intern(zw_obj **s);
/* New reference to the interned string equal to `s`. */
ZW_API zw_obj *zw_str_intern_utf8(zw_rt *rt, const char *s);
ZW_API bool zw_str_is_interned(const zw_obj *s);
ZW_API bool zw_str_check(const zw_obj *o);

/* ---- bytes ---- */

ZW_API zw_obj *zw_bytes_new(zw_rt *rt, const void *data, size_t len); /* new */
ZW_API const char *zw_bytes_data(zw_obj *b); /* borrowed, NUL-terminated */
ZW_API size_t zw_bytes_len(zw_obj *b);
ZW_API zw_obj *zw_bytes_concat(zw_obj *a, zw_obj *b); /* new */
ZW_API bool zw_bytes_check(const zw_obj *o);

/* ---- tuple ---- */

/* A tuple of n items, each NULL until set with zw_tuple_init_item: fill every item before the
 * tuple is used. n == 0 gives the empty-tuple singleton. New reference. */
ZW_API zw_obj *zw_tuple_new(zw_rt *rt, size_t n);
/* Fills item i of a tuple being built (steals `item`). */
ZW_API void zw_tuple_init_item(zw_obj *t, size_t i, zw_obj *item);
/* A tuple of the n objects given (not stolen). New reference. */
ZW_API zw_obj *zw_tuple_pack(zw_rt *rt, size_t n, ...);
ZW_API zw_obj *zw_tuple_from_array(zw_rt *rt, zw_obj *const *items, size_t n);
/* Item i, borrowed; NULL with IndexError when out of range. */
ZW_API zw_obj *zw_tuple_get(zw_obj *t, size_t i);
ZW_API size_t zw_tuple_len(zw_obj *t);
ZW_API bool zw_tuple_check(const zw_obj *o);

/* ---- list ---- */

/* An empty list with room for `capacity` items. New reference. */
ZW_API zw_obj *zw_list_new(zw_rt *rt, size_t capacity);
/* [item] * n (item not stolen). New reference. */
ZW_API zw_obj *zw_list_repeat(zw_rt *rt, zw_obj *item, size_t n);
ZW_API size_t zw_list_len(zw_obj *l);
/* Borrowed item; negative i counts from the end; NULL with IndexError. */
ZW_API zw_obj *zw_list_get(zw_obj *l, intptr_t i);
/* Replaces item i (the list takes its own reference to `item`). 0 or -1 (IndexError). */
ZW_API int zw_list_set(zw_obj *l, intptr_t i, zw_obj *item);
ZW_API int zw_list_append(zw_obj *l, zw_obj *item);             /* 0 or -1 */
ZW_API int zw_list_insert(zw_obj *l, intptr_t i, zw_obj *item); /* as list.insert */
/* Removes and returns item i (new reference: the list's own); NULL with IndexError. */
ZW_API zw_obj *zw_list_pop(zw_obj *l, intptr_t i);
/* l[lo:hi] with Python's clamping of negative and out-of-range bounds. New list. */
ZW_API zw_obj *zw_list_slice(zw_obj *l, intptr_t lo, intptr_t hi);
/* l.extend(iterable). 0 or -1. */
ZW_API int zw_list_extend(zw_obj *l, zw_obj *iterable);
/* Stable sort by zw_compare(<) (as list.sort; timsort's guarantees: stable, O(n log n)).
 * 0 or -1 (the list keeps all its items, in some order, on error). */
ZW_API int zw_list_sort(zw_obj *l, bool reverse);
ZW_API size_t zw_list_capacity(zw_obj *l);
ZW_API bool zw_list_check(const zw_obj *o);

/* ---- dict: compact and ordered, as CPython 3.11 ---- */

ZW_API zw_obj *zw_dict_new(zw_rt *rt); /* new; allocates no table until the first insert */
/* Value for `key`, borrowed; NULL if absent (no error set) or on error (error set: use
 * zw_err_occurred to tell). */
ZW_API zw_obj *zw_dict_get(zw_obj *d, zw_obj *key);
ZW_API zw_obj *zw_dict_get_str(zw_obj *d, const char *key);
/* d[key] = value: the dict takes its own references. 0 or -1. */
ZW_API int zw_dict_set(zw_obj *d, zw_obj *key, zw_obj *value);
ZW_API int zw_dict_set_str(zw_obj *d, const char *key, zw_obj *value);
/* del d[key]: 0, or -1 with KeyError if absent. */
ZW_API int zw_dict_del(zw_obj *d, zw_obj *key);
ZW_API int zw_dict_contains(zw_obj *d, zw_obj *key); /* 1, 0, -1 */
ZW_API size_t zw_dict_len(zw_obj *d);
ZW_API void zw_dict_clear(zw_obj *d);
/* Iteration in insertion order without objects: start with *pos = 0; borrowed key/value.
 * Returns false at the end. The dict must not change during the walk. */
ZW_API bool zw_dict_next(zw_obj *d, size_t *pos, zw_obj **key, zw_obj **value);
ZW_API zw_obj *zw_dict_keys_iter(zw_obj *d);   /* new iterator over keys */
ZW_API zw_obj *zw_dict_values_iter(zw_obj *d); /* new iterator over values */
ZW_API zw_obj *zw_dict_items_iter(zw_obj *d);  /* new iterator over (key, value) tuples */
ZW_API zw_obj *zw_dict_copy(zw_obj *d);        /* new */
ZW_API bool zw_dict_check(const zw_obj *o);

/* ---- range and generators ---- */

/* range(start, stop, step): new reference; ValueError if step is 0. */
ZW_API zw_obj *zw_range_new(zw_rt *rt, int64_t start, int64_t stop, int64_t step);

/* A generator's body: called by each next() with the generator's state (zeroed at creation);
 * returns the next value (new reference), or NULL: finished when no error is set, failed when
 * one is. After NULL the generator is exhausted and body is never called again. */
typedef zw_obj *(*zw_gen_fn)(zw_rt *rt, void *state);
/* Visits the objects the state holds (NULL if it holds none), for the collector. */
typedef int (*zw_gen_traverse_fn)(void *state, zw_visit_fn visit, void *arg);
/* Releases what the state holds when the generator dies (NULL if nothing). */
typedef void (*zw_gen_release_fn)(void *state);
/* A generator with `state_size` bytes of state stored in the object. New reference. */
ZW_API zw_obj *zw_gen_new(zw_rt *rt, size_t state_size, zw_gen_fn next_fn,
                          zw_gen_traverse_fn traverse_fn);
ZW_API zw_obj *zw_gen_new_ex(zw_rt *rt, size_t state_size, zw_gen_fn next_fn,
                             zw_gen_traverse_fn traverse_fn, zw_gen_release_fn release_fn);
/* The state of a generator (for a caller that fills it after zw_gen_new). */
ZW_API void *zw_gen_state(zw_obj *gen);

/* ---- user classes in the talk's three layouts ---- */

typedef enum zw_class_layout {
    ZW_LAYOUT_DICT,      /* attributes in a per-instance dict (the default; 3.11's managed dict
                          * with values shared-key style) */
    ZW_LAYOUT_SLOTS,     /* fixed fields, as __slots__ */
    ZW_LAYOUT_NAMEDTUPLE /* a tuple subtype with named fields, as collections.namedtuple */
} zw_class_layout;

typedef struct zw_class_spec {
    const char *name;
    zw_class_layout layout;
    const char *const *fields; /* NULL-terminated: the __slots__ or namedtuple field names; for
                                * LAYOUT_DICT, the names __init__ sets from positional args */
    const zw_method *methods;  /* NULL-terminated, or NULL; "__init__" is called by zw_call */
} zw_class_spec;

/* Creates a class. Borrowed reference: the runtime owns every type until zw_rt_free. NULL with
 * the error set (TypeError for a bad spec: duplicate or missing field names, too many fields). */
ZW_API zw_type *zw_class_new(zw_rt *rt, const zw_class_spec *spec);
/* Calls a class: a new instance. With an __init__ method it is called with the args; otherwise
 * the args fill the spec's fields in order (TypeError if too many). New reference. */
ZW_API zw_obj *zw_call(zw_type *cls, size_t nargs, zw_obj *const *args);
/* getattr(o, name): new reference; AttributeError naming the type and attribute. Finds
 * instance attributes, slots, namedtuple fields, then methods (bound as a method object). */
ZW_API zw_obj *zw_getattr(zw_obj *o, const char *name);
/* setattr(o, name, value): 0 or -1 (AttributeError for unknown slots and namedtuple fields). */
ZW_API int zw_setattr(zw_obj *o, const char *name, zw_obj *value);
/* delattr. 0 or -1. */
ZW_API int zw_delattr(zw_obj *o, const char *name);
/* A function object wrapping a C function, bound to `self` (passed as self; NULL passes the
 * function object itself). Callbacks (weak references, finalize) are such objects, so they can
 * be garbage too, as Python functions are. New reference. */
ZW_API zw_obj *zw_func_new(zw_rt *rt, const zw_method *def, zw_obj *self);
/* callable(*args) for a class (as zw_call), a bound method from zw_getattr or a function from
 * zw_func_new: new reference;
 * TypeError for other objects. */
ZW_API zw_obj *zw_call_object(zw_obj *callable, size_t nargs, zw_obj *const *args);
/* o.name(*args), without making a bound method: new reference. */
ZW_API zw_obj *zw_call_method(zw_obj *o, const char *name, size_t nargs, zw_obj *const *args);
/* o.__dict__ for a dict-layout instance: new reference to its dict (materialised on first use,
 * as CPython does); AttributeError for other layouts. */
ZW_API zw_obj *zw_obj_dict(zw_obj *o);

#ifdef __cplusplus
}
#endif

#endif /* ZEROWASTE_OBJ_H */
