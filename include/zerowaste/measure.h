/* zerowaste/measure.h - the talk's measure_memory() as a C scope over a runtime: new blocks and
 * new bytes (two trace snapshots compared by line and summed, as the talk does), new objects
 * (tracked objects after minus before), wall time, and the lines that grew most.
 *
 *   ZW_MEASURE(rt, stdout) {
 *       res = allocator(rt);
 *   }
 *   // New blocks: 1758, new allocated bytes: 88512, objects: 1003, time: 0.000883
 *
 * or, to keep the figures: zw_measure_begin(rt, &m); ...; zw_measure_end(&m); read m.new_blocks
 * ...; zw_measure_release(&m). Tracing started by a scope is stopped by it; a scope inside a
 * region already traced leaves that tracing alone. See docs/talk.md. */
#ifndef ZEROWASTE_MEASURE_H
#define ZEROWASTE_MEASURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <zerowaste/common.h>
#include <zerowaste/obj.h>
#include <zerowaste/trace.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One line of the difference: the first frame outside zerowaste's own code (so an object
 * made by zw_list_new shows the caller's line, not list.c's), with what it gained. */
typedef struct zw_measure_line {
    const char *filename; /* owned by the measure */
    unsigned lineno;
    int64_t size_diff;  /* bytes */
    int64_t count_diff; /* blocks */
} zw_measure_line;

typedef struct zw_measure {
    /* ---- results, valid after zw_measure_end() returned 0 ---- */
    int64_t new_blocks;   /* sum of count_diff over compare_to(old, 'lineno') */
    int64_t new_bytes;    /* sum of size_diff */
    int64_t new_objects;  /* tracked objects (gc.get_objects()) after - before */
    double seconds;       /* wall time between begin and end */
    zw_measure_line *lines; /* the lines that changed, largest |size_diff| first */
    size_t nlines;
    /* ---- set before zw_measure_begin (zeroed: defaults) ---- */
    int nframe;           /* frames per traceback; 0: 32, enough to get past the runtime */
    /* ---- state ---- */
    zw_rt *rt;
    zw_snapshot *before;
    size_t objects_before;
    struct timespec t0;
    bool started_tracing; /* this scope started tracing: it stops it */
    bool failed;          /* begin or end failed: see err */
    zw_error err;
} zw_measure;

/* Starts a measure over `rt`: starts tracing if needed, takes the first snapshot, counts the
 * tracked objects, notes the time. 0, or -1 with m->err set (then zw_measure_end only reports). */
ZW_API int zw_measure_begin(zw_rt *rt, zw_measure *m);
/* Ends it: second snapshot, difference, counts, time; stops tracing if begin started it.
 * 0 or -1 (m->err). */
ZW_API int zw_measure_end(zw_measure *m);
/* The talk's line: "New blocks: N, new allocated bytes: N, objects: N, time: S", then up to
 * `top` lines of the difference ("  file:line: +N B, +N blocks"). */
ZW_API void zw_measure_print(const zw_measure *m, FILE *out, size_t top);
/* The same as one JSON object: {"new_blocks": ..., "new_bytes": ..., "new_objects": ...,
 * "seconds": ..., "top": [{"file": ..., "line": ..., "size_diff": ..., "count_diff": ...}]}. */
ZW_API void zw_measure_print_json(const zw_measure *m, FILE *out, size_t top);
/* Frees what the measure holds (snapshot, lines). */
ZW_API void zw_measure_release(zw_measure *m);

/* For ZW_MEASURE: begin into a value, and end + print + release. */
ZW_API zw_measure zw_measure_start_(zw_rt *rt);
ZW_API zw_measure *zw_measure_finish_(zw_measure *m, FILE *out);

/* ZW_MEASURE(rt, out) { body }: measures the body and prints the talk's line to `out`. */
#define ZW_MEASURE(rt, out)                                                                        \
    for (zw_measure zw_measure_ = zw_measure_start_(rt), *zw_measure_p_ = &zw_measure_;            \
         zw_measure_p_ != NULL; zw_measure_p_ = zw_measure_finish_(zw_measure_p_, (out)))

#ifdef __cplusplus
}
#endif

#endif /* ZEROWASTE_MEASURE_H */
