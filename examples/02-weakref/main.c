/* examples/02-weakref/main.c - the talk's "Destroy: Weakref" experiment in C: a subject keeps
 * a list of observers and sends them messages. `before` holds the observers with strong
 * references, `after` with weak ones (zw_weakref_new). Prints the new blocks and bytes the
 * scenario leaves allocated and the refcount of observer f3, then the same as a table.
 * Usage: weakref_example [before|after|both]   (default both). docs/gc.md explains the figures. */
#include <stdio.h>
#include <string.h>

#include <zerowaste/gc.h>
#include <zerowaste/obj.h>

typedef struct result {
    long blocks;
    long bytes;
    long refcount_f3;
    long blocks_after_del; /* still allocated once the program dropped its f3 */
    long bytes_after_del;
} result;

static bool use_weak;

/* Foo.__init__(self, name): self.name = name; self.observers = [] */
static zw_obj *
foo_init(zw_obj *self, zw_obj *const *args, size_t nargs)
{
    zw_rt *rt = zw_rt_of(self);
    zw_obj *observers = zw_list_new(rt, 0);
    if (observers == NULL || zw_setattr(self, "name", args[0]) != 0 ||
        zw_setattr(self, "observers", observers) != 0) {
        zw_xdecref(observers);
        return NULL;
    }
    zw_decref(observers);
    return zw_newref(zw_none(rt));
}

/* Foo.add_observers(self, *args): append each (before) or a weak reference to each (after) */
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

/* Foo.send_info(self, message): "Info for <name>: <message>" for each live observer */
static zw_obj *
foo_send_info(zw_obj *self, zw_obj *const *args, size_t nargs)
{
    zw_rt *rt = zw_rt_of(self);
    zw_obj *observers = zw_getattr(self, "observers");
    if (observers == NULL)
        return NULL;
    for (size_t i = 0; i < zw_list_len(observers); i++) {
        zw_obj *s = zw_list_get(observers, (intptr_t)i);
        zw_obj *obs = use_weak ? zw_weakref_get(s) : zw_newref(s);
        if (!zw_is_none(obs)) {
            zw_obj *name = zw_getattr(obs, "name");
            if (name != NULL)
                printf("  Info for %s: %s\n", zw_str_utf8(name, NULL), zw_str_utf8(args[0], NULL));
            zw_xdecref(name);
        }
        zw_decref(obs);
    }
    zw_decref(observers);
    return zw_newref(zw_none(rt));
}

static int
run(bool weak, result *out)
{
    static const zw_method methods[] = {
        {"__init__", foo_init, 1, NULL},
        {"add_observers", foo_add_observers, -1, NULL},
        {"send_info", foo_send_info, 1, NULL},
        {NULL, NULL, 0, NULL},
    };
    use_weak = weak;
    zw_rt *rt = zw_rt_new(NULL);
    if (rt == NULL)
        return -1;
    zw_class_spec spec = {.name = "Foo", .methods = methods};
    zw_type *foo = zw_class_new(rt, &spec);
    /* the names are constants of the program: made before the measurement, as in Python */
    const char *names[] = {"main", "f2", "f3", "f4"};
    zw_obj *name_objs[4];
    for (int i = 0; i < 4; i++)
        name_objs[i] = zw_str_intern_utf8(rt, names[i]);
    zw_obj *msg = zw_str_intern_utf8(rt, "msg");
    long blocks0 = (long)zw_rt_allocated_blocks(rt);
    long bytes0 = (long)zw_heap_allocated_bytes(zw_rt_heap(rt));

    zw_obj *objs[4];
    for (int i = 0; i < 4; i++)
        objs[i] = zw_call(foo, 1, &name_objs[i]);
    zw_obj *r = zw_call_method(objs[0], "add_observers", 3, &objs[1]);
    zw_xdecref(r);
    r = zw_call_method(objs[0], "send_info", 1, &msg);
    zw_xdecref(r);
    out->refcount_f3 = (long)zw_getrefcount(objs[2]);
    out->blocks = (long)zw_rt_allocated_blocks(rt) - blocks0;
    out->bytes = (long)zw_heap_allocated_bytes(zw_rt_heap(rt)) - bytes0;
    printf("%s: New blocks: %ld, new allocated bytes: %ld, refcount(f3) = %ld (Python: %ld)\n",
           weak ? "after " : "before", out->blocks, out->bytes, out->refcount_f3,
           out->refcount_f3 + 1);
    /* del f3: with strong observers main keeps it alive; with weak ones it goes */
    zw_decref(objs[2]);
    objs[2] = NULL;
    out->blocks_after_del = (long)zw_rt_allocated_blocks(rt) - blocks0;
    out->bytes_after_del = (long)zw_heap_allocated_bytes(zw_rt_heap(rt)) - bytes0;
    printf("%s: after del f3: blocks: %ld, bytes: %ld\n", weak ? "after " : "before",
           out->blocks_after_del, out->bytes_after_del);
    r = zw_call_method(objs[0], "send_info", 1, &msg);
    zw_xdecref(r);
    for (int i = 0; i < 4; i++)
        zw_xdecref(objs[i]);
    for (int i = 0; i < 4; i++)
        zw_decref(name_objs[i]);
    zw_decref(msg);
    zw_rt_free(rt);
    return 0;
}

int
main(int argc, char **argv)
{
    const char *which = argc > 1 ? argv[1] : "both";
    if (strcmp(which, "before") != 0 && strcmp(which, "after") != 0 && strcmp(which, "both") != 0) {
        fprintf(stderr, "usage: %s [before|after|both]\n", argv[0]);
        return 2;
    }
    result before = {0}, after = {0};
    if (strcmp(which, "after") != 0 && run(false, &before) != 0)
        return 1;
    if (strcmp(which, "before") != 0 && run(true, &after) != 0)
        return 1;
    if (strcmp(which, "both") == 0) {
        printf("\n%-15s %8s %8s %8s\n", "", "before", "after", "delta");
        printf("%-15s %8ld %8ld %+8ld\n", "blocks", before.blocks, after.blocks,
               after.blocks - before.blocks);
        printf("%-15s %8ld %8ld %+8ld\n", "bytes", before.bytes, after.bytes,
               after.bytes - before.bytes);
        printf("%-15s %8ld %8ld %+8ld\n", "refcount", before.refcount_f3, after.refcount_f3,
               after.refcount_f3 - before.refcount_f3);
        printf("%-15s %8ld %8ld %+8ld\n", "del f3: blocks", before.blocks_after_del,
               after.blocks_after_del, after.blocks_after_del - before.blocks_after_del);
        printf("%-15s %8ld %8ld %+8ld\n", "del f3: bytes", before.bytes_after_del,
               after.bytes_after_del, after.bytes_after_del - before.bytes_after_del);
    }
    return 0;
}
