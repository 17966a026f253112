/*
 * sparse24.c - the cuda backend's `cusparselt-2:4` kernel: MatMul, FusedMatMul, Gemm and
 * FusedGemm whose constant weight is exactly 2:4 along the reduction, run on cuSPARSELt's sparse
 * tensor cores (sparselt.cu) in fp16 and bf16 plans; and, in every build, the 2:4 check and the
 * "not accelerated here" sentence (sparselt.h). Its first GPU run (session 9) was refused by
 * cuSPARSELt; the fixes since are not yet confirmed on a GPU (sparselt.cu, sparse24_gpu.sh).
 *
 * supports() takes a node only where all of this holds: a half-precision plan (cuSPARSELt's
 * 2:4 is for 16-bit types; float32 would be 1:2), cuSPARSELt loaded on an sm_80+ GPU, the weight
 * a float32 constant of rank 2 whose every output's K weights are 2:4 (il_is_2of4, exact: a
 * weight that `inferlab prune --method nm --nm 2:4` wrote, not one that merely has half zeros),
 * N and K multiples of 16, and cuSPARSELt measured faster than the dense cuBLAS product on the
 * node's shapes. That last test is the tactic timer's job for cpu kernels; the timer does not
 * time accelerator kernels (engine/tactics.c), so this kernel times itself, once per shape
 * (il_sparselt_time: both products on scratch buffers, device time), and its priority (15, above
 * cuBLAS's 10) then makes the planner take it exactly where it won. INFERLAB_SPARSELT=force skips
 * the timing (tests, A/B benches), =off never offers the kernel; INFERLAB_SPARSELT_LOG=1 prints
 * each timing decision on stderr.
 *
 * prepare transposes the weight to [N, K] (each row 2:4), and il_sparselt_create checks it again
 * with cuSPARSELt's own prune check, compresses it on the device and plans the product: the
 * compressed weight and the plan are the node's state. Gemm's C (times beta) is written where
 * the product lands and added by cuSPARSELt (beta 1); bias and activation run as the cuBLAS
 * kernels' epilogue (il_cu_bias_act).
 */
#include "../cpu/compute.h"
#include "sparselt.h"

#include <math.h>

int il_is_2of4(const float *w, int64_t rows, int64_t k, int64_t row_stride, int64_t k_stride) {
    if (!w || rows < 0 || k < 4 || k % 4) return 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t g = 0; g < k; g += 4) {
            int nz = 0;
            for (int j = 0; j < 4; j++) nz += w[r * row_stride + (g + j) * k_stride] != 0.0f; /* NaN != 0 */
            if (nz > 2) return 0;
        }
    return 1;
}

int il_nm_is_2of4(int n, int m) {
    if (n < 1 || m < 1 || n > m) return 0;
    if (4 % m == 0) return n * (4 / m) <= 2;
    return m % 4 == 0 && n <= 2;
}

#ifdef IL_HAVE_CUDA
#include "cuda.h"
#include "kernels_cuda.h"

const char *il_sparse24_not_accelerated(void) {
    static char msg[400];
    const char *why = NULL;
    if (il_sparselt_available(&why)) return NULL;
    snprintf(msg, sizeof msg, "2:4 sparsity is not accelerated here (no cuSPARSELt: %s)", why && *why ? why : "?");
    return msg;
}

/* ---------------------------------------------------------------- the node's product */

/* Y[m, n] = op(X)[m, k] W[k, n]; W's element (n, k) at w[n * rs + k * ks]. */
typedef struct {
    int64_t m, n, k, rs, ks;
    int gemm;
} geom;

static int is_gemm(const il_kctx *c) { return strstr(c->node->op_type, "Gemm") != NULL; }
static il_dtype half_dtype(const il_kctx *c) { return c->precision == IL_PREC_FP16 ? IL_F16 : IL_BF16; }

static int geom_of(const il_kctx *c, geom *g) {
    const il_tensor *a = c->in[0], *b = il_in(c, 1);
    if (!a || !b || b->rank != 2 || a->rank < 2) return 0;
    g->gemm = is_gemm(c);
    int tb = g->gemm && il_attr_int(c->node, "transB", 0);
    if (g->gemm && il_attr_int(c->node, "transA", 0)) return 0; /* X must be row-major [m, k] */
    g->k = tb ? b->dims[1] : b->dims[0];
    g->n = tb ? b->dims[0] : b->dims[1];
    g->m = g->k ? il_tensor_numel(a) / g->k : 0;
    g->rs = tb ? g->k : 1;
    g->ks = tb ? 1 : g->n;
    return g->m > 0 && a->dims[a->rank - 1] == g->k;
}

/* Wt [n, k] row-major, float32 (malloc'd) */
static float *weight_nk(const il_kctx *c, const geom *g) {
    const float *w = c->in[1]->data;
    float *t = malloc((size_t)(g->n * g->k) * sizeof *t);
    if (!t) return NULL;
    for (int64_t i = 0; i < g->n; i++)
        for (int64_t j = 0; j < g->k; j++) t[i * g->k + j] = w[i * g->rs + j * g->ks];
    return t;
}

/* ---------------------------------------------------------------- faster than cuBLAS? */

#define MAX_TIMED 64
typedef struct {
    int64_t m, n, k;
    il_dtype dt;
    int faster;
} timing;
static timing timed[MAX_TIMED];
static int n_timed;

/* Whether cuSPARSELt beats cuBLAS on this product (measured once per shape and type). */
static int faster_here(const il_kctx *c, const geom *g) {
    il_dtype dt = half_dtype(c);
    for (int i = 0; i < n_timed; i++)
        if (timed[i].m == g->m && timed[i].n == g->n && timed[i].k == g->k && timed[i].dt == dt)
            return timed[i].faster;
    float *wt = weight_nk(c, g), ms_s = INFINITY, ms_d = INFINITY;
    il_sparselt *lt = NULL;
    il_status st = wt ? il_sparselt_create(g->m, g->n, g->k, dt, wt, &lt) : IL_ERR_OOM;
    if (!st) st = il_sparselt_time(lt, &ms_s, &ms_d);
    int faster = !st && ms_s < ms_d;
    if (getenv("INFERLAB_SPARSELT_LOG"))
        fprintf(stderr, "cusparselt-2:4: %s M %lld N %lld K %lld %s: %s\n", c->node->op_type, (long long)g->m,
                (long long)g->n, (long long)g->k, il_dtype_name(dt),
                st ? il_errmsg() : faster ? "faster than cuBLAS, taken" : "not faster than cuBLAS, left to it");
    if (lt && !st && getenv("INFERLAB_SPARSELT_LOG")) fprintf(stderr, "  %s\n", il_sparselt_what(lt));
    il_error_clear();
    il_sparselt_free(lt);
    free(wt);
    if (n_timed < MAX_TIMED) timed[n_timed++] = (timing){g->m, g->n, g->k, dt, faster};
    return faster;
}

/* ---------------------------------------------------------------- the kernel */

static int s24_supports(const il_kctx *c) {
    const char *mode = getenv("INFERLAB_SPARSELT");
    if (mode && !strcmp(mode, "off")) return 0;
    if (c->precision != IL_PREC_FP16 && c->precision != IL_PREC_BF16) return 0;
    if (!(is_gemm(c) ? il_cuk_gemm_supports(c) : il_cuk_matmul_supports(c))) return 0;
    geom g;
    if (!il_cuk_const(c, 1) || c->in[1]->dtype != IL_F32 || !geom_of(c, &g)) return 0;
    if (g.n % 16 || g.k % 16 || !il_is_2of4(c->in[1]->data, g.n, g.k, g.rs, g.ks)) return 0;
    if (!il_sparselt_available(NULL)) return 0;
    return (mode && !strcmp(mode, "force")) || faster_here(c, &g);
}

typedef struct {
    il_sparselt *lt;
    il_act act;
    geom g;
    float alpha, beta;
    int64_t cs[2];
} s24_state;

static void s24_release(void *p) {
    s24_state *s = p;
    if (s) il_sparselt_free(s->lt);
    free(s);
}

static il_status s24_prepare(il_kctx *c, void **state, size_t *ws) {
    s24_state *s = calloc(1, sizeof *s);
    if (!s) return il_kerr(c, IL_ERR_OOM, "out of memory");
    il_status st = geom_of(c, &s->g) ? IL_OK : il_kerr(c, IL_ERR_UNSUPPORTED, "not a 2:4 product");
    int fused = !strncmp(c->node->op_type, "Fused", 5);
    if (!st && fused) st = il_act_parse(c, &s->act);
    s->alpha = s->g.gemm ? il_attr_float(c->node, "alpha", 1.0f) : 1.0f;
    s->beta = s->g.gemm ? il_attr_float(c->node, "beta", 1.0f) : 0.0f;
    if (!st && s->g.gemm && il_in(c, 2)) il_broadcast_strides(c->in[2], 2, c->out[0]->dims, s->cs);
    float *wt = st ? NULL : weight_nk(c, &s->g);
    if (!st && !wt) st = il_kerr(c, IL_ERR_OOM, "out of memory");
    if (!st && (st = il_sparselt_create(s->g.m, s->g.n, s->g.k, half_dtype(c), wt, &s->lt)))
        st = il_kerr(c, st, "%s", il_errmsg());
    free(wt);
    if (st) {
        s24_release(s);
        return st;
    }
    *state = s;
    *ws = il_sparselt_workspace(s->lt);
    return IL_OK;
}

static il_status s24_run(il_kctx *c) {
    const s24_state *s = c->state;
    il_tensor *y = c->out[0];
    const il_tensor *cc = s->g.gemm ? il_in(c, 2) : NULL, *bias = s->g.gemm ? NULL : il_in(c, 2);
    float beta = 0.0f;
    if (cc) { /* beta C where the product lands, added by cuSPARSELt */
        void *d = il_sparselt_dest(s->lt, c->in[0]->data, y->data, c->workspace);
        il_cu_fill_c(d, y->dtype, s->g.m, s->g.n, cc->data, s->cs[0], s->cs[1], s->beta);
        beta = 1.0f;
    }
    il_status st = il_sparselt_run(s->lt, s->alpha, beta, c->in[0]->data, y->data, c->workspace, c->workspace_bytes);
    if (st) return il_kerr(c, st, "%s", il_errmsg());
    if (bias || s->act.kind != IL_ACT_NONE)
        il_cu_bias_act(y->data, y->dtype, s->g.m, s->g.n, bias ? bias->data : NULL, il_cuk_act_op(&s->act), s->act.a,
                       s->act.b);
    return il_cuda_check(c->node->op_type);
}

#define S24_K(DOM, OP, DOC)                                                                                        \
    {.domain = DOM, .op = OP, .backend = "cuda", .name = "cusparselt-2:4", .dtypes = IL_DT(IL_F32), .priority = 15, \
     .supports = s24_supports, .prepare = s24_prepare, .run = s24_run, .release = s24_release, .doc = DOC}

const il_kernel il_kernels_cusparselt[] = {
    S24_K("", "MatMul", "2:4 constant weight on cuSPARSELt (fp16/bf16 plans; only where timed faster than cuBLAS)"),
    S24_K("ai.inferlab", "FusedMatMul", "2:4 weight on cuSPARSELt + bias/activation epilogue (fp16/bf16, timed)"),
    S24_K("", "Gemm", "2:4 constant B on cuSPARSELt, transA 0, C broadcast (fp16/bf16, timed)"),
    S24_K("ai.inferlab", "FusedGemm", "2:4 constant B on cuSPARSELt + activation (fp16/bf16, timed)"),
    {0},
};
#else
const char *il_sparse24_not_accelerated(void) {
    return "2:4 sparsity is not accelerated here (no cuSPARSELt: this build has no CUDA)";
}
const il_kernel il_kernels_cusparselt[] = {{0}};
#endif
