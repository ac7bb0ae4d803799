/* tools/zw/progress.c - the status line of a reading command (top, leaks, peak, compare, stat,
 * export, report) while it reads a large capture: on a terminal, once the command has run for
 * about a second, one line on stderr says what it is doing (the capture being read, bytes read of
 * the set's total) and the time so far, refreshed about ten times a second and erased before the
 * command prints. Nothing when stderr is not a terminal or with -q. zw run's own status line
 * (cmd_run.c) follows a capture being written instead (zw_capture_poll). See docs/zw.md
 * ("Progress").
 *
 * ZW_PROGRESS_AFTER_MS (for tests) replaces the second the line waits for. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define AFTER_MS_DEFAULT 1000 /* a command shorter than this shows no line */
#define REFRESH_MS       100  /* at most this often */

static struct {
    bool on;         /* stderr is a terminal, no -q: the line may be shown */
    bool shown;      /* a line is on the terminal now */
    const char *cmd; /* the command's name, the line's prefix */
    double t0;       /* when the command started, in seconds (CLOCK_MONOTONIC) */
    double after;    /* seconds before the first line */
    double last;     /* when the line was last drawn */
} progress;

static double
now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

void
cli_progress_begin(const char *cmd, bool quiet)
{
    progress.cmd = cmd;
    progress.t0 = now_s();
    progress.after = AFTER_MS_DEFAULT / 1e3;
    progress.shown = false;
    progress.on = !quiet && isatty(STDERR_FILENO);
    const char *env = getenv("ZW_PROGRESS_AFTER_MS");
    if (env != NULL && env[0] != '\0') {
        char *end;
        long ms = strtol(env, &end, 10);
        if (*end == '\0' && ms >= 0)
            progress.after = (double)ms / 1e3;
        else
            fprintf(stderr, "zw: warning: ZW_PROGRESS_AFTER_MS='%s' is not a number of "
                            "milliseconds; the status line waits 1 s\n", env);
    }
}

void
cli_progress_show(const char *fmt, ...)
{
    if (!progress.on)
        return;
    double t = now_s();
    if (t - progress.t0 < progress.after ||
        (progress.shown && t - progress.last < REFRESH_MS / 1e3))
        return;
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    fprintf(stderr, "\rzw: %s: %s, %.1f s\033[K", progress.cmd, what, t - progress.t0);
    fflush(stderr);
    progress.shown = true;
    progress.last = t;
}

void
cli_progress_end(void)
{
    if (!progress.shown)
        return;
    fputs("\r\033[K", stderr);
    fflush(stderr);
    progress.shown = false;
}
