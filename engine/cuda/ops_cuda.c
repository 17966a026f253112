/*
 * ops_cuda.c - the cuda backend's kernels for the ops transformers and the rest of the model zoo
 * need, float32 and half precision (the dtypes a plan holds on the device, il_kctx.precision):
 * here the elementwise family with numpy broadcasting (unary math and activations, arithmetic,
 * comparisons, logic, Where, Cast) and the data movement (Transpose, Concat, Slice, Split,
 * Gather), plus the table that also lists matmul_cuda.c's products and row kernels.
 *
 * supports() accepts only what a kernel computes like the reference (within float rounding):
 * float32 graph values (held as F16/BF16 in a half plan), known shapes; the rest stays on the
 * cpu. Data movement copies elements of any dtype by their size.
 */
#include "../ops/kernel.h"

#ifdef IL_HAVE_CUDA
#include "cuda.h"
#include "kernels_cuda.h"

/* ---------------------------------------------------------------- the elementwise family */

enum { EW_FLOAT = 1, EW_BOOL_OUT = 2, EW_BOOL_IN = 4 };

static const struct ew_op {
    const char *domain, *name;
    il_cu_op op;
    int n_in, kind;
} ew_ops[] = {
    {"", "Sqrt", IL_CU_SQRT, 1, EW_FLOAT},           {"", "Erf", IL_CU_ERF, 1, EW_FLOAT},
    {"", "Tanh", IL_CU_TANH, 1, EW_FLOAT},           {"", "Sigmoid", IL_CU_SIGMOID, 1, EW_FLOAT},
    {"", "Exp", IL_CU_EXP, 1, EW_FLOAT},             {"", "Log", IL_CU_LOG, 1, EW_FLOAT},
    {"", "Neg", IL_CU_NEG, 1, EW_FLOAT},             {"", "Abs", IL_CU_ABS, 1, EW_FLOAT},
    {"", "Reciprocal", IL_CU_RECIP, 1, EW_FLOAT},    {"", "Gelu", IL_CU_GELU, 1, EW_FLOAT},
    {"ai.inferlab", "Gelu", IL_CU_GELU, 1, EW_FLOAT}, {"", "HardSwish", IL_CU_HSWISH, 1, EW_FLOAT},
    {"ai.inferlab", "HardSwish", IL_CU_HSWISH, 1, EW_FLOAT},
    {"", "HardSigmoid", IL_CU_HSIGMOID, 1, EW_FLOAT}, {"", "LeakyRelu", IL_CU_LEAKY, 1, EW_FLOAT},
    {"ai.inferlab", "SiLU", IL_CU_SILU, 1, EW_FLOAT},   {"", "Floor", IL_CU_FLOOR, 1, EW_FLOAT},
    {"", "Ceil", IL_CU_CEIL, 1, EW_FLOAT},           {"", "Round", IL_CU_ROUND, 1, EW_FLOAT},
    {"", "Sin", IL_CU_SIN, 1, EW_FLOAT},             {"", "Cos", IL_CU_COS, 1, EW_FLOAT},
    {"", "Softplus", IL_CU_SOFTPLUS, 1, EW_FLOAT},   {"", "Softsign", IL_CU_SOFTSIGN, 1, EW_FLOAT},
    {"", "Elu", IL_CU_ELU, 1, EW_FLOAT},             {"", "Selu", IL_CU_SELU, 1, EW_FLOAT},
    {"", "Celu", IL_CU_CELU, 1, EW_FLOAT},           {"", "ThresholdedRelu", IL_CU_THRELU, 1, EW_FLOAT},
    {"", "Mish", IL_CU_MISH, 1, EW_FLOAT},           {"", "Sign", IL_CU_SIGN, 1, EW_FLOAT},
    {"", "PRelu", IL_CU_PRELU, 2, EW_FLOAT},
    {"", "Add", IL_CU_ADD, 2, EW_FLOAT},             {"", "Sub", IL_CU_SUB, 2, EW_FLOAT},
    {"", "Mul", IL_CU_MUL, 2, EW_FLOAT},             {"", "Div", IL_CU_DIV, 2, EW_FLOAT},
    {"", "Pow", IL_CU_POW, 2, EW_FLOAT},             {"", "Max", IL_CU_MAX, -1, EW_FLOAT},
    {"", "Min", IL_CU_MIN, -1, EW_FLOAT},            {"", "Sum", IL_CU_SUM, -1, EW_FLOAT},
    {"", "Mean", IL_CU_MEAN, -1, EW_FLOAT},
    {"", "Equal", IL_CU_EQ, 2, EW_FLOAT | EW_BOOL_OUT}, {"", "Less", IL_CU_LT, 2, EW_FLOAT | EW_BOOL_OUT},
    {"", "LessOrEqual", IL_CU_LE, 2, EW_FLOAT | EW_BOOL_OUT},
    {"", "Greater", IL_CU_GT, 2, EW_FLOAT | EW_BOOL_OUT},
    {"", "GreaterOrEqual", IL_CU_GE, 2, EW_FLOAT | EW_BOOL_OUT},
    {"", "And", IL_CU_AND, 2, EW_BOOL_IN | EW_BOOL_OUT}, {"", "Or", IL_CU_OR, 2, EW_BOOL_IN | EW_BOOL_OUT},
    {"", "Xor", IL_CU_XOR, 2, EW_BOOL_IN | EW_BOOL_OUT}, {"", "Not", IL_CU_NOT, 1, EW_BOOL_IN | EW_BOOL_OUT},
};

static const struct ew_op *ew_find(const il_node *n) {
    const char *dom = !strcmp(n->domain, "ai.onnx") ? "" : n->domain;
    for (size_t i = 0; i < sizeof ew_ops / sizeof *ew_ops; i++)
        if (!strcmp(ew_ops[i].name, n->op_type) && !strcmp(ew_ops[i].domain, dom)) return &ew_ops[i];
    return NULL;
}

/* Inputs of the op's dtype (float32, or bool for logic), broadcast to the output. */
static int ew_supports(const il_kctx *c) {
    const struct ew_op *e = ew_find(c->node);
    /* n_in -1: variadic, 1 to 3 inputs */
    if (!e || (e->n_in > 0 ? c->n_in != e->n_in : c->n_in < 1 || c->n_in > IL_CU_MAX_IN) || !il_cuk_floats(c))
        return 0;
    il_dtype want = e->kind & EW_BOOL_IN ? IL_BOOL : IL_F32;
    for (int i = 0; i < c->n_in; i++)
        if (!c->in[i] || c->in[i]->dtype != want || c->in[i]->rank > c->out[0]->rank) return 0;
    if (c->out[0]->dtype != (e->kind & EW_BOOL_OUT ? IL_BOOL : IL_F32)) return 0;
    /* before opset 7 two operands broadcast by attributes (axis, PRelu's channel slope), and the
     * variadic ops broadcast from 8: only equal shapes are the same thing there */
    if (c->n_in >= 2 && c->opset < (e->n_in < 0 ? 8 : 7))
        for (int i = 0; i < c->n_in; i++)
            if (c->in[i]->rank != c->out[0]->rank ||
                memcmp(c->in[i]->dims, c->out[0]->dims, sizeof(int64_t) * (size_t)c->out[0]->rank))
                return 0;
    if (e->op == IL_CU_GELU && strcmp(il_attr_string(c->node, "approximate", "none"), "none") &&
        strcmp(il_attr_string(c->node, "approximate", "none"), "tanh"))
        return 0;
    return 1;
}

typedef struct {
    il_cu_op op;
    float a, b;
    il_cu_geom g;
} ew_state;

static il_status ew_prepare(il_kctx *c, void **state, size_t *ws) {
    ew_state *s = calloc(1, sizeof *s);
    if (!s) return il_kerr(c, IL_ERR_OOM, "out of memory");
    const struct ew_op *e = ew_find(c->node);
    s->op = e->op;
    if (s->op == IL_CU_GELU && !strcmp(il_attr_string(c->node, "approximate", "none"), "tanh")) s->op = IL_CU_GELU_TANH;
    if (s->op == IL_CU_LEAKY) s->a = il_attr_float(c->node, "alpha", 0.01f);
    if (s->op == IL_CU_HSIGMOID)
        s->a = il_attr_float(c->node, "alpha", 0.2f), s->b = il_attr_float(c->node, "beta", 0.5f);
    if (s->op == IL_CU_ELU || s->op == IL_CU_CELU || s->op == IL_CU_THRELU) s->a = il_attr_float(c->node, "alpha", 1.0f);
    if (s->op == IL_CU_SELU)
        s->a = il_attr_float(c->node, "alpha", 1.67326319217681884765625f),
        s->b = il_attr_float(c->node, "gamma", 1.05070102519989013671875f);
    il_cu_geom_of(c->out[0], (const il_tensor *const *)c->in, c->n_in, &s->g);
    *state = s;
    *ws = 0;
    return IL_OK;
}

/* The map with the device's dtypes of this run (half in a half plan). */
static il_status map_run(il_kctx *c, il_cu_op op, float a, float b, const il_cu_geom *g) {
    const void *in[IL_CU_MAX_IN];
    il_dtype dt[IL_CU_MAX_IN];
    for (int i = 0; i < g->n_in; i++) in[i] = c->in[i]->data, dt[i] = c->in[i]->dtype;
    il_cu_map(op, a, b, g, in, dt, c->out[0]->data, c->out[0]->dtype);
    return il_cuda_check(c->node->op_type);
}

static il_status ew_run(il_kctx *c) {
    const ew_state *s = c->state;
    return map_run(c, s->op, s->a, s->b, &s->g);
}

/* Where(cond, X, Y): a bool condition picks elements of X or Y, any dtype (copied by size). */
static int where_supports(const il_kctx *c) {
    const il_tensor *x = il_in(c, 1), *y = il_in(c, 2), *o = c->out[0];
    return c->n_in == 3 && il_cuk_floats(c) && c->in[0] && c->in[0]->dtype == IL_BOOL && x && y &&
           x->dtype == o->dtype && y->dtype == o->dtype && c->in[0]->rank <= o->rank && x->rank <= o->rank &&
           y->rank <= o->rank;
}

static il_status where_prepare(il_kctx *c, void **state, size_t *ws) {
    ew_state *s = calloc(1, sizeof *s);
    if (!s) return il_kerr(c, IL_ERR_OOM, "out of memory");
    s->op = IL_CU_WHERE;
    il_cu_geom_of(c->out[0], (const il_tensor *const *)c->in, 3, &s->g);
    *state = s;
    *ws = 0;
    return IL_OK;
}

/* Cast between float types, from integers and bool, and to bool; float to integer (truncation,
 * saturation rules) and to bfloat16 (the reference truncates) stay on the cpu. */
static int cast_supports(const il_kctx *c) {
    static const il_dtype from[] = {IL_F32, IL_F16, IL_BF16, IL_F64, IL_I64, IL_I32, IL_I8, IL_U8, IL_BOOL};
    if (c->n_in != 1 || !il_shape_known(c->in[0]) || !il_shape_known(c->out[0])) return 0;
    il_dtype a = c->in[0]->dtype, b = c->out[0]->dtype;
    int ok = 0;
    for (size_t i = 0; i < sizeof from / sizeof *from; i++) ok |= a == from[i];
    return ok && (b == IL_F32 || b == IL_F16 || b == IL_BOOL);
}

static il_status cast_prepare(il_kctx *c, void **state, size_t *ws) {
    ew_state *s = calloc(1, sizeof *s);
    if (!s) return il_kerr(c, IL_ERR_OOM, "out of memory");
    s->op = c->out[0]->dtype == IL_BOOL ? IL_CU_TOBOOL : IL_CU_IDENT;
    il_cu_geom_of(c->out[0], (const il_tensor *const *)c->in, 1, &s->g);
    *state = s;
    *ws = 0;
    return IL_OK;
}

/* ---------------------------------------------------------------- data movement */

/* The copies a node makes (Concat: one per input; Split: one per output; else one), set up at
 * prepare from the shapes; run reads the element size of this run's dtype. */
typedef struct {
    int n;
    il_cu_copy *g;
} mv_state;

static void mv_release(void *p) {
    mv_state *s = p;
    if (s) free(s->g);
    free(s);
}

static void contiguous(int rank, const int64_t *dims, int64_t *str) { il_strides(rank, dims, str); }

static mv_state *mv_new(int n) {
    mv_state *s = calloc(1, sizeof *s);
    if (s && !(s->g = calloc((size_t)(n > 0 ? n : 1), sizeof *s->g))) {
        free(s);
        return NULL;
    }
    if (s) s->n = n;
    return s;
}

static int mv_supports(const il_kctx *c) {
    for (int i = 0; i < c->n_in + c->n_out; i++) {
        const il_tensor *t = i < c->n_in ? c->in[i] : c->out[i - c->n_in];
        if (t && (!il_shape_known(t) || !il_dtype_size(t->dtype))) return 0;
    }
    return c->n_in > 0 && c->in[0] && c->n_out > 0 && c->out[0];
}

/* Transpose: output dim d walks input dim perm[d]. */
static int perm_of(const il_kctx *c, int64_t *perm) {
    int r = c->in[0]->rank, seen[IL_MAX_RANK] = {0};
    const int64_t *p;
    int n = il_attr_ints(c->node, "perm", &p);
    if (!p) {
        for (int d = 0; d < r; d++) perm[d] = r - 1 - d;
        return 1;
    }
    if (n != r) return 0;
    for (int d = 0; d < r; d++) {
        if (p[d] < 0 || p[d] >= r || seen[p[d]]) return 0;
        seen[p[d]] = 1;
        perm[d] = p[d];
    }
    return 1;
}

static int transpose_supports(const il_kctx *c) {
    int64_t perm[IL_MAX_RANK];
    return mv_supports(c) && c->in[0]->dtype == c->out[0]->dtype && perm_of(c, perm);
}

static il_status transpose_prepare(il_kctx *c, void **state, size_t *ws) {
    mv_state *s = mv_new(1);
    if (!s) return il_kerr(c, IL_ERR_OOM, "out of memory");
    const il_tensor *x = c->in[0], *y = c->out[0];
    int64_t perm[IL_MAX_RANK], xs[IL_MAX_RANK];
    perm_of(c, perm);
    contiguous(x->rank, x->dims, xs);
    il_cu_copy *g = &s->g[0];
    g->rank = y->rank;
    for (int d = 0; d < y->rank; d++) g->dims[d] = y->dims[d], g->sstr[d] = xs[perm[d]];
    contiguous(y->rank, y->dims, g->dstr);
    *state = s;
    *ws = 0;
    return IL_OK;
}

static int axis_of(const il_kctx *c, int rank, int64_t dflt) {
    int64_t a = il_attr_int(c->node, "axis", dflt);
    return a < -rank || a >= rank ? -1 : (int)(a < 0 ? a + rank : a);
}

/* Concat and Split: slabs along an axis of the whole tensor (Concat's output, Split's input);
 * piece k (Concat's input k, Split's output k) lands at / comes from its offset there, as the
 * pieces' inferred shapes give it. */
static int is_concat(const il_kctx *c) { return !strcmp(c->node->op_type, "Concat"); }

static int slabs_supports(const il_kctx *c) {
    int cat = is_concat(c), n = cat ? c->n_in : c->n_out;
    const il_tensor *whole = cat ? c->out[0] : c->in[0];
    if (!mv_supports(c) || axis_of(c, whole->rank, 0) < 0) return 0;
    if (cat && !il_node_attr(c->node, "axis")) return 0; /* opset 1's default (1) is not this file's 0 */
    for (int i = 0; i < n; i++) {
        const il_tensor *t = cat ? c->in[i] : c->out[i];
        if (!t || t->dtype != whole->dtype || t->rank != whole->rank) return 0;
    }
    return 1;
}

static il_status slabs_prepare(il_kctx *c, void **state, size_t *ws) {
    int cat = is_concat(c), n = cat ? c->n_in : c->n_out;
    mv_state *s = mv_new(n);
    if (!s) return il_kerr(c, IL_ERR_OOM, "out of memory");
    const il_tensor *whole = cat ? c->out[0] : c->in[0];
    int axis = axis_of(c, whole->rank, 0);
    int64_t ws_[IL_MAX_RANK], at = 0;
    contiguous(whole->rank, whole->dims, ws_);
    for (int i = 0; i < n; i++) {
        const il_tensor *t = cat ? c->in[i] : c->out[i];
        il_cu_copy *g = &s->g[i];
        g->rank = t->rank;
        memcpy(g->dims, t->dims, sizeof(int64_t) * (size_t)t->rank);
        contiguous(t->rank, t->dims, cat ? g->sstr : g->dstr);
        memcpy(cat ? g->dstr : g->sstr, ws_, sizeof ws_);
        *(cat ? &g->doff : &g->soff) = at * ws_[axis];
        at += t->dims[axis];
    }
    *state = s;
    *ws = 0;
    return IL_OK;
}

/* Slice with starts, ends, axes and steps known at plan time (attributes or constants). */
static int slice_supports(const il_kctx *c) {
    if (!mv_supports(c) || c->in[0]->dtype != c->out[0]->dtype) return 0;
    for (int i = 1; i < c->n_in; i++)
        if (c->in[i] && !il_cuk_const(c, i)) return 0;
    il_slice_plan p;
    il_status st = il_slice_make(c, c->in[0], &p);
    if (st) il_error_clear();
    return !st;
}

static il_status slice_prepare(il_kctx *c, void **state, size_t *ws) {
    il_slice_plan p;
    il_status st = il_slice_make(c, c->in[0], &p);
    if (st) return st;
    mv_state *s = mv_new(1);
    if (!s) return il_kerr(c, IL_ERR_OOM, "out of memory");
    const il_tensor *x = c->in[0], *y = c->out[0];
    int64_t xs[IL_MAX_RANK];
    contiguous(x->rank, x->dims, xs);
    il_cu_copy *g = &s->g[0];
    g->rank = y->rank;
    for (int d = 0; d < y->rank; d++) {
        g->dims[d] = y->dims[d];
        g->sstr[d] = p.step[d] * xs[d];
        g->soff += p.start[d] * xs[d];
    }
    contiguous(y->rank, y->dims, g->dstr);
    *state = s;
    *ws = 0;
    return IL_OK;
}

static il_status mv_run(il_kctx *c) {
    const mv_state *s = c->state;
    int split = !strcmp(c->node->op_type, "Split"), concat = is_concat(c);
    int es = (int)il_dtype_size(c->out[0]->dtype);
    for (int i = 0; i < s->n; i++) {
        const void *src = concat ? c->in[i]->data : c->in[0]->data;
        void *dst = split ? (c->out[i] ? c->out[i]->data : NULL) : c->out[0]->data;
        if (dst) il_cu_strided_copy(src, dst, &s->g[i], es);
    }
    return il_cuda_check(c->node->op_type);
}

/* Gather along any axis with int64 or int32 indices (an embedding lookup is axis 0). */
static int gather_supports(const il_kctx *c) {
    const il_tensor *ids = il_in(c, 1);
    return mv_supports(c) && ids && (ids->dtype == IL_I64 || ids->dtype == IL_I32) &&
           c->in[0]->dtype == c->out[0]->dtype && c->in[0]->rank >= 1 && axis_of(c, c->in[0]->rank, 0) >= 0;
}

static il_status gather_run(il_kctx *c) {
    const il_tensor *x = c->in[0], *ids = c->in[1];
    int axis = axis_of(c, x->rank, 0);
    il_cu_gather(x->data, (int)il_dtype_size(x->dtype), il_dims_prod(x->dims, 0, axis), x->dims[axis],
                 il_dims_prod(x->dims, axis + 1, x->rank), ids->data, ids->dtype, il_tensor_numel(ids),
                 c->out[0]->data);
    return il_cuda_check("Gather");
}

/* Expand: the input's size-1 (and missing leading) dims repeated, a copy with stride 0 there.
 * Tile: out dim d is repeats x in dim d, walked as two dims [repeats, in] (rank 4 at most). */
static int repeat_supports(const il_kctx *c) {
    const il_tensor *x = c->in[0], *y = c->out[0];
    if (!mv_supports(c) || x->dtype != y->dtype || x->rank > y->rank) return 0;
    if (strcmp(c->node->op_type, "Tile")) return 1;
    if (x->rank != y->rank || 2 * x->rank > IL_MAX_RANK) return 0;
    for (int d = 0; d < x->rank; d++)
        if (x->dims[d] == 0 || y->dims[d] % x->dims[d]) return 0;
    return 1;
}

static il_status repeat_prepare(il_kctx *c, void **state, size_t *ws) {
    mv_state *s = mv_new(1);
    if (!s) return il_kerr(c, IL_ERR_OOM, "out of memory");
    const il_tensor *x = c->in[0], *y = c->out[0];
    il_cu_copy *g = &s->g[0];
    int64_t xs[IL_MAX_RANK], ys[IL_MAX_RANK];
    contiguous(y->rank, y->dims, ys);
    if (!strcmp(c->node->op_type, "Tile")) {
        contiguous(x->rank, x->dims, xs);
        g->rank = 2 * x->rank;
        for (int d = 0; d < x->rank; d++) {
            g->dims[2 * d] = y->dims[d] / x->dims[d], g->sstr[2 * d] = 0, g->dstr[2 * d] = x->dims[d] * ys[d];
            g->dims[2 * d + 1] = x->dims[d], g->sstr[2 * d + 1] = xs[d], g->dstr[2 * d + 1] = ys[d];
        }
    } else {
        g->rank = y->rank;
        memcpy(g->dims, y->dims, sizeof(int64_t) * (size_t)y->rank);
        il_broadcast_strides(x, y->rank, y->dims, g->sstr);
        memcpy(g->dstr, ys, sizeof ys);
    }
    *state = s;
    *ws = 0;
    return IL_OK;
}

/* Pad with its pads (and axes) known at build; a constant other than zero for float32 data
 * only (it is stored in the device's dtype). */
typedef struct {
    il_cu_pad_geom g;
    float value;
} pad_state;

static int pad_value(const il_kctx *c, float *v) {
    const il_tensor *ct = c->opset >= 11 ? il_in(c, 2) : NULL;
    *v = 0;
    if (ct && il_tensor_numel(ct) > 0) {
        if (!il_cuk_const(c, 2)) return 0;
        *v = (float)il_tensor_get(ct, 0);
    } else if (c->opset < 11) {
        *v = il_attr_float(c->node, "value", 0.0f);
    }
    return 1;
}

static int pad_supports(const il_kctx *c) {
    il_pad_args p;
    float v;
    if (!mv_supports(c) || c->in[0]->dtype != c->out[0]->dtype || !il_tensor_numel(c->in[0])) return 0;
    for (int i = 1; i < c->n_in; i++)
        if (c->in[i] && !il_cuk_const(c, i)) return 0;
    il_status st = il_pad_args_get(c, c->in[0]->rank, &p);
    il_error_clear();
    if (st || !p.known || !pad_value(c, &v)) return 0;
    return p.mode != IL_PAD_CONSTANT || v == 0 || c->in[0]->dtype == IL_F32;
}

static il_status pad_prepare(il_kctx *c, void **state, size_t *ws) {
    il_pad_args p;
    il_status st = il_pad_args_get(c, c->in[0]->rank, &p);
    if (st) return st;
    pad_state *s = calloc(1, sizeof *s);
    if (!s) return il_kerr(c, IL_ERR_OOM, "out of memory");
    const il_tensor *x = c->in[0], *y = c->out[0];
    s->g.rank = x->rank, s->g.mode = p.mode;
    for (int a = 0; a < x->rank; a++) s->g.xd[a] = x->dims[a], s->g.yd[a] = y->dims[a], s->g.b[a] = p.begin[a],
                                      s->g.e[a] = p.end[a];
    pad_value(c, &s->value);
    *state = s;
    *ws = 0;
    return IL_OK;
}

static il_status pad_run(il_kctx *c) {
    const pad_state *s = c->state;
    il_dtype dt = c->out[0]->dtype;
    int fl = dt == IL_F32 || dt == IL_F16 || dt == IL_BF16;
    il_cu_pad(c->in[0]->data, c->out[0]->data, (int)il_dtype_size(dt), fl ? dt : (il_dtype)0, s->value, &s->g);
    return il_cuda_check("Pad");
}

/* Resize (float data): resize.c builds each axis' taps from the constant scales/sizes/roi at
 * prepare; they go to the device once, in one buffer the node owns. */
typedef struct {
    il_cu_resize g;
    void *dev;
} resize_state;

static void resize_release(void *p) {
    resize_state *s = p;
    if (s) il_cuda_free(s->dev);
    free(s);
}

/* The taps as one device buffer: per axis int64 indices, float weights, outside flags. */
static il_status resize_upload(il_kctx *c, const il_resize_axis *t, resize_state *s) {
    int r = c->in[0]->rank;
    size_t bytes = 0, at = 0;
    for (int a = 0; a < r; a++) bytes += (size_t)(s->g.yd[a] * t[a].n) * 12 + (size_t)s->g.yd[a] + 8;
    char *host = malloc(bytes + 8);
    if (!host || !(s->dev = il_cuda_malloc(bytes + 8))) {
        free(host);
        return il_kerr(c, IL_ERR_OOM, "out of memory for the resize taps (%zu bytes)", bytes);
    }
    for (int a = 0; a < r; a++) {
        int64_t m = s->g.yd[a] * t[a].n;
        memcpy(host + at, t[a].idx, (size_t)m * 8);
        s->g.idx[a] = (const int64_t *)((char *)s->dev + at);
        at += (size_t)m * 8;
        float *w = (float *)(host + at);
        for (int64_t i = 0; i < m; i++) w[i] = (float)t[a].w[i];
        s->g.w[a] = (const float *)((char *)s->dev + at);
        at += (size_t)m * 4;
        memcpy(host + at, t[a].outside, (size_t)s->g.yd[a]);
        s->g.outside[a] = (const unsigned char *)((char *)s->dev + at);
        at = (at + (size_t)s->g.yd[a] + 7) / 8 * 8;
    }
    il_status st = il_cuda_upload(s->dev, host, at);
    free(host);
    return st;
}

static il_status resize_prepare(il_kctx *c, void **state, size_t *ws) {
    il_resize_axis t[IL_MAX_RANK];
    double extra;
    il_status st = il_resize_taps(c, t, &extra);
    if (st) return st;
    resize_state *s = calloc(1, sizeof *s);
    const il_tensor *x = c->in[0];
    int64_t xs[IL_MAX_RANK];
    if (!s) st = il_kerr(c, IL_ERR_OOM, "out of memory");
    if (!st) {
        contiguous(x->rank, x->dims, xs);
        s->g.rank = x->rank, s->g.extrapolation = (float)extra;
        for (int a = 0; a < x->rank; a++) s->g.yd[a] = c->out[0]->dims[a], s->g.xs[a] = xs[a], s->g.n[a] = t[a].n;
        st = resize_upload(c, t, s);
    }
    il_resize_taps_free(t, x->rank);
    if (st) {
        resize_release(s);
        return st;
    }
    *state = s;
    *ws = 0;
    return IL_OK;
}

/* Float data, constant roi/scales/sizes, at most 256 tap combinations per output element. */
static int resize_supports(const il_kctx *c) {
    if (!il_cuk_f32_in(c, 0) || c->out[0]->dtype != IL_F32 || !il_tensor_numel(c->in[0])) return 0;
    for (int i = 1; i < c->n_in; i++)
        if (c->in[i] && il_tensor_numel(c->in[i]) && !il_cuk_const(c, i)) return 0;
    il_resize_axis t[IL_MAX_RANK];
    double extra;
    il_status st = il_resize_taps((il_kctx *)c, t, &extra);
    if (st) {
        il_error_clear();
        return 0;
    }
    int64_t combos = 1;
    for (int a = 0; a < c->in[0]->rank; a++) combos *= t[a].n;
    il_resize_taps_free(t, c->in[0]->rank);
    return combos <= 256;
}

static il_status resize_run(il_kctx *c) {
    const resize_state *s = c->state;
    il_cu_resize_run(c->in[0]->data, c->out[0]->data, c->out[0]->dtype, &s->g);
    return il_cuda_check("Resize");
}

/* DepthToSpace / SpaceToDepth: one 6-D strided copy over the space-side tensor viewed as
 * [N, C', H, b, W, b] (DepthToSpace: y; SpaceToDepth: x), pad.c's formulas:
 *   DepthToSpace DCR: y[n, c, h*b+i, w*b+j] = x[n, (i*b + j)*C' + c, h, w]
 *   DepthToSpace CRD: y[n, c, h*b+i, w*b+j] = x[n, c*b*b + i*b + j, h, w]
 *   SpaceToDepth:     y[n, (i*b + j)*C + c, h, w] = x[n, c, h*b+i, w*b+j] */
static int d2s_supports(const il_kctx *c) {
    const char *mode = il_attr_string(c->node, "mode", "DCR");
    int64_t b = il_attr_int(c->node, "blocksize", 0);
    return mv_supports(c) && c->in[0]->rank == 4 && c->out[0]->rank == 4 && c->in[0]->dtype == c->out[0]->dtype &&
           b >= 1 && (!strcmp(mode, "DCR") || !strcmp(mode, "CRD"));
}

static il_status d2s_prepare(il_kctx *c, void **state, size_t *ws) {
    mv_state *s = mv_new(1);
    if (!s) return il_kerr(c, IL_ERR_OOM, "out of memory");
    int to_space = !strcmp(c->node->op_type, "DepthToSpace");
    int crd = to_space && !strcmp(il_attr_string(c->node, "mode", "DCR"), "CRD");
    int64_t b = il_attr_int(c->node, "blocksize", 1);
    const il_tensor *sp = to_space ? c->out[0] : c->in[0];
    int64_t N = sp->dims[0], C = sp->dims[1], H = sp->dims[2] / b, W = sp->dims[3] / b, HW = H * W;
    /* the space side, contiguous: dims n, c, h, i, w, j */
    int64_t dims[6] = {N, C, H, b, W, b}, space[6], depth[6] = {b * b * C * HW, HW, W, b * C * HW, 1, C * HW};
    if (crd) depth[1] = b * b * HW, depth[3] = b * HW, depth[5] = HW;
    contiguous(6, dims, space);
    il_cu_copy *g = &s->g[0];
    g->rank = 6;
    memcpy(g->dims, dims, sizeof dims);
    memcpy(to_space ? g->dstr : g->sstr, space, sizeof space);
    memcpy(to_space ? g->sstr : g->dstr, depth, sizeof depth);
    *state = s;
    *ws = 0;
    return IL_OK;
}

/* Dropout in inference: its input, when no mask is asked for and training_mode is not on. */
static int dropout_supports(const il_kctx *c) {
    const il_tensor *train = il_in(c, 2);
    if (c->n_out > 1 && c->out[1]) return 0;
    if (c->opset >= 12 && train && il_tensor_numel(train) && (!il_cuk_const(c, 2) || il_tensor_get(train, 0) != 0))
        return 0;
    return mv_supports(c) && c->in[0]->dtype == c->out[0]->dtype;
}

static il_status dropout_run(il_kctx *c) {
    return il_cuda_copy(c->out[0]->data, c->in[0]->data, il_tensor_bytes(c->out[0]));
}

/* GatherND with any batch_dims, int64/int32 index tuples. */
static int gather_nd_supports(const il_kctx *c) {
    const il_tensor *x = c->in[0], *ids = il_in(c, 1);
    if (!mv_supports(c) || !ids || (ids->dtype != IL_I64 && ids->dtype != IL_I32) || ids->rank < 1 ||
        x->dtype != c->out[0]->dtype)
        return 0;
    int64_t b = il_attr_int(c->node, "batch_dims", 0), m = ids->dims[ids->rank - 1];
    return b >= 0 && b < ids->rank && b < x->rank && m >= 1 && m <= x->rank - b;
}

static il_status gather_nd_prepare(il_kctx *c, void **state, size_t *ws) {
    il_cu_gnd *g = calloc(1, sizeof *g);
    if (!g) return il_kerr(c, IL_ERR_OOM, "out of memory");
    const il_tensor *x = c->in[0], *ids = c->in[1];
    int b = (int)il_attr_int(c->node, "batch_dims", 0);
    g->m = (int)ids->dims[ids->rank - 1];
    for (int k = 0; k < g->m; k++) g->dims[k] = x->dims[b + k], g->str[k] = il_dims_prod(x->dims, b + k + 1, x->rank);
    g->per = il_dims_prod(ids->dims, b, ids->rank - 1);
    g->slice = il_dims_prod(x->dims, b + g->m, x->rank);
    g->bstride = il_dims_prod(x->dims, b, x->rank);
    g->tuples = il_dims_prod(ids->dims, 0, ids->rank - 1);
    *state = g;
    *ws = 0;
    return IL_OK;
}

static il_status gather_nd_run(il_kctx *c) {
    il_cu_gather_nd(c->in[0]->data, (int)il_dtype_size(c->in[0]->dtype), c->in[1]->data, c->in[1]->dtype, c->state,
                    c->out[0]->data);
    return il_cuda_check("GatherND");
}

/* ---------------------------------------------------------------- the table */

#define F32 IL_DT(IL_F32)
#define K(DOM, OP, NAME, DT, SUP, PREP, RUN, REL, DOC)                                                            \
    {.domain = DOM, .op = OP, .backend = "cuda", .name = NAME, .dtypes = DT, .priority = 10, .supports = SUP,     \
     .prepare = PREP, .run = RUN, .release = REL, .doc = DOC}
#define EW(DOM, OP, DT, DOC) K(DOM, OP, "cuda", DT, ew_supports, ew_prepare, ew_run, free, DOC)
#define UNARY(OP) EW("", OP, F32, "elementwise; f32/f16/bf16")
#define BINARY(OP) EW("", OP, F32, "elementwise, numpy broadcasting; f32/f16/bf16")
#define REDUCE(OP)                                                                                                 \
    K("", OP, "cuda", F32, il_cuk_view_supports, il_cuk_view_prepare, il_cuk_reduce_run, free,                    \
      "axes forming one run of dims, in double; f32/f16/bf16")
#define MOVE(OP, SUP, PREP, DOC) K("", OP, "cuda", 0, SUP, PREP, mv_run, mv_release, DOC)

const il_kernel il_kernels_cuda_ops[] = {
    UNARY("Sqrt"), UNARY("Erf"), UNARY("Tanh"), UNARY("Sigmoid"), UNARY("Exp"), UNARY("Log"), UNARY("Neg"),
    UNARY("Abs"), UNARY("Reciprocal"), UNARY("Gelu"), UNARY("HardSwish"), UNARY("HardSigmoid"), UNARY("LeakyRelu"),
    UNARY("Floor"), UNARY("Ceil"), UNARY("Round"), UNARY("Sin"), UNARY("Cos"), UNARY("Softplus"), UNARY("Softsign"),
    UNARY("Elu"), UNARY("Selu"), UNARY("Celu"), UNARY("ThresholdedRelu"), UNARY("Mish"), UNARY("Sign"),
    EW("ai.inferlab", "Gelu", F32, "elementwise (erf or tanh form); f32/f16/bf16"),
    EW("ai.inferlab", "HardSwish", F32, "elementwise; f32/f16/bf16"),
    EW("ai.inferlab", "SiLU", F32, "elementwise; f32/f16/bf16"),
    BINARY("Add"), BINARY("Sub"), BINARY("Mul"), BINARY("Div"), BINARY("Pow"), EW("", "Max", F32, "1-3 inputs, broadcasting; f32/f16/bf16"), EW("", "Min", F32, "1-3 inputs, broadcasting; f32/f16/bf16"),
    EW("", "Sum", F32, "1-3 inputs, broadcasting; f32/f16/bf16"), EW("", "Mean", F32, "1-3 inputs, broadcasting; f32/f16/bf16"),
    EW("", "PRelu", F32, "slope broadcast (numpy, opset 7 on); f32/f16/bf16"),
    EW("", "Equal", F32, "float inputs, bool output, broadcasting"),
    EW("", "Less", F32, "float inputs, bool output, broadcasting"),
    EW("", "LessOrEqual", F32, "float inputs, bool output, broadcasting"),
    EW("", "Greater", F32, "float inputs, bool output, broadcasting"),
    EW("", "GreaterOrEqual", F32, "float inputs, bool output, broadcasting"),
    EW("", "And", IL_DT(IL_BOOL), "bool, broadcasting"), EW("", "Or", IL_DT(IL_BOOL), "bool, broadcasting"),
    EW("", "Xor", IL_DT(IL_BOOL), "bool, broadcasting"), EW("", "Not", IL_DT(IL_BOOL), "bool"),
    K("", "Where", "cuda", IL_DT(IL_BOOL), where_supports, where_prepare, ew_run, free,
      "bool condition, any dtype, broadcasting"),
    K("", "Cast", "cuda", 0, cast_supports, cast_prepare, ew_run, free,
      "float/int/bool to float32, float16 or bool"),
    MOVE("Transpose", transpose_supports, transpose_prepare, "any perm, any dtype"),
    MOVE("Concat", slabs_supports, slabs_prepare, "any axis, any dtype"),
    MOVE("Split", slabs_supports, slabs_prepare, "any axis, any dtype"),
    MOVE("Expand", repeat_supports, repeat_prepare, "any dtype"),
    MOVE("Tile", repeat_supports, repeat_prepare, "rank 4 at most, any dtype"),
    K("", "Resize", "cuda", F32, resize_supports, resize_prepare, resize_run, resize_release,
      "resize.c's taps (nearest, linear, cubic; every coordinate mode) from constant scales/sizes"),
    K("", "Pad", "cuda", 0, pad_supports, pad_prepare, pad_run, free,
      "constant/edge/reflect/wrap, pads known at build, any dtype (a non-zero constant: float)"),
    MOVE("DepthToSpace", d2s_supports, d2s_prepare, "DCR and CRD, any dtype"),
    MOVE("SpaceToDepth", d2s_supports, d2s_prepare, "any dtype"),
    K("", "Dropout", "cuda", 0, dropout_supports, NULL, dropout_run, NULL, "inference: a device copy, no mask"),
    MOVE("Slice", slice_supports, slice_prepare, "starts/ends/axes/steps known at build, any dtype"),
    K("", "Gather", "cuda", 0, gather_supports, NULL, gather_run, NULL,
      "any axis, int64/int32 indices (out of range: zeros), any dtype"),
    K("", "GatherND", "cuda", 0, gather_nd_supports, gather_nd_prepare, gather_nd_run, free,
      "any batch_dims, int64/int32 index tuples (out of range: zeros), any dtype"),
    K("", "MatMul", "cublas", F32, il_cuk_matmul_supports, il_cuk_matmul_prepare, il_cuk_matmul_run, free,
      "cuBLAS strided batched, broadcast batch dims; f32 (TF32 on request)/f16/bf16, float sums"),
    K("ai.inferlab", "FusedMatMul", "cublas", F32, il_cuk_matmul_supports, il_cuk_matmul_prepare,
      il_cuk_matmul_run, free, "cuBLAS + bias/activation epilogue; f32/f16/bf16"),
    K("ai.inferlab", "FusedGemm", "cublas", F32, il_cuk_gemm_supports, il_cuk_gemm_prepare, il_cuk_gemm_run, free,
      "cuBLAS + C + activation epilogue; f32/f16/bf16"),
    K("ai.inferlab", "Attention", "cublas", F32, il_cuk_attention_supports, il_cuk_attention_prepare,
      il_cuk_attention_run, free, "two cuBLAS products around a masked softmax (scores in the workspace)"),
    K("", "Softmax", "cuda", F32, il_cuk_view_supports, il_cuk_view_prepare, il_cuk_softmax_run, free,
      "one block per row, any axis; f32/f16/bf16"),
    K("", "LogSoftmax", "cuda", F32, il_cuk_view_supports, il_cuk_view_prepare, il_cuk_softmax_run, free,
      "one block per row, any axis; f32/f16/bf16"),
    K("", "LayerNormalization", "cuda", F32, il_cuk_layernorm_supports, il_cuk_layernorm_prepare,
      il_cuk_layernorm_run, free, "one block per row; Scale/B full or scalar; f32/f16/bf16"),
    K("ai.inferlab", "LayerNormalization", "cuda", F32, il_cuk_layernorm_supports, il_cuk_layernorm_prepare,
      il_cuk_layernorm_run, free, "one block per row; Scale/B full or scalar; f32/f16/bf16"),
    K("", "InstanceNormalization", "cuda", F32, il_cuk_layernorm_supports, il_cuk_layernorm_prepare,
      il_cuk_layernorm_run, free, "one block per (image, channel); f32/f16/bf16"),
    K("", "GroupNormalization", "cuda", F32, il_cuk_layernorm_supports, il_cuk_layernorm_prepare,
      il_cuk_layernorm_run, free, "one block per (image, group); scale per channel or group; f32/f16/bf16"),
    REDUCE("ReduceSum"), REDUCE("ReduceMean"), REDUCE("ReduceMax"), REDUCE("ReduceMin"), REDUCE("ReduceProd"),
    REDUCE("ReduceL1"), REDUCE("ReduceL2"), REDUCE("ReduceLogSum"), REDUCE("ReduceLogSumExp"),
    REDUCE("ReduceSumSquare"),
    K("", "ArgMax", "cuda", F32, il_cuk_view_supports, il_cuk_view_prepare, il_cuk_arg_run, free,
      "int64 indices, keepdims, select_last_index; f32/f16/bf16"),
    K("", "ArgMin", "cuda", F32, il_cuk_view_supports, il_cuk_view_prepare, il_cuk_arg_run, free,
      "int64 indices, keepdims, select_last_index; f32/f16/bf16"),
    {0},
};
#else
const il_kernel il_kernels_cuda_ops[] = {{0}};
#endif
