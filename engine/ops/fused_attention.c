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
 * [Sq, Sk] score matrix to memory: each thread takes a block of query rows of one (batch, head),
 * computes their scores with sgemm into a block that stays in its cache, applies scale, mask and
 * the softmax there in one pass per row, and multiplies the block by V with sgemm straight into Y.
 * Unfused, scores and probabilities are four full tensors written and read again.
 *
 * ai.inferlab MultiHeadAttention is the same product on the heads' layout before and after the
 * exports' head transposes (fuse-attention folds them in):
 *
 *   Q [B, Sq, H, D], K [B, Sk, H, D] (not transposed), V [B, Sk, H, Dv], mask broadcastable to
 *   [B, H, Sq, Sk] (as Attention's to its scores), Y [B, Sq, H, Dv]
 *
 * Head h of batch b reads rows of D floats H * D apart and writes its context rows H * Dv
 * apart, so the projections' outputs are read in place and the context comes out in
 * [B, S, hidden] order: the four Transposes per layer (copies of every activation) are gone.
 * B and H are equal in Q, K and V (no broadcasting).
 */
#include "../cpu/compute.h"
#include "fused.h"

#include <cblas.h>
#include <immintrin.h>
#include <omp.h>

typedef struct {
    int lead;                     /* leading (batch) dims of the scores */
    int64_t dims[IL_MAX_RANK];    /* the scores' leading dims */
    int64_t sq, d, sk, dv, batches;
    int64_t heads;                /* MultiHeadAttention: H ([B, S, H, D] rows); 0: Attention */
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
    g->heads = 0;
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

/* MultiHeadAttention: Q [B, Sq, H, D], K [B, Sk, H, D], V [B, Sk, H, Dv] (see the top). */
static il_status mha_shapes(const il_kctx *c, att_geom *g) {
    const il_tensor *q = il_in(c, 0), *k = il_in(c, 1), *v = il_in(c, 2);
    if (!q || !k || !v) return il_kerr(c, IL_ERR_INVALID, "needs inputs Q, K and V");
    for (int i = 0; i < c->n_in; i++)
        if (c->in[i] && c->in[i]->dtype != IL_F32)
            return il_kerr(c, IL_ERR_UNSUPPORTED, "input %d: unsupported dtype %s (MultiHeadAttention takes float32)",
                           i, il_dtype_name(c->in[i]->dtype));
    if (q->rank < 0 || k->rank < 0 || v->rank < 0) return IL_ERR_SHAPE; /* caller: unknown rank */
    if (q->rank != 4 || k->rank != 4 || v->rank != 4)
        return il_kerr(c, IL_ERR_SHAPE, "Q, K and V need rank 4 ([batch, seq, heads, head dim]), got %d, %d, %d",
                       q->rank, k->rank, v->rank);
    static const char *const what[4] = {"batch", "", "heads", ""};
    for (int d = 0; d < 4; d += 2)
        for (int i = 1; i < 3; i++) {
            int64_t a = q->dims[d], b = c->in[i]->dims[d];
            if (a >= 0 && b >= 0 && a != b)
                return il_kerr(c, IL_ERR_SHAPE, "Q has %s %lld, %s %lld", what[d], (long long)a, i == 1 ? "K" : "V",
                               (long long)b);
        }
    if (q->dims[3] >= 0 && k->dims[3] >= 0 && q->dims[3] != k->dims[3])
        return il_kerr(c, IL_ERR_SHAPE, "Q has %lld features per head, K %lld", (long long)q->dims[3], (long long)k->dims[3]);
    if (k->dims[1] >= 0 && v->dims[1] >= 0 && k->dims[1] != v->dims[1])
        return il_kerr(c, IL_ERR_SHAPE, "K has %lld keys, V %lld", (long long)k->dims[1], (long long)v->dims[1]);
    g->lead = 2;
    g->dims[0] = q->dims[0];
    g->dims[1] = q->dims[2];
    g->sq = q->dims[1];
    g->d = q->dims[3];
    g->sk = k->dims[1];
    g->dv = v->dims[3];
    g->heads = q->dims[2];
    g->batches = q->dims[0] < 0 || q->dims[2] < 0 ? -1 : q->dims[0] * q->dims[2];
    return IL_OK;
}

static il_status geom(const il_kctx *c, att_geom *g) {
    return strcmp(c->node->op_type, "MultiHeadAttention") ? att_shapes(c, g) : mha_shapes(c, g);
}

static il_status att_infer(il_kctx *c) {
    att_geom g;
    il_status st = geom(c, &g);
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
    if (g.heads) /* [B, Sq, H, Dv] */
        odims[1] = g.sq, odims[2] = g.heads, odims[3] = g.dv;
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
    const float *mask;
    int64_t ms[IL_MAX_RANK]; /* mask strides over the scores' shape (0 along broadcast dims) */
    float scale;
} att_args;

static void att_args_init(const il_kctx *c, const att_geom *g, att_args *a) {
    const il_tensor *mask = il_in(c, 3);
    int64_t sdims[IL_MAX_RANK];
    memcpy(sdims, g->dims, sizeof(int64_t) * (size_t)g->lead);
    sdims[g->lead] = g->sq;
    sdims[g->lead + 1] = g->sk;
    a->mask = mask ? mask->data : NULL;
    memset(a->ms, 0, sizeof a->ms);
    if (mask) il_broadcast_strides(mask, g->lead + 2, sdims, a->ms);
    a->scale = il_attr_float(c->node, "scale", 1.0f);
}

/* Where block (bi, i0) of one (batch, head) matrix reads and writes: Q's rows i0.. (ldq apart),
 * the keys (kt: Attention's Kt [D, Sk], ldk apart; else MultiHeadAttention's K rows [Sk, D]),
 * V's rows and Y's rows i0... */
typedef struct {
    const float *q, *k, *v;
    float *y;
    int64_t ldq, ldk, ldv, ldy;
    int kt;
} att_blk;

static void att_block(const il_kctx *c, const att_geom *g, float *y, int64_t bi, int64_t i0, att_blk *b) {
    const float *q = c->in[0]->data, *k = c->in[1]->data, *v = c->in[2]->data;
    if (g->heads) {
        int64_t h = g->heads, bb = bi / h, hh = bi % h;
        b->q = q + ((bb * g->sq + i0) * h + hh) * g->d;
        b->k = k + (bb * g->sk * h + hh) * g->d;
        b->v = v + (bb * g->sk * h + hh) * g->dv;
        b->y = y + ((bb * g->sq + i0) * h + hh) * g->dv;
        b->ldq = b->ldk = h * g->d;
        b->ldv = b->ldy = h * g->dv;
        b->kt = 0;
        return;
    }
    b->q = q + batch_off(c->in[0], g, bi) + i0 * g->d;
    b->k = k + batch_off(c->in[1], g, bi);
    b->v = v + batch_off(c->in[2], g, bi);
    b->y = y + (bi * g->sq + i0) * g->dv;
    b->ldq = g->d, b->ldk = g->sk, b->ldv = g->dv, b->ldy = g->dv;
    b->kt = 1;
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
    il_status st = geom(c, &g);
    if (st) return st;
    att_args_init(c, &g, &a);
    float *y = c->out[0]->data;
    double *s = malloc((size_t)(g.sk + 1) * sizeof(double));
    if (!s) return il_kerr(c, IL_ERR_OOM, "out of memory for %lld scores", (long long)g.sk);
    for (int64_t bi = 0; bi < g.batches; bi++) {
        att_blk b;
        att_block(c, &g, y, bi, 0, &b);
        /* key j's feature e */
        int64_t kj = b.kt ? 1 : b.ldk, ke = b.kt ? b.ldk : 1;
        for (int64_t i = 0; i < g.sq; i++) {
            double mx = -INFINITY, sum = 0;
            int64_t mo = mask_off(&g, &a, bi, i);
            for (int64_t j = 0; j < g.sk; j++) {
                double dot = 0;
                for (int64_t e = 0; e < g.d; e++) dot += (double)b.q[i * b.ldq + e] * b.k[e * ke + j * kj];
                s[j] = dot * a.scale + (a.mask ? a.mask[mo + j * a.ms[g.lead + 1]] : 0.0);
                if (s[j] > mx) mx = s[j];
            }
            for (int64_t j = 0; j < g.sk; j++) sum += (s[j] = exp(s[j] - mx));
            for (int64_t e = 0; e < g.dv; e++) {
                double acc = 0;
                for (int64_t j = 0; j < g.sk; j++) acc += s[j] / sum * b.v[j * b.ldv + e];
                b.y[i * b.ldy + e] = (float)acc;
            }
        }
    }
    free(s);
    return IL_OK;
}

/* ---------------------------------------------------------------- fast kernel
 *
 * Per task, a block of query rows of one (batch, head) matrix:
 *
 *     S = scale * Q_blk @ Kt          one sgemm into a per-thread block of rb x Sk floats
 *     S = exp(S + mask - rowmax)      one pass per row, in cache (row sums kept aside)
 *     Y_blk = S @ V / rowsum          one sgemm straight into Y, then a scale per row
 *
 * so the scores never leave the thread's cache and the products run at BLAS speed. The blocks
 * are small enough for the score block to stay in L2 (il_tile_rows), and each thread takes an
 * equal share of all the rows (att_fast). Threads run in parallel; BLAS then runs on the
 * calling thread. */

/* One row of scaled scores s[0..sk): add the mask row m (element j at m[j * mstride]; NULL for
 * none), then s = exp(s - max). Returns 1 / sum(s) (the caller scales the output row by it).
 * A row holding NaN or an infinite maximum (every key masked with -inf) takes the plain expf loop
 * and comes out NaN like the reference's. Built for the widest vectors the CPU has (the build's
 * baseline is SSE4.2): at 16 keys a row the exponentials were 16% of tiny_bert. */
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) static float
softmax_row(float *restrict s, int64_t sk, const float *restrict m, int64_t mstride) {
    float mx = -INFINITY;
    int bad = 0;
    if (m && mstride == 1) {
#pragma omp simd reduction(max : mx) reduction(| : bad)
        for (int64_t j = 0; j < sk; j++) {
            float v = s[j] + m[j];
            s[j] = v;
            mx = v > mx ? v : mx;
            bad |= v != v;
        }
    } else {
        if (m)
            for (int64_t j = 0; j < sk; j++) s[j] += m[j * mstride];
#pragma omp simd reduction(max : mx) reduction(| : bad)
        for (int64_t j = 0; j < sk; j++) {
            mx = s[j] > mx ? s[j] : mx;
            bad |= s[j] != s[j];
        }
    }
    bad |= isinf(mx);
    double sum = 0;
    if (bad) {
        for (int64_t j = 0; j < sk; j++) sum += s[j] = expf(s[j] - mx);
    } else {
#pragma omp simd reduction(+ : sum)
        for (int64_t j = 0; j < sk; j++) {
            float e = il_exp_le0(s[j] - mx);
            s[j] = e;
            sum += e;
        }
    }
    return (float)(1.0 / sum);
}

/* The softmax of a block of short rows, in passes over the whole block rather than row by row:
 * at 16 or 17 keys a row, softmax_row's per-row work (two horizontal reductions, one of them in
 * double, and the loop tails) cost more than its exponentials. soft_max: row max of s + mask
 * (read only) and whether it is NaN or infinite; soft_shift: s = s + mask - max; soft_exp: the
 * exponentials of n elements; soft_sum: 1 / row sum (float lanes: the terms are in (0, 1] and one
 * of them is 1, so the sum loses a few ulps of a number >= 1). */
#define SOFT_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
SOFT_CLONES static float soft_max(const float *restrict s, int64_t sk, const float *restrict m, int64_t ms,
                                  int *bad) {
    float mx = -INFINITY;
    int b = 0;
    if (m && ms == 1) { /* a row of the mask: contiguous loads, not a gather */
#pragma omp simd reduction(max : mx) reduction(| : b)
        for (int64_t j = 0; j < sk; j++) {
            float v = s[j] + m[j];
            mx = v > mx ? v : mx;
            b |= v != v;
        }
    } else if (m) {
#pragma omp simd reduction(max : mx) reduction(| : b)
        for (int64_t j = 0; j < sk; j++) {
            float v = s[j] + m[j * ms];
            mx = v > mx ? v : mx;
            b |= v != v;
        }
    } else {
#pragma omp simd reduction(max : mx) reduction(| : b)
        for (int64_t j = 0; j < sk; j++) {
            mx = s[j] > mx ? s[j] : mx;
            b |= s[j] != s[j];
        }
    }
    *bad |= b | isinf(mx);
    return mx;
}
SOFT_CLONES static void soft_shift(float *restrict s, int64_t sk, const float *restrict m, int64_t ms, float mx) {
    if (m && ms == 1) {
#pragma omp simd
        for (int64_t j = 0; j < sk; j++) s[j] = s[j] + m[j] - mx;
    } else if (m) {
#pragma omp simd
        for (int64_t j = 0; j < sk; j++) s[j] = s[j] + m[j * ms] - mx;
    } else {
#pragma omp simd
        for (int64_t j = 0; j < sk; j++) s[j] = s[j] - mx;
    }
}
SOFT_CLONES static void soft_exp(float *restrict s, int64_t n) {
#pragma omp simd
    for (int64_t j = 0; j < n; j++) s[j] = il_exp_le0(s[j]);
}
SOFT_CLONES static float soft_sum(const float *restrict s, int64_t sk) {
    float sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < sk; j++) sum += s[j];
    return 1.0f / sum;
}

/* One row of a long block (ViT's 197 keys, BERT's 128) in two passes while it is in L1, with
 * AVX-512 masks for the row's tail: x = s + m (stored) and its max, then s = exp(x - max) and the
 * row sum; returns 1 / sum. The passes over the whole block above cost 30 us of each of ViT-tiny's
 * 197x197 blocks, as much as either product: the exponentials' instructions, not memory. The
 * exponential here is il_exp_le0's polynomial with FMAs, k rounded to nearest and 2^k applied by
 * scalef (0 below -88, as there), about half the instructions. Sets *bad (and leaves x in s)
 * where the row holds NaN or its max is infinite: softmax_row then gives the reference's NaN. */
#define ATT_ROW_MIN_KEYS 64
__attribute__((target("avx512f"))) static float softmax_row_avx512(float *restrict s, int64_t sk,
                                                                   const float *restrict m, int *bad) {
    __m512 vmax = _mm512_set1_ps(-INFINITY);
    __mmask16 nan = 0;
    for (int64_t j = 0; j < sk; j += 16) {
        __mmask16 k = sk - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (sk - j)) - 1);
        __m512 x = _mm512_maskz_loadu_ps(k, s + j);
        if (m) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(k, m + j));
        _mm512_mask_storeu_ps(s + j, k, x);
        nan |= _mm512_mask_cmp_ps_mask(k, x, x, _CMP_UNORD_Q);
        vmax = _mm512_mask_max_ps(vmax, k, vmax, x);
    }
    float mx = _mm512_reduce_max_ps(vmax);
    if (nan || isinf(mx)) {
        *bad = 1;
        return 0.0f;
    }
    const __m512 lo = _mm512_set1_ps(-88.0f), log2e = _mm512_set1_ps(1.44269504088896341f),
                 c1 = _mm512_set1_ps(0.693359375f), c2 = _mm512_set1_ps(-2.12194440e-4f), vmx = _mm512_set1_ps(mx);
    __m512 sum = _mm512_setzero_ps();
    for (int64_t j = 0; j < sk; j += 16) {
        __mmask16 k = sk - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (sk - j)) - 1);
        __m512 x = _mm512_sub_ps(_mm512_maskz_loadu_ps(k, s + j), vmx);
        __mmask16 keep = _mm512_cmp_ps_mask(x, lo, _CMP_GE_OQ); /* below -88: 0, as il_exp_le0 */
        __m512 kf = _mm512_roundscale_ps(_mm512_mul_ps(x, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m512 r = _mm512_fnmadd_ps(kf, c2, _mm512_fnmadd_ps(kf, c1, x)); /* x = k ln2 + r, |r| <= ln2 / 2 */
        __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(1.9875691500e-4f), r, _mm512_set1_ps(1.3981999507e-3f));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
        p = _mm512_add_ps(_mm512_fmadd_ps(_mm512_mul_ps(p, r), r, r), _mm512_set1_ps(1.0f));
        __m512 e = _mm512_maskz_scalef_ps(keep & k, p, kf); /* p 2^k */
        _mm512_mask_storeu_ps(s + j, k, e);
        sum = _mm512_add_ps(sum, e);
    }
    return 1.0f / _mm512_reduce_add_ps(sum);
}

/* c = alpha * a b for the products of one small attention block ([m, k] by [k, n], row-major),
 * four rows of c at a time, each a sum of b's rows scaled by a's elements (vectorized along c's
 * rows): at tiny_bert's and tiny_vit's sizes (16 or 17 rows, keys and head width) an sgemm call
 * costs several times the product, since OpenBLAS packs both operands first. Used while a
 * task's products are at most ATT_SMALL_MACS (att_fast). */
#define ATT_SMALL_MACS 65536
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) static void
small_gemm(int64_t m, int64_t n, int64_t k, float alpha, const float *restrict a, int64_t lda, const float *restrict b,
           int64_t ldb, float *restrict c, int64_t ldc) {
    int64_t i = 0;
    for (; i + 4 <= m; i += 4) {
        float *c0 = c + i * ldc, *c1 = c0 + ldc, *c2 = c1 + ldc, *c3 = c2 + ldc;
        const float *a0 = a + i * lda, *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda;
        for (int64_t j = 0; j < n; j++) c0[j] = c1[j] = c2[j] = c3[j] = 0.0f;
        for (int64_t e = 0; e < k; e++) {
            const float *restrict br = b + e * ldb;
            float v0 = a0[e], v1 = a1[e], v2 = a2[e], v3 = a3[e];
#pragma omp simd
            for (int64_t j = 0; j < n; j++) {
                float x = br[j];
                c0[j] += v0 * x;
                c1[j] += v1 * x;
                c2[j] += v2 * x;
                c3[j] += v3 * x;
            }
        }
    }
    for (; i < m; i++) {
        float *restrict cr = c + i * ldc;
        for (int64_t j = 0; j < n; j++) cr[j] = 0.0f;
        for (int64_t e = 0; e < k; e++) {
            const float *restrict br = b + e * ldb;
            float v = a[i * lda + e];
#pragma omp simd
            for (int64_t j = 0; j < n; j++) cr[j] += v * br[j];
        }
    }
    if (alpha != 1.0f)
        for (i = 0; i < m; i++) {
            float *cr = c + i * ldc;
#pragma omp simd
            for (int64_t j = 0; j < n; j++) cr[j] *= alpha;
        }
}

/* The per-call state of att_fast. */
typedef struct {
    const il_kctx *c;
    const att_geom *g;
    const att_args *a;
    float *y;
    int rows512; /* long rows with a contiguous mask: softmax_row_avx512 */
} att_run;

/* Rows i0 .. i0 + n of (batch, head) matrix bi, as above. s: n x Sk scores and n sums; kbuf: d x
 * Sk floats for MultiHeadAttention's keys transposed, whose head *head holds (-1: none yet). */
static void att_piece(const att_run *r, int64_t bi, int64_t i0, int64_t n, float *s, float *kbuf, int64_t *head) {
    const att_geom *g = r->g;
    const att_args *a = r->a;
    int64_t sk = g->sk, d = g->d, dv = g->dv, mcol = a->ms[g->lead + 1];
    float *inv = s + n * sk;
    att_blk blk;
    att_block(r->c, g, r->y, bi, i0, &blk);
    const float *kt = blk.k;
    int64_t ldk = blk.ldk;
    if (!blk.kt) { /* the head's keys transposed, d x sk, once for its pieces on this thread */
        if (*head != bi) il_transpose_f32(kbuf, sk, blk.k, blk.ldk, sk, d);
        *head = bi;
        kt = kbuf, ldk = sk;
    }
    int small = n * sk * (d > dv ? d : dv) <= ATT_SMALL_MACS;
    if (small) small_gemm(n, sk, d, a->scale, blk.q, blk.ldq, kt, ldk, s, sk);
    else if (d > 0) il_sgemm_serial(0, 0, n, sk, d, a->scale, blk.q, blk.ldq, kt, ldk, 0.0f, s, sk);
    else memset(s, 0, (size_t)(n * sk) * sizeof(float));
    int bad = 0;
    if (r->rows512) {
        for (int64_t i = 0; i < n; i++) {
            int b = 0;
            inv[i] = softmax_row_avx512(s + i * sk, sk, a->mask ? a->mask + mask_off(g, a, bi, i0 + i) : NULL, &b);
            if (b) inv[i] = softmax_row(s + i * sk, sk, NULL, 0); /* s holds scores + mask */
        }
    } else {
        for (int64_t i = 0; i < n && !bad; i++)
            inv[i] = soft_max(s + i * sk, sk, a->mask ? a->mask + mask_off(g, a, bi, i0 + i) : NULL, mcol, &bad);
        if (!bad) {
            for (int64_t i = 0; i < n; i++)
                soft_shift(s + i * sk, sk, a->mask ? a->mask + mask_off(g, a, bi, i0 + i) : NULL, mcol, inv[i]);
            soft_exp(s, n * sk);
            for (int64_t i = 0; i < n; i++) inv[i] = soft_sum(s + i * sk, sk);
        } else {
            for (int64_t i = 0; i < n; i++)
                inv[i] = softmax_row(s + i * sk, sk, a->mask ? a->mask + mask_off(g, a, bi, i0 + i) : NULL, mcol);
        }
    }
    if (small) small_gemm(n, dv, sk, 1.0f, s, sk, blk.v, blk.ldv, blk.y, blk.ldy);
    else il_sgemm_serial(0, 0, n, dv, sk, 1.0f, s, sk, blk.v, blk.ldv, 0.0f, blk.y, blk.ldy);
    for (int64_t i = 0; i < n; i++) {
        float f = inv[i], *yr = blk.y + i * blk.ldy;
#pragma omp simd
        for (int64_t e = 0; e < dv; e++) yr[e] *= f;
    }
}

/* The query rows of all (batch, head) matrices in one sequence, an equal share for each thread
 * (a contiguous range, cut into pieces where a matrix ends and where a piece's scores would
 * outgrow il_tile_rows). Blocks of equal size per matrix did worse where the matrices do not
 * divide among the threads (ViT-tiny's 3 heads on 2 threads: 6 blocks, each packing Kt and V
 * again, against 4 pieces here). */
static il_status att_fast(il_kctx *c) {
    att_geom g;
    att_args a;
    il_status st = geom(c, &g);
    if (st) return st;
    att_args_init(c, &g, &a);
    float *y = c->out[0]->data;
    int64_t sq = g.sq, sk = g.sk, d = g.d, dv = g.dv;
    if (g.batches * sq * dv == 0) return IL_OK;
    if (sk == 0) { /* softmax over no keys: the reference's empty sums */
        memset(y, 0, (size_t)(g.batches * sq * dv) * sizeof(float));
        return IL_OK;
    }
    int threads = c->threads > 0 ? c->threads : 1;
    int64_t cap = il_tile_rows(sk) < sq ? il_tile_rows(sk) : sq, total = g.batches * sq;
    int par = threads > 1 && total > 1 && g.batches * sq * sk * (d + dv) > 32768;
    int nbuf = par ? threads : 1;
    /* per thread: scores and 1/sum of up to cap rows, and MultiHeadAttention's keys of the
     * thread's last head transposed (Attention's products then, whose Kt a Transpose node wrote:
     * sgemm with a transposed operand, or on K's strided rows, measured slower) */
    size_t per_thread = (size_t)(cap * sk + cap + (g.heads ? d * sk : 0));
    float *buf = malloc(per_thread * (size_t)nbuf * sizeof(float));
    int64_t *head = malloc((size_t)nbuf * sizeof *head);
    if (!buf || !head) {
        free(buf), free(head);
        return il_kerr(c, IL_ERR_OOM, "out of memory for the score blocks (%lld x %lld floats per thread)",
                       (long long)cap, (long long)sk);
    }
    /* Inside the parallel region each sgemm must stay on its thread. OpenBLAS (pthreads build)
     * does so by itself below IL_SMALL_GEMM; above it, it would queue every thread's call on its
     * one thread pool, so it is told to use one thread until the region ends. */
    int blas_threads = openblas_get_num_threads();
    int64_t biggest = cap * sk * (d > dv ? d : dv);
    int solo = par && blas_threads > 1 && biggest >= IL_SMALL_GEMM;
    if (solo) openblas_set_num_threads(1);
    static int avx512 = -1;
    if (avx512 < 0) avx512 = __builtin_cpu_supports("avx512f") ? 1 : 0;
    att_run r = {c, &g, &a, y, avx512 && sk >= ATT_ROW_MIN_KEYS && (!a.mask || a.ms[g.lead + 1] == 1)};
#pragma omp parallel num_threads(nbuf) if (par)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        float *s = buf + (size_t)t * per_thread;
        head[t] = -1;
        for (int64_t row = total * t / nt, end = total * (t + 1) / nt; row < end;) {
            int64_t bi = row / sq, i0 = row % sq, n = sq - i0;
            if (n > end - row) n = end - row;
            if (n > cap) n = cap;
            att_piece(&r, bi, i0, n, s, s + cap * sk + cap, &head[t]);
            row += n;
        }
    }
    if (solo) openblas_set_num_threads(blas_threads);
    free(buf);
    free(head);
    return IL_OK;
}

const il_op il_ops_fused_attention[] = {
    {"ai.inferlab", "Attention", 1, att_infer, att_ref, att_fast, 0},
    {"ai.inferlab", "MultiHeadAttention", 1, att_infer, att_ref, att_fast, 0},
    {0},
};
