/*
 * plan_int.h - internal to engine/: the plan's struct, shared by the executor (plan.c), its
 * arena (plan_arena.c), the kernel choice (tactics.c) and plan files (plan_file.c).
 */
#ifndef IL_PLAN_INT_H
#define IL_PLAN_INT_H

#include "ops/kernel.h"

struct il_plan {
    const il_graph *g;
    il_graph *own_graph;  /* a loaded plan owns its graph; NULL otherwise */
    il_plan_opts o;
    char *kernels_spec;   /* our copy of o.kernels */
    char *cache_path;     /* our copy of o.timing_cache */
    char *dims_spec;      /* the symbolic dims bound at create, "name=v,...", for plan files */
    il_shapes *s;
    int *order, n_order;
    const il_op **ops;        /* per node */
    const il_kernel **kern;   /* per node: the chosen kernel (NULL: dead or folded) */
    void **state;             /* per node: prepared state */
    size_t *ws;               /* per node: workspace bytes prepare asked for */
    unsigned char *prepared;  /* per node: prepare ran for the current shapes */
    void *workspace;
    size_t workspace_bytes;
    unsigned char *blocked; /* per value: held in the channel-blocked layout (plan_layout.c) */
    /* per value: written in place into a Concat's output (plan_layout.c): that value (-1: none),
     * the byte offset of its first channel there, and the output's channels (its pixel stride) */
    int *cat_root;
    int64_t *cat_off, *cstride;
    int *over;          /* per value: the input value whose slot it may take (plan_layout.c), or -1 */
    int64_t *offset;    /* per value: arena offset or -1 */
    int64_t *size;      /* per value: planned bytes */
    int64_t *last;      /* per value: last step reading it (n_order for graph outputs) */
    char *arena;
    int64_t arena_bytes, total_bytes;
    il_tensor *vals;    /* per value: the tensor of the current run (data borrowed) */
    void **heap;        /* per value: heap buffer owned by the run, or NULL */
    double *times;
    int n_timed, n_cached; /* tactic statistics */
    struct il_tactic_info *tinfo; /* per node, timed tactic only (tactics_int.h) */
    int n_segments, seg_timed, seg_cached; /* the charge stage (tactics_cost.c) */
    /* an accelerator backend (plan_device.c); all NULL/0 for cpu-only plans */
    const il_backend_iface *acc;
    unsigned char *on_acc;          /* per node: runs on acc */
    void **dptr;                    /* per value: its device memory */
    unsigned char *downed;          /* per value: dptr is an allocation of its own (constant, staging) */
    unsigned char *dvalid, *hvalid; /* per value, this run: current data on the device / on the host */
    char *darena;
    int64_t darena_bytes;
    void *dworkspace;
    size_t dworkspace_bytes, dws_need;
    unsigned char *ddt;             /* per value: its dtype on the device when that differs from the
                                       graph's (half-precision plans: IL_F16/IL_BF16), else 0 */
    void **dstage;                  /* per value: float32 device staging of a half value, for copies */
    void *graph;                    /* the captured run (o.graphs), NULL until the first run */
    int n_acc_nodes, n_fallback;
    int64_t n_uploads, n_downloads; /* copies of the last run */
    /* plan files, during create only: kernel names per node and the stored memory plan */
    const char *const *names;
    const void *memplan;
    size_t memplan_len;
};

/* il_plan_create with each node's kernel given by name (names[k]; "" for folded nodes) and the
 * memory plan a plan file stored (plan_file.c's MEMP section); either may be NULL. */
il_status il_plan_create_named(const il_graph *g, const il_plan_opts *o, const char *const *names, const void *mp,
                               size_t mp_len, il_plan **out);
/* The symbolic dims a plan was built with ("name=v,...", p->dims_spec) as binds, their names
 * copied into names; returns how many (at most max): plan_file.c. */
int il_plan_parse_dims(const char *spec, il_bind *binds, char (*names)[64], int max);
/* Lay the stored memory plan over p (sizes already computed): plan_file.c. */
il_status il_plan_apply_memplan(il_plan *p, const void *mp, size_t len);

/* The view of node k at plan time: inputs with their inferred dtype/shape and data where
 * known before running (constants, folded values), outputs with their inferred shapes and no
 * data. inb/outb are caller storage (n_inputs / n_outputs entries). */
void il_plan_node_view(const il_plan *p, int k, il_tensor *inb, il_tensor **in, il_tensor *outb, il_tensor **out,
                       il_kctx *c);
/* After the kernels: which values stay channel-blocked between the kernels that take it, and
 * node k's blocked_in / blocked_out bits in c from that choice (plan_layout.c). */
il_status il_plan_choose_layouts(il_plan *p);
void il_plan_blocked_masks(const il_plan *p, int k, il_kctx *c);
/* Choose a kernel for every live node (forced names, then the tactic): tactics.c. */
il_status il_plan_choose_kernels(il_plan *p);
/* Each value's planned bytes, live range and arena offset (views and outputs over their input
 * sharing a slot, Concat inputs written into its output), the arena allocated: plan_arena.c. */
il_status il_plan_lay_arena(il_plan *p);
/* Run kernel kern's prepare for node k on the context c (releasing a previous state). */
il_status il_plan_prepare_node(il_plan *p, int k, il_kctx *c);
/* The constant-input mask of node k (bit i: input i is an initializer or known at plan time). */
uint64_t il_plan_const_mask(const il_plan *p, int k);
/* plan_device.c: lay out the accelerator's arena, upload constants, allocate its workspace
 * (after layout); free all of it; run node k on the accelerator; make value v's current data
 * available on the host (downloading it when only the device has it). */
il_status il_plan_device_setup(il_plan *p);
/* For accelerator acc without a ScaledConv kernel: each one in g (the plan's own copy) split into
 * Mul and FusedConv again; returns how many (tests/test_cuda_infer.c calls it too). */
int il_plan_split_scaled(const il_backend_iface *acc, il_graph *g);
/* The same for PooledConv: FusedConv and GlobalAveragePool again. */
int il_plan_split_pooled(const il_backend_iface *acc, il_graph *g);
/* The same for ConvPool: FusedConv and MaxPool again. */
int il_plan_split_convpool(const il_backend_iface *acc, il_graph *g);
/* The same for SkipLayerNormalization: Add [+ Add] and LayerNormalization again. */
int il_plan_split_skipln(const il_backend_iface *acc, il_graph *g);
/* The same for MultiHeadAttention: the head Transposes around an Attention again. */
int il_plan_split_heads(const il_backend_iface *acc, il_graph *g);
void il_plan_device_release(il_plan *p);
il_status il_plan_run_acc_node(il_plan *p, int k);
il_status il_plan_ensure_host(il_plan *p, int v);
/* A run on the accelerator alone, captured on its first call and replayed after (o.graphs, no
 * cpu node): the inputs uploaded, the graph launched, the outputs left on the device. */
int il_plan_can_replay(const il_plan *p);
il_status il_plan_run_captured(il_plan *p);
/* Give value v a host buffer of t's shape (plan.c's arena slot or the heap). */
il_status il_plan_bind_host(il_plan *p, int v, il_tensor *t);
/* The machine a plan or a timing is valid for: "cpu:<model>|<isa flags>" (no newline). */
const char *il_cpu_signature(void);

#endif
