/*
 * fused.h - private to the ai.inferlab fused ops (fused.c, fused_conv.c, fused_attention.c):
 * the activation a fused kernel applies in its epilogue, read from the node's attributes
 *
 *     activation        = "Relu" | "Clip" | "LeakyRelu" | "Sigmoid" | "HardSwish" | "HardSigmoid"
 *                         | "Gelu" | "GeluTanh" | "Tanh" | "SiLU"      (absent: none)
 *     activation_params = [min, max] for Clip, [alpha] for LeakyRelu, [alpha, beta] for HardSigmoid
 *
 * (the attribute names follow ONNX Runtime's com.microsoft FusedConv), plus the tiling rule the
 * fast kernels use so that the epilogue touches each output tile while it is still in cache.
 */
#ifndef IL_FUSED_H
#define IL_FUSED_H

#include "kernel.h"

typedef enum {
    IL_ACT_NONE,
    IL_ACT_RELU,
    IL_ACT_CLIP,
    IL_ACT_LEAKY,
    IL_ACT_SIGMOID,
    IL_ACT_HSWISH,
    IL_ACT_HSIGMOID,
    IL_ACT_GELU,
    IL_ACT_GELU_TANH,
    IL_ACT_TANH,
    IL_ACT_SILU
} il_act_kind;

typedef struct {
    il_act_kind kind;
    float a, b; /* Clip min/max, LeakyRelu alpha, HardSigmoid alpha/beta */
} il_act;

/* Read the activation attributes; IL_ERR_INVALID naming the node on an unknown name or wrong
 * parameter count. */
il_status il_act_parse(const il_kctx *c, il_act *a);

/* The activation of one element, in double (reference kernels) and float (fast kernels). */
static inline double il_act_d(const il_act *a, double x) {
    switch (a->kind) {
    case IL_ACT_NONE: return x;
    case IL_ACT_RELU: return x > 0 ? x : 0;
    case IL_ACT_CLIP: return x < a->a ? a->a : x > a->b ? a->b : x;
    case IL_ACT_LEAKY: return x >= 0 ? x : a->a * x;
    case IL_ACT_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case IL_ACT_HSWISH: { double h = x / 6.0 + 0.5; return x * (h < 0 ? 0 : h > 1 ? 1 : h); }
    case IL_ACT_HSIGMOID: { double h = a->a * x + a->b; return h < 0 ? 0 : h > 1 ? 1 : h; }
    case IL_ACT_GELU: return 0.5 * x * (1.0 + erf(x * 0.70710678118654752440));
    case IL_ACT_GELU_TANH: return 0.5 * x * (1.0 + tanh(0.79788456080286535588 * (x + 0.044715 * x * x * x)));
    case IL_ACT_TANH: return tanh(x);
    case IL_ACT_SILU: return x / (1.0 + exp(-x));
    }
    return x;
}

static inline float il_act_f(const il_act *a, float x) {
    switch (a->kind) {
    case IL_ACT_NONE: return x;
    case IL_ACT_RELU: return x > 0 ? x : 0;
    case IL_ACT_CLIP: return x < a->a ? a->a : x > a->b ? a->b : x;
    case IL_ACT_LEAKY: return x >= 0 ? x : a->a * x;
    case IL_ACT_SIGMOID: return 1.0f / (1.0f + expf(-x));
    case IL_ACT_HSWISH: { float h = x * (1.0f / 6.0f) + 0.5f; return x * (h < 0 ? 0 : h > 1 ? 1 : h); }
    case IL_ACT_HSIGMOID: { float h = a->a * x + a->b; return h < 0 ? 0 : h > 1 ? 1 : h; }
    case IL_ACT_GELU: return 0.5f * x * (1.0f + erff(x * 0.70710678f));
    case IL_ACT_GELU_TANH: return 0.5f * x * (1.0f + tanhf(0.79788456f * (x + 0.044715f * x * x * x)));
    case IL_ACT_TANH: return tanhf(x);
    case IL_ACT_SILU: return x / (1.0f + expf(-x));
    }
    return x;
}

/* y[i] = act(y[i] + bias) over n floats: the epilogue of one output row segment. The switch is
 * hoisted out of the loop for the cheap activations so the loop vectorizes. */
static inline void il_act_row(const il_act *a, float *restrict y, int64_t n, float bias, const float *restrict z) {
    /* parameters in locals: stores to y could alias *a as far as the compiler knows, which
     * would reload them every element and keep the loop from vectorizing */
    const il_act act = *a;
    const float lo = act.a, hi = act.b;
    if (z) {
        for (int64_t i = 0; i < n; i++) y[i] += z[i];
    }
    switch (act.kind) {
    case IL_ACT_NONE:
        for (int64_t i = 0; i < n; i++) y[i] += bias;
        return;
    case IL_ACT_RELU:
        for (int64_t i = 0; i < n; i++) { float v = y[i] + bias; y[i] = v > 0 ? v : 0; }
        return;
    case IL_ACT_CLIP:
        for (int64_t i = 0; i < n; i++) { float v = y[i] + bias; v = v < lo ? lo : v; y[i] = v > hi ? hi : v; }
        return;
    default:
        for (int64_t i = 0; i < n; i++) y[i] = il_act_f(&act, y[i] + bias);
        return;
    }
}

/* Rows of an output tile so that rows * row_len floats stay within about 256 KB (an L2's share),
 * at least 1: the epilogue then reads back what the GEMM just wrote from cache, not memory. */
static inline int64_t il_tile_rows(int64_t row_len) {
    int64_t r = (int64_t)65536 / (row_len > 0 ? row_len : 1);
    return r < 1 ? 1 : r;
}

#endif
