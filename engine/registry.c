/*
 * registry.c - the op registry: the built-in tables from engine/ops/ plus ops registered at
 * run time (plugins, fused ops from passes). Lookup is by (domain, name); the opset version in
 * force is handed to each kernel, which handles differences between versions itself.
 */
#include "ops/kernel.h"

#include <stdio.h>

static const il_op *groups[] = {il_ops_unary, il_ops_binary, il_ops_conv, il_ops_pool, il_ops_norm, il_ops_linalg,
                                il_ops_shape, il_ops_index, il_ops_slice, il_ops_reduce, il_ops_softmax, il_ops_resize, il_ops_pad, il_ops_misc, il_ops_fused,
                                il_ops_fused_conv, il_ops_conv_pool, il_ops_fused_attention, il_ops_quant, il_ops_qfused};

static const il_op **all;
static int n_all, cap_all;

static void add(const il_op *op) {
    if (n_all == cap_all) {
        cap_all = cap_all ? 2 * cap_all : 256;
        all = realloc(all, (size_t)cap_all * sizeof *all);
    }
    all[n_all++] = op;
}

static int is_default_domain(const char *d) { return !d || !*d || !strcmp(d, "ai.onnx"); }

static int same_domain(const char *a, const char *b) {
    if (is_default_domain(a)) return is_default_domain(b);
    return !is_default_domain(b) && !strcmp(a, b);
}

static void init(void) {
    if (all) return;
    for (size_t g = 0; g < sizeof groups / sizeof *groups; g++)
        for (const il_op *op = groups[g]; op->name; op++) add(op);
}

const il_op *il_op_find(const char *domain, const char *name) {
    init();
    /* later registrations win, so a plugin can replace a built-in kernel */
    for (int i = n_all - 1; i >= 0; i--)
        if (!strcmp(all[i]->name, name) && same_domain(all[i]->domain, domain)) return all[i];
    return NULL;
}

const il_op *const *il_op_all(int *n) {
    init();
    *n = n_all;
    return all;
}

il_status il_op_register(const il_op *op) {
    init();
    if (!op || !op->name || !op->infer || !op->ref)
        return il_error(IL_ERR_INVALID, "an op needs a name, an infer function and a reference kernel");
    for (int i = 0; i < n_all; i++)
        if (all[i] == op) return IL_OK;
    add(op);
    il_kernels_add_op(op);
    return IL_OK;
}

il_status il_kctx_alloc_output(il_kctx *c, int i, il_dtype dt, int rank, const int64_t *dims) {
    il_tensor *o = il_out(c, i);
    if (!o) return IL_OK;
    if (rank > IL_MAX_RANK) return il_kerr(c, IL_ERR_UNSUPPORTED, "output rank %d is above %d", rank, IL_MAX_RANK);
    if (il_shape_numel(rank, dims) < 0 || il_shape_check(rank, dims))
        return il_kerr(c, IL_ERR_SHAPE, "output %d: a negative dim, or more than 2^40 elements", i);
    int64_t n = il_shape_numel(rank, dims);
    size_t bytes = (size_t)n * il_dtype_size(dt);
    if (o->owns_data) free(o->data);
    o->data = calloc(bytes ? bytes : 1, 1);
    if (!o->data) return il_kerr(c, IL_ERR_OOM, "out of memory for %zu bytes", bytes);
    o->owns_data = 1;
    o->dtype = dt;
    o->rank = rank;
    memcpy(o->dims, dims, (size_t)rank * sizeof(int64_t));
    return IL_OK;
}
