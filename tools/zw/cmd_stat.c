/* tools/zw/cmd_stat.c - zw stat: a capture's figures, as an aligned list or one JSON object (the
 * keys are documented in docs/zw.md#json and stay stable). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

const char cli_help_stat[] =
    "usage: zw stat [--json] [--series | --sections] [--suppressions FILE] [--pid PID] [--only]\n"
    "               FILE\n"
    "\n"
    "The figures of capture FILE: allocations, frees, temporary allocations, bytes allocated,\n"
    "the peak and when it happened, the leaks at exit, the duration, the mmap domain (the\n"
    "program's own mappings) at exit and at its peak, the largest RSS split into heap, mmap\n"
    "and what neither explains, marks.\n"
    "When the program started other processes (FILE.1, FILE.2...: a capture set), a table of\n"
    "the processes comes first and the figures are those of the whole set.\n"
    "\n"
    "options:\n"
    "  --json       one JSON object (keys in docs/zw.md), its \"processes\" one per process\n"
    "  --series     the time series instead: time_s, heap_bytes, heap_blocks, rss_bytes,\n"
    "               allocations, frees, temporary, bytes_allocated, mmap_bytes per sample\n"
    "               (tab-separated with a header line; with --json an array of arrays); one\n"
    "               process only\n"
    "  --sections   what FILE alone is made of instead: per kind of section, how many, the\n"
    "               bytes they take in the file (32-byte headers included) and decompressed\n"
    "  --suppressions FILE   leak suppressions, as zw leaks takes them\n"
    "  --pid PID    only that process of a capture set\n"
    "  --only       FILE alone, not FILE.1, FILE.2... of the same run\n"
    CLI_HELP_QUIET
    "  -h, --help   this text\n";

/* How the process ended is known: from TOTALS, or from the LIVE section of a capture cut short. */
static bool
end_known(const zw_capture *c)
{
    return c->has_totals || (c->has_live && c->totals.end != ZW_CAPTURE_END_UNKNOWN);
}

static const char *
end_text(const zw_capture *c, char *buf, size_t len)
{
    if (!end_known(c))
        return c->has_live ? "unknown (killed, by SIGKILL or the like: the counts are exact)"
                           : "unknown (the capture was cut short)";
    switch (c->totals.end) {
    case ZW_CAPTURE_END_EXIT:
        snprintf(buf, len, "exit status %d", c->totals.code);
        break;
    case ZW_CAPTURE_END_UNDERSCORE_EXIT:
        snprintf(buf, len, "_exit status %d", c->totals.code);
        break;
    case ZW_CAPTURE_END_SIGNAL:
        snprintf(buf, len, "signal %d (%s)", c->totals.code, strsignal(c->totals.code));
        break;
    case ZW_CAPTURE_END_EXEC:
        return "exec (the new image has a capture of its own)";
    default:
        return "unknown";
    }
    return buf;
}

/* The mmap domain beside the heap and RSS: its bytes at the end and at its peak, and the sample
 * of the largest RSS split into heap, mmap and what neither explains (the program's stacks, the
 * libraries' pages, the allocator's own overhead and unused pages; negative when mappings or
 * blocks are larger than what of them is resident). */
typedef struct domain_figures {
    uint64_t mmap_bytes;
    uint64_t mmap_peak;
    const zw_capture_sample *max_rss; /* NULL without samples */
    int64_t other;                    /* of max_rss: rss - heap - mmap */
} domain_figures;

static domain_figures
domains_of(const zw_capture *c)
{
    domain_figures d = {0};
    for (size_t i = 0; i < c->nsamples; i++) {
        const zw_capture_sample *s = &c->samples[i];
        if (d.max_rss == NULL || s->rss_bytes > d.max_rss->rss_bytes)
            d.max_rss = s;
        d.mmap_peak = s->mmap_peak > d.mmap_peak ? s->mmap_peak : d.mmap_peak;
        d.mmap_peak = s->mmap_bytes > d.mmap_peak ? s->mmap_bytes : d.mmap_peak;
        d.mmap_bytes = s->mmap_bytes; /* in time order: the last */
    }
    if (c->has_live && c->live.mmap_peak >= d.mmap_peak) { /* kept to the very end */
        d.mmap_peak = c->live.mmap_peak;
        d.mmap_bytes = c->live.mmap_bytes;
    }
    if (d.max_rss != NULL)
        d.other = (int64_t)d.max_rss->rss_bytes - (int64_t)d.max_rss->heap_bytes -
                  (int64_t)d.max_rss->mmap_bytes;
    return d;
}

/* The figures of one capture as the members of a JSON object (no braces). */
static void
print_members(const zw_capture *c, const char *path)
{
    const zw_capture_totals *t = &c->totals;
    size_t leaked = 0, blocks = 0;
    cli_snapshot_totals(c->exit.snap, &leaked, &blocks);
    uint64_t max_rss = 0;
    for (size_t i = 0; i < c->nsamples; i++)
        max_rss = c->samples[i].rss_bytes > max_rss ? c->samples[i].rss_bytes : max_rss;
    FILE *o = stdout;
    const cli_json j = {o, false};
    fputs("\"capture\": ", o);
    cli_json_string(&j, path);
    fprintf(o, ", \"complete\": %s, \"pid\": %" PRIu32 ", \"ppid\": %" PRIu32,
            c->complete ? "true" : "false", c->pid, c->ppid);
    fputs(", \"command\": [", o);
    for (size_t i = 0; i < c->argc; i++) {
        fputs(i ? ", " : "", o);
        cli_json_string(&j, c->argv[i]);
    }
    fputs("]", o);
    fprintf(o,
            ", \"allocations\": %" PRIu64 ", \"frees\": %" PRIu64 ", \"temporary\": %" PRIu64
            ", \"bytes_allocated\": %" PRIu64 ", \"peak_bytes\": %" PRIu64
            ", \"peak_time_s\": %.6f",
            t->allocations, t->frees, t->temporary, t->bytes_allocated, t->peak_bytes,
            (double)t->peak_time_ns / 1e9);
    if (c->exit.snap != NULL)
        fprintf(o, ", \"leaked_bytes\": %zu, \"leaked_blocks\": %zu", leaked, blocks);
    else
        fputs(", \"leaked_bytes\": null, \"leaked_blocks\": null", o);
    fprintf(o, ", \"duration_s\": %.6f, \"max_rss_bytes\": %" PRIu64 ", \"samples\": %zu",
            (double)t->duration_ns / 1e9, max_rss, c->nsamples);
    domain_figures d = domains_of(c);
    fprintf(o, ", \"mmap_bytes\": %" PRIu64 ", \"mmap_peak_bytes\": %" PRIu64, d.mmap_bytes,
            d.mmap_peak);
    if (d.max_rss != NULL)
        fprintf(o,
                ", \"max_rss_time_s\": %.6f, \"max_rss_heap_bytes\": %" PRIu64
                ", \"max_rss_mmap_bytes\": %" PRIu64 ", \"max_rss_other_bytes\": %" PRId64,
                (double)d.max_rss->time_ns / 1e9, d.max_rss->heap_bytes, d.max_rss->mmap_bytes,
                d.other);
    else
        fputs(", \"max_rss_time_s\": null, \"max_rss_heap_bytes\": null, "
              "\"max_rss_mmap_bytes\": null, \"max_rss_other_bytes\": null",
              o);
    const char *end = !end_known(c)                              ? "unknown"
                      : t->end == ZW_CAPTURE_END_SIGNAL          ? "signal"
                      : t->end == ZW_CAPTURE_END_UNDERSCORE_EXIT ? "_exit"
                      : t->end == ZW_CAPTURE_END_EXEC            ? "exec"
                                                                 : "exit";
    fprintf(o, ", \"end\": \"%s\", \"end_code\": %d, \"write_error\": ", end, t->code);
    if (c->write_errno != 0)
        cli_json_string(&j, strerror((int)c->write_errno));
    else
        fputs("null", o);
    fprintf(o, ", \"untraced\": %" PRIu64 ", \"marks\": [", c->untraced);
    for (size_t i = 0; i < c->nmarks; i++) {
        fputs(i ? ", " : "", o);
        fputs("{\"label\": ", o);
        cli_json_string(&j, c->marks[i].label);
        fprintf(o, ", \"time_s\": %.6f, \"bytes\": %" PRIu64 "}", (double)c->marks[i].time_ns / 1e9,
                c->marks[i].heap_bytes);
    }
    fputs("]", o);
}

/* The figures of a whole capture set (see whole()). */
typedef struct set_figures {
    zw_capture_totals t; /* allocations..bytes_allocated summed; the largest peak */
    size_t peak_proc;    /* the process of that peak */
    double duration_s;   /* from the first start to the last end */
    size_t leaked, leaked_blocks;
    bool leaks_known; /* every process has its exit set */
    bool complete;
    uint64_t max_rss;
    size_t samples;
    size_t last_root; /* the last image of the first process: how the program ended */
} set_figures;

static set_figures
whole(const cli_tree *t)
{
    set_figures f = {.leaks_known = true, .complete = true};
    for (size_t i = 0; i < t->n; i++) {
        const zw_capture *c = t->caps[i];
        f.t.allocations += c->totals.allocations;
        f.t.frees += c->totals.frees;
        f.t.temporary += c->totals.temporary;
        f.t.bytes_allocated += c->totals.bytes_allocated;
        if (i == 0 || c->totals.peak_bytes > f.t.peak_bytes) {
            f.t.peak_bytes = c->totals.peak_bytes;
            f.peak_proc = i;
        }
        double end = cli_tree_offset(t, i) + (double)c->totals.duration_ns / 1e9;
        f.duration_s = end > f.duration_s ? end : f.duration_s;
        size_t bytes = 0, blocks = 0;
        cli_snapshot_totals(c->exit.snap, &bytes, &blocks);
        f.leaked += bytes;
        f.leaked_blocks += blocks;
        f.leaks_known &= c->exit.snap != NULL;
        f.complete &= c->complete;
        for (size_t k = 0; k < c->nsamples; k++)
            f.max_rss = c->samples[k].rss_bytes > f.max_rss ? c->samples[k].rss_bytes : f.max_rss;
        f.samples += c->nsamples;
        if (c->pid == t->caps[0]->pid)
            f.last_root = i;
    }
    f.t.peak_time_ns = t->caps[f.peak_proc]->totals.peak_time_ns;
    return f;
}

/* "leaks": the kinds of the exit sets' blocks, summed over the processes scanned; null if none
 * was. */
static void
print_json_leaks(const cli_leaks *l, FILE *o)
{
    if (l->scanned == 0) {
        fputs(", \"leaks\": null", o);
        return;
    }
    fprintf(o, ", \"leaks\": {\"processes_scanned\": %zu, \"processes_not_scanned\": %zu",
            l->scanned, l->unscanned);
    uint64_t sblocks = 0, sbytes = 0;
    for (int k = 0; k < ZW_LEAK_KINDS; k++) {
        fprintf(o, ", \"%s\": {\"bytes\": %" PRIu64 ", \"blocks\": %" PRIu64 "}",
                cli_leak_kind_names[k], l->bytes[k], l->blocks[k]);
        sblocks += l->sblocks[k];
        sbytes += l->sbytes[k];
    }
    fprintf(o, ", \"suppressed\": {\"bytes\": %" PRIu64 ", \"blocks\": %" PRIu64 "}}", sbytes,
            sblocks);
}

static void
print_json(const cli_tree *t, const cli_leaks *l)
{
    FILE *o = stdout;
    const cli_json j = {o, false};
    fputc('{', o);
    if (t->n == 1) {
        print_members(t->caps[0], t->paths[0]);
    } else {
        set_figures f = whole(t);
        const zw_capture *root = t->caps[0];
        fputs("\"capture\": ", o);
        cli_json_string(&j, t->base);
        fprintf(o, ", \"complete\": %s, \"pid\": %" PRIu32 ", \"ppid\": %" PRIu32,
                f.complete ? "true" : "false", root->pid, root->ppid);
        fputs(", \"command\": [", o);
        for (size_t i = 0; i < root->argc; i++) {
            fputs(i ? ", " : "", o);
            cli_json_string(&j, root->argv[i]);
        }
        fprintf(o,
                "], \"allocations\": %" PRIu64 ", \"frees\": %" PRIu64 ", \"temporary\": %" PRIu64
                ", \"bytes_allocated\": %" PRIu64 ", \"peak_bytes\": %" PRIu64
                ", \"peak_time_s\": %.6f, \"peak_pid\": %" PRIu32,
                f.t.allocations, f.t.frees, f.t.temporary, f.t.bytes_allocated, f.t.peak_bytes,
                (double)f.t.peak_time_ns / 1e9 + cli_tree_offset(t, f.peak_proc),
                t->caps[f.peak_proc]->pid);
        if (f.leaks_known)
            fprintf(o, ", \"leaked_bytes\": %zu, \"leaked_blocks\": %zu", f.leaked,
                    f.leaked_blocks);
        else
            fputs(", \"leaked_bytes\": null, \"leaked_blocks\": null", o);
        const zw_capture *last = t->caps[f.last_root];
        const char *end = !end_known(last)                                     ? "unknown"
                          : last->totals.end == ZW_CAPTURE_END_SIGNAL          ? "signal"
                          : last->totals.end == ZW_CAPTURE_END_UNDERSCORE_EXIT ? "_exit"
                          : last->totals.end == ZW_CAPTURE_END_EXEC            ? "exec"
                                                                               : "exit";
        fprintf(o,
                ", \"duration_s\": %.6f, \"max_rss_bytes\": %" PRIu64
                ", \"samples\": %zu, \"end\": \"%s\", \"end_code\": %d",
                f.duration_s, f.max_rss, f.samples, end, last->totals.code);
    }
    print_json_leaks(l, o);
    fputs(", \"processes\": [", o);
    for (size_t i = 0; i < t->n; i++) {
        fputs(i ? ", {" : "{", o);
        print_members(t->caps[i], t->paths[i]);
        fprintf(o, ", \"start_s\": %.6f}", cli_tree_offset(t, i));
    }
    fputs("]}\n", o);
}

/* The table of a capture set's processes. */
static void
print_processes(const cli_tree *t)
{
    set_figures f = whole(t);
    char a1[32], a2[32], a3[32], buf[128];
    printf("%-16s %s: %zu processes%s\n", "capture set", t->base, t->n,
           f.complete ? "" : " (some incomplete)");
    printf("\n%8s %8s %8s %12s %10s %10s %10s %10s  %-22s %s\n", "pid", "parent", "start",
           "allocations", "peak", "mmap peak", "max RSS", "leaked", "ended", "command");
    uint64_t mmap_peak = 0;
    size_t mmap_proc = 0;
    for (size_t i = 0; i < t->n; i++) {
        const zw_capture *c = t->caps[i];
        size_t leaked = 0, blocks = 0;
        cli_snapshot_totals(c->exit.snap, &leaked, &blocks);
        domain_figures d = domains_of(c);
        if (d.mmap_peak > mmap_peak) {
            mmap_peak = d.mmap_peak;
            mmap_proc = i;
        }
        char a4[32], a5[32];
        printf("%8" PRIu32 " %8" PRIu32 " %7.3fs %12" PRIu64 " %10s %10s %10s %10s  %-22s", c->pid,
               c->ppid, cli_tree_offset(t, i), c->totals.allocations,
               cli_size(a1, (long long)c->totals.peak_bytes, false),
               cli_size(a4, (long long)d.mmap_peak, false),
               d.max_rss != NULL ? cli_size(a5, (long long)d.max_rss->rss_bytes, false) : "?",
               c->exit.snap ? cli_size(a2, (long long)leaked, false) : "?",
               end_known(c) && c->totals.end == ZW_CAPTURE_END_EXEC
                   ? "exec" /* the next image of the pid goes on */
               : !end_known(c) ? "unknown (cut short)"
                               : end_text(c, buf, sizeof(buf)));
        cli_print_command(c->argc, c->argv, stdout);
        printf("\n");
    }
    printf("\nthe whole set\n");
    printf("%-16s %.3f s\n", "duration", f.duration_s);
    printf("%-16s %" PRIu64 "\n", "allocations", f.t.allocations);
    printf("%-16s %" PRIu64 "\n", "frees", f.t.frees);
    printf("%-16s %" PRIu64 " (%.1f%%)\n", "temporary", f.t.temporary,
           f.t.allocations ? 100.0 * (double)f.t.temporary / (double)f.t.allocations : 0.0);
    printf("%-16s %s\n", "bytes allocated", cli_size(a1, (long long)f.t.bytes_allocated, false));
    printf("%-16s %s in process %" PRIu32 " at %.3f s (the largest of the processes' peaks)\n",
           "peak", cli_size(a2, (long long)f.t.peak_bytes, false), t->caps[f.peak_proc]->pid,
           (double)f.t.peak_time_ns / 1e9 + cli_tree_offset(t, f.peak_proc));
    if (mmap_peak > 0)
        printf("%-16s %s in process %" PRIu32 " (the largest of the processes' own mappings)\n",
               "mmap peak", cli_size(a2, (long long)mmap_peak, false), t->caps[mmap_proc]->pid);
    if (f.max_rss > 0)
        printf("%-16s %s (the largest of the processes')\n", "max RSS",
               cli_size(a2, (long long)f.max_rss, false));
    if (f.leaks_known)
        printf("%-16s %s in %zu blocks\n", "leaked at exit",
               cli_size(a3, (long long)f.leaked, false), f.leaked_blocks);
    else
        printf("%-16s %s in %zu blocks (and unknown in processes cut short)\n", "leaked at exit",
               cli_size(a3, (long long)f.leaked, false), f.leaked_blocks);
}

/* The samples, in time order, for a plot. */
static void
print_series(const zw_capture *c, bool json)
{
    const cli_json j = {stdout, false};
    if (!json)
        puts("time_s\theap_bytes\theap_blocks\trss_bytes\tallocations\tfrees\ttemporary\t"
             "bytes_allocated\tmmap_bytes");
    else
        fputc('[', stdout);
    for (size_t i = 0; i < c->nsamples; i++) {
        const zw_capture_sample *s = &c->samples[i];
        const char *sep = json ? ", " : "\t";
        if (json)
            cli_json_item(&j, i);
        printf("%s%.6f", json ? "[" : "", (double)s->time_ns / 1e9);
        const uint64_t v[] = {s->heap_bytes, s->heap_blocks, s->rss_bytes,       s->allocations,
                              s->frees,      s->temporary,   s->bytes_allocated, s->mmap_bytes};
        for (size_t k = 0; k < sizeof(v) / sizeof(v[0]); k++)
            printf("%s%" PRIu64, sep, v[k]);
        fputs(json ? "]" : "\n", stdout);
    }
    if (json)
        cli_json_end(&j, c->nsamples);
}

/* ---- --sections ---- */

#define SECTION_KINDS 64 /* types 0..63: every type a capture has, and room */

typedef struct section_sums {
    size_t count[SECTION_KINDS + 1]; /* the last: types past SECTION_KINDS - 1 */
    uint64_t stored[SECTION_KINDS + 1];
    uint64_t raw[SECTION_KINDS + 1];
    const char *name[SECTION_KINDS + 1];
    size_t damaged;
    uint64_t end; /* the offset past the last section listed */
} section_sums;

static void
add_section(void *ctx, const zw_capture_section *s)
{
    section_sums *sum = ctx;
    size_t k = s->type < SECTION_KINDS ? s->type : SECTION_KINDS;
    sum->count[k]++;
    sum->stored[k] += 32 + s->stored;
    sum->raw[k] += s->raw;
    sum->name[k] = s->type < SECTION_KINDS ? s->name : "other";
    sum->damaged += s->damaged;
    sum->end = s->offset + 32 + s->stored;
}

static int
print_sections(const char *path, bool json)
{
    section_sums sum = {0};
    zw_error err;
    if (zw_capture_sections(path, add_section, &sum, &err) != 0)
        return cli_fail("%s", err.msg);
    bool done[SECTION_KINDS + 1] = {false};
    uint64_t total = 32;
    if (json) {
        const cli_json j = {stdout, false};
        fputs("{\"capture\": ", stdout);
        cli_json_string(&j, path);
        fputs(", \"sections\": [", stdout);
    } else
        printf("%-14s %6s %10s %10s\n%-14s %6d %10d %10s\n", "section", "count", "bytes", "raw",
               "header", 1, 32, "-");
    for (int first = 1;; first = 0) { /* largest first */
        size_t k = SECTION_KINDS + 1;
        for (size_t i = 0; i <= SECTION_KINDS; i++) {
            if (sum.count[i] > 0 && !done[i] &&
                (k > SECTION_KINDS || sum.stored[i] > sum.stored[k]))
                k = i;
        }
        if (k > SECTION_KINDS)
            break;
        done[k] = true;
        total += sum.stored[k];
        if (json)
            printf("%s{\"section\": \"%s\", \"count\": %zu, \"bytes\": %" PRIu64
                   ", \"raw_bytes\": %" PRIu64 "}",
                   first ? "" : ", ", sum.name[k], sum.count[k], sum.stored[k], sum.raw[k]);
        else
            printf("%-14s %6zu %10" PRIu64 " %10" PRIu64 "\n", sum.name[k], sum.count[k],
                   sum.stored[k], sum.raw[k]);
    }
    if (json)
        printf("], \"bytes\": %" PRIu64 ", \"damaged\": %zu}\n", total, sum.damaged);
    else
        printf("%-14s %6s %10" PRIu64 "%s\n", "total", "", total,
               sum.damaged ? "  (damaged sections included)" : "");
    return 0;
}

int
cmd_stat(const cli_command *cmd, const cli_opts *o)
{
    const char *path = o->files[0];
    bool json = o->json, series = o->series;
    if (o->sections) {
        if (series)
            return cli_usage("stat", "--series and --sections cannot be given together");
        return print_sections(path, json);
    }
    cli_tree *tree = cli_load_tree(path, (long)o->pid, o->only);
    if (tree == NULL)
        return CLI_EXIT_FAILURE;
    if (series && tree->n > 1) {
        int rc = cli_usage("stat",
                           "the capture set '%s' holds %zu process images: choose one "
                           "with --pid for --series",
                           path, tree->n);
        cli_tree_free(tree);
        return rc;
    }
    cli_suppressions sup;
    cli_leaks leaks = {0};
    int rc = cli_suppressions_read(o->suppressions, &sup);
    if (rc == 0)
        rc = cli_leaks_of(tree, NULL, &sup, 0, false, &leaks);
    cli_suppressions_release(&sup);
    if (rc != 0) {
        cli_tree_free(tree);
        return rc;
    }
    if (series || json) {
        if (series)
            print_series(tree->caps[0], json);
        else
            print_json(tree, &leaks);
        cli_tree_free(tree);
        return 0;
    }
    if (tree->n > 1) {
        print_processes(tree);
        printf("\n");
        cli_print_leak_summary(&leaks, stdout);
        cli_tree_free(tree);
        return 0;
    }
    const zw_capture *c = tree->caps[0];
    path = tree->paths[0];
    const zw_capture_totals *t = &c->totals;
    char a1[32], a2[32], buf[128];
    size_t leaked = 0, blocks = 0;
    cli_snapshot_totals(c->exit.snap, &leaked, &blocks);
    uint64_t max_rss = 0;
    for (size_t i = 0; i < c->nsamples; i++)
        max_rss = c->samples[i].rss_bytes > max_rss ? c->samples[i].rss_bytes : max_rss;
    printf("%-16s %s%s\n", "capture", path, c->complete ? "" : " (incomplete)");
    if (c->argv == NULL) { /* no process section read: 0 would be a made-up pid */
        printf("%-16s unknown (the capture holds no process section)\n", "command");
        printf("%-16s unknown\n", "pid");
    } else {
        printf("%-16s", "command");
        cli_print_command(c->argc, c->argv, stdout);
        printf("\n%-16s %" PRIu32 " (parent %" PRIu32 ")\n", "pid", c->pid, c->ppid);
    }
    printf("%-16s %s\n", "ended", end_text(c, buf, sizeof(buf)));
    if (c->write_errno == ENOMEM)
        printf("%-16s the tracer ran out of memory writing it\n", "capture cut");
    else if (c->write_errno != 0)
        printf("%-16s write failed: %s\n", "capture cut", strerror((int)c->write_errno));
    if (c->untraced != 0)
        printf("%-16s %" PRIu64 " allocations not traced: the tracer ran out of memory\n",
               "not traced", c->untraced);
    printf("%-16s %.3f s\n", "duration", (double)t->duration_ns / 1e9);
    printf("%-16s %" PRIu64 "\n", "allocations", t->allocations);
    printf("%-16s %" PRIu64 "\n", "frees", t->frees);
    printf("%-16s %" PRIu64 " (%.1f%%)\n", "temporary", t->temporary,
           t->allocations ? 100.0 * (double)t->temporary / (double)t->allocations : 0.0);
    printf("%-16s %s\n", "bytes allocated", cli_size(a1, (long long)t->bytes_allocated, false));
    printf("%-16s %s at %.3f s\n", "peak", cli_size(a1, (long long)t->peak_bytes, false),
           (double)t->peak_time_ns / 1e9);
    if (c->exit.snap != NULL)
        printf("%-16s %s in %zu blocks\n", "leaked at exit", cli_size(a1, (long long)leaked, false),
               blocks);
    else
        printf("%-16s unknown\n", "leaked at exit");
    domain_figures d = domains_of(c);
    printf("%-16s %s at exit, peak %s (the program's own mappings)\n", "mmap",
           cli_size(a1, (long long)d.mmap_bytes, false),
           cli_size(a2, (long long)d.mmap_peak, false));
    printf("%-16s %s (%zu samples, every %" PRIu32 " ms)\n", "max RSS",
           cli_size(a2, (long long)max_rss, false), c->nsamples, c->interval_ms);
    if (d.max_rss != NULL) {
        char a3[32];
        printf("%-16s heap %s + mmap %s + neither %s (at %.3f s)\n", "of which",
               cli_size(a1, (long long)d.max_rss->heap_bytes, false),
               cli_size(a2, (long long)d.max_rss->mmap_bytes, false),
               cli_size(a3, (long long)d.other, d.other < 0), (double)d.max_rss->time_ns / 1e9);
    }
    printf("%-16s %zu", "marks", c->nmarks);
    for (size_t i = 0; i < c->nmarks; i++)
        printf("%s%s at %.3f s", i ? ", " : ": ", c->marks[i].label,
               (double)c->marks[i].time_ns / 1e9);
    printf("\n\n");
    cli_print_leak_summary(&leaks, stdout);
    cli_tree_free(tree);
    return 0;
}
