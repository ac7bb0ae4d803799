/* tests/preload/sites.c [fork] [close] [LIB] | threads - allocates from 4096 distinct tracebacks
 * (paths of twelve calls through a() and b(), each from one of two lines) in eight rounds 40 ms
 * apart, keeping one block of three from each path; `threads`: the same paths taken by four
 * waves of four threads, one wave after the other (each wave's threads take the slots of the
 * last one's, which have exited); `lowfd`: opens /dev/null again and again for 300 ms and counts
 * the opens that did not get the lowest free descriptor; `ringfaults`: 300k malloc/free pairs of
 * one size, 10k at a time (nothing new for malloc to touch), printing the page faults its thread
 * took meanwhile
 * (zw's ring, mapped as it is first used, is faulted in by zw's bookkeeping thread); with LIB, dlopens it after the fourth round and
 * allocates through its lib_mid() (and with `close` dlcloses it after); with `fork`, forks after
 * the second round and the child goes on with paths of its own. It prints how many files it has
 * open on descriptors 3 to 999 at its start and at its end (it opens none itself: zw's symboliser,
 * which reads module files while the program runs, keeps its own at 1000 and above). Deterministic: two runs give the same tracebacks and counts, whenever
 * zw's sampler converts them (test_ahead.sh). */
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEPTH  12
#define PATHS  (1u << DEPTH)
#define ROUNDS 8

static void *kept[3 * PATHS];
static size_t nkept;

static __attribute__((noinline)) void *b(unsigned bits, unsigned d);

static __attribute__((noinline)) void *
a(unsigned bits, unsigned d)
{
    void *p;
    if (d == 0)
        p = malloc(24 + (bits & 7) * 8);
    else if (bits & 1)
        p = a(bits >> 1, d - 1);
    else
        p = b(bits >> 1, d - 1);
    __asm__ volatile("" : : "r"(p) : "memory"); /* no tail call: every frame stays */
    return p;
}

static __attribute__((noinline)) void *
b(unsigned bits, unsigned d)
{
    void *p;
    if (d == 0)
        p = malloc(40);
    else if (bits & 1)
        p = a(bits >> 1, d - 1);
    else
        p = b(bits >> 1, d - 1);
    __asm__ volatile("" : : "r"(p) : "memory");
    return p;
}

static void
round_of(unsigned r, unsigned flip)
{
    for (unsigned i = r * (PATHS / ROUNDS); i < (r + 1) * (PATHS / ROUNDS); i++) {
        for (int k = 0; k < 3; k++) {
            void *p = a(i ^ flip, DEPTH);
            if (k == 0)
                kept[nkept++] = p;
            else
                free(p);
        }
    }
    nanosleep(&(struct timespec){0, 40 * 1000 * 1000}, NULL);
}

#define WAVES 4
#define WAVE_THREADS 4

/* Thread k of a wave: the paths i with i % (WAVES * WAVE_THREADS) == its number. */
static void *
wave_worker(void *arg)
{
    unsigned me = (unsigned)(uintptr_t)arg;
    for (unsigned i = me; i < PATHS; i += WAVES * WAVE_THREADS) {
        for (int k = 0; k < 3; k++) {
            void *p = a(i, DEPTH);
            if (k == 0)
                kept[i] = p;
            else
                free(p);
        }
    }
    return NULL;
}

static int
run_waves(void)
{
    for (unsigned w = 0; w < WAVES; w++) {
        pthread_t th[WAVE_THREADS];
        for (unsigned k = 0; k < WAVE_THREADS; k++)
            if (pthread_create(&th[k], NULL, wave_worker,
                               (void *)(uintptr_t)(w * WAVE_THREADS + k)) != 0)
                return 1;
        for (unsigned k = 0; k < WAVE_THREADS; k++)
            pthread_join(th[k], NULL);
    }
    printf("sites %u kept by %u threads\n", PATHS, WAVES * WAVE_THREADS);
    return 0;
}

/* Files open on descriptors 3 to 999 (the directory read here left out). */
static int
low_files(void)
{
    DIR *d = opendir("/proc/self/fd");
    int low = 0;
    for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;) {
        int fd = atoi(e->d_name);
        char path[64], to[256];
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        ssize_t n = readlink(path, to, sizeof(to) - 1);
        if (fd >= 3 && fd < 1000 && fd != dirfd(d) && n > 0 && to[0] == '/')
            low++;
    }
    if (d != NULL)
        closedir(d);
    return low;
}

/* Opens and closes /dev/null for 300 ms: each open must get the lowest free descriptor, the one
 * the first got (a thread of zw's holding one for a moment would push the program's up). */
static int
run_lowfd(void)
{
    int first = open("/dev/null", O_RDONLY);
    if (first < 0)
        return 1;
    close(first);
    unsigned long opens = 0, elsewhere = 0;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        int fd = open("/dev/null", O_RDONLY);
        if (fd < 0)
            return 1;
        opens++;
        elsewhere += fd != first;
        close(fd);
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) < 300000000L);
    printf("lowfd %lu opens, %lu elsewhere\n", opens, elsewhere);
    return 0;
}

/* 300k malloc/free pairs of one size after a warm-up, 10k at a time 2 ms apart (so that zw's
 * bookkeeping thread runs even on a loaded machine): the page faults of this thread meanwhile. */
static int
run_ringfaults(void)
{
    for (int i = 0; i < 1000; i++) {
        void *volatile p = malloc(32);
        free(p);
    }
    struct rusage before, after;
    getrusage(RUSAGE_THREAD, &before);
    for (int round = 0; round < 30; round++) {
        for (int i = 0; i < 10000; i++) {
            void *volatile p = malloc(32);
            free(p);
        }
        nanosleep(&(struct timespec){0, 2000000}, NULL);
    }
    getrusage(RUSAGE_THREAD, &after);
    printf("ringfaults %ld\n", after.ru_minflt - before.ru_minflt);
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "threads") == 0)
        return run_waves();
    if (argc > 1 && strcmp(argv[1], "lowfd") == 0)
        return run_lowfd();
    if (argc > 1 && strcmp(argv[1], "ringfaults") == 0)
        return run_ringfaults();
    int low_at_start = low_files();
    int i = 1;
    int forking = i < argc && strcmp(argv[i], "fork") == 0;
    i += forking;
    int closing = i < argc && strcmp(argv[i], "close") == 0;
    i += closing;
    const char *lib = i < argc ? argv[i] : NULL;
    pid_t child = -1;
    unsigned flip = 0;
    for (unsigned r = 0; r < ROUNDS; r++) {
        if (forking && r == 2) {
            child = fork();
            if (child < 0)
                return 1;
            if (child == 0)
                flip = 0x555; /* the child's own paths from here on */
        }
        if (lib != NULL && r == 4) {
            void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
            void *(*mid)(void) = h != NULL ? (void *(*)(void))dlsym(h, "lib_mid") : NULL;
            if (mid == NULL) {
                fprintf(stderr, "%s\n", dlerror());
                return 1;
            }
            for (int k = 0; k < 100; k++)
                kept[nkept++] = mid();
            if (closing && dlclose(h) != 0)
                return 1;
        }
        round_of(r, flip);
    }
    if (child > 0) {
        int st;
        if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            return 1;
    }
    printf("sites %zu kept, low files %d -> %d\n", nkept, low_at_start, low_files());
    return 0;
}
