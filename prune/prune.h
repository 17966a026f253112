/*
 * prune.h - magnitude pruning: which layers are prunable, criteria that score their weights
 * (built in or from a plugin), the scopes that turn scores into zeros (one sparsity per layer,
 * one global threshold across layers, N:M along the reduction dimension), the masks that
 * fine-tuning holds fixed, Zhu & Gupta's gradual schedule, the per-layer sensitivity scan and
 * the recipe written into the pruned model's metadata.
 *
 * Pruning here zeroes weights in the initializers of Conv, Gemm and MatMul; the model keeps its
 * shapes (structured pruning that removes channels for real is prune/channel.c). Each prunable
 * weight is seen as a matrix [rows = output units, cols = reduction length]:
 *   Conv   W [Cout, Cin/group, kH, kW]     rows Cout, cols Cin/group*kH*kW
 *   Gemm   B [N, K] (transB=1) or [K, N]   rows N, cols K
 *   MatMul B [K, N] (rank 2, the constant)  rows N, cols K   (or A [M, K] when A is the constant)
 * N:M groups are m consecutive elements of one row along cols; filter norms score rows.
 *
 * A criterion scores a weight; a higher score means more important (kept). Plugins register
 * criteria from il_plugin_init (the pass plugin entry point, passes/passes.h):
 *
 *     static il_status score(const il_prune_criterion *c, const il_prune_layer *l, const il_tensor *w,
 *                            double *scores) { ... one score per element (or per row) ... }
 *     static const il_prune_criterion crit = {IL_PRUNE_ABI, "my-score", "what it measures",
 *                                             IL_PRUNE_PER_ELEMENT, score, NULL};
 *     il_status il_plugin_init(int abi) { IL_PLUGIN_CHECK_ABI(abi); return il_prune_register_criterion(&crit); }
 *
 * passes/examples/prune_random.c is a worked example (the random baseline).
 *
 * Ownership: il_prune_find_layers returns an array freed with il_prune_layers_free;
 * il_prune_report's contents are freed with il_prune_report_free; il_prune_recipe_json returns
 * a malloc'd string. Criteria given to il_prune_register_criterion must outlive the process.
 * Errors: il_status and il_errmsg(), as in the engine.
 */
#ifndef IL_PRUNE_H
#define IL_PRUNE_H

#include "../distill/distill.h"
#include "../engine/engine.h"
#include "channel.h"

/* ---------------------------------------------------------------- prunable layers */

typedef struct il_prune_layer {
    char *name;         /* the node's name (its weight's name when the node has none) */
    char *weight;       /* the weight initializer's value name */
    const char *op;     /* "Conv", "Gemm", "MatMul" (the graph's string) */
    int node, value;    /* node index, weight value index */
    int64_t rows, cols; /* output units x reduction length */
    int64_t rs, cs;     /* element (r, c) lies at flat index r*rs + c*cs of the weight */
} il_prune_layer;

/* The prunable layers of g in topological order (a weight shared by several nodes once):
 * live Conv/Gemm/MatMul nodes whose weight operand is a float initializer. */
il_status il_prune_find_layers(const il_graph *g, il_prune_layer **out, int *n);
void il_prune_layers_free(il_prune_layer *l, int n);

/* ---------------------------------------------------------------- criteria */

#define IL_PRUNE_ABI 1

typedef enum { IL_PRUNE_PER_ELEMENT = 0, IL_PRUNE_PER_ROW = 1 } il_prune_unit;

typedef struct il_prune_criterion {
    int abi;               /* IL_PRUNE_ABI */
    const char *name;      /* lower-case-with-dashes */
    const char *about;     /* one line for `inferlab prune --list` */
    il_prune_unit unit;    /* a score per element (flat weight order) or per row (output unit) */
    /* Fill scores (numel or rows entries) for weight w of layer l. */
    il_status (*score)(const struct il_prune_criterion *c, const il_prune_layer *l, const il_tensor *w,
                       double *scores);
    void *user;
} il_prune_criterion;

/* Built in: "magnitude" |w| per element; "l1-filter" / "l2-filter" the L1 / L2 norm of each
 * row (a whole filter or output unit is zeroed). IL_ERR_INVALID for a taken or bad name. */
il_status il_prune_register_criterion(const il_prune_criterion *c);
const il_prune_criterion *il_prune_find_criterion(const char *name);
const il_prune_criterion *const *il_prune_criteria(int *n);

/* ---------------------------------------------------------------- pruning */

typedef enum {
    IL_PRUNE_LAYERWISE = 0, /* each layer loses its own fraction (uniform, or per layer) */
    IL_PRUNE_GLOBAL = 1,    /* one score threshold across every pruned layer */
    IL_PRUNE_NM = 2         /* keep nm_n of every nm_m consecutive weights along the reduction */
} il_prune_scope;

typedef struct il_prune_opts {
    const char *criterion;            /* NULL: "magnitude" */
    il_prune_scope scope;
    double sparsity;                  /* fraction in [0, 1) of each layer (LAYERWISE) or of all (GLOBAL) */
    int nm_n, nm_m;                   /* NM: 0 < nm_n < nm_m */
    const char *const *exclude;       /* node or weight names, "first", "last" (prunable layer order) */
    int n_exclude;
    const char *const *layer_names;   /* LAYERWISE: per-layer sparsity overriding `sparsity` */
    const double *layer_sparsity;
    int n_layer_sparsity;
} il_prune_opts;

typedef struct il_prune_layer_stat {
    char *name, *weight;
    const char *op;        /* a string literal */
    int64_t numel, zeros;  /* zeros: exact zeros in the weight after pruning */
    double target;         /* the fraction asked of this layer (GLOBAL: the global one) */
    int excluded;          /* left dense: asked (--exclude) or not prunable this way (see why) */
    char why[96];
    il_tensor *mask;       /* uint8, the weight's shape, 1 = kept; NULL when excluded */
} il_prune_layer_stat;

typedef struct il_prune_report {
    int n;
    il_prune_layer_stat *layers;
    int64_t numel, zeros;  /* over every prunable layer, excluded ones included */
    double threshold;      /* GLOBAL: the score at and below which weights were removed */
} il_prune_report;

/* Zero weights of g in place as o asks; r (may be NULL) says what was done and holds the masks.
 * Exactly round(s * n) weights of each pruned layer (of all pruned layers, GLOBAL) are removed,
 * the lowest scores first, ties by position. Errors leave g unchanged. */
il_status il_prune_apply(il_graph *g, const il_prune_opts *o, il_prune_report *r);
/* Recount r's zeros from g's current weights (after fine-tuning, say). */
void il_prune_recount(const il_graph *g, il_prune_report *r);
void il_prune_report_free(il_prune_report *r);
static inline double il_prune_sparsity(const il_prune_report *r) {
    return r->numel ? (double)r->zeros / (double)r->numel : 0;
}

/* Zhu & Gupta (2017): s_t = s_f + (s_i - s_f) (1 - t/n)^3 for step t of n (t clamped to [0, n]). */
double il_prune_gradual_sparsity(double s_i, double s_f, int t, int n);

/* ---------------------------------------------------------------- fine-tuning */

typedef struct il_prune_finetune_opts {
    il_fit_opts fit;         /* the trainer's loop: epochs per round, batch, optimizer, KD teacher */
    int gradual_steps;       /* 0: one-shot (prune, then fine-tune); n: Zhu & Gupta in n rounds */
    double initial_sparsity; /* s_i of the gradual schedule (0) */
    int verbose;             /* a line per round on stdout */
} il_prune_finetune_opts;

/* Prune *g as o asks and fine-tune it on d (preprocessing p) with the masks held fixed (zeroed
 * weights stay zero after every optimizer step). Gradual: round t = 1..n prunes to
 * il_prune_gradual_sparsity(s_i, target, t, n) (every layer's target, LAYERWISE or GLOBAL) and
 * fine-tunes on the t-th of n equal slices of d. *g is replaced by the fine-tuned model and r
 * (may be NULL) describes it. */
il_status il_prune_finetune(il_graph **g, const il_prune_opts *o, const il_prune_finetune_opts *f, const il_dataset *d,
                            const il_preproc *p, il_prune_report *r);

/* Fine-tune *g on d (preprocessing p) with the masks of r held fixed (r NULL: no masks, e.g. a
 * channel-pruned model whose removed channels are gone); *g is replaced by the trained model. */
il_status il_prune_train(il_graph **g, const il_prune_report *r, const il_fit_opts *fo, const il_dataset *d,
                         const il_preproc *p, int verbose);

/* Channel pruning (channel.h) on the gradual schedule: round t = 1..n zeroes (IL_CHANNEL_MASK)
 * il_prune_gradual_sparsity(s_i, ratio, t, n) of every unit's channels, the earlier rounds' among
 * them, and fine-tunes on the t-th of n slices of d with everything zeroed held at 0; then the
 * zeroed channels are removed for real (the function does not change) and r (may be NULL)
 * describes the removal. One round (gradual_steps 0 or 1) is one-shot pruning with fine-tuning. */
il_status il_prune_channels_gradual(il_graph **g, float ratio, int norm, const char *const *exclude, int n_exclude,
                                    const il_prune_finetune_opts *f, const il_dataset *d, const il_preproc *p,
                                    il_channel_report *r);

/* ---------------------------------------------------------------- recipe */

typedef struct il_prune_recipe {
    const char *method;     /* "magnitude", "global", "nm", "scan", "channel" */
    const char *schedule;   /* "oneshot" or "gradual" */
    int gradual_steps;
    int finetune_epochs;
    const char *data, *teacher; /* fine-tuning's data spec and KD teacher (NULL: none) */
    double lr;                  /* fine-tuning's peak learning rate (cosine schedule); 0: not recorded */
    const char *augment;        /* fine-tuning's augmentation (crop, flip, crop+flip); NULL: none */
} il_prune_recipe;

/* The recipe as one JSON object: method, criterion, sparsity asked and achieved (global and per
 * layer), nm, schedule, fine-tuning epochs, excluded layers. Caller frees. */
char *il_prune_recipe_json(const il_prune_opts *o, const il_prune_report *r, const il_prune_recipe *rc);
/* Write it into g's metadata under "inferlab.prune". */
il_status il_prune_set_recipe(il_graph *g, const il_prune_opts *o, const il_prune_report *r,
                              const il_prune_recipe *rc);

/* Add the schedule, fine-tuning epochs, data and teacher of rc to the recipe already in g's
 * metadata (channel pruning writes its own, prune/channel.h); IL_ERR_INVALID when there is none. */
il_status il_prune_extend_recipe(il_graph *g, const il_prune_recipe *rc);

/* ---------------------------------------------------------------- sensitivity scan */

/* Accuracy of a model, in [0, 1] (the CLI evaluates on a labelled set). */
typedef il_status (*il_prune_eval_fn)(const il_graph *g, void *ctx, double *accuracy);

typedef struct il_prune_scan_point {
    char *layer;            /* the node's name */
    const char *op;
    int64_t numel;
    double sparsity, accuracy;
} il_prune_scan_point;

/* Each prunable layer of g not excluded by o, pruned alone (o's criterion, LAYERWISE) at every
 * level, evaluated; the dense accuracy in *dense. *out has n_layers * n_levels points in layer
 * order, free with il_prune_scan_free. progress (may be NULL) is called after each point. */
il_status il_prune_scan(const il_graph *g, const il_prune_opts *o, const double *levels, int n_levels,
                        il_prune_eval_fn eval, void *ctx, double *dense, il_prune_scan_point **out, int *n_out,
                        void (*progress)(const il_prune_scan_point *p, void *ctx));
void il_prune_scan_free(il_prune_scan_point *p, int n);
/* Per layer, the highest scanned sparsity whose accuracy is at most max_drop below dense (0 when
 * none is); names and sparsities point into / are allocated for the caller (free *sparsity and
 * *names, not the strings). */
il_status il_prune_scan_pick(const il_prune_scan_point *p, int n, double dense, double max_drop, const char ***names,
                             double **sparsity, int *n_layers);
/* Append the scan to table prune_scan of the results database at db_path (created with the
 * bench store's schema when new, so `bench` and `report` keep using the file):
 *   prune_scan(id, scan, created_at, model, model_sha256, layer, op, numel, criterion, sparsity,
 *              accuracy, dense_accuracy, data, samples)
 * scan numbers the scans in the file (1, 2, ...): one call's rows share it. */
il_status il_prune_scan_save(const char *db_path, const char *model, const char *model_sha256, const char *criterion,
                             const char *data, int64_t samples, double dense, const il_prune_scan_point *p, int n);

#endif
