/*
 * plan_device.c - the executor's part for an accelerator backend (cuda): nodes placed on it run
 * there; the rest fall back to the cpu, and values cross where placements change.
 *
 * At build (il_plan_device_setup, after the host layout): every value an accelerator node
 * produces gets a slot in one device arena laid out by the same liveness planner as the host
 * arena; constants the accelerator reads are uploaded once; one device workspace serves every
 * node. Accelerator nodes need the shapes the plan inferred (they do not re-infer at run time).
 * At run time each value carries two flags, current on the device and current on the host: an
 * accelerator node uploads any input only the host has (into a staging buffer kept across
 * runs), a cpu node downloads any input only the device has (into its host arena slot), and
 * the graph outputs come back to the host at the end. The copies of the last run are counted
 * (il_plan_copies), so `build --verbose` and `bench` can say what a fallback costs.
 *
 * Half-precision plans (o.precision fp16/bf16) hold every float32 value the accelerator touches
 * in the half type there (p->ddt), constants converted once at setup; a copy between the host's
 * float32 and a half value goes through a float32 device staging buffer (p->dstage) and a
 * conversion kernel, so the host never converts (a batch of 256 images would cost it tens of
 * milliseconds). With o.graphs, a plan whose nodes all run on the accelerator records its first
 * run as one graph and replays it (il_plan_run_captured): arena, staging and workspace addresses
 * never move once set up, which is what a replay needs.
 */
#include "memplan.h"
#include "plan_int.h"

#ifdef IL_HAVE_CUDA
#include "cuda/cuda.h"
#endif

static il_dtype dev_dtype(const il_plan *p, int v) { return p->ddt[v] ? (il_dtype)p->ddt[v] : p->s->info[v].dtype; }

static size_t dev_bytes(const il_plan *p, int v, const il_tensor *t) {
    return p->ddt[v] ? (size_t)il_tensor_numel(t) * il_dtype_size((il_dtype)p->ddt[v]) : il_tensor_bytes(t);
}

/* Convert n elements between device buffers (half-precision plans; only the cuda backend has them). */
static il_status dev_convert(const il_plan *p, const void *src, il_dtype sdt, void *dst, il_dtype ddt, int64_t n) {
#ifdef IL_HAVE_CUDA
    if (!strcmp(p->acc->name, "cuda")) {
        il_cuda_convert(src, sdt, dst, ddt, n);
        return il_cuda_check("converting between float32 and a half type");
    }
#endif
    return il_error(IL_ERR_UNSUPPORTED, "backend %s cannot hold half-precision values", p->acc->name);
}

/* Host float32 bytes into value v's device copy (converted for a half value, through its staging). */
static il_status put(il_plan *p, int v, void *dst, const void *host, const il_tensor *t) {
    size_t bytes = il_tensor_bytes(t);
    if (!bytes) return IL_OK;
    if (!p->ddt[v]) return p->acc->upload(dst, host, bytes);
    if (!p->dstage[v] && !(p->dstage[v] = p->acc->alloc(bytes))) return IL_ERR_OOM;
    il_status st = p->acc->upload(p->dstage[v], host, bytes);
    return st ? st : dev_convert(p, p->dstage[v], IL_F32, dst, (il_dtype)p->ddt[v], il_tensor_numel(t));
}
void il_plan_device_release(il_plan *p) {
    if (!p->acc) return;
    if (p->graph && p->acc->graph_free) p->acc->graph_free(p->graph);
    p->graph = NULL;
    for (int v = 0; v < p->g->n_values; v++) {
        if (p->downed[v]) p->acc->free(p->dptr[v]);
        p->acc->free(p->dstage[v]);
        p->dptr[v] = p->dstage[v] = NULL;
        p->downed[v] = p->ddt[v] = 0;
    }
    p->acc->free(p->darena);
    p->acc->free(p->dworkspace);
    p->darena = NULL;
    p->dworkspace = NULL;
    p->dworkspace_bytes = 0;
}

il_status il_plan_device_setup(il_plan *p) {
    const il_graph *g = p->g;
    int nv = g->n_values;
    il_plan_device_release(p);
    int64_t *size = calloc((size_t)nv + 1, sizeof *size), *first = malloc((size_t)(nv + 1) * sizeof *first),
            *off = malloc((size_t)(nv + 1) * sizeof *off);
    il_status st = IL_OK;
    for (int v = 0; v < nv; v++) first[v] = -1;
    il_dtype half = p->o.precision == IL_PREC_FP16 ? IL_F16 : p->o.precision == IL_PREC_BF16 ? IL_BF16 : 0;
    for (int j = 0; j < p->n_order && half; j++) {
        int k = p->order[j];
        if (!p->on_acc[k] || p->s->folded[k]) continue;
        const il_node *n = &g->nodes[k];
        for (int i = 0; i < n->n_inputs + n->n_outputs; i++) {
            int v = i < n->n_inputs ? n->inputs[i] : n->outputs[i - n->n_inputs];
            if (v >= 0 && p->s->info[v].dtype == IL_F32) p->ddt[v] = (unsigned char)half;
        }
    }
    for (int j = 0; j < p->n_order && !st; j++) {
        int k = p->order[j];
        if (!p->on_acc[k] || p->s->folded[k]) continue;
        const il_node *n = &g->nodes[k];
        for (int i = 0; i < n->n_outputs; i++) {
            int v = n->outputs[i];
            if (v < 0) continue;
            const il_tensor *t = &p->s->info[v];
            if (!il_shape_known(t))
                st = il_error(IL_ERR_UNSUPPORTED, "node '%s' (%s) on %s: output '%s' has no static shape (give the "
                              "symbolic dims, or run it on the cpu)", n->name, n->op_type, p->acc->name, g->values[v].name);
            size[v] = (int64_t)dev_bytes(p, v, t);
            first[v] = j;
        }
    }
    if (!st) {
        int64_t *last = malloc((size_t)(nv + 1) * sizeof *last);
        for (int v = 0; v < nv; v++) last[v] = p->last[v] < first[v] ? first[v] : p->last[v];
        p->darena_bytes = il_memplan(nv, size, first, last, off);
        free(last);
        p->darena = p->acc->alloc((size_t)p->darena_bytes + 256);
        if (!p->darena) st = il_error(IL_ERR_OOM, "%s: out of memory for a %lld-byte activation arena", p->acc->name,
                                      (long long)p->darena_bytes);
    }
    for (int v = 0; v < nv && !st; v++)
        if (first[v] >= 0 && off[v] >= 0) p->dptr[v] = p->darena + off[v];
    /* constants read on the device: uploaded once */
    for (int j = 0; j < p->n_order && !st; j++) {
        int k = p->order[j];
        if (!p->on_acc[k] || p->s->folded[k]) continue;
        const il_node *n = &g->nodes[k];
        for (int i = 0; i < n->n_inputs && !st; i++) {
            int v = n->inputs[i];
            if (v < 0 || p->dptr[v]) continue;
            const il_tensor *t = g->values[v].constant ? g->values[v].constant : p->s->known[v];
            if (!t) continue;
            if (!(p->dptr[v] = p->acc->alloc(dev_bytes(p, v, t)))) {
                st = il_error_wrap(IL_ERR_OOM, "%s: weight '%s': ", p->acc->name, g->values[v].name);
                break;
            }
            p->downed[v] = 1;
            st = put(p, v, p->dptr[v], t->data, t);
            if (p->dstage[v]) { /* a constant converts once: its staging is not needed again */
                if (!st) st = p->acc->sync();
                p->acc->free(p->dstage[v]);
                p->dstage[v] = NULL;
            }
        }
    }
    if (!st && p->dws_need) {
        if (!(p->dworkspace = p->acc->alloc(p->dws_need)))
            st = il_error(IL_ERR_OOM, "%s: out of memory for a %zu-byte workspace", p->acc->name, p->dws_need);
        else p->dworkspace_bytes = p->dws_need;
    }
    if (!st) st = p->acc->sync();
    free(size), free(first), free(off);
    return st;
}

il_status il_plan_ensure_host(il_plan *p, int v) {
    if (!p->acc || p->hvalid[v] || !p->dvalid[v]) return IL_OK;
    il_tensor *t = &p->vals[v];
    il_status st = il_plan_bind_host(p, v, t);
    size_t bytes = il_tensor_bytes(t);
    const void *src = p->dptr[v];
    if (!st && p->ddt[v] && bytes) { /* a half value: widened on the device first */
        if (!p->dstage[v] && !(p->dstage[v] = p->acc->alloc(bytes))) st = IL_ERR_OOM;
        if (!st) st = dev_convert(p, p->dptr[v], (il_dtype)p->ddt[v], p->dstage[v], IL_F32, il_tensor_numel(t));
        src = p->dstage[v];
    }
    if (!st) st = p->acc->download(t->data, src, bytes);
    if (st) return il_error_wrap(st, "copying '%s' from %s: ", p->g->values[v].name, p->acc->name);
    p->hvalid[v] = 1;
    p->n_downloads++;
    return IL_OK;
}

/* Value v's current data onto the device (a staging buffer for values the host produced). */
static il_status ensure_device(il_plan *p, int v) {
    if (p->dvalid[v]) return IL_OK;
    const il_tensor *t = &p->vals[v];
    if (!p->dptr[v]) {
        if (!(p->dptr[v] = p->acc->alloc(dev_bytes(p, v, t))))
            return il_error_wrap(IL_ERR_OOM, "%s: staging '%s': ", p->acc->name, p->g->values[v].name);
        p->downed[v] = 1;
    }
    il_status st = put(p, v, p->dptr[v], t->data, t);
    if (st) return il_error_wrap(st, "copying '%s' to %s: ", p->g->values[v].name, p->acc->name);
    p->dvalid[v] = 1;
    p->n_uploads++;
    return IL_OK;
}

il_status il_plan_run_acc_node(il_plan *p, int k) {
    const il_graph *g = p->g;
    const il_node *n = &g->nodes[k];
    il_tensor inb[64], *in[64], outb[16], *out[16];
    il_status st = IL_OK;
    for (int i = 0; i < n->n_inputs && !st; i++) {
        int v = n->inputs[i];
        in[i] = NULL;
        if (v < 0) continue;
        if ((st = ensure_device(p, v))) break;
        inb[i] = p->s->info[v];
        inb[i].dtype = dev_dtype(p, v);
        inb[i].data = p->dptr[v];
        inb[i].owns_data = 0;
        in[i] = &inb[i];
    }
    for (int i = 0; i < n->n_outputs && !st; i++) {
        int v = n->outputs[i];
        out[i] = NULL;
        if (v < 0) continue;
        outb[i] = p->s->info[v];
        outb[i].dtype = dev_dtype(p, v);
        outb[i].data = p->dptr[v];
        outb[i].owns_data = 0;
        out[i] = &outb[i];
    }
    if (st) return st;
    il_kctx c = {.node = n, .opset = il_graph_opset(g, n->domain), .n_in = n->n_inputs, .n_out = n->n_outputs,
                 .in = in, .out = out, .threads = p->o.threads, .state = p->state[k], .workspace = p->dworkspace,
                 .workspace_bytes = p->ws[k], .const_mask = il_plan_const_mask(p, k), .precision = p->o.precision};
    if (c.opset == 0 && !n->domain[0]) c.opset = 1;
    il_plan_blocked_masks(p, k, &c);
    double t0 = p->o.profile ? il_now() : 0;
    st = p->kern[k]->run(&c);
    if (!st && p->o.profile) st = p->acc->sync();
    if (p->o.profile) p->times[k] = il_now() - t0;
    if (st) {
        if (!strstr(il_errmsg(), n->name)) il_error_wrap(st, "node '%s' (%s) on %s: ", n->name, n->op_type, p->acc->name);
        return st;
    }
    for (int i = 0; i < n->n_outputs; i++) {
        int v = n->outputs[i];
        if (v < 0) continue;
        p->vals[v] = p->s->info[v]; /* its shape; host data only once downloaded */
        p->vals[v].data = NULL;
        p->vals[v].owns_data = 0;
        p->dvalid[v] = 1;
        p->hvalid[v] = 0;
    }
    return IL_OK;
}

void il_plan_copies(const il_plan *p, int *acc_nodes, int *fallback, int64_t *uploads, int64_t *downloads) {
    if (acc_nodes) *acc_nodes = p->n_acc_nodes;
    if (fallback) *fallback = p->n_fallback;
    if (uploads) *uploads = p->n_uploads;
    if (downloads) *downloads = p->n_downloads;
}

/* Every node on the accelerator, in order (a plan with no cpu node: captured or rerun). */
static il_status run_acc_nodes(il_plan *p) {
    il_status st = IL_OK;
    for (int j = 0; j < p->n_order && !st; j++) {
        int k = p->order[j];
        if (!p->s->folded[k] && p->on_acc[k]) st = il_plan_run_acc_node(p, k);
    }
    return st;
}

int il_plan_can_replay(const il_plan *p) {
    return p->acc && p->o.graphs && !p->o.profile && p->acc->capture_begin && p->n_acc_nodes > 0 && !p->n_fallback;
}

il_status il_plan_run_captured(il_plan *p) {
    const il_graph *g = p->g;
    il_status st = IL_OK;
    /* the inputs first: copies from the host are not part of the graph */
    for (int i = 0; i < g->n_inputs && !st; i++)
        if (p->vals[g->inputs[i]].data) st = ensure_device(p, g->inputs[i]);
    if (!st && !p->graph) {
        if ((st = p->acc->capture_begin())) return st;
        st = run_acc_nodes(p);
        void *gr = NULL;
        il_status e = p->acc->capture_end(&gr); /* ends the capture even after a failed node */
        if (!st) st = e;
        if (st) {
            if (gr) p->acc->graph_free(gr);
            return st;
        }
        p->graph = gr;
    }
    if (!st) st = p->acc->replay(p->graph);
    for (int j = 0; j < p->n_order && !st; j++) { /* what the replay made current */
        const il_node *n = &g->nodes[p->order[j]];
        if (p->s->folded[p->order[j]] || !p->on_acc[p->order[j]]) continue;
        for (int i = 0; i < n->n_outputs; i++) {
            int v = n->outputs[i];
            if (v < 0) continue;
            p->vals[v] = p->s->info[v];
            p->vals[v].data = NULL;
            p->vals[v].owns_data = 0;
            p->dvalid[v] = 1;
            p->hvalid[v] = 0;
        }
    }
    return st;
}

il_status il_plan_rerun(il_plan *p) {
    if (!p->acc || p->n_fallback || !p->n_acc_nodes)
        return il_error(IL_ERR_INVALID, "a resident rerun needs a plan whose every node runs on an accelerator "
                        "(%d of %d fell back to the cpu)", p->n_fallback, p->n_fallback + p->n_acc_nodes);
    for (int i = 0; i < p->g->n_inputs; i++)
        if (!p->dvalid[p->g->inputs[i]] && p->dptr[p->g->inputs[i]] == NULL)
            return il_error(IL_ERR_INVALID, "a resident rerun needs a run first (its inputs are on the device)");
    il_status st = p->graph ? p->acc->replay(p->graph) : run_acc_nodes(p);
    return st ? st : p->acc->sync();
}

/* acc lacks a kernel for ai.inferlab op `op`: its nodes are to be split. */
static int acc_lacks(const il_backend_iface *acc, const char *op) {
    const il_kernel *ks[4];
    return acc && il_kernels_of("ai.inferlab", op, acc->name, 1, ks, 4) <= 0;
}

/* Where acc has no kernel for ai.inferlab `op`, each live node of it that `one` rewrites (one
 * returns 0 to leave a node whole; it may add nodes, which moves g->nodes) becomes the op `to`.
 * Returns how many were split (0: g untouched). */
static int split_each(const il_backend_iface *acc, il_graph *g, const char *op, const char *to,
                      int (*one)(il_graph *g, int k)) {
    if (!acc_lacks(acc, op)) return 0;
    int n0 = g->n_nodes, count = 0;
    for (int k = 0; k < n0; k++) {
        il_node *n = &g->nodes[k];
        if (n->dead || strcmp(n->op_type, op) || strcmp(n->domain, "ai.inferlab") || !one(g, k)) continue;
        n = &g->nodes[k];
        free(n->op_type);
        n->op_type = strdup(to);
        count++;
    }
    return count;
}

/* ScaledConv (pass fuse-se-scale's fusion of a squeeze-excitation product into the convolution
 * it feeds, which only the cpu's oneDNN kernel computes): Mul(X, S) and FusedConv(X*S, W, B, Z)
 * again, so both run on the device instead of the node falling back to the cpu. */
static int split_scaled(il_graph *g, int k) {
    if (g->nodes[k].n_inputs != 5) return 0;
    char name[512];
    int in[2] = {g->nodes[k].inputs[0], g->nodes[k].inputs[4]};
    snprintf(name, sizeof name, "%s_scaled", g->nodes[k].name);
    int m = il_graph_new_value(g, name);
    snprintf(name, sizeof name, "%s_scale", g->nodes[k].name);
    il_graph_add_node(g, "Mul", "", name, 2, in, 1, &m); /* may move g->nodes */
    g->nodes[k].inputs[0] = m;
    g->nodes[k].n_inputs = 4;
    return 1;
}

int il_plan_split_scaled(const il_backend_iface *acc, il_graph *g) {
    return split_each(acc, g, "ScaledConv", "FusedConv", split_scaled);
}

/* PooledConv (pass fuse-se-pool's convolution whose second output is the global average pool of
 * its first): FusedConv(X, W, B, Z) -> Y and GlobalAveragePool(Y) -> P again. */
static int split_pooled(il_graph *g, int k) {
    if (g->nodes[k].n_outputs != 2) return 0;
    char name[512];
    int y = g->nodes[k].outputs[0], p = g->nodes[k].outputs[1];
    snprintf(name, sizeof name, "%s_pool", g->nodes[k].name);
    il_graph_add_node(g, "GlobalAveragePool", "", name, 1, &y, 1, &p); /* may move g->nodes */
    g->nodes[k].n_outputs = 1;
    return 1;
}

int il_plan_split_pooled(const il_backend_iface *acc, il_graph *g) {
    return split_each(acc, g, "PooledConv", "FusedConv", split_pooled);
}

/* ConvPool (pass fuse-conv-pool's convolution whose output only a max pool reads, a cpu kernel):
 * FusedConv(X, W, B) into a new Y and MaxPool(Y) -> P with the pool_ attributes under their own
 * names; the FusedConv keeps the rest (ops read the attributes they know). */
static int split_convpool(il_graph *g, int k) {
    char name[512];
    snprintf(name, sizeof name, "%s_conv", g->nodes[k].name);
    int y = il_graph_new_value(g, name), p = g->nodes[k].outputs[0];
    snprintf(name, sizeof name, "%s_pool", g->nodes[k].name);
    int j = il_graph_add_node(g, "MaxPool", "", name, 1, &y, 1, &p); /* may move g->nodes */
    il_node view;
    il_attr at[8];
    int n = il_conv_pool_view(&g->nodes[k], &view, at, 8);
    for (int i = 0; i < n; i++) il_node_copy_attr(g, j, &at[i], NULL);
    g->nodes[k].outputs[0] = y;
    g->values[y].producer = k;
    return 1;
}

int il_plan_split_convpool(const il_backend_iface *acc, il_graph *g) {
    return split_each(acc, g, "ConvPool", "FusedConv", split_convpool);
}

/* SkipLayerNormalization (pass fuse-skip-layernorm's residual Add + LayerNorm, a cpu kernel):
 * Add(input, skip) [+ Add(bias)] writing its sum output (or a new value) and an ai.inferlab
 * LayerNormalization of the last axis, the ops the accelerator placed before the fusion. */
static int split_skipln(il_graph *g, int k) {
    il_node *n = &g->nodes[k];
    if (n->n_inputs < 3) return 0;
    char name[512];
    int bias = n->n_inputs > 4 ? n->inputs[4] : -1, in[2] = {n->inputs[0], n->inputs[1]};
    int sum = n->n_outputs > 3 ? n->outputs[3] : -1;
    snprintf(name, sizeof name, "%s_sum", n->name);
    int s = sum >= 0 && bias < 0 ? sum : il_graph_new_value(g, name);
    il_graph_add_node(g, "Add", "", name, 2, in, 1, &s); /* may move g->nodes */
    if (bias >= 0) {
        int b[2] = {s, bias};
        snprintf(name, sizeof name, "%s_bias", g->nodes[k].name);
        s = sum >= 0 ? sum : il_graph_new_value(g, name);
        il_graph_add_node(g, "Add", "", name, 2, b, 1, &s);
    }
    n = &g->nodes[k];
    n->inputs[0] = s;
    n->inputs[1] = n->inputs[2];
    n->inputs[2] = n->n_inputs > 3 ? n->inputs[3] : -1;
    n->n_inputs = n->inputs[2] >= 0 ? 3 : 2;
    if (n->n_outputs > 3) n->n_outputs = 3;
    il_node_set_int(g, k, "axis", -1);
    return 1;
}

int il_plan_split_skipln(const il_backend_iface *acc, il_graph *g) {
    return split_each(acc, g, "SkipLayerNormalization", "LayerNormalization", split_skipln);
}

/* MultiHeadAttention (fuse-attention's attention on the heads' layout, a cpu kernel): the head
 * Transposes of Q, K, V, an Attention and the context's Transpose back, as the exports had them. */
static int split_heads(il_graph *g, int k) {
    static const int64_t split[4] = {0, 2, 1, 3}, keys[4] = {0, 2, 3, 1};
    static const char *const what[4] = {"q", "k", "v", "merge"};
    il_node *n = &g->nodes[k];
    if (n->n_inputs < 3 || n->n_outputs != 1) return 0;
    char name[512];
    int io[4] = {n->inputs[0], n->inputs[1], n->inputs[2], n->outputs[0]}, t[4];
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%s_heads_%s", g->nodes[k].name, what[i]);
        t[i] = il_graph_new_value(g, name);
        int in = i < 3 ? io[i] : t[i], out = i < 3 ? t[i] : io[3];
        int j = il_graph_add_node(g, "Transpose", "", name, 1, &in, 1, &out); /* may move g->nodes */
        il_node_set_ints(g, j, "perm", 4, i == 1 ? keys : split);
    }
    n = &g->nodes[k];
    for (int i = 0; i < 3; i++) n->inputs[i] = t[i];
    n->outputs[0] = t[3];
    return 1;
}

int il_plan_split_heads(const il_backend_iface *acc, il_graph *g) {
    return split_each(acc, g, "MultiHeadAttention", "Attention", split_heads);
}
