/*
 * matmul_cuda.c - the cuda backend's products and row kernels (kernels_cuda.h), float32 and the
 * half types: Gemm/FusedGemm, MatMul/FusedMatMul and ai.inferlab Attention through il_cuda_gemm
 * (cuBLAS strided batched, float sums; TF32 only in a tf32 plan), their bias and activation as
 * an epilogue kernel, and Softmax, LogSoftmax, LayerNormalization and the Reduce* ops (rows.cu).
 *
 * Batch dims broadcast like numpy's: the product loops on the host over all batch dims but the
 * last, and hands the last to one strided-batched call, with stride 0 for an operand that
 * repeats along it. A weight B of rank 2 makes one product of all of A's rows.
 */
#include "../cpu/compute.h"

#ifdef IL_HAVE_CUDA
#include "cuda.h"
#include "kernels_cuda.h"

static int64_t esize(il_dtype dt) { return (int64_t)il_dtype_size(dt); }

/* A prepare's result: a copy of the n bytes of setup at s as the node's state, no workspace. */
static il_status keep(il_kctx *c, const void *s, size_t n, void **state, size_t *ws) {
    void *p = malloc(n);
    if (!p) return il_kerr(c, IL_ERR_OOM, "out of memory");
    memcpy(p, s, n);
    *state = p;
    *ws = 0;
    return IL_OK;
}

/* ---------------------------------------------------------------- batched products */

/* The leading (batch) dims of a product's output and each operand's element stride along them
 * (0 where the operand repeats). */
typedef struct {
    int nlead;
    int64_t dims[IL_MAX_RANK];
    int64_t sa[IL_MAX_RANK], sb[IL_MAX_RANK];
} bplan;

/* Strides of t's matrices (t: [lead..., r, c]) over the output's nlead dims. */
static void lead_strides(const il_tensor *t, int nlead, const int64_t *dims, int64_t *s) {
    int tl = t->rank - 2;
    int64_t st = t->dims[t->rank - 2] * t->dims[t->rank - 1];
    for (int d = nlead - 1; d >= 0; d--) {
        int e = d - (nlead - tl);
        int64_t n = e >= 0 ? t->dims[e] : 1;
        s[d] = n == 1 && dims[d] != 1 ? 0 : st;
        st *= n;
    }
}

/* Batch dims of size 1 dropped and neighbours merged where both operands step through them
 * alike ([B, H] of attention's contiguous heads become one dim: one cuBLAS call, not B). */
static void bplan_init(bplan *p, const il_tensor *y, const il_tensor *a, const il_tensor *b) {
    int64_t dims[IL_MAX_RANK] = {0}, sa[IL_MAX_RANK], sb[IL_MAX_RANK];
    int nl = y->rank - 2, r = 0;
    for (int d = 0; d < nl; d++) dims[d] = y->dims[d];
    lead_strides(a, nl, dims, sa);
    lead_strides(b, nl, dims, sb);
    memset(p, 0, sizeof *p);
    for (int d = 0; d < nl; d++) {
        if (dims[d] == 1) continue;
        if (r > 0 && p->sa[r - 1] == sa[d] * dims[d] && p->sb[r - 1] == sb[d] * dims[d]) p->dims[r - 1] *= dims[d];
        else p->dims[r++] = dims[d];
        p->sa[r - 1] = sa[d], p->sb[r - 1] = sb[d];
    }
    p->nlead = r;
}

/* C[bi] = alpha A[bi] B[bi] (row-major m x k by k x n; C contiguous, m*n apart) for every
 * batch bi of the plan. */
static il_status bgemm(const bplan *p, int64_t m, int64_t n, int64_t k, float alpha, const void *a, int64_t lda,
                       const void *b, int64_t ldb, void *c, il_dtype dt, int precision) {
    int nl = p->nlead;
    int64_t last = nl ? p->dims[nl - 1] : 1, outer = 1, es = esize(dt);
    /* A's matrices back to back against one B (a layer's weights applied to [batch, seq, k]):
     * one product of last * m rows, which cuBLAS tiles far better than last products of m rows */
    if (nl == 1 && p->sb[0] == 0 && lda == k && p->sa[0] == m * k)
        return il_cuda_gemm(0, 0, last * m, n, k, alpha, a, lda, 0, b, ldb, 0, 0.0f, c, n, 0, 1, dt, precision);
    for (int d = 0; d < nl - 1; d++) outer *= p->dims[d];
    il_status st = IL_OK;
    for (int64_t o = 0; o < outer && !st; o++) {
        int64_t ao = 0, bo = 0, r = o;
        for (int d = nl - 2; d >= 0; d--) {
            int64_t idx = r % p->dims[d];
            r /= p->dims[d];
            ao += idx * p->sa[d];
            bo += idx * p->sb[d];
        }
        st = il_cuda_gemm(0, 0, m, n, k, alpha, (const char *)a + ao * es, lda, nl ? p->sa[nl - 1] : 0,
                          (const char *)b + bo * es, ldb, nl ? p->sb[nl - 1] : 0, 0.0f,
                          (char *)c + o * last * m * n * es, n, m * n, last, dt, precision);
    }
    return st;
}

/* Leading dims of the operands broadcast (numpy) to the output's. */
static int lead_broadcasts(const il_tensor *y, const il_tensor *t) {
    int nl = y->rank - 2, tl = t->rank - 2;
    if (tl > nl) return 0;
    for (int d = 0; d < tl; d++) {
        int64_t n = t->dims[d], want = y->dims[d + nl - tl];
        if (n != 1 && n != want) return 0;
    }
    return 1;
}

/* ---------------------------------------------------------------- MatMul, FusedMatMul */

typedef struct {
    il_act act;
    int64_t m, n, k;
    bplan bp;
} mm_state;

int il_cuk_matmul_supports(const il_kctx *c) {
    const il_tensor *a = il_in(c, 0), *b = il_in(c, 1), *bias = il_in(c, 2), *y = c->out[0];
    if (!il_cuk_f32_in(c, 0) || !b || b->dtype != IL_F32 || a->rank < 2 || b->rank < 2 || y->rank < 2) return 0;
    if (a->dims[a->rank - 1] != b->dims[b->rank - 2] || !lead_broadcasts(y, a) || !lead_broadcasts(y, b)) return 0;
    if (il_tensor_numel(a) == 0 || il_tensor_numel(b) == 0 || il_tensor_numel(y) == 0) return 0;
    if (bias && (bias->dtype != IL_F32 || bias->rank != 1 || bias->dims[0] != b->dims[b->rank - 1])) return 0;
    il_act act;
    if (il_act_parse(c, &act)) {
        il_error_clear();
        return 0;
    }
    return 1;
}

il_status il_cuk_matmul_prepare(il_kctx *c, void **state, size_t *ws) {
    mm_state *s = calloc(1, sizeof *s);
    if (!s) return il_kerr(c, IL_ERR_OOM, "out of memory");
    const il_tensor *a = c->in[0], *b = c->in[1];
    il_status st = il_act_parse(c, &s->act);
    if (st) {
        free(s);
        return st;
    }
    s->m = a->dims[a->rank - 2], s->k = a->dims[a->rank - 1], s->n = b->dims[b->rank - 1];
    if (b->rank == 2) { /* weights: all of A's rows at once */
        s->m = il_tensor_numel(a) / s->k;
        s->bp.nlead = 0;
    } else {
        bplan_init(&s->bp, c->out[0], a, b);
    }
    *state = s;
    *ws = 0;
    return IL_OK;
}

il_status il_cuk_matmul_run(il_kctx *c) {
    const mm_state *s = c->state;
    il_tensor *y = c->out[0];
    il_status st = bgemm(&s->bp, s->m, s->n, s->k, 1.0f, c->in[0]->data, s->k, c->in[1]->data, s->n, y->data,
                         y->dtype, c->precision);
    if (st) return st;
    const il_tensor *bias = il_in(c, 2);
    il_cu_bias_act(y->data, y->dtype, il_tensor_numel(y) / s->n, s->n, bias ? bias->data : NULL,
                   il_cuk_act_op(&s->act), s->act.a, s->act.b);
    return il_cuda_check(c->node->op_type);
}

/* ---------------------------------------------------------------- Gemm, FusedGemm */

typedef struct {
    il_act act;
    int ta, tb;
    int64_t m, n, k, lda, ldb, cs[2];
    float alpha, beta;
} gemm_state;

int il_cuk_gemm_supports(const il_kctx *c) {
    const il_tensor *a = il_in(c, 0), *b = il_in(c, 1), *cc = il_in(c, 2), *y = c->out[0];
    if (!il_cuk_f32_in(c, 0) || !b || b->dtype != IL_F32 || a->rank != 2 || b->rank != 2 || y->rank != 2) return 0;
    if (il_tensor_numel(a) == 0 || il_tensor_numel(b) == 0 || il_tensor_numel(y) == 0) return 0;
    if (cc) { /* C broadcasts to [M, N] */
        if (cc->dtype != IL_F32 || cc->rank > 2) return 0;
        for (int d = 0; d < cc->rank; d++) {
            int64_t n = cc->dims[cc->rank - 1 - d], want = y->dims[1 - d];
            if (n != 1 && n != want) return 0;
        }
    }
    il_act act;
    if (!strcmp(c->node->op_type, "FusedGemm") && il_act_parse(c, &act)) {
        il_error_clear();
        return 0;
    }
    return 1;
}

il_status il_cuk_gemm_prepare(il_kctx *c, void **state, size_t *ws) {
    gemm_state *d = calloc(1, sizeof *d);
    if (!d) return il_kerr(c, IL_ERR_OOM, "out of memory");
    il_status st = strcmp(c->node->op_type, "FusedGemm") ? IL_OK : il_act_parse(c, &d->act);
    if (st) {
        free(d);
        return st;
    }
    const il_tensor *a = c->in[0], *b = c->in[1], *cc = il_in(c, 2);
    d->ta = il_attr_int(c->node, "transA", 0) != 0, d->tb = il_attr_int(c->node, "transB", 0) != 0;
    d->alpha = il_attr_float(c->node, "alpha", 1.0f), d->beta = il_attr_float(c->node, "beta", 1.0f);
    d->m = c->out[0]->dims[0], d->n = c->out[0]->dims[1], d->k = a->dims[d->ta ? 0 : 1];
    d->lda = a->dims[1], d->ldb = b->dims[1];
    if (cc) il_broadcast_strides(cc, 2, c->out[0]->dims, d->cs);
    *state = d;
    *ws = 0;
    return IL_OK;
}

/* Y = act(alpha op(A) op(B) + beta C): beta C written first, the product added onto it. */
il_status il_cuk_gemm_run(il_kctx *c) {
    const gemm_state *d = c->state;
    il_tensor *y = c->out[0];
    const il_tensor *cc = il_in(c, 2);
    if (cc) il_cu_fill_c(y->data, y->dtype, d->m, d->n, cc->data, d->cs[0], d->cs[1], d->beta);
    il_status st = il_cuda_gemm(d->ta, d->tb, d->m, d->n, d->k, d->alpha, c->in[0]->data, d->lda, 0, c->in[1]->data,
                                d->ldb, 0, cc ? 1.0f : 0.0f, y->data, d->n, 0, 1, y->dtype, c->precision);
    if (st) return st;
    il_cu_bias_act(y->data, y->dtype, d->m, d->n, NULL, il_cuk_act_op(&d->act), d->act.a, d->act.b);
    return il_cuda_check(c->node->op_type);
}

/* ---------------------------------------------------------------- Attention */

/* Y = Softmax(scale Q Kt + mask) V: the scores of every (batch, head) in the workspace, the
 * softmax over them in place with the mask, then the second product. */
typedef struct {
    int64_t sq, d, sk, dv, batches;
    bplan qk, pv;
    il_cu_mask mask;
    float scale;
} att_state;

int il_cuk_attention_supports(const il_kctx *c) {
    const il_tensor *q = il_in(c, 0), *k = il_in(c, 1), *v = il_in(c, 2), *mask = il_in(c, 3), *y = c->out[0];
    if (!il_cuk_f32_in(c, 0) || !k || !v || k->dtype != IL_F32 || v->dtype != IL_F32) return 0;
    int r = q->rank;
    if (r < 2 || k->rank != r || v->rank != r || y->rank != r || r > IL_MAX_RANK - 1) return 0;
    if (q->dims[r - 1] != k->dims[r - 2] || k->dims[r - 1] != v->dims[r - 2]) return 0;
    if (!lead_broadcasts(y, q) || !lead_broadcasts(y, k) || !lead_broadcasts(y, v)) return 0;
    if (il_tensor_numel(q) == 0 || il_tensor_numel(k) == 0 || il_tensor_numel(v) == 0 || il_tensor_numel(y) == 0)
        return 0;
    if (mask) {
        if (mask->dtype != IL_F32 || mask->rank > r) return 0;
        for (int i = 0; i < mask->rank; i++) {
            int64_t m = mask->dims[mask->rank - 1 - i], s = i == 0 ? k->dims[r - 1] : y->dims[r - 1 - i];
            if (m != 1 && m != s) return 0;
        }
    }
    return 1;
}

il_status il_cuk_attention_prepare(il_kctx *c, void **state, size_t *ws) {
    att_state *s = calloc(1, sizeof *s);
    if (!s) return il_kerr(c, IL_ERR_OOM, "out of memory");
    const il_tensor *q = c->in[0], *k = c->in[1], *v = c->in[2], *mask = il_in(c, 3), *y = c->out[0];
    int r = q->rank, lead = r - 2;
    s->sq = q->dims[r - 2], s->d = q->dims[r - 1], s->sk = k->dims[r - 1], s->dv = v->dims[r - 1];
    s->batches = il_tensor_numel(y) / (s->sq * s->dv);
    s->scale = il_attr_float(c->node, "scale", 1.0f);
    /* the scores [lead..., Sq, Sk], contiguous: the second product's A */
    il_tensor sc = *y;
    sc.dims[r - 1] = s->sk;
    bplan_init(&s->qk, &sc, q, k);
    bplan_init(&s->pv, y, &sc, v);
    if (mask) { /* row b*Sq + i of the scores reads the mask at i*ms[lead] + sum_d idx_d(b)*ms[d] */
        int64_t ms[IL_MAX_RANK];
        il_broadcast_strides(mask, r, sc.dims, ms);
        s->mask.rank = lead + 1;
        s->mask.div[0] = 1, s->mask.mod[0] = s->sq, s->mask.str[0] = ms[lead];
        int64_t div = s->sq;
        for (int d = lead - 1; d >= 0; d--) {
            int e = lead - d;
            s->mask.div[e] = div, s->mask.mod[e] = sc.dims[d], s->mask.str[e] = ms[d];
            div *= sc.dims[d];
        }
        s->mask.col = ms[lead + 1];
    }
    *state = s;
    *ws = (size_t)(s->batches * s->sq * s->sk) * sizeof(float); /* float32 scores at most */
    return IL_OK;
}

il_status il_cuk_attention_run(il_kctx *c) {
    const att_state *s = c->state;
    il_tensor *y = c->out[0];
    const il_tensor *mask = il_in(c, 3);
    il_dtype dt = y->dtype;
    il_status st = bgemm(&s->qk, s->sq, s->sk, s->d, s->scale, c->in[0]->data, s->d, c->in[1]->data, s->sk,
                         c->workspace, dt, c->precision);
    if (st) return st;
    il_cu_softmax(c->workspace, c->workspace, dt, s->batches * s->sq, s->sk, 1, 1.0f, mask ? mask->data : NULL,
                  mask ? mask->dtype : dt, &s->mask, 0);
    if ((st = il_cuda_check("Attention softmax"))) return st;
    return bgemm(&s->pv, s->sq, s->dv, s->sk, 1.0f, c->workspace, s->sk, c->in[2]->data, s->dv, y->data, dt,
                 c->precision);
}

/* ---------------------------------------------------------------- Softmax */

/* [outer, n, inner] along the node's axis: before opset 13 the input is coerced to a matrix at
 * the axis (inner 1). */
typedef struct {
    int64_t outer, n, inner;
} view3;

static int softmax_view(const il_kctx *c, view3 *v) {
    const il_tensor *x = c->in[0];
    int r = x->rank, per_axis = c->opset >= 13;
    int64_t axis = il_attr_int(c->node, "axis", per_axis ? -1 : 1);
    if (axis < 0) axis += r;
    if (axis < 0 || axis >= r) return 0;
    v->outer = il_dims_prod(x->dims, 0, (int)axis);
    v->n = per_axis ? x->dims[axis] : il_dims_prod(x->dims, (int)axis, r);
    v->inner = per_axis ? il_dims_prod(x->dims, (int)axis + 1, r) : 1;
    return 1;
}

il_status il_cuk_softmax_run(il_kctx *c) {
    const view3 *v = c->state;
    il_cu_softmax(c->in[0]->data, c->out[0]->data, c->out[0]->dtype, v->outer, v->n, v->inner, 1.0f, NULL,
                  c->out[0]->dtype, NULL, !strcmp(c->node->op_type, "LogSoftmax"));
    return il_cuda_check(c->node->op_type);
}

/* ---------------------------------------------------------------- normalizations */

/* LayerNormalization: Scale and B one value per normalized element or one for all (other
 * broadcasts: the cpu). */
static int ln_param(const il_tensor *p, int64_t n, int64_t *stride) {
    if (!p) return 1;
    if (p->dtype != IL_F32) return 0;
    int64_t k = il_tensor_numel(p);
    *stride = k == n ? 1 : 0;
    return k == n || k == 1;
}

static int ln_axis(const il_kctx *c) {
    int r = c->in[0]->rank;
    int64_t axis = il_attr_int(c->node, "axis", -1);
    return axis < -r || axis >= r ? -1 : (int)(axis < 0 ? axis + r : axis);
}

/* InstanceNormalization (groups = C) and GroupNormalization: X [N, C, ...]; scale and B per
 * channel, or per group (GroupNormalization-18), told apart by their size as the reference does. */
static int group_norm(const il_kctx *c, il_cu_norm *g) {
    const il_tensor *x = c->in[0], *sc = il_in(c, 1), *b = il_in(c, 2);
    int inst = !strcmp(c->node->op_type, "InstanceNormalization");
    if (x->rank < 2 || !sc || !b || sc->dtype != IL_F32 || b->dtype != IL_F32) return 0;
    int64_t ch = x->dims[1], groups = inst ? ch : il_attr_int(c->node, "num_groups", -1);
    if (groups < 1 || ch % groups || il_tensor_numel(sc) != il_tensor_numel(b)) return 0;
    int64_t sp = il_dims_prod(x->dims, 2, x->rank), cpg = ch / groups, k = il_tensor_numel(sc);
    if (k != ch && k != groups) return 0;
    *g = (il_cu_norm){.rows = x->dims[0] * groups, .n = cpg * sp, .pg = groups, .pmul = k == ch ? cpg : 1,
                      .pdiv = sp > 0 ? sp : 1, .pjs = k == ch, .pjb = k == ch, .eps = g->eps};
    return g->n > 0;
}

/* The normalization of node c as il_cu_norm. */
static int norm_of(const il_kctx *c, il_cu_norm *g) {
    memset(g, 0, sizeof *g);
    g->eps = il_attr_float(c->node, "epsilon", 1e-5f);
    if (strcmp(c->node->op_type, "LayerNormalization")) return group_norm(c, g); /* Instance-, Group- */
    int axis = ln_axis(c), r = c->in[0]->rank;
    if (axis < 0 || !il_in(c, 1)) return 0;
    g->rows = il_dims_prod(c->in[0]->dims, 0, axis);
    g->n = il_dims_prod(c->in[0]->dims, axis, r);
    g->pg = 1, g->pdiv = 1;
    return g->n > 0 && ln_param(c->in[1], g->n, &g->pjs) && ln_param(il_in(c, 2), g->n, &g->pjb);
}

int il_cuk_layernorm_supports(const il_kctx *c) {
    il_cu_norm g;
    return il_cuk_f32_in(c, 0) && c->in[0]->rank >= 1 && norm_of(c, &g);
}

il_status il_cuk_layernorm_prepare(il_kctx *c, void **state, size_t *ws) {
    il_cu_norm g;
    norm_of(c, &g);
    return keep(c, &g, sizeof g, state, ws);
}

il_status il_cuk_layernorm_run(il_kctx *c) {
    const il_tensor *b = il_in(c, 2);
    il_tensor *mean = il_out(c, 1), *inv = il_out(c, 2);
    il_cu_layernorm(c->in[0]->data, c->out[0]->data, c->out[0]->dtype, c->state, c->in[1]->data, b ? b->data : NULL,
                    c->in[1]->dtype, mean ? mean->data : NULL, inv ? inv->data : NULL);
    return il_cuda_check(c->node->op_type);
}

/* ---------------------------------------------------------------- Reduce* */

/* Axes that form one run [a0, a1] of the input's dims (all of them when none are given), from
 * the attribute or a constant input (ReduceSum from opset 13, the others from 18). */
static int reduce_view(const il_kctx *c, view3 *v) {
    const il_tensor *x = c->in[0];
    int r = x->rank, n = 0, mark[IL_MAX_RANK] = {0};
    int from_input = !strcmp(c->node->op_type, "ReduceSum") ? c->opset >= 13 : c->opset >= 18;
    int64_t axes[IL_MAX_RANK];
    if (from_input && il_in(c, 1)) {
        const il_tensor *t = c->in[1];
        if (!il_cuk_const(c, 1) || t->rank != 1 || t->dims[0] > r) return 0;
        n = (int)t->dims[0];
        for (int i = 0; i < n; i++) axes[i] = il_int_at(t, i);
    } else if (!from_input) {
        const int64_t *a;
        n = il_attr_ints(c->node, "axes", &a);
        if (n > r) return 0;
        for (int i = 0; i < n; i++) axes[i] = a[i];
    }
    if (n == 0 && il_attr_int(c->node, "noop_with_empty_axes", 0)) return 0;
    for (int i = 0; i < n; i++) {
        int64_t a = axes[i] < 0 ? axes[i] + r : axes[i];
        if (a < 0 || a >= r || mark[a]) return 0;
        mark[a] = 1;
    }
    int a0 = -1, a1 = -1;
    for (int d = 0; d < r; d++)
        if (n == 0 || mark[d]) {
            if (a0 < 0) a0 = d;
            else if (a1 != d - 1) return 0; /* not one run */
            a1 = d;
        }
    if (r == 0 || a0 < 0) return 0;
    v->outer = il_dims_prod(x->dims, 0, a0);
    v->n = il_dims_prod(x->dims, a0, a1 + 1);
    v->inner = il_dims_prod(x->dims, a1 + 1, r);
    return v->n > 0;
}

/* ArgMax / ArgMin along `axis` (default 0). */
static int arg_view(const il_kctx *c, view3 *v) {
    const il_tensor *x = c->in[0];
    int r = x->rank;
    int64_t a = il_attr_int(c->node, "axis", 0);
    if (a < -r || a >= r || c->out[0]->dtype != IL_I64) return 0;
    if (a < 0) a += r;
    v->outer = il_dims_prod(x->dims, 0, (int)a), v->n = x->dims[a], v->inner = il_dims_prod(x->dims, (int)a + 1, r);
    return v->n > 0;
}

/* Softmax, the reductions, ArgMax/ArgMin: supports and prepare by the [outer, n, inner] view of
 * the node. */
static int view_of(const il_kctx *c, view3 *v) {
    const char *op = c->node->op_type;
    return !strncmp(op, "Reduce", 6) ? reduce_view(c, v) : !strncmp(op, "Arg", 3) ? arg_view(c, v) : softmax_view(c, v);
}

int il_cuk_view_supports(const il_kctx *c) {
    view3 v;
    return il_cuk_f32_in(c, 0) && c->in[0]->rank >= 1 && view_of(c, &v);
}

il_status il_cuk_arg_run(il_kctx *c) {
    const view3 *v = c->state;
    il_cu_arg(c->in[0]->data, c->out[0]->data, c->in[0]->dtype, v->outer, v->n, v->inner,
              !strcmp(c->node->op_type, "ArgMax"), il_attr_int(c->node, "select_last_index", 0) != 0);
    return il_cuda_check(c->node->op_type);
}

il_status il_cuk_view_prepare(il_kctx *c, void **state, size_t *ws) {
    view3 v;
    view_of(c, &v);
    return keep(c, &v, sizeof v, state, ws);
}

il_status il_cuk_reduce_run(il_kctx *c) {
    static const char *names[] = {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
                                  "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"};
    const view3 *v = c->state;
    int k = 0;
    while (k < 9 && strcmp(c->node->op_type, names[k])) k++;
    il_cu_reduce(c->in[0]->data, c->out[0]->data, c->out[0]->dtype, v->outer, v->n, v->inner, (il_cu_red)k);
    return il_cuda_check(c->node->op_type);
}
#endif
