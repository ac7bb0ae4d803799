/* tests/preload/unwind_call.c - a link of a call chain: calls the next link, and not as a tail
 * call. The unwinder test's libraries build it (named by ZWU_NAME) with and without frame
 * pointers; without them it keeps its caller's rbp and pushes no frame record, as the C
 * library's strdup does around malloc. */
typedef struct zwu_link {
    void *(*fn)(const struct zwu_link *self); /* called with its own link */
    const struct zwu_link *next;
} zwu_link;

static volatile int sink; /* written after the call, so that the call is no tail call */

void *
ZWU_NAME(const zwu_link *self)
{
    void *p = self->next->fn(self->next);
    sink = sink + 1;
    return p;
}
