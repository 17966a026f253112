/*
 * quantize.h - INT8 post-training quantization (docs/quantize.md): calibration data, observers
 * and calibrators, the calibration cache, the QDQ rewrite, dynamic quantization, per-layer
 * error analysis and accuracy-aware tuning.
 *
 * The flow: il_quant_calibrate prepares a copy of an FP32 model (BatchNormalization folded into
 * the convolutions, fused ops lowered), decides which tensors a QDQ model would quantize, runs
 * the model on a calibration set and keeps a histogram of each such tensor (il_calib_hist).
 * il_quant_apply turns the prepared model into the standard ONNX QDQ form: weights as int8
 * initializers behind DequantizeLinear, activations through QuantizeLinear -> DequantizeLinear,
 * biases as int32, each activation's range chosen by a calibrator from its histogram. The QDQ
 * graph runs as it is (the reference); passes fuse its Q -> op -> DQ patterns into integer ops.
 * il_quant_dynamic is the calibration-free variant for MatMul/Gemm (DynamicQuantizeLinear +
 * MatMulInteger, as ONNX Runtime's quantize_dynamic).
 *
 * Calibrators are registered instances of il_calibrator (minmax, percentile, entropy, mse built
 * in); a plugin registers more from its il_plugin_init (passes/passes.h's plugin ABI).
 *
 * Ownership: functions returning a pointer through an out argument hand it to the caller, who
 * frees it with the matching _free; graphs given as const are not changed; il_calibrator structs
 * must outlive the process (static data).
 */
#ifndef IL_QUANTIZE_H
#define IL_QUANTIZE_H

#include "engine/engine.h"

/* ---------------------------------------------------------------- calibration data */

/* Samples for a model: per graph input, every sample stacked along dim 0; labels when the set
 * has them. */
typedef struct il_calib_data {
    char spec[256];
    int n_inputs;
    il_tensor **x;
    int64_t n;
    int32_t *y;  /* n labels, or NULL */
} il_calib_data;

/* SPEC is one of
 *   random:N                   N samples of random inputs (il_graph_fill_input's ranges)
 *   DIR                        a folder of .npy files, sorted by name, each one sample (the
 *                              model input's shape without the batch dim) or a batch of them
 *                              (single-input models; the values as the model takes them)
 *   SET[:train|:test][:N]      a labelled data set as elsewhere in the CLI (distill/distill.h:
 *                              fashion-mnist, mnist:DIR, cifar10:DIR, folder:DIR), with the
 *                              model's preprocessing from its metadata applied
 * test: the split when SPEC names none (0 train, 1 test). from_end: keep the last N samples
 * instead of the first (a validation split apart from the calibration samples). binds/batch
 * size symbolic dims other than the batch for random inputs (unbound ones: 1). */
il_status il_calib_data_load(const il_graph *g, const char *spec, int test, int from_end, const il_bind *binds,
                             int n_binds, il_calib_data **out);
void il_calib_data_free(il_calib_data *d);
/* The default calibration set of a model: "fashion-mnist:train:512" when it takes 1x28x28
 * float images (or 784 values), else "random:64". */
const char *il_calib_default_spec(const il_graph *g);
/* The default validation set matching il_calib_default_spec: the last 1000 training samples of
 * Fashion-MNIST (never among the first 512 that calibrate), else random:256. */
const char *il_calib_default_val(const il_graph *g, int *from_end);

/* Run g on d in batches of `batch` (0: 32, or the model's fixed batch), with the values named
 * in extra as additional outputs, calling fn after each batch with every output (the graph's
 * own first, then extra in order) and the samples' range. */
typedef il_status (*il_quant_batch_fn)(void *ctx, const il_tensor *const *outs, int n_outs, int64_t first,
                                       int64_t count);
il_status il_quant_run_batches(const il_graph *g, const il_calib_data *d, const char *const *extra, int n_extra,
                               int64_t batch, int threads, il_quant_batch_fn fn, void *ctx);

/* ---------------------------------------------------------------- observers and calibrators */

#define IL_CALIB_BINS 2048 /* histogram bins over [0, max |x|], as TensorRT's entropy calibrator */

/* What the observer keeps of one tensor over the calibration set: its range and a histogram.
 * The histogram spans [lo, hi] with nbins bins: [0, max] (IL_CALIB_BINS) when no value is
 * negative, [min, 0] (IL_CALIB_BINS) when none is positive, else [-a, a] with a = max |x|
 * (2 x IL_CALIB_BINS, so folding it gives IL_CALIB_BINS bins of |x|). */
typedef struct il_calib_hist {
    char *name;
    double min, max;
    int64_t n;      /* values observed */
    double lo, hi;
    int nbins;      /* 0 until the histogram pass ran */
    double *count;
} il_calib_hist;

typedef struct il_calib_opts {
    double percentile; /* the percentile calibrator's (99.99 when 0) */
    int levels;        /* quantization steps over [0, T] of one side: 128 for int8 symmetric and for
                          each side of a two-sided uint8 range, 256 for uint8 on a non-negative
                          tensor (set by the rewrite) */
    int symmetric;     /* the range will be [-T, T] (int8): one threshold on |x| */
} il_calib_opts;

/* A calibrator: from a tensor's observations, the range [lo, hi] its quantization covers.
 * observe (optional) sees the raw values too, in the first pass over the calibration set, with
 * per-tensor state from begin (released by end); the built-ins read only the histogram. */
typedef struct il_calibrator {
    const char *name;    /* for --method */
    const char *summary; /* one line */
    int needs_hist;      /* 0: min/max suffice (no second pass over the data) */
    il_status (*range)(const il_calib_hist *h, void *state, const il_calib_opts *o, double *lo, double *hi);
    void *(*begin)(const char *tensor);
    void (*observe)(void *state, const float *x, int64_t n);
    void (*end)(void *state);
} il_calibrator;

/* Register a calibrator (plugins call this from il_plugin_init). IL_ERR_INVALID when the name is
 * taken or empty or range is NULL. */
il_status il_calib_register(const il_calibrator *c);
const il_calibrator *il_calib_find(const char *name);
const il_calibrator *const *il_calib_all(int *n);

/* One side of a histogram as IL_CALIB_BINS bins over [0, a] (a = max |x|): side 1 the positive
 * values, -1 the negative ones mirrored, 0 both folded (|x|); *width the bin width. Returns 0
 * when that side holds nothing. */
int il_calib_side_hist(const il_calib_hist *h, int side, double *out, double *width);
/* Add values to a histogram: first_pass updates min/max/n; else counts into the bins (laid out
 * from min/max on the first call). */
void il_calib_hist_add(il_calib_hist *h, const float *x, int64_t n, int first_pass);
void il_calib_hist_free(il_calib_hist *h, int n); /* an array of n */

/* Observe the named tensors of g on d: pass 1 min/max (and the calibrator's observe, when it
 * has one), pass 2 the histograms when hist is set. *out: n entries in names' order. */
il_status il_calib_collect(const il_graph *g, const il_calib_data *d, const char *const *names, int n, int hist,
                           const il_calibrator *c, void **states, int threads, il_calib_hist **out);

/* The calibration cache: histograms of a model's tensors on a calibration set, in an ONNX file
 * (one float64 initializer per tensor: min, max, n, lo, hi, then the bins; the key in the
 * metadata). load returns IL_ERR_INVALID "stale" when the key differs (another model or set);
 * every tensor in names must be present with a histogram. */
il_status il_calib_cache_load(const char *path, const char *key, const char *const *names, int n,
                              il_calib_hist **out);
il_status il_calib_cache_save(const char *path, const char *key, const il_calib_hist *h, int n);

/* ---------------------------------------------------------------- the QDQ rewrite */

typedef struct il_quant_opts {
    const char *method;      /* a registered calibrator; NULL: "entropy" */
    const char *calib;       /* calibration SPEC; NULL: il_calib_default_spec */
    double percentile;       /* percentile calibrator (0: 99.99) */
    int per_tensor;          /* weights per tensor instead of per output channel */
    int symmetric;           /* activations int8 symmetric instead of uint8 asymmetric */
    const char *cache;       /* calibration cache file (NULL: none) */
    const il_bind *binds;    /* symbolic dims of random calibration inputs */
    int n_binds;
    int threads;             /* 0: all cores */
    FILE *log;               /* progress lines (NULL: none) */
} il_quant_opts;

typedef struct il_quant_ctx il_quant_ctx;

/* Whether g holds quantization already (QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear,
 * integer matmuls and convolutions, ai.inferlab integer ops): such a model is not quantized
 * again. */
int il_quant_is_quantized(const il_graph *g);

/* Prepare g's FP32 copy and calibrate every tensor a QDQ model of it can quantize. */
il_status il_quant_calibrate(const il_graph *g, const il_quant_opts *o, il_quant_ctx **out);
void il_quant_free(il_quant_ctx *q);
/* The prepared FP32 graph the QDQ models are made from (owned by q). */
const il_graph *il_quant_fp32(const il_quant_ctx *q);
/* The calibration set it used (the default when none was given). */
const char *il_quant_calib_spec(const il_quant_ctx *q);
/* Whether the last calibration came from the cache file. */
int il_quant_cache_hit(const il_quant_ctx *q);

typedef struct il_quant_stats {
    int quantized;   /* nodes running between DQ and Q */
    int fp32;        /* compute nodes (Conv, Gemm, MatMul) left in FP32 */
    int relu_folded; /* Relu/Clip removed into their producer's output range */
    int tensors;     /* activations quantized */
    int weights;     /* weights quantized */
    int per_channel; /* 1 when weights are per output channel */
} il_quant_stats;

/* A new QDQ graph from the context; nodes named in exclude (n of them) stay FP32. The graph's
 * metadata gets inferlab.quantize, the recipe as one JSON object. */
il_status il_quant_apply(const il_quant_ctx *q, const char *const *exclude, int n_exclude, il_graph **out,
                         il_quant_stats *st);
/* Names of the nodes il_quant_apply would quantize that have weights (Conv, Gemm, MatMul), in
 * graph order: the layers --exclude and --target-drop choose among. Owned by q. */
int il_quant_layers(const il_quant_ctx *q, const char *const **names);

/* Dynamic quantization of g in place: every MatMul/Gemm with a constant 2-D weight (not
 * excluded) becomes DynamicQuantizeLinear + MatMulInteger + Cast + Mul (+ Add for a bias); the
 * weight int8, per column unless per_tensor. *n_done: nodes rewritten. */
il_status il_quant_dynamic(il_graph *g, const char *const *exclude, int n_exclude, int per_tensor, int *n_done);

/* ---------------------------------------------------------------- accuracy tools */

/* One quantized tensor compared between the FP32 model and the QDQ model on the same inputs:
 * SQNR = 10 log10(sum x^2 / sum (x - y)^2) in dB, and the cosine similarity. */
typedef struct il_quant_layer {
    char tensor[128];
    char node[128]; /* its producer in the FP32 model */
    char op[32];
    double sqnr, cosine;
} il_quant_layer;

/* Every tensor qdq quantizes, ranked worst (lowest SQNR) first. *out has *n entries. */
il_status il_quant_analyze(const il_graph *fp32, const il_graph *qdq, const il_calib_data *d, int threads,
                           il_quant_layer **out, int *n);

/* Append an analysis (layers in rank order) to table quant_analysis of the bench results database
 * at db_path (created with the results schema when missing), where `inferlab report` draws it. */
il_status il_quant_analysis_save(const char *db_path, const char *model, const char *model_sha256, const char *method,
                                 const il_quant_layer *l, int n);

/* Top-1 accuracy of g on labelled d, or - without labels - top-1 agreement with ref (which
 * must then be given) in *acc (a fraction). */
il_status il_quant_top1(const il_graph *g, const il_graph *ref, const il_calib_data *d, int threads, double *acc);

typedef struct il_quant_tune_result {
    double fp32, int8;   /* accuracy (or agreement) on the validation set, fractions */
    il_quant_stats stats; /* of the final QDQ model */
    int n_kept;
    char **kept;         /* layers kept in FP32, in the order they were kept; caller frees each and the array */
} il_quant_tune_result;

/* --target-drop: starting from the exclusions given, keep the layer whose quantization alone
 * costs most (lowest output SQNR when only it is quantized) in FP32, with the Relu folded into
 * it, one at a time, until the accuracy on val is within target_points of FP32's. *out gets the
 * final QDQ graph, whose recipe lists every node kept FP32. */
il_status il_quant_tune(const il_quant_ctx *q, const il_calib_data *val, double target_points,
                        const char *const *exclude, int n_exclude, int threads, FILE *log, il_graph **out,
                        il_quant_tune_result *r);

/* Top-1 agreement and cosine between two models' first output on the first n samples (0: 1000)
 * of the model's default evaluation data (Fashion-MNIST test images for 1x28x28 models, else
 * random inputs with a fixed seed): the check `opt --verify` makes after a lossy pass. */
il_status il_quant_agreement(const il_graph *want, const il_graph *got, int64_t n, double *agree,
                             double *cosine);

#endif
