/* obj/bytes.c - bytes and its iterator, laid out as CPython 3.11's bytesobject: a 24-byte
 * variable-size header, a cached hash, then the bytes and a NUL (33 + len bytes).
 *
 * Invariants: data[size] == 0, so zw_bytes_data is a C string when the bytes hold no NUL;
 * hash is -1 until first asked for, then zwi_obj_hash_bytes of the data (siphash13 with the
 * runtime's keys: a bytes hashes as the str of the same Latin-1 text, as in CPython); the
 * empty bytes is the runtime's singleton (rt->empty_bytes), never a new object. 3.11 also
 * keeps the 256 one-byte bytes as singletons; we do not (they are ordinary 34-byte objects).
 * See docs/obj.md, "Built-in types, layouts and sizes". */
#include <stdint.h>
#include <string.h>

#include <zerowaste/obj.h>

#include "obj_internal.h"

#define BYTES(o) ((zwi_bytes *)(o))

#define STACK_REPR 256 /* a repr up to this long is built on the stack */

/* ---- construction ---- */

static inline bool
is_bytes(const zw_obj *o)
{
    return (o->type->flags & ZW_TPFLAGS_BYTES) != 0;
}

/* A new bytes of `len` bytes, zeroed (the caller fills them), or the empty singleton. */
static zw_obj *
bytes_alloc(zw_rt *rt, size_t len)
{
    if (len == 0)
        return zw_newref(&rt->empty_bytes.b.vo.ob);
    if (len > (size_t)INTPTR_MAX - ZWI_BYTES_BASICSIZE - 8) {
        zw_err_set(rt, ZW_OverflowError, "byte string is too large");
        return NULL;
    }
    zw_obj *o = zw_obj_alloc(ZWI_TYPE(rt, ZW_T_BYTES), len);
    if (o != NULL)
        BYTES(o)->hash = -1; /* zw_obj_alloc zeroed the rest, the final NUL included */
    return o;
}

zw_obj *
zw_bytes_new(zw_rt *rt, const void *data, size_t len)
{
    zw_obj *o = bytes_alloc(rt, len);
    if (o != NULL && len != 0)
        memcpy(BYTES(o)->data, data, len);
    return o;
}

zw_obj *
zw_bytes_concat(zw_obj *a, zw_obj *b)
{
    zw_rt *rt = ZWI_RT(a);
    if (!is_bytes(a) || !is_bytes(b)) {
        zw_err_set(rt, ZW_TypeError, "can't concat %s to %s", b->type->name, a->type->name);
        return NULL;
    }
    size_t na = (size_t)BYTES(a)->vo.size;
    size_t nb = (size_t)BYTES(b)->vo.size;
    /* as CPython: an empty operand gives back the other one if it is an exact bytes */
    if (nb == 0 && a->type == ZWI_TYPE(rt, ZW_T_BYTES))
        return zw_newref(a);
    if (na == 0 && b->type == ZWI_TYPE(rt, ZW_T_BYTES))
        return zw_newref(b);
    if (na > (size_t)INTPTR_MAX - nb) {
        zw_err_nomemory(rt);
        return NULL;
    }
    zw_obj *o = bytes_alloc(rt, na + nb);
    if (o == NULL)
        return NULL;
    memcpy(BYTES(o)->data, BYTES(a)->data, na);
    memcpy(BYTES(o)->data + na, BYTES(b)->data, nb);
    return o;
}

/* ---- access ---- */

bool
zw_bytes_check(const zw_obj *o)
{
    return is_bytes(o);
}

const char *
zw_bytes_data(zw_obj *b)
{
    if (!is_bytes(b)) {
        zwi_type_error_unsupported(b, "is not bytes");
        return NULL;
    }
    return BYTES(b)->data;
}

size_t
zw_bytes_len(zw_obj *b)
{
    if (!is_bytes(b)) {
        zwi_type_error_unsupported(b, "is not bytes");
        return 0;
    }
    return (size_t)BYTES(b)->vo.size;
}

/* ---- the bytes type ---- */

/* repr(b): b'...' with \\, the quote, \t \n \r escaped and bytes outside ' '..'~' as \xhh;
 * double quotes when the data holds ' but no ", as CPython's bytes_repr. */
static zw_obj *
bytes_repr(zw_obj *self)
{
    zw_rt *rt = ZWI_RT(self);
    const unsigned char *d = (const unsigned char *)BYTES(self)->data;
    size_t n = (size_t)BYTES(self)->vo.size;
    bool single = memchr(d, '\'', n) != NULL;
    char quote = single && memchr(d, '"', n) == NULL ? '"' : '\'';
    size_t len = 3; /* b and the quotes */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = d[i];
        if (c == (unsigned char)quote || c == '\\' || c == '\t' || c == '\n' || c == '\r')
            len += 2;
        else if (c < ' ' || c >= 0x7f)
            len += 4;
        else
            len += 1;
    }
    char stack[STACK_REPR];
    char *out = len <= sizeof(stack) ? stack : zwi_rt_malloc(rt, len);
    if (out == NULL)
        return NULL;
    static const char hex[] = "0123456789abcdef";
    char *p = out;
    *p++ = 'b';
    *p++ = quote;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = d[i];
        if (c == (unsigned char)quote || c == '\\') {
            *p++ = '\\';
            *p++ = (char)c;
        } else if (c == '\t' || c == '\n' || c == '\r') {
            *p++ = '\\';
            *p++ = c == '\t' ? 't' : c == '\n' ? 'n' : 'r';
        } else if (c < ' ' || c >= 0x7f) {
            *p++ = '\\';
            *p++ = 'x';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        } else {
            *p++ = (char)c;
        }
    }
    *p++ = quote;
    ZW_ASSERT((size_t)(p - out) == len);
    zw_obj *s = zw_str_from_utf8(rt, out, len);
    if (out != stack)
        zwi_rt_free(rt, out);
    return s;
}

static int64_t
bytes_hash(zw_obj *self)
{
    zwi_bytes *b = BYTES(self);
    if (b->hash == -1)
        b->hash = zwi_obj_hash_bytes(ZWI_RT(self), b->data, (size_t)b->vo.size);
    return b->hash;
}

/* Lexicographic by unsigned byte, a prefix first; only with bytes. */
static int
bytes_compare(zw_obj *a, zw_obj *b, zw_cmp op)
{
    if (!is_bytes(b))
        return ZW_CMP_UNSUPPORTED;
    size_t na = (size_t)BYTES(a)->vo.size;
    size_t nb = (size_t)BYTES(b)->vo.size;
    if ((op == ZW_EQ || op == ZW_NE) && na != nb)
        return op == ZW_NE;
    int c = a == b ? 0 : memcmp(BYTES(a)->data, BYTES(b)->data, na < nb ? na : nb);
    if (c == 0)
        c = na < nb ? -1 : na > nb;
    switch (op) {
    case ZW_LT:
        return c < 0;
    case ZW_LE:
        return c <= 0;
    case ZW_EQ:
        return c == 0;
    case ZW_NE:
        return c != 0;
    case ZW_GT:
        return c > 0;
    default:
        return c >= 0;
    }
}

static void
bytes_dealloc(zw_obj *self)
{
    zw_obj_free(self);
}

/* ---- the iterator: yields each byte as an int (0..255 are small ints: no allocation) ---- */

typedef struct bytes_iter {
    zw_obj ob;
    intptr_t index; /* next byte to yield */
    zw_obj *seq;    /* the bytes (owned), NULL once exhausted */
} bytes_iter;       /* 32 + GC header: 48, as 3.11's bytes_iterator */

static zw_obj *
bytes_iter_new(zw_obj *self)
{
    zw_rt *rt = ZWI_RT(self);
    bytes_iter *it = (bytes_iter *)zw_obj_alloc(ZWI_TYPE(rt, ZW_T_BYTES_ITER), 0);
    if (it == NULL)
        return NULL;
    it->index = 0;
    it->seq = zw_newref(self);
    zwi_gc_track(&it->ob);
    return &it->ob;
}

static zw_obj *
bytes_iter_next(zw_obj *self)
{
    bytes_iter *it = (bytes_iter *)self;
    if (it->seq == NULL)
        return NULL;
    zwi_bytes *b = BYTES(it->seq);
    if (it->index < b->vo.size)
        return zw_int_from_i64(ZWI_RT(self), (unsigned char)b->data[it->index++]);
    ZW_CLEAR(it->seq);
    return NULL;
}

static int
bytes_iter_traverse(zw_obj *self, zw_visit_fn visit, void *arg)
{
    bytes_iter *it = (bytes_iter *)self;
    return it->seq != NULL ? visit(it->seq, arg) : 0;
}

static void
bytes_iter_dealloc(zw_obj *self)
{
    zwi_gc_untrack(self);
    ZW_CLEAR(((bytes_iter *)self)->seq);
    zw_obj_free(self);
}

ZW_HIDDEN const zw_type_spec zwi_bytes_iter_spec = {
    .name = "bytes_iterator",
    .basicsize = sizeof(bytes_iter),
    .flags = ZW_TPFLAGS_GC,
    .dealloc = bytes_iter_dealloc,
    .traverse = bytes_iter_traverse,
    .next = bytes_iter_next,
};

ZW_HIDDEN const zw_type_spec zwi_bytes_spec = {
    .name = "bytes",
    .basicsize = ZWI_BYTES_BASICSIZE,
    .itemsize = 1,
    .flags = ZW_TPFLAGS_BYTES | ZW_TPFLAGS_IMMUTABLE | ZW_TPFLAGS_BASETYPE,
    .dealloc = bytes_dealloc,
    .repr = bytes_repr,
    .hash = bytes_hash,
    .compare = bytes_compare,
    .iter = bytes_iter_new,
};

/* ---- the runtime's empty bytes ---- */

void
zwi_bytes_init(zw_rt *rt)
{
    zwi_bytes *b = &rt->empty_bytes.b;
    zwi_init_static(&b->vo.ob, ZWI_TYPE(rt, ZW_T_BYTES));
    b->vo.size = 0;
    b->hash = -1;
    b->data[0] = '\0';
}
