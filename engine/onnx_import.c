/*
 * onnx_import.c - ONNX ModelProto -> il_graph, through the protobuf-c code generated from
 * Debian's onnx.proto at build time.
 *
 * The importer copies what the model says and checks only what it must to build the IR
 * safely (tensor data against dims, ranks we can hold); structural checks (producers,
 * cycles, known ops) are il_graph_verify's job, so a caller can still inspect a model the
 * engine cannot run.
 *
 * What the IR cannot hold natively is kept so that il_onnx_save can write it back:
 *  - GRAPH, SPARSE_TENSOR and TYPE_PROTO attributes: attr->raw holds the packed sub-message
 *    (a GraphProto, SparseTensorProto or TypeProto).
 *  - GRAPHS, SPARSE_TENSORS and TYPE_PROTOS: attr->raw holds a packed AttributeProto with only
 *    that repeated field set; attr->n is the count.
 *  - Values of non-tensor types (sequence, map, optional, sparse tensor) get dtype
 *    IL_UNDEFINED and rank -1: loading succeeds, later stages skip what they cannot run.
 * Not kept: model-local functions, training info, quantization annotations, the graph's own
 * doc_string and whether an initializer was also listed as a graph input.
 */
#include "onnx_tensor.h"

#include <stdlib.h>
#include <string.h>

#define IR_MIN 3
#define IR_MAX 10

static char *dupstr(const char *s) { return s ? strdup(s) : NULL; }

/* Record dtype and shape from a TypeProto. For graph inputs and outputs (strict) a rank we
 * cannot hold is an error; for value_info it just stays unknown. */
static il_status set_type(il_value *v, const Onnx__TypeProto *tp, int strict) {
    if (!tp) return IL_OK;
    if (tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE) {
        v->dtype = IL_UNDEFINED;
        v->rank = -1;
        return IL_OK;
    }
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    if (tt->has_elem_type) v->dtype = (il_dtype)tt->elem_type;
    if (!tt->shape) return IL_OK;
    if (tt->shape->n_dim > IL_MAX_RANK) {
        if (strict)
            return il_error(IL_ERR_UNSUPPORTED, "value '%s' has rank %zu (at most %d supported)", v->name,
                            tt->shape->n_dim, IL_MAX_RANK);
        return IL_OK;
    }
    v->rank = (int)tt->shape->n_dim;
    for (int i = 0; i < v->rank; i++) {
        const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
        free(v->dim_param[i]);
        v->dim_param[i] = NULL;
        v->dims[i] = -1;
        if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && d->dim_value >= 0)
            v->dims[i] = d->dim_value;
        else if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM && d->dim_param && *d->dim_param)
            v->dim_param[i] = strdup(d->dim_param);
    }
    il_status st = strict ? il_shape_check(v->rank, v->dims) : IL_OK;
    return st ? il_error_wrap(st, "value '%s': ", v->name) : IL_OK;
}

/* Older exporters (IR < 3 era, still seen in the wild) leave `type` unset: the kind is
 * whichever value field is present. */
static int attr_kind(const Onnx__AttributeProto *a) {
    if (a->has_type && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED) return (int)a->type;
    if (a->t) return IL_ATTR_TENSOR;
    if (a->g) return IL_ATTR_GRAPH;
    if (a->sparse_tensor) return IL_ATTR_SPARSE_TENSOR;
    if (a->tp) return IL_ATTR_TYPE_PROTO;
    if (a->n_floats) return IL_ATTR_FLOATS;
    if (a->n_ints) return IL_ATTR_INTS;
    if (a->n_strings) return IL_ATTR_STRINGS;
    if (a->n_tensors) return IL_ATTR_TENSORS;
    if (a->n_graphs) return IL_ATTR_GRAPHS;
    if (a->n_sparse_tensors) return IL_ATTR_SPARSE_TENSORS;
    if (a->n_type_protos) return IL_ATTR_TYPE_PROTOS;
    if (a->has_s) return IL_ATTR_STRING;
    if (a->has_i) return IL_ATTR_INT;
    if (a->has_f) return IL_ATTR_FLOAT;
    return IL_ATTR_UNDEFINED;
}

static il_status pack_raw(il_attr *x, const ProtobufCMessage *m) {
    size_t n = protobuf_c_message_get_packed_size(m);
    x->raw = malloc(n ? n : 1);
    if (!x->raw) return il_error(IL_ERR_OOM, "out of memory");
    x->raw_len = protobuf_c_message_pack(m, x->raw);
    return IL_OK;
}

static char *bytes_dup(ProtobufCBinaryData b) {
    char *s = malloc(b.len + 1);
    if (!s) return NULL;
    if (b.len) memcpy(s, b.data, b.len);
    s[b.len] = 0;
    return s;
}

static il_status convert_attr(il_graph *g, int k, const Onnx__AttributeProto *a, const char *base_dir) {
    const char *node = g->nodes[k].name;
    if (!a->name || !*a->name) return il_error(IL_ERR_PARSE, "node '%s': attribute without a name", node);
    int kind = attr_kind(a);
    if (kind == IL_ATTR_UNDEFINED && !a->ref_attr_name)
        return il_error(IL_ERR_PARSE, "node '%s': attribute '%s' has no type and no value", node, a->name);
    il_attr *x = il_node_add_attr(g, k, a->name, (il_attr_type)kind);
    x->ref_attr_name = dupstr(a->ref_attr_name);
    char what[300];
    snprintf(what, sizeof what, "node '%s' attribute '%s'", node, a->name);
    Onnx__AttributeProto only = ONNX__ATTRIBUTE_PROTO__INIT; /* for the plural raw kinds */
    switch (kind) {
    case IL_ATTR_UNDEFINED: return IL_OK; /* a bare reference to a function attribute */
    case IL_ATTR_FLOAT: x->f = a->f; return IL_OK;
    case IL_ATTR_INT: x->i = a->i; return IL_OK;
    case IL_ATTR_STRING:
        x->s = bytes_dup(a->s);
        x->slen = a->s.len;
        return x->s ? IL_OK : il_error(IL_ERR_OOM, "out of memory");
    case IL_ATTR_TENSOR:
        if (!a->t) return il_error(IL_ERR_PARSE, "%s: type TENSOR but no tensor", what);
        return il_onnx_tensor_from_proto(a->t, base_dir, what, &x->t);
    case IL_ATTR_FLOATS:
        x->n = (int)a->n_floats;
        x->floats = malloc((a->n_floats ? a->n_floats : 1) * sizeof(float));
        if (!x->floats) return il_error(IL_ERR_OOM, "out of memory");
        if (a->n_floats) memcpy(x->floats, a->floats, a->n_floats * sizeof(float));
        return IL_OK;
    case IL_ATTR_INTS:
        x->n = (int)a->n_ints;
        x->ints = malloc((a->n_ints ? a->n_ints : 1) * sizeof(int64_t));
        if (!x->ints) return il_error(IL_ERR_OOM, "out of memory");
        if (a->n_ints) memcpy(x->ints, a->ints, a->n_ints * sizeof(int64_t));
        return IL_OK;
    case IL_ATTR_STRINGS:
        x->strings = calloc(a->n_strings ? a->n_strings : 1, sizeof(char *));
        if (!x->strings) return il_error(IL_ERR_OOM, "out of memory");
        for (size_t i = 0; i < a->n_strings; i++, x->n++)
            if (!(x->strings[i] = bytes_dup(a->strings[i]))) return il_error(IL_ERR_OOM, "out of memory");
        return IL_OK;
    case IL_ATTR_TENSORS:
        x->tensors = calloc(a->n_tensors ? a->n_tensors : 1, sizeof(il_tensor *));
        if (!x->tensors) return il_error(IL_ERR_OOM, "out of memory");
        x->n = (int)a->n_tensors; /* attr_free walks all n: the calloc'd NULLs are fine */
        for (size_t i = 0; i < a->n_tensors; i++) {
            il_status st = il_onnx_tensor_from_proto(a->tensors[i], base_dir, what, &x->tensors[i]);
            if (st) return st;
        }
        return IL_OK;
    case IL_ATTR_GRAPH:
        if (!a->g) return il_error(IL_ERR_PARSE, "%s: type GRAPH but no graph", what);
        return pack_raw(x, &a->g->base);
    case IL_ATTR_SPARSE_TENSOR:
        if (!a->sparse_tensor) return il_error(IL_ERR_PARSE, "%s: type SPARSE_TENSOR but no tensor", what);
        return pack_raw(x, &a->sparse_tensor->base);
    case IL_ATTR_TYPE_PROTO:
        if (!a->tp) return il_error(IL_ERR_PARSE, "%s: type TYPE_PROTO but no type", what);
        return pack_raw(x, &a->tp->base);
    case IL_ATTR_GRAPHS:
        only.n_graphs = a->n_graphs;
        only.graphs = a->graphs;
        x->n = (int)a->n_graphs;
        return pack_raw(x, &only.base);
    case IL_ATTR_SPARSE_TENSORS:
        only.n_sparse_tensors = a->n_sparse_tensors;
        only.sparse_tensors = a->sparse_tensors;
        x->n = (int)a->n_sparse_tensors;
        return pack_raw(x, &only.base);
    case IL_ATTR_TYPE_PROTOS:
        only.n_type_protos = a->n_type_protos;
        only.type_protos = a->type_protos;
        x->n = (int)a->n_type_protos;
        return pack_raw(x, &only.base);
    default:
        return il_error(IL_ERR_UNSUPPORTED, "%s: unknown attribute type %d", what, kind);
    }
}

static il_status import_node(il_graph *g, const Onnx__NodeProto *np, size_t idx, const char *base_dir) {
    if (!np->op_type || !*np->op_type)
        return il_error(IL_ERR_PARSE, "node %zu ('%s') has no op_type", idx, np->name ? np->name : "");
    int *in = malloc((np->n_input + 1) * sizeof(int)), *out = malloc((np->n_output + 1) * sizeof(int));
    if (!in || !out) {
        free(in);
        free(out);
        return il_error(IL_ERR_OOM, "out of memory");
    }
    /* "" marks an omitted optional input or output */
    for (size_t i = 0; i < np->n_input; i++) in[i] = np->input[i][0] ? il_graph_value(g, np->input[i]) : -1;
    for (size_t i = 0; i < np->n_output; i++) out[i] = np->output[i][0] ? il_graph_value(g, np->output[i]) : -1;
    int k = il_graph_add_node(g, np->op_type, np->domain ? np->domain : "", np->name, (int)np->n_input, in,
                              (int)np->n_output, out);
    free(in);
    free(out);
    g->nodes[k].doc = dupstr(np->doc_string);
    for (size_t i = 0; i < np->n_attribute; i++) {
        /* the IR keeps one attribute per name (il_node_add_attr replaces): a second is an error,
         * not a silent override */
        for (size_t j = 0; j < i && np->attribute[i]->name; j++)
            if (np->attribute[j]->name && !strcmp(np->attribute[j]->name, np->attribute[i]->name))
                return il_error(IL_ERR_PARSE, "node '%s' (%s): attribute '%s' is given twice", g->nodes[k].name,
                                np->op_type, np->attribute[i]->name);
        il_status st = convert_attr(g, k, np->attribute[i], base_dir);
        if (st) return st;
    }
    return IL_OK;
}

static il_status import_graph(il_graph *g, const Onnx__GraphProto *gp, const char *base_dir) {
    il_status st;
    if (gp->n_sparse_initializer) {
        const Onnx__SparseTensorProto *sp = gp->sparse_initializer[0];
        const char *nm = sp->values && sp->values->name ? sp->values->name : "";
        return il_error(IL_ERR_UNSUPPORTED, "sparse_initializer '%s' is not supported", nm);
    }
    for (size_t i = 0; i < gp->n_initializer; i++) {
        const Onnx__TensorProto *tp = gp->initializer[i];
        if (!tp->name || !*tp->name) return il_error(IL_ERR_PARSE, "initializer %zu has no name", i);
        if (il_graph_find_value(g, tp->name) >= 0)
            return il_error(IL_ERR_PARSE, "initializer '%s' appears twice", tp->name);
        char what[300];
        snprintf(what, sizeof what, "initializer '%s'", tp->name);
        il_tensor *t;
        if ((st = il_onnx_tensor_from_proto(tp, base_dir, what, &t))) return st;
        il_graph_add_constant(g, tp->name, t);
    }
    for (size_t i = 0; i < gp->n_input; i++) {
        const Onnx__ValueInfoProto *vi = gp->input[i];
        if (!vi->name || !*vi->name) return il_error(IL_ERR_PARSE, "graph input %zu has no name", i);
        int v = il_graph_value(g, vi->name);
        il_value *x = &g->values[v];
        if (!x->doc) x->doc = dupstr(vi->doc_string);
        /* An initializer listed as an input (required before IR 4): its data decides the shape. */
        if (x->constant || x->is_input) continue;
        if ((st = set_type(x, vi->type, 1))) return st;
        il_graph_add_input(g, v);
    }
    for (size_t i = 0; i < gp->n_node; i++)
        if ((st = import_node(g, gp->node[i], i, base_dir))) return st;
    for (size_t i = 0; i < gp->n_output; i++) {
        const Onnx__ValueInfoProto *vi = gp->output[i];
        if (!vi->name || !*vi->name) return il_error(IL_ERR_PARSE, "graph output %zu has no name", i);
        int v = il_graph_value(g, vi->name);
        il_value *x = &g->values[v];
        if (!x->constant && (st = set_type(x, vi->type, 1))) return st;
        if (!x->doc) x->doc = dupstr(vi->doc_string);
        il_graph_add_output(g, v);
    }
    for (size_t i = 0; i < gp->n_value_info; i++) {
        const Onnx__ValueInfoProto *vi = gp->value_info[i];
        if (!vi->name || !*vi->name) continue;
        int v = il_graph_value(g, vi->name);
        il_value *x = &g->values[v];
        if (!x->constant) set_type(x, vi->type, 0);
        if (!x->doc) x->doc = dupstr(vi->doc_string);
    }
    return IL_OK;
}

static il_status import_model(const Onnx__ModelProto *m, const char *base_dir, il_graph **out) {
    il_graph *g = il_graph_new(m->graph->name && *m->graph->name ? m->graph->name : "graph");
    g->ir_version = m->ir_version;
    g->model_version = m->has_model_version ? m->model_version : 0;
    g->producer_name = dupstr(m->producer_name);
    g->producer_version = dupstr(m->producer_version);
    g->domain = dupstr(m->domain);
    g->doc = dupstr(m->doc_string);
    g->base_dir = dupstr(base_dir);
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = m->opset_import[i];
        il_graph_set_opset(g, o->domain ? o->domain : "", o->has_version ? o->version : 0);
    }
    for (size_t i = 0; i < m->n_metadata_props; i++)
        if (m->metadata_props[i]->key)
            il_graph_set_meta(g, m->metadata_props[i]->key, m->metadata_props[i]->value ? m->metadata_props[i]->value : "");
    il_status st = import_graph(g, m->graph, base_dir);
    if (st) {
        il_graph_free(g);
        return st;
    }
    *out = g;
    return IL_OK;
}

/* ---- nesting depth, checked before protobuf-c unpacks (it recurses once per nested message,
 * about 1 KB of stack each: an If nested 3,000 deep in a 100 KB file overflows an 8 MB stack). */

/* Message nesting a real model needs: Model > Graph > Node > Attribute > Graph... is three
 * levels per subgraph, so this allows about 40 subgraphs inside each other. */
#define MAX_NESTING 128

static int varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
    *v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return 1;
    }
    return 0;
}

/* The deepest nesting of sub-messages in buf read as message `d`, following the descriptors
 * protobuf-c generated (so only fields that are messages are descended into). Stops at
 * MAX_NESTING + 1; malformed bytes end the scan quietly: unpacking reports them. */
static int nesting(const uint8_t *p, const uint8_t *end, const ProtobufCMessageDescriptor *d, int depth) {
    int deepest = depth;
    while (p < end && deepest <= MAX_NESTING) {
        uint64_t key, len;
        if (!varint(&p, end, &key)) break;
        switch (key & 7) {
        case 0: if (!varint(&p, end, &len)) return deepest; break;
        case 1: if (end - p < 8) return deepest; p += 8; break;
        case 5: if (end - p < 4) return deepest; p += 4; break;
        case 2: {
            if (!varint(&p, end, &len) || len > (uint64_t)(end - p)) return deepest;
            const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(d, (unsigned)(key >> 3));
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
                int sub = nesting(p, p + len, f->descriptor, depth + 1);
                if (sub > deepest) deepest = sub;
            }
            p += len;
            break;
        }
        default: return deepest; /* groups and invalid wire types: not in ONNX */
        }
    }
    return deepest;
}

/* label names the source in every message: the path, or "(buffer)". */
static il_status load(const void *buf, size_t len, const char *base_dir, const char *label, il_graph **out) {
    *out = NULL;
    if (len == 0) return il_error(IL_ERR_PARSE, "%s: not a valid ONNX model (empty file)", label);
    if (nesting(buf, (const uint8_t *)buf + len, &onnx__model_proto__descriptor, 0) > MAX_NESTING)
        return il_error(IL_ERR_UNSUPPORTED, "%s: messages nested more than %d deep (subgraphs inside subgraphs); "
                        "refused before parsing", label, MAX_NESTING);
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, buf);
    if (!m) return il_error(IL_ERR_PARSE, "%s: not a valid ONNX model (not a ModelProto, or truncated)", label);
    il_status st;
    /* Arbitrary bytes sometimes decode as a protobuf; a model without these is not a model. */
    if (!m->graph) {
        st = il_error(IL_ERR_PARSE, "%s: not a valid ONNX model (no graph)", label);
    } else if (!m->has_ir_version) {
        st = il_error(IL_ERR_PARSE, "%s: not a valid ONNX model (no ir_version)", label);
    } else if (m->ir_version < IR_MIN || m->ir_version > IR_MAX) {
        st = il_error(IL_ERR_UNSUPPORTED, "%s: ONNX IR version %lld is not supported (%d to %d are)", label,
                      (long long)m->ir_version, IR_MIN, IR_MAX);
    } else {
        st = import_model(m, base_dir, out);
        if (st) il_error_wrap(st, "%s: ", label);
    }
    onnx__model_proto__free_unpacked(m, NULL);
    return st;
}

il_status il_onnx_load_buffer(const void *buf, size_t len, const char *base_dir, il_graph **out) {
    return load(buf, len, base_dir, "(buffer)", out);
}

il_status il_onnx_load(const char *path, il_graph **out) {
    uint8_t *buf;
    size_t len;
    *out = NULL;
    il_status st = il_onnx_read_file(path, &buf, &len);
    if (st) return st;
    char *dir = il_onnx_dirname(path);
    st = load(buf, len, dir, path, out);
    free(dir);
    free(buf);
    return st;
}
