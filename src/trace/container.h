/* trace/container.h - the container of zerowaste files (docs/format.md#layout): a 32-byte header
 * (magic, version, kind, section count, CRC32), then sections, each a 32-byte header (type, flags,
 * stored and raw lengths, CRC32 of the payload, CRC32 of the header) and a payload, possibly one
 * zstd frame. Both file kinds use it: snapshots (kind 1, format.c) and captures (kind 2,
 * capture.c, whose section payloads are capture_format.c's).
 *
 * Writing: the header and section writers below, into a zwi_cbuf (trace_util.h).
 * Reading: zwi_container walks the sections of a file in memory, checking every header and
 * payload against its CRC and decompressing; a section's payload is read through a zwi_cursor,
 * whose first failure the container turns into a message naming the file, the section and the
 * byte: "cannot read capture 'x.zwc': truncated record at byte 4096 of the payload of section 3
 * (series) at offset 880". */
#ifndef ZW_TRACE_CONTAINER_H
#define ZW_TRACE_CONTAINER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trace_internal.h"

#define ZWI_KIND_SNAPSHOT 1u
#define ZWI_KIND_CAPTURE  2u

#define ZWI_HEADER_SIZE      32
#define ZWI_SECTION_SIZE     32
#define ZWI_SECTION_REQUIRED (1u << 0) /* a reader that does not know the type refuses the file */
#define ZWI_SECTION_ZSTD     (1u << 1) /* the payload is one zstd frame */
#define ZWI_MAX_RAW_LEN      ((uint64_t)1 << 32) /* the largest decompressed payload read */

/* Section types of both kinds (docs/format.md#section-types). */
enum zwi_section_type {
    ZWI_SEC_END = 0,
    /* snapshot (kind 1), in this order, each once (MODULES may be missing) */
    ZWI_SEC_INFO = 1,
    ZWI_SEC_STRINGS = 2,
    ZWI_SEC_MODULES = 3,
    ZWI_SEC_FRAMES = 4,
    ZWI_SEC_TRACEBACKS = 5,
    ZWI_SEC_TRACES = 6,
    /* capture (kind 2), in any order after PROCESS (capture_format.h) */
    ZWI_SEC_PROCESS = 16,     /* pid, ppid, start time, interval, nframe, argv */
    ZWI_SEC_TIMESERIES = 17,  /* samples (time, heap bytes, heap blocks, rss): 1.1 */
    ZWI_SEC_PEAK_SET = 18,    /* a live set: time, bytes, label, an embedded snapshot file */
    ZWI_SEC_EXIT_SET = 19,    /* likewise */
    ZWI_SEC_MARK = 20,        /* likewise */
    ZWI_SEC_TOTALS = 21,      /* the counters and how the process ended */
    ZWI_SEC_SITES = 22,       /* per-traceback allocation counts and bytes */
    ZWI_SEC_SERIES = 23,      /* samples with the running totals (written instead of TIMESERIES) */
    ZWI_SEC_SITE_DELTAS = 24, /* steps: per site, the change of its live blocks and bytes */
    ZWI_SEC_SITE_INFO = 25,   /* per site of SITES: its ref and temporary allocations */
    ZWI_SEC_LIVE = 26,        /* counters the process updates in place; no payload checksum */
    ZWI_SEC_LEAKS = 27,       /* the exit set's reachability scan: status, kind of each block */
    ZWI_SEC_MARK_LEAKS = 28,  /* a mark's scan, as LEAKS, right after its MARK section */
    ZWI_SEC_TABLE = 29,       /* 1.5: strings, modules, frames, tracebacks of every set and site */
    ZWI_SEC_SET = 30,         /* 1.5: a live set (peak, exit, mark) naming TABLE's tracebacks */
    ZWI_SEC_SITE_LIST = 31,   /* 1.5: SITES and SITE_INFO in one, naming TABLE's tracebacks */
    ZWI_SEC_SAMPLES = 32,     /* 1.5: SERIES as varint deltas (written instead of SERIES) */
    ZWI_SEC_STEPS = 33,       /* 1.5: SITE_DELTAS as varints (written instead of SITE_DELTAS) */
    ZWI_SEC_PACKED = 34,      /* 1.6: every section of a finished capture in one zstd frame */
};

/* The name of section `type` in messages ("series"), "unknown" for a type no kind has. */
ZW_HIDDEN const char *zwi_section_name(uint32_t type);

/* CRC32 as zlib's crc32() (IEEE 802.3, reflected 0xEDB88320): crc32("123456789") = 0xCBF43926. */
ZW_HIDDEN uint32_t zwi_crc32(uint32_t crc, const void *data, size_t len);

/* ---- writing ---- */

/* zwi_cbuf, the growable byte buffer files are written into, is trace_util.h's. */

/* The 32-byte file header at the end of `out`: version 1.`minor`, `kind`, `nsections` (0: the
 * file is streamed, the count not known). */
ZW_HIDDEN void zwi_container_put_header(zwi_cbuf *out, uint32_t kind, unsigned minor,
                                        uint32_t nsections);
/* Section `type` holding `payload` at the end of `out`, zstd-compressed (level 3) if `compress`;
 * `flags` may hold ZWI_SECTION_REQUIRED. A failed payload fails `out`. */
ZW_HIDDEN void zwi_container_put_section(zwi_cbuf *out, uint32_t type, uint32_t flags,
                                         const zwi_cbuf *payload, bool compress);
/* The same, compressed at zstd level `level` (0: not compressed); a payload that does not get
 * smaller is stored as it is. */
ZW_HIDDEN void zwi_container_put_section_level(zwi_cbuf *out, uint32_t type, uint32_t flags,
                                               const zwi_cbuf *payload, int level);
/* The same for a payload made of `nparts` buffers one after the other, compressed as they are
 * (one zstd stream), never copied into one: the end of a capture's PACKED section, its table
 * and its other records. */
ZW_HIDDEN void zwi_container_put_section_parts(zwi_cbuf *out, uint32_t type, uint32_t flags,
                                               const zwi_cbuf *const *parts, size_t nparts,
                                               int level);

/* ---- reading a payload ---- */

/* A payload being decoded: bytes p[0 .. len), the next at `pos`. The first failure is kept in
 * `why` with the byte it was found at; later reads fail too and keep it. */
typedef struct zwi_cursor {
    const unsigned char *p;
    size_t len;
    size_t pos;
    zw_raw *raw;    /* where decoders allocate what they return */
    char why[400];  /* the first failure, "" while none */
    size_t why_pos; /* the payload byte it was found at */
} zwi_cursor;

/* A cursor over `len` bytes at `p`, decoding into memory of `raw`. */
ZW_HIDDEN zwi_cursor zwi_cursor_of(const void *p, size_t len, zw_raw *raw);
/* Records a failure (the first one stands) and returns -1. */
ZW_HIDDEN int zwi_cursor_fail(zwi_cursor *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Little-endian integers; -1 ("truncated record") if fewer bytes are left. */
ZW_HIDDEN int zwi_get_u32(zwi_cursor *c, uint32_t *v);
ZW_HIDDEN int zwi_get_u64(zwi_cursor *c, uint64_t *v);
/* `n` bytes in place; -1 ("truncated `what`") if fewer are left. */
ZW_HIDDEN int zwi_get_bytes(zwi_cursor *c, size_t n, const char *what, const unsigned char **out);
/* A varint (zwi_cbuf_varint); -1 if truncated or longer than 64 (32) bits. */
ZW_HIDDEN int zwi_get_varint(zwi_cursor *c, uint64_t *v);
ZW_HIDDEN int zwi_get_varint32(zwi_cursor *c, uint32_t *v);
/* A count (a varint if `width` is 0, u32 if 4, else u64) of records of at least `min` bytes each
 * that must fit in what is left ("`what` count larger than the payload"): checked before anything
 * is allocated. */
ZW_HIDDEN int zwi_get_count(zwi_cursor *c, int width, size_t min, const char *what, size_t *n);

/* ---- reading a file ---- */

/* A file being read, section by section. Between zwi_container_next() calls the fields below
 * describe the section returned last. */
typedef struct zwi_container {
    const char *what; /* "snapshot" or "capture", for messages */
    const char *name; /* the file, for messages; NULL: messages carry no prefix */
    zw_error *err;
    const unsigned char *data; /* the whole file */
    size_t len;
    zw_raw *raw; /* the decompression buffer's memory */
    uint32_t kind;
    unsigned major, minor;
    uint32_t nsections; /* as the header says; 0 in a streamed file */
    bool streamed;      /* a capture: a section cut short by the end of the file ends it quietly */
    bool ended;         /* the END section was read */
    bool skippable;     /* the last failure lies inside a section whose header is sound: a
                         * reader may skip that section (next_off is past it) and go on */
    size_t next_off;    /* the offset of the next section */
    /* the section returned last */
    size_t index;  /* its position, the first 0 */
    size_t offset; /* of its header in the file */
    uint32_t type;
    uint32_t flags;
    uint64_t stored;   /* bytes of payload in the file */
    uint64_t raw_len;  /* bytes of payload once decompressed */
    zwi_cbuf inflated; /* its decompressed payload */
} zwi_container;

/* Checks the file header of `len` bytes at `data`: magic, CRC, major version 1, and `kind` (which
 * says what the file must be, and whether it is streamed). 0, or -1 with a message in `err`
 * ("cannot read <what> '<name>': ..."). Release with zwi_container_release() in both cases. */
ZW_HIDDEN int zwi_container_open(zwi_container *c, const void *data, size_t len, uint32_t kind,
                                 const char *name, zw_raw *raw, zw_error *err);
/* The next section this kind knows (unknown optional ones are skipped, unknown required ones
 * refused), its header and payload checked: 1, or 0 when the file is over (END read, or a
 * streamed file cut short: `ended` tells which), or -1 with a message. After -1, `skippable`
 * says whether the next call may go on with the section after the damaged one. */
ZW_HIDDEN int zwi_container_next(zwi_container *c);
/* The payload of the section returned last (decompressed, exactly raw_len bytes) as a cursor
 * decoding into `raw`; 0 or -1 with a message. */
ZW_HIDDEN int zwi_container_payload(zwi_container *c, zwi_cursor *cur, zw_raw *raw);
/* A message "cannot read <what> '<name>': <fmt...>"; returns -1. */
ZW_HIDDEN int zwi_container_fail(zwi_container *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The cursor's failure as a message naming the byte, the section and its offset; returns -1. */
ZW_HIDDEN int zwi_container_bad(zwi_container *c, const zwi_cursor *cur);
/* After a payload was decoded by a function that returned `rc`: 0, or -1 with a message naming
 * the cursor's failure or the bytes left over. */
ZW_HIDDEN int zwi_container_decoded(zwi_container *c, const zwi_cursor *cur, int rc);
ZW_HIDDEN void zwi_container_release(zwi_container *c);

/* The bytes of file `path` into `out` (memory of out->raw); 0, or -1 with "cannot open/read". */
ZW_HIDDEN int zwi_read_file(const char *path, zwi_cbuf *out, zw_error *err);

#endif /* ZW_TRACE_CONTAINER_H */
