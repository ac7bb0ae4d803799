/* tests/preload/many.c - 10M allocations (N from argv[1]), each freed at once but one in a
 * thousand kept to the end: N allocations, N / 1000 blocks leaked. */
#include <stdio.h>
#include <stdlib.h>

int
main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 10000000;
    void **keep = calloc((size_t)n / 1000 + 1, sizeof(void *));
    long k = 0;
    for (long i = 0; i < n; i++) {
        void *p = malloc(16 + (size_t)(i & 127));
        if (i % 1000 == 0)
            keep[k++] = p;
        else
            free(p);
    }
    printf("%ld kept\n", k);
    return 0;
}
