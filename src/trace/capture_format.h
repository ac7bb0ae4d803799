/* trace/capture_format.h - the capture container (docs/format.md#captures): the section types of
 * kind 2 files and the helpers the preload library writes them with. The reader is capture.c. */
#ifndef ZW_CAPTURE_FORMAT_H
#define ZW_CAPTURE_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trace_internal.h"

#define ZWI_CAPTURE_KIND 2u

enum zwi_capture_section {
    ZWI_SEC_END = 0,
    ZWI_SEC_PROCESS = 16,    /* pid, ppid, start time, interval, nframe, argv */
    ZWI_SEC_TIMESERIES = 17, /* samples (time, heap bytes, heap blocks, rss) */
    ZWI_SEC_PEAK_SET = 18,   /* a live set: time, bytes, label, an embedded snapshot file */
    ZWI_SEC_EXIT_SET = 19,
    ZWI_SEC_MARK = 20,
    ZWI_SEC_TOTALS = 21, /* the counters and how the process ended */
    ZWI_SEC_SITES = 22,  /* per-traceback allocation counts and bytes */
    ZWI_SEC_SERIES = 23, /* samples with the running totals (written instead of TIMESERIES) */
    ZWI_SEC_SITE_DELTAS = 24, /* steps: per site, the change of its live blocks and bytes */
    ZWI_SEC_SITE_INFO = 25,   /* per site of SITES: its ref and temporary allocations */
    ZWI_SEC_LEAKS = 26,       /* the exit set's reachability scan: status, kind of each block */
};

#define ZWI_SERIES_FIELDS 8
#define ZWI_STEP_PEAK     1u /* a SITE_DELTAS step's flag: taken at a new peak (the peak set) */ /* u64 fields of a SERIES record (zw_capture_sample's, in order) */

/* A growable byte buffer in memory of a raw door, little-endian writers. */
typedef struct zwi_cbuf {
    zw_raw *raw;
    unsigned char *data;
    size_t len;
    size_t cap;
    bool failed; /* an allocation failed: the contents are incomplete */
} zwi_cbuf;

ZW_HIDDEN void zwi_cbuf_put(zwi_cbuf *b, uint64_t v, int nbytes);
ZW_HIDDEN void zwi_cbuf_bytes(zwi_cbuf *b, const void *p, size_t n);
ZW_HIDDEN void zwi_cbuf_release(zwi_cbuf *b);
/* The 32-byte header of a capture file (nsections 0: streamed) at the end of `out`. */
ZW_HIDDEN void zwi_capture_put_header(zwi_cbuf *out);
/* Section `type` holding `payload` at the end of `out`, zstd-compressed if `compress`. */
ZW_HIDDEN void zwi_capture_put_section(zwi_cbuf *out, uint32_t type, const zwi_cbuf *payload,
                                       bool compress);

#endif /* ZW_CAPTURE_FORMAT_H */
