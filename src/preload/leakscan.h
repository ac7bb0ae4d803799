/* preload/leakscan.h - the reachability scan: which of the blocks live at one moment the program
 * can still reach, in memcheck's four kinds (docs/zw.md#leak-kinds). The scan's memory comes from
 * anonymous mappings, never from the malloc it traces. Used by one thread at a time.
 *
 *   zwi_leakscan_new -> _add (every live block) -> _prepare (sort) -> roots: _root (a range the
 *   caller knows) and/or _process_roots (this process's modules, stacks, TLS, registers) ->
 *   _classify -> _kind (per block) -> _free */
#ifndef ZW_PRELOAD_LEAKSCAN_H
#define ZW_PRELOAD_LEAKSCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "zw_assert.h"

/* memcheck's kinds, most serious first (valgrind's order in a leak report) */
typedef enum zwi_leak_kind {
    ZWI_LEAK_DEFINITE = 0,  /* no pointer to it anywhere */
    ZWI_LEAK_INDIRECT = 1,  /* pointed to only from lost blocks */
    ZWI_LEAK_POSSIBLE = 2,  /* only pointers into its interior, or only from possibly lost ones */
    ZWI_LEAK_REACHABLE = 3, /* a pointer to its start on a chain of such pointers from a root */
} zwi_leak_kind;
#define ZWI_LEAK_KINDS 4

typedef struct zwi_leakscan zwi_leakscan;

/* Whether a word found pointing at `p` inside block [start, start + size) is the allocator's own
 * (glibc's chunk header of the next chunk, in the block's last word) rather than the program's. */
typedef bool (*zwi_leak_ignore_fn)(uintptr_t start, size_t size, uintptr_t p);

/* A new scan for about `hint` blocks (it grows); NULL if it cannot be mapped. */
ZW_HIDDEN zwi_leakscan *zwi_leakscan_new(size_t hint);
ZW_HIDDEN void zwi_leakscan_free(zwi_leakscan *ls);
/* Adds block [start, start + size): 0, or -1 if the table cannot grow. Blocks must not overlap. */
ZW_HIDDEN int zwi_leakscan_add(zwi_leakscan *ls, uintptr_t start, size_t size);
ZW_HIDDEN void zwi_leakscan_set_ignore(zwi_leakscan *ls, zwi_leak_ignore_fn fn);
/* Sorts the blocks; after it no block can be added. 0, or -1 if the work list cannot be mapped. */
ZW_HIDDEN int zwi_leakscan_prepare(zwi_leakscan *ls);
/* Scans the words of [lo, hi) as a root and floods through the blocks they reach. */
ZW_HIDDEN void zwi_leakscan_root(zwi_leakscan *ls, uintptr_t lo, uintptr_t hi);
/* After the last root: the blocks not reached are definitely or indirectly lost. */
ZW_HIDDEN void zwi_leakscan_classify(zwi_leakscan *ls);
/* Whether a word `p` points into a block (memcheck's rule: into [start, start + size), or at the
 * start of an empty block), whose start is then put in *start. After _prepare. */
ZW_HIDDEN bool zwi_leakscan_lookup(const zwi_leakscan *ls, uintptr_t p, uintptr_t *start);
/* The kind of the block starting at `start`, or -1 if there is none. */
ZW_HIDDEN int zwi_leakscan_kind(const zwi_leakscan *ls, uintptr_t start);
ZW_HIDDEN size_t zwi_leakscan_count(const zwi_leakscan *ls);
/* Bytes the scan maps now (its table, directory and work list). */
ZW_HIDDEN size_t zwi_leakscan_memory(const zwi_leakscan *ls);

/* What a scan of this process's roots covered (zwi_leakscan_process_roots). */
typedef struct zwi_leak_roots {
    unsigned modules;        /* writable segments of loaded modules scanned */
    unsigned threads;        /* threads whose stack, TLS and registers were scanned (the caller's
                              * included) */
    unsigned threads_missed; /* threads that did not stop within the wait: their stacks scanned
                              * whole if the tracer knew them, their registers not */
    size_t root_bytes;       /* bytes of roots read */
    size_t unreadable;       /* ranges that faulted while read and were skipped */
} zwi_leak_roots;

/* The thread whose frames end where the program's do: the one the program ends on (or marks a
 * set on), whose stack is scanned from `stack_lo` up, the address of a jmp_buf that setjmp()
 * filled where the program's frames end (the registers as the program left them, and nothing of
 * the tracer's frames, whose dead words may hold copies of any block's address); `tp` is its
 * thread pointer (pthread_self), for its TLS. */
typedef struct zwi_leak_thread {
    pid_t tid;
    uintptr_t stack_lo;
    uintptr_t tp;
    pid_t beside; /* a thread of the tracer's own that works on beside the scan (the end's
                   * writer), neither stopped nor read; 0: none */
} zwi_leak_thread;

/* The calling thread, its stack scanned from `stack_lo`. */
ZW_HIDDEN zwi_leak_thread zwi_leakscan_this_thread(uintptr_t stack_lo);

/* Scans this process's roots: the writable PT_LOAD segments of every loaded module but the one
 * holding `self` (the tracer's own library), `who`'s stack from its stack_lo up and its static
 * TLS, and every other thread's stack from its stack pointer to the top of its mapping, its
 * static TLS, and its general registers. The caller may be `who`, or a thread of the tracer's
 * own that works while `who` waits for it (nothing of the caller's is scanned then), and
 * `who->beside` another that goes on meanwhile (the end's writer), left alone. The other
 * threads are stopped (a signal makes each save its registers and wait) while the scan reads;
 * the caller must hold no lock those threads could need, and must not call malloc until this
 * returns. Reads that fault skip the rest of their range. 0, or -1 if nothing could be
 * scanned. */
ZW_HIDDEN int zwi_leakscan_process_roots(zwi_leakscan *ls, const void *self,
                                         const zwi_leak_thread *who, zwi_leak_roots *out);

#endif
