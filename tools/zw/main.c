/* tools/zw/main.c - the zw command: picks the subcommand (a cmd_<name>.c each) and holds what they
 * share (zw.h): messages, options, loading captures, choosing a live set, printing statistics.
 * The statistics are the trace layer's (zw_snapshot_statistics, zw_snapshot_compare_to): one
 * engine, two front doors. See docs/zw.md and docs/zw.1. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zw.h"

static const char usage_text[] =
    "usage: zw <command> [options]\n"
    "\n"
    "Find where a C program's memory goes, without changing it.\n"
    "\n"
    "commands:\n"
    "  run      run a program under libzwpreload.so and write its capture\n"
    "  stat     the figures of a capture: allocations, temporary, peak, leaks\n"
    "  top      the largest allocation sites at the peak, at exit or at a mark\n"
    "  leaks    the blocks still allocated at exit, by traceback\n"
    "  peak     the blocks allocated at the peak, by traceback\n"
    "  compare  what grew between two moments of a capture, or two captures\n"
    "  export   a capture as pprof, folded stacks (flame graphs) or massif's massif.out\n"
    "  report   one HTML page of a capture: memory over time, flame graph, tables\n"
    "\n"
    "'zw <command> --help' describes a command; docs/zw.md walks through an example.\n";

/* ---- messages ---- */

int
zw_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("zw: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return ZW_EXIT_FAILURE;
}

int
zw_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("zw: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (cmd != NULL)
        fprintf(stderr, "try 'zw %s --help'\n", cmd);
    else
        fputs("try 'zw --help'\n", stderr);
    return ZW_EXIT_USAGE;
}

/* ---- options ---- */

bool
zw_opt(zw_args *a, const char *name, bool with_value)
{
    const char *arg = a->argv[a->i];
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0)
        return false;
    if (arg[n] == '\0') {
        a->i++;
        if (!with_value)
            return true;
        if (a->i >= a->argc) {
            zw_usage(a->cmd, "option '%s' needs a value", name);
            a->bad = true;
            a->value = NULL;
            return true;
        }
        a->value = a->argv[a->i++];
        return true;
    }
    if (arg[n] == '=' && with_value) {
        a->value = arg + n + 1;
        a->i++;
        return true;
    }
    return false;
}

bool
zw_opt_uint(zw_args *a, unsigned long lo, unsigned long hi, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(a->value, &end, 10);
    if (a->value[0] == '\0' || a->value[0] == '-' || *end != '\0' || errno != 0 || v < lo ||
        v > hi) {
        zw_usage(a->cmd, "'%s' is not a number in [%lu, %lu]", a->value, lo, hi);
        a->bad = true;
        return false;
    }
    *out = v;
    return true;
}

bool
zw_opt_group(zw_args *a, zw_group *out)
{
    if (!zw_opt(a, "--group", true))
        return false;
    if (a->bad)
        return true;
    if (strcmp(a->value, "lineno") == 0) {
        *out = ZW_GROUP_LINENO;
    } else if (strcmp(a->value, "filename") == 0) {
        *out = ZW_GROUP_FILENAME;
    } else if (strcmp(a->value, "traceback") == 0) {
        *out = ZW_GROUP_TRACEBACK;
    } else {
        zw_usage(a->cmd, "unknown group '%s' (lineno, filename or traceback)", a->value);
        a->bad = true;
    }
    return true;
}

/* ---- statistics ---- */

void
zw_snapshot_totals(const zw_snapshot *snap, size_t *bytes, size_t *blocks)
{
    *bytes = 0;
    *blocks = 0;
    for (size_t i = 0; snap != NULL && i < zw_snapshot_len(snap); i++) {
        *bytes += zw_snapshot_trace(snap, i).size;
        (*blocks)++;
    }
}

const char *
zw_size(char buf[32], long long bytes, bool sign)
{
    zw_format_size(bytes, sign, buf, 32);
    return buf;
}

/* ---- printing ---- */

void
zw_json_string(const char *s, FILE *out)
{
    if (s == NULL) {
        fputs("null", out);
        return;
    }
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

/* "file:line (function)" of the most recent frame of `tb`. */
void
zw_print_location(const zw_traceback *tb, FILE *out)
{
    size_t n = zw_traceback_len(tb);
    if (n == 0) {
        fputs("<unknown>", out);
        return;
    }
    const zw_frame *f = zw_traceback_frame(tb, n - 1);
    char buf[1024];
    zw_frame_str(f, buf, sizeof(buf));
    fputs(buf, out);
    if (f->function != NULL)
        fprintf(out, " (%s)", f->function);
}

void
zw_print_json_entry(const zw_statistic *s, bool diff, FILE *out)
{
    fprintf(out, "{\"bytes\": %zu, \"blocks\": %zu", s->size, s->count);
    if (diff)
        fprintf(out, ", \"bytes_diff\": %lld, \"blocks_diff\": %lld", (long long)s->size_diff,
                (long long)s->count_diff);
    fputs(", \"traceback\": [", out);
    size_t n = zw_traceback_len(s->traceback);
    for (size_t k = n; k-- > 0;) { /* innermost first */
        const zw_frame *f = zw_traceback_frame(s->traceback, k);
        fputs(k + 1 == n ? "" : ", ", out);
        fputs("{\"function\": ", out);
        zw_json_string(f->function, out);
        fputs(", \"file\": ", out);
        zw_json_string(f->filename, out);
        fprintf(out, ", \"line\": %u, \"module\": ", f->lineno);
        zw_json_string(f->module, out);
        fputc('}', out);
    }
    fputs("]}", out);
}

void
zw_print_stats(const zw_stat_list *list, size_t limit, bool json, bool diff, bool tracebacks,
               FILE *out)
{
    size_t n = zw_stat_list_len(list);
    if (limit != 0 && limit < n)
        n = limit;
    if (json) {
        fputc('[', out);
        for (size_t i = 0; i < n; i++) {
            fputs(i == 0 ? "\n  " : ",\n  ", out);
            zw_print_json_entry(zw_stat_list_get(list, i), diff, out);
        }
        fputs(n > 0 ? "\n]\n" : "]\n", out);
        return;
    }
    if (diff)
        fprintf(out, "%4s  %10s  %11s  %7s  %8s  %s\n", "#", "size", "change", "blocks", "change",
                "allocated at");
    else
        fprintf(out, "%4s  %10s  %7s  %10s  %s\n", "#", "size", "blocks", "average",
                "allocated at");
    for (size_t i = 0; i < n; i++) {
        const zw_statistic *s = zw_stat_list_get(list, i);
        char a[32], b[32];
        if (diff)
            fprintf(out, "%4zu  %10s  %11s  %7zu  %+8lld  ", i + 1,
                    zw_size(a, (long long)s->size, 0), zw_size(b, s->size_diff, true), s->count,
                    (long long)s->count_diff);
        else
            fprintf(out, "%4zu  %10s  %7zu  %10s  ", i + 1, zw_size(a, (long long)s->size, 0),
                    s->count, zw_size(b, s->count ? (long long)(s->size / s->count) : 0, false));
        zw_print_location(s->traceback, out);
        fputc('\n', out);
        if (tracebacks) {
            size_t nf = zw_traceback_len(s->traceback);
            for (size_t k = nf; k-- > 0;) {
                const zw_frame *f = zw_traceback_frame(s->traceback, k);
                char buf[1024];
                zw_frame_str(f, buf, sizeof(buf));
                fprintf(out, "        %s%s%s\n", buf, f->function ? " " : "",
                        f->function ? f->function : "");
            }
        }
    }
    size_t total = zw_stat_list_len(list);
    if (n < total)
        fprintf(out, "(%zu more; --limit 0 shows all)\n", total - n);
}

/* ---- dispatch ---- */

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
} commands[] = {
    {"run", cmd_run},     {"stat", cmd_stat}, {"top", cmd_top},
    {"leaks", cmd_leaks}, {"peak", cmd_peak}, {"compare", cmd_compare},
    {"export", cmd_export},
    {"report", cmd_report},
};

int
main(int argc, char **argv)
{
    if (argc < 2)
        return zw_usage(NULL, "no command given");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("zw %s\n", zw_version());
        return 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[1], commands[i].name) == 0) {
            int rc = commands[i].fn(argc - 1, argv + 1);
            if (fflush(stdout) != 0 && rc == 0)
                rc = zw_fail("cannot write the output: %s", strerror(errno));
            return rc;
        }
    }
    return zw_usage(NULL, "unknown command '%s'", argv[1]);
}
