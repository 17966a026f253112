/*
 * wino_conv.c - Conv / FusedConv kernel "wino-f23": 3x3 stride-1 convolutions on small planes
 * and many channels (ResNet's 14x14 and 7x7 stages) by Winograd F(2x2,3x3), the weights moved
 * into the Winograd domain once at prepare.
 *
 * Why not oneDNN's: at batch 1 its jit_fp32_wino_2x3 takes 1.84-1.87 ms for ResNet-18's
 * 512 -> 512 at 7x7 (115.6 M MACs) and its direct brgconv 1.81 ms, both about 128 GFLOP/s of
 * direct-convolution work on a core that does 176 GFLOP/s of FMAs (its weights are already
 * pre-transformed, `wei_f32::wino` in ONEDNN_VERBOSE: the time is the product itself). Here the
 * 7x7 output is 16 tiles of 2x2, so the product is 16 matrix products [16 tiles x C] @ [C x K]
 * (67 M MACs, 1.72x fewer than direct), each weight vector loaded once per 8 tiles.
 *
 *     Xp  the image zero-padded, channels-last, channels rounded up to 16
 *     V   [16 points][tiles][Cp]      B^T d B of every 4x4 input tile d (vectors of 16 channels)
 *     U   [K/32][16 points][Cp][32]   G g G^T of every 3x3 filter g (prepare)
 *     M   [16 points][tiles][32]      V_p @ U_p for one block of 32 output channels
 *     Y   A^T M A of every tile, + bias + residual Z, the activation, written as the plan holds Y
 *
 * The micro-kernel (panel_gemm.h) keeps 8 tiles x 32 channels in 16 registers: per input channel two weight
 * vectors and eight broadcasts for 16 FMAs. Blocks of 32 output channels are the unit of work
 * (their weight panel, Cp x 32 floats, stays in L2 while every tile block reads it) and of the
 * output transform, which follows each block while M is in cache. On two threads at batch 1 the
 * threads share the image (input tiles, then output channel blocks). A batch goes to the threads
 * in consecutive shares, each share in groups of up to 8 MB of V whose tiles make one product per
 * panel (8 images at 7x7: 128 rows read each panel once instead of 8 times), point by point so
 * that one point's V stays in L2 while every block's panel passes.
 *
 * X, Z and Y may be plain NCHW or the native channels-last layout (vectors over channels, or
 * gathers over a plane stride for NCHW). Needs AVX-512; declines groups, strides, dilations
 * and other kernel sizes.
 */
#include "panel_gemm.h"

#define WT IL_PG_ROWS
#define WK IL_PG_K
#define WINO_MIN_C 256     /* input and output channels at least */
#define WINO_MAX_PIXELS 196 /* output plane at most (14x14) */
#define WINO_REUSE_PIXELS 64 /* planes up to this many pixels: batch 1 a thread only */
#define WINO_GROUP_KB 8192  /* V of a thread's image group at most */

typedef struct {
    int64_t c, k, h, w, oh, ow, pt, pl; /* channels in and out, planes, pads at the start */
    int64_t th, tw, tiles;              /* tile rows and columns of the output, their count */
    int64_t cp, nkb, hp, wp;            /* channels to 16, output channel blocks, padded plane */
    int64_t group;                      /* images a thread transforms and multiplies together */
    il_act act;
    float *u; /* [nkb][16][cp][WK]: in the order run reads it */
} wino_state;

static int wino_geom(il_kctx *c, il_conv_geom *g) {
    return il_pg_geom(c, g) && g->k[0] == 3 && g->k[1] == 3 && g->stride[0] == 1 && g->stride[1] == 1 &&
           g->dil[0] == 1 && g->dil[1] == 1;
}

/* Where it beats oneDNN's Winograd and direct kernels (node minimums in ResNet-18 at batch 1,
 * one thread; docs/cpu_speed_sessions.md, session 10): 512 -> 512 at 7x7 1.52-1.65 ms against
 * 1.84, 256 -> 256 at 14x14 0.86-0.93 against 1.05; but 128 at 28x28 0.86 against 0.75-0.83 and
 * 64 at 56x56 1.14 against oneDNN's F(4x4,3x3) 0.66: on large planes oneDNN's tiles reuse each
 * weight over many more pixels. At batch 8 (one thread, images one after the other, each
 * reading U again, from L3 now) 256 at 14x14 still wins, 6.26-6.46 ms against 7.73-8.07, but 512
 * at 7x7 loses, 8.95-9.89 against 7.67-8.08 (oneDNN's 2x3 reads its weight over 16 tiles as
 * this does, only faster from cache). Its images multiplied together (session 10, R12) it is
 * level there, 7.30-7.97 against 7.45-7.86 (4 alternated rounds, load 1.6-2.1; two threads,
 * one round at load 2.5: 4.12-4.27 against 4.03-4.27), no win: 7x7 stays at one image a thread
 * (WINO_REUSE_PIXELS);
 * 256 at 14x14 gains, 5.39-6.21 against 6.08-6.55 image by image (oneDNN 7.01-7.85).
 * Two threads at batch 1: 512 at 7x7 0.58-0.61 ms against 0.72-0.75, 256 at 14x14 level
 * (0.44-0.45 against 0.45-0.47). INFERLAB_WINO_F23=all takes every 3x3 stride-1 shape (to
 * measure), =0 none. */
static int wino_wins(const il_conv_geom *g, int threads) {
    int64_t per_thread = (g->n + threads - 1) / (threads > 1 ? threads : 1);
    return g->c >= WINO_MIN_C && g->m >= WINO_MIN_C && g->out_sp <= WINO_MAX_PIXELS &&
           (per_thread <= 1 || g->out_sp > WINO_REUSE_PIXELS);
}

static int wino_supports(const il_kctx *c) { return il_pg_supports(c, wino_geom, "INFERLAB_WINO_F23", wino_wins); }

static void wino_release(void *state) {
    wino_state *s = state;
    if (s) free(s->u);
    free(s);
}

/* U = G g G^T for every filter g, G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]. */
static void transform_weights(wino_state *s, const float *wt) {
    for (int64_t k = 0; k < s->k; k++)
        for (int64_t ch = 0; ch < s->c; ch++) {
            const float *g = wt + (k * s->c + ch) * 9;
            float t[4][3], u[16];
            for (int b = 0; b < 3; b++) {
                t[0][b] = g[b];
                t[1][b] = 0.5f * (g[b] + g[3 + b] + g[6 + b]);
                t[2][b] = 0.5f * (g[b] - g[3 + b] + g[6 + b]);
                t[3][b] = g[6 + b];
            }
            for (int i = 0; i < 4; i++) {
                u[i * 4 + 0] = t[i][0];
                u[i * 4 + 1] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
                u[i * 4 + 2] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
                u[i * 4 + 3] = t[i][2];
            }
            for (int p = 0; p < 16; p++) s->u[((k / WK * 16 + p) * s->cp + ch) * WK + k % WK] = u[p];
        }
}

/* Floats of one thread's buffers: Xp (one image), V and M (a group of images). */
static int64_t lane_floats(const wino_state *s) {
    return s->hp * s->wp * s->cp + 16 * s->group * s->tiles * (s->cp + WK * (s->group > 1 ? s->nkb : 1));
}

/* Images multiplied together, so that each weight panel is read once per group rather than once
 * per image: a thread's share of the batch, in groups whose V stays within WINO_GROUP_KB. */
static int64_t wino_group(const wino_state *s, int64_t n, int lanes) {
    const char *e = getenv("INFERLAB_WINO_GROUP_KB");
    int64_t kb = e ? atoll(e) : WINO_GROUP_KB, per_thread = (n + lanes - 1) / lanes;
    int64_t fit = kb * 1024 / (16 * s->tiles * s->cp * (int64_t)sizeof(float));
    if (fit < 1) fit = 1;
    return n < lanes ? 1 : per_thread < fit ? per_thread : fit;
}

static il_status wino_prepare(il_kctx *c, void **state, size_t *workspace) {
    il_conv_geom g;
    wino_state *s = NULL;
    il_status st = il_pg_state(c, wino_supports, wino_geom, &g, sizeof *s, offsetof(wino_state, act), (void **)&s);
    if (st) return st;
    s->c = g.c, s->k = g.m, s->h = g.in[0], s->w = g.in[1], s->oh = g.out[0], s->ow = g.out[1];
    s->pt = g.pad[0], s->pl = g.pad[1];
    s->th = (s->oh + 1) / 2, s->tw = (s->ow + 1) / 2, s->tiles = s->th * s->tw;
    s->cp = (s->c + 15) / 16 * 16, s->nkb = (s->k + WK - 1) / WK;
    s->hp = 2 * s->th + 2, s->wp = 2 * s->tw + 2;
    int lanes = c->threads > 1 ? c->threads : 1;
    s->group = wino_group(s, g.n, lanes);
    if (!(s->u = il_pg_weight(c, 16 * s->nkb * s->cp * WK))) {
        free(s);
        return IL_ERR_OOM;
    }
    transform_weights(s, c->in[1]->data);
    *workspace = (size_t)(lanes * lane_floats(s)) * sizeof(float) + 64;
    *state = s;
    return IL_OK;
}

/* Rows r0 .. r1 of Xp from image x (channels-last when last, else NCHW). */
static void pad_rows(const wino_state *s, const float *x, int last, float *xp, int64_t r0, int64_t r1) {
    memset(xp + r0 * s->wp * s->cp, 0, (size_t)((r1 - r0) * s->wp * s->cp) * sizeof(float));
    for (int64_t r = r0; r < r1; r++) {
        int64_t y = r - s->pt;
        if (y < 0 || y >= s->h) continue;
        int64_t x0 = s->pl, n = s->w < s->wp - x0 ? s->w : s->wp - x0; /* columns that land in Xp */
        float *row = xp + (r * s->wp + x0) * s->cp;
        if (last)
            for (int64_t i = 0; i < n; i++) memcpy(row + i * s->cp, x + (y * s->w + i) * s->c, (size_t)s->c * sizeof(float));
        else
            for (int64_t ch = 0; ch < s->c; ch++)
                for (int64_t i = 0; i < n; i++) row[i * s->cp + ch] = x[(ch * s->h + y) * s->w + i];
    }
}

/* V for tiles t0 .. t1 (vs: floats between V's points): B^T d B, B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]. */
IL_AVX512 static void input_tiles(const wino_state *s, const float *xp, float *v, int64_t vs, int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t++) {
        const float *d0 = xp + (2 * (t / s->tw) * s->wp + 2 * (t % s->tw)) * s->cp;
        for (int64_t ch = 0; ch < s->cp; ch += 16) {
            __m512 d[4][4], r[4][4];
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++) d[i][j] = _mm512_loadu_ps(d0 + (i * s->wp + j) * s->cp + ch);
            for (int j = 0; j < 4; j++) {
                r[0][j] = _mm512_sub_ps(d[0][j], d[2][j]);
                r[1][j] = _mm512_add_ps(d[1][j], d[2][j]);
                r[2][j] = _mm512_sub_ps(d[2][j], d[1][j]);
                r[3][j] = _mm512_sub_ps(d[1][j], d[3][j]);
            }
            float *o = v + t * s->cp + ch;
            for (int i = 0; i < 4; i++) {
                _mm512_storeu_ps(o + (i * 4 + 0) * vs, _mm512_sub_ps(r[i][0], r[i][2]));
                _mm512_storeu_ps(o + (i * 4 + 1) * vs, _mm512_add_ps(r[i][1], r[i][2]));
                _mm512_storeu_ps(o + (i * 4 + 2) * vs, _mm512_sub_ps(r[i][2], r[i][1]));
                _mm512_storeu_ps(o + (i * 4 + 3) * vs, _mm512_sub_ps(r[i][1], r[i][3]));
            }
        }
    }
}



/* Y for output channel block kb from M (ms: rows between M's points): A^T m A, A^T = [1 1 1 0; 0 1 -1 -1], + bias + Z, act. */
IL_AVX512 static void output_block(const wino_state *s, int64_t kb, const float *m, int64_t ms, const float *bias,
                                   const il_pg_io *z, const il_pg_io *y) {
    for (int64_t t = 0; t < s->tiles; t++) {
        int64_t oy = 2 * (t / s->tw), ox = 2 * (t % s->tw);
        for (int kv = 0; kv < WK / 16; kv++) {
            int64_t k0 = kb * WK + kv * 16;
            if (k0 >= s->k) break;
            __mmask16 km = s->k - k0 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (s->k - k0)) - 1);
            __m512 q[4][4], r[2][4], o[2][2];
            for (int p = 0; p < 16; p++) q[p / 4][p % 4] = _mm512_loadu_ps(m + (p * ms + t) * WK + kv * 16);
            for (int j = 0; j < 4; j++) {
                r[0][j] = _mm512_add_ps(_mm512_add_ps(q[0][j], q[1][j]), q[2][j]);
                r[1][j] = _mm512_sub_ps(_mm512_sub_ps(q[1][j], q[2][j]), q[3][j]);
            }
            __m512 b = bias ? _mm512_maskz_loadu_ps(km, bias + k0) : _mm512_setzero_ps();
            for (int i = 0; i < 2; i++) {
                o[i][0] = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(r[i][0], r[i][1]), r[i][2]), b);
                o[i][1] = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(r[i][1], r[i][2]), r[i][3]), b);
            }
            for (int i = 0; i < 2 && oy + i < s->oh; i++)
                for (int j = 0; j < 2 && ox + j < s->ow; j++) {
                    int64_t px = (oy + i) * s->ow + ox + j;
                    __m512 v = o[i][j];
                    if (z) v = _mm512_add_ps(v, il_pg_load(z, px, k0, km));
                    il_pg_store(y, px, k0, km, il_pg_act(&s->act, v));
                }
        }
    }
}

/* M's rows for one panel up of one point: V's rows (rows of them) @ the panel, the panel `next`
 * fetched into L2 meanwhile, its lines spread over the first two row blocks where there are two
 * (batch 1 streams U from memory: ResNet-18's layer4 holds 16 MB of it per conv). */
IL_AVX512 static void panel_products(const wino_state *s, const float *v, int64_t rows, const float *up, const float *next,
                                     float *m) {
    int64_t tb = (rows + WT - 1) / WT, rb = (rows + tb - 1) / tb; /* 49 tiles: 7 blocks of 7 */
    for (int64_t t0 = 0; t0 < rows; t0 += rb) {
        int64_t T = rows - t0 < rb ? rows - t0 : rb;
        const float *pf = tb == 1 ? next : t0 == 0 ? next : t0 == rb ? next + s->cp * 16 : up;
        il_pg_product((int)T, 0, s->cp, v + t0 * s->cp, s->cp, up, m + t0 * WK, pf, tb == 1 ? WK : 16);
    }
}

/* Y of block kb for the group's count images from their M (rows between M's points). */
static void output_images(const wino_state *s, int64_t kb, const float *m, int64_t rows, int64_t count,
                          const float *bias, const il_pg_io *z, const il_pg_io *y) {
    for (int64_t i = 0; i < count; i++) {
        il_pg_io yi = *y, zi = z ? *z : *y;
        yi.base += i * s->k * s->oh * s->ow;
        zi.base += i * s->k * s->oh * s->ow;
        output_block(s, kb, m + i * s->tiles * WK, rows, bias, z ? &zi : NULL, &yi);
    }
}

/* `count` images (il_pg_image_fn): Xp and V in the shared lane, M in the thread's own. V and M
 * hold the group's tiles image after image, so that one product per panel covers them all. */
IL_AVX512 static void run_image(const void *state, const float *x, int xlast, const float *bias, const il_pg_io *z,
                             const il_pg_io *y, float *lane, float *mine, int tid, int nt, int64_t count) {
    const wino_state *s = state;
    float *xp = lane, *v = xp + s->hp * s->wp * s->cp, *m = mine + s->hp * s->wp * s->cp + 16 * s->group * s->tiles * s->cp;
    int64_t rows = count * s->tiles, vs = rows * s->cp; /* tiles of the group; one point's plane of V */
    for (int64_t i = 0; i < count; i++) {
        pad_rows(s, x + i * s->c * s->h * s->w, xlast, xp, s->hp * tid / nt, s->hp * (tid + 1) / nt);
        if (nt > 1) {
#pragma omp barrier
        }
        input_tiles(s, xp, v + i * s->tiles * s->cp, vs, s->tiles * tid / nt, s->tiles * (tid + 1) / nt);
        if (nt > 1) {
#pragma omp barrier
        }
    }
    /* A group of images goes point by point, every block of output channels within each, so that
     * V's point (the group's tiles, up to 400 KB) stays in L2 while the panels pass; M then holds
     * every block. One image goes block by block, each block's output transform while its M is in
     * cache. */
    int points_first = count > 1;
    int64_t kb0 = s->nkb * tid / nt, kb1 = s->nkb * (tid + 1) / nt, steps = 16 * (kb1 - kb0), mb = 16 * rows * WK;
    for (int64_t it = 0; it < steps; it++) {
        int64_t kb = kb0 + (points_first ? it % (kb1 - kb0) : it / 16), p = points_first ? it / (kb1 - kb0) : it % 16;
        int64_t ahead = it + IL_PG_AHEAD < steps ? it + IL_PG_AHEAD : it;
        int64_t akb = kb0 + (points_first ? ahead % (kb1 - kb0) : ahead / 16);
        int64_t ap = points_first ? ahead / (kb1 - kb0) : ahead % 16;
        panel_products(s, v + p * vs, rows, s->u + (kb * 16 + p) * s->cp * WK, s->u + (akb * 16 + ap) * s->cp * WK,
                       m + (points_first ? kb * mb : 0) + p * rows * WK);
        if (!points_first && p == 15) output_images(s, kb, m, rows, count, bias, z, y);
    }
    for (int64_t kb = kb0; points_first && kb < kb1; kb++) output_images(s, kb, m + kb * mb, rows, count, bias, z, y);
}

static il_status wino_run(il_kctx *c) {
    const wino_state *s = c->state;
    return il_pg_run(c, s, s->c, s->h * s->w, s->k, s->oh * s->ow, lane_floats(s), s->group, run_image);
}


const il_kernel il_kernels_wino_conv[] = {
    IL_PG_KERNEL("ai.inferlab", "FusedConv", "wino-f23", 30, wino,
         "Winograd F(2x2,3x3) for 3x3 stride-1 convolutions on small planes and many channels: weights "
         "transformed once, 8-tile x 32-channel AVX-512 products, bias + residual + activation in the output "
         "transform"),
    IL_PG_KERNEL("", "Conv", "wino-f23", 30, wino, "Winograd F(2x2,3x3) as FusedConv's wino-f23, for a plain 3x3 stride-1 Conv"),
    {0},
};
