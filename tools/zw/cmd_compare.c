/* tools/zw/cmd_compare.c - zw compare: what changed between two live sets, of one capture (two
 * marks, times, peak, exit) or of two captures (the same moment of each), as tracemalloc's
 * Snapshot.compare_to(): largest change first. */
#include <stdio.h>

#include "cli.h"

const char cli_help_compare[] =
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
    CLI_HELP_ALLOC_FNS
    CLI_HELP_DOMAIN
    CLI_HELP_QUIET
    "  -h, --help                    this text\n";

int
cmd_compare(const cli_command *c, const cli_opts *o)
{
    int rc = 0;
    const char *const *paths = o->files;
    size_t npaths = o->nfiles;
    if (npaths == 1 && (o->from == NULL || o->to == NULL))
        return cli_usage("compare", "one capture needs --from and --to");
    if (npaths == 2 && (o->from != NULL || o->to != NULL))
        return cli_usage("compare", "--from and --to compare two moments of one capture");
    if ((rc = cli_check_cumulative(c, o)) != 0)
        return rc;
    zw_group group = (zw_group)o->group;
    rc = CLI_EXIT_FAILURE;
    cli_tree *t[2] = {cli_load_tree(paths[0], (long)o->pid, o->only), NULL};
    cli_picked sets[2] = {{0}, {0}};
    if (t[0] == NULL)
        return CLI_EXIT_FAILURE;
    if (npaths == 2 && (t[1] = cli_load_tree(paths[1], (long)o->pid, o->only)) == NULL)
        goto out_free;
    const char *when[2] = {npaths == 1 ? o->from : o->at, npaths == 1 ? o->to : o->at};
    for (int k = 0; k < 2; k++) {
        if ((rc = cli_tree_pick(t[npaths == 1 ? 0 : k], when[k], &sets[k])) != 0)
            goto out_free;
    }
    rc = CLI_EXIT_FAILURE;
    cli_stats st;
    zw_error err;
    if (cli_stats_compute(&st, sets[1].snap, sets[0].snap, group, o->cumulative, &err) != 0) {
        cli_fail("%s", err.msg);
        goto out_free;
    }
    zw_stat_list *list = st.list;
    if (!o->json) {
        size_t ob, ok, nb, nk;
        cli_snapshot_totals(sets[0].snap, &ob, &ok);
        cli_snapshot_totals(sets[1].snap, &nb, &nk);
        char b1[32], b2[32], b3[32];
        printf("from %s (%s at %.3f s, %s) to %s (%s at %.3f s, %s): %s\n", paths[0], sets[0].label,
               sets[0].time_s, cli_size(b1, (long long)ob, false), paths[npaths - 1], sets[1].label,
               sets[1].time_s, cli_size(b2, (long long)nb, false),
               cli_size(b3, (long long)nb - (long long)ob, true));
    }
    cli_print_stats(list, o->limit, o->json, true, group == ZW_GROUP_TRACEBACK, stdout);
    cli_stats_release(&st);
    rc = 0;
out_free:
    cli_picked_release(&sets[0]);
    cli_picked_release(&sets[1]);
    cli_tree_free(t[0]);
    cli_tree_free(t[1]);
    return rc;
}
