/*
 * fuzz_plan.c - the plan-file loader of `run`/`bench` (engine/plan_file.c): a plan file from
 * anywhere is refused or loaded whole, never half-trusted.
 */
#include "fuzz.h"

#include "engine/engine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int once;
    if (!once) { il_set_threads(1); once = 1; }
    const char *path = fuzz_file(data, size, ".plan");
    if (!path) return 0;
    il_plan_opts o = {.threads = 1};
    il_plan *p = NULL;
    if (!il_plan_load(path, &o, &p)) il_plan_free(p);
    return 0;
}
