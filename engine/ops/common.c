/*
 * common.c - helpers from kernel.h shared by every op file.
 */
#include "kernel.h"

#include <cblas.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>

il_status il_kerr(const il_kctx *c, il_status s, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return il_error(s, "node '%s' (%s): %s", c->node ? c->node->name : "?", c->node ? c->node->op_type : "?", msg);
}

il_status il_norm_axis(const il_kctx *c, int64_t axis, int rank, int *out) {
    int64_t a = axis < 0 ? axis + rank : axis;
    if (a < 0 || a >= (rank > 0 ? rank : 1))
        return il_kerr(c, IL_ERR_INVALID, "axis %lld is out of range for rank %d", (long long)axis, rank);
    *out = (int)a;
    return IL_OK;
}

il_status il_broadcast_shape(const il_kctx *c, int ra, const int64_t *a, int rb, const int64_t *b, int *rout,
                             int64_t *out) {
    int r = ra > rb ? ra : rb;
    for (int i = 0; i < r; i++) {
        int ia = i - (r - ra), ib = i - (r - rb);
        int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
        if (da == db) out[i] = da;
        else if (da == 1) out[i] = db;
        else if (db == 1) out[i] = da;
        else if (da < 0) out[i] = db;
        else if (db < 0) out[i] = da;
        else {
            char sa[128], sb[128];
            return il_kerr(c, IL_ERR_SHAPE, "shapes %s and %s cannot be broadcast", il_shape_str(ra, a, sa, sizeof sa),
                           il_shape_str(rb, b, sb, sizeof sb));
        }
    }
    *rout = r;
    return IL_OK;
}

void il_broadcast_strides(const il_tensor *t, int rout, const int64_t *out, int64_t *strides) {
    int64_t s = 1;
    for (int i = rout - 1; i >= 0; i--) {
        int it = i - (rout - t->rank);
        int64_t d = it >= 0 ? t->dims[it] : 1;
        strides[i] = (d == 1 && out[i] != 1) ? 0 : s;
        if (it >= 0) s *= d;
    }
}

#ifdef IL_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif

void il_sgemm_serial(int transa, int transb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                     int64_t lda, const float *b, int64_t ldb, float beta, float *cm, int64_t ldc) {
#ifdef IL_HAVE_DNNL
    if (m > 0 && n > 0 && k > 0) {
        /* oneDNN threads a gemm called outside an active parallel region over omp's max threads */
        int saved = omp_in_parallel() ? 1 : omp_get_max_threads();
        if (saved != 1) omp_set_num_threads(1);
        dnnl_status_t s = dnnl_sgemm(transa ? 'T' : 'N', transb ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, cm, ldc);
        if (saved != 1) omp_set_num_threads(saved);
        if (s == dnnl_success) return;
    }
#endif
    il_sgemm(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, cm, ldc);
}

void il_sgemm(int transa, int transb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
              const float *b, int64_t ldb, float beta, float *cm, int64_t ldc) {
    cblas_sgemm(CblasRowMajor, transa ? CblasTrans : CblasNoTrans, transb ? CblasTrans : CblasNoTrans, (blasint)m,
                (blasint)n, (blasint)k, alpha, a, (blasint)lda, b, (blasint)ldb, beta, cm, (blasint)ldc);
}
