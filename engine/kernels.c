/*
 * kernels.c - the kernel registry: every implementation of every op, per backend, by name.
 *
 * Ops (registry.c) are schemas; kernels are listed here. At first use the registry takes each
 * op's reference kernel as the cpu kernel "ref" and an op table's `fast` as the stateless cpu
 * kernel "fast", then the explicit kernel tables (stateful and library kernels, engine/cpu/
 * and engine/cuda/), then whatever plugins register. The planner (plan.c, tactics.c) asks for
 * the candidates of a node; `inferlab ops` and the registry-walking test list them all.
 */
#include "ops/kernel.h"

const il_kernel *const il_kernel_tables[] = {il_kernels_fused_conv, il_kernels_cuda, il_kernels_cudnn, il_kernels_cuda_ops, il_kernels_cusparselt, il_kernels_qconv, il_kernels_qmatmul,
                                             il_kernels_qeltwise, il_kernels_sparse, il_kernels_quant_vec, il_kernels_patch_conv,
                                             il_kernels_wino_conv, il_kernels_rows_conv,
#ifdef IL_HAVE_DNNL
                                             il_kernels_dnnl_conv, il_kernels_conv_pool, il_kernels_dnnl_pool, il_kernels_dnnl_native, il_kernels_dnnl_matmul,
                                             il_kernels_dnnl_qconv, il_kernels_dnnl_qeltwise, il_kernels_dnnl_qmatmul,
                                             il_kernels_dnnl_eltwise,
#endif
                                             NULL};

static const il_kernel **all;
static int n_all, cap_all, ready;

static int is_default_domain(const char *d) { return !d || !*d || !strcmp(d, "ai.onnx"); }

static int same_domain(const char *a, const char *b) {
    if (is_default_domain(a)) return is_default_domain(b);
    return !is_default_domain(b) && !strcmp(a, b);
}

static void add(const il_kernel *k) {
    if (n_all == cap_all) {
        cap_all = cap_all ? 2 * cap_all : 512;
        all = realloc(all, (size_t)cap_all * sizeof *all);
    }
    all[n_all++] = k;
}

/* The kernels an op table implies: "ref" always, "fast" when the table names one. Their
 * structs live as long as the process, like the tables. */
static void add_derived(const il_op *op) {
    il_kernel *k = calloc(op->fast ? 2 : 1, sizeof *k);
    k[0] = (il_kernel){.domain = op->domain, .op = op->name, .since_version = op->since_version, .backend = "cpu",
                       .name = "ref", .priority = 0, .run = op->ref,
                       .doc = "the reference kernel: readable loops, the oracle every other kernel is tested against"};
    add(&k[0]);
    if (op->fast) {
        k[1] = k[0];
        k[1].name = "fast";
        k[1].priority = 10;
        k[1].run = op->fast;
        k[1].doc = "the optimized cpu kernel (vectorized loops, BLAS, OpenMP), stateless";
        add(&k[1]);
    }
}

static void init(void) {
    if (ready) return;
    ready = 1;
    int n;
    const il_op *const *ops = il_op_all(&n);
    for (int i = 0; i < n; i++) add_derived(ops[i]);
    for (const il_kernel *const *t = il_kernel_tables; *t; t++)
        for (const il_kernel *k = *t; k->op; k++) add(k);
}

/* An op registered after the registry was built (a plugin's) gets its derived kernels here. */
void il_kernels_add_op(const il_op *op) {
    if (ready) add_derived(op);
}

il_status il_kernel_register(const il_kernel *k) {
    init();
    if (!k || !k->op || !k->name || !k->backend || (k->role == IL_KERNEL_FORWARD ? !k->run : !k->impl))
        return il_error(IL_ERR_INVALID, "a kernel needs an op, a backend, a name and a run function");
    if (!il_op_find(k->domain, k->op))
        return il_error(IL_ERR_INVALID, "kernel '%s': op %s%s%s is not registered", k->name,
                        k->domain && *k->domain ? k->domain : "", k->domain && *k->domain ? ":" : "", k->op);
    for (int i = 0; i < n_all; i++) {
        if (all[i] == k) return IL_OK;
        if (!strcmp(all[i]->op, k->op) && same_domain(all[i]->domain, k->domain) &&
            !strcmp(all[i]->backend, k->backend) && !strcmp(all[i]->name, k->name) && all[i]->role == k->role)
            return il_error(IL_ERR_INVALID, "a kernel named '%s' for %s on %s is already registered", k->name, k->op,
                            k->backend);
    }
    add(k);
    return IL_OK;
}

static int serves(const il_kernel *k, int64_t opset) {
    if (!opset) return 1;
    return opset >= (k->since_version > 0 ? k->since_version : 1) && (!k->until_version || opset <= k->until_version);
}

int il_kernels_of(const char *domain, const char *op, const char *backend, int64_t opset, const il_kernel **out,
                  int max) {
    init();
    int n = 0;
    for (int i = 0; i < n_all; i++) {
        const il_kernel *k = all[i];
        if (k->role != IL_KERNEL_FORWARD || strcmp(k->op, op) || !same_domain(k->domain, domain)) continue;
        if (backend && strcmp(k->backend, backend)) continue;
        if (!serves(k, opset)) continue;
        if (n < max) out[n] = k;
        n++;
    }
    return n < max ? n : max;
}

const il_kernel *il_kernel_find(const char *domain, const char *op, const char *backend, const char *name) {
    init();
    /* later registrations win, as for ops */
    for (int i = n_all - 1; i >= 0; i--) {
        const il_kernel *k = all[i];
        if (k->role == IL_KERNEL_FORWARD && !strcmp(k->op, op) && same_domain(k->domain, domain) &&
            !strcmp(k->backend, backend) && !strcmp(k->name, name))
            return k;
    }
    return NULL;
}

const il_kernel *il_kernel_find_role(const char *domain, const char *op, const char *backend, int role) {
    init();
    for (int i = n_all - 1; i >= 0; i--) {
        const il_kernel *k = all[i];
        if (k->role == role && !strcmp(k->op, op) && same_domain(k->domain, domain) && !strcmp(k->backend, backend))
            return k;
    }
    return NULL;
}

const il_kernel *il_kernel_pick(const il_kctx *c, const char *backend) {
    const il_kernel *ks[32], *best = NULL;
    int n = il_kernels_of(c->node->domain, c->node->op_type, backend, c->opset, ks, 32);
    for (int i = 0; i < n; i++)
        if (il_kernel_accepts(ks[i], c) && (!best || ks[i]->priority >= best->priority)) best = ks[i];
    return best;
}

il_status il_kernel_run_once(const il_kernel *k, il_kctx *c) {
    void *state = NULL, *ws = NULL;
    size_t wsb = 0;
    il_status st = k->prepare ? k->prepare(c, &state, &wsb) : IL_OK;
    if (!st && wsb && !(ws = malloc(wsb))) st = il_kerr(c, IL_ERR_OOM, "out of memory for a %zu-byte workspace", wsb);
    if (!st) {
        c->state = state, c->workspace = ws, c->workspace_bytes = wsb;
        st = k->run(c);
        c->state = c->workspace = NULL, c->workspace_bytes = 0;
    }
    if (state && k->release) k->release(state);
    free(ws);
    return st;
}

const il_kernel *const *il_kernel_all(int *n) {
    init();
    *n = n_all;
    return all;
}

int il_kernel_accepts(const il_kernel *k, const il_kctx *c) {
    const il_tensor *x = c->n_in > 0 ? c->in[0] : NULL;
    if (k->dtypes && x && x->dtype != IL_UNDEFINED && !(k->dtypes & IL_DT(x->dtype))) return 0;
    return !k->supports || k->supports(c);
}
