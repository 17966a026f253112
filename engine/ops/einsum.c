/*
 * einsum.c - Einsum: equation parsing, shape inference, a reference kernel and a float32
 * fast path for two-operand contractions (what transformers emit: "bhqd,bhkd->bhqk", ...).
 *
 * Every subscript letter and every dim under "..." becomes a label with one size. An input
 * sees each label through a stride (the sum of strides when a letter repeats in one term,
 * which walks a diagonal; 0 when the label is absent or broadcast from size 1). The reference
 * then loops over every combination of all labels and adds the product of the inputs into the
 * output element named by the output labels: sums, traces, diagonals and transposes all fall
 * out of that one loop.
 *
 * Output labels: explicit after "->"; implicit (no "->"): the "..." dims first, then the
 * letters used exactly once, in alphabetical (ASCII) order, as numpy does.
 */
#include "../cpu/compute.h"

#include <ctype.h>
#include <stdio.h>

#define ES_MAX_IN 16
#define ES_MAX_LAB (52 + IL_MAX_RANK)

typedef struct {
    int nin, nlab, nout;
    int64_t size[ES_MAX_LAB];
    int out[IL_MAX_RANK];                 /* output labels in order */
    int is_out[ES_MAX_LAB];
    int nterm[ES_MAX_IN];                 /* dims of each input */
    int term[ES_MAX_IN][IL_MAX_RANK];     /* label of each dim of each input */
    int64_t stride[ES_MAX_IN][ES_MAX_LAB]; /* element stride of each label in each input */
} es_eq;

/* Split one term ("ab...c") into labels for a tensor of the given rank. Labels 0..ne-1 are the
 * ellipsis dims (right-aligned: an input with fewer uses the last ones); letters get the rest. */
static il_status es_term(const il_kctx *c, const char *s, size_t len, int rank, int ne, int *labmap, int *nlab,
                         int *labels, int *nlabels, char *label_char) {
    int n = 0, letters = 0, has_ell = 0;
    for (size_t i = 0; i < len; i++) {
        if (isalpha((unsigned char)s[i])) {
            letters++;
        } else if (s[i] == '.' && i + 2 < len && s[i + 1] == '.' && s[i + 2] == '.') {
            if (has_ell) return il_kerr(c, IL_ERR_INVALID, "two ellipses in one term of the equation");
            has_ell = 1;
            i += 2;
        } else {
            return il_kerr(c, IL_ERR_INVALID, "bad character '%c' in the equation", s[i]);
        }
    }
    int e = has_ell ? rank - letters : 0;
    if (rank >= 0 && (e < 0 || (!has_ell && letters != rank)))
        return il_kerr(c, IL_ERR_SHAPE, "term '%.*s' has %d subscripts for an input of rank %d", (int)len, s, letters, rank);
    if (e > ne) return il_kerr(c, IL_ERR_INTERNAL, "ellipsis rank");
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.') {
            for (int j = ne - e; j < ne; j++) labels[n++] = j;
            i += 2;
            continue;
        }
        int ch = (unsigned char)s[i];
        if (labmap[ch] < 0) {
            labmap[ch] = (*nlab)++;
            label_char[labmap[ch]] = (char)ch;
        }
        if (n >= IL_MAX_RANK) return il_kerr(c, IL_ERR_INVALID, "too many subscripts in a term");
        labels[n++] = labmap[ch];
    }
    *nlabels = n;
    return IL_OK;
}

/* Number of dims "..." stands for in term s of an input of this rank (0 without "..."). */
static int es_ell_dims(const char *s, size_t len, int rank) {
    int letters = 0, ell = 0;
    for (size_t i = 0; i < len; i++) {
        if (isalpha((unsigned char)s[i])) letters++;
        if (s[i] == '.') ell = 1;
    }
    return ell && rank > letters ? rank - letters : 0;
}

/* Parse the equation against the inputs' shapes (all ranks known) into q. */
static il_status es_parse(const il_kctx *c, es_eq *q) {
    const char *eq = il_attr_string(c->node, "equation", NULL);
    if (!eq) return il_kerr(c, IL_ERR_INVALID, "needs the equation attribute");
    char buf[512];
    size_t bl = 0;
    for (const char *p = eq; *p && bl + 1 < sizeof buf; p++)
        if (!isspace((unsigned char)*p)) buf[bl++] = *p;
    buf[bl] = 0;
    memset(q, 0, sizeof *q);
    q->nin = c->n_in;
    if (q->nin < 1 || q->nin > ES_MAX_IN) return il_kerr(c, IL_ERR_UNSUPPORTED, "%d inputs", q->nin);
    char *arrow = strstr(buf, "->");
    size_t lhs_len = arrow ? (size_t)(arrow - buf) : bl;
    /* term boundaries */
    const char *ts[ES_MAX_IN];
    size_t tl[ES_MAX_IN];
    int nt = 0;
    for (size_t i = 0, st = 0; i <= lhs_len; i++)
        if (i == lhs_len || buf[i] == ',') {
            if (nt == ES_MAX_IN) return il_kerr(c, IL_ERR_INVALID, "too many terms");
            ts[nt] = buf + st;
            tl[nt++] = i - st;
            st = i + 1;
        }
    if (nt != q->nin) return il_kerr(c, IL_ERR_INVALID, "equation '%s' has %d terms for %d inputs", eq, nt, q->nin);
    int ne = 0;
    for (int i = 0; i < nt; i++) {
        int e = es_ell_dims(ts[i], tl[i], c->in[i]->rank);
        ne = e > ne ? e : ne;
    }
    int labmap[256], count[ES_MAX_LAB] = {0};
    char label_char[ES_MAX_LAB] = {0};
    for (int i = 0; i < 256; i++) labmap[i] = -1;
    q->nlab = ne;
    for (int i = 0; i < ES_MAX_LAB; i++) q->size[i] = 1;
    for (int i = 0; i < nt; i++) {
        const il_tensor *x = c->in[i];
        il_status st = es_term(c, ts[i], tl[i], x->rank, ne, labmap, &q->nlab, q->term[i], &q->nterm[i], label_char);
        if (st) return st;
        /* sizes agree across inputs, size 1 broadcasting */
        int64_t str = 1;
        for (int d = q->nterm[i] - 1; d >= 0; d--) {
            int l = q->term[i][d];
            int64_t sz = x->dims[d];
            count[l]++;
            if (sz != 1 && q->size[l] != 1 && sz != q->size[l] && sz >= 0 && q->size[l] >= 0) {
                char sx[96];
                return il_kerr(c, IL_ERR_SHAPE, "subscript '%c' is %lld in input %d %s but %lld elsewhere",
                               l < ne ? '.' : label_char[l], (long long)sz, i, il_shape_str(x->rank, x->dims, sx, sizeof sx),
                               (long long)q->size[l]);
            }
            if (sz != 1 && (q->size[l] == 1 || q->size[l] < 0)) q->size[l] = sz;
            if (sz != 1) q->stride[i][l] += str;
            str *= sz;
        }
    }
    if (arrow) {
        const char *o = arrow + 2;
        for (size_t i = 0; o[i]; i++) {
            if (o[i] == '.') {
                if (strncmp(o + i, "...", 3)) return il_kerr(c, IL_ERR_INVALID, "bad ellipsis in output");
                for (int j = 0; j < ne; j++) q->out[q->nout++] = j;
                i += 2;
                continue;
            }
            int l = isalpha((unsigned char)o[i]) ? labmap[(unsigned char)o[i]] : -1;
            if (l < 0) return il_kerr(c, IL_ERR_INVALID, "output subscript '%c' is not in any input", o[i]);
            if (q->is_out[l]) return il_kerr(c, IL_ERR_INVALID, "output subscript '%c' repeats", o[i]);
            if (q->nout >= IL_MAX_RANK) return il_kerr(c, IL_ERR_UNSUPPORTED, "output rank above %d", IL_MAX_RANK);
            q->out[q->nout++] = l;
            q->is_out[l] = 1;
        }
    } else {
        for (int j = 0; j < ne; j++) q->out[q->nout++] = j;
        for (int ch = 0; ch < 256; ch++) /* ASCII order */
            if (labmap[ch] >= 0 && count[labmap[ch]] == 1) {
                if (q->nout >= IL_MAX_RANK) return il_kerr(c, IL_ERR_UNSUPPORTED, "output rank above %d", IL_MAX_RANK);
                q->out[q->nout++] = labmap[ch];
            }
    }
    for (int j = 0; j < q->nout; j++) q->is_out[q->out[j]] = 1;
    return IL_OK;
}

static il_status es_dtype(const il_kctx *c) {
    for (int i = 0; i < c->n_in; i++) {
        if (!c->in[i]) return il_kerr(c, IL_ERR_INVALID, "input %d is missing", i);
        il_dtype t = c->in[i]->dtype;
        if (t != c->in[0]->dtype)
            return il_kerr(c, IL_ERR_TYPE, "input %d is %s, input 0 is %s", i, il_dtype_name(t), il_dtype_name(c->in[0]->dtype));
        if (!il_is_f32_f64(t) && t != IL_I32 && t != IL_I64)
            return il_kerr(c, IL_ERR_UNSUPPORTED, "unsupported dtype %s", il_dtype_name(t));
    }
    return IL_OK;
}

il_status il_einsum_infer(il_kctx *c) {
    il_status st = es_dtype(c);
    if (st) return st;
    for (int i = 0; i < c->n_in; i++)
        if (c->in[i]->rank < 0) {
            il_set_out(c, 0, c->in[0]->dtype, -1, NULL);
            return IL_OK;
        }
    es_eq q;
    if ((st = es_parse(c, &q))) return st;
    int64_t dims[IL_MAX_RANK];
    for (int j = 0; j < q.nout; j++) dims[j] = q.size[q.out[j]];
    il_set_out(c, 0, c->in[0]->dtype, q.nout, dims);
    return IL_OK;
}

/* Loop over every combination of label values (output labels first, then the summed ones);
 * add the product of the inputs at those labels into the output element. */
il_status il_einsum_ref(il_kctx *c) {
    es_eq q;
    il_status st = es_parse(c, &q);
    if (st) return st;
    il_tensor *y = c->out[0];
    int order[ES_MAX_LAB], n = 0;
    for (int j = 0; j < q.nout; j++) order[n++] = q.out[j];
    for (int l = 0; l < q.nlab; l++)
        if (!q.is_out[l]) order[n++] = l;
    int64_t ny = il_tensor_numel(y), total = 1;
    for (int i = 0; i < n; i++) total *= q.size[order[i]];
    double *acc = calloc((size_t)(ny ? ny : 1), sizeof *acc);
    if (!acc) return il_kerr(c, IL_ERR_OOM, "out of memory");
    int64_t idx[ES_MAX_LAB] = {0};
    for (int64_t t = 0; t < total; t++) {
        /* idx: the label values of combination t, the last label varying fastest */
        int64_t r = t, yo = 0, ys = 1;
        for (int i = n - 1; i >= 0; i--) {
            idx[order[i]] = r % q.size[order[i]];
            r /= q.size[order[i]];
        }
        for (int j = q.nout - 1; j >= 0; j--) {
            yo += idx[q.out[j]] * ys;
            ys *= q.size[q.out[j]];
        }
        double p = 1;
        for (int i = 0; i < q.nin; i++) {
            int64_t off = 0;
            for (int l = 0; l < q.nlab; l++) off += idx[l] * q.stride[i][l];
            p *= il_tensor_get(c->in[i], off);
        }
        acc[yo] += p;
    }
    for (int64_t i = 0; i < ny; i++) il_tensor_set(y, i, acc[i]);
    free(acc);
    return IL_OK;
}

/* Copy src into dst laid out as dims over labels lab[0..n) (last fastest), reading src through
 * its per-label strides. Skipped (returns src) when src already has exactly that layout. */
static const float *es_pack(const float *src, const int64_t *stride, const int *lab, int n, const int64_t *size,
                            float *dst) {
    int64_t s = 1, total = 1;
    int contiguous = 1;
    for (int i = n - 1; i >= 0; i--) {
        if (size[lab[i]] != 1 && stride[lab[i]] != s) contiguous = 0;
        s *= size[lab[i]];
        total *= size[lab[i]];
    }
    if (contiguous) return src;
    for (int64_t t = 0; t < total; t++) {
        int64_t r = t, off = 0;
        for (int i = n - 1; i >= 0; i--) {
            off += (r % size[lab[i]]) * stride[lab[i]];
            r /= size[lab[i]];
        }
        dst[t] = src[off];
    }
    return dst;
}

/* Two float32 operands whose labels are each batch (A, B, out), m (A, out), n (B, out) or
 * k (A, B, summed): pack A to [batch, m, k] and B to [batch, k, n], one sgemm per batch, then
 * permute into the output. Anything else (diagonals, broadcasting, labels summed within one
 * operand) goes to the reference. */
il_status il_einsum_fast(il_kctx *c) {
    if (c->n_in != 2 || c->in[0]->dtype != IL_F32) return il_einsum_ref(c);
    es_eq q;
    il_status st = es_parse(c, &q);
    if (st) return st;
    int bl[ES_MAX_LAB], ml[ES_MAX_LAB], nl[ES_MAX_LAB], kl[ES_MAX_LAB], nb = 0, nm = 0, nn = 0, nk = 0;
    int64_t B = 1, M = 1, N = 1, K = 1;
    for (int i = 0; i < 2; i++) { /* a repeated label or a broadcast dim: not a plain matmul */
        int seen[ES_MAX_LAB] = {0};
        for (int d = 0; d < q.nterm[i]; d++) {
            int l = q.term[i][d];
            if (seen[l]++ || c->in[i]->dims[d] != q.size[l]) return il_einsum_ref(c);
        }
    }
    for (int j = 0; j < q.nout; j++) {
        int l = q.out[j], ina = q.stride[0][l] || q.size[l] == 1, inb = q.stride[1][l] || q.size[l] == 1;
        if (ina && inb) bl[nb++] = l, B *= q.size[l];
        else if (ina) ml[nm++] = l, M *= q.size[l];
        else nl[nn++] = l, N *= q.size[l];
    }
    for (int d = 0; d < q.nterm[0]; d++) {
        int l = q.term[0][d];
        if (q.is_out[l]) continue;
        int inb = 0;
        for (int e = 0; e < q.nterm[1]; e++) inb |= q.term[1][e] == l;
        if (!inb) return il_einsum_ref(c); /* summed within A alone */
        kl[nk++] = l;
        K *= q.size[l];
    }
    for (int e = 0; e < q.nterm[1]; e++) { /* summed within B alone */
        int l = q.term[1][e], ina = 0;
        for (int d = 0; d < q.nterm[0]; d++) ina |= q.term[0][d] == l;
        if (!q.is_out[l] && !ina) return il_einsum_ref(c);
    }
    float *y = c->out[0]->data;
    if (B * M * N == 0) return IL_OK;
    int la[ES_MAX_LAB], lb[ES_MAX_LAB], ly[ES_MAX_LAB], na = 0, nbb = 0, ny = 0;
    for (int i = 0; i < nb; i++) la[na++] = lb[nbb++] = ly[ny++] = bl[i];
    for (int i = 0; i < nm; i++) la[na++] = ly[ny++] = ml[i];
    for (int i = 0; i < nk; i++) la[na++] = kl[i];
    for (int i = 0; i < nk; i++) lb[nbb++] = kl[i];
    for (int i = 0; i < nn; i++) lb[nbb++] = ly[ny++] = nl[i];
    float *pa = malloc((size_t)(B * M * K + 1) * sizeof(float)), *pb = malloc((size_t)(B * K * N + 1) * sizeof(float));
    float *py = malloc((size_t)(B * M * N + 1) * sizeof(float));
    if (!pa || !pb || !py) {
        free(pa), free(pb), free(py);
        return il_kerr(c, IL_ERR_OOM, "out of memory");
    }
    const float *a = es_pack(c->in[0]->data, q.stride[0], la, na, q.size, pa);
    const float *b = es_pack(c->in[1]->data, q.stride[1], lb, nbb, q.size, pb);
    /* the gemm result is laid out [batch, m, n]; write straight into y when that is y's order */
    int direct = 1;
    for (int j = 0; j < q.nout; j++) direct &= q.out[j] == ly[j];
    float *r = direct ? y : py;
    if (K == 0) memset(r, 0, (size_t)(B * M * N) * sizeof(float));
    else if (B > 1 && M * N * K < IL_SMALL_GEMM) {
        IL_PAR_FOR(c, bi, B)
        il_sgemm(0, 0, M, N, K, 1.0f, a + bi * M * K, K, b + bi * K * N, N, 0.0f, r + bi * M * N, N);
    } else {
        for (int64_t bi = 0; bi < B; bi++)
            il_sgemm(0, 0, M, N, K, 1.0f, a + bi * M * K, K, b + bi * K * N, N, 0.0f, r + bi * M * N, N);
    }
    if (!direct) { /* y[out order] from r[batch, m, n]: pack r with its strides per label */
        int64_t rs[ES_MAX_LAB] = {0}, s = 1;
        for (int i = ny - 1; i >= 0; i--) {
            rs[ly[i]] = s;
            s *= q.size[ly[i]];
        }
        const float *res = es_pack(r, rs, q.out, q.nout, q.size, y);
        if (res != y) memcpy(y, res, (size_t)(B * M * N) * sizeof(float));
    }
    free(pa), free(pb), free(py);
    return IL_OK;
}
