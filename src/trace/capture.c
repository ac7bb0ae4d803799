/* trace/capture.c - capture files (docs/format.md#captures): the helpers the preload library
 * writes them with, and the reader the `zw` command uses. A capture is the container of snapshot
 * files with kind 2 and its own section types; its live sets embed whole snapshot files, read with
 * the snapshot reader, so one reader checks every frame and traceback.
 *
 * A capture is streamed: the header says nsections 0 and sections are appended while the process
 * runs. A file that ends before its END section (the process was killed) loads as incomplete with
 * every whole section up to there; a section that is whole but damaged is an error. */
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include <zerowaste/capture.h>

#include "capture_format.h"

static const unsigned char MAGIC[8] = {0x89, 'Z', 'W', 'T', 'R', '\r', '\n', 0x1a};
#define HEADER_SIZE      32
#define SECTION_SIZE     32
#define SECTION_REQUIRED (1u << 0)
#define SECTION_ZSTD     (1u << 1)
#define MAX_RAW_LEN      ((uint64_t)1 << 32) /* the largest decompressed payload read */

/* The fuzz target's build ignores checksums so that the fuzzer reaches the decoders. */
#ifdef ZW_FUZZING
#    define CHECKSUM_BAD(computed, stored) ((void)(computed), (void)(stored), false)
#else
#    define CHECKSUM_BAD(computed, stored) ((computed) != (stored))
#endif

/* ---- writing ---- */

static unsigned char *
cbuf_grow(zwi_cbuf *b, size_t n)
{
    if (b->failed || zwi_reserve(b->raw, (void **)&b->data, &b->cap, b->len + n, 1) != 0) {
        b->failed = true;
        return NULL;
    }
    unsigned char *p = b->data + b->len;
    b->len += n;
    return p;
}

static void
set_le(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

void
zwi_cbuf_put(zwi_cbuf *b, uint64_t v, int nbytes)
{
    unsigned char *p = cbuf_grow(b, (size_t)nbytes);
    if (p != NULL)
        set_le(p, v, nbytes);
}

void
zwi_cbuf_bytes(zwi_cbuf *b, const void *src, size_t n)
{
    unsigned char *p = cbuf_grow(b, n);
    if (p != NULL && n > 0)
        memcpy(p, src, n);
}

void
zwi_cbuf_release(zwi_cbuf *b)
{
    zwi_free(b->raw, b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = false;
}

void
zwi_capture_put_header(zwi_cbuf *out)
{
    unsigned char *h = cbuf_grow(out, HEADER_SIZE);
    if (h == NULL)
        return;
    memcpy(h, MAGIC, 8);
    set_le(h + 8, 1, 2); /* version 1.3: 1.0 plus captures, SERIES and the site steps (1.2), the
                          * exit set's leak scan (LEAKS, 1.3) */
    set_le(h + 10, 3, 2);
    set_le(h + 12, ZWI_CAPTURE_KIND, 4);
    set_le(h + 16, 0, 4);
    set_le(h + 20, 0, 4); /* nsections: streamed, not known */
    set_le(h + 24, 0, 4);
    set_le(h + 28, zwi_crc32(0, h, 28), 4);
}

void
zwi_capture_put_section(zwi_cbuf *out, uint32_t type, const zwi_cbuf *payload, bool compress)
{
    size_t bound = compress ? ZSTD_compressBound(payload->len) : payload->len;
    size_t at = out->len;
    unsigned char *h = cbuf_grow(out, SECTION_SIZE + bound);
    if (h == NULL || payload->failed) {
        out->failed = true;
        return;
    }
    size_t stored = payload->len;
    if (compress) {
        stored = ZSTD_compress(h + SECTION_SIZE, bound, payload->data, payload->len, 3);
        if (ZSTD_isError(stored)) {
            out->failed = true;
            return;
        }
    } else if (stored > 0) {
        memcpy(h + SECTION_SIZE, payload->data, stored);
    }
    out->len = at + SECTION_SIZE + stored;
    h = out->data + at;
    uint32_t flags = (type == ZWI_SEC_END ? SECTION_REQUIRED : 0) | (compress ? SECTION_ZSTD : 0);
    set_le(h, type, 4);
    set_le(h + 4, flags, 4);
    set_le(h + 8, stored, 8);
    set_le(h + 16, payload->len, 8);
    set_le(h + 24, zwi_crc32(0, h + SECTION_SIZE, stored), 4);
    set_le(h + 28, zwi_crc32(0, h, 28), 4);
}

/* ---- marks ---- */

/* libzwpreload.so records marks in zw_preload_mark(); without it this does nothing. Looked up at
 * run time because a program linking zerowaste statically calls its own zw_mark directly, where
 * the preload library cannot interpose. Weak: the preload library's strong zw_mark replaces it
 * when both are linked into it. */
__attribute__((weak)) void
zw_mark(const char *label)
{
    static void (*_Atomic mark)(const char *);
    static atomic_bool looked;
    if (!atomic_load_explicit(&looked, memory_order_acquire)) {
        atomic_store_explicit(&mark, (void (*)(const char *))dlsym(RTLD_DEFAULT, "zw_preload_mark"),
                              memory_order_relaxed);
        atomic_store_explicit(&looked, true, memory_order_release);
    }
    void (*fn)(const char *) = atomic_load_explicit(&mark, memory_order_relaxed);
    if (fn != NULL)
        fn(label);
}

/* ---- reading ---- */

static uint64_t
get_le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

typedef struct reader {
    const char *name;
    zw_error *err;
    zw_capture *c;
    zw_raw *raw;            /* the capture's memory */
    size_t sec;             /* index of the section being read */
    size_t sec_off;         /* its offset in the file */
    const unsigned char *p; /* its payload */
    size_t len;
    size_t pos;
    size_t cap_samples, cap_marks, cap_steps, cap_deltas;
    uint32_t *site_refs; /* SITE_INFO: the ref of each site of SITES */
    uint64_t nsite_refs;
    bool steps_ok;       /* SITE_INFO says the steps are whole */
} reader;

static int fail(reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
fail(reader *r, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return zw_error_set(r->err, "cannot read capture '%s': %s", r->name, what);
}

static int
bad(reader *r, const char *what)
{
    return fail(r, "%s at byte %zu of the payload of section %zu at offset %zu", what, r->pos,
                r->sec, r->sec_off);
}

static int
rd(reader *r, int n, uint64_t *v)
{
    *v = 0;
    if (r->len - r->pos < (size_t)n)
        return bad(r, "truncated record");
    *v = get_le(r->p + r->pos, n);
    r->pos += (size_t)n;
    return 0;
}

/* A u32-length string, copied into the capture's memory. */
static int
rd_string(reader *r, const char **out)
{
    uint64_t n;
    if (rd(r, 4, &n) != 0)
        return -1;
    if (r->len - r->pos < n)
        return bad(r, "truncated string");
    char *s = zwi_alloc(r->raw, (size_t)n + 1);
    if (s == NULL)
        return bad(r, "out of memory");
    memcpy(s, r->p + r->pos, (size_t)n);
    s[n] = '\0';
    r->pos += (size_t)n;
    *out = s;
    return 0;
}

/* A u64-length embedded snapshot file (none when the length is 0). */
static int
rd_snapshot(reader *r, zw_snapshot **out)
{
    uint64_t n;
    if (rd(r, 8, &n) != 0)
        return -1;
    if (r->len - r->pos < n)
        return bad(r, "truncated snapshot");
    *out = NULL;
    if (n == 0)
        return 0;
    zw_error inner;
    *out = zw_snapshot_load_memory(r->p + r->pos, (size_t)n, &inner);
    if (*out == NULL)
        return fail(r, "the snapshot in section %zu at offset %zu: %s", r->sec, r->sec_off,
                    inner.msg);
    r->pos += (size_t)n;
    return 0;
}

static int
decode_process(reader *r)
{
    zw_capture *c = r->c;
    uint64_t pid, ppid, start, interval, nframe, argc;
    if (c->argv != NULL)
        return bad(r, "process section stored twice");
    if (rd(r, 4, &pid) || rd(r, 4, &ppid) || rd(r, 8, &start) || rd(r, 4, &interval) ||
        rd(r, 4, &nframe) || rd(r, 4, &argc))
        return -1;
    if (argc > r->len - r->pos) /* each argument takes 4 bytes at least */
        return bad(r, "argument count too large");
    c->pid = (uint32_t)pid;
    c->ppid = (uint32_t)ppid;
    c->start_realtime_ns = start;
    c->interval_ms = (uint32_t)interval;
    c->nframe = (uint32_t)nframe;
    c->argv = zwi_alloc(r->raw, (size_t)(argc + 1) * sizeof(char *));
    if (c->argv == NULL)
        return bad(r, "out of memory");
    for (c->argc = 0; c->argc < argc; c->argc++) {
        if (rd_string(r, &c->argv[c->argc]) != 0)
            return -1;
    }
    c->argv[c->argc] = NULL;
    return 0;
}

/* TIMESERIES (4 fields per sample) or SERIES (a field count, then that many: the first 8 are
 * zw_capture_sample's; more, from a later minor version, are skipped). */
static int
decode_timeseries(reader *r, bool series)
{
    zw_capture *c = r->c;
    uint64_t n, fields = 4;
    if (rd(r, 4, &n) != 0 || (series && rd(r, 4, &fields) != 0))
        return -1;
    if (series && fields < ZWI_SERIES_FIELDS)
        return bad(r, "too few fields per sample");
    if (n > (r->len - r->pos) / (8 * fields))
        return bad(r, "sample count larger than the payload");
    if (zwi_reserve(r->raw, (void **)&c->samples, &r->cap_samples, c->nsamples + n,
                    sizeof(zw_capture_sample)))
        return bad(r, "out of memory");
    if (series)
        c->has_counters = true;
    for (uint64_t i = 0; i < n; i++) {
        zw_capture_sample *s = &c->samples[c->nsamples++];
        uint64_t f[ZWI_SERIES_FIELDS] = {0};
        for (uint64_t k = 0; k < fields; k++) {
            uint64_t v;
            rd(r, 8, &v);
            if (k < ZWI_SERIES_FIELDS)
                f[k] = v;
        }
        *s = (zw_capture_sample){f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7]};
    }
    return 0;
}

/* SITE_DELTAS: steps whose deltas name sites by ref (mapped to indices once SITE_INFO is read). */
static int
decode_deltas(reader *r)
{
    zw_capture *c = r->c;
    uint64_t nsteps;
    if (rd(r, 4, &nsteps) != 0)
        return -1;
    if (nsteps > (r->len - r->pos) / 16)
        return bad(r, "step count larger than the payload");
    for (uint64_t i = 0; i < nsteps; i++) {
        uint64_t t, flags, n;
        if (rd(r, 8, &t) || rd(r, 4, &flags) || rd(r, 4, &n))
            return -1;
        if (n > (r->len - r->pos) / 20)
            return bad(r, "delta count larger than the payload");
        if (zwi_reserve(r->raw, (void **)&c->steps, &r->cap_steps, c->nsteps + 1,
                        sizeof(zw_capture_step)) ||
            zwi_reserve(r->raw, (void **)&c->deltas, &r->cap_deltas, c->ndeltas + n,
                        sizeof(zw_capture_delta)))
            return bad(r, "out of memory");
        c->steps[c->nsteps++] = (zw_capture_step){t, c->ndeltas, (size_t)n, flags & ZWI_STEP_PEAK};
        for (uint64_t k = 0; k < n; k++) {
            uint64_t ref, bytes, blocks;
            rd(r, 4, &ref);
            rd(r, 8, &bytes);
            rd(r, 8, &blocks);
            c->deltas[c->ndeltas++] =
                (zw_capture_delta){(uint32_t)ref, (int64_t)bytes, (int64_t)blocks};
        }
    }
    return 0;
}

/* SITE_INFO: whether the steps are whole, then per site its ref and temporary allocations. */
static int
decode_site_info(reader *r)
{
    zw_capture *c = r->c;
    uint64_t ok, n;
    if (r->site_refs != NULL)
        return bad(r, "site information stored twice");
    if (rd(r, 4, &ok) || rd(r, 8, &n))
        return -1;
    if (n > (r->len - r->pos) / 12)
        return bad(r, "site count larger than the payload");
    r->site_refs = zwi_alloc(r->raw, (size_t)(n + 1) * sizeof(uint32_t));
    c->site_temporary = zwi_alloc(r->raw, (size_t)(n + 1) * sizeof(uint64_t));
    if (r->site_refs == NULL || c->site_temporary == NULL)
        return bad(r, "out of memory");
    for (uint64_t i = 0; i < n; i++) {
        uint64_t ref;
        rd(r, 4, &ref);
        rd(r, 8, &c->site_temporary[i]);
        r->site_refs[i] = (uint32_t)ref;
    }
    r->nsite_refs = n;
    r->steps_ok = ok == 1;
    return 0;
}

static int
by_ref(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a >> 32, y = *(const uint64_t *)b >> 32;
    return x < y ? -1 : x > y;
}

/* A capture that kept its peak as a step (no PEAK_SET) gets its peak set rebuilt from the steps
 * up to the last peak step. -1 only when out of memory. */
static int
peak_from_steps(reader *r)
{
    zw_capture *c = r->c;
    if (c->peak.label != NULL || c->nsteps == 0)
        return 0;
    size_t last = c->nsteps;
    for (size_t i = 0; i < c->nsteps; i++) {
        if (c->steps[i].peak)
            last = i;
    }
    if (last == c->nsteps)
        return 0;
    zw_error inner;
    zw_snapshot *snap = zw_capture_live_at(c, c->steps[last].time_ns, &inner);
    char *label = zwi_alloc(r->raw, 5);
    if (snap == NULL || label == NULL) {
        /* too large to rebuild (see rebuild_limit) or no memory: the capture loads without its
         * peak set, as one cut short would */
        zw_snapshot_free(snap);
        zwi_free(r->raw, label);
        return 0;
    }
    memcpy(label, "peak", 5);
    uint64_t bytes = 0;
    for (size_t i = 0; i < zw_snapshot_len(snap); i++)
        bytes += zw_snapshot_trace(snap, i).size;
    c->peak = (zw_capture_set){label, c->steps[last].time_ns, bytes, snap};
    return 0;
}

/* Once every section is read: the deltas' refs become site indices. Steps that cannot be resolved
 * (no SITES or SITE_INFO: the process died first; a ref no site has; steps not whole) are dropped
 * rather than shown wrong. -1 only when out of memory. */
static int
resolve_steps(reader *r)
{
    zw_capture *c = r->c;
    size_t nsites = c->sites != NULL ? zw_snapshot_len(c->sites) : 0;
    bool usable = c->nsteps > 0 && r->site_refs != NULL && r->steps_ok &&
                  r->nsite_refs == nsites && c->site_temporary != NULL;
    uint64_t *map = NULL; /* (ref << 32 | index), sorted by ref */
    if (usable) {
        map = zwi_alloc(r->raw, (size_t)(nsites + 1) * sizeof(uint64_t));
        if (map == NULL)
            return bad(r, "out of memory");
        for (size_t i = 0; i < nsites; i++)
            map[i] = (uint64_t)r->site_refs[i] << 32 | i;
        qsort(map, nsites, sizeof(uint64_t), by_ref);
        for (size_t i = 0; usable && i < c->ndeltas; i++) {
            uint64_t key = (uint64_t)c->deltas[i].site << 32;
            const uint64_t *hit = bsearch(&key, map, nsites, sizeof(uint64_t), by_ref);
            if (hit == NULL)
                usable = false;
            else
                c->deltas[i].site = (uint32_t)*hit;
        }
        zwi_free(r->raw, map);
    }
    if (!usable) {
        c->nsteps = 0;
        c->ndeltas = 0;
    }
    if (r->nsite_refs != nsites && c->site_temporary != NULL) {
        zwi_free(r->raw, c->site_temporary);
        c->site_temporary = NULL; /* not the same sites: not trusted */
    }
    return 0;
}

static int
decode_set(reader *r, zw_capture_set *set)
{
    if (set->label != NULL)
        return bad(r, "live set stored twice");
    if (rd(r, 8, &set->time_ns) || rd(r, 8, &set->heap_bytes) || rd_string(r, &set->label))
        return -1;
    return rd_snapshot(r, &set->snap);
}

static int
decode_totals(reader *r)
{
    zw_capture_totals *t = &r->c->totals;
    uint64_t end, code;
    if (rd(r, 8, &t->allocations) || rd(r, 8, &t->frees) || rd(r, 8, &t->temporary) ||
        rd(r, 8, &t->bytes_allocated) || rd(r, 8, &t->peak_bytes) || rd(r, 8, &t->peak_time_ns) ||
        rd(r, 8, &t->duration_ns) || rd(r, 4, &end) || rd(r, 4, &code))
        return -1;
    if (end > ZW_CAPTURE_END_EXEC)
        return bad(r, "unknown end of process");
    t->end = (uint32_t)end;
    t->code = (int32_t)(uint32_t)code;
    r->c->has_totals = true;
    return 0;
}

static int
decode_sites(reader *r)
{
    zw_capture *c = r->c;
    uint64_t n;
    if (c->sites != NULL)
        return bad(r, "sites stored twice");
    if (rd(r, 8, &n) != 0)
        return -1;
    if (n > (r->len - r->pos) / 8)
        return bad(r, "site count larger than the payload");
    c->site_counts = zwi_alloc(r->raw, (size_t)(n + 1) * sizeof(uint64_t));
    if (c->site_counts == NULL)
        return bad(r, "out of memory");
    for (uint64_t i = 0; i < n; i++)
        rd(r, 8, &c->site_counts[i]);
    if (rd_snapshot(r, &c->sites) != 0)
        return -1;
    if (c->sites == NULL ? n != 0 : zw_snapshot_len(c->sites) != n)
        return bad(r, "site count differs from the snapshot's traces");
    return 0;
}

/* LEAKS: the reachability scan of the exit set (docs/format.md#leaks). */
static int
decode_leaks(reader *r)
{
    zw_capture_leaks *l = &r->c->leaks;
    uint64_t status, modules, threads, missed, n;
    if (l->status != ZW_LEAKS_UNKNOWN || l->kinds != NULL)
        return bad(r, "leak scan stored twice");
    if (rd(r, 4, &status) || rd(r, 4, &modules) || rd(r, 4, &threads) || rd(r, 4, &missed) ||
        rd(r, 8, &l->scan_ns) || rd(r, 8, &l->scan_cpu_ns) || rd(r, 8, &l->scan_memory) ||
        rd(r, 8, &l->root_bytes))
        return -1;
    for (int k = 0; k < ZW_LEAK_KINDS; k++)
        if (rd(r, 8, &l->blocks[k]) || rd(r, 8, &l->bytes[k]))
            return -1;
    if (rd(r, 8, &n))
        return -1;
    if (status < ZW_LEAKS_SCANNED || status > ZW_LEAKS_OFF)
        return bad(r, "unknown leak scan status");
    if (n > r->len - r->pos)
        return bad(r, "leak kinds: more blocks than the payload holds");
    if (status == ZW_LEAKS_SCANNED) {
        l->kinds = zwi_alloc(r->raw, (size_t)n + 1);
        if (l->kinds == NULL)
            return bad(r, "out of memory");
        memcpy(l->kinds, r->p + r->pos, (size_t)n);
        r->pos += (size_t)n;
        for (uint64_t i = 0; i < n; i++)
            if (l->kinds[i] >= ZW_LEAK_KINDS)
                return bad(r, "unknown leak kind");
    }
    l->nkinds = (size_t)n;
    l->status = (uint32_t)status;
    l->modules = (uint32_t)modules;
    l->threads = (uint32_t)threads;
    l->threads_missed = (uint32_t)missed;
    return 0;
}

/* The kinds name the exit set's traces in order: with no exit set or another number of traces
 * they name nothing, and the capture loads with the kinds unknown. The sums are the kinds'. */
static void
check_leaks(zw_capture *c, zw_raw *raw)
{
    zw_capture_leaks *l = &c->leaks;
    if (l->status != ZW_LEAKS_SCANNED)
        return;
    size_t n = c->exit.snap != NULL ? zw_snapshot_len(c->exit.snap) : 0;
    if (l->kinds == NULL || n != l->nkinds) {
        zwi_free(raw, l->kinds);
        *l = (zw_capture_leaks){.status = ZW_LEAKS_UNKNOWN};
        return;
    }
    memset(l->blocks, 0, sizeof(l->blocks));
    memset(l->bytes, 0, sizeof(l->bytes));
    for (size_t i = 0; i < n; i++) {
        l->blocks[l->kinds[i]]++;
        l->bytes[l->kinds[i]] += zw_snapshot_trace(c->exit.snap, i).size;
    }
}

static int
decode(reader *r, uint32_t type)
{
    zw_capture *c = r->c;
    switch (type) {
    case ZWI_SEC_PROCESS:
        return decode_process(r);
    case ZWI_SEC_TIMESERIES:
        return decode_timeseries(r, false);
    case ZWI_SEC_SERIES:
        return decode_timeseries(r, true);
    case ZWI_SEC_SITE_DELTAS:
        return decode_deltas(r);
    case ZWI_SEC_SITE_INFO:
        return decode_site_info(r);
    case ZWI_SEC_PEAK_SET:
        return decode_set(r, &c->peak);
    case ZWI_SEC_EXIT_SET:
        return decode_set(r, &c->exit);
    case ZWI_SEC_MARK:
        if (zwi_reserve(r->raw, (void **)&c->marks, &r->cap_marks, c->nmarks + 1,
                        sizeof(*c->marks)))
            return bad(r, "out of memory");
        c->marks[c->nmarks] = (zw_capture_set){0};
        c->nmarks++; /* counted first: zw_capture_free() frees what a failed decode left */
        return decode_set(r, &c->marks[c->nmarks - 1]);
    case ZWI_SEC_TOTALS:
        return decode_totals(r);
    case ZWI_SEC_SITES:
        return decode_sites(r);
    case ZWI_SEC_LEAKS:
        return decode_leaks(r);
    default:
        r->pos = r->len; /* an optional section of a later version: skipped */
        return 0;
    }
}

static bool
known(uint32_t type)
{
    return type == ZWI_SEC_END || (type >= ZWI_SEC_PROCESS && type <= ZWI_SEC_LEAKS);
}

/* The payload of the section at `h` into r->p / r->len (decompressed into *tmp if needed). */
static int
payload(reader *r, const unsigned char *h, uint32_t flags, uint64_t stored, uint64_t raw_len,
        zwi_cbuf *tmp)
{
    const unsigned char *src = h + SECTION_SIZE;
    if (!(flags & SECTION_ZSTD)) {
        if (raw_len != stored)
            return bad(r, "stored and raw lengths differ in an uncompressed section");
        r->p = src;
        r->len = (size_t)stored;
        return 0;
    }
    if (raw_len > MAX_RAW_LEN)
        return bad(r, "payload length too large");
    /* streamed into a buffer that grows with what the frame really produces: a forged raw_len
     * allocates nothing */
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    if (dctx == NULL)
        return bad(r, "out of memory");
    zwi_cbuf *out = tmp;
    out->len = 0;
    ZSTD_inBuffer in = {src, (size_t)stored, 0};
    int rc = 0;
    for (;;) {
        if (out->len == out->cap) {
            size_t grow = out->cap < 65536 ? 65536 : out->cap;
            if (out->cap + grow > raw_len + 1)
                grow = (size_t)(raw_len + 1 - out->cap);
            if (grow == 0) {
                rc = bad(r, "payload longer than its stated length");
                break;
            }
            if (zwi_reserve(r->raw, (void **)&out->data, &out->cap, out->cap + grow, 1) != 0) {
                rc = bad(r, "out of memory");
                break;
            }
        }
        ZSTD_outBuffer o = {out->data, out->cap, out->len};
        size_t ret = ZSTD_decompressStream(dctx, &o, &in);
        out->len = o.pos;
        if (ZSTD_isError(ret)) {
            rc = fail(r, "section %zu at offset %zu: corrupt compressed data (%s)", r->sec,
                      r->sec_off, ZSTD_getErrorName(ret));
            break;
        }
        if (ret == 0) {
            if (in.pos != in.size)
                rc = bad(r, "bytes after the compressed payload");
            else if (out->len != raw_len)
                rc = bad(r, "payload length differs from its stated length");
            break;
        }
        if (in.pos == in.size && o.pos < o.size) {
            rc = bad(r, "compressed payload ends early");
            break;
        }
    }
    ZSTD_freeDCtx(dctx);
    r->p = out->data;
    r->len = out->len;
    return rc;
}

static int
read_sections(reader *r, const unsigned char *data, size_t len)
{
    zwi_cbuf tmp = {.raw = r->raw};
    int rc = 0;
    size_t off = HEADER_SIZE;
    for (r->sec = 0; rc == 0; r->sec++) {
        r->sec_off = off;
        r->pos = 0;
        if (len - off < SECTION_SIZE)
            break; /* cut short: the sections before stand */
        const unsigned char *h = data + off;
        uint32_t type = (uint32_t)get_le(h, 4);
        uint32_t flags = (uint32_t)get_le(h + 4, 4);
        uint64_t stored = get_le(h + 8, 8);
        uint64_t raw_len = get_le(h + 16, 8);
        if (CHECKSUM_BAD(zwi_crc32(0, h, 28), (uint32_t)get_le(h + 28, 4))) {
            rc = fail(r, "section %zu header at offset %zu damaged (checksum mismatch)", r->sec,
                      off);
            break;
        }
        if (stored > len - off - SECTION_SIZE)
            break; /* cut short while this section was written */
        if (CHECKSUM_BAD(zwi_crc32(0, h + SECTION_SIZE, (size_t)stored),
                         (uint32_t)get_le(h + 24, 4))) {
            rc = fail(r, "section %zu at offset %zu damaged (payload checksum mismatch)", r->sec,
                      off);
            break;
        }
        if (flags & ~(SECTION_REQUIRED | SECTION_ZSTD)) {
            rc = fail(r, "section %zu at offset %zu has unknown flags 0x%" PRIx32, r->sec, off,
                      flags);
            break;
        }
        if (!known(type) && (flags & SECTION_REQUIRED)) {
            rc = fail(r, "section %zu at offset %zu has type %" PRIu32 ", required and unknown",
                      r->sec, off, type);
            break;
        }
        off += SECTION_SIZE + (size_t)stored;
        if (type == ZWI_SEC_END) {
            if (raw_len != 0)
                rc = fail(r, "section %zu (end) at offset %zu is not empty", r->sec, r->sec_off);
            else if (off != len)
                rc = fail(r, "%zu bytes after the end section at offset %zu", len - off, off);
            else
                r->c->complete = true;
            break;
        }
        if (payload(r, h, flags, stored, raw_len, &tmp) != 0 ||
            decode(r, type) != 0) {
            rc = -1;
            break;
        }
        if (r->pos != r->len)
            rc = bad(r, "bytes left over after the last record");
    }
    zwi_cbuf_release(&tmp);
    return rc;
}

static int
by_time(const void *a, const void *b)
{
    uint64_t x = ((const zw_capture_sample *)a)->time_ns;
    uint64_t y = ((const zw_capture_sample *)b)->time_ns;
    return x < y ? -1 : x > y;
}

/* A capture cut short has no TOTALS: its peak and duration come from the time series. */
static void
totals_from_samples(zw_capture *c)
{
    for (size_t i = 0; i < c->nsamples; i++) {
        const zw_capture_sample *s = &c->samples[i];
        if (s->heap_bytes > c->totals.peak_bytes) {
            c->totals.peak_bytes = s->heap_bytes;
            c->totals.peak_time_ns = s->time_ns;
        }
        if (s->time_ns > c->totals.duration_ns)
            c->totals.duration_ns = s->time_ns;
        if (c->has_counters && s->allocations >= c->totals.allocations) {
            /* the running totals of the last sample: the counts up to the last interval */
            c->totals.allocations = s->allocations;
            c->totals.frees = s->frees;
            c->totals.temporary = s->temporary;
            c->totals.bytes_allocated = s->bytes_allocated;
        }
    }
}

/* The capture's memory: a raw door whose pointer is kept just before the capture (freed by
 * zw_capture_free). */
typedef struct holder {
    zw_raw *raw;
    zw_capture c;
} holder;

/* Reads a capture from `len` bytes; the capture takes `raw` (also on failure: it is destroyed). */
static zw_capture *
load(const unsigned char *data, size_t len, const char *name, zw_error *err, zw_raw *raw)
{
    reader r = {.name = name, .err = err, .raw = raw};
    holder *h = zwi_alloc(raw, sizeof(holder));
    if (h == NULL) {
        fail(&r, "%s", strerror(ENOMEM));
        zw_raw_destroy(raw);
        return NULL;
    }
    *h = (holder){.raw = raw};
    r.c = &h->c;
    if (len < 8 || memcmp(data, MAGIC, 8) != 0) {
        fail(&r, "not a zerowaste file (bad magic number at offset 0)");
        goto out_free;
    }
    if (len < HEADER_SIZE) {
        fail(&r, "file truncated: %zu bytes, the header alone is %d", len, HEADER_SIZE);
        goto out_free;
    }
    if (CHECKSUM_BAD(zwi_crc32(0, data, 28), (uint32_t)get_le(data + 28, 4))) {
        fail(&r, "header damaged (checksum mismatch at offset 28)");
        goto out_free;
    }
    unsigned major = (unsigned)get_le(data + 8, 2);
    unsigned minor = (unsigned)get_le(data + 10, 2);
    if (major != 1) {
        fail(&r, "format version %u.%u is %s than this reader's 1.3 (offset 8)", major, minor,
             major > 1 ? "newer" : "older");
        goto out_free;
    }
    uint32_t kind = (uint32_t)get_le(data + 12, 4);
    if (kind != ZWI_CAPTURE_KIND) {
        fail(&r, "file kind %" PRIu32 " at offset 12 is not a capture (%u)%s", kind,
             ZWI_CAPTURE_KIND, kind == 1 ? ": it is a snapshot" : "");
        goto out_free;
    }
    if (read_sections(&r, data, len) == 0 && resolve_steps(&r) == 0 && peak_from_steps(&r) == 0) {
        /* the sampler and the peak saves append samples as they go: nearly in order */
        if (r.c->nsamples > 1)
            qsort(r.c->samples, r.c->nsamples, sizeof(zw_capture_sample), by_time);
        if (!r.c->has_totals)
            totals_from_samples(r.c);
        check_leaks(r.c, raw);
        zwi_free(raw, r.site_refs);
        return r.c;
    }
out_free:
    zwi_free(raw, r.site_refs);
    zw_capture_free(r.c);
    return NULL;
}

zw_capture *
zw_capture_load_memory(const void *data, size_t len, zw_error *err)
{
    zw_raw *raw = zw_raw_new(NULL);
    if (raw == NULL) {
        zw_error_set(err, "cannot read capture '<memory>': %s", strerror(ENOMEM));
        return NULL;
    }
    return load(data, len, "<memory>", err, raw);
}

zw_capture *
zw_capture_load(const char *path, zw_error *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        zw_error_set(err, "cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    zw_capture *out = NULL;
    zwi_cbuf b = {.raw = zw_raw_new(NULL)}; /* the file's bytes */
    zw_raw *raw = zw_raw_new(NULL);         /* the capture's memory, given to load() */
    if (b.raw == NULL || raw == NULL) {
        zw_error_set(err, "cannot read '%s': %s", path, strerror(ENOMEM));
        zw_raw_destroy(raw);
        goto out_release;
    }
    for (;;) {
        unsigned char *p = cbuf_grow(&b, 65536);
        if (p == NULL) {
            zw_error_set(err, "cannot read '%s': %s", path, strerror(ENOMEM));
            zw_raw_destroy(raw);
            goto out_release;
        }
        size_t got = fread(p, 1, 65536, f);
        b.len -= 65536 - got;
        if (got < 65536) {
            if (ferror(f)) {
                zw_error_set(err, "cannot read '%s': %s", path, strerror(errno));
                zw_raw_destroy(raw);
                goto out_release;
            }
            break;
        }
    }
    out = load(b.data, b.len, path, err, raw);
out_release:
    if (b.raw != NULL) {
        zwi_cbuf_release(&b);
        zw_raw_destroy(b.raw);
    }
    fclose(f);
    return out;
}

zw_snapshot *
zw_capture_leaked(const zw_capture *c, unsigned kinds, zw_error *err)
{
    if (c->leaks.status != ZW_LEAKS_SCANNED || c->exit.snap == NULL) {
        zw_error_set(err, "the capture's exit set was not scanned for leaks");
        return NULL;
    }
    return zwi_snapshot_select(c->exit.snap, c->leaks.kinds, kinds, err);
}

/* Frees the snapshots of `c` (not its memory). */
static void
free_sets(zw_capture *c)
{
    zw_snapshot_free(c->peak.snap);
    zw_snapshot_free(c->exit.snap);
    for (size_t i = 0; i < c->nmarks; i++)
        zw_snapshot_free(c->marks[i].snap);
    zw_snapshot_free(c->sites);
}

void
zw_capture_free(zw_capture *c)
{
    if (c == NULL)
        return;
    free_sets(c);
    holder *h = (holder *)((char *)c - offsetof(holder, c));
    zw_raw *raw = h->raw;
    for (size_t i = 0; c->argv != NULL && i < c->argc; i++)
        zwi_free(raw, (void *)c->argv[i]);
    zwi_free(raw, c->argv);
    zwi_free(raw, c->samples);
    zwi_free(raw, (void *)c->peak.label);
    zwi_free(raw, (void *)c->exit.label);
    for (size_t i = 0; i < c->nmarks; i++)
        zwi_free(raw, (void *)c->marks[i].label);
    zwi_free(raw, c->marks);
    zwi_free(raw, c->site_counts);
    zwi_free(raw, c->site_temporary);
    zwi_free(raw, c->steps);
    zwi_free(raw, c->deltas);
    zwi_free(raw, c->leaks.kinds);
    zwi_free(raw, h);
    zw_raw_destroy(raw);
}

/* The most blocks a rebuilt live set may hold: ZW_REBUILD_MAX_BLOCKS, default 2^28 (4 GiB of
 * traces). A damaged or hostile file could otherwise ask for any number. */
static uint64_t
rebuild_limit(void)
{
    const char *s = getenv("ZW_REBUILD_MAX_BLOCKS");
    char *end;
    unsigned long long v = s != NULL ? strtoull(s, &end, 10) : 0;
    return s != NULL && *s != '\0' && *end == '\0' && v > 0 ? v : (uint64_t)1 << 28;
}

zw_snapshot *
zw_capture_live_at(const zw_capture *c, uint64_t time_ns, zw_error *err)
{
    if (c->nsteps == 0 || c->sites == NULL) {
        zw_error_set(err, "the capture has no live-set steps (written by an older zw, or the "
                          "process died before its sites were written)");
        return NULL;
    }
    size_t n = zw_snapshot_len(c->sites);
    zw_raw *raw = zw_raw_new(NULL);
    int64_t *sum = raw != NULL ? zwi_alloc(raw, 2 * (n + 1) * sizeof(int64_t)) : NULL;
    if (sum == NULL) {
        zw_raw_destroy(raw);
        zw_error_set(err, "cannot rebuild a live set: %s", strerror(ENOMEM));
        return NULL;
    }
    memset(sum, 0, 2 * (n + 1) * sizeof(int64_t));
    int64_t *blocks = sum, *bytes = sum + n + 1;
    for (size_t i = 0; i < c->nsteps && c->steps[i].time_ns <= time_ns; i++) {
        for (size_t k = c->steps[i].first; k < c->steps[i].first + c->steps[i].n; k++) {
            const zw_capture_delta *d = &c->deltas[k];
            /* modulo 2^64: a damaged file's sums wrap instead of overflowing */
            blocks[d->site] = (int64_t)((uint64_t)blocks[d->site] + (uint64_t)d->blocks);
            bytes[d->site] = (int64_t)((uint64_t)bytes[d->site] + (uint64_t)d->bytes);
        }
    }
    uint64_t total = 0, limit = rebuild_limit();
    for (size_t i = 0; i < n && total <= limit; i++)
        total += blocks[i] > 0 ? (uint64_t)blocks[i] : 0;
    if (total > limit) {
        zwi_free(raw, sum);
        zw_raw_destroy(raw);
        zw_error_set(err,
                     "the live set at %.3f s would hold more than %" PRIu64 " blocks, the most "
                     "zw rebuilds (ZW_REBUILD_MAX_BLOCKS)",
                     (double)time_ns / 1e9, limit);
        return NULL;
    }
    zw_snapshot *snap = zwi_snapshot_spread(c->sites, blocks, bytes, err);
    zwi_free(raw, sum);
    zw_raw_destroy(raw);
    return snap;
}
