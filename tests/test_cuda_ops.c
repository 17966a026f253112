/*
 * test_cuda_ops.c - every cuda kernel but the convolutions (engine/cuda/kernels_cuda.c,
 * ops_cuda.c, matmul_cuda.c) against the cpu reference kernels on fresh random inputs, in
 * float32 and in half precision (plans with .precision fp16 and bf16: float values held on the
 * device as float16/bfloat16, float arithmetic inside), including broadcast shapes and odd sizes;
 * then the ONNX node suite's tests (fp32) on the cuda kernels against the cpu reference on their
 * own inputs, and the tiny BERT and ViT exports after -O2 on the GPU against the cpu, counting
 * fallbacks.
 *
 * Tolerances, for |got - want| <= atol * max(1, max |want|) + rtol * |want| per output element:
 *   fp32   rtol 1e-4, atol 1e-5 (elementwise and data movement: one float rounding apart);
 *          rtol 1e-4, atol 1e-4 for products, softmax, norms and reductions (sums in another
 *          order than the reference's double ones)
 *   tf32   rtol 1e-2, atol 1e-2 (the products' inputs rounded to 11 bits; products only)
 *   fp16   rtol 1e-2, atol 1e-2 (inputs, intermediate and outputs rounded to 11 bits)
 *   bf16   rtol 5e-2, atol 5e-2 (8 bits)
 *   whole models: fp32 rtol 1e-3, atol 1e-4; tf32 1e-2; fp16 2e-2; bf16 5e-2 (two layers of
 *   products and norms); fp32 and fp16 again captured as a CUDA graph and replayed
 * Integer and bool outputs must be equal. Each case must place every node on the GPU (no
 * fallback); the last test fails for any cuda kernel (other than Conv/FusedConv, whose tests are
 * cuda-infer's and the cuDNN work's) that no case ran in float32 and in a half precision.
 *
 * Without a GPU every GPU test prints "skipped: no GPU"; the placement test still runs: every
 * node of the -O2 tiny BERT and ViT has a cuda kernel whose supports() takes it. Built with
 * IL_CUDA_EMU (tests/cuda_emu.sh), every test runs on the emulated device of tests/cuda_emu.c.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/plan_int.h"
#include "../passes/passes.h"
#include "op_harness.h"

#ifdef IL_CUDA_EMU
#include "cuda_emu.h"
/* tests/cuda_emu.sh: the kernels emulated on the host instead of a GPU */
static int have_gpu(void) {
    printf("(emulated) ");
    return 1;
}
#else
static int have_gpu(void) {
    const il_backend_iface *b = il_backend_find("cuda");
    const char *why = "not built with CUDA";
    if (b && b->available(&why)) return 1;
    printf("skipped: no GPU (%s) ", why ? why : "?");
    return 0;
}
#endif

/* ---------------------------------------------------------------- coverage */

#define MAX_USED 256
static const il_kernel *used[2][MAX_USED]; /* [0] float32 plans, [1] half plans */
static int n_used[2];

static void mark_used(const il_kernel *kn, int half) {
    int seen = 0;
    for (int i = 0; i < n_used[half]; i++) seen |= used[half][i] == kn;
    if (kn && !seen && n_used[half] < MAX_USED) used[half][n_used[half]++] = kn;
}

/* ---------------------------------------------------------------- comparing */

typedef struct {
    double rtol, atol;
} tol;

static const char *prec_name(int prec) { return il_precision_name(prec); }

/* How the next cases run: kernels the plans must use ("MaxPool=cuda": the own kernel where
 * cuDNN's would win by priority; NULL: the planner's choice), whether they capture their run as
 * a CUDA graph and replay it, and let nodes fall back to the cpu without a word. */
static struct {
    const char *force;
    int graphs, quiet;
} how;
/* Nodes the last gpu_vs_ref ran on cuda kernels. */
static int last_on_acc;

/* got within t of want (scaled as the file comment says); prints the worst element. */
static int close_enough(const il_tensor *got, const il_tensor *want, tol t, const char *what, int o) {
    if (got->dtype != want->dtype || got->rank != want->rank ||
        memcmp(got->dims, want->dims, sizeof(int64_t) * (size_t)got->rank)) {
        fprintf(stderr, "\n  %s output %d: dtype/shape differ (%s vs %s)\n", what, o, il_dtype_name(got->dtype),
                il_dtype_name(want->dtype));
        return 0;
    }
    int64_t n = il_tensor_numel(want), worst = -1;
    int isfloat = il_dtype_is_float(want->dtype);
    double scale = 1, excess = 0;
    for (int64_t i = 0; i < n && isfloat; i++) {
        double w = fabs(il_tensor_get(want, i));
        if (isfinite(w) && w > scale) scale = w;
    }
    for (int64_t i = 0; i < n; i++) {
        double x = il_tensor_get(got, i), y = il_tensor_get(want, i), e;
        if (isnan(x) || isnan(y)) e = isnan(x) && isnan(y) ? 0 : INFINITY;
        else if (isinf(x) || isinf(y)) e = x == y ? 0 : INFINITY;
        else e = fabs(x - y) - (isfloat ? t.atol * scale + t.rtol * fabs(y) : 0);
        if (e > 0 && e > excess) excess = e, worst = i;
    }
    if (worst >= 0)
        fprintf(stderr, "\n  %s output %d: element %lld is %.9g, the reference %.9g (rtol %g, atol %g x %g)\n", what,
                o, (long long)worst, il_tensor_get(got, worst), il_tensor_get(want, worst), t.rtol, t.atol, scale);
    return worst < 0;
}

/* Node k of g ran on the cpu: allowed for convolutions when allow_conv (their half-precision
 * kernels are cuDNN's); else it is reported and counted. */
/* Shape arithmetic (a Shape, its Gathers and Concats, a scale computed from a head size) may stay
 * on the cpu: every output of at most 64 elements. */
static int small_outputs(const il_graph *g, const il_shapes *s, int k) {
    for (int i = 0; s && i < g->nodes[k].n_outputs; i++) {
        int v = g->nodes[k].outputs[i];
        if (v >= 0 && (!il_shape_known(&s->info[v]) || il_tensor_numel(&s->info[v]) > 64)) return 0;
    }
    return s != NULL;
}

/* A node the build folded (all its inputs known then, e.g. tiny BERT's position-embedding Gather
 * and tiny ViT's class-token Expand, 1024 and 128 elements at batch 2) runs nowhere: the plan
 * still gives it a cpu kernel (il_plan_kernel) and no device, which is not a fallback. */
static int bad_fallback(const il_graph *g, const il_shapes *s, int k, int allow_conv, const char *label) {
    if (how.quiet || small_outputs(g, s, k) || (s && s->folded[k])) return 0;
#ifdef IL_CUDA_EMU
    allow_conv = 1; /* the emulation runs no convolution */
#endif
    if (allow_conv && strstr(g->nodes[k].op_type, "Conv")) return 0;
    char m[256]; /* in CUnit's failure list too, which a log cut to its summary still shows */
    snprintf(m, sizeof m, "%s: node '%s' (%s) fell back to the cpu", label, g->nodes[k].name, g->nodes[k].op_type);
    fprintf(stderr, "\n  %s", m);
    CU_assertImplementation(CU_FALSE, __LINE__, m, __FILE__, "", CU_FALSE);
    return 1;
}

/* g on the GPU at a precision against the cpu reference kernels, twice (the second run reuses
 * weights, staging and workspace). Returns the nodes that fell back to the cpu but should not
 * have (-1 when the plan failed). */
static int gpu_vs_ref(const il_graph *g, il_tensor *const *in, int64_t batch, int prec, tol t, const char *what,
                      int allow_conv) {
    char label[160];
    int half = prec == IL_PREC_FP16 || prec == IL_PREC_BF16, bad = 0;
    snprintf(label, sizeof label, "%s [%s]", what, prec_name(prec));
    il_plan_opts ro = {.reference = 1, .threads = 2, .batch = batch},
                 go = {.backend = IL_BACKEND_CUDA, .precision = prec, .batch = batch, .kernels = how.force,
                       .graphs = how.graphs};
    il_plan *r = NULL, *p = NULL;
    il_status st = il_plan_create(g, &ro, &r);
#ifdef IL_CUDA_EMU
    (void)go, (void)p;
    il_tensor *outs[16] = {0};
    const il_kernel **chosen = calloc((size_t)g->n_nodes + 1, sizeof *chosen);
    char *on_cpu = calloc((size_t)g->n_nodes + 1, 1);
    if (!st) st = il_plan_run(r, in, g->n_inputs);
    if (!st) st = il_emu_run(g, in, prec, how.force, outs, chosen, on_cpu);
    if (st == IL_ERR_UNSUPPORTED && how.quiet) { /* the node suite's float16 graphs: not emulated */
        il_error_clear();
        bad = 0;
    } else if (st) {
        fprintf(stderr, "\n  %s: %s\n", label, il_errmsg());
        CU_FAIL("emulated run");
        bad = -1;
    }
    last_on_acc = 0;
    for (int k = 0; k < g->n_nodes && !st; k++) {
        mark_used(chosen[k], half);
        last_on_acc += chosen[k] != NULL;
        if (on_cpu[k]) bad += bad_fallback(g, NULL, k, allow_conv, label);
    }
    for (int o = 0; o < il_plan_n_outputs(r) && !st; o++) {
        CU_ASSERT_TRUE(close_enough(outs[o], il_plan_output(r, o), t, label, o));
        il_tensor_free(outs[o]);
    }
    free(chosen);
    free(on_cpu);
    il_plan_free(r);
    return bad;
#else
    if (!st) st = il_plan_create(g, &go, &p);
    if (st) {
        fprintf(stderr, "\n  %s: %s\n", label, il_errmsg());
        CU_FAIL("plan");
        il_plan_free(r);
        il_plan_free(p);
        return -1;
    }
    last_on_acc = 0;
    for (int k = 0; k < g->n_nodes; k++) {
        if (!il_plan_kernel(p, k)) continue;
        if (il_plan_on_acc(p, k)) mark_used(il_plan_kernel(p, k), half), last_on_acc++;
        else bad += bad_fallback(g, il_plan_shapes(p), k, allow_conv, label);
    }
    for (int rep = 0; rep < 2 && !st; rep++) {
        st = il_plan_run(r, in, g->n_inputs);
        if (!st) st = il_plan_run(p, in, g->n_inputs);
        if (st) {
            fprintf(stderr, "\n  %s: %s\n", label, il_errmsg());
            CU_FAIL("run");
            break;
        }
        for (int o = 0; o < il_plan_n_outputs(p); o++)
            CU_ASSERT_TRUE(close_enough(il_plan_output(p, o), il_plan_output(r, o), t, label, o));
    }
    il_plan_free(r);
    il_plan_free(p);
    return bad;
#endif
}

/* ---------------------------------------------------------------- one-node graphs */

/* An input of a case: kind 'x' a float32 graph input uniform in [lo, hi), 'q' the same rounded
 * to quarters (exact in float16 and bfloat16, so comparisons see equal values), 'w' a float32
 * constant, 'i' an int64 graph input of integers in [lo, hi), 'k' an int64 constant of the
 * given values, 'j' an int32 graph input, 'b' a bool graph input, 0 omitted. */
typedef struct {
    char kind;
    int rank;
    int64_t dims[IL_MAX_RANK];
    double lo, hi;
    const int64_t *vals;
} spec;

#define NONE {0, 0, {0}, 0, 0, NULL}

/* A case under construction: the graph, its one node, the graph inputs' data. */
typedef struct {
    il_graph *g;
    int k;
    il_tensor *in[8];
    char what[128];
} gcase;

/* spec's dims: SHAPE() gives rank and a pointer; copy them into the struct. */
static spec fix(spec s, int rank, const int64_t *dims) {
    s.rank = rank;
    for (int d = 0; d < rank; d++) s.dims[d] = dims[d];
    return s;
}
#define X(lo, hi, ...) fix((spec){'x', 0, {0}, lo, hi, NULL}, SHAPE(__VA_ARGS__))
#define Q(...) fix((spec){'q', 0, {0}, -2, 2, NULL}, SHAPE(__VA_ARGS__))
#define W(lo, hi, ...) fix((spec){'w', 0, {0}, lo, hi, NULL}, SHAPE(__VA_ARGS__))
#define I(lo, hi, ...) fix((spec){'i', 0, {0}, lo, hi, NULL}, SHAPE(__VA_ARGS__))
#define J(lo, hi, ...) fix((spec){'j', 0, {0}, lo, hi, NULL}, SHAPE(__VA_ARGS__))
#define B(...) fix((spec){'b', 0, {0}, 0, 2, NULL}, SHAPE(__VA_ARGS__))
#define KV(vals, ...) fix((spec){'k', 0, {0}, 0, 0, vals}, SHAPE(__VA_ARGS__))
#define SCALAR_W(lo, hi) ((spec){'w', 0, {0}, lo, hi, NULL})

static il_tensor *tensor_of(const spec *s) {
    il_dtype dt = s->kind == 'i' || s->kind == 'k' ? IL_I64 : s->kind == 'j' ? IL_I32 : s->kind == 'b' ? IL_BOOL : IL_F32;
    il_tensor *t = il_tensor_new(dt, s->rank, s->dims);
    int64_t n = il_tensor_numel(t);
    if (s->kind == 'k') memcpy(t->data, s->vals, (size_t)n * sizeof(int64_t));
    else if (s->kind == 'b')
        for (int64_t i = 0; i < n; i++) ((uint8_t *)t->data)[i] = (uint8_t)(il_rand_u64(op_rng()) & 1);
    else il_tensor_fill_random(t, op_rng(), s->lo, s->hi);
    if (s->kind == 'q')
        for (int64_t i = 0; i < n; i++) ((float *)t->data)[i] = floorf(((float *)t->data)[i] * 4) / 4;
    return t;
}

/* A graph of one node `op` (domain "DOMAIN:Op"), its inputs as specs, n_out float outputs. */
static gcase *gc_new(const char *op, int64_t opset, int n_in, const spec *ins, int n_out) {
    gcase *c = calloc(1, sizeof *c);
    char dom[32] = "", name[32];
    const char *colon = strchr(op, ':');
    c->g = il_graph_new("cuda-ops");
    il_graph_set_opset(c->g, "", opset);
    if (colon) {
        snprintf(dom, sizeof dom, "%.*s", (int)(colon - op), op);
        op = colon + 1;
        il_graph_set_opset(c->g, dom, 1);
    }
    snprintf(c->what, sizeof c->what, "%s", op);
    int in[16], out[16], n_graph_in = 0;
    for (int i = 0; i < n_in; i++) {
        const spec *s = &ins[i];
        snprintf(name, sizeof name, "in%d", i);
        if (!s->kind) {
            in[i] = -1;
            continue;
        }
        il_tensor *t = tensor_of(s);
        if (s->kind == 'w' || s->kind == 'k') {
            in[i] = il_graph_add_constant(c->g, name, t);
            continue;
        }
        in[i] = il_graph_value(c->g, name);
        il_value *v = &c->g->values[in[i]];
        v->dtype = t->dtype;
        v->rank = t->rank;
        memcpy(v->dims, t->dims, sizeof(int64_t) * (size_t)t->rank);
        il_graph_add_input(c->g, in[i]);
        c->in[n_graph_in++] = t;
    }
    for (int i = 0; i < n_out; i++) {
        snprintf(name, sizeof name, "out%d", i);
        out[i] = il_graph_value(c->g, name);
    }
    c->k = il_graph_add_node(c->g, op, dom, "node", n_in, in, n_out, out);
    for (int i = 0; i < n_out; i++) il_graph_add_output(c->g, out[i]);
    return c;
}

static void gc_free(gcase *c) {
    for (int i = 0; i < 8; i++) il_tensor_free(c->in[i]);
    il_graph_free(c->g);
    free(c);
}

enum { P32 = 1, P16 = 2, PB16 = 4, PALL = 7, PTF32 = 8 };
static const tol T_EXACT = {1e-4, 1e-5}, T_SUM = {1e-4, 1e-4}, T_F16 = {1e-2, 1e-2}, T_BF16 = {5e-2, 5e-2};

/* The case on the GPU in the precisions of mask (float32 within t32), with no fallback; frees it. */
static void gc_check(gcase *c, int mask, tol t32) {
    static const int precs[4] = {IL_PREC_FP32, IL_PREC_FP16, IL_PREC_BF16, IL_PREC_TF32};
    const tol ts[4] = {t32, T_F16, T_BF16, T_F16}; /* TF32 rounds the products' inputs to 11 bits */
    for (int i = 0; i < 4; i++)
        if (mask & (1 << i)) CU_ASSERT_EQUAL(gpu_vs_ref(c->g, c->in, 1, precs[i], ts[i], c->what, 0), 0);
    gc_free(c);
}

#define SPECS(...) ((spec[]){__VA_ARGS__})
#define NSPECS(...) (int)(sizeof(SPECS(__VA_ARGS__)) / sizeof(spec))
/* A case of op with the given input specs and n_out outputs. */
#define CASE(op, opset, n_out, ...) gc_new(op, opset, NSPECS(__VA_ARGS__), SPECS(__VA_ARGS__), n_out)

/* ---------------------------------------------------------------- elementwise */

static void test_unary(void) {
    if (!have_gpu()) return;
    static const struct {
        const char *op;
        int64_t opset;
        double lo, hi;
    } u[] = {
        {"Sqrt", 13, 0.1, 4},   {"Erf", 13, -3, 3},     {"Tanh", 13, -4, 4},       {"Sigmoid", 13, -8, 8},
        {"Exp", 13, -3, 3},     {"Log", 13, 0.1, 4},    {"Neg", 13, -3, 3},        {"Abs", 13, -3, 3},
        {"Reciprocal", 13, 0.5, 2}, {"Gelu", 20, -5, 5}, {"HardSwish", 14, -5, 5}, {"HardSigmoid", 13, -5, 5},
        {"LeakyRelu", 13, -3, 3}, {"Relu", 14, -3, 3},  {"ai.inferlab:Gelu", 17, -5, 5},
        {"ai.inferlab:HardSwish", 13, -5, 5}, {"ai.inferlab:SiLU", 13, -6, 6}, {"Sin", 13, -3, 3}, {"Cos", 13, -3, 3},
        {"Softplus", 13, -5, 5}, {"Softsign", 13, -5, 5}, {"Elu", 13, -3, 3}, {"Selu", 13, -3, 3},
        {"Celu", 13, -3, 3}, {"Mish", 13, -4, 4},
        /* steps: quarters (exact in the half types, so rounding the input cannot cross one) */
        {"Floor", 13, 0, 0}, {"Ceil", 13, 0, 0}, {"Round", 13, 0, 0}, {"Sign", 13, 0, 0},
        {"ThresholdedRelu", 13, 0, 0},
    };
    for (size_t i = 0; i < sizeof u / sizeof *u; i++) {
        gcase *c = u[i].lo == u[i].hi ? CASE(u[i].op, u[i].opset, 1, Q(3, 37, 5))
                                      : CASE(u[i].op, u[i].opset, 1, X(u[i].lo, u[i].hi, 3, 37, 5));
        if (!strcmp(u[i].op, "ThresholdedRelu")) SETF(c, "alpha", 0.5f);
        if (!strcmp(u[i].op, "Celu")) SETF(c, "alpha", 1.5f);
        if (!strcmp(u[i].op, "HardSigmoid")) SETF(c, "alpha", 0.3f), SETF(c, "beta", 0.4f);
        if (!strcmp(u[i].op, "LeakyRelu")) SETF(c, "alpha", 0.1f);
        gc_check(c, PALL, T_EXACT);
    }
    gcase *c = CASE("Gelu", 20, 1, X(-5, 5, 7, 33));
    SETS(c, "approximate", "tanh");
    gc_check(c, P32 | P16, T_EXACT);
    /* Clip: constant bounds as inputs (opset 13), one of them omitted; attributes (opset 6) */
    c = CASE("Clip", 13, 1, X(-3, 3, 4, 9, 5), SCALAR_W(-1, -0.5), SCALAR_W(0.5, 1));
    gc_check(c, PALL, T_EXACT);
    c = CASE("Clip", 13, 1, X(-3, 3, 4, 9, 5), NONE, SCALAR_W(0.5, 1));
    gc_check(c, P32 | P16, T_EXACT);
    c = CASE("Clip", 6, 1, X(-3, 3, 65));
    SETF(c, "min", -0.25f), SETF(c, "max", 2.0f);
    gc_check(c, P32 | P16, T_EXACT);
}

static void test_binary(void) {
    if (!have_gpu()) return;
    static const char *ops[] = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min"};
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
        int pos = !strcmp(ops[i], "Pow"), div = !strcmp(ops[i], "Div");
        double lo = pos ? 0.1 : -3, hi = pos ? 2 : 3, blo = div ? 0.5 : pos ? -2 : -3, bhi = div ? 2 : pos ? 2 : 3;
        /* same shapes; broadcast both ways with odd sizes; a scalar constant; rank 5 vs rank 1 */
        gc_check(CASE(ops[i], 13, 1, X(lo, hi, 4, 5, 7), X(blo, bhi, 4, 5, 7)), PALL, T_EXACT);
        gc_check(CASE(ops[i], 13, 1, X(lo, hi, 4, 1, 7), X(blo, bhi, 5, 1)), PALL, T_EXACT);
        gc_check(CASE(ops[i], 13, 1, X(lo, hi, 3, 17), SCALAR_W(blo, bhi)), P32 | P16, T_EXACT);
        gc_check(CASE(ops[i], 13, 1, X(lo, hi, 2, 1, 3, 1, 5), W(blo, bhi, 5)), P32 | P16, T_EXACT);
    }
}

static void test_prelu_logsoftmax(void) {
    if (!have_gpu()) return;
    /* the variadic ops: one, two and three inputs, broadcast */
    static const char *var[] = {"Sum", "Mean", "Max", "Min"};
    for (int i = 0; i < 4; i++) {
        gc_check(CASE(var[i], 13, 1, X(-3, 3, 4, 5)), P32 | P16, T_EXACT);
        gc_check(CASE(var[i], 13, 1, X(-3, 3, 4, 1, 6), X(-3, 3, 5, 1), W(-3, 3, 6)), PALL, T_EXACT);
    }
    gc_check(CASE("PRelu", 9, 1, X(-3, 3, 2, 3, 4, 5), W(0, 1, 3, 1, 1)), PALL, T_EXACT);
    gc_check(CASE("PRelu", 16, 1, X(-3, 3, 2, 3, 4, 5), X(0, 1, 5)), P32 | P16, T_EXACT);
    gc_check(CASE("LogSoftmax", 13, 1, X(-5, 5, 3, 5, 17)), PALL, T_SUM);
    gc_check(CASE("LogSoftmax", 11, 1, X(-5, 5, 3, 5, 17)), P32 | P16, T_SUM);
}

static void test_compare_logic_where(void) {
    if (!have_gpu()) return;
    static const char *cmp[] = {"Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual"};
    for (size_t i = 0; i < sizeof cmp / sizeof *cmp; i++) {
        gc_check(CASE(cmp[i], 13, 1, Q(6, 1), Q(5)), PALL, T_EXACT);
        gc_check(CASE(cmp[i], 13, 1, Q(3, 4, 5), Q(3, 4, 5)), P32 | P16, T_EXACT);
    }
    static const char *logic[] = {"And", "Or", "Xor"};
    for (size_t i = 0; i < sizeof logic / sizeof *logic; i++) {
        gc_check(CASE(logic[i], 13, 1, B(4, 1, 6), B(5, 6)), PALL, T_EXACT);
        gc_check(CASE(logic[i], 13, 1, B(33), B(33)), P32 | P16, T_EXACT);
    }
    gc_check(CASE("Not", 13, 1, B(7, 9)), PALL, T_EXACT);
    gc_check(CASE("Where", 16, 1, B(4, 1, 6), X(-3, 3, 5, 6), SCALAR_W(-1, 1)), PALL, T_EXACT);
    gc_check(CASE("Where", 16, 1, B(3, 5), W(-3, 3, 1, 5), X(-3, 3, 3, 1)), P32 | P16, T_EXACT);
    /* int64 values are copied, not converted */
    gc_check(CASE("Where", 16, 1, B(2, 9), I(-1000000, 1000000, 2, 9), I(-5, 5, 9)), P32 | P16, T_EXACT);
}

static void test_cast(void) {
    if (!have_gpu()) return;
    static const struct {
        spec in;
        il_dtype to;
    } cs[] = {
        {{'x', 2, {5, 7}, -3, 3, NULL}, IL_F32},  {{'x', 2, {5, 7}, -3, 3, NULL}, IL_F16},
        {{'x', 2, {5, 7}, -3, 3, NULL}, IL_BOOL}, {{'i', 2, {5, 7}, -9, 9, NULL}, IL_F32},
        {{'i', 2, {5, 7}, -1, 2, NULL}, IL_BOOL}, {{'j', 1, {33}, -99, 99, NULL}, IL_F32},
        {{'b', 2, {4, 4}, 0, 2, NULL}, IL_F32},   {{'i', 3, {2, 3, 4}, -2000, 2000, NULL}, IL_F16},
    };
    for (size_t i = 0; i < sizeof cs / sizeof *cs; i++) {
        gcase *c = gc_new("Cast", 13, 1, &cs[i].in, 1);
        SETI(c, "to", cs[i].to);
        snprintf(c->what, sizeof c->what, "Cast %c to %s", cs[i].in.kind, il_dtype_name(cs[i].to));
        gc_check(c, i < 4 ? PALL : P32 | P16, T_EXACT);
    }
}

/* ---------------------------------------------------------------- data movement */

static void test_movement(void) {
    if (!have_gpu()) return;
    gcase *c = CASE("Transpose", 13, 1, X(-1, 1, 2, 3, 4, 5));
    SETIS(c, "perm", 0, 2, 3, 1);
    gc_check(c, PALL, T_EXACT);
    c = CASE("Transpose", 13, 1, X(-1, 1, 3, 1, 7, 2));
    SETIS(c, "perm", 3, 1, 2, 0);
    gc_check(c, P32 | P16, T_EXACT);
    gc_check(CASE("Transpose", 13, 1, X(-1, 1, 5, 7)), P32 | P16, T_EXACT); /* default: reversed */
    gc_check(CASE("Transpose", 13, 1, I(-99, 99, 4, 3, 2)), P32, T_EXACT);  /* int64 moves as bytes */

    c = CASE("Concat", 13, 1, X(-1, 1, 2, 3, 5), X(-1, 1, 2, 1, 5), W(-1, 1, 2, 4, 5));
    SETI(c, "axis", 1);
    gc_check(c, PALL, T_EXACT);
    c = CASE("Concat", 13, 1, X(-1, 1, 3, 2), X(-1, 1, 3, 7));
    SETI(c, "axis", -1);
    gc_check(c, P32 | P16, T_EXACT);
    c = CASE("Concat", 13, 1, B(2, 3), B(5, 3));
    SETI(c, "axis", 0);
    gc_check(c, P32, T_EXACT);

    static const int64_t split[3] = {2, 3, 5};
    c = CASE("Split", 13, 3, X(-1, 1, 4, 10, 3), KV(split, 3));
    SETI(c, "axis", 1);
    gc_check(c, PALL, T_EXACT);
    c = CASE("Split", 13, 2, X(-1, 1, 6, 9));
    gc_check(c, P32 | P16, T_EXACT);

    static const int64_t st[2] = {1, -1}, en[2] = {5, -9}, ax[2] = {0, 2}, sp[2] = {2, -2};
    c = CASE("Slice", 13, 1, X(-1, 1, 6, 7, 8), KV(st, 2), KV(en, 2), KV(ax, 2), KV(sp, 2));
    gc_check(c, PALL, T_EXACT);
    static const int64_t st1[1] = {-3}, en1[1] = {1000};
    c = CASE("Slice", 13, 1, X(-1, 1, 5, 11), KV(st1, 1), KV(en1, 1));
    gc_check(c, P32 | P16, T_EXACT);
    c = CASE("Slice", 1, 1, X(-1, 1, 5, 11));
    SETIS(c, "starts", 1, 2), SETIS(c, "ends", 4, 9), SETIS(c, "axes", 0, 1);
    gc_check(c, P32 | P16, T_EXACT);

    /* Gather: an embedding table (constant) by int64 ids, negative ones too; a scalar index on
     * another axis; int32 ids; bool data */
    gc_check(CASE("Gather", 13, 1, W(-1, 1, 50, 16), I(-50, 50, 3, 7)), PALL, T_EXACT);
    static const int64_t two = 2;
    c = CASE("Gather", 13, 1, X(-1, 1, 3, 17, 5), ((spec){'k', 0, {0}, 0, 0, &two}));
    SETI(c, "axis", 1);
    gc_check(c, P32 | P16, T_EXACT);
    c = CASE("Gather", 13, 1, X(-1, 1, 2, 3, 9), J(0, 9, 2, 2));
    SETI(c, "axis", -1);
    gc_check(c, P32 | P16, T_EXACT);
    gc_check(CASE("Gather", 13, 1, B(6, 4), I(0, 6, 5)), P32, T_EXACT);
    /* GatherND: tuples of 2 into [5, 4, 3] (negative ids too); batch_dims 1; bool data */
    gc_check(CASE("GatherND", 13, 1, X(-1, 1, 5, 4, 3), I(-4, 4, 6, 2)), PALL, T_EXACT);
    c = CASE("GatherND", 13, 1, X(-1, 1, 2, 7, 3), I(0, 7, 2, 4, 1));
    SETI(c, "batch_dims", 1);
    gc_check(c, P32 | P16, T_EXACT);
    gc_check(CASE("GatherND", 13, 1, B(3, 5), I(0, 3, 2, 1)), P32, T_EXACT);

    /* Expand and Tile: repeats as copies */
    static const int64_t to4[4] = {2, 3, 4, 5}, to2[2] = {4, 6}, reps[3] = {2, 1, 3};
    gc_check(CASE("Expand", 13, 1, X(-1, 1, 3, 1, 5), KV(to4, 4)), PALL, T_EXACT);
    gc_check(CASE("Expand", 13, 1, X(-1, 1, 1), KV(to2, 2)), P32 | P16, T_EXACT);
    gc_check(CASE("Tile", 13, 1, X(-1, 1, 2, 3, 4), KV(reps, 3)), PALL, T_EXACT);
    gc_check(CASE("Tile", 13, 1, I(-9, 9, 2, 3, 4), KV(reps, 3)), P32, T_EXACT);

    /* Pad: each mode, negative pads (crop), axes (opset 18), the attribute form (opset 2) */
    static const char *modes[] = {"constant", "edge", "reflect", "wrap"};
    static const int64_t pads[6] = {1, -1, 3, 2, 2, -2}, pads2[2] = {2, 5}, ax1[1] = {1};
    for (int m = 0; m < 4; m++) {
        c = CASE("Pad", 19, 1, X(-1, 1, 3, 6, 5), KV(pads, 6), SCALAR_W(-2, 2));
        SETS(c, "mode", modes[m]);
        gc_check(c, m == 0 ? PALL : P32 | P16, T_EXACT);
    }
    c = CASE("Pad", 18, 1, X(-1, 1, 2, 4, 3), KV(pads2, 2), NONE, KV(ax1, 1));
    SETS(c, "mode", "reflect");
    gc_check(c, P32 | P16, T_EXACT);
    c = CASE("Pad", 2, 1, X(-1, 1, 2, 3));
    SETIS(c, "pads", 0, 1, 2, 0), SETF(c, "value", 1.5f);
    gc_check(c, P32 | P16, T_EXACT);
    gc_check(CASE("Pad", 13, 1, I(-9, 9, 4, 5), KV(pads, 4)), P32, T_EXACT); /* int64: zeros */

    /* Resize: scales and sizes, nearest / linear / cubic and their coordinate modes */
    static const float up[4] = {1, 1, 2, 1.5f}, down[4] = {1, 1, 0.6f, 0.8f};
    static const int64_t size4[4] = {2, 3, 7, 5};
    static const struct {
        const char *mode, *coord, *nearest;
        int scales_up, sizes;
    } rz[] = {
        {"nearest", "asymmetric", "floor", 1, 0},         {"nearest", "half_pixel", "round_prefer_floor", 0, 0},
        {"nearest", "align_corners", "round_prefer_ceil", 0, 1},
        {"linear", "half_pixel", NULL, 1, 0},             {"linear", "align_corners", NULL, 0, 1},
        {"linear", "pytorch_half_pixel", NULL, 0, 0},     {"cubic", "half_pixel", NULL, 1, 0},
        {"cubic", "asymmetric", NULL, 0, 1},
    };
    for (size_t i = 0; i < sizeof rz / sizeof *rz; i++) {
        il_tensor *sc = il_tensor_new(IL_F32, 1, D(4));
        memcpy(sc->data, rz[i].scales_up ? up : down, sizeof up);
        c = rz[i].sizes ? CASE("Resize", 13, 1, X(-1, 1, 2, 3, 6, 4), NONE, NONE, KV(size4, 4))
                        : CASE("Resize", 13, 1, X(-1, 1, 2, 3, 6, 4), NONE, NONE);
        if (!rz[i].sizes) { /* scales as a constant input 2 */
            int sv = il_graph_add_constant(c->g, "scales", sc);
            c->g->nodes[c->k].inputs[2] = sv;
        } else {
            il_tensor_free(sc);
        }
        SETS(c, "mode", rz[i].mode), SETS(c, "coordinate_transformation_mode", rz[i].coord);
        if (rz[i].nearest) SETS(c, "nearest_mode", rz[i].nearest);
        snprintf(c->what, sizeof c->what, "Resize %s %s", rz[i].mode, rz[i].coord);
        gc_check(c, i < 2 ? PALL : P32 | P16, T_SUM);
    }

    /* DepthToSpace (both modes) and SpaceToDepth; Dropout in inference */
    c = CASE("DepthToSpace", 13, 1, X(-1, 1, 2, 12, 3, 5));
    SETI(c, "blocksize", 2);
    gc_check(c, PALL, T_EXACT);
    c = CASE("DepthToSpace", 13, 1, X(-1, 1, 1, 18, 2, 3));
    SETI(c, "blocksize", 3), SETS(c, "mode", "CRD");
    gc_check(c, P32 | P16, T_EXACT);
    c = CASE("SpaceToDepth", 13, 1, X(-1, 1, 2, 3, 6, 4));
    SETI(c, "blocksize", 2);
    gc_check(c, PALL, T_EXACT);
    gc_check(CASE("Dropout", 13, 1, X(-1, 1, 3, 7)), PALL, T_EXACT);

    /* the reshape-likes: a chain of device copies */
    il_graph *g = il_graph_new("copies");
    il_graph_set_opset(g, "", 13);
    int x = il_test_input(g, "x", 3, D(2, 3, 5)), a = il_graph_value(g, "a"), b = il_graph_value(g, "b"),
        d = il_graph_value(g, "d"), e = il_graph_value(g, "e"), y = il_graph_value(g, "y");
    il_tensor *axes = i64s(1, D(1), (int64_t[]){0}), *axes2 = i64s(1, D(1), (int64_t[]){0}),
              *shape = i64s(1, D(2), (int64_t[]){5, -1});
    il_graph_add_node(g, "Identity", "", "id", 1, &x, 1, &a);
    il_graph_add_node(g, "Unsqueeze", "", "unsq", 2, (int[]){a, il_graph_add_constant(g, "axes", axes)}, 1, &b);
    il_graph_add_node(g, "Squeeze", "", "sq", 2, (int[]){b, il_graph_add_constant(g, "axes2", axes2)}, 1, &d);
    int fk = il_graph_add_node(g, "Flatten", "", "flat", 1, &d, 1, &e);
    il_node_set_int(g, fk, "axis", 2);
    il_graph_add_node(g, "Reshape", "", "reshape", 2, (int[]){e, il_graph_add_constant(g, "shape", shape)}, 1, &y);
    il_graph_add_output(g, y);
    il_tensor *in = il_tensor_new(IL_F32, 3, D(2, 3, 5));
    il_tensor_fill_random(in, op_rng(), -1, 1);
    for (int p = IL_PREC_FP32; p <= IL_PREC_BF16; p++)
        if (p != IL_PREC_TF32) CU_ASSERT_EQUAL(gpu_vs_ref(g, &in, 1, p, p ? (p == IL_PREC_FP16 ? T_F16 : T_BF16) : T_EXACT, "copies", 0), 0);
    il_tensor_free(in);
    il_graph_free(g);
}

/* ---------------------------------------------------------------- products */

static void test_matmul(void) {
    if (!have_gpu()) return;
    /* weights of rank 2; batch dims broadcast one side, both sides, mixed; A of rank 2 */
    gc_check(CASE("MatMul", 13, 1, X(-1, 1, 2, 3, 5, 7), W(-1, 1, 7, 4)), PALL | PTF32, T_SUM);
    gc_check(CASE("MatMul", 13, 1, X(-1, 1, 2, 3, 5, 7), X(-1, 1, 3, 7, 4)), PALL | PTF32, T_SUM);
    gc_check(CASE("MatMul", 13, 1, X(-1, 1, 1, 3, 5, 7), X(-1, 1, 2, 1, 7, 4)), P32 | P16, T_SUM);
    gc_check(CASE("MatMul", 13, 1, X(-1, 1, 5, 7), X(-1, 1, 4, 7, 9)), P32 | P16, T_SUM);
    gc_check(CASE("MatMul", 13, 1, X(-1, 1, 33, 65), X(-1, 1, 65, 17)), P32 | P16, T_SUM);
    gcase *c = CASE("ai.inferlab:FusedMatMul", 13, 1, X(-1, 1, 2, 9, 16), W(-1, 1, 16, 24), W(-1, 1, 24));
    SETS(c, "activation", "Gelu");
    gc_check(c, PALL, T_SUM);
    c = CASE("ai.inferlab:FusedMatMul", 13, 1, X(-1, 1, 3, 5, 8), X(-1, 1, 3, 8, 6));
    SETS(c, "activation", "Relu");
    gc_check(c, P32 | P16, T_SUM);
    c = CASE("ai.inferlab:FusedMatMul", 13, 1, X(-1, 1, 4, 8), W(-1, 1, 8, 6), W(-1, 1, 6));
    il_node_set_string(c->g, c->k, "activation", "Clip");
    il_node_set_floats(c->g, c->k, "activation_params", 2, (float[]){-0.5f, 0.75f});
    gc_check(c, P32 | P16, T_SUM);
}

static void test_gemm(void) {
    if (!have_gpu()) return;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            int64_t M = 7, K = 13, N = 5;
            spec a = ta ? X(-1, 1, K, M) : X(-1, 1, M, K), b = tb ? W(-1, 1, N, K) : W(-1, 1, K, N);
            gcase *c = gc_new("Gemm", 13, 3, SPECS(a, b, W(-1, 1, N)), 1);
            SETI(c, "transA", ta), SETI(c, "transB", tb), SETF(c, "alpha", 0.5f), SETF(c, "beta", 2.0f);
            gc_check(c, ta == tb ? PALL | PTF32 : P32 | P16, T_SUM);
        }
    gc_check(CASE("Gemm", 13, 1, X(-1, 1, 6, 4), X(-1, 1, 4, 3), X(-1, 1, 6, 1)), P32 | P16, T_SUM);
    gc_check(CASE("Gemm", 13, 1, X(-1, 1, 6, 4), X(-1, 1, 4, 3), X(-1, 1, 6, 3)), P32 | P16, T_SUM);
    gc_check(CASE("Gemm", 13, 1, X(-1, 1, 6, 4), X(-1, 1, 4, 3), W(-1, 1, 1)), P32 | P16, T_SUM);
    gc_check(CASE("Gemm", 13, 1, X(-1, 1, 6, 4), X(-1, 1, 4, 3)), P32 | P16, T_SUM);
    gcase *c = CASE("ai.inferlab:FusedGemm", 13, 1, X(-1, 1, 3, 16), W(-1, 1, 10, 16), W(-1, 1, 10));
    SETI(c, "transB", 1), SETS(c, "activation", "Tanh");
    gc_check(c, PALL, T_SUM);
}

/* Attention: masked (a mask of large negatives where keys are padding), broadcast leading dims,
 * and without a mask. */
static void test_attention(void) {
    if (!have_gpu()) return;
    gcase *c = CASE("ai.inferlab:Attention", 13, 1, X(-1, 1, 2, 4, 9, 8), X(-1, 1, 2, 4, 8, 11),
                    X(-1, 1, 2, 4, 11, 6), X(-1, 1, 2, 1, 1, 11));
    SETF(c, "scale", 0.35f);
    float *mask = c->in[3]->data;
    for (int i = 0; i < 22; i++) mask[i] = i % 11 >= 8 ? -10000.0f : mask[i]; /* padded keys */
    gc_check(c, PALL | PTF32, T_SUM);
    c = CASE("ai.inferlab:Attention", 13, 1, X(-1, 1, 3, 17, 16), X(-1, 1, 1, 16, 17), X(-1, 1, 3, 17, 16));
    gc_check(c, P32 | P16, T_SUM);
    c = CASE("ai.inferlab:Attention", 13, 1, X(-2, 2, 1, 2, 5, 4), X(-2, 2, 2, 1, 4, 7), X(-1, 1, 1, 1, 7, 3),
             W(-3, 0, 5, 7));
    SETF(c, "scale", 0.5f);
    gc_check(c, P32 | P16, T_SUM);
}

/* ---------------------------------------------------------------- rows */

static void test_softmax_norm_reduce(void) {
    if (!have_gpu()) return;
    gc_check(CASE("Softmax", 13, 1, X(-5, 5, 3, 5, 17)), PALL, T_SUM);
    gcase *c = CASE("Softmax", 13, 1, X(-5, 5, 3, 5, 17));
    SETI(c, "axis", 1);
    gc_check(c, P32 | P16, T_SUM);
    c = CASE("Softmax", 11, 1, X(-5, 5, 3, 5, 17)); /* coerced to [3, 85] */
    gc_check(c, P32 | P16, T_SUM);
    gc_check(CASE("Softmax", 13, 1, X(-5, 5, 2, 1000)), P32 | P16, T_SUM);

    gc_check(CASE("LayerNormalization", 17, 1, X(3, 7, 2, 7, 33), W(0.5, 2, 33), W(-1, 1, 33)), PALL, T_SUM);
    c = CASE("LayerNormalization", 17, 1, X(-1, 1, 2, 7, 33), W(0.5, 2, 7, 33));
    SETI(c, "axis", 1), SETF(c, "epsilon", 1e-3f);
    gc_check(c, P32 | P16, T_SUM);
    c = CASE("LayerNormalization", 17, 3, X(-1, 1, 4, 300), W(0.5, 2, 300), W(-1, 1, 300));
    gc_check(c, P32 | P16, T_SUM); /* Mean and InvStdDev too */
    gc_check(CASE("ai.inferlab:LayerNormalization", 13, 1, X(-1, 1, 5, 64), W(0.5, 2, 64), W(-1, 1, 64)), PALL,
             T_SUM);

    gc_check(CASE("InstanceNormalization", 13, 1, X(2, 4, 2, 5, 7, 3), W(0.5, 2, 5), W(-1, 1, 5)), PALL, T_SUM);
    c = CASE("GroupNormalization", 21, 1, X(-1, 1, 2, 6, 9), W(0.5, 2, 6), W(-1, 1, 6));
    SETI(c, "num_groups", 3);
    gc_check(c, PALL, T_SUM);
    c = CASE("GroupNormalization", 18, 1, X(-1, 1, 2, 6, 3, 3), W(0.5, 2, 2), W(-1, 1, 2));
    SETI(c, "num_groups", 2), SETF(c, "epsilon", 1e-3f);
    gc_check(c, P32 | P16, T_SUM);

    c = CASE("ReduceMean", 13, 1, X(-1, 1, 4, 6, 9));
    SETIS(c, "axes", -1);
    gc_check(c, PALL, T_SUM);
    c = CASE("ReduceMean", 13, 1, X(-1, 1, 4, 6, 9));
    SETIS(c, "axes", 1, 2), SETI(c, "keepdims", 0);
    gc_check(c, P32 | P16, T_SUM);
    static const int64_t ax0[1] = {0}, ax1[1] = {1};
    gc_check(CASE("ReduceMean", 18, 1, X(-1, 1, 7, 5), KV(ax0, 1)), P32 | P16, T_SUM);
    gc_check(CASE("ReduceSum", 13, 1, X(-1, 1, 3, 8, 2), KV(ax1, 1)), PALL, T_SUM);
    /* ArgMax / ArgMin on quarters (ties: equal in every precision), first and last index */
    for (int i = 0; i < 4; i++) {
        c = CASE(i & 1 ? "ArgMin" : "ArgMax", 13, 1, Q(4, 9, 5));
        SETI(c, "axis", i < 2 ? 1 : -1), SETI(c, "keepdims", i < 2), SETI(c, "select_last_index", i >= 2);
        gc_check(c, PALL, T_EXACT);
    }
    static const char *reds[] = {"ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum",
                                 "ReduceLogSumExp", "ReduceSumSquare"};
    for (size_t i = 0; i < sizeof reds / sizeof *reds; i++) {
        int prod = !strcmp(reds[i], "ReduceProd"), lg = !strcmp(reds[i], "ReduceLogSum");
        c = CASE(reds[i], 13, 1, X(prod || lg ? 0.5 : -2, prod ? 1.5 : 2, 3, 6, 5));
        SETIS(c, "axes", 1);
        gc_check(c, PALL, T_SUM);
        gc_check(CASE(reds[i], 18, 1, X(prod || lg ? 0.5 : -2, prod ? 1.5 : 2, 4, 7), KV(ax1, 1)), P32 | P16, T_SUM);
    }
}

/* ---------------------------------------------------------------- CNN ops */

/* The pools twice: the planner's choice (cuDNN's where it takes the window) and the own kernels
 * forced (ceil_mode, asymmetric pads and dilations are theirs anyway). */
static void test_cnn_ops(void) {
    if (!have_gpu()) return;
    for (int own = 0; own < 2; own++) {
        how.force = own ? "MaxPool=cuda,AveragePool=cuda,GlobalAveragePool=cuda" : NULL;
        for (int include = 0; include < 2; include++)
            for (int ceil = 0; ceil < 2; ceil++) {
                gcase *c = CASE("AveragePool", 19, 1, X(-1, 1, 2, 3, 11, 9));
                SETIS(c, "kernel_shape", 3, 3), SETIS(c, "strides", 2, 2), SETIS(c, "pads", 1, 1, 1, 1);
                SETI(c, "count_include_pad", include), SETI(c, "ceil_mode", ceil);
                gc_check(c, include == ceil ? PALL : P32 | P16, T_SUM);
            }
        gcase *c = CASE("MaxPool", 12, 1, X(-1, 1, 2, 3, 11, 9));
        SETIS(c, "kernel_shape", 3, 2), SETIS(c, "strides", 2, 1), SETIS(c, "pads", 1, 0, 1, 1);
        SETI(c, "ceil_mode", 1);
        gc_check(c, PALL, T_EXACT);
        c = CASE("MaxPool", 12, 1, X(-1, 1, 2, 4, 12, 10));
        SETIS(c, "kernel_shape", 3, 3), SETIS(c, "strides", 2, 2), SETIS(c, "pads", 1, 1, 1, 1);
        gc_check(c, PALL, T_EXACT);
        c = CASE("MaxPool", 12, 1, X(-1, 1, 1, 2, 9, 9));
        SETIS(c, "kernel_shape", 2, 2), SETIS(c, "dilations", 2, 2);
        gc_check(c, P32 | P16, T_EXACT);
        gc_check(CASE("GlobalAveragePool", 13, 1, X(-1, 1, 2, 5, 7, 3)), PALL, T_SUM);
    }
    how.force = NULL;
    gc_check(CASE("BatchNormalization", 15, 1, X(-1, 1, 2, 5, 7, 3), W(0.5, 2, 5), W(-1, 1, 5), W(-1, 1, 5),
                  W(0.5, 2, 5)),
             PALL, T_EXACT);
}

/* ---------------------------------------------------------------- whole models */

/* Fresh inputs for a model: int64 ids within the tables of the tiny BERT (1000 words, 2 token
 * types), an attention mask of ones then zeros (at least one key kept), floats in [-1, 1). */
static il_tensor *model_input(const il_value *x, int64_t batch) {
    int64_t d[IL_MAX_RANK];
    for (int j = 0; j < x->rank; j++) d[j] = x->dims[j] < 0 ? batch : x->dims[j];
    il_tensor *t = il_tensor_new(x->dtype, x->rank, d);
    if (x->dtype != IL_I64) {
        il_tensor_fill_random(t, op_rng(), -1, 1);
        return t;
    }
    int64_t n = il_tensor_numel(t), row = x->rank ? d[x->rank - 1] : 1;
    for (int64_t i = 0; i < n; i++) {
        int64_t *v = t->data;
        if (strstr(x->name, "mask")) v[i] = i % row < 1 + (int64_t)(i / row * 5 % row);
        else if (strstr(x->name, "type")) v[i] = (int64_t)(il_rand_u64(op_rng()) % 2);
        else v[i] = (int64_t)(il_rand_u64(op_rng()) % 1000);
    }
    return t;
}

/* What the planner does to a graph for the GPU (engine/plan.c): the cpu-only fusions
 * (SkipLayerNormalization, ScaledConv, MultiHeadAttention) split back into the ops they fused;
 * returns how many of the first two, the attentions in *heads. The emulation runs the graph
 * itself, not a plan. */
static int split_for_gpu(il_graph *g, int *heads) {
    const il_backend_iface cuda = {.name = "cuda"};
    *heads = il_plan_split_heads(&cuda, g);
    return il_plan_split_skipln(&cuda, g) + il_plan_split_scaled(&cuda, g);
}

/* The model after -O2 on the GPU at each precision, batch 2; float32 places every node on the
 * GPU, the half precisions every node but convolutions (cuDNN's, when built). */
static void check_model(const char *path, const char *what) {
    il_graph *g;
    IL_ASSERT_OK(il_onnx_load(path, &g));
    il_pass_opts po = {.seed = 1};
    IL_ASSERT_OK(il_pipeline_run(g, il_pass_preset(2), &po, NULL, 0, NULL));
    int heads;
    split_for_gpu(g, &heads);
    il_tensor *in[8] = {0};
    for (int i = 0; i < g->n_inputs && i < 8; i++) in[i] = model_input(&g->values[g->inputs[i]], 2);
    const tol ts[4] = {{1e-3, 1e-4}, {1e-2, 1e-2}, {2e-2, 2e-2}, {5e-2, 5e-2}}; /* by il_precision */
    for (int p = IL_PREC_FP32; p <= IL_PREC_BF16; p++)
        CU_ASSERT_EQUAL(gpu_vs_ref(g, in, 2, p, ts[p], what, p >= IL_PREC_FP16), 0);
    /* captured once as a CUDA graph and replayed (where no node falls back) */
    how.graphs = 1;
    CU_ASSERT_EQUAL(gpu_vs_ref(g, in, 2, IL_PREC_FP32, ts[0], what, 0), 0);
    CU_ASSERT_EQUAL(gpu_vs_ref(g, in, 2, IL_PREC_FP16, ts[IL_PREC_FP16], what, 1), 0);
    how.graphs = 0;
    for (int i = 0; i < 8; i++) il_tensor_free(in[i]);
    il_graph_free(g);
}

static void test_models(void) {
    if (!have_gpu()) return;
    check_model(IL_TESTDATA "/tiny_bert_legacy/model.onnx", "tiny BERT -O2");
    check_model(IL_TESTDATA "/tiny_vit_legacy/model.onnx", "tiny ViT -O2");
    check_model(IL_TESTDATA "/tiny_bert_dynamo/model.onnx", "tiny BERT (dynamo) -O2");
    check_model(IL_TESTDATA "/tiny_vit_dynamo/model.onnx", "tiny ViT (dynamo) -O2");
}

/* The ONNX node suite (libonnx-testdata) on the cuda kernels in float32 against the cpu
 * reference kernels on the same inputs: every node a cuda kernel's supports() takes must come
 * out like the reference (rtol 1e-4, atol 1e-4 scaled); the others run on the cpu. Tests the
 * reference itself fails are the conformance run's business and are left out here. */
static void test_node_suite(void) {
    if (!have_gpu()) return;
    DIR *d = opendir(IL_ONNX_NODE_DIR);
    if (!d) {
        printf("skipped: no %s ", IL_ONNX_NODE_DIR);
        return;
    }
    int tests = 0, on_cuda = 0, failures = CU_get_number_of_failures();
    struct dirent *de;
    how.quiet = 1;
    while ((de = readdir(d))) {
        char path[4096];
        il_graph *g = NULL;
        il_tensor *in[16] = {0};
        int ok = de->d_name[0] != '.';
        snprintf(path, sizeof path, "%s/%s/model.onnx", IL_ONNX_NODE_DIR, de->d_name);
        ok = ok && !il_onnx_load(path, &g) && !il_graph_verify(g) && g->n_inputs <= 16;
        for (int i = 0; ok && i < g->n_inputs; i++) {
            const il_value *v = &g->values[g->inputs[i]];
            snprintf(path, sizeof path, "%s/%s/test_data_set_0/input_%d.pb", IL_ONNX_NODE_DIR, de->d_name, i);
            ok = !il_tensor_load_pb(path, &in[i], NULL);
            if (ok && in[i]->dtype == IL_U16 && v->dtype == IL_BF16) in[i]->dtype = IL_BF16;
            /* a GPU plan prepares its nodes for the declared shapes: data of other shapes (or
             * symbolic dims) would be another test */
            ok = ok && v->rank == in[i]->rank;
            for (int d = 0; ok && d < v->rank; d++) ok = v->dims[d] == in[i]->dims[d];
        }
        il_plan *r = NULL;
        il_plan_opts ro = {.reference = 1, .threads = 1};
        ok = ok && !il_plan_create(g, &ro, &r) && !il_plan_run(r, in, g->n_inputs);
        il_plan_free(r);
        il_error_clear();
        if (ok) {
            tests++;
            gpu_vs_ref(g, in, 1, IL_PREC_FP32, T_SUM, de->d_name, 0);
            on_cuda += last_on_acc > 0;
        }
        for (int i = 0; i < 16; i++) il_tensor_free(in[i]);
        il_graph_free(g);
    }
    closedir(d);
    how.quiet = 0;
    printf("(%d node tests, %d of them on cuda kernels, %d failed) ", tests, on_cuda,
           (int)(CU_get_number_of_failures() - failures));
    CU_ASSERT(tests > 500);
}

/* Without a GPU: every node the -O2 tiny BERT and ViT run has a cuda kernel whose supports()
 * takes it, in float32 (Conv included: im2col) and in fp16 (all but Conv), as the planner
 * would ask it; and for the dynamo exports of both (GatherND). */
static int placed(const il_graph *g, const il_shapes *s, int k, int prec) {
    const il_node *n = &g->nodes[k];
    il_tensor inb[32], *in[32], outb[8], *out[8];
    il_kctx c;
    if (!il_test_node_view(g, s, k, prec, inb, in, outb, out, &c)) return 0;
    const il_kernel *cand[16];
    int nc = il_kernels_of(n->domain, n->op_type, "cuda", c.opset, cand, 16), ok = 0;
    for (int i = 0; i < nc && !ok; i++) ok = il_kernel_accepts(cand[i], &c);
    return ok;
}

static void test_placement(void) {
    static const char *models[] = {IL_TESTDATA "/tiny_bert_legacy/model.onnx", IL_TESTDATA "/tiny_vit_legacy/model.onnx",
                                   IL_TESTDATA "/tiny_bert_dynamo/model.onnx", IL_TESTDATA "/tiny_vit_dynamo/model.onnx"};
    if (!il_kernel_find("", "MatMul", "cuda", "cublas")) {
        printf("skipped: not built with CUDA ");
        return;
    }
    for (int m = 0; m < 4; m++) {
        il_graph *g;
        il_shapes *s;
        IL_ASSERT_OK(il_onnx_load(models[m], &g));
        il_pass_opts po = {.seed = 1};
        IL_ASSERT_OK(il_pipeline_run(g, il_pass_preset(2), &po, NULL, 0, NULL));
        int heads;
        CU_ASSERT_EQUAL(split_for_gpu(g, &heads), 4); /* SkipLayerNorms; BERT: 2 post-LN blocks; ViT: 3 pre-LN + final */
        CU_ASSERT_EQUAL(heads, m % 2 ? 0 : 2); /* the BERTs' head transposes were folded; the ViTs' exports differ */
        IL_ASSERT_OK(il_infer_shapes(g, 2, NULL, 0, &s));
        int missing = 0, nodes = 0;
        for (int k = 0; k < g->n_nodes; k++) {
            if (s->folded[k]) continue;
            nodes++;
            for (int prec = IL_PREC_FP32; prec <= IL_PREC_FP16; prec += IL_PREC_FP16) {
                if (prec && strstr(g->nodes[k].op_type, "Conv")) continue;
                if (placed(g, s, k, prec)) continue;
                fprintf(stderr, "\n  %s: node '%s' (%s) has no cuda kernel in %s", models[m], g->nodes[k].name,
                        g->nodes[k].op_type, prec_name(prec));
                missing++;
            }
        }
        CU_ASSERT(nodes > 20);
        CU_ASSERT_EQUAL(missing, 0);
        /* what a GPU run counts for the folded nodes: as the planner does, they have a kernel
         * (the cpu's) and no device, and the count must pass over them (the session 9 H100 run
         * reported two of them as fallbacks) */
        int folded_bad = 0;
        for (int k = 0; k < g->n_nodes; k++)
            if (s->folded[k] && !g->nodes[k].dead) folded_bad += bad_fallback(g, s, k, 0, models[m]);
        CU_ASSERT_EQUAL(folded_bad, 0);
        il_shapes_free(s);
        il_graph_free(g);
    }
}

/* Last: every cuda kernel but the convolutions ran in some case above, in float32 and in half. */
static void test_every_kernel_run(void) {
    if (!have_gpu()) return;
    int n, missing = 0;
    const il_kernel *const *all = il_kernel_all(&n);
    for (int i = 0; i < n; i++) {
        if (strcmp(all[i]->backend, "cuda") || all[i]->role != IL_KERNEL_FORWARD || strstr(all[i]->op, "Conv") ||
            !strcmp(all[i]->name, "cusparselt-2:4"))
            continue; /* the GPU trainer's kernels (role backward) have train-cuda; 2:4 has cuda-sparse24 */
        for (int h = 0; h < 2; h++) {
            int seen = 0;
            for (int j = 0; j < n_used[h]; j++) seen |= used[h][j] == all[i];
            if (seen) continue;
            fprintf(stderr, "\n  cuda kernel %s%s%s/%s: no %s case runs it", all[i]->domain, *all[i]->domain ? ":" : "",
                    all[i]->op, all[i]->name, h ? "half-precision" : "float32");
            missing++;
        }
    }
    CU_ASSERT_EQUAL(missing, 0);
}

IL_SUITE("cuda-ops", {"placement of the -O2 tiny BERT and ViT (no GPU needed)", test_placement},
         {"unary ops and activations", test_unary}, {"binary ops with broadcasting", test_binary},
         {"Sum, Mean, Max, Min (1-3 inputs), PRelu, LogSoftmax", test_prelu_logsoftmax},
         {"comparisons, logic, Where", test_compare_logic_where}, {"Cast", test_cast},
         {"Transpose, Concat, Split, Slice, Pad, Resize, Gather(ND), Expand, Tile, DepthToSpace, copies", test_movement}, {"MatMul, FusedMatMul", test_matmul},
         {"Gemm, FusedGemm", test_gemm}, {"Attention", test_attention},
         {"Softmax, Layer/Instance/GroupNormalization, Reduce*, ArgMax/ArgMin", test_softmax_norm_reduce},
         {"pools, BatchNormalization", test_cnn_ops}, {"the ONNX node suite on cuda kernels (fp32)", test_node_suite}, {"tiny BERT and ViT (both exports) -O2 vs the cpu", test_models},
         {"every cuda kernel is run (f32 and half)", test_every_kernel_run})
