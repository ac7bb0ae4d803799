/* tools/zw/cmd_compare.c - zw compare: what changed between two live sets, of one capture (two
 * marks, times, peak, exit) or of two captures (the same moment of each), as tracemalloc's
 * Snapshot.compare_to(): largest change first. */
#include <stdio.h>
#include <string.h>

#include "zw.h"

static const char help[] =
    "usage: zw compare [options] FILE --from WHEN --to WHEN\n"
    "       zw compare [options] OLD NEW\n"
    "\n"
    "What changed between two live sets, largest change first (tracemalloc's compare_to).\n"
    "WHEN is peak, exit, a mark's label or a time in seconds (the last set taken at or before\n"
    "it). With two captures, the same moment of each is compared (--at, default exit).\n"
    "\n"
    "options:\n"
    "  --from WHEN, --to WHEN        the two sets of FILE\n"
    "  --at WHEN                     the set of OLD and NEW (default exit)\n"
    "  --group lineno|filename|traceback   (default lineno)\n"
    "  --cumulative                  count every frame (lineno and filename only)\n"
    "  --limit N                     at most N entries (default 10; 0: all)\n"
    "  --json                        a JSON array of {bytes, blocks, bytes_diff, blocks_diff,\n"
    "                                traceback}\n"
    "  -h, --help                    this text\n";

int
cmd_compare(int argc, char **argv)
{
    zw_args a = {.cmd = "compare", .argc = argc, .argv = argv, .i = 1};
    const char *paths[2] = {NULL, NULL};
    size_t npaths = 0;
    const char *from = NULL, *to = NULL, *at = "exit";
    zw_group group = ZW_GROUP_LINENO;
    bool cumulative = false, json = false;
    unsigned long limit = 10;
    while (a.i < argc && !a.bad) {
        const char *arg = argv[a.i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            fputs(help, stdout);
            return 0;
        }
        if (zw_opt(&a, "--from", true)) {
            from = a.value;
        } else if (zw_opt(&a, "--to", true)) {
            to = a.value;
        } else if (zw_opt(&a, "--at", true)) {
            at = a.value;
        } else if (zw_opt(&a, "--group", true)) {
            if (a.bad)
                break;
            if (strcmp(a.value, "lineno") == 0)
                group = ZW_GROUP_LINENO;
            else if (strcmp(a.value, "filename") == 0)
                group = ZW_GROUP_FILENAME;
            else if (strcmp(a.value, "traceback") == 0)
                group = ZW_GROUP_TRACEBACK;
            else
                return zw_usage("compare", "unknown group '%s' (lineno, filename or traceback)",
                                a.value);
        } else if (zw_opt(&a, "--cumulative", false)) {
            cumulative = true;
        } else if (zw_opt(&a, "--limit", true)) {
            if (!a.bad)
                zw_opt_uint(&a, 0, 1000000000, &limit);
        } else if (zw_opt(&a, "--json", false)) {
            json = true;
        } else if (arg[0] == '-' && arg[1] != '\0') {
            return zw_usage("compare", "unknown option '%s'", arg);
        } else if (npaths == 2) {
            return zw_usage("compare", "at most two captures ('%s' is one too many)", arg);
        } else {
            paths[npaths++] = argv[a.i++];
        }
    }
    if (a.bad)
        return ZW_EXIT_USAGE;
    if (npaths == 0)
        return zw_usage("compare", "no capture file given");
    if (npaths == 1 && (from == NULL || to == NULL))
        return zw_usage("compare", "one capture needs --from and --to");
    if (npaths == 2 && (from != NULL || to != NULL))
        return zw_usage("compare", "--from and --to compare two moments of one capture");
    if (cumulative && group == ZW_GROUP_TRACEBACK)
        return zw_usage("compare", "--cumulative cannot be used with --group traceback");
    int rc = ZW_EXIT_FAILURE;
    zw_capture *c[2] = {zw_load(paths[0]), NULL};
    if (c[0] == NULL)
        return ZW_EXIT_FAILURE;
    if (npaths == 2 && (c[1] = zw_load(paths[1])) == NULL)
        goto out_free;
    bool usage = false;
    const zw_capture_set *old_set, *new_set;
    if (npaths == 1) {
        old_set = zw_pick_set(c[0], paths[0], from, &usage);
        new_set = old_set == NULL ? NULL : zw_pick_set(c[0], paths[0], to, &usage);
    } else {
        old_set = zw_pick_set(c[0], paths[0], at, &usage);
        new_set = old_set == NULL ? NULL : zw_pick_set(c[1], paths[1], at, &usage);
    }
    if (old_set == NULL || new_set == NULL) {
        rc = usage ? ZW_EXIT_USAGE : ZW_EXIT_FAILURE;
        goto out_free;
    }
    zw_error err;
    zw_stat_list *list =
        zw_snapshot_compare_to(new_set->snap, old_set->snap, group, cumulative, &err);
    if (list == NULL) {
        zw_fail("%s", err.msg);
        goto out_free;
    }
    if (!json) {
        size_t ob, ok, nb, nk;
        zw_snapshot_totals(old_set->snap, &ob, &ok);
        zw_snapshot_totals(new_set->snap, &nb, &nk);
        char b1[32], b2[32], b3[32];
        printf("from %s (%s at %.3f s, %s) to %s (%s at %.3f s, %s): %s\n", paths[0],
               old_set->label, (double)old_set->time_ns / 1e9, zw_size(b1, (long long)ob, false),
               paths[npaths - 1], new_set->label, (double)new_set->time_ns / 1e9,
               zw_size(b2, (long long)nb, false), zw_size(b3, (long long)nb - (long long)ob, true));
    }
    zw_print_stats(list, limit, json, true, group == ZW_GROUP_TRACEBACK, stdout);
    zw_stat_list_free(list);
    rc = 0;
out_free:
    zw_capture_free(c[0]);
    zw_capture_free(c[1]);
    return rc;
}
