/* trace/engine.c - the tracer: the trace table, the interned tracebacks and the per-thread state.
 *
 * Trace table: NSHARDS shards picked by a hash of the address, each an open-addressing table
 * (linear probing, backward-shift deletion, no tombstones) of 16-byte slots under a spin lock of
 * its own. Slots hold (ptr, size as 32 bits, traceback ref): blocks of the default domain below
 * 4 GiB, nearly all of them. Other domains and bigger blocks go to the `wide` table (24-byte
 * slots, one lock), looked at by a record or a free only while it holds blocks of their domain
 * (the preload library's mappings keep it non-empty all along). Shard i grows at a load of
 * GROW_AT(i), spread from 1/2 to 0.79 so that the 64 shards do not all grow at once: a live block
 * costs 33.6 to 38.4 bytes of table past 250k blocks (36.6 on average while 4M are added one by
 * one; 31.2 with every shard growing at 3/4, but each doubling came as one pause).
 *
 * Tracebacks: a prefix tree of frames from the outermost in. A node is (its caller's node, a
 * return address), 16 bytes, interned in a table of node ids; a traceback is (its innermost
 * frame's node, frames, total), 12 bytes, numbered densely from 1 (its ref) and found by a hash
 * of its frames in a table of refs. Both arrays are bump-allocated in one reserved region
 * (MAP_NORESERVE: only what is written is committed; 16 GiB, or 1/16 of the address space limit),
 * under the intern lock. cc1plus (g++ -O2) traced at 64 frames interns 95k tracebacks of 3.87M
 * frames: 31.7 MB stored whole, 12.8 MB of 802k nodes here (a tree from the allocation site in
 * would need 2.17M); and dense refs keep the preload library's per-site arrays, indexed by ref,
 * 95k entries long where offsets made them 3.96M.
 *
 * A thread interns without a shared lock in the common case: the traceback an allocation site
 * gave last, its frames kept in the thread's state, is compared first; else its last traceback's
 * path (frames and nodes from the outermost) gives the outer frames the new one shares;
 * a traceback of the same hash from the thread's cache (4096 entries holding its innermost node:
 * the traceback itself is not read) is then checked on the inner frames only, walking its nodes
 * up to the path's node (tracebacks made together have their nodes side by side). A miss takes
 * the lock: the table of refs, else the inner frames' nodes found or made. The tables of node ids
 * and refs keep 32 bits of each key's hash beside the id, so that a probe reads no node or
 * traceback that cannot match, and a table grows without reading any (cc1plus: 16 MiB of node
 * table instead of 8, 15 % fewer samples interning; with 256 cache entries 55 % of its 2.6M
 * tracebacks went to the lock, 17 % with 4096).
 * The thread's memo, path and cache hold ids of one tracer generation: clear() and a new tracer
 * start a new one, and a thread that sees it empties them first, so stale ids never match.
 *
 * Traced bytes: one shared counter (`current`), changed by an atomic add on every add and remove;
 * the peak is checked against the value that add returns, so it is the exact maximum of the
 * counter, with any number of threads. (Per-thread pending counts, moved to the shared counter
 * every 64 KiB, saved that add but let the peak miss up to 64 KiB per other thread: 8 threads
 * rising together at the barrier of tests/preload/peaks.c showed 545 KiB of a 774 KiB peak.)
 * Two locked instructions per call: the shard lock and the counter.
 * See docs/trace.md#engine. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>

#include "trace_internal.h"

#define NSHARDS     64
#define SHARD_MIN   256               /* slots of a new shard table (one page) */
#define SLICE       ((size_t)1 << 28) /* a shard's room to double in place: 256 MiB */
#define TB_REGION   ((size_t)1 << 34) /* at most 16 GiB of address space for tracebacks */
#define TB_REGION_MIN ((size_t)1 << 24) /* at least 16 MiB, whatever the address space limit */
#define SIZE_NARROW UINT32_MAX        /* sizes from here on go to the wide table */
#define PAGE        4096
/* Shard i grows at a load of GROW_AT(i)/256, from 1/2 (shard 0) to 0.79 (shard 63): spread, not
 * 3/4 for all. Blocks fall evenly on the shards, so with one threshold all 64 shards grew within
 * a few thousand allocations of each other, each mapping and rehashing a table twice the size:
 * python3.11 building 2M strings had its bookkeeping busy 140 ms in one go at its last doubling
 * (64 grows of 2 ms), the ring filled and the program waited 130 ms of it. Spread over loads
 * from 1/2 to 0.79, the grows of one doubling come over an interval 1.6 times as long as the
 * first, far enough apart for the ring to take up each. */
#define GROW_AT(i)  (128u + (unsigned)(i) * 77u / 64u)

/* ---- locks ---- */

void
zwi_lock_slow(zwi_lock *l)
{
    for (unsigned spins = 0;; spins++) {
        while (atomic_load_explicit(&l->held, memory_order_relaxed)) {
            if (++spins > 128) {
                sched_yield();
                spins = 0;
            } else {
                __builtin_ia32_pause();
            }
        }
        if (!atomic_exchange_explicit(&l->held, 1, memory_order_acquire))
            return;
    }
}

/* ---- pages ---- */

/* Fault injection for tests (zwi_tracer_fail_nth): requests left before the one that fails, or
 * -1 when off. Every page request of the tracer and every new traceback counts as one. */
static _Atomic long fail_countdown = -1;
static atomic_bool fail_fired;

void
zwi_tracer_fail_nth(long n)
{
    atomic_store(&fail_fired, false);
    atomic_store(&fail_countdown, n < 0 ? -1 : n);
}

bool
zwi_tracer_fault_fired(void)
{
    return atomic_load(&fail_fired);
}

/* True if this request is to fail on purpose. */
static inline bool
fail_now(void)
{
    long n = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    while (ZW_UNLIKELY(n >= 0)) {
        if (atomic_compare_exchange_weak(&fail_countdown, &n, n - 1)) {
            if (n == 0) {
                atomic_store(&fail_fired, true);
                return true;
            }
            return false;
        }
    }
    return false;
}

/* `extra`: 0, MAP_NORESERVE (a reservation committed as it is written) or MAP_POPULATE (a table
 * about to be filled all over, as a grown one is rehashed at once: one call maps every page, and
 * a page populated up front costs a fraction of a first-touch fault, which is dear under a
 * hypervisor; python building 2M strings under zw run: 126.7k minor faults with none populated,
 * 94.9k with the tables of 64 KiB or more, 61.1k with every grown table). */
static void *
map_pages(size_t size, int extra)
{
    if (fail_now())
        return NULL;
    int flags = MAP_PRIVATE | MAP_ANONYMOUS | extra;
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, flags, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static size_t
round_page(size_t n)
{
    return (n + PAGE - 1) & ~(size_t)(PAGE - 1);
}

/* The store's nodes and tracebacks are written under the intern lock, and a first-touch fault
 * there (12 us under a hypervisor) is that much more time the lock is held: g++'s cc1plus took
 * 3.1k of them making 800k nodes. Its reservation is made ready a step ahead (zwi_make_ready). */

/* ---- the tracer ---- */

typedef struct slot {
    uintptr_t ptr; /* 0: empty */
    uint32_t size; /* bytes requested (< SIZE_NARROW) */
    uint32_t tb;   /* traceback ref */
} slot;

typedef struct wide_slot {
    uintptr_t ptr; /* 0: empty */
    size_t size;
    uint32_t tb;
    uint32_t domain;
} wide_slot;

/* One shard. Between calls: count <= limit < mask + 1, and every live slot is reachable from its
 * home index by a run of non-empty slots (the linear-probing invariant). */
typedef struct shard {
    _Alignas(64) zwi_lock lock; /* a cache line per shard: threads on different shards share none */
    uint32_t fill;              /* the load at which it grows, in 256ths (see GROW_AT) */
    slot *slots;                /* mask + 1 of them, mapped */
    size_t mask;
    size_t count; /* live slots */
    size_t limit; /* it grows before holding more: (mask + 1) * fill / 256 */
} shard;

_Static_assert(sizeof(shard) == 64, "a shard is one cache line");

/* A part of a table of ids: mask + 1 entries, `count` of them used, grown (doubled and rehashed)
 * before more than half are. A growth holds the intern lock, which the threads that intern
 * themselves wait for (the preload library's mapping hooks): in parts, a growth moves 1/ID_PARTS
 * of the entries (cc1plus's 2M-entry node table, grown whole, held the lock for ~10 ms at a time,
 * and its ~300 mmap calls waited 33-45 ms in all; 4-5 ms in parts). */
typedef struct idpart {
    uint64_t *tab;
    size_t mask;
    size_t count;
} idpart;

#define ID_PARTS   64  /* parts of a table of ids, by the top 6 bits of a 32-bit hash */
#define ID_FIRST   64  /* a part's first table (all of them in one mapping: ids_first) */
#define ID_GROWN   512 /* a part's first table of its own: a page */
#define ID_PART(h) ((uint32_t)(h) >> 26)

/* Whether part `p`'s table is a mapping of its own (a first table is in ids_first). */
static inline bool
idpart_own(const idpart *p)
{
    return p->mask >= ID_GROWN - 1;
}

/* Grouped by who writes what, a cache line each, so that the counters every call writes
 * (`current`, `peak`) share no line with the fields every call reads (`gen`, `region`,
 * `wide_default`...): with several threads, a line one writes is a cache miss for the others. */
struct zwi_tracer {
    shard shards[NSHARDS];

    /* read by every call, written rarely */
    _Alignas(64) unsigned nframe; /* traceback limit */
    /* traced bytes and their peak count the default domain only (set once, before any trace:
     * the preload library's mmap domain is counted apart from the heap) */
    bool default_only;
    /* generation: thread cache entries of other generations never match. Stored by clear() with
     * every lock held, loaded without a lock by the hooks (atomic, relaxed: a thread that reads
     * the old value counts one more call for the old generation, which clear() dropped) */
    _Atomic uint64_t gen;
    char *region;       /* the tracebacks' store: region_size bytes reserved */
    size_t region_size; /* TB_REGION, or less under an address space limit (tb_region_size) */
    struct node *nodes; /* the tree's nodes, in the region: node_cap of them, by id */
    struct tbent *tbs;  /* the tracebacks, in the region after the nodes: tb_cap, by ref */
    size_t node_cap;
    size_t tb_cap;
    size_t node_ready; /* bytes of `nodes` and `tbs` made ready (zwi_make_ready) */
    size_t tb_ready;
    /* entries of the default domain in the wide table (blocks >= 4 GiB), changed under wide_lock
     * and read without it: 0 lets a record or a free of the default domain skip the wide table,
     * which the mmap domain's traces keep non-empty */
    atomic_size_t wide_default;

    /* written by every call */
    _Alignas(64) _Atomic int64_t current; /* traced bytes now (see the file comment) */
    _Atomic int64_t peak; /* the most traced bytes seen since start/clear/reset_peak */

    /* the wide table: other domains and sizes >= 4 GiB */
    _Alignas(64) zwi_lock wide_lock;
    wide_slot *wide; /* wide_mask + 1 slots, or NULL */
    size_t wide_mask;
    atomic_size_t wide_count; /* read without the lock (wide_has): 0 skips the table */

    /* tracebacks, under intern_lock */
    _Alignas(64) zwi_lock intern_lock;
    size_t node_count; /* nodes made: ids 1..node_count (0 is the root) */
    size_t tb_count;   /* tracebacks made: refs 1..tb_count */
    size_t node_dirty; /* the most node_count has been since the last discard */
    size_t tb_dirty;   /* the same for tb_count */
    /* the tables of ids: an entry is an id (0: empty) under the low 32 bits of its key's hash
     * (ENTRY), so a probe and a rehash compare keys without reading the nodes or tracebacks.
     * Each table is ID_PARTS parts by the hash's top bits, each part growing on its own */
    idpart node_ids[ID_PARTS]; /* node ids by node_hash(parent, ret) */
    idpart tb_ids[ID_PARTS];   /* refs by tb_hash() */
    uint64_t *ids_first;       /* the parts' first tables, ID_FIRST entries each: one mapping */

    /* a growing table's old entries, copied here before it doubles in place (table_double):
     * held from the copy to the end of the rehash, by a thread holding the table's lock */
    _Alignas(64) zwi_lock scratch_lock;
    void *scratch; /* scratch_size bytes, mapped, or NULL */
    size_t scratch_size;
    size_t in_place; /* tables doubled in place so far */
    size_t remapped; /* of them, by mremap (the others in their slices) */

    /* NSHARDS * SLICE bytes reserved (MAP_NORESERVE), shard k's table at slices + k * SLICE while
     * it fits there; NULL under an address space limit, or if the reservation failed */
    char *slices;
    size_t slice; /* bytes of a slice: SLICE, or less for a test (zwi_tracer_slice_next) */
};

/* ---- tables that double ---- */

/* A table doubles in place (in its shard's slice, else by mremap): its pages keep their memory
 * and only the new half is fresh, where a new mapping of twice the size was fresh all over.
 * Under a hypervisor a fresh page can cost ~5 us at its first touch, populated or not (a
 * populated one costs ~1 us more in the kernel, a faulted one ~6): python building 2M strings
 * grew its 64 shard tables to 64 MiB through 134 MiB of fresh pages, 0.17 s of the bookkeeping
 * thread's ~0.8. The old entries are copied first to the tracer's scratch mapping (kept, the size
 * of the biggest table doubled so far; a copy costs a few us per 64 KiB) and rehashed from there.
 * A thread that finds the scratch busy, or an mremap that fails, takes the old way: a new mapping
 * (the scratch is held by a thread growing another table meanwhile). */

/* ThreadSanitizer does not follow mremap: the moved pages would keep the shadow of whatever was
 * mapped at their new address before (a false race). Its builds take a new mapping instead. */
#ifdef __SANITIZE_THREAD__
#define NO_REMAP 1
#else
#define NO_REMAP 0
#endif

/* Where a table is, for its doubling: a mapping of its own (remapped), the start of a shard's slice
 * with room for twice its size (doubled where it is), or a slice without that room (copied out). */
enum { TABLE_OWN, TABLE_SLICE, TABLE_SLICE_FULL };

/* Table `old` (`bytes`, at `where`) doubled: a table of 2 * bytes, empty, or NULL if out of
 * memory. *from: where its entries are to be read, the scratch (then held) or `old` itself (then
 * still mapped); table_done, after the rehash, gives each back. */
static void *
table_double(zwi_tracer *t, void *old, size_t bytes, int where, const void **from)
{
    *from = old;
    if (where == TABLE_SLICE_FULL || !zwi_lock_try(&t->scratch_lock))
        return map_pages(2 * bytes, MAP_POPULATE);
    if (t->scratch_size < bytes) {
        /* no memory for it: none for a new table either */
        void *mem = map_pages(bytes, MAP_POPULATE);
        if (mem == NULL) {
            zwi_lock_release(&t->scratch_lock);
            return NULL;
        }
        if (t->scratch != NULL)
            munmap(t->scratch, t->scratch_size);
        t->scratch = mem;
        t->scratch_size = bytes;
    }
    memcpy(t->scratch, old, bytes);
    /* in a slice, the table stays where it is: no page moves, no other thread's TLB is flushed */
    void *tab = fail_now()             ? MAP_FAILED
                : where == TABLE_SLICE ? old
                : NO_REMAP             ? MAP_FAILED
                                       : mremap(old, bytes, 2 * bytes, MREMAP_MAYMOVE);
    if (tab != MAP_FAILED) {
        t->in_place++;
        t->remapped += where != TABLE_SLICE;
        memset(tab, 0, bytes);
        /* the new half at once (a failure leaves its pages to fault in) */
        (void)madvise((char *)tab + bytes, bytes, MADV_POPULATE_WRITE);
        *from = t->scratch;
        return tab;
    }
    zwi_lock_release(&t->scratch_lock);
    return map_pages(2 * bytes, MAP_POPULATE);
}

size_t
zwi_tracer_doubled_in_place(zwi_tracer *t, size_t *remapped)
{
    zwi_lock_acquire(&t->scratch_lock);
    size_t n = t->in_place;
    if (remapped != NULL)
        *remapped = t->remapped;
    zwi_lock_release(&t->scratch_lock);
    return n;
}

/* After the rehash of a table_double: the scratch given back, or the old table unmapped (in a
 * slice, its pages given back: the slice stays reserved, and empty). */
static void
table_done(zwi_tracer *t, void *old, size_t bytes, int where, const void *from)
{
    if (from != old)
        zwi_lock_release(&t->scratch_lock);
    else if (where != TABLE_OWN)
        (void)madvise(old, bytes, MADV_DONTNEED);
    else
        munmap(old, bytes);
}

/* ---- the thread registry ---- */

/* Every live thread's state, and the key whose destructor unregisters a thread's state when it
 * exits. Process-wide by nature: the key is made
 * once (pthread_once) and never changed; the list is guarded by `lock`. */
static struct {
    pthread_once_t once;
    pthread_key_t key;
    bool key_ok;   /* the key could be made; otherwise states of exited threads stay listed */
    zwi_lock lock; /* guards `threads` */
    zwi_thread *threads;
    atomic_uint_fast64_t generations; /* generations handed out: only ever incremented */
} T = {.once = PTHREAD_ONCE_INIT};

/* A new generation number: distinct across tracers of a process (time plus a counter). */
static uint64_t
new_generation(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) * 64 +
           (atomic_fetch_add(&T.generations, 1) & 63);
}

static inline uint64_t
mix64(uint64_t z)
{
    z = (z ^ (z >> 33)) * 0xff51afd7ed558ccdULL;
    z = (z ^ (z >> 33)) * 0xc4ceb9fe1a85ec53ULL;
    return z ^ (z >> 33);
}

/* A shard's new table, under its lock. Atomic stores (plain moves): zwi_tracer_prefetch() reads
 * both fields without the lock. */
static void
shard_set_table(shard *s, slot *tab, size_t mask)
{
    __atomic_store_n(&s->slots, tab, __ATOMIC_RELAXED);
    __atomic_store_n(&s->mask, mask, __ATOMIC_RELAXED);
    s->limit = ((mask + 1) * s->fill) >> 8;
}

/* The slice of the tracers made from now on (for tests: 0 for none). */
static _Atomic size_t slice_next = SLICE;

void
zwi_tracer_slice_next(size_t bytes)
{
    atomic_store(&slice_next, bytes);
}

/* Shard `s`'s slice (see zwi_tracer_new), or NULL. */
static inline slot *
shard_slice(const zwi_tracer *t, const shard *s)
{
    return t->slices == NULL ? NULL : (slot *)(t->slices + (size_t)(s - t->shards) * t->slice);
}

static inline bool
shard_in_slice(const zwi_tracer *t, const shard *s)
{
    return t->slices != NULL && s->slots == shard_slice(t, s);
}

/* Shard `s`'s first table (SHARD_MIN slots): at the start of its slice, else mapped. */
static int
shard_init(zwi_tracer *t, shard *s)
{
    s->fill = GROW_AT((size_t)(s - t->shards));
    slot *tab = t->slices != NULL ? shard_slice(t, s) : map_pages(SHARD_MIN * sizeof(slot), 0);
    if (tab == NULL)
        return -1;
    shard_set_table(s, tab, SHARD_MIN - 1);
    s->count = 0;
    return 0;
}

/* The reservation for tracebacks: TB_REGION, or 1/16 of the address space limit (ulimit -v)
 * when that is smaller, so that tracing works, and leaves the program room, under a limit. */
static size_t
tb_region_size(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
        rl.rlim_cur / 16 >= TB_REGION)
        return TB_REGION;
    size_t n = round_page((size_t)(rl.rlim_cur / 16));
    return n < TB_REGION_MIN ? TB_REGION_MIN : n;
}

static void store_layout(zwi_tracer *t);

static inline uint64_t
gen_of(const zwi_tracer *t)
{
    return atomic_load_explicit(&((zwi_tracer *)t)->gen, memory_order_relaxed);
}

zwi_tracer *
zwi_tracer_new(unsigned nframe)
{
    zwi_tracer *t = map_pages(round_page(sizeof(zwi_tracer)), 0);
    if (t == NULL)
        return NULL;
    t->nframe = nframe;
    atomic_store_explicit(&t->gen, new_generation(), memory_order_relaxed);
    t->region_size = tb_region_size();
    t->region = map_pages(t->region_size, MAP_NORESERVE);
    if (t->region == NULL)
        goto fail;
    store_layout(t);
    t->ids_first = map_pages(2 * ID_PARTS * ID_FIRST * sizeof(uint64_t), 0);
    if (t->ids_first == NULL)
        goto fail;
    for (size_t k = 0; k < ID_PARTS; k++) {
        t->node_ids[k] = (idpart){t->ids_first + k * ID_FIRST, ID_FIRST - 1, 0};
        t->tb_ids[k] = (idpart){t->ids_first + (ID_PARTS + k) * ID_FIRST, ID_FIRST - 1, 0};
    }
    /* Each shard doubles in place inside a slice of its own (MAP_NORESERVE: only the pages its
     * table uses are committed), where a remap moved the table's pages to a new address: every
     * mremap and munmap flushed the TLB of the program's threads too (an interrupt on each CPU
     * the process runs on, dear under a hypervisor: python3.11 building 2M strings, 512 of them,
     * ~1.2 % of the bookkeeping thread's samples in the kernel's flush alone). Not under an
     * address space limit, which 16 GiB more would eat into: the tables are then mappings. */
    struct rlimit rl;
    t->slice = atomic_load(&slice_next);
    if (t->slice != 0 && getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur == RLIM_INFINITY) {
        void *p = mmap(NULL, NSHARDS * t->slice, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        t->slices = p == MAP_FAILED ? NULL : p;
    }
    for (size_t i = 0; i < NSHARDS; i++) {
        if (shard_init(t, &t->shards[i]) != 0)
            goto fail;
    }
    return t;
fail:
    zwi_tracer_free(t);
    errno = ENOMEM;
    return NULL;
}

void
zwi_tracer_free(zwi_tracer *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < NSHARDS; i++) {
        if (t->shards[i].slots != NULL && !shard_in_slice(t, &t->shards[i]))
            munmap(t->shards[i].slots, (t->shards[i].mask + 1) * sizeof(slot));
    }
    if (t->slices != NULL)
        munmap(t->slices, NSHARDS * t->slice);
    if (t->wide != NULL)
        munmap(t->wide, (t->wide_mask + 1) * sizeof(wide_slot));
    for (size_t k = 0; k < ID_PARTS; k++) {
        if (idpart_own(&t->node_ids[k]))
            munmap(t->node_ids[k].tab, (t->node_ids[k].mask + 1) * sizeof(uint64_t));
        if (idpart_own(&t->tb_ids[k]))
            munmap(t->tb_ids[k].tab, (t->tb_ids[k].mask + 1) * sizeof(uint64_t));
    }
    if (t->ids_first != NULL)
        munmap(t->ids_first, 2 * ID_PARTS * ID_FIRST * sizeof(uint64_t));
    if (t->scratch != NULL)
        munmap(t->scratch, t->scratch_size);
    if (t->region != NULL)
        munmap(t->region, t->region_size);
    munmap(t, round_page(sizeof(zwi_tracer)));
}

unsigned
zwi_tracer_nframe(const zwi_tracer *t)
{
    return t->nframe;
}

/* ---- tracebacks: a prefix tree of frames ---- */

/* A node of the tree: return address `ret` called from the path `parent` (0: ret is the
 * outermost frame of a traceback; node 0 is the root, no frame). The nodes of a path from the
 * root are a traceback's frames from the outermost in, so tracebacks that share their outer
 * frames (main and what it called, as the tracebacks of a program nearly all do) share those
 * nodes. Never changes once made (until clear). */
typedef struct node {
    uintptr_t ret;
    uint32_t parent;
    uint32_t child; /* the child last found or made under this node (0: none yet): a hint that
                     * spares most lookups of a descent the table's two cache misses */
} node;

/* A traceback: its innermost frame's node (0: no frame) and the frames on the stack. Never
 * changes once made (until clear). */
typedef struct tbent {
    uint32_t node;
    uint32_t hash;   /* tb_hash() of its frames, nframe and total */
    uint16_t nframe; /* frames kept: the node's depth */
    uint16_t total;  /* frames on the stack, capped at 65535 */
} tbent;

_Static_assert(sizeof(node) == 16 && sizeof(tbent) == 12, "the store's figures assume these");

/* A thread's cache may name a traceback that a clear() in another thread just recycled and that a
 * third thread is rewriting: the cache path reads nodes and tracebacks without the intern lock,
 * so every read and write of their fields is a relaxed atomic (plain moves on x86-64). A mixed
 * read only fails to match; a match is a traceback with these very frames, valid in the
 * generation the caller checks (see insert()). */
#define TB_LOAD(x)     __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define TB_STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

/* Splits the reservation: nodes from its start, tracebacks from the last eighth on. */
static void
store_layout(zwi_tracer *t)
{
    size_t node_bytes = round_page(t->region_size / 8 * 7);
    t->nodes = (node *)t->region;
    t->node_cap = node_bytes / sizeof(node);
    t->tbs = (tbent *)(t->region + node_bytes);
    t->tb_cap = (t->region_size - node_bytes) / sizeof(tbent);
    if (t->node_cap > UINT32_MAX)
        t->node_cap = UINT32_MAX;
    if (t->tb_cap > UINT32_MAX)
        t->tb_cap = UINT32_MAX;
}

unsigned
zwi_tracer_tb(const zwi_tracer *t, uint32_t ref, uintptr_t *frames, unsigned *total)
{
    const tbent *x = &t->tbs[ref];
    unsigned n = x->nframe;
    uint32_t id = x->node;
    for (unsigned k = 0; k < n; k++) { /* the parents' chain, innermost frame first */
        const node *y = &t->nodes[id];
        frames[k] = y->ret;
        id = y->parent;
    }
    ZW_ASSERT(id == 0);
    *total = x->total;
    return n;
}

/* Rotate-and-xor per frame (one cycle of latency each, not a multiply), then one mix: this runs
 * on every traced allocation that is not the thread's last one again. */
static uint32_t
tb_hash(const uintptr_t *frames, unsigned n, unsigned total)
{
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)n << 16 | total);
    for (unsigned i = 0; i < n; i++)
        h = ((h << 7) | (h >> 57)) ^ frames[i];
    h = mix64(h);
    return (uint32_t)h | 1; /* never 0 */
}

static inline uint64_t
node_hash(uint32_t parent, uintptr_t ret)
{
    return mix64((uint64_t)ret ^ ((uint64_t)parent << 32 | parent));
}

/* An entry of a table of ids: the id and the low 32 bits of its key's hash, which pick its home
 * slot (a mask is below 2^32: ids are 32 bits, a table twice their count). */
#define ENTRY(h, id) ((uint64_t)(uint32_t)(h) << 32 | (uint32_t)(id))
#define ENTRY_ID(e)  ((uint32_t)(e))
#define ENTRY_H(e)   ((uint32_t)((e) >> 32))

/* Part `p` of a table of ids twice as big (a page at least). */
static int
grow_ids_locked(zwi_tracer *t, idpart *p)
{
    size_t cap = (p->mask + 1) * 2 < ID_GROWN ? ID_GROWN : (p->mask + 1) * 2;
    size_t bytes = (p->mask + 1) * sizeof(uint64_t);
    /* a first table stays where it is: the first tables share one mapping */
    const void *from = p->tab;
    uint64_t *tab = idpart_own(p) ? table_double(t, p->tab, bytes, TABLE_OWN, &from)
                                  : map_pages(cap * sizeof(uint64_t), MAP_POPULATE);
    if (tab == NULL)
        return -1;
    const uint64_t *old = from;
    for (size_t i = 0; i <= p->mask; i++) {
        uint64_t e = old[i];
        if (e == 0)
            continue;
        size_t j = ENTRY_H(e) & (cap - 1);
        while (tab[j] != 0)
            j = (j + 1) & (cap - 1);
        tab[j] = e;
    }
    if (idpart_own(p))
        table_done(t, p->tab, bytes, TABLE_OWN, from);
    p->tab = tab;
    p->mask = cap - 1;
    return 0;
}

/* The node of `ret` called from `parent`, made now if new; 0 if out of memory. The parent's
 * last child is tried first: a new traceback's descent mostly retraces one made just before
 * (nodes made in a row sit side by side), where the table costs two cache misses a node. A
 * parent made in this descent (`fresh`) has no child yet: the new node only needs a free slot,
 * found without reading the nodes of the slots on the way (cc1plus: 700k of its 802k nodes). */
static uint32_t
node_locked(zwi_tracer *t, uint32_t parent, uintptr_t ret, bool fresh)
{
    node *up = &t->nodes[parent];
    uint32_t id = up->child;
    if (!fresh && id != 0 && id <= t->node_count && t->nodes[id].ret == ret &&
        t->nodes[id].parent == parent)
        return id; /* no hash for the common case */
    uint32_t h = (uint32_t)node_hash(parent, ret);
    idpart *part = &t->node_ids[ID_PART(h)];
    size_t i = h & part->mask;
    if (fresh) {
        while (part->tab[i] != 0)
            i = (i + 1) & part->mask;
    } else {
        for (uint64_t e; (e = part->tab[i]) != 0; i = (i + 1) & part->mask) {
            id = ENTRY_ID(e);
            if (ENTRY_H(e) == h && t->nodes[id].ret == ret && t->nodes[id].parent == parent) {
                TB_STORE(up->child, id);
                return id;
            }
        }
    }
    if (t->node_count + 1 >= t->node_cap || fail_now())
        return 0;
    if (2 * (part->count + 1) > part->mask + 1) {
        if (grow_ids_locked(t, part) != 0)
            return 0;
        i = h & part->mask;
        while (part->tab[i] != 0)
            i = (i + 1) & part->mask;
    }
    id = (uint32_t)++t->node_count;
    if (t->node_count > t->node_dirty)
        t->node_dirty = t->node_count;
    zwi_make_ready((char *)t->nodes, &t->node_ready, (id + 1) * sizeof(node),
               round_page(t->node_cap * sizeof(node)));
    node *x = &t->nodes[id];
    TB_STORE(x->ret, ret);
    TB_STORE(x->parent, parent);
    TB_STORE(x->child, 0);
    TB_STORE(up->child, id);
    part->tab[i] = ENTRY(h, id);
    part->count++;
    return id;
}

/* True if the path of n nodes ending at node `id` holds `frames` (innermost first), given that
 * the thread's path holds the outer `d` frames (path_node[d - 1] their node); on a match the
 * path holds all n. Checks the inner n - d frames, walking from the innermost frame's node up:
 * tracebacks made together have nodes side by side. No lock: see TB_LOAD. */
static bool
chain_matches(const zwi_tracer *t, zwi_thread *th, uint32_t id, const uintptr_t *frames, unsigned n,
              unsigned d)
{
    for (unsigned k = 0; k + d < n; k++) { /* frames[k] is at depth n - 1 - k */
        const node *y = &t->nodes[id];
        if (TB_LOAD(y->ret) != frames[k])
            return false;
        th->path_node[n - 1 - k] = id;
        th->path_ret[n - 1 - k] = frames[k];
        id = TB_LOAD(y->parent);
    }
    return id == (d > 0 ? th->path_node[d - 1] : 0);
}

/* True if traceback `ref` is (frames, n, total) of hash `hash`: see chain_matches. */
static bool
tb_matches(const zwi_tracer *t, zwi_thread *th, uint32_t ref, uint32_t hash, const uintptr_t *frames,
           unsigned n, unsigned total, unsigned d)
{
    const tbent *x = &t->tbs[ref];
    if (TB_LOAD(x->hash) != hash || TB_LOAD(x->nframe) != n || TB_LOAD(x->total) != total)
        return false;
    return chain_matches(t, th, TB_LOAD(x->node), frames, n, d);
}

/* Empties the thread's traceback part, which then holds ids of generation `gen`. A fresh state
 * (generation 0) is empty already: its pages stay untouched until used. */
static void
thread_forget(zwi_thread *th, uint64_t gen)
{
    if (th->gen != 0) {
        memset(th->cache, 0, sizeof(th->cache));
        memset(th->site, 0, sizeof(th->site));
    }
    th->path_n = 0;
    th->path_total = UINT_MAX;
    th->gen = gen;
}

/* The traceback's ref under the intern lock, found in the table of tracebacks or made now; 0 if
 * out of memory. `th`'s path holds its outer `d` frames, and all n after; `th` may be a
 * thread's state or `scratch` (a thread with none). */
static uint32_t
intern_locked(zwi_tracer *t, zwi_thread *th, uint32_t hash, const uintptr_t *frames, unsigned n,
              unsigned total, unsigned d)
{
    uint32_t ref = 0;
    zwi_lock_acquire(&t->intern_lock);
    uint64_t gen = gen_of(t);
    if (th->gen != gen) { /* cleared since the thread looked: from the root */
        thread_forget(th, gen);
        d = 0;
    }
    idpart *part = &t->tb_ids[ID_PART(hash)];
    size_t i = hash & part->mask;
    for (uint64_t e; (e = part->tab[i]) != 0; i = (i + 1) & part->mask) {
        uint32_t r = ENTRY_ID(e);
        if (ENTRY_H(e) == hash && tb_matches(t, th, r, hash, frames, n, total, d)) {
            ref = r;
            th->path_n = n;
            goto out;
        }
    }
    uint32_t parent = d > 0 ? th->path_node[d - 1] : 0;
    bool fresh = false; /* parent made in this descent */
    for (; d < n; d++) {
        uintptr_t ret = frames[n - 1 - d];
        size_t made = t->node_count;
        uint32_t id = node_locked(t, parent, ret, fresh);
        if (id == 0)
            goto out;
        fresh = t->node_count != made;
        th->path_ret[d] = ret;
        th->path_node[d] = id;
        th->path_n = d + 1;
        parent = id;
    }
    if (t->tb_count + 1 >= t->tb_cap || fail_now())
        goto out;
    if (2 * (part->count + 1) > part->mask + 1) {
        if (grow_ids_locked(t, part) != 0)
            goto out;
        i = hash & part->mask;
        while (part->tab[i] != 0)
            i = (i + 1) & part->mask;
    }
    ref = (uint32_t)++t->tb_count;
    if (t->tb_count > t->tb_dirty)
        t->tb_dirty = t->tb_count;
    zwi_make_ready((char *)t->tbs, &t->tb_ready, (ref + 1) * sizeof(tbent),
               t->tb_cap * sizeof(tbent) / PAGE * PAGE);
    tbent *x = &t->tbs[ref];
    TB_STORE(x->node, parent);
    TB_STORE(x->hash, hash);
    TB_STORE(x->nframe, (uint16_t)n);
    TB_STORE(x->total, (uint16_t)total);
    part->tab[i] = ENTRY(hash, ref);
    part->count++;
out:
    zwi_lock_release(&t->intern_lock);
    return ref;
}

/* The entry of zwi_thread.site for allocation site `pc` (a traceback's first frame). */
static inline unsigned
site_slot(uintptr_t pc)
{
    return (unsigned)(((uint64_t)pc * 0x9E3779B97F4A7C15ULL) >> (64 - ZWI_SITE_BITS));
}

/* The ref of the traceback this allocation site (frames[0]) gave last in this thread, if these
 * are its frames, else 0; *sitep: the site's entry of the memo. */
static inline __attribute__((always_inline)) uint32_t
intern_memo(zwi_tracer *t, zwi_thread *th, const uintptr_t *frames, unsigned n, unsigned total,
            struct zwi_tbsite **sitep)
{
    uint64_t cur = gen_of(t);
    if (ZW_UNLIKELY(th->gen != cur))
        thread_forget(th, cur);
    uintptr_t pc = n > 0 ? frames[0] : 0;
    struct zwi_tbsite *site = &th->site[site_slot(pc)];
    *sitep = site;
    if (site->ref != 0 && site->pc == pc && site->n == n && site->total == total) {
        unsigned k = 0; /* the traceback this site gave last, its frames kept here */
        while (k < n && site->frames[k] == frames[k])
            k++;
        if (k == n)
            return site->ref;
    }
    return 0;
}

/* The traceback's ref. First the traceback this allocation site gave last in this thread, its
 * frames kept in the thread's state (up to ZWI_SITE_FRAMES of them): a compare per frame of
 * memory no other thread touches. Else the thread's last path: the outer frames this traceback
 * shares with it cost a compare each; one of the same hash from the thread's cache, else from the
 * table under the intern lock, is checked against the inner frames only, by walking its nodes up
 * to the path's; else the inner frames' nodes are found or made in the tree. */
static uint32_t
intern(zwi_tracer *t, const uintptr_t *frames, unsigned n, unsigned total)
{
    if (ZW_UNLIKELY(n > t->nframe))
        n = t->nframe;
    if (total > 65535)
        total = 65535;
    zwi_thread *th = zwi_trace_self;
    if (ZW_UNLIKELY(th == NULL)) { /* no state of its own: a scratch one, under the lock */
        static zwi_thread scratch; /* only used under the intern lock */
        return intern_locked(t, &scratch, tb_hash(frames, n, total), frames, n, total, 0);
    }
    struct zwi_tbsite *site;
    uint32_t memo = intern_memo(t, th, frames, n, total, &site);
    if (memo != 0)
        return memo;
    unsigned d = zwi_shared_outer(th->path_ret, frames, n, n < th->path_n ? n : th->path_n);
    if (d == n && th->path_n == n && th->path_total == total)
        return th->path_ref; /* the traceback of the thread's last allocation */
    th->path_n = d;
    th->path_total = UINT_MAX;
    uint32_t ref = 0;
    uint32_t hash = tb_hash(frames, n, total);
    struct zwi_tbcache *c = &th->cache[hash & (ZWI_TB_CACHE - 1)];
    if (c->hash == hash && c->nframe == n && c->total == total &&
        chain_matches(t, th, c->node, frames, n, d)) {
        ref = c->ref;
    } else {
        ref = intern_locked(t, th, hash, frames, n, total, d);
        if (ref == 0)
            return 0;
        /* the path now holds all n frames */
        *c = (struct zwi_tbcache){hash, ref, n > 0 ? th->path_node[n - 1] : 0, (uint16_t)n,
                                  (uint16_t)total};
    }
    if (n <= ZWI_SITE_FRAMES) {
        site->pc = n > 0 ? frames[0] : 0;
        site->ref = ref;
        site->n = (uint16_t)n;
        site->total = (uint16_t)total;
        for (unsigned k = 0; k < n; k++) /* short: a call to memcpy costs more */
            site->frames[k] = frames[k];
    }
    th->path_n = n;
    th->path_total = total;
    th->path_ref = ref;
    return ref;
}

/* ---- the shards ---- */

/* The shard (low 6 bits) and home slot (the rest) of a block: blocks of one 4 KiB page go to one
 * shard and to one 4 KiB stretch of its slots (a permutation of the page's 16-byte units), so a
 * program allocating or freeing neighbouring blocks touches neighbouring slots, where a hash of
 * the whole address sent every record to a cold cache line and TLB entry (python building 2M
 * strings: insert and remove were 40% of the traced run's samples). The page's slot range is
 * scrambled by a hash of the page number, so page-aligned blocks still spread over small tables. */
static inline uint64_t
ptr_hash(uintptr_t ptr)
{
    uint64_t unit = (uint64_t)ptr >> 4;
    uint64_t page = unit >> 8;
    uint64_t scramble = (page * 0x9E3779B97F4A7C15u) >> 56;
    uint64_t home = ((page / NSHARDS) << 8) + ((unit & 0xff) ^ scramble);
    return home << 6 | (page & (NSHARDS - 1));
}
_Static_assert(NSHARDS == 64, "ptr_hash and home_of take the shard from the low 6 bits");

static inline size_t
shard_index(uint64_t h)
{
    return (size_t)(h & (NSHARDS - 1));
}

static inline shard *
shard_of(zwi_tracer *t, uint64_t h)
{
    return &t->shards[shard_index(h)];
}

static inline size_t
home_of(const shard *s, uint64_t h)
{
    return (size_t)(h >> 6) & s->mask;
}

static int
shard_grow_locked(zwi_tracer *t, shard *s)
{
    size_t cap = (s->mask + 1) * 2;
    size_t bytes = (s->mask + 1) * sizeof(slot);
    int where = !shard_in_slice(t, s) ? TABLE_OWN : 2 * bytes <= t->slice ? TABLE_SLICE
                                                                         : TABLE_SLICE_FULL;
    const void *from;
    slot *tab = table_double(t, s->slots, bytes, where, &from);
    if (tab == NULL)
        return -1;
    const slot *old = from;
    for (size_t i = 0; i <= s->mask; i++) {
        if (old[i].ptr == 0)
            continue;
        size_t j = (size_t)(ptr_hash(old[i].ptr) >> 6) & (cap - 1);
        while (tab[j].ptr != 0)
            j = (j + 1) & (cap - 1);
        tab[j] = old[i];
    }
    table_done(t, s->slots, bytes, where, from);
    shard_set_table(s, tab, cap - 1);
    return 0;
}

void
zwi_tracer_prefetch(const zwi_tracer *t, uintptr_t ptr)
{
    uint64_t h = ptr_hash(ptr);
    const shard *s = &t->shards[h & (NSHARDS - 1)];
    /* a racy read of slots and mask (a grow may be changing them): a prefetch of a stale address
     * is harmless */
    const slot *slots = __atomic_load_n(&s->slots, __ATOMIC_RELAXED);
    size_t mask = __atomic_load_n(&s->mask, __ATOMIC_RELAXED);
    __builtin_prefetch(&slots[(size_t)(h >> 6) & mask], 1, 3);
}

/* Removes slot i by shifting later members of its run back (no tombstones). */
static void
shard_delete_at_locked(shard *s, size_t i)
{
    size_t j = i;
    for (;;) {
        j = (j + 1) & s->mask;
        if (s->slots[j].ptr == 0)
            break;
        size_t home = home_of(s, ptr_hash(s->slots[j].ptr));
        /* slot j may move to i if its home is not in (i, j] (cyclically) */
        bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (stays)
            continue;
        s->slots[i] = s->slots[j];
        i = j;
    }
    s->slots[i].ptr = 0;
    s->count--;
}

/* ---- batches: a thread applying records in runs keeps the shard locks it takes ---- */

/* The calling thread's batch (zwi_tracer_batch_begin): its tracer, and the shards whose locks it
 * keeps until the batch ends (bit k: shard k). */
static _Thread_local struct {
    zwi_tracer *t;
    uint64_t held;
} my_batch __attribute__((tls_model("initial-exec")));

_Static_assert(NSHARDS <= 64, "a batch's shards held are the bits of a word");

static inline bool
in_batch(const zwi_tracer *t)
{
    return my_batch.t == t;
}

static void
batch_release(zwi_tracer *t)
{
    for (uint64_t h = my_batch.held; h != 0; h &= h - 1)
        zwi_lock_release(&t->shards[__builtin_ctzll(h)].lock);
    my_batch.held = 0;
}

/* Takes shard s's lock, or, in a batch, keeps it from then on if not held yet. A batch never
 * waits for a lock while it holds others (which it took in no order): it lets them go first. */
static inline void
shard_lock(zwi_tracer *t, shard *s)
{
    if (ZW_LIKELY(!in_batch(t))) {
        zwi_lock_acquire(&s->lock);
        return;
    }
    uint64_t bit = (uint64_t)1 << (s - t->shards);
    if (my_batch.held & bit)
        return;
    if (!zwi_lock_try(&s->lock)) {
        batch_release(t);
        zwi_lock_acquire(&s->lock);
    }
    my_batch.held |= bit;
}

static inline void
shard_unlock(zwi_tracer *t, shard *s)
{
    if (ZW_LIKELY(!in_batch(t)))
        zwi_lock_release(&s->lock);
}

void
zwi_tracer_batch_begin(zwi_tracer *t)
{
    ZW_ASSERT(my_batch.t == NULL);
    my_batch.t = t;
    my_batch.held = 0;
}

void
zwi_tracer_batch_end(zwi_tracer *t)
{
    ZW_ASSERT(in_batch(t));
    batch_release(t);
    my_batch.t = NULL;
}

size_t
zwi_tracer_shard_of(uintptr_t ptr)
{
    return shard_index(ptr_hash(ptr));
}

/* ---- traced bytes ---- */

/* The counter changes with the table, under the lock of the slot that changes: a clear(), which
 * holds every lock and zeroes it, sees the table and the counter agree (a change made after the
 * unlock could add the bytes of a block the clear had already erased). */

/* Counts `n` traced bytes more (or fewer); a new maximum is the peak. In a batch the calling
 * thread is the only one changing them (zwi_tracer_batch_begin): a load and a store. */
static inline void
traced_change(zwi_tracer *t, int64_t n)
{
    if (in_batch(t)) {
        int64_t now = atomic_load_explicit(&t->current, memory_order_relaxed) + n;
        atomic_store_explicit(&t->current, now, memory_order_relaxed);
        if (n > 0 && now > atomic_load_explicit(&t->peak, memory_order_relaxed))
            atomic_store_explicit(&t->peak, now, memory_order_relaxed);
        return;
    }
    int64_t now = atomic_fetch_add_explicit(&t->current, n, memory_order_relaxed) + n;
    if (n > 0) {
        int64_t peak = atomic_load_explicit(&t->peak, memory_order_relaxed);
        while (now > peak && !atomic_compare_exchange_weak_explicit(
                                 &t->peak, &peak, now, memory_order_relaxed, memory_order_relaxed))
            ;
    }
}

static inline void
traced_add(zwi_tracer *t, size_t n)
{
    traced_change(t, (int64_t)n);
}

static inline void
traced_sub(zwi_tracer *t, size_t n)
{
    traced_change(t, -(int64_t)n);
}

/* Whether traces of `domain` count in the traced bytes (see zwi_tracer.default_only). */
static inline bool
counted(const zwi_tracer *t, unsigned domain)
{
    return !t->default_only || domain == ZW_TRACE_DEFAULT_DOMAIN;
}

/* Traced bytes now. */
static int64_t
traced_now(zwi_tracer *t)
{
    int64_t n = atomic_load_explicit(&t->current, memory_order_relaxed);
    return n < 0 ? 0 : n;
}

/* ---- the wide table ---- */

/* Whether the wide table may hold traces of `domain` (read without the lock, as a free reads the
 * shards' absence of a block: the caller's own earlier record of it is seen). */
static inline bool
wide_has(const zwi_tracer *t, unsigned domain)
{
    zwi_tracer *w = (zwi_tracer *)t;
    if (domain == ZW_TRACE_DEFAULT_DOMAIN)
        return atomic_load_explicit(&w->wide_default, memory_order_relaxed) != 0;
    return atomic_load_explicit(&w->wide_count, memory_order_relaxed) != 0;
}

static inline size_t
wide_home(const zwi_tracer *t, uintptr_t ptr, unsigned domain)
{
    return (size_t)mix64(ptr ^ ((uint64_t)domain << 48) ^ domain) & t->wide_mask;
}

static int
wide_grow_locked(zwi_tracer *t)
{
    size_t cap = t->wide == NULL ? 256 : (t->wide_mask + 1) * 2;
    wide_slot *tab = map_pages(cap * sizeof(wide_slot), MAP_POPULATE);
    if (tab == NULL)
        return -1;
    wide_slot *old = t->wide;
    size_t oldcap = old == NULL ? 0 : t->wide_mask + 1;
    t->wide = tab;
    t->wide_mask = cap - 1;
    for (size_t i = 0; i < oldcap; i++) {
        if (old[i].ptr == 0)
            continue;
        size_t j = wide_home(t, old[i].ptr, old[i].domain);
        while (tab[j].ptr != 0)
            j = (j + 1) & t->wide_mask;
        tab[j] = old[i];
    }
    if (old != NULL)
        munmap(old, oldcap * sizeof(wide_slot));
    return 0;
}

/* The index of (domain, ptr) in the wide table, or SIZE_MAX. */
static size_t
wide_find_locked(const zwi_tracer *t, unsigned domain, uintptr_t ptr)
{
    if (t->wide == NULL)
        return SIZE_MAX;
    for (size_t i = wide_home(t, ptr, domain); t->wide[i].ptr != 0; i = (i + 1) & t->wide_mask) {
        if (t->wide[i].ptr == ptr && t->wide[i].domain == domain)
            return i;
    }
    return SIZE_MAX;
}

static void
wide_delete_at_locked(zwi_tracer *t, size_t i)
{
    unsigned domain = t->wide[i].domain;
    size_t j = i;
    for (;;) {
        j = (j + 1) & t->wide_mask;
        if (t->wide[j].ptr == 0)
            break;
        size_t home = wide_home(t, t->wide[j].ptr, t->wide[j].domain);
        bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (stays)
            continue;
        t->wide[i] = t->wide[j];
        i = j;
    }
    t->wide[i].ptr = 0;
    atomic_fetch_sub_explicit(&t->wide_count, 1, memory_order_relaxed);
    if (domain == ZW_TRACE_DEFAULT_DOMAIN)
        atomic_fetch_sub_explicit(&t->wide_default, 1, memory_order_relaxed);
}

static bool
wide_remove(zwi_tracer *t, unsigned domain, uintptr_t ptr, zwi_trace_rec *old)
{
    bool found = false;
    zwi_lock_acquire(&t->wide_lock);
    size_t i = wide_find_locked(t, domain, ptr);
    if (i != SIZE_MAX) {
        if (old != NULL)
            *old = (zwi_trace_rec){domain, t->wide[i].size, t->wide[i].tb};
        if (counted(t, domain))
            traced_sub(t, t->wide[i].size);
        wide_delete_at_locked(t, i);
        found = true;
    }
    zwi_lock_release(&t->wide_lock);
    return found;
}

static int
wide_insert(zwi_tracer *t, unsigned domain, uintptr_t ptr, size_t size, uint32_t tb,
            size_t *replaced, uint64_t gen)
{
    int rc = 0;
    zwi_lock_acquire(&t->wide_lock);
    if (gen_of(t) != gen) /* cleared since `tb` was interned: see insert() */
        goto out;
    size_t i = wide_find_locked(t, domain, ptr);
    if (i != SIZE_MAX) {
        *replaced = t->wide[i].size;
        if (counted(t, domain)) {
            traced_sub(t, t->wide[i].size);
            traced_add(t, size);
        }
        t->wide[i].size = size;
        t->wide[i].tb = tb;
        goto out;
    }
    size_t count = atomic_load_explicit(&t->wide_count, memory_order_relaxed);
    if ((t->wide == NULL || 4 * (count + 1) > 3 * (t->wide_mask + 1)) && wide_grow_locked(t)) {
        rc = -1;
        goto out;
    }
    i = wide_home(t, ptr, domain);
    while (t->wide[i].ptr != 0)
        i = (i + 1) & t->wide_mask;
    t->wide[i] = (wide_slot){ptr, size, tb, domain};
    atomic_fetch_add_explicit(&t->wide_count, 1, memory_order_relaxed);
    if (domain == ZW_TRACE_DEFAULT_DOMAIN)
        atomic_fetch_add_explicit(&t->wide_default, 1, memory_order_relaxed);
    if (counted(t, domain))
        traced_add(t, size);
out:
    zwi_lock_release(&t->wide_lock);
    return rc;
}

/* ---- records ---- */

/* Inserts or replaces; *replaced gets the size of a replaced trace (else left alone). */
static int
insert(zwi_tracer *t, unsigned domain, uintptr_t ptr, size_t size, uint32_t tb, size_t *replaced,
       uint64_t gen)
{
    uint64_t h = ptr_hash(ptr);
    shard *s = shard_of(t, h);
    bool narrow = domain == ZW_TRACE_DEFAULT_DOMAIN && size < SIZE_NARROW;
    if (narrow && wide_has(t, domain)) {
        /* the block may be in the wide table under an older size: take it out first */
        zwi_trace_rec old;
        if (wide_remove(t, domain, ptr, &old))
            *replaced = old.size;
    }
    if (!narrow) {
        /* a block of the default domain may be in the shards under an older, smaller size */
        if (domain == ZW_TRACE_DEFAULT_DOMAIN) {
            shard_lock(t, s);
            for (size_t i = home_of(s, h); s->slots[i].ptr != 0; i = (i + 1) & s->mask) {
                if (s->slots[i].ptr == ptr) {
                    *replaced = s->slots[i].size;
                    traced_sub(t, s->slots[i].size);
                    shard_delete_at_locked(s, i);
                    break;
                }
            }
            shard_unlock(t, s);
        }
        return wide_insert(t, domain, ptr, size, tb, replaced, gen);
    }
    int rc = 0;
    shard_lock(t, s);
    /* a clear() since `tb` was interned (it holds every lock to change the generation) reused its
     * bytes for other tracebacks: the block counts as allocated before the clear, untraced */
    if (gen_of(t) != gen)
        goto out;
    size_t i = home_of(s, h);
    for (; s->slots[i].ptr != 0; i = (i + 1) & s->mask) {
        if (s->slots[i].ptr == ptr) {
            *replaced = s->slots[i].size;
            traced_sub(t, s->slots[i].size);
            traced_add(t, size);
            s->slots[i].size = (uint32_t)size;
            s->slots[i].tb = tb;
            goto out;
        }
    }
    if (ZW_UNLIKELY(s->count + 1 > s->limit)) {
        if (shard_grow_locked(t, s) != 0) {
            rc = -1;
            goto out;
        }
        for (i = home_of(s, h); s->slots[i].ptr != 0; i = (i + 1) & s->mask)
            ;
    }
    s->slots[i] = (slot){ptr, (uint32_t)size, tb};
    s->count++;
    traced_add(t, size);
out:
    shard_unlock(t, s);
    return rc;
}

int
zwi_tracer_add(zwi_tracer *t, unsigned domain, uintptr_t ptr, size_t size, const uintptr_t *frames,
               unsigned nframe, unsigned total_nframe)
{
    uint64_t gen = gen_of(t); /* the traceback's generation, or an older one */
    uint32_t tb = intern(t, frames, nframe, total_nframe);
    if (tb == 0)
        return -1;
    size_t replaced = SIZE_MAX; /* insert() counts the bytes, the replaced trace's too */
    return insert(t, domain, ptr, size, tb, &replaced, gen);
}

uint32_t
zwi_tracer_intern(zwi_tracer *t, const uintptr_t *frames, unsigned nframe, unsigned total_nframe)
{
    return intern(t, frames, nframe, total_nframe);
}

uint32_t
zwi_tracer_intern_memo(zwi_tracer *t, const uintptr_t *frames, unsigned nframe,
                       unsigned total_nframe)
{
    zwi_thread *th = zwi_trace_self;
    /* generation 0: the thread never interned, its memo is empty (the preload library's threads
     * whose tracebacks the bookkeeping thread interns: their memo is never read further) */
    if (th == NULL || th->gen == 0 || nframe > t->nframe || total_nframe > 65535)
        return 0;
    struct zwi_tbsite *site;
    return intern_memo(t, th, frames, nframe, total_nframe, &site);
}

int
zwi_tracer_add_ref(zwi_tracer *t, unsigned domain, uintptr_t ptr, size_t size, uint32_t ref)
{
    ZW_ASSERT(ref != 0);
    size_t replaced = SIZE_MAX;
    return insert(t, domain, ptr, size, ref, &replaced, gen_of(t));
}

int
zwi_tracer_restore(zwi_tracer *t, uintptr_t ptr, const zwi_trace_rec *rec)
{
    size_t replaced = SIZE_MAX;
    return insert(t, rec->domain, ptr, rec->size, rec->tb, &replaced, gen_of(t));
}

void
zwi_tracer_count_default_only(zwi_tracer *t)
{
    t->default_only = true;
}

bool
zwi_tracer_remove(zwi_tracer *t, unsigned domain, uintptr_t ptr, zwi_trace_rec *old)
{
    zwi_trace_rec rec;
    bool found = false;
    if (domain == ZW_TRACE_DEFAULT_DOMAIN) {
        uint64_t h = ptr_hash(ptr);
        shard *s = shard_of(t, h);
        shard_lock(t, s);
        for (size_t i = home_of(s, h); s->slots[i].ptr != 0; i = (i + 1) & s->mask) {
            if (s->slots[i].ptr == ptr) {
                rec = (zwi_trace_rec){domain, s->slots[i].size, s->slots[i].tb};
                traced_sub(t, s->slots[i].size);
                shard_delete_at_locked(s, i);
                found = true;
                break;
            }
        }
        shard_unlock(t, s);
    }
    if (!found && wide_has(t, domain))
        found = wide_remove(t, domain, ptr, &rec);
    if (!found)
        return false;
    if (old != NULL)
        *old = rec;
    return true;
}

bool
zwi_tracer_lookup(zwi_tracer *t, unsigned domain, uintptr_t ptr, zwi_trace_rec *out)
{
    bool found = false;
    if (domain == ZW_TRACE_DEFAULT_DOMAIN) {
        uint64_t h = ptr_hash(ptr);
        shard *s = shard_of(t, h);
        shard_lock(t, s);
        for (size_t i = home_of(s, h); s->slots[i].ptr != 0; i = (i + 1) & s->mask) {
            if (s->slots[i].ptr == ptr) {
                *out = (zwi_trace_rec){domain, s->slots[i].size, s->slots[i].tb};
                found = true;
                break;
            }
        }
        shard_unlock(t, s);
    }
    if (!found && wide_has(t, domain)) {
        zwi_lock_acquire(&t->wide_lock);
        size_t i = wide_find_locked(t, domain, ptr);
        if (i != SIZE_MAX) {
            *out = (zwi_trace_rec){domain, t->wide[i].size, t->wide[i].tb};
            found = true;
        }
        zwi_lock_release(&t->wide_lock);
    }
    return found;
}

int
zwi_tracer_foreach(zwi_tracer *t, int (*fn)(void *ctx, const zwi_trace_rec *rec), void *ctx)
{
    int rc = 0;
    for (size_t k = 0; k < NSHARDS && rc == 0; k++) {
        shard *s = &t->shards[k];
        shard_lock(t, s);
        for (size_t i = 0; i <= s->mask && rc == 0; i++) {
            if (s->slots[i].ptr == 0)
                continue;
            zwi_trace_rec rec = {ZW_TRACE_DEFAULT_DOMAIN, s->slots[i].size, s->slots[i].tb};
            rc = fn(ctx, &rec);
        }
        shard_unlock(t, s);
    }
    zwi_lock_acquire(&t->wide_lock);
    for (size_t i = 0; t->wide != NULL && i <= t->wide_mask && rc == 0; i++) {
        if (t->wide[i].ptr == 0)
            continue;
        zwi_trace_rec rec = {t->wide[i].domain, t->wide[i].size, t->wide[i].tb};
        rc = fn(ctx, &rec);
    }
    zwi_lock_release(&t->wide_lock);
    return rc;
}

int
zwi_tracer_foreach_block(zwi_tracer *t, unsigned domain,
                         int (*fn)(void *ctx, uintptr_t ptr, const zwi_trace_rec *rec), void *ctx)
{
    int rc = 0;
    for (size_t k = 0; k < NSHARDS && rc == 0 && domain == ZW_TRACE_DEFAULT_DOMAIN; k++) {
        shard *s = &t->shards[k];
        shard_lock(t, s);
        for (size_t i = 0; i <= s->mask && rc == 0; i++) {
            if (s->slots[i].ptr == 0)
                continue;
            zwi_trace_rec rec = {ZW_TRACE_DEFAULT_DOMAIN, s->slots[i].size, s->slots[i].tb};
            rc = fn(ctx, s->slots[i].ptr, &rec);
        }
        shard_unlock(t, s);
    }
    zwi_lock_acquire(&t->wide_lock);
    for (size_t i = 0; t->wide != NULL && i <= t->wide_mask && rc == 0; i++) {
        if (t->wide[i].ptr == 0 || t->wide[i].domain != domain)
            continue;
        zwi_trace_rec rec = {t->wide[i].domain, t->wide[i].size, t->wide[i].tb};
        rc = fn(ctx, t->wide[i].ptr, &rec);
    }
    zwi_lock_release(&t->wide_lock);
    return rc;
}

/* ---- clear, counters, memory ---- */

/* Empties the tracebacks' store and gives its pages back (the first of each part stays). */
static void
discard_store_locked(zwi_tracer *t)
{
    size_t node_bytes = round_page((t->node_dirty + 1) * sizeof(node));
    size_t tb_bytes = round_page((t->tb_dirty + 1) * sizeof(tbent));
    if (node_bytes > PAGE)
        madvise((char *)t->nodes + PAGE, node_bytes - PAGE, MADV_DONTNEED);
    if (tb_bytes > PAGE)
        madvise((char *)t->tbs + PAGE, tb_bytes - PAGE, MADV_DONTNEED);
    for (size_t k = 0; k < ID_PARTS; k++) {
        memset(t->node_ids[k].tab, 0, (t->node_ids[k].mask + 1) * sizeof(uint64_t));
        memset(t->tb_ids[k].tab, 0, (t->tb_ids[k].mask + 1) * sizeof(uint64_t));
        t->node_ids[k].count = t->tb_ids[k].count = 0;
    }
    t->node_count = t->tb_count = t->node_dirty = t->tb_dirty = 0;
    if (t->node_ready != SIZE_MAX) /* made ready again as they are used again */
        t->node_ready = PAGE;
    if (t->tb_ready != SIZE_MAX)
        t->tb_ready = PAGE;
    t->nodes[0].child = 0; /* the root: its page stays */
}

void
zwi_tracer_clear(zwi_tracer *t)
{
    ZW_ASSERT(!in_batch(t));
    for (size_t k = 0; k < NSHARDS; k++)
        zwi_lock_acquire(&t->shards[k].lock);
    zwi_lock_acquire(&t->wide_lock);
    zwi_lock_acquire(&t->intern_lock);
    for (size_t k = 0; k < NSHARDS; k++) {
        shard *s = &t->shards[k];
        size_t bytes = (s->mask + 1) * sizeof(slot);
        if (shard_in_slice(t, s)) { /* its first page kept, the rest given back */
            if (bytes > SHARD_MIN * sizeof(slot))
                (void)madvise((char *)s->slots + SHARD_MIN * sizeof(slot),
                              bytes - SHARD_MIN * sizeof(slot), MADV_DONTNEED);
            memset(s->slots, 0, SHARD_MIN * sizeof(slot));
            shard_set_table(s, s->slots, SHARD_MIN - 1);
            s->count = 0;
            continue;
        }
        if (t->slices != NULL) { /* back to its slice, which it left empty */
            munmap(s->slots, bytes);
            shard_set_table(s, shard_slice(t, s), SHARD_MIN - 1);
            s->count = 0;
            continue;
        }
        if (s->mask + 1 > SHARD_MIN) {
            slot *small = map_pages(SHARD_MIN * sizeof(slot), 0);
            if (small != NULL) {
                munmap(s->slots, bytes);
                shard_set_table(s, small, SHARD_MIN - 1);
                s->count = 0;
                continue;
            }
        }
        memset(s->slots, 0, bytes);
        s->count = 0;
    }
    if (t->wide != NULL) {
        munmap(t->wide, (t->wide_mask + 1) * sizeof(wide_slot));
        t->wide = NULL;
        t->wide_mask = 0;
        atomic_store(&t->wide_count, 0);
        atomic_store(&t->wide_default, 0);
    }
    discard_store_locked(t);
    atomic_store_explicit(&t->gen, new_generation(), memory_order_relaxed);
    atomic_store(&t->current, 0);
    atomic_store(&t->peak, 0);
    zwi_lock_release(&t->intern_lock);
    zwi_lock_release(&t->wide_lock);
    for (size_t k = 0; k < NSHARDS; k++)
        zwi_lock_release(&t->shards[k].lock);
}

void
zwi_tracer_traced_memory(zwi_tracer *t, size_t *current, size_t *peak)
{
    size_t c = (size_t)traced_now(t);
    size_t p = (size_t)atomic_load(&t->peak);
    if (current != NULL)
        *current = c;
    if (peak != NULL)
        *peak = p < c ? c : p;
}

void
zwi_tracer_reset_peak(zwi_tracer *t)
{
    atomic_store(&t->peak, traced_now(t));
}

void
zwi_tracer_counts(zwi_tracer *t, size_t *traces, size_t *tracebacks, size_t *nodes,
                  size_t *table_bytes, size_t *traceback_bytes)
{
    size_t n = 0;
    size_t bytes = 0;
    for (size_t k = 0; k < NSHARDS; k++) {
        shard *s = &t->shards[k];
        shard_lock(t, s);
        n += s->count;
        bytes += (s->mask + 1) * sizeof(slot);
        shard_unlock(t, s);
    }
    zwi_lock_acquire(&t->wide_lock);
    n += atomic_load(&t->wide_count);
    if (t->wide != NULL)
        bytes += (t->wide_mask + 1) * sizeof(wide_slot);
    zwi_lock_release(&t->wide_lock);
    zwi_lock_acquire(&t->intern_lock);
    size_t ntb = t->tb_count;
    size_t nnodes = t->node_count;
    size_t ids = 2 * ID_PARTS * ID_FIRST;
    for (size_t k = 0; k < ID_PARTS; k++) {
        ids += idpart_own(&t->node_ids[k]) ? t->node_ids[k].mask + 1 : 0;
        ids += idpart_own(&t->tb_ids[k]) ? t->tb_ids[k].mask + 1 : 0;
    }
    size_t tbytes = ids * sizeof(uint64_t) +
                    round_page((t->node_count + 1) * sizeof(node)) +
                    round_page((t->tb_count + 1) * sizeof(tbent));
    zwi_lock_release(&t->intern_lock);
    if (traces != NULL)
        *traces = n;
    if (tracebacks != NULL)
        *tracebacks = ntb;
    if (nodes != NULL)
        *nodes = nnodes;
    if (table_bytes != NULL)
        *table_bytes = bytes;
    if (traceback_bytes != NULL)
        *traceback_bytes = tbytes;
}

size_t
zwi_tracer_memory(zwi_tracer *t)
{
    size_t table;
    size_t tbs;
    zwi_tracer_counts(t, NULL, NULL, NULL, &table, &tbs);
    zwi_lock_acquire(&t->scratch_lock);
    size_t scratch = t->scratch_size; /* a growing table's copy, kept for the next */
    zwi_lock_release(&t->scratch_lock);
    return round_page(sizeof(zwi_tracer)) + table + tbs + scratch;
}

/* ---- per-thread state ---- */

_Thread_local unsigned zwi_trace_guard __attribute__((tls_model("initial-exec")));
_Thread_local zwi_thread *zwi_trace_self __attribute__((tls_model("initial-exec")));


#define THREAD_BYTES round_page(sizeof(zwi_thread))

static void
thread_exit(void *p)
{
    zwi_thread *th = p;
    zwi_lock_acquire(&T.lock);
    if (th->reg_prev != NULL)
        th->reg_prev->reg_next = th->reg_next;
    else
        T.threads = th->reg_next;
    if (th->reg_next != NULL)
        th->reg_next->reg_prev = th->reg_prev;
    zwi_lock_release(&T.lock);
    if (zwi_trace_self == th)
        zwi_trace_self = NULL;
    munmap(th, THREAD_BYTES);
}

static void
make_key(void)
{
    T.key_ok = pthread_key_create(&T.key, thread_exit) == 0;
}

zwi_thread *
zwi_thread_make(void)
{
    zwi_thread *th = map_pages(THREAD_BYTES, 0);
    if (th == NULL)
        return NULL;
    pthread_attr_t attr;
    void *addr;
    size_t size;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        if (pthread_attr_getstack(&attr, &addr, &size) == 0) {
            th->stack_lo = (uintptr_t)addr;
            th->stack_hi = (uintptr_t)addr + size;
        }
        pthread_attr_destroy(&attr);
    }
    if (th->stack_hi == 0) { /* unknown: walks stop after the first frame */
        th->stack_lo = 0;
        th->stack_hi = 0;
    }
    pthread_once(&T.once, make_key);
    if (T.key_ok)
        pthread_setspecific(T.key, th);
    zwi_lock_acquire(&T.lock);
    th->reg_next = T.threads;
    if (T.threads != NULL)
        T.threads->reg_prev = th;
    T.threads = th;
    zwi_lock_release(&T.lock);
    zwi_trace_self = th;
    return th;
}

/* ---- for the preload library ---- */

int64_t
zwi_tracer_peak_hint(const zwi_tracer *t)
{
    return atomic_load_explicit(&((zwi_tracer *)t)->peak, memory_order_relaxed);
}

void
zwi_tracer_lock_all(zwi_tracer *t)
{
    ZW_ASSERT(!in_batch(t));
    zwi_lock_acquire(&T.lock);
    for (size_t k = 0; k < NSHARDS; k++)
        zwi_lock_acquire(&t->shards[k].lock);
    zwi_lock_acquire(&t->wide_lock);
    zwi_lock_acquire(&t->intern_lock);
}

void
zwi_tracer_unlock_all(zwi_tracer *t)
{
    zwi_lock_release(&t->intern_lock);
    zwi_lock_release(&t->wide_lock);
    for (size_t k = 0; k < NSHARDS; k++)
        zwi_lock_release(&t->shards[k].lock);
    zwi_lock_release(&T.lock);
}
