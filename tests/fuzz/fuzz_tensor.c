/*
 * fuzz_tensor.c - the tensor file loaders `run --input` and `check` use: the first byte picks
 * .npy (even) or .pb, an ONNX TensorProto (odd); the rest is the file.
 */
#include "fuzz.h"

#include "engine/engine.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const char *path = fuzz_file(data + 1, size - 1, data[0] & 1 ? ".pb" : ".npy");
    if (!path) return 0;
    il_tensor *t = NULL;
    char *name = NULL;
    il_status st = data[0] & 1 ? il_tensor_load_pb(path, &t, &name) : il_tensor_load_npy(path, &t);
    if (!st) { /* what loaded must be whole: touch every byte */
        volatile uint8_t sum = 0;
        const uint8_t *b = t->data;
        for (size_t i = 0; i < il_tensor_bytes(t); i++) sum ^= b[i];
    }
    il_tensor_free(t);
    free(name);
    return 0;
}
