/* preload/unwind_shadow_x86_64.S - the return trampoline of the shadow-stack unwinder
 * (unwind_shadow.c): a return address the unwinder replaced leads here, with rsp one word above
 * the slot it was read from. The trampoline finds that slot's entry in the thread's shadow stack
 * (entries below it are frames left without a return: longjmp, an exception), pops it and the
 * ones below, puts the real return address back in the slot and jumps there.
 *
 * It saves nothing and needs nothing saved: it touches only r10, r11 and the flags (none of them
 * holds a return value or is kept across a call) and writes only the red zone below rsp, which a
 * signal handler's frame skips and the returning function no longer uses. rax, rdx, xmm0, xmm1
 * and the x87 stack (st0: long double) reach the caller as the callee left them; rsp is the
 * caller's, aligned as it expects. The pop is one instruction (cmpxchg): a signal landing at any
 * instruction sees the shadow stack whole, with or without this entry, and a handler that empties
 * it (drop_all, putting the real addresses back first) is not undone.
 *
 * Its FDE says the return address is undefined: an unwinder that meets it (a program's own
 * libunwind, a statically linked libgcc) stops there instead of reading further; a forced unwind
 * that meets it (phase 2 only, no search) is handed back to the real caller's frame by its
 * personality routine (zwi_shadow_personality, zwi_shadow_landing). */
#if defined(__x86_64__) && defined(__linux__)

/* struct zwi_shadow's fields (unwind_shadow.c checks these offsets) */
#define SHADOW_TOP     0  /* one past the newest entry's slot word */
#define SHADOW_BASE    8  /* the oldest entry's slot word */
#define SHADOW_RET_KEY 16 /* an entry's real return address is at ret_key - its slot word's address */

    .text
    .p2align 4
    .globl zwi_shadow_trampoline_start
    .hidden zwi_shadow_trampoline_start
    .type zwi_shadow_trampoline_start, @function
zwi_shadow_trampoline_start:
    .cfi_startproc
    .cfi_personality 0x1b, zwi_shadow_personality /* pcrel sdata4: a forced unwind's way on */
    .cfi_undefined rip
    nop /* the trampoline's address minus one lies in this FDE, as a return address's call does */
    .globl zwi_shadow_trampoline
    .hidden zwi_shadow_trampoline
    .type zwi_shadow_trampoline, @function
zwi_shadow_trampoline:
    movq %rax, -16(%rsp)                     /* one more register, in the red zone */
    movq zwi_shadow_tls@gottpoff(%rip), %r11 /* this thread's struct zwi_shadow: %fs:(%r11) */
    movq %fs:SHADOW_TOP(%r11), %r10
    movq %r10, -24(%rsp)                     /* the top as read, for the cmpxchg below */
    leaq -8(%rsp), %rax                      /* the slot this return read */
1:  cmpq %fs:SHADOW_BASE(%r11), %r10
    jbe 9f                                   /* no entry left */
    subq $8, %r10
    cmpq (%r10), %rax
    ja 1b                                    /* a frame below this one, left without returning */
    jne 9f                                   /* the newest entry above is another frame's */
    movq %fs:SHADOW_RET_KEY(%r11), %rax
    subq %r10, %rax
    movq (%rax), %rax
    movq %rax, -8(%rsp)                      /* the real return address back in its slot */
    /* popped (this entry and the ones below it) unless a signal handler emptied the shadow stack
     * since the top was read (drop_all: it put the real addresses back first); cmpxchg is one
     * instruction, whole for a signal of this thread */
    movq -24(%rsp), %rax
    cmpxchgq %r10, %fs:SHADOW_TOP(%r11)
    movq -16(%rsp), %rax
    jmp *-8(%rsp)
    /* No entry: if a signal handler put the real return address back (and emptied the shadow
     * stack) before the top was read, the slot holds it; otherwise it is lost. */
9:  leaq zwi_shadow_trampoline(%rip), %r10
    cmpq -8(%rsp), %r10
    je 8f
    movq -16(%rsp), %rax
    jmp *-8(%rsp)
8:  leaq -8(%rsp), %rdi
    andq $-16, %rsp
    call zwi_shadow_lost                     /* does not return */
    ud2
    .cfi_endproc
    .size zwi_shadow_trampoline_start, . - zwi_shadow_trampoline_start
    .size zwi_shadow_trampoline, . - zwi_shadow_trampoline

/* Where zwi_shadow_personality (unwind_shadow.c) sends a forced unwind (pthread_exit,
 * pthread_cancel: glibc calls libgcc's unwinder directly, not through the interposed entry
 * points) that met the trampoline as a return address: rsp is one word above the slot (which the
 * unwinder's context install wrote over), rax the exception, rdx the real return address, and
 * zwi_shadow_resume (TLS) that unwinder's _Unwind_Resume. Resuming with the real return address
 * back in the slot as this "call"'s return address, the unwinder goes on from the real caller's
 * frame. */
    .p2align 4
    .globl zwi_shadow_landing
    .hidden zwi_shadow_landing
    .type zwi_shadow_landing, @function
zwi_shadow_landing:
    pushq %rdx
    movq %rax, %rdi
    movq zwi_shadow_resume@gottpoff(%rip), %r11
    jmp *%fs:(%r11)
    .size zwi_shadow_landing, . - zwi_shadow_landing

#ifndef ZW_SHADOW_NO_INTERPOSE
/* The interposed functions (exports.map): each saves the argument registers (rax too: a variadic
 * call's vector count), asks a C function of unwind_shadow.c for the real function (which first
 * puts every real return address back), and jumps to it with the registers and the stack as the
 * caller left them: no frame of ours lies between the caller and the real function, which for
 * _Unwind_RaiseException and _Unwind_Resume unwinds from its caller's frame. */
.macro INTERPOSE name, before, which
    .globl \name
    .type \name, @function
    .p2align 4
\name:
    .cfi_startproc
    pushq %rdi
    .cfi_adjust_cfa_offset 8
    pushq %rsi
    .cfi_adjust_cfa_offset 8
    pushq %rdx
    .cfi_adjust_cfa_offset 8
    pushq %rcx
    .cfi_adjust_cfa_offset 8
    pushq %r8
    .cfi_adjust_cfa_offset 8
    pushq %r9
    .cfi_adjust_cfa_offset 8
    pushq %rax /* seven words: rsp is 16-aligned at the call */
    .cfi_adjust_cfa_offset 8
    .ifnb \which
    movl $\which, %edi
    .endif
    call \before
    movq %rax, %r11
    popq %rax
    .cfi_adjust_cfa_offset -8
    popq %r9
    .cfi_adjust_cfa_offset -8
    popq %r8
    .cfi_adjust_cfa_offset -8
    popq %rcx
    .cfi_adjust_cfa_offset -8
    popq %rdx
    .cfi_adjust_cfa_offset -8
    popq %rsi
    .cfi_adjust_cfa_offset -8
    popq %rdi
    .cfi_adjust_cfa_offset -8
    jmp *%r11
    .cfi_endproc
    .size \name, . - \name
.endm

/* the order of unwind_shadow.c's REAL_* */
    INTERPOSE _Unwind_RaiseException, zwi_shadow_before, 0
    INTERPOSE _Unwind_Resume, zwi_shadow_before, 1
    INTERPOSE _Unwind_Resume_or_Rethrow, zwi_shadow_before, 2
    INTERPOSE _Unwind_ForcedUnwind, zwi_shadow_before, 3
    INTERPOSE _Unwind_Backtrace, zwi_shadow_before, 4
    INTERPOSE backtrace, zwi_shadow_before, 5
    INTERPOSE _ULx86_64_init_local, zwi_shadow_before, 6
    INTERPOSE _ULx86_64_init_local2, zwi_shadow_before, 7
    INTERPOSE _ULx86_64_step, zwi_shadow_before, 8
    INTERPOSE unw_backtrace, zwi_shadow_before, 9
    INTERPOSE unw_init_local, zwi_shadow_before, 10
    INTERPOSE unw_step, zwi_shadow_before, 11
    INTERPOSE makecontext, zwi_shadow_before_makecontext,
#endif

#endif
    .section .note.GNU-stack, "", @progbits
