/*
 * insert_casts.c - pass insert-casts: where an op computes on a float16/bfloat16 value, Cast it
 * to float32 and Cast the results the model declares half back (engine/precision.c does the
 * rewrite; plans apply it on their own copy, so this pass is for writing the rewritten model).
 */
#include "builtin.h"

static il_status run(il_graph *g, il_pass_stats *st) {
    il_shapes *s;
    il_status rc = il_infer_shapes(g, 1, NULL, 0, &s);
    if (rc) return rc;
    int n = 0;
    if (il_graph_needs_casts(g, s)) rc = il_graph_insert_casts(g, s, &n);
    il_shapes_free(s);
    if (!rc && n) il_pass_count(st, "Casts inserted", n);
    return rc;
}

const il_pass il_pass_insert_casts = {"insert-casts",
                                      "Cast float16/bfloat16 inputs of computing ops to float32 and their results back", run};
