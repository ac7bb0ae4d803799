/* trace/chain.c - the frame-pointer walk's tail: zwi_capture() walks the frames it keeps, then
 * counts the rest of the chain (total_nframe) here, checking instead of walking the part the
 * thread's last walk saw (zwi_chain in trace_internal.h says why that is exact). Following a chain
 * is a load that waits for the one before it, a few nanoseconds per frame on a deep stack;
 * checking a kept record is one 16-byte load from an address known in advance, which the
 * processor overlaps with the next ones. So the count costs the frames pushed past the limit
 * since the last walk plus a compare per older frame, not a walk to the root. Nothing here
 * allocates or locks: a hook calls it. */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#ifdef __SSE2__
#    include <emmintrin.h>
#endif

#include "trace_internal.h"

/* Can the walk read the record at `fp`? Inside [lo, hi), aligned, both words below hi.
 * hi - fp, not fp + 16 <= hi: a frame pointer near the top of the address space (code without
 * frame pointers leaves any value in rbp, -16 for one) must not wrap past the test. */
static inline bool
readable(const uintptr_t *fp, uintptr_t lo, uintptr_t hi)
{
    return (uintptr_t)fp >= lo && (uintptr_t)fp < hi &&
           hi - (uintptr_t)fp >= 2 * sizeof(uintptr_t) &&
           ((uintptr_t)fp & (sizeof(uintptr_t) - 1)) == 0;
}

/* Does the record at rec->at still hold rec->want? */
static inline bool
holds(const struct zwi_chain_rec *rec)
{
#ifdef __SSE2__
    __m128i got = _mm_loadu_si128((const __m128i *)rec->at);
    __m128i want = _mm_load_si128((const __m128i *)rec->want);
    return _mm_movemask_epi8(_mm_cmpeq_epi8(got, want)) == 0xFFFF;
#else
    const uintptr_t *r = (const uintptr_t *)rec->at;
    return r[0] == rec->want[0] && r[1] == rec->want[1];
#endif
}

/* The first kept record, from rec[j] toward the root, that no longer holds what it was read as;
 * -1 if all of rec[0..j] hold. */
static inline int
first_changed(const zwi_chain *c, int j)
{
    int k = j;
    for (; k > 0; k--) {
        if (!holds(&c->rec[k]))
            return k;
    }
    if (c->low ? ((const uintptr_t *)c->rec[0].at)[1] != c->rec[0].want[1] : !holds(&c->rec[0]))
        return 0;
    return -1;
}

/* Notes record `at` (return address `ret`) as the walk's next one; false if the walk outgrew the
 * cache (then nothing of it is kept). */
static inline bool
note(zwi_chain *c, unsigned *nw, uintptr_t at, uintptr_t ret)
{
    if (*nw == ZWI_CHAIN_CAP)
        return false;
    c->wrec[*nw] = at;
    c->wret[*nw] = ret;
    (*nw)++;
    return true;
}

unsigned zwi_capture_check_every;
atomic_uint zwi_capture_checked;

/* Check mode: the tail from `fp` counted again, plainly; a difference with `count` is a bug of
 * the kept chain: both go to standard error and the program aborts. */
static void
check_tail(const uintptr_t *fp, uintptr_t lo, uintptr_t hi, unsigned limit, unsigned count)
{
    static atomic_uint calls;
    if (atomic_fetch_add_explicit(&calls, 1, memory_order_relaxed) % zwi_capture_check_every != 0)
        return;
    unsigned plain = 0;
    while (readable(fp, lo, hi) && fp[1] >= 4096 && ++plain < limit) {
        const uintptr_t *next = (const uintptr_t *)fp[0];
        if (next <= fp)
            break;
        fp = next;
    }
    if (plain == count) {
        atomic_fetch_add_explicit(&zwi_capture_checked, 1, memory_order_relaxed);
        return;
    }
    char msg[160];
    int len = snprintf(msg, sizeof(msg),
                       "zw: preload: ZW_UNWIND=check: the frame-pointer chain past the limit "
                       "counted %u frames from the last walk, %u by a walk\n",
                       count, plain);
    (void)!write(2, msg, (size_t)len);
    abort();
}

unsigned
zwi_capture_tail(zwi_chain *c, const uintptr_t *fp, uintptr_t lo, uintptr_t hi, unsigned limit)
{
    const uintptr_t *from = fp;
    unsigned count = 0; /* return addresses met */
    unsigned nw = 0;    /* records of this walk in c->wrec, newest first */
    bool keep = true;   /* false once the walk outgrew the cache: it is then dropped */
    unsigned base = 0;  /* the kept records rec[0..base) end this walk */
    if (c->hi != hi) {
        c->n = 0;
        c->hi = hi;
    }
    int j = (int)c->n - 1; /* rec[j] is the first kept record not below fp */
    bool check = true;     /* false for the step from a kept record found changed */
    bool low = false;      /* how the walk ended, if not in kept records (see zwi_chain) */
    uintptr_t end = 0;
    while (readable(fp, lo, hi)) {
        uintptr_t at = (uintptr_t)fp;
        if (check) {
            while (j >= 0 && c->rec[j].at < at)
                j--;
            if (j >= 0 && c->rec[j].at == at) {
                /* the last walk's record: it and those after it are this walk's while they hold */
                int k = first_changed(c, j);
                count += (unsigned)(j - k) - (k < 0 && c->low ? 1u : 0u);
                if (k < 0) {
                    base = (unsigned)j + 1;
                    goto kept_end;
                }
                /* rec[k] changed: the walk goes on from it, step by step */
                for (int q = j; q > k && keep; q--)
                    keep = note(c, &nw, c->rec[q].at, c->rec[q].want[1]);
                fp = (const uintptr_t *)c->rec[k].at;
                j = k - 1;
                check = false;
                continue;
            }
        }
        check = keep;
        uintptr_t ret = fp[1];
        keep = keep && note(c, &nw, at, ret);
        if (ret < 4096) {
            low = true;
            break;
        }
        if (++count >= limit) {
            keep = false;
            break;
        }
        const uintptr_t *next = (const uintptr_t *)fp[0];
        end = (uintptr_t)next;
        if (next <= fp)
            break;
        fp = next;
    }
    c->low = low;
kept_end:
    if (keep && base + nw <= ZWI_CHAIN_CAP) {
        for (unsigned i = 0; i < nw; i++) {
            struct zwi_chain_rec *r = &c->rec[base + i];
            r->at = c->wrec[nw - 1 - i];
            r->want[0] = base + i > 0 ? r[-1].at : end;
            r->want[1] = c->wret[nw - 1 - i];
        }
        c->n = base + nw;
    } else {
        c->n = 0;
    }
    count = count < limit ? count : limit;
    if (ZW_UNLIKELY(zwi_capture_check_every != 0))
        check_tail(from, lo, hi, limit, count);
    return count;
}
