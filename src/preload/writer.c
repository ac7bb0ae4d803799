/* preload/writer.c - the capture file (docs/format.md#captures), written while the program runs:
 * the header and PROCESS at start, SAMPLES and STEPS as the sampler flushes them, and at the
 * end the live sets (marks, peak, exit) symbolised, SITES, SITE_INFO, TOTALS and END. Also the
 * live sets themselves: the peak (saved by a hook that passed G.peak_next) and zw_mark()'s.
 * Everything that writes runs under G.lock. See docs/zw.md#how-it-works. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "preload_internal.h"

#define MAX_MARK_SETS  256 /* marks that keep a copy of the live set; later ones time and bytes */
#define DEFAULT_OUTPUT "zw.%p.zwc"
#define PEAK_MIN_STEP  ((int64_t)1) /* a new peak set needs +1% and at least this many bytes */
/* A whole capture at most this long is rewritten at a clean end with a LIVE section of one slot
 * (compact_locked): 8 KiB less, which matters in a capture of a few KiB and not in a larger one */
#define COMPACT_MAX ((uint64_t)16 << 20)

/* ---- live sets ---- */

static int
copy_rec(void *ctx, const zwi_trace_rec *rec)
{
    liveset *set = ctx;
    if (set->n == set->cap) {
        /* mapped, not malloc'd: copying must not call the allocator of the shard we hold */
        size_t cap = set->cap ? 2 * set->cap : 4096;
        void *p = mmap(NULL, cap * sizeof(*rec), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return -1;
        if (set->n > 0)
            memcpy(p, set->recs, set->n * sizeof(*rec));
        if (set->recs != NULL)
            munmap(set->recs, set->cap * sizeof(*rec));
        set->recs = p;
        set->cap = cap;
    }
    set->recs[set->n++] = *rec;
    return 0;
}

static int
copy_block(void *ctx, uintptr_t ptr, const zwi_trace_rec *rec)
{
    (void)ptr;
    return copy_rec(ctx, rec);
}

/* Copies the tracer's records into `set` (which keeps its memory). */
static void
take_set_locked(liveset *set, uint64_t bytes)
{
    set->n = 0;
    set->time_ns = zwi_preload_now_ns();
    set->bytes = bytes;
    if (zwi_tracer_foreach(G.tracer, copy_rec, set) != 0)
        set->n = 0;
}

/* Saves the live set at a new peak of `bytes` (called when it passed G.peak_next): as a step of
 * the sites whose live blocks changed, flagged peak (a reader rebuilds the set from the steps),
 * or, when there are no steps, as a copy of the tracer's records. */
void
zwi_preload_save_peak(int64_t bytes)
{
    if (pthread_mutex_trylock(&G.lock) != 0)
        return; /* another thread writes or saves: the next allocation tries again */
    if (bytes >= atomic_load(&G.peak_next) && atomic_load(&G.active)) {
        if (G.sites != NULL && !G.steps_broken) {
            G.peak.n = 0;
            G.peak.time_ns = zwi_preload_now_ns();
            G.peak.bytes = (uint64_t)bytes;
            zwi_preload_scan_sites_locked(G.peak.time_ns, ZWI_STEP_PEAK);
        } else {
            take_set_locked(&G.peak, (uint64_t)bytes);
        }
        atomic_store(&G.peak_time_hint, G.peak.time_ns);
        if (G.live != NULL) {
            atomic_store(&G.live->peak_bytes, (uint64_t)bytes);
            atomic_store(&G.live->peak_time_ns, G.peak.time_ns);
        }
        int64_t step = bytes / 100 > PEAK_MIN_STEP ? bytes / 100 : PEAK_MIN_STEP;
        atomic_store(&G.peak_next, bytes + step);
        totals s = zwi_preload_sum_stats();
        zwi_preload_push_sample_locked((zw_capture_sample){
            G.peak.time_ns, (uint64_t)bytes, s.allocs - s.frees, zwi_preload_rss_bytes(), s.allocs,
            s.frees, s.temps, s.bytes, atomic_load(&G.mmaps.bytes), atomic_load(&G.mmaps.peak)});
    }
    pthread_mutex_unlock(&G.lock);
}

/* ---- the capture file ---- */

/* Notes that writing the capture failed (once: the first error is the one that cut it). */
static void
note_write_error(int err)
{
    if (G.write_errno == 0)
        G.write_errno = err;
    if (G.live != NULL) {
        uint32_t none = 0;
        atomic_compare_exchange_strong(&G.live->write_errno, &none, (uint32_t)err);
    }
}

/* write(2) of a whole buffer at the end of the file. SIGXFSZ (a file-size limit) is blocked and
 * taken back: a limit hit by the capture cuts the capture, it does not kill the program. 0 or an
 * errno. */
static int
write_all(int fd, const unsigned char *p, size_t len)
{
    sigset_t xfsz;
    sigset_t old;
    sigemptyset(&xfsz);
    sigaddset(&xfsz, SIGXFSZ);
    pthread_sigmask(SIG_BLOCK, &xfsz, &old);
    int rc = 0;
    for (size_t off = 0; off < len;) {
        ssize_t n = write(fd, p + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? errno : ENOSPC; /* a write of 0 bytes: no room */
            break;
        }
        off += (size_t)n;
    }
    if (rc == EFBIG && !sigismember(&old, SIGXFSZ))
        sigtimedwait(&xfsz, NULL, &(struct timespec){0, 0}); /* ours: not the program's */
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

/* Writes all of `b` at the end of the file (under G.lock); `last`: it ends the capture. Nothing is
 * written once the end is claimed by another writer (the fatal-signal path). */
static void
write_locked(const zwi_cbuf *b, bool last)
{
    if (G.fd < 0)
        return;
    if (b->failed) {
        note_write_error(ENOMEM);
        return;
    }
    struct stat st;
    if (fstat(G.fd, &st) != 0 || st.st_dev != G.file_dev || st.st_ino != G.file_ino) {
        G.fd = -1; /* the program closed our descriptor and reused it: never write into theirs */
        note_write_error(EBADF);
        return;
    }
    atomic_store(&G.in_write, true); /* before the claim is read: see zwi_preload_write_last_words */
    bool claimed = last ? atomic_exchange(&G.end_claimed, true) : atomic_load(&G.end_claimed);
    if (!claimed) {
        int err = write_all(G.fd, b->data, b->len);
        if (err != 0) {
            note_write_error(err);
            close(G.fd);
            G.fd = -1; /* the disk is full or gone: stop writing, keep running */
        } else {
            atomic_fetch_add(&G.file_len, b->len);
        }
    }
    atomic_store(&G.in_write, false);
}

static void
append_sample_locked(zw_capture_sample s)
{
    if (G.npending == PENDING_SAMPLES)
        zwi_preload_flush_samples_locked();
    G.pending[G.npending++] = s;
}

/* Whether nothing moved between sample `a` (the last one pushed) and `b`: the heap and the
 * counters are the same, and RSS moved by less than 1% of a's (RSS moves a page at a time while
 * a program reads or touches memory; a reader's line through the samples kept stays within 1%). */
static bool
same_sample(const zw_capture_sample *a, const zw_capture_sample *b)
{
    uint64_t drss =
        a->rss_bytes > b->rss_bytes ? a->rss_bytes - b->rss_bytes : b->rss_bytes - a->rss_bytes;
    return a->heap_bytes == b->heap_bytes && a->heap_blocks == b->heap_blocks &&
           drss <= a->rss_bytes / 100 && a->allocations == b->allocations && a->frees == b->frees &&
           a->temporary == b->temporary && a->bytes_allocated == b->bytes_allocated &&
           a->mmap_bytes == b->mmap_bytes && a->mmap_peak == b->mmap_peak;
}

void
zwi_preload_push_sample_locked(zw_capture_sample s)
{
    if (G.has_held) { /* the flat stretch ends here: its last sample first */
        G.has_held = false;
        append_sample_locked(G.held);
    }
    append_sample_locked(s);
}

void
zwi_preload_push_tick_locked(zw_capture_sample s)
{
    /* compared with the last sample pushed, not the one held: a slow drift is written */
    const zw_capture_sample *prev = G.npending > 0 ? &G.pending[G.npending - 1] : &G.last_written;
    bool any = G.npending > 0 || G.any_written;
    if (any && same_sample(prev, &s)) {
        G.held = s;
        G.has_held = true;
        return;
    }
    /* RSS alone moved on: the sample held is no corner of the curve (it is within 1% of the line
     * from the last sample pushed to this one) */
    zw_capture_sample rss_only = *prev;
    rss_only.rss_bytes = s.rss_bytes;
    if (any && G.has_held && same_sample(&rss_only, &s))
        G.has_held = false;
    zwi_preload_push_sample_locked(s);
}

/* Appends the pending samples as a SAMPLES section and the pending steps as a STEPS one, in
 * one write. */
void
zwi_preload_flush_samples_locked(void)
{
    if (G.npending == 0 && G.nsteps == 0)
        return;
    zwi_cbuf pay = {.raw = G.raw};
    zwi_cbuf sec = {.raw = G.raw};
    if (G.npending > 0) {
        zwi_encode_samples(&pay, G.pending, G.npending, (uint64_t)G.interval_ms * 1000000u);
        zwi_capture_put(&sec, ZWI_SEC_SAMPLES, &pay);
    }
    if (G.steps.failed)
        G.steps_broken = true; /* out of memory: no more steps, and SITE_INFO says so */
    if (G.nsteps > 0 && !G.steps_broken) {
        pay.len = 0;
        zwi_encode_steps_of(&pay, &G.steps, G.nsteps);
        zwi_capture_put(&sec, ZWI_SEC_STEPS, &pay);
    }
    write_locked(&sec, false);
    if (G.npending > 0) {
        G.last_written = G.pending[G.npending - 1];
        G.any_written = true;
    }
    G.flushed_ns = zwi_preload_now_ns();
    G.npending = 0;
    G.nsteps = 0;
    G.steps.len = 0;
    pay.failed = G.steps.failed = false;
    zwi_cbuf_release(&pay);
    zwi_cbuf_release(&sec);
}

/* Appends a step at `time_ns` to G.steps: the sites whose live blocks changed since the last step
 * (see G.dirty), their counters read now. Under `lock`. */
void
zwi_preload_scan_sites_locked(uint64_t time_ns, uint32_t flags)
{
    if (G.sites == NULL || G.steps_broken)
        return;
    size_t at = zwi_step_begin(&G.steps, time_ns, flags);
    uint32_t n = 0;
    size_t max = atomic_load(&G.site_max);
    for (size_t blk = 0; blk <= (max >> DIRTY_SHIFT); blk++) {
        if (atomic_load_explicit(&G.summary[blk], memory_order_relaxed) == 0)
            continue;
        atomic_store(&G.summary[blk], 0);
        size_t lo = blk << DIRTY_SHIFT;
        size_t hi = lo + ((size_t)1 << DIRTY_SHIFT);
        for (size_t ref = lo == 0 ? 1 : lo; ref < hi && ref < G.site_refs; ref++) {
            if (atomic_load_explicit(&G.dirty[ref], memory_order_relaxed) == 0)
                continue;
            atomic_store(&G.dirty[ref], 0);
            site *x = &G.sites[ref];
            uint64_t blocks = atomic_load(&x->count) - atomic_load(&x->freed);
            uint64_t bytes = atomic_load(&x->bytes) - atomic_load(&x->freed_bytes);
            site_shown *sh = &G.shown[ref];
            if (blocks == sh->blocks && bytes == sh->bytes)
                continue;
            zwi_step_delta(&G.steps, (uint32_t)ref, (int64_t)(bytes - sh->bytes),
                           (int64_t)(blocks - sh->blocks));
            sh->blocks = blocks;
            sh->bytes = bytes;
            sh->mentioned = true;
            n++;
        }
    }
    if (n == 0 && flags == 0) {
        G.steps.len = at; /* nothing changed: no step */
        return;
    }
    zwi_step_end(&G.steps, at, n);
    G.nsteps++;
}

/* Makes the file for this process: ZW_OUTPUT with %p replaced by the pid. An existing file (the
 * image before an exec, a parent) is never overwritten: ".1", ".2"... are tried. */
void
zwi_preload_open_output(void)
{
    const char *pat = zwi_preload_env("ZW_OUTPUT");
    if (pat == NULL || *pat == '\0')
        pat = DEFAULT_OUTPUT;
    char base[sizeof(G.path) - 16];
    size_t k = 0;
    for (const char *s = pat; *s != '\0' && k + 24 < sizeof(base); s++) {
        if (s[0] == '%' && s[1] == 'p') {
            k += (size_t)snprintf(base + k, sizeof(base) - k, "%ld", (long)getpid());
            s++;
        } else {
            base[k++] = *s;
        }
    }
    base[k] = '\0';
    for (int i = 0; i < 1000; i++) {
        if (i == 0)
            snprintf(G.path, sizeof(G.path), "%s", base);
        else
            snprintf(G.path, sizeof(G.path), "%s.%d", base, i);
        G.fd = open(G.path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644); /* read: mapped */
        if (G.fd >= 0 || errno != EEXIST)
            break;
    }
    struct stat st;
    if (G.fd >= 0) {
        /* out of the way of the program's low descriptors (dup2 onto 0-2, close loops) */
        int high = fcntl(G.fd, F_DUPFD_CLOEXEC, 1000);
        if (high >= 0) {
            close(G.fd);
            G.fd = high;
        }
        if (fstat(G.fd, &st) == 0) {
            G.file_dev = st.st_dev;
            G.file_ino = st.st_ino;
        }
    }
    if (G.fd < 0) {
        char msg[4200];
        int n = snprintf(msg, sizeof(msg), "zw: preload: error: cannot create '%s': %s\n", G.path,
                         strerror(errno));
        (void)!write(2, msg, (size_t)n);
    }
}

void
zwi_preload_map_live(void)
{
    size_t len = LIVE_AT + sizeof(live_head) + LIVE_SLOTS * sizeof(tstats);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    len = (len + page - 1) & ~(page - 1);
    void *p = MAP_FAILED;
    if (G.fd >= 0 && atomic_load(&G.file_len) >= LIVE_AT + sizeof(live_head))
        p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, G.fd, 0);
    if (p == MAP_FAILED) /* no file: the same layout in memory, lost with the process */
        p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return;
    G.live_map = p;
    G.live_len = len;
    G.live = (live_head *)(G.live_map + LIVE_AT);
    G.live->nslots = LIVE_SLOTS;
    G.slots = (tstats *)(G.live + 1);
    G.shared_slot = &G.slots[LIVE_SLOTS - 1];
    atomic_store(&G.slots_used, 0);
    for (size_t i = 0; i < LIVE_SLOTS; i++)
        atomic_store(&G.slot_free[i], 0);
    if (G.write_errno != 0)
        atomic_store(&G.live->write_errno, (uint32_t)G.write_errno);
}

/* The header, the LIVE section and the PROCESS section. */
void
zwi_preload_write_start_locked(void)
{
    zwi_cbuf out = {.raw = G.raw};
    zwi_cbuf pay = {.raw = G.raw};
    zwi_capture_put_header(&out);
    zwi_capture_put_live(&out, LIVE_SLOTS);
    zwi_process p = {.pid = (uint32_t)getpid(),
                     .ppid = (uint32_t)getppid(),
                     .start_realtime_ns = G.start_real,
                     .interval_ms = G.interval_ms,
                     .nframe = G.nframe};
    for (size_t i = 0; i < G.cmdline_len; i++)
        p.argc += G.cmdline[i] == '\0';
    p.argv = zwi_alloc(G.raw, (p.argc + 1) * sizeof(char *)); /* into G.cmdline */
    if (p.argv == NULL) {
        out.failed = true; /* no file rather than one without its command line */
    } else {
        for (size_t i = 0, k = 0; i < G.cmdline_len; i += strlen(G.cmdline + i) + 1)
            p.argv[k++] = G.cmdline + i;
        zwi_encode_process(&pay, &p);
        zwi_capture_put(&out, ZWI_SEC_PROCESS, &pay);
    }
    write_locked(&out, false);
    zwi_free(G.raw, (void *)p.argv);
    zwi_cbuf_release(&pay);
    zwi_cbuf_release(&out);
}

/* The indices in `table` of `snap`'s tracebacks, copied there (free with zwi_free); NULL if out
 * of memory. */
static uint32_t *
absorb(zw_snapshot *table, const zw_snapshot *snap)
{
    uint32_t *map = zwi_alloc(G.raw, (zwi_snapshot_ntracebacks(snap) + 1) * sizeof(uint32_t));
    if (map != NULL && zwi_snapshot_absorb(table, snap, map) != 0) {
        zwi_free(G.raw, map);
        map = NULL;
    }
    return map;
}

/* A SET section (peak, exit or mark: `kind`): time, bytes, label and the set's traces, whose
 * tracebacks go into `table` (written once, before every set). The set is written as not kept
 * when its tracebacks do not fit in memory. */
static void
put_set(zwi_cbuf *out, zw_snapshot *table, uint32_t kind, const char *label, uint64_t time_ns,
        uint64_t bytes, zw_snapshot *snap)
{
    uint32_t *map = snap != NULL ? absorb(table, snap) : NULL;
    zwi_cbuf pay = {.raw = G.raw};
    zwi_encode_table_set(
        &pay, kind, &(zw_capture_set){label, time_ns, bytes, map != NULL ? snap : NULL, NULL}, map);
    zwi_capture_put(out, ZWI_SEC_SET, &pay);
    zwi_cbuf_release(&pay);
    zwi_free(G.raw, map);
}

/* The SITE_LIST section: per traceback (its index in `table`), the allocations made there and
 * their bytes, the site's ref (the SITE_DELTAS name sites by it) and its temporary allocations.
 * A site appears if an allocation was made there or a step mentioned it (a fork child frees its
 * parent's). */
static void
put_sites(zwi_cbuf *out, zw_snapshot *table, zwi_symbolizer *sym)
{
    liveset set = {0};
    unsigned max = atomic_load(&G.site_max);
    for (size_t ref = 1; G.sites != NULL && ref <= max && ref < G.site_refs; ref++) {
        uint64_t count = atomic_load_explicit(&G.sites[ref].count, memory_order_relaxed);
        if (count == 0 && !G.shown[ref].mentioned)
            continue;
        zwi_trace_rec rec = {atomic_load_explicit(&G.sites[ref].domain, memory_order_relaxed),
                             atomic_load_explicit(&G.sites[ref].bytes, memory_order_relaxed),
                             (uint32_t)ref};
        if (copy_rec(&set, &rec) != 0)
            break;
    }
    zwi_sites sites = {.n = set.n};
    zwi_site_info info = {.steps_whole = !G.steps_broken, .n = set.n};
    sites.snap = zwi_snapshot_from_recs(G.tracer, sym, set.recs, set.n, NULL);
    sites.counts = zwi_alloc(G.raw, (set.n + 1) * sizeof(uint64_t));
    info.refs = zwi_alloc(G.raw, (set.n + 1) * sizeof(uint32_t));
    info.temporary = zwi_alloc(G.raw, (set.n + 1) * sizeof(uint64_t));
    zwi_cbuf pay = {.raw = G.raw};
    if (sites.snap != NULL && sites.counts != NULL && info.refs != NULL && info.temporary != NULL) {
        for (size_t i = 0; i < set.n; i++) {
            const site *x = &G.sites[set.recs[i].tb];
            sites.counts[i] = atomic_load(&x->count);
            info.refs[i] = set.recs[i].tb;
            info.temporary[i] = atomic_load(&x->temps);
        }
        uint32_t *map = absorb(table, sites.snap);
        if (map != NULL) {
            zwi_encode_site_list(&pay, &sites, &info, map);
            zwi_capture_put(out, ZWI_SEC_SITE_LIST, &pay);
        }
        zwi_free(G.raw, map);
    }
    zwi_cbuf_release(&pay);
    zwi_free(G.raw, info.temporary);
    zwi_free(G.raw, info.refs);
    zwi_free(G.raw, sites.counts);
    zw_snapshot_free(sites.snap);
    if (set.recs != NULL)
        munmap(set.recs, set.cap * sizeof(*set.recs));
}

/* A LEAKS section (or MARK_LEAKS, `type`): how a set's scan went and the kind of each block. */
static void
put_leaks(zwi_cbuf *out, uint32_t type, const zwi_leak_check *c, bool have_set)
{
    zw_capture_leaks l = {
        .status = c->status == ZW_LEAKS_SCANNED && !have_set ? ZW_LEAKS_FAILED : c->status,
        .kinds = c->kinds,
        .nkinds = c->n,
        .scan_ns = c->scan_ns,
        .scan_cpu_ns = c->scan_cpu_ns,
        .scan_memory = c->scan_memory,
        .root_bytes = c->roots.root_bytes,
        .modules = c->roots.modules,
        .threads = c->roots.threads,
        .threads_missed = c->roots.threads_missed,
    };
    memcpy(l.blocks, c->blocks, sizeof(l.blocks));
    memcpy(l.bytes, c->bytes, sizeof(l.bytes));
    zwi_cbuf pay = {.raw = G.raw};
    zwi_encode_leaks(&pay, &l);
    zwi_capture_put(out, type, &pay);
    zwi_cbuf_release(&pay);
}

/* At a clean end: the capture again, its LIVE section shrunk to one slot holding the sums of all
 * (LIVE_SLOTS slots are 8 KiB; once TOTALS is written they only say what TOTALS says), written
 * to a new file renamed over the old one, so a crash leaves one or the other whole. Skipped for a
 * large capture, or when the file is no longer at its path (the program moved it, or chdir'd away
 * from a relative path). */
static void
compact_locked(void)
{
    uint64_t len = atomic_load(&G.file_len);
    size_t live_end = LIVE_AT + sizeof(live_head) + LIVE_SLOTS * sizeof(tstats);
    struct stat st;
    if (G.fd < 0 || G.live == NULL || G.live_map == NULL || G.write_errno != 0 ||
        len > COMPACT_MAX || len < live_end || stat(G.path, &st) != 0 || st.st_dev != G.file_dev ||
        st.st_ino != G.file_ino || (uint64_t)st.st_size != len)
        return;
    char tmp[sizeof(G.path) + 16];
    if (snprintf(tmp, sizeof(tmp), "%s.zw-tmp", G.path) >= (int)sizeof(tmp))
        return;
    zwi_cbuf out = {.raw = G.raw};
    zwi_capture_put_header(&out);
    totals s = zwi_preload_sum_stats();
    zwi_capture_put_live(&out, 1);
    if (!out.failed) { /* the head as the process left it, one slot of the sums */
        live_head *h = (live_head *)(out.data + LIVE_AT);
        memcpy(h, G.live, sizeof(*h));
        h->nslots = 1;
        tstats *one = (tstats *)(h + 1);
        atomic_store(&one->allocs, s.allocs);
        atomic_store(&one->frees, s.frees);
        atomic_store(&one->temps, s.temps);
        atomic_store(&one->bytes, s.bytes);
        atomic_store(&one->freed_bytes, s.freed_bytes);
        atomic_store(&one->untraced, s.untraced);
    }
    unsigned char *rest = zwi_cbuf_grow(&out, len - live_end);
    for (size_t off = 0; rest != NULL && off < len - live_end;) {
        ssize_t n = pread(G.fd, rest + off, len - live_end - off, (off_t)(live_end + off));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            out.failed = true;
            break;
        }
        off += (size_t)n;
    }
    /* the second's worth of samples and steps of each flush, as one section each */
    zwi_cbuf merged = {.raw = G.raw};
    const zwi_cbuf *final = &out;
    if (!out.failed && zwi_capture_merge_streamed(out.data, out.len,
                                                  (uint64_t)G.interval_ms * 1000000u, &merged) == 0)
        final = &merged;
    int fd = out.failed ? -1 : open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) {
        bool ok = write_all(fd, final->data, final->len) == 0;
        if (close(fd) != 0 || !ok || rename(tmp, G.path) != 0)
            unlink(tmp);
    }
    zwi_cbuf_release(&merged);
    zwi_cbuf_release(&out);
}

/* The exit set of a scan: the heap blocks it kinds, in its order, then the mappings of the mmap
 * domain (the kinds name the heap's traces, which come first). */
static zw_snapshot *
scanned_set(const zwi_leak_check *c, zwi_symbolizer *sym)
{
    liveset set = {0};
    zw_snapshot *snap = NULL;
    for (size_t i = 0; i < c->n; i++) {
        if (copy_rec(&set, &c->recs[i]) != 0)
            goto out;
    }
    if (zwi_tracer_foreach_block(G.tracer, ZW_CAPTURE_MMAP_DOMAIN, copy_block, &set) == 0)
        snap = zwi_snapshot_from_recs(G.tracer, sym, set.recs, set.n, NULL);
out:
    if (set.recs != NULL)
        munmap(set.recs, set.cap * sizeof(*set.recs));
    return snap;
}

/* Everything after the streamed samples: live sets, sites, totals, END. */
void
zwi_preload_write_end_locked(uint32_t end, int code)
{
    zw_capture_sample last = zwi_preload_sample_now();
    zwi_preload_push_sample_locked(last);
    zwi_preload_scan_sites_locked(last.time_ns, 0);
    zwi_preload_flush_samples_locked();
    zwi_symbolizer *sym = zwi_symbolizer_new();
    zw_snapshot *table = zw_snapshot_new(G.nframe);
    if (sym == NULL || table == NULL) {
        note_write_error(ENOMEM); /* finish() writes the last words instead */
        zwi_symbolizer_free(sym);
        zw_snapshot_free(table);
        return;
    }
    zwi_preload_report_unloaded(sym);
    /* the sets and sites into `body`, their tracebacks into `table`; then the file gets TABLE,
     * the body, TOTALS and END */
    zwi_cbuf body = {.raw = G.raw};
    /* marks, oldest first */
    liveset *rev = NULL;
    for (liveset *m = G.marks; m != NULL;) {
        liveset *next = m->next;
        m->next = rev;
        rev = m;
        m = next;
    }
    G.marks = rev;
    for (liveset *m = G.marks; m != NULL; m = m->next) {
        zw_snapshot *snap =
            m->kept ? zwi_snapshot_from_recs(G.tracer, sym, m->recs, m->n, NULL) : NULL;
        put_set(&body, table, ZWI_SET_MARK, m->label, m->time_ns, m->bytes, snap);
        if (m->leak.status != ZW_LEAKS_UNKNOWN) /* its scan, right after it */
            put_leaks(&body, ZWI_SEC_MARK_LEAKS, &m->leak, snap != NULL);
        zw_snapshot_free(snap);
    }
    /* the exit set, scanned for leaks unless the process dies of a signal; it is the peak set
     * too if nothing larger was saved */
    zwi_leak_check leaks = {.status = ZW_LEAKS_OFF};
    if (end == ZW_CAPTURE_END_SIGNAL)
        leaks.status = ZW_LEAKS_SKIPPED;
    else if (G.leak_check)
        zwi_preload_leak_check(&leaks, G.leak_stack_lo);
    zw_snapshot *exit_snap = leaks.status == ZW_LEAKS_SCANNED
                                 ? scanned_set(&leaks, sym)
                                 : zwi_snapshot_from_tracer(G.tracer, sym, NULL);
    uint64_t peak_bytes = (uint64_t)zwi_tracer_peak_hint(G.tracer);
    if ((G.peak.time_ns == 0 && G.peak.n == 0 && G.peak.bytes == 0) ||
        last.heap_bytes >= G.peak.bytes) { /* the peak set is the exit set: said, not repeated */
        zwi_cbuf pay = {.raw = G.raw};
        if (exit_snap != NULL)
            zwi_encode_table_set_as_exit(&pay, last.time_ns, last.heap_bytes);
        else
            zwi_encode_table_set(
                &pay, ZWI_SET_PEAK,
                &(zw_capture_set){"peak", last.time_ns, last.heap_bytes, NULL, NULL}, NULL);
        zwi_capture_put(&body, ZWI_SEC_SET, &pay);
        zwi_cbuf_release(&pay);
        if (G.peak.time_ns != 0 || G.peak.n != 0 || G.peak.bytes != 0)
            G.peak.time_ns = last.time_ns;
    } else if (G.peak.n == 0 && !G.steps_broken) {
        /* saved as a peak step: no PEAK_SET, the reader rebuilds it from the steps */
    } else {
        zw_snapshot *peak = zwi_snapshot_from_recs(G.tracer, sym, G.peak.recs, G.peak.n, NULL);
        put_set(&body, table, ZWI_SET_PEAK, "peak", G.peak.time_ns, G.peak.bytes, peak);
        zw_snapshot_free(peak);
    }
    put_set(&body, table, ZWI_SET_EXIT, "exit", last.time_ns, last.heap_bytes, exit_snap);
    put_leaks(&body, ZWI_SEC_LEAKS, &leaks, exit_snap != NULL);
    zwi_preload_leak_release(&leaks);
    zw_snapshot_free(exit_snap);
    put_sites(&body, table, sym);
    zwi_cbuf out = {.raw = G.raw};
    zwi_cbuf pay = {.raw = G.raw};
    zwi_encode_table(&pay, table);
    zwi_capture_put(&out, ZWI_SEC_TABLE, &pay);
    zw_snapshot_free(table);
    if (body.failed)
        out.failed = true;
    else
        zwi_cbuf_bytes(&out, body.data, body.len);
    zwi_cbuf_release(&body);
    totals s = zwi_preload_sum_stats();
    pay.len = 0;
    zwi_encode_totals(&pay, &(zw_capture_totals){s.allocs, s.frees, s.temps, s.bytes, peak_bytes,
                                                 G.peak.time_ns, last.time_ns, end, code});
    zwi_capture_put(&out, ZWI_SEC_TOTALS, &pay);
    pay.len = 0;
    zwi_encode_end(&pay);
    zwi_capture_put(&out, ZWI_SEC_END, &pay);
    zwi_cbuf_release(&pay);
    write_locked(&out, true);
    if (!out.failed)
        compact_locked();
    zwi_cbuf_release(&out);
    zwi_symbolizer_free(sym);
}

/* ---- marks ---- */

void
zwi_preload_take_mark(const char *label, uintptr_t stack_lo)
{
    zwi_preload_drain(ZWI_DRAIN_MS); /* every allocation before the mark is in the tables */
    liveset *m = mmap(NULL, sizeof(*m), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return;
    size_t cur = 0;
    zwi_tracer_traced_memory(G.tracer, &cur, NULL);
    pthread_mutex_lock(&G.lock);
    if (G.nmark_sets < MAX_MARK_SETS && G.leak_marks) {
        /* the scan's records are the set's heap blocks: every one of them has its kind */
        m->time_ns = zwi_preload_now_ns();
        m->bytes = cur;
        zwi_preload_leak_check(&m->leak, stack_lo);
        if (m->leak.status == ZW_LEAKS_SCANNED) {
            /* the heap's blocks in the scan's order (its kinds name them), then the mappings */
            for (size_t i = 0; i < m->leak.n && copy_rec(m, &m->leak.recs[i]) == 0; i++)
                ;
            zwi_tracer_foreach_block(G.tracer, ZW_CAPTURE_MMAP_DOMAIN, copy_block, m);
        } else {
            take_set_locked(m, cur);
        }
        m->kept = true;
        G.nmark_sets++;
    } else if (G.nmark_sets < MAX_MARK_SETS) { /* past it, a mark keeps its time and bytes only */
        take_set_locked(m, cur);
        m->kept = true;
        G.nmark_sets++;
    } else {
        m->time_ns = zwi_preload_now_ns();
        m->bytes = cur;
    }
    snprintf(m->label, sizeof(m->label), "%s", label != NULL ? label : "");
    m->next = G.marks;
    G.marks = m;
    pthread_mutex_unlock(&G.lock);
}

/* The marks of a program that links zerowaste itself reach us here (capture.h, ZW_MARK_SINK). */
EXPORT zw_mark_sink_fn zw_mark_sink;

EXPORT void
zw_mark_sink(const char *label)
{
    /* the registers as the program left them, and where its frames end: a mark's scan's roots */
    jmp_buf regs;
    setjmp(regs);
    if (!atomic_load(&G.active) || zwi_trace_guard)
        return;
    zwi_trace_guard++;
    zwi_preload_take_mark(label, (uintptr_t)&regs);
    zwi_trace_guard--;
}

/* For programs that declare zw_mark weak and do not link zerowaste. */
EXPORT void
zw_mark(const char *label)
{
    zw_mark_sink(label);
}

/* ---- last words: the end of the capture from a signal handler ---- */

void
zwi_preload_write_last_words(uint32_t end, int code)
{
    /* Written into static memory and with system calls only: the thread may hold malloc's locks
     * (glibc's double-free abort does), or the heap may be broken. */
    static _Alignas(16) unsigned char out_mem[512];
    static _Alignas(16) unsigned char pay_mem[256];
    if (atomic_exchange(&G.end_claimed, true))
        return; /* a writer ends the capture already */
    if (G.live != NULL) {
        atomic_store(&G.live->end, end);
        atomic_store(&G.live->code, code);
    }
    /* a write under way finishes in microseconds; a write this thread was interrupted in never
     * does: its bytes are written over below */
    for (int i = 0; i < 200 && atomic_load(&G.in_write); i++)
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    int fd = G.fd;
    uint64_t at = atomic_load(&G.file_len);
    if (fd < 0 || at == 0)
        return;
    totals s = zwi_preload_sum_stats();
    zw_capture_sample last = {zwi_preload_now_ns(),
                              G.heap_base_bytes + s.bytes - s.freed_bytes,
                              G.heap_base_blocks + s.allocs - s.frees,
                              zwi_preload_rss_bytes(),
                              s.allocs,
                              s.frees,
                              s.temps,
                              s.bytes,
                              atomic_load(&G.mmaps.bytes),
                              atomic_load(&G.mmaps.peak)};
    zwi_cbuf out = {.raw = G.raw, .data = out_mem, .cap = sizeof(out_mem)};
    zwi_cbuf pay = {.raw = G.raw, .data = pay_mem, .cap = sizeof(pay_mem)};
    /* one sample, TOTALS, END: small payloads, stored uncompressed (no zstd, which allocates) */
    zwi_encode_series(&pay, &last, 1);
    zwi_capture_put(&out, ZWI_SEC_SERIES, &pay);
    pay.len = 0;
    uint64_t peak = (uint64_t)zwi_tracer_peak_hint(G.tracer);
    bool peak_now = peak <= last.heap_bytes;
    zwi_encode_totals(&pay, &(zw_capture_totals){s.allocs, s.frees, s.temps, s.bytes,
                                                 peak_now ? last.heap_bytes : peak,
                                                 peak_now ? last.time_ns
                                                          : atomic_load(&G.peak_time_hint),
                                                 last.time_ns, end, code});
    zwi_capture_put(&out, ZWI_SEC_TOTALS, &pay);
    pay.len = 0;
    zwi_encode_end(&pay);
    zwi_capture_put(&out, ZWI_SEC_END, &pay);
    if (out.failed || out.data != out_mem) /* never grows: the buffers hold these three */
        return;
    for (size_t off = 0; off < out.len;) {
        ssize_t n = pwrite(fd, out.data + off, out.len - off, (off_t)(at + off));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        off += (size_t)n;
    }
    if (ftruncate(fd, (off_t)(at + out.len)) == 0) /* a section cut by the signal goes */
        atomic_store(&G.file_len, at + out.len);
}
