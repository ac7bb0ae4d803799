/* tools/zw/cmd_export.c - zw export: a capture as a file other tools read: pprof's profile.proto
 * (cmd_export_pprof.c), folded stacks for flame graphs (cmd_export_folded.c) and valgrind
 * massif's massif.out (cmd_export_massif.c). The export is built whole in memory, then written
 * by output.c: a regular OUT is replaced once whole (a failed export leaves no file that looks
 * whole), a device or FIFO is written through. This file holds the options and the writing.
 * See docs/export.md. */
#include "cmd_export.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

const char cli_help_export[] =
    "usage: zw export --format pprof|folded|massif [options] FILE\n"
    "\n"
    "Capture FILE as a file other tools read:\n"
    "  pprof    gzip-compressed profile.proto with alloc_objects, alloc_space (every\n"
    "           allocation), inuse_objects, inuse_space (the --at set): go tool pprof, pprof\n"
    "  folded   'frame;frame;frame value' lines, outermost frame first: flamegraph.pl,\n"
    "           speedscope, inferno\n"
    "  massif   valgrind massif's massif.out: the time series, with the heap tree of every\n"
    "           saved set (the peak one as heap_tree=peak): ms_print, massif-visualizer\n"
    "\n"
    "options:\n"
    "  -o, --output OUT   write to OUT (default: standard output; pprof needs -o or a pipe)\n"
    "  --at peak|exit|MARK|SECONDS   the live set for bytes and inuse_* (default peak;\n"
    "                     SECONDS: the live set at that time)\n"
    "  --metric bytes|allocations|leaked|temporary   what a folded line counts (default\n"
    "                     bytes): bytes live in the --at set, allocations made at each site,\n"
    "                     bytes leaked (the exit set), temporary allocations made at each\n"
    "                     site (folded only); for pprof, the default sample type\n"
    "  --kind K[,K...]    with --metric leaked: the leak kinds counted, as zw leaks takes\n"
    "                     them: definite, indirect, possible, reachable, or all (default\n"
    "                     all); suppressed blocks are left out. A capture without leak\n"
    "                     kinds gives its whole exit set, and says so\n"
    "  --suppressions FILE  with --metric leaked: more blocks to leave out (zw leaks')\n"
    "  --pid PID          the process of a capture set to export (one process per export)\n"
    "  --only             FILE alone, not FILE.1, FILE.2... of the same run\n"
    CLI_HELP_ALLOC_FNS
    CLI_HELP_DOMAIN
    CLI_HELP_QUIET
    "  -h, --help         this text\n"
    "\n"
    "massif holds every set and only bytes: it takes neither --at nor --metric.\n";

/* ---- tables ---- */

long
export_intern(zwi_strtab *st, const void *key, size_t len, bool *added)
{
    size_t before = st->count;
    uint32_t i;
    if (zwi_strtab_add(st, key != NULL ? key : "", len, &i) == NULL)
        return -1;
    *added = st->count > before;
    return (long)i;
}

/* ---- sets and frames ---- */

zw_stat_list *
export_set_stats(const export_ctx *x)
{
    zw_error err;
    zw_stat_list *stats = zw_snapshot_statistics(x->set->snap, ZW_GROUP_TRACEBACK, false, &err);
    if (stats == NULL)
        cli_fail("%s", err.msg);
    return stats;
}

const char *
export_frame_name(const zw_frame *f, char *buf, size_t len)
{
    if (f->function != NULL)
        return cli_demangle(f->function);
    zw_frame_str(f, buf, len);
    return buf;
}

size_t
export_pc_group(const zw_traceback *tb, size_t i)
{
    /* `inlined` means "inlined into the next older frame": the group goes down to the first
     * frame that is not */
    while (i > 0 && zw_traceback_frame(tb, i)->inlined)
        i--;
    return i;
}

/* ---- writing ---- */

/* Writes `out` to `path` (cli_output_open: "-" or a new or regular file replaced once whole, a
 * device or FIFO written through). */
static int
write_file(const zwi_cbuf *out, const char *path)
{
    cli_output o;
    if (cli_output_open(&o, path) != 0)
        return CLI_EXIT_FAILURE;
    bool wrote = out->len == 0 || fwrite(out->data, 1, out->len, o.f) == out->len;
    if (!wrote) {
        int e = errno;
        cli_output_close(&o, false);
        return cli_fail("cannot write '%s': %s", path, strerror(e));
    }
    return cli_output_close(&o, true);
}

static int
write_stdout(const zwi_cbuf *out)
{
    if ((out->len > 0 && fwrite(out->data, 1, out->len, stdout) != out->len) || fflush(stdout) != 0)
        return cli_fail("cannot write the output: %s", strerror(errno));
    return 0;
}

/* ---- leaks ---- */

/* The blocks of the exit set of `t`'s one process in the kinds of `kinds`, suppressed ones left
 * out (zw leaks' choice), into *out; *out stays NULL (and stderr says why) when the capture has
 * no leak kinds: the caller keeps the whole exit set. 0 or CLI_EXIT_FAILURE after saying why. */
static int
leaked_of(const cli_tree *t, const char *path, const cli_suppressions *sup, uint32_t kinds,
          zw_snapshot **out)
{
    *out = NULL;
    cli_leaks l;
    int rc = cli_leaks_of(t, NULL, sup, kinds, false, &l);
    if (rc != 0)
        return rc;
    if (l.scanned == 0) {
        fprintf(stderr, "zw: %s: leak kinds unknown (%s); every block live at exit is counted\n",
                path, cli_leaks_why(l.status));
        cli_leaks_release(&l);
        return 0;
    }
    const zw_snapshot *parts[ZW_LEAK_KINDS];
    size_t n = 0;
    for (int k = 0; k < ZW_LEAK_KINDS; k++)
        if (l.sets[k] != NULL)
            parts[n++] = l.sets[k];
    zw_error err;
    *out = zw_snapshot_merge(parts, n, &err);
    if (*out == NULL)
        rc = cli_fail("%s", err.msg);
    cli_leaks_release(&l);
    return rc;
}

/* ---- options ---- */

/* The checks of the options together: 0, or the exit status of a usage error already printed. */
static int
check_options(const cli_opts *o)
{
    if (o->format == CLI_FORMAT_NONE)
        return cli_usage("export", "no --format given (pprof, folded or massif)");
    if (o->output != NULL && o->output[0] == '\0')
        return cli_usage("export", "-o needs a file name ('-' is standard output)");
    return 0;
}

/* The metric of --metric, checked against --at and the format: 0 or a usage error's status. */
static int
check_metric(const cli_opts *o, enum export_metric *metric)
{
    const char *m = o->metric != NULL ? o->metric : "bytes";
    if (strcmp(m, "bytes") == 0)
        *metric = METRIC_BYTES;
    else if (strcmp(m, "allocations") == 0)
        *metric = METRIC_ALLOCATIONS;
    else if (strcmp(m, "leaked") == 0)
        *metric = METRIC_LEAKED;
    else if (strcmp(m, "temporary") == 0)
        *metric = METRIC_TEMPORARY;
    else
        return cli_usage("export", "unknown metric '%s' (bytes, allocations, leaked or temporary)",
                         m);
    if (o->format == CLI_FORMAT_MASSIF && (o->at != NULL || o->metric != NULL))
        return cli_usage("export", "massif holds the whole time series and every saved set in "
                                   "bytes: it takes neither --at nor --metric");
    if (*metric == METRIC_TEMPORARY && o->format != CLI_FORMAT_FOLDED)
        return cli_usage("export", "--metric temporary is for folded stacks only");
    if (*metric == METRIC_TEMPORARY && o->at != NULL)
        return cli_usage("export", "--metric temporary counts every temporary allocation made, "
                                   "not a live set: it takes no --at");
    if (*metric == METRIC_ALLOCATIONS && o->at != NULL && o->format != CLI_FORMAT_PPROF)
        return cli_usage("export", "--metric allocations counts every allocation made, not a "
                                   "live set: it takes no --at");
    if (*metric != METRIC_LEAKED && (o->kind != NULL || o->suppressions != NULL))
        return cli_usage("export", "--kind and --suppressions choose leaked blocks: they go with "
                                   "--metric leaked");
    if (*metric == METRIC_LEAKED && o->at != NULL && strcmp(o->at, "exit") != 0)
        return cli_usage("export", "--metric leaked is the exit set: it takes no --at '%s'", o->at);
    return 0;
}

int
cmd_export(const cli_command *cmd, const cli_opts *o)
{
    int rc = check_options(o);
    if (rc != 0)
        return rc;
    export_ctx x = {.path = o->files[0]};
    int mrc = check_metric(o, &x.metric);
    if (mrc != 0)
        return mrc;
    uint32_t kinds = (1u << ZW_LEAK_KINDS) - 1;
    if (o->kind != NULL && (mrc = cli_parse_kinds("export", o->kind, &kinds)) != 0)
        return mrc;
    bool to_stdout = o->output == NULL || strcmp(o->output, "-") == 0;
    if (o->format == CLI_FORMAT_PPROF && to_stdout && isatty(STDOUT_FILENO))
        return cli_usage("export", "pprof's output is binary: give -o FILE or redirect it");
    cli_tree *t = cli_load_tree(o->files[0], (long)o->pid, o->only);
    if (t == NULL)
        return CLI_EXIT_FAILURE;
    zwi_cbuf out = {.raw = cli_raw()};
    cli_picked picked = {0};
    zw_capture_set set = {0};
    zw_snapshot *leaked = NULL;
    cli_suppressions sup = {0};
    if (t->n > 1) {
        rc = cli_usage("export",
                       "'%s' is a capture set of %zu process images, and an export is "
                       "of one: choose it with --pid PID or --only ('zw stat %s' lists "
                       "them)",
                       o->files[0], t->n, o->files[0]);
        goto out_free;
    }
    const zw_capture *c = x.c = t->caps[0];
    x.path = t->paths[0];
    rc = CLI_EXIT_FAILURE;
    if (x.metric == METRIC_TEMPORARY && c->site_temporary == NULL) {
        cli_fail("capture '%s' has no per-site temporary counts (it was written by an older zw, "
                 "or cut short), only the total: %llu temporary allocations",
                 x.path, (unsigned long long)c->totals.temporary);
        goto out_free;
    }
    if (o->format != CLI_FORMAT_MASSIF && x.metric != METRIC_TEMPORARY &&
        (x.metric != METRIC_ALLOCATIONS || o->format == CLI_FORMAT_PPROF)) {
        const char *at = x.metric == METRIC_LEAKED ? "exit" : o->at != NULL ? o->at : "peak";
        if ((rc = cli_tree_pick(t, at, &picked)) != 0)
            goto out_free;
        rc = CLI_EXIT_FAILURE;
        set = (zw_capture_set){picked.label, (uint64_t)(picked.time_s * 1e9 + 0.5), 0,
                               (zw_snapshot *)picked.snap, NULL};
        x.set = &set;
        if (x.metric == METRIC_LEAKED) {
            if ((rc = cli_suppressions_read(o->suppressions, &sup)) != 0 ||
                (rc = leaked_of(t, x.path, &sup, kinds, &leaked)) != 0)
                goto out_free;
            rc = CLI_EXIT_FAILURE;
            if (leaked != NULL)
                set.snap = leaked;
        }
    }
    switch (o->format) {
    case CLI_FORMAT_PPROF:
        rc = export_pprof(&x, &out);
        break;
    case CLI_FORMAT_FOLDED:
        rc = export_folded(&x, &out);
        break;
    case CLI_FORMAT_MASSIF:
        rc = export_massif(&x, &out);
        break;
    case CLI_FORMAT_NONE:
        break;
    }
    if (rc == 0 && out.failed)
        rc = cli_fail("out of memory while exporting '%s'", o->files[0]);
    if (rc == 0)
        rc = to_stdout ? write_stdout(&out) : write_file(&out, o->output);
out_free:
    zwi_cbuf_release(&out);
    zw_snapshot_free(leaked);
    cli_suppressions_release(&sup);
    cli_picked_release(&picked);
    cli_tree_free(t);
    return rc;
}
