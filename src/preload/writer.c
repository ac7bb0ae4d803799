/* preload/writer.c - the capture file (docs/format.md#captures), written while the program runs:
 * the header, LIVE and PROCESS at start, SAMPLES and STEPS as the sampler flushes them, and at
 * the end the table of tracebacks, the live sets (marks, peak, exit) and the sites as the records
 * of one PACKED section, TOTALS and END; then, at a clean end, the whole capture again in the
 * packed form. Also the live sets themselves: the peak (saved by a hook that passed
 * G.peak_next) and zw_mark()'s. Everything that writes runs under G.lock. See
 * docs/zw.md#how-it-works. */
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

#include "arena.h"
#include "preload_internal.h"

#define MAX_MARK_SETS  256 /* marks that keep a copy of the live set; later ones time and bytes */
#define DEFAULT_OUTPUT "zw.%p.zwc"
#define PEAK_MIN_STEP  ((int64_t)1) /* a new peak set needs +1% and at least this many bytes */
/* A whole capture at most this long (its end's sections uncompressed) is rewritten at a clean end
 * in the packed form (pack_locked): one zstd frame for every section, its LIVE counters summed */
#define COMPACT_MAX ((uint64_t)16 << 20)
/* ... unless its end's records (packed encodings already) are past PACK_END_MAX and most of it:
 * the rewrite would then recompress them for next to nothing (g++ -O2, cc1plus: 4.6 MB of records
 * in a 4.7 MB capture, 935 KB written so against 925 KB packed, the end 70 ms shorter) */
#define PACK_END_MAX ((uint64_t)1 << 20)

/* ---- live sets ---- */

static int
copy_rec(void *ctx, const zwi_trace_rec *rec)
{
    liveset *set = ctx;
    if (set->n == set->cap) {
        /* mapped, not malloc'd: copying must not call the allocator of the shard we hold;
         * populated: it is written through (a first touch is a page fault, dear on a VM) */
        size_t cap = set->cap ? 2 * set->cap : 4096;
        void *p = mmap(NULL, cap * sizeof(*rec), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
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
        G.fd = zwi_fd_high(G.fd, true);
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

/* A SET section (peak, exit or mark: `kind`): time, bytes, label and, when `kept`, the traces of
 * `recs`, their tracebacks converted into the table by `tb` (written once, before every set).
 * The set is written as not kept when its tracebacks do not fit in memory: whether it was kept. */
static bool
put_set(zwi_cbuf *out, zwi_table_builder *tb, uint32_t kind, const char *label, uint64_t time_ns,
        uint64_t bytes, const zwi_trace_rec *recs, size_t n, bool kept)
{
    zwi_set s = {.kind = kind, .time_ns = time_ns, .heap_bytes = bytes, .label = label};
    s.domains = zwi_alloc(out->raw, (n + 1) * sizeof(uint32_t));
    s.tbs = zwi_alloc(out->raw, (n + 1) * sizeof(uint32_t));
    s.sizes = zwi_alloc(out->raw, (n + 1) * sizeof(uint64_t));
    s.kept = kept && s.domains != NULL && s.tbs != NULL && s.sizes != NULL;
    for (size_t i = 0; s.kept && i < n; i++) {
        int64_t x = zwi_table_builder_index(tb, recs[i].tb);
        s.kept = x >= 0;
        s.domains[i] = recs[i].domain;
        s.tbs[i] = (uint32_t)x;
        s.sizes[i] = recs[i].size;
    }
    s.n = s.kept ? n : 0;
    zwi_cbuf pay = {.raw = out->raw};
    zwi_encode_table_set_of(&pay, &s);
    zwi_capture_put_record(out, ZWI_SEC_SET, &pay);
    zwi_cbuf_release(&pay);
    zwi_free(out->raw, s.sizes);
    zwi_free(out->raw, s.tbs);
    zwi_free(out->raw, s.domains);
    return s.kept;
}

/* The SITE_LIST section: per traceback (its index in the table, converted by `tb`), the
 * allocations made there and their bytes, the site's ref (the steps name sites by it) and its
 * temporary allocations. A site appears if an allocation was made there or a step mentioned it
 * (a fork child frees its parent's). Left out when it does not fit in memory. */
static void
put_sites(zwi_cbuf *out, zwi_table_builder *tb)
{
    size_t n = 0;
    unsigned max = atomic_load(&G.site_max);
    for (size_t ref = 1; G.sites != NULL && ref <= max && ref < G.site_refs; ref++)
        n += atomic_load_explicit(&G.sites[ref].count, memory_order_relaxed) != 0 ||
             G.shown[ref].mentioned;
    zwi_site_list sl = {.steps_whole = !G.steps_broken};
    sl.refs = zwi_alloc(out->raw, (n + 1) * sizeof(uint32_t));
    sl.domains = zwi_alloc(out->raw, (n + 1) * sizeof(uint32_t));
    sl.tbs = zwi_alloc(out->raw, (n + 1) * sizeof(uint32_t));
    sl.counts = zwi_alloc(out->raw, (n + 1) * sizeof(uint64_t));
    sl.bytes = zwi_alloc(out->raw, (n + 1) * sizeof(uint64_t));
    sl.temporary = zwi_alloc(out->raw, (n + 1) * sizeof(uint64_t));
    bool ok = sl.refs != NULL && sl.domains != NULL && sl.tbs != NULL && sl.counts != NULL &&
              sl.bytes != NULL && sl.temporary != NULL;
    for (size_t ref = 1; ok && sl.n < n && ref <= max && ref < G.site_refs; ref++) {
        const site *x = &G.sites[ref];
        uint64_t count = atomic_load_explicit(&x->count, memory_order_relaxed);
        if (count == 0 && !G.shown[ref].mentioned)
            continue;
        int64_t t = zwi_table_builder_index(tb, (uint32_t)ref);
        ok = t >= 0;
        sl.refs[sl.n] = (uint32_t)ref;
        sl.domains[sl.n] = atomic_load_explicit(&x->domain, memory_order_relaxed);
        sl.tbs[sl.n] = (uint32_t)t;
        sl.counts[sl.n] = count;
        sl.bytes[sl.n] = atomic_load_explicit(&x->bytes, memory_order_relaxed);
        sl.temporary[sl.n] = atomic_load(&x->temps);
        sl.n++;
    }
    if (ok) {
        zwi_cbuf pay = {.raw = out->raw};
        zwi_encode_site_list_packed(&pay, &sl);
        zwi_capture_put_record(out, ZWI_SEC_SITE_LIST, &pay);
        zwi_cbuf_release(&pay);
    }
    zwi_site_list_release(out->raw, &sl);
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
    zwi_cbuf pay = {.raw = out->raw};
    zwi_encode_leaks_packed(&pay, &l);
    zwi_capture_put_record(out, type, &pay);
    zwi_cbuf_release(&pay);
}

/* Whether the capture may be rewritten packed at its end once `more` bytes are appended: it is
 * whole (no write failed), at most COMPACT_MAX bytes, and still the file at its path (the program
 * did not move it, nor chdir away from a relative path). */
static bool
packable(uint64_t more)
{
    uint64_t len = atomic_load(&G.file_len);
    size_t live_end = LIVE_AT + sizeof(live_head) + LIVE_SLOTS * sizeof(tstats);
    struct stat st;
    return G.fd >= 0 && G.live != NULL && G.live_map != NULL && G.write_errno == 0 &&
           len + more <= COMPACT_MAX && len >= live_end && stat(G.path, &st) == 0 &&
           st.st_dev == G.file_dev && st.st_ino == G.file_ino && (uint64_t)st.st_size == len;
}

/* At a clean end: the capture again in the packed form (docs/format.md#the-packed-form: every
 * section in one zstd frame, its LIVE counters summed), written to a new file renamed over the
 * old one, so a crash leaves one or the other whole. The end's sections were written
 * uncompressed (packable() said so): they are compressed once, here. Skipped as packable() says;
 * if the packing fails (no memory), the capture stays as written. */
static void
pack_locked(zw_raw *raw)
{
    uint64_t len = atomic_load(&G.file_len);
    size_t live_end = LIVE_AT + sizeof(live_head) + LIVE_SLOTS * sizeof(tstats);
    if (!packable(0))
        return;
    char tmp[sizeof(G.path) + 16];
    if (snprintf(tmp, sizeof(tmp), "%s.zw-tmp", G.path) >= (int)sizeof(tmp))
        return;
    zwi_cbuf out = {.raw = raw};
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
    zwi_cbuf packed = {.raw = raw};
    bool ok = !out.failed &&
              zwi_capture_pack(out.data, out.len, (uint64_t)G.interval_ms * 1000000u, &packed) == 0;
    zwi_cbuf_release(&out);
    int fd = ok ? open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644) : -1;
    if (fd >= 0) {
        ok = write_all(fd, packed.data, packed.len) == 0;
        if (close(fd) != 0 || !ok || rename(tmp, G.path) != 0)
            unlink(tmp);
    }
    zwi_cbuf_release(&packed);
}

/* The exit set's records into `set`: those of a scan, the heap blocks it kinds in its order, then
 * the mappings of the mmap domain (the kinds name the heap's traces, which come first); without a
 * scan, every record of the tracer. False if they do not fit in memory. */
static bool
take_exit_set(liveset *set, const zwi_leak_check *c)
{
    if (c->status != ZW_LEAKS_SCANNED)
        return zwi_tracer_foreach(G.tracer, copy_rec, set) == 0;
    for (size_t i = 0; i < c->n; i++) {
        if (copy_rec(set, &c->recs[i]) != 0)
            return false;
    }
    return zwi_tracer_foreach_block(G.tracer, ZW_CAPTURE_MMAP_DOMAIN, copy_block, set) == 0;
}

/* The exit set's leak check on a thread of its own (zw-scan) while the end's writer goes on with
 * the sites and the table beside it (its thread neither stopped nor read by the scan): cc1plus
 * (g++ -O2) spent 33 ms scanning, then 35 ms converting and encoding the table, one after the
 * other while the program waited to exit. */
typedef struct scan_job {
    zwi_leak_check *leaks;
    zwi_leak_thread who;
    pthread_t thread;
} scan_job;

#define SCAN_STACK ((size_t)1 << 20)

static void *
scan_main(void *arg)
{
    scan_job *j = arg;
    zwi_preload_own_thread("zw-scan");
    zwi_preload_leak_check(j->leaks, &j->who);
    return NULL;
}

/* The scan started on its thread; false if none was (the caller scans itself): none is made
 * when the end is written by the thread that ends the program, which may hold the loader's
 * lock (exit() inside dlopen) the scan takes, or if none can be made. */
static bool
scan_beside(scan_job *j, zwi_leak_check *leaks)
{
    j->leaks = leaks;
    j->who = G.leak_thread;
    j->who.beside = zwi_leakscan_this_thread(0).tid;
    if (j->who.beside == j->who.tid)
        return false;
    pthread_attr_t attr;
    if (pthread_attr_init(&attr) != 0)
        return false;
    bool made = pthread_attr_setstacksize(&attr, SCAN_STACK) == 0 &&
                pthread_create(&j->thread, &attr, scan_main, j) == 0;
    pthread_attr_destroy(&attr);
    return made;
}

/* Everything after the streamed samples: live sets, sites, totals, END. */
void
zwi_preload_write_end_locked(uint32_t end, int code)
{
    zw_capture_sample last = zwi_preload_sample_now();
    zwi_preload_push_sample_locked(last);
    zwi_preload_scan_sites_locked(last.time_ns, 0);
    zwi_preload_flush_samples_locked();
    /* the table and the end's buffers from arenas of populated pages (arena.c): the table's
     * unmapped once it is encoded, the buffers' at the end. The table as the sampler built it so
     * far (ahead.c), else a new one. */
    zwi_symbolizer *sym = NULL;
    zwi_arena *table_arena = NULL;
    zw_snapshot *table = NULL;
    zwi_table_builder *tb = NULL; /* a ref's index: an array read once converted */
    if (!zwi_preload_ahead_take_locked(&sym, &table_arena, &table, &tb)) {
        sym = zwi_symbolizer_new();
        table_arena = zwi_arena_new();
        zw_raw *table_raw = table_arena != NULL ? zwi_arena_door(table_arena) : NULL;
        table = table_raw != NULL ? zwi_snapshot_new_on(G.nframe, table_raw) : NULL;
        tb = table != NULL && sym != NULL ? zwi_table_builder_new(table, G.tracer, sym) : NULL;
    }
    zwi_arena *arena = zwi_arena_new();
    zw_raw *raw = arena != NULL ? zwi_arena_door(arena) : NULL;
    if (sym == NULL || raw == NULL || tb == NULL) {
        note_write_error(ENOMEM); /* finish() writes the last words instead */
        zwi_symbolizer_free(sym);
        zw_snapshot_free(table); /* and table_raw, which a table that failed destroyed */
        if (raw != NULL)
            zw_raw_destroy(raw);
        zwi_arena_free(arena);
        zwi_arena_free(table_arena);
        return;
    }
    zwi_preload_report_unloaded(sym);
    /* the exit set, scanned for leaks unless the process dies of a signal: beside this thread */
    zwi_leak_check leaks = {.status = ZW_LEAKS_OFF};
    scan_job job;
    bool scanning = false;
    if (end == ZW_CAPTURE_END_SIGNAL)
        leaks.status = ZW_LEAKS_SKIPPED;
    else if (G.leak_check)
        scanning = scan_beside(&job, &leaks);
    /* the sets and sites into `body`, their tracebacks into `table`; then the file gets TABLE,
     * the body, TOTALS and END. The sites are converted first, in the order of their refs: the
     * table then lists their tracebacks in the sites' order (site i names traceback i, which
     * the packed SITE_LIST stores in next to nothing), tracebacks made one after the other
     * side by side (the packed TABLE stores the frames a traceback shares with the one before
     * once). */
    zwi_cbuf sites = {.raw = raw};
    put_sites(&sites, tb);
    zwi_cbuf body = {.raw = raw};
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
        bool kept = put_set(&body, tb, ZWI_SET_MARK, m->label, m->time_ns, m->bytes, m->recs, m->n,
                            m->kept);
        if (m->leak.status != ZW_LEAKS_UNKNOWN) /* its scan, right after it */
            put_leaks(&body, ZWI_SEC_MARK_LEAKS, &m->leak, kept);
    }
    /* the table, encoded while the scan goes on: complete once the sites are in, but for the
     * tracebacks of blocks no site counts (a fork child's from its parent), which the sets below
     * add: then it is encoded again */
    zwi_cbuf tab = {.raw = raw};
    size_t idx_tbs = 0, encoded_tbs;
    const uint32_t *shape = NULL;
    const uint32_t *idx = zwi_table_builder_frame_indices(tb, &idx_tbs, &shape);
    zwi_encode_table_packed_with(&tab, table, idx, shape, idx_tbs);
    encoded_tbs = idx_tbs;
    /* the exit set, with the scan's kinds; it is the peak set too if nothing larger was saved */
    if (scanning)
        pthread_join(job.thread, NULL);
    else if (end != ZW_CAPTURE_END_SIGNAL && G.leak_check)
        zwi_preload_leak_check(&leaks, &G.leak_thread);
    liveset exit_set = {0};
    bool exit_taken = take_exit_set(&exit_set, &leaks);
    uint64_t peak_bytes = (uint64_t)zwi_tracer_peak_hint(G.tracer);
    if ((G.peak.time_ns == 0 && G.peak.n == 0 && G.peak.bytes == 0) ||
        last.heap_bytes >= G.peak.bytes) { /* the peak set is the exit set: said, not repeated */
        zwi_cbuf pay = {.raw = raw};
        if (exit_taken)
            zwi_encode_table_set_as_exit(&pay, last.time_ns, last.heap_bytes);
        else
            zwi_encode_table_set(
                &pay, ZWI_SET_PEAK,
                &(zw_capture_set){"peak", last.time_ns, last.heap_bytes, NULL, NULL}, NULL);
        zwi_capture_put_record(&body, ZWI_SEC_SET, &pay);
        zwi_cbuf_release(&pay);
        if (G.peak.time_ns != 0 || G.peak.n != 0 || G.peak.bytes != 0)
            G.peak.time_ns = last.time_ns;
    } else if (G.peak.n == 0 && !G.steps_broken) {
        /* saved as a peak step: no PEAK_SET, the reader rebuilds it from the steps */
    } else {
        put_set(&body, tb, ZWI_SET_PEAK, "peak", G.peak.time_ns, G.peak.bytes, G.peak.recs,
                G.peak.n, true);
    }
    bool exit_kept = put_set(&body, tb, ZWI_SET_EXIT, "exit", last.time_ns, last.heap_bytes,
                             exit_set.recs, exit_set.n, exit_taken);
    put_leaks(&body, ZWI_SEC_LEAKS, &leaks, exit_kept);
    zwi_preload_leak_release(&leaks);
    if (exit_set.recs != NULL)
        munmap(exit_set.recs, exit_set.cap * sizeof(*exit_set.recs));
    zwi_cbuf_bytes(&body, sites.data, sites.len);
    if (sites.failed)
        body.failed = true;
    zwi_cbuf_release(&sites);
    /* one PACKED section of records, TABLE first, then the body: stored as it is when the
     * capture is then rewritten packed (compressed once, by pack_locked()), else compressed here,
     * the three parts streamed through zstd, not copied into one; then TOTALS, a section of its
     * own that a brief reader finds without the PACKED one, and END. The table's tracebacks'
     * frame indices, kept by the builder as it made them (mostly the sampler, ahead), spare the
     * encoding a read of every frame */
    zwi_cbuf table_head = {.raw = raw};
    idx = zwi_table_builder_frame_indices(tb, &idx_tbs, &shape);
    if (idx_tbs != encoded_tbs) {
        tab.len = 0;
        tab.failed = false;
        zwi_encode_table_packed_with(&tab, table, idx, shape, idx_tbs);
    }
    zwi_table_builder_free(tb);
    zwi_capture_put_record_head(&table_head, ZWI_SEC_TABLE, tab.len);
    zwi_snapshot_abandon(table); /* its blocks go with the arena */
    zwi_arena_free(table_arena);
    totals s = zwi_preload_sum_stats();
    uint64_t streamed = atomic_load(&G.file_len);
    size_t records = table_head.len + tab.len + body.len;
    bool failed = table_head.failed || tab.failed || body.failed;
    bool pack = !failed && packable(records + 3 * ZWI_SECTION_SIZE + 64) &&
                (records <= PACK_END_MAX || records <= 3 * streamed);
    zwi_cbuf out = {.raw = raw};
    const zwi_cbuf *parts[] = {&table_head, &tab, &body};
    zwi_container_put_section_parts(&out, ZWI_SEC_PACKED, ZWI_SECTION_REQUIRED, parts, 3,
                                    pack ? 0 : zwi_capture_end_level(records));
    zwi_cbuf_release(&table_head);
    zwi_cbuf_release(&body);
    zwi_cbuf_release(&tab);
    zwi_cbuf pay = {.raw = raw};
    zwi_encode_totals(&pay, &(zw_capture_totals){s.allocs, s.frees, s.temps, s.bytes, peak_bytes,
                                                 G.peak.time_ns, last.time_ns, end, code});
    zwi_capture_put(&out, ZWI_SEC_TOTALS, &pay);
    pay.len = 0;
    zwi_encode_end(&pay);
    zwi_capture_put(&out, ZWI_SEC_END, &pay);
    zwi_cbuf_release(&pay);
    write_locked(&out, true);
    if (!out.failed && pack)
        pack_locked(raw);
    zwi_cbuf_release(&out);
    zwi_symbolizer_free(sym);
    zw_raw_destroy(raw);
    zwi_arena_free(arena);
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
        zwi_leak_thread me = zwi_leakscan_this_thread(stack_lo);
        zwi_preload_leak_check(&m->leak, &me);
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
    zwi_encode_totals(&pay,
                      &(zw_capture_totals){s.allocs, s.frees, s.temps, s.bytes,
                                           peak_now ? last.heap_bytes : peak,
                                           peak_now ? last.time_ns : atomic_load(&G.peak_time_hint),
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
