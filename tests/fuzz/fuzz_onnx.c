/*
 * fuzz_onnx.c - the ONNX importer through the verifier, the planner and one run, then the -O2
 * pass pipeline and the same again on what it made: the path any downloaded model takes
 * through `run` and `opt`. Sizes stay bounded so that each input runs in milliseconds: graphs of
 * more than 256 nodes are only imported and verified; plans whose activations (as laid out at
 * plan time) exceed 4 MB, that count more than 2^24 multiply-adds, or with inputs of more than
 * 2^16 elements or unknown dims, are planned but not run (a model may legitimately Tile its way
 * to gigabytes, or ask for an 80 M MAC convolution that takes the sanitized build 7 s of CPU:
 * slow, not a bug, and libFuzzer would report it as a hang).
 */
#include "fuzz.h"

#include "engine/engine.h"
#include "passes/passes.h"

#include <stdlib.h>

#define MAX_RUN_NUMEL (1 << 16)
#define MAX_RUN_NODES 256
#define MAX_RUN_BYTES ((int64_t)4 << 20)
#define MAX_RUN_MACS ((int64_t)1 << 24)

/* Multiply-adds of one run of g (batch 1), or -1 when its shapes cannot be inferred. */
static int64_t graph_macs(const il_graph *g) {
    il_shapes *s;
    if (il_infer_shapes(g, 1, NULL, 0, &s)) return -1;
    int64_t macs = 0;
    for (int k = 0; k < g->n_nodes && macs <= MAX_RUN_MACS; k++)
        if (!g->nodes[k].dead) macs += il_node_macs(g, s, k);
    il_shapes_free(s);
    return macs;
}

static il_tensor *input_for(const il_graph *g, int i, uint64_t *rng) {
    const il_value *x = &g->values[g->inputs[i]];
    if (x->rank < 0 || !il_dtype_is_supported(x->dtype)) return NULL;
    for (int d = 0; d < x->rank; d++)
        if (x->dims[d] < 0) return NULL;
    int64_t n = il_shape_numel(x->rank, x->dims);
    if (n < 0 || n > MAX_RUN_NUMEL) return NULL;
    il_tensor *t = il_tensor_new(x->dtype, x->rank, x->dims);
    if (t) il_tensor_fill_input(t, rng);
    return t;
}

/* Plan g and run it once on seeded inputs when it is small enough. */
static void plan_and_run(const il_graph *g) {
    il_plan_opts o = {.threads = 1, .batch = 1};
    il_plan *p = NULL;
    if (il_plan_create(g, &o, &p)) return;
    il_tensor **in = calloc((size_t)g->n_inputs + 1, sizeof *in);
    uint64_t rng = 42;
    int ok = 1;
    for (int i = 0; i < g->n_inputs; i++) ok &= (in[i] = input_for(g, i, &rng)) != NULL;
    if (ok && il_plan_total_bytes(p) <= MAX_RUN_BYTES && graph_macs(g) <= MAX_RUN_MACS) il_plan_run(p, in, g->n_inputs);
    for (int i = 0; i < g->n_inputs; i++) il_tensor_free(in[i]);
    free(in);
    il_plan_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int once;
    if (!once) { il_set_threads(1); once = 1; }
    il_graph *g = NULL;
    if (il_onnx_load_buffer(data, size, NULL, &g)) return 0;
    if (il_graph_verify(g) || g->n_nodes > MAX_RUN_NODES) {
        il_graph_free(g);
        return 0;
    }
    plan_and_run(g);
    il_pass_opts po = {0};
    if (!il_pipeline_run(g, il_pass_preset(2), &po, NULL, 0, NULL) && !il_graph_verify(g)) plan_and_run(g);
    il_graph_free(g);
    return 0;
}
