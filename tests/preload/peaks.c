/* tests/preload/peaks.c - 8 threads whose peaks interleave, and the program's own exact peak.
 *
 * Each thread runs ROUNDS rounds: it allocates a burst of blocks (a different size and count per
 * thread and round, so threads rise and fall at different times), holds it a moment and frees it.
 * Then each allocates FINAL bytes of blocks, all wait at a barrier, hold them HOLD_MS, and free
 * them. Every byte the
 * program allocates and frees is counted in one atomic counter (added after malloc returns,
 * taken before free), whose maximum is the program's true peak of live bytes. The final phase is
 * the one moment when every thread holds its most, so the true peak is 8 * FINAL whatever the
 * scheduling: a burst is at most BURST_MAX < FINAL bytes. The program prints it at the end (stdio
 * allocates its buffer before the threads start: nothing of libc's comes or goes meanwhile). */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define NTHREADS  8
#define ROUNDS    200
#define BURST_MAX (48 * 1024) /* bytes of one burst, at most */
#define FINAL     (96 * 1024) /* bytes each thread holds at the barrier */
#define FINAL_BLK 384         /* size of the final blocks (FINAL is a multiple) */
#define HOLD_MS   50          /* how long the peak is held */

static atomic_long live;      /* bytes the program holds now */
static atomic_long true_peak; /* the most `live` has been */
static pthread_barrier_t start;
static pthread_barrier_t top;
static pthread_barrier_t hold;

static void
count(long n)
{
    long now = atomic_fetch_add(&live, n) + n;
    long peak = atomic_load(&true_peak);
    while (now > peak && !atomic_compare_exchange_weak(&true_peak, &peak, now))
        ;
}

static void *
take(size_t n)
{
    void *p = malloc(n); /* peaks.c: burst */
    if (p == NULL)
        abort();
    count((long)n);
    return p;
}

static void
give(void *p, size_t n)
{
    count(-(long)n);
    free(p);
}

static void *
work(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    static _Thread_local void *held[FINAL / FINAL_BLK + BURST_MAX / 16];
    static _Thread_local size_t sizes[FINAL / FINAL_BLK + BURST_MAX / 16];
    uint64_t s = id * 0x9e3779b97f4a7c15ull + 1;
    pthread_barrier_wait(&start);
    for (int r = 0; r < ROUNDS; r++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        size_t size = 16 + (size_t)(s >> 33) % 2000;
        size_t n = 1 + (size_t)(s >> 17) % (BURST_MAX / size);
        for (size_t i = 0; i < n; i++) {
            sizes[i] = size;
            held[i] = take(size);
        }
        for (int k = 0; k < (int)(s >> 60); k++)
            sched_yield();
        for (size_t i = 0; i < n; i++)
            give(held[i], sizes[i]);
    }
    size_t n = FINAL / FINAL_BLK;
    for (size_t i = 0; i < n; i++)
        held[i] = take(FINAL_BLK);
    pthread_barrier_wait(&top);
    if (id == 0) /* the peak held for a few sampling intervals: its set is saved exactly */
        nanosleep(&(struct timespec){0, HOLD_MS * 1000000L}, NULL);
    pthread_barrier_wait(&hold);
    for (size_t i = 0; i < n; i++)
        give(held[i], FINAL_BLK);
    return NULL;
}

int
main(void)
{
    printf("peaks: %d threads\n", NTHREADS);
    fflush(stdout);
    pthread_barrier_init(&start, NULL, NTHREADS);
    pthread_barrier_init(&top, NULL, NTHREADS);
    pthread_barrier_init(&hold, NULL, NTHREADS);
    pthread_t th[NTHREADS];
    for (uintptr_t i = 0; i < NTHREADS; i++)
        pthread_create(&th[i], NULL, work, (void *)i);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    printf("true peak %ld bytes, %ld live at the end\n", atomic_load(&true_peak),
           atomic_load(&live));
    return 0;
}
