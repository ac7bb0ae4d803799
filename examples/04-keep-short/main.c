/* examples/04-keep-short/main.c - the talk's "Destroy: keep it short!" experiment in C. Class A
 * keeps `val` and, `before`, a precomputed attribute `double` = compute_func(val) that foo and
 * bar print; `after` keeps only `val` and foo and bar compute the value on demand. 1000
 * instances are made and foo and bar called on each inside the measure.
 * Usage: keep_short [before|after]   (none: both, then the table). docs/talk.md explains the
 * figures. */
#include <stdbool.h>
#include <stdio.h>

#include <zerowaste/obj.h>

#include "../common/experiment.h"

#define N_INSTANCES 1000

static bool precompute; /* the variant: `double` stored in the instance (before) or not */
static zw_obj *two;     /* the constant 2 of compute_func (a small int, as in Python) */
static FILE *sink;      /* where foo and bar print: the text is made, then thrown away */

/* def compute_func(val): return val * 2 */
static zw_obj *
compute_func(zw_obj *val)
{
    return zw_int_mul(val, two);
}

/* A.__init__(self, val): self.val = val; before: self.double = compute_func(val) */
static zw_obj *
a_init(zw_obj *self, zw_obj *const *args, size_t nargs)
{
    (void)nargs;
    if (zw_setattr(self, "val", args[0]) != 0)
        return NULL;
    if (precompute) {
        zw_obj *d = compute_func(args[0]);
        if (d == NULL || zw_setattr(self, "double", d) != 0) {
            zw_xdecref(d);
            return NULL;
        }
        zw_decref(d);
    }
    return zw_newref(zw_none(zw_rt_of(self)));
}

/* print(f"<label>: {self.double}") before, print(f"<label>: {compute_func(self.val)}") after */
static zw_obj *
print_double(zw_obj *self, const char *label)
{
    zw_obj *d;
    if (precompute) {
        d = zw_getattr(self, "double");
    } else {
        zw_obj *val = zw_getattr(self, "val");
        d = val ? compute_func(val) : NULL;
        zw_xdecref(val);
    }
    zw_obj *text = d ? zw_str_from_format(zw_rt_of(self), "%s: %S", label, d) : NULL;
    zw_xdecref(d);
    if (text == NULL)
        return NULL;
    fprintf(sink, "%s\n", zw_str_utf8(text, NULL));
    zw_decref(text);
    return zw_newref(zw_none(zw_rt_of(self)));
}

static zw_obj *
a_foo(zw_obj *self, zw_obj *const *args, size_t nargs)
{
    (void)args, (void)nargs;
    return print_double(self, "Foo");
}

static zw_obj *
a_bar(zw_obj *self, zw_obj *const *args, size_t nargs)
{
    (void)args, (void)nargs;
    return print_double(self, "Bar");
}

/* def allocator_a(): return [A(i) for i in range(1000)] */
static zw_obj *
allocator_a(zw_type *a)
{
    zw_rt *rt = zw_rt_of((zw_obj *)a);
    zw_obj *res = zw_list_new(rt, 0);
    for (int64_t i = 0; res != NULL && i < N_INSTANCES; i++) {
        zw_obj *v = zw_int_from_i64(rt, i);
        zw_obj *inst = v ? zw_call(a, 1, &v) : NULL;
        zw_xdecref(v);
        if (inst == NULL || zw_list_append(res, inst) != 0)
            ZW_CLEAR(res);
        zw_xdecref(inst);
    }
    return res;
}

static int
run(zw_rt *rt, experiment_result *res, bool before)
{
    static const zw_method methods[] = {
        {"__init__", a_init, 1, NULL},
        {"foo", a_foo, 0, NULL},
        {"bar", a_bar, 0, NULL},
        {NULL, NULL, 0, NULL},
    };
    precompute = before;
    zw_class_spec spec = {.name = "A", .methods = methods};
    zw_type *a = zw_class_new(rt, &spec);
    /* the constants of the Python code: 2, and the attribute names (interned by the compiler) */
    two = zw_int_from_i64(rt, 2);
    zw_obj *name_val = zw_str_intern_utf8(rt, "val");
    zw_obj *name_double = zw_str_intern_utf8(rt, "double");
    if (a == NULL || two == NULL || name_val == NULL || name_double == NULL ||
        experiment_begin(rt) != 0)
        return -1;

    /* with measure_memory(): res_a = allocator_a(); for i in res_a: i.foo(); i.bar() */
    zw_obj *res_a = allocator_a(a);
    for (size_t i = 0; res_a != NULL && i < zw_list_len(res_a); i++) {
        zw_obj *r1 = zw_call_method(zw_list_get(res_a, (intptr_t)i), "foo", 0, NULL);
        zw_obj *r2 = r1 ? zw_call_method(zw_list_get(res_a, (intptr_t)i), "bar", 0, NULL) : NULL;
        zw_xdecref(r1);
        if (r2 == NULL)
            ZW_CLEAR(res_a);
        zw_xdecref(r2);
    }
    int rc = experiment_end(res);
    if (res_a == NULL)
        rc = -1;
    zw_xdecref(res_a);
    zw_decref(name_double);
    zw_decref(name_val);
    zw_decref(two);
    return rc;
}

static int
run_before(zw_rt *rt, experiment_result *res)
{
    return run(rt, res, true);
}

static int
run_after(zw_rt *rt, experiment_result *res)
{
    return run(rt, res, false);
}

int
main(int argc, char **argv)
{
    static const experiment_variant variants[] = {{"before", run_before}, {"after", run_after}};
    sink = fopen("/dev/null", "w");
    if (sink == NULL) {
        perror("/dev/null");
        return 1;
    }
    int rc = experiment_main(argc, argv,
                             "keep it short: a precomputed attribute vs computing it on demand",
                             variants, 2);
    fclose(sink);
    return rc;
}
