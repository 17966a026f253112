/*
 * cusparselt_emu.c - a stand-in for libcusparseLt.so.0 on the host, built by tests/cuda_emu.sh
 * as a shared library that sparselt.cu opens through INFERLAB_CUSPARSELT. It implements the 18
 * entry points sparselt.cu calls as NVIDIA documents them (docs.nvidia.com/cuda/cusparselt:
 * descriptors of rows x cols with a leading dimension in row- or column-major order, D = alpha
 * op(A) op(B) + beta C with A the 2:4 structured matrix, the prune check writing 1 to a device
 * int when a group of 4 along op(A)'s K has more than 2 nonzeros, and STRIP pruning along the
 * same groups); compression is a plain copy
 * (its real format is the library's business). It checks what the real library would refuse
 * (a compute type other than 32F for 16-bit data, shapes that do not chain, a short leading
 * dimension), so the emulation exercises sparselt.cu's and sparse24.c's own logic (layouts,
 * padding of M, staging, Gemm's C, the epilogue) against the reference kernels. It proves
 * nothing about the real library beyond the documented contract it encodes.
 */
#include <cusparse.h> /* cusparseStatus_t, cusparseOrder_t, cusparseOperation_t: types only */
#include <library_types.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int64_t rows, cols, ld;
    cudaDataType type;
    cusparseOrder_t order;
    int structured;
} mat;

typedef struct {
    cusparseOperation_t opa, opb;
    mat a, b, c, d;
    int compute;
} matmul;

typedef struct {
    matmul mm;
} plan;

static float h2f(uint16_t h, cudaDataType t) {
    uint32_t x;
    if (t == CUDA_R_16BF) x = (uint32_t)h << 16;
    else {
        uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31, m = h & 1023;
        if (e == 31) x = s | 0x7f800000u | (m << 13);
        else if (e) x = s | ((e + 112) << 23) | (m << 13);
        else if (!m) x = s;
        else { /* subnormal: normalize */
            int sh = 0;
            while (!(m & 1024)) m <<= 1, sh++;
            x = s | ((uint32_t)(113 - sh) << 23) | ((m & 1023) << 13);
        }
    }
    float f;
    memcpy(&f, &x, 4);
    return f;
}

static uint16_t f2h(float f, cudaDataType t) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if (t == CUDA_R_16BF) {
        if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);
        return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1)) >> 16);
    }
    uint32_t s = (x >> 16) & 0x8000u;
    float a = fabsf(f);
    if (isnan(f)) return (uint16_t)(s | 0x7e00u);
    if (a >= 65520.0f) return (uint16_t)(s | 0x7c00u);
    if (a < 6.103515625e-05f) return (uint16_t)(s | (uint32_t)lrintf(a * 16777216.0f)); /* subnormal */
    uint32_t e = ((x >> 23) & 255) - 112, m = x & 0x7fffffu;
    uint32_t h = (e << 10) | (m >> 13), rest = m & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1))) h++;
    return (uint16_t)(s | h);
}

/* element (i, j) of the stored matrix, and of op(it) */
static float at(const mat *m, const void *p, int64_t i, int64_t j) {
    int64_t o = m->order == CUSPARSE_ORDER_ROW ? i * m->ld + j : i + j * m->ld;
    return h2f(((const uint16_t *)p)[o], m->type);
}
static float op_at(const mat *m, cusparseOperation_t op, const void *p, int64_t i, int64_t j) {
    return op == CUSPARSE_OPERATION_NON_TRANSPOSE ? at(m, p, i, j) : at(m, p, j, i);
}
static int64_t op_rows(const mat *m, cusparseOperation_t op) {
    return op == CUSPARSE_OPERATION_NON_TRANSPOSE ? m->rows : m->cols;
}
static int64_t op_cols(const mat *m, cusparseOperation_t op) {
    return op == CUSPARSE_OPERATION_NON_TRANSPOSE ? m->cols : m->rows;
}
static size_t bytes(const mat *m) { return (size_t)((m->order == CUSPARSE_ORDER_ROW ? m->rows : m->cols) * m->ld) * 2; }

cusparseStatus_t cusparseLtInit(void *h) { return CUSPARSE_STATUS_SUCCESS; }
cusparseStatus_t cusparseLtGetVersion(const void *h, int *v) {
    *v = 700;
    return CUSPARSE_STATUS_SUCCESS;
}
const char *cusparseLtGetErrorString(cusparseStatus_t s) { return "refused by the emulated cuSPARSELt"; }

static cusparseStatus_t init(mat *m, int64_t rows, int64_t cols, int64_t ld, uint32_t align, cudaDataType t,
                             cusparseOrder_t order, int structured) {
    if (rows < 1 || cols < 1 || align % 16 || (t != CUDA_R_16F && t != CUDA_R_16BF) ||
        ld < (order == CUSPARSE_ORDER_ROW ? cols : rows))
        return CUSPARSE_STATUS_INVALID_VALUE;
    *m = (mat){rows, cols, ld, t, order, structured};
    return CUSPARSE_STATUS_SUCCESS;
}
cusparseStatus_t cusparseLtDenseDescriptorInit(const void *h, mat *m, int64_t rows, int64_t cols, int64_t ld,
                                               uint32_t align, cudaDataType t, cusparseOrder_t order) {
    return init(m, rows, cols, ld, align, t, order, 0);
}
cusparseStatus_t cusparseLtStructuredDescriptorInit(const void *h, mat *m, int64_t rows, int64_t cols, int64_t ld,
                                                    uint32_t align, cudaDataType t, cusparseOrder_t order,
                                                    int sparsity) {
    return sparsity ? CUSPARSE_STATUS_INVALID_VALUE : init(m, rows, cols, ld, align, t, order, 1);
}
cusparseStatus_t cusparseLtMatDescriptorDestroy(const mat *m) { return CUSPARSE_STATUS_SUCCESS; }

cusparseStatus_t cusparseLtMatmulDescriptorInit(const void *h, matmul *mm, cusparseOperation_t opa,
                                                cusparseOperation_t opb, const mat *a, const mat *b, const mat *c,
                                                const mat *d, int compute) {
    if (compute != 2 || !a->structured || b->structured) return CUSPARSE_STATUS_NOT_SUPPORTED; /* 32F */
    int64_t m = op_rows(a, opa), k = op_cols(a, opa), n = op_cols(b, opb);
    if (op_rows(b, opb) != k || c->rows != m || c->cols != n || d->rows != m || d->cols != n)
        return CUSPARSE_STATUS_INVALID_VALUE;
    *mm = (matmul){opa, opb, *a, *b, *c, *d, compute};
    return CUSPARSE_STATUS_SUCCESS;
}
cusparseStatus_t cusparseLtMatmulAlgSelectionInit(const void *h, void *alg, const matmul *mm, int which) {
    return which ? CUSPARSE_STATUS_INVALID_VALUE : CUSPARSE_STATUS_SUCCESS;
}
cusparseStatus_t cusparseLtAlgSelectionDestroy(const void *alg) { return CUSPARSE_STATUS_SUCCESS; }
cusparseStatus_t cusparseLtMatmulAlgGetAttribute(const void *h, const void *alg, int attr, void *data, size_t n) {
    if (attr != 0 || n != sizeof(int)) return CUSPARSE_STATUS_INVALID_VALUE;
    *(int *)data = 0;
    return CUSPARSE_STATUS_SUCCESS;
}
cusparseStatus_t cusparseLtMatmulPlanInit(const void *h, plan *p, const matmul *mm, const void *alg) {
    p->mm = *mm;
    return CUSPARSE_STATUS_SUCCESS;
}
cusparseStatus_t cusparseLtMatmulPlanDestroy(const plan *p) { return CUSPARSE_STATUS_SUCCESS; }
cusparseStatus_t cusparseLtMatmulGetWorkspace(const void *h, const plan *p, size_t *ws) {
    *ws = 64;
    return CUSPARSE_STATUS_SUCCESS;
}

cusparseStatus_t cusparseLtSpMMAPruneCheck(const void *h, const matmul *mm, const void *d_in, int *d_valid,
                                           void *stream) {
    const mat *a = &mm->a;
    int64_t m = op_rows(a, mm->opa), k = op_cols(a, mm->opa);
    int bad = k % 4 != 0;
    for (int64_t i = 0; i < m && !bad; i++)
        for (int64_t g = 0; g + 4 <= k && !bad; g += 4) {
            int nz = 0;
            for (int j = 0; j < 4; j++) nz += op_at(a, mm->opa, d_in, i, g + j) != 0.0f;
            bad = nz > 2;
        }
    /* the weakest reading of "d_valid: 0 correct, 1 wrong": only a failure is written (as
     * hipSPARSELt's check kernel does after its own memset), so a caller that does not zero
     * the int first reads the allocation's old contents (ASan fills new memory with 0xbe) */
    if (bad) *d_valid = 1;
    return CUSPARSE_STATUS_SUCCESS;
}
/* STRIP: of each group of 4 along op(A)'s K the 2 largest magnitudes stay (the first on ties),
 * "the strip direction chosen according to the operation op and matrix layout" of the sparse
 * matrix, as the check reads it; TILE (2 per row and column of 4x4 tiles) is not emulated */
cusparseStatus_t cusparseLtSpMMAPrune(const void *h, const matmul *mm, const void *d_in, void *d_out, int alg,
                                      void *stream) {
    const mat *a = &mm->a;
    int64_t m = op_rows(a, mm->opa), k = op_cols(a, mm->opa);
    if (alg != 1) return CUSPARSE_STATUS_NOT_SUPPORTED;
    if (k % 4) return CUSPARSE_STATUS_INVALID_VALUE;
    if (d_out != d_in) memcpy(d_out, d_in, bytes(a));
    for (int64_t i = 0; i < m; i++)
        for (int64_t g = 0; g < k; g += 4) {
            int keep0 = -1, keep1 = -1;
            for (int j = 0; j < 4; j++) {
                float v = fabsf(op_at(a, mm->opa, d_in, i, g + j));
                if (keep0 < 0 || v > fabsf(op_at(a, mm->opa, d_in, i, g + keep0))) keep1 = keep0, keep0 = j;
                else if (keep1 < 0 || v > fabsf(op_at(a, mm->opa, d_in, i, g + keep1))) keep1 = j;
            }
            for (int j = 0; j < 4; j++) {
                if (j == keep0 || j == keep1) continue;
                int64_t r = mm->opa == CUSPARSE_OPERATION_NON_TRANSPOSE ? i : g + j;
                int64_t c = mm->opa == CUSPARSE_OPERATION_NON_TRANSPOSE ? g + j : i;
                ((uint16_t *)d_out)[a->order == CUSPARSE_ORDER_ROW ? r * a->ld + c : r + c * a->ld] = 0;
            }
        }
    return CUSPARSE_STATUS_SUCCESS;
}
cusparseStatus_t cusparseLtSpMMACompressedSize(const void *h, const plan *p, size_t *size, size_t *buf) {
    *size = bytes(&p->mm.a);
    *buf = 16;
    return CUSPARSE_STATUS_SUCCESS;
}
cusparseStatus_t cusparseLtSpMMACompress(const void *h, const plan *p, const void *dense, void *out, void *buf,
                                         void *stream) {
    memcpy(out, dense, bytes(&p->mm.a));
    return CUSPARSE_STATUS_SUCCESS;
}

cusparseStatus_t cusparseLtMatmul(const void *h, const plan *p, const void *alpha, const void *a, const void *b,
                                  const void *beta, const void *c, void *d, void *ws, void *streams, int32_t ns) {
    const matmul *mm = &p->mm;
    float al = *(const float *)alpha, be = *(const float *)beta;
    int64_t m = mm->d.rows, n = mm->d.cols, k = op_cols(&mm->a, mm->opa);
    /* IL_EMU_LT_FAULT=rows: A's rows read in reverse, as a misread layout would (a test shows
     * that sparselt.cu's probe refuses such a library) */
    const char *fault = getenv("IL_EMU_LT_FAULT");
    int rev = fault && !strcmp(fault, "rows");
    if (((uintptr_t)a | (uintptr_t)b | (uintptr_t)c | (uintptr_t)d) & 15) return CUSPARSE_STATUS_INVALID_VALUE;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            float sum = 0;
            for (int64_t l = 0; l < k; l++)
                sum += op_at(&mm->a, mm->opa, a, rev ? m - 1 - i : i, l) * op_at(&mm->b, mm->opb, b, l, j);
            float v = al * sum + (be != 0.0f ? be * at(&mm->c, c, i, j) : 0.0f);
            int64_t o = mm->d.order == CUSPARSE_ORDER_ROW ? i * mm->d.ld + j : i + j * mm->d.ld;
            ((uint16_t *)d)[o] = f2h(v, mm->d.type);
        }
    return CUSPARSE_STATUS_SUCCESS;
}
cusparseStatus_t cusparseLtMatmulSearch(const void *h, plan *p, const void *alpha, const void *a, const void *b,
                                        const void *beta, const void *c, void *d, void *ws, void *streams, int32_t ns) {
    return cusparseLtMatmul(h, p, alpha, a, b, beta, c, d, ws, streams, ns);
}
