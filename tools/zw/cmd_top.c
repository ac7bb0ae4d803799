/* tools/zw/cmd_top.c - zw top: a live set of a capture grouped by line, file or traceback
 * (zw_snapshot_statistics: tracemalloc's Snapshot.statistics), largest first. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zw.h"

static const char help[] =
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
print_sites(const zw_tree *t, size_t limit, bool json)
{
    size_t n = 0;
    for (size_t k = 0; k < t->n; k++)
        n += t->caps[k]->sites != NULL ? zw_snapshot_len(t->caps[k]->sites) : 0;
    if (n == 0 && t->n == 1 && t->caps[0]->sites == NULL)
        return zw_fail("capture '%s' has no allocation sites%s", t->paths[0],
                       t->caps[0]->complete ? "" : " (the process died before writing them)");
    site_ref *order = malloc((n + 1) * sizeof(*order));
    if (order == NULL)
        return zw_fail("out of memory");
    n = 0;
    for (size_t k = 0; k < t->n; k++) {
        const zw_capture *c = t->caps[k];
        for (size_t i = 0; c->sites != NULL && i < zw_snapshot_len(c->sites); i++)
            order[n++] = (site_ref){c, i};
    }
    qsort(order, n, sizeof(*order), by_count);
    if (limit == 0 || limit > n)
        limit = n;
    if (json)
        fputc('[', stdout);
    else
        printf("%s: %zu allocation sites%s, most allocations first\n%4s  %10s  %12s  %s\n",
               t->base, n, t->n > 1 ? " (of all processes)" : "", "#", "allocations", "bytes",
               "allocated at");
    for (size_t i = 0; i < limit; i++) {
        zw_trace_info ti = zw_snapshot_trace(order[i].c->sites, order[i].i);
        zw_statistic s = {ti.traceback, ti.size, (size_t)order[i].c->site_counts[order[i].i], 0,
                          0};
        if (json) {
            fputs(i == 0 ? "\n  " : ",\n  ", stdout);
            zw_print_json_entry(&s, false, stdout);
            continue;
        }
        char b[32];
        printf("%4zu  %10zu  %12s  ", i + 1, s.count, zw_size(b, (long long)s.size, false));
        zw_print_location(s.traceback, stdout);
        fputc('\n', stdout);
    }
    if (json)
        fputs(limit > 0 ? "\n]\n" : "]\n", stdout);
    else if (limit < n)
        printf("(%zu more; --limit 0 shows all)\n", n - limit);
    free(order);
    return 0;
}

/* Shared by top, leaks and peak: parse the options, load, group, print. */
int
zw_top_like(const char *cmd, const char *usage_help, const char *default_at, int default_group,
            int argc, char **argv)
{
    zw_args a = {.cmd = cmd, .argc = argc, .argv = argv, .i = 1};
    const char *path = NULL;
    const char *at = default_at;
    zw_group group = (zw_group)default_group;
    bool cumulative = false, json = false;
    unsigned long limit = 10, pid = 0;
    bool only = false;
    while (a.i < argc && !a.bad) {
        const char *arg = argv[a.i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            fputs(usage_help, stdout);
            return 0;
        }
        if (strcmp(cmd, "top") == 0 && zw_opt(&a, "--at", true)) {
            at = a.value;
        } else if (zw_opt_group(&a, &group)) {
            if (a.bad)
                break;
        } else if (zw_opt(&a, "--cumulative", false)) {
            cumulative = true;
        } else if (zw_opt(&a, "--limit", true)) {
            if (!a.bad)
                zw_opt_uint(&a, 0, 1000000000, &limit);
        } else if (zw_opt(&a, "--only", false)) {
            only = true;
        } else if (zw_opt(&a, "--pid", true)) {
            if (!a.bad)
                zw_opt_uint(&a, 1, 0x7fffffff, &pid);
        } else if (zw_opt(&a, "--json", false)) {
            json = true;
        } else if (arg[0] == '-' && arg[1] != '\0') {
            return zw_usage(cmd, "unknown option '%s'", arg);
        } else if (path != NULL) {
            return zw_usage(cmd, "one capture at a time ('%s' is one too many)", arg);
        } else {
            path = argv[a.i++];
        }
    }
    if (a.bad)
        return ZW_EXIT_USAGE;
    if (path == NULL)
        return zw_usage(cmd, "no capture file given");
    if (cumulative && group == ZW_GROUP_TRACEBACK)
        return zw_usage(cmd, "--cumulative cannot be used with --group traceback");
    zw_tree *t = zw_load_tree(path, (long)pid, only);
    if (t == NULL)
        return ZW_EXIT_FAILURE;
    int rc = ZW_EXIT_FAILURE;
    if (strcmp(at, "allocations") == 0) {
        rc = print_sites(t, limit, json);
        zw_tree_free(t);
        return rc;
    }
    zw_picked set;
    rc = zw_tree_pick(t, at, &set);
    if (rc != 0)
        goto out_free;
    rc = ZW_EXIT_FAILURE;
    zw_error err;
    zw_stat_list *list = zw_snapshot_statistics(set.snap, group, cumulative, &err);
    if (list == NULL) {
        zw_fail("%s", err.msg);
        goto out_release;
    }
    if (!json) {
        size_t bytes, blocks;
        zw_snapshot_totals(set.snap, &bytes, &blocks);
        char b[32], procs[64] = "";
        if (t->n > 1)
            snprintf(procs, sizeof(procs), " (%zu of %zu processes)", set.nprocs, t->n);
        printf("%s: %s set at %.3f s%s: %s in %zu blocks\n", path, set.label, set.time_s, procs,
               zw_size(b, (long long)bytes, false), blocks);
    }
    zw_print_stats(list, limit, json, false, group == ZW_GROUP_TRACEBACK, stdout);
    zw_stat_list_free(list);
    rc = 0;
out_release:
    zw_picked_release(&set);
out_free:
    zw_tree_free(t);
    return rc;
}

int
cmd_top(int argc, char **argv)
{
    return zw_top_like("top", help, "peak", ZW_GROUP_LINENO, argc, argv);
}
