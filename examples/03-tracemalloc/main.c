/* examples/03-tracemalloc - the talk's tracemalloc slide in C: start tracing, take a snapshot,
 * run code that keeps memory, take a second snapshot, and print the top 10 lines by growth
 * (Snapshot.compare_to(old, 'lineno')), then the traceback of the biggest one. The code that
 * keeps memory is a cache of parsed records that nobody empties, and a log buffer grown by
 * realloc. Run: build/examples/tracemalloc. docs/trace.md shows its output. */
#include <stdio.h>
#include <string.h>

#include <zerowaste/zerowaste.h>

typedef struct record {
    char *name; /* zw_mem_malloc'ed copy */
    double values[6];
    struct record *next;
} record;

typedef struct cache {
    record *head;
    size_t n;
} cache;

static record *
parse_record(int i)
{
    char name[32];
    snprintf(name, sizeof(name), "record-%06d", i);
    record *r = zw_mem_obj_malloc(sizeof(*r));
    r->name = zw_mem_malloc(strlen(name) + 1);
    strcpy(r->name, name);
    for (int k = 0; k < 6; k++)
        r->values[k] = i * 0.5 + k;
    r->next = NULL;
    return r;
}

static void
remember(cache *c, record *r)
{
    r->next = c->head; /* "just a cache": it is never emptied */
    c->head = r;
    c->n++;
}

static char *
log_line(char *log, size_t *len, int i)
{
    char line[64];
    int n = snprintf(line, sizeof(line), "processed %d\n", i);
    log = zw_mem_realloc(log, *len + (size_t)n + 1);
    memcpy(log + *len, line, (size_t)n + 1);
    *len += (size_t)n;
    return log;
}

static void
process_requests(cache *c, char **log, size_t *loglen, int count)
{
    for (int i = 0; i < count; i++) {
        record *r = parse_record(i);
        remember(c, r);
        *log = log_line(*log, loglen, i);
        void *scratch = zw_mem_malloc(256); /* freed: does not show in the diff */
        zw_mem_free(scratch);
    }
}

int
main(void)
{
    zw_error err;
    if (zw_trace_start(10, &err) != 0) {
        fprintf(stderr, "tracemalloc: %s\n", err.msg);
        return 1;
    }
    cache c = {0};
    char *log = NULL;
    size_t loglen = 0;
    process_requests(&c, &log, &loglen, 100); /* warm up: the application starts */

    zw_snapshot *snapshot1 = zw_trace_take_snapshot(&err);
    process_requests(&c, &log, &loglen, 10000); /* the code that keeps memory */
    zw_snapshot *snapshot2 = zw_trace_take_snapshot(&err);

    zw_stat_list *top = zw_snapshot_compare_to(snapshot2, snapshot1, ZW_GROUP_LINENO, false, &err);
    printf("[ Top 10 differences ]\n");
    for (size_t i = 0; i < zw_stat_list_len(top) && i < 10; i++) {
        char line[1024];
        zw_statistic_str(zw_stat_list_get(top, i), true, line, sizeof(line));
        printf("%s\n", line);
    }
    zw_stat_list_free(top);

    /* the biggest block's traceback, most recent call last */
    zw_stat_list *by_tb = zw_snapshot_statistics(snapshot2, ZW_GROUP_TRACEBACK, false, &err);
    const zw_statistic *big = zw_stat_list_get(by_tb, 0);
    printf("\n%zu memory blocks: %.1f KiB\n", big->count, (double)big->size / 1024);
    zw_traceback_format(big->traceback, ZW_NO_LIMIT, false, stdout);
    zw_stat_list_free(by_tb);

    size_t current;
    size_t peak;
    zw_trace_get_traced_memory(&current, &peak);
    printf("\ntraced: current %zu B, peak %zu B; the tracer's own memory: %zu B\n", current, peak,
           zw_trace_get_memory());
    zw_snapshot_free(snapshot1);
    zw_snapshot_free(snapshot2);
    zw_trace_stop();

    while (c.head != NULL) {
        record *r = c.head;
        c.head = r->next;
        zw_mem_free(r->name);
        zw_mem_obj_free(r);
    }
    zw_mem_free(log);
    return 0;
}
