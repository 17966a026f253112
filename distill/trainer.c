/*
 * trainer.c - the training executor over the graph IR.
 *
 * Forward runs every node with the engine's own kernels (the registry's pick, through an
 * il_kctx, exactly as the inference executor does) but keeps every activation, because the
 * backward kernels (grad_*.c) need them. In training mode BatchNormalization and Dropout run
 * their training forward instead (batch statistics, random masks). Backward walks the nodes
 * in reverse, handing each kernel its outputs' gradients and the gradients of the inputs that
 * need one.
 *
 * What trains: the float initializers in weight slots (see il_trainer_create in distill.h).
 * The graph is cloned and its float constants converted to the trainer's dtype (float32 to
 * train, float64 for gradient checks); il_trainer_export writes float32 back into a clone of
 * the original graph, which stays a plain inference model.
 * With il_trainer_opts.backend = CUDA, forward and backward go to trainer_cuda.c instead.
 */
#include "trainer_impl.h"

#include <stdlib.h>
#include <string.h>

/* Which input slots of an op are trainable weights (a bit per slot; ~0: any float constant
 * that is not a scalar), and which are state buffers. */
static unsigned weight_slots(const char *op) {
    if (!strcmp(op, "Conv") || !strcmp(op, "ConvTranspose")) return 6;
    if (!strcmp(op, "Gemm")) return 7;
    if (!strcmp(op, "MatMul")) return 3;
    if (!strcmp(op, "BatchNormalization") || !strcmp(op, "LayerNormalization") ||
        !strcmp(op, "InstanceNormalization"))
        return 6;
    if (!strcmp(op, "Add") || !strcmp(op, "Sub") || !strcmp(op, "Mul")) return ~0u;
    return 0;
}

il_tensor *tr_tensor_struct(void) {
    il_tensor *t = calloc(1, sizeof *t);
    t->rank = -1;
    return t;
}

/* Make t hold a tensor of dtype/shape, reusing its buffer when it is big enough. */
il_status tr_ensure(il_tensor *t, size_t *cap, il_dtype dt, int rank, const int64_t *dims) {
    t->dtype = dt;
    t->rank = rank;
    memcpy(t->dims, dims, (size_t)rank * sizeof *dims);
    size_t need = il_tensor_bytes(t) + 1;
    if (need > *cap) {
        free(t->data);
        t->data = malloc(need);
        if (!t->data) {
            *cap = 0;
            return il_error(IL_ERR_OOM, "out of memory for a %zu-byte activation", need);
        }
        *cap = need;
    }
    return IL_OK;
}

/* A copy of constant c in dtype dt (float constants), or a plain copy (others). */
static il_tensor *convert_const(const il_tensor *c, il_dtype dt) {
    if (!il_dtype_is_float(c->dtype) || c->dtype == dt) return il_tensor_clone(c);
    il_tensor *t = il_tensor_new(dt, c->rank, c->dims);
    if (!t) return NULL;
    for (int64_t i = 0; i < il_tensor_numel(c); i++) il_tensor_set(t, i, il_tensor_get(c, i));
    return t;
}

il_status il_trainer_create(const il_graph *g0, const il_trainer_opts *o, il_trainer **out) {
    *out = NULL;
    il_trainer *t = calloc(1, sizeof *t);
    il_status st = IL_OK;
    t->dt = o && o->dtype ? o->dtype : IL_F32;
    t->threads = o && o->threads > 0 ? o->threads : il_num_cores();
    t->input_grad = o ? o->input_grad : 0;
    t->rng = o && o->seed ? o->seed * 0x9E3779B97F4A7C15ull : 0x2545F4914F6CDD1Dull;
    if (t->dt != IL_F32 && t->dt != IL_F64) {
        il_dtype bad = t->dt;
        free(t);
        return il_error(IL_ERR_UNSUPPORTED, "the trainer runs in float32 or float64, not %s", il_dtype_name(bad));
    }
    il_graph *g = t->g = il_graph_clone(g0);
    if (!g) { free(t); return IL_ERR_OOM; }
    int V = g->n_values, N = g->n_nodes;
    t->val = calloc((size_t)V, sizeof *t->val);
    t->grad = calloc((size_t)V, sizeof *t->grad);
    t->cap = calloc((size_t)V, sizeof *t->cap);
    t->gcap = calloc((size_t)V, sizeof *t->gcap);
    t->needs = calloc((size_t)V, 1);
    t->fixed = calloc((size_t)V, 1);
    t->pending = calloc((size_t)V, 1);
    t->params = calloc((size_t)V, sizeof(int));
    t->buffers = calloc((size_t)V, sizeof(int));
    t->order = calloc((size_t)N + 1, sizeof(int));
    t->ops = calloc((size_t)N + 1, sizeof *t->ops);
    t->gops = calloc((size_t)N + 1, sizeof *t->gops);
    t->saved = calloc((size_t)N + 1, sizeof *t->saved);
    if (g->n_inputs < 1 || g->n_outputs < 1) {
        st = il_error(IL_ERR_GRAPH, "a model to train needs an input and an output");
        goto fail;
    }
    if ((st = il_graph_topo_order(g, t->order, &t->n_order))) goto fail;
    for (int v = 0; v < V; v++) {
        const il_tensor *c = g->values[v].constant;
        if (!c) continue;
        if (!(t->val[v] = convert_const(c, t->dt))) { st = IL_ERR_OOM; goto fail; }
        t->fixed[v] = 1;
    }
    unsigned char *role = calloc((size_t)V, 1); /* 1 param, 2 buffer */
    for (int k = 0; k < N; k++) {
        const il_node *n = &g->nodes[k];
        if (n->dead) continue;
        if (!(t->ops[k] = il_op_find(n->domain, n->op_type))) {
            free(role);
            st = il_error(IL_ERR_UNSUPPORTED, "node '%s': unknown op %s", n->name, n->op_type);
            goto fail;
        }
        t->gops[k] = n->domain[0] ? NULL : gr_find(n->op_type);
        unsigned slots = weight_slots(n->op_type);
        int is_bn = !strcmp(n->op_type, "BatchNormalization");
        for (int i = 0; i < n->n_inputs; i++) {
            int v = n->inputs[i];
            if (v < 0 || !g->values[v].constant || !il_dtype_is_float(g->values[v].constant->dtype)) continue;
            if (is_bn && (i == 3 || i == 4)) role[v] = 2;
            else if (i < 32 && (slots >> i & 1) && il_tensor_numel(g->values[v].constant) > 1 && role[v] != 2)
                role[v] = 1;
        }
    }
    for (int v = 0; v < V; v++) {
        if (role[v] == 1) {
            t->params[t->n_params++] = v;
            t->needs[v] = 1;
            il_tensor *c = t->val[v];
            t->grad[v] = il_tensor_new(t->dt, c->rank, c->dims);
        } else if (role[v] == 2) {
            t->buffers[t->n_buffers++] = v;
        }
    }
    free(role);
    if (t->input_grad)
        for (int i = 0; i < g->n_inputs; i++) t->needs[g->inputs[i]] = 1;
    /* Gradients flow forward from parameters (and inputs) through float-valued nodes. */
    for (int j = 0; j < t->n_order; j++) {
        int k = t->order[j];
        const il_node *n = &g->nodes[k];
        int any = 0;
        for (int i = 0; i < n->n_inputs; i++) any |= n->inputs[i] >= 0 && t->needs[n->inputs[i]];
        if (!any) continue;
        if (!t->gops[k]) {
            st = il_error(IL_ERR_UNSUPPORTED, "node '%s': training has no backward for op %s", n->name, n->op_type);
            goto fail;
        }
        for (int i = 0; i < n->n_outputs; i++)
            if (n->outputs[i] >= 0) t->needs[n->outputs[i]] = 1;
    }
    for (int v = 0; v < V; v++)
        if (!t->val[v]) t->val[v] = tr_tensor_struct();
    il_set_threads(t->threads);
    if (o && o->backend == IL_BACKEND_CUDA) {
        if (t->dt != IL_F32) {
            st = il_error(IL_ERR_UNSUPPORTED, "the CUDA trainer runs in float32 only");
            goto fail;
        }
        if ((st = tc_create(t))) goto fail;
    }
    *out = t;
    return IL_OK;
fail:
    il_trainer_free(t);
    return st;
}

void il_trainer_free(il_trainer *t) {
    if (!t) return;
    tc_free(t);
    il_graph *g = t->g;
    for (int v = 0; g && v < g->n_values; v++) {
        if (t->val[v]) {
            if (!t->fixed[v]) free(t->val[v]->data), t->val[v]->data = NULL;
            if (t->fixed[v]) il_tensor_free(t->val[v]);
            else free(t->val[v]);
        }
        if (t->grad[v]) il_tensor_free(t->grad[v]);
    }
    for (int k = 0; g && k < g->n_nodes; k++)
        if (t->saved[k]) gr_saved_free(g->nodes[k].op_type, t->saved[k]);
    free(t->val), free(t->grad), free(t->cap), free(t->gcap), free(t->needs), free(t->fixed), free(t->pending);
    free(t->params), free(t->buffers), free(t->order), free(t->ops), free(t->gops), free(t->saved);
    il_graph_free(g);
    free(t);
}

/* Run node k: shape inference, output buffers, then the engine kernel or the training forward. */
static il_status run_node(il_trainer *t, int k, int training) {
    il_graph *g = t->g;
    const il_node *n = &g->nodes[k];
    il_tensor *in[64], *out[16];
    if (n->n_inputs > 64 || n->n_outputs > 16) return il_error(IL_ERR_UNSUPPORTED, "node '%s': too many inputs", n->name);
    for (int i = 0; i < n->n_inputs; i++) in[i] = n->inputs[i] >= 0 ? t->val[n->inputs[i]] : NULL;
    for (int i = 0; i < n->n_outputs; i++) {
        int v = n->outputs[i];
        out[i] = v >= 0 ? t->val[v] : NULL;
        if (out[i]) out[i]->rank = -1;
    }
    il_kctx c = {.node = n, .opset = il_graph_opset(g, n->domain), .n_in = n->n_inputs, .n_out = n->n_outputs,
                 .in = in, .out = out, .threads = t->threads, .infer_only = 0};
    if (c.opset == 0 && !n->domain[0]) c.opset = 1;
    const il_op *op = t->ops[k];
    if (op->flags & IL_OPF_DYNAMIC_OUT)
        return il_error(IL_ERR_UNSUPPORTED, "node '%s': training does not run data-dependent op %s", n->name, n->op_type);
    il_status st = op->infer(&c);
    for (int i = 0; i < n->n_outputs && !st; i++) {
        if (!out[i]) continue;
        if (!il_shape_known(out[i]))
            return il_error(IL_ERR_SHAPE, "node '%s' (%s): output %d has no known shape", n->name, n->op_type, i);
        st = tr_ensure(out[i], &t->cap[n->outputs[i]], out[i]->dtype, out[i]->rank, out[i]->dims);
    }
    if (st) return st;
    const gr_op *gop = t->gops[k];
    if (training && gop && gop->train_forward) {
        gr_ctx gc = {n, c.opset, n->n_inputs, n->n_outputs, in, out, NULL, NULL, &t->saved[k], t->threads, &t->rng};
        st = gop->train_forward(&gc);
    } else {
        /* the engine's kernel for the node, as a plan's heuristic picks it (weights change every
         * step, so nothing is taken as constant) */
        const il_kernel *kn = il_kernel_pick(&c, "cpu");
        st = kn ? il_kernel_run_once(kn, &c)
                : il_error(IL_ERR_UNSUPPORTED, "node '%s': no cpu kernel for %s at these shapes", n->name, n->op_type);
    }
    if (st && !strstr(il_errmsg(), n->name)) il_error_wrap(st, "node '%s' (%s): ", n->name, n->op_type);
    return st;
}

il_status il_trainer_forward(il_trainer *t, const il_tensor *x, int training, const il_tensor **logits) {
    il_graph *g = t->g;
    int xi = g->inputs[0];
    if (x->dtype != t->dt)
        return il_error(IL_ERR_TYPE, "trainer input is %s, the trainer runs in %s", il_dtype_name(x->dtype),
                        il_dtype_name(t->dt));
    const il_value *xv = &g->values[xi];
    if (xv->rank >= 0) {
        int ok = xv->rank == x->rank;
        for (int d = 1; ok && d < x->rank; d++) ok = xv->dims[d] < 0 || xv->dims[d] == x->dims[d];
        if (!ok) {
            char a[96], b[96];
            return il_error(IL_ERR_SHAPE, "input '%s' expects %s, got %s", xv->name,
                            il_shape_str(xv->rank, xv->dims, a, sizeof a), il_shape_str(x->rank, x->dims, b, sizeof b));
        }
    }
    if (t->gpu) return tc_forward(t, x, training, logits);
    il_status st = tr_ensure(t->val[xi], &t->cap[xi], x->dtype, x->rank, x->dims);
    if (st) return st;
    memcpy(t->val[xi]->data, x->data, il_tensor_bytes(x));
    for (int j = 0; j < t->n_order; j++)
        if ((st = run_node(t, t->order[j], training))) return st;
    *logits = t->val[g->outputs[0]];
    return IL_OK;
}

/* Gradient buffer of activation v shaped like its value; zeroed unless keep. */
static il_status act_grad(il_trainer *t, int v, int keep) {
    il_tensor *a = t->val[v];
    if (!t->grad[v]) t->grad[v] = tr_tensor_struct(), t->grad[v]->owns_data = 1;
    il_tensor *gt = t->grad[v];
    int same = gt->rank == a->rank && gt->dtype == a->dtype && !memcmp(gt->dims, a->dims, (size_t)a->rank * 8);
    il_status st = tr_ensure(gt, &t->gcap[v], a->dtype, a->rank, a->dims);
    if (st) return st;
    if (!keep || !same) memset(gt->data, 0, il_tensor_bytes(gt));
    return IL_OK;
}

static int is_param(const il_trainer *t, int v) { return t->fixed[v] && t->needs[v]; }

il_status il_trainer_backward(il_trainer *t, const il_tensor *dout) {
    il_graph *g = t->g;
    il_status st;
    int yo = g->outputs[0];
    if (!t->needs[yo]) return il_error(IL_ERR_GRAPH, "the output does not depend on any trainable parameter");
    if (t->gpu) return tc_backward(t, dout);
    for (int v = 0; v < g->n_values; v++)
        if (t->needs[v] && !is_param(t, v) && (st = act_grad(t, v, t->pending[v]))) return st;
    il_tensor *gy = t->grad[yo];
    if (il_tensor_numel(dout) != il_tensor_numel(gy) || dout->dtype != gy->dtype)
        return il_error(IL_ERR_SHAPE, "output gradient has %lld %s values, the output %lld %s",
                        (long long)il_tensor_numel(dout), il_dtype_name(dout->dtype), (long long)il_tensor_numel(gy),
                        il_dtype_name(gy->dtype));
    GR_FLOATS(gy->dtype, {
        T *G = gy->data;
        const T *D = dout->data;
        for (int64_t i = 0; i < il_tensor_numel(gy); i++) G[i] += D[i];
    })
    for (int j = t->n_order - 1; j >= 0; j--) {
        int k = t->order[j];
        const il_node *n = &g->nodes[k];
        if (!t->gops[k] || n->n_outputs < 1 || n->outputs[0] < 0 || !t->needs[n->outputs[0]]) continue;
        il_tensor *in[64], *out[16], *dout_[16], *din[64];
        int any = 0;
        for (int i = 0; i < n->n_inputs; i++) {
            int v = n->inputs[i];
            in[i] = v >= 0 ? t->val[v] : NULL;
            din[i] = v >= 0 && t->needs[v] ? t->grad[v] : NULL;
            any |= din[i] != NULL;
        }
        for (int i = 0; i < n->n_outputs; i++) {
            int v = n->outputs[i];
            out[i] = v >= 0 ? t->val[v] : NULL;
            dout_[i] = v >= 0 && t->needs[v] ? t->grad[v] : NULL;
        }
        if (!any) continue;
        gr_ctx gc = {n, il_graph_opset(g, n->domain), n->n_inputs, n->n_outputs, in, out, dout_, din, &t->saved[k],
                     t->threads, &t->rng};
        if (gc.opset == 0) gc.opset = 1;
        if ((st = t->gops[k]->backward(&gc))) {
            if (!strstr(il_errmsg(), n->name)) il_error_wrap(st, "node '%s' (%s) backward: ", n->name, n->op_type);
            return st;
        }
    }
    memset(t->pending, 0, (size_t)g->n_values);
    return IL_OK;
}

void il_trainer_zero_grad(il_trainer *t) {
    for (int i = 0; i < t->n_params; i++) {
        il_tensor *gt = t->grad[t->params[i]];
        memset(gt->data, 0, il_tensor_bytes(gt));
    }
}

const il_tensor *il_trainer_value(const il_trainer *t, const char *name) {
    int v = il_graph_find_value(t->g, name);
    if (v >= 0 && t->gpu && !t->fixed[v] && tc_value((il_trainer *)t, v)) return NULL;
    return v >= 0 && t->val[v]->data && t->val[v]->rank >= 0 ? t->val[v] : NULL;
}

il_status il_trainer_add_grad(il_trainer *t, const char *name, const il_tensor *gsrc) {
    int v = il_graph_find_value(t->g, name);
    if (v < 0) return il_error(IL_ERR_INVALID, "no tensor named '%s' in the model", name);
    if (!t->needs[v] || is_param(t, v))
        return il_error(IL_ERR_INVALID, "'%s' is not an activation that depends on trainable weights", name);
    il_status st = act_grad(t, v, t->pending[v]);
    if (st) return st;
    il_tensor *gt = t->grad[v];
    if (il_tensor_numel(gsrc) != il_tensor_numel(gt) || gsrc->dtype != gt->dtype)
        return il_error(IL_ERR_SHAPE, "gradient for '%s' has %lld values, the tensor %lld", name,
                        (long long)il_tensor_numel(gsrc), (long long)il_tensor_numel(gt));
    GR_FLOATS(gt->dtype, {
        T *G = gt->data;
        const T *S = gsrc->data;
        for (int64_t i = 0; i < il_tensor_numel(gt); i++) G[i] += S[i];
    })
    t->pending[v] = 1;
    return IL_OK;
}

const il_tensor *il_trainer_input_grad(const il_trainer *t, int i) {
    if (!t->input_grad || i < 0 || i >= t->g->n_inputs) return NULL;
    return t->grad[t->g->inputs[i]];
}

int il_trainer_n_params(const il_trainer *t) { return t->n_params; }
const char *il_trainer_param(il_trainer *t, int i, il_tensor **value, il_tensor **grad) {
    int v = t->params[i];
    if (value) *value = t->val[v];
    if (grad) *grad = t->grad[v];
    return t->g->values[v].name;
}
int il_trainer_n_buffers(const il_trainer *t) { return t->n_buffers; }
il_tensor *il_trainer_buffer(il_trainer *t, int i) { return t->val[t->buffers[i]]; }

int64_t il_trainer_param_count(const il_trainer *t) {
    int64_t n = 0;
    for (int i = 0; i < t->n_params; i++) n += il_tensor_numel(t->val[t->params[i]]);
    return n;
}

il_status il_trainer_export(const il_trainer *t, il_graph **out) {
    il_graph *g = il_graph_clone(t->g);
    if (!g) return IL_ERR_OOM;
    for (int pass = 0; pass < 2; pass++) {
        int n = pass ? t->n_buffers : t->n_params;
        for (int i = 0; i < n; i++) {
            int v = pass ? t->buffers[i] : t->params[i];
            il_tensor *src = t->val[v], *dst = il_tensor_new(IL_F32, src->rank, src->dims);
            if (!dst) {
                il_graph_free(g);
                return IL_ERR_OOM;
            }
            for (int64_t j = 0; j < il_tensor_numel(src); j++) il_tensor_set(dst, j, il_tensor_get(src, j));
            il_tensor_free(g->values[v].constant);
            g->values[v].constant = dst;
            g->values[v].dtype = IL_F32;
        }
    }
    *out = g;
    return IL_OK;
}
