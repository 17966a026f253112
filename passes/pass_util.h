/*
 * pass_util.h - helpers the built-in passes share: walking producers and consumers, reading
 * constants, adding nodes and constants, removing what a rewrite left unused, and shapes.
 * Internal to passes/ (plugins use only passes.h and engine.h).
 *
 * Conventions: node and value indices stay valid during a pass (nodes are only appended or
 * marked dead); il_node pointers do not survive il_graph_add_node (the array may move), so
 * helpers take indices. A rewrite adds its new node writing the pattern's last value, then
 * calls pu_kill on the old last node, which also removes the pattern's now-unused producers.
 */
#ifndef IL_PASS_UTIL_H
#define IL_PASS_UTIL_H

#include "passes.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define IL_DOMAIN "ai.inferlab"

/* Live producer node of value v, or -1 (graph input, initializer, v < 0). */
int pu_producer(const il_graph *g, int v);
/* Node k is live and is the default-domain op `op`. */
int pu_is(const il_graph *g, int k, const char *op);
/* Node k is live and is op `op` of the ai.inferlab domain. */
int pu_is_fused(const il_graph *g, int k, const char *op);
/* Node k is a live Conv (1) or ai.inferlab FusedConv (2) with one output and its inputs (X, W
 * [, B [, Z]]); 0 otherwise. */
int pu_conv(const il_graph *g, int k);
/* Uses of v: (node, slot) reads by live nodes, plus one if v is a graph output. */
int pu_uses(const il_graph *g, int v);
/* The only reader of v (one use, not a graph output), or -1. */
int pu_sole_consumer(const il_graph *g, int v);
/* Of a two-input node k, the input that is not v; -1 when v is not one of its two inputs. */
int pu_other_input(const il_graph *g, int k, int v);
/* Number of non-omitted outputs of k that anything uses. */
int pu_used_outputs(const il_graph *g, int k);

/* Constant data of v: its initializer or the `value` tensor of a Constant node; else NULL. */
const il_tensor *pu_const(const il_graph *g, int v);
/* v is a constant of one element (any rank): its value in *x. */
int pu_scalar(const il_graph *g, int v, double *x);
/* v is a one-element constant within rtol of want. */
int pu_scalar_is(const il_graph *g, int v, double want, double rtol);
/* A float32 tensor holding a copy of constant c converted to float (any numeric dtype). */
il_tensor *pu_to_f32(const il_tensor *c);
/* Add an initializer with a fresh name derived from base; takes t. Returns its value. */
int pu_add_const(il_graph *g, const char *base, il_tensor *t);
/* A float32 constant of rank 1 and n elements (data copied when given, else zeros). */
int pu_add_f32(il_graph *g, const char *base, int64_t n, const float *data);
/* A new computed value named from base, dtype/rank copied from like (-1: unknown). */
int pu_new_value(il_graph *g, const char *base, int like);

/* Copy node src's attributes onto node dst, except those named in skip (NULL-terminated list,
 * or NULL). Graph-valued attributes are copied as their serialized bytes. */
void pu_copy_attrs(il_graph *g, int dst, int src, const char *const *skip);
/* The same from a node of another graph (src must not be a node of g). */
void pu_copy_attrs_from(il_graph *g, int dst, const il_node *src, const char *const *skip);
/* Replace node k (one input x, one output y) by its input: readers of y read x. When y is a
 * graph output, x's producer writes y instead, if that is possible without renaming anything
 * else. Returns 1 when k was removed. */
int pu_bypass(il_graph *g, int k, int x, int y);
/* Add a node (inputs/outputs as in il_graph_add_node) named after node `like` with a suffix. */
int pu_add_node(il_graph *g, const char *op, const char *domain, int like, const char *suffix, int n_in,
                const int *in, int n_out, const int *out);
/* Mark node k dead, then every producer whose outputs are all unused now, recursively. */
void pu_kill(il_graph *g, int k);
/* The default-domain opset in force (1 when the graph imports none). */
int64_t pu_opset(const il_graph *g);
/* Make sure the graph imports ai.inferlab (version 1). */
void pu_use_fused_domain(il_graph *g);

/* ---- shapes: inferred twice, with symbolic dims bound to two different sets of values, so a
 * dim is "static" only when both agree (a symbolic batch is never mistaken for 1). */
typedef struct pu_shapes {
    il_shapes *a, *b; /* NULL when inference failed: every shape unknown */
} pu_shapes;

void pu_shapes_init(pu_shapes *s, const il_graph *g);
void pu_shapes_free(pu_shapes *s);
int pu_rank(const pu_shapes *s, int v);                /* -1 unknown */
int64_t pu_dim(const pu_shapes *s, int v, int d);      /* -1 unless static; d < 0 counts from the end */
il_dtype pu_dtype(const pu_shapes *s, int v);
int pu_same_shape(const pu_shapes *s, int a, int b);   /* equal under both bindings */
/* Dims of v under both bindings known and equal: copy into dims, return rank; else -1. */
int pu_static_shape(const pu_shapes *s, int v, int64_t *dims);

/* ---- activations that fused kernels apply in their epilogue (the `activation` attribute) */

/* When node k is an activation a fused kernel can apply, set its name (static string) and up
 * to two parameters and return 1. Handles Relu, Clip (attributes or constant inputs),
 * LeakyRelu, Sigmoid, HardSwish, HardSigmoid, Gelu (both domains), Tanh, SiLU. */
int pu_activation(const il_graph *g, int k, const char **name, float *p, int *np);
/* Write `activation` and `activation_params` onto node k. */
void pu_set_activation(il_graph *g, int k, const char *name, const float *p, int np);

#endif
