/* examples/01-sys/main.c - the talk's "Seek: il modulo sys" slides redone in C:
 * getrefcount (C has no temporary argument reference, so it reads one less than Python's),
 * getallocatedblocks and getsizeof around a one-item list, a small int and [1024] * 100.
 * docs/obj.md shows its output and explains each figure. */
#include <stdio.h>

#include <zerowaste/obj.h>

static int
fail(zw_rt *rt)
{
    fprintf(stderr, "sys example: %s\n", zw_errmsg(rt));
    return 1;
}

int
main(void)
{
    zw_rt *rt = zw_rt_new(NULL);
    if (rt == NULL)
        return 1;

    /* class MyClass: pass;  a = MyClass() */
    zw_class_spec spec = {.name = "MyClass"};
    zw_type *my_class = zw_class_new(rt, &spec);
    zw_obj *a = my_class ? zw_call(my_class, 0, NULL) : NULL;
    if (a == NULL)
        return fail(rt);
    printf("getrefcount(a) = %ld        (Python: sys.getrefcount(a) = %ld)\n",
           (long)zw_getrefcount(a), (long)zw_getrefcount(a) + 1);
    zw_obj *a2 = zw_newref(a); /* a2 = a */
    printf("a2 = a;   getrefcount(a) = %ld (Python: %ld)\n", (long)zw_getrefcount(a),
           (long)zw_getrefcount(a) + 1);
    ZW_CLEAR(a2); /* a2 = None */
    printf("a2 = None; getrefcount(a) = %ld (Python: %ld)\n", (long)zw_getrefcount(a),
           (long)zw_getrefcount(a) + 1);
    zw_decref(a);

    /* "AAA" and 1024 are constants of the Python code object: made before the first count */
    zw_obj *aaa = zw_str_new(rt, "AAA");
    zw_obj *k1024 = zw_int_from_i64(rt, 1024);
    if (aaa == NULL || k1024 == NULL)
        return fail(rt);
    size_t base = zw_rt_allocated_blocks(rt);
    printf("Blocks: %zu\n", base);

    zw_obj *b1 = zw_list_new(rt, 1); /* b1 = ["AAA"] */
    if (b1 == NULL || zw_list_append(b1, aaa) != 0)
        return fail(rt);
    printf("b1 = [\"AAA\"]      Blocks: %zu (%+ld), bytes: %zu\n", zw_rt_allocated_blocks(rt),
           (long)(zw_rt_allocated_blocks(rt) - base), zw_getsizeof(b1));

    zw_obj *b2 = zw_int_from_i64(rt, 111); /* b2 = 111 */
    printf("b2 = 111          Blocks: %zu (%+ld), bytes: %zu\n", zw_rt_allocated_blocks(rt),
           (long)(zw_rt_allocated_blocks(rt) - base), zw_getsizeof(b2));

    ZW_SETREF(b2, zw_list_repeat(rt, k1024, 100)); /* b2 = [1024] * 100 */
    if (b2 == NULL)
        return fail(rt);
    printf("b2 = [1024] * 100 Blocks: %zu (%+ld), bytes: %zu\n", zw_rt_allocated_blocks(rt),
           (long)(zw_rt_allocated_blocks(rt) - base), zw_getsizeof(b2));

    zw_decref(b2); /* del b2, b1 */
    zw_decref(b1);
    size_t after_del = zw_rt_allocated_blocks(rt);
    size_t cached = zw_rt_clear_freelists(rt);
    printf("del b2, b1        Blocks: %zu (%+ld): the %zu dead list objects wait on the free list\n",
           after_del, (long)(after_del - base), cached);
    printf("free lists emptied Blocks: %zu (%+ld)\n", zw_rt_allocated_blocks(rt),
           (long)(zw_rt_allocated_blocks(rt) - base));
    zw_decref(aaa);
    zw_decref(k1024);
    zw_rt_free(rt);
    return 0;
}
