/*
 * precision.c - the insert-casts rewrite: precision changes as explicit Cast nodes.
 *
 * The kernels compute float32 (and float64); float16 and bfloat16 values only move through ops
 * that do not look at the numbers (IL_OPF_ANY_DTYPE: Reshape, Gather, Cast, Concat...). Where a
 * computing op reads a half value, this pass puts Cast(to float32) on that input and, for each
 * output the model declares half, computes it in float32 and adds Cast(to half) after it, so
 * the graph itself says where precision changes (and a plan file, `build --verbose` and the
 * profile show those Casts); the executor converts nothing. il_plan_create runs it on its own
 * copy of a graph that needs it; `inferlab opt -p insert-casts` applies it to a model.
 * New nodes and values are appended, so every existing node and value keeps its index.
 */
#include "ops/kernel.h"

static int is_half(il_dtype t) { return t == IL_F16 || t == IL_BF16; }

/* Whether node k computes on a half input under these shapes. */
static int needs_cast(const il_graph *g, const il_shapes *s, int k) {
    const il_node *n = &g->nodes[k];
    if (n->dead || s->folded[k]) return 0;
    const il_op *op = il_op_find(n->domain, n->op_type);
    if (!op || (op->flags & IL_OPF_ANY_DTYPE)) return 0;
    for (int i = 0; i < n->n_inputs; i++)
        if (n->inputs[i] >= 0 && is_half(s->info[n->inputs[i]].dtype)) return 1;
    return 0;
}

int il_graph_needs_casts(const il_graph *g, const il_shapes *s) {
    for (int k = 0; k < g->n_nodes; k++)
        if (needs_cast(g, s, k)) return 1;
    return 0;
}

static int add_cast(il_graph *g, int from, int to, il_dtype dt, const char *name) {
    int k = il_graph_add_node(g, "Cast", "", name, 1, &from, 1, &to);
    il_node_set_int(g, k, "to", (int64_t)dt);
    g->values[to].dtype = dt;
    return k;
}

il_status il_graph_insert_casts(il_graph *g, const il_shapes *s, int *inserted) {
    int n0 = g->n_nodes, nv0 = g->n_values, count = 0;
    int *as_f32 = malloc((size_t)(nv0 + 1) * sizeof *as_f32); /* a value's float32 copy, made once */
    for (int v = 0; v < nv0; v++) as_f32[v] = -1;
    char name[512];
    for (int k = 0; k < n0; k++) {
        if (!needs_cast(g, s, k)) continue;
        for (int i = 0; i < g->nodes[k].n_inputs; i++) {
            int v = g->nodes[k].inputs[i];
            if (v < 0 || v >= nv0 || !is_half(s->info[v].dtype)) continue;
            if (as_f32[v] < 0) {
                snprintf(name, sizeof name, "%s_f32", g->values[v].name);
                as_f32[v] = il_graph_new_value(g, name);
                snprintf(name, sizeof name, "%s_cast_f32", g->values[v].name);
                add_cast(g, v, as_f32[v], IL_F32, name);
                count++;
            }
            g->nodes[k].inputs[i] = as_f32[v];
        }
        for (int j = 0; j < g->nodes[k].n_outputs; j++) {
            int v = g->nodes[k].outputs[j];
            if (v < 0 || !is_half(s->info[v].dtype)) continue;
            snprintf(name, sizeof name, "%s_f32", g->values[v].name);
            int w = il_graph_new_value(g, name);
            g->values[w].dtype = IL_F32;
            g->nodes[k].outputs[j] = w;
            g->values[w].producer = k;
            snprintf(name, sizeof name, "%s_cast_back", g->values[v].name);
            add_cast(g, w, v, s->info[v].dtype, name);
            if (v < nv0) as_f32[v] = w; /* later computing readers take the float32 result as it is */
            count++;
        }
    }
    /* a cast back that nothing reads any more (every reader computes in float32) goes again */
    int *uses = calloc((size_t)g->n_values + 1, sizeof *uses);
    for (int k = 0; k < g->n_nodes; k++)
        for (int i = 0; i < g->nodes[k].n_inputs; i++)
            if (!g->nodes[k].dead && g->nodes[k].inputs[i] >= 0) uses[g->nodes[k].inputs[i]]++;
    for (int i = 0; i < g->n_outputs; i++) uses[g->outputs[i]]++;
    for (int k = n0; k < g->n_nodes; k++) {
        int v = g->nodes[k].outputs[0];
        if (!uses[v] && is_half(g->values[v].dtype)) {
            il_graph_remove_node(g, k);
            g->values[v].producer = -1;
            count--;
        }
    }
    free(uses);
    free(as_f32);
    if (inserted) *inserted = count;
    return IL_OK;
}
