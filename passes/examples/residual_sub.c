/*
 * residual_sub.c - a deliberately WRONG example pass plugin: it turns every residual Add (both
 * inputs computed, neither a constant) into a Sub. It exists to show that `opt --verify` catches
 * a wrong pass even when the model's outputs are tiny (tests/test_passes.c loads it).
 *
 * Build: cc -std=c11 -O2 -fPIC -shared -I. passes/examples/residual_sub.c -o residual_sub.so
 * Use:   inferlab opt model.onnx -p residual-sub --plugin ./residual_sub.so -o out.onnx --verify
 *        (fails: "pass 'residual-sub' broke equivalence: ...")
 */
#include "passes/passes.h"

#include <string.h>

static il_status run(il_graph *g, il_pass_stats *st) {
    for (int k = 0; k < g->n_nodes; k++) {
        il_node *n = &g->nodes[k];
        if (n->dead || n->domain[0] || strcmp(n->op_type, "Add") || n->n_inputs != 2) continue;
        if (g->values[n->inputs[0]].constant || g->values[n->inputs[1]].constant) continue;
        if (g->values[n->inputs[0]].is_input || g->values[n->inputs[1]].is_input) continue;
        memcpy(n->op_type, "Sub", 4); /* the graph owns the string; "Add" and "Sub" have one length */
        il_pass_count(st, "residual Adds made Subs (wrong on purpose)", 1);
    }
    return IL_OK;
}

static const il_pass pass = {"residual-sub", "Add(a, b) -> Sub(a, b) for computed a, b (a wrong pass, for tests)", run};

il_status il_plugin_init(int abi) {
    IL_PLUGIN_CHECK_ABI(abi);
    return il_pass_register(&pass);
}
