/* trace/snapshot.c - snapshots: traces (domain, size, traceback) over tracebacks and frames each
 * stored once, built from a tracer (copy the table shard by shard, then symbolise each distinct
 * return address once) or from raw frames (zw_snapshot_add_trace, the tests' fixtures); their
 * accessors, the textual forms of tracemalloc (str(frame), str(trace), Traceback.format) and
 * filter_traces. Statistics are in stats.c, files in format.c. See docs/trace.md#snapshots. */
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "trace_internal.h"

/* ---- life cycle ---- */

zw_snapshot *
zw_snapshot_new(unsigned traceback_limit)
{
    zw_raw *raw = zw_raw_new(NULL);
    return raw != NULL ? zwi_snapshot_new_on(traceback_limit, raw) : NULL;
}

zw_snapshot *
zwi_snapshot_new_on(unsigned traceback_limit, zw_raw *raw)
{
    zw_snapshot *snap = zwi_alloc(raw, sizeof(*snap));
    if (snap == NULL) {
        zw_raw_destroy(raw);
        return NULL;
    }
    memset(snap, 0, sizeof(*snap));
    snap->raw = raw;
    snap->traceback_limit = traceback_limit;
    zwi_strtab_init(&snap->strs, raw);
    zwi_map_init(&snap->frame_map, raw);
    zwi_map_init(&snap->tb_map, raw);
    return snap;
}

void
zwi_snapshot_abandon(zw_snapshot *snap)
{
    if (snap != NULL)
        zw_raw_destroy(snap->raw);
}

void
zw_snapshot_free(zw_snapshot *snap)
{
    if (snap == NULL)
        return;
    zw_raw *raw = snap->raw;
    for (size_t i = 0; i < snap->nframes; i++)
        zwi_free(raw, snap->frames[i]);
    for (size_t i = 0; i < snap->ntbs; i++) {
        zwi_free(raw, snap->tbs[i]->frames);
        zwi_free(raw, snap->tbs[i]);
    }
    zwi_free(raw, snap->frames);
    zwi_free(raw, snap->tbs);
    zwi_free(raw, snap->traces);
    zwi_free(raw, snap->modules);
    zwi_map_release(&snap->frame_map);
    zwi_map_release(&snap->tb_map);
    zwi_strtab_release(&snap->strs);
    zwi_free(raw, snap);
    zw_raw_destroy(raw);
}

/* ---- frames, tracebacks, traces ---- */

static uint64_t
frame_hash(const zw_frame *f)
{
    /* strings are interned: their pointers stand for their contents */
    uintptr_t w[6] = {(uintptr_t)f->filename, f->lineno,
                      (uintptr_t)f->function, (uintptr_t)f->module,
                      (uintptr_t)f->offset,   f->inlined};
    uint64_t h = zwi_hash_bytes(w, sizeof(w), 0x51);
    return h == 0 ? 1 : h;
}

zwi_frame *
zwi_snapshot_frame(zw_snapshot *snap, const zw_frame *f)
{
    zw_frame key;
    memset(&key, 0, sizeof(key)); /* padding too: frames are compared with memcmp */
    key.lineno = f->lineno;
    key.offset = f->offset;
    key.inlined = f->inlined;
    key.filename = zwi_strtab_intern(&snap->strs, f->filename);
    key.function = zwi_strtab_intern(&snap->strs, f->function);
    key.module = zwi_strtab_intern(&snap->strs, f->module);
    if (key.filename == NULL || (f->function != NULL && key.function == NULL) ||
        (f->module != NULL && key.module == NULL))
        return NULL;
    uint64_t h = frame_hash(&key);
    zwi_frame *head = zwi_map_get(&snap->frame_map, h);
    for (zwi_frame *x = head; x != NULL; x = x->next) {
        if (memcmp(&x->pub, &key, sizeof(key)) == 0)
            return x;
    }
    if (snap->nframes >= UINT32_MAX ||
        zwi_reserve(snap->raw, (void **)&snap->frames, &snap->cap_frames, snap->nframes + 1,
                    sizeof(zwi_frame *)) != 0)
        return NULL;
    zwi_frame *x = zwi_alloc(snap->raw, sizeof(*x));
    if (x == NULL)
        return NULL;
    memset(x, 0, sizeof(*x)); /* padding too: frames are compared with memcmp */
    x->pub = key;
    x->index = (uint32_t)snap->nframes;
    x->hash = h;
    x->next = head;
    if (zwi_map_put(&snap->frame_map, h, x) != 0) {
        zwi_free(snap->raw, x);
        return NULL;
    }
    snap->frames[snap->nframes++] = x;
    return x;
}

/* A traceback's key in tb_map: its frames' addresses (interned: equal frames, equal pointers) a
 * word at a time. Byte at a time it was a sixth of the end of a capture's conversion of cc1plus's
 * 95k tracebacks (3.9M frames). */
static uint64_t
frames_hash(const zw_frame **frames, size_t n, size_t total_nframe)
{
    uint64_t h = 0x51ed27f5a3c1b9d7ULL ^ total_nframe;
    for (size_t i = 0; i < n; i++)
        h = (((h << 5) | (h >> 59)) ^ (uint64_t)(uintptr_t)frames[i]) * 0x517cc1b727220a95ULL;
    h ^= h >> 29;
    return h == 0 ? 1 : h;
}

zw_traceback *
zwi_snapshot_traceback(zw_snapshot *snap, const zw_frame **frames, size_t n, size_t total_nframe)
{
    uint64_t h = frames_hash(frames, n, total_nframe);
    zw_traceback *head = zwi_map_get(&snap->tb_map, h);
    for (zw_traceback *x = head; x != NULL; x = x->next) {
        if (x->nframe == n && x->total_nframe == total_nframe &&
            memcmp(x->frames, frames, n * sizeof(*frames)) == 0)
            return x;
    }
    if (n > UINT32_MAX || total_nframe > UINT32_MAX || snap->ntbs >= UINT32_MAX ||
        zwi_reserve(snap->raw, (void **)&snap->tbs, &snap->cap_tbs, snap->ntbs + 1,
                    sizeof(zw_traceback *)) != 0)
        return NULL;
    zw_traceback *tb = zwi_alloc(snap->raw, sizeof(*tb));
    if (tb == NULL)
        return NULL;
    memset(tb, 0, sizeof(*tb));
    tb->frames = zwi_alloc(snap->raw, n * sizeof(*frames));
    if (tb->frames == NULL) {
        zwi_free(snap->raw, tb);
        return NULL;
    }
    memcpy(tb->frames, frames, n * sizeof(*frames));
    tb->nframe = (uint32_t)n;
    tb->total_nframe = (uint32_t)total_nframe;
    tb->index = (uint32_t)snap->ntbs;
    tb->hash = h;
    tb->next = head;
    if (zwi_map_put(&snap->tb_map, h, tb) != 0) {
        zwi_free(snap->raw, tb->frames);
        zwi_free(snap->raw, tb);
        return NULL;
    }
    snap->tbs[snap->ntbs++] = tb;
    return tb;
}

int
zwi_snapshot_push(zw_snapshot *snap, unsigned domain, uint64_t size, const zw_traceback *tb)
{
    if (zwi_reserve(snap->raw, (void **)&snap->traces, &snap->cap_traces, snap->ntraces + 1,
                    sizeof(zwi_trace)) != 0)
        return -1;
    snap->traces[snap->ntraces++] = (zwi_trace){domain, tb->index, size};
    return 0;
}

int
zwi_snapshot_add_module(zw_snapshot *snap, const char *path, const char *build_id, uint64_t bias)
{
    path = zwi_strtab_intern(&snap->strs, path);
    const char *id = zwi_strtab_intern(&snap->strs, build_id);
    if (path == NULL || (build_id != NULL && id == NULL))
        return -1;
    for (size_t i = 0; i < snap->nmodules; i++) {
        if (snap->modules[i].path == path)
            return 0;
    }
    if (zwi_reserve(snap->raw, (void **)&snap->modules, &snap->cap_modules, snap->nmodules + 1,
                    sizeof(zwi_module)) != 0)
        return -1;
    snap->modules[snap->nmodules++] = (zwi_module){path, id, bias};
    return 0;
}

int
zw_snapshot_add_trace(zw_snapshot *snap, unsigned domain, size_t size, const char *const *filenames,
                      const unsigned *linenos, size_t nframe, size_t total_nframe, zw_error *err)
{
    if (nframe == 0 || nframe > UINT16_MAX)
        return zw_error_set(err, "a trace needs 1 to %u frames, not %zu", UINT16_MAX, nframe);
    for (size_t i = 0; i < nframe; i++) {
        if (filenames[i] == NULL)
            return zw_error_set(err, "frame %zu of the trace has no filename", i);
    }
    int status = -1;
    const zw_frame **frames = zwi_alloc(snap->raw, nframe * sizeof(*frames));
    if (frames == NULL)
        goto out;
    for (size_t i = 0; i < nframe; i++) {
        zw_frame f = {.filename = filenames[i], .lineno = linenos[i]};
        zwi_frame *x = zwi_snapshot_frame(snap, &f);
        if (x == NULL)
            goto out_release;
        frames[nframe - 1 - i] = &x->pub; /* given most recent first, stored oldest first */
    }
    zw_traceback *tb = zwi_snapshot_traceback(snap, frames, nframe, total_nframe);
    if (tb != NULL && zwi_snapshot_push(snap, domain, size, tb) == 0)
        status = 0;
out_release:
    zwi_free(snap->raw, frames);
out:
    if (status != 0)
        zw_error_set(err, "cannot add a trace: %s", strerror(ENOMEM));
    return status;
}

/* ---- from a tracer ---- */

typedef struct builder {
    zw_snapshot *snap;
    zwi_tracer *t;
    zwi_symbolizer *sym;
    zwi_trace_rec *recs; /* copied under the shard locks */
    size_t nrecs;
    size_t cap;
    /* tracer traceback ref -> 1 + the index of its snapshot traceback, or 0: refs are dense,
     * and a table built ahead looks every site's up at the end (in the order of the refs) */
    uint32_t *of_ref;
    size_t nof_ref;
    const zw_frame **buf; /* frames of one traceback being built */
    size_t cap_buf;
    /* each return address converted once: address + 1 -> 1 + the offset in `conv` of its frames
     * (their count, then the frames, innermost function last), its modules added already */
    zwi_map by_addr;
    uintptr_t *conv;
    size_t nconv;
    size_t cap_conv;
    /* the traceback converted last: its return addresses (nlast of them at `last`, most recent
     * first; nlast SIZE_MAX: none), and cum[k] = the frames its oldest k return addresses gave
     * (the first cum[k] of `buf`, which still holds them). The next one shares its oldest return
     * addresses more often than not: those are not looked up again. `raw` receives the return
     * addresses of the one being converted (the two swap); each has room for the tracer's limit */
    uintptr_t *raw;
    uintptr_t *last;
    size_t nlast;
    size_t *cum;
    size_t cap_cum;
    const char *last_module; /* the module convert_address() added last (a symboliser string) */
    /* with keep_idx (a table builder): the frames' indices of the snapshot's tracebacks
     * [0, idx_tbs), one after the other, and their shapes (2 each: frames kept, frames in all),
     * kept as each is made (the packed encoding wants them, and reading them through the
     * tracebacks and their frames at the end is a cache miss each); idx_tbs stops short of the
     * snapshot's count if a traceback came from elsewhere */
    bool keep_idx;
    uint32_t *idx;
    size_t nidx;
    size_t cap_idx;
    uint32_t *shape;
    size_t cap_shape;
    size_t idx_tbs;
} builder;

static void
builder_init(builder *b, zw_snapshot *snap, zwi_tracer *t, zwi_symbolizer *sym)
{
    *b = (builder){.snap = snap, .t = t, .sym = sym, .nlast = SIZE_MAX};
    zwi_map_init(&b->by_addr, snap->raw);
}

static void
builder_release(builder *b)
{
    zw_raw *raw = b->snap->raw;
    zwi_free(raw, b->recs);
    zwi_free(raw, b->buf);
    zwi_free(raw, b->conv);
    zwi_free(raw, b->cum);
    zwi_free(raw, b->raw);
    zwi_free(raw, b->last);
    zwi_free(raw, b->idx);
    zwi_free(raw, b->shape);
    zwi_free(raw, b->of_ref);
    zwi_map_release(&b->by_addr);
}

static int
copy_rec(void *ctx, const zwi_trace_rec *rec)
{
    builder *b = ctx;
    if (zwi_reserve(b->snap->raw, (void **)&b->recs, &b->cap, b->nrecs + 1, sizeof(*rec)) != 0)
        return -1;
    b->recs[b->nrecs++] = *rec;
    return 0;
}

/* The snapshot's frames of return address `pc` (the function holding the code, then the ones
 * inlined in it), converted the first time: *n of them, at the returned pointer, valid until the
 * next call. NULL if out of memory. */
static const uintptr_t *
convert_address(builder *b, uintptr_t pc, size_t *n)
{
    uint64_t key = (uint64_t)pc + 1;
    uintptr_t at = key != 0 ? (uintptr_t)zwi_map_get(&b->by_addr, key) : 0;
    if (at != 0) {
        *n = b->conv[at - 1];
        return &b->conv[at];
    }
    size_t nsym;
    const zwi_sym *syms = zwi_symbolize(b->sym, pc, &nsym);
    if (syms == NULL ||
        zwi_reserve(b->snap->raw, (void **)&b->conv, &b->cap_conv, b->nconv + 1 + nsym,
                    sizeof(*b->conv)) != 0)
        return NULL;
    size_t start = b->nconv;
    b->conv[start] = nsym;
    for (size_t k = nsym, i = start + 1; k-- > 0; i++) {
        const zwi_sym *s = &syms[k];
        zw_frame f = {
            .filename = s->file != NULL     ? s->file
                        : s->module != NULL ? s->module
                                            : "<unknown>",
            .lineno = s->file != NULL ? s->line : 0,
            .function = s->function,
            .module = s->module,
            .offset = s->offset,
            .inlined = s->inlined,
        };
        zwi_frame *x = zwi_snapshot_frame(b->snap, &f);
        if (x == NULL)
            return NULL;
        if (s->module != NULL && s->module != b->last_module) {
            if (zwi_snapshot_add_module(b->snap, s->module, s->build_id, s->bias) != 0)
                return NULL;
            b->last_module = s->module;
        }
        b->conv[i] = (uintptr_t)&x->pub;
    }
    if (key != 0 && zwi_map_put(&b->by_addr, key, (void *)(start + 1)) != 0)
        return NULL;
    b->nconv = start + 1 + nsym;
    *n = nsym;
    return &b->conv[start + 1];
}

/* The snapshot's traceback for tracer traceback `ref`: symbolised frames, oldest first. */
static zw_traceback *
convert_traceback(builder *b, uint32_t ref)
{
    uint32_t known = ref < b->nof_ref ? b->of_ref[ref] : 0;
    if (known != 0)
        return b->snap->tbs[known - 1];
    if (ref >= b->nof_ref) {
        size_t n = b->nof_ref < 1024 ? 1024 : b->nof_ref;
        while (n <= ref)
            n *= 2;
        uint32_t *grown = zwi_realloc(b->snap->raw, b->of_ref, n * sizeof(*grown));
        if (grown == NULL)
            return NULL;
        memset(grown + b->nof_ref, 0, (n - b->nof_ref) * sizeof(*grown));
        b->of_ref = grown;
        b->nof_ref = n;
    }
    if (b->raw == NULL) {
        size_t limit = zwi_tracer_nframe(b->t);
        b->raw = zwi_alloc(b->snap->raw, limit * sizeof(*b->raw));
        b->last = zwi_alloc(b->snap->raw, limit * sizeof(*b->last));
        if (b->raw == NULL || b->last == NULL)
            return NULL;
    }
    unsigned total;
    size_t nraw = zwi_tracer_tb(b->t, ref, b->raw, &total);
    const uintptr_t *raw = b->raw;
    size_t nlast = b->nlast;
    b->nlast = SIZE_MAX; /* until `buf` and `cum` hold this one */
    size_t shared = 0;   /* oldest return addresses that are the last traceback's */
    while (nlast != SIZE_MAX && shared < nraw && shared < nlast &&
           raw[nraw - 1 - shared] == b->last[nlast - 1 - shared])
        shared++;
    if (zwi_reserve(b->snap->raw, (void **)&b->cum, &b->cap_cum, nraw + 1, sizeof(*b->cum)) != 0)
        return NULL;
    size_t n = shared > 0 ? b->cum[shared] : 0; /* cum[0..shared] are the last one's too */
    b->cum[0] = 0;
    for (size_t i = nraw - shared; i-- > 0;) { /* oldest captured frame first */
        size_t nf;
        const uintptr_t *frames = convert_address(b, raw[i], &nf);
        if (frames == NULL ||
            zwi_reserve(b->snap->raw, (void **)&b->buf, &b->cap_buf, n + nf, sizeof(*b->buf)) != 0)
            return NULL;
        for (size_t k = 0; k < nf; k++)
            b->buf[n++] = (const zw_frame *)frames[k];
        b->cum[nraw - i] = n;
    }
    b->raw = b->last; /* this one is the last one now */
    b->last = (uintptr_t *)raw;
    b->nlast = nraw;
    size_t made = b->snap->ntbs;
    zw_traceback *tb = zwi_snapshot_traceback(b->snap, b->buf, n, total);
    if (tb == NULL || tb->index >= UINT32_MAX)
        return NULL;
    b->of_ref[ref] = (uint32_t)tb->index + 1;
    if (b->keep_idx && b->snap->ntbs != made && b->idx_tbs == made) {
        if (zwi_reserve(b->snap->raw, (void **)&b->idx, &b->cap_idx, b->nidx + n,
                        sizeof(*b->idx)) != 0 ||
            zwi_reserve(b->snap->raw, (void **)&b->shape, &b->cap_shape, 2 * b->idx_tbs + 2,
                        sizeof(*b->shape)) != 0)
            return NULL;
        b->shape[2 * b->idx_tbs] = (uint32_t)tb->nframe;
        b->shape[2 * b->idx_tbs + 1] = (uint32_t)tb->total_nframe;
        for (size_t k = 0; k < n; k++)
            b->idx[b->nidx++] = ((const zwi_frame *)b->buf[k])->index;
        b->idx_tbs++;
    }
    return tb;
}

zw_snapshot *
zwi_snapshot_from_tracer(zwi_tracer *t, zwi_symbolizer *sym, zw_error *err)
{
    zw_snapshot *snap = zw_snapshot_new(zwi_tracer_nframe(t));
    if (snap == NULL) {
        zw_error_set(err, "cannot take a snapshot: %s", strerror(ENOMEM));
        return NULL;
    }
    builder b;
    builder_init(&b, snap, t, sym);
    int rc = zwi_tracer_foreach(t, copy_rec, &b);
    for (size_t i = 0; rc == 0 && i < b.nrecs; i++) {
        zw_traceback *tb = convert_traceback(&b, b.recs[i].tb);
        if (tb == NULL || zwi_snapshot_push(snap, b.recs[i].domain, b.recs[i].size, tb) != 0)
            rc = -1;
    }
    builder_release(&b);
    if (rc != 0) {
        zw_snapshot_free(snap);
        zw_error_set(err, "cannot take a snapshot: %s", strerror(ENOMEM));
        return NULL;
    }
    return snap;
}

zw_traceback *
zwi_traceback_from_tracer(zwi_tracer *t, zwi_symbolizer *sym, uint32_t ref)
{
    zw_snapshot *snap = zw_snapshot_new(zwi_tracer_nframe(t));
    if (snap == NULL)
        return NULL;
    builder b;
    builder_init(&b, snap, t, sym);
    zw_traceback *tb = convert_traceback(&b, ref);
    builder_release(&b);
    if (tb == NULL) {
        zw_snapshot_free(snap);
        return NULL;
    }
    tb->standalone = snap;
    return tb;
}

void
zw_traceback_free(zw_traceback *tb)
{
    if (tb != NULL && tb->standalone != NULL)
        zw_snapshot_free(tb->standalone);
}

/* ---- accessors ---- */

size_t
zw_snapshot_len(const zw_snapshot *snap)
{
    return snap->ntraces;
}

zw_trace_info
zw_snapshot_trace(const zw_snapshot *snap, size_t i)
{
    const zwi_trace *t = &snap->traces[i];
    return (zw_trace_info){t->domain, (size_t)t->size, snap->tbs[t->tb]};
}

unsigned
zw_snapshot_traceback_limit(const zw_snapshot *snap)
{
    return snap->traceback_limit;
}

size_t
zw_traceback_len(const zw_traceback *tb)
{
    return tb->nframe;
}

const zw_frame *
zw_traceback_frame(const zw_traceback *tb, size_t i)
{
    return i < tb->nframe ? tb->frames[i] : NULL;
}

size_t
zw_traceback_total_nframe(const zw_traceback *tb)
{
    return tb->total_nframe;
}

/* ---- text ---- */

int
zw_frame_str(const zw_frame *f, char *buf, size_t len)
{
    if (f->module != NULL && f->lineno == 0)
        return snprintf(buf, len, "%s+0x%" PRIx64, f->module, f->offset);
    return snprintf(buf, len, "%s:%u", f->filename, f->lineno);
}

int
zw_trace_info_str(const zw_trace_info *t, char *buf, size_t len)
{
    char where[1024];
    char size[64];
    zw_frame_str(t->traceback->frames[0], where, sizeof(where)); /* str(tb): the oldest frame */
    zw_format_size((int64_t)t->size, false, size, sizeof(size));
    return snprintf(buf, len, "%s: %s", where, size);
}

/* Writes line `lineno` of `path`, stripped, after four spaces; false if it cannot be read. */
static bool
print_source_line(const char *path, unsigned lineno, FILE *out)
{
    if (lineno == 0)
        return false;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    char line[1024];
    unsigned n = 0;
    bool found = false;
    while (fgets(line, sizeof(line), f) != NULL) {
        size_t len = strlen(line);
        bool whole = len > 0 && line[len - 1] == '\n';
        if (++n == lineno) {
            found = true;
            break;
        }
        while (!whole && fgets(line, sizeof(line), f) != NULL) { /* the rest of a long line */
            len = strlen(line);
            whole = len > 0 && line[len - 1] == '\n';
        }
    }
    fclose(f);
    if (!found)
        return false;
    char *s = line;
    while (*s == ' ' || *s == '\t')
        s++;
    size_t len = strlen(s);
    while (len > 0 &&
           (s[len - 1] == '\n' || s[len - 1] == '\r' || s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    fprintf(out, "    %.*s\n", (int)len, s);
    return true;
}

size_t
zw_traceback_format(const zw_traceback *tb, int32_t limit, bool most_recent_first, FILE *out)
{
    size_t first = 0;
    size_t end = tb->nframe;
    if (limit != ZW_NO_LIMIT) {
        if (limit > 0)
            first = (size_t)limit < end ? end - (size_t)limit : 0; /* the limit most recent */
        else if (limit < 0)
            end = (size_t) - (int64_t)limit < end ? end - (size_t) - (int64_t)limit : 0;
        else
            end = 0;
    }
    size_t lines = 0;
    for (size_t k = first; k < end; k++) {
        size_t i = most_recent_first ? end - 1 - (k - first) : k;
        const zw_frame *f = tb->frames[i];
        if (f->module != NULL && f->lineno == 0)
            fprintf(out, "  File \"%s+0x%" PRIx64 "\"", f->module, f->offset);
        else
            fprintf(out, "  File \"%s\", line %u", f->filename, f->lineno);
        if (f->function != NULL)
            fprintf(out, ", in %s%s", f->function, f->inlined ? " (inlined)" : "");
        fputc('\n', out);
        lines++;
        if (print_source_line(f->filename, f->lineno, out))
            lines++;
    }
    return lines;
}

/* ---- filters ---- */

static bool
match_frame_impl(const zw_filter *f, const zw_frame *fr)
{
    if (fnmatch(f->filename_pattern, fr->filename, FNM_NOESCAPE) != 0)
        return false;
    return f->lineno == ZW_ANY_LINENO || (long)fr->lineno == f->lineno;
}

/* tracemalloc's Filter._match(trace). */
static bool
filter_match(const zw_filter *f, unsigned domain, const zw_traceback *tb)
{
    if (f->kind == ZW_FILTER_DOMAIN)
        return ((long long)domain == f->domain) ^ !f->inclusive;
    bool res;
    if (f->all_frames) {
        bool any = false;
        for (size_t i = 0; i < tb->nframe && !any; i++)
            any = match_frame_impl(f, tb->frames[i]);
        res = any ? f->inclusive : !f->inclusive;
    } else {
        res = match_frame_impl(f, tb->frames[tb->nframe - 1]) ^ !f->inclusive;
    }
    if (f->domain != ZW_ANY_DOMAIN) {
        if (f->inclusive)
            return res && (long long)domain == f->domain;
        return res || (long long)domain != f->domain;
    }
    return res;
}

static bool
keep_trace(const zw_filter *filters, size_t n, unsigned domain, const zw_traceback *tb)
{
    bool any_inclusive = false;
    bool included = false;
    for (size_t i = 0; i < n; i++) {
        if (!filters[i].inclusive)
            continue;
        any_inclusive = true;
        if (filter_match(&filters[i], domain, tb)) {
            included = true;
            break;
        }
    }
    if (any_inclusive && !included)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!filters[i].inclusive && !filter_match(&filters[i], domain, tb))
            return false;
    }
    return true;
}

/* The modules of `src` added to `dst`: 0 or -1. */
static int
copy_modules(zw_snapshot *dst, const zw_snapshot *src)
{
    for (size_t i = 0; i < src->nmodules; i++) {
        if (zwi_snapshot_add_module(dst, src->modules[i].path, src->modules[i].build_id,
                                    src->modules[i].bias) != 0)
            return -1;
    }
    return 0;
}

/* Copies tracebacks of one snapshot (`src`) into another (`dst`), each traceback and each frame
 * converted once: a frame of `src` is interned into `dst` (its strings hashed and compared) the
 * first time a traceback names it, and looked up by its index after that, in `frames` when the
 * copy reads much of `src`, in `frame_map` when it picks a few traces out of a large table. */
typedef struct copier {
    zw_snapshot *dst;
    const zw_snapshot *src;
    zwi_map tbs;        /* src traceback index + 1 -> dst traceback */
    zwi_frame **frames; /* src frame index -> dst frame, NULL until copied; src->nframes of them,
                         * or NULL: then frame_map */
    zwi_map frame_map;  /* src frame index + 1 -> dst frame, when `frames` is NULL */
    bool failed;        /* `frames` could not be allocated: every copy fails */
} copier;

/* A copier of about `ntraces` traces (a hint: it picks the frame memo). */
static void
copier_init(copier *c, zw_snapshot *dst, const zw_snapshot *src, size_t ntraces)
{
    *c = (copier){.dst = dst, .src = src};
    zwi_map_init(&c->tbs, dst->raw);
    zwi_map_init(&c->frame_map, dst->raw);
    if (src->nframes > 0 && src->nframes / 4 <= ntraces) {
        c->frames = zwi_alloc(dst->raw, src->nframes * sizeof(*c->frames));
        if (c->frames == NULL)
            c->failed = true;
        else
            memset(c->frames, 0, src->nframes * sizeof(*c->frames));
    }
}

static void
copier_release(copier *c)
{
    zwi_free(c->dst->raw, c->frames);
    zwi_map_release(&c->frame_map);
    zwi_map_release(&c->tbs);
}

/* dst's frame for frame `f` of src; NULL if out of memory. */
static zwi_frame *
copy_frame(copier *c, const zw_frame *f)
{
    const zwi_frame *x = (const zwi_frame *)f; /* a snapshot's frames are zwi_frames */
    ZW_ASSERT(x->index < c->src->nframes && c->src->frames[x->index] == x);
    zwi_frame *y = c->frames != NULL ? c->frames[x->index]
                                     : zwi_map_get(&c->frame_map, (uint64_t)x->index + 1);
    if (y != NULL)
        return y;
    y = zwi_snapshot_frame(c->dst, f);
    if (y == NULL)
        return NULL;
    if (c->frames != NULL)
        c->frames[x->index] = y;
    else if (zwi_map_put(&c->frame_map, (uint64_t)x->index + 1, y) != 0)
        return NULL;
    return y;
}

/* The copy's traceback of `tb` (one of src's, or its first frames: trim_recent). */
static zw_traceback *
copy_traceback(copier *c, const zw_traceback *tb)
{
    if (c->failed)
        return NULL;
    zw_traceback *x = zwi_map_get(&c->tbs, (uint64_t)tb->index + 1);
    if (x != NULL)
        return x;
    zw_snapshot *dst = c->dst;
    const zw_frame *small[64];
    const zw_frame **frames = small;
    if (tb->nframe > 64 && (frames = zwi_alloc(dst->raw, tb->nframe * sizeof(*frames))) == NULL)
        return NULL;
    for (size_t i = 0; i < tb->nframe; i++) {
        zwi_frame *f = copy_frame(c, tb->frames[i]);
        if (f == NULL)
            goto out;
        frames[i] = &f->pub;
    }
    x = zwi_snapshot_traceback(dst, frames, tb->nframe, tb->total_nframe);
    if (x != NULL && zwi_map_put(&c->tbs, (uint64_t)tb->index + 1, x) != 0)
        x = NULL;
out:
    if (frames != small)
        zwi_free(dst->raw, frames);
    return x;
}

zw_snapshot *
zw_snapshot_filter_traces(const zw_snapshot *snap, const zw_filter *filters, size_t n,
                          zw_error *err)
{
    if (n > 0 && filters == NULL) {
        zw_error_set(err, "filters must be an array of %zu filters, not NULL", n);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const zw_filter *f = &filters[i];
        if (f->kind != ZW_FILTER_FRAME && f->kind != ZW_FILTER_DOMAIN) {
            zw_error_set(err, "filter %zu: unknown kind %d", i, (int)f->kind);
            return NULL;
        }
        if (f->kind == ZW_FILTER_FRAME && f->filename_pattern == NULL) {
            zw_error_set(err, "filter %zu: filename_pattern must be a string, not NULL", i);
            return NULL;
        }
        if (f->kind == ZW_FILTER_FRAME && f->lineno < ZW_ANY_LINENO) {
            zw_error_set(err, "filter %zu: lineno must be ZW_ANY_LINENO or >= 0, not %ld", i,
                         f->lineno);
            return NULL;
        }
        if (f->domain < ZW_ANY_DOMAIN || f->domain > UINT32_MAX ||
            (f->kind == ZW_FILTER_DOMAIN && f->domain == ZW_ANY_DOMAIN)) {
            zw_error_set(err, "filter %zu: domain %lld is out of range", i, f->domain);
            return NULL;
        }
    }
    zw_snapshot *dst = zw_snapshot_new(snap->traceback_limit);
    if (dst == NULL) {
        zw_error_set(err, "cannot filter a snapshot: %s", strerror(ENOMEM));
        return NULL;
    }
    copier c;
    copier_init(&c, dst, snap, snap->ntraces);
    int rc = copy_modules(dst, snap);
    for (size_t i = 0; i < snap->ntraces && rc == 0; i++) {
        const zwi_trace *t = &snap->traces[i];
        const zw_traceback *tb = snap->tbs[t->tb];
        if (!keep_trace(filters, n, t->domain, tb))
            continue;
        zw_traceback *x = copy_traceback(&c, tb);
        rc = x == NULL ? -1 : zwi_snapshot_push(dst, t->domain, t->size, x);
    }
    copier_release(&c);
    if (rc != 0) {
        zw_snapshot_free(dst);
        zw_error_set(err, "cannot filter a snapshot: %s", strerror(ENOMEM));
        return NULL;
    }
    return dst;
}

zw_snapshot *
zw_snapshot_trim_recent(const zw_snapshot *snap, bool (*drop)(const zw_frame *f, void *arg),
                        void *arg, zw_error *err)
{
    zw_snapshot *dst = zw_snapshot_new(snap->traceback_limit);
    if (dst == NULL) {
        zw_error_set(err, "cannot trim a snapshot: %s", strerror(ENOMEM));
        return NULL;
    }
    copier c;
    copier_init(&c, dst, snap, snap->ntraces);
    int rc = copy_modules(dst, snap);
    for (size_t i = 0; i < snap->ntraces && rc == 0; i++) {
        const zwi_trace *t = &snap->traces[i];
        const zw_traceback *tb = snap->tbs[t->tb];
        zw_traceback *x = zwi_map_get(&c.tbs, (uint64_t)tb->index + 1);
        if (x == NULL) {
            size_t keep = tb->nframe;
            while (keep > 1 && drop(tb->frames[keep - 1], arg))
                keep--;
            zw_traceback part = *tb;
            part.nframe = (uint32_t)keep;
            x = copy_traceback(&c, &part);
        }
        rc = x == NULL ? -1 : zwi_snapshot_push(dst, t->domain, t->size, x);
    }
    copier_release(&c);
    if (rc != 0) {
        zw_snapshot_free(dst);
        zw_error_set(err, "cannot trim a snapshot: %s", strerror(ENOMEM));
        return NULL;
    }
    return dst;
}

/* Appends to `dst` the modules of `snap` and its traces whose tag is in `mask` (every trace when
 * `tags` is NULL), each traceback copied once. 0, or -1 when memory runs out. */
static int
copy_traces(zw_snapshot *dst, const zw_snapshot *snap, const uint8_t *tags, uint32_t mask)
{
    copier c;
    copier_init(&c, dst, snap, snap->ntraces);
    int rc = copy_modules(dst, snap);
    for (size_t i = 0; i < snap->ntraces && rc == 0; i++) {
        if (tags != NULL && (tags[i] >= 32 || !(mask & (1u << tags[i]))))
            continue;
        const zwi_trace *t = &snap->traces[i];
        zw_traceback *x = copy_traceback(&c, snap->tbs[t->tb]);
        rc = x == NULL ? -1 : zwi_snapshot_push(dst, t->domain, t->size, x);
    }
    copier_release(&c);
    return rc;
}

zw_snapshot *
zw_snapshot_merge(const zw_snapshot *const *snaps, size_t n, zw_error *err)
{
    unsigned limit = 0;
    for (size_t k = 0; k < n; k++)
        limit = snaps[k]->traceback_limit > limit ? snaps[k]->traceback_limit : limit;
    zw_snapshot *dst = zw_snapshot_new(limit);
    int rc = dst == NULL ? -1 : 0;
    for (size_t k = 0; k < n && rc == 0; k++)
        rc = copy_traces(dst, snaps[k], NULL, 0);
    if (rc != 0) {
        zw_snapshot_free(dst);
        zw_error_set(err, "cannot merge snapshots: %s", strerror(ENOMEM));
        return NULL;
    }
    return dst;
}

zw_snapshot *
zw_snapshot_pick(const zw_snapshot *snap, const uint8_t *tags, uint32_t mask, zw_error *err)
{
    zw_snapshot *dst = zw_snapshot_new(snap->traceback_limit);
    if (dst == NULL || copy_traces(dst, snap, tags, mask) != 0) {
        zw_snapshot_free(dst);
        zw_error_set(err, "cannot select traces: %s", strerror(ENOMEM));
        return NULL;
    }
    return dst;
}

zw_snapshot *
zwi_snapshot_spread(const zw_snapshot *sites, const int64_t *blocks, const int64_t *bytes,
                    zw_error *err)
{
    zw_snapshot *dst = zw_snapshot_new(sites->traceback_limit);
    if (dst == NULL) {
        zw_error_set(err, "cannot rebuild a live set: %s", strerror(ENOMEM));
        return NULL;
    }
    copier c;
    copier_init(&c, dst, sites, sites->ntraces);
    int rc = copy_modules(dst, sites);
    for (size_t i = 0; i < sites->ntraces && rc == 0; i++) {
        if (blocks[i] <= 0 || bytes[i] < 0)
            continue; /* nothing live (negative only for blocks a step did not see allocated) */
        const zwi_trace *t = &sites->traces[i];
        zw_traceback *x = copy_traceback(&c, sites->tbs[t->tb]);
        uint64_t each = (uint64_t)bytes[i] / (uint64_t)blocks[i];
        uint64_t extra = (uint64_t)bytes[i] % (uint64_t)blocks[i];
        for (int64_t k = 0; x != NULL && rc == 0 && k < blocks[i]; k++)
            rc = zwi_snapshot_push(dst, t->domain, each + ((uint64_t)k < extra), x);
        if (x == NULL)
            rc = -1;
    }
    copier_release(&c);
    if (rc != 0) {
        zw_snapshot_free(dst);
        zw_error_set(err, "cannot rebuild a live set: %s", strerror(ENOMEM));
        return NULL;
    }
    return dst;
}

zw_snapshot *
zwi_snapshot_from_recs(zwi_tracer *t, zwi_symbolizer *sym, const zwi_trace_rec *recs, size_t n,
                       zw_error *err)
{
    zw_snapshot *snap = zw_snapshot_new(zwi_tracer_nframe(t));
    if (snap == NULL) {
        zw_error_set(err, "cannot take a snapshot: %s", strerror(ENOMEM));
        return NULL;
    }
    builder b;
    builder_init(&b, snap, t, sym);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        zw_traceback *tb = convert_traceback(&b, recs[i].tb);
        if (tb == NULL || zwi_snapshot_push(snap, recs[i].domain, recs[i].size, tb) != 0)
            rc = -1;
    }
    builder_release(&b);
    if (rc != 0) {
        zw_snapshot_free(snap);
        zw_error_set(err, "cannot take a snapshot: %s", strerror(ENOMEM));
        return NULL;
    }
    return snap;
}

/* ---- a capture's shared table (capture_format.c's TABLE, SET and SITE_LIST) ---- */

int
zwi_snapshot_absorb(zw_snapshot *table, const zw_snapshot *snap, uint32_t *index)
{
    copier c;
    copier_init(&c, table, snap, snap->ntbs);
    int rc = copy_modules(table, snap);
    for (size_t i = 0; i < snap->ntbs && rc == 0; i++) {
        zw_traceback *x = copy_traceback(&c, snap->tbs[i]);
        if (x == NULL)
            rc = -1;
        else
            index[i] = x->index;
    }
    copier_release(&c);
    return rc;
}

size_t
zwi_snapshot_ntracebacks(const zw_snapshot *snap)
{
    return snap->ntbs;
}

zw_snapshot *
zwi_snapshot_select(const zw_snapshot *table, const uint32_t *domains, const uint32_t *tbs,
                    const uint64_t *sizes, size_t n)
{
    zw_snapshot *dst = zw_snapshot_new(table->traceback_limit);
    if (dst == NULL)
        return NULL;
    copier c;
    copier_init(&c, dst, table, n);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        ZW_ASSERT(tbs[i] < table->ntbs);
        zw_traceback *x = copy_traceback(&c, table->tbs[tbs[i]]);
        rc = x == NULL
                 ? -1
                 : zwi_snapshot_push(dst, domains != NULL ? domains[i] : ZW_TRACE_DEFAULT_DOMAIN,
                                     sizes[i], x);
    }
    /* the modules its frames name: their paths are among its strings then */
    for (size_t i = 0; i < table->nmodules && rc == 0; i++) {
        const zwi_module *m = &table->modules[i];
        const char *path = zwi_strtab_find(&dst->strs, m->path);
        if (path != NULL)
            rc = zwi_snapshot_add_module(dst, path, m->build_id, m->bias);
    }
    copier_release(&c);
    if (rc != 0) {
        zw_snapshot_free(dst);
        return NULL;
    }
    return dst;
}

/* ---- a capture's table built straight from a tracer (preload/writer.c) ---- */

/* The builder of a snapshot, its target the table: every traceback a set or site names is
 * converted once, into the table itself (no snapshot per set, none copied into the table). */
struct zwi_table_builder {
    builder b;
};

zwi_table_builder *
zwi_table_builder_new(zw_snapshot *table, zwi_tracer *t, zwi_symbolizer *sym)
{
    zwi_table_builder *tb = zwi_alloc(table->raw, sizeof(*tb));
    if (tb != NULL) {
        builder_init(&tb->b, table, t, sym);
        tb->b.keep_idx = table->ntbs == 0; /* else some were made elsewhere */
    }
    return tb;
}

const uint32_t *
zwi_table_builder_frame_indices(const zwi_table_builder *tb, size_t *ntbs, const uint32_t **shape)
{
    *ntbs = tb->b.keep_idx ? tb->b.idx_tbs : 0;
    *shape = tb->b.shape;
    return tb->b.idx;
}

int64_t
zwi_table_builder_index(zwi_table_builder *tb, uint32_t ref)
{
    if (ref < tb->b.nof_ref && tb->b.of_ref[ref] != 0) /* converted: not even its traceback read */
        return (int64_t)tb->b.of_ref[ref] - 1;
    zw_traceback *x = convert_traceback(&tb->b, ref);
    return x != NULL ? (int64_t)x->index : -1;
}

void
zwi_table_builder_free(zwi_table_builder *tb)
{
    if (tb == NULL)
        return;
    zw_raw *raw = tb->b.snap->raw;
    builder_release(&tb->b);
    zwi_free(raw, tb);
}
