/* tests/gc/test_weakref.c - the reference's test_weakref scenarios (section 6.2 of
 * cpython-memory.md) for weak references and finalize, ported to C; the number in each test's
 * comment is the scenario's. Proxies and WeakMethod (scenarios 7, 9-11, 33-34) are not part of
 * zerowaste's API; weak containers are in test_weakdict.c. */
#include "zw_debug_test.h"
#include "zw_gc_test.h"

TestSuite(gc_weakref, .init = zwt_gc_setup, .fini = zwt_gc_teardown);

static int ncalls;
static zw_obj *last_arg;

static zw_obj *
count_cb(zw_obj *self, zw_obj *const *args, size_t nargs)
{
    ncalls++;
    last_arg = args[0];
    return zw_newref(zw_none(zw_rt_of(self)));
}

static const zw_method count_def = {"count_cb", count_cb, 1, NULL};

static zw_obj *
counter(void)
{
    ncalls = 0;
    last_arg = NULL;
    zw_obj *f = zw_func_new(rt, &count_def, NULL);
    cr_assert_not_null(f);
    return f;
}

static zw_obj *
instance(void)
{
    return zwt_new(zwt_make_class("C", false));
}

Test(gc_weakref, a_live_ref_returns_the_identical_object) /* 1 */
{
    zw_obj *o = instance();
    zw_obj *r = zw_weakref_new(o, NULL);
    zw_obj *got = zw_weakref_get(r);
    cr_assert_eq(got, o);
    zw_decref(got);
    cr_assert_eq(zw_getsizeof(r), 80, "sys.getsizeof(weakref.ref(o)) on 3.11");
    zw_decref(r);
    zw_decref(o);
}

Test(gc_weakref, repr_of_live_and_dead_refs) /* 2 */
{
    zw_obj *o = instance();
    zw_obj *r = zw_weakref_new(o, NULL);
    zw_obj *s = zw_repr(r);
    cr_assert(strstr(zw_str_utf8(s, NULL), "; to 'C' at 0x"), "%s", zw_str_utf8(s, NULL));
    zw_decref(s);
    zw_decref(o);
    s = zw_repr(r);
    cr_assert(strstr(zw_str_utf8(s, NULL), "; dead>"), "%s", zw_str_utf8(s, NULL));
    zw_decref(s);
    zw_decref(r);
}

Test(gc_weakref, a_callback_runs_once_with_the_dead_ref) /* 3 */
{
    zw_obj *cb = counter();
    zw_obj *o = instance();
    zw_obj *r = zw_weakref_new(o, cb);
    zw_decref(o);
    cr_assert_eq(ncalls, 1);
    cr_assert_eq(last_arg, r);
    zw_obj *got = zw_weakref_get(r);
    cr_assert(zw_is_none(got));
    zw_decref(got);
    cr_assert_null(zw_weakref_callback(r), "__callback__ is None after death"); /* 27 */
    zw_decref(r);
    zw_decref(cb);
    cr_assert_eq(ncalls, 1);
}

Test(gc_weakref, two_refs_two_callbacks) /* 4 */
{
    zw_obj *cb = counter();
    zw_obj *o = instance();
    zw_obj *r1 = zw_weakref_new(o, cb), *r2 = zw_weakref_new(o, cb);
    cr_assert_neq(r1, r2, "refs with callbacks are not shared");
    zw_decref(o);
    cr_assert_eq(ncalls, 2);
    zw_decref(r1), zw_decref(r2), zw_decref(cb);
}

static zw_obj *older;
static int older_was_none;
static char seq[16];

static zw_obj *
newer_reads_older(zw_obj *self, zw_obj *const *args, size_t nargs)
{
    zw_obj *got = zw_weakref_get(older);
    older_was_none = zw_is_none(got);
    zw_decref(got);
    strncat(seq, "n", sizeof(seq) - strlen(seq) - 1);
    return zw_newref(zw_none(zw_rt_of(self)));
}

static zw_obj *
older_cb(zw_obj *self, zw_obj *const *args, size_t nargs)
{
    strncat(seq, "o", sizeof(seq) - strlen(seq) - 1);
    return zw_newref(zw_none(zw_rt_of(self)));
}

Test(gc_weakref, all_refs_are_cleared_before_the_first_callback_newest_first) /* 5 */
{
    static const zw_method nd = {"newer", newer_reads_older, 1, NULL};
    static const zw_method od = {"older", older_cb, 1, NULL};
    zw_obj *ncb = zw_func_new(rt, &nd, NULL), *ocb = zw_func_new(rt, &od, NULL);
    zw_obj *o = instance();
    older = zw_weakref_new(o, ocb);
    zw_obj *newer = zw_weakref_new(o, ncb);
    seq[0] = '\0';
    older_was_none = 0;
    zw_decref(o);
    cr_assert_str_eq(seq, "no", "newest first");
    cr_assert_eq(older_was_none, 1);
    zw_decref(newer), zw_decref(older), zw_decref(ncb), zw_decref(ocb);
}

Test(gc_weakref, none_as_callback_is_no_callback) /* 6 */
{
    zw_obj *o = instance();
    zw_obj *a = zw_weakref_new(o, zw_none(rt));
    zw_obj *b = zw_weakref_new(o, NULL);
    cr_assert_eq(a, b, "ref(o, None) is the shared ref");
    cr_assert_null(zw_weakref_callback(a));
    zw_decref(a), zw_decref(b), zw_decref(o);
}

Test(gc_weakref, callback_less_refs_are_shared_and_counted_once) /* 8 */
{
    zw_obj *cb = counter();
    zw_obj *o = instance();
    zw_obj *r1 = zw_weakref_new(o, NULL);
    zw_obj *c = zw_weakref_new(o, cb);
    zw_obj *r2 = zw_weakref_new(o, NULL);
    cr_assert_eq(r1, r2);
    cr_assert_eq(zw_weakref_count(o), 2);
    zw_decref(c);
    cr_assert_eq(zw_weakref_count(o), 1);
    zw_decref(r1), zw_decref(r2), zw_decref(o), zw_decref(cb);
}

Test(gc_weakref, weakref_count_and_list) /* 12, 13 */
{
    zw_obj *cb = counter();
    zw_obj *o = instance();
    zw_obj *refs[4] = {zw_weakref_new(o, cb), zw_weakref_new(o, NULL), zw_weakref_new(o, cb),
                       zw_weakref_new(o, cb)};
    cr_assert_eq(zw_weakref_count(o), 4);
    zw_obj *l = zw_weakref_list(o);
    cr_assert_eq(zw_list_len(l), 4);
    cr_assert_eq(zw_list_get(l, 0), refs[1], "the callback-less ref first");
    cr_assert_eq(zw_list_get(l, 1), refs[3], "then callbacks, newest first");
    zw_decref(l);
    zw_decref(refs[2]);
    l = zw_weakref_list(o);
    cr_assert_eq(zw_list_len(l), 3);
    zw_decref(l);
    for (int i = 0; i < 4; i++)
        if (i != 2)
            zw_decref(refs[i]);
    cr_assert_eq(zw_weakref_count(o), 0);
    zw_obj *one = zw_int_from_i64(rt, 1);
    cr_assert_eq(zw_weakref_count(one), 0);
    zw_obj *empty = zw_weakref_list(one);
    cr_assert_eq(zw_list_len(empty), 0);
    cr_assert_null(zw_weakref_new(one, NULL));
    cr_assert_str_eq(zw_errmsg(rt), "TypeError: cannot create weak reference to 'int' object");
    zw_err_clear(rt);
    zw_obj *lst = zw_list_new(rt, 0);
    cr_assert_null(zw_weakref_new(lst, NULL), "lists are not weakly referenceable");
    zw_err_clear(rt);
    zw_decref(lst), zw_decref(empty), zw_decref(one), zw_decref(o), zw_decref(cb);
}

static zw_obj *
failing_cb(zw_obj *self, zw_obj *const *args, size_t nargs)
{
    ncalls++;
    zw_err_set(zw_rt_of(self), ZW_ValueError, "callback failed");
    return NULL;
}

Test(gc_weakref, a_callback_does_not_clobber_a_pending_error) /* 14 */
{
    static const zw_method d = {"failing", failing_cb, 1, NULL};
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    zw_gc_set_debug_output(rt, out);
    zw_obj *cb = zw_func_new(rt, &d, NULL);
    zw_obj *o = instance();
    zw_obj *r = zw_weakref_new(o, cb);
    ncalls = 0;
    zw_err_set(rt, ZW_KeyError, "pending");
    zw_decref(o);
    cr_assert_eq(ncalls, 1);
    cr_assert_str_eq(zw_errmsg(rt), "KeyError: pending");
    zw_err_clear(rt);
    zw_gc_set_debug_output(rt, NULL);
    fclose(out);
    cr_assert(strstr(text, "Exception ignored in: weakref callback"), "%s", text);
    cr_assert(strstr(text, "ValueError: callback failed"), "%s", text);
    free(text);
    zw_decref(r), zw_decref(cb);
}

static zw_obj *
collecting_cb(zw_obj *self, zw_obj *const *args, size_t nargs)
{
    ncalls++;
    zw_gc_collect(zw_rt_of(self), 2);
    return zw_newref(zw_none(zw_rt_of(self)));
}

Test(gc_weakref, a_callback_that_collects) /* 15 */
{
    static const zw_method d = {"collecting", collecting_cb, 1, NULL};
    zw_obj *cb = zw_func_new(rt, &d, NULL);
    ncalls = 0;
    zw_obj *o = instance();
    zw_obj *r = zw_weakref_new(o, cb);
    zw_decref(o); /* refcount death */
    zw_obj *p = instance();
    zwt_set(p, "me", p);
    zw_obj *r2 = zw_weakref_new(p, cb);
    zw_decref(p);
    zw_gc_collect(rt, 2); /* collector death: the callback's collect returns 0 */
    cr_assert_eq(ncalls, 2);
    zw_decref(r), zw_decref(r2), zw_decref(cb);
}

Test(gc_weakref, cycle_through_the_weakref_and_its_callback_owner) /* 16, 17 */
{
    zw_obj *o = instance();
    zw_obj *owner = instance();
    zw_obj *cb = zw_func_new(rt, &count_def, owner); /* callback bound to owner */
    ncalls = 0;
    zw_obj *r = zw_weakref_new(o, cb);
    zwt_set(owner, "ref", r);
    zwt_set(o, "owner", owner);
    zwt_set(owner, "obj", o);
    zw_decref(r), zw_decref(cb), zw_decref(owner), zw_decref(o);
    cr_assert_eq(zw_gc_collect(rt, 2), 4, "o, owner, the weakref, its callback");
    cr_assert_eq(ncalls, 0, "a weakref that is garbage never calls back");
}

static char events[64];

static zw_obj *
tag_cb(zw_obj *self, zw_obj *const *args, size_t nargs)
{
    zw_obj *tag = zw_getattr(self, "tag");
    strncat(events, zw_str_utf8(tag, NULL), sizeof(events) - strlen(events) - 1);
    zw_decref(tag);
    return zw_newref(zw_none(zw_rt_of(self)));
}

static const zw_method tag_def = {"tag_cb", tag_cb, 1, NULL};

static zw_obj *
tagged_callback(const char *tag)
{
    zw_obj *holder = instance();
    zw_obj *t = zw_str_new(rt, tag);
    zwt_set(holder, "tag", t);
    zw_decref(t);
    zw_obj *cb = zw_func_new(rt, &tag_def, holder);
    zw_decref(holder);
    return cb;
}

Test(gc_weakref, only_the_external_weakref_reports) /* 18 */
{
    zw_obj *a = instance(), *b = instance(), *c = instance();
    zw_obj *cb_ab = tagged_callback("X");
    zw_obj *ra = zw_weakref_new(a, cb_ab), *rb = zw_weakref_new(b, cb_ab);
    zwt_set(a, "wr", rb); /* garbage weakrefs to each other */
    zwt_set(b, "wr", ra);
    zwt_set(a, "b", b);
    zwt_set(b, "a", a);
    zwt_set(a, "c", c);
    zwt_set(b, "c", c);
    zw_obj *cb_c = tagged_callback("C went away;");
    zw_obj *rc = zw_weakref_new(c, cb_c); /* external */
    zw_decref(ra), zw_decref(rb), zw_decref(cb_ab), zw_decref(a), zw_decref(b), zw_decref(c);
    events[0] = '\0';
    zw_gc_collect(rt, 2);
    cr_assert_str_eq(events, "C went away;");
    zw_gc_collect(rt, 2);
    cr_assert_str_eq(events, "C went away;", "a second collect records nothing");
    zw_decref(rc), zw_decref(cb_c);
}

Test(gc_weakref, callback_on_callback_only_the_outside_one_runs) /* 19 */
{
    zw_obj *a = instance();
    zwt_set(a, "me", a);
    zw_obj *cb1 = tagged_callback("inner;");
    zw_obj *r1 = zw_weakref_new(a, cb1);
    zwt_set(a, "r1", r1); /* r1 is garbage with a */
    zw_obj *cb2 = tagged_callback("outer;");
    zw_obj *r2 = zw_weakref_new(cb1, cb2); /* weakref to the callback itself, held outside */
    cr_assert_null(r2, "function objects are not weakly referenceable here");
    zw_err_clear(rt);
    r2 = zw_weakref_new(a, cb2);
    zw_decref(r1), zw_decref(cb1), zw_decref(a);
    events[0] = '\0';
    zw_gc_collect(rt, 2);
    cr_assert_str_eq(events, "outer;");
    zw_decref(r2), zw_decref(cb2);
}

Test(gc_weakref, collections_while_creating_refs) /* 20 */
{
    int th[3] = {1, 1, 1};
    zw_gc_set_threshold(rt, th);
    zw_gc_enable(rt);
    zw_obj *cb = counter();
    zw_obj *keep = zw_list_new(rt, 0);
    for (int i = 0; i < 200; i++) {
        zw_obj *o = instance();
        zwt_set(o, "me", o);
        zw_obj *r = zw_weakref_new(o, i % 2 ? cb : NULL);
        zw_list_append(keep, r);
        zw_decref(r);
        zw_decref(o);
    }
    zw_gc_disable(rt);
    int d[3] = {700, 10, 10};
    zw_gc_set_threshold(rt, d);
    zw_gc_collect(rt, 2);
    cr_assert_eq(ncalls, 100, "every callback ran once");
    zw_decref(keep), zw_decref(cb);
}

static zw_obj *
del_makes_weakref(zw_obj *self, zw_obj *const *args, size_t nargs)
{
    zw_obj *r = zw_weakref_new(self, NULL);
    zw_xdecref(r);
    zw_err_clear(zw_rt_of(self));
    return zw_newref(zw_none(zw_rt_of(self)));
}

Test(gc_weakref, a_weakref_made_in_del_to_the_dying_object) /* 21 */
{
    static const zw_method m[] = {{"__del__", del_makes_weakref, 0, NULL}, {NULL}};
    zw_class_spec spec = {.name = "W", .methods = m};
    zw_type *W = zw_class_new(rt, &spec);
    zw_decref(zwt_new(W));
    zw_obj *c = zwt_new(W);
    zwt_set(c, "me", c);
    zw_decref(c);
    cr_assert_eq(zw_gc_collect(rt, 2), 1);
}

static zw_obj *
append_arg(zw_obj *self, zw_obj *const *args, size_t nargs)
{
    if (zw_list_append(self, args[0]) != 0)
        return NULL;
    return zw_newref(zw_none(zw_rt_of(self)));
}

Test(gc_weakref, list_append_as_callback) /* 22 */
{
    static const zw_method d = {"append", append_arg, 1, NULL};
    zw_obj *l = zw_list_new(rt, 0);
    zw_obj *cb = zw_func_new(rt, &d, l);
    zw_obj *o = instance();
    zw_obj *r = zw_weakref_new(o, cb);
    zw_decref(o);
    cr_assert_eq(zw_list_len(l), 1);
    cr_assert_eq(zw_list_get(l, 0), r);
    zw_decref(r), zw_decref(cb), zw_decref(l);
}

Test(gc_weakref, equality_ordering_and_hash) /* 23, 24, 25 */
{
    static const char *f[] = {"v", NULL};
    zw_class_spec spec = {.name = "P", .layout = ZW_LAYOUT_DICT, .fields = f};
    zw_type *P = zw_class_new(rt, &spec);
    zw_obj *o1 = zwt_new(P), *o2 = zwt_new(P);
    zw_obj *r1 = zw_weakref_new(o1, NULL), *r2 = zw_weakref_new(o2, NULL);
    cr_assert_eq(zw_compare(r1, r2, ZW_EQ), 0, "identity of the referents (no __eq__)");
    cr_assert_eq(zw_compare(r1, r1, ZW_EQ), 1);
    cr_assert_eq(zw_compare(r1, r2, ZW_LT), -1, "no ordering");
    cr_assert_eq(zw_err_occurred(rt), ZW_TypeError);
    zw_err_clear(rt);
    int64_t h = zw_hash(r1);
    cr_assert_eq(h, zw_hash(o1), "hash(ref) == hash(referent)");
    zw_decref(o1);
    cr_assert_eq(zw_hash(r1), h, "kept after death");
    zw_decref(o2);
    cr_assert_eq(zw_hash(r2), -1, "first hash after death");
    cr_assert_str_eq(zw_errmsg(rt), "TypeError: weak object has gone away");
    zw_err_clear(rt);
    cr_assert_eq(zw_compare(r1, r2, ZW_EQ), 0, "dead refs compare by identity");
    cr_assert_eq(zw_compare(r1, r2, ZW_NE), 1);
    cr_assert_eq(zw_compare(r1, r2, ZW_GT), -1);
    zw_err_clear(rt);
    zw_decref(r1), zw_decref(r2);
}

/* ---- subclasses of weakref ---- */

typedef struct my_ref {
    char base[64]; /* the weakref's own fields */
    zw_obj *extra;
} my_ref;

static int
my_ref_traverse(zw_obj *o, zw_visit_fn visit, void *arg)
{
    my_ref *m = (my_ref *)o;
    if (m->extra && visit(m->extra, arg))
        return 1;
    zw_obj *cb = zw_weakref_callback(o);
    return cb ? visit(cb, arg) : 0;
}

/* the subtype's slots drop the field it adds, then hand over to the weakref's */
static int
my_ref_clear(zw_obj *o)
{
    ZW_CLEAR(((my_ref *)o)->extra);
    return zw_base_clear(zw_weakref_type(zw_rt_of(o)), o);
}

static void
my_ref_dealloc(zw_obj *o)
{
    ZW_CLEAR(((my_ref *)o)->extra);
    zw_base_dealloc(zw_weakref_type(zw_rt_of(o)), o);
}

static zw_type *
my_ref_type(void)
{
    zw_type_spec spec = {
        .name = "MyRef",
        .basicsize = sizeof(my_ref),
        .flags = ZW_TPFLAGS_GC,
        .base = zw_weakref_type(rt),
        .traverse = my_ref_traverse,
        .clear = my_ref_clear,
        .dealloc = my_ref_dealloc,
    };
    zw_type *t = zw_type_new(rt, &spec);
    cr_assert_not_null(t, "%s", zw_errmsg(rt));
    return t;
}

Test(gc_weakref, subclass_refs_are_distinct_and_listed_after_the_plain_one) /* 28, 29, 30 */
{
    zw_type *T = my_ref_type();
    zw_obj *cb = counter();
    zw_obj *o = instance();
    zw_obj *s1 = zw_weakref_new_ex(T, o, NULL);
    zw_obj *plain = zw_weakref_new(o, NULL);
    zw_obj *s2 = zw_weakref_new_ex(T, o, NULL);
    zw_obj *s3 = zw_weakref_new_ex(T, o, cb);
    cr_assert_neq(s1, plain, "subclass refs are never shared with plain refs");
    cr_assert_neq(s1, s2);
    cr_assert_neq(s2, s3);
    zw_obj *l = zw_weakref_list(o);
    cr_assert_eq(zw_list_len(l), 4);
    cr_assert_eq(zw_list_get(l, 0), plain, "plain ref first");
    zw_decref(l);
    zw_obj *got = zw_weakref_get(s3);
    cr_assert_eq(got, o);
    zw_decref(got);
    zw_decref(o);
    got = zw_weakref_get(s1);
    cr_assert(zw_is_none(got));
    zw_decref(got);
    cr_assert_eq(ncalls, 1);
    zw_decref(s1), zw_decref(s2), zw_decref(s3), zw_decref(plain), zw_decref(cb);
}

Test(gc_weakref, a_subclass_ref_holding_its_referent) /* 32 */
{
    zw_type *T = my_ref_type();
    zw_obj *cb = counter();
    zw_obj *o = instance();
    zw_obj *s = zw_weakref_new_ex(T, o, cb);
    ((my_ref *)s)->extra = zw_newref(o); /* the ref keeps its referent alive: a cycle via o */
    zwt_set(o, "ref", s);
    zw_decref(s);
    zw_decref(o);
    zw_decref(cb);
    cr_assert_eq(zw_gc_collect(rt, 2), 3, "o, its ref, the callback");
    cr_assert_eq(ncalls, 0);
}

/* ---- finalize ---- */

static zw_obj *
add3(zw_obj *self, zw_obj *const *args, size_t nargs)
{
    zw_obj *s = zw_int_add(args[0], args[1]);
    zw_obj *t = s ? zw_int_add(s, args[2]) : NULL;
    zw_xdecref(s);
    return t;
}

Test(gc_weakref, finalize_call_peek_detach_alive) /* 41 */
{
    static const zw_method d = {"add", add3, 3, NULL};
    zw_obj *add = zw_func_new(rt, &d, NULL);
    zw_obj *a = instance();
    zw_obj *x = zw_int_from_i64(rt, 67), *y = zw_int_from_i64(rt, 43), *z = zw_int_from_i64(rt, 89);
    zw_obj *args = zw_tuple_pack(rt, 3, x, y, z);
    zw_obj *f = zw_finalize_new(a, add, args);
    cr_assert_not_null(f, "%s", zw_errmsg(rt));
    cr_assert(zw_finalize_alive(f));
    zw_obj *p = zw_finalize_peek(f);
    cr_assert_eq(zw_tuple_len(p), 3);
    cr_assert_eq(zw_tuple_get(p, 0), a);
    cr_assert_eq(zw_tuple_get(p, 1), add);
    cr_assert_eq(zw_tuple_get(p, 2), args);
    zw_decref(p);
    zw_obj *r = zw_finalize_call(f);
    cr_assert_eq(zw_int_as_i64(r), 199);
    zw_decref(r);
    r = zw_finalize_call(f);
    cr_assert(zw_is_none(r), "later calls give None");
    zw_decref(r);
    cr_assert(zw_is_none(p = zw_finalize_peek(f)));
    zw_decref(p);
    cr_assert(zw_is_none(p = zw_finalize_detach(f)));
    zw_decref(p);
    cr_assert_not(zw_finalize_alive(f));
    zw_decref(f), zw_decref(args), zw_decref(x), zw_decref(y), zw_decref(z), zw_decref(a);
    zw_decref(add);
}

static zw_obj *
log_name(zw_obj *self, zw_obj *const *args, size_t nargs)
{
    strncat(events, zw_str_utf8(args[0], NULL), sizeof(events) - strlen(events) - 1);
    strncat(events, " ", sizeof(events) - strlen(events) - 1);
    return zw_newref(zw_none(zw_rt_of(self)));
}

static const zw_method log_def = {"log", log_name, 1, NULL};

static zw_obj *
fin(zw_obj *o, zw_obj *fn, const char *name)
{
    zw_obj *s = zw_str_new(rt, name);
    zw_obj *args = zw_tuple_pack(rt, 1, s);
    zw_obj *f = zw_finalize_new(o, fn, args);
    zw_decref(args), zw_decref(s);
    cr_assert_not_null(f);
    return f;
}

Test(gc_weakref, finalizers_run_newest_first_at_death) /* 43, 44 */
{
    zw_obj *log = zw_func_new(rt, &log_def, NULL);
    zw_obj *a = instance();
    events[0] = '\0';
    zw_obj *f1 = fin(a, log, "f1"), *f2 = fin(a, log, "f2"), *f3 = fin(a, log, "f3");
    zw_obj *f4 = fin(a, log, "f4"), *f5 = fin(a, log, "f5");
    zw_decref(f2); /* dropping handles does not cancel them */
    zw_decref(f4);
    zw_obj *d = zw_finalize_detach(f5);
    zw_decref(d);
    zw_obj *r = zw_finalize_call(f3);
    zw_decref(r);
    strncat(events, "| ", sizeof(events) - strlen(events) - 1);
    zw_obj *wr = zw_weakref_new(f1, NULL); /* to see f1 freed once it ran */
    zw_decref(f1);
    zw_decref(a);
    cr_assert_str_eq(events, "f3 | f4 f2 f1 ");
    zw_obj *got = zw_weakref_get(wr);
    cr_assert(zw_is_none(got), "a finalizer that ran and lost its handles is freed");
    zw_decref(got);
    zw_decref(wr), zw_decref(f3), zw_decref(f5), zw_decref(log);
}

static zw_obj *
raise_zerodiv(zw_obj *self, zw_obj *const *args, size_t nargs)
{
    zw_rt *r = zw_rt_of(self);
    strncat(events, "f3 error ", sizeof(events) - strlen(events) - 1);
    zw_err_set(r, ZW_ZeroDivisionError, "division by zero");
    return NULL;
}

static void
finalizers_at_exit(FILE *out, void *arg)
{
    static const zw_method e = {"boom", raise_zerodiv, 1, NULL};
    zw_rt_config cfg = {.flags = ZW_RT_IGNORE_ENV};
    rt = zw_rt_new(&cfg);
    zw_gc_set_debug_output(rt, out);
    zw_obj *log = zw_func_new(rt, &log_def, NULL);
    zw_obj *boom = zw_func_new(rt, &e, NULL);
    zw_obj *a = instance();
    events[0] = '\0';
    zw_obj *f1 = fin(a, log, "f1"), *f2 = fin(a, log, "f2");
    zw_obj *f3 = fin(a, boom, "f3");
    zw_obj *g1 = fin(a, log, "g1"); /* registered after f3: runs after it */
    zw_obj *f4 = fin(a, log, "f4");
    zw_finalize_set_atexit(f2, false);
    cr_assert_not(zw_finalize_get_atexit(f2));
    zw_decref(f1), zw_decref(f2), zw_decref(f3), zw_decref(g1), zw_decref(f4);
    zw_decref(log), zw_decref(boom);
    zw_rt_free(rt); /* a is still alive: the atexit finalizers run, newest first */
    fprintf(out, "events: %s\n", events);
}

Test(gc_weakref_exit, finalizers_run_at_rt_free_newest_first) /* 45 */
{
    zwt_child c;
    zwt_child_run(&c, finalizers_at_exit, NULL);
    cr_assert(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0, "%s", c.text);
    zwt_assert_has(c.text, "events: f4 g1 f3 error f1 \n");
    zwt_assert_has(c.text, "ZeroDivisionError: division by zero");
    zwt_child_release(&c);
}
