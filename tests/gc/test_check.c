/* tests/gc/test_check.c - the collector's list check (gc/check.c, CPython's validate_list): the
 * generation lists of a runtime full of cycles pass it before and after collections; a link or
 * a flag broken on purpose is reported, and in this ZW_DEBUG_FULL build the next collection
 * aborts on it. */
#include <criterion/criterion.h>
#include <signal.h>

#include <zerowaste/gc.h>
#include <zerowaste/obj.h>

#include "gc_internal.h"
#include "zw_debug_test.h"

#if !defined(ZW_DEBUG_FULL)
#    error "tests/gc/test_check.c is built against a ZW_DEBUG_FULL library (tests/CMakeLists.txt)"
#endif

static zw_rt *
new_runtime(void)
{
    zw_rt_config cfg = {.flags = ZW_RT_IGNORE_ENV, .hash_seed = 0};
    zw_rt *rt = zw_rt_new(&cfg);
    cr_assert_not_null(rt);
    zw_gc_disable(rt);
    return rt;
}

/* `n` two-list cycles, each list also holding a fresh tuple; the caller keeps none. */
static void
make_cycles(zw_rt *rt, int n)
{
    for (int i = 0; i < n; i++) {
        zw_obj *a = zw_list_new(rt, 0);
        zw_obj *b = zw_list_new(rt, 0);
        zw_obj *t = zw_tuple_pack(rt, 1, a);
        cr_assert(a != NULL && b != NULL && t != NULL);
        cr_assert(zw_list_append(a, b) == 0 && zw_list_append(b, a) == 0);
        cr_assert(zw_list_append(b, t) == 0);
        zw_decref(t);
        zw_decref(b);
        zw_decref(a);
    }
}

Test(gc_check, generation_lists_are_valid_around_collections_of_cycles)
{
    zw_rt *rt = new_runtime();
    zw_obj *kept = zw_list_new(rt, 0); /* a survivor that moves up the generations */
    cr_assert_not_null(kept);
    for (int round = 0; round < 3; round++) {
        make_cycles(rt, 100);
        cr_assert(zwi_gc_generations_are_valid(rt), "round %d, before: see the report", round);
        cr_assert_eq(zw_gc_collect(rt, round), 100 * 3, "round %d", round);
        cr_assert(zwi_gc_generations_are_valid(rt), "round %d, after: see the report", round);
    }
    cr_assert(zw_gc_is_tracked(kept));
    zw_gc_freeze(rt);
    cr_assert(zwi_gc_list_is_valid(&rt->gc.permanent, 0));
    zw_gc_unfreeze(rt);
    cr_assert(zwi_gc_generations_are_valid(rt));
    zw_decref(kept);
    zw_rt_free(rt);
}

/* ---- corruptions, each reported by the check ---- */

typedef void (*corrupt_fn)(zw_rt *rt, gchead *g);

static void
check_after(FILE *out, void *arg)
{
    zw_rt *rt = new_runtime();
    zw_obj *victim = zw_list_new(rt, 0); /* tracked, in generation 0 */
    zw_obj *other = zw_list_new(rt, 0);
    if (victim == NULL || other == NULL)
        _exit(2);
    ((corrupt_fn)arg)(rt, ZWI_GC_HEAD(victim));
    _exit(zwi_gc_generations_are_valid(rt) ? 0 : 3);
}

/* Runs the check after `corrupt` in a child; it must say invalid (exit 3) and print `want`. */
static void
expect_reported(corrupt_fn corrupt, const char *want)
{
    zwt_child c;
    zwt_child_run(&c, check_after, (void *)corrupt);
    cr_assert(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 3,
              "the check did not find the corruption (wait status 0x%x); it wrote:\n%s", c.status,
              c.text);
    zwt_assert_has(c.text, "zw: gc: list ");
    zwt_assert_has(c.text, want);
    zwt_child_release(&c);
}

static void
collecting_left_set(zw_rt *rt, gchead *g)
{
    g->prev |= ZWI_GC_COLLECTING;
}

static void
unreachable_mark_left(zw_rt *rt, gchead *g)
{
    g->next |= NEXT_MASK_UNREACHABLE;
}

static void
prev_link_skips_one(zw_rt *rt, gchead *g)
{
    gchead *next = gc_next(g);
    gc_set_prev(next, gc_prev(g)); /* as if g had been unlinked one way only */
}

Test(gc_check, a_collecting_flag_outside_a_collection_is_reported)
{
    expect_reported(collecting_left_set, "COLLECTING is set, the phase expects it clear");
}

Test(gc_check, an_unreachable_mark_outside_a_collection_is_reported)
{
    expect_reported(unreachable_mark_left, "marked unreachable, the phase expects no mark");
}

Test(gc_check, a_prev_link_that_skips_an_object_is_reported)
{
    expect_reported(prev_link_skips_one, "its prev link does not lead to its predecessor");
}

/* ---- in this ZW_DEBUG_FULL build, the next collection aborts ---- */

Test(gc_check, a_corrupt_generation_list_aborts_the_next_collection, .signal = SIGABRT)
{
    zw_rt *rt = new_runtime();
    zw_obj *victim = zw_list_new(rt, 0);
    cr_assert_not_null(victim);
    collecting_left_set(rt, ZWI_GC_HEAD(victim));
    zw_gc_collect(rt, 0);
    cr_assert_fail("the collection did not abort");
}
