/* preload/spawn.c - the children glibc starts without going through the exec functions: it
 * spawns them with internal calls no preloaded library can interpose, so they would miss zw's
 * variables, which env.c took out of the program's environment.
 *
 *   posix_spawn, posix_spawnp: the real ones, given the child's environment of env.c
 *   system:                    glibc's, on posix_spawn: /bin/sh -c LINE; SIGINT and SIGQUIT
 *                              ignored and SIGCHLD blocked while it waits (the first of
 *                              concurrent calls sets them, the last restores them)
 *   popen, pclose:             glibc's, on posix_spawn: a pipe (O_CLOEXEC), the child's end on
 *                              its stdin or stdout, the other popen streams closed in the child;
 *                              a table of zw's (mapped) maps each stream to its child's pid
 *
 * They allocate through the program's malloc what glibc's do (popen: the stream, and the spawn's
 * file actions; system: nothing), so the program's counts do not change. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "preload_internal.h"

extern char **environ;

#define SHELL_PATH "/bin/sh"
#define SHELL_NAME "sh"

/* ---- posix_spawn ---- */

typedef int (*spawn_fn)(pid_t *, const char *, const void *, const void *, char *const[],
                        char *const[]);

/* noinline: system()'s cancellation handler is a setjmp, which must not see these locals */
static __attribute__((noinline)) int
spawn_with(spawn_fn real, pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
           const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    if (real == NULL)
        return ENOSYS;
    _Alignas(char *) char small[ZWI_CHILD_ENV_BUF];
    zwi_child_env ce;
    size_t need = zwi_preload_child_env_plan(envp, &ce);
    char *const *env = zwi_preload_child_env_build(envp, &ce, need <= sizeof(small) ? small : NULL);
    int rc = real(pid, path, fa, attr, argv, env);
    zwi_preload_child_env_release(&ce);
    return rc;
}

EXPORT int
posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
            const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    zwi_preload_resolve();
    return spawn_with(G.real.posix_spawn, pid, path, fa, attr, argv, envp);
}

EXPORT int
posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
             const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    zwi_preload_resolve();
    return spawn_with(G.real.posix_spawnp, pid, file, fa, attr, argv, envp);
}

/* ---- system ---- */

/* SIGINT's and SIGQUIT's actions before the first of the system() calls now running ignored
 * them; `nsystem` counts those calls. */
static struct {
    pthread_mutex_t lock;
    int nsystem;
    struct sigaction intr, quit;
} S = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The last of the concurrent calls gives SIGINT and SIGQUIT their actions back. */
static void
system_leave(void)
{
    pthread_mutex_lock(&S.lock);
    if (--S.nsystem == 0) {
        sigaction(SIGINT, &S.intr, NULL);
        sigaction(SIGQUIT, &S.quit, NULL);
    }
    pthread_mutex_unlock(&S.lock);
}

typedef struct system_wait {
    pid_t pid;
    sigset_t *omask;
} system_wait;

/* The thread was cancelled while it waited: the child goes too, and the signals are restored. */
static void
system_cancelled(void *arg)
{
    system_wait *w = arg;
    kill(w->pid, SIGKILL);
    while (waitpid(w->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    system_leave();
    sigprocmask(SIG_SETMASK, w->omask, NULL);
}

static int
do_system(const char *line)
{
    zwi_preload_resolve();
    struct sigaction ign = {.sa_handler = SIG_IGN};
    sigemptyset(&ign.sa_mask);
    pthread_mutex_lock(&S.lock);
    if (S.nsystem++ == 0) {
        sigaction(SIGINT, &ign, &S.intr);
        sigaction(SIGQUIT, &ign, &S.quit);
    }
    pthread_mutex_unlock(&S.lock);
    sigset_t block, omask, reset;
    sigemptyset(&block);
    sigaddset(&block, SIGCHLD);
    sigprocmask(SIG_BLOCK, &block, &omask);
    /* the child gets the caller's mask, and SIGINT and SIGQUIT back to default unless ignored */
    sigemptyset(&reset);
    if (S.intr.sa_handler != SIG_IGN)
        sigaddset(&reset, SIGINT);
    if (S.quit.sa_handler != SIG_IGN)
        sigaddset(&reset, SIGQUIT);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setsigmask(&attr, &omask);
    posix_spawnattr_setsigdefault(&attr, &reset);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    pid_t pid;
    char *argv[] = {SHELL_NAME, "-c", (char *)line, NULL};
    int ret = spawn_with(G.real.posix_spawn, &pid, SHELL_PATH, NULL, &attr, argv, environ);
    posix_spawnattr_destroy(&attr);
    int status;
    if (ret == 0) {
        system_wait w = {pid, &omask};
        pthread_cleanup_push(system_cancelled, &w);
        pid_t got;
        while ((got = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
            ;
        if (got != pid)
            status = -1;
        pthread_cleanup_pop(0);
    } else {
        status = 127 << 8; /* as if the shell had run and exited with 127 (POSIX) */
    }
    system_leave();
    sigprocmask(SIG_SETMASK, &omask, NULL);
    if (ret != 0)
        errno = ret;
    return status;
}

EXPORT int
system(const char *line)
{
    if (line == NULL) /* is there a shell? glibc asks one */
        return do_system("exit 0") == 0;
    return do_system(line);
}

/* ---- popen, pclose ---- */

typedef struct popen_entry {
    FILE *f;
    int fd; /* f's descriptor when popen made it: never read from f, which a program that closed
             * it with fclose has freed */
    pid_t pid;
} popen_entry;

/* The streams popen() made and pclose() has not closed: v[0, n) of cap, mapped. */
static struct {
    pthread_mutex_t lock;
    popen_entry *v;
    size_t n, cap;
} P = {.lock = PTHREAD_MUTEX_INITIALIZER};

void
zwi_preload_popen_lock(void)
{
    pthread_mutex_lock(&P.lock);
}

void
zwi_preload_popen_unlock(void)
{
    pthread_mutex_unlock(&P.lock);
}

/* Room for one more entry (grown by the system call, never by malloc). */
static bool
popen_reserve_locked(void)
{
    if (P.n < P.cap)
        return true;
    size_t cap = P.cap ? 2 * P.cap : 256;
    void *p = (void *)syscall(SYS_mmap, NULL, cap * sizeof(popen_entry), PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return false;
    if (P.n > 0)
        memcpy(p, P.v, P.n * sizeof(popen_entry));
    if (P.v != NULL)
        syscall(SYS_munmap, P.v, P.cap * sizeof(popen_entry));
    P.v = p;
    P.cap = cap;
    return true;
}

/* Starts the shell for `command` with `fa`, the other popen streams closed in it (their
 * descriptors are closed in the child, unless one is `child_end`, which dup2 replaced). */
static int
spawn_shell_locked(pid_t *pid, posix_spawn_file_actions_t *fa, const char *command, int child_end)
{
    for (size_t i = 0; i < P.n; i++) {
        int fd = P.v[i].fd;
        if (fd != child_end) {
            int rc = posix_spawn_file_actions_addclose(fa, fd);
            if (rc != 0)
                return rc;
        }
    }
    char *argv[] = {SHELL_NAME, "-c", (char *)command, NULL};
    return spawn_with(G.real.posix_spawn, pid, SHELL_PATH, fa, NULL, argv, environ);
}

EXPORT FILE *
popen(const char *command, const char *mode)
{
    bool do_read = false, do_write = false, do_cloexec = false;
    for (const char *m = mode; *m != '\0'; m++) {
        if (*m == 'r')
            do_read = true;
        else if (*m == 'w')
            do_write = true;
        else if (*m == 'e')
            do_cloexec = true;
        else
            goto einval;
    }
    if (do_read == do_write)
        goto einval;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return NULL;
    int parent_end = do_read ? 0 : 1, child_end = do_read ? 1 : 0;
    FILE *f = fdopen(fds[parent_end], do_read ? "r" : "w");
    if (f == NULL) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        errno = e;
        return NULL;
    }
    /* the child's end already is the descriptor it becomes: moved, else dup2 would not clear
     * its close-on-exec flag */
    int err = 0;
    if (fds[child_end] == child_end) {
        int moved = fcntl(child_end, F_DUPFD_CLOEXEC, 0);
        if (moved < 0) {
            err = errno;
            goto out_close;
        }
        close(fds[child_end]);
        fds[child_end] = moved;
    }
    zwi_preload_resolve();
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    pid_t pid = 0;
    err = posix_spawn_file_actions_adddup2(&fa, fds[child_end], child_end);
    pthread_mutex_lock(&P.lock);
    if (err == 0 && !popen_reserve_locked())
        err = ENOMEM;
    if (err == 0)
        err = spawn_shell_locked(&pid, &fa, command, child_end);
    if (err == 0) {
        for (size_t i = 0; i < P.n; i++)
            if (P.v[i].f == f) /* a stream closed with fclose, whose FILE was reused */
                P.v[i] = P.v[--P.n];
        P.v[P.n++] = (popen_entry){f, fds[parent_end], pid};
    }
    pthread_mutex_unlock(&P.lock);
    posix_spawn_file_actions_destroy(&fa);
    if (err != 0)
        goto out_close;
    close(fds[child_end]);
    if (!do_cloexec)
        fcntl(fds[parent_end], F_SETFD, 0);
    return f;
out_close:
    fclose(f); /* closes fds[parent_end] */
    close(fds[child_end]);
    errno = err;
    return NULL;
einval:
    errno = EINVAL;
    return NULL;
}

EXPORT int
pclose(FILE *f)
{
    pid_t pid = -1;
    pthread_mutex_lock(&P.lock);
    for (size_t i = P.n; i-- > 0;) {
        if (P.v[i].f == f) {
            pid = P.v[i].pid;
            P.v[i] = P.v[--P.n];
            break;
        }
    }
    pthread_mutex_unlock(&P.lock);
    int rc = fclose(f);
    if (pid < 0)
        return rc; /* not from popen: closed, as glibc's pclose does */
    int status;
    pid_t got;
    while ((got = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
        ;
    return got == pid ? status : -1;
}
