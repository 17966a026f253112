/*
 * sparselt.cu - 2:4 structured-sparse products on NVIDIA cuSPARSELt (sparselt.h), for the cuda
 * backend's `cusparselt-2:4` kernel (sparse24.c). Written without a GPU; its first run (session 9,
 * H100, cuSPARSELt 0.8.0 from PyTorch 2.11's wheel) had the prune check refuse every weight. The
 * layout is the documented one (2:4 along op(A)'s K; PyTorch compresses the same row-major [N, K]
 * with opA N; hipSPARSELt's open check groups the same elements), so what changed since: the
 * check's device int is zeroed before the call (lt_check), a refusal says what the library's own
 * pruning changes (rejected), and every plan passes one product on a probe checked on the host
 * (probe) before a node may use it. NOT YET CONFIRMED ON A GPU.
 *
 * cuSPARSELt is opened with dlopen on first use, as cuDNN is (cudnn.cu): it is not part of the
 * CUDA toolkit (the GPU machine has it inside PyTorch's wheel, nvidia/cusparselt/lib), so this
 * build has no cusparseLt.h either. The few entry points, enums and opaque structs used are
 * declared below. Checked against:
 *   - NVIDIA's cusparseLt.h 0.4.0 (function signatures, CUSPARSELT_SPARSITY_50_PERCENT = 0 as the
 *     only sparsity, CUSPARSELT_MATMUL_ALG_DEFAULT = 0, the opaque structs as caller-allocated
 *     byte arrays), and docs.nvidia.com/cuda/cusparselt (types.html, functions.html);
 *   - nvmath-python's generated bindings (docs.nvidia.com/cuda/nvmath-python, cusparseLt
 *     ComputeType: COMPUTE_32I = 0, COMPUTE_16F = 1, COMPUTE_32F = 2; MatmulAlgAttribute:
 *     CONFIG_ID = 0, CONFIG_MAX_ID = 1, SEARCH_ITERATIONS = 2);
 *   - PyTorch's aten/src/ATen/native/sparse/cuda/cuSPARSELtOps.cpp: from cuSPARSELt 0.5.2 on,
 *     half and bfloat16 use CUSPARSE_COMPUTE_32F (0.4's enum had COMPUTE_16F = 0 and no 32F, so
 *     older libraries are refused: the value 2 would mean TF32 there); its transposed-result
 *     layout (sparse A row-major [m, k], dense B row-major [n, k] with opB = TRANSPOSE, result
 *     column-major [m, n]) is the one used here, with m = N outputs and n = M rows of X;
 *   - NVIDIA/CUDALibrarySamples cuSPARSELt/matmul/matmul_example.cpp: the call order (descriptors,
 *     matmul descriptor, algorithm selection, plan, prune check into a DEVICE int that is 0 when
 *     valid, compressed sizes, compress, search, workspace size, matmul);
 *   - cuSPARSELt's release notes: 0.8.0 added cusparseLtAlgSelectionDestroy, which "must be
 *     invoked" (called when the library has it) and cusparseLtGetErrorString;
 *   - ROCm/hipSPARSELt's open implementation of the same API (rocsparselt prune.cpp): the 2:4
 *     groups run along op(A)'s K in the stored layout, its check kernel only ever writes 1 after a
 *     memset, and cusparseLtSpMMAPrune's STRIP keeps the two largest of each group.
 * cusparseStatus_t, cusparseOrder_t (COL 1, ROW 2) and cusparseOperation_t come from the
 * toolkit's cusparse.h (types only; cuSPARSE itself is not linked), cudaDataType from
 * library_types.h. The opaque structs are 1024 bytes in current headers; they are given 16 KiB
 * here (the caller allocates them, and the library writes only its own size).
 */
#include "engine/cuda/sparselt.h"
#include "engine/cuda/cuda.h"

#include <cuda_runtime.h>
#include <cusparse.h>
#include <dlfcn.h>
#include <library_types.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" cudaStream_t il_cuda_stream(void);

typedef struct {
    alignas(16) unsigned char data[16384];
} lt_opaque;
typedef lt_opaque lt_handle, lt_mat, lt_matmul, lt_algsel, lt_plan;

enum { LT_SPARSITY_50 = 0, LT_COMPUTE_32F = 2, LT_ALG_DEFAULT = 0, LT_ALG_CONFIG_ID = 0, LT_PRUNE_STRIP = 1 };
enum { LT_MIN_VERSION = 502 }; /* major * 1000 + minor * 100 + patch, as CUSPARSELT_VERSION */

typedef cusparseStatus_t lst;
static struct {
    lst (*init)(lt_handle *);
    lst (*version)(const lt_handle *, int *);
    const char *(*errstr)(lst);
    lst (*dense)(const lt_handle *, lt_mat *, int64_t, int64_t, int64_t, uint32_t, cudaDataType, cusparseOrder_t);
    lst (*structured)(const lt_handle *, lt_mat *, int64_t, int64_t, int64_t, uint32_t, cudaDataType, cusparseOrder_t,
                      int);
    lst (*mat_destroy)(const lt_mat *);
    lst (*matmul_init)(const lt_handle *, lt_matmul *, cusparseOperation_t, cusparseOperation_t, const lt_mat *,
                       const lt_mat *, const lt_mat *, const lt_mat *, int);
    lst (*alg_init)(const lt_handle *, lt_algsel *, const lt_matmul *, int);
    lst (*alg_destroy)(const lt_algsel *);
    lst (*alg_get)(const lt_handle *, const lt_algsel *, int, void *, size_t);
    lst (*plan_init)(const lt_handle *, lt_plan *, const lt_matmul *, const lt_algsel *);
    lst (*plan_destroy)(const lt_plan *);
    lst (*workspace)(const lt_handle *, const lt_plan *, size_t *);
    lst (*prune_check)(const lt_handle *, const lt_matmul *, const void *, int *, cudaStream_t);
    lst (*prune)(const lt_handle *, const lt_matmul *, const void *, void *, int, cudaStream_t);
    lst (*compressed_size)(const lt_handle *, const lt_plan *, size_t *, size_t *);
    lst (*compress)(const lt_handle *, const lt_plan *, const void *, void *, void *, cudaStream_t);
    lst (*matmul)(const lt_handle *, const lt_plan *, const void *, const void *, const void *, const void *,
                  const void *, void *, void *, cudaStream_t *, int32_t);
    lst (*search)(const lt_handle *, lt_plan *, const void *, const void *, const void *, const void *, const void *,
                  void *, void *, cudaStream_t *, int32_t);
} lt;

static lt_handle *g_lt;
static int g_lt_state; /* 0 not tried, 1 ready, -1 unavailable */
static char g_lt_why[320], g_lt_version[64];

#define SYM(field, name) (*(void **)&lt.field = dlsym(h, name))

static int lt_fail(const char *fmt, const char *a) {
    snprintf(g_lt_why, sizeof g_lt_why, fmt, a);
    return g_lt_state = -1;
}

static int open_sparselt(void) {
    if (g_lt_state) return g_lt_state;
#ifndef IL_CU_HOST_EMU /* tests/cuda_emu.sh: no device to ask, an emulated library */
    const char *why = NULL;
    if (!il_cuda_available(&why)) return lt_fail("%s", why && *why ? why : "no CUDA device");
    if (il_cuda_cc() < 80) return lt_fail("%s", "the GPU is older than sm_80 (no sparse tensor cores)");
#endif
    /* INFERLAB_CUSPARSELT: the library's path, for one that is not on the loader's path (PyTorch's
     * wheel: site-packages/nvidia/cusparselt/lib/libcusparseLt.so.0) */
    const char *names[] = {getenv("INFERLAB_CUSPARSELT"), "libcusparseLt.so.0", "libcusparseLt.so"};
    void *h = NULL;
    for (int i = 0; i < 3 && !h; i++)
        if (names[i] && *names[i]) h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!h) return lt_fail("libcusparseLt.so.0 could not be loaded: %s", dlerror());
    int ok = SYM(init, "cusparseLtInit") && SYM(version, "cusparseLtGetVersion") &&
             SYM(dense, "cusparseLtDenseDescriptorInit") && SYM(structured, "cusparseLtStructuredDescriptorInit") &&
             SYM(mat_destroy, "cusparseLtMatDescriptorDestroy") && SYM(matmul_init, "cusparseLtMatmulDescriptorInit") &&
             SYM(alg_init, "cusparseLtMatmulAlgSelectionInit") && SYM(alg_get, "cusparseLtMatmulAlgGetAttribute") &&
             SYM(plan_init, "cusparseLtMatmulPlanInit") && SYM(plan_destroy, "cusparseLtMatmulPlanDestroy") &&
             SYM(workspace, "cusparseLtMatmulGetWorkspace") && SYM(prune_check, "cusparseLtSpMMAPruneCheck") &&
             SYM(compressed_size, "cusparseLtSpMMACompressedSize") && SYM(compress, "cusparseLtSpMMACompress") &&
             SYM(matmul, "cusparseLtMatmul") && SYM(search, "cusparseLtMatmulSearch");
    SYM(errstr, "cusparseLtGetErrorString"); /* optional: not in every version */
    SYM(prune, "cusparseLtSpMMAPrune");      /* optional: only the diagnosis of a refused weight */
    SYM(alg_destroy, "cusparseLtAlgSelectionDestroy"); /* 0.8.0 on: "must be invoked" to release it */
    if (!ok) return lt_fail("%s", "libcusparseLt.so.0 lacks an entry point this code calls");
    g_lt = (lt_handle *)calloc(1, sizeof *g_lt);
    if (!g_lt) return lt_fail("%s", "out of memory");
    lst s = lt.init(g_lt);
    if (s != CUSPARSE_STATUS_SUCCESS) {
        char b[32];
        snprintf(b, sizeof b, "%d", (int)s);
        return lt_fail("cusparseLtInit failed (status %s)", b);
    }
    int v = 0;
    if (lt.version(g_lt, &v) != CUSPARSE_STATUS_SUCCESS) v = 0;
    snprintf(g_lt_version, sizeof g_lt_version, "cuSPARSELt %d.%d.%d", v / 1000, v % 1000 / 100, v % 100);
    if (v < LT_MIN_VERSION) return lt_fail("%s is older than 0.5.2 (another compute-type enum)", g_lt_version);
    return g_lt_state = 1;
}

extern "C" int il_sparselt_available(const char **why) {
    int ok = open_sparselt() == 1;
    if (why) *why = ok ? "" : g_lt_why;
    return ok;
}

extern "C" const char *il_sparselt_version(void) { return open_sparselt() == 1 ? g_lt_version : ""; }

static il_status lt_err(lst s, const char *what) {
    if (s == CUSPARSE_STATUS_SUCCESS) return IL_OK;
    const char *msg = lt.errstr ? lt.errstr(s) : NULL;
    return il_error(s == CUSPARSE_STATUS_ALLOC_FAILED ? IL_ERR_OOM : IL_ERR_CUDA, "cuSPARSELt %s: %s (status %d)", what,
                    msg ? msg : "error", (int)s);
}

/* ---------------------------------------------------------------- one product */

struct il_sparselt {
    int64_t m, n, k, mp; /* mp: m padded to a multiple of 16 (the staging path) */
    il_dtype dt;
    lt_mat a, b, c;
    lt_matmul mm;
    lt_algsel alg;
    lt_plan plan;
    int has_a, has_b, has_c, has_alg, has_plan, alg_id;
    void *wc;      /* the compressed weight, on the device */
    size_t lt_ws;  /* cuSPARSELt's own workspace */
    char what[160];
};

static size_t up256(size_t b) { return (b + 255) & ~(size_t)255; }
static size_t esz(const il_sparselt *s) { return 2; }

extern "C" size_t il_sparselt_workspace(const il_sparselt *s) {
    size_t es = esz(s);
    return up256(s->lt_ws) + up256((size_t)(s->mp * s->k) * es) + up256((size_t)(s->mp * s->n) * es);
}

extern "C" const char *il_sparselt_what(const il_sparselt *s) { return s->what; }

extern "C" void il_sparselt_free(il_sparselt *s) {
    if (!s) return;
    if (s->has_plan) lt.plan_destroy(&s->plan);
    if (s->has_alg && lt.alg_destroy) lt.alg_destroy(&s->alg);
    if (s->has_a) lt.mat_destroy(&s->a);
    if (s->has_b) lt.mat_destroy(&s->b);
    if (s->has_c) lt.mat_destroy(&s->c);
    il_cuda_free(s->wc);
    free(s);
}

static int staged(const il_sparselt *s, const void *x, const void *y) {
    return s->mp != s->m || (((uintptr_t)x | (uintptr_t)y) & 15);
}

extern "C" void *il_sparselt_dest(const il_sparselt *s, const void *x, void *y, void *ws) {
    if (!staged(s, x, y)) return y;
    return (char *)ws + up256(s->lt_ws) + up256((size_t)(s->mp * s->k) * esz(s));
}

/* Runs the product on x (device, [mp, k] when staged) into d ([mp, n] column-major = row-major
 * [mp][n]); search: cuSPARSELt's own timing of its kernels on these buffers picks one. */
static il_status product(il_sparselt *s, int search, float alpha, float beta, const void *x, void *d, void *ws) {
    cudaStream_t st = il_cuda_stream();
    if (search)
        return lt_err(lt.search(g_lt, &s->plan, &alpha, s->wc, x, &beta, d, d, ws, &st, 1), "cusparseLtMatmulSearch");
    return lt_err(lt.matmul(g_lt, &s->plan, &alpha, s->wc, x, &beta, d, d, ws, &st, 1), "cusparseLtMatmul");
}

extern "C" il_status il_sparselt_run(const il_sparselt *s, float alpha, float beta, const void *x, void *y, void *ws,
                                     size_t ws_bytes) {
    if (ws_bytes < il_sparselt_workspace(s))
        return il_error(IL_ERR_INTERNAL, "cuSPARSELt: workspace %zu < %zu", ws_bytes, il_sparselt_workspace(s));
    size_t es = esz(s);
    void *d = il_sparselt_dest(s, x, y, ws);
    const void *xs = x;
    il_status st = IL_OK;
    if (d != y) { /* rows padded to mp: zeros after x's m rows, so the extra outputs are finite */
        char *xb = (char *)ws + up256(s->lt_ws);
        st = il_cuda_copy(xb, x, (size_t)(s->m * s->k) * es);
        if (!st) st = il_cuda_zero(xb + (size_t)(s->m * s->k) * es, (size_t)((s->mp - s->m) * s->k) * es);
        xs = xb;
    }
    if (!st) st = product((il_sparselt *)s, 0, alpha, beta, xs, d, ws);
    if (!st && d != y) st = il_cuda_copy(y, d, (size_t)(s->m * s->n) * es);
    return st;
}

/* cuSPARSELt's verdict on the 2:4 pattern of w (device, [n, k] in dt): *valid 0 when it takes it.
 * The int is zeroed first: the library is documented to write 0 or 1 there, but a check that
 * only marks failures (hipSPARSELt's kernel does, after its own memset) would otherwise read
 * whatever the allocation last held, and refuse every weight. */
static il_status lt_check(const il_sparselt *s, const void *w, int *dvalid, int *valid) {
    *valid = 1;
    il_status st = il_cuda_zero(dvalid, sizeof(int));
    if (!st) st = lt_err(lt.prune_check(g_lt, &s->mm, w, dvalid, il_cuda_stream()), "prune check");
    if (!st) st = il_cuda_download(valid, dvalid, sizeof *valid);
    return st;
}

/* The check refused a weight that inferlab's own 2:4 check took. The error says how the library's
 * own pruning (STRIP: the 2 largest of each of its groups of 4) changes the same weight, which
 * tells the causes apart on a real run: nothing changed means the library groups the values as
 * inferlab does (along K of the row-major [N, K] weight), so the refusal has another cause (the
 * check's answer, a descriptor); values changed means it groups them along another dimension. Its
 * check on its own pruned copy says whether the check can pass at all with these descriptors. */
static il_status rejected(const il_sparselt *s, const void *wd, int *dvalid) {
    char why[256] = "cusparseLtSpMMAPrune is not in this library";
    size_t n = (size_t)(s->n * s->k);
    if (lt.prune) {
        void *pd = il_cuda_malloc(n * 2);
        uint16_t *a = (uint16_t *)malloc(n * 2), *b = (uint16_t *)malloc(n * 2);
        int again = 1;
        il_status st = pd && a && b ? IL_OK : IL_ERR_OOM;
        if (!st) st = lt_err(lt.prune(g_lt, &s->mm, wd, pd, LT_PRUNE_STRIP, il_cuda_stream()), "prune");
        if (!st) st = il_cuda_download(a, wd, n * 2);
        if (!st) st = il_cuda_download(b, pd, n * 2);
        if (!st) st = lt_check(s, pd, dvalid, &again);
        if (!st) {
            long long changed = 0, nonzero = 0;
            for (size_t i = 0; i < n; i++) {
                changed += a[i] != b[i];
                nonzero += (a[i] & 0x7fff) != 0;
            }
            snprintf(why, sizeof why,
                     "its own STRIP pruning changed %lld of the weight's %lld nonzeros: %s; its check %s its pruned "
                     "copy",
                     changed, nonzero,
                     changed ? "it groups the 4s along another dimension than inferlab's K"
                             : "it groups the 4s as inferlab does, the refusal has another cause",
                     again ? "refuses even" : "takes");
        } else
            snprintf(why, sizeof why, "its own pruning could not be compared: %s", il_errmsg());
        il_cuda_free(pd), free(a), free(b);
    }
    return il_error(IL_ERR_INVALID, "cuSPARSELt's prune check rejects the weight that inferlab's 2:4 check accepted (%s, "
                                    "M %lld N %lld K %lld; %s)",
                    g_lt_version, (long long)s->m, (long long)s->n, (long long)s->k, why);
}

/* host float32 -> device copy in dt */
static il_status upload_as(const float *host, int64_t n, il_dtype dt, void **out) {
    if (!(*out = il_cuda_malloc((size_t)n * 2))) return IL_ERR_OOM;
    float *tmp = (float *)il_cuda_malloc((size_t)n * 4);
    if (!tmp) return IL_ERR_OOM;
    il_status st = il_cuda_upload(tmp, host, (size_t)n * 4);
    if (!st) il_cuda_convert(tmp, IL_F32, *out, dt, n);
    if (!st) st = il_cuda_sync();
    il_cuda_free(tmp);
    return st;
}

/* device data in dt -> host float32 (through a float32 copy on the device) */
static il_status download_f32(const void *src, il_dtype dt, int64_t n, float *host) {
    float *tmp = (float *)il_cuda_malloc((size_t)n * 4);
    if (!tmp) return IL_ERR_OOM;
    il_cuda_convert(src, dt, tmp, IL_F32, n);
    il_status st = il_cuda_download(host, tmp, (size_t)n * 4);
    il_cuda_free(tmp);
    return st;
}

/* One product on a probe, checked on the host before any node uses the plan: the layouts (Wt
 * row-major with opA N, X row-major with opB T, the result column-major), the compressed weight
 * and the chosen kernel are otherwise only as right as our reading of the documentation. The
 * probe's values (-1, -0.5, 0, 0.5, 1) and the weight as the device rounded it (wd, read back)
 * are exact in dt, so the products are exact and only float32 sums (1e-5 of sum |x w|) and the
 * result's rounding to dt (2^-11 fp16, 2^-8 bf16, relative; twice that allowed) separate it from
 * the host's double sum; a transposed or misread operand is off by the size of the result. Rows
 * 0..15 and at most 256 outputs: layouts show everywhere, and it stays a few million MACs. */
static il_status probe(il_sparselt *s, const void *wd, void *ws) {
    int64_t rows = s->mp < 16 ? s->mp : 16, step = s->n > 256 ? s->n / 256 : 1;
    size_t xn = (size_t)(s->mp * s->k), yn = (size_t)(s->mp * s->n), wn = (size_t)(s->n * s->k);
    float *xh = (float *)calloc(xn, 4), *yh = (float *)malloc(yn * 4), *wh = (float *)malloc(wn * 4);
    void *xd = NULL, *yd = il_cuda_malloc(yn * 2);
    il_status st = xh && yh && wh && yd ? IL_OK : il_error(IL_ERR_OOM, "cuSPARSELt probe: out of memory");
    for (int64_t i = 0; !st && i < rows; i++)
        for (int64_t l = 0; l < s->k; l++) xh[i * s->k + l] = 0.5f * (float)((i * 7 + l * 3 + 1) % 5 - 2);
    if (!st) st = upload_as(xh, (int64_t)xn, s->dt, &xd);
    if (!st) st = product(s, 0, 1.0f, 0.0f, xd, yd, ws);
    if (!st) st = download_f32(yd, s->dt, (int64_t)yn, yh);
    if (!st) st = download_f32(wd, s->dt, (int64_t)wn, wh);
    double eps = s->dt == IL_BF16 ? 1.0 / 256 : 1.0 / 2048;
    for (int64_t i = 0; !st && i < rows; i++)
        for (int64_t j = 0; !st && j < s->n; j += step) {
            double ref = 0, mag = 0;
            for (int64_t l = 0; l < s->k; l++) {
                double t = (double)xh[i * s->k + l] * wh[j * s->k + l];
                ref += t, mag += fabs(t);
            }
            double got = yh[i * s->n + j];
            if (fabs(ref) < 6e4 && !(fabs(got - ref) <= 2 * eps * fabs(ref) + 1e-5 * mag + 1e-6))
                st = il_error(IL_ERR_INVALID, "cuSPARSELt's product disagrees with the host on a probe (%s, M %lld N "
                              "%lld K %lld: row %lld output %lld is %.6g, not %.6g)",
                              g_lt_version, (long long)s->m, (long long)s->n, (long long)s->k, (long long)i,
                              (long long)j, got, ref);
        }
    il_cuda_free(xd), il_cuda_free(yd);
    free(xh), free(yh), free(wh);
    return st;
}

extern "C" il_status il_sparselt_create(int64_t m, int64_t n, int64_t k, il_dtype dt, const float *wt_host,
                                       il_sparselt **out) {
    *out = NULL;
    if (open_sparselt() != 1) return il_error(IL_ERR_CUDA, "%s", g_lt_why);
    if (dt != IL_F16 && dt != IL_BF16) return il_error(IL_ERR_UNSUPPORTED, "cuSPARSELt here: float16 or bfloat16 only");
    if (m < 1 || n % 16 || k % 16 || n < 16 || k < 16)
        return il_error(IL_ERR_UNSUPPORTED, "cuSPARSELt here: N and K multiples of 16 (got N %lld, K %lld)",
                        (long long)n, (long long)k);
    il_sparselt *s = (il_sparselt *)calloc(1, sizeof *s);
    if (!s) return il_error(IL_ERR_OOM, "out of memory");
    s->m = m, s->n = n, s->k = k, s->mp = (m + 15) / 16 * 16, s->dt = dt;
    cudaDataType t = dt == IL_F16 ? CUDA_R_16F : CUDA_R_16BF;
    /* A: the weight Wt [n, k] row-major, 2:4 along k; B: x as [mp, k] row-major, used
     * transposed (k x mp); C = D: [n, mp] column-major, which is y's row-major [mp][n] */
    il_status st = lt_err(lt.structured(g_lt, &s->a, n, k, k, 16, t, CUSPARSE_ORDER_ROW, LT_SPARSITY_50), "sparse A");
    s->has_a = !st;
    if (!st) st = lt_err(lt.dense(g_lt, &s->b, s->mp, k, k, 16, t, CUSPARSE_ORDER_ROW), "dense B");
    s->has_b = !st && s->has_a;
    if (!st) st = lt_err(lt.dense(g_lt, &s->c, n, s->mp, n, 16, t, CUSPARSE_ORDER_COL), "dense C");
    s->has_c = !st && s->has_b;
    if (!st)
        st = lt_err(lt.matmul_init(g_lt, &s->mm, CUSPARSE_OPERATION_NON_TRANSPOSE, CUSPARSE_OPERATION_TRANSPOSE, &s->a,
                                   &s->b, &s->c, &s->c, LT_COMPUTE_32F),
                    "matmul descriptor");
    if (!st) st = lt_err(lt.alg_init(g_lt, &s->alg, &s->mm, LT_ALG_DEFAULT), "algorithm selection");
    s->has_alg = !st;
    if (!st) st = lt_err(lt.plan_init(g_lt, &s->plan, &s->mm, &s->alg), "plan");
    s->has_plan = !st;
    /* the weight on the device, cuSPARSELt's own check of its pattern, then compressed */
    void *wd = NULL, *buf = NULL, *x = NULL, *d = NULL, *ws = NULL;
    int *dvalid = NULL, valid = 1;
    if (!st) st = upload_as(wt_host, n * k, dt, &wd);
    if (!st && !(dvalid = (int *)il_cuda_malloc(sizeof(int)))) st = IL_ERR_OOM;
    if (!st) st = lt_check(s, wd, dvalid, &valid);
    if (!st && valid != 0) st = rejected(s, wd, dvalid);
    size_t csize = 0, cbuf = 0;
    if (!st) st = lt_err(lt.compressed_size(g_lt, &s->plan, &csize, &cbuf), "compressed size");
    if (!st && (!(s->wc = il_cuda_malloc(csize ? csize : 1)) || !(buf = il_cuda_malloc(cbuf ? cbuf : 1))))
        st = il_error_wrap(IL_ERR_OOM, "cuSPARSELt compressed weight: ");
    if (!st) st = lt_err(lt.compress(g_lt, &s->plan, wd, s->wc, buf, il_cuda_stream()), "compress");
    if (!st) st = il_cuda_sync();
    il_cuda_free(buf), il_cuda_free(dvalid);
    /* the search times cuSPARSELt's kernels on scratch operands of the node's sizes */
    if (!st) st = lt_err(lt.workspace(g_lt, &s->plan, &s->lt_ws), "workspace size");
    size_t xb = (size_t)(s->mp * k) * 2, yb = (size_t)(s->mp * n) * 2;
    if (!st && (!(x = il_cuda_malloc(xb)) || !(d = il_cuda_malloc(yb)) || !(ws = il_cuda_malloc(s->lt_ws + 1))))
        st = il_error_wrap(IL_ERR_OOM, "cuSPARSELt search: ");
    if (!st) st = il_cuda_zero(x, xb);
    if (!st) st = product(s, 1, 1.0f, 0.0f, x, d, ws);
    /* the search may pick a kernel with another workspace size */
    if (!st) st = lt_err(lt.workspace(g_lt, &s->plan, &s->lt_ws), "workspace size");
    if (!st && lt.alg_get(g_lt, &s->alg, LT_ALG_CONFIG_ID, &s->alg_id, sizeof s->alg_id) != CUSPARSE_STATUS_SUCCESS)
        s->alg_id = -1;
    if (!st) st = il_cuda_sync();
    il_cuda_free(x), il_cuda_free(d), il_cuda_free(ws);
    ws = NULL; /* the probe runs the searched kernel, with its own workspace size */
    if (!st && !(ws = il_cuda_malloc(s->lt_ws + 1))) st = il_error_wrap(IL_ERR_OOM, "cuSPARSELt probe: ");
    if (!st) st = probe(s, wd, ws);
    il_cuda_free(ws), il_cuda_free(wd);
    if (st) {
        il_sparselt_free(s);
        return st;
    }
    snprintf(s->what, sizeof s->what, "%s, M %lld (padded %lld) N %lld K %lld, algorithm %d", g_lt_version,
             (long long)m, (long long)s->mp, (long long)n, (long long)k, s->alg_id);
    *out = s;
    return IL_OK;
}

/* ---------------------------------------------------------------- timing against cuBLAS */

/* one product, timed on the device (host time in the emulation) */
static il_status timed_product(il_sparselt *s, int dense, const void *x, const void *w, void *y, void *ws, float *ms) {
#ifdef IL_CU_HOST_EMU
    double t0 = il_now();
#else
    cudaEvent_t a, b;
    cudaEventCreate(&a);
    cudaEventCreate(&b);
    cudaEventRecord(a, il_cuda_stream());
#endif
    il_status st = dense ? il_cuda_gemm(0, 0, s->m, s->n, s->k, 1.0f, x, s->k, 0, w, s->n, 0, 0.0f, y, s->n, 0, 1,
                                        s->dt, IL_PREC_FP16)
                         : il_sparselt_run(s, 1.0f, 0.0f, x, y, ws, il_sparselt_workspace(s));
#ifdef IL_CU_HOST_EMU
    *ms = (float)((il_now() - t0) * 1e3);
#else
    cudaEventRecord(b, il_cuda_stream());
    if (!st && (cudaEventSynchronize(b) != cudaSuccess || cudaEventElapsedTime(ms, a, b) != cudaSuccess))
        st = il_error(IL_ERR_CUDA, "timing cuSPARSELt: %s", cudaGetErrorString(cudaGetLastError()));
    cudaEventDestroy(a), cudaEventDestroy(b);
#endif
    return st;
}

static float best_ms(il_sparselt *s, int dense, const void *x, const void *w, void *y, void *ws) {
    float best = INFINITY;
    for (int r = 0; r < 6; r++) { /* the first is a warm-up */
        float ms = INFINITY;
        if (timed_product(s, dense, x, w, y, ws, &ms)) {
            il_error_clear();
            return INFINITY;
        }
        if (r > 0 && ms < best) best = ms;
    }
    return best;
}

extern "C" il_status il_sparselt_time(const il_sparselt *cs, float *ms_sparse, float *ms_dense) {
    il_sparselt *s = (il_sparselt *)cs;
    size_t xb = (size_t)(s->m * s->k) * 2, wb = (size_t)(s->k * s->n) * 2, yb = (size_t)(s->m * s->n) * 2;
    void *x = il_cuda_malloc(xb), *w = il_cuda_malloc(wb), *y = il_cuda_malloc(yb),
         *ws = il_cuda_malloc(il_sparselt_workspace(s));
    il_status st = x && w && y && ws ? IL_OK : il_error_wrap(IL_ERR_OOM, "timing cuSPARSELt: ");
    if (!st) st = il_cuda_zero(x, xb);
    if (!st) st = il_cuda_zero(w, wb);
    if (!st) {
        *ms_sparse = best_ms(s, 0, x, NULL, y, ws);
        *ms_dense = best_ms(s, 1, x, w, y, NULL);
        size_t len = strlen(s->what);
        snprintf(s->what + len, sizeof s->what - len, "; %.4f ms vs cuBLAS %.4f ms", *ms_sparse, *ms_dense);
    }
    il_cuda_free(x), il_cuda_free(w), il_cuda_free(y), il_cuda_free(ws);
    if (!st) st = il_cuda_sync();
    return st;
}
