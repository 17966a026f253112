/*
 * eltwise.cu - elementwise maps with broadcasting, strided copies and Gather for the cuda
 * inference backend (ops.h). One thread per output element (grid-stride), its input offsets
 * from its multi-index; the formulas are the reference kernels' (engine/ops/unary.c, binary.c,
 * fused.h) in float, Pow in double as the reference computes it.
 */
#include "engine/cuda/dtype.cuh"

/* Unary formulas (op, parameters a, b). */
__device__ static inline float unary(int op, float x, float a, float b) {
    switch (op) {
    case IL_CU_IDENT: return x;
    case IL_CU_TOBOOL: return x != 0.0f ? 1.0f : 0.0f;
    case IL_CU_RELU: return x < 0 ? 0.0f : x; /* NaN stays NaN, as in the reference */
    case IL_CU_CLIP: return x < a ? a : x > b ? b : x;
    case IL_CU_LEAKY: return x < 0 ? a * x : x;
    case IL_CU_SIGMOID: {
        float e = expf(-fabsf(x));
        return x >= 0 ? 1 / (1 + e) : e / (1 + e);
    }
    case IL_CU_HSWISH: {
        float h = x / 6.0f + 0.5f;
        return x * (h < 0 ? 0 : h > 1 ? 1 : h);
    }
    case IL_CU_HSIGMOID: {
        float h = a * x + b;
        return h < 0 ? 0 : h > 1 ? 1 : h;
    }
    /* erfc keeps the small values of the negative side that 1 + erf would cancel to 0 */
    case IL_CU_GELU: return 0.5f * x * erfcf(-x * 0.70710678118654752f);
    case IL_CU_GELU_TANH: return 0.5f * x * (1.0f + tanhf(0.79788456080286535588f * (x + 0.044715f * x * x * x)));
    case IL_CU_TANH: return tanhf(x);
    case IL_CU_SILU: return x / (1.0f + expf(-x));
    case IL_CU_SQRT: return sqrtf(x);
    case IL_CU_ERF: return erff(x);
    case IL_CU_EXP: return expf(x);
    case IL_CU_LOG: return logf(x);
    case IL_CU_NEG: return -x;
    case IL_CU_ABS: return fabsf(x);
    case IL_CU_RECIP: return 1.0f / x;
    case IL_CU_NOT: return x != 0.0f ? 0.0f : 1.0f;
    case IL_CU_FLOOR: return floorf(x);
    case IL_CU_CEIL: return ceilf(x);
    case IL_CU_ROUND: return rintf(x); /* half to even */
    case IL_CU_SIN: return sinf(x);
    case IL_CU_COS: return cosf(x);
    case IL_CU_SOFTPLUS: return (x > 0 ? x : 0.0f) + log1pf(expf(-fabsf(x)));
    case IL_CU_SOFTSIGN: return x / (1.0f + fabsf(x));
    case IL_CU_ELU: return x < 0 ? a * expm1f(x) : x;
    case IL_CU_SELU: return x > 0 ? b * x : b * a * expm1f(x);
    case IL_CU_CELU: return x > 0 ? x : a * expm1f(x / a);
    case IL_CU_THRELU: return x > a ? x : 0.0f;
    case IL_CU_MISH: return x * tanhf((x > 0 ? x : 0.0f) + log1pf(expf(-fabsf(x))));
    case IL_CU_SIGN: return x > 0 ? 1.0f : x < 0 ? -1.0f : x;
    }
    return x;
}

__device__ static inline float binary(int op, float x, float y) {
    switch (op) {
    case IL_CU_ADD: return x + y;
    case IL_CU_SUB: return x - y;
    case IL_CU_MUL: return x * y;
    case IL_CU_DIV: return x / y;
    case IL_CU_POW: return (float)pow((double)x, (double)y);
    case IL_CU_MAX: return (x > y || x != x) ? x : y; /* NaN propagates, as the reference's */
    case IL_CU_MIN: return (x < y || x != x) ? x : y;
    case IL_CU_PRELU: return x < 0 ? x * y : x;
    case IL_CU_EQ: return x == y;
    case IL_CU_LT: return x < y;
    case IL_CU_LE: return x <= y;
    case IL_CU_GT: return x > y;
    case IL_CU_GE: return x >= y;
    case IL_CU_AND: return (x != 0) && (y != 0);
    case IL_CU_OR: return (x != 0) || (y != 0);
    case IL_CU_XOR: return (x != 0) != (y != 0);
    }
    return x;
}

struct map_args {
    const void *in[IL_CU_MAX_IN];
    int idt[IL_CU_MAX_IN];
    void *out;
    int odt, op;
    float a, b;
};

__device__ static inline void copy_elem(const void *src, int64_t si, void *dst, int64_t di, int esize) {
    switch (esize) {
    case 1: ((unsigned char *)dst)[di] = ((const unsigned char *)src)[si]; break;
    case 2: ((unsigned short *)dst)[di] = ((const unsigned short *)src)[si]; break;
    case 4: ((unsigned int *)dst)[di] = ((const unsigned int *)src)[si]; break;
    default: ((unsigned long long *)dst)[di] = ((const unsigned long long *)src)[si]; break;
    }
}

__device__ static inline void zero_elem(void *dst, int64_t di, int esize) {
    switch (esize) {
    case 1: ((unsigned char *)dst)[di] = 0; break;
    case 2: ((unsigned short *)dst)[di] = 0; break;
    case 4: ((unsigned int *)dst)[di] = 0; break;
    default: ((unsigned long long *)dst)[di] = 0; break;
    }
}

static inline int esize_of(int dt) {
    return dt == IL_F16 || dt == IL_BF16 || dt == IL_I16 || dt == IL_U16 ? 2
           : dt == IL_BOOL || dt == IL_U8 || dt == IL_I8             ? 1
           : dt == IL_I64 || dt == IL_U64 || dt == IL_F64            ? 8
                                                                     : 4;
}

/* small: every index fits 32 bits, so the broadcast index arithmetic divides in 32 bits (a 64-bit
 * division is a long software sequence on the GPU, and a broadcast Add of a bias does two per
 * element: measured the larger part of BERT-base's non-matmul time at batch 256) */
__global__ static void k_map(map_args a, il_cu_geom g, int64_t n, int esize, int small) {
    IL_CU_LOOP(i, n) {
        int64_t off[IL_CU_MAX_IN] = {0, 0, 0}, r = i;
        if (g.rank == 1) /* same shapes, or one operand repeated */
            for (int k = 0; k < g.n_in; k++) off[k] = i * g.str[k][0];
        else if (small) {
            unsigned r32 = (unsigned)i;
            for (int d = g.rank - 1; d >= 0; d--) {
                unsigned dd = (unsigned)g.dims[d], idx = r32 % dd;
                r32 /= dd;
                for (int k = 0; k < g.n_in; k++) off[k] += (int64_t)idx * g.str[k][d];
            }
        } else
            for (int d = g.rank - 1; d >= 0; d--) {
                int64_t idx = r % g.dims[d];
                r /= g.dims[d];
                for (int k = 0; k < g.n_in; k++) off[k] += idx * g.str[k][d];
            }
        if (a.op == IL_CU_WHERE) {
            int c = ((const unsigned char *)a.in[0])[off[0]] != 0;
            copy_elem(c ? a.in[1] : a.in[2], c ? off[1] : off[2], a.out, i, esize);
            continue;
        }
        float v = il_ld(a.in[0], a.idt[0], off[0]);
        if (g.n_in == 1) { /* a variadic op of one input is that input */
            if (a.op != IL_CU_SUM && a.op != IL_CU_MEAN && a.op != IL_CU_MAX && a.op != IL_CU_MIN)
                v = unary(a.op, v, a.a, a.b);
        } else {
            int op = a.op == IL_CU_SUM || a.op == IL_CU_MEAN ? IL_CU_ADD : a.op;
            for (int k = 1; k < g.n_in; k++) v = binary(op, v, il_ld(a.in[k], a.idt[k], off[k]));
            if (a.op == IL_CU_MEAN) v = v / (float)g.n_in;
        }
        if (a.odt == IL_BOOL) ((unsigned char *)a.out)[i] = v != 0.0f;
        else il_st(a.out, a.odt, i, v);
    }
}

/* ---------------------------------------------------------------- typed fast paths */

/* The common maps with one float storage type throughout (a residual Add, a bias Add the fusion
 * passes left, a Relu or Erf of a half tensor): the type a template parameter and the
 * geometry walked by unrolled loops over fixed indices, so no per-element switch on the dtype
 * and no per-thread local copy of the dims and strides. Measured on the H200: the generic k_map
 * took 0.57 ms for a [256,128,768] half Add, a fifth of the memory's rate. */
template <typename T>
__global__ static void k_map_t(const T *x0, const T *x1, T *y, int op, float pa, float pb, il_cu_geom g, int64_t n) {
    IL_CU_LOOP(i, n) {
        int64_t o0, o1;
        if (g.rank == 1) {
            o0 = i * g.str[0][0], o1 = i * g.str[1][0];
        } else {
            unsigned r = (unsigned)i;
            o0 = 0, o1 = 0;
#pragma unroll
            for (int d = IL_MAX_RANK - 1; d >= 0; d--)
                if (d < g.rank) {
                    unsigned dd = (unsigned)g.dims[d], idx = r % dd;
                    r /= dd;
                    o0 += (int64_t)idx * g.str[0][d];
                    o1 += (int64_t)idx * g.str[1][d];
                }
        }
        float v = il_tof(x0[o0]);
        y[i] = il_fromf<T>(x1 ? binary(op, v, il_tof(x1[o1])) : unary(op, v, pa, pb));
    }
}

static int float_type(il_dtype dt) { return dt == IL_F32 || dt == IL_F16 || dt == IL_BF16; }

static int map_fast(il_cu_op op, float pa, float pb, const il_cu_geom *g, const void *const *in, const il_dtype *idt,
                    void *out, il_dtype odt, int64_t n) {
    int un = g->n_in == 1 && (op == IL_CU_IDENT || (op >= IL_CU_RELU && op <= IL_CU_SIGN));
    int bin = g->n_in == 2 && op >= IL_CU_ADD && op <= IL_CU_PRELU && idt[1] == odt;
    if (!(un || bin) || !float_type(odt) || idt[0] != odt || n >= ((int64_t)1 << 31)) return 0;
    const void *x1 = bin ? in[1] : NULL;
    unsigned blocks = il_cu_blocks_capped(n);
    if (odt == IL_F16)
        IL_CU_LAUNCH_GRID(k_map_t<__half>, blocks, IL_CU_THREADS, (const __half *)in[0], (const __half *)x1,
                          (__half *)out, (int)op, pa, pb, *g, n);
    else if (odt == IL_BF16)
        IL_CU_LAUNCH_GRID(k_map_t<__nv_bfloat16>, blocks, IL_CU_THREADS, (const __nv_bfloat16 *)in[0],
                          (const __nv_bfloat16 *)x1, (__nv_bfloat16 *)out, (int)op, pa, pb, *g, n);
    else
        IL_CU_LAUNCH_GRID(k_map_t<float>, blocks, IL_CU_THREADS, (const float *)in[0], (const float *)x1, (float *)out,
                          (int)op, pa, pb, *g, n);
    return 1;
}

extern "C" void il_cu_map(il_cu_op op, float pa, float pb, const il_cu_geom *g, const void *const *in,
                          const il_dtype *idt, void *out, il_dtype odt) {
    map_args a;
    int64_t n = 1;
    for (int d = 0; d < g->rank; d++) n *= g->dims[d];
    if (n > 0 && map_fast(op, pa, pb, g, in, idt, out, odt, n)) return;
    for (int k = 0; k < IL_CU_MAX_IN; k++) {
        a.in[k] = k < g->n_in ? in[k] : NULL;
        a.idt[k] = k < g->n_in ? (int)idt[k] : 0;
    }
    a.out = out, a.odt = (int)odt, a.op = (int)op, a.a = pa, a.b = pb;
    IL_CU_LAUNCH(k_map, n, a, *g, n, esize_of(odt), n < ((int64_t)1 << 31));
}

/* Numpy broadcasting strides, then dims of size 1 dropped and neighbours merged where every
 * input steps through them alike (same shapes become one dim: no division per element). */
extern "C" void il_cu_geom_of(const il_tensor *out, const il_tensor *const *in, int n_in, il_cu_geom *g) {
    int64_t str[IL_CU_MAX_IN][IL_MAX_RANK];
    memset(g, 0, sizeof *g);
    g->n_in = n_in;
    for (int k = 0; k < n_in; k++) { /* aligned at the end, size-1 dims repeat */
        int64_t s = 1;
        for (int d = out->rank - 1; d >= 0; d--) {
            int t = d - (out->rank - in[k]->rank);
            int64_t dim = t >= 0 ? in[k]->dims[t] : 1;
            str[k][d] = dim == 1 ? 0 : s;
            s *= dim;
        }
    }
    for (int d = 0; d < out->rank; d++) {
        int64_t n = out->dims[d];
        if (n == 1) continue;
        int r = g->rank - 1, merge = r >= 0;
        for (int k = 0; k < n_in && merge; k++) merge = g->str[k][r] == str[k][d] * n;
        if (merge) g->dims[r] *= n;
        else r = g->rank++, g->dims[r] = n;
        for (int k = 0; k < n_in; k++) g->str[k][r] = str[k][d];
    }
    if (g->rank == 0) g->rank = 1, g->dims[0] = 1; /* one element; strides 0 */
}

/* ---------------------------------------------------------------- strided copies, Gather */

__global__ static void k_strided_copy(const void *src, void *dst, il_cu_copy g, int esize, int64_t n) {
    IL_CU_LOOP(i, n) {
        int64_t so = g.soff, dof = g.doff, r = i;
        for (int d = g.rank - 1; d >= 0; d--) {
            int64_t idx = r % g.dims[d];
            r /= g.dims[d];
            so += idx * g.sstr[d];
            dof += idx * g.dstr[d];
        }
        copy_elem(src, so, dst, dof, esize);
    }
}

/* Transpose, Concat, Slice of 2- and 4-byte elements below 2^31 of them: 32-bit index
 * arithmetic over unrolled dims (a Transpose of BERT-base's [256,128,12,64] heads took 0.25 ms
 * in k_strided_copy, a tenth of the memory's rate). */
template <typename T>
__global__ static void k_strided_copy_t(const T *src, T *dst, il_cu_copy g, int64_t n) {
    IL_CU_LOOP(i, n) {
        unsigned r = (unsigned)i;
        int64_t so = g.soff, dof = g.doff;
#pragma unroll
        for (int d = IL_MAX_RANK - 1; d >= 0; d--)
            if (d < g.rank) {
                unsigned dd = (unsigned)g.dims[d], idx = r % dd;
                r /= dd;
                so += (int64_t)idx * g.sstr[d];
                dof += (int64_t)idx * g.dstr[d];
            }
        dst[dof] = src[so];
    }
}

extern "C" void il_cu_strided_copy(const void *src, void *dst, const il_cu_copy *g, int esize) {
    int64_t n = 1;
    for (int d = 0; d < g->rank; d++) n *= g->dims[d];
    if (n > 0 && n < ((int64_t)1 << 31) && (esize == 2 || esize == 4)) {
        if (esize == 2)
            IL_CU_LAUNCH_GRID(k_strided_copy_t<unsigned short>, il_cu_blocks_capped(n), IL_CU_THREADS,
                              (const unsigned short *)src, (unsigned short *)dst, *g, n);
        else
            IL_CU_LAUNCH_GRID(k_strided_copy_t<unsigned>, il_cu_blocks_capped(n), IL_CU_THREADS, (const unsigned *)src,
                              (unsigned *)dst, *g, n);
        return;
    }
    IL_CU_LAUNCH(k_strided_copy, n, src, dst, *g, esize, n);
}

__global__ static void k_gather(const void *data, int esize, int64_t axis_len, int64_t inner, const void *ids,
                                int i64, int64_t nidx, void *out, int64_t n) {
    IL_CU_LOOP(i, n) {
        int64_t in = i % inner, j = (i / inner) % nidx, o = i / (inner * nidx);
        int64_t id = i64 ? ((const long long *)ids)[j] : ((const int *)ids)[j];
        if (id < 0) id += axis_len;
        if (id < 0 || id >= axis_len) {
            zero_elem(out, i, esize);
            continue;
        }
        copy_elem(data, (o * axis_len + id) * inner + in, out, i, esize);
    }
}

extern "C" void il_cu_gather(const void *data, int esize, int64_t outer, int64_t axis_len, int64_t inner,
                             const void *ids, il_dtype idt, int64_t nidx, void *out) {
    int64_t n = outer * nidx * inner;
    IL_CU_LAUNCH(k_gather, n, data, esize, axis_len, inner, ids, idt == IL_I64, nidx, out, n);
}

__global__ static void k_gather_nd(const void *data, int esize, const void *ids, int i64, il_cu_gnd g, void *out,
                                   int64_t n) {
    IL_CU_LOOP(i, n) {
        int64_t t = i / g.slice, e = i % g.slice, off = (t / g.per) * g.bstride + e;
        int bad = 0;
        for (int k = 0; k < g.m; k++) {
            int64_t id = i64 ? ((const long long *)ids)[t * g.m + k] : ((const int *)ids)[t * g.m + k];
            if (id < 0) id += g.dims[k];
            bad |= id < 0 || id >= g.dims[k];
            off += id * g.str[k];
        }
        if (bad) zero_elem(out, i, esize);
        else copy_elem(data, off, out, i, esize);
    }
}

extern "C" void il_cu_gather_nd(const void *data, int esize, const void *ids, il_dtype idt, const il_cu_gnd *g,
                                void *out) {
    int64_t n = g->tuples * g->slice;
    IL_CU_LAUNCH(k_gather_nd, n, data, esize, ids, idt == IL_I64, *g, out, n);
}

/* pad.c's pad_src on the device (IL_PAD_* modes: 0 constant, 1 edge, 2 reflect, 3 wrap). */
__device__ static int64_t pad_src(int mode, int64_t o, int64_t d, int64_t b, int64_t e) {
    int64_t lo = b < 0 ? -b : 0, m = d - lo - (e < 0 ? -e : 0);
    int64_t j = o - (b > 0 ? b : 0);
    if (j >= 0 && j < m) return lo + j;
    if (mode == 0 || m <= 0) return -1;
    if (mode == 1) {
        j = j < 0 ? 0 : m - 1;
    } else if (mode == 3) {
        j = ((j % m) + m) % m;
    } else if (m == 1) {
        j = 0;
    } else {
        int64_t period = 2 * (m - 1);
        j = ((j % period) + period) % period;
        if (j >= m) j = period - j;
    }
    return lo + j;
}

__global__ static void k_pad(const void *x, void *y, int esize, int dt, float value, il_cu_pad_geom g, int64_t n) {
    IL_CU_LOOP(i, n) {
        int64_t pos = i, src = 0, stride = 1;
        int outside = 0;
        for (int a = g.rank - 1; a >= 0; a--) {
            int64_t j = pad_src(g.mode, pos % g.yd[a], g.xd[a], g.b[a], g.e[a]);
            pos /= g.yd[a];
            outside |= j < 0;
            src += j * stride;
            stride *= g.xd[a];
        }
        if (!outside) copy_elem(x, src, y, i, esize);
        else if (dt) il_st(y, dt, i, value);
        else zero_elem(y, i, esize);
    }
}

extern "C" void il_cu_pad(const void *x, void *y, int esize, il_dtype dt, float value, const il_cu_pad_geom *g) {
    int64_t n = 1;
    for (int a = 0; a < g->rank; a++) n *= g->yd[a];
    IL_CU_LAUNCH(k_pad, n, x, y, esize, (int)dt, value, *g, n);
}

/* Every combination of the axes' taps, the last axis fastest (an odometer over k[]). */
__global__ static void k_resize(const void *x, void *y, int dt, il_cu_resize g, int64_t total) {
    IL_CU_LOOP(i, total) {
        int64_t yc[IL_MAX_RANK], k[IL_MAX_RANK], r = i;
        int outside = 0;
        for (int a = g.rank - 1; a >= 0; a--) {
            yc[a] = r % g.yd[a];
            r /= g.yd[a];
            k[a] = 0;
            outside |= g.outside[a][yc[a]] != 0;
        }
        if (outside) {
            il_st(y, dt, i, g.extrapolation);
            continue;
        }
        float sum = 0;
        for (;;) {
            float w = 1;
            int64_t at = 0;
            for (int a = 0; a < g.rank; a++) {
                int64_t t = yc[a] * g.n[a] + k[a];
                w *= g.w[a][t];
                at += g.idx[a][t] * g.xs[a];
            }
            sum += w * il_ld(x, dt, at);
            int a = g.rank - 1;
            while (a >= 0 && ++k[a] == g.n[a]) k[a--] = 0;
            if (a < 0) break;
        }
        il_st(y, dt, i, sum);
    }
}

extern "C" void il_cu_resize_run(const void *x, void *y, il_dtype dt, const il_cu_resize *g) {
    int64_t n = 1;
    for (int a = 0; a < g->rank; a++) n *= g->yd[a];
    IL_CU_LAUNCH(k_resize, n, x, y, (int)dt, *g, n);
}

/* ---------------------------------------------------------------- product epilogues */

__global__ static void k_bias_act(void *y, int dt, int64_t n, const void *bias, int op, float a, float b,
                                  int64_t total) {
    int small = total < ((int64_t)1 << 31);
    IL_CU_LOOP(i, total) {
        float v = il_ld(y, dt, i);
        if (bias) v += il_ld(bias, dt, small ? (int64_t)((unsigned)i % (unsigned)n) : i % n);
        il_st(y, dt, i, unary(op, v, a, b));
    }
}

template <typename T>
__global__ static void k_bias_act_t(T *y, unsigned n, const T *bias, int op, float a, float b, int64_t total) {
    IL_CU_LOOP(i, total) {
        float v = il_tof(y[i]);
        if (bias) v += il_tof(bias[(unsigned)i % n]);
        y[i] = il_fromf<T>(unary(op, v, a, b));
    }
}

extern "C" void il_cu_bias_act(void *y, il_dtype dt, int64_t rows, int64_t n, const void *bias, il_cu_op act, float a,
                               float b) {
    if (!bias && act == IL_CU_IDENT) return;
    int64_t total = rows * n;
    if (total > 0 && total < ((int64_t)1 << 31) && float_type(dt)) { /* the products' epilogue, typed */
        unsigned blocks = il_cu_blocks_capped(total);
        if (dt == IL_F16)
            IL_CU_LAUNCH_GRID(k_bias_act_t<__half>, blocks, IL_CU_THREADS, (__half *)y, (unsigned)n,
                              (const __half *)bias, (int)act, a, b, total);
        else if (dt == IL_BF16)
            IL_CU_LAUNCH_GRID(k_bias_act_t<__nv_bfloat16>, blocks, IL_CU_THREADS, (__nv_bfloat16 *)y, (unsigned)n,
                              (const __nv_bfloat16 *)bias, (int)act, a, b, total);
        else
            IL_CU_LAUNCH_GRID(k_bias_act_t<float>, blocks, IL_CU_THREADS, (float *)y, (unsigned)n, (const float *)bias,
                              (int)act, a, b, total);
        return;
    }
    IL_CU_LAUNCH(k_bias_act, rows * n, y, (int)dt, n, bias, (int)act, a, b, rows * n);
}

__global__ static void k_fill_c(void *y, int dt, int64_t n, const void *c, int64_t cs0, int64_t cs1, float beta,
                                int64_t total) {
    IL_CU_LOOP(i, total) il_st(y, dt, i, beta * il_ld(c, dt, (i / n) * cs0 + (i % n) * cs1));
}

extern "C" void il_cu_fill_c(void *y, il_dtype dt, int64_t rows, int64_t n, const void *c, int64_t cs0, int64_t cs1,
                             float beta) {
    IL_CU_LAUNCH(k_fill_c, rows * n, y, (int)dt, n, c, cs0, cs1, beta, rows * n);
}
