/* tools/zw/leaks.c - the leak kinds of a capture set as the commands show them (zw leaks, zw stat,
 * zw run --leak-check): suppressions, the totals of each kind, the blocks of some kinds.
 *
 * Suppressions are LeakSanitizer's file format: one `leak:PATTERN` a line, `#` comments; a
 * pattern matches a frame's function, file or module (`*` any run of characters, `^` and `$`
 * anchor it, otherwise it may match anywhere), and a block is suppressed if any frame of its
 * traceback matches. The built-in list names the C library's deliberate one-time allocations
 * (stdio buffers, locale data, dlerror's state, the dynamic loader's tables: what valgrind frees
 * by calling __libc_freeres before its leak check); a built-in pattern matches only the three
 * most recent frames, and only while they lie in the C library or the dynamic loader, so a
 * program's own block allocated through them (from a qsort callback, a dlopen'ed constructor)
 * is never hidden by it. Suppressed blocks are counted apart and always reported as a total.
 * See docs/zw.md#leak-kinds. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* The C library's one-time allocations: function names (substrings) of the allocating frames. */
static const char *const builtin[] = {
    "_IO_file_doallocate", /* stdio buffers */
    "_IO_doallocbuf",
    "setlocale", /* locale data */
    "_nl_",
    "new_composite_name",
    "_dlerror_run", /* dlerror's state and messages */
    "_dl_exception_create",
    "_dlfo_", /* the loader's _dl_find_object tables */
    "_dl_map_object_deps",
    "tzset", /* time zone data */
    "__tzfile_read",
    "__nss_", /* NSS modules and databases */
    "nss_",
    "__gconv_", /* iconv modules loaded by stdio and the multibyte functions */
    "__wcsmbs_load_conv",
    "set_binding_values", /* gettext's domain bindings */
    "textdomain",
    NULL,
};

#define BUILTIN_DEPTH 3 /* frames a built-in pattern is tried on: malloc's inline wrapper, the
                         * allocating function, its caller */

/* ---- patterns ---- */

/* LeakSanitizer's TemplateMatch: `*` matches any run, `^` and `$` anchor, else a substring. */
static bool
match_here(const char *p, const char *s)
{
    for (;;) {
        if (*p == '\0')
            return true; /* the end of the pattern: the rest of `s` is free */
        if (*p == '$' && p[1] == '\0')
            return *s == '\0';
        if (*p == '*') {
            while (*p == '*')
                p++;
            for (;; s++) {
                if (match_here(p, s))
                    return true;
                if (*s == '\0')
                    return false;
            }
        }
        if (*s == '\0' || *p != *s)
            return false;
        p++;
        s++;
    }
}

static bool
template_match(const char *pattern, const char *s)
{
    if (s == NULL || *pattern == '\0')
        return false;
    if (*pattern == '^')
        return match_here(pattern + 1, s);
    for (; *s != '\0'; s++)
        if (match_here(pattern, s))
            return true;
    return false;
}

static bool
frame_matches(const zw_frame *f, const char *pattern)
{
    return template_match(pattern, f->function) || template_match(pattern, f->filename) ||
           template_match(pattern, f->module);
}

/* Whether `module` is the C library or the dynamic loader. */
static bool
libc_module(const char *module)
{
    if (module == NULL)
        return false;
    const char *base = strrchr(module, '/');
    base = base != NULL ? base + 1 : module;
    return strncmp(base, "libc.so", 7) == 0 || strncmp(base, "libc-", 5) == 0 ||
           strncmp(base, "ld-linux", 8) == 0 || strncmp(base, "ld-", 3) == 0;
}

/* ---- suppression files ---- */

int
cli_suppressions_read(const char *path, cli_suppressions *out)
{
    *out = (cli_suppressions){0};
    if (path == NULL)
        return 0;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return cli_fail("cannot open suppressions '%s': %s", path, strerror(errno));
    char line[4096];
    unsigned lineno = 0;
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        size_t len = strlen(line);
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' ||
                           line[len - 1] == ' ' || line[len - 1] == '\t'))
            line[--len] = '\0';
        char *s = line + strspn(line, " \t");
        if (*s == '\0' || *s == '#')
            continue;
        if (strncmp(s, "leak:", 5) != 0 || s[5] == '\0') {
            rc = cli_fail("suppressions '%s', line %u: not 'leak:PATTERN': '%s'", path, lineno, s);
            break;
        }
        char **grown = realloc(out->patterns, (out->n + 1) * sizeof(char *));
        char *copy = strdup(s + 5);
        if (grown == NULL || copy == NULL) {
            free(copy);
            if (grown != NULL)
                out->patterns = grown;
            rc = cli_fail("out of memory");
            break;
        }
        out->patterns = grown;
        out->patterns[out->n++] = copy;
    }
    fclose(f);
    if (rc != 0)
        cli_suppressions_release(out);
    return rc;
}

void
cli_suppressions_release(cli_suppressions *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->patterns[i]);
    free(s->patterns);
    *s = (cli_suppressions){0};
}

/* Whether the block allocated at `tb` is suppressed (a file's pattern, or a built-in one). */
static bool
suppressed(const cli_suppressions *s, const zw_traceback *tb)
{
    size_t nf = zw_traceback_len(tb);
    for (size_t k = 0; k < nf; k++) {
        const zw_frame *f = zw_traceback_frame(tb, k);
        for (size_t i = 0; i < s->n; i++)
            if (frame_matches(f, s->patterns[i]))
                return true;
    }
    /* built-ins: the BUILTIN_DEPTH most recent frames (the last indices), while they lie in the
     * C library: the allocating function, not a caller far up (dlopen runs all of its work under
     * _dlerror_run, and the blocks of the libraries it loads are the program's) */
    for (size_t k = nf; k-- > 0 && nf - k <= BUILTIN_DEPTH;) {
        const zw_frame *f = zw_traceback_frame(tb, k);
        if (!libc_module(f->module))
            break;
        for (size_t i = 0; builtin[i] != NULL; i++)
            if (template_match(builtin[i], f->function))
                return true;
    }
    return false;
}

/* ---- a capture set's leaks ---- */

/* A traceback's verdict, cached: blocks share tracebacks. Open addressing on the pointer. */
typedef struct verdicts {
    const zw_traceback **keys;
    bool *values;
    size_t mask;
    size_t n;
} verdicts;

static int
verdict(verdicts *v, const cli_suppressions *s, const zw_traceback *tb, bool *out)
{
    if (v->n * 2 >= v->mask) {
        size_t cap = v->mask ? 2 * (v->mask + 1) : 1024;
        verdicts g = {calloc(cap, sizeof(*g.keys)), calloc(cap, sizeof(bool)), cap - 1, 0};
        if (g.keys == NULL || g.values == NULL) {
            free(g.keys);
            free(g.values);
            return -1;
        }
        for (size_t i = 0; v->keys != NULL && i <= v->mask; i++) {
            if (v->keys[i] == NULL)
                continue;
            size_t h = ((uintptr_t)v->keys[i] >> 4) & g.mask;
            while (g.keys[h] != NULL)
                h = (h + 1) & g.mask;
            g.keys[h] = v->keys[i];
            g.values[h] = v->values[i];
            g.n++;
        }
        free(v->keys);
        free(v->values);
        *v = g;
    }
    size_t h = ((uintptr_t)tb >> 4) & v->mask;
    while (v->keys[h] != NULL && v->keys[h] != tb)
        h = (h + 1) & v->mask;
    if (v->keys[h] == NULL) {
        v->keys[h] = tb;
        v->values[h] = suppressed(s, tb);
        v->n++;
    }
    *out = v->values[h];
    return 0;
}

/* The set of `c` at `at` (NULL or "exit": the exit set; else the last mark of that label) and
 * its scan; a mark without one (or no such mark) has its kinds unknown. */
static const zw_capture_set *
set_at(const zw_capture *c, const char *at, const zw_capture_leaks **leaks)
{
    static const zw_capture_leaks unknown = {.status = ZW_LEAKS_UNKNOWN};
    if (at == NULL || strcmp(at, "exit") == 0) {
        *leaks = &c->leaks;
        return &c->exit;
    }
    *leaks = &unknown;
    for (size_t i = c->nmarks; i-- > 0;) {
        if (strcmp(c->marks[i].label, at) == 0) {
            if (c->marks[i].leaks != NULL && c->marks[i].snap != NULL)
                *leaks = c->marks[i].leaks;
            return &c->marks[i];
        }
    }
    return NULL;
}

/* The tags of set `set` (scanned: `l`): kind, plus ZW_LEAK_KINDS if suppressed; counts summed. */
static int
tag_capture(const zw_capture_set *set, const zw_capture_leaks *l, const cli_suppressions *s,
            uint8_t *tags, cli_leaks *out)
{
    verdicts v = {0};
    int rc = 0;
    for (size_t i = 0; i < l->nkinds && rc == 0; i++) {
        zw_trace_info ti = zw_snapshot_trace(set->snap, i);
        bool sup;
        if (verdict(&v, s, ti.traceback, &sup) != 0) {
            rc = cli_fail("out of memory");
            break;
        }
        unsigned k = l->kinds[i];
        tags[i] = (uint8_t)(k + (sup ? ZW_LEAK_KINDS : 0));
        if (sup) {
            out->sblocks[k]++;
            out->sbytes[k] += ti.size;
        } else {
            out->blocks[k]++;
            out->bytes[k] += ti.size;
        }
    }
    free(v.keys);
    free(v.values);
    return rc;
}

int
cli_leaks_of(const cli_tree *t, const char *at, const cli_suppressions *s, uint32_t kinds,
             bool show_suppressed, cli_leaks *out)
{
    *out = (cli_leaks){.status = ZW_LEAKS_SCANNED};
    zw_snapshot **parts[ZW_LEAK_KINDS] = {0};
    int rc = 0;
    for (int k = 0; k < ZW_LEAK_KINDS; k++)
        if ((parts[k] = calloc(t->n + 1, sizeof(zw_snapshot *))) == NULL)
            rc = cli_fail("out of memory");
    size_t nparts = 0;
    for (size_t p = 0; p < t->n && rc == 0; p++) {
        const zw_capture_leaks *l;
        const zw_capture_set *set = set_at(t->caps[p], at, &l);
        if (set == NULL)
            continue; /* no such mark in this process */
        if (l->status != ZW_LEAKS_SCANNED) {
            if (out->unscanned++ == 0)
                out->status = l->status;
            continue;
        }
        out->scanned++;
        /* the kinds name the heap's traces, first; the mmap domain's after them are never picked */
        size_t ntraces = zw_snapshot_len(set->snap);
        uint8_t *tags = malloc(ntraces + l->nkinds + 1);
        if (tags != NULL)
            memset(tags, 0xff, ntraces + l->nkinds + 1);
        if (tags == NULL || (rc = tag_capture(set, l, s, tags, out)) != 0) {
            free(tags);
            rc = rc != 0 ? rc : cli_fail("out of memory");
            break;
        }
        for (int k = 0; k < ZW_LEAK_KINDS && rc == 0; k++) {
            if (!(kinds & (1u << k)))
                continue;
            zw_error err;
            uint32_t mask = 1u << (k + (show_suppressed ? ZW_LEAK_KINDS : 0));
            parts[k][nparts] = zw_snapshot_pick(set->snap, tags, mask, &err);
            if (parts[k][nparts] == NULL)
                rc = cli_fail("%s", err.msg);
        }
        nparts++;
        free(tags);
    }
    for (int k = 0; k < ZW_LEAK_KINDS; k++) {
        if (rc == 0 && (kinds & (1u << k)) && nparts > 0) {
            zw_error err;
            out->sets[k] = nparts == 1 ? parts[k][0]
                                       : zw_snapshot_merge((const zw_snapshot *const *)parts[k],
                                                           nparts, &err);
            if (out->sets[k] == NULL)
                rc = cli_fail("%s", err.msg);
        }
        for (size_t p = 0; parts[k] != NULL && p < nparts; p++)
            if (parts[k][p] != out->sets[k])
                zw_snapshot_free(parts[k][p]);
        free(parts[k]);
    }
    if (rc != 0)
        cli_leaks_release(out);
    return rc;
}

void
cli_leaks_release(cli_leaks *l)
{
    for (int k = 0; k < ZW_LEAK_KINDS; k++)
        zw_snapshot_free(l->sets[k]);
    memset(l->sets, 0, sizeof(l->sets));
}

const char *const cli_leak_kind_names[ZW_LEAK_KINDS] = {"definite", "indirect", "possible",
                                                         "reachable"};

int
cli_parse_kinds(const char *cmd, const char *arg, uint32_t *out)
{
    *out = 0;
    if (strcmp(arg, "all") == 0) {
        *out = (1u << ZW_LEAK_KINDS) - 1;
        return 0;
    }
    const char *s = arg;
    while (*s != '\0') {
        size_t len = strcspn(s, ",");
        int k = 0;
        for (; k < ZW_LEAK_KINDS; k++)
            if (strlen(cli_leak_kind_names[k]) == len &&
                strncmp(s, cli_leak_kind_names[k], len) == 0)
                break;
        if (k == ZW_LEAK_KINDS)
            return cli_usage(cmd, "unknown leak kind in '%s' (definite, indirect, possible, "
                                  "reachable or all)",
                             arg);
        *out |= 1u << k;
        s += len;
        if (*s == ',')
            s++;
    }
    return *out != 0 ? 0 : cli_usage(cmd, "no leak kind in '%s'", arg);
}

/* "not scanned: why" of a status other than SCANNED */
const char *
cli_leaks_why(uint32_t status)
{
    switch (status) {
    case ZW_LEAKS_SKIPPED:
        return "not scanned: the process ended on a signal";
    case ZW_LEAKS_FAILED:
        return "not scanned: the scan failed in the process (out of memory)";
    case ZW_LEAKS_OFF:
        return "not scanned: ZW_LEAK_CHECK=0";
    default:
        return "not scanned: the capture has no leak scan (made by an older zw, or cut short)";
    }
}

void
cli_print_leak_summary(const cli_leaks *l, FILE *out)
{
    if (l->scanned == 0) {
        fprintf(out, "LEAK SUMMARY: unknown (%s)\n", cli_leaks_why(l->status));
        return;
    }
    static const char *const label[ZW_LEAK_KINDS] = {"definitely lost", "indirectly lost",
                                                      "possibly lost", "still reachable"};
    fputs("LEAK SUMMARY:\n", out);
    uint64_t sblocks = 0, sbytes = 0;
    for (int k = 0; k < ZW_LEAK_KINDS; k++) {
        char b[32];
        fprintf(out, "   %15s: %s in %" PRIu64 " blocks\n", label[k],
                cli_size(b, (long long)l->bytes[k], false), l->blocks[k]);
        sblocks += l->sblocks[k];
        sbytes += l->sbytes[k];
    }
    char b[32];
    fprintf(out, "   %15s: %s in %" PRIu64 " blocks\n", "suppressed",
            cli_size(b, (long long)sbytes, false), sblocks);
    if (l->unscanned > 0)
        fprintf(out, "   (%zu of %zu processes %s)\n", l->unscanned, l->unscanned + l->scanned,
                cli_leaks_why(l->status));
}
