/* tests/preload/die.c - ends in one of the ways a traced program must end exactly as it would
 * untraced (tests/preload/test_never_hang.sh). Each way keeps 5000 bytes live first.
 *   doublefree   glibc's own double-free abort, raised inside free() holding its arena's lock
 *   alarmabort   abort() from a SIGALRM handler that lands while the program is in malloc
 *   corrupt      SIGSEGV inside malloc: a freed block's link is overwritten, and malloc follows it
 *   signal N     dies of signal N, left at its default action (SIGPIPE, SIGUSR1, ...)
 *   count N FILE N allocations of 64 bytes kept, its pid written to FILE, then waits to be killed
 *   exit N       N allocations of 100 bytes kept, exit(42)
 *   fill N       allocations of 64 bytes kept until N or malloc fails; prints how many, exit 0 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static void
on_alarm(int sig)
{
    (void)sig;
    abort();
}

int
main(int argc, char **argv)
{
    void *keep = malloc(5000);
    memset(keep, 1, 5000);
    const char *how = argc > 1 ? argv[1] : "doublefree";
    if (strcmp(how, "doublefree") == 0) {
        char *a = malloc(5000); /* past tcache and fastbins: freed under the arena's lock */
        char *b = malloc(5000); /* keeps `a` from merging into the top chunk */
        char *volatile again = a; /* the same pointer, which the compiler cannot see */
        free(a);
        free(again);
        return b != NULL; /* not reached */
    }
    if (strcmp(how, "alarmabort") == 0) {
        struct sigaction sa = {.sa_handler = on_alarm};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGALRM, &sa, NULL);
        struct itimerval it = {{0, 0}, {0, 2000 + (getpid() % 7) * 300}};
        setitimer(ITIMER_REAL, &it, NULL);
        void *slots[64] = {0};
        for (unsigned i = 0;; i++) { /* nearly always inside malloc or free when it lands */
            unsigned k = (i * 2654435761u) % 64;
            free(slots[k]);
            slots[k] = malloc(16 + (i % 2000));
        }
    }
    if (strcmp(how, "corrupt") == 0) {
        uintptr_t *a = malloc(64);
        void *b = malloc(64);
        uintptr_t *volatile freed = a; /* written after free: the compiler must not see it */
        free(b);
        free(a); /* the head of its tcache bin, b next */
        /* the tcache link, safe-linked (glibc 2.32+): it now leads to address 0x10 */
        freed[0] = ((uintptr_t)freed >> 12) ^ (uintptr_t)0x10;
        void *x = malloc(64); /* gets `a` back, and 0x10 becomes the next */
        void *y = malloc(64); /* reads 0x10: SIGSEGV inside malloc */
        return x != NULL && y != NULL;
    }
    if (strcmp(how, "signal") == 0 && argc > 2) {
        raise(atoi(argv[2]));
        return 0;
    }
    if (strcmp(how, "count") == 0 && argc > 3) {
        long n = atol(argv[2]);
        for (long i = 0; i < n; i++)
            *(void *volatile *)&keep = malloc(64);
        FILE *f = fopen(argv[3], "w");
        if (f == NULL)
            return 2;
        fprintf(f, "%ld\n", (long)getpid());
        fclose(f);
        for (;;)
            pause();
    }
    if (strcmp(how, "exit") == 0 && argc > 2) {
        long n = atol(argv[2]);
        for (long i = 0; i < n; i++)
            *(void *volatile *)&keep = malloc(100);
        exit(42);
    }
    if (strcmp(how, "fill") == 0 && argc > 2) {
        long n = atol(argv[2]);
        long got = 0;
        while (got < n && (*(void *volatile *)&keep = malloc(64)) != NULL)
            got++;
        /* written without stdio: stdout's buffer would be one allocation more, or none when
         * memory is still short, and the count would depend on which */
        char line[32];
        int len = snprintf(line, sizeof(line), "%ld\n", got + 1); /* and the 5000 bytes */
        return write(1, line, (size_t)len) == len ? 0 : 1;
    }
    fprintf(stderr, "usage: die doublefree|alarmabort|corrupt|signal N|count N FILE|exit N|fill N\n");
    return 2;
}
