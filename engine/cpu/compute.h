/*
 * compute.h - internal declarations shared by the compute-heavy op files (engine/ops/conv.c,
 * pool.c, norm.c, linalg.c, einsum.c) and their fast CPU kernels (engine/cpu/conv_fast.c,
 * engine/cpu/pool_fast.c). Not a public header.
 *
 * The split: engine/ops/X.c validates attributes, infers shapes and holds the reference
 * kernel; engine/cpu/X_fast.c holds the float32 kernel built on il_sgemm and IL_PAR_FOR.
 * Both read the same geometry struct so they cannot disagree about pads or output sizes.
 */
#ifndef IL_CPU_COMPUTE_H
#define IL_CPU_COMPUTE_H

#include "../ops/kernel.h"

#define IL_MAX_SPATIAL (IL_MAX_RANK - 2)

/* OpenBLAS runs a gemm on the calling thread alone below m*n*k = 65536*4
 * (GEMM_MULTITHREAD_THRESHOLD), so gemms this small may run from several OpenMP threads at
 * once without fighting over its thread pool. Above it we call BLAS from one thread and let it
 * spread the work itself. */
#define IL_SMALL_GEMM ((int64_t)65536 * 4)

/* Whether a batched convolution runs its images in parallel (one single-threaded gemm each)
 * rather than one after another with BLAS's threads: always for small gemms (OpenBLAS keeps
 * them on the calling thread anyway), and for big ones when the images share out evenly over
 * the threads -- OpenBLAS's fork-join per call and the single-threaded im2col between calls
 * then cost more than they save (demo teacher, batch 8, 2 threads: 5.2 -> 4.6 ms). */
static inline int il_conv_per_image(int64_t n, int threads, int64_t gemm_macs) {
    if (n < 2 || threads < 2) return 0;
    return gemm_macs < IL_SMALL_GEMM || n % threads == 0 || n >= 4 * threads;
}

/* Sliding-window geometry of Conv, ConvTranspose and the pools. Dims may be -1 while
 * inferring at plan time; the kernels see them all known. */
typedef struct il_conv_geom {
    int nsp;                            /* spatial dims */
    int64_t n, c, m, group;             /* batch, input channels, output channels, groups */
    int64_t in[IL_MAX_SPATIAL];         /* input spatial size */
    int64_t out[IL_MAX_SPATIAL];        /* output spatial size */
    int64_t k[IL_MAX_SPATIAL];          /* kernel size */
    int64_t stride[IL_MAX_SPATIAL], dil[IL_MAX_SPATIAL];
    int64_t pad[IL_MAX_SPATIAL];        /* pad at the start of each dim (may be < 0 for ConvTranspose) */
    int64_t pad_end[IL_MAX_SPATIAL];
    int64_t in_sp, out_sp, k_sp;        /* products of in, out, k (-1 when unknown) */
} il_conv_geom;

/* Output length of one sliding-window dim, resolving auto_pad ("NOTSET", "SAME_UPPER",
 * "SAME_LOWER", "VALID") into *pb / *pe. in == -1 gives -1. Returns -2 when the (dilated)
 * window does not fit the padded input. */
int64_t il_window_out(int64_t in, int64_t k, int64_t s, int64_t d, const char *auto_pad, int ceil_mode,
                      int64_t *pb, int64_t *pe);

/* Read the window attributes (kernel_shape, strides, dilations, pads, auto_pad) for the
 * spatial dims of input x (rank >= 3) into g: nsp, n, c, in, k, stride, dil, pad, pad_end.
 * kernel (nsp entries, -1 unknown) is the kernel size taken from a weight; NULL when there is
 * none and kernel_shape is required. With with_out, also the output size (Conv and the pools;
 * ConvTranspose computes its own). */
il_status il_window_geom(const il_kctx *c, const il_tensor *x, const int64_t *kernel, int ceil_mode, int with_out,
                         il_conv_geom *g);

/* Fast float32 kernels; the geometry was checked by the caller. */
il_status il_conv_fast_f32(il_kctx *c, const il_conv_geom *g);
/* One output plane (image n, channel m) of a depthwise conv, no bias (1-D or 2-D). */
void il_depthwise_plane(const il_conv_geom *g, const float *x, const float *w, int64_t n, int64_t m, float *yc);
il_status il_conv_transpose_fast_f32(il_kctx *c, const il_conv_geom *g);
/* 2-D (and 1-D seen as 2-D) pools over float32; kind 0 max, 1 average. */
il_status il_pool_fast_f32(il_kctx *c, const il_conv_geom *g, int kind, int count_include_pad,
                           int storage_order);

/* Einsum lives in its own file; linalg.c puts it in the table. */
il_status il_einsum_infer(il_kctx *c);
il_status il_einsum_ref(il_kctx *c);
il_status il_einsum_fast(il_kctx *c);

/* Float element access for kernels that serve float32 and float64 with one loop. */
static inline double il_ldf(const il_tensor *t, int64_t i) {
    return t->dtype == IL_F64 ? ((const double *)t->data)[i] : (double)((const float *)t->data)[i];
}
static inline void il_stf(il_tensor *t, int64_t i, double v) {
    if (t->dtype == IL_F64) ((double *)t->data)[i] = v;
    else ((float *)t->data)[i] = (float)v;
}
static inline int il_is_f32_f64(il_dtype t) { return t == IL_F32 || t == IL_F64; }

/* P[i, c] = the mean of channel c of image i of Y (n images of C channels of sp pixels), Y plain
 * [n, C, sp] or channels-last [n, sp, C] (chan_mean.c: PooledConv's pool, taken in cache), on up
 * to `threads` threads; one channels-last image shares its pixels out only given part, threads x
 * C floats of scratch. */
void il_cpu_chan_means(const float *y, int last, int64_t n, int64_t C, int64_t sp, float *out, int threads,
                       float *part);

/* The means of one channels-last image's C channels over its sp pixels: sums(y, C, p0, p1, row)
 * writes the sums of pixels [p0, p1) into row (and may rewrite those pixels); on several threads
 * (given part, threads x C floats, and an image of at least 32K floats) each sums its share of the
 * pixels into its row of part, and the rows are added (chan_mean.c). */
typedef void (*il_pixel_sums_fn)(float *y, int64_t C, int64_t p0, int64_t p1, float *out);
void il_cpu_pixel_means(il_pixel_sums_fn sums, float *y, int64_t C, int64_t sp, float *out, int threads, float *part);

/* y = y * sigmoid(y) over n floats on up to `threads` threads, with AVX-512 (silu_fast.c: the
 * oneDNN convolutions' SiLU, faster than oneDNN's post-op); il_cpu_silu_ok() says whether the CPU
 * has it (0 also with INFERLAB_SILU_POSTOP=1). */
int il_cpu_silu_ok(void);
void il_cpu_silu(float *y, int64_t n, int threads);
/* Both at once on n channels-last images (PooledConv with SiLU): y = silu(y), out[i, c] the mean
 * of channel c of image i after it; part as for il_cpu_chan_means. Only where il_cpu_silu_ok(). */
void il_cpu_silu_means(float *y, int64_t n, int64_t C, int64_t sp, float *out, int threads, float *part);


/* A 1x1 stride-1 convolution of C -> m channels on channels-last pixels whose result goes into a
 * channel slice of pixel stride cs >= m (a Concat's channels written in place), with bias and
 * Relu (pw_last.c, AVX-512: il_cpu_pw_ok). u: the weight [m, C] packed by il_cpu_pw_pack
 * (aligned_alloc; the caller frees it). run: `pixels` pixels of X (stride C) at x into y (stride
 * cs), bias NULL or m floats, on up to `threads` threads. */
typedef struct il_pw {
    int64_t c, m, cs;
    int relu;
    float *u;
} il_pw;
int il_cpu_pw_ok(void);
float *il_cpu_pw_pack(const float *w, int64_t m, int64_t c);
void il_cpu_pw_run(const il_pw *w, const float *x, const float *bias, float *y, int64_t pixels, int threads);
/* A 3x3 convolution of stride 1 and pads of 1, C -> m channels on h x w planes, by Winograd
 * F(4x4,3x3) a group of 8 tiles at a time (wino_small.c, AVX-512: il_cpu_pw_ok): new transforms
 * the weight [m, C, 3, 3] (NULL when out of memory); run reads n channels-last images at x and
 * writes act(conv + bias) into y, channels-last of pixel stride cs >= m (a Concat's slice or
 * dense), on up to `threads` threads, with il_cpu_wsmall_ws bytes of scratch at ws. */
typedef struct il_wsmall il_wsmall;
il_wsmall *il_cpu_wsmall_new(const float *wt, int64_t m, int64_t c, int64_t h, int64_t w, int relu);
size_t il_cpu_wsmall_ws(const il_wsmall *s, int threads);
void il_cpu_wsmall_run(const il_wsmall *s, const float *x, int64_t n, const float *bias, float *y, int64_t cs,
                       void *ws, int threads);
void il_cpu_wsmall_free(il_wsmall *s);
/* Its micro-kernel: T <= 8 rows of x (stride c) times one packed block u (c x 32) into T rows of
 * y (stride cs), + bias (32 floats or NULL), Relu where relu; only the first `lanes` of the 32
 * channels are stored (wino_small.c's products go through it too). */
void il_cpu_pw_tile(int T, int64_t c, const float *x, const float *u, const float *bias, int relu, float *y,
                    int64_t cs, int64_t lanes);

#endif
