/* examples/06-generator/main.c - the talk's "Destroy: Generator" experiment in C: sum 10,000
 * times the int 4096. `before` get_result() returns the list [4096] * 10_000; `after` it is a
 * generator in the talk's range style (for _ in range(10_000): yield 4096), `after-while` in
 * its counted-loop style (count = 0; while count < 10_000: yield 4096; count += 1). A
 * generator's frame is its state, stored in the generator object (zw_gen_new).
 * Usage: generator [before|after|after-while]   (none: all three, then the table).
 * docs/talk.md explains the figures. */
#include <stdio.h>

#include <zerowaste/obj.h>

#include "../common/experiment.h"

#define N_ITEMS 10000

/* The constants of the Python code, made before the measure: 4096 and 10_000 (ints above the
 * small-int cache, so real objects), 1 and 0 (small ints). */
static zw_obj *k4096;
static zw_obj *k10000;
static zw_obj *k1;
static zw_obj *k0;

/* def get_result() -> list[int]: return [4096] * 10_000 */
static zw_obj *
get_result_list(zw_rt *rt)
{
    return zw_list_repeat(rt, k4096, N_ITEMS);
}

/* ---- for _ in range(10_000): yield 4096 ---- */

/* The generator's frame: the range's iterator, made by the first next() as Python's GET_ITER. */
typedef struct range_frame {
    zw_obj *it; /* iter(range(10_000)), NULL before the first next() and once finished */
} range_frame;

static zw_obj *
range_body(zw_rt *rt, void *state)
{
    range_frame *f = state;
    if (f->it == NULL) {
        zw_obj *r = zw_range_new(rt, 0, N_ITEMS, 1);
        f->it = r ? zw_iter(r) : NULL;
        zw_xdecref(r);
        if (f->it == NULL)
            return NULL;
    }
    zw_obj *item = zw_iter_next(f->it); /* _ */
    if (item == NULL)
        return NULL; /* exhausted, or failed with the error set */
    zw_decref(item);
    return zw_newref(k4096);
}

static int
range_traverse(void *state, zw_visit_fn visit, void *arg)
{
    range_frame *f = state;
    return f->it ? visit(f->it, arg) : 0;
}

static void
range_release(void *state)
{
    range_frame *f = state;
    ZW_CLEAR(f->it);
}

/* ---- count = 0; while count < 10_000: yield 4096; count += 1 ---- */

typedef struct while_frame {
    zw_obj *count; /* the local `count`, NULL before the first next() and once finished */
} while_frame;

static zw_obj *
while_body(zw_rt *rt, void *state)
{
    (void)rt;
    while_frame *f = state;
    if (f->count == NULL)
        f->count = zw_newref(k0); /* count = 0 */
    else
        ZW_SETREF(f->count, zw_int_add(f->count, k1)); /* count += 1 after the yield */
    if (f->count == NULL || zw_int_cmp(f->count, k10000) >= 0)
        return NULL; /* while count < 10_000 is over (or count += 1 failed) */
    return zw_newref(k4096);
}

static int
while_traverse(void *state, zw_visit_fn visit, void *arg)
{
    while_frame *f = state;
    return f->count ? visit(f->count, arg) : 0;
}

static void
while_release(void *state)
{
    while_frame *f = state;
    ZW_CLEAR(f->count);
}

/* ---- the variants ---- */

enum style { LIST, RANGE, WHILE };

static int
run(zw_rt *rt, experiment_result *res, enum style style)
{
    k4096 = zw_int_from_i64(rt, 4096);
    k10000 = zw_int_from_i64(rt, N_ITEMS);
    k1 = zw_int_from_i64(rt, 1);
    k0 = zw_int_from_i64(rt, 0);
    if (k4096 == NULL || k10000 == NULL || k1 == NULL || k0 == NULL || experiment_begin(rt) != 0)
        return -1;

    /* with measure_memory(): result = get_result(); total = sum(result) */
    zw_obj *result;
    if (style == LIST)
        result = get_result_list(rt);
    else if (style == RANGE)
        result = zw_gen_new_ex(rt, sizeof(range_frame), range_body, range_traverse, range_release);
    else
        result = zw_gen_new_ex(rt, sizeof(while_frame), while_body, while_traverse, while_release);
    zw_obj *total = result ? zw_sum(result) : NULL;
    int rc = experiment_end(res);
    if (total == NULL || zw_int_as_i64(total) != (int64_t)4096 * N_ITEMS)
        rc = -1;
    zw_xdecref(total);
    zw_xdecref(result);
    zw_decref(k0);
    zw_decref(k1);
    zw_decref(k10000);
    zw_decref(k4096);
    return rc;
}

static int
run_list(zw_rt *rt, experiment_result *res)
{
    return run(rt, res, LIST);
}

static int
run_range(zw_rt *rt, experiment_result *res)
{
    return run(rt, res, RANGE);
}

static int
run_while(zw_rt *rt, experiment_result *res)
{
    return run(rt, res, WHILE);
}

int
main(int argc, char **argv)
{
    static const experiment_variant variants[] = {
        {"before", run_list}, {"after", run_range}, {"after-while", run_while}};
    return experiment_main(argc, argv, "generator: a list of 10,000 ints vs a generator", variants,
                           3);
}
