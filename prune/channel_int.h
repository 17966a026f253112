/*
 * channel_int.h - private to channel pruning (prune/channel.c: the dependency analysis and the
 * choice of channels; prune/channel_apply.c: the rewrite). Not a public header.
 *
 * The analysis works on channel *elements*: every output channel of a layer is one element, and
 * every value that carries channels has a map (ch_map) from its positions along the channel axis
 * to elements. Maps may repeat an element (a depthwise conv with a channel multiplier, the H*W
 * positions of one channel after a Flatten). Ops that tie channels together (an elementwise op
 * over two channel-carrying values) unite elements in a union-find; a class of elements is one
 * channel of the analysis, removed from every map that holds one of its elements. A class with a
 * fixed element (it reaches a graph output, a graph input or an op we do not follow) stays.
 */
#ifndef IL_PRUNE_CHANNEL_INT_H
#define IL_PRUNE_CHANNEL_INT_H

#include "channel.h"

#include <stdlib.h>
#include <string.h>

typedef struct ch_map {
    int n;    /* positions along the channel axis */
    int axis; /* the channel axis of the value */
    int *el;  /* element of each position */
} ch_map;

/* What the rewrite does to one constant input (node, slot), along `axis`, using the kept
 * positions of value `value`'s map. */
typedef enum {
    CH_SLICE,   /* keep those positions (filters, biases, BN parameters, broadcast constants) */
    CH_SINK,    /* the same for a weight that reads the channels (ZERO mode: zero the others) */
    CH_GROUP,   /* a depthwise conv: attribute group := kept positions of `value` (its input) */
    CH_RESHAPE  /* entry `axis` of Reshape's shape constant := kept positions, when explicit */
} ch_action_kind;

typedef struct {
    ch_action_kind kind;
    int node, slot, axis, value;
} ch_action;

typedef struct ch_ctx {
    il_graph *g;
    il_shapes *s;            /* shapes of the unpruned graph */
    int norm;
    /* elements: union-find with the class's summed score (L1 norms, or squared L2 norms) */
    int n_el, cap_el;
    int *parent, *layer;     /* layer: the node that made the element, -1 for fixed ones */
    double *score;
    unsigned char *fixed, *removed;
    int *lparent;            /* layers (indexed by node) tied into units, union-find */
    ch_map **map;            /* per value; NULL: carries no channels we follow */
    ch_map **maps;           /* every map made (owned) */
    int n_maps, cap_maps;
    ch_action *act;
    int n_act, cap_act;
    const char *const *exclude;
    int n_exclude;
    int first_layer, last_layer; /* node indices of the first and last prunable layers, -1 */
} ch_ctx;

/* Product of dims[from..to) (1 when empty, -1 when one is unknown); a shape with every dim known. */
static inline int64_t dims_prod(const int64_t *dims, int from, int to) {
    return to > from ? il_shape_numel(to - from, dims + from) : 1;
}
static inline int shape_known(const il_tensor *t) { return t->rank >= 0 && il_shape_numel(t->rank, t->dims) >= 0; }

/* channel.c */
int ch_find(ch_ctx *x, int e);   /* the class of element e */
int ch_lfind(ch_ctx *x, int l);  /* the unit of layer (node) l */
/* The analysis of g (x->g, x->s set): elements, classes, maps and actions. */
il_status ch_analyze(ch_ctx *x);
void ch_ctx_free(ch_ctx *x);

/* channel_apply.c: the choice (x->removed, counted in r), then the actions, then (REMOVE)
 * shapes inferred again, compaction, verification. */
void ch_choose(ch_ctx *x, float ratio, il_channel_report *r);
il_status ch_apply(ch_ctx *x, il_channel_mode mode);
/* Elements of every constant of g. */
int64_t ch_param_count(const il_graph *g);

#endif
