/* tests/trace/test_threads.c - the engine under several threads: blocks allocated on one thread
 * and freed on another, through the domains and private heaps, with tracing on. Afterwards the
 * traced bytes and the snapshot hold exactly the blocks still alive, whatever the interleaving.
 * Then the tracer cleared, snapshotted and its peak reset while threads trace. Also built with
 * ThreadSanitizer (tests/tsan), where any data race fails the test. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <zerowaste/zerowaste.h>

#define NTHREADS 4
#define ROUNDS   20000
#define KEEP     100 /* blocks each thread leaves alive */

typedef struct handoff {
    void *slot[NTHREADS][64]; /* blocks passed from thread i to thread (i + 1) % NTHREADS */
    pthread_mutex_t lock;
} handoff;

static handoff H = {.lock = PTHREAD_MUTEX_INITIALIZER};

typedef struct worker_arg {
    int id;
    void *kept[KEEP];
} worker_arg;

static void *
worker(void *p)
{
    worker_arg *w = p;
    zw_heap_config cfg = {.flags = ZW_HEAP_IGNORE_ENV};
    zw_heap *h = zw_heap_new_ex(&cfg);
    uint64_t s = (uint64_t)w->id * 7919 + 1;
    for (int r = 0; r < ROUNDS; r++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        size_t n = 1 + (size_t)(s >> 40) % 300;
        /* a private heap: allocated and freed here */
        void *q = zw_heap_malloc(h, n);
        zw_heap_free(h, q);
        /* the MEM domain: handed to the next thread, which frees it */
        void *m = zw_mem_malloc(n);
        int k = (int)((s >> 20) % 64);
        pthread_mutex_lock(&H.lock);
        void *old = H.slot[(w->id + 1) % NTHREADS][k];
        H.slot[(w->id + 1) % NTHREADS][k] = m;
        pthread_mutex_unlock(&H.lock);
        zw_mem_free(old);
        /* RAW, realloc'ed */
        void *rw = zw_mem_raw_malloc(n);
        rw = zw_mem_raw_realloc(rw, n * 2);
        zw_mem_raw_free(rw);
    }
    for (int i = 0; i < KEEP; i++)
        w->kept[i] = zw_mem_obj_malloc(48);
    zw_heap_destroy(h);
    return NULL;
}

Test(trace_threads, traces_stay_exact_across_threads)
{
    zw_error err;
    cr_assert_eq(zw_trace_start(4, &err), 0, "%s", err.msg);
    pthread_t t[NTHREADS];
    worker_arg args[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        args[i].id = i;
        cr_assert_eq(pthread_create(&t[i], NULL, worker, &args[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    /* alive: the handed-off blocks still in slots, and each thread's kept blocks */
    size_t alive_bytes = (size_t)NTHREADS * KEEP * 48;
    size_t alive = (size_t)NTHREADS * KEEP;
    zw_snapshot *snap = zw_trace_take_snapshot(&err);
    cr_assert_not_null(snap, "%s", err.msg);
    size_t slot_blocks = 0;
    for (int i = 0; i < NTHREADS; i++) {
        for (int k = 0; k < 64; k++) {
            if (H.slot[i][k] != NULL)
                slot_blocks++;
        }
    }
    size_t traced_bytes = 0;
    for (size_t i = 0; i < zw_snapshot_len(snap); i++)
        traced_bytes += zw_snapshot_trace(snap, i).size;
    cr_assert_eq(zw_snapshot_len(snap), alive + slot_blocks, "%zu traces, expected %zu",
                 zw_snapshot_len(snap), alive + slot_blocks);
    size_t cur;
    size_t peak;
    zw_trace_get_traced_memory(&cur, &peak);
    cr_assert_eq(cur, traced_bytes, "current %zu, the snapshot holds %zu", cur, traced_bytes);
    cr_assert_geq(cur, alive_bytes);
    cr_assert_geq(peak, cur);
    zw_snapshot_free(snap);
    for (int i = 0; i < NTHREADS; i++) {
        for (int k = 0; k < KEEP; k++)
            zw_mem_obj_free(args[i].kept[k]);
        for (int k = 0; k < 64; k++)
            zw_mem_free(H.slot[i][k]);
    }
    zw_trace_get_traced_memory(&cur, NULL);
    cr_assert_eq(cur, 0);
    zw_trace_stop();
}

/* ---- clear and snapshots while threads trace ---- */

#define CHURN_LIVE 64 /* blocks each churning thread holds at a time */

typedef struct churner {
    int id;
    atomic_bool *stop;
    size_t rounds; /* rounds done */
} churner;

/* Allocates and frees through the three domains until told to stop, then frees what it holds. */
static void *
churn(void *p)
{
    churner *c = p;
    void *live[CHURN_LIVE] = {0};
    uint64_t s = (uint64_t)c->id * 2654435761u + 7;
    while (!atomic_load(c->stop) || c->rounds < 1000) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        int k = (int)((s >> 33) % CHURN_LIVE);
        size_t n = 1 + (size_t)(s >> 45) % 500;
        switch (k % 3) {
        case 0:
            zw_mem_free(live[k]);
            live[k] = zw_mem_malloc(n);
            break;
        case 1:
            zw_mem_obj_free(live[k]);
            live[k] = zw_mem_obj_malloc(n);
            break;
        default:
            zw_mem_raw_free(live[k]);
            live[k] = zw_mem_raw_malloc(n);
            break;
        }
        c->rounds++;
    }
    for (int k = 0; k < CHURN_LIVE; k++) {
        switch (k % 3) {
        case 0:
            zw_mem_free(live[k]);
            break;
        case 1:
            zw_mem_obj_free(live[k]);
            break;
        default:
            zw_mem_raw_free(live[k]);
            break;
        }
    }
    return NULL;
}

/* The traced bytes of a snapshot. */
static size_t
snapshot_bytes(const zw_snapshot *snap)
{
    size_t n = 0;
    for (size_t i = 0; i < zw_snapshot_len(snap); i++)
        n += zw_snapshot_trace(snap, i).size;
    return n;
}

/* Threads allocate and free while this one clears the tracer, takes snapshots and reads and
 * resets the peak. Each snapshot holds at most what the threads can hold at once; once they have
 * freed everything, nothing is traced and the traced bytes are 0: a clear that raced with an
 * allocation or a free left no trace and no byte behind. */
Test(trace_threads, clear_and_snapshots_while_threads_trace)
{
    zw_error err;
    cr_assert_eq(zw_trace_start(4, &err), 0, "%s", err.msg);
    atomic_bool stop = false;
    pthread_t t[NTHREADS];
    churner c[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        c[i] = (churner){.id = i, .stop = &stop};
        cr_assert_eq(pthread_create(&t[i], NULL, churn, &c[i]), 0);
    }
    const size_t most = (size_t)NTHREADS * CHURN_LIVE * 500;
    for (int r = 0; r < 40; r++) {
        if (r % 2 == 0)
            zw_trace_clear();
        if (r % 3 == 0)
            zw_trace_reset_peak();
        zw_snapshot *snap = zw_trace_take_snapshot(&err);
        cr_assert_not_null(snap, "%s", err.msg);
        size_t bytes = snapshot_bytes(snap);
        cr_assert_leq(bytes, most, "a snapshot holds %zu bytes, the threads at most %zu", bytes,
                      most);
        zw_snapshot_free(snap);
        size_t cur;
        size_t peak;
        zw_trace_get_traced_memory(&cur, &peak);
        cr_assert_leq(cur, peak);
        cr_assert_leq(cur, most, "%zu bytes traced, the threads hold at most %zu", cur, most);
    }
    atomic_store(&stop, true);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    zw_snapshot *snap = zw_trace_take_snapshot(&err);
    cr_assert_not_null(snap, "%s", err.msg);
    size_t left = zw_snapshot_len(snap);
    zw_snapshot_free(snap);
    size_t cur;
    zw_trace_get_traced_memory(&cur, NULL);
    cr_assert_eq(left, 0, "%zu traces left after every block was freed", left);
    cr_assert_eq(cur, 0, "%zu bytes traced after every block was freed", cur);
    zw_trace_stop();
}
