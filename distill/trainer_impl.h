/*
 * trainer_impl.h - internal to distill/: the trainer's state, shared by the CPU executor
 * (trainer.c) and the CUDA one (trainer_cuda.c).
 *
 * With the CUDA executor the host keeps what it keeps on the CPU -- the graph, parameters,
 * their gradients, BN buffers, constants -- and stays the authority for them between calls:
 * each forward uploads parameters and buffers, a training forward brings the buffers back and
 * backward brings the parameter gradients back. So the optimizer, FedAvg and export work
 * unchanged; only activations and their gradients live on the device.
 */
#ifndef IL_TRAINER_IMPL_H
#define IL_TRAINER_IMPL_H

#include "grad.h"

struct il_trainer {
    il_graph *g;
    il_dtype dt;
    int threads;
    int *order, n_order;
    il_tensor **val, **grad; /* per value */
    size_t *cap, *gcap;      /* allocated bytes of val/grad data (activations only) */
    unsigned char *needs;    /* per value: the loss's gradient w.r.t. it is wanted */
    unsigned char *fixed;    /* per value: constant data owned by the trainer (params, consts) */
    unsigned char *pending;  /* per value: gradient added by il_trainer_add_grad */
    int *params, n_params, *buffers, n_buffers;
    const il_op **ops;
    const gr_op **gops;
    void **saved;            /* per node */
    uint64_t rng;
    int input_grad;
    struct tc_gpu *gpu;      /* the CUDA executor's state (trainer_cuda.c), NULL on the CPU */
};

/* trainer.c: t holds dtype/shape, its buffer (cap bytes) regrown when too small; an empty tensor struct. */
il_status tr_ensure(il_tensor *t, size_t *cap, il_dtype dt, int rank, const int64_t *dims);
il_tensor *tr_tensor_struct(void);

/* trainer_cuda.c: the same calls on the GPU (IL_ERR_CUDA/UNSUPPORTED when it cannot). */
il_status tc_create(il_trainer *t);
/* The GPU trainer's kernels into the registry (role IL_KERNEL_BACKWARD, backend cuda). */
void tc_register_kernels(void);
void tc_free(il_trainer *t);
il_status tc_forward(il_trainer *t, const il_tensor *x, int training, const il_tensor **logits);
il_status tc_backward(il_trainer *t, const il_tensor *dout);
il_status tc_value(il_trainer *t, int v);

#endif
