/*
 * dnnl_int.h - private to the oneDNN kernels (engine/cpu/dnnl_*.c): one CPU engine and stream
 * for the process, error wrapping with the node's context, thread-count scoping, plain layouts,
 * the fused activation as oneDNN post-ops, and the "step" that runs one primitive with its
 * memory objects re-pointed at the plan's tensors each run.
 *
 * Built only with IL_HAVE_DNNL (the Makefile defines it when libdnnl-dev's header is there);
 * without it the kernel tables are not compiled and nothing registers.
 *
 * Ownership: a kernel's prepare creates primitives and memory objects into its state and its
 * release destroys them (il_dnnl_step_free); the engine and stream live as long as the process.
 */
#ifndef IL_DNNL_INT_H
#define IL_DNNL_INT_H

#ifdef IL_HAVE_DNNL

#include "../ops/fused.h"
#include "compute.h"

#if __has_include(<oneapi/dnnl/dnnl.h>)
#include <oneapi/dnnl/dnnl.h>
#else
#include <dnnl.h>
#endif

/* The process's CPU engine and its stream (created on first use); NULL with an error set when
 * oneDNN cannot make them. */
dnnl_engine_t il_dnnl_engine(void);
dnnl_stream_t il_dnnl_stream(void);

/* A oneDNN status as an il_status with the node and the failing call in the message. */
il_status il_dnnl_err(const il_kctx *c, dnnl_status_t s, const char *what);
#define IL_DNNL(c, call)                                                  \
    do {                                                                  \
        dnnl_status_t s_ = (call);                                        \
        if (s_ != dnnl_success) return il_dnnl_err((c), s_, #call);       \
    } while (0)

/* oneDNN's OpenMP runtime sizes its parallel regions (and a jit primitive its work split, at
 * creation) by omp_get_max_threads(): enter sets it to `want` (0: leave it) for the length of a
 * prepare or run, leave puts the caller's value back. */
int il_dnnl_threads_enter(int want);
void il_dnnl_threads_leave(int saved);

/* The plain row-major tag of a rank (1..6): a, ab, abc, ... (nchw is abcd). */
dnnl_format_tag_t il_dnnl_plain_tag(int rank);
/* A plain f32 descriptor of the given dims. */
il_status il_dnnl_plain_md(const il_kctx *c, dnnl_memory_desc_t *md, int rank, const int64_t *dims);

/* The activation as post-ops appended to po: 1 when oneDNN has it (every il_act kind but none
 * left out today, HardSigmoid as linear then clip), 0 when it does not. */
int il_dnnl_act_post_ops(const il_act *a, dnnl_post_ops_t po);

/* One primitive and the memory objects of its arguments; each run points the memories at the
 * run's buffers (set_data_handle) and executes. */
#define IL_DNNL_MAX_ARGS 8
typedef struct {
    dnnl_primitive_t prim;
    int n;
    dnnl_exec_arg_t args[IL_DNNL_MAX_ARGS];
    dnnl_stream_t stream; /* NULL: the process's (il_dnnl_stream); a worker's own where images run in parallel */
} il_dnnl_step;

/* A step for primitive descriptor pd (its primitive made here; pd stays the caller's). */
il_status il_dnnl_step_make(const il_kctx *c, il_dnnl_step *st, const_dnnl_primitive_desc_t pd);
/* Add argument `arg` (DNNL_ARG_SRC, ...) with descriptor md; its buffer is set per run. */
il_status il_dnnl_step_arg(const il_kctx *c, il_dnnl_step *st, int arg, const dnnl_memory_desc_t *md);
/* Point the argument `arg` at ptr. */
void il_dnnl_step_set(il_dnnl_step *st, int arg, void *ptr);
il_status il_dnnl_step_run(const il_kctx *c, il_dnnl_step *st);
void il_dnnl_step_free(il_dnnl_step *st);

/* Run a step of the node's state (c->state) on the node's threads. */
il_status il_dnnl_exec(const il_kctx *c, il_dnnl_step *st);

/* The per-node state of every oneDNN kernel: its primitive, the reorders a convolution with
 * blocked activations puts around it, the packed weight and a prepared bias copy. */
typedef struct il_dnnl_state_ {
    il_dnnl_step main, src_in, dst_out, z_in; /* the reorders only where a layout differs */
    void *w;                                  /* the packed weight (aligned_alloc) */
    float *bias;                              /* a bias prepared at prepare (Gemm's beta * C), or NULL */
    size_t src_off, dst_off, scratch_off;     /* parts of the workspace, in bytes from its aligned start */
    size_t zbytes;                            /* the residual's bytes when it is copied, not reordered */
    int has_z;                                /* FusedConv's residual */
    int silu;                                 /* convolution: SiLU applied after the primitive (silu_fast.c) */
    int z_add;                                /* read by a binary add post-op where it lies, not copied into Y first */
    int z_loop;                               /* Winograd: Z added (then Relu where 2) by the copy loop out of nChw16c */
    int64_t last_n, last_c, last_sp;          /* src_in from plain to channels-last of so few channels
                                                 that a loop does it (dnnl_layout.c): images, channels, pixels */
    struct {                                  /* dst_out done by a copy loop (dnnl_layout.c): Y channels-last with pixel
                                                 stride cs (dense, or a Concat's slice) from the primitive's channels-last
                                                 (blk 0) or nChw16c (blk 16) of n images, c channels, sp pixels */
        int on;
        int64_t blk, n, c, sp, cs, yn, dn;    /* yn, dn: the floats between images of Y and of the primitive's dst */
        int relu;                             /* z_loop: Relu after the residual */
    } yc;
    struct {                                  /* src_in done by a copy loop (dnnl_layout.c): X dense channels-last into
                                                 the primitive's nChw16c, n images of c channels (whole blocks), sp pixels */
        int on;
        int64_t n, c, sp;
    } xc;
    il_pw pw;                                 /* convolution: pw_last.c's product in place of the primitive where
                                                 pw.u is set (dnnl_conv_own.c pw_fits) */
    il_wsmall *wsm;                           /* Winograd: wino_small.c's in place of the primitive where set
                                                 (dnnl_conv_own.c wsmall_fits; Y's pixel stride in pw.cs) */
    int threads;                              /* the node's threads (il_dnnl_use_threads) */
    int64_t images;                           /* convolution: primitive calls per run, one per image, or 1 */
    size_t ximg, yimg, zimg;                  /* and the bytes of one image of X, Y and Z as the plan holds them */
    /* convolution, images run in parallel: workers - 1 more states (their own memory objects,
     * reorder buffers, scratchpad and stream around the same primitive; w stays this state's) */
    int workers;
    struct il_dnnl_state_ *more;
    /* ScaledConv (dnnl_sconv.c): each image's channel scale goes into the weight (by_w: the plain
     * weight scaled into the workspace at sc_off, packed by w_re to pk_off) or into the image
     * (a scaled copy at sc_off, channels-last or plain) */
    struct {
        int on, by_w, last;
        int64_t m, mg, cg, k, c, sp;
        size_t off, pk_off;
        il_dnnl_step w_re;
    } sc;
    /* PooledConv: after each call the channel means of its n images of Y, channels-last (last)
     * or plain, into the second output (chan_mean.c) */
    struct {
        int on, last;
        int64_t n, c, sp;
        size_t part_off; /* on several threads: threads x c floats of partial sums in the workspace */
    } pool;
} il_dnnl_state;

/* Layouts (dnnl_layout.c): the native descriptor of a rank 3-5 float32 tensor (the layout the
 * plan calls blocked: oneDNN's own choice on this CPU, channels-last or nChw16c); whether a
 * primitive descriptor has a real implementation (not oneDNN's reference loops, which any layout
 * gets but hundreds of times slower); the layout the plan holds a tensor in (native or plain);
 * the reorders between X's and Y's layouts and the primitive's src and dst where they differ
 * (their buffers laid in the workspace from *off); and at run time, X in the primitive's layout
 * (src: X itself, or reordered into the workspace), where the primitive writes (Y, or the
 * workspace) and Y's reorder after it. */
il_status il_dnnl_native_md(const il_kctx *c, dnnl_memory_desc_t *md, int rank, const int64_t *dims);
int il_dnnl_fast_impl(const_dnnl_primitive_desc_t pd);
/* Whether the native layout is channels-last (acb, acdb, acdeb), as on this project's machines. */
int il_dnnl_native_last(void);
il_status il_dnnl_user_md(const il_kctx *c, dnnl_memory_desc_t *md, int blocked, int rank, const int64_t *dims);
il_status il_dnnl_io_make(const il_kctx *c, il_dnnl_state *s, const dnnl_memory_desc_t *xuser,
                          const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *yuser,
                          const dnnl_memory_desc_t *dst, size_t *off);
il_status il_dnnl_src(const il_kctx *c, il_dnnl_state *s, void **src);
/* The same for an X at x, a Y at y (one image of a batch run image by image). */
il_status il_dnnl_src_at(const il_kctx *c, il_dnnl_state *s, void *x, void **src);
void *il_dnnl_dst_at(const il_kctx *c, const il_dnnl_state *s, void *y);
il_status il_dnnl_dst_done_at(const il_kctx *c, il_dnnl_state *s, void *dst, void *y);
/* Whether the reorder from a primitive's nChw16c dst `from` into Y `to` is the copy loop, which can
 * then add a residual Z (dense channels-last) on the way: il_dnnl_dst_done_z, Y = act(dst + Z). */
int il_dnnl_ycopy_z_ok(const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to);
il_status il_dnnl_dst_done_z(const il_kctx *c, il_dnnl_state *s, void *dst, void *y, const void *z);
/* A kernel whose one primitive pd reads X (SRC) and writes Y (DST), a pool say: its step with
 * those arguments and the scratchpad, the reorders between the layouts the plan holds X and Y in
 * (xuser, yuser) and pd's, the workspace laid out; il_dnnl_io_run is its run. */
il_status il_dnnl_io_prim(il_kctx *c, il_dnnl_state *s, const_dnnl_primitive_desc_t pd,
                          const dnnl_memory_desc_t *xuser, const dnnl_memory_desc_t *yuser, size_t *workspace);
il_status il_dnnl_io_run(il_kctx *c);
void *il_dnnl_dst(const il_kctx *c, const il_dnnl_state *s);
il_status il_dnnl_dst_done(const il_kctx *c, il_dnnl_state *s, void *dst);

/* The threads a node of `macs` multiply-accumulates runs on: c->threads, or one below
 * IL_DNNL_SERIAL_MACS, where waking a second thread costs more than it saves. Sets them at once
 * (fill calls it before it creates the primitive, whose work split depends on it). */
void il_dnnl_use_threads(const il_kctx *c, il_dnnl_state *s, double macs);
/* That bound for the wait policy of this process (INFERLAB_DNNL_SERIAL_MACS replaces it). */
double il_dnnl_serial_macs(void);
/* An INFERLAB_DNNL_* switch of the environment, read when a kernel is prepared: on unless it is 0. */
int il_dnnl_env_on(const char *name);
/* 16M MACs, about 200 us of one AVX-512 core, where idle threads sleep (4M at first). Measured
 * here (2 threads, load 10 on 2 cores, p50 of 300 runs, -O2, before layouts were kept blocked):
 * tiny_resnet 0.152 ms with every node threaded, 0.062 with the 4M rule; tiny_mobilenet_v2
 * 0.958 -> 0.321; fmnist_teacher 0.520 -> 0.423. Where idle threads spin, a second thread
 * answers at once and pays sooner: fmnist_teacher (blocked layouts, 2 threads, `run --repeat
 * 1000`, load 11) spinning 0.173-0.175 ms with every node threaded (bound 1e5), 0.183 at 1e6,
 * 0.203-0.215 at 4e6, 0.275 serial; sleeping 0.314-0.458 threaded, 0.299 at 4e6, 0.276-0.294
 * serial. Raised to 16e6 with Winograd in (fmnist_teacher's 7.2M-MAC 3x3 convs threaded):
 * fmnist_teacher -O2, 2 threads sleeping, `run --repeat 1000`, load about 7: 0.49 / 0.83 ms at
 * 4e6, 0.320 / 0.318 ms at 16e6 (one thread: 0.317 ms); tiny_mobilenet_v2 batch 8 unchanged
 * (0.852 / 0.833 against 0.841 / 0.834 ms). Sleeping threads are what bench --wait auto picks on
 * a busy machine, where the second core is seldom free when a node wakes it. */
#define IL_DNNL_SERIAL_MACS 16e6
#define IL_DNNL_SERIAL_MACS_SPIN 5e5
/* The smallest convolution the Winograd kernel takes (dnnl_conv.c): below it the reorders into
 * its layout and back are a visible share of the saving. */
#define IL_DNNL_WINO_MACS 2e6
/* Winograd F(4x4,3x3) (oneDNN's jit_wino_4x3) instead of the F(2x2,3x3) it picks at batch 1,
 * where its transformed weight (C x M x 36 floats) is at most this many bytes and the output
 * plane at least IL_DNNL_WINO4_PIXELS: it multiplies 4x less than direct convolution against
 * 2.25x, but its weight is 4x the direct one, read from memory at every layer of a network
 * (dnnl_conv.c gives the figures). */
#define IL_DNNL_WINO4_BYTES (1.5 * 1024 * 1024)
#define IL_DNNL_WINO4_PIXELS 784
/* Where each thread runs at least IL_DNNL_WINO4_REUSE images of a batch (one after the other, the
 * weight then read from cache after the first), these bounds instead. */
#define IL_DNNL_WINO4_REUSE 4
#define IL_DNNL_WINO4_BYTES_REUSED (12.0 * 1024 * 1024)
#define IL_DNNL_WINO4_PIXELS_REUSED 196
/* ...and only from this many input channels: with fewer, the transforms outweigh the 4x3
 * kernel's smaller product (SqueezeNet's 16 -> 64 at 55x55, dnnl_conv.c). */
#define IL_DNNL_WINO4_MIN_C 32
/* Winograd nodes of at most this many input channels run wino_small.c's (dnnl_conv_own.c wsmall_fits):
 * ResNet's 64 -> 64 at 56x56 lost there (0.87-0.89 ms against oneDNN's F(4x4,3x3) 0.71-0.78, one
 * thread, node minimums of 30 runs); SqueezeNet's 64 -> 256 and 48 -> 192 at 13x13 gained 2-6%. */
#define IL_WSMALL_MAX_C 32
/* A convolution runs image by image once its batch's input and output together reach this many
 * bytes (dnnl_conv.c): about what the L2 of one core holds. On more threads the images are
 * shared out among them, each on a one-thread primitive. */
#define IL_DNNL_IMAGE_BYTES (2.0 * 1024 * 1024)

/* ScaledConv (dnnl_sconv.c): how each image's scale is applied (s->sc from the node's geometry
 * g and X's layout xuser; nothing unless s->sc.on), and at run time the scale sv of one image
 * into the weight w or the image x (by s->sc.by_w), written to out. */
il_status il_dnnl_sconv_plan(il_kctx *c, il_dnnl_state *s, const il_conv_geom *g, const dnnl_memory_desc_t *xuser);
void il_dnnl_sconv_apply(const il_dnnl_state *s, const float *w, const float *x, const float *sv, float *out);

/* Max pool output row oh of one channels-last image x of geometry g into y (dnnl_pool.c's native
 * kernel; ConvPool pools its bands with it, a band being an image of that band's rows). */
void il_dnnl_pool_row(const il_conv_geom *g, const float *x, float *y, int64_t oh);

/* The il_kernel release of every oneDNN kernel. */
void il_dnnl_release(void *state);
/* The shared prepare: a zeroed state, fill(c, state, workspace, arg) with oneDNN's threads set to
 * c->threads, the state released when fill fails. */
typedef il_status (*il_dnnl_fill_fn)(il_kctx *c, il_dnnl_state *s, size_t *workspace, int arg);
il_status il_dnnl_prepare(il_kctx *c, void **state, size_t *workspace, il_dnnl_fill_fn fill, int arg);
/* The primitive descriptor of op descriptor desc with a user-managed scratchpad (the plan's
 * workspace) and post-ops: a sum (dst += what it held) when sum is set, then act (NULL: none).
 * what names the primitive in the error. */
il_status il_dnnl_pd(const il_kctx *c, const_dnnl_op_desc_t desc, int sum, const il_act *act,
                     dnnl_primitive_desc_t *pd, const char *what);
/* The same with a binary add of a tensor of layout add (NULL: none) after the sum: read from the
 * primitive's argument DNNL_ARG_ATTR_MULTIPLE_POST_OP(sum ? 1 : 0) | DNNL_ARG_SRC_1. */
il_status il_dnnl_pd_add(const il_kctx *c, const_dnnl_op_desc_t desc, int sum, const dnnl_memory_desc_t *add,
                         const il_act *act, dnnl_primitive_desc_t *pd, const char *what);
/* The same, taking oneDNN's first implementation whose name holds prefer ("wino_4x3") where
 * it has one for desc, else its first as above (prefer NULL: the first). */
il_status il_dnnl_pd_pick(const il_kctx *c, const_dnnl_op_desc_t desc, int sum, const dnnl_memory_desc_t *add,
                          const il_act *act, const char *prefer, dnnl_primitive_desc_t *pd, const char *what);
/* Whether the node's activation attributes parse and oneDNN has post-ops for them. */
int il_dnnl_act_ok(const il_kctx *c);

/* A reorder from src to dst layouts as a step with SRC and DST arguments. */
il_status il_dnnl_reorder_make(const il_kctx *c, il_dnnl_step *st, const dnnl_memory_desc_t *src,
                               const dnnl_memory_desc_t *dst);
/* Reorder the bytes at from (layout src) into a new 64-byte aligned buffer of layout dst, once
 * (prepacking a constant weight); *out is freed with free(). */
il_status il_dnnl_pack(const il_kctx *c, const dnnl_memory_desc_t *src, const void *from,
                       const dnnl_memory_desc_t *dst, void **out);

/* prepare of a convolution node (native layout, or Winograd where wino) that inferlab's own
 * product computes better than the primitive (dnnl_conv_own.c): 1 with *st set when it took the
 * node, 0 when the primitive stays. */
int il_dnnl_conv_own(il_kctx *c, il_dnnl_state *s, int wino, const il_conv_geom *g, const il_act *act,
                     size_t *workspace, il_status *st);

/* The primitive's implementation name ("jit:avx512_core", "gemm:jit", "ref:any"), for
 * `build --verbose` style diagnostics and the choice between layouts. */
const char *il_dnnl_impl(const_dnnl_primitive_desc_t pd);

/* Bytes rounded up to a cache line: the parts of one workspace stay 64-byte aligned. */
static inline size_t il_dnnl_align(size_t n) { return (n + 63) & ~(size_t)63; }
/* The workspace's first 64-byte aligned address (prepare asks for 64 bytes more). */
static inline char *il_dnnl_ws(const il_kctx *c) {
    return (char *)(((uintptr_t)c->workspace + 63) & ~(uintptr_t)63);
}

#endif
#endif
