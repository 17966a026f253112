/*
 * engine.h - the public interface of inferlab's engine: status codes, tensors,
 * the graph IR, the op registry, ONNX import/export and the executor (plan).
 *
 * Everything else in inferlab (passes, quantize, prune, distill, bench) works on
 * the one graph IR declared here; no module keeps a private model format.
 *
 * Ownership, in one place:
 *  - il_tensor_new/il_tensor_alloc return a tensor the caller frees with il_tensor_free.
 *    A tensor owns its data unless it was made with il_tensor_wrap.
 *  - An il_graph owns every value, node, attribute and constant tensor in it; strings
 *    passed to il_graph_* functions are copied. Free with il_graph_free.
 *  - An il_plan keeps a pointer to its graph (the graph must outlive the plan) and owns
 *    its buffers; tensors returned by il_plan_output stay valid until the next run or
 *    il_plan_free.
 *
 * Errors: every function that can fail returns il_status. The message (with context:
 * file, node name, op) is kept per thread and read with il_errmsg().
 */
#ifndef IL_ENGINE_H
#define IL_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define IL_VERSION "0.1.0"
#define IL_MAX_RANK 8

/* ---------------------------------------------------------------- status */

typedef enum {
    IL_OK = 0,
    IL_ERR_PARSE,       /* malformed file or field */
    IL_ERR_UNSUPPORTED, /* op, dtype or attribute value we do not implement */
    IL_ERR_SHAPE,       /* shapes do not agree */
    IL_ERR_TYPE,        /* dtypes do not agree */
    IL_ERR_GRAPH,       /* structural problem: cycle, missing producer, duplicate name */
    IL_ERR_INVALID,     /* bad argument or attribute value */
    IL_ERR_IO,          /* file could not be read or written */
    IL_ERR_OOM,
    IL_ERR_CUDA,
    IL_ERR_INTERNAL
} il_status;

const char *il_status_str(il_status s);
/* The message of the last error set on this thread ("" when none). */
const char *il_errmsg(void);
/* Set the error message (printf-style) and return s, so callers write
 * `return il_error(IL_ERR_SHAPE, "...", ...);`. */
il_status il_error(il_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefix the current message with more context ("node 'x' (Conv): " + old). */
il_status il_error_wrap(il_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void il_error_clear(void);
/* Call first in main(): where OpenBLAS fell back to its generic kernels on a CPU it does not
 * know (Debian's 0.3.21 on newer Xeons), set OPENBLAS_CORETYPE and execute argv again
 * (engine/cpu/blas_core.c). */
void il_blas_fix_core(char **argv);

/* ---------------------------------------------------------------- dtypes */

/* Values match ONNX TensorProto.DataType so import/export is a plain copy. */
typedef enum {
    IL_UNDEFINED = 0,
    IL_F32 = 1,
    IL_U8 = 2,
    IL_I8 = 3,
    IL_U16 = 4,
    IL_I16 = 5,
    IL_I32 = 6,
    IL_I64 = 7,
    IL_STRING = 8,
    IL_BOOL = 9,
    IL_F16 = 10,
    IL_F64 = 11,
    IL_U32 = 12,
    IL_U64 = 13,
    IL_BF16 = 16
} il_dtype;

/* Bytes per element; 0 for dtypes we cannot hold (string, undefined). */
size_t il_dtype_size(il_dtype t);
const char *il_dtype_name(il_dtype t);  /* "float32", "int64"; also ONNX types we cannot hold ("float8e4m3fn", "int4") */
int il_dtype_is_float(il_dtype t);      /* f16, bf16, f32, f64 */
int il_dtype_is_supported(il_dtype t);  /* a dtype the engine stores */

float il_f16_to_f32(uint16_t h);
uint16_t il_f32_to_f16(float f);
float il_bf16_to_f32(uint16_t h);
uint16_t il_f32_to_bf16(float f);

/* ---------------------------------------------------------------- tensors */

typedef struct il_tensor {
    il_dtype dtype;
    int rank;
    int64_t dims[IL_MAX_RANK];
    void *data;
    int owns_data;
    /* No quantization fields: quantized values are integer tensors between QuantizeLinear and
     * DequantizeLinear nodes, whose scale and zero-point inputs are the one place they live. */
} il_tensor;

/* The most elements a tensor may have: tensors and inferred shapes past it are refused, which
 * keeps every product of dims (and of any subset of them) far from int64 overflow. */
#define IL_MAX_NUMEL ((int64_t)1 << 40)
/* The product of dims: -1 when one is unknown (negative), INT64_MAX when it overflows (so a guard
 * against IL_MAX_NUMEL sees it as too large), 0 when one is 0. */
int64_t il_shape_numel(int rank, const int64_t *dims);
/* IL_OK when the known, non-zero dims multiply to at most IL_MAX_NUMEL (a zero dim must not
 * hide the rest: [0, 2^40, 2^40] has overflowing strides); else IL_ERR_UNSUPPORTED. */
il_status il_shape_check(int rank, const int64_t *dims);
static inline int64_t il_tensor_numel(const il_tensor *t) { return il_shape_numel(t->rank, t->dims); }
static inline size_t il_tensor_bytes(const il_tensor *t) { return (size_t)il_tensor_numel(t) * il_dtype_size(t->dtype); }

/* A tensor with zeroed data of the given shape. NULL (and the error set) on failure. */
il_tensor *il_tensor_new(il_dtype dt, int rank, const int64_t *dims);
/* A tensor that points at caller memory; il_tensor_free will not free the data. */
il_tensor *il_tensor_wrap(il_dtype dt, int rank, const int64_t *dims, void *data);
il_tensor *il_tensor_clone(const il_tensor *t);
void il_tensor_free(il_tensor *t);
/* Read element i (flat index) as double / write it from double, any numeric dtype. */
double il_tensor_get(const il_tensor *t, int64_t i);
void il_tensor_set(il_tensor *t, int64_t i, double v);
/* "float32[1,3,224,224]" into buf. */
const char *il_shape_str(int rank, const int64_t *dims, char *buf, size_t n);
/* Fill with uniform random numbers in [lo, hi) (ints: rounded), from a seeded generator. */
void il_tensor_fill_random(il_tensor *t, uint64_t *rng, double lo, double hi);
/* Random values for a model input: floats uniform in [-1,1), integers and bools 0 or 1 (valid
 * token ids, token types, masks and indices of any real model, where a wider range would index
 * past a small embedding table). */
void il_tensor_fill_input(il_tensor *t, uint64_t *rng);
/* xorshift64*; rng must not be 0. */
uint64_t il_rand_u64(uint64_t *rng);
double il_rand_uniform(uint64_t *rng); /* [0,1) */

/* Compare got against want element-wise with |got-want| <= atol + rtol*|want|.
 * NaN matches NaN; infinities must match exactly. Returns 1 when they agree; otherwise 0 and
 * fills *worst (flat index of the worst element) and a description in msg. */
int il_tensor_allclose(const il_tensor *got, const il_tensor *want, double rtol, double atol,
                       int64_t *worst, char *msg, size_t msgn);

/* ---------------------------------------------------------------- graph IR */

typedef enum {
    IL_ATTR_UNDEFINED = 0,
    IL_ATTR_FLOAT = 1,
    IL_ATTR_INT = 2,
    IL_ATTR_STRING = 3,
    IL_ATTR_TENSOR = 4,
    IL_ATTR_GRAPH = 5,
    IL_ATTR_FLOATS = 6,
    IL_ATTR_INTS = 7,
    IL_ATTR_STRINGS = 8,
    IL_ATTR_TENSORS = 9,
    IL_ATTR_GRAPHS = 10,
    IL_ATTR_SPARSE_TENSOR = 11,
    IL_ATTR_SPARSE_TENSORS = 12,
    IL_ATTR_TYPE_PROTO = 13,
    IL_ATTR_TYPE_PROTOS = 14
} il_attr_type; /* values match ONNX AttributeProto.AttributeType */

typedef struct il_attr {
    char *name;
    il_attr_type type;
    float f;
    int64_t i;
    char *s;        /* STRING: bytes, NUL-terminated for convenience; slen is the length */
    size_t slen;
    il_tensor *t;   /* TENSOR */
    int n;          /* count for FLOATS / INTS / STRINGS / TENSORS */
    float *floats;
    int64_t *ints;
    char **strings;
    il_tensor **tensors;
    void *raw;      /* GRAPH and other kinds we keep only as serialized bytes */
    size_t raw_len;
    char *ref_attr_name; /* function attribute reference, kept for export */
} il_attr;

/* A value: graph input, initializer, or node output. Shapes may be partial: rank -1 means
 * unknown rank, a dim of -1 is unknown, and dim_param names a symbolic dim ("batch"). */
typedef struct il_value {
    char *name;
    il_dtype dtype;
    int rank;
    int64_t dims[IL_MAX_RANK];
    char *dim_param[IL_MAX_RANK];
    il_tensor *constant; /* initializer data, owned; NULL for computed values */
    int producer;        /* node index, -1 for graph inputs and initializers */
    int is_input;        /* listed in graph.input (and not only an initializer) */
    int is_output;
    char *doc;
} il_value;

typedef struct il_node {
    char *name;
    char *op_type;
    char *domain;   /* "" for the default ONNX domain */
    int n_inputs;
    int *inputs;    /* value indices; -1 for an omitted optional input */
    int n_outputs;
    int *outputs;   /* value indices; -1 for an omitted optional output */
    int n_attrs;
    il_attr *attrs;
    char *doc;
    int dead;       /* removed; il_graph_compact drops it */
} il_node;

typedef struct il_opset_import {
    char *domain;
    int64_t version;
} il_opset_import;

typedef struct il_graph {
    char *name;
    il_value *values;
    int n_values, cap_values;
    il_node *nodes;
    int n_nodes, cap_nodes;
    int *inputs, n_inputs;   /* graph inputs (value indices) in order, initializers excluded */
    int *outputs, n_outputs; /* graph outputs in order */
    il_opset_import *opsets;
    int n_opsets;
    int64_t ir_version;
    char *producer_name, *producer_version, *domain, *doc;
    int64_t model_version;
    int n_meta;
    char **meta_keys, **meta_values;
    char *base_dir; /* directory of the file it came from (external data), may be NULL */
    int *name_index;   /* open-addressing hash of value names; internal */
    int name_index_cap;
} il_graph;

il_graph *il_graph_new(const char *name);
void il_graph_free(il_graph *g);
il_graph *il_graph_clone(const il_graph *g);

/* Value lookup and creation. il_graph_value returns the index of the value with that name,
 * creating an empty one (dtype undefined, rank -1) when missing. */
int il_graph_find_value(const il_graph *g, const char *name);
int il_graph_value(il_graph *g, const char *name);
/* A new value with a name derived from base that no other value has. */
int il_graph_new_value(il_graph *g, const char *base);
int il_graph_add_constant(il_graph *g, const char *name, il_tensor *t); /* takes ownership of t */
void il_graph_add_input(il_graph *g, int v);
void il_graph_add_output(il_graph *g, int v);

/* Append a node; inputs/outputs are value indices (-1 for omitted). Returns the node index.
 * The producer of each output is set. */
int il_graph_add_node(il_graph *g, const char *op_type, const char *domain, const char *name,
                      int n_in, const int *in, int n_out, const int *out);
/* Add attributes to node k (names copied). */
void il_node_set_int(il_graph *g, int k, const char *name, int64_t v);
void il_node_set_float(il_graph *g, int k, const char *name, float v);
void il_node_set_string(il_graph *g, int k, const char *name, const char *v);
void il_node_set_ints(il_graph *g, int k, const char *name, int n, const int64_t *v);
void il_node_set_floats(il_graph *g, int k, const char *name, int n, const float *v);
void il_node_set_tensor(il_graph *g, int k, const char *name, il_tensor *t); /* takes t */
il_attr *il_node_add_attr(il_graph *g, int k, const char *name, il_attr_type type);
/* Node k gets a deep copy of src under name (src's own when NULL), replacing one of that name.
 * src must not be one of node k's attributes: adding may move them. */
void il_node_copy_attr(il_graph *g, int k, const il_attr *src, const char *name);
/* Deep copy of src into dst, name included; dst's old contents are not freed. */
void il_attr_copy(il_attr *dst, const il_attr *src);

/* Attribute access with defaults. */
const il_attr *il_node_attr(const il_node *n, const char *name);
int64_t il_attr_int(const il_node *n, const char *name, int64_t dflt);
float il_attr_float(const il_node *n, const char *name, float dflt);
const char *il_attr_string(const il_node *n, const char *name, const char *dflt);
/* INTS/FLOATS: returns the count (0 when absent) and sets *out to the array (not copied). */
int il_attr_ints(const il_node *n, const char *name, const int64_t **out);
int il_attr_floats(const il_node *n, const char *name, const float **out);
/* ai.inferlab ConvPool (engine/ops/conv_pool.c) node n seen as its MaxPool: *pool a shallow copy of
 * n whose attributes are n's pool_X ones named X, in attrs (cap entries; names and values still
 * n's); their count, -1 past cap. */
int il_conv_pool_view(const il_node *n, il_node *pool, il_attr *attrs, int cap);

/* Rewriting. */
void il_graph_remove_node(il_graph *g, int k);            /* marks dead */
void il_graph_replace_uses(il_graph *g, int from, int to); /* every node input and graph output */
void il_graph_compact(il_graph *g);   /* drop dead nodes and unused non-IO values; renumbers */
/* Consumers of value v: the number of (node, input slot) uses; fills up to max entries. */
int il_graph_consumers(const il_graph *g, int v, int *nodes, int max);
/* Topological order of live nodes into order[] (size n_nodes); IL_ERR_GRAPH on a cycle. */
il_status il_graph_topo_order(const il_graph *g, int *order, int *n_order);
/* Reorder g->nodes topologically in place. */
il_status il_graph_sort(il_graph *g);
/* Structural checks: known opsets; every node against its op's schema (il_node_check); every
 * input has a producer, initializer or graph input; one producer per value; no cycle; known ops. IL_OK or an error naming the first problem. */
il_status il_graph_verify(const il_graph *g);
/* The newest ai.onnx opset the engine knows; a model importing a newer one is refused. */
#define IL_OPSET_MAX 21
/* Node k against its op's schema (engine/schema.c): input and output counts, omitted inputs and
 * outputs only where the op allows them, attribute types and required attributes. il_graph_verify
 * and shape inference call it, so kernels never see a missing tensor. */
il_status il_node_check(const il_graph *g, int k);
/* Opset imports the engine knows (IL_OPSET_MAX); il_graph_verify calls it. */
il_status il_graph_check_opsets(const il_graph *g);
/* The opset version of a domain ("" / "ai.onnx" the default), 0 when not imported. */
int64_t il_graph_opset(const il_graph *g, const char *domain);
void il_graph_set_opset(il_graph *g, const char *domain, int64_t version);
void il_graph_set_meta(il_graph *g, const char *key, const char *value);
const char *il_graph_get_meta(const il_graph *g, const char *key);
/* Write a readable text form of the graph. */
void il_graph_dump(const il_graph *g, FILE *f);

/* ---------------------------------------------------------------- ONNX files */

il_status il_onnx_load(const char *path, il_graph **out);
il_status il_onnx_load_buffer(const void *buf, size_t len, const char *base_dir, il_graph **out);
/* Write the graph as an ONNX model. */
il_status il_onnx_save(const il_graph *g, const char *path);
il_status il_onnx_save_buffer(const il_graph *g, void **buf, size_t *len); /* caller frees *buf */
/* TensorProto files (the ONNX backend-test .pb format) and NumPy .npy files. */
il_status il_tensor_load_pb(const char *path, il_tensor **out, char **name /* may be NULL */);
il_status il_tensor_save_pb(const il_tensor *t, const char *name, const char *path);
il_status il_tensor_load_npy(const char *path, il_tensor **out);
il_status il_tensor_save_npy(const il_tensor *t, const char *path);
/* Load by extension (.pb or .npy). */
il_status il_tensor_load(const char *path, il_tensor **out);

/* ---------------------------------------------------------------- op registry */

/* The context a kernel and its shape inference see.
 * In shape inference, in[i]->data may be NULL (not known before running) and dims may be -1;
 * infer sets out[i]->dtype, rank and dims (-1 where it cannot tell). in[i] is NULL for an
 * omitted optional input; out[i] is NULL for an omitted optional output.
 * In a kernel, every input has data and every output has its shape set by infer and data
 * allocated, except for ops flagged IL_OPF_DYNAMIC_OUT, whose kernel sets the shape itself and
 * allocates with il_kctx_alloc_output. */
typedef struct il_kctx {
    const il_node *node;
    int64_t opset;         /* opset version in force for the node's domain */
    int n_in, n_out;
    il_tensor **in;
    il_tensor **out;
    int threads;
    int infer_only;        /* set during shape inference */
    /* Kernel-time only (zero elsewhere): the node's state from its kernel's prepare, and a
     * scratch buffer of the size prepare asked for (shared by all nodes of a plan, so its
     * contents do not survive between runs). */
    void *state;
    void *workspace;
    size_t workspace_bytes;
    /* Bit i set: input i is a constant of the graph (an initializer or folded at plan time), so
     * prepare may keep a packed copy of its data; other inputs' data change from run to run
     * (and are NULL in supports/prepare at plan time). */
    uint64_t const_mask;
    /* Bit i set: input (output) i is held in the CPU kernels' native activation layout instead
     * of plain NCHW (oneDNN's own choice on this CPU: channels-last, or channels in blocks of
     * il_cpu_channel_block() zero-padded as nChw16c; at most il_blocked_bytes long): the plan
     * chose it because the kernels on both sides of the value take it (il_kernel.layouts). Zero
     * unless the chosen kernel offered it; data then points at the native bytes while dims stay
     * the logical NCHW ones. */
    uint32_t blocked_in, blocked_out;
    /* Nonzero: output 0 is native channels-last and lives inside a wider channels-last tensor of
     * out_cstride channels (a Concat's output: plan_layout.c writes the joined inputs in place),
     * data pointing at its first channel there; each pixel then starts out_cstride floats after
     * the last. Only for kernels with il_kernel.strided_out. */
    int64_t out_cstride;
    /* Bit i set: output 0 lies over input i in the arena (the plan gave it that input's slot,
     * engine/plan_layout.c, where the kernel's writes_over offered it and nothing reads input i
     * after this node): run must read what it needs of input i before writing output 0 over it.
     * Zero unless the chosen kernel offered it; a plan may still give output 0 a slot of its own. */
    uint32_t out_over_in;
    /* The arithmetic an accelerator plan was built for (il_precision; 0 = fp32 on the cpu).
     * With IL_PREC_FP16 / IL_PREC_BF16 every float32 value of the graph, activations and
     * constants alike, is held on the device in that half type: run() then sees dtype IL_F16 or
     * IL_BF16 in c->in / c->out (device data), while supports() and prepare() see the graph's
     * float32 view (host data for constants) and must decide from this field. With IL_PREC_TF32
     * values stay float32 and matrix units may round the products' inputs to TF32. */
    int precision;
} il_kctx;

typedef il_status (*il_infer_fn)(il_kctx *c);
typedef il_status (*il_kernel_fn)(il_kctx *c);

enum {
    IL_OPF_ANY_DTYPE = 1,   /* moves bytes: runs on f16/bf16 directly (Reshape, Gather, Cast...) */
    IL_OPF_DYNAMIC_OUT = 2, /* output shape depends on input data in ways infer may not see */
};

typedef struct il_op {
    const char *domain;     /* "" for ai.onnx */
    const char *name;
    int since_version;      /* lowest opset handled (1 if all) */
    il_infer_fn infer;
    il_kernel_fn ref;       /* readable reference kernel: the oracle */
    il_kernel_fn fast;      /* optimized CPU kernel, NULL when ref is the only one */
    int flags;
} il_op;

/* ---------------------------------------------------------------- kernels
 *
 * An op (above) is a schema: shape and dtype inference plus the readable reference kernel, the
 * oracle. Kernels are separate entries, many per op: each says which op (and opset range) and
 * backend it serves, under a name ("ref", "fast", "im2col-blas", "dnnl", a student's), which
 * dtypes of input 0 it takes, whether it supports a node at the shapes it has (`supports`),
 * and may keep per-node state prepared once when a plan is built (`prepare`: packed weights,
 * parsed attributes, library descriptors; plus the scratch bytes its run needs). The planner
 * picks one kernel per node (a forced name, a fixed preference, or by timing the candidates:
 * engine/tactics.c). Every op's `ref` is registered as the kernel "ref" of the cpu backend,
 * and an op table's `fast` as the stateless cpu kernel "fast"; stateful and library kernels
 * register themselves (engine/cpu/kernels.c) and plugins may add more (il_kernel_register).
 *
 * Contract of the functions (all may be NULL but run):
 *  supports(c)          c->in[i] carry dtype and shape (dims -1 where unknown) and data only for
 *                       constant inputs (c->const_mask); 1 when the kernel can run the node.
 *  prepare(c, &st, &ws) same view of the node; sets *st (owned by the kernel, freed by release)
 *                       and *ws, the scratch bytes run wants in c->workspace. Runs again when the
 *                       plan's shapes change.
 *  run(c)               c->state and c->workspace as prepared; inputs and outputs as for any
 *                       kernel (il_kctx above).
 *  save/load            the prepared state as bytes for plan files (a pointer-free image); NULL
 *                       means prepare runs again when a plan is loaded.
 */
#define IL_DT(t) ((uint32_t)1 << (t))

typedef struct il_kernel {
    const char *domain, *op;   /* the op it implements ("" for ai.onnx) */
    int since_version;         /* lowest opset handled (0 or 1: all) */
    int until_version;         /* highest opset handled (0: no bound) */
    const char *backend;       /* "cpu", "cuda" */
    const char *name;
    uint32_t dtypes;           /* IL_DT(IL_F32) | ...: dtypes of input 0 it takes; 0: any */
    int priority;              /* the heuristic tactic: the supported kernel with the highest wins */
    int (*supports)(const il_kctx *c);
    il_status (*prepare)(il_kctx *c, void **state, size_t *workspace);
    il_kernel_fn run;
    void (*release)(void *state);
    il_status (*save)(const void *state, void **buf, size_t *len);     /* *buf malloc'd */
    il_status (*load)(il_kctx *c, const void *buf, size_t len, void **state);
    const char *doc;           /* one line for `inferlab ops` */
    /* The inputs and outputs (bits) this kernel can read or write in the native layout
     * for node c (which supports() accepted); NULL: none. The plan keeps a value blocked when its
     * producer and every consumer say so (engine/plan_layout.c), and tells prepare and run
     * through c->blocked_in / c->blocked_out. */
    void (*layouts)(const il_kctx *c, uint32_t *blocked_in, uint32_t *blocked_out);
    /* 1: writes a native output 0 into a channel slice of a wider channels-last tensor when
     * c->out_cstride says so. in_place (a Concat's kernel): whether node c's inputs, held as
     * c->blocked_in says, may be written in place into its output, which run then finds there. */
    int strided_out;
    int (*in_place)(const il_kctx *c);
    /* The input whose arena slot node c's output 0 may take (a residual added in place), or -1;
     * the plan says whether it did through c->out_over_in. NULL: none. */
    int (*writes_over)(const il_kctx *c);
    /* Training registers its kernels here too: role IL_KERNEL_BACKWARD with `impl` the trainer's
     * own entry point (distill/grad.h's gr_op: backward and the training-mode forward); run is
     * NULL for them, and the planner only ever sees IL_KERNEL_FORWARD kernels. */
    int role;
    const void *impl;
} il_kernel;

enum { IL_KERNEL_FORWARD = 0, IL_KERNEL_BACKWARD = 1 };

/* The channel block of the CPU's blocked activation layouts: 16 floats (one 512-bit vector)
 * where the CPU has AVX-512, else 8. A blocked [N, C, spatial...] tensor stores [N, ceil(C/B),
 * spatial..., B] with the channels past C zero; il_blocked_bytes is its size (float32, rank 3 to
 * 5), which also holds any other native layout (channels-last is the plain size). */
int il_cpu_channel_block(void);
size_t il_blocked_bytes(const il_tensor *t);

/* Register a kernel (built-ins at first use; plugins from their il_plugin_init). The op must be
 * registered; (op, backend, name) must be new. The struct is not copied: it must outlive the
 * process (a static). */
il_status il_kernel_register(const il_kernel *k);
/* The kernels of an op on a backend (NULL: every backend), in registration order, that serve
 * opset `opset` (0: any). Fills up to max, returns the count. */
int il_kernels_of(const char *domain, const char *op, const char *backend, int64_t opset, const il_kernel **out,
                  int max);
/* One forward kernel by name, NULL when there is none. */
const il_kernel *il_kernel_find(const char *domain, const char *op, const char *backend, const char *name);
/* The latest kernel of a role (IL_KERNEL_BACKWARD: training's) for an op on a backend. */
const il_kernel *il_kernel_find_role(const char *domain, const char *op, const char *backend, int role);
/* Without a plan (the trainer): the forward kernel the heuristic picks for the node in c (the
 * highest priority that takes it) on a backend, and one prepare-run-release of it. */
const il_kernel *il_kernel_pick(const il_kctx *c, const char *backend);
il_status il_kernel_run_once(const il_kernel *k, il_kctx *c);
/* Every registered kernel, for listing and for the test that walks the registry. */
const il_kernel *const *il_kernel_all(int *n);
/* Check a --kernel spec ("Conv=ref,FusedConv=im2col-blas", "*=ref"): every op and name exists. */
il_status il_kernel_spec_check(const char *spec);
/* Whether a kernel takes input 0's dtype and its supports() accepts the node. */
int il_kernel_accepts(const il_kernel *k, const il_kctx *c);

/* Find an op by domain and name ("" and "ai.onnx" are the same domain). NULL if unknown. */
const il_op *il_op_find(const char *domain, const char *name);
/* All registered ops, for listing; count in *n. */
const il_op *const *il_op_all(int *n);
/* Register an extra op (plugins); returns IL_ERR_INVALID if it exists. */
il_status il_op_register(const il_op *op);
/* Allocate output i of a dynamic-output kernel with the given shape. */
il_status il_kctx_alloc_output(il_kctx *c, int i, il_dtype dt, int rank, const int64_t *dims);

/* ---------------------------------------------------------------- shape inference */

/* Inference results for one graph: per value, a shape, and data when it could be computed
 * at plan time (shape arithmetic, constants). */
typedef struct il_shapes {
    int n_values;
    il_tensor *info;   /* per value: dtype/rank/dims (-1 unknown), data NULL */
    il_tensor **known; /* per value: a tensor with data known before running, or NULL */
    unsigned char *owned; /* per value: known[v] was computed here (freed with the shapes) */
    unsigned char *folded; /* per node: every output known at plan time */
} il_shapes;

typedef struct il_bind {
    const char *name; /* a symbolic dim name, or NULL */
    int64_t value;
} il_bind;

/* Infer shapes and dtypes of every value. Symbolic input dims are bound by name from
 * binds, then by `batch` for the first dim of each input, otherwise left unknown (-1).
 * Small computations whose inputs are all known are run (up to fold_limit elements).
 * The result is freed with il_shapes_free. */
il_status il_infer_shapes(const il_graph *g, int64_t batch, const il_bind *binds, int n_binds,
                          il_shapes **out);
/* The same, with input shapes taken from actual tensors (one per graph input, in order). */
il_status il_infer_shapes_for(const il_graph *g, il_tensor *const *inputs, il_shapes **out);
void il_shapes_free(il_shapes *s);
/* Write the inferred dtype/shape back into g->values (for export and passes). */
void il_shapes_apply(const il_shapes *s, il_graph *g);
/* Multiply-accumulates of node k under these shapes (0 for data-movement ops). */
int64_t il_node_macs(const il_graph *g, const il_shapes *s, int k);

/* Precision changes as explicit Casts (engine/precision.c): whether some node computes on a
 * float16/bfloat16 input under shapes s (g's), and the rewrite that casts such inputs to
 * float32 and such outputs back (new nodes and values appended; *inserted counts the Casts).
 * il_plan_create applies it to its own copy of a graph that needs it; the pass insert-casts
 * applies it to a model. */
int il_graph_needs_casts(const il_graph *g, const il_shapes *s);
il_status il_graph_insert_casts(il_graph *g, const il_shapes *s, int *inserted);

/* ---------------------------------------------------------------- plan / executor */

typedef enum { IL_BACKEND_CPU = 0, IL_BACKEND_CUDA = 1 } il_backend;

/* A backend (engine/backend.c): what kernels register under (il_kernel.backend), whether this
 * machine can use it (else why), the device, arena memory, copies and synchronization. Copies
 * may be asynchronous on the backend's stream; download waits for its data. */
typedef struct il_backend_iface {
    const char *name;                /* "cpu", "cuda" */
    int (*available)(const char **why);
    const char *(*device)(void);     /* CPU model and ISA, or the GPU's name */
    void *(*alloc)(size_t bytes);    /* NULL (and the error set) on failure */
    void (*free)(void *p);
    il_status (*upload)(void *dst, const void *host, size_t bytes);
    il_status (*download)(void *host, const void *src, size_t bytes);
    il_status (*sync)(void);
    int host_memory;                 /* 1: its memory is the host's (the cpu) */
    /* Optional (NULL: the backend cannot): record the work issued between capture_begin and
     * capture_end on the backend's stream as one graph, then replay it with the same addresses
     * (CUDA graphs); graph_free releases one. */
    il_status (*capture_begin)(void);
    il_status (*capture_end)(void **graph);
    il_status (*replay)(void *graph);
    void (*graph_free)(void *graph);
} il_backend_iface;

const il_backend_iface *il_backend_find(const char *name); /* NULL when not built in */
il_status il_backend_register(const il_backend_iface *b);
const char *il_backend_name(il_backend b);

typedef struct il_plan_opts {
    il_backend backend;
    int threads;          /* 0: all cores */
    int64_t batch;        /* binds the first symbolic dim of inputs; 0: 1 */
    const il_bind *binds; /* other symbolic dims by name */
    int n_binds;
    int reference;        /* use reference kernels only (slow, for checking) */
    int profile;          /* record time per node */
    int loose_shapes;     /* accept inputs whose fixed dims differ from the model's declaration
                             (ONNX's own test data has such cases); the plan re-infers */
    const char *kernels;  /* force kernels: "Conv=ref,FusedConv=im2col-blas" by op type, or
                             "*=ref" for every node; NULL: the tactic chooses */
    int tactics;          /* IL_TACTICS_HEURISTIC (priority) or IL_TACTICS_TIMED */
    const char *timing_cache; /* timed tactics: a file read first and updated (NULL: none) */
    int precision;        /* an accelerator's arithmetic (il_precision, il_kctx.precision says
                             what kernels see); the cpu computes float32 whatever this says */
    int graphs;           /* accelerator: capture a run that has no cpu node once and replay it
                             (CUDA graphs: fixed addresses, one launch per run) */
} il_plan_opts;

enum { IL_TACTICS_HEURISTIC = 0, IL_TACTICS_TIMED = 1 };
typedef enum { IL_PREC_FP32 = 0, IL_PREC_TF32, IL_PREC_FP16, IL_PREC_BF16 } il_precision;
/* "fp32", "tf32", "fp16", "bf16"; parse returns -1 for anything else */
const char *il_precision_name(int precision);
int il_precision_parse(const char *s);

typedef struct il_plan il_plan;

il_status il_plan_create(const il_graph *g, const il_plan_opts *o, il_plan **out);
void il_plan_free(il_plan *p);
/* Run with inputs in graph-input order (each checked against the graph's dtype and shape). */
il_status il_plan_run(il_plan *p, il_tensor *const *inputs, int n_inputs);
/* Again, on the accelerator alone, on the inputs the last il_plan_run left there, leaving the
 * outputs there too (then waits for the device): the device's own time, as PyTorch's and
 * TensorRT's GPU figures are taken, with no copy to or from the host. Only for plans whose every
 * node runs on the accelerator; il_plan_output keeps the last il_plan_run's results. */
il_status il_plan_rerun(il_plan *p);
int il_plan_n_outputs(const il_plan *p);
/* Output i of the last run; owned by the plan. */
const il_tensor *il_plan_output(const il_plan *p, int i);
/* The peak of activation bytes held at once, as the memory planner laid them out. */
int64_t il_plan_peak_bytes(const il_plan *p);
/* The sum of all activation bytes (what a planner-less executor would hold). */
int64_t il_plan_total_bytes(const il_plan *p);
const il_shapes *il_plan_shapes(const il_plan *p);
/* Turn per-node timing on or off for the next runs (a loaded plan's profile). */
void il_plan_set_profile(il_plan *p, int on);
/* Per-node time of the last run in seconds (profile on), indexed like g->nodes; NULL if off. */
const double *il_plan_node_times(const il_plan *p);
/* The kernel chosen for node k ("ref", "im2col-blas", ...), NULL for dead and folded nodes. */
const il_kernel *il_plan_kernel(const il_plan *p, int k);
/* Placement on a plan's accelerator (backend cuda): nodes it runs, nodes that fell back to the
 * cpu, and the copies of the last run (uploads to it, downloads from it). */
void il_plan_copies(const il_plan *p, int *acc_nodes, int *fallback, int64_t *uploads, int64_t *downloads);
/* Whether node k of the plan runs on its accelerator (0: the cpu). */
int il_plan_on_acc(const il_plan *p, int k);
/* Tactic statistics of the build: nodes whose kernel was chosen by timing, and by the cache. */
void il_plan_tactic_stats(const il_plan *p, int *timed, int *cached);
/* The timed tactic's second stage (engine/tactics_cost.c): segments of nodes whose alone pick
 * differs from the heuristic's, charged in the plan (timed: their plans run; cached: the choice
 * came from the timing cache, nothing run). */
void il_plan_segment_stats(const il_plan *p, int *segments, int *timed, int *cached);
/* Why node k runs its kernel under the timed tactic (the alone timings and the charged cost of
 * its segment), NULL where nothing was timed (heuristic, forced, a single candidate). */
const char *il_plan_kernel_why(const il_plan *p, int k);
/* The timed tactic's clock, replaceable so tests can feed costs (NULL: the machine's clock).
 * alone: seconds per run of kernel kn on node k of plan p, by itself on the node's real shapes
 * (< 0: cannot be timed). in_plan: seconds of every node (times[k], indexed like the graph's
 * nodes) in one run of the built plan q on inputs, in q's own layouts and in-place Concats;
 * nonzero when it cannot run. Either may be NULL (the machine's clock for that one). */
typedef struct il_tactic_timer {
    double (*alone)(const il_plan *p, int k, const il_kernel *kn, void *user);
    int (*in_plan)(il_plan *q, il_tensor *const *inputs, int n_inputs, double *times, void *user);
    void *user;
} il_tactic_timer;
void il_tactics_set_timer(const il_tactic_timer *t);
/* Plan files (engine/plan_file.c): the graph after passes, the kernel of every node, their
 * prepared state where a kernel can save it, the memory plan, and a header (format, inferlab
 * version, backend, machine, options). il_plan_load refuses a plan of another version, format,
 * backend or CPU and a truncated or corrupt file with a message saying what differs; the loaded
 * plan owns its graph (il_plan_graph). opts may set threads and profile; the rest comes from
 * the file. */
il_status il_plan_save(const il_plan *p, const char *path);
il_status il_plan_load(const char *path, const il_plan_opts *opts, il_plan **out);
int il_plan_file_is(const char *path); /* 1 when the file starts with the plan magic */
il_status il_plan_file_read(const char *path, char *head, size_t n, il_graph **g); /* header text, graph: no plan built */
const il_graph *il_plan_graph(const il_plan *p);
/* Whether the plan holds value v in the CPU kernels' native layout, not plain (plan_layout.c). */
int il_plan_value_blocked(const il_plan *p, int v);
/* Arena offsets for tests: offset and size of value v, -1 when not in the arena. */
int64_t il_plan_value_offset(const il_plan *p, int v, int64_t *size);

/* Convenience: load, run once on given inputs, return outputs (caller frees each and the array). */
il_status il_run_model(const il_graph *g, il_tensor *const *inputs, int n_inputs,
                       const il_plan_opts *o, il_tensor ***outputs, int *n_outputs);

/* Number of cores, for the default thread count. */
int il_num_cores(void);
/* Set the threads used by BLAS and our own parallel loops. */
void il_set_threads(int n);
double il_now(void); /* monotonic seconds */

#endif
