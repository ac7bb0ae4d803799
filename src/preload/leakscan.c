/* preload/leakscan.c - the reachability scan (docs/zw.md#leak-kinds): memcheck's algorithm over
 * the blocks the tracer holds, inside the traced process.
 *
 *   table:   every live block as a 12-byte entry (start, then size << 3 | queued | state), sorted
 *            by start, and an index of it: the blocks fall into a few segments (runs of blocks
 *            with no gap wider than SEG_GAP granules between them: the heap, each mmap'd block)
 *            and each segment into granules of 2^shift bytes, chosen so that there are fewer
 *            granules than blocks; a granule's slot is the first entry starting in it or after.
 *            A word is looked up by a search among the few segments, one slot and, as a rule, one
 *            or two entries: two or three cache misses, where a binary search over a million
 *            entries took eight or more
 *   roots:   each root word that points into a block marks it: at its start, reachable; only
 *            into its interior, possibly lost (memcheck's rule: a block reached first through
 *            its interior is rescanned when a start pointer reaches it later)
 *   flood:   a marked block is queued and its words scanned in turn: a reachable block passes
 *            on "reachable" to the blocks its words point at the start of, a possibly lost one
 *            only "possibly lost". The work list has a fixed size; when it overflows, queued
 *            blocks keep their bit and a sweep of the table picks them up later
 *   cliques: in address order, each block still unreached leads a clique: every unreached block
 *            it reaches (start or interior pointer) is indirectly lost; the leaders stay
 *            definitely lost, even one a later leader absorbs (memcheck's lc_push_with_clique)
 *
 * Memory: 12 bytes per block, under 3.5 for the index, and a fixed work list (STACK_CAP entries);
 * blocks of 512 MiB or more keep their size in a small side table. Not scanned and not
 * implemented: memcheck's heuristics for C++ interior pointers (std::string, new[], multiple
 * inheritance) and for length-prefixed blocks; those blocks count as possibly lost here.
 *
 * The roots of a live process (modules, stacks, TLS, registers) are gathered in the second half of
 * this file, "roots of this process". */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <linux/futex.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "leakscan.h"

#define SEG_GAP   64                 /* granules of empty space that end a segment */
#define MIN_SHIFT 4                  /* the smallest granule: 16 bytes, malloc's alignment */
#define STACK_CAP ((size_t)1 << 16)  /* work list entries (256 KiB) */
#define SIZE_BITS 29                 /* bits of size in an entry */
#define SIZE_BIG  ((1u << SIZE_BITS) - 1) /* an entry's size field: look in the side table */
#define NONE      SIZE_MAX

/* an entry's state, its low 2 bits; bit 2 says it is queued (on the work list or to be swept) */
enum { UNREACHED = 0, POSSIBLE = 1, REACHABLE = 2, INDIRECT = 3 };
#define STATE_MASK 3u
#define QUEUED     4u

typedef struct __attribute__((packed)) entry {
    uint64_t start;
    uint32_t word; /* size (or SIZE_BIG) << 3 | QUEUED | state */
} entry;

typedef struct big {
    uint64_t start;
    uint64_t size;
} big;

/* A run of blocks in address order: a word in [lo, hi) may point into one of them, a word
 * between two segments into none. Its granules' slots are slots[slot .. slot + granules), and
 * the slot after them (the next segment's first, or the last one) ends its last granule. */
typedef struct segment {
    uint64_t lo;   /* the first block's start */
    uint64_t hi;   /* the highest end of its blocks (an empty block counts as one byte) */
    uint64_t slot; /* its first slot */
} segment;

/* Between calls: entries [0, n) sorted by start once `prepared`; every entry with QUEUED set is on
 * `stack` or, if `overflow`, waits for a sweep. Once prepared, for segment s and granule k of it
 * (the bytes [s.lo + k << shift, s.lo + (k + 1) << shift)): slots[s.slot + k] = the first entry
 * starting in that granule or after it; slots[nslot - 1] = n. */
struct zwi_leakscan {
    entry *e;        /* n of cap, mapped */
    size_t n;
    size_t cap;
    big *bigs;       /* blocks of SIZE_BIG bytes or more, nbig of bigcap, sorted once prepared */
    size_t nbig;
    size_t bigcap;
    segment *segs;   /* nseg of them in address order, mapped by prepare */
    size_t nseg;
    uint32_t *slots; /* nslot entry indices, mapped by prepare */
    size_t nslot;
    unsigned shift;  /* a granule is 2^shift bytes */
    uint32_t *stack; /* the work list, STACK_CAP entries mapped by prepare */
    size_t sp;
    bool overflow;   /* a queued block did not fit on `stack` */
    bool prepared;
    bool classified;
    bool guarded;    /* reads of roots and blocks may fault (a live process): see guard_* */
    uint64_t lo, hi; /* the lowest start, the highest end (a word outside is no block's) */
    zwi_leak_ignore_fn ignore;
    size_t unreadable; /* ranges skipped after a fault */
    size_t read_bytes; /* root bytes read */
};

/* ---- mapped memory ---- */

static void *
map(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* The same for memory that will be written through: populated at once (a first touch is a page
 * fault, dear on a virtual machine: 12 us, against under 1 us a page populated). */
static void *
map_filled(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
                   -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void
unmap(void *p, size_t bytes)
{
    if (p != NULL && bytes > 0)
        munmap(p, bytes);
}

/* Grows a mapped array of *cap elements of `size` bytes to at least `need`; 0 or -1. */
static int
grow(void **array, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap < 1024 ? 1024 : *cap;
    while (ncap < need)
        ncap += ncap / 2; /* 1.5x: a doubling could map nearly twice what a large table needs */
    void *p;
    if (*array == NULL)
        p = map(ncap * size);
    else {
        p = mremap(*array, *cap * size, ncap * size, MREMAP_MAYMOVE);
        if (p == MAP_FAILED)
            p = NULL;
    }
    if (p == NULL)
        return -1;
    *array = p;
    *cap = ncap;
    return 0;
}

/* ---- the table ---- */

zwi_leakscan *
zwi_leakscan_new(size_t hint)
{
    zwi_leakscan *ls = map(sizeof(*ls));
    if (ls == NULL)
        return NULL;
    ls->cap = hint > 1024 ? hint : 1024; /* exactly: the caller knows about how many */
    if ((ls->e = map_filled(ls->cap * sizeof(entry))) == NULL) {
        unmap(ls, sizeof(*ls));
        return NULL;
    }
    return ls;
}

void
zwi_leakscan_free(zwi_leakscan *ls)
{
    if (ls == NULL)
        return;
    unmap(ls->e, ls->cap * sizeof(entry));
    unmap(ls->bigs, ls->bigcap * sizeof(big));
    unmap(ls->segs, ls->nseg * sizeof(segment));
    unmap(ls->slots, ls->nslot * sizeof(uint32_t));
    unmap(ls->stack, STACK_CAP * sizeof(uint32_t));
    unmap(ls, sizeof(*ls));
}

void
zwi_leakscan_set_ignore(zwi_leakscan *ls, zwi_leak_ignore_fn fn)
{
    ls->ignore = fn;
}

int
zwi_leakscan_add(zwi_leakscan *ls, uintptr_t start, size_t size)
{
    ZW_ASSERT(!ls->prepared);
    if (ls->n >= UINT32_MAX || grow((void **)&ls->e, &ls->cap, ls->n + 1, sizeof(entry)) != 0)
        return -1;
    uint32_t field = size < SIZE_BIG ? (uint32_t)size : SIZE_BIG;
    if (field == SIZE_BIG) {
        if (grow((void **)&ls->bigs, &ls->bigcap, ls->nbig + 1, sizeof(big)) != 0)
            return -1;
        ls->bigs[ls->nbig++] = (big){start, size};
    }
    ls->e[ls->n++] = (entry){start, field << 3};
    return 0;
}

size_t
zwi_leakscan_count(const zwi_leakscan *ls)
{
    return ls->n;
}

size_t
zwi_leakscan_memory(const zwi_leakscan *ls)
{
    return sizeof(*ls) + ls->cap * sizeof(entry) + ls->bigcap * sizeof(big) +
           ls->nseg * sizeof(segment) + ls->nslot * sizeof(uint32_t) +
           (ls->stack != NULL ? STACK_CAP * sizeof(uint32_t) : 0);
}

/* Heapsort of entries [lo, hi): the introsort's way out when quicksort's partitions go bad. */
static void
sift_down(entry *e, size_t lo, size_t root, size_t n)
{
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n)
            return;
        if (child + 1 < n && e[lo + child + 1].start > e[lo + child].start)
            child++;
        if (e[lo + root].start >= e[lo + child].start)
            return;
        entry t = e[lo + root];
        e[lo + root] = e[lo + child];
        e[lo + child] = t;
        root = child;
    }
}

static void
heap_sort(entry *e, size_t lo, size_t hi)
{
    size_t n = hi - lo;
    for (size_t i = n / 2; i-- > 0;)
        sift_down(e, lo, i, n);
    for (size_t end = n; end-- > 1;) {
        entry t = e[lo];
        e[lo] = e[lo + end];
        e[lo + end] = t;
        sift_down(e, lo, 0, end);
    }
}

/* Sorts entries [lo, hi) by start: introsort (quicksort on the median of three moved to `lo`,
 * Hoare's partition, heapsort past `depth` levels, insertion sort below 16 entries). Starts are
 * distinct: blocks do not overlap. */
static void
sort_entries(entry *e, size_t lo, size_t hi, unsigned depth)
{
    while (hi - lo > 16) {
        if (depth-- == 0) {
            heap_sort(e, lo, hi);
            return;
        }
        size_t mid = lo + (hi - lo) / 2, last = hi - 1;
        /* the median of e[lo], e[mid], e[last] into e[lo] */
        size_t m = e[lo].start < e[mid].start
                       ? (e[mid].start < e[last].start ? mid : (e[lo].start < e[last].start ? last : lo))
                       : (e[lo].start < e[last].start ? lo : (e[mid].start < e[last].start ? last : mid));
        entry t = e[lo];
        e[lo] = e[m];
        e[m] = t;
        uint64_t pivot = e[lo].start;
        size_t i = lo, j = hi; /* Hoare: [lo, j] <= pivot, [j + 1, hi) >= pivot, lo <= j < hi - 1 */
        for (;;) {
            do
                i++;
            while (i < hi && e[i].start < pivot);
            do
                j--;
            while (e[j].start > pivot);
            if (i >= j)
                break;
            t = e[i];
            e[i] = e[j];
            e[j] = t;
        }
        t = e[lo];
        e[lo] = e[j];
        e[j] = t; /* the pivot in its place: [lo, j) < pivot < (j, hi) */
        /* recurse into the smaller side, loop on the larger: depth stays O(log n) */
        if (j - lo < hi - (j + 1)) {
            sort_entries(e, lo, j, depth);
            lo = j + 1;
        } else {
            sort_entries(e, j + 1, hi, depth);
            hi = j;
        }
    }
    for (size_t i = lo + 1; i < hi; i++) {
        entry t = e[i];
        size_t j = i;
        for (; j > lo && e[j - 1].start > t.start; j--)
            e[j] = e[j - 1];
        e[j] = t;
    }
}

static void
sort_bigs(big *b, size_t n)
{
    for (size_t i = 1; i < n; i++) { /* few of them: insertion sort */
        big t = b[i];
        size_t j = i;
        for (; j > 0 && b[j - 1].start > t.start; j--)
            b[j] = b[j - 1];
        b[j] = t;
    }
}

static inline uint64_t
size_of(const zwi_leakscan *ls, const entry *e)
{
    uint32_t s = e->word >> 3;
    if (ZW_LIKELY(s != SIZE_BIG))
        return s;
    size_t a = 0, b = ls->nbig; /* the side table holds it: binary search */
    while (b - a > 1) {
        size_t m = a + (b - a) / 2;
        if (ls->bigs[m].start <= e->start)
            a = m;
        else
            b = m;
    }
    ZW_ASSERT(ls->nbig > 0 && ls->bigs[a].start == e->start);
    return ls->bigs[a].size;
}

/* The end of entry `e`'s block: an empty block counts as one byte (a word at its start reaches
 * it); the top of the address space caps it. */
static inline uint64_t
end_of(const zwi_leakscan *ls, const entry *e)
{
    uint64_t size = size_of(ls, e);
    if (size == 0)
        size = 1;
    return size > UINT64_MAX - e->start ? UINT64_MAX : e->start + size;
}

/* Granules of 2^shift bytes that cover [lo, hi). */
static inline uint64_t
granules(uint64_t lo, uint64_t hi, unsigned shift)
{
    return hi > lo ? ((hi - 1 - lo) >> shift) + 1 : 1;
}

/* Walks the sorted entries as the index of granule `shift` cuts them into segments: calls `fn`
 * (when not NULL) for each segment, in order, with its first entry; returns the slots the index
 * needs, and the number of segments in *nseg. */
static uint64_t
walk_segments(const zwi_leakscan *ls, unsigned shift, size_t *nseg,
              void (*fn)(zwi_leakscan *ls, const segment *s, size_t first))
{
    uint64_t gap = shift < 64 - 7 ? (uint64_t)SEG_GAP << shift : UINT64_MAX;
    uint64_t slots = 1; /* the last one */
    size_t count = 0;
    segment cur = {0};
    size_t first = 0;
    for (size_t i = 0; i <= ls->n; i++) {
        const entry *e = i < ls->n ? &ls->e[i] : NULL;
        if (i > 0 && (e == NULL || (e->start > cur.hi && e->start - cur.hi > gap))) {
            if (fn != NULL)
                fn((zwi_leakscan *)ls, &cur, first);
            cur.slot += granules(cur.lo, cur.hi, shift);
            count++;
        }
        if (e == NULL)
            break;
        uint64_t end = end_of(ls, e);
        if (i == 0 || (e->start > cur.hi && e->start - cur.hi > gap)) {
            cur.lo = e->start;
            cur.hi = end;
            first = i;
        } else if (end > cur.hi) {
            cur.hi = end;
        }
    }
    *nseg = count;
    return slots + cur.slot;
}

/* Fills segment `s` (its first entry `first`) and its slots. */
static void
index_segment(zwi_leakscan *ls, const segment *s, size_t first)
{
    ls->segs[ls->nseg] = *s;
    uint64_t ng = granules(s->lo, s->hi, ls->shift);
    size_t i = first;
    for (uint64_t g = 0; g < ng; g++) {
        uint64_t at = s->lo + (g << ls->shift); /* the granule's first byte */
        while (i < ls->n && ls->e[i].start < at)
            i++;
        ls->slots[s->slot + g] = (uint32_t)i;
    }
    ls->nseg++;
}

/* The granule for the index: about the smallest whose slots and segments take under 3.5 bytes
 * per block, guessed from the bytes the segments of 4 KiB granules span, then made larger until
 * it fits. Its slots in *nslot, its segments in *nseg. */
static unsigned
choose_shift(const zwi_leakscan *ls, uint64_t *nslot, size_t *nseg)
{
    uint64_t budget = (uint64_t)ls->n - ls->n / 8 + 64; /* in slots of 4 bytes */
    uint64_t span_bytes = walk_segments(ls, 12, nseg, NULL) << 12;
    unsigned shift = MIN_SHIFT;
    while (shift < 63 && (span_bytes >> shift) > budget)
        shift++;
    for (;; shift++) {
        *nslot = walk_segments(ls, shift, nseg, NULL);
        if (*nslot + *nseg * (sizeof(segment) / sizeof(uint32_t)) <= budget || shift >= 63)
            return shift;
    }
}

int
zwi_leakscan_prepare(zwi_leakscan *ls)
{
    ZW_ASSERT(!ls->prepared);
    unsigned depth = 0;
    for (size_t n = ls->n; n > 1; n >>= 1)
        depth += 2;
    sort_entries(ls->e, 0, ls->n, depth);
    sort_bigs(ls->bigs, ls->nbig);
    if ((ls->stack = map(STACK_CAP * sizeof(uint32_t))) == NULL)
        return -1;
    ls->lo = UINT64_MAX;
    ls->hi = 0;
    if (ls->n > 0) {
        size_t nseg;
        uint64_t nslot;
        ls->shift = choose_shift(ls, &nslot, &nseg);
        if (nslot > SIZE_MAX / sizeof(uint32_t) || (ls->segs = map(nseg * sizeof(segment))) == NULL)
            return -1;
        if ((ls->slots = map((size_t)nslot * sizeof(uint32_t))) == NULL) {
            unmap(ls->segs, nseg * sizeof(segment));
            ls->segs = NULL;
            return -1;
        }
        ls->nslot = (size_t)nslot;
        walk_segments(ls, ls->shift, &nseg, index_segment);
        ZW_ASSERT(ls->nseg == nseg);
        ls->slots[ls->nslot - 1] = (uint32_t)ls->n;
        ls->lo = ls->segs[0].lo;
        for (size_t k = 0; k < ls->nseg; k++)
            ls->hi = ls->segs[k].hi > ls->hi ? ls->segs[k].hi : ls->hi;
    }
    ls->prepared = true;
    return 0;
}

/* The block `p` points into (memcheck: [start, start + size), or its start if it is empty), or
 * NONE. */
static inline size_t
find(const zwi_leakscan *ls, uint64_t p)
{
    if (p < ls->lo || p >= ls->hi)
        return NONE;
    const segment *s = ls->segs;
    if (ls->nseg > 1) { /* the last segment starting at or below p */
        size_t a = 0, b = ls->nseg;
        while (b - a > 1) {
            size_t m = a + (b - a) / 2;
            if (ls->segs[m].lo <= p)
                a = m;
            else
                b = m;
        }
        s = &ls->segs[a];
    }
    if (p >= s->hi)
        return NONE;
    uint64_t k = s->slot + ((p - s->lo) >> ls->shift);
    size_t a = ls->slots[k];     /* the blocks starting in p's granule: [a, b) */
    size_t b = ls->slots[k + 1];
    size_t i;
    if (a == b || ls->e[a].start > p) {
        i = a - 1; /* one starting before the granule (never in the segment's first granule) */
    } else {
        while (b - a > 1) { /* the last one starting at or below p */
            size_t m = a + (b - a) / 2;
            if (ls->e[m].start <= p)
                a = m;
            else
                b = m;
        }
        i = a;
    }
    const entry *e = &ls->e[i];
    if (p == e->start)
        return i;
    return p - e->start < size_of(ls, e) ? i : NONE;
}

bool
zwi_leakscan_lookup(const zwi_leakscan *ls, uintptr_t p, uintptr_t *start)
{
    ZW_ASSERT(ls->prepared);
    size_t i = find(ls, p);
    if (i == NONE)
        return false;
    *start = (uintptr_t)ls->e[i].start;
    return true;
}

/* ---- the work list ---- */

static inline void
enqueue(zwi_leakscan *ls, size_t i)
{
    entry *e = &ls->e[i];
    if (e->word & QUEUED)
        return; /* its scan, still to come, will see its newest state */
    e->word |= QUEUED;
    if (ls->sp < STACK_CAP)
        ls->stack[ls->sp++] = (uint32_t)i;
    else
        ls->overflow = true;
}

/* Refills an empty work list with blocks that overflowed it; false if there are none. */
static bool
refill(zwi_leakscan *ls)
{
    if (!ls->overflow)
        return false;
    ls->overflow = false;
    for (size_t i = 0; i < ls->n; i++) {
        if (!(ls->e[i].word & QUEUED))
            continue;
        if (ls->sp == STACK_CAP) {
            ls->overflow = true;
            break;
        }
        ls->stack[ls->sp++] = (uint32_t)i;
    }
    return ls->sp > 0;
}

/* ---- marking: memcheck's lc_push_*_if_a_chunk_ptr ---- */

static inline void
set_state(entry *e, unsigned state)
{
    e->word = (e->word & ~STATE_MASK) | state;
}

/* A word `p` found in a root (definite) or in a block in state REACHABLE (definite) or POSSIBLE. */
static inline void
reach(zwi_leakscan *ls, uint64_t p, bool definite)
{
    size_t i = find(ls, p);
    if (i == NONE)
        return;
    entry *e = &ls->e[i];
    unsigned state = e->word & STATE_MASK;
    if (state == REACHABLE)
        return;
    bool at_start = p == e->start;
    if (!at_start && ls->ignore != NULL && p + 8 >= e->start + size_of(ls, e) &&
        ls->ignore(e->start, size_of(ls, e), p))
        return;
    if (at_start && definite) {
        set_state(e, REACHABLE);
        enqueue(ls, i);
    } else if (state == UNREACHED) {
        set_state(e, POSSIBLE);
        enqueue(ls, i);
    }
}

/* A word `p` found in a block of the clique led by `leader` (lost, so far). */
static inline void
absorb(zwi_leakscan *ls, uint64_t p, size_t leader)
{
    size_t i = find(ls, p);
    if (i == NONE || i == leader)
        return;
    entry *e = &ls->e[i];
    if ((e->word & STATE_MASK) != UNREACHED)
        return;
    if (p != e->start && ls->ignore != NULL && p + 8 >= e->start + size_of(ls, e) &&
        ls->ignore(e->start, size_of(ls, e), p))
        return;
    set_state(e, INDIRECT);
    enqueue(ls, i);
}

/* ---- reading memory that may fault: a live process's ranges can vanish under the scan ---- */

/* The scanning thread's way back from a fault (one scan at a time per process). */
static struct {
    sigjmp_buf env;               /* where scan_guarded() resumes */
    _Atomic pid_t tid;            /* the thread reading; 0: no guarded read is under way */
    struct sigaction old_segv;    /* the program's actions, put back after the scan */
    struct sigaction old_bus;
} F;

static void
on_fault(int sig, siginfo_t *info, void *uc)
{
    (void)info;
    (void)uc;
    if (atomic_load(&F.tid) == (pid_t)syscall(SYS_gettid))
        siglongjmp(F.env, 1);
    /* not a read of ours: the program's own fault, under its own action */
    sigaction(sig, sig == SIGSEGV ? &F.old_segv : &F.old_bus, NULL);
}

static void
guard_install(void)
{
    struct sigaction sa = {.sa_sigaction = on_fault, .sa_flags = SA_SIGINFO | SA_NODEFER};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &F.old_segv);
    sigaction(SIGBUS, &sa, &F.old_bus);
}

static void
guard_remove(void)
{
    atomic_store(&F.tid, 0);
    sigaction(SIGSEGV, &F.old_segv, NULL);
    sigaction(SIGBUS, &F.old_bus, NULL);
}

/* Reads by thread `tid` of `ls`'s scan may fault from now on (the rest of a range is skipped). */
static void
guard_begin(zwi_leakscan *ls, pid_t tid)
{
    ls->guarded = true;
    atomic_store(&F.tid, tid);
    guard_install();
}

static void
guard_end(zwi_leakscan *ls)
{
    guard_remove();
    ls->guarded = false;
}

/* ---- scanning ---- */

enum { SCAN_ROOT, SCAN_BLOCK_DEFINITE, SCAN_BLOCK_POSSIBLE, SCAN_CLIQUE };

/* Reads the program's memory as it is: under AddressSanitizer (the unit tests) stack words it
 * poisons are read too, as memcheck reads them. */
static __attribute__((no_sanitize_address)) void
scan_words(zwi_leakscan *ls, uint64_t lo, uint64_t hi, int how, size_t leader)
{
    const uint64_t *w = (const uint64_t *)((lo + 7) & ~(uint64_t)7);
    const uint64_t *end = (const uint64_t *)(hi & ~(uint64_t)7);
    uint64_t min = ls->lo, max = ls->hi;
    for (; w < end; w++) {
        uint64_t p = *(const volatile uint64_t *)w;
        if (p < min || p >= max)
            continue; /* most words: cheaper than a lookup */
        if (how == SCAN_CLIQUE)
            absorb(ls, p, leader);
        else
            reach(ls, p, how != SCAN_BLOCK_POSSIBLE);
    }
}

static __attribute__((noinline)) void
scan_guarded(zwi_leakscan *ls, uint64_t lo, uint64_t hi, int how, size_t leader)
{
    if (!ls->guarded) {
        scan_words(ls, lo, hi, how, leader);
        return;
    }
    if (sigsetjmp(F.env, 0) == 0)
        scan_words(ls, lo, hi, how, leader);
    else
        ls->unreadable++; /* the rest of [lo, hi) is skipped */
}

/* Scans queued blocks until none is left: in the flood (leader == NONE) or for a clique. */
static void
drain(zwi_leakscan *ls, size_t leader)
{
    while (ls->sp > 0 || refill(ls)) {
        size_t i = ls->stack[--ls->sp];
        if (ls->sp > 0) /* the next block's first words, read while this one is scanned */
            __builtin_prefetch((const void *)(uintptr_t)ls->e[ls->stack[ls->sp - 1]].start);
        entry *e = &ls->e[i];
        e->word &= ~QUEUED;
        uint64_t size = size_of(ls, e);
        int how = leader != NONE                               ? SCAN_CLIQUE
                  : (e->word & STATE_MASK) == REACHABLE ? SCAN_BLOCK_DEFINITE
                                                          : SCAN_BLOCK_POSSIBLE;
        scan_guarded(ls, e->start, e->start + size, how, leader);
    }
}

void
zwi_leakscan_root(zwi_leakscan *ls, uintptr_t lo, uintptr_t hi)
{
    ZW_ASSERT(ls->prepared && !ls->classified);
    if (hi <= lo)
        return;
    ls->read_bytes += hi - lo;
    scan_guarded(ls, lo, hi, SCAN_ROOT, NONE);
    drain(ls, NONE);
}

void
zwi_leakscan_classify(zwi_leakscan *ls)
{
    ZW_ASSERT(ls->prepared && !ls->classified);
    /* guarded: a block the table holds may be gone from the heap (leaks.c, glibc_chunk_header) */
    bool guard = !ls->guarded;
    if (guard)
        guard_begin(ls, (pid_t)syscall(SYS_gettid));
    for (size_t i = 0; i < ls->n; i++) {
        if ((ls->e[i].word & STATE_MASK) != UNREACHED)
            continue;
        enqueue(ls, i); /* the leader stays UNREACHED: definitely lost */
        drain(ls, i);
    }
    if (guard)
        guard_end(ls);
    ls->classified = true;
}

int
zwi_leakscan_kind(const zwi_leakscan *ls, uintptr_t start)
{
    ZW_ASSERT(ls->classified);
    size_t i = find(ls, start);
    if (i == NONE || ls->e[i].start != start)
        return -1;
    static const int kinds[] = {[UNREACHED] = ZWI_LEAK_DEFINITE, [POSSIBLE] = ZWI_LEAK_POSSIBLE,
                                [REACHABLE] = ZWI_LEAK_REACHABLE, [INDIRECT] = ZWI_LEAK_INDIRECT};
    return kinds[ls->e[i].word & STATE_MASK];
}

/* ---- roots of this process ---- */

#define STOP_WAIT_MS  500 /* how long the other threads get to stop */
#define LEAVE_WAIT_MS 200 /* how long they get to leave the handler once released */
#define RED_ZONE      128 /* below the stack pointer, a leaf function's locals (x86-64 ABI) */

/* One mapping of /proc/self/maps. */
typedef struct vma {
    uint64_t lo, hi;
    bool readable;
} vma;

/* Another thread, asked to stop: its handler fills the slot, then waits for `release`. */
typedef struct stopped {
    pid_t tid;
    _Atomic int state; /* 0 asked, 1 stopped (the fields below are written), 2 left */
    uint64_t sp;       /* the stack pointer it was interrupted at */
    uint64_t tp;       /* its thread pointer (pthread_self) */
    uint64_t regs[32]; /* its general registers then */
} stopped;

/* The scan in progress; one at a time per process (the exit path and marks are serialised by the
 * preload library's lock). */
static struct {
    stopped *threads; /* nthreads of cap, mapped */
    size_t nthreads;
    size_t cap;
    _Atomic uint32_t release; /* futex word: 1 lets the stopped threads go */
    int sig;                  /* the signal that stops a thread */
    struct sigaction old;     /* the program's action for it, put back after */
    vma *vmas;                /* nvma of vmacap, mapped, sorted (the kernel lists them so) */
    size_t nvma;
    size_t vmacap;
} S;

static uint64_t
clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
sleep_us(long us)
{
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

/* The mapping holding `p`, or NULL. */
static const vma *
vma_of(uint64_t p)
{
    size_t a = 0, b = S.nvma;
    while (a < b) {
        size_t m = a + (b - a) / 2;
        if (S.vmas[m].hi <= p)
            a = m + 1;
        else
            b = m;
    }
    return a < S.nvma && S.vmas[a].lo <= p ? &S.vmas[a] : NULL;
}

static uint64_t
parse_hex(const char **s)
{
    uint64_t v = 0;
    for (;; (*s)++) {
        char c = **s;
        if (c >= '0' && c <= '9')
            v = v * 16 + (uint64_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v = v * 16 + (uint64_t)(c - 'a' + 10);
        else
            return v;
    }
}

/* Reads /proc/self/maps into S.vmas (no malloc: the other threads may hold its locks). */
static int
read_maps(void)
{
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    S.nvma = 0;
    char buf[8192];
    size_t have = 0;
    for (;;) {
        ssize_t got = read(fd, buf + have, sizeof(buf) - have);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        have += (size_t)got;
        size_t used = 0;
        for (;;) {
            char *nl = memchr(buf + used, '\n', have - used);
            if (nl == NULL)
                break;
            const char *s = buf + used;
            uint64_t lo = parse_hex(&s);
            s++; /* '-' */
            uint64_t hi = parse_hex(&s);
            bool readable = s[1] == 'r';
            if (grow((void **)&S.vmas, &S.vmacap, S.nvma + 1, sizeof(vma)) == 0)
                S.vmas[S.nvma++] = (vma){lo, hi, readable};
            used = (size_t)(nl + 1 - buf);
        }
        memmove(buf, buf + used, have - used);
        have -= used;
        if (have == sizeof(buf))
            have = 0; /* a line longer than the buffer: a path; its start was kept */
    }
    close(fd);
    return S.nvma > 0 ? 0 : -1;
}

/* ---- stopping the other threads ---- */

static void
on_stop(int sig, siginfo_t *info, void *ucv)
{
    if (info->si_code != SI_TKILL || info->si_pid != getpid()) {
        /* not ours: the program's own signal, to its own action */
        if ((S.old.sa_flags & SA_SIGINFO) && S.old.sa_sigaction != NULL)
            S.old.sa_sigaction(sig, info, ucv);
        else if (!(S.old.sa_flags & SA_SIGINFO) && S.old.sa_handler != SIG_DFL &&
                 S.old.sa_handler != SIG_IGN)
            S.old.sa_handler(sig);
        return;
    }
    int saved = errno;
    pid_t tid = (pid_t)syscall(SYS_gettid);
    stopped *me = NULL;
    for (size_t i = 0; i < S.nthreads && me == NULL; i++)
        if (S.threads[i].tid == tid)
            me = &S.threads[i];
    if (me == NULL) {
        errno = saved;
        return;
    }
    ucontext_t *uc = ucv;
#if defined(__x86_64__)
    me->sp = (uint64_t)uc->uc_mcontext.gregs[REG_RSP];
    for (int r = 0; r < NGREG && r < 32; r++)
        me->regs[r] = (uint64_t)uc->uc_mcontext.gregs[r];
#elif defined(__aarch64__)
    me->sp = (uint64_t)uc->uc_mcontext.sp;
    for (int r = 0; r < 31; r++)
        me->regs[r] = (uint64_t)uc->uc_mcontext.regs[r];
#else
    me->sp = (uint64_t)__builtin_frame_address(0); /* the handler's frame: registers below it */
#endif
    me->tp = (uint64_t)pthread_self();
    atomic_store(&me->state, 1);
    while (atomic_load(&S.release) == 0) {
        struct timespec ts = {0, 50 * 1000000};
        syscall(SYS_futex, &S.release, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0);
    }
    atomic_store(&me->state, 2);
    errno = saved;
}

/* Lists this process's threads but the caller (`self`), the thread whose roots it scans
 * (`ending`) and a thread of the tracer's working beside it (`beside`, 0: none) into S.threads
 * (getdents: no malloc). */
static int
list_threads(pid_t self, pid_t ending, pid_t beside)
{
    int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    S.nthreads = 0;
    char buf[4096];
    for (;;) {
        long got = syscall(SYS_getdents64, fd, buf, sizeof(buf));
        if (got <= 0)
            break;
        for (long off = 0; off < got;) {
            struct dirent64 *d = (struct dirent64 *)(buf + off);
            off += d->d_reclen;
            pid_t tid = 0;
            const char *c = d->d_name;
            for (; *c >= '0' && *c <= '9'; c++)
                tid = tid * 10 + (*c - '0');
            if (*c != '\0' || tid <= 0 || tid == self || tid == ending || tid == beside)
                continue;
            if (grow((void **)&S.threads, &S.cap, S.nthreads + 1, sizeof(stopped)) != 0)
                break;
            memset(&S.threads[S.nthreads], 0, sizeof(stopped));
            S.threads[S.nthreads++].tid = tid;
        }
    }
    close(fd);
    return 0;
}

/* Asks every thread but these three to stop; returns once all have, or after STOP_WAIT_MS. */
static void
stop_threads(pid_t self, pid_t ending, pid_t beside)
{
    atomic_store(&S.release, 0);
    S.sig = SIGRTMAX - 1;
    if (list_threads(self, ending, beside) != 0 || S.nthreads == 0)
        return;
    struct sigaction sa = {.sa_sigaction = on_stop, .sa_flags = SA_SIGINFO | SA_RESTART};
    sigfillset(&sa.sa_mask);
    sigaction(S.sig, &sa, &S.old);
    pid_t pid = getpid();
    for (size_t i = 0; i < S.nthreads; i++)
        if (syscall(SYS_tgkill, pid, S.threads[i].tid, S.sig) != 0)
            atomic_store(&S.threads[i].state, 2); /* gone already */
    uint64_t deadline = clock_ms() + STOP_WAIT_MS;
    for (size_t i = 0; i < S.nthreads; i++)
        while (atomic_load(&S.threads[i].state) == 0 && clock_ms() < deadline)
            sleep_us(100);
}

static void
resume_threads(void)
{
    if (S.nthreads == 0)
        return;
    atomic_store(&S.release, 1);
    syscall(SYS_futex, &S.release, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
    uint64_t deadline = clock_ms() + LEAVE_WAIT_MS;
    for (size_t i = 0; i < S.nthreads; i++)
        while (atomic_load(&S.threads[i].state) == 1 && clock_ms() < deadline)
            sleep_us(100);
    sigaction(S.sig, &S.old, NULL);
    /* a thread still asked (state 0) may yet enter the handler: it finds S.release set */
}

/* A thread that did not stop: its stack pointer as the kernel saw it in a system call, or 0. */
static uint64_t
sp_from_syscall(pid_t tid)
{
    char path[64] = "/proc/self/task/";
    size_t n = strlen(path);
    char digits[16];
    int k = 0;
    for (pid_t t = tid; t > 0 && k < 15; t /= 10)
        digits[k++] = (char)('0' + t % 10);
    while (k > 0)
        path[n++] = digits[--k];
    memcpy(path + n, "/syscall", sizeof("/syscall"));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char buf[256];
    ssize_t got = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (got <= 0 || buf[0] < '0' || buf[0] > '9')
        return 0; /* "running": no stack pointer to read */
    buf[got] = '\0';
    /* "nr a1 a2 a3 a4 a5 a6 sp pc": the eighth field */
    const char *s = buf;
    for (int field = 0; field < 7; field++) {
        s = strchr(s, ' ');
        if (s == NULL)
            return 0;
        s++;
    }
    if (s[0] != '0' || s[1] != 'x')
        return 0;
    s += 2;
    return parse_hex(&s);
}

/* ---- the roots ---- */

typedef struct module_ctx {
    zwi_leakscan *ls;
    uint64_t self;   /* an address in the tracer's own library */
    uint64_t ranges[256][2]; /* writable segments, gathered before the threads stop */
    unsigned n;
} module_ctx;

static int
note_module(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    module_ctx *m = arg;
    bool mine = false;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uint64_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && m->self >= lo && m->self < lo + ph->p_memsz)
            mine = true;
    }
    if (mine)
        return 0; /* the tracer's own state: its pointers are not the program's */
    for (int i = 0; i < info->dlpi_phnum && m->n < 256; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W) || ph->p_memsz == 0)
            continue;
        uint64_t lo = info->dlpi_addr + ph->p_vaddr;
        m->ranges[m->n][0] = lo;
        m->ranges[m->n][1] = lo + ph->p_memsz;
        m->n++;
    }
    return 0;
}

static void
scan_root(zwi_leakscan *ls, uint64_t lo, uint64_t hi)
{
    zwi_leakscan_root(ls, (uintptr_t)lo, (uintptr_t)hi);
}

/* The sizes of a thread's static TLS and of glibc's thread descriptor, from the C library (as
 * LeakSanitizer asks them); generous guesses if unknown. */
typedef struct tls_info {
    size_t static_size;
    size_t pthread_size;
} tls_info;

/* A thread's stack from `lo` to the top of its mapping; its static TLS and thread descriptor if
 * they lie elsewhere (the main thread's, in memory of the dynamic loader's), and the TLS vector
 * they point to. Only near the thread pointer: the kernel merges the mapping holding them with
 * its neighbours, the tracer's own among them. */
static void
scan_thread(zwi_leakscan *ls, uint64_t lo, uint64_t tp, const tls_info *tls)
{
    const vma *stack = vma_of(lo);
    if (stack != NULL && stack->readable)
        scan_root(ls, lo, stack->hi);
    const vma *v = tp != 0 ? vma_of(tp) : NULL;
    if (v == NULL || v == stack || !v->readable)
        return;
#if defined(__x86_64__)
    /* TLS variant II: the static blocks below the thread pointer, the descriptor at it; the
     * loader's static size counts the descriptor too, so the blocks start that much above
     * tp - static size (below lies other memory: the tracer's own pages, once, whose stale
     * copies of a block's address made it reachable) */
    uint64_t below = tls->static_size > tls->pthread_size ? tls->static_size - tls->pthread_size
                                                          : tls->static_size;
    uint64_t tls_lo = tp - below, tls_hi = tp + tls->pthread_size;
#else
    /* variant I: the descriptor below the thread pointer, the blocks after it */
    uint64_t tls_lo = tp - tls->pthread_size, tls_hi = tp + tls->static_size;
#endif
    tls_lo = tls_lo < v->lo ? v->lo : tls_lo;
    tls_hi = tls_hi > v->hi ? v->hi : tls_hi;
    scan_root(ls, tls_lo, tls_hi);
#if defined(__x86_64__)
    /* the TLS vector (tcbhead_t.dtv, at tp + 8): dynamic TLS blocks hang from it; the loader
     * made it with its own allocator unless it grew since (then it is a block, scanned anyway) */
    const uint64_t *dtv = *(const uint64_t *const *)(uintptr_t)(tp + 8);
    const vma *d = vma_of((uint64_t)(uintptr_t)dtv);
    if (dtv != NULL && d != NULL && d->readable && find(ls, (uint64_t)(uintptr_t)dtv) == NONE &&
        (uint64_t)(uintptr_t)dtv >= d->lo + 16) {
        uint64_t n = dtv[-2]; /* dtv[-1].counter: the vector's length */
        uint64_t end = (uint64_t)(uintptr_t)(dtv + 2 * (n + 1));
        scan_root(ls, (uint64_t)(uintptr_t)(dtv - 2), end < d->hi ? end : d->hi);
    }
#endif
}

static tls_info
tls_sizes(void)
{
    tls_info t = {(size_t)64 << 10, 4096};
    void (*get)(size_t *, size_t *) =
        (void (*)(size_t *, size_t *))dlsym(RTLD_DEFAULT, "_dl_get_tls_static_info");
    size_t size = 0, align = 0;
    if (get != NULL)
        get(&size, &align);
    if (size > 0)
        t.static_size = size;
    const unsigned *pthread_size = dlsym(RTLD_DEFAULT, "_thread_db_sizeof_pthread");
    if (pthread_size != NULL && *pthread_size > 0)
        t.pthread_size = *pthread_size;
    return t;
}

static int
process_roots(zwi_leakscan *ls, const void *self, zwi_leak_roots *out, const zwi_leak_thread *who)
{
    ZW_ASSERT(ls->prepared && !ls->classified);
    memset(out, 0, sizeof(*out));
    /* what needs the loader's lock or malloc, before any thread stops */
    module_ctx *m = map(sizeof(*m));
    if (m == NULL)
        return -1;
    m->ls = ls;
    m->self = (uint64_t)self;
    dl_iterate_phdr(note_module, m);
    tls_info tls = tls_sizes();
    pid_t me = (pid_t)syscall(SYS_gettid);

    stop_threads(me, who->tid, who->beside);
    guard_begin(ls, me);
    size_t before = ls->read_bytes;
    int status = read_maps();
    if (status == 0) {
        for (unsigned i = 0; i < m->n; i++)
            scan_root(ls, m->ranges[i][0], m->ranges[i][1]);
        out->modules = m->n;
        scan_thread(ls, who->stack_lo, who->tp, &tls);
        out->threads = 1;
        for (size_t i = 0; i < S.nthreads; i++) {
            stopped *t = &S.threads[i];
            int state = atomic_load(&t->state);
            if (state == 1) {
                scan_root(ls, (uint64_t)t->regs, (uint64_t)t->regs + sizeof(t->regs));
                scan_thread(ls, t->sp - RED_ZONE, t->tp, &tls);
                out->threads++;
            } else if (state == 0) {
                uint64_t sp = sp_from_syscall(t->tid);
                if (sp != 0)
                    scan_thread(ls, sp - RED_ZONE, 0, &tls);
                out->threads_missed++;
            }
        }
    }
    guard_end(ls);
    resume_threads();
    out->root_bytes = ls->read_bytes - before;
    out->unreadable = ls->unreadable;
    unmap(m, sizeof(*m));
    return status;
}

int
zwi_leakscan_process_roots(zwi_leakscan *ls, const void *self, const zwi_leak_thread *who,
                           zwi_leak_roots *out)
{
    return process_roots(ls, self, out, who);
}

zwi_leak_thread
zwi_leakscan_this_thread(uintptr_t stack_lo)
{
    return (zwi_leak_thread){(pid_t)syscall(SYS_gettid), stack_lo, (uintptr_t)pthread_self(), 0};
}
