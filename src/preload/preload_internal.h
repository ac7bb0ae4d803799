/* preload/preload_internal.h - what the files of libzwpreload.so share: the one struct of
 * mutable state (G), its types, and the functions one file calls in another.
 *
 *   hooks.c    bootstrap (the static arena until dlsym() found the real functions) and the
 *              interposed malloc family: guard up -> real function -> record -> guard down;
 *              the interposed mmap family, recorded by mmaps.c
 *   mmaps.c    the mmap domain: the program's own mappings, each a trace of ZW_CAPTURE_MMAP_DOMAIN
 *   modules.c  dlclose: the modules the program unloads, so that frames of their code resolve
 *   unwind.c   tracebacks through code without frame pointers (unwinder.h: its own state)
 *   sampler.c  the clock, the counters' totals, and the thread that samples every interval
 *   consumer.c the bookkeeping thread: applies, in order, what the hooks post to a ring (the
 *              table, the site counters, the peak), off the program's threads
 *   tickets.c  the ring's tickets: no atomic add while the program has one thread
 *   writer.c   the capture file: samples, steps, live sets (peak, marks, exit), sites, totals
 *   life.c     start, exit and _exit, signals, fork, exec: when the capture begins and ends
 *   env.c      zw's variables: saved and taken out of the program's environment at start, put
 *              back in each child's
 *   spawn.c    posix_spawn[p], and system() and popen()/pclose() rebuilt on it: the children
 *              glibc starts without the exec functions get zw's variables too
 *
 * Each field of G says what guards it. "Constructor" fields are written by preload_start() (and
 * again by fork_child(), in a child that has one thread) before `active` is set, and only read
 * after. See docs/zw.md#how-it-works. */
#ifndef ZW_PRELOAD_INTERNAL_H
#define ZW_PRELOAD_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <zerowaste/capture.h>

#include "capture_format.h"
#include "leakscan.h"
#include "tickets.h"
#include "unwinder.h"

#define EXPORT          __attribute__((visibility("default")))
#define BOOT_SIZE       ((size_t)1 << 20) /* the bootstrap arena */
#define SITE_REFS_MAX   ((size_t)1 << 26) /* traceback refs below G.site_refs get site counters */
#define PENDING_SAMPLES 256               /* samples held before the sampler must write */
#define DIRTY_SHIFT     12                /* one summary byte per 4096 refs */

/* ---- the one struct of mutable state ---- */

/* One thread's counters: written by that thread only (relaxed atomics; the last slot, shared by
 * the threads past LIVE_SLOTS - 1, by atomic adds). A program thread counts its allocations and
 * bytes (and what it could not intern); the bookkeeping thread's own slot counts the frees, the
 * temporary allocations and what the table could not hold (its allocs and bytes then go below
 * zero, modulo 2^64: the sum over the slots is right); inline, each thread counts all of its
 * own. Summed by any reader. They live in the LIVE
 * section of the capture file, mapped shared, so what they count survives any death of the
 * process, SIGKILL included (docs/format.md#live). Never freed: the counts of exited threads stay
 * in the totals. 64 bytes, the layout of a LIVE slot. */
typedef struct tstats {
    _Alignas(64) _Atomic uint64_t allocs;
    _Atomic uint64_t frees;
    _Atomic uint64_t temps;
    _Atomic uint64_t bytes;
    _Atomic uint64_t freed_bytes; /* bytes of the blocks counted in `frees` */
    _Atomic uint64_t untraced; /* allocations not traced: the tracer was out of memory */
    uint64_t reserved[2];
} tstats;

/* The head of the LIVE section's payload, then LIVE_SLOTS tstats: what a reader needs when the
 * capture ends early. Stored with plain atomic stores; the kernel's page cache keeps them. */
typedef struct live_head {
    _Alignas(64) uint32_t nslots;
    _Atomic uint32_t end;         /* enum zw_capture_end, set when the process ends (0 before) */
    _Atomic int32_t code;         /* its status or signal */
    _Atomic uint32_t write_errno; /* the errno of the first write of the capture that failed */
    _Atomic uint64_t peak_bytes;   /* the last peak saved (zwi_preload_save_peak), and when */
    _Atomic uint64_t peak_time_ns;
    _Atomic uint64_t mmap_bytes; /* the mmap domain's bytes now and at its peak (format 1.5) */
    _Atomic uint64_t mmap_peak;
    uint64_t reserved[2];
} live_head;

_Static_assert(sizeof(tstats) == 64 && sizeof(live_head) == 64, "LIVE records are 64 bytes");

#define LIVE_SLOTS 127 /* thread slots in the LIVE section; the last one is shared */
#define LIVE_AT    64  /* the LIVE payload's offset: right after the file and section headers */

/* Per-site counters, indexed by traceback ref; written by the bookkeeping thread alone (plain
 * stores), or, inline and for the mmap domain's sites, by every thread (atomic adds). Live blocks
 * of the site = count - freed, live bytes = bytes - freed_bytes (modulo 2^64: in a fork child,
 * whose counts start at 0 while its parent's blocks stay live, `freed` starts below zero). */
typedef struct site {
    _Atomic uint64_t count;       /* allocations made here */
    _Atomic uint64_t bytes;       /* bytes allocated here */
    _Atomic uint64_t freed;       /* blocks allocated here and freed since */
    _Atomic uint64_t freed_bytes; /* their bytes */
    _Atomic uint64_t temps;       /* temporary allocations made here */
    _Atomic uint32_t domain;      /* the domain of the site's traces: 0, or the mmap domain */
} site;

/* What the sampler last wrote of a site (SITE_DELTAS): the sampler's own, under G.lock. */
typedef struct site_shown {
    uint64_t blocks;
    uint64_t bytes;
    bool mentioned; /* a delta of this site was written: SITES must list it */
} site_shown;

/* The leak check of a live set (leaks.c), the exit's or a mark's: the records of the heap's live blocks, each with
 * its kind, in the order the EXIT_SET section writes them. Arrays mapped, n of cap. */
typedef struct zwi_leak_check {
    uint32_t status; /* enum zw_leaks_status */
    zwi_trace_rec *recs;
    uint8_t *kinds; /* enum zw_leak_kind of recs[i] */
    size_t n;
    size_t cap;
    uint64_t blocks[ZWI_LEAK_KINDS];
    uint64_t bytes[ZWI_LEAK_KINDS];
    zwi_leak_roots roots;
    uint64_t scan_ns;     /* wall time of the scan */
    uint64_t scan_cpu_ns; /* this thread's CPU time in it */
    size_t scan_memory;   /* bytes the scan mapped */
} zwi_leak_check;

/* A kept live set: the records of the tracer at one moment (symbolised only at finish). */
typedef struct liveset {
    zwi_trace_rec *recs;
    size_t n;
    size_t cap;
    uint64_t time_ns;
    uint64_t bytes;
    char label[64];
    bool kept;            /* a mark's records were copied (see MAX_MARK_SETS) */
    zwi_leak_check leak;  /* a mark's scan (ZW_LEAK_MARKS): status ZW_LEAKS_UNKNOWN if none;
                           * when SCANNED its recs are the set's */
    struct liveset *next; /* marks, newest first */
} liveset;

typedef struct real_fns {
    void *(*malloc)(size_t);
    void (*free)(void *);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
    int (*posix_memalign)(void **, size_t, size_t);
    void *(*aligned_alloc)(size_t, size_t);
    void *(*memalign)(size_t, size_t);
    void *(*valloc)(size_t);
    void *(*pvalloc)(size_t);
    size_t (*malloc_usable_size)(void *);
    void (*exit_)(int);
    int (*execve)(const char *, char *const[], char *const[]);
    int (*execvp)(const char *, char *const[]);
    int (*execvpe)(const char *, char *const[], char *const[]);
    int (*fexecve)(int, char *const[], char *const[]);
    int (*execveat)(int, const char *, char *const[], char *const[], int);
    int (*posix_spawn)(pid_t *, const char *, const void *, const void *, char *const[],
                       char *const[]); /* the file actions and attributes: spawn.h's types */
    int (*posix_spawnp)(pid_t *, const char *, const void *, const void *, char *const[],
                        char *const[]);
    int (*brk)(void *);
    void *(*sbrk)(intptr_t);
    int (*getattr)(pthread_t, pthread_attr_t *); /* pthread_getattr_np */
} real_fns;

/* One mapping of the mmap domain: [start, start + len), whole pages, with the traceback ref of the
 * call that mapped it (its trace in the tracer is keyed by `start`). */
typedef struct mapping {
    uintptr_t start;
    size_t len;
    uint32_t tb;
} mapping;

typedef struct totals {
    uint64_t allocs, frees, temps, bytes, freed_bytes, untraced;
} totals;

/* A module the program unloaded (dlclose): its code [lo, hi) and load bias `base`. */
#define MAX_UNLOADED 1024 /* modules noted; past them, frames of their code may go unresolved */
typedef struct unloaded_module {
    uintptr_t lo, hi, base;
    char path[4096];
} unloaded_module;

/* The variables libzwpreload.so reads (env.c's zw_vars). */
#define ZWI_ENV_NVARS 16

/* ---- the bookkeeping ring (consumer.c) ---- */

/* What a hook asks the bookkeeping to do, applied in ticket order (zwi_preload_apply). */
enum {
    ZWI_OP_ALLOC = 1,   /* trace block ptr of size bytes at traceback ref: table, site, peak */
    ZWI_OP_FREE = 2,    /* forget block ptr: table, site, frees (temps with ZWI_REC_TEMP) */
    ZWI_OP_RESTORE = 3, /* a realloc of ptr failed: the block its ZWI_REC_KEEP free removed is back */
    ZWI_OP_MASK = 0xff,
    ZWI_REC_TEMP = 1u << 8, /* the freed block was the thread's last allocation, freed next */
    ZWI_REC_KEEP = 1u << 9, /* a realloc's old block: kept aside (consumer.c's stash) */
    /* an ALLOC whose traceback the consumer interns: `ref` is a ZWI_FR_* word, and the
     * traceback's words follow in the next (op >> ZWI_REC_EXTRA_SHIFT) cells (see below) */
    ZWI_REC_FRAMES = 1u << 10,
    ZWI_REC_EXTRA_SHIFT = 16,
};

/* The `ref` of a ZWI_REC_FRAMES record. Its producer posts the traceback (n frames kept, innermost
 * first) as it differs from the last one posted under the same id (a thread's LIVE slot): the
 * outer d frames are those of that one, the inner n - d follow the record, innermost first, after
 * `total` if it is not n. Four words a cell, the first one with ZWI_FR_MARK set, so that no
 * cell's seq word ever equals a ticket + 1 unless it is a record's. The rows G.ring.sent (the
 * producer's) and G.ring.seen (the consumer's) hold each id's last traceback, outermost first:
 * equal once the consumer has applied every record of the id posted before. */
#define ZWI_FR_ID(r)    ((r) & 127u)
#define ZWI_FR_N(r)     (((r) >> 7) & 2047u)
#define ZWI_FR_D(r)     (((r) >> 18) & 2047u)
#define ZWI_FR_TOTAL(r) (((r) >> 29) & 1u)
#define ZWI_FR_REF(id, n, d, tot) \
    ((uint32_t)(id) | (uint32_t)(n) << 7 | (uint32_t)(d) << 18 | (uint32_t)(tot) << 29)
#define ZWI_FR_MARK ((uint64_t)1 << 63)
_Static_assert(ZW_TRACE_MAX_NFRAME < 2048, "ZWI_FR_N and ZWI_FR_D take 11 bits");

/* One record of the ring: 32 bytes, two a cache line. A producer with ticket t writes the fields
 * of cells[t & mask], then seq = t + 1 (release); the consumer applies it when it reads seq ==
 * tail + 1 (acquire). The cell is the producer's again only once tail > t, so that the fields
 * are never written and read at once. */
typedef struct zwi_rec {
    _Atomic uint64_t seq;
    uintptr_t ptr;
    uint64_t size;
    uint32_t ref; /* traceback ref (ALLOC) */
    uint32_t op;  /* ZWI_OP_* | ZWI_REC_* */
} zwi_rec;

_Static_assert(sizeof(zwi_rec) == 32, "two records a cache line");

#define ZWI_STASH 1024 /* realloc's old blocks kept aside, direct-mapped by address */

/* A removed block a failed realloc may want back (consumer.c): the consumer's own. */
typedef struct zwi_stash {
    uintptr_t ptr; /* 0: none */
    zwi_trace_rec rec;
    uint32_t op; /* the free's flags; ZWI_OP_FREE if the block was traced, else 0 */
} zwi_stash;

/* An environment for a child: planned (what `in` lacks), then built in the caller's memory or
 * mapped (unmapped by zwi_preload_child_env_release). */
typedef struct zwi_child_env {
    char *const *in;            /* the environment given (an empty one for NULL) */
    size_t n;                   /* its entries */
    bool want[ZWI_ENV_NVARS];   /* the saved variables it lacks */
    char *const *lp;            /* its first LD_PRELOAD entry, or NULL */
    bool merge;                 /* this library is to be put first in LD_PRELOAD */
    size_t ptrs;                /* bytes of the new pointer array */
    size_t need;                /* bytes of it all: the array, then "LD_PRELOAD=..." (0: none) */
    void *map;                  /* mapped by the build, or NULL */
    size_t map_len;
} zwi_child_env;

/* The library's state: see the "constructor" fields in this file's header. */
typedef struct zwi_preload_state {
    real_fns real;     /* written once by zwi_preload_resolve() before `ready`; read-only after */
    atomic_bool ready; /* atomic: release-stored once `real` is complete */
    atomic_bool resolving; /* atomic: dlsym() is running, its allocations come from `boot` */
    struct {
        _Alignas(16) unsigned char bytes[BOOT_SIZE];
        atomic_size_t used; /* atomic bump pointer; blocks are never reused */
    } boot;

    zwi_tracer *tracer;   /* constructor; the engine guards its own tables */
    atomic_bool started;  /* atomic exchange: zwi_preload_start() runs once */
    atomic_bool active;   /* atomic: hooks record while set; cleared by zwi_preload_finish()
                           * and fork */
    atomic_bool finished; /* atomic exchange: zwi_preload_finish() runs once (set in an
                           * unfollowed child) */
    unsigned nframe;      /* constructor: traceback limit, from ZW_NFRAME */
    unsigned interval_ms; /* constructor: sampling interval, from ZW_INTERVAL_MS */
    unsigned flush_ms;    /* constructor: how long samples and steps wait before they are
                           * written, from ZW_FLUSH_MS (0: written at each sample) */
    bool follow_fork;     /* constructor: ZW_FOLLOW_FORK=1, a fork child writes its capture */
    bool follow_exec;     /* constructor: ZW_FOLLOW_EXEC (default 1): children get zw's
                           * variables (env.c) */
    /* zw's variables (env.c): written by zwi_preload_env_save() and _scrub(), at start, in a
     * process with one thread; read-only after. The strings are mapped, never freed. */
    struct {
        bool saved;    /* zwi_preload_env_save() ran */
        bool scrubbed; /* zwi_preload_env_scrub() ran: they are out of `environ` */
        const char *vars[ZWI_ENV_NVARS]; /* "NAME=value" as the process started, or NULL */
        const char *ours;         /* our entries of LD_PRELOAD, ':'-joined; NULL if none */
        const char *preload_rest; /* "LD_PRELOAD=" the others, as written; NULL if none */
        bool preload_had_ours;    /* LD_PRELOAD named this library */
        pid_t pid; /* the process's own pid: set at start and in every fork child (not in a
                    * vfork child, which shares this memory) */
    } env;
    uint64_t start_ns;    /* constructor: CLOCK_MONOTONIC at start */
    uint64_t start_real;  /* constructor: CLOCK_REALTIME at start */
    pid_t pid;            /* constructor: the process the capture is of; a vfork child (another
                           * pid sharing this memory) must not finish it */
    zw_raw *raw;          /* constructor; what it allocates is used under `lock` only */

    site *sites;          /* constructor (NULL: none kept); entries are atomic counters */
    size_t site_refs;     /* constructor: refs below this have a site (SITE_REFS_MAX, or less
                           * under an address space limit) */
    atomic_uint site_max; /* atomic (CAS): the largest ref counted */
    /* Sites changed since the sampler last looked: a writer updates the site's counters, then
     * sets dirty[ref] and summary[ref >> DIRTY_SHIFT] (seq_cst, skipped when already set); the
     * sampler clears a summary byte, then each dirty byte of its block, then reads the counters.
     * Either the writer sees the cleared byte and sets it again, or the sampler sees its counts. */
    _Atomic unsigned char *dirty;   /* constructor, site_refs bytes (NULL with sites) */
    _Atomic unsigned char *summary; /* constructor, site_refs >> DIRTY_SHIFT bytes */
    site_shown *shown;              /* constructor, site_refs entries; under `lock` */
    int64_t _Atomic peak_next; /* atomic: a peak this large saves a peak set; stored under `lock` */

    pthread_mutex_t lock; /* guards the fields below it up to `steps_broken` */
    liveset peak;         /* the live set at the last saved peak */
    liveset *marks;       /* zw_mark() sets, newest first */
    size_t nmark_sets;    /* marks whose live set was copied */
    atomic_int fd;        /* the capture file, -1 if it could not be made or writing failed;
                           * changed under `lock`, read by the fatal-signal path without it */
    char path[4096];      /* its name */
    dev_t file_dev;       /* the file `fd` must still be, checked before each write */
    ino_t file_ino;
    zw_capture_sample pending[PENDING_SAMPLES]; /* samples not yet written */
    size_t npending;
    /* The last sample taken when nothing had moved since the last one pushed (the heap and the
     * counters equal, RSS within 1%): held back, and pushed only before the next sample that
     * differs, so a flat stretch costs two samples, not one per interval. */
    zw_capture_sample held;
    bool has_held;
    zw_capture_sample last_written; /* the last sample written, if any_written */
    bool any_written;
    uint64_t flushed_ns; /* when the sampler last wrote pending samples and steps */
    zwi_cbuf steps;    /* SITE_DELTAS records not yet written */
    size_t nsteps;     /* their number */
    bool steps_broken; /* a step could not be stored: the steps written are not the whole story */

    /* The end of the file: whole sections only, written by write_locked(). The fatal-signal path
     * writes its last words there (pwrite), over the part of a section a signal interrupted. */
    _Atomic uint64_t file_len;
    atomic_bool in_write;    /* write_locked() is writing (set before it checks end_claimed) */
    atomic_bool end_claimed; /* the END of the capture is being written: nothing after it */
    int write_errno;         /* under `lock`: the first failed write's errno (also in live) */

    /* constructor (again in a followed fork child): the LIVE section, mapped shared from the
     * capture file, or an anonymous mapping of the same layout if the file has none */
    unsigned char *live_map;
    size_t live_len;
    live_head *live;
    tstats *slots;               /* live->nslots of them; the last one is shared */
    tstats *shared_slot;         /* &slots[live->nslots - 1] */
    atomic_uint slots_used;      /* slots handed to threads (may pass nslots) */
    _Atomic unsigned char slot_free[LIVE_SLOTS]; /* 1: a slot its thread left (stats_release) */
    pthread_key_t slot_key;      /* constructor: its destructor frees a thread's slot */
    bool slot_key_ok;            /* constructor */
    atomic_int fatal_signal;     /* the first fatal signal being served (0: none) */
    uint64_t heap_base_bytes;    /* constructor (fork child): live bytes the counters start from */
    uint64_t heap_base_blocks;   /* likewise, blocks (a fork child keeps its parent's) */
    _Atomic uint64_t peak_time_hint; /* G.peak.time_ns, readable without `lock` */

    pthread_t sampler; /* written by zwi_preload_start_sampler() only, before the thread runs */
    bool sampler_on;   /* zwi_preload_start_sampler(), _stop_sampler(): the exit path, one thread */
    atomic_bool stop;  /* atomic: asks the sampler to return */
    int mark_signal;   /* constructor: ZW_MARK_SIGNAL's number, 0 if none */
    atomic_uint signal_marks;   /* atomic: marks asked for by that signal, taken by the sampler */
    atomic_int async_signal;    /* atomic: an asynchronous signal asks the sampler to finish */
    atomic_int deferred_signal; /* atomic: one that landed inside a hook, served on leaving it */
    int wake[2];                /* constructor: a pipe whose write end wakes the sampler */
    int statm;                  /* constructor: /proc/self/statm, -1 if it could not be opened */
    atomic_bool written; /* atomic: zwi_preload_finish() has written the end of the capture */
    /* constructor (preload_start(), if ZW_NFRAME > 1): the modules loaded at start, which of
     * them keep frame pointers (votes, atomic) and where runtime functions keep a skipped return
     * address (skip cache, atomic); see unwinder.h */
    zwi_unwinder unw;
    char cmdline[4096]; /* constructor: /proc/self/cmdline, NUL-separated */
    bool leak_check;    /* constructor: ZW_LEAK_CHECK (default 1): scan the exit set */
    bool leak_marks;    /* constructor: ZW_LEAK_MARKS (default 0): scan each kept mark's set */
    /* set by finish() on the thread that finishes, before the end's leak check: where the
     * program's frames end, on that thread (see leakscan.h) */
    zwi_leak_thread leak_thread;
    bool end_thread; /* constructor: ZW_END_THREAD (1 by default): the end written by a thread of
                      * its own (life.c, write_end) */
    size_t cmdline_len; /* constructor */

    /* the modules the program unloaded (modules.c), read by hooks without the lock */
    struct {
        pthread_mutex_t lock; /* serialises the dlclose hooks that append */
        unloaded_module *v;   /* MAX_UNLOADED entries, mapped at the first, never moved */
        atomic_size_t n;      /* entries written (release-stored after each) */
        _Atomic uintptr_t lo; /* the range holding all their code (stored before `n`) */
        _Atomic uintptr_t hi;
    } unloaded;

    /* the capture's table built ahead of the end by the sampler (ahead.c), under its lock, which
     * the end takes after G.lock */
    struct {
        pthread_mutex_t lock;
        bool on;   /* constructor: ZW_TABLE_AHEAD (1 by default) */
        bool gone; /* given up for this process (a module unloaded, no memory), or taken by the
                    * end */
        struct zwi_symbolizer *sym;
        struct zwi_arena *arena;  /* the table's memory (arena.c) */
        zw_snapshot *table;
        struct zwi_table_builder *b;
        uint32_t next;  /* the refs below it are converted, or were passed over */
        unsigned stuck; /* passes `next` has waited for its site's first allocation */
        unsigned long long loads; /* the loader's count of loaded objects when sym was made */
        unsigned restarts;        /* times its work was dropped for a module loaded since */
    } ahead;

    /* the bookkeeping ring (consumer.c): the hooks post records, one consumer thread applies
     * them in ticket order. Each field says who writes it. */
    struct {
        bool on;          /* constructor: records go through the ring (else applied inline) */
        zwi_rec *cells;   /* constructor: mask + 1 of them, mapped */
        uint64_t mask;    /* constructor */
        uint64_t wake_mask; /* constructor: a ticket t with t & wake_mask == 0 wakes the
                             * consumer if it sleeps (a quarter of the ring) */
        /* tickets handed out (tickets.h): `solo` set by the constructor for its thread, whose
         * `my_solo` (hooks.c) is set, and by a fork child */
        zwi_tickets tickets;
        _Alignas(64) _Atomic uint64_t tail; /* records applied: the consumer's (release) */
        _Alignas(64) _Atomic uint32_t sleeping; /* futex word: 1 while the consumer sleeps */
        atomic_bool stop;   /* asks the consumer to return */
        atomic_bool closed; /* no consumer will come: a post that finds no room is dropped */
        /* held by the consumer while it applies a batch; fork holds it (no record half
         * applied in the child) */
        pthread_mutex_t apply_lock;
        pthread_t thread; /* written by zwi_preload_start_consumer(), before the thread runs */
        atomic_bool thread_on;
        atomic_bool ready; /* the consumer has made its LIVE slot and its malloc arena */
        zwi_stash *stash; /* the consumer's: ZWI_STASH entries, mapped */
        /* ZWI_REC_FRAMES records (see ZWI_FR_ID): LIVE_SLOTS rows of `stride` words each, row[0]
         * the traceback's n and row[1 + j] its frame at depth j. `sent`: a row is written by the
         * thread holding the id's slot (handed over with the slot); `seen`, and `frames` (nframe
         * words), by the consumer alone. NULL: tracebacks are interned by the hooks. */
        uintptr_t *sent;
        uintptr_t *seen;
        uintptr_t *frames;
        size_t stride;
        unsigned extra_max; /* constructor: the most cells a record may take after its own */
    } ring;

    /* the mmap domain (mmaps.c) */
    struct {
        pthread_mutex_t lock; /* guards the table; taken before any lock of the tracer */
        mapping *v;           /* the traced mappings, sorted by start, disjoint; mapped */
        size_t n;
        size_t cap;
        _Atomic uint64_t bytes;    /* their bytes (written under `lock`, read without it) */
        _Atomic uint64_t peak;     /* the most `bytes` has been since the capture started */
        _Atomic int64_t peak_next; /* bytes that save an mmap peak step (under G.lock) */
    } mmaps;
} zwi_preload_state;

/* The library's state, defined in life.c; every file names it G. */
extern ZW_HIDDEN zwi_preload_state zwi_preload_g;
#define G zwi_preload_g

/* Signals sent from outside (life.c): blocked in the sampler thread, which serves them. */
#define ZWI_PRELOAD_NASYNC 11
extern ZW_HIDDEN const int zwi_preload_async_signals[ZWI_PRELOAD_NASYNC];

/* ---- hooks.c ---- */

/* Notes that site `ref`'s counters changed (see G.dirty), after they were updated. */
static inline void
zwi_preload_site_dirty(uint32_t ref)
{
    if (atomic_load(&G.dirty[ref]) == 0) {
        atomic_store(&G.dirty[ref], 1);
        if (atomic_load(&G.summary[ref >> DIRTY_SHIFT]) == 0)
            atomic_store(&G.summary[ref >> DIRTY_SHIFT], 1);
    }
}

/* The key whose destructor frees an exiting thread's counters slot (constructor). */
ZW_HIDDEN void zwi_preload_make_slot_key(void);
/* Forgets this thread's counters slot (a fork child starts on new ones). */
ZW_HIDDEN void zwi_preload_forget_stats(void);

/* Finds the real functions; false while dlsym() itself is running (then the caller serves the
 * request from the bootstrap arena). */
ZW_HIDDEN bool zwi_preload_resolve(void);

/* ---- modules.c ---- */

typedef struct zwi_symbolizer zwi_symbolizer;

/* dlclose(): the real one, and then the modules it unloaded noted (G.unloaded) and what the
 * unwinder learnt of their code forgotten. Not from a hook. */
ZW_HIDDEN int zwi_preload_dlclose(void *handle);
/* Tags each of frames[0, nf) that lies where modules were unloaded before with their number
 * (ZWI_FRAME_TAG_SHIFT), so that a module mapped there later has frames of its own. Called when
 * G.unloaded.n is not 0. */
ZW_HIDDEN void zwi_preload_tag_frames(uintptr_t *frames, unsigned nf);
/* Tells `sym` of the modules unloaded so far. */
ZW_HIDDEN void zwi_preload_report_unloaded(zwi_symbolizer *sym);

/* ---- mmaps.c ---- */

/* The program mapped [start, start + len) (len in whole pages) with the given traceback: a new
 * trace of the mmap domain, after whatever of the range was traced before is taken out (MAP_FIXED
 * maps over old mappings). The caller's guard is up. */
ZW_HIDDEN void zwi_preload_mmap_map(uintptr_t start, size_t len, const uintptr_t *frames,
                                    unsigned nf, unsigned total);
/* The program unmapped [start, start + len): the mappings in the range shrink, split or go. */
ZW_HIDDEN void zwi_preload_mmap_unmap(uintptr_t start, size_t len);
/* fork(): the table's lock held around it; in a followed child the counters start over from the
 * mappings it inherited (they are its too). */
ZW_HIDDEN void zwi_preload_mmap_lock(void);
ZW_HIDDEN void zwi_preload_mmap_unlock(void);
ZW_HIDDEN void zwi_preload_mmap_restart(void);

/* ---- sampler.c ---- */

ZW_HIDDEN uint64_t zwi_preload_clock_ns(clockid_t id);
/* Nanoseconds since the capture started (CLOCK_MONOTONIC). */
ZW_HIDDEN uint64_t zwi_preload_now_ns(void);
/* The counters of every thread, summed. */
ZW_HIDDEN totals zwi_preload_sum_stats(void);
/* Adds the counts of slot `ts` (or of a slot kept apart) to *s. */
ZW_HIDDEN void zwi_preload_add_stats(totals *s, const tstats *ts);
ZW_HIDDEN uint64_t zwi_preload_rss_bytes(void);
/* A sample now: heap bytes and blocks, RSS, the running totals. */
ZW_HIDDEN zw_capture_sample zwi_preload_sample_now(void);
/* G.wake, a new pipe, and G.statm, opened anew (a fork child must not share its parent's): the
 * constructor's and a fork child's, while the process has one thread. */
ZW_HIDDEN void zwi_preload_sampler_fds(void);
ZW_HIDDEN void zwi_preload_start_sampler(void);
/* The first call of a thread of this library (the sampler, the bookkeeping thread): its guard up
 * for good, its name (`name`, at most 15 bytes) for top -H and perf, the asynchronous signals and
 * the mark signal blocked (the sampler serves them). */
ZW_HIDDEN void zwi_preload_own_thread(const char *name);
/* Asks the sampler to return; waits for it if `join` and this is not the sampler itself. */
ZW_HIDDEN void zwi_preload_stop_sampler(bool join);

/* Applies record `r` (the consumer, or the hook itself in the inline mode): the tracer's table,
 * the site counters, the peak; frees, temps (and a table out of memory) count in `cs`, the
 * applier's LIVE slot. `sole`: the caller is the only writer of the heap's site counters (the
 * consumer), which it then updates without locked instructions. */
ZW_HIDDEN void zwi_preload_apply(zwi_rec *r, tstats *cs, bool sole);
/* The calling thread's LIVE slot (made on first use), or NULL. */
ZW_HIDDEN tstats *zwi_preload_stats_self(void);

/* ---- consumer.c ---- */

/* The ring and its consumer thread, from the constructor (ZW_BOOKKEEPING, ZW_RING): G.ring.on
 * stays false (records applied inline) if it is "inline" or the thread cannot start. */
ZW_HIDDEN void zwi_preload_start_consumer(void);
/* Waits until every record posted before the call has been applied. Gives up when the consumer
 * made no progress for `stall_ms` (a producer stuck between its ticket and its record: a signal
 * handler that never returns). Async-signal-safe. No-op in the inline mode and on the consumer. */
ZW_HIDDEN void zwi_preload_drain(unsigned stall_ms);
#define ZWI_DRAIN_MS 2000 /* a reader's patience with a consumer that makes no progress */
/* Drains, then stops the consumer (joined if `join`): the exit paths. Posts after it are dropped
 * when they find no room. */
ZW_HIDDEN void zwi_preload_stop_consumer(bool join, unsigned stall_ms);
/* Wakes the consumer if it sleeps. */
ZW_HIDDEN void zwi_preload_wake_consumer(void);
/* Sleeps while *word is `val`, `ms` at most (a futex of this process); wakes one sleeper. */
ZW_HIDDEN void zwi_preload_futex_wait(_Atomic uint32_t *word, uint32_t val, unsigned ms);
ZW_HIDDEN void zwi_preload_futex_wake(_Atomic uint32_t *word);
/* A post that found no room: waits until ticket t fits. False if the ring is closed. */
ZW_HIDDEN bool zwi_preload_ring_room(uint64_t t);
/* Makes the calling thread the ring's solo one (hooks.c; zwi_tickets_solo), while no other
 * thread posts: the constructor's, a fork child's. */
ZW_HIDDEN void zwi_preload_ring_solo(void);
/* Word j (< 4) of a cell following a ZWI_REC_FRAMES record (hooks.c, which writes them). */
ZW_HIDDEN uint64_t zwi_preload_extra_get(const zwi_rec *c, unsigned j);
/* fork(): drained and the consumer held between records (prepare), let go (parent); in the
 * child the ring starts empty without a consumer, which a followed child starts anew. */
ZW_HIDDEN void zwi_preload_consumer_fork_prepare(void);
ZW_HIDDEN void zwi_preload_consumer_fork_parent(void);
ZW_HIDDEN void zwi_preload_consumer_fork_child(void);
/* In a followed fork child, first thing: the records other threads published after fork's drain
 * (the consumer was held from then on), applied by the child's one thread, passing over the
 * tickets whose records are not there; what the consumer counts in its slot counted in `cs`
 * (not one of the parent's slots, which the child shares until it leaves them). Their blocks
 * are in the child's heap: without them, its frees of those blocks found nothing and its exit
 * set lacked them. */
ZW_HIDDEN void zwi_preload_consumer_fork_catch_up(tstats *cs);

/* ---- leaks.c ---- */

/* Scans the live heap blocks for reachability and fills `c` (status SCANNED, or FAILED). The
 * caller holds G.lock and its guard is up; the other threads are stopped while the scan reads.
 * `who`: the thread whose frames end where the program's do (leakscan.h), the caller or a thread
 * waiting for it. */
ZW_HIDDEN void zwi_preload_leak_check(zwi_leak_check *c, const zwi_leak_thread *who);
ZW_HIDDEN void zwi_preload_leak_release(zwi_leak_check *c);

/* ---- writer.c ---- */

/* Saves the live set at a new peak of `bytes`, called by a hook when it passed G.peak_next. */
ZW_HIDDEN __attribute__((noinline)) void zwi_preload_save_peak(int64_t bytes);
/* Saves a step flagged as the mmap domain's peak of `bytes` (past G.mmaps.peak_next). */
ZW_HIDDEN void zwi_preload_save_mmap_peak(uint64_t bytes);
/* zw_mark(): the live set now, labelled; with ZW_LEAK_MARKS, scanned for reachability on this
 * thread, whose stack is scanned from `stack_lo` up. */
ZW_HIDDEN void zwi_preload_take_mark(const char *label, uintptr_t stack_lo);
/* A sample to be written at the next flush (which comes when PENDING_SAMPLES are held). */
ZW_HIDDEN void zwi_preload_push_sample_locked(zw_capture_sample s);
/* The sampler's sample of an interval: the same, but one that differs from the last sample
 * pushed only by its time (and RSS by less than 1%) is held back (G.held) until something
 * moves. */
ZW_HIDDEN void zwi_preload_push_tick_locked(zw_capture_sample s);
ZW_HIDDEN void zwi_preload_flush_samples_locked(void);
ZW_HIDDEN void zwi_preload_scan_sites_locked(uint64_t time_ns, uint32_t flags);
ZW_HIDDEN void zwi_preload_open_output(void);
/* Maps the LIVE section of the file just started (or anonymous memory): G.live, G.slots. */
ZW_HIDDEN void zwi_preload_map_live(void);
/* The end of the capture from a signal handler: no lock, no allocation, a bounded wait; TOTALS
 * and END from the counters, written where the last whole section ends. Once per capture. */
ZW_HIDDEN void zwi_preload_write_last_words(uint32_t end, int code);
ZW_HIDDEN void zwi_preload_write_start_locked(void);
ZW_HIDDEN void zwi_preload_write_end_locked(uint32_t end, int code);

/* ---- ahead.c ---- */

/* The sampler's share of the end: converts (at most 2 ms of) the tracebacks the sites gained
 * since its last call into the capture's table. Takes G.ahead.lock, not G.lock. */
ZW_HIDDEN void zwi_preload_ahead_pass(void);
/* The table built so far, for the end (holding G.lock) to go on with: false if there is none
 * (never started, given up, or a module was unloaded since the last pass: the end then starts
 * afresh). */
ZW_HIDDEN bool zwi_preload_ahead_take_locked(zwi_symbolizer **sym, struct zwi_arena **arena,
                                             zw_snapshot **table, struct zwi_table_builder **b);
/* In a followed fork child, holding G.ahead.lock: the parent's work is forgotten (its sites start
 * afresh). */
ZW_HIDDEN void zwi_preload_ahead_fork_child(void);

/* ---- env.c ---- */

/* Saves zw's variables and this library's entries of LD_PRELOAD (G.env), once; at start, before
 * any of them is read. */
ZW_HIDDEN void zwi_preload_env_save(void);
/* Takes what zwi_preload_env_save() saved out of `environ`, in place, allocating nothing; from
 * the constructor (not from inside the C library: an early allocation may come from setenv). */
ZW_HIDDEN void zwi_preload_env_scrub(void);
/* The value of zw's variable `name` as the process started, or NULL (getenv's answer before the
 * scrub). */
ZW_HIDDEN const char *zwi_preload_env(const char *name);
/* The environment for a child started with `envp` (NULL: empty) is `envp` and the saved
 * variables it does not set, with this library first in LD_PRELOAD. _plan() says how many bytes
 * it needs: 0 if there is nothing to add (or ZW_FOLLOW_EXEC is 0). _build() makes it in `buf`
 * (at least that many bytes, aligned for pointers) or, if `buf` is NULL, in mapped memory, and
 * returns it; `envp` itself if nothing is added or no memory was left. Neither allocates
 * through malloc: usable in a vfork child, which must not map (the parent would keep it). */
ZW_HIDDEN size_t zwi_preload_child_env_plan(char *const *envp, zwi_child_env *ce);
ZW_HIDDEN char *const *zwi_preload_child_env_build(char *const *envp, zwi_child_env *ce,
                                                   void *buf);
ZW_HIDDEN void zwi_preload_child_env_release(zwi_child_env *ce);
/* True in a vfork child (a process sharing this memory, which fork handlers never ran in). */
ZW_HIDDEN bool zwi_preload_in_vfork_child(void);
/* A fork child: G.env.pid is its own. From the fork handler. */
ZW_HIDDEN void zwi_preload_env_forked(void);
/* A child's environment on the caller's stack up to this many bytes (about 500 entries); in a
 * vfork child up to ZWI_CHILD_ENV_VFORK_MAX (alloca), else mapped. */
#define ZWI_CHILD_ENV_BUF       4096
#define ZWI_CHILD_ENV_VFORK_MAX ((size_t)256 << 10)

/* ---- spawn.c ---- */

/* fork(): popen's table of streams held across it, as G.lock is. */
ZW_HIDDEN void zwi_preload_popen_lock(void);
ZW_HIDDEN void zwi_preload_popen_unlock(void);

/* ---- life.c ---- */

/* Starts tracing, once: from the constructor, or from the first allocation if a library's
 * constructor that runs before ours allocates. */
ZW_HIDDEN void zwi_preload_start(void);

/* Writes the end of the capture, once per process. `end` says how the process ends. */
ZW_HIDDEN void zwi_preload_finish(uint32_t end, int code);
/* Serves a signal from outside that landed inside a hook (G.deferred_signal). */
ZW_HIDDEN __attribute__((noinline)) void zwi_preload_serve_deferred(void);

#endif /* ZW_PRELOAD_INTERNAL_H */
