/*
 * fuzz_util.c - the scratch file the path-taking targets write their input to (fuzz.h).
 */
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];
static char path[128];

static void cleanup(void) {
    if (path[0]) unlink(path);
    if (dir[0]) rmdir(dir);
}

const char *fuzz_file(const uint8_t *data, size_t size, const char *suffix) {
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/il_fuzz_XXXXXX");
        if (!mkdtemp(dir)) { dir[0] = 0; return NULL; }
        atexit(cleanup);
    }
    snprintf(path, sizeof path, "%s/input%s", dir, suffix);
    FILE *f = fopen(path, "wb");
    if (!f) return NULL;
    size_t w = size ? fwrite(data, 1, size, f) : 0;
    if (fclose(f) != 0 || w != size) return NULL;
    return path;
}
