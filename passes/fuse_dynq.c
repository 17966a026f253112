/*
 * fuse_dynq.c - pass "fuse-dynamic-q": the graph ONNX Runtime's quantize_dynamic writes (and
 * `inferlab quantize --dynamic`, quantize/dynamic.c)
 *
 *   DynamicQuantizeLinear(x) -> (q, s, z)
 *   MatMulInteger(q, W, z [, w_zp]) -> Cast(to float) -> Mul(., Mul(s, w_scale)) [-> Add(., bias)]
 *
 * becomes one com.microsoft DynamicQuantizeMatMul(x, W, w_scale [, w_zp, bias]), the op ONNX
 * Runtime's own optimizer fuses it into. Its kernel (engine/cpu/qgemm_matmul.c) quantizes x into
 * the GEMM's scratch, multiplies in integers on the weights packed once, and scales the sums
 * into float while they are in cache: four nodes less per product, no int32 and no uint8
 * tensor between them. Lossless: the fused op computes the graph's float32 arithmetic in its
 * order, bit for bit (engine/ops/qfused.c; tests/test_quantize.c). lower-fused (`opt --portable`)
 * writes the chain back (il_dynq_lower), for runtimes without ONNX Runtime's contrib ops.
 */
#include "builtin.h"
#include "pass_util.h"

/* v is a float32 constant of 1 or n elements (rank <= 1). */
static int per_column_f32(const il_graph *g, int v, int64_t n, int allow_one) {
    const il_tensor *t = pu_const(g, v);
    if (!t || t->dtype != IL_F32 || t->rank > 1) return 0;
    int64_t e = il_tensor_numel(t);
    return e == n || (allow_one && e == 1);
}

/* Node k a MatMulInteger at the heart of the pattern: fuse it, or return 0. */
static int fuse_one(il_graph *g, const pu_shapes *s, int k, il_pass_stats *st) {
    const il_node *m = &g->nodes[k];
    if (m->n_inputs < 3) return 0;
    int q = m->inputs[0], w = m->inputs[1], z = m->inputs[2], wz = m->n_inputs > 3 ? m->inputs[3] : -1;
    int d = pu_producer(g, q);
    if (!pu_is(g, d, "DynamicQuantizeLinear") || g->nodes[d].n_outputs < 3 || g->nodes[d].outputs[0] != q ||
        g->nodes[d].outputs[2] != z)
        return 0;
    int x = g->nodes[d].inputs[0], a_scale = g->nodes[d].outputs[1];
    const il_tensor *wt = pu_const(g, w), *wzt = wz >= 0 ? pu_const(g, wz) : NULL;
    if (!wt || wt->rank != 2 || (wt->dtype != IL_I8 && wt->dtype != IL_U8) || pu_rank(s, x) < 2) return 0;
    int64_t n = wt->dims[1];
    if (wz >= 0 && (!wzt || wzt->dtype != wt->dtype || wzt->rank > 1 ||
                    (il_tensor_numel(wzt) != 1 && il_tensor_numel(wzt) != n)))
        return 0;
    int cast = pu_sole_consumer(g, m->outputs[0]);
    if (!pu_is(g, cast, "Cast") || il_attr_int(&g->nodes[cast], "to", -1) != 1 /* FLOAT */) return 0;
    int f = g->nodes[cast].outputs[0], mul = pu_sole_consumer(g, f);
    if (!pu_is(g, mul, "Mul")) return 0;
    int scale = pu_other_input(g, mul, f), sm = pu_producer(g, scale);
    int w_scale = pu_is(g, sm, "Mul") ? pu_other_input(g, sm, a_scale) : -1;
    if (w_scale < 0 || w_scale == a_scale || !per_column_f32(g, w_scale, n, 1)) return 0;
    int last = mul, y = g->nodes[mul].outputs[0], bias = -1, add = pu_sole_consumer(g, y);
    if (pu_is(g, add, "Add") && per_column_f32(g, pu_other_input(g, add, y), n, 0)) {
        bias = pu_other_input(g, add, y);
        last = add, y = g->nodes[add].outputs[0];
    }
    int in[5] = {x, w, w_scale, wz, bias}, n_in = bias >= 0 ? 5 : wz >= 0 ? 4 : 3;
    pu_add_node(g, "DynamicQuantizeMatMul", "com.microsoft", k, "_dynq", n_in, in, 1, &y);
    pu_kill(g, last);
    il_pass_count(st, bias >= 0 ? "DynamicQuantizeLinear+MatMulInteger+Cast+Mul+Add -> DynamicQuantizeMatMul"
                                : "DynamicQuantizeLinear+MatMulInteger+Cast+Mul -> DynamicQuantizeMatMul",
                  1);
    return 1;
}

static il_status run(il_graph *g, il_pass_stats *st) {
    pu_shapes s;
    pu_shapes_init(&s, g);
    int n_nodes = g->n_nodes, fused = 0;
    for (int k = 0; k < n_nodes; k++)
        if (pu_is(g, k, "MatMulInteger")) fused += fuse_one(g, &s, k, st);
    if (fused && !il_graph_opset(g, "com.microsoft")) il_graph_set_opset(g, "com.microsoft", 1);
    pu_shapes_free(&s);
    return IL_OK;
}

const il_pass il_pass_fuse_dynq = {
    "fuse-dynamic-q",
    "DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul [-> Add] (quantize_dynamic's graph) -> "
    "com.microsoft DynamicQuantizeMatMul, bit for bit",
    run,
};

/* ---------------------------------------------------------------- lowering (lower-fused) */

static int lowered_value(il_graph *g, int like, const char *suffix, il_dtype dt) {
    char nm[600];
    snprintf(nm, sizeof nm, "%s%s", g->values[like].name, suffix);
    int v = pu_new_value(g, nm, -1);
    g->values[v].dtype = dt;
    return v;
}

int il_dynq_lower(il_graph *g, int k) {
    const il_node *n = &g->nodes[k];
    if (n->dead || strcmp(n->domain, "com.microsoft") || strcmp(n->op_type, "DynamicQuantizeMatMul") || n->n_inputs < 3)
        return 0;
    int x = n->inputs[0], w = n->inputs[1], ws = n->inputs[2], wz = n->n_inputs > 3 ? n->inputs[3] : -1;
    int bias = n->n_inputs > 4 ? n->inputs[4] : -1, y = n->outputs[0];
    il_graph_remove_node(g, k); /* first, so the chain's last node can write y; n is not used past here */
    int qo[3] = {lowered_value(g, y, "_a_quantized", IL_U8), lowered_value(g, y, "_a_scale", IL_F32),
                 lowered_value(g, y, "_a_zero_point", IL_U8)};
    pu_add_node(g, "DynamicQuantizeLinear", "", k, "_dql", 1, &x, 3, qo);
    int mi[4] = {qo[0], w, qo[2], wz}, acc = lowered_value(g, y, "_int32", IL_I32);
    pu_add_node(g, "MatMulInteger", "", k, "_mmint", wz >= 0 ? 4 : 3, mi, 1, &acc);
    int f = lowered_value(g, y, "_float", IL_F32);
    il_node_set_int(g, pu_add_node(g, "Cast", "", k, "_cast", 1, &acc, 1, &f), "to", IL_F32);
    int si[2] = {qo[1], ws}, scale = lowered_value(g, y, "_scale", IL_F32);
    pu_add_node(g, "Mul", "", k, "_scale", 2, si, 1, &scale);
    int mu[2] = {f, scale}, prod = bias >= 0 ? lowered_value(g, y, "_unbiased", IL_F32) : y;
    pu_add_node(g, "Mul", "", k, "_rescale", 2, mu, 1, &prod);
    if (bias >= 0) pu_add_node(g, "Add", "", k, "_bias", 2, (int[]){prod, bias}, 1, &y);
    return 1;
}
