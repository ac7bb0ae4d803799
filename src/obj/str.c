/* obj/str.c - str: immutable text stored compactly as PEP 393 does (1, 2 or 4 bytes per code
 * point, chosen by the widest one), UTF-8 in and out, siphash13 hashing keyed by the runtime's
 * seed (equal to CPython's for the same PYTHONHASHSEED), comparison, concatenation, join and
 * interning. See docs/obj.md#str.
 *
 * Invariants: a str is always in its narrowest kind (so equal strings have equal kinds and
 * equal data bytes); data[length] is 0 in every kind; ASCII strings keep their data right after
 * the 48-byte header and are their own UTF-8; other strings cache their UTF-8 on first request
 * (zwi_ustr.utf8, from the heap), which getsizeof then counts, as CPython does. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <zerowaste/obj.h>

#include "obj_internal.h"

/* ---- hashing (CPython's Python/pyhash.c: siphash13, keys from PYTHONHASHSEED's LCG) ---- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define HALF_ROUND(a, b, c, d, s, t)                                                               \
    a += b;                                                                                        \
    c += d;                                                                                        \
    b = ROTL(b, s) ^ a;                                                                            \
    d = ROTL(d, t) ^ c;                                                                            \
    a = ROTL(a, 32);
#define SINGLE_ROUND(v0, v1, v2, v3)                                                               \
    HALF_ROUND(v0, v1, v2, v3, 13, 16);                                                            \
    HALF_ROUND(v2, v1, v0, v3, 17, 21);

static uint64_t
siphash13(uint64_t k0, uint64_t k1, const void *src, size_t n)
{
    uint64_t b = (uint64_t)n << 56;
    const uint8_t *in = src;
    uint64_t v0 = k0 ^ 0x736f6d6570736575ull;
    uint64_t v1 = k1 ^ 0x646f72616e646f6dull;
    uint64_t v2 = k0 ^ 0x6c7967656e657261ull;
    uint64_t v3 = k1 ^ 0x7465646279746573ull;
    while (n >= 8) {
        uint64_t mi;
        memcpy(&mi, in, sizeof(mi)); /* little-endian hosts only (x86-64, aarch64) */
        in += 8;
        n -= 8;
        v3 ^= mi;
        SINGLE_ROUND(v0, v1, v2, v3);
        v0 ^= mi;
    }
    uint64_t t = 0;
    for (size_t i = 0; i < n; i++)
        t |= (uint64_t)in[i] << (8 * i);
    b |= t;
    v3 ^= b;
    SINGLE_ROUND(v0, v1, v2, v3);
    v0 ^= b;
    v2 ^= 0xff;
    SINGLE_ROUND(v0, v1, v2, v3);
    SINGLE_ROUND(v0, v1, v2, v3);
    SINGLE_ROUND(v0, v1, v2, v3);
    return (v0 ^ v1) ^ (v2 ^ v3);
}

int64_t
zwi_obj_hash_bytes(zw_rt *rt, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    int64_t h = (int64_t)siphash13(rt->hash_k0, rt->hash_k1, p, n);
    return h == -1 ? -2 : h;
}

/* The keys for a seed, as CPython's lcg_urandom fills _Py_HashSecret (k0, k1 are its first 16
 * bytes); seed 0 means all-zero keys; a negative seed asks the OS for random keys. */
static void
derive_hash_keys(zw_rt *rt, int64_t seed)
{
    unsigned char secret[16];
    if (seed < 0) {
        if (getrandom(secret, sizeof(secret), 0) != (ssize_t)sizeof(secret)) {
            uint64_t x = (uint64_t)(uintptr_t)rt ^ (uint64_t)(uintptr_t)&seed;
            memcpy(secret, &x, 8);
            memcpy(secret + 8, &x, 8);
        }
    } else if (seed == 0) {
        memset(secret, 0, sizeof(secret));
    } else {
        uint32_t x = (uint32_t)seed;
        for (size_t i = 0; i < sizeof(secret); i++) {
            x = x * 214013u + 2531011u;
            secret[i] = (unsigned char)((x >> 16) & 0xff);
        }
    }
    memcpy(&rt->hash_k0, secret, 8);
    memcpy(&rt->hash_k1, secret + 8, 8);
}

int64_t
zwi_str_hash(zw_obj *s)
{
    zwi_str *u = ZWI_STR(s);
    if (u->hash != -1)
        return u->hash;
    u->hash = zwi_obj_hash_bytes(ZWI_RT(s), ZWI_STR_DATA(s), (size_t)u->length * ZWI_STR_KIND(s));
    return u->hash;
}

/* ---- creation ---- */

bool
zw_str_check(const zw_obj *o)
{
    return (o->type->flags & ZW_TPFLAGS_STR) != 0;
}

static zw_obj *
empty_str(zw_rt *rt)
{
    return zw_newref(&rt->empty_str.s.ob);
}

/* A new str of `length` code points, all <= maxchar, data uninitialised except the final 0.
 * length 0 gives the empty-str singleton. */
static zw_obj *
str_alloc(zw_rt *rt, size_t length, uint32_t maxchar)
{
    if (length == 0)
        return empty_str(rt);
    unsigned kind = maxchar < 0x100 ? 1 : maxchar < 0x10000 ? 2 : 4;
    bool ascii = maxchar < 0x80;
    size_t header = ascii ? sizeof(zwi_str) : sizeof(zwi_ustr);
    if (length > (PTRDIFF_MAX - header) / kind - 1) {
        zw_err_nomemory(rt);
        return NULL;
    }
    zw_obj *o = zwi_obj_alloc_sized(rt->builtin[ZW_T_STR], header + (length + 1) * kind);
    if (o == NULL)
        return NULL;
    zwi_str *s = ZWI_STR(o);
    s->length = (intptr_t)length;
    s->hash = -1;
    s->state = kind | (ascii ? ZWI_STR_ASCII : 0);
    s->pad_ = 0;
    s->reserved_ = NULL;
    if (!ascii) {
        zwi_ustr *w = (zwi_ustr *)o;
        w->utf8_length = 0;
        w->utf8 = NULL;
        w->reserved_ = 0;
    }
    char *data = ZWI_STR_DATA(o);
    memset(data + length * kind, 0, kind);
    return o;
}

static inline void
put_char(void *data, unsigned kind, size_t i, uint32_t c)
{
    if (kind == 1)
        ((uint8_t *)data)[i] = (uint8_t)c;
    else if (kind == 2)
        ((uint16_t *)data)[i] = (uint16_t)c;
    else
        ((uint32_t *)data)[i] = c;
}

static inline uint32_t
get_char(const void *data, unsigned kind, size_t i)
{
    if (kind == 1)
        return ((const uint8_t *)data)[i];
    if (kind == 2)
        return ((const uint16_t *)data)[i];
    return ((const uint32_t *)data)[i];
}

/* Decodes one UTF-8 sequence at s[*i]; returns the code point and advances *i, or returns
 * UINT32_MAX with *why set. Strict: no overlong forms, no surrogates, nothing above U+10FFFF. */
static uint32_t
utf8_decode_one(const unsigned char *s, size_t len, size_t *i, const char **why)
{
    unsigned char c = s[*i];
    uint32_t cp;
    size_t need;
    uint32_t min;
    if (c < 0x80) {
        (*i)++;
        return c;
    } else if (c >= 0xC2 && c <= 0xDF) {
        cp = c & 0x1F, need = 1, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        cp = c & 0x0F, need = 2, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        cp = c & 0x07, need = 3, min = 0x10000;
    } else {
        *why = "invalid start byte";
        return UINT32_MAX;
    }
    for (size_t k = 1; k <= need; k++) {
        if (*i + k >= len) {
            *why = "unexpected end of data";
            return UINT32_MAX;
        }
        unsigned char d = s[*i + k];
        if ((d & 0xC0) != 0x80) {
            *why = "invalid continuation byte";
            return UINT32_MAX;
        }
        cp = (cp << 6) | (d & 0x3F);
        /* reject overlong 3/4-byte forms, surrogates and > U+10FFFF as soon as the second byte
         * tells, as CPython reports them: at the start byte, "invalid continuation byte" */
        if (k == 1 && ((need == 2 && c == 0xE0 && d < 0xA0) || (need == 2 && c == 0xED && d >= 0xA0) ||
                       (need == 3 && c == 0xF0 && d < 0x90) || (need == 3 && c == 0xF4 && d >= 0x90))) {
            *why = "invalid continuation byte";
            return UINT32_MAX;
        }
    }
    if (cp < min) {
        *why = "invalid start byte";
        return UINT32_MAX;
    }
    *i += need + 1;
    return cp;
}

zw_obj *
zw_str_from_utf8(zw_rt *rt, const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t n = 0;
    uint32_t maxchar = 0;
    size_t i = 0;
    while (i < len && s[i] < 0x80) /* the ASCII prefix, the common case */
        i++;
    n = i;
    while (i < len) {
        size_t at = i;
        const char *why = NULL;
        uint32_t cp = utf8_decode_one(s, len, &i, &why);
        if (cp == UINT32_MAX) {
            zw_err_set(rt, ZW_UnicodeDecodeError,
                       "'utf-8' codec can't decode byte 0x%02x in position %zu: %s", s[at], at,
                       why);
            return NULL;
        }
        if (cp > maxchar)
            maxchar = cp;
        n++;
    }
    if (maxchar < 0x80 && n > 0 && n == len) {
        zw_obj *o = str_alloc(rt, n, 0x7F);
        if (o != NULL)
            memcpy(ZWI_STR_DATA(o), s, n);
        return o;
    }
    zw_obj *o = str_alloc(rt, n, maxchar);
    if (o == NULL || n == 0)
        return o;
    void *data = ZWI_STR_DATA(o);
    unsigned kind = ZWI_STR_KIND(o);
    i = 0;
    for (size_t k = 0; k < n; k++) {
        const char *why;
        uint32_t cp = utf8_decode_one(s, len, &i, &why);
        put_char(data, kind, k, cp);
    }
    return o;
}

zw_obj *
zw_str_new(zw_rt *rt, const char *s)
{
    return zw_str_from_utf8(rt, s, strlen(s));
}

zw_obj *
zw_str_from_codepoints(zw_rt *rt, const uint32_t *cps, size_t n)
{
    uint32_t maxchar = 0;
    for (size_t i = 0; i < n; i++) {
        if (cps[i] > 0x10FFFF || (cps[i] >= 0xD800 && cps[i] <= 0xDFFF)) {
            zw_err_set(rt, ZW_ValueError, "code point 0x%x at index %zu is not a Unicode scalar "
                       "value (a surrogate or above U+10FFFF)", cps[i], i);
            return NULL;
        }
        if (cps[i] > maxchar)
            maxchar = cps[i];
    }
    zw_obj *o = str_alloc(rt, n, maxchar);
    if (o == NULL || n == 0)
        return o;
    void *data = ZWI_STR_DATA(o);
    unsigned kind = ZWI_STR_KIND(o);
    for (size_t i = 0; i < n; i++)
        put_char(data, kind, i, cps[i]);
    return o;
}

/* ---- access ---- */

intptr_t
zw_str_len(zw_obj *s)
{
    return ZWI_STR(s)->length;
}

int
zw_str_kind(zw_obj *s)
{
    return (int)ZWI_STR_KIND(s);
}

uint32_t
zw_str_char(zw_obj *s, size_t i)
{
    ZW_ASSERT(i < (size_t)ZWI_STR(s)->length);
    return get_char(ZWI_STR_DATA(s), ZWI_STR_KIND(s), i);
}

static size_t
utf8_encode_one(uint32_t c, char *out)
{
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (char)(0xC0 | (c >> 6));
        out[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = (char)(0xE0 | (c >> 12));
        out[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        out[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (c >> 18));
    out[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((c >> 6) & 0x3F));
    out[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

const char *
zw_str_utf8(zw_obj *o, size_t *len)
{
    zwi_str *s = ZWI_STR(o);
    if (ZWI_STR_IS_ASCII(o) || s->length == 0) {
        if (len != NULL)
            *len = (size_t)s->length;
        return ZWI_STR_DATA(o);
    }
    zwi_ustr *w = (zwi_ustr *)o;
    if (w->utf8 == NULL) {
        unsigned kind = ZWI_STR_KIND(o);
        const void *data = ZWI_STR_DATA(o);
        size_t n = 0;
        for (intptr_t i = 0; i < s->length; i++) {
            uint32_t c = get_char(data, kind, (size_t)i);
            n += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
        }
        char *buf = zwi_rt_malloc(ZWI_RT(o), n + 1);
        if (buf == NULL)
            return NULL;
        size_t k = 0;
        for (intptr_t i = 0; i < s->length; i++)
            k += utf8_encode_one(get_char(data, kind, (size_t)i), buf + k);
        buf[k] = '\0';
        w->utf8 = buf;
        w->utf8_length = (intptr_t)k;
    }
    if (len != NULL)
        *len = (size_t)w->utf8_length;
    return w->utf8;
}

/* ---- comparison ---- */

bool
zwi_str_equal(zw_obj *a, zw_obj *b)
{
    if (a == b)
        return true;
    zwi_str *x = ZWI_STR(a), *y = ZWI_STR(b);
    if (x->length != y->length || ZWI_STR_KIND(a) != ZWI_STR_KIND(b))
        return false;
    if (x->hash != -1 && y->hash != -1 && x->hash != y->hash)
        return false;
    return memcmp(ZWI_STR_DATA(a), ZWI_STR_DATA(b), (size_t)x->length * ZWI_STR_KIND(a)) == 0;
}

int
zw_str_cmp(zw_obj *a, zw_obj *b)
{
    unsigned ka = ZWI_STR_KIND(a), kb = ZWI_STR_KIND(b);
    const void *da = ZWI_STR_DATA(a), *db = ZWI_STR_DATA(b);
    size_t la = (size_t)ZWI_STR(a)->length, lb = (size_t)ZWI_STR(b)->length;
    size_t n = la < lb ? la : lb;
    if (ka == 1 && kb == 1) {
        int r = memcmp(da, db, n);
        if (r != 0)
            return r < 0 ? -1 : 1;
    } else {
        for (size_t i = 0; i < n; i++) {
            uint32_t x = get_char(da, ka, i), y = get_char(db, kb, i);
            if (x != y)
                return x < y ? -1 : 1;
        }
    }
    return la < lb ? -1 : la > lb ? 1 : 0;
}

bool
zw_str_eq_utf8(zw_obj *a, const char *s)
{
    size_t len;
    const char *u = zw_str_utf8(a, &len);
    if (u == NULL) {
        zw_err_clear(ZWI_RT(a));
        return false;
    }
    return strlen(s) == len && memcmp(u, s, len) == 0;
}

static int
str_compare(zw_obj *a, zw_obj *b, zw_cmp op)
{
    if (!zw_str_check(b))
        return ZW_CMP_UNSUPPORTED;
    if (op == ZW_EQ)
        return zwi_str_equal(a, b);
    if (op == ZW_NE)
        return !zwi_str_equal(a, b);
    int c = zw_str_cmp(a, b);
    switch (op) {
    case ZW_LT: return c < 0;
    case ZW_LE: return c <= 0;
    case ZW_GT: return c > 0;
    default: return c >= 0;
    }
}

/* ---- building ---- */

zw_obj *
zw_str_concat(zw_obj *a, zw_obj *b)
{
    zw_rt *rt = ZWI_RT(a);
    if (!zw_str_check(a) || !zw_str_check(b)) {
        zw_err_set(rt, ZW_TypeError, "can only concatenate str (not \"%s\") to str",
                   zw_str_check(a) ? b->type->name : a->type->name);
        return NULL;
    }
    size_t la = (size_t)ZWI_STR(a)->length, lb = (size_t)ZWI_STR(b)->length;
    if (la == 0)
        return zw_newref(b);
    if (lb == 0)
        return zw_newref(a);
    unsigned ka = ZWI_STR_KIND(a), kb = ZWI_STR_KIND(b);
    uint32_t maxchar = 0;
    if (!ZWI_STR_IS_ASCII(a) || !ZWI_STR_IS_ASCII(b)) {
        unsigned k = ka > kb ? ka : kb;
        maxchar = k == 1 ? 0xFF : k == 2 ? 0xFFFF : 0x10FFFF;
    }
    zw_obj *o = str_alloc(rt, la + lb, maxchar);
    if (o == NULL)
        return NULL;
    unsigned k = ZWI_STR_KIND(o);
    void *d = ZWI_STR_DATA(o);
    if (k == ka && k == kb) {
        memcpy(d, ZWI_STR_DATA(a), la * k);
        memcpy((char *)d + la * k, ZWI_STR_DATA(b), lb * k);
    } else {
        for (size_t i = 0; i < la; i++)
            put_char(d, k, i, get_char(ZWI_STR_DATA(a), ka, i));
        for (size_t i = 0; i < lb; i++)
            put_char(d, k, la + i, get_char(ZWI_STR_DATA(b), kb, i));
    }
    return o;
}

/* The widest kind's maxchar a str may hold: the kind is exact (narrowest), so it is enough to
 * know its kind and whether it is ASCII. */
static uint32_t
kind_maxchar(zw_obj *s)
{
    if (ZWI_STR_IS_ASCII(s))
        return 0x7F;
    unsigned k = ZWI_STR_KIND(s);
    return k == 1 ? 0xFF : k == 2 ? 0xFFFF : 0x10FFFF;
}

zw_obj *
zw_str_join(zw_obj *sep, zw_obj *iterable)
{
    zw_rt *rt = ZWI_RT(sep);
    zw_obj *items = zw_list_from_iter(iterable);
    if (items == NULL)
        return NULL;
    zw_obj *result = NULL;
    size_t n = zw_list_len(items);
    size_t total = n > 1 ? (size_t)ZWI_STR(sep)->length * (n - 1) : 0;
    uint32_t maxchar = n > 1 ? kind_maxchar(sep) : 0;
    for (size_t i = 0; i < n; i++) {
        zw_obj *s = zw_list_get(items, (intptr_t)i);
        if (!zw_str_check(s)) {
            zw_err_set(rt, ZW_TypeError, "sequence item %zu: expected str instance, %s found", i,
                       s->type->name);
            goto out;
        }
        total += (size_t)ZWI_STR(s)->length;
        uint32_t m = kind_maxchar(s);
        if (m > maxchar)
            maxchar = m;
    }
    if (n == 1) {
        result = zw_newref(zw_list_get(items, 0));
        goto out;
    }
    result = str_alloc(rt, total, maxchar);
    if (result == NULL || total == 0)
        goto out;
    unsigned k = ZWI_STR_KIND(result);
    void *d = ZWI_STR_DATA(result);
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        zw_obj *parts[2] = {i > 0 ? sep : NULL, zw_list_get(items, (intptr_t)i)};
        for (int p = 0; p < 2; p++) {
            zw_obj *s = parts[p];
            if (s == NULL)
                continue;
            size_t len = (size_t)ZWI_STR(s)->length;
            unsigned ks = ZWI_STR_KIND(s);
            if (ks == k)
                memcpy((char *)d + at * k, ZWI_STR_DATA(s), len * k);
            else
                for (size_t j = 0; j < len; j++)
                    put_char(d, k, at + j, get_char(ZWI_STR_DATA(s), ks, j));
            at += len;
        }
    }
out:
    zw_decref(items);
    return result;
}

/* ---- interning (as 3.11: the table's two references are not counted) ---- */

static bool
intern_table(zw_rt *rt)
{
    if (rt->interned == NULL)
        rt->interned = zw_dict_new(rt);
    return rt->interned != NULL;
}

int
zw_str_intern(zw_obj **ps)
{
    zw_obj *s = *ps;
    zw_rt *rt = ZWI_RT(s);
    if (s->type != rt->builtin[ZW_T_STR])
        return zw_err_set(rt, ZW_TypeError, "can't intern %s", s->type->name);
    zwi_str *u = ZWI_STR(s);
    if (u->state & (ZWI_STR_INTERNED | ZWI_STR_STATIC))
        return 0;
    if (!intern_table(rt))
        return -1;
    int64_t h = zwi_str_hash(s);
    zw_obj *t = zwi_dict_get_hashed(rt->interned, s, h);
    if (t != NULL) {
        zw_incref(t);
        zw_decref(s);
        *ps = t;
        return 0;
    }
    if (rt->exc != ZW_NoError || zwi_dict_set_hashed(rt->interned, s, h, s) != 0)
        return -1;
    s->refcnt -= 2; /* the table's key and value references are not counted */
    u->state |= ZWI_STR_INTERNED;
    return 0;
}

zw_obj *
zw_str_intern_utf8(zw_rt *rt, const char *text)
{
    zw_obj *s = zw_str_new(rt, text);
    if (s == NULL)
        return NULL;
    if (zw_str_intern(&s) != 0) {
        zw_decref(s);
        return NULL;
    }
    return s;
}

bool
zw_str_is_interned(const zw_obj *s)
{
    return (ZWI_STR(s)->state & (ZWI_STR_INTERNED | ZWI_STR_STATIC)) != 0;
}

/* ---- the type ---- */

static void
str_dealloc(zw_obj *o)
{
    zw_rt *rt = ZWI_RT(o);
    zwi_str *s = ZWI_STR(o);
    if (s->state & ZWI_STR_STATIC) {
        o->refcnt = ZWI_IMMORTAL_REFCNT;
        return;
    }
    if (s->state & ZWI_STR_INTERNED) {
        /* give the table its two references back, then take the entry out */
        o->refcnt = 3;
        s->state &= ~ZWI_STR_INTERNED;
        zw_exc saved = rt->exc;
        rt->exc = ZW_NoError;
        if (zw_dict_del(rt->interned, o) != 0)
            zw_err_clear(rt);
        rt->exc = saved;
        ZW_ASSERT(o->refcnt == 1);
        o->refcnt = 0;
    }
    if (!ZWI_STR_IS_ASCII(o) && ((zwi_ustr *)o)->utf8 != NULL)
        zwi_rt_free(rt, ((zwi_ustr *)o)->utf8);
    zw_obj_free(o);
}

static size_t
str_size_of(zw_obj *o)
{
    zwi_str *s = ZWI_STR(o);
    if (ZWI_STR_IS_ASCII(o))
        return sizeof(zwi_str) + (size_t)s->length + 1;
    zwi_ustr *w = (zwi_ustr *)o;
    size_t size = sizeof(zwi_ustr) + ((size_t)s->length + 1) * ZWI_STR_KIND(o);
    if (w->utf8 != NULL)
        size += (size_t)w->utf8_length + 1;
    return size;
}

static int64_t
str_hash(zw_obj *o)
{
    return zwi_str_hash(o);
}

/* repr as Python's: single quotes unless the text has ' and no "; escapes for \\, the quote,
 * \t \n \r and other control characters; printable non-ASCII kept (we treat every code point
 * from U+00A0 on as printable, a simplification of Python's Unicode tables). */
static zw_obj *
str_repr(zw_obj *o)
{
    zw_rt *rt = ZWI_RT(o);
    size_t n = (size_t)ZWI_STR(o)->length;
    unsigned kind = ZWI_STR_KIND(o);
    const void *data = ZWI_STR_DATA(o);
    bool has_sq = false, has_dq = false;
    size_t outlen = 2;
    uint32_t maxchar = 0x7F;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = get_char(data, kind, i);
        has_sq |= c == '\'';
        has_dq |= c == '"';
    }
    uint32_t quote = has_sq && !has_dq ? '"' : '\'';
    for (size_t i = 0; i < n; i++) {
        uint32_t c = get_char(data, kind, i);
        if (c == quote || c == '\\' || c == '\t' || c == '\n' || c == '\r')
            outlen += 2;
        else if (c < 0x20 || c == 0x7F || (c >= 0x80 && c < 0xA0))
            outlen += 4;
        else {
            outlen += 1;
            if (c > maxchar)
                maxchar = c;
        }
    }
    zw_obj *r = str_alloc(rt, outlen, maxchar);
    if (r == NULL)
        return NULL;
    unsigned rk = ZWI_STR_KIND(r);
    void *rd = ZWI_STR_DATA(r);
    size_t k = 0;
    static const char hex[] = "0123456789abcdef";
    put_char(rd, rk, k++, quote);
    for (size_t i = 0; i < n; i++) {
        uint32_t c = get_char(data, kind, i);
        if (c == quote || c == '\\') {
            put_char(rd, rk, k++, '\\');
            put_char(rd, rk, k++, c);
        } else if (c == '\t' || c == '\n' || c == '\r') {
            put_char(rd, rk, k++, '\\');
            put_char(rd, rk, k++, c == '\t' ? 't' : c == '\n' ? 'n' : 'r');
        } else if (c < 0x20 || c == 0x7F || (c >= 0x80 && c < 0xA0)) {
            put_char(rd, rk, k++, '\\');
            put_char(rd, rk, k++, 'x');
            put_char(rd, rk, k++, (uint32_t)hex[c >> 4]);
            put_char(rd, rk, k++, (uint32_t)hex[c & 15]);
        } else {
            put_char(rd, rk, k++, c);
        }
    }
    put_char(rd, rk, k++, quote);
    ZW_ASSERT(k == outlen);
    return r;
}

/* ---- iteration: one-character strings ---- */

typedef struct str_iter {
    zw_obj ob;
    zw_obj *s;   /* NULL once exhausted */
    size_t next; /* index of the next code point */
} str_iter;

static zw_obj *
str_iter_new(zw_obj *o)
{
    str_iter *it = (str_iter *)zw_obj_alloc(ZWI_TYPE(ZWI_RT(o), ZW_T_STR_ITER), 0);
    if (it == NULL)
        return NULL;
    it->s = zw_newref(o);
    return &it->ob;
}

static zw_obj *
str_iter_next(zw_obj *o)
{
    str_iter *it = (str_iter *)o;
    if (it->s == NULL)
        return NULL;
    if (it->next >= (size_t)ZWI_STR(it->s)->length) {
        ZW_CLEAR(it->s);
        return NULL;
    }
    uint32_t c = zw_str_char(it->s, it->next++);
    return zw_str_from_codepoints(ZWI_RT(o), &c, 1);
}

static int
str_iter_traverse(zw_obj *o, zw_visit_fn visit, void *arg)
{
    str_iter *it = (str_iter *)o;
    return it->s ? visit(it->s, arg) : 0;
}

ZW_HIDDEN const zw_type_spec zwi_str_spec = {
    .name = "str",
    .basicsize = sizeof(zwi_str),
    .flags = ZW_TPFLAGS_STR | ZW_TPFLAGS_BASETYPE | ZW_TPFLAGS_IMMUTABLE,
    .dealloc = str_dealloc,
    .repr = str_repr,
    .hash = str_hash,
    .compare = str_compare,
    .iter = str_iter_new,
    .size_of = str_size_of,
};

ZW_HIDDEN const zw_type_spec zwi_str_iter_spec = {
    .name = "str_ascii_iterator",
    .basicsize = sizeof(str_iter),
    .traverse = str_iter_traverse,
    .iter = NULL,
    .next = str_iter_next,
};

void
zwi_str_init(zw_rt *rt)
{
    derive_hash_keys(rt, (int64_t)rt->hash_k0);
    zwi_str *e = &rt->empty_str.s;
    zwi_init_static(&e->ob, rt->builtin[ZW_T_STR]);
    e->length = 0;
    e->hash = 0;
    e->state = 1 | ZWI_STR_ASCII | ZWI_STR_STATIC;
    rt->empty_str.data[0] = '\0';
}

void
zwi_str_fini(zw_rt *rt)
{
    if (rt->interned == NULL)
        return;
    /* give every interned string its two table references back, then drop the table */
    size_t pos = 0;
    zw_obj *k, *v;
    while (zw_dict_next(rt->interned, &pos, &k, &v)) {
        k->refcnt += 2;
        ZWI_STR(k)->state &= ~ZWI_STR_INTERNED;
    }
    ZW_CLEAR(rt->interned);
}
