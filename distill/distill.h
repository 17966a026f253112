/*
 * distill.h - training in C: labelled data sets and their preprocessing, the model zoo, a
 * training executor over the graph IR (forward with the engine's kernels, backward kernels
 * per op), optimizers and schedules, losses (cross-entropy, knowledge distillation), the
 * training loop, evaluation and federated averaging.
 *
 * The one graph IR is the model format here too: the zoo builds il_graphs, the trainer trains
 * the float initializers of an il_graph in place and hands back a plain inference graph
 * (BatchNormalization with running statistics), which il_onnx_save writes for any tool.
 *
 * Ownership:
 *  - il_data_load returns a data set the caller frees with il_data_free.
 *  - il_zoo_build returns a graph the caller frees with il_graph_free.
 *  - il_trainer_create clones the graph it is given; il_trainer_export returns a new graph the
 *    caller frees. Tensors returned by il_trainer_* accessors belong to the trainer.
 *
 * Errors: il_status and il_errmsg(), as in the engine.
 *
 * PREPROCESSING METADATA. A model trained here carries its input preprocessing in the ONNX
 * metadata_props, so that eval, bench and anyone else apply it identically. For a sample of
 * raw values p (uint8 pixels for image sets, floats for tensor folders), laid out NCHW:
 *   inferlab.preprocess.scale   x = p * scale                    ("0.00392156862745098" = 1/255)
 *   inferlab.preprocess.resize  "HxW": bilinear resize (half-pixel centers), absent: none
 *   inferlab.preprocess.crop    "HxW": center crop after the resize, absent: none
 *   inferlab.preprocess.mean    "m0,m1,..." per channel, x = (x - mean[c]) / std[c]
 *   inferlab.preprocess.std     "s0,s1,..."
 *   inferlab.preprocess.layout  "NCHW"
 *   inferlab.dataset            the data set the model was trained on ("fashion-mnist")
 *   inferlab.labels             class names, comma separated
 *   inferlab.train.*            the training recipe (informational: epochs, opt, lr, seed,
 *                               augment, test_top1 ...)
 * Training-time augmentation (random crop with padding, horizontal flip) is not applied at
 * inference and is recorded only under inferlab.train.augment.
 */
#ifndef IL_DISTILL_H
#define IL_DISTILL_H

#include "engine/engine.h"

/* ---------------------------------------------------------------- data sets */

#define IL_DATA_MAXC 4 /* channels the preprocessing keeps statistics for */

typedef enum { IL_SPLIT_TRAIN = 0, IL_SPLIT_TEST = 1 } il_split;

typedef struct il_dataset {
    char name[64];    /* "fashion-mnist", "mnist", "cifar10", "folder" */
    int64_t n;        /* samples */
    int c, h, w;      /* sample layout CHW */
    float *x;         /* n*c*h*w values, already multiplied by `scale` */
    int32_t *y;       /* n labels in [0, n_classes) */
    int n_classes;
    double scale;     /* raw -> x factor (1/255 for uint8 images, 1 for float tensors) */
    char labels[512]; /* class names, comma separated ("" when unknown) */
} il_dataset;

/* Load a labelled set. spec is SOURCE[:train|:test][:N]:
 *   fashion-mnist          the Debian package's files under /usr/share/datasets/fashion-mnist
 *                          (or the folder in the environment variable INFERLAB_FASHION_MNIST)
 *   mnist:DIR              {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] in DIR
 *   cifar10:DIR            data_batch_{1..5}.bin / test_batch.bin in DIR
 *   folder:DIR             DIR/NAME.npy or NAME.pb (one sample each, [C,H,W], [H,W] or [1,C,H,W]),
 *                          sorted by name, with DIR/labels.txt (one integer per line, same order);
 *                          DIR/train and DIR/test are used as splits when they exist
 * The split in spec wins over dflt; N keeps the first N samples. */
il_status il_data_load(const char *spec, il_split dflt, il_dataset **out);
/* One IDX file (gzip or plain) as uint8: images [n,h,w] (magic 0x803) or labels [n] (0x801). */
il_status il_idx_load(const char *path, int want_rank, il_tensor **out);
void il_data_free(il_dataset *d);
/* Keep the samples with the given indices (in that order) in a new set. */
il_dataset *il_data_subset(const il_dataset *d, const int64_t *idx, int64_t n);

/* ---------------------------------------------------------------- preprocessing */

typedef struct il_preproc {
    int c;                      /* channels of the model input */
    double scale;               /* raw -> [0,1] */
    float mean[IL_DATA_MAXC], std[IL_DATA_MAXC];
    int resize_h, resize_w;     /* 0: no resize */
    int crop_h, crop_w;         /* 0: no center crop */
    int pad;                    /* training: random crop with this zero padding (0: off) */
    int hflip;                  /* training: random horizontal flip */
} il_preproc;

/* Defaults: mean 0, std 1, no geometry, no augmentation. */
void il_preproc_init(il_preproc *p, int channels);
/* Mean and std per channel over the whole set (after the resize/crop in p). */
void il_preproc_fit(il_preproc *p, const il_dataset *d);
/* Apply the resize and center crop of p to every sample of d, in place. */
il_status il_preproc_geometry(const il_preproc *p, il_dataset *d);
/* Fill out[n, c, h, w] with the samples idx[0..n): augmented when train (using rng), then
 * normalized. */
void il_preproc_batch(const il_preproc *p, const il_dataset *d, const int64_t *idx, int n, int train,
                      uint64_t *rng, float *out);
/* Record p (and the data set's name and labels) in g's metadata, and read it back.
 * il_preproc_from_meta leaves the defaults of il_preproc_init for keys that are absent. */
void il_preproc_to_meta(const il_preproc *p, const il_dataset *d, il_graph *g);
il_status il_preproc_from_meta(const il_graph *g, il_preproc *p);

/* ---------------------------------------------------------------- model zoo */

typedef struct il_zoo_opts {
    int classes;      /* 10 */
    int c, h, w;      /* input, 1x28x28 (Fashion-MNIST) by default */
    int width;        /* base width; 0: the model's default */
    uint64_t seed;    /* weight initialization */
} il_zoo_opts;

typedef struct il_zoo_entry {
    const char *name;
    const char *about;
    int c, h, w;      /* the input it is listed with */
} il_zoo_entry;

void il_zoo_defaults(il_zoo_opts *o);
/* The models, for listing; count in *n. */
const il_zoo_entry *il_zoo_models(int *n);
/* Build a model: input "input" [N,C,H,W] (N symbolic), output "logits" [N,classes]; weights
 * Kaiming-normal from the seed, BatchNormalization in inference form (mean 0, var 1). */
il_status il_zoo_build(const char *name, const il_zoo_opts *o, il_graph **out);
/* Parameters (float initializer elements) and multiply-accumulates at batch 1. */
il_status il_model_stats(const il_graph *g, int64_t *params, int64_t *macs);

/* ---------------------------------------------------------------- trainer */

typedef struct il_trainer il_trainer;

typedef struct il_trainer_opts {
    il_dtype dtype;      /* IL_F32 (default when 0) or IL_F64 (gradient checks) */
    int threads;         /* 0: all cores */
    int input_grad;      /* also compute the gradient of the loss w.r.t. the graph inputs */
    uint64_t seed;       /* dropout masks */
    il_backend backend;  /* IL_BACKEND_CPU, or IL_BACKEND_CUDA: activations on the GPU (float32) */
} il_trainer_opts;

/* A trainer for g (cloned). Trainable parameters are the float initializers consumed as
 * weights: Conv W/B, Gemm B/C, MatMul operands, BatchNormalization and LayerNormalization
 * scale/bias, and non-scalar operands of Add/Mul/Sub (position embeddings). Scalars,
 * running statistics and integer constants stay fixed. */
il_status il_trainer_create(const il_graph *g, const il_trainer_opts *o, il_trainer **out);
/* The GPU the CUDA trainer uses ("" when none or built without CUDA). */
const char *il_train_device_name(void);
void il_trainer_free(il_trainer *t);
/* Forward pass on input x (graph input 0; dtype of the trainer). training selects batch
 * statistics for BatchNormalization and active Dropout, and keeps the activations for
 * backward. Returns graph output 0 (owned by the trainer). */
il_status il_trainer_forward(il_trainer *t, const il_tensor *x, int training, const il_tensor **logits);
/* Backward from d(loss)/d(output 0); gradients are accumulated into the parameters' grads
 * (il_trainer_zero_grad clears them). Extra gradients set with il_trainer_add_grad join in. */
il_status il_trainer_backward(il_trainer *t, const il_tensor *dout);
void il_trainer_zero_grad(il_trainer *t);
/* The activation of a named value from the last forward (NULL if unknown / not kept). */
const il_tensor *il_trainer_value(const il_trainer *t, const char *name);
/* Add g to the gradient of a named activation before the next il_trainer_backward (hints). */
il_status il_trainer_add_grad(il_trainer *t, const char *name, const il_tensor *g);
/* Gradient of graph input i after backward (input_grad set), NULL otherwise. */
const il_tensor *il_trainer_input_grad(const il_trainer *t, int i);

int il_trainer_n_params(const il_trainer *t);
/* Parameter i: its value name, data and gradient (owned by the trainer). */
const char *il_trainer_param(il_trainer *t, int i, il_tensor **value, il_tensor **grad);
/* Buffers that are state but not trained: BatchNormalization running mean/var. */
int il_trainer_n_buffers(const il_trainer *t);
il_tensor *il_trainer_buffer(il_trainer *t, int i);
/* Count of trainable scalars. */
int64_t il_trainer_param_count(const il_trainer *t);
/* A plain inference graph with the trained weights (float32) and running statistics. */
il_status il_trainer_export(const il_trainer *t, il_graph **out);

/* ---------------------------------------------------------------- optimizers */

typedef enum { IL_OPT_SGD = 0, IL_OPT_ADAMW = 1 } il_opt_kind;
typedef enum { IL_SCHED_CONST = 0, IL_SCHED_STEP = 1, IL_SCHED_COSINE = 2 } il_sched_kind;

typedef struct il_optim_opts {
    il_opt_kind kind;
    double lr, momentum, weight_decay; /* SGD: momentum 0.9; decay 5e-4 (SGD) / 0.05 (AdamW) */
    double beta1, beta2, eps;          /* AdamW */
    int nesterov;
    il_sched_kind sched;
    int64_t total_steps, warmup_steps; /* linear warm-up from 0, then the schedule */
    int64_t step_size;                 /* IL_SCHED_STEP: multiply by gamma every step_size steps */
    double gamma;
} il_optim_opts;

typedef struct il_optim il_optim;

void il_optim_defaults(il_optim_opts *o, il_opt_kind kind);
il_status il_optim_create(il_trainer *t, const il_optim_opts *o, il_optim **out);
void il_optim_free(il_optim *o);
/* The learning rate at step s under the schedule. */
double il_optim_lr(const il_optim_opts *o, int64_t s);
/* One update from the trainer's gradients; returns the learning rate used. */
double il_optim_step(il_optim *o);
/* Forget moments (FedAvg clients start each round afresh). */
void il_optim_reset(il_optim *o);

/* ---------------------------------------------------------------- losses */

/* Softmax cross-entropy with label smoothing eps over logits [n, k] (float32/float64):
 * returns the mean loss, writes d(loss)/d(logits) into grad (same shape; may be NULL) and
 * the number of correct top-1 predictions into *correct (may be NULL). */
double il_loss_ce(const il_tensor *logits, const int32_t *y, double smoothing, il_tensor *grad, int *correct);
/* Knowledge distillation: alpha*T^2*KL(softmax(t/T) || softmax(s/T)) + (1-alpha)*CE(s, y);
 * teacher logits t [n,k] float32; mean over the batch; gradient into grad. */
double il_loss_kd(const il_tensor *student, const il_tensor *teacher, const int32_t *y, double temperature,
                  double alpha, il_tensor *grad, int *correct);

/* ---------------------------------------------------------------- training loop */

typedef struct il_fit_opts {
    int epochs, batch;
    int threads;
    uint64_t seed;
    il_optim_opts optim;
    double smoothing;       /* label smoothing */
    int progress;           /* progress bar on stderr (the CLI sets it when stderr is a tty) */
    int verbose;            /* one line per epoch on stdout */
    /* distillation (teacher NULL: plain training) */
    const il_graph *teacher;
    double temperature, alpha;
    const char *hint_teacher, *hint_student; /* feature distillation (both or neither) */
    double hint_weight;
    int64_t max_steps;      /* stop after this many steps (0: no limit; tests) */
    il_backend backend;     /* where the teacher runs: CUDA runs it through a GPU trainer's forward when it can */
    /* pruning masks held fixed: after every optimizer step, the parameter named mask_params[i]
     * gets 0 wherever masks[i] (uint8, as many elements as the parameter) is 0 */
    int n_masks;
    const char *const *mask_params;
    const il_tensor *const *masks;
} il_fit_opts;

typedef struct il_fit_result {
    double train_loss, train_acc;  /* last epoch */
    double images_per_s;           /* training throughput over the whole run */
    double seconds;
    int64_t steps;
} il_fit_result;

void il_fit_defaults(il_fit_opts *o);
/* Train t on d with preprocessing p. */
il_status il_fit(il_trainer *t, const il_dataset *d, const il_preproc *p, const il_fit_opts *o, il_fit_result *r);

typedef struct il_eval_result {
    int64_t n;
    double top1, top5;        /* fractions */
    double loss;              /* mean cross-entropy */
    int k;                    /* classes */
    int64_t *confusion;       /* k*k, rows true class, columns predicted; caller frees */
    double images_per_s;
} il_eval_result;

/* Evaluate an inference graph with the engine (il_plan_*) on d, preprocessing p. */
il_status il_evaluate(const il_graph *g, const il_dataset *d, const il_preproc *p, int batch, int threads,
                      il_eval_result *r);
/* The same through a trainer in inference mode (no export needed). */
il_status il_evaluate_trainer(il_trainer *t, const il_dataset *d, const il_preproc *p, int batch,
                              il_eval_result *r);
void il_eval_print(const il_eval_result *r, const char *labels, FILE *f);

/* ---------------------------------------------------------------- federated averaging */

typedef struct il_fed_opts {
    int clients, rounds, local_epochs;
    double dirichlet;     /* label-skew concentration alpha */
    il_fit_opts fit;      /* per-client local training (epochs ignored: local_epochs) */
    int verbose;
} il_fed_opts;

/* Split d's indices into clients shards with per-class Dirichlet(alpha) proportions; shard i
 * gets sizes[i] indices in idx[i] (caller frees each and the arrays). */
il_status il_fed_shards(const il_dataset *d, int clients, double alpha, uint64_t seed, int64_t ***idx,
                        int64_t **sizes);
/* FedAvg: each round every client trains the global model on its shard, the server averages
 * the weights (and BN statistics) weighted by shard size. Test accuracy per round goes to
 * acc[r] (array of rounds entries, may be NULL). The final global model is left in t. */
il_status il_fedavg(il_trainer *t, const il_dataset *train, const il_dataset *test, const il_preproc *p,
                    const il_fed_opts *o, double *acc);

/* Register training's backward kernels in the kernel registry (done at the first lookup; the
 * `ops` command calls it to list them). */
void il_train_register_kernels(void);

#endif
