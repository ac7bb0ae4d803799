/* tools/zw/cmd_top.c - zw top, zw leaks and zw peak: a live set of a capture grouped by line, file
 * or traceback (zw_snapshot_statistics: tracemalloc's Snapshot.statistics), largest first. leaks
 * and peak are top with another default set and grouping (their rows of main.c's table): they
 * differ from it and from each other only in their help. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

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
    "  -h, --help                    this text\n";

/* leaks and peak: the options they take, in their help */
#define LIVE_OPTIONS                                                                               \
    "options:\n"                                                                                   \
    "  --group lineno|filename|traceback   (default traceback)\n"                                  \
    "  --limit N    at most N entries (default 10; 0: all)\n"                                      \
    "  --pid PID    only that process of a capture set (default: all, merged)\n"                   \
    "  --only       FILE alone, not FILE.1, FILE.2... of the same run\n"                           \
    "  --json       a JSON array of {bytes, blocks, traceback}\n"                                  \
    "  -h, --help   this text\n"

const char cli_help_leaks[] =
    "usage: zw leaks [options] FILE\n"
    "\n"
    "The blocks of capture FILE still allocated at exit, grouped by the traceback of their\n"
    "allocation, largest first.\n"
    "\n" LIVE_OPTIONS;

const char cli_help_peak[] =
    "usage: zw peak [options] FILE\n"
    "\n"
    "The blocks of capture FILE allocated at the peak of its heap, grouped by the traceback of\n"
    "their allocation, largest first. The peak set is saved each time the heap grows 1% past\n"
    "the last saved one, so it is within 1% of the true peak.\n"
    "\n" LIVE_OPTIONS;

/* A site of one capture of a set. */
typedef struct site_ref {
    const zw_capture *c;
    size_t i;
} site_ref;

/* Most allocations first, then most bytes. */
static int
by_count(const void *x, const void *y)
{
    const site_ref *a = x, *b = y;
    uint64_t ca = a->c->site_counts[a->i], cb = b->c->site_counts[b->i];
    if (ca != cb)
        return ca < cb ? 1 : -1;
    size_t sa = zw_snapshot_trace(a->c->sites, a->i).size;
    size_t sb = zw_snapshot_trace(b->c->sites, b->i).size;
    return sa < sb ? 1 : sa > sb ? -1 : 0;
}

/* --at allocations: the sites (one per allocation traceback and process), most allocations first,
 * with the bytes allocated there in all. */
static int
print_sites(const cli_tree *t, size_t limit, bool json)
{
    size_t n = 0;
    for (size_t k = 0; k < t->n; k++)
        n += t->caps[k]->sites != NULL ? zw_snapshot_len(t->caps[k]->sites) : 0;
    if (n == 0 && t->n == 1 && t->caps[0]->sites == NULL)
        return cli_fail("capture '%s' has no allocation sites%s", t->paths[0],
                        t->caps[0]->complete ? "" : " (the process died before writing them)");
    site_ref *order = malloc((n + 1) * sizeof(*order));
    if (order == NULL)
        return cli_fail("out of memory");
    n = 0;
    for (size_t k = 0; k < t->n; k++) {
        const zw_capture *c = t->caps[k];
        for (size_t i = 0; c->sites != NULL && i < zw_snapshot_len(c->sites); i++)
            order[n++] = (site_ref){c, i};
    }
    qsort(order, n, sizeof(*order), by_count);
    if (limit == 0 || limit > n)
        limit = n;
    cli_json j = {stdout, false};
    if (json)
        fputc('[', stdout);
    else
        printf("%s: %zu allocation sites%s, most allocations first\n%4s  %10s  %12s  %s\n", t->base,
               n, t->n > 1 ? " (of all processes)" : "", "#", "allocations", "bytes",
               "allocated at");
    for (size_t i = 0; i < limit; i++) {
        zw_trace_info ti = zw_snapshot_trace(order[i].c->sites, order[i].i);
        zw_statistic s = {ti.traceback, ti.size, (size_t)order[i].c->site_counts[order[i].i], 0, 0};
        if (json) {
            cli_json_item(&j, i);
            cli_json_statistic(&j, &s, false);
            continue;
        }
        char b[32];
        printf("%4zu  %10zu  %12s  ", i + 1, s.count, cli_size(b, (long long)s.size, false));
        cli_print_location(s.traceback, stdout);
        fputc('\n', stdout);
    }
    if (json)
        cli_json_end(&j, limit);
    else if (limit < n)
        printf("(%zu more; --limit 0 shows all)\n", n - limit);
    free(order);
    return 0;
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
        rc = print_sites(t, o->limit, o->json);
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
        printf("%s: %s set at %.3f s%s: %s in %zu blocks\n", path, set.label, set.time_s, procs,
               cli_size(b, (long long)bytes, false), blocks);
    }
    cli_print_stats(list, o->limit, o->json, false, group == ZW_GROUP_TRACEBACK, stdout);
    cli_stats_release(&st);
    rc = 0;
out_release:
    cli_picked_release(&set);
out_free:
    cli_tree_free(t);
    return rc;
}
