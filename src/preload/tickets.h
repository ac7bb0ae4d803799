/* preload/tickets.h - the tickets of the bookkeeping ring: each handed out once, in order. Taken
 * with a locked add; or, while one thread alone posts (the solo thread: the program's only one,
 * which most programs are), with a plain load and store, until another thread's first ticket
 * makes them shared for good. The locked add waits for the taking thread's stores to drain (the
 * cells it just wrote): a quarter of the malloc hook's time on python3.11, two thirds of the
 * free hook's.
 *
 *   zwi_tickets_solo (the constructor's thread, a fork child's) -> zwi_tickets_take (each post;
 *   a second thread's first one calls zwi_tickets_share) */
#ifndef ZW_PRELOAD_TICKETS_H
#define ZW_PRELOAD_TICKETS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "zw_assert.h"

/* One cache line, written by whoever takes tickets: the solo thread alone, or all of them. */
typedef struct zwi_tickets {
    _Alignas(64) _Atomic uint64_t head; /* tickets handed out */
    _Atomic uint32_t busy;              /* the solo thread's: 1 while it takes tickets */
    atomic_bool solo; /* set: the thread whose `mine` is set takes without a locked add */
} zwi_tickets;

/* Makes the calling thread the solo one (*mine, its own flag, set) if the kernel gives this
 * process expedited memory barriers (membarrier(2), Linux 4.14), which the sharing needs; else
 * every thread takes with the locked add. Only while no other thread takes tickets. Whether it
 * did. */
ZW_HIDDEN bool zwi_tickets_solo(zwi_tickets *tk, bool *mine);

/* Called by a thread, not the solo one, about to take tickets while `solo` is set: clears it,
 * then waits until the solo thread sees that and is out of the tickets it may be taking (a
 * membarrier makes its `busy` store visible here, or its next load of `solo` see false). */
ZW_HIDDEN void zwi_tickets_share(zwi_tickets *tk);

/* The first of k tickets for the calling thread, whose flag is *mine. The solo thread says it
 * is busy, then takes them with a plain load and store while `solo` is still set; the thread
 * clearing it waits for `busy` to fall, so that no ticket is handed out twice. */
static inline __attribute__((always_inline)) uint64_t
zwi_tickets_take(zwi_tickets *tk, bool *mine, uint64_t k)
{
    if (*mine) {
        atomic_store_explicit(&tk->busy, 1, memory_order_relaxed);
        /* the store before the load: zwi_tickets_share's membarrier orders them */
        atomic_signal_fence(memory_order_seq_cst);
        if (ZW_LIKELY(atomic_load_explicit(&tk->solo, memory_order_relaxed))) {
            uint64_t t = atomic_load_explicit(&tk->head, memory_order_relaxed);
            atomic_store_explicit(&tk->head, t + k, memory_order_relaxed);
            atomic_store_explicit(&tk->busy, 0, memory_order_release);
            return t;
        }
        atomic_store_explicit(&tk->busy, 0, memory_order_release);
        *mine = false;
    } else if (ZW_UNLIKELY(atomic_load_explicit(&tk->solo, memory_order_relaxed))) {
        zwi_tickets_share(tk);
    }
    return atomic_fetch_add_explicit(&tk->head, k, memory_order_relaxed);
}

#endif /* ZW_PRELOAD_TICKETS_H */
