/* trace/format.c - snapshot files (docs/format.md): a 32-byte header (magic, version, kind,
 * section count, CRC32), then typed sections, each a 32-byte header (type, flags, stored and raw
 * lengths, CRC32 of the payload, CRC32 of the header) and a payload, zstd-compressed. A snapshot
 * file holds INFO, STRINGS, MODULES, FRAMES, TRACEBACKS and TRACES, then END; frames are stored
 * symbolised, so the file reads the same on another machine.
 *
 * Reading trusts nothing: every header and payload is checked against its CRC before use, every
 * count against the bytes left, every index against its table, and a failure names what is wrong
 * and where (offset, section); the snapshot is handed out only when the whole file was read. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <zstd.h>

#include "trace_internal.h"

/* ---- CRC32 (IEEE 802.3, as zlib), a table for the reflected polynomial 0xEDB88320 ---- */

static const uint32_t crc_table[256] = {
    0x00000000u, 0x77073096u, 0xee0e612cu, 0x990951bau, 0x076dc419u, 0x706af48fu, 0xe963a535u,
    0x9e6495a3u, 0x0edb8832u, 0x79dcb8a4u, 0xe0d5e91eu, 0x97d2d988u, 0x09b64c2bu, 0x7eb17cbdu,
    0xe7b82d07u, 0x90bf1d91u, 0x1db71064u, 0x6ab020f2u, 0xf3b97148u, 0x84be41deu, 0x1adad47du,
    0x6ddde4ebu, 0xf4d4b551u, 0x83d385c7u, 0x136c9856u, 0x646ba8c0u, 0xfd62f97au, 0x8a65c9ecu,
    0x14015c4fu, 0x63066cd9u, 0xfa0f3d63u, 0x8d080df5u, 0x3b6e20c8u, 0x4c69105eu, 0xd56041e4u,
    0xa2677172u, 0x3c03e4d1u, 0x4b04d447u, 0xd20d85fdu, 0xa50ab56bu, 0x35b5a8fau, 0x42b2986cu,
    0xdbbbc9d6u, 0xacbcf940u, 0x32d86ce3u, 0x45df5c75u, 0xdcd60dcfu, 0xabd13d59u, 0x26d930acu,
    0x51de003au, 0xc8d75180u, 0xbfd06116u, 0x21b4f4b5u, 0x56b3c423u, 0xcfba9599u, 0xb8bda50fu,
    0x2802b89eu, 0x5f058808u, 0xc60cd9b2u, 0xb10be924u, 0x2f6f7c87u, 0x58684c11u, 0xc1611dabu,
    0xb6662d3du, 0x76dc4190u, 0x01db7106u, 0x98d220bcu, 0xefd5102au, 0x71b18589u, 0x06b6b51fu,
    0x9fbfe4a5u, 0xe8b8d433u, 0x7807c9a2u, 0x0f00f934u, 0x9609a88eu, 0xe10e9818u, 0x7f6a0dbbu,
    0x086d3d2du, 0x91646c97u, 0xe6635c01u, 0x6b6b51f4u, 0x1c6c6162u, 0x856530d8u, 0xf262004eu,
    0x6c0695edu, 0x1b01a57bu, 0x8208f4c1u, 0xf50fc457u, 0x65b0d9c6u, 0x12b7e950u, 0x8bbeb8eau,
    0xfcb9887cu, 0x62dd1ddfu, 0x15da2d49u, 0x8cd37cf3u, 0xfbd44c65u, 0x4db26158u, 0x3ab551ceu,
    0xa3bc0074u, 0xd4bb30e2u, 0x4adfa541u, 0x3dd895d7u, 0xa4d1c46du, 0xd3d6f4fbu, 0x4369e96au,
    0x346ed9fcu, 0xad678846u, 0xda60b8d0u, 0x44042d73u, 0x33031de5u, 0xaa0a4c5fu, 0xdd0d7cc9u,
    0x5005713cu, 0x270241aau, 0xbe0b1010u, 0xc90c2086u, 0x5768b525u, 0x206f85b3u, 0xb966d409u,
    0xce61e49fu, 0x5edef90eu, 0x29d9c998u, 0xb0d09822u, 0xc7d7a8b4u, 0x59b33d17u, 0x2eb40d81u,
    0xb7bd5c3bu, 0xc0ba6cadu, 0xedb88320u, 0x9abfb3b6u, 0x03b6e20cu, 0x74b1d29au, 0xead54739u,
    0x9dd277afu, 0x04db2615u, 0x73dc1683u, 0xe3630b12u, 0x94643b84u, 0x0d6d6a3eu, 0x7a6a5aa8u,
    0xe40ecf0bu, 0x9309ff9du, 0x0a00ae27u, 0x7d079eb1u, 0xf00f9344u, 0x8708a3d2u, 0x1e01f268u,
    0x6906c2feu, 0xf762575du, 0x806567cbu, 0x196c3671u, 0x6e6b06e7u, 0xfed41b76u, 0x89d32be0u,
    0x10da7a5au, 0x67dd4accu, 0xf9b9df6fu, 0x8ebeeff9u, 0x17b7be43u, 0x60b08ed5u, 0xd6d6a3e8u,
    0xa1d1937eu, 0x38d8c2c4u, 0x4fdff252u, 0xd1bb67f1u, 0xa6bc5767u, 0x3fb506ddu, 0x48b2364bu,
    0xd80d2bdau, 0xaf0a1b4cu, 0x36034af6u, 0x41047a60u, 0xdf60efc3u, 0xa867df55u, 0x316e8eefu,
    0x4669be79u, 0xcb61b38cu, 0xbc66831au, 0x256fd2a0u, 0x5268e236u, 0xcc0c7795u, 0xbb0b4703u,
    0x220216b9u, 0x5505262fu, 0xc5ba3bbeu, 0xb2bd0b28u, 0x2bb45a92u, 0x5cb36a04u, 0xc2d7ffa7u,
    0xb5d0cf31u, 0x2cd99e8bu, 0x5bdeae1du, 0x9b64c2b0u, 0xec63f226u, 0x756aa39cu, 0x026d930au,
    0x9c0906a9u, 0xeb0e363fu, 0x72076785u, 0x05005713u, 0x95bf4a82u, 0xe2b87a14u, 0x7bb12baeu,
    0x0cb61b38u, 0x92d28e9bu, 0xe5d5be0du, 0x7cdcefb7u, 0x0bdbdf21u, 0x86d3d2d4u, 0xf1d4e242u,
    0x68ddb3f8u, 0x1fda836eu, 0x81be16cdu, 0xf6b9265bu, 0x6fb077e1u, 0x18b74777u, 0x88085ae6u,
    0xff0f6a70u, 0x66063bcau, 0x11010b5cu, 0x8f659effu, 0xf862ae69u, 0x616bffd3u, 0x166ccf45u,
    0xa00ae278u, 0xd70dd2eeu, 0x4e048354u, 0x3903b3c2u, 0xa7672661u, 0xd06016f7u, 0x4969474du,
    0x3e6e77dbu, 0xaed16a4au, 0xd9d65adcu, 0x40df0b66u, 0x37d83bf0u, 0xa9bcae53u, 0xdebb9ec5u,
    0x47b2cf7fu, 0x30b5ffe9u, 0xbdbdf21cu, 0xcabac28au, 0x53b39330u, 0x24b4a3a6u, 0xbad03605u,
    0xcdd70693u, 0x54de5729u, 0x23d967bfu, 0xb3667a2eu, 0xc4614ab8u, 0x5d681b02u, 0x2a6f2b94u,
    0xb40bbe37u, 0xc30c8ea1u, 0x5a05df1bu, 0x2d02ef8du,
};

uint32_t
zwi_crc32(uint32_t crc, const void *data, size_t len)
{
    const unsigned char *p = data;
    crc = ~crc;
    for (size_t i = 0; i < len; i++)
        crc = crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* ---- the layout (docs/format.md) ---- */

static const unsigned char MAGIC[8] = {0x89, 'Z', 'W', 'T', 'R', '\r', '\n', 0x1a};
#define VERSION_MAJOR 1
#define VERSION_MINOR 0
#define HEADER_SIZE   32
#define SECTION_SIZE  32
#define KIND_SNAPSHOT 1u
#define KIND_CAPTURE  2u /* reserved for the preload capture */

#define SECTION_REQUIRED (1u << 0) /* a reader that does not know the type must refuse the file */
#define SECTION_ZSTD     (1u << 1) /* the payload is one zstd frame */
#define SECTION_FLAGS    (SECTION_REQUIRED | SECTION_ZSTD)

enum section_type {
    SEC_END = 0,
    SEC_INFO = 1,
    SEC_STRINGS = 2,
    SEC_MODULES = 3,
    SEC_FRAMES = 4,
    SEC_TRACEBACKS = 5,
    SEC_TRACES = 6,
    /* reserved for the preload capture: */
    SEC_PROCESS = 16,
    SEC_TIMESERIES = 17,
    SEC_PEAK_SET = 18,
    SEC_EXIT_SET = 19,
    SEC_MARKS = 20,
};

#define MAX_RAW_LEN ((uint64_t)1 << 32) /* the largest decompressed payload a reader accepts */

/* The fuzz target's build (tests/fuzz) ignores checksums, so that the fuzzer reaches the decoders
 * behind them; every other check stays. */
#ifdef ZW_FUZZING
#    define CHECKSUM_BAD(computed, stored) ((void)(computed), (void)(stored), false)
#else
#    define CHECKSUM_BAD(computed, stored) ((computed) != (stored))
#endif
#define NO_STRING  UINT32_MAX
#define FRAME_SIZE 28

static const char *
section_name(uint32_t type)
{
    switch (type) {
    case SEC_END:
        return "end";
    case SEC_INFO:
        return "info";
    case SEC_STRINGS:
        return "strings";
    case SEC_MODULES:
        return "modules";
    case SEC_FRAMES:
        return "frames";
    case SEC_TRACEBACKS:
        return "tracebacks";
    case SEC_TRACES:
        return "traces";
    case SEC_PROCESS:
        return "process";
    case SEC_TIMESERIES:
        return "time series";
    case SEC_PEAK_SET:
        return "peak set";
    case SEC_EXIT_SET:
        return "exit set";
    case SEC_MARKS:
        return "marks";
    default:
        return "unknown";
    }
}

/* ---- byte buffers, little-endian ---- */

typedef struct buf {
    zw_raw *raw;
    unsigned char *data;
    size_t len;
    size_t cap;
    bool failed; /* an allocation failed: the contents are incomplete */
} buf;

static unsigned char *
buf_grow(buf *b, size_t n)
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
put_le(buf *b, uint64_t v, int n)
{
    unsigned char *p = buf_grow(b, (size_t)n);
    for (int i = 0; p != NULL && i < n; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void
set_le(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t
get_le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* ---- writing ---- */

/* Compresses `payload` into a section of type `type` at the end of `out`. */
static int
put_section(buf *out, uint32_t type, uint32_t flags, const buf *payload)
{
    size_t bound = ZSTD_compressBound(payload->len);
    size_t at = out->len;
    unsigned char *h = buf_grow(out, SECTION_SIZE + bound);
    if (h == NULL)
        return -1;
    size_t stored = ZSTD_compress(h + SECTION_SIZE, bound, payload->data, payload->len, 3);
    if (ZSTD_isError(stored)) {
        out->failed = true;
        return -1;
    }
    out->len = at + SECTION_SIZE + stored;
    h = out->data + at;
    set_le(h, type, 4);
    set_le(h + 4, flags | SECTION_ZSTD, 4);
    set_le(h + 8, stored, 8);
    set_le(h + 16, payload->len, 8);
    set_le(h + 24, zwi_crc32(0, h + SECTION_SIZE, stored), 4);
    set_le(h + 28, zwi_crc32(0, h, 28), 4);
    return 0;
}

static void
put_string_ref(buf *b, const zw_snapshot *snap, const char *s)
{
    put_le(b, zwi_strtab_index(&snap->strs, s), 4);
}

/* The payload of section `type` of `snap` into `b`. */
static void
encode(const zw_snapshot *snap, uint32_t type, buf *b)
{
    switch (type) {
    case SEC_INFO: {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        put_le(b, snap->traceback_limit, 4);
        put_le(b, 0, 4);
        put_le(b, snap->ntraces, 8);
        put_le(b, (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec, 8);
        break;
    }
    case SEC_STRINGS:
        put_le(b, snap->strs.count, 4);
        for (size_t i = 0; i < snap->strs.count; i++) {
            size_t len = strlen(snap->strs.strs[i]);
            put_le(b, len, 4);
            unsigned char *p = buf_grow(b, len);
            if (p != NULL)
                memcpy(p, snap->strs.strs[i], len);
        }
        break;
    case SEC_MODULES:
        put_le(b, snap->nmodules, 4);
        for (size_t i = 0; i < snap->nmodules; i++) {
            put_string_ref(b, snap, snap->modules[i].path);
            put_string_ref(b, snap, snap->modules[i].build_id);
            put_le(b, snap->modules[i].bias, 8);
        }
        break;
    case SEC_FRAMES:
        put_le(b, snap->nframes, 4);
        for (size_t i = 0; i < snap->nframes; i++) {
            const zw_frame *f = &snap->frames[i]->pub;
            put_string_ref(b, snap, f->filename);
            put_le(b, f->lineno, 4);
            put_string_ref(b, snap, f->function);
            put_string_ref(b, snap, f->module);
            put_le(b, f->offset, 8);
            put_le(b, f->inlined ? 1 : 0, 4);
        }
        break;
    case SEC_TRACEBACKS:
        put_le(b, snap->ntbs, 4);
        for (size_t i = 0; i < snap->ntbs; i++) {
            const zw_traceback *tb = snap->tbs[i];
            put_le(b, tb->total_nframe, 4);
            put_le(b, tb->nframe, 4);
            for (size_t k = 0; k < tb->nframe; k++)
                put_le(b, ((const zwi_frame *)tb->frames[k])->index, 4);
        }
        break;
    case SEC_TRACES:
        put_le(b, snap->ntraces, 8);
        for (size_t i = 0; i < snap->ntraces; i++) {
            put_le(b, snap->traces[i].domain, 4);
            put_le(b, snap->traces[i].tb, 4);
            put_le(b, snap->traces[i].size, 8);
        }
        break;
    }
}

static const struct {
    uint32_t type;
    uint32_t flags;
} snapshot_sections[] = {
    {SEC_INFO, SECTION_REQUIRED},
    {SEC_STRINGS, SECTION_REQUIRED},
    {SEC_MODULES, 0},
    {SEC_FRAMES, SECTION_REQUIRED},
    {SEC_TRACEBACKS, SECTION_REQUIRED},
    {SEC_TRACES, SECTION_REQUIRED},
};
#define NSNAPSHOT_SECTIONS (sizeof(snapshot_sections) / sizeof(snapshot_sections[0]))

/* The whole file of `snap` into `out`. */
static int
encode_file(const zw_snapshot *snap, buf *out)
{
    unsigned char *h = buf_grow(out, HEADER_SIZE);
    if (h == NULL)
        return -1;
    memcpy(h, MAGIC, 8);
    set_le(h + 8, VERSION_MAJOR, 2);
    set_le(h + 10, VERSION_MINOR, 2);
    set_le(h + 12, KIND_SNAPSHOT, 4);
    set_le(h + 16, 0, 4);
    set_le(h + 20, NSNAPSHOT_SECTIONS + 1, 4);
    set_le(h + 24, 0, 4);
    set_le(h + 28, zwi_crc32(0, h, 28), 4);
    buf payload = {.raw = out->raw};
    for (size_t i = 0; i < NSNAPSHOT_SECTIONS; i++) {
        payload.len = 0;
        encode(snap, snapshot_sections[i].type, &payload);
        if (payload.failed || put_section(out, snapshot_sections[i].type,
                                          snapshot_sections[i].flags, &payload) != 0) {
            zwi_free(out->raw, payload.data);
            return -1;
        }
    }
    zwi_free(out->raw, payload.data);
    payload = (buf){.raw = out->raw};
    put_section(out, SEC_END, SECTION_REQUIRED, &payload);
    zwi_free(out->raw, payload.data);
    return out->failed ? -1 : 0;
}

int
zw_snapshot_dump(const zw_snapshot *snap, const char *path, zw_error *err)
{
    int status = -1;
    buf out = {.raw = snap->raw};
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
    zwi_free(snap->raw, out.data);
    return status;
}

/* ---- reading ---- */

typedef struct reader {
    const char *name; /* the file, for messages */
    zw_error *err;
    zw_snapshot *snap; /* being filled */
    const char **strs; /* STRINGS by index (pointers into snap->strs) */
    size_t nstrs;
    size_t cap_strs;
    /* the section being decoded, for messages */
    size_t sec_index;
    uint32_t sec_type;
    uint64_t sec_offset;    /* of its header in the file */
    const unsigned char *p; /* the payload, decompressed */
    size_t len;
    size_t pos;
    uint64_t ntraces_info; /* INFO's trace count, checked against TRACES */
} reader;

static int fail(reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
fail(reader *r, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return zw_error_set(r->err, "cannot read snapshot '%s': %s", r->name, what);
}

/* Fails naming the current section and the position in its payload. */
static int
bad(reader *r, const char *what)
{
    return fail(r, "%s at byte %zu of the payload of section %zu (%s) at offset %" PRIu64, what,
                r->pos, r->sec_index, section_name(r->sec_type), r->sec_offset);
}

static bool
take(reader *r, size_t n, const unsigned char **out)
{
    if (r->len - r->pos < n)
        return false;
    *out = r->p + r->pos;
    r->pos += n;
    return true;
}

static int
read_u32(reader *r, uint32_t *v)
{
    const unsigned char *p;
    *v = 0;
    if (!take(r, 4, &p))
        return bad(r, "truncated record");
    *v = (uint32_t)get_le(p, 4);
    return 0;
}

static int
read_u64(reader *r, uint64_t *v)
{
    const unsigned char *p;
    *v = 0;
    if (!take(r, 8, &p))
        return bad(r, "truncated record");
    *v = get_le(p, 8);
    return 0;
}

/* A count of records of at least `min` bytes each that must fit in what is left. */
static int
read_count(reader *r, int width, size_t min, size_t *count)
{
    uint64_t n;
    if (width == 4) {
        uint32_t v;
        if (read_u32(r, &v) != 0)
            return -1;
        n = v;
    } else if (read_u64(r, &n) != 0) {
        return -1;
    }
    if (n > (r->len - r->pos) / min)
        return bad(r, "record count larger than the section");
    *count = (size_t)n;
    return 0;
}

/* A string reference: NULL for NO_STRING if `nullable`. */
static int
read_string(reader *r, bool nullable, const char **s)
{
    uint32_t i = 0;
    *s = NULL;
    if (read_u32(r, &i) != 0)
        return -1;
    if (i == NO_STRING && nullable) {
        *s = NULL;
        return 0;
    }
    if (i >= r->nstrs)
        return bad(r, "string index out of range");
    *s = r->strs[i];
    return 0;
}

static int
decode_info(reader *r)
{
    uint32_t limit;
    uint32_t reserved;
    uint64_t created;
    if (read_u32(r, &limit) || read_u32(r, &reserved) || read_u64(r, &r->ntraces_info) ||
        read_u64(r, &created))
        return -1;
    r->snap->traceback_limit = limit;
    return 0;
}

static int
decode_strings(reader *r)
{
    size_t n = 0;
    if (read_count(r, 4, 4, &n) != 0)
        return -1;
    if (zwi_reserve(r->snap->raw, (void **)&r->strs, &r->cap_strs, n + 1, sizeof(char *)) != 0)
        return bad(r, "out of memory");
    for (size_t i = 0; i < n; i++) {
        uint32_t len;
        const unsigned char *p;
        if (read_u32(r, &len) != 0)
            return -1;
        if (!take(r, len, &p))
            return bad(r, "truncated string");
        if (memchr(p, '\0', len) != NULL)
            return bad(r, "string with a NUL byte");
        uint32_t index;
        const char *s = zwi_strtab_add(&r->snap->strs, (const char *)p, len, &index);
        if (s == NULL)
            return bad(r, "out of memory");
        if (index != i)
            return bad(r, "string stored twice");
        r->strs[r->nstrs++] = s;
    }
    return 0;
}

static int
decode_modules(reader *r)
{
    size_t n = 0;
    if (read_count(r, 4, 16, &n) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const char *path = NULL;
        const char *id = NULL;
        uint64_t bias;
        if (read_string(r, false, &path) || read_string(r, true, &id) || read_u64(r, &bias))
            return -1;
        if (zwi_snapshot_add_module(r->snap, path, id, bias) != 0)
            return bad(r, "out of memory");
    }
    return 0;
}

static int
decode_frames(reader *r)
{
    size_t n = 0;
    if (read_count(r, 4, FRAME_SIZE, &n) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        zw_frame f;
        uint32_t lineno;
        uint32_t flags;
        if (read_string(r, false, &f.filename) || read_u32(r, &lineno) ||
            read_string(r, true, &f.function) || read_string(r, true, &f.module) ||
            read_u64(r, &f.offset) || read_u32(r, &flags))
            return -1;
        if (flags > 1)
            return bad(r, "unknown frame flags");
        f.lineno = lineno;
        f.inlined = flags & 1;
        zwi_frame *x = zwi_snapshot_frame(r->snap, &f);
        if (x == NULL)
            return bad(r, "out of memory");
        if (x->index != i)
            return bad(r, "frame stored twice");
    }
    return 0;
}

static int
decode_tracebacks(reader *r)
{
    size_t n = 0;
    if (read_count(r, 4, 8, &n) != 0)
        return -1;
    const zw_frame **frames = NULL;
    size_t cap = 0;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        uint32_t total;
        size_t nframe = 0;
        if (read_u32(r, &total) || read_count(r, 4, 4, &nframe)) {
            rc = -1;
            break;
        }
        if (nframe == 0) {
            rc = bad(r, "traceback without frames");
            break;
        }
        if (zwi_reserve(r->snap->raw, (void **)&frames, &cap, nframe, sizeof(*frames)) != 0) {
            rc = bad(r, "out of memory");
            break;
        }
        for (size_t k = 0; k < nframe; k++) {
            uint32_t idx;
            if (read_u32(r, &idx) != 0) {
                rc = -1;
                break;
            }
            if (idx >= r->snap->nframes) {
                rc = bad(r, "frame index out of range");
                break;
            }
            frames[k] = &r->snap->frames[idx]->pub;
        }
        if (rc != 0)
            break;
        zw_traceback *tb = zwi_snapshot_traceback(r->snap, frames, nframe, total);
        if (tb == NULL)
            rc = bad(r, "out of memory");
        else if (tb->index != i)
            rc = bad(r, "traceback stored twice");
    }
    zwi_free(r->snap->raw, frames);
    return rc;
}

static int
decode_traces(reader *r)
{
    size_t n = 0;
    if (read_count(r, 8, 16, &n) != 0)
        return -1;
    if (n != r->ntraces_info)
        return bad(r, "trace count differs from the info section's");
    if (zwi_reserve(r->snap->raw, (void **)&r->snap->traces, &r->snap->cap_traces, n + 1,
                    sizeof(zwi_trace)) != 0)
        return bad(r, "out of memory");
    for (size_t i = 0; i < n; i++) {
        uint32_t domain;
        uint32_t tb;
        uint64_t size;
        if (read_u32(r, &domain) || read_u32(r, &tb) || read_u64(r, &size))
            return -1;
        if (tb >= r->snap->ntbs)
            return bad(r, "traceback index out of range");
        r->snap->traces[r->snap->ntraces++] = (zwi_trace){domain, tb, size};
    }
    return 0;
}

/* Decompresses a zstd payload of `stored` bytes that must give exactly `raw_len` bytes. The output
 * grows with what the stream really produces, so a forged raw_len allocates nothing. */
static int
inflate(reader *r, const unsigned char *src, size_t stored, uint64_t raw_len, buf *out)
{
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    if (dctx == NULL)
        return bad(r, "out of memory");
    int rc = 0;
    ZSTD_inBuffer in = {src, stored, 0};
    out->len = 0;
    for (;;) {
        size_t want = out->cap - out->len;
        if (want == 0) {
            size_t grow = out->cap < 65536 ? 65536 : out->cap;
            if (out->cap + grow > raw_len + 1)
                grow = (size_t)(raw_len + 1 - out->cap);
            if (grow == 0 ||
                zwi_reserve(out->raw, (void **)&out->data, &out->cap, out->cap + grow, 1) != 0) {
                rc = grow == 0 ? bad(r, "payload longer than its stated length")
                               : bad(r, "out of memory");
                break;
            }
            continue;
        }
        ZSTD_outBuffer o = {out->data, out->cap, out->len};
        size_t ret = ZSTD_decompressStream(dctx, &o, &in);
        out->len = o.pos;
        if (ZSTD_isError(ret)) {
            r->pos = 0;
            rc = fail(r, "section %zu (%s) at offset %" PRIu64 ": corrupt compressed data (%s)",
                      r->sec_index, section_name(r->sec_type), r->sec_offset,
                      ZSTD_getErrorName(ret));
            break;
        }
        if (out->len > raw_len) {
            rc = bad(r, "payload longer than its stated length");
            break;
        }
        if (ret == 0) { /* the frame is complete */
            if (in.pos != in.size)
                rc = bad(r, "bytes after the compressed payload");
            else if (out->len != raw_len)
                rc = bad(r, "payload shorter than its stated length");
            break;
        }
        if (in.pos == in.size && o.pos < o.size) {
            rc = bad(r, "compressed payload ends early");
            break;
        }
    }
    ZSTD_freeDCtx(dctx);
    return rc;
}

static int
decode_section(reader *r, uint32_t type)
{
    switch (type) {
    case SEC_INFO:
        return decode_info(r);
    case SEC_STRINGS:
        return decode_strings(r);
    case SEC_MODULES:
        return decode_modules(r);
    case SEC_FRAMES:
        return decode_frames(r);
    case SEC_TRACEBACKS:
        return decode_tracebacks(r);
    case SEC_TRACES:
        return decode_traces(r);
    default:
        return 0;
    }
}

/* The snapshot sections must come in this order, each once (modules may be missing). */
static int
section_rank(uint32_t type)
{
    switch (type) {
    case SEC_INFO:
        return 1;
    case SEC_STRINGS:
        return 2;
    case SEC_MODULES:
        return 3;
    case SEC_FRAMES:
        return 4;
    case SEC_TRACEBACKS:
        return 5;
    case SEC_TRACES:
        return 6;
    default:
        return 0;
    }
}

static zw_snapshot *
load(const unsigned char *data, size_t len, const char *name, zw_error *err)
{
    reader r = {.name = name, .err = err};
    if (len < HEADER_SIZE) {
        if (len >= 8 && memcmp(data, MAGIC, 8) != 0)
            fail(&r, "not a zerowaste snapshot (bad magic number at offset 0)");
        else
            fail(&r, "file truncated: %zu bytes, the header alone is %d", len, HEADER_SIZE);
        return NULL;
    }
    if (memcmp(data, MAGIC, 8) != 0) {
        fail(&r, "not a zerowaste snapshot (bad magic number at offset 0)");
        return NULL;
    }
    if (CHECKSUM_BAD(zwi_crc32(0, data, 28), (uint32_t)get_le(data + 28, 4))) {
        fail(&r, "header damaged (checksum mismatch at offset 28)");
        return NULL;
    }
    unsigned major = (unsigned)get_le(data + 8, 2);
    unsigned minor = (unsigned)get_le(data + 10, 2);
    if (major != VERSION_MAJOR) {
        fail(&r, "format version %u.%u is %s than this reader's %d.%d (offset 8)", major, minor,
             major > VERSION_MAJOR ? "newer" : "older", VERSION_MAJOR, VERSION_MINOR);
        return NULL;
    }
    uint32_t kind = (uint32_t)get_le(data + 12, 4);
    if (kind != KIND_SNAPSHOT) {
        fail(&r, "file kind %" PRIu32 " at offset 12 is not a snapshot (%u)", kind, KIND_SNAPSHOT);
        return NULL;
    }
    uint32_t nsections = (uint32_t)get_le(data + 20, 4);
    r.snap = zw_snapshot_new(0);
    if (r.snap == NULL) {
        fail(&r, "%s", strerror(ENOMEM));
        return NULL;
    }
    buf payload = {.raw = r.snap->raw};
    int rc = 0;
    int last_rank = 0;
    bool ended = false;
    size_t off = HEADER_SIZE;
    size_t i = 0;
    for (; rc == 0 && !ended; i++) {
        r.sec_index = i;
        r.sec_offset = off;
        r.sec_type = 0;
        r.pos = 0;
        if (i >= nsections) {
            rc = fail(&r,
                      "no end section after the %" PRIu32 " sections the header announces "
                      "(offset %zu)",
                      nsections, off);
            break;
        }
        if (len - off < SECTION_SIZE) {
            rc = fail(&r,
                      "file truncated at offset %zu: section %zu's header needs %d bytes, "
                      "%zu left",
                      off, i, SECTION_SIZE, len - off);
            break;
        }
        const unsigned char *h = data + off;
        if (CHECKSUM_BAD(zwi_crc32(0, h, 28), (uint32_t)get_le(h + 28, 4))) {
            rc = fail(&r, "section %zu header at offset %zu damaged (checksum mismatch)", i, off);
            break;
        }
        uint32_t type = (uint32_t)get_le(h, 4);
        uint32_t flags = (uint32_t)get_le(h + 4, 4);
        uint64_t stored = get_le(h + 8, 8);
        uint64_t raw_len = get_le(h + 16, 8);
        r.sec_type = type;
        if (stored > len - off - SECTION_SIZE) {
            rc = fail(&r,
                      "file truncated: section %zu (%s) at offset %zu needs %" PRIu64
                      " bytes, %zu left",
                      i, section_name(type), off, stored, len - off - SECTION_SIZE);
            break;
        }
        const unsigned char *src = h + SECTION_SIZE;
        if (CHECKSUM_BAD(zwi_crc32(0, src, (size_t)stored), (uint32_t)get_le(h + 24, 4))) {
            rc = fail(&r, "section %zu (%s) at offset %zu damaged (payload checksum mismatch)", i,
                      section_name(type), off);
            break;
        }
        off += SECTION_SIZE + (size_t)stored;
        if (flags & ~SECTION_FLAGS) {
            rc = fail(&r, "section %zu (%s) at offset %" PRIu64 " has unknown flags 0x%" PRIx32, i,
                      section_name(type), r.sec_offset, flags);
            break;
        }
        int rank = section_rank(type);
        if (type == SEC_END) {
            ended = true;
            if (raw_len != 0)
                rc = fail(&r, "section %zu (end) at offset %" PRIu64 " is not empty", i,
                          r.sec_offset);
            continue;
        }
        if (rank == 0) {
            if (flags & SECTION_REQUIRED)
                rc = fail(&r,
                          "section %zu at offset %" PRIu64 " has type %" PRIu32 " (%s), "
                          "required and unknown to this reader",
                          i, r.sec_offset, type, section_name(type));
            continue; /* optional: skipped */
        }
        /* info, strings, [modules], frames, tracebacks, traces: in this order, each once */
        if (rank != last_rank + 1 && !(rank == 4 && last_rank == 2)) {
            rc = fail(&r,
                      "section %zu (%s) at offset %" PRIu64 " is out of order, repeated, or "
                      "follows a missing section",
                      i, section_name(type), r.sec_offset);
            break;
        }
        last_rank = rank;
        if (raw_len > MAX_RAW_LEN) {
            rc = bad(&r, "payload length too large");
            break;
        }
        if (flags & SECTION_ZSTD) {
            if (inflate(&r, src, (size_t)stored, raw_len, &payload) != 0) {
                rc = -1;
                break;
            }
            r.p = payload.data;
            r.len = payload.len;
        } else {
            if (raw_len != stored) {
                rc = bad(&r, "stored and raw lengths differ in an uncompressed section");
                break;
            }
            r.p = src;
            r.len = (size_t)stored;
        }
        r.pos = 0;
        if (decode_section(&r, type) != 0) {
            rc = -1;
            break;
        }
        if (r.pos != r.len) {
            rc = bad(&r, "bytes left over after the last record");
            break;
        }
    }
    if (rc == 0 && last_rank < 6)
        rc = fail(&r, "section %s missing before the end section at offset %" PRIu64,
                  last_rank < 1   ? "info"
                  : last_rank < 2 ? "strings"
                  : last_rank < 4 ? "frames"
                  : last_rank < 5 ? "tracebacks"
                                  : "traces",
                  r.sec_offset);
    if (rc == 0 && i != nsections)
        rc = fail(&r, "the header announces %" PRIu32 " sections, the file has %zu", nsections, i);
    if (rc == 0 && off != len)
        rc = fail(&r, "%zu bytes after the end section at offset %zu", len - off, off);
    zwi_free(r.snap->raw, payload.data);
    zwi_free(r.snap->raw, r.strs);
    if (rc != 0) {
        zw_snapshot_free(r.snap);
        return NULL;
    }
    return r.snap;
}

zw_snapshot *
zw_snapshot_load_memory(const void *data, size_t len, zw_error *err)
{
    return load(data, len, "<memory>", err);
}

zw_snapshot *
zw_snapshot_load(const char *path, zw_error *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        zw_error_set(err, "cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    zw_snapshot *snap = NULL;
    zw_raw *raw = zw_raw_new(NULL);
    buf b = {.raw = raw};
    if (raw == NULL) {
        zw_error_set(err, "cannot read '%s': %s", path, strerror(ENOMEM));
        goto out_close;
    }
    for (;;) {
        unsigned char *p = buf_grow(&b, 65536);
        if (p == NULL) {
            zw_error_set(err, "cannot read '%s': %s", path, strerror(ENOMEM));
            goto out_release;
        }
        size_t got = fread(p, 1, 65536, f);
        b.len -= 65536 - got;
        if (got < 65536) {
            if (ferror(f)) {
                zw_error_set(err, "cannot read '%s': %s", path, strerror(errno));
                goto out_release;
            }
            break;
        }
    }
    snap = load(b.data, b.len, path, err);
out_release:
    zwi_free(raw, b.data);
    zw_raw_destroy(raw);
out_close:
    fclose(f);
    return snap;
}

int
zwi_snapshot_encode(const zw_snapshot *snap, zw_raw *raw, unsigned char **data, size_t *len)
{
    buf out = {.raw = raw};
    if (encode_file(snap, &out) != 0) {
        zwi_free(raw, out.data);
        return -1;
    }
    *data = out.data;
    *len = out.len;
    return 0;
}
