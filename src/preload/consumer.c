/* preload/consumer.c - the bookkeeping thread: the hooks capture a traceback and count their
 * thread's allocations on the program's thread, and post the rest as a record to a ring;
 * this thread applies the records in order (hooks.c's zwi_preload_apply): the tracebacks posted
 * as frames interned (intern_posted: a record carries the frames that differ from the last ones
 * of its thread's slot, in the cells after it; see ZWI_REC_FRAMES), the tracer's table, the
 * traced bytes and their peak, the site counters (it is their only writer: no locked adds), the
 * frees and temporary allocations (in a LIVE slot of its own), the peak sets.
 *
 *   ring:    one array of 32-byte cells in mapped memory (ZW_RING cells, 262144 by default),
 *            shared by every thread: a producer takes a ticket (one atomic add; k + 1 of them for
 *            a record followed by k cells of frames), writes the record's cells, then publishes
 *            it (its sequence number, release). Tickets order the
 *            records across threads: a free's is taken before the real free, an allocation's
 *            after the real function returned, so a block freed by one thread and handed to
 *            another by malloc is recorded freed first. A full ring makes the producer wait
 *            (spin, then sched_yield, then short sleeps).
 *   consumer: applies what is published in order, a batch at a time under apply_lock (which fork
 *            holds); when there is nothing, it sleeps on a futex at once, even with a ticket
 *            taken and its record not yet published (not polling: a poll loop spent 0.4 to 1 s
 *            more CPU per run of python3.11, sqlite3, perl or cc1plus, for no gain in their
 *            time; spinning while a ticket was pending, 0.3 s on python3.11). Producers wake it every quarter of the ring and when
 *            they find it full; readers (the sampler among them, every interval) when they
 *            drain.
 *   readers: everything that reads the table, the counters or the peak during the run (marks,
 *            the sampler, the exit, fork, fatal signals) first drains: waits until the records
 *            posted before it asked are applied. A drain gives up when the consumer makes no
 *            progress for a while (a producer stuck between its ticket and its record), so that
 *            no exit path can hang.
 *   inline:  ZW_BOOKKEEPING=inline, or a thread that cannot start: the hook applies its record
 *            itself, on the program's thread, as before the ring.
 *
 * See docs/zw.md#how-it-works. */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "preload_internal.h"

/* records (8 MiB, mapped as the ring is first used: a program posting fewer records touches
 * less). 65536 (2 MiB) cost python3.11 building 2M strings 0.2 s more wall time and sqlite3 0.05
 * s, with no producer waiting for room: cells written again sooner after the bookkeeping read
 * them; 1M (32 MiB) gained python no more and cost sqlite3 0.1 s of page faults. */
#define RING_DEFAULT ((uint64_t)1 << 18)
#define RING_MIN     ((uint64_t)1 << 4)
#define RING_MAX     ((uint64_t)1 << 24)
#define BATCH        256  /* records applied under one hold of apply_lock */
/* How far ahead the table's slot of a record is prefetched: 12 records (misses overlap, now that
 * no locked instruction waits for them) took ~9 % fewer samples than 4 on python3.11, 24 no
 * fewer */
#define PREFETCH_AHEAD 12
#define SLEEP_MS     50   /* the longest sleep: a lost wake-up costs at most this */
#define STACK_SIZE   ((size_t)256 << 10)
/* The ring's pages are faulted in by this thread, ahead of the producers, POPULATE_STEP cells
 * (256 KiB) at a time: a first touch by a hook was a page fault on the program's thread (12 us
 * on a virtual machine; 2048 of them on g++'s cc1plus, 25 ms). The pages ready ahead of the head
 * grow with what was posted, up to 3/8 of the ring (3 MiB by default; producers wake this thread
 * every quarter): a process posting few records maps few (a traced `true` one step, whose RSS
 * 3 MiB of them would have doubled). */
#define POPULATE_STEP     ((uint64_t)8192)
#define POPULATE_SLEEP_MS 1
#define POPULATE_FAST     256
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

void
zwi_preload_futex_wait(_Atomic uint32_t *word, uint32_t val, unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, val, &ts, NULL, 0);
}

void
zwi_preload_futex_wake(_Atomic uint32_t *word)
{
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static inline void
cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

void
zwi_preload_wake_consumer(void)
{
    if (atomic_load(&G.ring.sleeping) && atomic_exchange(&G.ring.sleeping, 0))
        zwi_preload_futex_wake(&G.ring.sleeping);
}

static bool
is_consumer(void)
{
    return atomic_load(&G.ring.thread_on) && pthread_equal(pthread_self(), G.ring.thread);
}

/* Waits a little: spins first, then yields the processor, then sleeps 50 us; `round` counts the
 * waits of this episode. */
static void
wait_a_little(unsigned round)
{
    if (round < 64)
        cpu_relax();
    else if (round < 256)
        sched_yield();
    else
        nanosleep(&(struct timespec){0, 50000}, NULL);
}

bool
zwi_preload_ring_room(uint64_t t)
{
    uint64_t size = G.ring.mask + 1;
    unsigned round = 0;
    while (t >= atomic_load_explicit(&G.ring.tail, memory_order_acquire) + size) {
        if (atomic_load(&G.ring.closed) || !atomic_load(&G.ring.thread_on))
            return false; /* nobody will apply it: dropped (the capture has ended) */
        zwi_preload_wake_consumer();
        wait_a_little(round++);
    }
    return true;
}

/* Waits until `target` records are applied, or the consumer made no progress for stall_ms. */
static void
wait_applied(uint64_t target, unsigned stall_ms)
{
    uint64_t last = atomic_load_explicit(&G.ring.tail, memory_order_acquire);
    struct timespec since;
    clock_gettime(CLOCK_MONOTONIC, &since);
    for (unsigned round = 0; last < target; round++) {
        if (!atomic_load(&G.ring.thread_on))
            return;
        zwi_preload_wake_consumer();
        wait_a_little(round);
        uint64_t now = atomic_load_explicit(&G.ring.tail, memory_order_acquire);
        if (now != last) {
            last = now;
            clock_gettime(CLOCK_MONOTONIC, &since);
            continue;
        }
        if ((round & 63) == 63) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            uint64_t ms = (uint64_t)(ts.tv_sec - since.tv_sec) * 1000u +
                          (uint64_t)((ts.tv_nsec - since.tv_nsec) / 1000000);
            if (ms >= stall_ms)
                return;
        }
    }
}

void
zwi_preload_drain(unsigned stall_ms)
{
    if (!G.ring.on || is_consumer())
        return;
    wait_applied(atomic_load(&G.ring.tickets.head), stall_ms);
}

/* Overwrites the stack below the caller's frame: the records just applied leave block addresses
 * in dead frames, which a mark's leak scan (ZW_LEAK_MARKS) would read as the program's pointers. */
static __attribute__((noinline)) void
scrub_stack(void)
{
    volatile unsigned char dirt[4096];
    memset((void *)dirt, 0, sizeof(dirt));
    __asm__ volatile("" : : "r"(dirt) : "memory");
}

/* The traceback of ZWI_REC_FRAMES record `c` at ticket t interned: its ref, or 0 if the tracer
 * is out of memory. The frames the record does not carry are its id's last traceback's. */
static uint32_t
intern_posted(const zwi_rec *c, uint64_t t)
{
    uint32_t r = c->ref;
    uintptr_t *path = &G.ring.seen[ZWI_FR_ID(r) * G.ring.stride] + 1;
    uintptr_t *frames = G.ring.frames;
    unsigned n = ZWI_FR_N(r);
    unsigned d = ZWI_FR_D(r);
    unsigned tot = ZWI_FR_TOTAL(r);
    unsigned words = n - d + tot;
    uint64_t total = n;
    for (unsigned i = 0; i < words; i++) {
        uint64_t w = zwi_preload_extra_get(&G.ring.cells[(t + 1 + i / 4) & G.ring.mask], i & 3);
        if (tot && i == 0)
            total = w;
        else
            frames[i - tot] = w;
    }
    for (unsigned j = 0; j < n; j++) { /* frames[n - 1 - j] is at depth j */
        if (j < d)
            frames[n - 1 - j] = path[j];
        else
            path[j] = frames[n - 1 - j];
    }
    return zwi_tracer_intern(G.tracer, frames, n, total > 65535 ? 65535 : (unsigned)total);
}

/* Applies record `c` at ticket `tail` (its traceback interned first if it carries one); the
 * ticket after it and its cells. */
static uint64_t
apply_one(zwi_rec *c, uint64_t tail, tstats *cs)
{
    uint64_t next = tail + 1;
    if (c->op & ZWI_REC_FRAMES) {
        next += c->op >> ZWI_REC_EXTRA_SHIFT;
        c->ref = intern_posted(c, tail);
        c->op &= ZWI_OP_MASK | ZWI_REC_TEMP | ZWI_REC_KEEP;
    }
    zwi_preload_apply(c, cs, true);
    return next;
}

/* Applies what is published from the tail on, at most BATCH records; how many it applied. */
static unsigned
apply_batch(tstats *cs)
{
    uint64_t tail = atomic_load_explicit(&G.ring.tail, memory_order_relaxed);
    zwi_rec *c = &G.ring.cells[tail & G.ring.mask];
    if (atomic_load_explicit(&c->seq, memory_order_acquire) != tail + 1)
        return 0;
    unsigned n = 0;
    pthread_mutex_lock(&G.ring.apply_lock);
    /* the shard locks taken once a batch, the traced bytes changed without locked adds: the
     * locked instructions waited for the table's stores to drain, a third of this thread's time */
    zwi_tracer_batch_begin(G.tracer);
    while (n < BATCH) {
        c = &G.ring.cells[tail & G.ring.mask];
        if (atomic_load_explicit(&c->seq, memory_order_acquire) != tail + 1)
            break;
        /* the table's slot of a record PREFETCH_AHEAD on loads meanwhile */
        const zwi_rec *ahead = &G.ring.cells[(tail + PREFETCH_AHEAD) & G.ring.mask];
        if (atomic_load_explicit(&ahead->seq, memory_order_acquire) == tail + PREFETCH_AHEAD + 1)
            zwi_tracer_prefetch(G.tracer, ahead->ptr);
        tail = apply_one(c, tail, cs);
        n++;
    }
    zwi_tracer_batch_end(G.tracer);
    atomic_store_explicit(&G.ring.tail, tail, memory_order_release);
    pthread_mutex_unlock(&G.ring.apply_lock);
    return n;
}

/* The ring's first lap faulted in ahead of the producers (MADV_POPULATE_WRITE: the contents are
 * left as they are): the cells from *upto up to the head plus as many as were posted since
 * `start` (the ticket this thread started at, rounded down to a step), a step at least and 3/8
 * of the ring at most, in whole steps. Whether some of the lap is left to do (a kernel without
 * it, before 5.14, leaves the first touches to the hooks). */
static bool
populate_ahead(uint64_t start, uint64_t *upto)
{
    uint64_t cells = G.ring.mask + 1;
    if (*upto - start >= cells)
        return false;
    uint64_t head = atomic_load_explicit(&G.ring.tickets.head, memory_order_relaxed);
    uint64_t lead = head - start < POPULATE_STEP ? POPULATE_STEP : head - start;
    uint64_t target = head + (lead < cells / 8 * 3 ? lead : cells / 8 * 3);
    target -= target % POPULATE_STEP; /* whole steps: a few records posted map nothing more */
    if (target > start + cells)
        target = start + cells;
    while (*upto < target) {
        uint64_t at = *upto & G.ring.mask;
        uint64_t n = POPULATE_STEP - at % POPULATE_STEP;
        if (n > cells - at)
            n = cells - at;
        if (madvise(&G.ring.cells[at], n * sizeof(zwi_rec), MADV_POPULATE_WRITE) != 0) {
            *upto = start + cells;
            return false;
        }
        *upto += n;
    }
    return *upto - start < cells;
}

static void *
consumer_main(void *arg)
{
    (void)arg;
    zwi_preload_own_thread("zw-bookkeeping");
    tstats *cs = zwi_preload_stats_self();
    if (zwi_trace_self == NULL) /* it interns the tracebacks of ZWI_REC_FRAMES records */
        zwi_thread_make();
    /* the peak sets this thread saves allocate (untraced): its malloc arena made now, at start,
     * not in the middle of the program's run */
    void *volatile first = malloc(1); /* volatile: not a pair the compiler may take out */
    free(first);
    /* the first step before the constructor goes on: the program's first sample has it */
    uint64_t start = atomic_load(&G.ring.tickets.head) / POPULATE_STEP * POPULATE_STEP;
    uint64_t upto = start;
    populate_ahead(start, &upto);
    atomic_store(&G.ring.ready, true);
    uint64_t slept_at = 0; /* the head when this thread last went to sleep */
    for (unsigned batches = 0;;) {
        if (apply_batch(cs) != 0) {
            if (++batches % 16 == 0) /* busy: every 4096 records at most */
                populate_ahead(start, &upto);
            continue;
        }
        bool lap = populate_ahead(start, &upto);
        if (atomic_load(&G.ring.stop))
            break;
        scrub_stack();
        /* Caught up: asleep until a producer's next quarter of the ring, a full ring, a reader's
         * drain (the sampler's, every interval) or SLEEP_MS, even with a record being written (a
         * ticket taken, not yet published). Staying on the producers' heels, polling the head
         * and the cells they were writing, made every post wait for those cache lines to come
         * back: on python3.11 the ticket's locked add was 85 % of the free hook's samples.
         * While the first lap is faulted in and the program posts fast (POPULATE_FAST records
         * or more since the last sleep), a millisecond at most: the pages ahead keep up with a
         * fast producer, whose quarter of the ring may take 5 ms; a slow one is left alone. */
        uint64_t head = atomic_load_explicit(&G.ring.tickets.head, memory_order_relaxed);
        unsigned ms = lap && head - slept_at >= POPULATE_FAST ? POPULATE_SLEEP_MS : SLEEP_MS;
        slept_at = head;
        atomic_store(&G.ring.sleeping, 1);
        if (!atomic_load(&G.ring.stop))
            zwi_preload_futex_wait(&G.ring.sleeping, 1, ms);
        atomic_store(&G.ring.sleeping, 0);
    }
    zwi_trace_guard--;
    return NULL;
}

/* The ring's size from ZW_RING (records, a power of two), or the default. */
static uint64_t
ring_size(void)
{
    const char *s = zwi_preload_env("ZW_RING");
    if (s == NULL || *s == '\0')
        return RING_DEFAULT;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0' || v < RING_MIN || v > RING_MAX || (v & (v - 1)) != 0) {
        char msg[256];
        int n = snprintf(msg, sizeof(msg),
                         "zw: preload: warning: ZW_RING='%s' is not a power of two in [%llu, "
                         "%llu], using %llu\n",
                         s, (unsigned long long)RING_MIN, (unsigned long long)RING_MAX,
                         (unsigned long long)RING_DEFAULT);
        (void)!write(2, msg, (size_t)n);
        return RING_DEFAULT;
    }
    return v;
}

/* G.ring.sent and .seen, for ZWI_REC_FRAMES records: mapped, touched as threads come. Without
 * them (no memory), the hooks intern. */
static void
make_rows(void)
{
    size_t stride = (G.nframe + 1 + 7) & ~(size_t)7; /* whole cache lines */
    size_t bytes = (2 * LIVE_SLOTS + 1) * stride * sizeof(uintptr_t);
    uintptr_t *rows = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (rows == MAP_FAILED)
        return;
    G.ring.stride = stride;
    G.ring.seen = rows + LIVE_SLOTS * stride;
    G.ring.frames = rows + 2 * LIVE_SLOTS * stride;
    /* at most a quarter of the ring a record: a producer's wait for room always ends */
    G.ring.extra_max = (unsigned)((G.ring.mask + 1) / 4 - 1);
    G.ring.sent = rows;
}

static bool
spawn_consumer(void)
{
    atomic_store(&G.ring.stop, false);
    atomic_store(&G.ring.closed, false);
    atomic_store(&G.ring.sleeping, 0);
    atomic_store(&G.ring.ready, false);
    pthread_t th;
    pthread_attr_t attr;
    bool attr_ok = pthread_attr_init(&attr) == 0;
    if (attr_ok) /* a small stack: address space, under a limit (ulimit -v), is the program's */
        pthread_attr_setstacksize(&attr, STACK_SIZE);
    /* thread_on before the thread runs (it reads it); taken back if it could not start */
    atomic_store(&G.ring.thread_on, true);
    int rc = pthread_create(&th, attr_ok ? &attr : NULL, consumer_main, NULL);
    if (attr_ok)
        pthread_attr_destroy(&attr);
    if (rc != 0) {
        atomic_store(&G.ring.thread_on, false);
        return false;
    }
    G.ring.thread = th;
    /* started: the hooks post from now on, so its first steps are behind it */
    for (unsigned round = 0; !atomic_load(&G.ring.ready); round++)
        wait_a_little(round);
    return true;
}

void
zwi_preload_start_consumer(void)
{
    const char *mode = zwi_preload_env("ZW_BOOKKEEPING");
    if (mode != NULL && strcmp(mode, "inline") == 0)
        return;
    if (mode != NULL && *mode != '\0' && strcmp(mode, "thread") != 0) {
        char msg[256];
        int n = snprintf(msg, sizeof(msg),
                         "zw: preload: warning: ZW_BOOKKEEPING='%s' is neither 'thread' nor "
                         "'inline', using 'thread'\n",
                         mode);
        (void)!write(2, msg, (size_t)n);
    }
    uint64_t size = ring_size();
    size_t bytes = size * sizeof(zwi_rec);
    void *cells = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    void *stash = mmap(NULL, ZWI_STASH * sizeof(zwi_stash), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (cells == MAP_FAILED || stash == MAP_FAILED) {
        if (cells != MAP_FAILED)
            munmap(cells, bytes);
        if (stash != MAP_FAILED)
            munmap(stash, ZWI_STASH * sizeof(zwi_stash));
        return; /* inline */
    }
    G.ring.cells = cells;
    G.ring.stash = stash;
    G.ring.mask = size - 1;
    G.ring.wake_mask = size / 4 - 1;
    make_rows();
    pthread_mutex_init(&G.ring.apply_lock, NULL);
    /* every cell's seq starts at 0, never t + 1 for a ticket t */
    G.ring.on = spawn_consumer();
    if (G.ring.on)
        zwi_preload_ring_solo(); /* the program's threads are yet to come */
}

void
zwi_preload_stop_consumer(bool join, unsigned stall_ms)
{
    if (!G.ring.on || !atomic_load(&G.ring.thread_on))
        return;
    zwi_preload_drain(stall_ms);
    atomic_store(&G.ring.closed, true);
    atomic_store(&G.ring.stop, true);
    zwi_preload_wake_consumer();
    if (join && !is_consumer())
        pthread_join(G.ring.thread, NULL);
    atomic_store(&G.ring.thread_on, false);
}

/* ---- fork ---- */

void
zwi_preload_consumer_fork_prepare(void)
{
    if (!G.ring.on)
        return;
    zwi_preload_drain(ZWI_DRAIN_MS);
    pthread_mutex_lock(&G.ring.apply_lock);
}

void
zwi_preload_consumer_fork_parent(void)
{
    if (G.ring.on)
        pthread_mutex_unlock(&G.ring.apply_lock);
}

void
zwi_preload_consumer_fork_catch_up(tstats *cs)
{
    if (!G.ring.on)
        return;
    uint64_t tail = atomic_load_explicit(&G.ring.tail, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&G.ring.tickets.head, memory_order_relaxed);
    while (tail < head) {
        zwi_rec *c = &G.ring.cells[tail & G.ring.mask];
        if (atomic_load_explicit(&c->seq, memory_order_acquire) == tail + 1)
            tail = apply_one(c, tail, cs);
        else
            tail++; /* its thread, gone, was writing it: passed over, cell by cell (the cells
                     * of a record's traceback never look like a record) */
    }
    atomic_store_explicit(&G.ring.tail, tail, memory_order_release);
}

void
zwi_preload_consumer_fork_child(void)
{
    if (!G.ring.on)
        return;
    /* the records left (a followed child applied the ones it could: catch_up) are of threads
     * the child does not have: dropped, the ring starts empty at the head (a cell's old seq is
     * never head + 1 for the next lap) */
    atomic_store(&G.ring.tail, atomic_load(&G.ring.tickets.head));
    atomic_store(&G.ring.thread_on, false);
    atomic_store(&G.ring.sleeping, 0);
    memset(G.ring.stash, 0, ZWI_STASH * sizeof(zwi_stash));
    if (G.ring.sent != NULL) /* the consumer saw none of them: every id's next post is whole */
        for (size_t i = 0; i < LIVE_SLOTS; i++)
            G.ring.sent[i * G.ring.stride] = 0;
    pthread_mutex_init(&G.ring.apply_lock, NULL);
    zwi_preload_ring_solo(); /* the child's one thread */
    if (atomic_load(&G.active) && !spawn_consumer())
        G.ring.on = false; /* one thread: the hooks apply their records themselves */
}
