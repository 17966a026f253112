/*
 * manager.c - the pass registry, pipelines and presets, and the pass manager: run passes in
 * order, compact and re-sort the graph after each, and optionally check each result (the
 * verifier, then outputs against the unoptimized graph on fresh random inputs), print
 * statistics and dump the IR.
 */
#include "builtin.h"
#include "pass_util.h"
#include "quantize/quantize.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>

/* ---------------------------------------------------------------- statistics */

void il_pass_count(il_pass_stats *st, const char *what, int n) {
    if (!st || n == 0) return;
    for (int i = 0; i < st->n_counters; i++)
        if (!strcmp(st->counters[i].what, what)) {
            st->counters[i].count += n;
            return;
        }
    /* more kinds of rewrite than slots: fold the rest into the last one rather than lose them */
    if (st->n_counters == IL_PASS_MAX_COUNTERS) {
        st->counters[IL_PASS_MAX_COUNTERS - 1].count += n;
        return;
    }
    st->counters[st->n_counters].what = what;
    st->counters[st->n_counters].count = n;
    st->n_counters++;
}

int il_pass_changes(const il_pass_stats *st) {
    int n = 0;
    for (int i = 0; i < st->n_counters; i++) n += st->counters[i].count;
    return n;
}

const char *il_pass_stats_str(const il_pass_stats *st, char *buf, size_t n) {
    size_t len = (size_t)snprintf(buf, n, "%s:", st->pass ? st->pass : "?");
    for (int i = 0; i < st->n_counters && len < n; i++)
        len += (size_t)snprintf(buf + len, n - len, "%s %d %s", i ? "," : "", st->counters[i].count, st->counters[i].what);
    if (!st->n_counters && len < n) len += (size_t)snprintf(buf + len, n - len, " nothing to do");
    if (len < n)
        snprintf(buf + len, n - len, " (nodes %d -> %d, %.1f ms)", st->nodes_before, st->nodes_after, st->seconds * 1e3);
    return buf;
}

int il_graph_live_nodes(const il_graph *g) {
    int n = 0;
    for (int k = 0; k < g->n_nodes; k++) n += !g->nodes[k].dead;
    return n;
}

/* ---------------------------------------------------------------- registry */

/* Built-ins in the order -O2 runs them; plugins are appended. */
static const il_pass *builtins[] = {
    &il_pass_fuse_qdq,       &il_pass_fold_constants, &il_pass_eliminate,   &il_pass_dead_nodes,      &il_pass_cse,      &il_pass_fuse_dynq,
    &il_pass_merge_chains,   &il_pass_matmul_add_gemm, &il_pass_fold_bn,     &il_pass_fuse_elementwise,
    &il_pass_fuse_gelu,      &il_pass_fuse_layernorm, &il_pass_fuse_attention, &il_pass_fuse_shuffle, &il_pass_fuse_residual,
    &il_pass_fuse_conv_act,  &il_pass_fuse_se_scale, &il_pass_fuse_se_pool, &il_pass_fuse_conv_pool, &il_pass_fuse_skip_layernorm, &il_pass_lower_fused,    &il_pass_insert_casts,    &il_pass_int8,
};

static const il_pass **reg;
static int n_reg, cap_reg;

static void reg_add(const il_pass *p) {
    if (n_reg == cap_reg) {
        cap_reg = cap_reg ? 2 * cap_reg : 32;
        const il_pass **r = realloc(reg, (size_t)cap_reg * sizeof *r);
        if (!r) abort(); /* a few pointers: nothing sensible to do without them */
        reg = r;
    }
    reg[n_reg++] = p;
}

static void reg_init(void) {
    if (reg) return;
    for (size_t i = 0; i < sizeof builtins / sizeof *builtins; i++) reg_add(builtins[i]);
}

const il_pass *il_pass_find(const char *name) {
    reg_init();
    for (int i = 0; i < n_reg; i++)
        if (!strcmp(reg[i]->name, name)) return reg[i];
    return NULL;
}

const il_pass *const *il_pass_all(int *n) {
    reg_init();
    *n = n_reg;
    return reg;
}

il_status il_pass_register(const il_pass *p) {
    reg_init();
    if (!p || !p->name || !p->name[0] || !p->run)
        return il_error(IL_ERR_INVALID, "a pass needs a name and a run function");
    for (const char *c = p->name; *c; c++)
        if (!islower((unsigned char)*c) && !isdigit((unsigned char)*c) && *c != '-')
            return il_error(IL_ERR_INVALID, "pass name '%s': use lower-case letters, digits and dashes", p->name);
    if (il_pass_find(p->name)) return il_error(IL_ERR_INVALID, "a pass named '%s' is already registered", p->name);
    reg_add(p);
    return IL_OK;
}

/* ---------------------------------------------------------------- pipelines */

#define O1 "fold-constants,eliminate,dead-nodes,cse"
/* fuse-qdq first: fold-constants would turn DequantizeLinear(weight) into float weights */
#define O2                                                                                         \
    "fuse-qdq," O1 ",fuse-dynamic-q,merge-chains,matmul-add-gemm,fold-bn,fuse-elementwise,fuse-gelu,fuse-layernorm,"          \
       "fuse-attention,fuse-shuffle,fuse-residual,fuse-conv-act,fuse-se-scale,fuse-se-pool,fuse-conv-pool,fuse-skip-layernorm,dead-nodes"

const char *il_pass_preset(int level) {
    switch (level) {
    case 0: return "";
    case 1: return O1;
    case 2: return O2;
    case 3: return O2; /* layout and backend-specific rewrites join here as they come */
    default: return NULL;
    }
}

/* Split a pipeline into names: at most max, each trimmed, written into buf. A preset name
 * (O0..O3) in the list stands for its passes ("O2,lower-fused", bench's "O2+lower-fused"). */
static int split(const char *pipeline, char *buf, size_t bufn, const char **names, int max) {
    int n = 0;
    size_t len = 0;
    buf[0] = 0;
    for (const char *s = pipeline ? pipeline : ""; *s;) {
        const char *e = strchr(s, ',');
        size_t l = e ? (size_t)(e - s) : strlen(s);
        const char *t = s;
        size_t tl = l;
        while (tl && isspace((unsigned char)*t)) t++, tl--;
        while (tl && isspace((unsigned char)t[tl - 1])) tl--;
        const char *preset = tl == 2 && t[0] == 'O' && t[1] >= '0' && t[1] <= '3' ? il_pass_preset(t[1] - '0') : NULL;
        if (len < bufn)
            len += (size_t)snprintf(buf + len, bufn - len, "%s%.*s", len ? "," : "", preset ? (int)strlen(preset) : (int)l,
                                    preset ? preset : s);
        if (!e) break;
        s = e + 1;
    }
    for (char *s = buf; *s && n < max;) {
        char *e = strchr(s, ',');
        if (e) *e = 0;
        while (isspace((unsigned char)*s)) s++;
        char *t = s + strlen(s);
        while (t > s && isspace((unsigned char)t[-1])) *--t = 0;
        if (*s) names[n++] = s;
        if (!e) break;
        s = e + 1;
    }
    return n;
}

il_status il_pipeline_check(const char *pipeline) {
    char buf[4096];
    const char *names[256];
    int n = split(pipeline, buf, sizeof buf, names, 256);
    for (int i = 0; i < n; i++)
        if (!il_pass_find(names[i]))
            return il_error(IL_ERR_INVALID, "unknown pass '%s' in the pipeline (see `inferlab passes`)", names[i]);
    return IL_OK;
}

/* Give values a pass created (dtype undefined or rank unknown) the dtype and shape inference
 * finds, so later passes can match on them and the export declares their types. Symbolic dims
 * stay unknown (batch 0); values with a type keep theirs. */
static void fill_types(il_graph *g) {
    il_shapes *s;
    if (il_infer_shapes(g, 0, NULL, 0, &s)) { /* a graph inference cannot follow: leave it */
        il_error_clear();
        return;
    }
    for (int v = 0; v < g->n_values && v < s->n_values; v++) {
        il_value *x = &g->values[v];
        const il_tensor *t = &s->info[v];
        if (x->constant || x->is_input || t->dtype == IL_UNDEFINED || (x->dtype != IL_UNDEFINED && x->rank >= 0)) continue;
        x->dtype = t->dtype;
        x->rank = t->rank;
        for (int i = 0; i < t->rank && i < IL_MAX_RANK; i++) x->dims[i] = t->dims[i];
    }
    il_shapes_free(s);
}

il_status il_pass_run(il_graph *g, const char *name, il_pass_stats *out) {
    const il_pass *p = il_pass_find(name);
    if (!p) return il_error(IL_ERR_INVALID, "unknown pass '%s' (see `inferlab passes`)", name);
    il_pass_stats st;
    memset(&st, 0, sizeof st);
    st.pass = p->name;
    st.nodes_before = il_graph_live_nodes(g);
    double t0 = il_now();
    il_status s = p->run(g, &st);
    if (!s) {
        s = il_graph_sort(g); /* compacts: drops dead nodes and values nothing uses */
        if (s) il_error_wrap(s, "after pass '%s': ", p->name);
        else fill_types(g);
    } else if (!strstr(il_errmsg(), p->name)) {
        il_error_wrap(s, "pass '%s': ", p->name);
    }
    st.seconds = il_now() - t0;
    st.nodes_after = il_graph_live_nodes(g);
    if (out) *out = st;
    return s;
}

/* ---------------------------------------------------------------- equivalence */

/* Set by il_graph_equivalent when the failure was not a difference but a model it could not
 * run or make inputs for, so the pipeline words its error accordingly. */
static _Thread_local int eq_setup_failed;

static il_tensor *random_input(const il_graph *g, int i, const il_pass_opts *o, double scale, uint64_t *rng) {
    const il_value *x = &g->values[g->inputs[i]];
    int64_t dims[IL_MAX_RANK];
    if (x->rank < 0) {
        il_error(IL_ERR_SHAPE, "input '%s' has no shape in the model, so no random input can be made for it", x->name);
        return NULL;
    }
    for (int d = 0; d < x->rank; d++) {
        dims[d] = x->dims[d];
        for (int j = 0; dims[d] < 0 && j < o->n_binds; j++)
            if (x->dim_param[d] && !strcmp(o->binds[j].name, x->dim_param[d])) dims[d] = o->binds[j].value;
        if (dims[d] < 0) dims[d] = d == 0 ? (o->batch > 0 ? o->batch : 2) : 3;
    }
    il_tensor *t = il_tensor_new(x->dtype, x->rank, dims);
    if (!t) return NULL;
    il_graph_fill_input(g, i, t, rng);
    if (scale != 1 && t->dtype == IL_F32)
        for (int64_t k = 0; k < il_tensor_numel(t); k++) ((float *)t->data)[k] *= (float)scale;
    return t;
}

/* How a float output compares with the reference, relative to the reference's own scale: an
 * absolute tolerance swamps outputs of 1e-9 (real exports of untrained or BN-heavy nets), so a
 * wrong pass "agreed". Besides the elementwise test, the cosine similarity of the whole output
 * and, for outputs with a class axis, agreement of each row's top-1 (rows whose best two
 * classes are closer than the tolerance are ties and not counted). */
typedef struct {
    double scale;       /* max |want| */
    double range;       /* max want - min want */
    double worst;       /* max |got - want| / scale */
    int64_t worst_i;
    double cosine;
    int64_t rows, agree;
} cmp_stats;

static void compare_float(const il_tensor *got, const il_tensor *want, double rtol, cmp_stats *c) {
    int64_t n = il_tensor_numel(want);
    double mn = INFINITY, mx = -INFINITY, dot = 0, ng = 0, nw = 0;
    memset(c, 0, sizeof *c);
    c->worst_i = -1;
    for (int64_t i = 0; i < n; i++) {
        double w = il_tensor_get(want, i);
        if (fabs(w) > c->scale) c->scale = fabs(w);
        mn = w < mn ? w : mn;
        mx = w > mx ? w : mx;
    }
    c->range = n ? mx - mn : 0;
    for (int64_t i = 0; i < n; i++) {
        double w = il_tensor_get(want, i), g = il_tensor_get(got, i);
        double d = isnan(w) && isnan(g) ? 0 : fabs(g - w) / (c->scale > 0 ? c->scale : 1);
        if (!(d <= c->worst)) c->worst = isnan(d) ? INFINITY : d, c->worst_i = i;
        dot += g * w, ng += g * g, nw += w * w;
    }
    c->cosine = ng > 0 && nw > 0 ? dot / sqrt(ng * nw) : (ng == nw ? 1 : 0);
    int64_t k = want->rank >= 1 ? want->dims[want->rank - 1] : 0;
    if (k < 2 || n % k) return;
    for (int64_t r = 0; r < n / k; r++) {
        int64_t bw = 0, bg = 0;
        double second = -INFINITY;
        for (int64_t j = 1; j < k; j++) {
            if (il_tensor_get(want, r * k + j) > il_tensor_get(want, r * k + bw)) bw = j;
            if (il_tensor_get(got, r * k + j) > il_tensor_get(got, r * k + bg)) bg = j;
        }
        for (int64_t j = 0; j < k; j++)
            if (j != bw && il_tensor_get(want, r * k + j) > second) second = il_tensor_get(want, r * k + j);
        if (il_tensor_get(want, r * k + bw) - second <= rtol * c->scale) continue; /* a tie */
        c->rows++;
        c->agree += bw == bg;
    }
}

/* Inputs are drawn at growing scales until every float output of the reference varies: an
 * output that is constant (all zeros, a saturated activation) cannot tell a wrong pass from a
 * right one. */
static const double input_scales[] = {1, 10, 100};

static il_status run_both(const il_graph *want, const il_graph *got, const il_pass_opts *o, uint64_t *rng,
                          double scale, il_tensor ***wo, int *nw, il_tensor ***go, int *ng) {
    il_tensor **in = calloc((size_t)want->n_inputs + 1, sizeof *in);
    il_status st = in ? IL_OK : IL_ERR_OOM;
    *nw = *ng = 0;
    *wo = *go = NULL;
    eq_setup_failed = 1;
    for (int i = 0; i < want->n_inputs && !st; i++)
        if (!(in[i] = random_input(want, i, o, scale, rng))) st = IL_ERR_SHAPE;
    il_plan_opts po = {.batch = o->batch > 0 ? o->batch : 2, .binds = o->binds, .n_binds = o->n_binds};
    if (!st && (st = il_run_model(want, in, want->n_inputs, &po, wo, nw)))
        il_error_wrap(st, "the original graph does not run on random inputs (give sizes with --batch/--dim): ");
    if (!st) eq_setup_failed = 0;
    if (!st && (st = il_run_model(got, in, got->n_inputs, &po, go, ng))) il_error_wrap(st, "the rewritten graph fails: ");
    for (int i = 0; in && i < want->n_inputs; i++) il_tensor_free(in[i]);
    free(in);
    return st;
}

static void free_outputs(il_tensor **t, int n) {
    for (int i = 0; i < n; i++) il_tensor_free(t[i]);
    free(t);
}

/* The first float output of wo that is constant (or all zero), or -1. */
static int uninformative(il_tensor **wo, int n) {
    for (int i = 0; i < n; i++) {
        if (!il_dtype_is_float(wo[i]->dtype) || il_tensor_numel(wo[i]) == 0) continue;
        cmp_stats c;
        compare_float(wo[i], wo[i], 0, &c);
        if (!(c.scale > 1e-30) || !(c.range > 1e-6 * c.scale)) return i;
    }
    return -1;
}

il_status il_graph_equivalent(const il_graph *want, const il_graph *got, const il_pass_opts *o, uint64_t *rng) {
    il_pass_opts dflt = {0};
    if (!o) o = &dflt;
    double rtol = o->rtol > 0 ? o->rtol : 1e-3, atol = o->atol > 0 ? o->atol : 1e-4;
    if (want->n_inputs != got->n_inputs || want->n_outputs != got->n_outputs)
        return il_error(IL_ERR_INVALID, "the graphs differ in inputs or outputs (%d/%d inputs, %d/%d outputs)",
                        got->n_inputs, want->n_inputs, got->n_outputs, want->n_outputs);
    il_tensor **wo = NULL, **go = NULL;
    int nw = 0, ng = 0, flat = -1;
    il_status st = IL_OK;
    double scale = 1;
    for (size_t a = 0; a < sizeof input_scales / sizeof *input_scales; a++) {
        free_outputs(wo, nw);
        free_outputs(go, ng);
        scale = input_scales[a];
        if ((st = run_both(want, got, o, rng, scale, &wo, &nw, &go, &ng))) break;
        if ((flat = uninformative(wo, nw)) < 0) break;
    }
    if (!st && flat >= 0) {
        cmp_stats c;
        compare_float(wo[flat], wo[flat], 0, &c);
        eq_setup_failed = 1;
        st = il_error(IL_ERR_UNSUPPORTED,
                      "cannot verify: output %d '%s' is %s on random inputs (scaled up to x%g), so it cannot tell a "
                      "wrong rewrite from a right one", flat, want->values[want->outputs[flat]].name,
                      c.scale > 1e-30 ? "constant" : "zero or too small (max |y| below 1e-30)", scale);
    }
    for (int i = 0; i < nw && i < ng && !st; i++) {
        il_dtype dt = wo[i]->dtype;
        const char *name = want->values[want->outputs[i]].name;
        char msg[256];
        int64_t worst;
        if (!il_dtype_is_float(dt)) {
            if (!il_tensor_allclose(go[i], wo[i], 0, 0, &worst, msg, sizeof msg))
                st = il_error(IL_ERR_INVALID, "output %d '%s' differs: %s", i, name, msg);
            continue;
        }
        double r = rtol, a = atol;
        if (dt == IL_F16 || dt == IL_BF16) r = a = 1e-2;
        if (go[i]->dtype != dt || go[i]->rank != wo[i]->rank ||
            memcmp(go[i]->dims, wo[i]->dims, (size_t)wo[i]->rank * sizeof(int64_t))) {
            il_tensor_allclose(go[i], wo[i], r, a, &worst, msg, sizeof msg);
            st = il_error(IL_ERR_INVALID, "output %d '%s' differs: %s", i, name, msg);
            continue;
        }
        cmp_stats c;
        compare_float(go[i], wo[i], r, &c);
        /* |got - want| <= atol * scale + rtol * |want| elementwise, with atol relative to the
         * output's largest magnitude; plus the cosine and the rows' top-1 */
        int64_t bad = -1;
        for (int64_t k = 0; k < il_tensor_numel(wo[i]) && bad < 0; k++) {
            double w = il_tensor_get(wo[i], k), g = il_tensor_get(go[i], k);
            if (!(fabs(g - w) <= a * c.scale + r * fabs(w)) && !(isnan(g) && isnan(w))) bad = k;
        }
        if (bad >= 0)
            st = il_error(IL_ERR_INVALID,
                          "output %d '%s' differs beyond rtol %g, atol %g x its scale %.3g: element %lld is %.9g, want "
                          "%.9g (worst element %lld: %.3g of the scale; cosine %.6f)",
                          i, name, r, a, c.scale, (long long)bad, il_tensor_get(go[i], bad), il_tensor_get(wo[i], bad),
                          (long long)c.worst_i, c.worst, c.cosine);
        else if (c.cosine < 1 - 10 * r)
            st = il_error(IL_ERR_INVALID, "output %d '%s': cosine similarity %.6f with the original, below %.6f", i,
                          name, c.cosine, 1 - 10 * r);
        else if (c.rows && c.agree < c.rows)
            st = il_error(IL_ERR_INVALID, "output %d '%s': top-1 of %lld of %lld rows differs from the original", i,
                          name, (long long)(c.rows - c.agree), (long long)c.rows);
    }
    free_outputs(wo, nw);
    free_outputs(go, ng);
    return st;
}

/* ---------------------------------------------------------------- the pass manager */

/* A lossy pass (il_pass.lossy) changes outputs on purpose: its result is held to top-1
 * agreement and cosine similarity with the graph before it, on the model's evaluation data
 * (quantize/analyze.c: Fashion-MNIST test images for 1x28x28 models, else random inputs). */
static il_status verify_lossy(const il_graph *want, const il_graph *got, const il_pass_opts *o, const char *name,
                              FILE *log) {
    double agree, cos, min_agree = o->lossy_agree > 0 ? o->lossy_agree : 0.97,
                      min_cos = o->lossy_cosine > 0 ? o->lossy_cosine : 0.98;
    il_status s = il_quant_agreement(want, got, 1000, &agree, &cos);
    if (s) return il_error_wrap(s, "cannot verify after lossy pass '%s': ", name);
    if (agree < min_agree || cos < min_cos)
        return il_error(IL_ERR_INVALID,
                        "lossy pass '%s' lost too much: top-1 agreement %.4f (at least %.4f wanted), cosine %.6f (at "
                        "least %.6f) on the model's evaluation data",
                        name, agree, min_agree, cos, min_cos);
    if (o->stats)
        fprintf(log, "  verified (lossy): top-1 agreement %.4f, cosine %.6f with the graph before it\n", agree, cos);
    return IL_OK;
}

il_status il_pipeline_run(il_graph *g, const char *pipeline, const il_pass_opts *o, il_pass_stats *stats,
                          int max_stats, int *n_stats) {
    il_pass_opts dflt = {0};
    if (!o) o = &dflt;
    if (n_stats) *n_stats = 0;
    il_status s = il_pipeline_check(pipeline);
    if (s) return s;
    if (o->dump_after && strcmp(o->dump_after, "all") && !il_pass_find(o->dump_after))
        return il_error(IL_ERR_INVALID, "--dump-after: unknown pass '%s'", o->dump_after);
    char buf[4096];
    const char *names[256];
    int n = split(pipeline, buf, sizeof buf, names, 256);
    il_graph *orig = NULL;
    uint64_t rng = o->seed ? o->seed * 0x9E3779B97F4A7C15ULL + 1 : 0x5DEECE66DULL;
    if (o->verify) {
        if ((s = il_graph_verify(g))) return il_error_wrap(s, "the input graph fails the verifier: ");
        orig = il_graph_clone(g);
    }
    FILE *log = o->log ? o->log : stderr, *dump = o->dump ? o->dump : stdout;
    for (int i = 0; i < n && !s; i++) {
        il_pass_stats st;
        s = il_pass_run(g, names[i], &st);
        if (s) break;
        if (stats && i < max_stats) stats[i] = st;
        if (n_stats) *n_stats = i + 1;
        if (o->stats) {
            char line[512];
            fprintf(log, "%s\n", il_pass_stats_str(&st, line, sizeof line));
        }
        if (o->dump_after && (!strcmp(o->dump_after, "all") || !strcmp(o->dump_after, names[i]))) {
            fprintf(dump, "# IR after %s\n", names[i]);
            il_graph_dump(g, dump);
        }
        /* a pass that counted no rewrite left the graph as it was: nothing to check */
        if (!o->verify || (!il_pass_changes(&st) && st.nodes_before == st.nodes_after)) continue;
        const il_pass *p = il_pass_find(names[i]);
        if ((s = il_graph_verify(g))) {
            il_error_wrap(s, "pass '%s' left an invalid graph: ", names[i]);
        } else if (p->lossy) {
            if (!(s = verify_lossy(orig, g, o, names[i], log))) {
                /* later passes must keep what the lossy one made, not the original's values */
                il_graph_free(orig);
                if (!(orig = il_graph_clone(g))) s = il_error(IL_ERR_OOM, "out of memory");
            }
        } else if ((s = il_graph_equivalent(orig, g, o, &rng))) {
            il_error_wrap(s, eq_setup_failed ? "cannot verify after pass '%s': " : "pass '%s' broke equivalence: ", names[i]);
        } else if (o->stats) {
            fprintf(log, "  verified: outputs match the original within tolerance\n");
        }
    }
    il_graph_free(orig);
    return s;
}
