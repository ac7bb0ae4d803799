/* preload/unwind.c - the unwinder's slow paths: module votes, the DWARF walk that learns skip
 * slots, the walk's repair. The fast path and the state are in unwinder.h, which says how the
 * pieces fit; see docs/zw.md#how-it-works. Nothing here allocates: a hook calls it. */
#include <dlfcn.h>
#include <link.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <unwind.h>
#ifdef ZW_HAVE_LIBUNWIND
#    define UNW_LOCAL_ONLY
#    include <libunwind.h>
#endif

#include "trace_internal.h"
#include "unwinder.h"

/* ---- which modules keep frame pointers ---- */

/* One walk's evidence on the frame pointers of the module holding `pc`. */
static void
module_vote(zwi_unwinder *u, uintptr_t pc, bool keeps)
{
    struct zwi_unwind_module *m = zwi_preload_unwind_module_of(u, pc);
    if (m == NULL)
        return;
    int fp = atomic_load_explicit(&m->fp, memory_order_relaxed);
    if (fp >= 0 && fp < ZWI_UNWIND_FP_TRUSTED + 1)
        atomic_store_explicit(&m->fp, keeps ? fp + 1 : -1, memory_order_relaxed);
    else if (fp >= 0 && !keeps)
        atomic_store_explicit(&m->fp, -1, memory_order_relaxed);
}

typedef struct note_ctx {
    zwi_unwinder *u;
    const char *const *runtime; /* NULL-terminated: names of the libraries without frame pointers */
} note_ctx;

/* dl_iterate_phdr callback: notes the executable segments of every module (u->mods), and those
 * of the runtime libraries, built without frame pointers (u->nofp). */
static int
note_modules(struct dl_phdr_info *info, size_t size, void *arg)
{
    note_ctx *ctx = arg;
    zwi_unwinder *u = ctx->u;
    const char *name = info->dlpi_name;
    bool runtime = false;
    for (const char *const *r = ctx->runtime; name != NULL && r != NULL && *r != NULL; r++)
        runtime = runtime || strstr(name, *r) != NULL;
    for (unsigned i = 0; i < info->dlpi_phnum && u->nmods < ZWI_UNWIND_MAX_MODULES; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
            uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
            u->mods[u->nmods].lo = lo;
            u->mods[u->nmods].hi = lo + ph->p_memsz;
            atomic_store(&u->mods[u->nmods].fp, runtime ? -1 : 0);
            u->nmods++;
        }
    }
    if (!runtime)
        return 0;
    for (unsigned i = 0; i < info->dlpi_phnum && u->nnofp < ZWI_UNWIND_NOFP_RANGES; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
            uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
            u->nofp[u->nnofp++] = (struct zwi_unwind_range){lo, lo + ph->p_memsz};
        }
    }
    return 0;
}

bool
zwi_preload_unwind_set_mode(zwi_unwinder *u, const char *value)
{
    if (value == NULL || *value == '\0') {
#if defined(__x86_64__) && defined(__linux__)
        u->mode = ZWI_UNWIND_SHADOW;
#else
        u->mode = ZWI_UNWIND_INCREMENTAL;
#endif
        u->mode_named = false;
        u->check_every = 0;
        return true;
    }
    u->mode_named = true;
    if (strcmp(value, "incremental") == 0) {
        u->mode = ZWI_UNWIND_INCREMENTAL;
        u->check_every = 0;
        return true;
    }
    if (strcmp(value, "shadow") == 0) {
        u->mode = ZWI_UNWIND_SHADOW;
        u->check_every = 0;
        return true;
    }
    if (strcmp(value, "cfa") == 0) {
        u->mode = ZWI_UNWIND_CFA;
        u->check_every = 0;
        return true;
    }
    if (strcmp(value, "dwarf") == 0 || strcmp(value, "fp") == 0) {
        u->mode = value[0] == 'd' ? ZWI_UNWIND_DWARF : ZWI_UNWIND_FP;
        u->check_every = 0;
        return true;
    }
    unsigned every = 1;
    bool shadow = strncmp(value, "shadow-", 7) == 0;
    const char *check = shadow ? value + 7 : value;
    if (strncmp(check, "check", 5) != 0)
        return false;
    if (check[5] == ':') {
        char *end;
        unsigned long v = strtoul(check + 6, &end, 10);
        if (check[6] < '0' || check[6] > '9' || *end != '\0' || v < 1 || v > 1u << 30)
            return false;
        every = (unsigned)v;
    } else if (check[5] != '\0') {
        return false;
    }
    u->mode = shadow ? ZWI_UNWIND_SHADOW : ZWI_UNWIND_CHECK;
    u->check_every = every;
    return true;
}

void
zwi_preload_unwind_init(zwi_unwinder *u, const char *const *runtime, const char *mode)
{
    memset(u, 0, sizeof(*u));
    note_ctx ctx = {u, runtime};
    dl_iterate_phdr(note_modules, &ctx);
    if (!zwi_preload_unwind_set_mode(u, mode)) {
        char msg[256];
        int n = snprintf(msg, sizeof(msg),
                         "zw: preload: warning: ZW_UNWIND='%.64s' is not incremental, cfa, dwarf, "
                         "fp, shadow, check[:N] or shadow-check[:N], using incremental\n",
                         mode);
        (void)!write(2, msg, (size_t)(n < (int)sizeof(msg) ? n : (int)sizeof(msg) - 1));
    }
    const char *why;
    if (u->mode == ZWI_UNWIND_SHADOW && !u->mode_named && !zwi_preload_shadow_usable(&why)) {
        u->mode = ZWI_UNWIND_INCREMENTAL; /* the default, silently */
    } else if (u->mode == ZWI_UNWIND_SHADOW && !zwi_preload_shadow_usable(&why)) {
        char msg[256];
        int n = snprintf(msg, sizeof(msg),
                         "zw: preload: warning: ZW_UNWIND=shadow cannot replace return addresses "
                         "(%s), using incremental\n",
                         why);
        (void)!write(2, msg, (size_t)(n < (int)sizeof(msg) ? n : (int)sizeof(msg) - 1));
        u->mode = u->check_every != 0 ? ZWI_UNWIND_CHECK : ZWI_UNWIND_INCREMENTAL;
    }
    zwi_preload_shadow_resolve();
    if (u->mode == ZWI_UNWIND_SHADOW) {
        zwi_preload_shadow_named(u->mode_named);
        atomic_store_explicit(&zwi_preload_unwind_screening, true, memory_order_relaxed);
        /* glibc's backtrace() loads libgcc's unwinder at its first call, allocating: once that
         * allocation's walk had patched the frames it then reads, it would stop at the first */
        int (*bt)(void **, int) = (int (*)(void **, int))dlsym(RTLD_NEXT, "backtrace");
        void *one[1];
        if (bt != NULL)
            (void)bt(one, 1);
    }
    /* check mode also checks the frame-pointer chains counted from the last walk */
    zwi_capture_check_every = u->check_every;
}

void
zwi_preload_unwind_unloaded(zwi_unwinder *u)
{
    /* skip entries are learnt for return addresses into the runtime libraries, loaded at start:
     * one whose code is no longer loaded (a runtime library loaded late) goes */
    for (size_t i = 0; i < ZWI_UNWIND_SKIP_CACHE; i++) {
        uint64_t e = atomic_load_explicit(&u->skip[i], memory_order_relaxed);
        struct dl_find_object dlfo;
        if (e != 0 && _dl_find_object((void *)(uintptr_t)(e >> 16), &dlfo) != 0)
            atomic_store_explicit(&u->skip[i], 0, memory_order_relaxed);
    }
#ifdef ZW_HAVE_LIBUNWIND
    unw_flush_cache(unw_local_addr_space, 0, 0);
#endif
    zwi_preload_unwind_forget_cfa(u); /* last: threads then drop their last walks */
}

#ifdef ZW_HAVE_LIBUNWIND
/* libunwind's walk from here: unw_backtrace() (its first frame this function's caller, which it is
 * inlined into), or, once code was unloaded, the same walk by unw_step(): unw_backtrace keeps each
 * thread's rules by return address in a cache no call empties, which another module mapped where
 * the unloaded one was makes wrong; unw_step's caches unw_flush_cache() emptied. */
static inline __attribute__((always_inline)) int
libunwind_walk(zwi_unwinder *u, void **buf, int max)
{
    if (ZW_LIKELY(atomic_load_explicit(&u->unloads, memory_order_relaxed) == 0))
        return unw_backtrace(buf, max); /* shadow mode: between unpatch and repatch */
    unw_context_t ctx;
    unw_cursor_t cur;
    if (unw_getcontext(&ctx) != 0 || unw_init_local(&cur, &ctx) != 0)
        return 0;
    int n = 0;
    do {
        unw_word_t ip;
        if (unw_get_reg(&cur, UNW_REG_IP, &ip) != 0 || ip == 0)
            break;
        buf[n++] = (void *)ip;
    } while (n < max && unw_step(&cur) > 0);
    return n;
}

static atomic_uint checked; /* check mode: walks compared in this process, for its last words */
static atomic_ulong checked_reused; /* frames of those walks taken from the walk before */

/* At exit, in check mode: how many walks were compared (all agreed, or the program aborted). */
__attribute__((destructor)) static void
report_checked(void)
{
    unsigned tails = atomic_load_explicit(&zwi_capture_checked, memory_order_relaxed);
    if (tails > 0) {
        char msg[160];
        int len = snprintf(msg, sizeof(msg),
                           "zw: preload: ZW_UNWIND=check: %u frame-pointer chains past the limit "
                           "counted as a walk counts them\n",
                           tails);
        (void)!write(2, msg, (size_t)len);
    }
    unsigned n = atomic_load_explicit(&checked, memory_order_relaxed);
    if (n == 0)
        return;
    char msg[160];
    int len = snprintf(msg, sizeof(msg),
                       "zw: preload: ZW_UNWIND=check: %u walks agreed with libunwind's (%lu frames "
                       "of them reused from the walk before)\n",
                       n, atomic_load_explicit(&checked_reused, memory_order_relaxed));
    (void)!write(2, msg, (size_t)len);
}

/* Check mode: the incremental walk's frames[0..n) against libunwind's got[0..ngot); a difference
 * is a bug of the CFA walker: both walks go to standard error and the program aborts. */
static void
check_walk(const uintptr_t *frames, int n, void *const *got, int ngot)
{
    bool same = n == ngot;
    for (int i = 0; same && i < n; i++)
        same = frames[i] == (uintptr_t)got[i];
    if (same) {
        atomic_fetch_add_explicit(&checked, 1, memory_order_relaxed);
        return;
    }
    char msg[160];
    int len = snprintf(msg, sizeof(msg),
                       "zw: preload: ZW_UNWIND=check: the CFA walk (%d frames) differs from "
                       "libunwind's (%d frames)\n",
                       n, ngot);
    (void)!write(2, msg, (size_t)len);
    for (int i = 0; i < n || i < ngot; i++) {
        len = snprintf(msg, sizeof(msg), "  #%-3d cfa %#18lx  libunwind %#18lx%s\n", i,
                       i < n ? (unsigned long)frames[i] : 0ul,
                       i < ngot ? (unsigned long)(uintptr_t)got[i] : 0ul,
                       i < n && i < ngot && frames[i] == (uintptr_t)got[i] ? "" : "  <--");
        (void)!write(2, msg, (size_t)len);
    }
    abort();
}
#endif

/* ---- the DWARF walk ---- */

typedef struct unwind_walk {
    zwi_unwinder *u;
    uintptr_t *out;
    unsigned n;
    unsigned max;
    unsigned skip;      /* frames still to skip: ours, down to the hook's */
    uintptr_t stack_hi; /* the thread's stack ends there */
    uintptr_t prev_rbp; /* rbp in the frame recorded last, and its stack pointer */
    uintptr_t prev_sp;
    uintptr_t fp; /* set where the walk reached a frame that keeps a frame pointer: its rbp */
} unwind_walk;

static _Unwind_Reason_Code
unwind_step(struct _Unwind_Context *ctx, void *arg)
{
    unwind_walk *w = arg;
    uintptr_t ip = _Unwind_GetIP(ctx);
    if (ip == 0)
        return _URC_END_OF_STACK;
    uintptr_t rbp = _Unwind_GetGR(ctx, 6); /* DWARF register 6 */
    uintptr_t sp = _Unwind_GetCFA(ctx);    /* libgcc: this frame's stack pointer at the call */
    if (w->skip > 0) {
        w->skip--;
        w->prev_rbp = w->prev_sp = 0;
        return _URC_NO_REASON;
    }
    /* Did the frame recorded last keep a frame pointer? Then its rbp points at its frame record:
     * the return address into this frame, and this frame's rbp. */
    const uintptr_t *rec = (const uintptr_t *)w->prev_rbp;
    bool prev_keeps_fp = w->prev_rbp >= w->prev_sp && w->prev_sp != 0 &&
                         w->prev_rbp < w->stack_hi && w->stack_hi - w->prev_rbp >= 16 &&
                         (w->prev_rbp & 7) == 0 && rec[1] == ip && rec[0] == rbp;
    w->out[w->n++] = ip;
    if (w->n == 3 && zwi_preload_unwind_in_nofp(w->u, w->out[0]) &&
        !zwi_preload_unwind_in_nofp(w->u, w->out[1]))
        module_vote(w->u, w->out[1],
                    prev_keeps_fp); /* the runtime's caller: did it keep its rbp? */
    if (w->n >= w->max)
        return _URC_END_OF_STACK;
    if (prev_keeps_fp && w->n >= 2 && !zwi_preload_unwind_in_nofp(w->u, w->out[w->n - 2])) {
        /* code that keeps frame pointers (as the program's, built with them): the chain goes on
         * from this frame's rbp by frame pointers, many times cheaper per frame than the
         * unwinder */
        w->fp = rbp;
        return _URC_END_OF_STACK;
    }
    w->prev_rbp = rbp;
    w->prev_sp = sp;
    return _URC_NO_REASON;
}

/* The frame-pointer walk found only the hook's caller, or the caller is in the C or C++ runtime:
 * code built without frame pointers (the C library's strdup, fopen, printf; libstdc++'s operator
 * new), whose caller the chain skips or loses. Walks the stack again with the DWARF unwinder
 * (libgcc's, which finds unwind tables through _dl_find_object: no lock, no malloc), slower but
 * complete. Keeps the frame-pointer result if the unwinder finds no more. Called from
 * zwi_preload_unwind_slow() only, itself called from a hook (three frames to skip). */
static __attribute__((noinline)) unsigned
unwind_dwarf(zwi_unwinder *u, uintptr_t *frames, unsigned max, unsigned found, uintptr_t stack_lo,
             uintptr_t stack_hi, const uintptr_t *hook_fp, bool learn)
{
    uintptr_t first = frames[0];
    uintptr_t fp_next = found >= 2 ? frames[1] : 0; /* what the frame-pointer walk saw next */
    /* frames to skip: this function's, zwi_preload_unwind_slow()'s and the hook's */
    unwind_walk w = {u, frames, 0, max, 3, stack_hi, 0, 0, 0};
    int cfa = -1;
    if (!learn && u->mode != ZWI_UNWIND_DWARF) {
        /* the caller of the hook at the call: its return address, stack pointer and rbp */
        uintptr_t pc = hook_fp[1], sp = (uintptr_t)(hook_fp + 2), rbp = hook_fp[0];
        if (u->mode == ZWI_UNWIND_CFA)
            cfa = zwi_preload_unwind_cfa(u, frames, max, pc, sp, rbp, stack_hi);
        else if (u->mode == ZWI_UNWIND_SHADOW)
            cfa = zwi_preload_unwind_shadow(u, frames, max, pc, sp, rbp, stack_lo, stack_hi);
        else
            cfa = zwi_preload_unwind_incremental(u, frames, max, pc, sp, rbp, stack_hi);
        if (cfa >= 0)
            w.n = (unsigned)cfa;
    }
    /* shadow mode: the other unwinders read the real return addresses, put back for them */
    unsigned unpatched = 0;
    bool shadow = u->mode == ZWI_UNWIND_SHADOW && zwi_preload_shadow_live();
#ifdef ZW_HAVE_LIBUNWIND
    if (cfa >= 0 && u->check_every != 0 &&
        atomic_fetch_add_explicit(&u->check_count, 1, memory_order_relaxed) % u->check_every == 0) {
        void *buf[ZWI_UNWIND_MAX_FRAMES + 3];
        if (shadow)
            unpatched = zwi_preload_shadow_unpatch();
        int got = libunwind_walk(u, buf, (int)max + 3);
        if (shadow)
            zwi_preload_shadow_repatch(unpatched);
        check_walk(frames, cfa, buf + 3, got > 3 ? got - 3 : 0);
        atomic_fetch_add_explicit(&checked_reused,
                                  u->mode == ZWI_UNWIND_SHADOW ? zwi_preload_shadow_reused()
                                                               : zwi_preload_unwind_reused(),
                                  memory_order_relaxed);
    }
    if (shadow && cfa < 0)
        unpatched = zwi_preload_shadow_unpatch(); /* up to the end of this walk */
    if (cfa < 0 && !learn) {
        /* a frame the CFA walker cannot follow: libunwind's unw_backtrace, which caches how to
         * unwind each return address it has seen, is several times faster than libgcc's */
        void *buf[ZWI_UNWIND_MAX_FRAMES + 3];
        int got = libunwind_walk(u, buf, (int)max + 3);
        for (int i = 3; i < got; i++)
            frames[w.n++] = (uintptr_t)buf[i];
        cfa = (int)w.n;
    }
#endif
    if (cfa < 0)
        _Unwind_Backtrace(unwind_step, &w);
    /* the rest of the chain by frame pointers (as zwi_capture walks it: up the stack only,
     * aligned, inside this thread's stack) */
    const uintptr_t *fp = (const uintptr_t *)w.fp;
    uintptr_t lo = (uintptr_t)__builtin_frame_address(0);
    while (w.fp != 0 && w.n < max && (uintptr_t)fp >= lo && (uintptr_t)fp < stack_hi &&
           stack_hi - (uintptr_t)fp >= 2 * sizeof(uintptr_t) &&
           ((uintptr_t)fp & (sizeof(uintptr_t) - 1)) == 0) {
        uintptr_t ret = fp[1];
        if (ret < 4096)
            break;
        frames[w.n++] = ret;
        const uintptr_t *next = (const uintptr_t *)fp[0];
        if (next <= fp)
            break;
        fp = next;
    }
    if (unpatched > 0)
        zwi_preload_shadow_repatch(unpatched);
    if (w.n <= found || frames[0] != first) { /* not the same chain: keep what we had */
        frames[0] = first;
        return found;
    }
    /* Learn: if the unwinder's chain is the frame-pointer chain with one frame more after the
     * first (the runtime function kept its caller's rbp and pushed no frame record), note where
     * that frame's return address lies, so zwi_preload_unwind_fix() needs no unwinder next time. */
    if (fp_next != 0 && w.n >= 3 && frames[2] == fp_next && zwi_preload_unwind_in_nofp(u, first) &&
        first >> 48 == 0) {
        const uintptr_t *cfa = hook_fp + 2;
        for (unsigned i = 0; i < ZWI_UNWIND_SKIP_SLOTS && (uintptr_t)(cfa + i) < stack_hi; i++) {
            if (cfa[i] == frames[1]) {
                atomic_store_explicit(&u->skip[zwi_preload_unwind_skip_index(first)],
                                      (uint64_t)first << 16 | (i + 1), memory_order_relaxed);
                break;
            }
        }
    } else if (learn && w.n >= 3 && zwi_preload_unwind_in_nofp(u, first) && first >> 48 == 0 &&
               zwi_preload_unwind_module_fp(u, frames[1]) == -1) {
        /* a caller without frame pointers: no slot to learn from it, and the CFA walker is faster
         * than learning again at every call (slot 0: walked, nothing learnt) */
        _Atomic uint64_t *e = &u->skip[zwi_preload_unwind_skip_index(first)];
        if (atomic_load_explicit(e, memory_order_relaxed) >> 16 != first)
            atomic_store_explicit(e, (uint64_t)first << 16, memory_order_relaxed);
    }
    return w.n;
}

/* ---- the slow path of zwi_preload_unwind_fix ---- */

unsigned
zwi_preload_unwind_slow(zwi_unwinder *u, uintptr_t *frames, unsigned nf, unsigned max,
                        unsigned *total, uintptr_t stack_lo, uintptr_t stack_hi,
                        const uintptr_t *hook_fp)
{
    uintptr_t saved[64]; /* the frame-pointer walk, to repair once the unwinder has taught us */
    unsigned nsaved = nf < 64 ? nf : 64;
    memcpy(saved, frames, nsaved * sizeof(*saved));
    /* libgcc's unwinder teaches what later walks need (see unwind_step); libunwind's is faster */
    bool learn;
    if (zwi_preload_unwind_in_nofp(u, saved[0])) {
        /* learning while the slot or the caller's module is not known */
        uint64_t e = atomic_load_explicit(&u->skip[zwi_preload_unwind_skip_index(saved[0])],
                                          memory_order_relaxed);
        learn = e >> 16 != saved[0] ||
                ((e & 0xFFFF) != 0 &&
                 zwi_preload_unwind_module_fp(u, hook_fp[2 + (e & 0xFFFF) - 1]) == 0);
    } else {
        learn = zwi_preload_unwind_module_fp(u, saved[0]) == 0;
    }
    unsigned got = unwind_dwarf(u, frames, max, nf, stack_lo, stack_hi, hook_fp, learn);
    /* the caller's module: did its frame pointers lead right? */
    if (!zwi_preload_unwind_in_nofp(u, saved[0]) && got >= 2 && frames[0] == saved[0] &&
        zwi_preload_unwind_module_fp(u, saved[0]) == 0 &&
        !(u->mode == ZWI_UNWIND_SHADOW && zwi_preload_shadow_in(saved, nsaved)))
        module_vote(u, saved[0], nf >= 2 && saved[1] == frames[1]);
    uintptr_t ret = nsaved == nf ? zwi_preload_unwind_repair_ret(u, saved[0], nf, hook_fp) : 0;
    if (ret != 0 && u->mode == ZWI_UNWIND_SHADOW && zwi_preload_shadow_live() &&
        (ret == zwi_preload_shadow_trampoline() || zwi_preload_shadow_in(saved, nsaved)))
        ret = 0; /* the frame-pointer walk read a patched slot: the unwinder's walk is right */
    if (ret != 0) {
        /* learnt (now or by another thread): the traceback later repairs will give, not the
         * unwinder's (which also walks past the C library's start code), so the site stays one */
        memcpy(frames, saved, nsaved * sizeof(*saved));
        return zwi_preload_unwind_insert(frames, nf, max, total, ret);
    }
    *total = got;
    return got;
}
