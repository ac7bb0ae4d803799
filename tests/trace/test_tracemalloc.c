/* tests/trace/test_tracemalloc.c - the scenarios of CPython's Lib/test/test_tracemalloc.py
 * (reference/cpython-memory.md 6.3, numbered as there) ported to the C API: the tracing life
 * cycle, traced memory, tracebacks of live blocks, snapshots from raw traces (fixtures A and B),
 * statistics, compare_to, filters, formatting and the track/untrack API. Python-only scenarios
 * (13 pickled attributes, 15 closure cells, 31 environment) have no counterpart. This file is
 * built with -O0 and frame pointers, so allocation sites are the lines written here. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <zerowaste/zerowaste.h>

#include "zwt_trace.h"

#define MIB ((size_t)1 << 20)

static void
start(int nframe)
{
    zw_error err;
    cr_assert_eq(zw_trace_start(nframe, &err), 0, "%s", err.msg);
}

/* The most recent frame of the traceback of `p`, which must be traced. */
static void
expect_site(const void *p, unsigned line)
{
    zw_traceback *tb = zw_trace_get_traceback(p);
    cr_assert_not_null(tb, "block %p has no traceback", p);
    const zw_frame *f = zw_traceback_frame(tb, zw_traceback_len(tb) - 1);
    cr_assert_str_eq(f->filename, __FILE__);
    cr_assert_eq(f->lineno, line, "allocated at line %u, traceback says %u", line, f->lineno);
    zw_traceback_free(tb);
}

/* 1: frames given most recent first are stored oldest first; total_nframe is kept */
Test(trace_tracemalloc, raw_traceback_is_stored_oldest_first)
{
    static const zwt_raw_trace t[] = {{0, 1, 2, {"f1", "f2"}, {1, 2}, 2}};
    zw_snapshot *snap = zwt_snapshot_of(t, 1, 2);
    const zw_traceback *tb = zw_snapshot_trace(snap, 0).traceback;
    char text[128];
    cr_assert_str_eq(zwt_frames_text(tb, text, sizeof(text)), "f2:2 f1:1");
    cr_assert_eq(zw_traceback_total_nframe(tb), 2);
    zw_snapshot_free(snap);
}

/* 2: the tracer's own memory is reported and does not grow after clear */
Test(trace_tracemalloc, tracer_memory_does_not_grow_after_clear)
{
    start(1);
    size_t idle = zw_trace_get_memory();
    cr_assert_gt(idle, 0);
    void *p[1000];
    for (int i = 0; i < 1000; i++)
        p[i] = zw_mem_malloc(16);
    cr_assert_geq(zw_trace_get_memory(), idle);
    zw_trace_clear();
    size_t cleared = zw_trace_get_memory();
    for (int i = 0; i < 1000; i++)
        zw_mem_free(p[i]);
    cr_assert_leq(zw_trace_get_memory(), cleared);
    zw_trace_stop();
}

/* 3: a 12345-byte block's traceback names the line that allocated it */
Test(trace_tracemalloc, block_traceback_names_its_allocation_line)
{
    start(1);
    unsigned line = __LINE__ + 1;
    void *p = zw_mem_malloc(12345);
    expect_site(p, line);
    zw_mem_free(p);
    zw_trace_stop();
}

/* 4: a block reused at a new site gets the new site's traceback */
Test(trace_tracemalloc, reused_block_gets_the_new_site)
{
    start(1);
    unsigned line1 = __LINE__ + 1;
    void *p = zw_mem_malloc(40);
    expect_site(p, line1);
    zw_mem_free(p);
    unsigned line2 = __LINE__ + 1;
    void *q = zw_mem_malloc(40);
    cr_assert_eq(q, p, "the freed block is reused first");
    expect_site(q, line2);
    zw_mem_free(q);
    zw_trace_stop();
}

static __attribute__((noinline)) void *
recurse(int depth, size_t size)
{
    if (depth == 0)
        return zw_mem_malloc(size);
    void *p = recurse(depth - 1, size);
    __asm__ volatile("" ::: "memory"); /* not a tail call: each level keeps its frame */
    return p;
}

/* 5: the limit is checked and decides how many frames are kept */
Test(trace_tracemalloc, limit_is_checked_and_respected)
{
    zw_error err;
    cr_assert_eq(zw_trace_start(-1, &err), -1);
    cr_assert_str_eq(err.msg, "the number of frames must be in range [1; 1024], not -1");
    cr_assert_eq(zw_trace_start(0, &err), -1);
    cr_assert_eq(zw_trace_start(ZW_TRACE_MAX_NFRAME + 1, &err), -1);
    cr_assert_not(zw_trace_is_tracing());
    int limits[] = {10, 1};
    for (int k = 0; k < 2; k++) {
        start(limits[k]);
        void *p = recurse(30, 64);
        zw_traceback *tb = zw_trace_get_traceback(p);
        cr_assert_not_null(tb);
        cr_assert_eq(zw_traceback_len(tb), (size_t)limits[k], "limit %d: %zu frames", limits[k],
                     zw_traceback_len(tb));
        cr_assert_gt(zw_traceback_total_nframe(tb), 31);
        zw_traceback_free(tb);
        zw_mem_free(p);
        zw_trace_stop();
    }
}

/* 6: a trace holds the requested size; after stop there is nothing to take */
Test(trace_tracemalloc, trace_size_is_the_request)
{
    start(1);
    void *p = zw_mem_malloc(123);
    zw_error err;
    zw_snapshot *snap = zw_trace_take_snapshot(&err);
    cr_assert_not_null(snap, "%s", err.msg);
    cr_assert_eq(zw_snapshot_len(snap), 1);
    zw_trace_info t = zw_snapshot_trace(snap, 0);
    cr_assert_eq(t.size, 123);
    cr_assert_eq(t.domain, ZW_TRACE_DEFAULT_DOMAIN);
    zw_snapshot_free(snap);
    zw_trace_stop();
    cr_assert_null(zw_trace_take_snapshot(&err));
    cr_assert_null(zw_trace_get_traceback(p));
    zw_mem_free(p);
}

static __attribute__((noinline)) void *
same_site(size_t n)
{
    void *p = zw_mem_malloc(n);
    __asm__ volatile("" ::: "memory");
    return p;
}

/* 7: two blocks with the same stack share one traceback */
Test(trace_tracemalloc, identical_stacks_share_one_traceback)
{
    start(4);
    void *p[2];
    for (int i = 0; i < 2; i++)
        p[i] = same_site(32 + 16 * (size_t)i);
    zw_error err;
    zw_snapshot *snap = zw_trace_take_snapshot(&err);
    cr_assert_eq(zw_snapshot_len(snap), 2);
    cr_assert_eq(zw_snapshot_trace(snap, 0).traceback, zw_snapshot_trace(snap, 1).traceback);
    zw_snapshot_free(snap);
    zw_mem_free(p[0]);
    zw_mem_free(p[1]);
    zw_trace_stop();
}

/* 8: traced memory follows a 1 MiB block in and out; clear and stop give (0, 0) */
Test(trace_tracemalloc, traced_memory_follows_a_big_block)
{
    start(1);
    size_t cur0;
    size_t peak0;
    zw_trace_get_traced_memory(&cur0, &peak0);
    void *p = zw_mem_malloc(MIB);
    size_t cur;
    size_t peak;
    zw_trace_get_traced_memory(&cur, &peak);
    cr_assert_eq(cur, cur0 + MIB);
    cr_assert_geq(peak, cur);
    zw_mem_free(p);
    size_t cur2;
    size_t peak2;
    zw_trace_get_traced_memory(&cur2, &peak2);
    cr_assert_eq(cur2, cur - MIB);
    cr_assert_eq(peak2, peak);
    zw_trace_clear();
    zw_trace_get_traced_memory(&cur, &peak);
    cr_assert(cur == 0 && peak == 0);
    zw_trace_stop();
    zw_trace_get_traced_memory(&cur, &peak);
    cr_assert(cur == 0 && peak == 0);
}

/* 9: after clear, older blocks have no traceback */
Test(trace_tracemalloc, clear_forgets_older_blocks)
{
    start(1);
    void *p = zw_mem_malloc(100);
    zw_traceback *tb = zw_trace_get_traceback(p);
    cr_assert_not_null(tb);
    zw_traceback_free(tb);
    zw_trace_clear();
    cr_assert_null(zw_trace_get_traceback(p));
    zw_mem_free(p);
    zw_trace_stop();
}

/* 10: reset_peak lowers the peak to current; a new block raises it again */
Test(trace_tracemalloc, reset_peak)
{
    start(1);
    void *big = zw_mem_malloc(MIB);
    zw_mem_free(big);
    size_t cur;
    size_t peak1;
    zw_trace_get_traced_memory(&cur, &peak1);
    zw_trace_reset_peak();
    size_t peak2;
    zw_trace_get_traced_memory(&cur, &peak2);
    cr_assert_lt(peak2, peak1);
    cr_assert_geq(peak2, cur);
    void *p = zw_mem_malloc(MIB);
    size_t peak3;
    zw_trace_get_traced_memory(&cur, &peak3);
    cr_assert_geq(peak3, peak2 + MIB);
    zw_mem_free(p);
    zw_trace_stop();
}

/* 11 */
Test(trace_tracemalloc, is_tracing)
{
    cr_assert_not(zw_trace_is_tracing());
    start(1);
    cr_assert(zw_trace_is_tracing());
    zw_trace_stop();
    cr_assert_not(zw_trace_is_tracing());
}

/* 12: deep stacks count every frame; a snapshot after stop is an error with tracemalloc's text */
Test(trace_tracemalloc, snapshot_of_a_deep_stack_and_after_stop)
{
    start(5);
    void *p = recurse(20, 48);
    zw_error err;
    zw_snapshot *snap = zw_trace_take_snapshot(&err);
    cr_assert_not_null(snap, "%s", err.msg);
    bool deep = false;
    for (size_t i = 0; i < zw_snapshot_len(snap); i++)
        deep |= zw_traceback_total_nframe(zw_snapshot_trace(snap, i).traceback) > 10;
    cr_assert(deep);
    cr_assert_eq(zw_snapshot_traceback_limit(snap), 5);
    zw_snapshot_free(snap);
    zw_mem_free(p);
    zw_trace_stop();
    cr_assert_null(zw_trace_take_snapshot(&err));
    cr_assert_str_eq(err.msg, "the tracer must be tracing memory allocations to take a snapshot");
}

/* 14: a child process after fork still traces */
Test(trace_tracemalloc, child_after_fork_still_traces)
{
    start(1);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        void *p = zw_mem_malloc(77);
        zw_traceback *tb = zw_trace_get_traceback(p);
        _exit(zw_trace_is_tracing() && tb != NULL ? 0 : 1);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    zw_trace_stop();
}

/* 16: a snapshot from raw traces keeps the limit and total_nframe beyond the frames kept */
Test(trace_tracemalloc, raw_snapshot_keeps_limit_and_total)
{
    static const zwt_raw_trace t[] = {{0, 10, 1, {"a.py"}, {2}, 10}};
    zw_snapshot *snap = zwt_snapshot_of(t, 1, 1);
    cr_assert_eq(zw_snapshot_traceback_limit(snap), 1);
    const zw_traceback *tb = zw_snapshot_trace(snap, 0).traceback;
    cr_assert_eq(zw_traceback_len(tb), 1);
    cr_assert_eq(zw_traceback_total_nframe(tb), 10);
    zw_snapshot_free(snap);
}

/* 17: exclusive and inclusive filters on the most recent frame; empty list copies */
Test(trace_tracemalloc, filter_traces)
{
    zw_snapshot *a = zwt_fixture_a();
    zw_filter f1 = ZW_FILTER(false, "b.py");
    cr_assert_eq(zwt_kept(a, &f1, 1), 5, "only the b.py:1 trace goes");
    zw_filter f2[2] = {ZW_FILTER(true, "a.py"), ZW_FILTER(true, "a.py")};
    f2[0].lineno = 2;
    f2[1].lineno = 5;
    cr_assert_eq(zwt_kept(a, f2, 2), 4);
    zw_error err;
    zw_snapshot *copy = zw_snapshot_filter_traces(a, NULL, 0, &err);
    cr_assert_eq(zw_snapshot_len(copy), zw_snapshot_len(a));
    for (size_t i = 0; i < zw_snapshot_len(a); i++) {
        zw_trace_info x = zw_snapshot_trace(a, i);
        zw_trace_info y = zw_snapshot_trace(copy, i);
        cr_assert(x.domain == y.domain && x.size == y.size);
        cr_assert_eq(zw_traceback_compare(x.traceback, y.traceback), 0);
    }
    zw_snapshot_free(copy);
    cr_assert_null(zw_snapshot_filter_traces(a, NULL, 1, &err), "NULL filters: an error");
    zw_snapshot_free(a);
}

/* 18: a frame filter restricted to a domain */
Test(trace_tracemalloc, filter_with_domain)
{
    zw_snapshot *a = zwt_fixture_a();
    zw_filter f = ZW_FILTER(false, "a.py");
    f.domain = 1;
    zw_error err;
    zw_snapshot *kept = zw_snapshot_filter_traces(a, &f, 1, &err);
    cr_assert_eq(zw_snapshot_len(kept), 5);
    for (size_t i = 0; i < zw_snapshot_len(kept); i++)
        cr_assert_neq(zw_snapshot_trace(kept, i).domain, 1);
    zw_snapshot_free(kept);
    zw_snapshot_free(a);
}

/* 19: DomainFilter */
Test(trace_tracemalloc, domain_filter)
{
    zw_snapshot *a = zwt_fixture_a();
    zw_filter out = ZW_DOMAIN_FILTER(false, 3);
    cr_assert_eq(zwt_kept(a, &out, 1), 5);
    zw_filter in = ZW_DOMAIN_FILTER(true, 3);
    zw_error err;
    zw_snapshot *kept = zw_snapshot_filter_traces(a, &in, 1, &err);
    cr_assert_eq(zw_snapshot_len(kept), 1);
    cr_assert_str_eq(zw_traceback_frame(zw_snapshot_trace(kept, 0).traceback, 0)->filename,
                     "<unknown>");
    zw_snapshot_free(kept);
    zw_snapshot_free(a);
}

/* 20: statistics by line and compare_to, in tracemalloc's order */
Test(trace_tracemalloc, statistics_and_compare_by_lineno)
{
    zw_snapshot *a = zwt_fixture_a();
    zw_snapshot *b = zwt_fixture_b();
    zw_error err;
    zw_stat_list *l = zw_snapshot_statistics(a, ZW_GROUP_LINENO, false, &err);
    static const zwt_row ra[] = {{"b.py", 1, 66, 0, 1, 0},
                                 {"a.py", 2, 30, 0, 3, 0},
                                 {"<unknown>", 0, 7, 0, 1, 0},
                                 {"a.py", 5, 2, 0, 1, 0}};
    zwt_check_rows(l, ra, 4);
    zw_stat_list_free(l);
    l = zw_snapshot_statistics(b, ZW_GROUP_LINENO, false, &err);
    static const zwt_row rb[] = {
        {"a.py", 5, 5002, 0, 2, 0}, {"c.py", 578, 400, 0, 1, 0}, {"a.py", 2, 30, 0, 3, 0}};
    zwt_check_rows(l, rb, 3);
    zw_stat_list_free(l);
    l = zw_snapshot_compare_to(b, a, ZW_GROUP_LINENO, false, &err);
    static const zwt_row rd[] = {{"a.py", 5, 5002, 5000, 2, 1},
                                 {"c.py", 578, 400, 400, 1, 1},
                                 {"b.py", 1, 0, -66, 0, -1},
                                 {"<unknown>", 0, 0, -7, 0, -1},
                                 {"a.py", 2, 30, 0, 3, 0}};
    zwt_check_rows(l, rd, 5);
    zw_stat_list_free(l);
    zw_snapshot_free(a);
    zw_snapshot_free(b);
}

/* 21: by file name */
Test(trace_tracemalloc, statistics_and_compare_by_filename)
{
    zw_snapshot *a = zwt_fixture_a();
    zw_snapshot *b = zwt_fixture_b();
    zw_error err;
    zw_stat_list *l = zw_snapshot_statistics(a, ZW_GROUP_FILENAME, false, &err);
    static const zwt_row ra[] = {
        {"b.py", 0, 66, 0, 1, 0}, {"a.py", 0, 32, 0, 4, 0}, {"<unknown>", 0, 7, 0, 1, 0}};
    zwt_check_rows(l, ra, 3);
    zw_stat_list_free(l);
    l = zw_snapshot_statistics(b, ZW_GROUP_FILENAME, false, &err);
    static const zwt_row rb[] = {{"a.py", 0, 5032, 0, 5, 0}, {"c.py", 0, 400, 0, 1, 0}};
    zwt_check_rows(l, rb, 2);
    zw_stat_list_free(l);
    l = zw_snapshot_compare_to(b, a, ZW_GROUP_FILENAME, false, &err);
    static const zwt_row rd[] = {{"a.py", 0, 5032, 5000, 5, 1},
                                 {"c.py", 0, 400, 400, 1, 1},
                                 {"b.py", 0, 0, -66, 0, -1},
                                 {"<unknown>", 0, 0, -7, 0, -1}};
    zwt_check_rows(l, rd, 4);
    zw_stat_list_free(l);
    zw_snapshot_free(a);
    zw_snapshot_free(b);
}

/* 22: by traceback; cumulative with tracebacks is an error */
Test(trace_tracemalloc, statistics_by_traceback)
{
    zw_snapshot *a = zwt_fixture_a();
    zw_error err;
    zw_stat_list *l = zw_snapshot_statistics(a, ZW_GROUP_TRACEBACK, false, &err);
    cr_assert_eq(zw_stat_list_len(l), 4);
    static const char *const keys[] = {"b.py:1", "b.py:4 a.py:2", "<unknown>:0", "b.py:4 a.py:5"};
    static const size_t sizes[] = {66, 30, 7, 2};
    static const size_t counts[] = {1, 3, 1, 1};
    for (size_t i = 0; i < 4; i++) {
        const zw_statistic *s = zw_stat_list_get(l, i);
        char text[128];
        cr_assert_str_eq(zwt_frames_text(s->traceback, text, sizeof(text)), keys[i]);
        cr_assert(s->size == sizes[i] && s->count == counts[i], "row %zu", i);
    }
    zw_stat_list_free(l);
    cr_assert_null(zw_snapshot_statistics(a, ZW_GROUP_TRACEBACK, true, &err));
    cr_assert_str_eq(err.msg, "cannot compute statistics: cumulative mode cannot be used with "
                              "key type 'traceback'");
    cr_assert_null(zw_snapshot_statistics(a, (zw_group)3, false, &err));
    zw_snapshot_free(a);
}

/* 23: cumulative statistics count every frame */
Test(trace_tracemalloc, cumulative_statistics)
{
    zw_snapshot *a = zwt_fixture_a();
    zw_error err;
    zw_stat_list *l = zw_snapshot_statistics(a, ZW_GROUP_FILENAME, true, &err);
    static const zwt_row rf[] = {
        {"b.py", 0, 98, 0, 5, 0}, {"a.py", 0, 32, 0, 4, 0}, {"<unknown>", 0, 7, 0, 1, 0}};
    zwt_check_rows(l, rf, 3);
    zw_stat_list_free(l);
    l = zw_snapshot_statistics(a, ZW_GROUP_LINENO, true, &err);
    static const zwt_row rl[] = {{"b.py", 1, 66, 0, 1, 0},
                                 {"b.py", 4, 32, 0, 4, 0},
                                 {"a.py", 2, 30, 0, 3, 0},
                                 {"<unknown>", 0, 7, 0, 1, 0},
                                 {"a.py", 5, 2, 0, 1, 0}};
    zwt_check_rows(l, rl, 5);
    zw_stat_list_free(l);
    zw_snapshot_free(a);
}

/* 24: the textual forms */
Test(trace_tracemalloc, str_forms)
{
    zw_snapshot *a = zwt_fixture_a();
    zw_snapshot *b = zwt_fixture_b();
    char text[256];
    zw_trace_info t = zw_snapshot_trace(a, 0);
    zw_trace_info_str(&t, text, sizeof(text));
    cr_assert_str_eq(text, "b.py:4: 10 B");
    zw_frame_str(zw_traceback_frame(t.traceback, 0), text, sizeof(text));
    cr_assert_str_eq(text, "b.py:4");
    zw_error err;
    zw_stat_list *l = zw_snapshot_statistics(a, ZW_GROUP_LINENO, false, &err);
    zw_statistic_str(zw_stat_list_get(l, 0), false, text, sizeof(text));
    cr_assert_str_eq(text, "b.py:1: size=66 B, count=1, average=66 B");
    zw_stat_list_free(l);
    l = zw_snapshot_compare_to(b, a, ZW_GROUP_LINENO, false, &err);
    zw_statistic_str(zw_stat_list_get(l, 0), true, text, sizeof(text));
    cr_assert_str_eq(text, "a.py:5: size=5002 B (+5000 B), count=2 (+1), average=2501 B");
    zw_statistic_str(zw_stat_list_get(l, 2), true, text, sizeof(text));
    cr_assert_str_eq(text, "b.py:1: size=0 B (-66 B), count=0 (-1)");
    zw_stat_list_free(l);
    static const struct {
        int64_t size;
        bool sign;
        const char *text;
    } sizes[] = {{0, false, "0 B"},
                 {5002, false, "5002 B"},
                 {10239, false, "10239 B"},
                 {10240, false, "10.0 KiB"},
                 {12595, true, "+12.3 KiB"},
                 {107520, false, "105 KiB"},
                 {-66, true, "-66 B"},
                 {(int64_t)100 << 20, false, "100 MiB"},
                 {(int64_t)1 << 50, false, "1024 TiB"}};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        zw_format_size(sizes[i].size, sizes[i].sign, text, sizeof(text));
        cr_assert_str_eq(text, sizes[i].text);
    }
    zw_snapshot_free(a);
    zw_snapshot_free(b);
}

/* 25: traces and frames read by index agree with iteration (Python's slicing) */
Test(trace_tracemalloc, indexing_agrees)
{
    zw_snapshot *a = zwt_fixture_a();
    cr_assert_eq(zw_snapshot_len(a), 6);
    zw_trace_info t0 = zw_snapshot_trace(a, 0);
    zw_trace_info t1 = zw_snapshot_trace(a, 1);
    cr_assert_eq(t0.traceback, t1.traceback, "same frames: one traceback");
    cr_assert_null(zw_traceback_frame(t0.traceback, 2));
    cr_assert_str_eq(zw_traceback_frame(t0.traceback, 1)->filename, "a.py");
    zw_snapshot_free(a);
}

static char *
format_of(const zw_traceback *tb, int32_t limit, bool most_recent_first)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    zw_traceback_format(tb, limit, most_recent_first, f);
    fclose(f);
    return text;
}

/* 26: format() with limits and order (no source lines: the files do not exist) */
Test(trace_tracemalloc, traceback_format)
{
    static const zwt_raw_trace t[] = {{0, 10, 2, {"a.py", "b.py"}, {2, 4}, 2}};
    zw_snapshot *snap = zwt_snapshot_of(t, 1, 2);
    const zw_traceback *tb = zw_snapshot_trace(snap, 0).traceback;
    static const struct {
        int32_t limit;
        bool mrf;
        const char *text;
    } cases[] = {
        {ZW_NO_LIMIT, false, "  File \"b.py\", line 4\n  File \"a.py\", line 2\n"},
        {1, false, "  File \"a.py\", line 2\n"},
        {-1, false, "  File \"b.py\", line 4\n"},
        {ZW_NO_LIMIT, true, "  File \"a.py\", line 2\n  File \"b.py\", line 4\n"},
        {1, true, "  File \"a.py\", line 2\n"},
        {0, false, ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *text = format_of(tb, cases[i].limit, cases[i].mrf);
        cr_assert_str_eq(text, cases[i].text, "case %zu", i);
        free(text);
    }
    zw_snapshot_free(snap);
}

/* 26 with source: a frame of this file prints its line */
Test(trace_tracemalloc, traceback_format_prints_the_source_line)
{
    start(1);
    void *p = zw_mem_malloc(5); /* the marker */
    zw_traceback *tb = zw_trace_get_traceback(p);
    char *text = format_of(tb, 1, false);
    cr_assert(strstr(text, "    void *p = zw_mem_malloc(5); /* the marker */\n") != NULL, "%s",
              text);
    free(text);
    zw_traceback_free(tb);
    zw_mem_free(p);
    zw_trace_stop();
}

/* 27: a filter's defaults */
Test(trace_tracemalloc, filter_defaults)
{
    zw_filter f = ZW_FILTER(true, "abc");
    cr_assert(f.kind == ZW_FILTER_FRAME && f.inclusive && strcmp(f.filename_pattern, "abc") == 0);
    cr_assert(f.lineno == ZW_ANY_LINENO && !f.all_frames && f.domain == ZW_ANY_DOMAIN);
    zw_filter d = ZW_DOMAIN_FILTER(false, 7);
    cr_assert(d.kind == ZW_FILTER_DOMAIN && !d.inclusive && d.domain == 7);
    zw_filter bad = ZW_FILTER(true, NULL);
    zw_snapshot *a = zwt_fixture_a();
    zw_error err;
    cr_assert_null(zw_snapshot_filter_traces(a, &bad, 1, &err));
    cr_assert_str_eq(err.msg, "filter 0: filename_pattern must be a string, not NULL");
    zw_snapshot_free(a);
}

/* Does `f` keep a one-frame trace (file, line)? */
static bool
keeps(zw_filter f, const char *file, unsigned line)
{
    zwt_raw_trace t = {0, 1, 1, {file}, {line}, 1};
    zw_snapshot *snap = zwt_snapshot_of(&t, 1, 1);
    bool kept = zwt_kept(snap, &f, 1) == 1;
    zw_snapshot_free(snap);
    return kept;
}

static zw_filter
filter_line(bool inclusive, const char *pattern, long lineno)
{
    zw_filter f = ZW_FILTER(inclusive, pattern);
    f.lineno = lineno;
    return f;
}

/* 28: _match_frame's truth table */
Test(trace_tracemalloc, match_frame)
{
    cr_assert(keeps(filter_line(true, "abc", ZW_ANY_LINENO), "abc", 5));
    cr_assert(keeps(filter_line(true, "abc", ZW_ANY_LINENO), "abc", 0));
    cr_assert_not(keeps(filter_line(true, "abc", ZW_ANY_LINENO), "12356", 5));
    cr_assert(keeps(filter_line(true, "abc", 5), "abc", 5));
    cr_assert_not(keeps(filter_line(true, "abc", 5), "abc", 10));
    cr_assert_not(keeps(filter_line(true, "abc", 5), "12356", 5));
    cr_assert(keeps(filter_line(true, "abc", 0), "abc", 0));
    cr_assert_not(keeps(filter_line(true, "abc", 0), "abc", 5));
    cr_assert_not(keeps(filter_line(false, "abc", ZW_ANY_LINENO), "abc", 5));
    cr_assert(keeps(filter_line(false, "abc", ZW_ANY_LINENO), "12356", 5));
    cr_assert_not(keeps(filter_line(false, "abc", 5), "abc", 5));
    cr_assert(keeps(filter_line(false, "abc", 5), "abc", 10));
    cr_assert(keeps(filter_line(false, "abc", 5), "12356", 5));
    cr_assert_not(keeps(filter_line(false, "abc", 0), "abc", 0));
    cr_assert(keeps(filter_line(false, "abc", 0), "abc", 5));
}

/* 29: fnmatch patterns (POSIX: case-sensitive, '\\' is not '/') */
Test(trace_tracemalloc, filename_patterns)
{
    static const struct {
        const char *pattern;
        const char *file;
        bool match;
    } cases[] = {
        {"", "", true},         {"", "a", false},         {"*", "", true},
        {"*", "abc", true},     {"a*c", "abc", true},     {"a*c", "abcx", false},
        {"a*c", "abcxc", true}, {"a*c*e", "abcde", true}, {"a*c*e", "abcd", false},
        {"a*b", "a/b", true},   {"abc", "ABC", false},    {"a/b", "a\\b", false},
        {"a\\b", "a\\b", true}, {"a?c", "abc", true},     {"[ab]*", "b.c", true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        cr_assert_eq(keeps(ZW_FILTER(true, cases[i].pattern), cases[i].file, 1), cases[i].match,
                     "pattern '%s' on '%s'", cases[i].pattern, cases[i].file);
}

/* 30: all_frames */
Test(trace_tracemalloc, all_frames)
{
    static const zwt_raw_trace t[] = {
        {0, 1, 2, {"a.py", "b.py"}, {2, 3}, 2},
        {0, 1, 2, {"b.py", "b.py"}, {4, 5}, 2},
        {0, 1, 2, {"c.py", "<unknown>"}, {5, 0}, 2},
        {0, 1, 1, {"<unknown>"}, {0}, 1},
    };
    static const struct {
        bool inclusive;
        const char *pattern;
        bool all;
        bool keep[4];
    } cases[] = {
        {true, "b.py", true, {true, true, false, false}},
        {true, "b.py", false, {false, true, false, false}},
        {false, "b.py", true, {false, false, true, true}},
        {false, "b.py", false, {true, false, true, true}},
        {true, "<unknown>", true, {false, false, true, true}},
        {true, "<unknown>", false, {false, false, false, true}},
        {false, "<unknown>", true, {true, true, false, false}},
        {false, "<unknown>", false, {true, true, true, false}},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        for (size_t i = 0; i < 4; i++) {
            zw_snapshot *snap = zwt_snapshot_of(&t[i], 1, 2);
            zw_filter f = ZW_FILTER(cases[c].inclusive, cases[c].pattern);
            f.all_frames = cases[c].all;
            cr_assert_eq(zwt_kept(snap, &f, 1) == 1, cases[c].keep[i], "case %zu, trace %zu", c, i);
            zw_snapshot_free(snap);
        }
    }
}

/* The size traced in `domain`, from a snapshot filtered on it. */
static size_t
domain_size(unsigned domain)
{
    zw_error err;
    zw_snapshot *snap = zw_trace_take_snapshot(&err);
    zw_filter f = ZW_DOMAIN_FILTER(true, domain);
    zw_snapshot *only = zw_snapshot_filter_traces(snap, &f, 1, &err);
    size_t size = 0;
    for (size_t i = 0; i < zw_snapshot_len(only); i++)
        size += zw_snapshot_trace(only, i).size;
    zw_snapshot_free(only);
    zw_snapshot_free(snap);
    return size;
}

/* The traceback of (domain, ptr) in a snapshot: its most recent line, or 0 when not traced. */
static unsigned
tracked_line(unsigned domain)
{
    zw_error err;
    zw_snapshot *snap = zw_trace_take_snapshot(&err);
    unsigned line = 0;
    for (size_t i = 0; i < zw_snapshot_len(snap); i++) {
        zw_trace_info t = zw_snapshot_trace(snap, i);
        if (t.domain == domain) {
            const zw_frame *f = zw_traceback_frame(t.traceback, zw_traceback_len(t.traceback) - 1);
            line = f->lineno;
        }
    }
    zw_snapshot_free(snap);
    return line;
}

/* 32: track and untrack a block of the caller's own domain */
Test(trace_tracemalloc, track_and_untrack)
{
    uintptr_t ptr = 0x7f0000001000;
    cr_assert_eq(zw_trace_track(5, ptr, 123), -2);
    cr_assert_eq(zw_trace_untrack(5, ptr), -2);
    start(1);
    unsigned line1 = __LINE__ + 1;
    cr_assert_eq(zw_trace_track(5, ptr, 123), 0);
    cr_assert_eq(domain_size(5), 123);
    cr_assert_eq(tracked_line(5), line1);
    unsigned line2 = __LINE__ + 1;
    cr_assert_eq(zw_trace_track(5, ptr, 1000), 0);
    cr_assert_eq(domain_size(5), 1000);
    cr_assert_eq(tracked_line(5), line2, "tracking again replaces the traceback");
    size_t cur;
    zw_trace_get_traced_memory(&cur, NULL);
    cr_assert_eq(cur, 1000);
    cr_assert_eq(zw_trace_untrack(5, ptr), 0);
    cr_assert_eq(domain_size(5), 0);
    cr_assert_eq(tracked_line(5), 0);
    cr_assert_eq(zw_trace_untrack(5, ptr), 0, "untracking twice is fine");
    /* a huge block goes to the wide table, and comes back */
    cr_assert_eq(zw_trace_track(0, ptr, (size_t)5 << 32), 0);
    zw_trace_get_traced_memory(&cur, NULL);
    cr_assert_eq(cur, (size_t)5 << 32);
    cr_assert_eq(zw_trace_track(0, ptr, 8), 0);
    zw_trace_get_traced_memory(&cur, NULL);
    cr_assert_eq(cur, 8);
    cr_assert_eq(zw_trace_untrack(0, ptr), 0);
    zw_trace_get_traced_memory(&cur, NULL);
    cr_assert_eq(cur, 0);
    /* the same beside a block of another domain, which keeps the wide table non-empty: a huge
     * block of the default domain is found there again, whatever else the table holds */
    uintptr_t ptr2 = ptr + 0x10000;
    cr_assert_eq(zw_trace_track(5, ptr, 10), 0);
    cr_assert_eq(zw_trace_track(0, ptr2, 8), 0);
    cr_assert_eq(zw_trace_untrack(0, ptr2), 0);
    cr_assert_eq(zw_trace_track(0, ptr2, (size_t)3 << 32), 0);
    zw_trace_get_traced_memory(&cur, NULL);
    cr_assert_eq(cur, ((size_t)3 << 32) + 10);
    cr_assert_eq(zw_trace_track(0, ptr2, 16), 0, "a huge block shrinks: out of the wide table");
    zw_trace_get_traced_memory(&cur, NULL);
    cr_assert_eq(cur, 16 + 10);
    cr_assert_eq(zw_trace_track(0, ptr2, (size_t)3 << 32), 0, "and grows back into it");
    cr_assert_eq(zw_trace_untrack(0, ptr2), 0);
    zw_trace_get_traced_memory(&cur, NULL);
    cr_assert_eq(cur, 10);
    cr_assert_eq(domain_size(5), 10);
    cr_assert_eq(zw_trace_untrack(5, ptr), 0);
    zw_trace_get_traced_memory(&cur, NULL);
    cr_assert_eq(cur, 0);
    zw_trace_stop();
    cr_assert_eq(zw_trace_track(5, ptr, 1), -2);
    cr_assert_eq(zw_trace_untrack(5, ptr), -2);
}

/* 33: start while tracing keeps the limit */
Test(trace_tracemalloc, start_twice_keeps_the_limit)
{
    start(1);
    start(10);
    cr_assert_eq(zw_trace_get_traceback_limit(), 1);
    void *p = recurse(12, 16);
    zw_traceback *tb = zw_trace_get_traceback(p);
    cr_assert_eq(zw_traceback_len(tb), 1);
    zw_traceback_free(tb);
    zw_mem_free(p);
    zw_trace_stop();
}

static __attribute__((noinline)) void *
recursive_site(int depth)
{
    void *p = depth == 0 ? zw_mem_malloc(24) : recursive_site(depth - 1);
    __asm__ volatile("" ::: "memory");
    return p;
}

/* 34: a recursive frame counts once per level in cumulative mode */
Test(trace_tracemalloc, recursion_counts_each_level)
{
    start(16);
    void *p[3];
    for (int i = 0; i < 3; i++)
        p[i] = recursive_site(4);
    zw_error err;
    zw_snapshot *snap = zw_trace_take_snapshot(&err);
    zw_stat_list *l = zw_snapshot_statistics(snap, ZW_GROUP_LINENO, true, &err);
    unsigned line = 0;
    for (size_t i = 0; i < zw_snapshot_len(snap); i++) {
        const zw_traceback *tb = zw_snapshot_trace(snap, i).traceback;
        line = zw_traceback_frame(tb, zw_traceback_len(tb) - 1)->lineno;
    }
    bool found = false;
    for (size_t i = 0; i < zw_stat_list_len(l); i++) {
        const zw_statistic *s = zw_stat_list_get(l, i);
        const zw_frame *f = zw_traceback_frame(s->traceback, 0);
        if (strcmp(f->filename, __FILE__) == 0 && f->lineno == line) {
            cr_assert_eq(s->count, 3 * 5, "3 traces x 5 levels, got %zu", s->count);
            cr_assert_eq(s->size, 3 * 5 * 24);
            found = true;
        }
    }
    cr_assert(found);
    zw_stat_list_free(l);
    zw_snapshot_free(snap);
    for (int i = 0; i < 3; i++)
        zw_mem_free(p[i]);
    zw_trace_stop();
}

/* stop removes the wrappers: the domains and the heap observer are what they were */
Test(trace_tracemalloc, stop_restores_the_domains)
{
    zw_allocator before[ZW_MEM_NDOMAINS];
    for (int d = 0; d < ZW_MEM_NDOMAINS; d++)
        zw_mem_get_allocator((zw_mem_domain)d, &before[d]);
    start(3);
    zw_allocator during;
    zw_mem_get_allocator(ZW_MEM_DOMAIN_MEM, &during);
    cr_assert_neq(during.malloc, before[ZW_MEM_DOMAIN_MEM].malloc);
    zw_heap_hook hook;
    zw_mem_get_heap_hook(&hook);
    cr_assert_not_null(hook.alloc);
    zw_trace_stop();
    for (int d = 0; d < ZW_MEM_NDOMAINS; d++) {
        zw_allocator after;
        zw_mem_get_allocator((zw_mem_domain)d, &after);
        cr_assert(memcmp(&after, &before[d], sizeof(after)) == 0, "domain %d", d);
    }
    zw_mem_get_heap_hook(&hook);
    cr_assert_null(hook.alloc);
}

/* realloc moves the trace with the realloc caller's traceback; a failed one keeps the old */
Test(trace_tracemalloc, realloc_moves_the_trace)
{
    start(1);
    void *p = zw_mem_malloc(10);
    unsigned line = __LINE__ + 1;
    void *q = zw_mem_realloc(p, 2000);
    expect_site(q, line);
    size_t cur;
    zw_trace_get_traced_memory(&cur, NULL);
    cr_assert_eq(cur, 2000);
    cr_assert_null(zw_mem_realloc(q, (size_t)PTRDIFF_MAX));
    zw_trace_get_traced_memory(&cur, NULL);
    cr_assert_eq(cur, 2000, "a failed realloc keeps the block's trace");
    expect_site(q, line);
    zw_mem_free(q);
    zw_trace_get_traced_memory(&cur, NULL);
    cr_assert_eq(cur, 0);
    zw_trace_stop();
}

/* A hook installed on MEM before tracing (it forwards to the table it replaced) stays under the
 * tracer's wrapper, and blocks still carry their caller's line, whichever way they are recorded. */
static zw_allocator hook_saved;
static int hook_calls;

static void *
hook_malloc(void *ctx, size_t n)
{
    hook_calls++;
    void *p = hook_saved.malloc(hook_saved.ctx, n);
    __asm__ volatile("" ::: "memory"); /* a frame of its own between the domain and the heap */
    return p;
}

static void *
hook_calloc(void *ctx, size_t nelem, size_t elsize)
{
    return hook_saved.calloc(hook_saved.ctx, nelem, elsize);
}

static void *
hook_realloc(void *ctx, void *p, size_t n)
{
    return hook_saved.realloc(hook_saved.ctx, p, n);
}

static void
hook_free(void *ctx, void *p)
{
    hook_saved.free(hook_saved.ctx, p);
}

Test(trace_tracemalloc, hook_installed_before_start_keeps_lines_exact)
{
    zw_mem_get_allocator(ZW_MEM_DOMAIN_MEM, &hook_saved);
    zw_allocator mine = {NULL, hook_malloc, hook_calloc, hook_realloc, hook_free};
    zw_mem_set_allocator(ZW_MEM_DOMAIN_MEM, &mine);
    start(4);
    int calls = hook_calls;
    unsigned line_mem = __LINE__ + 1;
    void *p = zw_mem_malloc(300);
    unsigned line_obj = __LINE__ + 1;
    void *q = zw_mem_obj_malloc(200);
    expect_site(p, line_mem);
    expect_site(q, line_obj);
    cr_assert_eq(hook_calls, calls + 1, "the block went through the hook");
    zw_mem_free(p);
    zw_mem_obj_free(q);
    size_t cur;
    zw_trace_get_traced_memory(&cur, NULL);
    cr_assert_eq(cur, 0);
    zw_trace_stop();
    zw_allocator after;
    zw_mem_get_allocator(ZW_MEM_DOMAIN_MEM, &after);
    cr_assert(after.malloc == hook_malloc, "stop puts the hook back");
    zw_mem_set_allocator(ZW_MEM_DOMAIN_MEM, &hook_saved);
}
