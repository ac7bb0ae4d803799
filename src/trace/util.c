/* trace/util.c - the small containers of the trace layer's slow side (snapshots, statistics,
 * the symbol cache, files) and of the zw command: memory from a zw_raw door, a string set, a
 * 64-bit key map, a byte buffer (trace_util.h). None of them allocates through mem, which the
 * tracer may be tracing. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "trace_internal.h"

/* ---- memory ---- */

void *
zwi_alloc(zw_raw *raw, size_t n)
{
    return zw_raw_malloc(raw, n == 0 ? 1 : n);
}

void *
zwi_realloc(zw_raw *raw, void *p, size_t n)
{
    return zw_raw_realloc(raw, p, n == 0 ? 1 : n);
}

void
zwi_free(zw_raw *raw, void *p)
{
    zw_raw_free(raw, p);
}

int
zwi_reserve(zw_raw *raw, void **v, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap < 8 ? 8 : *cap;
    while (n < need) {
        if (n > SIZE_MAX / 2 / size) {
            errno = ENOMEM;
            return -1;
        }
        n *= 2;
    }
    void *p = zwi_realloc(raw, *v, n * size);
    if (p == NULL)
        return -1;
    *v = p;
    *cap = n;
    return 0;
}

int
zwi_fd_high(int fd, bool cloexec)
{
    if (fd < 0 || fd >= ZWI_HIGH_FD)
        return fd;
    int h = fcntl(fd, cloexec ? F_DUPFD_CLOEXEC : F_DUPFD, ZWI_HIGH_FD);
    if (h < 0)
        return fd;
    close(fd);
    return h;
}

uint64_t
zwi_hash_bytes(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *b = p;
    uint64_t h = 0xcbf29ce484222325ULL ^ seed;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ULL;
    h ^= h >> 32;
    return h;
}

/* ---- strings ---- */

/* A stored string is one block: its length (a uint64_t, so the bytes stay 8-byte aligned for
 * keys that are records), the bytes, a NUL. strs[i] points at the bytes. */
#define STR_HEADER sizeof(uint64_t)

size_t
zwi_strtab_len(const char *s)
{
    uint64_t n;
    memcpy(&n, s - STR_HEADER, sizeof(n));
    return (size_t)n;
}

void
zwi_strtab_init(zwi_strtab *st, zw_raw *raw)
{
    *st = (zwi_strtab){.raw = raw};
}

void
zwi_strtab_release(zwi_strtab *st)
{
    for (size_t i = 0; i < st->count; i++)
        zwi_free(st->raw, (char *)st->strs[i] - STR_HEADER);
    zwi_free(st->raw, st->strs);
    zwi_free(st->raw, st->slots);
    *st = (zwi_strtab){0};
}

static int
strtab_grow(zwi_strtab *st)
{
    size_t cap = st->slots == NULL ? 64 : (st->mask + 1) * 2;
    uint32_t *slots = zwi_alloc(st->raw, cap * sizeof(uint32_t));
    if (slots == NULL)
        return -1;
    memset(slots, 0, cap * sizeof(uint32_t));
    for (size_t i = 0; i < st->count; i++) {
        const char *s = st->strs[i];
        size_t j = zwi_hash_bytes(s, zwi_strtab_len(s), 0) & (cap - 1);
        while (slots[j] != 0)
            j = (j + 1) & (cap - 1);
        slots[j] = (uint32_t)(i + 1);
    }
    zwi_free(st->raw, st->slots);
    st->slots = slots;
    st->mask = cap - 1;
    return 0;
}

const char *
zwi_strtab_add(zwi_strtab *st, const char *s, size_t len, uint32_t *index)
{
    if (s == NULL) {
        if (index != NULL)
            *index = UINT32_MAX;
        return NULL;
    }
    if ((st->slots == NULL || 2 * (st->count + 1) > st->mask + 1) && strtab_grow(st) != 0)
        return NULL;
    size_t j = zwi_hash_bytes(s, len, 0) & st->mask;
    for (uint32_t k; (k = st->slots[j]) != 0; j = (j + 1) & st->mask) {
        const char *t = st->strs[k - 1];
        if (zwi_strtab_len(t) == len && memcmp(t, s, len) == 0) {
            if (index != NULL)
                *index = k - 1;
            return t;
        }
    }
    if (st->count >= UINT32_MAX - 1 || len > SIZE_MAX - STR_HEADER - 1 ||
        zwi_reserve(st->raw, (void **)&st->strs, &st->cap, st->count + 1, sizeof(char *)) != 0)
        return NULL;
    char *block = zwi_alloc(st->raw, STR_HEADER + len + 1);
    if (block == NULL)
        return NULL;
    uint64_t n = len;
    memcpy(block, &n, sizeof(n));
    char *copy = block + STR_HEADER;
    memcpy(copy, s, len);
    copy[len] = '\0';
    st->strs[st->count] = copy;
    st->slots[j] = (uint32_t)(st->count + 1);
    if (index != NULL)
        *index = (uint32_t)st->count;
    st->count++;
    st->bytes += STR_HEADER + len + 1;
    return copy;
}

const char *
zwi_strtab_find(const zwi_strtab *st, const char *s)
{
    if (s == NULL || st->slots == NULL)
        return NULL;
    size_t len = strlen(s);
    size_t j = zwi_hash_bytes(s, len, 0) & st->mask;
    for (uint32_t k; (k = st->slots[j]) != 0; j = (j + 1) & st->mask) {
        const char *t = st->strs[k - 1];
        if (zwi_strtab_len(t) == len && memcmp(t, s, len) == 0)
            return t;
    }
    return NULL;
}

const char *
zwi_strtab_intern(zwi_strtab *st, const char *s)
{
    return s == NULL ? NULL : zwi_strtab_add(st, s, strlen(s), NULL);
}

uint32_t
zwi_strtab_index(const zwi_strtab *st, const char *s)
{
    if (s == NULL)
        return UINT32_MAX;
    size_t j = zwi_hash_bytes(s, zwi_strtab_len(s), 0) & st->mask;
    for (uint32_t k; (k = st->slots[j]) != 0; j = (j + 1) & st->mask) {
        if (st->strs[k - 1] == s)
            return k - 1;
    }
    ZW_ASSERT(!"string not from this table");
    return UINT32_MAX;
}

/* ---- maps ---- */

void
zwi_map_init(zwi_map *m, zw_raw *raw)
{
    memset(m, 0, sizeof(*m));
    m->raw = raw;
}

void
zwi_map_release(zwi_map *m)
{
    zwi_free(m->raw, m->slots);
    memset(m, 0, sizeof(*m));
}

static size_t
map_home(uint64_t key, size_t mask)
{
    key = (key ^ (key >> 33)) * 0xff51afd7ed558ccdULL;
    key ^= key >> 33;
    return (size_t)key & mask;
}

void *
zwi_map_get(const zwi_map *m, uint64_t key)
{
    if (m->slots == NULL)
        return NULL;
    for (size_t i = map_home(key, m->mask); m->slots[i].key != 0; i = (i + 1) & m->mask) {
        if (m->slots[i].key == key)
            return m->slots[i].value;
    }
    return NULL;
}

int
zwi_map_put(zwi_map *m, uint64_t key, void *value)
{
    ZW_ASSERT(key != 0);
    if (m->slots == NULL || 2 * (m->count + 1) > m->mask + 1) {
        size_t cap = m->slots == NULL ? 64 : (m->mask + 1) * 2;
        /* calloc: a door with fresh pages (the end of a capture's arena) need not clear them */
        struct zwi_map_slot *slots = zw_raw_calloc(m->raw, cap, sizeof(*slots));
        if (slots == NULL)
            return -1;
        for (size_t i = 0; m->slots != NULL && i <= m->mask; i++) {
            if (m->slots[i].key == 0)
                continue;
            size_t j = map_home(m->slots[i].key, cap - 1);
            while (slots[j].key != 0)
                j = (j + 1) & (cap - 1);
            slots[j] = m->slots[i];
        }
        zwi_free(m->raw, m->slots);
        m->slots = slots;
        m->mask = cap - 1;
    }
    size_t i = map_home(key, m->mask);
    for (; m->slots[i].key != 0; i = (i + 1) & m->mask) {
        if (m->slots[i].key == key) {
            m->slots[i].value = value;
            return 0;
        }
    }
    m->slots[i].key = key;
    m->slots[i].value = value;
    m->count++;
    return 0;
}

/* ---- byte buffers ---- */

unsigned char *
zwi_cbuf_grow(zwi_cbuf *b, size_t n)
{
    if (b->failed || n > SIZE_MAX - b->len ||
        zwi_reserve(b->raw, (void **)&b->data, &b->cap, b->len + n, 1) != 0) {
        b->failed = true;
        return NULL;
    }
    unsigned char *p = b->data + b->len;
    b->len += n;
    return p;
}

void
zwi_cbuf_put(zwi_cbuf *b, uint64_t v, int nbytes)
{
    unsigned char *p = zwi_cbuf_grow(b, (size_t)nbytes);
    for (int i = 0; p != NULL && i < nbytes; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Written in place (room for the longest, 10 bytes, made first): the end of a large capture
 * writes millions, and a copy of each through memcpy() cost more than the encoding. */
void
zwi_cbuf_varint(zwi_cbuf *b, uint64_t v)
{
    if (b->cap - b->len < 10 && zwi_cbuf_grow(b, 10) != NULL)
        b->len -= 10;
    if (b->failed)
        return;
    unsigned char *p = b->data + b->len;
    size_t n = 0;
    while (v > 0x7f) {
        p[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (unsigned char)v;
    b->len += n;
}

void
zwi_cbuf_bytes(zwi_cbuf *b, const void *src, size_t n)
{
    unsigned char *p = zwi_cbuf_grow(b, n);
    if (p != NULL && n > 0)
        memcpy(p, src, n);
}

void
zwi_cbuf_patch(zwi_cbuf *b, size_t at, uint64_t v, int nbytes)
{
    for (int i = 0; !b->failed && at + (size_t)nbytes <= b->len && i < nbytes; i++)
        b->data[at + (size_t)i] = (unsigned char)(v >> (8 * i));
}

void
zwi_cbuf_printf(zwi_cbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    unsigned char *p = zwi_cbuf_grow(b, (size_t)n + 1); /* vsnprintf writes a NUL too */
    if (p == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf((char *)p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len--;
}

void
zwi_cbuf_release(zwi_cbuf *b)
{
    zwi_free(b->raw, b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = false;
}
