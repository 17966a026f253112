/*
 * channel.h - structured (channel) pruning that removes channels for real: the pruned model is a
 * smaller dense ONNX model that any runtime runs, and faster on the dense kernels because every
 * pruned layer does less work.
 *
 * What it removes. Each Conv (group 1), Gemm and MatMul with a constant weight is a layer whose
 * output channels are ranked by the L1 or L2 norm of their filters. A dependency analysis follows
 * every channel from the layer that makes it to every place that reads it, and removes it
 * everywhere at once:
 *  - the layer's filters and bias;
 *  - the parameters of a BatchNormalization / InstanceNormalization on the way;
 *  - the input channels of the next Conv, the K rows of the next Gemm/MatMul (a Flatten or a
 *    Reshape to [N, C*H*W] in between: the H*W rows of each channel);
 *  - depthwise convs (one input channel per group) pass channels through: their filters, bias
 *    and `group` follow their input;
 *  - channels that meet in an elementwise op (a residual Add, an SE block's Mul) are one channel
 *    of the analysis, scored jointly (summed norms of every layer that writes it) and kept or
 *    removed together; constant operands broadcast along channels are sliced;
 *  - Concat along channels maps each input's channels to its offset in the output;
 *  - activations, pools, Flatten, Transpose, Squeeze/Unsqueeze, reductions and softmax over other
 *    axes pass channels through.
 * Channels that reach a graph output, an op the analysis does not know (or one that mixes
 * channels: a grouped conv, Split, Slice, Softmax over channels...) or a graph input are kept.
 *
 * How many. Layers whose channels are tied together (a residual stage: every conv writing into
 * the stream) form one unit; each unit loses floor(ratio * channels) of its channels, the lowest
 * scores first (ties: the lower index goes first), never all of them. Layers named in exclude
 * (node names, weight names, "first" or "last" prunable layer) keep every channel.
 *
 * After the rewrite the shapes of every computed value are inferred again from the graph inputs
 * (no stale value_info: a graph output keeps its symbolic dim names where the dim is still
 * unknown), unused constants are dropped and the graph is verified. The recipe is written into
 * the model's metadata under "inferlab.prune" (one JSON object, method "channel").
 *
 * Errors: il_status with the message in il_errmsg(); on error the graph may be partly rewritten,
 * so callers prune a copy (il_graph_clone) when they need the original.
 */
#ifndef IL_PRUNE_CHANNEL_H
#define IL_PRUNE_CHANNEL_H

#include <stddef.h>

#include "../engine/engine.h"

/* Remove a fraction `ratio` in [0, 1) of the channels of each unit of g in place, ranked by the
 * L`norm` (1 or 2) norm of the filters. exclude: n_exclude names as above (may be NULL). err
 * (may be NULL) also receives the message on failure, for callers that keep their own. */
il_status il_prune_channels(il_graph *g, float ratio, int norm, const char *const *exclude, int n_exclude, char *err,
                            size_t errlen);

/* ---- the same with a report and two more modes (the test oracle; the gradual schedule) */

typedef enum {
    IL_CHANNEL_REMOVE = 0, /* what il_prune_channels does */
    IL_CHANNEL_ZERO = 1,   /* keep every shape; zero the weights that read the channels REMOVE would
                              remove (Conv input channels, Gemm/MatMul rows): the same function of
                              the inputs as the pruned model, computed the dense way (the oracle) */
    IL_CHANNEL_MASK = 2    /* keep every shape; zero everything of those channels: their filters,
                              biases, BatchNorm parameters and statistics, broadcast constants, and
                              the weights that read them. The same function as the pruned model;
                              the zeroed filters score 0, so REMOVE at the same or a higher ratio
                              removes these channels first (the gradual channel schedule) */
} il_channel_mode;

typedef struct il_channel_report {
    int units;                    /* units with at least one prunable channel */
    int64_t channels, removed;    /* prunable channels (of the analysis), removed */
    int64_t params_before, params_after; /* elements of every constant */
} il_channel_report;

il_status il_prune_channels_ex(il_graph *g, float ratio, int norm, const char *const *exclude, int n_exclude,
                               il_channel_mode mode, il_channel_report *report);

#endif
