/*
 * lower_fused.c - pass "lower-fused": rewrite every ai.inferlab op back into standard ONNX ops
 * of the model's opset, so that other runtimes can load the result (`inferlab opt --portable`
 * runs it last). The inverse of the fusion passes:
 *
 *   FusedConv   -> Conv [+ Add(Z)] [+ activation]     FusedGemm -> Gemm [+ activation]
 *   ScaledConv  -> Mul(X, S), then as FusedConv
 *   PooledConv  -> as FusedConv, then GlobalAveragePool(Y) -> P
 *   ConvPool    -> as FusedConv into a new Y, then MaxPool(Y) -> P (its pool_ attributes unprefixed)
 *   FusedMatMul -> MatMul [+ Add(bias)] [+ activation] SiLU      -> Sigmoid, Mul
 *   Attention   -> MatMul, Mul(scale), [Add(mask)], Softmax, MatMul
 *   MultiHeadAttention -> the head Transposes of Q, K, V (K's to [B, H, D, Sk]), as Attention,
 *                     the context's Transpose back to [B, Sq, H, Dv]
 *   ChannelShuffle -> [Concat of its inputs,] Reshape [0, G, C/G, -1], Transpose (0, 2, 1, 3),
 *                     Reshape to Shape(X) [, a Slice of the channels per output]
 *                     (C must be static; any spatial dims)
 *   Gelu, LayerNormalization, HardSwish -> the standard op when the opset has it, else its formula
 *   SkipLayerNormalization -> Add(input, skip) [+ Add(bias)] (writing its sum output), then as
 *                     LayerNormalization (last axis)
 *   com.microsoft DynamicQuantizeMatMul (fuse-dynamic-q's) -> DynamicQuantizeLinear, MatMulInteger,
 *     Cast, Mul [, Add]
 *
 * What the fusion passes folded into weights (BatchNormalization, biases) stays folded: that
 * part of the optimization is portable.
 */
#include "builtin.h"
#include "pass_util.h"

#include <stdio.h>

/* A float32 scalar constant. */
static int scalar(il_graph *g, float x) {
    il_tensor *t = il_tensor_new(IL_F32, 0, NULL);
    ((float *)t->data)[0] = x;
    return pu_add_const(g, "lowered_const", t);
}

/* A node named after the fused node `like` with a suffix no other node has: one fused node
 * lowers to several, and ONNX Runtime refuses a model with two nodes of one name. */
static int add_lowered(il_graph *g, const char *op, int like, int n_in, const int *in, int n_out, const int *out) {
    char suffix[32];
    for (int k = 1;; k++) {
        snprintf(suffix, sizeof suffix, k == 1 ? "_lowered" : "_lowered_%d", k);
        size_t bl = strlen(g->nodes[like].name ? g->nodes[like].name : ""), sl = strlen(suffix);
        int taken = 0;
        for (int j = 0; j < g->n_nodes && !taken; j++) {
            const char *nm = g->nodes[j].name;
            taken = !g->nodes[j].dead && nm && strlen(nm) == bl + sl && !strncmp(nm, g->nodes[like].name, bl) &&
                    !strcmp(nm + bl, suffix);
        }
        if (!taken) return pu_add_node(g, op, "", like, suffix, n_in, in, n_out, out);
    }
}

/* Add node op(a[, b]) named after node like; writes out, or a new value when out < 0. */
static int emit(il_graph *g, int like, const char *op, int a, int b, int out) {
    if (out < 0) out = pu_new_value(g, g->nodes[like].name, a);
    int in[2] = {a, b};
    add_lowered(g, op, like, b >= 0 ? 2 : 1, in, 1, &out);
    return out;
}

/* GELU as its formula: x * 0.5 * (1 + erf(x / sqrt 2)), or the tanh approximation. */
static void gelu(il_graph *g, int k, int x, int y, int tanh_form) {
    int core;
    if (tanh_form) {
        int x3 = emit(g, k, "Mul", emit(g, k, "Mul", x, x, -1), x, -1);
        int inner = emit(g, k, "Add", x, emit(g, k, "Mul", x3, scalar(g, 0.044715f), -1), -1);
        core = emit(g, k, "Tanh", emit(g, k, "Mul", inner, scalar(g, 0.7978845608f), -1), -1, -1);
    } else {
        core = emit(g, k, "Erf", emit(g, k, "Div", x, scalar(g, 1.4142135624f), -1), -1, -1);
    }
    int t = emit(g, k, "Add", core, scalar(g, 1.0f), -1);
    emit(g, k, "Mul", emit(g, k, "Mul", x, t, -1), scalar(g, 0.5f), y);
}

/* Activation `name` (params p) from x into y, as standard ops. */
static void activation(il_graph *g, int k, const char *name, const float *p, int np, int x, int y) {
    int64_t opset = pu_opset(g);
    if (!strcmp(name, "Relu") || !strcmp(name, "Sigmoid") || !strcmp(name, "Tanh")) {
        emit(g, k, name, x, -1, y);
    } else if (!strcmp(name, "LeakyRelu") || !strcmp(name, "HardSigmoid")) {
        int j = add_lowered(g, name, k, 1, &x, 1, &y);
        il_node_set_float(g, j, "alpha", p[0]);
        if (np > 1) il_node_set_float(g, j, "beta", p[1]);
    } else if (!strcmp(name, "Clip")) {
        if (opset >= 11) {
            int in[3] = {x, isinf(p[0]) ? -1 : scalar(g, p[0]), isinf(p[1]) ? -1 : scalar(g, p[1])};
            add_lowered(g, "Clip", k, in[2] >= 0 ? 3 : in[1] >= 0 ? 2 : 1, in, 1, &y);
        } else {
            int j = add_lowered(g, "Clip", k, 1, &x, 1, &y);
            if (!isinf(p[0])) il_node_set_float(g, j, "min", p[0]);
            if (!isinf(p[1])) il_node_set_float(g, j, "max", p[1]);
        }
    } else if (!strcmp(name, "HardSwish") && opset >= 14) {
        emit(g, k, "HardSwish", x, -1, y);
    } else if (!strcmp(name, "HardSwish")) {
        int h = pu_new_value(g, g->nodes[k].name, x);
        int j = add_lowered(g, "HardSigmoid", k, 1, &x, 1, &h);
        il_node_set_float(g, j, "alpha", 1.0f / 6);
        il_node_set_float(g, j, "beta", 0.5f);
        emit(g, k, "Mul", x, h, y);
    } else if (!strcmp(name, "SiLU")) {
        emit(g, k, "Mul", x, emit(g, k, "Sigmoid", x, -1, -1), y);
    } else if (opset >= 20) { /* Gelu, GeluTanh */
        int j = add_lowered(g, "Gelu", k, 1, &x, 1, &y);
        if (!strcmp(name, "GeluTanh")) il_node_set_string(g, j, "approximate", "tanh");
    } else {
        gelu(g, k, x, y, !strcmp(name, "GeluTanh"));
    }
}

/* Transpose(x, perm) named after node k, into out (or a new value when out < 0). */
static int transpose(il_graph *g, int k, int x, const int64_t *perm, int out) {
    int t = emit(g, k, "Transpose", x, -1, out);
    il_node_set_ints(g, g->values[t].producer, "perm", 4, perm);
    return t;
}

/* The base op of a Fused* node k with attributes but the activation's, writing into a new
 * value (or y when there is nothing after it); returns the value. x0 >= 0 replaces its X. */
static int base_op(il_graph *g, int k, const char *op, int n_in, int y, int x0) {
    static const char *const skip[] = {"activation", "activation_params", "pool_kernel_shape", "pool_strides", "pool_pads",
                                       "pool_dilations", "pool_ceil_mode", "pool_storage_order", "pool_auto_pad", NULL};
    int in[4];
    memcpy(in, g->nodes[k].inputs, (size_t)n_in * sizeof(int));
    if (x0 >= 0) in[0] = x0;
    int out = y >= 0 ? y : pu_new_value(g, g->nodes[k].name, in[0]);
    int j = add_lowered(g, op, k, n_in, in, 1, &out);
    pu_copy_attrs(g, j, k, skip);
    return out;
}

static void lower_fused_op(il_graph *g, int k, const pu_shapes *s) {
    /* g->nodes moves when nodes are added: keep copies, not a pointer to node k (its attribute
     * arrays do not move, so act and p stay valid) */
    const il_node *n = &g->nodes[k];
    char op[64];
    int in[8] = {-1, -1, -1, -1, -1, -1, -1, -1}, n_in = n->n_inputs < 8 ? n->n_inputs : 8;
    snprintf(op, sizeof op, "%s", n->op_type);
    memcpy(in, n->inputs, (size_t)n_in * sizeof(int));
    const char *act = il_attr_string(n, "activation", NULL);
    const float *p;
    int np = il_attr_floats(n, "activation_params", &p);
    int y = n->outputs[0], x = in[0];
    const char *approx = il_attr_string(n, "approximate", "none");
    float scale = il_attr_float(n, "scale", 1), eps = il_attr_float(n, "epsilon", 1e-5f);
    int64_t groups = il_attr_int(n, "groups", 1);
    int sum = n->n_outputs > 3 ? n->outputs[3] : -1;
    int pool = !strcmp(op, "PooledConv") && n->n_outputs > 1 ? n->outputs[1] : -1;
    int maxpool = !strcmp(op, "ConvPool") ? y : -1; /* ConvPool's output is the pool's */
    if (maxpool >= 0) y = pu_new_value(g, g->nodes[k].name, x);
    n = NULL;
    int heads_out = -1; /* MultiHeadAttention's Y: the context's transpose writes it */
    if (!strcmp(op, "MultiHeadAttention")) {
        static const int64_t split[4] = {0, 2, 1, 3}, keys[4] = {0, 2, 3, 1};
        for (int i = 0; i < 3; i++) in[i] = transpose(g, k, in[i], i == 1 ? keys : split, -1);
        heads_out = y;
        y = pu_new_value(g, g->nodes[k].name, in[0]);
        x = in[0];
        snprintf(op, sizeof op, "Attention");
    }
    if (!strcmp(op, "SkipLayerNormalization")) { /* the sum, then as LayerNormalization of it */
        int has_bias = n_in > 4 && in[4] >= 0;
        int t = emit(g, k, "Add", in[0], in[1], has_bias ? -1 : sum);
        if (has_bias) t = emit(g, k, "Add", t, in[4], sum);
        int ln[3] = {t, in[2], n_in > 3 ? in[3] : -1};
        memcpy(in, ln, sizeof ln);
        in[3] = in[4] = -1;
        n_in = ln[2] >= 0 ? 3 : 2;
        x = t;
        snprintf(op, sizeof op, "LayerNormalization");
        if (pu_opset(g) >= 17) {
            int j = add_lowered(g, op, k, n_in, in, 1, &y);
            il_node_set_int(g, j, "axis", -1);
            il_node_set_float(g, j, "epsilon", eps);
            return;
        }
    }
    float prm[2] = {np > 0 ? p[0] : 0, np > 1 ? p[1] : 0};
    if (!strcmp(op, "FusedConv") || !strcmp(op, "FusedMatMul") || !strcmp(op, "ScaledConv") || !strcmp(op, "PooledConv") ||
        maxpool >= 0) {
        int conv = strcmp(op, "FusedMatMul") != 0;
        int extra = conv ? in[3] : in[2]; /* Z or bias */
        int x0 = !strcmp(op, "ScaledConv") ? emit(g, k, "Mul", x, in[4], -1) : -1;
        int v = base_op(g, k, conv ? "Conv" : "MatMul", conv && in[2] >= 0 ? 3 : 2, extra < 0 && !act ? y : -1, x0);
        if (extra >= 0) v = emit(g, k, "Add", v, extra, act ? -1 : y);
        if (act) activation(g, k, act, prm, np, v, y);
        if (pool >= 0) emit(g, k, "GlobalAveragePool", y, -1, pool);
        if (maxpool >= 0) {
            il_node view;
            il_attr at[8];
            il_conv_pool_view(&g->nodes[k], &view, at, 8);
            pu_copy_attrs_from(g, add_lowered(g, "MaxPool", k, 1, &y, 1, &maxpool), &view, NULL);
        }
    } else if (!strcmp(op, "FusedGemm")) {
        int v = base_op(g, k, "Gemm", n_in, act ? -1 : y, -1);
        if (act) activation(g, k, act, prm, np, v, y);
    } else if (!strcmp(op, "SiLU") || !strcmp(op, "HardSwish")) {
        activation(g, k, op, prm, 0, x, y);
    } else if (!strcmp(op, "Gelu")) {
        activation(g, k, !strcmp(approx, "tanh") ? "GeluTanh" : "Gelu", prm, 0, x, y);
    } else if (!strcmp(op, "ChannelShuffle")) {
        int outs[8], n_out = g->nodes[k].n_outputs;
        memcpy(outs, g->nodes[k].outputs, (size_t)n_out * sizeof(int));
        int64_t c = 0;
        for (int i = 0; i < n_in; i++) c += pu_dim(s, in[i], 1);
        if (n_in > 1) { /* the join */
            x = pu_new_value(g, g->nodes[k].name, in[0]);
            il_node_set_int(g, add_lowered(g, "Concat", k, n_in, in, 1, &x), "axis", 1);
        }
        int64_t d1[4] = {0, groups, c / groups, -1}, n4 = 4, perm[4] = {0, 2, 1, 3};
        il_tensor *shp = il_tensor_new(IL_I64, 1, &n4);
        memcpy(shp->data, d1, sizeof d1);
        int t = transpose(g, k, emit(g, k, "Reshape", x, pu_add_const(g, "lowered_shape", shp), -1), perm, -1);
        int sh = emit(g, k, "Reshape", t, emit(g, k, "Shape", x, -1, -1), n_out == 1 ? y : -1);
        for (int m = 0; n_out > 1 && m < n_out; m++) { /* the split: equal parts of the channels */
            int64_t b = m * (c / n_out), e = b + c / n_out, one = 1, axis = 1;
            if (pu_opset(g) >= 10) {
                int sin[4] = {sh};
                const int64_t *vals[3] = {&b, &e, &axis};
                for (int i = 0; i < 3; i++) {
                    il_tensor *v = il_tensor_new(IL_I64, 1, &one);
                    ((int64_t *)v->data)[0] = *vals[i];
                    sin[1 + i] = pu_add_const(g, "lowered_slice", v);
                }
                add_lowered(g, "Slice", k, 4, sin, 1, &outs[m]);
            } else {
                int j = add_lowered(g, "Slice", k, 1, &sh, 1, &outs[m]);
                il_node_set_ints(g, j, "starts", 1, &b);
                il_node_set_ints(g, j, "ends", 1, &e);
                il_node_set_ints(g, j, "axes", 1, &axis);
            }
        }
    } else if (!strcmp(op, "Attention")) {
        int r = heads_out >= 0 ? 4 : pu_rank(s, x);
        int sc = emit(g, k, "Mul", emit(g, k, "MatMul", x, in[1], -1), scalar(g, scale), -1);
        if (in[3] >= 0) sc = emit(g, k, "Add", sc, in[3], -1);
        int prob = emit(g, k, "Softmax", sc, -1, -1);
        /* Softmax before opset 13 flattens from `axis`: the last axis then needs the rank */
        il_node_set_int(g, g->values[prob].producer, "axis", pu_opset(g) >= 13 || r < 0 ? -1 : r - 1);
        emit(g, k, "MatMul", prob, in[2], y);
        if (heads_out >= 0) transpose(g, k, y, (const int64_t[4]){0, 2, 1, 3}, heads_out);
    } else if (!strcmp(op, "LayerNormalization") && pu_opset(g) >= 17) {
        base_op(g, k, "LayerNormalization", n_in, y, -1);
    } else if (!strcmp(op, "LayerNormalization")) { /* opset < 17: the formula, last axis */
        int64_t axes[1] = {-1};
        int mean = emit(g, k, "ReduceMean", x, -1, -1);
        il_node_set_ints(g, g->values[mean].producer, "axes", 1, axes);
        int d = emit(g, k, "Sub", x, mean, -1);
        int var = emit(g, k, "ReduceMean", emit(g, k, "Mul", d, d, -1), -1, -1);
        il_node_set_ints(g, g->values[var].producer, "axes", 1, axes);
        int sd = emit(g, k, "Sqrt", emit(g, k, "Add", var, scalar(g, eps), -1), -1, -1);
        int has_b = in[2] >= 0;
        int v = emit(g, k, "Mul", emit(g, k, "Div", d, sd, -1), in[1], has_b ? -1 : y);
        if (has_b) emit(g, k, "Add", v, in[2], y);
    }
}

static int lowerable(const il_node *n, const pu_shapes *s) {
    if (!strcmp(n->op_type, "ChannelShuffle")) {
        int ok = n->n_inputs >= 1 && n->n_inputs <= 8 && n->n_outputs <= 8;
        for (int i = 0; ok && i < n->n_inputs; i++) ok = pu_dim(s, n->inputs[i], 1) > 0;
        return ok;
    }
    if (!strcmp(n->op_type, "SkipLayerNormalization")) /* Y and the sum; not the training outputs */
        return n->n_inputs >= 3 && (n->n_outputs < 2 || n->outputs[1] < 0) && (n->n_outputs < 3 || n->outputs[2] < 0);
    static const char *const ops[] = {"FusedConv", "ScaledConv", "PooledConv", "ConvPool", "FusedGemm", "FusedMatMul", "SiLU",
                                      "HardSwish", "Gelu", "Attention", "MultiHeadAttention", "LayerNormalization", NULL};
    for (int i = 0; ops[i]; i++)
        if (!strcmp(n->op_type, ops[i])) return 1;
    return 0;
}

static il_status run(il_graph *g, il_pass_stats *st) {
    pu_shapes s;
    pu_shapes_init(&s, g);
    int n_nodes = g->n_nodes, left = 0;
    for (int k = 0; k < n_nodes; k++) {
        il_node *n = &g->nodes[k];
        if (il_dynq_lower(g, k)) { /* ONNX Runtime's DynamicQuantizeMatMul (passes/fuse_dynq.c) */
            il_pass_count(st, "DynamicQuantizeMatMul lowered to its standard chain", 1);
            continue;
        }
        if (n->dead || strcmp(n->domain, IL_DOMAIN)) continue;
        if (il_qdq_lower(g, k)) { /* integer ops: back to QDQ (passes/fuse_qdq.c) */
            il_pass_count(st, "integer ops lowered to QDQ", 1);
            continue;
        }
        if (!lowerable(n, &s) ||
            (n->n_outputs != 1 && strcmp(n->op_type, "ChannelShuffle") && strcmp(n->op_type, "SkipLayerNormalization") &&
             strcmp(n->op_type, "PooledConv"))) {
            left++;
            continue;
        }
        il_graph_remove_node(g, k); /* first, so the lowered nodes can write its output */
        lower_fused_op(g, k, &s);
        il_pass_count(st, "fused ops lowered to standard ONNX", 1);
    }
    pu_shapes_free(&s);
    if (left) return il_error(IL_ERR_UNSUPPORTED, "%d ai.inferlab op%s cannot be written as standard ONNX ops", left, left > 1 ? "s" : "");
    /* nothing uses the domain any more: drop its opset import so checkers see plain ONNX */
    for (int i = 0; i < g->n_opsets; i++)
        if (!strcmp(g->opsets[i].domain, IL_DOMAIN)) {
            free(g->opsets[i].domain);
            g->opsets[i] = g->opsets[--g->n_opsets];
            break;
        }
    return IL_OK;
}

const il_pass il_pass_lower_fused = {"lower-fused", "rewrite ai.inferlab fused ops as standard ONNX ops (for --portable)", run};
