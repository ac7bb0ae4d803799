/* tools/zw/zw.h - what the subcommands of `zw` share (main.c): messages, option parsing, loading a
 * capture, choosing a live set of it, and printing statistics as a table or as JSON.
 * Exit statuses: 0 done, 1 failed (a file, the program), 2 bad usage. See docs/zw.md. */
#ifndef ZW_TOOL_H
#define ZW_TOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <zerowaste/capture.h>
#include <zerowaste/trace.h>

#define ZW_EXIT_FAILURE 1
#define ZW_EXIT_USAGE   2

/* "zw: error: ..." on stderr; returns ZW_EXIT_FAILURE. */
int zw_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "zw: error: ..." and a hint at `zw CMD --help` on stderr; returns ZW_EXIT_USAGE. */
int zw_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A cursor over a subcommand's arguments. */
typedef struct zw_args {
    const char *cmd; /* the subcommand, for messages */
    int argc;
    char **argv;
    int i;             /* the next argument */
    const char *value; /* the value of the option just matched, if it takes one */
    bool bad;          /* a usage error was printed */
} zw_args;

/* True if argv[i] is option `name` (e.g. "--limit"), taking a value when `with_value` (as the
 * next argument or after '='); a missing value prints a usage error and sets `bad`. */
bool zw_opt(zw_args *a, const char *name, bool with_value);
/* True if argv[i] is `--group lineno|filename|traceback`, stored in *out; a bad value prints a
 * usage error and sets `bad`. */
bool zw_opt_group(zw_args *a, zw_group *out);
/* Parses a->value as an unsigned number in [lo, hi] into *out; false (usage error) otherwise. */
bool zw_opt_uint(zw_args *a, unsigned long lo, unsigned long hi, unsigned long *out);

/* The capture at `path`, or NULL after printing why. */
zw_capture *zw_load(const char *path);

/* A capture set: the captures of one run, one per process image: FILE, then FILE.1, FILE.2...
 * (a forked child, the image an exec replaced), linked by pid and ppid. caps[0] is FILE. */
typedef struct zw_tree {
    const char *base; /* FILE, as given */
    size_t n;
    zw_capture **caps;
    char **paths;
} zw_tree;

/* Loads FILE and its siblings (FILE alone if `only`); with pid > 0 only the captures of that
 * process. NULL after printing why. */
zw_tree *zw_load_tree(const char *path, long pid, bool only);
void zw_tree_free(zw_tree *t);
/* Seconds from the start of caps[0] to the start of caps[i]. */
double zw_tree_offset(const zw_tree *t, size_t i);

/* A live set chosen from a capture set. */
typedef struct zw_picked {
    const zw_snapshot *snap; /* the set, merged over the processes that have one */
    const char *label;       /* "peak", "exit", the mark's, or "live" for a time */
    double time_s;           /* when the first process's set was taken, since caps[0] started */
    size_t nprocs;           /* the processes whose sets are in `snap` */
    zw_snapshot *own;        /* what zw_picked_release frees */
} zw_picked;

/* The set named `which` of every process that has one: "peak", "exit", a mark's label, or a time
 * in seconds since caps[0] started (the live set then, rebuilt from the steps; in a capture
 * without steps, the last saved set taken at or before it). 0, or the exit status after printing
 * why (ZW_EXIT_USAGE for a name that is none of these). */
int zw_tree_pick(const zw_tree *t, const char *which, zw_picked *out);
void zw_picked_release(zw_picked *p);

/* Bytes of every trace of `snap` and their number. */
void zw_snapshot_totals(const zw_snapshot *snap, size_t *bytes, size_t *blocks);

/* tracemalloc's size format: "12.3 KiB". */
const char *zw_size(char buf[32], long long bytes, bool sign);

/* Prints `list` as an aligned table (with the traceback of each entry when `tracebacks`), or as
 * a JSON array; at most `limit` entries (0: all). `diff` adds the differences. */
void zw_print_stats(const zw_stat_list *list, size_t limit, bool json, bool diff, bool tracebacks,
                    FILE *out);
/* "file:line (function)" of the most recent frame of `tb`. */
void zw_print_location(const zw_traceback *tb, FILE *out);
/* One entry {bytes, blocks[, bytes_diff, blocks_diff], traceback} of a JSON array. */
void zw_print_json_entry(const zw_statistic *s, bool diff, FILE *out);
/* A JSON string literal of `s` ("null" for NULL). */
void zw_json_string(const char *s, FILE *out);

/* top, leaks and peak: options, one live set, statistics (cmd_top.c). */
int zw_top_like(const char *cmd, const char *usage_help, const char *default_at, int default_group,
                int argc, char **argv);

int cmd_run(int argc, char **argv);
int cmd_stat(int argc, char **argv);
int cmd_top(int argc, char **argv);
int cmd_leaks(int argc, char **argv);
int cmd_peak(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_report(int argc, char **argv);

#endif /* ZW_TOOL_H */
