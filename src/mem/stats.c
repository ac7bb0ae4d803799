/* mem/stats.c - the census of a heap (zw_heap_stats) and its printout in the shape of CPython's
 * sys._debugmallocstats(). Walks every carved pool: O(arenas * 64), for reports, not hot paths.
 * See docs/mem.md#stats. */
#include <string.h>

#include <zerowaste/mem.h>

#include "mem_internal.h"

static void
census_arena(const arena *a, void *ctx)
{
    zw_mem_stats *st = ctx;
    st->pools_unused += a->nfreepools;
    for (unsigned i = 0; i < a->nextpool; i++) {
        const pool *p = &a->pools[i];
        if (p->nused == 0)
            continue; /* empty (counted in nfreepools) or a spare (counted below) */
        size_t size = CLASS_SIZE(p->cls);
        size_t capacity = POOL_SIZE / size;
        zw_mem_class_stats *c = &st->classes[p->cls];
        c->pools++;
        c->blocks_in_use += p->nused;
        c->blocks_free += capacity - p->nused;
        st->pools_in_use++;
        st->bytes_quantization += POOL_SIZE % size;
    }
}

void
zw_heap_stats(const zw_heap *h, zw_mem_stats *st)
{
    memset(st, 0, sizeof(*st));
    for (unsigned c = 0; c < ZW_MEM_NCLASSES; c++)
        st->classes[c].block_size = CLASS_SIZE(c);
    zwi_mem_for_each_arena(h, census_arena, st);
    for (unsigned c = 0; c < ZW_MEM_NCLASSES; c++) {
        const pool *p = h->used[c];
        if (p == NULL || p->nused != 0)
            continue; /* a spare serves its class with no block in use (see mem_internal.h) */
        size_t size = CLASS_SIZE(c);
        st->classes[c].pools++;
        st->classes[c].blocks_free += POOL_SIZE / size;
        st->pools_in_use++;
        st->bytes_quantization += POOL_SIZE % size;
    }
    for (unsigned c = 0; c < ZW_MEM_NCLASSES; c++) {
        const zw_mem_class_stats *cs = &st->classes[c];
        st->small_blocks += cs->blocks_in_use;
        st->bytes_in_blocks += cs->blocks_in_use * cs->block_size;
        st->bytes_available += cs->blocks_free * cs->block_size;
    }
    st->arenas_allocated_total = h->arenas_total;
    st->arenas_current = h->arenas_current;
    st->arenas_reclaimed = h->arenas_total - h->arenas_current;
    st->arenas_highwater = h->arenas_highwater;
    st->arenas_cached = h->arenas_idle;
    st->bytes_unused_pools = st->pools_unused * POOL_SIZE;
    st->bytes_arena_records = h->nrecords * RECORD_SIZE;
    st->big_blocks = h->nbig;
    st->big_bytes = h->big_bytes;
    st->allocated_blocks = st->small_blocks + h->nbig;
    st->map_bytes = h->map_bytes;
    zw_raw_stats rs;
    zw_raw_get_stats(h->raw, &rs);
    st->mapped_bytes = rs.mapped_bytes;
    st->debug_errors = h->debug_errors;
}

/* Prints `label` left in 35 columns, '=', then `value` right in 21 with thousands commas,
 * as CPython's printone(). */
static void
print_line(FILE *out, const char *label, size_t value, const char *note)
{
    char digits[32];
    char grouped[48];
    int len = snprintf(digits, sizeof(digits), "%zu", value);
    int j = 0;
    for (int i = 0; i < len; i++) {
        if (i > 0 && (len - i) % 3 == 0)
            grouped[j++] = ',';
        grouped[j++] = digits[i];
    }
    grouped[j] = '\0';
    fprintf(out, "%-35s=%21s%s%s\n", label, grouped, note[0] ? "      " : "", note);
}

void
zw_heap_print_stats(const zw_heap *h, FILE *out)
{
    zw_mem_stats st;
    zw_heap_stats(h, &st);
    char label[64];

    fprintf(out, "Small block threshold = %d, in %d size classes.\n\n", ZW_MEM_SMALL_MAX,
            ZW_MEM_NCLASSES);
    fprintf(out, "class   size   num pools   blocks in use  avail blocks\n");
    fprintf(out, "-----   ----   ---------   -------------  ------------\n");
    for (unsigned c = 0; c < ZW_MEM_NCLASSES; c++) {
        const zw_mem_class_stats *cs = &st.classes[c];
        if (cs->pools == 0)
            continue;
        fprintf(out, "%5u %6zu %11zu %15zu %13zu\n", c, cs->block_size, cs->pools,
                cs->blocks_in_use, cs->blocks_free);
    }
    fprintf(out, "\n");
    print_line(out, "# arenas allocated total", st.arenas_allocated_total, "");
    print_line(out, "# arenas reclaimed", st.arenas_reclaimed, "(allocated total - current)");
    print_line(out, "# arenas highwater mark", st.arenas_highwater, "");
    print_line(out, "# arenas allocated current", st.arenas_current, "");
    print_line(out, "# arenas cached (wholly free)", st.arenas_cached, "");
    snprintf(label, sizeof(label), "%zu arenas * %zu bytes/arena", st.arenas_current,
             (size_t)ZW_MEM_ARENA_SIZE);
    print_line(out, label, st.arenas_current * ZW_MEM_ARENA_SIZE, "");
    fprintf(out, "\n");
    print_line(out, "# bytes in allocated blocks", st.bytes_in_blocks,
               "(sum blocks_in_use * size)");
    print_line(out, "# bytes in available blocks", st.bytes_available,
               "(free + never-carved slots of used pools)");
    snprintf(label, sizeof(label), "%zu unused pools * %zu bytes", st.pools_unused,
             (size_t)ZW_MEM_POOL_SIZE);
    print_line(out, label, st.bytes_unused_pools, "(freed + never-carved pools)");
    print_line(out, "# bytes lost to pool headers", 0, "(kept in arena records, below)");
    print_line(out, "# bytes lost to quantization", st.bytes_quantization,
               "(pools * (16384 % size))");
    print_line(out, "# bytes lost to arena alignment", 0, "(arenas are 1 MiB aligned)");
    print_line(out, "Total",
               st.bytes_in_blocks + st.bytes_available + st.bytes_unused_pools +
                   st.bytes_quantization,
               "(must equal arenas * 1 MiB)");
    fprintf(out, "\n");
    print_line(out, "# big blocks (> 512 bytes)", st.big_blocks, "");
    print_line(out, "# bytes in big blocks", st.big_bytes, "(requested)");
    print_line(out, "# allocated blocks", st.allocated_blocks, "(small + big)");
    print_line(out, "# bytes in arena records", st.bytes_arena_records,
               "(a page per arena: pool headers)");
    print_line(out, "# bytes lost to arena map", st.map_bytes, "(mapped; touched sparsely)");
    if (h->debug)
        print_line(out, "# debug errors reported", st.debug_errors, "");
}
