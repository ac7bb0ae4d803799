/* obj/int.c - int and bool: integers of any size in 30-bit digits, laid out as CPython 3.11's
 * longobject, with its arithmetic, decimal conversions, hash and sizes (docs/obj.md, "Built-in
 * types, layouts and sizes").
 *
 * Invariants of every int this file hands out:
 *   - |size| digits, least significant first, the sign of size is the sign of the number;
 *   - normalised: the top digit (digits[|size| - 1]) is not 0, so 0 has size 0;
 *   - the allocation holds max(1, |size|) digits, so 0 takes 28 bytes as in 3.11;
 *   - a result in -5..256 is the runtime's singleton (rt->small_ints), never a new object;
 *     results of arithmetic are exact ints even when an operand is a bool or a subclass.
 * The algorithms are CPython's (Objects/longobject.c): schoolbook multiplication below 70
 * digits and Karatsuba above, Knuth's algorithm D for division, quadratic conversions to and
 * from decimal in base 10**9 chunks.
 * Values of one or two digits (|v| < 2**60) take int64 fast paths everywhere. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <zerowaste/obj.h>

#include "obj_internal.h"

typedef uint64_t twodigits; /* a product of two digits plus carries */
typedef int64_t stwodigits; /* the same, signed, for borrows in the division */

#define HASH_BITS    61
#define HASH_MODULUS (((uint64_t)1 << HASH_BITS) - 1) /* a Mersenne prime, as sys.hash_info */

#define DECIMAL_SHIFT 9 /* decimal digits per base-10**9 chunk */
#define DECIMAL_BASE  1000000000u

#define STACK_TEXT 128 /* decimal text up to this long is built on the stack */

/* ---- helpers on the layout ---- */

#define INT(o)  ((zwi_int *)(o))
#define SIZE(o) (INT(o)->vo.size)
#define NDIG(o) ((size_t)(SIZE(o) < 0 ? -SIZE(o) : SIZE(o)))

static inline bool
is_int(const zw_obj *o)
{
    return (o->type->flags & ZW_TPFLAGS_INT) != 0;
}

/* The value of an int of at most two digits (|v| < 2**60). */
static inline int64_t
small_value(const zw_obj *o)
{
    intptr_t size = SIZE(o);
    const zwi_digit *d = INT(o)->digits;
    switch (size) {
    case 0:
        return 0;
    case 1:
        return (int64_t)d[0];
    case -1:
        return -(int64_t)d[0];
    case 2:
        return (int64_t)d[0] | (int64_t)d[1] << ZWI_DIGIT_BITS;
    default:
        ZW_ASSERT(size == -2);
        return -((int64_t)d[0] | (int64_t)d[1] << ZWI_DIGIT_BITS);
    }
}

static inline bool
is_small_int(int64_t v)
{
    return v >= -ZWI_SMALL_NEG && v < ZWI_SMALL_POS;
}

static inline zw_obj *
small_int(zw_rt *rt, int64_t v)
{
    zw_obj *o = &rt->small_ints[v + ZWI_SMALL_NEG].i.vo.ob;
    zw_incref(o);
    return o;
}

/* A new exact int with room for `n` digits (at least one) and size n (the caller fills the
 * digits, then sets the sign and normalises). NULL with MemoryError.
 *
 * The hot path of the whole file: int is no GC type and has no pre-header, and the caller
 * writes every digit, so nothing needs zw_obj_alloc's zeroing and checks;
 * zwi_obj_alloc_sized is inline (obj_internal.h). */
static inline __attribute__((always_inline)) zw_obj *
int_alloc(zw_rt *rt, size_t n)
{
    if (n > (size_t)INTPTR_MAX / 8) { /* 3.11's MAX_LONG_DIGITS, roughly */
        zw_err_set(rt, ZW_OverflowError, "too many digits in integer");
        return NULL;
    }
    size_t bytes = (ZWI_INT_BASICSIZE + (n == 0 ? 1 : n) * sizeof(zwi_digit) + 7) & ~(size_t)7;
    zw_obj *o = zwi_obj_alloc_sized(ZWI_TYPE(rt, ZW_T_INT), bytes);
    if (o == NULL)
        return NULL;
    SIZE(o) = (intptr_t)n;
    INT(o)->digits[0] = 0; /* the digit of 0 */
    return o;
}

/* Drops leading zero digits of a fresh int of non-negative size, gives it `sign` and returns
 * it, or the small-int singleton of its value (freeing it): every result goes through here. */
static zw_obj *
int_finish(zw_obj *o, int sign)
{
    size_t n = (size_t)SIZE(o);
    const zwi_digit *d = INT(o)->digits;
    while (n > 0 && d[n - 1] == 0)
        n--;
    SIZE(o) = sign < 0 ? -(intptr_t)n : (intptr_t)n;
    if (n <= 1) {
        int64_t v = small_value(o);
        if (is_small_int(v)) {
            zw_rt *rt = ZWI_RT(o);
            zw_decref(o);
            return small_int(rt, v);
        }
    }
    return o;
}

/* A new int of value v (any int64). */
static zw_obj *
int_from_i64(zw_rt *rt, int64_t v)
{
    if (is_small_int(v))
        return small_int(rt, v);
    uint64_t mag = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    if (ZW_LIKELY(mag < ZWI_DIGIT_BASE)) { /* one digit: the common case */
        zw_obj *o = int_alloc(rt, 1);
        if (o == NULL)
            return NULL;
        INT(o)->digits[0] = (zwi_digit)mag;
        SIZE(o) = v < 0 ? -1 : 1;
        return o;
    }
    size_t n = mag < (uint64_t)1 << 2 * ZWI_DIGIT_BITS ? 2 : 3;
    zw_obj *o = int_alloc(rt, n);
    if (o == NULL)
        return NULL;
    zwi_digit *d = INT(o)->digits;
    for (size_t i = 0; i < n; i++, mag >>= ZWI_DIGIT_BITS)
        d[i] = (zwi_digit)(mag & ZWI_DIGIT_MASK);
    SIZE(o) = v < 0 ? -(intptr_t)n : (intptr_t)n;
    return o;
}

static int
digit_bits(zwi_digit d)
{
    return d == 0 ? 0 : 32 - __builtin_clz(d);
}

static const char *
type_name(const zw_obj *o)
{
    return o->type->name;
}

static zw_obj *
binop_type_error(zw_obj *a, zw_obj *b, const char *op)
{
    zw_err_set(ZWI_RT(a), ZW_TypeError, "unsupported operand type(s) for %s: '%s' and '%s'", op,
               type_name(a), type_name(b));
    return NULL;
}

/* ---- magnitudes: the digit loops, signs left to the callers ---- */

/* -1, 0, 1 as |a| <, ==, > |b|. */
static int
mag_cmp(const zw_obj *a, const zw_obj *b)
{
    size_t na = NDIG(a);
    size_t nb = NDIG(b);
    if (na != nb)
        return na < nb ? -1 : 1;
    const zwi_digit *da = INT(a)->digits;
    const zwi_digit *db = INT(b)->digits;
    for (size_t i = na; i-- > 0;)
        if (da[i] != db[i])
            return da[i] < db[i] ? -1 : 1;
    return 0;
}

/* |a| + |b| with the sign `sign`. */
static zw_obj *
mag_add(zw_obj *a, zw_obj *b, int sign)
{
    if (NDIG(a) < NDIG(b)) {
        zw_obj *t = a;
        a = b;
        b = t;
    }
    size_t na = NDIG(a);
    size_t nb = NDIG(b);
    zw_obj *z = int_alloc(ZWI_RT(a), na + 1);
    if (z == NULL)
        return NULL;
    const zwi_digit *da = INT(a)->digits;
    const zwi_digit *db = INT(b)->digits;
    zwi_digit *dz = INT(z)->digits;
    zwi_digit carry = 0;
    size_t i = 0;
    for (; i < nb; i++) {
        carry += da[i] + db[i];
        dz[i] = carry & ZWI_DIGIT_MASK;
        carry >>= ZWI_DIGIT_BITS;
    }
    for (; i < na; i++) {
        carry += da[i];
        dz[i] = carry & ZWI_DIGIT_MASK;
        carry >>= ZWI_DIGIT_BITS;
    }
    dz[i] = carry;
    return int_finish(z, sign);
}

/* |a| - |b| with the sign `sign` flipped when |a| < |b|. */
static zw_obj *
mag_sub(zw_obj *a, zw_obj *b, int sign)
{
    int c = mag_cmp(a, b);
    if (c == 0)
        return small_int(ZWI_RT(a), 0);
    if (c < 0) {
        zw_obj *t = a;
        a = b;
        b = t;
        sign = -sign;
    }
    size_t na = NDIG(a);
    size_t nb = NDIG(b);
    zw_obj *z = int_alloc(ZWI_RT(a), na);
    if (z == NULL)
        return NULL;
    const zwi_digit *da = INT(a)->digits;
    const zwi_digit *db = INT(b)->digits;
    zwi_digit *dz = INT(z)->digits;
    zwi_digit borrow = 0;
    size_t i = 0;
    for (; i < nb; i++) {
        borrow = da[i] - db[i] - borrow; /* wraps: the top bit says we borrowed */
        dz[i] = borrow & ZWI_DIGIT_MASK;
        borrow = (borrow >> ZWI_DIGIT_BITS) & 1;
    }
    for (; i < na; i++) {
        borrow = da[i] - borrow;
        dz[i] = borrow & ZWI_DIGIT_MASK;
        borrow = (borrow >> ZWI_DIGIT_BITS) & 1;
    }
    ZW_ASSERT(borrow == 0);
    return int_finish(z, sign);
}

/* z[0 .. na + nb) = a * b, schoolbook: O(na * nb). */
static void
digits_mul_school(const zwi_digit *a, size_t na, const zwi_digit *b, size_t nb, zwi_digit *z)
{
    memset(z, 0, (na + nb) * sizeof(zwi_digit));
    for (size_t i = 0; i < na; i++) {
        twodigits f = a[i];
        twodigits carry = 0;
        zwi_digit *pz = z + i;
        /* pz[j] + b[j] * f + carry < 2**30 + 2**60 + 2**31: no overflow */
        for (size_t j = 0; j < nb; j++) {
            carry += pz[j] + b[j] * f;
            pz[j] = (zwi_digit)(carry & ZWI_DIGIT_MASK);
            carry >>= ZWI_DIGIT_BITS;
        }
        pz[nb] = (zwi_digit)carry;
    }
}

/* Digits of d[0 .. n) without its leading zeros. */
static size_t
digits_len(const zwi_digit *d, size_t n)
{
    while (n > 0 && d[n - 1] == 0)
        n--;
    return n;
}

/* z[0 .. nz) += a[0 .. na) (na <= nz), carries past nz dropped. */
static void
digits_iadd(zwi_digit *z, size_t nz, const zwi_digit *a, size_t na)
{
    zwi_digit carry = 0;
    size_t i = 0;
    for (; i < na; i++) {
        carry += z[i] + a[i];
        z[i] = carry & ZWI_DIGIT_MASK;
        carry >>= ZWI_DIGIT_BITS;
    }
    for (; carry != 0 && i < nz; i++) {
        carry += z[i];
        z[i] = carry & ZWI_DIGIT_MASK;
        carry >>= ZWI_DIGIT_BITS;
    }
}

/* z[0 .. nz) -= a[0 .. na) (na <= nz), modulo 2**(30 nz). */
static void
digits_isub(zwi_digit *z, size_t nz, const zwi_digit *a, size_t na)
{
    zwi_digit borrow = 0;
    size_t i = 0;
    for (; i < na; i++) {
        borrow = z[i] - a[i] - borrow;
        z[i] = borrow & ZWI_DIGIT_MASK;
        borrow = (borrow >> ZWI_DIGIT_BITS) & 1;
    }
    for (; borrow != 0 && i < nz; i++) {
        borrow = z[i] - borrow;
        z[i] = borrow & ZWI_DIGIT_MASK;
        borrow = (borrow >> ZWI_DIGIT_BITS) & 1;
    }
}

/* z[0 .. max(na, nb) + 1) = a + b. */
static size_t
digits_sum(const zwi_digit *a, size_t na, const zwi_digit *b, size_t nb, zwi_digit *z)
{
    if (na < nb) {
        const zwi_digit *t = a;
        a = b;
        b = t;
        size_t tn = na;
        na = nb;
        nb = tn;
    }
    memcpy(z, a, na * sizeof(zwi_digit));
    z[na] = 0;
    digits_iadd(z, na + 1, b, nb);
    return na + 1;
}

#define KARATSUBA_CUTOFF 70 /* as CPython: below this many digits, schoolbook is faster */

static int digits_mul(zw_rt *rt, const zwi_digit *a, size_t na, const zwi_digit *b, size_t nb,
                      zwi_digit *z);

/* z = a * b for 2 na <= nb: b cut into slices of na digits, each multiplied by a (a balanced
 * product, where Karatsuba pays) and added in place, as CPython's k_lopsided_mul. */
static int
digits_mul_lopsided(zw_rt *rt, const zwi_digit *a, size_t na, const zwi_digit *b, size_t nb,
                    zwi_digit *z)
{
    zwi_digit *prod = zwi_rt_malloc(rt, 2 * na * sizeof(zwi_digit));
    if (prod == NULL)
        return -1;
    memset(z, 0, (na + nb) * sizeof(zwi_digit));
    for (size_t off = 0; off < nb; off += na) {
        size_t nslice = nb - off < na ? nb - off : na;
        if (digits_mul(rt, a, na, b + off, nslice, prod) != 0) {
            zwi_rt_free(rt, prod);
            return -1;
        }
        digits_iadd(z + off, na + nb - off, prod, na + nslice);
    }
    zwi_rt_free(rt, prod);
    return 0;
}

/* z = a * b by Karatsuba (na <= nb, 2 na > nb): with B = 2**(30 s), s = nb / 2, a = ah B + al
 * and b = bh B + bl, a b = t1 B**2 + (t3 - t1 - t2) B + t2 where t1 = ah bh, t2 = al bl and
 * t3 = (ah + al)(bh + bl): three half-size products instead of four. */
static int
digits_mul_karatsuba(zw_rt *rt, const zwi_digit *a, size_t na, const zwi_digit *b, size_t nb,
                     zwi_digit *z)
{
    size_t s = nb / 2; /* < na, so ah has digits */
    const zwi_digit *al = a;
    const zwi_digit *ah = a + s;
    const zwi_digit *bl = b;
    const zwi_digit *bh = b + s;
    size_t nal = digits_len(a, s);
    size_t nah = na - s;
    size_t nbl = digits_len(b, s);
    size_t nbh = nb - s;
    size_t nsa = (nal > nah ? nal : nah) + 1;
    size_t nsb = (nbl > nbh ? nbl : nbh) + 1;
    /* scratch: t1, t2, the two sums and t3 */
    size_t nt1 = nah + nbh;
    size_t nt2 = nal + nbl;
    size_t total = nt1 + nt2 + nsa + nsb + nsa + nsb;
    zwi_digit *t1 = zwi_rt_malloc(rt, total * sizeof(zwi_digit));
    if (t1 == NULL)
        return -1;
    zwi_digit *t2 = t1 + nt1;
    zwi_digit *sa = t2 + nt2;
    zwi_digit *sb = sa + nsa;
    zwi_digit *t3 = sb + nsb;
    int rc = -1;
    if (digits_mul(rt, ah, nah, bh, nbh, t1) != 0 || digits_mul(rt, al, nal, bl, nbl, t2) != 0)
        goto out;
    digits_sum(al, nal, ah, nah, sa);
    digits_sum(bl, nbl, bh, nbh, sb);
    if (digits_mul(rt, sa, nsa, sb, nsb, t3) != 0)
        goto out;
    /* z = t1 B**2 + t2, then the middle term at B (modulo B**(na + nb - s): the true middle
     * term is non-negative and fits, so the wrap-arounds of the steps cancel out) */
    memset(z, 0, (na + nb) * sizeof(zwi_digit));
    memcpy(z, t2, nt2 * sizeof(zwi_digit));
    memcpy(z + 2 * s, t1, nt1 * sizeof(zwi_digit));
    size_t nmid = na + nb - s;
    size_t nt3 = digits_len(t3, nsa + nsb);
    ZW_ASSERT(nt3 <= nmid);
    digits_isub(z + s, nmid, t2, digits_len(t2, nt2));
    digits_isub(z + s, nmid, t1, digits_len(t1, nt1));
    digits_iadd(z + s, nmid, t3, nt3);
    rc = 0;
out:
    zwi_rt_free(rt, t1);
    return rc;
}

/* z[0 .. na + nb) = a * b, every digit written; 0, or -1 with MemoryError (scratch space). */
static int
digits_mul(zw_rt *rt, const zwi_digit *a, size_t na, const zwi_digit *b, size_t nb, zwi_digit *z)
{
    size_t full = na + nb;
    na = digits_len(a, na);
    nb = digits_len(b, nb);
    if (na > nb) {
        const zwi_digit *t = a;
        a = b;
        b = t;
        size_t tn = na;
        na = nb;
        nb = tn;
    }
    memset(z + na + nb, 0, (full - na - nb) * sizeof(zwi_digit));
    if (na < KARATSUBA_CUTOFF) {
        digits_mul_school(a, na, b, nb, z);
        return 0;
    }
    if (2 * na <= nb)
        return digits_mul_lopsided(rt, a, na, b, nb, z);
    return digits_mul_karatsuba(rt, a, na, b, nb, z);
}

/* |a| * |b| with the sign `sign`. */
static zw_obj *
mag_mul(zw_obj *a, zw_obj *b, int sign)
{
    zw_rt *rt = ZWI_RT(a);
    size_t na = NDIG(a);
    size_t nb = NDIG(b);
    zw_obj *z = int_alloc(rt, na + nb);
    if (z == NULL)
        return NULL;
    if (digits_mul(rt, INT(a)->digits, na, INT(b)->digits, nb, INT(z)->digits) != 0) {
        zw_decref(z);
        return NULL;
    }
    return int_finish(z, sign);
}

/* Shifts n digits of `in` left by d bits (0 <= d < 30) into `out`; returns the bits shifted
 * out of the top. */
static zwi_digit
digits_lshift(zwi_digit *out, const zwi_digit *in, size_t n, int d)
{
    zwi_digit carry = 0;
    for (size_t i = 0; i < n; i++) {
        twodigits acc = (twodigits)in[i] << d | carry;
        out[i] = (zwi_digit)(acc & ZWI_DIGIT_MASK);
        carry = (zwi_digit)(acc >> ZWI_DIGIT_BITS);
    }
    return carry;
}

/* Shifts n digits of `in` right by d bits (0 <= d < 30) into `out`. */
static void
digits_rshift(zwi_digit *out, const zwi_digit *in, size_t n, int d)
{
    zwi_digit carry = 0;
    zwi_digit mask = ((zwi_digit)1 << d) - 1;
    for (size_t i = n; i-- > 0;) {
        twodigits acc = (twodigits)carry << ZWI_DIGIT_BITS | in[i];
        carry = in[i] & mask;
        out[i] = (zwi_digit)(acc >> d);
    }
}

/* Truncated |a| / n and |a| % n for a one-digit n > 0: quotient into *q (NULL: not wanted). */
static int
mag_divrem1(zw_obj *a, zwi_digit n, zw_obj **q, zwi_digit *rem)
{
    size_t na = NDIG(a);
    zw_obj *z = NULL;
    if (q != NULL && (z = int_alloc(ZWI_RT(a), na)) == NULL)
        return -1;
    const zwi_digit *da = INT(a)->digits;
    twodigits r = 0;
    for (size_t i = na; i-- > 0;) {
        r = r << ZWI_DIGIT_BITS | da[i];
        if (z != NULL)
            INT(z)->digits[i] = (zwi_digit)(r / n);
        r %= n;
    }
    *rem = (zwi_digit)r;
    if (q != NULL)
        *q = z; /* not normalised: the caller gives it its sign */
    return 0;
}

/* Truncated |v| / |w| and |v| % |w| for |w| of two digits or more and |v| >= |w|: Knuth's
 * algorithm D (TAOCP vol. 2, 4.3.1), as CPython's x_divrem. Both results are fresh
 * non-negative ints, not normalised. */
static int
mag_divrem(zw_obj *v1, zw_obj *w1, zw_obj **pq, zw_obj **pr)
{
    zw_rt *rt = ZWI_RT(v1);
    size_t size_v = NDIG(v1);
    size_t size_w = NDIG(w1);
    ZW_ASSERT(size_w >= 2 && size_v >= size_w);
    zw_obj *v = int_alloc(rt, size_v + 1);
    zw_obj *w = v ? int_alloc(rt, size_w) : NULL;
    zw_obj *a = NULL;
    if (w == NULL)
        goto fail;
    /* normalise: shift both so that the top digit of w has its top bit set */
    int d = ZWI_DIGIT_BITS - digit_bits(INT(w1)->digits[size_w - 1]);
    zwi_digit *v0 = INT(v)->digits;
    zwi_digit *w0 = INT(w)->digits;
    digits_lshift(w0, INT(w1)->digits, size_w, d);
    zwi_digit carry = digits_lshift(v0, INT(v1)->digits, size_v, d);
    if (carry != 0 || v0[size_v - 1] >= w0[size_w - 1]) {
        v0[size_v] = carry;
        size_v++;
    }
    size_t k = size_v - size_w; /* digits of the quotient, >= 1 */
    if ((a = int_alloc(rt, k)) == NULL)
        goto fail;
    zwi_digit wm1 = w0[size_w - 1];
    zwi_digit wm2 = w0[size_w - 2];
    zwi_digit *ak = INT(a)->digits + k;
    for (zwi_digit *vk = v0 + k; vk-- > v0;) {
        /* estimate the quotient digit q from the top two digits of vk and the top of w; it is
         * at most 2 too large and the wm2 test makes it at most 1 too large */
        zwi_digit vtop = vk[size_w];
        twodigits vv = (twodigits)vtop << ZWI_DIGIT_BITS | vk[size_w - 1];
        zwi_digit q = (zwi_digit)(vv / wm1);
        zwi_digit r = (zwi_digit)(vv - (twodigits)wm1 * q);
        while ((twodigits)wm2 * q > ((twodigits)r << ZWI_DIGIT_BITS | vk[size_w - 2])) {
            --q;
            r += wm1;
            if (r >= ZWI_DIGIT_BASE)
                break;
        }
        /* vk[0 .. size_w] -= q * w0[0 .. size_w - 1] */
        stwodigits zhi = 0;
        for (size_t i = 0; i < size_w; i++) {
            stwodigits z = (stwodigits)vk[i] + zhi - (stwodigits)q * (stwodigits)w0[i];
            vk[i] = (zwi_digit)z & ZWI_DIGIT_MASK;
            zhi = z >> ZWI_DIGIT_BITS; /* arithmetic shift (gcc): the borrow, <= 0 */
        }
        /* q was one too large: add w back */
        if ((stwodigits)vtop + zhi < 0) {
            zwi_digit c = 0;
            for (size_t i = 0; i < size_w; i++) {
                c += vk[i] + w0[i];
                vk[i] = c & ZWI_DIGIT_MASK;
                c >>= ZWI_DIGIT_BITS;
            }
            --q;
        }
        *--ak = q;
    }
    /* the remainder is v0[0 .. size_w - 1] shifted back */
    digits_rshift(w0, v0, size_w, d);
    zw_decref(v);
    *pq = a;
    *pr = w;
    return 0;
fail:
    zw_xdecref(w);
    zw_xdecref(v);
    return -1;
}

/* `o` as an exact int (a new reference): itself, or a copy of a bool's or a subclass's value. */
static zw_obj *
int_exact(zw_obj *o)
{
    zw_rt *rt = ZWI_RT(o);
    if (o->type == ZWI_TYPE(rt, ZW_T_INT))
        return zw_newref(o);
    size_t n = NDIG(o);
    if (n <= 2)
        return int_from_i64(rt, small_value(o));
    zw_obj *z = int_alloc(rt, n);
    if (z == NULL)
        return NULL;
    memcpy(INT(z)->digits, INT(o)->digits, n * sizeof(zwi_digit));
    SIZE(z) = SIZE(o);
    return z;
}

/* Python's divmod for ints of any size: floor division, remainder with the sign of b. Either
 * output may be NULL when not wanted. b != 0. */
static int
int_divmod_big(zw_obj *a, zw_obj *b, zw_obj **pdiv, zw_obj **pmod)
{
    zw_rt *rt = ZWI_RT(a);
    int sa = SIZE(a) < 0 ? -1 : 1;
    int sb = SIZE(b) < 0 ? -1 : 1;
    zw_obj *q = NULL;
    zw_obj *r = NULL;
    /* truncated quotient and remainder of the magnitudes */
    if (mag_cmp(a, b) < 0) {
        q = small_int(rt, 0);
        if ((r = int_exact(a)) == NULL)
            goto fail;
    } else if (NDIG(b) == 1) {
        zwi_digit rem;
        if (mag_divrem1(a, INT(b)->digits[0], &q, &rem) != 0)
            return -1;
        q = int_finish(q, sa * sb);
        if ((r = int_from_i64(rt, sa * (int64_t)rem)) == NULL)
            goto fail;
    } else {
        if (mag_divrem(a, b, &q, &r) != 0)
            return -1;
        q = int_finish(q, sa * sb);
        r = int_finish(r, sa);
    }
    /* floor: when the remainder's sign differs from b's, r += b and q -= 1 */
    if (SIZE(r) != 0 && (SIZE(r) < 0) != (sb < 0)) {
        if (pmod != NULL) {
            zw_obj *t = zw_int_add(r, b);
            if (t == NULL)
                goto fail;
            ZW_SETREF(r, t);
        }
        if (pdiv != NULL) {
            zw_obj *one = small_int(rt, 1);
            zw_obj *t = zw_int_sub(q, one);
            zw_decref(one);
            if (t == NULL)
                goto fail;
            ZW_SETREF(q, t);
        }
    }
    if (pdiv != NULL)
        *pdiv = q;
    else
        zw_decref(q);
    if (pmod != NULL)
        *pmod = r;
    else
        zw_decref(r);
    return 0;
fail:
    zw_xdecref(q);
    zw_xdecref(r);
    return -1;
}

/* ---- construction ---- */

/* Kept out of line so that zw_int_from_i64's fast paths save no register. */
static zw_obj *__attribute__((noinline))
int_from_i64_alloc(zw_rt *rt, int64_t v)
{
    return int_from_i64(rt, v);
}

/* zw_int_from_i64 for a value that is no small int. */
static zw_obj *__attribute__((noinline))
int_from_i64_new(zw_rt *rt, int64_t v)
{
    /* |v| < 2**60: one or two digits, 28 or 32 bytes, both a 32-byte block. Straight from the
     * heap's fast path when nothing else is asked of the allocation (no fault to inject, no
     * debug registry); int_from_i64 does the rest. Both digits are written: the block has room
     * for two. */
    uint64_t mag = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    if (ZW_LIKELY(mag >> (2 * ZWI_DIGIT_BITS) == 0 && rt->fail_countdown <= 0 && !rt->debug)) {
        zw_obj *o = zwi_mem_try_malloc(rt->heap, ZWI_INT_BASICSIZE + 2 * sizeof(zwi_digit));
        if (ZW_LIKELY(o != NULL)) {
            rt->nallocs++;
            o->refcnt = 1;
            o->type = ZWI_TYPE(rt, ZW_T_INT);
            zwi_digit hi = (zwi_digit)(mag >> ZWI_DIGIT_BITS);
            INT(o)->digits[0] = (zwi_digit)(mag & ZWI_DIGIT_MASK);
            INT(o)->digits[1] = hi;
            intptr_t n = hi != 0 ? 2 : 1;
            SIZE(o) = v < 0 ? -n : n;
            return o;
        }
    }
    return int_from_i64_alloc(rt, v);
}

/* The small ints first, in the function itself: a range check, an increment, no jump taken. */
zw_obj *
zw_int_from_i64(zw_rt *rt, int64_t v)
{
    if (is_small_int(v))
        return small_int(rt, v);
    return int_from_i64_new(rt, v);
}

zw_obj *
zw_int_from_u64(zw_rt *rt, uint64_t v)
{
    if (v <= INT64_MAX)
        return int_from_i64(rt, (int64_t)v);
    zw_obj *o = int_alloc(rt, 3); /* 2**63 <= v < 2**64: three digits */
    if (o == NULL)
        return NULL;
    zwi_digit *d = INT(o)->digits;
    for (int i = 0; i < 3; i++, v >>= ZWI_DIGIT_BITS)
        d[i] = (zwi_digit)(v & ZWI_DIGIT_MASK);
    return o;
}

/* ---- decimal text ---- */

static bool
is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* ValueError "invalid literal for int() with base 10: '...'" with the text quoted as repr()
 * quotes a str, then cut to 200 code points (closing quote included), as CPython's %.200R. */
#define LITERAL_REPR_MAX 200

static zw_obj *
invalid_literal(zw_rt *rt, const char *s)
{
    char q = (strchr(s, '\'') != NULL && strchr(s, '"') == NULL) ? '"' : '\'';
    /* each source code point gives at least one repr code point: 200 of them are enough */
    char buf[LITERAL_REPR_MAX * 4 + 8];
    size_t n = 0;
    size_t cps = 0;
    buf[n++] = q;
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        unsigned char c = *p;
        if ((c & 0xC0) != 0x80 && ++cps > LITERAL_REPR_MAX)
            break;
        if (c == (unsigned char)q || c == '\\') {
            buf[n++] = '\\';
            buf[n++] = (char)c;
        } else if (c == '\t' || c == '\n' || c == '\r') {
            buf[n++] = '\\';
            buf[n++] = c == '\t' ? 't' : c == '\n' ? 'n' : 'r';
        } else if (c < 0x20 || c == 0x7f) {
            n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\\x%02x", c);
        } else {
            buf[n++] = (char)c; /* UTF-8 passes through, as repr shows printable text */
        }
    }
    buf[n++] = q;
    /* cut to LITERAL_REPR_MAX code points */
    size_t keep = 0;
    for (size_t i = 0, seen = 0; i < n; i++) {
        if (((unsigned char)buf[i] & 0xC0) != 0x80 && seen++ == LITERAL_REPR_MAX)
            break;
        keep = i + 1;
    }
    zw_err_set(rt, ZW_ValueError, "invalid literal for int() with base 10: %.*s", (int)keep, buf);
    return NULL;
}

/* Decimal digits to an int: chunks of up to 9 digits, z = z * 10**len + chunk, O(n**2). */
static zw_obj *
int_from_decimal(zw_rt *rt, const char *p, size_t ndec, int sign)
{
    if (ndec <= 18) { /* < 10**18 < 2**63 */
        int64_t v = 0;
        for (size_t i = 0; i < ndec; i++)
            v = v * 10 + (p[i] - '0');
        return int_from_i64(rt, sign * v);
    }
    zw_obj *z = int_alloc(rt, ndec / DECIMAL_SHIFT + 1); /* 10**9 < 2**30: enough digits */
    if (z == NULL)
        return NULL;
    zwi_digit *dz = INT(z)->digits;
    size_t size = 0;
    size_t first = ndec % DECIMAL_SHIFT ? ndec % DECIMAL_SHIFT : DECIMAL_SHIFT;
    for (size_t at = 0; at < ndec;) {
        size_t len = at == 0 ? first : DECIMAL_SHIFT;
        twodigits chunk = 0;
        twodigits mult = 1;
        for (size_t i = 0; i < len; i++) {
            chunk = chunk * 10 + (twodigits)(p[at + i] - '0');
            mult *= 10;
        }
        at += len;
        twodigits carry = chunk;
        for (size_t i = 0; i < size; i++) {
            carry += (twodigits)dz[i] * mult;
            dz[i] = (zwi_digit)(carry & ZWI_DIGIT_MASK);
            carry >>= ZWI_DIGIT_BITS;
        }
        if (carry != 0) {
            ZW_ASSERT(carry < ZWI_DIGIT_BASE && size < (size_t)SIZE(z));
            dz[size++] = (zwi_digit)carry;
        }
    }
    SIZE(z) = (intptr_t)size;
    return int_finish(z, sign);
}

zw_obj *
zw_int_from_str(zw_rt *rt, const char *s)
{
    const char *p = s;
    while (is_space(*p))
        p++;
    int sign = 1;
    if (*p == '+' || *p == '-')
        sign = *p++ == '-' ? -1 : 1;
    const char *digits = p;
    while (*p >= '0' && *p <= '9')
        p++;
    size_t ndec = (size_t)(p - digits);
    while (is_space(*p))
        p++;
    if (ndec == 0 || *p != '\0')
        return invalid_literal(rt, s);
    while (ndec > 1 && *digits == '0') { /* base 10 allows leading zeros: "007" is 7 */
        digits++;
        ndec--;
    }
    return int_from_decimal(rt, digits, ndec, sign);
}

/* Writes the decimal text of v at the end of buf[0 .. cap) and returns where it starts. */
static char *
i64_to_text(int64_t v, char *buf, size_t cap)
{
    char *p = buf + cap;
    uint64_t mag = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + mag % 10);
        mag /= 10;
    } while (mag != 0);
    if (v < 0)
        *--p = '-';
    return p;
}

/* The decimal text of an int of three digits or more: convert to base 10**9 (quadratic, as
 * CPython's long_to_decimal_string), then write the chunks out. */
static zw_obj *
big_to_str(zw_obj *o)
{
    zw_rt *rt = ZWI_RT(o);
    size_t na = NDIG(o);
    /* 30 * na bits need at most na * 30 / (9 * log2(10)) = na * 1.0034 chunks */
    size_t cap = 1 + na + na / 99;
    zw_obj *result = NULL;
    zwi_digit *pout = zwi_rt_malloc(rt, cap * sizeof(zwi_digit));
    if (pout == NULL)
        return NULL;
    size_t size = 0;
    const zwi_digit *da = INT(o)->digits;
    for (size_t i = na; i-- > 0;) {
        zwi_digit hi = da[i];
        for (size_t j = 0; j < size; j++) {
            twodigits z = (twodigits)pout[j] << ZWI_DIGIT_BITS | hi;
            hi = (zwi_digit)(z / DECIMAL_BASE);
            pout[j] = (zwi_digit)(z - (twodigits)hi * DECIMAL_BASE);
        }
        while (hi != 0) {
            ZW_ASSERT(size < cap);
            pout[size++] = hi % DECIMAL_BASE;
            hi /= DECIMAL_BASE;
        }
    }
    ZW_ASSERT(size > 0); /* o is not 0 */
    size_t top_len = 0;
    for (zwi_digit t = pout[size - 1]; t != 0; t /= 10)
        top_len++;
    size_t len = (SIZE(o) < 0) + (size - 1) * DECIMAL_SHIFT + top_len;
    char stack[STACK_TEXT];
    char *text = len <= sizeof(stack) ? stack : zwi_rt_malloc(rt, len);
    if (text == NULL)
        goto out_pout;
    char *p = text + len;
    for (size_t j = 0; j < size - 1; j++) {
        zwi_digit c = pout[j];
        for (int k = 0; k < DECIMAL_SHIFT; k++, c /= 10)
            *--p = (char)('0' + c % 10);
    }
    for (zwi_digit c = pout[size - 1]; c != 0; c /= 10)
        *--p = (char)('0' + c % 10);
    if (SIZE(o) < 0)
        *--p = '-';
    ZW_ASSERT(p == text);
    result = zw_str_from_utf8(rt, text, len);
    if (text != stack)
        zwi_rt_free(rt, text);
out_pout:
    zwi_rt_free(rt, pout);
    return result;
}

zw_obj *
zw_int_to_str(zw_obj *o)
{
    if (!is_int(o))
        return zwi_type_error_unsupported(o, "is not an int");
    if (NDIG(o) <= 2) {
        char buf[24];
        char *p = i64_to_text(small_value(o), buf, sizeof(buf));
        return zw_str_from_utf8(ZWI_RT(o), p, (size_t)(buf + sizeof(buf) - p));
    }
    return big_to_str(o);
}

/* ---- conversions and queries ---- */

int64_t
zw_int_as_i64(zw_obj *o)
{
    if (!is_int(o)) {
        zw_err_set(ZWI_RT(o), ZW_TypeError, "'%s' object cannot be interpreted as an integer",
                   type_name(o));
        return -1;
    }
    size_t n = NDIG(o);
    if (n <= 2)
        return small_value(o);
    const zwi_digit *d = INT(o)->digits;
    if (n == 3 && d[2] < ((zwi_digit)1 << 4)) { /* 60 + 4 bits */
        uint64_t mag = (uint64_t)d[2] << 60 | (uint64_t)d[1] << 30 | d[0];
        if (SIZE(o) > 0 && mag <= (uint64_t)INT64_MAX)
            return (int64_t)mag;
        if (SIZE(o) < 0 && mag <= (uint64_t)INT64_MAX + 1)
            return (int64_t)(0 - mag);
    }
    zw_err_set(ZWI_RT(o), ZW_OverflowError, "Python int too large to convert to C int64_t");
    return -1;
}

int
zw_int_sign(zw_obj *a)
{
    if (!is_int(a)) {
        zw_err_set(ZWI_RT(a), ZW_TypeError, "'%s' object is not an int", type_name(a));
        return 0;
    }
    return SIZE(a) < 0 ? -1 : SIZE(a) > 0;
}

bool
zw_int_check(const zw_obj *o)
{
    return is_int(o);
}

/* -1, 0, 1 for two ints. */
static int
int_cmp(zw_obj *a, zw_obj *b)
{
    if (SIZE(a) != SIZE(b))
        return SIZE(a) < SIZE(b) ? -1 : 1; /* more digits means further from 0 */
    int c = mag_cmp(a, b);
    return SIZE(a) < 0 ? -c : c;
}

int
zw_int_cmp(zw_obj *a, zw_obj *b)
{
    if (!is_int(a) || !is_int(b)) {
        zw_err_set(ZWI_RT(a), ZW_TypeError, "'%s' and '%s' are not both ints", type_name(a),
                   type_name(b));
        return -1;
    }
    return int_cmp(a, b);
}

/* ---- arithmetic ---- */

zw_obj *
zw_int_add(zw_obj *a, zw_obj *b)
{
    if (!is_int(a) || !is_int(b))
        return binop_type_error(a, b, "+");
    if (NDIG(a) <= 2 && NDIG(b) <= 2) /* |a + b| < 2**61 */
        return int_from_i64(ZWI_RT(a), small_value(a) + small_value(b));
    if (SIZE(a) < 0)
        return SIZE(b) < 0 ? mag_add(a, b, -1) : mag_sub(b, a, 1);
    return SIZE(b) < 0 ? mag_sub(a, b, 1) : mag_add(a, b, 1);
}

zw_obj *
zw_int_sub(zw_obj *a, zw_obj *b)
{
    if (!is_int(a) || !is_int(b))
        return binop_type_error(a, b, "-");
    if (NDIG(a) <= 2 && NDIG(b) <= 2)
        return int_from_i64(ZWI_RT(a), small_value(a) - small_value(b));
    if (SIZE(a) < 0)
        return SIZE(b) < 0 ? mag_sub(a, b, -1) : mag_add(a, b, -1);
    return SIZE(b) < 0 ? mag_add(a, b, 1) : mag_sub(a, b, 1);
}

zw_obj *
zw_int_mul(zw_obj *a, zw_obj *b)
{
    if (!is_int(a) || !is_int(b))
        return binop_type_error(a, b, "*");
    if (NDIG(a) <= 1 && NDIG(b) <= 1) /* |a * b| < 2**60 */
        return int_from_i64(ZWI_RT(a), small_value(a) * small_value(b));
    if (SIZE(a) == 0 || SIZE(b) == 0)
        return small_int(ZWI_RT(a), 0);
    return mag_mul(a, b, (SIZE(a) < 0) == (SIZE(b) < 0) ? 1 : -1);
}

/* Floor division and modulo of two ints (either output NULL when not wanted); 0 or -1. */
static int
int_divmod(zw_obj *a, zw_obj *b, const char *op, zw_obj **pdiv, zw_obj **pmod)
{
    if (!is_int(a) || !is_int(b)) {
        binop_type_error(a, b, op);
        return -1;
    }
    zw_rt *rt = ZWI_RT(a);
    if (SIZE(b) == 0)
        return zw_err_set(rt, ZW_ZeroDivisionError, "integer division or modulo by zero");
    if (NDIG(a) <= 2 && NDIG(b) <= 2) { /* |values| < 2**60: no INT64_MIN / -1 */
        int64_t x = small_value(a);
        int64_t y = small_value(b);
        int64_t q = x / y;
        int64_t r = x % y;
        if (r != 0 && (r < 0) != (y < 0)) {
            q--;
            r += y;
        }
        if (pdiv != NULL && (*pdiv = int_from_i64(rt, q)) == NULL)
            return -1;
        if (pmod != NULL && (*pmod = int_from_i64(rt, r)) == NULL) {
            if (pdiv != NULL)
                ZW_CLEAR(*pdiv);
            return -1;
        }
        return 0;
    }
    return int_divmod_big(a, b, pdiv, pmod);
}

zw_obj *
zw_int_floordiv(zw_obj *a, zw_obj *b)
{
    zw_obj *q = NULL;
    return int_divmod(a, b, "//", &q, NULL) == 0 ? q : NULL;
}

zw_obj *
zw_int_mod(zw_obj *a, zw_obj *b)
{
    zw_obj *r = NULL;
    return int_divmod(a, b, "%", NULL, &r) == 0 ? r : NULL;
}

zw_obj *
zw_int_neg(zw_obj *a)
{
    zw_rt *rt = ZWI_RT(a);
    if (!is_int(a)) {
        zw_err_set(rt, ZW_TypeError, "bad operand type for unary -: '%s'", type_name(a));
        return NULL;
    }
    size_t n = NDIG(a);
    if (n <= 2)
        return int_from_i64(rt, -small_value(a));
    zw_obj *z = int_alloc(rt, n);
    if (z == NULL)
        return NULL;
    memcpy(INT(z)->digits, INT(a)->digits, n * sizeof(zwi_digit));
    SIZE(z) = -SIZE(a);
    return z;
}

/* ---- hashing, as CPython's long_hash: the value modulo 2**61 - 1, sign kept ---- */

int64_t
zwi_hash_i64(int64_t v)
{
    uint64_t mag = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    int64_t h = (int64_t)(mag % HASH_MODULUS);
    if (v < 0)
        h = -h;
    return h == -1 ? -2 : h;
}

static int64_t
int_hash(zw_obj *self)
{
    size_t n = NDIG(self);
    if (n <= 2)
        return zwi_hash_i64(small_value(self));
    const zwi_digit *d = INT(self)->digits;
    uint64_t x = 0;
    /* x * 2**30 mod (2**61 - 1) is a rotation of x's 61 bits by 30 */
    for (size_t i = n; i-- > 0;) {
        x = ((x << ZWI_DIGIT_BITS) & HASH_MODULUS) | x >> (HASH_BITS - ZWI_DIGIT_BITS);
        x += d[i];
        if (x >= HASH_MODULUS)
            x -= HASH_MODULUS;
    }
    int64_t h = SIZE(self) < 0 ? -(int64_t)x : (int64_t)x;
    return h == -1 ? -2 : h;
}

/* ---- the int type ---- */

static zw_obj *
int_repr(zw_obj *self)
{
    return zw_int_to_str(self);
}

static int
int_compare(zw_obj *a, zw_obj *b, zw_cmp op)
{
    if (!is_int(b))
        return ZW_CMP_UNSUPPORTED; /* float's slot compares ints with floats */
    int c = int_cmp(a, b);
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

/* int.__sizeof__ in 3.11: 0 counts the digit it has allocated. */
static size_t
int_size_of(zw_obj *self)
{
    size_t n = NDIG(self);
    return ZWI_INT_BASICSIZE + (n == 0 ? 1 : n) * sizeof(zwi_digit);
}

/* No free list, as 3.11. An exact int in a release runtime is a bare heap block (no GC
 * header, no registry entry): give it straight back, the other half of int_alloc's shortcut
 * (zwi_rt_free is zw_heap_free). */
static void
int_dealloc(zw_obj *self)
{
    zw_rt *rt = ZWI_RT(self);
    if (ZW_LIKELY(self->type == ZWI_TYPE(rt, ZW_T_INT) && !rt->debug))
        zwi_rt_free(rt, self);
    else
        zw_obj_free(self);
}

ZW_HIDDEN const zw_type_spec zwi_int_spec = {
    .name = "int",
    .basicsize = ZWI_INT_BASICSIZE,
    .itemsize = sizeof(zwi_digit),
    .flags = ZW_TPFLAGS_INT | ZW_TPFLAGS_BASETYPE | ZW_TPFLAGS_IMMUTABLE,
    .dealloc = int_dealloc,
    .repr = int_repr,
    .hash = int_hash,
    .compare = int_compare,
    .size_of = int_size_of,
};

/* ---- bool ---- */

static zw_obj *
bool_repr(zw_obj *self)
{
    return zw_str_new(ZWI_RT(self), SIZE(self) != 0 ? "True" : "False");
}

static void
bool_dealloc(zw_obj *self)
{
    /* True and False are immortal: a count reaching 0 means too many decrefs. Restore it. */
    self->refcnt = ZWI_IMMORTAL_REFCNT;
}

ZW_HIDDEN const zw_type_spec zwi_bool_spec = {
    .name = "bool",
    .basicsize = ZWI_INT_BASICSIZE,
    .itemsize = sizeof(zwi_digit),
    .dealloc = bool_dealloc,
    .repr = bool_repr,
};

zw_obj *
zw_true(zw_rt *rt)
{
    return &rt->true_obj.vo.ob;
}

zw_obj *
zw_false(zw_rt *rt)
{
    return &rt->false_obj.vo.ob;
}

zw_obj *
zw_bool_from(zw_rt *rt, bool v)
{
    return zw_newref(v ? zw_true(rt) : zw_false(rt));
}

/* ---- the runtime's ints ---- */

void
zwi_int_init(zw_rt *rt)
{
    zw_type *int_type = ZWI_TYPE(rt, ZW_T_INT);
    for (int i = 0; i < ZWI_NSMALL; i++) {
        zwi_int *v = &rt->small_ints[i].i;
        int64_t value = i - ZWI_SMALL_NEG;
        zwi_init_static(&v->vo.ob, int_type);
        v->vo.size = value < 0 ? -1 : value > 0;
        v->digits[0] = (zwi_digit)(value < 0 ? -value : value);
    }
    zw_type *bool_type = ZWI_TYPE(rt, ZW_T_BOOL);
    zwi_init_static(&rt->true_obj.vo.ob, bool_type);
    rt->true_obj.vo.size = 1;
    rt->true_obj.digits[0] = 1;
    zwi_init_static(&rt->false_obj.vo.ob, bool_type);
    rt->false_obj.vo.size = 0;
    rt->false_obj.digits[0] = 0;
}
