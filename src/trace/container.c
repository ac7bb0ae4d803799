/* trace/container.c - the container codec of both file kinds (docs/format.md#layout): the file and
 * section headers, CRC32 checksums, zstd, and the messages a reader gives. format.c (snapshots)
 * and capture.c (captures) only decode payloads; everything about framing is here.
 *
 * Reading trusts nothing: every header and payload is checked against its CRC before use, a
 * decompressed payload must have exactly its stated length (the buffer grows with what the zstd
 * stream really produces, never with what a header claims), and a failure names the file, what
 * is wrong and where: the section, its offset in the file, and the byte of its payload. */
#include "container.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <zstd.h>

static const unsigned char MAGIC[8] = {0x89, 'Z', 'W', 'T', 'R', '\r', '\n', 0x1a};
#define VERSION_MAJOR 1

/* The fuzz targets' build (tests/fuzz) ignores checksums, so that the fuzzer reaches the decoders
 * behind them; every other check stays. */
#ifdef ZW_FUZZING
#    define CHECKSUM_BAD(computed, stored) ((void)(computed), (void)(stored), false)
#else
#    define CHECKSUM_BAD(computed, stored) ((computed) != (stored))
#endif

/* What each kind is called, the minor version its writer writes (the reader of that kind names
 * it in a version error), and whether it is streamed (nsections 0, END optional). */
static const struct kind_info {
    const char *what;
    unsigned minor;
    bool streamed;
} kinds[] = {
    [ZWI_KIND_SNAPSHOT] = {"snapshot", 0, false},
    [ZWI_KIND_CAPTURE] = {"capture", 6, true},
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

const char *
zwi_section_name(uint32_t type)
{
    switch (type) {
    case ZWI_SEC_END:
        return "end";
    case ZWI_SEC_INFO:
        return "info";
    case ZWI_SEC_STRINGS:
        return "strings";
    case ZWI_SEC_MODULES:
        return "modules";
    case ZWI_SEC_FRAMES:
        return "frames";
    case ZWI_SEC_TRACEBACKS:
        return "tracebacks";
    case ZWI_SEC_TRACES:
        return "traces";
    case ZWI_SEC_PROCESS:
        return "process";
    case ZWI_SEC_TIMESERIES:
        return "time series";
    case ZWI_SEC_PEAK_SET:
        return "peak set";
    case ZWI_SEC_EXIT_SET:
        return "exit set";
    case ZWI_SEC_MARK:
        return "mark";
    case ZWI_SEC_TOTALS:
        return "totals";
    case ZWI_SEC_SITES:
        return "sites";
    case ZWI_SEC_SERIES:
        return "series";
    case ZWI_SEC_SITE_DELTAS:
        return "site deltas";
    case ZWI_SEC_SITE_INFO:
        return "site info";
    case ZWI_SEC_LIVE:
        return "live counters";
    case ZWI_SEC_LEAKS:
        return "leaks";
    case ZWI_SEC_MARK_LEAKS:
        return "mark leaks";
    case ZWI_SEC_TABLE:
        return "table";
    case ZWI_SEC_SET:
        return "set";
    case ZWI_SEC_SITE_LIST:
        return "site list";
    case ZWI_SEC_SAMPLES:
        return "samples";
    case ZWI_SEC_STEPS:
        return "steps";
    case ZWI_SEC_PACKED:
        return "packed";
    default:
        return "unknown";
    }
}

/* Whether a reader of `kind` decodes sections of `type` (END aside). */
static bool
known(uint32_t kind, uint32_t type)
{
    if (kind == ZWI_KIND_SNAPSHOT)
        return type >= ZWI_SEC_INFO && type <= ZWI_SEC_TRACES;
    return type >= ZWI_SEC_PROCESS && type <= ZWI_SEC_PACKED;
}

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

/* slices[k][b]: the CRC of byte b followed by k zero bytes (slices[0] is crc_table), made once:
 * the checksums of a large capture's payloads (megabytes at its end) a word at a time. */
static uint32_t slices[8][256];
static pthread_once_t slices_once = PTHREAD_ONCE_INIT;

static void
make_slices(void)
{
    for (int b = 0; b < 256; b++)
        slices[0][b] = crc_table[b];
    for (int k = 1; k < 8; k++) {
        for (int b = 0; b < 256; b++)
            slices[k][b] = (slices[k - 1][b] >> 8) ^ crc_table[slices[k - 1][b] & 0xff];
    }
}

uint32_t
zwi_crc32(uint32_t crc, const void *data, size_t len)
{
    const unsigned char *p = data;
    crc = ~crc;
    if (len >= 64) {
        pthread_once(&slices_once, make_slices);
        for (; len >= 8; len -= 8, p += 8) { /* eight bytes a step: slicing-by-8 */
            uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                                 (uint32_t)p[3] << 24);
            crc = slices[7][lo & 0xff] ^ slices[6][(lo >> 8) & 0xff] ^
                  slices[5][(lo >> 16) & 0xff] ^ slices[4][lo >> 24] ^ slices[3][p[4]] ^
                  slices[2][p[5]] ^ slices[1][p[6]] ^ slices[0][p[7]];
        }
    }
    for (size_t i = 0; i < len; i++)
        crc = crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}


/* ---- little-endian bytes ---- */

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

void
zwi_container_put_header(zwi_cbuf *out, uint32_t kind, unsigned minor, uint32_t nsections)
{
    unsigned char *h = zwi_cbuf_grow(out, ZWI_HEADER_SIZE);
    if (h == NULL)
        return;
    memcpy(h, MAGIC, 8);
    set_le(h + 8, VERSION_MAJOR, 2);
    set_le(h + 10, minor, 2);
    set_le(h + 12, kind, 4);
    set_le(h + 16, 0, 4); /* flags: none defined */
    set_le(h + 20, nsections, 4);
    set_le(h + 24, 0, 4);
    set_le(h + 28, zwi_crc32(0, h, 28), 4);
}

static void put_section(zwi_cbuf *out, uint32_t type, uint32_t flags,
                        const zwi_cbuf *const *parts, size_t nparts, int level, bool or_stored);

void
zwi_container_put_section(zwi_cbuf *out, uint32_t type, uint32_t flags, const zwi_cbuf *payload,
                          bool compress)
{
    put_section(out, type, flags, &payload, 1, compress ? 3 : 0, false);
}

void
zwi_container_put_section_level(zwi_cbuf *out, uint32_t type, uint32_t flags,
                                const zwi_cbuf *payload, int level)
{
    put_section(out, type, flags, &payload, 1, level, true);
}

void
zwi_container_put_section_parts(zwi_cbuf *out, uint32_t type, uint32_t flags,
                                const zwi_cbuf *const *parts, size_t nparts, int level)
{
    put_section(out, type, flags, parts, nparts, level, true);
}

/* The parts, `len` bytes in all, compressed into dst[0, cap) as one zstd frame: its size, or a
 * zstd error code. Several parts are streamed through one context, not copied together first. */
static size_t
compress_parts(void *dst, size_t cap, const zwi_cbuf *const *parts, size_t nparts, size_t len,
               int level)
{
    if (nparts == 1)
        return ZSTD_compress(dst, cap, parts[0]->data, parts[0]->len, level);
    ZSTD_CCtx *cx = ZSTD_createCCtx();
    if (cx == NULL)
        return (size_t)-1; /* a zstd error code (ZSTD_isError) */
    size_t rc = ZSTD_CCtx_setParameter(cx, ZSTD_c_compressionLevel, level);
    if (!ZSTD_isError(rc))
        rc = ZSTD_CCtx_setPledgedSrcSize(cx, len);
    ZSTD_outBuffer o = {dst, cap, 0};
    for (size_t i = 0; i < nparts && !ZSTD_isError(rc); i++) {
        ZSTD_inBuffer in = {parts[i]->data, parts[i]->len, 0};
        while (in.pos < in.size && !ZSTD_isError(rc))
            rc = ZSTD_compressStream2(cx, &o, &in, ZSTD_e_continue);
    }
    ZSTD_inBuffer none = {NULL, 0, 0};
    do { /* cap is the bound: every call makes progress */
        if (!ZSTD_isError(rc))
            rc = ZSTD_compressStream2(cx, &o, &none, ZSTD_e_end);
    } while (!ZSTD_isError(rc) && rc != 0);
    ZSTD_freeCCtx(cx);
    return ZSTD_isError(rc) ? rc : o.pos;
}

/* Section `type` holding the parts one after the other, at zstd `level` (0: stored);
 * `or_stored`: stored as it is when compressing does not make it smaller (a snapshot's sections
 * are all compressed, whatever their size). A section zstd cannot compress (no memory for its
 * context) is stored as it is. */
static void
put_section(zwi_cbuf *out, uint32_t type, uint32_t flags, const zwi_cbuf *const *parts,
            size_t nparts, int level, bool or_stored)
{
    bool compress = level > 0;
    size_t len = 0;
    for (size_t i = 0; i < nparts; i++) {
        if (parts[i]->failed || parts[i]->len > SIZE_MAX / 2 - len) {
            out->failed = true;
            return;
        }
        len += parts[i]->len;
    }
    size_t bound = compress ? ZSTD_compressBound(len) : len;
    size_t at = out->len;
    unsigned char *h = zwi_cbuf_grow(out, ZWI_SECTION_SIZE + bound);
    if (h == NULL)
        return;
    size_t stored = len;
    if (compress) {
        stored = compress_parts(h + ZWI_SECTION_SIZE, bound, parts, nparts, len, level);
        /* zstd's own memory refused (a process at its address space limit, writing the end of
         * its capture): stored as it is rather than lost */
        if (ZSTD_isError(stored) || (or_stored && stored >= len)) {
            compress = false; /* else nothing gained: stored as it is */
            stored = len;
        }
    }
    if (!compress) {
        size_t to = 0;
        for (size_t i = 0; i < nparts; i++) {
            if (parts[i]->len > 0)
                memcpy(h + ZWI_SECTION_SIZE + to, parts[i]->data, parts[i]->len);
            to += parts[i]->len;
        }
    }
    out->len = at + ZWI_SECTION_SIZE + stored;
    flags = (flags & ZWI_SECTION_REQUIRED) | (compress ? ZWI_SECTION_ZSTD : 0);
    set_le(h, type, 4);
    set_le(h + 4, flags, 4);
    set_le(h + 8, stored, 8);
    set_le(h + 16, len, 8);
    set_le(h + 24, zwi_crc32(0, h + ZWI_SECTION_SIZE, stored), 4);
    set_le(h + 28, zwi_crc32(0, h, 28), 4);
}

/* ---- reading a payload ---- */

zwi_cursor
zwi_cursor_of(const void *p, size_t len, zw_raw *raw)
{
    return (zwi_cursor){.p = p, .len = len, .raw = raw};
}

int
zwi_cursor_fail(zwi_cursor *c, const char *fmt, ...)
{
    if (c->why[0] != '\0')
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why, sizeof(c->why), fmt, ap);
    va_end(ap);
    c->why_pos = c->pos;
    return -1;
}

/* `n` bytes at the cursor, stepped over; NULL if fewer are left. */
static const unsigned char *
take(zwi_cursor *c, size_t n)
{
    if (c->why[0] != '\0' || c->len - c->pos < n)
        return NULL;
    const unsigned char *p = c->p + c->pos;
    c->pos += n;
    return p;
}

int
zwi_get_u32(zwi_cursor *c, uint32_t *v)
{
    const unsigned char *p = take(c, 4);
    *v = p != NULL ? (uint32_t)get_le(p, 4) : 0;
    return p != NULL ? 0 : zwi_cursor_fail(c, "truncated record");
}

int
zwi_get_u64(zwi_cursor *c, uint64_t *v)
{
    const unsigned char *p = take(c, 8);
    *v = p != NULL ? get_le(p, 8) : 0;
    return p != NULL ? 0 : zwi_cursor_fail(c, "truncated record");
}

int
zwi_get_bytes(zwi_cursor *c, size_t n, const char *what, const unsigned char **out)
{
    *out = take(c, n);
    return *out != NULL ? 0 : zwi_cursor_fail(c, "truncated %s", what);
}

int
zwi_get_varint(zwi_cursor *c, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        const unsigned char *p = take(c, 1);
        if (p == NULL)
            return zwi_cursor_fail(c, "truncated record");
        if (shift == 63 && *p > 1)
            return zwi_cursor_fail(c, "varint larger than 64 bits");
        *v |= (uint64_t)(*p & 0x7f) << shift;
        if ((*p & 0x80) == 0)
            return 0;
    }
    return zwi_cursor_fail(c, "varint longer than 10 bytes");
}

int
zwi_get_varint32(zwi_cursor *c, uint32_t *v)
{
    uint64_t x;
    *v = 0;
    if (zwi_get_varint(c, &x) != 0)
        return -1;
    if (x > UINT32_MAX)
        return zwi_cursor_fail(c, "value larger than 32 bits");
    *v = (uint32_t)x;
    return 0;
}

int
zwi_get_count(zwi_cursor *c, int width, size_t min, const char *what, size_t *n)
{
    uint64_t v = 0;
    *n = 0;
    if (width == 0) {
        if (zwi_get_varint(c, &v) != 0)
            return -1;
    } else if (width == 4) {
        uint32_t v32;
        if (zwi_get_u32(c, &v32) != 0)
            return -1;
        v = v32;
    } else if (zwi_get_u64(c, &v) != 0) {
        return -1;
    }
    if (v > (c->len - c->pos) / min)
        return zwi_cursor_fail(c, "%s count larger than the payload", what);
    *n = (size_t)v;
    return 0;
}

/* ---- reading a file ---- */

int
zwi_container_fail(zwi_container *c, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (c->name == NULL)
        return zw_error_set(c->err, "%s", what);
    return zw_error_set(c->err, "cannot read %s '%s': %s", c->what, c->name, what);
}

int
zwi_container_bad(zwi_container *c, const zwi_cursor *cur)
{
    return zwi_container_fail(c, "%s at byte %zu of the payload of section %zu (%s) at offset %zu",
                              cur->why[0] != '\0' ? cur->why : "damaged record", cur->why_pos,
                              c->index, zwi_section_name(c->type), c->offset);
}

int
zwi_container_decoded(zwi_container *c, const zwi_cursor *cur, int rc)
{
    if (rc != 0 || cur->why[0] != '\0')
        return zwi_container_bad(c, cur);
    if (cur->pos == cur->len)
        return 0;
    zwi_cursor left = *cur;
    zwi_cursor_fail(&left, "bytes left over after the last record");
    return zwi_container_bad(c, &left);
}

int
zwi_container_open(zwi_container *c, const void *data, size_t len, uint32_t kind, const char *name,
                   zw_raw *raw, zw_error *err)
{
    ZW_ASSERT(kind < NKINDS && kinds[kind].what != NULL);
    *c = (zwi_container){.what = kinds[kind].what,
                         .name = name,
                         .err = err,
                         .data = data,
                         .len = len,
                         .raw = raw,
                         .streamed = kinds[kind].streamed,
                         .next_off = ZWI_HEADER_SIZE,
                         .index = SIZE_MAX,
                         .inflated = {.raw = raw}};
    const unsigned char *h = data;
    if (len > 0 && memcmp(h, MAGIC, len < 8 ? len : 8) != 0)
        return zwi_container_fail(c, "not a zerowaste file (bad magic number at offset 0)");
    if (len < ZWI_HEADER_SIZE)
        return zwi_container_fail(c, "file truncated: %zu bytes, the header alone is %d", len,
                                  ZWI_HEADER_SIZE);
    if (CHECKSUM_BAD(zwi_crc32(0, h, 28), (uint32_t)get_le(h + 28, 4)))
        return zwi_container_fail(c, "header damaged (checksum mismatch at offset 28)");
    c->major = (unsigned)get_le(h + 8, 2);
    c->minor = (unsigned)get_le(h + 10, 2);
    if (c->major != VERSION_MAJOR)
        return zwi_container_fail(
            c, "format version %u.%u is %s than this reader's %d.%u (offset 8)", c->major, c->minor,
            c->major > VERSION_MAJOR ? "newer" : "older", VERSION_MAJOR, kinds[kind].minor);
    c->kind = (uint32_t)get_le(h + 12, 4);
    if (c->kind != kind) {
        bool named = c->kind < NKINDS && kinds[c->kind].what != NULL;
        return zwi_container_fail(
            c, "file kind %" PRIu32 " at offset 12 is not a %s (%" PRIu32 ")%s%s", c->kind, c->what,
            kind, named ? ": it is a " : "", named ? kinds[c->kind].what : "");
    }
    c->nsections = (uint32_t)get_le(h + 20, 4);
    return 0;
}

/* The section at c->next_off: 1 if it is whole and its checksums match, 0 if a streamed file ends
 * before it, -1 with a message. */
static int
read_section_header(zwi_container *c)
{
    size_t off = c->next_off;
    c->index++;
    c->offset = off;
    c->type = 0;
    c->flags = 0;
    if (!c->streamed && c->index >= c->nsections)
        return zwi_container_fail(
            c, "no end section after the %" PRIu32 " sections the header announces (offset %zu)",
            c->nsections, off);
    if (c->len - off < ZWI_SECTION_SIZE) {
        if (c->streamed)
            return 0; /* cut short: the sections before stand */
        return zwi_container_fail(
            c, "file truncated at offset %zu: section %zu's header needs %d bytes, %zu left", off,
            c->index, ZWI_SECTION_SIZE, c->len - off);
    }
    const unsigned char *h = c->data + off;
    if (CHECKSUM_BAD(zwi_crc32(0, h, 28), (uint32_t)get_le(h + 28, 4)))
        return zwi_container_fail(c, "section %zu header at offset %zu damaged (checksum mismatch)",
                                  c->index, off);
    c->type = (uint32_t)get_le(h, 4);
    c->flags = (uint32_t)get_le(h + 4, 4);
    c->stored = get_le(h + 8, 8);
    c->raw_len = get_le(h + 16, 8);
    size_t left = c->len - off - ZWI_SECTION_SIZE;
    if (c->stored > left) {
        if (c->streamed)
            return 0; /* cut short while this section was written */
        return zwi_container_fail(
            c, "file truncated: section %zu (%s) at offset %zu needs %" PRIu64 " bytes, %zu left",
            c->index, zwi_section_name(c->type), off, c->stored, left);
    }
    /* the header is sound: whatever is wrong from here on, the next section is known */
    c->next_off = off + ZWI_SECTION_SIZE + (size_t)c->stored;
    c->skippable = true;
    /* a capture's LIVE payload is updated in place by the running process: no checksum */
    bool live = c->kind == ZWI_KIND_CAPTURE && c->type == ZWI_SEC_LIVE;
    if (!live && CHECKSUM_BAD(zwi_crc32(0, h + ZWI_SECTION_SIZE, (size_t)c->stored),
                              (uint32_t)get_le(h + 24, 4)))
        return zwi_container_fail(
            c, "section %zu (%s) at offset %zu damaged (payload checksum mismatch)", c->index,
            zwi_section_name(c->type), off);
    if (c->flags & ~(ZWI_SECTION_REQUIRED | ZWI_SECTION_ZSTD))
        return zwi_container_fail(c, "section %zu (%s) at offset %zu has unknown flags 0x%" PRIx32,
                                  c->index, zwi_section_name(c->type), off, c->flags);
    return 1;
}

/* The END section just read: empty, the last of the file, and where the header said. */
static int
read_end(zwi_container *c)
{
    c->ended = true;
    if (c->raw_len != 0)
        return zwi_container_fail(c, "section %zu (end) at offset %zu is not empty", c->index,
                                  c->offset);
    if (!c->streamed && c->index + 1 != c->nsections)
        return zwi_container_fail(c, "the header announces %" PRIu32 " sections, the file has %zu",
                                  c->nsections, c->index + 1);
    if (c->next_off != c->len)
        return zwi_container_fail(c, "%zu bytes after the end section at offset %zu",
                                  c->len - c->next_off, c->next_off);
    return 0;
}

int
zwi_container_next(zwi_container *c)
{
    while (!c->ended) {
        c->skippable = false;
        int rc = read_section_header(c);
        if (rc <= 0)
            return rc;
        if (c->type == ZWI_SEC_END) {
            c->skippable = false;
            return read_end(c);
        }
        if (known(c->kind, c->type))
            return 1;
        c->skippable = false;
        if (c->flags & ZWI_SECTION_REQUIRED)
            return zwi_container_fail(c,
                                      "section %zu at offset %zu has type %" PRIu32
                                      " (%s), required and unknown to this reader",
                                      c->index, c->offset, c->type, zwi_section_name(c->type));
        /* optional and unknown (a later minor version's): skipped */
    }
    return 0;
}

/* Decompresses the section's zstd frame into c->inflated, which must come to exactly raw_len
 * bytes. The buffer grows with what the stream really produces, so a forged raw_len allocates
 * nothing. */
static int
inflate(zwi_container *c, zwi_cursor *cur)
{
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    if (dctx == NULL)
        return zwi_cursor_fail(cur, "out of memory");
    zwi_cbuf *out = &c->inflated;
    ZSTD_inBuffer in = {c->data + c->offset + ZWI_SECTION_SIZE, (size_t)c->stored, 0};
    int rc = 0;
    out->len = 0;
    for (;;) {
        if (out->len == out->cap) {
            size_t grow = out->cap < 65536 ? 65536 : out->cap;
            if (out->cap + grow > c->raw_len + 1)
                grow = (size_t)(c->raw_len + 1 - out->cap);
            if (grow == 0) {
                rc = zwi_cursor_fail(cur, "payload longer than its stated length");
                break;
            }
            if (zwi_reserve(c->raw, (void **)&out->data, &out->cap, out->cap + grow, 1) != 0) {
                rc = zwi_cursor_fail(cur, "out of memory");
                break;
            }
        }
        ZSTD_outBuffer o = {out->data, out->cap, out->len};
        size_t ret = ZSTD_decompressStream(dctx, &o, &in);
        out->len = o.pos;
        if (ZSTD_isError(ret)) {
            rc = zwi_container_fail(
                c, "section %zu (%s) at offset %zu: corrupt compressed data (%s)", c->index,
                zwi_section_name(c->type), c->offset, ZSTD_getErrorName(ret));
            break;
        }
        if (out->len > c->raw_len) {
            rc = zwi_cursor_fail(cur, "payload longer than its stated length");
            break;
        }
        if (ret == 0) { /* the frame is complete */
            if (in.pos != in.size)
                rc = zwi_cursor_fail(cur, "bytes after the compressed payload");
            else if (out->len != c->raw_len)
                rc = zwi_cursor_fail(cur, "payload shorter than its stated length");
            break;
        }
        if (in.pos == in.size && o.pos < o.size) {
            rc = zwi_cursor_fail(cur, "compressed payload ends early");
            break;
        }
    }
    ZSTD_freeDCtx(dctx);
    return rc;
}

int
zwi_container_payload(zwi_container *c, zwi_cursor *cur, zw_raw *raw)
{
    const unsigned char *src = c->data + c->offset + ZWI_SECTION_SIZE;
    *cur = zwi_cursor_of(src, (size_t)c->stored, raw);
    if (!(c->flags & ZWI_SECTION_ZSTD)) {
        if (c->raw_len != c->stored)
            return zwi_container_bad(
                c,
                &(zwi_cursor){.why = "stored and raw lengths differ in an uncompressed section"});
        return 0;
    }
    zwi_cursor status = {0};
    if (c->raw_len > ZWI_MAX_RAW_LEN)
        return zwi_container_bad(c, &(zwi_cursor){.why = "payload length too large"});
    if (inflate(c, &status) != 0)
        return status.why[0] != '\0' ? zwi_container_bad(c, &status) : -1;
    *cur = zwi_cursor_of(c->inflated.data, c->inflated.len, raw);
    return 0;
}

void
zwi_container_release(zwi_container *c)
{
    zwi_cbuf_release(&c->inflated);
}

int
zwi_read_file(const char *path, zwi_cbuf *out, zw_error *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return zw_error_set(err, "cannot open '%s': %s", path, strerror(errno));
    int status = -1;
    for (;;) {
        unsigned char *p = zwi_cbuf_grow(out, 65536);
        if (p == NULL) {
            zw_error_set(err, "cannot read '%s': %s", path, strerror(ENOMEM));
            break;
        }
        size_t got = fread(p, 1, 65536, f);
        out->len -= 65536 - got;
        if (got < 65536) {
            if (ferror(f))
                zw_error_set(err, "cannot read '%s': %s", path, strerror(errno));
            else
                status = 0;
            break;
        }
    }
    fclose(f);
    return status;
}
