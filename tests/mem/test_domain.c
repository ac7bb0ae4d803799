/* tests/mem/test_domain.c - the allocator domains RAW, MEM and OBJ as PyMem_SetAllocator has
 * them (reference/cpython-memory.md 1.1): get and set, the hook pattern (save the table,
 * forward to it, stack, uninstall by setting it back), where each domain's blocks come from,
 * and the default heap under several threads. Each test runs in its own process, so a table a
 * test leaves installed does not reach the next. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zerowaste/zerowaste.h>

static const zw_mem_domain domains[ZW_MEM_NDOMAINS] = {ZW_MEM_DOMAIN_RAW, ZW_MEM_DOMAIN_MEM,
                                                       ZW_MEM_DOMAIN_OBJ};

/* ZW_MALLOC=malloc, read when the library loads, sends MEM and OBJ to the C library; tests of
 * the default heap behind them cannot run then. */
static void
require_default_domains(void)
{
    const char *v = getenv("ZW_MALLOC");
    if (v != NULL && strcmp(v, "malloc") == 0)
        cr_skip_test("ZW_MALLOC=malloc routes MEM and OBJ to the C library");
}

static bool
same_table(const zw_allocator *a, const zw_allocator *b)
{
    return a->ctx == b->ctx && a->malloc == b->malloc && a->calloc == b->calloc &&
           a->realloc == b->realloc && a->free == b->free;
}

/* The domain's entry points, called by domain. */
static void *
domain_malloc(zw_mem_domain d, size_t n)
{
    return d == ZW_MEM_DOMAIN_RAW   ? zw_mem_raw_malloc(n)
           : d == ZW_MEM_DOMAIN_MEM ? zw_mem_malloc(n)
                                    : zw_mem_obj_malloc(n);
}

static void *
domain_calloc(zw_mem_domain d, size_t nelem, size_t elsize)
{
    return d == ZW_MEM_DOMAIN_RAW   ? zw_mem_raw_calloc(nelem, elsize)
           : d == ZW_MEM_DOMAIN_MEM ? zw_mem_calloc(nelem, elsize)
                                    : zw_mem_obj_calloc(nelem, elsize);
}

static void *
domain_realloc(zw_mem_domain d, void *p, size_t n)
{
    return d == ZW_MEM_DOMAIN_RAW   ? zw_mem_raw_realloc(p, n)
           : d == ZW_MEM_DOMAIN_MEM ? zw_mem_realloc(p, n)
                                    : zw_mem_obj_realloc(p, n);
}

static void
domain_free(zw_mem_domain d, void *p)
{
    if (d == ZW_MEM_DOMAIN_RAW)
        zw_mem_raw_free(p);
    else if (d == ZW_MEM_DOMAIN_MEM)
        zw_mem_free(p);
    else
        zw_mem_obj_free(p);
}

/* ---- a counting hook, installed the way a tracer installs itself ---- */

typedef struct hook {
    zw_allocator saved; /* the table the hook forwards to */
    char name;          /* written to `trail` on each call */
    size_t mallocs;
    size_t callocs;
    size_t reallocs;
    size_t frees;
    char *trail; /* where stacked hooks write their names, in call order; may be NULL */
} hook;

static void
hook_trail(hook *k)
{
    if (k->trail != NULL)
        strncat(k->trail, &k->name, 1);
}

static void *
hook_malloc(void *ctx, size_t n)
{
    hook *k = ctx;
    k->mallocs++;
    hook_trail(k);
    return k->saved.malloc(k->saved.ctx, n);
}

static void *
hook_calloc(void *ctx, size_t nelem, size_t elsize)
{
    hook *k = ctx;
    k->callocs++;
    hook_trail(k);
    return k->saved.calloc(k->saved.ctx, nelem, elsize);
}

static void *
hook_realloc(void *ctx, void *p, size_t n)
{
    hook *k = ctx;
    k->reallocs++;
    hook_trail(k);
    return k->saved.realloc(k->saved.ctx, p, n);
}

static void
hook_free(void *ctx, void *p)
{
    hook *k = ctx;
    k->frees++;
    hook_trail(k);
    k->saved.free(k->saved.ctx, p);
}

static void
hook_install(hook *k, zw_mem_domain d)
{
    zw_mem_get_allocator(d, &k->saved);
    zw_allocator mine = {k, hook_malloc, hook_calloc, hook_realloc, hook_free};
    zw_mem_set_allocator(d, &mine);
}

static void
hook_uninstall(hook *k, zw_mem_domain d)
{
    zw_mem_set_allocator(d, &k->saved);
}

/* One malloc, calloc, realloc and free through domain `d`. */
static void
exercise(zw_mem_domain d)
{
    unsigned char *p = domain_malloc(d, 40);
    cr_assert_not_null(p);
    memset(p, 0x5A, 40);
    unsigned char *q = domain_calloc(d, 10, 10);
    cr_assert_not_null(q);
    for (int i = 0; i < 100; i++)
        cr_assert_eq(q[i], 0, "domain %d: calloc left byte %d", (int)d, i);
    p = domain_realloc(d, p, 4000);
    cr_assert_not_null(p);
    for (int i = 0; i < 40; i++)
        cr_assert_eq(p[i], 0x5A, "domain %d: realloc lost byte %d", (int)d, i);
    domain_free(d, p);
    domain_free(d, q);
}

/* ---- get and set ---- */

Test(mem_domain, every_known_domain_has_a_complete_table)
{
    for (int i = 0; i < ZW_MEM_NDOMAINS; i++) {
        zw_allocator a;
        memset(&a, 0, sizeof(a));
        zw_mem_get_allocator(domains[i], &a);
        cr_assert(a.malloc != NULL && a.calloc != NULL && a.realloc != NULL && a.free != NULL,
                  "domain %d has a NULL function", i);
        /* The table works when called directly, as a hook will call it. */
        void *p = a.malloc(a.ctx, 24);
        cr_assert_not_null(p);
        p = a.realloc(a.ctx, p, 48);
        cr_assert_not_null(p);
        a.free(a.ctx, p);
    }
}

Test(mem_domain, unknown_domain_gets_null_functions)
{
    static const int unknown[] = {ZW_MEM_NDOMAINS, 7, 1000};
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        zw_allocator a;
        memset(&a, 0xAB, sizeof(a));
        zw_mem_get_allocator((zw_mem_domain)unknown[i], &a);
        cr_assert(a.ctx == NULL && a.malloc == NULL && a.calloc == NULL && a.realloc == NULL &&
                      a.free == NULL,
                  "domain %d: not every field is NULL", unknown[i]);
    }
}

Test(mem_domain, set_on_an_unknown_domain_is_ignored)
{
    zw_allocator before[ZW_MEM_NDOMAINS];
    for (int i = 0; i < ZW_MEM_NDOMAINS; i++)
        zw_mem_get_allocator(domains[i], &before[i]);
    hook k = {.name = 'k'};
    zw_allocator mine = {&k, hook_malloc, hook_calloc, hook_realloc, hook_free};
    zw_mem_set_allocator((zw_mem_domain)ZW_MEM_NDOMAINS, &mine);
    zw_mem_set_allocator((zw_mem_domain)1000, &mine);
    for (int i = 0; i < ZW_MEM_NDOMAINS; i++) {
        zw_allocator now;
        zw_mem_get_allocator(domains[i], &now);
        cr_assert(same_table(&now, &before[i]), "domain %d changed", i);
        exercise(domains[i]);
    }
    cr_assert_eq(k.mallocs + k.callocs + k.reallocs + k.frees, 0);
}

Test(mem_domain, set_table_is_what_get_returns)
{
    for (int i = 0; i < ZW_MEM_NDOMAINS; i++) {
        hook k = {.name = 'k'};
        hook_install(&k, domains[i]);
        zw_allocator now;
        zw_mem_get_allocator(domains[i], &now);
        zw_allocator mine = {&k, hook_malloc, hook_calloc, hook_realloc, hook_free};
        cr_assert(same_table(&now, &mine), "domain %d", i);
        for (int j = 0; j < ZW_MEM_NDOMAINS; j++) {
            zw_allocator other;
            zw_mem_get_allocator(domains[j], &other);
            cr_assert(j == i || other.ctx != &k, "setting domain %d changed domain %d", i, j);
        }
        hook_uninstall(&k, domains[i]);
        zw_mem_get_allocator(domains[i], &now);
        cr_assert(same_table(&now, &k.saved), "domain %d: uninstall restores the table", i);
    }
}

/* ---- hooks ---- */

Test(mem_domain, hook_sees_every_call_and_forwards_it)
{
    require_default_domains();
    for (int i = 0; i < ZW_MEM_NDOMAINS; i++) {
        hook k = {.name = 'k'};
        hook_install(&k, domains[i]);
        exercise(domains[i]);
        cr_assert_eq(k.mallocs, 1, "domain %d", i);
        cr_assert_eq(k.callocs, 1, "domain %d", i);
        cr_assert_eq(k.reallocs, 1, "domain %d", i);
        cr_assert_eq(k.frees, 2, "domain %d", i);
        /* the hook of one domain does not see the others */
        exercise(domains[(i + 1) % ZW_MEM_NDOMAINS]);
        cr_assert_eq(k.mallocs, 1, "domain %d saw another domain's call", i);
        hook_uninstall(&k, domains[i]);
        exercise(domains[i]);
        cr_assert_eq(k.mallocs + k.callocs + k.reallocs + k.frees, 5,
                     "domain %d: an uninstalled hook was called", i);
    }
}

Test(mem_domain, hooked_mem_blocks_still_come_from_the_default_heap)
{
    require_default_domains();
    hook k = {.name = 'k'};
    hook_install(&k, ZW_MEM_DOMAIN_MEM);
    void *p = zw_mem_malloc(32);
    cr_assert(zw_heap_owns(zw_mem_default_heap(), p), "the hook forwarded to the default heap");
    zw_mem_free(p);
    hook_uninstall(&k, ZW_MEM_DOMAIN_MEM);
}

Test(mem_domain, hooks_stack_and_unstack_in_order)
{
    require_default_domains();
    char trail[64] = "";
    hook a = {.name = 'a', .trail = trail};
    hook b = {.name = 'b', .trail = trail};
    zw_allocator original;
    zw_mem_get_allocator(ZW_MEM_DOMAIN_MEM, &original);
    hook_install(&a, ZW_MEM_DOMAIN_MEM);
    hook_install(&b, ZW_MEM_DOMAIN_MEM);
    cr_assert_eq(b.saved.ctx, &a, "the second hook saved the first");
    void *p = zw_mem_malloc(10);
    cr_assert_not_null(p);
    zw_mem_free(p);
    cr_assert_str_eq(trail, "baba", "the last hook installed is called first, then the first");
    cr_assert(a.mallocs == 1 && b.mallocs == 1 && a.frees == 1 && b.frees == 1);

    hook_uninstall(&b, ZW_MEM_DOMAIN_MEM); /* the last installed leaves first */
    trail[0] = '\0';
    p = zw_mem_calloc(2, 8);
    zw_mem_free(p);
    cr_assert_str_eq(trail, "aa", "only the first hook is left");
    hook_uninstall(&a, ZW_MEM_DOMAIN_MEM);
    trail[0] = '\0';
    zw_mem_free(zw_mem_malloc(10));
    cr_assert_str_eq(trail, "", "no hook is left");
    zw_allocator now;
    zw_mem_get_allocator(ZW_MEM_DOMAIN_MEM, &now);
    cr_assert(same_table(&now, &original), "the original table is back");
}

/* ---- where blocks come from ---- */

Test(mem_domain, mem_and_obj_blocks_come_from_the_default_heap)
{
    require_default_domains();
    zw_heap *h = zw_mem_default_heap();
    cr_assert_not_null(h);
    cr_assert_eq(zw_mem_default_heap(), h, "one default heap");
    void *m = zw_mem_malloc(100);
    void *o = zw_mem_obj_malloc(100);
    void *mc = zw_mem_calloc(3, 5);
    void *oc = zw_mem_obj_calloc(3, 5);
    void *r = zw_mem_raw_malloc(100);
    cr_assert(zw_heap_owns(h, m));
    cr_assert(zw_heap_owns(h, o));
    cr_assert(zw_heap_owns(h, mc));
    cr_assert(zw_heap_owns(h, oc));
    cr_assert_not(zw_heap_owns(h, r), "raw blocks come from the C library");
    void *ro = zw_mem_raw_realloc(r, 50);
    cr_assert_not(zw_heap_owns(h, ro));
    zw_mem_free(m);
    zw_mem_obj_free(o);
    zw_mem_free(mc);
    zw_mem_obj_free(oc);
    zw_mem_raw_free(ro);
}

Test(mem_domain, default_heap_counts_each_mem_and_obj_block)
{
    require_default_domains();
    zw_heap *h = zw_mem_default_heap();
    zw_mem_default_heap_lock();
    size_t base = zw_heap_allocated_blocks(h);
    zw_mem_default_heap_unlock();
    void *m = zw_mem_malloc(10);
    void *o = zw_mem_obj_malloc(1000);
    void *r = zw_mem_raw_malloc(10);
    zw_mem_default_heap_lock();
    cr_assert_eq(zw_heap_allocated_blocks(h), base + 2, "raw blocks are not the heap's");
    zw_mem_default_heap_unlock();
    zw_mem_free(m);
    zw_mem_obj_free(o);
    zw_mem_raw_free(r);
    zw_mem_default_heap_lock();
    cr_assert_eq(zw_heap_allocated_blocks(h), base);
    zw_mem_default_heap_unlock();
}

Test(mem_domain, zero_byte_requests_give_distinct_pointers_in_every_domain)
{
    for (int i = 0; i < ZW_MEM_NDOMAINS; i++) {
        zw_mem_domain d = domains[i];
        void *a = domain_malloc(d, 0);
        void *b = domain_malloc(d, 0);
        void *c = domain_calloc(d, 0, 0);
        void *e = domain_realloc(d, NULL, 0);
        cr_assert(a != NULL && b != NULL && c != NULL && e != NULL, "domain %d: NULL", i);
        cr_assert(a != b && a != c && b != c && e != a && e != b && e != c,
                  "domain %d: a pointer given twice", i);
        void *f = domain_realloc(d, a, 0);
        cr_assert_not_null(f, "domain %d: realloc(p, 0) is not a free", i);
        domain_free(d, f);
        domain_free(d, b);
        domain_free(d, c);
        domain_free(d, e);
        domain_free(d, NULL);
    }
}

/* ---- threads ---- */

enum { THREADS = 4, ROUNDS = 200000, LIVE = 64 };

typedef struct worker {
    uint32_t seed;
    unsigned char tag; /* written at both ends of this thread's blocks */
    size_t damaged;    /* blocks found changed by someone else */
} worker;

/* Random malloc/free through zw_mem_malloc with up to LIVE blocks alive, each filled with a tag
 * of this thread and checked before it is freed. */
static void *
churn(void *arg)
{
    worker *w = arg;
    unsigned char *live[LIVE] = {0};
    size_t len[LIVE] = {0};
    uint32_t x = w->seed;
    unsigned char tag = w->tag;
    for (int r = 0; r < ROUNDS; r++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        size_t i = x % LIVE;
        if (live[i] != NULL) {
            if (live[i][0] != tag || live[i][len[i] - 1] != tag)
                w->damaged++;
            zw_mem_free(live[i]);
            live[i] = NULL;
        } else {
            len[i] = 1 + (x >> 8) % (x & 0x80000000u ? 2000 : 256);
            live[i] = zw_mem_malloc(len[i]);
            if (live[i] == NULL) {
                w->damaged++;
                continue;
            }
            live[i][0] = live[i][len[i] - 1] = tag;
        }
    }
    for (size_t i = 0; i < LIVE; i++)
        zw_mem_free(live[i]);
    return NULL;
}

Test(mem_domain, default_heap_serves_several_threads_at_once)
{
    require_default_domains();
    zw_heap *h = zw_mem_default_heap();
    void *mine = zw_mem_malloc(16); /* a block of this thread lives through it all */
    zw_mem_default_heap_lock();
    size_t base = zw_heap_allocated_blocks(h);
    size_t base_bytes = zw_heap_allocated_bytes(h);
    zw_mem_default_heap_unlock();
    pthread_t tid[THREADS];
    worker w[THREADS];
    for (int t = 0; t < THREADS; t++) {
        w[t] = (worker){.seed = 0x9E3779B9u * (uint32_t)(t + 1), .tag = (unsigned char)(0xA0 + t)};
        cr_assert_eq(pthread_create(&tid[t], NULL, churn, &w[t]), 0);
    }
    for (int t = 0; t < THREADS; t++) {
        cr_assert_eq(pthread_join(tid[t], NULL), 0);
        cr_assert_eq(w[t].damaged, 0, "thread %d found %zu damaged or missing blocks", t,
                     w[t].damaged);
    }
    zw_mem_default_heap_lock();
    size_t blocks = zw_heap_allocated_blocks(h);
    size_t bytes = zw_heap_allocated_bytes(h);
    zw_mem_default_heap_unlock();
    cr_assert_eq(blocks, base, "blocks: %zu before, %zu after", base, blocks);
    cr_assert_eq(bytes, base_bytes);
    cr_assert(zw_heap_owns(h, mine));
    zw_mem_free(mine);
}
