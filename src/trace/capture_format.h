/* trace/capture_format.h - the sections of a capture file (kind 2, docs/format.md#captures) as
 * plain C structs, each with its encoder and its decoder (capture_format.c, side by side). The
 * preload library writes captures with the encoders, capture.c reads them with the decoders, and
 * the container (container.h) frames, checksums and compresses both ways.
 *
 * Encoders append a section's payload to a zwi_cbuf (a failed allocation sets its `failed` flag);
 * zwi_capture_put() then appends the section to the file. Decoders read one payload through a
 * zwi_cursor and fill a struct; what they allocate comes from the cursor's raw door, also when
 * they fail (the caller frees it with that door), and snapshots they return are the caller's to
 * free with zw_snapshot_free(). A decoder fails (-1, the reason in the cursor) on any payload
 * that is not what its encoder writes, never reads past its end and never trusts a count before
 * checking it against the bytes left. */
#ifndef ZW_TRACE_CAPTURE_FORMAT_H
#define ZW_TRACE_CAPTURE_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <zerowaste/capture.h>

#include "container.h"

/* the version written, 1.6: 1.0, plus captures (1.1), SERIES and steps (1.2), LIVE (1.3), LEAKS
 * (1.4), the mmap domain, and one TABLE of frames shared by SET and SITE_LIST sections (1.5),
 * the end's sections as records of one PACKED section (1.6) */
#define ZWI_CAPTURE_MINOR  6
/* the version of a capture rewritten whole at its end: one PACKED section, then END */
#define ZWI_CAPTURE_PACKED_MINOR 6
#define ZWI_SERIES_FIELDS  10 /* u64 fields of a SERIES record: zw_capture_sample's, in order */
#define ZWI_SERIES_MIN     8  /* fields of a SERIES record before 1.5 (no mmap_bytes, mmap_peak) */
#define ZWI_STEP_PEAK     1u /* a SITE_DELTAS step's flag: taken at a new peak (the peak set) */
#define ZWI_STEP_MMAP_PEAK 2u /* taken at a new peak of the mmap domain (1.5) */

/* PROCESS: who the process was. */
typedef struct zwi_process {
    uint32_t pid;
    uint32_t ppid;
    uint64_t start_realtime_ns; /* CLOCK_REALTIME when tracing started */
    uint32_t interval_ms;       /* the sampling interval */
    uint32_t nframe;            /* the traceback limit */
    const char **argv;          /* argc strings; decoded: NULL-terminated */
    size_t argc;
} zwi_process;

/* TIMESERIES and SERIES decode into this growing array (a capture has a SERIES per interval). */
typedef struct zwi_samples {
    zw_capture_sample *v;
    size_t n;
    size_t cap;
} zwi_samples;

/* SITE_DELTAS decode into these growing arrays; a delta's `site` is the site's ref (SITE_INFO),
 * not yet its index in SITES. */
typedef struct zwi_steps {
    zw_capture_step *steps;
    size_t nsteps;
    size_t cap_steps;
    zw_capture_delta *deltas;
    size_t ndeltas;
    size_t cap_deltas;
} zwi_steps;

/* SITES: per allocation traceback, the allocations made there and (in the snapshot, trace i being
 * site i) the bytes. */
typedef struct zwi_sites {
    uint64_t *counts; /* n */
    size_t n;
    zw_snapshot *snap; /* n traces; NULL when n is 0 */
} zwi_sites;

/* SITE_INFO: per site of SITES, the ref that SITE_DELTAS name it by and its temporary
 * allocations; and whether every step was stored. */
typedef struct zwi_site_info {
    bool steps_whole;
    uint32_t *refs;      /* n */
    uint64_t *temporary; /* n */
    size_t n;
} zwi_site_info;

/* SET (1.5): a live set whose traces name tracebacks of the capture's TABLE by index. */
enum zwi_set_kind { ZWI_SET_PEAK = 1, ZWI_SET_EXIT = 2, ZWI_SET_MARK = 3 };
typedef struct zwi_set {
    uint32_t kind;       /* enum zwi_set_kind */
    uint64_t time_ns;    /* when it was taken */
    uint64_t heap_bytes; /* live bytes then */
    const char *label;
    bool kept;         /* false: only its time and bytes were kept (n is 0) */
    bool as_exit;      /* a peak set that is the exit set: its traces are the exit SET's */
    size_t n;          /* traces */
    uint32_t *domains; /* decoded: n each */
    uint32_t *tbs;     /* indices into TABLE's tracebacks (checked by the loader) */
    uint64_t *sizes;
} zwi_set;

/* SITE_LIST (1.5): SITES and SITE_INFO in one, the tracebacks named in TABLE. */
typedef struct zwi_site_list {
    bool steps_whole;
    size_t n;
    uint32_t *refs;      /* decoded: n each; the ref SITE_DELTAS name site i by */
    uint32_t *domains;   /* 0 the heap, 1 the mmap domain (1.5) */
    uint32_t *tbs;       /* indices into TABLE's tracebacks (checked by the loader) */
    uint64_t *counts;    /* allocations made there */
    uint64_t *bytes;     /* bytes allocated there */
    uint64_t *temporary; /* temporary allocations there */
} zwi_site_list;

/* LIVE: what the running process keeps in place (docs/format.md#captures): the head, then
 * `nslots` slots of ZWI_LIVE_SLOT_SIZE bytes whose counters a reader sums. */
#define ZWI_LIVE_HEAD_SIZE 64
#define ZWI_LIVE_SLOT_SIZE 64
typedef struct zwi_live {
    zw_capture_live counts; /* the slots summed, with the head's end, code and peak */
    uint32_t write_errno;
    uint64_t untraced;
} zwi_live;

/* ---- the file ---- */

/* The header of a capture (version 1.2, nsections 0: streamed) at the end of `file`. */
ZW_HIDDEN void zwi_capture_put_header(zwi_cbuf *file);
/* Section `type` with `payload` at the end of `file`: compressed when that pays (a payload of a
 * few records is stored as it is), REQUIRED for END only. */
ZW_HIDDEN void zwi_capture_put(zwi_cbuf *file, uint32_t type, const zwi_cbuf *payload);

/* The whole capture of `len` bytes at `data` (ended: END read) into `out` with its SAMPLES
 * sections merged into one and its STEPS into one, both where the first SAMPLES was and
 * compressed as the end's sections are (one zstd frame learns more than many small ones); every
 * other section copied as it is, in its order. 0, or -1 (out left to the caller to drop) if the
 * file is not such a capture or memory runs out. The sampler's intervals are `tick_ns`. */
ZW_HIDDEN int zwi_capture_merge_streamed(const unsigned char *data, size_t len, uint64_t tick_ns,
                                         zwi_cbuf *out);

/* The whole capture of `len` bytes at `data` (ended: END read; the sections of 1.5 and 1.6) into
 * `out` in the packed form (1.6): a header, one PACKED section holding every section's packed
 * form in one zstd frame (PROCESS, LIVE, TOTALS, the samples merged into one SAMPLES and the
 * steps into one STEPS, then the other sections in their order, the records of a PACKED section
 * as they are), END. 0, or -1 (out left to the caller to
 * drop) if the file is not such a capture or memory runs out. The sampler's intervals are
 * `tick_ns`. */
ZW_HIDDEN int zwi_capture_pack(const unsigned char *data, size_t len, uint64_t tick_ns,
                               zwi_cbuf *out);
/* The zstd level of what is written once at the end, `len` bytes of it (19 to 1, the larger the
 * lower). */
ZW_HIDDEN int zwi_capture_end_level(size_t len);
/* One record of a PACKED payload at the end of `into`: varint type, varint length, `payload`. */
ZW_HIDDEN void zwi_capture_put_record(zwi_cbuf *into, uint32_t type, const zwi_cbuf *payload);
/* Its head alone (varint type, varint length): the payload of `len` bytes follows elsewhere. */
ZW_HIDDEN void zwi_capture_put_record_head(zwi_cbuf *into, uint32_t type, size_t len);

/* zw_capture_load_summary() from `len` bytes in memory (the fuzz target's door). */
ZW_HIDDEN zw_capture *zwi_capture_load_summary_memory(const void *data, size_t len, zw_error *err);

/* ---- the sections: each encoder above its decoder ---- */

ZW_HIDDEN void zwi_encode_process(zwi_cbuf *b, const zwi_process *p);
ZW_HIDDEN int zwi_decode_process(zwi_cursor *c, zwi_process *out);

/* TIMESERIES (1.1): time, heap bytes, heap blocks and RSS of each sample. */
ZW_HIDDEN void zwi_encode_timeseries(zwi_cbuf *b, const zw_capture_sample *s, size_t n);
ZW_HIDDEN int zwi_decode_timeseries(zwi_cursor *c, zwi_samples *into);

/* SERIES: every field of each sample (a reader skips fields past the ones it knows). */
ZW_HIDDEN void zwi_encode_series(zwi_cbuf *b, const zw_capture_sample *s, size_t n);
ZW_HIDDEN int zwi_decode_series(zwi_cursor *c, zwi_samples *into);

/* SAMPLES (1.5): SERIES's fields, each sample's as zigzag varint differences from the sample
 * before it (the first's from 0); a time's difference less `tick_ns`, the sampling interval
 * (what is left is the jitter: a byte or two). */
ZW_HIDDEN void zwi_encode_samples(zwi_cbuf *b, const zw_capture_sample *s, size_t n,
                                  uint64_t tick_ns);
ZW_HIDDEN int zwi_decode_samples(zwi_cursor *c, zwi_samples *into);

/* A live set (PEAK_SET, EXIT_SET, MARK): its snapshot is embedded as a whole snapshot file, or
 * left out (length 0) when `snap` is NULL or cannot be encoded for want of memory. */
ZW_HIDDEN void zwi_encode_set(zwi_cbuf *b, const zw_capture_set *set);
ZW_HIDDEN int zwi_decode_set(zwi_cursor *c, zw_capture_set *out);

/* The same set's traces counted by domain into `size` (a summary load's exit set), its embedded
 * snapshot's tables passed over (zwi_snapshot_count_traces). */
ZW_HIDDEN int zwi_decode_set_size(zwi_cursor *c, zw_capture_set_size *size);
/* Counts one trace of `bytes` in `domain` into `size` (a domain other than the heap's and the
 * mmap domain's is in neither). */
ZW_HIDDEN void zwi_count_trace(zw_capture_set_size *size, uint32_t domain, uint64_t bytes);

/* -1 (and nothing appended) if the snapshot cannot be encoded for want of memory. */
ZW_HIDDEN int zwi_encode_sites(zwi_cbuf *b, const zwi_sites *s);
ZW_HIDDEN int zwi_decode_sites(zwi_cursor *c, zwi_sites *out);

ZW_HIDDEN void zwi_encode_site_info(zwi_cbuf *b, const zwi_site_info *info);
ZW_HIDDEN int zwi_decode_site_info(zwi_cursor *c, zwi_site_info *out);

/* SITE_DELTAS from steps whose deltas name sites by ref. */
ZW_HIDDEN void zwi_encode_site_deltas(zwi_cbuf *b, const zw_capture_step *steps, size_t nsteps,
                                      const zw_capture_delta *deltas);
ZW_HIDDEN int zwi_decode_site_deltas(zwi_cursor *c, zwi_steps *into);
/* The same built a step at a time, as the sampler finds changed sites: zwi_step_begin() starts a
 * step in `steps` (returning where), zwi_step_delta() adds a site's change, zwi_step_end() sets
 * the step's count; zwi_encode_site_deltas_of() makes the payload of `nsteps` such steps. */
ZW_HIDDEN size_t zwi_step_begin(zwi_cbuf *steps, uint64_t time_ns, uint32_t flags);
ZW_HIDDEN void zwi_step_delta(zwi_cbuf *steps, uint32_t ref, int64_t bytes, int64_t blocks);
ZW_HIDDEN void zwi_step_end(zwi_cbuf *steps, size_t at, uint32_t n);
ZW_HIDDEN void zwi_encode_site_deltas_of(zwi_cbuf *b, const zwi_cbuf *steps, size_t nsteps);
/* STEPS (1.5): the same steps as varints, a step's time as the difference from the step before
 * it and a delta's ref from the delta before it in its step (the scan finds refs in order). */
ZW_HIDDEN void zwi_encode_steps_of(zwi_cbuf *b, const zwi_cbuf *steps, size_t nsteps);
/* The same from decoded steps, whose deltas name sites by ref. */
ZW_HIDDEN void zwi_encode_steps(zwi_cbuf *b, const zw_capture_step *steps, size_t nsteps,
                                const zw_capture_delta *deltas);
ZW_HIDDEN int zwi_decode_steps(zwi_cursor *c, zwi_steps *into);

/* TABLE (1.5): the strings, modules, frames and tracebacks of every set and site of the capture,
 * once; decoded into a snapshot with no traces (the caller's to free). */
ZW_HIDDEN void zwi_encode_table(zwi_cbuf *b, const zw_snapshot *table);
ZW_HIDDEN int zwi_decode_table(zwi_cursor *c, zw_snapshot **out);

/* SET (1.5): `set`'s snapshot (NULL: not kept) with trace i naming TABLE's traceback
 * tbmap[its traceback's index in set->snap]. Decoded arrays come from the cursor's door. */
ZW_HIDDEN void zwi_encode_table_set(zwi_cbuf *b, uint32_t kind, const zw_capture_set *set,
                                    const uint32_t *tbmap);
ZW_HIDDEN int zwi_decode_table_set(zwi_cursor *c, zwi_set *out);
/* The same SET's kind and its traces counted by domain into `size`, nothing kept (a summary
 * load's exit set); the traceback indices are not checked against TABLE's. */
ZW_HIDDEN int zwi_decode_table_set_size(zwi_cursor *c, uint32_t *kind, zw_capture_set_size *size);
/* The same from a zwi_set's arrays (its `tbs` already TABLE's indices). */
ZW_HIDDEN void zwi_encode_table_set_of(zwi_cbuf *b, const zwi_set *s);
/* A peak SET whose traces are those of the exit SET (the heap was largest at the end). */
ZW_HIDDEN void zwi_encode_table_set_as_exit(zwi_cbuf *b, uint64_t time_ns, uint64_t heap_bytes);

/* SITE_LIST (1.5): site i is sites->snap's trace i, whose traceback is TABLE's
 * tbmap[its index in sites->snap]; refs and temporary from `info`. */
ZW_HIDDEN void zwi_encode_site_list(zwi_cbuf *b, const zwi_sites *sites, const zwi_site_info *info,
                                    const uint32_t *tbmap);
ZW_HIDDEN int zwi_decode_site_list(zwi_cursor *c, zwi_site_list *out);
/* The same from a zwi_site_list's arrays (its `tbs` already TABLE's indices). */
ZW_HIDDEN void zwi_encode_site_list_of(zwi_cbuf *b, const zwi_site_list *s);
/* Frees a site list's six arrays (from `raw`). */
ZW_HIDDEN void zwi_site_list_release(zw_raw *raw, zwi_site_list *s);

/* LEAKS: the exit set's reachability scan; `l->kinds` (l->nkinds of them) only when the status
 * is ZW_LEAKS_SCANNED. Decoding checks each kind, not that they match the exit set's traces (the
 * loader does, once both are read). */
ZW_HIDDEN void zwi_encode_leaks(zwi_cbuf *b, const zw_capture_leaks *l);
ZW_HIDDEN int zwi_decode_leaks(zwi_cursor *c, zw_capture_leaks *out);

ZW_HIDDEN void zwi_encode_totals(zwi_cbuf *b, const zw_capture_totals *t);
ZW_HIDDEN int zwi_decode_totals(zwi_cursor *c, zw_capture_totals *out);

/* LIVE as the writer starts it, at the end of `file`: uncompressed, every counter 0, `nslots`
 * slots, payload checksum 0 (the process then updates the payload in place, through a shared
 * mapping of the file). */
ZW_HIDDEN void zwi_capture_put_live(zwi_cbuf *file, uint32_t nslots);
ZW_HIDDEN int zwi_decode_live(zwi_cursor *c, zwi_live *out);

/* ---- the packed forms (1.6): the records of a PACKED section ---- */

/* PROCESS, TOTALS, LEAKS (and MARK_LEAKS): the fields of the fixed forms in their order, each a
 * varint (the strings vstrings). */
ZW_HIDDEN void zwi_encode_process_packed(zwi_cbuf *b, const zwi_process *p);
ZW_HIDDEN int zwi_decode_process_packed(zwi_cursor *c, zwi_process *out);
ZW_HIDDEN void zwi_encode_totals_packed(zwi_cbuf *b, const zw_capture_totals *t);
ZW_HIDDEN int zwi_decode_totals_packed(zwi_cursor *c, zw_capture_totals *out);
ZW_HIDDEN void zwi_encode_leaks_packed(zwi_cbuf *b, const zw_capture_leaks *l);
ZW_HIDDEN int zwi_decode_leaks_packed(zwi_cursor *c, zw_capture_leaks *out);
/* LIVE: the head's fields and the slots' sums, varints. */
ZW_HIDDEN void zwi_encode_live_packed(zwi_cbuf *b, const zwi_live *l);
ZW_HIDDEN int zwi_decode_live_packed(zwi_cursor *c, zwi_live *out);
/* SAMPLES by column: each field's differences (as SAMPLES') divided by their greatest common
 * divisor, a column of zeros left out. */
ZW_HIDDEN void zwi_encode_samples_packed(zwi_cbuf *b, const zw_capture_sample *s, size_t n,
                                         uint64_t tick_ns);
ZW_HIDDEN int zwi_decode_samples_packed(zwi_cursor *c, zwi_samples *into);
/* STEPS by column: times, flags, counts, then the deltas' refs, bytes and blocks. */
ZW_HIDDEN void zwi_encode_steps_packed(zwi_cbuf *b, const zw_capture_step *steps, size_t nsteps,
                                       const zw_capture_delta *deltas);
ZW_HIDDEN int zwi_decode_steps_packed(zwi_cursor *c, zwi_steps *into);
/* SITE_LIST by column. */
ZW_HIDDEN void zwi_encode_site_list_packed(zwi_cbuf *b, const zwi_site_list *s);
ZW_HIDDEN int zwi_decode_site_list_packed(zwi_cursor *c, zwi_site_list *out);
/* TABLE: the varint TABLE at `c` rewritten packed into `b` (build-ids binary, frames by module
 * and offset in columns, each traceback as what it shares with the one before and adds); -1 if
 * it does not decode. The decoder gives a snapshot with no traces, as zwi_decode_table(). */
ZW_HIDDEN int zwi_transcode_table_packed(zwi_cursor *c, zwi_cbuf *b);
/* The same written from the table itself (the writer's end). */
ZW_HIDDEN void zwi_encode_table_packed(zwi_cbuf *b, const zw_snapshot *table);
/* The same, given the frames' indices of the table's first `idx_tbs` tracebacks one after the
 * other and their shapes (zwi_table_builder_frame_indices): used if they are all of them. */
ZW_HIDDEN void zwi_encode_table_packed_with(zwi_cbuf *b, const zw_snapshot *table,
                                            const uint32_t *idx, const uint32_t *shape,
                                            size_t idx_tbs);
ZW_HIDDEN int zwi_decode_table_packed(zwi_cursor *c, zw_snapshot **out);

/* END: an empty payload. */
ZW_HIDDEN void zwi_encode_end(zwi_cbuf *b);
ZW_HIDDEN int zwi_decode_end(zwi_cursor *c);

#endif /* ZW_TRACE_CAPTURE_FORMAT_H */
