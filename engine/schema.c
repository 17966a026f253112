/*
 * schema.c - checking a node against its op's schema (schema.h): the arity, which inputs and
 * outputs may be omitted, and the attribute types, so that what shape inference and kernels
 * read is there and of the type they read it as. il_graph_verify and shape inference call
 * il_node_check for every node; a wrong model is refused once, here, with the node named,
 * instead of each kernel guarding (or not) against a missing tensor.
 */
#include "schema.h"

#include "engine.h"

#include <string.h>

static int is_default_domain(const char *d) { return !d || !*d || !strcmp(d, "ai.onnx"); }

static int cmp_key(const char *da, const char *na, const il_schema *b) {
    int c = strcmp(is_default_domain(da) ? "" : da, b->domain);
    return c ? c : strcmp(na, b->name);
}

const il_schema *il_schema_find(const char *domain, const char *name, int64_t opset) {
    int lo = 0, hi = il_n_schemas; /* first entry not below (domain, name) */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (cmp_key(domain, name, &il_schemas[mid]) > 0) lo = mid + 1;
        else hi = mid;
    }
    const il_schema *best = NULL;
    for (int i = lo; i < il_n_schemas && !cmp_key(domain, name, &il_schemas[i]); i++)
        if (il_schemas[i].since_version <= opset) best = &il_schemas[i];
    return best;
}

static const char *attr_type_name(int t) {
    static const char *names[] = {"UNDEFINED", "FLOAT", "INT", "STRING", "TENSOR", "GRAPH", "FLOATS", "INTS",
                                  "STRINGS", "TENSORS", "GRAPHS", "SPARSE_TENSOR", "SPARSE_TENSORS",
                                  "TYPE_PROTO", "TYPE_PROTOS"};
    return t >= 0 && t < (int)(sizeof names / sizeof *names) ? names[t] : "unknown";
}

/* The option letter of slot i: the formal parameter's own, or the variadic last one's. */
static char slot_kind(const char *params, int i) {
    int n = (int)strlen(params);
    if (n == 0) return 's';
    return i < n ? params[i] : params[n - 1];
}

static il_status check_slots(const il_node *n, const il_schema *s, int out) {
    int count = out ? n->n_outputs : n->n_inputs, lo = out ? s->min_out : s->min_in, hi = out ? s->max_out : s->max_in;
    const int *slot = out ? n->outputs : n->inputs;
    const char *what = out ? "output" : "input";
    if (count < lo || count > hi) {
        char range[48];
        if (lo == hi) snprintf(range, sizeof range, "%d", lo);
        else if (hi == 2147483647) snprintf(range, sizeof range, "at least %d", lo);
        else snprintf(range, sizeof range, "%d to %d", lo, hi);
        return il_error(IL_ERR_GRAPH, "node '%s' (%s): has %d %ss, but %s (opset %d) takes %s", n->name, n->op_type,
                        count, what, s->name, s->since_version, range);
    }
    for (int i = 0; i < count; i++)
        if (slot[i] < 0 && slot_kind(out ? s->outputs : s->inputs, i) != 'o')
            return il_error(IL_ERR_GRAPH, "node '%s' (%s): %s %d is omitted, but it is required", n->name,
                            n->op_type, what, i);
    return IL_OK;
}

static il_status check_attrs(const il_node *n, const il_schema *s) {
    for (int i = 0; i < n->n_attrs; i++) {
        const il_attr *a = &n->attrs[i];
        if (a->type == IL_ATTR_UNDEFINED) /* ref_attr_name: only a function body may have one */
            return il_error(IL_ERR_INVALID, "node '%s' (%s): attribute '%s' has no value (a reference to a function "
                            "attribute outside a function)", n->name, n->op_type, a->name);
        for (int j = 0; j < s->n_attrs; j++) {
            int want = s->attrs[j].type;
            if (strcmp(s->attrs[j].name, a->name)) continue;
            /* an INT where a FLOAT is expected is exact (il_attr_float reads it); nothing else converts */
            if ((int)a->type != want && !(want == IL_ATTR_FLOAT && a->type == IL_ATTR_INT))
                return il_error(IL_ERR_INVALID, "node '%s' (%s): attribute '%s' is %s, but %s takes %s", n->name,
                                n->op_type, a->name, attr_type_name((int)a->type), s->name, attr_type_name(want));
            break;
        }
    }
    for (int j = 0; j < s->n_attrs; j++)
        if (s->attrs[j].required && !il_node_attr(n, s->attrs[j].name))
            return il_error(IL_ERR_INVALID, "node '%s' (%s): required attribute '%s' is missing", n->name, n->op_type,
                            s->attrs[j].name);
    return IL_OK;
}

il_status il_node_check(const il_graph *g, int k) {
    const il_node *n = &g->nodes[k];
    int64_t opset = il_graph_opset(g, n->domain);
    if (opset == 0 && is_default_domain(n->domain)) opset = 1;
    const il_schema *s = il_schema_find(n->domain, n->op_type, opset);
    /* An op used below its first version (Gelu at opset 17): the engine runs it with its first
     * version's contract, so check that one. */
    if (!s) s = il_schema_find(n->domain, n->op_type, INT64_MAX);
    if (!s) return IL_OK; /* no schema: a plugin's op, which keeps its own contract */
    il_status st = check_slots(n, s, 0);
    if (!st) st = check_slots(n, s, 1);
    if (!st) st = check_attrs(n, s);
    return st;
}

il_status il_graph_check_opsets(const il_graph *g) {
    for (int i = 0; i < g->n_opsets; i++) {
        const il_opset_import *o = &g->opsets[i];
        if (is_default_domain(o->domain) && o->version > IL_OPSET_MAX)
            return il_error(IL_ERR_UNSUPPORTED, "the model imports ai.onnx opset %lld, newer than this engine knows "
                            "(opsets up to %d): its ops may mean something else there", (long long)o->version, IL_OPSET_MAX);
        if (!strcmp(o->domain ? o->domain : "", "ai.inferlab") && o->version > 1)
            return il_error(IL_ERR_UNSUPPORTED, "the model imports ai.inferlab opset %lld; this engine knows opset 1",
                            (long long)o->version);
    }
    return IL_OK;
}
