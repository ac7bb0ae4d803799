/* tests/mem/test_stats.c - what the census says and what the arenas do: memory goes back to
 * the OS when blocks are freed (but for the arena cache, which zw_heap_trim empties), the arena
 * counters follow, new pools come from the fullest arena, per-class figures match a known
 * sequence of allocations, pools hold what fits, and zw_heap_print_stats() prints CPython's
 * sys._debugmallocstats() lines. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zerowaste/zerowaste.h>

#include "zw_test.h"

#define POOLS_PER_ARENA (ZW_MEM_ARENA_SIZE / ZW_MEM_POOL_SIZE)

static zw_mem_stats
census(const zw_heap *h)
{
    zw_mem_stats st;
    zw_heap_stats(h, &st);
    cr_assert_eq(st.arenas_current * ZW_MEM_ARENA_SIZE, zwt_census_total(&st),
                 "census identity broken");
    return st;
}

static size_t
door_mapped(const zw_heap *h)
{
    zw_raw_stats rs;
    zw_raw_get_stats(zw_heap_raw(h), &rs);
    return rs.mapped_bytes;
}

static uintptr_t
pool_of(const void *p)
{
    return (uintptr_t)p & ~(uintptr_t)(ZW_MEM_POOL_SIZE - 1);
}

/* ---- arenas go back ---- */

Test(mem_stats, freed_arenas_go_back_to_the_os_but_for_the_cache)
{
    zw_heap *h = zwt_heap(NULL);
    const size_t baseline = door_mapped(h); /* the heap's own pages */
    zwt_rng rng = {0x57A75};
    const size_t target = (size_t)100 << 20;
    size_t cap = 1 << 16;
    size_t n = 0;
    void **blocks = malloc(cap * sizeof(*blocks));
    while (zw_heap_allocated_bytes(h) < target) {
        if (n == cap)
            blocks = realloc(blocks, (cap *= 2) * sizeof(*blocks));
        blocks[n] = zw_heap_malloc(h, zwt_range(&rng, 1, 512));
        cr_assert_not_null(blocks[n]);
        n++;
    }
    zw_mem_stats peak = census(h);
    cr_assert(peak.arenas_current >= 100, "100 MB in %zu arenas", peak.arenas_current);
    cr_assert_eq(peak.arenas_allocated_total, peak.arenas_current);
    cr_assert_eq(peak.arenas_highwater, peak.arenas_current);
    cr_assert_eq(peak.arenas_reclaimed, 0);
    cr_assert_eq(peak.small_blocks, n);
    cr_assert_eq(peak.mapped_bytes, door_mapped(h));
    cr_assert(door_mapped(h) >= baseline + peak.arenas_current * ZW_MEM_ARENA_SIZE);

    zwt_shuffle(&rng, blocks, n);
    for (size_t i = 0; i < n; i++)
        zw_heap_free(h, blocks[i]);
    free(blocks);

    zw_mem_stats after = census(h);
    cr_assert_eq(after.allocated_blocks, 0);
    cr_assert_eq(zw_heap_allocated_bytes(h), 0);
    cr_assert_eq(after.arenas_current, ZWT_CACHE, "%zu arenas left mapped, the cache holds %d",
                 after.arenas_current, ZWT_CACHE);
    cr_assert(after.arenas_cached <= after.arenas_current);
    cr_assert_eq(after.arenas_allocated_total, peak.arenas_allocated_total);
    cr_assert_eq(after.arenas_highwater, peak.arenas_current);
    cr_assert_eq(after.arenas_reclaimed, peak.arenas_current - ZWT_CACHE);
    /* what stays mapped: the heap, the cache, the map's leaves and the arena records (a few KiB
     * per arena at the highwater mark, at most) */
    size_t kept = door_mapped(h) - baseline - after.map_bytes;
    cr_assert(kept >= ZWT_CACHE * ZW_MEM_ARENA_SIZE &&
                  kept <= ZWT_CACHE * ZW_MEM_ARENA_SIZE + 8192 * after.arenas_highwater,
              "%zu bytes still mapped beyond the heap and its map after freeing everything", kept);

    cr_assert_eq(zw_heap_trim(h), ZWT_CACHE);
    zw_mem_stats trimmed = census(h);
    cr_assert_eq(trimmed.arenas_current, 0);
    cr_assert_eq(trimmed.arenas_cached, 0);
    cr_assert_eq(trimmed.pools_in_use + trimmed.pools_unused, 0);
    cr_assert_eq(trimmed.arenas_reclaimed, trimmed.arenas_allocated_total);
    cr_assert_eq(trimmed.arenas_highwater, peak.arenas_current);
    size_t left = door_mapped(h) - baseline - trimmed.map_bytes;
    cr_assert(left <= 8192 * trimmed.arenas_highwater, "%zu bytes mapped after a trim", left);
    cr_assert_eq(zw_heap_trim(h), 0, "a second trim found something to release");

    /* a new block maps a new arena; the highwater mark stays */
    void *p = zw_heap_malloc(h, 64);
    zw_mem_stats again = census(h);
    cr_assert_eq(again.arenas_current, 1);
    cr_assert_eq(again.arenas_allocated_total, peak.arenas_allocated_total + 1);
    cr_assert_eq(again.arenas_reclaimed, peak.arenas_allocated_total);
    cr_assert_eq(again.arenas_highwater, peak.arenas_current);
    zw_heap_free(h, p);
    zw_heap_destroy(h);
}

/* Allocates `count` 512-byte blocks into `v` and returns the census. */
static zw_mem_stats
fill_512(zw_heap *h, void **v, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        v[i] = zw_heap_malloc(h, 512);
        cr_assert_not_null(v[i]);
    }
    return census(h);
}

Test(mem_stats, arena_cache_setting_bounds_the_free_arenas_kept)
{
    static const int caches[] = {1, 3, 5};
    const size_t per_arena = POOLS_PER_ARENA * zwt_capacity(31);
    const size_t count = 12 * per_arena;
    void **v = malloc(count * sizeof(*v));
    for (size_t k = 0; k < sizeof(caches) / sizeof(caches[0]); k++) {
        zw_heap *h = zwt_heap_cache(NULL, caches[k]);
        zw_mem_stats full = fill_512(h, v, count);
        cr_assert_eq(full.arenas_current, 12);
        for (size_t i = 0; i < count; i++)
            zw_heap_free(h, v[i]);
        zw_mem_stats st = census(h);
        cr_assert_eq(st.arenas_current, (size_t)caches[k], "cache %d: %zu arenas kept", caches[k],
                     st.arenas_current);
        cr_assert_eq(st.arenas_reclaimed, 12 - (size_t)caches[k]);
        cr_assert_eq(zw_heap_trim(h), (size_t)caches[k]);
        cr_assert_eq(census(h).arenas_current, 0);
        zw_heap_destroy(h);
    }
    free(v);
}

/* ---- the fullest arena first ---- */

/* Frees every block of `v` whose pool is one of the first `npools` pools of arena `base` (in
 * address order). */
static void
free_pools_of(zw_heap *h, void **v, size_t count, uintptr_t base, size_t npools)
{
    for (size_t i = 0; i < count; i++) {
        if (v[i] != NULL && zwt_arena_of(v[i]) == base &&
            (pool_of(v[i]) - base) / ZW_MEM_POOL_SIZE < npools) {
            zw_heap_free(h, v[i]);
            v[i] = NULL;
        }
    }
}

Test(mem_stats, new_pools_come_from_the_fullest_arena)
{
    zw_heap *h = zwt_heap(NULL);
    const size_t per_arena = POOLS_PER_ARENA * zwt_capacity(31);
    const size_t count = 3 * per_arena;
    void **v = malloc(count * sizeof(*v));
    zw_mem_stats st = fill_512(h, v, count);
    cr_assert_eq(st.arenas_current, 3);
    cr_assert_eq(st.pools_unused, 0, "three arenas' worth of blocks left %zu pools free",
                 st.pools_unused);
    uintptr_t a = zwt_arena_of(v[0]);
    uintptr_t b = zwt_arena_of(v[per_arena]);
    uintptr_t c = zwt_arena_of(v[2 * per_arena]);
    cr_assert(a != b && b != c && a != c);

    /* a gets 5 free pools, b 63 (it keeps one pool of blocks, so it stays mapped), c 2 */
    free_pools_of(h, v, count, a, 5);
    free_pools_of(h, v, count, b, 63);
    free_pools_of(h, v, count, c, 2);
    st = census(h);
    cr_assert_eq(st.arenas_current, 3);

    /* Pools for a new class come from c (the fullest with a free pool; one of its two may be
     * kept as the 512-byte class's spare), then a, and b only once a is full again. */
    const size_t cap0 = zwt_capacity(0);
    uintptr_t seen[8];
    void **small = malloc(8 * cap0 * sizeof(*small));
    for (size_t k = 0; k < 8; k++) {
        for (size_t i = 0; i < cap0; i++) {
            small[k * cap0 + i] = zw_heap_malloc(h, 16);
            cr_assert_not_null(small[k * cap0 + i]);
            cr_assert_eq(pool_of(small[k * cap0 + i]), pool_of(small[k * cap0]),
                         "pool %zu: block %zu went to another pool", k, i);
        }
        seen[k] = zwt_arena_of(small[k * cap0]);
    }
    size_t k = 0;
    while (k < 8 && seen[k] == c)
        k++;
    cr_assert(k >= 1 && k <= 2, "the first new pool came from arena %s, not the fullest",
              seen[0] == a   ? "a (5 free)"
              : seen[0] == b ? "b (63 free)"
                             : "c");
    for (size_t j = 0; j < 5; j++, k++)
        cr_assert_eq(seen[k], a, "new pool %zu came from %s while a had free pools", k,
                     seen[k] == b ? "b, the emptiest" : "c");
    for (; k < 8; k++)
        cr_assert_eq(seen[k], b, "new pool %zu after a and c were full", k);
    cr_assert_eq(census(h).arenas_current, 3, "an arena was mapped while three had room");

    for (size_t i = 0; i < 8 * cap0; i++)
        zw_heap_free(h, small[i]);
    for (size_t i = 0; i < count; i++)
        zw_heap_free(h, v[i]);
    cr_assert_eq(zw_heap_allocated_blocks(h), 0);
    free(small);
    free(v);
    zw_heap_destroy(h);
}

/* ---- per-class figures ---- */

Test(mem_stats, class_figures_after_1000_blocks_of_100_bytes)
{
    zw_heap *h = zwt_heap(NULL);
    enum { N = 1000 };
    void *v[N];
    for (int i = 0; i < N; i++)
        v[i] = zw_heap_malloc(h, 100);
    const unsigned cls = 6; /* 97..112 bytes */
    const size_t cap = zwt_capacity(cls);
    const size_t pools = (N + cap - 1) / cap;
    zw_mem_stats st = census(h);
    for (unsigned c = 0; c < ZW_MEM_NCLASSES; c++) {
        const zw_mem_class_stats *cs = &st.classes[c];
        cr_assert_eq(cs->block_size, 16 * (c + 1));
        if (c == cls)
            continue;
        cr_assert(cs->pools == 0 && cs->blocks_in_use == 0 && cs->blocks_free == 0,
                  "class %u has %zu pools, %zu blocks", c, cs->pools, cs->blocks_in_use);
    }
    cr_assert_eq(st.classes[cls].pools, pools, "%zu pools for 1000 blocks of %zu per pool",
                 st.classes[cls].pools, cap);
    cr_assert_eq(st.classes[cls].blocks_in_use, N);
    cr_assert_eq(st.classes[cls].blocks_free, pools * cap - N);
    cr_assert_eq(st.pools_in_use, pools);
    cr_assert_eq(st.pools_unused, POOLS_PER_ARENA - pools);
    cr_assert_eq(st.small_blocks, N);
    cr_assert_eq(st.bytes_in_blocks, N * 112);
    cr_assert_eq(st.bytes_available, (pools * cap - N) * 112);
    cr_assert_eq(st.bytes_quantization, pools * zwt_quantization(cls));
    cr_assert_eq(st.bytes_unused_pools, (POOLS_PER_ARENA - pools) * ZW_MEM_POOL_SIZE);
    cr_assert_eq(st.arenas_current, 1);
    cr_assert_eq(st.big_blocks + st.big_bytes, 0);
    cr_assert_eq(st.allocated_blocks, N);
    cr_assert_eq(zw_heap_allocated_bytes(h), N * 112);

    /* every other block freed: no pool empties */
    for (int i = 0; i < N; i += 2)
        zw_heap_free(h, v[i]);
    st = census(h);
    cr_assert_eq(st.classes[cls].pools, pools);
    cr_assert_eq(st.classes[cls].blocks_in_use, N / 2);
    cr_assert_eq(st.classes[cls].blocks_free, pools * cap - N / 2);
    cr_assert_eq(zw_heap_allocated_bytes(h), N / 2 * 112);

    /* and a big block is counted apart */
    void *big = zw_heap_malloc(h, 1000);
    st = census(h);
    cr_assert_eq(st.big_blocks, 1);
    cr_assert_eq(st.big_bytes, 1000);
    cr_assert_eq(st.allocated_blocks, N / 2 + 1);
    cr_assert_eq(zw_heap_allocated_bytes(h), N / 2 * 112 + 1000);
    zw_heap_free(h, big);

    for (int i = 1; i < N; i += 2)
        zw_heap_free(h, v[i]);
    st = census(h);
    cr_assert_eq(st.classes[cls].blocks_in_use, 0);
    cr_assert(st.classes[cls].pools <= 1, "%zu empty pools still serve the class",
              st.classes[cls].pools); /* one may stay as the class's spare */
    cr_assert_eq(st.allocated_blocks, 0);
    zw_heap_destroy(h);
}

/* A pool is 16 KiB of blocks, carved in address order: 16384 / size of them, no more. */
Test(mem_stats, a_pool_holds_16384_over_size_blocks_in_address_order)
{
    zw_heap *h = zwt_heap(NULL);
    for (unsigned c = 0; c < ZW_MEM_NCLASSES; c++) {
        size_t size = 16 * ((size_t)c + 1);
        size_t cap = zwt_capacity(c);
        unsigned char **v = malloc((cap + 1) * sizeof(*v));
        for (size_t i = 0; i < cap; i++) {
            /* the smallest request of the class, or 0 for class 0 */
            v[i] = zw_heap_malloc(h, c == 0 ? 0 : size - 15);
            cr_assert_not_null(v[i]);
            uintptr_t pool = pool_of(v[0]);
            cr_assert_eq((uintptr_t)v[i], pool + i * size,
                         "class %u: block %zu of a fresh pool is not the next slot", c, i);
        }
        zw_mem_stats st = census(h);
        cr_assert_eq(st.classes[c].pools, 1, "class %u: %zu blocks took %zu pools", c, cap,
                     st.classes[c].pools);
        cr_assert_eq(st.classes[c].blocks_free, 0);
        v[cap] = zw_heap_malloc(h, size);
        cr_assert_neq(pool_of(v[cap]), pool_of(v[0]), "class %u: block %zu fit in a full pool", c,
                      cap);
        st = census(h);
        cr_assert_eq(st.classes[c].pools, 2);
        cr_assert_eq(st.classes[c].blocks_free, cap - 1);
        for (size_t i = 0; i <= cap; i++)
            zw_heap_free(h, v[i]);
        free(v);
    }
    cr_assert_eq(zw_heap_allocated_blocks(h), 0);
    zw_heap_destroy(h);
}

/* ---- the printout ---- */

/* The text zw_heap_print_stats() writes (malloc'ed). */
static char *
printed(const zw_heap *h)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cr_assert_not_null(f);
    zw_heap_print_stats(h, f);
    cr_assert_eq(fclose(f), 0);
    return text;
}

/* The line of `text` that starts with `start`, copied into `line`; false if none. */
static bool
find_line(const char *text, const char *start, char *line, size_t size)
{
    for (const char *p = text; p != NULL && *p != '\0';) {
        const char *end = strchr(p, '\n');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        if (strncmp(p, start, strlen(start)) == 0) {
            snprintf(line, size, "%.*s", (int)len, p);
            return true;
        }
        p = end != NULL ? end + 1 : NULL;
    }
    return false;
}

/* A line "label ... = value": the label left in 35 columns, '=' in column 36, then the value
 * (with thousands separators) and maybe a note. */
static void
assert_has_line(const char *text, const char *label, const char *value)
{
    char line[256];
    cr_assert(find_line(text, label, line, sizeof(line)), "no line '%s' in:\n%s", label, text);
    cr_assert(strlen(line) > 36 && line[35] == '=', "'=' not in column 36 of\n'%s'", line);
    for (size_t i = strlen(label); i < 35; i++)
        cr_assert_eq(line[i], ' ', "label not padded to 35 columns in\n'%s'", line);
    const char *v = line + 36;
    while (*v == ' ')
        v++;
    cr_assert(strncmp(v, value, strlen(value)) == 0 &&
                  (v[strlen(value)] == '\0' || v[strlen(value)] == ' '),
              "line\n'%s'\ndoes not say %s", line, value);
}

Test(mem_stats, print_stats_writes_cpython_shaped_lines)
{
    zw_heap *h = zwt_heap(NULL);
    /* two full arenas of 512-byte blocks and one more block: three arenas */
    const size_t per_arena = POOLS_PER_ARENA * zwt_capacity(31);
    const size_t count = 2 * per_arena + 1;
    void **v = malloc(count * sizeof(*v));
    fill_512(h, v, count);
    enum { N = 1000 };
    void *w[N];
    for (int i = 0; i < N; i++)
        w[i] = zw_heap_malloc(h, 100);
    zw_mem_stats st = census(h);
    cr_assert_eq(st.arenas_current, 3);

    char *text = printed(h);
    cr_assert(strncmp(text, "Small block threshold = 512, in 32 size classes.\n\n", 50) == 0,
              "first line of:\n%s", text);
    cr_assert_not_null(strstr(text, "\nclass   size   num pools   blocks in use  avail blocks\n"
                                    "-----   ----   ---------   -------------  ------------\n"));
    char line[256];
    char want[128];
    const size_t cap6 = zwt_capacity(6);
    const size_t pools6 = (N + cap6 - 1) / cap6;
    snprintf(want, sizeof(want), "%5u %6u %11zu %15u %13zu", 6u, 112u, pools6, (unsigned)N,
             pools6 * cap6 - N);
    cr_assert(find_line(text, want, line, sizeof(line)), "no line '%s' in:\n%s", want, text);
    snprintf(want, sizeof(want), "%5u %6u %11zu %15zu %13zu", 31u, 512u, st.classes[31].pools,
             count, st.classes[31].pools * zwt_capacity(31) - count);
    cr_assert(find_line(text, want, line, sizeof(line)), "no line '%s' in:\n%s", want, text);
    cr_assert(!find_line(text, "    0     16", line, sizeof(line)), "a class with no pool");

    assert_has_line(text, "# arenas allocated total", "3");
    assert_has_line(text, "# arenas reclaimed", "0");
    assert_has_line(text, "# arenas highwater mark", "3");
    assert_has_line(text, "# arenas allocated current", "3");
    assert_has_line(text, "3 arenas * 1048576 bytes/arena", "3,145,728");
    assert_has_line(text, "Total", "3,145,728");
    free(text);

    /* after freeing, the counts move; large figures keep their separators */
    for (size_t i = 0; i < count; i++)
        zw_heap_free(h, v[i]);
    for (int i = 0; i < N; i++)
        zw_heap_free(h, w[i]);
    zw_heap_trim(h);
    v[0] = zw_heap_malloc(h, 8);
    text = printed(h);
    assert_has_line(text, "# arenas allocated total", "4");
    assert_has_line(text, "# arenas reclaimed", "3");
    assert_has_line(text, "# arenas highwater mark", "3");
    assert_has_line(text, "# arenas allocated current", "1");
    assert_has_line(text, "1 arenas * 1048576 bytes/arena", "1,048,576");
    assert_has_line(text, "Total", "1,048,576");
    free(text);
    zw_heap_free(h, v[0]);
    free(v);
    zw_heap_destroy(h);
}

/* CPython's printone() writes the label padded to 35 columns, '=', then the value right-aligned
 * in the next 21 columns (so it ends in column 57); see reference/cpython-memory.md 1.9 and its
 * verified lines, e.g. "Total" + 30 spaces + "=" + "            4,194,304". */
Test(mem_stats, print_stats_value_column_matches_cpython)
{
    zw_heap *h = zwt_heap(NULL);
    void *p = zw_heap_malloc(h, 8);
    char *text = printed(h);
    static const char *const labels[] = {"# arenas allocated total", "Total"};
    static const char *const values[] = {"1", "1,048,576"};
    for (size_t k = 0; k < 2; k++) {
        char want[128];
        char line[256];
        snprintf(want, sizeof(want), "%-35s=%21s", labels[k], values[k]);
        cr_assert(find_line(text, labels[k], line, sizeof(line)));
        cr_expect(strncmp(line, want, strlen(want)) == 0,
                  "CPython prints\n'%s'\nzerowaste prints\n'%s'", want, line);
    }
    free(text);
    zw_heap_free(h, p);
    zw_heap_destroy(h);
}
