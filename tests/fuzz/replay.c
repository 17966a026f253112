/*
 * replay.c - a main() for a fuzz target without libFuzzer: runs it once on every file named
 * (directories: every file in them), so `make test` replays the regression corpus
 * tests/fuzz/regress/TARGET/ with the ordinary build (and under SANITIZE=1 with ASan/UBSan).
 * Prints how many inputs ran; a crash is the test failing.
 */
#include "fuzz.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int run_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "replay: %s: cannot open\n", path); return 0; }
    size_t cap = 1 << 16, n = 0;
    uint8_t *b = malloc(cap);
    for (size_t r; b && (r = fread(b + n, 1, cap - n, f)) > 0;) {
        n += r;
        if (n == cap) b = realloc(b, cap *= 2);
    }
    fclose(f);
    if (!b) { fprintf(stderr, "replay: %s: out of memory\n", path); return 0; }
    LLVMFuzzerTestOneInput(b, n);
    free(b);
    return 1;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv) {
    int ran = 0;
    for (int i = 1; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) != 0) { fprintf(stderr, "replay: %s: not found\n", argv[i]); return 1; }
        if (!S_ISDIR(sb.st_mode)) { ran += run_file(argv[i]); continue; }
        DIR *d = opendir(argv[i]);
        struct dirent *e;
        char **names = NULL;
        int n = 0;
        while (d && (e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            names = realloc(names, (size_t)(n + 1) * sizeof *names);
            names[n] = malloc(strlen(argv[i]) + strlen(e->d_name) + 2);
            sprintf(names[n++], "%s/%s", argv[i], e->d_name);
        }
        if (d) closedir(d);
        if (n) qsort(names, (size_t)n, sizeof *names, by_name); /* the same order every run */
        for (int j = 0; j < n; j++) {
            ran += run_file(names[j]);
            free(names[j]);
        }
        free(names);
    }
    printf("replay: %d inputs, no crash\n", ran);
    return 0;
}
