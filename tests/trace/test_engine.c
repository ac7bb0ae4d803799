/* tests/trace/test_engine.c - the engine's tracebacks (src/trace/engine.c): a prefix tree of
 * frames from the outermost in, tracebacks numbered densely. Each test keeps its own copy of what
 * it interned and checks the engine against it: the same traceback gives the same ref and reads
 * back the same frames and total, distinct ones distinct refs, and the tree has one node per
 * distinct outer path, counted here by brute force. The last test is of the trace table: its shards
 * grow apart. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "trace_internal.h"
#include "zw_test.h"

#define MAXF 80

typedef struct tb {
    unsigned n;
    unsigned total;
    uintptr_t f[MAXF]; /* most recent first */
} tb;

static zwt_rng gen = {88172645463325252ull};

static uint64_t
rng(void)
{
    return zwt_next(&gen);
}

/* A traceback of a program's shape: a few outer frames every one shares (main and what it
 * calls), a middle picked from a few paths of varied depth, then an allocation site among a few,
 * reached through one of two wrappers: tracebacks share prefixes and suffixes both. */
static void
make_tb(tb *x, unsigned limit)
{
    uintptr_t outer[MAXF];
    unsigned depth = 0;
    outer[depth++] = 0x400100; /* main */
    outer[depth++] = 0x400200;
    unsigned path = (unsigned)(rng() % 6);
    unsigned len = 2 + (unsigned)(rng() % 40);
    for (unsigned k = 0; k < len && depth < MAXF - 2; k++)
        outer[depth++] = 0x500000 + 0x1000 * path + 0x10 * (k % (3 + path)) + (rng() % 16 == 0);
    outer[depth++] = 0x600000 + 0x10 * (rng() % 2); /* a wrapper */
    outer[depth++] = 0x700000 + 0x10 * (rng() % 4); /* the allocation site */
    unsigned n = depth < limit ? depth : limit;
    x->n = n;
    x->total = depth;
    for (unsigned k = 0; k < n; k++)
        x->f[k] = outer[depth - 1 - k];
}

static void
check_reads_back(zwi_tracer *t, uint32_t ref, const tb *x)
{
    uintptr_t got[ZW_TRACE_MAX_NFRAME];
    unsigned total = 0;
    unsigned n = zwi_tracer_tb(t, ref, got, &total);
    cr_assert_eq(n, x->n, "ref %u: %u frames, %u interned", ref, n, x->n);
    cr_assert_eq(total, x->total, "ref %u: total %u, %u interned", ref, total, x->total);
    for (unsigned k = 0; k < n; k++)
        cr_assert_eq(got[k], x->f[k], "ref %u, frame %u: %#lx, %#lx interned", ref, k,
                     (unsigned long)got[k], (unsigned long)x->f[k]);
}

static bool
same_tb(const tb *a, const tb *b)
{
    return a->n == b->n && a->total == b->total && memcmp(a->f, b->f, a->n * sizeof(a->f[0])) == 0;
}

/* The tree's nodes for these tracebacks: distinct (outer path) prefixes, by brute force. */
static size_t
count_prefixes(const tb *v, size_t count)
{
    size_t nodes = 0;
    for (size_t i = 0; i < count; i++) {
        for (unsigned d = 1; d <= v[i].n; d++) { /* the prefix of the outer d frames of v[i] */
            bool seen = false;
            for (size_t j = 0; j < i && !seen; j++) {
                if (v[j].n < d)
                    continue;
                seen = true;
                for (unsigned k = 0; k < d && seen; k++)
                    seen = v[j].f[v[j].n - 1 - k] == v[i].f[v[i].n - 1 - k];
            }
            nodes += !seen;
        }
    }
    return nodes;
}

#define NTB 600

static tb tbs[NTB];
static uint32_t refs[NTB];

/* Interns tbs[0..NTB) twice, the second time in another order; checks refs, reads and counts. */
static void
round_trip(zwi_tracer *t, unsigned limit)
{
    for (size_t i = 0; i < NTB; i++) {
        make_tb(&tbs[i], limit);
        refs[i] = zwi_tracer_intern(t, tbs[i].f, tbs[i].n, tbs[i].total);
        cr_assert_neq(refs[i], 0);
    }
    for (size_t k = 0; k < NTB; k++) {
        size_t i = (k * 7919) % NTB;
        cr_assert_eq(zwi_tracer_intern(t, tbs[i].f, tbs[i].n, tbs[i].total), refs[i],
                     "traceback %zu interned again", i);
    }
    size_t distinct = 0;
    size_t frames = 0; /* of the distinct ones */
    uint32_t max_ref = 0;
    for (size_t i = 0; i < NTB; i++) {
        check_reads_back(t, refs[i], &tbs[i]);
        bool first = true;
        for (size_t j = 0; j < i && first; j++) {
            if (same_tb(&tbs[i], &tbs[j])) {
                cr_assert_eq(refs[i], refs[j], "tracebacks %zu and %zu are the same", j, i);
                first = false;
            } else {
                cr_assert_neq(refs[i], refs[j], "tracebacks %zu and %zu differ", j, i);
            }
        }
        distinct += first;
        frames += first ? tbs[i].n : 0;
        max_ref = refs[i] > max_ref ? refs[i] : max_ref;
    }
    size_t ntb = 0;
    size_t nodes = 0;
    zwi_tracer_counts(t, NULL, &ntb, &nodes, NULL, NULL);
    cr_assert_eq(ntb, distinct);
    cr_assert_eq(max_ref, distinct, "refs are 1..%zu, densely", distinct);
    cr_assert_eq(nodes, count_prefixes(tbs, NTB));
    cr_assert_lt(nodes, frames / 2, "%zu nodes for %zu frames: the tree shares outer frames", nodes,
                 frames);
}

Test(trace_engine, round_trips_tracebacks_sharing_prefixes_and_suffixes)
{
    cr_assert_not_null(zwi_thread_get());
    zwi_tracer *t = zwi_tracer_new(64);
    cr_assert_not_null(t);
    round_trip(t, 64);
    zwi_tracer_free(t);
}

Test(trace_engine, cut_tracebacks_keep_their_totals)
{
    cr_assert_not_null(zwi_thread_get());
    zwi_tracer *t = zwi_tracer_new(8); /* most tracebacks are cut at 8 frames */
    cr_assert_not_null(t);
    round_trip(t, 8);
    /* the same frames with other totals: other tracebacks, each with its own */
    tb x = tbs[0];
    uint32_t seen[5];
    const unsigned totals[5] = {x.n, x.n + 1, x.n + 100, 65535, 70000};
    for (int i = 0; i < 5; i++) {
        x.total = totals[i];
        seen[i] = zwi_tracer_intern(t, x.f, x.n, x.total);
        cr_assert_neq(seen[i], 0);
        x.total = totals[i] > 65535 ? 65535 : totals[i]; /* capped */
        check_reads_back(t, seen[i], &x);
        for (int j = 0; j < i; j++)
            cr_assert((seen[i] == seen[j]) == (x.total == (totals[j] > 65535 ? 65535 : totals[j])),
                      "totals %u and %u", totals[j], totals[i]);
    }
    /* more frames than the limit are cut to it */
    uintptr_t deep[20];
    for (int k = 0; k < 20; k++)
        deep[k] = 0x900000 + 0x10 * (uintptr_t)k;
    uint32_t r = zwi_tracer_intern(t, deep, 20, 20);
    tb want = {.n = 8, .total = 20};
    memcpy(want.f, deep, 8 * sizeof(deep[0]));
    check_reads_back(t, r, &want);
    zwi_tracer_free(t);
}

Test(trace_engine, a_traceback_of_no_frame_and_the_longest_round_trip)
{
    cr_assert_not_null(zwi_thread_get());
    zwi_tracer *t = zwi_tracer_new(ZW_TRACE_MAX_NFRAME);
    cr_assert_not_null(t);
    uint32_t none = zwi_tracer_intern(t, NULL, 0, 0);
    cr_assert_neq(none, 0);
    static uintptr_t deep[ZW_TRACE_MAX_NFRAME];
    for (unsigned k = 0; k < ZW_TRACE_MAX_NFRAME; k++)
        deep[k] = 0x800000 + 0x10 * (uintptr_t)(k % 5); /* recursion: the same frames again */
    uint32_t a = zwi_tracer_intern(t, deep, ZW_TRACE_MAX_NFRAME, 5000);
    uint32_t b = zwi_tracer_intern(t, deep + 1, ZW_TRACE_MAX_NFRAME - 1, 4999); /* its caller's */
    cr_assert(a != 0 && b != 0 && a != b && a != none && b != none);
    uintptr_t got[ZW_TRACE_MAX_NFRAME];
    unsigned total;
    cr_assert_eq(zwi_tracer_tb(t, none, got, &total), 0);
    cr_assert_eq(total, 0);
    cr_assert_eq(zwi_tracer_tb(t, a, got, &total), ZW_TRACE_MAX_NFRAME);
    cr_assert_eq(total, 5000);
    cr_assert_eq(memcmp(got, deep, sizeof(deep)), 0);
    cr_assert_eq(zwi_tracer_tb(t, b, got, &total), ZW_TRACE_MAX_NFRAME - 1);
    cr_assert_eq(memcmp(got, deep + 1, sizeof(deep) - sizeof(deep[0])), 0);
    size_t nodes;
    zwi_tracer_counts(t, NULL, NULL, &nodes, NULL, NULL);
    cr_assert_eq(nodes, ZW_TRACE_MAX_NFRAME, "b's frames are a's outer ones: its nodes too");
    zwi_tracer_free(t);
}

Test(trace_engine, clear_starts_the_refs_again)
{
    cr_assert_not_null(zwi_thread_get());
    zwi_tracer *t = zwi_tracer_new(64);
    cr_assert_not_null(t);
    round_trip(t, 64);
    uint32_t old0 = refs[0];
    zwi_tracer_clear(t);
    size_t ntb = 1;
    size_t nodes = 1;
    zwi_tracer_counts(t, NULL, &ntb, &nodes, NULL, NULL);
    cr_assert(ntb == 0 && nodes == 0);
    /* another traceback first: the thread's path and cache name the old generation's ids */
    tb other;
    make_tb(&other, 64);
    other.f[0] ^= 0x8; /* a site no traceback of the first round has */
    cr_assert_eq(zwi_tracer_intern(t, other.f, other.n, other.total), 1);
    uint32_t again = zwi_tracer_intern(t, tbs[0].f, tbs[0].n, tbs[0].total);
    cr_assert_eq(again, 2, "old ref %u", old0);
    check_reads_back(t, again, &tbs[0]);
    check_reads_back(t, 1, &other);
    zwi_tracer_clear(t);
    round_trip(t, 64); /* the same checks on reused pages */
    zwi_tracer_free(t);
}

Test(trace_engine, tracebacks_of_one_hash_differing_in_the_outer_frames)
{
    cr_assert_not_null(zwi_thread_get());
    zwi_tracer *t = zwi_tracer_new(64);
    cr_assert_not_null(t);
    /* The engine's hash rotates the value 7 bits left and xors each frame in, innermost last:
     * flipping bit 0 of the second outermost frame and bit 7 of the outermost keeps it. y is x
     * so changed; z shares y's outer frames, so that y's check against x (found by the hash)
     * starts below the frames the thread's path gives: x's inner frames are y's, its outer
     * ones are not. */
    tb x = {.n = 10, .total = 10};
    for (unsigned k = 0; k < 10; k++)
        x.f[k] = 0x400000 + 0x100 * (uintptr_t)k;
    tb y = x;
    y.f[9] ^= 0x80;
    y.f[8] ^= 0x1;
    tb z = y;
    z.f[0] = 0x123450;
    uint32_t rx = zwi_tracer_intern(t, x.f, x.n, x.total);
    uint32_t rz = zwi_tracer_intern(t, z.f, z.n, z.total);
    uint32_t ry = zwi_tracer_intern(t, y.f, y.n, y.total);
    cr_assert(rx != 0 && ry != 0 && rz != 0);
    cr_assert(rx != ry && ry != rz && rx != rz);
    check_reads_back(t, rx, &x);
    check_reads_back(t, ry, &y);
    check_reads_back(t, rz, &z);
    /* and the other way: x found by y's hash, x's last path y's */
    cr_assert_eq(zwi_tracer_intern(t, x.f, x.n, x.total), rx);
    zwi_tracer_free(t);
}

Test(trace_engine, interning_without_a_thread_state)
{
    /* a thread whose state could not be made: every traceback under the lock */
    zwi_thread *self = zwi_trace_self;
    zwi_trace_self = NULL;
    zwi_tracer *t = zwi_tracer_new(64);
    cr_assert_not_null(t);
    round_trip(t, 64);
    zwi_tracer_free(t);
    zwi_trace_self = self;
}

Test(trace_engine, out_of_memory_mid_path_leaves_the_tree_whole)
{
    cr_assert_not_null(zwi_thread_get());
    zwi_tracer *t = zwi_tracer_new(64);
    cr_assert_not_null(t);
    for (size_t i = 0; i < 50; i++) {
        make_tb(&tbs[i], 64);
        refs[i] = zwi_tracer_intern(t, tbs[i].f, tbs[i].n, tbs[i].total);
        cr_assert_neq(refs[i], 0);
    }
    /* a new traceback sharing its outer frames with tbs[0], 30 new frames inside: each request
     * of its interning fails in turn (a node, the traceback, a table's growth) */
    tb x = tbs[0];
    unsigned keep = x.n > 10 ? 10 : x.n;
    memmove(x.f + 30, x.f + x.n - keep, keep * sizeof(x.f[0]));
    for (unsigned k = 0; k < 30; k++)
        x.f[k] = 0xa00000 + 0x10 * (uintptr_t)k;
    x.n = x.total = 30 + keep;
    long fired = 0;
    for (long nth = 0;; nth++) {
        zwi_tracer_fail_nth(nth);
        uint32_t r = zwi_tracer_intern(t, x.f, x.n, x.total);
        bool hit = zwi_tracer_fault_fired();
        zwi_tracer_fail_nth(-1);
        cr_assert((r == 0) == hit, "request %ld: ref %u, fault %s", nth, r, hit ? "fired" : "not");
        if (!hit) {
            check_reads_back(t, r, &x);
            break;
        }
        fired++;
        /* what was interned still reads back, and interns to the same refs */
        for (size_t i = 0; i < 50; i += 7) {
            check_reads_back(t, refs[i], &tbs[i]);
            cr_assert_eq(zwi_tracer_intern(t, tbs[i].f, tbs[i].n, tbs[i].total), refs[i]);
        }
    }
    cr_assert_geq(fired, 1);
    size_t ntb;
    size_t nodes;
    zwi_tracer_counts(t, NULL, &ntb, &nodes, NULL, NULL);
    tbs[50] = x;
    size_t distinct = 0;
    for (size_t i = 0; i <= 50; i++) {
        bool first = true;
        for (size_t j = 0; j < i && first; j++)
            first = !same_tb(&tbs[i], &tbs[j]);
        distinct += first;
    }
    cr_assert_eq(ntb, distinct, "no traceback made twice");
    cr_assert_eq(nodes, count_prefixes(tbs, 51), "the nodes made before a failure are reused");
    zwi_tracer_free(t);
}

/* ---- threads interning at once ---- */

#define NTHREADS 4
#define PER_THREAD 3000
#define NSHAPES 400

static zwi_tracer *shared;
static tb shapes[NSHAPES];
static uint32_t got_refs[NTHREADS][NSHAPES];

static void *
intern_all(void *arg)
{
    uintptr_t id = (uintptr_t)arg;
    for (unsigned i = 0; i < PER_THREAD; i++) {
        unsigned s = (unsigned)((i * (2 * id + 1) * 2654435761u) % NSHAPES);
        uint32_t r = zwi_tracer_intern(shared, shapes[s].f, shapes[s].n, shapes[s].total);
        if (r == 0 || (got_refs[id][s] != 0 && got_refs[id][s] != r))
            return (void *)1;
        got_refs[id][s] = r;
    }
    return NULL;
}

Test(trace_engine, threads_intern_at_once)
{
    shared = zwi_tracer_new(64);
    cr_assert_not_null(shared);
    for (size_t i = 0; i < NSHAPES; i++)
        make_tb(&shapes[i], 64);
    pthread_t th[NTHREADS];
    for (uintptr_t i = 0; i < NTHREADS; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, intern_all, (void *)i), 0);
    for (int i = 0; i < NTHREADS; i++) {
        void *rc;
        pthread_join(th[i], &rc);
        cr_assert_null(rc, "thread %d got no ref, or two for one traceback", i);
    }
    static tb interned[NSHAPES];
    size_t ninterned = 0;
    for (size_t s = 0; s < NSHAPES; s++) {
        uint32_t r = 0;
        for (int i = 0; i < NTHREADS; i++) {
            if (got_refs[i][s] == 0)
                continue;
            cr_assert(r == 0 || got_refs[i][s] == r, "shape %zu: refs %u and %u", s, r,
                      got_refs[i][s]);
            r = got_refs[i][s];
        }
        if (r != 0) {
            check_reads_back(shared, r, &shapes[s]);
            interned[ninterned++] = shapes[s];
        }
    }
    cr_assert_gt(ninterned, NSHAPES / 2);
    size_t nodes;
    zwi_tracer_counts(shared, NULL, NULL, &nodes, NULL, NULL);
    cr_assert_eq(nodes, count_prefixes(interned, ninterned), "no node made twice");
    zwi_tracer_free(shared);
}

/* The trace table's 64 shards grow at loads of their own (1/2 to 0.79): blocks fall evenly on the
 * shards, and with one threshold all 64 grew within a few thousand allocations of each other, a
 * pause of the whole table's rehash that a program under zw run waited out. Past 200k blocks, no
 * 20000 consecutive additions may grow more than 16 shards (with 3/4 for all: 64), and every
 * block is still found. */
Test(trace_engine, the_shards_grow_apart)
{
    cr_assert_not_null(zwi_thread_get());
    zwi_tracer *t = zwi_tracer_new(4);
    cr_assert_not_null(t);
    uint32_t ref = zwi_tracer_intern(t, (const uintptr_t[]){0x401000, 0x402000}, 2, 2);
    cr_assert_neq(ref, 0);
    enum { N = 1200000, WINDOW = 20000, FROM = 200000 };
    static size_t grew_at[N];
    size_t ngrew = 0;
    size_t bytes_before = 0;
    for (size_t i = 1; i <= N; i++) {
        cr_assert_eq(zwi_tracer_add_ref(t, 0, 0x10000000 + i * 48, 40, ref), 0);
        size_t n;
        size_t bytes;
        zwi_tracer_counts(t, &n, NULL, NULL, &bytes, NULL);
        cr_assert_eq(n, i);
        if (bytes != bytes_before && i > FROM)
            grew_at[ngrew++] = i;
        bytes_before = bytes;
    }
    cr_assert_gt(ngrew, 64, "%zu grows past %d blocks", ngrew, FROM);
    size_t worst = 0;
    for (size_t a = 0; a < ngrew; a++) {
        size_t b = a;
        while (b < ngrew && grew_at[b] - grew_at[a] < WINDOW)
            b++;
        worst = b - a > worst ? b - a : worst;
    }
    cr_assert_leq(worst, 16, "%zu shards grew within %d additions", worst, WINDOW);
    for (size_t i = 1; i <= N; i += 997) {
        zwi_trace_rec rec;
        cr_assert(zwi_tracer_lookup(t, 0, 0x10000000 + i * 48, &rec), "block %zu", i);
        cr_assert_eq(rec.size, 40);
    }
    zwi_tracer_free(t);
}

/* A table doubles in place when it can: in its shard's slice (a reservation it grows in, where
 * no page moves), else remapped (its pages kept, the new half mapped after them); else in a new
 * mapping. Blocks are added to shards growing from one page to 32, for each way a shard's table
 * can be: in a slice of 256 MiB (the default), in slices of 16 KiB that it outgrows (then it is
 * copied out, and remapped), or with no slices. First no request is refused, then the first
 * request of each addition is, and the next one on a retry: a growth's copy of its entries
 * refused (the scratch mapping it needs) fails the addition and leaves the table as it was; its
 * doubling in place refused, it takes the way back, a new mapping. Every block is then found
 * once, with its size and traceback; and again after a clear, which sends the shards back to
 * their first page (in their slices), and blocks are added until the small slices are outgrown
 * without a request refused. */
static int
count_rec(void *ctx, const zwi_trace_rec *rec)
{
    (void)rec;
    ++*(size_t *)ctx;
    return 0;
}

static void
doubling(size_t slice)
{
    cr_assert_not_null(zwi_thread_get());
    zwi_tracer_slice_next(slice);
    zwi_tracer *t = zwi_tracer_new(4);
    zwi_tracer_slice_next((size_t)1 << 28);
    cr_assert_not_null(t);
    uint32_t ref = zwi_tracer_intern(t, (const uintptr_t[]){0x401000, 0x402000}, 2, 2);
    cr_assert_neq(ref, 0);
    enum { N1 = 40000, N = 100000 };
    for (size_t i = 1; i <= N1; i++)
        cr_assert_eq(zwi_tracer_add_ref(t, 0, 0x10000000 + i * 48, i % 500 + 1, ref), 0);
    size_t in_place = zwi_tracer_doubled_in_place(t, NULL);
    cr_assert_geq(in_place, 64, "%zu tables doubled in place", in_place);
    /* the scratch copy is the tracer's memory too: the size of the biggest table doubled (512
     * slots at least by now), past what a tracer that never grew holds beside its tables */
    zwi_tracer *fresh = zwi_tracer_new(4);
    cr_assert_not_null(fresh);
    size_t table, tbs, table0, tbs0;
    zwi_tracer_counts(t, NULL, NULL, NULL, &table, &tbs);
    zwi_tracer_counts(fresh, NULL, NULL, NULL, &table0, &tbs0);
    cr_assert_geq(zwi_tracer_memory(t) - table - tbs,
                  zwi_tracer_memory(fresh) - table0 - tbs0 + 8192);
    zwi_tracer_free(fresh);
    size_t fell_back = 0;
    size_t refused = 0;
    for (size_t i = N1 + 1; i <= N; i++) {
        for (long nth = 0;; nth++) {
            size_t before;
            zwi_tracer_counts(t, &before, NULL, NULL, NULL, NULL);
            zwi_tracer_fail_nth(nth);
            int rc = zwi_tracer_add_ref(t, 0, 0x10000000 + i * 48, i % 500 + 1, ref);
            bool fired = zwi_tracer_fault_fired();
            zwi_tracer_fail_nth(-1);
            size_t after;
            zwi_tracer_counts(t, &after, NULL, NULL, NULL, NULL);
            if (rc == 0) {
                cr_assert_eq(after, before + 1);
                fell_back += fired;
                break;
            }
            cr_assert(fired, "block %zu: refused with no request refused", i);
            cr_assert_eq(after, before, "block %zu: a failed growth changed the table", i);
            refused++;
        }
    }
    cr_assert_gt(fell_back, 0, "no growth took the way back");
    cr_assert_gt(refused, 0, "no growth failed for want of its scratch");
    cr_assert_eq(zwi_tracer_doubled_in_place(t, NULL), in_place,
                 "a growth doubled in place anyway");
    size_t n;
    zwi_tracer_counts(t, &n, NULL, NULL, NULL, NULL);
    cr_assert_eq(n, N);
    for (size_t i = 1; i <= N; i++) {
        zwi_trace_rec rec;
        cr_assert(zwi_tracer_lookup(t, 0, 0x10000000 + i * 48, &rec), "block %zu", i);
        cr_assert_eq(rec.size, i % 500 + 1);
        cr_assert_eq(rec.tb, ref);
    }
    /* and only once: none is left behind in a slot of an old table */
    for (size_t i = 1; i <= N; i++) {
        zwi_trace_rec rec;
        cr_assert(zwi_tracer_remove(t, 0, 0x10000000 + i * 48, NULL), "block %zu", i);
        cr_assert_not(zwi_tracer_lookup(t, 0, 0x10000000 + i * 48, &rec), "block %zu", i);
    }
    zwi_tracer_counts(t, &n, NULL, NULL, NULL, NULL);
    cr_assert_eq(n, 0);
    /* cleared, the shards start again from a page, and double in place again */
    for (size_t i = 1; i <= N1; i++)
        cr_assert_eq(zwi_tracer_add_ref(t, 0, 0x20000000 + i * 48, 8, ref), 0);
    zwi_tracer_clear(t);
    zwi_tracer_counts(t, &n, NULL, NULL, &table, NULL);
    cr_assert_eq(n, 0);
    cr_assert_eq(table, 64 * 256 * 16, "%zu bytes of table after the clear", table);
    ref = zwi_tracer_intern(t, (const uintptr_t[]){0x401000, 0x402000}, 2, 2);
    cr_assert_neq(ref, 0);
    for (size_t i = 1; i <= N1; i++)
        cr_assert_eq(zwi_tracer_add_ref(t, 0, 0x30000000 + i * 48, 24, ref), 0);
    size_t remapped;
    cr_assert_geq(zwi_tracer_doubled_in_place(t, &remapped), in_place + 64);
    /* with slices, no doubling in place was a remap: a table that outgrew its slice (16 KiB)
     * left it for a new mapping, and the clear sent it back to its slice to grow in again */
    if (slice == 0)
        cr_assert_eq(remapped, zwi_tracer_doubled_in_place(t, NULL));
    else
        cr_assert_eq(remapped, 0, "%zu tables remapped", remapped);
    /* on to 4096 slots a shard: past a slice of 16 KiB, copied out, then remapped */
    for (size_t i = N1 + 1; i <= N; i++)
        cr_assert_eq(zwi_tracer_add_ref(t, 0, 0x30000000 + i * 48, 24, ref), 0);
    zwi_tracer_doubled_in_place(t, &remapped);
    if (slice == ((size_t)16 << 10))
        cr_assert_gt(remapped, 0, "%zu tables remapped", remapped);
    else if (slice != 0)
        cr_assert_eq(remapped, 0, "%zu tables remapped", remapped);
    for (size_t i = 1; i <= N; i++) {
        zwi_trace_rec rec;
        cr_assert(zwi_tracer_lookup(t, 0, 0x30000000 + i * 48, &rec), "block %zu", i);
        cr_assert_eq(rec.size, 24);
        cr_assert_not(zwi_tracer_lookup(t, 0, 0x20000000 + i * 48, &rec), "block %zu", i);
    }
    zwi_tracer_counts(t, &n, NULL, NULL, NULL, NULL);
    cr_assert_eq(n, N);
    /* each block once in the tables, whose slots are all read: no table grew over another */
    size_t listed = 0;
    cr_assert_eq(zwi_tracer_foreach(t, count_rec, &listed), 0);
    cr_assert_eq(listed, N);
    zwi_tracer_free(t);
}

Test(trace_engine, a_table_doubles_in_its_slice_or_else_in_a_new_mapping)
{
    doubling((size_t)1 << 28);
}

Test(trace_engine, a_table_outgrows_its_slice)
{
    doubling((size_t)16 << 10);
}

Test(trace_engine, a_table_doubles_by_remapping_without_slices)
{
    doubling(0);
}

/* Enough tracebacks that every part of the tables of ids grows several times (a part holds at
 * most half its entries: 100k tracebacks and nodes make parts of 4096 entries, from first tables
 * of 64): each is found again by its frames, read back, and counted once. */
Test(trace_engine, the_tables_of_ids_grow_in_parts)
{
    cr_assert_not_null(zwi_thread_get());
    zwi_tracer *t = zwi_tracer_new(64);
    cr_assert_not_null(t);
    enum { N = 100000 };
    static uint32_t got[N];
    for (uintptr_t i = 0; i < N; i++) {
        uintptr_t f[3] = {0x400000 + 16 * i, 0x500000 + 16 * (i % 977), 0x600000};
        got[i] = zwi_tracer_intern(t, f, 3, 3);
        cr_assert_eq(got[i], i + 1, "traceback %zu: ref %u", (size_t)i, got[i]);
    }
    for (uintptr_t k = 0; k < N; k++) {
        uintptr_t i = (k * 7919) % N;
        uintptr_t f[3] = {0x400000 + 16 * i, 0x500000 + 16 * (i % 977), 0x600000};
        cr_assert_eq(zwi_tracer_intern(t, f, 3, 3), got[i], "traceback %zu again", (size_t)i);
        uintptr_t back[64];
        unsigned total = 0;
        cr_assert_eq(zwi_tracer_tb(t, got[i], back, &total), 3);
        cr_assert(back[0] == f[0] && back[1] == f[1] && back[2] == f[2] && total == 3);
    }
    /* every part's own tables after the first (512, 1024, 2048 entries) doubled in place */
    cr_assert_geq(zwi_tracer_doubled_in_place(t, NULL), 2 * 64 * 3); /* 64 parts in each table */
    size_t ntb = 0, nodes = 0;
    zwi_tracer_counts(t, NULL, &ntb, &nodes, NULL, NULL);
    cr_assert_eq(ntb, N);
    cr_assert_eq(nodes, 1 + 977 + N, "the outer frame once, the middle ones 977 times");
    zwi_tracer_free(t);
}

/* ---- batches (zwi_tracer_batch_begin): a thread applying records in runs ---- */

/* The address of block i of shard k: a block's shard is picked by its address. */
static uintptr_t
in_shard(size_t k, size_t i)
{
    uintptr_t p = 0x20000000 + i * 0x100000;
    while (zwi_tracer_shard_of(p) != k)
        p += 64;
    return p;
}

typedef struct reader {
    zwi_tracer *t;
    uintptr_t ptr;
    atomic_bool done;
    bool found;
} reader;

static void *
read_block(void *arg)
{
    reader *r = arg;
    zwi_trace_rec rec;
    r->found = zwi_tracer_lookup(r->t, 0, r->ptr, &rec);
    atomic_store(&r->done, true);
    return NULL;
}

/* Waits up to `ms` for *flag; its value. */
static bool
within(atomic_bool *flag, int ms)
{
    for (int i = 0; i < ms && !atomic_load(flag); i++)
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    return atomic_load(flag);
}

/* In a batch, the traced bytes and their peak are those of every change, in order; another
 * thread reading a shard the batch has changed waits for the batch's end; after it, every
 * block is found. */
Test(trace_engine, a_batch_keeps_its_shard_locks_and_counts_exactly)
{
    cr_assert_not_null(zwi_thread_get());
    zwi_tracer *t = zwi_tracer_new(4);
    cr_assert_not_null(t);
    uint32_t ref = zwi_tracer_intern(t, (const uintptr_t[]){0x401000, 0x402000}, 2, 2);
    cr_assert_neq(ref, 0);
    zwi_tracer_batch_begin(t);
    size_t now = 0, peak = 0;
    enum { N = 5000 };
    for (size_t i = 0; i < N; i++) {
        size_t size = 16 + i % 200;
        cr_assert_eq(zwi_tracer_add_ref(t, 0, in_shard(i % 64, i), size, ref), 0);
        now += size;
        peak = now > peak ? now : peak;
        if (i % 3 == 2) { /* one block in three freed soon after */
            zwi_trace_rec rec;
            cr_assert(zwi_tracer_remove(t, 0, in_shard((i - 1) % 64, i - 1), &rec));
            now -= rec.size;
        }
        size_t c, p;
        zwi_tracer_traced_memory(t, &c, &p);
        cr_assert(c == now && p == peak, "step %zu: %zu bytes (peak %zu), want %zu (%zu)", i, c,
                  p, now, peak);
    }
    reader r = {.t = t, .ptr = in_shard(0, 0)};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, read_block, &r), 0);
    cr_expect(!within(&r.done, 50), "a reader of a shard the batch holds went on before its end");
    zwi_tracer_batch_end(t);
    pthread_join(th, NULL);
    cr_expect(r.found, "the batch's block, found after it");
    size_t n;
    zwi_tracer_counts(t, &n, NULL, NULL, NULL, NULL);
    cr_expect_eq(n, N - N / 3);
    zwi_tracer_free(t);
}

static void *
lock_all_then_go(void *arg)
{
    reader *r = arg;
    zwi_tracer_lock_all(r->t);
    zwi_tracer_unlock_all(r->t);
    atomic_store(&r->done, true);
    return NULL;
}

/* A batch holding shard 63 needs shard 0 while another thread, taking every lock in order (as
 * fork does), holds shards 0 to 62 and waits for 63: the batch lets go of what it holds rather
 * than wait holding it, and both go on. */
Test(trace_engine, a_batch_lets_go_of_its_locks_rather_than_wait_holding_them, .timeout = 60)
{
    cr_assert_not_null(zwi_thread_get());
    zwi_tracer *t = zwi_tracer_new(4);
    cr_assert_not_null(t);
    uint32_t ref = zwi_tracer_intern(t, (const uintptr_t[]){0x401000, 0x402000}, 2, 2);
    zwi_tracer_batch_begin(t);
    cr_assert_eq(zwi_tracer_add_ref(t, 0, in_shard(63, 0), 40, ref), 0);
    reader r = {.t = t};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, lock_all_then_go, &r), 0);
    cr_expect(!within(&r.done, 50), "every lock taken while the batch held one");
    /* the other thread now holds shards 0 to 62 and waits for 63 */
    cr_assert_eq(zwi_tracer_add_ref(t, 0, in_shard(0, 1), 48, ref), 0);
    cr_expect(within(&r.done, 10000), "the other thread never got every lock");
    cr_assert_eq(zwi_tracer_add_ref(t, 0, in_shard(63, 2), 56, ref), 0);
    zwi_tracer_batch_end(t);
    pthread_join(th, NULL);
    size_t n, c;
    zwi_tracer_counts(t, &n, NULL, NULL, NULL, NULL);
    zwi_tracer_traced_memory(t, &c, NULL);
    cr_expect(n == 3 && c == 40 + 48 + 56, "%zu blocks of %zu bytes", n, c);
    zwi_tracer_free(t);
}
