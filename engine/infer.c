/*
 * infer.c - shape and dtype inference over a whole graph, with plan-time folding.
 *
 * Nodes are visited in topological order; each op's infer function sees its inputs' shapes
 * (and their data where already known) and sets its outputs'. When every input of a node is
 * known and the result is small, the node's reference kernel runs right here, so shape
 * arithmetic (Shape -> Gather -> Concat -> Reshape, as exporters write it) becomes constant
 * and the planner sees static shapes.
 */
#include "ops/kernel.h"

#include <stdio.h>

/* Fold a node at plan time only when its outputs are at most this many elements: enough for
 * shape arithmetic, small enough that plan creation stays cheap. */
#define FOLD_LIMIT 4096
/* ... and up to this many when no input is a large graph constant: values computed from shapes
 * alone, like the attention masks transformers exports build from the sequence length (Range ->
 * GreaterOrEqual -> Expand -> Where to [batch, 1, seq, seq] floats, run on every inference
 * otherwise: 0.6 ms of ViT-tiny's 21 at batch 1). Weights (large constants) are left to the
 * fold_constants pass, so -O0 stays as it is. */
#define FOLD_SHAPE_LIMIT (1 << 22)

static int is_half(il_dtype t) { return t == IL_F16 || t == IL_BF16; }

static int64_t bind_dim(const il_value *x, int i, int64_t batch, const il_bind *binds, int nb) {
    if (x->dims[i] >= 0) return x->dims[i];
    if (x->dim_param[i])
        for (int b = 0; b < nb; b++)
            if (binds[b].name && !strcmp(binds[b].name, x->dim_param[i])) return binds[b].value;
    if (i == 0 && batch > 0) return batch;
    return -1;
}

void il_shapes_free(il_shapes *s) {
    if (!s) return;
    for (int v = 0; v < s->n_values; v++)
        if (s->owned[v]) il_tensor_free(s->known[v]);
    free(s->info);
    free(s->known);
    free(s->owned);
    free(s->folded);
    free(s);
}

/* Run one node's kernel on known inputs; outputs become known tensors. */
static il_status fold_node(const il_graph *g, const il_op *op, il_kctx *c, il_shapes *s, int k) {
    const il_node *n = &g->nodes[k];
    il_tensor *outs[16] = {0};
    il_tensor *saved[16];
    il_status st = IL_OK;
    for (int i = 0; i < n->n_outputs; i++) {
        saved[i] = c->out[i];
        if (!c->out[i]) continue;
        if (op->flags & IL_OPF_DYNAMIC_OUT) {
            outs[i] = calloc(1, sizeof(il_tensor));
            outs[i]->dtype = c->out[i]->dtype;
        } else {
            outs[i] = il_tensor_new(c->out[i]->dtype, c->out[i]->rank, c->out[i]->dims);
            if (!outs[i]) { st = IL_ERR_OOM; goto done; }
        }
        c->out[i] = outs[i];
    }
    c->infer_only = 0;
    st = op->ref(c);
    c->infer_only = 1;
done:
    for (int i = 0; i < n->n_outputs; i++) {
        c->out[i] = saved[i];
        int v = n->outputs[i];
        if (!outs[i]) continue;
        if (st || v < 0) { il_tensor_free(outs[i]); continue; }
        il_tensor *info = &s->info[v];
        info->dtype = outs[i]->dtype;
        info->rank = outs[i]->rank;
        memcpy(info->dims, outs[i]->dims, sizeof info->dims);
        s->known[v] = outs[i];
        s->owned[v] = 1;
    }
    return st;
}

/* The core: input dims come from `actual` (one tensor per graph input) when given, else from
 * the graph with symbolic dims bound. */
static il_status infer(const il_graph *g, int64_t batch, const il_bind *binds, int nb, il_tensor *const *actual,
                       il_shapes **out) {
    il_shapes *s = calloc(1, sizeof *s);
    s->n_values = g->n_values;
    s->info = calloc((size_t)g->n_values + 1, sizeof(il_tensor));
    s->known = calloc((size_t)g->n_values + 1, sizeof(il_tensor *));
    s->owned = calloc((size_t)g->n_values + 1, 1);
    s->folded = calloc((size_t)g->n_nodes + 1, 1);
    *out = NULL;
    for (int v = 0; v < g->n_values; v++) {
        const il_value *x = &g->values[v];
        il_tensor *t = &s->info[v];
        if (x->constant) {
            t->dtype = x->constant->dtype;
            t->rank = x->constant->rank;
            memcpy(t->dims, x->constant->dims, sizeof t->dims);
            s->known[v] = x->constant;
        } else if (x->is_input) {
            t->dtype = x->dtype;
            t->rank = x->rank;
            for (int i = 0; i < x->rank && i < IL_MAX_RANK; i++) t->dims[i] = bind_dim(x, i, batch, binds, nb);
            for (int j = 0; actual && j < g->n_inputs; j++)
                if (g->inputs[j] == v && actual[j]) {
                    t->rank = actual[j]->rank;
                    memcpy(t->dims, actual[j]->dims, sizeof t->dims);
                }
        } else {
            t->rank = -1;
        }
    }
    il_status st = IL_OK;
    for (int j = 0; j < g->n_inputs && !st; j++) {
        const il_tensor *t = &s->info[g->inputs[j]];
        if (t->rank >= 0 && (st = il_shape_check(t->rank, t->dims)))
            il_error_wrap(st, "graph input '%s': ", g->values[g->inputs[j]].name);
    }
    int *order = malloc((size_t)(g->n_nodes + 1) * sizeof(int)), m = 0;
    if (!st) st = il_graph_topo_order(g, order, &m);
    for (int j = 0; j < m && !st; j++) {
        int k = order[j];
        const il_node *n = &g->nodes[k];
        const il_op *op = il_op_find(n->domain, n->op_type);
        if (!op) {
            st = il_error(IL_ERR_UNSUPPORTED, "node '%s': unsupported op %s%s%s", n->name, n->domain,
                          n->domain[0] ? "." : "", n->op_type);
            break;
        }
        if ((st = il_node_check(g, k))) break; /* callers may infer without il_graph_verify */
        if (n->n_inputs > 64 || n->n_outputs > 16) {
            st = il_error(IL_ERR_UNSUPPORTED, "node '%s' (%s): too many inputs or outputs", n->name, n->op_type);
            break;
        }
        il_tensor inb[64], outb[16];
        il_tensor *in[64], *o[16];
        int all_known = 1, half = 0;
        for (int i = 0; i < n->n_inputs; i++) {
            int v = n->inputs[i];
            if (v < 0) { in[i] = NULL; continue; }
            inb[i] = s->info[v];
            inb[i].data = s->known[v] ? s->known[v]->data : NULL;
            inb[i].owns_data = 0;
            if (!inb[i].data) all_known = 0;
            if (is_half(inb[i].dtype) && !(op->flags & IL_OPF_ANY_DTYPE)) {
                inb[i].dtype = IL_F32;
                inb[i].data = NULL; /* data stays half: no folding through a conversion */
                half = 1;
                all_known = 0;
            }
            if (!il_dtype_is_supported(inb[i].dtype)) {
                const il_value *x = &g->values[v];
                st = il_error(IL_ERR_UNSUPPORTED, "node '%s' (%s): input '%s' has unsupported dtype %s", n->name,
                              n->op_type, x->name, il_dtype_name(inb[i].dtype));
                break;
            }
            in[i] = &inb[i];
        }
        if (st) break;
        for (int i = 0; i < n->n_outputs; i++) {
            if (n->outputs[i] < 0) { o[i] = NULL; continue; }
            memset(&outb[i], 0, sizeof outb[i]);
            outb[i].rank = -1;
            o[i] = &outb[i];
        }
        il_kctx c = {.node = n, .opset = il_graph_opset(g, n->domain), .n_in = n->n_inputs, .n_out = n->n_outputs,
                     .in = in, .out = o, .threads = 1, .infer_only = 1};
        if (c.opset == 0 && (!n->domain[0] || !strcmp(n->domain, "ai.onnx"))) c.opset = 1;
        st = op->infer(&c);
        if (st) break;
        int small = 1, derived = 1; /* derived: outputs within FOLD_SHAPE_LIMIT */
        for (int i = 0; i < n->n_outputs && !st; i++) {
            if (!o[i] || o[i]->rank < 0) continue;
            if (o[i]->rank > IL_MAX_RANK)
                st = il_error(IL_ERR_UNSUPPORTED, "node '%s' (%s): output %d has rank %d (at most %d supported)",
                              n->name, n->op_type, i, o[i]->rank, IL_MAX_RANK);
            else if ((st = il_shape_check(o[i]->rank, o[i]->dims)))
                il_error_wrap(st, "node '%s' (%s) output %d: ", n->name, n->op_type, i);
        }
        for (int i = 0; i < n->n_outputs && !st; i++)
            if (o[i] && o[i]->dtype != IL_UNDEFINED && !il_dtype_is_supported(o[i]->dtype))
                st = il_error(IL_ERR_UNSUPPORTED, "node '%s' (%s): output %d would have dtype %s, which the engine "
                              "does not support", n->name, n->op_type, i, il_dtype_name(o[i]->dtype));
        if (st) break;
        for (int i = 0; i < n->n_outputs; i++) {
            if (!o[i]) continue;
            if (half && o[i]->dtype == IL_F32) o[i]->dtype = IL_F16;
            if (!il_shape_known(o[i]) || il_tensor_numel(o[i]) > FOLD_LIMIT) small = 0;
            if (!il_shape_known(o[i]) || il_tensor_numel(o[i]) > FOLD_SHAPE_LIMIT) derived = 0;
            s->info[n->outputs[i]] = *o[i];
            s->info[n->outputs[i]].data = NULL;
        }
        /* Shape and Size read only dims, so they fold as soon as their input's shape is known */
        int shape_only = (!strcmp(n->op_type, "Shape") || !strcmp(n->op_type, "Size")) && !n->domain[0] &&
                         n->n_inputs == 1 && in[0] && il_shape_known(in[0]);
        if (shape_only) in[0]->data = NULL;
        int dyn = (op->flags & IL_OPF_DYNAMIC_OUT) != 0;
        if (!half && (all_known || shape_only) && (small || dyn || derived) && n->n_outputs <= 16) {
            int64_t in_elems = 0, const_elems = 0;
            for (int i = 0; i < n->n_inputs; i++)
                if (in[i]) {
                    in_elems += il_tensor_numel(in[i]);
                    if (!s->owned[n->inputs[i]]) const_elems += il_tensor_numel(in[i]);
                }
            if (shape_only || ((small || dyn) && in_elems <= 16 * FOLD_LIMIT) || (derived && const_elems <= FOLD_LIMIT)) {
                st = fold_node(g, op, &c, s, k);
                if (st) break;
                s->folded[k] = 1;
            }
        }
    }
    free(order);
    if (st) { il_shapes_free(s); return st; }
    *out = s;
    return IL_OK;
}

il_status il_infer_shapes(const il_graph *g, int64_t batch, const il_bind *binds, int nb, il_shapes **out) {
    return infer(g, batch, binds, nb, NULL, out);
}

il_status il_infer_shapes_for(const il_graph *g, il_tensor *const *inputs, il_shapes **out) {
    return infer(g, 0, NULL, 0, inputs, out);
}

void il_shapes_apply(const il_shapes *s, il_graph *g) {
    for (int v = 0; v < g->n_values && v < s->n_values; v++) {
        il_value *x = &g->values[v];
        const il_tensor *t = &s->info[v];
        if (x->constant || t->dtype == IL_UNDEFINED) continue;
        if (x->is_input && x->rank >= 0) continue; /* keep symbolic names on inputs */
        x->dtype = t->dtype;
        x->rank = t->rank;
        for (int i = 0; i < t->rank && i < IL_MAX_RANK; i++) x->dims[i] = t->dims[i];
    }
}

int64_t il_node_macs(const il_graph *g, const il_shapes *s, int k) {
    const il_node *n = &g->nodes[k];
    if (n->domain[0] && strcmp(n->domain, "ai.inferlab") && strcmp(n->op_type, "QGemm") &&
        strcmp(n->op_type, "DynamicQuantizeMatMul"))
        return 0;
    const il_tensor *y = n->n_outputs > 0 && n->outputs[0] >= 0 ? &s->info[n->outputs[0]] : NULL;
    const il_tensor *x = n->n_inputs > 0 && n->inputs[0] >= 0 ? &s->info[n->inputs[0]] : NULL;
    int wi = !strcmp(n->op_type, "QLinearConv") ? 3 : 1; /* after x's scale and zero point */
    const il_tensor *w = n->n_inputs > wi && n->inputs[wi] >= 0 ? &s->info[n->inputs[wi]] : NULL;
    if (!y || !il_shape_known(y)) return 0;
    const char *op = n->op_type;
    if (!strcmp(op, "Conv") || !strncmp(op, "FusedConv", 9) || !strcmp(op, "ScaledConv") || !strcmp(op, "PooledConv") || !strcmp(op, "ConvInteger") || !strcmp(op, "QLinearConv")) {
        if (!w || !il_shape_known(w) || w->rank < 2) return 0;
        /* each output element takes (Cin/group) * prod(kernel) MACs = numel(W)/Cout */
        return il_tensor_numel(y) * (il_tensor_numel(w) / (w->dims[0] ? w->dims[0] : 1));
    }
    if (!strcmp(op, "ConvTranspose")) {
        if (!x || !il_shape_known(x) || !w || !il_shape_known(w)) return 0;
        return il_tensor_numel(x) * (il_tensor_numel(w) / (w->dims[0] ? w->dims[0] : 1));
    }
    if (!strcmp(op, "Gemm") || !strcmp(op, "FusedGemm") || !strcmp(op, "QGemm")) {
        if (!x || !il_shape_known(x) || x->rank != 2) return 0;
        int ta = (int)il_attr_int(n, "transA", 0);
        return il_tensor_numel(y) * x->dims[ta ? 0 : 1];
    }
    if (!strcmp(op, "Attention")) { /* Q[..,Sq,D] K^T[..,D,Sk] and P[..,Sq,Sk] V[..,Sk,Dv] */
        if (!x || !il_shape_known(x) || !w || !il_shape_known(w) || x->rank < 2 || w->rank < 1) return 0;
        int64_t d = x->dims[x->rank - 1], sk = w->dims[w->rank - 1], dv = y->dims[y->rank - 1];
        return il_tensor_numel(y) / (dv ? dv : 1) * sk * (d + dv);
    }
    if (!strcmp(op, "MultiHeadAttention")) { /* Q [B,Sq,H,D], K [B,Sk,H,D], Y [B,Sq,H,Dv] */
        if (!x || !il_shape_known(x) || !w || !il_shape_known(w) || x->rank != 4 || w->rank != 4) return 0;
        int64_t dv = y->dims[3];
        return il_tensor_numel(y) / (dv ? dv : 1) * w->dims[1] * (x->dims[3] + dv);
    }
    if (!strcmp(op, "MatMul") || !strcmp(op, "MatMulInteger") || !strcmp(op, "FusedMatMul") || !strcmp(op, "QLinearMatMul") ||
        !strcmp(op, "DynamicQuantizeMatMul")) {
        if (!x || !il_shape_known(x) || x->rank < 1) return 0;
        return il_tensor_numel(y) * x->dims[x->rank - 1];
    }
    return 0;
}
