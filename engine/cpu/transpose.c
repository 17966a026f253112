/*
 * transpose.c - the fast Transpose kernel (engine/ops/shape.c holds its shape inference and the
 * reference, which the tests compare this against on every permutation of a few shapes).
 *
 * Axes that stay neighbours are merged first, and size-1 axes dropped. Then either the input's
 * last axis stays last, and the output is contiguous runs of it, one memcpy each; or the
 * output's last axis and the axis that was the input's last are transposed in 32x32 tiles, so
 * both the reads and the writes of a tile stay in cache. Threads split the runs or the tiles.
 * Elements move as 1-, 2-, 4- or 8-byte words, so any dtype goes through unconverted; 4-byte
 * tiles go through AVX registers 8x8 at a time where the CPU has AVX (the key transpose of a
 * transformer's attention, [B, S, H, D] -> [B, H, D, S], was 16 us a layer of ViT-tiny's 35 us
 * of transposes, element by element).
 */
#include "../ops/kernel.h"

#include <immintrin.h>
#include <strings.h>

/* Copy a tile of a 2-D transpose: out[i*os + j] = in[i + j*is] for i < ni, j < nj. */
#define TILE_COPY(T)                                                                 \
    for (int64_t i = 0; i < ni; i++)                                                 \
        for (int64_t j = 0; j < nj; j++) ((T *)dst)[i * os + j] = ((const T *)src)[i + j * is];

/* The same for 4-byte words: whole 8x8 blocks transposed in AVX registers, the edges as above. */
__attribute__((target("avx"))) static void copy_tile_avx(float *dst, const float *src, int64_t ni, int64_t nj,
                                                         int64_t os, int64_t is) {
    int64_t i8 = ni & ~(int64_t)7, j8 = nj & ~(int64_t)7;
    for (int64_t j = 0; j < j8; j += 8)
        for (int64_t i = 0; i < i8; i += 8) {
            const float *s = src + i + j * is;
            __m256 r0 = _mm256_loadu_ps(s), r1 = _mm256_loadu_ps(s + is), r2 = _mm256_loadu_ps(s + 2 * is),
                   r3 = _mm256_loadu_ps(s + 3 * is), r4 = _mm256_loadu_ps(s + 4 * is), r5 = _mm256_loadu_ps(s + 5 * is),
                   r6 = _mm256_loadu_ps(s + 6 * is), r7 = _mm256_loadu_ps(s + 7 * is);
            __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1), t2 = _mm256_unpacklo_ps(r2, r3),
                   t3 = _mm256_unpackhi_ps(r2, r3), t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5),
                   t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
            __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE),
                   u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE),
                   u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE),
                   u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
            float *d = dst + i * os + j;
            _mm256_storeu_ps(d, _mm256_permute2f128_ps(u0, u4, 0x20));
            _mm256_storeu_ps(d + os, _mm256_permute2f128_ps(u1, u5, 0x20));
            _mm256_storeu_ps(d + 2 * os, _mm256_permute2f128_ps(u2, u6, 0x20));
            _mm256_storeu_ps(d + 3 * os, _mm256_permute2f128_ps(u3, u7, 0x20));
            _mm256_storeu_ps(d + 4 * os, _mm256_permute2f128_ps(u0, u4, 0x31));
            _mm256_storeu_ps(d + 5 * os, _mm256_permute2f128_ps(u1, u5, 0x31));
            _mm256_storeu_ps(d + 6 * os, _mm256_permute2f128_ps(u2, u6, 0x31));
            _mm256_storeu_ps(d + 7 * os, _mm256_permute2f128_ps(u3, u7, 0x31));
        }
    for (int64_t i = 0; i < ni; i++) /* the edges: columns past j8 of every row, rows past i8 */
        for (int64_t j = i < i8 ? j8 : 0; j < nj; j++) dst[i * os + j] = src[i + j * is];
}

static void copy_tile(char *dst, const char *src, int64_t ni, int64_t nj, int64_t os, int64_t is, size_t es) {
    static int avx = -1;
    if (avx < 0) avx = __builtin_cpu_supports("avx") ? 1 : 0;
    if (es == 4 && avx) {
        copy_tile_avx((float *)dst, (const float *)src, ni, nj, os, is);
        return;
    }
    switch (es) {
    case 1: TILE_COPY(uint8_t); break;
    case 2: TILE_COPY(uint16_t); break;
    case 4: TILE_COPY(uint32_t); break;
    case 8: TILE_COPY(uint64_t); break;
    default:
        for (int64_t i = 0; i < ni; i++)
            for (int64_t j = 0; j < nj; j++) memcpy(dst + (i * os + j) * es, src + (i + j * is) * es, es);
    }
}

/* The smallest transpose split over threads (bytes moved): below it, waking the second thread
 * costs about what it saves. Where OpenMP's idle threads sleep (OMP_WAIT_POLICY=passive, what
 * the CLI picks on a busy machine) a wake-up is a futex call; where they spin it is a store the
 * spinning thread sees at once, and a transformer's head transposes (150 KB at ViT-tiny's batch
 * 1) pay for it. */
#define TRANSPOSE_PAR_BYTES (256 * 1024)
#define TRANSPOSE_PAR_BYTES_SPIN (32 * 1024)

static size_t par_bytes(void) {
    static size_t v;
    if (!v) {
        const char *pol = getenv("OMP_WAIT_POLICY");
        v = pol && !strcasecmp(pol, "passive") ? TRANSPOSE_PAR_BYTES : TRANSPOSE_PAR_BYTES_SPIN;
    }
    return v;
}

il_status il_transpose_fast(il_kctx *c, const int *perm) {
    const il_tensor *x = il_in(c, 0);
    il_tensor *y = il_out(c, 0);
    int r = 0;
    int64_t xs[IL_MAX_RANK], d[IL_MAX_RANK], s[IL_MAX_RANK]; /* per merged output axis: size, input stride */
    size_t es = il_dtype_size(x->dtype);
    int64_t n = il_tensor_numel(y);
    if (n == 0) return IL_OK;
    il_strides(x->rank, x->dims, xs);
    for (int i = 0; i < x->rank; i++) {
        if (x->dims[perm[i]] == 1) continue;
        if (r > 0 && s[r - 1] == xs[perm[i]] * x->dims[perm[i]]) { /* follows the previous axis in the input too */
            d[r - 1] *= x->dims[perm[i]];
            s[r - 1] = xs[perm[i]];
        } else {
            d[r] = x->dims[perm[i]];
            s[r++] = xs[perm[i]];
        }
    }
    const char *src = x->data;
    char *dst = y->data;
    if (r == 0 || (r == 1 && s[0] == 1)) { memcpy(dst, src, (size_t)n * es); return IL_OK; }
    int64_t ys[IL_MAX_RANK];
    il_strides(r, d, ys);
    if (s[r - 1] == 1) { /* contiguous runs of d[r-1] elements */
        int64_t run = d[r - 1], rows = n / run;
        /* Each thread takes a range of runs and steps an odometer over the outer axes: a divide per
         * axis and run was most of the time of tiny_bert's head transposes (runs of 16 floats).
         * Threads only for a transpose large enough to pay for waking them. */
        int nt = c->threads > 1 && (size_t)n * es >= par_bytes() ? c->threads : 1;
        if (nt > rows) nt = (int)rows;
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
        for (int t = 0; t < nt; t++) {
            int64_t r0 = rows * t / nt, r1 = rows * (t + 1) / nt, idx[IL_MAX_RANK] = {0}, rem = r0, off = 0;
            for (int i = r - 2; i >= 0; i--) {
                idx[i] = rem % d[i];
                off += idx[i] * s[i];
                rem /= d[i];
            }
            for (int64_t row = r0; row < r1; row++) {
                memcpy(dst + row * run * (int64_t)es, src + off * (int64_t)es, (size_t)run * es);
                for (int i = r - 2; i >= 0; i--) {
                    off += s[i];
                    if (++idx[i] < d[i]) break;
                    off -= d[i] * s[i];
                    idx[i] = 0;
                }
            }
        }
        return IL_OK;
    }
    int a = 0; /* the output axis that is the input's last (stride 1) */
    while (s[a] != 1) a++;
    const int64_t B = 32;
    int64_t ta = (d[a] + B - 1) / B, tl = (d[r - 1] + B - 1) / B, outer = n / (d[a] * d[r - 1]);
    int64_t tiles = outer * ta * tl;
    int nt = c->threads > 1 && (size_t)n * es >= par_bytes() ? c->threads : 1;
#pragma omp parallel for num_threads(nt) if (nt > 1 && tiles > 1) schedule(static)
    for (int64_t t = 0; t < tiles; t++) {
        int64_t o = t / (ta * tl), ia = (t / tl) % ta * B, il = t % tl * B, rem = o, xo = 0, yo = 0;
        for (int i = r - 2; i >= 0; i--) { /* the other axes, from the outer index */
            if (i == a) continue;
            xo += (rem % d[i]) * s[i];
            yo += (rem % d[i]) * ys[i];
            rem /= d[i];
        }
        int64_t ni = d[a] - ia < B ? d[a] - ia : B, nj = d[r - 1] - il < B ? d[r - 1] - il : B;
        copy_tile(dst + (yo + ia * ys[a] + il) * (int64_t)es, src + (xo + ia + il * s[r - 1]) * (int64_t)es, ni, nj,
                  ys[a], s[r - 1], es);
    }
    return IL_OK;
}


void il_transpose_f32(float *dst, int64_t ldd, const float *src, int64_t lds, int64_t rows, int64_t cols) {
    const int64_t B = 32;
    for (int64_t i = 0; i < cols; i += B)
        for (int64_t j = 0; j < rows; j += B)
            copy_tile((char *)(dst + i * ldd + j), (const char *)(src + j * lds + i), cols - i < B ? cols - i : B,
                      rows - j < B ? rows - j : B, ldd, lds, 4);
}
