/* tools/zw/cmd_top.c - zw top, zw leaks and zw peak: a live set of a capture grouped by line, file
 * or traceback (zw_snapshot_statistics: tracemalloc's Snapshot.statistics), largest first. peak
 * is top with another default set and grouping (its row of main.c's table); leaks too when the
 * capture has no leak scan (cmd_leaks.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "trace_util.h"

const char cli_help_top[] =
    "usage: zw top [options] FILE\n"
    "\n"
    "The largest allocation sites of capture FILE in one live set, as tracemalloc's\n"
    "Snapshot.statistics().\n"
    "\n"
    "options:\n"
    "  --at peak|exit|MARK|SECONDS   the live set (default peak); SECONDS: the live set at\n"
    "                                that time (at the sampling interval's resolution)\n"
    "  --at allocations              not a live set: every allocation site, most allocations\n"
    "                                first, with the bytes allocated there in all\n"
    "  --group lineno|filename|traceback   how to group blocks (default lineno)\n"
    "  --cumulative                  count every frame of each traceback, not only the most\n"
    "                                recent (lineno and filename only)\n"
    "  --limit N                     at most N entries (default 10; 0: all)\n"
    "  --pid PID                     only that process of a capture set (default: all of\n"
    "                                them, their sets merged)\n"
    "  --only                        FILE alone, not FILE.1, FILE.2... of the same run\n"
    "  --json                        a JSON array of {bytes, blocks, traceback}\n"
    CLI_HELP_ALLOC_FNS
    CLI_HELP_DOMAIN
    CLI_HELP_QUIET
    "  -h, --help                    this text\n";

/* leaks and peak: the options they take, in their help */
#define LIVE_OPTIONS                                                                               \
    "options:\n"                                                                                   \
    "  --group lineno|filename|traceback   (default traceback)\n"                                  \
    "  --limit N    at most N entries (default 10; 0: all)\n"                                      \
    "  --pid PID    only that process of a capture set (default: all, merged)\n"                   \
    "  --only       FILE alone, not FILE.1, FILE.2... of the same run\n"                           \
    "  --json       a JSON array of {bytes, blocks, traceback}\n"                                  \
    CLI_HELP_ALLOC_FNS                                                                             \
    CLI_HELP_DOMAIN                                                                                \
    CLI_HELP_QUIET                                                                                 \
    "  -h, --help   this text\n"

const char cli_help_peak[] =
    "usage: zw peak [options] FILE\n"
    "\n"
    "The blocks of capture FILE allocated at the peak of its heap, grouped by the traceback of\n"
    "their allocation, largest first. The peak set is saved each time the heap grows 1% past\n"
    "the last saved one, so it is within 1% of the true peak.\n"
    "\n" LIVE_OPTIONS;

/* A group of allocation sites: its key and what was allocated there. */
typedef struct site_row {
    const zw_traceback *key; /* the statistics' key */
    uint64_t count;          /* allocations */
    uint64_t bytes;
    bool seen;               /* a site of the domain asked for (--domain) is in the group */
} site_row;

/* Most allocations first, then most bytes, then the key; groups of other domains last. */
static int
by_count(const void *x, const void *y)
{
    const site_row *a = x, *b = y;
    if (a->seen != b->seen)
        return a->seen ? -1 : 1;
    if (a->count != b->count)
        return a->count < b->count ? 1 : -1;
    if (a->bytes != b->bytes)
        return a->bytes < b->bytes ? 1 : -1;
    return -zw_traceback_compare(a->key, b->key);
}

/* The text of the key `group` makes of traceback `tb` (as stats.c tells keys apart: file and
 * line, or module and offset for a frame without a line). */
static void
key_text(zwi_cbuf *b, const zw_traceback *tb, zw_group group)
{
    b->len = 0;
    size_t n = zw_traceback_len(tb);
    for (size_t i = group == ZW_GROUP_TRACEBACK ? 0 : n - 1; i < n; i++) {
        const zw_frame *f = zw_traceback_frame(tb, i);
        if (group == ZW_GROUP_FILENAME) {
            zwi_cbuf_printf(b, "%s", f->filename);
            continue;
        }
        zwi_cbuf_printf(b, "%s:%u", f->filename, f->lineno);
        if (f->lineno == 0 && f->module != NULL)
            zwi_cbuf_printf(b, "@%s+%llx", f->module, (unsigned long long)f->offset);
        zwi_cbuf_bytes(b, "\n", 1);
    }
}

/* --at allocations: every allocation site of every process grouped by `group` (past the
 * allocation functions, as the live sets), most allocations first, with the bytes allocated there
 * in all. */
static int
print_sites(const cli_tree *t, zw_group group, size_t limit, bool json)
{
    if (t->n == 1 && t->caps[0]->sites == NULL)
        return cli_fail("capture '%s' has no allocation sites%s", t->paths[0],
                        t->caps[0]->complete ? "" : CLI_CUT_SHORT);
    const zw_snapshot **snaps = malloc((t->n + 1) * sizeof(*snaps));
    if (snaps == NULL)
        return cli_fail("out of memory");
    size_t nsnaps = 0;
    for (size_t k = 0; k < t->n; k++) {
        if (t->caps[k]->sites != NULL)
            snaps[nsnaps++] = t->caps[k]->sites;
    }
    /* one snapshot of every site, in the order of the captures and their sites */
    zw_error err;
    zw_snapshot *all = zw_snapshot_merge(snaps, nsnaps, &err);
    cli_stats st = {0};
    site_row *rows = NULL;
    zwi_strtab keys;
    zwi_strtab_init(&keys, cli_raw());
    zwi_cbuf text = {.raw = cli_raw()};
    int rc = CLI_EXIT_FAILURE;
    if (all == NULL || cli_stats_compute(&st, all, NULL, group, false, &err) != 0) {
        cli_fail("%s", err.msg);
        goto out;
    }
    /* the statistics give the keys; the counts are summed here, site by site */
    const zw_snapshot *sites = st.own[0] != NULL ? st.own[0] : all;
    size_t nrows = zw_stat_list_len(st.list);
    if ((rows = calloc(nrows + 1, sizeof(*rows))) == NULL) {
        cli_fail("out of memory");
        goto out;
    }
    for (size_t i = 0; i < nrows; i++) {
        rows[i].key = zw_stat_list_get(st.list, i)->traceback;
        key_text(&text, rows[i].key, group);
        if (text.failed || zwi_strtab_add(&keys, (const char *)text.data, text.len, NULL) == NULL) {
            cli_fail("out of memory");
            goto out;
        }
    }
    size_t j = 0; /* the trace of `sites` site i of capture snaps[k] is */
    for (size_t k = 0; k < nsnaps; k++) {
        const zw_capture *c = NULL;
        for (size_t q = 0; q < t->n && c == NULL; q++)
            c = t->caps[q]->sites == snaps[k] ? t->caps[q] : NULL;
        for (size_t i = 0; i < zw_snapshot_len(snaps[k]); i++, j++) {
            zw_trace_info ti = zw_snapshot_trace(sites, j);
            if (zw_traceback_len(ti.traceback) == 0 && group != ZW_GROUP_TRACEBACK)
                continue; /* in no line or file group, as in the statistics */
            key_text(&text, ti.traceback, group);
            const char *at = text.failed ? NULL
                                          : zwi_strtab_add(&keys, (const char *)text.data,
                                                           text.len, NULL);
            uint32_t r = at != NULL ? zwi_strtab_index(&keys, at) : UINT32_MAX;
            if (r >= nrows) {
                cli_fail("out of memory");
                goto out;
            }
            if (!cli_in_domain(ti.domain))
                continue;
            rows[r].count += c->site_counts[i];
            rows[r].bytes += ti.size;
            rows[r].seen = true;
        }
    }
    qsort(rows, nrows, sizeof(*rows), by_count);
    size_t n = 0;
    while (n < nrows && rows[n].seen)
        n++;
    if (limit == 0 || limit > n)
        limit = n;
    cli_json j_out = {stdout, false};
    if (json)
        fputc('[', stdout);
    else
        printf("%s: %zu %s allocated at%s, most allocations first\n%4s  %10s  %12s  %s\n",
               t->base, n,
               group == ZW_GROUP_LINENO     ? "lines"
               : group == ZW_GROUP_FILENAME ? "files"
                                            : "tracebacks",
               t->n > 1 ? " (of all processes)" : "", "#", "allocations", "bytes", "allocated at");
    for (size_t i = 0; i < limit; i++) {
        zw_statistic s = {rows[i].key, (size_t)rows[i].bytes, (size_t)rows[i].count, 0, 0};
        if (json) {
            cli_json_item(&j_out, i);
            cli_json_statistic(&j_out, &s, false);
            continue;
        }
        char b[32];
        printf("%4zu  %10zu  %12s  ", i + 1, s.count, cli_size(b, (long long)s.size, false));
        cli_print_location(s.traceback, stdout);
        fputc('\n', stdout);
    }
    if (json)
        cli_json_end(&j_out, limit);
    else if (limit < n)
        printf("(%zu more; --limit 0 shows all)\n", n - limit);
    rc = 0;
out:
    zwi_cbuf_release(&text);
    zwi_strtab_release(&keys);
    free(rows);
    cli_stats_release(&st);
    zw_snapshot_free(all);
    free(snaps);
    return rc;
}

/* top, leaks and peak: load, pick the live set, group, print. */
int
cmd_top(const cli_command *c, const cli_opts *o)
{
    int rc = 0;
    if ((rc = cli_check_cumulative(c, o)) != 0)
        return rc;
    const char *path = o->files[0];
    zw_group group = (zw_group)o->group;
    cli_tree *t = cli_load_tree(path, (long)o->pid, o->only);
    if (t == NULL)
        return CLI_EXIT_FAILURE;
    if (strcmp(o->at, "allocations") == 0) {
        rc = print_sites(t, group, o->limit, o->json);
        cli_tree_free(t);
        return rc;
    }
    cli_picked set;
    rc = cli_tree_pick(t, o->at, &set);
    if (rc != 0)
        goto out_free;
    rc = CLI_EXIT_FAILURE;
    cli_stats st;
    zw_error err;
    if (cli_stats_compute(&st, set.snap, NULL, group, o->cumulative, &err) != 0) {
        cli_fail("%s", err.msg);
        goto out_release;
    }
    zw_stat_list *list = st.list;
    if (!o->json) {
        size_t bytes, blocks;
        cli_snapshot_totals(set.snap, &bytes, &blocks);
        char b[32], procs[64] = "";
        if (t->n > 1)
            snprintf(procs, sizeof(procs), " (%zu of %zu processes)", set.nprocs, t->n);
        bool mmap_peak = o->domain == CLI_DOMAIN_MMAP && strcmp(set.label, "peak") == 0;
        if (set.nprocs > 1 && strcmp(set.label, "live") != 0)
            /* each process's own moment: no one time, and the sum was never live at once */
            printf("%s: %s sets of %zu of %zu processes, each at its own moment, summed: %s in "
                   "%zu blocks\n",
                   path, mmap_peak ? "mmap peak" : set.label, set.nprocs, t->n,
                   cli_size(b, (long long)bytes, false), blocks);
        else
            printf("%s: %s set at %.3f s%s: %s in %zu blocks\n", path,
                   mmap_peak ? "mmap peak" : set.label, set.time_s, procs,
                   cli_size(b, (long long)bytes, false), blocks);
    }
    cli_print_stats(list, o->limit, o->json, false, group == ZW_GROUP_TRACEBACK, stdout);
    uint64_t mapped = cli_tree_mmap_peak(t);
    if (o->domain == CLI_DOMAIN_HEAP && mapped > 0 && !o->json) {
        char b[32];
        fprintf(stderr,
                "zw: note: the program also mapped memory itself (%s at the peak of the mmap "
                "domain), which the heap leaves out: --domain mmap or all shows it\n",
                cli_size(b, (long long)mapped, false));
    }
    cli_stats_release(&st);
    rc = 0;
out_release:
    cli_picked_release(&set);
out_free:
    cli_tree_free(t);
    return rc;
}
