/* trace/stats.c - Snapshot.statistics() and Snapshot.compare_to(): group traces by a key (the most
 * recent frame, its file, or the whole traceback; every frame with `cumulative`), sum sizes and
 * counts, and sort as tracemalloc does. Keys are compared by content (file name text and line),
 * so two snapshots from different processes or files compare. The textual forms of statistics
 * and tracemalloc's size format are here too. See docs/trace.md#statistics. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace_internal.h"

/* One group. `tb` is the key: a snapshot's traceback (ZW_GROUP_TRACEBACK) or a one-frame
 * traceback of the list's own. */
typedef struct grp {
    uint64_t hash;
    const zw_traceback *tb;
    size_t size[2]; /* [0] the new snapshot, [1] the old one */
    size_t count[2];
    struct grp *next; /* same hash */
} grp;

/* A key frame of the list's own with its one-frame traceback. */
typedef struct keyframe {
    zw_frame frame;
    const zw_frame *ptr;
    zw_traceback tb;
} keyframe;

struct zw_stat_list {
    zw_raw *raw;
    zwi_map map;  /* hash -> group chain */
    grp **groups; /* every group, in first-seen order */
    size_t ngroups;
    size_t cap_groups;
    zw_statistic *stats; /* the result, sorted */
    size_t nstats;
    zw_group group;
    bool compare;
};

/* ---- keys ---- */

/* Frames are equal keys if they have the same file name and line; frames without a line (native
 * code without debug information) also need the same module and offset. */
static bool
frame_key_equal(const zw_frame *a, const zw_frame *b)
{
    if (a == b)
        return true;
    if (a->lineno != b->lineno || strcmp(a->filename, b->filename) != 0)
        return false;
    if (a->lineno != 0)
        return true;
    if ((a->module == NULL) != (b->module == NULL))
        return false;
    return a->module == NULL || (a->offset == b->offset && strcmp(a->module, b->module) == 0);
}

static uint64_t
frame_key_hash(const zw_frame *f, uint64_t h)
{
    h = zwi_hash_bytes(f->filename, strlen(f->filename), h ^ f->lineno);
    if (f->lineno == 0 && f->module != NULL)
        h ^= f->offset * 0x9E3779B97F4A7C15ULL;
    return h;
}

static int
compare_frames(const zw_frame *a, const zw_frame *b)
{
    int c = strcmp(a->filename, b->filename);
    if (c != 0)
        return c;
    if (a->lineno != b->lineno)
        return a->lineno < b->lineno ? -1 : 1;
    if (a->lineno == 0 && a->offset != b->offset) /* native frames without a line */
        return a->offset < b->offset ? -1 : 1;
    return 0;
}

int
zw_traceback_compare(const zw_traceback *a, const zw_traceback *b)
{
    size_t n = a->nframe < b->nframe ? a->nframe : b->nframe;
    for (size_t i = 0; i < n; i++) {
        int c = compare_frames(a->frames[i], b->frames[i]);
        if (c != 0)
            return c;
    }
    return a->nframe < b->nframe ? -1 : a->nframe > b->nframe ? 1 : 0;
}

static bool
tb_key_equal(const zw_traceback *a, const zw_traceback *b)
{
    if (a->nframe != b->nframe)
        return false;
    for (size_t i = 0; i < a->nframe; i++) {
        if (!frame_key_equal(a->frames[i], b->frames[i]))
            return false;
    }
    return true;
}

static uint64_t
tb_key_hash(const zw_traceback *tb)
{
    uint64_t h = tb->nframe;
    for (size_t i = 0; i < tb->nframe; i++)
        h = frame_key_hash(tb->frames[i], h * 31);
    return h == 0 ? 1 : h;
}

/* ---- grouping ---- */

/* Adds (size, count) to the group of key `tb` in column `side`. `owned`: `tb` is a temporary
 * one-frame key; a new group then takes a copy. */
static int
account(zw_stat_list *l, const zw_traceback *tb, bool owned, int side, size_t size)
{
    uint64_t h = tb_key_hash(tb);
    grp *head = zwi_map_get(&l->map, h);
    for (grp *g = head; g != NULL; g = g->next) {
        if (tb_key_equal(g->tb, tb)) {
            g->size[side] += size;
            g->count[side] += 1;
            return 0;
        }
    }
    if (zwi_reserve(l->raw, (void **)&l->groups, &l->cap_groups, l->ngroups + 1, sizeof(grp *)) !=
        0)
        return -1;
    grp *g = zwi_alloc(l->raw, owned ? sizeof(grp) + sizeof(keyframe) : sizeof(grp));
    if (g == NULL)
        return -1;
    memset(g, 0, sizeof(*g));
    g->hash = h;
    g->tb = tb;
    if (owned) {
        keyframe *k = (keyframe *)(g + 1);
        k->frame = *tb->frames[0];
        k->ptr = &k->frame;
        k->tb =
            (zw_traceback){.frames = &k->ptr, .nframe = 1, .total_nframe = 1, .index = UINT32_MAX};
        g->tb = &k->tb;
    }
    g->size[side] = size;
    g->count[side] = 1;
    g->next = head;
    if (zwi_map_put(&l->map, h, g) != 0) {
        zwi_free(l->raw, g);
        return -1;
    }
    l->groups[l->ngroups++] = g;
    return 0;
}

/* Groups the traces of `snap` into column `side`. */
static int
group_snapshot(zw_stat_list *l, const zw_snapshot *snap, int side, bool cumulative)
{
    for (size_t i = 0; i < snap->ntraces; i++) {
        const zwi_trace *t = &snap->traces[i];
        const zw_traceback *tb = snap->tbs[t->tb];
        if (l->group == ZW_GROUP_TRACEBACK) {
            if (account(l, tb, false, side, t->size) != 0)
                return -1;
            continue;
        }
        /* the most recent frame, or every frame */
        size_t first = cumulative ? 0 : tb->nframe - 1;
        for (size_t k = first; k < tb->nframe; k++) {
            zw_frame key = *tb->frames[k];
            if (l->group == ZW_GROUP_FILENAME)
                key = (zw_frame){.filename = key.filename, .lineno = 0};
            else
                key.inlined = false;
            const zw_frame *kp = &key;
            zw_traceback ktb = {.frames = &kp, .nframe = 1, .total_nframe = 1};
            if (account(l, &ktb, true, side, t->size) != 0)
                return -1;
        }
    }
    return 0;
}

/* ---- sorting ---- */

static int
cmp_size(uint64_t a, uint64_t b)
{
    return a < b ? -1 : a > b ? 1 : 0;
}

static uint64_t
absdiff(int64_t d)
{
    return d < 0 ? (uint64_t)0 - (uint64_t)d : (uint64_t)d;
}

/* Descending by (size, count, traceback). */
static int
order_statistics(const void *pa, const void *pb)
{
    const zw_statistic *a = pa;
    const zw_statistic *b = pb;
    int c = cmp_size(a->size, b->size);
    if (c == 0)
        c = cmp_size(a->count, b->count);
    if (c == 0)
        c = zw_traceback_compare(a->traceback, b->traceback);
    return -c;
}

/* Descending by (abs(size_diff), size, abs(count_diff), count, traceback). */
static int
order_diffs(const void *pa, const void *pb)
{
    const zw_statistic *a = pa;
    const zw_statistic *b = pb;
    int c = cmp_size(absdiff(a->size_diff), absdiff(b->size_diff));
    if (c == 0)
        c = cmp_size(a->size, b->size);
    if (c == 0)
        c = cmp_size(absdiff(a->count_diff), absdiff(b->count_diff));
    if (c == 0)
        c = cmp_size(a->count, b->count);
    if (c == 0)
        c = zw_traceback_compare(a->traceback, b->traceback);
    return -c;
}

/* ---- the lists ---- */

static zw_stat_list *
compute(const zw_snapshot *snap, const zw_snapshot *old, zw_group group, bool cumulative,
        zw_error *err)
{
    const char *what = old != NULL ? "compare snapshots" : "compute statistics";
    if (group != ZW_GROUP_FILENAME && group != ZW_GROUP_LINENO && group != ZW_GROUP_TRACEBACK) {
        zw_error_set(err, "cannot %s: unknown key type %d", what, (int)group);
        return NULL;
    }
    if (cumulative && group == ZW_GROUP_TRACEBACK) {
        zw_error_set(err, "cannot %s: cumulative mode cannot be used with key type 'traceback'",
                     what);
        return NULL;
    }
    zw_raw *raw = zw_raw_new(NULL);
    zw_stat_list *l = raw == NULL ? NULL : zwi_alloc(raw, sizeof(*l));
    if (l == NULL) {
        zw_raw_destroy(raw);
        zw_error_set(err, "cannot %s: %s", what, strerror(ENOMEM));
        return NULL;
    }
    memset(l, 0, sizeof(*l));
    l->raw = raw;
    l->group = group;
    l->compare = old != NULL;
    zwi_map_init(&l->map, raw);
    if (group_snapshot(l, snap, 0, cumulative) != 0 ||
        (old != NULL && group_snapshot(l, old, 1, cumulative) != 0) ||
        (l->stats = zwi_alloc(raw, (l->ngroups + 1) * sizeof(zw_statistic))) == NULL) {
        zw_stat_list_free(l);
        zw_error_set(err, "cannot %s: %s", what, strerror(ENOMEM));
        return NULL;
    }
    for (size_t i = 0; i < l->ngroups; i++) {
        const grp *g = l->groups[i];
        zw_statistic *s = &l->stats[l->nstats++];
        s->traceback = g->tb;
        s->size = g->size[0];
        s->count = g->count[0];
        s->size_diff = old != NULL ? (int64_t)g->size[0] - (int64_t)g->size[1] : 0;
        s->count_diff = old != NULL ? (int64_t)g->count[0] - (int64_t)g->count[1] : 0;
    }
    qsort(l->stats, l->nstats, sizeof(zw_statistic), old != NULL ? order_diffs : order_statistics);
    return l;
}

zw_stat_list *
zw_snapshot_statistics(const zw_snapshot *snap, zw_group group, bool cumulative, zw_error *err)
{
    return compute(snap, NULL, group, cumulative, err);
}

zw_stat_list *
zw_snapshot_compare_to(const zw_snapshot *snap, const zw_snapshot *old, zw_group group,
                       bool cumulative, zw_error *err)
{
    if (old == NULL) {
        zw_error_set(err, "cannot compare snapshots: the old snapshot is NULL");
        return NULL;
    }
    return compute(snap, old, group, cumulative, err);
}

size_t
zw_stat_list_len(const zw_stat_list *l)
{
    return l->nstats;
}

const zw_statistic *
zw_stat_list_get(const zw_stat_list *l, size_t i)
{
    return i < l->nstats ? &l->stats[i] : NULL;
}

void
zw_stat_list_free(zw_stat_list *l)
{
    if (l == NULL)
        return;
    zw_raw *raw = l->raw;
    for (size_t i = 0; i < l->ngroups; i++)
        zwi_free(raw, l->groups[i]);
    zwi_free(raw, l->groups);
    zwi_free(raw, l->stats);
    zwi_map_release(&l->map);
    zwi_free(raw, l);
    zw_raw_destroy(raw);
}

/* ---- text ---- */

/* tracemalloc's _format_size on a float. */
static int
format_size(double size, bool sign, char *buf, size_t len)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    for (int u = 0;; u++) {
        double a = size < 0 ? -size : size;
        if (a < 100 && u != 0)
            return snprintf(buf, len, sign ? "%+.1f %s" : "%.1f %s", size, units[u]);
        if (a < 10 * 1024 || u == 4)
            return snprintf(buf, len, sign ? "%+.0f %s" : "%.0f %s", size, units[u]);
        size /= 1024;
    }
}

int
zw_format_size(int64_t size, bool sign, char *buf, size_t len)
{
    return format_size((double)size, sign, buf, len);
}

int
zw_statistic_str(const zw_statistic *s, bool diff, char *buf, size_t len)
{
    char where[1024];
    char size[64];
    char sdiff[64];
    char avg[80] = "";
    zw_frame_str(s->traceback->frames[0], where, sizeof(where));
    format_size((double)s->size, false, size, sizeof(size));
    if (s->count != 0) {
        char a[64];
        format_size((double)s->size / (double)s->count, false, a, sizeof(a));
        snprintf(avg, sizeof(avg), ", average=%s", a);
    }
    if (!diff)
        return snprintf(buf, len, "%s: size=%s, count=%zu%s", where, size, s->count, avg);
    format_size((double)s->size_diff, true, sdiff, sizeof(sdiff));
    return snprintf(buf, len, "%s: size=%s (%s), count=%zu (%+" PRId64 ")%s", where, size, sdiff,
                    s->count, s->count_diff, avg);
}
