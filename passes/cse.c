/*
 * cse.c - pass "cse": common-subexpression elimination. Two initializers with the same dtype,
 * shape and bytes become one; then two nodes with the same op, attributes and inputs compute
 * the same outputs, so the later one's readers read the earlier one's outputs. Visiting nodes
 * in topological order lets merges cascade (once two Shape nodes merge, the Gathers reading
 * them become equal too). Random ops are never merged.
 */
#include "pass_util.h"

static uint64_t mix(uint64_t h, uint64_t x) { return (h ^ x) * 1099511628211ULL; }

static uint64_t hash_bytes(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = mix(h, b[i]);
    return h;
}

static uint64_t hash_str(uint64_t h, const char *s) { return s ? hash_bytes(h, s, strlen(s)) : mix(h, 0); }

static int same_tensor(const il_tensor *a, const il_tensor *b) {
    if (!a || !b) return a == b;
    if (a->dtype != b->dtype || a->rank != b->rank || memcmp(a->dims, b->dims, (size_t)a->rank * sizeof(int64_t)))
        return 0;
    if (!a->data || !b->data) return a->data == b->data;
    return !memcmp(a->data, b->data, il_tensor_bytes(a));
}

static int same_attr(const il_attr *a, const il_attr *b) {
    if (strcmp(a->name, b->name) || a->type != b->type || a->n != b->n || a->i != b->i) return 0;
    if (memcmp(&a->f, &b->f, sizeof a->f)) return 0; /* bitwise: NaN attributes compare equal to themselves */
    if ((a->s || b->s) && (!a->s || !b->s || a->slen != b->slen || memcmp(a->s, b->s, a->slen))) return 0;
    if ((a->ints || b->ints) && (!a->ints || !b->ints || memcmp(a->ints, b->ints, (size_t)a->n * sizeof(int64_t))))
        return 0;
    if ((a->floats || b->floats) && (!a->floats || !b->floats || memcmp(a->floats, b->floats, (size_t)a->n * sizeof(float))))
        return 0;
    for (int i = 0; a->strings && b->strings && i < a->n; i++)
        if (strcmp(a->strings[i] ? a->strings[i] : "", b->strings[i] ? b->strings[i] : "")) return 0;
    if (!same_tensor(a->t, b->t)) return 0;
    for (int i = 0; a->tensors && b->tensors && i < a->n; i++)
        if (!same_tensor(a->tensors[i], b->tensors[i])) return 0;
    if ((a->raw || b->raw) && (!a->raw || !b->raw || a->raw_len != b->raw_len || memcmp(a->raw, b->raw, a->raw_len)))
        return 0;
    return 1;
}

static int same_node(const il_node *a, const il_node *b) {
    if (strcmp(a->op_type, b->op_type) || strcmp(a->domain, b->domain) || a->n_inputs != b->n_inputs ||
        a->n_outputs != b->n_outputs || a->n_attrs != b->n_attrs)
        return 0;
    if (memcmp(a->inputs, b->inputs, (size_t)a->n_inputs * sizeof(int))) return 0;
    for (int i = 0; i < a->n_attrs; i++) {
        const il_attr *o = il_node_attr(b, a->attrs[i].name);
        if (!o || !same_attr(&a->attrs[i], o)) return 0;
    }
    return 1;
}

static int random_op(const il_node *n) {
    return !strncmp(n->op_type, "Random", 6) || !strcmp(n->op_type, "Multinomial") || !strcmp(n->op_type, "Bernoulli");
}

static void merge_initializers(il_graph *g, il_pass_stats *st) {
    int nv = g->n_values;
    uint64_t *h = calloc((size_t)nv + 1, sizeof(uint64_t));
    for (int v = 0; v < nv; v++) {
        const il_tensor *t = g->values[v].constant;
        if (!t || g->values[v].is_input || g->values[v].is_output || !t->data) continue;
        h[v] = hash_bytes(mix(mix(14695981039346656037ULL, (uint64_t)t->dtype), (uint64_t)t->rank), t->dims,
                          (size_t)t->rank * sizeof(int64_t));
        h[v] = hash_bytes(h[v], t->data, il_tensor_bytes(t)) | 1; /* 0 marks "not a candidate" */
    }
    for (int v = 0; v < nv; v++) {
        if (!h[v]) continue;
        for (int w = 0; w < v; w++)
            if (h[w] == h[v] && same_tensor(g->values[w].constant, g->values[v].constant)) {
                if (pu_uses(g, v)) il_pass_count(st, "duplicate initializers merged", 1);
                il_graph_replace_uses(g, v, w);
                h[v] = 0;
                break;
            }
    }
    free(h);
}

static il_status run(il_graph *g, il_pass_stats *st) {
    merge_initializers(g, st);
    int *order = malloc((size_t)(g->n_nodes + 1) * sizeof(int)), m;
    il_status s = il_graph_topo_order(g, order, &m);
    uint64_t *h = calloc((size_t)g->n_nodes + 1, sizeof(uint64_t));
    for (int j = 0; j < m && !s; j++) {
        int k = order[j];
        il_node *n = &g->nodes[k];
        if (random_op(n) || !n->n_outputs) continue;
        uint64_t x = hash_str(hash_str(14695981039346656037ULL, n->op_type), n->domain);
        for (int i = 0; i < n->n_inputs; i++) x = mix(x, (uint64_t)(uint32_t)n->inputs[i]);
        h[k] = x | 1;
        int dup_out = 0;
        for (int i = 0; i < n->n_outputs; i++) dup_out |= n->outputs[i] >= 0 && g->values[n->outputs[i]].is_output;
        if (dup_out) continue; /* a graph output keeps its producer */
        for (int i = 0; i < j; i++) {
            int e = order[i];
            if (h[e] != h[k] || g->nodes[e].dead || !same_node(&g->nodes[e], n)) continue;
            int missing = 0; /* an output the earlier node omits but this one's readers need */
            for (int o = 0; o < n->n_outputs; o++)
                missing |= n->outputs[o] >= 0 && g->nodes[e].outputs[o] < 0 && pu_uses(g, n->outputs[o]);
            if (missing) continue;
            for (int o = 0; o < n->n_outputs; o++)
                if (n->outputs[o] >= 0 && g->nodes[e].outputs[o] >= 0)
                    il_graph_replace_uses(g, n->outputs[o], g->nodes[e].outputs[o]);
            il_graph_remove_node(g, k);
            il_pass_count(st, "duplicate nodes merged", 1);
            break;
        }
    }
    free(h);
    free(order);
    return s;
}

const il_pass il_pass_cse = {"cse", "merge duplicate initializers and nodes computing the same thing", run};
