/*
 * qgemm_matmul.c - the INT8 matrix-product kernel "qgemm" of QLinearMatMul, MatMulInteger, the
 * ai.inferlab QMatMul and ONNX Runtime's com.microsoft QGemm (engine/ops/qfused.c): A[..., M, K]
 * (8-bit activations; QGemm: [M, K] or, transA, [K, M]) times a constant B[K, N] (8-bit
 * weights; QGemm transB: [N, K], which is already the layout packed here).
 *
 * The GEMM of qgemm.h multiplies int8 rows by uint8 columns, so the product is computed as
 * Y^T = B^T A^T: B^T is packed once at prepare (one row per output column n, which is also
 * where per-column scales and zero points live), the rows of A are packed per call as the
 * columns, and the epilogue writes Y with a column stride. The zero-point and bias terms are
 * folded per output column as in qgemm_conv.c. QGemm without y_zero_point has a float output:
 * the GEMM stores its int32 sums (bias and zero points included) and one pass scales them.
 */
#include "qgemm.h"

typedef struct {
    int a, as, az, b, bs, bz, ys, yz, bias;
} mslots;

static const mslots QLINEAR = {0, 1, 2, 3, 4, 5, 6, 7, -1}, QMATMUL = {0, 1, 2, 3, 4, 5, 6, 7, 8},
                    MMINT = {0, -1, 2, 1, -1, 3, -1, -1, -1}, QGEMM = {0, 1, 2, 3, 4, 5, 7, 8, 6},
                    DQMM = {0, -1, -1, 1, 2, 3, -1, -1, -1}; /* its float bias (input 4) is added last */

/* The input in slot i (-1: the op has none), or NULL when omitted. */
static const il_tensor *slot(const il_kctx *c, int i) { return i >= 0 ? il_in(c, i) : NULL; }

static const mslots *slots_of(const il_kctx *c) {
    if (!strcmp(c->node->op_type, "MatMulInteger")) return &MMINT;
    if (!strcmp(c->node->op_type, "QGemm")) return &QGEMM;
    if (!strcmp(c->node->op_type, "DynamicQuantizeMatMul")) return &DQMM;
    return !strcmp(c->node->op_type, "QMatMul") ? &QMATMUL : &QLINEAR;
}

typedef struct {
    il_qweights w;
    int64_t k, n;
    uint8_t flip;
    il_qout out;
    int32_t zp, lo, hi;
    int32_t *row_add, *row_zw;
    double *scale;
    int threads;
    /* MatMulInteger after DynamicQuantizeLinear: A's zero point comes at run time, so row_add
     * is completed per run from its zero-point-free part and rz[j] = rowsum[j] - k * zb[j] */
    int az_runtime, a_s8;
    int64_t *base, *rz;
    int trans_a, f32; /* QGemm: A is [K, M]; the output is float (no y_zero_point) */
    int dyn;          /* DynamicQuantizeMatMul: A is float, quantized here each run */
} qmm_state;

/* K and N, and whether B is stored [N, K] (QGemm's transB) and A [K, M] (transA). */
static void qmm_geom(const il_kctx *c, const mslots *q, int64_t *k, int64_t *n, int *tb, int *ta) {
    const il_tensor *a = c->in[0], *b = c->in[q->b];
    if (q == &QGEMM) {
        int64_t m;
        il_qgemm_dims(c, &m, k, n);
        *tb = il_attr_int(c->node, "transB", 0) != 0, *ta = il_attr_int(c->node, "transA", 0) != 0;
        return;
    }
    *k = a->dims[a->rank - 1], *n = b->dims[1], *tb = *ta = 0;
}

/* The GEMM's columns (A's rows) and where a run's scratch lives in the workspace: the packed A,
 * its column sums, this run's column terms (a run-time zero point), the int32 sums (float out),
 * A quantized (DynamicQuantizeMatMul). */
typedef struct {
    int64_t rows;
    size_t xp, colsum, ra, acc, qa, fs, total;
} qmm_ws;

static qmm_ws ws_layout(const qmm_state *s, const il_tensor *a) {
    qmm_ws w = {.rows = s->k ? il_tensor_numel(a) / s->k : 0};
    w.colsum = (il_qx_bytes(s->k, w.rows) + 63) & ~(size_t)63;
    w.ra = w.colsum + (size_t)(w.rows + 1) * sizeof(int32_t);
    w.acc = w.ra + (s->az_runtime ? (size_t)(s->n + 1) * sizeof(int32_t) : 0);
    w.qa = w.acc + (s->f32 ? (size_t)(w.rows * s->n) * sizeof(int32_t) : 0);
    w.fs = (w.qa + (s->dyn ? (size_t)(w.rows * s->k) : 0) + 63) & ~(size_t)63;
    w.total = w.fs + (s->dyn ? (size_t)s->n * sizeof(float) : 0);
    return w;
}

static void qmm_release(void *p) {
    qmm_state *s = p;
    if (!s) return;
    il_qweights_free(&s->w);
    free(s->row_add), free(s->row_zw), free(s->scale), free(s->base), free(s->rz);
    free(s);
}

static int qmm_supports(const il_kctx *c) {
    const mslots *q = slots_of(c);
    const il_tensor *a = c->in[0], *b = il_in(c, q->b);
    if (!a || !b || !(q == &DQMM ? a->dtype == IL_F32 : il_q_is_8bit(a->dtype)) || !il_q_is_8bit(b->dtype) ||
        a->rank < 2 || b->rank != 2 || !il_shape_known(a))
        return 0;
    if (q == &QGEMM && a->rank != 2) return 0;
    if (q == &DQMM && il_in(c, 4) && (!il_q_const_or_absent(c, 4) || il_tensor_numel(c->in[4]) != b->dims[1])) return 0;
    const int need[] = {q->as, q->az, q->b, q->bs, q->bz, q->ys, q->yz, q->bias};
    for (int i = 0; i < 8; i++) /* MatMulInteger's A zero point may come at run time (dynamic) */
        if (!il_q_const_or_absent(c, need[i]) && !(q == &MMINT && i == 1 && il_shape_known(c->in[q->az])))
            return 0;
    int64_t k, n, nbs = il_q_numel(c, q->bs), nbz = il_q_numel(c, q->bz), nc = il_q_numel(c, q->bias);
    int tb, ta;
    qmm_geom(c, q, &k, &n, &tb, &ta);
    if (il_q_numel(c, q->az) != 1 || (nbs != 1 && nbs != n) || (nbz != 1 && nbz != n)) return 0;
    if (slot(c, q->yz) && !il_q_is_8bit(c->in[q->yz]->dtype)) return 0;
    /* a bias per column ([N], [1, N]) or per tensor; QGemm's per-row and [M, N] C: the reference */
    if (slot(c, q->bias) && nc != 1 && (nc != n || c->in[q->bias]->dims[c->in[q->bias]->rank - 1] != n))
        return 0;
    return k > 0 && k < 65536 && b->dims[tb ? 1 : 0] == k && b->dims[tb ? 0 : 1] == n;
}

static il_status qmm_prepare(il_kctx *c, void **state, size_t *workspace) {
    const mslots *q = slots_of(c);
    const il_tensor *A = c->in[0], *B = c->in[q->b];
    qmm_state *s = calloc(1, sizeof *s);
    int64_t k, n;
    int tb;
    if (s) qmm_geom(c, q, &k, &n, &tb, &s->trans_a);
    uint8_t *bt = s && !tb ? malloc((size_t)(k * n) + 1) : NULL;
    if (s) {
        s->row_add = calloc((size_t)n + 1, sizeof(int32_t));
        s->row_zw = calloc((size_t)n + 1, sizeof(int32_t));
        s->scale = calloc((size_t)n + 1, sizeof(double));
    }
    if (!s || (!tb && !bt) || !s->row_add || !s->row_zw || !s->scale) {
        free(bt);
        qmm_release(s);
        return il_kerr(c, IL_ERR_OOM, "out of memory");
    }
    s->k = k, s->n = n;
    const uint8_t *bd = B->data;
    for (int64_t i = 0; i < k && bt; i++)
        for (int64_t j = 0; j < n; j++) bt[j * k + i] = bd[i * n + j];
    int a_s8 = A->dtype == IL_I8, b_u8 = B->dtype == IL_U8;
    il_status st = il_qweights_pack(il_qisa_active(), bt ? bt : bd, b_u8, n, k, k, &s->w);
    free(bt);
    s->flip = a_s8 ? 0x80 : 0;
    s->dyn = q == &DQMM;
    s->az_runtime = s->dyn || (q->az >= 0 && !il_q_const_or_absent(c, q->az));
    s->a_s8 = a_s8;
    int64_t zau = s->az_runtime ? 0 : il_q_int_at(c, q->az, 0) + (a_s8 ? 128 : 0);
    if (s->az_runtime && (!(s->base = calloc((size_t)n + 1, sizeof *s->base)) ||
                          !(s->rz = calloc((size_t)n + 1, sizeof *s->rz))))
        st = IL_ERR_OOM;
    il_dtype ydt = slot(c, q->yz) ? c->in[q->yz]->dtype : q == &QGEMM || s->dyn ? IL_F32 : IL_I32;
    s->f32 = ydt == IL_F32 && !s->dyn; /* QGemm's float output: int32 sums, then a pass in double */
    s->out = s->dyn ? IL_QOUT_F32 : ydt == IL_U8 ? IL_QOUT_U8 : ydt == IL_I8 ? IL_QOUT_S8 : IL_QOUT_S32;
    s->zp = (int32_t)il_q_int_at(c, q->yz, 0);
    if (!st && s->out != IL_QOUT_S32) st = il_qact_range(c, il_q_get_at(c, q->ys, 0), s->zp, ydt, &s->lo, &s->hi);
    int any_zw = 0;
    for (int64_t j = 0; j < n && !st; j++) {
        int64_t zb = il_q_int_at(c, q->bz, j) - (b_u8 ? 128 : 0);
        int64_t add = il_q_int_at(c, q->bias, j) - zau * s->w.rowsum[j] + k * zau * zb;
        if (s->az_runtime) s->base[j] = add, s->rz[j] = s->w.rowsum[j] - k * zb;
        if (add < INT32_MIN || add > INT32_MAX)
            st = il_kerr(c, IL_ERR_UNSUPPORTED, "column %lld: bias and zero-point terms exceed int32", (long long)j);
        s->row_add[j] = (int32_t)add;
        s->row_zw[j] = (int32_t)zb;
        any_zw |= zb != 0;
        s->scale[j] = q == &QGEMM ? il_qgemm_scale(c, j) /* the reference's order */
                      : s->dyn    ? il_q_get_at(c, q->bs, j) /* b_scale: a_scale comes with each run */
                                  : il_q_get_at(c, q->as, 0) * il_q_get_at(c, q->bs, j) / il_q_get_at(c, q->ys, 0);
    }
    if (st) {
        qmm_release(s);
        return st;
    }
    if (!any_zw) {
        free(s->row_zw);
        s->row_zw = NULL;
    }
    s->threads = c->threads > 0 ? c->threads : 1;
    *workspace = ws_layout(s, A).total;
    *state = s;
    return IL_OK;
}

static il_status qmm_run(il_kctx *c) {
    const qmm_state *s = c->state;
    qmm_ws w = ws_layout(s, c->in[0]);
    int64_t rows = w.rows, strips = il_qx_strips(rows);
    uint8_t *xp = c->workspace;
    int32_t *colsum = s->row_zw ? (int32_t *)(xp + w.colsum) : NULL;
    if (rows == 0 || s->n == 0) return IL_OK;
    const uint8_t *a = c->in[0]->data;
    float as = 0;
    uint8_t az = 0;
    if (s->dyn) { /* DynamicQuantizeLinear's arithmetic, vectorized (quant_vec.c), over the threads */
        const float *x = c->in[0]->data;
        uint8_t *qa = xp + w.qa;
        int64_t total = rows * s->k, nt = s->threads < 16 && total > 65536 ? s->threads : total > 65536 ? 16 : 1;
        float mns[16], mxs[16], mn = 0, mx = 0;
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
        for (int64_t t = 0; t < nt; t++) {
            int64_t lo = total * t / nt, hi = total * (t + 1) / nt;
            il_dynq_minmax(x + lo, hi - lo, &mns[t], &mxs[t]);
        }
        for (int64_t t = 0; t < nt; t++) /* min and max of the parts': the whole's, exactly */
            mn = mns[t] < mn ? mns[t] : mn, mx = mxs[t] > mx ? mxs[t] : mx;
        il_dynq_scale(mn, mx, &as, &az);
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
        for (int64_t t = 0; t < nt; t++) {
            int64_t lo = total * t / nt, hi = total * (t + 1) / nt;
            il_dynq_apply(x + lo, qa + lo, hi - lo, as, az);
        }
        a = qa;
    }
#pragma omp parallel for num_threads(s->threads) if (s->threads > 1 && strips > 1) schedule(static)
    for (int64_t st = 0; st < strips; st++) {
        if (s->trans_a) /* A [K, M]: its columns are the GEMM's, stored row by row */
            il_qpack_rows(a, rows, s->k, rows, s->flip, xp, colsum, st, st + 1);
        else
            il_qpack_cols(a, s->k, s->k, rows, s->flip, xp, colsum, st, st + 1);
    }
    const int32_t *row_add = s->row_add;
    if (s->az_runtime) { /* this run's zero point of A into the column terms */
        int32_t *ra = (int32_t *)(xp + w.ra);
        const il_tensor *z = s->dyn ? NULL : c->in[2];
        int64_t zau = !z ? az : (z->dtype == IL_I8 ? ((const int8_t *)z->data)[0] : ((const uint8_t *)z->data)[0]) + (s->a_s8 ? 128 : 0);
        for (int64_t j = 0; j < s->n; j++) {
            int64_t add = s->base[j] - zau * s->rz[j];
            if (add < INT32_MIN || add > INT32_MAX)
                return il_kerr(c, IL_ERR_UNSUPPORTED, "column %lld: the zero-point terms exceed int32", (long long)j);
            ra[j] = (int32_t)add;
        }
        row_add = ra;
    }
    int32_t *acc = s->f32 ? (int32_t *)(xp + w.acc) : NULL;
    float *fs = s->dyn ? (float *)(xp + w.fs) : NULL;
    for (int64_t j = 0; fs && j < s->n; j++) fs[j] = as * (float)s->scale[j]; /* the graph's Mul(a_scale, b_scale) */
    il_qepi e = {.out = s->out, .row_add = row_add, .row_zw = s->row_zw, .colsum = colsum, .scale = s->scale,
                 .fscale = fs, .fbias = s->dyn && il_in(c, 4) ? c->in[4]->data : NULL, .zp = s->zp, .lo = s->lo,
                 .hi = s->hi, .y = acc ? (void *)acc : c->out[0]->data, .rs = 1, .cs = s->n};
    il_qgemm(&s->w, xp, rows, &e, s->threads);
    float *y = c->out[0]->data;
    int64_t n = s->n;
    for (int64_t i = 0; acc && i < rows; i++) /* QGemm: the reference's double product, rounded to float once */
        for (int64_t j = 0; j < n; j++) y[i * n + j] = (float)((double)acc[i * n + j] * s->scale[j]);
    return IL_OK;
}

#define QMM_KERNEL(DOMAIN, OP, SINCE, DTYPES)                                                                  \
    {.domain = DOMAIN, .op = OP, .since_version = SINCE, .backend = "cpu", .name = "qgemm",                   \
     .dtypes = DTYPES, .priority = 10, .supports = qmm_supports, .prepare = qmm_prepare,                       \
     .run = qmm_run, .release = qmm_release,                                                                   \
     .doc = "INT8 u8 x s8 GEMM (AVX-512 VNNI / AVX-VNNI / AVX2 / C by CPUID) on a constant B packed once"}

const il_kernel il_kernels_qmatmul[] = {
    QMM_KERNEL("", "QLinearMatMul", 10, IL_DT(IL_U8) | IL_DT(IL_I8)),
    QMM_KERNEL("", "MatMulInteger", 10, IL_DT(IL_U8) | IL_DT(IL_I8)),
    QMM_KERNEL("ai.inferlab", "QMatMul", 1, IL_DT(IL_U8) | IL_DT(IL_I8)),
    QMM_KERNEL("com.microsoft", "QGemm", 1, IL_DT(IL_U8) | IL_DT(IL_I8)),
    QMM_KERNEL("com.microsoft", "DynamicQuantizeMatMul", 1, IL_DT(IL_F32)),
    {0},
};
