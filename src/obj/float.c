/* obj/float.c - float: a 24-byte object holding a C double, as CPython 3.11's floatobject,
 * with its free list, its repr (the shortest text that reads back as the same double), its
 * hash (equal to the int hash for integral values) and exact comparisons with ints of any size.
 *
 * Free list: up to FREELIST_MAX dead floats wait on rt->float_free, linked through their type
 * field, rt->float_nfree of them; a float on the list is no live object (zwi_obj_cached) and
 * gets its header back from zwi_obj_revive. zwi_float_clear_freelist empties it. See
 * docs/obj.md, "Built-in types, layouts and sizes". */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zerowaste/obj.h>

#include "obj_internal.h"

#define FREELIST_MAX 100 /* as 3.11's PyFloat_MAXFREELIST */

#define HASH_BITS    61
#define HASH_MODULUS (((uint64_t)1 << HASH_BITS) - 1)
#define HASH_INF     314159 /* as sys.hash_info.inf */

#define FLOAT(o) ((zwi_float *)(o))

/* ---- life ---- */

zw_obj *
zw_float_new(zw_rt *rt, double v)
{
    zw_obj *o = rt->float_free;
    if (o != NULL) {
        rt->float_free = (zw_obj *)o->type;
        rt->float_nfree--;
        zwi_obj_revive(o, ZWI_TYPE(rt, ZW_T_FLOAT));
    } else if ((o = zw_obj_alloc(ZWI_TYPE(rt, ZW_T_FLOAT), 0)) == NULL) {
        return NULL;
    }
    FLOAT(o)->value = v;
    return o;
}

static void
float_dealloc(zw_obj *self)
{
    zw_rt *rt = ZWI_RT(self);
    if (self->type != ZWI_TYPE(rt, ZW_T_FLOAT) || rt->float_nfree >= FREELIST_MAX) {
        zw_obj_free(self); /* subclasses have other sizes; a full list frees */
        return;
    }
    zwi_obj_cached(self);
    self->type = (zw_type *)rt->float_free;
    rt->float_free = self;
    rt->float_nfree++;
}

void
zwi_float_clear_freelist(zw_rt *rt)
{
    while (rt->float_free != NULL) {
        zw_obj *o = rt->float_free;
        rt->float_free = (zw_obj *)o->type;
        o->type = ZWI_TYPE(rt, ZW_T_FLOAT); /* zwi_obj_forget finds the heap through it */
        zwi_obj_forget(o);
    }
    rt->float_nfree = 0;
}

bool
zw_float_check(const zw_obj *o)
{
    return (o->type->flags & ZW_TPFLAGS_FLOAT) != 0;
}

/* ---- ints as doubles ---- */

static size_t
int_ndigits(const zw_obj *o)
{
    intptr_t size = ((const zwi_int *)o)->vo.size;
    return (size_t)(size < 0 ? -size : size);
}

/* Bits of |o|. */
static size_t
int_bit_length(const zw_obj *o)
{
    size_t n = int_ndigits(o);
    if (n == 0)
        return 0;
    zwi_digit top = ((const zwi_int *)o)->digits[n - 1];
    return (n - 1) * ZWI_DIGIT_BITS + (size_t)(32 - __builtin_clz(top));
}

/* Bits [lo, lo + 64) of |o| (bits past the top are 0). */
static uint64_t
int_bits_at(const zw_obj *o, size_t lo)
{
    const zwi_digit *d = ((const zwi_int *)o)->digits;
    size_t n = int_ndigits(o);
    uint64_t out = 0;
    for (size_t i = lo / ZWI_DIGIT_BITS; i < n; i++) {
        long shift = (long)(i * ZWI_DIGIT_BITS) - (long)lo; /* where digit i lands in out */
        if (shift >= 64)
            break;
        out |= shift >= 0 ? (uint64_t)d[i] << shift : (uint64_t)d[i] >> -shift;
    }
    return out;
}

/* True if any of the bits [0, hi) of |o| is set. */
static bool
int_any_bits_below(const zw_obj *o, size_t hi)
{
    const zwi_digit *d = ((const zwi_int *)o)->digits;
    size_t full = hi / ZWI_DIGIT_BITS;
    for (size_t i = 0; i < full; i++)
        if (d[i] != 0)
            return true;
    unsigned rest = hi % ZWI_DIGIT_BITS;
    return rest != 0 && (d[full] & (((zwi_digit)1 << rest) - 1)) != 0;
}

/* The double nearest to an int (ties to even, as PyLong_AsDouble); OverflowError past
 * DBL_MAX. Takes the top 55 bits with a sticky bit for the rest, so that the one rounding
 * the conversion to double makes is the right one. */
static double
int_to_double(zw_obj *o, bool *overflow)
{
    *overflow = false;
    size_t nbits = int_bit_length(o);
    double mag;
    if (nbits <= 63) {
        mag = (double)int_bits_at(o, 0);
    } else {
        if (nbits > DBL_MAX_EXP) {
            *overflow = true;
            return -1.0;
        }
        size_t lo = nbits - (DBL_MANT_DIG + 2);
        uint64_t top = int_bits_at(o, lo) & (((uint64_t)1 << (DBL_MANT_DIG + 2)) - 1);
        top |= int_any_bits_below(o, lo) ? 1 : 0;
        mag = ldexp((double)top, (int)lo);
        if (isinf(mag)) {
            *overflow = true;
            return -1.0;
        }
    }
    return ((const zwi_int *)o)->vo.size < 0 ? -mag : mag;
}

double
zw_float_as_double(zw_obj *o)
{
    if (zw_float_check(o))
        return FLOAT(o)->value;
    zw_rt *rt = ZWI_RT(o);
    if (!zw_int_check(o)) {
        zw_err_set(rt, ZW_TypeError, "must be real number, not %s", o->type->name);
        return -1.0;
    }
    bool overflow;
    double v = int_to_double(o, &overflow);
    if (overflow)
        zw_err_set(rt, ZW_OverflowError, "int too large to convert to float");
    return v;
}

/* ---- comparison ---- */

/* -1, 0, 1 as |i| <, ==, > the finite integral double m >= 0: compares m's bits with the
 * int's, so it is exact for every size. */
static int
mag_cmp_integral(const zw_obj *i, double m)
{
    int e;
    double frac = frexp(m, &e); /* m = frac * 2**e, 0.5 <= frac < 1, or m = 0 */
    size_t ibits = int_bit_length(i);
    size_t mbits = m == 0.0 ? 0 : (size_t)e;
    if (ibits != mbits)
        return ibits < mbits ? -1 : 1;
    if (mbits == 0)
        return 0;
    /* same bit length: compare the 53 bits of m with the int's top 53 bits, then the rest */
    size_t keep = mbits < DBL_MANT_DIG ? mbits : DBL_MANT_DIG;
    uint64_t mtop = (uint64_t)ldexp(frac, (int)keep);
    uint64_t itop = int_bits_at(i, mbits - keep) & (((uint64_t)1 << keep) - 1);
    if (itop != mtop)
        return itop < mtop ? -1 : 1;
    return int_any_bits_below(i, mbits - keep) ? 1 : 0;
}

/* -1, 0, 1 as the int i <, ==, > the finite double f. */
static int
int_cmp_double(const zw_obj *i, double f)
{
    intptr_t size = ((const zwi_int *)i)->vo.size;
    int si = size < 0 ? -1 : size > 0;
    int sf = f < 0.0 ? -1 : f > 0.0;
    if (si != sf)
        return si < sf ? -1 : 1;
    if (si == 0)
        return 0;
    double m = fabs(f);
    /* floor(m) without libm: a double >= 2**52 has no fraction, a smaller one truncates */
    double whole = m >= 0x1p52 ? m : (double)(uint64_t)m;
    int c = mag_cmp_integral(i, whole);
    if (c == 0 && m != whole)
        c = -1; /* |i| == floor(|f|) < |f| */
    return si < 0 ? -c : c;
}

static int
cmp_result(int c, zw_cmp op)
{
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

/* float with float, or float with int (exactly, as CPython's float_richcompare: 2**53 + 1 is
 * not equal to 2.0**53). NaN is unordered: only != holds. */
static int
float_compare(zw_obj *a, zw_obj *b, zw_cmp op)
{
    double x = FLOAT(a)->value;
    if (zw_float_check(b)) {
        double y = FLOAT(b)->value;
        switch (op) {
        case ZW_LT:
            return x < y;
        case ZW_LE:
            return x <= y;
        case ZW_EQ:
            return x == y;
        case ZW_NE:
            return x != y;
        case ZW_GT:
            return x > y;
        default:
            return x >= y;
        }
    }
    if (!zw_int_check(b))
        return ZW_CMP_UNSUPPORTED;
    if (isnan(x))
        return op == ZW_NE;
    int c = isinf(x) ? (x > 0 ? 1 : -1) : -int_cmp_double(b, x); /* x vs b */
    return cmp_result(c, op);
}

/* ---- hashing, as CPython's _Py_HashDouble ---- */

int64_t
zwi_hash_double(double v)
{
    if (!isfinite(v))
        return isinf(v) ? (v > 0 ? HASH_INF : -HASH_INF) : 0;
    int e;
    double m = frexp(v, &e);
    int sign = 1;
    if (m < 0) {
        sign = -1;
        m = -m;
    }
    /* x = m * 2**e mod (2**61 - 1), 28 bits of the mantissa at a time */
    uint64_t x = 0;
    while (m != 0.0) {
        x = ((x << 28) & HASH_MODULUS) | x >> (HASH_BITS - 28);
        m *= 268435456.0; /* 2**28 */
        e -= 28;
        uint64_t y = (uint64_t)m;
        m -= (double)y;
        x += y;
        if (x >= HASH_MODULUS)
            x -= HASH_MODULUS;
    }
    /* multiply by 2**e: a rotation, since 2**61 == 1 modulo the modulus */
    e = e >= 0 ? e % HASH_BITS : HASH_BITS - 1 - ((-1 - e) % HASH_BITS);
    x = ((x << e) & HASH_MODULUS) | x >> (HASH_BITS - e);
    int64_t h = sign < 0 ? -(int64_t)x : (int64_t)x;
    return h == -1 ? -2 : h;
}

static int64_t
float_hash(zw_obj *self)
{
    double v = FLOAT(self)->value;
    if (isnan(v)) {
        /* 3.10+: a NaN hashes by identity, as _Py_HashPointer */
        uintptr_t y = (uintptr_t)self;
        y = (y >> 4) | (y << (8 * sizeof(y) - 4));
        int64_t h = (int64_t)y;
        return h == -1 ? -2 : h;
    }
    return zwi_hash_double(v);
}

/* ---- repr: the shortest text that reads back as the same double, in Python's layout ---- */

/* The significand and exponent of a decimal in scientific form: digits[0 .. nd), no dot. */
typedef struct decimal {
    char digits[24];
    size_t nd;
    int exp;
} decimal;

/* Parses snprintf's "%.*e" text of a positive double: d[.ddd]e[+-]xx. */
static void
decimal_parse(const char *sci, decimal *d)
{
    const char *p = sci;
    d->nd = 0;
    for (; *p != 'e'; p++)
        if (*p != '.')
            d->digits[d->nd++] = *p;
    d->exp = atoi(p + 1);
}

/* The value of d, as strtod reads it. */
static double
decimal_value(const decimal *d)
{
    char text[48];
    size_t n = 0;
    text[n++] = d->digits[0];
    text[n++] = '.';
    for (size_t i = 1; i < d->nd; i++)
        text[n++] = d->digits[i];
    snprintf(text + n, sizeof(text) - n, "e%d", d->exp);
    return strtod(text, NULL);
}

/* Moves d to the next decimal of as many digits up (+1 in the last place) or down. */
static void
decimal_step(decimal *d, bool up)
{
    size_t i = d->nd;
    if (up) {
        while (i > 0 && d->digits[i - 1] == '9')
            d->digits[--i] = '0';
        if (i > 0) {
            d->digits[i - 1]++;
        } else { /* 9.99 -> 10.0: one more digit before the point, as 1.00 one place up */
            d->digits[0] = '1';
            d->exp++;
        }
    } else {
        while (i > 0 && d->digits[i - 1] == '0')
            d->digits[--i] = '9';
        d->digits[i - 1]--;        /* d > 0, so some digit is not 0 */
        if (d->digits[0] == '0') { /* 1.00 -> 0.999: 9.99 one place down */
            memmove(d->digits, d->digits + 1, d->nd - 1);
            d->digits[d->nd - 1] = '9';
            d->exp--;
        }
    }
}

/* The shortest decimal that reads back as v > 0 and, among those, the nearest to v: the result
 * of David Gay's mode 0, which CPython's repr uses. For each length p from 1 to 17, the
 * correctly rounded p-digit decimal (%.*e) is the nearest; if it does not read back, its
 * neighbour on the other side of v still may, when v's rounding interval is lopsided (v a
 * power of two: the gap above is twice the gap below), so we try that one too. */
static void
shortest_decimal(double v, decimal *d)
{
    char sci[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(sci, sizeof(sci), "%.*e", prec - 1, v);
        decimal_parse(sci, d);
        double back = decimal_value(d);
        if (back == v || prec == 17)
            return;
        decimal other = *d;
        decimal_step(&other, back < v);
        if (decimal_value(&other) == v) {
            *d = other;
            return;
        }
    }
}

/* Python's repr(float): the shortest round-tripping significand (shortest_decimal), then
 * fixed notation for decimal exponents -4 <= exp < 16 and scientific notation ("1e+16",
 * "1.5e-05") otherwise. */
static size_t
format_double(double v, char *out, size_t cap)
{
    if (isnan(v))
        return (size_t)snprintf(out, cap, "nan");
    if (isinf(v))
        return (size_t)snprintf(out, cap, v > 0 ? "inf" : "-inf");
    if (v == 0.0)
        return (size_t)snprintf(out, cap, signbit(v) ? "-0.0" : "0.0");
    bool neg = v < 0;
    decimal d;
    shortest_decimal(fabs(v), &d);
    const char *digits = d.digits;
    size_t nd = d.nd;
    int exp = d.exp;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    size_t n = 0;
#define PUT(c) (n < cap - 1 ? (void)(out[n++] = (c)) : (void)0)
    if (neg)
        PUT('-');
    if (exp >= -4 && exp < 16) {
        if (exp < 0) {
            PUT('0');
            PUT('.');
            for (int k = 0; k < -exp - 1; k++)
                PUT('0');
            for (size_t k = 0; k < nd; k++)
                PUT(digits[k]);
        } else {
            for (int k = 0; k <= exp; k++)
                PUT((size_t)k < nd ? digits[k] : '0');
            PUT('.');
            if ((size_t)exp + 1 < nd)
                for (size_t k = (size_t)exp + 1; k < nd; k++)
                    PUT(digits[k]);
            else
                PUT('0');
        }
    } else {
        PUT(digits[0]);
        if (nd > 1) {
            PUT('.');
            for (size_t k = 1; k < nd; k++)
                PUT(digits[k]);
        }
        char e[16];
        snprintf(e, sizeof(e), "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
        for (const char *q = e; *q != '\0'; q++)
            PUT(*q);
    }
#undef PUT
    out[n] = '\0';
    return n;
}

static zw_obj *
float_repr(zw_obj *self)
{
    char buf[40]; /* "-1.2345678901234567e-308" and the fixed forms fit easily */
    size_t n = format_double(FLOAT(self)->value, buf, sizeof(buf));
    return zw_str_from_utf8(ZWI_RT(self), buf, n);
}

ZW_HIDDEN const zw_type_spec zwi_float_spec = {
    .name = "float",
    .basicsize = sizeof(zwi_float),
    .flags = ZW_TPFLAGS_FLOAT | ZW_TPFLAGS_BASETYPE | ZW_TPFLAGS_IMMUTABLE,
    .dealloc = float_dealloc,
    .repr = float_repr,
    .hash = float_hash,
    .compare = float_compare,
};
