/*
 * prune_random.c - an example pruning-criterion plugin: random scores, the baseline every
 * pruning criterion has to beat (if magnitude pruning were no better than removing weights at
 * random, the magnitudes would carry no information).
 *
 * A criterion only scores the weights; `inferlab prune` turns the scores into zeros with any
 * scope (--method magnitude: per layer, global: one threshold, nm: N of every M), so this
 * plugin gets all three. Scores are seeded by the layer's name: a run is repeatable.
 *
 * Build (one command, from the inferlab checkout):
 *     cc -std=c11 -O2 -fPIC -shared -I. passes/examples/prune_random.c -o prune_random.so
 * Use:
 *     inferlab prune --plugin ./prune_random.so --list
 *     inferlab prune model.onnx -o out.onnx --method magnitude --criterion random --sparsity 0.5 --plugin ./prune_random.so
 */
#include "passes/passes.h"
#include "prune/prune.h"

static il_status score(const il_prune_criterion *c, const il_prune_layer *l, const il_tensor *w, double *s) {
    uint64_t rng = 1469598103934665603ull; /* FNV-1a of the name: a seed per layer */
    for (const char *p = l->name; *p; p++) rng = (rng ^ (unsigned char)*p) * 1099511628211ull;
    if (!rng) rng = 1;
    for (int64_t i = 0; i < il_tensor_numel(w); i++) s[i] = il_rand_uniform(&rng);
    return IL_OK;
}

static const il_prune_criterion random_criterion = {
    IL_PRUNE_ABI, "random", "uniform random scores: the baseline a criterion must beat (example plugin)",
    IL_PRUNE_PER_ELEMENT, score, NULL,
};

il_status il_plugin_init(int abi) {
    IL_PLUGIN_CHECK_ABI(abi);
    return il_prune_register_criterion(&random_criterion);
}
