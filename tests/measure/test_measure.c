/* tests/measure/test_measure.c - the measure scope: exact blocks, bytes and objects of known
 * work, attribution of lines to the program (not the runtime), nesting, the macro, JSON. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zerowaste/gc.h>
#include <zerowaste/measure.h>
#include <zerowaste/obj.h>
#include <zerowaste/trace.h>

static zw_rt *rt;

static void
setup(void)
{
    zw_rt_config cfg = {.flags = ZW_RT_IGNORE_ENV, .hash_seed = 0};
    rt = zw_rt_new(&cfg);
    zw_gc_disable(rt);
}

static void
teardown(void)
{
    zw_rt_free(rt);
}

TestSuite(measure, .init = setup, .fini = teardown);

/* Ten ints above the small-int cache in a new list of capacity 10: 10 int blocks of 28 bytes,
 * the list object (56 with its GC header) and its item array (80 bytes). */
static zw_obj *
make_ten(void)
{
    zw_obj *l = zw_list_new(rt, 10);
    for (int i = 0; i < 10; i++) {
        zw_obj *v = zw_int_from_i64(rt, 1000 + i); /* MAKE_TEN_INT */
        zw_list_append(l, v);
        zw_decref(v);
    }
    return l;
}

Test(measure, counts_the_blocks_bytes_and_objects_of_known_work)
{
    zw_measure m = {0};
    cr_assert_eq(zw_measure_begin(rt, &m), 0, "%s", m.err.msg);
    cr_assert(zw_trace_is_tracing());
    zw_obj *l = make_ten();
    cr_assert_eq(zw_measure_end(&m), 0, "%s", m.err.msg);
    cr_assert_not(zw_trace_is_tracing(), "the scope stops the tracing it started");
    cr_assert_eq(m.new_blocks, 12);
    cr_assert_eq(m.new_bytes, 10 * 32 + 56 + 80, "blocks are requested sizes: %lld",
                 (long long)m.new_bytes);
    cr_assert_eq(m.new_objects, 1, "one tracked object: the list");
    cr_assert_geq(m.seconds, 0.0);
    cr_assert_geq(m.nlines, 1);
    zw_measure_release(&m);
    zw_decref(l);
}

Test(measure, lines_are_the_programs_not_the_runtimes)
{
    zw_measure m = {0};
    zw_measure_begin(rt, &m);
    zw_obj *l = make_ten();
    zw_measure_end(&m);
    bool found = false;
    for (size_t i = 0; i < m.nlines; i++) {
        cr_assert(strstr(m.lines[i].filename, "/src/obj/") == NULL, "a runtime line: %s:%u",
                  m.lines[i].filename, m.lines[i].lineno);
        if (strstr(m.lines[i].filename, "test_measure.c") && m.lines[i].count_diff == 10)
            found = true;
    }
    cr_assert(found, "the ten ints are on one line of this file");
    zw_measure_release(&m);
    zw_decref(l);
}

Test(measure, freed_work_leaves_nothing)
{
    zw_measure m = {0};
    zw_measure_begin(rt, &m);
    zw_obj *l = make_ten();
    zw_decref(l);
    zw_rt_clear_freelists(rt);
    zw_measure_end(&m);
    cr_assert_eq(m.new_blocks, 0);
    cr_assert_eq(m.new_bytes, 0);
    cr_assert_eq(m.new_objects, 0);
    cr_assert_eq(m.nlines, 0);
    zw_measure_release(&m);
}

Test(measure, a_nested_scope_leaves_the_outer_tracing_alone)
{
    zw_error err;
    cr_assert_eq(zw_trace_start(4, &err), 0, "%s", err.msg);
    zw_measure m = {0};
    zw_measure_begin(rt, &m);
    zw_obj *l = make_ten();
    zw_measure_end(&m);
    cr_assert(zw_trace_is_tracing(), "still tracing after the inner scope");
    cr_assert_eq(zw_trace_get_traceback_limit(), 4, "the outer limit is kept");
    cr_assert_eq(m.new_blocks, 12);
    zw_measure_release(&m);
    zw_trace_stop();
    zw_decref(l);
}

Test(measure, the_macro_prints_the_talks_line_and_json_is_one_object)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    zw_obj *l = NULL;
    ZW_MEASURE(rt, out)
    {
        l = make_ten();
    }
    fclose(out);
    cr_assert(strncmp(text, "New blocks: 12, new allocated bytes: 456, objects: 1, time: ", 60) ==
                  0,
              "%s", text);
    free(text);
    zw_measure m = {0};
    zw_measure_begin(rt, &m);
    zw_obj *k = make_ten();
    zw_measure_end(&m);
    out = open_memstream(&text, &len);
    zw_measure_print_json(&m, out, 1);
    fclose(out);
    cr_assert(strncmp(text, "{\"new_blocks\": 12, \"new_bytes\": 456, \"new_objects\": 1, ", 55) ==
                  0,
              "%s", text);
    cr_assert(strstr(text, "\"top\": [{\"file\": \""), "%s", text);
    cr_assert(strstr(text, "]}\n"), "%s", text);
    free(text);
    zw_measure_release(&m);
    zw_decref(k);
    zw_decref(l);
}
