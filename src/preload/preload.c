/* preload/preload.c - libzwpreload.so: interposes the malloc family of an unmodified program (set
 * in LD_PRELOAD, as `zw run` does), feeds every block to the trace engine (src/trace/engine.c) in
 * domain 0, and streams a capture file (docs/format.md#captures) while the program runs.
 *
 *   bootstrap: until dlsym(RTLD_NEXT, ...) has found the real functions, blocks come from a static
 *              arena (G.boot); freeing one of them does nothing
 *   hook:      guard up -> the real function -> record (frames, counters, site, peak) -> guard down
 *   sampler:   a thread wakes every ZW_INTERVAL_MS, takes a sample (heap bytes and blocks, RSS,
 *              the running totals) and appends it to the file as a SERIES section, with the
 *              sites whose live bytes changed since the last sample (a SITE_DELTAS section)
 *   finish:    at exit(), _exit(), a fatal signal: the live sets (peak, marks, exit) symbolised,
 *              the sites, the totals and END appended; runs once per process
 *
 * Reentrancy: the engine's per-thread guard (zwi_trace_guard, initial-exec TLS) is this library's
 * depth counter too: a hook that finds it up forwards to the real function untraced, so the
 * engine, the symboliser and the sampler allocate through malloc without being traced.
 * All mutable state is the one struct G below; see docs/zw.md#how-it-works. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <unwind.h>

#include <zerowaste/capture.h>
#ifdef ZW_HAVE_LIBUNWIND
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#endif

#include "capture_format.h"

#define EXPORT          __attribute__((visibility("default")))
#define BOOT_SIZE       ((size_t)1 << 20) /* the bootstrap arena */
#define BOOT_HEADER     16                /* before each bootstrap block: its size */
#define SITE_REFS       ((size_t)1 << 26) /* traceback refs below this get per-site counters */
#define TS_PER_SLAB     63                /* thread counters per mapped slab */
#define PENDING_SAMPLES 256               /* samples held before the sampler must write */
#define DEFAULT_NFRAME  16
#define NOFP_RANGES     8   /* code ranges of libraries without frame pointers */
#define SKIP_CACHE      1024 /* entries of G.skip */
#define SKIP_SLOTS      64   /* stack words searched for a skipped return address */
#define MAX_MODULES     256  /* code ranges whose frame pointers are tracked */
#define FP_TRUSTED      4    /* agreements before a module's frame pointers are trusted */
#define MAX_MARK_SETS   256 /* marks that keep a copy of the live set; later ones time and bytes */
#define DEFAULT_OUTPUT  "zw.%p.zwc"
#define PEAK_MIN_STEP   ((int64_t)1) /* a new peak set needs +1% and at least this many bytes */

/* ---- the one struct of mutable state ---- */

/* One thread's counters: written by that thread only (relaxed atomics), summed by any reader.
 * Never freed: the counts of exited threads stay in the totals. */
typedef struct tstats {
    _Alignas(64) _Atomic uint64_t allocs;
    _Atomic uint64_t frees;
    _Atomic uint64_t temps;
    _Atomic uint64_t bytes;
    void *last; /* the thread's last allocation, until this thread frees any block (temporary) */
    struct tstats *next; /* G.threads list */
} tstats;

/* Per-site counters, indexed by traceback ref; written by every thread (atomic adds). Live blocks
 * of the site = count - freed, live bytes = bytes - freed_bytes (modulo 2^64: in a fork child,
 * whose counts start at 0 while its parent's blocks stay live, `freed` starts below zero). */
typedef struct site {
    _Atomic uint64_t count;       /* allocations made here */
    _Atomic uint64_t bytes;       /* bytes allocated here */
    _Atomic uint64_t freed;       /* blocks allocated here and freed since */
    _Atomic uint64_t freed_bytes; /* their bytes */
    _Atomic uint64_t temps;       /* temporary allocations made here */
} site;

/* What the sampler last wrote of a site (SITE_DELTAS): the sampler's own, under G.scan_lock. */
typedef struct site_shown {
    uint64_t blocks;
    uint64_t bytes;
    bool mentioned; /* a delta of this site was written: SITES must list it */
} site_shown;

#define DIRTY_SHIFT 12 /* one summary byte per 4096 refs */

/* A kept live set: the records of the tracer at one moment (symbolised only at finish). */
typedef struct liveset {
    zwi_trace_rec *recs;
    size_t n;
    size_t cap;
    uint64_t time_ns;
    uint64_t bytes;
    char label[64];
    bool kept;            /* a mark's records were copied (see MAX_MARK_SETS) */
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
} real_fns;

/* The library's state. "Constructor" fields are written by preload_start() (and again by
 * fork_child(), in a child that has one thread) before `active` is set, and only read after. */
static struct {
    real_fns real;         /* written once by resolve() before `ready`; read-only after */
    atomic_bool ready;     /* atomic: release-stored once `real` is complete */
    atomic_bool resolving; /* atomic: dlsym() is running, its allocations come from `boot` */
    struct {
        _Alignas(16) unsigned char bytes[BOOT_SIZE];
        atomic_size_t used; /* atomic bump pointer; blocks are never reused */
    } boot;

    zwi_tracer *tracer;   /* constructor; the engine guards its own tables */
    atomic_bool active;   /* atomic: hooks record while set; cleared by finish() and fork */
    atomic_bool finished; /* atomic exchange: finish() runs once (set in an unfollowed child) */
    unsigned nframe;      /* constructor: traceback limit, from ZW_NFRAME */
    unsigned interval_ms; /* constructor: sampling interval, from ZW_INTERVAL_MS */
    bool follow_fork;     /* constructor: ZW_FOLLOW_FORK=1, a fork child writes its capture */
    uint64_t start_ns;    /* constructor: CLOCK_MONOTONIC at start */
    uint64_t start_real;  /* constructor: CLOCK_REALTIME at start */
    pid_t pid;            /* constructor: the process the capture is of; a vfork child (another
                           * pid sharing this memory) must not finish it */
    zw_raw *raw;          /* constructor; what it allocates is used under `lock` only */

    site *sites;               /* constructor (NULL: none kept); entries are atomic counters */
    atomic_uint site_max;      /* atomic (CAS): the largest ref counted */
    /* Sites changed since the sampler last looked: a writer updates the site's counters, then
     * sets dirty[ref] and summary[ref >> DIRTY_SHIFT] (seq_cst, skipped when already set); the
     * sampler clears a summary byte, then each dirty byte of its block, then reads the counters.
     * Either the writer sees the cleared byte and sets it again, or the sampler sees its counts. */
    _Atomic unsigned char *dirty;   /* constructor, SITE_REFS bytes (NULL with sites) */
    _Atomic unsigned char *summary; /* constructor, SITE_REFS >> DIRTY_SHIFT bytes */
    site_shown *shown;              /* constructor, SITE_REFS entries; under `lock` */
    int64_t _Atomic peak_next; /* atomic: a peak this large saves a peak set; stored under `lock` */

    pthread_mutex_t lock; /* guards the fields below it up to `npending` */
    liveset peak;         /* the live set at the last saved peak */
    liveset *marks;       /* zw_mark() sets, newest first */
    size_t nmark_sets;    /* marks whose live set was copied */
    int fd;               /* the capture file, -1 if it could not be made or writing failed */
    char path[4096];      /* its name */
    dev_t file_dev;       /* the file `fd` must still be, checked before each write */
    ino_t file_ino;
    zw_capture_sample pending[PENDING_SAMPLES]; /* samples not yet written */
    size_t npending;
    zwi_cbuf steps;    /* SITE_DELTAS records not yet written */
    size_t nsteps;     /* their number */
    bool steps_broken; /* a step could not be stored: the steps written are not the whole story */

    zwi_lock ts_lock; /* guards `threads`, `slab` and `slab_used` */
    tstats *threads;  /* every thread's counters (each written by its thread, atomically) */
    tstats *slab;     /* the current slab of TS_PER_SLAB counters */
    size_t slab_used;

    pthread_t sampler;        /* written by start_sampler() only, before the thread runs */
    bool sampler_on;          /* start_sampler() and stop_sampler(): the exit path, one thread */
    atomic_bool stop;         /* atomic: asks the sampler to return */
    int mark_signal;          /* constructor: ZW_MARK_SIGNAL's number, 0 if none */
    atomic_uint signal_marks; /* atomic: marks asked for by that signal, taken by the sampler */
    atomic_int async_signal;  /* atomic: an asynchronous signal asks the sampler to finish */
    atomic_int deferred_signal; /* atomic: one that landed inside a hook, served on leaving it */
    int wake[2];              /* constructor: a pipe whose write end wakes the sampler */
    atomic_bool written;      /* atomic: finish() has written the end of the capture */
    struct pc_range {
        uintptr_t lo, hi;
    } nofp[NOFP_RANGES]; /* constructor: code of libc and libstdc++ (no frame pointers) */
    /* Return addresses into runtime functions that keep the caller's rbp (operator new, strdup):
     * pc << 16 | (slot + 1), slot being where the function's own return address lies, in words
     * above the hook's CFA. Direct-mapped by pc; learnt by unwind_dwarf(), any thread (atomic
     * word: a reader sees a whole entry or none). */
    _Atomic uint64_t skip[SKIP_CACHE];
    /* The code of every module loaded at start (executable segments): whether its functions
     * keep frame pointers, learnt from the unwinder. fp: 0 not known; k > 0: k walks agreed;
     * -1: one did not (sticky). Trusted from FP_TRUSTED agreements. */
    struct module_range {
        uintptr_t lo, hi;
        atomic_int fp;
    } mods[MAX_MODULES];
    unsigned nmods; /* constructor */
    unsigned nnofp;      /* constructor */
    char cmdline[4096];  /* constructor: /proc/self/cmdline, NUL-separated */
    size_t cmdline_len;  /* constructor */
} G = {.lock = PTHREAD_MUTEX_INITIALIZER, .fd = -1, .wake = {-1, -1}};

/* Signals sent from outside (^C, kill, a closed terminal): they may land while the thread holds a
 * lock of malloc or of the engine, so the handler does not write: it asks the sampler thread
 * (which never receives them) to, waits for it at most ASYNC_WAIT_MS, then dies of the signal's
 * default action. If the sampler cannot finish in time (a lock held by the interrupted thread),
 * the capture keeps what was streamed and loads as incomplete. */
static const int async_signals[] = {SIGINT, SIGTERM, SIGHUP};
#define ASYNC_WAIT_MS 5000

static void finish(uint32_t end, int code);

/* This thread's counters, or NULL before its first traced allocation. initial-exec: reading it
 * never enters the dynamic loader, which may call malloc. */
static _Thread_local tstats *my_stats __attribute__((tls_model("initial-exec")));

/* ---- bootstrap ---- */

static void *
boot_alloc(size_t n, size_t align)
{
    if (align < 16)
        align = 16;
    for (;;) {
        size_t used = atomic_load(&G.boot.used);
        size_t start = (used + BOOT_HEADER + align - 1) & ~(align - 1);
        if (start + n > BOOT_SIZE || n > BOOT_SIZE)
            return NULL;
        if (atomic_compare_exchange_weak(&G.boot.used, &used, start + n)) {
            memcpy(G.boot.bytes + start - sizeof(size_t), &n, sizeof(size_t));
            return G.boot.bytes + start;
        }
    }
}

static inline bool
in_boot(const void *p)
{
    return (const unsigned char *)p >= G.boot.bytes &&
           (const unsigned char *)p < G.boot.bytes + BOOT_SIZE;
}

static size_t
boot_size(const void *p)
{
    size_t n;
    memcpy(&n, (const unsigned char *)p - sizeof(size_t), sizeof(size_t));
    return n;
}

/* Finds the real functions; false while dlsym() itself is running (then the caller serves the
 * request from the bootstrap arena). */
static bool
resolve(void)
{
    if (ZW_LIKELY(atomic_load_explicit(&G.ready, memory_order_acquire)))
        return true;
    if (atomic_exchange(&G.resolving, true))
        return false;
    real_fns r;
    r.malloc = dlsym(RTLD_NEXT, "malloc");
    r.free = dlsym(RTLD_NEXT, "free");
    r.calloc = dlsym(RTLD_NEXT, "calloc");
    r.realloc = dlsym(RTLD_NEXT, "realloc");
    r.posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
    r.aligned_alloc = dlsym(RTLD_NEXT, "aligned_alloc");
    r.memalign = dlsym(RTLD_NEXT, "memalign");
    r.valloc = dlsym(RTLD_NEXT, "valloc");
    r.pvalloc = dlsym(RTLD_NEXT, "pvalloc");
    r.malloc_usable_size = dlsym(RTLD_NEXT, "malloc_usable_size");
    r.exit_ = dlsym(RTLD_NEXT, "_exit");
    r.execve = dlsym(RTLD_NEXT, "execve");
    r.execvp = dlsym(RTLD_NEXT, "execvp");
    r.execvpe = dlsym(RTLD_NEXT, "execvpe");
    r.fexecve = dlsym(RTLD_NEXT, "fexecve");
    if (r.malloc == NULL || r.free == NULL || r.calloc == NULL || r.realloc == NULL ||
        r.memalign == NULL || r.exit_ == NULL) {
        static const char msg[] = "zw: preload: cannot find the real malloc functions\n";
        (void)!write(2, msg, sizeof(msg) - 1);
        abort();
    }
    G.real = r;
    atomic_store_explicit(&G.ready, true, memory_order_release);
    atomic_store(&G.resolving, false);
    return true;
}

/* ---- time, counters ---- */

static uint64_t
clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t
now_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC) - G.start_ns;
}

/* This thread's counters, made on first use (from a mapped slab: never through malloc). */
static tstats *
stats_make(void)
{
    zwi_lock_acquire(&G.ts_lock);
    if (G.slab == NULL || G.slab_used == TS_PER_SLAB) {
        void *p = mmap(NULL, TS_PER_SLAB * sizeof(tstats), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            zwi_lock_release(&G.ts_lock);
            return NULL;
        }
        G.slab = p;
        G.slab_used = 0;
    }
    tstats *ts = &G.slab[G.slab_used++];
    ts->next = G.threads;
    G.threads = ts;
    zwi_lock_release(&G.ts_lock);
    my_stats = ts;
    return ts;
}

static inline void
bump(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

typedef struct totals {
    uint64_t allocs, frees, temps, bytes;
} totals;

static totals
sum_stats(void)
{
    totals s = {0};
    zwi_lock_acquire(&G.ts_lock);
    for (tstats *ts = G.threads; ts != NULL; ts = ts->next) {
        s.allocs += atomic_load_explicit(&ts->allocs, memory_order_relaxed);
        s.frees += atomic_load_explicit(&ts->frees, memory_order_relaxed);
        s.temps += atomic_load_explicit(&ts->temps, memory_order_relaxed);
        s.bytes += atomic_load_explicit(&ts->bytes, memory_order_relaxed);
    }
    zwi_lock_release(&G.ts_lock);
    return s;
}

static uint64_t
rss_bytes(void)
{
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    unsigned long size, resident;
    if (sscanf(buf, "%lu %lu", &size, &resident) != 2)
        return 0;
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static zw_capture_sample
sample_now(void)
{
    size_t cur = 0;
    zwi_tracer_traced_memory(G.tracer, &cur, NULL);
    totals s = sum_stats();
    return (zw_capture_sample){now_ns(), cur,     s.allocs - s.frees, rss_bytes(),
                               s.allocs, s.frees, s.temps,            s.bytes};
}

/* ---- live sets ---- */

static int
copy_rec(void *ctx, const zwi_trace_rec *rec)
{
    liveset *set = ctx;
    if (set->n == set->cap) {
        /* mapped, not malloc'd: copying must not call the allocator of the shard we hold */
        size_t cap = set->cap ? 2 * set->cap : 4096;
        void *p = mmap(NULL, cap * sizeof(*rec), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return -1;
        if (set->n > 0)
            memcpy(p, set->recs, set->n * sizeof(*rec));
        if (set->recs != NULL)
            munmap(set->recs, set->cap * sizeof(*rec));
        set->recs = p;
        set->cap = cap;
    }
    set->recs[set->n++] = *rec;
    return 0;
}

/* Copies the tracer's records into `set` (which keeps its memory). */
static void
take_set_locked(liveset *set, uint64_t bytes)
{
    set->n = 0;
    set->time_ns = now_ns();
    set->bytes = bytes;
    if (zwi_tracer_foreach(G.tracer, copy_rec, set) != 0)
        set->n = 0;
}

static void push_sample_locked(zw_capture_sample s);

static void scan_sites_locked(uint64_t time_ns, uint32_t flags);

/* Saves the live set at a new peak of `bytes` (called when it passed G.peak_next): as a step of
 * the sites whose live blocks changed, flagged peak (a reader rebuilds the set from the steps),
 * or, when there are no steps, as a copy of the tracer's records. */
static __attribute__((noinline)) void
save_peak(int64_t bytes)
{
    if (pthread_mutex_trylock(&G.lock) != 0)
        return; /* another thread writes or saves: the next allocation tries again */
    if (bytes >= atomic_load(&G.peak_next) && atomic_load(&G.active)) {
        if (G.sites != NULL && !G.steps_broken) {
            G.peak.n = 0;
            G.peak.time_ns = now_ns();
            G.peak.bytes = (uint64_t)bytes;
            scan_sites_locked(G.peak.time_ns, ZWI_STEP_PEAK);
        } else {
            take_set_locked(&G.peak, (uint64_t)bytes);
        }
        int64_t step = bytes / 100 > PEAK_MIN_STEP ? bytes / 100 : PEAK_MIN_STEP;
        atomic_store(&G.peak_next, bytes + step);
        totals s = sum_stats();
        push_sample_locked((zw_capture_sample){G.peak.time_ns, (uint64_t)bytes, s.allocs - s.frees,
                                               rss_bytes(), s.allocs, s.frees, s.temps, s.bytes});
    }
    pthread_mutex_unlock(&G.lock);
}

/* ---- tracebacks through code without frame pointers ---- */

/* True if `pc` lies in the code of a library known to be built without frame pointers (G.nofp):
 * the frame-pointer walk from there skips its caller's frame. */
static inline bool
in_nofp(uintptr_t pc)
{
    for (unsigned i = 0; i < G.nnofp; i++) {
        if (pc - G.nofp[i].lo < G.nofp[i].hi - G.nofp[i].lo)
            return true;
    }
    return false;
}

/* The entry of G.mods holding `pc`, or NULL (code loaded later, generated code). */
static inline struct module_range *
module_of(uintptr_t pc)
{
    static _Thread_local unsigned last __attribute__((tls_model("initial-exec")));
    unsigned i = last;
    if (i < G.nmods && pc - G.mods[i].lo < G.mods[i].hi - G.mods[i].lo)
        return &G.mods[i];
    for (i = 0; i < G.nmods; i++) {
        if (pc - G.mods[i].lo < G.mods[i].hi - G.mods[i].lo) {
            last = i;
            return &G.mods[i];
        }
    }
    return NULL;
}

/* Is the frame-pointer chain through a function at `pc` to be trusted? 1 yes, 0 not known yet,
 * -1 no. Code outside the modules known at start keeps the old rule: trusted. */
static inline int
module_fp(uintptr_t pc)
{
    struct module_range *m = module_of(pc);
    if (m == NULL)
        return 1;
    int fp = atomic_load_explicit(&m->fp, memory_order_relaxed);
    return fp < 0 ? -1 : fp >= FP_TRUSTED;
}

/* One walk's evidence on the frame pointers of the module holding `pc`. */
static void
module_vote(uintptr_t pc, bool keeps)
{
    struct module_range *m = module_of(pc);
    if (m == NULL)
        return;
    int fp = atomic_load_explicit(&m->fp, memory_order_relaxed);
    if (fp >= 0 && fp < FP_TRUSTED + 1)
        atomic_store_explicit(&m->fp, keeps ? fp + 1 : -1, memory_order_relaxed);
    else if (fp >= 0 && !keeps)
        atomic_store_explicit(&m->fp, -1, memory_order_relaxed);
}

/* dl_iterate_phdr callback: notes the executable segments of every module (G.mods), and those of
 * the C and C++ runtime libraries, built without frame pointers (G.nofp). */
static int
note_nofp(struct dl_phdr_info *info, size_t size, void *arg)
{
    const char *name = info->dlpi_name;
    bool runtime = name != NULL &&
                   (strstr(name, "/libc.so") != NULL || strstr(name, "/libstdc++.so") != NULL);
    for (unsigned i = 0; i < info->dlpi_phnum && G.nmods < MAX_MODULES; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
            uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
            G.mods[G.nmods].lo = lo;
            G.mods[G.nmods].hi = lo + ph->p_memsz;
            atomic_store(&G.mods[G.nmods].fp, runtime ? -1 : 0);
            G.nmods++;
        }
    }
    if (!runtime)
        return 0;
    for (unsigned i = 0; i < info->dlpi_phnum && G.nnofp < NOFP_RANGES; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
            uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
            G.nofp[G.nnofp++] = (struct pc_range){lo, lo + ph->p_memsz};
        }
    }
    return 0;
}

typedef struct unwind_walk {
    uintptr_t *out;
    unsigned n;
    unsigned max;
    unsigned skip;      /* frames still to skip: ours, down to the hook's */
    uintptr_t stack_hi; /* the thread's stack ends there */
    uintptr_t prev_rbp; /* rbp in the frame recorded last, and its stack pointer */
    uintptr_t prev_sp;
    uintptr_t fp; /* set where the walk reached a frame that keeps a frame pointer: its rbp */
} unwind_walk;

static _Unwind_Reason_Code
unwind_step(struct _Unwind_Context *ctx, void *arg)
{
    unwind_walk *w = arg;
    uintptr_t ip = _Unwind_GetIP(ctx);
    if (ip == 0)
        return _URC_END_OF_STACK;
    uintptr_t rbp = _Unwind_GetGR(ctx, 6); /* DWARF register 6 */
    uintptr_t sp = _Unwind_GetCFA(ctx);    /* libgcc: this frame's stack pointer at the call */
    if (w->skip > 0) {
        w->skip--;
        w->prev_rbp = w->prev_sp = 0;
        return _URC_NO_REASON;
    }
    /* Did the frame recorded last keep a frame pointer? Then its rbp points at its frame record:
     * the return address into this frame, and this frame's rbp. */
    const uintptr_t *rec = (const uintptr_t *)w->prev_rbp;
    bool prev_keeps_fp = w->prev_rbp >= w->prev_sp && w->prev_sp != 0 &&
                         w->prev_rbp < w->stack_hi && w->stack_hi - w->prev_rbp >= 16 &&
                         (w->prev_rbp & 7) == 0 && rec[1] == ip && rec[0] == rbp;
    w->out[w->n++] = ip;
    if (w->n == 3 && in_nofp(w->out[0]) && !in_nofp(w->out[1]))
        module_vote(w->out[1], prev_keeps_fp); /* the runtime's caller: did it keep its rbp? */
    if (w->n >= w->max)
        return _URC_END_OF_STACK;
    if (prev_keeps_fp && w->n >= 2 && !in_nofp(w->out[w->n - 2])) {
        /* code that keeps frame pointers (as the program's, built with them): the chain goes on
         * from this frame's rbp by frame pointers, many times cheaper per frame than the
         * unwinder */
        w->fp = rbp;
        return _URC_END_OF_STACK;
    }
    w->prev_rbp = rbp;
    w->prev_sp = sp;
    return _URC_NO_REASON;
}

/* The frame-pointer walk found only the hook's caller, or the caller is in the C or C++ runtime:
 * code built without frame pointers (the C library's strdup, fopen, printf; libstdc++'s operator
 * new), whose caller the chain skips or loses. Walks the stack again with the DWARF unwinder
 * (libgcc's, which finds unwind tables through _dl_find_object: no lock, no malloc), slower but
 * complete. Keeps the frame-pointer result if the unwinder finds no more. Called from a hook only
 * (one hook frame to skip). */
static inline size_t
skip_index(uintptr_t pc)
{
    return (size_t)((pc * 0x9E3779B97F4A7C15u) >> 54) & (SKIP_CACHE - 1);
}

static __attribute__((noinline)) unsigned
unwind_dwarf(uintptr_t *frames, unsigned max, unsigned found, uintptr_t stack_hi,
             const uintptr_t *hook_fp, bool learn)
{
    uintptr_t first = frames[0];
    uintptr_t fp_next = found >= 2 ? frames[1] : 0; /* what the frame-pointer walk saw next */
    /* frames to skip: this function's, repair_walk_slow()'s and the hook's */
    unwind_walk w = {frames, 0, max, 3, stack_hi, 0, 0, 0};
#ifdef ZW_HAVE_LIBUNWIND
    if (!learn) {
        /* nothing to learn here: libunwind's unw_backtrace, which caches how to unwind each
         * return address it has seen, is several times faster than libgcc's unwinder */
        void *buf[ZW_TRACE_MAX_NFRAME + 3];
        int got = unw_backtrace(buf, (int)max + 3);
        for (int i = 3; i < got; i++)
            frames[w.n++] = (uintptr_t)buf[i];
    } else
#endif
    {
        (void)learn;
        _Unwind_Backtrace(unwind_step, &w);
    }
    /* the rest of the chain by frame pointers (as zwi_capture walks it: up the stack only,
     * aligned, inside this thread's stack) */
    const uintptr_t *fp = (const uintptr_t *)w.fp;
    uintptr_t lo = (uintptr_t)__builtin_frame_address(0);
    while (w.fp != 0 && w.n < max && (uintptr_t)fp >= lo && (uintptr_t)fp < stack_hi &&
           stack_hi - (uintptr_t)fp >= 2 * sizeof(uintptr_t) &&
           ((uintptr_t)fp & (sizeof(uintptr_t) - 1)) == 0) {
        uintptr_t ret = fp[1];
        if (ret < 4096)
            break;
        frames[w.n++] = ret;
        const uintptr_t *next = (const uintptr_t *)fp[0];
        if (next <= fp)
            break;
        fp = next;
    }
    if (w.n <= found || frames[0] != first) { /* not the same chain: keep what we had */
        frames[0] = first;
        return found;
    }
    /* Learn: if the unwinder's chain is the frame-pointer chain with one frame more after the
     * first (the runtime function kept its caller's rbp and pushed no frame record), note where
     * that frame's return address lies, so repair_walk() needs no unwinder next time. */
    if (fp_next != 0 && w.n >= 3 && frames[2] == fp_next && in_nofp(first) && first >> 48 == 0) {
        const uintptr_t *cfa = hook_fp + 2;
        for (unsigned i = 0; i < SKIP_SLOTS && (uintptr_t)(cfa + i) < stack_hi; i++) {
            if (cfa[i] == frames[1]) {
                atomic_store_explicit(&G.skip[skip_index(first)], (uint64_t)first << 16 | (i + 1),
                                      memory_order_relaxed);
                break;
            }
        }
    }
    return w.n;
}

/* The return address to insert after frames[0] of a frame-pointer walk of `nf` frames whose first
 * frame `pc` is in the C or C++ runtime, or 0. It applies if that function is known to keep its
 * caller's rbp and push no frame record (G.skip): the walk then misses exactly its own return
 * address, which lies on the stack at the slot learnt; and only if that caller's module keeps
 * frame pointers (G.mods), so the chain above it can be trusted. */
static inline __attribute__((always_inline)) uintptr_t
repair_ret(uintptr_t pc, unsigned nf, const uintptr_t *hook_fp)
{
    uint64_t e = atomic_load_explicit(&G.skip[skip_index(pc)], memory_order_relaxed);
    if (nf < 2 || e >> 16 != pc || !in_nofp(pc))
        return 0;
    uintptr_t ret = hook_fp[2 + (e & 0xFFFF) - 1];
    if (module_of(ret) == NULL || module_fp(ret) != 1)
        return 0; /* a caller whose frame pointers are not known to be kept */
    return ret;
}

/* Inserts `ret` after frames[0] of `nf` frames (the last one drops at the limit). */
static inline __attribute__((always_inline)) unsigned
repair_insert(uintptr_t *frames, unsigned nf, unsigned *total, uintptr_t ret)
{
    unsigned keep = nf < G.nframe ? nf : G.nframe - 1;
    memmove(frames + 2, frames + 1, (keep - 1) * sizeof(*frames));
    frames[1] = ret;
    *total = *total + 1;
    return keep + 1;
}

static __attribute__((noinline, noclone)) unsigned
repair_walk_slow(zwi_thread *th, unsigned nf, unsigned *total, const uintptr_t *hook_fp)
{
    uintptr_t saved[64]; /* the frame-pointer walk, to repair once the unwinder has taught us */
    unsigned nsaved = nf < 64 ? nf : 64;
    memcpy(saved, th->frames, nsaved * sizeof(*saved));
    /* libgcc's unwinder teaches what later walks need (see unwind_step); libunwind's is faster */
    bool learn;
    if (in_nofp(saved[0])) { /* learning while the slot or the caller's module is not known */
        uint64_t e = atomic_load_explicit(&G.skip[skip_index(saved[0])], memory_order_relaxed);
        learn = e >> 16 != saved[0] || module_fp(hook_fp[2 + (e & 0xFFFF) - 1]) == 0;
    } else {
        learn = module_fp(saved[0]) == 0;
    }
    unsigned got = unwind_dwarf(th->frames, G.nframe, nf, th->stack_hi, hook_fp, learn);
    if (!in_nofp(saved[0]) && got >= 2 && th->frames[0] == saved[0] &&
        module_fp(saved[0]) == 0) /* the caller's module: did its frame pointers lead right? */
        module_vote(saved[0], nf >= 2 && saved[1] == th->frames[1]);
    uintptr_t ret = nsaved == nf ? repair_ret(saved[0], nf, hook_fp) : 0;
    if (ret != 0) {
        /* learnt (now or by another thread): the traceback later repairs will give, not the
         * unwinder's (which also walks past the C library's start code), so the site stays one */
        memcpy(th->frames, saved, nsaved * sizeof(*saved));
        return repair_insert(th->frames, nf, total, ret);
    }
    *total = got;
    return got;
}

/* The frame-pointer walk from the hook at `hook_fp` gave frames[0..nf) (of `total`), the first in
 * the C or C++ runtime or in a module not known to keep frame pointers, or only one frame:
 * repaired (repair_ret) or redone by the unwinder (which learns what repairs need and which
 * modules keep frame pointers). Returns the frames kept; *total follows. */
static inline __attribute__((always_inline)) unsigned
repair_walk(zwi_thread *th, unsigned nf, unsigned *total, const uintptr_t *hook_fp)
{
    uintptr_t ret = repair_ret(th->frames[0], nf, hook_fp);
    if (ret != 0)
        return repair_insert(th->frames, nf, total, ret);
    return repair_walk_slow(th, nf, total, hook_fp);
}

/* ---- the hooks' common steps ---- */

static inline bool
tracing(void)
{
    return zwi_trace_guard == 0 && atomic_load_explicit(&G.active, memory_order_acquire);
}

static void serve_deferred(void);

/* Leaves a hook: the guard down, and a signal from outside that landed while it was up (when this
 * thread may have held a lock of the engine or of malloc) served now. */
static inline __attribute__((always_inline)) void
guard_down(void)
{
    zwi_trace_guard--;
    if (ZW_UNLIKELY(atomic_load_explicit(&G.deferred_signal, memory_order_relaxed) != 0) &&
        zwi_trace_guard == 0)
        serve_deferred();
}

/* Notes that site `ref`'s counters changed (see G.dirty), after they were updated. */
static inline void
site_dirty(uint32_t ref)
{
    if (atomic_load(&G.dirty[ref]) == 0) {
        atomic_store(&G.dirty[ref], 1);
        if (atomic_load(&G.summary[ref >> DIRTY_SHIFT]) == 0)
            atomic_store(&G.summary[ref >> DIRTY_SHIFT], 1);
    }
}

/* Records block `p` of `n` bytes allocated by the caller of the hook this is inlined into (which
 * keeps a frame: this file is built with -fno-omit-frame-pointer). Guard up. */
static inline __attribute__((always_inline)) void
on_alloc(void *p, size_t n)
{
    zwi_tracer *t = G.tracer;
    zwi_thread *th = zwi_thread_get();
    static const uintptr_t unknown[1] = {0};
    const uintptr_t *frames = unknown;
    unsigned total = 1;
    unsigned nf = 0;
    if (th != NULL) {
        nf = zwi_capture(th, 0, th->frames, G.nframe, &total);
        frames = th->frames;
        /* the chain is trusted from a caller in a module known to keep frame pointers; from the
         * C or C++ runtime it is repaired, otherwise walked by the unwinder */
        if (ZW_UNLIKELY((nf == 1 || in_nofp(th->frames[0]) || module_fp(th->frames[0]) != 1) &&
                        G.nframe > 1))
            nf = repair_walk(th, nf, &total, __builtin_frame_address(0));
    }
    if (nf == 0) {
        frames = unknown;
        nf = total = 1;
    }
    if (zwi_tracer_add(t, ZW_TRACE_DEFAULT_DOMAIN, (uintptr_t)p, n, frames, nf, total) != 0)
        return;
    tstats *ts = my_stats != NULL ? my_stats : stats_make();
    if (ts != NULL) {
        bump(&ts->allocs, 1);
        bump(&ts->bytes, n);
        ts->last = p;
    }
    uint32_t ref = th != NULL ? th->last_ref : 0;
    if (G.sites != NULL && ref != 0 && ref < SITE_REFS) {
        atomic_fetch_add(&G.sites[ref].count, 1);
        atomic_fetch_add(&G.sites[ref].bytes, n);
        site_dirty(ref);
        unsigned max = atomic_load_explicit(&G.site_max, memory_order_relaxed);
        while (ref > max && !atomic_compare_exchange_weak_explicit(
                                &G.site_max, &max, ref, memory_order_relaxed, memory_order_relaxed))
            ; /* only when a new traceback is interned: rare */
    }
    int64_t peak = zwi_tracer_peak_hint(t);
    if (ZW_UNLIKELY(peak >= atomic_load_explicit(&G.peak_next, memory_order_relaxed)))
        save_peak(peak);
}

/* Counts a block of `rec`'s site as freed (n = 1) or, for a realloc that failed, back (n = -1). */
static inline void
site_free(const zwi_trace_rec *rec, int64_t n)
{
    if (G.sites == NULL || rec->tb == 0 || rec->tb >= SITE_REFS)
        return;
    atomic_fetch_add(&G.sites[rec->tb].freed, (uint64_t)n);
    atomic_fetch_add(&G.sites[rec->tb].freed_bytes, (uint64_t)n * (uint64_t)rec->size);
    site_dirty(rec->tb);
}

/* Removes the trace of `p`, if traced, and counts the free. Guard up. */
static inline void
on_free(void *p, zwi_trace_rec *old, bool *had)
{
    zwi_trace_rec rec;
    bool found = zwi_tracer_remove(G.tracer, ZW_TRACE_DEFAULT_DOMAIN, (uintptr_t)p, &rec);
    if (had != NULL) {
        *had = found;
        *old = rec;
    }
    if (!found)
        return;
    site_free(&rec, 1);
    tstats *ts = my_stats != NULL ? my_stats : stats_make();
    if (ts != NULL) {
        bump(&ts->frees, 1);
        if (ts->last == p) {
            bump(&ts->temps, 1);
            if (G.sites != NULL && rec.tb != 0 && rec.tb < SITE_REFS)
                atomic_fetch_add_explicit(&G.sites[rec.tb].temps, 1, memory_order_relaxed);
        }
        ts->last = NULL; /* any free ends the run: temporary = freed next, as in heaptrack */
    }
}

/* ---- the interposed functions ---- */

EXPORT void *
malloc(size_t n)
{
    if (ZW_UNLIKELY(!resolve()))
        return boot_alloc(n, 16);
    if (!tracing())
        return G.real.malloc(n);
    zwi_trace_guard++;
    void *p = G.real.malloc(n);
    if (p != NULL)
        on_alloc(p, n);
    guard_down();
    return p;
}

EXPORT void
free(void *p)
{
    if (p == NULL || in_boot(p) || !resolve())
        return;
    if (tracing()) {
        zwi_trace_guard++;
        on_free(p, NULL, NULL);
        guard_down();
    }
    G.real.free(p);
}

EXPORT void *
calloc(size_t nelem, size_t elsize)
{
    if (ZW_UNLIKELY(!resolve())) {
        size_t n;
        if (__builtin_mul_overflow(nelem, elsize, &n))
            return NULL;
        return boot_alloc(n, 16); /* never reused: still zero */
    }
    if (!tracing())
        return G.real.calloc(nelem, elsize);
    zwi_trace_guard++;
    void *p = G.real.calloc(nelem, elsize);
    if (p != NULL)
        on_alloc(p, nelem * elsize);
    guard_down();
    return p;
}

/* realloc's body, inlined into realloc and reallocarray so that the traceback starts at their
 * caller. */
static inline __attribute__((always_inline)) void *
do_realloc(void *p, size_t n)
{
    if (ZW_UNLIKELY(!resolve() || in_boot(p))) {
        /* a bootstrap block moves out of the arena (or, during dlsym, within it) */
        void *q = resolve() ? malloc(n) : boot_alloc(n, 16);
        if (q != NULL && p != NULL) {
            size_t old = boot_size(p);
            memcpy(q, p, old < n ? old : n);
        }
        return q;
    }
    if (!tracing())
        return G.real.realloc(p, n);
    zwi_trace_guard++;
    zwi_trace_rec old;
    bool had = false;
    if (p != NULL)
        on_free(p, &old, &had);
    void *q = G.real.realloc(p, n);
    if (q != NULL)
        on_alloc(q, n);
    else if (had && n != 0 && zwi_tracer_restore(G.tracer, (uintptr_t)p, &old) == 0)
        site_free(&old, -1); /* failed: the old block stays (realloc(p, 0) freed it) */
    guard_down();
    return q;
}

EXPORT void *
realloc(void *p, size_t n)
{
    return do_realloc(p, n);
}

EXPORT void *
reallocarray(void *p, size_t nelem, size_t elsize)
{
    size_t n;
    if (__builtin_mul_overflow(nelem, elsize, &n)) {
        errno = ENOMEM;
        return NULL;
    }
    return do_realloc(p, n);
}

/* The aligned family: one body, the real function chosen by `which`. */
enum { AL_MEMALIGN, AL_ALIGNED, AL_VALLOC, AL_PVALLOC };

static inline __attribute__((always_inline)) void *
aligned(int which, size_t align, size_t n)
{
    if (ZW_UNLIKELY(!resolve()))
        return boot_alloc(n, align ? align : 4096);
    bool on = tracing();
    if (on)
        zwi_trace_guard++;
    void *p;
    switch (which) {
    case AL_MEMALIGN:
        p = G.real.memalign(align, n);
        break;
    case AL_ALIGNED:
        p = G.real.aligned_alloc != NULL ? G.real.aligned_alloc(align, n)
                                         : G.real.memalign(align, n);
        break;
    case AL_VALLOC:
        p = G.real.valloc != NULL ? G.real.valloc(n) : G.real.memalign(4096, n);
        break;
    default:
        p = G.real.pvalloc != NULL ? G.real.pvalloc(n)
                                   : G.real.memalign(4096, (n + 4095) & ~(size_t)4095);
        break;
    }
    if (on) {
        if (p != NULL)
            on_alloc(p, n);
        guard_down();
    }
    return p;
}

EXPORT void *
memalign(size_t align, size_t n)
{
    return aligned(AL_MEMALIGN, align, n);
}

EXPORT void *
aligned_alloc(size_t align, size_t n)
{
    return aligned(AL_ALIGNED, align, n);
}

EXPORT void *
valloc(size_t n)
{
    return aligned(AL_VALLOC, 4096, n);
}

EXPORT void *
pvalloc(size_t n)
{
    return aligned(AL_PVALLOC, 4096, n);
}

EXPORT int
posix_memalign(void **out, size_t align, size_t n)
{
    if (ZW_UNLIKELY(!resolve())) {
        *out = boot_alloc(n, align);
        return *out != NULL ? 0 : ENOMEM;
    }
    if (G.real.posix_memalign == NULL) {
        *out = memalign(align, n);
        return *out != NULL ? 0 : ENOMEM;
    }
    bool on = tracing();
    if (on)
        zwi_trace_guard++;
    int rc = G.real.posix_memalign(out, align, n);
    if (on) {
        if (rc == 0 && *out != NULL)
            on_alloc(*out, n);
        guard_down();
    }
    return rc;
}

EXPORT size_t
malloc_usable_size(void *p)
{
    if (p == NULL)
        return 0;
    if (in_boot(p))
        return boot_size(p);
    if (!resolve() || G.real.malloc_usable_size == NULL)
        return 0;
    return G.real.malloc_usable_size(p);
}

/* ---- the capture file ---- */

/* Writes all of `b` at the end of the file (under G.lock). */
static void
write_locked(const zwi_cbuf *b)
{
    if (G.fd < 0 || b->failed)
        return;
    struct stat st;
    if (fstat(G.fd, &st) != 0 || st.st_dev != G.file_dev || st.st_ino != G.file_ino) {
        G.fd = -1; /* the program closed our descriptor and reused it: never write into theirs */
        return;
    }
    for (size_t off = 0; off < b->len;) {
        ssize_t n = write(G.fd, b->data + off, b->len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            close(G.fd);
            G.fd = -1; /* the disk is full or gone: stop writing, keep running */
            return;
        }
        off += (size_t)n;
    }
}

static void flush_samples_locked(void);

static void
push_sample_locked(zw_capture_sample s)
{
    if (G.npending == PENDING_SAMPLES)
        flush_samples_locked();
    G.pending[G.npending++] = s;
}

/* Appends the pending samples as a SERIES section and the pending steps as a SITE_DELTAS one, in
 * one write. */
static void
flush_samples_locked(void)
{
    if (G.npending == 0 && G.nsteps == 0)
        return;
    zwi_cbuf pay = {.raw = G.raw};
    zwi_cbuf sec = {.raw = G.raw};
    if (G.npending > 0) {
        zwi_cbuf_put(&pay, G.npending, 4);
        zwi_cbuf_put(&pay, ZWI_SERIES_FIELDS, 4);
        for (size_t i = 0; i < G.npending; i++) {
            const zw_capture_sample *x = &G.pending[i];
            const uint64_t f[ZWI_SERIES_FIELDS] = {x->time_ns,   x->heap_bytes,  x->heap_blocks,
                                                   x->rss_bytes, x->allocations, x->frees,
                                                   x->temporary, x->bytes_allocated};
            for (int k = 0; k < ZWI_SERIES_FIELDS; k++)
                zwi_cbuf_put(&pay, f[k], 8);
        }
        zwi_capture_put_section(&sec, ZWI_SEC_SERIES, &pay, G.npending > 8);
    }
    if (G.steps.failed)
        G.steps_broken = true; /* out of memory: no more steps, and SITE_INFO says so */
    if (G.nsteps > 0 && !G.steps_broken) {
        pay.len = 0;
        zwi_cbuf_put(&pay, G.nsteps, 4);
        zwi_cbuf_bytes(&pay, G.steps.data, G.steps.len);
        zwi_capture_put_section(&sec, ZWI_SEC_SITE_DELTAS, &pay, pay.len > 256);
    }
    write_locked(&sec);
    G.npending = 0;
    G.nsteps = 0;
    G.steps.len = 0;
    pay.failed = G.steps.failed = false;
    zwi_cbuf_release(&pay);
    zwi_cbuf_release(&sec);
}

/* Appends a step at `time_ns` to G.steps: the sites whose live blocks changed since the last step
 * (see G.dirty), their counters read now. Under `lock`. */
static void
scan_sites_locked(uint64_t time_ns, uint32_t flags)
{
    if (G.sites == NULL || G.steps_broken)
        return;
    size_t at = G.steps.len;
    zwi_cbuf_put(&G.steps, time_ns, 8);
    zwi_cbuf_put(&G.steps, flags, 4);
    zwi_cbuf_put(&G.steps, 0, 4); /* the count, patched below */
    uint32_t n = 0;
    size_t max = atomic_load(&G.site_max);
    for (size_t blk = 0; blk <= (max >> DIRTY_SHIFT); blk++) {
        if (atomic_load_explicit(&G.summary[blk], memory_order_relaxed) == 0)
            continue;
        atomic_store(&G.summary[blk], 0);
        size_t lo = blk << DIRTY_SHIFT;
        size_t hi = lo + ((size_t)1 << DIRTY_SHIFT);
        for (size_t ref = lo == 0 ? 1 : lo; ref < hi && ref < SITE_REFS; ref++) {
            if (atomic_load_explicit(&G.dirty[ref], memory_order_relaxed) == 0)
                continue;
            atomic_store(&G.dirty[ref], 0);
            site *x = &G.sites[ref];
            uint64_t blocks = atomic_load(&x->count) - atomic_load(&x->freed);
            uint64_t bytes = atomic_load(&x->bytes) - atomic_load(&x->freed_bytes);
            site_shown *sh = &G.shown[ref];
            if (blocks == sh->blocks && bytes == sh->bytes)
                continue;
            zwi_cbuf_put(&G.steps, ref, 4);
            zwi_cbuf_put(&G.steps, bytes - sh->bytes, 8);
            zwi_cbuf_put(&G.steps, blocks - sh->blocks, 8);
            sh->blocks = blocks;
            sh->bytes = bytes;
            sh->mentioned = true;
            n++;
        }
    }
    if (n == 0 && flags == 0) {
        G.steps.len = at; /* nothing changed: no step */
        return;
    }
    if (!G.steps.failed) {
        unsigned char *c = G.steps.data + at + 12;
        for (int k = 0; k < 4; k++)
            c[k] = (unsigned char)(n >> (8 * k));
    }
    G.nsteps++;
}

/* Makes the file for this process: ZW_OUTPUT with %p replaced by the pid. An existing file (the
 * image before an exec, a parent) is never overwritten: ".1", ".2"... are tried. */
static void
open_output(void)
{
    const char *pat = getenv("ZW_OUTPUT");
    if (pat == NULL || *pat == '\0')
        pat = DEFAULT_OUTPUT;
    char base[sizeof(G.path) - 16];
    size_t k = 0;
    for (const char *s = pat; *s != '\0' && k + 24 < sizeof(base); s++) {
        if (s[0] == '%' && s[1] == 'p') {
            k += (size_t)snprintf(base + k, sizeof(base) - k, "%ld", (long)getpid());
            s++;
        } else {
            base[k++] = *s;
        }
    }
    base[k] = '\0';
    for (int i = 0; i < 1000; i++) {
        if (i == 0)
            snprintf(G.path, sizeof(G.path), "%s", base);
        else
            snprintf(G.path, sizeof(G.path), "%s.%d", base, i);
        G.fd = open(G.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (G.fd >= 0 || errno != EEXIST)
            break;
    }
    struct stat st;
    if (G.fd >= 0) {
        /* out of the way of the program's low descriptors (dup2 onto 0-2, close loops) */
        int high = fcntl(G.fd, F_DUPFD_CLOEXEC, 1000);
        if (high >= 0) {
            close(G.fd);
            G.fd = high;
        }
        if (fstat(G.fd, &st) == 0) {
            G.file_dev = st.st_dev;
            G.file_ino = st.st_ino;
        }
    }
    if (G.fd < 0) {
        char msg[4200];
        int n = snprintf(msg, sizeof(msg), "zw: preload: error: cannot create '%s': %s\n", G.path,
                         strerror(errno));
        (void)!write(2, msg, (size_t)n);
    }
}

/* The header and the PROCESS section. */
static void
write_start_locked(void)
{
    zwi_cbuf out = {.raw = G.raw};
    zwi_cbuf pay = {.raw = G.raw};
    zwi_capture_put_header(&out);
    size_t argc = 0;
    for (size_t i = 0; i < G.cmdline_len; i++)
        argc += G.cmdline[i] == '\0';
    zwi_cbuf_put(&pay, (uint64_t)getpid(), 4);
    zwi_cbuf_put(&pay, (uint64_t)getppid(), 4);
    zwi_cbuf_put(&pay, G.start_real, 8);
    zwi_cbuf_put(&pay, G.interval_ms, 4);
    zwi_cbuf_put(&pay, G.nframe, 4);
    zwi_cbuf_put(&pay, argc, 4);
    for (size_t i = 0; i < G.cmdline_len;) {
        size_t len = strlen(G.cmdline + i);
        zwi_cbuf_put(&pay, len, 4);
        zwi_cbuf_bytes(&pay, G.cmdline + i, len);
        i += len + 1;
    }
    zwi_capture_put_section(&out, ZWI_SEC_PROCESS, &pay, false);
    write_locked(&out);
    zwi_cbuf_release(&pay);
    zwi_cbuf_release(&out);
}

/* A live set section: time, bytes, label and the set as an embedded snapshot file. */
static void
put_set(zwi_cbuf *out, uint32_t type, const char *label, uint64_t time_ns, uint64_t bytes,
        zw_snapshot *snap)
{
    zwi_cbuf pay = {.raw = G.raw};
    unsigned char *data = NULL;
    size_t len = 0;
    if (snap != NULL && zwi_snapshot_encode(snap, G.raw, &data, &len) != 0)
        len = 0;
    zwi_cbuf_put(&pay, time_ns, 8);
    zwi_cbuf_put(&pay, bytes, 8);
    zwi_cbuf_put(&pay, strlen(label), 4);
    zwi_cbuf_bytes(&pay, label, strlen(label));
    zwi_cbuf_put(&pay, len, 8);
    zwi_cbuf_bytes(&pay, data, len);
    zwi_capture_put_section(out, type, &pay, false);
    zwi_free(G.raw, data);
    zwi_cbuf_release(&pay);
}

/* The SITES section: per traceback, the allocations made there and their bytes; then SITE_INFO:
 * the sites' refs (the SITE_DELTAS name sites by them) and temporary allocations. A site appears
 * if an allocation was made there or a step mentioned it (a fork child frees its parent's). */
static void
put_sites(zwi_cbuf *out, zwi_symbolizer *sym)
{
    liveset set = {0};
    unsigned max = atomic_load(&G.site_max);
    for (size_t ref = 1; G.sites != NULL && ref <= max && ref < SITE_REFS; ref++) {
        uint64_t count = atomic_load_explicit(&G.sites[ref].count, memory_order_relaxed);
        if (count == 0 && !G.shown[ref].mentioned)
            continue;
        zwi_trace_rec rec = {ZW_TRACE_DEFAULT_DOMAIN,
                             atomic_load_explicit(&G.sites[ref].bytes, memory_order_relaxed),
                             (uint32_t)ref};
        if (copy_rec(&set, &rec) != 0)
            break;
    }
    zw_snapshot *snap = zwi_snapshot_from_recs(G.tracer, sym, set.recs, set.n, NULL);
    unsigned char *data = NULL;
    size_t len = 0;
    if (snap != NULL && zwi_snapshot_encode(snap, G.raw, &data, &len) == 0) {
        zwi_cbuf pay = {.raw = G.raw};
        zwi_cbuf_put(&pay, set.n, 8);
        for (size_t i = 0; i < set.n; i++)
            zwi_cbuf_put(&pay, G.sites[set.recs[i].tb].count, 8);
        zwi_cbuf_put(&pay, len, 8);
        zwi_cbuf_bytes(&pay, data, len);
        zwi_capture_put_section(out, ZWI_SEC_SITES, &pay, false);
        pay.len = 0;
        zwi_cbuf_put(&pay, !G.steps_broken, 4);
        zwi_cbuf_put(&pay, set.n, 8);
        for (size_t i = 0; i < set.n; i++) {
            zwi_cbuf_put(&pay, set.recs[i].tb, 4);
            zwi_cbuf_put(&pay, atomic_load(&G.sites[set.recs[i].tb].temps), 8);
        }
        zwi_capture_put_section(out, ZWI_SEC_SITE_INFO, &pay, set.n > 64);
        zwi_cbuf_release(&pay);
    }
    zwi_free(G.raw, data);
    zw_snapshot_free(snap);
    if (set.recs != NULL)
        munmap(set.recs, set.cap * sizeof(*set.recs));
}

/* Everything after the streamed samples: live sets, sites, totals, END. */
static void
write_end_locked(uint32_t end, int code)
{
    zw_capture_sample last = sample_now();
    push_sample_locked(last);
    scan_sites_locked(last.time_ns, 0);
    flush_samples_locked();
    zwi_symbolizer *sym = zwi_symbolizer_new();
    if (sym == NULL)
        return;
    zwi_cbuf out = {.raw = G.raw};
    /* marks, oldest first */
    liveset *rev = NULL;
    for (liveset *m = G.marks; m != NULL;) {
        liveset *next = m->next;
        m->next = rev;
        rev = m;
        m = next;
    }
    G.marks = rev;
    for (liveset *m = G.marks; m != NULL; m = m->next) {
        zw_snapshot *snap =
            m->kept ? zwi_snapshot_from_recs(G.tracer, sym, m->recs, m->n, NULL) : NULL;
        put_set(&out, ZWI_SEC_MARK, m->label, m->time_ns, m->bytes, snap);
        zw_snapshot_free(snap);
    }
    /* the exit set; it is the peak set too if nothing larger was saved */
    zw_snapshot *exit_snap = zwi_snapshot_from_tracer(G.tracer, sym, NULL);
    uint64_t peak_bytes = (uint64_t)zwi_tracer_peak_hint(G.tracer);
    if (G.peak.time_ns == 0 && G.peak.n == 0 && G.peak.bytes == 0) {
        put_set(&out, ZWI_SEC_PEAK_SET, "peak", last.time_ns, last.heap_bytes, exit_snap);
    } else if (last.heap_bytes >= G.peak.bytes) {
        put_set(&out, ZWI_SEC_PEAK_SET, "peak", last.time_ns, last.heap_bytes, exit_snap);
        G.peak.time_ns = last.time_ns;
    } else if (G.peak.n == 0 && !G.steps_broken) {
        /* saved as a peak step: no PEAK_SET, the reader rebuilds it from the steps */
    } else {
        zw_snapshot *peak = zwi_snapshot_from_recs(G.tracer, sym, G.peak.recs, G.peak.n, NULL);
        put_set(&out, ZWI_SEC_PEAK_SET, "peak", G.peak.time_ns, G.peak.bytes, peak);
        zw_snapshot_free(peak);
    }
    put_set(&out, ZWI_SEC_EXIT_SET, "exit", last.time_ns, last.heap_bytes, exit_snap);
    zw_snapshot_free(exit_snap);
    put_sites(&out, sym);
    totals s = sum_stats();
    zwi_cbuf pay = {.raw = G.raw};
    zwi_cbuf_put(&pay, s.allocs, 8);
    zwi_cbuf_put(&pay, s.frees, 8);
    zwi_cbuf_put(&pay, s.temps, 8);
    zwi_cbuf_put(&pay, s.bytes, 8);
    zwi_cbuf_put(&pay, peak_bytes, 8);
    zwi_cbuf_put(&pay, G.peak.time_ns, 8);
    zwi_cbuf_put(&pay, last.time_ns, 8);
    zwi_cbuf_put(&pay, end, 4);
    zwi_cbuf_put(&pay, (uint32_t)code, 4);
    zwi_capture_put_section(&out, ZWI_SEC_TOTALS, &pay, false);
    zwi_cbuf_release(&pay);
    zwi_capture_put_section(&out, ZWI_SEC_END, &pay, false);
    write_locked(&out);
    zwi_cbuf_release(&out);
    zwi_symbolizer_free(sym);
}

/* ---- marks ---- */

static void
take_mark(const char *label)
{
    liveset *m = mmap(NULL, sizeof(*m), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return;
    size_t cur = 0;
    zwi_tracer_traced_memory(G.tracer, &cur, NULL);
    pthread_mutex_lock(&G.lock);
    if (G.nmark_sets < MAX_MARK_SETS) { /* past it, a mark keeps its time and bytes only */
        take_set_locked(m, cur);
        m->kept = true;
        G.nmark_sets++;
    } else {
        m->time_ns = now_ns();
        m->bytes = cur;
    }
    snprintf(m->label, sizeof(m->label), "%s", label != NULL ? label : "");
    m->next = G.marks;
    G.marks = m;
    pthread_mutex_unlock(&G.lock);
}

/* The marks of a program that links zerowaste itself reach us here (capture.h, ZW_MARK_SINK). */
EXPORT zw_mark_sink_fn zw_mark_sink;

EXPORT void
zw_mark_sink(const char *label)
{
    if (!atomic_load(&G.active) || zwi_trace_guard)
        return;
    zwi_trace_guard++;
    take_mark(label);
    zwi_trace_guard--;
}

/* For programs that declare zw_mark weak and do not link zerowaste. */
EXPORT void
zw_mark(const char *label)
{
    zw_mark_sink(label);
}

static void
on_mark_signal(int sig)
{
    atomic_fetch_add(&G.signal_marks, 1); /* the sampler takes it: a handler may not lock */
}

/* ---- the sampler ---- */

static void *
sampler_main(void *arg)
{
    zwi_trace_guard++; /* nothing this thread allocates is the program's */
    sigset_t block;
    sigemptyset(&block);
    for (size_t i = 0; i < sizeof(async_signals) / sizeof(async_signals[0]); i++)
        sigaddset(&block, async_signals[i]);
    if (G.mark_signal != 0)
        sigaddset(&block, G.mark_signal);
    pthread_sigmask(SIG_BLOCK, &block, NULL); /* their handlers wait for this thread */
    /* sleeps until the next sample, or until an asynchronous signal's handler writes to wake[] */
    uint64_t next = now_ns() + (uint64_t)G.interval_ms * 1000000u;
    while (!atomic_load(&G.stop)) {
        int sig = atomic_load(&G.async_signal);
        if (sig != 0) {
            finish(ZW_CAPTURE_END_SIGNAL, sig);
            break;
        }
        uint64_t now = now_ns();
        if (now < next) {
            int ms = (int)((next - now + 999999u) / 1000000u);
            struct pollfd pfd = {.fd = G.wake[0], .events = POLLIN};
            if (G.wake[0] < 0 || poll(&pfd, 1, ms) < 0 || (pfd.revents & POLLNVAL))
                nanosleep(&(struct timespec){0, 1000000}, NULL); /* no pipe: poll the flag */
            else if (pfd.revents & POLLIN)
                (void)!read(G.wake[0], (char[16]){0}, 16); /* drained; the flag says why */
            continue;
        }
        next += (uint64_t)G.interval_ms * 1000000u;
        if (next < now)
            next = now + (uint64_t)G.interval_ms * 1000000u; /* fell behind: no burst */
        if (atomic_load(&G.stop))
            break;
        unsigned asked = atomic_exchange(&G.signal_marks, 0);
        for (unsigned i = 0; i < asked; i++) {
            char label[32];
            snprintf(label, sizeof(label), "signal %d", G.mark_signal);
            take_mark(label);
        }
        zw_capture_sample s = sample_now();
        pthread_mutex_lock(&G.lock);
        if (!atomic_load(&G.finished)) {
            push_sample_locked(s);
            scan_sites_locked(s.time_ns, 0);
            flush_samples_locked();
        }
        pthread_mutex_unlock(&G.lock);
    }
    zwi_trace_guard--;
    return NULL;
}

/* G.wake: a new pipe (a fork child must not share its parent's). */
static void
make_wake_pipe(void)
{
    for (int i = 0; i < 2; i++) {
        if (G.wake[i] >= 0)
            close(G.wake[i]);
        G.wake[i] = -1;
    }
    int p[2];
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0)
        return;
    for (int i = 0; i < 2; i++) { /* out of the way of the program's low descriptors */
        G.wake[i] = fcntl(p[i], F_DUPFD_CLOEXEC, 1000);
        if (G.wake[i] >= 0)
            close(p[i]);
        else
            G.wake[i] = p[i];
    }
}

static void
start_sampler(void)
{
    atomic_store(&G.stop, false);
    G.sampler_on = pthread_create(&G.sampler, NULL, sampler_main, NULL) == 0;
}

static void
stop_sampler(bool join)
{
    atomic_store(&G.stop, true);
    if (join && G.sampler_on && !pthread_equal(pthread_self(), G.sampler))
        pthread_join(G.sampler, NULL);
    G.sampler_on = false;
}

/* ---- ways out ---- */

/* Writes the end of the capture, once per process. `end` says how the process ends. */
static void
finish(uint32_t end, int code)
{
    if (G.tracer == NULL || atomic_exchange(&G.finished, true))
        return; /* never started (no memory, or before the constructor), or done */
    zwi_trace_guard++;
    stop_sampler(end != ZW_CAPTURE_END_SIGNAL);
    atomic_store(&G.active, false);
    if (end == ZW_CAPTURE_END_SIGNAL) {
        /* the crashing thread may hold the lock: wait a little, then write regardless */
        for (int i = 0; i < 200 && pthread_mutex_trylock(&G.lock) != 0; i++)
            usleep(1000);
    } else {
        pthread_mutex_lock(&G.lock);
    }
    write_end_locked(end, code);
    if (G.fd >= 0)
        close(G.fd);
    G.fd = -1;
    pthread_mutex_unlock(&G.lock);
    atomic_store(&G.written, true);
    zwi_trace_guard--;
}

static void
on_exit_hook(int status, void *arg)
{
    finish(ZW_CAPTURE_END_EXIT, status);
}

/* Signals that end the process by default and are raised by the program's own action, so never
 * inside malloc: faults, abort, and a write to a closed pipe or past the file-size limit (`prog |
 * head` ends prog with SIGPIPE). The handler writes the capture itself. */
static const int fatal_signals[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL, SIGPIPE, SIGXFSZ};


static void
on_fatal_signal(int sig)
{
    finish(ZW_CAPTURE_END_SIGNAL, sig);
    signal(sig, SIG_DFL);
    raise(sig); /* a fault re-runs the instruction and dies of the default action */
}

static void
on_async_signal(int sig)
{
    if (zwi_trace_guard > 0 && !atomic_load(&G.finished)) {
        /* inside a hook: this thread may hold a lock the writer needs; served by guard_down() */
        atomic_store(&G.deferred_signal, sig);
        return;
    }
    int saved = errno;
    if (G.sampler_on && !atomic_load(&G.finished)) {
        atomic_store(&G.async_signal, sig);
        if (G.wake[1] >= 0)
            (void)!write(G.wake[1], "", 1);
        struct timespec ms = {0, 1000000};
        for (int i = 0; i < ASYNC_WAIT_MS && !atomic_load(&G.written); i++)
            nanosleep(&ms, NULL);
    } else if (!atomic_load(&G.finished)) {
        finish(ZW_CAPTURE_END_SIGNAL, sig); /* no sampler: the only writer left */
    } else {
        for (int i = 0; i < ASYNC_WAIT_MS && !atomic_load(&G.written); i++)
            nanosleep(&(struct timespec){0, 1000000}, NULL); /* another thread is writing */
    }
    signal(sig, SIG_DFL);
    errno = saved;
    raise(sig); /* delivered when this handler returns: the default action ends the process */
}

static __attribute__((noinline)) void
serve_deferred(void)
{
    int sig = atomic_exchange(&G.deferred_signal, 0);
    if (sig != 0)
        on_async_signal(sig);
}

/* True in the process the capture is of; false in a vfork child, which shares our memory: it
 * must neither write the parent's capture nor mark it finished. */
static bool
owner(void)
{
    return getpid() == G.pid;
}

EXPORT void
_exit(int status)
{
    if (resolve()) {
        if (owner())
            finish(ZW_CAPTURE_END_UNDERSCORE_EXIT, status);
        G.real.exit_(status);
    }
    __builtin_trap();
}

/* ---- exec: the image ends, its capture too; the new image (LD_PRELOAD) writes its own. If the
 * exec fails, the rest of this process is not traced. glibc's exec functions call each other
 * internally, so each is interposed; the l-forms build an argument vector for the v-forms. ---- */

static void
before_exec(void)
{
    if (owner())
        finish(ZW_CAPTURE_END_EXEC, 0);
}

EXPORT int
execve(const char *path, char *const argv[], char *const envp[])
{
    resolve();
    before_exec();
    return G.real.execve(path, argv, envp);
}

EXPORT int
execv(const char *path, char *const argv[])
{
    return execve(path, argv, environ);
}

EXPORT int
execvpe(const char *file, char *const argv[], char *const envp[])
{
    resolve();
    before_exec();
    if (G.real.execvpe == NULL) {
        errno = ENOSYS;
        return -1;
    }
    return G.real.execvpe(file, argv, envp);
}

EXPORT int
execvp(const char *file, char *const argv[])
{
    return execvpe(file, argv, environ);
}

EXPORT int
fexecve(int fd, char *const argv[], char *const envp[])
{
    resolve();
    before_exec();
    if (G.real.fexecve == NULL) {
        errno = ENOSYS;
        return -1;
    }
    return G.real.fexecve(fd, argv, envp);
}

#define MAX_EXEC_ARGS 65536 /* execl's arguments we forward; more gets E2BIG */

/* execl's arguments (arg0 and the variadic ones up to NULL) as a vector from the real malloc (the
 * caller frees it if the exec fails); NULL with errno on failure. *envp gets execle's
 * environment when `with_env`. */
static char **
collect_args(const char *arg0, va_list ap, bool with_env, char ***envp)
{
    va_list count;
    va_copy(count, ap);
    size_t n = 1;
    while (arg0 != NULL && va_arg(count, char *) != NULL && n < MAX_EXEC_ARGS)
        n++;
    va_end(count);
    if (n == MAX_EXEC_ARGS) {
        errno = E2BIG;
        return NULL;
    }
    resolve();
    char **argv = G.real.malloc((n + 1) * sizeof(char *));
    if (argv == NULL)
        return NULL;
    argv[0] = (char *)arg0;
    for (size_t i = 1; arg0 != NULL && i <= n; i++)
        argv[i] = va_arg(ap, char *); /* argv[n] is the NULL */
    argv[arg0 == NULL ? 0 : n] = NULL;
    if (with_env)
        *envp = va_arg(ap, char **);
    return argv;
}

EXPORT int
execl(const char *path, const char *arg0, ...)
{
    va_list ap;
    va_start(ap, arg0);
    char **argv = collect_args(arg0, ap, false, NULL);
    va_end(ap);
    if (argv == NULL)
        return -1;
    int rc = execve(path, argv, environ);
    G.real.free(argv);
    return rc;
}

EXPORT int
execle(const char *path, const char *arg0, ...)
{
    char **envp = NULL;
    va_list ap;
    va_start(ap, arg0);
    char **argv = collect_args(arg0, ap, true, &envp);
    va_end(ap);
    if (argv == NULL)
        return -1;
    int rc = execve(path, argv, envp);
    G.real.free(argv);
    return rc;
}

EXPORT int
execlp(const char *file, const char *arg0, ...)
{
    va_list ap;
    va_start(ap, arg0);
    char **argv = collect_args(arg0, ap, false, NULL);
    va_end(ap);
    if (argv == NULL)
        return -1;
    int rc = execvpe(file, argv, environ);
    G.real.free(argv);
    return rc;
}

/* ---- fork ---- */

static void
fork_prepare(void)
{
    zwi_trace_guard++;
    pthread_mutex_lock(&G.lock);
    zwi_lock_acquire(&G.ts_lock);
    zwi_tracer_lock_all(G.tracer);
}

static void
fork_parent(void)
{
    zwi_tracer_unlock_all(G.tracer);
    zwi_lock_release(&G.ts_lock);
    pthread_mutex_unlock(&G.lock);
    zwi_trace_guard--;
}

/* The child keeps the parent's live blocks (they are live in it too), starts its counters, marks
 * and peak afresh, and writes a capture of its own; or, unfollowed, traces nothing. */
static void
fork_child(void)
{
    zwi_tracer_unlock_all(G.tracer);
    zwi_lock_release(&G.ts_lock);
    G.sampler_on = false; /* threads do not survive fork */
    if (atomic_load(&G.finished) || !G.follow_fork) {
        atomic_store(&G.active, false);
        atomic_store(&G.finished, true);
        if (G.fd >= 0)
            close(G.fd);
        G.fd = -1;
        pthread_mutex_unlock(&G.lock);
        zwi_trace_guard--;
        return;
    }
    for (tstats *ts = G.threads; ts != NULL; ts = ts->next)
        *ts = (tstats){.next = ts->next};
    /* the sites' own counts start afresh; the parent's live blocks stay live (freed < 0), and
     * the first step of the child states them */
    for (size_t i = 1; G.sites != NULL && i <= atomic_load(&G.site_max) && i < SITE_REFS; i++) {
        site *x = &G.sites[i];
        uint64_t live = atomic_load(&x->count) - atomic_load(&x->freed);
        uint64_t live_bytes = atomic_load(&x->bytes) - atomic_load(&x->freed_bytes);
        *x = (site){.freed = -live, .freed_bytes = -live_bytes};
        G.shown[i] = (site_shown){0};
        atomic_store(&G.dirty[i], live != 0 || live_bytes != 0);
        if (live != 0 || live_bytes != 0)
            atomic_store(&G.summary[i >> DIRTY_SHIFT], 1);
    }
    G.steps.len = 0;
    G.nsteps = 0;
    G.steps_broken = false;
    G.marks = NULL; /* the parent's: its capture has them */
    G.nmark_sets = 0;
    G.peak.n = 0;
    G.peak.bytes = 0;
    G.peak.time_ns = 0;
    atomic_store(&G.peak_next, 0);
    zwi_tracer_reset_peak(G.tracer);
    G.npending = 0;
    G.start_ns = clock_ns(CLOCK_MONOTONIC);
    G.start_real = clock_ns(CLOCK_REALTIME);
    G.pid = getpid();
    if (G.fd >= 0)
        close(G.fd);
    G.fd = -1;
    open_output();
    write_start_locked();
    pthread_mutex_unlock(&G.lock);
    make_wake_pipe();
    start_sampler();
    zwi_trace_guard--;
}

/* ---- start ---- */

static unsigned
env_uint(const char *name, unsigned def, unsigned lo, unsigned hi)
{
    const char *s = getenv(name);
    if (s == NULL || *s == '\0')
        return def;
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (*end != '\0' || v < lo || v > hi) {
        char msg[256];
        int n = snprintf(msg, sizeof(msg),
                         "zw: preload: warning: %s='%s' is not in [%u, %u], using %u\n", name, s,
                         lo, hi, def);
        (void)!write(2, msg, (size_t)n);
        return def;
    }
    return (unsigned)v;
}

/* ZW_FOLLOW_EXEC=0: programs this one executes run untraced (LD_PRELOAD loses this library). */
static void
drop_from_ld_preload(void)
{
    const char *lp = getenv("LD_PRELOAD");
    if (lp == NULL)
        return;
    char keep[4096];
    size_t k = 0;
    for (const char *s = lp; *s != '\0';) {
        size_t len = strcspn(s, ": ");
        if (len > 0 && (memmem(s, len, "libzwpreload", 12) == NULL) && k + len + 2 < sizeof(keep)) {
            if (k > 0)
                keep[k++] = ':';
            memcpy(keep + k, s, len);
            k += len;
        }
        s += len;
        if (*s != '\0')
            s++;
    }
    keep[k] = '\0';
    if (k == 0)
        unsetenv("LD_PRELOAD");
    else
        setenv("LD_PRELOAD", keep, 1);
}

static void
read_cmdline(void)
{
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, G.cmdline, sizeof(G.cmdline) - 1);
    close(fd);
    if (n <= 0)
        return;
    G.cmdline_len = (size_t)n;
    if (G.cmdline[n - 1] != '\0') /* cut: end the last argument */
        G.cmdline[G.cmdline_len++] = '\0';
}

static void
install_signals(void)
{
    for (size_t i = 0; i < sizeof(fatal_signals) / sizeof(fatal_signals[0]); i++) {
        struct sigaction old;
        if (sigaction(fatal_signals[i], NULL, &old) != 0 || old.sa_handler != SIG_DFL)
            continue; /* the program's own handler stays */
        struct sigaction sa = {.sa_handler = on_fatal_signal, .sa_flags = SA_RESETHAND};
        sigemptyset(&sa.sa_mask);
        sigaction(fatal_signals[i], &sa, NULL);
    }
    for (size_t i = 0; i < sizeof(async_signals) / sizeof(async_signals[0]); i++) {
        struct sigaction old;
        if (sigaction(async_signals[i], NULL, &old) != 0 || old.sa_handler != SIG_DFL)
            continue; /* the program's own handler, or ignored (nohup): left alone */
        struct sigaction sa = {.sa_handler = on_async_signal};
        sigemptyset(&sa.sa_mask);
        sigaction(async_signals[i], &sa, NULL);
    }
    const char *ms = getenv("ZW_MARK_SIGNAL");
    if (ms != NULL && *ms != '\0') {
        int sig = 0;
        if (strcmp(ms, "USR1") == 0 || strcmp(ms, "SIGUSR1") == 0)
            sig = SIGUSR1;
        else if (strcmp(ms, "USR2") == 0 || strcmp(ms, "SIGUSR2") == 0)
            sig = SIGUSR2;
        else
            sig = atoi(ms);
        if (sig > 0 && sig < NSIG) {
            struct sigaction sa = {.sa_handler = on_mark_signal, .sa_flags = SA_RESTART};
            sigemptyset(&sa.sa_mask);
            if (sigaction(sig, &sa, NULL) == 0)
                G.mark_signal = sig;
        }
    }
}

__attribute__((constructor)) static void
preload_start(void)
{
    resolve();
    zwi_trace_guard++;
    G.nframe = env_uint("ZW_NFRAME", DEFAULT_NFRAME, 1, ZW_TRACE_MAX_NFRAME);
    G.interval_ms = env_uint("ZW_INTERVAL_MS", 10, 1, 3600000);
    G.follow_fork = env_uint("ZW_FOLLOW_FORK", 0, 0, 1) == 1;
    if (env_uint("ZW_FOLLOW_EXEC", 1, 0, 1) == 0)
        drop_from_ld_preload();
    G.tracer = zwi_tracer_new(G.nframe);
    G.raw = zw_raw_new(NULL);
    if (G.tracer == NULL || G.raw == NULL) {
        static const char msg[] = "zw: preload: error: cannot start tracing: out of memory\n";
        (void)!write(2, msg, sizeof(msg) - 1);
        zwi_trace_guard--;
        return;
    }
    /* per-site tables: reserved, touched (and so made resident) only where refs fall */
    const size_t sizes[4] = {SITE_REFS * sizeof(site), SITE_REFS * sizeof(site_shown), SITE_REFS,
                             SITE_REFS >> DIRTY_SHIFT};
    void *tab[4];
    for (int i = 0; i < 4; i++) {
        tab[i] = mmap(NULL, sizes[i], PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (tab[i] == MAP_FAILED) {
            for (int k = 0; k < i; k++)
                munmap(tab[k], sizes[k]);
            tab[0] = NULL;
            break;
        }
    }
    if (tab[0] != NULL) {
        G.sites = tab[0];
        G.shown = tab[1];
        G.dirty = tab[2];
        G.summary = tab[3];
    }
    G.steps.raw = G.raw;
    G.start_ns = clock_ns(CLOCK_MONOTONIC);
    G.start_real = clock_ns(CLOCK_REALTIME);
    G.pid = getpid();
    read_cmdline();
    pthread_mutex_lock(&G.lock);
    open_output();
    write_start_locked();
    pthread_mutex_unlock(&G.lock);
    (void)zwi_thread_get(); /* this thread's stack bounds, before its first traced block */
    if (G.nframe > 1)
        dl_iterate_phdr(note_nofp, NULL);
    make_wake_pipe();
    install_signals();
    on_exit(on_exit_hook, NULL);
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    start_sampler();
    atomic_store(&G.active, true);
    zwi_trace_guard--;
}

/* No destructor writes the capture: _dl_fini, which runs destructors, is registered with atexit
 * after this constructor ran, so it runs before on_exit_hook, which alone knows the status. */
