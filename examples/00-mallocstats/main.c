/* examples/00-mallocstats - the talk's first question, "how many blocks does this use?", asked
 * of a zerowaste heap. Builds a small word index (records, strings, growing arrays), frees half
 * of it, and prints the heap's census in the shape of CPython's sys._debugmallocstats() at each
 * step. Run: make demo (or build/examples/mallocstats). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zerowaste/zerowaste.h>

/* A word and the positions it was seen at: one record, one string, one growing array. */
typedef struct entry {
    char *word;       /* from the heap, strlen + 1 bytes */
    size_t *pos;      /* from the heap, grown by realloc */
    size_t npos;
    size_t cap;
    struct entry *next;
} entry;

static entry *
entry_new(zw_heap *h, const char *word)
{
    entry *e = zw_heap_calloc(h, 1, sizeof(*e));
    if (e == NULL)
        return NULL;
    size_t len = strlen(word) + 1;
    e->word = zw_heap_malloc(h, len);
    if (e->word == NULL) {
        zw_heap_free(h, e);
        return NULL;
    }
    memcpy(e->word, word, len);
    return e;
}

static int
entry_add(zw_heap *h, entry *e, size_t pos)
{
    if (e->npos == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 4;
        size_t *p = zw_heap_realloc(h, e->pos, cap * sizeof(*p));
        if (p == NULL)
            return -1;
        e->pos = p;
        e->cap = cap;
    }
    e->pos[e->npos++] = pos;
    return 0;
}

static void
entry_free(zw_heap *h, entry *e)
{
    zw_heap_free(h, e->pos);
    zw_heap_free(h, e->word);
    zw_heap_free(h, e);
}

int
main(void)
{
    zw_heap *h = zw_heap_new();
    if (h == NULL) {
        fprintf(stderr, "mallocstats: error: cannot create a heap\n");
        return 1;
    }
    enum { NWORDS = 20000, NSEEN = 200000 };
    entry **index = zw_heap_calloc(h, NWORDS, sizeof(*index));
    if (index == NULL)
        goto out_oom;
    unsigned seed = 42;
    for (size_t i = 0; i < NSEEN; i++) {
        seed = seed * 1103515245u + 12345u;
        size_t w = (seed >> 8) % NWORDS;
        if (index[w] == NULL) {
            char word[64];
            snprintf(word, sizeof(word), "word-%zu-%.*s", w, (int)(w % 40), "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN");
            if ((index[w] = entry_new(h, word)) == NULL)
                goto out_oom;
        }
        if (entry_add(h, index[w], i) != 0)
            goto out_oom;
    }
    printf("== after indexing %d words seen %d times: %zu blocks, %zu bytes ==\n", NWORDS, NSEEN,
           zw_heap_allocated_blocks(h), zw_heap_allocated_bytes(h));
    zw_heap_print_stats(h, stdout);

    for (size_t w = 0; w < NWORDS; w += 2) {
        if (index[w] != NULL)
            entry_free(h, index[w]);
        index[w] = NULL;
    }
    printf("\n== after dropping every other word: %zu blocks, %zu bytes ==\n",
           zw_heap_allocated_blocks(h), zw_heap_allocated_bytes(h));
    zw_heap_print_stats(h, stdout);

    for (size_t w = 1; w < NWORDS; w += 2) {
        if (index[w] != NULL)
            entry_free(h, index[w]);
    }
    zw_heap_free(h, index);
    printf("\n== after freeing everything: %zu blocks, %zu bytes ==\n",
           zw_heap_allocated_blocks(h), zw_heap_allocated_bytes(h));
    zw_heap_print_stats(h, stdout);
    zw_heap_destroy(h);
    return 0;
out_oom:
    fprintf(stderr, "mallocstats: error: out of memory\n");
    zw_heap_destroy(h);
    return 1;
}
