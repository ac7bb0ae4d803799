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
    "WHEN is peak, exit, a mark's label or a time in seconds (the live set then). With two\n"
    "captures, the same moment of each is compared (--at, default exit).\n"
    "\n"
    "options:\n"
    "  --from WHEN, --to WHEN        the two sets of FILE\n"
    "  --at WHEN                     the set of OLD and NEW (default exit)\n"
    "  --group lineno|filename|traceback   (default lineno)\n"
    "  --cumulative                  count every frame (lineno and filename only)\n"
    "  --limit N                     at most N entries (default 10; 0: all)\n"
    "  --pid PID                     only that process of a capture set (default: all)\n"
    "  --only                        FILE alone, not FILE.1, FILE.2... of the same run\n"
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
    unsigned long limit = 10, pid = 0;
    bool only = false;
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
    zw_tree *t[2] = {zw_load_tree(paths[0], (long)pid, only), NULL};
    zw_picked sets[2] = {{0}, {0}};
    if (t[0] == NULL)
        return ZW_EXIT_FAILURE;
    if (npaths == 2 && (t[1] = zw_load_tree(paths[1], (long)pid, only)) == NULL)
        goto out_free;
    const char *when[2] = {npaths == 1 ? from : at, npaths == 1 ? to : at};
    for (int k = 0; k < 2; k++) {
        if ((rc = zw_tree_pick(t[npaths == 1 ? 0 : k], when[k], &sets[k])) != 0)
            goto out_free;
    }
    rc = ZW_EXIT_FAILURE;
    zw_error err;
    zw_stat_list *list = zw_snapshot_compare_to(sets[1].snap, sets[0].snap, group, cumulative, &err);
    if (list == NULL) {
        zw_fail("%s", err.msg);
        goto out_free;
    }
    if (!json) {
        size_t ob, ok, nb, nk;
        zw_snapshot_totals(sets[0].snap, &ob, &ok);
        zw_snapshot_totals(sets[1].snap, &nb, &nk);
        char b1[32], b2[32], b3[32];
        printf("from %s (%s at %.3f s, %s) to %s (%s at %.3f s, %s): %s\n", paths[0],
               sets[0].label, sets[0].time_s, zw_size(b1, (long long)ob, false), paths[npaths - 1],
               sets[1].label, sets[1].time_s, zw_size(b2, (long long)nb, false),
               zw_size(b3, (long long)nb - (long long)ob, true));
    }
    zw_print_stats(list, limit, json, true, group == ZW_GROUP_TRACEBACK, stdout);
    zw_stat_list_free(list);
    rc = 0;
out_free:
    zw_picked_release(&sets[0]);
    zw_picked_release(&sets[1]);
    zw_tree_free(t[0]);
    zw_tree_free(t[1]);
    return rc;
}
