/* preload/ahead.c - the capture's table built ahead of the end. The end of a capture converts
 * every traceback the sites and the live sets name (symbolised frames, the table of the capture);
 * on cc1plus (g++ -O2: 95k tracebacks) that was 230 ms of a 440 ms end, all of it on the
 * program's last thread while it exits. Here the sampler converts, at each of its ticks, the
 * tracebacks the sites have gained since the last tick, in the order of their refs (the order the
 * end would take them in: the table comes out the same), at most PASS_NS at a time, under a lock
 * of its own: G.lock, which the hooks try for a new peak and the program's marks take, stays
 * free (a fork waits for the pass). The end takes the builder over and converts only the
 * tracebacks made since.
 *
 * Given up for the rest of the process, its work dropped so that the end converts everything as
 * if it had not run: once a module is unloaded (the loader's count of unloaded objects is no
 * longer 0: the symboliser's view of the modules would have to change under the conversions
 * made); once the process has a limit on its address space or data (ulimit -v, -d: malloc then
 * fails where the kernel would otherwise overcommit, and libdw out of memory exits the process,
 * `error(EXIT_FAILURE, ENOMEM, "libdw")`: a program near its limit died with status 1) or the
 * tracer ran out of memory; when a conversion finds none. Started again when the loader loads a
 * module (the symboliser, made while a dlopen mapped one, could have read it in part and resolved
 * its frames as no module's: seen on a library dlopened 160 ms into the run), RESTARTS times at
 * most. Forgotten in a fork child (its sites
 * start afresh: its table is its own, and freeing the parent's would only copy its pages).
 * ZW_TABLE_AHEAD=0 turns it off.
 * See docs/zw.md#how-it-works. */
#include <link.h>
#include <pthread.h>
#include <sys/resource.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "arena.h"
#include "preload_internal.h"

#define PASS_NS  ((uint64_t)2000000)  /* at most 2 ms of conversions per tick */
#define START_NS ((uint64_t)50000000) /* the first pass 50 ms into the run: a process that
                                       * runs less (or executes another program) is left alone */
#define STUCK    4 /* passes a ref may wait for its site's first count before it is passed over */
#define RESTARTS 8 /* modules loaded after the work began, each making it start again: then
                    * given up */

typedef struct loader_counts {
    unsigned long long adds, subs;
} loader_counts;

static int
read_counts(struct dl_phdr_info *info, size_t size, void *arg)
{
    if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof(info->dlpi_subs))
        *(loader_counts *)arg = (loader_counts){info->dlpi_adds, info->dlpi_subs};
    return 1; /* every object carries the same counts */
}

/* How many objects the loader has loaded (dlopen, and the program's own at start) and unloaded
 * (dlclose, and glibc's own unloads of its NSS and iconv modules, which no hook sees) in this
 * process. */
static loader_counts
counts(void)
{
    loader_counts n = {0, 0};
    dl_iterate_phdr(read_counts, &n);
    return n;
}

static void
drop_locked(void)
{
    zwi_table_builder_free(G.ahead.b);
    zw_snapshot_free(G.ahead.table); /* destroys its door */
    zwi_arena_free(G.ahead.arena);
    zwi_symbolizer_free(G.ahead.sym);
    G.ahead.b = NULL;
    G.ahead.table = NULL;
    G.ahead.arena = NULL;
    G.ahead.sym = NULL;
    G.ahead.next = 1;
    G.ahead.stuck = 0;
}

static void
give_up_locked(void)
{
    drop_locked();
    G.ahead.gone = true;
}

/* A symboliser of the modules loaded now, and the table it fills: 1; 0 if a module was loaded
 * meanwhile (nothing made), -1 out of memory. The modules it reads must be
 * whole: one loaded while it reads /proc/self/maps (its segments mapped one by one) would be
 * seen in part, and its frames resolved against that; so it is made again if the loader loaded
 * anything meanwhile, and its work is dropped once the loader loads more (see pass_locked). */
static int
make_locked(void)
{
    G.ahead.loads = counts().adds;
    G.ahead.sym = zwi_symbolizer_new();
    if (G.ahead.sym != NULL && counts().adds != G.ahead.loads) {
        drop_locked();
        return 0;
    }
    G.ahead.arena = zwi_arena_new();
    zw_raw *door = G.ahead.arena != NULL ? zwi_arena_door(G.ahead.arena) : NULL;
    G.ahead.table = door != NULL ? zwi_snapshot_new_on(G.nframe, door) : NULL;
    G.ahead.b = G.ahead.table != NULL && G.ahead.sym != NULL
                    ? zwi_table_builder_new(G.ahead.table, G.tracer, G.ahead.sym)
                    : NULL;
    G.ahead.next = 1;
    G.ahead.stuck = 0;
    return G.ahead.b != NULL ? 1 : -1;
}

/* Whether the process may run out of memory with malloc failing (a limit on its address space or
 * data), or the tracer already has: the symboliser is then left to the end. */
static bool
memory_short(void)
{
    struct rlimit as, data;
    return getrlimit(RLIMIT_AS, &as) != 0 || as.rlim_cur != RLIM_INFINITY ||
           getrlimit(RLIMIT_DATA, &data) != 0 || data.rlim_cur != RLIM_INFINITY ||
           zwi_preload_sum_stats().untraced != 0;
}

static void
pass_locked(void)
{
    loader_counts now = counts();
    if (now.subs != 0 || memory_short()) {
        give_up_locked();
        return;
    }
    if (G.ahead.b != NULL && now.adds != G.ahead.loads) {
        /* a module loaded since the symboliser read them: made again, its work done over */
        drop_locked();
        if (++G.ahead.restarts > RESTARTS) {
            give_up_locked();
            return;
        }
    }
    if (G.ahead.b == NULL) {
        int made = make_locked();
        if (made < 0)
            give_up_locked();
        if (made <= 0) /* 0: a load under way, the next pass tries again */
            return;
    }
    uint64_t start = zwi_preload_clock_ns(CLOCK_MONOTONIC);
    unsigned max = atomic_load_explicit(&G.site_max, memory_order_acquire); /* its refs' tracebacks */
    size_t done = 0;
    uint32_t ref = G.ahead.next;
    for (; ref <= max && ref < G.site_refs; ref++) {
        /* the sites the end lists, in its order: one whose first allocation the bookkeeping has
         * not applied yet is waited for, a few passes, so that the table keeps the sites' order */
        if (atomic_load_explicit(&G.sites[ref].count, memory_order_relaxed) == 0) {
            if (++G.ahead.stuck < STUCK)
                break;
            G.ahead.stuck = 0;
            continue;
        }
        G.ahead.stuck = 0;
        if (zwi_table_builder_index(G.ahead.b, ref) < 0) {
            give_up_locked(); /* out of memory: the end tries again, its own way */
            return;
        }
        if ((++done & 7) == 0 && zwi_preload_clock_ns(CLOCK_MONOTONIC) - start >= PASS_NS) {
            ref++;
            break;
        }
    }
    G.ahead.next = ref;
    now = counts();
    if (now.subs != 0) /* one during the pass: what it converted may be of the old modules */
        give_up_locked();
    else if (now.adds != G.ahead.loads) /* the next pass starts again */
        drop_locked();
}

void
zwi_preload_ahead_pass(void)
{
    if (!G.ahead.on || G.sites == NULL || zwi_preload_now_ns() < START_NS)
        return;
    pthread_mutex_lock(&G.ahead.lock);
    if (!G.ahead.gone && !atomic_load(&G.finished))
        pass_locked();
    pthread_mutex_unlock(&G.ahead.lock);
}

bool
zwi_preload_ahead_take_locked(zwi_symbolizer **sym, zwi_arena **arena, zw_snapshot **table,
                              zwi_table_builder **b)
{
    pthread_mutex_lock(&G.ahead.lock); /* a pass under way ends first */
    bool have = G.ahead.b != NULL;
    loader_counts now = counts();
    if (have && (now.subs != 0 || now.adds != G.ahead.loads)) {
        give_up_locked();
        have = false;
    }
    if (!have) {
        G.ahead.gone = true;
        pthread_mutex_unlock(&G.ahead.lock);
        return false;
    }
    *sym = G.ahead.sym;
    *arena = G.ahead.arena;
    *table = G.ahead.table;
    *b = G.ahead.b;
    G.ahead.sym = NULL;
    G.ahead.arena = NULL;
    G.ahead.table = NULL;
    G.ahead.b = NULL;
    G.ahead.gone = true; /* the end has it */
    pthread_mutex_unlock(&G.ahead.lock);
    return true;
}

void
zwi_preload_ahead_fork_child(void)
{
    G.ahead.sym = NULL; /* the parent's, forgotten: see the top of the file */
    G.ahead.arena = NULL;
    G.ahead.table = NULL;
    G.ahead.b = NULL;
    G.ahead.next = 1;
    G.ahead.stuck = 0;
    G.ahead.restarts = 0;
    G.ahead.gone = false;
}
