/* measure/measure.c - the talk's measure_memory() as a scope: two trace snapshots around a
 * piece of code, compared by line and summed into new blocks and bytes, the tracked objects
 * counted before and after, the wall time, and the lines that grew, each attributed to the first
 * frame outside zerowaste's own sources. See docs/talk.md.
 *
 * A measure may call trace, gc and obj; it allocates its own results with the C library (they
 * are made after the second snapshot and freed by zw_measure_release, so they never show in
 * what it measures). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zerowaste/gc.h>
#include <zerowaste/measure.h>
#include <zerowaste/trace.h>

#define DEFAULT_NFRAME 32

/* ---- which frames are zerowaste's own ---- */

/* The directory holding zerowaste's layers in this build ("/path/to/src/"), from this file's
 * own path: frames whose file lies under it are the library's, not the program's. */
static size_t
src_prefix(const char **prefix)
{
    static const char self[] = __FILE__;
    const char *end = strstr(self, "src/measure/measure.c");
    *prefix = self;
    return end ? (size_t)(end - self) + 4 : 0; /* "…/src/" */
}

static bool
is_internal(const zw_frame *f)
{
    const char *prefix;
    size_t n = src_prefix(&prefix);
    return n > 0 && strncmp(f->filename, prefix, n) == 0;
}

/* The first frame of a traceback, most recent first, that is not zerowaste's; the most recent
 * one if all are (a block the runtime made for itself). */
static const zw_frame *
user_frame(const zw_traceback *tb)
{
    size_t n = zw_traceback_len(tb);
    if (n == 0)
        return NULL;
    for (size_t i = n; i-- > 0;) {
        const zw_frame *f = zw_traceback_frame(tb, i);
        if (!is_internal(f))
            return f;
    }
    return zw_traceback_frame(tb, n - 1);
}

/* ---- grouping traces by the user's line ---- */

typedef struct entry {
    const char *file;
    unsigned line;
    int64_t size;
    int64_t count;
} entry;

static int
entry_cmp(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    int c = strcmp(x->file, y->file);
    if (c != 0)
        return c;
    return (x->line > y->line) - (x->line < y->line);
}

/* Appends one entry per trace of `snap`, with sign +1 or -1. */
static entry *
collect_entries(const zw_snapshot *snap, int sign, entry *e, size_t *n)
{
    size_t len = zw_snapshot_len(snap);
    for (size_t i = 0; i < len; i++) {
        zw_trace_info t = zw_snapshot_trace(snap, i);
        const zw_frame *f = user_frame(t.traceback);
        e[*n] = (entry){f ? f->filename : "<unknown>", f ? f->lineno : 0, sign * (int64_t)t.size,
                        sign};
        (*n)++;
    }
    return e;
}

static int
line_cmp(const void *a, const void *b)
{
    const zw_measure_line *x = a, *y = b;
    int64_t ax = llabs(x->size_diff), ay = llabs(y->size_diff);
    if (ax != ay)
        return ax < ay ? 1 : -1;
    if (x->count_diff != y->count_diff)
        return x->count_diff < y->count_diff ? 1 : -1;
    int c = strcmp(x->filename, y->filename);
    return c != 0 ? c : (x->lineno > y->lineno) - (x->lineno < y->lineno);
}

/* m->lines: the lines whose traces changed, by |size_diff|. */
static int
diff_lines(zw_measure *m, const zw_snapshot *now)
{
    size_t cap = zw_snapshot_len(m->before) + zw_snapshot_len(now);
    entry *e = malloc((cap ? cap : 1) * sizeof(*e));
    if (e == NULL)
        return zw_error_set(&m->err, "measure: out of memory grouping %zu traces", cap);
    size_t n = 0;
    collect_entries(m->before, -1, e, &n);
    collect_entries(now, +1, e, &n);
    qsort(e, n, sizeof(*e), entry_cmp);
    /* one line per (file, line) with a change */
    size_t nlines = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        int64_t size = 0, count = 0;
        for (; j < n && entry_cmp(&e[i], &e[j]) == 0; j++) {
            size += e[j].size;
            count += e[j].count;
        }
        if (size != 0 || count != 0) {
            e[nlines] = (entry){e[i].file, e[i].line, size, count};
            nlines++;
        }
        i = j;
    }
    size_t names = 0;
    for (size_t i = 0; i < nlines; i++)
        names += strlen(e[i].file) + 1;
    /* one block: the lines, then their file names */
    m->lines = malloc(nlines * sizeof(*m->lines) + names + 1);
    if (m->lines == NULL) {
        free(e);
        return zw_error_set(&m->err, "measure: out of memory for %zu lines", nlines);
    }
    char *text = (char *)(m->lines + nlines);
    for (size_t i = 0; i < nlines; i++) {
        size_t len = strlen(e[i].file) + 1;
        memcpy(text, e[i].file, len);
        m->lines[i] = (zw_measure_line){text, e[i].line, e[i].size, e[i].count};
        text += len;
    }
    m->nlines = nlines;
    free(e);
    qsort(m->lines, m->nlines, sizeof(*m->lines), line_cmp);
    return 0;
}

/* ---- the scope ---- */

static double
elapsed(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) * 1e-9;
}

int
zw_measure_begin(zw_rt *rt, zw_measure *m)
{
    int nframe = m->nframe > 0 ? m->nframe : DEFAULT_NFRAME;
    *m = (zw_measure){.nframe = nframe, .rt = rt};
    if (!zw_trace_is_tracing()) {
        if (zw_trace_start(nframe, &m->err) != 0) {
            m->failed = true;
            return -1;
        }
        m->started_tracing = true;
    }
    m->before = zw_trace_take_snapshot(&m->err);
    if (m->before == NULL) {
        if (m->started_tracing)
            zw_trace_stop();
        m->started_tracing = false;
        m->failed = true;
        return -1;
    }
    m->objects_before = zw_gc_count_objects(rt, -1);
    clock_gettime(CLOCK_MONOTONIC, &m->t0);
    return 0;
}

int
zw_measure_end(zw_measure *m)
{
    if (m->failed)
        return -1;
    int status = -1;
    zw_snapshot *now = zw_trace_take_snapshot(&m->err);
    m->seconds = elapsed(&m->t0);
    if (now == NULL)
        goto out_stop;
    zw_stat_list *stats = zw_snapshot_compare_to(now, m->before, ZW_GROUP_LINENO, false, &m->err);
    if (stats == NULL)
        goto out_free_now;
    m->new_blocks = 0;
    m->new_bytes = 0;
    for (size_t i = 0; i < zw_stat_list_len(stats); i++) {
        const zw_statistic *s = zw_stat_list_get(stats, i);
        m->new_blocks += s->count_diff;
        m->new_bytes += s->size_diff;
    }
    zw_stat_list_free(stats);
    m->new_objects = (int64_t)zw_gc_count_objects(m->rt, -1) - (int64_t)m->objects_before;
    if (diff_lines(m, now) != 0)
        goto out_free_now;
    status = 0;
out_free_now:
    zw_snapshot_free(now);
out_stop:
    if (m->started_tracing)
        zw_trace_stop();
    m->started_tracing = false;
    m->failed = status != 0;
    return status;
}

void
zw_measure_release(zw_measure *m)
{
    zw_snapshot_free(m->before);
    m->before = NULL;
    free(m->lines);
    m->lines = NULL;
    m->nlines = 0;
}

void
zw_measure_print(const zw_measure *m, FILE *out, size_t top)
{
    if (m->failed) {
        fprintf(out, "measure: %s\n", m->err.msg);
        return;
    }
    fprintf(out, "New blocks: %lld, new allocated bytes: %lld, objects: %lld, time: %.6f\n",
            (long long)m->new_blocks, (long long)m->new_bytes, (long long)m->new_objects,
            m->seconds);
    for (size_t i = 0; i < top && i < m->nlines; i++)
        fprintf(out, "  %s:%u: %+lld B, %+lld blocks\n", m->lines[i].filename, m->lines[i].lineno,
                (long long)m->lines[i].size_diff, (long long)m->lines[i].count_diff);
}

static void
json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c < 0x20)
            fprintf(out, "\\u%04x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

void
zw_measure_print_json(const zw_measure *m, FILE *out, size_t top)
{
    if (m->failed) {
        fputs("{\"error\": ", out);
        json_string(out, m->err.msg);
        fputs("}\n", out);
        return;
    }
    fprintf(out,
            "{\"new_blocks\": %lld, \"new_bytes\": %lld, \"new_objects\": %lld, "
            "\"seconds\": %.6f, \"top\": [",
            (long long)m->new_blocks, (long long)m->new_bytes, (long long)m->new_objects,
            m->seconds);
    for (size_t i = 0; i < top && i < m->nlines; i++) {
        fputs(i ? ", {\"file\": " : "{\"file\": ", out);
        json_string(out, m->lines[i].filename);
        fprintf(out, ", \"line\": %u, \"size_diff\": %lld, \"count_diff\": %lld}",
                m->lines[i].lineno, (long long)m->lines[i].size_diff,
                (long long)m->lines[i].count_diff);
    }
    fputs("]}\n", out);
}

zw_measure
zw_measure_start_(zw_rt *rt)
{
    zw_measure m = {0};
    zw_measure_begin(rt, &m);
    return m;
}

zw_measure *
zw_measure_finish_(zw_measure *m, FILE *out)
{
    zw_measure_end(m);
    zw_measure_print(m, out, 0);
    zw_measure_release(m);
    return NULL;
}
