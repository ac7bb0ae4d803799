/* tests/preload/bookkeeping.c - the cases of the bookkeeping thread (src/preload/consumer.c),
 * each with counts known by construction (test_bookkeeping.sh runs them in both modes):
 *
 *   reuse   8 threads pass blocks round a ring of mailboxes: each frees blocks another thread
 *           allocated, and glibc hands their addresses to the freeing thread's next allocations
 *           (address reuse across threads, which the records must apply in order). Each thread
 *           also makes TEMPS temporary pairs per round and, at the end, leaks LEAKS blocks of
 *           LEAK_SIZE bytes. Prints the allocations, frees and temporary pairs it made.
 *   mark    one thread allocates MARK_N blocks of MARK_SIZE bytes, calls zw_mark("mid") at once
 *           and frees them: the mark's set must hold all of them; two other threads allocate
 *           and free meanwhile.
 *   fork    two threads allocate and free while the main thread forks; the child (followed)
 *           makes FORK_N blocks of FORK_SIZE bytes, frees half and exits.
 *   crash   two threads allocate and free, the main thread makes CRASH_N blocks of CRASH_SIZE
 *           bytes and then dies of SIGSEGV: a capture that loads, with every one of them.
 *   realloc REALLOC_N blocks of REALLOC_SIZE bytes, each realloc'd to a size no allocator gives
 *           (it fails: the block stays, with its traceback), then left allocated.
 *   handover the main thread allocates and frees in a tight loop and starts a thread that does
 *           the same while it goes on: the second thread's first records are posted while the
 *           first thread takes tickets as fast as it can. Each leaves HANDOVER_LEAKS blocks of
 *           its own size; both print what they made.
 *   forkheld two threads replace the HELD blocks of HELD_SIZE bytes each holds as fast as they
 *           can while the main thread forks FORKS times; each child (followed) frees every block
 *           they held at the fork, the ones whose records were posted while fork held the
 *           bookkeeping included, and prints how many. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

void zw_mark(const char *label) __attribute__((weak)); /* libzwpreload.so's, under zw run */

#define NTHREADS  8
#define ROUNDS    2000
#define BATCH     16  /* blocks a thread passes on per round */
#define TEMPS     3   /* temporary pairs per round */
#define LEAKS     10  /* blocks each thread leaks */
#define LEAK_SIZE 777
#define MARK_N    1000
#define MARK_SIZE 1234
#define FORK_N    500
#define FORK_SIZE 4321
#define CRASH_N   20000
#define CRASH_SIZE 99
#define REALLOC_N    100
#define REALLOC_SIZE 555

/* ---- reuse ---- */

typedef struct mailbox {
    pthread_mutex_t lock;
    void *blocks[BATCH * 4];
    int n;
} mailbox;

static mailbox boxes[NTHREADS];
static pthread_barrier_t done;
static atomic_long allocs, frees, temps;

static void *
reuse_worker(void *arg)
{
    int me = (int)(long)arg;
    mailbox *out = &boxes[(me + 1) % NTHREADS];
    mailbox *in = &boxes[me];
    long a = 0, f = 0, t = 0;
    for (int r = 0; r < ROUNDS; r++) {
        void *mine[BATCH];
        for (int i = 0; i < BATCH; i++) {
            mine[i] = malloc(32 + (size_t)(i * 8)); /* bookkeeping.c: passed on */
            a++;
        }
        for (int i = 0; i < TEMPS; i++) {
            void *p = malloc(48); /* bookkeeping.c: temporary */
            free(p);
            a++;
            f++;
            t++;
        }
        pthread_mutex_lock(&out->lock);
        int room = (int)(sizeof(out->blocks) / sizeof(out->blocks[0])) - out->n;
        int give = room < BATCH ? room : BATCH;
        memcpy(out->blocks + out->n, mine, (size_t)give * sizeof(void *));
        out->n += give;
        pthread_mutex_unlock(&out->lock);
        for (int i = give; i < BATCH; i++) { /* no room: freed here */
            free(mine[i]);
            f++;
        }
        pthread_mutex_lock(&in->lock);
        void *got[BATCH * 4];
        int n = in->n;
        memcpy(got, in->blocks, (size_t)n * sizeof(void *));
        in->n = 0;
        pthread_mutex_unlock(&in->lock);
        for (int i = 0; i < n; i++) { /* another thread's blocks: their addresses come back */
            free(got[i]);
            f++;
        }
    }
    pthread_barrier_wait(&done); /* nothing more is passed on: the mailboxes are emptied */
    pthread_mutex_lock(&in->lock);
    for (int i = 0; i < in->n; i++) {
        free(in->blocks[i]);
        f++;
    }
    in->n = 0;
    pthread_mutex_unlock(&in->lock);
    for (int i = 0; i < LEAKS; i++) {
        void *volatile p = malloc(LEAK_SIZE); /* bookkeeping.c: leaked */
        (void)p;
        a++;
    }
    atomic_fetch_add(&allocs, a);
    atomic_fetch_add(&frees, f);
    atomic_fetch_add(&temps, t);
    return NULL;
}

static int
run_reuse(void)
{
    pthread_t th[NTHREADS];
    pthread_barrier_init(&done, NULL, NTHREADS);
    for (int i = 0; i < NTHREADS; i++)
        pthread_mutex_init(&boxes[i].lock, NULL);
    for (long i = 0; i < NTHREADS; i++)
        pthread_create(&th[i], NULL, reuse_worker, (void *)i);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    printf("allocations %ld\nfrees %ld\ntemporary %ld\n", atomic_load(&allocs),
           atomic_load(&frees), atomic_load(&temps));
    return 0;
}

/* ---- background threads for the other cases ---- */

static atomic_bool stop;

static void *
churn(void *arg)
{
    (void)arg;
    void *keep[64] = {0};
    for (unsigned i = 0; !atomic_load(&stop); i++) {
        free(keep[i % 64]);
        keep[i % 64] = malloc(16 + i % 200); /* bookkeeping.c: churn */
    }
    for (int i = 0; i < 64; i++)
        free(keep[i]);
    return NULL;
}

static void
start_churn(pthread_t th[2])
{
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, churn, NULL);
    usleep(20000);
}

static void
stop_churn(pthread_t th[2])
{
    atomic_store(&stop, true);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
}

static int
run_mark(void)
{
    pthread_t th[2];
    start_churn(th);
    void **v = calloc(MARK_N, sizeof(void *));
    for (int i = 0; i < MARK_N; i++)
        v[i] = malloc(MARK_SIZE); /* bookkeeping.c: marked */
    if (zw_mark != NULL)
        zw_mark("mid");
    for (int i = 0; i < MARK_N; i++)
        free(v[i]);
    free(v);
    stop_churn(th);
    return 0;
}

static int
run_fork(void)
{
    pthread_t th[2];
    start_churn(th);
    pid_t pid = fork();
    if (pid == 0) {
        void *v[FORK_N];
        for (int i = 0; i < FORK_N; i++)
            v[i] = malloc(FORK_SIZE); /* bookkeeping.c: the child's */
        for (int i = 0; i < FORK_N; i += 2)
            free(v[i]);
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    stop_churn(th);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

/* ---- forkheld ---- */

#define HELD      64  /* blocks each churning thread holds */
#define HELD_SIZE 3333
#define FORKS     5

static void *_Atomic held[2][HELD];

/* Replaces its blocks one by one, as fast as it can: at any moment each entry is NULL or a live
 * block whose allocation was recorded before the entry was stored. */
static void *
churn_held(void *arg)
{
    void *_Atomic *mine = held[(uintptr_t)arg];
    for (unsigned i = 0; !atomic_load(&stop); i++) {
        free(atomic_exchange(&mine[i % HELD], NULL));
        atomic_store(&mine[i % HELD], malloc(HELD_SIZE)); /* bookkeeping.c: held */
    }
    return NULL;
}

static int
run_forkheld(void)
{
    pthread_t th[2];
    for (uintptr_t i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, churn_held, (void *)i);
    usleep(20000);
    int rc = 0;
    for (int k = 0; k < FORKS && rc == 0; k++) {
        pid_t pid = fork();
        if (pid == 0) { /* frees every block the two threads held at the fork */
            long n = 0;
            for (int t = 0; t < 2; t++)
                for (int i = 0; i < HELD; i++) {
                    void *p = atomic_load(&held[t][i]);
                    if (p != NULL) {
                        free(p);
                        n++;
                    }
                }
            printf("child %d freed %ld\n", k + 1, n);
            fflush(stdout);
            _exit(0);
        }
        int status;
        waitpid(pid, &status, 0);
        rc = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
        usleep(10000);
    }
    atomic_store(&stop, true);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    return rc;
}

static int
run_crash(void)
{
    pthread_t th[2];
    start_churn(th);
    for (int i = 0; i < CRASH_N; i++) {
        void *volatile p = malloc(CRASH_SIZE); /* bookkeeping.c: before the crash */
        (void)p;
    }
    raise(SIGSEGV);
    return 1;
}

#define HANDOVER_N     100000
#define HANDOVER_LEAKS 40
#define HANDOVER_MAIN  333 /* bytes of the main thread's leaked blocks */
#define HANDOVER_OTHER 444 /* the other thread's */

static atomic_long handover_allocs, handover_frees;

/* Allocates and frees `n` blocks, a few alive at a time, then leaks HANDOVER_LEAKS of `leak`
 * bytes; counts what it did. */
static void
churn_then_leak(long n, size_t leak, void (*midway)(void))
{
    void *keep[8] = {0};
    long allocs = 0, frees = 0;
    for (long i = 0; i < n; i++) {
        if (i == 1000 && midway != NULL)
            midway();
        if (keep[i & 7] != NULL) {
            free(keep[i & 7]);
            frees++;
        }
        keep[i & 7] = malloc(16 + (size_t)(i & 63));
        allocs++;
    }
    for (int k = 0; k < 8; k++) {
        free(keep[k]);
        frees++;
    }
    for (int k = 0; k < HANDOVER_LEAKS; k++) {
        void *volatile p = malloc(leak);
        (void)p;
        allocs++;
    }
    atomic_fetch_add(&handover_allocs, allocs);
    atomic_fetch_add(&handover_frees, frees);
}

static void *
handover_other(void *arg)
{
    (void)arg;
    churn_then_leak(HANDOVER_N, HANDOVER_OTHER, NULL);
    return NULL;
}

static pthread_t handover_thread;

static void
start_other(void)
{
    if (pthread_create(&handover_thread, NULL, handover_other, NULL) != 0)
        abort();
}

static int
run_handover(void)
{
    churn_then_leak(HANDOVER_N, HANDOVER_MAIN, start_other);
    pthread_join(handover_thread, NULL);
    printf("allocations %ld\nfrees %ld\n", atomic_load(&handover_allocs),
           atomic_load(&handover_frees));
    return 0;
}

static int
run_realloc(void)
{
    static void *v[REALLOC_N];
    for (int i = 0; i < REALLOC_N; i++)
        v[i] = malloc(REALLOC_SIZE); /* bookkeeping.c: realloc fails */
    size_t huge = (size_t)1 << 62;
    for (int i = 0; i < REALLOC_N; i++)
        if (realloc(v[i], huge) != NULL)
            return 1;
    return 0;
}

int
main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "";
    if (strcmp(what, "reuse") == 0)
        return run_reuse();
    if (strcmp(what, "mark") == 0)
        return run_mark();
    if (strcmp(what, "fork") == 0)
        return run_fork();
    if (strcmp(what, "crash") == 0)
        return run_crash();
    if (strcmp(what, "realloc") == 0)
        return run_realloc();
    if (strcmp(what, "handover") == 0)
        return run_handover();
    if (strcmp(what, "forkheld") == 0)
        return run_forkheld();
    fprintf(stderr, "usage: bookkeeping reuse|mark|fork|crash|realloc|handover|forkheld\n");
    return 2;
}
