/* examples/common/experiment.h - what the talk's "destroy" experiments share: each variant runs
 * in a fresh runtime with a fixed hash seed (so its figures are the same at every run), measures
 * its scenario with zw_measure (the talk's measure_memory), prints the talk's line and the lines
 * that grew most, and the program ends with a before/after/delta table.
 *
 *   static const experiment_variant variants[] = {{"before", run_before}, {"after", run_after}};
 *   return experiment_main(argc, argv, "title", variants, 2);
 *
 * A program runs every variant with no argument, or the one named by its argument. A variant's
 * run function makes the program's constants, then calls experiment_begin, runs the scenario,
 * calls experiment_end (which keeps the figures) and releases what it made. Header-only: each
 * example is one main.c plus this file. See docs/talk.md. */
#ifndef ZEROWASTE_EXAMPLES_EXPERIMENT_H
#define ZEROWASTE_EXAMPLES_EXPERIMENT_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <zerowaste/measure.h>
#include <zerowaste/obj.h>

#define EXPERIMENT_MAX_EXTRA 4 /* figures a variant may add to the table after its measure */
#define EXPERIMENT_TOP       4 /* lines of the difference printed under each measure line */

/* The figures of one variant. */
typedef struct experiment_result {
    int64_t blocks;  /* new blocks over the measured scenario */
    int64_t bytes;   /* new allocated bytes */
    int64_t objects; /* new tracked objects */
    double seconds;  /* printed, never compared: time is not deterministic */
    /* figures of the variant's own (a refcount, what is left after a del), by name */
    const char *extra_name[EXPERIMENT_MAX_EXTRA];
    int64_t extra[EXPERIMENT_MAX_EXTRA];
    size_t nextra;
} experiment_result;

typedef struct experiment_variant {
    const char *name; /* "before", "after", ...: the program's argument that selects it */
    /* Runs the variant in `rt` (fresh, its constants still to make); fills `res` through
     * experiment_begin/experiment_end/experiment_extra. 0, or -1 with the error in rt. */
    int (*run)(zw_rt *rt, experiment_result *res);
} experiment_variant;

/* The measure of the variant being run: one at a time. */
static zw_measure experiment_m;
static const char *experiment_current;

/* Starts the measured scenario: everything made before it is the program's constants. */
static inline int
experiment_begin(zw_rt *rt)
{
    experiment_m = (zw_measure){0};
    if (zw_measure_begin(rt, &experiment_m) != 0) {
        fprintf(stderr, "%s: measure: %s\n", experiment_current, experiment_m.err.msg);
        return -1;
    }
    return 0;
}

/* Ends it: prints "<variant>: New blocks: ..." and the top lines, keeps the figures. */
static inline int
experiment_end(experiment_result *res)
{
    int rc = zw_measure_end(&experiment_m);
    printf("%-6s: ", experiment_current);
    zw_measure_print(&experiment_m, stdout, EXPERIMENT_TOP);
    if (rc == 0) {
        res->blocks = experiment_m.new_blocks;
        res->bytes = experiment_m.new_bytes;
        res->objects = experiment_m.new_objects;
        res->seconds = experiment_m.seconds;
    }
    zw_measure_release(&experiment_m);
    return rc;
}

/* Adds a row of the variant's own to the table. */
static inline void
experiment_extra(experiment_result *res, const char *name, int64_t value)
{
    if (res->nextra < EXPERIMENT_MAX_EXTRA) {
        res->extra_name[res->nextra] = name;
        res->extra[res->nextra++] = value;
    }
}

static inline void
experiment_row(const char *name, const int64_t *v, size_t n)
{
    printf("%-22s %10" PRId64, name, v[0]);
    for (size_t i = 1; i < n; i++)
        printf(" %10" PRId64 " %+10" PRId64, v[i], v[i] - v[0]);
    printf("\n");
}

/* The final table: one column per variant, each after the first with its delta to the first. */
static inline void
experiment_table(const experiment_variant *vs, const experiment_result *rs, size_t n)
{
    int64_t v[8];
    printf("\n%-22s %10s", "", vs[0].name);
    for (size_t i = 1; i < n; i++)
        printf(" %10s %10s", vs[i].name, "delta");
    printf("\n");
    for (size_t i = 0; i < n; i++)
        v[i] = rs[i].blocks;
    experiment_row("blocks", v, n);
    for (size_t i = 0; i < n; i++)
        v[i] = rs[i].bytes;
    experiment_row("bytes", v, n);
    for (size_t i = 0; i < n; i++)
        v[i] = rs[i].objects;
    experiment_row("objects", v, n);
    for (size_t k = 0; k < rs[0].nextra; k++) {
        for (size_t i = 0; i < n; i++)
            v[i] = rs[i].extra[k];
        experiment_row(rs[0].extra_name[k], v, n);
    }
}

/* Runs one variant in its own runtime: hash seed 0 and no environment, so the figures do not
 * change from run to run; the collector is left on, as in the talk's Python. */
static inline int
experiment_run(const experiment_variant *v, experiment_result *res)
{
    zw_rt_config cfg = {.flags = ZW_RT_IGNORE_ENV, .hash_seed = 0};
    zw_rt *rt = zw_rt_new(&cfg);
    if (rt == NULL) {
        perror("zw_rt_new");
        return -1;
    }
    experiment_current = v->name;
    *res = (experiment_result){0};
    int rc = v->run(rt, res);
    if (rc != 0)
        fprintf(stderr, "%s: %s\n", v->name, zw_errmsg(rt));
    zw_rt_free(rt);
    return rc;
}

/* main(): no argument runs every variant and prints the table; a variant's name runs it. */
static inline int
experiment_main(int argc, char **argv, const char *title, const experiment_variant *vs, size_t n)
{
    experiment_result rs[8];
    if (argc > 2 || n > 8) {
        fprintf(stderr, "usage: %s [variant]\n", argv[0]);
        return 2;
    }
    if (argc == 2) {
        for (size_t i = 0; i < n; i++)
            if (strcmp(argv[1], vs[i].name) == 0)
                return experiment_run(&vs[i], &rs[i]) == 0 ? 0 : 1;
        fprintf(stderr, "usage: %s [", argv[0]);
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, "%s%s", i ? "|" : "", vs[i].name);
        fprintf(stderr, "]   (none: all, then the table)\n");
        return 2;
    }
    printf("== %s ==\n", title);
    for (size_t i = 0; i < n; i++)
        if (experiment_run(&vs[i], &rs[i]) != 0)
            return 1;
    experiment_table(vs, rs, n);
    return 0;
}

#endif /* ZEROWASTE_EXAMPLES_EXPERIMENT_H */
