/* preload/tickets.c - the ring's tickets shared when a second thread comes (see tickets.h). */
#include "tickets.h"

#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

/* membarrier(2)'s commands, from <linux/membarrier.h> */
#define MEMBARRIER_PRIVATE_EXPEDITED          (1 << 3)
#define MEMBARRIER_REGISTER_PRIVATE_EXPEDITED (1 << 4)

bool
zwi_tickets_solo(zwi_tickets *tk, bool *mine)
{
    atomic_store(&tk->busy, 0); /* a fork child's: a parent's solo thread caught taking is gone */
#ifdef SYS_membarrier
    bool ok = syscall(SYS_membarrier, MEMBARRIER_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
#else
    bool ok = false;
#endif
    atomic_store(&tk->solo, ok);
    *mine = ok;
    return ok;
}

void
zwi_tickets_share(zwi_tickets *tk)
{
    atomic_store(&tk->solo, false);
    /* every thread of the process runs a full barrier meanwhile: the solo thread's busy store,
     * if it came before its load of `solo`, is seen below; if not, that load sees false.
     * Registered when `solo` was set: it does not fail. */
#ifdef SYS_membarrier
    (void)!syscall(SYS_membarrier, MEMBARRIER_PRIVATE_EXPEDITED, 0, 0);
#endif
    for (unsigned round = 0; atomic_load_explicit(&tk->busy, memory_order_acquire); round++)
        if (round >= 64)
            sched_yield();
#if defined(__x86_64__) || defined(__i386__)
        else
            __builtin_ia32_pause();
#endif
}
