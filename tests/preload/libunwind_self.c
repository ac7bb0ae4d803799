/* tests/preload/libunwind_self.c - a program that walks its own stack with libunwind (as crash
 * reporters and profilers do) from 11 frames that each allocated first, so that the shadow
 * unwinder had patched them: by unw_step (allocating between steps too, which patches the frames
 * again under the walk) and by unw_backtrace. Prints what each walk counted: the same traced as
 * untraced. Built without frame pointers. */
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <stdio.h>
#include <stdlib.h>

/* frames unw_step walks from here; `churn`: a block allocated and freed between steps */
__attribute__((noinline)) static int
steps(int churn)
{
    unw_context_t ctx;
    unw_cursor_t cur;
    if (unw_getcontext(&ctx) != 0 || unw_init_local(&cur, &ctx) != 0)
        return -1;
    int n = 0;
    while (unw_step(&cur) > 0) {
        n++;
        if (churn) {
            char *p = malloc(64);
            if (p == NULL)
                return -1;
            p[0] = (char)n;
            __asm__ volatile("" : : "r"(p) : "memory");
            free(p);
        }
    }
    return n;
}

__attribute__((noinline)) static void
walks(void)
{
    void *buf[128];
    int a = steps(0);
    int b = steps(1);
    int c = unw_backtrace(buf, 128);
    printf("steps %d, steps allocating %d, unw_backtrace %d\n", a, b, c);
}

/* n frames, each holding a block while the ones below it allocate, then the walks */
__attribute__((noinline)) static void
descend(int n)
{
    char *p = malloc(32 + (size_t)n);
    if (p == NULL)
        exit(1);
    p[0] = (char)n;
    if (n == 0)
        walks();
    else
        descend(n - 1);
    __asm__ volatile("" : : "r"(p) : "memory"); /* not a tail call: this frame stays */
    free(p);
}

int
main(void)
{
    descend(10);
    descend(10); /* the frames the first round patched are patched again */
    return 0;
}
