/* tests/preload/threads.c - 8 threads allocate and free at once; each keeps KEEP blocks of 100
 * bytes to the end, so the figures are known: 8 * (ROUNDS + KEEP) allocations, 8 * KEEP leaks.
 * `zwp_threads getattr`: each thread first asks for its own attributes, as the JVM's threads do:
 * glibc's pthread_getattr_np allocates while it holds the thread's lock, so that allocation is
 * the thread's first (a few more of libc's in the counts). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int getattr_first;

#define NTHREADS 8
#define ROUNDS   100000
#define KEEP     100

static void *
work(void *arg)
{
    void **keep = arg;
    if (getattr_first) {
        pthread_attr_t attr;
        void *addr;
        size_t size;
        if (pthread_getattr_np(pthread_self(), &attr) != 0 ||
            pthread_attr_getstack(&attr, &addr, &size) != 0 || size == 0) {
            fprintf(stderr, "zwp_threads: pthread_getattr_np failed\n");
            exit(1);
        }
        pthread_attr_destroy(&attr);
    }
    for (int i = 0; i < ROUNDS; i++) {
        void *p = malloc(32 + (size_t)(i % 64));
        free(p);
    }
    for (int i = 0; i < KEEP; i++)
        keep[i] = malloc(100);
    return NULL;
}

int
main(int argc, char **argv)
{
    getattr_first = argc > 1 && strcmp(argv[1], "getattr") == 0;
    pthread_t th[NTHREADS];
    static void *keep[NTHREADS][KEEP];
    for (int i = 0; i < NTHREADS; i++)
        pthread_create(&th[i], NULL, work, keep[i]);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    printf("threads done\n");
    return 0;
}
