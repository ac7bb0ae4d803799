/* preload/arena.c - the end of a capture's memory: a door (zw_raw_ops) handing out blocks from
 * pages mapped in chunks and populated as they are handed out, never reused, all unmapped at once.
 *
 * The end of a capture builds its table (every traceback symbolised: cc1plus's 95k make 46 MB
 * of blocks) and encodes it; every page of that is touched once, and a first touch of a page is
 * dear where page faults are (a hypervisor: ~10 us a page, ~5 us when the mapping populates it,
 * one system call for the whole chunk). Blocks are bumped from the chunk and never reused, a
 * freed block of 64 KiB or more gives its pages back (an outgrown array, a written buffer), and
 * the last block grows in place, so an encoding buffer doubled again and again is not copied.
 * cc1plus (g++ -O2, 95k tracebacks): 89.8k page faults for the whole traced run with glibc's
 * malloc, 65.5k with the table and the buffers in two arenas, for 23 MB more at the end's peak
 * (394 MB against 371; one arena for both: 434 MB, none of its blocks given back: 499 MB).
 * A chunk's pages are populated 256 KiB at a time as blocks reach them (zwi_make_ready), not at its
 * mapping: the end's chunks double up to 16 MiB and each is left part unused (cc1plus: 48.8 MB
 * mapped for 30.7 MB handed out, 112 MB for 86 MB by the table built ahead), and populating the
 * rest cost the end 4.6k page faults it did not need. A block that is not the last one and grows
 * past GROW_OWN moves to a mapping of its own, which grows by mremap from then on.
 * One thread at a time, like every door. */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "arena.h"
#include "trace_util.h"

#define FIRST_CHUNK ((size_t)64 << 10) /* then doubled, up to LAST_CHUNK (a small end: 16 pages) */
#define LAST_CHUNK  ((size_t)16 << 20)
#define HEAD        16 /* before each block: its capacity (16 keeps blocks 16-aligned) */
#define GIVE_BACK   ((size_t)64 << 10) /* a block freed from this size on gives its pages back */
/* A block grown to this size or more moves to a mapping of its own, which then grows by mremap:
 * its pages are neither copied nor populated again (the table built ahead's array of frame
 * indices, doubled 12 times to 19 MB on cc1plus, populated 35 MiB and copied 17 MB). */
#define GROW_OWN ((size_t)1 << 20)
#define OWN      ((size_t)1) /* in a block's capacity word: the block has a mapping of its own */

typedef struct chunk {
    struct chunk *next;
    size_t size; /* bytes mapped, this header included */
    size_t used; /* bytes handed out from the start, this header included */
    size_t ready; /* bytes populated from the start (zwi_make_ready) */
} chunk;

_Static_assert(sizeof(chunk) <= HEAD * 2, "the chunk header fits before the first block");

/* The header of a block's own mapping (GROW_OWN), the block after it as after a chunk's. */
typedef struct own {
    struct own *next;
    size_t size;  /* bytes mapped, this header included */
    size_t ready; /* bytes populated from the start (zwi_make_ready) */
} own;

_Static_assert(sizeof(own) <= HEAD * 2, "the header fits before the block");

#define OWN_START (3 * HEAD) /* where an own mapping's block starts: its header, its capacity */

struct zwi_arena {
    chunk *head; /* the chunk blocks come from; older ones after it */
    size_t next_size;
    char *last; /* the block handed out last (it may grow in place), or NULL */
    own *owns;  /* the blocks with mappings of their own */
};

static size_t
round_up(size_t n, size_t to)
{
    return (n + to - 1) & ~(to - 1);
}

static size_t *
capacity(void *p)
{
    return (size_t *)((char *)p - HEAD);
}

/* A block's capacity, without the OWN bit. */
static size_t
cap_of(void *p)
{
    return *capacity(p) & ~OWN;
}

static own *
own_of(void *p)
{
    return (own *)((char *)p - OWN_START);
}

/* The list's link to `o` made to point at `to` (NULL: unlinked). */
static void
relink(zwi_arena *a, own *o, own *to)
{
    for (own **pp = &a->owns; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == o) {
            *pp = to != NULL ? to : o->next;
            return;
        }
    }
}

/* A block of n bytes in a mapping of its own, or NULL. */
static void *
own_new(zwi_arena *a, size_t n)
{
    size_t size = round_up(OWN_START + n, 4096);
    own *o = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (o == MAP_FAILED)
        return NULL;
    o->size = size;
    o->ready = 0;
    zwi_make_ready((char *)o, &o->ready, OWN_START + n, size);
    o->next = a->owns;
    a->owns = o;
    char *p = (char *)o + OWN_START;
    *capacity(p) = (size - OWN_START) | OWN;
    return p;
}

/* Own block p grown to n bytes by mremap (its pages kept, moved if need be), or NULL. */
static void *
own_grow(zwi_arena *a, void *p, size_t n)
{
    own *o = own_of(p);
    size_t size = round_up(OWN_START + n, 4096);
    own *m = mremap(o, o->size, size, MREMAP_MAYMOVE);
    if (m == MAP_FAILED)
        return NULL;
    if (m != o)
        relink(a, o, m);
    m->size = size;
    zwi_make_ready((char *)m, &m->ready, OWN_START + n, size);
    p = (char *)m + OWN_START;
    *capacity(p) = (size - OWN_START) | OWN;
    return p;
}

static void arena_free(void *ctx, void *p);

static void *
arena_malloc(void *ctx, size_t n)
{
    zwi_arena *a = ctx;
    if (n > SIZE_MAX / 2)
        return NULL;
    size_t need = HEAD + round_up(n == 0 ? 1 : n, HEAD);
    chunk *c = a->head;
    if (c == NULL || c->size - c->used < need) {
        size_t size = a->next_size;
        if (size < need + 2 * HEAD)
            size = round_up(need + 2 * HEAD, 4096);
        void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            return NULL;
        size_t ready = 0;
        zwi_make_ready(m, &ready, 2 * HEAD + need, size);
        c = m;
        c->size = size;
        c->ready = ready;
        c->used = 2 * HEAD;
        c->next = a->head;
        a->head = c;
        if (a->next_size < LAST_CHUNK)
            a->next_size *= 2;
    }
    char *p = (char *)c + c->used + HEAD;
    c->used += need;
    zwi_make_ready((char *)c, &c->ready, c->used, c->size);
    *capacity(p) = need - HEAD;
    a->last = p;
    return p; /* zero: the chunk's pages are fresh and no block is handed out twice */
}

static void *
arena_calloc(void *ctx, size_t nelem, size_t elsize)
{
    size_t n;
    if (__builtin_mul_overflow(nelem, elsize, &n))
        return NULL;
    return arena_malloc(ctx, n);
}

static void *
arena_realloc(void *ctx, void *p, size_t n)
{
    zwi_arena *a = ctx;
    if (p == NULL)
        return arena_malloc(ctx, n);
    size_t cap = cap_of(p);
    if (n <= cap)
        return p;
    if (n > SIZE_MAX / 2)
        return NULL;
    if (*capacity(p) & OWN)
        return own_grow(a, p, n);
    chunk *c = a->head;
    size_t more = round_up(n, HEAD) - cap;
    if (p == a->last && c->size - c->used >= more) { /* the last block: grown in place */
        c->used += more;
        zwi_make_ready((char *)c, &c->ready, c->used, c->size);
        *capacity(p) = cap + more;
        return p;
    }
    void *q = n >= GROW_OWN ? own_new(a, n) : arena_malloc(ctx, n);
    if (q != NULL) {
        memcpy(q, p, cap);
        arena_free(ctx, p);
    }
    return q;
}

/* Nothing is reused; a big block (an array or a table outgrown, a buffer encoded and written)
 * gives its whole pages back at once, the rest goes with the arena. */
static void
arena_free(void *ctx, void *p)
{
    if (p != NULL && (*capacity(p) & OWN)) { /* its mapping goes */
        own *o = own_of(p);
        relink(ctx, o, NULL);
        munmap(o, o->size);
        return;
    }
    if (p == NULL || *capacity(p) < GIVE_BACK)
        return;
    uintptr_t lo = round_up((uintptr_t)p, 4096);
    uintptr_t hi = ((uintptr_t)p + *capacity(p)) & ~(uintptr_t)4095;
    madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

static void *
arena_map(void *ctx, size_t size, size_t align)
{
    (void)ctx;
    if (align > 4096) /* no door user in the end's code asks for more */
        return NULL;
    void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return m == MAP_FAILED ? NULL : m;
}

static void
arena_unmap(void *ctx, void *p, size_t size)
{
    (void)ctx;
    munmap(p, size);
}

static void
arena_discard(void *ctx, void *p, size_t size)
{
    (void)ctx;
    madvise(p, size, MADV_DONTNEED);
}

zwi_arena *
zwi_arena_new(void)
{
    zwi_arena *a = mmap(NULL, sizeof(*a), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (a == MAP_FAILED)
        return NULL;
    a->next_size = FIRST_CHUNK;
    return a;
}

zw_raw *
zwi_arena_door(zwi_arena *a)
{
    const zw_raw_ops ops = {
        .ctx = a,
        .map = arena_map,
        .unmap = arena_unmap,
        .discard = arena_discard,
        .malloc = arena_malloc,
        .calloc = arena_calloc,
        .realloc = arena_realloc,
        .free = arena_free,
    };
    return zw_raw_new(&ops);
}

void
zwi_arena_free(zwi_arena *a)
{
    if (a == NULL)
        return;
    for (chunk *c = a->head, *next; c != NULL; c = next) {
        next = c->next;
        munmap(c, c->size);
    }
    for (own *o = a->owns, *next; o != NULL; o = next) {
        next = o->next;
        munmap(o, o->size);
    }
    munmap(a, sizeof(*a));
}
