/*
 * rows.cu - the cuda inference kernels that reduce (ops.h): softmax and layer normalization
 * with one block per row (block-wide max and sums in a fixed tree), sums over an axis, the
 * pools and inference BatchNormalization, for float32 and the half types.
 *
 * Sums run in float within a row's block (two passes for the variance, as the reference's
 * mean-then-deviations) and in double where one thread walks a whole window or axis.
 */
#include "engine/cuda/dtype.cuh"

#define ROW_THREADS 256

static inline unsigned row_blocks(int64_t rows) { return (unsigned)(rows < 65535 * 16 ? rows : 65535 * 16); }
/* Blocks for the warp-per-row kernels: ROW_THREADS / IL_CU_WARP rows a block. */
static inline unsigned warp_row_blocks(int64_t rows) {
    int64_t per = ROW_THREADS / IL_CU_WARP, b = (rows + per - 1) / per;
    return (unsigned)(b > 65535 * 16 ? 65535 * 16 : b);
}

/* Block-wide reduction of one float per thread (max when is_max, else sum); every thread gets
 * the result. */
__device__ static float block_reduce(float v, int is_max, float *sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) {
            float o = sh[threadIdx.x + s];
            sh[threadIdx.x] = is_max ? fmaxf(sh[threadIdx.x], o) : sh[threadIdx.x] + o;
        }
        __syncthreads();
    }
    float r = sh[0];
    __syncthreads();
    return r;
}

/* ---------------------------------------------------------------- softmax */

__global__ static void k_softmax(const void *x, void *y, int dt, int64_t rows, int64_t n, int64_t inner, float scale,
                                 const void *mask, int mdt, il_cu_mask m, int is_log) {
    __shared__ float sh[ROW_THREADS];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        int64_t o = r / inner, base = o * n * inner + r % inner, moff = 0;
        if (mask)
            for (int k = 0; k < m.rank; k++) moff += ((r / m.div[k]) % m.mod[k]) * m.str[k];
#define SM_VAL(j) (il_ld(x, dt, base + (j) * inner) * scale + (mask ? il_ld(mask, mdt, moff + (j) * m.col) : 0.0f))
        float mx = -INFINITY;
        int nan = 0;
        for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
            float v = SM_VAL(j);
            nan |= v != v;
            mx = fmaxf(mx, v);
        }
        /* fmaxf drops NaN; the reference's exp(NaN - max) makes the whole row NaN */
        mx = block_reduce(nan ? NAN : mx, 1, sh);
        float nanrow = block_reduce(nan ? 1.0f : 0.0f, 0, sh);
        if (nanrow > 0) mx = NAN;
        float s = 0;
        for (int64_t j = threadIdx.x; j < n; j += blockDim.x) s += expf(SM_VAL(j) - mx);
        s = block_reduce(s, 0, sh);
        float ls = logf(s);
        for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
            float v = SM_VAL(j) - mx;
            il_st(y, dt, base + j * inner, is_log ? v - ls : expf(v) / s);
        }
#undef SM_VAL
    }
}

/* Contiguous rows (inner 1) of one float type: a warp per row, reading the row three times
 * (max, sum, write; it stays in L1) with shuffle reductions. Attention's rows are short (128
 * keys for BERT), where a block of 256 threads per row left most of them idle and synchronised
 * eight times per reduction: 2.85 ms of BERT-base's 3 ms per attention at batch 256 on the H200. */
template <typename T>
__global__ static void k_softmax_warp(const T *x, T *y, int64_t rows, int64_t n, float scale, const void *mask,
                                      int mdt, il_cu_mask m, int is_log) {
    int lane = threadIdx.x % IL_CU_WARP, wpb = blockDim.x / IL_CU_WARP;
    for (int64_t r = (int64_t)blockIdx.x * wpb + threadIdx.x / IL_CU_WARP; r < rows; r += (int64_t)gridDim.x * wpb) {
        const T *xr = x + r * n;
        T *yr = y + r * n;
        int64_t moff = 0;
        if (mask)
            for (int k = 0; k < m.rank; k++) moff += ((r / m.div[k]) % m.mod[k]) * m.str[k];
#define SW_VAL(j) (il_tof(xr[j]) * scale + (mask ? il_ld(mask, mdt, moff + (j) * m.col) : 0.0f))
        float mx = -INFINITY, nan = 0;
        for (int64_t j = lane; j < n; j += IL_CU_WARP) {
            float v = SW_VAL(j);
            if (v != v) nan = 1;
            mx = fmaxf(mx, v);
        }
        mx = il_warp_max(mx); /* fmaxf drops NaN; the reference's exp(NaN - max) makes the row NaN */
        if (il_warp_max(nan) > 0) mx = NAN;
        float sum = 0;
        for (int64_t j = lane; j < n; j += IL_CU_WARP) sum += expf(SW_VAL(j) - mx);
        sum = il_warp_sum(sum);
        float ls = logf(sum);
        for (int64_t j = lane; j < n; j += IL_CU_WARP) {
            float v = SW_VAL(j) - mx;
            yr[j] = il_fromf<T>(is_log ? v - ls : expf(v) / sum);
        }
#undef SW_VAL
    }
}

extern "C" void il_cu_softmax(const void *x, void *y, il_dtype dt, int64_t outer, int64_t n, int64_t inner, float scale,
                              const void *mask, il_dtype mdt, const il_cu_mask *m, int is_log) {
    il_cu_mask none;
    memset(&none, 0, sizeof none);
    int64_t rows = outer * inner;
    if (rows > 0 && n > 0 && inner == 1 && n <= 4096 && (dt == IL_F32 || dt == IL_F16 || dt == IL_BF16)) {
        unsigned blocks = warp_row_blocks(rows);
        const il_cu_mask mm = m ? *m : none;
        if (dt == IL_F16)
            IL_CU_LAUNCH_GRID(k_softmax_warp<__half>, blocks, ROW_THREADS, (const __half *)x, (__half *)y, rows, n,
                              scale, mask, (int)mdt, mm, is_log);
        else if (dt == IL_BF16)
            IL_CU_LAUNCH_GRID(k_softmax_warp<__nv_bfloat16>, blocks, ROW_THREADS, (const __nv_bfloat16 *)x,
                              (__nv_bfloat16 *)y, rows, n, scale, mask, (int)mdt, mm, is_log);
        else
            IL_CU_LAUNCH_GRID(k_softmax_warp<float>, blocks, ROW_THREADS, (const float *)x, (float *)y, rows, n, scale,
                              mask, (int)mdt, mm, is_log);
        return;
    }
    if (rows > 0 && n > 0)
        IL_CU_LAUNCH_GRID(k_softmax, row_blocks(rows), ROW_THREADS, x, y, (int)dt, rows, n, inner, scale, mask, (int)mdt,
                          m ? *m : none, is_log);
}

/* ---------------------------------------------------------------- layer norm */

__global__ static void k_layernorm(const void *x, void *y, int dt, il_cu_norm g, const void *scale, const void *bias,
                                   int pdt, void *mean, void *inv_std) {
    __shared__ float sh[ROW_THREADS];
    int64_t n = g.n;
    for (int64_t r = blockIdx.x; r < g.rows; r += gridDim.x) {
        int64_t base = r * n, kr = (r % g.pg) * g.pmul;
        float s = 0;
        for (int64_t j = threadIdx.x; j < n; j += blockDim.x) s += il_ld(x, dt, base + j);
        float mu = block_reduce(s, 0, sh) / (float)n, q = 0;
        for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
            float d = il_ld(x, dt, base + j) - mu;
            q += d * d;
        }
        float inv = 1.0f / sqrtf(block_reduce(q, 0, sh) / (float)n + g.eps);
        for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
            int64_t jj = g.pdiv == 1 ? j : j / g.pdiv;
            float v = (il_ld(x, dt, base + j) - mu) * inv * il_ld(scale, pdt, kr + jj * g.pjs);
            if (bias) v += il_ld(bias, pdt, kr + jj * g.pjb);
            il_st(y, dt, base + j, v);
        }
        if (threadIdx.x == 0) {
            if (mean) il_st(mean, dt, r, mu);
            if (inv_std) il_st(inv_std, dt, r, inv);
        }
    }
}

/* LayerNormalization's usual case (no mean or inv_std output, one scale vector, rows of one
 * float type): a warp per row, two passes for the variance as the reference, shuffle sums. */
template <typename T>
__global__ static void k_layernorm_warp(const T *x, T *y, il_cu_norm g, const void *scale, const void *bias, int pdt) {
    int lane = threadIdx.x % IL_CU_WARP, wpb = blockDim.x / IL_CU_WARP;
    int64_t n = g.n;
    for (int64_t r = (int64_t)blockIdx.x * wpb + threadIdx.x / IL_CU_WARP; r < g.rows; r += (int64_t)gridDim.x * wpb) {
        const T *xr = x + r * n;
        T *yr = y + r * n;
        float s = 0, q = 0;
        for (int64_t j = lane; j < n; j += IL_CU_WARP) s += il_tof(xr[j]);
        float mu = il_warp_sum(s) / (float)n;
        for (int64_t j = lane; j < n; j += IL_CU_WARP) {
            float d = il_tof(xr[j]) - mu;
            q += d * d;
        }
        float inv = 1.0f / sqrtf(il_warp_sum(q) / (float)n + g.eps);
        for (int64_t j = lane; j < n; j += IL_CU_WARP) {
            float v = (il_tof(xr[j]) - mu) * inv * il_ld(scale, pdt, j * g.pjs);
            if (bias) v += il_ld(bias, pdt, j * g.pjb);
            yr[j] = il_fromf<T>(v);
        }
    }
}

extern "C" void il_cu_layernorm(const void *x, void *y, il_dtype dt, const il_cu_norm *g, const void *scale,
                                const void *bias, il_dtype pdt, void *mean, void *inv_std) {
    if (g->rows > 0 && g->n > 0 && !mean && !inv_std && g->pg == 1 && g->pdiv == 1 && g->n <= 16384 &&
        (dt == IL_F32 || dt == IL_F16 || dt == IL_BF16)) {
        unsigned blocks = warp_row_blocks(g->rows);
        if (dt == IL_F16)
            IL_CU_LAUNCH_GRID(k_layernorm_warp<__half>, blocks, ROW_THREADS, (const __half *)x, (__half *)y, *g, scale,
                              bias, (int)pdt);
        else if (dt == IL_BF16)
            IL_CU_LAUNCH_GRID(k_layernorm_warp<__nv_bfloat16>, blocks, ROW_THREADS, (const __nv_bfloat16 *)x,
                              (__nv_bfloat16 *)y, *g, scale, bias, (int)pdt);
        else
            IL_CU_LAUNCH_GRID(k_layernorm_warp<float>, blocks, ROW_THREADS, (const float *)x, (float *)y, *g, scale, bias,
                              (int)pdt);
        return;
    }
    if (g->rows > 0 && g->n > 0)
        IL_CU_LAUNCH_GRID(k_layernorm, row_blocks(g->rows), ROW_THREADS, x, y, (int)dt, *g, scale, bias, (int)pdt, mean,
                          inv_std);
}

/* ---------------------------------------------------------------- sums over an axis */

__global__ static void k_reduce(const void *x, void *y, int dt, int64_t n, int64_t inner, int k, int64_t total) {
    IL_CU_LOOP(i, total) {
        int64_t base = (i / inner) * n * inner + i % inner;
        double acc = k == IL_CU_RPROD ? 1 : k == IL_CU_RMAX ? -INFINITY : k == IL_CU_RMIN ? INFINITY : 0, m = 0;
        if (k == IL_CU_RLOGSUMEXP) { /* the maximum first, so exp cannot overflow */
            m = -INFINITY;
            for (int64_t j = 0; j < n; j++) {
                double v = il_ld(x, dt, base + j * inner);
                if (v > m || v != v) m = v;
            }
        }
        for (int64_t j = 0; j < n && !(k == IL_CU_RLOGSUMEXP && (isinf(m) || m != m)); j++) {
            double v = il_ld(x, dt, base + j * inner);
            switch (k) {
            case IL_CU_RMAX: if (v > acc || v != v) acc = v; break; /* NaN sticks, as the reference's */
            case IL_CU_RMIN: if (v < acc || v != v) acc = v; break;
            case IL_CU_RPROD: acc *= v; break;
            case IL_CU_RL1: acc += fabs(v); break;
            case IL_CU_RL2: case IL_CU_RSUMSQ: acc += v * v; break;
            case IL_CU_RLOGSUMEXP: acc += exp(v - m); break;
            default: acc += v; break;
            }
        }
        double r = k == IL_CU_RMEAN ? acc / (double)n : k == IL_CU_RL2 ? sqrt(acc) : k == IL_CU_RLOGSUM ? log(acc)
                   : k == IL_CU_RLOGSUMEXP ? (isinf(m) || m != m ? m : m + log(acc)) : acc;
        il_st(y, dt, i, (float)r);
    }
}

extern "C" void il_cu_reduce(const void *x, void *y, il_dtype dt, int64_t outer, int64_t n, int64_t inner,
                             il_cu_red kind) {
    IL_CU_LAUNCH(k_reduce, outer * inner, x, y, (int)dt, n, inner, (int)kind, outer * inner);
}

/* d > 0 when element a beats b: reduce.c's cmp_at, NaN counting as the largest for ArgMax and
 * the smallest for ArgMin (so it wins both). */
__device__ static int arg_cmp(float a, float b, int is_max) {
    int d;
    if (a != a || b != b) d = (a != a && b != b) ? 0 : (a != a ? 1 : -1) * (is_max ? 1 : -1);
    else d = a < b ? -1 : a > b ? 1 : 0;
    return is_max ? d : -d;
}

__global__ static void k_arg(const void *x, long long *y, int dt, int64_t n, int64_t inner, int is_max, int last,
                             int64_t total) {
    IL_CU_LOOP(i, total) {
        int64_t base = (i / inner) * n * inner + i % inner, best = 0;
        for (int64_t j = 1; j < n; j++) {
            int d = arg_cmp(il_ld(x, dt, base + j * inner), il_ld(x, dt, base + best * inner), is_max);
            if (d > 0 || (d == 0 && last)) best = j;
        }
        y[i] = best;
    }
}

extern "C" void il_cu_arg(const void *x, void *y, il_dtype dt, int64_t outer, int64_t n, int64_t inner, int is_max,
                          int last) {
    IL_CU_LAUNCH(k_arg, outer * inner, x, (long long *)y, (int)dt, n, inner, is_max, last, outer * inner);
}

/* ---------------------------------------------------------------- pools */

/* The first maximum in (kh, kw) order wins, as the reference picks it. */
__global__ static void k_maxpool(const void *x, void *y, int dt, il_cu_pool g, int64_t total) {
    int64_t S = g.oh * g.ow;
    IL_CU_LOOP(i, total) {
        int64_t p = i / S, o = i % S, oh = o / g.ow, ow = o % g.ow, xp = p * g.h * g.w;
        float best = -INFINITY;
        int any = 0;
        for (int64_t kh = 0; kh < g.kh; kh++) {
            int64_t ih = oh * g.sh + kh * g.dh - g.ph;
            if (ih < 0 || ih >= g.h) continue;
            for (int64_t kw = 0; kw < g.kw; kw++) {
                int64_t iw = ow * g.sw + kw * g.dw - g.pw;
                if (iw < 0 || iw >= g.w) continue;
                float v = il_ld(x, dt, xp + ih * g.w + iw);
                if (!any || v > best) best = v, any = 1;
            }
        }
        il_st(y, dt, i, best);
    }
}

/* Taps inside the input are summed; the divisor counts them, or with count_include_pad the taps
 * inside the padded input (not the part of a ceil_mode window past the end pad). */
__global__ static void k_avgpool(const void *x, void *y, int dt, il_cu_pool g, int include_pad, int64_t total) {
    int64_t S = g.oh * g.ow;
    IL_CU_LOOP(i, total) {
        int64_t p = i / S, o = i % S, oh = o / g.ow, ow = o % g.ow, xp = p * g.h * g.w, taps_in = 0, taps_pad = 0;
        double s = 0;
        for (int64_t kh = 0; kh < g.kh; kh++) {
            int64_t ih = oh * g.sh + kh * g.dh - g.ph;
            for (int64_t kw = 0; kw < g.kw; kw++) {
                int64_t iw = ow * g.sw + kw * g.dw - g.pw;
                taps_pad += ih < g.h + g.ph_end && iw < g.w + g.pw_end;
                if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) continue;
                taps_in++;
                s += il_ld(x, dt, xp + ih * g.w + iw);
            }
        }
        il_st(y, dt, i, (float)(s / (double)(include_pad ? taps_pad : taps_in)));
    }
}

extern "C" void il_cu_maxpool(const void *x, void *y, il_dtype dt, int64_t planes, const il_cu_pool *g) {
    IL_CU_LAUNCH(k_maxpool, planes * g->oh * g->ow, x, y, (int)dt, *g, planes * g->oh * g->ow);
}

extern "C" void il_cu_avgpool(const void *x, void *y, il_dtype dt, int64_t planes, const il_cu_pool *g,
                              int count_include_pad) {
    IL_CU_LAUNCH(k_avgpool, planes * g->oh * g->ow, x, y, (int)dt, *g, count_include_pad, planes * g->oh * g->ow);
}

extern "C" void il_cu_gap(const void *x, void *y, il_dtype dt, int64_t planes, int64_t S) {
    il_cu_reduce(x, y, dt, planes, S, 1, IL_CU_RMEAN);
}

__global__ static void k_bn(const void *x, void *y, int dt, int64_t C, int64_t S, const void *gamma, const void *beta,
                            const void *mean, const void *var, int pdt, float eps, int64_t total) {
    IL_CU_LOOP(i, total) {
        int64_t c = (i / S) % C;
        float v = (il_ld(x, dt, i) - il_ld(mean, pdt, c)) / sqrtf(il_ld(var, pdt, c) + eps);
        il_st(y, dt, i, v * il_ld(gamma, pdt, c) + il_ld(beta, pdt, c));
    }
}

extern "C" void il_cu_bn(const void *x, void *y, il_dtype dt, int64_t N, int64_t C, int64_t S, const void *gamma,
                         const void *beta, const void *mean, const void *var, il_dtype pdt, float eps) {
    IL_CU_LAUNCH(k_bn, N * C * S, x, y, (int)dt, C, S, gamma, beta, mean, var, (int)pdt, eps, N * C * S);
}
