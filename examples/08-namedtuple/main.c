/* examples/08-namedtuple/main.c - the talk's "Destroy: NamedTuple" experiment in C: 1000
 * instances of a class A with one attribute `val`, made inside the measure and kept in a list.
 * `before` A is a plain class (its attributes in a values array beside the object, CPython
 * 3.11's managed dict); `after` is A = namedtuple("A", ["val"]): a tuple subtype whose item is
 * the field.
 * Usage: namedtuple [before|after]   (none: both, then the table). docs/talk.md explains the
 * figures. */
#include <stdbool.h>
#include <stdio.h>

#include <zerowaste/obj.h>

#include "../common/experiment.h"

#define N_INSTANCES 1000

/* def allocator() -> list[A]: return [A(i) for i in range(1000)] */
static zw_obj *
allocator(zw_type *a)
{
    zw_rt *rt = zw_rt_of((zw_obj *)a);
    zw_obj *res = zw_list_new(rt, 0);
    for (int64_t i = 0; res != NULL && i < N_INSTANCES; i++) {
        zw_obj *v = zw_int_from_i64(rt, i);
        zw_obj *inst = v ? zw_call(a, 1, &v) : NULL; /* A(i): the field val = i */
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
    /* before: class A: def __init__(self, val): self.val = val
     * after:  A = namedtuple("A", ["val"]) */
    static const char *const fields[] = {"val", NULL};
    zw_class_spec spec = {
        .name = "A", .layout = before ? ZW_LAYOUT_DICT : ZW_LAYOUT_NAMEDTUPLE, .fields = fields};
    zw_type *a = zw_class_new(rt, &spec);
    zw_obj *name_val = zw_str_intern_utf8(rt, "val"); /* a constant of the Python code */
    if (a == NULL || name_val == NULL || experiment_begin(rt) != 0)
        return -1;

    /* with measure_memory(): res = allocator() */
    zw_obj *result = allocator(a);
    int rc = experiment_end(res);
    if (result == NULL)
        rc = -1;
    zw_xdecref(result);
    zw_decref(name_val);
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
    return experiment_main(argc, argv,
                           "namedtuple: 1000 dict-backed instances vs 1000 namedtuple instances",
                           variants, 2);
}
