/*
 * kernels_cuda.c - the cuda backend's kernels for the CNN ops: Conv/FusedConv by im2col +
 * cuBLAS sgemm (float32 only; cuDNN's are in conv_cudnn.c), and, for float32 and the half
 * types a half-precision plan holds on the device, Relu, Clip, BatchNormalization, MaxPool,
 * AveragePool, GlobalAveragePool, Gemm and the reshape-like copies. The transformer ops and
 * the elementwise family are in ops_cuda.c and matmul_cuda.c.
 *
 * Contract beyond engine.h's: c->in[i]->data and c->out[i]->data are device pointers, shapes
 * are the plan's (fixed at build), c->workspace is device memory of the size prepare asked
 * for. The executor (plan_device.c) uploads constants once and moves other values between host
 * and device where the placement changes. supports() sees the graph's float32 view (also in a
 * half-precision plan, c->precision) and keeps each kernel to what it computes like the
 * reference (within float rounding): 2-D windows, activations Relu/Clip; the planner runs
 * everything else on the cpu. run() reads the dtypes the device holds from c->in / c->out.
 *
 * These are the forward ops the GPU trainer (distill/trainer_cuda.c) used to list in a table of
 * its own; this is their one home now.
 */
#include "../cpu/compute.h"
#include "../ops/fused.h"

#ifdef IL_HAVE_CUDA
#include "cuda.h"
#include "kernels_cuda.h"

static int f32(const il_tensor *t) { return t && t->dtype == IL_F32 && il_shape_known(t); }

/* float32 only (the im2col convs): a half-precision plan places these nodes on the cpu, or on
 * conv_cudnn.c's kernels. */
static int all_f32(const il_kctx *c) {
    if (c->precision == IL_PREC_FP16 || c->precision == IL_PREC_BF16) return 0;
    for (int i = 0; i < c->n_in; i++)
        if (c->in[i] && !f32(c->in[i])) return 0;
    for (int i = 0; i < c->n_out; i++)
        if (c->out[i] && !f32(c->out[i])) return 0;
    return 1;
}

int il_cuk_floats(const il_kctx *c) {
    for (int i = 0; i < c->n_in + c->n_out; i++) {
        const il_tensor *t = i < c->n_in ? c->in[i] : c->out[i - c->n_in];
        if (!t) continue;
        if (!il_shape_known(t) || (il_dtype_is_float(t->dtype) && t->dtype != IL_F32) || !il_dtype_size(t->dtype))
            return 0;
    }
    return 1;
}

int il_cuk_f32_in(const il_kctx *c, int i) { return il_in(c, i) && c->in[i]->dtype == IL_F32 && il_cuk_floats(c); }

int il_cuk_const(const il_kctx *c, int i) { return il_in(c, i) && ((c->const_mask >> i) & 1) && c->in[i]->data; }

il_cu_op il_cuk_act_op(const il_act *a) {
    switch (a->kind) {
    case IL_ACT_NONE: return IL_CU_IDENT;
    case IL_ACT_RELU: return IL_CU_RELU;
    case IL_ACT_CLIP: return IL_CU_CLIP;
    case IL_ACT_LEAKY: return IL_CU_LEAKY;
    case IL_ACT_SIGMOID: return IL_CU_SIGMOID;
    case IL_ACT_HSWISH: return IL_CU_HSWISH;
    case IL_ACT_HSIGMOID: return IL_CU_HSIGMOID;
    case IL_ACT_GELU: return IL_CU_GELU;
    case IL_ACT_GELU_TANH: return IL_CU_GELU_TANH;
    case IL_ACT_TANH: return IL_CU_TANH;
    case IL_ACT_SILU: return IL_CU_SILU;
    }
    return IL_CU_IDENT;
}

/* Geometry of a 2-D window op (Conv with its weight, pools without). */
static il_status win2d(const il_kctx *c, const il_tensor *w, int ceil_mode, il_conv_geom *g) {
    int64_t k[2];
    if (w) k[0] = w->dims[2], k[1] = w->dims[3];
    il_status st = il_window_geom(c, c->in[0], w ? k : NULL, ceil_mode, 1, g);
    if (st) return st;
    if (w) g->group = il_attr_int(c->node, "group", 1), g->m = w->dims[0];
    return IL_OK;
}

static il_cuda_win to_win(const il_conv_geom *g) {
    il_cuda_win w = {g->c, g->in[0], g->in[1], g->out[0], g->out[1], g->k[0], g->k[1],
                     g->stride[0], g->stride[1], g->dil[0], g->dil[1], g->pad[0], g->pad[1]};
    return w;
}

/* ---------------------------------------------------------------- Conv / FusedConv */

typedef struct {
    il_conv_geom g;
    il_act act;
    int64_t nb; /* images per chunk */
} conv_state;

/* Images per chunk so that the columns stay under 256 MB of workspace. */
static int64_t chunk_of(int64_t n, int64_t per_image) {
    int64_t nb = ((int64_t)64 << 20) / (per_image > 0 ? per_image : 1);
    return nb < 1 ? 1 : nb > n ? n : nb;
}

static int conv_supports(const il_kctx *c) {
    const il_tensor *x = c->in[0], *w = il_in(c, 1);
    if (!all_f32(c) || x->rank != 4 || !w || w->rank != 4) return 0;
    if (strcmp(c->node->op_type, "FusedConv")) return 1;
    il_act a;
    if (il_act_parse(c, &a)) return 0;
    il_error_clear();
    return a.kind == IL_ACT_NONE || a.kind == IL_ACT_RELU || a.kind == IL_ACT_CLIP;
}

static il_status conv_prepare(il_kctx *c, void **state, size_t *ws) {
    conv_state *s = calloc(1, sizeof *s);
    if (!s) return il_kerr(c, IL_ERR_OOM, "out of memory");
    il_status st = win2d(c, c->in[1], 0, &s->g);
    if (!st && !strcmp(c->node->op_type, "FusedConv")) st = il_act_parse(c, &s->act);
    if (st) { free(s); return st; }
    const il_conv_geom *g = &s->g;
    int64_t cg = g->c / g->group, mg = g->m / g->group, K = cg * g->k_sp;
    s->nb = chunk_of(g->n, (K + mg) * g->out_sp);
    *ws = (size_t)((K + mg) * s->nb * g->out_sp) * sizeof(float);
    *state = s;
    return IL_OK;
}

/* im2col per chunk of images and group, one cuBLAS sgemm, then the channel-major result into
 * NCHW with the bias; FusedConv adds Z and clips afterwards. */
static il_status conv_run(il_kctx *c) {
    const conv_state *s = c->state;
    const il_conv_geom *g = &s->g;
    int64_t cg = g->c / g->group, mg = g->m / g->group, K = cg * g->k_sp, OS = g->out_sp, nb = s->nb;
    il_cuda_win w = to_win(g);
    const float *X = c->in[0]->data, *W = c->in[1]->data, *B = il_in(c, 2) ? il_in(c, 2)->data : NULL;
    float *Y = c->out[0]->data;
    il_status st = IL_OK;
    for (int64_t b0 = 0; b0 < g->n && !st; b0 += nb) {
        int64_t m = g->n - b0 < nb ? g->n - b0 : nb, L = m * OS;
        float *col = c->workspace, *yt = col + K * L;
        for (int64_t grp = 0; grp < g->group && !st; grp++) {
            il_cuda_im2col(X + b0 * g->c * g->in_sp, m, &w, grp * cg, cg, col);
            st = il_cuda_sgemm(0, 0, mg, L, K, 1.0f, W + grp * mg * K, K, col, L, 0.0f, yt, L);
            il_cuda_cm_to_nchw(yt, mg, m, OS, g->m, grp * mg, B, Y + b0 * g->m * OS);
        }
    }
    int64_t ny = il_tensor_numel(c->out[0]);
    const il_tensor *Z = il_in(c, 3);
    if (!st && Z && !strcmp(c->node->op_type, "FusedConv")) il_cuda_add(Y, Z->data, ny, Y);
    if (!st && s->act.kind == IL_ACT_RELU) il_cuda_clip(Y, ny, 0.0f, INFINITY, Y);
    if (!st && s->act.kind == IL_ACT_CLIP) il_cuda_clip(Y, ny, s->act.a, s->act.b, Y);
    return st;
}

/* ---------------------------------------------------------------- Relu, Clip */

/* Clip's bounds: attributes before opset 11, constant inputs 1 and 2 after (host copies are
 * what the planner hands supports/prepare; run only sees device data, so they are read once). */
typedef struct {
    float lo, hi;
} clip_state;

static int clip_supports(const il_kctx *c) {
    if (!il_cuk_f32_in(c, 0)) return 0;
    for (int i = 1; i < c->n_in; i++)
        if (c->in[i] && (!il_cuk_const(c, i) || c->in[i]->dtype != IL_F32)) return 0;
    return 1;
}

static il_status clip_prepare(il_kctx *c, void **state, size_t *ws) {
    clip_state *s = malloc(sizeof *s);
    if (!s) return il_kerr(c, IL_ERR_OOM, "out of memory");
    s->lo = -INFINITY, s->hi = INFINITY;
    if (c->opset < 11) {
        s->lo = il_attr_float(c->node, "min", -INFINITY);
        s->hi = il_attr_float(c->node, "max", INFINITY);
    } else {
        if (il_in(c, 1)) s->lo = ((const float *)c->in[1]->data)[0];
        if (il_in(c, 2)) s->hi = ((const float *)c->in[2]->data)[0];
    }
    *state = s;
    *ws = 0;
    return IL_OK;
}

/* out = op(in 0) elementwise, same shape. */
static il_status map1(il_kctx *c, il_cu_op op, float a, float b) {
    il_cu_geom g;
    const il_tensor *x = c->in[0];
    il_cu_geom_of(c->out[0], &x, 1, &g);
    const void *in[1] = {x->data};
    il_dtype dt[1] = {x->dtype};
    il_cu_map(op, a, b, &g, in, dt, c->out[0]->data, c->out[0]->dtype);
    return il_cuda_check(c->node->op_type);
}

static il_status relu_run(il_kctx *c) { return map1(c, IL_CU_RELU, 0, 0); }

static il_status clip_run(il_kctx *c) {
    const clip_state *s = c->state;
    return map1(c, IL_CU_CLIP, s->lo, s->hi);
}

static int relu_supports(const il_kctx *c) { return il_cuk_f32_in(c, 0); }

/* ---------------------------------------------------------------- BatchNormalization */

/* Inference mode with one parameter per channel (not the spatial=0 form of old opsets). */
static int bn_supports(const il_kctx *c) {
    if (!il_cuk_f32_in(c, 0) || c->in[0]->rank < 2 || c->n_in < 5 || c->n_out != 1 ||
        il_attr_int(c->node, "training_mode", 0))
        return 0;
    for (int i = 1; i < 5; i++)
        if (!c->in[i] || c->in[i]->dtype != IL_F32 || il_tensor_numel(c->in[i]) != c->in[0]->dims[1]) return 0;
    return 1;
}

static il_status bn_run(il_kctx *c) {
    const il_tensor *x = c->in[0];
    int64_t N = x->dims[0], C = x->dims[1], S = il_tensor_numel(x) / (N * C > 0 ? N * C : 1);
    il_cu_bn(x->data, c->out[0]->data, x->dtype, N, C, S, c->in[1]->data, c->in[2]->data, c->in[3]->data,
             c->in[4]->data, c->in[1]->dtype, il_attr_float(c->node, "epsilon", 1e-5f));
    return il_cuda_check("BatchNormalization");
}

/* ---------------------------------------------------------------- pools */

static int pool_supports(const il_kctx *c) {
    return il_cuk_f32_in(c, 0) && c->in[0]->rank == 4 && c->n_out == 1 && !il_attr_int(c->node, "storage_order", 0);
}

static il_status pool_prepare(il_kctx *c, void **state, size_t *ws) {
    il_conv_geom g;
    il_status st = win2d(c, NULL, (int)il_attr_int(c->node, "ceil_mode", 0), &g);
    if (st) return st;
    il_cu_pool *p = malloc(sizeof *p);
    if (!p) return il_kerr(c, IL_ERR_OOM, "out of memory");
    *p = (il_cu_pool){g.in[0], g.in[1], g.out[0], g.out[1], g.k[0], g.k[1], g.stride[0], g.stride[1],
                      g.dil[0], g.dil[1], g.pad[0], g.pad[1], g.pad_end[0], g.pad_end[1]};
    *state = p;
    *ws = 0;
    return IL_OK;
}

static il_status maxpool_run(il_kctx *c) {
    const il_tensor *x = c->in[0];
    il_cu_maxpool(x->data, c->out[0]->data, x->dtype, x->dims[0] * x->dims[1], c->state);
    return il_cuda_check("MaxPool");
}

static il_status avgpool_run(il_kctx *c) {
    const il_tensor *x = c->in[0];
    il_cu_avgpool(x->data, c->out[0]->data, x->dtype, x->dims[0] * x->dims[1], c->state,
                  (int)il_attr_int(c->node, "count_include_pad", 0));
    return il_cuda_check("AveragePool");
}

static int gap_supports(const il_kctx *c) { return il_cuk_f32_in(c, 0) && c->in[0]->rank >= 3; }

static il_status gap_run(il_kctx *c) {
    int64_t ny = il_tensor_numel(c->out[0]), nx = il_tensor_numel(c->in[0]);
    il_cu_gap(c->in[0]->data, c->out[0]->data, c->in[0]->dtype, ny, nx / (ny ? ny : 1));
    return il_cuda_check("GlobalAveragePool");
}

/* ---------------------------------------------------------------- reshape-likes */

/* The bytes do not change (a half value stays half on both sides). */
static int copy_supports(const il_kctx *c) {
    return c->in[0] && c->out[0] && c->in[0]->dtype == c->out[0]->dtype && il_shape_known(c->in[0]) &&
           il_shape_known(c->out[0]) && il_dtype_size(c->in[0]->dtype);
}

static il_status copy_run(il_kctx *c) {
    if (c->out[0]->data == c->in[0]->data) return IL_OK;
    return il_cuda_copy(c->out[0]->data, c->in[0]->data, il_tensor_bytes(c->out[0]));
}

#define F32 IL_DT(IL_F32)
#define CUDA_K(DOM, OP, NAME, SUP, PREP, RUN, REL, DOC)                                                            \
    {.domain = DOM, .op = OP, .backend = "cuda", .name = NAME, .dtypes = F32, .priority = 10, .supports = SUP,     \
     .prepare = PREP, .run = RUN, .release = REL, .doc = DOC}
#define COPY_K(OP)                                                                                                 \
    {.op = OP, .backend = "cuda", .name = "copy", .priority = 10, .supports = copy_supports, .run = copy_run,      \
     .doc = "a device copy, any dtype"}

const il_kernel il_kernels_cuda[] = {
    CUDA_K("", "Conv", "im2col-cublas", conv_supports, conv_prepare, conv_run, free,
           "2-D conv, float32: im2col per chunk of images + cuBLAS sgemm + bias"),
    CUDA_K("ai.inferlab", "FusedConv", "im2col-cublas", conv_supports, conv_prepare, conv_run, free,
           "2-D conv + bias (+ residual) (+ Relu/Clip), float32: im2col + cuBLAS sgemm"),
    CUDA_K("", "Relu", "cuda", relu_supports, NULL, relu_run, NULL, "elementwise; f32/f16/bf16"),
    CUDA_K("", "Clip", "cuda", clip_supports, clip_prepare, clip_run, free, "elementwise, constant bounds; f32/f16/bf16"),
    CUDA_K("", "BatchNormalization", "cuda", bn_supports, NULL, bn_run, NULL, "inference mode; f32/f16/bf16"),
    CUDA_K("", "MaxPool", "cuda", pool_supports, pool_prepare, maxpool_run, free, "2-D windows; f32/f16/bf16"),
    CUDA_K("", "AveragePool", "cuda", pool_supports, pool_prepare, avgpool_run, free,
           "2-D windows, count_include_pad, ceil_mode; f32/f16/bf16"),
    CUDA_K("", "GlobalAveragePool", "cuda", gap_supports, NULL, gap_run, NULL, "one mean per plane; f32/f16/bf16"),
    CUDA_K("", "Gemm", "cublas", il_cuk_gemm_supports, il_cuk_gemm_prepare, il_cuk_gemm_run, free,
           "cuBLAS (f32, TF32 on request, f16, bf16; float sums), C broadcast"),
    COPY_K("Flatten"),
    COPY_K("Reshape"),
    COPY_K("Identity"),
    COPY_K("Squeeze"),
    COPY_K("Unsqueeze"),
    {0},
};
#else
const il_kernel il_kernels_cuda[] = {{0}};
#endif
