/* tests/preload/exec.c - keeps 1000 bytes, then executes itself with "child", which keeps 3000.
 * With "vfork": a vfork child executes "child" first (it must not end the parent's capture),
 * then the parent keeps 500 more bytes before its own exec.
 * With "vforks N": N vfork children execute "quiet" (execl), which does nothing; prints how many
 * bytes the parent's address space and its heap (in use, glibc's count) grew by meanwhile (an
 * exec in a vfork child must leave nothing mapped or allocated in its parent), then exits. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* The size of this process's address space, in bytes. */
static long
vm_bytes(void)
{
    long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f != NULL) {
        if (fscanf(f, "%ld", &pages) != 1)
            pages = 0;
        fclose(f);
    }
    return pages * sysconf(_SC_PAGESIZE);
}

int
main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "quiet") == 0)
        return 0;
    if (argc > 2 && strcmp(argv[1], "vforks") == 0) {
        int n = atoi(argv[2]);
        long before = 0, vm = 0;
        size_t heap_before = 0, heap = 0;
        for (int i = -2; i < n; i++) {
            if (i == 0) /* after two, and a pause: the tracer's thread has its malloc arena */
                usleep(200000);
            pid_t pid = vfork();
            if (pid == 0) {
                execl("/proc/self/exe", argv[0], "quiet", (char *)NULL);
                _exit(127);
            }
            int status;
            if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return 1;
            /* read here after every child, so that what reading costs once (its buffer, the
             * unwinder's state for this thread) is paid before the first figure kept */
            vm = vm_bytes();
            heap = mallinfo2().uordblks;
            if (i == 0) {
                before = vm;
                heap_before = heap;
            }
        }
        printf("grew %ld\nheap grew %ld\n", vm - before, (long)(heap - heap_before));
        return 0;
    }
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
