/*
 * onnx_export.c - il_graph -> ONNX ModelProto, the inverse of onnx_import.c, with the same
 * generated protobuf-c code.
 *
 * The message tree is built in an arena: every message, array and sub-message unpacked from
 * attr->raw is allocated there, and strings and tensor data are borrowed from the graph, so
 * the whole tree is freed at once after packing and large weights are never copied.
 * (protobuf_c_message_free_unpacked must therefore never see this tree.)
 *
 * What gets written:
 *  - initializers as raw_data, in value order; graph inputs and outputs with dtype and shape
 *    (dim_param kept, unknown dims as empty dims); value_info for every other value a node
 *    uses whose dtype is known;
 *  - for IR < 4, initializers are listed among the graph inputs as those versions require;
 *  - opset imports as recorded, plus version 1 for any other domain a node uses without one
 *    (the fused ops of "ai.inferlab"), and opset 17 - the newest the Debian checker knows -
 *    for the default domain when a graph built in code never set one.
 */
#include "onnx_tensor.h"

#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_OPSET 17

/* ---- arena */

typedef struct blk {
    struct blk *next;
    max_align_t data[];
} blk;

typedef struct arena {
    blk *head;
    jmp_buf fail; /* out of memory while building: unwind to il_onnx_save_buffer */
    ProtobufCAllocator pa;
} arena;

static void *arena_alloc(void *ad, size_t n) {
    arena *a = ad;
    blk *b = malloc(sizeof(blk) + (n ? n : 1));
    if (!b) return NULL;
    b->next = a->head;
    a->head = b;
    return b->data;
}

static void arena_nofree(void *ad, void *p) { (void)ad; (void)p; }

static void arena_free(arena *a) {
    while (a->head) {
        blk *b = a->head;
        a->head = b->next;
        free(b);
    }
}

static void *new(arena *a, size_t n) {
    void *p = arena_alloc(a, n);
    if (!p) longjmp(a->fail, 1);
    memset(p, 0, n ? n : 1);
    return p;
}
#define NEWN(a, T, n) ((T *)new((a), sizeof(T) * (size_t)(n)))

/* ---- building */

typedef struct ctx {
    arena *a;
    const il_graph *g;
} ctx;

static char *nz(const char *s) { return s && *s ? (char *)s : NULL; } /* omit empty strings */

static int is_default_domain(const char *d) { return !d || !*d || !strcmp(d, "ai.onnx"); }

static Onnx__TypeProto *type_of(ctx *c, const il_value *v) {
    if (v->dtype == IL_UNDEFINED) return NULL; /* non-tensor types are not kept by the IR */
    Onnx__TypeProto *tp = NEWN(c->a, Onnx__TypeProto, 1);
    Onnx__TypeProto__Tensor *tt = NEWN(c->a, Onnx__TypeProto__Tensor, 1);
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    tt->has_elem_type = 1;
    tt->elem_type = (int32_t)v->dtype;
    if (v->rank < 0) return tp;
    Onnx__TensorShapeProto *sh = NEWN(c->a, Onnx__TensorShapeProto, 1);
    onnx__tensor_shape_proto__init(sh);
    tt->shape = sh;
    sh->n_dim = (size_t)v->rank;
    sh->dim = NEWN(c->a, Onnx__TensorShapeProto__Dimension *, v->rank);
    for (int i = 0; i < v->rank; i++) {
        Onnx__TensorShapeProto__Dimension *d = sh->dim[i] = NEWN(c->a, Onnx__TensorShapeProto__Dimension, 1);
        onnx__tensor_shape_proto__dimension__init(d);
        if (v->dims[i] >= 0) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = v->dims[i];
        } else if (v->dim_param[i]) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = v->dim_param[i];
        }
    }
    return tp;
}

static Onnx__ValueInfoProto *value_info(ctx *c, const il_value *v) {
    Onnx__ValueInfoProto *vi = NEWN(c->a, Onnx__ValueInfoProto, 1);
    onnx__value_info_proto__init(vi);
    vi->name = v->name;
    vi->doc_string = nz(v->doc);
    vi->type = type_of(c, v);
    return vi;
}

static il_status tensor_proto(ctx *c, const il_tensor *t, const char *name, const char *what, Onnx__TensorProto **out) {
    if (!il_dtype_is_supported(t->dtype))
        return il_error(IL_ERR_UNSUPPORTED, "%s: cannot write dtype %s", what, il_dtype_name(t->dtype));
    if (!t->data && il_tensor_bytes(t)) return il_error(IL_ERR_INVALID, "%s: tensor has no data", what);
    *out = NEWN(c->a, Onnx__TensorProto, 1);
    il_onnx_tensor_to_proto(t, name, *out);
    return IL_OK;
}

/* Unpack a kept sub-message back into the arena. */
static void *unraw(ctx *c, const ProtobufCMessageDescriptor *d, const il_attr *x, const char *what, il_status *st) {
    void *m = x->raw ? protobuf_c_message_unpack(d, &c->a->pa, x->raw_len, x->raw) : NULL;
    if (!m) *st = il_error(IL_ERR_INVALID, "%s: its stored %s is missing or corrupt", what, d->short_name);
    return m;
}

static il_status attr_proto(ctx *c, const il_node *n, const il_attr *x, Onnx__AttributeProto **out) {
    char what[300];
    snprintf(what, sizeof what, "node '%s' attribute '%s'", n->name, x->name);
    Onnx__AttributeProto *a = *out = NEWN(c->a, Onnx__AttributeProto, 1), *only;
    onnx__attribute_proto__init(a);
    a->name = x->name;
    a->ref_attr_name = nz(x->ref_attr_name);
    a->has_type = x->type != IL_ATTR_UNDEFINED;
    a->type = (Onnx__AttributeProto__AttributeType)x->type;
    il_status st = IL_OK;
    switch (x->type) {
    case IL_ATTR_UNDEFINED: break;
    case IL_ATTR_FLOAT: a->has_f = 1; a->f = x->f; break;
    case IL_ATTR_INT: a->has_i = 1; a->i = x->i; break;
    case IL_ATTR_STRING:
        a->has_s = 1;
        a->s.len = x->s ? x->slen : 0;
        a->s.data = (uint8_t *)x->s;
        break;
    case IL_ATTR_TENSOR:
        if (!x->t) return il_error(IL_ERR_INVALID, "%s: TENSOR without a tensor", what);
        return tensor_proto(c, x->t, NULL, what, &a->t);
    case IL_ATTR_FLOATS: a->n_floats = (size_t)x->n; a->floats = x->floats; break;
    case IL_ATTR_INTS: a->n_ints = (size_t)x->n; a->ints = x->ints; break;
    case IL_ATTR_STRINGS:
        a->n_strings = (size_t)x->n;
        a->strings = NEWN(c->a, ProtobufCBinaryData, x->n);
        for (int i = 0; i < x->n; i++) {
            a->strings[i].data = (uint8_t *)x->strings[i];
            a->strings[i].len = x->strings[i] ? strlen(x->strings[i]) : 0;
        }
        break;
    case IL_ATTR_TENSORS:
        a->n_tensors = (size_t)x->n;
        a->tensors = NEWN(c->a, Onnx__TensorProto *, x->n);
        for (int i = 0; i < x->n && !st; i++)
            st = x->tensors[i] ? tensor_proto(c, x->tensors[i], NULL, what, &a->tensors[i])
                               : il_error(IL_ERR_INVALID, "%s: tensor %d missing", what, i);
        break;
    case IL_ATTR_GRAPH: a->g = unraw(c, &onnx__graph_proto__descriptor, x, what, &st); break;
    case IL_ATTR_SPARSE_TENSOR: a->sparse_tensor = unraw(c, &onnx__sparse_tensor_proto__descriptor, x, what, &st); break;
    case IL_ATTR_TYPE_PROTO: a->tp = unraw(c, &onnx__type_proto__descriptor, x, what, &st); break;
    case IL_ATTR_GRAPHS:
    case IL_ATTR_SPARSE_TENSORS:
    case IL_ATTR_TYPE_PROTOS:
        if (!(only = unraw(c, &onnx__attribute_proto__descriptor, x, what, &st))) break;
        a->n_graphs = only->n_graphs;
        a->graphs = only->graphs;
        a->n_sparse_tensors = only->n_sparse_tensors;
        a->sparse_tensors = only->sparse_tensors;
        a->n_type_protos = only->n_type_protos;
        a->type_protos = only->type_protos;
        break;
    default:
        return il_error(IL_ERR_UNSUPPORTED, "%s: unknown attribute type %d", what, (int)x->type);
    }
    return st;
}

static il_status node_proto(ctx *c, const il_node *n, Onnx__NodeProto **out) {
    static char empty[] = "";
    Onnx__NodeProto *np = *out = NEWN(c->a, Onnx__NodeProto, 1);
    onnx__node_proto__init(np);
    np->op_type = n->op_type;
    np->domain = nz(n->domain);
    np->name = nz(n->name);
    np->doc_string = nz(n->doc);
    np->n_input = (size_t)n->n_inputs;
    np->input = NEWN(c->a, char *, n->n_inputs);
    for (int i = 0; i < n->n_inputs; i++) np->input[i] = n->inputs[i] >= 0 ? c->g->values[n->inputs[i]].name : empty;
    np->n_output = (size_t)n->n_outputs;
    np->output = NEWN(c->a, char *, n->n_outputs);
    for (int i = 0; i < n->n_outputs; i++) np->output[i] = n->outputs[i] >= 0 ? c->g->values[n->outputs[i]].name : empty;
    np->n_attribute = (size_t)n->n_attrs;
    np->attribute = NEWN(c->a, Onnx__AttributeProto *, n->n_attrs);
    for (int i = 0; i < n->n_attrs; i++) {
        il_status st = attr_proto(c, n, &n->attrs[i], &np->attribute[i]);
        if (st) return st;
    }
    return IL_OK;
}

static void add_opset(ctx *c, Onnx__ModelProto *m, const char *domain, int64_t version) {
    Onnx__OperatorSetIdProto *o = NEWN(c->a, Onnx__OperatorSetIdProto, 1);
    onnx__operator_set_id_proto__init(o);
    o->domain = (char *)(is_default_domain(domain) ? "" : domain);
    o->has_version = 1;
    o->version = version;
    m->opset_import[m->n_opset_import++] = o;
}

static int has_opset(const Onnx__ModelProto *m, const char *domain) {
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const char *d = m->opset_import[i]->domain;
        if (is_default_domain(d) ? is_default_domain(domain) : !is_default_domain(domain) && !strcmp(d, domain)) return 1;
    }
    return 0;
}

static il_status graph_proto(ctx *c, Onnx__GraphProto *gp, int64_t ir_version) {
    const il_graph *g = c->g;
    onnx__graph_proto__init(gp);
    gp->name = g->name;
    int n_const = 0;
    for (int v = 0; v < g->n_values; v++) n_const += g->values[v].constant != NULL;
    gp->initializer = NEWN(c->a, Onnx__TensorProto *, n_const);
    for (int v = 0; v < g->n_values; v++) {
        const il_value *x = &g->values[v];
        if (!x->constant) continue;
        char what[300];
        snprintf(what, sizeof what, "initializer '%s'", x->name);
        il_status st = tensor_proto(c, x->constant, x->name, what, &gp->initializer[gp->n_initializer++]);
        if (st) return st;
    }
    /* Before IR 4 every initializer had to be declared as a graph input too. */
    int listed_consts = ir_version < 4 ? n_const : 0;
    gp->input = NEWN(c->a, Onnx__ValueInfoProto *, g->n_inputs + listed_consts);
    for (int i = 0; i < g->n_inputs; i++) gp->input[gp->n_input++] = value_info(c, &g->values[g->inputs[i]]);
    for (int v = 0; v < g->n_values && listed_consts; v++)
        if (g->values[v].constant && !g->values[v].is_input) gp->input[gp->n_input++] = value_info(c, &g->values[v]);
    gp->output = NEWN(c->a, Onnx__ValueInfoProto *, g->n_outputs);
    for (int i = 0; i < g->n_outputs; i++) gp->output[gp->n_output++] = value_info(c, &g->values[g->outputs[i]]);

    char *used = NEWN(c->a, char, g->n_values);
    gp->node = NEWN(c->a, Onnx__NodeProto *, g->n_nodes);
    for (int k = 0; k < g->n_nodes; k++) {
        const il_node *n = &g->nodes[k];
        if (n->dead) continue;
        for (int i = 0; i < n->n_inputs; i++) if (n->inputs[i] >= 0) used[n->inputs[i]] = 1;
        for (int i = 0; i < n->n_outputs; i++) if (n->outputs[i] >= 0) used[n->outputs[i]] = 1;
        il_status st = node_proto(c, n, &gp->node[gp->n_node++]);
        if (st) return st;
    }
    gp->value_info = NEWN(c->a, Onnx__ValueInfoProto *, g->n_values);
    for (int v = 0; v < g->n_values; v++) {
        const il_value *x = &g->values[v];
        if (used[v] && !x->is_input && !x->is_output && !x->constant && x->dtype != IL_UNDEFINED)
            gp->value_info[gp->n_value_info++] = value_info(c, x);
    }
    return IL_OK;
}

static il_status model_proto(ctx *c, Onnx__ModelProto *m) {
    const il_graph *g = c->g;
    onnx__model_proto__init(m);
    m->has_ir_version = 1;
    m->ir_version = g->ir_version > 0 ? g->ir_version : 8;
    m->producer_name = g->producer_name ? g->producer_name : "inferlab";
    m->producer_version = g->producer_name ? nz(g->producer_version) : IL_VERSION;
    m->domain = nz(g->domain);
    m->has_model_version = g->model_version != 0;
    m->model_version = g->model_version;
    m->doc_string = nz(g->doc);
    m->opset_import = NEWN(c->a, Onnx__OperatorSetIdProto *, g->n_opsets + g->n_nodes + 1);
    for (int i = 0; i < g->n_opsets; i++) add_opset(c, m, g->opsets[i].domain, g->opsets[i].version);
    for (int k = 0; k < g->n_nodes; k++) {
        const il_node *n = &g->nodes[k];
        if (!n->dead && !has_opset(m, n->domain))
            add_opset(c, m, n->domain, is_default_domain(n->domain) ? DEFAULT_OPSET : 1);
    }
    m->metadata_props = NEWN(c->a, Onnx__StringStringEntryProto *, g->n_meta);
    for (int i = 0; i < g->n_meta; i++) {
        Onnx__StringStringEntryProto *e = m->metadata_props[m->n_metadata_props++] =
            NEWN(c->a, Onnx__StringStringEntryProto, 1);
        onnx__string_string_entry_proto__init(e);
        e->key = g->meta_keys[i];
        e->value = g->meta_values[i];
    }
    m->graph = NEWN(c->a, Onnx__GraphProto, 1);
    return graph_proto(c, m->graph, m->ir_version);
}

/* Build and pack; kept apart from il_onnx_save_buffer so setjmp's caller holds no state a
 * longjmp could leave stale. */
static il_status build_and_pack(arena *a, const il_graph *g, void **buf, size_t *len) {
    ctx c = {a, g};
    Onnx__ModelProto *m = NEWN(a, Onnx__ModelProto, 1);
    il_status st = model_proto(&c, m);
    if (st) return st;
    size_t n = protobuf_c_message_get_packed_size(&m->base);
    uint8_t *b = malloc(n ? n : 1);
    if (!b) return il_error(IL_ERR_OOM, "out of memory packing a %zu-byte model", n);
    *len = protobuf_c_message_pack(&m->base, b);
    *buf = b;
    return IL_OK;
}

il_status il_onnx_save_buffer(const il_graph *g, void **buf, size_t *len) {
    *buf = NULL;
    *len = 0;
    arena *a = calloc(1, sizeof *a);
    if (!a) return il_error(IL_ERR_OOM, "out of memory");
    a->pa.alloc = arena_alloc;
    a->pa.free = arena_nofree;
    a->pa.allocator_data = a;
    il_status st;
    if (setjmp(a->fail) == 0) st = build_and_pack(a, g, buf, len);
    else st = il_error(IL_ERR_OOM, "out of memory building the ONNX model");
    arena_free(a);
    free(a);
    return st;
}

il_status il_onnx_save(const il_graph *g, const char *path) {
    void *buf;
    size_t len;
    il_status st = il_onnx_save_buffer(g, &buf, &len);
    if (st) return il_error_wrap(st, "%s: ", path);
    st = il_onnx_write_file(path, buf, len);
    free(buf);
    return st;
}
