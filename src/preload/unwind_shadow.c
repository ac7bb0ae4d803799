/* preload/unwind_shadow.c - ZW_UNWIND=shadow (the default on x86-64 Linux): a walk whose cost is
 * the frames pushed since the thread's last walk, not the stack's depth. Once a frame has been
 * walked, its return address on the stack is replaced by the trampoline's (unwind_shadow_x86_64.S)
 * and the real one kept in the thread's shadow stack; the next walk runs the CFA walker
 * (unwind_cfa.c) until it reads the trampoline, and takes the older frames from the shadow stack.
 * A frame that returns goes through the trampoline, which pops its entry and jumps to the real
 * address.
 *
 * The shadow stack: entries [base, top) of a mapping of the thread's own, oldest first, their
 * slots (where each return address lies) strictly decreasing from base to top, each live entry's
 * next older frame the live entry under it (a walk that meets the trampoline can take the rest
 * from there); under base, the frames not walked yet (none if base is ENTRY_END). An entry is live
 * while its slot holds the trampoline's address and the frame has not returned; entries below a
 * live one on the stack whose frames were left without a return (longjmp, siglongjmp, an
 * exception, setcontext up the stack) are stale: the trampoline and the next walk drop them.
 *
 * The hazards and what this file does about them:
 *   exceptions and backtraces go through libgcc, which must never read the trampoline:
 *     _Unwind_RaiseException, _Unwind_Resume, _Unwind_Resume_or_Rethrow, _Unwind_ForcedUnwind,
 *     _Unwind_Backtrace and backtrace(3) are interposed (exports.map): each puts every real
 *     return address back (drop_all) and jumps to the real function, adding no frame. So are
 *     libunwind's walks (unw_init_local, unw_step and unw_backtrace, by the nongnu library's
 *     names and LLVM's): each step puts them back, since the walker may allocate between steps.
 *     A landing pad that allocates gets its frames patched again; its _Unwind_Resume restores
 *     them before the unwinder goes on. glibc's pthread_exit and pthread_cancel call libgcc's
 *     _Unwind_ForcedUnwind by a pointer of their own: the trampoline's FDE names a personality
 *     routine (zwi_shadow_personality) that, in a forced unwind, puts the real addresses back
 *     and resumes the unwind from the real caller. An exception raised by an unwinder linked
 *     into the program would stop its search at the trampoline (std::terminate): unwind_cfa.c
 *     screens each module before a frame returning into it is patched, and one with such an
 *     unwinder turns patching off (zwi_preload_shadow_refuse); each thread then puts its real
 *     return addresses back at its next walk (unpatched).
 *   longjmp, siglongjmp, setcontext up the stack: frames left without a return; their entries are
 *     below the slot of the next frame that returns or is walked, and dropped there.
 *   coroutines: only frames of the thread's own stack are patched (the hook's stack pointer in
 *     [stack_lo, stack_hi)); a walk on another stack (makecontext's, a signal stack) is the
 *     incremental walk. makecontext() on a stack inside the thread's (interposed) would put two
 *     contexts in one sorted shadow stack: patching stops for the process.
 *   signal handlers: the hook cannot run inside a hook (the guard); a handler's walk stops at the
 *     signal frame, which the CFA walker does not follow, before it changes anything, and the
 *     walk through libunwind puts the real addresses back for its duration (unpatch/repatch),
 *     touching only slots that still hold the trampoline. The trampoline's pop is one cmpxchg,
 *     which leaves alone a shadow stack a handler emptied meanwhile (backtrace(3) in a handler).
 *   thread exit: the key's destructor puts the real addresses back and unmaps the shadow stack;
 *     the thread patches nothing afterwards.
 *   fork: the child's thread is a copy of the forking one, its TLS and the (private) mapping
 *     with it: it inherits the shadow stack with the stack.
 *   dlclose: an entry is a live frame's, which no dlclose unmaps; stale ones are never read.
 *   __builtin_return_address in a frame patched since its call gives the trampoline's address.
 *   CET shadow stacks: a return to an address other than the call's faults; the mode is refused
 *     where the kernel says this thread has one (zwi_preload_shadow_usable).
 * Nothing here allocates: a hook calls it. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>
#include <unwind.h>

#include "trace_internal.h"
#include "unwinder.h"

#define SHADOW_CAP      16384 /* entries of a thread's shadow stack: past them, no more patching */
#define CHURN_WALKS     4     /* the last walks whose fresh frames are not patched (churn_then) */
#define CHURN_RESET     64    /* every this many walks, all fresh frames are patched */
#define ENTRY_END       1u    /* the walk that made this (oldest) entry ended after its frame */
#define ENTRY_SWAPPED   2u    /* unpatched for a walk by another unwinder, patched back after it */

/* A thread's shadow stack, entry i (0 the oldest) in four arrays of one mapping: where its return
 * address lies on the stack, base[i] (the trampoline's address there now); the real return
 * address, rets[-i] (newest first in memory: a walk copies them with one memcpy); rbp in the
 * frame it returns into while that frame waits for it, rbps[i]; its ENTRY_* flags, flags[i].
 * top, base and ret_key are read by the trampoline (offsets 0, 8, 16), which finds entry i's
 * real return address at ret_key - &base[i]. */
struct zwi_shadow {
    uintptr_t *top;      /* &base[number of entries] */
    uintptr_t *base;     /* the slots; NULL before the first patch */
    uintptr_t ret_key;   /* (uintptr_t)rets + (uintptr_t)base */
    uintptr_t *rets;     /* the real return address of entry i at rets[-i] */
    uintptr_t *rbps;     /* entry i's rbp */
    uint8_t *flags;      /* entry i's ENTRY_* */
    uintptr_t stack_lo;  /* the stack whose frames are patched: the thread's */
    uintptr_t stack_hi;
    uintptr_t *sps;      /* a walk's stack pointers, then its rbp values: ZWI_UNWIND_MAX_FRAMES + 4 */
    uintptr_t *wrbps;    /* each, in the mapping */
    size_t bytes;        /* mapped */
    unsigned reused;     /* frames the last walk took from the shadow stack */
    unsigned churn[CHURN_WALKS]; /* the frames each of the last walks found pushed since the one
                                    before it (but the first) */
    unsigned walks;              /* walks so far */
    bool done;                   /* the thread is exiting: no more patching */
};

ZW_HIDDEN _Thread_local struct zwi_shadow zwi_shadow_tls __attribute__((tls_model("initial-exec")));

_Static_assert(offsetof(struct zwi_shadow, top) == 0 && offsetof(struct zwi_shadow, base) == 8 &&
                   offsetof(struct zwi_shadow, ret_key) == 16,
               "the trampoline's offsets");

/* Entries of `s` */
static inline unsigned
count(const struct zwi_shadow *s)
{
    return (unsigned)(s->top - s->base);
}

ZW_HIDDEN extern char zwi_shadow_trampoline[];

/* Process-wide: set once, never cleared. */
static atomic_bool patching_off; /* makecontext() on a stack inside a thread's */
static pthread_key_t shadow_key; /* its destructor restores and unmaps a thread's shadow stack */
static bool shadow_key_ok;
static pthread_once_t shadow_once = PTHREAD_ONCE_INIT;


uintptr_t
zwi_preload_shadow_trampoline(void)
{
    return (uintptr_t)zwi_shadow_trampoline;
}

static inline uintptr_t
here(void)
{
    return (uintptr_t)__builtin_frame_address(0);
}

/* Is the slot of `e` one a walk may still read? Below the caller's frame on the stack the
 * shadow stack covers, it is stale: the memory is the caller's own or free. */
static inline bool
slot_alive(const struct zwi_shadow *s, uintptr_t slot, uintptr_t sp)
{
    return !(sp >= s->stack_lo && sp < s->stack_hi) || slot > sp;
}

/* Puts the real return address back in every slot that holds the trampoline's; the shadow stack
 * is then empty. */
static void
drop_all(struct zwi_shadow *s)
{
    uintptr_t t = (uintptr_t)zwi_shadow_trampoline, sp = here();
    for (unsigned i = count(s); i-- > 0;) {
        uintptr_t *slot = (uintptr_t *)s->base[i];
        if (slot_alive(s, s->base[i], sp) && *slot == t)
            *slot = s->rets[-(ptrdiff_t)i];
    }
    atomic_signal_fence(memory_order_seq_cst); /* the trampoline reads the slot if no entry */
    s->top = s->base;
}

unsigned
zwi_preload_shadow_unpatch(void)
{
    struct zwi_shadow *s = &zwi_shadow_tls;
    uintptr_t t = (uintptr_t)zwi_shadow_trampoline, sp = here();
    unsigned n = 0;
    for (unsigned i = 0; s->base != NULL && i < count(s); i++) {
        uintptr_t *slot = (uintptr_t *)s->base[i];
        if (slot_alive(s, s->base[i], sp) && *slot == t) {
            *slot = s->rets[-(ptrdiff_t)i];
            s->flags[i] |= ENTRY_SWAPPED;
            n++;
        }
    }
    return n;
}

void
zwi_preload_shadow_repatch(unsigned n)
{
    struct zwi_shadow *s = &zwi_shadow_tls;
    uintptr_t t = (uintptr_t)zwi_shadow_trampoline;
    for (unsigned i = 0; n > 0 && s->base != NULL && i < count(s); i++) {
        if (s->flags[i] & ENTRY_SWAPPED) {
            *(uintptr_t *)s->base[i] = t;
            s->flags[i] &= (uint8_t)~ENTRY_SWAPPED;
            n--;
        }
    }
}

/* ---- a thread's shadow stack ---- */

static void
shadow_release(void *p)
{
    struct zwi_shadow *s = &zwi_shadow_tls;
    (void)p;
    s->done = true;
    if (s->base == NULL)
        return;
    drop_all(s);
    void *m = s->base;
    size_t bytes = s->bytes;
    s->base = s->top = NULL;
    syscall(SYS_munmap, m, bytes); /* the system call: the preload library's munmap traces */
}

static void
shadow_make_key(void)
{
    shadow_key_ok = pthread_key_create(&shadow_key, shadow_release) == 0;
}

/* Maps this thread's shadow stack for frames of [stack_lo, stack_hi); false if it cannot. */
static bool
shadow_map(struct zwi_shadow *s, uintptr_t stack_lo, uintptr_t stack_hi)
{
    pthread_once(&shadow_once, shadow_make_key);
    if (!shadow_key_ok)
        return false;
    size_t bytes = (SHADOW_CAP * (3 * sizeof(uintptr_t) + 1) +
                    2 * (ZWI_UNWIND_MAX_FRAMES + 4) * sizeof(uintptr_t) + 4095) &
                   ~(size_t)4095;
    void *m = (void *)syscall(SYS_mmap, NULL, bytes, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return false;
    s->base = s->top = m;
    s->rets = s->base + 2 * SHADOW_CAP - 1;
    s->ret_key = (uintptr_t)s->rets + (uintptr_t)s->base;
    s->rbps = s->base + 2 * SHADOW_CAP;
    s->sps = s->rbps + SHADOW_CAP;
    s->wrbps = s->sps + ZWI_UNWIND_MAX_FRAMES + 4;
    s->flags = (uint8_t *)(s->wrbps + ZWI_UNWIND_MAX_FRAMES + 4);
    s->bytes = bytes;
    s->stack_lo = stack_lo;
    s->stack_hi = stack_hi;
    pthread_setspecific(shadow_key, s);
    return true;
}

/* The trampoline found no entry for the slot at `slot`: the program moved or rewrote its stack in
 * a way this unwinder cannot follow, and the real return address is not known. */
ZW_HIDDEN __attribute__((noreturn, used)) void
zwi_shadow_lost(uintptr_t slot)
{
    char msg[256];
    int len = snprintf(msg, sizeof(msg),
                       "zw: preload: ZW_UNWIND=shadow: a function returned through the slot at "
                       "%#lx, whose return address this unwinder no longer knows; trace this "
                       "program with ZW_UNWIND=incremental\n",
                       (unsigned long)slot);
    (void)!write(2, msg, (size_t)len);
    abort();
}

/* ---- the walk ---- */

unsigned
zwi_preload_shadow_reused(void)
{
    return zwi_shadow_tls.reused;
}

bool
zwi_preload_shadow_live(void)
{
    return zwi_shadow_tls.top != zwi_shadow_tls.base;
}

/* The walk of frames[0, n) on another stack than the thread's (or with patching off): the
 * incremental walk; -1 if it met the trampoline (the caller asks libunwind, unpatched). */
static int
walk_elsewhere(zwi_unwinder *u, uintptr_t *frames, unsigned max, uintptr_t pc, uintptr_t sp,
               uintptr_t rbp, uintptr_t stack_hi)
{
    int n = zwi_preload_unwind_incremental(u, frames, max, pc, sp, rbp, stack_hi);
    const struct zwi_shadow *s = &zwi_shadow_tls;
    if (s->base == NULL || s->top == s->base)
        return n; /* the thread's stack holds no trampoline: a thread patches only its own, and
                   * keeps an entry for each (cc1plus: patching off from its first walks on) */
    uintptr_t t = (uintptr_t)zwi_shadow_trampoline;
    for (int i = 0; i < n; i++) {
        if (frames[i] == t)
            return -1;
    }
    return n;
}

/* The walk once patching is off for the process (a module with an unwinder of its own, or a
 * makecontext inside the thread's stack): this thread's real return addresses go back first, its
 * shadow stack emptied, then the incremental walk. */
static int
unpatched(struct zwi_shadow *s, zwi_unwinder *u, uintptr_t *frames, unsigned max, uintptr_t pc,
          uintptr_t sp, uintptr_t rbp, uintptr_t stack_hi)
{
    if (s->top != s->base)
        drop_all(s);
    return walk_elsewhere(u, frames, max, pc, sp, rbp, stack_hi);
}

/* Puts the real return addresses of entries [base, end) back where their slots still hold the
 * trampoline's (the caller then drops them). */
static void
restore_below(struct zwi_shadow *s, unsigned end)
{
    uintptr_t t = (uintptr_t)zwi_shadow_trampoline, sp = here();
    for (unsigned i = 0; i < end; i++) {
        uintptr_t *slot = (uintptr_t *)s->base[i];
        if (slot_alive(s, s->base[i], sp) && *slot == t)
            *slot = s->rets[-(ptrdiff_t)i];
    }
}

/* Entry i is (slot, ret, rbp, flags). */
static inline void
set_entry(struct zwi_shadow *s, unsigned i, uintptr_t slot, uintptr_t ret, uintptr_t rbp,
          uint8_t flags)
{
    s->base[i] = slot;
    s->rets[-(ptrdiff_t)i] = ret;
    s->rbps[i] = rbp;
    s->flags[i] = flags;
}

/* How many of the youngest fresh frames of this walk (`now` of them, the first excepted) not to
 * patch: as many as any of the last CHURN_WALKS walks found fresh. Frames that return between
 * two allocations (1.3 frames a walk on python3.11, 2.5 on cc1plus, patched at every walk)
 * would each cost a patch and a trampoline per allocation, more than walking
 * them again; the frames under them stay patched. Every CHURN_RESET walks all are patched, so
 * that frames left unpatched while something above them churned are patched once it stops. */
static unsigned
churn_then(struct zwi_shadow *s, unsigned now)
{
    unsigned skip = 0;
    for (unsigned i = 0; i < CHURN_WALKS; i++)
        skip = s->churn[i] > skip ? s->churn[i] : skip;
    s->churn[s->walks % CHURN_WALKS] = now;
    if (++s->walks % CHURN_RESET == 0)
        skip = 0;
    return skip;
}

int
zwi_preload_unwind_shadow(zwi_unwinder *u, uintptr_t *frames, unsigned max, uintptr_t pc,
                          uintptr_t sp, uintptr_t rbp, uintptr_t stack_lo, uintptr_t stack_hi)
{
    struct zwi_shadow *s = &zwi_shadow_tls;
    if (ZW_UNLIKELY(s->base == NULL || s->stack_hi != stack_hi)) {
        if (s->done || stack_lo == 0 || s->base != NULL ||
            atomic_load_explicit(&patching_off, memory_order_relaxed) ||
            !shadow_map(s, stack_lo, stack_hi))
            return walk_elsewhere(u, frames, max, pc, sp, rbp, stack_hi);
    }
    if (ZW_UNLIKELY(sp < s->stack_lo || sp >= s->stack_hi || s->done))
        return walk_elsewhere(u, frames, max, pc, sp, rbp, stack_hi);
    if (ZW_UNLIKELY(atomic_load_explicit(&patching_off, memory_order_relaxed)))
        return unpatched(s, u, frames, max, pc, sp, rbp, stack_hi);
    uintptr_t t = (uintptr_t)zwi_shadow_trampoline;
    unsigned how;
    /* 1. the frames pushed since the last walk: the CFA walker's, up to the trampoline */
    int got = zwi_preload_unwind_cfa_until(u, frames, s->sps, s->wrbps, max, pc, sp, rbp,
                                           stack_hi, t, &how);
    if (got < 0)
        return -1;
    if (ZW_UNLIKELY(atomic_load_explicit(&patching_off, memory_order_relaxed)))
        return unpatched(s, u, frames, max, pc, sp, rbp, stack_hi); /* a module just screened */
    unsigned n = (unsigned)got, fresh = n;
    s->reused = 0;
    unsigned keep; /* entries [0, keep) stay; the fresh ones go on top of them */
    if (how == ZWI_UNTIL_STOP) {
        /* 2. the older frames from the shadow stack: from the entry of the slot where the walk
         * read the trampoline (entries above it are stale) */
        uintptr_t slot = s->sps[n] - 8;
        keep = count(s);
        while (keep > 0 && s->base[keep - 1] < slot)
            keep--;
        if (keep == 0 || s->base[keep - 1] != slot)
            return -1; /* a trampoline no entry explains: libunwind stops there */
        unsigned m = keep < max - n ? keep : max - n;
        memcpy(frames + n, s->rets - (keep - 1), m * sizeof(*frames));
        n += m;
        s->reused = m;
        if (m == keep && n < max && !(s->flags[0] & ENTRY_END)) {
            /* 3. past the oldest entry: walked from its state (its states after the fresh
             * ones'), the frames kept under it */
            unsigned how2;
            uintptr_t *sps2 = s->sps + fresh + 1, *rbps2 = s->wrbps + fresh + 1;
            int more = zwi_preload_unwind_cfa_until(u, frames + n - 1, sps2, rbps2, max - n + 1,
                                                    s->rets[0], s->base[0] + 8, s->rbps[0],
                                                    stack_hi, t, &how2);
            if (more < 1 || how2 == ZWI_UNTIL_STOP)
                return -1; /* a trampoline older than the oldest entry: libunwind stops there */
            if (ZW_UNLIKELY(atomic_load_explicit(&patching_off, memory_order_relaxed)))
                return unpatched(s, u, frames, max, pc, sp, rbp, stack_hi);
            unsigned deep = (unsigned)more - 1, have = count(s);
            if (deep > 0 && have + deep + fresh <= SHADOW_CAP) {
                memmove(s->base + deep, s->base, have * sizeof(uintptr_t));
                memmove(s->rets - (have - 1 + deep), s->rets - (have - 1),
                        have * sizeof(uintptr_t));
                memmove(s->rbps + deep, s->rbps, have * sizeof(uintptr_t));
                memmove(s->flags + deep, s->flags, have);
                for (unsigned i = 1; i <= deep; i++)
                    set_entry(s, deep - i, sps2[i] - 8, frames[n - 1 + i], rbps2[i], 0);
                if (how2 == ZWI_UNTIL_END)
                    s->flags[0] = ENTRY_END;
                keep += deep;
                atomic_signal_fence(memory_order_seq_cst);
                s->top += deep;
                atomic_signal_fence(memory_order_seq_cst);
                for (unsigned i = 1; i <= deep; i++)
                    *(uintptr_t *)(sps2[i] - 8) = t;
            } else if (deep == 0 && how2 == ZWI_UNTIL_END) {
                s->flags[0] |= ENTRY_END;
            }
            n += deep;
        }
    } else {
        /* the walk ended, or reached its limit, with no trampoline: entries of slots it passed
         * are stale; the older ones are not this walk's next frames (an entry's next frame is
         * the entry under it): at the limit, frames further down the stack, whose real return
         * addresses go back; past the outermost frame, nothing live */
        keep = count(s);
        while (n > 0 && keep > 0 && s->base[keep - 1] <= s->sps[n - 1])
            keep--;
        if (how == ZWI_UNTIL_LIMIT && keep > 0)
            restore_below(s, keep);
        keep = 0;
    }
    /* 4. the fresh frames (but the first, whose slot is the hook's, and those that churn) go on
     * the shadow stack, oldest first, then their slots take the trampoline: a signal landing
     * between sees each entry before its slot changes */
    unsigned skip = churn_then(s, fresh > 0 ? fresh - 1 : 0);
    unsigned k = fresh > 1 + skip ? fresh - 1 - skip : 0;
    if (keep + k > SHADOW_CAP)
        k = SHADOW_CAP - keep;
    for (unsigned i = 0; i < k; i++) {
        unsigned f = fresh - 1 - i; /* frames[f], the oldest fresh one first */
        set_entry(s, keep + i, s->sps[f] - 8, frames[f], s->wrbps[f], 0);
    }
    if (k > 0 && keep == 0 && how == ZWI_UNTIL_END && fresh == n)
        s->flags[0] = ENTRY_END;
    atomic_signal_fence(memory_order_seq_cst);
    s->top = s->base + keep + k;
    atomic_signal_fence(memory_order_seq_cst);
    for (unsigned i = 0; i < k; i++)
        *(uintptr_t *)s->base[keep + i] = t;
    return (int)n;
}

/* ---- refusing where return addresses cannot be replaced ---- */

static bool shadow_named; /* ZW_UNWIND named shadow (else it is the default): refusals are said */

void
zwi_preload_shadow_named(bool named)
{
    shadow_named = named;
}

void
zwi_preload_shadow_refuse(const char *module)
{
    atomic_store_explicit(&zwi_preload_unwind_screening, false, memory_order_relaxed);
    if (atomic_exchange_explicit(&patching_off, true, memory_order_relaxed) || !shadow_named)
        return;
    char msg[512];
    int n = snprintf(msg, sizeof(msg),
                     "zw: preload: ZW_UNWIND=shadow: %.300s has an unwinder of its own, which "
                     "cannot read replaced return addresses: unwinding as incremental from here\n",
                     module);
    (void)!write(2, msg, (size_t)(n < (int)sizeof(msg) ? n : (int)sizeof(msg) - 1));
}

bool
zwi_preload_shadow_usable(const char **why)
{
#if defined(__x86_64__) && defined(__linux__)
    unsigned long features = 0;
    /* ARCH_SHSTK_STATUS (Linux 6.6): bit 0, this thread has a CET shadow stack */
    if (syscall(SYS_arch_prctl, 0x5005, &features) == 0 && (features & 1)) {
        *why = "this process has a CET shadow stack";
        return false;
    }
    return true;
#else
    *why = "not an x86-64 Linux process";
    return false;
#endif
}

/* ---- the interposed functions (unwind_shadow_x86_64.S jumps to what these return) ---- */

/* The real function `name`, from the next module that defines it; NULL if none. Found once:
 * dlsym is not async-signal-safe, and backtrace(3) is called from crash handlers. */
static void *
real_of(const char *name, void *_Atomic *cache)
{
    void *f = atomic_load_explicit(cache, memory_order_acquire);
    if (f == NULL) {
        f = dlsym(RTLD_NEXT, name);
        atomic_store_explicit(cache, f, memory_order_release);
    }
    return f;
}

/* Before libgcc (or backtrace) reads this thread's stack: every real return address back, unless
 * a hook of this thread is running (a signal handler inside it: the hook's walk may be changing
 * the shadow stack; that unwinder then stops at the trampoline). */
static void
before_unwind(void)
{
    struct zwi_shadow *s = &zwi_shadow_tls;
    if (s->top != s->base && zwi_trace_guard == 0)
        drop_all(s);
}

static int
unwind_fails(void)
{
    return 5; /* _URC_END_OF_STACK: no libgcc to forward to */
}

static int
backtrace_fails(void)
{
    return 0;
}

static __attribute__((noreturn)) void
resume_fails(void)
{
    abort();
}

static int
unw_fails(void)
{
    return -1; /* -UNW_EUNSPEC: no libunwind to forward to */
}

/* The order of unwind_shadow_x86_64.S's INTERPOSE lines. libunwind's walks (a crash reporter's, a
 * profiler's) read the stack as libgcc's do: the nongnu library's entry points (_UL-prefixed, as
 * its header names them) and LLVM's (unw_*). */
enum { REAL_RAISE, REAL_RESUME, REAL_RETHROW, REAL_FORCED, REAL_BACKTRACE, REAL_BT,
       REAL_UNW_INIT, REAL_UNW_INIT2, REAL_UNW_STEP, REAL_UNW_BACKTRACE, REAL_LLVM_INIT,
       REAL_LLVM_STEP, REAL_MAKECONTEXT, REAL_N };

static void *_Atomic real[REAL_N]; /* the real functions, found at init (or at first use) */
static const char *const real_names[REAL_N] = {
    "_Unwind_RaiseException", "_Unwind_Resume",       "_Unwind_Resume_or_Rethrow",
    "_Unwind_ForcedUnwind",   "_Unwind_Backtrace",    "backtrace",
    "_ULx86_64_init_local",   "_ULx86_64_init_local2", "_ULx86_64_step",
    "unw_backtrace",          "unw_init_local",       "unw_step",
    "makecontext",
};

void
zwi_preload_shadow_resolve(void)
{
    for (unsigned i = 0; i < REAL_N; i++)
        (void)real_of(real_names[i], &real[i]);
}

ZW_HIDDEN __attribute__((used)) void *
zwi_shadow_before(unsigned which)
{
    before_unwind();
    void *f = real_of(real_names[which], &real[which]);
    if (f != NULL)
        return f;
    if (which == REAL_RESUME)
        return (void *)resume_fails;
    if (which == REAL_BT || which == REAL_UNW_BACKTRACE)
        return (void *)backtrace_fails;
    if (which >= REAL_UNW_INIT)
        return (void *)unw_fails;
    return (void *)unwind_fails;
}

/* ---- a forced unwind that meets the trampoline ---- */

/* The functions of the unwinder (a module: libgcc_s, libunwind) whose code called us, found by
 * name in that module: a context is only ever passed to its own unwinder's functions. */
typedef struct unwinder_fns {
    uintptr_t base; /* the module's load address; 0: an empty entry */
    _Unwind_Reason_Code (*resume)(struct _Unwind_Exception *);
    uintptr_t (*get_cfa)(struct _Unwind_Context *);
    void (*set_gr)(struct _Unwind_Context *, int, uintptr_t);
    void (*set_ip)(struct _Unwind_Context *, uintptr_t);
} unwinder_fns;

static const unwinder_fns *
unwinder_of(const void *code)
{
    static unwinder_fns known[4]; /* filled once each; a race writes the same entry twice */
    Dl_info info;
    void *h; /* the module's link_map: a handle dlsym takes, without a dlopen that allocates */
    if (dladdr1(code, &info, &h, RTLD_DL_LINKMAP) == 0 || h == NULL)
        return NULL;
    uintptr_t base = (uintptr_t)info.dli_fbase;
    for (unsigned i = 0; i < 4; i++) {
        if (known[i].base == base)
            return &known[i];
    }
    unwinder_fns f = {base, (_Unwind_Reason_Code(*)(struct _Unwind_Exception *))dlsym(h, "_Unwind_Resume"),
                      (uintptr_t(*)(struct _Unwind_Context *))dlsym(h, "_Unwind_GetCFA"),
                      (void (*)(struct _Unwind_Context *, int, uintptr_t))dlsym(h, "_Unwind_SetGR"),
                      (void (*)(struct _Unwind_Context *, uintptr_t))dlsym(h, "_Unwind_SetIP")};
    if (f.resume == NULL || f.get_cfa == NULL || f.set_gr == NULL || f.set_ip == NULL)
        return NULL; /* an unwinder linked into the program: it stops at the trampoline */
    for (unsigned i = 0; i < 4; i++) {
        if (known[i].base == 0) {
            known[i] = f;
            return &known[i];
        }
    }
    return NULL;
}

ZW_HIDDEN extern char zwi_shadow_landing[];
/* The _Unwind_Resume zwi_shadow_landing jumps to: set by the personality routine just before. */
ZW_HIDDEN _Thread_local void *zwi_shadow_resume __attribute__((tls_model("initial-exec")));

/* The trampoline's personality routine: called for the "frame" whose return address is the
 * trampoline's. A search (an exception's phase 1) cannot go on past it: the interposed
 * _Unwind_RaiseException put the real addresses back first, unless the program raised through an
 * unwinder of its own. A forced unwind's cleanup (glibc's pthread_exit and pthread_cancel call
 * libgcc's _Unwind_ForcedUnwind directly) can: every real return address goes back, and the
 * context is installed at zwi_shadow_landing, which resumes from the real caller. */
ZW_HIDDEN _Unwind_Reason_Code
zwi_shadow_personality(int version, _Unwind_Action actions, uint64_t exception_class,
                       struct _Unwind_Exception *exc, struct _Unwind_Context *ctx)
{
    (void)version;
    (void)exception_class;
    if (!(actions & _UA_FORCE_UNWIND) || !(actions & _UA_CLEANUP_PHASE))
        return _URC_CONTINUE_UNWIND;
    const unwinder_fns *f = unwinder_of(__builtin_return_address(0));
    if (f == NULL)
        return _URC_CONTINUE_UNWIND;
    struct zwi_shadow *s = &zwi_shadow_tls;
    /* the CFA of the frame that returned to the trampoline: rsp in this "frame", one word above
     * the slot (libgcc keeps no rsp register past a frame: _Unwind_GetGR would read NULL) */
    uintptr_t slot = f->get_cfa(ctx) - 8;
    uintptr_t real = 0;
    for (unsigned i = count(s); s->base != NULL && i-- > 0;) {
        if (s->base[i] == slot) {
            real = s->rets[-(ptrdiff_t)i];
            break;
        }
    }
    if (real == 0)
        return _URC_CONTINUE_UNWIND; /* not ours: the unwind ends here, as without us */
    drop_all(s);
    zwi_shadow_resume = (void *)f->resume;
    f->set_gr(ctx, __builtin_eh_return_data_regno(0), (uintptr_t)exc);
    f->set_gr(ctx, __builtin_eh_return_data_regno(1), real);
    f->set_ip(ctx, (uintptr_t)zwi_shadow_landing);
    return _URC_INSTALL_CONTEXT;
}

/* makecontext (the stub jumps to the real one after): a context on a stack inside this thread's
 * would share the thread's shadow stack with it; patching stops for the process, and this
 * thread's real return addresses go back. */
ZW_HIDDEN __attribute__((used)) void *
zwi_shadow_before_makecontext(ucontext_t *ucp)
{
    zwi_thread *th = zwi_trace_self;
    uintptr_t lo = (uintptr_t)ucp->uc_stack.ss_sp, hi = lo + ucp->uc_stack.ss_size;
    if (th == NULL || th->stack_hi == 0 || (lo < th->stack_hi && hi > th->stack_lo)) {
        atomic_store_explicit(&patching_off, true, memory_order_relaxed);
        if (zwi_trace_guard == 0 && zwi_shadow_tls.top != zwi_shadow_tls.base)
            drop_all(&zwi_shadow_tls);
    }
    return real_of("makecontext", &real[REAL_MAKECONTEXT]);
}
