/* trace/progress.c - following a capture while its process writes it: each poll reads only the
 * bytes appended since the last one (whole sections; a section still being written is read at the
 * next poll) and keeps the last sample of its SERIES and SAMPLES sections, the largest heap seen,
 * and whether END was written. A capture rewritten at its end (packed: the offsets moved) is read
 * again from its start. zw run's status line is made of it. See
 * docs/format.md#captures. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zerowaste/capture.h>

#include "capture_format.h"
#include "container.h"

/* The samples of a PACKED section (a capture rewritten at its end, 1.6): its SAMPLES record. */
static int
packed_samples(zwi_cursor *c, zwi_samples *into)
{
    while (c->pos < c->len) {
        uint64_t type;
        size_t n;
        if (zwi_get_varint(c, &type) || zwi_get_count(c, 0, 1, "record byte", &n))
            return -1;
        if (type != ZWI_SEC_SAMPLES) {
            c->pos += n;
            continue;
        }
        zwi_cursor rec = *c;
        rec.len = c->pos + n;
        return zwi_decode_samples_packed(&rec, into);
    }
    return 0;
}

static int
poll_once(const char *path, zw_capture_progress *p)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return 0; /* not written yet */
    int rc = 0;
    unsigned char *buf = NULL;
    zw_raw *raw = zw_raw_new(NULL);
    uint64_t from = p->offset < ZWI_HEADER_SIZE ? ZWI_HEADER_SIZE : p->offset;
    long end;
    if (raw == NULL || fseek(f, 0, SEEK_END) != 0 || (end = ftell(f)) < 0) {
        rc = -1;
        goto out;
    }
    if ((uint64_t)end < from && p->offset > ZWI_HEADER_SIZE) {
        rc = -1; /* shorter than what was read: rewritten */
        goto out;
    }
    if ((uint64_t)end <= from) /* nothing new, or not even the header */
        goto out;
    size_t fresh = (size_t)((uint64_t)end - from);
    /* the file header, then the new bytes: a container of its own */
    if ((buf = malloc(ZWI_HEADER_SIZE + fresh)) == NULL || fseek(f, 0, SEEK_SET) != 0 ||
        fread(buf, 1, ZWI_HEADER_SIZE, f) != ZWI_HEADER_SIZE ||
        fseek(f, (long)from, SEEK_SET) != 0 || fread(buf + ZWI_HEADER_SIZE, 1, fresh, f) != fresh) {
        rc = -1;
        goto out;
    }
    zwi_container c;
    zw_error err;
    if (zwi_container_open(&c, buf, ZWI_HEADER_SIZE + fresh, ZWI_KIND_CAPTURE, path, raw, &err) !=
        0) {
        zwi_container_release(&c);
        rc = -1;
        goto out;
    }
    size_t consumed = ZWI_HEADER_SIZE;
    int got;
    while ((got = zwi_container_next(&c)) == 1) {
        consumed = c.next_off;
        if (c.type != ZWI_SEC_SERIES && c.type != ZWI_SEC_SAMPLES && c.type != ZWI_SEC_PACKED)
            continue;
        zwi_cursor cur;
        zwi_samples s = {0};
        if (zwi_container_payload(&c, &cur, raw) == 0 &&
            (c.type == ZWI_SEC_SERIES    ? zwi_decode_series(&cur, &s)
             : c.type == ZWI_SEC_SAMPLES ? zwi_decode_samples(&cur, &s)
                                         : packed_samples(&cur, &s)) == 0) {
            for (size_t i = 0; i < s.n; i++) {
                if (s.v[i].heap_bytes > p->peak_bytes)
                    p->peak_bytes = s.v[i].heap_bytes;
            }
            if (s.n > 0) {
                p->last = s.v[s.n - 1];
                p->known = true;
            }
        }
        zwi_free(raw, s.v);
    }
    if (got == 0 && c.ended) {
        p->ended = true;
        consumed = c.next_off > consumed ? c.next_off : consumed;
    }
    rc = got < 0 ? -1 : 0;
    zwi_container_release(&c);
    p->offset = from + (consumed - ZWI_HEADER_SIZE);
out:
    free(buf);
    zw_raw_destroy(raw);
    fclose(f);
    return rc;
}

int
zw_capture_poll(const char *path, zw_capture_progress *p)
{
    int rc = poll_once(path, p);
    if (rc != 0 && p->offset > ZWI_HEADER_SIZE) {
        /* rewritten at its end: what was read stands, the offsets start again */
        p->offset = 0;
        rc = poll_once(path, p);
    }
    return rc;
}
