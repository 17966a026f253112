/*
 * pass.c - the lossy pass `int8`: calibrate with the harness's default data (Fashion-MNIST
 * training images for a model that takes 1x28x28 images, else random:64) and the entropy
 * calibrator, then rewrite the model into QDQ form, so `opt -p int8` and `bench --pipeline
 * int8+O2` quantize like `inferlab quantize MODEL` does with its defaults (in bench, -O2 after
 * it is what turns the QDQ form into integer kernels: fuse-qdq). Lossy: `opt --verify` checks
 * it by top-1 agreement and cosine, not by allclose.
 */
#include "quant_int.h"

#include "passes/passes.h"

#include <string.h>

static il_status int8_run(il_graph *g, il_pass_stats *ps) {
    if (il_quant_is_quantized(g)) return IL_OK; /* quantized already: nothing to do, so the pass is idempotent */
    il_quant_opts o = {0};
    il_quant_ctx *q;
    il_graph *out;
    il_quant_stats st;
    il_status s = il_quant_calibrate(g, &o, &q);
    if (s) return s;
    s = il_quant_apply(q, NULL, 0, &out, &st);
    il_quant_free(q);
    if (s) return s;
    /* the pass rewrites g in place: take the new graph's contents */
    il_graph tmp = *g;
    *g = *out;
    *out = tmp;
    il_graph_free(out);
    il_pass_count(ps, "nodes quantized", st.quantized);
    il_pass_count(ps, "Relu/Clip folded", st.relu_folded);
    il_pass_count(ps, "activations quantized", st.tensors);
    il_pass_count(ps, "weights int8", st.weights);
    return IL_OK;
}

const il_pass il_pass_int8 = {
    .name = "int8",
    .summary = "INT8 QDQ (lossy): entropy calibration on Fashion-MNIST (1x28x28 models) or random:64, per-channel weights",
    .run = int8_run,
    .lossy = 1,
};
