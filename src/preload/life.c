/* preload/life.c - the life cycle of libzwpreload.so: the constructor that starts tracing, and
 * every way a traced image ends, each of which writes the end of its capture once (finish):
 *
 *   start:   read the environment, make the tracer and the file, learn the modules, install the
 *            signal handlers and the fork handlers, start the sampler and the bookkeeping thread
 *            (consumer.c), then let the hooks record
 *   every end first drains the bookkeeping (what the hooks posted, applied), then stops it
 *   exit:    on_exit() and _exit() finish with the status
 *   signals: a fatal one (the program's own fault) finishes in its handler; one from outside
 *            (^C, kill) is finished by the sampler thread, since it may land inside malloc
 *   exec:    the image ends, its capture too; the new image (LD_PRELOAD, put back in its
 *            environment by env.c) writes its own
 *   fork:    a followed child starts a capture of its own, an unfollowed one traces nothing
 *
 * G, the library's one struct of mutable state, is defined here (preload_internal.h).
 * See docs/zw.md#how-it-works. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "preload_internal.h"

#define DEFAULT_NFRAME 16

static void write_end(uint32_t end, int code);

zwi_preload_state zwi_preload_g = {.lock = PTHREAD_MUTEX_INITIALIZER,
                                   .fd = -1,
                                   .wake = {-1, -1},
                                   .statm = -1,
                                   .mmaps.lock = PTHREAD_MUTEX_INITIALIZER,
                                   .unloaded.lock = PTHREAD_MUTEX_INITIALIZER,
                                   .ahead.lock = PTHREAD_MUTEX_INITIALIZER};


/* Signals sent from outside (^C, kill, a closed terminal, timers, user signals: every signal
 * whose default action ends the process and that the program does not raise by a fault): they may
 * land while the thread holds a lock of malloc or of the engine, so the handler does not write: it
 * asks the sampler thread (which never receives them) to, waits for it at most ASYNC_WAIT_MS,
 * writes the capture's last words itself if the sampler could not finish (a lock held by the
 * interrupted thread), then dies of the signal's default action. SIGQUIT is left out (a core dump
 * is asked for: the program's state must stay as it is). */
const int zwi_preload_async_signals[ZWI_PRELOAD_NASYNC] = {
    SIGINT,  SIGTERM, SIGHUP,    SIGALRM, SIGUSR1, SIGUSR2,
    SIGPROF, SIGVTALRM, SIGIO,   SIGPWR,  SIGSTKFLT};
#define ASYNC_WAIT_MS 3000
/* How long a fatal signal's handler waits for the sampler to write the whole end of the capture
 * (live sets symbolised) before it writes the last words itself and dies anyway. */
#define FATAL_WAIT_MS 2000
/* How long a signal's end waits for the bookkeeping thread to apply what was posted while it
 * makes no progress (the signal may have landed between a hook's ticket and its record). */
#define FATAL_DRAIN_MS 200

/* ---- ways out ---- */

void
zwi_preload_finish(uint32_t end, int code)
{
    /* the registers as the program left them, and where its frames end: the leak scan's roots */
    jmp_buf regs;
    setjmp(regs);
    if (G.tracer == NULL || atomic_exchange(&G.finished, true))
        return; /* never started (no memory, or before the constructor), or done */
    G.leak_thread = zwi_leakscan_this_thread((uintptr_t)&regs);
    zwi_trace_guard++;
    if (G.live != NULL) { /* known even if the file cannot take the rest */
        atomic_store(&G.live->end, end);
        atomic_store(&G.live->code, code);
    }
    zwi_preload_stop_sampler(end != ZW_CAPTURE_END_SIGNAL);
    /* what this thread posted applied while the capture is still active (a peak it reached is
     * saved as it would have been inline); then, the hooks stopped, the rest and no consumer:
     * the end is written from the tables as the program left them */
    unsigned drain_ms = end == ZW_CAPTURE_END_SIGNAL ? FATAL_DRAIN_MS : ZWI_DRAIN_MS;
    zwi_preload_drain(drain_ms);
    atomic_store(&G.active, false);
    zwi_preload_stop_consumer(end != ZW_CAPTURE_END_SIGNAL, drain_ms);
    if (end == ZW_CAPTURE_END_SIGNAL) {
        /* the crashing thread may hold the lock: wait a little, then write regardless */
        for (int i = 0; i < 200 && pthread_mutex_trylock(&G.lock) != 0; i++)
            usleep(1000);
    } else {
        pthread_mutex_lock(&G.lock);
    }
    write_end(end, code);
    /* out of memory for the whole end: the totals and the end from the counters, at least */
    zwi_preload_write_last_words(end, code);
    if (G.fd >= 0)
        close(G.fd);
    G.fd = -1;
    pthread_mutex_unlock(&G.lock);
    atomic_store(&G.written, true);
    zwi_trace_guard--;
    __asm__ volatile("" : : "r"(&regs) : "memory"); /* `regs` stays in this frame until here */
}

static void
on_mark_signal(int sig)
{
    atomic_fetch_add(&G.signal_marks, 1); /* the sampler takes it: a handler may not lock */
}

static void
on_exit_hook(int status, void *arg)
{
    zwi_preload_finish(ZW_CAPTURE_END_EXIT, status);
}

/* Signals that end the process by default and are raised by the program's own action: faults,
 * abort, and a write to a closed pipe or past the file-size limit (`prog | head` ends prog with
 * SIGPIPE). They may be raised inside malloc (glibc's double-free abort holds its arena's lock)
 * or on a broken heap: see on_fatal_signal. */
static const int fatal_signals[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL,
                                    SIGPIPE, SIGXFSZ, SIGTRAP, SIGSYS};

/* Dies of `sig`'s default action now (a fault that returns re-runs the instruction and dies). */
static void
die_of(int sig)
{
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
}

/* True in the process the capture is of; false in a vfork child, which shares our memory: it
 * must neither write the parent's capture nor mark it finished. */
static bool
owner(void)
{
    return getpid() == G.pid;
}

/* Asks the sampler thread to write the whole end of the capture for signal `sig` and waits for it
 * at most `ms`; true if it was written. */
static bool
sampler_writes_end(int sig, int ms)
{
    if (!G.sampler_on || pthread_equal(pthread_self(), G.sampler))
        return false;
    atomic_store(&G.async_signal, sig);
    if (G.wake[1] >= 0)
        (void)!write(G.wake[1], "", 1);
    for (int i = 0; i < ms && !atomic_load(&G.written); i++)
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    return atomic_load(&G.written);
}

/* A fatal signal. The handler takes no lock and allocates nothing: when this thread was outside
 * the allocator and zw (the guard down), the sampler writes the whole end (live sets symbolised);
 * otherwise, or if the sampler is not done in FATAL_WAIT_MS, the handler writes the last words
 * (totals and how the process ended, from the counters) with system calls only. A second fatal
 * signal meanwhile (the heap is broken) writes the last words and dies of the first. */
static void
on_fatal_signal(int sig)
{
    int first = 0;
    if (!atomic_compare_exchange_strong(&G.fatal_signal, &first, sig)) {
        if (owner())
            zwi_preload_write_last_words(ZW_CAPTURE_END_SIGNAL, first);
        die_of(first);
        return;
    }
    if (owner() && G.tracer != NULL && !atomic_load(&G.finished)) {
        if (zwi_trace_guard == 0)
            sampler_writes_end(sig, FATAL_WAIT_MS);
        if (!atomic_load(&G.finished)) /* what was posted, applied: the counters are whole */
            zwi_preload_drain(FATAL_DRAIN_MS);
        zwi_preload_write_last_words(ZW_CAPTURE_END_SIGNAL, sig); /* if nobody did */
    }
    die_of(sig);
}

static void
on_async_signal(int sig)
{
    if (zwi_trace_guard > 0 && !atomic_load(&G.finished) && atomic_load(&G.fatal_signal) == 0) {
        /* inside a hook: this thread may hold a lock the writer needs; served by guard_down() */
        atomic_store(&G.deferred_signal, sig);
        return;
    }
    int saved = errno;
    if (owner() && G.tracer != NULL) {
        if (!atomic_load(&G.finished))
            sampler_writes_end(sig, ASYNC_WAIT_MS);
        else /* another thread is writing */
            for (int i = 0; i < ASYNC_WAIT_MS && !atomic_load(&G.written); i++)
                nanosleep(&(struct timespec){0, 1000000}, NULL);
        if (!atomic_load(&G.written)) {
            zwi_preload_drain(FATAL_DRAIN_MS);
            zwi_preload_write_last_words(ZW_CAPTURE_END_SIGNAL, sig);
        }
    }
    errno = saved;
    die_of(sig); /* the default action ends the process */
}

void
zwi_preload_serve_deferred(void)
{
    int sig = atomic_exchange(&G.deferred_signal, 0);
    if (sig != 0)
        on_async_signal(sig);
}

EXPORT void
_exit(int status)
{
    if (zwi_preload_resolve()) {
        if (owner())
            zwi_preload_finish(ZW_CAPTURE_END_UNDERSCORE_EXIT, status);
        G.real.exit_(status);
    }
    __builtin_trap();
}

/* ---- exec: the image ends, its capture too; the new image (LD_PRELOAD) writes its own. If the
 * exec fails, the rest of this process is not traced. glibc's exec functions call each other
 * internally, so each is interposed; the l-forms build an argument vector for the v-forms. ---- */

static void
before_exec(void)
{
    if (owner())
        zwi_preload_finish(ZW_CAPTURE_END_EXEC, 0);
}

/* The exec functions taking an environment, one body: `envp` gets zw's variables (env.c), so
 * that the new image is traced, then the real function runs. */
enum exec_kind { EXEC_VE, EXEC_VPE, EXEC_FD, EXEC_AT };

static int
exec_with(enum exec_kind kind, int fd, const char *path, char *const argv[], char *const envp[],
          int flags)
{
    zwi_preload_resolve();
    /* on the stack if it fits, as it must in a vfork child: memory it mapped would stay mapped in
     * its parent after the exec */
    _Alignas(char *) char small[ZWI_CHILD_ENV_BUF];
    zwi_child_env ce;
    size_t need = zwi_preload_child_env_plan(envp, &ce);
    void *buf = NULL;
    if (need <= sizeof(small))
        buf = small;
    else if (need <= ZWI_CHILD_ENV_VFORK_MAX && zwi_preload_in_vfork_child())
        buf = __builtin_alloca(need);
    char *const *env = zwi_preload_child_env_build(envp, &ce, buf);
    int rc = -1;
    before_exec();
    switch (kind) {
    case EXEC_VE:
        rc = G.real.execve(path, argv, env);
        break;
    case EXEC_VPE:
        if (G.real.execvpe != NULL)
            rc = G.real.execvpe(path, argv, env);
        else
            errno = ENOSYS;
        break;
    case EXEC_FD:
        if (G.real.fexecve != NULL)
            rc = G.real.fexecve(fd, argv, env);
        else
            errno = ENOSYS;
        break;
    case EXEC_AT:
        if (G.real.execveat != NULL)
            rc = G.real.execveat(fd, path, argv, env, flags);
        else
            errno = ENOSYS;
        break;
    }
    int e = errno;
    zwi_preload_child_env_release(&ce);
    errno = e;
    return rc;
}

EXPORT int
execve(const char *path, char *const argv[], char *const envp[])
{
    return exec_with(EXEC_VE, -1, path, argv, envp, 0);
}

EXPORT int
execv(const char *path, char *const argv[])
{
    return exec_with(EXEC_VE, -1, path, argv, environ, 0);
}

EXPORT int
execvpe(const char *file, char *const argv[], char *const envp[])
{
    return exec_with(EXEC_VPE, -1, file, argv, envp, 0);
}

EXPORT int
execvp(const char *file, char *const argv[])
{
    return exec_with(EXEC_VPE, -1, file, argv, environ, 0);
}

EXPORT int
fexecve(int fd, char *const argv[], char *const envp[])
{
    return exec_with(EXEC_FD, fd, NULL, argv, envp, 0);
}

EXPORT int
execveat(int dirfd, const char *path, char *const argv[], char *const envp[], int flags)
{
    return exec_with(EXEC_AT, dirfd, path, argv, envp, flags);
}

#define MAX_EXEC_ARGS 65536 /* execl's arguments we forward; more gets E2BIG */

/* How many arguments execl was given: arg0 and the variadic ones up to the NULL (1 if arg0 is
 * NULL); MAX_EXEC_ARGS if there are that many or more. */
static size_t
count_args(const char *arg0, va_list ap)
{
    va_list count;
    va_copy(count, ap);
    size_t n = 1;
    while (arg0 != NULL && va_arg(count, char *) != NULL && n < MAX_EXEC_ARGS)
        n++;
    va_end(count);
    return n;
}

/* Fills argv[0, n] (n from count_args) with execl's arguments and the NULL; returns execle's
 * environment when `with_env`. */
static char **
fill_args(char **argv, size_t n, const char *arg0, va_list ap, bool with_env)
{
    argv[0] = (char *)arg0;
    for (size_t i = 1; arg0 != NULL && i <= n; i++)
        argv[i] = va_arg(ap, char *); /* argv[n] is the NULL */
    argv[arg0 == NULL ? 0 : n] = NULL;
    return with_env ? va_arg(ap, char **) : NULL;
}

/* The l-forms build the argument vector on the stack, as glibc's do: in a vfork child, a block
 * of malloc would come from the parent's heap (and stay there after the exec). */
#define EXEC_L(kind, path, arg0, with_env)                                                        \
    do {                                                                                          \
        va_list ap;                                                                               \
        va_start(ap, arg0);                                                                       \
        size_t n = count_args(arg0, ap);                                                          \
        va_end(ap);                                                                               \
        if (n == MAX_EXEC_ARGS) {                                                                 \
            errno = E2BIG;                                                                        \
            return -1;                                                                            \
        }                                                                                         \
        char **argv = __builtin_alloca((n + 1) * sizeof(char *));                                 \
        va_start(ap, arg0);                                                                       \
        char **envp = fill_args(argv, n, arg0, ap, with_env);                                     \
        va_end(ap);                                                                               \
        return exec_with(kind, -1, path, argv, with_env ? envp : environ, 0);                     \
    } while (0)

EXPORT int
execl(const char *path, const char *arg0, ...)
{
    EXEC_L(EXEC_VE, path, arg0, false);
}

EXPORT int
execle(const char *path, const char *arg0, ...)
{
    EXEC_L(EXEC_VE, path, arg0, true);
}

EXPORT int
execlp(const char *file, const char *arg0, ...)
{
    EXEC_L(EXEC_VPE, file, arg0, false);
}

/* ---- fork ---- */

static void
fork_prepare(void)
{
    zwi_trace_guard++;
    zwi_preload_popen_lock(); /* before G.lock: popen holds it while it allocates */
    pthread_mutex_lock(&G.lock);
    zwi_preload_mmap_lock();
    pthread_mutex_lock(&G.unloaded.lock); /* a dlclose hook's append */
    pthread_mutex_lock(&G.ahead.lock);    /* the sampler's conversions (ahead.c), after G.lock */
    /* after the locks a producer may hold while it waits for room in the ring (popen's), before
     * the tracer's, which the consumer takes: everything posted applied, the consumer held
     * between two records */
    zwi_preload_consumer_fork_prepare();
    zwi_tracer_lock_all(G.tracer);
}

static void
fork_parent(void)
{
    zwi_tracer_unlock_all(G.tracer);
    zwi_preload_consumer_fork_parent();
    pthread_mutex_unlock(&G.ahead.lock);
    pthread_mutex_unlock(&G.unloaded.lock);
    zwi_preload_mmap_unlock();
    pthread_mutex_unlock(&G.lock);
    zwi_preload_popen_unlock();
    zwi_trace_guard--;
}

/* Leaves the parent's LIVE section (shared with it: the child must never count there). */
static void
drop_parent_live(void)
{
    if (G.live_map != NULL)
        munmap(G.live_map, G.live_len);
    G.live_map = NULL;
    G.live = NULL;
    G.slots = NULL;
    G.shared_slot = NULL;
    zwi_preload_forget_stats();
}

/* The child keeps the parent's live blocks (they are live in it too), starts its counters, marks
 * and peak afresh, and writes a capture of its own; or, unfollowed, traces nothing. */
static void
fork_child(void)
{
    zwi_tracer_unlock_all(G.tracer);
    zwi_preload_ahead_fork_child();
    pthread_mutex_unlock(&G.ahead.lock);
    pthread_mutex_unlock(&G.unloaded.lock);
    zwi_preload_mmap_unlock();
    zwi_preload_popen_unlock();
    zwi_preload_env_forked();
    G.sampler_on = false; /* threads do not survive fork */
    if (atomic_load(&G.finished) || !G.follow_fork) {
        atomic_store(&G.active, false);
        atomic_store(&G.finished, true);
        zwi_preload_consumer_fork_child(); /* none: nothing is traced */
        drop_parent_live();
        if (G.fd >= 0)
            close(G.fd);
        G.fd = -1;
        pthread_mutex_unlock(&G.lock);
        zwi_trace_guard--;
        return;
    }
    tstats late = {0}; /* what the records applied now count, the parent's */
    zwi_preload_consumer_fork_catch_up(&late);
    totals parent = zwi_preload_sum_stats();
    zwi_preload_add_stats(&parent, &late);
    uint64_t base_bytes = G.heap_base_bytes + parent.bytes - parent.freed_bytes;
    uint64_t base_blocks = G.heap_base_blocks + parent.allocs - parent.frees;
    drop_parent_live();
    /* the sites' own counts start afresh; the parent's live blocks stay live (freed < 0), and
     * the first step of the child states them */
    for (size_t i = 1; G.sites != NULL && i <= atomic_load(&G.site_max) && i < G.site_refs; i++) {
        site *x = &G.sites[i];
        uint64_t live = atomic_load(&x->count) - atomic_load(&x->freed);
        uint64_t live_bytes = atomic_load(&x->bytes) - atomic_load(&x->freed_bytes);
        *x = (site){.freed = -live, .freed_bytes = -live_bytes, .domain = atomic_load(&x->domain)};
        G.shown[i] = (site_shown){0};
        atomic_store(&G.dirty[i], live != 0 || live_bytes != 0);
        if (live != 0 || live_bytes != 0)
            atomic_store(&G.summary[i >> DIRTY_SHIFT], 1);
    }
    G.steps.len = 0;
    G.nsteps = 0;
    G.steps_broken = false;
    G.marks = NULL; /* the parent's: its capture has them */
    G.nmark_sets = 0;
    G.peak.n = 0;
    G.peak.bytes = 0;
    G.peak.time_ns = 0;
    atomic_store(&G.peak_next, 0);
    zwi_tracer_reset_peak(G.tracer);
    G.npending = 0;
    G.has_held = false;
    G.any_written = false;
    G.flushed_ns = 0;
    G.start_ns = zwi_preload_clock_ns(CLOCK_MONOTONIC);
    G.start_real = zwi_preload_clock_ns(CLOCK_REALTIME);
    G.pid = getpid();
    if (G.fd >= 0)
        close(G.fd);
    G.fd = -1;
    atomic_store(&G.file_len, 0);
    atomic_store(&G.end_claimed, false);
    atomic_store(&G.in_write, false);
    atomic_store(&G.peak_time_hint, 0);
    G.write_errno = 0;
    zwi_preload_open_output();
    zwi_preload_write_start_locked();
    zwi_preload_map_live();
    zwi_preload_mmap_restart(); /* the inherited mappings are the child's */
    pthread_mutex_unlock(&G.lock);
    G.heap_base_bytes = base_bytes; /* the parent's live blocks stay live in the child */
    G.heap_base_blocks = base_blocks;
    zwi_preload_sampler_fds();
    zwi_preload_consumer_fork_child(); /* a consumer of its own, before the sampler reads G.ring */
    zwi_preload_start_sampler();
    zwi_trace_guard--;
}

/* ---- start ---- */

static unsigned
env_uint(const char *name, unsigned def, unsigned lo, unsigned hi)
{
    const char *s = zwi_preload_env(name);
    if (s == NULL || *s == '\0')
        return def;
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (*end != '\0' || v < lo || v > hi) {
        char msg[256];
        int n = snprintf(msg, sizeof(msg),
                         "zw: preload: warning: %s='%s' is not in [%u, %u], using %u\n", name, s,
                         lo, hi, def);
        (void)!write(2, msg, (size_t)n);
        return def;
    }
    return (unsigned)v;
}

static void
read_cmdline(void)
{
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, G.cmdline, sizeof(G.cmdline) - 1);
    close(fd);
    if (n <= 0)
        return;
    G.cmdline_len = (size_t)n;
    if (G.cmdline[n - 1] != '\0') /* cut: end the last argument */
        G.cmdline[G.cmdline_len++] = '\0';
}

static void
install_signals(void)
{
    for (size_t i = 0; i < sizeof(fatal_signals) / sizeof(fatal_signals[0]); i++) {
        struct sigaction old;
        if (sigaction(fatal_signals[i], NULL, &old) != 0 || old.sa_handler != SIG_DFL)
            continue; /* the program's own handler stays */
        struct sigaction sa = {.sa_handler = on_fatal_signal, .sa_flags = SA_RESETHAND};
        sigemptyset(&sa.sa_mask);
        sigaction(fatal_signals[i], &sa, NULL);
    }
    for (size_t i = 0; i < ZWI_PRELOAD_NASYNC; i++) {
        struct sigaction old;
        if (sigaction(zwi_preload_async_signals[i], NULL, &old) != 0 || old.sa_handler != SIG_DFL)
            continue; /* the program's own handler, or ignored (nohup): left alone */
        struct sigaction sa = {.sa_handler = on_async_signal};
        sigemptyset(&sa.sa_mask);
        sigaction(zwi_preload_async_signals[i], &sa, NULL);
    }
    const char *ms = zwi_preload_env("ZW_MARK_SIGNAL");
    if (ms != NULL && *ms != '\0') {
        int sig = 0;
        if (strcmp(ms, "USR1") == 0 || strcmp(ms, "SIGUSR1") == 0)
            sig = SIGUSR1;
        else if (strcmp(ms, "USR2") == 0 || strcmp(ms, "SIGUSR2") == 0)
            sig = SIGUSR2;
        else
            sig = atoi(ms);
        if (sig > 0 && sig < NSIG) {
            struct sigaction sa = {.sa_handler = on_mark_signal, .sa_flags = SA_RESTART};
            sigemptyset(&sa.sa_mask);
            if (sigaction(sig, &sa, NULL) == 0)
                G.mark_signal = sig;
        }
    }
}

/* Refs that get per-site counters: SITE_REFS_MAX (4.3 GB of tables, reserved, resident where
 * used), or what 1/8 of the address space limit holds (ulimit -v), whole summary blocks. */
static size_t
site_refs_for_limit(void)
{
    const size_t per_ref = sizeof(site) + sizeof(site_shown) + 1;
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
        rl.rlim_cur / 8 / per_ref >= SITE_REFS_MAX)
        return SITE_REFS_MAX;
    size_t n = (size_t)(rl.rlim_cur / 8 / per_ref) & ~(((size_t)1 << DIRTY_SHIFT) - 1);
    return n < ((size_t)1 << DIRTY_SHIFT) ? (size_t)1 << DIRTY_SHIFT : n;
}

/* The end is written on a stack of its own, mapped at start: the exit's symboliser (libdw's line
 * reader alone takes a ~150 KiB alloca) must not depend on how much stack the thread that ends
 * the program has left: under a small stack limit (ulimit -s 64) or an address space limit
 * (ulimit -v) the program has used up by its exit, the process died of SIGSEGV in the middle of
 * writing its capture. Mapped now, while there is room, without committing memory (untouched
 * pages are none); a smaller one under an address space limit, none if even that fails (then the
 * end is written where the program ends, as before). Kept to the end: a vfork child shares it
 * with its parent.
 *
 * A thread of its own, on a stack of that size, writes the end while the thread that ends the
 * program waits for it: the end's blocks (libdw's, zstd's, the symboliser's) then come from
 * another arena of glibc's malloc than that thread's. A program that frees its data before it
 * exits (perl frees its hashes) leaves the thread's arena with every freed chunk in its fast
 * bins, and the first large block asked of that arena merges them all: perl's 300k-entry hash
 * made 100-140 ms of malloc_consolidate in a 150 ms end, work the program itself never does. The
 * end needs the dynamic loader's lock (dladdr, dlsym), which the ending thread holds when it
 * ends inside a library's constructor (exit() during dlopen): the new thread takes it first, and
 * if that takes longer than END_PROBE_MS the ending thread gives the new one up and writes the
 * end itself. So it does where no thread can be made (an address space or thread limit), and for
 * a fatal signal's end (in a handler): on the stack mapped at start, switched to
 * (swapcontext). */
#define END_PROBE_MS 200

static struct {
    void *base;
    size_t size;
    ucontext_t run, back;
    uint32_t end;
    int code;
} end_stack;

static void
map_end_stack(void)
{
    static const size_t sizes[] = {(size_t)4 << 20, (size_t)1 << 20};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        /* the system call: the preload library's mmap traces the program's mappings */
        void *m = (void *)syscall(SYS_mmap, NULL, sizes[i], PROT_READ | PROT_WRITE,
                                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
        if (m != MAP_FAILED) {
            end_stack.base = m;
            end_stack.size = sizes[i];
            return;
        }
    }
}

static void
write_end_there(void)
{
    zwi_preload_write_end_locked(end_stack.end, end_stack.code);
}

/* The end thread's state: END_PROBING until it has taken the loader's lock; then END_WRITING
 * if it set it first (it writes the end), END_GIVEN_UP if the ending thread did (it writes the
 * end itself, and the new thread only returns). A futex word: the ending thread waits on it. */
enum { END_PROBING, END_WRITING, END_GIVEN_UP };
static _Atomic uint32_t end_state;

static void *
end_thread_main(void *arg)
{
    (void)arg;
    zwi_preload_own_thread("zw-end");
    Dl_info info;
    (void)dladdr((void *)end_thread_main, &info); /* the loader's lock, taken and given back */
    uint32_t probing = END_PROBING;
    bool mine = atomic_compare_exchange_strong(&end_state, &probing, END_WRITING);
    zwi_preload_futex_wake(&end_state);
    if (mine)
        zwi_preload_write_end_locked(end_stack.end, end_stack.code);
    return NULL;
}

/* The end written by a thread of its own, this one waiting for it; false if none could be made,
 * or if it could not take the loader's lock in time (then it is left waiting for that lock,
 * and returns once it has it, doing nothing). */
static bool
write_end_on_thread(void)
{
    pthread_attr_t attr;
    if (pthread_attr_init(&attr) != 0)
        return false;
    atomic_store(&end_state, END_PROBING);
    pthread_t th;
    bool made = pthread_attr_setstacksize(&attr, end_stack.size) == 0 &&
                pthread_create(&th, &attr, end_thread_main, NULL) == 0;
    pthread_attr_destroy(&attr);
    if (!made)
        return false;
    uint64_t deadline = zwi_preload_clock_ns(CLOCK_MONOTONIC) + (uint64_t)END_PROBE_MS * 1000000u;
    while (atomic_load(&end_state) == END_PROBING &&
           zwi_preload_clock_ns(CLOCK_MONOTONIC) < deadline)
        zwi_preload_futex_wait(&end_state, END_PROBING, 1);
    uint32_t probing = END_PROBING;
    if (atomic_compare_exchange_strong(&end_state, &probing, END_GIVEN_UP)) {
        pthread_detach(th);
        return false;
    }
    pthread_join(th, NULL);
    return true;
}

/* zwi_preload_write_end_locked(end, code), on the stack mapped at start when there is one. */
static void
write_end(uint32_t end, int code)
{
    end_stack.end = end;
    end_stack.code = code;
    if (end_stack.base != NULL && end != ZW_CAPTURE_END_SIGNAL && G.end_thread &&
        write_end_on_thread())
        return;
    if (end_stack.base != NULL && getcontext(&end_stack.run) == 0) {
        end_stack.run.uc_stack.ss_sp = end_stack.base;
        end_stack.run.uc_stack.ss_size = end_stack.size;
        end_stack.run.uc_link = &end_stack.back;
        makecontext(&end_stack.run, write_end_there, 0);
        if (swapcontext(&end_stack.back, &end_stack.run) == 0)
            return; /* back here once write_end_there() returned */
    }
    zwi_preload_write_end_locked(end, code);
}

void
zwi_preload_start(void)
{
    if (atomic_exchange(&G.started, true))
        return;
    zwi_preload_resolve();
    zwi_trace_guard++;
    map_end_stack();
    zwi_preload_env_save(); /* before anything of zw's is read */
    G.nframe = env_uint("ZW_NFRAME", DEFAULT_NFRAME, 1, ZW_TRACE_MAX_NFRAME);
    G.interval_ms = env_uint("ZW_INTERVAL_MS", 10, 1, 3600000);
    G.flush_ms = env_uint("ZW_FLUSH_MS", 1000, 0, 3600000);
    G.follow_fork = env_uint("ZW_FOLLOW_FORK", 0, 0, 1) == 1;
    G.ahead.on = env_uint("ZW_TABLE_AHEAD", 1, 0, 1) == 1;
    G.end_thread = env_uint("ZW_END_THREAD", 1, 0, 1) == 1;
    G.ahead.next = 1;
    G.leak_check = env_uint("ZW_LEAK_CHECK", 1, 0, 1) == 1;
    G.leak_marks = env_uint("ZW_LEAK_MARKS", 0, 0, 1) == 1;
    G.follow_exec = env_uint("ZW_FOLLOW_EXEC", 1, 0, 1) == 1;
    G.tracer = zwi_tracer_new(G.nframe);
    G.raw = zw_raw_new(NULL);
    if (G.tracer != NULL) /* the heap's bytes and peak; the mmap domain counts apart */
        zwi_tracer_count_default_only(G.tracer);
    if (G.tracer == NULL || G.raw == NULL) {
        static const char msg[] = "zw: preload: error: cannot start tracing: out of memory\n";
        (void)!write(2, msg, sizeof(msg) - 1);
        zwi_trace_guard--;
        return;
    }
    /* per-site tables: reserved, touched (and so made resident) only where refs fall */
    G.site_refs = site_refs_for_limit();
    const size_t sizes[4] = {G.site_refs * sizeof(site), G.site_refs * sizeof(site_shown),
                             G.site_refs, G.site_refs >> DIRTY_SHIFT};
    void *tab[4];
    for (int i = 0; i < 4; i++) {
        tab[i] = mmap(NULL, sizes[i], PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (tab[i] == MAP_FAILED) {
            for (int k = 0; k < i; k++)
                munmap(tab[k], sizes[k]);
            tab[0] = NULL;
            break;
        }
    }
    if (tab[0] != NULL) {
        G.sites = tab[0];
        G.shown = tab[1];
        G.dirty = tab[2];
        G.summary = tab[3];
    }
    G.steps.raw = G.raw;
    G.start_ns = zwi_preload_clock_ns(CLOCK_MONOTONIC);
    G.start_real = zwi_preload_clock_ns(CLOCK_REALTIME);
    G.pid = getpid();
    read_cmdline();
    pthread_mutex_lock(&G.lock);
    zwi_preload_open_output();
    zwi_preload_write_start_locked();
    zwi_preload_map_live();
    pthread_mutex_unlock(&G.lock);
    (void)zwi_thread_get(); /* this thread's stack bounds, before its first traced block */
    if (G.nframe > 1) {
        static const char *const runtime[] = {"/libc.so", "/libstdc++.so", NULL};
        zwi_preload_unwind_init(&G.unw, runtime, zwi_preload_env("ZW_UNWIND"));
    }
    zwi_preload_sampler_fds();
    zwi_preload_make_slot_key();
    install_signals();
    on_exit(on_exit_hook, NULL);
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    zwi_preload_start_consumer(); /* first: G.ring is read by the sampler */
    zwi_preload_start_sampler();
    atomic_store(&G.active, true);
    zwi_trace_guard--;
}

/* The constructor starts tracing, unless an allocation made it start earlier: a library initialised
 * before this one (libselinux in mkdir) allocates in its constructor. */
__attribute__((constructor)) static void
preload_start(void)
{
    zwi_preload_start();
    zwi_preload_env_scrub(); /* main runs without zw's variables */
}

/* No destructor writes the capture: _dl_fini, which runs destructors, is registered with atexit
 * after this constructor ran, so it runs before on_exit_hook, which alone knows the status. */
