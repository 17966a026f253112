/*
 * util.c - helpers every test file may use: a scratch directory (removed when the test
 * binary exits), writing raw bytes, and whether /usr/bin/python3 has some modules.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "onnx.pb-c.h"
#include "test.h"

static char scratch[64];

static void remove_scratch(void) {
    char cmd[128];
    if (!scratch[0]) return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", scratch);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", scratch);
}

const char *il_test_tmp(const char *name) {
    static char buf[8][512];
    static int k;
    if (!scratch[0]) {
        snprintf(scratch, sizeof scratch, "/tmp/il_test_XXXXXX");
        if (!mkdtemp(scratch)) perror("mkdtemp");
        atexit(remove_scratch);
    }
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", scratch, name);
    return buf[k];
}

void il_test_write_bytes(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    if (n) fwrite(b, 1, n, f);
    fclose(f);
}

int il_test_have_python(const char *modules) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, IL_PY " -c 'import %s' 2>/dev/null", modules);
    if (system(cmd) == 0) return 1;
    printf("\n  skipped: needs Python modules %s in " IL_PY "\n", modules);
    return 0;
}

void il_test_write_msg(const char *path, const void *msg) {
    const ProtobufCMessage *m = msg;
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *b = malloc(n + 1);
    protobuf_c_message_pack(m, b);
    il_test_write_bytes(path, b, n);
    free(b);
}

int il_test_tensors_equal(const il_tensor *a, const il_tensor *b) {
    if (!a || !b) return a == b;
    return a->dtype == b->dtype && a->rank == b->rank &&
           !memcmp(a->dims, b->dims, (size_t)a->rank * sizeof(int64_t)) && !memcmp(a->data, b->data, il_tensor_bytes(a));
}

int il_test_cli(const char *args, char *out, size_t n) {
    char cmd[4096];
    const char *bin = getenv("IL_BIN") ? getenv("IL_BIN") : "build/inferlab";
    snprintf(cmd, sizeof cmd, "timeout 120 %s %s 2>&1", bin, args);
    FILE *f = popen(cmd, "r");
    size_t k = f ? fread(out, 1, n - 1, f) : 0;
    out[k] = 0;
    int st = f ? pclose(f) : -1;
    if (st == -1 || !WIFEXITED(st)) return -1;
    return WEXITSTATUS(st);
}
