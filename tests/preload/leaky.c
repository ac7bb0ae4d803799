/* tests/preload/leaky.c - blocks in each of memcheck's four kinds, by construction, for the leak
 * check's ground truth (tests/preload/test_leaks.sh). Each allocation line carries its expected
 * kind and number of blocks in a comment the test reads ("expect: KIND N"); zw's scan and
 * valgrind's memcheck must both find exactly those.
 *
 *   leaky LIB       run: make the blocks, leave two threads running, exit
 *   leaky check FILE  (linked with zerowaste) print "LINE KIND BLOCKS BYTES" of FILE's leak scan
 *
 * Pointers that must not count are kept complemented (~p): no longer an address. Dead stack
 * below a frame may hold copies of pointers; scrub() clears it before each wait. */
#include <dlfcn.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef LEAKY_CHECK
#include <zerowaste/capture.h>
#endif

typedef struct node {
    struct node *next;
    char payload[24];
} node;

static node *global_list;           /* a list hung from a global: reachable */
static char *global_middle;         /* only a pointer into the middle of its block: possible */
static __thread void *tls_holder;   /* the main thread's TLS: reachable */
static uintptr_t hidden[8];         /* complemented pointers: no root */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int started;
static volatile int in_register; /* the register holder's pointer is in its register */

static __attribute__((noinline)) void
scrub(void)
{
    volatile char junk[32768];
    memset((char *)junk, 0, sizeof(junk));
}

static __attribute__((noinline)) void
make_reachable_list(void)
{
    for (int i = 0; i < 3; i++) {
        node *n = calloc(1, sizeof(node)); /* expect: reachable 3 */
        n->next = global_list;
        global_list = n;
    }
}

static __attribute__((noinline)) void
make_lost_list(void)
{
    node *head = calloc(1, sizeof(node)); /* expect: definite 1 */
    for (int i = 0; i < 4; i++) {
        node *n = calloc(1, sizeof(node)); /* expect: indirect 4 */
        n->next = head->next;
        head->next = n;
    }
    hidden[0] = ~(uintptr_t)head;
    head = NULL; /* the pointer overwritten */
}

static __attribute__((noinline)) void
make_overwritten(void)
{
    char *p = malloc(100); /* expect: definite 1 */
    memset(p, 'x', 100);
    hidden[1] = ~(uintptr_t)p;
    p = NULL;
}

static __attribute__((noinline)) void
make_possible(void)
{
    char *p = calloc(1, 64); /* expect: possible 1 */
    global_middle = p + 40;
}

static __attribute__((noinline)) void
make_tls(void)
{
    tls_holder = calloc(1, 56); /* expect: reachable 1 */
}

static __attribute__((noinline)) int
make_in_library(const char *lib)
{
    void *h = dlopen(lib, RTLD_NOW);
    if (h == NULL) {
        fprintf(stderr, "leaky: %s\n", dlerror());
        return -1;
    }
    void (*keep)(void *) = (void (*)(void *))dlsym(h, "leaky_lib_keep");
    if (keep == NULL)
        return -1;
    keep(calloc(1, 72)); /* expect: reachable 1 */
    return 0;
}

static void
signal_started(void)
{
    pthread_mutex_lock(&lock);
    started++;
    pthread_cond_signal(&cond);
    pthread_mutex_unlock(&lock);
}

/* Holds its block in a local of its stack and sleeps until the process exits. */
static void *
stack_holder(void *arg)
{
    void *volatile mine = calloc(1, 88); /* expect: reachable 1 */
    scrub();
    signal_started();
    for (;;)
        pause();
    return mine == arg ? arg : NULL;
}

/* Holds its block in a register only (its memory copy complemented) and spins until exit. */
static __attribute__((noinline)) void
spin_with(uintptr_t hidden_ptr)
{
    scrub();
    signal_started();
#if defined(__x86_64__)
    /* in_register set once the register holds the pointer: the main thread waits for it, so
     * that no exit (memcheck's, whose threads take turns) finds it still complemented */
    __asm__ volatile("notq %0\nmovl $1, %1\n1: pause\njmp 1b"
                     : "+r"(hidden_ptr), "=m"(in_register));
#else
    in_register = 1;
    for (volatile uintptr_t p = ~hidden_ptr;;)
        (void)p; /* elsewhere the pointer is on the stack: still reachable */
#endif
}

static void *
register_holder(void *arg)
{
    hidden[2] = ~(uintptr_t)calloc(1, 120); /* expect: reachable 1 */
    spin_with(hidden[2]);
    return arg;
}

#ifdef LEAKY_CHECK
/* LINE KIND BLOCKS BYTES for each line of this file in the leak scan of capture `path`. */
static int
check(const char *path)
{
    static const char *const names[] = {"definite", "indirect", "possible", "reachable"};
    zw_error err = {0};
    zw_capture *c = zw_capture_load(path, &err);
    if (c == NULL) {
        fprintf(stderr, "leaky: %s\n", err.msg);
        return 1;
    }
    if (c->leaks.status != ZW_LEAKS_SCANNED) {
        fprintf(stderr, "leaky: not scanned (status %u)\n", c->leaks.status);
        return 1;
    }
    for (unsigned k = 0; k < ZW_LEAK_KINDS; k++) {
        zw_snapshot *s = zw_capture_leaked(c, 1u << k, &err);
        zw_stat_list *l = s != NULL ? zw_snapshot_statistics(s, ZW_GROUP_LINENO, false, &err) : NULL;
        for (size_t i = 0; l != NULL && i < zw_stat_list_len(l); i++) {
            const zw_statistic *st = zw_stat_list_get(l, i);
            const zw_frame *f = zw_traceback_frame(st->traceback, 0);
            if (f != NULL && f->filename != NULL && strstr(f->filename, "leaky.c") != NULL)
                printf("%u %s %zu %zu\n", f->lineno, names[k], st->count, st->size);
        }
        zw_stat_list_free(l);
        zw_snapshot_free(s);
    }
    printf("total");
    for (unsigned k = 0; k < ZW_LEAK_KINDS; k++)
        printf(" %s %" PRIu64 " %" PRIu64, names[k], c->leaks.blocks[k], c->leaks.bytes[k]);
    printf("\n");
    zw_capture_free(c);
    return 0;
}
#endif

int
main(int argc, char **argv)
{
#ifdef LEAKY_CHECK
    if (argc == 3 && strcmp(argv[1], "check") == 0)
        return check(argv[2]);
#endif
    if (argc != 2) {
        fprintf(stderr, "usage: leaky LIBRARY\n");
        return 2;
    }
    printf("leaky: making blocks\n"); /* stdout's buffer: libc's, reachable */
    make_reachable_list();
    make_lost_list();
    make_overwritten();
    make_possible();
    make_tls();
    if (make_in_library(argv[1]) != 0)
        return 1;
    pthread_t a, b;
    if (pthread_create(&a, NULL, stack_holder, NULL) != 0 ||
        pthread_create(&b, NULL, register_holder, NULL) != 0)
        return 1;
    pthread_mutex_lock(&lock);
    while (started < 2)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    while (!in_register)
        sched_yield();
    scrub();
    return 0; /* the threads still run */
}
