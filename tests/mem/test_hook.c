/* tests/mem/test_hook.c - the heap observer (zw_mem_set_heap_hook): every heap's malloc,
 * calloc, realloc and free are reported with the heap, the pointer and the requested size, in
 * order, failed calls are not, and nothing is reported once the observer is removed. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>

#include <zerowaste/zerowaste.h>

#include "zw_test.h"

typedef struct event {
    char kind; /* 'a' alloc, 'f' free */
    zw_heap *h;
    void *ptr;
    size_t size; /* alloc only */
} event;

typedef struct log {
    event ev[64];
    size_t n;
} log_t;

static void
on_alloc(void *ctx, zw_heap *h, void *ptr, size_t size)
{
    log_t *l = ctx;
    cr_assert_lt(l->n, 64);
    l->ev[l->n++] = (event){'a', h, ptr, size};
}

static void
on_free(void *ctx, zw_heap *h, void *ptr)
{
    log_t *l = ctx;
    cr_assert_lt(l->n, 64);
    l->ev[l->n++] = (event){'f', h, ptr, 0};
}

static void
expect(const log_t *l, size_t i, char kind, zw_heap *h, void *ptr, size_t size)
{
    cr_assert_lt(i, l->n, "event %zu missing", i);
    cr_assert_eq(l->ev[i].kind, kind, "event %zu: kind %c, expected %c", i, l->ev[i].kind, kind);
    cr_assert_eq(l->ev[i].h, h, "event %zu: wrong heap", i);
    cr_assert_eq(l->ev[i].ptr, ptr, "event %zu: wrong pointer", i);
    cr_assert_eq(l->ev[i].size, size, "event %zu: size %zu, expected %zu", i, l->ev[i].size, size);
}

Test(mem_hook, reports_every_call_of_every_heap_in_order)
{
    log_t l = {0};
    zw_heap_hook hook = {&l, on_alloc, on_free};
    zw_heap *a = zwt_heap(NULL);
    zw_heap *b = zwt_heap(NULL);
    zw_mem_set_heap_hook(&hook);
    void *p = zw_heap_malloc(a, 24);
    void *q = zw_heap_calloc(b, 3, 100);
    void *big = zw_heap_malloc(a, 5000);
    void *p2 = zw_heap_realloc(a, p, 300);
    void *r = zw_heap_realloc(b, NULL, 7);
    zw_heap_free(a, p2);
    zw_heap_free(b, q);
    zw_heap_free(a, NULL);
    zw_heap_free(a, big);
    zw_heap_free(b, r);
    expect(&l, 0, 'a', a, p, 24);
    expect(&l, 1, 'a', b, q, 300);
    expect(&l, 2, 'a', a, big, 5000);
    expect(&l, 3, 'f', a, p, 0);
    expect(&l, 4, 'a', a, p2, 300);
    expect(&l, 5, 'a', b, r, 7);
    expect(&l, 6, 'f', a, p2, 0);
    expect(&l, 7, 'f', b, q, 0);
    expect(&l, 8, 'f', a, big, 0);
    expect(&l, 9, 'f', b, r, 0);
    cr_assert_eq(l.n, 10);
    zw_heap_hook got;
    zw_mem_get_heap_hook(&got);
    cr_assert(got.ctx == &l && got.alloc == on_alloc && got.free == on_free);
    zw_mem_set_heap_hook(NULL);
    zw_heap_destroy(a);
    zw_heap_destroy(b);
}

Test(mem_hook, failed_calls_are_not_reported)
{
    log_t l = {0};
    zw_heap_hook hook = {&l, on_alloc, on_free};
    zw_heap *h = zwt_heap(NULL);
    zw_mem_set_heap_hook(&hook);
    cr_assert_null(zw_heap_calloc(h, SIZE_MAX / 2, 3));
    cr_assert_null(zw_heap_malloc(h, (size_t)PTRDIFF_MAX));
    void *p = zw_heap_malloc(h, 8);
    cr_assert_null(zw_heap_realloc(h, p, (size_t)PTRDIFF_MAX));
    cr_assert_eq(l.n, 1, "only the successful malloc is reported, got %zu events", l.n);
    zw_heap_free(h, p);
    zw_mem_set_heap_hook(NULL);
    zw_heap_destroy(h);
}

Test(mem_hook, removed_observer_sees_nothing)
{
    log_t l = {0};
    zw_heap_hook hook = {&l, on_alloc, on_free};
    zw_heap *h = zwt_heap(NULL);
    zw_mem_set_heap_hook(&hook);
    zw_mem_set_heap_hook(NULL);
    zw_heap_hook got;
    zw_mem_get_heap_hook(&got);
    cr_assert(got.alloc == NULL && got.free == NULL && got.ctx == NULL);
    zw_heap_free(h, zw_heap_malloc(h, 10));
    cr_assert_eq(l.n, 0);
    zw_heap_destroy(h);
}

Test(mem_hook, default_heap_is_observed_through_the_domains)
{
    const char *v = getenv("ZW_MALLOC");
    if (v != NULL && strcmp(v, "malloc") == 0)
        cr_skip_test("ZW_MALLOC=malloc routes MEM to the C library");
    log_t l = {0};
    zw_heap_hook hook = {&l, on_alloc, on_free};
    zw_heap *dh = zw_mem_default_heap();
    zw_mem_set_heap_hook(&hook);
    void *p = zw_mem_malloc(40);
    zw_mem_free(p);
    zw_mem_set_heap_hook(NULL);
    expect(&l, 0, 'a', dh, p, 40);
    expect(&l, 1, 'f', dh, p, 0);
    cr_assert_eq(l.n, 2);
}
