/* tests/preload/tsan_preload.c - the preload library's engine under ThreadSanitizer, 8 threads.
 *
 * TSan and LD_PRELOAD interposition do not mix: an instrumented libzwpreload.so preloaded before
 * libtsan.so has its malloc called by TSan's own start-up (its interceptors are found with
 * dlsym, which allocates) before TSan can run instrumented code, and crashes there; preloaded
 * after it, TSan's malloc wins and the hooks never run. So this program links the preload
 * library's sources themselves, compiled with -fsanitize=thread and with the interposed names
 * renamed (malloc -> zwp_malloc, ... mmap -> zwp_mmap, ... _exit -> zwp__exit: tests/CMakeLists.txt):
 * the hooks, the sampler thread, the writer, the life cycle (constructor, on_exit, fork handlers)
 * run as in a preloaded process, and the "real" functions they find with dlsym are TSan's.
 *
 * 8 threads allocate, reallocate and free through the hooks, half of their blocks freed by the
 * next thread, while the sampler streams samples and steps; main takes marks meanwhile. The run
 * passes when TSan reports nothing (exit code 66 otherwise, TSAN_OPTIONS) and the capture
 * counts exactly the program's calls: tests/preload/test_tsan_preload.sh checks it. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <zerowaste/capture.h>

void *zwp_malloc(size_t n);
void *zwp_calloc(size_t nelem, size_t elsize);
void *zwp_realloc(void *p, size_t n);
void zwp_free(void *p);

#define NTHREADS 8
#define ROUNDS   2000
#define SLOTS    64

/* Blocks handed from thread i to thread (i + 1) % NTHREADS, which frees them. */
static struct {
    pthread_mutex_t lock;
    void *slot[NTHREADS][SLOTS];
} H = {.lock = PTHREAD_MUTEX_INITIALIZER};

static atomic_long allocations; /* the program's own allocation calls that returned a block */

static void *
work(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    uint64_t s = id * 0x9e3779b97f4a7c15ull + 1;
    for (int r = 0; r < ROUNDS; r++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        size_t n = 1 + (size_t)(s >> 40) % 400;
        /* one block made and freed here, grown once on the way */
        char *p = (s >> 20) & 1 ? zwp_malloc(n) : zwp_calloc(1, n);
        char *q = zwp_realloc(p, 2 * n);
        atomic_fetch_add(&allocations, 2);
        zwp_free(q);
        /* one handed to the next thread, which frees it */
        void *m = zwp_malloc(n);
        atomic_fetch_add(&allocations, 1);
        unsigned k = (unsigned)(s >> 30) % SLOTS;
        pthread_mutex_lock(&H.lock);
        void *old = H.slot[(id + 1) % NTHREADS][k];
        H.slot[(id + 1) % NTHREADS][k] = m;
        pthread_mutex_unlock(&H.lock);
        zwp_free(old);
    }
    return NULL;
}

int
main(void)
{
    pthread_t th[NTHREADS];
    for (uintptr_t i = 0; i < NTHREADS; i++)
        pthread_create(&th[i], NULL, work, (void *)i);
    for (int i = 0; i < 5; i++)
        zw_mark("while the threads run");
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    size_t left = 0;
    for (int i = 0; i < NTHREADS; i++) {
        for (int k = 0; k < SLOTS; k++) {
            left += H.slot[i][k] != NULL;
            zwp_free(H.slot[i][k]);
        }
    }
    printf("allocations %ld, %zu freed at the end\n", atomic_load(&allocations), left);
    return 0;
}
