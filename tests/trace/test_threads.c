/* tests/trace/test_threads.c - the engine under several threads: blocks allocated on one thread
 * and freed on another, through the domains and private heaps, with tracing on. Afterwards the
 * traced bytes and the snapshot hold exactly the blocks still alive, whatever the interleaving,
 * and threads that exited gave their pending counts back. */
#include <criterion/criterion.h>
#include <pthread.h>
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
