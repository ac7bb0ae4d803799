/* trace/format.c - snapshot files (kind 1, docs/format.md): the payloads of INFO, STRINGS,
 * MODULES, FRAMES, TRACEBACKS and TRACES, then END, in the container of container.c; frames are
 * stored symbolised, so the file reads the same on another machine.
 *
 * Reading trusts nothing: the container checks every header and payload against its CRC, the
 * decoders here every count against the bytes left, every index against its table; a failure
 * names what is wrong and where (offset, section, byte); the snapshot is handed out only when the
 * whole file was read. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "container.h"
#include "trace_internal.h"

#define VERSION_MINOR 0 /* what a snapshot needs; a capture adds to 1.0 (capture_format.h) */
#define NO_STRING     UINT32_MAX
#define FRAME_SIZE    28

/* ---- writing ---- */

static void
put_string_ref(zwi_cbuf *b, const zw_snapshot *snap, const char *s)
{
    zwi_cbuf_put(b, zwi_strtab_index(&snap->strs, s), 4);
}

/* The payload of section `type` of `snap` into `b`. */
static void
encode(const zw_snapshot *snap, uint32_t type, zwi_cbuf *b)
{
    switch (type) {
    case ZWI_SEC_INFO: {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        zwi_cbuf_put(b, snap->traceback_limit, 4);
        zwi_cbuf_put(b, 0, 4);
        zwi_cbuf_put(b, snap->ntraces, 8);
        zwi_cbuf_put(b, (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec, 8);
        break;
    }
    case ZWI_SEC_STRINGS:
        zwi_cbuf_put(b, snap->strs.count, 4);
        for (size_t i = 0; i < snap->strs.count; i++) {
            size_t len = strlen(snap->strs.strs[i]);
            zwi_cbuf_put(b, len, 4);
            zwi_cbuf_bytes(b, snap->strs.strs[i], len);
        }
        break;
    case ZWI_SEC_MODULES:
        zwi_cbuf_put(b, snap->nmodules, 4);
        for (size_t i = 0; i < snap->nmodules; i++) {
            put_string_ref(b, snap, snap->modules[i].path);
            put_string_ref(b, snap, snap->modules[i].build_id);
            zwi_cbuf_put(b, snap->modules[i].bias, 8);
        }
        break;
    case ZWI_SEC_FRAMES:
        zwi_cbuf_put(b, snap->nframes, 4);
        for (size_t i = 0; i < snap->nframes; i++) {
            const zw_frame *f = &snap->frames[i]->pub;
            put_string_ref(b, snap, f->filename);
            zwi_cbuf_put(b, f->lineno, 4);
            put_string_ref(b, snap, f->function);
            put_string_ref(b, snap, f->module);
            zwi_cbuf_put(b, f->offset, 8);
            zwi_cbuf_put(b, f->inlined ? 1 : 0, 4);
        }
        break;
    case ZWI_SEC_TRACEBACKS:
        zwi_cbuf_put(b, snap->ntbs, 4);
        for (size_t i = 0; i < snap->ntbs; i++) {
            const zw_traceback *tb = snap->tbs[i];
            zwi_cbuf_put(b, tb->total_nframe, 4);
            zwi_cbuf_put(b, tb->nframe, 4);
            for (size_t k = 0; k < tb->nframe; k++)
                zwi_cbuf_put(b, ((const zwi_frame *)tb->frames[k])->index, 4);
        }
        break;
    case ZWI_SEC_TRACES:
        zwi_cbuf_put(b, snap->ntraces, 8);
        for (size_t i = 0; i < snap->ntraces; i++) {
            zwi_cbuf_put(b, snap->traces[i].domain, 4);
            zwi_cbuf_put(b, snap->traces[i].tb, 4);
            zwi_cbuf_put(b, snap->traces[i].size, 8);
        }
        break;
    }
}

static const struct {
    uint32_t type;
    uint32_t flags;
} snapshot_sections[] = {
    {ZWI_SEC_INFO, ZWI_SECTION_REQUIRED},
    {ZWI_SEC_STRINGS, ZWI_SECTION_REQUIRED},
    {ZWI_SEC_MODULES, 0},
    {ZWI_SEC_FRAMES, ZWI_SECTION_REQUIRED},
    {ZWI_SEC_TRACEBACKS, ZWI_SECTION_REQUIRED},
    {ZWI_SEC_TRACES, ZWI_SECTION_REQUIRED},
};
#define NSNAPSHOT_SECTIONS (sizeof(snapshot_sections) / sizeof(snapshot_sections[0]))

/* The whole file of `snap` at the end of `out`: every section compressed. */
static int
encode_file(const zw_snapshot *snap, zwi_cbuf *out)
{
    zwi_container_put_header(out, ZWI_KIND_SNAPSHOT, VERSION_MINOR, NSNAPSHOT_SECTIONS + 1);
    zwi_cbuf payload = {.raw = out->raw};
    for (size_t i = 0; i < NSNAPSHOT_SECTIONS && !out->failed; i++) {
        payload.len = 0;
        encode(snap, snapshot_sections[i].type, &payload);
        zwi_container_put_section(out, snapshot_sections[i].type, snapshot_sections[i].flags,
                                  &payload, true);
    }
    payload.len = 0;
    zwi_container_put_section(out, ZWI_SEC_END, ZWI_SECTION_REQUIRED, &payload, true);
    zwi_cbuf_release(&payload);
    return out->failed ? -1 : 0;
}

int
zw_snapshot_dump(const zw_snapshot *snap, const char *path, zw_error *err)
{
    int status = -1;
    zwi_cbuf out = {.raw = snap->raw};
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return zw_error_set(err, "cannot write snapshot '%s': path too long", path);
    if (encode_file(snap, &out) != 0) {
        zw_error_set(err, "cannot write snapshot '%s': %s", path, strerror(ENOMEM));
        goto out_release;
    }
    FILE *f = fopen(tmp, "wb");
    if (f == NULL) {
        zw_error_set(err, "cannot create '%s': %s", tmp, strerror(errno));
        goto out_release;
    }
    if (fwrite(out.data, 1, out.len, f) != out.len) {
        zw_error_set(err, "cannot write '%s': %s", tmp, strerror(errno));
        fclose(f);
        remove(tmp);
        goto out_release;
    }
    if (fclose(f) != 0) {
        zw_error_set(err, "cannot close '%s': %s", tmp, strerror(errno));
        remove(tmp);
        goto out_release;
    }
    if (rename(tmp, path) != 0) {
        zw_error_set(err, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
        remove(tmp);
        goto out_release;
    }
    status = 0;
out_release:
    zwi_cbuf_release(&out);
    return status;
}

int
zwi_snapshot_encode(const zw_snapshot *snap, zw_raw *raw, unsigned char **data, size_t *len)
{
    zwi_cbuf out = {.raw = raw};
    if (encode_file(snap, &out) != 0) {
        zwi_cbuf_release(&out);
        return -1;
    }
    *data = out.data;
    *len = out.len;
    return 0;
}

/* ---- a capture's shared table, packed (docs/format.md#captures, TABLE) ---- */

/* A string reference as a varint: its index, or index + 1 where it may be none (0). */
static void
put_vstring(zwi_cbuf *b, const zw_snapshot *snap, const char *s, bool nullable)
{
    uint32_t i = zwi_strtab_index(&snap->strs, s);
    zwi_cbuf_varint(b, nullable ? (i == NO_STRING ? 0 : (uint64_t)i + 1) : i);
}

/* The tables of `snap` without its traces, for a capture's TABLE section (capture_format.c): the
 * STRINGS, MODULES, FRAMES and TRACEBACKS of a snapshot with every integer a varint. */
void
zwi_snapshot_encode_tables(const zw_snapshot *snap, zwi_cbuf *b)
{
    zwi_cbuf_varint(b, snap->traceback_limit);
    zwi_cbuf_varint(b, snap->strs.count);
    for (size_t i = 0; i < snap->strs.count; i++) {
        size_t len = strlen(snap->strs.strs[i]);
        zwi_cbuf_varint(b, len);
        zwi_cbuf_bytes(b, snap->strs.strs[i], len);
    }
    zwi_cbuf_varint(b, snap->nmodules);
    for (size_t i = 0; i < snap->nmodules; i++) {
        put_vstring(b, snap, snap->modules[i].path, false);
        put_vstring(b, snap, snap->modules[i].build_id, true);
        zwi_cbuf_varint(b, snap->modules[i].bias);
    }
    zwi_cbuf_varint(b, snap->nframes);
    for (size_t i = 0; i < snap->nframes; i++) {
        const zw_frame *f = &snap->frames[i]->pub;
        put_vstring(b, snap, f->filename, false);
        zwi_cbuf_varint(b, f->lineno);
        put_vstring(b, snap, f->function, true);
        put_vstring(b, snap, f->module, true);
        zwi_cbuf_varint(b, f->offset);
        zwi_cbuf_varint(b, f->inlined ? 1 : 0);
    }
    zwi_cbuf_varint(b, snap->ntbs);
    for (size_t i = 0; i < snap->ntbs; i++) {
        const zw_traceback *tb = snap->tbs[i];
        zwi_cbuf_varint(b, tb->total_nframe);
        zwi_cbuf_varint(b, tb->nframe);
        for (size_t k = 0; k < tb->nframe; k++)
            zwi_cbuf_varint(b, ((const zwi_frame *)tb->frames[k])->index);
    }
}

/* ---- reading ---- */

typedef struct reader {
    zw_snapshot *snap; /* being filled */
    zwi_cursor cur;    /* the payload of the section being decoded */
    const char **strs; /* STRINGS by index (pointers into snap->strs) */
    size_t nstrs;
    size_t cap_strs;
    uint64_t ntraces_info; /* INFO's trace count, checked against TRACES */
} reader;

/* INFO's fields into `r` (r->snap may be NULL: the count alone is wanted); its limit, or -1. */
static int64_t
decode_info_fields(reader *r)
{
    uint32_t limit;
    uint32_t reserved;
    uint64_t created;
    if (zwi_get_u32(&r->cur, &limit) || zwi_get_u32(&r->cur, &reserved) ||
        zwi_get_u64(&r->cur, &r->ntraces_info) || zwi_get_u64(&r->cur, &created))
        return -1;
    return limit;
}

static int
decode_info(reader *r)
{
    int64_t limit = decode_info_fields(r);
    if (limit < 0)
        return -1;
    r->snap->traceback_limit = (unsigned)limit;
    return 0;
}

/* INFO for its trace count alone. */
static int
decode_info_count(reader *r)
{
    return decode_info_fields(r) < 0 ? -1 : 0;
}

static int
decode_traces(reader *r)
{
    size_t n = 0;
    if (zwi_get_count(&r->cur, 8, 16, "record", &n) != 0)
        return -1;
    if (n != r->ntraces_info)
        return zwi_cursor_fail(&r->cur, "trace count differs from the info section's");
    if (zwi_reserve(r->snap->raw, (void **)&r->snap->traces, &r->snap->cap_traces, n + 1,
                    sizeof(zwi_trace)) != 0)
        return zwi_cursor_fail(&r->cur, "out of memory");
    for (size_t i = 0; i < n; i++) {
        uint32_t domain;
        uint32_t tb;
        uint64_t size;
        if (zwi_get_u32(&r->cur, &domain) || zwi_get_u32(&r->cur, &tb) ||
            zwi_get_u64(&r->cur, &size))
            return -1;
        if (tb >= r->snap->ntbs)
            return zwi_cursor_fail(&r->cur, "traceback index out of range");
        r->snap->traces[r->snap->ntraces++] = (zwi_trace){domain, tb, size};
    }
    return 0;
}

/* ---- the packed tables ---- */

/* A string reference: NULL for "none" if `nullable` (fixed width: NO_STRING; varint: 0, the
 * others one more than their index). */
static int
read_string_as(reader *r, bool v, bool nullable, const char **s)
{
    uint64_t i = 0;
    *s = NULL;
    uint32_t x;
    if (v ? zwi_get_varint(&r->cur, &i) : zwi_get_u32(&r->cur, &x))
        return -1;
    if (!v)
        i = x == NO_STRING ? 0 : (uint64_t)x + 1;
    else if (!nullable)
        i++; /* a varint reference that cannot be none is the index itself */
    if (i == 0) {
        if (!nullable)
            return zwi_cursor_fail(&r->cur, "string index out of range");
        return 0;
    }
    if (i - 1 >= r->nstrs)
        return zwi_cursor_fail(&r->cur, "string index out of range");
    *s = r->strs[i - 1];
    return 0;
}

static int
decode_strings_as(reader *r, bool v)
{
    size_t n = 0;
    if (v ? zwi_get_count(&r->cur, 0, 1, "string", &n) : zwi_get_count(&r->cur, 4, 4, "record", &n))
        return -1;
    if (zwi_reserve(r->snap->raw, (void **)&r->strs, &r->cap_strs, n + 1, sizeof(char *)) != 0)
        return zwi_cursor_fail(&r->cur, "out of memory");
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        uint32_t len32;
        const unsigned char *p;
        if (v ? zwi_get_count(&r->cur, 0, 1, "string byte", &len) : zwi_get_u32(&r->cur, &len32))
            return -1;
        if (!v)
            len = len32;
        if (zwi_get_bytes(&r->cur, len, "string", &p) != 0)
            return -1;
        if (memchr(p, '\0', len) != NULL)
            return zwi_cursor_fail(&r->cur, "string with a NUL byte");
        uint32_t index;
        const char *s = zwi_strtab_add(&r->snap->strs, (const char *)p, len, &index);
        if (s == NULL)
            return zwi_cursor_fail(&r->cur, "out of memory");
        if (index != i)
            return zwi_cursor_fail(&r->cur, "string stored twice");
        r->strs[r->nstrs++] = s;
    }
    return 0;
}

static int
decode_modules_as(reader *r, bool v)
{
    size_t n = 0;
    if (v ? zwi_get_count(&r->cur, 0, 3, "module", &n) : zwi_get_count(&r->cur, 4, 16, "record", &n))
        return -1;
    for (size_t i = 0; i < n; i++) {
        const char *path = NULL;
        const char *id = NULL;
        uint64_t bias;
        if (read_string_as(r, v, false, &path) || read_string_as(r, v, true, &id) ||
            (v ? zwi_get_varint(&r->cur, &bias) : zwi_get_u64(&r->cur, &bias)))
            return -1;
        if (zwi_snapshot_add_module(r->snap, path, id, bias) != 0)
            return zwi_cursor_fail(&r->cur, "out of memory");
    }
    return 0;
}

/* The frame and traceback records of a snapshot (fixed-width fields) and of a capture's shared
 * table (varints) have the same fields in the same order: one decoder each, `v` picks the
 * encoding. */
static int
get_u32_as(reader *r, bool v, uint32_t *out)
{
    return v ? zwi_get_varint32(&r->cur, out) : zwi_get_u32(&r->cur, out);
}

static int
get_u64_as(reader *r, bool v, uint64_t *out)
{
    uint32_t x;
    if (v)
        return zwi_get_varint(&r->cur, out);
    if (zwi_get_u32(&r->cur, &x) != 0)
        return -1;
    *out = x;
    return 0;
}

static int
decode_frames_as(reader *r, bool v)
{
    size_t n = 0;
    if (v ? zwi_get_count(&r->cur, 0, 6, "frame", &n)
          : zwi_get_count(&r->cur, 4, FRAME_SIZE, "record", &n))
        return -1;
    for (size_t i = 0; i < n; i++) {
        zw_frame f;
        uint32_t lineno;
        uint64_t flags;
        if (read_string_as(r, v, false, &f.filename) || get_u32_as(r, v, &lineno) ||
            read_string_as(r, v, true, &f.function) || read_string_as(r, v, true, &f.module) ||
            (v ? zwi_get_varint(&r->cur, &f.offset) : zwi_get_u64(&r->cur, &f.offset)) ||
            get_u64_as(r, v, &flags))
            return -1;
        if (flags > 1)
            return zwi_cursor_fail(&r->cur, "unknown frame flags");
        f.lineno = lineno;
        f.inlined = flags & 1;
        zwi_frame *x = zwi_snapshot_frame(r->snap, &f);
        if (x == NULL)
            return zwi_cursor_fail(&r->cur, "out of memory");
        if (x->index != i)
            return zwi_cursor_fail(&r->cur, "frame stored twice");
    }
    return 0;
}

static int
decode_tracebacks_as(reader *r, bool v)
{
    size_t n = 0;
    if (v ? zwi_get_count(&r->cur, 0, 3, "traceback", &n) : zwi_get_count(&r->cur, 4, 8, "record", &n))
        return -1;
    const zw_frame **frames = NULL;
    size_t cap = 0;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        uint32_t total;
        size_t nframe = 0;
        if (get_u32_as(r, v, &total) ||
            (v ? zwi_get_count(&r->cur, 0, 1, "frame index", &nframe)
               : zwi_get_count(&r->cur, 4, 4, "record", &nframe))) {
            rc = -1;
            break;
        }
        if (nframe == 0 || nframe > UINT32_MAX) {
            rc = zwi_cursor_fail(&r->cur, "traceback without frames");
            break;
        }
        if (zwi_reserve(r->snap->raw, (void **)&frames, &cap, nframe, sizeof(*frames)) != 0) {
            rc = zwi_cursor_fail(&r->cur, "out of memory");
            break;
        }
        for (size_t k = 0; k < nframe && rc == 0; k++) {
            uint64_t idx;
            if (get_u64_as(r, v, &idx) != 0)
                rc = -1;
            else if (idx >= r->snap->nframes)
                rc = zwi_cursor_fail(&r->cur, "frame index out of range");
            else
                frames[k] = &r->snap->frames[idx]->pub;
        }
        if (rc != 0)
            break;
        zw_traceback *tb = zwi_snapshot_traceback(r->snap, frames, nframe, total);
        if (tb == NULL)
            rc = zwi_cursor_fail(&r->cur, "out of memory");
        else if (tb->index != i)
            rc = zwi_cursor_fail(&r->cur, "traceback stored twice");
    }
    zwi_free(r->snap->raw, frames);
    return rc;
}

static int
decode_strings(reader *r)
{
    return decode_strings_as(r, false);
}

static int
decode_modules(reader *r)
{
    return decode_modules_as(r, false);
}

static int
decode_frames(reader *r)
{
    return decode_frames_as(r, false);
}

static int
decode_tracebacks(reader *r)
{
    return decode_tracebacks_as(r, false);
}

/* A snapshot with the tables zwi_snapshot_encode_tables() wrote and no traces, read from `c`
 * (whose failure says why when NULL is returned). */
zw_snapshot *
zwi_snapshot_decode_tables(zwi_cursor *c)
{
    uint32_t limit;
    if (zwi_get_varint32(c, &limit))
        return NULL;
    reader r = {.snap = zw_snapshot_new(limit), .cur = *c};
    if (r.snap == NULL) {
        zwi_cursor_fail(c, "out of memory");
        return NULL;
    }
    r.cur.raw = r.snap->raw;
    int rc = decode_strings_as(&r, true);
    if (rc == 0)
        rc = decode_modules_as(&r, true);
    if (rc == 0)
        rc = decode_frames_as(&r, true);
    if (rc == 0)
        rc = decode_tracebacks_as(&r, true);
    zw_raw *raw = c->raw;
    *c = r.cur; /* where it stopped, and why */
    c->raw = raw;
    zwi_free(r.snap->raw, r.strs);
    if (rc != 0) {
        zw_snapshot_free(r.snap);
        return NULL;
    }
    return r.snap;
}

/* A capture's TABLE in the packed form (1.6, docs/format.md#the-packed-form): the strings as the
 * varint TABLE's; the modules' build-ids inline (binary, or text); the frames by column; each
 * traceback as the frames it shares with the one before and the frames it adds. Read from `c`
 * into a snapshot with no traces (whose failure says why when NULL is returned). */
static int
decode_packed_modules(reader *r)
{
    size_t n = 0;
    if (zwi_get_count(&r->cur, 0, 3, "module", &n) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const char *path = NULL;
        uint64_t id;
        uint64_t bias;
        const unsigned char *p = NULL;
        size_t len = 0;
        if (read_string_as(r, true, false, &path) || zwi_get_varint(&r->cur, &id))
            return -1;
        if (id != 0) {
            len = (size_t)((id - 1) >> 1);
            if ((id - 1) >> 1 > r->cur.len - r->cur.pos)
                return zwi_cursor_fail(&r->cur, "truncated build-id");
            if (zwi_get_bytes(&r->cur, len, "build-id", &p) != 0)
                return -1;
        }
        if (zwi_get_varint(&r->cur, &bias) != 0)
            return -1;
        bool binary = id != 0 && ((id - 1) & 1) != 0;
        char *text = NULL;
        if (id != 0) {
            if (!binary && memchr(p, '\0', len) != NULL)
                return zwi_cursor_fail(&r->cur, "build-id with a NUL byte");
            text = zwi_alloc(r->snap->raw, (binary ? 2 * len : len) + 1);
            if (text == NULL)
                return zwi_cursor_fail(&r->cur, "out of memory");
            for (size_t k = 0; binary && k < len; k++) {
                text[2 * k] = "0123456789abcdef"[p[k] >> 4];
                text[2 * k + 1] = "0123456789abcdef"[p[k] & 15];
            }
            if (!binary)
                memcpy(text, p, len);
            text[binary ? 2 * len : len] = '\0';
        }
        int rc = zwi_snapshot_add_module(r->snap, path, text, bias);
        zwi_free(r->snap->raw, text);
        if (rc != 0)
            return zwi_cursor_fail(&r->cur, "out of memory");
    }
    return 0;
}

/* The frames' six columns: module (string + 1), offset (signed difference from the frame
 * before's), filename (string), lineno, function (string + 1), flags. */
static int
decode_packed_frames(reader *r)
{
    size_t n = 0;
    if (zwi_get_count(&r->cur, 0, 6, "frame", &n) != 0)
        return -1;
    zw_frame *f = zwi_alloc(r->snap->raw, (n + 1) * sizeof(*f));
    if (f == NULL)
        return zwi_cursor_fail(&r->cur, "out of memory");
    int rc = 0;
    uint64_t offset = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = read_string_as(r, true, true, &f[i].module);
    for (size_t i = 0; i < n && rc == 0; i++) {
        uint64_t d;
        rc = zwi_get_varint(&r->cur, &d);
        offset += (uint64_t)zwi_unzigzag(d);
        f[i].offset = offset;
    }
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = read_string_as(r, true, false, &f[i].filename);
    for (size_t i = 0; i < n && rc == 0; i++) {
        uint32_t lineno;
        rc = zwi_get_varint32(&r->cur, &lineno);
        f[i].lineno = lineno;
    }
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = read_string_as(r, true, true, &f[i].function);
    for (size_t i = 0; i < n && rc == 0; i++) {
        uint64_t flags;
        rc = zwi_get_varint(&r->cur, &flags);
        if (rc == 0 && flags > 1)
            rc = zwi_cursor_fail(&r->cur, "unknown frame flags");
        f[i].inlined = flags & 1;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        zwi_frame *x = zwi_snapshot_frame(r->snap, &f[i]);
        if (x == NULL)
            rc = zwi_cursor_fail(&r->cur, "out of memory");
        else if (x->index != i)
            rc = zwi_cursor_fail(&r->cur, "frame stored twice");
    }
    zwi_free(r->snap->raw, f);
    return rc;
}

/* Each traceback: varint shared (its oldest frames that are the traceback before's), varint
 * fresh (the frames after them, at least one in all), signed varint total_nframe - nframe, then
 * the fresh frames' indices. */
static int
decode_packed_tracebacks(reader *r)
{
    size_t n = 0;
    if (zwi_get_count(&r->cur, 0, 3, "traceback", &n) != 0)
        return -1;
    const zw_frame **prev = NULL; /* the traceback before's frames, then this one's */
    size_t nprev = 0;
    size_t cap = 0;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        uint64_t shared = 0; /* needs no byte: checked against the traceback before */
        size_t fresh = 0;
        uint64_t extra;
        if (zwi_get_varint(&r->cur, &shared) ||
            zwi_get_count(&r->cur, 0, 1, "frame index", &fresh) ||
            zwi_get_varint(&r->cur, &extra)) {
            rc = -1;
            break;
        }
        if (shared > nprev) {
            rc = zwi_cursor_fail(&r->cur, "more frames shared than the traceback before has");
            break;
        }
        size_t nframe = (size_t)shared + fresh;
        int64_t more = zwi_unzigzag(extra);
        if (nframe == 0 || nframe > UINT32_MAX) {
            rc = zwi_cursor_fail(&r->cur, "traceback without frames");
            break;
        }
        int64_t total =
            more > -(int64_t)UINT32_MAX && more < (int64_t)UINT32_MAX ? (int64_t)nframe + more : -1;
        if (total < 0 || total > UINT32_MAX) {
            rc = zwi_cursor_fail(&r->cur, "total frame count out of range");
            break;
        }
        if (zwi_reserve(r->snap->raw, (void **)&prev, &cap, nframe, sizeof(*prev)) != 0) {
            rc = zwi_cursor_fail(&r->cur, "out of memory");
            break;
        }
        for (size_t k = (size_t)shared; k < nframe && rc == 0; k++) {
            uint64_t idx;
            if (zwi_get_varint(&r->cur, &idx) != 0)
                rc = -1;
            else if (idx >= r->snap->nframes)
                rc = zwi_cursor_fail(&r->cur, "frame index out of range");
            else
                prev[k] = &r->snap->frames[idx]->pub;
        }
        if (rc != 0)
            break;
        nprev = nframe;
        zw_traceback *tb = zwi_snapshot_traceback(r->snap, prev, nframe, (size_t)total);
        if (tb == NULL)
            rc = zwi_cursor_fail(&r->cur, "out of memory");
        else if (tb->index != i)
            rc = zwi_cursor_fail(&r->cur, "traceback stored twice");
    }
    zwi_free(r->snap->raw, prev);
    return rc;
}

zw_snapshot *
zwi_snapshot_decode_packed_tables(zwi_cursor *c)
{
    uint32_t limit;
    if (zwi_get_varint32(c, &limit))
        return NULL;
    reader r = {.snap = zw_snapshot_new(limit), .cur = *c};
    if (r.snap == NULL) {
        zwi_cursor_fail(c, "out of memory");
        return NULL;
    }
    r.cur.raw = r.snap->raw;
    int rc = decode_strings_as(&r, true);
    if (rc == 0)
        rc = decode_packed_modules(&r);
    if (rc == 0)
        rc = decode_packed_frames(&r);
    if (rc == 0)
        rc = decode_packed_tracebacks(&r);
    zw_raw *raw = c->raw;
    *c = r.cur; /* where it stopped, and why */
    c->raw = raw;
    zwi_free(r.snap->raw, r.strs);
    if (rc != 0) {
        zw_snapshot_free(r.snap);
        return NULL;
    }
    return r.snap;
}

/* The decoder of each section type, in the order the sections come. */
static int (*const decoders[])(reader *r) = {
    [ZWI_SEC_INFO] = decode_info,
    [ZWI_SEC_STRINGS] = decode_strings,
    [ZWI_SEC_MODULES] = decode_modules,
    [ZWI_SEC_FRAMES] = decode_frames,
    [ZWI_SEC_TRACEBACKS] = decode_tracebacks,
    [ZWI_SEC_TRACES] = decode_traces,
};

/* The sections of a snapshot come in the order of their types (1 to 6), each once; MODULES may be
 * missing. */
static bool
in_order(uint32_t type, uint32_t last)
{
    return type == last + 1 || (type == ZWI_SEC_FRAMES && last == ZWI_SEC_STRINGS);
}

/* The sections after the header, into r->snap. */
static int
read_sections(zwi_container *c, reader *r)
{
    uint32_t last = 0; /* the type of the last section read, 0 before INFO */
    int rc;
    while ((rc = zwi_container_next(c)) == 1) {
        if (!in_order(c->type, last))
            return zwi_container_fail(c,
                                      "section %zu (%s) at offset %zu is out of order, repeated, "
                                      "or follows a missing section",
                                      c->index, zwi_section_name(c->type), c->offset);
        last = c->type;
        ZW_ASSERT(last < sizeof(decoders) / sizeof(decoders[0])); /* the container passes 1..6 */
        if (zwi_container_payload(c, &r->cur, r->snap->raw) != 0 ||
            zwi_container_decoded(c, &r->cur, decoders[c->type](r)) != 0)
            return -1;
    }
    if (rc == 0 && last < ZWI_SEC_TRACES)
        return zwi_container_fail(c, "section %s missing before the end section at offset %zu",
                                  zwi_section_name(last < ZWI_SEC_STRINGS  ? last + 1
                                                   : last < ZWI_SEC_FRAMES ? ZWI_SEC_FRAMES
                                                                           : last + 1),
                                  c->offset);
    return rc;
}

/* Reads a snapshot from `len` bytes; `name` NULL gives messages without the "cannot read" prefix
 * (a snapshot embedded in a capture). */
static zw_snapshot *
load(const unsigned char *data, size_t len, const char *name, zw_error *err)
{
    reader r = {0};
    zwi_container c;
    zw_snapshot *snap = zw_snapshot_new(0);
    if (snap == NULL) {
        zw_error_set(err, "cannot read snapshot '%s': %s", name != NULL ? name : "<memory>",
                     strerror(ENOMEM));
        return NULL;
    }
    r.snap = snap;
    int rc = zwi_container_open(&c, data, len, ZWI_KIND_SNAPSHOT, name, snap->raw, err);
    if (rc == 0)
        rc = read_sections(&c, &r);
    zwi_container_release(&c);
    zwi_free(snap->raw, r.strs);
    if (rc != 0) {
        zw_snapshot_free(snap);
        return NULL;
    }
    return snap;
}

/* ---- the traces alone ---- */

/* What zwi_snapshot_each_trace() passes each trace to. */
typedef struct each_trace {
    void (*fn)(void *ctx, uint32_t domain, uint64_t size);
    void *ctx;
} each_trace;

/* TRACES without the tracebacks to check its indices against: each trace to `e`. */
static int
pass_traces(zwi_cursor *cur, uint64_t ntraces_info, const each_trace *e)
{
    size_t n = 0;
    if (zwi_get_count(cur, 8, 16, "record", &n) != 0)
        return -1;
    if (n != ntraces_info)
        return zwi_cursor_fail(cur, "trace count differs from the info section's");
    for (size_t i = 0; i < n; i++) {
        uint32_t domain;
        uint32_t tb;
        uint64_t size;
        if (zwi_get_u32(cur, &domain) || zwi_get_u32(cur, &tb) || zwi_get_u64(cur, &size))
            return -1;
        e->fn(e->ctx, domain, size);
    }
    return 0;
}

int
zwi_snapshot_each_trace(const void *data, size_t len,
                        void (*fn)(void *ctx, uint32_t domain, uint64_t size), void *ctx,
                        zw_error *err)
{
    zw_raw *raw = zw_raw_new(NULL);
    if (raw == NULL)
        return zw_error_set(err, "%s", strerror(ENOMEM));
    each_trace e = {fn, ctx};
    reader r = {0}; /* INFO's count; no snapshot is built */
    zwi_container c;
    int rc = zwi_container_open(&c, data, len, ZWI_KIND_SNAPSHOT, NULL, raw, err);
    uint32_t last = 0;
    while (rc == 0 && (rc = zwi_container_next(&c)) == 1) {
        rc = 0;
        if (!in_order(c.type, last)) {
            rc = zwi_container_fail(&c,
                                    "section %zu (%s) at offset %zu is out of order, repeated, "
                                    "or follows a missing section",
                                    c.index, zwi_section_name(c.type), c.offset);
            break;
        }
        last = c.type;
        if (last != ZWI_SEC_INFO && last != ZWI_SEC_TRACES)
            continue; /* the tables: not even decompressed */
        if (zwi_container_payload(&c, &r.cur, raw) != 0) {
            rc = -1;
            break;
        }
        int got = last == ZWI_SEC_TRACES ? pass_traces(&r.cur, r.ntraces_info, &e)
                                         : decode_info_count(&r);
        rc = zwi_container_decoded(&c, &r.cur, got);
    }
    if (rc == 0 && last < ZWI_SEC_TRACES)
        rc = zwi_container_fail(&c, "section %s missing before the end section at offset %zu",
                                zwi_section_name(last < ZWI_SEC_STRINGS  ? last + 1
                                                 : last < ZWI_SEC_FRAMES ? ZWI_SEC_FRAMES
                                                                         : last + 1),
                                c.offset);
    zwi_container_release(&c);
    zw_raw_destroy(raw);
    return rc;
}

zw_snapshot *
zw_snapshot_load_memory(const void *data, size_t len, zw_error *err)
{
    return load(data, len, "<memory>", err);
}

zw_snapshot *
zwi_snapshot_decode(const void *data, size_t len, zw_error *err)
{
    return load(data, len, NULL, err);
}

zw_snapshot *
zw_snapshot_load(const char *path, zw_error *err)
{
    zw_raw *raw = zw_raw_new(NULL);
    if (raw == NULL) {
        zw_error_set(err, "cannot read '%s': %s", path, strerror(ENOMEM));
        return NULL;
    }
    zwi_cbuf file = {.raw = raw};
    zw_snapshot *snap = NULL;
    if (zwi_read_file(path, &file, err) == 0)
        snap = load(file.data, file.len, path, err);
    zwi_cbuf_release(&file);
    zw_raw_destroy(raw);
    return snap;
}
