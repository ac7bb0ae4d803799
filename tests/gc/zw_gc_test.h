/* tests/gc/zw_gc_test.h - what the gc tests share: a runtime with automatic collection off (as
 * the reference's scenarios assume), a dict-layout class with optional __del__, a legacy-
 * finalizer type, and helpers to build cycles. */
#ifndef ZW_GC_TEST_H
#define ZW_GC_TEST_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include <zerowaste/gc.h>
#include <zerowaste/obj.h>

static zw_rt *rt;
static size_t baseline; /* tracked objects after set-up */

static inline size_t
zwt_tracked(void)
{
    zw_obj *all = zw_gc_get_objects(rt, -1);
    cr_assert_not_null(all);
    size_t n = zw_list_len(all);
    zw_decref(all);
    return n;
}

static inline void
zwt_gc_setup(void)
{
    zw_rt_config cfg = {.flags = ZW_RT_IGNORE_ENV, .hash_seed = 0};
    rt = zw_rt_new(&cfg);
    cr_assert_not_null(rt);
    zw_gc_disable(rt);
    zw_gc_garbage(rt); /* made on first use: make it now */
    zw_gc_collect(rt, 2);
    baseline = zwt_tracked();
}

static inline void
zwt_gc_teardown(void)
{
    cr_expect_eq(zw_err_occurred(rt), ZW_NoError, "error left pending: %s", zw_errmsg(rt));
    zw_obj *g = zw_gc_garbage(rt);
    while (zw_list_len(g) > 0)
        zw_decref(zw_list_pop(g, -1));
    zw_gc_collect(rt, 2);
    /* classes and interned names stay for the runtime's life; containers must not */
    cr_expect_eq(zwt_tracked(), baseline, "tracked objects leaked: %zu -> %zu", baseline,
                 zwt_tracked());
    zw_rt_free(rt);
}

/* A plain class "A" (dict layout), and one "D" with a __del__ that counts its calls and, when
 * `resurrect` is set, saves self into `saved`. */
static int del_calls;
static zw_obj *saved;
static zw_obj *zs; /* when set, a list every resurrecting __del__ appends self to */
static bool resurrect;
static char order[256]; /* events in order: 'd' __del__, 'c' weakref callback */

static inline void
zwt_event(char c)
{
    size_t n = strlen(order);
    if (n + 1 < sizeof(order)) {
        order[n] = c;
        order[n + 1] = '\0';
    }
}

static zw_obj *
d_del(zw_obj *self, zw_obj *const *args, size_t nargs)
{
    del_calls++;
    zwt_event('d');
    if (resurrect && zs != NULL)
        zw_list_append(zs, self);
    else if (resurrect && saved == NULL)
        saved = zw_newref(self);
    return zw_newref(zw_none(zw_rt_of(self)));
}

static inline zw_type *
zwt_make_class(const char *name, bool with_del)
{
    static const zw_method del_methods[] = {{"__del__", d_del, 0, NULL}, {NULL, NULL, 0, NULL}};
    zw_class_spec spec = {.name = name, .methods = with_del ? del_methods : NULL};
    zw_type *t = zw_class_new(rt, &spec);
    cr_assert_not_null(t, "%s", zw_errmsg(rt));
    del_calls = 0;
    saved = NULL;
    zs = NULL;
    resurrect = false;
    order[0] = '\0';
    return t;
}

static inline zw_obj *
zwt_new(zw_type *t)
{
    zw_obj *o = zw_call(t, 0, NULL);
    cr_assert_not_null(o, "%s", zw_errmsg(rt));
    return o;
}

static inline void
zwt_set(zw_obj *o, const char *name, zw_obj *v)
{
    cr_assert_eq(zw_setattr(o, name, v), 0, "%s", zw_errmsg(rt));
}

/* A list that contains itself; returns it (new reference). */
static inline zw_obj *
zwt_self_list(void)
{
    zw_obj *l = zw_list_new(rt, 0);
    zw_list_append(l, l);
    return l;
}

/* A type with a legacy finalizer (CPython's tp_del): a pair of references. */
typedef struct legacy {
    zw_obj ob;
    zw_obj *a;
} legacy;

static int
legacy_traverse(zw_obj *o, zw_visit_fn visit, void *arg)
{
    legacy *l = (legacy *)o;
    return l->a ? visit(l->a, arg) : 0;
}

static int
legacy_clear(zw_obj *o)
{
    ZW_CLEAR(((legacy *)o)->a);
    return 0;
}

static void
legacy_del(zw_obj *o)
{
}

static inline zw_obj *
zwt_legacy(zw_obj *a)
{
    static const zw_type_spec spec = {
        .name = "Legacy",
        .basicsize = sizeof(legacy),
        .flags = ZW_TPFLAGS_GC,
        .traverse = legacy_traverse,
        .clear = legacy_clear,
        .legacy_del = legacy_del,
    };
    static zw_type *t;
    static zw_rt *t_rt;
    if (t_rt != rt) {
        t = zw_type_new(rt, &spec);
        t_rt = rt;
    }
    legacy *l = (legacy *)zw_obj_alloc(t, 0);
    l->a = a ? zw_newref(a) : NULL;
    zw_gc_track(&l->ob);
    return &l->ob;
}

#endif /* ZW_GC_TEST_H */
