/* tests/fuzz/replay.c - runs a fuzz target's LLVMFuzzerTestOneInput once on each input, without
 * libFuzzer: so that any compiler (and the ASan build) replays the seed corpus
 * (tests/fuzz/corpus/<input>) and every input a fuzzer has found (tests/fuzz/regress/<input>) as
 * a ctest test. Built with ZW_FUZZING, as the fuzzers are (checksums are not checked, so an input
 * reaches the decoders it reached when it was found). A crash or an abort fails the test.
 * usage: replay_<input> FILE_OR_DIR... */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Runs the target on file `path`: 0, or -1 if it cannot be read. */
static int
replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "replay: cannot open '%s': %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 65536, len = 0;
    unsigned char *data = malloc(cap);
    size_t got;
    while (data != NULL && (got = fread(data + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            unsigned char *more = realloc(data, cap * 2);
            if (more == NULL)
                free(data);
            data = more;
            cap *= 2;
        }
    }
    bool bad = data == NULL || ferror(f);
    fclose(f);
    if (bad) {
        free(data);
        fprintf(stderr, "replay: cannot read '%s'\n", path);
        return -1;
    }
    /* a copy of exactly `len` bytes: ASan sees any read past the input */
    unsigned char *exact = malloc(len > 0 ? len : 1);
    if (exact == NULL) {
        free(data);
        return -1;
    }
    memcpy(exact, data, len);
    free(data);
    printf("replay: %s (%zu bytes)\n", path, len);
    fflush(stdout);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    return 0;
}

int
main(int argc, char **argv)
{
    size_t n = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: cannot open '%s': %s\n", argv[i], strerror(errno));
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (replay_file(argv[i]) != 0)
                return 1;
            n++;
            continue;
        }
        struct dirent **names;
        int k = scandir(argv[i], &names, NULL, alphasort);
        if (k < 0) {
            fprintf(stderr, "replay: cannot list '%s': %s\n", argv[i], strerror(errno));
            return 1;
        }
        int rc = 0;
        for (int j = 0; j < k; j++) {
            char path[4096];
            if (names[j]->d_name[0] != '.' && rc == 0) {
                snprintf(path, sizeof(path), "%s/%s", argv[i], names[j]->d_name);
                rc = replay_file(path);
                n++;
            }
            free(names[j]);
        }
        free(names);
        if (rc != 0)
            return 1;
    }
    if (n == 0) {
        fputs("replay: no input\n", stderr);
        return 1; /* an empty corpus is a mistake, not a pass */
    }
    printf("replay: %zu inputs, no crash\n", n);
    return 0;
}
