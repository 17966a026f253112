/*
 * student_leakyrelu.c - an example kernel plugin, the walk-through of docs/architecture.md:
 * a LeakyRelu kernel named "student" for the cpu backend, the shape of a lab assignment
 * (implement a kernel, have it checked against the reference, time it against the built-ins).
 *
 * It keeps per-node state: prepare reads the `alpha` attribute once when the plan is built,
 * so run only computes. It takes float32 only and declares so (dtypes); supports() could also
 * refuse shapes it does not handle. Its priority is below the built-in "fast" kernel, so the
 * heuristic never picks it: ask for it by name, or let the tactic timer decide.
 *
 * Build (one command, from the inferlab checkout):
 *     cc -std=c11 -O2 -fPIC -shared -I. passes/examples/student_leakyrelu.c -o student_leakyrelu.so
 * Use:
 *     inferlab ops --plugin ./student_leakyrelu.so               (LeakyRelu lists cpu:student*)
 *     inferlab run model.onnx --plugin ./student_leakyrelu.so --kernel LeakyRelu=student --profile
 *     inferlab build model.onnx -o m.plan --plugin ./student_leakyrelu.so --tactics timed --verbose
 * (a plan that names the kernel needs the plugin loaded again to run: `run m.plan --plugin ...`)
 */
#include "passes/passes.h"

#include <stdlib.h>

typedef struct {
    float alpha;
} state;

static il_status prepare(il_kctx *c, void **st, size_t *workspace) {
    state *s = malloc(sizeof *s);
    if (!s) return il_error(IL_ERR_OOM, "out of memory");
    s->alpha = il_attr_float(c->node, "alpha", 0.01f);
    *st = s;
    *workspace = 0; /* no scratch memory needed */
    return IL_OK;
}

/* y = x for x >= 0, alpha * x below: the same formula as the reference kernel, in float. */
static il_status run(il_kctx *c) {
    const state *s = c->state;
    const float *x = c->in[0]->data;
    float *y = c->out[0]->data;
    int64_t n = il_tensor_numel(c->in[0]);
    for (int64_t i = 0; i < n; i++) y[i] = x[i] >= 0 ? x[i] : s->alpha * x[i];
    return IL_OK;
}

static const il_kernel kernel = {
    .domain = "",
    .op = "LeakyRelu",
    .backend = "cpu",
    .name = "student",
    .dtypes = IL_DT(IL_F32),
    .priority = 1, /* below "fast" (10): never the heuristic's pick */
    .prepare = prepare,
    .run = run,
    .release = free,
    .doc = "example plugin kernel (docs/architecture.md): alpha read once at plan build",
};

il_status il_plugin_init(int abi) {
    IL_PLUGIN_CHECK_ABI(abi);
    return il_kernel_register(&kernel);
}
