/*
 * fuse_qdq.c - pass "fuse-qdq": the QDQ patterns of a quantized model (what `inferlab quantize`
 * and ONNX Runtime's quantizer write) become integer ops with INT8 kernels (engine/ops/qfused.c,
 * engine/cpu/qgemm_*.c):
 *
 *   Q(act?(Conv(DQ(x), DQ(w)[, bias])))            -> QConv(x, .., w, .., y_scale, y_zp, B)
 *   Q(act?(MatMul(DQ(a), DQ(b)) [+ bias]))         -> QMatMul(a, .., b, .., y_scale, y_zp, bias)
 *   Q(act?(Gemm(DQ(a), DQ(b)[, bias])))            -> QMatMul (transB: b transposed once here)
 *   Q(act?(Add(DQ(a), DQ(b))))                     -> QAdd
 *   Q(op(DQ(x))), the same scale and zero point    -> op(x)   MaxPool, Reshape, Flatten,
 *       Transpose, Squeeze, Unsqueeze; Concat when every input has them too
 *
 * act is Relu or Clip, folded into the output clamp. Weights must be constant int8/uint8 behind
 * their DequantizeLinear, per tensor or per output channel (axis 0 of a Conv weight, the columns
 * of a MatMul's b); activations per tensor. A bias is the int32 constant behind a DQ whose
 * scale is x_scale * w_scale (ONNX Runtime's layout; another scale is rescaled), or a float
 * constant, quantized here with that scale -- the one place the result can move by a unit, as
 * it is the kernel's bias rather than the float graph's. Anything else keeps its Q and DQ.
 *
 * The pass is lossy (il_pass.lossy): the QDQ graph computes its sums in float and the fused ops
 * in integers, so outputs agree within one unit of the 8-bit result (tests/test_fuse_qdq.c),
 * not within float tolerances.
 * It runs first in -O2, before fold-constants would turn DQ(weight) into float weights.
 * lower-fused (--portable) turns the fused ops back into QDQ (il_qdq_lower, below).
 */
#include "builtin.h"
#include "pass_util.h"

#include <stdio.h>

/* A DequantizeLinear with constant scale and zero point, and what it reads. */
typedef struct {
    int node, xq, scale_v, zp_v; /* zp_v -1 when omitted */
    const il_tensor *scale, *zp;
    int64_t axis;
    il_dtype dt;
} dq_t;

static int is_8bit(il_dtype t) { return t == IL_U8 || t == IL_I8; }

/* Node k's scale (input 1) and zero point (input 2, may be omitted): constants, float32 scale. */
static int read_params(const il_graph *g, int k, dq_t *d) {
    const il_node *n = &g->nodes[k];
    d->node = k, d->scale_v = n->inputs[1];
    d->zp_v = n->n_inputs > 2 ? n->inputs[2] : -1;
    d->scale = pu_const(g, d->scale_v);
    d->zp = d->zp_v >= 0 ? pu_const(g, d->zp_v) : NULL;
    d->axis = il_attr_int(n, "axis", 1);
    return d->scale && d->scale->dtype == IL_F32 && (d->zp_v < 0 || d->zp) && !il_attr_int(n, "block_size", 0);
}

static int dq_of(const il_graph *g, const pu_shapes *s, int v, dq_t *d) {
    int k = pu_producer(g, v);
    if (!pu_is(g, k, "DequantizeLinear") || !read_params(g, k, d)) return 0;
    d->xq = g->nodes[k].inputs[0];
    const il_tensor *c = pu_const(g, d->xq);
    d->dt = c ? c->dtype : pu_dtype(s, d->xq);
    return !d->zp || (d->zp->dtype == d->dt && il_tensor_numel(d->zp) == il_tensor_numel(d->scale));
}

static int per_tensor(const dq_t *d) { return il_tensor_numel(d->scale) == 1; }

/* Per tensor, or one scale per slice along `axis` of a rank-r tensor with n slices. */
static int per_axis_ok(const dq_t *d, int r, int axis, int64_t n) {
    if (per_tensor(d)) return 1;
    int64_t a = d->axis < 0 ? d->axis + r : d->axis;
    return a == axis && d->scale->rank == 1 && d->scale->dims[0] == n;
}

static double zp_at(const il_tensor *zp, int64_t i) { return zp ? il_tensor_get(zp, il_tensor_numel(zp) == 1 ? 0 : i) : 0; }
static double sc_at(const il_tensor *s, int64_t i) { return il_tensor_get(s, il_tensor_numel(s) == 1 ? 0 : i); }

/* A QuantizeLinear per tensor with constant parameters; y's dtype in q->dt. */
static int q_of(const il_graph *g, int k, dq_t *q) {
    if (!pu_is(g, k, "QuantizeLinear") || !read_params(g, k, q)) return 0;
    const il_node *n = &g->nodes[k];
    q->xq = n->outputs[0];
    if (il_tensor_numel(q->scale) != 1 || il_node_attr(n, "output_dtype") || il_attr_int(n, "saturate", 1) != 1)
        return 0;
    q->dt = q->zp ? q->zp->dtype : IL_U8;
    q->axis = 0;
    return is_8bit(q->dt) && (!q->zp || il_tensor_numel(q->zp) == 1);
}

/* The zero-point value of a DQ/Q, or a new zero scalar of its dtype when it had none. */
static int zp_value(il_graph *g, const dq_t *d) {
    if (d->zp_v >= 0) return d->zp_v;
    return pu_add_const(g, "zero_point", il_tensor_new(d->dt, 0, NULL));
}

/* The int32 bias [n] of a product whose sums have scale in_scale * w_scale[j], from value b:
 * DQ(int32 constant) or a float constant. NULL when b is neither. */
static il_tensor *int_bias(const il_graph *g, const pu_shapes *s, int b, int64_t n, double in_scale, const dq_t *w) {
    dq_t db;
    const il_tensor *bc = NULL;
    int from_dq = dq_of(g, s, b, &db);
    if (from_dq) {
        bc = pu_const(g, db.xq);
        if (!bc || bc->dtype != IL_I32 || !per_axis_ok(&db, 1, 0, n)) return NULL;
        for (int64_t j = 0; db.zp && j < il_tensor_numel(db.zp); j++)
            if (il_tensor_get(db.zp, j) != 0) return NULL;
    } else {
        bc = pu_const(g, b);
        if (!bc || bc->dtype != IL_F32) return NULL;
    }
    if (il_tensor_numel(bc) != n || (bc->rank > 1 && bc->dims[bc->rank - 1] != n)) return NULL;
    il_tensor *t = il_tensor_new(IL_I32, 1, (int64_t[]){n});
    for (int64_t j = 0; t && j < n; j++) {
        double target = in_scale * sc_at(w->scale, j), v = il_tensor_get(bc, j);
        if (from_dq) {
            double bs = sc_at(db.scale, j);
            v = fabs(bs - target) <= 1e-6 * fabs(target) ? v : rint(v * bs / target);
        } else {
            v = rint(v / target);
        }
        if (!(fabs(v) < 2147483647.0)) {
            il_tensor_free(t);
            return NULL;
        }
        ((int32_t *)t->data)[j] = (int32_t)v;
    }
    return t;
}

/* Strip a Relu/Clip between value v and its reader `reader`: returns the value before it and
 * sets *act (NULL: none). -1 when v is used elsewhere. */
static int strip_act(const il_graph *g, int v, int reader, const char **act, float *p, int *np) {
    *act = NULL, *np = 0;
    if (pu_sole_consumer(g, v) != reader) return -1;
    int k = pu_producer(g, v);
    if ((pu_is(g, k, "Relu") || pu_is(g, k, "Clip")) && pu_activation(g, k, act, p, np)) {
        v = g->nodes[k].inputs[0];
        if (pu_sole_consumer(g, v) != k) return -1;
    }
    return v;
}

/* The per-tensor Q node qk (into *q) and the value it quantizes, before a Relu/Clip (its name
 * and parameters in *act, p, *np); -1 when qk is no such Q or the value has other readers. */
static int q_input(const il_graph *g, int qk, dq_t *q, const char **act, float *p, int *np) {
    if (!q_of(g, qk, q)) return -1;
    return strip_act(g, g->nodes[qk].inputs[0], qk, act, p, np);
}

/* Conv / MatMul / Gemm (+ bias Add for MatMul) between DQs and the Q node qk. */
static int fuse_product(il_graph *g, const pu_shapes *s, int qk, il_pass_stats *st) {
    dq_t q, dx, dw;
    const char *act;
    float prm[2];
    int np, v = q_input(g, qk, &q, &act, prm, &np);
    if (v < 0) return 0;
    int p = pu_producer(g, v), add_bias = -1;
    if (pu_is(g, p, "Add")) { /* MatMul + bias */
        const il_node *a = &g->nodes[p];
        int mm = pu_producer(g, a->inputs[0]);
        int side = pu_is(g, mm, "MatMul") ? 1 : (mm = pu_producer(g, a->inputs[1]), pu_is(g, mm, "MatMul")) ? 0 : -1;
        if (side < 0 || pu_sole_consumer(g, g->nodes[mm].outputs[0]) != p) return 0;
        add_bias = a->inputs[side];
        p = mm;
    }
    int conv = pu_is(g, p, "Conv"), gemm = pu_is(g, p, "Gemm"), mm = pu_is(g, p, "MatMul");
    if (!conv && !gemm && !mm) return 0;
    const il_node *n = &g->nodes[p];
    if (n->n_outputs != 1 || !dq_of(g, s, n->inputs[0], &dx) || !per_tensor(&dx) || !is_8bit(dx.dt) ||
        !dq_of(g, s, n->inputs[1], &dw))
        return 0;
    const il_tensor *wc = pu_const(g, dw.xq);
    if (!wc || !is_8bit(wc->dtype) || wc->rank < 2) return 0;
    int bias_v = conv && n->n_inputs > 2 ? n->inputs[2] : add_bias;
    int trans_b = 0;
    int64_t nout;
    if (conv) {
        nout = wc->dims[0];
        if (wc->rank < 3 || !per_axis_ok(&dw, wc->rank, 0, nout)) return 0;
    } else {
        if (gemm) {
            trans_b = il_attr_int(n, "transB", 0) != 0;
            if (il_attr_int(n, "transA", 0) || il_attr_float(n, "alpha", 1) != 1 ||
                (n->n_inputs > 2 && n->inputs[2] >= 0 && il_attr_float(n, "beta", 1) != 1))
                return 0;
            bias_v = n->n_inputs > 2 ? n->inputs[2] : -1;
        }
        if (wc->rank != 2) return 0;
        nout = wc->dims[trans_b ? 0 : 1];
        if (!per_axis_ok(&dw, 2, trans_b ? 0 : 1, nout) || pu_rank(s, n->inputs[0]) < 2) return 0;
    }
    il_tensor *bias = NULL;
    if (bias_v >= 0 && !(bias = int_bias(g, s, bias_v, nout, sc_at(dx.scale, 0), &dw))) return 0;
    int wq = dw.xq;
    if (trans_b) { /* b as [K, N], the layout QMatMul reads */
        il_tensor *t = il_tensor_new(wc->dtype, 2, (int64_t[]){wc->dims[1], wc->dims[0]});
        for (int64_t i = 0; i < wc->dims[0]; i++)
            for (int64_t j = 0; j < wc->dims[1]; j++)
                ((uint8_t *)t->data)[j * wc->dims[0] + i] = ((const uint8_t *)wc->data)[i * wc->dims[1] + j];
        wq = pu_add_const(g, "weight_t", t);
    }
    int in[9] = {dx.xq, dx.scale_v, zp_value(g, &dx), wq, dw.scale_v, zp_value(g, &dw), q.scale_v, zp_value(g, &q),
                 bias ? pu_add_const(g, conv ? "qconv_bias" : "qmatmul_bias", bias) : -1};
    int y = q.xq;
    int j = pu_add_node(g, conv ? "QConv" : "QMatMul", IL_DOMAIN, p, "_int8", bias ? 9 : 8, in, 1, &y);
    if (conv) pu_copy_attrs(g, j, p, NULL);
    if (act) pu_set_activation(g, j, act, prm, np);
    pu_use_fused_domain(g);
    pu_kill(g, qk);
    il_pass_count(st, conv ? "Conv -> QConv" : "MatMul/Gemm -> QMatMul", 1);
    return 1;
}

/* Add(DQ(a), DQ(b)) [+ act] -> Q. */
static int fuse_add(il_graph *g, const pu_shapes *s, int qk, il_pass_stats *st) {
    dq_t q, da, db;
    const char *act;
    float prm[2];
    int np, v = q_input(g, qk, &q, &act, prm, &np), p = v >= 0 ? pu_producer(g, v) : -1;
    if (!pu_is(g, p, "Add")) return 0;
    const il_node *n = &g->nodes[p];
    if (!dq_of(g, s, n->inputs[0], &da) || !dq_of(g, s, n->inputs[1], &db) || !per_tensor(&da) || !per_tensor(&db) ||
        da.dt != q.dt || !is_8bit(db.dt))
        return 0;
    int in[8] = {da.xq, da.scale_v, zp_value(g, &da), db.xq, db.scale_v, zp_value(g, &db), q.scale_v, zp_value(g, &q)};
    int y = q.xq;
    int j = pu_add_node(g, "QAdd", IL_DOMAIN, p, "_int8", 8, in, 1, &y);
    if (act) pu_set_activation(g, j, act, prm, np);
    pu_use_fused_domain(g);
    pu_kill(g, qk);
    il_pass_count(st, "Add -> QAdd", 1);
    return 1;
}

/* Q(op(DQ(x))) with equal parameters: op runs on x itself. */
static int same_params(const dq_t *a, const dq_t *b) {
    return a->dt == b->dt && per_tensor(a) && per_tensor(b) && sc_at(a->scale, 0) == sc_at(b->scale, 0) &&
           zp_at(a->zp, 0) == zp_at(b->zp, 0);
}

static int fuse_passthrough(il_graph *g, const pu_shapes *s, int qk, il_pass_stats *st) {
    static const char *const ops[] = {"MaxPool", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Concat", NULL};
    dq_t q, dx;
    if (!q_of(g, qk, &q)) return 0;
    int v = g->nodes[qk].inputs[0], p = pu_producer(g, v), op = -1;
    if (pu_sole_consumer(g, v) != qk || p < 0) return 0;
    for (int i = 0; ops[i] && op < 0; i++)
        if (pu_is(g, p, ops[i])) op = i;
    if (op < 0 || pu_used_outputs(g, p) != 1 || g->nodes[p].outputs[0] != v) return 0;
    int concat = !strcmp(ops[op], "Concat"), n_in = g->nodes[p].n_inputs, in[64];
    if (n_in > 64) return 0;
    for (int i = 0; i < n_in; i++) {
        in[i] = g->nodes[p].inputs[i];
        if (i > 0 && !concat) continue; /* shape, perm, axes: unchanged */
        if (!dq_of(g, s, in[i], &dx) || !same_params(&dx, &q)) return 0;
        in[i] = dx.xq;
    }
    int y = q.xq;
    int j = pu_add_node(g, ops[op], "", p, "_int8", n_in, in, 1, &y);
    pu_copy_attrs(g, j, p, NULL);
    pu_kill(g, qk);
    il_pass_count(st, "op kept in int8 (Q/DQ around it dropped)", 1);
    return 1;
}

static il_status run(il_graph *g, il_pass_stats *st) {
    pu_shapes s;
    pu_shapes_init(&s, g);
    int order_n = 0, *order = malloc((size_t)(g->n_nodes ? g->n_nodes : 1) * sizeof(int));
    il_status rs = order ? il_graph_topo_order(g, order, &order_n) : il_error(IL_ERR_OOM, "out of memory");
    /* in topological order, so a fused node's output is ready for the DQ its reader starts with */
    for (int i = 0; !rs && i < order_n; i++) {
        int k = order[i];
        if (g->nodes[k].dead || !pu_is(g, k, "QuantizeLinear")) continue;
        if (!fuse_product(g, &s, k, st) && !fuse_add(g, &s, k, st)) fuse_passthrough(g, &s, k, st);
    }
    free(order);
    pu_shapes_free(&s);
    return rs;
}

const il_pass il_pass_fuse_qdq = {
    .name = "fuse-qdq",
    .summary = "QDQ patterns -> integer ops (lossy: integer sums): Conv/MatMul/Gemm (+Relu/Clip) -> QConv/QMatMul, "
               "Add -> QAdd, MaxPool/Reshape/Flatten/Transpose/Concat kept in int8",
    .run = run,
    .lossy = 1,
};

/* ---------------------------------------------------------------- lowering (lower-fused) */

/* DQ(x, scale, zp) [axis] into a new float value; the node named after `like` + suffix (ONNX
 * Runtime refuses two nodes of one name). */
static int emit_dq(il_graph *g, int like, const char *suffix, int x, int scale, int zp, int axis) {
    int out = pu_new_value(g, g->values[x].name, -1), in[3] = {x, scale, zp};
    int j = pu_add_node(g, "DequantizeLinear", "", like, suffix, zp >= 0 ? 3 : 2, in, 1, &out);
    if (axis >= 0) il_node_set_int(g, j, "axis", axis);
    return out;
}

int il_qdq_lower(il_graph *g, int k) {
    il_node *n = &g->nodes[k];
    int conv = !strcmp(n->op_type, "QConv"), mm = !strcmp(n->op_type, "QMatMul"), add = !strcmp(n->op_type, "QAdd");
    if (!conv && !mm && !add) return 0;
    int in[9] = {-1, -1, -1, -1, -1, -1, -1, -1, -1}, n_in = n->n_inputs < 9 ? n->n_inputs : 9, y = n->outputs[0];
    memcpy(in, n->inputs, (size_t)n_in * sizeof(int));
    const char *act = il_attr_string(n, "activation", NULL);
    const float *pp;
    int np = il_attr_floats(n, "activation_params", &pp);
    float prm[2] = {np > 0 ? pp[0] : 0, np > 1 ? pp[1] : 0};
    il_graph_remove_node(g, k); /* first, so the lowered nodes can write its output */
    const il_tensor *ws = pu_const(g, in[4]);
    int per_ch = ws && il_tensor_numel(ws) > 1;
    int a = emit_dq(g, k, "_dq_a", in[0], in[1], in[2], -1);
    int b = emit_dq(g, k, "_dq_b", in[3], in[4], in[5], per_ch ? (conv ? 0 : 1) : -1);
    int v = pu_new_value(g, g->nodes[k].name, -1);
    int j = pu_add_node(g, conv ? "Conv" : mm ? "MatMul" : "Add", "", k, "_f", conv && in[8] >= 0 ? 3 : 2,
                        (int[]){a, b, -1}, 1, &v);
    if (conv) pu_copy_attrs(g, j, k, (const char *const[]){"activation", "activation_params", NULL});
    if (in[8] >= 0) { /* the int32 bias, with scale x_scale * w_scale */
        const il_tensor *xs = pu_const(g, in[1]), *bt = pu_const(g, in[8]);
        int64_t nb = bt ? il_tensor_numel(bt) : 0;
        il_tensor *bs = il_tensor_new(IL_F32, 1, &nb);
        for (int64_t i = 0; i < nb; i++) ((float *)bs->data)[i] = (float)(il_tensor_get(xs, 0) * sc_at(ws, i));
        int bdq = emit_dq(g, k, "_dq_bias", in[8], pu_add_const(g, "bias_scale", bs), -1, 0);
        if (conv) {
            g->nodes[j].inputs[2] = bdq;
            g->nodes[j].n_inputs = 3;
        } else {
            int v2 = pu_new_value(g, g->nodes[k].name, -1);
            pu_add_node(g, "Add", "", k, "_bias", 2, (int[]){v, bdq}, 1, &v2);
            v = v2;
        }
    }
    if (act) {
        int v2 = pu_new_value(g, g->nodes[k].name, -1);
        if (!strcmp(act, "Relu")) pu_add_node(g, "Relu", "", k, "_act", 1, &v, 1, &v2);
        else {
            il_tensor *lo = il_tensor_new(IL_F32, 0, NULL), *hi = il_tensor_new(IL_F32, 0, NULL);
            ((float *)lo->data)[0] = prm[0], ((float *)hi->data)[0] = prm[1];
            int cin[3] = {v, pu_add_const(g, "clip_min", lo), pu_add_const(g, "clip_max", hi)};
            pu_add_node(g, "Clip", "", k, "_act", 3, cin, 1, &v2);
        }
        v = v2;
    }
    pu_add_node(g, "QuantizeLinear", "", k, "_q", 3, (int[]){v, in[6], in[7]}, 1, &y);
    return 1;
}
