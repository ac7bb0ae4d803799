/* tools/zw/cmd_stat.c - zw stat: a capture's figures, as an aligned list or one JSON object (the
 * keys are documented in docs/zw.md#json and stay stable). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "zw.h"

static const char help[] =
    "usage: zw stat [--json] [--series] FILE\n"
    "\n"
    "The figures of capture FILE: allocations, frees, temporary allocations, bytes allocated,\n"
    "the peak and when it happened, the leaks at exit, the duration, the largest RSS, marks.\n"
    "\n"
    "options:\n"
    "  --json      one JSON object (keys in docs/zw.md)\n"
    "  --series    the time series instead: time_s, heap_bytes, heap_blocks, rss_bytes per\n"
    "              sample (tab-separated with a header line; with --json an array of arrays)\n"
    "  -h, --help  this text\n";

static const char *
end_text(const zw_capture *c, char *buf, size_t len)
{
    if (!c->has_totals)
        return "unknown (the capture was cut short)";
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

static void
print_json(const zw_capture *c, const char *path)
{
    const zw_capture_totals *t = &c->totals;
    size_t leaked = 0, blocks = 0;
    zw_snapshot_totals(c->exit.snap, &leaked, &blocks);
    uint64_t max_rss = 0;
    for (size_t i = 0; i < c->nsamples; i++)
        max_rss = c->samples[i].rss_bytes > max_rss ? c->samples[i].rss_bytes : max_rss;
    FILE *o = stdout;
    fputs("{\"capture\": ", o);
    zw_json_string(path, o);
    fprintf(o, ", \"complete\": %s, \"pid\": %" PRIu32 ", \"ppid\": %" PRIu32,
            c->complete ? "true" : "false", c->pid, c->ppid);
    fputs(", \"command\": [", o);
    for (size_t i = 0; i < c->argc; i++) {
        fputs(i ? ", " : "", o);
        zw_json_string(c->argv[i], o);
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
    const char *end = !c->has_totals                             ? "unknown"
                      : t->end == ZW_CAPTURE_END_SIGNAL          ? "signal"
                      : t->end == ZW_CAPTURE_END_UNDERSCORE_EXIT ? "_exit"
                      : t->end == ZW_CAPTURE_END_EXEC            ? "exec"
                                                                 : "exit";
    fprintf(o, ", \"end\": \"%s\", \"end_code\": %d, \"marks\": [", end, t->code);
    for (size_t i = 0; i < c->nmarks; i++) {
        fputs(i ? ", " : "", o);
        fputs("{\"label\": ", o);
        zw_json_string(c->marks[i].label, o);
        fprintf(o, ", \"time_s\": %.6f, \"bytes\": %" PRIu64 "}", (double)c->marks[i].time_ns / 1e9,
                c->marks[i].heap_bytes);
    }
    fputs("]}\n", o);
}

/* The samples, in time order, for a plot. */
static void
print_series(const zw_capture *c, bool json)
{
    if (!json)
        puts("time_s\theap_bytes\theap_blocks\trss_bytes");
    else
        fputc('[', stdout);
    for (size_t i = 0; i < c->nsamples; i++) {
        const zw_capture_sample *s = &c->samples[i];
        printf(json ? "%s[%.6f, %" PRIu64 ", %" PRIu64 ", %" PRIu64 "]"
                    : "%s%.6f\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\n",
               json ? (i ? ",\n  " : "\n  ") : "", (double)s->time_ns / 1e9, s->heap_bytes,
               s->heap_blocks, s->rss_bytes);
    }
    if (json)
        fputs(c->nsamples ? "\n]\n" : "]\n", stdout);
}

int
cmd_stat(int argc, char **argv)
{
    zw_args a = {.cmd = "stat", .argc = argc, .argv = argv, .i = 1};
    bool json = false;
    bool series = false;
    const char *path = NULL;
    while (a.i < argc) {
        const char *arg = argv[a.i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            fputs(help, stdout);
            return 0;
        }
        if (zw_opt(&a, "--json", false))
            json = true;
        else if (zw_opt(&a, "--series", false))
            series = true;
        else if (arg[0] == '-' && arg[1] != '\0')
            return zw_usage("stat", "unknown option '%s'", arg);
        else if (path != NULL)
            return zw_usage("stat", "one capture at a time ('%s' is one too many)", arg);
        else
            path = argv[a.i++];
    }
    if (path == NULL)
        return zw_usage("stat", "no capture file given");
    zw_capture *c = zw_load(path);
    if (c == NULL)
        return ZW_EXIT_FAILURE;
    if (series) {
        print_series(c, json);
        zw_capture_free(c);
        return 0;
    }
    if (json) {
        print_json(c, path);
        zw_capture_free(c);
        return 0;
    }
    const zw_capture_totals *t = &c->totals;
    char a1[32], a2[32], buf[128];
    size_t leaked = 0, blocks = 0;
    zw_snapshot_totals(c->exit.snap, &leaked, &blocks);
    uint64_t max_rss = 0;
    for (size_t i = 0; i < c->nsamples; i++)
        max_rss = c->samples[i].rss_bytes > max_rss ? c->samples[i].rss_bytes : max_rss;
    printf("%-16s %s%s\n", "capture", path, c->complete ? "" : " (incomplete)");
    printf("%-16s", "command");
    for (size_t i = 0; i < c->argc; i++)
        printf(" %s", c->argv[i]);
    printf("\n%-16s %" PRIu32 " (parent %" PRIu32 ")\n", "pid", c->pid, c->ppid);
    printf("%-16s %s\n", "ended", end_text(c, buf, sizeof(buf)));
    printf("%-16s %.3f s\n", "duration", (double)t->duration_ns / 1e9);
    printf("%-16s %" PRIu64 "\n", "allocations", t->allocations);
    printf("%-16s %" PRIu64 "\n", "frees", t->frees);
    printf("%-16s %" PRIu64 " (%.1f%%)\n", "temporary", t->temporary,
           t->allocations ? 100.0 * (double)t->temporary / (double)t->allocations : 0.0);
    printf("%-16s %s\n", "bytes allocated", zw_size(a1, (long long)t->bytes_allocated, false));
    printf("%-16s %s at %.3f s\n", "peak", zw_size(a1, (long long)t->peak_bytes, false),
           (double)t->peak_time_ns / 1e9);
    if (c->exit.snap != NULL)
        printf("%-16s %s in %zu blocks\n", "leaked at exit", zw_size(a1, (long long)leaked, false),
               blocks);
    else
        printf("%-16s unknown\n", "leaked at exit");
    printf("%-16s %s (%zu samples, every %" PRIu32 " ms)\n", "max RSS",
           zw_size(a2, (long long)max_rss, false), c->nsamples, c->interval_ms);
    printf("%-16s %zu", "marks", c->nmarks);
    for (size_t i = 0; i < c->nmarks; i++)
        printf("%s%s at %.3f s", i ? ", " : ": ", c->marks[i].label,
               (double)c->marks[i].time_ns / 1e9);
    printf("\n");
    zw_capture_free(c);
    return 0;
}
