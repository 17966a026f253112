/*
 * op_harness.c - the one-node op harness of op_harness.h: run infer and the kernels as the
 * executor would, check the plan-time contract, compare the fast kernel with the reference.
 */
#include "op_harness.h"

#include <inttypes.h>
#include <stdio.h>
#include <time.h>

/* ---------------------------------------------------------------- random numbers */

static uint64_t seed, state;

uint64_t op_seed(void) {
    if (!seed) {
        const char *e = getenv("IL_TEST_SEED");
        seed = e ? strtoull(e, NULL, 0) : ((uint64_t)time(NULL) * 0x9E3779B97F4A7C15ull) ^ (uint64_t)(il_now() * 1e9);
        if (!seed) seed = 1; /* xorshift needs a nonzero state */
        state = seed;
        fprintf(stderr, "\n  [op tests: random seed %" PRIu64 "; IL_TEST_SEED=%" PRIu64 " repeats it]\n", seed, seed);
    }
    return seed;
}

uint64_t *op_rng(void) {
    op_seed();
    return &state;
}

/* ---------------------------------------------------------------- cases */

op_case *op_new(const char *op, int64_t opset, int n_in, int n_out) {
    op_case *o = calloc(1, sizeof *o);
    CU_ASSERT_FATAL(o && n_in <= OP_MAX_IN && n_out <= OP_MAX_OUT);
    int in[OP_MAX_IN], out[OP_MAX_OUT];
    char name[64], domain[32] = "";
    o->g = il_graph_new("t");
    il_graph_set_opset(o->g, "", opset);
    const char *colon = strchr(op, ':'); /* "ai.inferlab:QConv": an op of another domain (opset 1) */
    if (colon) {
        snprintf(domain, sizeof domain, "%.*s", (int)(colon - op), op);
        op = colon + 1;
        il_graph_set_opset(o->g, domain, 1);
    }
    for (int i = 0; i < n_in; i++) {
        snprintf(name, sizeof name, "x%d", i);
        in[i] = il_graph_value(o->g, name);
    }
    for (int i = 0; i < n_out; i++) {
        snprintf(name, sizeof name, "y%d", i);
        out[i] = il_graph_value(o->g, name);
    }
    snprintf(name, sizeof name, "node_%s", op);
    o->k = il_graph_add_node(o->g, op, domain, name, n_in, in, n_out, out);
    o->opset = opset;
    o->n_in = n_in;
    o->n_out = n_out;
    o->threads = 3;
    o->op = il_op_find(domain, op);
    if (!o->op) fprintf(stderr, "\n  op %s is not registered\n", op);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o->op);
    return o;
}

static void free_outputs(op_case *o) {
    for (int i = 0; i < OP_MAX_OUT; i++) {
        il_tensor_free(o->out[i]);
        il_tensor_free(o->fast[i]);
        o->out[i] = o->fast[i] = NULL;
    }
}

void op_free(op_case *o) {
    if (!o) return;
    free_outputs(o);
    for (int i = 0; i < OP_MAX_IN; i++) il_tensor_free(o->in[i]);
    il_graph_free(o->g);
    free(o);
}

void op_in(op_case *o, int i, il_tensor *t) {
    il_tensor_free(o->in[i]);
    o->in[i] = t;
}

static const char *what(const op_case *o) { return o->label[0] ? o->label : o->g->nodes[o->k].op_type; }

il_tensor *op_tensor(il_dtype dt, int rank, const int64_t *dims, const double *v) {
    il_tensor *t = il_tensor_new(dt, rank, dims);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    for (int64_t i = 0, n = il_tensor_numel(t); v && i < n; i++) il_tensor_set(t, i, v[i]);
    return t;
}

/* ---------------------------------------------------------------- infer */

il_status op_infer(op_case *o, op_mode mode, il_tensor *outs) {
    il_tensor view[OP_MAX_IN], *in[OP_MAX_IN], *out[OP_MAX_OUT];
    for (int i = 0; i < o->n_in; i++) {
        in[i] = o->in[i];
        if (!o->in[i] || mode == OP_RUN) continue;
        view[i] = *o->in[i];
        view[i].owns_data = 0;
        if (mode >= OP_NO_DATA) view[i].data = NULL;
        for (int d = 0; mode >= OP_NO_DIMS && d < view[i].rank; d++) view[i].dims[d] = -1;
        if (mode >= OP_NO_RANK) view[i].rank = -1;
        in[i] = &view[i];
    }
    for (int i = 0; i < o->n_out; i++) {
        memset(&outs[i], 0, sizeof outs[i]);
        outs[i].rank = -1;
        out[i] = &outs[i];
    }
    il_kctx c = {.node = &o->g->nodes[o->k], .opset = o->opset, .n_in = o->n_in, .n_out = o->n_out, .in = in,
                 .out = out, .threads = 1, .infer_only = mode != OP_RUN};
    return o->op->infer(&c);
}

/* Plan-time inference in every mode agrees with the run-time shapes `run`. */
static void check_plan_time(op_case *o, const il_tensor *run) {
    static const char *modes[] = {"", "inputs as given", "no input data", "unknown dims", "unknown rank"};
    il_tensor plan[OP_MAX_OUT];
    for (op_mode m = OP_PLAN; m <= OP_NO_RANK; m++) {
        il_status st = op_infer(o, m, plan);
        if (st) fprintf(stderr, "\n  %s: plan-time infer (%s) failed: %s\n", what(o), modes[m], il_errmsg());
        CU_ASSERT_EQUAL(st, IL_OK);
        for (int i = 0; i < o->n_out && !st; i++) {
            const il_tensor *p = &plan[i], *r = &run[i];
            int ok = p->dtype == r->dtype && (p->rank < 0 || p->rank == r->rank);
            for (int d = 0; ok && p->rank > 0 && d < p->rank; d++) ok = p->dims[d] < 0 || p->dims[d] == r->dims[d];
            if (!ok) {
                char a[128] = "[rank ?]", b[128];
                if (p->rank >= 0) il_shape_str(p->rank, p->dims, a, sizeof a);
                fprintf(stderr, "\n  %s: plan-time infer (%s) gives output %d %s %s, the run %s %s\n", what(o),
                        modes[m], i, il_dtype_name(p->dtype), a, il_dtype_name(r->dtype),
                        il_shape_str(r->rank, r->dims, b, sizeof b));
            }
            CU_ASSERT(ok);
        }
    }
}

/* ---------------------------------------------------------------- run */

/* Outputs as the executor gives them, pre-filled (pass 0: NaN in floats, 0xA5 bytes otherwise;
 * pass 1: 0x7F bytes); for dynamic-output ops, empty shells the kernel allocates into. */
static il_status alloc_outputs(op_case *o, const il_tensor *shape, il_tensor **outs, int pass) {
    for (int i = 0; i < o->n_out; i++) {
        il_tensor_free(outs[i]); /* a previous kernel's */
        outs[i] = NULL;
        if (o->op->flags & IL_OPF_DYNAMIC_OUT) {
            outs[i] = shape_only(shape[i].dtype, 0, NULL);
            continue;
        }
        outs[i] = il_tensor_new(shape[i].dtype, shape[i].rank, shape[i].dims);
        if (!outs[i]) return IL_ERR_SHAPE;
        if (pass == 0 && il_dtype_is_float(shape[i].dtype))
            for (int64_t j = 0, n = il_tensor_numel(outs[i]); j < n; j++) il_tensor_set(outs[i], j, NAN);
        else memset(outs[i]->data, pass == 0 ? 0xA5 : 0x7F, il_tensor_bytes(outs[i]));
    }
    return IL_OK;
}

static il_status run_kernel(op_case *o, il_kernel_fn fn, int threads, il_tensor **outs) {
    il_kctx c = {.node = &o->g->nodes[o->k], .opset = o->opset, .n_in = o->n_in, .n_out = o->n_out, .in = o->in,
                 .out = outs, .threads = threads};
    return fn(&c);
}

/* A registered kernel as the executor runs it: supports, prepare on the node's view (inputs but
 * the first taken as constant weights, the way a model holds them), run with its state and a
 * workspace of the size it asked for, release. */
static il_kctx kernel_ctx(op_case *o, il_tensor **outs) {
    return (il_kctx){.node = &o->g->nodes[o->k], .opset = o->opset, .n_in = o->n_in, .n_out = o->n_out, .in = o->in,
                     .out = outs, .threads = o->threads, .const_mask = ~(uint64_t)1};
}

static int kernel_takes(op_case *o, const il_kernel *kn) {
    il_kctx c = kernel_ctx(o, o->fast);
    return il_kernel_accepts(kn, &c);
}

static il_status run_registered(op_case *o, const il_kernel *kn, il_tensor **outs) {
    il_kctx c = kernel_ctx(o, outs);
    void *state = NULL, *ws = NULL;
    size_t wsb = 0;
    il_status st = kn->prepare ? kn->prepare(&c, &state, &wsb) : IL_OK;
    if (!st && wsb && !(ws = malloc(wsb))) st = IL_ERR_OOM;
    if (!st) {
        if (ws) memset(ws, 0xA5, wsb); /* scratch carries nothing from before */
        c.state = state, c.workspace = ws, c.workspace_bytes = wsb;
        st = kn->run(&c);
    }
    if (state && kn->release) kn->release(state);
    free(ws);
    return st;
}

/* ---------------------------------------------------------------- graphs */

il_tensor *op_run_graph(const il_graph *g, il_tensor *const *in, const il_plan_opts *opts) {
    il_plan_opts o = *opts;
    il_plan *p;
    il_status st = il_plan_create(g, &o, &p);
    if (!st) st = il_plan_run(p, in, g->n_inputs);
    if (st) {
        fprintf(stderr, "\n  run (%s): %s\n", o.reference ? "ref" : "fast", il_errmsg());
        il_plan_free(p);
        return NULL;
    }
    for (int k = 0; k < g->n_nodes && !o.reference; k++)
        if (il_plan_kernel(p, k)) op_covered(il_plan_kernel(p, k));
    il_tensor *y = il_tensor_clone(il_plan_output(p, 0));
    il_plan_free(p);
    return y;
}

/* ---------------------------------------------------------------- coverage */

static const il_kernel *covered[1024];
static int n_covered;

void op_covered(const il_kernel *k) {
    for (int i = 0; i < n_covered; i++)
        if (covered[i] == k) return;
    if (n_covered < 1024) covered[n_covered++] = k;
}

int op_is_covered(const il_kernel *k) {
    for (int i = 0; i < n_covered; i++)
        if (covered[i] == k) return 1;
    return 0;
}

/* got matches want: bit for bit when exact, else within rtol and atol. */
static int same_output(const il_tensor *got, const il_tensor *want, int exact, double rtol, double atol, char *msg,
                       size_t n) {
    int64_t worst;
    if (!exact) return il_tensor_allclose(got, want, rtol, atol, &worst, msg, n);
    if (got->dtype != want->dtype || got->rank != want->rank ||
        memcmp(got->dims, want->dims, sizeof(int64_t) * (size_t)got->rank))
        return il_tensor_allclose(got, want, 0, 0, &worst, msg, n); /* says how they differ */
    size_t es = il_dtype_size(got->dtype), nb = il_tensor_bytes(got);
    for (size_t b = 0; b < nb; b++)
        if (((const unsigned char *)got->data)[b] != ((const unsigned char *)want->data)[b]) {
            int64_t k = (int64_t)(b / es);
            snprintf(msg, n, "element %lld differs in its bytes (got %.9g, want %.9g)", (long long)k,
                     il_tensor_get(got, k), il_tensor_get(want, k));
            return 0;
        }
    return 1;
}

/* oneDNN's INT8 products requantize in float32, not in the reference's double
 * (engine/cpu/dnnl_qconv.c): their 8-bit outputs are held to 1 LSB instead of bit for bit. */
static int lsb_tolerance(const il_kernel *k, const il_tensor *t) {
    static const char *const ops[] = {"QConv", "QLinearConv", "QMatMul", "QLinearMatMul"};
    if (!k || strcmp(k->name, "dnnl") || (t->dtype != IL_U8 && t->dtype != IL_I8)) return 0;
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
        if (!strcmp(k->op, ops[i])) return 1;
    return 0;
}

/* Integer outputs of the same shape within lsb units of each other. */
static int within_lsb(const il_tensor *got, const il_tensor *want, int lsb, char *msg, size_t n) {
    int64_t worst;
    if (got->dtype != want->dtype || got->rank != want->rank ||
        memcmp(got->dims, want->dims, sizeof(int64_t) * (size_t)got->rank))
        return il_tensor_allclose(got, want, 0, 0, &worst, msg, n);
    for (int64_t k = 0, e = il_tensor_numel(got); k < e; k++)
        if (fabs(il_tensor_get(got, k) - il_tensor_get(want, k)) > lsb) {
            snprintf(msg, n, "element %lld: got %.9g, want %.9g (more than %d LSB)", (long long)k,
                     il_tensor_get(got, k), il_tensor_get(want, k), lsb);
            return 0;
        }
    return 1;
}

il_status op_run(op_case *o) {
    il_tensor shape[OP_MAX_OUT];
    free_outputs(o);
    il_status st = op_infer(o, OP_RUN, shape);
    if (st) return st;
    check_plan_time(o, shape);
    int dynamic = (o->op->flags & IL_OPF_DYNAMIC_OUT) != 0;
    for (int i = 0; i < o->n_out && !dynamic; i++) {
        int ok = il_shape_known(&shape[i]) && il_dtype_is_supported(shape[i].dtype);
        if (!ok) fprintf(stderr, "\n  %s: infer left output %d without a dtype or shape\n", what(o), i);
        CU_ASSERT_FATAL(ok);
    }
    if ((st = alloc_outputs(o, shape, o->out, 0)) || (st = run_kernel(o, o->op->ref, 1, o->out))) return st;
    /* every other cpu kernel of the registry that takes this node, each against the reference
     * (o->fast keeps the last one's outputs); with none, the reference again on differently
     * filled outputs */
    const il_kernel *ks[32];
    const il_node *n = &o->g->nodes[o->k];
    int nk = il_kernels_of(n->domain, n->op_type, "cpu", o->opset, ks, 32), ran = 0;
    for (int j = 0; j <= nk && !st; j++) {
        const il_kernel *kn = j < nk ? ks[j] : NULL;
        if (kn && !strcmp(kn->name, "ref")) continue;
        if (!kn && ran) break;
        /* a kernel that declines leaves the last one's outputs in o->fast for op_expect */
        if (kn && !kernel_takes(o, kn)) continue;
        if ((st = alloc_outputs(o, shape, o->fast, 1))) return st;
        st = kn ? run_registered(o, kn, o->fast) : run_kernel(o, o->op->ref, 1, o->fast);
        const char *who = kn ? kn->name : "a second run";
        if (st) fprintf(stderr, "\n  %s: kernel %s failed where the reference passed: %s\n", what(o), who, il_errmsg());
        CU_ASSERT_EQUAL(st, IL_OK);
        if (kn) ran++, op_covered(kn);
        for (int i = 0; i < o->n_out && !st; i++) {
            char msg[256];
            int exact = !kn || (o->rtol == 0 && o->atol == 0);
            int lsb = lsb_tolerance(kn, o->out[i]);
            int ok = lsb ? within_lsb(o->fast[i], o->out[i], lsb, msg, sizeof msg)
                         : same_output(o->fast[i], o->out[i], exact, o->rtol, o->atol, msg, sizeof msg);
            if (!ok)
                fprintf(stderr, "\n  %s output %d: kernel %s against the reference: %s (seed %" PRIu64 ")\n", what(o),
                        i, who, msg, op_seed());
            CU_ASSERT(ok);
        }
    }
    return st;
}

/* ---------------------------------------------------------------- checks */

static int values_match(const il_tensor *t, int64_t k, double w, double rtol, double atol) {
    double g = il_tensor_get(t, k);
    if (isnan(w) || isnan(g)) return isnan(w) && isnan(g);
    if (g == w) return 1;
    return il_dtype_is_float(t->dtype) && !isinf(w) && fabs(g - w) <= atol + rtol * fabs(w);
}

static void expect_one(const op_case *o, const il_tensor *t, const char *run, int i, il_dtype dt, int rank,
                       const int64_t *dims, const double *want, int line) {
    char a[128], b[128];
    if (!t) {
        fprintf(stderr, "\n  line %d: %s has no output %d from the %s\n", line, what(o), i, run);
        CU_FAIL("no output");
        return;
    }
    int ok = t->dtype == dt && t->rank == rank && (rank <= 0 || !memcmp(t->dims, dims, sizeof(int64_t) * (size_t)rank));
    if (!ok)
        fprintf(stderr, "\n  line %d: %s output %d (%s) is %s %s, want %s %s\n", line, what(o), i, run,
                il_dtype_name(t->dtype), il_shape_str(t->rank, t->dims, a, sizeof a), il_dtype_name(dt),
                il_shape_str(rank, dims, b, sizeof b));
    for (int64_t k = 0, n = il_tensor_numel(t); ok && want && k < n; k++)
        if (!values_match(t, k, want[k], o->rtol, o->atol)) {
            fprintf(stderr, "\n  line %d: %s output %d (%s) element %lld is %.9g, want %.9g\n", line, what(o), i, run,
                    (long long)k, il_tensor_get(t, k), want[k]);
            ok = 0;
        }
    CU_ASSERT(ok);
}

void op_expect_(op_case *o, int i, il_dtype dt, int rank, const int64_t *dims, const double *want, int line) {
    expect_one(o, o->out[i], "reference", i, dt, rank, dims, want, line);
    expect_one(o, o->fast[i], "other kernel or second run", i, dt, rank, dims, want, line);
}

void op_expect_tensor_(op_case *o, int i, il_tensor *want, int line) {
    double *v = malloc(sizeof(double) * (size_t)(il_tensor_numel(want) + 1));
    for (int64_t k = 0, n = il_tensor_numel(want); k < n; k++) v[k] = il_tensor_get(want, k);
    op_expect_(o, i, want->dtype, want->rank, want->dims, v, line);
    free(v);
    il_tensor_free(want);
}

void op_fails_(op_case *o, il_status st, const char *text, int line) {
    il_status got = op_run(o);
    char prefix[192];
    const il_node *n = &o->g->nodes[o->k];
    snprintf(prefix, sizeof prefix, "node '%s' (%s): ", n->name, n->op_type);
    const char *msg = il_errmsg();
    int named = !strncmp(msg, prefix, strlen(prefix));
    int says = !text || (named && strstr(msg + strlen(prefix), text));
    if (got != st || !named || !says)
        fprintf(stderr, "\n  line %d: got %s \"%s\", want %s with \"%s%s\"\n", line, il_status_str(got), msg,
                il_status_str(st), prefix, text ? text : "");
    CU_ASSERT_EQUAL(got, st);
    CU_ASSERT(named);
    CU_ASSERT(says);
}

void op_fast_vs_ref_(op_case *o, int rank, const int64_t *dims, double atol, const char *label, int line) {
    double rtol0 = o->rtol, atol0 = o->atol;
    int threads0 = o->threads;
    op_in(o, 0, rnd(IL_F32, rank, dims, -3, 3));
    const il_kernel *ks[32];
    const il_node *n = &o->g->nodes[o->k];
    CU_ASSERT(il_kernels_of(n->domain, n->op_type, "cpu", o->opset, ks, 32) > 1); /* more than "ref" */
    o->rtol = 1e-5, o->atol = atol, o->threads = 4;
    snprintf(o->label, sizeof o->label, "%s %s (line %d)", o->g->nodes[o->k].op_type, label, line);
    il_status st = op_run(o);
    if (st) fprintf(stderr, "\n  %s: %s\n", o->label, il_errmsg());
    CU_ASSERT_EQUAL(st, IL_OK);
    o->rtol = rtol0, o->atol = atol0, o->threads = threads0;
    o->label[0] = 0;
}
