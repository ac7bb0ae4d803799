/* tests/preload/known_lines.c - the same allocations, at the same lines, seen two ways:
 *   known_lines inproc   traces itself with the in-process API (zw_trace_start, allocations
 *                        through zw_mem_raw_malloc) and prints its statistics by line
 *   known_lines          allocates with malloc, for `zw run`; its capture must give the same
 * Each mode prints "LINE BYTES BLOCKS" for the live set at the mark "middle" and at exit (only
 * lines of this file), so test_preload.sh compares them with `zw top --json`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zerowaste/capture.h>
#include <zerowaste/mem.h>
#include <zerowaste/trace.h>

static void *(*alloc_fn)(size_t);
static void (*free_fn)(void *);
static bool inproc;

#define ALLOC(n) alloc_fn(n)

/* In-process: the snapshot's lines of this file, "when LINE BYTES BLOCKS", sorted by line. */
static void
print_lines(const char *when)
{
    if (!inproc) {
        zw_mark(when);
        return;
    }
    zw_error err;
    zw_snapshot *snap = zw_trace_take_snapshot(&err);
    zw_stat_list *l = snap ? zw_snapshot_statistics(snap, ZW_GROUP_LINENO, false, &err) : NULL;
    if (l == NULL) {
        fprintf(stderr, "known_lines: %s\n", err.msg);
        exit(1);
    }
    for (unsigned line = 1; line < 200; line++) {
        for (size_t i = 0; i < zw_stat_list_len(l); i++) {
            const zw_statistic *s = zw_stat_list_get(l, i);
            const zw_frame *f = zw_traceback_frame(s->traceback, 0);
            if (f->lineno == line && strstr(f->filename, "known_lines.c") != NULL)
                printf("%s %u %zu %zu\n", when, line, s->size, s->count);
        }
    }
    zw_stat_list_free(l);
    zw_snapshot_free(snap);
}

static void *
level2(size_t n)
{
    return ALLOC(n); /* one site, two callers */
}

int
main(int argc, char **argv)
{
    inproc = argc > 1 && strcmp(argv[1], "inproc") == 0;
    if (inproc) {
        if (zw_trace_start(8, NULL) != 0)
            return 1;
        alloc_fn = zw_mem_raw_malloc;
        free_fn = zw_mem_raw_free;
    } else {
        alloc_fn = malloc;
        free_fn = free;
    }
    void *keep[100];
    for (int i = 0; i < 100; i++)
        keep[i] = ALLOC(100 + (size_t)i); /* 100 blocks, 14950 bytes */
    void *big = ALLOC(100000);
    void *a = level2(300);
    void *b = level2(400);
    for (int i = 0; i < 1000; i++)
        free_fn(ALLOC(64)); /* temporary */
    print_lines("middle");
    free_fn(big);
    for (int i = 0; i < 50; i++)
        free_fn(keep[i]);
    void *late = ALLOC(777);
    print_lines("exit");
    (void)a;
    (void)b;
    (void)late;
    return 0;
}
