/* tests/trace/test_domains.c - the engine's traced bytes and their peak: every domain's, as
 * tracemalloc counts them, unless the tracer counts the default domain only (the preload library,
 * whose mmap domain is counted apart from the heap): then other domains' traces are kept, found
 * and listed, and leave the heap's bytes and peak alone. */
#include <criterion/criterion.h>
#include <stdint.h>

#include "trace_internal.h"

static const uintptr_t frames[2] = {0x1000, 0x2000};

static size_t
current(zwi_tracer *t, size_t *peak)
{
    size_t cur = 0;
    zwi_tracer_traced_memory(t, &cur, peak);
    return cur;
}

static int
count_domain_1(void *ctx, const zwi_trace_rec *rec)
{
    *(size_t *)ctx += rec->domain == 1 ? rec->size : 0;
    return 0;
}

Test(trace_domains, every_domain_counts_by_default)
{
    zwi_tracer *t = zwi_tracer_new(4);
    cr_assert_not_null(t);
    cr_assert_eq(zwi_tracer_add(t, ZW_TRACE_DEFAULT_DOMAIN, 0x10000, 100, frames, 2, 2), 0);
    cr_assert_eq(zwi_tracer_add(t, 1, 0x20000, 4096, frames, 2, 2), 0);
    size_t peak;
    cr_assert_eq(current(t, &peak), 4196);
    cr_assert_eq(peak, 4196);
    zwi_tracer_free(t);
}

Test(trace_domains, counting_the_default_domain_only_keeps_the_others_apart)
{
    zwi_tracer *t = zwi_tracer_new(4);
    cr_assert_not_null(t);
    zwi_tracer_count_default_only(t);
    cr_assert_eq(zwi_tracer_add(t, ZW_TRACE_DEFAULT_DOMAIN, 0x10000, 100, frames, 2, 2), 0);
    cr_assert_eq(zwi_tracer_add(t, 1, 0x20000, 4096, frames, 2, 2), 0);
    cr_assert_eq(zwi_tracer_add(t, 1, 0x10000, 8192, frames, 2, 2), 0); /* same address */
    size_t peak;
    cr_assert_eq(current(t, &peak), 100);
    cr_assert_eq(peak, 100);

    /* kept, found and listed all the same */
    zwi_trace_rec rec;
    cr_assert(zwi_tracer_lookup(t, 1, 0x20000, &rec));
    cr_assert_eq(rec.size, 4096);
    size_t listed = 0;
    cr_assert_eq(zwi_tracer_foreach(t, count_domain_1, &listed), 0);
    cr_assert_eq(listed, 4096 + 8192);

    /* split as munmap does: removed, then its pieces restored; the heap's bytes never move */
    cr_assert(zwi_tracer_remove(t, 1, 0x20000, &rec));
    rec.size = 1024;
    cr_assert_eq(zwi_tracer_restore(t, 0x20000, &rec), 0);
    cr_assert_eq(zwi_tracer_restore(t, 0x20c00, &rec), 0);
    cr_assert_eq(current(t, NULL), 100);
    cr_assert(zwi_tracer_remove(t, ZW_TRACE_DEFAULT_DOMAIN, 0x10000, NULL));
    cr_assert_eq(current(t, &peak), 0);
    cr_assert_eq(peak, 100);
    cr_assert(zwi_tracer_lookup(t, 1, 0x10000, &rec), "the other domain's trace stays");
    zwi_tracer_free(t);
}
