/*
 * compute_rig.h - the one-node test rig shared by test_compute.c (which defines it) and
 * test_compute_fast.c: build a graph with one op, give it inputs, run infer and a kernel.
 * The rig owns its inputs (cr_in takes the tensor) and the outputs of both kernels.
 */
#ifndef IL_TEST_COMPUTE_RIG_H
#define IL_TEST_COMPUTE_RIG_H

#include "engine/ops/kernel.h"
#include "test.h"

#define D(...) ((const int64_t[]){__VA_ARGS__})
#define F(...) ((const float[]){__VA_ARGS__})
#define NI 10
#define NO 5

typedef struct {
    il_graph *g;
    int64_t opset;
    int n_in, n_out, threads;
    il_tensor *in[NI];
    il_tensor *out[2][NO]; /* [0] reference, [1] fast */
} cr_rig;

extern uint64_t cr_rng;

cr_rig *cr_new(const char *op, int n_in, int n_out); /* node "n" with inputs i0.., outputs o0.. */
void cr_free(cr_rig *r);
void cr_in(cr_rig *r, int i, il_tensor *t);           /* input i; takes t */
il_tensor *cr_f32(int rank, const int64_t *dims, const float *v); /* v may be NULL (zeros) */
il_tensor *cr_rand(il_dtype dt, int rank, const int64_t *dims);  /* uniform in [-1, 1) */
il_tensor *cr_iota(int rank, const int64_t *dims, float start);  /* start, start+1, ... */
/* infer, allocate, run the reference (fast = 0) or the fast kernel (fast = 1). */
il_status cr_run(cr_rig *r, int fast);
/* Both kernels give output o = want. */
void cr_expect(cr_rig *r, int o, int rank, const int64_t *dims, const float *want);
/* The fast kernel matches the reference on the current inputs; label names the case. */
int cr_fast_matches_ref(cr_rig *r, const char *label);
cr_rig *cr_einsum(const char *eq, il_tensor *a, il_tensor *b); /* b may be NULL */

#endif
