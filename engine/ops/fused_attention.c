/*
 * fused_attention.c - ai.inferlab Attention: Y = Softmax(scale * (Q @ Kt) + mask) @ V, the
 * scaled dot-product attention that transformer exports spell as MatMul -> Div/Mul -> Add ->
 * Softmax -> MatMul (passes/fuse_attention.c finds it).
 *
 *   Q    [..., Sq, D]     queries
 *   Kt   [..., D, Sk]     keys, already transposed (the second operand of the first MatMul)
 *   V    [..., Sk, Dv]    values
 *   mask (optional)       added to the scores, broadcastable to [..., Sq, Sk]
 *   attribute scale       float, default 1
 *   Y    [..., Sq, Dv]
 *
 * Leading dims of Q, Kt and V broadcast like MatMul's. The fast kernel never writes the
 * [Sq, Sk] score matrix to memory: each thread computes one query row's scores into a buffer of
 * Sk floats, applies scale, mask and the softmax there and accumulates the output row from it.
 * Unfused, scores and probabilities are four full tensors written and read again.
 */
#include "fused.h"

#include <omp.h>

typedef struct {
    int lead;                     /* leading (batch) dims of the output */
    int64_t dims[IL_MAX_RANK];    /* output leading dims */
    int64_t sq, d, sk, dv, batches;
} att_geom;

static il_status att_shapes(const il_kctx *c, att_geom *g) {
    const il_tensor *q = il_in(c, 0), *k = il_in(c, 1), *v = il_in(c, 2);
    if (!q || !k || !v) return il_kerr(c, IL_ERR_INVALID, "needs inputs Q, Kt and V");
    for (int i = 0; i < c->n_in; i++)
        if (c->in[i] && c->in[i]->dtype != IL_F32)
            return il_kerr(c, IL_ERR_UNSUPPORTED, "input %d: unsupported dtype %s (Attention takes float32)", i,
                           il_dtype_name(c->in[i]->dtype));
    if (q->rank < 0 || k->rank < 0 || v->rank < 0) return IL_ERR_SHAPE; /* caller: unknown rank */
    if (q->rank < 2 || k->rank != q->rank || v->rank != q->rank)
        return il_kerr(c, IL_ERR_SHAPE, "Q, Kt and V need one rank >= 2, got %d, %d, %d", q->rank, k->rank, v->rank);
    int r = q->rank;
    g->lead = r - 2;
    g->sq = q->dims[r - 2];
    g->d = q->dims[r - 1];
    g->sk = k->dims[r - 1];
    g->dv = v->dims[r - 1];
    if (g->d >= 0 && k->dims[r - 2] >= 0 && g->d != k->dims[r - 2])
        return il_kerr(c, IL_ERR_SHAPE, "Q has %lld features per row, Kt %lld", (long long)g->d, (long long)k->dims[r - 2]);
    if (g->sk >= 0 && v->dims[r - 2] >= 0 && g->sk != v->dims[r - 2])
        return il_kerr(c, IL_ERR_SHAPE, "Kt has %lld keys, V %lld", (long long)g->sk, (long long)v->dims[r - 2]);
    g->batches = 1;
    for (int d = 0; d < g->lead; d++) {
        int64_t a = q->dims[d], b = k->dims[d], e = v->dims[d], m = a > b ? a : b;
        m = m > e ? m : e;
        if (a < 0 || b < 0 || e < 0) m = -1;
        else if ((a != 1 && a != m) || (b != 1 && b != m) || (e != 1 && e != m))
            return il_kerr(c, IL_ERR_SHAPE, "leading dim %d does not broadcast: %lld, %lld, %lld", d, (long long)a,
                           (long long)b, (long long)e);
        g->dims[d] = m;
        g->batches = m < 0 || g->batches < 0 ? -1 : g->batches * m;
    }
    return IL_OK;
}

static il_status att_infer(il_kctx *c) {
    att_geom g;
    il_status st = att_shapes(c, &g);
    if (st == IL_ERR_SHAPE && il_in(c, 0) && (c->in[0]->rank < 0 || c->in[1]->rank < 0 || c->in[2]->rank < 0)) {
        il_set_out(c, 0, IL_F32, 0, NULL);
        c->out[0]->rank = -1;
        return IL_OK;
    }
    if (st) return st;
    const il_tensor *mask = il_in(c, 3);
    int64_t sdims[IL_MAX_RANK], odims[IL_MAX_RANK];
    memcpy(sdims, g.dims, sizeof(int64_t) * (size_t)g.lead);
    sdims[g.lead] = g.sq;
    sdims[g.lead + 1] = g.sk;
    if (mask && mask->rank >= 0) {
        if (mask->rank > g.lead + 2) return il_kerr(c, IL_ERR_SHAPE, "mask has rank %d, the scores %d", mask->rank, g.lead + 2);
        for (int i = 0; i < mask->rank; i++) {
            int64_t m = mask->dims[mask->rank - 1 - i], s = sdims[g.lead + 1 - i];
            if (m >= 0 && s >= 0 && m != 1 && m != s)
                return il_kerr(c, IL_ERR_SHAPE, "mask dim %d (%lld) does not broadcast to the scores' %lld",
                               mask->rank - 1 - i, (long long)m, (long long)s);
        }
    }
    memcpy(odims, g.dims, sizeof(int64_t) * (size_t)g.lead);
    odims[g.lead] = g.sq;
    odims[g.lead + 1] = g.dv;
    il_set_out(c, 0, IL_F32, g.lead + 2, odims);
    return IL_OK;
}

/* Element offset of batch bi's matrix in t (leading dims broadcast against g's). */
static int64_t batch_off(const il_tensor *t, const att_geom *g, int64_t bi) {
    int64_t off = 0, stride = t->dims[t->rank - 2] * t->dims[t->rank - 1];
    for (int d = g->lead - 1; d >= 0; d--) {
        int64_t idx = bi % g->dims[d];
        bi /= g->dims[d];
        if (t->dims[d] != 1) off += idx * stride;
        stride *= t->dims[d];
    }
    return off;
}

typedef struct {
    const float *q, *k, *v, *mask;
    int64_t ms[IL_MAX_RANK]; /* mask strides over the scores' shape (0 along broadcast dims) */
    float scale;
} att_args;

static void att_args_init(const il_kctx *c, const att_geom *g, att_args *a) {
    const il_tensor *mask = il_in(c, 3);
    int64_t sdims[IL_MAX_RANK];
    memcpy(sdims, g->dims, sizeof(int64_t) * (size_t)g->lead);
    sdims[g->lead] = g->sq;
    sdims[g->lead + 1] = g->sk;
    a->q = c->in[0]->data;
    a->k = c->in[1]->data;
    a->v = c->in[2]->data;
    a->mask = mask ? mask->data : NULL;
    memset(a->ms, 0, sizeof a->ms);
    if (mask) il_broadcast_strides(mask, g->lead + 2, sdims, a->ms);
    a->scale = il_attr_float(c->node, "scale", 1.0f);
}

/* Mask offset of batch bi, row i (add j * ms[lead+1] for column j). */
static int64_t mask_off(const att_geom *g, const att_args *a, int64_t bi, int64_t i) {
    int64_t off = i * a->ms[g->lead];
    for (int d = g->lead - 1; d >= 0; d--) {
        off += (bi % g->dims[d]) * a->ms[d];
        bi /= g->dims[d];
    }
    return off;
}

/* The formula, row by row, in double. */
static il_status att_ref(il_kctx *c) {
    att_geom g;
    att_args a;
    il_status st = att_shapes(c, &g);
    if (st) return st;
    att_args_init(c, &g, &a);
    float *y = c->out[0]->data;
    double *s = malloc((size_t)(g.sk + 1) * sizeof(double));
    if (!s) return il_kerr(c, IL_ERR_OOM, "out of memory for %lld scores", (long long)g.sk);
    for (int64_t bi = 0; bi < g.batches; bi++) {
        const float *q = a.q + batch_off(c->in[0], &g, bi), *k = a.k + batch_off(c->in[1], &g, bi),
                    *v = a.v + batch_off(c->in[2], &g, bi);
        for (int64_t i = 0; i < g.sq; i++) {
            double mx = -INFINITY, sum = 0;
            int64_t mo = mask_off(&g, &a, bi, i);
            for (int64_t j = 0; j < g.sk; j++) {
                double dot = 0;
                for (int64_t e = 0; e < g.d; e++) dot += (double)q[i * g.d + e] * k[e * g.sk + j];
                s[j] = dot * a.scale + (a.mask ? a.mask[mo + j * a.ms[g.lead + 1]] : 0.0);
                if (s[j] > mx) mx = s[j];
            }
            for (int64_t j = 0; j < g.sk; j++) sum += (s[j] = exp(s[j] - mx));
            for (int64_t e = 0; e < g.dv; e++) {
                double acc = 0;
                for (int64_t j = 0; j < g.sk; j++) acc += s[j] / sum * v[j * g.dv + e];
                y[(bi * g.sq + i) * g.dv + e] = (float)acc;
            }
        }
    }
    free(s);
    return IL_OK;
}

/* One query row at a time per thread; the inner loops run along contiguous rows of Kt and V so
 * they vectorize. */
static il_status att_fast(il_kctx *c) {
    att_geom g;
    att_args a;
    il_status st = att_shapes(c, &g);
    if (st) return st;
    att_args_init(c, &g, &a);
    float *y = c->out[0]->data;
    int64_t rows = g.batches * g.sq, sk = g.sk, dv = g.dv, d = g.d;
    int threads = c->threads > 0 ? c->threads : 1;
    float *buf = malloc((size_t)(sk + 1) * (size_t)threads * sizeof(float));
    if (!buf) return il_kerr(c, IL_ERR_OOM, "out of memory for the score buffers");
    const il_tensor *Q = c->in[0], *K = c->in[1], *V = c->in[2];
#pragma omp parallel for num_threads(threads) if (threads > 1 && rows * sk * (d + dv) > 32768) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        int64_t bi = r / g.sq, i = r % g.sq;
        float *s = buf + (size_t)omp_get_thread_num() * (size_t)(sk + 1);
        const float *q = a.q + batch_off(Q, &g, bi) + i * d, *k = a.k + batch_off(K, &g, bi),
                    *v = a.v + batch_off(V, &g, bi);
        float *yr = y + r * dv;
        for (int64_t j = 0; j < sk; j++) s[j] = 0;
        for (int64_t e = 0; e < d; e++) {
            float qe = q[e] * a.scale;
            const float *kr = k + e * sk;
            for (int64_t j = 0; j < sk; j++) s[j] += qe * kr[j];
        }
        if (a.mask) {
            const float *m = a.mask + mask_off(&g, &a, bi, i);
            int64_t mj = a.ms[g.lead + 1];
            for (int64_t j = 0; j < sk; j++) s[j] += m[j * mj];
        }
        float mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < sk; j++) mx = s[j] > mx ? s[j] : mx;
        for (int64_t j = 0; j < sk; j++) sum += (s[j] = expf(s[j] - mx));
        float inv = 1.0f / sum;
        for (int64_t e = 0; e < dv; e++) yr[e] = 0;
        for (int64_t j = 0; j < sk; j++) {
            float p = s[j] * inv;
            const float *vr = v + j * dv;
            for (int64_t e = 0; e < dv; e++) yr[e] += p * vr[e];
        }
    }
    free(buf);
    return IL_OK;
}

const il_op il_ops_fused_attention[] = {
    {"ai.inferlab", "Attention", 1, att_infer, att_ref, att_fast, 0},
    {0},
};
