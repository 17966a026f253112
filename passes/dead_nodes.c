/*
 * dead_nodes.c - pass "dead-nodes": remove nodes none of whose outputs is read by another node
 * or is a graph output, and initializers nothing reads. Every ONNX op is a pure function at
 * inference, so a node nobody reads has no effect.
 */
#include "pass_util.h"

static il_status run(il_graph *g, il_pass_stats *st) {
    int *order = malloc((size_t)(g->n_nodes + 1) * sizeof(int)), m;
    il_status s = il_graph_topo_order(g, order, &m);
    if (s) {
        free(order);
        return s;
    }
    /* readers first (reverse topological order), so a whole dead chain goes in one sweep */
    int *uses = calloc((size_t)g->n_values + 1, sizeof(int));
    for (int k = 0; k < g->n_nodes; k++)
        if (!g->nodes[k].dead)
            for (int i = 0; i < g->nodes[k].n_inputs; i++)
                if (g->nodes[k].inputs[i] >= 0) uses[g->nodes[k].inputs[i]]++;
    for (int i = 0; i < g->n_outputs; i++) uses[g->outputs[i]]++;
    for (int j = m - 1; j >= 0; j--) {
        il_node *n = &g->nodes[order[j]];
        int used = 0;
        for (int i = 0; i < n->n_outputs; i++) used |= n->outputs[i] >= 0 && uses[n->outputs[i]] > 0;
        if (used) continue;
        il_graph_remove_node(g, order[j]);
        for (int i = 0; i < n->n_inputs; i++)
            if (n->inputs[i] >= 0) uses[n->inputs[i]]--;
        il_pass_count(st, "dead nodes removed", 1);
    }
    for (int v = 0; v < g->n_values; v++)
        if (g->values[v].constant && !g->values[v].is_input && !uses[v]) il_pass_count(st, "unused initializers dropped", 1);
    free(uses);
    free(order);
    return IL_OK; /* the manager's compaction drops the values these nodes and initializers leave */
}

const il_pass il_pass_dead_nodes = {"dead-nodes", "remove nodes and initializers whose results nothing reads", run};
