/* zerowaste/trace.h - tracemalloc for C: record every block the process allocates through mem
 * (the RAW, MEM and OBJ domains and every zw_heap) with the native traceback of its allocation,
 * then take snapshots, group them by file, line or traceback, compare two of them, filter them,
 * and dump them to files that read the same on another machine.
 *
 * The names and the semantics are tracemalloc's (Python's Lib/tracemalloc.py), with native
 * frames resolved to function, file and line (inlined frames included) by elfutils' libdw.
 * Tracebacks are sequences of frames, index 0 the OLDEST frame, as in Python 3.7+.
 *
 * Ownership: a zw_snapshot and a zw_stat_list are owned by the caller (free them with their
 * _free function); frames, tracebacks and strings reached through them are borrowed: valid
 * until the object they came from is freed. A zw_stat_list borrows from the snapshots it was
 * computed from: free it before them. See docs/trace.md; the file format is docs/format.md. */
#ifndef ZEROWASTE_TRACE_H
#define ZEROWASTE_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <zerowaste/common.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ZW_TRACE_DEFAULT_DOMAIN 0u   /* where the mem domains and heaps record, as tracemalloc */
#define ZW_TRACE_MAX_NFRAME     1024 /* the largest traceback limit zw_trace_start() accepts */

/* ---- tracing ---- */

/* Starts tracing with tracebacks of at most `nframe` native frames (1..ZW_TRACE_MAX_NFRAME):
 * installs wrappers on mem's RAW, MEM and OBJ domains and the heap observer. If already tracing,
 * does nothing and keeps the limit (as tracemalloc). -1 if `nframe` is out of range or the
 * tracer's memory cannot be mapped. Install while no other thread allocates through mem. */
ZW_API int zw_trace_start(int nframe, zw_error *err);
/* Removes the wrappers and erases every trace and traceback (as tracemalloc.stop()). */
ZW_API void zw_trace_stop(void);
ZW_API bool zw_trace_is_tracing(void);
/* The limit of the current or last tracing session; 1 before the first (get_traceback_limit()). */
ZW_API int zw_trace_get_traceback_limit(void);
/* Erases every trace and traceback; current and peak become 0 (clear_traces()). */
ZW_API void zw_trace_clear(void);
/* Bytes of the traced blocks now and at most since start/clear/reset_peak; 0, 0 when not
 * tracing. Either pointer may be NULL. */
ZW_API void zw_trace_get_traced_memory(size_t *current, size_t *peak);
/* peak := current. */
ZW_API void zw_trace_reset_peak(void);
/* Blocks allocated since the last zw_trace_start() that the tracer could not record because it
 * ran out of memory for its own tables and that are therefore missing from the traced memory
 * and from snapshots: blocks made by a heap (the observer learns of them after the fact) and
 * blocks resized by a realloc. A new block from a domain's malloc, calloc or realloc(NULL) is
 * never counted here: that call fails instead (NULL, errno ENOMEM), as with tracemalloc. Kept
 * after zw_trace_stop() and zw_trace_clear(). */
ZW_API size_t zw_trace_get_untraced(void);
/* Bytes the tracer itself maps for its tables, tracebacks and caches (get_tracemalloc_memory()). */
ZW_API size_t zw_trace_get_memory(void);

/* Tracks a block of a domain of the caller's own (PyTraceMalloc_Track): 0 on success, -1 if the
 * trace could not be stored, -2 when not tracing. Tracking a tracked (domain, ptr) again
 * replaces its size and traceback. Callable from any thread. */
ZW_API int zw_trace_track(unsigned domain, uintptr_t ptr, size_t size);
/* 0 (also when not tracked), -2 when not tracing. */
ZW_API int zw_trace_untrack(unsigned domain, uintptr_t ptr);

/* ---- frames and tracebacks ---- */

/* One frame of a traceback. A native return address gives one frame per function it lies in:
 * the innermost inlined function first, each marked `inlined`, then the function that holds the
 * code. Without debug information: filename is the module's path, lineno 0, and the frame prints
 * as `module+0xoffset`. Frames built from raw data (zw_snapshot_add_trace) have no module. */
typedef struct zw_frame {
    const char *filename; /* source file; the module's path without line info; never NULL */
    unsigned lineno;      /* 0 when unknown */
    const char *function; /* the function's name, NULL when unknown */
    const char *module;   /* path of the ELF object holding the code, NULL when not native */
    uint64_t offset;      /* address - the module's load bias (a file-relative address) */
    bool inlined;         /* inlined into the next older frame of the traceback */
} zw_frame;

typedef struct zw_traceback zw_traceback;

/* Frames in the traceback; index 0 is the oldest, len - 1 the most recent. */
ZW_API size_t zw_traceback_len(const zw_traceback *tb);
ZW_API const zw_frame *zw_traceback_frame(const zw_traceback *tb, size_t i);
/* Native frames on the stack when the block was allocated, before the limit (capped at 65535). */
ZW_API size_t zw_traceback_total_nframe(const zw_traceback *tb);
/* tracemalloc's tuple comparison of two tracebacks' (filename, lineno) frames, oldest first:
 * <0, 0, >0. */
ZW_API int zw_traceback_compare(const zw_traceback *a, const zw_traceback *b);

/* Traceback.format(limit, most_recent_first): one `  File "f", line n` line per frame, followed
 * by `    source line` when the file can be read; `limit` > 0 keeps the `limit` most recent
 * frames, < 0 drops the abs(limit) most recent, ZW_NO_LIMIT keeps all, 0 none. Returns the
 * number of lines written. */
#define ZW_NO_LIMIT INT32_MIN
ZW_API size_t zw_traceback_format(const zw_traceback *tb, int32_t limit, bool most_recent_first,
                                  FILE *out);
/* str(frame): "file:line", or "module+0xoffset" for a native frame without line info. Writes at
 * most `len` bytes including the NUL; returns the length the whole text needs, as snprintf. */
ZW_API int zw_frame_str(const zw_frame *f, char *buf, size_t len);

/* The block's allocation traceback (get_object_traceback()), symbolised now; NULL if `ptr` is
 * not the start of a traced block of the default domain or not tracing. Free it with
 * zw_traceback_free(). */
ZW_API zw_traceback *zw_trace_get_traceback(const void *ptr);
/* Frees a traceback from zw_trace_get_traceback() (only those). NULL does nothing. */
ZW_API void zw_traceback_free(zw_traceback *tb);

/* ---- snapshots ---- */

typedef struct zw_snapshot zw_snapshot;

/* The traced blocks now (take_snapshot()), symbolised; NULL with an error when not tracing
 * ("the tracer must be tracing memory allocations to take a snapshot") or out of memory. */
ZW_API zw_snapshot *zw_trace_take_snapshot(zw_error *err);
/* An empty snapshot to fill with zw_snapshot_add_trace() (Snapshot._from_raw in the tests). */
ZW_API zw_snapshot *zw_snapshot_new(unsigned traceback_limit);
/* Adds a trace whose frames are given MOST RECENT FIRST (as tracemalloc's raw traces): each is a
 * (filenames[i], linenos[i]) pair. -1 if out of memory or nframe is 0. */
ZW_API int zw_snapshot_add_trace(zw_snapshot *snap, unsigned domain, size_t size,
                                 const char *const *filenames, const unsigned *linenos,
                                 size_t nframe, size_t total_nframe, zw_error *err);
ZW_API void zw_snapshot_free(zw_snapshot *snap);

/* A trace: one live block. */
typedef struct zw_trace_info {
    unsigned domain;
    size_t size;                   /* bytes requested */
    const zw_traceback *traceback; /* borrowed from the snapshot */
} zw_trace_info;

ZW_API size_t zw_snapshot_len(const zw_snapshot *snap);
/* Trace `i` (0 <= i < len), in the snapshot's order. */
ZW_API zw_trace_info zw_snapshot_trace(const zw_snapshot *snap, size_t i);
ZW_API unsigned zw_snapshot_traceback_limit(const zw_snapshot *snap);
/* str(trace): "file:line: size" as tracemalloc, e.g. "b.c:4: 10 B". */
ZW_API int zw_trace_info_str(const zw_trace_info *t, char *buf, size_t len);

/* ---- statistics ---- */

typedef enum zw_group {
    ZW_GROUP_FILENAME = 1u << 0,  /* key_type 'filename': the frame (file, 0) */
    ZW_GROUP_LINENO = 1u << 1,    /* key_type 'lineno': the most recent frame */
    ZW_GROUP_TRACEBACK = 1u << 2, /* key_type 'traceback': the whole traceback */
} zw_group;

/* Statistic and StatisticDiff: the diffs are 0 in a list from zw_snapshot_statistics(). */
typedef struct zw_statistic {
    const zw_traceback *traceback; /* the key: one frame for FILENAME and LINENO */
    size_t size;
    size_t count;
    int64_t size_diff;
    int64_t count_diff;
} zw_statistic;

typedef struct zw_stat_list zw_stat_list;

/* Snapshot.statistics(key_type, cumulative), sorted as tracemalloc: descending by (size, count,
 * traceback). Cumulative counts each frame of each trace (a frame twice in one traceback counts
 * twice); it cannot be used with ZW_GROUP_TRACEBACK (-> NULL and an error). */
ZW_API zw_stat_list *zw_snapshot_statistics(const zw_snapshot *snap, zw_group group,
                                            bool cumulative, zw_error *err);
/* Snapshot.compare_to(old, key_type, cumulative): sorted descending by (abs(size_diff), size,
 * abs(count_diff), count, traceback). */
ZW_API zw_stat_list *zw_snapshot_compare_to(const zw_snapshot *snap, const zw_snapshot *old,
                                            zw_group group, bool cumulative, zw_error *err);
ZW_API size_t zw_stat_list_len(const zw_stat_list *l);
ZW_API const zw_statistic *zw_stat_list_get(const zw_stat_list *l, size_t i);
ZW_API void zw_stat_list_free(zw_stat_list *l);
/* str(Statistic): "a.c:5: size=5002 B, count=2, average=2501 B"; with `diff`, str(StatisticDiff):
 * "a.c:5: size=5002 B (+5000 B), count=2 (+1), average=2501 B". As snprintf. */
ZW_API int zw_statistic_str(const zw_statistic *s, bool diff, char *buf, size_t len);
/* tracemalloc's _format_size: "5002 B", "12.3 KiB", "105 KiB", with a sign if `sign`. */
ZW_API int zw_format_size(int64_t size, bool sign, char *buf, size_t len);

/* ---- filters ---- */

enum zw_filter_kind {
    ZW_FILTER_FRAME,  /* tracemalloc.Filter */
    ZW_FILTER_DOMAIN, /* tracemalloc.DomainFilter */
};

#define ZW_ANY_LINENO (-1L)
#define ZW_ANY_DOMAIN (-1LL)

typedef struct zw_filter {
    enum zw_filter_kind kind;
    bool inclusive;
    const char *filename_pattern; /* fnmatch pattern ('*', '?', '[...]'; '/' is ordinary) */
    long lineno;                  /* ZW_ANY_LINENO, or the line to match (0 matches only 0) */
    bool all_frames;              /* test every frame, not only the most recent */
    long long domain;             /* ZW_ANY_DOMAIN, or the domain to match */
} zw_filter;

/* Filter(inclusive, pattern) with lineno=None, all_frames=False, domain=None. */
#define ZW_FILTER(incl, pattern)                                                                   \
    ((zw_filter){ZW_FILTER_FRAME, (incl), (pattern), ZW_ANY_LINENO, false, ZW_ANY_DOMAIN})
/* DomainFilter(inclusive, domain). */
#define ZW_DOMAIN_FILTER(incl, dom)                                                                \
    ((zw_filter){ZW_FILTER_DOMAIN, (incl), NULL, ZW_ANY_LINENO, false, (dom)})

/* Snapshot.filter_traces(filters): a new snapshot holding the traces kept (the original is left
 * as it is). A trace is kept if no inclusive filter exists or one matches, and no exclusive
 * filter rejects it. n == 0 copies. NULL with an error for a malformed filter. */
ZW_API zw_snapshot *zw_snapshot_filter_traces(const zw_snapshot *snap, const zw_filter *filters,
                                              size_t n, zw_error *err);

/* A new snapshot of the traces i of `snap` whose tags[i] (one per trace) is in `mask` (bit
 * 1u << tag; tags of 32 and more are never picked), in order. NULL if out of memory. */
ZW_API zw_snapshot *zw_snapshot_pick(const zw_snapshot *snap, const uint8_t *tags, uint32_t mask,
                                     zw_error *err);

/* One snapshot holding the traces of all `n` snapshots, in order (the processes of a capture set
 * seen as one). Equal tracebacks merge; the traceback limit is the largest. NULL if out of
 * memory. */
ZW_API zw_snapshot *zw_snapshot_merge(const zw_snapshot *const *snaps, size_t n, zw_error *err);

/* A copy of `snap` in which each traceback loses its most recent frames for as long as `drop`
 * returns true for them (the oldest frame always stays; total_nframe is kept). With `drop` naming
 * allocation wrappers (operator new, xmalloc...), the copy's statistics grouped by line or file
 * attribute each block to the wrapper's caller. NULL if out of memory. */
ZW_API zw_snapshot *zw_snapshot_trim_recent(const zw_snapshot *snap,
                                            bool (*drop)(const zw_frame *f, void *arg), void *arg,
                                            zw_error *err);

/* ---- files (docs/format.md) ---- */

/* Writes the snapshot with its symbolised frames to `path` (zstd-compressed sections, each with
 * a CRC32). 0 or -1. */
ZW_API int zw_snapshot_dump(const zw_snapshot *snap, const char *path, zw_error *err);
/* Reads a snapshot file. NULL with an error naming what is wrong and where (the offset and
 * section) for a damaged, truncated, foreign or newer file; never a partial snapshot. */
ZW_API zw_snapshot *zw_snapshot_load(const char *path, zw_error *err);
/* The same from `len` bytes in memory. */
ZW_API zw_snapshot *zw_snapshot_load_memory(const void *data, size_t len, zw_error *err);

#ifdef __cplusplus
}
#endif

#endif /* ZEROWASTE_TRACE_H */
