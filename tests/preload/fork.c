/* tests/preload/fork.c - a parent keeps 1000 bytes, its forked child keeps 2000 and exits. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int
main(void)
{
    void *parent_block = malloc(1000);
    pid_t pid = fork();
    if (pid == 0) {
        void *child_block = malloc(2000);
        (void)child_block;
        exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    (void)parent_block;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
