/*
 * fuzz_yaml.c - the YAML experiment reader of `inferlab bench --experiment` (bench/).
 */
#include "fuzz.h"

#include "bench/bench.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(data, size, ".yaml");
    if (!path) return 0;
    il_bench_opts o;
    il_bench_defaults(&o);
    il_variant *v = NULL;
    int n = 0;
    if (!il_experiment_load(path, &o, &v, &n)) free(v);
    return 0;
}
