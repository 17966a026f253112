/*
 * trainer_cuda.c - the training executor on the GPU (il_trainer_opts.backend = CUDA).
 *
 * The same graph walk as trainer.c, with activations and their gradients in device memory
 * and the kernels of engine/cuda (cuda.h): Conv as im2col + one cuBLAS gemm over a chunk of
 * images (the columns of all its images side by side, so the weight gradient is one product
 * with K = images x pixels rather than a sum of small ones), BatchNormalization, Relu/Clip,
 * MaxPool, GlobalAveragePool, Gemm, same-shape Add, and the reshaping ops as copies.
 * Shapes come from the engine's own inference functions, run on the host structs.
 *
 * The host stays the authority for parameters and buffers (see trainer_impl.h): uploaded
 * before each forward, buffers downloaded after a training forward, parameter gradients
 * downloaded after backward and added to the host's, each as one copy of a contiguous block.
 * For the zoo's models that traffic is small next to the step (288k parameters: 1.2 MB).
 */
#include "trainer_impl.h"

#include <stdlib.h>
#include <string.h>

#ifndef IL_HAVE_CUDA

il_status tc_create(il_trainer *t) {
    return il_error(IL_ERR_CUDA, "this inferlab was built without CUDA (nvcc was not found): train with the CPU");
}
void tc_free(il_trainer *t) {}
il_status tc_forward(il_trainer *t, const il_tensor *x, int training, const il_tensor **logits) {
    return IL_ERR_CUDA;
}
il_status tc_backward(il_trainer *t, const il_tensor *dout) { return IL_ERR_CUDA; }
il_status tc_value(il_trainer *t, int v) { return IL_ERR_CUDA; }

#else
#include "engine/cuda/cuda.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>

struct node_io;
struct tc_gpu;
/* The GPU trainer's part of an op, registered in the kernel registry (role IL_KERNEL_BACKWARD,
 * backend cuda, name "cuda-train"; `inferlab ops --backend cuda` lists them): gradients, and a
 * training-mode forward where the op needs one of its own (batch statistics, MaxPool's winners).
 * Every other forward, and every forward outside training, is the cuda backend's own inference
 * kernel for the node (the registry's pick), so the GPU trainer and GPU inference run the same
 * forward kernels; `forward` is this op's own, used only when no cuda kernel takes the node. */
typedef struct tc_op {
    const char *op;
    il_status (*train_forward)(struct tc_gpu *c, struct node_io *io, int k);
    il_status (*forward)(struct tc_gpu *c, struct node_io *io, int k);
    il_status (*backward)(struct tc_gpu *c, struct node_io *io, int k);
} tc_op;

typedef struct tc_gpu {
    float **dv, **dg;        /* per value: device data, device gradient */
    size_t *dcap, *dgcap;    /* their allocated bytes */
    const tc_op **op;        /* per node: its training kernel from the registry */
    /* per node: the registry's cuda forward kernel, its state, the input shapes it was prepared
     * for, and one device workspace for all of them */
    const il_kernel **fk;
    void **fstate;
    size_t *fws;
    uint64_t *fsig;
    void *fwork;
    size_t fworkcap;
    void **nsave;            /* per node: BN batch statistics, MaxPool winners */
    size_t *ncap;
    unsigned char *trained;  /* per node: the last forward was a training one (BN) */
    float *ws;               /* Conv columns */
    size_t wscap;
    /* Parameters then buffers side by side in one device block (and their host image in
     * `state`), parameter gradients in another: one copy each way per step, not one per tensor. */
    float *arena, *garena, *state;
    int64_t n_param_f, n_buf_f;
    unsigned char *in_arena; /* per value: dv (and dg) point into the blocks, not freed alone */
    int profile;             /* INFERLAB_CUDA_PROFILE set: time each node (synchronizing) */
    double op_ms[2][32];     /* [forward, backward][tc_op index] */
    int64_t steps;
} tc_gpu;

extern const tc_op tc_ops[];

/* Device buffer *p of at least bytes (contents not kept when it grows). */
static il_status dbuf(void **p, size_t *cap, size_t bytes) {
    if (bytes <= *cap && *p) return IL_OK;
    il_cuda_free(*p);
    *p = il_cuda_malloc(bytes ? bytes : 4);
    *cap = *p ? bytes : 0;
    return *p ? IL_OK : IL_ERR_OOM;
}

static size_t fbytes(const il_tensor *t) { return (size_t)il_tensor_numel(t) * sizeof(float); }

il_status tc_create(il_trainer *t) {
    il_status st = il_cuda_init();
    if (st) return st;
    il_graph *g = t->g;
    int V = g->n_values, N = g->n_nodes;
    tc_gpu *c = t->gpu = calloc(1, sizeof *c);
    c->dv = calloc((size_t)V, sizeof *c->dv), c->dg = calloc((size_t)V, sizeof *c->dg);
    c->dcap = calloc((size_t)V, sizeof *c->dcap), c->dgcap = calloc((size_t)V, sizeof *c->dgcap);
    c->op = calloc((size_t)N + 1, sizeof *c->op);
    c->fk = calloc((size_t)N + 1, sizeof *c->fk);
    c->fstate = calloc((size_t)N + 1, sizeof *c->fstate);
    c->fws = calloc((size_t)N + 1, sizeof *c->fws);
    c->fsig = calloc((size_t)N + 1, sizeof *c->fsig);
    c->nsave = calloc((size_t)N + 1, sizeof *c->nsave), c->ncap = calloc((size_t)N + 1, sizeof *c->ncap);
    c->trained = calloc((size_t)N + 1, 1);
    c->profile = getenv("INFERLAB_CUDA_PROFILE") != NULL;
    il_train_register_kernels();
    for (int j = 0; j < t->n_order; j++) {
        const il_node *n = &g->nodes[t->order[j]];
        const il_kernel *kn = il_kernel_find_role(n->domain, n->op_type, "cuda", IL_KERNEL_BACKWARD);
        if (!(c->op[t->order[j]] = kn ? kn->impl : NULL))
            return il_error(IL_ERR_UNSUPPORTED,
                            "node '%s': the CUDA trainer has no kernel for %s (`inferlab ops --backend cuda` lists "
                            "the ops it trains); train on the CPU",
                            n->name, n->op_type);
        if (!strcmp(n->op_type, "MaxPool") && n->n_outputs > 1 && n->outputs[1] >= 0)
            return il_error(IL_ERR_UNSUPPORTED, "node '%s': the CUDA trainer does not produce MaxPool's Indices", n->name);
    }
    c->in_arena = calloc((size_t)V, 1);
    for (int i = 0; i < t->n_params; i++) c->n_param_f += il_tensor_numel(t->val[t->params[i]]);
    for (int i = 0; i < t->n_buffers; i++) c->n_buf_f += il_tensor_numel(t->val[t->buffers[i]]);
    size_t ab = (size_t)(c->n_param_f + c->n_buf_f) * sizeof(float);
    if (!(c->arena = il_cuda_malloc(ab)) || !(c->garena = il_cuda_malloc((size_t)c->n_param_f * sizeof(float) + 4)) ||
        !(c->state = malloc(ab + 4)))
        return IL_ERR_OOM;
    for (int64_t i = 0, off = 0, goff = 0; i < t->n_params + t->n_buffers; i++) {
        int param = i < t->n_params, v = param ? t->params[i] : t->buffers[i - t->n_params];
        il_tensor *k = t->val[v];
        if (k->dtype != IL_F32)
            return il_error(IL_ERR_UNSUPPORTED, "'%s': the CUDA trainer keeps float32 parameters only", t->g->values[v].name);
        c->dv[v] = c->arena + off, c->dcap[v] = fbytes(k), c->in_arena[v] = 1;
        if (param) c->dg[v] = c->garena + goff, c->dgcap[v] = fbytes(k), goff += il_tensor_numel(k);
        off += il_tensor_numel(k);
    }
    /* other float constants once; parameters and buffers again before every forward */
    for (int v = 0; v < V; v++) {
        il_tensor *k = t->val[v];
        if (!t->fixed[v] || k->dtype != IL_F32 || c->in_arena[v]) continue;
        if ((st = dbuf((void **)&c->dv[v], &c->dcap[v], fbytes(k))) || (st = il_cuda_upload(c->dv[v], k->data, fbytes(k))))
            return st;
        if (t->needs[v] && (st = dbuf((void **)&c->dg[v], &c->dgcap[v], fbytes(k)))) return st;
    }
    return IL_OK;
}

void tc_free(il_trainer *t) {
    tc_gpu *c = t->gpu;
    if (!c) return;
    if (c->profile && c->steps) {
        double tot = 0;
        for (int d = 0; d < 2; d++)
            for (int k = 0; tc_ops[k].op; k++) tot += c->op_ms[d][k];
        fprintf(stderr, "cuda trainer, %lld steps, ms per step by op (forward / backward), %.3f ms in all:\n",
                (long long)c->steps, tot / c->steps);
        for (int k = 0; tc_ops[k].op; k++)
            if (c->op_ms[0][k] + c->op_ms[1][k] > 0)
                fprintf(stderr, "  %-20s %8.3f %8.3f\n", tc_ops[k].op, c->op_ms[0][k] / c->steps, c->op_ms[1][k] / c->steps);
    }
    for (int k = 0; k < t->g->n_nodes; k++)
        if (c->fstate && c->fstate[k] && c->fk[k]->release) c->fk[k]->release(c->fstate[k]);
    il_cuda_free(c->fwork);
    free(c->fk), free(c->fstate), free(c->fws), free(c->fsig);
    for (int v = 0; v < t->g->n_values; v++)
        if (!c->in_arena || !c->in_arena[v]) il_cuda_free(c->dv[v]), il_cuda_free(c->dg[v]);
    il_cuda_free(c->arena), il_cuda_free(c->garena);
    free(c->state), free(c->in_arena);
    for (int k = 0; k < t->g->n_nodes; k++) il_cuda_free(c->nsave[k]);
    il_cuda_free(c->ws);
    free(c->dv), free(c->dg), free(c->dcap), free(c->dgcap), free(c->op), free(c->nsave), free(c->ncap);
    free(c->trained);
    free(c);
    t->gpu = NULL;
}

/* The host's parameters and buffers to the device in one copy, through the host image. */
static il_status upload_state(il_trainer *t) {
    tc_gpu *c = t->gpu;
    float *s = c->state;
    for (int i = 0; i < t->n_params + t->n_buffers; i++) {
        il_tensor *w = t->val[i < t->n_params ? t->params[i] : t->buffers[i - t->n_params]];
        memcpy(s, w->data, fbytes(w));
        s += il_tensor_numel(w);
    }
    return il_cuda_upload(c->arena, c->state, (size_t)(c->n_param_f + c->n_buf_f) * sizeof(float));
}

static il_status download_buffers(il_trainer *t) {
    tc_gpu *c = t->gpu;
    il_status st = il_cuda_download(c->state, c->arena + c->n_param_f, (size_t)c->n_buf_f * sizeof(float));
    const float *s = c->state;
    for (int i = 0; i < t->n_buffers && !st; i++) {
        il_tensor *b = t->val[t->buffers[i]];
        memcpy(b->data, s, fbytes(b));
        s += il_tensor_numel(b);
    }
    return st;
}

/* The node's tensors as the kernels' contract sees them (host structs: shapes, host constants). */
typedef struct node_io {
    const il_node *n;
    gr_ctx gc;
    il_tensor *in[64], *out[16];
    float *x[64], *y[16], *dx[64], *dy[16]; /* device data and gradients, NULL when absent */
} node_io;

static void node_bind(il_trainer *t, int k, node_io *io) {
    tc_gpu *c = t->gpu;
    const il_node *n = io->n = &t->g->nodes[k];
    for (int i = 0; i < n->n_inputs; i++) {
        int v = n->inputs[i];
        io->in[i] = v >= 0 ? t->val[v] : NULL;
        io->x[i] = v >= 0 ? c->dv[v] : NULL;
        io->dx[i] = v >= 0 && t->needs[v] ? c->dg[v] : NULL;
    }
    for (int i = 0; i < n->n_outputs; i++) {
        int v = n->outputs[i];
        io->out[i] = v >= 0 ? t->val[v] : NULL;
        io->y[i] = v >= 0 ? c->dv[v] : NULL;
        io->dy[i] = v >= 0 && t->needs[v] ? c->dg[v] : NULL;
    }
    gr_ctx gc = {n, il_graph_opset(t->g, n->domain), n->n_inputs, n->n_outputs, io->in, io->out, NULL, NULL,
                 &t->saved[k], t->threads, &t->rng};
    if (!gc.opset) gc.opset = 1;
    io->gc = gc;
}

static il_cuda_win win_of(const il_conv_geom *g, int64_t c) {
    il_cuda_win w = {c, g->in[0], g->in[1], g->out[0], g->out[1], g->k[0], g->k[1],
                     g->stride[0], g->stride[1], g->dil[0], g->dil[1], g->pad[0], g->pad[1]};
    return w;
}

/* Images per chunk so that `per_image` floats of columns stay under 256 MB. */
static int64_t chunk_of(int64_t n, int64_t per_image) {
    int64_t nb = ((int64_t)64 << 20) / (per_image > 0 ? per_image : 1);
    return nb < 1 ? 1 : nb > n ? n : nb;
}

static il_status conv_forward(tc_gpu *c, node_io *io) {
    il_conv_geom g;
    il_status st = gr_conv_geom(&io->gc, &g);
    if (st) return st;
    int64_t cg = g.c / g.group, mg = g.m / g.group, K = cg * g.k_sp, OS = g.out_sp;
    int64_t nb = chunk_of(g.n, (K + mg) * OS);
    if ((st = dbuf((void **)&c->ws, &c->wscap, (size_t)((K + mg) * nb * OS) * sizeof(float)))) return st;
    il_cuda_win w = win_of(&g, g.c);
    const float *X = io->x[0], *W = io->x[1], *Bv = io->n->n_inputs > 2 ? io->x[2] : NULL;
    for (int64_t b0 = 0; b0 < g.n && !st; b0 += nb) {
        int64_t m = g.n - b0 < nb ? g.n - b0 : nb, L = m * OS;
        float *col = c->ws, *yt = col + K * L;
        for (int64_t grp = 0; grp < g.group && !st; grp++) {
            il_cuda_im2col(X + b0 * g.c * g.in_sp, m, &w, grp * cg, cg, col);
            st = il_cuda_sgemm(0, 0, mg, L, K, 1.0f, W + grp * mg * K, K, col, L, 0.0f, yt, L);
            il_cuda_cm_to_nchw(yt, mg, m, OS, g.m, grp * mg, Bv, io->y[0] + b0 * g.m * OS);
        }
    }
    return st;
}

static il_status conv_backward(tc_gpu *c, node_io *io) {
    il_conv_geom g;
    il_status st = gr_conv_geom(&io->gc, &g);
    if (st) return st;
    int64_t cg = g.c / g.group, mg = g.m / g.group, K = cg * g.k_sp, OS = g.out_sp;
    float *dX = io->dx[0], *dW = io->dx[1], *dB = io->n->n_inputs > 2 ? io->dx[2] : NULL;
    const float *X = io->x[0], *W = io->x[1], *DY = io->dy[0];
    if (dB) il_cuda_channel_sum(DY, g.n, g.m, OS, dB);
    if (!dX && !dW) return IL_OK;
    int64_t nb = chunk_of(g.n, (2 * K + mg) * OS);
    if ((st = dbuf((void **)&c->ws, &c->wscap, (size_t)((2 * K + mg) * nb * OS) * sizeof(float)))) return st;
    il_cuda_win w = win_of(&g, g.c);
    for (int64_t b0 = 0; b0 < g.n && !st; b0 += nb) {
        int64_t m = g.n - b0 < nb ? g.n - b0 : nb, L = m * OS;
        float *col = c->ws, *dcol = col + K * L, *dyt = dcol + K * L;
        for (int64_t grp = 0; grp < g.group && !st; grp++) {
            il_cuda_nchw_to_cm(DY + b0 * g.m * OS, mg, m, OS, g.m, grp * mg, dyt);
            if (dW) {
                il_cuda_im2col(X + b0 * g.c * g.in_sp, m, &w, grp * cg, cg, col);
                st = il_cuda_sgemm(0, 1, mg, K, L, 1.0f, dyt, L, col, L, 1.0f, dW + grp * mg * K, K);
            }
            if (dX && !st) {
                st = il_cuda_sgemm(1, 0, K, L, mg, 1.0f, W + grp * mg * K, K, dyt, L, 0.0f, dcol, L);
                il_cuda_col2im(dcol, m, &w, grp * cg, cg, dX + b0 * g.c * g.in_sp);
            }
        }
    }
    return st;
}

/* Clip's bounds as the CPU kernels read them; Relu is Clip to [0, inf). */
static void clip_bounds(node_io *io, float *lo, float *hi) {
    if (strcmp(io->n->op_type, "Clip")) {
        *lo = 0, *hi = INFINITY;
        return;
    }
    double l, h;
    gr_clip_bounds(&io->gc, &l, &h);
    *lo = (float)l, *hi = (float)h;
}

static il_status pool_geom(node_io *io, il_conv_geom *g) {
    return gr_geom2d(&io->gc, NULL, (int)il_attr_int(io->n, "ceil_mode", 0), g);
}

/* Gemm's operand sizes: Y[M,N] = alpha A'[M,K] B'[K,N] + beta C. */
typedef struct { int ta, tb; int64_t M, K, N, lda, ldb, cm, cn; float alpha, beta; } gemm_dims;

static il_status gemm_of(node_io *io, gemm_dims *d) {
    il_tensor *a = io->in[0], *b = io->in[1], *cc = gr_in(&io->gc, 2);
    d->ta = (int)il_attr_int(io->n, "transA", 0), d->tb = (int)il_attr_int(io->n, "transB", 0);
    d->alpha = il_attr_float(io->n, "alpha", 1.0f), d->beta = il_attr_float(io->n, "beta", 1.0f);
    d->M = d->ta ? a->dims[1] : a->dims[0], d->K = d->ta ? a->dims[0] : a->dims[1];
    d->N = d->tb ? b->dims[0] : b->dims[1], d->lda = a->dims[1], d->ldb = b->dims[1];
    d->cm = d->cn = 0;
    if (cc) {
        d->cm = cc->rank == 2 ? cc->dims[0] : 1;
        d->cn = cc->rank >= 1 ? cc->dims[cc->rank - 1] : 1;
        if (cc->rank > 2 || (d->cm != 1 && d->cm != d->M) || (d->cn != 1 && d->cn != d->N))
            return gr_err(&io->gc, IL_ERR_UNSUPPORTED, "the CUDA trainer's Gemm takes C of [N], [1,N], [M,N] or a scalar");
    }
    return IL_OK;
}

/* ---------------------------------------------------------------- the training kernels */

static il_status conv_fwd(tc_gpu *c, node_io *io, int k) { return conv_forward(c, io); }
static il_status conv_bwd(tc_gpu *c, node_io *io, int k) { return conv_backward(c, io); }

static void bn_dims(node_io *io, int64_t *N, int64_t *C, int64_t *S) {
    il_tensor *x = io->in[0];
    *N = x->dims[0], *C = x->dims[1];
    *S = il_tensor_numel(x) / (*N * *C > 0 ? *N * *C : 1);
}

static il_status bn_infer_fwd(tc_gpu *c, node_io *io, int k) {
    int64_t N, C, S;
    bn_dims(io, &N, &C, &S);
    c->trained[k] = 0;
    il_cuda_bn_infer(io->x[0], N, C, S, io->x[1], io->x[2], io->x[3], io->x[4], il_attr_float(io->n, "epsilon", 1e-5f),
                     io->y[0]);
    return IL_OK;
}

static il_status bn_train_fwd(tc_gpu *c, node_io *io, int k) {
    int64_t N, C, S;
    bn_dims(io, &N, &C, &S);
    float eps = il_attr_float(io->n, "epsilon", 1e-5f), mom = il_attr_float(io->n, "momentum", 0.9f);
    c->trained[k] = 1;
    if (N * S < 2) return gr_err(&io->gc, IL_ERR_INVALID, "batch statistics need more than one value per channel");
    il_status st = dbuf(&c->nsave[k], &c->ncap[k], (size_t)(2 * C) * sizeof(float));
    if (st) return st;
    float *ms = c->nsave[k];
    il_cuda_bn_train(io->x[0], N, C, S, io->x[1], io->x[2], eps, mom, io->x[3], io->x[4], ms, ms + C, io->y[0]);
    return IL_OK;
}

static il_status bn_bwd(tc_gpu *c, node_io *io, int k) {
    if (!c->trained[k] || !c->nsave[k]) return gr_err(&io->gc, IL_ERR_INTERNAL, "backward without a training forward");
    int64_t N, C, S;
    bn_dims(io, &N, &C, &S);
    float *ms = c->nsave[k];
    il_cuda_bn_backward(io->x[0], io->dy[0], N, C, S, io->x[1], ms, ms + C, io->dx[0], io->dx[1], io->dx[2]);
    return IL_OK;
}

static il_status clip_fwd(tc_gpu *c, node_io *io, int k) {
    float lo, hi;
    clip_bounds(io, &lo, &hi);
    il_cuda_clip(io->x[0], il_tensor_numel(io->in[0]), lo, hi, io->y[0]);
    return IL_OK;
}

static il_status clip_bwd(tc_gpu *c, node_io *io, int k) {
    float lo, hi;
    clip_bounds(io, &lo, &hi);
    if (io->dx[0]) il_cuda_clip_backward(io->x[0], io->dy[0], il_tensor_numel(io->in[0]), lo, hi, io->dx[0]);
    return IL_OK;
}

/* MaxPool keeps its winners for backward, in training and out */
static il_status maxpool_fwd(tc_gpu *c, node_io *io, int k) {
    il_conv_geom g;
    il_status st = pool_geom(io, &g);
    if (!st) st = dbuf(&c->nsave[k], &c->ncap[k], (size_t)il_tensor_numel(io->out[0]) * sizeof(int32_t));
    if (st) return st;
    il_cuda_win w = win_of(&g, g.c);
    il_cuda_maxpool(io->x[0], g.n * g.c, &w, io->y[0], c->nsave[k]);
    return IL_OK;
}

static il_status maxpool_bwd(tc_gpu *c, node_io *io, int k) {
    il_conv_geom g;
    il_status st = pool_geom(io, &g);
    if (st || !io->dx[0]) return st;
    il_cuda_win w = win_of(&g, g.c);
    il_cuda_maxpool_backward(io->dy[0], c->nsave[k], g.n * g.c, &w, io->dx[0]);
    return IL_OK;
}

static il_status gap_fwd(tc_gpu *c, node_io *io, int k) {
    int64_t ny = il_tensor_numel(io->out[0]), nx = il_tensor_numel(io->in[0]);
    il_cuda_gap(io->x[0], ny, nx / (ny ? ny : 1), io->y[0]);
    return IL_OK;
}

static il_status gap_bwd(tc_gpu *c, node_io *io, int k) {
    int64_t ny = il_tensor_numel(io->out[0]), nx = il_tensor_numel(io->in[0]);
    if (io->dx[0]) il_cuda_gap_backward(io->dy[0], ny, nx / (ny ? ny : 1), io->dx[0]);
    return IL_OK;
}

static il_status copy_fwd(tc_gpu *c, node_io *io, int k) { return il_cuda_copy(io->y[0], io->x[0], fbytes(io->out[0])); }

static il_status copy_bwd(tc_gpu *c, node_io *io, int k) {
    if (io->dx[0]) il_cuda_axpy(io->dy[0], il_tensor_numel(io->out[0]), 1.0f, io->dx[0]);
    return IL_OK;
}

static il_status same_shape(node_io *io) {
    int64_t ny = il_tensor_numel(io->out[0]);
    if (il_tensor_numel(io->in[1]) != ny || il_tensor_numel(io->in[0]) != ny)
        return gr_err(&io->gc, IL_ERR_UNSUPPORTED, "the CUDA trainer adds tensors of the same shape only");
    return IL_OK;
}

static il_status add_fwd(tc_gpu *c, node_io *io, int k) {
    il_status st = same_shape(io);
    if (!st) il_cuda_add(io->x[0], io->x[1], il_tensor_numel(io->out[0]), io->y[0]);
    return st;
}

static il_status add_bwd(tc_gpu *c, node_io *io, int k) {
    il_status st = same_shape(io);
    for (int i = 0; i < 2 && !st; i++)
        if (io->dx[i]) il_cuda_axpy(io->dy[0], il_tensor_numel(io->out[0]), 1.0f, io->dx[i]);
    return st;
}

static il_status gemm_fwd(tc_gpu *c, node_io *io, int k) {
    gemm_dims d;
    il_status st = gemm_of(io, &d);
    if (st) return st;
    float beta = 0.0f;
    if (d.cm) il_cuda_broadcast_rows(io->x[2], d.cm, d.cn, d.beta, d.M, d.N, io->y[0]), beta = 1.0f;
    return il_cuda_sgemm(d.ta, d.tb, d.M, d.N, d.K, d.alpha, io->x[0], d.lda, io->x[1], d.ldb, beta, io->y[0], d.N);
}

static il_status gemm_bwd(tc_gpu *c, node_io *io, int k) {
    gemm_dims d;
    il_status st = gemm_of(io, &d);
    if (st) return st;
    const float *A = io->x[0], *B = io->x[1], *DY = io->dy[0];
    int64_t M = d.M, K = d.K, N = d.N;
    if (io->dx[0] && !st) {
        if (!d.ta) st = il_cuda_sgemm(0, d.tb ? 0 : 1, M, K, N, d.alpha, DY, N, B, d.ldb, 1.0f, io->dx[0], K);
        else st = il_cuda_sgemm(d.tb ? 1 : 0, 1, K, M, N, d.alpha, B, d.ldb, DY, N, 1.0f, io->dx[0], M);
    }
    if (io->dx[1] && !st) {
        if (!d.tb) st = il_cuda_sgemm(d.ta ? 0 : 1, 0, K, N, M, d.alpha, A, d.lda, DY, N, 1.0f, io->dx[1], N);
        else st = il_cuda_sgemm(1, d.ta ? 1 : 0, N, K, M, d.alpha, DY, N, A, d.lda, 1.0f, io->dx[1], K);
    }
    if (!st && d.cm && io->n->n_inputs > 2 && io->dx[2]) {
        if (d.cm == M && d.cn == N) il_cuda_axpy(DY, M * N, d.beta, io->dx[2]);
        else if (d.cm == 1 && d.cn == N) il_cuda_col_sum(DY, M, N, d.beta, io->dx[2]);
        else st = gr_err(&io->gc, IL_ERR_UNSUPPORTED, "the CUDA trainer trains Gemm's C of [N] or [M,N] only");
    }
    return st;
}

const tc_op tc_ops[] = {
    {"Conv", NULL, conv_fwd, conv_bwd},
    {"BatchNormalization", bn_train_fwd, bn_infer_fwd, bn_bwd},
    {"Relu", NULL, clip_fwd, clip_bwd},
    {"Clip", NULL, clip_fwd, clip_bwd},
    {"MaxPool", maxpool_fwd, maxpool_fwd, maxpool_bwd},
    {"GlobalAveragePool", NULL, gap_fwd, gap_bwd},
    {"Flatten", NULL, copy_fwd, copy_bwd},
    {"Reshape", NULL, copy_fwd, copy_bwd},
    {"Identity", NULL, copy_fwd, copy_bwd},
    {"Squeeze", NULL, copy_fwd, copy_bwd},
    {"Unsqueeze", NULL, copy_fwd, copy_bwd},
    {"Gemm", NULL, gemm_fwd, gemm_bwd},
    {"Add", NULL, add_fwd, add_bwd},
    {0},
};

/* Registered beside the cpu's backward kernels (il_train_register_kernels calls this once). */
void tc_register_kernels(void) {
    for (const tc_op *o = tc_ops; o->op; o++) {
        il_kernel *kn = calloc(1, sizeof *kn); /* lives as long as the registry */
        *kn = (il_kernel){.domain = "", .op = o->op, .backend = "cuda", .name = "cuda-train",
                          .role = IL_KERNEL_BACKWARD, .impl = o,
                          .doc = o->train_forward ? "GPU gradients; a training-mode forward of its own"
                                                  : "GPU gradients (the forward is the cuda inference kernel)"};
        if (il_kernel_register(kn)) free(kn);
    }
}

/* A signature of the node's input shapes: the registry's kernel is prepared again when it changes. */
static uint64_t shape_sig(const node_io *io) {
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < io->n->n_inputs; i++) {
        const il_tensor *x = io->in[i];
        h = (h ^ (uint64_t)(x ? x->rank + 7 : 3)) * 1099511628211ull;
        for (int d = 0; x && d < x->rank; d++) h = (h ^ (uint64_t)x->dims[d]) * 1099511628211ull;
    }
    return h;
}

/* The node's forward through the cuda backend's inference kernel: picked and prepared on the
 * host view (constants with their host data; parameters and buffers count as inputs that change,
 * since the optimizer moves them every step), run on the device data. *used = 0 when no cuda
 * kernel takes the node. */
static il_status registry_forward(il_trainer *t, int k, node_io *io, int *used) {
    tc_gpu *c = t->gpu;
    const il_node *n = io->n;
    *used = 0;
    if (n->n_inputs > 64 || n->n_outputs > 16) return IL_OK;
    uint64_t cmask = 0;
    for (int i = 0; i < n->n_inputs && i < 64; i++) {
        int v = n->inputs[i];
        if (v >= 0 && t->fixed[v] && !c->in_arena[v]) cmask |= (uint64_t)1 << i;
    }
    il_kctx kc = {.node = n, .opset = io->gc.opset, .n_in = n->n_inputs, .n_out = n->n_outputs, .in = io->in,
                  .out = io->out, .threads = 1, .const_mask = cmask};
    uint64_t sig = shape_sig(io);
    il_status st = IL_OK;
    if (c->fsig[k] != sig) {
        if (c->fstate[k] && c->fk[k]->release) c->fk[k]->release(c->fstate[k]);
        c->fstate[k] = NULL;
        c->fws[k] = 0;
        c->fk[k] = il_kernel_pick(&kc, "cuda");
        il_error_clear();
        c->fsig[k] = sig;
        if (c->fk[k] && c->fk[k]->prepare && (st = c->fk[k]->prepare(&kc, &c->fstate[k], &c->fws[k]))) {
            c->fk[k] = NULL, c->fsig[k] = 0;
            return st;
        }
    }
    if (!c->fk[k]) return IL_OK;
    if (c->fws[k] > c->fworkcap && (st = dbuf(&c->fwork, &c->fworkcap, c->fws[k]))) return st;
    il_tensor ib[64], ob[16], *in[64], *out[16];
    for (int i = 0; i < n->n_inputs; i++) {
        in[i] = NULL;
        if (!io->in[i]) continue;
        ib[i] = *io->in[i], ib[i].owns_data = 0, in[i] = &ib[i];
        if (ib[i].dtype == IL_F32) ib[i].data = io->x[i];
        else if (!((cmask >> i) & 1)) return IL_OK; /* integer data only the host has: the op's own forward */
    }
    for (int i = 0; i < n->n_outputs; i++) {
        out[i] = NULL;
        if (!io->out[i]) continue;
        ob[i] = *io->out[i], ob[i].owns_data = 0, ob[i].data = io->y[i], out[i] = &ob[i];
    }
    kc.in = in, kc.out = out, kc.state = c->fstate[k], kc.workspace = c->fwork, kc.workspace_bytes = c->fws[k];
    *used = 1;
    return c->fk[k]->run(&kc);
}

static il_status node_forward(il_trainer *t, int k, int training) {
    tc_gpu *c = t->gpu;
    node_io io;
    node_bind(t, k, &io);
    const il_node *n = io.n;
    il_kctx kc = {.node = n, .opset = io.gc.opset, .n_in = n->n_inputs, .n_out = n->n_outputs, .in = io.in,
                  .out = io.out, .threads = 1, .infer_only = 1};
    for (int i = 0; i < n->n_outputs; i++)
        if (io.out[i]) io.out[i]->rank = -1;
    il_status st = t->ops[k]->infer(&kc);
    for (int i = 0; i < n->n_inputs && !st; i++)
        if (io.in[i] && io.in[i]->dtype == IL_F32 && !io.x[i])
            st = il_error(IL_ERR_INTERNAL, "input %d has no device data", i);
    for (int i = 0; i < n->n_outputs && !st; i++) {
        int v = n->outputs[i];
        if (v < 0) continue;
        if (!il_shape_known(io.out[i]))
            return il_error(IL_ERR_SHAPE, "node '%s' (%s): output %d has no known shape", n->name, n->op_type, i);
        if (io.out[i]->dtype != IL_F32)
            return il_error(IL_ERR_UNSUPPORTED, "node '%s': the CUDA trainer computes float32 only", n->name);
        if (il_tensor_numel(io.out[i]) >= INT32_MAX) /* the kernels index in 32 bits */
            return il_error(IL_ERR_UNSUPPORTED, "node '%s': a tensor of 2^31 or more elements (use a smaller batch)",
                            n->name);
        if ((st = dbuf((void **)&c->dv[v], &c->dcap[v], fbytes(io.out[i])))) break;
        io.y[i] = c->dv[v];
    }
    if (st) return st;
    const tc_op *op = c->op[k];
    int used = 0;
    if (training && op->train_forward) st = op->train_forward(c, &io, k);
    else if (!(st = registry_forward(t, k, &io, &used)) && !used) st = op->forward(c, &io, k);
    if (st && !strstr(il_errmsg(), n->name)) il_error_wrap(st, "node '%s' (%s): ", n->name, n->op_type);
    return st;
}

static il_status node_backward(il_trainer *t, int k) {
    tc_gpu *c = t->gpu;
    node_io io;
    node_bind(t, k, &io);
    il_status st = c->op[k]->backward(c, &io, k);
    if (st && !strstr(il_errmsg(), io.n->name)) il_error_wrap(st, "node '%s' (%s) backward: ", io.n->name, io.n->op_type);
    return st;
}

il_status tc_forward(il_trainer *t, const il_tensor *x, int training, const il_tensor **logits) {
    tc_gpu *c = t->gpu;
    il_graph *g = t->g;
    int xi = g->inputs[0], yo = g->outputs[0];
    il_tensor *xv = t->val[xi];
    xv->dtype = x->dtype, xv->rank = x->rank;
    memcpy(xv->dims, x->dims, sizeof xv->dims);
    il_status st = upload_state(t);
    if (!st) st = dbuf((void **)&c->dv[xi], &c->dcap[xi], fbytes(x));
    if (!st) st = il_cuda_upload(c->dv[xi], x->data, fbytes(x));
    for (int j = 0; j < t->n_order && !st; j++) {
        double t0 = c->profile ? (il_cuda_sync(), il_now()) : 0;
        st = node_forward(t, t->order[j], training);
        if (c->profile && training && !st)
            st = il_cuda_sync(), c->op_ms[0][c->op[t->order[j]] - tc_ops] += 1e3 * (il_now() - t0);
    }
    if (!st) st = il_cuda_sync();
    if (training && !st) st = download_buffers(t);
    if (!st) st = tc_value(t, yo);
    if (!st) *logits = t->val[yo];
    return st;
}

/* The parameter gradients, in one copy, added to the host's. */
static il_status grads_home(il_trainer *t) {
    tc_gpu *c = t->gpu;
    il_status st = il_cuda_download(c->state, c->garena, (size_t)c->n_param_f * sizeof(float));
    const float *s = c->state;
    for (int i = 0; i < t->n_params && !st; i++) {
        il_tensor *h = t->grad[t->params[i]];
        float *H = h->data;
        for (int64_t j = 0; j < il_tensor_numel(h); j++) H[j] += s[j];
        s += il_tensor_numel(h);
    }
    return st;
}

il_status tc_backward(il_trainer *t, const il_tensor *dout) {
    tc_gpu *c = t->gpu;
    il_graph *g = t->g;
    int yo = g->outputs[0];
    il_status st = il_cuda_zero(c->garena, (size_t)c->n_param_f * sizeof(float));
    for (int v = 0; v < g->n_values && !st; v++) {
        if (!t->needs[v] || c->in_arena[v]) continue;
        il_tensor *a = t->val[v];
        if (a->rank < 0 || a->dtype != IL_F32) continue;
        if ((st = dbuf((void **)&c->dg[v], &c->dgcap[v], fbytes(a)))) break;
        if (t->pending[v] && t->grad[v] && !t->fixed[v]) st = il_cuda_upload(c->dg[v], t->grad[v]->data, fbytes(a));
        else st = il_cuda_zero(c->dg[v], fbytes(a));
    }
    if (st) return st;
    il_tensor *gy = t->val[yo];
    if (il_tensor_numel(dout) != il_tensor_numel(gy) || dout->dtype != IL_F32)
        return il_error(IL_ERR_SHAPE, "output gradient has %lld %s values, the output %lld float32",
                        (long long)il_tensor_numel(dout), il_dtype_name(dout->dtype), (long long)il_tensor_numel(gy));
    /* dout joins whatever a hint added to the output's gradient */
    size_t ob = fbytes(gy);
    if ((st = dbuf((void **)&c->ws, &c->wscap, ob)) || (st = il_cuda_upload(c->ws, dout->data, ob))) return st;
    il_cuda_axpy(c->ws, il_tensor_numel(gy), 1.0f, c->dg[yo]);
    for (int j = t->n_order - 1; j >= 0 && !st; j--) {
        int k = t->order[j];
        const il_node *n = &g->nodes[k];
        if (n->n_outputs < 1 || n->outputs[0] < 0 || !t->needs[n->outputs[0]]) continue;
        int any = 0;
        for (int i = 0; i < n->n_inputs; i++) any |= n->inputs[i] >= 0 && t->needs[n->inputs[i]];
        double t0 = c->profile ? (il_cuda_sync(), il_now()) : 0;
        if (any) st = node_backward(t, k);
        if (c->profile && !st) st = il_cuda_sync(), c->op_ms[1][c->op[k] - tc_ops] += 1e3 * (il_now() - t0);
    }
    if (!st) st = il_cuda_sync();
    c->steps++;
    if (!st) st = grads_home(t);
    if (t->input_grad)
        for (int i = 0; i < g->n_inputs && !st; i++) {
            int v = g->inputs[i];
            il_tensor *a = t->val[v];
            if (!t->grad[v]) t->grad[v] = tr_tensor_struct(), t->grad[v]->owns_data = 1;
            if (!(st = tr_ensure(t->grad[v], &t->gcap[v], IL_F32, a->rank, a->dims)))
                st = il_cuda_download(t->grad[v]->data, c->dg[v], fbytes(a));
        }
    memset(t->pending, 0, (size_t)g->n_values);
    return st;
}

/* Bring value v's device data into its host tensor. */
il_status tc_value(il_trainer *t, int v) {
    il_tensor *h = t->val[v];
    if (h->rank < 0 || !t->gpu->dv[v]) return IL_ERR_INVALID;
    il_status st = tr_ensure(h, &t->cap[v], h->dtype, h->rank, h->dims);
    return st ? st : il_cuda_download(h->data, t->gpu->dv[v], il_tensor_bytes(h));
}

#endif

#ifndef IL_HAVE_CUDA
void tc_register_kernels(void) {}
#endif

const char *il_train_device_name(void) {
#ifdef IL_HAVE_CUDA
    return il_cuda_device_name();
#else
    return "";
#endif
}
