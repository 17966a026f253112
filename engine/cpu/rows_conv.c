/*
 * rows_conv.c - Conv / FusedConv kernel "gemm-rows": convolutions with at most 64 output pixels
 * and wide weights (ResNet's last stage at batch 1: 3x3 stride 2 into 7x7, 1x1 at 7x7 and the
 * 1x1 stride-2 downsample) as one product [pixels x C*KH*KW] @ [C*KH*KW x K] of the image's
 * im2col rows with the weight packed once in panels of 32 output channels (panel_gemm.h).
 *
 * Why: oneDNN's brgconv runs these at 112-120 GFLOP/s at batch 1 (ResNet-50, one thread: 512 ->
 * 512 3x3/2 2.00-2.07 ms, 1024 -> 2048 1x1/2 1.78-1.81, 512 <-> 2048 1x1 0.84-0.94; ResNet-18's
 * 256 -> 512 3x3/2 0.96-1.02), its blocking made for more pixels than 49; the panel product runs
 * at 97% of the FMA peak with its panel in L2. Each panel (its 32 channels' whole weight) is read
 * once per image, 7 row blocks of 7 pixels sharing it from L2, and the next panel is fetched
 * meanwhile: the weight (4-9 MB here) streams from memory at batch 1.
 *
 *     A  [pixels][KH*KW*C]   the im2col rows, (ky, kx, c) order: channels-last pixels copy whole
 *     U  [chunks][K/32][ROWS_CHUNK][32]   the weight (prepare), in the order run reads it
 *     M  [K/32][pixels][32]  A @ U, a chunk of the reduction (A's columns) at a time
 *     Y  M + bias + Z, the activation, written as the plan holds Y
 *
 * On two threads at batch 1 the threads share the image (A's rows, then the panels); a batch goes
 * image by image per thread. X, Z and Y plain NCHW or native channels-last; any stride, padding
 * and dilation; one group; needs AVX-512.
 */
#include "panel_gemm.h"

/* Reduction steps per micro-kernel call: A's 7 rows (7 KB) and the panel's piece (32 KB) stay in
 * L1 while the row blocks share it. Alone, weight in L3, one thread: 512 -> 2048 1x1 at 7x7
 * 0.754 / 0.674 / 0.703 ms at 512 / 256 / 128. */
#define ROWS_CHUNK 128
#define ROWS_MAX_PIXELS 64 /* output plane at most (7x7, 8x8) */
#define ROWS_MIN_K 256     /* output channels at least */
#define ROWS_MIN_RED 256   /* C * KH * KW at least */
#define ROWS_MIN_WEIGHT (1 << 20) /* weight floats at least (4 MB) */

typedef struct {
    int64_t c, k, h, w, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl;
    int64_t red, rows, nkb, rb; /* reduction length, output pixels, panels, rows per block */
    il_act act;
    float *u; /* [red / ROWS_CHUNK][nkb][ROWS_CHUNK][IL_PG_K]: a chunk of every panel, then the next */
} rows_state;

/* Where it is not slower than oneDNN: few pixels and many channels, one image a thread (a batch
 * gives oneDNN's blocking its pixels). Node minimums in the networks at batch 1, alternated twice
 * with oneDNN (load 1.1-2.2; docs/cpu_speed_sessions.md, session 10), one thread: ResNet-50's
 * 512 -> 512 3x3/2 1.89-1.95 ms against 2.01-2.04, 1024 -> 2048 1x1/2 1.73-1.74 against 1.83,
 * 512 <-> 2048 1x1 0.83-0.89 against 0.88-0.93, ResNet-18's 256 -> 512 3x3/2 0.91-0.92 against
 * 0.93-0.99; two threads: 0.94-1.00 against 0.99-1.01, 0.82-0.85 against 0.91, 0.44-0.46 against
 * 0.46-0.48. A small gain: with the weight streamed from memory both wait on it (alone, weight
 * in L3, the 3x3/2 takes 1.60 ms, 144 GFLOP/s). Smaller weights, which stay in cache, lose:
 * MobileNet v2's 960 -> 320 and 320 -> 1280 1x1 at 7x7 (1.2 and 1.6 MB) 0.18-0.21 and 0.24-0.27
 * ms against 0.17-0.18 and 0.22-0.24 (load 2.9), hence ROWS_MIN_WEIGHT. INFERLAB_GEMM_ROWS=all takes every shape it can
 * compute (to measure), =0 none. */
static int rows_wins(const il_conv_geom *g, int threads) {
    int64_t per_thread = (g->n + threads - 1) / (threads > 1 ? threads : 1);
    return g->out_sp <= ROWS_MAX_PIXELS && g->m >= ROWS_MIN_K && g->c * g->k_sp >= ROWS_MIN_RED &&
           g->m * g->c * g->k_sp >= ROWS_MIN_WEIGHT && per_thread <= 1;
}

static int rows_supports(const il_kctx *c) { return il_pg_supports(c, il_pg_geom, "INFERLAB_GEMM_ROWS", rows_wins); }

static void rows_release(void *state) {
    rows_state *s = state;
    if (s) free(s->u);
    free(s);
}

/* Floats of one thread's buffers: A and M. */
static int64_t rows_lane(const rows_state *s) { return s->rows * (s->red + s->nkb * IL_PG_K); }

/* Where chunk c0 (a multiple of ROWS_CHUNK) of panel kb starts in U. */
static int64_t piece(const rows_state *s, int64_t c0, int64_t kb) {
    int64_t n = s->red - c0 < ROWS_CHUNK ? s->red - c0 : ROWS_CHUNK;
    return (c0 * s->nkb + kb * n) * IL_PG_K;
}

static il_status rows_prepare(il_kctx *c, void **state, size_t *workspace) {
    il_conv_geom g;
    rows_state *s = NULL;
    il_status st = il_pg_state(c, rows_supports, il_pg_geom, &g, sizeof *s, offsetof(rows_state, act), (void **)&s);
    if (st) return st;
    s->c = g.c, s->k = g.m, s->h = g.in[0], s->w = g.in[1], s->oh = g.out[0], s->ow = g.out[1];
    s->kh = g.k[0], s->kw = g.k[1], s->sh = g.stride[0], s->sw = g.stride[1], s->dh = g.dil[0], s->dw = g.dil[1];
    s->pt = g.pad[0], s->pl = g.pad[1];
    s->red = s->c * s->kh * s->kw, s->rows = s->oh * s->ow, s->nkb = (s->k + IL_PG_K - 1) / IL_PG_K;
    int64_t blocks = (s->rows + IL_PG_ROWS - 1) / IL_PG_ROWS;
    s->rb = (s->rows + blocks - 1) / blocks; /* 49 pixels: 7 blocks of 7, not 6 of 8 and one of 1 */
    if (!(s->u = il_pg_weight(c, s->nkb * s->red * IL_PG_K))) {
        free(s);
        return IL_ERR_OOM;
    }
    const float *wt = c->in[1]->data;
    for (int64_t k = 0; k < s->k; k++)
        for (int64_t ch = 0; ch < s->c; ch++)
            for (int64_t t = 0; t < s->kh * s->kw; t++) {
                int64_t i = t * s->c + ch, c0 = i / ROWS_CHUNK * ROWS_CHUNK;
                s->u[piece(s, c0, k / IL_PG_K) + (i - c0) * IL_PG_K + k % IL_PG_K] = wt[(k * s->c + ch) * s->kh * s->kw + t];
            }
    int lanes = c->threads > 1 ? c->threads : 1;
    *workspace = (size_t)(lanes * rows_lane(s)) * sizeof(float) + 64;
    *state = s;
    return IL_OK;
}

/* A's rows r0 .. r1 from image x (channels-last when last, else NCHW). */
static void im2col_rows(const rows_state *s, const float *x, int last, float *a, int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
        int64_t oy = r / s->ow, ox = r % s->ow;
        for (int64_t ky = 0; ky < s->kh; ky++)
            for (int64_t kx = 0; kx < s->kw; kx++) {
                float *d = a + r * s->red + (ky * s->kw + kx) * s->c;
                int64_t iy = oy * s->sh - s->pt + ky * s->dh, ix = ox * s->sw - s->pl + kx * s->dw;
                if (iy < 0 || iy >= s->h || ix < 0 || ix >= s->w)
                    memset(d, 0, (size_t)s->c * sizeof(float));
                else if (last)
                    memcpy(d, x + (iy * s->w + ix) * s->c, (size_t)s->c * sizeof(float));
                else
                    for (int64_t ch = 0; ch < s->c; ch++) d[ch] = x[(ch * s->h + iy) * s->w + ix];
            }
    }
}

/* Y's panel kb from M: + bias + Z, the activation. */
IL_AVX512 static void rows_out(const rows_state *s, int64_t kb, const float *m, const float *bias, const il_pg_io *z,
                               const il_pg_io *y) {
    for (int kv = 0; kv < IL_PG_K / 16; kv++) {
        int64_t k0 = kb * IL_PG_K + kv * 16;
        if (k0 >= s->k) break;
        __mmask16 km = s->k - k0 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (s->k - k0)) - 1);
        __m512 b = bias ? _mm512_maskz_loadu_ps(km, bias + k0) : _mm512_setzero_ps();
        for (int64_t r = 0; r < s->rows; r++) {
            __m512 v = _mm512_add_ps(_mm512_loadu_ps(m + r * IL_PG_K + kv * 16), b);
            if (z) v = _mm512_add_ps(v, il_pg_load(z, r, k0, km));
            il_pg_store(y, r, k0, km, il_pg_act(&s->act, v));
        }
    }
}

/* One image (il_pg_image_fn): A in the shared lane, M in the thread's own. */
IL_AVX512 static void rows_image(const void *state, const float *x, int xlast, const float *bias, const il_pg_io *z,
                                 const il_pg_io *y, float *shared, float *own, int tid, int nt, int64_t count) {
    const rows_state *s = state;
    (void)count; /* group 1 */
    float *a = shared, *m = own + s->rows * s->red;
    im2col_rows(s, x, xlast, a, s->rows * tid / nt, s->rows * (tid + 1) / nt);
    if (nt > 1) {
#pragma omp barrier
    }
    /* chunk by chunk, every panel of this thread's: A's chunk stays in cache and U streams in order */
    int64_t kb0 = s->nkb * tid / nt, kb1 = s->nkb * (tid + 1) / nt;
    for (int64_t c0 = 0; c0 < s->red; c0 += ROWS_CHUNK) {
        int64_t n = s->red - c0 < ROWS_CHUNK ? s->red - c0 : ROWS_CHUNK;
        for (int64_t kb = kb0; kb < kb1; kb++) {
            const float *up = s->u + piece(s, c0, kb);
            const float *next = kb + 1 < kb1 ? up + n * IL_PG_K
                                : c0 + ROWS_CHUNK < s->red ? s->u + piece(s, c0 + ROWS_CHUNK, kb0) : up;
            for (int64_t r0 = 0; r0 < s->rows; r0 += s->rb) {
                int64_t T = s->rows - r0 < s->rb ? s->rows - r0 : s->rb;
                /* the first row block fetches the next piece */
                il_pg_product((int)T, c0 > 0, n, a + r0 * s->red + c0, s->red, up, m + (kb * s->rows + r0) * IL_PG_K,
                              r0 ? up : next, IL_PG_K);
            }
        }
    }
    for (int64_t kb = kb0; kb < kb1; kb++) rows_out(s, kb, m + kb * s->rows * IL_PG_K, bias, z, y);
}

static il_status rows_run(il_kctx *c) {
    const rows_state *s = c->state;
    return il_pg_run(c, s, s->c, s->h * s->w, s->k, s->rows, rows_lane(s), 1, rows_image);
}

const il_kernel il_kernels_rows_conv[] = {
    IL_PG_KERNEL("ai.inferlab", "FusedConv", "gemm-rows", 29, rows,
         "convolutions of at most 64 output pixels and wide weights as one product of the image's im2col rows "
         "with the weight packed in 32-channel panels (AVX-512, 7-8 rows x 32 channels a step); bias + residual + "
         "activation on the way out"),
    IL_PG_KERNEL("", "Conv", "gemm-rows", 29, rows, "FusedConv's gemm-rows for a plain Conv"),
    {0},
};
