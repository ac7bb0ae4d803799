/* tools/zw/cmd_report_json.c - the data of `zw report`: the processes of a capture set as one
 * JSON object, aggregated by allocation site here, in C, so that its size follows the number of
 * sites and never the number of blocks or allocations.
 *
 * Three tables are shared by every process: `strings` (function, file and module names),
 * `frames` ([function, file, line, module, inlined, offset, alloc_fn, symbol], names as indices
 * into strings, -1 for none; function demangled, symbol as captured; alloc_fn 1 for an
 * allocation function) and `sites` (tracebacks: frame indices, OLDEST first, as zw_traceback). A live set,
 * the allocation counts, and any later per-sample live delta, are lists of [site, a, b] entries
 * that point into `sites`; `nodebug` names the modules of the rows' frames without a line. A
 * kept live set carries its rows by traceback, line and file as
 * `zw top` computes them (zw_snapshot_statistics), so the page groups nothing itself for them.
 * Invariant: an id handed out by intern_*() indexes its table, and equal keys get equal ids. The
 * layout is docs/report.md#data. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zerowaste/common.h>

#include "cli.h"
#include "cmd_report.h"
#include "trace_util.h"

#define NO_ID      UINT32_MAX /* a NULL string */
#define MAX_POINTS 4000       /* samples kept for the chart; more are thinned, keeping maxima */
#define MAX_STEPS  2000       /* steps of the live set kept; more are summed by windows of time */
#define MAX_DELTAS 200000     /* site changes kept over all steps: fewer windows past that */
#define SET_BUDGET                                                                                 \
    20000 /* sites kept over all live sets of a process (5000 at most per set,                     \
           * 500 at least) */

/* ---- interning: the trace layer's string tables (trace_util.h), keyed by records ---- */

/* A frame as the report keys it: as the statistics of stats.c tell frames apart, a frame without
 * a line keeps its offset in its module (two such frames of one function are two places). No
 * padding, so that its bytes are a key. */
typedef struct frame_key {
    uint64_t offset;   /* in `module`, for a frame without a line; 0 otherwise */
    uint32_t function; /* string ids, NO_ID when unknown */
    uint32_t file;
    uint32_t module;
    uint32_t line;
    uint32_t inlined;  /* 0 or 1 */
    uint32_t alloc_fn; /* 1: an allocation function (names.c), which line and file rows skip */
    uint32_t symbol;   /* the function's raw (mangled) name */
    uint32_t zero;     /* 0: the key's padding */
} frame_key;

/* Everything interned so far, for every process of the report: strings (function, file and
 * module names), frames (frame_key records) and sites (arrays of frame ids, oldest first). An id
 * is an index into its table; equal keys get equal ids. */
typedef struct model {
    zwi_strtab strings;
    zwi_strtab frames;
    zwi_strtab sites;
    zwi_cbuf scratch; /* one traceback's frame ids while it is interned */
} model;

static void
model_init(model *m)
{
    zw_raw *raw = cli_raw();
    zwi_strtab_init(&m->strings, raw);
    zwi_strtab_init(&m->frames, raw);
    zwi_strtab_init(&m->sites, raw);
    m->scratch = (zwi_cbuf){.raw = raw};
}

static void
model_release(model *m)
{
    zwi_strtab_release(&m->strings);
    zwi_strtab_release(&m->frames);
    zwi_strtab_release(&m->sites);
    zwi_cbuf_release(&m->scratch);
}

/* The id of `len` bytes at `key` in `st`: 0, or -1 when out of memory. */
static int
intern(zwi_strtab *st, const void *key, size_t len, uint32_t *out)
{
    return zwi_strtab_add(st, key, len, out) != NULL ? 0 : -1;
}

static int
intern_string(model *m, const char *str, uint32_t *out)
{
    if (str == NULL) {
        *out = NO_ID;
        return 0;
    }
    return intern(&m->strings, str, strlen(str), out);
}

static int
intern_frame(model *m, const zw_frame *f, uint32_t *out)
{
    frame_key k = {.line = f->lineno, .inlined = f->inlined, .alloc_fn = cli_is_alloc_fn(f)};
    if (f->lineno == 0 && f->module != NULL)
        k.offset = f->offset;
    if (intern_string(m, cli_demangle(f->function), &k.function) != 0 ||
        intern_string(m, f->function, &k.symbol) != 0 ||
        intern_string(m, f->filename, &k.file) != 0 || intern_string(m, f->module, &k.module) != 0)
        return -1;
    return intern(&m->frames, &k, sizeof(k), out);
}

/* The site of traceback `tb`: its frames interned, oldest first. */
static int
intern_site(model *m, const zw_traceback *tb, uint32_t *out)
{
    size_t n = zw_traceback_len(tb);
    if (n > 0) /* the frame its rows name, as zw's tables (for the note on debug information) */
        cli_note_frame(zw_traceback_frame(tb, cli_site_frame(tb)));
    m->scratch.len = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t id;
        if (intern_frame(m, zw_traceback_frame(tb, i), &id) != 0)
            return -1;
        zwi_cbuf_bytes(&m->scratch, &id, sizeof(id));
    }
    if (m->scratch.failed)
        return -1;
    return intern(&m->sites, n > 0 ? (const char *)m->scratch.data : "", n * sizeof(uint32_t), out);
}

/* ---- JSON ---- */

static void
json_id(uint32_t id, FILE *out)
{
    if (id == NO_ID)
        fputs("-1", out);
    else
        fprintf(out, "%" PRIu32, id);
}

static void
json_string(const char *s, FILE *out)
{
    const cli_json j = {out, true}; /* the data sits inside <script> */
    cli_json_string(&j, s);
}

static void
json_seconds(uint64_t ns, FILE *out)
{
    const cli_json j = {out, true};
    cli_json_seconds(&j, ns);
}

static const char *
end_name(const zw_capture *c)
{
    if (!c->has_totals)
        return "unknown";
    switch (c->totals.end) {
    case ZW_CAPTURE_END_EXIT:
        return "exit";
    case ZW_CAPTURE_END_SIGNAL:
        return "signal";
    case ZW_CAPTURE_END_UNDERSCORE_EXIT:
        return "_exit";
    case ZW_CAPTURE_END_EXEC:
        return "exec";
    default:
        return "unknown";
    }
}

/* The samples as columns; past MAX_POINTS, one point per bucket of consecutive samples: the one
 * with the most heap bytes (so the peak stays), with the most RSS of the bucket; "mmap" is the
 * mmap domain's bytes (0 in captures made before it). The running
 * totals ("allocations", "temporary") only when the capture has them (has_counters). */
static void
write_samples(const zw_capture *c, FILE *out)
{
    size_t n = c->nsamples;
    size_t buckets = n <= MAX_POINTS ? n : MAX_POINTS;
    static const char *const names[] = {"t",    "heap",        "blocks",   "rss",
                                        "mmap", "allocations", "temporary"};
    int ncols = c->has_counters ? 7 : 5;
    fprintf(out, "{\"count\": %zu", n);
    for (int col = 0; col < ncols; col++) {
        fprintf(out, ", \"%s\": [", names[col]);
        for (size_t b = 0; b < buckets; b++) {
            size_t lo = b * n / buckets;
            size_t hi = (b + 1) * n / buckets;
            size_t best = lo;
            uint64_t rss = 0;
            for (size_t i = lo; i < hi; i++) {
                if (c->samples[i].heap_bytes > c->samples[best].heap_bytes)
                    best = i;
                rss = c->samples[i].rss_bytes > rss ? c->samples[i].rss_bytes : rss;
            }
            const zw_capture_sample *s = &c->samples[best];
            uint64_t v[] = {
                0, s->heap_bytes, s->heap_blocks, rss, s->mmap_bytes, s->allocations, s->temporary};
            fputs(b ? "," : "", out);
            if (col == 0)
                json_seconds(s->time_ns, out);
            else
                fprintf(out, "%" PRIu64, v[col]);
        }
        fputc(']', out);
    }
    fputc('}', out);
}

/* The rows of `set` grouped by `group`, as zw top computes them (zw_snapshot_statistics): the
 * `max_entries` largest as [site, bytes, blocks] in the list's order, a site standing for the
 * group's key (for lineno and filename a one-frame site), then the totals and the rest summed in
 * "other": [bytes, blocks, rows]. */
static int
write_rows(model *m, const zw_snapshot *snap, zw_group group, size_t max_entries, FILE *out,
           zw_error *err)
{
    cli_stats st;
    if (cli_stats_compute(&st, snap, NULL, group, false, err) != 0)
        return -1;
    const zw_stat_list *list = st.list;
    int status = -1;
    size_t n = zw_stat_list_len(list);
    size_t bytes = 0, blocks = 0, other_bytes = 0, other_blocks = 0;
    fputs("\"entries\": [", out);
    for (size_t i = 0; i < n; i++) {
        const zw_statistic *s = zw_stat_list_get(list, i);
        bytes += s->size;
        blocks += s->count;
        if (i >= max_entries) {
            other_bytes += s->size;
            other_blocks += s->count;
            continue;
        }
        uint32_t site;
        if (intern_site(m, s->traceback, &site) != 0) {
            zw_error_set(err, "out of memory");
            goto out_free;
        }
        fprintf(out, "%s[%" PRIu32 ",%zu,%zu]", i ? "," : "", site, s->size, s->count);
    }
    fprintf(out, "], \"bytes\": %zu, \"blocks\": %zu, \"other\": [%zu,%zu,%zu]", bytes, blocks,
            other_bytes, other_blocks, n > max_entries ? n - max_entries : 0);
    status = 0;
out_free:
    cli_stats_release(&st);
    return status;
}

/* A live set: its rows by traceback ("entries", the sites the flame graph draws) and, in "by",
 * its rows by line and by file. */
static int
write_set(model *m, const zw_capture_set *set, const char *kind, size_t max_entries, FILE *out,
          zw_error *err)
{
    fputs("{\"label\": ", out);
    json_string(set->label, out);
    fprintf(out, ", \"kind\": \"%s\", \"t\": ", kind);
    json_seconds(set->time_ns, out);
    fprintf(out, ", \"heap_bytes\": %" PRIu64, set->heap_bytes);
    if (set->snap == NULL) {
        fputs(", \"entries\": null}", out);
        return 0;
    }
    fputs(", ", out);
    if (write_rows(m, set->snap, ZW_GROUP_TRACEBACK, max_entries, out, err) != 0)
        return -1;
    fputs(",\n\"by\": {\"lineno\": {", out);
    if (write_rows(m, set->snap, ZW_GROUP_LINENO, max_entries, out, err) != 0)
        return -1;
    fputs("}, \"filename\": {", out);
    if (write_rows(m, set->snap, ZW_GROUP_FILENAME, max_entries, out, err) != 0)
        return -1;
    fputs("}}}", out);
    return 0;
}

/* ---- per-site counts and steps: indices into the capture's `sites` ---- */

/* A capture's site indices mapped to the model's sites, interned when first written. */
typedef struct site_map {
    const zw_capture *c;
    uint32_t *id; /* id[i]: the model's site of c->sites' trace i, NO_ID until interned */
    size_t n;
} site_map;

static int
site_map_init(site_map *sm, const zw_capture *c)
{
    sm->c = c;
    sm->n = c->sites != NULL ? zw_snapshot_len(c->sites) : 0;
    sm->id = malloc((sm->n + 1) * sizeof(*sm->id));
    if (sm->id == NULL)
        return -1;
    for (size_t i = 0; i < sm->n; i++)
        sm->id[i] = NO_ID;
    return 0;
}

/* The model's site of the capture's site i (i < sm->n: the caller checks file data). */
static int
site_map_get(model *m, site_map *sm, size_t i, uint32_t *out)
{
    if (sm->id[i] == NO_ID &&
        intern_site(m, zw_snapshot_trace(sm->c->sites, i).traceback, &sm->id[i]) != 0)
        return -1;
    *out = sm->id[i];
    return 0;
}

/* Sorts site indices by counts[], most first, then by bytes allocated there. */
typedef struct count_order {
    const zw_capture *c;
    const uint64_t *counts;
} count_order;

static int
by_count(const void *x, const void *y, void *ctx)
{
    const count_order *o = ctx;
    size_t a = *(const size_t *)x;
    size_t b = *(const size_t *)y;
    if (o->counts[a] != o->counts[b])
        return o->counts[a] < o->counts[b] ? 1 : -1;
    size_t sa = zw_snapshot_trace(o->c->sites, a).size;
    size_t sb = zw_snapshot_trace(o->c->sites, b).size;
    return sa < sb ? 1 : sa > sb ? -1 : 0;
}

/* The sites with counts[i] > 0 as [site, count, bytes allocated there], most first; null when
 * the capture has no such counts. */
static int
write_site_counts(model *m, site_map *sm, const uint64_t *counts, size_t max_entries, FILE *out,
                  zw_error *err)
{
    const zw_capture *c = sm->c;
    if (c->sites == NULL || counts == NULL) {
        fputs("null", out);
        return 0;
    }
    size_t n = sm->n;
    size_t *order = malloc((n + 1) * sizeof(*order));
    if (order == NULL)
        return zw_error_set(err, "out of memory");
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    count_order o = {c, counts};
    qsort_r(order, n, sizeof(*order), by_count, &o);
    uint64_t count = 0, bytes = 0, other_count = 0, other_bytes = 0;
    size_t written = 0, others = 0;
    fputs("{\"entries\": [", out);
    for (size_t i = 0; i < n && counts[order[i]] > 0; i++) {
        size_t size = zw_snapshot_trace(c->sites, order[i]).size;
        uint64_t k = counts[order[i]];
        count += k;
        bytes += size;
        if (written == max_entries) {
            other_count += k;
            other_bytes += size;
            others++;
            continue;
        }
        uint32_t site;
        if (site_map_get(m, sm, order[i], &site) != 0) {
            free(order);
            return zw_error_set(err, "out of memory");
        }
        fprintf(out, "%s[%" PRIu32 ",%" PRIu64 ",%zu]", written++ ? "," : "", site, k, size);
    }
    fprintf(out,
            "], \"count\": %" PRIu64 ", \"bytes\": %" PRIu64 ", \"other\": [%" PRIu64 ",%" PRIu64
            ",%zu]}",
            count, bytes, other_count, other_bytes, others);
    free(order);
    return 0;
}


/* Per-site sums of one window of steps, emptied when the window is written. */
typedef struct window {
    int64_t *bytes; /* by the capture's site index */
    int64_t *blocks;
    uint32_t *touched; /* the sites changed in this window, each once */
    size_t ntouched;
    bool *in; /* in[i]: site i is on `touched` */
} window;

/* The window of time of step i: `nwin` equal windows from the first step to the last; each step
 * its own when there are no more than `nwin`. */
static uint64_t
window_of(const zw_capture *c, size_t i, size_t nwin)
{
    if (c->nsteps <= nwin)
        return i;
    double t0 = (double)c->steps[0].time_ns;
    double span = (double)c->steps[c->nsteps - 1].time_ns - t0 + 1;
    return (uint64_t)(((double)c->steps[i].time_ns - t0) / span * (double)nwin);
}

/* Site changes written with `nwin` windows, at most: the sites touched in each window. */
static size_t
count_deltas(const zw_capture *c, size_t nwin, window *w)
{
    size_t total = 0;
    for (size_t i = 0; i < c->nsteps; i++) {
        const zw_capture_step *st = &c->steps[i];
        for (size_t k = st->first; k < st->first + st->n; k++) {
            uint32_t s = c->deltas[k].site;
            if (!w->in[s]) {
                w->in[s] = true;
                w->touched[w->ntouched++] = s;
            }
        }
        if (i + 1 < c->nsteps && window_of(c, i + 1, nwin) == window_of(c, i, nwin))
            continue;
        total += w->ntouched;
        for (size_t k = 0; k < w->ntouched; k++)
            w->in[w->touched[k]] = false;
        w->ntouched = 0;
    }
    return total;
}

/* The steps (the live set's changes by site over time) as {"count", "t": [...], "d": [[site,
 * bytes, blocks, site, ...], ...]}: the live set at time t is the sum of the d of every t' <= t.
 * Past MAX_STEPS steps or MAX_DELTAS changes, the steps of each of fewer equal windows of time are
 * summed into one at the window's last step. null when the capture has none. */
static int
write_steps(model *m, site_map *sm, FILE *out, zw_error *err)
{
    const zw_capture *c = sm->c;
    if (c->nsteps == 0 || c->sites == NULL) {
        fputs("null", out);
        return 0;
    }
    window w = {
        .bytes = calloc(sm->n + 1, sizeof(int64_t)),
        .blocks = calloc(sm->n + 1, sizeof(int64_t)),
        .touched = malloc((sm->n + 1) * sizeof(uint32_t)),
        .in = calloc(sm->n + 1, sizeof(bool)),
    };
    int status = -1;
    if (w.bytes == NULL || w.blocks == NULL || w.touched == NULL || w.in == NULL) {
        zw_error_set(err, "out of memory");
        goto out_free;
    }
    for (size_t i = 0; i < c->nsteps; i++) {
        if (c->steps[i].first > c->ndeltas || c->steps[i].n > c->ndeltas - c->steps[i].first) {
            zw_error_set(err, "step %zu of the capture lies outside its changes", i);
            goto out_free;
        }
    }
    for (size_t i = 0; i < c->ndeltas; i++) {
        if (c->deltas[i].site >= sm->n) {
            zw_error_set(err, "a step of the capture names site %" PRIu32 " of %zu",
                         c->deltas[i].site, sm->n);
            goto out_free;
        }
    }
    size_t nwin = MAX_STEPS; /* halved until the changes fit in MAX_DELTAS */
    while (nwin > 1 && count_deltas(c, nwin, &w) > MAX_DELTAS)
        nwin /= 2;
    size_t nwritten = 0;
    fprintf(out, "{\"count\": %zu, \"t\": [", c->nsteps);
    for (size_t i = 0; i < c->nsteps; i++) { /* the times first: one per window */
        if (i + 1 == c->nsteps || window_of(c, i + 1, nwin) != window_of(c, i, nwin)) {
            fputs(nwritten++ ? "," : "", out);
            json_seconds(c->steps[i].time_ns, out);
        }
    }
    fputs("], \"d\": [", out);
    nwritten = 0;
    for (size_t i = 0; i < c->nsteps; i++) {
        const zw_capture_step *st = &c->steps[i];
        for (size_t k = st->first; k < st->first + st->n; k++) {
            const zw_capture_delta *d = &c->deltas[k];
            if (!w.in[d->site]) {
                w.in[d->site] = true;
                w.touched[w.ntouched++] = d->site;
            }
            w.bytes[d->site] += d->bytes;
            w.blocks[d->site] += d->blocks;
        }
        if (i + 1 < c->nsteps && window_of(c, i + 1, nwin) == window_of(c, i, nwin))
            continue; /* the window goes on */
        fputs(nwritten++ ? ",[" : "[", out);
        size_t nd = 0;
        for (size_t k = 0; k < w.ntouched; k++) {
            uint32_t s = w.touched[k];
            uint32_t site;
            if (w.bytes[s] != 0 || w.blocks[s] != 0) {
                if (site_map_get(m, sm, s, &site) != 0) {
                    zw_error_set(err, "out of memory");
                    goto out_free;
                }
                fprintf(out, "%s%" PRIu32 ",%" PRId64 ",%" PRId64, nd++ ? "," : "", site,
                        w.bytes[s], w.blocks[s]);
            }
            w.bytes[s] = w.blocks[s] = 0;
            w.in[s] = false;
        }
        w.ntouched = 0;
        fputc(']', out);
    }
    fputs("]}", out);
    status = 0;
out_free:
    free(w.bytes);
    free(w.blocks);
    free(w.touched);
    free(w.in);
    return status;
}

/* The live sets in time order (marks, peak and exit merged), then after them: by time. */
static int
write_sets(model *m, const zw_capture *c, size_t max_entries, FILE *out, zw_error *err)
{
    size_t n = c->nmarks + 2;
    const zw_capture_set **order = malloc(n * sizeof(*order));
    const char **kinds = malloc(n * sizeof(*kinds));
    int status = -1;
    if (order == NULL || kinds == NULL) {
        zw_error_set(err, "out of memory");
        goto out_free;
    }
    size_t k = 0;
    for (size_t i = 0; i < c->nmarks; i++) {
        order[k] = &c->marks[i];
        kinds[k++] = "mark";
    }
    if (c->peak.snap != NULL || c->has_totals) {
        order[k] = &c->peak;
        kinds[k++] = "peak";
    }
    if (c->exit.snap != NULL) {
        order[k] = &c->exit;
        kinds[k++] = "exit";
    }
    for (size_t i = 1; i < k; i++) { /* insertion sort, stable: few sets */
        for (size_t j = i; j > 0 && order[j]->time_ns < order[j - 1]->time_ns; j--) {
            const zw_capture_set *s = order[j];
            const char *kind = kinds[j];
            order[j] = order[j - 1];
            kinds[j] = kinds[j - 1];
            order[j - 1] = s;
            kinds[j - 1] = kind;
        }
    }
    size_t limit = k ? SET_BUDGET / k : max_entries; /* many marks: fewer sites each */
    limit = limit < 500 ? 500 : limit > max_entries ? max_entries : limit;
    fputc('[', out);
    for (size_t i = 0; i < k; i++) {
        fputs(i ? ",\n" : "\n", out);
        if (write_set(m, order[i], kinds[i], limit, out, err) != 0)
            goto out_free;
    }
    fputc(']', out);
    status = 0;
out_free:
    free(order);
    free(kinds);
    return status;
}

/* The exit set's blocks by leak kind, {"definite": set, "indirect": ..., "possible": ...,
 * "reachable": ...}, each as write_set writes it, suppressed blocks left out as zw leaks leaves
 * them out; null when the capture has no leak kinds. */
static int
write_leaks(model *m, const zw_capture *c, const char *path, size_t max_entries, FILE *out,
            zw_error *err)
{
    if (c->leaks.status != ZW_LEAKS_SCANNED || c->exit.snap == NULL) {
        fputs("null", out);
        return 0;
    }
    cli_suppressions sup;
    if (cli_suppressions_read(NULL, &sup) != 0)
        return zw_error_set(err, "cannot read the built-in suppressions");
    zw_capture *one = (zw_capture *)c;
    char *p = (char *)path;
    cli_tree t = {.base = path, .n = 1, .caps = &one, .paths = &p};
    cli_leaks l;
    if (cli_leaks_of(&t, NULL, &sup, (1u << ZW_LEAK_KINDS) - 1, false, &l) != 0) {
        cli_suppressions_release(&sup);
        return zw_error_set(err, "cannot sort the exit set by kind of leak");
    }
    int status = 0;
    fputc('{', out);
    for (int k = 0; k < ZW_LEAK_KINDS && status == 0; k++) {
        fprintf(out, "%s\n\"%s\": ", k ? "," : "", cli_leak_kind_names[k]);
        zw_capture_set set = {c->exit.label, c->exit.time_ns, 0, l.sets[k], NULL};
        status = write_set(m, &set, "exit", max_entries, out, err);
    }
    fputc('}', out);
    cli_leaks_release(&l);
    cli_suppressions_release(&sup);
    return status;
}

static int
write_process(model *m, const zw_capture *c, const char *path, double offset, size_t max_entries,
              FILE *out, zw_error *err)
{
    fputs("{\"path\": ", out);
    json_string(path, out);
    fprintf(out, ", \"pid\": %" PRIu32 ", \"ppid\": %" PRIu32 ", \"argv\": [", c->pid, c->ppid);
    for (size_t i = 0; i < c->argc; i++) {
        fputs(i ? ", " : "", out);
        json_string(c->argv[i], out);
    }
    fprintf(out, "], \"complete\": %s, \"interval_ms\": %" PRIu32 ", \"nframe\": %" PRIu32,
            c->complete ? "true" : "false", c->interval_ms, c->nframe);
    fprintf(out, ", \"offset\": %.6f", offset);
    fprintf(out, ", \"end\": \"%s\", \"end_code\": %" PRId32, end_name(c),
            c->has_totals ? c->totals.code : 0);
    if (c->has_totals && c->totals.end == ZW_CAPTURE_END_SIGNAL) {
        fputs(", \"signal\": ", out);
        json_string(strsignal(c->totals.code), out);
    }
    if (c->has_totals) {
        const zw_capture_totals *t = &c->totals;
        fprintf(out,
                ",\n\"totals\": {\"allocations\": %" PRIu64 ", \"frees\": %" PRIu64
                ", \"temporary\": %" PRIu64 ", \"bytes_allocated\": %" PRIu64
                ", \"peak_bytes\": %" PRIu64 ", \"peak_t\": ",
                t->allocations, t->frees, t->temporary, t->bytes_allocated, t->peak_bytes);
        json_seconds(t->peak_time_ns, out);
        fputs(", \"duration\": ", out);
        json_seconds(t->duration_ns, out);
        fputc('}', out);
    } else {
        fputs(",\n\"totals\": null", out);
    }
    fputs(",\n\"samples\": ", out);
    write_samples(c, out);
    fputs(",\n\"sets\": ", out);
    if (write_sets(m, c, max_entries, out, err) != 0)
        return -1;
    fputs(",\n\"leaks\": ", out);
    if (write_leaks(m, c, path, max_entries, out, err) != 0)
        return -1;
    site_map sm;
    if (site_map_init(&sm, c) != 0)
        return zw_error_set(err, "out of memory");
    int status = -1;
    fputs(",\n\"allocations\": ", out);
    if (write_site_counts(m, &sm, c->site_counts, max_entries, out, err) != 0)
        goto out_free;
    /* null in captures that count temporary allocations only in all (format 1.1) */
    fputs(",\n\"temporary\": ", out);
    if (write_site_counts(m, &sm, c->site_temporary, max_entries, out, err) != 0)
        goto out_free;
    fputs(",\n\"steps\": ", out);
    if (write_steps(m, &sm, out, err) != 0)
        goto out_free;
    fputs("}", out);
    status = 0;
out_free:
    free(sm.id);
    return status;
}

/* The modules of the frames the page names without a line (its rows' sites, as zw's own note
 * on stderr) and how to get their debug information: {"modules": [...], "more": false,
 * "how": "..."}, modules empty when every such frame has a line. */
static void
write_nodebug(FILE *out)
{
    size_t n;
    bool more;
    const char *const *mods = cli_nodebug_modules(&n, &more);
    fputs("\"nodebug\": {\"modules\": [", out);
    for (size_t i = 0; i < n; i++) {
        fputs(i ? "," : "", out);
        json_string(mods[i], out);
    }
    fprintf(out, "], \"more\": %s, \"how\": ", more ? "true" : "false");
    json_string(cli_nodebug_how, out);
    fputs("},\n", out);
}

static void
write_tables(const model *m, FILE *out)
{
    fputs("\"strings\": [", out);
    for (size_t i = 0; i < m->strings.count; i++) {
        fputs(i ? "," : "", out);
        json_string(m->strings.strs[i], out);
    }
    fputs("],\n\"frames\": [", out);
    for (size_t i = 0; i < m->frames.count; i++) {
        frame_key f;
        memcpy(&f, m->frames.strs[i], sizeof(f));
        fputs(i ? ",[" : "[", out);
        json_id(f.function, out);
        fputc(',', out);
        json_id(f.file, out);
        fprintf(out, ",%" PRIu32 ",", f.line);
        json_id(f.module, out);
        fprintf(out, ",%" PRIu32 ",%" PRIu64 ",%" PRIu32 ",", f.inlined, f.offset, f.alloc_fn);
        json_id(f.symbol, out);
        fputc(']', out);
    }
    fputs("],\n\"sites\": [", out);
    for (size_t i = 0; i < m->sites.count; i++) {
        const char *key = m->sites.strs[i];
        size_t n = zwi_strtab_len(key) / sizeof(uint32_t);
        fputs(i ? ",[" : "[", out);
        for (size_t k = 0; k < n; k++) {
            uint32_t id;
            memcpy(&id, key + k * sizeof(id), sizeof(id));
            fprintf(out, "%s%" PRIu32, k > 0 ? "," : "", id);
        }
        fputc(']', out);
    }
    fputs("]", out);
}

int
cli_report_write_json(FILE *out, const zw_capture *const *caps, const char *const *paths, size_t n,
                      size_t max_entries, zw_error *err)
{
    model m;
    model_init(&m);
    int status = -1;
    fprintf(out,
            "{\"format\": 1, \"generator\": \"zw %s\", \"max_entries\": %zu,\n\"processes\": [",
            zw_version(), max_entries);
    for (size_t i = 0; i < n; i++) {
        fputs(i ? ",\n" : "\n", out);
        /* seconds from the start of caps[0] to this process's start (as cli_tree_offset) */
        double offset =
            ((double)caps[i]->start_realtime_ns - (double)caps[0]->start_realtime_ns) / 1e9;
        cli_progress_show("writing the page: process %zu of %zu", i + 1, n);
        if (write_process(&m, caps[i], paths[i], offset, max_entries, out, err) != 0)
            goto out_release;
    }
    fputs("],\n", out);
    write_nodebug(out);
    write_tables(&m, out);
    fputs("}", out);
    status = 0;
out_release:
    model_release(&m);
    return status;
}
