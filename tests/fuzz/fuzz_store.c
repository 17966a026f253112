/*
 * fuzz_store.c - opening a results database (bench/store*.c) as `db list` and `report` do,
 * read-only, and listing it: any file a user points them at.
 */
#include "fuzz.h"

#include "bench/bench.h"

#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(data, size, ".db");
    if (!path) return 0;
    il_store *s = NULL;
    if (il_store_open_readonly(path, &s)) return 0;
    FILE *devnull = fopen("/dev/null", "w");
    if (devnull) {
        il_store_list(s, devnull);
        fclose(devnull);
    }
    il_store_close(s);
    return 0;
}
