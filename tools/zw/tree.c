/* tools/zw/tree.c - capture sets: the captures of one run, one file per process image (FILE,
 * FILE.1, FILE.2... as libzwpreload.so names them; docs/zw.md#process-trees), loaded together,
 * and the live sets chosen from them by name: peak, exit, a mark, or a time in seconds. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

/* The domain cli_load() keeps (enum cli_domain): set once per command by cli_parse(). */
static int chosen_domain = CLI_DOMAIN_HEAP;

void
cli_set_domain(int domain)
{
    chosen_domain = domain;
}

bool
cli_in_domain(unsigned domain)
{
    if (chosen_domain == CLI_DOMAIN_ALL)
        return true;
    return domain ==
           (chosen_domain == CLI_DOMAIN_MMAP ? ZW_CAPTURE_MMAP_DOMAIN : ZW_TRACE_DEFAULT_DOMAIN);
}

uint64_t
cli_sample_bytes(const zw_capture_sample *s)
{
    switch (chosen_domain) {
    case CLI_DOMAIN_MMAP:
        return s->mmap_bytes;
    case CLI_DOMAIN_ALL:
        return s->heap_bytes + s->mmap_bytes;
    default:
        return s->heap_bytes;
    }
}

const char *
cli_domain_words(void)
{
    switch (chosen_domain) {
    case CLI_DOMAIN_MMAP:
        return "the program's own mappings, in whole pages";
    case CLI_DOMAIN_ALL:
        return "requested sizes and the program's own mappings, in whole pages";
    default:
        return "requested sizes";
    }
}

/* `*snap` with the traces of the chosen domain only (replaced; freed by zw_capture_free). */
static int
keep_domain(zw_snapshot **snap)
{
    if (*snap == NULL || chosen_domain == CLI_DOMAIN_ALL)
        return 0;
    zw_error err;
    zw_filter f = ZW_DOMAIN_FILTER(
        true, chosen_domain == CLI_DOMAIN_MMAP ? ZW_CAPTURE_MMAP_DOMAIN : ZW_TRACE_DEFAULT_DOMAIN);
    zw_snapshot *kept = zw_snapshot_filter_traces(*snap, &f, 1, &err);
    if (kept == NULL)
        return cli_fail("%s", err.msg);
    zw_snapshot_free(*snap);
    *snap = kept;
    return 0;
}

/* --domain mmap: the peak set is the live set at the mmap domain's last peak step (none when the
 * capture has no such step: older captures, or no mapping at all). */
static int
mmap_peak_set(zw_capture *c)
{
    size_t last = c->nsteps;
    for (size_t i = 0; i < c->nsteps; i++)
        last = c->steps[i].mmap_peak ? i : last;
    zw_snapshot_free(c->peak.snap);
    c->peak.snap = NULL;
    if (last == c->nsteps)
        return 0;
    zw_error err;
    c->peak.snap = zw_capture_live_at(c, c->steps[last].time_ns, &err);
    if (c->peak.snap == NULL)
        return cli_fail("cannot rebuild the mmap domain's peak set: %s", err.msg);
    c->peak.time_ns = c->steps[last].time_ns;
    return 0;
}

/* Keeps the chosen domain's traces in every set, step and site of `c` (see cli_load). */
static int
choose_domain(zw_capture *c)
{
    if (chosen_domain == CLI_DOMAIN_ALL)
        return 0;
    if (chosen_domain == CLI_DOMAIN_MMAP && mmap_peak_set(c) != 0)
        return CLI_EXIT_FAILURE;
    /* the kinds of a scan name the heap's traces, which come first: still theirs in the heap's
     * set; the mmap domain's blocks have none */
    if (chosen_domain == CLI_DOMAIN_MMAP && c->leaks.status == ZW_LEAKS_SCANNED)
        c->leaks.status = ZW_LEAKS_UNKNOWN;
    for (size_t i = 0; i < c->nmarks; i++) {
        if (chosen_domain == CLI_DOMAIN_MMAP && c->marks[i].leaks != NULL)
            c->marks[i].leaks->status = ZW_LEAKS_UNKNOWN;
        if (keep_domain(&c->marks[i].snap) != 0)
            return CLI_EXIT_FAILURE;
    }
    if (keep_domain(&c->peak.snap) != 0 || keep_domain(&c->exit.snap) != 0)
        return CLI_EXIT_FAILURE;
    /* steps: the other domain's deltas go; sites: the other domain's count no allocation */
    size_t nsites = c->sites != NULL ? zw_snapshot_len(c->sites) : 0;
    size_t k = 0;
    for (size_t s = 0; s < c->nsteps; s++) {
        zw_capture_step *st = &c->steps[s];
        size_t first = k;
        for (size_t d = st->first; d < st->first + st->n; d++) {
            uint32_t site = c->deltas[d].site;
            if (site < nsites && cli_in_domain(zw_snapshot_trace(c->sites, site).domain))
                c->deltas[k++] = c->deltas[d];
        }
        st->first = first;
        st->n = k - first;
    }
    c->ndeltas = k;
    for (size_t i = 0; i < nsites && c->site_counts != NULL; i++) {
        if (!cli_in_domain(zw_snapshot_trace(c->sites, i).domain)) {
            c->site_counts[i] = 0;
            if (c->site_temporary != NULL)
                c->site_temporary[i] = 0;
        }
    }
    return 0;
}

zw_capture *
cli_load_quiet(const char *path)
{
    zw_capture *c = zw_capture_load(path, NULL);
    if (c != NULL && choose_domain(c) != 0) {
        zw_capture_free(c);
        return NULL;
    }
    return c;
}

/* Where the reading of a capture set is, for the status line. */
typedef struct reading {
    const char *path; /* the capture being read */
    size_t i, n;      /* it is the i-th (from 0) of n */
    uint64_t before;  /* bytes of the captures read before it */
    uint64_t total;   /* bytes of the whole set; 0: unknown */
} reading;

static void
show_reading(void *arg, uint64_t done, uint64_t total)
{
    const reading *r = arg;
    char a[32], b[32], of[64] = "";
    if (r->n > 1)
        snprintf(of, sizeof(of), " (capture %zu of %zu)", r->i + 1, r->n);
    uint64_t all = r->total > r->before + total ? r->total : r->before + total;
    cli_progress_show("reading %s%s: %s of %s", r->path, of,
                      cli_size(a, (long long)(r->before + done), false),
                      cli_size(b, (long long)all, false));
}

void
cli_warn_damaged(const char *path, const zw_capture *c)
{
    if (c->damaged > 0)
        fprintf(stderr,
                "zw: warning: capture '%s' is damaged: %zu section%s skipped, what %s held is "
                "missing (%s)\n",
                path, c->damaged, c->damaged == 1 ? "" : "s", c->damaged == 1 ? "it" : "they",
                c->damage != NULL ? c->damage : "no details");
}

/* cli_load() telling the status line where it is (`r` NULL: the capture alone). */
static zw_capture *
load_showing(const char *path, reading *r)
{
    reading alone = {.path = path, .n = 1};
    zw_error err;
    zw_capture *c = zw_capture_load_progress(path, show_reading, r != NULL ? r : &alone, &err);
    if (c == NULL || c->damaged > 0 || c->peak_lost != NULL)
        cli_progress_end(); /* the message on a line of its own */
    if (c == NULL) {
        cli_fail("%s", err.msg);
        return NULL;
    }
    if (choose_domain(c) != 0) {
        zw_capture_free(c);
        return NULL;
    }
    cli_warn_damaged(path, c);
    if (c->peak_lost != NULL)
        fprintf(stderr, "zw: warning: capture '%s': the peak set was not rebuilt: %s\n", path,
                c->peak_lost);
    return c;
}

zw_capture *
cli_load(const char *path)
{
    zw_capture *c = load_showing(path, NULL);
    cli_progress_end();
    return c;
}

/* The captures of the set at `path` (FILE, FILE.1 ... without a gap; FILE alone if `only`) and
 * their bytes, for the status line. */
static void
count_set(const char *path, bool only, reading *r)
{
    char p[4096];
    struct stat st;
    for (int i = 0; i < 1000; i++) {
        if (i == 0)
            snprintf(p, sizeof(p), "%s", path);
        else if (only || (size_t)snprintf(p, sizeof(p), "%s.%d", path, i) >= sizeof(p))
            break;
        if (stat(p, &st) != 0)
            break;
        r->n++;
        r->total += (uint64_t)st.st_size;
    }
}

/* When the capture ends, in ns since its start: its duration, or the last time it recorded,
 * rounded up to the microsecond (as printed, so that the time a message gives is in range). */
static uint64_t
capture_end_ns(const zw_capture *c)
{
    uint64_t end = c->totals.duration_ns;
    for (size_t i = 0; i < c->nsamples; i++)
        end = c->samples[i].time_ns > end ? c->samples[i].time_ns : end;
    for (size_t i = 0; i < c->nsteps; i++)
        end = c->steps[i].time_ns > end ? c->steps[i].time_ns : end;
    return end > UINT64_MAX - 1000 ? end : (end + 999) / 1000 * 1000;
}

void
cli_tree_free(cli_tree *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n; i++) {
        zw_capture_free(t->caps[i]);
        free(t->paths[i]);
    }
    free(t->caps);
    free(t->paths);
    free(t);
}

static int
tree_add(cli_tree *t, char *path, zw_capture *c)
{
    zw_capture **caps = realloc(t->caps, (t->n + 1) * sizeof(*caps));
    if (caps != NULL)
        t->caps = caps;
    char **paths = realloc(t->paths, (t->n + 1) * sizeof(*paths));
    if (paths != NULL)
        t->paths = paths;
    if (caps == NULL || paths == NULL)
        return -1;
    t->caps[t->n] = c;
    t->paths[t->n] = path;
    t->n++;
    return 0;
}

cli_tree *
cli_load_tree(const char *path, long pid, bool only)
{
    cli_tree *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        cli_fail("cannot load '%s': %s", path, strerror(ENOMEM));
        return NULL;
    }
    t->base = path;
    reading r = {0};
    count_set(path, only, &r);
    for (int i = 0; i < 1000; i++) {
        char *p = NULL;
        if (i == 0 ? (p = strdup(path)) == NULL : asprintf(&p, "%s.%d", path, i) < 0) {
            cli_fail("cannot load '%s': %s", path, strerror(ENOMEM));
            goto out_fail;
        }
        if (i > 0 && (only || access(p, F_OK) != 0)) {
            free(p);
            break; /* the siblings are numbered without gaps */
        }
        r.path = p;
        r.i = (size_t)i;
        r.n = r.n > (size_t)i ? r.n : (size_t)i + 1;
        zw_capture *c = load_showing(p, &r);
        if (c == NULL) {
            free(p);
            goto out_fail;
        }
        struct stat st;
        r.before += stat(p, &st) == 0 ? (uint64_t)st.st_size : 0;
        if (pid > 0 && c->pid != (uint32_t)pid) {
            zw_capture_free(c);
            free(p);
            continue;
        }
        if (tree_add(t, p, c) != 0) {
            zw_capture_free(c);
            free(p);
            cli_fail("cannot load '%s': %s", path, strerror(ENOMEM));
            goto out_fail;
        }
    }
    cli_progress_end();
    if (t->n == 0) {
        cli_fail("no capture of process %ld in the capture set '%s' ('zw stat %s' lists them)", pid,
                 path, path);
        goto out_fail;
    }
    return t;
out_fail:
    cli_progress_end();
    cli_tree_free(t);
    return NULL;
}

uint64_t
cli_tree_mmap_peak(const cli_tree *t)
{
    uint64_t peak = 0;
    for (size_t i = 0; i < t->n; i++) {
        const zw_capture *c = t->caps[i];
        peak = c->has_live && c->live.mmap_peak > peak ? c->live.mmap_peak : peak;
        for (size_t k = 0; k < c->nsamples; k++)
            peak = c->samples[k].mmap_peak > peak ? c->samples[k].mmap_peak : peak;
    }
    return peak;
}

double
cli_tree_offset(const cli_tree *t, size_t i)
{
    return ((double)t->caps[i]->start_realtime_ns - (double)t->caps[0]->start_realtime_ns) / 1e9;
}

/* Why one capture has no set of that name. */
enum pick_result { PICK_OK, PICK_NONE, PICK_NOT_KEPT, PICK_AFTER_END, PICK_FAILED };

/* The set of `c` named `which` (`t` seconds after the capture's own start when timed). */
static enum pick_result
pick_one(const zw_capture *c, const char *which, bool timed, double t, zw_capture_set *scratch,
         const zw_capture_set **out, zw_error *err)
{
    *out = NULL;
    *scratch = (zw_capture_set){0};
    if (!timed && (strcmp(which, "peak") == 0 || strcmp(which, "exit") == 0)) {
        *out = which[0] == 'p' ? &c->peak : &c->exit;
        return (*out)->snap != NULL ? PICK_OK : PICK_NONE;
    }
    if (!timed) {
        for (size_t i = c->nmarks; i-- > 0;) {
            if (strcmp(c->marks[i].label, which) == 0) {
                *out = &c->marks[i];
                return c->marks[i].snap != NULL ? PICK_OK : PICK_NOT_KEPT;
            }
        }
        return PICK_NONE;
    }
    if (t < 0)
        return PICK_NONE; /* before this process started */
    uint64_t ns = (uint64_t)(t * 1e9);
    /* past the end by more than the sampling resolution: the set at its end is not the set at
     * t (within it, a time rounded as printed still picks the end) */
    uint64_t end = capture_end_ns(c);
    if (end > 0 && ns > end + (uint64_t)c->interval_ms * 1000000)
        return PICK_AFTER_END;
    if (c->nsteps > 0) {
        if ((scratch->snap = zw_capture_live_at(c, ns, err)) == NULL)
            return PICK_FAILED;
        scratch->label = "live";
        for (size_t i = 0; i < c->nsteps && c->steps[i].time_ns <= ns; i++)
            scratch->time_ns = c->steps[i].time_ns;
        size_t bytes, blocks;
        cli_snapshot_totals(scratch->snap, &bytes, &blocks);
        scratch->heap_bytes = bytes;
        *out = scratch;
        return PICK_OK;
    }
    /* a capture without steps: the last saved set taken at or before t */
    const zw_capture_set *cands[] = {&c->peak, &c->exit};
    for (size_t i = 0; i < 2 + c->nmarks; i++) {
        const zw_capture_set *s = i < 2 ? cands[i] : &c->marks[i - 2];
        if (s->snap != NULL && s->time_ns <= ns && (*out == NULL || s->time_ns > (*out)->time_ns))
            *out = s;
    }
    return *out != NULL ? PICK_OK : PICK_NONE;
}

void
cli_picked_release(cli_picked *p)
{
    zw_snapshot_free(p->own);
    *p = (cli_picked){0};
}

int
cli_tree_pick(const cli_tree *t, const char *which, cli_picked *out)
{
    *out = (cli_picked){0};
    bool named = strcmp(which, "peak") == 0 || strcmp(which, "exit") == 0;
    for (size_t i = 0; i < t->n && !named; i++) {
        for (size_t k = 0; k < t->caps[i]->nmarks && !named; k++)
            named = strcmp(t->caps[i]->marks[k].label, which) == 0;
    }
    double secs = 0;
    if (!named) {
        char *end;
        secs = strtod(which, &end);
        if (end == which || *end != '\0' || !(secs >= 0) || secs > 1e9)
            return cli_usage(NULL,
                             "'%s' is neither peak, exit, a mark of '%s' nor a time in seconds",
                             which, t->base);
    }
    const zw_snapshot **snaps = calloc(t->n, sizeof(*snaps));
    zw_capture_set *scratch = calloc(t->n, sizeof(*scratch));
    int rc = CLI_EXIT_FAILURE;
    if (snaps == NULL || scratch == NULL) {
        cli_fail("cannot choose a live set: %s", strerror(ENOMEM));
        goto out_free;
    }
    size_t n = 0;
    bool after_end = false;
    for (size_t i = 0; i < t->n; i++) {
        const zw_capture_set *set;
        zw_error err = {{0}};
        enum pick_result r = pick_one(t->caps[i], which, !named, secs - cli_tree_offset(t, i),
                                      &scratch[i], &set, &err);
        if (r == PICK_FAILED) {
            cli_fail("cannot rebuild the live set of '%s': %s", t->paths[i], err.msg);
            goto out_free;
        }
        after_end |= r == PICK_AFTER_END;
        if (r == PICK_NOT_KEPT && t->n == 1) {
            cli_fail("mark '%s' of '%s' kept no live set (only the first 256 marks of a process "
                     "do)",
                     which, t->paths[i]);
            goto out_free;
        }
        if (r != PICK_OK)
            continue;
        if (n == 0) {
            out->label = set->label;
            out->time_s = (double)set->time_ns / 1e9 + cli_tree_offset(t, i);
        }
        snaps[n++] = set->snap;
    }
    if (n == 0) {
        const zw_capture *c = t->caps[0];
        if (t->n > 1)
            cli_fail("no process of the capture set '%s' has a %s set", t->base, which);
        else if (named && !c->complete)
            cli_fail("capture '%s' has no %s set" CLI_CUT_SHORT, t->paths[0], which);
        else if (named)
            cli_fail("capture '%s' has no %s set", t->paths[0], which);
        else if (after_end)
            cli_fail("capture '%s' ends at %.6f s: there is no live set at %g s", t->paths[0],
                     (double)capture_end_ns(c) / 1e9, secs);
        else
            cli_fail("capture '%s' has no live set taken at or before %g s", t->paths[0], secs);
        goto out_free;
    }
    out->nprocs = n;
    if (n == 1 && scratch[0].snap == NULL) {
        out->snap = snaps[0]; /* borrowed from the capture */
    } else if (n == 1) {
        out->snap = out->own = scratch[0].snap;
        scratch[0].snap = NULL;
    } else {
        zw_error err;
        out->snap = out->own = zw_snapshot_merge(snaps, n, &err);
        if (out->own == NULL) {
            cli_fail("%s", err.msg);
            goto out_free;
        }
    }
    rc = 0;
out_free:
    for (size_t i = 0; scratch != NULL && i < t->n; i++)
        zw_snapshot_free(scratch[i].snap);
    free(scratch);
    free(snaps);
    return rc;
}
