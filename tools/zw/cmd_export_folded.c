/* tools/zw/cmd_export_folded.c - zw export --format folded: one line per distinct stack,
 * `outermost;...;innermost VALUE`, as Brendan Gregg's stackcollapse scripts write them for
 * flamegraph.pl (and speedscope, inferno). A frame is its function's name (inlined functions are
 * frames of their own), or module+0xoffset without symbols; ';' and whitespace other than ' '
 * in a name become '_'. Lines are sorted, identical stacks merged, zero values left out. See
 * docs/export.md#folded. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmd_export.h"

/* Appends the folded form of `tb` (outermost first) to `key`. */
static void
fold_traceback(const zw_traceback *tb, zwi_cbuf *key)
{
    size_t n = zw_traceback_len(tb);
    if (n == 0)
        buf_puts(key, "[unknown]");
    for (size_t i = 0; i < n; i++) {
        char buf[1024];
        const char *name = export_frame_name(zw_traceback_frame(tb, i), buf, sizeof(buf));
        if (i > 0)
            zwi_cbuf_bytes(key, ";", 1);
        size_t start = key->len;
        buf_puts(key, name);
        for (size_t k = start; !key->failed && k < key->len; k++)
            if (key->data[k] == ';' || key->data[k] == '\n' || key->data[k] == '\r' ||
                key->data[k] == '\t')
                key->data[k] = '_';
    }
}

/* The distinct stacks, folded, and the value of each. */
typedef struct folded {
    zwi_strtab lines;
    uint64_t *values; /* by index in `lines` */
    size_t cap;
} folded;

/* Adds `value` to the line of stack `tb`. 0, or -1 when out of memory. */
static int
add_stack(folded *fl, const zw_traceback *tb, uint64_t value)
{
    if (value == 0)
        return 0;
    zwi_cbuf key = {.raw = fl->lines.raw};
    fold_traceback(tb, &key);
    bool added;
    long e = key.failed ? -1 : export_intern(&fl->lines, key.data, key.len, &added);
    zwi_cbuf_release(&key);
    if (e < 0 || zwi_reserve(fl->lines.raw, (void **)&fl->values, &fl->cap, (size_t)e + 1,
                             sizeof(*fl->values)) != 0)
        return -1;
    fl->values[e] = (added ? 0 : fl->values[e]) + value;
    return 0;
}

static int
by_key(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int
export_folded(const export_ctx *x, zwi_cbuf *out)
{
    const zw_capture *c = x->c;
    folded fl = {.values = NULL};
    zwi_strtab_init(&fl.lines, cli_raw());
    int rc = CLI_EXIT_FAILURE;
    if (x->metric == METRIC_ALLOCATIONS || x->metric == METRIC_TEMPORARY) {
        if (c->sites == NULL) {
            cli_fail("capture '%s' has no allocation sites%s", x->path,
                     c->complete ? "" : CLI_CUT_SHORT);
            goto out_release;
        }
        const uint64_t *count =
            x->metric == METRIC_ALLOCATIONS ? c->site_counts : c->site_temporary;
        for (size_t i = 0; i < zw_snapshot_len(c->sites); i++)
            if (count[i] != 0 && add_stack(&fl, zw_snapshot_trace(c->sites, i).traceback, count[i]))
                goto out_nomem;
    } else {
        zw_stat_list *stats = export_set_stats(x);
        if (stats == NULL)
            goto out_release;
        for (size_t i = 0; i < zw_stat_list_len(stats); i++) {
            const zw_statistic *s = zw_stat_list_get(stats, i);
            if (add_stack(&fl, s->traceback, s->size)) {
                zw_stat_list_free(stats);
                goto out_nomem;
            }
        }
        zw_stat_list_free(stats);
    }
    size_t n = fl.lines.count;
    const char **sorted = malloc((n + 1) * sizeof(*sorted));
    if (sorted == NULL)
        goto out_nomem;
    for (size_t i = 0; i < n; i++)
        sorted[i] = fl.lines.strs[i];
    qsort(sorted, n, sizeof(*sorted), by_key);
    for (size_t i = 0; i < n; i++) {
        zwi_cbuf_bytes(out, sorted[i], zwi_strtab_len(sorted[i]));
        uint32_t e = zwi_strtab_index(&fl.lines, sorted[i]);
        zwi_cbuf_printf(out, " %llu\n", (unsigned long long)fl.values[e]);
    }
    free(sorted);
    rc = 0;
    goto out_release;
out_nomem:
    cli_fail("out of memory while folding the stacks of '%s'", x->path);
out_release:
    zwi_free(fl.lines.raw, fl.values);
    zwi_strtab_release(&fl.lines);
    return rc;
}
