/* trace/trace_internal.h - the trace engine shared by the in-process API (trace.c) and, later,
 * the preload library: a tracer object with its trace table, its interned tracebacks and its
 * symbol cache, the per-thread state (reentrancy guard, stack bounds, traceback cache) and the
 * frame-pointer walk. Snapshots, statistics and files are built on top (snapshot.c, stats.c,
 * format.c). See docs/trace.md#engine.
 *
 *   record: guard -> walk frame pointers -> intern traceback (thread's path and memo, else the
 *           locked tree)
 *           -> insert (ptr -> size, traceback) in the shard of ptr, under that shard's lock
 *   free:   guard -> remove ptr from its shard (a miss costs one probe sequence)
 *   snapshot: copy each shard under its lock -> symbolise each distinct address once (cached)
 *
 * The engine never allocates through what it traces: its tables and tracebacks are anonymous
 * mappings of its own; snapshots and the symbol cache use a zw_raw door. */
#ifndef ZW_TRACE_INTERNAL_H
#define ZW_TRACE_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/single_threaded.h>

#include <zerowaste/raw.h>
#include <zerowaste/trace.h>

#include "trace_util.h"
#include "zw_assert.h"

/* ---- locks: a test-and-test-and-set spin lock, yielding after a while ---- */

/* Held for a probe sequence or a copy, never across a call that can block for long. Preload
 * threads contend on shards picked by address, so one shard lock is rarely fought over.
 *
 * While the process has one thread (glibc's __libc_single_threaded, as libstdc++ uses for its
 * reference counts) acquiring is skipped: no other thread can hold or want the lock, and a thread
 * can only appear through pthread_create(), which is never called inside a critical section.
 * Release always stores, so a lock taken before the process became single-threaded again is
 * still released. */
typedef struct zwi_lock {
    atomic_int held; /* 1 while held */
} zwi_lock;

ZW_HIDDEN void zwi_lock_slow(zwi_lock *l);

static inline void
zwi_lock_acquire(zwi_lock *l)
{
    if (__libc_single_threaded)
        return;
    if (ZW_LIKELY(!atomic_exchange_explicit(&l->held, 1, memory_order_acquire)))
        return;
    zwi_lock_slow(l);
}

/* Takes the lock if no other thread holds it: true if taken (or skipped, single-threaded). */
static inline bool
zwi_lock_try(zwi_lock *l)
{
    if (__libc_single_threaded)
        return true;
    return !atomic_load_explicit(&l->held, memory_order_relaxed) &&
           !atomic_exchange_explicit(&l->held, 1, memory_order_acquire);
}

static inline void
zwi_lock_release(zwi_lock *l)
{
    atomic_store_explicit(&l->held, 0, memory_order_release);
}

/* ---- interned tracebacks ---- */

/* Tracebacks are stored as a prefix tree of frames rooted at the outermost frame (engine.c): a
 * node is (its caller's node, a return address), and a traceback is a node and a count of the
 * frames on the stack. Its 32-bit `ref` numbers the distinct tracebacks densely from 1 (0 is
 * never one), in the order they were first seen; stable until clear/stop. */
/* ---- the tracer ---- */

typedef struct zwi_tracer zwi_tracer;

/* One live block as the table holds it. */
typedef struct zwi_trace_rec {
    unsigned domain;
    size_t size;
    uint32_t tb; /* ref of its traceback */
} zwi_trace_rec;

/* A new tracer keeping tracebacks of at most `nframe` frames; NULL with errno on failure. */
ZW_HIDDEN zwi_tracer *zwi_tracer_new(unsigned nframe);
ZW_HIDDEN void zwi_tracer_free(zwi_tracer *t);
ZW_HIDDEN unsigned zwi_tracer_nframe(const zwi_tracer *t);

/* Records block (domain, ptr) of `size` bytes allocated with the given frames (most recent
 * first); replaces a trace of the same block. 0, or -1 if the tables cannot grow. */
ZW_HIDDEN int zwi_tracer_add(zwi_tracer *t, unsigned domain, uintptr_t ptr, size_t size,
                             const uintptr_t *frames, unsigned nframe, unsigned total_nframe);
/* The same in two steps, for a caller that records on another thread than the one that captured
 * (the preload library's consumer): _intern() is the calling thread's part, the traceback's ref
 * (0 if the tables cannot grow; the thread's path and cache as zwi_tracer_add() leaves them);
 * _add_ref() records the block with that ref (0, or -1 if the tables cannot grow). The ref must
 * be of the tracer's current generation: no zwi_tracer_clear() in between. */
ZW_HIDDEN uint32_t zwi_tracer_intern(zwi_tracer *t, const uintptr_t *frames, unsigned nframe,
                                     unsigned total_nframe);
/* The ref of a traceback the calling thread's allocation site gave last (its memo), or 0: what
 * zwi_tracer_intern() finds without reading anything shared, nothing made or changed. */
ZW_HIDDEN uint32_t zwi_tracer_intern_memo(zwi_tracer *t, const uintptr_t *frames, unsigned nframe,
                                          unsigned total_nframe);
ZW_HIDDEN int zwi_tracer_add_ref(zwi_tracer *t, unsigned domain, uintptr_t ptr, size_t size,
                                 uint32_t ref);
/* Fault injection, for tests: the tracer's request number `n` from now fails (0 = the next one),
 * once; -1 switches it off. Requests are the tracer's page requests (tables, thread states, the
 * tracer itself, a table's doubling in place) and each new traceback; process-wide. */
ZW_HIDDEN void zwi_tracer_fail_nth(long n);
/* True if a request failed on purpose since the last zwi_tracer_fail_nth() call. */
ZW_HIDDEN bool zwi_tracer_fault_fired(void);
/* Removes the trace of (domain, ptr), copying it to `old` (may be NULL); false if none. */
ZW_HIDDEN bool zwi_tracer_remove(zwi_tracer *t, unsigned domain, uintptr_t ptr, zwi_trace_rec *old);
/* Puts back a trace removed by zwi_tracer_remove() (a realloc that failed). */
ZW_HIDDEN int zwi_tracer_restore(zwi_tracer *t, uintptr_t ptr, const zwi_trace_rec *rec);
/* Copies the trace of (domain, ptr) to `out`; false if none. */
ZW_HIDDEN bool zwi_tracer_lookup(zwi_tracer *t, unsigned domain, uintptr_t ptr, zwi_trace_rec *out);
/* Starts loading the table slot where block `ptr` of the default domain is, or would go, into the
 * cache, without waiting for it: called as soon as the address is known, a record or a removal
 * that comes a little later finds it there. No lock, no effect on the tables (a slot a concurrent
 * grow frees is only read if it is still mapped: prefetches never fault). */
ZW_HIDDEN void zwi_tracer_prefetch(const zwi_tracer *t, uintptr_t ptr);
/* The frames of traceback `ref` (of the current generation), most recent first, copied into
 * `frames`, which has room for zwi_tracer_nframe(t); returns their number and stores the frames
 * that were on the stack in *total (capped at 65535). No lock: the tree's nodes never change
 * once made, until clear or free. */
ZW_HIDDEN unsigned zwi_tracer_tb(const zwi_tracer *t, uint32_t ref, uintptr_t *frames,
                                 unsigned *total);

ZW_HIDDEN void zwi_tracer_clear(zwi_tracer *t);
ZW_HIDDEN void zwi_tracer_traced_memory(zwi_tracer *t, size_t *current, size_t *peak);
ZW_HIDDEN void zwi_tracer_reset_peak(zwi_tracer *t);
/* Bytes the tracer maps now: tables, tracebacks, symbol cache. */
ZW_HIDDEN size_t zwi_tracer_memory(zwi_tracer *t);
/* Live traces, distinct tracebacks and the prefix tree's nodes, for the benchmark's
 * bytes-per-block figure; the bytes of the trace tables and of the tracebacks' store. */
ZW_HIDDEN void zwi_tracer_counts(zwi_tracer *t, size_t *traces, size_t *tracebacks, size_t *nodes,
                                 size_t *table_bytes, size_t *traceback_bytes);

/* For tests: the bytes of each shard's slice (the room it doubles in place in) in the tracers made
 * from now on, a power of two from 4096 (default 256 MiB); 0 for no slices (the tables are then
 * mappings of their own, as under an address space limit). */
ZW_HIDDEN void zwi_tracer_slice_next(size_t bytes);
/* How many of its tables (shards, parts of the tables of ids) the tracer has doubled in place,
 * their old pages kept (engine.c, table_double), rather than in a new mapping; in *remapped (may
 * be NULL) how many of those by mremap, the others where they were, in their slices. */
ZW_HIDDEN size_t zwi_tracer_doubled_in_place(zwi_tracer *t, size_t *remapped);

/* Calls fn(ctx, rec) for every trace, one shard at a time under its lock (fn must not call
 * the tracer). Returns the first non-zero value fn returned, or 0. */
ZW_HIDDEN int zwi_tracer_foreach(zwi_tracer *t, int (*fn)(void *ctx, const zwi_trace_rec *rec),
                                 void *ctx);

/* The same for the traces of one domain, with each block's address (the leak scan's input). */
ZW_HIDDEN int zwi_tracer_foreach_block(zwi_tracer *t, unsigned domain,
                                       int (*fn)(void *ctx, uintptr_t ptr, const zwi_trace_rec *rec),
                                       void *ctx);

/* For the preload library (src/preload): the peak as last recorded (a relaxed read, no lock:
 * cheap enough to test on every allocation), and every lock of the tracer and of the thread
 * registry taken and released around fork() so that the child inherits none held. */
ZW_HIDDEN int64_t zwi_tracer_peak_hint(const zwi_tracer *t);
/* From now on the traced bytes and their peak count the default domain only: the preload
 * library's other domain (mmap) is counted apart. Called once, before the first trace. */
ZW_HIDDEN void zwi_tracer_count_default_only(zwi_tracer *t);
ZW_HIDDEN void zwi_tracer_lock_all(zwi_tracer *t);
ZW_HIDDEN void zwi_tracer_unlock_all(zwi_tracer *t);
/* A batch of the calling thread, for a thread applying records in runs (the preload library's
 * bookkeeping thread): until zwi_tracer_batch_end it keeps each shard lock it takes rather than
 * taking it again for each record (other threads wait for the batch's end to read or change that
 * shard), and changes the traced bytes and their peak with a load and a store. The caller
 * promises that no other thread adds or removes traces of the default domain meanwhile; no
 * clear() or lock_all() on this thread in a batch. */
ZW_HIDDEN void zwi_tracer_batch_begin(zwi_tracer *t);
ZW_HIDDEN void zwi_tracer_batch_end(zwi_tracer *t);
/* For tests: the shard (of 64) a block of the default domain at `ptr` is kept in. */
ZW_HIDDEN size_t zwi_tracer_shard_of(uintptr_t ptr);

/* ---- per-thread state ---- */

/* > 0 while this thread runs inside the tracer or under a wrapper: allocations it makes then are
 * not traced (tracemalloc's reentrant flag). initial-exec: reading it never calls into the
 * dynamic loader, which may allocate. */
extern _Thread_local unsigned zwi_trace_guard __attribute__((tls_model("initial-exec")));

#define ZWI_CHAIN_CAP 512 /* frame records past the limit a thread keeps (24 KiB) */

/* The frame-pointer chain a thread's last capture walked, so that the next one checks it instead
 * of walking it again (zwi_capture_tail). A walk is a function of the words it read: each record
 * r visited (r[1] its return address, r[0] the next record) and how it ended. So once a walk
 * reaches a record of the last walk, the rest of the chain is the last walk's for as long as each
 * record still holds the two words it was read as: compares that do not depend on each other,
 * several times cheaper per frame than following the chain, whose loads do. Nothing is patched.
 *   rec[0..n): the records, root first (addresses decreasing): rec[k].at the record's address,
 *   rec[k].want the two words it held, the next record's address (rec[k - 1].at for k > 0; for
 *   rec[0], what ended the walk) and the return address; except that the walk ended at rec[0]
 *   on its return address below 4096 (not a frame) if `low`: then only want[1] was read. */
typedef struct zwi_chain {
    uintptr_t hi; /* the stack bound the records were walked under (another: none kept) */
    unsigned n;   /* 0: no walk kept (none yet, or one longer than ZWI_CHAIN_CAP) */
    bool low;
    struct zwi_chain_rec {
        _Alignas(16) uintptr_t want[2]; /* one 16-byte compare checks a record */
        uintptr_t at;
    } rec[ZWI_CHAIN_CAP];
    uintptr_t wrec[ZWI_CHAIN_CAP]; /* the walk under way, newest first, until it is kept */
    uintptr_t wret[ZWI_CHAIN_CAP];
} zwi_chain;

/* The return addresses of the chain from record `fp` on, at most `limit` (chain.c): the tail of
 * a walk whose frames past its limit are only counted. `lo` and `hi` bound the records as in
 * zwi_capture_from(). `c` is the calling thread's; one walk at a time uses it (the tracer's
 * guard). */
ZW_HIDDEN unsigned zwi_capture_tail(zwi_chain *c, const uintptr_t *fp, uintptr_t lo, uintptr_t hi,
                                    unsigned limit);
/* ZW_UNWIND=check:N (set by the preload library before its first walk; 0, off, by default): every
 * Nth count of zwi_capture_tail() is compared with a plain walk's, and a difference aborts the
 * program; zwi_capture_checked counts the counts that agreed. */
ZW_HIDDEN extern unsigned zwi_capture_check_every;
ZW_HIDDEN extern atomic_uint zwi_capture_checked;

#define ZWI_TB_CACHE 4096 /* entries of a thread's traceback cache (a power of two; 64 KiB) */
#define ZWI_SITE_BITS 6  /* log2 of the entries of a thread's per-site memo */
#define ZWI_SITE_FRAMES 32 /* frames of a traceback the per-site memo keeps (64 x 272 bytes) */

/* A thread's state, pages of its own, made on the thread's first traced allocation and
 * unmapped when the thread exits. The traceback part (path, cache) holds node ids and refs of
 * the tracer generation `gen` only: a thread that sees another generation empties it first, so
 * no entry is ever compared across a clear(). It is read and written by its thread alone. */
typedef struct zwi_thread {
    uintptr_t stack_lo; /* the thread's stack: frame pointers outside [lo, hi) end a walk */
    uintptr_t stack_hi;
    struct zwi_thread *reg_next; /* the registry of live threads' states (engine.c) */
    struct zwi_thread *reg_prev;
    uint64_t gen; /* the tracer generation of path, memo and ends (0: none yet) */
    /* the path of the traceback this thread interned last, from the outermost frame: ret[k] the
     * return address at depth k, node[k] the tree's node of ret[0..k], for k < path_n. The next
     * traceback's outer frames are compared with it, each shared one costs a compare; path_ref
     * is the traceback of path_n frames and path_total on the stack */
    unsigned path_n;
    unsigned path_total; /* UINT_MAX: path_ref is no traceback's */
    uint32_t path_ref;
    uint32_t path_node[ZW_TRACE_MAX_NFRAME];
    uintptr_t path_ret[ZW_TRACE_MAX_NFRAME];
    /* recently interned tracebacks by hash, with their innermost node and sizes: a hit skips
     * the intern lock and the traceback table (its inner frames, those the path lacks, are
     * checked against the tree) */
    struct zwi_tbcache {
        uint32_t hash; /* 0: empty */
        uint32_t ref;
        uint32_t node;   /* the traceback's innermost frame's node */
        uint16_t nframe; /* its frames kept */
        uint16_t total;  /* its frames on the stack, capped at 65535 */
    } cache[ZWI_TB_CACHE];
    /* the traceback each allocation site (first frame) gave last in this thread with at most
     * ZWI_SITE_FRAMES frames, and those frames: an interpreter's allocation sites repeat their
     * whole traceback far more often than consecutive allocations do (python3.11 building
     * strings: 0.04% of allocations have the traceback of the one before, though they share 82%
     * of their frames with it), and a compare of frames here reads nothing shared */
    struct zwi_tbsite {
        uintptr_t pc;
        uint32_t ref; /* 0: empty */
        uint16_t n;
        uint16_t total;
        uintptr_t frames[ZWI_SITE_FRAMES];
    } site[1u << ZWI_SITE_BITS];
    /* where a wrapper captures frames (the guard keeps one capture per thread at a time): a
     * buffer on the stack would put 8 KiB between the caller's frames and the tracer's */
    uintptr_t frames[ZW_TRACE_MAX_NFRAME + 16];
    zwi_chain chain; /* the last frame-pointer walk (zwi_capture) */
} zwi_thread;

extern _Thread_local zwi_thread *zwi_trace_self __attribute__((tls_model("initial-exec")));

/* This thread's state, made on first use; NULL if it cannot be mapped. */
ZW_HIDDEN zwi_thread *zwi_thread_make(void);

static inline zwi_thread *
zwi_thread_get(void)
{
    zwi_thread *self = zwi_trace_self;
    return ZW_LIKELY(self != NULL) ? self : zwi_thread_make();
}

/* ---- frame capture: walking the frame-pointer chain ---- */

/* The walk of zwi_capture() from frame record `fp`, the chain kept in `c`; records outside
 * [fp, hi) end it. */
static inline __attribute__((always_inline)) unsigned
zwi_capture_from(zwi_chain *c, const uintptr_t *fp, uintptr_t hi, unsigned skip, uintptr_t *out,
                 unsigned max, unsigned *total)
{
    uintptr_t lo = (uintptr_t)fp;
    unsigned n = 0;
    unsigned depth = 0;
    /* hi - fp, not fp + 16 <= hi: a frame pointer near the top of the address space (code
     * without frame pointers leaves any value in rbp, -16 for one) must not wrap past the test */
    while ((uintptr_t)fp >= lo && (uintptr_t)fp < hi &&
           hi - (uintptr_t)fp >= 2 * sizeof(uintptr_t) &&
           ((uintptr_t)fp & (sizeof(uintptr_t) - 1)) == 0) {
        uintptr_t ret = fp[1];
        if (ret < 4096)
            break;
        if (depth >= skip) {
            if (n == max) { /* the rest is only counted: checked where the last walk's holds */
                n += zwi_capture_tail(c, fp, lo, hi, 65535 + skip - depth);
                break;
            }
            out[n++] = ret;
        }
        if (++depth >= 65535 + skip)
            break;
        const uintptr_t *next = (const uintptr_t *)fp[0];
        if (next <= fp)
            break;
        fp = next;
    }
    *total = n;
    return n < max ? n : max;
}

/* Walks the frame-pointer chain from the frame of the function this is inlined into (which must
 * keep a frame: src/trace is built with -fno-omit-frame-pointer). Skips `skip` return addresses
 * (the wrappers between the caller and here), stores at most `max` in `out`, most recent first,
 * and counts the whole chain in *total (capped at 65535). A frame pointer that leaves the
 * thread's stack, goes down or is misaligned ends the walk: code built without frame pointers
 * ends it early, never makes it read outside the stack. Returns the number stored. The frames
 * past `max` are counted from the thread's last walk where the stack still holds it
 * (zwi_capture_tail): a deep stack costs a compare per frame there, not a walk. */
static inline __attribute__((always_inline)) unsigned
zwi_capture(zwi_thread *th, unsigned skip, uintptr_t *out, unsigned max, unsigned *total)
{
    return zwi_capture_from(&th->chain, __builtin_frame_address(0), th->stack_hi, skip, out, max,
                            total);
}

/* How many of the outermost frames of `frames` (n, innermost first) are path[0, that) (outermost
 * first), at most m <= n: four compares to a branch while they agree (a traceback of cc1plus
 * shares 18 of its 22 frames with the one before). */
static inline __attribute__((always_inline)) unsigned
zwi_shared_outer(const uintptr_t *path, const uintptr_t *frames, unsigned n, unsigned m)
{
    unsigned d = 0;
    while (d + 4 <= m &&
           ((path[d] ^ frames[n - 1 - d]) | (path[d + 1] ^ frames[n - 2 - d]) |
            (path[d + 2] ^ frames[n - 3 - d]) | (path[d + 3] ^ frames[n - 4 - d])) == 0)
        d += 4;
    while (d < m && path[d] == frames[n - 1 - d])
        d++;
    return d;
}

/* ---- helpers (util.c): memory from a raw door, strings, maps, byte buffers: trace_util.h ---- */

/* ---- symbols (symbols.c) ---- */

/* A resolved frame. Strings are owned by the symboliser (valid until it is freed). */
typedef struct zwi_sym {
    const char *file; /* NULL without line info */
    unsigned line;
    const char *function; /* NULL if unknown */
    const char *module;   /* NULL if the address is in no known module */
    const char *build_id; /* the module's GNU build-id in hex, NULL if none */
    uint64_t bias;        /* the module's load bias */
    uint64_t offset;      /* address - module bias */
    bool inlined;
} zwi_sym;

typedef struct zwi_symbolizer zwi_symbolizer;

/* A return address may carry a tag in its top bits: the number of modules unloaded, before it was
 * taken, from where its code lies (0: the first module mapped there). The symboliser resolves it
 * in the module that was mapped there then (zwi_symbolizer_add_unloaded). */
#define ZWI_FRAME_TAG_SHIFT 48

ZW_HIDDEN zwi_symbolizer *zwi_symbolizer_new(void);
ZW_HIDDEN void zwi_symbolizer_free(zwi_symbolizer *s);
/* Notes a module the process unloaded: its file, load bias and code [lo, hi). Called in the order
 * they were unloaded, before the first zwi_symbolize(). 0, or -1 if out of memory. */
ZW_HIDDEN int zwi_symbolizer_add_unloaded(zwi_symbolizer *s, const char *path, uintptr_t base,
                                          uintptr_t lo, uintptr_t hi);
/* The frames of return address `ret` (inlined ones first); *n of them. Cached per address;
 * the module map is read again when an address falls in no known module. NULL if out of
 * memory. Valid until the symboliser is freed. */
ZW_HIDDEN const zwi_sym *zwi_symbolize(zwi_symbolizer *s, uintptr_t ret, size_t *n);
ZW_HIDDEN size_t zwi_symbolizer_memory(const zwi_symbolizer *s);
/* The symbol-table name of the function holding `pc` (not a return address: no -1), or NULL;
 * what zwi_symbolize() names a frame without DWARF. */
ZW_HIDDEN const char *zwi_symbolizer_function(zwi_symbolizer *s, uintptr_t pc);

/* ---- snapshots (snapshot.c) ---- */

/* A frame of a snapshot: stored once per snapshot (frames are compared by pointer there). */
typedef struct zwi_frame {
    zw_frame pub;           /* first: a zw_frame * of a snapshot points here */
    uint32_t index;         /* in zw_snapshot.frames */
    uint64_t hash;          /* of every field */
    struct zwi_frame *next; /* same hash bucket of zw_snapshot.frame_map */
} zwi_frame;

struct zw_traceback {
    const zw_frame **frames; /* oldest first */
    uint32_t nframe;
    uint32_t total_nframe;
    uint32_t index;            /* in zw_snapshot.tbs; UINT32_MAX for a statistics key */
    uint64_t hash;             /* of the frame pointers and total_nframe */
    struct zw_traceback *next; /* same hash bucket of zw_snapshot.tb_map */
    zw_snapshot *standalone;   /* zw_trace_get_traceback(): the snapshot freed with it */
};

typedef struct zwi_trace {
    uint32_t domain;
    uint32_t tb; /* index in zw_snapshot.tbs */
    uint64_t size;
} zwi_trace;

/* A module frames of the snapshot point into. */
typedef struct zwi_module {
    const char *path;     /* as frames' `module` */
    const char *build_id; /* lower-case hex, NULL if none */
    uint64_t bias;        /* load bias when captured (0 when not known) */
} zwi_module;

/* Between calls: every traceback's frames are frames of this snapshot, every trace's tb is a
 * valid index, every string is in `strs`. */
struct zw_snapshot {
    zw_raw *raw; /* everything below lives in it */
    unsigned traceback_limit;
    zwi_strtab strs;
    zwi_frame **frames; /* nframes, by index */
    size_t nframes;
    size_t cap_frames;
    zwi_map frame_map;  /* hash -> zwi_frame chain */
    zw_traceback **tbs; /* ntbs, by index */
    size_t ntbs;
    size_t cap_tbs;
    zwi_map tb_map; /* hash -> traceback chain */
    zwi_trace *traces;
    size_t ntraces;
    size_t cap_traces;
    zwi_module *modules;
    size_t nmodules;
    size_t cap_modules;
};

/* The snapshot's copy of `f` (strings interned), NULL if out of memory. */
ZW_HIDDEN zwi_frame *zwi_snapshot_frame(zw_snapshot *snap, const zw_frame *f);
/* The snapshot's traceback of these frames (oldest first, frames of this snapshot). */
ZW_HIDDEN zw_traceback *zwi_snapshot_traceback(zw_snapshot *snap, const zw_frame **frames, size_t n,
                                               size_t total_nframe);
ZW_HIDDEN int zwi_snapshot_push(zw_snapshot *snap, unsigned domain, uint64_t size,
                                const zw_traceback *tb);
ZW_HIDDEN int zwi_snapshot_add_module(zw_snapshot *snap, const char *path, const char *build_id,
                                      uint64_t bias);

/* A snapshot under construction from a tracer: made by zwi_snapshot_from_tracer(). */
/* An empty snapshot whose blocks come from `raw`, which it owns from now on (destroyed with it,
 * or at once if it cannot be made: NULL then). */
ZW_HIDDEN zw_snapshot *zwi_snapshot_new_on(unsigned traceback_limit, zw_raw *raw);
/* Destroys the door of a snapshot made on one whose memory goes all at once (an arena's, unmapped
 * right after), leaving its blocks to that: zw_snapshot_free() without giving back each block
 * (cc1plus's table at exit: 95k tracebacks, 7 ms of the end). */
ZW_HIDDEN void zwi_snapshot_abandon(zw_snapshot *snap);
ZW_HIDDEN zw_snapshot *zwi_snapshot_from_tracer(zwi_tracer *t, zwi_symbolizer *sym, zw_error *err);
/* One traceback of a tracer as a standalone traceback (zw_trace_get_traceback()). */
ZW_HIDDEN zw_traceback *zwi_traceback_from_tracer(zwi_tracer *t, zwi_symbolizer *sym, uint32_t ref);


/* A snapshot of the given records of a tracer (the preload library's peak, mark and site sets),
 * symbolised with `sym`; NULL with an error if out of memory. */
/* A snapshot holding, for each trace i of `sites` with blocks[i] > 0, blocks[i] traces of its
 * traceback whose sizes sum to bytes[i] (zw_capture_live_at). */
ZW_HIDDEN zw_snapshot *zwi_snapshot_spread(const zw_snapshot *sites, const int64_t *blocks,
                                           const int64_t *bytes, zw_error *err);
ZW_HIDDEN zw_snapshot *zwi_snapshot_from_recs(zwi_tracer *t, zwi_symbolizer *sym,
                                              const zwi_trace_rec *recs, size_t n, zw_error *err);
/* A capture's shared tables (capture_format.c's TABLE): `snap`'s strings, modules, frames and
 * tracebacks without its traces, appended to `b`; and the snapshot read back from them, with no
 * traces (NULL: the cursor's failure says why). */
ZW_HIDDEN void zwi_snapshot_encode_tables(const zw_snapshot *snap, zwi_cbuf *b);
struct zwi_cursor;
ZW_HIDDEN zw_snapshot *zwi_snapshot_decode_tables(struct zwi_cursor *c);
/* The same tables in the packed form of a capture's TABLE (1.6: capture_format.c writes it). */
ZW_HIDDEN zw_snapshot *zwi_snapshot_decode_packed_tables(struct zwi_cursor *c);
/* Copies `snap`'s modules and tracebacks into `table` (each traceback once: a traceback already
 * there is shared); index[i] is then the index in `table` of snap's traceback i. 0 or -1 (out of
 * memory). */
ZW_HIDDEN int zwi_snapshot_absorb(zw_snapshot *table, const zw_snapshot *snap, uint32_t *index);
/* A new snapshot of `n` traces whose tracebacks are `table`'s, with table's modules that its
 * frames name: trace i is (domains[i] or the default domain when domains is NULL, tbs[i],
 * sizes[i]). Every tbs[i] must be below table's traceback count. NULL if out of memory. */
ZW_HIDDEN zw_snapshot *zwi_snapshot_select(const zw_snapshot *table, const uint32_t *domains,
                                           const uint32_t *tbs, const uint64_t *sizes, size_t n);
ZW_HIDDEN size_t zwi_snapshot_ntracebacks(const zw_snapshot *snap);
/* A capture's table (a snapshot with no traces) filled from a tracer: each tracer traceback is
 * symbolised and added the first time zwi_table_builder_index() asks for it, which returns its
 * index in the table (-1: out of memory). The builder's memory is the table's. */
typedef struct zwi_table_builder zwi_table_builder;
ZW_HIDDEN zwi_table_builder *zwi_table_builder_new(zw_snapshot *table, zwi_tracer *t,
                                                   zwi_symbolizer *sym);
ZW_HIDDEN int64_t zwi_table_builder_index(zwi_table_builder *tb, uint32_t ref);
ZW_HIDDEN void zwi_table_builder_free(zwi_table_builder *tb);
/* The frames' indices of the table's tracebacks [0, *ntbs) the builder made, one traceback after
 * the other, and in *shape two numbers each, its frames kept and its frames in all
 * (zwi_encode_table_packed_with); *ntbs is short of the table's count if some were made
 * elsewhere. Valid until the builder converts again or is freed. */
ZW_HIDDEN const uint32_t *zwi_table_builder_frame_indices(const zwi_table_builder *tb,
                                                          size_t *ntbs, const uint32_t **shape);

/* The bytes of a snapshot file of `snap` (as zw_snapshot_dump writes) in *data, allocated from
 * `raw` (free with zwi_free); 0, or -1 if out of memory. */
ZW_HIDDEN int zwi_snapshot_encode(const zw_snapshot *snap, zw_raw *raw, unsigned char **data,
                                  size_t *len);
/* A snapshot file embedded in another (a capture's live set): as zw_snapshot_load_memory(), the
 * message without its "cannot read snapshot" prefix, for the caller to place. */
ZW_HIDDEN zw_snapshot *zwi_snapshot_decode(const void *data, size_t len, zw_error *err);
/* The traces of such an embedded file, without its tables (which are neither decompressed nor
 * checked, nor the traceback indices against them): fn(ctx, domain, size) for each, in order.
 * 0, or -1 with a message as zwi_snapshot_decode() gives (fn may have been called before). */
ZW_HIDDEN int zwi_snapshot_each_trace(const void *data, size_t len,
                                      void (*fn)(void *ctx, uint32_t domain, uint64_t size),
                                      void *ctx, zw_error *err);

#endif /* ZW_TRACE_INTERNAL_H */
