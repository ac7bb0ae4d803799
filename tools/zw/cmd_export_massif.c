/* tools/zw/cmd_export_massif.c - zw export --format massif: the capture in valgrind massif's
 * massif.out text format, read by ms_print and massif-visualizer:
 *   - one snapshot per sample of the time series (heap_tree=empty), time in whole milliseconds;
 *   - one detailed snapshot per saved live set (each mark's, the exit set), with its heap tree;
 *     the peak set's is heap_tree=peak;
 *   - heap bytes are requested sizes; extra-heap (allocator overhead) and stacks are not
 *     measured and are 0.
 * A heap tree is massif's: the root holds every live byte, its children are the allocating
 * frames, theirs the callers, each node's children largest first; children under massif's
 * default threshold (1% of the snapshot's bytes) are merged into one "in N places" node. A
 * sample taken when a set was saved (same time and bytes) gives way to the set's snapshot. See
 * docs/export.md#massif. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmd_export.h"

/* ---- heap trees ---- */

/* A node of a heap tree: the bytes allocated with `frame` on the stack, below its parent. */
typedef struct mnode {
    const zw_frame *frame; /* NULL for the root */
    uint64_t bytes;        /* bytes of the traces through this node */
    struct mnode **kids;   /* nkids callers (towards main), in insertion order until sorted */
    size_t nkids;
    size_t kids_cap;
} mnode;

static bool
same_frame(const zw_frame *a, const zw_frame *b)
{
    if (a == b)
        return true;
    if (a->lineno != b->lineno || a->offset != b->offset || a->inlined != b->inlined)
        return false;
    if ((a->function == NULL) != (b->function == NULL) ||
        (a->function != NULL && strcmp(a->function, b->function) != 0))
        return false;
    if ((a->module == NULL) != (b->module == NULL) ||
        (a->module != NULL && strcmp(a->module, b->module) != 0))
        return false;
    return strcmp(a->filename, b->filename) == 0;
}

/* The child of `n` for `frame`, added when missing; NULL when out of memory. */
static mnode *
child(mnode *n, const zw_frame *frame)
{
    for (size_t i = 0; i < n->nkids; i++)
        if (same_frame(n->kids[i]->frame, frame))
            return n->kids[i];
    if (n->nkids == n->kids_cap) {
        size_t cap = n->kids_cap ? n->kids_cap * 2 : 4;
        mnode **kids = realloc(n->kids, cap * sizeof(*kids));
        if (kids == NULL)
            return NULL;
        n->kids = kids;
        n->kids_cap = cap;
    }
    mnode *k = calloc(1, sizeof(*k));
    if (k == NULL)
        return NULL;
    k->frame = frame;
    n->kids[n->nkids++] = k;
    return k;
}

static void
tree_free(mnode *n)
{
    for (size_t i = 0; i < n->nkids; i++) {
        tree_free(n->kids[i]);
        free(n->kids[i]);
    }
    free(n->kids);
}

/* The heap tree of `snap` into `root` (zeroed by the caller). 0, or -1 with a message. */
static int
tree_build(mnode *root, const zw_snapshot *snap)
{
    zw_error err;
    zw_stat_list *stats = zw_snapshot_statistics(snap, ZW_GROUP_TRACEBACK, false, &err);
    if (stats == NULL) {
        cli_fail("%s", err.msg);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < zw_stat_list_len(stats) && rc == 0; i++) {
        const zw_statistic *s = zw_stat_list_get(stats, i);
        mnode *n = root;
        n->bytes += s->size;
        /* most recent first, from the allocation function's caller (as massif's --alloc-fn) */
        size_t top = zw_traceback_len(s->traceback) > 0 ? cli_site_frame(s->traceback) + 1 : 0;
        for (size_t k = top; k-- > 0;) {
            n = child(n, zw_traceback_frame(s->traceback, k));
            if (n == NULL) {
                rc = -1;
                cli_fail("out of memory while building a heap tree");
                break;
            }
            n->bytes += s->size;
        }
    }
    zw_stat_list_free(stats);
    return rc;
}

static int
by_bytes_desc(const void *a, const void *b)
{
    const mnode *x = *(const mnode *const *)a;
    const mnode *y = *(const mnode *const *)b;
    return x->bytes < y->bytes ? 1 : x->bytes > y->bytes ? -1 : 0;
}

/* massif's text for a frame: "0x1189: main (main.c:87)", "0x1189: ??? (in /bin/prog)". */
static void
put_frame(zwi_cbuf *out, const zw_frame *f)
{
    zwi_cbuf_printf(out, " 0x%llX: %s", (unsigned long long)f->offset,
                    f->function ? cli_demangle(f->function) : "???");
    if (f->lineno != 0)
        zwi_cbuf_printf(out, " (%s:%u)\n", f->filename, f->lineno);
    else
        zwi_cbuf_printf(out, " (in %s)\n", f->module ? f->module : f->filename);
}

/* `n` and its significant children, depth-first, one space of indent per level. */
static void
put_tree(zwi_cbuf *out, mnode *n, unsigned depth, uint64_t total)
{
    if (n->nkids > 1)
        qsort(n->kids, n->nkids, sizeof(*n->kids), by_bytes_desc);
    size_t nsig = 0;
    uint64_t insig_bytes = 0;
    for (size_t i = 0; i < n->nkids; i++) {
        /* massif's test: significant when at least 1% of the snapshot's bytes */
        if (total > 0 && n->kids[i]->bytes * 100 >= total)
            nsig++;
        else
            insig_bytes += n->kids[i]->bytes;
    }
    size_t ninsig = n->nkids - nsig;
    zwi_cbuf_printf(out, "%*sn%zu: %llu", (int)depth, "", nsig + (ninsig > 0),
                    (unsigned long long)n->bytes);
    if (n->frame == NULL)
        buf_puts(out, " (heap allocation functions) malloc/new/new[], --alloc-fns, etc.\n");
    else
        put_frame(out, n->frame);
    for (size_t i = 0; i < nsig; i++) /* sorted: the significant ones come first */
        put_tree(out, n->kids[i], depth + 1, total);
    if (ninsig > 0)
        zwi_cbuf_printf(out, "%*sn0: %llu in %zu place%s, %sbelow massif's threshold (1.00%%)\n",
                        (int)depth + 1, "", (unsigned long long)insig_bytes, ninsig,
                        ninsig == 1 ? "" : "s", ninsig == 1 ? "" : "all ");
}

/* ---- snapshots ---- */

static int
by_time(const void *a, const void *b)
{
    const zw_capture_set *x = *(const zw_capture_set *const *)a;
    const zw_capture_set *y = *(const zw_capture_set *const *)b;
    return x->time_ns < y->time_ns ? -1 : x->time_ns > y->time_ns ? 1 : 0;
}

static void
put_header(zwi_cbuf *out, size_t num, uint64_t time_ns, uint64_t bytes)
{
    zwi_cbuf_printf(out,
                    "#-----------\nsnapshot=%zu\n#-----------\ntime=%llu\nmem_heap_B=%llu\n"
                    "mem_heap_extra_B=0\nmem_stacks_B=0\n",
                    num, (unsigned long long)(time_ns / 1000000), (unsigned long long)bytes);
}

/* A detailed snapshot of set `s`. 0 or -1. */
static int
put_set(zwi_cbuf *out, size_t num, const zw_capture_set *s, bool peak)
{
    mnode root = {0};
    int rc = tree_build(&root, s->snap);
    if (rc == 0) {
        put_header(out, num, s->time_ns, root.bytes);
        zwi_cbuf_printf(out, "heap_tree=%s\n", peak ? "peak" : "detailed");
        put_tree(out, &root, 0, root.bytes);
    }
    tree_free(&root);
    return rc;
}

int
export_massif(const export_ctx *x, zwi_cbuf *out)
{
    const zw_capture *c = x->c;
    /* the saved sets, in time order */
    const zw_capture_set **sets = malloc((c->nmarks + 2) * sizeof(*sets));
    if (sets == NULL)
        return cli_fail("out of memory");
    size_t nsets = 0;
    for (size_t i = 0; i < c->nmarks; i++)
        if (c->marks[i].snap != NULL)
            sets[nsets++] = &c->marks[i];
    if (c->peak.snap != NULL)
        sets[nsets++] = &c->peak;
    if (c->exit.snap != NULL)
        sets[nsets++] = &c->exit;
    qsort(sets, nsets, sizeof(*sets), by_time);

    zwi_cbuf_printf(out,
                    "desc: --time-unit=ms (written by zw export from capture '%s': heap bytes "
                    "are %s; extra-heap and stacks are not measured)\n",
                    x->path, cli_domain_words());
    buf_puts(out, "cmd:");
    for (size_t i = 0; i < c->argc; i++)
        zwi_cbuf_printf(out, " %s", c->argv[i]);
    buf_puts(out, c->argc == 0 ? " (unknown)\ntime_unit: ms\n" : "\ntime_unit: ms\n");

    int rc = 0;
    size_t num = 0;
    size_t next_set = 0;
    for (size_t i = 0; i <= c->nsamples && rc == 0; i++) {
        const zw_capture_sample *smp = i < c->nsamples ? &c->samples[i] : NULL;
        bool replaced = false;
        while (next_set < nsets && (smp == NULL || sets[next_set]->time_ns <= smp->time_ns)) {
            const zw_capture_set *s = sets[next_set++];
            if (smp != NULL && s->time_ns == smp->time_ns && s->heap_bytes == smp->heap_bytes)
                replaced = true;
            rc = put_set(out, num++, s, s == &c->peak);
            if (rc != 0)
                break;
        }
        if (smp == NULL || replaced || rc != 0)
            continue;
        put_header(out, num++, smp->time_ns, cli_sample_bytes(smp));
        buf_puts(out, "heap_tree=empty\n");
    }
    free(sets);
    if (rc == 0 && num == 0) /* ms_print needs a snapshot; massif always has one */
        return cli_fail("capture '%s' has no samples and no live set: nothing for massif to show%s",
                        x->path, c->complete ? "" : CLI_CUT_SHORT);
    return rc == 0 ? 0 : CLI_EXIT_FAILURE;
}
