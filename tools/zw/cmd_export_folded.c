/* tools/zw/cmd_export_folded.c - zw export --format folded: one line per distinct stack,
 * `outermost;...;innermost VALUE`, as Brendan Gregg's stackcollapse scripts write them for
 * flamegraph.pl (and speedscope, inferno). A frame is its function's name (inlined functions are
 * frames of their own), or module+0xoffset without symbols; ';' and whitespace other than ' '
 * in a name become '_'. Lines are sorted, identical stacks merged, zero values left out. See
 * docs/export.md#folded. */
#include <stdlib.h>
#include <string.h>

#include "cmd_export.h"
#include "zw.h"

/* Appends the folded form of `tb` (outermost first) to `key`. */
static void
fold_traceback(const zw_traceback *tb, xbuf *key)
{
    size_t n = zw_traceback_len(tb);
    if (n == 0)
        xbuf_puts(key, "[unknown]");
    for (size_t i = 0; i < n; i++) {
        char buf[1024];
        const char *name = export_frame_name(zw_traceback_frame(tb, i), buf, sizeof(buf));
        if (i > 0)
            xbuf_add(key, ";", 1);
        size_t start = key->len;
        xbuf_puts(key, name);
        for (size_t k = start; !key->failed && k < key->len; k++)
            if (key->data[k] == ';' || key->data[k] == '\n' || key->data[k] == '\r' ||
                key->data[k] == '\t')
                key->data[k] = '_';
    }
}

/* Adds `value` to the line of stack `tb`. 0, or -1 when out of memory. */
static int
add_stack(smap *lines, const zw_traceback *tb, uint64_t value)
{
    if (value == 0)
        return 0;
    xbuf key = {0};
    fold_traceback(tb, &key);
    bool added;
    long e = key.failed ? -1 : smap_intern(lines, key.data, key.len, value, &added);
    xbuf_release(&key);
    if (e < 0)
        return -1;
    if (!added)
        lines->entries[e].value += value;
    return 0;
}

static int
by_key(const void *a, const void *b)
{
    const smap_entry *x = *(const smap_entry *const *)a;
    const smap_entry *y = *(const smap_entry *const *)b;
    return strcmp(x->key, y->key);
}

int
export_folded(const export_ctx *x, xbuf *out)
{
    const zw_capture *c = x->c;
    smap lines = {0};
    int rc = ZW_EXIT_FAILURE;
    if (x->metric == METRIC_ALLOCATIONS || x->metric == METRIC_TEMPORARY) {
        if (c->sites == NULL) {
            zw_fail("capture '%s' has no allocation sites%s", x->path,
                    c->complete ? "" : " (the process died before writing them)");
            goto out_release;
        }
        const uint64_t *count =
            x->metric == METRIC_ALLOCATIONS ? c->site_counts : c->site_temporary;
        for (size_t i = 0; i < zw_snapshot_len(c->sites); i++)
            if (count[i] != 0 &&
                add_stack(&lines, zw_snapshot_trace(c->sites, i).traceback, count[i]))
                goto out_nomem;
    } else {
        zw_error err;
        zw_stat_list *stats = zw_snapshot_statistics(x->set->snap, ZW_GROUP_TRACEBACK, false, &err);
        if (stats == NULL) {
            zw_fail("%s", err.msg);
            goto out_release;
        }
        for (size_t i = 0; i < zw_stat_list_len(stats); i++) {
            const zw_statistic *s = zw_stat_list_get(stats, i);
            if (add_stack(&lines, s->traceback, s->size)) {
                zw_stat_list_free(stats);
                goto out_nomem;
            }
        }
        zw_stat_list_free(stats);
    }
    const smap_entry **sorted = malloc((lines.nentries + 1) * sizeof(*sorted));
    if (sorted == NULL)
        goto out_nomem;
    for (size_t i = 0; i < lines.nentries; i++)
        sorted[i] = &lines.entries[i];
    qsort(sorted, lines.nentries, sizeof(*sorted), by_key);
    for (size_t i = 0; i < lines.nentries; i++) {
        xbuf_add(out, sorted[i]->key, sorted[i]->len);
        xbuf_printf(out, " %llu\n", (unsigned long long)sorted[i]->value);
    }
    free(sorted);
    rc = 0;
    goto out_release;
out_nomem:
    zw_fail("out of memory while folding the stacks of '%s'", x->path);
out_release:
    smap_release(&lines);
    return rc;
}
