/* mem/debug.c - debug mode (ZW_MALLOC=debug or ZW_HEAP_DEBUG), in the manner of
 * PYTHONMALLOC=debug. Every block handed out is wrapped in a layout of our own, placed inside an
 * ordinary block of heap.c:
 *
 *   offset 0   8 bytes  guard 0xFB (the pool's free-list link once freed)
 *          8   8 bytes  requested size n
 *         16   8 bytes  serial number (1 for the heap's first block)
 *         24   1 byte   state: 'A' allocated, 'F' freed
 *         25   7 bytes  guard 0xFB
 *         32   n bytes  the caller's data: 0xCB when fresh, 0xDB once freed
 *       32+n   to the end of the underlying block (at least 16 bytes): guard 0xFB
 *
 * A free checks the state byte (double free), the leading guard (underrun) and the trailing
 * guard (overrun), then fills the data and the tail with 0xDB. Pools of a debug heap are filled
 * with 0xDB when carved, so every block a pool hands out must read 0xDB from offset 32 on: a
 * changed byte is a write after free. Freed big blocks wait in a quarantine of 16 before going
 * back to raw, for the same checks. Each error prints one report, then aborts, or is counted
 * when the heap has ZW_HEAP_DEBUG_CONTINUE. See docs/mem.md#debug. */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zerowaste/mem.h>

#include "mem_internal.h"

#define DBG_HEAD       32 /* bytes before the caller's data */
#define DBG_TAIL       16 /* guard bytes after it, at least */
#define OFF_SIZE       8
#define OFF_SERIAL     16
#define OFF_STATE      24
#define STATE_ALLOC    'A'
#define STATE_FREED    'F'
#define DUMP_MAX       16 /* guard bytes listed one per line in a report */

/* A debug block as found from the caller's pointer. */
typedef struct dblock {
    char *base;   /* start of the underlying block */
    size_t usize; /* bytes of the underlying block */
    bool big;     /* the underlying block is a big block (else a pool block) */
} dblock;

static size_t
load_size(const char *base, size_t off)
{
    size_t v;
    memcpy(&v, base + off, sizeof(v));
    return v;
}

static void
store_size(char *base, size_t off, size_t v)
{
    memcpy(base + off, &v, sizeof(v));
}

/* ---- reports ---- */

static FILE *
out_of(const zw_heap *h)
{
    return h->report != NULL ? h->report : stderr;
}

/* "(10 bytes requested, serial 7, 64-byte class)" for the block at `b`. */
static void
print_block_desc(FILE *out, const dblock *b)
{
    uint64_t serial;
    memcpy(&serial, b->base + OFF_SERIAL, sizeof(serial));
    fprintf(out, "(%zu bytes requested, serial %" PRIu64 ", ", load_size(b->base, OFF_SIZE),
            serial);
    if (b->big)
        fprintf(out, "big block)\n");
    else
        fprintf(out, "%zu-byte class)\n", b->usize);
}

/* Lists guard bytes at `at` that should all be `want`: the first DUMP_MAX, then any changed
 * one further on, each as "at <label>+i" (or "at p-k" for the leading guard, `before` set). */
static void
dump_guard(FILE *out, const char *label, const unsigned char *at, size_t len, int want,
           bool before)
{
    size_t hidden = 0;
    for (size_t i = 0; i < len; i++) {
        bool changed = at[i] != want;
        if (i >= DUMP_MAX && !changed) {
            hidden++;
            continue;
        }
        if (before)
            fprintf(out, "        at p-%zu: 0x%02x%s\n", len - i, at[i], changed ? " *** CHANGED" : "");
        else
            fprintf(out, "        at %s+%zu: 0x%02x%s\n", label, i, at[i], changed ? " *** CHANGED" : "");
    }
    if (hidden > 0)
        fprintf(out, "        (%zu more bytes as expected)\n", hidden);
}

/* The first and last 8 of the `n` data bytes as CPython shows them (none if n is 0), then
 * where the block was allocated (if `data` is set); then abort, or count the error and go on. */
static void
report_end(zw_heap *h, const unsigned char *data, size_t n)
{
    FILE *out = out_of(h);
    if (data != NULL) {
        if (n > 0) {
            fprintf(out, "    data at %p:", (const void *)data);
            size_t head = n <= 16 ? n : 8;
            for (size_t i = 0; i < head; i++)
                fprintf(out, " %02x", data[i]);
            if (n > 16) {
                fprintf(out, " ...");
                for (size_t i = n - 8; i < n; i++)
                    fprintf(out, " %02x", data[i]);
            }
            fprintf(out, "\n");
        }
        if (!zwi_mem_traceback(data, out))
            fprintf(out, "    start tracing (zw_trace_start) to see where the block was "
                         "allocated\n");
    }
    fflush(out);
    h->debug_errors++;
    if (!(h->flags & ZW_HEAP_DEBUG_CONTINUE))
        abort();
}

static void
report_foreign(zw_heap *h, const char *verb, const void *p, const char *why)
{
    fprintf(out_of(h), "zw: mem: %s of %p, %s\n", verb, p, why);
    report_end(h, NULL, 0);
}

/* ---- the set of big blocks ---- */

#define BIGSET_GONE ((big_header *)1)

static size_t
bigset_slot(const zw_heap *h, const big_header *hdr)
{
    uint64_t x = (uint64_t)(uintptr_t)hdr >> 4;
    return (size_t)((x * 0x9E3779B97F4A7C15ULL) >> 20) & (h->bigset_cap - 1);
}

static bool
bigset_contains(const zw_heap *h, const big_header *hdr)
{
    if (h->bigset_cap == 0)
        return false;
    for (size_t i = bigset_slot(h, hdr);; i = (i + 1) & (h->bigset_cap - 1)) {
        if (h->bigset[i] == hdr)
            return true;
        if (h->bigset[i] == NULL)
            return false;
    }
}

/* Rebuilds the set with twice the live entries' room (or the first 512 slots). */
static int
bigset_grow(zw_heap *h)
{
    size_t live = 0;
    for (size_t i = 0; i < h->bigset_cap; i++)
        live += h->bigset[i] != NULL && h->bigset[i] != BIGSET_GONE;
    size_t cap = 512;
    while (cap < 4 * (live + 1))
        cap *= 2;
    big_header **slots = zw_raw_map(h->raw, cap * sizeof(*slots), 0);
    if (slots == NULL)
        return -1;
    big_header **old = h->bigset;
    size_t old_cap = h->bigset_cap;
    h->bigset = slots;
    h->bigset_cap = cap;
    h->bigset_used = 0;
    for (size_t i = 0; i < old_cap; i++) {
        big_header *hdr = old[i];
        if (hdr == NULL || hdr == BIGSET_GONE)
            continue;
        size_t j = bigset_slot(h, hdr);
        while (slots[j] != NULL)
            j = (j + 1) & (cap - 1);
        slots[j] = hdr;
        h->bigset_used++;
    }
    if (old != NULL)
        zw_raw_unmap(h->raw, old, old_cap * sizeof(*old));
    return 0;
}

static int
bigset_add(zw_heap *h, big_header *hdr)
{
    if (2 * (h->bigset_used + 1) > h->bigset_cap && bigset_grow(h) != 0)
        return -1;
    size_t i = bigset_slot(h, hdr);
    while (h->bigset[i] != NULL && h->bigset[i] != BIGSET_GONE)
        i = (i + 1) & (h->bigset_cap - 1);
    if (h->bigset[i] == NULL)
        h->bigset_used++;
    h->bigset[i] = hdr;
    return 0;
}

static void
bigset_remove(zw_heap *h, const big_header *hdr)
{
    for (size_t i = bigset_slot(h, hdr); h->bigset[i] != NULL; i = (i + 1) & (h->bigset_cap - 1)) {
        if (h->bigset[i] == hdr) {
            h->bigset[i] = BIGSET_GONE;
            return;
        }
    }
    ZW_ASSERT(!"a big block of a debug heap is missing from its set");
}

/* Checks the quarantine and gives the set's pages back (zw_heap_destroy, zw_heap_trim). */
void
zwi_mem_debug_release(zw_heap *h)
{
    zwi_mem_debug_flush_quarantine(h);
    if (h->bigset != NULL)
        zw_raw_unmap(h->raw, h->bigset, h->bigset_cap * sizeof(*h->bigset));
    h->bigset = NULL;
    h->bigset_cap = h->bigset_used = 0;
}

/* ---- finding a block ---- */

/* Finds the debug block whose data is at `p`; 0, or -1 after reporting why it is none. */
static int
find_block(zw_heap *h, const char *verb, char *p, dblock *b)
{
    if (((uintptr_t)p & (ZW_MEM_ALIGNMENT - 1)) != 0) {
        report_foreign(h, verb, p, "a pointer not from this heap (misaligned)");
        return -1;
    }
    char *base = p - DBG_HEAD;
    arena *a = zwi_mem_arena_of(h, p);
    if (a != NULL) {
        pool *pl = zwi_mem_pool_of(a, p);
        bool carved = POOL_INDEX(p) < a->nextpool && pl->cls < ZW_MEM_NCLASSES;
        size_t size = carved ? CLASS_SIZE(pl->cls) : 0;
        if (!carved || base < pl->base || (size_t)(base - pl->base) % size != 0 ||
            (size_t)(base - pl->base) + size > pl->nextoffset) {
            report_foreign(h, verb, p, "which is not the start of a block of this heap");
            return -1;
        }
        *b = (dblock){.base = base, .usize = size, .big = false};
        return 0;
    }
    big_header *hdr = (big_header *)base - 1;
    if (!bigset_contains(h, hdr)) { /* nothing near `p` is read before this */
        if (zwi_mem_big_freed(h, hdr))
            report_foreign(h, verb, p, "a big block already freed (double free)");
        else
            report_foreign(h, verb, p, "a pointer not from this heap");
        return -1;
    }
    ZW_ASSERT(hdr->tag == BIG_TAG(h, hdr));
    *b = (dblock){.base = base, .usize = hdr->size, .big = true};
    return 0;
}

/* ---- checks ---- */

static bool
all_bytes(const unsigned char *at, size_t len, int want)
{
    for (size_t i = 0; i < len; i++) {
        if (at[i] != want)
            return false;
    }
    return true;
}

/* The requested size in the header, clamped to what the block can hold (the header may be
 * damaged). */
static size_t
requested(const dblock *b)
{
    size_t n = load_size(b->base, OFF_SIZE);
    size_t most = b->usize - DBG_HEAD;
    return n < most ? n : most;
}

/* Checks the state and both guards of an allocated block; 0 if intact, -1 after a report. */
static int
check_block(zw_heap *h, const char *verb, const dblock *b)
{
    FILE *out = out_of(h);
    unsigned char *base = (unsigned char *)b->base;
    unsigned char *data = base + DBG_HEAD;
    if (base[OFF_STATE] == STATE_FREED) {
        if (strcmp(verb, "free") == 0)
            fprintf(out, "zw: mem: double free of %p ", (void *)data);
        else
            fprintf(out, "zw: mem: %s of %p, a block already freed ", verb, (void *)data);
        print_block_desc(out, b);
        report_end(h, data, 0);
        return -1;
    }
    bool lead_ok = base[OFF_STATE] == STATE_ALLOC && all_bytes(base, 8, ZW_FILL_GUARD) &&
                   all_bytes(base + OFF_STATE + 1, 7, ZW_FILL_GUARD);
    if (!lead_ok) {
        fprintf(out, "zw: mem: buffer underrun before %p, found at %s ", (void *)data, verb);
        print_block_desc(out, b);
        fprintf(out, "    the guard bytes before the data are not all 0x%02x:\n", ZW_FILL_GUARD);
        dump_guard(out, "p", base + OFF_STATE + 1, 7, ZW_FILL_GUARD, true);
        if (base[OFF_STATE] != STATE_ALLOC)
            fprintf(out, "        state byte at p-8: 0x%02x *** CHANGED (expected 0x%02x)\n",
                    base[OFF_STATE], STATE_ALLOC);
        if (!all_bytes(base, 8, ZW_FILL_GUARD))
            fprintf(out, "        the guard at p-32 was changed too\n");
        fprintf(out, "    the header is damaged: the size and serial above may be wrong\n");
        report_end(h, data, requested(b));
        return -1;
    }
    size_t n = load_size(b->base, OFF_SIZE);
    unsigned char *tail = data + n;
    size_t tail_len = b->usize - DBG_HEAD - n;
    if (!all_bytes(tail, tail_len, ZW_FILL_GUARD)) {
        fprintf(out, "zw: mem: buffer overrun after %p, found at %s ", (void *)data, verb);
        print_block_desc(out, b);
        fprintf(out, "    the %zu guard bytes at tail=%p are not all 0x%02x:\n", tail_len,
                (void *)tail, ZW_FILL_GUARD);
        dump_guard(out, "tail", tail, tail_len, ZW_FILL_GUARD, false);
        report_end(h, data, n);
        return -1;
    }
    return 0;
}

/* A block about to be handed out again (small), or leaving the quarantine (big), must still
 * read 0xDB after its header. */
static void
check_reuse(zw_heap *h, const dblock *b)
{
    unsigned char *data = (unsigned char *)b->base + DBG_HEAD;
    size_t len = b->usize - DBG_HEAD;
    for (size_t i = 0; i < len; i++) {
        if (data[i] == ZW_FILL_DEAD)
            continue;
        FILE *out = out_of(h);
        if (b->base[OFF_STATE] != STATE_FREED) {
            fprintf(out, "zw: mem: stray write to %p+%zu, in memory never handed out "
                         "(%zu-byte class)\n", (void *)data, i, b->usize);
        } else {
            fprintf(out, "zw: mem: write after free to %p+%zu, found when the block %s ",
                    (void *)data, i, b->big ? "left the quarantine" : "was reused");
            print_block_desc(out, b);
        }
        fprintf(out, "    byte at p+%zu is 0x%02x, expected 0x%02x (freed memory)\n", i, data[i],
                ZW_FILL_DEAD);
        report_end(h, b->base[OFF_STATE] == STATE_FREED ? data : NULL, 0);
        return;
    }
}

/* ---- allocation and free ---- */

void
zwi_mem_debug_prepare_pool(pool *p)
{
    memset(p->base, ZW_FILL_DEAD, POOL_SIZE);
}

void *
zwi_mem_debug_malloc(zw_heap *h, size_t n, bool zero)
{
    if (n > PTRDIFF_MAX - DBG_HEAD - DBG_TAIL - sizeof(big_header)) {
        errno = ENOMEM;
        return NULL;
    }
    size_t total = DBG_HEAD + n + DBG_TAIL;
    char *base = zwi_mem_alloc_block(h, total);
    if (base == NULL)
        return NULL;
    dblock b = {.base = base, .usize = zwi_mem_block_size(h, base), .big = total > ZW_MEM_SMALL_MAX};
    if (!b.big) {
        check_reuse(h, &b);
    } else if (bigset_add(h, (big_header *)base - 1) != 0) {
        zwi_mem_free_block(h, base);
        errno = ENOMEM;
        return NULL;
    }
    memset(base, ZW_FILL_GUARD, DBG_HEAD);
    store_size(base, OFF_SIZE, n);
    uint64_t serial = ++h->serial;
    memcpy(base + OFF_SERIAL, &serial, sizeof(serial));
    base[OFF_STATE] = STATE_ALLOC;
    memset(base + DBG_HEAD, zero ? 0 : ZW_FILL_FRESH, n);
    memset(base + DBG_HEAD + n, ZW_FILL_GUARD, b.usize - DBG_HEAD - n);
    return base + DBG_HEAD;
}

/* Puts a freed big block in quarantine; the oldest one leaves it, checked, back to raw. */
static void
quarantine_push(zw_heap *h, big_header *hdr)
{
    big_header *old = h->quarantine[h->qhead];
    h->quarantine[h->qhead] = hdr;
    h->qhead = (h->qhead + 1) % QUARANTINE_LEN;
    if (old == NULL)
        return;
    dblock b = {.base = (char *)(old + 1), .usize = old->size, .big = true};
    check_reuse(h, &b);
    bigset_remove(h, old);
    zwi_mem_big_release(h, old);
}

void
zwi_mem_debug_flush_quarantine(zw_heap *h)
{
    for (unsigned i = 0; i < QUARANTINE_LEN; i++)
        quarantine_push(h, NULL);
}

/* Checks, poisons and frees a block found by find_block(). */
static void
free_checked(zw_heap *h, const dblock *b)
{
    memset(b->base + DBG_HEAD, ZW_FILL_DEAD, b->usize - DBG_HEAD);
    b->base[OFF_STATE] = STATE_FREED;
    if (!b->big) {
        zwi_mem_free_block(h, b->base);
        return;
    }
    big_header *hdr = (big_header *)b->base - 1;
    h->nbig--;
    h->big_bytes -= hdr->size;
    quarantine_push(h, hdr);
}

void
zwi_mem_debug_free(zw_heap *h, void *p)
{
    dblock b;
    if (find_block(h, "free", p, &b) != 0)
        return;
    if (check_block(h, "free", &b) != 0 && b.base[OFF_STATE] == STATE_FREED)
        return; /* a double free, reported and counted: the block is already free */
    free_checked(h, &b);
}

void *
zwi_mem_debug_realloc(zw_heap *h, void *p, size_t n)
{
    dblock b;
    if (find_block(h, "realloc", p, &b) != 0 ||
        (check_block(h, "realloc", &b) != 0 && b.base[OFF_STATE] == STATE_FREED)) {
        errno = EINVAL; /* reported and counted (ZW_HEAP_DEBUG_CONTINUE): not a block to move */
        return NULL;
    }
    /* Always move: a caller still using the old pointer then reads 0xDB. */
    void *q = zwi_mem_debug_malloc(h, n, false);
    if (q == NULL)
        return NULL;
    size_t old = load_size(b.base, OFF_SIZE);
    memcpy(q, p, old < n ? old : n);
    free_checked(h, &b);
    return q;
}

size_t
zwi_mem_debug_usable_size(const zw_heap *h, const void *p)
{
    (void)h;
    return load_size((const char *)p - DBG_HEAD, OFF_SIZE);
}
