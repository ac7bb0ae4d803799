/* tests/preload/test_arena.c - the end of a capture's memory (src/preload/arena.c): blocks
 * aligned and zeroed, never overlapping; the last block grows in place, any other moves with its
 * contents; blocks bigger than a chunk; a big block freed gives its pages back; two doors on one
 * arena; out of memory; pages populated as blocks reach them, not before; a snapshot abandoned
 * on an arena gives back none of its blocks. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "../../src/preload/arena.h"
#include "trace_internal.h"

static zwi_arena *arena;
static zw_raw *door;

static void
setup(void)
{
    arena = zwi_arena_new();
    cr_assert(arena != NULL);
    door = zwi_arena_door(arena);
    cr_assert(door != NULL);
}

static void
teardown(void)
{
    zw_raw_destroy(door);
    zwi_arena_free(arena);
}

TestSuite(arena, .init = setup, .fini = teardown);

static bool
all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return false;
    return true;
}

Test(arena, blocks_are_aligned_zeroed_and_apart)
{
    enum { N = 5000 };
    static unsigned char *b[N];
    for (size_t i = 0; i < N; i++) {
        size_t n = 1 + i % 300;
        b[i] = i % 2 ? zw_raw_calloc(door, 1, n) : zw_raw_malloc(door, n);
        cr_assert(b[i] != NULL);
        cr_assert_eq((uintptr_t)b[i] % 16, 0, "block %zu at %p", i, (void *)b[i]);
        cr_assert(all_zero(b[i], n), "block %zu is not zeroed", i);
        memset(b[i], (int)(i & 0xff) | 1, n);
    }
    for (size_t i = 0; i < N; i++) { /* no block wrote over another */
        size_t n = 1 + i % 300;
        for (size_t k = 0; k < n; k++)
            cr_assert_eq(b[i][k], (unsigned char)((i & 0xff) | 1), "block %zu byte %zu", i, k);
    }
    zw_raw_free(door, b[0]); /* nothing given back: the next block is a fresh one */
    unsigned char *again = zw_raw_calloc(door, 1, 64);
    cr_assert(again != NULL && again != b[0] && all_zero(again, 64));
}

Test(arena, the_last_block_grows_in_place)
{
    unsigned char *p = zw_raw_malloc(door, 100);
    cr_assert(p != NULL);
    memset(p, 7, 100);
    for (size_t n = 200; n <= 32 * 1024; n *= 2) { /* a buffer doubling within a chunk */
        unsigned char *q = zw_raw_realloc(door, p, n);
        cr_assert_eq(q, p, "grown to %zu bytes, the last block moved", n);
    }
    cr_assert(all_zero(p + 100, 32 * 1024 - 100), "the grown part is not zeroed");
    for (size_t k = 0; k < 100; k++)
        cr_assert_eq(p[k], 7);
    cr_assert_eq(zw_raw_realloc(door, p, 10), p, "shrinking moved the block");
}

Test(arena, another_block_moves_with_its_contents)
{
    unsigned char *p = zw_raw_malloc(door, 48);
    cr_assert(p != NULL);
    for (int k = 0; k < 48; k++)
        p[k] = (unsigned char)k;
    unsigned char *other = zw_raw_malloc(door, 16); /* p is no longer the last block */
    cr_assert(other != NULL);
    memset(other, 0xee, 16);
    unsigned char *q = zw_raw_realloc(door, p, 1000);
    cr_assert(q != NULL && q != p);
    for (int k = 0; k < 48; k++)
        cr_assert_eq(q[k], (unsigned char)k);
    for (int k = 0; k < 16; k++)
        cr_assert_eq(other[k], 0xee, "the move wrote over the block after it");
    cr_assert(zw_raw_realloc(door, NULL, 32) != NULL, "realloc(NULL) is malloc");
}

Test(arena, blocks_bigger_than_a_chunk)
{
    size_t big = (size_t)40 << 20; /* past the largest chunk */
    unsigned char *small = zw_raw_malloc(door, 32);
    unsigned char *p = zw_raw_malloc(door, big);
    cr_assert(small != NULL && p != NULL);
    cr_assert(all_zero(p, big));
    memset(p, 1, big);
    unsigned char *q = zw_raw_realloc(door, p, big + 4096); /* its chunk is full: it moves */
    cr_assert(q != NULL);
    cr_assert_eq(q[big - 1], 1);
    cr_assert(all_zero(q + big, 4096));
    unsigned char *after = zw_raw_malloc(door, 32);
    cr_assert(after != NULL && all_zero(after, 32));
}

Test(arena, two_doors_share_the_arena)
{
    zw_raw *second = zwi_arena_door(arena);
    cr_assert(second != NULL);
    unsigned char *a = zw_raw_malloc(door, 64);
    unsigned char *b = zw_raw_malloc(second, 64);
    cr_assert(a != NULL && b != NULL && a != b);
    memset(a, 1, 64);
    cr_assert(all_zero(b, 64));
    unsigned char *a2 = zw_raw_realloc(door, a, 4096); /* b came after a: a moves */
    cr_assert(a2 != NULL && a2 != a && a2[63] == 1 && all_zero(b, 64));
    zw_raw_destroy(second);
}

Test(arena, out_of_memory_is_null)
{
    cr_assert_null(zw_raw_malloc(door, SIZE_MAX - 8));
    cr_assert_null(zw_raw_calloc(door, SIZE_MAX / 2, 4));
    unsigned char *p = zw_raw_malloc(door, 16);
    cr_assert_null(zw_raw_realloc(door, p, SIZE_MAX - 8));
    struct rlimit old, lim;
    cr_assert(getrlimit(RLIMIT_AS, &old) == 0);
    lim = old;
    lim.rlim_cur = (rlim_t)1 << 30; /* a chunk of 2 GiB cannot be mapped */
    cr_assert(setrlimit(RLIMIT_AS, &lim) == 0);
    void *huge = zw_raw_malloc(door, (size_t)2 << 30);
    cr_assert(setrlimit(RLIMIT_AS, &old) == 0);
    cr_assert_null(huge);
    cr_assert(zw_raw_malloc(door, 16) != NULL, "a failed chunk left the arena unusable");
}

/* Pages of [p, p + n) resident now. */
static size_t
resident(const unsigned char *p, size_t n)
{
    uintptr_t lo = ((uintptr_t)p + 4095) & ~(uintptr_t)4095, hi = ((uintptr_t)p + n) & ~(uintptr_t)4095;
    static unsigned char vec[1024];
    cr_assert(hi - lo <= sizeof(vec) * 4096);
    cr_assert(mincore((void *)lo, hi - lo, vec) == 0);
    size_t k = 0;
    for (size_t i = 0; i < (hi - lo) / 4096; i++)
        k += vec[i] & 1;
    return k;
}

Test(arena, a_big_block_freed_gives_its_pages_back)
{
    size_t n = (size_t)1 << 20;
    unsigned char *small = zw_raw_malloc(door, 1000);
    unsigned char *big = zw_raw_malloc(door, n);
    cr_assert(small != NULL && big != NULL);
    memset(small, 3, 1000);
    memset(big, 5, n);
    cr_assert_eq(resident(big, n), n / 4096 - 1, "a block of populated pages is resident");
    zw_raw_free(door, small); /* a small one stays */
    cr_assert_eq(small[999], 3);
    zw_raw_free(door, big);
    cr_assert_eq(resident(big, n), 0, "the freed block's pages are still resident");
    unsigned char *next = zw_raw_calloc(door, 1, 4096); /* not a reuse of the freed pages */
    cr_assert(next != NULL && (next >= big + n || next + 4096 <= big) && all_zero(next, 4096));
}

/* Does this kernel populate a mapping on request (MADV_POPULATE_WRITE, Linux 5.14)? */
static bool
kernel_populates(void)
{
    void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert(m != MAP_FAILED);
    bool ok = madvise(m, 4096, 23 /* MADV_POPULATE_WRITE */) == 0;
    munmap(m, 4096);
    return ok;
}

Test(arena, pages_are_populated_as_blocks_reach_them)
{
    /* blocks of 60 KiB: chunks of 64 KiB (1 block), 128 (2), 256 (4), 512 (8); the 16th block
     * opens a chunk of 1 MiB */
    size_t n = (size_t)60 << 10;
    unsigned char *b = NULL;
    for (int i = 0; i < 16; i++) {
        b = zw_raw_malloc(door, n);
        cr_assert(b != NULL);
    }
    if (kernel_populates())
        cr_assert_eq(resident(b, n), n / 4096 - 1, "a block is populated as it is handed out");
    cr_assert_eq(resident(b + (512 << 10), 256 << 10), 0,
                 "the chunk's pages no block reached are populated");
    unsigned char *c = zw_raw_malloc(door, 600 << 10); /* the same chunk, past the first step */
    cr_assert(c != NULL && c > b && c + (600 << 10) <= b + (1 << 20));
    if (kernel_populates())
        cr_assert_eq(resident(c, 600 << 10), (600 << 10) / 4096 - 1, "a later block is populated");
    cr_assert(all_zero(c, 600 << 10));
}

/* A snapshot made on an arena's door and abandoned (zwi_snapshot_abandon, the end's table) gives
 * back none of its blocks, the big ones included, whose pages a free would release: they stay
 * as they were until the arena goes. */
Test(arena, an_abandoned_snapshot_leaves_its_blocks_to_the_arena)
{
    zw_raw *own = zwi_arena_door(arena);
    cr_assert(own != NULL);
    zw_snapshot *snap = zwi_snapshot_new_on(4, own);
    cr_assert(snap != NULL);
    enum { N = 20000 }; /* the array of tracebacks passes 64 KiB */
    const zw_frame *fr[1];
    zw_traceback *first = NULL;
    for (unsigned i = 0; i < N; i++) {
        zw_frame f = {.filename = "abandon.c", .lineno = i + 1, .function = "fn"};
        fr[0] = (const zw_frame *)zwi_snapshot_frame(snap, &f);
        cr_assert(fr[0] != NULL);
        zw_traceback *tb = zwi_snapshot_traceback(snap, fr, 1, 1);
        cr_assert(tb != NULL);
        if (i == 0)
            first = tb;
    }
    zw_traceback **tbs = snap->tbs;
    size_t bytes = snap->ntbs * sizeof(*tbs);
    cr_assert_eq(snap->ntbs, N);
    cr_assert_geq(bytes, (size_t)64 << 10);
    size_t before = resident((const unsigned char *)tbs, bytes);
    cr_assert_geq(before, bytes / 4096 - 1);
    zwi_snapshot_abandon(snap);
    cr_assert_eq(resident((const unsigned char *)tbs, bytes), before, "the array of tracebacks was given back");
    cr_assert_eq(tbs[0], first);
    cr_assert_eq(zw_traceback_frame(tbs[N - 1], 0)->lineno, N);
}

/* The mapping of /proc/self/maps that holds address p: its start and size (0 if none). */
static size_t
mapping_of(const void *p, uintptr_t *start)
{
    FILE *f = fopen("/proc/self/maps", "r");
    cr_assert(f != NULL);
    char line[512];
    size_t size = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && (uintptr_t)p >= lo && (uintptr_t)p < hi) {
            *start = lo;
            size = hi - lo;
            break;
        }
    }
    fclose(f);
    return size;
}

/* A block that is not the last one, grown past 1 MiB, moves to a mapping of its own, which then
 * grows where it is or is remapped, its pages never copied, however often blocks come between;
 * freed, the mapping goes; one left is unmapped with the arena. */
Test(arena, a_block_grown_past_a_mebibyte_has_a_mapping_of_its_own)
{
    size_t n = 100 << 10;
    unsigned char *p = zw_raw_malloc(door, n);
    cr_assert(p != NULL);
    memset(p, 7, n);
    for (size_t size = (size_t)1 << 20; size <= ((size_t)64 << 20); size *= 2) {
        unsigned char *between = zw_raw_malloc(door, 64); /* p is never the last block */
        cr_assert(between != NULL);
        memset(between, 9, 64);
        unsigned char *q = zw_raw_realloc(door, p, size);
        cr_assert(q != NULL);
        cr_assert(q[0] == 7 && q[n - 1] == 7, "grown to %zu: the contents lost", size);
        cr_assert(all_zero(q + n, size - n), "grown to %zu: not zero past the old end", size);
        memset(q + n, 7, size - n); /* all of it 7 from now on */
        n = size;
        uintptr_t start = 0;
        size_t len = mapping_of(q, &start);
        /* a neighbouring mapping of the same kind may merge with it: at least its own */
        cr_assert(start <= (uintptr_t)q - 48 && len >= (size + 48 + 4095) / 4096 * 4096,
                  "grown to %zu: in a mapping of %zu bytes at %#lx", size, len,
                  (unsigned long)start);
        cr_assert(between[0] == 9 && between[63] == 9, "the block between was written");
        /* from the second growth on, p had its own mapping: grown where it was, or remapped
         * (its old pages moved with it: nothing left mapped there, no copy) */
        unsigned char vec[1];
        if (size > ((size_t)1 << 20) && q != p)
            cr_assert(mincore((void *)(((uintptr_t)p + 4096) & ~(uintptr_t)4095), 4096, vec) != 0,
                      "grown to %zu: moved by a copy, its old pages still mapped", size);
        p = q;
    }
    unsigned char *next = zw_raw_malloc(door, 64);
    cr_assert(next != NULL && (next + 64 <= p - 48 || next >= p + n), "a block inside the own one");
    cr_assert(all_zero(next, 64));
    zw_raw_free(door, p);
    unsigned char vec[1];
    cr_assert(mincore((void *)(((uintptr_t)p + 4096) & ~(uintptr_t)4095), 4096, vec) != 0,
              "the freed block's mapping is still there");
    unsigned char *r = zw_raw_malloc(door, 200 << 10);
    cr_assert(r != NULL);
    cr_assert(zw_raw_malloc(door, 64) != NULL);
    r = zw_raw_realloc(door, r, (size_t)3 << 20); /* another one, left to zwi_arena_free */
    cr_assert(r != NULL && r[0] == 0);
}

/* A block with a mapping of its own that cannot grow (the address space limit): NULL, the block
 * as it was, and it grows once the limit is gone. */
Test(arena, an_own_block_that_cannot_grow_stays_as_it_was)
{
    unsigned char *p = zw_raw_malloc(door, 64);
    cr_assert(p != NULL && zw_raw_malloc(door, 64) != NULL); /* p is not the last block */
    p = zw_raw_realloc(door, p, (size_t)2 << 20);            /* its own mapping */
    cr_assert(p != NULL);
    memset(p, 4, (size_t)2 << 20);
    struct rlimit old, lim;
    cr_assert(getrlimit(RLIMIT_AS, &old) == 0);
    lim = old;
    lim.rlim_cur = (rlim_t)1 << 30;
    cr_assert(setrlimit(RLIMIT_AS, &lim) == 0);
    unsigned char *q = zw_raw_realloc(door, p, (size_t)2 << 30);
    cr_assert(setrlimit(RLIMIT_AS, &old) == 0);
    cr_assert_null(q);
    cr_assert(p[0] == 4 && p[((size_t)2 << 20) - 1] == 4, "the block changed");
    q = zw_raw_realloc(door, p, (size_t)4 << 20);
    cr_assert(q != NULL && q[0] == 4 && q[((size_t)2 << 20) - 1] == 4);
    cr_assert(all_zero(q + ((size_t)2 << 20), (size_t)2 << 20));
}
