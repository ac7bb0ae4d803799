/* tests/trace/test_util.c - the trace layer's small containers (src/trace/trace_util.h), which
 * the zw command builds its tables with too: the string table keyed by byte strings that may hold
 * NULs (dense ids in insertion order, lengths kept), the byte buffer (little-endian integers,
 * printf), and both under fault injection: a failed request is reported and leaks nothing. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include <zerowaste/raw.h>

#include "trace_util.h"

Test(trace_util, strtab_keys_may_hold_nul_bytes)
{
    zw_raw *raw = zw_raw_new(NULL);
    zwi_strtab st;
    zwi_strtab_init(&st, raw);
    static const char a[] = {'a', '\0', 'b'};
    static const char b[] = {'a', '\0', 'c'};
    uint32_t ia, ib, ia2, ishort;
    const char *sa = zwi_strtab_add(&st, a, sizeof(a), &ia);
    const char *sb = zwi_strtab_add(&st, b, sizeof(b), &ib);
    const char *ss = zwi_strtab_add(&st, "a", 1, &ishort);
    cr_assert(sa != NULL && sb != NULL && ss != NULL);
    cr_assert_eq(ia, 0);
    cr_assert_eq(ib, 1, "a key differing after a NUL is another key");
    cr_assert_eq(ishort, 2, "a prefix up to a NUL is another key");
    cr_assert_eq(zwi_strtab_add(&st, a, sizeof(a), &ia2), sa, "an equal key is found again");
    cr_assert_eq(ia2, 0);
    cr_assert_eq(zwi_strtab_len(sa), 3);
    cr_assert_eq(zwi_strtab_len(ss), 1);
    cr_assert_eq(memcmp(sb, b, sizeof(b)), 0);
    cr_assert_eq(sb[3], '\0', "stored keys end with a NUL");
    cr_assert_eq(zwi_strtab_index(&st, sb), 1);
    cr_assert_eq(st.count, 3);
    cr_assert_null(zwi_strtab_add(&st, NULL, 0, &ia2));
    cr_assert_eq(ia2, UINT32_MAX);
    zwi_strtab_release(&st);
    zw_raw_stats stats;
    zw_raw_get_stats(raw, &stats);
    cr_assert_eq(stats.blocks, 0, "released: %zu blocks left", stats.blocks);
    zw_raw_destroy(raw);
}

Test(trace_util, strtab_ids_stay_dense_across_growth)
{
    zw_raw *raw = zw_raw_new(NULL);
    zwi_strtab st;
    zwi_strtab_init(&st, raw);
    for (uint64_t k = 0; k < 5000; k++) { /* binary keys, as the report's frame records */
        uint32_t id;
        cr_assert_not_null(zwi_strtab_add(&st, (const char *)&k, sizeof(k), &id));
        cr_assert_eq(id, k);
    }
    for (uint64_t k = 0; k < 5000; k += 7) {
        uint32_t id;
        const char *s = zwi_strtab_add(&st, (const char *)&k, sizeof(k), &id);
        cr_assert_eq(id, k, "key %llu: id %u", (unsigned long long)k, id);
        cr_assert_eq(((uintptr_t)s) % 8, 0, "record keys are 8-byte aligned");
    }
    cr_assert_eq(st.count, 5000);
    zwi_strtab_release(&st);
    zw_raw_destroy(raw);
}

Test(trace_util, cbuf_writes_integers_bytes_and_text)
{
    zwi_cbuf b = {.raw = zw_raw_new(NULL)};
    zwi_cbuf_put(&b, 0x0102030405060708ull, 8);
    zwi_cbuf_put(&b, 0xabcd, 2);
    zwi_cbuf_bytes(&b, "xy", 2);
    zwi_cbuf_printf(&b, " %d-%s", 42, "z");
    static const unsigned char want[] = {8,    7,   6,   5,   4,   3,   2,   1,  0xcd,
                                         0xab, 'x', 'y', ' ', '4', '2', '-', 'z'};
    cr_assert_eq(b.len, sizeof(want));
    cr_assert_eq(memcmp(b.data, want, sizeof(want)), 0);
    cr_assert_not(b.failed);
    zw_raw *raw = b.raw;
    zwi_cbuf_release(&b);
    zw_raw_destroy(raw);
}

Test(trace_util, failed_requests_are_reported_and_leak_nothing)
{
    zw_raw *raw = zw_raw_new(NULL);
    for (long n = 0;; n++) { /* fail request n; stop once a run never reaches it */
        zwi_strtab st;
        zwi_strtab_init(&st, raw);
        zwi_cbuf b = {.raw = raw};
        zw_raw_fail_nth(raw, n);
        bool ok = true;
        for (uint32_t k = 0; k < 100 && ok; k++) {
            uint32_t id;
            ok = zwi_strtab_add(&st, (const char *)&k, sizeof(k), &id) != NULL && id == k;
        }
        for (int k = 0; k < 1000; k++)
            zwi_cbuf_printf(&b, "%d,", k);
        bool fired = zw_raw_fault_fired(raw);
        zw_raw_fail_nth(raw, -1);
        cr_assert(ok || fired, "failed with no fault injected (n=%ld)", n);
        cr_assert(!b.failed || fired);
        if (b.failed)
            cr_assert(ok, "one fault failed both containers (n=%ld)", n);
        zwi_cbuf_release(&b);
        zwi_strtab_release(&st);
        zw_raw_stats stats;
        zw_raw_get_stats(raw, &stats);
        cr_assert_eq(stats.blocks, 0, "%zu blocks left when request %ld failed", stats.blocks, n);
        if (!fired)
            break;
    }
    zw_raw_destroy(raw);
}
