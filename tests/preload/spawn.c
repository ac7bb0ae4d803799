/* tests/preload/spawn.c - starts children every way a program can: system(), popen() (read
 * and write), posix_spawn(), posix_spawnp(), and fork then execve() with an environment of its
 * own, or execl(). glibc's system(), popen() and posix_spawn() exec through internal calls, so
 * zw interposes them to give each child its variables back (the program itself no longer has
 * them). Each child is this program again ("child HOW"), which allocates and exits 0; `zw stat`
 * must list one capture per child (tests/preload/test_preload.sh). Also checked here, with a
 * message and exit 1: pclose's status, popen's "e" (close-on-exec), that a popen child has no
 * descriptor of another popen stream (POSIX), and that execve's child sees exactly the
 * environment it was given. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static char self[PATH_MAX];

static int
fail(const char *what)
{
    fprintf(stderr, "spawn: %s\n", what);
    return 1;
}

/* The child: allocates, then checks what its HOW asks for. */
static int
child(const char *how)
{
    void *p = malloc(100);
    free(p);
    if (strcmp(how, "popen-r") == 0) {
        printf("hello from popen-r\n");
    } else if (strcmp(how, "popen-w") == 0) {
        char line[64];
        if (fgets(line, sizeof(line), stdin) == NULL || strcmp(line, "data\n") != 0)
            return 5;
    } else if (strcmp(how, "execve-env") == 0) {
        /* the environment execve was given, nothing more */
        if (environ[0] == NULL || strcmp(environ[0], "ZWP_ONLY=1") != 0 || environ[1] != NULL)
            return 6;
    } else if (strcmp(how, "fds") == 0) {
        /* the files this process has open, but 0-2 (inode numbers): a popen child must have
         * none of the other popen streams' pipes */
        struct stat st;
        for (int fd = 3; fd < 1024; fd++)
            if (fstat(fd, &st) == 0)
                printf("%lu\n", (unsigned long)st.st_ino);
    }
    return 0;
}

static int
wait_ok(pid_t pid)
{
    int status;
    return waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int
main(int argc, char **argv)
{
    if (argc > 2 && strcmp(argv[1], "child") == 0)
        return child(argv[2]);
    ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (len <= 0)
        return fail("readlink /proc/self/exe");
    self[len] = '\0';
    char cmd[PATH_MAX + 64];

    /* system(): a shell, then this program */
    snprintf(cmd, sizeof(cmd), "'%s' child system", self);
    if (system(cmd) != 0)
        return fail("system");
    if (system(NULL) == 0)
        return fail("system(NULL) finds no shell");
    int st = system("exit 3");
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 3)
        return fail("system(\"exit 3\") status");

    /* popen() to read */
    snprintf(cmd, sizeof(cmd), "'%s' child popen-r", self);
    FILE *r = popen(cmd, "re");
    if (r == NULL)
        return fail("popen re");
    if (!(fcntl(fileno(r), F_GETFD) & FD_CLOEXEC))
        return fail("popen re: not close-on-exec");
    char line[64];
    if (fgets(line, sizeof(line), r) == NULL || strcmp(line, "hello from popen-r\n") != 0)
        return fail("popen r: the child's line");
    if (pclose(r) != 0)
        return fail("pclose r");

    /* popen() to write; meanwhile another popen child must not hold this stream's descriptor */
    snprintf(cmd, sizeof(cmd), "'%s' child popen-w", self);
    FILE *w = popen(cmd, "w");
    if (w == NULL)
        return fail("popen w");
    if (fcntl(fileno(w), F_GETFD) & FD_CLOEXEC)
        return fail("popen w: close-on-exec without 'e'");
    snprintf(cmd, sizeof(cmd), "'%s' child fds", self);
    FILE *fds = popen(cmd, "r");
    if (fds == NULL)
        return fail("popen fds");
    struct stat wst;
    if (fstat(fileno(w), &wst) != 0)
        return fail("fstat of popen w's pipe");
    while (fgets(line, sizeof(line), fds) != NULL)
        if (strtoul(line, NULL, 10) == (unsigned long)wst.st_ino)
            return fail("a popen child holds another popen stream's pipe");
    if (pclose(fds) != 0)
        return fail("pclose fds");
    fputs("data\n", w);
    if (pclose(w) != 0)
        return fail("pclose w: the child did not read its data");

    /* pclose gives the shell's status */
    FILE *e = popen("exit 7", "r");
    if (e == NULL)
        return fail("popen exit 7");
    st = pclose(e);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 7)
        return fail("pclose status of 'exit 7'");
    errno = 0;
    if (popen("true", "rw") != NULL || errno != EINVAL)
        return fail("popen mode rw is not EINVAL");

    /* posix_spawn, posix_spawnp */
    pid_t pid;
    char *spawn_argv[] = {self, "child", "posix_spawn", NULL};
    if (posix_spawn(&pid, self, NULL, NULL, spawn_argv, environ) != 0 || !wait_ok(pid))
        return fail("posix_spawn");
    char *true_argv[] = {"true", NULL};
    if (posix_spawnp(&pid, "true", NULL, NULL, true_argv, environ) != 0 || !wait_ok(pid))
        return fail("posix_spawnp");

    /* fork, then execve with an environment of its own, or execl */
    pid = fork();
    if (pid == 0) {
        char *argv_e[] = {self, "child", "execve-env", NULL};
        char *envp[] = {"ZWP_ONLY=1", NULL};
        execve(self, argv_e, envp);
        _exit(127);
    }
    if (!wait_ok(pid))
        return fail("fork + execve with its own environment");
    pid = fork();
    if (pid == 0) {
        execl(self, self, "child", "execl", (char *)NULL);
        _exit(127);
    }
    if (!wait_ok(pid))
        return fail("fork + execl");
    printf("spawned\n");
    return 0;
}
