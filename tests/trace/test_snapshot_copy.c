/* tests/trace/test_snapshot_copy.c - the memos of snapshot.c: a snapshot built from a tracer
 * converts each return address once, and a copy between snapshots (a capture's shared table,
 * select, filter, merge) each frame once. What they must give is what converting every frame of
 * every traceback again gave: checked here against that conversion done by hand, frame by frame,
 * in the order frames and tracebacks first appear. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "trace_internal.h"
#include "zw_test.h"

static zwt_rng gen; /* seeded by each test */

static uint64_t
rng(void)
{
    return zwt_next(&gen);
}

static bool
same_str(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static bool
same_frame(const zw_frame *a, const zw_frame *b)
{
    return same_str(a->filename, b->filename) && a->lineno == b->lineno &&
           same_str(a->function, b->function) && same_str(a->module, b->module) &&
           a->offset == b->offset && a->inlined == b->inlined;
}

static void
assert_same_traceback(const zw_traceback *a, const zw_traceback *b, size_t which)
{
    cr_assert_eq(zw_traceback_len(a), zw_traceback_len(b), "traceback of trace %zu", which);
    cr_assert_eq(zw_traceback_total_nframe(a), zw_traceback_total_nframe(b));
    for (size_t k = 0; k < zw_traceback_len(a); k++)
        cr_assert(same_frame(zw_traceback_frame(a, k), zw_traceback_frame(b, k)),
                  "trace %zu, frame %zu: %s:%u against %s:%u", which, k,
                  zw_traceback_frame(a, k)->filename, zw_traceback_frame(a, k)->lineno,
                  zw_traceback_frame(b, k)->filename, zw_traceback_frame(b, k)->lineno);
}

/* The frames of `snap` in their order are distinct (each stored once) and, read through its
 * tracebacks in their order, appear in the order of their first use. */
static void
assert_frames_in_first_use_order(const zw_snapshot *snap)
{
    size_t next = 0;
    for (size_t i = 0; i < snap->ntbs; i++) {
        const zw_traceback *tb = snap->tbs[i];
        for (size_t k = 0; k < tb->nframe; k++) {
            uint32_t index = ((const zwi_frame *)tb->frames[k])->index;
            cr_assert_leq(index, next, "frame %u used before frame %zu", index, next);
            if (index == next)
                next++;
        }
    }
    for (size_t i = 0; i < snap->nframes; i++)
        for (size_t j = i + 1; j < snap->nframes && j < i + 64; j++)
            cr_assert(!same_frame(&snap->frames[i]->pub, &snap->frames[j]->pub),
                      "frames %zu and %zu are the same", i, j);
}

/* ---- copies: snapshots of raw frames drawn from a small pool, so that most repeat ---- */

static const char *files[] = {"a.c", "b.c", "c.c", "lib/d.c", "e.h"};

static zw_snapshot *
random_snapshot(size_t ntraces, size_t nlines)
{
    zw_snapshot *snap = zw_snapshot_new(32);
    cr_assert_not_null(snap);
    for (size_t i = 0; i < ntraces; i++) {
        const char *names[32];
        unsigned lines[32];
        size_t n = 1 + rng() % 20;
        for (size_t k = 0; k < n; k++) {
            names[k] = files[rng() % 5];
            lines[k] = 1 + (unsigned)(rng() % nlines);
        }
        zw_error err;
        cr_assert_eq(zw_snapshot_add_trace(snap, rng() % 2, 1 + rng() % 4096, names, lines, n,
                                           n + rng() % 3, &err),
                     0, "%s", err.msg);
    }
    return snap;
}

Test(trace_snapshot_copy, absorbing_snapshots_into_a_table_keeps_every_traceback_and_the_order)
{
    gen.s = 0x9e3779b97f4a7c15u;
    zw_snapshot *table = zw_snapshot_new(32);
    zw_snapshot *parts[3];
    uint32_t *maps[3];
    for (size_t p = 0; p < 3; p++) {
        parts[p] = random_snapshot(400, 40 + 100 * p);
        maps[p] = malloc((zwi_snapshot_ntracebacks(parts[p]) + 1) * sizeof(uint32_t));
        cr_assert_eq(zwi_snapshot_absorb(table, parts[p], maps[p]), 0);
    }
    /* each part's traceback i is the table's traceback maps[p][i], frame for frame */
    size_t expected_tbs = 0;
    for (size_t p = 0; p < 3; p++) {
        for (size_t i = 0; i < parts[p]->ntbs; i++) {
            cr_assert_lt(maps[p][i], table->ntbs);
            assert_same_traceback(table->tbs[maps[p][i]], parts[p]->tbs[i], i);
            expected_tbs = maps[p][i] + 1 > expected_tbs ? maps[p][i] + 1 : expected_tbs;
        }
    }
    cr_assert_eq(table->ntbs, expected_tbs, "no traceback the parts do not have");
    /* the tracebacks enter in the parts' order: part 0's first (its own order), then the new ones
     * of part 1, and so on */
    cr_assert_eq(maps[0][0], 0);
    for (size_t i = 1; i < parts[0]->ntbs; i++)
        cr_assert_eq(maps[0][i], i, "part 0's tracebacks are distinct: the table's first ones");
    assert_frames_in_first_use_order(table);
    for (size_t p = 0; p < 3; p++) {
        zw_snapshot_free(parts[p]);
        free(maps[p]);
    }
    zw_snapshot_free(table);
}

Test(trace_snapshot_copy, select_gives_each_trace_its_traceback_whether_few_or_many)
{
    gen.s = 0x2545f4914f6cdd1du;
    zw_snapshot *table = zw_snapshot_new(32);
    zw_snapshot *src = random_snapshot(3000, 2000); /* thousands of frames */
    uint32_t *map = malloc((zwi_snapshot_ntracebacks(src) + 1) * sizeof(uint32_t));
    cr_assert_eq(zwi_snapshot_absorb(table, src, map), 0);
    cr_assert_gt(table->nframes, 4000, "a table of %zu frames", table->nframes);
    /* a few traces (the frame memo is a map) and many (an array), some repeated */
    size_t counts[] = {1, 3, 17, 5000};
    for (size_t c = 0; c < 4; c++) {
        size_t n = counts[c];
        uint32_t *tbs = malloc(n * sizeof(uint32_t));
        uint32_t *domains = malloc(n * sizeof(uint32_t));
        uint64_t *sizes = malloc(n * sizeof(uint64_t));
        for (size_t i = 0; i < n; i++) {
            tbs[i] = (uint32_t)(rng() % (i % 3 == 2 ? 8 : table->ntbs));
            domains[i] = (uint32_t)(rng() % 3);
            sizes[i] = rng() % 100000;
        }
        zw_snapshot *sel = zwi_snapshot_select(table, domains, tbs, sizes, n);
        cr_assert_not_null(sel);
        cr_assert_eq(zw_snapshot_len(sel), n);
        for (size_t i = 0; i < n; i++) {
            zw_trace_info t = zw_snapshot_trace(sel, i);
            cr_assert_eq(t.domain, domains[i]);
            cr_assert_eq(t.size, sizes[i]);
            assert_same_traceback(t.traceback, table->tbs[tbs[i]], i);
        }
        assert_frames_in_first_use_order(sel);
        zw_snapshot_free(sel);
        free(tbs);
        free(domains);
        free(sizes);
    }
    free(map);
    zw_snapshot_free(src);
    zw_snapshot_free(table);
}

Test(trace_snapshot_copy, merge_and_filter_copy_every_frame_of_every_trace)
{
    gen.s = 0xda942042e4dd58b5u;
    zw_snapshot *a = random_snapshot(500, 30);
    zw_snapshot *b = random_snapshot(500, 300);
    const zw_snapshot *both[2] = {a, b};
    zw_error err;
    zw_snapshot *m = zw_snapshot_merge(both, 2, &err);
    cr_assert_not_null(m, "%s", err.msg);
    cr_assert_eq(zw_snapshot_len(m), 1000);
    for (size_t i = 0; i < 1000; i++) {
        const zw_snapshot *from = i < 500 ? a : b;
        zw_trace_info want = zw_snapshot_trace(from, i % 500);
        zw_trace_info got = zw_snapshot_trace(m, i);
        cr_assert_eq(got.size, want.size);
        assert_same_traceback(got.traceback, want.traceback, i);
    }
    assert_frames_in_first_use_order(m);
    zw_filter only_c = {.kind = ZW_FILTER_FRAME, .inclusive = true, .filename_pattern = "c.c",
                        .lineno = ZW_ANY_LINENO, .all_frames = true, .domain = ZW_ANY_DOMAIN};
    zw_snapshot *f = zw_snapshot_filter_traces(m, &only_c, 1, &err);
    cr_assert_not_null(f, "%s", err.msg);
    size_t k = 0;
    for (size_t i = 0; i < zw_snapshot_len(m); i++) {
        zw_trace_info t = zw_snapshot_trace(m, i);
        bool has_c = false;
        for (size_t j = 0; j < zw_traceback_len(t.traceback); j++)
            has_c |= strcmp(zw_traceback_frame(t.traceback, j)->filename, "c.c") == 0;
        if (!has_c)
            continue;
        cr_assert_lt(k, zw_snapshot_len(f));
        assert_same_traceback(zw_snapshot_trace(f, k).traceback, t.traceback, i);
        k++;
    }
    cr_assert_eq(k, zw_snapshot_len(f));
    zw_snapshot_free(f);
    zw_snapshot_free(m);
    zw_snapshot_free(a);
    zw_snapshot_free(b);
}

/* ---- from a tracer: return addresses of this file's functions and of libc ---- */

static __attribute__((noinline)) int
leaf(int x)
{
    return x * 3 + 1;
}

static __attribute__((noinline)) int
middle(int x)
{
    return leaf(x) + leaf(x + 1);
}

static __attribute__((noinline)) int
top(int x)
{
    return middle(x) * 2;
}

/* The frames zwi_snapshot_frame() makes of return address `pc`, as convert_traceback made them
 * before its memo: the function holding the code first, then the ones inlined in it. */
static size_t
frames_by_hand(zwi_symbolizer *sym, uintptr_t pc, zw_frame *out, size_t cap)
{
    size_t nsym;
    const zwi_sym *syms = zwi_symbolize(sym, pc, &nsym);
    cr_assert_not_null(syms);
    cr_assert_leq(nsym, cap);
    for (size_t k = nsym, i = 0; k-- > 0; i++) {
        const zwi_sym *s = &syms[k];
        out[i] = (zw_frame){
            .filename = s->file != NULL     ? s->file
                        : s->module != NULL ? s->module
                                            : "<unknown>",
            .lineno = s->file != NULL ? s->line : 0,
            .function = s->function,
            .module = s->module,
            .offset = s->offset,
            .inlined = s->inlined,
        };
    }
    return nsym;
}

typedef struct recs {
    zwi_trace_rec r[4096];
    size_t n;
} recs;

static int
collect(void *ctx, const zwi_trace_rec *rec)
{
    recs *c = ctx;
    cr_assert_lt(c->n, 4096);
    c->r[c->n++] = *rec;
    return 0;
}

Test(trace_snapshot_copy, a_snapshot_of_a_tracer_converts_each_address_as_by_hand)
{
    gen.s = 0x853c49e6748fea9bu;
    cr_assert_eq(top(1), 22); /* called: not folded away */
    uintptr_t pool[] = {
        (uintptr_t)leaf + 4,    (uintptr_t)leaf + 9,    (uintptr_t)middle + 8, (uintptr_t)middle + 20,
        (uintptr_t)top + 6,     (uintptr_t)top + 12,    (uintptr_t)snprintf + 7, (uintptr_t)strcmp + 3,
        (uintptr_t)collect + 5, (uintptr_t)0x10, /* no module */
    };
    size_t npool = sizeof(pool) / sizeof(pool[0]);
    zwi_tracer *t = zwi_tracer_new(16);
    cr_assert_not_null(t);
    for (size_t i = 0; i < 3000; i++) {
        uintptr_t frames[16];
        unsigned n = 1 + (unsigned)(rng() % 16);
        for (unsigned k = 0; k < n; k++)
            frames[k] = pool[rng() % npool];
        cr_assert_eq(zwi_tracer_add(t, 0, 0x100000 + 64 * i, 1 + i, frames, n, n + 2), 0);
    }
    zwi_symbolizer *sym = zwi_symbolizer_new();
    cr_assert_not_null(sym);
    zw_error err;
    zw_snapshot *snap = zwi_snapshot_from_tracer(t, sym, &err);
    cr_assert_not_null(snap, "%s", err.msg);
    static recs c;
    c.n = 0;
    cr_assert_eq(zwi_tracer_foreach(t, collect, &c), 0);
    cr_assert_eq(zw_snapshot_len(snap), c.n);
    for (size_t i = 0; i < c.n; i++) {
        uintptr_t raw[16];
        unsigned total;
        unsigned nraw = zwi_tracer_tb(t, c.r[i].tb, raw, &total);
        zw_frame want[16 * 8];
        size_t n = 0;
        for (size_t k = nraw; k-- > 0;) /* oldest first */
            n += frames_by_hand(sym, raw[k], want + n, 16 * 8 - n);
        zw_trace_info got = zw_snapshot_trace(snap, i);
        cr_assert_eq(got.size, c.r[i].size);
        cr_assert_eq(zw_traceback_len(got.traceback), n, "trace %zu", i);
        cr_assert_eq(zw_traceback_total_nframe(got.traceback), total);
        for (size_t k = 0; k < n; k++)
            cr_assert(same_frame(zw_traceback_frame(got.traceback, k), &want[k]),
                      "trace %zu, frame %zu: %s:%u, by hand %s:%u", i, k,
                      zw_traceback_frame(got.traceback, k)->filename,
                      zw_traceback_frame(got.traceback, k)->lineno, want[k].filename,
                      want[k].lineno);
    }
    assert_frames_in_first_use_order(snap);
    /* each module its frames name, once */
    for (size_t i = 0; i < snap->nmodules; i++)
        for (size_t j = i + 1; j < snap->nmodules; j++)
            cr_assert_neq(snap->modules[i].path, snap->modules[j].path);
    cr_assert_geq(snap->nmodules, 2, "this test and libc");
    zw_snapshot_free(snap);
    zwi_symbolizer_free(sym);
    zwi_tracer_free(t);
}
