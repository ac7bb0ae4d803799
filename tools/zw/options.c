/* tools/zw/options.c - the options of every zw command, defined once (`defs`, indexed by enum
 * cli_opt), and the one loop that parses a command line against the options its command takes
 * (cli_command.takes). An option takes its value as the next argument or after '='; -h and --help
 * print the command's help wherever they stand among the options. See docs/zw.1. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum kind {
    FLAG,   /* a bool set to true */
    TEXT,   /* a const char * */
    NUMBER, /* an unsigned long in [lo, hi] */
    CHOICE, /* an int: the value of one of `choices` */
    MAYBE,  /* a const char *: its value only after '=', "" when given bare */
    LIST,   /* --alloc-fn: one more of cli_opts.alloc_fns */
};

typedef struct choice {
    const char *name;
    int value;
} choice;

static const choice groups[] = {{"lineno", ZW_GROUP_LINENO},
                                {"filename", ZW_GROUP_FILENAME},
                                {"traceback", ZW_GROUP_TRACEBACK},
                                {NULL, 0}};
static const choice domains[] = {{"heap", CLI_DOMAIN_HEAP},
                                 {"mmap", CLI_DOMAIN_MMAP},
                                 {"all", CLI_DOMAIN_ALL},
                                 {NULL, 0}};
static const choice formats[] = {{"pprof", CLI_FORMAT_PPROF},
                                 {"folded", CLI_FORMAT_FOLDED},
                                 {"massif", CLI_FORMAT_MASSIF},
                                 {NULL, 0}};

typedef struct option_def {
    const char *names[2]; /* the second may be NULL */
    enum kind kind;
    size_t field;          /* offsetof(cli_opts, ...) */
    unsigned long lo, hi;  /* NUMBER */
    const choice *choices; /* CHOICE */
    const char *what;      /* CHOICE: "unknown WHAT 'x' (ONE_OF)" */
    const char *one_of;
} option_def;

#define OPT(name, kind, field)                                                                     \
    {                                                                                              \
        {name, NULL}, kind, offsetof(cli_opts, field)                                              \
    }

static const option_def defs[] = {
    [CLI_OPT_AT] = OPT("--at", TEXT, at),
    [CLI_OPT_FROM] = OPT("--from", TEXT, from),
    [CLI_OPT_TO] = OPT("--to", TEXT, to),
    [CLI_OPT_GROUP] = {{"--group", NULL},
                       CHOICE,
                       offsetof(cli_opts, group),
                       0,
                       0,
                       groups,
                       "group",
                       "lineno, filename or traceback"},
    [CLI_OPT_CUMULATIVE] = OPT("--cumulative", FLAG, cumulative),
    [CLI_OPT_LIMIT] = {{"--limit", NULL}, NUMBER, offsetof(cli_opts, limit), 0, 1000000000},
    [CLI_OPT_PID] = {{"--pid", NULL}, NUMBER, offsetof(cli_opts, pid), 1, 0x7fffffff},
    [CLI_OPT_ONLY] = OPT("--only", FLAG, only),
    [CLI_OPT_JSON] = OPT("--json", FLAG, json),
    [CLI_OPT_SERIES] = OPT("--series", FLAG, series),
    [CLI_OPT_SECTIONS] = OPT("--sections", FLAG, sections),
    [CLI_OPT_OUTPUT] = {{"-o", "--output"}, TEXT, offsetof(cli_opts, output)},
    [CLI_OPT_FORMAT] = {{"--format", NULL},
                        CHOICE,
                        offsetof(cli_opts, format),
                        0,
                        0,
                        formats,
                        "format",
                        "pprof, folded or massif"},
    [CLI_OPT_METRIC] = OPT("--metric", TEXT, metric),
    [CLI_OPT_NFRAME] =
        {{"--nframe", NULL}, NUMBER, offsetof(cli_opts, nframe), 1, ZW_TRACE_MAX_NFRAME},
    [CLI_OPT_INTERVAL] = {{"--interval", NULL}, NUMBER, offsetof(cli_opts, interval), 1, 3600000},
    [CLI_OPT_FOLLOW_FORK] = OPT("--follow-fork", FLAG, follow_fork),
    [CLI_OPT_NO_FOLLOW_EXEC] = OPT("--no-follow-exec", FLAG, no_follow_exec),
    [CLI_OPT_QUIET] = {{"-q", "--quiet"}, FLAG, offsetof(cli_opts, quiet)},
    [CLI_OPT_KIND] = OPT("--kind", TEXT, kind),
    [CLI_OPT_SUPPRESSIONS] = OPT("--suppressions", TEXT, suppressions),
    [CLI_OPT_SHOW_SUPPRESSED] = OPT("--show-suppressed", FLAG, show_suppressed),
    [CLI_OPT_LEAK_CHECK] = OPT("--leak-check", MAYBE, leak_check),
    [CLI_OPT_ERROR_EXITCODE] = {{"--error-exitcode", NULL}, NUMBER,
                                offsetof(cli_opts, error_exitcode), 1, 255},
    [CLI_OPT_ALLOC_FN] = OPT("--alloc-fn", LIST, alloc_fns),
    [CLI_OPT_NO_DEFAULT_ALLOC_FNS] = OPT("--no-default-alloc-fns", FLAG, no_default_alloc_fns),
    [CLI_OPT_LEAK_CHECK_AT_MARKS] = OPT("--leak-check-at-marks", FLAG, leak_check_at_marks),
    [CLI_OPT_DOMAIN] = {{"--domain", NULL},
                        CHOICE,
                        offsetof(cli_opts, domain),
                        0,
                        0,
                        domains,
                        "domain",
                        "heap, mmap or all"},
};

/* The value of `arg` if it is option `name` ("" for a flag), taking a value as the next argument
 * (then *i moves past it) or after '='; NULL if it is not that option. A missing value is a
 * usage error: *bad is set. */
static const char *
match(const cli_command *c, const char *name, bool with_value, bool maybe, int argc, char **argv,
      int *i, bool *bad)
{
    const char *arg = argv[*i];
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0)
        return NULL;
    if (arg[n] == '=' && with_value) {
        (*i)++;
        return arg + n + 1;
    }
    if (arg[n] != '\0')
        return NULL;
    (*i)++;
    if (!with_value || maybe)
        return "";
    if (*i >= argc) {
        cli_usage(c->name, "option '%s' needs a value", name);
        *bad = true;
        return "";
    }
    return argv[(*i)++];
}

/* Stores `value` of option `d` in *o: 0 or CLI_EXIT_USAGE after saying why. */
static int
store(const cli_command *c, const option_def *d, const char *value, cli_opts *o)
{
    void *field = (char *)o + d->field;
    switch (d->kind) {
    case FLAG:
        *(bool *)field = true;
        return 0;
    case TEXT:
    case MAYBE:
        *(const char **)field = value;
        return 0;
    case NUMBER: {
        char *end;
        errno = 0;
        unsigned long v = strtoul(value, &end, 10);
        if (value[0] == '\0' || value[0] == '-' || *end != '\0' || errno != 0 || v < d->lo ||
            v > d->hi)
            return cli_usage(c->name, "'%s' is not a number in [%lu, %lu]", value, d->lo, d->hi);
        *(unsigned long *)field = v;
        return 0;
    }
    case CHOICE:
        for (const choice *k = d->choices; k->name != NULL; k++) {
            if (strcmp(value, k->name) == 0) {
                *(int *)field = k->value;
                o->group_given |= d->field == offsetof(cli_opts, group);
                return 0;
            }
        }
        return cli_usage(c->name, "unknown %s '%s' (%s)", d->what, value, d->one_of);
    case LIST:
        if (value[0] == '\0')
            return cli_usage(c->name, "--alloc-fn needs a function name or a glob");
        if (o->nalloc_fns == CLI_MAX_ALLOC_FNS)
            return cli_usage(c->name, "--alloc-fn given more than %d times", CLI_MAX_ALLOC_FNS);
        o->alloc_fns[o->nalloc_fns++] = value;
        return 0;
    }
    return 0;
}

/* Matches argv[*i] against the options `c` takes: 1 matched (and stored), 0 not an option of
 * `c`, or CLI_EXIT_USAGE after printing why. */
static int
parse_option(const cli_command *c, int argc, char **argv, int *i, cli_opts *o)
{
    for (size_t k = 0; k < sizeof(defs) / sizeof(defs[0]); k++) {
        if (!(c->takes & (1u << k)))
            continue;
        const option_def *d = &defs[k];
        for (int n = 0; n < 2 && d->names[n] != NULL; n++) {
            bool bad = false;
            const char *value =
                match(c, d->names[n], d->kind != FLAG, d->kind == MAYBE, argc, argv, i, &bad);
            if (bad)
                return CLI_EXIT_USAGE;
            if (value != NULL)
                return store(c, d, value, o) == 0 ? 1 : CLI_EXIT_USAGE;
        }
    }
    return 0;
}

int
cli_parse(const cli_command *c, int argc, char **argv, cli_opts *o)
{
    *o = (cli_opts){.at = c->at, .group = (int)c->group, .limit = 10};
    int i = 1;
    while (i < argc) {
        const char *arg = argv[i];
        if (c->nfiles == 0 && strcmp(arg, "--") == 0) {
            i++;
            break;
        }
        if (c->nfiles == 0 && arg[0] != '-')
            break; /* the program */
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            fputs(c->help, stdout);
            o->help = true;
            return 0;
        }
        int rc = parse_option(c, argc, argv, &i, o);
        if (rc == CLI_EXIT_USAGE)
            return rc;
        if (rc == 1)
            continue;
        if (arg[0] == '-' && (arg[1] != '\0' || c->nfiles == 0))
            return cli_usage(c->name, "unknown option '%s'", arg);
        if (o->nfiles == (size_t)c->nfiles)
            return cli_usage(c->name,
                             c->nfiles == 1 ? "one capture at a time ('%s' is one too many)"
                                            : "at most two captures ('%s' is one too many)",
                             arg);
        o->files[o->nfiles++] = argv[i++];
    }
    cli_set_alloc_fns(o->alloc_fns, o->nalloc_fns, o->no_default_alloc_fns);
    cli_set_domain(o->domain);
    if (c->nfiles == 0) {
        o->program = argv + i;
        return i < argc ? 0 : cli_usage(c->name, "no program to run");
    }
    return o->nfiles > 0 ? 0 : cli_usage(c->name, "no capture file given");
}

int
cli_check_cumulative(const cli_command *c, const cli_opts *o)
{
    if (o->cumulative && o->group == ZW_GROUP_TRACEBACK && o->group_given)
        return cli_usage(c->name, "--cumulative cannot be used with --group traceback");
    if (o->cumulative && o->group == ZW_GROUP_TRACEBACK)
        return cli_usage(c->name,
                         "--cumulative needs --group lineno or filename ('zw %s' groups by "
                         "traceback unless told)",
                         c->name);
    return 0;
}
