/* bench/run/alloc_heavy.c - the allocation-heavy program bench/run runs plain, under `zw run`,
 * heaptrack and massif. An ordinary program (it does not link zerowaste): a working set of
 * SLOTS blocks, and OPS steps that each pick a slot at random and malloc, calloc, realloc or free
 * it, with sizes from three classes (small 8-128 B, medium 128 B-4 KiB, large 4-64 KiB), from
 * five call sites at different depths. Fixed seed: every run makes the same calls. Built with
 * frame pointers, as the tests' programs are. Usage: alloc_heavy [OPS] (default 3000000). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 65536 /* the working set: at most this many live blocks */

static uint64_t rng = 0x9E3779B97F4A7C15u; /* xorshift64 state; fixed seed */

static uint64_t
next_random(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* 80 % small, 18 % medium, 2 % large */
static size_t
pick_size(void)
{
    uint64_t r = next_random();
    unsigned c = (unsigned)(r % 100);
    if (c < 80)
        return 8 + (size_t)((r >> 8) % 121);
    if (c < 98)
        return 128 + (size_t)((r >> 8) % 3969);
    return 4096 + (size_t)((r >> 8) % 61441);
}

static __attribute__((noinline)) void *
make_small(size_t n)
{
    void *p = malloc(n);
    if (p != NULL)
        memset(p, 1, n < 64 ? n : 64);
    return p;
}

static __attribute__((noinline)) void *
make_zeroed(size_t n)
{
    return calloc(1, n);
}

static __attribute__((noinline)) void *
make_block(size_t n)
{
    return n < 128 ? make_small(n) : (n < 1024 ? make_zeroed(n) : make_small(n));
}

static __attribute__((noinline)) void *
grow(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (q != NULL)
        ((char *)q)[n - 1] = 2;
    return q;
}

/* a short-lived scratch buffer: a temporary allocation */
static __attribute__((noinline)) unsigned
scratch(size_t n)
{
    unsigned char *s = malloc(n);
    if (s == NULL)
        return 0;
    memset(s, (int)n, n);
    unsigned sum = s[n / 2];
    free(s);
    return sum;
}

int
main(int argc, char **argv)
{
    long ops = argc > 1 ? atol(argv[1]) : 3000000;
    void **slot = calloc(SLOTS, sizeof(*slot));
    size_t *size = calloc(SLOTS, sizeof(*size));
    if (slot == NULL || size == NULL || ops <= 0) {
        fprintf(stderr, "alloc_heavy: cannot start\n");
        return 1;
    }
    unsigned long sum = 0;
    for (long i = 0; i < ops; i++) {
        uint64_t r = next_random();
        size_t k = (size_t)(r % SLOTS);
        unsigned what = (unsigned)((r >> 32) % 10);
        if (slot[k] == NULL) {
            size[k] = pick_size();
            slot[k] = make_block(size[k]);
        } else if (what < 3) {
            size[k] = pick_size();
            void *q = grow(slot[k], size[k]);
            if (q != NULL)
                slot[k] = q;
        } else if (what < 4) {
            sum += scratch(1 + size[k] % 512);
        } else {
            free(slot[k]);
            slot[k] = NULL;
        }
    }
    size_t live = 0;
    for (size_t k = 0; k < SLOTS; k++) {
        live += slot[k] != NULL;
        free(slot[k]);
    }
    free(slot);
    free(size);
    printf("alloc_heavy: %ld steps, %zu blocks live at the end, checksum %lu\n", ops, live, sum);
    return 0;
}
