/* tests/obj/test_runtime.c - the runtime, the object header, refcounting, errors, user types,
 * finalizers and the debug reports. */
#include <signal.h>

#include "zw_debug_test.h"
#include "zw_obj_test.h"

TestSuite(obj_runtime, .init = zwt_rt_setup, .fini = zwt_rt_teardown);

Test(obj_runtime, header_is_16_bytes_and_containers_have_a_gc_header_in_front)
{
    cr_assert_eq(sizeof(zw_obj), 16);
    cr_assert_eq(sizeof(zw_varobj), 24);
    cr_assert_eq(zw_type_preheader(zw_builtin_type(rt, ZW_T_LIST)), 16);
    cr_assert_eq(zw_type_preheader(zw_builtin_type(rt, ZW_T_STR)), 0);
    zw_obj *l = zw_list_new(rt, 0);
    /* the block starts 16 bytes before the object: the heap owns that address */
    cr_assert(zw_heap_owns(zw_rt_heap(rt), (char *)l - 16));
    cr_assert_eq(zw_heap_usable_size(zw_rt_heap(rt), (char *)l - 16) >= 56, true);
    zw_decref(l);
}

Test(obj_runtime, refcounts_follow_references)
{
    zw_obj *l = zw_list_new(rt, 0);
    cr_assert_eq(zw_getrefcount(l), 1); /* Python would say 2: its argument is a reference */
    zw_obj *m = zw_newref(l);
    cr_assert_eq(zw_getrefcount(l), 2);
    zw_obj *t = zw_tuple_pack(rt, 1, l);
    cr_assert_eq(zw_getrefcount(l), 3);
    zw_decref(t);
    cr_assert_eq(zw_getrefcount(l), 2);
    zw_decref(m);
    zw_decref(l);
}

Test(obj_runtime, singletons_are_immortal_and_not_counted_as_blocks)
{
    size_t before = zw_rt_allocated_blocks(rt);
    zw_obj *none = zw_none(rt);
    intptr_t rc = zw_getrefcount(none);
    cr_assert_gt(rc, 1000000);
    zw_obj *t = zw_tuple_new(rt, 0);
    cr_assert_eq(t, zw_tuple_new(rt, 0), "the empty tuple is a singleton");
    zw_decref(t);
    zw_decref(t);
    zw_obj *s = zw_str_new(rt, "");
    zw_obj *one = zw_int_from_i64(rt, 1);
    cr_assert_eq(one, zw_int_from_i64(rt, 1), "small ints are singletons");
    zw_decref(one);
    zw_decref(one);
    zw_decref(s);
    cr_assert_eq(zw_rt_allocated_blocks(rt), before);
}

Test(obj_runtime, errors_carry_kind_and_message)
{
    cr_assert_eq(zw_err_occurred(rt), ZW_NoError);
    cr_assert_str_eq(zw_errmsg(rt), "");
    cr_assert_eq(zw_err_set(rt, ZW_KeyError, "'%s'", "x"), -1);
    cr_assert_eq(zw_err_occurred(rt), ZW_KeyError);
    cr_assert(zw_err_matches(rt, ZW_KeyError));
    cr_assert(zw_err_matches(rt, ZW_Exception));
    cr_assert_not(zw_err_matches(rt, ZW_TypeError));
    cr_assert_str_eq(zw_errmsg(rt), "KeyError: 'x'");
    cr_assert_str_eq(zw_err_message(rt), "'x'");
    zw_err_nomemory(rt);
    cr_assert_str_eq(zw_errmsg(rt), "MemoryError");
    zw_err_clear(rt);
    cr_assert_eq(zw_err_occurred(rt), ZW_NoError);
    cr_assert_str_eq(zw_exc_name(ZW_ZeroDivisionError), "ZeroDivisionError");
}

Test(obj_runtime, a_failed_allocation_sets_memory_error_and_leaves_no_block)
{
    size_t before = zw_rt_allocated_blocks(rt);
    zw_rt_fail_nth(rt, 1);
    cr_assert_null(zw_list_new(rt, 4));
    cr_assert(zw_rt_fault_fired(rt));
    cr_assert_eq(zw_err_occurred(rt), ZW_MemoryError);
    zw_err_clear(rt);
    zw_rt_fail_nth(rt, 2); /* the list object comes from the free list, its items array fails */
    cr_assert_null(zw_list_new(rt, 4));
    cr_assert_eq(zw_err_occurred(rt), ZW_MemoryError);
    zw_err_clear(rt);
    zw_rt_clear_freelists(rt);
    cr_assert_eq(zw_rt_allocated_blocks(rt), before);
    uint64_t n = zw_rt_allocations(rt);
    zw_obj *s = zwt_str("counted");
    cr_assert_eq(zw_rt_allocations(rt), n + 1);
    zw_decref(s);
}

Test(obj_runtime, hash_of_str_equals_cpython_with_the_same_seed)
{
    /* PYTHONHASHSEED=0 python3 -c "print(hash('abc'), hash('h\u00e9llo'), ...)" (3.11.7) */
    struct { const char *s; int64_t h0, h42; } cases[] = {
        {"abc", -4594863902769663758LL, 3869580338025362921LL},
        {"h\xc3\xa9llo", 6395329678795984700LL, -4058713343194919257LL},
        {"\xe2\x82\xacuro", 7542247858446192590LL, 6573934580854229043LL},
        {"\xf0\x9f\x98\x80x", -8926728262118538918LL, -7412435959675129227LL},
        {"", 0, 0},
    };
    zw_rt_config cfg = {.flags = ZW_RT_IGNORE_ENV, .hash_seed = 42};
    zw_rt *rt42 = zw_rt_new(&cfg);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        zw_obj *a = zwt_str(cases[i].s);
        zw_obj *b = zw_str_new(rt42, cases[i].s);
        cr_expect_eq(zw_hash(a), cases[i].h0, "seed 0, case %zu", i);
        cr_expect_eq(zw_hash(b), cases[i].h42, "seed 42, case %zu", i);
        zw_decref(a);
        zw_decref(b);
    }
    zw_rt_free(rt42);
}

/* ---- user types ---- */

typedef struct pair {
    zw_obj ob;
    zw_obj *a, *b;
} pair;

static int
pair_traverse(zw_obj *o, zw_visit_fn visit, void *arg)
{
    pair *p = (pair *)o;
    if (p->a && visit(p->a, arg))
        return 1;
    return p->b ? visit(p->b, arg) : 0;
}

static int finalized;
static zw_obj *resurrected;

static void
pair_finalize(zw_obj *o)
{
    finalized++;
    if (((pair *)o)->a == zw_none(zw_rt_of(o)))
        resurrected = zw_newref(o); /* keeps it alive */
}

static const zw_type_spec pair_spec = {
    .name = "pair",
    .basicsize = sizeof(pair),
    .flags = ZW_TPFLAGS_GC,
    .traverse = pair_traverse,
    .finalize = pair_finalize,
};

Test(obj_runtime, a_user_type_gets_a_default_dealloc_that_drops_its_references)
{
    zw_type *t = zw_type_new(rt, &pair_spec);
    cr_assert_not_null(t, "%s", zw_errmsg(rt));
    cr_assert_str_eq(zw_type_name(t), "pair");
    cr_assert_eq(zw_type_preheader(t), 16);
    zw_obj *s = zwt_str("held");
    pair *p = (pair *)zw_obj_alloc(t, 0);
    cr_assert_not_null(p);
    cr_assert_eq(zw_getsizeof(&p->ob), 16 + 32);
    p->a = zw_newref(s);
    cr_assert_eq(zw_getrefcount(s), 2);
    finalized = 0;
    zw_decref(&p->ob);
    cr_assert_eq(finalized, 1);
    cr_assert_eq(zw_getrefcount(s), 1);
    zw_decref(s);
}

Test(obj_runtime, a_finalizer_runs_once_and_may_resurrect)
{
    zw_type *t = zw_type_new(rt, &pair_spec);
    pair *p = (pair *)zw_obj_alloc(t, 0);
    p->a = zw_none(rt);
    zw_incref(p->a);
    finalized = 0;
    resurrected = NULL;
    zw_decref(&p->ob);
    cr_assert_eq(finalized, 1);
    cr_assert_eq(resurrected, &p->ob, "the finalizer kept it alive");
    cr_assert_eq(zw_getrefcount(&p->ob), 1);
    zw_decref(resurrected); /* dies now: the finalizer does not run a second time */
    cr_assert_eq(finalized, 1);
}

Test(obj_runtime, bad_type_specs_are_refused)
{
    zw_type_spec small = {.name = "tiny", .basicsize = 8};
    cr_assert_null(zw_type_new(rt, &small));
    cr_assert_eq(zw_err_occurred(rt), ZW_TypeError);
    zw_err_clear(rt);
    zw_type_spec gc_no_traverse = {.name = "g", .basicsize = 16, .flags = ZW_TPFLAGS_GC};
    cr_assert_null(zw_type_new(rt, &gc_no_traverse));
    cr_assert_eq(zw_err_occurred(rt), ZW_TypeError);
    zw_err_clear(rt);
    zw_type_spec from_list = {.name = "sub", .basicsize = 16,
                              .base = zw_builtin_type(rt, ZW_T_RANGE)};
    cr_assert_null(zw_type_new(rt, &from_list), "range is not a base type");
    zw_err_clear(rt);
}

Test(obj_runtime, types_know_their_bases)
{
    zw_type *b = zw_builtin_type(rt, ZW_T_BOOL);
    cr_assert(zw_type_is_subtype(b, zw_builtin_type(rt, ZW_T_INT)));
    cr_assert(zw_type_is_subtype(b, zw_builtin_type(rt, ZW_T_OBJECT)));
    cr_assert_not(zw_type_is_subtype(zw_builtin_type(rt, ZW_T_INT), b));
    cr_assert_eq(zw_type_of((zw_obj *)b), zw_builtin_type(rt, ZW_T_TYPE));
    zwt_assert_repr((zw_obj *)b, "<class 'bool'>");
    zwt_assert_repr(zw_none(rt), "None");
}

/* ---- debug mode ---- */

static void
decref_twice(FILE *out, void *arg)
{
    zw_rt_config cfg = {.flags = ZW_RT_DEBUG | ZW_RT_IGNORE_ENV, .report = out};
    zw_rt *d = zw_rt_new(&cfg);
    zw_obj *l = zw_list_new(d, 0);
    zw_decref(l);
    zw_rt_clear_freelists(d); /* or the list would wait on the free list, not freed */
    zw_decref(l);
}

Test(obj_runtime_debug, decref_of_a_dead_object_is_reported)
{
    zwt_child c;
    zwt_child_run(&c, decref_twice, NULL);
    cr_assert(!(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0), "not caught:\n%s", c.text);
#if ZWT_ASAN
    cr_assert(strstr(c.text, "use-after-poison") || strstr(c.text, "heap-use-after-free") ||
                  strstr(c.text, "decref of a dead object"),
              "unexpected report:\n%s", c.text);
#else
    zwt_assert_aborted(&c);
    zwt_assert_has(c.text, "zw: obj: decref of a dead object at 0x");
#endif
    zwt_child_release(&c);
}

static void
decref_too_often(FILE *out, void *arg)
{
    zw_rt_config cfg = {.flags = ZW_RT_IGNORE_ENV, .report = out};
    zw_rt *d = zw_rt_new(&cfg);
    zw_obj *l = zw_list_new(d, 0);
    l->refcnt = 0; /* as if one decref too many had happened while another holder remained */
    zw_decref(l);
}

Test(obj_runtime_debug, a_negative_refcount_is_reported)
{
    zwt_child c;
    zwt_child_run(&c, decref_too_often, NULL);
    zwt_assert_aborted(&c);
    zwt_assert_has(c.text, "type 'list') made its refcount negative (-1)");
    zwt_child_release(&c);
}

Test(obj_runtime_debug, rt_free_lists_the_objects_still_alive)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    zw_rt_config cfg = {.flags = ZW_RT_DEBUG | ZW_RT_IGNORE_ENV, .report = out};
    zw_rt *d = zw_rt_new(&cfg);
    zw_obj *l = zw_list_new(d, 0);
    zw_obj *s = zw_str_new(d, "leaked");
    zw_list_append(l, s);
    zw_obj *gone = zw_str_new(d, "freed");
    zw_decref(gone);
    cr_assert_eq(zw_rt_live_objects(d), 2);
    zw_rt_free(d);
    fclose(out);
    zwt_assert_has(text, "2 object(s) still alive");
    zwt_assert_has(text, "list at 0x");
    zwt_assert_has(text, "str at 0x");
    zwt_assert_has(text, "refcount 2, 55 bytes"); /* the str: held by us and by the list */
    zwt_assert_lacks(text, "freed");
    free(text);
}
