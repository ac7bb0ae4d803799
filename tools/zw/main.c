/* tools/zw/main.c - the zw command: picks the subcommand (a cmd_<name>.c each) and holds part of
 * what they share (cli.h): messages and statistics as a table; options.c parses every command
 * line, tree.c loads captures and picks live sets, json.c writes JSON. The statistics are the
 * trace layer's (zw_snapshot_statistics, zw_snapshot_compare_to): one engine, two front doors.
 * See docs/zw.md and docs/zw.1. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage_text[] =
    "usage: zw <command> [options]\n"
    "\n"
    "Find where a C program's memory goes, without changing it.\n"
    "\n"
    "commands:\n"
    "  run      run a program under libzwpreload.so and write its capture\n"
    "  stat     the figures of a capture: allocations, temporary, peak, leaks\n"
    "  top      the largest allocation sites at the peak, at exit or at a mark\n"
    "  leaks    the blocks still allocated at exit, by kind of leak and traceback\n"
    "  peak     the blocks allocated at the peak, by traceback\n"
    "  compare  what grew between two moments of a capture, or two captures\n"
    "  export   a capture as pprof, folded stacks (flame graphs) or massif's massif.out\n"
    "  report   one HTML page of a capture: memory over time, flame graph, tables\n"
    "\n"
    "'zw <command> --help' describes a command; docs/zw.md walks through an example.\n";

/* ---- messages ---- */

/* "zw: error: " and the message, on stderr. */
static void
say_error(const char *fmt, va_list ap)
{
    fputs("zw: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int
cli_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    say_error(fmt, ap);
    va_end(ap);
    return CLI_EXIT_FAILURE;
}

/* The command running, for the hint of a usage error found past its option loop. */
static const char *running;

int
cli_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    say_error(fmt, ap);
    va_end(ap);
    if (cmd == NULL)
        cmd = running;
    if (cmd != NULL)
        fprintf(stderr, "try 'zw %s --help'\n", cmd);
    else
        fputs("try 'zw --help'\n", stderr);
    return CLI_EXIT_USAGE;
}

/* ---- memory ---- */

static zw_raw *door; /* made by main() before any command runs */

zw_raw *
cli_raw(void)
{
    return door;
}

/* ---- statistics ---- */

void
cli_snapshot_totals(const zw_snapshot *snap, size_t *bytes, size_t *blocks)
{
    *bytes = 0;
    *blocks = 0;
    for (size_t i = 0; snap != NULL && i < zw_snapshot_len(snap); i++) {
        *bytes += zw_snapshot_trace(snap, i).size;
        (*blocks)++;
    }
}

void
cli_print_command(size_t argc, const char *const *argv, FILE *out)
{
    for (size_t i = 0; i < argc; i++) {
        const unsigned char *a = (const unsigned char *)argv[i];
        bool quote = *a == '\0' || strpbrk((const char *)a, " \t\n\"'\\$`&|;<>()*?[]{}~#!") != NULL;
        fputs(quote ? " '" : " ", out);
        for (; *a != '\0'; a++) {
            if (*a == '\n')
                fputs("\\n", out);
            else if (*a == '\t')
                fputs("\\t", out);
            else if (*a < 0x20 || *a == 0x7f)
                fprintf(out, "\\x%02x", *a);
            else if (*a == '\'')
                fputs("'\\''", out);
            else
                fputc(*a, out);
        }
        if (quote)
            fputc('\'', out);
    }
}

const char *
cli_size(char buf[32], long long bytes, bool sign)
{
    zw_format_size(bytes, sign, buf, 32);
    return buf;
}

/* ---- printing ---- */

static bool
drop_alloc_fn(const zw_frame *f, void *arg)
{
    (void)arg;
    return cli_is_alloc_fn(f);
}


/* ---- modules without debug information ---- */

#define MAX_NODEBUG 8 /* modules named in the note; more are counted */

static struct {
    char *names[MAX_NODEBUG];
    size_t n;
    size_t more;
} nodebug;

void
cli_note_frame(const zw_frame *f)
{
    if (f->lineno != 0 || f->module == NULL)
        return;
    for (size_t i = 0; i < nodebug.n; i++) {
        if (strcmp(nodebug.names[i], f->module) == 0)
            return;
    }
    if (nodebug.n == MAX_NODEBUG || (nodebug.names[nodebug.n] = strdup(f->module)) == NULL) {
        nodebug.more++; /* counts frames past the first 8 modules, not modules: "and more" */
        return;
    }
    nodebug.n++;
}

const char cli_nodebug_how[] =
    "install their debug symbols (Debian: the -dbgsym packages of the debian-debug archive), or "
    "run 'zw run' again with DEBUGINFOD_URLS set (e.g. https://debuginfod.debian.net): libdw then "
    "fetches them";

const char *const *
cli_nodebug_modules(size_t *n, bool *more)
{
    *n = nodebug.n;
    *more = nodebug.more > 0;
    return (const char *const *)nodebug.names;
}

/* Once per command: the modules whose frames were printed without a line, and how to get
 * their debug information. */
static void
say_nodebug(void)
{
    if (nodebug.n == 0)
        return;
    fputs("zw: note: no debug information for", stderr);
    for (size_t i = 0; i < nodebug.n; i++) {
        fprintf(stderr, "%s %s", i ? "," : "", nodebug.names[i]);
        free(nodebug.names[i]);
    }
    fprintf(stderr, "%s: their frames print as module+0xoffset, without a line.\nzw: note: %s\n",
            nodebug.more ? " and more" : "", cli_nodebug_how);
    nodebug.n = 0;
}

void
cli_print_location(const zw_traceback *tb, FILE *out)
{
    size_t n = zw_traceback_len(tb);
    if (n == 0) {
        fputs("<unknown>", out);
        return;
    }
    const zw_frame *f = zw_traceback_frame(tb, cli_site_frame(tb));
    cli_note_frame(f);
    char buf[1024];
    zw_frame_str(f, buf, sizeof(buf));
    fputs(buf, out);
    if (f->function != NULL)
        fprintf(out, " (%s)", cli_demangle(f->function));
}

int
cli_stats_compute(cli_stats *s, const zw_snapshot *snap, const zw_snapshot *old, zw_group group,
                  bool cumulative, zw_error *err)
{
    *s = (cli_stats){0};
    if (group != ZW_GROUP_TRACEBACK) {
        const zw_snapshot *in[2] = {snap, old};
        for (int k = 0; k < 2 && in[k] != NULL; k++) {
            s->own[k] = zw_snapshot_trim_recent(in[k], drop_alloc_fn, NULL, err);
            if (s->own[k] == NULL) {
                cli_stats_release(s);
                return -1;
            }
        }
        snap = s->own[0];
        old = old != NULL ? s->own[1] : NULL;
    }
    s->list = old != NULL ? zw_snapshot_compare_to(snap, old, group, cumulative, err)
                          : zw_snapshot_statistics(snap, group, cumulative, err);
    if (s->list == NULL) {
        cli_stats_release(s);
        return -1;
    }
    return 0;
}

void
cli_stats_release(cli_stats *s)
{
    zw_stat_list_free(s->list); /* before the snapshots it borrows from */
    zw_snapshot_free(s->own[0]);
    zw_snapshot_free(s->own[1]);
    *s = (cli_stats){0};
}

void
cli_print_stats(const zw_stat_list *list, size_t limit, bool json, bool diff, bool tracebacks,
                FILE *out)
{
    size_t n = zw_stat_list_len(list);
    if (limit != 0 && limit < n)
        n = limit;
    if (json) {
        cli_json_stat_list(&(cli_json){out, false}, list, n, diff);
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
                    cli_size(a, (long long)s->size, 0), cli_size(b, s->size_diff, true), s->count,
                    (long long)s->count_diff);
        else
            fprintf(out, "%4zu  %10s  %7zu  %10s  ", i + 1, cli_size(a, (long long)s->size, 0),
                    s->count, cli_size(b, s->count ? (long long)(s->size / s->count) : 0, false));
        cli_print_location(s->traceback, out);
        fputc('\n', out);
        if (tracebacks) {
            size_t nf = zw_traceback_len(s->traceback);
            for (size_t k = nf; k-- > 0;) {
                const zw_frame *f = zw_traceback_frame(s->traceback, k);
                char buf[1024];
                zw_frame_str(f, buf, sizeof(buf));
                fprintf(out, "        %s%s%s\n", buf, f->function ? " " : "",
                        f->function ? cli_demangle(f->function) : "");
            }
        }
    }
    size_t total = zw_stat_list_len(list);
    if (n < total)
        fprintf(out, "(%zu more; --limit 0 shows all)\n", total - n);
}

/* ---- dispatch ---- */

#define T(opt) CLI_TAKES(opt)
#define NAMES  (T(ALLOC_FN) | T(NO_DEFAULT_ALLOC_FNS))
#define LIVE                                                                                       \
    (T(GROUP) | T(CUMULATIVE) | T(LIMIT) | T(PID) | T(ONLY) | T(JSON) | NAMES | T(DOMAIN) |     \
     T(QUIET))

/* Every command and the options it takes. leaks and peak are top with other defaults; peak has no
 * --at, leaks's names the exit or a mark (their help does not list --cumulative, which they have always taken). */
static const cli_command commands[] = {
    {"run", cli_help_run,
     T(OUTPUT) | T(NFRAME) | T(INTERVAL) | T(FOLLOW_FORK) | T(NO_FOLLOW_EXEC) | T(QUIET) |
         T(LEAK_CHECK) | T(ERROR_EXITCODE) | T(SUPPRESSIONS) | T(LEAK_CHECK_AT_MARKS),
     0, NULL,
     0, cmd_run},
    {"stat", cli_help_stat,
     T(JSON) | T(SERIES) | T(SECTIONS) | T(PID) | T(ONLY) | T(SUPPRESSIONS) | T(QUIET), 1, NULL,
     0,
     cmd_stat},
    {"top", cli_help_top, T(AT) | LIVE, 1, "peak", ZW_GROUP_LINENO, cmd_top},
    {"leaks", cli_help_leaks, T(AT) | LIVE | T(KIND) | T(SUPPRESSIONS) | T(SHOW_SUPPRESSED), 1, "exit",
     ZW_GROUP_TRACEBACK, cmd_leaks},
    {"peak", cli_help_peak, LIVE, 1, "peak", ZW_GROUP_TRACEBACK, cmd_top},
    {"compare", cli_help_compare, T(FROM) | T(TO) | T(AT) | LIVE, 2, "exit", ZW_GROUP_LINENO,
     cmd_compare},
    {"export", cli_help_export,
     T(FORMAT) | T(OUTPUT) | T(AT) | T(METRIC) | T(KIND) | T(SUPPRESSIONS) | T(PID) | T(ONLY) |
         NAMES | T(DOMAIN) | T(QUIET),
     1,
     NULL, 0, cmd_export},
    {"report", cli_help_report, T(OUTPUT) | NAMES | T(DOMAIN) | T(QUIET), 1, NULL, 0, cmd_report},
};


int
main(int argc, char **argv)
{
    if (argc < 2)
        return cli_usage(NULL, "no command given");
    if ((door = zw_raw_new(NULL)) == NULL)
        return cli_fail("cannot start: %s", strerror(errno));
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
            cli_opts o;
            running = commands[i].name;
            int rc = cli_parse(&commands[i], argc - 1, argv + 1, &o);
            if (rc == 0 && !o.help) {
                if (commands[i].nfiles > 0) /* a reading command: its status line */
                    cli_progress_begin(commands[i].name, o.quiet);
                rc = commands[i].run(&commands[i], &o);
                cli_progress_end();
            }
            if (fflush(stdout) != 0 && rc == 0)
                rc = cli_fail("cannot write the output: %s", strerror(errno));
            say_nodebug(); /* after the output it is about */
            return rc;
        }
    }
    return cli_usage(NULL, "unknown command '%s'", argv[1]);
}
