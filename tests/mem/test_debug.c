/* tests/mem/test_debug.c - debug mode (ZW_HEAP_DEBUG, ZW_MALLOC=debug): each error it finds, with
 * the report it writes, fatal (the process aborts) and with ZW_HEAP_DEBUG_CONTINUE (counted);
 * the fill patterns; serial numbers; the traceback hook; the environment variable.
 *
 * Each error is a scenario run twice: in this process on a heap with ZW_HEAP_DEBUG_CONTINUE whose
 * reports go to a memory stream, and in a child process on a fatal heap whose reports go to a
 * temporary file (zw_debug_test.h), which must abort. A scenario first writes "block <address>"
 * to the report stream so the test knows the address the report must name.
 *
 * Sizes follow the layout in src/mem/debug.c: 32 bytes of header, the data, then at least 16
 * guard bytes, so a 10-byte request takes a 64-byte block with 22 guard bytes after the data. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zerowaste/zerowaste.h>

#include "zw_debug_test.h"

#define DEBUG_HEAD 32 /* bytes before the caller's data */
#define DEBUG_TAIL 16 /* guard bytes after it, at least */
#define FRESH      0xCB
#define DEAD       0xDB

/* The class of the pool block under a debug block of n bytes. */
static size_t
debug_class(size_t n)
{
    return (DEBUG_HEAD + n + DEBUG_TAIL + 15) / 16 * 16;
}

/* ---- heaps whose reports the test reads ---- */

typedef struct dheap {
    zw_heap *h;
    FILE *report; /* a memory stream over `text` */
    char *text;   /* what the heap has reported so far (after dheap_report) */
    size_t len;
} dheap;

static void
dheap_open(dheap *d, unsigned flags)
{
    d->text = NULL;
    d->len = 0;
    d->report = open_memstream(&d->text, &d->len);
    cr_assert_not_null(d->report);
    d->h = zw_heap_new_ex(&(zw_heap_config){.flags = ZW_HEAP_DEBUG | ZW_HEAP_IGNORE_ENV | flags,
                                            .report = d->report});
    cr_assert_not_null(d->h);
    cr_assert(zw_heap_is_debug(d->h));
}

/* A heap that reports and goes on. */
static void
dheap_open_continue(dheap *d)
{
    dheap_open(d, ZW_HEAP_DEBUG_CONTINUE);
}

static const char *
dheap_report(dheap *d)
{
    fflush(d->report);
    return d->text != NULL ? d->text : "";
}

static void
dheap_close(dheap *d)
{
    zw_heap_destroy(d->h);
    fclose(d->report);
    free(d->text);
}

/* Tells the test which address the report that follows is about. */
static void
note_block(FILE *out, const void *p)
{
    fprintf(out, "block %p\n", p);
    fflush(out);
}

/* The address written by note_block(). */
static void *
noted_block(const char *text)
{
    const char *at = strstr(text, "block ");
    void *p = NULL;
    cr_assert(at != NULL && sscanf(at, "block %p", &p) == 1, "no block noted in:\n%s", text);
    return p;
}

/* ---- scenarios: one error each ---- */

typedef void scenario_fn(zw_heap *h, FILE *out);

typedef struct scenario {
    scenario_fn *run;
} scenario;

static void
overrun_by_one_then_free(zw_heap *h, FILE *out)
{
    char *p = zw_heap_malloc(h, 10);
    note_block(out, p);
    p[10] = 'A';
    zw_heap_free(h, p);
}

static void
overrun_by_one_then_realloc(zw_heap *h, FILE *out)
{
    char *p = zw_heap_malloc(h, 10);
    memcpy(p, "0123456789", 10);
    note_block(out, p);
    p[10] = 'A';
    char *q = zw_heap_realloc(h, p, 100);
    zw_heap_free(h, q);
}

static void
underrun_by_one_then_free(zw_heap *h, FILE *out)
{
    char *p = zw_heap_malloc(h, 10);
    note_block(out, p);
    p[-1] = 'A';
    zw_heap_free(h, p);
}

static void
free_twice(zw_heap *h, FILE *out)
{
    void *p = zw_heap_malloc(h, 10);
    note_block(out, p);
    zw_heap_free(h, p);
    zw_heap_free(h, p);
}

static void
free_stack_pointer(zw_heap *h, FILE *out)
{
    /* The heap reads the 64 bytes before a pointer it does not know: give it a frame to read. */
    _Alignas(16) unsigned char frame[128] = {0};
    note_block(out, frame + 64);
    zw_heap_free(h, frame + 64);
}

/* Frees block number `nth` (from 1) of size `n` of another heap, debug or not. */
static void
free_block_of_other_heap(zw_heap *h, FILE *out, unsigned flags, int nth, size_t n)
{
    zw_heap *other = zw_heap_new_ex(&(zw_heap_config){.flags = flags | ZW_HEAP_IGNORE_ENV});
    void *p = NULL;
    for (int i = 0; i < nth; i++)
        p = zw_heap_malloc(other, n);
    note_block(out, p);
    zw_heap_free(h, p);
    zw_heap_destroy(other);
}

static void
free_other_debug_heaps_small_block(zw_heap *h, FILE *out)
{
    free_block_of_other_heap(h, out, ZW_HEAP_DEBUG | ZW_HEAP_DEBUG_CONTINUE, 1, 10);
}

static void
free_other_debug_heaps_big_block(zw_heap *h, FILE *out)
{
    free_block_of_other_heap(h, out, ZW_HEAP_DEBUG | ZW_HEAP_DEBUG_CONTINUE, 1, 1000);
}

static void
free_release_heaps_second_block(zw_heap *h, FILE *out)
{
    free_block_of_other_heap(h, out, 0, 2, 10);
}

/* The first block a release heap hands out is the first byte of its first arena, with nothing
 * mapped before it: a debug heap must not read near a pointer it does not know. */
static void
free_release_heaps_first_block(zw_heap *h, FILE *out)
{
    free_block_of_other_heap(h, out, 0, 1, 10);
}

static void
free_release_heaps_big_block(zw_heap *h, FILE *out)
{
    free_block_of_other_heap(h, out, 0, 1, 1000);
}

static void
free_interior_pointer(zw_heap *h, FILE *out)
{
    char *p = zw_heap_malloc(h, 100);
    note_block(out, p + 16);
    zw_heap_free(h, p + 16);
    zw_heap_free(h, p);
}

static void
write_after_free_then_reuse(zw_heap *h, FILE *out)
{
    char *p = zw_heap_malloc(h, 10);
    note_block(out, p);
    zw_heap_free(h, p);
    p[3] = 'X'; /* the bug: p is dead */
    /* The same class: the last block freed is handed out first, and checked. */
    void *q = zw_heap_malloc(h, 10);
    zw_heap_free(h, q);
}

static void
write_after_free_to_big_block_then_evict(zw_heap *h, FILE *out)
{
    char *p = zw_heap_malloc(h, 1000);
    note_block(out, p);
    zw_heap_free(h, p); /* waits in the quarantine of 16 */
    p[5] = 'X';
    for (int i = 0; i < 16; i++) /* the 16th free pushes p out, checked */
        zw_heap_free(h, zw_heap_malloc(h, 1000));
}

/* Runs `s` on a fatal debug heap reporting to `out` (in a child: see zwt_child_run). */
static void
run_on_fatal_heap(FILE *out, void *arg)
{
    const scenario *s = arg;
    zw_heap *h = zw_heap_new_ex(
        &(zw_heap_config){.flags = ZW_HEAP_DEBUG | ZW_HEAP_IGNORE_ENV, .report = out});
    if (h != NULL)
        s->run(h, out);
}

/* Runs `run` in a child on a fatal heap, asserts it aborted and returns what it reported
 * (the caller frees it). */
static char *
run_fatal(scenario_fn *run)
{
    scenario s = {run};
    zwt_child c;
    zwt_child_run(&c, run_on_fatal_heap, &s);
    zwt_assert_aborted(&c);
    return c.text;
}

/* Runs `run` on a heap that reports and goes on; returns its errors, the report in `d`. */
static size_t
run_continue(dheap *d, scenario_fn *run)
{
    dheap_open_continue(d);
    run(d->h, d->report);
    return zw_heap_debug_errors(d->h);
}

/* snprintf into a fixed buffer, for expected report lines. */
#define EXPECT(buf, ...) snprintf((buf), sizeof(buf), __VA_ARGS__)

/* ---- overrun ---- */

Test(mem_debug, overrun_by_one_byte_is_reported_at_free)
{
    dheap d;
    cr_assert_eq(run_continue(&d, overrun_by_one_then_free), 1);
    const char *text = dheap_report(&d);
    char *p = noted_block(text);
    size_t tail = debug_class(10) - DEBUG_HEAD - 10;
    cr_assert_eq(tail, 22);
    char want[2048];
    int len = EXPECT(want,
                     "block %p\n"
                     "zw: mem: buffer overrun after %p, found at free (10 bytes requested, "
                     "serial 1, 64-byte class)\n"
                     "    the 22 guard bytes at tail=%p are not all 0xfb:\n"
                     "        at tail+0: 0x41 *** CHANGED\n",
                     (void *)p, (void *)p, (void *)(p + 10));
    for (int i = 1; i < 16; i++)
        len += snprintf(want + len, sizeof(want) - (size_t)len, "        at tail+%d: 0xfb\n", i);
    snprintf(want + len, sizeof(want) - (size_t)len,
             "        (6 more bytes as expected)\n"
             "    data at %p: cb cb cb cb cb cb cb cb cb cb\n"
             "    start tracing (zw_trace_start) to see where the block was allocated\n",
             (void *)p);
    cr_assert_str_eq(text, want);
    cr_assert_eq(zw_heap_allocated_blocks(d.h), 0, "the damaged block was freed all the same");
    dheap_close(&d);
}

Test(mem_debug, overrun_by_one_byte_aborts_at_free)
{
    char *text = run_fatal(overrun_by_one_then_free);
    char want[256];
    EXPECT(want,
           "zw: mem: buffer overrun after %p, found at free (10 bytes requested, serial 1, "
           "64-byte class)\n",
           noted_block(text));
    zwt_assert_has(text, want);
    zwt_assert_has(text, "        at tail+0: 0x41 *** CHANGED\n");
    free(text);
}

Test(mem_debug, overrun_into_the_last_guard_byte_is_reported)
{
    dheap d;
    dheap_open_continue(&d);
    for (size_t n = 0; n <= 700; n += 7) {
        unsigned char *p = zw_heap_malloc(d.h, n);
        size_t guard = n + DEBUG_TAIL <= 512 - DEBUG_HEAD ? debug_class(n) - DEBUG_HEAD - n
                                                          : DEBUG_TAIL; /* big: exactly 16 */
        p[n + guard - 1] ^= 0x55;
        size_t before = zw_heap_debug_errors(d.h);
        zw_heap_free(d.h, p);
        cr_assert_eq(zw_heap_debug_errors(d.h), before + 1,
                     "a change %zu bytes after a %zu-byte block went unseen", guard, n);
    }
    char want[64];
    EXPECT(want, "(700 bytes requested, serial %d, big block)\n", 700 / 7 + 1);
    zwt_assert_has(dheap_report(&d), want);
    dheap_close(&d);
}

Test(mem_debug, overrun_is_reported_at_realloc)
{
    dheap d;
    cr_assert_eq(run_continue(&d, overrun_by_one_then_realloc), 1);
    const char *text = dheap_report(&d);
    char want[256];
    EXPECT(want,
           "zw: mem: buffer overrun after %p, found at realloc (10 bytes requested, serial 1, "
           "64-byte class)\n",
           noted_block(text));
    zwt_assert_has(text, want);
    zwt_assert_has(text, "    data at ");
    zwt_assert_has(text, ": 30 31 32 33 34 35 36 37 38 39\n");
    cr_assert_eq(zw_heap_allocated_blocks(d.h), 0);
    dheap_close(&d);
}

Test(mem_debug, overrun_aborts_at_realloc)
{
    char *text = run_fatal(overrun_by_one_then_realloc);
    char want[256];
    EXPECT(want, "zw: mem: buffer overrun after %p, found at realloc (", noted_block(text));
    zwt_assert_has(text, want);
    free(text);
}

/* ---- underrun ---- */

Test(mem_debug, underrun_by_one_byte_is_reported_at_free)
{
    dheap d;
    cr_assert_eq(run_continue(&d, underrun_by_one_then_free), 1);
    const char *text = dheap_report(&d);
    char want[256];
    EXPECT(want,
           "zw: mem: buffer underrun before %p, found at free (10 bytes requested, serial 1, "
           "64-byte class)\n",
           noted_block(text));
    zwt_assert_has(text, want);
    zwt_assert_has(text, "    the guard bytes before the data are not all 0xfb:\n");
    zwt_assert_has(text, "        at p-1: 0x41 *** CHANGED\n");
    zwt_assert_has(text, "        at p-7: 0xfb\n");
    zwt_assert_lacks(text, "state byte");
    dheap_close(&d);
}

Test(mem_debug, overrun_far_into_the_guard_lists_the_changed_byte)
{
    dheap d;
    dheap_open_continue(&d);
    unsigned char *p = zw_heap_malloc(d.h, 10); /* 22 guard bytes follow in the 64-byte class */
    p[10 + 20] = 0x42;
    zw_heap_free(d.h, p);
    cr_assert_eq(zw_heap_debug_errors(d.h), 1);
    const char *text = dheap_report(&d);
    zwt_assert_has(text, "        at tail+15: 0xfb\n");
    zwt_assert_has(text, "        at tail+20: 0x42 *** CHANGED\n");
    zwt_assert_has(text, "        (5 more bytes as expected)\n");
    dheap_close(&d);
}

Test(mem_debug, underrun_by_one_byte_aborts_at_free)
{
    char *text = run_fatal(underrun_by_one_then_free);
    char want[256];
    EXPECT(want, "zw: mem: buffer underrun before %p, found at free (", noted_block(text));
    zwt_assert_has(text, want);
    free(text);
}

/* ---- double free ---- */

Test(mem_debug, double_free_is_reported_and_the_block_freed_once)
{
    dheap d;
    cr_assert_eq(run_continue(&d, free_twice), 1);
    const char *text = dheap_report(&d);
    char want[256];
    EXPECT(want, "zw: mem: double free of %p (10 bytes requested, serial 1, 64-byte class)\n",
           noted_block(text));
    zwt_assert_has(text, want);
    cr_assert_eq(zw_heap_allocated_blocks(d.h), 0);
    /* Freed twice onto the free list, the block would now be handed out twice. */
    void *a = zw_heap_malloc(d.h, 10);
    void *b = zw_heap_malloc(d.h, 10);
    cr_assert_neq(a, b);
    zw_heap_free(d.h, a);
    zw_heap_free(d.h, b);
    cr_assert_eq(zw_heap_debug_errors(d.h), 1);
    dheap_close(&d);
}

Test(mem_debug, double_free_aborts)
{
    char *text = run_fatal(free_twice);
    char want[256];
    EXPECT(want, "zw: mem: double free of %p (10 bytes requested, serial 1, 64-byte class)\n",
           noted_block(text));
    zwt_assert_has(text, want);
    free(text);
}

Test(mem_debug, double_free_of_a_big_block_is_reported)
{
    dheap d;
    dheap_open_continue(&d);
    void *p = zw_heap_malloc(d.h, 2000);
    zw_heap_free(d.h, p);
    zw_heap_free(d.h, p);
    cr_assert_eq(zw_heap_debug_errors(d.h), 1);
    char want[256];
    EXPECT(want, "zw: mem: double free of %p (2000 bytes requested, serial 1, big block)\n", p);
    zwt_assert_has(dheap_report(&d), want);
    cr_assert_eq(zw_heap_allocated_blocks(d.h), 0);
    dheap_close(&d);
}

/* Once 16 more big blocks have pushed it out of the quarantine, the block is given back to raw
 * and its memory may be gone: the heap still tells a double free, without reading it. */
Test(mem_debug, double_free_of_a_big_block_out_of_the_quarantine_is_reported)
{
    dheap d;
    dheap_open_continue(&d);
    void *p = zw_heap_malloc(d.h, 4 * ZWT_MIB);
    zw_heap_free(d.h, p);
    for (int i = 0; i < 16; i++)
        zw_heap_free(d.h, zw_heap_malloc(d.h, 1000 + (size_t)i));
    zw_heap_free(d.h, p);
    cr_assert_eq(zw_heap_debug_errors(d.h), 1);
    char want[256];
    EXPECT(want, "zw: mem: free of %p, a big block already freed (double free)\n", p);
    zwt_assert_has(dheap_report(&d), want);
    dheap_close(&d);
}

Test(mem_debug, realloc_of_a_freed_block_is_reported_and_fails)
{
    dheap d;
    dheap_open_continue(&d);
    void *p = zw_heap_malloc(d.h, 10);
    zw_heap_free(d.h, p);
    cr_assert_null(zw_heap_realloc(d.h, p, 20));
    cr_assert_eq(zw_heap_debug_errors(d.h), 1);
    char want[256];
    EXPECT(want, "zw: mem: realloc of %p, a block already freed (10 bytes requested, serial 1, ",
           p);
    zwt_assert_has(dheap_report(&d), want);
    cr_assert_eq(zw_heap_allocated_blocks(d.h), 0);
    dheap_close(&d);
}

/* ---- pointers that are not blocks of the heap ---- */

Test(mem_debug, free_of_a_stack_pointer_is_reported)
{
    dheap d;
    cr_assert_eq(run_continue(&d, free_stack_pointer), 1);
    const char *text = dheap_report(&d);
    char want[256];
    EXPECT(want, "zw: mem: free of %p, a pointer not from this heap\n", noted_block(text));
    zwt_assert_has(text, want);
    dheap_close(&d);
}

Test(mem_debug, free_of_a_stack_pointer_aborts)
{
    char *text = run_fatal(free_stack_pointer);
    char want[256];
    EXPECT(want, "zw: mem: free of %p, a pointer not from this heap\n", noted_block(text));
    zwt_assert_has(text, want);
    free(text);
}

/* Runs `run` on a heap that reports and goes on and asserts it reported `run`'s block as a
 * pointer not from this heap. */
static void
assert_reported_as_foreign(scenario_fn *run)
{
    dheap d;
    cr_assert_eq(run_continue(&d, run), 1);
    const char *text = dheap_report(&d);
    char want[256];
    EXPECT(want, "zw: mem: free of %p, a pointer not from this heap\n", noted_block(text));
    zwt_assert_has(text, want);
    cr_assert_eq(zw_heap_allocated_blocks(d.h), 0);
    dheap_close(&d);
}

Test(mem_debug, free_of_another_debug_heaps_small_block_is_reported)
{
    assert_reported_as_foreign(free_other_debug_heaps_small_block);
}

Test(mem_debug, free_of_another_debug_heaps_big_block_is_reported)
{
    assert_reported_as_foreign(free_other_debug_heaps_big_block);
}

Test(mem_debug, free_of_a_release_heaps_small_block_is_reported)
{
    assert_reported_as_foreign(free_release_heaps_second_block);
}

/* Debug mode looks a foreign pointer up in its own tables before reading anything near it:
 * the first block of a release heap's arena has nothing mapped 64 bytes before it. */
Test(mem_debug, free_of_a_release_heaps_first_block_is_reported)
{
    assert_reported_as_foreign(free_release_heaps_first_block);
}

/* The same for a release heap's big block: nothing before the C library's block is read. */
Test(mem_debug, free_of_a_release_heaps_big_block_is_reported)
{
    assert_reported_as_foreign(free_release_heaps_big_block);
}

Test(mem_debug, free_of_another_heaps_block_aborts)
{
    char *text = run_fatal(free_release_heaps_second_block);
    char want[256];
    EXPECT(want, "zw: mem: free of %p, a pointer not from this heap\n", noted_block(text));
    zwt_assert_has(text, want);
    free(text);
}

Test(mem_debug, free_of_a_pointer_into_a_block_is_not_the_start_of_a_block)
{
    dheap d;
    cr_assert_eq(run_continue(&d, free_interior_pointer), 1, "the block itself is freed cleanly");
    const char *text = dheap_report(&d);
    char want[256];
    EXPECT(want, "zw: mem: free of %p, which is not the start of a block of this heap\n",
           noted_block(text));
    zwt_assert_has(text, want);
    cr_assert_eq(zw_heap_allocated_blocks(d.h), 0);
    dheap_close(&d);
}

Test(mem_debug, free_of_a_pointer_into_a_block_aborts)
{
    char *text = run_fatal(free_interior_pointer);
    char want[256];
    EXPECT(want, "zw: mem: free of %p, which is not the start of a block of this heap\n",
           noted_block(text));
    zwt_assert_has(text, want);
    free(text);
}

Test(mem_debug, free_of_a_misaligned_pointer_is_reported)
{
    dheap d;
    dheap_open_continue(&d);
    char *p = zw_heap_malloc(d.h, 100);
    zw_heap_free(d.h, p + 1);
    zw_heap_free(d.h, p);
    cr_assert_eq(zw_heap_debug_errors(d.h), 1);
    char want[256];
    EXPECT(want, "zw: mem: free of %p, a pointer not from this heap (misaligned)\n",
           (void *)(p + 1));
    zwt_assert_has(dheap_report(&d), want);
    dheap_close(&d);
}

/* ---- write after free ---- */

Test(mem_debug, write_after_free_is_found_when_the_block_is_reused)
{
    dheap d;
    cr_assert_eq(run_continue(&d, write_after_free_then_reuse), 1);
    const char *text = dheap_report(&d);
    char want[512];
    EXPECT(want,
           "zw: mem: write after free to %p+3, found when the block was reused (10 bytes "
           "requested, serial 1, 64-byte class)\n"
           "    byte at p+3 is 0x58, expected 0xdb (freed memory)\n",
           noted_block(text));
    zwt_assert_has(text, want);
    dheap_close(&d);
}

Test(mem_debug, write_after_free_aborts_when_the_block_is_reused)
{
    char *text = run_fatal(write_after_free_then_reuse);
    char want[256];
    EXPECT(want, "zw: mem: write after free to %p+3, found when the block was reused (",
           noted_block(text));
    zwt_assert_has(text, want);
    free(text);
}

Test(mem_debug, write_after_free_to_a_big_block_is_found_when_it_leaves_quarantine)
{
    dheap d;
    dheap_open_continue(&d);
    char *p = zw_heap_malloc(d.h, 1000);
    zw_heap_free(d.h, p);
    p[5] = 'X';
    for (int i = 0; i < 15; i++)
        zw_heap_free(d.h, zw_heap_malloc(d.h, 1000));
    cr_assert_eq(zw_heap_debug_errors(d.h), 0, "15 later frees leave the block in quarantine");
    zw_heap_free(d.h, zw_heap_malloc(d.h, 1000));
    cr_assert_eq(zw_heap_debug_errors(d.h), 1, "the 16th pushes it out and finds the write");
    char want[512];
    EXPECT(want,
           "zw: mem: write after free to %p+5, found when the block left the quarantine (1000 "
           "bytes requested, serial 1, big block)\n"
           "    byte at p+5 is 0x58, expected 0xdb (freed memory)\n",
           (void *)p);
    zwt_assert_has(dheap_report(&d), want);
    dheap_close(&d);
}

Test(mem_debug, write_after_free_to_a_big_block_aborts)
{
    char *text = run_fatal(write_after_free_to_big_block_then_evict);
    char want[256];
    EXPECT(want, "zw: mem: write after free to %p+5, found when the block left the quarantine (",
           noted_block(text));
    zwt_assert_has(text, want);
    free(text);
}

Test(mem_debug, stray_write_into_a_never_used_block_is_found_when_it_is_handed_out)
{
    dheap d;
    dheap_open_continue(&d);
    unsigned char *p = zw_heap_malloc(d.h, 10); /* first block of a fresh pool */
    /* Past p's 64-byte block, into the data of the next one, which was never handed out. */
    p[64 + 6] = 'Z';
    unsigned char *q = zw_heap_malloc(d.h, 10);
    cr_assert_eq(q, p + 64, "blocks are carved in address order");
    cr_assert_eq(zw_heap_debug_errors(d.h), 1);
    char want[256];
    EXPECT(want, "zw: mem: stray write to %p+6, in memory never handed out (64-byte class)\n",
           (void *)q);
    zwt_assert_has(dheap_report(&d), want);
    dheap_close(&d);
}

/* ---- fill patterns ---- */

static size_t
first_not(const volatile unsigned char *p, size_t n, int want)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != want)
            return i;
    }
    return n;
}

Test(mem_debug, fresh_memory_reads_0xcb)
{
    dheap d;
    dheap_open_continue(&d);
    static const size_t sizes[] = {1, 10, 16, 100, 464, 465, 512, 1000, 100000};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t n = sizes[i];
        unsigned char *p = zw_heap_malloc(d.h, n);
        cr_assert_eq(first_not(p, n, FRESH), n, "malloc(%zu): byte %zu is not 0xcb", n,
                     first_not(p, n, FRESH));
        cr_assert_eq(zw_heap_usable_size(d.h, p), n, "debug mode gives exactly the request");
        zw_heap_free(d.h, p);
    }
    /* realloc's new bytes are fresh too; the old ones are copied */
    unsigned char *p = zw_heap_malloc(d.h, 8);
    memset(p, 0x11, 8);
    p = zw_heap_realloc(d.h, p, 40);
    cr_assert_eq(first_not(p, 8, 0x11), 8);
    cr_assert_eq(first_not(p + 8, 32, FRESH), 32, "the grown part reads 0xcb");
    zw_heap_free(d.h, p);
    cr_assert_eq(zw_heap_debug_errors(d.h), 0);
    dheap_close(&d);
}

/* Reading a block after freeing it is the bug debug mode exposes, so the test reads it through
 * an alias before anything can reuse it. ASan builds do not poison debug heaps (their checks
 * read freed blocks: see mem_internal.h), and a freed big block stays allocated in the
 * quarantine, so this read is clean under ASan too. */
Test(mem_debug, freed_memory_reads_0xdb)
{
    dheap d;
    dheap_open_continue(&d);
    static const size_t sizes[] = {1, 10, 100, 464, 1000, 100000};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t n = sizes[i];
        unsigned char *p = zw_heap_malloc(d.h, n);
        memset(p, 0x22, n);
        const volatile unsigned char *alias = p;
        zw_heap_free(d.h, p);
        cr_assert_eq(first_not(alias, n, DEAD), n, "free of %zu bytes: byte %zu is not 0xdb", n,
                     first_not(alias, n, DEAD));
    }
    /* realloc always moves in debug mode: the old block is dead at once */
    unsigned char *p = zw_heap_malloc(d.h, 24);
    memset(p, 0x33, 24);
    const volatile unsigned char *old = p;
    unsigned char *q = zw_heap_realloc(d.h, p, 24);
    cr_assert_neq(q, p, "debug realloc moves even within the class");
    cr_assert_eq(first_not(q, 24, 0x33), 24);
    cr_assert_eq(first_not(old, 24, DEAD), 24, "the old block reads 0xdb");
    zw_heap_free(d.h, q);
    cr_assert_eq(zw_heap_debug_errors(d.h), 0);
    dheap_close(&d);
}

Test(mem_debug, calloc_still_zeroes)
{
    dheap d;
    dheap_open_continue(&d);
    static const size_t sizes[] = {0, 1, 10, 100, 464, 1000, 100000};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t n = sizes[i];
        unsigned char *dirty = zw_heap_malloc(d.h, n);
        memset(dirty, 0x44, n);
        zw_heap_free(d.h, dirty);
        unsigned char *p = zw_heap_calloc(d.h, n, 1);
        cr_assert_not_null(p);
        cr_assert_eq(first_not(p, n, 0), n, "calloc(%zu, 1): byte %zu is not 0", n,
                     first_not(p, n, 0));
        zw_heap_free(d.h, p);
    }
    cr_assert_eq(zw_heap_debug_errors(d.h), 0);
    dheap_close(&d);
}

/* ---- traceback hook ---- */

typedef struct hook_log {
    const void *ptr; /* the pointer the hook was last called with */
    int calls;
    bool knows; /* what the hook answers */
} hook_log;

static bool
fake_traceback(void *ctx, const void *ptr, FILE *out)
{
    hook_log *log = ctx;
    log->ptr = ptr;
    log->calls++;
    if (!log->knows)
        return false;
    fprintf(out, "    block allocated at (most recent call first):\n");
    fprintf(out, "      fake.c:42 in make_it\n");
    return true;
}

Test(mem_debug, traceback_hook_gets_the_data_pointer_and_its_lines_replace_the_hint)
{
    hook_log log = {.knows = true};
    zw_mem_set_traceback_hook(fake_traceback, &log);
    dheap d;
    cr_assert_eq(run_continue(&d, overrun_by_one_then_free), 1);
    zw_mem_set_traceback_hook(NULL, NULL);
    const char *text = dheap_report(&d);
    cr_assert_eq(log.calls, 1);
    cr_assert_eq(log.ptr, noted_block(text), "the hook is asked about the data pointer");
    zwt_assert_has(text, "cb cb\n"
                         "    block allocated at (most recent call first):\n"
                         "      fake.c:42 in make_it\n");
    zwt_assert_lacks(text, "zw_trace_start");
    dheap_close(&d);
}

Test(mem_debug, traceback_hook_that_knows_nothing_leaves_the_hint)
{
    hook_log log = {.knows = false};
    zw_mem_set_traceback_hook(fake_traceback, &log);
    dheap d;
    cr_assert_eq(run_continue(&d, overrun_by_one_then_free), 1);
    zw_mem_set_traceback_hook(NULL, NULL);
    cr_assert_eq(log.calls, 1);
    zwt_assert_has(dheap_report(&d),
                   "    start tracing (zw_trace_start) to see where the block was allocated\n");
    dheap_close(&d);
}

Test(mem_debug, removed_traceback_hook_is_not_called)
{
    hook_log log = {.knows = true};
    zw_mem_set_traceback_hook(fake_traceback, &log);
    zw_mem_set_traceback_hook(NULL, NULL);
    dheap d;
    cr_assert_eq(run_continue(&d, overrun_by_one_then_free), 1);
    cr_assert_eq(log.calls, 0);
    zwt_assert_has(dheap_report(&d), "start tracing (zw_trace_start)");
    dheap_close(&d);
}

/* ---- serial numbers ---- */

Test(mem_debug, serial_numbers_increase_per_block)
{
    dheap d;
    dheap_open_continue(&d);
    void *a = zw_heap_malloc(d.h, 10);      /* serial 1 */
    void *b = zw_heap_calloc(d.h, 1, 2000); /* 2 */
    void *c = zw_heap_malloc(d.h, 10);      /* 3 */
    void *e = zw_heap_realloc(d.h, c, 30);  /* 4: a new block */
    void *f = zw_heap_malloc(d.h, 0);       /* 5 */
    void *blocks[] = {a, b, c, e, f};
    static const char *const desc[] = {
        "(10 bytes requested, serial 1, 64-byte class)",
        "(2000 bytes requested, serial 2, big block)",
        "(10 bytes requested, serial 3, 64-byte class)",
        "(30 bytes requested, serial 4, 80-byte class)",
        "(0 bytes requested, serial 5, 48-byte class)",
    };
    zw_heap_free(d.h, a);
    zw_heap_free(d.h, b);
    zw_heap_free(d.h, e);
    zw_heap_free(d.h, f);
    for (int i = 0; i < 5; i++)
        zw_heap_free(d.h, blocks[i]); /* each a double free, whose report shows the serial */
    cr_assert_eq(zw_heap_debug_errors(d.h), 5);
    const char *text = dheap_report(&d);
    for (int i = 0; i < 5; i++) {
        char want[256];
        EXPECT(want, "zw: mem: double free of %p %s\n", blocks[i], desc[i]);
        zwt_assert_has(text, want);
    }
    dheap_close(&d);
}

/* ---- clean use ---- */

Test(mem_debug, clean_workload_reports_no_errors)
{
    enum { SLOTS = 257, STEPS = 60000 };
    dheap d;
    dheap_open(&d, 0); /* fatal: any report would abort the test */
    unsigned char *slot[SLOTS] = {0};
    size_t len[SLOTS] = {0};
    uint64_t x = 0x2545F4914F6CDD1DULL; /* xorshift64, fixed seed */
    for (int step = 0; step < STEPS; step++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t i = (size_t)(x % SLOTS);
        size_t n = (size_t)(x >> 32) % (x & 0x100 ? 2000 : 300);
        unsigned char tag = (unsigned char)i;
        if (slot[i] != NULL) {
            cr_assert_eq(first_not(slot[i], len[i], tag), len[i], "slot %zu lost its bytes", i);
        }
        switch (step % 3) {
        case 0:
            zw_heap_free(d.h, slot[i]);
            slot[i] = (x & 1) ? zw_heap_calloc(d.h, 1, n) : zw_heap_malloc(d.h, n);
            break;
        case 1:
            slot[i] = zw_heap_realloc(d.h, slot[i], n);
            break;
        default:
            zw_heap_free(d.h, slot[i]);
            slot[i] = NULL;
            n = 0;
            break;
        }
        if (slot[i] != NULL || n > 0) {
            cr_assert_not_null(slot[i]);
            memset(slot[i], tag, n);
        }
        len[i] = n;
    }
    for (size_t i = 0; i < SLOTS; i++)
        zw_heap_free(d.h, slot[i]);
    cr_assert_eq(zw_heap_debug_errors(d.h), 0);
    cr_assert_eq(zw_heap_allocated_blocks(d.h), 0);
    cr_assert_eq(zw_heap_allocated_bytes(d.h), 0);
    cr_assert_str_eq(dheap_report(&d), "");
    dheap_close(&d);
}

Test(mem_debug, edge_cases_behave_as_without_debug)
{
    dheap d;
    dheap_open(&d, 0);
    zw_heap_free(d.h, NULL);
    void *a = zw_heap_malloc(d.h, 0);
    void *b = zw_heap_malloc(d.h, 0);
    cr_assert(a != NULL && b != NULL && a != b, "malloc(0) gives distinct pointers");
    cr_assert_eq((uintptr_t)a % ZW_MEM_ALIGNMENT, 0);
    cr_assert(zw_heap_owns(d.h, a), "a debug block lies in the heap's arenas");
    errno = 0;
    cr_assert_null(zw_heap_malloc(d.h, SIZE_MAX));
    cr_assert_eq(errno, ENOMEM);
    errno = 0;
    cr_assert_null(zw_heap_calloc(d.h, SIZE_MAX / 2 + 1, 2));
    cr_assert_eq(errno, ENOMEM);
    unsigned char *p = zw_heap_malloc(d.h, 100);
    memset(p, 0x66, 100);
    errno = 0;
    cr_assert_null(zw_heap_realloc(d.h, p, SIZE_MAX));
    cr_assert_eq(errno, ENOMEM);
    cr_assert_eq(first_not(p, 100, 0x66), 100, "a failed realloc leaves the block alone");
    void *z = zw_heap_realloc(d.h, p, 0);
    cr_assert_not_null(z, "realloc(p, 0) is not a free");
    cr_assert_eq(zw_heap_allocated_blocks(d.h), 3);
    for (size_t n = 0; n <= 600; n++) {
        void *q = zw_heap_malloc(d.h, n);
        cr_assert_eq((uintptr_t)q % ZW_MEM_ALIGNMENT, 0, "malloc(%zu) misaligned", n);
        zw_heap_free(d.h, q);
    }
    zw_heap_free(d.h, a);
    zw_heap_free(d.h, b);
    zw_heap_free(d.h, z);
    cr_assert_eq(zw_heap_allocated_blocks(d.h), 0);
    cr_assert_str_eq(dheap_report(&d), "");
    dheap_close(&d);
}

/* zw_heap_trim() keeps a debug heap's arenas, so a stale pointer stays readable. */
Test(mem_debug, double_free_after_trim_is_still_reported)
{
    dheap d;
    dheap_open_continue(&d);
    void *p = zw_heap_malloc(d.h, 10);
    zw_heap_free(d.h, p);
    zw_heap_trim(d.h);
    zw_heap_free(d.h, p);
    cr_assert_eq(zw_heap_debug_errors(d.h), 1);
    char want[256];
    EXPECT(want, "zw: mem: double free of %p (10 bytes requested, serial 1, 64-byte class)\n", p);
    zwt_assert_has(dheap_report(&d), want);
    dheap_close(&d);
}

Test(mem_debug, destroy_gives_back_everything_including_the_quarantine)
{
    zw_raw *raw = zw_raw_new(NULL);
    zw_heap *h =
        zw_heap_new_ex(&(zw_heap_config){.flags = ZW_HEAP_DEBUG | ZW_HEAP_IGNORE_ENV, .raw = raw});
    for (int i = 0; i < 10; i++)
        zw_heap_free(h, zw_heap_malloc(h, 1000 + (size_t)i)); /* all ten in quarantine */
    for (int i = 0; i < 3000; i++)
        cr_assert_not_null(zw_heap_malloc(h, (size_t)(i % 600)));
    zw_raw_stats st;
    zw_raw_get_stats(raw, &st);
    cr_assert_geq(st.blocks, 10, "quarantined blocks are still allocated from raw");
    zw_heap_destroy(h);
    zw_raw_get_stats(raw, &st);
    cr_assert_eq(st.mapped_bytes, 0);
    cr_assert_eq(st.blocks, 0);
    zw_raw_destroy(raw);
}

/* ---- where reports go, and ZW_MALLOC ---- */

Test(mem_debug, report_goes_to_stderr_by_default_and_aborts, .init = cr_redirect_stderr,
     .signal = SIGABRT)
{
    zw_heap *h = zw_heap_new_ex(&(zw_heap_config){.flags = ZW_HEAP_DEBUG | ZW_HEAP_IGNORE_ENV});
    free_twice(h, stderr);
}

static void
free_twice_on_stderr_heap(FILE *out, void *arg)
{
    (void)arg;
    zw_heap *h = zw_heap_new_ex(&(zw_heap_config){.flags = ZW_HEAP_DEBUG | ZW_HEAP_IGNORE_ENV});
    free_twice(h, out); /* `out` is the child's stderr too */
}

Test(mem_debug, report_goes_to_stderr_when_no_stream_is_given)
{
    zwt_child c;
    zwt_child_run(&c, free_twice_on_stderr_heap, NULL);
    zwt_assert_aborted(&c);
    char want[256];
    EXPECT(want, "zw: mem: double free of %p (", noted_block(c.text));
    zwt_assert_has(c.text, want);
    zwt_child_release(&c);
}

Test(mem_debug, zw_malloc_debug_makes_new_heaps_debug)
{
    cr_assert_eq(setenv("ZW_MALLOC", "debug", 1), 0);
    zw_heap *h = zw_heap_new();
    cr_assert(zw_heap_is_debug(h));
    unsigned char *p = zw_heap_malloc(h, 20);
    cr_assert_eq(first_not(p, 20, FRESH), 20, "the debug fill is on");
    zw_heap_free(h, p);
    zw_heap_destroy(h);
    zw_heap *cfg = zw_heap_new_ex(&(zw_heap_config){.arena_cache = 0});
    cr_assert(zw_heap_is_debug(cfg), "a configured heap reads ZW_MALLOC too");
    zw_heap_destroy(cfg);
}

Test(mem_debug, ignore_env_flag_ignores_zw_malloc)
{
    cr_assert_eq(setenv("ZW_MALLOC", "debug", 1), 0);
    zw_heap *h = zw_heap_new_ex(&(zw_heap_config){.flags = ZW_HEAP_IGNORE_ENV});
    cr_assert_not(zw_heap_is_debug(h));
    zw_heap_destroy(h);
}

Test(mem_debug, other_zw_malloc_values_leave_heaps_alone)
{
    static const char *const values[] = {"", "default", "malloc", "DEBUG", "debug2"};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        cr_assert_eq(setenv("ZW_MALLOC", values[i], 1), 0);
        zw_heap *h = zw_heap_new();
        cr_assert_not(zw_heap_is_debug(h), "ZW_MALLOC='%s' made a debug heap", values[i]);
        zw_heap_destroy(h);
    }
    cr_assert_eq(unsetenv("ZW_MALLOC"), 0);
    zw_heap *h = zw_heap_new();
    cr_assert_not(zw_heap_is_debug(h));
    zw_heap_destroy(h);
}

Test(mem_debug, zw_malloc_debug_makes_the_default_heap_debug)
{
    cr_assert_eq(setenv("ZW_MALLOC", "debug", 1), 0);
    cr_assert(zw_heap_is_debug(zw_mem_default_heap()), "created on first use, after setenv");
    unsigned char *p = zw_mem_malloc(30);
    cr_assert_eq(first_not(p, 30, FRESH), 30);
    zw_mem_free(p);
}
