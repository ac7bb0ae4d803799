/* tests/trace/test_capture_packed.c - the packed form of a finished capture (format 1.6,
 * src/trace/capture_format.c, docs/format.md#the-packed-form): each packed record round-trips
 * and refuses every shorter prefix; a whole capture packed loads the same as before it was packed
 * (one made with the encoders, and a real 1.5 capture of examples/zw-demo with marks, steps and
 * leak kinds); a damaged packed capture loses what the damage touches and says where, a cut one
 * loads as incomplete; a brief load reads it; a capture of 1.5 still loads. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zerowaste/zerowaste.h>

#include "capture_format.h"
#include "zwt_capture.h"
#include "zwt_trace.h"

TestSuite(trace_capture_packed, .init = zwt_capture_setup, .fini = zwt_capture_teardown);

/* ---- the records ---- */

static int
decode_process(zwi_cursor *c)
{
    zwi_process p;
    int rc = zwi_decode_process_packed(c, &p);
    for (size_t i = 0; p.argv != NULL && i < p.argc; i++)
        zwi_free(raw, (void *)p.argv[i]);
    zwi_free(raw, p.argv);
    return rc;
}

static int
decode_live(zwi_cursor *c)
{
    zwi_live l;
    return zwi_decode_live_packed(c, &l);
}

static int
decode_totals(zwi_cursor *c)
{
    zw_capture_totals t;
    return zwi_decode_totals_packed(c, &t);
}

static int
decode_leaks(zwi_cursor *c)
{
    zw_capture_leaks l;
    int rc = zwi_decode_leaks_packed(c, &l);
    zwi_free(raw, l.kinds);
    return rc;
}

static int
decode_samples(zwi_cursor *c)
{
    zwi_samples s = {0};
    int rc = zwi_decode_samples_packed(c, &s);
    zwi_free(raw, s.v);
    return rc;
}

static int
decode_steps(zwi_cursor *c)
{
    zwi_steps s = {0};
    int rc = zwi_decode_steps_packed(c, &s);
    zwi_free(raw, s.steps);
    zwi_free(raw, s.deltas);
    return rc;
}

static void
free_site_list(zwi_site_list *s)
{
    zwi_free(raw, s->refs);
    zwi_free(raw, s->domains);
    zwi_free(raw, s->tbs);
    zwi_free(raw, s->counts);
    zwi_free(raw, s->bytes);
    zwi_free(raw, s->temporary);
}

static int
decode_site_list(zwi_cursor *c)
{
    zwi_site_list s;
    int rc = zwi_decode_site_list_packed(c, &s);
    free_site_list(&s);
    return rc;
}

static int
decode_table(zwi_cursor *c)
{
    zw_snapshot *t;
    int rc = zwi_decode_table_packed(c, &t);
    zw_snapshot_free(t);
    return rc;
}

Test(trace_capture_packed, fixed_records_round_trip_as_varints)
{
    const char *argv[] = {"prog", "", "a b"};
    zwi_cbuf b = {.raw = raw};
    zwi_encode_process_packed(&b, &(zwi_process){UINT32_MAX, 0, UINT64_MAX, 10, 64, argv, 3});
    assert_prefixes_fail(&b, decode_process);
    zwi_process p;
    zwi_cursor c = whole(&b);
    cr_assert_eq(zwi_decode_process_packed(&c, &p), 0, "%s", c.why);
    cr_assert(p.pid == UINT32_MAX && p.ppid == 0 && p.start_realtime_ns == UINT64_MAX &&
              p.interval_ms == 10 && p.nframe == 64 && p.argc == 3);
    for (size_t i = 0; i < 3; i++) {
        cr_assert_str_eq(p.argv[i], argv[i]);
        zwi_free(raw, (void *)p.argv[i]);
    }
    zwi_free(raw, p.argv);

    zwi_live l = {{1, 2, 3, 4, 5, UINT64_MAX, 7, ZW_CAPTURE_END_SIGNAL, -9, 11, 12}, 28, 13};
    b.len = 0;
    zwi_encode_live_packed(&b, &l);
    cr_assert_lt(b.len, 64, "%zu bytes", b.len);
    assert_prefixes_fail(&b, decode_live);
    zwi_live got;
    c = whole(&b);
    cr_assert_eq(zwi_decode_live_packed(&c, &got), 0, "%s", c.why);
    cr_assert(got.counts.allocations == 1 && got.counts.frees == 2 && got.counts.temporary == 3 &&
              got.counts.bytes_allocated == 4 && got.counts.bytes_freed == 5 &&
              got.counts.peak_bytes == UINT64_MAX && got.counts.peak_time_ns == 7 &&
              got.counts.end == ZW_CAPTURE_END_SIGNAL && got.counts.code == -9 &&
              got.counts.mmap_bytes == 11 && got.counts.mmap_peak == 12 && got.write_errno == 28 &&
              got.untraced == 13);

    zw_capture_totals t = {UINT64_MAX, 1, 2, 3, 4, 5, 6, ZW_CAPTURE_END_EXIT, -1};
    b.len = 0;
    zwi_encode_totals_packed(&b, &t);
    assert_prefixes_fail(&b, decode_totals);
    zw_capture_totals u;
    c = whole(&b);
    cr_assert_eq(zwi_decode_totals_packed(&c, &u), 0, "%s", c.why);
    cr_assert(u.allocations == UINT64_MAX && u.duration_ns == 6 && u.end == ZW_CAPTURE_END_EXIT &&
              u.code == -1);
    b.len = 0;
    zwi_encode_totals_packed(&b, &(zw_capture_totals){.end = ZW_CAPTURE_END_EXEC + 1});
    c = whole(&b);
    cr_assert_eq(zwi_decode_totals_packed(&c, &u), -1);
    cr_assert_str_eq(c.why, "unknown end of process");

    uint8_t kinds[] = {0, 3, 1, 2, 3};
    zw_capture_leaks in = {.status = ZW_LEAKS_SCANNED,
                           .blocks = {1, 0, 1, 3},
                           .bytes = {8, 0, 8, UINT64_MAX},
                           .kinds = kinds,
                           .nkinds = 5,
                           .scan_ns = 99,
                           .modules = 4,
                           .threads = 2};
    b.len = 0;
    zwi_encode_leaks_packed(&b, &in);
    assert_prefixes_fail(&b, decode_leaks);
    zw_capture_leaks out;
    c = whole(&b);
    cr_assert_eq(zwi_decode_leaks_packed(&c, &out), 0, "%s", c.why);
    cr_assert(out.status == ZW_LEAKS_SCANNED && out.nkinds == 5 && out.scan_ns == 99 &&
              out.modules == 4 && out.threads == 2 && out.bytes[3] == UINT64_MAX);
    cr_assert_arr_eq(out.kinds, kinds, 5);
    zwi_free(raw, out.kinds);
    kinds[2] = ZW_LEAK_KINDS;
    b.len = 0;
    zwi_encode_leaks_packed(&b, &in);
    c = whole(&b);
    cr_assert_eq(zwi_decode_leaks_packed(&c, &out), -1);
    zwi_cbuf_release(&b);
}

Test(trace_capture_packed, samples_round_trip_by_column_whatever_the_values)
{
    /* out of time order, wrapping differences, a field that never moves, RSS by pages */
    const zw_capture_sample s[] = {
        {10000000, 5, 1, 4096, 1, 0, 0, 5, 8192, 8192},
        {20000100, 5, 1, 8192, 1, 0, 0, 5, 0, 8192},
        {19999999, UINT64_MAX, 0, 0, UINT64_MAX, 2, 1, UINT64_MAX, UINT64_MAX, UINT64_MAX},
        {0, (uint64_t)1 << 63, 0, 1 << 20, 0, 2, 1, 0, 0, 0},
        {1, 0, 0, 0, 0, 2, 1, 0, 0, 0},
    };
    const uint64_t ticks[] = {0, 10000000, UINT64_MAX};
    for (size_t n = 0; n <= 5; n++) {
        for (size_t t = 0; t < 3; t++) {
            zwi_cbuf b = {.raw = raw};
            zwi_encode_samples_packed(&b, s, n, ticks[t]);
            assert_prefixes_fail(&b, decode_samples);
            zwi_samples into = {0};
            for (int round = 0; round < 2; round++) { /* a second record appends */
                zwi_cursor c = whole(&b);
                cr_assert_eq(zwi_decode_samples_packed(&c, &into), 0, "%s", c.why);
            }
            cr_assert_eq(into.n, 2 * n);
            for (size_t i = 0; i < into.n; i++)
                cr_assert_arr_eq(&into.v[i], &s[i % n], sizeof(zw_capture_sample),
                                 "%zu samples, tick %zu, sample %zu", n, t, i);
            zwi_free(raw, into.v);
            zwi_cbuf_release(&b);
        }
    }
    /* a sampler at 10 ms whose RSS moves by pages and whose mmap fields never move: smaller
     * than SAMPLES' row by row */
    zw_capture_sample tick[100];
    for (size_t i = 0; i < 100; i++)
        tick[i] = (zw_capture_sample){
            i * 10000000 + i % 7, 1000 + i, 10, (8 << 20) + 4096 * i, i, 0, 0, 1000, 0, 0};
    zwi_cbuf rows = {.raw = raw};
    zwi_cbuf cols = {.raw = raw};
    zwi_encode_samples(&rows, tick, 100, 10000000);
    zwi_encode_samples_packed(&cols, tick, 100, 10000000);
    cr_assert_lt(cols.len, rows.len - 200, "%zu bytes by column, %zu by row", cols.len, rows.len);
    /* a time column of scale 0 is refused: the count could then claim any number */
    zwi_cbuf bad = {.raw = raw};
    zwi_cbuf_varint(&bad, 1000000); /* samples */
    zwi_cbuf_varint(&bad, ZWI_SERIES_MIN);
    zwi_cbuf_varint(&bad, 0); /* tick */
    for (int k = 0; k < ZWI_SERIES_MIN; k++)
        zwi_cbuf_varint(&bad, 0);
    zwi_cursor c = whole(&bad);
    cr_assert_eq(decode_samples(&c), -1);
    cr_assert_str_eq(c.why, "samples without their time column");
    bad.data[bad.len - ZWI_SERIES_MIN] = 1; /* a time column, a million samples claimed */
    c = whole(&bad);
    cr_assert_eq(decode_samples(&c), -1);
    cr_assert_str_eq(c.why, "sample count larger than the payload");
    zwi_cbuf_release(&bad);
    zwi_cbuf_release(&rows);
    zwi_cbuf_release(&cols);
}

static const zw_capture_delta deltas[] = {
    {3, 64, 1}, {9, -64, -1}, {UINT32_MAX, INT64_MIN, INT64_MAX}, {0, 1, 1}, {2, 5, 5}, {1, 0, 0},
};
static const zw_capture_step steps[] = {
    {100, 0, 2, false, false},
    {UINT64_MAX, 2, 1, true, false},
    {5, 3, 0, false, true},
    {200, 3, 3, true, true},
};

Test(trace_capture_packed, steps_and_sites_round_trip_by_column)
{
    zwi_cbuf b = {.raw = raw};
    zwi_encode_steps_packed(&b, steps, 4, deltas);
    assert_prefixes_fail(&b, decode_steps);
    zwi_steps into = {0};
    for (int round = 0; round < 2; round++) {
        zwi_cursor c = whole(&b);
        cr_assert_eq(zwi_decode_steps_packed(&c, &into), 0, "%s", c.why);
    }
    cr_assert(into.nsteps == 8 && into.ndeltas == 12);
    for (size_t i = 0; i < into.nsteps; i++) {
        const zw_capture_step *x = &into.steps[i], *y = &steps[i % 4];
        cr_assert(x->time_ns == y->time_ns && x->n == y->n && x->peak == y->peak &&
                      x->mmap_peak == y->mmap_peak && x->first == y->first + 6 * (i / 4),
                  "step %zu", i);
        for (size_t k = 0; k < x->n; k++) {
            const zw_capture_delta *d = &into.deltas[x->first + k], *e = &deltas[y->first + k];
            cr_assert(d->site == e->site && d->bytes == e->bytes && d->blocks == e->blocks,
                      "step %zu delta %zu", i, k);
        }
    }
    zwi_free(raw, into.steps);
    zwi_free(raw, into.deltas);
    /* steps claiming more deltas than the bytes left can hold */
    b.len = 0;
    zwi_cbuf_varint(&b, 1);
    zwi_cbuf_varint(&b, 0);
    zwi_cbuf_varint(&b, 0);
    zwi_cbuf_varint(&b, 1000);
    zwi_cursor c = whole(&b);
    cr_assert_eq(decode_steps(&c), -1);
    cr_assert_str_eq(c.why, "delta count larger than the payload");

    uint32_t refs[] = {7, 3, UINT32_MAX, 0};
    uint32_t domains[] = {0, 1, 0, 0};
    uint32_t tbs[] = {0, 2, 1, 0};
    uint64_t counts[] = {1, UINT64_MAX, 0, 4};
    uint64_t bytes[] = {8, 9, 10, UINT64_MAX};
    uint64_t temps[] = {0, 0, 1, 2};
    zwi_site_list sl = {true, 4, refs, domains, tbs, counts, bytes, temps};
    b.len = 0;
    zwi_encode_site_list_packed(&b, &sl);
    assert_prefixes_fail(&b, decode_site_list);
    zwi_site_list got;
    c = whole(&b);
    cr_assert_eq(zwi_decode_site_list_packed(&c, &got), 0, "%s", c.why);
    cr_assert(got.steps_whole && got.n == 4);
    cr_assert_arr_eq(got.refs, refs, sizeof(refs));
    cr_assert_arr_eq(got.domains, domains, sizeof(domains));
    cr_assert_arr_eq(got.tbs, tbs, sizeof(tbs));
    cr_assert_arr_eq(got.counts, counts, sizeof(counts));
    cr_assert_arr_eq(got.bytes, bytes, sizeof(bytes));
    cr_assert_arr_eq(got.temporary, temps, sizeof(temps));
    free_site_list(&got);
    zwi_cbuf_release(&b);
}

/* Two snapshots with the same tracebacks in the same order, frame by frame, every field, and
 * the same modules. */
static void
assert_same_tables(const zw_snapshot *a, const zw_snapshot *b)
{
    cr_assert_eq(zwi_snapshot_ntracebacks(a), zwi_snapshot_ntracebacks(b));
    cr_assert_eq(a->traceback_limit, b->traceback_limit);
    for (size_t i = 0; i < a->ntbs; i++) {
        const zw_traceback *x = a->tbs[i], *y = b->tbs[i];
        cr_assert_eq(zw_traceback_len(x), zw_traceback_len(y), "traceback %zu", i);
        cr_assert_eq(zw_traceback_total_nframe(x), zw_traceback_total_nframe(y));
        for (size_t k = 0; k < zw_traceback_len(x); k++) {
            const zw_frame *f = zw_traceback_frame(x, k), *g = zw_traceback_frame(y, k);
            cr_assert_str_eq(f->filename, g->filename);
            cr_assert(f->lineno == g->lineno && f->offset == g->offset && f->inlined == g->inlined,
                      "traceback %zu frame %zu", i, k);
            cr_assert((f->function == NULL) == (g->function == NULL));
            cr_assert(f->function == NULL || strcmp(f->function, g->function) == 0);
            cr_assert((f->module == NULL) == (g->module == NULL));
            cr_assert(f->module == NULL || strcmp(f->module, g->module) == 0);
        }
    }
    cr_assert_eq(a->nmodules, b->nmodules);
    for (size_t i = 0; i < a->nmodules; i++) {
        cr_assert_str_eq(a->modules[i].path, b->modules[i].path);
        cr_assert_eq(a->modules[i].bias, b->modules[i].bias);
        cr_assert((a->modules[i].build_id == NULL) == (b->modules[i].build_id == NULL));
        if (a->modules[i].build_id != NULL)
            cr_assert_str_eq(a->modules[i].build_id, b->modules[i].build_id);
    }
}

/* A table of native frames in two modules (one with a hex build-id, one with a build-id that is
 * no hex), inlined frames, tracebacks sharing their oldest frames and one cut at its limit. */
static zw_snapshot *
native_table(void)
{
    zw_snapshot *t = zw_snapshot_new(4);
    cr_assert_not_null(t);
    cr_assert_eq(zwi_snapshot_add_module(t, "/bin/prog", "0123456789abcdef00ff", 0x5000), 0);
    cr_assert_eq(zwi_snapshot_add_module(t, "/lib/libc.so.6", "not-hex", 0x7f00), 0);
    const zw_frame f[] = {
        {"main.c", 10, "main", "/bin/prog", 0x1200, false},
        {"main.c", 20, "work", "/bin/prog", 0x1100, false},
        {"util.h", 3, "inl", "/bin/prog", 0x1100, true},
        {"/lib/libc.so.6", 0, NULL, "/lib/libc.so.6", 0x9000, false},
        {"malloc.c", 3000, "malloc", "/lib/libc.so.6", 0x8000, false},
        {"py.py", 1, NULL, NULL, 0, false},
    };
    const zw_frame *fp[6];
    for (int i = 0; i < 6; i++) {
        zwi_frame *x = zwi_snapshot_frame(t, &f[i]);
        cr_assert_not_null(x);
        fp[i] = &x->pub;
    }
    const zw_frame *tb1[] = {fp[0], fp[1], fp[2], fp[4]};
    const zw_frame *tb2[] = {fp[0], fp[1], fp[3]};
    const zw_frame *tb3[] = {fp[5]};
    const zw_frame *tb4[] = {fp[0], fp[1], fp[2], fp[3]};
    cr_assert_not_null(zwi_snapshot_traceback(t, tb1, 4, 3)); /* an inlined frame: 3 native */
    cr_assert_not_null(zwi_snapshot_traceback(t, tb2, 3, 9)); /* cut: 9 frames deep */
    cr_assert_not_null(zwi_snapshot_traceback(t, tb3, 1, 1));
    cr_assert_not_null(zwi_snapshot_traceback(t, tb4, 4, 3));
    return t;
}

Test(trace_capture_packed, a_table_transcoded_packed_decodes_the_same_and_smaller)
{
    zw_snapshot *t = native_table();
    zwi_cbuf v = {.raw = raw};
    zwi_encode_table(&v, t);
    zwi_cursor c = whole(&v);
    zwi_cbuf p = {.raw = raw};
    cr_assert_eq(zwi_transcode_table_packed(&c, &p), 0, "%s", c.why);
    cr_assert_eq(c.pos, c.len);
    cr_assert_lt(p.len, v.len, "packed %zu bytes, varint %zu", p.len, v.len);
    assert_prefixes_fail(&p, decode_table);
    zw_snapshot *back;
    c = whole(&p);
    cr_assert_eq(zwi_decode_table_packed(&c, &back), 0, "%s", c.why);
    assert_same_tables(t, back);
    zw_snapshot_free(back);
    /* a varint TABLE that does not decode is not transcoded */
    for (size_t len = 0; len < v.len; len++) {
        c = zwi_cursor_of(v.data, len, raw);
        p.len = 0;
        cr_assert_eq(zwi_transcode_table_packed(&c, &p), -1, "a %zu-byte prefix", len);
    }
    /* a traceback sharing more frames than the one before has */
    zwi_cbuf bad = {.raw = raw};
    zwi_cbuf_varint(&bad, 4); /* limit */
    zwi_cbuf_varint(&bad, 1); /* a string */
    zwi_cbuf_varint(&bad, 1);
    zwi_cbuf_bytes(&bad, "a", 1);
    zwi_cbuf_varint(&bad, 0); /* no module */
    zwi_cbuf_varint(&bad, 1); /* a frame: module, offset, filename, lineno, function, flags */
    for (int k = 0; k < 6; k++)
        zwi_cbuf_varint(&bad, 0);
    zwi_cbuf_varint(&bad, 1); /* a traceback */
    zwi_cbuf_varint(&bad, 1); /* sharing one frame with none before */
    zwi_cbuf_varint(&bad, 1);
    zwi_cbuf_varint(&bad, 0);
    zwi_cbuf_varint(&bad, 0);
    c = whole(&bad);
    cr_assert_eq(decode_table(&c), -1);
    cr_assert_str_eq(c.why, "more frames shared than the traceback before has");
    zwi_cbuf_release(&bad);
    zwi_cbuf_release(&p);
    zwi_cbuf_release(&v);
    zw_snapshot_free(t);
}

/* ---- whole captures ---- */

static void
assert_same_set(const zw_capture_set *a, const zw_capture_set *b)
{
    cr_assert((a->label == NULL) == (b->label == NULL));
    if (a->label == NULL)
        return;
    cr_assert_str_eq(a->label, b->label);
    cr_assert(a->time_ns == b->time_ns && a->heap_bytes == b->heap_bytes, "set %s", a->label);
    cr_assert((a->snap == NULL) == (b->snap == NULL), "set %s", a->label);
    if (a->snap != NULL) {
        cr_assert_eq(zw_snapshot_len(a->snap), zw_snapshot_len(b->snap));
        for (size_t i = 0; i < zw_snapshot_len(a->snap); i++) {
            zw_trace_info x = zw_snapshot_trace(a->snap, i), y = zw_snapshot_trace(b->snap, i);
            cr_assert(x.domain == y.domain && x.size == y.size, "set %s trace %zu", a->label, i);
        }
        assert_same_tables(a->snap, b->snap);
    }
    cr_assert((a->leaks == NULL) == (b->leaks == NULL));
    if (a->leaks != NULL) {
        cr_assert(a->leaks->status == b->leaks->status && a->leaks->nkinds == b->leaks->nkinds);
        cr_assert_arr_eq(a->leaks->kinds, b->leaks->kinds, a->leaks->nkinds);
    }
}

/* Everything a loaded capture holds, `b` read from the packed form of `a`'s file. */
static void
assert_same_capture(const zw_capture *a, const zw_capture *b)
{
    cr_assert(b->complete && b->damaged == 0, "%s", b->damage != NULL ? b->damage : "");
    cr_assert(a->pid == b->pid && a->ppid == b->ppid &&
              a->start_realtime_ns == b->start_realtime_ns && a->interval_ms == b->interval_ms &&
              a->nframe == b->nframe && a->argc == b->argc);
    for (size_t i = 0; i < a->argc; i++)
        cr_assert_str_eq(a->argv[i], b->argv[i]);
    cr_assert_eq(a->has_totals, b->has_totals);
    const zw_capture_totals *x = &a->totals, *y = &b->totals;
    cr_assert(x->allocations == y->allocations && x->frees == y->frees &&
              x->temporary == y->temporary && x->bytes_allocated == y->bytes_allocated &&
              x->peak_bytes == y->peak_bytes && x->peak_time_ns == y->peak_time_ns &&
              x->duration_ns == y->duration_ns && x->end == y->end && x->code == y->code);
    cr_assert_eq(a->has_live, b->has_live);
    cr_assert(a->live.allocations == b->live.allocations && a->live.frees == b->live.frees &&
              a->live.bytes_freed == b->live.bytes_freed && a->live.end == b->live.end &&
              a->live.peak_bytes == b->live.peak_bytes && a->live.mmap_peak == b->live.mmap_peak &&
              a->write_errno == b->write_errno && a->untraced == b->untraced);
    cr_assert_eq(a->has_counters, b->has_counters);
    cr_assert_eq(a->nsamples, b->nsamples);
    cr_assert_arr_eq(a->samples, b->samples, a->nsamples * sizeof(zw_capture_sample));
    cr_assert(a->nsteps == b->nsteps && a->ndeltas == b->ndeltas);
    for (size_t i = 0; i < a->nsteps; i++)
        cr_assert(a->steps[i].time_ns == b->steps[i].time_ns && a->steps[i].n == b->steps[i].n &&
                      a->steps[i].first == b->steps[i].first &&
                      a->steps[i].peak == b->steps[i].peak &&
                      a->steps[i].mmap_peak == b->steps[i].mmap_peak,
                  "step %zu", i);
    for (size_t i = 0; i < a->ndeltas; i++)
        cr_assert(a->deltas[i].site == b->deltas[i].site &&
                      a->deltas[i].bytes == b->deltas[i].bytes &&
                      a->deltas[i].blocks == b->deltas[i].blocks,
                  "delta %zu", i);
    assert_same_set(&a->peak, &b->peak);
    assert_same_set(&a->exit, &b->exit);
    cr_assert_eq(a->nmarks, b->nmarks);
    for (size_t i = 0; i < a->nmarks; i++)
        assert_same_set(&a->marks[i], &b->marks[i]);
    cr_assert((a->sites == NULL) == (b->sites == NULL));
    if (a->sites != NULL) {
        size_t n = zw_snapshot_len(a->sites);
        assert_same_set(&(zw_capture_set){"sites", 0, 0, a->sites, NULL},
                        &(zw_capture_set){"sites", 0, 0, b->sites, NULL});
        cr_assert_arr_eq(a->site_counts, b->site_counts, n * sizeof(uint64_t));
        cr_assert((a->site_temporary == NULL) == (b->site_temporary == NULL));
        if (a->site_temporary != NULL)
            cr_assert_arr_eq(a->site_temporary, b->site_temporary, n * sizeof(uint64_t));
    }
    cr_assert(a->leaks.status == b->leaks.status && a->leaks.nkinds == b->leaks.nkinds &&
              a->leaks.scan_ns == b->leaks.scan_ns && a->leaks.threads == b->leaks.threads);
    cr_assert_arr_eq(a->leaks.kinds, b->leaks.kinds, a->leaks.nkinds);
    cr_assert_arr_eq(a->leaks.bytes, b->leaks.bytes, sizeof(a->leaks.bytes));
}

/* A finished capture as the preload library streams it: LIVE, PROCESS, three flushes of samples
 * and steps, then the end: TABLE, a mark, the exit set, LEAKS, SITE_LIST, TOTALS, END as sections
 * of 1.5, or (`end16`) as 1.6 writes it: those but TOTALS as the records of one PACKED section
 * (compressed if `compress`), then TOTALS and END. */
static void
streamed_capture_as(zwi_cbuf *file, bool end16, bool compress)
{
    zw_snapshot *snap = zwt_fixture_a();
    zwi_cbuf pay = {.raw = raw};
    zwi_capture_put_header(file);
    zwi_capture_put_live(file, 3);
    const char *argv[] = {"prog", "-x"};
    zwi_encode_process(&pay, &(zwi_process){7, 1, 99, 10, 16, argv, 2});
    zwi_capture_put(file, ZWI_SEC_PROCESS, &pay);
    for (uint64_t flush = 0; flush < 3; flush++) {
        zw_capture_sample s[20];
        for (uint64_t i = 0; i < 20; i++) {
            uint64_t t = flush * 20 + i;
            s[i] = (zw_capture_sample){
                t * 10000000 + t % 3, t * 64, t, 4096 * t, t, 0, 0, t * 64, 0, 0};
        }
        pay.len = 0;
        zwi_encode_samples(&pay, s, 20, 10000000);
        zwi_capture_put(file, ZWI_SEC_SAMPLES, &pay);
        zwi_cbuf st = {.raw = raw};
        size_t at = zwi_step_begin(&st, flush * 200000000, flush == 1);
        zwi_step_delta(&st, 3, 64, 1);
        zwi_step_delta(&st, 9 + (uint32_t)flush, -64, -1);
        zwi_step_end(&st, at, 2);
        pay.len = 0;
        zwi_encode_steps_of(&pay, &st, 1);
        zwi_capture_put(file, ZWI_SEC_STEPS, &pay);
        zwi_cbuf_release(&st);
    }
    zwi_cbuf records = {.raw = raw}; /* the 1.6 end's */
#define PUT_END(type, packed_encode, plain_encode)                                                 \
    do {                                                                                           \
        pay.len = 0;                                                                               \
        if (end16) {                                                                               \
            packed_encode;                                                                         \
            zwi_capture_put_record(&records, type, &pay);                                          \
        } else {                                                                                   \
            plain_encode;                                                                          \
            zwi_capture_put(file, type, &pay);                                                     \
        }                                                                                          \
    } while (0)
    uint32_t map[64];
    zw_snapshot *table = zw_snapshot_new(zw_snapshot_traceback_limit(snap));
    cr_assert_not_null(table);
    cr_assert_eq(zwi_snapshot_absorb(table, snap, map), 0);
    PUT_END(ZWI_SEC_TABLE, zwi_encode_table_packed(&pay, table), zwi_encode_table(&pay, table));
    zw_capture_set half = {"half", 20, 2000, snap, NULL};
    PUT_END(ZWI_SEC_SET, zwi_encode_table_set(&pay, ZWI_SET_MARK, &half, map),
            zwi_encode_table_set(&pay, ZWI_SET_MARK, &half, map));
    size_t n = zw_snapshot_len(snap);
    cr_assert_geq(n, 4);
    uint8_t kinds[64] = {0};
    for (size_t i = 0; i < n; i++)
        kinds[i] = (uint8_t)(i % ZW_LEAK_KINDS);
    zw_capture_leaks mark_leaks = {
        .status = ZW_LEAKS_SCANNED, .kinds = kinds, .nkinds = n, .threads = 1};
    PUT_END(ZWI_SEC_MARK_LEAKS, zwi_encode_leaks_packed(&pay, &mark_leaks),
            zwi_encode_leaks(&pay, &mark_leaks));
    PUT_END(ZWI_SEC_SET, zwi_encode_table_set_as_exit(&pay, 30, 3000),
            zwi_encode_table_set_as_exit(&pay, 30, 3000));
    zw_capture_set ex = {"exit", 30, 3000, snap, NULL};
    PUT_END(ZWI_SEC_SET, zwi_encode_table_set(&pay, ZWI_SET_EXIT, &ex, map),
            zwi_encode_table_set(&pay, ZWI_SET_EXIT, &ex, map));
    zw_capture_leaks exit_leaks = {
        .status = ZW_LEAKS_SCANNED, .kinds = kinds, .nkinds = n, .scan_ns = 5};
    PUT_END(ZWI_SEC_LEAKS, zwi_encode_leaks_packed(&pay, &exit_leaks),
            zwi_encode_leaks(&pay, &exit_leaks));
    uint64_t counts[64];
    uint32_t refs[64];
    uint64_t temps[64];
    for (size_t i = 0; i < n; i++) {
        counts[i] = 10 * i + 1;
        refs[i] = i == 0 ? 3 : (uint32_t)(8 + i); /* 3, 9, 10, 11 ... */
        temps[i] = i;
    }
    uint32_t domains[64], tbs[64];
    uint64_t bytes[64];
    for (size_t i = 0; i < n; i++) {
        zw_trace_info ti = zw_snapshot_trace(snap, i);
        domains[i] = ti.domain;
        bytes[i] = ti.size;
        tbs[i] = map[snap->traces[i].tb];
    }
    zwi_site_list sl = {true, n, refs, domains, tbs, counts, bytes, temps};
    PUT_END(ZWI_SEC_SITE_LIST, zwi_encode_site_list_packed(&pay, &sl),
            zwi_encode_site_list_of(&pay, &sl));
#undef PUT_END
    if (end16)
        zwi_container_put_section_level(file, ZWI_SEC_PACKED, ZWI_SECTION_REQUIRED, &records,
                                        compress ? 3 : 0);
    zwi_cbuf_release(&records);
    pay.len = 0;
    zwi_encode_totals(&pay, &(zw_capture_totals){60, 50, 7, 3840, 3000, 30, 600000000, 1, 0});
    zwi_capture_put(file, ZWI_SEC_TOTALS, &pay);
    pay.len = 0;
    zwi_encode_end(&pay);
    zwi_capture_put(file, ZWI_SEC_END, &pay);
    zwi_cbuf_release(&pay);
    zw_snapshot_free(table);
    zw_snapshot_free(snap);
    cr_assert(!file->failed);
}

static void
streamed_capture(zwi_cbuf *file)
{
    streamed_capture_as(file, false, false);
}

static zw_capture *
load(const zwi_cbuf *file)
{
    zw_error err;
    zw_capture *c = zw_capture_load_memory(file->data, file->len, &err);
    cr_assert_not_null(c, "%s", err.msg);
    return c;
}

Test(trace_capture_packed, a_packed_capture_loads_as_its_streamed_form)
{
    zwi_cbuf file = {.raw = raw};
    streamed_capture(&file);
    zwi_cbuf packed = {.raw = raw};
    cr_assert_eq(zwi_capture_pack(file.data, file.len, 10000000, &packed), 0);
    cr_assert_lt(packed.len, file.len / 2, "packed %zu bytes of %zu", packed.len, file.len);
    /* header (1.6), PACKED (required, compressed), END */
    cr_assert_eq(packed.data[10], ZWI_CAPTURE_PACKED_MINOR);
    cr_assert_eq(packed.data[32], ZWI_SEC_PACKED);
    cr_assert_eq(packed.data[36], ZWI_SECTION_REQUIRED | ZWI_SECTION_ZSTD);
    zw_capture *a = load(&file);
    zw_capture *b = load(&packed);
    cr_assert(a->nmarks == 1 && a->marks[0].leaks != NULL && a->peak.snap != NULL &&
              a->nsteps == 3 && a->nsamples == 60 && a->leaks.status == ZW_LEAKS_SCANNED);
    assert_same_capture(a, b);
    zw_capture_free(b);
    zw_capture_free(a);

    /* not finished (no END), or a section of an older version: not packed */
    zwi_cbuf again = {.raw = raw};
    cr_assert_eq(zwi_capture_pack(file.data, file.len - ZWI_SECTION_SIZE, 10000000, &again), -1);
    zwi_cbuf old = {.raw = raw};
    zwi_cbuf pay = {.raw = raw};
    zwi_capture_put_header(&old);
    zw_capture_sample one = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    zwi_encode_series(&pay, &one, 1);
    zwi_capture_put(&old, ZWI_SEC_SERIES, &pay);
    pay.len = 0;
    zwi_capture_put(&old, ZWI_SEC_END, &pay);
    again.len = 0;
    cr_assert_eq(zwi_capture_pack(old.data, old.len, 10000000, &again), -1);
    zwi_cbuf_release(&pay);
    zwi_cbuf_release(&old);
    zwi_cbuf_release(&again);
    zwi_cbuf_release(&packed);
    zwi_cbuf_release(&file);
}

Test(trace_capture_packed, a_brief_load_of_a_packed_capture_reads_how_the_run_went)
{
    zwi_cbuf file = {.raw = raw};
    streamed_capture(&file);
    zwi_cbuf packed = {.raw = raw};
    cr_assert_eq(zwi_capture_pack(file.data, file.len, 10000000, &packed), 0);
    char path[] = "/tmp/zw-packed-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, packed.data, packed.len), (ssize_t)packed.len);
    close(fd);
    zw_error err;
    zw_capture *c = zw_capture_load_brief(path, &err);
    unlink(path);
    cr_assert_not_null(c, "%s", err.msg);
    cr_assert(c->complete && c->pid == 7 && c->argc == 2 && c->has_totals &&
              c->totals.allocations == 60 && c->has_live && c->nsamples == 60);
    cr_assert(c->exit.snap == NULL && c->nmarks == 0 && c->sites == NULL && c->nsteps == 0 &&
              c->leaks.status == ZW_LEAKS_UNKNOWN);
    zw_capture_free(c);
    zwi_cbuf_release(&packed);
    zwi_cbuf_release(&file);
}

/* The file's PACKED payload, decompressed, and the offsets of its records' payloads. */
static void
packed_payload(const zwi_cbuf *packed, zwi_cbuf *inner)
{
    zwi_container c;
    zw_error err;
    cr_assert_eq(
        zwi_container_open(&c, packed->data, packed->len, ZWI_KIND_CAPTURE, NULL, raw, &err), 0);
    cr_assert_eq(zwi_container_next(&c), 1);
    cr_assert_eq(c.type, ZWI_SEC_PACKED);
    zwi_cursor cur;
    cr_assert_eq(zwi_container_payload(&c, &cur, raw), 0);
    zwi_cbuf_bytes(inner, cur.p, cur.len);
    zwi_container_release(&c);
}

/* A capture of one PACKED section made of `inner`, stored as it is. */
static void
repack(const zwi_cbuf *inner, zwi_cbuf *out)
{
    out->len = 0;
    zwi_container_put_header(out, ZWI_KIND_CAPTURE, ZWI_CAPTURE_PACKED_MINOR, 0);
    zwi_container_put_section_level(out, ZWI_SEC_PACKED, ZWI_SECTION_REQUIRED, inner, 0);
    zwi_cbuf none = {.raw = raw};
    zwi_capture_put(out, ZWI_SEC_END, &none);
}

Test(trace_capture_packed, a_damaged_record_is_skipped_and_named)
{
    zwi_cbuf file = {.raw = raw};
    streamed_capture(&file);
    zwi_cbuf packed = {.raw = raw};
    cr_assert_eq(zwi_capture_pack(file.data, file.len, 10000000, &packed), 0);
    zwi_cbuf inner = {.raw = raw};
    packed_payload(&packed, &inner);
    /* the records' offsets; the TABLE's first byte made an impossible traceback limit */
    size_t at = 0, table = SIZE_MAX, totals = SIZE_MAX;
    while (at < inner.len) {
        zwi_cursor c = zwi_cursor_of(inner.data, inner.len, raw);
        c.pos = at;
        uint64_t type, n;
        cr_assert_eq(zwi_get_varint(&c, &type), 0);
        cr_assert_eq(zwi_get_varint(&c, &n), 0);
        if (type == ZWI_SEC_TABLE)
            table = c.pos;
        if (type == ZWI_SEC_TOTALS)
            totals = c.pos;
        at = c.pos + n;
    }
    cr_assert_eq(at, inner.len);
    cr_assert(table != SIZE_MAX && totals != SIZE_MAX && totals < table, "totals first");
    zwi_cbuf bad = {.raw = raw};
    zwi_cbuf_bytes(&bad, inner.data, inner.len);
    /* an end of process no version has: the totals are lost, the rest is read */
    /* allocations 60, frees 50, temporary 7: a byte each; bytes 3840 and peak 3000: two each;
     * peak time 30: one; duration 600000000: five; then the end */
    bad.data[totals + 13] = 99;
    zwi_cbuf out = {.raw = raw};
    repack(&bad, &out);
    zw_capture *c = load(&out);
    cr_assert_eq(c->damaged, 1);
    cr_assert_not_null(strstr(c->damage, "totals record: unknown end of process at byte"), "%s",
                       c->damage);
    cr_assert_not_null(strstr(c->damage, "of the payload of section 0 (packed) at offset 32"), "%s",
                       c->damage);
    cr_assert(!c->has_totals && c->exit.snap != NULL && c->nsamples == 60);
    zw_capture_free(c);
    /* a table that does not decode: the sets keep their time and bytes, the sites are lost */
    memcpy(bad.data, inner.data, inner.len);
    bad.data[table] = 0xff; /* a varint limit past 32 bits */
    bad.data[table + 1] = 0xff;
    bad.data[table + 2] = 0xff;
    bad.data[table + 3] = 0xff;
    bad.data[table + 4] = 0x7f;
    repack(&bad, &out);
    c = load(&out);
    cr_assert_geq(c->damaged, 2, "the table and the site list");
    cr_assert(c->exit.label != NULL && c->exit.heap_bytes == 3000 && c->exit.snap == NULL &&
              c->sites == NULL && c->has_totals);
    zw_capture_free(c);
    /* a record longer than the payload ends it: the records before stand */
    bad.len = totals - 2; /* the TOTALS record's type and length, a byte each */
    zwi_cbuf_varint(&bad, ZWI_SEC_TOTALS);
    zwi_cbuf_varint(&bad, 1000);
    repack(&bad, &out);
    c = load(&out);
    cr_assert_eq(c->damaged, 1, "%zu: %s", c->damaged, c->damage);
    cr_assert_not_null(strstr(c->damage, "record byte count larger than the payload"), "%s",
                       c->damage);
    cr_assert(c->pid == 7 && c->has_live && !c->has_totals);
    zw_capture_free(c);
    zwi_cbuf_release(&out);
    zwi_cbuf_release(&bad);
    zwi_cbuf_release(&inner);
    zwi_cbuf_release(&packed);
    zwi_cbuf_release(&file);
}

Test(trace_capture_packed, every_damaged_or_missing_byte_of_a_packed_capture_is_survived)
{
    zwi_cbuf file = {.raw = raw};
    streamed_capture(&file);
    zwi_cbuf packed = {.raw = raw};
    cr_assert_eq(zwi_capture_pack(file.data, file.len, 10000000, &packed), 0);
    unsigned char *copy = malloc(packed.len);
    cr_assert_not_null(copy);
    for (size_t i = 0; i < packed.len; i++) {
        memcpy(copy, packed.data, packed.len);
        copy[i] ^= 0x20;
        zw_error err;
        zw_capture *c = zw_capture_load_memory(copy, packed.len, &err);
        if (i < 32) { /* the file header: refused whole */
            cr_assert_null(c, "byte %zu", i);
            continue;
        }
        cr_assert_not_null(c, "byte %zu: %s", i, err.msg);
        /* the PACKED section's header or payload: its checksum catches it */
        cr_assert(c->damaged >= 1 || i >= packed.len - 32, "byte %zu", i);
        zw_capture_free(c);
    }
    /* cut anywhere: the file is a capture cut short, never refused, never read past its end */
    for (size_t len = 32; len < packed.len; len++) {
        unsigned char *cut = malloc(len);
        cr_assert_not_null(cut);
        memcpy(cut, packed.data, len);
        zw_error err;
        zw_capture *c = zw_capture_load_memory(cut, len, &err);
        cr_assert_not_null(c, "cut at %zu: %s", len, err.msg);
        cr_assert(!c->complete);
        zw_capture_free(c);
        free(cut);
    }
    free(copy);
    zwi_cbuf_release(&packed);
    zwi_cbuf_release(&file);
}

/* Every byte of the records flipped, the checksum then made right: each record's decoder meets
 * the damage, and the capture loads with what the rest holds. */
Test(trace_capture_packed, every_damaged_byte_of_the_records_leaves_a_capture)
{
    zwi_cbuf file = {.raw = raw};
    streamed_capture(&file);
    zwi_cbuf packed = {.raw = raw};
    cr_assert_eq(zwi_capture_pack(file.data, file.len, 10000000, &packed), 0);
    zwi_cbuf inner = {.raw = raw};
    packed_payload(&packed, &inner);
    zwi_cbuf bad = {.raw = raw};
    zwi_cbuf out = {.raw = raw};
    for (size_t i = 0; i < inner.len; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            bad.len = 0;
            zwi_cbuf_bytes(&bad, inner.data, inner.len);
            bad.data[i] ^= (unsigned char)(1u << bit);
            repack(&bad, &out);
            zw_error err;
            zw_capture *c = zw_capture_load_memory(out.data, out.len, &err);
            cr_assert_not_null(c, "byte %zu bit %d: %s", i, bit, err.msg);
            cr_assert(c->complete);
            zw_capture_free(c);
        }
    }
    zwi_cbuf_release(&out);
    zwi_cbuf_release(&bad);
    zwi_cbuf_release(&inner);
    zwi_cbuf_release(&packed);
    zwi_cbuf_release(&file);
}

/* A real capture of 1.5 (examples/zw-demo under zw run: marks, leak kinds, steps, samples, a
 * table of native frames) loads as it did, and packed loads the same. */
Test(trace_capture_packed, a_real_capture_of_1_5_loads_and_packs_to_the_same)
{
    zwi_cbuf file = {.raw = raw};
    zw_error err;
    const char *path = ZW_TEST_CAPTURE_DIR "/demo-1.5-table-marks.zwc";
    cr_assert_eq(zwi_read_file(path, &file, &err), 0, "%s", err.msg);
    cr_assert_eq(file.data[10], 5, "a capture of 1.5");
    zw_capture *a = load(&file);
    cr_assert(a->complete && a->damaged == 0 && a->nmarks >= 2 && a->exit.snap != NULL &&
              a->sites != NULL && a->nsteps > 0 && a->nsamples > 10);
    zwi_cbuf packed = {.raw = raw};
    cr_assert_eq(zwi_capture_pack(file.data, file.len, (uint64_t)a->interval_ms * 1000000, &packed),
                 0);
    cr_assert_lt(packed.len, file.len, "packed %zu bytes of %zu", packed.len, file.len);
    zw_capture *b = load(&packed);
    assert_same_capture(a, b);
    zw_capture_free(b);
    zw_capture_free(a);
    zwi_cbuf_release(&packed);
    zwi_cbuf_release(&file);
}

/* The checksum a word at a time (large payloads) equals the byte-wise definition at every length
 * and alignment, and the standard check value. */
Test(trace_capture_packed, the_checksum_is_crc32_at_every_length_and_alignment)
{
    cr_assert_eq(zwi_crc32(0, "123456789", 9), 0xCBF43926u);
    unsigned char buf[300];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof(buf); i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (unsigned char)(x >> 16);
    }
    for (size_t off = 0; off < 8; off++) {
        for (size_t len = 0; off + len <= sizeof(buf); len += 7) {
            uint32_t want = 0xFFFFFFFFu;
            for (size_t i = 0; i < len; i++) {
                want ^= buf[off + i];
                for (int k = 0; k < 8; k++)
                    want = (want >> 1) ^ (0xEDB88320u & -(want & 1));
            }
            cr_assert_eq(zwi_crc32(0, buf + off, len), ~want, "offset %zu length %zu", off, len);
        }
    }
    /* in two parts: the running form */
    cr_assert_eq(zwi_crc32(zwi_crc32(0, buf, 100), buf + 100, 200), zwi_crc32(0, buf, 300));
}

/* The table written packed from the snapshot is the varint TABLE transcoded, byte for byte. */
Test(trace_capture_packed, a_table_packed_from_the_snapshot_is_the_transcoded_one)
{
    zw_snapshot *t = native_table();
    zwi_cbuf v = {.raw = raw};
    zwi_encode_table(&v, t);
    zwi_cursor c = whole(&v);
    zwi_cbuf a = {.raw = raw};
    cr_assert_eq(zwi_transcode_table_packed(&c, &a), 0, "%s", c.why);
    zwi_cbuf b = {.raw = raw};
    zwi_encode_table_packed(&b, t);
    cr_assert(!b.failed);
    cr_assert_eq(a.len, b.len);
    cr_assert_arr_eq(a.data, b.data, a.len);
    zwi_cbuf_release(&b);
    zwi_cbuf_release(&a);
    zwi_cbuf_release(&v);
    zw_snapshot_free(t);
}

/* The end as 1.6 streams it (one PACKED section of records, TOTALS, END), stored or compressed,
 * loads as the 1.5 end did; a brief load passes over it; packing it copies its records. */
Test(trace_capture_packed, a_capture_whose_end_is_packed_loads_as_one_of_1_5)
{
    zwi_cbuf old = {.raw = raw};
    streamed_capture(&old);
    zw_capture *a = load(&old);
    for (int compress = 0; compress < 2; compress++) {
        zwi_cbuf file = {.raw = raw};
        streamed_capture_as(&file, true, compress);
        zw_capture *b = load(&file);
        assert_same_capture(a, b);
        zw_capture_free(b);
        zwi_cbuf packed = {.raw = raw};
        cr_assert_eq(zwi_capture_pack(file.data, file.len, 10000000, &packed), 0);
        b = load(&packed);
        assert_same_capture(a, b);
        zw_capture_free(b);
        /* brief: the process, totals, live counters and samples; the PACKED end passed over */
        char path[] = "/tmp/zw-packed-XXXXXX";
        int fd = mkstemp(path);
        cr_assert_geq(fd, 0);
        cr_assert_eq(write(fd, file.data, file.len), (ssize_t)file.len);
        close(fd);
        zw_error err;
        zw_capture *c = zw_capture_load_brief(path, &err);
        unlink(path);
        cr_assert_not_null(c, "%s", err.msg);
        cr_assert(c->complete && c->damaged == 0 && c->has_totals && c->totals.allocations == 60 &&
                  c->nsamples == 60 && c->exit.label == NULL && c->nmarks == 0);
        zw_capture_free(c);
        zwi_cbuf_release(&packed);
        zwi_cbuf_release(&file);
    }
    zw_capture_free(a);
    zwi_cbuf_release(&old);
}

/* A real capture of 1.6 (examples/zw-demo under zw run, rewritten packed) loads whole. */
Test(trace_capture_packed, a_real_packed_capture_loads_whole)
{
    zwi_cbuf file = {.raw = raw};
    zw_error err;
    const char *path = ZW_TEST_CAPTURE_DIR "/demo-1.6-packed.zwc";
    cr_assert_eq(zwi_read_file(path, &file, &err), 0, "%s", err.msg);
    cr_assert_eq(file.data[10], 6, "a capture of 1.6");
    cr_assert_eq(file.data[32], ZWI_SEC_PACKED);
    zw_capture *c = load(&file);
    cr_assert(c->complete && c->damaged == 0, "%s", c->damage != NULL ? c->damage : "");
    cr_assert(c->totals.allocations == 11017 && c->nmarks == 3 && c->exit.snap != NULL &&
              c->sites != NULL && c->nsteps > 0 && c->leaks.status == ZW_LEAKS_SCANNED);
    zw_capture_free(c);
    zwi_cbuf_release(&file);
}

static __attribute__((noinline)) int
code_a(int x)
{
    return x * 3 + 1;
}

static __attribute__((noinline)) int
code_b(int x)
{
    return x * 5 + 2;
}

/* A table the builder makes keeps its tracebacks' frame indices as it makes them: the packed
 * table encoded from them is, byte for byte, the one encoded by reading every frame. Tracebacks
 * of return addresses in this program (so that they resolve), of shared outer frames and
 * differing inner ones, some cut (total > frames kept), converted out of ref order. */
Test(trace_capture_packed, a_table_encoded_from_the_builders_frame_indices_is_the_same)
{
    zwi_tracer *tr = zwi_tracer_new(16);
    zwi_symbolizer *sym = zwi_symbolizer_new();
    zw_snapshot *table = zw_snapshot_new(16);
    cr_assert(tr != NULL && sym != NULL && table != NULL);
    zwi_table_builder *b = zwi_table_builder_new(table, tr, sym);
    cr_assert_not_null(b);
    uintptr_t a = (uintptr_t)code_a + 1, c = (uintptr_t)code_b + 1;
    uint32_t refs[300];
    for (unsigned i = 0; i < 300; i++) {
        uintptr_t frames[12];
        unsigned n = 4 + i % 9;
        for (unsigned k = 0; k < n; k++) /* innermost first: the outer ones shared */
            frames[k] = k + 3 < n ? ((i >> k) & 1 ? a : c) + k : a + 16 + (n - 1 - k);
        refs[i] = zwi_tracer_intern(tr, frames, n, i % 5 == 0 ? n + 7 : n);
        cr_assert_neq(refs[i], 0u);
    }
    for (unsigned i = 0; i < 300; i++) /* the odd ones first (each twice), then the even ones */
        cr_assert_geq(zwi_table_builder_index(b, refs[(2 * i + 1) % 300]), 0);
    for (unsigned i = 0; i < 300; i += 2)
        cr_assert_geq(zwi_table_builder_index(b, refs[i]), 0);
    size_t ntbs;
    const uint32_t *shape;
    const uint32_t *idx = zwi_table_builder_frame_indices(b, &ntbs, &shape);
    cr_assert_eq(ntbs, table->ntbs);
    cr_assert_gt(ntbs, 100u);
    zwi_cbuf x = {.raw = raw}, y = {.raw = raw};
    zwi_encode_table_packed(&x, table);
    zwi_encode_table_packed_with(&y, table, idx, shape, ntbs);
    cr_assert(!x.failed && !y.failed);
    cr_assert_eq(x.len, y.len);
    cr_assert_arr_eq(x.data, y.data, x.len);
    /* indices of fewer tracebacks than the table has are not used */
    zwi_cbuf z = {.raw = raw};
    zwi_encode_table_packed_with(&z, table, idx, shape, ntbs - 1);
    cr_assert_eq(z.len, x.len);
    cr_assert_arr_eq(z.data, x.data, x.len);
    cr_assert_eq(code_a(1) + code_b(1), 11);
    zwi_cbuf_release(&z);
    zwi_cbuf_release(&y);
    zwi_cbuf_release(&x);
    zwi_table_builder_free(b);
    zw_snapshot_free(table);
    zwi_symbolizer_free(sym);
    zwi_tracer_free(tr);
}

/* The PACKED section of the end as parts (zwi_container_put_section_parts): compressed as one
 * stream or stored, it reads back as the parts one after the other, whatever their sizes (an
 * empty one, one larger than zstd's blocks); a failed part fails the file. */
Test(trace_capture_packed, a_section_of_parts_reads_back_as_their_concatenation)
{
    zwi_cbuf a = {.raw = raw}, b = {.raw = raw}, c = {.raw = raw}, whole = {.raw = raw};
    zwi_cbuf_bytes(&a, "\x05\x80\x01", 3); /* a record's head */
    for (uint32_t i = 0; i < 300000; i++) /* 1.2 MB: several zstd blocks, some repeats */
        zwi_cbuf_put(&b, (uint64_t)(i % 1000) * 2654435761u, 4);
    zwi_cbuf_bytes(&whole, a.data, a.len);
    zwi_cbuf_bytes(&whole, b.data, b.len);
    for (int level = 0; level <= 3; level += 3) {
        zwi_cbuf file = {.raw = raw}, inner = {.raw = raw};
        zwi_container_put_header(&file, ZWI_KIND_CAPTURE, ZWI_CAPTURE_PACKED_MINOR, 0);
        const zwi_cbuf *parts[] = {&a, &c, &b};
        zwi_container_put_section_parts(&file, ZWI_SEC_PACKED, ZWI_SECTION_REQUIRED, parts, 3,
                                        level);
        cr_assert(!file.failed);
        if (level > 0)
            cr_assert_lt(file.len, whole.len / 2, "level %d: not compressed (%zu bytes)", level,
                         file.len);
        packed_payload(&file, &inner);
        cr_assert_eq(inner.len, whole.len, "level %d", level);
        cr_assert(memcmp(inner.data, whole.data, whole.len) == 0, "level %d: bytes differ", level);
        zwi_cbuf_release(&inner);
        zwi_cbuf_release(&file);
    }
    zwi_cbuf file = {.raw = raw};
    c.failed = true;
    const zwi_cbuf *parts[] = {&a, &c};
    zwi_container_put_section_parts(&file, ZWI_SEC_PACKED, ZWI_SECTION_REQUIRED, parts, 2, 1);
    cr_assert(file.failed, "a failed part left the file whole");
    zwi_cbuf_release(&file);
    zwi_cbuf_release(&a);
    zwi_cbuf_release(&b);
    zwi_cbuf_release(&whole);
}
