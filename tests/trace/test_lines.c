/* tests/trace/test_lines.c - a program whose allocations happen at known lines of this file
 * (built with -O0 -g and frame pointers), checked exactly: sizes, counts and file:line of every
 * trace, grouping by line, file and traceback, cumulative mode, compare_to between two snapshots,
 * and filters, through every door the tracer wraps (the RAW, MEM and OBJ domains and a private
 * heap through the heap observer). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zerowaste/zerowaste.h>

#include "zwt_trace.h"

/* Lines of the allocation sites below, filled as they run. */
static unsigned line_raw;
static unsigned line_mem;
static unsigned line_obj;
static unsigned line_heap;
static unsigned line_call;        /* where worker() calls the sites */
static unsigned line_worker_call; /* where the test calls worker() */

static __attribute__((noinline)) void *
site_raw(size_t n)
{
    line_raw = __LINE__ + 1;
    void *p = zw_mem_raw_malloc(n);
    return p;
}

static __attribute__((noinline)) void *
site_mem(size_t n)
{
    line_mem = __LINE__ + 1;
    void *p = zw_mem_calloc(1, n);
    return p;
}

static __attribute__((noinline)) void *
site_obj(size_t n)
{
    line_obj = __LINE__ + 1;
    void *p = zw_mem_obj_malloc(n);
    return p;
}

static __attribute__((noinline)) void *
site_heap(zw_heap *h, size_t n)
{
    line_heap = __LINE__ + 1;
    void *p = zw_heap_malloc(h, n);
    return p;
}

typedef struct blocks {
    void *raw[3];
    void *mem[5];
    void *obj[2];
    void *heap[4];
} blocks;

/* 3 x 100 raw, 5 x 24 mem, 2 x 700 obj, 4 x 33 heap. */
static __attribute__((noinline)) void
worker(blocks *b, zw_heap *h)
{
    line_call = __LINE__ + 2;
    for (int i = 0; i < 3; i++) {
        b->raw[i] = site_raw(100);
        b->mem[i] = site_mem(24);
    }
    for (int i = 3; i < 5; i++)
        b->mem[i] = site_mem(24);
    for (int i = 0; i < 2; i++)
        b->obj[i] = site_obj(700);
    for (int i = 0; i < 4; i++)
        b->heap[i] = site_heap(h, 33);
}

static void
release(blocks *b, zw_heap *h)
{
    for (int i = 0; i < 3; i++)
        zw_mem_raw_free(b->raw[i]);
    for (int i = 0; i < 5; i++)
        zw_mem_free(b->mem[i]);
    for (int i = 0; i < 2; i++)
        zw_mem_obj_free(b->obj[i]);
    for (int i = 0; i < 4; i++)
        zw_heap_free(h, b->heap[i]);
}

static zw_snapshot *
take(void)
{
    zw_error err;
    zw_snapshot *snap = zw_trace_take_snapshot(&err);
    cr_assert_not_null(snap, "%s", err.msg);
    return snap;
}

static zw_heap *heap;
static blocks B;

static void
run(void)
{
    zw_error err;
    cr_assert_eq(zw_trace_start(8, &err), 0, "%s", err.msg);
    zw_heap_config cfg = {.flags = ZW_HEAP_IGNORE_ENV};
    heap = zw_heap_new_ex(&cfg);
    line_worker_call = __LINE__ + 1;
    worker(&B, heap);
}

static void
finish(void)
{
    release(&B, heap);
    zw_heap_destroy(heap);
    zw_trace_stop();
}

Test(trace_lines, every_trace_has_its_size_and_lines, .init = run, .fini = finish)
{
    zw_snapshot *snap = take();
    cr_assert_eq(zw_snapshot_len(snap), 3 + 5 + 2 + 4);
    size_t seen[4] = {0};
    for (size_t i = 0; i < zw_snapshot_len(snap); i++) {
        zw_trace_info t = zw_snapshot_trace(snap, i);
        cr_assert_eq(t.domain, ZW_TRACE_DEFAULT_DOMAIN);
        size_t n = zw_traceback_len(t.traceback);
        cr_assert_geq(n, 3);
        const zw_frame *site = zw_traceback_frame(t.traceback, n - 1);
        const zw_frame *call = zw_traceback_frame(t.traceback, n - 2);
        const zw_frame *test = zw_traceback_frame(t.traceback, n - 3);
        cr_assert_str_eq(site->filename, __FILE__);
        cr_assert_str_eq(call->filename, __FILE__);
        cr_assert_str_eq(call->function, "worker");
        cr_assert_str_eq(test->filename, __FILE__);
        cr_assert_eq(test->lineno, line_worker_call);
        cr_assert_str_eq(test->function, "run");
        int k = site->lineno == line_raw    ? 0
                : site->lineno == line_mem  ? 1
                : site->lineno == line_obj  ? 2
                : site->lineno == line_heap ? 3
                                            : -1;
        cr_assert_neq(k, -1, "unexpected site line %u", site->lineno);
        static const size_t sizes[] = {100, 24, 700, 33};
        static const char *const fns[] = {"site_raw", "site_mem", "site_obj", "site_heap"};
        cr_assert_eq(t.size, sizes[k]);
        cr_assert_str_eq(site->function, fns[k]);
        unsigned call_line = k == 0   ? line_call
                             : k == 1 ? line_call + 1
                             : k == 2 ? line_call + 6
                                      : line_call + 8;
        if (k == 1 && call->lineno == line_call + 4)
            call_line = line_call + 4; /* the last two mem blocks come from the second loop */
        cr_assert_eq(call->lineno, call_line, "site %d called from line %u, expected %u", k,
                     call->lineno, call_line);
        seen[k]++;
    }
    cr_assert(seen[0] == 3 && seen[1] == 5 && seen[2] == 2 && seen[3] == 4);
    size_t cur;
    size_t peak;
    zw_trace_get_traced_memory(&cur, &peak);
    cr_assert_eq(cur, 3 * 100 + 5 * 24 + 2 * 700 + 4 * 33);
    cr_assert_eq(peak, cur);
    zw_snapshot_free(snap);
}

Test(trace_lines, grouped_by_line_file_and_traceback, .init = run, .fini = finish)
{
    zw_snapshot *snap = take();
    zw_error err;
    zw_stat_list *l = zw_snapshot_statistics(snap, ZW_GROUP_LINENO, false, &err);
    zwt_row rows[] = {{__FILE__, line_obj, 1400, 0, 2, 0},
                      {__FILE__, line_raw, 300, 0, 3, 0},
                      {__FILE__, line_heap, 132, 0, 4, 0},
                      {__FILE__, line_mem, 120, 0, 5, 0}};
    zwt_check_rows(l, rows, 4);
    zw_stat_list_free(l);

    l = zw_snapshot_statistics(snap, ZW_GROUP_FILENAME, false, &err);
    zwt_row file[] = {{__FILE__, 0, 1952, 0, 14, 0}};
    zwt_check_rows(l, file, 1);
    zw_stat_list_free(l);

    /* tracebacks: the mem site has two (first and second loop), the others one each */
    l = zw_snapshot_statistics(snap, ZW_GROUP_TRACEBACK, false, &err);
    cr_assert_eq(zw_stat_list_len(l), 5);
    const zw_statistic *s0 = zw_stat_list_get(l, 0);
    cr_assert(s0->size == 1400 && s0->count == 2);
    size_t total = 0;
    for (size_t i = 0; i < zw_stat_list_len(l); i++)
        total += zw_stat_list_get(l, i)->count;
    cr_assert_eq(total, 14);
    zw_stat_list_free(l);

    /* cumulative by line: worker's call lines and run's call line count every block below */
    l = zw_snapshot_statistics(snap, ZW_GROUP_LINENO, true, &err);
    bool found_run = false;
    for (size_t i = 0; i < zw_stat_list_len(l); i++) {
        const zw_statistic *s = zw_stat_list_get(l, i);
        const zw_frame *f = zw_traceback_frame(s->traceback, 0);
        if (strcmp(f->filename, __FILE__) == 0 && f->lineno == line_worker_call) {
            cr_assert_eq(s->size, 1952);
            cr_assert_eq(s->count, 14);
            /* every block passes through this line: nothing is bigger (frames above run(),
             * in Criterion, tie with it and sort by file name, which depends on the checkout) */
            cr_assert_eq(zw_stat_list_get(l, 0)->size, s->size);
            cr_assert_eq(zw_stat_list_get(l, 0)->count, s->count);
            found_run = true;
        }
        if (strcmp(f->filename, __FILE__) == 0 && f->lineno == line_call) {
            cr_assert_eq(s->size, 3 * 100);
            cr_assert_eq(s->count, 3);
        }
        if (strcmp(f->filename, __FILE__) == 0 && f->lineno == line_call + 1) {
            cr_assert_eq(s->size, 3 * 24);
            cr_assert_eq(s->count, 3);
        }
    }
    cr_assert(found_run);
    zw_stat_list_free(l);
    zw_snapshot_free(snap);
}

Test(trace_lines, compare_two_snapshots, .init = run, .fini = finish)
{
    zw_snapshot *before = take();
    /* free two mem blocks and one obj block, allocate 2 more raw blocks */
    zw_mem_free(B.mem[3]);
    zw_mem_free(B.mem[4]);
    zw_mem_obj_free(B.obj[1]);
    void *extra[2];
    for (int i = 0; i < 2; i++)
        extra[i] = site_raw(100);
    zw_snapshot *after = take();
    zw_error err;
    zw_stat_list *l = zw_snapshot_compare_to(after, before, ZW_GROUP_LINENO, false, &err);
    zwt_row rows[] = {{__FILE__, line_obj, 700, -700, 1, -1},
                      {__FILE__, line_raw, 500, 200, 5, 2},
                      {__FILE__, line_mem, 72, -48, 3, -2},
                      {__FILE__, line_heap, 132, 0, 4, 0}};
    zwt_check_rows(l, rows, 4);
    zw_stat_list_free(l);
    zw_snapshot_free(before);
    zw_snapshot_free(after);
    for (int i = 0; i < 2; i++)
        zw_mem_raw_free(extra[i]);
    B.mem[3] = zw_mem_malloc(1); /* release() frees them again */
    B.mem[4] = zw_mem_malloc(1);
    B.obj[1] = zw_mem_obj_malloc(1);
}

Test(trace_lines, filters_on_lines_and_files, .init = run, .fini = finish)
{
    zw_snapshot *snap = take();
    zw_filter only_heap = ZW_FILTER(true, __FILE__);
    only_heap.lineno = (long)line_heap;
    cr_assert_eq(zwt_kept(snap, &only_heap, 1), 4);
    zw_filter not_raw = ZW_FILTER(false, "*test_lines.c");
    not_raw.lineno = (long)line_raw;
    cr_assert_eq(zwt_kept(snap, &not_raw, 1), 11);
    zw_filter any_worker = ZW_FILTER(true, "*/tests/trace/test_lines.c");
    any_worker.lineno = (long)line_call;
    cr_assert_eq(zwt_kept(snap, &any_worker, 1), 0, "the most recent frame is the site");
    any_worker.all_frames = true;
    cr_assert_eq(zwt_kept(snap, &any_worker, 1), 3);
    zw_filter elsewhere = ZW_FILTER(true, "*.h");
    cr_assert_eq(zwt_kept(snap, &elsewhere, 1), 0);
    zw_snapshot_free(snap);
}

/* A debug heap's report about a damaged block names where the block was allocated while
 * tracing (the tracer installs zw_mem_set_traceback_hook), and gives the hint otherwise. */
static int line_damaged;

static void
overrun_and_free(zw_heap *h, bool traced)
{
    unsigned char *p;
    if (traced) {
        line_damaged = __LINE__ + 1;
        p = zw_heap_malloc(h, 10);
    } else {
        p = zw_heap_malloc(h, 10);
    }
    cr_assert_not_null(p);
    p[10] = 'A';
    zw_heap_free(h, p);
}

static char *
debug_report(bool tracing)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    cr_assert_not_null(out);
    zw_error err;
    if (tracing)
        cr_assert_eq(zw_trace_start(8, &err), 0, "%s", err.msg);
    zw_heap_config cfg = {.flags = ZW_HEAP_IGNORE_ENV | ZW_HEAP_DEBUG | ZW_HEAP_DEBUG_CONTINUE,
                          .report = out};
    zw_heap *h = zw_heap_new_ex(&cfg);
    cr_assert_not_null(h);
    overrun_and_free(h, tracing);
    cr_assert_eq(zw_heap_debug_errors(h), 1);
    zw_heap_destroy(h);
    if (tracing)
        zw_trace_stop();
    fclose(out);
    return text;
}

Test(trace_lines, a_debug_report_names_where_the_block_was_allocated)
{
    char *text = debug_report(true);
    cr_assert_not_null(strstr(text, "buffer overrun"), "%s", text);
    cr_assert_null(strstr(text, "start tracing"), "the hint while tracing:\n%s", text);
    cr_assert_not_null(strstr(text, "Memory block allocated at (most recent call first):"), "%s",
                       text);
    char want[64];
    snprintf(want, sizeof(want), "test_lines.c\", line %d", line_damaged);
    cr_assert_not_null(strstr(text, want), "no %s in:\n%s", want, text);
    free(text);

    text = debug_report(false);
    cr_assert_not_null(strstr(text, "start tracing (zw_trace_start)"), "%s", text);
    cr_assert_null(strstr(text, "Memory block allocated at"), "%s", text);
    free(text);
}
