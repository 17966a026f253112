/*
 * drop_double_relu.c - an example pass plugin, the walk-through of docs/passes.md.
 *
 * Relu is idempotent: Relu(Relu(x)) = Relu(x). This pass finds a Relu whose input comes from
 * another Relu and makes it read x instead; the inner Relu is left to dead-node elimination
 * when nothing else reads it... or removed here when this Relu was its only reader.
 *
 * Build (one command, from the inferlab checkout or with -I pointing at the installed headers):
 *     cc -std=c11 -O2 -fPIC -shared -I. passes/examples/drop_double_relu.c -o drop_double_relu.so
 * Use:
 *     inferlab passes --plugin ./drop_double_relu.so
 *     inferlab opt model.onnx -p drop-double-relu,dead-nodes --plugin ./drop_double_relu.so -o out.onnx --verify --stats
 */
#include "passes/passes.h"

#include <string.h>

/* Node k is a live Relu of the default ONNX domain. */
static int is_relu(const il_graph *g, int k) {
    return k >= 0 && !g->nodes[k].dead && !g->nodes[k].domain[0] && !strcmp(g->nodes[k].op_type, "Relu");
}

static il_status run(il_graph *g, il_pass_stats *st) {
    for (int k = 0; k < g->n_nodes; k++) {
        if (!is_relu(g, k) || g->nodes[k].n_inputs != 1) continue;
        int mid = g->nodes[k].inputs[0];          /* Relu(x) */
        int inner = g->values[mid].producer;      /* the node writing it, -1 for inputs */
        if (!is_relu(g, inner)) continue;
        g->nodes[k].inputs[0] = g->nodes[inner].inputs[0]; /* read x directly */
        if (il_graph_consumers(g, mid, NULL, 0) == 0 && !g->values[mid].is_output)
            il_graph_remove_node(g, inner);       /* nobody reads Relu(x) any more */
        il_pass_count(st, "double Relu dropped", 1); /* every rewrite is counted */
    }
    return IL_OK;
}

static const il_pass pass = {
    "drop-double-relu",                 /* the name pipelines use */
    "Relu(Relu(x)) -> Relu(x) (example plugin)",
    run,
};

/* The entry point inferlab looks up after dlopen. */
il_status il_plugin_init(int abi) {
    IL_PLUGIN_CHECK_ABI(abi);
    return il_pass_register(&pass);
}
