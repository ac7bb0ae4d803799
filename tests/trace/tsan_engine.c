/* tests/trace/tsan_engine.c - the engine under ThreadSanitizer: threads add and remove traces
 * while another clears the tracer (a new generation each time). Built with -fsanitize=thread and
 * run by ctest without Criterion (whose runner does not start under TSan); any report fails it
 * (TSAN_OPTIONS exitcode). A plain program: it prints what it did. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#include "trace_internal.h"

#define NTHREADS 4
#define ROUNDS   20000

static zwi_tracer *tracer;

static void *
churn(void *arg)
{
    uintptr_t base = (uintptr_t)arg << 32;
    for (unsigned i = 0; i < ROUNDS; i++) {
        /* tracebacks of the threads share their outer frames, which the engine stores once */
        uintptr_t frames[6] = {0x1000 + (i % 7), 0x2000 + (uintptr_t)arg, 0x3000 + (i % 3),
                               0x4000, 0x5000, 0x6000};
        unsigned n = 3 + i % 4;
        uintptr_t p = base + 16 * (i % 512) + 16;
        zwi_tracer_add(tracer, ZW_TRACE_DEFAULT_DOMAIN, p, 32, frames + 6 - n, n, n + i % 2);
        zwi_tracer_remove(tracer, ZW_TRACE_DEFAULT_DOMAIN, p, NULL);
    }
    return NULL;
}

int
main(void)
{
    tracer = zwi_tracer_new(8);
    if (tracer == NULL)
        return 2;
    pthread_t th[NTHREADS];
    for (uintptr_t i = 0; i < NTHREADS; i++)
        pthread_create(&th[i], NULL, churn, (void *)(i + 1));
    for (int i = 0; i < 200; i++)
        zwi_tracer_clear(tracer);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    size_t cur = 0;
    zwi_tracer_traced_memory(tracer, &cur, NULL);
    printf("%d threads x %d add/remove, 200 clears: %zu bytes left traced\n", NTHREADS, ROUNDS,
           cur);
    zwi_tracer_free(tracer);
    return 0;
}
