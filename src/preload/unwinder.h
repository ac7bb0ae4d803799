/* preload/unwinder.h - tracebacks through code without frame pointers: the preload library walks
 * frame pointers (zwi_capture) and hands the walk to this unit when it cannot be trusted.
 *
 *   trust:  the code of each module loaded at start (dl_iterate_phdr) is voted on by the walks
 *           that pass through it: a module whose frame-pointer chain agreed with the DWARF
 *           unwinder's ZWI_UNWIND_FP_TRUSTED times is trusted, one disagreement distrusts it
 *           for good; runtime libraries (named at init: the C and C++ runtimes) start distrusted
 *   repair: a runtime function that keeps its caller's rbp and pushes no frame record (strdup,
 *           operator new) makes the frame-pointer walk miss exactly its caller; the first walk
 *           through it learns, from the unwinder, the stack slot holding that caller's return
 *           address (the skip cache), and later walks insert it without the unwinder
 *   unwind: otherwise libgcc's unwinder (which learns) or, once nothing is left to learn, the
 *           CFA walker (unwind_cfa.c: .eh_frame's rules, one cached word per return address, no
 *           library call) redoes the walk; libunwind's unw_backtrace (with ZW_HAVE_LIBUNWIND)
 *           takes the walks the CFA walker cannot follow (signal frames, CFA expressions)
 *   reuse:  each thread keeps its last CFA walk; the next one walks the frames pushed since, then
 *           reuses the older ones as long as the stack still holds the return addresses (and
 *           the saved rbp values the rules read) where the last walk read them: one compare per
 *           frame instead of a rule, exact, nothing patched (zwi_preload_unwind_incremental)
 *   shadow: (ZW_UNWIND=shadow, x86-64) once walked, a frame's return address on the stack is
 *           replaced by a trampoline's and kept in a per-thread shadow stack; the next walk
 *           stops at the first replaced one and takes the rest from there: its cost is the
 *           frames pushed since, not the depth (unwind_shadow.c, which lists the hazards)
 *   modes:  ZW_UNWIND=incremental (the default), cfa (the CFA walker from scratch each time),
 *           dwarf (libunwind, no CFA walker), fp (frame pointers only: no repair, no unwinder),
 *           shadow, check[:N] (incremental, and every Nth of its walks compared with
 *           libunwind's: the first difference aborts the program, with both), shadow-check[:N]
 *           (the same for shadow)
 *   unload: a dlclose (interposed) forgets the CFA rules and the walks kept, which another module
 *           mapped at the same address would make wrong (zwi_preload_unwind_unloaded)
 *
 * All state is a zwi_unwinder the caller holds: no global, so a test can build one of its own.
 * The fast path (zwi_preload_unwind_fix) is inlined into the hook: its caller must be the hook
 * whose frame `hook_fp` is, one frame below the traced function's caller. See
 * docs/zw.md#how-it-works. */
#ifndef ZW_PRELOAD_UNWINDER_H
#define ZW_PRELOAD_UNWINDER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "zw_assert.h"

#define ZWI_UNWIND_NOFP_RANGES 8     /* code ranges of runtime libraries without frame pointers */
#define ZWI_UNWIND_SKIP_CACHE  1024  /* entries of zwi_unwinder.skip */
#define ZWI_UNWIND_SKIP_SLOTS  64    /* stack words searched for a skipped return address */
#define ZWI_UNWIND_MAX_MODULES 256   /* code ranges whose frame pointers are tracked */
#define ZWI_UNWIND_FP_TRUSTED  4     /* agreements before a module's frame pointers are trusted */
#define ZWI_UNWIND_MAX_FRAMES  1024  /* the largest `max` the walks accept */
#define ZWI_UNWIND_CFA_CACHE   16384 /* packed CFA rules, by return address (unwind_cfa.c) */
#define ZWI_UNWIND_CFA_FRONT   2048  /* the rules used last, in front of them (unwind_cfa.c) */

enum zwi_unwind_mode {
    ZWI_UNWIND_INCREMENTAL = 0, /* the default where shadow is not (not x86-64, or refused) */
    ZWI_UNWIND_CFA,
    ZWI_UNWIND_DWARF,
    ZWI_UNWIND_FP,
    ZWI_UNWIND_CHECK,
    ZWI_UNWIND_SHADOW, /* check_every > 0: shadow-check */
};

/* Filled once by zwi_preload_unwind_init() (in a process with one thread, or before any walk);
 * afterwards only `skip` and `mods[].fp` change, as atomic words any walking thread writes. */
typedef struct zwi_unwinder {
    struct zwi_unwind_range {
        uintptr_t lo, hi;
    } nofp[ZWI_UNWIND_NOFP_RANGES]; /* init: code of the runtime libraries (no frame pointers) */
    unsigned nnofp;                 /* init */
    /* Return addresses into runtime functions that keep the caller's rbp (operator new, strdup):
     * pc << 16 | (slot + 1), slot being where the function's own return address lies, in words
     * above the hook's CFA; pc << 16 alone once a walk from a caller without frame pointers had
     * nothing to teach (then the CFA walker takes these walks, learning no more). Direct-mapped by
     * pc; learnt by the unwinder, any thread (atomic word: a reader sees a whole entry or none). */
    _Atomic uint64_t skip[ZWI_UNWIND_SKIP_CACHE];
    /* The code of every module loaded at init (executable segments): whether its functions
     * keep frame pointers, learnt from the unwinder. fp: 0 not known; k > 0: k walks agreed;
     * -1: one did not (sticky). Trusted from ZWI_UNWIND_FP_TRUSTED agreements. */
    struct zwi_unwind_module {
        uintptr_t lo, hi;
        atomic_int fp;
    } mods[ZWI_UNWIND_MAX_MODULES];
    unsigned nmods; /* init */
    /* How to unwind a return address without frame pointers: a packed rule (unwind_cfa.c) */
    _Atomic uint64_t cfa[ZWI_UNWIND_CFA_CACHE];
    /* The rules to follow (KIND_RULE) read last from `cfa`, 16 KiB in front of its 128 (two-way,
     * like it): a walk's lookups land there more often (cc1plus: 97 %), and its lines stay in the
     * processor's caches where `cfa`'s did not */
    _Atomic uint64_t cfa_front[ZWI_UNWIND_CFA_FRONT];
    /* Modules the program unloaded (dlclose) so far: a thread's last walk is reused only if none
     * was since (another module at the same address makes its return addresses mean other code);
     * incremented by zwi_preload_unwind_unloaded() after it forgot the cached rules */
    atomic_uint unloads;
    enum zwi_unwind_mode mode; /* init: ZW_UNWIND */
    bool mode_named;           /* init: ZW_UNWIND named the mode (else it is the default) */
    unsigned check_every;      /* init: ZW_UNWIND=check:N or shadow-check:N, N (1 = every walk);
                                  0 in the other modes */
    atomic_uint check_count;   /* CFA walks so far, in check mode */
} zwi_unwinder;

/* Empties `u` and notes the executable segments of every module loaded now; those of modules
 * whose path contains one of `runtime` (a NULL-terminated list, such as "/libc.so") are code
 * without frame pointers, distrusted from the start. `mode` is ZW_UNWIND's value (NULL: the
 * default); a bad one gets a warning and the default. */
ZW_HIDDEN void zwi_preload_unwind_init(zwi_unwinder *u, const char *const *runtime,
                                       const char *mode);

/* Reads a ZW_UNWIND value into u->mode and u->check_every; false (and u left as it was) if it
 * is not one of incremental, cfa, dwarf, fp, shadow, check, check:N, shadow-check or
 * shadow-check:N (N >= 1). NULL or "" is the default: shadow on x86-64 Linux, else incremental
 * (u->mode_named false). */
ZW_HIDDEN bool zwi_preload_unwind_set_mode(zwi_unwinder *u, const char *value);

/* The program unloaded code (dlclose returned): another module may be mapped where it was, so
 * what was learnt of its return addresses goes (the CFA rules, the skip cache's entries for code
 * no longer loaded, libunwind's caches, each thread's last walk). Any thread; not from a hook. */
ZW_HIDDEN void zwi_preload_unwind_unloaded(zwi_unwinder *u);
/* The CFA walker's part of it (unwind_cfa.c): its rules and every thread's last walk. */
ZW_HIDDEN void zwi_preload_unwind_forget_cfa(zwi_unwinder *u);

/* The CFA walker (unwind_cfa.c): frames from return address `pc` with the stack pointer `sp` and
 * rbp `rbp` of the frame it returns into (the caller's values at the call), up to `max` or the
 * outermost frame; their number, or -1 where a frame has no rule it can follow. */
ZW_HIDDEN int zwi_preload_unwind_cfa(zwi_unwinder *u, uintptr_t *frames, unsigned max, uintptr_t pc,
                                     uintptr_t sp, uintptr_t rbp, uintptr_t stack_hi);

/* The same walk as zwi_preload_unwind_cfa(), the same result, from this thread's last walk where
 * the stack still holds it (see "reuse" above): its cost is the frames pushed since the last walk
 * plus a compare for each older frame. The thread's last walk is kept in memory mapped at its
 * first walk and unmapped at its exit. */
ZW_HIDDEN int zwi_preload_unwind_incremental(zwi_unwinder *u, uintptr_t *frames, unsigned max,
                                             uintptr_t pc, uintptr_t sp, uintptr_t rbp,
                                             uintptr_t stack_hi);

/* How zwi_preload_unwind_cfa_until() stopped */
#define ZWI_UNTIL_END   0 /* the outermost frame, or a return address below 4096, was reached */
#define ZWI_UNTIL_LIMIT 1 /* `max` frames */
#define ZWI_UNTIL_STOP  2 /* the next return address is `stop` */

/* The CFA walker's walk, as zwi_preload_unwind_cfa(), up to a return address equal to `stop`
 * (not recorded): frames[0, n) and, for each, the stack pointer and rbp of the frame it returns
 * into (sps[i], rbps[i]: frames[i] lies at sps[i] - 8); on ZWI_UNTIL_STOP, sps[n] and rbps[n]
 * are the state that `stop` was read in. Returns n, *how saying why it stopped, or -1 where a
 * frame has no rule it can follow. sps and rbps hold max + 1 entries. */
ZW_HIDDEN int zwi_preload_unwind_cfa_until(zwi_unwinder *u, uintptr_t *frames, uintptr_t *sps,
                                           uintptr_t *rbps, unsigned max, uintptr_t pc,
                                           uintptr_t sp, uintptr_t rbp, uintptr_t stack_hi,
                                           uintptr_t stop, unsigned *how);

/* ---- the shadow stack (unwind_shadow.c) ---- */

/* The walk of zwi_preload_unwind_cfa(), its result the same, through this thread's shadow
 * stack: the frames pushed since the last walk are walked, then patched (their return addresses
 * replaced by the trampoline's); the older ones read from the shadow stack. Patches only frames
 * of the stack [stack_lo, stack_hi) when `sp` lies on it; elsewhere the incremental walk. -1
 * where a frame has no rule the CFA walker follows (the caller then asks libunwind, between
 * zwi_preload_shadow_unpatch() and zwi_preload_shadow_repatch()). */
ZW_HIDDEN int zwi_preload_unwind_shadow(zwi_unwinder *u, uintptr_t *frames, unsigned max,
                                        uintptr_t pc, uintptr_t sp, uintptr_t rbp,
                                        uintptr_t stack_lo, uintptr_t stack_hi);
/* The frames this thread's last shadow walk took from the shadow stack. */
ZW_HIDDEN unsigned zwi_preload_shadow_reused(void);
/* Does this thread have patched frames? */
ZW_HIDDEN bool zwi_preload_shadow_live(void);
/* The trampoline's address: what a patched slot holds. */
ZW_HIDDEN uintptr_t zwi_preload_shadow_trampoline(void);
/* For another unwinder's walk of this thread's stack: the real return addresses back in the
 * slots that hold the trampoline's; returns their number, for zwi_preload_shadow_repatch(),
 * which puts the trampoline back in them. */
ZW_HIDDEN unsigned zwi_preload_shadow_unpatch(void);
ZW_HIDDEN void zwi_preload_shadow_repatch(unsigned n);
/* Finds the functions the interposed unwinder entry points (_Unwind_RaiseException ...,
 * backtrace, makecontext) forward to; at init, so that a signal handler's call does not. */
ZW_HIDDEN void zwi_preload_shadow_resolve(void);
/* Can this process's return addresses be replaced? False, *why set, with a CET shadow stack. */
ZW_HIDDEN bool zwi_preload_shadow_usable(const char **why);
/* Patching stops for the process: `module` carries an unwinder of its own (unwind_cfa.c screens
 * the module of every return address when its first rule is read, while
 * zwi_preload_unwind_screening is set); said on stderr if ZW_UNWIND named shadow
 * (zwi_preload_shadow_named). Each thread puts its real return addresses back at its next walk. */
ZW_HIDDEN void zwi_preload_shadow_refuse(const char *module);
ZW_HIDDEN void zwi_preload_shadow_named(bool named);
ZW_HIDDEN extern atomic_bool zwi_preload_unwind_screening;
/* Forgets which modules were screened (after a dlclose: another may be mapped at their address). */
ZW_HIDDEN void zwi_preload_unwind_forget_screened(void);

/* Does frames[0, n) hold the trampoline's address (a frame-pointer walk read a patched slot)? */
static inline bool
zwi_preload_shadow_in(const uintptr_t *frames, unsigned n)
{
    uintptr_t t = zwi_preload_shadow_trampoline();
    for (unsigned i = 0; i < n; i++) {
        if (frames[i] == t)
            return true;
    }
    return false;
}

/* The frames this thread's last zwi_preload_unwind_incremental() took from the walk before it
 * (compared, not walked). */
ZW_HIDDEN unsigned zwi_preload_unwind_reused(void);

/* The walk from the hook at `hook_fp` redone or repaired (see zwi_preload_unwind_fix): the slow
 * path, kept out of line. The frames it skips are its own, the unwinder's and the hook's. */
ZW_HIDDEN __attribute__((noinline, noclone)) unsigned
zwi_preload_unwind_slow(zwi_unwinder *u, uintptr_t *frames, unsigned nf, unsigned max,
                        unsigned *total, uintptr_t stack_lo, uintptr_t stack_hi,
                        const uintptr_t *hook_fp);

/* True if `pc` lies in the code of a runtime library (u->nofp): the frame-pointer walk from there
 * skips its caller's frame. */
static inline bool
zwi_preload_unwind_in_nofp(const zwi_unwinder *u, uintptr_t pc)
{
    for (unsigned i = 0; i < u->nnofp; i++) {
        if (pc - u->nofp[i].lo < u->nofp[i].hi - u->nofp[i].lo)
            return true;
    }
    return false;
}

/* The entry of u->mods holding `pc`, or NULL (code loaded later, generated code). */
static inline struct zwi_unwind_module *
zwi_preload_unwind_module_of(zwi_unwinder *u, uintptr_t pc)
{
    static _Thread_local unsigned last __attribute__((tls_model("initial-exec")));
    unsigned i = last;
    if (i < u->nmods && pc - u->mods[i].lo < u->mods[i].hi - u->mods[i].lo)
        return &u->mods[i];
    for (i = 0; i < u->nmods; i++) {
        if (pc - u->mods[i].lo < u->mods[i].hi - u->mods[i].lo) {
            last = i;
            return &u->mods[i];
        }
    }
    return NULL;
}

/* Is the frame-pointer chain through a function at `pc` to be trusted? 1 yes, 0 not known yet,
 * -1 no. Code outside the modules known at init keeps the old rule: trusted. */
static inline int
zwi_preload_unwind_module_fp(zwi_unwinder *u, uintptr_t pc)
{
    struct zwi_unwind_module *m = zwi_preload_unwind_module_of(u, pc);
    if (m == NULL)
        return 1;
    int fp = atomic_load_explicit(&m->fp, memory_order_relaxed);
    return fp < 0 ? -1 : fp >= ZWI_UNWIND_FP_TRUSTED;
}

/* The skip cache's slot for return address `pc`. */
static inline size_t
zwi_preload_unwind_skip_index(uintptr_t pc)
{
    return (size_t)((pc * 0x9E3779B97F4A7C15u) >> 54) & (ZWI_UNWIND_SKIP_CACHE - 1);
}

/* The return address to insert after frames[0] of a frame-pointer walk of `nf` frames whose first
 * frame `pc` is in the C or C++ runtime, or 0. It applies if that function is known to keep its
 * caller's rbp and push no frame record (u->skip): the walk then misses exactly its own return
 * address, which lies on the stack at the slot learnt; and only if that caller's module keeps
 * frame pointers (u->mods), so the chain above it can be trusted. */
static inline __attribute__((always_inline)) uintptr_t
zwi_preload_unwind_repair_ret(zwi_unwinder *u, uintptr_t pc, unsigned nf, const uintptr_t *hook_fp)
{
    uint64_t e =
        atomic_load_explicit(&u->skip[zwi_preload_unwind_skip_index(pc)], memory_order_relaxed);
    if (nf < 2 || e >> 16 != pc || (e & 0xFFFF) == 0 || !zwi_preload_unwind_in_nofp(u, pc))
        return 0;
    uintptr_t ret = hook_fp[2 + (e & 0xFFFF) - 1];
    if (zwi_preload_unwind_module_of(u, ret) == NULL || zwi_preload_unwind_module_fp(u, ret) != 1)
        return 0; /* a caller whose frame pointers are not known to be kept */
    return ret;
}

/* Inserts `ret` after frames[0] of `nf` frames (the last one drops at `max`). */
static inline __attribute__((always_inline)) unsigned
zwi_preload_unwind_insert(uintptr_t *frames, unsigned nf, unsigned max, unsigned *total,
                          uintptr_t ret)
{
    unsigned keep = nf < max ? nf : max - 1;
    memmove(frames + 2, frames + 1, (keep - 1) * sizeof(*frames));
    frames[1] = ret;
    *total = *total + 1;
    return keep + 1;
}

/* The walk from the hook at `hook_fp` when its caller is in a module known not to keep frame
 * pointers (a program built without them, as Debian's are): the unwinder's at once, without a
 * frame-pointer walk it would only replace. Returns the frames (*total follows), or 0 if the
 * caller is not such, or the walk ended at its first frame or failed: the caller then takes the
 * frame-pointer walk's path (zwi_preload_unwind_fix), which asks libgcc's unwinder. */
static inline __attribute__((always_inline)) unsigned
zwi_preload_unwind_nofp_caller(zwi_unwinder *u, uintptr_t *frames, unsigned max, unsigned *total,
                               uintptr_t stack_lo, uintptr_t stack_hi, const uintptr_t *hook_fp)
{
    uintptr_t pc = hook_fp[1];
    bool shadow = u->mode == ZWI_UNWIND_SHADOW;
    if (!((shadow && u->check_every == 0) || u->mode == ZWI_UNWIND_INCREMENTAL) || max <= 1 ||
        zwi_preload_unwind_module_fp(u, pc) != -1 || zwi_preload_unwind_in_nofp(u, pc))
        return 0;
    uintptr_t sp = (uintptr_t)(hook_fp + 2), rbp = hook_fp[0];
    int n = shadow ? zwi_preload_unwind_shadow(u, frames, max, pc, sp, rbp, stack_lo, stack_hi)
                   : zwi_preload_unwind_incremental(u, frames, max, pc, sp, rbp, stack_hi);
    if (n <= 1)
        return 0;
    *total = (unsigned)n;
    return (unsigned)n;
}

/* The frame-pointer walk from the hook at `hook_fp` gave frames[0..nf) (of `total`, at most
 * `max`): kept if its first frame is in a module known to keep frame pointers and the walk went
 * further; otherwise (in the C or C++ runtime, in a module not known to keep frame pointers, or
 * only one frame) repaired (zwi_preload_unwind_repair_ret) or redone by the unwinder (which
 * learns what repairs need and which modules keep frame pointers). Returns the frames kept;
 * *total follows. */
static inline __attribute__((always_inline)) unsigned
zwi_preload_unwind_fix(zwi_unwinder *u, uintptr_t *frames, unsigned nf, unsigned max,
                       unsigned *total, uintptr_t stack_lo, uintptr_t stack_hi,
                       const uintptr_t *hook_fp)
{
    /* shadow mode: a frame-pointer walk may have read a patched slot (the trampoline's address);
     * then the shadow walk redoes it */
    bool patched = u->mode == ZWI_UNWIND_SHADOW && zwi_preload_shadow_live();
    if (ZW_LIKELY((nf != 1 && !zwi_preload_unwind_in_nofp(u, frames[0]) &&
                   zwi_preload_unwind_module_fp(u, frames[0]) == 1) ||
                  max <= 1 || u->mode == ZWI_UNWIND_FP)) {
        if (ZW_LIKELY(!patched) || max <= 1 || !zwi_preload_shadow_in(frames, nf))
            return nf;
    } else {
        uintptr_t ret = zwi_preload_unwind_repair_ret(u, frames[0], nf, hook_fp);
        if (ret != 0 && (ZW_LIKELY(!patched) || (ret != zwi_preload_shadow_trampoline() &&
                                                 !zwi_preload_shadow_in(frames, nf))))
            return zwi_preload_unwind_insert(frames, nf, max, total, ret);
    }
    return zwi_preload_unwind_slow(u, frames, nf, max, total, stack_lo, stack_hi, hook_fp);
}

#endif /* ZW_PRELOAD_UNWINDER_H */
