/* tests/preload/test_tickets.c - the bookkeeping ring's tickets (src/preload/tickets.c): the solo
 * thread's tickets come in order without a locked add; a second thread's first ticket makes them
 * shared, the solo thread then takes with the locked add too; a second thread waits for a ticket
 * the solo thread is taking; and, with the second thread coming at any moment while the solo
 * thread takes tickets as fast as it can, no ticket is handed out twice and none is skipped. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../src/preload/tickets.h"

static zwi_tickets tk;

/* The thread taking tickets with flag *mine: the first of k. */
static uint64_t
take(bool *mine, uint64_t k)
{
    return zwi_tickets_take(&tk, mine, k);
}

Test(tickets, solo_in_order)
{
    memset(&tk, 0, sizeof(tk));
    bool mine = false;
    /* Linux 4.14 and later: every kernel zw supports */
    cr_assert(zwi_tickets_solo(&tk, &mine), "no expedited membarrier for this process");
    cr_assert(mine);
    cr_expect_eq(take(&mine, 1), 0);
    cr_expect_eq(take(&mine, 3), 1);
    cr_expect_eq(take(&mine, 1), 4);
    cr_expect_eq(atomic_load(&tk.head), 5);
    cr_expect(atomic_load(&tk.solo) && mine, "still solo: no other thread took a ticket");
    cr_expect_eq(atomic_load(&tk.busy), 0);
}

static void *
take_two(void *arg)
{
    bool mine = false;
    *(uint64_t *)arg = take(&mine, 2);
    return NULL;
}

Test(tickets, second_thread_shares)
{
    memset(&tk, 0, sizeof(tk));
    bool mine = false;
    cr_assert(zwi_tickets_solo(&tk, &mine));
    cr_expect_eq(take(&mine, 5), 0);
    uint64_t got = 99;
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, take_two, &got), 0);
    pthread_join(th, NULL);
    cr_expect_eq(got, 5, "the second thread's tickets follow the solo thread's");
    cr_expect(!atomic_load(&tk.solo), "shared after a second thread's ticket");
    cr_expect(mine, "the solo thread learns it at its next ticket");
    cr_expect_eq(take(&mine, 1), 7);
    cr_expect(!mine, "the solo thread takes with the locked add from then on");
    cr_expect_eq(take(&mine, 1), 8);
    cr_expect_eq(atomic_load(&tk.head), 9);
}

static atomic_bool returned;

static void *
take_one(void *arg)
{
    bool mine = false;
    *(uint64_t *)arg = take(&mine, 1);
    atomic_store(&returned, true);
    return NULL;
}

/* The solo thread stopped in the middle of its ticket (preempted between its load and its store
 * of the head, as zwi_tickets_take does it by hand here): a second thread's ticket waits for it,
 * and follows it. */
Test(tickets, second_thread_waits_for_a_solo_ticket_under_way)
{
    memset(&tk, 0, sizeof(tk));
    bool mine = false;
    cr_assert(zwi_tickets_solo(&tk, &mine));
    cr_expect_eq(take(&mine, 3), 0);
    /* zwi_tickets_take, up to its load of the head */
    atomic_store(&tk.busy, 1);
    cr_assert(atomic_load(&tk.solo));
    uint64_t t = atomic_load(&tk.head);
    atomic_store(&returned, false);
    uint64_t got = 99;
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, take_one, &got), 0);
    /* a correct second thread never returns meanwhile, however long this takes */
    for (int i = 0; i < 50 && !atomic_load(&returned); i++)
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    cr_expect(!atomic_load(&returned), "the second thread took a ticket while the solo one took");
    cr_expect(!atomic_load(&tk.solo), "the second thread cleared `solo` first");
    /* the rest of zwi_tickets_take */
    atomic_store(&tk.head, t + 2);
    atomic_store(&tk.busy, 0);
    pthread_join(th, NULL);
    cr_expect_eq(got, 5, "the second thread's ticket follows the two the solo one took");
    cr_expect_eq(atomic_load(&tk.head), 6);
}

/* ---- a second thread at any moment ---- */

#define MAX_TICKETS (1u << 20)
#define TRIALS      400

static _Atomic uint64_t seen[MAX_TICKETS / 64]; /* one bit a ticket handed out */
static atomic_int twice;                        /* tickets handed out twice */
static atomic_bool other_done;

/* Marks tickets [t, t + k) handed out; counts those already marked. */
static void
mark(uint64_t t, uint64_t k)
{
    for (uint64_t i = t; i < t + k && i < MAX_TICKETS; i++)
        if (atomic_fetch_or(&seen[i / 64], (uint64_t)1 << (i % 64)) & (uint64_t)1 << (i % 64))
            atomic_fetch_add(&twice, 1);
}

static void *
other(void *arg)
{
    unsigned delay = (unsigned)(uintptr_t)arg;
    for (volatile unsigned i = 0; i < delay; i++)
        ;
    bool mine = false;
    for (unsigned i = 0; i < 64; i++) {
        uint64_t k = 1 + i % 3;
        mark(take(&mine, k), k);
    }
    atomic_store(&other_done, true);
    return NULL;
}

Test(tickets, none_twice_none_skipped)
{
    srand(12345);
    for (int trial = 0; trial < TRIALS; trial++) {
        memset(&tk, 0, sizeof(tk));
        memset(seen, 0, sizeof(seen));
        atomic_store(&twice, 0);
        atomic_store(&other_done, false);
        bool mine = false;
        cr_assert(zwi_tickets_solo(&tk, &mine));
        pthread_t th;
        cr_assert_eq(pthread_create(&th, NULL, other, (void *)(uintptr_t)(rand() % 4000)), 0);
        /* as fast as it can, 1 to 3 tickets at a time, until the other thread is done */
        for (uint64_t i = 0; !atomic_load_explicit(&other_done, memory_order_acquire); i++) {
            uint64_t k = 1 + i % 3;
            uint64_t t = take(&mine, k);
            if (t + k > MAX_TICKETS / 2)
                continue; /* room for the other's: the marks stop, the taking goes on */
            mark(t, k);
        }
        pthread_join(th, NULL);
        /* one more, after the other thread's: with the locked add */
        uint64_t t = take(&mine, 1);
        if (t < MAX_TICKETS / 2)
            mark(t, 1);
        cr_assert(!mine, "trial %d: the solo thread missed the other thread's tickets", trial);
        uint64_t head = atomic_load(&tk.head);
        cr_assert_eq(atomic_load(&twice), 0, "trial %d: %d tickets handed out twice", trial,
                     atomic_load(&twice));
        /* every ticket below the head handed out, the marked ones once */
        uint64_t marked = 0;
        for (size_t w = 0; w < MAX_TICKETS / 64; w++)
            marked += (uint64_t)__builtin_popcountll(atomic_load(&seen[w]));
        if (head <= MAX_TICKETS / 2)
            cr_assert_eq(marked, head, "trial %d: %llu tickets marked, the head is %llu", trial,
                         (unsigned long long)marked, (unsigned long long)head);
        cr_assert(!atomic_load(&tk.solo));
    }
}
