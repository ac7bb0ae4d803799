/* tests/trace/test_chain.c - the frame-pointer walk that checks, instead of walking, the part of
 * the chain the thread's last walk saw (zwi_capture_from and zwi_capture_tail, src/trace/chain.c):
 * on a made-up stack of frame records that calls, returns and reuses stack addresses with the same
 * functions and other callers below them, every walk with the kept chain gives what the plain walk
 * gives (the loop zwi_capture had before the cache, copied here), frames and total alike, whatever
 * the limit and the frames skipped; and the outer frames a traceback shares with a path
 * (zwi_shared_outer) count as a compare per frame counts them. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "trace_internal.h"

#define WORDS  16384 /* the made-up stack */
#define FRAMES 1400  /* more than ZWI_CHAIN_CAP: the cache must also give up */

static uintptr_t stk[WORDS];
static zwi_chain C;

/* The plain walk: zwi_capture's loop before the cache. */
static unsigned
plain_walk(const uintptr_t *fp, uintptr_t hi, unsigned skip, uintptr_t *out, unsigned max,
           unsigned *total)
{
    uintptr_t lo = (uintptr_t)fp;
    unsigned n = 0;
    unsigned depth = 0;
    while ((uintptr_t)fp >= lo && (uintptr_t)fp < hi &&
           hi - (uintptr_t)fp >= 2 * sizeof(uintptr_t) &&
           ((uintptr_t)fp & (sizeof(uintptr_t) - 1)) == 0) {
        uintptr_t ret = fp[1];
        if (ret < 4096)
            break;
        if (depth >= skip) {
            if (n < max)
                out[n] = ret;
            n++;
        }
        if (++depth >= 65535 + skip)
            break;
        const uintptr_t *next = (const uintptr_t *)fp[0];
        if (next <= fp)
            break;
        fp = next;
    }
    *total = n;
    return n < max ? n : max;
}

/* The made-up program's frames: word index of each record, root first. */
static unsigned rec_at[FRAMES + 1];
static unsigned nframes;

/* A return address from a small set, so that other callers often look the same. */
static uintptr_t
some_ret(void)
{
    return 0x400000 + 16 * (uintptr_t)(rand() % 4);
}

/* Pushes a frame of 2 or 4 words (two sizes: the same record addresses come back) below the
 * newest; false if the stack is full. */
static bool
push(void)
{
    unsigned size = rand() % 2 ? 2 : 4;
    if (nframes == 0 || nframes >= FRAMES || rec_at[nframes - 1] < size + 8)
        return false;
    unsigned at = rec_at[nframes - 1] - size;
    stk[at] = (uintptr_t)&stk[rec_at[nframes - 1]];
    stk[at + 1] = some_ret();
    rec_at[nframes++] = at;
    return true;
}

/* A new root record near the top of the stack, ending the chain one of three ways. */
static void
new_root(void)
{
    unsigned at = WORDS - 8;
    int how = rand() % 3;
    /* how 1: past the stack's end (an address, not a pointer into stk) */
    stk[at] = how == 0   ? 0
              : how == 1 ? (uintptr_t)stk + (WORDS + 64) * sizeof(uintptr_t)
                         : (uintptr_t)&stk[at + 2];
    stk[at + 1] = some_ret();
    stk[at + 2] = 0; /* how 2: one more record whose return address is not a frame */
    stk[at + 3] = rand() % 2 ? 0 : 7;
    rec_at[0] = at;
    nframes = 1;
}

/* Walks from the newest frame with the kept chain and plainly; both must agree. */
static void
compare(unsigned skip, unsigned max, uintptr_t hi)
{
    static uintptr_t got[1024], want[1024]; /* the largest max below */
    const uintptr_t *fp = &stk[rec_at[nframes - 1]];
    unsigned total_got = 12345, total_want = 54321;
    unsigned n_got = zwi_capture_from(&C, fp, hi, skip, got, max, &total_got);
    unsigned n_want = plain_walk(fp, hi, skip, want, max, &total_want);
    cr_assert_eq(n_got, n_want, "%u frames, the plain walk %u (skip %u, max %u, %u frames)", n_got,
                 n_want, skip, max, nframes);
    cr_assert_eq(total_got, total_want, "total %u, the plain walk %u (skip %u, max %u)", total_got,
                 total_want, skip, max);
    for (unsigned i = 0; i < n_want; i++)
        cr_assert_eq(got[i], want[i], "frame %u of %u", i, n_want);
}

Test(trace_chain, kept_walks_equal_plain_ones_whatever_the_stack_did)
{
    srand(1234);
    uintptr_t hi = (uintptr_t)&stk[WORDS];
    new_root();
    static const unsigned maxes[] = {1, 3, 16, 64, 1024};
    unsigned deep = 0; /* walks on stacks deeper than the cache */
    for (int step = 0; step < 20000; step++) {
        int op = rand() % 100;
        if (op < 2) {
            new_root(); /* another bottom of the stack under everything */
        } else if (op < 45) {
            unsigned k = 1 + rand() % 3; /* returns, then calls: other frames where old ones were */
            while (k-- > 0 && nframes > 1)
                nframes--;
            for (unsigned m = rand() % 4; m > 0; m--)
                push();
        } else if (op < 50 && nframes > 2) {
            /* a frame deep down returns to another caller at the same address (longjmp, or the
             * program returned and called again): one word changes, the records above stay */
            unsigned f = 1 + rand() % (nframes - 1);
            stk[rec_at[f] + 1] = some_ret();
        } else if (op < 52 && nframes > 2) {
            unsigned f = 1 + rand() % (nframes - 1); /* its saved rbp points elsewhere */
            stk[rec_at[f]] = rand() % 2 ? (uintptr_t)&stk[rec_at[f - 1] + 2] : 0;
        } else if (op < 54) {
            while (push()) /* a deep recursion, past the cache's size */
                ;
        } else {
            for (unsigned m = rand() % 3; m > 0; m--)
                push();
        }
        deep += nframes > ZWI_CHAIN_CAP;
        unsigned skip = rand() % 3;
        unsigned max = maxes[rand() % 5];
        compare(skip, max, hi);
        if (step % 1000 == 999) /* another stack bound: nothing kept applies */
            compare(skip, max, hi - 16);
    }
    cr_assert_gt(deep, 0, "some walks went deeper than the cache holds");
}

/* The frames past the limit are only counted: after a walk, the next one from two frames further
 * on keeps the chain's tail (the records past the limit, root first), walking only where its tail
 * begins now, and a record changed in it is seen. */
Test(trace_chain, a_deeper_walk_walks_only_the_new_frames)
{
    srand(99);
    uintptr_t hi = (uintptr_t)&stk[WORDS];
    memset(&C, 0, sizeof(C));
    new_root();
    stk[rec_at[0]] = 0; /* the chain ends at the root */
    for (int i = 0; i < 40; i++)
        cr_assert(push());
    compare(0, 16, hi);
    cr_assert_eq(C.n, 41 - 16, "the tail is kept");
    cr_assert(push());
    cr_assert(push());
    compare(0, 16, hi);
    cr_assert_eq(C.n, 43 - 16);
    cr_assert_eq(C.rec[20].at, (uintptr_t)&stk[rec_at[20]],
                 "the older records stay where they were");
    stk[rec_at[20] + 1] = 0x500000; /* another caller, same address */
    compare(0, 16, hi);
    cr_assert_eq(C.rec[20].want[1], 0x500000, "the changed record is walked again");
    cr_assert_eq(C.n, 43 - 16);
    compare(0, 64, hi); /* no tail: what is kept stays */
    cr_assert_eq(C.n, 43 - 16);
}

/* zwi_shared_outer: the outer frames shared with a path, as a compare per frame counts them, for
 * every length, bound and first difference (the four-at-a-time loop and the one after it). */
Test(trace_chain, shared_outer_frames_count_as_frame_by_frame)
{
    enum { N = 13 };
    uintptr_t frames[N], path[N];
    for (unsigned n = 0; n <= N; n++) {
        for (unsigned m = 0; m <= n; m++) {
            for (unsigned diff = 0; diff <= m; diff++) { /* path[diff] differs (none if == m) */
                for (unsigned i = 0; i < n; i++)
                    frames[i] = 0x400000 + 16 * i;
                for (unsigned j = 0; j < m; j++)
                    path[j] = j == diff ? 1 : frames[n - 1 - j];
                unsigned want = 0;
                while (want < m && path[want] == frames[n - 1 - want])
                    want++;
                cr_assert_eq(want, diff, "n %u m %u diff %u", n, m, diff);
                cr_assert_eq(zwi_shared_outer(path, frames, n, m), want, "n %u m %u diff %u", n,
                             m, diff);
            }
        }
    }
}
