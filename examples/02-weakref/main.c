/* examples/02-weakref/main.c - the talk's "Destroy: Weakref" experiment in C: a subject keeps a
 * list of observers and sends them messages. `before` holds the observers with strong
 * references, `after` with weak ones (zw_weakref_new). The measure covers the talk's scenario
 * (four Foo, three observers added, one message sent, sys.getrefcount(f3)); the table adds f3's
 * refcount in Python's counting (3 -> 2) and what is still allocated once the program drops
 * its observers (del f2, f3, f4), where the weak version gives their memory back.
 * Usage: weakref_example [before|after]   (none: both, then the table). docs/talk.md and
 * docs/gc.md explain the figures. */
#include <stdbool.h>
#include <stdio.h>

#include <zerowaste/gc.h>
#include <zerowaste/measure.h>
#include <zerowaste/obj.h>

#include "../common/experiment.h"

static bool use_weak; /* the variant: observers held by weak references (after) or strong */

/* Foo.__init__(self, name): self.name = name; self.observers = [] */
static zw_obj *
foo_init(zw_obj *self, zw_obj *const *args, size_t nargs)
{
    (void)nargs;
    zw_obj *observers = zw_list_new(zw_rt_of(self), 0);
    if (observers == NULL || zw_setattr(self, "name", args[0]) != 0 ||
        zw_setattr(self, "observers", observers) != 0) {
        zw_xdecref(observers);
        return NULL;
    }
    zw_decref(observers);
    return zw_newref(zw_none(zw_rt_of(self)));
}

/* Foo.add_observers(self, *args): append each (before) or weakref.ref(each) (after) */
static zw_obj *
foo_add_observers(zw_obj *self, zw_obj *const *args, size_t nargs)
{
    zw_obj *observers = zw_getattr(self, "observers");
    if (observers == NULL)
        return NULL;
    for (size_t i = 0; i < nargs; i++) {
        zw_obj *item = use_weak ? zw_weakref_new(args[i], NULL) : zw_newref(args[i]);
        if (item == NULL || zw_list_append(observers, item) != 0) {
            zw_xdecref(item);
            zw_decref(observers);
            return NULL;
        }
        zw_decref(item);
    }
    zw_decref(observers);
    return zw_newref(zw_none(zw_rt_of(self)));
}

/* Foo.send_info(self, message): print(f"Info for {s.name}: {message}") for each observer s
 * (after: for each s whose s() is still alive) */
static zw_obj *
foo_send_info(zw_obj *self, zw_obj *const *args, size_t nargs)
{
    (void)nargs;
    zw_obj *observers = zw_getattr(self, "observers");
    if (observers == NULL)
        return NULL;
    for (size_t i = 0; i < zw_list_len(observers); i++) {
        zw_obj *s = zw_list_get(observers, (intptr_t)i);
        zw_obj *obs = use_weak ? zw_weakref_get(s) : zw_newref(s);
        zw_obj *name = zw_is_none(obs) ? NULL : zw_getattr(obs, "name");
        zw_obj *text =
            name ? zw_str_from_format(zw_rt_of(self), "Info for %U: %U", name, args[0]) : NULL;
        if (text != NULL)
            printf("%-6s:   %s\n", experiment_current, zw_str_utf8(text, NULL));
        zw_xdecref(text);
        zw_xdecref(name);
        zw_decref(obs);
    }
    zw_decref(observers);
    return zw_newref(zw_none(zw_rt_of(self)));
}

static int
run(zw_rt *rt, experiment_result *res, bool weak)
{
    static const zw_method methods[] = {
        {"__init__", foo_init, 1, NULL},
        {"add_observers", foo_add_observers, -1, NULL},
        {"send_info", foo_send_info, 1, NULL},
        {NULL, NULL, 0, NULL},
    };
    use_weak = weak;
    zw_class_spec spec = {.name = "Foo", .methods = methods};
    zw_type *foo = zw_class_new(rt, &spec);
    /* the constants of the Python code, made before the measure: the strings (interned) */
    const char *const texts[] = {"main", "f2", "f3", "f4", "msg", "name", "observers"};
    zw_obj *k[7] = {NULL};
    for (int i = 0; i < 7; i++)
        k[i] = zw_str_intern_utf8(rt, texts[i]);
    zw_obj *msg = k[4];
    /* a second measure around the first and the dels: what the program still holds then */
    zw_measure lifetime = {0};
    if (foo == NULL || k[6] == NULL || zw_measure_begin(rt, &lifetime) != 0)
        goto out_constants;
    if (experiment_begin(rt) != 0)
        goto out_lifetime;

    /* with measure_memory(): main = Foo("main"); f2 = ...; f3; f4;
     *     main.add_observers(f2, f3, f4); main.send_info("msg"); ref_count = getrefcount(f3) */
    zw_obj *objs[4]; /* main, f2, f3, f4 */
    int made = 0;
    for (; made < 4; made++)
        if ((objs[made] = zw_call(foo, 1, &k[made])) == NULL)
            break;
    zw_obj *r = made == 4 ? zw_call_method(objs[0], "add_observers", 3, &objs[1]) : NULL;
    ZW_SETREF(r, r ? zw_call_method(objs[0], "send_info", 1, &msg) : NULL);
    intptr_t refcount_f3 = made == 4 ? zw_getrefcount(objs[2]) : 0;
    int rc = experiment_end(res);
    if (r == NULL)
        rc = -1;
    zw_xdecref(r);
    /* Python's sys.getrefcount counts its own argument: one more than ours */
    experiment_extra(res, "refcount(f3) (Python)", (int64_t)refcount_f3 + 1);

    /* del f2, f3, f4; main.send_info("msg"): the strong version still messages all three */
    for (int i = 1; i < made; i++)
        zw_decref(objs[i]);
    r = made > 0 ? zw_call_method(objs[0], "send_info", 1, &msg) : NULL;
    zw_xdecref(r);
    if (zw_measure_end(&lifetime) == 0) {
        experiment_extra(res, "del f2-f4: blocks", lifetime.new_blocks);
        experiment_extra(res, "del f2-f4: bytes", lifetime.new_bytes);
    } else {
        rc = -1;
    }
    zw_measure_release(&lifetime);
    if (made > 0)
        zw_decref(objs[0]);
    for (int i = 0; i < 7; i++)
        zw_xdecref(k[i]);
    return rc;

out_lifetime:
    zw_measure_end(&lifetime);
    zw_measure_release(&lifetime);
out_constants:
    for (int i = 0; i < 7; i++)
        zw_xdecref(k[i]);
    return -1;
}

static int
run_before(zw_rt *rt, experiment_result *res)
{
    return run(rt, res, false);
}

static int
run_after(zw_rt *rt, experiment_result *res)
{
    return run(rt, res, true);
}

int
main(int argc, char **argv)
{
    static const experiment_variant variants[] = {{"before", run_before}, {"after", run_after}};
    return experiment_main(argc, argv, "weakref: observers held by strong vs weak references",
                           variants, 2);
}
