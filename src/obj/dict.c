/* obj/dict.c - dict: compact and ordered as CPython 3.11's. A table of 8-, 16-, 32- or 64-bit
 * indices (open addressing with CPython's perturbed probing) points into an array of entries
 * kept in insertion order; tables whose keys are all str use 16-byte entries (the hash is in
 * the str), others 24-byte ones. The resize policy and therefore every size equal 3.11's:
 * a table of 2**k slots holds 2**k * 2/3 entries; when full it is rebuilt for used * 3.
 * See docs/obj.md#dict.
 *
 * Invariants: keys == NULL <=> no table (the empty dict, 3.11's shared empty keys);
 * keys->nentries entries are used (deleted ones have key == NULL), used of them live;
 * keys->usable + keys->nentries == USABLE(size). A dict is GC-tracked only once it holds a
 * value that may be in a cycle (MAINTAIN_TRACKING), as in 3.11. */
#include <string.h>

#include <zerowaste/obj.h>

#include "obj_internal.h"

#define DICT(o)        ((zwi_dict *)(o))
#define LOG2_MINSIZE   3
#define IX_EMPTY       (-1)
#define IX_DUMMY       (-2)
#define PERTURB_SHIFT  5
#define USABLE(size)   (((size) << 1) / 3)
#define DK_SIZE(k)     ((size_t)1 << (k)->log2_size)
#define DK_ENTRIES(k)  ((void *)((k)->indices + ((size_t)1 << (k)->log2_index_bytes)))
#define DK_UENTRIES(k) ((zwi_dictuentry *)DK_ENTRIES(k))
#define DK_GENTRIES(k) ((zwi_dictentry *)DK_ENTRIES(k))

bool
zw_dict_check(const zw_obj *o)
{
    return (o->type->flags & ZW_TPFLAGS_DICT) != 0;
}

/* ---- index table ---- */

static inline intptr_t
get_index(const zwi_dictkeys *k, size_t i)
{
    uint8_t s = k->log2_size;
    if (s < 8)
        return ((const int8_t *)k->indices)[i];
    if (s < 16)
        return ((const int16_t *)k->indices)[i];
    if (s < 32)
        return ((const int32_t *)k->indices)[i];
    return (intptr_t)((const int64_t *)k->indices)[i];
}

static inline void
set_index(zwi_dictkeys *k, size_t i, intptr_t ix)
{
    uint8_t s = k->log2_size;
    if (s < 8)
        ((int8_t *)k->indices)[i] = (int8_t)ix;
    else if (s < 16)
        ((int16_t *)k->indices)[i] = (int16_t)ix;
    else if (s < 32)
        ((int32_t *)k->indices)[i] = (int32_t)ix;
    else
        ((int64_t *)k->indices)[i] = (int64_t)ix;
}

static size_t
keys_size(const zwi_dictkeys *k)
{
    size_t entry = k->unicode ? sizeof(zwi_dictuentry) : sizeof(zwi_dictentry);
    return sizeof(zwi_dictkeys) + ((size_t)1 << k->log2_index_bytes) +
           USABLE(DK_SIZE(k)) * entry;
}

static zwi_dictkeys *
new_keys(zw_rt *rt, uint8_t log2_size, bool unicode)
{
    uint8_t log2_bytes = log2_size < 8 ? log2_size : log2_size < 16 ? log2_size + 1
                       : log2_size < 32 ? log2_size + 2 : log2_size + 3;
    size_t usable = USABLE((size_t)1 << log2_size);
    size_t entry = unicode ? sizeof(zwi_dictuentry) : sizeof(zwi_dictentry);
    zwi_dictkeys *k;
    if (log2_size == LOG2_MINSIZE && unicode && rt->keys_nfree > 0) {
        k = rt->keys_free[--rt->keys_nfree];
    } else {
        if (log2_size >= 8 * sizeof(size_t) - 4) {
            zw_err_nomemory(rt);
            return NULL;
        }
        k = zwi_rt_malloc(rt, sizeof(zwi_dictkeys) + ((size_t)1 << log2_bytes) + entry * usable);
        if (k == NULL)
            return NULL;
    }
    k->refcnt = 1;
    k->log2_size = log2_size;
    k->log2_index_bytes = log2_bytes;
    k->unicode = unicode;
    k->pad_ = 0;
    k->version = 0;
    k->usable = (intptr_t)usable;
    k->nentries = 0;
    if (log2_size == LOG2_MINSIZE) {
        /* constant sizes, so stores in line rather than two calls to memset: most dicts are
         * this small */
        memset(k->indices, 0xff, (size_t)1 << LOG2_MINSIZE);
        if (unicode)
            memset(DK_ENTRIES(k), 0, sizeof(zwi_dictuentry) * USABLE((size_t)1 << LOG2_MINSIZE));
        else
            memset(DK_ENTRIES(k), 0, sizeof(zwi_dictentry) * USABLE((size_t)1 << LOG2_MINSIZE));
        return k;
    }
    memset(k->indices, 0xff, (size_t)1 << log2_bytes); /* every index IX_EMPTY */
    memset(DK_ENTRIES(k), 0, entry * usable);
    return k;
}

static void
free_keys(zw_rt *rt, zwi_dictkeys *k)
{
    if (k->log2_size == LOG2_MINSIZE && k->unicode && rt->keys_nfree < ZWI_DICT_MAXFREELIST) {
        rt->keys_free[rt->keys_nfree++] = k;
        return;
    }
    zwi_rt_free(rt, k);
}

/* 3.11's calculate_log2_keysize: the bit length of ((minsize | 8) - 1) | 7, which is the
 * smallest power of two >= minsize from 8 on, but 16 for 1..7 (and 8 for 0). */
static uint8_t
log2_for(size_t minsize)
{
    size_t m = (((minsize | 8) - 1) | 7);
    uint8_t log2 = 0;
    while (m != 0) {
        log2++;
        m >>= 1;
    }
    return log2;
}

/* ---- lookup ---- */

static inline int64_t
entry_hash(const zwi_dictkeys *k, intptr_t ix)
{
    if (k->unicode)
        return ZWI_STR(DK_UENTRIES(k)[ix].key)->hash;
    return DK_GENTRIES(k)[ix].hash;
}

static inline zw_obj *
entry_key(const zwi_dictkeys *k, intptr_t ix)
{
    return k->unicode ? DK_UENTRIES(k)[ix].key : DK_GENTRIES(k)[ix].key;
}

static inline zw_obj **
entry_value(zwi_dictkeys *k, intptr_t ix)
{
    return k->unicode ? &DK_UENTRIES(k)[ix].value : &DK_GENTRIES(k)[ix].value;
}

/* The entry index of `key`, IX_EMPTY if absent, or -3 on a comparison error. *slot receives
 * the index-table position where the search stopped. */
#define IX_ERROR (-3)
static intptr_t
lookup(zw_obj *d, zw_obj *key, int64_t hash, size_t *slot)
{
    zwi_dictkeys *k = DICT(d)->keys;
    if (k == NULL)
        return IX_EMPTY;
    size_t mask = DK_SIZE(k) - 1;
    size_t i = (size_t)hash & mask;
    size_t perturb = (size_t)hash;
    bool str_key = key->type == ZWI_RT(d)->builtin[ZW_T_STR];
    for (;;) {
        intptr_t ix = get_index(k, i);
        if (ix == IX_EMPTY) {
            *slot = i;
            return IX_EMPTY;
        }
        if (ix >= 0) {
            zw_obj *ek = entry_key(k, ix);
            if (ek == key) {
                *slot = i;
                return ix;
            }
            if (entry_hash(k, ix) == hash) {
                if (str_key && ek->type == key->type) {
                    if (zwi_str_equal(ek, key)) {
                        *slot = i;
                        return ix;
                    }
                } else if (!str_key || !zw_str_check(ek)) {
                    zw_incref(ek);
                    int eq = zw_equal(ek, key);
                    /* the comparison may have changed the dict: its table, or this entry (a
                     * compare that deletes the key it is comparing): start over, as CPython */
                    bool changed = DICT(d)->keys != k || entry_key(k, ix) != ek;
                    zw_decref(ek);
                    if (eq < 0)
                        return IX_ERROR;
                    if (changed)
                        return lookup(d, key, hash, slot);
                    if (eq) {
                        *slot = i;
                        return ix;
                    }
                }
            }
        }
        perturb >>= PERTURB_SHIFT;
        i = (i * 5 + perturb + 1) & mask;
    }
}

/* lookup() for an exact str key in a table of str keys (k->unicode): identity first, then the
 * hash and the text, as 3.11's unicodekeys_lookup_unicode. A str comparison cannot change the
 * dict, so there is no restart and no error. */
static inline __attribute__((always_inline)) intptr_t
lookup_unicode(const zwi_dictkeys *k, zw_obj *key, int64_t hash, size_t *slot)
{
    const zwi_dictuentry *entries = DK_UENTRIES(k);
    size_t mask = DK_SIZE(k) - 1;
    size_t i = (size_t)hash & mask;
    size_t perturb = (size_t)hash;
    for (;;) {
        intptr_t ix = get_index(k, i);
        if (ix == IX_EMPTY) {
            *slot = i;
            return IX_EMPTY;
        }
        if (ix >= 0) {
            zw_obj *ek = entries[ix].key;
            if (ek == key || (ZWI_STR(ek)->hash == hash && zwi_str_equal(ek, key))) {
                *slot = i;
                return ix;
            }
        }
        perturb >>= PERTURB_SHIFT;
        i = (i * 5 + perturb + 1) & mask;
    }
}

static size_t
find_empty_slot(zwi_dictkeys *k, int64_t hash)
{
    size_t mask = DK_SIZE(k) - 1;
    size_t i = (size_t)hash & mask;
    size_t perturb = (size_t)hash;
    while (get_index(k, i) >= 0 || get_index(k, i) == IX_DUMMY) {
        perturb >>= PERTURB_SHIFT;
        i = (i * 5 + perturb + 1) & mask;
    }
    return i;
}

static int64_t
hash_of(zw_obj *key)
{
    if (key->type == ZWI_RT(key)->builtin[ZW_T_STR])
        return zwi_str_hash(key);
    return zw_hash(key);
}

/* ---- resizing ---- */

/* Rebuilds the table with 2**log2 slots, compacting deleted entries away. */
static int
dict_resize(zw_obj *d, uint8_t log2, bool unicode)
{
    zw_rt *rt = ZWI_RT(d);
    zwi_dictkeys *old = DICT(d)->keys;
    zwi_dictkeys *k = new_keys(rt, log2, unicode);
    if (k == NULL)
        return -1;
    intptr_t n = 0;
    if (old != NULL) {
        for (intptr_t ix = 0; ix < old->nentries; ix++) {
            zw_obj *key = entry_key(old, ix);
            if (key == NULL)
                continue;
            int64_t h = entry_hash(old, ix);
            zw_obj *value = *entry_value(old, ix);
            if (unicode) {
                DK_UENTRIES(k)[n].key = key;
                DK_UENTRIES(k)[n].value = value;
            } else {
                DK_GENTRIES(k)[n].hash = h;
                DK_GENTRIES(k)[n].key = key;
                DK_GENTRIES(k)[n].value = value;
            }
            set_index(k, find_empty_slot(k, h), n);
            n++;
        }
        free_keys(rt, old);
    }
    k->nentries = n;
    k->usable -= n;
    DICT(d)->keys = k;
    return 0;
}

/* ---- tracking, as 3.11's MAINTAIN_TRACKING ---- */

static inline bool
maybe_tracked(zw_obj *o)
{
    if (!ZWI_IS_GC(o))
        return false;
    if (o->type == ZWI_RT(o)->builtin[ZW_T_TUPLE])
        return ZWI_TRACKED(o);
    return true;
}

static inline void
maintain_tracking(zw_obj *d, zw_obj *key, zw_obj *value)
{
    if (!ZWI_TRACKED(d) && (maybe_tracked(key) || maybe_tracked(value)))
        zwi_gc_track(d);
}

/* ---- get / set / delete ---- */

zw_obj *
zwi_dict_get_hashed(zw_obj *d, zw_obj *key, int64_t hash)
{
    size_t slot;
    intptr_t ix = lookup(d, key, hash, &slot);
    if (ix < 0)
        return NULL;
    return *entry_value(DICT(d)->keys, ix);
}

/* zwi_dict_set_hashed for an exact str key in a table of str keys with room: 1 when done, 0
 * when the general way must do it (a resize), having changed nothing. */
static inline int
set_unicode(zw_obj *d, zwi_dictkeys *k, zw_obj *key, int64_t hash, zw_obj *value)
{
    zwi_dict *x = DICT(d);
    size_t slot;
    intptr_t ix = lookup_unicode(k, key, hash, &slot);
    if (ix >= 0) {
        maintain_tracking(d, key, value);
        zw_obj **v = &DK_UENTRIES(k)[ix].value;
        zw_incref(value);
        ZW_SETREF(*v, value);
        x->version++;
        return 1;
    }
    if (k->usable <= 0)
        return 0;
    maintain_tracking(d, key, value);
    /* with no deleted entry the table has no dummy index, so the empty slot where the lookup
     * stopped is the one find_empty_slot would find */
    if (k->nentries != x->used)
        slot = find_empty_slot(k, hash);
    intptr_t n = k->nentries;
    DK_UENTRIES(k)[n].key = zw_newref(key);
    DK_UENTRIES(k)[n].value = zw_newref(value);
    set_index(k, slot, n);
    k->nentries = n + 1;
    k->usable--;
    x->used++;
    x->version++;
    return 1;
}

int
zwi_dict_set_hashed(zw_obj *d, zw_obj *key, int64_t hash, zw_obj *value)
{
    zw_rt *rt = ZWI_RT(d);
    zwi_dict *x = DICT(d);
    bool str_key = key->type == rt->builtin[ZW_T_STR];
    if (x->keys == NULL) {
        x->keys = new_keys(rt, LOG2_MINSIZE, str_key);
        if (x->keys == NULL)
            return -1;
    }
    if (str_key && x->keys->unicode && set_unicode(d, x->keys, key, hash, value))
        return 0;
    if (x->keys->unicode && !str_key) {
        if (dict_resize(d, log2_for((size_t)x->used * 3), false) != 0)
            return -1;
    }
    size_t slot;
    intptr_t ix = lookup(d, key, hash, &slot);
    if (ix == IX_ERROR)
        return -1;
    maintain_tracking(d, key, value);
    if (ix >= 0) {
        zw_obj **v = entry_value(x->keys, ix);
        zw_incref(value);
        ZW_SETREF(*v, value);
        x->version++;
        return 0;
    }
    if (x->keys->usable <= 0) {
        if (dict_resize(d, log2_for((size_t)x->used * 3), x->keys->unicode) != 0)
            return -1;
    }
    zwi_dictkeys *k = x->keys;
    slot = find_empty_slot(k, hash);
    intptr_t n = k->nentries;
    if (k->unicode) {
        DK_UENTRIES(k)[n].key = zw_newref(key);
        DK_UENTRIES(k)[n].value = zw_newref(value);
    } else {
        DK_GENTRIES(k)[n].hash = hash;
        DK_GENTRIES(k)[n].key = zw_newref(key);
        DK_GENTRIES(k)[n].value = zw_newref(value);
    }
    set_index(k, slot, n);
    k->nentries++;
    k->usable--;
    x->used++;
    x->version++;
    return 0;
}

zw_obj *
zw_dict_get(zw_obj *d, zw_obj *key)
{
    int64_t h = hash_of(key);
    if (h == -1 && ZWI_RT(d)->exc != ZW_NoError)
        return NULL;
    return zwi_dict_get_hashed(d, key, h);
}

int
zw_dict_set(zw_obj *d, zw_obj *key, zw_obj *value)
{
    /* a str's hash is usually cached already: read it here rather than in a call */
    if (key->type == ZWI_RT(d)->builtin[ZW_T_STR] && ZWI_STR(key)->hash != -1)
        return zwi_dict_set_hashed(d, key, ZWI_STR(key)->hash, value);
    int64_t h = hash_of(key);
    if (h == -1 && ZWI_RT(d)->exc != ZW_NoError)
        return -1;
    return zwi_dict_set_hashed(d, key, h, value);
}

zw_obj *
zw_dict_get_str(zw_obj *d, const char *key)
{
    zw_obj *k = zw_str_new(ZWI_RT(d), key);
    if (k == NULL)
        return NULL;
    zw_obj *v = zw_dict_get(d, k);
    zw_decref(k);
    return v;
}

int
zw_dict_set_str(zw_obj *d, const char *key, zw_obj *value)
{
    zw_obj *k = zw_str_new(ZWI_RT(d), key);
    if (k == NULL)
        return -1;
    int rc = zw_dict_set(d, k, value);
    zw_decref(k);
    return rc;
}

int
zw_dict_del(zw_obj *d, zw_obj *key)
{
    zw_rt *rt = ZWI_RT(d);
    int64_t h = hash_of(key);
    if (h == -1 && rt->exc != ZW_NoError)
        return -1;
    size_t slot;
    intptr_t ix = lookup(d, key, h, &slot);
    if (ix == IX_ERROR)
        return -1;
    if (ix < 0) {
        zw_obj *r = zw_repr(key);
        if (r == NULL)
            return -1;
        zw_err_set(rt, ZW_KeyError, "%s", zw_str_utf8(r, NULL) ? zw_str_utf8(r, NULL) : "?");
        zw_decref(r);
        return -1;
    }
    zwi_dictkeys *k = DICT(d)->keys;
    set_index(k, slot, IX_DUMMY);
    zw_obj *oldkey, *oldvalue;
    if (k->unicode) {
        oldkey = DK_UENTRIES(k)[ix].key;
        oldvalue = DK_UENTRIES(k)[ix].value;
        DK_UENTRIES(k)[ix].key = DK_UENTRIES(k)[ix].value = NULL;
    } else {
        oldkey = DK_GENTRIES(k)[ix].key;
        oldvalue = DK_GENTRIES(k)[ix].value;
        DK_GENTRIES(k)[ix].key = DK_GENTRIES(k)[ix].value = NULL;
    }
    DICT(d)->used--;
    DICT(d)->version++;
    zw_decref(oldkey);
    zw_decref(oldvalue);
    return 0;
}

int
zw_dict_contains(zw_obj *d, zw_obj *key)
{
    int64_t h = hash_of(key);
    if (h == -1 && ZWI_RT(d)->exc != ZW_NoError)
        return -1;
    size_t slot;
    intptr_t ix = lookup(d, key, h, &slot);
    return ix == IX_ERROR ? -1 : ix >= 0;
}

size_t
zw_dict_len(zw_obj *d)
{
    return (size_t)DICT(d)->used;
}

void
zw_dict_clear(zw_obj *d)
{
    zwi_dict *x = DICT(d);
    zwi_dictkeys *k = x->keys;
    if (k == NULL)
        return;
    x->keys = NULL;
    x->used = 0;
    x->version++;
    for (intptr_t ix = 0; ix < k->nentries; ix++) {
        zw_obj *key = entry_key(k, ix);
        if (key == NULL)
            continue;
        zw_decref(key);
        zw_decref(*entry_value(k, ix));
    }
    free_keys(ZWI_RT(d), k);
}

bool
zw_dict_next(zw_obj *d, size_t *pos, zw_obj **key, zw_obj **value)
{
    zwi_dictkeys *k = DICT(d)->keys;
    if (k == NULL)
        return false;
    for (intptr_t ix = (intptr_t)*pos; ix < k->nentries; ix++) {
        zw_obj *ek = entry_key(k, ix);
        if (ek == NULL)
            continue;
        if (key != NULL)
            *key = ek;
        if (value != NULL)
            *value = *entry_value(k, ix);
        *pos = (size_t)ix + 1;
        return true;
    }
    *pos = (size_t)k->nentries;
    return false;
}

static zw_obj *
dict_alloc(zw_rt *rt)
{
    zw_obj *o;
    if (rt->dict_nfree > 0) {
        o = rt->dict_free[--rt->dict_nfree];
        zwi_obj_revive(o, rt->builtin[ZW_T_DICT]);
    } else {
        o = zw_obj_alloc(rt->builtin[ZW_T_DICT], 0);
        if (o == NULL)
            return NULL;
    }
    zwi_dict *x = DICT(o);
    x->used = 0;
    x->version = 0;
    x->keys = NULL;
    x->values = NULL;
    return o;
}

zw_obj *
zw_dict_new(zw_rt *rt)
{
    return dict_alloc(rt);
}

zw_obj *
zw_dict_copy(zw_obj *d)
{
    zw_rt *rt = ZWI_RT(d);
    zw_obj *c = dict_alloc(rt);
    if (c == NULL)
        return NULL;
    zwi_dictkeys *k = DICT(d)->keys;
    if (k != NULL && DICT(d)->used == k->nentries) {
        /* no deleted entries: clone the table as it is, as 3.11's clone_combined_dict_keys */
        size_t size = keys_size(k);
        zwi_dictkeys *nk = zwi_rt_malloc(rt, size);
        if (nk == NULL) {
            zw_decref(c);
            return NULL;
        }
        memcpy(nk, k, size);
        for (intptr_t ix = 0; ix < nk->nentries; ix++) {
            zw_incref(entry_key(nk, ix));
            zw_incref(*entry_value(nk, ix));
        }
        DICT(c)->keys = nk;
        DICT(c)->used = DICT(d)->used;
        if (ZWI_TRACKED(d))
            zwi_gc_track(c);
        return c;
    }
    size_t pos = 0;
    zw_obj *key, *value;
    while (zw_dict_next(d, &pos, &key, &value)) {
        if (zw_dict_set(c, key, value) != 0) {
            zw_decref(c);
            return NULL;
        }
    }
    return c;
}

/* ---- the type ---- */

static int
dict_clear_slot(zw_obj *o)
{
    zw_dict_clear(o);
    return 0;
}

static void
dict_dealloc(zw_obj *o)
{
    zw_rt *rt = ZWI_RT(o);
    zwi_gc_untrack(o);
    zw_dict_clear(o);
    if (o->type == rt->builtin[ZW_T_DICT] && rt->dict_nfree < ZWI_DICT_MAXFREELIST) {
        zwi_obj_cached(o);
        rt->dict_free[rt->dict_nfree++] = o;
        return;
    }
    zw_obj_free(o);
}

static int
dict_traverse(zw_obj *o, zw_visit_fn visit, void *arg)
{
    zwi_dictkeys *k = DICT(o)->keys;
    if (k == NULL)
        return 0;
    for (intptr_t ix = 0; ix < k->nentries; ix++) {
        zw_obj *key = entry_key(k, ix);
        if (key == NULL)
            continue;
        int r = k->unicode ? 0 : visit(key, arg);
        if (r == 0)
            r = visit(*entry_value(k, ix), arg);
        if (r != 0)
            return r;
    }
    return 0;
}

static zw_obj *
dict_repr(zw_obj *o)
{
    zw_rt *rt = ZWI_RT(o);
    if (DICT(o)->used == 0)
        return zw_str_new(rt, "{}");
    int r = zwi_repr_enter(o);
    if (r != 0)
        return r < 0 ? NULL : zw_str_new(rt, "{...}");
    zw_obj *parts = zw_list_new(rt, (size_t)DICT(o)->used);
    zw_obj *result = NULL;
    if (parts == NULL)
        goto out;
    size_t pos = 0;
    zw_obj *key, *value;
    while (zw_dict_next(o, &pos, &key, &value)) {
        zw_obj *s = zw_str_from_format(rt, "%R: %R", key, value);
        if (s == NULL || zw_list_append(parts, s) != 0) {
            zw_xdecref(s);
            goto out;
        }
        zw_decref(s);
    }
    zw_obj *sep = zw_str_new(rt, ", ");
    zw_obj *body = sep ? zw_str_join(sep, parts) : NULL;
    zw_xdecref(sep);
    if (body != NULL)
        result = zw_str_from_format(rt, "{%U}", body);
    zw_xdecref(body);
out:
    zw_xdecref(parts);
    zwi_repr_leave(o);
    return result;
}

static int
dict_compare(zw_obj *a, zw_obj *b, zw_cmp op)
{
    if (!zw_dict_check(b) || (op != ZW_EQ && op != ZW_NE))
        return ZW_CMP_UNSUPPORTED;
    int eq = 1;
    if (DICT(a)->used != DICT(b)->used) {
        eq = 0;
    } else {
        size_t pos = 0;
        zw_obj *key, *value;
        while (eq == 1 && zw_dict_next(a, &pos, &key, &value)) {
            zw_incref(value);
            zw_obj *other = zw_dict_get(b, key);
            if (other == NULL)
                eq = ZWI_RT(a)->exc != ZW_NoError ? -1 : 0;
            else
                eq = zw_equal(value, other);
            zw_decref(value);
        }
    }
    if (eq < 0)
        return -1;
    return op == ZW_EQ ? eq : !eq;
}

static int64_t
dict_hash(zw_obj *o)
{
    zw_err_set(ZWI_RT(o), ZW_TypeError, "unhashable type: 'dict'");
    return -1;
}

static size_t
dict_size_of(zw_obj *o)
{
    zwi_dictkeys *k = DICT(o)->keys;
    return sizeof(zwi_dict) + (k != NULL && k->refcnt == 1 ? keys_size(k) : 0);
}

/* ---- iterators over keys, values and items ---- */

typedef struct dict_iter {
    zw_obj ob;
    zw_obj *d;        /* NULL once exhausted */
    intptr_t used;    /* the dict's size when iteration began */
    size_t pos;       /* the next entry to look at */
} dict_iter;

static zw_obj *
dict_iter_new(zw_obj *d, zw_builtin which)
{
    zw_rt *rt = ZWI_RT(d);
    dict_iter *it = (dict_iter *)zw_obj_alloc(rt->builtin[which], 0);
    if (it == NULL)
        return NULL;
    it->d = zw_newref(d);
    it->used = DICT(d)->used;
    zwi_gc_track(&it->ob);
    return &it->ob;
}

zw_obj *
zw_dict_keys_iter(zw_obj *d)
{
    return dict_iter_new(d, ZW_T_DICT_KEYITER);
}

zw_obj *
zw_dict_values_iter(zw_obj *d)
{
    return dict_iter_new(d, ZW_T_DICT_VALUEITER);
}

zw_obj *
zw_dict_items_iter(zw_obj *d)
{
    return dict_iter_new(d, ZW_T_DICT_ITEMITER);
}

/* The next entry, or false at the end or on a size change (RuntimeError set). */
static bool
dict_iter_step(zw_obj *o, zw_obj **key, zw_obj **value)
{
    dict_iter *it = (dict_iter *)o;
    if (it->d == NULL)
        return false;
    if (DICT(it->d)->used != it->used) {
        zw_err_set(ZWI_RT(o), ZW_RuntimeError, "dictionary changed size during iteration");
        it->used = -1; /* as CPython: stays broken */
        return false;
    }
    if (!zw_dict_next(it->d, &it->pos, key, value)) {
        ZW_CLEAR(it->d);
        return false;
    }
    return true;
}

static zw_obj *
keyiter_next(zw_obj *o)
{
    zw_obj *k;
    return dict_iter_step(o, &k, NULL) ? zw_newref(k) : NULL;
}

static zw_obj *
valueiter_next(zw_obj *o)
{
    zw_obj *v;
    return dict_iter_step(o, NULL, &v) ? zw_newref(v) : NULL;
}

static zw_obj *
itemiter_next(zw_obj *o)
{
    zw_obj *k, *v;
    if (!dict_iter_step(o, &k, &v))
        return NULL;
    return zw_tuple_pack(ZWI_RT(o), 2, k, v);
}

static int
dict_iter_traverse(zw_obj *o, zw_visit_fn visit, void *arg)
{
    dict_iter *it = (dict_iter *)o;
    return it->d ? visit(it->d, arg) : 0;
}

static zw_obj *
dict_iter_keys(zw_obj *o)
{
    return zw_dict_keys_iter(o);
}

ZW_HIDDEN const zw_type_spec zwi_dict_spec = {
    .name = "dict",
    .basicsize = sizeof(zwi_dict),
    .flags = ZW_TPFLAGS_GC | ZW_TPFLAGS_DICT | ZW_TPFLAGS_BASETYPE,
    .dealloc = dict_dealloc,
    .traverse = dict_traverse,
    .clear = dict_clear_slot,
    .repr = dict_repr,
    .hash = dict_hash,
    .compare = dict_compare,
    .iter = dict_iter_keys,
    .size_of = dict_size_of,
};

#define DICT_ITER_SPEC(var, pyname, nextfn)                                                        \
    ZW_HIDDEN const zw_type_spec var = {                                                           \
        .name = pyname,                                                                            \
        .basicsize = sizeof(dict_iter),                                                            \
        .flags = ZW_TPFLAGS_GC,                                                                    \
        .traverse = dict_iter_traverse,                                                            \
        .next = nextfn,                                                                            \
    }
DICT_ITER_SPEC(zwi_dict_keyiter_spec, "dict_keyiterator", keyiter_next);
DICT_ITER_SPEC(zwi_dict_valueiter_spec, "dict_valueiterator", valueiter_next);
DICT_ITER_SPEC(zwi_dict_itemiter_spec, "dict_itemiterator", itemiter_next);

void
zwi_dict_clear_freelist(zw_rt *rt)
{
    while (rt->dict_nfree > 0)
        zwi_obj_forget(rt->dict_free[--rt->dict_nfree]);
    while (rt->keys_nfree > 0)
        zwi_rt_free(rt, rt->keys_free[--rt->keys_nfree]);
}
