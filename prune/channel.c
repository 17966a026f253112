/*
 * channel.c - channel pruning: the dependency analysis that says which channels must be removed
 * together and the filter-norm scores (the choice of what to remove and the rewrite are
 * channel_apply.c; the whole idea is told in channel.h and channel_int.h).
 *
 * Nodes are visited in topological order. Each visit reads the maps of the node's inputs, records
 * what the rewrite must do to the node's constants, and gives its outputs their maps; an op the
 * analysis does not follow fixes every channel it reads (they stay) and its outputs carry no map.
 */
#include "channel_int.h"

#include <math.h>
#include <stdio.h>

/* ---------------------------------------------------------------- elements and maps */

int ch_find(ch_ctx *x, int e) {
    while (x->parent[e] != e) e = x->parent[e] = x->parent[x->parent[e]];
    return e;
}

int ch_lfind(ch_ctx *x, int l) {
    while (x->lparent[l] != l) l = x->lparent[l] = x->lparent[x->lparent[l]];
    return l;
}

static int el_new(ch_ctx *x, int layer, int fixed) {
    if (x->n_el == x->cap_el) {
        x->cap_el = x->cap_el ? 2 * x->cap_el : 1024;
        x->parent = realloc(x->parent, (size_t)x->cap_el * sizeof *x->parent);
        x->layer = realloc(x->layer, (size_t)x->cap_el * sizeof *x->layer);
        x->score = realloc(x->score, (size_t)x->cap_el * sizeof *x->score);
        x->fixed = realloc(x->fixed, (size_t)x->cap_el);
    }
    int e = x->n_el++;
    x->parent[e] = e;
    x->layer[e] = layer;
    x->score[e] = 0;
    x->fixed[e] = (unsigned char)fixed;
    return e;
}

/* One channel class from two: scores add up, fixed wins, the layers become one unit. */
static void unite(ch_ctx *x, int a, int b) {
    a = ch_find(x, a), b = ch_find(x, b);
    if (a == b) return;
    x->parent[b] = a;
    x->score[a] += x->score[b];
    x->fixed[a] |= x->fixed[b];
    int la = x->layer[a], lb = x->layer[b];
    if (la >= 0 && lb >= 0) x->lparent[ch_lfind(x, lb)] = ch_lfind(x, la);
    else if (la < 0) x->layer[a] = lb;
}

static ch_map *map_new(ch_ctx *x, int n, int axis) {
    if (x->n_maps == x->cap_maps) {
        x->cap_maps = x->cap_maps ? 2 * x->cap_maps : 256;
        x->maps = realloc(x->maps, (size_t)x->cap_maps * sizeof *x->maps);
    }
    ch_map *m = calloc(1, sizeof *m);
    m->n = n;
    m->axis = axis;
    m->el = malloc((size_t)(n > 0 ? n : 1) * sizeof(int));
    x->maps[x->n_maps++] = m;
    return m;
}

/* n new elements on `axis`: made by `layer` (prunable unless fixed), or fixed ones (layer -1). */
static ch_map *map_fresh(ch_ctx *x, int n, int axis, int layer, int fixed) {
    ch_map *m = map_new(x, n, axis);
    for (int i = 0; i < n; i++) m->el[i] = el_new(x, layer, fixed || layer < 0);
    return m;
}

/* The same elements seen on another axis. */
static ch_map *map_axis(ch_ctx *x, ch_map *m, int axis) {
    if (m->axis == axis) return m;
    ch_map *r = map_new(x, m->n, axis);
    memcpy(r->el, m->el, (size_t)m->n * sizeof(int));
    return r;
}

static void fix_map(ch_ctx *x, const ch_map *m) {
    for (int i = 0; m && i < m->n; i++) x->fixed[ch_find(x, m->el[i])] = 1;
}

static void act_add(ch_ctx *x, ch_action_kind kind, int node, int slot, int axis, int value) {
    if (x->n_act == x->cap_act) {
        x->cap_act = x->cap_act ? 2 * x->cap_act : 256;
        x->act = realloc(x->act, (size_t)x->cap_act * sizeof *x->act);
    }
    x->act[x->n_act++] = (ch_action){kind, node, slot, axis, value};
}

/* ---------------------------------------------------------------- graph helpers */

static const il_tensor *info(const ch_ctx *x, int v) { return &x->s->info[v]; }

static int in_v(const il_node *n, int i) { return i >= 0 && i < n->n_inputs ? n->inputs[i] : -1; }

static int is_const(const ch_ctx *x, int v) {
    return v >= 0 && x->g->values[v].constant && !x->g->values[v].is_input;
}

static ch_map *map_of(const ch_ctx *x, int v) { return v >= 0 ? x->map[v] : NULL; }

static void set_out(ch_ctx *x, const il_node *n, int i, ch_map *m) {
    if (i < n->n_outputs && n->outputs[i] >= 0) x->map[n->outputs[i]] = m;
}

/* An op we do not follow: whatever channels it reads stay. */
static void block(ch_ctx *x, const il_node *n) {
    for (int i = 0; i < n->n_inputs; i++) fix_map(x, map_of(x, n->inputs[i]));
}

static int excluded(const ch_ctx *x, int k) {
    const il_node *n = &x->g->nodes[k];
    int w = in_v(n, 1);
    for (int i = 0; i < x->n_exclude; i++) {
        const char *e = x->exclude[i];
        if (!strcmp(e, n->name) || (w >= 0 && !strcmp(e, x->g->values[w].name))) return 1;
        if ((!strcmp(e, "first") && k == x->first_layer) || (!strcmp(e, "last") && k == x->last_layer)) return 1;
    }
    return 0;
}

/* Known positive dims (and rank) of a value under the unpruned shapes. */
static int known(const ch_ctx *x, int v) { return v >= 0 && shape_known(info(x, v)); }

/* The ints of attribute `name`, or of constant input `slot` when the attribute is absent (ops
 * that moved an attribute to an input); -1 when neither is there, -2 when the input is computed. */
static int ints_of(const ch_ctx *x, const il_node *n, const char *name, int slot, int64_t *out, int max) {
    const int64_t *a;
    int c = il_attr_ints(n, name, &a);
    if (c > 0) {
        for (int i = 0; i < c && i < max; i++) out[i] = a[i];
        return c < max ? c : max;
    }
    int v = in_v(n, slot);
    if (v < 0) return -1;
    if (!is_const(x, v)) return -2;
    const il_tensor *t = x->g->values[v].constant;
    int64_t m = il_tensor_numel(t);
    for (int64_t i = 0; i < m && i < max; i++) out[i] = (int64_t)il_tensor_get(t, i);
    return (int)(m < max ? m : max);
}

/* ---------------------------------------------------------------- scores */

/* The norm contribution of `len` elements from t at start + i*stride: L1 sum, or squared L2. */
static double part_norm(const ch_ctx *x, const il_tensor *t, int64_t start, int64_t stride, int64_t len) {
    double s = 0;
    for (int64_t i = 0; i < len; i++) {
        double v = il_tensor_get(t, start + i * stride);
        s += x->norm == 1 ? fabs(v) : v * v;
    }
    return s;
}

/* Output channel c of a weight: rows along axis 0 (Conv, Gemm transB) or columns (axis 1 of a
 * [K, N] matrix). */
static double filter_score(const ch_ctx *x, const il_tensor *w, int axis, int64_t c) {
    int64_t numel = il_tensor_numel(w), len = numel / w->dims[axis];
    if (axis == 0) return part_norm(x, w, c * len, 1, len);
    return part_norm(x, w, c, w->dims[1], w->dims[0]);
}

/* A layer's output: fresh elements scored by their filters, prunable unless excluded. */
static ch_map *layer_out(ch_ctx *x, int k, const il_tensor *w, int waxis, int out_axis) {
    int n = (int)w->dims[waxis], ex = excluded(x, k);
    ch_map *m = map_fresh(x, n, out_axis, k, ex);
    for (int c = 0; c < n; c++) x->score[m->el[c]] = filter_score(x, w, waxis, c);
    return m;
}

/* ---------------------------------------------------------------- layers */

/* Conv: group 1 reads any channels (a sink) and makes new ones; depthwise passes its input's
 * channels through (multiplier m: output j is input j/m); other grouped convs are kept whole. */
static void visit_conv(ch_ctx *x, int k) {
    const il_node *n = &x->g->nodes[k];
    int X = in_v(n, 0), W = in_v(n, 1), B = in_v(n, 2), y = n->outputs[0];
    ch_map *m = map_of(x, X);
    const il_tensor *w = is_const(x, W) ? x->g->values[W].constant : NULL;
    int64_t grp = il_attr_int(n, "group", 1);
    if (!w || w->rank < 3 || (B >= 0 && !is_const(x, B)) || w->dims[0] <= 0 || grp < 1) {
        block(x, n);
        if (known(x, y)) set_out(x, n, 0, map_fresh(x, (int)info(x, y)->dims[1], 1, -1, 1));
        return;
    }
    int64_t cin = w->dims[1] * grp, mout = w->dims[0];
    if (m && (m->axis != 1 || m->n != cin)) {
        fix_map(x, m);
        m = NULL;
    }
    if (grp == 1) {
        if (m) act_add(x, CH_SINK, k, 1, 1, X);
        set_out(x, n, 0, layer_out(x, k, w, 0, 1));
        act_add(x, CH_SLICE, k, 1, 0, y);
        if (B >= 0) act_add(x, CH_SLICE, k, 2, 0, y);
        return;
    }
    if (w->dims[1] == 1 && mout % cin == 0 && m && !excluded(x, k)) {
        ch_map *o = map_new(x, (int)mout, 1);
        int64_t mult = mout / cin;
        for (int64_t j = 0; j < mout; j++) {
            o->el[j] = m->el[j / mult];
            x->score[ch_find(x, o->el[j])] += filter_score(x, w, 0, j);
        }
        set_out(x, n, 0, o);
        act_add(x, CH_SLICE, k, 1, 0, y);
        if (B >= 0) act_add(x, CH_SLICE, k, 2, 0, y);
        act_add(x, CH_GROUP, k, 0, 0, X);
        return;
    }
    fix_map(x, m);
    set_out(x, n, 0, map_fresh(x, (int)mout, 1, -1, 1));
}

/* Gemm (Y = A B' + C) and MatMul with a constant right-hand matrix: A's channel axis is the
 * reduction (its K rows of B are a sink), the output's last axis the layer's channels. */
static void visit_linear(ch_ctx *x, int k, int gemm) {
    const il_node *n = &x->g->nodes[k];
    int A = in_v(n, 0), Bv = in_v(n, 1), C = gemm ? in_v(n, 2) : -1, y = n->outputs[0];
    const il_tensor *b = is_const(x, Bv) ? x->g->values[Bv].constant : NULL;
    int ta = gemm && il_attr_int(n, "transA", 0), tb = gemm && il_attr_int(n, "transB", 0);
    ch_map *m = map_of(x, A);
    const il_tensor *ya = info(x, y);
    if (!b || b->rank != 2 || ya->rank < 1 || (C >= 0 && !is_const(x, C))) {
        block(x, n);
        if (known(x, y)) set_out(x, n, 0, map_fresh(x, (int)ya->dims[ya->rank - 1], ya->rank - 1, -1, 1));
        return;
    }
    int64_t K = b->dims[tb ? 1 : 0];
    int ra = info(x, A)->rank;
    if (m && (ta || m->axis != ra - 1 || m->n != K)) {
        fix_map(x, m);
        m = NULL;
    }
    if (m) act_add(x, CH_SINK, k, 1, tb ? 1 : 0, A);
    int naxis = tb ? 0 : 1;
    set_out(x, n, 0, layer_out(x, k, b, naxis, ya->rank - 1));
    act_add(x, CH_SLICE, k, 1, naxis, y);
    if (C >= 0) {
        const il_tensor *c = x->g->values[C].constant;
        if (c->rank >= 1 && c->dims[c->rank - 1] == b->dims[naxis] && b->dims[naxis] > 1)
            act_add(x, CH_SLICE, k, 2, c->rank - 1, y);
    }
}

/* BatchNormalization (scale, B, mean, var) and InstanceNormalization (scale, B): per-channel
 * parameters sliced like the channels. */
static void visit_norm(ch_ctx *x, int k, int nparams) {
    const il_node *n = &x->g->nodes[k];
    ch_map *m = map_of(x, in_v(n, 0));
    int ok = m && m->axis == 1;
    for (int i = 1; ok && i <= nparams; i++) {
        int v = in_v(n, i);
        ok = is_const(x, v) && x->g->values[v].constant->rank == 1 && x->g->values[v].constant->dims[0] == m->n;
    }
    if (!ok) {
        block(x, n);
        return;
    }
    for (int i = 1; i <= nparams; i++) act_add(x, CH_SLICE, k, i, 0, n->outputs[0]);
    for (int i = 0; i < n->n_outputs; i++) set_out(x, n, i, i == 0 ? m : NULL);
}

/* ---------------------------------------------------------------- channels through other ops */

/* Elementwise ops over broadcast inputs: channel-carrying inputs aligned at the same position
 * from the end are one set of channels; constants broadcast along it are sliced. */
static void visit_elementwise(ch_ctx *x, int k) {
    const il_node *n = &x->g->nodes[k];
    int y = n->outputs[0], R = info(x, y)->rank, from_end = -1;
    ch_map *ref = NULL;
    for (int i = 0; i < n->n_inputs; i++) {
        ch_map *m = map_of(x, n->inputs[i]);
        if (!m || m->n <= 1) continue;
        if (info(x, n->inputs[i])->rank < 0) {
            block(x, n);
            return;
        }
        int pe = info(x, n->inputs[i])->rank - m->axis;
        if (!ref) ref = m, from_end = pe;
        else if (pe != from_end || m->n != ref->n) {
            block(x, n);
            return;
        }
    }
    if (!ref || R < from_end) {
        block(x, n);
        return;
    }
    int stays = 0;
    for (int i = 0; i < n->n_inputs; i++) {
        int v = n->inputs[i];
        if (v < 0) continue;
        ch_map *m = map_of(x, v);
        if (m && m->n == ref->n) {
            for (int p = 0; p < m->n; p++) unite(x, ref->el[p], m->el[p]);
            continue;
        }
        fix_map(x, m); /* one channel broadcast over all: it stays */
        const il_tensor *t = info(x, v);
        int r = t->rank, ax = r - from_end;
        int64_t d = ax >= 0 ? t->dims[ax] : 1;
        if (d == 1) continue;
        if (is_const(x, v) && d == ref->n) act_add(x, CH_SLICE, k, i, ax, y);
        else stays = 1; /* a computed operand we cannot slice, or an unknown dim */
    }
    if (stays) fix_map(x, ref);
    for (int i = 0; i < n->n_outputs; i++) set_out(x, n, i, map_axis(x, ref, R - from_end));
}

/* Ops whose input 0 and output 0 have the same channels at the same place (other inputs are
 * scalars or spatial parameters). */
static const char *const same_shape_ops[] = {
    "Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Elu", "Selu", "Celu", "Softplus",
    "Softsign", "Gelu", "Erf", "Exp", "Log", "Neg", "Abs", "Sqrt", "Reciprocal", "Identity", "Dropout", "Cast",
    "Floor", "Ceil", "Round", "Sign", "Mish", "ThresholdedRelu", "Sin", "Cos", "Not", "IsNaN", "IsInf", NULL};
static const char *const pool_ops[] = {"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "LpPool",
                                       "GlobalLpPool", "Upsample", NULL};
static const char *const eltwise_ops[] = {"Add", "Sub", "Mul", "Div", "Max", "Min", "Sum", "Mean", "Pow", "PRelu",
                                          "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or",
                                          "Xor", "Where", NULL};
static const char *const reduce_ops[] = {"ReduceMean", "ReduceMax", "ReduceMin", "ReduceSum", "ReduceL1", "ReduceL2",
                                         "ReduceProd", "ReduceLogSumExp", "ReduceSumSquare", NULL};

static int in_list(const char *op, const char *const *list) {
    for (; *list; list++)
        if (!strcmp(op, *list)) return 1;
    return 0;
}

/* Output 0 has input 0's channels on axis `axis` (other inputs must carry none). */
static void pass_through(ch_ctx *x, const il_node *n, int axis) {
    ch_map *m = map_of(x, in_v(n, 0));
    for (int i = 1; i < n->n_inputs; i++)
        if (map_of(x, n->inputs[i])) {
            block(x, n);
            return;
        }
    set_out(x, n, 0, map_axis(x, m, axis));
    if (!strcmp(n->op_type, "Dropout")) set_out(x, n, 1, map_axis(x, m, axis));
}

static int used(const ch_ctx *x, int v) {
    return v >= 0 && (x->g->values[v].is_output || il_graph_consumers(x->g, v, NULL, 0) > 0);
}

/* Pools and Resize/Upsample act on spatial dims; a MaxPool's Indices (flat positions that count
 * channels) and a Resize to explicit sizes (they name the channel count) stop the analysis. */
static void visit_spatial(ch_ctx *x, int k) {
    const il_node *n = &x->g->nodes[k];
    ch_map *m = map_of(x, in_v(n, 0));
    int bad = !m || m->axis != 1 || (n->n_outputs > 1 && used(x, n->outputs[1]));
    if (!strcmp(n->op_type, "Resize")) bad |= in_v(n, 3) >= 0 || (in_v(n, 2) >= 0 && !is_const(x, in_v(n, 2)));
    if (bad) block(x, n);
    else pass_through(x, n, 1);
}

/* Pad: constant pads that leave the channel axis alone. */
static void visit_pad(ch_ctx *x, int k) {
    const il_node *n = &x->g->nodes[k];
    ch_map *m = map_of(x, in_v(n, 0));
    int64_t pads[2 * IL_MAX_RANK];
    int r = info(x, in_v(n, 0))->rank, c = ints_of(x, n, "pads", 1, pads, 2 * IL_MAX_RANK);
    if (!m || in_v(n, 3) >= 0 || c != 2 * r || pads[m->axis] != 0 || pads[m->axis + r] != 0) {
        block(x, n);
        return;
    }
    if (in_v(n, 2) >= 0 && map_of(x, in_v(n, 2))) block(x, n);
    else set_out(x, n, 0, m);
}

/* Concat along the channel axis: the output's positions are the inputs' in order (inputs that
 * carry no map bring fixed channels); along any other axis the inputs' channels are one set. */
static void visit_concat(ch_ctx *x, int k) {
    const il_node *n = &x->g->nodes[k];
    int y = n->outputs[0], R = info(x, y)->rank, axis = -1;
    int64_t a = il_attr_int(n, "axis", 0);
    if (R > 0) axis = (int)(a < 0 ? a + R : a);
    ch_map *first = NULL;
    for (int i = 0; i < n->n_inputs; i++) {
        ch_map *m = map_of(x, n->inputs[i]);
        if (m && !first) first = m;
        if (m && (m->axis != first->axis || info(x, n->inputs[i])->rank != R)) {
            block(x, n);
            return;
        }
    }
    if (!first || axis < 0) {
        block(x, n);
        return;
    }
    if (axis != first->axis) {
        visit_elementwise(x, k);
        return;
    }
    int total = 0;
    for (int i = 0; i < n->n_inputs; i++) {
        const il_tensor *t = info(x, n->inputs[i]);
        if (t->rank != R || t->dims[axis] < 0) {
            block(x, n);
            return;
        }
        total += (int)t->dims[axis];
    }
    ch_map *o = map_new(x, total, axis);
    int at = 0;
    for (int i = 0; i < n->n_inputs; i++) {
        ch_map *m = map_of(x, n->inputs[i]);
        int d = (int)info(x, n->inputs[i])->dims[axis];
        ch_map *part = m ? m : map_fresh(x, d, axis, -1, 1);
        memcpy(o->el + at, part->el, (size_t)d * sizeof(int));
        at += d;
    }
    set_out(x, n, 0, o);
}

/* Flatten at the axis after the channels, or a Reshape to [dims before the channels, C*S]
 * (S: the product of the dims after them): each channel becomes S consecutive positions. A
 * Reshape that keeps the dims up to the channels keeps the channels where they are. Either way
 * an explicit channel count in Reshape's shape constant is rewritten. */
static void visit_reshape(ch_ctx *x, int k) {
    const il_node *n = &x->g->nodes[k];
    int X = in_v(n, 0), y = n->outputs[0], flatten = !strcmp(n->op_type, "Flatten");
    ch_map *m = map_of(x, X);
    const il_tensor *ti = info(x, X), *to = info(x, y);
    if (!m || ti->rank <= m->axis || to->rank <= m->axis || (!flatten && !is_const(x, in_v(n, 1))) ||
        dims_prod(ti->dims, m->axis + 1, ti->rank) < 0) {
        block(x, n);
        return;
    }
    int a = m->axis;
    if (flatten) {
        int64_t fa = il_attr_int(n, "axis", 1);
        if (fa < 0) fa += ti->rank;
        if (fa != a) {
            block(x, n);
            return;
        }
    }
    int same_prefix = 1;
    for (int d = 0; d < a; d++) same_prefix &= to->dims[d] == ti->dims[d] || ti->dims[d] < 0;
    int64_t S = dims_prod(ti->dims, a + 1, ti->rank);
    if (!same_prefix) {
        block(x, n);
        return;
    }
    ch_map *o;
    if (!flatten && to->dims[a] == m->n && (to->rank > a + 1 || S == 1)) {
        o = m;
    } else if (to->rank == a + 1 && to->dims[a] == m->n * S) {
        o = map_new(x, (int)(m->n * S), a);
        for (int64_t p = 0; p < m->n * S; p++) o->el[p] = m->el[p / S];
    } else {
        block(x, n);
        return;
    }
    if (!flatten) act_add(x, CH_RESHAPE, k, 1, a, y);
    set_out(x, n, 0, o);
}

/* Where the channel axis goes through Transpose, Squeeze, Unsqueeze and the reductions; -1
 * when the op would touch the channels themselves or we cannot tell. */
static int moved_axis(ch_ctx *x, const il_node *n, int a) {
    const char *op = n->op_type;
    int ri = info(x, in_v(n, 0))->rank, ro = info(x, n->outputs[0])->rank;
    int64_t ax[IL_MAX_RANK];
    if (ri < 0 || ro < 0) return -1;
    if (!strcmp(op, "Transpose")) {
        int c = ints_of(x, n, "perm", -1, ax, IL_MAX_RANK);
        if (c < 0) return ro - 1 - a;
        for (int j = 0; j < c; j++)
            if (ax[j] == a) return j;
        return -1;
    }
    int c = ints_of(x, n, "axes", 1, ax, IL_MAX_RANK), rank = !strcmp(op, "Unsqueeze") ? ro : ri;
    if (c == -2 || (c < 0 && strcmp(op, "Squeeze"))) return -1; /* reductions over every axis */
    int hit[IL_MAX_RANK] = {0};
    for (int j = 0; j < c; j++) {
        int64_t v = ax[j] < 0 ? ax[j] + rank : ax[j];
        if (v < 0 || v >= rank) return -1;
        hit[v] = 1;
    }
    if (c < 0) /* Squeeze without axes: every dim of size 1 */
        for (int d = 0; d < ri; d++) hit[d] = info(x, in_v(n, 0))->dims[d] == 1;
    if (!strcmp(op, "Unsqueeze")) {
        for (int d = 0, seen = 0; d < ro; d++)
            if (!hit[d] && seen++ == a) return d;
        return -1;
    }
    if (hit[a]) return -1;
    int keep = strcmp(op, "Squeeze") && il_attr_int(n, "keepdims", 1);
    int before = 0;
    for (int d = 0; d < a; d++) before += hit[d];
    return keep ? a : a - before;
}

static void visit_move(ch_ctx *x, int k) {
    const il_node *n = &x->g->nodes[k];
    ch_map *m = map_of(x, in_v(n, 0));
    int a = m ? moved_axis(x, n, m->axis) : -1;
    if (a < 0) block(x, n);
    else pass_through(x, n, a);
}

/* Softmax and friends normalize along one axis: fine unless it is (opset < 13: or precedes) the
 * channel axis. */
static void visit_softmax(ch_ctx *x, int k) {
    const il_node *n = &x->g->nodes[k];
    ch_map *m = map_of(x, in_v(n, 0));
    int r = info(x, in_v(n, 0))->rank, old = il_graph_opset(x->g, "") < 13;
    int64_t a = il_attr_int(n, "axis", old ? 1 : -1);
    if (a < 0) a += r;
    if (!m || r < 0 || a == m->axis || (old && a <= m->axis)) block(x, n);
    else pass_through(x, n, m->axis);
}

static void visit(ch_ctx *x, int k) {
    const il_node *n = &x->g->nodes[k];
    const char *op = n->op_type;
    int any = 0;
    for (int i = 0; i < n->n_inputs; i++) any |= map_of(x, n->inputs[i]) != NULL;
    if (n->domain[0] && strcmp(n->domain, "ai.onnx")) block(x, n);
    else if (!strcmp(op, "Conv")) visit_conv(x, k);
    else if (!strcmp(op, "Gemm") || !strcmp(op, "MatMul")) visit_linear(x, k, op[0] == 'G');
    else if (!any || !strcmp(op, "Shape") || !strcmp(op, "Size")) return; /* reads no channels (or only their count) */
    else if (!strcmp(op, "BatchNormalization")) visit_norm(x, k, 4);
    else if (!strcmp(op, "InstanceNormalization")) visit_norm(x, k, 2);
    else if (in_list(op, same_shape_ops)) pass_through(x, n, map_of(x, in_v(n, 0)) ? map_of(x, in_v(n, 0))->axis : 0);
    else if (in_list(op, pool_ops) || !strcmp(op, "Resize")) visit_spatial(x, k);
    else if (!strcmp(op, "Pad")) visit_pad(x, k);
    else if (in_list(op, eltwise_ops)) visit_elementwise(x, k);
    else if (!strcmp(op, "Concat")) visit_concat(x, k);
    else if (!strcmp(op, "Flatten") || !strcmp(op, "Reshape")) visit_reshape(x, k);
    else if (!strcmp(op, "Transpose") || !strcmp(op, "Squeeze") || !strcmp(op, "Unsqueeze") || in_list(op, reduce_ops))
        visit_move(x, k);
    else if (!strcmp(op, "Softmax") || !strcmp(op, "LogSoftmax") || !strcmp(op, "Hardmax")) visit_softmax(x, k);
    else block(x, n);
}

il_status ch_analyze(ch_ctx *x) {
    il_graph *g = x->g;
    int *order = malloc((size_t)(g->n_nodes + 1) * sizeof(int)), m = 0;
    il_status st = il_graph_topo_order(g, order, &m);
    x->map = calloc((size_t)g->n_values + 1, sizeof *x->map);
    x->lparent = malloc((size_t)(g->n_nodes + 1) * sizeof(int));
    for (int k = 0; k < g->n_nodes; k++) x->lparent[k] = k;
    x->first_layer = x->last_layer = -1;
    for (int j = 0; j < m && !st; j++) {
        const il_node *n = &g->nodes[order[j]];
        int lin = !strcmp(n->op_type, "Conv") || !strcmp(n->op_type, "Gemm") || !strcmp(n->op_type, "MatMul");
        if (lin && !n->domain[0] && is_const(x, in_v(n, 1))) {
            if (x->first_layer < 0) x->first_layer = order[j];
            x->last_layer = order[j];
        }
    }
    /* graph inputs bring channels nobody can remove */
    for (int i = 0; i < g->n_inputs && !st; i++) {
        int v = g->inputs[i];
        const il_tensor *t = info(x, v);
        if (!g->values[v].constant && t->rank >= 2 && t->dims[1] > 0)
            x->map[v] = map_fresh(x, (int)t->dims[1], 1, -1, 1);
    }
    for (int j = 0; j < m && !st; j++) visit(x, order[j]);
    for (int i = 0; i < g->n_outputs; i++) fix_map(x, map_of(x, g->outputs[i]));
    free(order);
    if (st) return st;
    for (int e = 0; e < x->n_el; e++) ch_find(x, e);
    return IL_OK;
}

void ch_ctx_free(ch_ctx *x) {
    for (int i = 0; i < x->n_maps; i++) {
        free(x->maps[i]->el);
        free(x->maps[i]);
    }
    free(x->maps);
    free(x->map);
    free(x->parent);
    free(x->layer);
    free(x->score);
    free(x->fixed);
    free(x->removed);
    free(x->lparent);
    free(x->act);
    il_shapes_free(x->s);
    memset(x, 0, sizeof *x);
}
