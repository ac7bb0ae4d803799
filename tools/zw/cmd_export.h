/* tools/zw/cmd_export.h - what the files of `zw export` share (cmd_export*.c): a growable byte
 * buffer, a map from byte strings to numbers that remembers insertion order, the export's
 * context, and one writer per format. Each writer fills a buffer in memory; cmd_export.c writes
 * it out only when the whole export succeeded (docs/export.md). */
#ifndef ZW_EXPORT_H
#define ZW_EXPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <zerowaste/capture.h>
#include <zerowaste/trace.h>

/* ---- bytes ---- */

/* Bytes appended at the end. After a failed allocation `failed` is set, later appends do
 * nothing, and the writer reports "out of memory" once at the end. */
typedef struct xbuf {
    unsigned char *data; /* NULL until the first append */
    size_t len;          /* bytes in use */
    size_t cap;          /* bytes allocated */
    bool failed;         /* an allocation failed: the contents are incomplete */
} xbuf;

void xbuf_add(xbuf *b, const void *p, size_t n);
void xbuf_puts(xbuf *b, const char *s);
void xbuf_printf(xbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void xbuf_release(xbuf *b);

/* ---- a map of byte strings ---- */

/* Keys (copied in) and their values, in insertion order: entry i is the i-th distinct key, so
 * an entry's index doubles as a dense id. Open addressing over `slots`, at most half full. */
typedef struct smap_entry {
    char *key;      /* owned, NUL-terminated after `len` bytes */
    size_t len;     /* bytes of the key (it may hold NULs) */
    uint64_t value; /* the caller's */
} smap_entry;

typedef struct smap {
    smap_entry *entries; /* nentries of them, in insertion order */
    size_t nentries;
    size_t entries_cap;
    uint32_t *slots; /* nslots of them: 0 empty, else entry index + 1 */
    size_t nslots;   /* a power of two, or 0 before the first insertion */
} smap;

/* The index of `key` in m->entries, inserting it with value `value` when absent (then *added is
 * true). -1 when out of memory. */
long smap_intern(smap *m, const void *key, size_t len, uint64_t value, bool *added);
void smap_release(smap *m);

/* ---- the export ---- */

enum export_metric {
    METRIC_BYTES,       /* bytes live in the chosen set */
    METRIC_ALLOCATIONS, /* allocations made at each site, from the capture's SITES */
    METRIC_LEAKED,      /* bytes live at exit: METRIC_BYTES of the exit set */
    METRIC_TEMPORARY,   /* temporary allocations made at each site (folded only) */
};

typedef struct export_ctx {
    const zw_capture *c;
    const char *path;          /* the capture's file, for messages and comments */
    const zw_capture_set *set; /* the live set chosen by --at; NULL for --metric allocations */
    enum export_metric metric;
} export_ctx;

/* Each writes the whole export into `out`: 0, or ZW_EXIT_FAILURE after printing why. */
int export_pprof(const export_ctx *x, xbuf *out);
int export_folded(const export_ctx *x, xbuf *out);
int export_massif(const export_ctx *x, xbuf *out);

/* The frame's name in a profile: its function, or "module+0xoffset" / "file:line" without one. */
const char *export_frame_name(const zw_frame *f, char *buf, size_t len);

/* The frames of one return address in `tb`, as the symboliser gives them: a frame that holds the
 * code and, after it (towards the most recent end), the frames inlined into it. Starting from
 * the most recent frame `i`, returns the index of the oldest frame of its group; the group is
 * [that index, i]. */
size_t export_pc_group(const zw_traceback *tb, size_t i);

#endif /* ZW_EXPORT_H */
