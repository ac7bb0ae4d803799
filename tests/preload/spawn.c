/* tests/preload/spawn.c - starts programs the ways glibc execs without calling the exported exec
 * functions zw interposes: system() and posix_spawnp() exec through glibc's internal __execve.
 * Their processes are traced only because the environment carries LD_PRELOAD and zw's
 * variables (docs/zw.md, Limits): system("ls /") (a shell, then ls) and posix_spawnp("true"). */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

extern char **environ;

int
main(void)
{
    if (system("ls / >/dev/null") != 0)
        return 1;
    pid_t pid;
    char *argv[] = {"true", NULL};
    if (posix_spawnp(&pid, "true", NULL, NULL, argv, environ) != 0)
        return 1;
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return 1;
    printf("spawned\n");
    return 0;
}
