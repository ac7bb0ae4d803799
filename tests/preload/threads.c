/* tests/preload/threads.c - 8 threads allocate and free at once; each keeps KEEP blocks of 100
 * bytes to the end, so the figures are known: 8 * (ROUNDS + KEEP) allocations, 8 * KEEP leaks. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define NTHREADS 8
#define ROUNDS   100000
#define KEEP     100

static void *
work(void *arg)
{
    void **keep = arg;
    for (int i = 0; i < ROUNDS; i++) {
        void *p = malloc(32 + (size_t)(i % 64));
        free(p);
    }
    for (int i = 0; i < KEEP; i++)
        keep[i] = malloc(100);
    return NULL;
}

int
main(void)
{
    pthread_t th[NTHREADS];
    static void *keep[NTHREADS][KEEP];
    for (int i = 0; i < NTHREADS; i++)
        pthread_create(&th[i], NULL, work, keep[i]);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    printf("threads done\n");
    return 0;
}
