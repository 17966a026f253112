/*
 * plan.c - the executor: a graph compiled for the CPU at one set of input shapes.
 *
 * Creating a plan infers every shape (folding shape arithmetic), fixes the node order, picks a
 * kernel per node from the kernel registry (tactics.c: a forced name, a fixed preference, or
 * the fastest by timing) and runs its prepare once (packed weights, parsed attributes, the
 * scratch bytes it needs), and lays every activation of known size into one arena with the
 * liveness planner (plan_arena.c, memplan.c). Running it walks the nodes: infer with the real
 * inputs (cheap, and exact even where the plan could not know a shape), take the output buffer
 * from the arena when the planned size fits or from the heap when it does not (data-dependent
 * shapes), run the kernel with its state and the shared workspace, and free heap buffers at
 * their last use. If a run's input shapes differ from the plan's, the plan is laid out and
 * prepared again.
 */
#include "plan_int.h"

#include <cblas.h>
#include <omp.h>
#include <stdio.h>

static int is_half(il_dtype t) { return t == IL_F16 || t == IL_BF16; }

void il_set_threads(int n) {
    if (n <= 0) n = il_num_cores();
    openblas_set_num_threads(n);
    omp_set_num_threads(n);
}

static void release_heap(il_plan *p) {
    for (int v = 0; v < p->g->n_values; v++) {
        free(p->heap[v]);
        p->heap[v] = NULL;
    }
}

/* Release every node's prepared state (shapes changed, or the plan goes). */
static void release_states(il_plan *p) {
    for (int k = 0; k < p->g->n_nodes; k++) {
        if (p->state[k] && p->kern[k] && p->kern[k]->release) p->kern[k]->release(p->state[k]);
        p->state[k] = NULL;
        p->prepared[k] = 0;
    }
}

uint64_t il_plan_const_mask(const il_plan *p, int k) {
    const il_node *n = &p->g->nodes[k];
    uint64_t m = 0;
    for (int i = 0; i < n->n_inputs && i < 64; i++) {
        int v = n->inputs[i];
        if (v >= 0 && (p->g->values[v].constant || p->s->known[v])) m |= (uint64_t)1 << i;
    }
    return m;
}

void il_plan_node_view(const il_plan *p, int k, il_tensor *inb, il_tensor **in, il_tensor *outb, il_tensor **out,
                       il_kctx *c) {
    const il_graph *g = p->g;
    const il_node *n = &g->nodes[k];
    for (int i = 0; i < n->n_inputs; i++) {
        int v = n->inputs[i];
        in[i] = NULL;
        if (v < 0) continue;
        inb[i] = p->s->info[v];
        const il_tensor *known = g->values[v].constant ? g->values[v].constant : p->s->known[v];
        inb[i].data = known ? known->data : NULL;
        inb[i].owns_data = 0;
        in[i] = &inb[i];
    }
    for (int i = 0; i < n->n_outputs; i++) {
        int v = n->outputs[i];
        out[i] = NULL;
        if (v < 0) continue;
        outb[i] = p->s->info[v];
        outb[i].data = NULL;
        outb[i].owns_data = 0;
        out[i] = &outb[i];
    }
    *c = (il_kctx){.node = n, .opset = il_graph_opset(g, n->domain), .n_in = n->n_inputs, .n_out = n->n_outputs,
                   .in = in, .out = out, .threads = p->o.threads, .const_mask = il_plan_const_mask(p, k),
                   .precision = p->acc ? p->o.precision : IL_PREC_FP32};
    if (c->opset == 0 && !n->domain[0]) c->opset = 1;
    il_plan_blocked_masks(p, k, c);
}

il_status il_plan_prepare_node(il_plan *p, int k, il_kctx *c) {
    const il_kernel *kn = p->kern[k];
    if (p->state[k] && kn->release) kn->release(p->state[k]);
    p->state[k] = NULL;
    p->ws[k] = 0;
    p->prepared[k] = 1;
    if (!kn->prepare) return IL_OK;
    il_status st = kn->prepare(c, &p->state[k], &p->ws[k]);
    if (st) {
        p->prepared[k] = 0;
        if (!strstr(il_errmsg(), p->g->nodes[k].name))
            il_error_wrap(st, "node '%s' (%s), kernel %s: ", p->g->nodes[k].name, p->g->nodes[k].op_type, kn->name);
        return st;
    }
    if (p->on_acc[k]) { /* device scratch: plan_device.c allocates the largest */
        if (p->ws[k] > p->dws_need) p->dws_need = p->ws[k];
        return IL_OK;
    }
    if (p->ws[k] > p->workspace_bytes) {
        free(p->workspace);
        p->workspace_bytes = 0;
        p->workspace = aligned_alloc(64, (p->ws[k] + 63) / 64 * 64);
        if (!p->workspace) return il_error(IL_ERR_OOM, "out of memory for a %zu-byte kernel workspace", p->ws[k]);
        p->workspace_bytes = p->ws[k];
    }
    return IL_OK;
}

/* Prepare every node whose input shapes are all known now; the rest prepare at their first run. */
static il_status prepare_known(il_plan *p) {
    il_tensor inb[64], *in[64], outb[16], *out[16];
    for (int j = 0; j < p->n_order; j++) {
        int k = p->order[j];
        const il_node *n = &p->g->nodes[k];
        if (!p->kern[k] || p->prepared[k] || !p->kern[k]->prepare || n->n_inputs > 64 || n->n_outputs > 16) continue;
        il_kctx c;
        il_plan_node_view(p, k, inb, in, outb, out, &c);
        int known = 1;
        for (int i = 0; i < n->n_inputs; i++) known &= !in[i] || il_shape_known(in[i]);
        if (!known) continue;
        il_status st = il_plan_prepare_node(p, k, &c);
        if (st) return st;
    }
    return IL_OK;
}

il_status il_plan_create(const il_graph *g, const il_plan_opts *o, il_plan **out) {
    return il_plan_create_named(g, o, NULL, NULL, 0, out);
}

il_status il_plan_create_named(const il_graph *g, const il_plan_opts *o, const char *const *names, const void *mp,
                               size_t mp_len, il_plan **out) {
    *out = NULL;
    il_status st = il_graph_verify(g);
    if (st) return st;
    il_plan *p = calloc(1, sizeof *p);
    p->g = g;
    if (o) p->o = *o;
    if (p->o.threads <= 0) p->o.threads = il_num_cores();
    if (p->o.backend != IL_BACKEND_CPU) {
        const char *name = il_backend_name(p->o.backend), *why = "unknown";
        p->acc = il_backend_find(name);
        if (!p->acc) {
            free(p);
            return il_error(IL_ERR_UNSUPPORTED, "backend %s is not built into this binary (nvcc was not found when "
                                                "it was built)", name);
        }
        if (!p->acc->available(&why)) {
            free(p);
            return il_error(IL_ERR_UNSUPPORTED, "backend %s: no usable device (%s)", name, why ? why : "unknown");
        }
    }
    if (p->o.precision < IL_PREC_FP32 || p->o.precision > IL_PREC_BF16 || (p->o.precision && !p->acc)) {
        int prec = p->o.precision;
        free(p);
        return il_error(IL_ERR_INVALID, "precision %s: the cpu computes float32; fp32, tf32, fp16 and bf16 are "
                        "an accelerator's (--backend cuda)", il_precision_name(prec));
    }
    p->names = names;
    p->memplan = mp;
    p->memplan_len = mp_len;
    p->kernels_spec = p->o.kernels ? strdup(p->o.kernels) : NULL;
    p->o.kernels = p->kernels_spec;
    p->cache_path = p->o.timing_cache ? strdup(p->o.timing_cache) : NULL;
    p->o.timing_cache = p->cache_path;
    if (o && o->n_binds > 0) {
        size_t cap = 16;
        for (int b = 0; b < o->n_binds; b++) cap += (o->binds[b].name ? strlen(o->binds[b].name) : 0) + 24;
        p->dims_spec = calloc(cap, 1);
        for (int b = 0; b < o->n_binds; b++)
            if (o->binds[b].name)
                snprintf(p->dims_spec + strlen(p->dims_spec), cap - strlen(p->dims_spec), "%s%s=%lld",
                         p->dims_spec[0] ? "," : "", o->binds[b].name, (long long)o->binds[b].value);
    }
    p->o.binds = NULL; /* read during create only: the caller's array need not outlive the plan */
    p->o.n_binds = 0;
    /* shapes first: a graph that computes on float16/bfloat16 values gets its Casts now, on our
     * own copy (precision.c), so the executor never converts anything itself */
    st = il_infer_shapes(g, p->o.batch > 0 ? p->o.batch : 1, o ? o->binds : NULL, o ? o->n_binds : 0, &p->s);
    if (!st && il_graph_needs_casts(g, p->s)) {
        il_graph *c = il_graph_clone(g);
        st = c ? il_graph_insert_casts(c, p->s, NULL) : IL_ERR_OOM; /* indices of g's values hold in c */
        il_shapes_free(p->s);
        p->s = NULL;
        p->g = g = p->own_graph = c;
        if (!st) st = il_infer_shapes(g, p->o.batch > 0 ? p->o.batch : 1, o ? o->binds : NULL, o ? o->n_binds : 0, &p->s);
    }
    int scaled = 0;
    for (int k = 0; k < g->n_nodes && p->acc; k++)
        scaled |= !g->nodes[k].dead &&
                  (!strcmp(g->nodes[k].op_type, "ScaledConv") || !strcmp(g->nodes[k].op_type, "PooledConv") ||
                   !strcmp(g->nodes[k].op_type, "ConvPool") ||
                   !strcmp(g->nodes[k].op_type, "SkipLayerNormalization") || !strcmp(g->nodes[k].op_type, "MultiHeadAttention"));
    if (!st && scaled) { /* the accelerator's kernels may lack it: split on our own copy (plan_device.c) */
        il_graph *c = p->own_graph ? p->own_graph : il_graph_clone(g);
        st = c ? IL_OK : IL_ERR_OOM;
        if (c && il_plan_split_scaled(p->acc, c) + il_plan_split_pooled(p->acc, c) + il_plan_split_convpool(p->acc, c) +
                     il_plan_split_skipln(p->acc, c) +
                     il_plan_split_heads(p->acc, c)) {
            il_shapes_free(p->s);
            p->s = NULL;
            p->g = g = p->own_graph = c;
            st = il_infer_shapes(g, p->o.batch > 0 ? p->o.batch : 1, o ? o->binds : NULL, o ? o->n_binds : 0, &p->s);
        } else if (c != p->own_graph) {
            il_graph_free(c);
        }
    }
    if (st) {
        il_shapes_free(p->s);
        il_graph_free(p->own_graph);
        free(p->kernels_spec), free(p->cache_path), free(p->dims_spec), free(p);
        return st;
    }
    int nv = g->n_values, nn = g->n_nodes;
    p->order = malloc((size_t)(nn + 1) * sizeof(int));
    p->ops = calloc((size_t)nn + 1, sizeof *p->ops);
    p->kern = calloc((size_t)nn + 1, sizeof *p->kern);
    p->state = calloc((size_t)nn + 1, sizeof *p->state);
    p->ws = calloc((size_t)nn + 1, sizeof *p->ws);
    p->prepared = calloc((size_t)nn + 1, 1);
    p->on_acc = calloc((size_t)nn + 1, 1);
    p->dptr = calloc((size_t)nv + 1, sizeof *p->dptr);
    p->downed = calloc((size_t)nv + 1, 1);
    p->dvalid = calloc((size_t)nv + 1, 1);
    p->hvalid = calloc((size_t)nv + 1, 1);
    p->ddt = calloc((size_t)nv + 1, 1);
    p->dstage = calloc((size_t)nv + 1, sizeof *p->dstage);
    p->blocked = calloc((size_t)nv + 1, 1);
    p->cat_root = malloc((size_t)(nv + 1) * sizeof *p->cat_root);
    p->cat_off = calloc((size_t)nv + 1, sizeof *p->cat_off);
    p->cstride = calloc((size_t)nv + 1, sizeof *p->cstride);
    p->over = malloc((size_t)(nv + 1) * sizeof *p->over);
    for (int v = 0; v < nv; v++) p->cat_root[v] = p->over[v] = -1;
    p->offset = malloc((size_t)(nv + 1) * sizeof(int64_t));
    p->size = malloc((size_t)(nv + 1) * sizeof(int64_t));
    p->last = malloc((size_t)(nv + 1) * sizeof(int64_t));
    p->vals = calloc((size_t)nv + 1, sizeof(il_tensor));
    p->heap = calloc((size_t)nv + 1, sizeof(void *));
    p->times = calloc((size_t)nn + 1, sizeof(double));
    st = il_graph_topo_order(g, p->order, &p->n_order);
    for (int k = 0; k < nn && !st; k++)
        if (!g->nodes[k].dead) p->ops[k] = il_op_find(g->nodes[k].domain, g->nodes[k].op_type);
    if (!st) st = il_plan_choose_kernels(p);
    if (!st) st = il_plan_choose_layouts(p);
    if (!st) st = prepare_known(p);
    if (!st) st = il_plan_lay_arena(p);
    if (!st && p->acc) st = il_plan_device_setup(p);
    p->names = NULL; /* borrowed for create only */
    p->memplan = NULL;
    if (st) { il_plan_free(p); return st; }
    *out = p;
    return IL_OK;
}

void il_plan_free(il_plan *p) {
    if (!p) return;
    release_heap(p);
    if (p->state) release_states(p);
    if (p->dptr) il_plan_device_release(p);
    free(p->on_acc);
    free(p->dptr);
    free(p->downed);
    free(p->dvalid);
    free(p->hvalid);
    free(p->ddt);
    free(p->dstage);
    il_shapes_free(p->s);
    free(p->order);
    free(p->ops);
    free(p->kern);
    free(p->state);
    free(p->ws);
    free(p->prepared);
    free(p->workspace);
    free(p->blocked);
    free(p->cat_root), free(p->cat_off), free(p->cstride), free(p->over);
    free(p->offset);
    free(p->size);
    free(p->last);
    free(p->arena);
    free(p->vals);
    free(p->heap);
    free(p->times);
    free(p->tinfo);
    free(p->kernels_spec);
    free(p->cache_path);
    free(p->dims_spec);
    il_graph_free(p->own_graph);
    free(p);
}

static il_status check_inputs(il_plan *p, il_tensor *const *inputs, int n, int *replan) {
    const il_graph *g = p->g;
    char a[128], b[128];
    if (n != g->n_inputs)
        return il_error(IL_ERR_INVALID, "the model has %d input%s, %d given", g->n_inputs, g->n_inputs == 1 ? "" : "s", n);
    *replan = 0;
    for (int i = 0; i < n; i++) {
        const il_value *x = &g->values[g->inputs[i]];
        const il_tensor *t = inputs[i];
        if (!t || !t->data) return il_error(IL_ERR_INVALID, "input '%s' has no data", x->name);
        if (x->dtype != IL_UNDEFINED && t->dtype != x->dtype)
            return il_error(IL_ERR_TYPE, "input '%s': dtype %s given, the model expects %s", x->name,
                            il_dtype_name(t->dtype), il_dtype_name(x->dtype));
        int bad = x->rank >= 0 && t->rank != x->rank;
        for (int d = 0; !bad && x->rank >= 0 && d < x->rank; d++) bad = x->dims[d] >= 0 && x->dims[d] != t->dims[d];
        if (bad && !p->o.loose_shapes)
            return il_error(IL_ERR_SHAPE, "input '%s': shape %s given, the model expects %s", x->name,
                            il_shape_str(t->rank, t->dims, a, sizeof a), il_shape_str(x->rank, x->dims, b, sizeof b));
        const il_tensor *planned = &p->s->info[g->inputs[i]];
        if (planned->rank != t->rank || memcmp(planned->dims, t->dims, (size_t)t->rank * sizeof(int64_t))) *replan = 1;
    }
    return IL_OK;
}

/* Give value v a buffer of its current shape: the arena slot when it fits, else the heap. */
il_status il_plan_bind_host(il_plan *p, int v, il_tensor *t) {
    size_t bytes = il_tensor_bytes(t);
    free(p->heap[v]);
    p->heap[v] = NULL;
    if (p->offset[v] >= 0 && (int64_t)bytes <= p->size[v]) {
        t->data = p->arena + p->offset[v];
    } else {
        p->heap[v] = malloc(bytes ? bytes : 1);
        if (!p->heap[v]) return il_error(IL_ERR_OOM, "out of memory for %zu bytes of '%s'", bytes, p->g->values[v].name);
        t->data = p->heap[v];
    }
    t->owns_data = 0;
    return IL_OK;
}

static il_status run_node(il_plan *p, int k) {
    const il_graph *g = p->g;
    const il_node *n = &g->nodes[k];
    const il_op *op = p->ops[k];
    il_tensor *in[64], *out[16], outb[16];
    il_status st = IL_OK;
    for (int i = 0; i < n->n_inputs; i++) {
        int v = n->inputs[i];
        in[i] = v >= 0 ? &p->vals[v] : NULL;
        /* precision changes are the graph's Casts (precision.c), never a conversion here */
        if (in[i] && is_half(in[i]->dtype) && !(op->flags & IL_OPF_ANY_DTYPE)) {
            st = il_error(IL_ERR_INTERNAL, "input %d is %s and %s computes float32: a Cast is missing", i,
                          il_dtype_name(in[i]->dtype), n->op_type);
            goto done;
        }
    }
    for (int i = 0; i < n->n_outputs; i++) {
        if (n->outputs[i] < 0) { out[i] = NULL; continue; }
        memset(&outb[i], 0, sizeof outb[i]);
        outb[i].rank = -1;
        out[i] = &outb[i];
    }
    il_kctx c = {.node = n, .opset = il_graph_opset(g, n->domain), .n_in = n->n_inputs, .n_out = n->n_outputs,
                 .in = in, .out = out, .threads = p->o.threads, .infer_only = 0, .const_mask = il_plan_const_mask(p, k)};
    if (c.opset == 0 && !n->domain[0]) c.opset = 1;
    il_plan_blocked_masks(p, k, &c);
    const il_kernel *kn = p->kern[k];
    st = op->infer(&c);
    if (st) goto done;
    int dyn = (op->flags & IL_OPF_DYNAMIC_OUT) != 0;
    for (int i = 0; i < n->n_outputs && !dyn; i++) {
        if (!out[i]) continue;
        if (!il_shape_known(out[i]) || !il_dtype_size(out[i]->dtype)) {
            st = il_kerr(&c, IL_ERR_INTERNAL, "output %d shape unknown after inference", i);
            goto done;
        }
        if ((st = il_plan_bind_host(p, n->outputs[i], out[i]))) goto done;
    }
    if (!p->prepared[k] && (st = il_plan_prepare_node(p, k, &c))) goto done; /* shapes unknown at plan time */
    c.state = p->state[k];
    c.workspace = p->workspace;
    c.workspace_bytes = p->ws[k];
    double t0 = p->o.profile ? il_now() : 0;
    st = kn->run(&c);
    if (p->o.profile) p->times[k] = il_now() - t0;
    if (st) goto done;
    for (int i = 0; i < n->n_outputs; i++) {
        int v = n->outputs[i];
        if (!out[i] || v < 0) continue;
        il_tensor *dst = &p->vals[v];
        *dst = *out[i];
        dst->owns_data = 0;
        if (dyn) { /* kernel-allocated: the plan takes the buffer */
            free(p->heap[v]);
            p->heap[v] = out[i]->data;
        }
    }
done:
    if (st && st != IL_OK && !strstr(il_errmsg(), n->name))
        il_error_wrap(st, "node '%s' (%s): ", n->name, n->op_type);
    return st;
}

il_status il_plan_run(il_plan *p, il_tensor *const *inputs, int n_inputs) {
    const il_graph *g = p->g;
    int replan;
    il_status st = check_inputs(p, inputs, n_inputs, &replan);
    if (st) return st;
    if (replan) {
        il_shapes *s;
        if ((st = il_infer_shapes_for(g, inputs, &s))) return st;
        il_shapes_free(p->s);
        p->s = s;
        release_states(p);
        if ((st = il_plan_choose_layouts(p)) || (st = il_plan_lay_arena(p))) return st;
        if (p->acc && ((st = prepare_known(p)) || (st = il_plan_device_setup(p)))) return st;
    }
    il_set_threads(p->o.threads);
    release_heap(p);
    for (int v = 0; v < g->n_values; v++) {
        if (g->values[v].constant) p->vals[v] = *g->values[v].constant;
        else if (p->s->known[v]) p->vals[v] = *p->s->known[v];
        else continue;
        p->vals[v].owns_data = 0;
    }
    for (int i = 0; i < n_inputs; i++) {
        p->vals[g->inputs[i]] = *inputs[i];
        p->vals[g->inputs[i]].owns_data = 0;
    }
    if (p->acc) { /* what is current where: host data as bound above, device constants as uploaded */
        p->n_uploads = p->n_downloads = 0;
        for (int v = 0; v < g->n_values; v++) {
            p->hvalid[v] = p->vals[v].data != NULL;
            p->dvalid[v] = p->downed[v] && (g->values[v].constant || p->s->known[v]);
        }
    }
    if (il_plan_can_replay(p)) {
        st = il_plan_run_captured(p);
        goto outputs;
    }
    for (int j = 0; j < p->n_order && !st; j++) {
        int k = p->order[j];
        if (p->s->folded[k]) continue;
        if (p->on_acc[k]) {
            st = il_plan_run_acc_node(p, k);
        } else {
            const il_node *n = &g->nodes[k];
            for (int i = 0; i < n->n_inputs && !st && p->acc; i++)
                if (n->inputs[i] >= 0) st = il_plan_ensure_host(p, n->inputs[i]);
            if (!st) st = run_node(p, k);
            for (int i = 0; i < n->n_outputs && !st && p->acc; i++)
                if (n->outputs[i] >= 0) p->hvalid[n->outputs[i]] = 1, p->dvalid[n->outputs[i]] = 0;
        }
        /* values read for the last time here give their heap buffers back */
        const il_node *n = &g->nodes[k];
        for (int i = 0; i < n->n_inputs; i++) {
            int v = n->inputs[i];
            if (v >= 0 && p->last[v] == j && p->heap[v]) {
                free(p->heap[v]);
                p->heap[v] = NULL;
            }
        }
    }
outputs:
    for (int i = 0; i < g->n_outputs && !st && p->acc; i++) st = il_plan_ensure_host(p, g->outputs[i]);
    if (!st && p->acc) st = p->acc->sync();
    return st;
}

int il_plan_n_outputs(const il_plan *p) { return p->g->n_outputs; }

const il_tensor *il_plan_output(const il_plan *p, int i) {
    if (i < 0 || i >= p->g->n_outputs) return NULL;
    return &p->vals[p->g->outputs[i]];
}

int64_t il_plan_peak_bytes(const il_plan *p) { return p->arena_bytes; }
int64_t il_plan_total_bytes(const il_plan *p) { return p->total_bytes; }
const il_shapes *il_plan_shapes(const il_plan *p) { return p->s; }
const double *il_plan_node_times(const il_plan *p) { return p->o.profile ? p->times : NULL; }

const il_graph *il_plan_graph(const il_plan *p) { return p->g; }

void il_plan_set_profile(il_plan *p, int on) { p->o.profile = on; }

int il_plan_on_acc(const il_plan *p, int k) { return k >= 0 && k < p->g->n_nodes && p->on_acc[k]; }

const il_kernel *il_plan_kernel(const il_plan *p, int k) {
    return k >= 0 && k < p->g->n_nodes ? p->kern[k] : NULL;
}

void il_plan_tactic_stats(const il_plan *p, int *timed, int *cached) {
    if (timed) *timed = p->n_timed;
    if (cached) *cached = p->n_cached;
}

int64_t il_plan_value_offset(const il_plan *p, int v, int64_t *size) {
    if (size) *size = p->size[v];
    return p->offset[v];
}

il_status il_run_model(const il_graph *g, il_tensor *const *inputs, int n_inputs, const il_plan_opts *o,
                       il_tensor ***outputs, int *n_outputs) {
    il_plan *p;
    *outputs = NULL;
    *n_outputs = 0;
    il_status st = il_plan_create(g, o, &p);
    if (st) return st;
    st = il_plan_run(p, inputs, n_inputs);
    if (!st) {
        int n = il_plan_n_outputs(p);
        il_tensor **outs = calloc((size_t)n + 1, sizeof *outs);
        for (int i = 0; i < n && !st; i++) {
            outs[i] = il_tensor_clone(il_plan_output(p, i));
            if (!outs[i]) st = IL_ERR_OOM;
        }
        if (st) {
            for (int i = 0; i < n; i++) il_tensor_free(outs[i]);
            free(outs);
        } else {
            *outputs = outs;
            *n_outputs = n;
        }
    }
    il_plan_free(p);
    return st;
}
