/* tests/trace/test_capture_format.c - the capture codec (src/trace/capture_format.c): for every
 * section type, encode -> decode gives back the same values, edge values included (0, the
 * largest integers, empty lists, a long label), and every shorter prefix of the payload gives an
 * error, never a crash or a read past its end (each prefix is decoded from a buffer of exactly its
 * length, so ASan sees an overread). Then a whole capture made with the encoders loads with
 * zw_capture_load_memory, and a damaged payload's message names the section, offset and byte. */
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

TestSuite(trace_capture_format, .init = zwt_capture_setup, .fini = zwt_capture_teardown);

/* ---- decoding a payload, whole or cut ---- */

static int
decode_and_free_process(zwi_cursor *c)
{
    zwi_process p;
    int rc = zwi_decode_process(c, &p);
    for (size_t i = 0; p.argv != NULL && i < p.argc; i++)
        zwi_free(raw, (void *)p.argv[i]);
    zwi_free(raw, p.argv);
    return rc;
}

static int
decode_and_free_samples(zwi_cursor *c, bool series)
{
    zwi_samples s = {0};
    int rc = series ? zwi_decode_series(c, &s) : zwi_decode_timeseries(c, &s);
    zwi_free(raw, s.v);
    return rc;
}

static int
decode_and_free_timeseries(zwi_cursor *c)
{
    return decode_and_free_samples(c, false);
}

static int
decode_and_free_series(zwi_cursor *c)
{
    return decode_and_free_samples(c, true);
}

static int
decode_and_free_set(zwi_cursor *c)
{
    zw_capture_set set;
    int rc = zwi_decode_set(c, &set);
    zwi_free(raw, (void *)set.label);
    zw_snapshot_free(set.snap);
    return rc;
}

static int
decode_and_free_sites(zwi_cursor *c)
{
    zwi_sites s;
    int rc = zwi_decode_sites(c, &s);
    zwi_free(raw, s.counts);
    zw_snapshot_free(s.snap);
    return rc;
}

static int
decode_and_free_site_info(zwi_cursor *c)
{
    zwi_site_info info;
    int rc = zwi_decode_site_info(c, &info);
    zwi_free(raw, info.refs);
    zwi_free(raw, info.temporary);
    return rc;
}

static int
decode_and_free_deltas(zwi_cursor *c)
{
    zwi_steps s = {0};
    int rc = zwi_decode_site_deltas(c, &s);
    zwi_free(raw, s.steps);
    zwi_free(raw, s.deltas);
    return rc;
}

static int
decode_totals_only(zwi_cursor *c)
{
    zw_capture_totals t;
    return zwi_decode_totals(c, &t);
}

/* A label longer than any buffer on the way (messages, snprintf), with every byte value but NUL. */
static char *
long_label(size_t n)
{
    char *s = malloc(n + 1);
    cr_assert_not_null(s);
    for (size_t i = 0; i < n; i++)
        s[i] = (char)(1 + i % 255);
    s[n] = '\0';
    return s;
}

/* ---- PROCESS ---- */

Test(trace_capture_format, process_round_trips_with_edge_values)
{
    char *label = long_label(70000);
    const char *argv[] = {"", "prog", label};
    zwi_process in = {.pid = 0,
                      .ppid = UINT32_MAX,
                      .start_realtime_ns = UINT64_MAX,
                      .interval_ms = 0,
                      .nframe = UINT32_MAX,
                      .argv = argv,
                      .argc = 3};
    zwi_cbuf b = {.raw = raw};
    zwi_encode_process(&b, &in);
    zwi_cursor c = whole(&b);
    zwi_process out;
    cr_assert_eq(zwi_decode_process(&c, &out), 0, "%s", c.why);
    cr_assert_eq(c.pos, c.len);
    cr_assert(out.pid == 0 && out.ppid == UINT32_MAX && out.start_realtime_ns == UINT64_MAX &&
              out.interval_ms == 0 && out.nframe == UINT32_MAX);
    cr_assert_eq(out.argc, 3);
    for (size_t i = 0; i < 3; i++)
        cr_assert_str_eq(out.argv[i], argv[i], "argument %zu", i);
    cr_assert_null(out.argv[3], "argv is NULL-terminated");
    for (size_t i = 0; i < out.argc; i++)
        zwi_free(raw, (void *)out.argv[i]);
    zwi_free(raw, out.argv);
    zwi_cbuf_release(&b);

    /* no arguments; every prefix of a short one fails (the long label's prefixes would take
     * 70000 decodes for nothing more) */
    in.argc = 2;
    zwi_encode_process(&b, &in);
    assert_prefixes_fail(&b, decode_and_free_process);
    b.len = 0;
    in.argc = 0;
    zwi_encode_process(&b, &in);
    c = whole(&b);
    cr_assert_eq(zwi_decode_process(&c, &out), 0, "%s", c.why);
    cr_assert_eq(out.argc, 0);
    cr_assert_null(out.argv[0]);
    zwi_free(raw, out.argv);
    zwi_cbuf_release(&b);
    free(label);
}

Test(trace_capture_format, process_with_an_impossible_argument_count_fails)
{
    zwi_cbuf b = {.raw = raw};
    zwi_encode_process(&b, &(zwi_process){.argc = 0});
    zwi_cbuf_patch(&b, 24, UINT32_MAX, 4); /* argc: 4 billion arguments in 0 bytes */
    zwi_cursor c = whole(&b);
    cr_assert_eq(decode_and_free_process(&c), -1);
    cr_assert_str_eq(c.why, "argument count larger than the payload");
    zwi_cbuf_release(&b);
}

/* ---- TIMESERIES and SERIES ---- */

static const zw_capture_sample samples[] = {
    {0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
    {1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
    {UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX,
     UINT64_MAX, UINT64_MAX},
};
#define NSAMPLES (sizeof(samples) / sizeof(samples[0]))

Test(trace_capture_format, series_round_trips_every_field_and_appends)
{
    zwi_cbuf b = {.raw = raw};
    zwi_encode_series(&b, samples, NSAMPLES);
    assert_prefixes_fail(&b, decode_and_free_series);
    zwi_samples into = {0};
    for (int round = 0; round < 2; round++) { /* a second section appends */
        zwi_cursor c = whole(&b);
        cr_assert_eq(zwi_decode_series(&c, &into), 0, "%s", c.why);
    }
    cr_assert_eq(into.n, 2 * NSAMPLES);
    for (size_t i = 0; i < into.n; i++)
        cr_assert_arr_eq(&into.v[i], &samples[i % NSAMPLES], sizeof(zw_capture_sample),
                         "sample %zu", i);
    zwi_free(raw, into.v);

    /* none */
    b.len = 0;
    zwi_encode_series(&b, NULL, 0);
    into = (zwi_samples){0};
    zwi_cursor c = whole(&b);
    cr_assert_eq(zwi_decode_series(&c, &into), 0, "%s", c.why);
    cr_assert_eq(into.n, 0);
    zwi_free(raw, into.v);
    zwi_cbuf_release(&b);
}

Test(trace_capture_format, series_of_a_later_version_keeps_the_fields_it_knows)
{
    /* 2 samples of 11 fields: a later minor version added one; it is skipped */
    zwi_cbuf b = {.raw = raw};
    zwi_cbuf_put(&b, 2, 4);
    zwi_cbuf_put(&b, 11, 4);
    for (uint64_t i = 0; i < 22; i++)
        zwi_cbuf_put(&b, 100 + i, 8);
    zwi_samples into = {0};
    zwi_cursor c = whole(&b);
    cr_assert_eq(zwi_decode_series(&c, &into), 0, "%s", c.why);
    cr_assert_eq(c.pos, c.len);
    cr_assert_eq(into.n, 2);
    cr_assert(into.v[0].time_ns == 100 && into.v[0].bytes_allocated == 107);
    cr_assert(into.v[0].mmap_bytes == 108 && into.v[0].mmap_peak == 109);
    cr_assert(into.v[1].time_ns == 111 && into.v[1].mmap_peak == 120);
    zwi_free(raw, into.v);

    /* 8 fields, as 1.4 wrote them: the mmap domain's read as 0 */
    b.len = 0;
    zwi_cbuf_put(&b, 1, 4);
    zwi_cbuf_put(&b, 8, 4);
    for (uint64_t i = 0; i < 8; i++)
        zwi_cbuf_put(&b, 100 + i, 8);
    into = (zwi_samples){0};
    c = whole(&b);
    cr_assert_eq(zwi_decode_series(&c, &into), 0, "%s", c.why);
    cr_assert_eq(into.n, 1);
    cr_assert(into.v[0].bytes_allocated == 107 && into.v[0].mmap_bytes == 0 &&
              into.v[0].mmap_peak == 0);
    zwi_free(raw, into.v);

    /* 7 fields: too few */
    zwi_cbuf_patch(&b, 4, 7, 4);
    c = whole(&b);
    cr_assert_eq(decode_and_free_series(&c), -1);
    cr_assert_str_eq(c.why, "too few fields per sample");
    zwi_cbuf_release(&b);
}

Test(trace_capture_format, timeseries_round_trips_its_four_fields)
{
    zwi_cbuf b = {.raw = raw};
    zwi_encode_timeseries(&b, samples, NSAMPLES);
    cr_assert_eq(b.len, 4 + NSAMPLES * 4 * 8);
    assert_prefixes_fail(&b, decode_and_free_timeseries);
    zwi_samples into = {0};
    zwi_cursor c = whole(&b);
    cr_assert_eq(zwi_decode_timeseries(&c, &into), 0, "%s", c.why);
    cr_assert_eq(into.n, NSAMPLES);
    for (size_t i = 0; i < NSAMPLES; i++) {
        const zw_capture_sample *x = &into.v[i], *y = &samples[i];
        cr_assert(x->time_ns == y->time_ns && x->heap_bytes == y->heap_bytes &&
                      x->heap_blocks == y->heap_blocks && x->rss_bytes == y->rss_bytes,
                  "sample %zu", i);
        cr_assert(x->allocations == 0 && x->frees == 0 && x->temporary == 0 &&
                      x->bytes_allocated == 0,
                  "a 1.1 sample has no running totals");
    }
    zwi_free(raw, into.v);
    zwi_cbuf_release(&b);
}

/* ---- live sets ---- */

/* Same traces in the same order (sizes, domains, frame files and lines). */
static void
assert_same_snapshot(const zw_snapshot *a, const zw_snapshot *b)
{
    cr_assert_eq(zw_snapshot_len(a), zw_snapshot_len(b));
    for (size_t i = 0; i < zw_snapshot_len(a); i++) {
        zw_trace_info x = zw_snapshot_trace(a, i);
        zw_trace_info y = zw_snapshot_trace(b, i);
        cr_assert(x.domain == y.domain && x.size == y.size, "trace %zu", i);
        cr_assert_eq(zw_traceback_len(x.traceback), zw_traceback_len(y.traceback));
        for (size_t k = 0; k < zw_traceback_len(x.traceback); k++) {
            const zw_frame *f = zw_traceback_frame(x.traceback, k);
            const zw_frame *g = zw_traceback_frame(y.traceback, k);
            cr_assert_str_eq(f->filename, g->filename);
            cr_assert_eq(f->lineno, g->lineno);
        }
    }
}

Test(trace_capture_format, live_set_round_trips_with_and_without_its_snapshot)
{
    zw_snapshot *snap = zwt_fixture_a();
    char *label = long_label(5000);
    zwi_cbuf b = {.raw = raw};
    zwi_encode_set(&b, &(zw_capture_set){label, UINT64_MAX, 0, snap, NULL});
    assert_prefixes_fail(&b, decode_and_free_set);
    zw_capture_set out;
    zwi_cursor c = whole(&b);
    cr_assert_eq(zwi_decode_set(&c, &out), 0, "%s", c.why);
    cr_assert_str_eq(out.label, label);
    cr_assert(out.time_ns == UINT64_MAX && out.heap_bytes == 0);
    cr_assert_not_null(out.snap);
    assert_same_snapshot(out.snap, snap);
    zwi_free(raw, (void *)out.label);
    zw_snapshot_free(out.snap);

    /* not kept: no snapshot; an empty label */
    b.len = 0;
    zwi_encode_set(&b, &(zw_capture_set){"", 0, UINT64_MAX, NULL, NULL});
    c = whole(&b);
    cr_assert_eq(zwi_decode_set(&c, &out), 0, "%s", c.why);
    cr_assert_str_eq(out.label, "");
    cr_assert(out.time_ns == 0 && out.heap_bytes == UINT64_MAX);
    cr_assert_null(out.snap);
    zwi_free(raw, (void *)out.label);
    zwi_cbuf_release(&b);
    free(label);
    zw_snapshot_free(snap);
}

Test(trace_capture_format, live_set_with_a_damaged_snapshot_names_it)
{
    zw_snapshot *snap = zwt_fixture_a();
    zwi_cbuf b = {.raw = raw};
    zwi_encode_set(&b, &(zw_capture_set){"m", 1, 2, snap, NULL});
    size_t at = 8 + 8 + 4 + 1 + 8; /* the snapshot's first byte */
    b.data[at] ^= 0xff;            /* its magic */
    zwi_cursor c = whole(&b);
    cr_assert_eq(decode_and_free_set(&c), -1);
    cr_assert(strstr(c.why, "embedded snapshot: not a zerowaste file") == c.why, "%s", c.why);
    cr_assert_eq(c.why_pos, at);
    zwi_cbuf_release(&b);
    zw_snapshot_free(snap);
}

/* ---- SITES ---- */

Test(trace_capture_format, sites_round_trip_and_must_match_their_snapshot)
{
    zw_snapshot *snap = zwt_fixture_a();
    size_t n = zw_snapshot_len(snap);
    uint64_t counts[16];
    cr_assert_leq(n, 16);
    for (size_t i = 0; i < n; i++)
        counts[i] = i == 0 ? 0 : i == 1 ? UINT64_MAX : i * 1000;
    zwi_cbuf b = {.raw = raw};
    cr_assert_eq(zwi_encode_sites(&b, &(zwi_sites){counts, n, snap}), 0);
    assert_prefixes_fail(&b, decode_and_free_sites);
    zwi_sites out;
    zwi_cursor c = whole(&b);
    cr_assert_eq(zwi_decode_sites(&c, &out), 0, "%s", c.why);
    cr_assert_eq(out.n, n);
    cr_assert_arr_eq(out.counts, counts, n * sizeof(uint64_t));
    assert_same_snapshot(out.snap, snap);
    zwi_free(raw, out.counts);
    zw_snapshot_free(out.snap);

    /* none at all */
    b.len = 0;
    cr_assert_eq(zwi_encode_sites(&b, &(zwi_sites){NULL, 0, NULL}), 0);
    c = whole(&b);
    cr_assert_eq(zwi_decode_sites(&c, &out), 0, "%s", c.why);
    cr_assert(out.n == 0 && out.snap == NULL);
    zwi_free(raw, out.counts);

    /* one count fewer than the snapshot's traces */
    b.len = 0;
    cr_assert_eq(zwi_encode_sites(&b, &(zwi_sites){counts + 1, n - 1, snap}), 0);
    c = whole(&b);
    cr_assert_eq(decode_and_free_sites(&c), -1);
    cr_assert_str_eq(c.why, "site count differs from the snapshot's traces");
    zwi_cbuf_release(&b);
    zw_snapshot_free(snap);
}

/* ---- SITE_INFO ---- */

Test(trace_capture_format, site_info_round_trips)
{
    uint32_t refs[] = {0, 1, UINT32_MAX};
    uint64_t temporary[] = {UINT64_MAX, 0, 42};
    for (int whole_steps = 0; whole_steps < 2; whole_steps++) {
        zwi_cbuf b = {.raw = raw};
        zwi_encode_site_info(&b, &(zwi_site_info){whole_steps, refs, temporary, 3});
        assert_prefixes_fail(&b, decode_and_free_site_info);
        zwi_site_info out;
        zwi_cursor c = whole(&b);
        cr_assert_eq(zwi_decode_site_info(&c, &out), 0, "%s", c.why);
        cr_assert_eq(out.steps_whole, whole_steps == 1);
        cr_assert_eq(out.n, 3);
        cr_assert_arr_eq(out.refs, refs, sizeof(refs));
        cr_assert_arr_eq(out.temporary, temporary, sizeof(temporary));
        zwi_free(raw, out.refs);
        zwi_free(raw, out.temporary);
        zwi_cbuf_release(&b);
    }
    zwi_cbuf b = {.raw = raw};
    zwi_encode_site_info(&b, &(zwi_site_info){true, NULL, NULL, 0});
    zwi_site_info out;
    zwi_cursor c = whole(&b);
    cr_assert_eq(zwi_decode_site_info(&c, &out), 0, "%s", c.why);
    cr_assert(out.n == 0 && out.steps_whole);
    zwi_free(raw, out.refs);
    zwi_free(raw, out.temporary);
    zwi_cbuf_release(&b);
}

/* ---- SITE_DELTAS ---- */

static const zw_capture_delta deltas[] = {
    {0, INT64_MIN, INT64_MAX},
    {UINT32_MAX, -1, 1},
    {7, 0, 0},
};
static const zw_capture_step steps[] = {
    {0, 0, 2, true, false},         /* two deltas, a peak step */
    {UINT64_MAX, 2, 0, true, true}, /* a peak step of both domains with no change */
    {5, 2, 1, false, true},         /* an mmap peak step */
};
#define NSTEPS (sizeof(steps) / sizeof(steps[0]))

Test(trace_capture_format, site_deltas_round_trip_and_append)
{
    zwi_cbuf b = {.raw = raw};
    zwi_encode_site_deltas(&b, steps, NSTEPS, deltas);
    assert_prefixes_fail(&b, decode_and_free_deltas);
    zwi_steps into = {0};
    for (int round = 0; round < 2; round++) {
        zwi_cursor c = whole(&b);
        cr_assert_eq(zwi_decode_site_deltas(&c, &into), 0, "%s", c.why);
    }
    cr_assert_eq(into.nsteps, 2 * NSTEPS);
    cr_assert_eq(into.ndeltas, 6);
    for (size_t i = 0; i < into.nsteps; i++) {
        const zw_capture_step *x = &into.steps[i], *y = &steps[i % NSTEPS];
        cr_assert(x->time_ns == y->time_ns && x->n == y->n && x->peak == y->peak, "step %zu", i);
        cr_assert_eq(x->mmap_peak, y->mmap_peak, "step %zu", i);
        cr_assert_eq(x->first, y->first + (i < NSTEPS ? 0 : 3), "step %zu", i);
        for (size_t k = 0; k < x->n; k++) {
            const zw_capture_delta *d = &into.deltas[x->first + k], *e = &deltas[y->first + k];
            cr_assert(d->site == e->site && d->bytes == e->bytes && d->blocks == e->blocks,
                      "step %zu delta %zu", i, k);
        }
    }
    zwi_free(raw, into.steps);
    zwi_free(raw, into.deltas);

    /* built a step at a time, as the sampler does: the same bytes */
    zwi_cbuf each = {.raw = raw};
    for (size_t i = 0; i < NSTEPS; i++) {
        size_t at = zwi_step_begin(&each, steps[i].time_ns,
                                   (steps[i].peak ? ZWI_STEP_PEAK : 0) |
                                       (steps[i].mmap_peak ? ZWI_STEP_MMAP_PEAK : 0));
        for (size_t k = steps[i].first; k < steps[i].first + steps[i].n; k++)
            zwi_step_delta(&each, deltas[k].site, deltas[k].bytes, deltas[k].blocks);
        zwi_step_end(&each, at, (uint32_t)steps[i].n);
    }
    zwi_cbuf payload = {.raw = raw};
    zwi_encode_site_deltas_of(&payload, &each, NSTEPS);
    cr_assert_eq(payload.len, b.len);
    cr_assert_arr_eq(payload.data, b.data, b.len);

    /* none */
    b.len = 0;
    zwi_encode_site_deltas(&b, NULL, 0, NULL);
    into = (zwi_steps){0};
    zwi_cursor c = whole(&b);
    cr_assert_eq(zwi_decode_site_deltas(&c, &into), 0, "%s", c.why);
    cr_assert(into.nsteps == 0 && into.ndeltas == 0);
    zwi_cbuf_release(&payload);
    zwi_cbuf_release(&each);
    zwi_cbuf_release(&b);
}

/* ---- TOTALS ---- */

Test(trace_capture_format, totals_round_trip_and_refuse_an_unknown_end)
{
    const zw_capture_totals cases[] = {
        {0, 0, 0, 0, 0, 0, 0, ZW_CAPTURE_END_UNKNOWN, 0},
        {UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX,
         ZW_CAPTURE_END_EXEC, INT32_MIN},
        {1, 2, 3, 4, 5, 6, 7, ZW_CAPTURE_END_SIGNAL, -1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        zwi_cbuf b = {.raw = raw};
        zwi_encode_totals(&b, &cases[i]);
        cr_assert_eq(b.len, 64);
        assert_prefixes_fail(&b, decode_totals_only);
        zw_capture_totals out;
        zwi_cursor c = whole(&b);
        cr_assert_eq(zwi_decode_totals(&c, &out), 0, "%s", c.why);
        cr_assert_arr_eq(&out, &cases[i], sizeof(out), "case %zu", i);
        zwi_cbuf_release(&b);
    }
    zwi_cbuf b = {.raw = raw};
    zwi_encode_totals(&b, &(zw_capture_totals){.end = ZW_CAPTURE_END_EXEC + 1});
    zw_capture_totals out;
    zwi_cursor c = whole(&b);
    cr_assert_eq(zwi_decode_totals(&c, &out), -1);
    cr_assert_str_eq(c.why, "unknown end of process");
    zwi_cbuf_release(&b);
}

/* ---- LIVE ---- */

static int
decode_live_only(zwi_cursor *c)
{
    zwi_live l;
    return zwi_decode_live(c, &l);
}

static void
set_u64(unsigned char *p, uint64_t v)
{
    for (int k = 0; k < 8; k++)
        p[k] = (unsigned char)(v >> (8 * k));
}

/* A capture as a killed process leaves it: header, LIVE updated in place, PROCESS, no TOTALS. */
Test(trace_capture_format, live_is_unchecked_and_gives_a_cut_capture_its_counts)
{
    zwi_cbuf f = {.raw = raw};
    zwi_capture_put_header(&f);
    zwi_capture_put_live(&f, 3);
    cr_assert_eq(f.len, 32 + 32 + 64 + 3 * 64);
    const unsigned char *h = f.data + 32;
    cr_assert_eq(h[0], ZWI_SEC_LIVE);
    cr_assert_eq(h[4], 0, "stored as it is: updated in place");
    cr_assert_eq(h[24] | h[25] | h[26] | h[27], 0, "no payload checksum");
    unsigned char *pay = f.data + 64; /* what the process stores while it runs */
    pay[4] = ZW_CAPTURE_END_SIGNAL;
    pay[8] = 9;
    pay[12] = 28; /* ENOSPC */
    set_u64(pay + 16, 5000);
    set_u64(pay + 24, 77);
    for (int slot = 0; slot < 3; slot++) {
        unsigned char *sl = pay + 64 + 64 * slot;
        for (int k = 0; k < 6; k++)
            set_u64(sl + 8 * k, (uint64_t)(slot + 1) * (k + 1));
    }
    zwi_cbuf p = {.raw = raw};
    zwi_cbuf_bytes(&p, pay, 64 + 3 * 64);
    assert_prefixes_fail(&p, decode_live_only);
    zwi_cbuf_release(&p);
    zwi_cbuf pp = {.raw = raw};
    const char *argv[] = {"prog"};
    zwi_encode_process(&pp, &(zwi_process){.pid = 7, .argv = argv, .argc = 1});
    zwi_capture_put(&f, ZWI_SEC_PROCESS, &pp);
    zwi_cbuf_release(&pp);
    zw_error err = {0};
    zw_capture *c = zw_capture_load_memory(f.data, f.len, &err);
    cr_assert_not_null(c, "%s", err.msg);
    cr_assert(!c->complete && !c->has_totals && c->has_live);
    cr_assert_eq(c->totals.allocations, 1 + 2 + 3);
    cr_assert_eq(c->totals.frees, 2 * 6);
    cr_assert_eq(c->totals.temporary, 3 * 6);
    cr_assert_eq(c->totals.bytes_allocated, 4 * 6);
    cr_assert_eq(c->live.bytes_freed, 5 * 6);
    cr_assert_eq(c->untraced, 6 * 6);
    cr_assert_eq(c->totals.end, ZW_CAPTURE_END_SIGNAL);
    cr_assert_eq(c->totals.code, 9);
    cr_assert_eq(c->write_errno, 28);
    cr_assert_eq(c->totals.peak_bytes, 5000);
    cr_assert_eq(c->totals.peak_time_ns, 77);
    zw_capture_free(c);
    pay[0] = 4; /* a slot count the length does not hold: the section is skipped, and said */
    c = zw_capture_load_memory(f.data, f.len, &err);
    cr_assert_not_null(c, "%s", err.msg);
    cr_assert(c->damaged == 1 && !c->has_live && c->pid == 7);
    cr_assert(strstr(c->damage, "live section length differs from its slot count") != NULL, "%s",
              c->damage);
    zw_capture_free(c);
    zwi_cbuf_release(&f);
}

/* ---- LEAKS ---- */

static int
decode_and_free_leaks(zwi_cursor *c)
{
    zw_capture_leaks l;
    int rc = zwi_decode_leaks(c, &l);
    zwi_free(raw, l.kinds);
    return rc;
}

Test(trace_capture_format, leaks_round_trip_with_and_without_kinds)
{
    uint8_t kinds[300];
    for (size_t i = 0; i < sizeof(kinds); i++)
        kinds[i] = (uint8_t)(i % ZW_LEAK_KINDS);
    const zw_capture_leaks cases[] = {
        {.status = ZW_LEAKS_SCANNED,
         .blocks = {75, 75, 75, 75},
         .bytes = {1, 2, 3, UINT64_MAX},
         .kinds = kinds,
         .nkinds = sizeof(kinds),
         .scan_ns = 7,
         .scan_cpu_ns = 6,
         .scan_memory = UINT64_MAX,
         .root_bytes = 4096,
         .modules = 9,
         .threads = 3,
         .threads_missed = UINT32_MAX},
        {.status = ZW_LEAKS_SCANNED}, /* an empty exit set */
        {.status = ZW_LEAKS_SKIPPED, .modules = 1},
        {.status = ZW_LEAKS_OFF},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        zwi_cbuf b = {.raw = raw};
        zwi_encode_leaks(&b, &cases[i]);
        assert_prefixes_fail(&b, decode_and_free_leaks);
        zw_capture_leaks out;
        zwi_cursor c = whole(&b);
        cr_assert_eq(zwi_decode_leaks(&c, &out), 0, "case %zu: %s", i, c.why);
        cr_assert_eq(out.status, cases[i].status);
        cr_assert_eq(out.nkinds, cases[i].nkinds, "case %zu", i);
        if (cases[i].nkinds > 0)
            cr_assert_arr_eq(out.kinds, cases[i].kinds, cases[i].nkinds);
        else
            cr_assert_null(out.kinds);
        cr_assert_arr_eq(out.blocks, cases[i].blocks, sizeof(out.blocks));
        cr_assert_arr_eq(out.bytes, cases[i].bytes, sizeof(out.bytes));
        cr_assert(out.scan_ns == cases[i].scan_ns && out.scan_cpu_ns == cases[i].scan_cpu_ns &&
                  out.scan_memory == cases[i].scan_memory &&
                  out.root_bytes == cases[i].root_bytes && out.modules == cases[i].modules &&
                  out.threads == cases[i].threads && out.threads_missed == cases[i].threads_missed);
        zwi_free(raw, out.kinds);
        zwi_cbuf_release(&b);
    }
}

Test(trace_capture_format, leaks_refuse_an_unknown_status_or_kind)
{
    zwi_cbuf b = {.raw = raw};
    zwi_encode_leaks(&b, &(zw_capture_leaks){.status = ZW_LEAKS_OFF + 1});
    zw_capture_leaks out;
    zwi_cursor c = whole(&b);
    cr_assert_eq(zwi_decode_leaks(&c, &out), -1);
    cr_assert_str_eq(c.why, "unknown leak scan status 5");
    b.len = 0;
    uint8_t kinds[2] = {ZW_LEAK_REACHABLE, ZW_LEAK_KINDS};
    zwi_encode_leaks(&b,
                     &(zw_capture_leaks){.status = ZW_LEAKS_SCANNED, .kinds = kinds, .nkinds = 2});
    c = whole(&b);
    cr_assert_eq(zwi_decode_leaks(&c, &out), -1);
    cr_assert_str_eq(c.why, "leak kind 4 of block 1 unknown");
    zwi_cbuf_release(&b);
}

/* ---- END ---- */

Test(trace_capture_format, end_is_empty)
{
    zwi_cbuf b = {.raw = raw};
    zwi_encode_end(&b);
    cr_assert_eq(b.len, 0);
    zwi_cursor c = whole(&b);
    cr_assert_eq(zwi_decode_end(&c), 0);
    zwi_cbuf_put(&b, 0, 1);
    c = whole(&b);
    cr_assert_eq(zwi_decode_end(&c), -1);
    cr_assert_str_eq(c.why, "end section not empty");
    zwi_cbuf_release(&b);
}

/* ---- a whole file ---- */

/* A capture made with the encoders: header, PROCESS, a SERIES of `nsamples`, SITE_DELTAS, MARK,
 * EXIT_SET, TOTALS and END (if `end`). */
static void
build_capture(zwi_cbuf *file, size_t nsamples, bool end, zw_snapshot *snap)
{
    zwi_cbuf pay = {.raw = raw};
    zwi_capture_put_header(file);
    const char *argv[] = {"prog", "--flag"};
    zwi_encode_process(&pay, &(zwi_process){7, 1, 99, 10, 16, argv, 2});
    zwi_capture_put(file, ZWI_SEC_PROCESS, &pay);
    pay.len = 0;
    zw_capture_sample s[40];
    cr_assert_leq(nsamples, 40);
    for (size_t i = 0; i < nsamples; i++)
        s[i] =
            (zw_capture_sample){i * 10, i * 100, i, 4096, i * 2, i, 0, i * 200, i * 8192, i * 8192};
    zwi_encode_series(&pay, s, nsamples);
    zwi_capture_put(file, ZWI_SEC_SERIES, &pay);
    pay.len = 0;
    zwi_encode_set(&pay, &(zw_capture_set){"checkpoint", 15, 1500, snap, NULL});
    zwi_capture_put(file, ZWI_SEC_MARK, &pay);
    pay.len = 0;
    zwi_encode_set(&pay, &(zw_capture_set){"exit", 30, 3000, snap, NULL});
    zwi_capture_put(file, ZWI_SEC_EXIT_SET, &pay);
    pay.len = 0;
    zwi_encode_totals(&pay,
                      &(zw_capture_totals){5, 4, 3, 2000, 3000, 20, 30, ZW_CAPTURE_END_EXIT, 0});
    zwi_capture_put(file, ZWI_SEC_TOTALS, &pay);
    if (end) {
        pay.len = 0;
        zwi_encode_end(&pay);
        zwi_capture_put(file, ZWI_SEC_END, &pay);
    }
    zwi_cbuf_release(&pay);
    cr_assert(!file->failed);
}

Test(trace_capture_format, a_capture_made_with_the_encoders_loads)
{
    zw_snapshot *snap = zwt_fixture_a();
    zwi_cbuf file = {.raw = raw};
    build_capture(&file, 20, true, snap);
    zw_error err;
    zw_capture *c = zw_capture_load_memory(file.data, file.len, &err);
    cr_assert_not_null(c, "%s", err.msg);
    cr_assert(c->complete && c->pid == 7 && c->ppid == 1 && c->start_realtime_ns == 99 &&
              c->interval_ms == 10 && c->nframe == 16);
    cr_assert_eq(c->argc, 2);
    cr_assert_str_eq(c->argv[1], "--flag");
    cr_assert(c->has_counters);
    cr_assert_eq(c->nsamples, 20);
    cr_assert_eq(c->samples[19].bytes_allocated, 19 * 200);
    cr_assert_eq(c->nmarks, 1);
    cr_assert_str_eq(c->marks[0].label, "checkpoint");
    assert_same_snapshot(c->exit.snap, snap);
    cr_assert(c->has_totals && c->totals.peak_bytes == 3000 &&
              c->totals.end == ZW_CAPTURE_END_EXIT);
    zw_capture_free(c);

    /* without END: incomplete, the sections before stand */
    file.len = 0;
    build_capture(&file, 3, false, snap);
    c = zw_capture_load_memory(file.data, file.len, &err);
    cr_assert_not_null(c, "%s", err.msg);
    cr_assert(!c->complete && c->nsamples == 3 && c->has_totals);
    zw_capture_free(c);
    zwi_cbuf_release(&file);
    zw_snapshot_free(snap);
}

Test(trace_capture_format, a_brief_load_reads_how_the_run_went_and_no_set)
{
    zw_snapshot *snap = zwt_fixture_a();
    zwi_cbuf file = {.raw = raw};
    build_capture(&file, 20, true, snap);
    char path[] = "/tmp/zw-brief-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, file.data, file.len), (ssize_t)file.len);
    close(fd);
    zw_error err;
    zw_capture *full = zw_capture_load(path, &err);
    cr_assert_not_null(full, "%s", err.msg);
    zw_capture *c = zw_capture_load_brief(path, &err);
    cr_assert_not_null(c, "%s", err.msg);
    unlink(path);
    cr_assert(c->complete && c->pid == full->pid && c->argc == full->argc);
    cr_assert_str_eq(c->argv[1], "--flag");
    cr_assert_eq(c->nsamples, full->nsamples);
    cr_assert_eq(c->samples[19].bytes_allocated, full->samples[19].bytes_allocated);
    cr_assert(c->has_totals && memcmp(&c->totals, &full->totals, sizeof(c->totals)) == 0);
    cr_assert_eq(c->write_errno, full->write_errno);
    cr_assert_eq(c->untraced, full->untraced);
    /* what names tracebacks is passed over: the full load has a mark and an exit set */
    cr_assert(full->nmarks == 1 && full->exit.snap != NULL);
    cr_assert(c->nmarks == 0 && c->exit.snap == NULL && c->peak.snap == NULL && c->nsteps == 0);
    cr_assert_eq(c->damaged, 0);
    zw_capture_free(c);
    zw_capture_free(full);
    cr_assert_null(zw_capture_load_brief(path, &err), "a file that is gone");
    cr_assert(strstr(err.msg, path) != NULL, "%s", err.msg);
    zwi_cbuf_release(&file);
    zw_snapshot_free(snap);
}

/* The capture of build_capture() with a LEAKS section of `n` kinds (the exit set has `exit_n`). */
static zw_capture *
load_with_leaks(zw_snapshot *snap, size_t n)
{
    zwi_cbuf file = {.raw = raw};
    build_capture(&file, 2, false, snap);
    uint8_t kinds[64];
    cr_assert_leq(n, 64);
    for (size_t i = 0; i < n; i++)
        kinds[i] = (uint8_t)(i % 2 == 0 ? ZW_LEAK_DEFINITE : ZW_LEAK_REACHABLE);
    zwi_cbuf pay = {.raw = raw};
    zwi_encode_leaks(&pay, &(zw_capture_leaks){.status = ZW_LEAKS_SCANNED,
                                               .kinds = kinds,
                                               .nkinds = n,
                                               .blocks = {99},
                                               .bytes = {99}});
    zwi_capture_put(&file, ZWI_SEC_LEAKS, &pay);
    zw_error err;
    zw_capture *c = zw_capture_load_memory(file.data, file.len, &err);
    cr_assert_not_null(c, "%s", err.msg);
    zwi_cbuf_release(&pay);
    zwi_cbuf_release(&file);
    return c;
}

Test(trace_capture_format, leak_kinds_name_the_exit_set_or_nothing)
{
    zw_snapshot *snap = zwt_fixture_a();
    size_t n = zw_snapshot_len(snap);
    cr_assert_gt(n, 1);
    zw_capture *c = load_with_leaks(snap, n);
    cr_assert_eq(c->leaks.status, ZW_LEAKS_SCANNED);
    uint64_t blocks = 0, bytes = 0;
    for (size_t i = 0; i < n; i += 2) {
        blocks++;
        bytes += zw_snapshot_trace(snap, i).size;
    }
    cr_assert_eq(c->leaks.blocks[ZW_LEAK_DEFINITE], blocks, "the sums are the kinds', not 99");
    cr_assert_eq(c->leaks.bytes[ZW_LEAK_DEFINITE], bytes);
    zw_error err;
    zw_snapshot *lost = zw_capture_leaked(c, 1u << ZW_LEAK_DEFINITE, &err);
    cr_assert_not_null(lost, "%s", err.msg);
    cr_assert_eq(zw_snapshot_len(lost), blocks);
    cr_assert_eq(zw_snapshot_trace(lost, 0).size, zw_snapshot_trace(snap, 0).size);
    zw_snapshot_free(lost);
    zw_capture_free(c);

    /* one kind too few: they name nothing, and the capture loads with the kinds unknown */
    c = load_with_leaks(snap, n - 1);
    cr_assert_eq(c->leaks.status, ZW_LEAKS_UNKNOWN);
    cr_assert_null(c->leaks.kinds);
    cr_assert_null(zw_capture_leaked(c, ~0u, &err));
    zw_capture_free(c);
    zw_snapshot_free(snap);
}

/* A mark's scan: MARK_LEAKS after the MARK of build_capture() gives that mark its kinds, summed
 * again from them; a count that does not name the mark's traces names nothing; with no mark
 * before it the section is damaged and skipped. */
Test(trace_capture_format, a_marks_leak_kinds_round_trip_with_its_mark)
{
    zw_snapshot *snap = zwt_fixture_a();
    size_t n = zw_snapshot_len(snap);
    cr_assert(n > 1 && n <= 64);
    uint8_t kinds[64];
    uint64_t blocks = 0, bytes = 0;
    for (size_t i = 0; i < n; i++) {
        kinds[i] = (uint8_t)(i % 2 == 1 ? ZW_LEAK_DEFINITE : ZW_LEAK_REACHABLE);
        blocks += i % 2 == 1;
        bytes += i % 2 == 1 ? zw_snapshot_trace(snap, i).size : 0;
    }
    for (int round = 0; round < 3; round++) {
        zwi_cbuf file = {.raw = raw};
        zwi_cbuf pay = {.raw = raw};
        if (round == 2) { /* no mark before it */
            zwi_capture_put_header(&file);
            const char *argv[] = {"prog"};
            zwi_encode_process(&pay, &(zwi_process){7, 1, 99, 10, 16, argv, 1});
            zwi_capture_put(&file, ZWI_SEC_PROCESS, &pay);
            pay.len = 0;
        } else {
            build_capture(&file, 2, false, snap);
        }
        zwi_encode_leaks(&pay, &(zw_capture_leaks){.status = ZW_LEAKS_SCANNED,
                                                   .kinds = kinds,
                                                   .nkinds = round == 1 ? n - 1 : n,
                                                   .threads = 3,
                                                   .blocks = {99}});
        zwi_capture_put(&file, ZWI_SEC_MARK_LEAKS, &pay);
        zw_error err;
        zw_capture *c = zw_capture_load_memory(file.data, file.len, &err);
        cr_assert_not_null(c, "%s", err.msg);
        if (round == 0) {
            cr_assert_eq(c->nmarks, 1);
            const zw_capture_leaks *l = c->marks[0].leaks;
            cr_assert_not_null(l);
            cr_assert_eq(l->status, ZW_LEAKS_SCANNED);
            cr_assert_eq(l->threads, 3);
            cr_assert_eq(l->nkinds, n);
            cr_assert_arr_eq(l->kinds, kinds, n);
            cr_assert_eq(l->blocks[ZW_LEAK_DEFINITE], blocks, "the sums are the kinds', not 99");
            cr_assert_eq(l->bytes[ZW_LEAK_DEFINITE], bytes);
            cr_assert_eq(l->blocks[ZW_LEAK_REACHABLE], n - blocks);
            cr_assert_eq(c->leaks.status, ZW_LEAKS_UNKNOWN, "the exit set's are not the mark's");
            cr_assert_eq(c->damaged, 0);
        } else if (round == 1) {
            cr_assert_null(c->marks[0].leaks, "kinds of another set name nothing");
            cr_assert_eq(c->damaged, 0);
        } else {
            cr_assert_eq(c->nmarks, 0);
            cr_assert_eq(c->damaged, 1, "a mark's scan without its mark is damage");
        }
        zw_capture_free(c);
        zwi_cbuf_release(&pay);
        zwi_cbuf_release(&file);
    }
    zw_snapshot_free(snap);
}

/* The flags of section `index` of a capture file (sections of known lengths in order). */
static uint32_t
section_flags(const zwi_cbuf *file, size_t index, size_t *offset)
{
    size_t off = ZWI_HEADER_SIZE;
    for (size_t i = 0; i < index; i++) {
        uint64_t stored = 0;
        for (int k = 0; k < 8; k++)
            stored |= (uint64_t)file->data[off + 8 + k] << (8 * k);
        off += ZWI_SECTION_SIZE + stored;
    }
    *offset = off;
    return file->data[off + 4];
}

Test(trace_capture_format, sampler_sections_are_compressed_past_a_few_records)
{
    zwi_cbuf file = {.raw = raw};
    size_t off;
    build_capture(&file, 8, true, NULL);
    cr_assert_eq(section_flags(&file, 1, &off) & ZWI_SECTION_ZSTD, 0, "8 samples: as they are");
    file.len = 0;
    build_capture(&file, 9, true, NULL);
    cr_assert_neq(section_flags(&file, 1, &off) & ZWI_SECTION_ZSTD, 0, "9 samples: compressed");
    cr_assert_eq(section_flags(&file, 5, &off), ZWI_SECTION_REQUIRED, "END is required");
    zw_error err;
    zw_capture *c = zw_capture_load_memory(file.data, file.len, &err);
    cr_assert_not_null(c, "%s", err.msg);
    cr_assert_eq(c->nsamples, 9);
    zw_capture_free(c);
    zwi_cbuf_release(&file);
}

Test(trace_capture_format, a_damaged_payload_names_section_offset_and_byte)
{
    zwi_cbuf file = {.raw = raw};
    build_capture(&file, 2, true, NULL);
    /* SERIES (section 1) says 3 samples but holds 2; its checksums made right again */
    size_t off;
    cr_assert_eq(section_flags(&file, 1, &off), 0);
    file.data[off + ZWI_SECTION_SIZE] = 3;
    uint64_t stored = 8 + 2 * 8 * ZWI_SERIES_FIELDS;
    uint32_t crc = zwi_crc32(0, file.data + off + ZWI_SECTION_SIZE, stored);
    for (int k = 0; k < 4; k++)
        file.data[off + 24 + k] = (unsigned char)(crc >> (8 * k));
    crc = zwi_crc32(0, file.data + off, 28);
    for (int k = 0; k < 4; k++)
        file.data[off + 28 + k] = (unsigned char)(crc >> (8 * k));
    /* the section is skipped, the rest salvaged, the loss reported */
    zw_error err;
    zw_capture *c = zw_capture_load_memory(file.data, file.len, &err);
    cr_assert_not_null(c, "%s", err.msg);
    char want[200];
    snprintf(want, sizeof(want),
             "sample count larger than the payload at byte 8 of the payload of section 1 (series) "
             "at offset %zu",
             off);
    cr_assert_eq(c->damaged, 1);
    cr_assert_str_eq(c->damage, want);
    cr_assert_eq(c->nsamples, 0, "nothing of the damaged section is kept");
    cr_assert(c->complete && c->pid == 7 && c->nmarks == 1 && c->exit.snap == NULL &&
              c->has_totals && c->totals.peak_bytes == 3000);
    zw_capture_free(c);

    /* the payload checksum, left wrong, is damage */
    file.data[off + ZWI_SECTION_SIZE] = 4;
    c = zw_capture_load_memory(file.data, file.len, &err);
    cr_assert_not_null(c, "%s", err.msg);
    snprintf(want, sizeof(want),
             "section 1 (series) at offset %zu damaged (payload checksum mismatch)", off);
    cr_assert_eq(c->damaged, 1);
    cr_assert_str_eq(c->damage, want);
    cr_assert(c->complete && c->has_totals && c->nmarks == 1 && c->nsamples == 0);
    zw_capture_free(c);
    zwi_cbuf_release(&file);
}

Test(trace_capture_format, every_damaged_byte_leaves_the_rest_of_the_capture_readable)
{
    zw_snapshot *snap = zwt_fixture_a();
    zwi_cbuf file = {.raw = raw};
    build_capture(&file, 20, true, snap);
    /* one byte flipped anywhere after the file header: the capture still loads, and whatever
     * is lost is reported */
    for (size_t i = ZWI_HEADER_SIZE; i < file.len; i++) {
        file.data[i] ^= 0x40;
        zw_error err;
        zw_capture *c = zw_capture_load_memory(file.data, file.len, &err);
        cr_assert_not_null(c, "byte %zu: %s", i, err.msg);
        cr_assert_eq(c->damaged, 1, "byte %zu", i);
        cr_assert_not_null(c->damage, "byte %zu", i);
        zw_capture_free(c);
        file.data[i] ^= 0x40;
    }
    zwi_cbuf_release(&file);
    zw_snapshot_free(snap);
}

Test(trace_capture_format, a_damaged_section_header_keeps_the_sections_before)
{
    zwi_cbuf file = {.raw = raw};
    build_capture(&file, 2, true, NULL);
    size_t off;
    section_flags(&file, 3, &off); /* EXIT_SET */
    file.data[off + 8] ^= 1;       /* its stored length: the header's checksum fails */
    zw_error err;
    zw_capture *c = zw_capture_load_memory(file.data, file.len, &err);
    cr_assert_not_null(c, "%s", err.msg);
    cr_assert(!c->complete && !c->has_totals && c->nsamples == 2 && c->nmarks == 1);
    cr_assert_eq(c->damaged, 1);
    char want[120];
    snprintf(want, sizeof(want), "section 3 header at offset %zu damaged (checksum mismatch)", off);
    cr_assert_str_eq(c->damage, want);
    zw_capture_free(c);
    zwi_cbuf_release(&file);
}

/* A capture whose one peak step says its site holds `blocks` live blocks. */
static void
build_capture_with_steps(zwi_cbuf *file, int64_t blocks)
{
    zw_snapshot *snap = zwt_fixture_a();
    size_t n = zw_snapshot_len(snap);
    uint64_t counts[16] = {0};
    uint32_t refs[16];
    uint64_t temporary[16] = {0};
    cr_assert_leq(n, 16);
    for (size_t i = 0; i < n; i++)
        refs[i] = (uint32_t)(100 + i);
    zwi_cbuf pay = {.raw = raw};
    zwi_capture_put_header(file);
    const char *argv[] = {"prog"};
    zwi_encode_process(&pay, &(zwi_process){7, 1, 99, 10, 16, argv, 1});
    zwi_capture_put(file, ZWI_SEC_PROCESS, &pay);
    pay.len = 0;
    cr_assert_eq(zwi_encode_sites(&pay, &(zwi_sites){counts, n, snap}), 0);
    zwi_capture_put(file, ZWI_SEC_SITES, &pay);
    pay.len = 0;
    zwi_encode_site_info(&pay, &(zwi_site_info){true, refs, temporary, n});
    zwi_capture_put(file, ZWI_SEC_SITE_INFO, &pay);
    pay.len = 0;
    zw_capture_delta d = {100, blocks * 16, blocks};
    zw_capture_step st = {10, 0, 1, true, false};
    zwi_encode_site_deltas(&pay, &st, 1, &d);
    zwi_capture_put(file, ZWI_SEC_SITE_DELTAS, &pay);
    zwi_cbuf_release(&pay);
    zw_snapshot_free(snap);
    cr_assert(!file->failed);
}

Test(trace_capture_format, a_small_capture_cannot_make_the_reader_rebuild_millions_of_blocks)
{
    zwi_cbuf file = {.raw = raw};
    build_capture_with_steps(&file, 1000);
    zw_error err;
    zw_capture *c = zw_capture_load_memory(file.data, file.len, &err);
    cr_assert_not_null(c, "%s", err.msg);
    cr_assert_not_null(c->peak.snap, "1000 blocks are rebuilt");
    cr_assert_eq(zw_snapshot_len(c->peak.snap), 1000);
    cr_assert_null(c->peak_lost);
    zw_capture_free(c);

    /* 2^27 blocks claimed by a file of a few hundred bytes: refused, and said so */
    file.len = 0;
    build_capture_with_steps(&file, (int64_t)1 << 27);
    cr_assert_lt(file.len, 4096);
    c = zw_capture_load_memory(file.data, file.len, &err);
    cr_assert_not_null(c, "%s", err.msg);
    cr_assert_null(c->peak.snap);
    cr_assert_not_null(c->peak_lost);
    cr_assert(strstr(c->peak_lost, "would hold more than") != NULL, "%s", c->peak_lost);
    cr_assert_null(zw_capture_live_at(c, 10, &err));
    cr_assert(strstr(err.msg, "ZW_REBUILD_MAX_BLOCKS") != NULL, "%s", err.msg);
    zw_capture_free(c);
    zwi_cbuf_release(&file);
}

Test(trace_capture_format, a_damaged_section_takes_nothing_back_from_those_before)
{
    zw_snapshot *snap = zwt_fixture_a();
    zwi_cbuf file = {.raw = raw};
    build_capture(&file, 2, false, snap);
    /* a second EXIT_SET and a second TOTALS, each cut inside its payload (checksums right) */
    zwi_cbuf pay = {.raw = raw};
    zwi_encode_set(&pay, &(zw_capture_set){"exit", 40, 4000, snap, NULL});
    pay.len -= 10;
    zwi_capture_put(&file, ZWI_SEC_EXIT_SET, &pay);
    pay.len = 0;
    zwi_encode_totals(&pay, &(zw_capture_totals){9, 9, 9, 9, 9, 9, 9, ZW_CAPTURE_END_SIGNAL, 9});
    pay.len -= 4;
    zwi_capture_put(&file, ZWI_SEC_TOTALS, &pay);
    zwi_cbuf_release(&pay);
    zw_error err;
    zw_capture *c = zw_capture_load_memory(file.data, file.len, &err);
    cr_assert_not_null(c, "%s", err.msg);
    cr_assert_eq(c->damaged, 2);
    cr_assert(c->has_totals && c->totals.peak_bytes == 3000 && c->totals.end == ZW_CAPTURE_END_EXIT,
              "the first totals stand");
    cr_assert(c->exit.time_ns == 30 && c->exit.snap != NULL, "the first exit set stands");
    assert_same_snapshot(c->exit.snap, snap);
    zw_capture_free(c);
    zwi_cbuf_release(&file);
    zw_snapshot_free(snap);
}

/* ---- 1.5: one TABLE, SET and SITE_LIST sections naming its tracebacks ---- */

static int
decode_and_free_table(zwi_cursor *c)
{
    zw_snapshot *t;
    int rc = zwi_decode_table(c, &t);
    zw_snapshot_free(t);
    return rc;
}

static int
decode_and_free_table_set(zwi_cursor *c)
{
    zwi_set s;
    int rc = zwi_decode_table_set(c, &s);
    zwi_free(raw, (void *)s.label);
    zwi_free(raw, s.domains);
    zwi_free(raw, s.tbs);
    zwi_free(raw, s.sizes);
    return rc;
}

static int
decode_and_free_site_list(zwi_cursor *c)
{
    zwi_site_list s;
    int rc = zwi_decode_site_list(c, &s);
    zwi_free(raw, s.refs);
    zwi_free(raw, s.domains);
    zwi_free(raw, s.tbs);
    zwi_free(raw, s.counts);
    zwi_free(raw, s.bytes);
    zwi_free(raw, s.temporary);
    return rc;
}

/* `snap`'s tracebacks copied into a new table; map[i] is the table's index of snap's i. */
static zw_snapshot *
table_of(const zw_snapshot *snap, uint32_t *map, size_t cap)
{
    zw_snapshot *table = zw_snapshot_new(zw_snapshot_traceback_limit(snap));
    cr_assert_not_null(table);
    cr_assert_leq(zwi_snapshot_ntracebacks(snap), cap);
    cr_assert_eq(zwi_snapshot_absorb(table, snap, map), 0);
    return table;
}

Test(trace_capture_format, table_set_and_site_list_round_trip_and_refuse_every_prefix)
{
    zw_snapshot *snap = zwt_fixture_a();
    size_t n = zw_snapshot_len(snap);
    uint32_t map[64];
    zw_snapshot *table = table_of(snap, map, 64);
    zwi_cbuf b = {.raw = raw};
    zwi_encode_table(&b, table);
    assert_prefixes_fail(&b, decode_and_free_table);
    zw_snapshot *back;
    zwi_cursor c = whole(&b);
    cr_assert_eq(zwi_decode_table(&c, &back), 0, "%s", c.why);
    cr_assert_eq(zwi_snapshot_ntracebacks(back), zwi_snapshot_ntracebacks(snap));
    cr_assert_eq(zw_snapshot_len(back), 0, "a table has no traces");

    /* a set: its traces name the table's tracebacks; read back through the table, the same */
    char *label = long_label(3000);
    b.len = 0;
    zwi_encode_table_set(&b, ZWI_SET_MARK, &(zw_capture_set){label, 5, UINT64_MAX, snap, NULL},
                         map);
    assert_prefixes_fail(&b, decode_and_free_table_set);
    zwi_set s;
    c = whole(&b);
    cr_assert_eq(zwi_decode_table_set(&c, &s), 0, "%s", c.why);
    cr_assert(s.kind == ZWI_SET_MARK && s.kept && s.n == n && s.time_ns == 5 &&
              s.heap_bytes == UINT64_MAX);
    cr_assert_str_eq(s.label, label);
    zw_snapshot *again = zwi_snapshot_select(back, s.domains, s.tbs, s.sizes, s.n);
    cr_assert_not_null(again);
    assert_same_snapshot(again, snap);
    zw_snapshot_free(again);
    decode_and_free_table_set(&(zwi_cursor){0}); /* a cursor with nothing: fails, frees nothing */
    zwi_free(raw, (void *)s.label);
    zwi_free(raw, s.domains);
    zwi_free(raw, s.tbs);
    zwi_free(raw, s.sizes);

    /* a set not kept has no traces; an unknown kind is refused */
    b.len = 0;
    zwi_encode_table_set(&b, ZWI_SET_EXIT, &(zw_capture_set){"exit", 1, 2, NULL, NULL}, NULL);
    c = whole(&b);
    cr_assert_eq(zwi_decode_table_set(&c, &s), 0, "%s", c.why);
    cr_assert(!s.kept && s.n == 0 && s.kind == ZWI_SET_EXIT);
    zwi_free(raw, (void *)s.label);
    zwi_free(raw, s.domains);
    zwi_free(raw, s.tbs);
    zwi_free(raw, s.sizes);
    b.data[0] = 9;
    c = whole(&b);
    cr_assert_eq(decode_and_free_table_set(&c), -1);
    cr_assert_str_eq(c.why, "unknown kind of live set 9");

    /* a site list: trace i is site i */
    uint64_t counts[64];
    uint32_t refs[64];
    uint64_t temps[64];
    for (size_t i = 0; i < n; i++) {
        counts[i] = i == 1 ? UINT64_MAX : i * 3;
        refs[i] = (uint32_t)(i * 7 + 1);
        temps[i] = i;
    }
    b.len = 0;
    zwi_encode_site_list(&b, &(zwi_sites){counts, n, snap}, &(zwi_site_info){true, refs, temps, n},
                         map);
    assert_prefixes_fail(&b, decode_and_free_site_list);
    zwi_site_list l;
    c = whole(&b);
    cr_assert_eq(zwi_decode_site_list(&c, &l), 0, "%s", c.why);
    cr_assert(l.steps_whole && l.n == n);
    cr_assert_arr_eq(l.counts, counts, n * sizeof(uint64_t));
    cr_assert_arr_eq(l.refs, refs, n * sizeof(uint32_t));
    cr_assert_arr_eq(l.temporary, temps, n * sizeof(uint64_t));
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(l.bytes[i], zw_snapshot_trace(snap, i).size);
        cr_assert_eq(l.tbs[i], map[((const zwi_trace *)&snap->traces[i])->tb]);
        cr_assert_eq(l.domains[i], zw_snapshot_trace(snap, i).domain);
    }
    zwi_free(raw, l.refs);
    zwi_free(raw, l.domains);
    zwi_free(raw, l.tbs);
    zwi_free(raw, l.counts);
    zwi_free(raw, l.bytes);
    zwi_free(raw, l.temporary);
    zwi_cbuf_release(&b);
    free(label);
    zw_snapshot_free(back);
    zw_snapshot_free(table);
    zw_snapshot_free(snap);
}

/* A 1.5 capture as the writer makes it: PROCESS, SERIES, TABLE, a mark's SET, the exit SET,
 * SITE_LIST, TOTALS, END. `bad_tb`: the exit set names a traceback the table does not have. */
static void
build_table_capture(zwi_cbuf *file, zw_snapshot *snap, bool bad_tb)
{
    zwi_cbuf pay = {.raw = raw};
    zwi_capture_put_header(file);
    const char *argv[] = {"prog"};
    zwi_encode_process(&pay, &(zwi_process){7, 1, 99, 10, 16, argv, 1});
    zwi_capture_put(file, ZWI_SEC_PROCESS, &pay);
    pay.len = 0;
    zw_capture_sample s[3] = {{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, {2, 3, 4, 5, 6, 7, 8, 9, 10, 11}};
    zwi_encode_series(&pay, s, 2);
    zwi_capture_put(file, ZWI_SEC_SERIES, &pay);
    uint32_t map[64];
    zw_snapshot *table = table_of(snap, map, 64);
    pay.len = 0;
    zwi_encode_table(&pay, table);
    zwi_capture_put(file, ZWI_SEC_TABLE, &pay);
    pay.len = 0;
    zwi_encode_table_set(&pay, ZWI_SET_MARK, &(zw_capture_set){"checkpoint", 15, 1500, snap, NULL},
                         map);
    zwi_capture_put(file, ZWI_SEC_SET, &pay);
    uint32_t bad[64];
    for (size_t i = 0; i < 64; i++)
        bad[i] = bad_tb ? 1000 : map[i];
    pay.len = 0;
    zwi_encode_table_set(&pay, ZWI_SET_EXIT, &(zw_capture_set){"exit", 30, 3000, snap, NULL}, bad);
    zwi_capture_put(file, ZWI_SEC_SET, &pay);
    size_t n = zw_snapshot_len(snap);
    uint64_t counts[64] = {0};
    uint32_t refs[64];
    uint64_t temps[64] = {0};
    for (size_t i = 0; i < n; i++) {
        counts[i] = i + 1;
        refs[i] = (uint32_t)(i + 1);
    }
    pay.len = 0;
    zwi_encode_site_list(&pay, &(zwi_sites){counts, n, snap},
                         &(zwi_site_info){true, refs, temps, n}, map);
    zwi_capture_put(file, ZWI_SEC_SITE_LIST, &pay);
    pay.len = 0;
    zwi_encode_totals(&pay,
                      &(zw_capture_totals){5, 4, 3, 2000, 3000, 20, 30, ZW_CAPTURE_END_EXIT, 0});
    zwi_capture_put(file, ZWI_SEC_TOTALS, &pay);
    pay.len = 0;
    zwi_encode_end(&pay);
    zwi_capture_put(file, ZWI_SEC_END, &pay);
    zwi_cbuf_release(&pay);
    zw_snapshot_free(table);
    cr_assert(!file->failed);
}

Test(trace_capture_format, sets_and_sites_read_through_the_shared_table)
{
    zw_snapshot *snap = zwt_fixture_a();
    zwi_cbuf file = {.raw = raw};
    build_table_capture(&file, snap, false);
    zw_error err;
    zw_capture *c = zw_capture_load_memory(file.data, file.len, &err);
    cr_assert_not_null(c, "%s", err.msg);
    cr_assert(c->complete && c->damaged == 0);
    cr_assert_eq(c->nmarks, 1);
    cr_assert_str_eq(c->marks[0].label, "checkpoint");
    assert_same_snapshot(c->marks[0].snap, snap);
    cr_assert_str_eq(c->exit.label, "exit");
    cr_assert(c->exit.time_ns == 30 && c->exit.heap_bytes == 3000);
    assert_same_snapshot(c->exit.snap, snap);
    cr_assert_null(c->peak.label);
    size_t n = zw_snapshot_len(snap);
    cr_assert_not_null(c->sites);
    cr_assert_eq(zw_snapshot_len(c->sites), n);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(c->site_counts[i], i + 1);
        cr_assert_eq(zw_snapshot_trace(c->sites, i).size, zw_snapshot_trace(snap, i).size);
    }
    cr_assert_not_null(c->site_temporary);
    zw_capture_free(c);

    /* a traceback index the table does not have: that set is damaged, the rest loads */
    file.len = 0;
    build_table_capture(&file, snap, true);
    c = zw_capture_load_memory(file.data, file.len, &err);
    cr_assert_not_null(c, "%s", err.msg);
    cr_assert_eq(c->damaged, 1);
    cr_assert(strstr(c->damage, "traceback index 1000 of trace 0 out of range") == c->damage, "%s",
              c->damage);
    cr_assert_null(c->exit.label, "nothing of the damaged set");
    cr_assert(c->nmarks == 1 && c->sites != NULL && c->has_totals);
    zw_capture_free(c);
    zwi_cbuf_release(&file);
    zw_snapshot_free(snap);
}

Test(trace_capture_format, a_damaged_table_keeps_the_sets_times_and_bytes)
{
    zw_snapshot *snap = zwt_fixture_a();
    zwi_cbuf file = {.raw = raw};
    build_table_capture(&file, snap, false);
    size_t off;
    section_flags(&file, 2, &off); /* TABLE */
    cr_assert_eq(file.data[off], ZWI_SEC_TABLE);
    file.data[off + ZWI_SECTION_SIZE + 9] ^= 0x10; /* its payload: the checksum fails */
    zw_error err;
    zw_capture *c = zw_capture_load_memory(file.data, file.len, &err);
    cr_assert_not_null(c, "%s", err.msg);
    cr_assert_eq(c->damaged, 2, "the table, and the site list that needs it");
    cr_assert(strstr(c->damage, "(table)") != NULL, "%s", c->damage);
    cr_assert(c->complete && c->has_totals && c->nsamples == 2);
    cr_assert_eq(c->nmarks, 1);
    cr_assert(c->marks[0].time_ns == 15 && c->marks[0].heap_bytes == 1500 &&
              c->marks[0].snap == NULL);
    cr_assert(c->exit.label != NULL && c->exit.heap_bytes == 3000 && c->exit.snap == NULL);
    cr_assert_null(c->sites);
    zw_capture_free(c);
    zwi_cbuf_release(&file);
    zw_snapshot_free(snap);
}

Test(trace_capture_format, every_damaged_byte_of_a_table_capture_is_salvaged)
{
    zw_snapshot *snap = zwt_fixture_a();
    zwi_cbuf file = {.raw = raw};
    build_table_capture(&file, snap, false);
    for (size_t i = ZWI_HEADER_SIZE; i < file.len; i++) {
        file.data[i] ^= 0x40;
        zw_error err;
        zw_capture *c = zw_capture_load_memory(file.data, file.len, &err);
        cr_assert_not_null(c, "byte %zu: %s", i, err.msg);
        cr_assert_geq(c->damaged, 1, "byte %zu", i);
        cr_assert_not_null(c->damage, "byte %zu", i);
        zw_capture_free(c);
        file.data[i] ^= 0x40;
    }
    zwi_cbuf_release(&file);
    zw_snapshot_free(snap);
}

/* ---- 1.5: SAMPLES and STEPS, the sampler's sections as varints ---- */

static int
decode_and_free_packed_samples(zwi_cursor *c)
{
    zwi_samples s = {0};
    int rc = zwi_decode_samples(c, &s);
    zwi_free(raw, s.v);
    return rc;
}

static int
decode_and_free_steps(zwi_cursor *c)
{
    zwi_steps s = {0};
    int rc = zwi_decode_steps(c, &s);
    zwi_free(raw, s.steps);
    zwi_free(raw, s.deltas);
    return rc;
}

Test(trace_capture_format, samples_round_trip_every_field_whatever_the_interval)
{
    /* out of time order too (a peak's sample can come before the sampler's of the same tick) */
    const zw_capture_sample s[] = {
        {10000000, 5, 1, 4096, 1, 0, 0, 5, 8192, 8192},
        {20000100, 5, 1, 8192, 1, 0, 0, 5, 0, 8192},
        {19999999, UINT64_MAX, 0, 0, UINT64_MAX, 2, 1, UINT64_MAX, UINT64_MAX, UINT64_MAX},
        samples[2],
        samples[0],
    };
    const uint64_t ticks[] = {0, 10000000, UINT64_MAX};
    for (size_t t = 0; t < 3; t++) {
        zwi_cbuf b = {.raw = raw};
        zwi_encode_samples(&b, s, 5, ticks[t]);
        assert_prefixes_fail(&b, decode_and_free_packed_samples);
        zwi_samples into = {0};
        for (int round = 0; round < 2; round++) { /* a second section appends */
            zwi_cursor c = whole(&b);
            cr_assert_eq(zwi_decode_samples(&c, &into), 0, "%s", c.why);
        }
        cr_assert_eq(into.n, 10);
        for (size_t i = 0; i < into.n; i++)
            cr_assert_arr_eq(&into.v[i], &s[i % 5], sizeof(zw_capture_sample),
                             "tick %zu sample %zu", t, i);
        zwi_free(raw, into.v);
        zwi_cbuf_release(&b);
    }
    /* a sampler at 10 ms: a sample costs a byte or two a field, not 8 */
    zw_capture_sample tick[100];
    for (size_t i = 0; i < 100; i++)
        tick[i] =
            (zw_capture_sample){i * 10000000 + i % 7, 1000 + i, 10, 8 << 20, i, 0, 0, 1000, 0, 0};
    zwi_cbuf b = {.raw = raw};
    zwi_encode_samples(&b, tick, 100, 10000000);
    cr_assert_lt(b.len, 100 * 2 * ZWI_SERIES_FIELDS, "%zu bytes", b.len);
    zwi_cbuf_release(&b);
}

Test(trace_capture_format, steps_round_trip_as_the_sampler_builds_them)
{
    zwi_cbuf each = {.raw = raw};
    for (size_t i = 0; i < NSTEPS; i++) {
        size_t at = zwi_step_begin(&each, steps[i].time_ns, steps[i].peak);
        for (size_t k = steps[i].first; k < steps[i].first + steps[i].n; k++)
            zwi_step_delta(&each, deltas[k].site, deltas[k].bytes, deltas[k].blocks);
        zwi_step_end(&each, at, (uint32_t)steps[i].n);
    }
    zwi_cbuf b = {.raw = raw};
    zwi_encode_steps_of(&b, &each, NSTEPS);
    assert_prefixes_fail(&b, decode_and_free_steps);
    zwi_steps into = {0};
    for (int round = 0; round < 2; round++) {
        zwi_cursor c = whole(&b);
        cr_assert_eq(zwi_decode_steps(&c, &into), 0, "%s", c.why);
    }
    cr_assert_eq(into.nsteps, 2 * NSTEPS);
    cr_assert_eq(into.ndeltas, 6);
    for (size_t i = 0; i < into.nsteps; i++) {
        const zw_capture_step *x = &into.steps[i], *y = &steps[i % NSTEPS];
        cr_assert(x->time_ns == y->time_ns && x->n == y->n && x->peak == y->peak, "step %zu", i);
        for (size_t k = 0; k < x->n; k++) {
            const zw_capture_delta *d = &into.deltas[x->first + k], *e = &deltas[y->first + k];
            cr_assert(d->site == e->site && d->bytes == e->bytes && d->blocks == e->blocks,
                      "step %zu delta %zu", i, k);
        }
    }
    zwi_free(raw, into.steps);
    zwi_free(raw, into.deltas);

    /* a ref below 0 or past 32 bits is refused */
    b.len = 0;
    zwi_cbuf_varint(&b, 1);              /* one step */
    zwi_cbuf_varint(&b, 0);              /* time */
    zwi_cbuf_varint(&b, 0);              /* flags */
    zwi_cbuf_varint(&b, 1);              /* one delta */
    zwi_cbuf_varint(&b, zwi_zigzag(-1)); /* ref -1 */
    zwi_cbuf_varint(&b, 0);
    zwi_cbuf_varint(&b, 0);
    zwi_cursor c = whole(&b);
    cr_assert_eq(decode_and_free_steps(&c), -1);
    cr_assert_str_eq(c.why, "site ref out of range");
    zwi_cbuf_release(&b);
    zwi_cbuf_release(&each);
}

Test(trace_capture_format, a_varint_longer_than_64_bits_is_refused)
{
    zwi_cbuf b = {.raw = raw};
    for (int i = 0; i < 9; i++)
        zwi_cbuf_put(&b, 0xff, 1);
    zwi_cbuf_put(&b, 0x02, 1); /* bit 64 */
    uint64_t v;
    zwi_cursor c = whole(&b);
    cr_assert_eq(zwi_get_varint(&c, &v), -1);
    cr_assert_str_eq(c.why, "varint larger than 64 bits");
    b.data[9] = 0x01; /* UINT64_MAX */
    c = whole(&b);
    cr_assert_eq(zwi_get_varint(&c, &v), 0, "%s", c.why);
    cr_assert_eq(v, UINT64_MAX);
    zwi_cbuf_release(&b);
}

/* zw run's status line follows a capture by offset; a capture rewritten shorter at its end (LIVE
 * shrunk) is read again from its start, its SAMPLES as SERIES. */
Test(trace_capture_format, a_poll_follows_samples_and_a_capture_rewritten_at_its_end)
{
    char path[] = "/tmp/zw-poll-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    zwi_cbuf file = {.raw = raw};
    zwi_cbuf pay = {.raw = raw};
    zwi_capture_put_header(&file);
    zwi_capture_put_live(&file, 127);
    zw_capture_sample s[2] = {{10, 500, 1, 0, 1, 0, 0, 500, 0, 0},
                              {20, 700, 2, 0, 2, 0, 0, 700, 0, 0}};
    zwi_encode_samples(&pay, s, 2, 10);
    zwi_capture_put(&file, ZWI_SEC_SAMPLES, &pay);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(file.data, 1, file.len, f), file.len);
    fclose(f);
    zw_capture_progress p = {0};
    cr_assert_eq(zw_capture_poll(path, &p), 0);
    cr_assert(p.known && !p.ended && p.last.heap_bytes == 700 && p.peak_bytes == 700);

    /* the end: the same sections behind a LIVE of one slot, one more sample, END */
    file.len = 0;
    zwi_capture_put_header(&file);
    zwi_capture_put_live(&file, 1);
    zwi_capture_put(&file, ZWI_SEC_SAMPLES, &pay);
    pay.len = 0;
    zw_capture_sample last = {30, 100, 1, 0, 2, 1, 0, 700, 0, 0};
    zwi_encode_samples(&pay, &last, 1, 10);
    zwi_capture_put(&file, ZWI_SEC_SAMPLES, &pay);
    pay.len = 0;
    zwi_encode_end(&pay);
    zwi_capture_put(&file, ZWI_SEC_END, &pay);
    cr_assert_lt(file.len, p.offset, "shorter than what was read");
    f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(file.data, 1, file.len, f), file.len);
    fclose(f);
    cr_assert_eq(zw_capture_poll(path, &p), 0);
    cr_assert(p.known && p.ended && p.last.heap_bytes == 100 && p.peak_bytes == 700);
    unlink(path);
    zwi_cbuf_release(&pay);
    zwi_cbuf_release(&file);
}

/* A finished capture's samples and steps, a section per flush, merged into one of each: it loads
 * the same, with fewer sections; an unfinished one is left alone. */
Test(trace_capture_format, merging_the_streamed_sections_loads_the_same)
{
    zw_snapshot *snap = zwt_fixture_a();
    zwi_cbuf file = {.raw = raw};
    zwi_cbuf pay = {.raw = raw};
    zwi_capture_put_header(&file);
    zwi_capture_put_live(&file, 1);
    const char *argv[] = {"prog"};
    zwi_encode_process(&pay, &(zwi_process){7, 1, 99, 10, 16, argv, 1});
    zwi_capture_put(&file, ZWI_SEC_PROCESS, &pay);
    for (uint64_t flush = 0; flush < 3; flush++) {
        zw_capture_sample s[20];
        for (uint64_t i = 0; i < 20; i++) {
            uint64_t t = flush * 20 + i;
            s[i] = (zw_capture_sample){t * 10000000, t * 64, t, 4096 * t, t, 0, 0, t * 64, t, t};
        }
        pay.len = 0;
        zwi_encode_samples(&pay, s, 20, 10000000);
        zwi_capture_put(&file, ZWI_SEC_SAMPLES, &pay);
        zwi_cbuf st = {.raw = raw};
        size_t at = zwi_step_begin(&st, flush * 200000000, flush == 1);
        zwi_step_delta(&st, 3, 64, 1);
        zwi_step_delta(&st, 9 + (uint32_t)flush, -64, -1);
        zwi_step_end(&st, at, 2);
        pay.len = 0;
        zwi_encode_steps_of(&pay, &st, 1);
        zwi_capture_put(&file, ZWI_SEC_STEPS, &pay);
        zwi_cbuf_release(&st);
    }
    uint32_t map[64];
    zw_snapshot *table = table_of(snap, map, 64);
    pay.len = 0;
    zwi_encode_table(&pay, table);
    zwi_capture_put(&file, ZWI_SEC_TABLE, &pay);
    pay.len = 0;
    zwi_encode_table_set(&pay, ZWI_SET_EXIT, &(zw_capture_set){"exit", 30, 3000, snap, NULL}, map);
    zwi_capture_put(&file, ZWI_SEC_SET, &pay);
    size_t n = zw_snapshot_len(snap);
    cr_assert_geq(n, 4);
    uint64_t counts[64] = {0};
    uint32_t refs[64];
    uint64_t temps[64] = {0};
    for (size_t i = 0; i < n; i++)
        refs[i] = i == 0 ? 3 : (uint32_t)(8 + i); /* 3, 9, 10, 11 ... */
    pay.len = 0;
    zwi_encode_site_list(&pay, &(zwi_sites){counts, n, snap},
                         &(zwi_site_info){true, refs, temps, n}, map);
    zwi_capture_put(&file, ZWI_SEC_SITE_LIST, &pay);
    size_t cut = file.len; /* before END: not finished */
    pay.len = 0;
    zwi_encode_end(&pay);
    zwi_capture_put(&file, ZWI_SEC_END, &pay);

    zwi_cbuf merged = {.raw = raw};
    cr_assert_eq(zwi_capture_merge_streamed(file.data, file.len, 10000000, &merged), 0);
    cr_assert_lt(merged.len, file.len);
    zw_error err;
    zw_capture *a = zw_capture_load_memory(file.data, file.len, &err);
    cr_assert_not_null(a, "%s", err.msg);
    zw_capture *b = zw_capture_load_memory(merged.data, merged.len, &err);
    cr_assert_not_null(b, "%s", err.msg);
    cr_assert(b->complete && b->damaged == 0 && b->pid == 7);
    cr_assert_eq(b->nsamples, 60);
    cr_assert_arr_eq(b->samples, a->samples, 60 * sizeof(zw_capture_sample));
    cr_assert_eq(b->exit.heap_bytes, 3000);
    assert_same_snapshot(b->exit.snap, snap);
    cr_assert(a->nsteps == 3 && b->nsteps == 3 && a->ndeltas == 6 && b->ndeltas == 6);
    for (size_t i = 0; i < 3; i++) /* field by field: the structs have padding */
        cr_assert(b->steps[i].time_ns == a->steps[i].time_ns && b->steps[i].n == 2 &&
                      b->steps[i].first == a->steps[i].first && b->steps[i].peak == (i == 1),
                  "step %zu", i);
    for (size_t i = 0; i < 6; i++)
        cr_assert(b->deltas[i].site == a->deltas[i].site &&
                      b->deltas[i].bytes == a->deltas[i].bytes &&
                      b->deltas[i].blocks == a->deltas[i].blocks,
                  "delta %zu", i);
    zw_capture_free(a);
    zw_capture_free(b);
    /* LIVE, PROCESS, then one SAMPLES and one STEPS where the first SAMPLES was */
    size_t off;
    section_flags(&merged, 2, &off);
    cr_assert_eq(merged.data[off], ZWI_SEC_SAMPLES);
    section_flags(&merged, 3, &off);
    cr_assert_eq(merged.data[off], ZWI_SEC_STEPS);
    section_flags(&merged, 4, &off);
    cr_assert_eq(merged.data[off], ZWI_SEC_TABLE, "the rest in its order");

    /* not finished: refused, the caller keeps the file as it is */
    zwi_cbuf again = {.raw = raw};
    cr_assert_eq(zwi_capture_merge_streamed(file.data, cut, 10000000, &again), -1);
    zwi_cbuf_release(&again);
    zwi_cbuf_release(&merged);
    zwi_cbuf_release(&pay);
    zwi_cbuf_release(&file);
    zw_snapshot_free(table);
    zw_snapshot_free(snap);
}

/* A peak SET that says it is the exit set gets the exit set's traces, a copy of its own; only a
 * peak set may say so. */
Test(trace_capture_format, a_peak_set_that_is_the_exit_set_reads_as_its_copy)
{
    zw_snapshot *snap = zwt_fixture_a();
    zwi_cbuf file = {.raw = raw};
    build_table_capture(&file, snap, false);
    /* the peak SET before END (sections are read in any order after PROCESS) */
    size_t end = file.len - ZWI_SECTION_SIZE;
    zwi_cbuf tail = {.raw = raw};
    zwi_cbuf_bytes(&tail, file.data + end, ZWI_SECTION_SIZE);
    file.len = end;
    zwi_cbuf pay = {.raw = raw};
    zwi_encode_table_set_as_exit(&pay, 30, 3000);
    zwi_capture_put(&file, ZWI_SEC_SET, &pay);
    zwi_cbuf_bytes(&file, tail.data, tail.len);
    zw_error err;
    zw_capture *c = zw_capture_load_memory(file.data, file.len, &err);
    cr_assert_not_null(c, "%s", err.msg);
    cr_assert_eq(c->damaged, 0, "%s", c->damage);
    cr_assert_str_eq(c->peak.label, "peak");
    cr_assert(c->peak.time_ns == 30 && c->peak.heap_bytes == 3000);
    cr_assert_not_null(c->peak.snap);
    cr_assert_neq(c->peak.snap, c->exit.snap, "a copy: each is freed with the capture");
    assert_same_snapshot(c->peak.snap, snap);
    zw_capture_free(c);

    /* an exit set may not say so */
    pay.len = 0;
    zwi_encode_table_set_as_exit(&pay, 30, 3000);
    pay.data[0] = ZWI_SET_EXIT;
    zwi_cursor cur = whole(&pay);
    cr_assert_eq(decode_and_free_table_set(&cur), -1);
    cr_assert_str_eq(cur.why, "only the peak set can be the exit set");
    zwi_cbuf_release(&pay);
    zwi_cbuf_release(&tail);
    zwi_cbuf_release(&file);
    zw_snapshot_free(snap);
}
