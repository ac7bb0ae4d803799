/* tests/preload/exec.c - keeps 1000 bytes, then executes itself with "child", which keeps 3000.
 * With "vfork": a vfork child executes "child" first (it must not end the parent's capture),
 * then the parent keeps 500 more bytes before its own exec. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
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
    if (argc > 1 && strcmp(argv[1], "vfork") == 0) {
        pid_t pid = vfork();
        if (pid == 0) {
            execl("/proc/self/exe", argv[0], "child", (char *)NULL);
            _exit(127);
        }
        int status;
        waitpid(pid, &status, 0);
        void *q = malloc(500);
        (void)q;
    }
    execl("/proc/self/exe", argv[0], "child", (char *)NULL);
    perror("exec");
    return 1;
}
