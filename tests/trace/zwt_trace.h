/* tests/trace/zwt_trace.h - helpers of the trace tests: tracemalloc's fixtures A and B built from
 * raw frames, checks of statistic lists against expected rows, and the frames of a traceback as
 * text. Header only. */
#ifndef ZWT_TRACE_H
#define ZWT_TRACE_H

#include <criterion/criterion.h>
#include <string.h>

#include <zerowaste/zerowaste.h>

/* A raw trace: frames most recent first, as tracemalloc's _from_raw. */
typedef struct zwt_raw_trace {
    unsigned domain;
    size_t size;
    size_t nframe;
    const char *files[3];
    unsigned lines[3];
    size_t total_nframe;
} zwt_raw_trace;

static inline zw_snapshot *
zwt_snapshot_of(const zwt_raw_trace *t, size_t n, unsigned limit)
{
    zw_snapshot *snap = zw_snapshot_new(limit);
    cr_assert_not_null(snap);
    for (size_t i = 0; i < n; i++) {
        zw_error err;
        int rc = zw_snapshot_add_trace(snap, t[i].domain, t[i].size, t[i].files, t[i].lines,
                                       t[i].nframe, t[i].total_nframe, &err);
        cr_assert_eq(rc, 0, "%s", err.msg);
    }
    return snap;
}

/* Fixture A (reference 6.3): 3 x (0, 10, (a.py:2, b.py:4), 3), (1, 2, (a.py:5, b.py:4), 3),
 * (2, 66, (b.py:1), 1), (3, 7, (<unknown>:0), 1). */
static inline zw_snapshot *
zwt_fixture_a(void)
{
    static const zwt_raw_trace t[] = {
        {0, 10, 2, {"a.py", "b.py"}, {2, 4}, 3},
        {0, 10, 2, {"a.py", "b.py"}, {2, 4}, 3},
        {0, 10, 2, {"a.py", "b.py"}, {2, 4}, 3},
        {1, 2, 2, {"a.py", "b.py"}, {5, 4}, 3},
        {2, 66, 1, {"b.py"}, {1}, 1},
        {3, 7, 1, {"<unknown>"}, {0}, 1},
    };
    return zwt_snapshot_of(t, sizeof(t) / sizeof(t[0]), 2);
}

/* Fixture B: 3 x (0, 10, (a.py:2, b.py:4), 3), (2, 2, (a.py:5, b.py:4), 3),
 * (2, 5000, (a.py:5, b.py:4), 3), (4, 400, (c.py:578), 1). */
static inline zw_snapshot *
zwt_fixture_b(void)
{
    static const zwt_raw_trace t[] = {
        {0, 10, 2, {"a.py", "b.py"}, {2, 4}, 3},   {0, 10, 2, {"a.py", "b.py"}, {2, 4}, 3},
        {0, 10, 2, {"a.py", "b.py"}, {2, 4}, 3},   {2, 2, 2, {"a.py", "b.py"}, {5, 4}, 3},
        {2, 5000, 2, {"a.py", "b.py"}, {5, 4}, 3}, {4, 400, 1, {"c.py"}, {578}, 1},
    };
    return zwt_snapshot_of(t, sizeof(t) / sizeof(t[0]), 2);
}

/* An expected row: the key's frame (one-frame keys), size, count and the diffs. */
typedef struct zwt_row {
    const char *file;
    unsigned line;
    size_t size;
    int64_t size_diff;
    size_t count;
    int64_t count_diff;
} zwt_row;

static inline void
zwt_check_rows(const zw_stat_list *l, const zwt_row *rows, size_t n)
{
    cr_assert_eq(zw_stat_list_len(l), n, "%zu statistics, expected %zu", zw_stat_list_len(l), n);
    for (size_t i = 0; i < n; i++) {
        const zw_statistic *s = zw_stat_list_get(l, i);
        const zw_frame *f = zw_traceback_frame(s->traceback, zw_traceback_len(s->traceback) - 1);
        cr_assert_str_eq(f->filename, rows[i].file, "row %zu: file %s, expected %s", i, f->filename,
                         rows[i].file);
        cr_assert_eq(f->lineno, rows[i].line, "row %zu: line %u, expected %u", i, f->lineno,
                     rows[i].line);
        cr_assert_eq(s->size, rows[i].size, "row %zu: size %zu, expected %zu", i, s->size,
                     rows[i].size);
        cr_assert_eq(s->count, rows[i].count, "row %zu: count %zu, expected %zu", i, s->count,
                     rows[i].count);
        cr_assert_eq(s->size_diff, rows[i].size_diff, "row %zu: size_diff %lld, expected %lld", i,
                     (long long)s->size_diff, (long long)rows[i].size_diff);
        cr_assert_eq(s->count_diff, rows[i].count_diff, "row %zu: count_diff %lld, expected %lld",
                     i, (long long)s->count_diff, (long long)rows[i].count_diff);
    }
}

/* The frames of `tb` as "file:line" joined by ' ', oldest first, into buf. */
static inline const char *
zwt_frames_text(const zw_traceback *tb, char *buf, size_t len)
{
    buf[0] = '\0';
    size_t at = 0;
    for (size_t i = 0; i < zw_traceback_len(tb) && at < len; i++) {
        const zw_frame *f = zw_traceback_frame(tb, i);
        at += (size_t)snprintf(buf + at, len - at, "%s%s:%u", i ? " " : "", f->filename, f->lineno);
    }
    return buf;
}

/* Runs `filters` on `snap` and returns how many traces were kept. */
static inline size_t
zwt_kept(const zw_snapshot *snap, const zw_filter *filters, size_t n)
{
    zw_error err;
    zw_snapshot *f = zw_snapshot_filter_traces(snap, filters, n, &err);
    cr_assert_not_null(f, "%s", err.msg);
    size_t kept = zw_snapshot_len(f);
    zw_snapshot_free(f);
    return kept;
}

#endif /* ZWT_TRACE_H */
