/* trace/capture.c - reading capture files (kind 2, docs/format.md#captures), as the `zw` command
 * does: the container (container.c) walks and checks the sections, capture_format.c decodes each
 * payload, and this file assembles a zw_capture from them: it rejects sections stored twice, maps
 * the steps' site refs to sites, rebuilds a peak set kept as steps, and fills in the totals of a
 * capture cut short. Also zw_mark(), and zw_capture_live_at().
 *
 * A capture is streamed: the header says nsections 0 and sections are appended while the process
 * runs. A file that ends before its END section (the process was killed) loads as incomplete with
 * every whole section up to there; a section that is whole but damaged is an error. */
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zerowaste/capture.h>

#include "capture_format.h"

/* ---- marks ---- */

/* Passes the mark to the tracer that exports ZW_MARK_SINK (capture.h); without one this does
 * nothing. Looked up at run time because a program linking zerowaste statically calls its own
 * zw_mark directly, where a preloaded tracer cannot interpose. Weak: a tracer linked from these
 * objects may define its own strong zw_mark. */
__attribute__((weak)) void
zw_mark(const char *label)
{
    static zw_mark_sink_fn *_Atomic mark;
    static atomic_bool looked;
    if (!atomic_load_explicit(&looked, memory_order_acquire)) {
        atomic_store_explicit(&mark, (zw_mark_sink_fn *)dlsym(RTLD_DEFAULT, ZW_MARK_SINK),
                              memory_order_relaxed);
        atomic_store_explicit(&looked, true, memory_order_release);
    }
    zw_mark_sink_fn *fn = atomic_load_explicit(&mark, memory_order_relaxed);
    if (fn != NULL)
        fn(label);
}

/* ---- reading ---- */

/* What a load decodes. */
enum load_mode {
    LOAD_FULL,    /* zw_capture_load: everything */
    LOAD_BRIEF,   /* zw_capture_load_brief: the sections of tracebacks and sets are passed over */
    LOAD_SUMMARY, /* zw_capture_load_summary: brief, and the exit set's traces counted */
};

typedef struct loader {
    zwi_container file;
    zwi_cursor cur;      /* the payload of the section being decoded */
    zw_capture *c;       /* being filled */
    zw_raw *raw;         /* the capture's memory */
    zwi_samples samples; /* moved into c once every section is read */
    zwi_steps steps;     /* likewise */
    size_t cap_marks;
    zwi_site_info info; /* SITE_INFO; info.temporary becomes c->site_temporary */
    bool has_info;
    bool steps_lost;    /* a SITE_DELTAS section was damaged: the sums of the steps are wrong */
    zw_snapshot *table; /* TABLE (1.5): the tracebacks SET and SITE_LIST name; NULL until read */
    bool peak_as_exit;  /* the peak SET said it is the exit set: its traces are copied from it */
    size_t prefix;      /* length of "cannot read capture 'NAME': " in the container's messages */
    zw_capture_progress_fn *progress; /* told before each section; NULL: nobody */
    void *progress_arg;
    enum load_mode mode;
    bool packed;     /* decoding a record of a PACKED section (1.6): the packed forms */
    bool table_seen; /* a summary load passed a TABLE (not decoded) */
    bool exit_seen;  /* a summary load counted the exit set's traces */
} loader;

/* Whether a brief load reads sections of `type`: the process, how it ended, totals, live
 * counters and samples, none of the sections that name tracebacks. */
static bool
brief_reads(uint32_t type)
{
    switch (type) {
    case ZWI_SEC_PROCESS:
    case ZWI_SEC_TIMESERIES:
    case ZWI_SEC_SERIES:
    case ZWI_SEC_SAMPLES:
    case ZWI_SEC_TOTALS:
    case ZWI_SEC_LIVE:
    case ZWI_SEC_PACKED: /* for its records of these types, in a capture rewritten packed */
        return true;
    default:
        return false;
    }
}

/* Whether a summary load decodes sections of `type` its own way (decode_summary). */
static bool
summary_decodes(uint32_t type)
{
    return type == ZWI_SEC_TABLE || type == ZWI_SEC_SET || type == ZWI_SEC_EXIT_SET;
}

/* Whether a load in `l`'s mode reads sections (or records) of `type`: a summary load also the
 * exit set's (SET, EXIT_SET) and notes the TABLE it needs, without decoding a traceback. */
static bool
reads(const loader *l, uint32_t type)
{
    switch (l->mode) {
    case LOAD_BRIEF:
        return brief_reads(type);
    case LOAD_SUMMARY:
        return brief_reads(type) || summary_decodes(type);
    default:
        return true;
    }
}

/* A live set, refused if one of its kind was read before. */
static int
decode_set(loader *l, zw_capture_set *set)
{
    if (set->label != NULL)
        return zwi_cursor_fail(&l->cur, "live set stored twice");
    return zwi_decode_set(&l->cur, set);
}

static int
decode_mark(loader *l)
{
    zw_capture *c = l->c;
    if (zwi_reserve(l->raw, (void **)&c->marks, &l->cap_marks, c->nmarks + 1, sizeof(*c->marks)))
        return zwi_cursor_fail(&l->cur, "out of memory");
    c->marks[c->nmarks] = (zw_capture_set){0};
    c->nmarks++; /* counted first: zw_capture_free() frees what a failed decode left */
    return zwi_decode_set(&l->cur, &c->marks[c->nmarks - 1]);
}

static int
decode_process(loader *l)
{
    zw_capture *c = l->c;
    if (c->argv != NULL)
        return zwi_cursor_fail(&l->cur, "process section stored twice");
    zwi_process p;
    int rc = (l->packed ? zwi_decode_process_packed : zwi_decode_process)(&l->cur, &p);
    c->argv = p.argv; /* also when it failed: zw_capture_free() frees what was read */
    c->argc = p.argc;
    c->pid = p.pid;
    c->ppid = p.ppid;
    c->start_realtime_ns = p.start_realtime_ns;
    c->interval_ms = p.interval_ms;
    c->nframe = p.nframe;
    return rc;
}

static int
decode_sites(loader *l)
{
    zw_capture *c = l->c;
    if (c->site_counts != NULL)
        return zwi_cursor_fail(&l->cur, "sites stored twice");
    zwi_sites s;
    int rc = zwi_decode_sites(&l->cur, &s);
    c->site_counts = s.counts;
    c->sites = s.snap;
    return rc;
}

static int
decode_site_info(loader *l)
{
    if (l->has_info)
        return zwi_cursor_fail(&l->cur, "site information stored twice");
    l->has_info = true;
    int rc = zwi_decode_site_info(&l->cur, &l->info);
    l->c->site_temporary = l->info.temporary;
    return rc;
}

/* ---- 1.5: one TABLE, sets and sites naming its tracebacks ---- */

static int
decode_table(loader *l)
{
    if (l->table != NULL)
        return zwi_cursor_fail(&l->cur, "table stored twice");
    return (l->packed ? zwi_decode_table_packed : zwi_decode_table)(&l->cur, &l->table);
}

/* Whether every one of `n` traceback indices names one of the table's. */
static int
check_tbs(loader *l, const uint32_t *tbs, size_t n)
{
    size_t ntbs = zwi_snapshot_ntracebacks(l->table);
    for (size_t i = 0; i < n; i++) {
        if (tbs[i] >= ntbs)
            return zwi_cursor_fail(&l->cur, "traceback index %" PRIu32 " of trace %zu out of range",
                                   tbs[i], i);
    }
    return 0;
}

/* The set's traces as a snapshot of their own (NULL: not kept), made of the table's tracebacks.
 * A set whose table was lost (damaged) keeps its time and bytes, without traces. */
static int
set_snapshot(loader *l, const zwi_set *s, zw_snapshot **out)
{
    *out = NULL;
    if (!s->kept || l->table == NULL)
        return 0;
    if (check_tbs(l, s->tbs, s->n) != 0)
        return -1;
    *out = zwi_snapshot_select(l->table, s->domains, s->tbs, s->sizes, s->n);
    return *out == NULL ? zwi_cursor_fail(&l->cur, "out of memory") : 0;
}

/* A SET section: the peak, exit or a mark's set. Adds nothing to the capture when it fails. */
static int
decode_table_set(loader *l)
{
    zw_capture *c = l->c;
    zwi_set s;
    zw_snapshot *snap = NULL;
    int rc = zwi_decode_table_set(&l->cur, &s);
    if (rc == 0)
        rc = set_snapshot(l, &s, &snap);
    zw_capture_set *dst = NULL;
    if (rc == 0 && s.kind != ZWI_SET_MARK) {
        dst = s.kind == ZWI_SET_PEAK ? &c->peak : &c->exit;
        if (dst->label != NULL)
            rc = zwi_cursor_fail(&l->cur, "live set stored twice");
    } else if (rc == 0) {
        if (zwi_reserve(l->raw, (void **)&c->marks, &l->cap_marks, c->nmarks + 1,
                        sizeof(*c->marks)) != 0)
            rc = zwi_cursor_fail(&l->cur, "out of memory");
        else
            dst = &c->marks[c->nmarks++];
    }
    if (rc == 0) {
        *dst = (zw_capture_set){s.label, s.time_ns, s.heap_bytes, snap, NULL};
        l->peak_as_exit |= s.as_exit;
    } else {
        zw_snapshot_free(snap);
        zwi_free(l->raw, (void *)s.label);
    }
    zwi_free(l->raw, s.domains);
    zwi_free(l->raw, s.tbs);
    zwi_free(l->raw, s.sizes);
    return rc;
}

/* A SITE_LIST section: SITES and SITE_INFO at once. Adds nothing to the capture when it fails;
 * without its table it is of no use (a site is its traceback), so it fails. */
static int
decode_site_list(loader *l)
{
    zw_capture *c = l->c;
    zwi_site_list s;
    zw_snapshot *snap = NULL;
    int rc = (l->packed ? zwi_decode_site_list_packed : zwi_decode_site_list)(&l->cur, &s);
    if (rc == 0 && (c->site_counts != NULL || l->has_info))
        rc = zwi_cursor_fail(&l->cur, "sites stored twice");
    if (rc == 0 && l->table == NULL)
        rc = zwi_cursor_fail(&l->cur, "site list without its table (lost, or not before it)");
    if (rc == 0)
        rc = check_tbs(l, s.tbs, s.n);
    if (rc == 0 && (snap = zwi_snapshot_select(l->table, s.domains, s.tbs, s.bytes, s.n)) == NULL)
        rc = zwi_cursor_fail(&l->cur, "out of memory");
    if (rc == 0) {
        c->sites = snap;
        c->site_counts = s.counts;
        c->site_temporary = s.temporary;
        l->info = (zwi_site_info){s.steps_whole, s.refs, s.temporary, s.n};
        l->has_info = true;
    } else {
        zwi_free(l->raw, s.counts);
        zwi_free(l->raw, s.temporary);
        zwi_free(l->raw, s.refs);
    }
    zwi_free(l->raw, s.domains);
    zwi_free(l->raw, s.tbs);
    zwi_free(l->raw, s.bytes);
    return rc;
}

static int
decode_totals(loader *l)
{
    zw_capture_totals t;
    if ((l->packed ? zwi_decode_totals_packed : zwi_decode_totals)(&l->cur, &t) != 0)
        return -1; /* totals read before stand */
    l->c->totals = t;
    l->c->has_totals = true;
    return 0;
}

static int
decode_live(loader *l)
{
    zw_capture *c = l->c;
    if (c->has_live)
        return zwi_cursor_fail(&l->cur, "live counters stored twice");
    zwi_live live;
    if ((l->packed ? zwi_decode_live_packed : zwi_decode_live)(&l->cur, &live) != 0)
        return -1;
    c->has_live = true;
    c->live = live.counts;
    c->write_errno = live.write_errno;
    c->untraced = live.untraced;
    return 0;
}

/* A capture cut short: its counts and how it ended from LIVE, exact; its peak from LIVE's last
 * saved peak or the samples, whichever is larger. */
static void
totals_from_live(zw_capture *c)
{
    zw_capture_totals *t = &c->totals;
    t->allocations = c->live.allocations;
    t->frees = c->live.frees;
    t->temporary = c->live.temporary;
    t->bytes_allocated = c->live.bytes_allocated;
    t->end = c->live.end;
    t->code = c->live.code;
    if (c->live.peak_bytes > t->peak_bytes) {
        t->peak_bytes = c->live.peak_bytes;
        t->peak_time_ns = c->live.peak_time_ns;
    }
}

static int
decode_leaks(loader *l)
{
    if (l->c->leaks.status != ZW_LEAKS_UNKNOWN)
        return zwi_cursor_fail(&l->cur, "leak scan stored twice");
    return (l->packed ? zwi_decode_leaks_packed : zwi_decode_leaks)(&l->cur, &l->c->leaks);
}

/* Whether `nkinds` kinds of a scan name the traces of `snap`: its first `nkinds` traces, every
 * trace after them being a mapping of the mmap domain (from 1.5 a scanned set holds the heap's
 * blocks first, then the mappings, which have no kind). */
static bool
kinds_fit(const zw_snapshot *snap, size_t nkinds)
{
    size_t n = snap != NULL ? zw_snapshot_len(snap) : 0;
    if (snap == NULL || nkinds > n)
        return false;
    for (size_t i = nkinds; i < n; i++) {
        if (zw_snapshot_trace(snap, i).domain != ZW_CAPTURE_MMAP_DOMAIN)
            return false;
    }
    return true;
}

/* A mark's scan follows its MARK section: it belongs to the last mark read. Kinds that do not
 * name that mark's traces name nothing (the mark's kinds are then unknown, as older captures'). */
static int
decode_mark_leaks(loader *l)
{
    zw_capture *c = l->c;
    zw_capture_set *m = c->nmarks > 0 ? &c->marks[c->nmarks - 1] : NULL;
    if (m == NULL || m->leaks != NULL)
        return zwi_cursor_fail(&l->cur, "mark leak scan without its mark");
    zw_capture_leaks got;
    if ((l->packed ? zwi_decode_leaks_packed : zwi_decode_leaks)(&l->cur, &got) != 0)
        return -1;
    size_t n = got.nkinds;
    if (got.status == ZW_LEAKS_SCANNED && !kinds_fit(m->snap, n)) {
        zwi_free(l->raw, got.kinds);
        return 0;
    }
    if ((m->leaks = zwi_alloc(l->raw, sizeof(*m->leaks))) == NULL) {
        zwi_free(l->raw, got.kinds);
        return zwi_cursor_fail(&l->cur, "out of memory");
    }
    if (got.status == ZW_LEAKS_SCANNED) { /* the sums are the kinds' */
        memset(got.blocks, 0, sizeof(got.blocks));
        memset(got.bytes, 0, sizeof(got.bytes));
        for (size_t i = 0; i < n; i++) {
            got.blocks[got.kinds[i]]++;
            got.bytes[got.kinds[i]] += zw_snapshot_trace(m->snap, i).size;
        }
    }
    *m->leaks = got;
    return 0;
}

/* The kinds name the exit set's traces in order (the mmap domain's, after them, have none: 1.5):
 * with no exit set or another number of traces they name nothing, and the capture loads with the
 * kinds unknown. The sums are the kinds'. */
static void
check_leaks(zw_capture *c, zw_raw *raw)
{
    zw_capture_leaks *l = &c->leaks;
    if (l->status != ZW_LEAKS_SCANNED)
        return;
    size_t n = l->nkinds;
    if (!kinds_fit(c->exit.snap, n) || (n > 0 && l->kinds == NULL)) {
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

/* ---- a summary load: the exit set counted, no traceback decoded ---- */

/* The exit set's traces counted by domain (`size`, from its section), refused if counted before;
 * kept only if the table the set names was passed before it (as a full load needs it). */
static int
count_exit_set(loader *l, zw_capture_set_size size, bool needs_table)
{
    if (l->exit_seen)
        return zwi_cursor_fail(&l->cur, "live set stored twice");
    l->exit_seen = true;
    if (needs_table && !l->table_seen)
        size = (zw_capture_set_size){0}; /* kept, but the tracebacks it names are lost */
    l->c->exit_size = size;
    return 0;
}

/* A TABLE (passed over), SET or EXIT_SET section or record of a summary load. */
static int
decode_summary(loader *l, uint32_t type)
{
    uint32_t kind;
    zw_capture_set_size size;
    if (type == ZWI_SEC_TABLE) {
        l->table_seen = true;
        l->cur.pos = l->cur.len;
        return 0;
    }
    if (type == ZWI_SEC_SET) {
        if (zwi_decode_table_set_size(&l->cur, &kind, &size) != 0)
            return -1;
        return kind == ZWI_SET_EXIT ? count_exit_set(l, size, true) : 0;
    }
    if (zwi_decode_set_size(&l->cur, &size) != 0) /* EXIT_SET: its snapshot embedded (< 1.5) */
        return -1;
    return count_exit_set(l, size, false);
}

/* After a full load: the exit set's traces are exit.snap's. */
static void
count_exit_snap(zw_capture *c)
{
    c->exit_size = (zw_capture_set_size){.kept = c->exit.snap != NULL};
    for (size_t i = 0; c->exit.snap != NULL && i < zw_snapshot_len(c->exit.snap); i++) {
        zw_trace_info t = zw_snapshot_trace(c->exit.snap, i);
        zwi_count_trace(&c->exit_size, t.domain, t.size);
    }
}

static int read_packed(loader *l);

static int
decode(loader *l, uint32_t type)
{
    zw_capture *c = l->c;
    if (l->mode == LOAD_SUMMARY && summary_decodes(type))
        return decode_summary(l, type);
    switch (type) {
    case ZWI_SEC_PROCESS:
        return decode_process(l);
    case ZWI_SEC_TIMESERIES:
        return zwi_decode_timeseries(&l->cur, &l->samples);
    case ZWI_SEC_SERIES:
        c->has_counters = true;
        return zwi_decode_series(&l->cur, &l->samples);
    case ZWI_SEC_SITE_DELTAS:
        return zwi_decode_site_deltas(&l->cur, &l->steps);
    case ZWI_SEC_SAMPLES:
        c->has_counters = true;
        return (l->packed ? zwi_decode_samples_packed : zwi_decode_samples)(&l->cur, &l->samples);
    case ZWI_SEC_STEPS:
        return (l->packed ? zwi_decode_steps_packed : zwi_decode_steps)(&l->cur, &l->steps);
    case ZWI_SEC_SITE_INFO:
        return decode_site_info(l);
    case ZWI_SEC_PEAK_SET:
        return decode_set(l, &c->peak);
    case ZWI_SEC_EXIT_SET:
        return decode_set(l, &c->exit);
    case ZWI_SEC_MARK:
        return decode_mark(l);
    case ZWI_SEC_TOTALS:
        return decode_totals(l);
    case ZWI_SEC_SITES:
        return decode_sites(l);
    case ZWI_SEC_LIVE:
        return decode_live(l);
    case ZWI_SEC_LEAKS:
        return decode_leaks(l);
    case ZWI_SEC_MARK_LEAKS:
        return decode_mark_leaks(l);
    case ZWI_SEC_TABLE:
        return decode_table(l);
    case ZWI_SEC_SET:
        return decode_table_set(l);
    case ZWI_SEC_SITE_LIST:
        return decode_site_list(l);
    case ZWI_SEC_PACKED:
        return read_packed(l);
    default:
        l->cur.pos = l->cur.len; /* the container passes only the types above */
        return 0;
    }
}

/* ---- salvage ---- */

/* What a section adds to the capture, noted before it is decoded so that a failed decode can be
 * taken back whole: a damaged section adds nothing. */
typedef struct before {
    size_t nsamples;
    size_t nsteps;
    size_t ndeltas;
    size_t nmarks;
    const char *peak_label; /* a set read before has its label: a failed decode left it alone */
    const char *exit_label;
} before;

static void
free_set(zw_raw *raw, zw_capture_set *set)
{
    zw_snapshot_free(set->snap);
    if (set->leaks != NULL)
        zwi_free(raw, set->leaks->kinds);
    zwi_free(raw, set->leaks);
    zwi_free(raw, (void *)set->label);
    *set = (zw_capture_set){0};
}

/* Takes back what the failed decode of a section of `type` left in the capture. */
static void
undo(loader *l, uint32_t type, const before *b)
{
    zw_capture *c = l->c;
    l->samples.n = b->nsamples;
    l->steps.nsteps = b->nsteps;
    l->steps.ndeltas = b->ndeltas;
    switch (type) {
    case ZWI_SEC_SITE_DELTAS:
    case ZWI_SEC_STEPS:
        l->steps_lost = true;
        break;
    case ZWI_SEC_SITES:
        zw_snapshot_free(c->sites);
        zwi_free(l->raw, c->site_counts);
        c->sites = NULL;
        c->site_counts = NULL;
        break;
    case ZWI_SEC_SITE_INFO:
        zwi_free(l->raw, l->info.refs);
        zwi_free(l->raw, l->info.temporary);
        l->info = (zwi_site_info){0};
        c->site_temporary = NULL;
        l->has_info = false;
        break;
    case ZWI_SEC_PEAK_SET:
    case ZWI_SEC_EXIT_SET: {
        zw_capture_set *set = type == ZWI_SEC_PEAK_SET ? &c->peak : &c->exit;
        if (set->label != (type == ZWI_SEC_PEAK_SET ? b->peak_label : b->exit_label))
            free_set(l->raw, set); /* not the one read whole before ("stored twice") */
        break;
    }
    case ZWI_SEC_MARK:
        while (c->nmarks > b->nmarks)
            free_set(l->raw, &c->marks[--c->nmarks]);
        break;
    default: /* TOTALS: decoded aside; PROCESS: what was read is freed with the capture; TABLE,
              * SET and SITE_LIST add nothing when they fail */
        break;
    }
}

/* Counts the section the container's last message is about as damaged; the first message is
 * kept (without its "cannot read capture" prefix) in c->damage. */
static void
note_damage(loader *l)
{
    zw_capture *c = l->c;
    c->damaged++;
    if (c->damage != NULL || l->file.err == NULL)
        return;
    const char *msg = l->file.err->msg;
    msg += strlen(msg) > l->prefix ? l->prefix : 0;
    size_t n = strlen(msg);
    char *copy = zwi_alloc(l->raw, n + 1);
    if (copy != NULL) {
        memcpy(copy, msg, n + 1);
        c->damage = copy;
    }
}

/* Whether a PACKED section may hold records of `type` (1.6): the sections a finished capture of 1.5
 * has, each in its packed form. A record of another type is skipped (a later minor's). */
static bool
packed_type(uint64_t type)
{
    switch (type) {
    case ZWI_SEC_PROCESS:
    case ZWI_SEC_LIVE:
    case ZWI_SEC_TOTALS:
    case ZWI_SEC_SAMPLES:
    case ZWI_SEC_STEPS:
    case ZWI_SEC_TABLE:
    case ZWI_SEC_SET:
    case ZWI_SEC_SITE_LIST:
    case ZWI_SEC_LEAKS:
    case ZWI_SEC_MARK_LEAKS:
        return true;
    default:
        return false;
    }
}

/* A record of the PACKED section that did not decode: its damage, noted as a section's, the
 * record named before the payload's byte. */
static void
note_record_damage(loader *l, uint64_t type, const zwi_cursor *cur)
{
    zwi_cursor named = *cur;
    snprintf(named.why, sizeof(named.why), "%s record: %.300s",
             zwi_section_name(type > UINT32_MAX ? UINT32_MAX : (uint32_t)type),
             cur->why[0] != '\0' ? cur->why : "bytes left over after the last record");
    zwi_container_bad(&l->file, &named);
    note_damage(l);
}

/* A PACKED section (1.6): records { varint type; varint len; len bytes }, each decoded as the
 * section of its type in its packed form. A record that does not decode is skipped as a damaged
 * section is; one longer than what is left ends the section. The damage is noted here: the
 * section itself always decodes. */
static int
read_packed(loader *l)
{
    zwi_cursor all = l->cur;
    l->packed = true;
    while (all.pos < all.len) {
        uint64_t type;
        size_t n;
        if (zwi_get_varint(&all, &type) || zwi_get_count(&all, 0, 1, "record byte", &n)) {
            note_record_damage(l, ZWI_SEC_PACKED, &all);
            break;
        }
        size_t start = all.pos;
        all.pos += n;
        if (!packed_type(type) || !reads(l, (uint32_t)type))
            continue;
        l->cur = (zwi_cursor){.p = all.p, .len = start + n, .pos = start, .raw = l->raw};
        before b = {l->samples.n, l->steps.nsteps,  l->steps.ndeltas,
                    l->c->nmarks, l->c->peak.label, l->c->exit.label};
        int rc = decode(l, (uint32_t)type);
        if (rc == 0 && l->cur.why[0] == '\0' && l->cur.pos == l->cur.len)
            continue;
        undo(l, (uint32_t)type, &b);
        note_record_damage(l, type, &l->cur);
    }
    l->packed = false;
    l->cur = zwi_cursor_of(all.p, all.len, l->raw); /* used up, its damage noted already */
    l->cur.pos = l->cur.len;
    return 0;
}

/* Every section after the header, each decoded whole; sets c->complete when END was read. A
 * damaged section is skipped and counted; a damaged section header ends the reading (what comes
 * after it cannot be found), which is also counted. -1 only for a file this reader must refuse
 * whole (an unknown required section). */
static int
read_sections(loader *l)
{
    int rc;
    zw_error scratch = {{0}};
    if (l->file.err == NULL)
        l->file.err = &scratch; /* the damage is still described in the capture */
    for (;;) {
        if (l->progress != NULL)
            l->progress(l->progress_arg, l->file.next_off, l->file.len);
        rc = zwi_container_next(&l->file);
        if (rc == 0)
            break;
        if (rc == 1 &&
            (!reads(l, l->file.type) ||
             (l->mode == LOAD_BRIEF && l->file.type == ZWI_SEC_PACKED && l->c->argv != NULL)))
            continue; /* not even decompressed; nor, in a brief load, the PACKED end of a
                       * streamed capture (its PROCESS read before it), which holds no record
                       * it takes (a summary load takes the exit SET) */
        if (rc == 1 && l->mode == LOAD_SUMMARY && l->file.type == ZWI_SEC_TABLE) {
            l->table_seen = true; /* not decompressed either: no traceback is read */
            continue;
        }
        if (rc == 1) {
            before b = {l->samples.n, l->steps.nsteps,  l->steps.ndeltas,
                        l->c->nmarks, l->c->peak.label, l->c->exit.label};
            if (zwi_container_payload(&l->file, &l->cur, l->raw) == 0 &&
                zwi_container_decoded(&l->file, &l->cur, decode(l, l->file.type)) == 0)
                continue;
            undo(l, l->file.type, &b);
            note_damage(l);
            continue;
        }
        if (l->file.skippable) {
            if (l->file.type == ZWI_SEC_SITE_DELTAS || l->file.type == ZWI_SEC_STEPS)
                l->steps_lost = true;
            note_damage(l);
            continue;
        }
        if (l->file.ended || (l->file.flags & ZWI_SECTION_REQUIRED))
            break;      /* a file to refuse whole: a bad end, an unknown required section */
        note_damage(l); /* a section header: nothing after it can be found */
        rc = 0;
        break;
    }
    if (l->file.err == &scratch)
        l->file.err = NULL;
    l->c->complete = rc == 0 && l->file.ended;
    return rc;
}

/* The samples and steps read, into the capture (which frees them). */
static void
keep_arrays(loader *l)
{
    zw_capture *c = l->c;
    c->samples = l->samples.v;
    c->nsamples = l->samples.n;
    c->steps = l->steps.steps;
    c->nsteps = l->steps.nsteps;
    c->deltas = l->steps.deltas;
    c->ndeltas = l->steps.ndeltas;
}

static int
by_ref(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a >> 32, y = *(const uint64_t *)b >> 32;
    return x < y ? -1 : x > y;
}

/* A 1.5 peak SET that is the exit set gets a copy of the exit set's traces (none if the exit
 * set was lost). -1 only when out of memory. */
static int
peak_from_exit(loader *l)
{
    zw_capture *c = l->c;
    if (!l->peak_as_exit || c->exit.snap == NULL || c->peak.snap != NULL)
        return 0;
    zw_error inner;
    c->peak.snap = zw_snapshot_pick(c->exit.snap, NULL, 0, &inner);
    return c->peak.snap == NULL ? zwi_container_fail(&l->file, "%s", strerror(ENOMEM)) : 0;
}

/* A capture that kept its peak as a step (no PEAK_SET) gets its peak set rebuilt from the steps
 * up to the last peak step. -1 only when out of memory. */
static int
peak_from_steps(loader *l)
{
    zw_capture *c = l->c;
    if (c->peak.label != NULL || c->nsteps == 0)
        return 0;
    size_t last = c->nsteps;
    for (size_t i = 0; i < c->nsteps; i++) {
        if (c->steps[i].peak)
            last = i;
    }
    if (last == c->nsteps)
        return 0;
    zw_error inner = {{0}};
    zw_snapshot *snap = zw_capture_live_at(c, c->steps[last].time_ns, &inner);
    char *label = zwi_alloc(l->raw, 5);
    if (snap == NULL || label == NULL) {
        /* too large to rebuild (see rebuild_limit) or no memory: the capture loads without its
         * peak set, and says why */
        zw_snapshot_free(snap);
        zwi_free(l->raw, label);
        if (snap != NULL)
            snprintf(inner.msg, sizeof(inner.msg), "%s", strerror(ENOMEM));
        size_t n = strlen(inner.msg);
        char *why = zwi_alloc(l->raw, n + 1);
        if (why != NULL)
            memcpy(why, inner.msg, n + 1);
        c->peak_lost = why;
        return 0;
    }
    memcpy(label, "peak", 5);
    uint64_t bytes = 0; /* the heap's: the mmap domain's mappings live then are in the set too */
    for (size_t i = 0; i < zw_snapshot_len(snap); i++) {
        zw_trace_info ti = zw_snapshot_trace(snap, i);
        bytes += ti.domain == ZW_TRACE_DEFAULT_DOMAIN ? ti.size : 0;
    }
    c->peak = (zw_capture_set){label, c->steps[last].time_ns, bytes, snap, NULL};
    return 0;
}

/* Once every section is read: the deltas' refs become site indices. Steps that cannot be resolved
 * (no SITES or SITE_INFO: the process died first; a ref no site has; steps not whole) are dropped
 * rather than shown wrong. -1 only when out of memory. */
static int
resolve_steps(loader *l)
{
    zw_capture *c = l->c;
    size_t nsites = c->sites != NULL ? zw_snapshot_len(c->sites) : 0;
    bool usable = c->nsteps > 0 && l->has_info && l->info.steps_whole && l->info.n == nsites &&
                  c->site_temporary != NULL && !l->steps_lost;
    uint64_t *map = NULL; /* (ref << 32 | index), sorted by ref */
    if (usable) {
        map = zwi_alloc(l->raw, (size_t)(nsites + 1) * sizeof(uint64_t));
        if (map == NULL)
            return zwi_container_fail(&l->file, "%s", strerror(ENOMEM));
        for (size_t i = 0; i < nsites; i++)
            map[i] = (uint64_t)l->info.refs[i] << 32 | i;
        qsort(map, nsites, sizeof(uint64_t), by_ref);
        for (size_t i = 0; usable && i < c->ndeltas; i++) {
            uint64_t key = (uint64_t)c->deltas[i].site << 32;
            const uint64_t *hit = bsearch(&key, map, nsites, sizeof(uint64_t), by_ref);
            if (hit == NULL)
                usable = false;
            else
                c->deltas[i].site = (uint32_t)*hit;
        }
        zwi_free(l->raw, map);
    }
    if (!usable) {
        c->nsteps = 0;
        c->ndeltas = 0;
    }
    if (l->info.n != nsites && c->site_temporary != NULL) {
        zwi_free(l->raw, c->site_temporary);
        c->site_temporary = NULL; /* not the same sites: not trusted */
    }
    return 0;
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
    size_t file_len; /* bytes of the file read: bounds what rebuilding a live set may use */
    zw_capture c;
} holder;

/* Reads a capture from `len` bytes; the capture takes `raw` (also on failure: it is destroyed). */
static zw_capture *
load(const unsigned char *data, size_t len, const char *name, zw_error *err, zw_raw *raw,
     zw_capture_progress_fn *progress, void *arg, enum load_mode mode)
{
    holder *h = zwi_alloc(raw, sizeof(holder));
    if (h == NULL) {
        zw_error_set(err, "cannot read capture '%s': %s", name, strerror(ENOMEM));
        zw_raw_destroy(raw);
        return NULL;
    }
    *h = (holder){.raw = raw, .file_len = len};
    loader l = {.c = &h->c, .raw = raw, .progress = progress, .progress_arg = arg, .mode = mode};
    bool brief = mode != LOAD_FULL;
    l.prefix = (size_t)snprintf(NULL, 0, "cannot read capture '%s': ", name);
    int rc = zwi_container_open(&l.file, data, len, ZWI_KIND_CAPTURE, name, raw, err);
    if (rc == 0)
        rc = read_sections(&l);
    keep_arrays(&l);
    if (rc == 0 && !brief)
        rc = resolve_steps(&l);
    if (rc == 0 && !brief)
        rc = peak_from_exit(&l);
    if (rc == 0 && !brief)
        rc = peak_from_steps(&l);
    zwi_container_release(&l.file);
    zwi_free(raw, l.info.refs);
    zw_snapshot_free(l.table);
    if (rc != 0) {
        zw_capture_free(l.c);
        return NULL;
    }
    /* the sampler and the peak saves append samples as they go: nearly in order */
    if (l.c->nsamples > 1)
        qsort(l.c->samples, l.c->nsamples, sizeof(zw_capture_sample), by_time);
    if (!l.c->has_totals)
        totals_from_samples(l.c);
    if (!l.c->has_totals && l.c->has_live)
        totals_from_live(l.c);
    check_leaks(l.c, raw);
    if (!brief)
        count_exit_snap(l.c);
    return l.c;
}

/* A capture held in memory, read in `mode`. */
static zw_capture *
load_memory(const void *data, size_t len, enum load_mode mode, zw_error *err)
{
    zw_raw *raw = zw_raw_new(NULL);
    if (raw == NULL) {
        zw_error_set(err, "cannot read capture '<memory>': %s", strerror(ENOMEM));
        return NULL;
    }
    return load(data, len, "<memory>", err, raw, NULL, NULL, mode);
}

zw_capture *
zw_capture_load_memory(const void *data, size_t len, zw_error *err)
{
    return load_memory(data, len, LOAD_FULL, err);
}

static zw_capture *load_file(const char *path, zw_capture_progress_fn *progress, void *arg,
                             enum load_mode mode, zw_error *err);

zw_capture *
zw_capture_load(const char *path, zw_error *err)
{
    return load_file(path, NULL, NULL, LOAD_FULL, err);
}

zw_capture *
zw_capture_load_brief(const char *path, zw_error *err)
{
    return load_file(path, NULL, NULL, LOAD_BRIEF, err);
}

zw_capture *
zw_capture_load_summary(const char *path, zw_error *err)
{
    return load_file(path, NULL, NULL, LOAD_SUMMARY, err);
}

zw_capture *
zwi_capture_load_summary_memory(const void *data, size_t len, zw_error *err)
{
    return load_memory(data, len, LOAD_SUMMARY, err);
}

zw_capture *
zw_capture_load_progress(const char *path, zw_capture_progress_fn *progress, void *arg,
                         zw_error *err)
{
    return load_file(path, progress, arg, LOAD_FULL, err);
}

static zw_capture *
load_file(const char *path, zw_capture_progress_fn *progress, void *arg, enum load_mode mode,
          zw_error *err)
{
    zw_capture *out = NULL;
    zwi_cbuf file = {.raw = zw_raw_new(NULL)}; /* the file's bytes */
    zw_raw *raw = zw_raw_new(NULL);            /* the capture's memory, given to load() */
    if (file.raw == NULL || raw == NULL) {
        zw_error_set(err, "cannot read '%s': %s", path, strerror(ENOMEM));
        zw_raw_destroy(raw);
    } else if (zwi_read_file(path, &file, err) != 0) {
        zw_raw_destroy(raw);
    } else {
        out = load(file.data, file.len, path, err, raw, progress, arg, mode);
    }
    if (file.raw != NULL) {
        zwi_cbuf_release(&file);
        zw_raw_destroy(file.raw);
    }
    return out;
}

zw_snapshot *
zw_capture_leaked(const zw_capture *c, unsigned kinds, zw_error *err)
{
    if (c->leaks.status != ZW_LEAKS_SCANNED || c->exit.snap == NULL) {
        zw_error_set(err, "the capture's exit set was not scanned for leaks");
        return NULL;
    }
    /* the kinds name the heap's traces, which come first; the mmap domain's are never picked */
    size_t n = zw_snapshot_len(c->exit.snap);
    zw_raw *raw = zw_raw_new(NULL);
    uint8_t *tags = raw != NULL ? zwi_alloc(raw, n + 1) : NULL;
    if (tags == NULL) {
        zw_raw_destroy(raw);
        zw_error_set(err, "cannot select traces: %s", strerror(ENOMEM));
        return NULL;
    }
    memset(tags, 0xff, n + 1);
    memcpy(tags, c->leaks.kinds, c->leaks.nkinds < n ? c->leaks.nkinds : n);
    zw_snapshot *snap = zw_snapshot_pick(c->exit.snap, tags, kinds, err);
    zwi_free(raw, tags);
    zw_raw_destroy(raw);
    return snap;
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
    for (size_t i = 0; i < c->nmarks; i++) {
        zwi_free(raw, (void *)c->marks[i].label);
        if (c->marks[i].leaks != NULL)
            zwi_free(raw, c->marks[i].leaks->kinds);
        zwi_free(raw, c->marks[i].leaks);
    }
    zwi_free(raw, c->marks);
    zwi_free(raw, c->site_counts);
    zwi_free(raw, c->site_temporary);
    zwi_free(raw, c->steps);
    zwi_free(raw, c->deltas);
    zwi_free(raw, c->leaks.kinds);
    zwi_free(raw, (void *)c->damage);
    zwi_free(raw, (void *)c->peak_lost);
    zwi_free(raw, h);
    zw_raw_destroy(raw);
}

/* The most blocks a rebuilt live set of `c` may hold: ZW_REBUILD_MAX_BLOCKS if set, else 2^20
 * plus 64 per byte of the capture file. A step names a site's block count, not its blocks, so a
 * few bytes of a damaged or hostile file could otherwise ask for any number; with a block costing
 * about 32 bytes once rebuilt, reading a capture stays within 2 KiB per byte of it plus 32 MiB. */
static uint64_t
rebuild_default(const zw_capture *c)
{
    const holder *h = (const holder *)((const char *)c - offsetof(holder, c));
    return ((uint64_t)1 << 20) + 64 * (uint64_t)h->file_len;
}

static uint64_t
rebuild_limit(const zw_capture *c)
{
    const char *s = getenv("ZW_REBUILD_MAX_BLOCKS");
    char *end;
    unsigned long long v = s != NULL ? strtoull(s, &end, 10) : 0;
    if (s != NULL && *s != '\0' && *end == '\0' && v > 0)
        return v;
    return rebuild_default(c);
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
    uint64_t total = 0, limit = rebuild_limit(c);
    bool chosen = getenv("ZW_REBUILD_MAX_BLOCKS") != NULL && limit != rebuild_default(c);
    for (size_t i = 0; i < n && total <= limit; i++)
        total += blocks[i] > 0 ? (uint64_t)blocks[i] : 0;
    if (total > limit) {
        zwi_free(raw, sum);
        zw_raw_destroy(raw);
        zw_error_set(err,
                     "the live set at %.3f s would hold more than %" PRIu64 " blocks, the most "
                     "%s",
                     (double)time_ns / 1e9, limit,
                     chosen ? "ZW_REBUILD_MAX_BLOCKS allows"
                            : "zw rebuilds from a capture of this size (set "
                              "ZW_REBUILD_MAX_BLOCKS to allow more)");
        return NULL;
    }
    zw_snapshot *snap = zwi_snapshot_spread(c->sites, blocks, bytes, err);
    zwi_free(raw, sum);
    zw_raw_destroy(raw);
    return snap;
}

/* ---- the sections as stored ---- */

int
zw_capture_sections(const char *path, void (*fn)(void *ctx, const zw_capture_section *s), void *ctx,
                    zw_error *err)
{
    zw_raw *raw = zw_raw_new(NULL);
    if (raw == NULL)
        return zw_error_set(err, "cannot read '%s': %s", path, strerror(ENOMEM));
    zwi_cbuf file = {.raw = raw};
    int rc = zwi_read_file(path, &file, err);
    zwi_container c;
    if (rc == 0 &&
        (rc = zwi_container_open(&c, file.data, file.len, ZWI_KIND_CAPTURE, path, raw, err)) == 0) {
        zw_error scratch = {{0}};
        c.err = &scratch; /* a damaged section is listed, not an error */
        int got;
        while ((got = zwi_container_next(&c)) != 0) {
            if (got < 0 && !c.skippable)
                break; /* a section header: where the next one is cannot be known */
            zw_capture_section s = {
                c.type,    zwi_section_name(c.type),          c.offset, c.stored,
                c.raw_len, (c.flags & ZWI_SECTION_ZSTD) != 0, got < 0};
            fn(ctx, &s);
        }
        if (c.ended) { /* END itself */
            zw_capture_section s = {
                ZWI_SEC_END, zwi_section_name(ZWI_SEC_END), c.offset, 0, 0, false, false};
            fn(ctx, &s);
        }
    }
    zwi_container_release(&c);
    zwi_cbuf_release(&file);
    zw_raw_destroy(raw);
    return rc;
}
