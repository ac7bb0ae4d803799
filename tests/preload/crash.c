/* tests/preload/crash.c - keeps 5000 bytes, then dies of SIGSEGV (or abort() or _exit(7), by its
 * argument): the capture must load with those 5000 bytes live. */
#include <signal.h>
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
    if (strcmp(how, "kill") == 0) {
        usleep(100000); /* some samples streamed first */
        raise(SIGKILL);
    }
    volatile int *null = NULL;
    return *null;
}
