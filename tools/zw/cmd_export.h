/* tools/zw/cmd_export.h - what the files of `zw export` share (cmd_export*.c): the export's
 * context and one writer per format. Each writer fills a buffer in memory (the trace layer's
 * zwi_cbuf, its tables zwi_strtab); cmd_export.c writes it out only when the whole export
 * succeeded (docs/export.md). */
#ifndef CLI_EXPORT_H
#define CLI_EXPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <zerowaste/capture.h>
#include <zerowaste/trace.h>

#include "trace_util.h"

/* ---- tables and buffers: the trace layer's (trace_util.h) ---- */

static inline void
buf_puts(zwi_cbuf *b, const char *s)
{
    zwi_cbuf_bytes(b, s, strlen(s));
}

/* The index of the `len` bytes at `key` in `st`, added if absent (then *added is true); -1 when
 * out of memory. Indices are dense, in insertion order: an entry's index doubles as an id. */
long export_intern(zwi_strtab *st, const void *key, size_t len, bool *added);

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

/* Each writes the whole export into `out`: 0, or CLI_EXIT_FAILURE after printing why. */
int export_pprof(const export_ctx *x, zwi_cbuf *out);
int export_folded(const export_ctx *x, zwi_cbuf *out);
int export_massif(const export_ctx *x, zwi_cbuf *out);

/* The --at set grouped by traceback, or NULL after printing why. */
zw_stat_list *export_set_stats(const export_ctx *x);

/* The frame's name in a profile: its function demangled, or "module+0xoffset" / "file:line" without one. */
const char *export_frame_name(const zw_frame *f, char *buf, size_t len);

/* The frames of one return address in `tb`, as the symboliser gives them: a frame that holds the
 * code and, after it (towards the most recent end), the frames inlined into it. Starting from
 * the most recent frame `i`, returns the index of the oldest frame of its group; the group is
 * [that index, i]. */
size_t export_pc_group(const zw_traceback *tb, size_t i);

#endif /* CLI_EXPORT_H */
