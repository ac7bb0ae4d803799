/* tests/preload/crash.c - keeps 5000 bytes, then dies of SIGSEGV (or abort() or _exit(7), by its
 * argument; "mark" raises SIGUSR1 and exits; "wait FILE" writes its pid to FILE and allocates
 * until a signal from outside ends it): the capture must load with those 5000 bytes live. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
    void *p = malloc(5000);
    memset(p, 1, 5000);
    const char *how = argc > 1 ? argv[1] : "segv";
    if (strcmp(how, "abort") == 0)
        abort();
    if (strcmp(how, "_exit") == 0)
        _exit(7);
    if (strcmp(how, "mark") == 0) { /* ZW_MARK_SIGNAL=USR1: the sampler takes a mark */
        raise(SIGUSR1);
        usleep(100000);
        return 0;
    }
    if (strcmp(how, "wait") == 0 && argc > 2) {
        FILE *f = fopen(argv[2], "w");
        if (f == NULL)
            return 2;
        fprintf(f, "%ld\n", (long)getpid());
        fclose(f);
        for (;;) { /* busy in malloc and free when the signal lands, most likely */
            void *q = malloc(100);
            free(q);
        }
    }
    if (strcmp(how, "kill") == 0) {
        usleep(100000); /* some samples streamed first */
        raise(SIGKILL);
    }
    volatile int *null = NULL;
    return *null;
}
