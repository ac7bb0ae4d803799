/* mem/hook.c - the malloc family of every heap while a heap observer is installed
 * (zw_mem_set_heap_hook): the call itself, then the report. The public calls in heap.c branch
 * here with a tail call, so the return address of these functions is the caller's allocation
 * site; this file is built with frame pointers so that a tracer walking the stack from the
 * callback passes through it to that site. See docs/mem.md#observer and docs/trace.md. */
#include <stddef.h>

#include <zerowaste/mem.h>

#include "mem_internal.h"

void *
zwi_mem_hooked_malloc(zw_heap *h, size_t n)
{
    const zw_heap_hook *k = zwi_mem_get_hook();
    void *p = zwi_mem_malloc_unhooked(h, n);
    if (p != NULL && k != NULL)
        k->alloc(k->ctx, h, p, n);
    return p;
}

void *
zwi_mem_hooked_calloc(zw_heap *h, size_t nelem, size_t elsize)
{
    const zw_heap_hook *k = zwi_mem_get_hook();
    void *p = zwi_mem_calloc_unhooked(h, nelem, elsize);
    if (p != NULL && k != NULL)
        k->alloc(k->ctx, h, p, nelem * elsize); /* no overflow: the call succeeded */
    return p;
}

/* A heap is used by one thread at a time, so the old block cannot be handed to someone else
 * between the call and the reports: report after the call, and only if it succeeded. */
void *
zwi_mem_hooked_realloc(zw_heap *h, void *p, size_t n)
{
    const zw_heap_hook *k = zwi_mem_get_hook();
    void *q = zwi_mem_realloc_unhooked(h, p, n);
    if (q != NULL && k != NULL) {
        if (p != NULL)
            k->free(k->ctx, h, p);
        k->alloc(k->ctx, h, q, n);
    }
    return q;
}

/* Reported before the block is given back: once it is, its address may be handed out again. */
void
zwi_mem_hooked_free(zw_heap *h, void *p)
{
    const zw_heap_hook *k = zwi_mem_get_hook();
    if (p != NULL && k != NULL)
        k->free(k->ctx, h, p);
    zwi_mem_free_unhooked(h, p);
}
