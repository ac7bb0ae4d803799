/* tools/zw/cmd_export.c - zw export: a capture as a file other tools read: pprof's profile.proto
 * (cmd_export_pprof.c), folded stacks for flame graphs (cmd_export_folded.c) and valgrind
 * massif's massif.out (cmd_export_massif.c). The export is built whole in memory, then written
 * to a temporary file beside OUT and renamed over it: a failed export leaves no file that looks
 * whole. This file holds the options, the buffer and map the writers share, and the writing.
 * See docs/export.md. */
#include "cmd_export.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zw.h"

static const char help[] =
    "usage: zw export --format pprof|folded|massif [options] FILE\n"
    "\n"
    "Capture FILE as a file other tools read:\n"
    "  pprof    gzip-compressed profile.proto with alloc_objects, alloc_space (every\n"
    "           allocation), inuse_objects, inuse_space (the --at set): go tool pprof, pprof\n"
    "  folded   'frame;frame;frame value' lines, outermost frame first: flamegraph.pl,\n"
    "           speedscope, inferno\n"
    "  massif   valgrind massif's massif.out: the time series, with the heap tree of every\n"
    "           saved set (the peak one as heap_tree=peak): ms_print, massif-visualizer\n"
    "\n"
    "options:\n"
    "  -o, --output OUT   write to OUT (default: standard output; pprof needs -o or a pipe)\n"
    "  --at peak|exit|MARK|SECONDS   the live set for bytes and inuse_* (default peak;\n"
    "                     SECONDS: the live set at that time)\n"
    "  --metric bytes|allocations|leaked|temporary   what a folded line counts (default\n"
    "                     bytes): bytes live in the --at set, allocations made at each site,\n"
    "                     bytes leaked (the exit set), temporary allocations made at each\n"
    "                     site (folded only); for pprof, the default sample type\n"
    "  --pid PID          the process of a capture set to export (one process per export)\n"
    "  --only             FILE alone, not FILE.1, FILE.2... of the same run\n"
    "  -h, --help         this text\n"
    "\n"
    "massif holds every set and only bytes: it takes neither --at nor --metric.\n";

/* ---- the buffer ---- */

static bool
xbuf_reserve(xbuf *b, size_t n)
{
    if (b->failed)
        return false;
    if (b->cap - b->len >= n)
        return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < n) {
        if (cap > SIZE_MAX / 2) {
            b->failed = true;
            return false;
        }
        cap *= 2;
    }
    unsigned char *p = realloc(b->data, cap);
    if (p == NULL) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void
xbuf_add(xbuf *b, const void *p, size_t n)
{
    if (n == 0 || !xbuf_reserve(b, n))
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void
xbuf_puts(xbuf *b, const char *s)
{
    xbuf_add(b, s, strlen(s));
}

void
xbuf_printf(xbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if (!xbuf_reserve(b, (size_t)n + 1))
        return;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void
xbuf_release(xbuf *b)
{
    free(b->data);
    *b = (xbuf){0};
}

/* ---- the map ---- */

/* FNV-1a, 64 bits. */
static uint64_t
hash_bytes(const void *key, size_t len)
{
    const unsigned char *p = key;
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3u;
    return h;
}

/* Doubles the slot table and places every entry again. */
static bool
smap_grow(smap *m)
{
    size_t nslots = m->nslots ? m->nslots * 2 : 64;
    uint32_t *slots = calloc(nslots, sizeof(*slots));
    if (slots == NULL)
        return false;
    for (size_t e = 0; e < m->nentries; e++) {
        size_t i = hash_bytes(m->entries[e].key, m->entries[e].len) & (nslots - 1);
        while (slots[i] != 0)
            i = (i + 1) & (nslots - 1);
        slots[i] = (uint32_t)(e + 1);
    }
    free(m->slots);
    m->slots = slots;
    m->nslots = nslots;
    return true;
}

long
smap_intern(smap *m, const void *key, size_t len, uint64_t value, bool *added)
{
    *added = false;
    if (m->nentries >= UINT32_MAX - 1)
        return -1;
    if ((m->nentries + 1) * 2 > m->nslots && !smap_grow(m))
        return -1;
    size_t i = hash_bytes(key, len) & (m->nslots - 1);
    for (; m->slots[i] != 0; i = (i + 1) & (m->nslots - 1)) {
        const smap_entry *e = &m->entries[m->slots[i] - 1];
        if (e->len == len && memcmp(e->key, key, len) == 0)
            return (long)(m->slots[i] - 1);
    }
    if (m->nentries == m->entries_cap) {
        size_t cap = m->entries_cap ? m->entries_cap * 2 : 64;
        smap_entry *entries = realloc(m->entries, cap * sizeof(*entries));
        if (entries == NULL)
            return -1;
        m->entries = entries;
        m->entries_cap = cap;
    }
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return -1;
    memcpy(copy, key, len);
    copy[len] = '\0';
    m->entries[m->nentries] = (smap_entry){copy, len, value};
    m->slots[i] = (uint32_t)(m->nentries + 1);
    *added = true;
    return (long)m->nentries++;
}

void
smap_release(smap *m)
{
    for (size_t e = 0; e < m->nentries; e++)
        free(m->entries[e].key);
    free(m->entries);
    free(m->slots);
    *m = (smap){0};
}

/* ---- frames ---- */

const char *
export_frame_name(const zw_frame *f, char *buf, size_t len)
{
    if (f->function != NULL)
        return f->function;
    zw_frame_str(f, buf, len);
    return buf;
}

size_t
export_pc_group(const zw_traceback *tb, size_t i)
{
    /* `inlined` means "inlined into the next older frame": the group goes down to the first
     * frame that is not */
    while (i > 0 && zw_traceback_frame(tb, i)->inlined)
        i--;
    return i;
}

/* ---- writing ---- */

/* mkstemp() creates the file for its owner only; give it the mode a new file gets. */
static int
fchmod_default(const char *path)
{
    mode_t mask = umask(0);
    umask(mask);
    return chmod(path, 0666 & ~mask);
}

/* Writes `out` to `path` through a temporary file in the same directory, renamed over `path`
 * once whole; the temporary file is removed on failure. */
static int
write_file(const xbuf *out, const char *path)
{
    size_t n = strlen(path);
    char *tmp = malloc(n + sizeof(".tmp.XXXXXX"));
    if (tmp == NULL)
        return zw_fail("out of memory");
    memcpy(tmp, path, n);
    memcpy(tmp + n, ".tmp.XXXXXX", sizeof(".tmp.XXXXXX"));
    int rc = ZW_EXIT_FAILURE;
    int fd = mkstemp(tmp);
    if (fd < 0) {
        zw_fail("cannot create '%s': %s", path, strerror(errno));
        goto out_free;
    }
    FILE *f = fdopen(fd, "wb");
    if (f == NULL) {
        zw_fail("cannot write '%s': %s", tmp, strerror(errno));
        close(fd);
        goto out_unlink;
    }
    bool wrote = out->len == 0 || fwrite(out->data, 1, out->len, f) == out->len;
    int werr = errno;
    if (fclose(f) != 0 && wrote) {
        wrote = false;
        werr = errno;
    }
    if (!wrote) {
        zw_fail("cannot write '%s': %s", tmp, strerror(werr));
        goto out_unlink;
    }
    if (fchmod_default(tmp) != 0 || rename(tmp, path) != 0) {
        zw_fail("cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
        goto out_unlink;
    }
    rc = 0;
    goto out_free;
out_unlink:
    unlink(tmp);
out_free:
    free(tmp);
    return rc;
}

static int
write_stdout(const xbuf *out)
{
    if ((out->len > 0 && fwrite(out->data, 1, out->len, stdout) != out->len) || fflush(stdout) != 0)
        return zw_fail("cannot write the output: %s", strerror(errno));
    return 0;
}

/* ---- options ---- */

enum export_format { FORMAT_NONE, FORMAT_PPROF, FORMAT_FOLDED, FORMAT_MASSIF };

typedef struct export_opts {
    const char *path;   /* the capture */
    const char *out;    /* -o; NULL or "-": standard output */
    const char *at;     /* --at; NULL when not given */
    const char *metric; /* --metric; NULL when not given */
    enum export_format format;
    unsigned long pid; /* --pid; 0: not given */
    bool only;         /* --only */
} export_opts;

/* Parses argv into *o: 0, or the exit status of a usage error already printed. */
static int
parse_options(int argc, char **argv, export_opts *o, bool *help_shown)
{
    zw_args a = {.cmd = "export", .argc = argc, .argv = argv, .i = 1};
    *help_shown = false;
    while (a.i < argc && !a.bad) {
        const char *arg = argv[a.i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            fputs(help, stdout);
            *help_shown = true;
            return 0;
        }
        if (zw_opt(&a, "--format", true)) {
            if (a.bad)
                break;
            if (strcmp(a.value, "pprof") == 0)
                o->format = FORMAT_PPROF;
            else if (strcmp(a.value, "folded") == 0)
                o->format = FORMAT_FOLDED;
            else if (strcmp(a.value, "massif") == 0)
                o->format = FORMAT_MASSIF;
            else
                return zw_usage("export", "unknown format '%s' (pprof, folded or massif)", a.value);
        } else if (zw_opt(&a, "--output", true) || zw_opt(&a, "-o", true)) {
            o->out = a.value;
        } else if (zw_opt(&a, "--at", true)) {
            o->at = a.value;
        } else if (zw_opt(&a, "--metric", true)) {
            o->metric = a.value;
        } else if (zw_opt(&a, "--pid", true)) {
            if (!a.bad)
                zw_opt_uint(&a, 1, 0x7fffffff, &o->pid);
        } else if (zw_opt(&a, "--only", false)) {
            o->only = true;
        } else if (arg[0] == '-' && arg[1] != '\0') {
            return zw_usage("export", "unknown option '%s'", arg);
        } else if (o->path != NULL) {
            return zw_usage("export", "one capture at a time ('%s' is one too many)", arg);
        } else {
            o->path = argv[a.i++];
        }
    }
    if (a.bad)
        return ZW_EXIT_USAGE;
    if (o->path == NULL)
        return zw_usage("export", "no capture file given");
    if (o->format == FORMAT_NONE)
        return zw_usage("export", "no --format given (pprof, folded or massif)");
    if (o->out != NULL && o->out[0] == '\0')
        return zw_usage("export", "-o needs a file name ('-' is standard output)");
    return 0;
}

/* The metric of --metric, checked against --at and the format: 0 or a usage error's status. */
static int
check_metric(const export_opts *o, enum export_metric *metric)
{
    const char *m = o->metric != NULL ? o->metric : "bytes";
    if (strcmp(m, "bytes") == 0)
        *metric = METRIC_BYTES;
    else if (strcmp(m, "allocations") == 0)
        *metric = METRIC_ALLOCATIONS;
    else if (strcmp(m, "leaked") == 0)
        *metric = METRIC_LEAKED;
    else if (strcmp(m, "temporary") == 0)
        *metric = METRIC_TEMPORARY;
    else
        return zw_usage("export", "unknown metric '%s' (bytes, allocations, leaked or temporary)",
                        m);
    if (o->format == FORMAT_MASSIF && (o->at != NULL || o->metric != NULL))
        return zw_usage("export", "massif holds the whole time series and every saved set in "
                                  "bytes: it takes neither --at nor --metric");
    if (*metric == METRIC_TEMPORARY && o->format != FORMAT_FOLDED)
        return zw_usage("export", "--metric temporary is for folded stacks only");
    if (*metric == METRIC_TEMPORARY && o->at != NULL)
        return zw_usage("export", "--metric temporary counts every temporary allocation made, "
                                  "not a live set: it takes no --at");
    if (*metric == METRIC_ALLOCATIONS && o->at != NULL && o->format != FORMAT_PPROF)
        return zw_usage("export", "--metric allocations counts every allocation made, not a "
                                  "live set: it takes no --at");
    if (*metric == METRIC_LEAKED && o->at != NULL && strcmp(o->at, "exit") != 0)
        return zw_usage("export", "--metric leaked is the exit set: it takes no --at '%s'", o->at);
    return 0;
}

int
cmd_export(int argc, char **argv)
{
    export_opts o = {0};
    bool help_shown;
    int rc = parse_options(argc, argv, &o, &help_shown);
    if (rc != 0 || help_shown)
        return rc;
    export_ctx x = {.path = o.path};
    int mrc = check_metric(&o, &x.metric);
    if (mrc != 0)
        return mrc;
    bool to_stdout = o.out == NULL || strcmp(o.out, "-") == 0;
    if (o.format == FORMAT_PPROF && to_stdout && isatty(STDOUT_FILENO))
        return zw_usage("export", "pprof's output is binary: give -o FILE or redirect it");
    zw_tree *t = zw_load_tree(o.path, (long)o.pid, o.only);
    if (t == NULL)
        return ZW_EXIT_FAILURE;
    xbuf out = {0};
    zw_picked picked = {0};
    zw_capture_set set = {0};
    if (t->n > 1) {
        rc = zw_usage("export", "'%s' is a capture set of %zu process images, and an export is "
                                "of one: choose it with --pid PID or --only ('zw stat %s' lists "
                                "them)",
                      o.path, t->n, o.path);
        goto out_free;
    }
    const zw_capture *c = x.c = t->caps[0];
    x.path = t->paths[0];
    rc = ZW_EXIT_FAILURE;
    if (x.metric == METRIC_TEMPORARY && c->site_temporary == NULL) {
        zw_fail("capture '%s' has no per-site temporary counts (it was written by an older zw, "
                "or cut short), only the total: %llu temporary allocations",
                x.path, (unsigned long long)c->totals.temporary);
        goto out_free;
    }
    if (o.format != FORMAT_MASSIF && x.metric != METRIC_TEMPORARY &&
        (x.metric != METRIC_ALLOCATIONS || o.format == FORMAT_PPROF)) {
        const char *at = x.metric == METRIC_LEAKED ? "exit" : o.at != NULL ? o.at : "peak";
        if ((rc = zw_tree_pick(t, at, &picked)) != 0)
            goto out_free;
        rc = ZW_EXIT_FAILURE;
        set = (zw_capture_set){picked.label, (uint64_t)(picked.time_s * 1e9 + 0.5), 0,
                               (zw_snapshot *)picked.snap};
        x.set = &set;
    }
    switch (o.format) {
    case FORMAT_PPROF:
        rc = export_pprof(&x, &out);
        break;
    case FORMAT_FOLDED:
        rc = export_folded(&x, &out);
        break;
    case FORMAT_MASSIF:
        rc = export_massif(&x, &out);
        break;
    case FORMAT_NONE:
        break;
    }
    if (rc == 0 && out.failed)
        rc = zw_fail("out of memory while exporting '%s'", o.path);
    if (rc == 0)
        rc = to_stdout ? write_stdout(&out) : write_file(&out, o.out);
out_free:
    xbuf_release(&out);
    zw_picked_release(&picked);
    zw_tree_free(t);
    return rc;
}
