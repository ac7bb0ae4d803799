/* tests/preload/test_unwind.c - the preload library's unwinder (src/preload/unwind.c) alone, on
 * real stacks. A hook built like preload's (a frame of its own, a frame-pointer walk, then
 * zwi_preload_unwind_fix) is called through functions of small libraries built with and without
 * frame pointers (unwind_call.c):
 *
 *   libzwu_fp.so     zwu_fp_call, frame pointers
 *   libzwu_rt.so     zwu_rt_call, none: named a runtime library, as the C library is in preload
 *   libzwu_mixed.so  zwu_mixed_fp_call with frame pointers, zwu_mixed_nofp_call without
 *
 * Each traceback is checked against a full walk by libgcc's unwinder (_Unwind_Backtrace) and
 * against the names of the functions called (dladdr). Each test starts from a fresh unwinder.
 * ZWT_UNWIND_VERBOSE=1 prints each checked walk. */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unwind.h>

#include "trace_internal.h"
#include "unwinder.h"

/* one link of a call chain (unwind_call.c) */
typedef struct zwu_link {
    void *(*fn)(const struct zwu_link *self); /* called with its own link */
    const struct zwu_link *next;
} zwu_link;
void *zwu_fp_call(const zwu_link *self);
void *zwu_rt_call(const zwu_link *self);
void *zwu_mixed_fp_call(const zwu_link *self);
void *zwu_mixed_nofp_call(const zwu_link *self);

#define MAXF 64 /* frames kept per walk: more than any chain here */

static zwi_unwinder U; /* the unwinder under test */
/* the trace layer's, which the unwinder reads (the shadow stack's interposed functions): no hook
 * runs here, and no tracer */
_Thread_local unsigned zwi_trace_guard __attribute__((tls_model("initial-exec")));
_Thread_local zwi_thread *zwi_trace_self __attribute__((tls_model("initial-exec")));
static zwi_thread TH;  /* only its stack bounds are used (by zwi_capture) */
static struct {
    uintptr_t raw[MAXF]; /* the frame-pointer walk, as the hook saw it */
    unsigned nraw;
    uintptr_t fixed[MAXF]; /* after zwi_preload_unwind_fix */
    unsigned nfixed;
    unsigned total;
    uintptr_t ref[MAXF]; /* libgcc's unwinder, from the hook's caller on */
    unsigned nref;
    uintptr_t repair;    /* zwi_preload_unwind_repair_ret() of the frame-pointer walk, before fix */
    uintptr_t cfa[MAXF]; /* the CFA walker alone, from the hook's caller on (hook_cfa) */
    int ncfa;
    uintptr_t inc[MAXF]; /* the incremental walk (hook_inc), of at most max_inc frames */
    int ninc;
    unsigned max_inc;
    unsigned reused; /* frames of it taken from the walk before */
} W;

static void
setup(void)
{
    static const char *const runtime[] = {"/libzwu_rt.so", NULL};
    zwi_preload_unwind_init(&U, runtime, getenv("ZW_UNWIND"));
    pthread_attr_t attr;
    void *addr;
    size_t size;
    cr_assert_eq(pthread_getattr_np(pthread_self(), &attr), 0);
    cr_assert_eq(pthread_attr_getstack(&attr, &addr, &size), 0);
    pthread_attr_destroy(&attr);
    TH.stack_lo = (uintptr_t)addr;
    TH.stack_hi = (uintptr_t)addr + size;
}

typedef struct ref_walk {
    unsigned skip; /* frames still to skip: the hook's */
} ref_walk;

static _Unwind_Reason_Code
ref_step(struct _Unwind_Context *ctx, void *arg)
{
    ref_walk *w = arg;
    uintptr_t ip = _Unwind_GetIP(ctx);
    if (ip == 0 || W.nref == MAXF)
        return _URC_END_OF_STACK;
    if (w->skip > 0)
        w->skip--;
    else
        W.ref[W.nref++] = ip;
    return _URC_NO_REASON;
}

/* The hook: the same steps as preload's on_alloc, from a frame of its own. */
__attribute__((noinline)) static void *
hook(const zwu_link *self)
{
    unsigned total;
    unsigned nf = zwi_capture(&TH, 0, W.raw, MAXF, &total);
    W.nraw = nf;
    const uintptr_t *hook_fp = __builtin_frame_address(0);
    W.repair = zwi_preload_unwind_repair_ret(&U, W.raw[0], nf, hook_fp);
    /* a caller known not to keep frame pointers: the unwinder's walk; else the chain fixed */
    W.nfixed = zwi_preload_unwind_nofp_caller(&U, W.fixed, MAXF, &total, TH.stack_lo, TH.stack_hi,
                                              hook_fp);
    if (W.nfixed == 0) { /* total is still the chain's */
        memcpy(W.fixed, W.raw, nf * sizeof(*W.fixed));
        W.nfixed = zwi_preload_unwind_fix(&U, W.fixed, nf, MAXF, &total, TH.stack_lo,
                                          TH.stack_hi, hook_fp);
    }
    W.total = total;
    W.nref = 0;
    ref_walk rw = {1};
    _Unwind_Backtrace(ref_step, &rw);
    return NULL;
}

/* A hook that walks with the CFA walker alone (W.cfa) and with libgcc's unwinder (W.ref). */
__attribute__((noinline)) static void *
hook_cfa(const zwu_link *self)
{
    (void)self;
    const uintptr_t *hook_fp = __builtin_frame_address(0);
    W.ncfa = zwi_preload_unwind_cfa(&U, W.cfa, MAXF, hook_fp[1], (uintptr_t)(hook_fp + 2),
                                    hook_fp[0], TH.stack_hi);
    W.nref = 0;
    ref_walk rw = {1};
    _Unwind_Backtrace(ref_step, &rw);
    return NULL;
}

/* A hook that walks incrementally (W.inc, W.reused), with the CFA walker alone (W.cfa) and with
 * libgcc's unwinder (W.ref). */
__attribute__((noinline)) static void *
hook_inc(const zwu_link *self)
{
    (void)self;
    const uintptr_t *hook_fp = __builtin_frame_address(0);
    W.ninc = zwi_preload_unwind_incremental(&U, W.inc, W.max_inc, hook_fp[1],
                                            (uintptr_t)(hook_fp + 2), hook_fp[0], TH.stack_hi);
    W.reused = zwi_preload_unwind_reused();
    W.ncfa = zwi_preload_unwind_cfa(&U, W.cfa, W.max_inc, hook_fp[1], (uintptr_t)(hook_fp + 2),
                                    hook_fp[0], TH.stack_hi);
    W.nref = 0;
    ref_walk rw = {1};
    _Unwind_Backtrace(ref_step, &rw);
    return NULL;
}

/* A hook that walks through the shadow stack (W.inc, W.reused: ZW_UNWIND=shadow), then with the
 * CFA walker alone (W.cfa), the real return addresses put back for it. */
__attribute__((noinline)) static void *
hook_shadow(const zwu_link *self)
{
    (void)self;
    const uintptr_t *hook_fp = __builtin_frame_address(0);
    W.ninc = zwi_preload_unwind_shadow(&U, W.inc, W.max_inc, hook_fp[1], (uintptr_t)(hook_fp + 2),
                                       hook_fp[0], TH.stack_lo, TH.stack_hi);
    W.reused = zwi_preload_shadow_reused();
    unsigned unpatched = zwi_preload_shadow_unpatch();
    W.ncfa = zwi_preload_unwind_cfa(&U, W.cfa, W.max_inc, hook_fp[1], (uintptr_t)(hook_fp + 2),
                                    hook_fp[0], TH.stack_hi);
    zwi_preload_shadow_repatch(unpatched);
    W.nref = 0;
    return NULL;
}

/* A hook that starts as the preload library's do: the unwinder's walk at once if its caller is
 * in a module known not to keep frame pointers (W.inc; W.ninc 0 otherwise), and libgcc's. */
__attribute__((noinline)) static void *
hook_nofp(const zwu_link *self)
{
    (void)self;
    const uintptr_t *hook_fp = __builtin_frame_address(0);
    W.total = 0;
    W.ninc = (int)zwi_preload_unwind_nofp_caller(&U, W.inc, MAXF, &W.total, TH.stack_lo,
                                                 TH.stack_hi, hook_fp);
    W.nref = 0;
    ref_walk rw = {1};
    _Unwind_Backtrace(ref_step, &rw);
    return NULL;
}

static void *(*the_hook)(const zwu_link *) = hook;

/* ---- the chains: each starts in a function of this program, named for dladdr ---- */

#define VISIBLE __attribute__((visibility("default"), noinline))

/* Calls fns[0], which calls fns[1] ... which calls the hook. */
VISIBLE void *
zwt_unwind_drive(const zwu_link *first)
{
    return first->fn(first);
}

/* the middle of a chain: a function of this program (frame pointers) */
VISIBLE void *
zwt_unwind_inner(const zwu_link *self)
{
    return self->next->fn(self->next);
}

/* Runs the chain fns[0] -> fns[1] -> ... -> the hook, from zwt_unwind_drive. */
static void
run(void *(*const *fns)(const zwu_link *), unsigned n)
{
    zwu_link links[20];
    cr_assert_lt(n, 20);
    for (unsigned i = 0; i <= n; i++) {
        links[i].fn = i < n ? fns[i] : the_hook;
        links[i].next = i < n ? &links[i + 1] : NULL;
    }
    zwt_unwind_drive(&links[0]);
}

#define RUN(...)                                                                                   \
    do {                                                                                           \
        void *(*const fns_[])(const zwu_link *) = {__VA_ARGS__};                                   \
        run(fns_, sizeof(fns_) / sizeof(fns_[0]));                                                 \
    } while (0)

/* The function whose code holds `pc` (a return address, so pc - 1 is inside the call). */
static const char *
name_of(uintptr_t pc)
{
    Dl_info info;
    if (dladdr((void *)(pc - 1), &info) == 0 || info.dli_sname == NULL)
        return "?";
    return info.dli_sname;
}

/* The index of the first frame of `f` in `name`, or -1. */
static int
find(const uintptr_t *f, unsigned n, const char *name)
{
    for (unsigned i = 0; i < n; i++) {
        if (strcmp(name_of(f[i]), name) == 0)
            return (int)i;
    }
    return -1;
}

/* The fixed traceback names `names` in order from its first frame, agrees with the unwinder's
 * walk up to the frame into the test's body (the one after zwt_unwind_drive), and says how many
 * frames it has. */
static void
check_complete(const char *const *names, unsigned count)
{
    if (getenv("ZWT_UNWIND_VERBOSE") != NULL) {
        for (unsigned i = 0; i < 8; i++)
            fprintf(stderr, "%u: raw %s fixed %s ref %s\n", i, i < W.nraw ? name_of(W.raw[i]) : "-",
                    i < W.nfixed ? name_of(W.fixed[i]) : "-", i < W.nref ? name_of(W.ref[i]) : "-");
    }
    for (unsigned i = 0; i < count; i++)
        cr_assert_str_eq(name_of(W.fixed[i]), names[i], "frame %u", i);
    cr_assert_str_eq(names[count - 1], "zwt_unwind_drive");
    cr_assert_gt(W.nref, count, "the unwinder's walk has %u frames", W.nref);
    cr_assert_gt(W.nfixed, count);
    for (unsigned i = 0; i <= count; i++)
        cr_assert_eq(W.fixed[i], W.ref[i], "frame %u: %#lx, the unwinder says %#lx (%s)", i,
                     (unsigned long)W.fixed[i], (unsigned long)W.ref[i], name_of(W.ref[i]));
    cr_assert_geq(W.total, W.nfixed);
}

static int
votes(void *fn)
{
    struct zwi_unwind_module *m = zwi_preload_unwind_module_of(&U, (uintptr_t)fn);
    cr_assert_not_null(m, "no module holds %p", fn);
    return atomic_load(&m->fp);
}

TestSuite(preload_unwind, .init = setup);

Test(preload_unwind, finds_the_test_libraries)
{
    cr_assert_gt(U.nmods, 3);
    cr_assert_geq(U.nnofp, 1, "libzwu_rt.so is named a runtime library");
    cr_assert(zwi_preload_unwind_in_nofp(&U, (uintptr_t)zwu_rt_call));
    cr_assert_not(zwi_preload_unwind_in_nofp(&U, (uintptr_t)zwu_fp_call));
    cr_assert_eq(votes(zwu_rt_call), -1, "runtime code starts distrusted");
    cr_assert_eq(votes(zwu_fp_call), 0);
    cr_assert_eq(zwi_preload_unwind_module_fp(&U, (uintptr_t)zwu_fp_call), 0);
}

Test(preload_unwind, module_is_trusted_after_agreeing_walks)
{
    static const char *const names[] = {"zwu_fp_call", "zwt_unwind_drive"};
    for (int k = 1; k <= ZWI_UNWIND_FP_TRUSTED; k++) {
        cr_assert_eq(zwi_preload_unwind_module_fp(&U, (uintptr_t)zwu_fp_call), 0, "walk %d", k);
        RUN(zwu_fp_call);
        check_complete(names, 2);
        cr_assert_eq(votes(zwu_fp_call), k, "walk %d agreed", k);
    }
    cr_assert_eq(zwi_preload_unwind_module_fp(&U, (uintptr_t)zwu_fp_call), 1);
    /* trusted: the frame-pointer walk is kept as it is, and it is right */
    RUN(zwu_fp_call);
    cr_assert_eq(W.nfixed, W.nraw);
    cr_assert_arr_eq(W.fixed, W.raw, W.nraw * sizeof(*W.raw));
    check_complete(names, 2);
    cr_assert_eq(votes(zwu_fp_call), ZWI_UNWIND_FP_TRUSTED, "no walk asked the unwinder");
}

Test(preload_unwind, module_is_distrusted_after_one_disagreement)
{
    RUN(zwu_mixed_fp_call);
    RUN(zwu_mixed_fp_call);
    cr_assert_eq(votes(zwu_mixed_fp_call), 2);
    /* a function of the same module without frame pointers: its walk skips zwt_unwind_drive */
    RUN(zwu_mixed_nofp_call);
    cr_assert_eq(find(W.raw, W.nraw, "zwt_unwind_drive"), -1, "the frame-pointer walk skips it");
    static const char *const nofp_names[] = {"zwu_mixed_nofp_call", "zwt_unwind_drive"};
    check_complete(nofp_names, 2);
    cr_assert_eq(votes(zwu_mixed_nofp_call), -1);
    cr_assert_eq(zwi_preload_unwind_module_fp(&U, (uintptr_t)zwu_mixed_fp_call), -1);
    /* for good: agreeing walks do not bring it back, and each is still complete */
    static const char *const fp_names[] = {"zwu_mixed_fp_call", "zwt_unwind_drive"};
    for (int k = 0; k < ZWI_UNWIND_FP_TRUSTED + 1; k++) {
        RUN(zwu_mixed_fp_call);
        check_complete(fp_names, 2);
    }
    cr_assert_eq(votes(zwu_mixed_fp_call), -1);
}

Test(preload_unwind, traceback_through_a_function_without_frame_pointers_is_complete)
{
    /* drive -> zwu_mixed_nofp_call (no frame pointer, a module not known yet) -> hook */
    RUN(zwu_mixed_nofp_call);
    cr_assert_eq(find(W.raw, W.nraw, "zwt_unwind_drive"), -1, "the frame-pointer walk skips it");
    static const char *const names[] = {"zwu_mixed_nofp_call", "zwt_unwind_drive"};
    check_complete(names, 2);
}

/* The documented rule (docs/zw.md#how-it-works): the unwinder hands over to frame pointers at the
 * first frame whose frame record checks out, so a function without frame pointers higher up
 * (not in a runtime library) loses its caller, as with frame pointers alone. */
Test(preload_unwind, walk_goes_on_by_frame_pointers_from_the_first_frame_that_keeps_one)
{
    /* drive -> zwu_mixed_nofp_call -> inner -> zwu_fp_call -> hook */
    RUN(zwu_mixed_nofp_call, zwt_unwind_inner, zwu_fp_call);
    static const char *const names[] = {"zwu_fp_call", "zwt_unwind_inner", "zwu_mixed_nofp_call"};
    for (unsigned i = 0; i < 3; i++) {
        cr_assert_str_eq(name_of(W.fixed[i]), names[i], "frame %u", i);
        cr_assert_eq(W.fixed[i], W.ref[i], "frame %u", i);
    }
    cr_assert_str_eq(name_of(W.ref[3]), "zwt_unwind_drive");
    cr_assert_eq(find(W.fixed, W.nfixed, "zwt_unwind_drive"), -1);
    cr_assert_eq(W.nfixed, W.nraw);
    cr_assert_arr_eq(W.fixed, W.raw, W.nraw * sizeof(*W.raw), "the frame-pointer walk, as it was");
}

Test(preload_unwind, traceback_through_runtime_code_is_complete)
{
    /* drive -> zwu_rt_call (runtime, no frame pointer) -> hook: first walk, nothing learnt */
    RUN(zwu_rt_call);
    cr_assert_eq(find(W.raw, W.nraw, "zwt_unwind_drive"), -1, "the frame-pointer walk skips it");
    cr_assert_eq(W.repair, 0, "nothing learnt yet");
    static const char *const names[] = {"zwu_rt_call", "zwt_unwind_drive"};
    check_complete(names, 2);
}

Test(preload_unwind, skip_slot_repair_finds_the_caller_of_a_function_that_keeps_its_rbp)
{
    /* zwu_fp_call -> zwu_rt_call -> hook: the frame-pointer walk misses zwu_fp_call, the caller of
     * the runtime function, which keeps zwu_fp_call's rbp */
    for (int k = 0; k < ZWI_UNWIND_FP_TRUSTED; k++)
        RUN(zwu_fp_call); /* the caller's module keeps frame pointers */
    cr_assert_eq(zwi_preload_unwind_module_fp(&U, (uintptr_t)zwu_fp_call), 1);
    static const char *const names[] = {"zwu_rt_call", "zwu_fp_call", "zwt_unwind_drive"};
    /* first walk: the unwinder's, which learns the slot of zwu_fp_call's return address */
    RUN(zwu_fp_call, zwu_rt_call);
    cr_assert_eq(find(W.raw, W.nraw, "zwu_fp_call"), -1, "the frame-pointer walk skips it");
    cr_assert_eq(W.repair, 0, "nothing learnt yet");
    check_complete(names, 3);
    uint64_t e = atomic_load(&U.skip[zwi_preload_unwind_skip_index(W.raw[0])]);
    cr_assert_eq(e >> 16, W.raw[0], "a skip slot learnt for the return address into zwu_rt_call");
    cr_assert_gt(e & 0xFFFF, 0);
    /* later walks: repaired from the slot, without the unwinder */
    for (int k = 0; k < 3; k++) {
        RUN(zwu_fp_call, zwu_rt_call);
        cr_assert_str_eq(name_of(W.repair), "zwu_fp_call");
        cr_assert_eq(W.repair, W.ref[1]);
        cr_assert_eq(W.nfixed, W.nraw + 1, "one frame inserted");
        cr_assert_arr_eq(W.fixed + 2, W.raw + 1, (W.nraw - 1) * sizeof(*W.raw));
        check_complete(names, 3);
    }
}

/* A caller in a module known not to keep frame pointers is walked by the unwinder at once, to
 * the end of the stack as libgcc walks it; a caller in a module not known yet, in one that keeps
 * them, or in the C runtime (repaired from its frame-pointer walk) is not (0: the hooks take the
 * frame-pointer walk's path). */
Test(preload_unwind, a_caller_known_without_frame_pointers_is_walked_by_the_unwinder_at_once)
{
    enum zwi_unwind_mode mode = U.mode;
    U.mode = ZWI_UNWIND_INCREMENTAL; /* the shadow walk patches the stack libgcc then reads */
    the_hook = hook_nofp;
    struct zwi_unwind_module *m = zwi_preload_unwind_module_of(&U, (uintptr_t)zwu_mixed_nofp_call);
    cr_assert_not_null(m);
    RUN(zwu_mixed_nofp_call);
    cr_assert_eq(W.ninc, 0, "a module not known yet: %d frames", W.ninc);
    atomic_store(&m->fp, -1);
    for (int k = 0; k < 2; k++) { /* the second walk reuses the first */
        RUN(zwu_mixed_nofp_call);
        cr_assert_gt(W.ninc, 2);
        cr_assert_eq(W.total, (unsigned)W.ninc);
        cr_assert_eq((unsigned)W.ninc, W.nref, "%d frames, libgcc %u", W.ninc, W.nref);
        for (unsigned i = 0; i < W.nref; i++)
            cr_assert_eq(W.inc[i], W.ref[i], "frame %u: %s, libgcc %s", i, name_of(W.inc[i]),
                         name_of(W.ref[i]));
        cr_assert_str_eq(name_of(W.inc[0]), "zwu_mixed_nofp_call");
    }
    atomic_store(&m->fp, ZWI_UNWIND_FP_TRUSTED);
    RUN(zwu_mixed_nofp_call);
    cr_assert_eq(W.ninc, 0, "a module keeping frame pointers: %d frames", W.ninc);
    struct zwi_unwind_module *rt = zwi_preload_unwind_module_of(&U, (uintptr_t)zwu_rt_call);
    cr_assert_not_null(rt);
    atomic_store(&rt->fp, -1);
    RUN(zwu_rt_call);
    cr_assert_eq(W.ninc, 0, "the C runtime: %d frames", W.ninc);
    U.mode = mode;
    the_hook = hook;
}

/* ---- the CFA walker (unwind_cfa.c) ---- */

/* The CFA walker's frames are libgcc's, to the end of the stack, through every kind of link. */
Test(preload_unwind, cfa_walk_equals_libgcc_through_code_with_and_without_frame_pointers)
{
    the_hook = hook_cfa;
    void *(*const chains[][4])(const zwu_link *) = {
        {zwu_mixed_nofp_call},
        {zwu_rt_call, zwu_mixed_nofp_call},
        {zwu_mixed_nofp_call, zwt_unwind_inner, zwu_fp_call, zwu_rt_call},
        {zwu_fp_call, zwu_mixed_fp_call, zwu_rt_call},
    };
    const unsigned len[] = {1, 2, 4, 3};
    for (int round = 0; round < 2; round++) { /* the second from the cache of rules */
        for (unsigned c = 0; c < sizeof(len) / sizeof(len[0]); c++) {
            memset(W.cfa, 0, sizeof(W.cfa));
            run(chains[c], len[c]);
            cr_assert_gt(W.ncfa, (int)len[c] + 1, "chain %u: %d frames", c, W.ncfa);
            cr_assert_eq((unsigned)W.ncfa, W.nref, "chain %u, round %d: %d frames, libgcc %u", c,
                         round, W.ncfa, W.nref);
            for (unsigned i = 0; i < W.nref; i++)
                cr_assert_eq(W.cfa[i], W.ref[i], "chain %u frame %u: %s, libgcc %s", c, i,
                             name_of(W.cfa[i]), name_of(W.ref[i]));
            cr_assert_eq(find(W.cfa, (unsigned)W.ncfa, "zwt_unwind_drive"), (int)len[c]);
        }
    }
    the_hook = hook;
}

/* A front entry (unwinder.h's cfa_front, unwind_cfa.c's packing) for return address `ret`: the
 * rule CFA = rsp + off, rbp kept. */
static uint64_t
front_entry(uintptr_t ret, uint32_t off)
{
    return (uint64_t)(ret >> 10) << 27 | off;
}

/* The first word of the front table's set of return address `ret` (1024 sets of two). */
static _Atomic uint64_t *
front_set(uintptr_t ret)
{
    return &U.cfa_front[2 * (ret & 1023)];
}

/* The table in front of the cache of rules holds the rules read from the cache, and is read
 * first: a rule found there, in either word of the return address's set, under the address's own
 * tag is followed (a wrong one, planted, gives another walk), and one under another address's tag
 * is not (the walk stays libgcc's). */
Test(preload_unwind, cfa_front_is_read_first_and_only_for_its_own_address)
{
    _Static_assert(ZWI_UNWIND_CFA_FRONT == 2048, "front_entry's tag");
    the_hook = hook_cfa;
    void *(*const chain[])(const zwu_link *) = {zwu_mixed_nofp_call, zwu_rt_call};
    run(chain, 2); /* fills the cache of rules */
    run(chain, 2); /* and from it the front */
    cr_assert_gt(W.ncfa, 3);
    uintptr_t first[MAXF];
    unsigned n = (unsigned)W.ncfa;
    memcpy(first, W.cfa, n * sizeof(*first));
    size_t filled = 0;
    for (size_t i = 0; i < ZWI_UNWIND_CFA_FRONT; i++)
        filled += atomic_load(&U.cfa_front[i]) != 0;
    cr_assert_geq(filled, 3, "the walk's rules are in the front (%zu entries)", filled);
    /* other addresses' rules, in both words of the sets of this walk's frames: not followed */
    for (unsigned i = 0; i < n; i++) {
        atomic_store(&front_set(first[i])[0], front_entry(first[i] + 1024, 8));
        atomic_store(&front_set(first[i])[1], front_entry(first[i] + 2048, 8));
    }
    run(chain, 2);
    cr_assert_eq((unsigned)W.ncfa, W.nref, "%d frames, libgcc %u", W.ncfa, W.nref);
    for (unsigned i = 0; i < W.nref; i++)
        cr_assert_eq(W.cfa[i], W.ref[i], "frame %u: %s, libgcc %s", i, name_of(W.cfa[i]),
                     name_of(W.ref[i]));
    /* a wrong rule under the hook's caller's own address, in either word: followed (CFA = rsp + 8
     * is no calling function's, whose stack pointer is 16-byte aligned at its calls) */
    uintptr_t caller = first[0];
    for (unsigned k = 0; k < 2; k++) {
        atomic_store(&front_set(caller)[k], front_entry(caller, 8));
        atomic_store(&front_set(caller)[1 - k], front_entry(caller + 1024, 8));
        run(chain, 2);
        cr_assert(W.ncfa < 2 || W.cfa[1] != W.ref[1],
                  "word %u: the front's rule for %s was not read", k, name_of(caller));
    }
    zwi_preload_unwind_forget_cfa(&U);
    for (size_t i = 0; i < ZWI_UNWIND_CFA_FRONT; i++)
        cr_assert_eq(atomic_load(&U.cfa_front[i]), 0, "front entry %zu kept", i);
    run(chain, 2);
    cr_assert_eq((unsigned)W.ncfa, W.nref, "after forgetting: %d frames, libgcc %u", W.ncfa,
                 W.nref);
    the_hook = hook;
}

/* The cache of rules behind the front is two-way (sets of two words, 8192 sets): an address
 * whose set another address takes keeps its rule in the set's second word, where a walk still
 * finds it; a rule in either word is followed. */
Test(preload_unwind, cfa_cache_keeps_two_addresses_of_one_set)
{
    _Static_assert(ZWI_UNWIND_CFA_CACHE == 16384, "8192 sets of two");
    the_hook = hook_cfa;
    void *(*const chain[])(const zwu_link *) = {zwu_mixed_nofp_call, zwu_rt_call};
    zwi_preload_unwind_forget_cfa(&U);
    run(chain, 2);
    cr_assert_eq((unsigned)W.ncfa, W.nref);
    uintptr_t caller = W.cfa[0];
    size_t set = 2 * (caller & 8191);
    uint64_t mine = atomic_load(&U.cfa[set]);
    cr_assert_neq(mine, 0, "the caller's rule is in its set's first word");
    /* another address of the same set, looked up by a walk from a made-up frame */
    uintptr_t other = caller + 8192;
    uintptr_t frames[2];
    uintptr_t stack[4] = {0, 0, 0, 0};
    (void)zwi_preload_unwind_cfa(&U, frames, 2, other, (uintptr_t)stack, (uintptr_t)stack,
                                 (uintptr_t)(stack + 4));
    cr_assert_eq(atomic_load(&U.cfa[set + 1]), mine, "the caller's rule moved to the second word");
    cr_assert_neq(atomic_load(&U.cfa[set]), mine);
    for (size_t i = 0; i < ZWI_UNWIND_CFA_FRONT; i++) /* the walk reads the cache, not the front */
        atomic_store(&U.cfa_front[i], 0);
    run(chain, 2);
    cr_assert_eq((unsigned)W.ncfa, W.nref, "%d frames, libgcc %u", W.ncfa, W.nref);
    for (unsigned i = 0; i < W.nref; i++)
        cr_assert_eq(W.cfa[i], W.ref[i], "frame %u: %s, libgcc %s", i, name_of(W.cfa[i]),
                     name_of(W.ref[i]));
    cr_assert_eq(atomic_load(&U.cfa[set + 1]), mine, "found where it was, not read again");
    /* a wrong rule in the second word is followed (CFA = rsp + 8, as front_entry packs it) */
    for (size_t i = 0; i < ZWI_UNWIND_CFA_FRONT; i++)
        atomic_store(&U.cfa_front[i], 0);
    atomic_store(&U.cfa[set + 1], (uint64_t)(caller >> 13) << 29 | 1u << 27 | 8u);
    run(chain, 2);
    cr_assert(W.ncfa < 2 || W.cfa[1] != W.ref[1], "the second word's rule was not read");
    the_hook = hook;
}

/* `max` bounds the walk; a return address in no module stops it with -1 (libunwind's turn). */
Test(preload_unwind, cfa_walk_stops_at_max_and_gives_up_outside_any_module)
{
    the_hook = hook_cfa;
    RUN(zwu_rt_call, zwu_mixed_nofp_call);
    the_hook = hook;
    cr_assert_gt(W.ncfa, 3);
    uintptr_t frames[2];
    uintptr_t stack[4] = {0, 0, 0, 0};
    /* a made-up frame: a return address in no module */
    cr_assert_eq(zwi_preload_unwind_cfa(&U, frames, 2, 0x10000, (uintptr_t)stack, (uintptr_t)stack,
                                        (uintptr_t)(stack + 4)),
                 -1);
    cr_assert_eq(frames[0], 0x10000);
}

/* Runs a chain under hook_inc and checks the incremental walk against the fresh ones; returns the
 * frames it reused. Always called from here, so that the frames below differ only by the chain. */
static __attribute__((noinline)) unsigned
run_inc(void *(*const *fns)(const zwu_link *), unsigned n)
{
    run(fns, n);
    cr_assert_geq(W.ncfa, 1);
    cr_assert_eq(W.ninc, W.ncfa, "max %u: %d frames, fresh %d", W.max_inc, W.ninc, W.ncfa);
    for (int i = 0; i < W.ncfa; i++)
        cr_assert_eq(W.inc[i], W.cfa[i], "frame %d: %s, fresh %s", i, name_of(W.inc[i]),
                     name_of(W.cfa[i]));
    for (int i = 0; i < W.ncfa && i < (int)W.nref; i++)
        cr_assert_eq(W.inc[i], W.ref[i], "frame %d: %s, libgcc %s", i, name_of(W.inc[i]),
                     name_of(W.ref[i]));
    cr_assert_leq(W.reused, (unsigned)W.ninc);
    return W.reused;
}

/* The incremental walk gives the CFA walker's frames whatever ran since the last walk: every
 * chain after every other, some ending in the same function at the same stack address with
 * another caller below it; limits that cut the walk short. The same chain again reuses all its
 * frames but the first. */
Test(preload_unwind, incremental_walk_equals_a_fresh_one_and_reuses_frames)
{
    the_hook = hook_inc;
    void *(*const chains[][4])(const zwu_link *) = {
        {zwu_mixed_nofp_call},
        {zwu_rt_call, zwu_mixed_nofp_call},
        {zwu_mixed_nofp_call, zwu_mixed_nofp_call}, /* the same frames as the one before */
        {zwu_mixed_nofp_call, zwt_unwind_inner, zwu_fp_call, zwu_rt_call},
        {zwu_fp_call, zwu_mixed_fp_call, zwu_rt_call},
        {zwu_mixed_fp_call, zwu_mixed_nofp_call, zwu_rt_call},
    };
    const unsigned len[] = {1, 2, 2, 4, 3, 3};
    const unsigned nchains = sizeof(len) / sizeof(len[0]);
    const unsigned maxes[] = {MAXF, 3, 5};
    unsigned reused = 0;
    for (unsigned mx = 0; mx < sizeof(maxes) / sizeof(maxes[0]); mx++) {
        W.max_inc = maxes[mx];
        for (unsigned c1 = 0; c1 < nchains; c1++) {
            for (unsigned c2 = 0; c2 < nchains; c2++) {
                for (int k = 0; k < 3; k++) { /* c1, c2, c2 again: all from one call site */
                    unsigned c = k == 0 ? c1 : c2;
                    unsigned r = run_inc(chains[c], len[c]);
                    if (k == 1)
                        reused += r;
                    if (k == 2)
                        cr_assert_eq(r + 1, (unsigned)W.ninc, "chain %u again: %u of %d reused", c,
                                     r, W.ninc);
                }
            }
        }
    }
    cr_assert_gt(reused, 0, "walks after other chains reuse their common frames");
    the_hook = hook;
}

/* A stack that deepens a frame per walk, then comes back, many times the limit: each walk moves
 * the start of the kept entries (they slide in their room, and go back to its middle at its
 * ends), and each still equals a fresh walk and reuses all but its new frames. */
Test(preload_unwind, incremental_walk_follows_a_stack_that_deepens_and_comes_back)
{
    the_hook = hook_inc;
    void *(*chain[19])(const zwu_link *);
    for (unsigned i = 0; i < 19; i++)
        chain[i] = zwu_mixed_nofp_call;
    const unsigned maxes[] = {3, 5, MAXF};
    for (unsigned mx = 0; mx < sizeof(maxes) / sizeof(maxes[0]); mx++) {
        W.max_inc = maxes[mx];
        for (int round = 0; round < 2; round++) {
            unsigned r = 0;
            for (unsigned len = 1; len < 19; len++)
                r += run_inc(chain, len);
            for (unsigned len = 19; len-- > 1;)
                r += run_inc(chain, len);
            cr_assert_gt(r, 0, "max %u: frames are reused", maxes[mx]);
        }
    }
    the_hook = hook;
}

/* The shadow-stack walk gives the CFA walker's frames whatever ran since the last walk (every
 * chain after every other, limits that cut the walk short), returns go through the trampoline
 * (the chains return after each walk), and the same chain again takes frames from the shadow
 * stack. */
Test(preload_unwind, shadow_walk_equals_a_fresh_one_and_reuses_frames)
{
    const char *why;
    if (!zwi_preload_shadow_usable(&why))
        cr_skip_test("%s", why); /* a CET shadow stack: the mode is refused */
    cr_assert(zwi_preload_unwind_set_mode(&U, "shadow"));
    the_hook = hook_shadow;
    void *(*const chains[][4])(const zwu_link *) = {
        {zwu_mixed_nofp_call},
        {zwu_rt_call, zwu_mixed_nofp_call},
        {zwu_mixed_nofp_call, zwu_mixed_nofp_call},
        {zwu_mixed_nofp_call, zwt_unwind_inner, zwu_fp_call, zwu_rt_call},
        {zwu_mixed_fp_call, zwu_mixed_nofp_call, zwu_rt_call},
    };
    const unsigned len[] = {1, 2, 2, 4, 3};
    const unsigned nchains = sizeof(len) / sizeof(len[0]);
    const unsigned maxes[] = {MAXF, 3, 5};
    unsigned reused = 0;
    for (unsigned mx = 0; mx < sizeof(maxes) / sizeof(maxes[0]); mx++) {
        W.max_inc = maxes[mx];
        for (unsigned c1 = 0; c1 < nchains; c1++) {
            for (unsigned c2 = 0; c2 < nchains; c2++) {
                for (int k = 0; k < 3; k++)
                    reused += run_inc(chains[k == 0 ? c1 : c2], len[k == 0 ? c1 : c2]);
            }
        }
    }
    cr_assert_gt(reused, 0, "walks take frames from the shadow stack");
    the_hook = hook;
}

Test(preload_unwind, mode_values)
{
    zwi_unwinder *u = calloc(1, sizeof(*u));
    cr_assert_not_null(u);
    cr_assert(zwi_preload_unwind_set_mode(u, NULL));
#if defined(__x86_64__) && defined(__linux__)
    cr_assert_eq(u->mode, ZWI_UNWIND_SHADOW, "the default");
#else
    cr_assert_eq(u->mode, ZWI_UNWIND_INCREMENTAL, "the default");
#endif
    cr_assert_not(u->mode_named, "the default is not named");
    cr_assert(zwi_preload_unwind_set_mode(u, ""));
    cr_assert_not(u->mode_named, "empty is the default");
    cr_assert(zwi_preload_unwind_set_mode(u, "incremental"));
    cr_assert_eq(u->mode, ZWI_UNWIND_INCREMENTAL);
    cr_assert(u->mode_named);
    cr_assert(zwi_preload_unwind_set_mode(u, "dwarf"));
    cr_assert_eq(u->mode, ZWI_UNWIND_DWARF);
    cr_assert(zwi_preload_unwind_set_mode(u, "fp"));
    cr_assert_eq(u->mode, ZWI_UNWIND_FP);
    cr_assert(zwi_preload_unwind_set_mode(u, "check"));
    cr_assert_eq(u->mode, ZWI_UNWIND_CHECK);
    cr_assert_eq(u->check_every, 1);
    cr_assert(zwi_preload_unwind_set_mode(u, "check:100"));
    cr_assert_eq(u->check_every, 100);
    cr_assert(zwi_preload_unwind_set_mode(u, "shadow"));
    cr_assert_eq(u->mode, ZWI_UNWIND_SHADOW);
    cr_assert_eq(u->check_every, 0, "shadow alone checks nothing");
    cr_assert(zwi_preload_unwind_set_mode(u, "shadow-check:7"));
    cr_assert_eq(u->mode, ZWI_UNWIND_SHADOW);
    cr_assert_eq(u->check_every, 7);
    cr_assert(zwi_preload_unwind_set_mode(u, "shadow-check"));
    cr_assert_eq(u->check_every, 1);
    cr_assert(zwi_preload_unwind_set_mode(u, "cfa"));
    cr_assert_eq(u->mode, ZWI_UNWIND_CFA);
    cr_assert_eq(u->check_every, 0, "no check left from the mode before");
    const char *bad[] = {"CFA",           "check:",        "check:0",       "check:-1",
                         "check:1x",      "checked",       "libunwind",     "incremental:1",
                         "shadow-",       "shadow-check:", "shadow-check:0", "shadowcheck",
                         "shadow:check",  "shadow-cfa"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_not(zwi_preload_unwind_set_mode(u, bad[i]), "%s", bad[i]);
        cr_assert_eq(u->mode, ZWI_UNWIND_CFA, "%s leaves the mode as it was", bad[i]);
    }
    free(u);
}

/* Check mode through the hook: every walk the CFA walker makes is compared with libunwind's (a
 * difference aborts this program); the tracebacks are complete. */
Test(preload_unwind, check_mode_walks_agree_with_libunwind)
{
    cr_assert(zwi_preload_unwind_set_mode(&U, "check"));
    static const char *const names[] = {"zwu_rt_call", "zwu_mixed_nofp_call", "zwt_unwind_drive"};
    for (int k = 0; k < 2 * ZWI_UNWIND_FP_TRUSTED; k++) {
        RUN(zwu_mixed_nofp_call, zwu_rt_call);
        check_complete(names, 3);
    }
    cr_assert_eq(zwi_preload_unwind_module_fp(&U, (uintptr_t)zwu_mixed_nofp_call), -1);
#ifdef ZW_HAVE_LIBUNWIND
    cr_assert_gt(atomic_load(&U.check_count), 0, "the CFA walker made no walk");
#endif
}

/* After code was unloaded (zwi_preload_unwind_unloaded, as the interposed dlclose calls it) the
 * CFA rules are gone, a skip entry for code in no module goes and one for loaded code stays, and
 * the next incremental walk reuses nothing of the last one: another module may be mapped where
 * the unloaded one was, at the same stack addresses. */
Test(preload_unwind, unloading_forgets_the_rules_and_the_last_walk)
{
    the_hook = hook_inc;
    W.max_inc = MAXF;
    void *(*const chain[])(const zwu_link *) = {zwu_mixed_nofp_call, zwu_rt_call};
    uintptr_t gone = 0x10000, kept = (uintptr_t)zwu_rt_call + 1;
    for (int k = 0; k < 4; k++) { /* one call site: the frames below are the same each time */
        if (k == 2) {
            atomic_store(&U.skip[zwi_preload_unwind_skip_index(gone)], (uint64_t)gone << 16 | 1);
            atomic_store(&U.skip[zwi_preload_unwind_skip_index(kept)], (uint64_t)kept << 16 | 1);
            unsigned before = atomic_load(&U.unloads);
            zwi_preload_unwind_unloaded(&U);
            cr_assert_eq(atomic_load(&U.unloads), before + 1);
            for (size_t i = 0; i < ZWI_UNWIND_CFA_CACHE; i++)
                cr_assert_eq(atomic_load(&U.cfa[i]), 0, "rule %zu kept", i);
            cr_assert_eq(atomic_load(&U.skip[zwi_preload_unwind_skip_index(gone)]), 0,
                         "a skip entry for code in no module is forgotten");
            cr_assert_eq(atomic_load(&U.skip[zwi_preload_unwind_skip_index(kept)]),
                         (uint64_t)kept << 16 | 1, "a skip entry for loaded code stays");
            atomic_store(&U.skip[zwi_preload_unwind_skip_index(kept)], 0);
        }
        unsigned r = run_inc(chain, 2); /* checks the walk against a fresh one */
        if (k == 2)
            cr_assert_eq(r, 0, "after an unload the walk is fresh (%u frames reused)", r);
        else if (k > 0)
            cr_assert_eq(r + 1, (unsigned)W.ninc, "walk %d: %u of %d frames reused", k, r, W.ninc);
    }
    the_hook = hook;
}
