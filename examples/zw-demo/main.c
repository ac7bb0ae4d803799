/* examples/zw-demo/main.c - a program with a leak, a growth and a peak at known lines, for `zw`
 * (make demo, docs/zw.md). It does not link zerowaste: run it under `zw run` and look at it with
 * `zw stat`, `zw top`, `zw leaks`. The lines the walk-through points at are marked LEAK, GROWTH,
 * PEAK and TEMPORARY. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A mark in the capture when run under zw; nothing otherwise (weak: this program does not link
 * zerowaste). */
void zw_mark(const char *label) __attribute__((weak));

static void
mark(const char *label)
{
    if (zw_mark != NULL)
        zw_mark(label);
}

/* ---- a name cache that never forgets: the leak ---- */

typedef struct name {
    struct name *next;
    char text[48];
} name;

static name *names; /* never freed */

static void
remember(int i)
{
    name *n = malloc(sizeof(*n)); /* LEAK: 1000 blocks of 56 bytes still allocated at exit */
    snprintf(n->text, sizeof(n->text), "user-%d", i);
    n->next = names;
    names = n;
}

/* ---- a vector that doubles: the growth ---- */

typedef struct vec {
    double *v;
    size_t n;
    size_t cap;
} vec;

static void
push(vec *v, double x)
{
    if (v->n == v->cap) {
        v->cap = v->cap ? 2 * v->cap : 16;
        v->v = realloc(v->v, v->cap * sizeof(double)); /* GROWTH: 2 MiB at the end */
    }
    v->v[v->n++] = x;
}

/* ---- a scratch copy four times the data: the peak ---- */

static double
smoothed_sum(const vec *v)
{
    double *tmp = malloc(4 * v->n * sizeof(double)); /* PEAK: 6.1 MiB, freed at once */
    double sum = 0;
    for (size_t i = 0; i < 4 * v->n; i++)
        tmp[i] = v->v[i / 4] / 4;
    for (size_t i = 0; i < 4 * v->n; i++)
        sum += tmp[i];
    free(tmp);
    return sum;
}

/* ---- small blocks freed as soon as they are made: temporary allocations ---- */

static size_t
count_digits(int i)
{
    char *s = malloc(16); /* TEMPORARY: 10000 blocks, each freed before the next allocation */
    size_t n = (size_t)snprintf(s, 16, "%d", i);
    free(s);
    return n;
}

int
main(void)
{
    mark("start");
    for (int i = 0; i < 1000; i++)
        remember(i);
    vec v = {0};
    for (int i = 0; i < 200000; i++)
        push(&v, i);
    mark("grown");
    double sum = smoothed_sum(&v);
    size_t digits = 0;
    for (int i = 0; i < 10000; i++)
        digits += count_digits(i);
    free(v.v);
    mark("end");
    printf("zw-demo: sum %.0f, %zu digits, %s\n", sum, digits, names->text);
    return 0;
}
