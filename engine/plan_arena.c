/*
 * plan_arena.c - where each activation of a plan lives: its size and live range from the node
 * order, then its offset in the one arena the liveness planner (memplan.c) packs, or a loaded
 * plan's stored offsets (plan_file.c). Apart from the executor (plan.c), which only reads the
 * offsets back (il_plan_bind_host), because which values may share a slot (views, outputs
 * written over their input, channel slices of a Concat) is a question of its own.
 */
#include "memplan.h"
#include "plan_int.h"

/* Reshape, Flatten, Squeeze, Unsqueeze and Identity hand on their input's bytes unchanged. Their
 * reference kernel (copy_ref) copies nothing when the output already is the input, so where the
 * input is an arena value the output takes the input's slot, which then lives until the last
 * reader of either (nothing writes a value after its producer). Transformers spend many of them
 * per layer on the head splits: ViT-tiny at batch 8 copied 3.4 ms of its 160 in 49 Reshapes. */
static int is_view(const il_plan *p, int k) {
    static const char *const views[] = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"};
    const il_node *n = &p->g->nodes[k];
    if (n->domain[0] && strcmp(n->domain, "ai.onnx")) return 0;
    if (!p->kern[k] || strcmp(p->kern[k]->name, "ref") || n->n_inputs < 1 || n->n_outputs != 1) return 0;
    for (size_t i = 0; i < sizeof views / sizeof *views; i++)
        if (!strcmp(n->op_type, views[i])) return 1;
    return 0;
}

/* The arena slots: each value's own, or (alias) the slot of the value a view node reads or of
 * the input its producer writes it over (p->over, where nothing reads that input later), or a
 * channel slice of the Concat output it is written into (plan_layout.c), which then lives from
 * the first of its inputs' producers. */
static int64_t plan_slots(il_plan *p, int64_t *first) {
    const il_graph *g = p->g;
    int nv = g->n_values;
    int *root = malloc((size_t)(nv + 1) * sizeof(int));
    int64_t *last = malloc((size_t)(nv + 1) * sizeof(int64_t)), *size = malloc((size_t)(nv + 1) * sizeof(int64_t));
    for (int v = 0; v < nv; v++) root[v] = v, last[v] = p->last[v], size[v] = p->size[v];
    for (int j = 0; j < p->n_order && !p->acc; j++) {
        int k = p->order[j], y0 = g->nodes[k].n_outputs > 0 ? g->nodes[k].outputs[0] : -1;
        int over = y0 >= 0 ? p->over[y0] : -1;
        if (p->s->folded[k] || (over < 0 && !is_view(p, k))) continue;
        int x = over >= 0 ? over : g->nodes[k].inputs[0], y = g->nodes[k].outputs[0];
        if (x < 0 || y < 0 || (over < 0 && (p->blocked[x] || p->blocked[y]))) continue;
        int r = root[x];
        if (p->size[r] <= 0 || p->size[y] <= 0 || p->size[y] > p->size[r]) continue;
        if (over >= 0 && last[r] != j) continue; /* read after this node (a view of it, or its root) */
        root[y] = r;
        size[y] = 0; /* placed with r */
        if (last[y] > last[r]) last[r] = last[y];
    }
    for (int v = 0; v < nv && !p->acc; v++) {
        int y = p->cat_root[v];
        if (y < 0 || root[y] != y) continue;
        size[v] = 0;
        if (first[v] < first[y]) first[y] = first[v];
    }
    int64_t arena = il_memplan(nv, size, first, last, p->offset);
    for (int v = 0; v < nv; v++)
        if (root[v] != v) p->offset[v] = p->offset[root[v]];
    for (int v = 0; v < nv && !p->acc; v++)
        if (p->cat_root[v] >= 0 && root[p->cat_root[v]] == p->cat_root[v] && p->offset[p->cat_root[v]] >= 0)
            p->offset[v] = p->offset[p->cat_root[v]] + p->cat_off[v];
    free(root), free(last), free(size);
    return arena;
}

/* Sizes and last uses from the node order, then the slots (or a loaded plan's own, checked). */
il_status il_plan_lay_arena(il_plan *p) {
    const il_graph *g = p->g;
    int nv = g->n_values;
    int64_t *first = malloc((size_t)(nv + 1) * sizeof(int64_t));
    for (int v = 0; v < nv; v++) {
        p->offset[v] = -1;
        p->size[v] = 0;
        first[v] = -1;
        p->last[v] = -1;
    }
    for (int j = 0; j < p->n_order; j++) {
        const il_node *n = &g->nodes[p->order[j]];
        if (p->s->folded[p->order[j]]) continue;
        for (int i = 0; i < n->n_inputs; i++)
            if (n->inputs[i] >= 0) p->last[n->inputs[i]] = j;
        for (int i = 0; i < n->n_outputs; i++) {
            int v = n->outputs[i];
            if (v < 0) continue;
            first[v] = j;
            if (p->last[v] < j) p->last[v] = j;
            const il_tensor *t = &p->s->info[v];
            if (il_shape_known(t) && il_dtype_size(t->dtype) && !(p->ops[p->order[j]]->flags & IL_OPF_DYNAMIC_OUT))
                p->size[v] = (int64_t)(p->blocked[v] ? il_blocked_bytes(t) : il_tensor_bytes(t));
        }
    }
    for (int i = 0; i < g->n_outputs; i++) p->last[g->outputs[i]] = p->n_order;
    p->total_bytes = 0;
    for (int v = 0; v < nv; v++) {
        if (first[v] < 0) p->size[v] = 0;
        p->total_bytes += p->size[v];
    }
    il_status st = IL_OK;
    if (p->memplan) { /* a loaded plan's layout, checked against the sizes just computed */
        st = il_plan_apply_memplan(p, p->memplan, p->memplan_len);
        p->memplan = NULL;
        /* and against the Concats written in place, which the kernels were prepared for */
        for (int v = 0; v < nv && !st; v++)
            if (p->cat_root[v] >= 0 && p->offset[v] != p->offset[p->cat_root[v]] + p->cat_off[v])
                st = il_error(IL_ERR_PARSE, "its memory plan does not write '%s' into its Concat's output, as this "
                              "binary does: build the plan again", g->values[v].name);
    } else {
        p->arena_bytes = plan_slots(p, first);
    }
    free(first);
    if (st) return st;
    free(p->arena);
    p->arena = aligned_alloc(64, (size_t)((p->arena_bytes + 63) / 64 * 64 + 64));
    if (!p->arena) return il_error(IL_ERR_OOM, "out of memory for a %lld-byte activation arena", (long long)p->arena_bytes);
    return IL_OK;
}
