/* obj/format.c - zw_str_from_format: printf-like formatting into a new str, with the directives
 * of CPython 3.11's PyUnicode_FromFormat (the object ones %R %S %U %V included).
 *
 * Text is built as UTF-8 in a buffer that starts on the stack and moves to the runtime's heap
 * when it outgrows it (every allocation goes through zwi_rt_malloc/realloc, so fault injection
 * reaches it and a failure is a MemoryError), then decoded once by zw_str_from_utf8.
 *
 * Directive: %[flags][width][.precision][length]conversion
 *   flags      '0' pads numbers with zeros, '-' pads on the right (3.12 has it; 3.11 does not)
 *   width      minimum width in code points (digits or '*'), padded with spaces by default;
 *              %c ignores it, as 3.11 does
 *   precision  numbers: minimum digits; %s: maximum bytes (as 3.11; a cut sequence becomes
 *              U+FFFD); objects (%U %S %R %V): maximum code points
 *   length     l, ll, z (t and j read as ll-sized too) for d i u x
 *   conversion d i u x c p s U S R V %
 * Where 3.11 differs from printf we follow printf: "%05d" of -42 is "-0042" (3.11 writes
 * "00-42"), and flags 3.11 does not know ('-', '0' with a precision) work instead of being
 * copied out verbatim. An unknown conversion is a SystemError (3.12's behaviour; 3.11 copied
 * the rest of the format verbatim). */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <zerowaste/obj.h>

#include "obj_internal.h"

#define STACK_TEXT 256 /* formatted text up to this long never touches the heap */

/* ---- the growing buffer ---- */

typedef struct fbuf {
    zw_rt *rt;
    char *p;      /* stack or a heap block */
    size_t len;   /* bytes written */
    size_t cap;   /* bytes at p */
    bool on_heap; /* p came from zwi_rt_malloc: free it at the end */
    char stack[STACK_TEXT];
} fbuf;

/* Makes room for `n` more bytes; 0 or -1 (MemoryError). */
static int
fbuf_reserve(fbuf *b, size_t n)
{
    if (n <= b->cap - b->len)
        return 0;
    if (n > SIZE_MAX / 2 - b->len)
        return zw_err_nomemory(b->rt);
    size_t cap = b->cap * 2 > b->len + n ? b->cap * 2 : b->len + n;
    char *p;
    if (b->on_heap) {
        p = zwi_rt_realloc(b->rt, b->p, cap);
    } else {
        p = zwi_rt_malloc(b->rt, cap);
        if (p != NULL)
            memcpy(p, b->p, b->len);
    }
    if (p == NULL)
        return -1;
    b->p = p;
    b->cap = cap;
    b->on_heap = true;
    return 0;
}

static int
fbuf_put(fbuf *b, const char *s, size_t n)
{
    if (fbuf_reserve(b, n) != 0)
        return -1;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    return 0;
}

static int
fbuf_fill(fbuf *b, char c, size_t n)
{
    if (fbuf_reserve(b, n) != 0)
        return -1;
    memset(b->p + b->len, c, n);
    b->len += n;
    return 0;
}

/* ---- one directive ---- */

typedef struct spec {
    bool zero;    /* '0' flag */
    bool left;    /* '-' flag */
    size_t width; /* 0: none */
    bool has_prec;
    size_t precision;
    int length; /* 0, 'l', 'L' (ll), 'z' */
    char conv;
} spec;

/* Code points in n bytes of UTF-8 (continuation bytes do not count). */
static size_t
utf8_count(const char *s, size_t n)
{
    size_t cps = 0;
    for (size_t i = 0; i < n; i++)
        cps += ((unsigned char)s[i] & 0xC0) != 0x80;
    return cps;
}

/* Bytes of the first `cps` code points of s[0 .. n). */
static size_t
utf8_prefix(const char *s, size_t n, size_t cps)
{
    size_t i = 0;
    for (; i < n; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            if (cps == 0)
                break;
            cps--;
        }
    }
    return i;
}

/* Text with the precision (a cut) and the width (padding) of the directive. */
static int
put_text(fbuf *b, const spec *sp, const char *s, size_t n)
{
    if (sp->has_prec)
        n = utf8_prefix(s, n, sp->precision);
    size_t cps = sp->width != 0 ? utf8_count(s, n) : 0;
    size_t pad = sp->width > cps ? sp->width - cps : 0;
    if (!sp->left && fbuf_fill(b, ' ', pad) != 0)
        return -1;
    if (fbuf_put(b, s, n) != 0)
        return -1;
    return sp->left ? fbuf_fill(b, ' ', pad) : 0;
}

/* A number given as its sign and digits, with the precision (minimum digits) and the width
 * (spaces, or zeros after the sign with the '0' flag and no precision, as printf). */
static int
put_number(fbuf *b, const spec *sp, bool neg, const char *digits, size_t nd)
{
    size_t zeros = sp->has_prec && sp->precision > nd ? sp->precision - nd : 0;
    size_t body = neg + zeros + nd;
    size_t pad = sp->width > body ? sp->width - body : 0;
    bool pad_zeros = sp->zero && !sp->left && !sp->has_prec;
    if (pad_zeros) {
        zeros += pad;
        pad = 0;
    }
    if (!sp->left && fbuf_fill(b, ' ', pad) != 0)
        return -1;
    if ((neg && fbuf_put(b, "-", 1) != 0) || fbuf_fill(b, '0', zeros) != 0 ||
        fbuf_put(b, digits, nd) != 0)
        return -1;
    return sp->left ? fbuf_fill(b, ' ', pad) : 0;
}

/* %s: UTF-8 text whose precision counts bytes, as 3.11 (strnlen: the text need not be
 * NUL-terminated past them); a sequence cut by the precision becomes U+FFFD, as CPython's
 * decoding with errors="replace" makes it. NULL prints "(null)" (CPython would crash). */
static int
put_cstring(fbuf *b, const spec *sp, const char *s)
{
    if (s == NULL)
        s = "(null)";
    size_t n = sp->has_prec ? strnlen(s, sp->precision) : strlen(s);
    /* did the precision cut a sequence? find the lead byte of the last one */
    size_t j = n;
    while (j > 0 && n - j < 3 && ((unsigned char)s[j - 1] & 0xC0) == 0x80)
        j--;
    bool cut = false;
    if (sp->has_prec && j > 0 && (unsigned char)s[j - 1] >= 0xC0) {
        unsigned char c = (unsigned char)s[j - 1];
        size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
        cut = need > n - (j - 1);
    }
    spec text = *sp;
    text.has_prec = false;
    if (!cut)
        return put_text(b, &text, s, n);
    /* the text up to the cut sequence, then U+FFFD, with the width applied to the whole */
    size_t keep = j - 1;
    size_t cps = utf8_count(s, keep) + 1;
    size_t pad = sp->width > cps ? sp->width - cps : 0;
    if (!sp->left && fbuf_fill(b, ' ', pad) != 0)
        return -1;
    if (fbuf_put(b, s, keep) != 0 || fbuf_put(b, "\xEF\xBF\xBD", 3) != 0)
        return -1;
    return sp->left ? fbuf_fill(b, ' ', pad) : 0;
}

/* %d %i %u %x: reads the argument of the directive's length and writes it. */
static int
put_integer(fbuf *b, const spec *sp, va_list *ap)
{
    bool is_signed = sp->conv == 'd' || sp->conv == 'i';
    unsigned long long mag;
    bool neg = false;
    if (is_signed) {
        long long v;
        switch (sp->length) {
        case 'l':
            v = va_arg(*ap, long);
            break;
        case 'L':
            v = va_arg(*ap, long long);
            break;
        case 'z':
            v = va_arg(*ap, ptrdiff_t);
            break;
        default:
            v = va_arg(*ap, int);
        }
        neg = v < 0;
        mag = neg ? 0 - (unsigned long long)v : (unsigned long long)v;
    } else {
        switch (sp->length) {
        case 'l':
            mag = va_arg(*ap, unsigned long);
            break;
        case 'L':
            mag = va_arg(*ap, unsigned long long);
            break;
        case 'z':
            mag = va_arg(*ap, size_t);
            break;
        default:
            mag = va_arg(*ap, unsigned int);
        }
    }
    char digits[32];
    int nd = snprintf(digits, sizeof(digits), sp->conv == 'x' ? "%llx" : "%llu", mag);
    return put_number(b, sp, neg, digits, (size_t)nd);
}

/* %c: a code point, written as UTF-8. */
static int
put_char(fbuf *b, int cp)
{
    if (cp < 0 || cp > 0x10FFFF)
        return zw_err_set(b->rt, ZW_OverflowError, "character argument not in range(0x110000)");
    char u[4];
    size_t n;
    unsigned c = (unsigned)cp;
    if (c < 0x80) {
        u[0] = (char)c;
        n = 1;
    } else if (c < 0x800) {
        u[0] = (char)(0xC0 | c >> 6);
        u[1] = (char)(0x80 | (c & 0x3F));
        n = 2;
    } else if (c < 0x10000) {
        u[0] = (char)(0xE0 | c >> 12);
        u[1] = (char)(0x80 | (c >> 6 & 0x3F));
        u[2] = (char)(0x80 | (c & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | c >> 18);
        u[1] = (char)(0x80 | (c >> 12 & 0x3F));
        u[2] = (char)(0x80 | (c >> 6 & 0x3F));
        u[3] = (char)(0x80 | (c & 0x3F));
        n = 4;
    }
    return fbuf_put(b, u, n); /* 3.11 ignores width and precision for %c */
}

/* %p: 0x and lower-case hex whatever the C library prints (PyUnicode_FromFormat ensures the
 * 0x too); NULL is 0x0 where glibc would say (nil). */
static int
put_pointer(fbuf *b, const spec *sp, const void *p)
{
    char digits[32];
    int nd = snprintf(digits, sizeof(digits), "0x%llx", (unsigned long long)(uintptr_t)p);
    spec plain = *sp;
    plain.has_prec = false;
    return put_text(b, &plain, digits, (size_t)nd);
}

/* %U %S %R and the object half of %V: the UTF-8 of a str (made by `make` from `o` unless
 * make is NULL, when o must be a str). */
static int
put_object(fbuf *b, const spec *sp, zw_obj *o, zw_obj *(*make)(zw_obj *))
{
    if (o == NULL)
        return zw_err_set(b->rt, ZW_SystemError, "NULL object passed to %%%c", sp->conv);
    zw_obj *s = make != NULL ? make(o) : zw_newref(o);
    if (s == NULL)
        return -1;
    int rc = -1;
    if (!zw_str_check(s)) {
        zw_err_set(b->rt, ZW_TypeError, "%%%c expects a str, not '%s'", sp->conv,
                   zw_type_name(zw_type_of(s)));
        goto out;
    }
    size_t n;
    const char *u = zw_str_utf8(s, &n);
    if (u != NULL)
        rc = put_text(b, sp, u, n);
out:
    zw_decref(s);
    return rc;
}

/* Reads [flags][width][.precision][length]conversion at *pf (after the '%'). */
static const char *
parse_spec(const char *f, spec *sp, va_list *ap)
{
    memset(sp, 0, sizeof(*sp));
    for (;; f++) {
        if (*f == '0')
            sp->zero = true;
        else if (*f == '-')
            sp->left = true;
        else
            break;
    }
    if (*f == '*') {
        int w = va_arg(*ap, int);
        if (w < 0) {
            sp->left = true;
            w = -w;
        }
        sp->width = (size_t)w;
        f++;
    } else {
        while (*f >= '0' && *f <= '9')
            sp->width = sp->width * 10 + (size_t)(*f++ - '0');
    }
    if (*f == '.') {
        f++;
        sp->has_prec = true;
        if (*f == '*') {
            int p = va_arg(*ap, int);
            sp->has_prec = p >= 0;
            sp->precision = p >= 0 ? (size_t)p : 0;
            f++;
        } else {
            while (*f >= '0' && *f <= '9')
                sp->precision = sp->precision * 10 + (size_t)(*f++ - '0');
        }
    }
    if (*f == 'l') {
        sp->length = f[1] == 'l' ? 'L' : 'l';
        f += f[1] == 'l' ? 2 : 1;
    } else if (*f == 'z') {
        sp->length = 'z';
        f++;
    } else if (*f == 't' || *f == 'j') {
        sp->length = 'L';
        f++;
    }
    sp->conv = *f;
    return f;
}

/* Formats one directive; 0 or -1 with the error set. */
static int
format_one(fbuf *b, const spec *sp, const char *start, va_list *ap)
{
    switch (sp->conv) {
    case 'd':
    case 'i':
    case 'u':
    case 'x':
        return put_integer(b, sp, ap);
    case 'c':
        return put_char(b, va_arg(*ap, int));
    case 'p':
        return put_pointer(b, sp, va_arg(*ap, void *));
    case 's':
        return put_cstring(b, sp, va_arg(*ap, const char *));
    case 'U':
        return put_object(b, sp, va_arg(*ap, zw_obj *), NULL);
    case 'S':
        return put_object(b, sp, va_arg(*ap, zw_obj *), zw_str);
    case 'R':
        return put_object(b, sp, va_arg(*ap, zw_obj *), zw_repr);
    case 'V': { /* a str object, or the UTF-8 text when the object is NULL */
        zw_obj *o = va_arg(*ap, zw_obj *);
        const char *s = va_arg(*ap, const char *);
        if (o != NULL)
            return put_object(b, sp, o, NULL);
        if (s == NULL)
            return zw_err_set(b->rt, ZW_SystemError, "%%V got a NULL object and a NULL string");
        return put_cstring(b, sp, s);
    }
    default:
        return zw_err_set(b->rt, ZW_SystemError, "invalid format string: '%%%.*s'",
                          (int)strcspn(start, "%") + 1, start);
    }
}

/* ---- the entry points ---- */

zw_obj *
zw_str_from_formatv(zw_rt *rt, const char *fmt, va_list ap)
{
    zw_obj *result = NULL;
    fbuf b = {.rt = rt, .cap = STACK_TEXT};
    b.p = b.stack;
    va_list args;
    va_copy(args, ap); /* a va_list parameter may be an array: take one we can point at */
    for (const char *f = fmt; *f != '\0';) {
        const char *pct = strchr(f, '%');
        size_t lit = pct != NULL ? (size_t)(pct - f) : strlen(f);
        if (fbuf_put(&b, f, lit) != 0)
            goto out;
        if (pct == NULL)
            break;
        if (pct[1] == '%') {
            if (fbuf_put(&b, "%", 1) != 0)
                goto out;
            f = pct + 2;
            continue;
        }
        spec sp;
        const char *conv = parse_spec(pct + 1, &sp, &args);
        if (sp.conv == '\0') {
            zw_err_set(rt, ZW_SystemError, "format string ends in the middle of '%s'", pct);
            goto out;
        }
        if (format_one(&b, &sp, pct + 1, &args) != 0)
            goto out;
        f = conv + 1;
    }
    result = zw_str_from_utf8(rt, b.p, b.len);
out:
    va_end(args);
    if (b.on_heap)
        zwi_rt_free(rt, b.p);
    return result;
}

zw_obj *
zw_str_from_format(zw_rt *rt, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    zw_obj *s = zw_str_from_formatv(rt, fmt, ap);
    va_end(ap);
    return s;
}
