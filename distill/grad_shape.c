/*
 * grad_shape.c - backward of the data-movement ops (Reshape, Flatten, Squeeze, Unsqueeze,
 * Identity: the gradient keeps its bytes; Transpose: the inverse permutation; Concat and
 * Split: each other's backward), and the lookup of backward kernels by op type.
 */
#include "grad.h"
#include "trainer_impl.h"

#include <stdarg.h>
#include <stdio.h>

il_status gr_err(const gr_ctx *c, il_status s, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return il_error(s, "node '%s' (%s): %s", c->node->name ? c->node->name : "?", c->node->op_type, msg);
}

/* Same elements in the same order: din += dout. */
static il_status view_backward(gr_ctx *c) {
    il_tensor *dy = c->dout[0], *dx = gr_din(c, 0);
    if (!dx) return IL_OK;
    int64_t n = il_tensor_numel(dy);
    GR_FLOATS(dy->dtype, {
        const T *DY = dy->data;
        T *DX = dx->data;
        IL_PAR_FOR(c, i, n) DX[i] += DY[i];
    })
    return IL_OK;
}

static il_status transpose_backward(gr_ctx *c) {
    il_tensor *x = c->in[0], *dy = c->dout[0], *dx = gr_din(c, 0);
    if (!dx) return IL_OK;
    int r = x->rank;
    int64_t perm[IL_MAX_RANK], xs[IL_MAX_RANK], s[IL_MAX_RANK];
    const int64_t *p;
    int np = il_attr_ints(c->node, "perm", &p);
    for (int i = 0; i < r; i++) perm[i] = np ? p[i] : r - 1 - i;
    xs[r - 1] = 1;
    for (int i = r - 2; i >= 0; i--) xs[i] = xs[i + 1] * x->dims[i + 1];
    /* output dim i walks input dim perm[i]: its stride in x */
    for (int i = 0; i < r; i++) s[i] = xs[perm[i]];
    int64_t n = il_tensor_numel(dy);
    /* rows of the output's last two... simply an odometer over the output, parallel by outer rows */
    int64_t inner = r ? dy->dims[r - 1] : 1, rows = inner ? n / inner : 0;
    GR_FLOATS(dy->dtype, {
        const T *DY = dy->data;
        T *DX = dx->data;
        IL_PAR_FOR(c, row, rows) {
            int64_t off = 0, q = row;
            for (int d = r - 2; d >= 0; d--) {
                off += (q % dy->dims[d]) * s[d];
                q /= dy->dims[d];
            }
            const T *src = DY + row * inner;
            for (int64_t j = 0; j < inner; j++) DX[off + j * s[r - 1]] += src[j];
        }
    })
    return IL_OK;
}

/* Copy between a big tensor and its parts along axis: the part p covers [start, start+len). */
static il_status concat_split(gr_ctx *c, il_tensor *whole, int axis, int n_parts, il_tensor **parts_val,
                              il_tensor **parts_grad, int to_whole) {
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < axis; i++) outer *= whole->dims[i];
    for (int i = axis + 1; i < whole->rank; i++) inner *= whole->dims[i];
    int64_t W = whole->dims[axis], start = 0;
    for (int p = 0; p < n_parts; p++) {
        int64_t len = parts_val[p] ? parts_val[p]->dims[axis] : 0;
        il_tensor *pg = parts_grad[p];
        if (pg) {
            GR_FLOATS(whole->dtype, {
                T *Wd = whole->data, *Pd = pg->data;
                IL_PAR_FOR(c, o, outer) {
                    for (int64_t l = 0; l < len * inner; l++) {
                        int64_t wi = (o * W + start) * inner + l, pi = o * len * inner + l;
                        if (to_whole) Wd[wi] += Pd[pi];
                        else Pd[pi] += Wd[wi];
                    }
                }
            })
        }
        start += len;
    }
    return IL_OK;
}

static il_status concat_backward(gr_ctx *c) {
    int axis;
    il_kctx k = gr_kctx(c);
    il_status st = il_norm_axis(&k, il_attr_int(c->node, "axis", 0), c->out[0]->rank, &axis);
    if (st) return st;
    return concat_split(c, c->dout[0], axis, c->n_in, c->in, c->din, 0);
}

static il_status split_backward(gr_ctx *c) {
    il_tensor *dx = gr_din(c, 0);
    if (!dx) return IL_OK;
    int axis;
    il_kctx k = gr_kctx(c);
    il_status st = il_norm_axis(&k, il_attr_int(c->node, "axis", 0), c->in[0]->rank, &axis);
    if (st) return st;
    return concat_split(c, dx, axis, c->n_out, c->out, c->dout, 1);
}

const gr_op gr_ops_shape[] = {
    {"Reshape", view_backward, NULL},   {"Flatten", view_backward, NULL},
    {"Squeeze", view_backward, NULL},   {"Unsqueeze", view_backward, NULL},
    {"Identity", view_backward, NULL},  {"Transpose", transpose_backward, NULL},
    {"Concat", concat_backward, NULL},  {"Split", split_backward, NULL},
    {0},
};

/* The backward kernels live in the one kernel registry (role IL_KERNEL_BACKWARD, backend cpu,
 * name "backward", impl the gr_op), registered at the first lookup; `inferlab ops` lists them
 * beside the forward kernels, and a plugin may register its own for an op. */
void il_train_register_kernels(void) {
    static int done;
    if (done) return;
    done = 1;
    const gr_op *tables[] = {gr_ops_conv, gr_ops_linalg, gr_ops_norm, gr_ops_elem, gr_ops_shape};
    for (size_t t = 0; t < sizeof tables / sizeof *tables; t++)
        for (const gr_op *o = tables[t]; o->name; o++) {
            il_kernel *k = calloc(1, sizeof *k); /* lives as long as the registry */
            *k = (il_kernel){.domain = "", .op = o->name, .backend = "cpu", .name = "backward",
                             .role = IL_KERNEL_BACKWARD, .impl = o,
                             .doc = o->train_forward ? "gradients; a training-mode forward of its own"
                                                     : "gradients (added into the inputs' gradients)"};
            if (il_kernel_register(k)) free(k);
        }
    tc_register_kernels();
    il_error_clear();
}

const gr_op *gr_find(const char *op_type) {
    il_train_register_kernels();
    const il_kernel *k = il_kernel_find_role("", op_type, "cpu", IL_KERNEL_BACKWARD);
    return k ? k->impl : NULL;
}
