/* tests/preload/exec.c - keeps 1000 bytes, then executes itself with "child", which keeps 3000. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "child") == 0) {
        void *p = malloc(3000);
        (void)p;
        return 0;
    }
    void *p = malloc(1000);
    (void)p;
    execl("/proc/self/exe", argv[0], "child", (char *)NULL);
    perror("exec");
    return 1;
}
