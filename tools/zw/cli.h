/* tools/zw/cli.h - what the subcommands of `zw` share: messages (main.c), the options of every
 * command parsed by one loop (options.c), loading a capture set and choosing a live set of it
 * (tree.c), printing statistics as a table (main.c) or as JSON (json.c).
 *
 * The command's own helpers are named cli_*; zw_* names are the library's. Its tables are the
 * trace layer's (trace_util.h: zwi_strtab, zwi_cbuf), as are its statistics (zw_snapshot_
 * statistics, zw_snapshot_compare_to): one engine, two front doors.
 * Exit statuses: 0 done, 1 failed (a file, the program), 2 bad usage. See docs/zw.md. */
#ifndef CLI_H
#define CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <zerowaste/capture.h>
#include <zerowaste/raw.h>
#include <zerowaste/trace.h>

#define CLI_EXIT_FAILURE 1
#define CLI_EXIT_USAGE   2

/* ---- messages (main.c) ---- */

/* Said of a capture without its end section: a killed process and a file cut short (a copy, a
 * full disk) look the same. */
#define CLI_CUT_SHORT                                                                              \
    " (the capture ends before its end section: the process was killed or the file was cut short)"

/* "zw: error: ..." on stderr; returns CLI_EXIT_FAILURE. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "zw: error: ..." and a hint at `zw CMD --help` on stderr; returns CLI_EXIT_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The raw door (the C library's malloc) of the command's tables and buffers (trace_util.h). */
zw_raw *cli_raw(void);

/* ---- options (options.c) ---- */

/* Every option of every command, defined once in options.c; a command lists those it takes. */
enum cli_opt {
    CLI_OPT_AT,    /* --at WHEN */
    CLI_OPT_FROM,  /* --from WHEN */
    CLI_OPT_TO,    /* --to WHEN */
    CLI_OPT_GROUP, /* --group lineno|filename|traceback */
    CLI_OPT_CUMULATIVE,
    CLI_OPT_LIMIT, /* --limit N */
    CLI_OPT_PID,   /* --pid PID */
    CLI_OPT_ONLY,
    CLI_OPT_JSON,
    CLI_OPT_SERIES,
    CLI_OPT_SECTIONS,
    CLI_OPT_OUTPUT,   /* -o, --output OUT */
    CLI_OPT_FORMAT,   /* --format pprof|folded|massif */
    CLI_OPT_METRIC,   /* --metric NAME */
    CLI_OPT_NFRAME,   /* --nframe N */
    CLI_OPT_INTERVAL, /* --interval MS */
    CLI_OPT_FOLLOW_FORK,
    CLI_OPT_NO_FOLLOW_EXEC,
    CLI_OPT_QUIET, /* -q, --quiet */
    CLI_OPT_KIND,  /* --kind definite,indirect,possible,reachable|all */
    CLI_OPT_SUPPRESSIONS,    /* --suppressions FILE */
    CLI_OPT_SHOW_SUPPRESSED, /* --show-suppressed */
    CLI_OPT_LEAK_CHECK,      /* --leak-check[=definite|possible|all] */
    CLI_OPT_ERROR_EXITCODE,  /* --error-exitcode N */
    CLI_OPT_ALLOC_FN, /* --alloc-fn GLOB, repeatable */
    CLI_OPT_NO_DEFAULT_ALLOC_FNS,
    CLI_OPT_LEAK_CHECK_AT_MARKS, /* --leak-check-at-marks */
    CLI_OPT_DOMAIN,              /* --domain heap|mmap|all */
};
#define CLI_TAKES(opt) (1u << CLI_OPT_##opt)

typedef struct cli_opts cli_opts;

/* A subcommand: what it takes and what runs it (main.c's table). */
typedef struct cli_command cli_command;
struct cli_command {
    const char *name; /* for messages */
    const char *help; /* printed for -h, --help */
    uint32_t takes;   /* CLI_TAKES() of each of its options */
    int nfiles;       /* at most this many captures; 0: a program and its arguments follow */
    const char *at;   /* the default --at (NULL: none) */
    zw_group group;   /* the default --group */
    /* runs the command with its options, parsed by cli_parse(); an exit status */
    int (*run)(const cli_command *c, const cli_opts *o);
};

#define CLI_MAX_ALLOC_FNS 64 /* --alloc-fn given at most this many times */

/* The help lines of --alloc-fn and --no-default-alloc-fns, for the commands that take them. */
#define CLI_HELP_ALLOC_FNS                                                                         \
    "  --alloc-fn GLOB   (repeatable) functions that only allocate for their caller, as well\n"   \
    "                    as the built-in list (operator new, xmalloc, g_malloc...): rows by\n"     \
    "                    line or file name their caller\n"                                        \
    "  --no-default-alloc-fns   drop the built-in list\n"

/* The values of --domain: the heap (the malloc family, the default: the figures of captures
 * before the mmap domain existed), the program's own mappings, or both. */
enum cli_domain { CLI_DOMAIN_HEAP, CLI_DOMAIN_MMAP, CLI_DOMAIN_ALL };

#define CLI_HELP_DOMAIN                                                                            \
    "  --domain heap|mmap|all   the malloc family's blocks (default), the mappings the\n"          \
    "                    program made itself (mmap, mremap, brk, sbrk), or both; --at peak\n"      \
    "                    with mmap is the mmap domain's own peak\n"

/* export's formats, the values of --format */
enum cli_format { CLI_FORMAT_NONE, CLI_FORMAT_PPROF, CLI_FORMAT_FOLDED, CLI_FORMAT_MASSIF };

/* The options of a command line, and its captures. Options not given keep their defaults: the
 * command's at and group, limit 10, 0, false or NULL. */
struct cli_opts {
    bool help;            /* -h or --help: the help was printed, the command returns 0 */
    const char *files[2]; /* the captures given, nfiles of them */
    size_t nfiles;
    char **program; /* nfiles == 0: the program to run and its arguments, NULL-terminated */
    const char *at;
    const char *from;
    const char *to;
    const char *output;
    const char *metric;
    int format;       /* an enum cli_format */
    int group;        /* a zw_group */
    bool group_given; /* --group was on the command line (else `group` is the command's) */
    bool cumulative;
    bool only;
    bool json;
    bool series;
    bool sections;
    bool follow_fork;
    bool no_follow_exec;
    bool quiet;
    const char *kind;         /* --kind, NULL: all */
    const char *suppressions; /* --suppressions FILE */
    bool show_suppressed;
    const char *leak_check;       /* --leak-check's kinds ("definite" if given bare); NULL: off */
    unsigned long error_exitcode; /* with --leak-check: the status when leaks remain */
    unsigned long limit; /* 0: all */
    unsigned long pid;   /* 0: every process */
    unsigned long nframe;
    unsigned long interval;
    const char *alloc_fns[CLI_MAX_ALLOC_FNS]; /* --alloc-fn, in order */
    size_t nalloc_fns;
    bool no_default_alloc_fns;
    bool leak_check_at_marks; /* zw run: each zw_mark() that keeps its set scans it too */
    int domain;               /* an enum cli_domain */
};

/* Parses the arguments of command `c` (argv[0] is its name) into *o: 0, or CLI_EXIT_USAGE after
 * printing why (an unknown option, a bad or missing value, too many or no captures). */
int cli_parse(const cli_command *c, int argc, char **argv, cli_opts *o);
/* --cumulative with --group traceback is a usage error: 0 or CLI_EXIT_USAGE after saying so. */
int cli_check_cumulative(const cli_command *c, const cli_opts *o);

/* ---- -o OUT (output.c) ---- */

/* An output being written: `f` is where to write. */
typedef struct cli_output {
    FILE *f;
    const char *path; /* as given, for messages */
    char *tmp; /* the temporary file renamed over `final` when whole; NULL: written through */
    char *final;
    bool is_stdout; /* "-" */
} cli_output;

/* Opens `path` for writing: "-" is standard output; a new or regular file (or a link's regular
 * target) is replaced atomically on close; a device, a FIFO or another link target is written
 * through. 0, or CLI_EXIT_FAILURE after saying why. */
int cli_output_open(cli_output *o, const char *path);
/* Finishes the output: when `ok`, flushes and (for a replaced file) renames it into place, else
 * removes the temporary file. 0, or CLI_EXIT_FAILURE (said; also when !ok, without a message). */
int cli_output_close(cli_output *o, bool ok);
/* ---- the status line of a reading command (progress.c) ---- */

/* The help line of -q for the reading commands. */
#define CLI_HELP_QUIET "  -q, --quiet   no status line while a large capture is read\n"

/* Starts the clock of command `cmd`; the line is shown only on a terminal and without -q. */
void cli_progress_begin(const char *cmd, bool quiet);
/* "zw: CMD: WHAT, 1.2 s" on stderr once the command has run about a second, at most ten times a
 * second; WHAT is printf's `fmt`. */
void cli_progress_show(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Erases the line, if shown, before the command prints; a later cli_progress_show() shows it
 * again. */
void cli_progress_end(void);

/* ---- function names (names.c) ---- */

/* The demangled name of a C++ or Rust symbol (libiberty's cplus_demangle), `raw` itself for any
 * other name; NULL for NULL. Valid until the command ends. */
const char *cli_demangle(const char *raw);
/* The allocation functions: the built-in list (unless `no_defaults`) and `globs` (fnmatch, on the
 * raw or the demangled name, with or without its parameters). cli_parse() sets them. */
void cli_set_alloc_fns(const char *const *globs, size_t n, bool no_defaults);
/* Whether frame `f` is in an allocation function. */
bool cli_is_alloc_fn(const zw_frame *f);
/* The index of the most recent frame of `tb` outside the allocation functions (the oldest frame
 * when all are in them): the site grouping by line or file gives the block. */
size_t cli_site_frame(const zw_traceback *tb);

/* Statistics whose line and file groups look past the allocation functions (tracebacks keep every
 * frame): zw_snapshot_statistics, or zw_snapshot_compare_to when `old` is not NULL, on copies of
 * the snapshots without their most recent allocation-function frames. */
typedef struct cli_stats {
    zw_stat_list *list;
    zw_snapshot *own[2]; /* the copies the list borrows from */
} cli_stats;
/* 0, or -1 with an error. */
int cli_stats_compute(cli_stats *s, const zw_snapshot *snap, const zw_snapshot *old,
                      zw_group group, bool cumulative, zw_error *err);
void cli_stats_release(cli_stats *s);

/* ---- capture sets and live sets (tree.c) ---- */

/* The capture at `path`, or NULL after printing why. Its live sets, steps and sites hold the
 * traces of the domain cli_set_domain() chose only (the heap's unless told). */
zw_capture *cli_load(const char *path);
/* The same without a word when the file cannot be read (NULL then) or is damaged. */
zw_capture *cli_load_quiet(const char *path);
/* The warning for a capture read with damaged sections (none if it was read whole). */
void cli_warn_damaged(const char *path, const zw_capture *c);
/* The domain (enum cli_domain) cli_load() keeps from now on; cli_parse() sets it. */
void cli_set_domain(int domain);
/* Whether traces of `domain` are of the domain chosen. */
bool cli_in_domain(unsigned domain);
/* The bytes of sample `s` in the domain chosen: heap, mmap or both. */
uint64_t cli_sample_bytes(const zw_capture_sample *s);
/* What those bytes are, in words ("requested sizes" for the heap). */
const char *cli_domain_words(void);

/* A capture set: the captures of one run, one per process image: FILE, then FILE.1, FILE.2...
 * (a forked child, the image an exec replaced), linked by pid and ppid. caps[0] is FILE. */
typedef struct cli_tree {
    const char *base; /* FILE, as given */
    size_t n;
    zw_capture **caps;
    char **paths;
} cli_tree;

/* Loads FILE and its siblings (FILE alone if `only`); with pid > 0 only the captures of that
 * process. NULL after printing why. */
cli_tree *cli_load_tree(const char *path, long pid, bool only);
void cli_tree_free(cli_tree *t);
/* The largest peak of the mmap domain of the captures (0: nothing mapped, or made before it). */
uint64_t cli_tree_mmap_peak(const cli_tree *t);
/* Seconds from the start of caps[0] to the start of caps[i]. */
double cli_tree_offset(const cli_tree *t, size_t i);

/* A live set chosen from a capture set. */
typedef struct cli_picked {
    const zw_snapshot *snap; /* the set, merged over the processes that have one */
    const char *label;       /* "peak", "exit", the mark's, or "live" for a time */
    double time_s;           /* when the first process's set was taken, since caps[0] started */
    size_t nprocs;           /* the processes whose sets are in `snap` */
    zw_snapshot *own;        /* what cli_picked_release frees */
} cli_picked;

/* The set named `which` of every process that has one: "peak", "exit", a mark's label, or a time
 * in seconds since caps[0] started (the live set then, rebuilt from the steps; in a capture
 * without steps, the last saved set taken at or before it). 0, or the exit status after printing
 * why (CLI_EXIT_USAGE for a name that is none of these). */
int cli_tree_pick(const cli_tree *t, const char *which, cli_picked *out);
void cli_picked_release(cli_picked *p);

/* ---- statistics as text (main.c) ---- */

/* Bytes of every trace of `snap` and their number. */
void cli_snapshot_totals(const zw_snapshot *snap, size_t *bytes, size_t *blocks);

/* Prints a command line as a shell would read it back, on one line: each argument after a space;
 * one with a space, a quote or a shell character in single quotes; control characters (a
 * newline of `python3 -c "..."`) as \n, \t or \xHH, so a table keeps one row per process. */
void cli_print_command(size_t argc, const char *const *argv, FILE *out);

/* tracemalloc's size format: "12.3 KiB". */
const char *cli_size(char buf[32], long long bytes, bool sign);

/* Prints `list` as an aligned table (with the traceback of each entry when `tracebacks`), or as
 * a JSON array; at most `limit` entries (0: all). `diff` adds the differences. */
void cli_print_stats(const zw_stat_list *list, size_t limit, bool json, bool diff, bool tracebacks,
                     FILE *out);
/* Notes that frame `f` was printed; a frame of a module without a line makes the command end
 * with a note naming the module and how to get its debug information (once per command). */
void cli_note_frame(const zw_frame *f);
/* The modules cli_note_frame() has seen so far (at most 8; *more: others too), for a note that
 * names them, as the command's own note on stderr does at its end. */
const char *const *cli_nodebug_modules(size_t *n, bool *more);
/* How to get the debug information of such modules: the second half of that note. */
extern const char cli_nodebug_how[];
/* "file:line (function)" of the most recent frame of `tb` outside the allocation functions,
 * the function demangled. */
void cli_print_location(const zw_traceback *tb, FILE *out);

/* ---- JSON (json.c) ---- */

typedef struct cli_json {
    FILE *out;
    bool script_safe; /* also escape '<', '>' and '&': the text sits inside an HTML <script> */
} cli_json;

/* A string literal of `s` ("null" for NULL). */
void cli_json_string(const cli_json *j, const char *s);
/* Nanoseconds as seconds with six decimals. */
void cli_json_seconds(const cli_json *j, uint64_t ns);
/* The separator before item i of a top-level array, one item a line; the end of an array of n. */
void cli_json_item(const cli_json *j, size_t i);
void cli_json_end(const cli_json *j, size_t n);
/* [{function, symbol, file, line, module}, ...], the most recent frame first: function
 * demangled, symbol as captured. */
void cli_json_traceback(const cli_json *j, const zw_traceback *tb);
/* {bytes, blocks[, bytes_diff, blocks_diff], traceback}. */
void cli_json_statistic(const cli_json *j, const zw_statistic *s, bool diff);
/* The first n entries of `list` as an array, one a line. */
void cli_json_stat_list(const cli_json *j, const zw_stat_list *list, size_t n, bool diff);

/* ---- leak kinds and suppressions (leaks.c) ---- */

/* The patterns of a suppression file (LeakSanitizer's `leak:PATTERN` lines). */
typedef struct cli_suppressions {
    char **patterns;
    size_t n;
} cli_suppressions;

/* Reads `path` (NULL: none, the built-in list only): 0, or CLI_EXIT_FAILURE after saying why. */
int cli_suppressions_read(const char *path, cli_suppressions *out);
void cli_suppressions_release(cli_suppressions *s);

/* The leaks of a capture set's exit sets (`at` NULL or "exit"), or of its marks labelled `at`
 * (scanned with zw run --leak-check-at-marks): the blocks and bytes of each kind, suppressed
 * apart, and, for each kind in the mask asked, the blocks of that kind merged over the processes
 * (the suppressed ones instead if `show_suppressed`). */
typedef struct cli_leaks {
    uint64_t blocks[ZW_LEAK_KINDS];
    uint64_t bytes[ZW_LEAK_KINDS];
    uint64_t sblocks[ZW_LEAK_KINDS]; /* suppressed */
    uint64_t sbytes[ZW_LEAK_KINDS];
    size_t scanned;              /* processes whose set was scanned */
    size_t unscanned;            /* and those whose was not */
    uint32_t status;             /* the first unscanned one's (enum zw_leaks_status) */
    zw_snapshot *sets[ZW_LEAK_KINDS]; /* NULL for kinds not asked, or with no scanned process */
} cli_leaks;

int cli_leaks_of(const cli_tree *t, const char *at, const cli_suppressions *s, uint32_t kinds,
                 bool show_suppressed, cli_leaks *out);
void cli_leaks_release(cli_leaks *l);
/* "definite", "indirect", "possible", "reachable" */
extern const char *const cli_leak_kind_names[ZW_LEAK_KINDS];
/* A --kind value ("definite,indirect", "all") as a mask of 1u << kind: 0 or CLI_EXIT_USAGE. */
int cli_parse_kinds(const char *cmd, const char *arg, uint32_t *out);
/* Why a process's exit set has no kinds, in words. */
const char *cli_leaks_why(uint32_t status);
/* memcheck's LEAK SUMMARY, with the suppressed total. */
void cli_print_leak_summary(const cli_leaks *l, FILE *out);

/* ---- commands ---- */

/* The help of each command, in its cmd_<name>.c (leaks and peak: cmd_top.c). */
extern const char cli_help_run[], cli_help_stat[], cli_help_top[], cli_help_leaks[],
    cli_help_peak[], cli_help_compare[], cli_help_export[], cli_help_report[];

int cmd_run(const cli_command *c, const cli_opts *o);
int cmd_stat(const cli_command *c, const cli_opts *o);
/* top, leaks and peak: one live set grouped, largest first */
int cmd_top(const cli_command *c, const cli_opts *o);
int cmd_leaks(const cli_command *c, const cli_opts *o);
int cmd_compare(const cli_command *c, const cli_opts *o);
int cmd_export(const cli_command *c, const cli_opts *o);
int cmd_report(const cli_command *c, const cli_opts *o);

#endif /* CLI_H */
