/*
 * quant_int.h - what the files of quantize/ share and nobody else sees: the quantization plan
 * of a graph (plan.c), the context calibration fills (rewrite.c) and the helpers that make
 * Q/DQ nodes and initializers.
 */
#ifndef IL_QUANT_INT_H
#define IL_QUANT_INT_H

#include "quantize.h"

#include <stdlib.h>

enum { QN_NO = 0, QN_YES = 1, QN_FOLDED = 2 };   /* il_qplan.qnode */
enum { TQ_NO = 0, TQ_OWN = 1, TQ_SHARED = 2 };   /* il_qplan.tq */

typedef struct il_qplan {
    int *qnode; /* per node: QN_* (QN_FOLDED: a Relu/Clip its producer's output range absorbs) */
    int *fold;  /* per node: the Relu/Clip folded into its output, or -1 */
    int *tq;    /* per value: TQ_* */
    int *share; /* per value: TQ_SHARED takes this value's scale and zero point */
} il_qplan;

/* The plan for g (sorted, shapes s) with the nodes k where fp32[k] is set kept FP32 (fp32 may
 * be NULL); asym: uint8 activations (Relu folding needs them). all: every tensor any exclusion
 * could quantize (what calibration observes), exclusions ignored. */
il_status il_qplan_make(const il_graph *g, const il_shapes *s, const unsigned char *fp32, int asym, int all,
                        il_qplan *p);
void il_qplan_free(il_qplan *p);
int il_qplan_is_compute(const il_node *n); /* Conv, Gemm, MatMul */

struct il_quant_ctx {
    il_graph *g;          /* the prepared FP32 model, sorted */
    il_shapes *shapes;
    il_quant_opts o;
    char method[64], calib[256], cache[1024];
    const il_calibrator *cal;
    int64_t samples;
    int n_t;              /* tensors observed */
    char **tnames;
    il_calib_hist *hist;
    void **states;        /* the calibrator's own, when it observes */
    int n_layers;
    const char **layers;  /* names of the Conv/Gemm/MatMul nodes a plan quantizes */
    int *layer_node;      /* their node indices */
    int *layer_fold;      /* the Relu/Clip folded into each, or -1 */
    int cache_hit;
    int per_channel;      /* the model's opset allows per-axis parameters (13) */
};

/* A model prepared to run on calibration data in batches (data.c): the plan and the extra
 * outputs; step runs samples [first, first + count) and hands back every output (the model's
 * own, then the extra ones), owned by the runner until the next step. */
typedef struct il_qrun il_qrun;
il_status il_qrun_open(const il_graph *g, const char *const *extra, int n_extra, int64_t batch, int threads,
                       il_qrun **out);
il_status il_qrun_step(il_qrun *r, const il_calib_data *d, int64_t first, int64_t count, const il_tensor *const **outs,
                       int *n_outs);
int64_t il_qrun_batch(const il_qrun *r);
int64_t il_qrun_usable(const il_qrun *r, int64_t n); /* whole batches for a fixed-batch model */
void il_qrun_close(il_qrun *r);
/* il_quant_apply with the nodes to keep FP32 as a mask over q->g's nodes (rewrite.c). */
il_status il_quant_apply_mask(const il_quant_ctx *q, const unsigned char *fp32, il_graph **out, il_quant_stats *st);
/* SQNR (dB) of b's output 0 against a's on the first n samples of d (analyze.c). */
il_status il_quant_output_sqnr(const il_graph *a, const il_graph *b, const il_calib_data *d, int64_t n, int threads,
                               double *sqnr);

#endif
