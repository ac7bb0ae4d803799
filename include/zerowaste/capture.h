/* zerowaste/capture.h - reading the captures that libzwpreload.so writes (`zw run`): one file per
 * process, holding the process's memory over time (heap bytes and blocks, RSS), its totals
 * (allocations, frees, temporary allocations), the live set at the peak, at each mark and at
 * exit, and per-traceback allocation counts. The live sets are snapshots (zerowaste/trace.h), so
 * statistics, compare_to and filters work on them as on any snapshot. The layout is
 * docs/format.md#captures; the `zw` command (docs/zw.md) is built on this reader.
 *
 * Ownership: zw_capture_load() returns a new capture, freed with zw_capture_free(); everything
 * reached through it (snapshots, strings, arrays) is borrowed from it. */
#ifndef ZEROWASTE_CAPTURE_H
#define ZEROWASTE_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <zerowaste/common.h>
#include <zerowaste/trace.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One point of the time series. The running totals are those of zw_capture_totals at that time
 * (all 0 in captures written before they were streamed: see zw_capture.has_counters). */
/* The domain of the traces of the mappings a traced program made itself (mmap, mremap, brk,
 * sbrk); the heap's (the malloc family's) is ZW_TRACE_DEFAULT_DOMAIN. */
#define ZW_CAPTURE_MMAP_DOMAIN 1u

typedef struct zw_capture_sample {
    uint64_t time_ns;         /* since the process started tracing */
    uint64_t heap_bytes;      /* bytes of live blocks (requested sizes) */
    uint64_t heap_blocks;     /* live blocks */
    uint64_t rss_bytes;       /* resident set size (/proc/self/statm) */
    uint64_t allocations;     /* allocations so far */
    uint64_t frees;           /* frees so far */
    uint64_t temporary;       /* temporary allocations so far */
    uint64_t bytes_allocated; /* bytes allocated so far */
    uint64_t mmap_bytes;      /* bytes of the mmap domain's mappings (0 before format 1.5) */
    uint64_t mmap_peak;       /* the most mmap_bytes has been so far */
} zw_capture_sample;

/* A change of one site's live blocks between two samples. */
typedef struct zw_capture_delta {
    uint32_t site;  /* index of the site in zw_capture.sites */
    int64_t bytes;  /* live bytes allocated at that site: now minus at the previous step */
    int64_t blocks; /* live blocks, likewise */
} zw_capture_delta;

/* The sites whose live blocks changed since the previous step: deltas[first .. first + n). The
 * sum of the deltas of every step up to one time is the live set by site at that time. */
typedef struct zw_capture_step {
    uint64_t time_ns;
    size_t first;
    size_t n;
    bool peak; /* taken when the heap passed its last saved peak by 1%: the last such step is
                * the peak set */
    bool mmap_peak; /* taken when the mmap domain passed its last saved peak by 1% */
} zw_capture_step;

/* A live set: the traced blocks at one moment, as a snapshot. */
typedef struct zw_capture_set {
    const char *label;   /* the mark's label; "peak" or "exit" for those sets */
    uint64_t time_ns;    /* when it was taken */
    uint64_t heap_bytes; /* live bytes then */
    zw_snapshot *snap;   /* NULL if the set was not kept */
    struct zw_capture_leaks *leaks; /* a mark's reachability scan (zw run --leak-check-at-marks),
                                     * its kinds in snap's order; NULL if none */
} zw_capture_set;

/* A live set's traces counted by domain, without its tracebacks: what the summary of a run
 * needs of the exit set (zw_capture.exit_size). */
typedef struct zw_capture_set_size {
    bool kept;            /* the set's traces are in the capture (false: no such set, or its
                           * traces were not kept or are lost) */
    uint64_t heap_blocks; /* traces of the heap (ZW_TRACE_DEFAULT_DOMAIN) */
    uint64_t heap_bytes;  /* their sizes summed */
    uint64_t mmap_blocks; /* traces of the mmap domain (ZW_CAPTURE_MMAP_DOMAIN) */
    uint64_t mmap_bytes;
} zw_capture_set_size;

/* How the process ended, as far as the capture knows. */
enum zw_capture_end {
    ZW_CAPTURE_END_UNKNOWN = 0,         /* no totals section: the capture was cut short */
    ZW_CAPTURE_END_EXIT = 1,            /* return from main, exit() */
    ZW_CAPTURE_END_SIGNAL = 2,          /* a fatal signal: `code` is its number */
    ZW_CAPTURE_END_UNDERSCORE_EXIT = 3, /* _exit() or _Exit(): `code` is the status */
    ZW_CAPTURE_END_EXEC = 4, /* an exec replaced the image (the new one writes its own capture) */
};

/* Whether the exit set was scanned for reachability (zw_capture.leaks.status). */
enum zw_leaks_status {
    ZW_LEAKS_UNKNOWN = 0, /* no LEAKS section: a capture from before the scan, or cut short */
    ZW_LEAKS_SCANNED = 1, /* every block of the exit set has its kind */
    ZW_LEAKS_SKIPPED = 2, /* the process ended on a signal: not scanned (the thread that died
                           * may hold a lock the scan needs, and its registers are lost) */
    ZW_LEAKS_FAILED = 3,  /* the scan could not map its memory or read the process's roots */
    ZW_LEAKS_OFF = 4,     /* turned off (ZW_LEAK_CHECK=0) */
};

/* memcheck's kinds of leak, most serious first (valgrind's order). */
enum zw_leak_kind {
    ZW_LEAK_DEFINITE = 0,  /* no pointer to the block anywhere */
    ZW_LEAK_INDIRECT = 1,  /* pointed to only from lost blocks */
    ZW_LEAK_POSSIBLE = 2,  /* only pointers into its interior (or only from possibly lost blocks) */
    ZW_LEAK_REACHABLE = 3, /* a pointer to its start on a chain of such pointers from a root */
};
#define ZW_LEAK_KINDS 4

/* The reachability scan of the exit set (docs/zw.md#leak-kinds). */
typedef struct zw_capture_leaks {
    uint32_t status;                /* enum zw_leaks_status */
    uint64_t blocks[ZW_LEAK_KINDS]; /* the exit set's blocks of each kind (when SCANNED) */
    uint64_t bytes[ZW_LEAK_KINDS];  /* and their bytes */
    uint8_t *kinds;      /* the kind of each trace of exit.snap, in its order; NULL unless SCANNED */
    size_t nkinds;       /* exit.snap's traces */
    uint64_t scan_ns;     /* how long the scan took in the traced process (wall time) */
    uint64_t scan_cpu_ns; /* the CPU time it took there */
    uint64_t scan_memory; /* bytes it mapped */
    uint64_t root_bytes; /* bytes of roots read */
    uint32_t modules;    /* writable segments of loaded modules scanned */
    uint32_t threads;    /* threads whose stack, TLS and registers were scanned */
    uint32_t threads_missed; /* threads that did not stop: their registers were not scanned */
} zw_capture_leaks;

typedef struct zw_capture_totals {
    uint64_t allocations;     /* malloc-family calls that returned a block (realloc counts) */
    uint64_t frees;           /* blocks freed (a realloc that moves counts one) */
    uint64_t temporary;       /* allocations freed with no other allocation in between */
    uint64_t bytes_allocated; /* bytes requested in all */
    uint64_t peak_bytes;      /* the most live bytes seen */
    uint64_t peak_time_ns;    /* when the peak set was taken */
    uint64_t duration_ns;     /* from the start of tracing to the capture's end */
    uint32_t end;             /* enum zw_capture_end */
    int32_t code;             /* exit status or signal number */
} zw_capture_totals;

/* The counters the process kept in the capture file itself (a LIVE section) up to its very end:
 * exact even when it was killed (SIGKILL) or the file could not take the rest of the capture. */
typedef struct zw_capture_live {
    uint64_t allocations;
    uint64_t frees;
    uint64_t temporary;
    uint64_t bytes_allocated;
    uint64_t bytes_freed;  /* bytes of the freed blocks */
    uint64_t peak_bytes;   /* the last peak saved (within 1% of the peak), and when */
    uint64_t peak_time_ns;
    uint32_t end;         /* enum zw_capture_end: ZW_CAPTURE_END_UNKNOWN if it never ended */
    int32_t code;
    uint64_t mmap_bytes; /* the mmap domain's bytes at the end, and at its peak (format 1.5) */
    uint64_t mmap_peak;
} zw_capture_live;

/* A loaded capture. Read-only for the caller. */
typedef struct zw_capture {
    uint32_t pid;
    uint32_t ppid;              /* the parent's pid (a process tree is linked by it) */
    uint64_t start_realtime_ns; /* CLOCK_REALTIME when tracing started */
    uint32_t interval_ms;       /* the sampling interval */
    uint32_t nframe;            /* the traceback limit */
    const char **argv;          /* the command line; argc strings */
    size_t argc;
    bool complete; /* the END section was reached (false: the process died first) */
    bool has_totals;
    /* totals: the TOTALS section's; without it (the capture was cut short), the counts and the
     * end are the LIVE section's if there is one, the peak and duration the time series' */
    zw_capture_totals totals;
    bool has_live;         /* `live` was read (captures of format 1.3 on) */
    zw_capture_live live;
    uint32_t write_errno;  /* the errno of the write that cut the capture short, 0 if none */
    uint64_t untraced;     /* allocations not traced: the tracer ran out of memory */
    zw_capture_sample *samples; /* in time order */
    size_t nsamples;
    zw_capture_set peak;   /* snap NULL when absent; rebuilt from the last peak step when the
                            * capture keeps it as a step (see zw_capture_step) */
    zw_capture_set exit;   /* snap NULL when absent */
    zw_capture_set *marks; /* in time order */
    size_t nmarks;
    zw_snapshot *sites;       /* one trace per allocation traceback: size = bytes allocated there */
    uint64_t *site_counts;    /* allocations at each of `sites`' traces, in its order */
    uint64_t *site_temporary; /* temporary allocations at each site; NULL if not recorded */
    bool has_counters;        /* the samples carry the running totals */
    zw_capture_step *steps;   /* the live set's changes by site over time, in time order; none
                               * (nsteps 0) if not recorded or the process died before SITES */
    size_t nsteps;
    zw_capture_delta *deltas;
    size_t ndeltas;
    zw_capture_leaks leaks; /* status ZW_LEAKS_UNKNOWN in captures without the scan */
    size_t damaged;        /* damaged sections skipped: what they held is missing */
    const char *damage;    /* the first of them ("section 3 (series) at offset 880 damaged
                            * (payload checksum mismatch)"), or where reading had to stop; NULL
                            * when the file was read whole */
    const char *peak_lost; /* why a peak set kept as steps was not rebuilt; NULL otherwise */
    /* the exit set's traces by domain: exit.snap's (kept when it is not NULL); in a summary
     * load, as the exit set's section stores them; in a brief load, not read (kept false).
     * Last: the fields above keep their places for programs built before it. */
    zw_capture_set_size exit_size;
} zw_capture;

/* Reads a capture file. A capture cut short (the process was killed while writing, or died
 * without running its exit path) loads with `complete` false and what was written until then. A
 * damaged section is skipped and counted in `damaged` (`damage` says which and why); a damaged
 * section header stops the reading there, with what came before kept. A foreign or newer file, or
 * one whose file header is damaged, gives NULL and an error naming what is wrong and where.
 * Memory: at most a fixed multiple of the file's size plus a constant (see zw_capture_live_at). */
ZW_API zw_capture *zw_capture_load(const char *path, zw_error *err);
/* Told while a capture is read: `done` of its `total` bytes are read (whole sections). */
typedef void zw_capture_progress_fn(void *arg, uint64_t done, uint64_t total);
/* zw_capture_load(), calling `progress` (when not NULL) with `arg` before each section (zw's
 * status line while a large capture is read). */
ZW_API zw_capture *zw_capture_load_progress(const char *path, zw_capture_progress_fn *progress,
                                            void *arg, zw_error *err);
/* zw_capture_load() of what says how the run went, without decoding a traceback: the process,
 * how it ended, the totals, the live counters (write_errno, untraced) and the samples. The live
 * sets, marks, sites, steps and leak kinds are left out (peak.snap and exit.snap NULL, nmarks
 * and nsteps 0, leaks unknown). What `zw run -q` reads of the capture it just wrote. */
ZW_API zw_capture *zw_capture_load_brief(const char *path, zw_error *err);
/* The same from `len` bytes in memory (the fuzz target's door). */
ZW_API zw_capture *zw_capture_load_memory(const void *data, size_t len, zw_error *err);
/* zw_capture_load_brief() that also counts the exit set's traces by domain into exit_size, as
 * the exit set's section stores them, without decoding a traceback: exit.snap stays NULL, and
 * the tables of tracebacks are passed over unread (exit_size.kept needs the table to be there,
 * as a full load does, but a damaged table that a full load would refuse goes unnoticed). What
 * `zw run` reads for the summary it prints. */
ZW_API zw_capture *zw_capture_load_summary(const char *path, zw_error *err);
ZW_API void zw_capture_free(zw_capture *c);

/* The live set at `time_ns` (since the start of tracing) rebuilt from the steps: the sites' live
 * blocks and bytes summed over every step taken at or before that time, as a new snapshot (free it
 * with zw_snapshot_free) whose traces are the sites' tracebacks. A site's bytes are spread evenly
 * over its blocks (a step records per-site sums, not single blocks): statistics by line, file or
 * traceback are exact, single sizes are averages. NULL and an error if the capture has no steps,
 * memory runs out, or the set would hold more blocks than ZW_REBUILD_MAX_BLOCKS (by default
 * 2^20 plus 64 per byte of the capture file: a rebuilt set costs about 32 bytes a block). */
ZW_API zw_snapshot *zw_capture_live_at(const zw_capture *c, uint64_t time_ns, zw_error *err);

/* The exit set's blocks of the kinds in `kinds` (a mask of 1u << enum zw_leak_kind), in the exit
 * set's order, as a new snapshot (free it with zw_snapshot_free). NULL and an error if the exit
 * set was not scanned (c->leaks.status is not ZW_LEAKS_SCANNED) or memory runs out. */
ZW_API zw_snapshot *zw_capture_leaked(const zw_capture *c, unsigned kinds, zw_error *err);
/* One section of a capture file as it is stored (zw stat --sections). */
typedef struct zw_capture_section {
    uint32_t type;      /* docs/format.md#section-types */
    const char *name;   /* its name in messages ("table", "samples"...), "unknown" for another */
    uint64_t offset;    /* of its header in the file */
    uint64_t stored;    /* bytes of payload in the file (the 32-byte header not included) */
    uint64_t raw;       /* bytes once decompressed */
    bool compressed;    /* stored as a zstd frame */
    bool damaged;       /* its payload's checksum does not match (still listed) */
} zw_capture_section;

/* Calls fn(ctx, s) for each section of capture file `path`, in file order, the END section
 * included; a damaged section is listed with `damaged` set, a damaged section header ends the
 * list. 0, or -1 with an error for a file that is no capture or cannot be read. */
ZW_API int zw_capture_sections(const char *path,
                               void (*fn)(void *ctx, const zw_capture_section *s), void *ctx,
                               zw_error *err);

/* A capture followed while its process writes it (zw run's status line). Zero it before the
 * first poll. */
typedef struct zw_capture_progress {
    uint64_t offset;        /* of the first byte the next poll reads */
    bool known;             /* a sample was read: `last` holds it */
    bool ended;             /* the END section was read: the process has finished */
    zw_capture_sample last; /* the last sample written */
    uint64_t peak_bytes;    /* the largest heap_bytes of the samples read */
} zw_capture_progress;

/* Reads the whole sections appended to the capture at `path` since the last poll (a missing file
 * is one not written yet): 0, or -1 if the file is no capture or cannot be read. */
ZW_API int zw_capture_poll(const char *path, zw_capture_progress *p);

/* zw_mark("label") in a traced process records a mark (time, heap bytes, live set); in a process
 * without libzwpreload.so it does nothing. Declared here for programs that link zerowaste; a
 * program that does not can declare `void zw_mark(const char *) __attribute__((weak));` and call
 * it when non-NULL. */
ZW_API void zw_mark(const char *label);

/* The rendezvous of marks between two copies of the tracer in one process. A program that links
 * zerowaste calls its own zw_mark, which cannot see a tracer that lives in another shared object
 * (libzwpreload.so, or any tracer built on this library): that tracer exports a function named
 * ZW_MARK_SINK, of type zw_mark_sink_fn, and zw_mark passes each label to the first one
 * dlsym(RTLD_DEFAULT, ZW_MARK_SINK) finds. No such function: zw_mark does nothing. */
typedef void zw_mark_sink_fn(const char *label);
#define ZW_MARK_SINK "zw_mark_sink"

#ifdef __cplusplus
}
#endif

#endif /* ZEROWASTE_CAPTURE_H */
