/* tests/obj/test_class.c - user classes in the three layouts of the talk: sizes, attributes,
 * methods, __init__, __dict__, namedtuple fields and repr, errors. */
#include "zw_obj_test.h"

TestSuite(obj_class, .init = zwt_rt_setup, .fini = zwt_rt_teardown);

static const char *const xy[] = {"x", "y", NULL};

static zw_type *
make(zw_class_layout layout, const char *name)
{
    zw_class_spec spec = {.name = name, .layout = layout, .fields = xy};
    zw_type *t = zw_class_new(rt, &spec);
    cr_assert_not_null(t, "%s", zw_errmsg(rt));
    return t;
}

static zw_obj *
call2(zw_type *t, long long a, long long b)
{
    zw_obj *args[2] = {zwt_int(a), zwt_int(b)};
    zw_obj *o = zw_call(t, 2, args);
    zw_decref(args[0]);
    zw_decref(args[1]);
    cr_assert_not_null(o, "%s", zw_errmsg(rt));
    return o;
}

Test(obj_class, the_three_layouts_have_cpython_3_11_sizes)
{
    zw_obj *a = call2(make(ZW_LAYOUT_DICT, "A"), 1, 2);
    zw_obj *s = call2(make(ZW_LAYOUT_SLOTS, "S"), 1, 2);
    zw_obj *p = call2(make(ZW_LAYOUT_NAMEDTUPLE, "P"), 1, 2);
    cr_assert_eq(zw_getsizeof(a), 56);
    cr_assert_eq(zw_getsizeof(s), 48);
    cr_assert_eq(zw_getsizeof(p), 56);
    cr_assert(zw_tuple_check(p), "a namedtuple is a tuple");
    cr_assert_eq(zw_tuple_len(p), 2);
    zw_decref(a), zw_decref(s), zw_decref(p);
}

Test(obj_class, blocks_per_instance_match_the_talks_layouts)
{
    zw_type *A = make(ZW_LAYOUT_DICT, "A"), *S = make(ZW_LAYOUT_SLOTS, "S");
    zw_type *P = make(ZW_LAYOUT_NAMEDTUPLE, "P");
    zw_obj *warm = call2(A, 300, 301); /* the class learns its names */
    size_t b0 = zw_rt_allocated_blocks(rt);
    zw_obj *a = call2(A, 1, 2);
    cr_assert_eq(zw_rt_allocated_blocks(rt), b0 + 2, "object + values array, as 3.11");
    zw_obj *s = call2(S, 1, 2);
    cr_assert_eq(zw_rt_allocated_blocks(rt), b0 + 3, "slots: one block");
    zw_obj *p = call2(P, 1, 2);
    cr_assert_eq(zw_rt_allocated_blocks(rt), b0 + 4, "namedtuple: one block");
    /* the namedtuple's block has the spare item of CPython's generic allocation */
    cr_assert_geq(zw_heap_usable_size(zw_rt_heap(rt), (char *)p - 16), 64);
    zw_decref(a), zw_decref(s), zw_decref(p), zw_decref(warm);
}

Test(obj_class, attributes_by_name_in_each_layout)
{
    zw_obj *a = call2(make(ZW_LAYOUT_DICT, "A"), 1, 2);
    zw_obj *s = call2(make(ZW_LAYOUT_SLOTS, "S"), 3, 4);
    zw_obj *p = call2(make(ZW_LAYOUT_NAMEDTUPLE, "P"), 5, 6);
    zw_obj *objs[] = {a, s, p};
    long long want[] = {2, 4, 6};
    for (int i = 0; i < 3; i++) {
        zw_obj *y = zw_getattr(objs[i], "y");
        cr_assert_not_null(y, "%s", zw_errmsg(rt));
        cr_assert_eq(zw_int_as_i64(y), want[i]);
        zw_decref(y);
        cr_assert_null(zw_getattr(objs[i], "nope"));
        cr_assert_eq(zw_err_occurred(rt), ZW_AttributeError);
        zw_err_clear(rt);
    }
    zw_obj *v = zwt_int(42);
    cr_assert_eq(zw_setattr(a, "extra", v), 0, "dict instances take new attributes");
    cr_assert_eq(zw_setattr(s, "extra", v), -1, "slots do not");
    cr_assert_str_eq(zw_errmsg(rt), "AttributeError: 'S' object has no attribute 'extra'");
    zw_err_clear(rt);
    cr_assert_eq(zw_setattr(s, "x", v), 0);
    cr_assert_eq(zw_setattr(p, "x", v), -1, "namedtuples are immutable");
    cr_assert_str_eq(zw_errmsg(rt), "AttributeError: can't set attribute");
    zw_err_clear(rt);
    cr_assert_eq(zw_delattr(s, "x"), 0);
    cr_assert_null(zw_getattr(s, "x"));
    zw_err_clear(rt);
    cr_assert_eq(zw_delattr(a, "extra"), 0);
    cr_assert_eq(zw_delattr(a, "extra"), -1);
    zw_err_clear(rt);
    zwt_assert_repr(p, "P(x=5, y=6)");
    zw_decref(v), zw_decref(a), zw_decref(s), zw_decref(p);
}

Test(obj_class, dict_materialises_on_request_and_keeps_working)
{
    zw_obj *a = call2(make(ZW_LAYOUT_DICT, "A"), 1, 2);
    zw_obj *d = zw_obj_dict(a);
    zwt_assert_repr(d, "{'x': 1, 'y': 2}");
    zw_obj *v = zwt_int(3);
    zw_setattr(a, "z", v);
    zwt_assert_repr(d, "{'x': 1, 'y': 2, 'z': 3}");
    zw_obj *z = zw_getattr(a, "z");
    cr_assert_eq(z, v);
    zw_decref(z), zw_decref(v), zw_decref(d), zw_decref(a);
}

Test(obj_class, more_names_than_shared_keys_hold_spill_into_a_dict)
{
    zw_type *A = make(ZW_LAYOUT_DICT, "A");
    zw_obj *a = zw_call(A, 0, NULL);
    for (int i = 0; i < 40; i++) {
        char name[8];
        snprintf(name, sizeof(name), "a%d", i);
        zw_obj *v = zwt_int(i);
        cr_assert_eq(zw_setattr(a, name, v), 0);
        zw_decref(v);
    }
    zw_obj *v = zw_getattr(a, "a39");
    cr_assert_eq(zw_int_as_i64(v), 39);
    zw_decref(v);
    v = zw_getattr(a, "a0");
    cr_assert_eq(zw_int_as_i64(v), 0);
    zw_decref(v), zw_decref(a);
}

static zw_obj *
point_init(zw_obj *self, zw_obj *const *args, size_t nargs)
{
    if (zw_setattr(self, "val", args[0]) != 0)
        return NULL;
    zw_obj *two = zw_int_from_i64(zw_rt_of(self), 2);
    zw_obj *dbl = zw_int_mul(args[0], two);
    zw_decref(two);
    if (dbl == NULL || zw_setattr(self, "double", dbl) != 0) {
        zw_xdecref(dbl);
        return NULL;
    }
    zw_decref(dbl);
    return zw_newref(zw_none(zw_rt_of(self)));
}

static zw_obj *
point_foo(zw_obj *self, zw_obj *const *args, size_t nargs)
{
    zw_obj *d = zw_getattr(self, "double");
    if (d == NULL)
        return NULL;
    zw_obj *r = zw_int_add(d, args[0]);
    zw_decref(d);
    return r;
}

Test(obj_class, init_and_methods_are_c_functions)
{
    static const zw_method methods[] = {
        {"__init__", point_init, 1, NULL},
        {"foo", point_foo, 1, "double + arg"},
        {NULL, NULL, 0, NULL},
    };
    zw_class_spec spec = {.name = "A", .methods = methods};
    zw_type *A = zw_class_new(rt, &spec);
    zw_obj *five = zwt_int(5), *one = zwt_int(1);
    zw_obj *a = zw_call(A, 1, &five);
    cr_assert_not_null(a, "%s", zw_errmsg(rt));
    zw_obj *r = zw_call_method(a, "foo", 1, &one);
    cr_assert_eq(zw_int_as_i64(r), 11);
    zw_decref(r);
    zw_obj *m = zw_getattr(a, "foo");
    cr_assert_not_null(m);
    zw_obj *r2 = zw_call_object(m, 1, &one);
    cr_assert_eq(zw_int_as_i64(r2), 11);
    zw_decref(r2), zw_decref(m);
    cr_assert_null(zw_call_method(a, "foo", 0, NULL));
    cr_assert_str_eq(zw_errmsg(rt), "TypeError: foo() takes 1 argument (0 given)");
    zw_err_clear(rt);
    cr_assert_null(zw_call(A, 0, NULL), "__init__ wants one argument");
    zw_err_clear(rt);
    zw_decref(a), zw_decref(five), zw_decref(one);
}

Test(obj_class, bad_specs_and_calls_are_refused)
{
    const char *dup[] = {"x", "x", NULL};
    zw_class_spec spec = {.name = "D", .layout = ZW_LAYOUT_SLOTS, .fields = dup};
    cr_assert_null(zw_class_new(rt, &spec));
    cr_assert_str_eq(zw_errmsg(rt), "TypeError: class 'D': field name 'x' is repeated");
    zw_err_clear(rt);
    zw_type *P = make(ZW_LAYOUT_NAMEDTUPLE, "P");
    cr_assert_null(zw_call(P, 0, NULL));
    cr_assert_str_eq(zw_errmsg(rt), "TypeError: P() takes 2 positional arguments but 0 were given");
    zw_err_clear(rt);
    zw_type *S = make(ZW_LAYOUT_SLOTS, "S");
    zw_obj *args[3] = {zw_none(rt), zw_none(rt), zw_none(rt)};
    cr_assert_null(zw_call(S, 3, args));
    zw_err_clear(rt);
    cr_assert_null(zw_call(zw_builtin_type(rt, ZW_T_INT), 0, NULL));
    zw_err_clear(rt);
}
