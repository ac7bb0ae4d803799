/* tests/mem/test_check.c - the heap's validity check (mem/check.c): a heap shaped by random
 * traffic passes it at every step; a pool counter, a class counter, a free list or an arena
 * count broken on purpose is reported, and in this ZW_DEBUG_FULL build the heap aborts at its
 * next change of shape. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>

#include <zerowaste/mem.h>

#include "mem_internal.h"
#include "zw_debug_test.h"
#include "zw_test.h"

#if !defined(ZW_DEBUG_FULL)
#    error "tests/mem/test_check.c is built against a ZW_DEBUG_FULL library (tests/CMakeLists.txt)"
#endif

#define NBLOCKS 10 /* blocks of the first class in the test heaps */

/* A heap holding NBLOCKS 16-byte blocks in one pool, whose header is returned in `*pool_out`. */
static zw_heap *
heap_with_blocks(void *blocks[NBLOCKS], pool **pool_out)
{
    zw_heap *h = zwt_heap(NULL);
    cr_assert_not_null(h);
    for (int i = 0; i < NBLOCKS; i++) {
        blocks[i] = zw_heap_malloc(h, 16);
        cr_assert_not_null(blocks[i]);
    }
    arena *a = zwi_mem_arena_of(h, blocks[0]);
    cr_assert_not_null(a);
    *pool_out = zwi_mem_pool_of(a, blocks[0]);
    cr_assert_eq((*pool_out)->nused, NBLOCKS);
    return h;
}

Test(mem_check, a_heap_shaped_by_random_traffic_is_valid_at_every_step)
{
    zw_heap *h = zwt_heap(NULL);
    cr_assert_not_null(h);
    zwt_rng rng = {.s = 0x5A57C4EC2026ULL};
    enum { SLOTS = 20000, STEPS = 120000 };
    void **slot = calloc(SLOTS, sizeof(*slot));
    cr_assert_not_null(slot);
    for (int step = 0; step < STEPS; step++) {
        size_t i = zwt_below(&rng, SLOTS);
        if (slot[i] != NULL) {
            zw_heap_free(h, slot[i]);
            slot[i] = NULL;
        } else {
            /* mostly small blocks of every class, a few big ones */
            size_t n = zwt_below(&rng, 50) == 0 ? 600 + zwt_below(&rng, 4000)
                                                : 1 + zwt_below(&rng, ZW_MEM_SMALL_MAX);
            slot[i] = zw_heap_malloc(h, n);
            cr_assert_not_null(slot[i]);
        }
        if (step % 10000 == 0)
            cr_assert(zwi_mem_heap_is_valid(h, NULL), "step %d: see the report above", step);
    }
    cr_assert(zwi_mem_heap_is_valid(h, NULL));
    for (size_t i = 0; i < SLOTS; i++)
        zw_heap_free(h, slot[i]);
    cr_assert(zwi_mem_heap_is_valid(h, NULL), "after freeing everything");
    zw_heap_trim(h);
    cr_assert(zwi_mem_heap_is_valid(h, NULL), "after a trim");
    cr_assert_eq(zw_heap_allocated_blocks(h), 0);
    free(slot);
    zw_heap_destroy(h);
}

/* ---- corruptions, each reported by the check ---- */

typedef void (*corrupt_fn)(zw_heap *h, pool *p, void *blocks[NBLOCKS]);

static void
check_after(FILE *out, void *arg)
{
    void *blocks[NBLOCKS];
    pool *p;
    zw_heap *h = heap_with_blocks(blocks, &p);
    ((corrupt_fn)arg)(h, p, blocks);
    _exit(zwi_mem_heap_is_valid(h, NULL) ? 0 : 3);
}

/* Runs the check after `corrupt` in a child; it must say invalid (exit 3) and print `want`. */
static void
expect_reported(corrupt_fn corrupt, const char *want)
{
    zwt_child c;
    zwt_child_run(&c, check_after, (void *)corrupt);
    cr_assert(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 3,
              "the check did not find the corruption (wait status 0x%x); it wrote:\n%s", c.status,
              c.text);
    zwt_assert_has(c.text, "zw: mem: heap ");
    zwt_assert_has(c.text, want);
    zwt_child_release(&c);
}

static void
pool_counter_one_too_many(zw_heap *h, pool *p, void *blocks[NBLOCKS])
{
    p->nused++;
}

static void
class_counter_one_too_few(zw_heap *h, pool *p, void *blocks[NBLOCKS])
{
    h->nused[p->cls]--;
}

static void
free_list_points_outside(zw_heap *h, pool *p, void *blocks[NBLOCKS])
{
    ASAN_UNPOISON(h, p->free, sizeof(void *));
    *(void **)p->free = (char *)p->base + POOL_SIZE + 16; /* the next pool's block */
}

static void
arena_loses_a_free_pool(zw_heap *h, pool *p, void *blocks[NBLOCKS])
{
    zwi_mem_arena_of_pool(p)->nfreepools--;
}

static void
idle_counter_drifts(zw_heap *h, pool *p, void *blocks[NBLOCKS])
{
    h->arenas_idle++;
}

Test(mem_check, a_pool_counter_off_by_one_is_reported)
{
    expect_reported(pool_counter_one_too_many, "nused 11 + free 1 != 11 blocks handed out");
}

Test(mem_check, a_class_counter_off_by_one_is_reported)
{
    expect_reported(class_counter_one_too_few, "counter says 9 blocks in use, its pools hold 10");
}

Test(mem_check, a_free_list_leaving_its_pool_is_reported)
{
    expect_reported(free_list_points_outside, "not a handed-out block of the pool");
}

Test(mem_check, an_arena_free_pool_count_off_by_one_is_reported)
{
    expect_reported(arena_loses_a_free_pool, "nfreepools 62 != 0 free + 63 never carved");
}

Test(mem_check, an_idle_arena_count_off_by_one_is_reported)
{
    expect_reported(idle_counter_drifts, "arenas wholly free, counter says 1");
}

/* ---- in this ZW_DEBUG_FULL build, the heap itself aborts at its next change of shape ---- */

Test(mem_check, a_corrupt_arena_count_aborts_when_the_next_pool_is_taken, .signal = SIGABRT)
{
    void *blocks[NBLOCKS];
    pool *p;
    zw_heap *h = heap_with_blocks(blocks, &p);
    arena_loses_a_free_pool(h, p, blocks);
    zw_heap_malloc(h, 100); /* a block of another class: a pool is taken, its arena checked */
    cr_assert_fail("the heap did not abort");
}

Test(mem_check, a_corrupt_pool_counter_aborts_when_its_pool_is_full_no_more, .signal = SIGABRT)
{
    zw_heap *h = zwt_heap(NULL);
    cr_assert_not_null(h);
    void *b[1024]; /* 16-byte blocks: a pool holds 1024 */
    for (int i = 0; i < 1024; i++)
        cr_assert_not_null(b[i] = zw_heap_malloc(h, 16));
    pool *p = zwi_mem_pool_of(zwi_mem_arena_of(h, b[0]), b[0]);
    cr_assert(p->free == NULL && p->nused == 1024, "the pool is full");
    p->nused--;
    zw_heap_free(h, b[0]); /* partial again: the pool is checked, its free list walked */
    cr_assert_fail("the heap did not abort");
}

Test(mem_check, a_corrupt_free_list_aborts_at_the_next_trim, .signal = SIGABRT)
{
    void *blocks[NBLOCKS];
    pool *p;
    zw_heap *h = heap_with_blocks(blocks, &p);
    free_list_points_outside(h, p, blocks);
    for (int i = 0; i < NBLOCKS / 2; i++)
        zw_heap_free(h, blocks[i]); /* the pool stays in use, its free list longer */
    zw_heap_trim(h);                /* the whole heap is checked, every free list walked */
    cr_assert_fail("the heap did not abort");
}
