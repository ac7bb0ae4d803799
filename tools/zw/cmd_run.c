/* tools/zw/cmd_run.c - zw run: runs a program with libzwpreload.so in LD_PRELOAD, waits for it,
 * reads the capture it wrote and prints a five-line summary on stderr. Exits with the program's
 * status (128 + the signal if a signal ended it), so `zw run` fits in scripts; with --leak-check,
 * the status of --error-exitcode when unsuppressed leaks of the kinds asked remain. */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

const char cli_help_run[] =
    "usage: zw run [options] [--] PROGRAM [ARGS...]\n"
    "\n"
    "Run PROGRAM with libzwpreload.so, which records every malloc-family call, and print a\n"
    "summary of its capture on stderr. Exits with the program's status (128+N if signal N\n"
    "ended it), or 1 if the program exited 0 but wrote no capture.\n"
    "\n"
    "options:\n"
    "  -o, --output FILE   the capture file (default zw.PID.zwc; %p in FILE is the pid of\n"
    "                      PROGRAM); its child processes and the images it executes write\n"
    "                      FILE.1, FILE.2, ...: one capture set that the other commands read\n"
    "  --nframe N          frames kept per traceback (1-1024, default 16)\n"
    "  --interval MS       sampling interval of the time series (default 10)\n"
    "  --follow-fork       forked children write a capture of their own (default: not traced)\n"
    "  --no-follow-exec    programs that PROGRAM executes are not traced (default: traced)\n"
    "  -q, --quiet         no summary, and no status line while the program runs (shown\n"
    "                      on a terminal: time, heap now and peak, allocations, processes)\n"
    "  --leak-check[=definite|possible|all]\n"
    "                      check the leaks at exit (of every process of the run): with\n"
    "                      definite (the default) definitely and indirectly lost blocks count,\n"
    "                      possible adds possibly lost ones, all still reachable ones too; if\n"
    "                      any is not suppressed, print them on stderr as LeakSanitizer does\n"
    "                      and exit with --error-exitcode's status\n"
    "  --error-exitcode N  the status then (1-255, default 23, LeakSanitizer's)\n"
    "  --suppressions FILE leak suppressions, as zw leaks takes them\n"
    "  --leak-check-at-marks\n"
    "                      each zw_mark() that keeps its live set also scans it for\n"
    "                      reachability (zw leaks --at MARK lists it by kind)\n"
    "  -h, --help          this text\n";

/* libzwpreload.so: $ZW_PRELOAD, beside this executable, in the libdir relative to it, then the
 * build tree and the configured libdir. */
static const char *
find_preload(char *buf, size_t len)
{
    const char *env = getenv("ZW_PRELOAD");
    if (env != NULL && *env != '\0')
        return access(env, R_OK) == 0 ? env : NULL;
    char self[PATH_MAX - 32];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash != NULL) {
            *slash = '\0';
            snprintf(buf, len, "%s/libzwpreload.so", self);
            if (access(buf, R_OK) == 0)
                return buf;
            snprintf(buf, len, "%s/%s", self, ZW_PRELOAD_FROM_BINDIR);
            if (access(buf, R_OK) == 0)
                return buf;
        }
    }
    static const char *const fixed[] = {ZW_PRELOAD_BUILD, ZW_PRELOAD_INSTALLED};
    for (size_t i = 0; i < 2; i++) {
        if (fixed[i][0] != '\0' && access(fixed[i], R_OK) == 0)
            return fixed[i];
    }
    return NULL;
}

/* `pat` with %p replaced by `pid`. */
static void
expand(char *out, size_t len, const char *pat, long pid)
{
    size_t k = 0;
    for (const char *s = pat; *s != '\0' && k + 24 < len; s++) {
        if (s[0] == '%' && s[1] == 'p') {
            k += (size_t)snprintf(out + k, len - k, "%ld", pid);
            s++;
        } else {
            out[k++] = *s;
        }
    }
    out[k] = '\0';
}

/* Checks that `path` can be created, and removes it and FILE.1, FILE.2... of an older run (the
 * preload library never overwrites a file). 0, or 1 after a message. */
static int
prepare_output(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return cli_fail("cannot create the capture '%s': %s", path, strerror(errno));
    close(fd);
    unlink(path);
    for (int i = 1; i < 1000; i++) {
        char old[PATH_MAX + 16];
        snprintf(old, sizeof(old), "%s.%d", path, i);
        if (unlink(old) != 0)
            break;
    }
    return 0;
}

/* ---- the summary ---- */

/* The captures of the run: FILE, FILE.1, FILE.2 ... as far as they go without a gap, each read
 * once (one that could not be, again only to say why) and only for what the summary prints
 * (zw_capture_load_summary: the totals, the samples and the exit set's size; no traceback is
 * decoded, where a full load builds every traceback's frames and strings). */
typedef struct run_set {
    const char *first; /* FILE */
    size_t n;          /* the files that exist */
    zw_capture **caps; /* caps[i]: FILE.i read, NULL if not yet or it could not be */
    uint8_t *state;    /* state[i]: enum read_state of caps[i] */
    bool brief;        /* zw run -q: only how the run went (zw_capture_load_brief) */
} run_set;

/* How far the reading of one capture of a run_set went. */
enum read_state {
    UNREAD,     /* not tried yet */
    READ_QUIET, /* tried; a failure or damage not said */
    READ_SAID,  /* tried; a failure or damage said */
};

/* The path of the i-th capture of `s`. */
static void
set_path(const run_set *s, size_t i, char *buf, size_t len)
{
    if (i == 0)
        snprintf(buf, len, "%s", s->first);
    else
        snprintf(buf, len, "%s.%d", s->first, (int)i); /* i < 1000 */
}

/* Finds the files of the set; false (after a message) if FILE itself is missing. */
static bool
set_open(run_set *s, const char *first, bool brief)
{
    *s = (run_set){.first = first, .brief = brief};
    if (access(first, F_OK) != 0) {
        cli_fail("no capture written: the program wrote no '%s': is it statically linked or "
                 "set-user-ID (LD_PRELOAD is ignored then)?",
                 first);
        return false;
    }
    for (s->n = 1; s->n < 1000; s->n++) {
        char p[PATH_MAX + 16];
        set_path(s, s->n, p, sizeof(p));
        if (access(p, F_OK) != 0)
            break;
    }
    s->caps = calloc(s->n, sizeof(*s->caps));
    s->state = calloc(s->n, sizeof(*s->state));
    if (s->caps == NULL || s->state == NULL) {
        free(s->caps);
        free(s->state);
        cli_fail("cannot read the capture '%s': %s", first, strerror(ENOMEM));
        return false;
    }
    return true;
}

static void
set_release(run_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        zw_capture_free(s->caps[i]);
    free(s->caps);
    free(s->state);
}

/* The i-th capture of the set (NULL if it cannot be read), read the first time it is asked for.
 * `loud`: a capture that cannot be read or is damaged is said to be, once. */
static zw_capture *
set_get(run_set *s, size_t i, bool loud)
{
    if (s->state[i] == READ_SAID || (s->state[i] == READ_QUIET && !loud))
        return s->caps[i];
    char p[PATH_MAX + 16];
    set_path(s, i, p, sizeof(p));
    zw_error err;
    /* read quietly before: a failure is read again for its message, a damage only said */
    if (s->state[i] == UNREAD || s->caps[i] == NULL)
        s->caps[i] = s->brief ? zw_capture_load_brief(p, &err) : zw_capture_load_summary(p, &err);
    s->state[i] = loud ? READ_SAID : READ_QUIET;
    if (loud && s->caps[i] == NULL)
        cli_fail("%s", err.msg);
    else if (loud)
        cli_warn_damaged(p, s->caps[i]);
    return s->caps[i];
}

/* The index in `s` of the capture of the program: FILE, or, if the program executed another one
 * (the same pid, a later file; the capture before ends with exec or was cut short), the last
 * image's. -1 if FILE cannot be read (said). */
static long
main_capture(run_set *s)
{
    const zw_capture *c = set_get(s, 0, true);
    if (c == NULL)
        return -1;
    size_t used = 0;
    for (size_t i = 1; (!c->complete || c->totals.end == ZW_CAPTURE_END_EXEC) && i < s->n; i++) {
        const zw_capture *o = set_get(s, i, false);
        if (o != NULL && o->pid == c->pid) {
            c = o;
            used = i;
        }
    }
    return (long)used;
}

/* In a capture set of several processes, the capture of the largest peak when it is another
 * process's than the `used` one's (a driver and the compiler it runs, a shell and its command):
 * that one's index, after a line that says so; else `used`. Every capture of the set is read
 * (each said if it cannot be: the summary then keeps to `used`). */
static size_t
largest_peak(run_set *s, size_t used)
{
    if (s->n < 2)
        return used;
    for (size_t i = 0; i < s->n; i++) {
        if (set_get(s, i, true) == NULL)
            return used;
    }
    size_t best = 0;
    for (size_t i = 1; i < s->n; i++) {
        if (s->caps[i]->totals.peak_bytes > s->caps[best]->totals.peak_bytes)
            best = i;
    }
    const zw_capture *b = s->caps[best];
    const zw_capture *c = s->caps[used];
    if (b->pid == c->pid || b->totals.peak_bytes <= c->totals.peak_bytes)
        return used;
    char a[32];
    fprintf(stderr,
            "zw: %zu processes; below: pid %" PRIu32 " (%s), the largest peak; pid %" PRIu32
            " (%s) peaked at %s\n",
            s->n, b->pid, b->argc > 0 ? b->argv[0] : "?", c->pid, c->argc > 0 ? c->argv[0] : "?",
            cli_size(a, (long long)c->totals.peak_bytes, false));
    return best;
}

/* What went wrong with the capture itself, on stderr even with -q: a write that failed, blocks
 * the tracer could not record. */
static void
warn_capture(const zw_capture *c)
{
    if (c->write_errno == ENOMEM)
        fprintf(stderr, "zw: capture cut: the tracer ran out of memory writing it\n");
    else if (c->write_errno != 0)
        fprintf(stderr, "zw: capture cut: write failed: %s\n", strerror((int)c->write_errno));
    if (c->untraced != 0)
        fprintf(stderr, "zw: %llu allocations not traced: the tracer ran out of memory\n",
                (unsigned long long)c->untraced);
}

/* The line about the leaks at exit: the exit set's heap blocks, or why they are unknown. */
static void
print_leaks(const zw_capture *c)
{
    char a[32];
    const zw_capture_totals *t = &c->totals;
    if (c->exit_size.kept)
        fprintf(stderr, "zw: leaks        %s in %llu blocks at exit\n",
                cli_size(a, (long long)c->exit_size.heap_bytes, false),
                (unsigned long long)c->exit_size.heap_blocks);
    else if (c->write_errno != 0)
        fprintf(stderr, "zw: leaks        unknown: the capture was cut before them\n");
    else if (t->end == ZW_CAPTURE_END_SIGNAL)
        fprintf(stderr,
                "zw: leaks        unknown: signal %d (%s) ended the process where they could "
                "not be written\n",
                t->code, strsignal(t->code));
    else if (c->complete) /* the end was written, the exit set not kept: no memory for it */
        fprintf(stderr, "zw: leaks        unknown: the tracer ran out of memory for the exit "
                        "set\n");
    else
        fprintf(stderr, "zw: leaks        unknown: the process died before writing them\n");
}

/* Prints the summary (unless `quiet`) and the capture's warnings; false if there is no capture
 * (after a message). */
static bool
summarize(const char *first, bool quiet)
{
    run_set s;
    if (!set_open(&s, first, quiet))
        return false;
    long found = main_capture(&s);
    if (found < 0) {
        set_release(&s);
        return false;
    }
    if (quiet) {
        warn_capture(s.caps[found]);
        set_release(&s);
        return true;
    }
    size_t used = largest_peak(&s, (size_t)found);
    const zw_capture *c = s.caps[used];
    char a[32], b[32];
    const zw_capture_totals *t = &c->totals;
    fprintf(stderr, "zw: peak         %s at %.3f s\n", cli_size(a, (long long)t->peak_bytes, false),
            (double)t->peak_time_ns / 1e9);
    cli_tree one = {.n = 1, .caps = &s.caps[used]};
    uint64_t mapped = cli_tree_mmap_peak(&one);
    if (mapped > 0)
        fprintf(stderr, "zw: mmap peak    %s (mapped by the program itself: zw top --domain mmap)\n",
                cli_size(a, (long long)mapped, false));
    print_leaks(c);
    fprintf(stderr, "zw: allocations  %llu (%llu frees), %s in all\n",
            (unsigned long long)t->allocations, (unsigned long long)t->frees,
            cli_size(b, (long long)t->bytes_allocated, false));
    fprintf(stderr, "zw: temporary    %llu (%.1f%% of allocations)\n",
            (unsigned long long)t->temporary,
            t->allocations ? 100.0 * (double)t->temporary / (double)t->allocations : 0.0);
    char path[PATH_MAX + 16];
    set_path(&s, used, path, sizeof(path));
    if (s.n > 1)
        fprintf(stderr, "zw: capture      %s%s (one of %zu files, one per process: %s, %s.1 ...)\n",
                path, c->complete ? "" : " (incomplete)", s.n, first, first);
    else
        fprintf(stderr, "zw: capture      %s%s ('zw stat %s' for more)\n", path,
                c->complete ? "" : " (incomplete)", path);
    warn_capture(c);
    set_release(&s);
    return true;
}

/* The kinds --leak-check counts: definite (definitely and indirectly lost), possible, all. */
static int
leak_check_kinds(const char *arg, uint32_t *kinds)
{
    uint32_t lost = 1u << ZW_LEAK_DEFINITE | 1u << ZW_LEAK_INDIRECT;
    if (arg[0] == '\0' || strcmp(arg, "definite") == 0)
        *kinds = lost;
    else if (strcmp(arg, "possible") == 0)
        *kinds = lost | 1u << ZW_LEAK_POSSIBLE;
    else if (strcmp(arg, "all") == 0)
        *kinds = (1u << ZW_LEAK_KINDS) - 1;
    else
        return cli_usage("run", "unknown --leak-check '%s' (definite, possible or all)", arg);
    return 0;
}

/* LeakSanitizer's report of the unsuppressed leaks of `kinds` in the run's captures: true if
 * there are any. A capture that was not scanned is said so, and does not fail the check. */
static bool
report_leaks(const char *path, uint32_t kinds, const cli_suppressions *sup, long pid)
{
    cli_tree *t = cli_load_tree(path, 0, false);
    if (t == NULL)
        return false;
    cli_leaks l;
    if (cli_leaks_of(t, NULL, sup, kinds, false, &l) != 0) {
        cli_tree_free(t);
        return false;
    }
    uint64_t blocks = 0, bytes = 0;
    for (int k = 0; k < ZW_LEAK_KINDS; k++) {
        if (kinds & (1u << k)) {
            blocks += l.blocks[k];
            bytes += l.bytes[k];
        }
    }
    if (l.unscanned > 0)
        fprintf(stderr, "zw: leak check: %zu of %zu processes %s\n", l.unscanned,
                l.unscanned + l.scanned, cli_leaks_why(l.status));
    if (blocks > 0) {
        static const char *const what[ZW_LEAK_KINDS] = {"Direct leak", "Indirect leak",
                                                         "Possible leak", "Still reachable"};
        fprintf(stderr, "=================================================================\n");
        fprintf(stderr, "==%ld==ERROR: zw: detected memory leaks\n", pid);
        for (int k = 0; k < ZW_LEAK_KINDS; k++) {
            zw_error err;
            zw_stat_list *list = l.sets[k] != NULL ? zw_snapshot_statistics(
                                                         l.sets[k], ZW_GROUP_TRACEBACK, false, &err)
                                                   : NULL;
            for (size_t i = 0; list != NULL && i < zw_stat_list_len(list); i++) {
                const zw_statistic *s = zw_stat_list_get(list, i);
                fprintf(stderr, "\n%s of %zu byte(s) in %zu object(s) allocated from:\n", what[k],
                        s->size, s->count);
                size_t nf = zw_traceback_len(s->traceback);
                for (size_t f = nf, n = 0; f-- > 0; n++) {
                    const zw_frame *fr = zw_traceback_frame(s->traceback, f);
                    char buf[1024];
                    zw_frame_str(fr, buf, sizeof(buf));
                    fprintf(stderr, "    #%zu %s in %s\n", n, fr->function ? cli_demangle(fr->function) : "??",
                            buf);
                }
            }
            zw_stat_list_free(list);
        }
        uint64_t sblocks = 0;
        for (int k = 0; k < ZW_LEAK_KINDS; k++)
            sblocks += l.sblocks[k];
        fprintf(stderr,
                "\nSUMMARY: zw: %" PRIu64 " byte(s) leaked in %" PRIu64 " allocation(s)"
                " (%" PRIu64 " suppressed).\n",
                bytes, blocks, sblocks);
    }
    cli_leaks_release(&l);
    cli_tree_free(t);
    return blocks > 0;
}

/* ---- the status line ---- */

#define STATUS_MAX_FILES 256 /* processes followed by the status line */

/* Waits for `pid`, keeping one line on stderr (a terminal) refreshed about once a second: the
 * time since the start, the heap now (the running processes' sum) and its peak (the largest
 * process's), allocations and processes, read from the captures as they are written (FIRST,
 * FIRST.1, ...). The line is erased before the summary. */
static void
wait_showing_status(pid_t pid, const char *first, int *status)
{
    static zw_capture_progress prog[STATUS_MAX_FILES];
    memset(prog, 0, sizeof(prog));
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    bool shown = false;
    for (int tick = 1;; tick++) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR))
            break;
        struct timespec nap = {0, 100 * 1000 * 1000};
        nanosleep(&nap, NULL);
        if (tick % 10 != 0)
            continue;
        uint64_t heap = 0, peak = 0, allocations = 0;
        size_t nproc = 0, running = 0;
        for (size_t i = 0; i < STATUS_MAX_FILES; i++) {
            char path[PATH_MAX + 16];
            if (i == 0)
                snprintf(path, sizeof(path), "%s", first);
            else
                snprintf(path, sizeof(path), "%s.%zu", first, i);
            if (prog[i].offset == 0 && access(path, F_OK) != 0)
                break;
            if (zw_capture_poll(path, &prog[i]) != 0 || !prog[i].known)
                continue;
            nproc++;
            running += !prog[i].ended;
            heap += prog[i].ended ? 0 : prog[i].last.heap_bytes;
            peak = prog[i].peak_bytes > peak ? prog[i].peak_bytes : peak;
            allocations += prog[i].last.allocations;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        double elapsed = (double)(now.tv_sec - t0.tv_sec) + (double)(now.tv_nsec - t0.tv_nsec) / 1e9;
        char a[32], b[32], procs[64] = "";
        if (nproc > 1)
            snprintf(procs, sizeof(procs), ", %zu processes (%zu running)", nproc, running);
        fprintf(stderr, "\rzw: %.0f s, heap %s (peak %s), %llu allocations%s\033[K", elapsed,
                cli_size(a, (long long)heap, false), cli_size(b, (long long)peak, false),
                (unsigned long long)allocations, procs);
        fflush(stderr);
        shown = true;
    }
    if (shown)
        fputs("\r\033[K", stderr);
}

int
cmd_run(const cli_command *c, const cli_opts *o)
{
    const char *output = o->output;
    unsigned long nframe = o->nframe, interval = o->interval;
    bool follow_fork = o->follow_fork, no_follow_exec = o->no_follow_exec, quiet = o->quiet;
    if (output != NULL && output[0] == '\0')
        return cli_usage("run", "the output file name is empty");
    uint32_t kinds = 0;
    int rc;
    if (o->leak_check != NULL && (rc = leak_check_kinds(o->leak_check, &kinds)) != 0)
        return rc;
    if (o->error_exitcode != 0 && o->leak_check == NULL)
        return cli_usage("run", "--error-exitcode needs --leak-check");

    char pbuf[PATH_MAX];
    const char *preload = find_preload(pbuf, sizeof(pbuf));
    if (preload == NULL)
        return cli_fail("cannot find libzwpreload.so (beside zw, in %s, or in $ZW_PRELOAD)",
                        ZW_PRELOAD_INSTALLED);
    char abs_preload[PATH_MAX];
    if (realpath(preload, abs_preload) == NULL)
        return cli_fail("cannot find libzwpreload.so: '%s': %s", preload, strerror(errno));
    const char *pattern = output != NULL ? output : "zw.%p.zwc";
    bool per_pid = strstr(pattern, "%p") != NULL;
    char path[PATH_MAX];
    if (!per_pid) {
        snprintf(path, sizeof(path), "%s", pattern);
        if (prepare_output(path) != 0)
            return CLI_EXIT_FAILURE;
    } else {
        expand(path, sizeof(path), pattern, (long)getpid());
        if (prepare_output(path) != 0) /* the directory must be writable */
            return CLI_EXIT_FAILURE;
    }

    cli_suppressions sup; /* read before the program runs: a bad file is said at once */
    if ((rc = cli_suppressions_read(o->suppressions, &sup)) != 0)
        return rc;

    /* a terminal's ^C and ^\ go to the program; zw stays to write the summary */
    struct sigaction ign = {.sa_handler = SIG_IGN}, old_int, old_quit;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGINT, &ign, &old_int);
    sigaction(SIGQUIT, &ign, &old_quit);
    fflush(NULL);
    int ready[2];
    if (pipe2(ready, O_CLOEXEC) != 0) {
        cli_suppressions_release(&sup);
        return cli_fail("cannot start '%s': %s", o->program[0], strerror(errno));
    }
    pid_t pid = fork();
    if (pid < 0) {
        cli_suppressions_release(&sup);
        return cli_fail("cannot start '%s': %s", o->program[0], strerror(errno));
    }
    if (pid == 0) {
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGQUIT, &old_quit, NULL);
        close(ready[0]);
        const char *lp = getenv("LD_PRELOAD");
        char env[2 * PATH_MAX + 2];
        if (lp != NULL && *lp != '\0')
            snprintf(env, sizeof(env), "%s:%s", abs_preload, lp);
        else
            snprintf(env, sizeof(env), "%s", abs_preload);
        setenv("LD_PRELOAD", env, 1);
        if (per_pid) {
            /* one name for the whole process tree: PROGRAM's pid, children add .1, .2 ... */
            char mine[PATH_MAX];
            expand(mine, sizeof(mine), pattern, (long)getpid());
            if (prepare_output(mine) != 0)
                _exit(126);
            setenv("ZW_OUTPUT", mine, 1);
        } else {
            setenv("ZW_OUTPUT", pattern, 1);
        }
        char num[32];
        if (nframe != 0) {
            snprintf(num, sizeof(num), "%lu", nframe);
            setenv("ZW_NFRAME", num, 1);
        }
        if (interval != 0) {
            snprintf(num, sizeof(num), "%lu", interval);
            setenv("ZW_INTERVAL_MS", num, 1);
        }
        setenv("ZW_FOLLOW_FORK", follow_fork ? "1" : "0", 1);
        setenv("ZW_FOLLOW_EXEC", no_follow_exec ? "0" : "1", 1);
        if (o->leak_check_at_marks)
            setenv("ZW_LEAK_MARKS", "1", 1);
        execvp(o->program[0], o->program);
        int e = errno;
        (void)!write(ready[1], &e, sizeof(e));
        _exit(127);
    }
    close(ready[1]);
    int exec_errno = 0;
    ssize_t got = read(ready[0], &exec_errno, sizeof(exec_errno));
    close(ready[0]);
    int status;
    if (got != (ssize_t)sizeof(exec_errno) && !quiet && isatty(STDERR_FILENO)) {
        char first[PATH_MAX];
        if (per_pid)
            expand(first, sizeof(first), pattern, (long)pid);
        else
            snprintf(first, sizeof(first), "%s", pattern);
        wait_showing_status(pid, first, &status);
    } else {
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGQUIT, &old_quit, NULL);
    if (got == (ssize_t)sizeof(exec_errno)) {
        cli_fail("cannot run '%s': %s", o->program[0], strerror(exec_errno));
        cli_suppressions_release(&sup);
        return exec_errno == ENOENT ? 127 : 126;
    }
    if (per_pid)
        expand(path, sizeof(path), pattern, (long)pid);
    rc = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
    bool written = summarize(path, quiet);
    if (o->leak_check != NULL && written && report_leaks(path, kinds, &sup, (long)pid)) {
        cli_suppressions_release(&sup);
        return (int)(o->error_exitcode ? o->error_exitcode : 23);
    }
    cli_suppressions_release(&sup);
    if (!written && rc == 0)
        return CLI_EXIT_FAILURE; /* no capture written: never a silent success */
    return rc;
}
