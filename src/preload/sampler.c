/* preload/sampler.c - the clock, the counters' totals, and the sampler: a thread that wakes
 * every ZW_INTERVAL_MS, takes a sample (heap bytes and blocks, RSS, the running totals) and a
 * step (the sites whose live bytes changed since the last one), and every ZW_FLUSH_MS appends
 * those it holds to the capture as a SERIES and a SITE_DELTAS section (writer.c writes both). It
 * also serves the signals the other threads leave to it: zw_mark's signal and those from outside
 * (life.c). See docs/zw.md#how-it-works. */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "preload_internal.h"

/* ---- time, counters ---- */

uint64_t
zwi_preload_clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t
zwi_preload_now_ns(void)
{
    return zwi_preload_clock_ns(CLOCK_MONOTONIC) - G.start_ns;
}

totals
zwi_preload_sum_stats(void)
{
    totals s = {0};
    if (G.slots == NULL)
        return s;
    unsigned n = atomic_load(&G.slots_used);
    unsigned last = G.live->nslots - 1;
    for (unsigned i = 0; i <= last; i++) {
        if (i >= n && i != last)
            continue; /* never handed out: zero */
        zwi_preload_add_stats(&s, &G.slots[i]);
    }
    return s;
}

void
zwi_preload_add_stats(totals *s, const tstats *ts)
{
    s->allocs += atomic_load_explicit(&ts->allocs, memory_order_relaxed);
    s->frees += atomic_load_explicit(&ts->frees, memory_order_relaxed);
    s->temps += atomic_load_explicit(&ts->temps, memory_order_relaxed);
    s->bytes += atomic_load_explicit(&ts->bytes, memory_order_relaxed);
    s->freed_bytes += atomic_load_explicit(&ts->freed_bytes, memory_order_relaxed);
    s->untraced += atomic_load_explicit(&ts->untraced, memory_order_relaxed);
}

uint64_t
zwi_preload_rss_bytes(void)
{
    /* async-signal-safe (the last words call it from a handler): no stdio; the page size is read
     * once by the first sample, long before a handler can run */
    static _Atomic uint64_t page;
    uint64_t psz = atomic_load_explicit(&page, memory_order_relaxed);
    if (psz == 0) {
        long v = sysconf(_SC_PAGESIZE);
        psz = v > 0 ? (uint64_t)v : 4096;
        atomic_store_explicit(&page, psz, memory_order_relaxed);
    }
    char buf[128];
    int fd = G.statm;
    ssize_t n = fd >= 0 ? pread(fd, buf, sizeof(buf) - 1, 0) : -1;
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    const char *c = buf;
    while (*c != '\0' && *c != ' ') /* the first field is the size; the second, resident */
        c++;
    if (*c == '\0')
        return 0;
    uint64_t pages = 0;
    for (c++; *c >= '0' && *c <= '9'; c++)
        pages = pages * 10 + (uint64_t)(*c - '0');
    return pages * psz;
}

zw_capture_sample
zwi_preload_sample_now(void)
{
    size_t cur = 0;
    zwi_tracer_traced_memory(G.tracer, &cur, NULL);
    totals s = zwi_preload_sum_stats();
    return (zw_capture_sample){zwi_preload_now_ns(),
                               cur,
                               s.allocs - s.frees,
                               zwi_preload_rss_bytes(),
                               s.allocs,
                               s.frees,
                               s.temps,
                               s.bytes,
                               atomic_load(&G.mmaps.bytes),
                               atomic_load(&G.mmaps.peak)};
}

/* ---- the sampler ---- */

/* Hooks save a peak set only each time the peak passes 1% more than the last saved one, so the
 * last saved set can be up to 1% below the peak. When the program sits at its peak now (the
 * traced bytes are the peak, above the saved one), the set saved now is the peak's exactly. */
static void
save_held_peak(void)
{
    size_t now;
    size_t peak;
    zwi_tracer_traced_memory(G.tracer, &now, &peak);
    if (G.live == NULL || now != peak || peak <= atomic_load(&G.live->peak_bytes))
        return;
    pthread_mutex_lock(&G.lock);
    atomic_store(&G.peak_next, (int64_t)peak); /* this peak is one to save */
    pthread_mutex_unlock(&G.lock);
    zwi_preload_save_peak((int64_t)peak);
}

void
zwi_preload_own_thread(const char *name)
{
    zwi_trace_guard++; /* nothing this thread allocates is the program's */
    prctl(PR_SET_NAME, name); /* as top -H, ps -L and perf name it */
    sigset_t block;
    sigemptyset(&block);
    for (size_t i = 0; i < ZWI_PRELOAD_NASYNC; i++)
        sigaddset(&block, zwi_preload_async_signals[i]);
    if (G.mark_signal != 0)
        sigaddset(&block, G.mark_signal);
    pthread_sigmask(SIG_BLOCK, &block, NULL); /* the sampler serves them, on the program's behalf */
}

static void *
sampler_main(void *arg)
{
    zwi_preload_own_thread("zw-sampler"); /* the async signals' handlers wait for this thread */
    /* sleeps until the next sample, or until an asynchronous signal's handler writes to wake[] */
    uint64_t next = zwi_preload_now_ns() + (uint64_t)G.interval_ms * 1000000u;
    while (!atomic_load(&G.stop)) {
        int sig = atomic_load(&G.async_signal);
        if (sig != 0) {
            zwi_preload_finish(ZW_CAPTURE_END_SIGNAL, sig);
            break;
        }
        uint64_t now = zwi_preload_now_ns();
        if (now < next) {
            int ms = (int)((next - now + 999999u) / 1000000u);
            struct pollfd pfd = {.fd = G.wake[0], .events = POLLIN};
            if (G.wake[0] < 0 || poll(&pfd, 1, ms) < 0 || (pfd.revents & POLLNVAL))
                nanosleep(&(struct timespec){0, 1000000}, NULL); /* no pipe: poll the flag */
            else if (pfd.revents & POLLIN)
                (void)!read(G.wake[0], (char[16]){0}, 16); /* drained; the flag says why */
            continue;
        }
        next += (uint64_t)G.interval_ms * 1000000u;
        if (next < now)
            next = now + (uint64_t)G.interval_ms * 1000000u; /* fell behind: no burst */
        if (atomic_load(&G.stop))
            break;
        unsigned asked = atomic_exchange(&G.signal_marks, 0);
        for (unsigned i = 0; i < asked; i++) {
            char label[32];
            snprintf(label, sizeof(label), "signal %d", G.mark_signal);
            /* the sampler has no frames of the program's: its own stack from here up */
            zwi_preload_take_mark(label, (uintptr_t)label);
        }
        /* what the hooks posted before now, applied: a sample's heap and counts agree */
        zwi_preload_drain(ZWI_DRAIN_MS);
        save_held_peak();
        zw_capture_sample s = zwi_preload_sample_now();
        pthread_mutex_lock(&G.lock);
        if (!atomic_load(&G.finished)) {
            zwi_preload_push_tick_locked(s);
            zwi_preload_scan_sites_locked(s.time_ns, 0);
            /* batched: a SIGKILL loses at most ZW_FLUSH_MS of samples and steps; the first
             * sample at once, so that zw run's status line knows the process */
            if (!G.any_written ||
                zwi_preload_now_ns() - G.flushed_ns >= (uint64_t)G.flush_ms * 1000000u)
                zwi_preload_flush_samples_locked();
        }
        pthread_mutex_unlock(&G.lock);
        zwi_preload_ahead_pass(); /* the end's table, built as the run goes */
    }
    zwi_trace_guard--;
    return NULL;
}

void
zwi_preload_sampler_fds(void)
{
    for (int i = 0; i < 2; i++) {
        if (G.wake[i] >= 0)
            close(G.wake[i]);
        G.wake[i] = -1;
    }
    /* opened once, while the process has one thread (the constructor, a fork child): a file
     * opened at each sample would take the lowest free descriptor for a moment, which a program
     * may be about to open or dup (close(0) then open() makes a new standard input) */
    if (G.statm >= 0)
        close(G.statm);
    G.statm = zwi_fd_high(open("/proc/self/statm", O_RDONLY | O_CLOEXEC), true);
    int p[2];
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0)
        return;
    for (int i = 0; i < 2; i++) /* out of the way of the program's low descriptors */
        G.wake[i] = zwi_fd_high(p[i], true);
}

void
zwi_preload_start_sampler(void)
{
    atomic_store(&G.stop, false);
    G.sampler_on = pthread_create(&G.sampler, NULL, sampler_main, NULL) == 0;
}

void
zwi_preload_stop_sampler(bool join)
{
    atomic_store(&G.stop, true);
    /* woken now: an exit waited for its next sample, half an interval on average (50 ms more
     * on sort with --interval 100) */
    if (G.sampler_on && G.wake[1] >= 0)
        (void)!write(G.wake[1], "", 1);
    if (join && G.sampler_on && !pthread_equal(pthread_self(), G.sampler))
        pthread_join(G.sampler, NULL);
    G.sampler_on = false;
}
