/* tests/preload/test_leakscan.c - the reachability scan (src/preload/leakscan.c): memcheck's four
 * kinds on blocks laid out by hand in a mapping, with roots given as ranges, and then on this
 * process's own roots (globals, another thread's stack, registers). */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../../src/preload/leakscan.h"
#include "zw_test.h"

/* ---- a heap by hand: `nblock` blocks of `size` bytes, one after another, in a mapping ---- */

typedef struct heap {
    uintptr_t *mem;
    size_t words; /* words per block */
    size_t nblock;
    zwi_leakscan *ls;
} heap;

static heap
heap_make(size_t nblock, size_t size)
{
    heap h = {.words = size / 8, .nblock = nblock};
    h.mem = mmap(NULL, nblock * size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert(h.mem != MAP_FAILED);
    h.ls = zwi_leakscan_new(nblock);
    cr_assert(h.ls != NULL);
    return h;
}

static uintptr_t
blk(const heap *h, size_t i)
{
    return (uintptr_t)(h->mem + i * h->words);
}

/* block i's word k = a pointer to block j at byte offset `off` */
static void
link_to(heap *h, size_t i, size_t k, size_t j, size_t off)
{
    h->mem[i * h->words + k] = blk(h, j) + off;
}

static void
heap_prepare(heap *h)
{
    for (size_t i = h->nblock; i-- > 0;) /* added out of order: prepare sorts them */
        cr_assert_eq(zwi_leakscan_add(h->ls, blk(h, i), h->words * 8), 0);
    cr_assert_eq(zwi_leakscan_prepare(h->ls), 0);
}

static void
root(heap *h, const uintptr_t *words, size_t n)
{
    zwi_leakscan_root(h->ls, (uintptr_t)words, (uintptr_t)(words + n));
}

static int
kind(const heap *h, size_t i)
{
    return zwi_leakscan_kind(h->ls, blk(h, i));
}

/* ---- memcheck's rules, one by one ---- */

Test(preload_leakscan, start_pointer_from_a_root_reaches_a_chain)
{
    heap h = heap_make(4, 32);
    link_to(&h, 0, 1, 1, 0); /* 0 -> 1 -> 2; 3 alone */
    link_to(&h, 1, 3, 2, 0);
    heap_prepare(&h);
    uintptr_t roots[2] = {42, blk(&h, 0)};
    root(&h, roots, 2);
    zwi_leakscan_classify(h.ls);
    cr_assert_eq(kind(&h, 0), ZWI_LEAK_REACHABLE);
    cr_assert_eq(kind(&h, 1), ZWI_LEAK_REACHABLE);
    cr_assert_eq(kind(&h, 2), ZWI_LEAK_REACHABLE);
    cr_assert_eq(kind(&h, 3), ZWI_LEAK_DEFINITE);
    zwi_leakscan_free(h.ls);
}

Test(preload_leakscan, interior_pointer_makes_possible_and_passes_it_on)
{
    heap h = heap_make(3, 64);
    link_to(&h, 0, 0, 1, 0); /* 0 -> start of 1 -> interior of 2 */
    link_to(&h, 1, 7, 2, 40);
    heap_prepare(&h);
    uintptr_t roots[1] = {blk(&h, 0) + 24};
    root(&h, roots, 1);
    zwi_leakscan_classify(h.ls);
    cr_assert_eq(kind(&h, 0), ZWI_LEAK_POSSIBLE);
    cr_assert_eq(kind(&h, 1), ZWI_LEAK_POSSIBLE);
    cr_assert_eq(kind(&h, 2), ZWI_LEAK_POSSIBLE);
    zwi_leakscan_free(h.ls);
}

Test(preload_leakscan, start_pointer_found_later_upgrades_possible_to_reachable)
{
    heap h = heap_make(2, 32);
    link_to(&h, 0, 2, 1, 0);
    heap_prepare(&h);
    uintptr_t first[1] = {blk(&h, 0) + 8};
    root(&h, first, 1);
    uintptr_t second[1] = {blk(&h, 0)};
    root(&h, second, 1);
    zwi_leakscan_classify(h.ls);
    cr_assert_eq(kind(&h, 0), ZWI_LEAK_REACHABLE);
    cr_assert_eq(kind(&h, 1), ZWI_LEAK_REACHABLE, "rescanned once its holder became reachable");
    zwi_leakscan_free(h.ls);
}

Test(preload_leakscan, lost_list_is_one_definite_head_and_indirect_rest_in_any_address_order)
{
    /* list A: head 0 -> 1 -> 2 -> 3 (ascending); list B: head 7 -> 6 -> 5 -> 4 (descending) */
    heap h = heap_make(8, 32);
    for (size_t i = 0; i < 3; i++)
        link_to(&h, i, 0, i + 1, 0);
    for (size_t i = 7; i > 4; i--)
        link_to(&h, i, 1, i - 1, 0);
    heap_prepare(&h);
    zwi_leakscan_classify(h.ls);
    cr_assert_eq(kind(&h, 0), ZWI_LEAK_DEFINITE);
    cr_assert_eq(kind(&h, 7), ZWI_LEAK_DEFINITE);
    for (size_t i = 1; i < 7; i++)
        cr_assert_eq(kind(&h, i), ZWI_LEAK_INDIRECT, "block %zu", i);
    zwi_leakscan_free(h.ls);
}

Test(preload_leakscan, lost_cycle_has_one_definite_leader)
{
    heap h = heap_make(3, 32);
    link_to(&h, 0, 0, 1, 0);
    link_to(&h, 1, 0, 2, 16); /* an interior pointer inside a lost clique still absorbs */
    link_to(&h, 2, 0, 0, 0);
    heap_prepare(&h);
    zwi_leakscan_classify(h.ls);
    cr_assert_eq(kind(&h, 0), ZWI_LEAK_DEFINITE);
    cr_assert_eq(kind(&h, 1), ZWI_LEAK_INDIRECT);
    cr_assert_eq(kind(&h, 2), ZWI_LEAK_INDIRECT);
    zwi_leakscan_free(h.ls);
}

Test(preload_leakscan, word_past_the_end_or_unaligned_reaches_nothing)
{
    heap h = heap_make(2, 32);
    heap_prepare(&h);
    /* one past block 1's end; an unaligned copy of block 0's address spans two root words */
    unsigned char bytes[24] = {0};
    uintptr_t a = blk(&h, 0);
    memcpy(bytes + 4, &a, sizeof(a));
    uintptr_t past[1] = {blk(&h, 1) + 32};
    root(&h, past, 1);
    zwi_leakscan_root(h.ls, (uintptr_t)bytes, (uintptr_t)(bytes + sizeof(bytes)));
    zwi_leakscan_classify(h.ls);
    cr_assert_eq(kind(&h, 0), ZWI_LEAK_DEFINITE);
    cr_assert_eq(kind(&h, 1), ZWI_LEAK_DEFINITE);
    cr_assert_eq(zwi_leakscan_kind(h.ls, blk(&h, 0) + 8), -1, "no block starts there");
    zwi_leakscan_free(h.ls);
}

Test(preload_leakscan, empty_block_is_reached_at_its_start)
{
    zwi_leakscan *ls = zwi_leakscan_new(0);
    static uintptr_t space[8];
    cr_assert_eq(zwi_leakscan_add(ls, (uintptr_t)&space[2], 0), 0);
    cr_assert_eq(zwi_leakscan_add(ls, (uintptr_t)&space[4], 0), 0);
    cr_assert_eq(zwi_leakscan_prepare(ls), 0);
    uintptr_t roots[1] = {(uintptr_t)&space[2]};
    zwi_leakscan_root(ls, (uintptr_t)roots, (uintptr_t)(roots + 1));
    zwi_leakscan_classify(ls);
    cr_assert_eq(zwi_leakscan_kind(ls, (uintptr_t)&space[2]), ZWI_LEAK_REACHABLE);
    cr_assert_eq(zwi_leakscan_kind(ls, (uintptr_t)&space[4]), ZWI_LEAK_DEFINITE);
    zwi_leakscan_free(ls);
}

static bool
ignore_last_word(uintptr_t start, size_t size, uintptr_t p)
{
    return p == start + size - 8;
}

Test(preload_leakscan, allocator_words_are_ignored_when_the_filter_says_so)
{
    heap h = heap_make(2, 32);
    heap_prepare(&h);
    zwi_leakscan_set_ignore(h.ls, ignore_last_word);
    uintptr_t roots[2] = {blk(&h, 0) + 24, blk(&h, 1) + 16};
    root(&h, roots, 2);
    zwi_leakscan_classify(h.ls);
    cr_assert_eq(kind(&h, 0), ZWI_LEAK_DEFINITE, "its last word's pointer is the allocator's");
    cr_assert_eq(kind(&h, 1), ZWI_LEAK_POSSIBLE);
    zwi_leakscan_free(h.ls);
}

Test(preload_leakscan, block_of_512_mib_or_more_keeps_its_size)
{
    size_t size = (size_t)520 << 20;
    char *big = mmap(NULL, size + 4096, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    cr_assert(big != MAP_FAILED);
    zwi_leakscan *ls = zwi_leakscan_new(0);
    cr_assert_eq(zwi_leakscan_add(ls, (uintptr_t)big, size), 0);
    cr_assert_eq(zwi_leakscan_add(ls, (uintptr_t)big + size, 16), 0); /* right after it */
    cr_assert_eq(zwi_leakscan_prepare(ls), 0);
    uintptr_t roots[1] = {(uintptr_t)big + size - 64}; /* beyond 2^29 bytes in */
    zwi_leakscan_root(ls, (uintptr_t)roots, (uintptr_t)(roots + 1));
    zwi_leakscan_classify(ls);
    cr_assert_eq(zwi_leakscan_kind(ls, (uintptr_t)big), ZWI_LEAK_POSSIBLE);
    cr_assert_eq(zwi_leakscan_kind(ls, (uintptr_t)big + size), ZWI_LEAK_DEFINITE);
    zwi_leakscan_free(ls);
    munmap(big, size + 4096);
}

Test(preload_leakscan, work_list_overflow_loses_no_block)
{
    /* one block pointing at 70,000 others (more than the work list holds), each the head of a
     * pair; and a lost copy of the same shape */
    size_t n = 70000; /* more than the work list holds (65536) */
    heap h = heap_make(2 * (2 * n + 1), 16);
    size_t fan = (2 * n + 1) * 2; /* a block of n words: the fan, laid out separately */
    uintptr_t *fans = mmap(NULL, 2 * n * 8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                           -1, 0);
    (void)fan;
    for (size_t copy = 0; copy < 2; copy++) {
        size_t base = copy * (2 * n + 1);
        for (size_t i = 0; i < n; i++) {
            fans[copy * n + i] = blk(&h, base + 2 * i);
            link_to(&h, base + 2 * i, 1, base + 2 * i + 1, 0);
        }
    }
    for (size_t i = h.nblock; i-- > 0;)
        cr_assert_eq(zwi_leakscan_add(h.ls, blk(&h, i), 16), 0);
    cr_assert_eq(zwi_leakscan_add(h.ls, (uintptr_t)fans, n * 8), 0);
    cr_assert_eq(zwi_leakscan_add(h.ls, (uintptr_t)(fans + n), n * 8), 0);
    cr_assert_eq(zwi_leakscan_prepare(h.ls), 0);
    uintptr_t roots[1] = {(uintptr_t)fans};
    root(&h, roots, 1);
    zwi_leakscan_classify(h.ls);
    cr_assert_eq(zwi_leakscan_kind(h.ls, (uintptr_t)fans), ZWI_LEAK_REACHABLE);
    cr_assert_eq(zwi_leakscan_kind(h.ls, (uintptr_t)(fans + n)), ZWI_LEAK_DEFINITE);
    size_t count[ZWI_LEAK_KINDS] = {0};
    for (size_t i = 0; i < h.nblock; i++)
        count[kind(&h, i)]++;
    /* the unused block at the end of each copy's range is definite */
    cr_assert_eq(count[ZWI_LEAK_REACHABLE], 2 * n);
    cr_assert_eq(count[ZWI_LEAK_INDIRECT], 2 * n);
    cr_assert_eq(count[ZWI_LEAK_DEFINITE], 2);
    zwi_leakscan_free(h.ls);
}

Test(preload_leakscan, long_chain_needs_no_recursion)
{
    size_t n = 300000;
    heap h = heap_make(n, 16);
    for (size_t i = 0; i + 1 < n; i++)
        link_to(&h, i, 0, i + 1, 0);
    heap_prepare(&h);
    uintptr_t roots[1] = {blk(&h, 0)};
    root(&h, roots, 1);
    zwi_leakscan_classify(h.ls);
    cr_assert_eq(kind(&h, n - 1), ZWI_LEAK_REACHABLE);
    cr_assert_leq(zwi_leakscan_memory(h.ls), n * 13 + (1 << 20), "memory %zu for %zu blocks",
                  zwi_leakscan_memory(h.ls), n);
    zwi_leakscan_free(h.ls);
}

/* ---- this process's roots ---- */

static void *global_holder;   /* a global pointing at a list */
static pthread_barrier_t ready;
static pthread_barrier_t done;
static void *volatile from_thread; /* the block the thread holds, for the checks; cleared */

static void *
holder_main(void *arg)
{
    void *mine = malloc(48); /* only on this thread's stack (volatile: not just in a register) */
    void *volatile keep = mine;
    from_thread = mine;
    mine = NULL;
    pthread_barrier_wait(&ready);
    pthread_barrier_wait(&done);
    free(keep);
    return arg;
}

typedef struct made {
    uintptr_t list[3];  /* global -> 0 -> 1 -> 2 */
    uintptr_t lost[2];  /* lost -> its child */
    uintptr_t middle;   /* only a pointer to its middle kept (in `middle_ptr`) */
} made;

static void *volatile middle_ptr;
#define DISGUISE (~(uintptr_t)0) /* a kept address, complemented: no longer a pointer */

static __attribute__((noinline)) void
make_blocks(made *m)
{
    void **a = calloc(1, 32), **b = calloc(1, 32), **c = calloc(1, 32);
    a[0] = b;
    b[0] = c;
    global_holder = a;
    m->list[0] = (uintptr_t)a;
    m->list[1] = (uintptr_t)b;
    m->list[2] = (uintptr_t)c;
    void **lost = calloc(1, 32);
    lost[1] = calloc(1, 16);
    m->lost[0] = (uintptr_t)lost ^ DISGUISE; /* kept disguised: no root holds them */
    m->lost[1] = (uintptr_t)lost[1] ^ DISGUISE;
    char *mid = calloc(1, 64);
    middle_ptr = mid + 32;
    m->middle = (uintptr_t)mid ^ DISGUISE;
}

/* Clears the dead stack below the caller, where make_blocks() left copies of its pointers. */
static __attribute__((noinline)) void
scrub_stack(void)
{
    volatile char junk[16384];
    memset((char *)junk, 0, sizeof(junk));
}

Test(preload_leakscan, process_roots_find_globals_and_another_threads_stack)
{
    pthread_barrier_init(&ready, NULL, 2);
    pthread_barrier_init(&done, NULL, 2);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, holder_main, NULL), 0);
    pthread_barrier_wait(&ready);
    made m;
    make_blocks(&m);
    uintptr_t held = (uintptr_t)from_thread ^ DISGUISE;
    from_thread = NULL;
    zwi_leakscan *ls = zwi_leakscan_new(0);
    uintptr_t blocks[] = {m.list[0], m.list[1], m.list[2], m.lost[0] ^ DISGUISE, m.lost[1] ^ DISGUISE,
                          m.middle ^ DISGUISE, held ^ DISGUISE};
    size_t sizes[] = {32, 32, 32, 32, 16, 64, 48};
    for (size_t i = 0; i < 7; i++)
        cr_assert_eq(zwi_leakscan_add(ls, blocks[i], sizes[i]), 0);
    memset(blocks, 0, sizeof(blocks));
    cr_assert_eq(zwi_leakscan_prepare(ls), 0);
    scrub_stack();
    zwi_leak_roots r;
    jmp_buf regs;
    setjmp(regs);
    zwi_leak_thread me = zwi_leakscan_this_thread((uintptr_t)&regs);
    cr_assert_eq(zwi_leakscan_process_roots(ls, NULL, &me, &r), 0);
    zwi_leakscan_classify(ls);
    cr_assert_geq(r.modules, 2, "the test and libc at least");
    /* this one and the holder; Criterion's own thread blocks every signal: it may be missed */
    cr_assert_geq(r.threads, 2, "%u threads stopped, %u missed", r.threads, r.threads_missed);
    for (size_t i = 0; i < 3; i++)
        cr_assert_eq(zwi_leakscan_kind(ls, m.list[i]), ZWI_LEAK_REACHABLE, "list %zu", i);
    cr_assert_eq(zwi_leakscan_kind(ls, m.lost[0] ^ DISGUISE), ZWI_LEAK_DEFINITE);
    cr_assert_eq(zwi_leakscan_kind(ls, m.lost[1] ^ DISGUISE), ZWI_LEAK_INDIRECT);
    cr_assert_eq(zwi_leakscan_kind(ls, m.middle ^ DISGUISE), ZWI_LEAK_POSSIBLE);
    cr_assert_eq(zwi_leakscan_kind(ls, held ^ DISGUISE), ZWI_LEAK_REACHABLE, "on the thread's stack");
    zwi_leakscan_free(ls);
    pthread_barrier_wait(&done);
    pthread_join(th, NULL);
}

/* ---- the index: zwi_leakscan_lookup against a search of the blocks by hand ---- */

typedef struct ref_block {
    uint64_t start, size;
} ref_block;

static zwt_rng gen; /* seeded by each test */

static uint64_t
rng(void)
{
    return zwt_next(&gen);
}

/* memcheck's rule by hand: the last block starting at or below p holds it if p is its start or
 * within its size; the top byte of the address space is nobody's (no process maps it). */
static bool
ref_lookup(const ref_block *b, size_t n, uint64_t p, uint64_t *start)
{
    if (p == UINT64_MAX)
        return false;
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t m = lo + (hi - lo) / 2;
        if (b[m].start <= p)
            lo = m + 1;
        else
            hi = m;
    }
    if (lo == 0)
        return false;
    const ref_block *x = &b[lo - 1];
    if (p != x->start && p - x->start >= x->size)
        return false;
    *start = x->start;
    return true;
}

/* Adds `b` (sorted, not overlapping) in a shuffled order, prepares, and checks every block's first,
 * last and next-to-last bytes, the bytes around each, and `nprobe` random words in and around the
 * blocks' span against ref_lookup. */
static void
check_index(ref_block *b, size_t n, size_t nprobe)
{
    zwi_leakscan *ls = zwi_leakscan_new(n);
    cr_assert(ls != NULL);
    size_t *order = malloc(n * sizeof(size_t));
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    for (size_t i = n; i > 1; i--) {
        size_t j = rng() % i;
        size_t t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(zwi_leakscan_add(ls, b[order[i]].start, b[order[i]].size), 0);
    size_t before = zwi_leakscan_memory(ls);
    cr_assert_eq(zwi_leakscan_prepare(ls), 0);
    /* the index and work list: under 3.5 bytes a block beside the fixed 256 KiB work list */
    size_t index = zwi_leakscan_memory(ls) - before - ((size_t)1 << 18);
    cr_assert_leq(index, n * 7 / 2 + 256, "index of %zu bytes for %zu blocks", index, n);
    for (size_t k = 0; k < n * 7 + nprobe; k++) {
        uint64_t p;
        if (k < n * 7) {
            const ref_block *x = &b[k / 7];
            uint64_t offs[7] = {0, 1, x->size - 1, x->size, x->size + 1, (uint64_t)-1, 8};
            p = x->start + offs[k % 7];
        } else if (k % 2) {
            const ref_block *x = &b[rng() % n];
            p = x->start + rng() % (2 * x->size + 64) - 32;
        } else {
            p = b[0].start + rng() % (b[n - 1].start - b[0].start + b[n - 1].size + 2);
        }
        uint64_t want = 0, got = 0;
        bool in = ref_lookup(b, n, p, &want);
        uintptr_t start = 0;
        bool found = zwi_leakscan_lookup(ls, (uintptr_t)p, &start);
        got = start;
        cr_assert_eq(found, in, "word %#llx: found %d, by hand %d", (unsigned long long)p, found, in);
        if (in)
            cr_assert_eq(got, want, "word %#llx: block %#llx, by hand %#llx",
                         (unsigned long long)p, (unsigned long long)got, (unsigned long long)want);
    }
    free(order);
    zwi_leakscan_free(ls);
}

/* Blocks laid out from `at` upwards: sizes from `sizes` (0 allowed: it takes one byte, as no two
 * blocks start at one address), gaps from `gaps`. */
static size_t
lay_out(ref_block *b, size_t n, uint64_t at, const uint64_t *sizes, size_t nsizes,
        const uint64_t *gaps, size_t ngaps)
{
    for (size_t i = 0; i < n; i++) {
        b[i].start = at;
        b[i].size = sizes[rng() % nsizes];
        at += (b[i].size > 0 ? b[i].size : 1) + gaps[rng() % ngaps];
    }
    return n;
}

Test(preload_leakscan, index_finds_what_a_search_by_hand_finds_in_a_dense_heap)
{
    gen.s = 0x9e3779b97f4a7c15u;
    size_t n = 20000;
    ref_block *b = malloc(n * sizeof(*b));
    /* malloc-like: 16-byte aligned blocks of 24 to 264 bytes, 8 or 16 bytes apart */
    uint64_t sizes[] = {24, 40, 56, 120, 264, 32, 48};
    uint64_t gaps[] = {8, 16, 8, 24};
    lay_out(b, n, 0x555555560000u, sizes, 7, gaps, 4);
    check_index(b, n, 200000);
    free(b);
}

Test(preload_leakscan, index_handles_blocks_over_many_granules_and_empty_blocks)
{
    gen.s = 0x2545f4914f6cdd1du;
    size_t n = 5000;
    ref_block *b = malloc(n * sizeof(*b));
    /* empty blocks between small ones, and blocks spanning thousands of granules */
    uint64_t sizes[] = {0, 0, 16, 1, 4096 * 3 + 5, 1 << 20, 33, 0};
    uint64_t gaps[] = {0, 1, 16, 4095, 70000};
    lay_out(b, n, 0x10000, sizes, 8, gaps, 5);
    check_index(b, n, 200000);
    free(b);
}

Test(preload_leakscan, index_handles_far_apart_clusters_and_the_highest_addresses)
{
    gen.s = 0xda942042e4dd58b5u;
    size_t n = 3000;
    ref_block *b = malloc(n * sizeof(*b));
    uint64_t sizes[] = {16, 48, 0, 4000};
    uint64_t gaps[] = {16, 16, 1 << 16};
    size_t k = lay_out(b, 1000, 0x1000, sizes, 4, gaps, 3);  /* low */
    k += lay_out(b + k, 999, 0x7f0000000000u, sizes, 4, gaps, 3); /* a library's mappings */
    /* at the very top, the last one ending at the last byte; and one alone just below it */
    k += lay_out(b + k, 998, UINT64_MAX - ((uint64_t)1 << 40), sizes, 4, gaps, 3);
    b[k++] = (ref_block){UINT64_MAX - 4096, 64};
    b[k++] = (ref_block){UINT64_MAX - 64, 32};
    b[k++] = (ref_block){UINT64_MAX - 32, 32}; /* [2^64 - 33, 2^64 - 1) */
    cr_assert_eq(k, n);
    check_index(b, n, 200000);
    uint64_t start;
    cr_assert(ref_lookup(b, n, UINT64_MAX - 1, &start) && start == UINT64_MAX - 32);
    free(b);
}

Test(preload_leakscan, index_of_blocks_each_alone_stays_small)
{
    /* every block in a segment of its own (megabytes apart): the index coarsens its granule
     * rather than grow past 3.5 bytes a block */
    gen.s = 0x853c49e6748fea9bu;
    size_t n = 4000;
    ref_block *b = malloc(n * sizeof(*b));
    uint64_t sizes[] = {16, 32, 600000};
    uint64_t gaps[] = {1 << 20, 3 << 20, 1 << 30};
    lay_out(b, n, 0x100000, sizes, 3, gaps, 3);
    check_index(b, n, 100000);
    free(b);
}

Test(preload_leakscan, index_of_one_block_and_of_none)
{
    ref_block one = {0x40000, 100};
    gen.s = 1;
    check_index(&one, 1, 1000);
    zwi_leakscan *ls = zwi_leakscan_new(0);
    cr_assert_eq(zwi_leakscan_prepare(ls), 0);
    uintptr_t start;
    cr_assert(!zwi_leakscan_lookup(ls, 0x40000, &start));
    zwi_leakscan_free(ls);
}

/* The scan made by another thread for one that waits for it (the end of a capture, written by a
 * thread of the tracer's own): the waiting thread's stack is scanned from where its frames end,
 * the scanning thread's own stack not at all. The scanner makes the table and the block only it
 * points at, so that no copy of that block's address is ever on the waiting thread's stack. */
typedef struct scan_job {
    zwi_leakscan *ls;
    zwi_leak_thread who;
    uintptr_t held;      /* the waiting thread's block, complemented */
    uintptr_t lost;      /* the scanner's, complemented */
    zwi_leak_roots r;
    int rc;
} scan_job;

static void *
scanner_main(void *arg)
{
    scan_job *j = arg;
    void *volatile mine = calloc(1, 40); /* on the tracer's frames only: no root */
    j->lost = (uintptr_t)mine ^ DISGUISE;
    j->ls = zwi_leakscan_new(0);
    cr_assert_not_null(j->ls);
    cr_assert_eq(zwi_leakscan_add(j->ls, j->held ^ DISGUISE, 24), 0);
    cr_assert_eq(zwi_leakscan_add(j->ls, (uintptr_t)mine, 40), 0);
    cr_assert_eq(zwi_leakscan_prepare(j->ls), 0);
    j->rc = zwi_leakscan_process_roots(j->ls, NULL, &j->who, &j->r);
    if (j->rc == 0)
        zwi_leakscan_classify(j->ls);
    cr_assert_not_null(mine);
    mine = NULL;
    return NULL;
}

static __attribute__((noinline)) void
scan_for_me(scan_job *j)
{
    scrub_stack();
    jmp_buf regs;
    setjmp(regs);
    j->who = zwi_leakscan_this_thread((uintptr_t)&regs);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, scanner_main, j), 0);
    cr_assert_eq(pthread_join(th, NULL), 0);
}

Test(preload_leakscan, process_roots_for_a_thread_that_waits)
{
    void *volatile held = calloc(1, 24); /* only in this frame, above the jmp_buf */
    scan_job j = {.held = (uintptr_t)held ^ DISGUISE};
    scan_for_me(&j);
    cr_assert_eq(j.rc, 0);
    cr_assert_geq(j.r.threads, 1, "the waiting thread is the scan's own");
    cr_assert_eq(zwi_leakscan_kind(j.ls, (uintptr_t)held), ZWI_LEAK_REACHABLE,
                 "on the waiting thread's stack");
    cr_assert_eq(zwi_leakscan_kind(j.ls, j.lost ^ DISGUISE), ZWI_LEAK_DEFINITE,
                 "only the scanning thread's stack holds it");
    zwi_leakscan_free(j.ls);
    free(held);
    free((void *)(j.lost ^ DISGUISE));
}

/* A thread of the tracer's own that works beside the scan (the end's writer, while a thread of
 * its own scans): named in `beside`, it is neither stopped nor read, so a block only its stack
 * holds is lost; not named, it is stopped like any thread and its stack read. */
typedef struct beside_thread {
    atomic_int ready, go;
    uintptr_t block; /* complemented */
    pid_t tid;
} beside_thread;

static void *
beside_main(void *arg)
{
    beside_thread *b = arg;
    void *volatile mine = calloc(1, 56); /* on this thread's stack only */
    b->block = (uintptr_t)mine ^ DISGUISE;
    b->tid = zwi_leakscan_this_thread(0).tid;
    atomic_store(&b->ready, 1);
    while (!atomic_load(&b->go))
        sched_yield();
    cr_assert_not_null(mine);
    mine = NULL;
    return NULL;
}

static void *
scanner_beside_main(void *arg)
{
    scan_job *j = arg;
    j->ls = zwi_leakscan_new(0);
    cr_assert_not_null(j->ls);
    cr_assert_eq(zwi_leakscan_add(j->ls, j->held ^ DISGUISE, 24), 0);
    cr_assert_eq(zwi_leakscan_add(j->ls, j->lost ^ DISGUISE, 56), 0);
    cr_assert_eq(zwi_leakscan_prepare(j->ls), 0);
    j->rc = zwi_leakscan_process_roots(j->ls, NULL, &j->who, &j->r);
    if (j->rc == 0)
        zwi_leakscan_classify(j->ls);
    return NULL;
}

static __attribute__((noinline)) void
scan_for_me_beside(scan_job *j, pid_t beside)
{
    scrub_stack();
    jmp_buf regs;
    setjmp(regs);
    j->who = zwi_leakscan_this_thread((uintptr_t)&regs);
    j->who.beside = beside;
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, scanner_beside_main, j), 0);
    cr_assert_eq(pthread_join(th, NULL), 0);
}

Test(preload_leakscan, a_thread_beside_the_scan_is_neither_stopped_nor_read)
{
    size_t read_unnamed = 0; /* threads whose roots the scan read with none named */
    for (int named = 0; named < 2; named++) {
        beside_thread b = {0};
        pthread_t bt;
        cr_assert_eq(pthread_create(&bt, NULL, beside_main, &b), 0);
        while (!atomic_load(&b.ready))
            sched_yield();
        void *volatile held = calloc(1, 24);
        scan_job j = {.held = (uintptr_t)held ^ DISGUISE, .lost = b.block};
        scan_for_me_beside(&j, named ? b.tid : 0);
        atomic_store(&b.go, 1);
        cr_assert_eq(pthread_join(bt, NULL), 0);
        cr_assert_eq(j.rc, 0);
        cr_assert_eq(zwi_leakscan_kind(j.ls, (uintptr_t)held), ZWI_LEAK_REACHABLE);
        if (named) {
            cr_assert_eq(j.r.threads, read_unnamed - 1, "the thread beside was stopped");
            cr_assert_eq(zwi_leakscan_kind(j.ls, b.block ^ DISGUISE), ZWI_LEAK_DEFINITE,
                         "the stack of the thread beside was read");
        } else {
            cr_assert_geq(j.r.threads, 2);
            read_unnamed = j.r.threads;
            cr_assert_eq(zwi_leakscan_kind(j.ls, b.block ^ DISGUISE), ZWI_LEAK_REACHABLE,
                         "a thread not named beside is read like any other");
        }
        zwi_leakscan_free(j.ls);
        free(held);
        free((void *)(b.block ^ DISGUISE));
    }
}
