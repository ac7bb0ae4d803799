/* tools/zw/cmd_leaks.c - zw leaks: the blocks live at exit in memcheck's kinds (the scan the
 * preload library made in the process, docs/zw.md#leak-kinds), definitely and indirectly lost
 * first, each kind grouped by allocation traceback, largest first; suppressions (leaks.c) set
 * apart. A capture without the scan lists its exit set as zw top does, and says so. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

const char cli_help_leaks[] =
    "usage: zw leaks [options] FILE\n"
    "\n"
    "The blocks of capture FILE still allocated at exit, in memcheck's kinds: definitely lost\n"
    "(no pointer to the block anywhere), indirectly lost (pointed to only from lost blocks),\n"
    "possibly lost (only pointers into its middle), still reachable; each kind grouped by the\n"
    "traceback of the allocation, definitely and indirectly lost first. The C library's\n"
    "one-time allocations (stdio buffers, locale, dlerror, the loader's tables) are suppressed;\n"
    "the summary always counts suppressed blocks.\n"
    "\n"
    "options:\n"
    "  --at exit|MARK       the exit set (default), or the set at the last zw_mark(MARK) when\n"
    "                       the program ran under zw run --leak-check-at-marks\n"
    "  --kind K[,K...]      definite, indirect, possible, reachable, or all (default all)\n"
    "  --suppressions FILE  LeakSanitizer's format: one leak:PATTERN a line, matched on the\n"
    "                       function, file or module of any frame ('*' wildcard, '^' '$')\n"
    "  --show-suppressed    list the suppressed blocks instead of the others\n"
    "  --group lineno|filename|traceback   (default traceback)\n"
    "  --limit N    at most N entries (default 10; 0: all)\n"
    "  --pid PID    only that process of a capture set (default: all, merged)\n"
    "  --only       FILE alone, not FILE.1, FILE.2... of the same run\n"
    "  --json       a JSON array of {kind, bytes, blocks, traceback}\n"
    CLI_HELP_ALLOC_FNS
    "  --domain heap|mmap|all   heap (default) and all: the heap's blocks by kind; mmap:\n"
    "               the mappings the program made itself still mapped, without kinds\n"
    CLI_HELP_QUIET
    "  -h, --help   this text\n";

/* One row: a statistic of a kind's list. */
typedef struct row {
    int kind;
    const zw_statistic *s;
} row;

static void
print_rows(const row *rows, size_t n, size_t total, bool json, bool tracebacks)
{
    if (json) {
        cli_json j = {stdout, false};
        fputc('[', stdout);
        for (size_t i = 0; i < n; i++) {
            cli_json_item(&j, i);
            printf("{\"kind\": \"%s\", \"bytes\": %zu, \"blocks\": %zu, \"traceback\": ",
                   cli_leak_kind_names[rows[i].kind], rows[i].s->size, rows[i].s->count);
            cli_json_traceback(&j, rows[i].s->traceback);
            fputc('}', stdout);
        }
        cli_json_end(&j, n);
        return;
    }
    printf("%4s  %-9s  %10s  %7s  %10s  %s\n", "#", "kind", "size", "blocks", "average",
           "allocated at");
    for (size_t i = 0; i < n; i++) {
        const zw_statistic *s = rows[i].s;
        char a[32], b[32];
        printf("%4zu  %-9s  %10s  %7zu  %10s  ", i + 1, cli_leak_kind_names[rows[i].kind],
               cli_size(a, (long long)s->size, false), s->count,
               cli_size(b, s->count ? (long long)(s->size / s->count) : 0, false));
        cli_print_location(s->traceback, stdout);
        fputc('\n', stdout);
        for (size_t k = tracebacks ? zw_traceback_len(s->traceback) : 0; k-- > 0;) {
            const zw_frame *f = zw_traceback_frame(s->traceback, k);
            char buf[1024];
            zw_frame_str(f, buf, sizeof(buf));
            printf("        %s%s%s\n", buf, f->function ? " " : "", f->function ? cli_demangle(f->function) : "");
        }
    }
    if (n < total)
        printf("(%zu more; --limit 0 shows all)\n", total - n);
}

int
cmd_leaks(const cli_command *c, const cli_opts *o)
{
    int rc = cli_check_cumulative(c, o);
    uint32_t kinds = (1u << ZW_LEAK_KINDS) - 1;
    if (rc != 0 || (o->kind != NULL && (rc = cli_parse_kinds(c->name, o->kind, &kinds)) != 0))
        return rc;
    bool exit_set = o->at == NULL || strcmp(o->at, "exit") == 0;
    if (o->at != NULL && strcmp(o->at, "peak") == 0)
        return cli_usage(c->name, "--at takes exit or a mark's label (the peak set is not scanned)");
    cli_suppressions sup;
    if ((rc = cli_suppressions_read(o->suppressions, &sup)) != 0)
        return rc;
    cli_tree *t = cli_load_tree(o->files[0], (long)o->pid, o->only);
    if (t == NULL) {
        cli_suppressions_release(&sup);
        return CLI_EXIT_FAILURE;
    }
    size_t found = 0;
    for (size_t p = 0; !exit_set && p < t->n; p++)
        for (size_t i = 0; i < t->caps[p]->nmarks; i++)
            found += strcmp(t->caps[p]->marks[i].label, o->at) == 0;
    if (!exit_set && found == 0) {
        rc = cli_fail("%s: no mark '%s' (zw stat lists the marks)", o->files[0], o->at);
        cli_tree_free(t);
        cli_suppressions_release(&sup);
        return rc;
    }
    cli_leaks l;
    rc = cli_leaks_of(t, exit_set ? NULL : o->at, &sup, kinds, o->show_suppressed, &l);
    if (rc == 0 && l.scanned == 0) {
        /* no kinds: the set as it is (zw top says if there is no such mark) */
        if (o->domain == CLI_DOMAIN_MMAP)
            fprintf(stderr,
                    "zw: %s: the mmap domain has no leak kinds (the scan reads the heap's "
                    "blocks); every mapping still mapped %s follows\n",
                    o->files[0], exit_set ? "at exit" : "then");
        else if (exit_set)
            fprintf(stderr, "zw: %s: leak kinds unknown (%s); every block live at exit follows\n",
                    o->files[0], cli_leaks_why(l.status));
        else
            fprintf(stderr,
                    "zw: %s: leak kinds at mark '%s' unknown (not scanned: zw run "
                    "--leak-check-at-marks scans them); every block live then follows\n",
                    o->files[0], o->at);
        cli_leaks_release(&l);
        cli_tree_free(t);
        cli_suppressions_release(&sup);
        return cmd_top(c, o);
    }
    /* by kind, each grouped as zw top groups (past the allocation functions) */
    cli_stats st[ZW_LEAK_KINDS] = {0};
    zw_stat_list *lists[ZW_LEAK_KINDS] = {0};
    size_t total = 0;
    for (int k = 0; rc == 0 && k < ZW_LEAK_KINDS; k++) {
        if (l.sets[k] == NULL)
            continue;
        zw_error err;
        if (cli_stats_compute(&st[k], l.sets[k], NULL, (zw_group)o->group, o->cumulative, &err) !=
            0) {
            rc = cli_fail("%s", err.msg);
            break;
        }
        lists[k] = st[k].list;
        total += zw_stat_list_len(lists[k]);
    }
    row *rows = rc == 0 ? malloc((total + 1) * sizeof(row)) : NULL;
    if (rc == 0 && rows == NULL)
        rc = cli_fail("out of memory");
    if (rc == 0) {
        size_t n = 0;
        for (int k = 0; k < ZW_LEAK_KINDS; k++)
            for (size_t i = 0; lists[k] != NULL && i < zw_stat_list_len(lists[k]); i++)
                rows[n++] = (row){k, zw_stat_list_get(lists[k], i)};
        size_t shown = o->limit == 0 || o->limit > n ? n : o->limit;
        if (!o->json) {
            printf("%s: %s%s%s%s, %s\n", o->files[0], exit_set ? "exit set" : "mark '",
                   exit_set ? "" : o->at, exit_set ? "" : "'",
                   t->n > 1 ? " of every process" : "",
                   o->show_suppressed ? "the suppressed blocks" : "by kind of leak");
            cli_print_leak_summary(&l, stdout);
        }
        print_rows(rows, shown, n, o->json, o->group == ZW_GROUP_TRACEBACK);
    }
    free(rows);
    for (int k = 0; k < ZW_LEAK_KINDS; k++)
        cli_stats_release(&st[k]);
    cli_leaks_release(&l);
    cli_tree_free(t);
    cli_suppressions_release(&sup);
    return rc;
}
