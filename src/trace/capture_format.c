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
#define LARGE_END_PAYLOAD ((size_t)1 << 20)  /* level 6 up to it, 1 beyond */

/* The zstd level of a section written once at the end (or merged then) of `len` bytes. */
int
zwi_capture_end_level(size_t len)
{
    return len <= SMALL_END_PAYLOAD ? 19
           : len <= MID_END_PAYLOAD ? 15
           : len <= LARGE_END_PAYLOAD ? 6
                                      : 1;
}

/* The zstd level section `type` is stored at (0: not compressed). The sampler's sections only
 * when they hold more than a few records (compressing 100 bytes costs more than it saves), at
 * level 3 (the sampler runs beside the program); the sections written once at the end at level
 * 19 up to 16 KiB (about 10% smaller than level 3, in milliseconds), 15 up to 64 KiB (level 19
 * compresses 0.5 to 1.5 MB/s: 48 ms for a 26 KB live set of perl, 12 ms at level 15 for 2% more
 * bytes), 6 up to 1 MiB, 1 beyond (the 1.8 MB TABLE of a g++ compile: 100 ms at level 6 for
 * 374 KB, 20 ms at level 3 for 407 KB; its 4.6 MB PACKED end: 23 ms at level 3 for 0.82 MB, 13
 * ms at level 1 for 0.89 MB, while the program waits to exit). The old live sets and SITES embed
 * snapshot files, compressed already. */
static int
level(uint32_t type, size_t len)
{
    int end = zwi_capture_end_level(len);
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
    int lvl = payload->len <= 128 ? 0 : zwi_capture_end_level(payload->len);
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

/* The bytes of an embedded snapshot: *n of them at *p (*n 0: the set was not kept), the first at
 * offset *at of `c`. */
static int
get_embedded(zwi_cursor *c, const unsigned char **p, uint64_t *n, size_t *at)
{
    if (zwi_get_u64(c, n) != 0)
        return -1;
    *at = c->pos;
    if (*n == 0)
        return 0;
    if (*n > c->len - c->pos)
        return zwi_cursor_fail(c, "truncated snapshot");
    return zwi_get_bytes(c, (size_t)*n, "snapshot", p);
}

/* The embedded snapshot at offset `at` could not be decoded (`inner` says why). */
static int
embedded_fails(zwi_cursor *c, size_t at, const zw_error *inner)
{
    c->pos = at; /* the message names the snapshot's first byte */
    return zwi_cursor_fail(c, "embedded snapshot: %s", inner->msg);
}

static int
get_snapshot(zwi_cursor *c, zw_snapshot **out)
{
    uint64_t n;
    const unsigned char *p;
    size_t at;
    *out = NULL;
    if (get_embedded(c, &p, &n, &at) != 0)
        return -1;
    if (n == 0)
        return 0;
    zw_error inner;
    *out = zwi_snapshot_decode(p, (size_t)n, &inner);
    return *out == NULL ? embedded_fails(c, at, &inner) : 0;
}

/* ---- PROCESS ---- */

/* A u32 (`width` 4) or u64 field as the fixed form writes it, or as a varint in the packed form
 * (1.6), which keeps the fields and their order. */
static void
put_int(zwi_cbuf *b, bool packed, int width, uint64_t v)
{
    if (packed)
        zwi_cbuf_varint(b, v);
    else
        zwi_cbuf_put(b, v, width);
}

static int
get_u32_of(zwi_cursor *c, bool packed, uint32_t *v)
{
    return packed ? zwi_get_varint32(c, v) : zwi_get_u32(c, v);
}

static int
get_u64_of(zwi_cursor *c, bool packed, uint64_t *v)
{
    return packed ? zwi_get_varint(c, v) : zwi_get_u64(c, v);
}

static void put_vstring(zwi_cbuf *b, const char *s);
static int get_vstring(zwi_cursor *c, const char **out);

static void
encode_process(zwi_cbuf *b, const zwi_process *p, bool packed)
{
    put_int(b, packed, 4, p->pid);
    put_int(b, packed, 4, p->ppid);
    put_int(b, packed, 8, p->start_realtime_ns);
    put_int(b, packed, 4, p->interval_ms);
    put_int(b, packed, 4, p->nframe);
    put_int(b, packed, 4, p->argc);
    for (size_t i = 0; i < p->argc; i++)
        (packed ? put_vstring : put_string)(b, p->argv[i]);
}

static int
decode_process(zwi_cursor *c, zwi_process *out, bool packed)
{
    size_t argc;
    *out = (zwi_process){0};
    if (get_u32_of(c, packed, &out->pid) || get_u32_of(c, packed, &out->ppid) ||
        get_u64_of(c, packed, &out->start_realtime_ns) ||
        get_u32_of(c, packed, &out->interval_ms) || get_u32_of(c, packed, &out->nframe) ||
        zwi_get_count(c, packed ? 0 : 4, packed ? 1 : 4, "argument", &argc))
        return -1;
    out->argv = zwi_alloc(c->raw, (argc + 1) * sizeof(char *));
    if (out->argv == NULL)
        return zwi_cursor_fail(c, "out of memory");
    memset(out->argv, 0, (argc + 1) * sizeof(char *));
    for (out->argc = 0; out->argc < argc; out->argc++) {
        if ((packed ? get_vstring : get_string)(c, &out->argv[out->argc]) != 0)
            return -1; /* argv[0 .. argc) are the strings read: the caller frees them */
    }
    return 0;
}

void
zwi_encode_process(zwi_cbuf *b, const zwi_process *p)
{
    encode_process(b, p, false);
}

int
zwi_decode_process(zwi_cursor *c, zwi_process *out)
{
    return decode_process(c, out, false);
}

void
zwi_encode_process_packed(zwi_cbuf *b, const zwi_process *p)
{
    encode_process(b, p, true);
}

int
zwi_decode_process_packed(zwi_cursor *c, zwi_process *out)
{
    return decode_process(c, out, true);
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

static void
count_one(void *size, uint32_t domain, uint64_t bytes)
{
    zwi_count_trace(size, domain, bytes);
}

int
zwi_decode_set_size(zwi_cursor *c, zw_capture_set_size *size)
{
    uint64_t time_ns;
    uint64_t heap_bytes;
    uint32_t nlabel;
    uint64_t n;
    const unsigned char *p;
    *size = (zw_capture_set_size){0};
    size_t at;
    if (zwi_get_u64(c, &time_ns) || zwi_get_u64(c, &heap_bytes) || zwi_get_u32(c, &nlabel) ||
        zwi_get_bytes(c, nlabel, "string", &p) || get_embedded(c, &p, &n, &at))
        return -1;
    if (n == 0)
        return 0; /* the set was not kept */
    zw_error inner;
    if (zwi_snapshot_each_trace(p, (size_t)n, count_one, size, &inner) != 0)
        return embedded_fails(c, at, &inner);
    size->kept = true;
    return 0;
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
zwi_encode_table_set_of(zwi_cbuf *b, const zwi_set *s)
{
    zwi_cbuf_varint(b, s->kind);
    zwi_cbuf_varint(b, s->time_ns);
    zwi_cbuf_varint(b, s->heap_bytes);
    put_vstring(b, s->label);
    zwi_cbuf_varint(b, s->as_exit ? 2 : s->kept ? 1 : 0);
    zwi_cbuf_varint(b, s->kept ? s->n : 0);
    for (size_t i = 0; s->kept && i < s->n; i++) {
        zwi_cbuf_varint(b, s->domains[i]);
        zwi_cbuf_varint(b, s->tbs[i]);
        zwi_cbuf_varint(b, s->sizes[i]);
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

/* A SET's fields before its traces; `n` is the number of traces that follow. */
static int
decode_table_set_head(zwi_cursor *c, zwi_set *out, size_t *n)
{
    uint64_t kept;
    *out = (zwi_set){0};
    if (zwi_get_varint32(c, &out->kind) || zwi_get_varint(c, &out->time_ns) ||
        zwi_get_varint(c, &out->heap_bytes) || get_vstring(c, &out->label) ||
        zwi_get_varint(c, &kept) || zwi_get_count(c, 0, SET_RECORD, "trace", n))
        return -1;
    if (out->kind < ZWI_SET_PEAK || out->kind > ZWI_SET_MARK)
        return zwi_cursor_fail(c, "unknown kind of live set %" PRIu32, out->kind);
    if (kept > 2 || (kept != 1 && *n != 0))
        return zwi_cursor_fail(c, "traces of a live set that was not kept");
    if (kept == 2 && out->kind != ZWI_SET_PEAK)
        return zwi_cursor_fail(c, "only the peak set can be the exit set");
    out->kept = kept == 1;
    out->as_exit = kept == 2;
    return 0;
}

int
zwi_decode_table_set(zwi_cursor *c, zwi_set *out)
{
    size_t n;
    if (decode_table_set_head(c, out, &n) != 0)
        return -1;
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
zwi_count_trace(zw_capture_set_size *size, uint32_t domain, uint64_t bytes)
{
    if (domain == ZW_TRACE_DEFAULT_DOMAIN) {
        size->heap_blocks++;
        size->heap_bytes += bytes;
    } else if (domain == ZW_CAPTURE_MMAP_DOMAIN) {
        size->mmap_blocks++;
        size->mmap_bytes += bytes;
    }
}

int
zwi_decode_table_set_size(zwi_cursor *c, uint32_t *kind, zw_capture_set_size *size)
{
    zwi_set s;
    size_t n;
    *size = (zw_capture_set_size){0};
    int rc = decode_table_set_head(c, &s, &n);
    zwi_free(c->raw, (void *)s.label);
    *kind = s.kind;
    if (rc != 0)
        return -1;
    size->kept = s.kept;
    for (size_t i = 0; i < n; i++) {
        uint32_t domain;
        uint32_t tb;
        uint64_t bytes;
        if (zwi_get_varint32(c, &domain) || zwi_get_varint32(c, &tb) || zwi_get_varint(c, &bytes))
            return -1;
        zwi_count_trace(size, domain, bytes);
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

void
zwi_encode_site_list_of(zwi_cbuf *b, const zwi_site_list *s)
{
    zwi_cbuf_varint(b, s->steps_whole ? 1 : 0);
    zwi_cbuf_varint(b, s->n);
    for (size_t i = 0; i < s->n; i++) {
        zwi_cbuf_varint(b, s->refs[i]);
        zwi_cbuf_varint(b, s->domains[i]);
        zwi_cbuf_varint(b, s->tbs[i]);
        zwi_cbuf_varint(b, s->counts[i]);
        zwi_cbuf_varint(b, s->bytes[i]);
        zwi_cbuf_varint(b, s->temporary[i]);
    }
}

/* A SITE_LIST's head, either form: the steps flag and the count (*n), and out's arrays made. */
static int
site_list_begin(zwi_cursor *c, zwi_site_list *out, size_t *n)
{
    uint64_t whole;
    *out = (zwi_site_list){0};
    if (zwi_get_varint(c, &whole) || zwi_get_count(c, 0, SITE_RECORD, "site", n))
        return -1;
    if (whole > 1)
        return zwi_cursor_fail(c, "unknown steps flag %" PRIu64, whole);
    out->steps_whole = whole == 1;
    out->refs = zwi_alloc(c->raw, (*n + 1) * sizeof(uint32_t));
    out->domains = zwi_alloc(c->raw, (*n + 1) * sizeof(uint32_t));
    out->tbs = zwi_alloc(c->raw, (*n + 1) * sizeof(uint32_t));
    out->counts = zwi_alloc(c->raw, (*n + 1) * sizeof(uint64_t));
    out->bytes = zwi_alloc(c->raw, (*n + 1) * sizeof(uint64_t));
    out->temporary = zwi_alloc(c->raw, (*n + 1) * sizeof(uint64_t));
    if (out->refs == NULL || out->domains == NULL || out->tbs == NULL || out->counts == NULL ||
        out->bytes == NULL || out->temporary == NULL)
        return zwi_cursor_fail(c, "out of memory");
    return 0;
}

int
zwi_decode_site_list(zwi_cursor *c, zwi_site_list *out)
{
    size_t n;
    if (site_list_begin(c, out, &n) != 0)
        return -1;
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

/* *acc plus the signed difference `v` (zigzag), which must stay in 0 .. 2^32-1 (a ref or an
 * index written as differences): 0, or -1 with "`what` out of range". */
static int
add_delta32(zwi_cursor *c, int64_t *acc, uint64_t v, const char *what)
{
    int64_t d = zwi_unzigzag(v);
    if (d > (int64_t)UINT32_MAX || d < -(int64_t)UINT32_MAX || *acc + d < 0 ||
        *acc + d > (int64_t)UINT32_MAX)
        return zwi_cursor_fail(c, "%s out of range", what);
    *acc += d;
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
            if (add_delta32(c, &ref, dref, "site ref") != 0)
                return -1;
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

static void
encode_totals(zwi_cbuf *b, const zw_capture_totals *t, bool packed)
{
    put_int(b, packed, 8, t->allocations);
    put_int(b, packed, 8, t->frees);
    put_int(b, packed, 8, t->temporary);
    put_int(b, packed, 8, t->bytes_allocated);
    put_int(b, packed, 8, t->peak_bytes);
    put_int(b, packed, 8, t->peak_time_ns);
    put_int(b, packed, 8, t->duration_ns);
    put_int(b, packed, 4, t->end);
    put_int(b, packed, 4, (uint32_t)t->code);
}

static int
decode_totals(zwi_cursor *c, zw_capture_totals *out, bool packed)
{
    uint32_t code;
    *out = (zw_capture_totals){0};
    if (get_u64_of(c, packed, &out->allocations) || get_u64_of(c, packed, &out->frees) ||
        get_u64_of(c, packed, &out->temporary) || get_u64_of(c, packed, &out->bytes_allocated) ||
        get_u64_of(c, packed, &out->peak_bytes) || get_u64_of(c, packed, &out->peak_time_ns) ||
        get_u64_of(c, packed, &out->duration_ns) || get_u32_of(c, packed, &out->end) ||
        get_u32_of(c, packed, &code))
        return -1;
    if (out->end > ZW_CAPTURE_END_EXEC)
        return zwi_cursor_fail(c, "unknown end of process");
    out->code = (int32_t)code;
    return 0;
}

void
zwi_encode_totals(zwi_cbuf *b, const zw_capture_totals *t)
{
    encode_totals(b, t, false);
}

int
zwi_decode_totals(zwi_cursor *c, zw_capture_totals *out)
{
    return decode_totals(c, out, false);
}

void
zwi_encode_totals_packed(zwi_cbuf *b, const zw_capture_totals *t)
{
    encode_totals(b, t, true);
}

int
zwi_decode_totals_packed(zwi_cursor *c, zw_capture_totals *out)
{
    return decode_totals(c, out, true);
}

/* ---- LIVE ---- */

void
zwi_capture_put_live(zwi_cbuf *file, uint32_t nslots)
{
    zwi_cbuf pay = {.raw = file->raw};
    unsigned char *p =
        zwi_cbuf_grow(&pay, ZWI_LIVE_HEAD_SIZE + (size_t)nslots * ZWI_LIVE_SLOT_SIZE);
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

static void
encode_leaks(zwi_cbuf *b, const zw_capture_leaks *l, bool packed)
{
    bool kinds = l->status == ZW_LEAKS_SCANNED;
    put_int(b, packed, 4, l->status);
    put_int(b, packed, 4, l->modules);
    put_int(b, packed, 4, l->threads);
    put_int(b, packed, 4, l->threads_missed);
    put_int(b, packed, 8, l->scan_ns);
    put_int(b, packed, 8, l->scan_cpu_ns);
    put_int(b, packed, 8, l->scan_memory);
    put_int(b, packed, 8, l->root_bytes);
    for (int k = 0; k < ZW_LEAK_KINDS; k++) {
        put_int(b, packed, 8, kinds ? l->blocks[k] : 0);
        put_int(b, packed, 8, kinds ? l->bytes[k] : 0);
    }
    put_int(b, packed, 8, kinds ? l->nkinds : 0);
    if (kinds)
        zwi_cbuf_bytes(b, l->kinds, l->nkinds);
}

static int
decode_leaks(zwi_cursor *c, zw_capture_leaks *out, bool packed)
{
    *out = (zw_capture_leaks){0};
    uint32_t status;
    size_t n;
    const unsigned char *kinds;
    if (get_u32_of(c, packed, &status) || get_u32_of(c, packed, &out->modules) ||
        get_u32_of(c, packed, &out->threads) || get_u32_of(c, packed, &out->threads_missed) ||
        get_u64_of(c, packed, &out->scan_ns) || get_u64_of(c, packed, &out->scan_cpu_ns) ||
        get_u64_of(c, packed, &out->scan_memory) || get_u64_of(c, packed, &out->root_bytes))
        return -1;
    for (int k = 0; k < ZW_LEAK_KINDS; k++)
        if (get_u64_of(c, packed, &out->blocks[k]) || get_u64_of(c, packed, &out->bytes[k]))
            return -1;
    if (status < ZW_LEAKS_SCANNED || status > ZW_LEAKS_OFF)
        return zwi_cursor_fail(c, "unknown leak scan status %" PRIu32, status);
    if (zwi_get_count(c, packed ? 0 : 8, 1, "leak kind", &n) ||
        zwi_get_bytes(c, n, "leak kinds", &kinds))
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

void
zwi_encode_leaks(zwi_cbuf *b, const zw_capture_leaks *l)
{
    encode_leaks(b, l, false);
}

int
zwi_decode_leaks(zwi_cursor *c, zw_capture_leaks *out)
{
    return decode_leaks(c, out, false);
}

void
zwi_encode_leaks_packed(zwi_cbuf *b, const zw_capture_leaks *l)
{
    encode_leaks(b, l, true);
}

int
zwi_decode_leaks_packed(zwi_cursor *c, zw_capture_leaks *out)
{
    return decode_leaks(c, out, true);
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

/* ---- the packed form (1.6): a finished capture rewritten as one PACKED section ---- */

/* LIVE, packed: the head's fields and the sums of the slots, each a varint. */
void
zwi_encode_live_packed(zwi_cbuf *b, const zwi_live *l)
{
    const zw_capture_live *x = &l->counts;
    const uint64_t v[] = {x->end,          (uint32_t)x->code, l->write_errno,     x->peak_bytes,
                          x->peak_time_ns, x->mmap_bytes,     x->mmap_peak,       x->allocations,
                          x->frees,        x->temporary,      x->bytes_allocated, x->bytes_freed,
                          l->untraced};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        zwi_cbuf_varint(b, v[i]);
}

int
zwi_decode_live_packed(zwi_cursor *c, zwi_live *out)
{
    uint32_t end, code;
    *out = (zwi_live){0};
    zw_capture_live *x = &out->counts;
    if (zwi_get_varint32(c, &end) || zwi_get_varint32(c, &code) ||
        zwi_get_varint32(c, &out->write_errno) || zwi_get_varint(c, &x->peak_bytes) ||
        zwi_get_varint(c, &x->peak_time_ns) || zwi_get_varint(c, &x->mmap_bytes) ||
        zwi_get_varint(c, &x->mmap_peak) || zwi_get_varint(c, &x->allocations) ||
        zwi_get_varint(c, &x->frees) || zwi_get_varint(c, &x->temporary) ||
        zwi_get_varint(c, &x->bytes_allocated) || zwi_get_varint(c, &x->bytes_freed) ||
        zwi_get_varint(c, &out->untraced))
        return -1;
    if (end > ZW_CAPTURE_END_EXEC)
        return zwi_cursor_fail(c, "unknown end of process");
    x->end = end;
    x->code = (int32_t)code;
    return 0;
}

static uint64_t
gcd64(uint64_t a, uint64_t b)
{
    while (b != 0) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Field k of sample i less the same field of sample i - 1 (the first sample's less 0), the
 * time's less `tick` too: modulo 2^64, read as signed (as SAMPLES). */
static int64_t
sample_diff(const zw_capture_sample *s, size_t i, int k, uint64_t tick)
{
    uint64_t f[ZWI_SERIES_FIELDS];
    uint64_t p[ZWI_SERIES_FIELDS] = {0};
    sample_fields(&s[i], f);
    if (i > 0)
        sample_fields(&s[i - 1], p);
    return (int64_t)(f[k] - p[k] - (k == 0 && i > 0 ? tick : 0));
}

static void
set_sample_field(zw_capture_sample *s, size_t k, uint64_t v)
{
    uint64_t *f[ZWI_SERIES_FIELDS] = {
        &s->time_ns, &s->heap_bytes, &s->heap_blocks,     &s->rss_bytes,  &s->allocations,
        &s->frees,   &s->temporary,  &s->bytes_allocated, &s->mmap_bytes, &s->mmap_peak};
    *f[k] = v;
}

void
zwi_encode_samples_packed(zwi_cbuf *b, const zw_capture_sample *s, size_t n, uint64_t tick_ns)
{
    uint64_t scale[ZWI_SERIES_FIELDS] = {0};
    for (int k = 0; k < ZWI_SERIES_FIELDS; k++) {
        for (size_t i = 0; i < n; i++) {
            int64_t d = sample_diff(s, i, k, tick_ns);
            scale[k] = gcd64(scale[k], d < 0 ? -(uint64_t)d : (uint64_t)d);
        }
        if (scale[k] > INT64_MAX || (k == 0 && scale[k] == 0))
            scale[k] = 1; /* 2^63 alone: kept whole; the time always has its column */
    }
    zwi_cbuf_varint(b, n);
    zwi_cbuf_varint(b, ZWI_SERIES_FIELDS);
    zwi_cbuf_varint(b, tick_ns);
    for (int k = 0; k < ZWI_SERIES_FIELDS; k++)
        zwi_cbuf_varint(b, scale[k]);
    for (int k = 0; k < ZWI_SERIES_FIELDS; k++) {
        for (size_t i = 0; scale[k] != 0 && i < n; i++)
            zwi_cbuf_varint(b, zwi_zigzag(sample_diff(s, i, k, tick_ns) / (int64_t)scale[k]));
    }
}

int
zwi_decode_samples_packed(zwi_cursor *c, zwi_samples *into)
{
    uint64_t count;
    size_t fields;
    uint64_t tick;
    if (zwi_get_varint(c, &count) || zwi_get_count(c, 0, 1, "field", &fields) ||
        zwi_get_varint(c, &tick))
        return -1;
    if (fields < ZWI_SERIES_MIN)
        return zwi_cursor_fail(c, "too few fields per sample");
    uint64_t *scale = zwi_alloc(c->raw, fields * sizeof(uint64_t));
    if (scale == NULL)
        return zwi_cursor_fail(c, "out of memory");
    int rc = 0;
    for (size_t k = 0; k < fields && rc == 0; k++)
        rc = zwi_get_varint(c, &scale[k]);
    if (rc == 0 && scale[0] == 0)
        rc = zwi_cursor_fail(c, "samples without their time column");
    /* the time's column has a byte per sample at least */
    if (rc == 0 && count > c->len - c->pos)
        rc = zwi_cursor_fail(c, "sample count larger than the payload");
    size_t n = (size_t)count;
    if (rc == 0 && zwi_reserve(c->raw, (void **)&into->v, &into->cap, into->n + n,
                               sizeof(zw_capture_sample)) != 0)
        rc = zwi_cursor_fail(c, "out of memory");
    if (rc == 0 && n > 0)
        memset(&into->v[into->n], 0, n * sizeof(zw_capture_sample));
    for (size_t k = 0; k < fields && rc == 0; k++) {
        uint64_t v = 0;
        for (size_t i = 0; i < n && scale[k] != 0 && rc == 0; i++) {
            uint64_t d;
            rc = zwi_get_varint(c, &d);
            v += (uint64_t)zwi_unzigzag(d) * scale[k] + (k == 0 && i > 0 ? tick : 0);
            if (k < ZWI_SERIES_FIELDS)
                set_sample_field(&into->v[into->n + i], k, v);
        }
    }
    zwi_free(c->raw, scale);
    if (rc == 0)
        into->n += n;
    return rc;
}

void
zwi_encode_steps_packed(zwi_cbuf *b, const zw_capture_step *steps, size_t nsteps,
                        const zw_capture_delta *deltas)
{
    zwi_cbuf_varint(b, nsteps);
    uint64_t prev = 0;
    for (size_t i = 0; i < nsteps; i++) {
        zwi_cbuf_varint(b, zwi_zigzag((int64_t)(steps[i].time_ns - prev)));
        prev = steps[i].time_ns;
    }
    for (size_t i = 0; i < nsteps; i++)
        zwi_cbuf_varint(b, (steps[i].peak ? ZWI_STEP_PEAK : 0) |
                               (steps[i].mmap_peak ? ZWI_STEP_MMAP_PEAK : 0));
    for (size_t i = 0; i < nsteps; i++)
        zwi_cbuf_varint(b, steps[i].n);
    for (int col = 0; col < 3; col++) {
        for (size_t i = 0; i < nsteps; i++) {
            uint32_t prev_ref = 0;
            for (size_t k = steps[i].first; k < steps[i].first + steps[i].n; k++) {
                const zw_capture_delta *d = &deltas[k];
                int64_t v = col == 0   ? (int64_t)d->site - (int64_t)prev_ref
                            : col == 1 ? d->bytes
                                       : d->blocks;
                zwi_cbuf_varint(b, zwi_zigzag(v));
                prev_ref = d->site;
            }
        }
    }
}

int
zwi_decode_steps_packed(zwi_cursor *c, zwi_steps *into)
{
    size_t nsteps;
    if (zwi_get_count(c, 0, 3, "step", &nsteps) != 0)
        return -1;
    if (nsteps == 0) /* nothing follows (and steps may still be NULL) */
        return 0;
    if (zwi_reserve(c->raw, (void **)&into->steps, &into->cap_steps, into->nsteps + nsteps,
                    sizeof(zw_capture_step)) != 0)
        return zwi_cursor_fail(c, "out of memory");
    zw_capture_step *st = &into->steps[into->nsteps];
    uint64_t time = 0;
    for (size_t i = 0; i < nsteps; i++) {
        uint64_t dt;
        if (zwi_get_varint(c, &dt) != 0)
            return -1;
        time += (uint64_t)zwi_unzigzag(dt);
        st[i] = (zw_capture_step){.time_ns = time};
    }
    for (size_t i = 0; i < nsteps; i++) {
        uint64_t flags;
        if (zwi_get_varint(c, &flags) != 0)
            return -1;
        if (flags & ~(uint64_t)(ZWI_STEP_PEAK | ZWI_STEP_MMAP_PEAK))
            return zwi_cursor_fail(c, "unknown step flags");
        st[i].peak = (flags & ZWI_STEP_PEAK) != 0;
        st[i].mmap_peak = (flags & ZWI_STEP_MMAP_PEAK) != 0;
    }
    size_t total = 0;
    for (size_t i = 0; i < nsteps; i++) {
        size_t n;
        if (zwi_get_count(c, 0, 3, "delta", &n) != 0)
            return -1;
        st[i].first = into->ndeltas + total;
        st[i].n = n;
        total += n;
        if (total > (c->len - c->pos) / 3) /* three columns of a byte at least */
            return zwi_cursor_fail(c, "delta count larger than the payload");
    }
    if (zwi_reserve(c->raw, (void **)&into->deltas, &into->cap_deltas, into->ndeltas + total,
                    sizeof(zw_capture_delta)) != 0)
        return zwi_cursor_fail(c, "out of memory");
    zw_capture_delta *d = total > 0 ? &into->deltas[into->ndeltas] : NULL; /* NULL: unused */
    for (int col = 0; col < 3; col++) {
        size_t k = 0;
        for (size_t i = 0; i < nsteps; i++) {
            int64_t ref = 0;
            for (size_t j = 0; j < st[i].n; j++, k++) {
                uint64_t v;
                if (zwi_get_varint(c, &v) != 0)
                    return -1;
                if (col == 0) {
                    if (add_delta32(c, &ref, v, "site ref") != 0)
                        return -1;
                    d[k].site = (uint32_t)ref;
                } else if (col == 1) {
                    d[k].bytes = zwi_unzigzag(v);
                } else {
                    d[k].blocks = zwi_unzigzag(v);
                }
            }
        }
    }
    into->nsteps += nsteps;
    into->ndeltas += total;
    return 0;
}

void
zwi_encode_site_list_packed(zwi_cbuf *b, const zwi_site_list *s)
{
    zwi_cbuf_varint(b, s->steps_whole ? 1 : 0);
    zwi_cbuf_varint(b, s->n);
    uint32_t prev = 0;
    for (size_t i = 0; i < s->n; i++) {
        zwi_cbuf_varint(b, zwi_zigzag((int64_t)s->refs[i] - (int64_t)prev));
        prev = s->refs[i];
    }
    for (size_t i = 0; i < s->n; i++)
        zwi_cbuf_varint(b, s->domains[i]);
    prev = 0;
    for (size_t i = 0; i < s->n; i++) { /* i, mostly: a byte of 2 (+1) each */
        zwi_cbuf_varint(b, zwi_zigzag((int64_t)s->tbs[i] - (int64_t)prev));
        prev = s->tbs[i];
    }
    for (size_t i = 0; i < s->n; i++)
        zwi_cbuf_varint(b, s->counts[i]);
    for (size_t i = 0; i < s->n; i++)
        zwi_cbuf_varint(b, s->bytes[i]);
    for (size_t i = 0; i < s->n; i++)
        zwi_cbuf_varint(b, s->temporary[i]);
}

int
zwi_decode_site_list_packed(zwi_cursor *c, zwi_site_list *out)
{
    size_t n;
    if (site_list_begin(c, out, &n) != 0)
        return -1;
    int64_t ref = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t v;
        if (zwi_get_varint(c, &v) != 0)
            return -1;
        if (add_delta32(c, &ref, v, "site ref") != 0)
            return -1;
        out->refs[i] = (uint32_t)ref;
    }
    for (size_t i = 0; i < n; i++)
        if (zwi_get_varint32(c, &out->domains[i]) != 0)
            return -1;
    int64_t tb = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t v;
        if (zwi_get_varint(c, &v) != 0)
            return -1;
        if (add_delta32(c, &tb, v, "traceback index") != 0)
            return -1;
        out->tbs[i] = (uint32_t)tb;
    }
    for (size_t i = 0; i < n; i++)
        if (zwi_get_varint(c, &out->counts[i]) != 0)
            return -1;
    for (size_t i = 0; i < n; i++)
        if (zwi_get_varint(c, &out->bytes[i]) != 0)
            return -1;
    for (size_t i = 0; i < n; i++)
        if (zwi_get_varint(c, &out->temporary[i]) != 0)
            return -1;
    out->n = n;
    return 0;
}

/* ---- TABLE, packed: transcoded from the varint TABLE without building a snapshot ---- */

/* A varint TABLE read into plain arrays (indices checked against their tables). */
typedef struct table_arrays {
    uint64_t limit;
    size_t nstrs;
    const unsigned char **str; /* nstrs each: bytes and length */
    size_t *str_len;
    size_t nmods;
    uint64_t *mod; /* 3 per module: path, build_id + 1, bias */
    size_t nframes;
    uint64_t *frame; /* 6 per frame: filename, lineno, function + 1, module + 1, offset, flags */
    size_t ntbs;
    uint64_t *tb;  /* 3 per traceback: total_nframe, nframe, first index into `idx` */
    const uint32_t *idx; /* every traceback's frame indices, one after another: */
    uint32_t *own_idx;   /* these, or the table builder's, borrowed */
    size_t nidx;
} table_arrays;

static void
table_arrays_release(zw_raw *raw, table_arrays *t)
{
    zwi_free(raw, t->str);
    zwi_free(raw, t->str_len);
    zwi_free(raw, t->mod);
    zwi_free(raw, t->frame);
    zwi_free(raw, t->tb);
    zwi_free(raw, t->own_idx);
}

static int
get_index(zwi_cursor *c, uint64_t *v, uint64_t below)
{
    if (zwi_get_varint(c, v) != 0)
        return -1;
    return *v < below ? 0 : zwi_cursor_fail(c, "index out of range");
}

static int
read_table_arrays(zwi_cursor *c, table_arrays *t)
{
    zw_raw *raw = c->raw;
    if (zwi_get_varint(c, &t->limit) || zwi_get_count(c, 0, 1, "string", &t->nstrs))
        return -1;
    t->str = zwi_alloc(raw, (t->nstrs + 1) * sizeof(*t->str));
    t->str_len = zwi_alloc(raw, (t->nstrs + 1) * sizeof(size_t));
    if (t->str == NULL || t->str_len == NULL)
        return zwi_cursor_fail(c, "out of memory");
    for (size_t i = 0; i < t->nstrs; i++) {
        if (zwi_get_count(c, 0, 1, "string byte", &t->str_len[i]) ||
            zwi_get_bytes(c, t->str_len[i], "string", &t->str[i]))
            return -1;
    }
    if (zwi_get_count(c, 0, 3, "module", &t->nmods))
        return -1;
    if ((t->mod = zwi_alloc(raw, (3 * t->nmods + 1) * sizeof(uint64_t))) == NULL)
        return zwi_cursor_fail(c, "out of memory");
    for (size_t i = 0; i < t->nmods; i++) {
        uint64_t *m = &t->mod[3 * i];
        if (get_index(c, &m[0], t->nstrs) || get_index(c, &m[1], t->nstrs + 1) ||
            zwi_get_varint(c, &m[2]))
            return -1;
    }
    if (zwi_get_count(c, 0, 6, "frame", &t->nframes))
        return -1;
    if ((t->frame = zwi_alloc(raw, (6 * t->nframes + 1) * sizeof(uint64_t))) == NULL)
        return zwi_cursor_fail(c, "out of memory");
    for (size_t i = 0; i < t->nframes; i++) {
        uint64_t *f = &t->frame[6 * i];
        if (get_index(c, &f[0], t->nstrs) || zwi_get_varint(c, &f[1]) ||
            get_index(c, &f[2], t->nstrs + 1) || get_index(c, &f[3], t->nstrs + 1) ||
            zwi_get_varint(c, &f[4]) || get_index(c, &f[5], 2))
            return -1;
    }
    if (zwi_get_count(c, 0, 3, "traceback", &t->ntbs))
        return -1;
    if ((t->tb = zwi_alloc(raw, (3 * t->ntbs + 1) * sizeof(uint64_t))) == NULL)
        return zwi_cursor_fail(c, "out of memory");
    /* every frame index takes a byte at least: the indices fit in what is left */
    size_t cap = c->len - c->pos;
    if ((t->idx = t->own_idx = zwi_alloc(raw, (cap + 1) * sizeof(uint32_t))) == NULL)
        return zwi_cursor_fail(c, "out of memory");
    for (size_t i = 0; i < t->ntbs; i++) {
        uint64_t *x = &t->tb[3 * i];
        size_t n;
        if (zwi_get_varint(c, &x[0]) || zwi_get_count(c, 0, 1, "frame index", &n))
            return -1;
        if (n == 0)
            return zwi_cursor_fail(c, "traceback without frames");
        x[1] = n;
        x[2] = t->nidx;
        for (size_t k = 0; k < n; k++) {
            uint64_t f;
            if (get_index(c, &f, t->nframes) != 0)
                return -1;
            t->own_idx[t->nidx++] = (uint32_t)f;
        }
    }
    return 0;
}

/* Whether `len` bytes are a build-id as the tracer writes it: lower-case hex, an even number of
 * digits. */
static bool
is_hex_id(const unsigned char *s, size_t len)
{
    if (len == 0 || len % 2 != 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    }
    return true;
}

static unsigned
hex_digit(unsigned char c)
{
    return c <= '9' ? (unsigned)(c - '0') : (unsigned)(c - 'a' + 10);
}

/* Frames in the packed order: by module, then offset (their offsets then differ by little). */
typedef struct frame_key {
    uint64_t module;
    uint64_t offset;
    uint32_t index; /* in the varint TABLE */
} frame_key;

static int
by_module_offset(const void *a, const void *b)
{
    const frame_key *x = a, *y = b;
    if (x->module != y->module)
        return x->module < y->module ? -1 : 1;
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static void
put_table_packed(zwi_cbuf *b, const table_arrays *t, const uint32_t *smap, const frame_key *order,
                 const uint32_t *fmap)
{
    zwi_cbuf_varint(b, t->limit);
    size_t nkept = 0;
    for (size_t i = 0; i < t->nstrs; i++)
        nkept += smap[i] != UINT32_MAX;
    zwi_cbuf_varint(b, nkept);
    for (size_t i = 0; i < t->nstrs; i++) {
        if (smap[i] == UINT32_MAX)
            continue;
        zwi_cbuf_varint(b, t->str_len[i]);
        zwi_cbuf_bytes(b, t->str[i], t->str_len[i]);
    }
    zwi_cbuf_varint(b, t->nmods);
    for (size_t i = 0; i < t->nmods; i++) {
        const uint64_t *m = &t->mod[3 * i];
        zwi_cbuf_varint(b, smap[m[0]]);
        if (m[1] == 0) {
            zwi_cbuf_varint(b, 0);
        } else {
            const unsigned char *s = t->str[m[1] - 1];
            size_t len = t->str_len[m[1] - 1];
            if (is_hex_id(s, len)) {
                zwi_cbuf_varint(b, 1 + ((uint64_t)(len / 2) << 1 | 1));
                for (size_t k = 0; k < len; k += 2)
                    zwi_cbuf_put(b, hex_digit(s[k]) << 4 | hex_digit(s[k + 1]), 1);
            } else {
                zwi_cbuf_varint(b, 1 + ((uint64_t)len << 1));
                zwi_cbuf_bytes(b, s, len);
            }
        }
        zwi_cbuf_varint(b, m[2]);
    }
    /* a string reference + 1 (0: none) */
#define SREF1(x) ((x) == 0 ? 0 : (uint64_t)smap[(x)-1] + 1)
    zwi_cbuf_varint(b, t->nframes);
    for (size_t i = 0; i < t->nframes; i++)
        zwi_cbuf_varint(b, SREF1(t->frame[6 * order[i].index + 3]));
    uint64_t prev = 0;
    for (size_t i = 0; i < t->nframes; i++) {
        uint64_t off = t->frame[6 * order[i].index + 4];
        zwi_cbuf_varint(b, zwi_zigzag((int64_t)(off - prev)));
        prev = off;
    }
    for (size_t i = 0; i < t->nframes; i++)
        zwi_cbuf_varint(b, smap[t->frame[6 * order[i].index]]);
    for (size_t i = 0; i < t->nframes; i++)
        zwi_cbuf_varint(b, t->frame[6 * order[i].index + 1]);
    for (size_t i = 0; i < t->nframes; i++)
        zwi_cbuf_varint(b, SREF1(t->frame[6 * order[i].index + 2]));
    for (size_t i = 0; i < t->nframes; i++)
        zwi_cbuf_varint(b, t->frame[6 * order[i].index + 5]);
#undef SREF1
    zwi_cbuf_varint(b, t->ntbs);
    const uint32_t *before = NULL;
    size_t nbefore = 0;
    for (size_t i = 0; i < t->ntbs; i++) {
        const uint64_t *x = &t->tb[3 * i];
        const uint32_t *fr = &t->idx[x[2]];
        size_t n = (size_t)x[1];
        size_t shared = 0;
        while (shared < n && shared < nbefore && fmap[fr[shared]] == fmap[before[shared]])
            shared++;
        zwi_cbuf_varint(b, shared);
        zwi_cbuf_varint(b, n - shared);
        zwi_cbuf_varint(b, zwi_zigzag((int64_t)x[0] - (int64_t)n));
        for (size_t k = shared; k < n; k++)
            zwi_cbuf_varint(b, fmap[fr[k]]);
        before = fr;
        nbefore = n;
    }
}

/* `t` written packed into `b`: the strings renumbered without those that only name a hex
 * build-id, the frames sorted by module and offset. -1 if out of memory (`raw`'s). */
static int
put_arrays_packed(zw_raw *raw, const table_arrays *t, zwi_cbuf *b)
{
    uint32_t *smap = zwi_alloc(raw, (t->nstrs + 1) * sizeof(uint32_t));
    frame_key *order = zwi_alloc(raw, (t->nframes + 1) * sizeof(frame_key));
    uint32_t *fmap = zwi_alloc(raw, (t->nframes + 1) * sizeof(uint32_t));
    int rc = smap != NULL && order != NULL && fmap != NULL ? 0 : -1;
    if (rc == 0) {
        /* the strings named by something else than a module's build-id, renumbered */
        for (size_t i = 0; i < t->nstrs; i++)
            smap[i] = UINT32_MAX;
        for (size_t i = 0; i < t->nmods; i++)
            smap[t->mod[3 * i]] = 0;
        for (size_t i = 0; i < t->nframes; i++) {
            const uint64_t *f = &t->frame[6 * i];
            smap[f[0]] = 0;
            if (f[2] != 0)
                smap[f[2] - 1] = 0;
            if (f[3] != 0)
                smap[f[3] - 1] = 0;
        }
        for (size_t i = 0; i < t->nmods; i++) { /* a build-id that is no hex stays a string */
            uint64_t id = t->mod[3 * i + 1];
            if (id != 0 && !is_hex_id(t->str[id - 1], t->str_len[id - 1]))
                smap[id - 1] = 0;
        }
        uint32_t k = 0;
        for (size_t i = 0; i < t->nstrs; i++) {
            if (smap[i] == 0)
                smap[i] = k++;
        }
        for (size_t i = 0; i < t->nframes; i++)
            order[i] = (frame_key){t->frame[6 * i + 3], t->frame[6 * i + 4], (uint32_t)i};
        qsort(order, t->nframes, sizeof(*order), by_module_offset);
        for (size_t i = 0; i < t->nframes; i++)
            fmap[order[i].index] = (uint32_t)i;
        put_table_packed(b, t, smap, order, fmap);
    }
    zwi_free(raw, fmap);
    zwi_free(raw, order);
    zwi_free(raw, smap);
    return rc;
}

int
zwi_transcode_table_packed(zwi_cursor *c, zwi_cbuf *b)
{
    table_arrays t = {0};
    int rc = read_table_arrays(c, &t);
    if (rc == 0 && put_arrays_packed(c->raw, &t, b) != 0)
        rc = zwi_cursor_fail(c, "out of memory");
    table_arrays_release(c->raw, &t);
    return rc;
}

/* A string reference of `snap` as the varint TABLE's: its index, + 1 where it may be none. */
static uint64_t
string_ref(const zw_snapshot *snap, const char *s, bool nullable)
{
    if (s == NULL)
        return 0;
    uint32_t i = zwi_strtab_index(&snap->strs, s);
    return nullable ? (uint64_t)i + 1 : i;
}

/* `table`'s arrays as read_table_arrays() makes them, pointing into the snapshot. */
static int
snapshot_arrays(zw_raw *raw, const zw_snapshot *table, table_arrays *t, const uint32_t *idx,
                const uint32_t *shape, size_t idx_tbs)
{
    t->limit = table->traceback_limit;
    t->nstrs = table->strs.count;
    t->nmods = table->nmodules;
    t->nframes = table->nframes;
    t->ntbs = table->ntbs;
    /* the builder's, borrowed as they are (a traceback read is a cache miss each) */
    bool given = idx != NULL && shape != NULL && idx_tbs == t->ntbs;
    for (size_t i = 0; i < table->ntbs; i++)
        t->nidx += given ? shape[2 * i] : table->tbs[i]->nframe;
    t->str = zwi_alloc(raw, (t->nstrs + 1) * sizeof(*t->str));
    t->str_len = zwi_alloc(raw, (t->nstrs + 1) * sizeof(size_t));
    t->mod = zwi_alloc(raw, (3 * t->nmods + 1) * sizeof(uint64_t));
    t->frame = zwi_alloc(raw, (6 * t->nframes + 1) * sizeof(uint64_t));
    t->tb = zwi_alloc(raw, (3 * t->ntbs + 1) * sizeof(uint64_t));
    t->idx = given ? idx : (t->own_idx = zwi_alloc(raw, (t->nidx + 1) * sizeof(uint32_t)));
    if (t->str == NULL || t->str_len == NULL || t->mod == NULL || t->frame == NULL ||
        t->tb == NULL || t->idx == NULL)
        return -1;
    for (size_t i = 0; i < t->nstrs; i++) {
        t->str[i] = (const unsigned char *)table->strs.strs[i];
        t->str_len[i] = zwi_strtab_len(table->strs.strs[i]);
    }
    for (size_t i = 0; i < t->nmods; i++) {
        const zwi_module *m = &table->modules[i];
        t->mod[3 * i] = string_ref(table, m->path, false);
        t->mod[3 * i + 1] = string_ref(table, m->build_id, true);
        t->mod[3 * i + 2] = m->bias;
    }
    for (size_t i = 0; i < t->nframes; i++) {
        const zw_frame *f = &table->frames[i]->pub;
        uint64_t *x = &t->frame[6 * i];
        x[0] = string_ref(table, f->filename, false);
        x[1] = f->lineno;
        x[2] = string_ref(table, f->function, true);
        x[3] = string_ref(table, f->module, true);
        x[4] = f->offset;
        x[5] = f->inlined ? 1 : 0;
    }
    size_t at = 0;
    for (size_t i = 0; i < t->ntbs; i++) {
        if (given) {
            t->tb[3 * i] = shape[2 * i + 1];
            t->tb[3 * i + 1] = shape[2 * i];
            t->tb[3 * i + 2] = at;
            at += shape[2 * i];
            continue;
        }
        const zw_traceback *tb = table->tbs[i];
        t->tb[3 * i] = tb->total_nframe;
        t->tb[3 * i + 1] = tb->nframe;
        t->tb[3 * i + 2] = at;
        for (size_t k = 0; k < tb->nframe; k++)
            t->own_idx[at++] = ((const zwi_frame *)tb->frames[k])->index;
    }
    return 0;
}

void
zwi_encode_table_packed_with(zwi_cbuf *b, const zw_snapshot *table, const uint32_t *idx,
                             const uint32_t *shape, size_t idx_tbs)
{
    table_arrays t = {0};
    if (snapshot_arrays(b->raw, table, &t, idx, shape, idx_tbs) != 0 ||
        put_arrays_packed(b->raw, &t, b) != 0)
        b->failed = true;
    table_arrays_release(b->raw, &t);
}

void
zwi_encode_table_packed(zwi_cbuf *b, const zw_snapshot *table)
{
    zwi_encode_table_packed_with(b, table, NULL, NULL, 0);
}

int
zwi_decode_table_packed(zwi_cursor *c, zw_snapshot **out)
{
    *out = zwi_snapshot_decode_packed_tables(c);
    return *out == NULL ? -1 : 0;
}

/* ---- packing a finished capture ---- */

/* One record of a PACKED payload: varint type, varint length, the payload. */
void
zwi_capture_put_record_head(zwi_cbuf *into, uint32_t type, size_t len)
{
    zwi_cbuf_varint(into, type);
    zwi_cbuf_varint(into, len);
}

void
zwi_capture_put_record(zwi_cbuf *into, uint32_t type, const zwi_cbuf *payload)
{
    zwi_capture_put_record_head(into, type, payload->len);
    zwi_cbuf_bytes(into, payload->data, payload->len);
    if (payload->failed)
        into->failed = true;
}

static void
free_process(zw_raw *raw, zwi_process *p)
{
    for (size_t i = 0; p->argv != NULL && i < p->argc; i++)
        zwi_free(raw, (void *)p->argv[i]);
    zwi_free(raw, p->argv);
}

void
zwi_site_list_release(zw_raw *raw, zwi_site_list *s)
{
    zwi_free(raw, s->refs);
    zwi_free(raw, s->domains);
    zwi_free(raw, s->tbs);
    zwi_free(raw, s->counts);
    zwi_free(raw, s->bytes);
    zwi_free(raw, s->temporary);
}

/* The packed form of one section of a streamed capture into `pay`; `*head`: it goes before the
 * samples (what a brief reader wants). -1 if it does not decode or has no packed form. */
static int
pack_section(uint32_t type, zwi_cursor *cur, zwi_cbuf *pay, bool *head)
{
    zw_raw *raw = cur->raw;
    int rc = 0;
    *head = type == ZWI_SEC_PROCESS || type == ZWI_SEC_LIVE || type == ZWI_SEC_TOTALS;
    switch (type) {
    case ZWI_SEC_PROCESS: {
        zwi_process p;
        if ((rc = zwi_decode_process(cur, &p)) == 0)
            zwi_encode_process_packed(pay, &p);
        free_process(raw, &p);
        break;
    }
    case ZWI_SEC_LIVE: {
        zwi_live l;
        if ((rc = zwi_decode_live(cur, &l)) == 0)
            zwi_encode_live_packed(pay, &l);
        break;
    }
    case ZWI_SEC_TOTALS: {
        zw_capture_totals t;
        if ((rc = zwi_decode_totals(cur, &t)) == 0)
            zwi_encode_totals_packed(pay, &t);
        break;
    }
    case ZWI_SEC_LEAKS:
    case ZWI_SEC_MARK_LEAKS: {
        zw_capture_leaks l;
        if ((rc = zwi_decode_leaks(cur, &l)) == 0)
            zwi_encode_leaks_packed(pay, &l);
        zwi_free(raw, l.kinds);
        break;
    }
    case ZWI_SEC_TABLE:
        rc = zwi_transcode_table_packed(cur, pay);
        break;
    case ZWI_SEC_SET: { /* varints already: as it is */
        zwi_cbuf_bytes(pay, cur->p + cur->pos, cur->len - cur->pos);
        cur->pos = cur->len;
        break;
    }
    case ZWI_SEC_SITE_LIST: {
        zwi_site_list sl;
        if ((rc = zwi_decode_site_list(cur, &sl)) == 0)
            zwi_encode_site_list_packed(pay, &sl);
        zwi_site_list_release(raw, &sl);
        break;
    }
    default: /* a section of an older version: such a capture is left as it is */
        rc = -1;
        break;
    }
    return rc != 0 || cur->pos != cur->len || pay->failed ? -1 : 0;
}

int
zwi_capture_pack(const unsigned char *data, size_t len, uint64_t tick_ns, zwi_cbuf *out)
{
    zw_raw *raw = out->raw;
    zwi_samples samples = {0};
    zwi_steps steps = {0};
    zwi_cbuf head = {.raw = raw}; /* PROCESS, LIVE, TOTALS */
    zwi_cbuf rest = {.raw = raw}; /* TABLE and the sections that name it, in their order */
    zwi_cbuf pay = {.raw = raw};
    zwi_container c;
    zw_error err;
    int rc = zwi_container_open(&c, data, len, ZWI_KIND_CAPTURE, NULL, raw, &err);
    int got = 0;
    while (rc == 0 && (got = zwi_container_next(&c)) == 1) {
        zwi_cursor cur;
        if (zwi_container_payload(&c, &cur, raw) != 0) {
            rc = -1;
            break;
        }
        if (c.type == ZWI_SEC_PACKED) { /* the end's records: as they are */
            while (rc == 0 && cur.pos < cur.len) {
                uint64_t type;
                size_t n;
                if (zwi_get_varint(&cur, &type) || zwi_get_count(&cur, 0, 1, "record byte", &n) ||
                    type > UINT32_MAX) {
                    rc = -1;
                    break;
                }
                zwi_cbuf rec = {.data = (unsigned char *)cur.p + cur.pos, .len = n};
                zwi_capture_put_record(type == ZWI_SEC_TOTALS ? &head : &rest, (uint32_t)type,
                                       &rec);
                cur.pos += n;
            }
            continue;
        }
        if (c.type == ZWI_SEC_SAMPLES || c.type == ZWI_SEC_STEPS) {
            if ((c.type == ZWI_SEC_SAMPLES ? zwi_decode_samples(&cur, &samples)
                                           : zwi_decode_steps(&cur, &steps)) != 0 ||
                cur.pos != cur.len)
                rc = -1;
            continue;
        }
        bool to_head;
        pay.len = 0;
        if (pack_section(c.type, &cur, &pay, &to_head) != 0)
            rc = -1;
        else
            zwi_capture_put_record(to_head ? &head : &rest, c.type, &pay);
    }
    if (rc == 0 && (got != 0 || !c.ended))
        rc = -1; /* damaged, or not finished: left as it is */
    zwi_cbuf inner = {.raw = raw};
    if (rc == 0) {
        zwi_cbuf_bytes(&inner, head.data, head.len);
        if (samples.n > 0) {
            pay.len = 0;
            zwi_encode_samples_packed(&pay, samples.v, samples.n, tick_ns);
            zwi_capture_put_record(&inner, ZWI_SEC_SAMPLES, &pay);
        }
        if (steps.nsteps > 0) {
            pay.len = 0;
            zwi_encode_steps_packed(&pay, steps.steps, steps.nsteps, steps.deltas);
            zwi_capture_put_record(&inner, ZWI_SEC_STEPS, &pay);
        }
        zwi_cbuf_bytes(&inner, rest.data, rest.len);
        if (head.failed || rest.failed)
            inner.failed = true;
        zwi_container_put_header(out, ZWI_KIND_CAPTURE, ZWI_CAPTURE_PACKED_MINOR, 0);
        zwi_container_put_section_level(out, ZWI_SEC_PACKED, ZWI_SECTION_REQUIRED, &inner,
                                        zwi_capture_end_level(inner.len));
        pay.len = 0;
        zwi_capture_put(out, ZWI_SEC_END, &pay);
        if (out->failed)
            rc = -1;
    }
    zwi_container_release(&c);
    zwi_cbuf_release(&inner);
    zwi_cbuf_release(&pay);
    zwi_cbuf_release(&rest);
    zwi_cbuf_release(&head);
    zwi_free(raw, samples.v);
    zwi_free(raw, steps.steps);
    zwi_free(raw, steps.deltas);
    return rc;
}

