/* trace/capture_format.c - the payload of every capture section (docs/format.md#captures), its
 * encoder and its decoder side by side, so that a change of the format is one edit here (and a
 * line of docs/format.md). The container (container.c) frames them; the preload library calls
 * the encoders, capture.c the decoders; tests/trace/test_capture_format.c round-trips each.
 *
 * All integers are little-endian of the width written; a string is u32 len, u8[len]; a snapshot
 * is u64 len, then a whole snapshot file (len 0: none). */
#include "capture_format.h"

#include <inttypes.h>
#include <string.h>

/* ---- the file ---- */

void
zwi_capture_put_header(zwi_cbuf *file)
{
    zwi_container_put_header(file, ZWI_KIND_CAPTURE, ZWI_CAPTURE_MINOR, 0);
}

#define SMALL_END_PAYLOAD ((size_t)16 << 10) /* compressed at level 19 at the end: see level() */
#define MID_END_PAYLOAD   ((size_t)64 << 10) /* level 15 up to it */
#define LARGE_END_PAYLOAD ((size_t)1 << 20)  /* level 6 up to it, 3 beyond */

/* The zstd level of a section written once at the end (or merged then) of `len` bytes. */
static int
end_level(size_t len)
{
    return len <= SMALL_END_PAYLOAD ? 19
           : len <= MID_END_PAYLOAD ? 15
           : len <= LARGE_END_PAYLOAD ? 6
                                      : 3;
}

/* The zstd level section `type` is stored at (0: not compressed). The sampler's sections only
 * when they hold more than a few records (compressing 100 bytes costs more than it saves), at
 * level 3 (the sampler runs beside the program); the sections written once at the end at level
 * 19 up to 16 KiB (about 10% smaller than level 3, in milliseconds), 15 up to 64 KiB (level 19
 * compresses 0.5 to 1.5 MB/s: 48 ms for a 26 KB live set of perl, 12 ms at level 15 for 2% more
 * bytes), 6 up to 1 MiB, 3 beyond (the 1.8 MB TABLE of a g++ compile: 100 ms at level 6 for
 * 374 KB, 20 ms at level 3 for 407 KB). The old live sets and SITES embed snapshot files,
 * compressed already. */
static int
level(uint32_t type, size_t len)
{
    int end = end_level(len);
    switch (type) {
    case ZWI_SEC_SERIES:
        return len > 8 + 8 * 8 * ZWI_SERIES_FIELDS ? 3 : 0; /* more than 8 samples */
    case ZWI_SEC_SITE_DELTAS:
        return len > 256 ? 3 : 0;
    case ZWI_SEC_SAMPLES:
    case ZWI_SEC_STEPS:
        return len > 128 ? 3 : 0;
    case ZWI_SEC_SITE_INFO:
        return len > 12 + 12 * 64 ? 3 : 0; /* more than 64 sites */
    case ZWI_SEC_LEAKS:
    case ZWI_SEC_MARK_LEAKS:
        return len > 160 + 64 ? end : 0; /* more than 64 blocks' kinds */
    case ZWI_SEC_TABLE:
    case ZWI_SEC_SET:
    case ZWI_SEC_SITE_LIST:
        return len > 64 ? end : 0;
    default:
        return 0;
    }
}

/* A section written once at the end, or merged then: compressed past 128 bytes as the end's. */
static void
put_final(zwi_cbuf *file, uint32_t type, const zwi_cbuf *payload)
{
    int lvl = payload->len <= 128 ? 0 : end_level(payload->len);
    zwi_container_put_section_level(file, type, 0, payload, lvl);
}

void
zwi_capture_put(zwi_cbuf *file, uint32_t type, const zwi_cbuf *payload)
{
    zwi_container_put_section_level(file, type, type == ZWI_SEC_END ? ZWI_SECTION_REQUIRED : 0,
                                    payload, level(type, payload->len));
}

/* ---- strings and embedded snapshots ---- */

static void
put_string(zwi_cbuf *b, const char *s)
{
    size_t len = strlen(s);
    zwi_cbuf_put(b, len, 4);
    zwi_cbuf_bytes(b, s, len);
}

/* A string copied into the cursor's memory, NUL-terminated. */
static int
get_string(zwi_cursor *c, const char **out)
{
    uint32_t n;
    const unsigned char *p;
    *out = NULL;
    if (zwi_get_u32(c, &n) != 0 || zwi_get_bytes(c, n, "string", &p) != 0)
        return -1;
    char *s = zwi_alloc(c->raw, (size_t)n + 1);
    if (s == NULL)
        return zwi_cursor_fail(c, "out of memory");
    memcpy(s, p, n);
    s[n] = '\0';
    *out = s;
    return 0;
}

/* `snap` as an embedded snapshot file; length 0 if it is NULL or cannot be encoded. -1 only when
 * `must` and it cannot be encoded (then nothing is appended). */
static int
put_snapshot(zwi_cbuf *b, const zw_snapshot *snap, bool must)
{
    unsigned char *data = NULL;
    size_t len = 0;
    if (snap != NULL && zwi_snapshot_encode(snap, b->raw, &data, &len) != 0) {
        if (must)
            return -1;
        len = 0;
    }
    zwi_cbuf_put(b, len, 8);
    zwi_cbuf_bytes(b, data, len);
    zwi_free(b->raw, data);
    return 0;
}

static int
get_snapshot(zwi_cursor *c, zw_snapshot **out)
{
    uint64_t n;
    const unsigned char *p;
    *out = NULL;
    if (zwi_get_u64(c, &n) != 0)
        return -1;
    if (n == 0)
        return 0; /* the set was not kept */
    size_t at = c->pos;
    if (n > c->len - c->pos)
        return zwi_cursor_fail(c, "truncated snapshot");
    if (zwi_get_bytes(c, (size_t)n, "snapshot", &p) != 0)
        return -1;
    zw_error inner;
    *out = zwi_snapshot_decode(p, (size_t)n, &inner);
    if (*out == NULL) {
        c->pos = at; /* the message names the snapshot's first byte */
        return zwi_cursor_fail(c, "embedded snapshot: %s", inner.msg);
    }
    return 0;
}

/* ---- PROCESS ---- */

void
zwi_encode_process(zwi_cbuf *b, const zwi_process *p)
{
    zwi_cbuf_put(b, p->pid, 4);
    zwi_cbuf_put(b, p->ppid, 4);
    zwi_cbuf_put(b, p->start_realtime_ns, 8);
    zwi_cbuf_put(b, p->interval_ms, 4);
    zwi_cbuf_put(b, p->nframe, 4);
    zwi_cbuf_put(b, p->argc, 4);
    for (size_t i = 0; i < p->argc; i++)
        put_string(b, p->argv[i]);
}

int
zwi_decode_process(zwi_cursor *c, zwi_process *out)
{
    size_t argc;
    *out = (zwi_process){0};
    if (zwi_get_u32(c, &out->pid) || zwi_get_u32(c, &out->ppid) ||
        zwi_get_u64(c, &out->start_realtime_ns) || zwi_get_u32(c, &out->interval_ms) ||
        zwi_get_u32(c, &out->nframe) || zwi_get_count(c, 4, 4, "argument", &argc))
        return -1;
    out->argv = zwi_alloc(c->raw, (argc + 1) * sizeof(char *));
    if (out->argv == NULL)
        return zwi_cursor_fail(c, "out of memory");
    memset(out->argv, 0, (argc + 1) * sizeof(char *));
    for (out->argc = 0; out->argc < argc; out->argc++) {
        if (get_string(c, &out->argv[out->argc]) != 0)
            return -1; /* argv[0 .. argc) are the strings read: the caller frees them */
    }
    return 0;
}

/* ---- TIMESERIES and SERIES ---- */

/* The fields of a sample in the order SERIES stores them (TIMESERIES: the first 4). */
static void
sample_fields(const zw_capture_sample *s, uint64_t f[ZWI_SERIES_FIELDS])
{
    const uint64_t v[ZWI_SERIES_FIELDS] = {
        s->time_ns, s->heap_bytes, s->heap_blocks,     s->rss_bytes,  s->allocations,
        s->frees,   s->temporary,  s->bytes_allocated, s->mmap_bytes, s->mmap_peak};
    memcpy(f, v, sizeof(v));
}

static void
put_samples(zwi_cbuf *b, const zw_capture_sample *s, size_t n, int fields)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t f[ZWI_SERIES_FIELDS];
        sample_fields(&s[i], f);
        for (int k = 0; k < fields; k++)
            zwi_cbuf_put(b, f[k], 8);
    }
}

/* `count` samples of `fields` u64 each (the first ZWI_SERIES_FIELDS taken, the rest skipped),
 * appended to `into`. */
static int
get_samples(zwi_cursor *c, zwi_samples *into, size_t count, uint32_t fields)
{
    if (zwi_reserve(c->raw, (void **)&into->v, &into->cap, into->n + count,
                    sizeof(zw_capture_sample)) != 0)
        return zwi_cursor_fail(c, "out of memory");
    for (size_t i = 0; i < count; i++) {
        uint64_t f[ZWI_SERIES_FIELDS] = {0};
        for (uint32_t k = 0; k < fields; k++) {
            uint64_t v;
            if (zwi_get_u64(c, &v) != 0)
                return -1;
            if (k < ZWI_SERIES_FIELDS)
                f[k] = v;
        }
        into->v[into->n++] =
            (zw_capture_sample){f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9]};
    }
    return 0;
}

void
zwi_encode_timeseries(zwi_cbuf *b, const zw_capture_sample *s, size_t n)
{
    zwi_cbuf_put(b, n, 4);
    put_samples(b, s, n, 4);
}

int
zwi_decode_timeseries(zwi_cursor *c, zwi_samples *into)
{
    size_t n;
    if (zwi_get_count(c, 4, 4 * 8, "sample", &n) != 0)
        return -1;
    return get_samples(c, into, n, 4);
}

void
zwi_encode_series(zwi_cbuf *b, const zw_capture_sample *s, size_t n)
{
    zwi_cbuf_put(b, n, 4);
    zwi_cbuf_put(b, ZWI_SERIES_FIELDS, 4);
    put_samples(b, s, n, ZWI_SERIES_FIELDS);
}

int
zwi_decode_series(zwi_cursor *c, zwi_samples *into)
{
    uint32_t n;
    uint32_t fields;
    if (zwi_get_u32(c, &n) != 0 || zwi_get_u32(c, &fields) != 0)
        return -1;
    if (fields < ZWI_SERIES_MIN)
        return zwi_cursor_fail(c, "too few fields per sample");
    if (n > (c->len - c->pos) / (8 * (uint64_t)fields))
        return zwi_cursor_fail(c, "sample count larger than the payload");
    return get_samples(c, into, n, fields);
}

/* ---- SAMPLES (1.5) ---- */

void
zwi_encode_samples(zwi_cbuf *b, const zw_capture_sample *s, size_t n, uint64_t tick_ns)
{
    uint64_t prev[ZWI_SERIES_FIELDS] = {0};
    zwi_cbuf_varint(b, n);
    zwi_cbuf_varint(b, ZWI_SERIES_FIELDS);
    zwi_cbuf_varint(b, tick_ns);
    for (size_t i = 0; i < n; i++) {
        uint64_t f[ZWI_SERIES_FIELDS];
        sample_fields(&s[i], f);
        for (int k = 0; k < ZWI_SERIES_FIELDS; k++) {
            uint64_t d = f[k] - prev[k] - (k == 0 && i > 0 ? tick_ns : 0);
            zwi_cbuf_varint(b, zwi_zigzag((int64_t)d));
            prev[k] = f[k];
        }
    }
}

int
zwi_decode_samples(zwi_cursor *c, zwi_samples *into)
{
    size_t n;
    size_t fields;
    uint64_t tick;
    if (zwi_get_count(c, 0, 1, "sample", &n) || zwi_get_count(c, 0, 1, "field", &fields) ||
        zwi_get_varint(c, &tick))
        return -1;
    if (fields < ZWI_SERIES_MIN)
        return zwi_cursor_fail(c, "too few fields per sample");
    if (n > (c->len - c->pos) / fields)
        return zwi_cursor_fail(c, "sample count larger than the payload");
    if (zwi_reserve(c->raw, (void **)&into->v, &into->cap, into->n + n, sizeof(zw_capture_sample)))
        return zwi_cursor_fail(c, "out of memory");
    uint64_t f[ZWI_SERIES_FIELDS] = {0};
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < fields; k++) {
            uint64_t v;
            if (zwi_get_varint(c, &v) != 0)
                return -1;
            if (k < ZWI_SERIES_FIELDS) /* modulo 2^64, as written */
                f[k] += (uint64_t)zwi_unzigzag(v) + (k == 0 && i > 0 ? tick : 0);
        }
        into->v[into->n++] =
            (zw_capture_sample){f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9]};
    }
    return 0;
}

/* ---- live sets: PEAK_SET, EXIT_SET, MARK ---- */

void
zwi_encode_set(zwi_cbuf *b, const zw_capture_set *set)
{
    zwi_cbuf_put(b, set->time_ns, 8);
    zwi_cbuf_put(b, set->heap_bytes, 8);
    put_string(b, set->label);
    put_snapshot(b, set->snap, false);
}

int
zwi_decode_set(zwi_cursor *c, zw_capture_set *out)
{
    *out = (zw_capture_set){0};
    if (zwi_get_u64(c, &out->time_ns) || zwi_get_u64(c, &out->heap_bytes) ||
        get_string(c, &out->label))
        return -1;
    return get_snapshot(c, &out->snap);
}

/* ---- SITES ---- */

int
zwi_encode_sites(zwi_cbuf *b, const zwi_sites *s)
{
    size_t at = b->len;
    zwi_cbuf_put(b, s->n, 8);
    for (size_t i = 0; i < s->n; i++)
        zwi_cbuf_put(b, s->counts[i], 8);
    if (put_snapshot(b, s->snap, true) != 0) {
        if (!b->failed)
            b->len = at;
        return -1;
    }
    return 0;
}

int
zwi_decode_sites(zwi_cursor *c, zwi_sites *out)
{
    size_t n;
    *out = (zwi_sites){0};
    if (zwi_get_count(c, 8, 8, "site", &n) != 0)
        return -1;
    out->counts = zwi_alloc(c->raw, (n + 1) * sizeof(uint64_t));
    if (out->counts == NULL)
        return zwi_cursor_fail(c, "out of memory");
    for (out->n = 0; out->n < n; out->n++) {
        if (zwi_get_u64(c, &out->counts[out->n]) != 0)
            return -1;
    }
    if (get_snapshot(c, &out->snap) != 0)
        return -1;
    if (out->snap == NULL ? n != 0 : zw_snapshot_len(out->snap) != n)
        return zwi_cursor_fail(c, "site count differs from the snapshot's traces");
    return 0;
}

/* ---- TABLE, SET and SITE_LIST (1.5) ---- */

/* Every integer of these three is a varint (zwi_cbuf_varint), signed ones zigzagged: most are
 * small (a domain of 0, a traceback index, a size), and a table of frames is mostly indices. */
#define SET_RECORD  3 /* the fewest bytes of a trace: domain, traceback, size */
#define SITE_RECORD 6 /* of a site: ref, domain, traceback, allocations, bytes, temporary */

/* A string as a varint length and its bytes. */
static void
put_vstring(zwi_cbuf *b, const char *s)
{
    size_t len = strlen(s);
    zwi_cbuf_varint(b, len);
    zwi_cbuf_bytes(b, s, len);
}

static int
get_vstring(zwi_cursor *c, const char **out)
{
    size_t n;
    const unsigned char *p;
    *out = NULL;
    if (zwi_get_count(c, 0, 1, "string byte", &n) != 0 || zwi_get_bytes(c, n, "string", &p) != 0)
        return -1;
    char *s = zwi_alloc(c->raw, n + 1);
    if (s == NULL)
        return zwi_cursor_fail(c, "out of memory");
    memcpy(s, p, n);
    s[n] = '\0';
    *out = s;
    return 0;
}

void
zwi_encode_table(zwi_cbuf *b, const zw_snapshot *table)
{
    zwi_snapshot_encode_tables(table, b);
}

int
zwi_decode_table(zwi_cursor *c, zw_snapshot **out)
{
    *out = zwi_snapshot_decode_tables(c);
    return *out == NULL ? -1 : 0;
}

void
zwi_encode_table_set(zwi_cbuf *b, uint32_t kind, const zw_capture_set *set, const uint32_t *tbmap)
{
    const zw_snapshot *snap = set->snap;
    zwi_cbuf_varint(b, kind);
    zwi_cbuf_varint(b, set->time_ns);
    zwi_cbuf_varint(b, set->heap_bytes);
    put_vstring(b, set->label);
    zwi_cbuf_varint(b, snap != NULL ? 1 : 0);
    zwi_cbuf_varint(b, snap != NULL ? snap->ntraces : 0);
    for (size_t i = 0; snap != NULL && i < snap->ntraces; i++) {
        zwi_cbuf_varint(b, snap->traces[i].domain);
        zwi_cbuf_varint(b, tbmap[snap->traces[i].tb]);
        zwi_cbuf_varint(b, snap->traces[i].size);
    }
}

void
zwi_encode_table_set_as_exit(zwi_cbuf *b, uint64_t time_ns, uint64_t heap_bytes)
{
    zwi_cbuf_varint(b, ZWI_SET_PEAK);
    zwi_cbuf_varint(b, time_ns);
    zwi_cbuf_varint(b, heap_bytes);
    put_vstring(b, "peak");
    zwi_cbuf_varint(b, 2); /* kept: as the exit set */
    zwi_cbuf_varint(b, 0);
}

int
zwi_decode_table_set(zwi_cursor *c, zwi_set *out)
{
    uint64_t kept;
    size_t n;
    *out = (zwi_set){0};
    if (zwi_get_varint32(c, &out->kind) || zwi_get_varint(c, &out->time_ns) ||
        zwi_get_varint(c, &out->heap_bytes) || get_vstring(c, &out->label) ||
        zwi_get_varint(c, &kept) || zwi_get_count(c, 0, SET_RECORD, "trace", &n))
        return -1;
    if (out->kind < ZWI_SET_PEAK || out->kind > ZWI_SET_MARK)
        return zwi_cursor_fail(c, "unknown kind of live set %" PRIu32, out->kind);
    if (kept > 2 || (kept != 1 && n != 0))
        return zwi_cursor_fail(c, "traces of a live set that was not kept");
    if (kept == 2 && out->kind != ZWI_SET_PEAK)
        return zwi_cursor_fail(c, "only the peak set can be the exit set");
    out->kept = kept == 1;
    out->as_exit = kept == 2;
    out->domains = zwi_alloc(c->raw, (n + 1) * sizeof(uint32_t));
    out->tbs = zwi_alloc(c->raw, (n + 1) * sizeof(uint32_t));
    out->sizes = zwi_alloc(c->raw, (n + 1) * sizeof(uint64_t));
    if (out->domains == NULL || out->tbs == NULL || out->sizes == NULL)
        return zwi_cursor_fail(c, "out of memory");
    for (out->n = 0; out->n < n; out->n++) {
        if (zwi_get_varint32(c, &out->domains[out->n]) || zwi_get_varint32(c, &out->tbs[out->n]) ||
            zwi_get_varint(c, &out->sizes[out->n]))
            return -1;
    }
    return 0;
}

void
zwi_encode_site_list(zwi_cbuf *b, const zwi_sites *sites, const zwi_site_info *info,
                     const uint32_t *tbmap)
{
    zwi_cbuf_varint(b, info->steps_whole ? 1 : 0);
    zwi_cbuf_varint(b, sites->n);
    for (size_t i = 0; i < sites->n; i++) {
        const zwi_trace *t = &sites->snap->traces[i];
        zwi_cbuf_varint(b, info->refs[i]);
        zwi_cbuf_varint(b, t->domain);
        zwi_cbuf_varint(b, tbmap[t->tb]);
        zwi_cbuf_varint(b, sites->counts[i]);
        zwi_cbuf_varint(b, t->size);
        zwi_cbuf_varint(b, info->temporary[i]);
    }
}

int
zwi_decode_site_list(zwi_cursor *c, zwi_site_list *out)
{
    uint64_t whole;
    size_t n;
    *out = (zwi_site_list){0};
    if (zwi_get_varint(c, &whole) || zwi_get_count(c, 0, SITE_RECORD, "site", &n))
        return -1;
    if (whole > 1)
        return zwi_cursor_fail(c, "unknown steps flag %" PRIu64, whole);
    out->steps_whole = whole == 1;
    out->refs = zwi_alloc(c->raw, (n + 1) * sizeof(uint32_t));
    out->domains = zwi_alloc(c->raw, (n + 1) * sizeof(uint32_t));
    out->tbs = zwi_alloc(c->raw, (n + 1) * sizeof(uint32_t));
    out->counts = zwi_alloc(c->raw, (n + 1) * sizeof(uint64_t));
    out->bytes = zwi_alloc(c->raw, (n + 1) * sizeof(uint64_t));
    out->temporary = zwi_alloc(c->raw, (n + 1) * sizeof(uint64_t));
    if (out->refs == NULL || out->domains == NULL || out->tbs == NULL || out->counts == NULL ||
        out->bytes == NULL || out->temporary == NULL)
        return zwi_cursor_fail(c, "out of memory");
    for (out->n = 0; out->n < n; out->n++) {
        size_t i = out->n;
        if (zwi_get_varint32(c, &out->refs[i]) || zwi_get_varint32(c, &out->domains[i]) ||
            zwi_get_varint32(c, &out->tbs[i]) || zwi_get_varint(c, &out->counts[i]) ||
            zwi_get_varint(c, &out->bytes[i]) || zwi_get_varint(c, &out->temporary[i]))
            return -1;
    }
    return 0;
}

/* ---- SITE_INFO ---- */

void
zwi_encode_site_info(zwi_cbuf *b, const zwi_site_info *info)
{
    zwi_cbuf_put(b, info->steps_whole ? 1 : 0, 4);
    zwi_cbuf_put(b, info->n, 8);
    for (size_t i = 0; i < info->n; i++) {
        zwi_cbuf_put(b, info->refs[i], 4);
        zwi_cbuf_put(b, info->temporary[i], 8);
    }
}

int
zwi_decode_site_info(zwi_cursor *c, zwi_site_info *out)
{
    uint32_t whole;
    size_t n;
    *out = (zwi_site_info){0};
    if (zwi_get_u32(c, &whole) != 0 || zwi_get_count(c, 8, 12, "site", &n) != 0)
        return -1;
    out->steps_whole = whole == 1;
    out->refs = zwi_alloc(c->raw, (n + 1) * sizeof(uint32_t));
    out->temporary = zwi_alloc(c->raw, (n + 1) * sizeof(uint64_t));
    if (out->refs == NULL || out->temporary == NULL)
        return zwi_cursor_fail(c, "out of memory");
    for (out->n = 0; out->n < n; out->n++) {
        if (zwi_get_u32(c, &out->refs[out->n]) != 0 || zwi_get_u64(c, &out->temporary[out->n]) != 0)
            return -1;
    }
    return 0;
}

/* ---- SITE_DELTAS ---- */

#define STEP_HEAD  16 /* u64 time, u32 flags, u32 n */
#define DELTA_SIZE 20 /* u32 ref, i64 bytes, i64 blocks */

size_t
zwi_step_begin(zwi_cbuf *steps, uint64_t time_ns, uint32_t flags)
{
    size_t at = steps->len;
    zwi_cbuf_put(steps, time_ns, 8);
    zwi_cbuf_put(steps, flags & (ZWI_STEP_PEAK | ZWI_STEP_MMAP_PEAK), 4);
    zwi_cbuf_put(steps, 0, 4); /* the count, set by zwi_step_end() */
    return at;
}

void
zwi_step_delta(zwi_cbuf *steps, uint32_t ref, int64_t bytes, int64_t blocks)
{
    zwi_cbuf_put(steps, ref, 4);
    zwi_cbuf_put(steps, (uint64_t)bytes, 8);
    zwi_cbuf_put(steps, (uint64_t)blocks, 8);
}

void
zwi_step_end(zwi_cbuf *steps, size_t at, uint32_t n)
{
    zwi_cbuf_patch(steps, at + 12, n, 4);
}

void
zwi_encode_site_deltas_of(zwi_cbuf *b, const zwi_cbuf *steps, size_t nsteps)
{
    if (steps->failed) {
        b->failed = true;
        return;
    }
    zwi_cbuf_put(b, nsteps, 4);
    zwi_cbuf_bytes(b, steps->data, steps->len);
}

/* A little-endian integer of the steps' fixed layout (ours: read without checks). */
static uint64_t
fixed_le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

void
zwi_encode_steps_of(zwi_cbuf *b, const zwi_cbuf *steps, size_t nsteps)
{
    if (steps->failed) {
        b->failed = true;
        return;
    }
    zwi_cbuf_varint(b, nsteps);
    const unsigned char *p = steps->data;
    uint64_t prev_time = 0;
    for (size_t i = 0; i < nsteps; i++) {
        uint64_t time = fixed_le(p, 8);
        uint32_t flags = (uint32_t)fixed_le(p + 8, 4);
        uint32_t n = (uint32_t)fixed_le(p + 12, 4);
        p += STEP_HEAD;
        zwi_cbuf_varint(b, zwi_zigzag((int64_t)(time - prev_time)));
        zwi_cbuf_varint(b, flags);
        zwi_cbuf_varint(b, n);
        prev_time = time;
        uint32_t prev_ref = 0;
        for (uint32_t k = 0; k < n; k++, p += DELTA_SIZE) {
            uint32_t ref = (uint32_t)fixed_le(p, 4);
            zwi_cbuf_varint(b, zwi_zigzag((int64_t)ref - (int64_t)prev_ref));
            zwi_cbuf_varint(b, zwi_zigzag((int64_t)fixed_le(p + 4, 8)));
            zwi_cbuf_varint(b, zwi_zigzag((int64_t)fixed_le(p + 12, 8)));
            prev_ref = ref;
        }
    }
    ZW_ASSERT(p == steps->data + steps->len);
}

int
zwi_decode_steps(zwi_cursor *c, zwi_steps *into)
{
    size_t nsteps;
    if (zwi_get_count(c, 0, 3, "step", &nsteps) != 0)
        return -1;
    uint64_t time = 0;
    for (size_t i = 0; i < nsteps; i++) {
        uint64_t dt;
        uint64_t flags;
        size_t n;
        if (zwi_get_varint(c, &dt) || zwi_get_varint(c, &flags) ||
            zwi_get_count(c, 0, 3, "delta", &n))
            return -1;
        if (flags & ~(uint64_t)(ZWI_STEP_PEAK | ZWI_STEP_MMAP_PEAK))
            return zwi_cursor_fail(c, "unknown step flags");
        time += (uint64_t)zwi_unzigzag(dt);
        if (zwi_reserve(c->raw, (void **)&into->steps, &into->cap_steps, into->nsteps + 1,
                        sizeof(zw_capture_step)) ||
            zwi_reserve(c->raw, (void **)&into->deltas, &into->cap_deltas, into->ndeltas + n,
                        sizeof(zw_capture_delta)))
            return zwi_cursor_fail(c, "out of memory");
        into->steps[into->nsteps++] =
            (zw_capture_step){time, into->ndeltas, n, (flags & ZWI_STEP_PEAK) != 0,
                              (flags & ZWI_STEP_MMAP_PEAK) != 0};
        int64_t ref = 0;
        for (size_t k = 0; k < n; k++) {
            uint64_t dref, bytes, blocks;
            if (zwi_get_varint(c, &dref) || zwi_get_varint(c, &bytes) || zwi_get_varint(c, &blocks))
                return -1;
            ref += zwi_unzigzag(dref);
            if (ref < 0 || ref > UINT32_MAX)
                return zwi_cursor_fail(c, "site ref out of range");
            into->deltas[into->ndeltas++] =
                (zw_capture_delta){(uint32_t)ref, zwi_unzigzag(bytes), zwi_unzigzag(blocks)};
        }
    }
    return 0;
}

void
zwi_encode_steps(zwi_cbuf *b, const zw_capture_step *steps, size_t nsteps,
                 const zw_capture_delta *deltas)
{
    zwi_cbuf_varint(b, nsteps);
    uint64_t prev_time = 0;
    for (size_t i = 0; i < nsteps; i++) {
        zwi_cbuf_varint(b, zwi_zigzag((int64_t)(steps[i].time_ns - prev_time)));
        zwi_cbuf_varint(b, (steps[i].peak ? ZWI_STEP_PEAK : 0) |
                               (steps[i].mmap_peak ? ZWI_STEP_MMAP_PEAK : 0));
        zwi_cbuf_varint(b, steps[i].n);
        prev_time = steps[i].time_ns;
        uint32_t prev_ref = 0;
        for (size_t k = steps[i].first; k < steps[i].first + steps[i].n; k++) {
            zwi_cbuf_varint(b, zwi_zigzag((int64_t)deltas[k].site - (int64_t)prev_ref));
            zwi_cbuf_varint(b, zwi_zigzag(deltas[k].bytes));
            zwi_cbuf_varint(b, zwi_zigzag(deltas[k].blocks));
            prev_ref = deltas[k].site;
        }
    }
}

void
zwi_encode_site_deltas(zwi_cbuf *b, const zw_capture_step *steps, size_t nsteps,
                       const zw_capture_delta *deltas)
{
    zwi_cbuf_put(b, nsteps, 4);
    for (size_t i = 0; i < nsteps; i++) {
        size_t at = zwi_step_begin(b, steps[i].time_ns,
                                   (steps[i].peak ? ZWI_STEP_PEAK : 0) |
                                       (steps[i].mmap_peak ? ZWI_STEP_MMAP_PEAK : 0));
        for (size_t k = steps[i].first; k < steps[i].first + steps[i].n; k++)
            zwi_step_delta(b, deltas[k].site, deltas[k].bytes, deltas[k].blocks);
        zwi_step_end(b, at, (uint32_t)steps[i].n);
    }
}

int
zwi_decode_site_deltas(zwi_cursor *c, zwi_steps *into)
{
    size_t nsteps;
    if (zwi_get_count(c, 4, STEP_HEAD, "step", &nsteps) != 0)
        return -1;
    for (size_t i = 0; i < nsteps; i++) {
        uint64_t time_ns;
        uint32_t flags;
        size_t n;
        if (zwi_get_u64(c, &time_ns) || zwi_get_u32(c, &flags) ||
            zwi_get_count(c, 4, DELTA_SIZE, "delta", &n))
            return -1;
        if (zwi_reserve(c->raw, (void **)&into->steps, &into->cap_steps, into->nsteps + 1,
                        sizeof(zw_capture_step)) ||
            zwi_reserve(c->raw, (void **)&into->deltas, &into->cap_deltas, into->ndeltas + n,
                        sizeof(zw_capture_delta)))
            return zwi_cursor_fail(c, "out of memory");
        into->steps[into->nsteps++] =
            (zw_capture_step){time_ns, into->ndeltas, n, (flags & ZWI_STEP_PEAK) != 0,
                              (flags & ZWI_STEP_MMAP_PEAK) != 0};
        for (size_t k = 0; k < n; k++) {
            uint32_t ref;
            uint64_t bytes;
            uint64_t blocks;
            if (zwi_get_u32(c, &ref) || zwi_get_u64(c, &bytes) || zwi_get_u64(c, &blocks))
                return -1;
            into->deltas[into->ndeltas++] =
                (zw_capture_delta){ref, (int64_t)bytes, (int64_t)blocks};
        }
    }
    return 0;
}

/* ---- TOTALS ---- */

void
zwi_encode_totals(zwi_cbuf *b, const zw_capture_totals *t)
{
    zwi_cbuf_put(b, t->allocations, 8);
    zwi_cbuf_put(b, t->frees, 8);
    zwi_cbuf_put(b, t->temporary, 8);
    zwi_cbuf_put(b, t->bytes_allocated, 8);
    zwi_cbuf_put(b, t->peak_bytes, 8);
    zwi_cbuf_put(b, t->peak_time_ns, 8);
    zwi_cbuf_put(b, t->duration_ns, 8);
    zwi_cbuf_put(b, t->end, 4);
    zwi_cbuf_put(b, (uint32_t)t->code, 4);
}

int
zwi_decode_totals(zwi_cursor *c, zw_capture_totals *out)
{
    uint32_t code;
    *out = (zw_capture_totals){0};
    if (zwi_get_u64(c, &out->allocations) || zwi_get_u64(c, &out->frees) ||
        zwi_get_u64(c, &out->temporary) || zwi_get_u64(c, &out->bytes_allocated) ||
        zwi_get_u64(c, &out->peak_bytes) || zwi_get_u64(c, &out->peak_time_ns) ||
        zwi_get_u64(c, &out->duration_ns) || zwi_get_u32(c, &out->end) || zwi_get_u32(c, &code))
        return -1;
    if (out->end > ZW_CAPTURE_END_EXEC)
        return zwi_cursor_fail(c, "unknown end of process");
    out->code = (int32_t)code;
    return 0;
}

/* ---- LIVE ---- */

void
zwi_capture_put_live(zwi_cbuf *file, uint32_t nslots)
{
    zwi_cbuf pay = {.raw = file->raw};
    unsigned char *p = zwi_cbuf_grow(&pay, ZWI_LIVE_HEAD_SIZE + (size_t)nslots * ZWI_LIVE_SLOT_SIZE);
    if (p != NULL) {
        memset(p, 0, pay.len);
        zwi_cbuf_patch(&pay, 0, nslots, 4);
    }
    size_t at = file->len;
    zwi_container_put_section(file, ZWI_SEC_LIVE, 0, &pay, false);
    if (!file->failed) { /* payload checksum 0, and the header's own checksum again */
        zwi_cbuf_patch(file, at + 24, 0, 4);
        zwi_cbuf_patch(file, at + 28, zwi_crc32(0, file->data + at, 28), 4);
    }
    zwi_cbuf_release(&pay);
}

int
zwi_decode_live(zwi_cursor *c, zwi_live *out)
{
    uint32_t nslots, end, code, werr;
    uint64_t peak, peak_time, mmap_bytes, mmap_peak;
    *out = (zwi_live){0};
    if (zwi_get_u32(c, &nslots) || zwi_get_u32(c, &end) || zwi_get_u32(c, &code) ||
        zwi_get_u32(c, &werr) || zwi_get_u64(c, &peak) || zwi_get_u64(c, &peak_time) ||
        zwi_get_u64(c, &mmap_bytes) || zwi_get_u64(c, &mmap_peak)) /* 0 before 1.5 */
        return -1;
    if (c->len != ZWI_LIVE_HEAD_SIZE + (size_t)nslots * ZWI_LIVE_SLOT_SIZE)
        return zwi_cursor_fail(c, "live section length differs from its slot count");
    if (end > ZW_CAPTURE_END_EXEC)
        return zwi_cursor_fail(c, "unknown end of process");
    const unsigned char *skip;
    if (zwi_get_bytes(c, ZWI_LIVE_HEAD_SIZE - 48, "live head", &skip))
        return -1;
    zw_capture_live *l = &out->counts;
    l->end = end;
    l->code = (int32_t)code;
    l->peak_bytes = peak;
    l->peak_time_ns = peak_time;
    l->mmap_bytes = mmap_bytes;
    l->mmap_peak = mmap_peak;
    out->write_errno = werr;
    for (uint32_t i = 0; i < nslots; i++) {
        uint64_t f[ZWI_LIVE_SLOT_SIZE / 8];
        for (int k = 0; k < ZWI_LIVE_SLOT_SIZE / 8; k++)
            zwi_get_u64(c, &f[k]);
        l->allocations += f[0];
        l->frees += f[1];
        l->temporary += f[2];
        l->bytes_allocated += f[3];
        l->bytes_freed += f[4];
        out->untraced += f[5];
    }
    return c->why[0] != '\0' ? -1 : 0;
}

/* ---- LEAKS ---- */

void
zwi_encode_leaks(zwi_cbuf *b, const zw_capture_leaks *l)
{
    bool kinds = l->status == ZW_LEAKS_SCANNED;
    zwi_cbuf_put(b, l->status, 4);
    zwi_cbuf_put(b, l->modules, 4);
    zwi_cbuf_put(b, l->threads, 4);
    zwi_cbuf_put(b, l->threads_missed, 4);
    zwi_cbuf_put(b, l->scan_ns, 8);
    zwi_cbuf_put(b, l->scan_cpu_ns, 8);
    zwi_cbuf_put(b, l->scan_memory, 8);
    zwi_cbuf_put(b, l->root_bytes, 8);
    for (int k = 0; k < ZW_LEAK_KINDS; k++) {
        zwi_cbuf_put(b, kinds ? l->blocks[k] : 0, 8);
        zwi_cbuf_put(b, kinds ? l->bytes[k] : 0, 8);
    }
    zwi_cbuf_put(b, kinds ? l->nkinds : 0, 8);
    if (kinds)
        zwi_cbuf_bytes(b, l->kinds, l->nkinds);
}

int
zwi_decode_leaks(zwi_cursor *c, zw_capture_leaks *out)
{
    *out = (zw_capture_leaks){0};
    uint32_t status;
    size_t n;
    const unsigned char *kinds;
    if (zwi_get_u32(c, &status) || zwi_get_u32(c, &out->modules) ||
        zwi_get_u32(c, &out->threads) || zwi_get_u32(c, &out->threads_missed) ||
        zwi_get_u64(c, &out->scan_ns) || zwi_get_u64(c, &out->scan_cpu_ns) ||
        zwi_get_u64(c, &out->scan_memory) || zwi_get_u64(c, &out->root_bytes))
        return -1;
    for (int k = 0; k < ZW_LEAK_KINDS; k++)
        if (zwi_get_u64(c, &out->blocks[k]) || zwi_get_u64(c, &out->bytes[k]))
            return -1;
    if (status < ZW_LEAKS_SCANNED || status > ZW_LEAKS_OFF)
        return zwi_cursor_fail(c, "unknown leak scan status %" PRIu32, status);
    if (zwi_get_count(c, 8, 1, "leak kind", &n) || zwi_get_bytes(c, n, "leak kinds", &kinds))
        return -1;
    if (status != ZW_LEAKS_SCANNED && n != 0)
        return zwi_cursor_fail(c, "leak kinds of a scan that did not run");
    for (size_t i = 0; i < n; i++)
        if (kinds[i] >= ZW_LEAK_KINDS)
            return zwi_cursor_fail(c, "leak kind %u of block %zu unknown", kinds[i], i);
    if (n > 0) {
        if ((out->kinds = zwi_alloc(c->raw, n)) == NULL)
            return zwi_cursor_fail(c, "out of memory");
        memcpy(out->kinds, kinds, n);
    }
    out->nkinds = n;
    out->status = status;
    return 0;
}

/* ---- END ---- */

void
zwi_encode_end(zwi_cbuf *b)
{
    (void)b; /* empty: the section's presence is the message */
}

int
zwi_decode_end(zwi_cursor *c)
{
    return c->len == 0 ? 0 : zwi_cursor_fail(c, "end section not empty");
}

/* ---- merging the streamed sections of a finished capture ---- */

int
zwi_capture_merge_streamed(const unsigned char *data, size_t len, uint64_t tick_ns, zwi_cbuf *out)
{
    zw_raw *raw = out->raw;
    zwi_samples samples = {0};
    zwi_steps steps = {0};
    zwi_cbuf after = {.raw = raw}; /* the sections after the first SAMPLES */
    zwi_cbuf pay = {.raw = raw};
    zwi_container c;
    zw_error err;
    bool seen = false; /* a SAMPLES or STEPS section was read: later sections go to `after` */
    int rc = zwi_container_open(&c, data, len, ZWI_KIND_CAPTURE, NULL, raw, &err);
    if (rc == 0)
        zwi_cbuf_bytes(out, data, ZWI_HEADER_SIZE);
    int got = 0;
    while (rc == 0 && (got = zwi_container_next(&c)) == 1) {
        if (c.type != ZWI_SEC_SAMPLES && c.type != ZWI_SEC_STEPS) {
            zwi_cbuf_bytes(seen ? &after : out, data + c.offset, ZWI_SECTION_SIZE + c.stored);
            continue;
        }
        seen = true;
        zwi_cursor cur;
        if (zwi_container_payload(&c, &cur, raw) != 0 ||
            (c.type == ZWI_SEC_SAMPLES ? zwi_decode_samples(&cur, &samples)
                                       : zwi_decode_steps(&cur, &steps)) != 0 ||
            cur.pos != cur.len)
            rc = -1;
    }
    if (rc == 0 && (got != 0 || !c.ended))
        rc = -1; /* damaged, or not finished: left as it is */
    if (rc == 0 && samples.n > 0) {
        zwi_encode_samples(&pay, samples.v, samples.n, tick_ns);
        put_final(out, ZWI_SEC_SAMPLES, &pay);
    }
    if (rc == 0 && steps.nsteps > 0) {
        pay.len = 0;
        zwi_encode_steps(&pay, steps.steps, steps.nsteps, steps.deltas);
        put_final(out, ZWI_SEC_STEPS, &pay);
    }
    if (rc == 0) {
        zwi_cbuf_bytes(out, after.data, after.len);
        zwi_cbuf_bytes(out, data + c.offset, ZWI_SECTION_SIZE); /* END */
        if (out->failed || after.failed || pay.failed)
            rc = -1;
    }
    zwi_container_release(&c);
    zwi_cbuf_release(&pay);
    zwi_cbuf_release(&after);
    zwi_free(raw, samples.v);
    zwi_free(raw, steps.steps);
    zwi_free(raw, steps.deltas);
    return rc;
}
