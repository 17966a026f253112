/*
 * cuda_emu.c - the device layer the cuda kernels call, emulated on the host, and the executor
 * of cuda_emu.h. Built only by tests/cuda_emu.sh (never into the library or make test's binary):
 * "device" pointers are host memory, launches run at once.
 */
#include "cuda_emu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/cuda/cuda.h"
#include "../engine/ops/kernel.h"
#include "test.h"

/* ---------------------------------------------------------------- half types */

static uint16_t to_bf16(float f) { /* round to nearest even, as __float2bfloat16_rn */
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);
    x += 0x7fffu + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

static float ld(const void *p, il_dtype dt, int64_t i) {
    if (dt == IL_F16) return il_f16_to_f32(((const uint16_t *)p)[i]);
    if (dt == IL_BF16) return il_bf16_to_f32(((const uint16_t *)p)[i]);
    return ((const float *)p)[i];
}

static void st(void *p, il_dtype dt, int64_t i, float v) {
    if (dt == IL_F16) ((uint16_t *)p)[i] = il_f32_to_f16(v);
    else if (dt == IL_BF16) ((uint16_t *)p)[i] = to_bf16(v);
    else ((float *)p)[i] = v;
}

/* ---------------------------------------------------------------- the device layer */

il_status il_cuda_check(const char *what) { return IL_OK; }

void *il_cuda_malloc(size_t bytes) { return malloc(bytes ? bytes : 1); }
void il_cuda_free(void *p) { free(p); }
il_status il_cuda_upload(void *dst, const void *src, size_t bytes) {
    memcpy(dst, src, bytes);
    return IL_OK;
}

/* the rest of the device layer sparselt.cu calls: one in-order "stream", nothing to wait for */
void *il_cuda_stream(void) { return NULL; }
il_status il_cuda_sync(void) { return IL_OK; }
il_status il_cuda_zero(void *dst, size_t bytes) {
    memset(dst, 0, bytes);
    return IL_OK;
}
il_status il_cuda_download(void *dst, const void *src, size_t bytes) {
    memcpy(dst, src, bytes);
    return IL_OK;
}

il_status il_cuda_copy(void *dst, const void *src, size_t bytes) {
    memmove(dst, src, bytes);
    return IL_OK;
}

void il_cuda_convert(const void *src, il_dtype sdt, void *dst, il_dtype ddt, int64_t n) {
    for (int64_t i = 0; i < n; i++) st(dst, ddt, i, ld(src, sdt, i));
}

/* cuBLAS's contract (row-major as cuda.h states it), float sums, one rounding on the store. */
il_status il_cuda_gemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const void *a, int64_t lda,
                       int64_t sa, const void *b, int64_t ldb, int64_t sb, float beta, void *c, int64_t ldc,
                       int64_t sc, int64_t batch, il_dtype dt, int precision) {
    for (int64_t q = 0; q < batch; q++)
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                float acc = 0;
                for (int64_t p = 0; p < k; p++)
                    acc += ld(a, dt, q * sa + (ta ? p * lda + i : i * lda + p)) *
                           ld(b, dt, q * sb + (tb ? j * ldb + p : p * ldb + j));
                int64_t at = q * sc + i * ldc + j;
                st(c, dt, at, alpha * acc + (beta != 0 ? beta * ld(c, dt, at) : 0.0f));
            }
    return IL_OK;
}

il_status il_cuda_sgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                        const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    return il_cuda_gemm(ta, tb, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1, IL_F32, IL_PREC_FP32);
}

/* The im2col convolution's helpers are not emulated: its nodes run on the cpu here. */
static void no_conv(void) {
    fprintf(stderr, "cuda_emu: the im2col conv kernel is not emulated\n");
    abort();
}
void il_cuda_im2col(const float *x, int64_t nb, const il_cuda_win *g, int64_t c0, int64_t cg, float *col) { no_conv(); }
void il_cuda_cm_to_nchw(const float *src, int64_t mg, int64_t nb, int64_t S, int64_t M, int64_t m0, const float *bias,
                        float *y) {
    no_conv();
}
void il_cuda_add(const float *a, const float *b, int64_t n, float *y) { no_conv(); }
void il_cuda_clip(const float *x, int64_t n, float lo, float hi, float *y) { no_conv(); }

/* ---------------------------------------------------------------- the executor */

typedef struct {
    const il_graph *g;
    il_shapes *s;
    il_dtype half;
    il_tensor **dv; /* per value: its "device" copy, in the device dtype */
} emu;

static il_dtype dev_dt(const emu *e, int v) {
    il_dtype t = e->s->info[v].dtype;
    return e->half && t == IL_F32 ? e->half : t;
}

/* t converted to dt (float32 to a half type, a half type to float32; else a copy). */
static il_tensor *convert(const il_tensor *t, il_dtype dt) {
    if (t->dtype == dt || !(dt == IL_F32 || dt == IL_F16 || dt == IL_BF16) ||
        !(t->dtype == IL_F32 || t->dtype == IL_F16 || t->dtype == IL_BF16))
        return il_tensor_clone(t);
    il_tensor *o = il_tensor_new(dt, t->rank, t->dims);
    il_cuda_convert(t->data, t->dtype, o->data, dt, il_tensor_numel(t));
    return o;
}

/* Value v on the "device": computed, an input, or a constant / plan-time value converted once. */
static il_tensor *get(emu *e, int v) {
    if (!e->dv[v]) {
        const il_tensor *k = e->g->values[v].constant ? e->g->values[v].constant : e->s->known[v];
        if (k) e->dv[v] = convert(k, dev_dt(e, v));
    }
    return e->dv[v];
}

/* The kernel the planner would pick: the forced name for this op, else the highest priority
 * whose supports() takes the graph view c. */
static const il_kernel *pick(const il_kctx *c, const char *force) {
    const il_node *n = c->node;
    const il_kernel *cand[16], *best = NULL;
    int nc = il_kernels_of(n->domain, n->op_type, "cuda", c->opset, cand, 16);
    char want[64] = "";
    if (force) {
        size_t l = strlen(n->op_type);
        for (const char *p = force; *p;) {
            const char *end = strchr(p, ',');
            size_t len = end ? (size_t)(end - p) : strlen(p);
            if (len > l && !strncmp(p, n->op_type, l) && p[l] == '=')
                snprintf(want, sizeof want, "%.*s", (int)(len - l - 1), p + l + 1);
            p += len + (end ? 1 : 0);
        }
    }
    for (int i = 0; i < nc; i++) {
        if (want[0] && strcmp(cand[i]->name, want)) continue;
        if (strstr(n->op_type, "Conv")) continue; /* im2col and cuDNN: not emulated, the cpu runs them */
        if (il_kernel_accepts(cand[i], c) && (!best || cand[i]->priority > best->priority)) best = cand[i];
    }
    il_error_clear();
    return best;
}

static il_status run_node(emu *e, int k, const il_kernel **chosen, char *on_cpu, const char *force) {
    const il_graph *g = e->g;
    const il_node *n = &g->nodes[k];
    il_tensor inb[32], *in[32], outb[8], *out[8], *tmp[40] = {0};
    il_status st = IL_OK;
    int prec = e->half == IL_F16 ? IL_PREC_FP16 : e->half == IL_BF16 ? IL_PREC_BF16 : IL_PREC_FP32;
    il_kctx c; /* the graph's float32 view, as supports/prepare get it */
    if (!il_test_node_view(g, e->s, k, prec, inb, in, outb, out, &c))
        return il_error(IL_ERR_UNSUPPORTED, "node '%s': too many values", n->name);
    const il_kernel *kn = pick(&c, force);
    chosen[k] = kn;
    if (kn) { /* prepare on the view, run on the device copies */
        void *state = NULL;
        size_t ws = 0;
        if (kn->prepare && (st = kn->prepare(&c, &state, &ws))) return st;
        for (int i = 0; i < n->n_inputs; i++) {
            if (!in[i]) continue;
            il_tensor *d = get(e, n->inputs[i]);
            inb[i].dtype = d->dtype;
            inb[i].data = d->data;
        }
        for (int i = 0; i < n->n_outputs; i++) {
            int v = n->outputs[i];
            if (v < 0) continue;
            il_tensor_free(e->dv[v]);
            e->dv[v] = il_tensor_new(dev_dt(e, v), outb[i].rank, outb[i].dims);
            memset(e->dv[v]->data, 0x7f, il_tensor_bytes(e->dv[v])); /* an element never written shows */
            outb[i].dtype = e->dv[v]->dtype;
            outb[i].data = e->dv[v]->data;
        }
        c.state = state;
        c.workspace = malloc(ws ? ws : 1);
        c.workspace_bytes = ws;
        st = kn->run(&c);
        free(c.workspace);
        if (kn->release) kn->release(state);
        return st;
    }
    /* no cuda kernel: the cpu reference on float32 copies */
    on_cpu[k] = 1;
    const il_op *op = il_op_find(n->domain, n->op_type);
    if (!op) return il_error(IL_ERR_UNSUPPORTED, "node '%s': op %s unknown", n->name, n->op_type);
    for (int i = 0; i < n->n_inputs; i++) {
        if (!in[i]) continue;
        tmp[i] = convert(get(e, n->inputs[i]), e->s->info[n->inputs[i]].dtype);
        in[i] = tmp[i];
    }
    for (int i = 0; i < n->n_outputs; i++) {
        if (!out[i]) continue;
        tmp[32 + i] = calloc(1, sizeof(il_tensor));
        out[i] = tmp[32 + i];
    }
    c.in = in, c.out = out;
    st = op->infer(&c); /* the shapes of this run's data, as the executor re-infers them */
    for (int i = 0; i < n->n_outputs && !st && !(op->flags & IL_OPF_DYNAMIC_OUT); i++)
        if (out[i]) st = il_kctx_alloc_output(&c, i, out[i]->dtype, out[i]->rank, out[i]->dims);
    if (!st) st = op->ref(&c);
    for (int i = 0; i < n->n_outputs && !st; i++) {
        int v = n->outputs[i];
        if (v < 0) continue;
        il_tensor_free(e->dv[v]);
        e->dv[v] = convert(out[i], dev_dt(e, v));
    }
    for (int i = 0; i < 40; i++) il_tensor_free(tmp[i]);
    return st;
}

il_status il_emu_run(const il_graph *g, il_tensor *const *in, int prec, const char *force, il_tensor **outs,
                     const il_kernel **chosen, char *on_cpu) {
    emu e = {.g = g, .half = prec == IL_PREC_FP16 ? IL_F16 : prec == IL_PREC_BF16 ? IL_BF16 : 0};
    il_status st = il_infer_shapes_for(g, in, &e.s);
    if (st) return st;
    if (il_graph_needs_casts(g, e.s)) { /* a plan's copy would get Casts; not emulated */
        il_shapes_free(e.s);
        return il_error(IL_ERR_UNSUPPORTED, "a graph computing on float16/bfloat16 values");
    }
    int nv = g->n_values, nn = g->n_nodes, left = 0, progress = 1;
    e.dv = calloc((size_t)nv + 1, sizeof *e.dv);
    char *done = calloc((size_t)nn + 1, 1);
    for (int i = 0; i < g->n_inputs; i++) e.dv[g->inputs[i]] = convert(in[i], dev_dt(&e, g->inputs[i]));
    for (int k = 0; k < nn; k++) {
        chosen[k] = NULL, on_cpu[k] = 0;
        done[k] = g->nodes[k].dead || e.s->folded[k];
        left += !done[k];
    }
    while (left && progress && !st) { /* any order the data allows */
        progress = 0;
        for (int k = 0; k < nn && !st; k++) {
            if (done[k]) continue;
            int ready = 1;
            for (int i = 0; i < g->nodes[k].n_inputs; i++) {
                int v = g->nodes[k].inputs[i];
                ready &= v < 0 || get(&e, v) != NULL;
            }
            if (!ready) continue;
            st = run_node(&e, k, chosen, on_cpu, force);
            if (st && !strstr(il_errmsg(), g->nodes[k].name))
                il_error_wrap(st, "node '%s' (%s): ", g->nodes[k].name, g->nodes[k].op_type);
            done[k] = 1, left--, progress = 1;
        }
    }
    if (!st && left) st = il_error(IL_ERR_INVALID, "%d nodes never got their inputs", left);
    for (int i = 0; i < g->n_outputs && !st; i++) {
        il_tensor *d = get(&e, g->outputs[i]);
        outs[i] = d ? convert(d, e.s->info[g->outputs[i]].dtype) : NULL;
    }
    for (int v = 0; v < nv; v++) il_tensor_free(e.dv[v]);
    free(e.dv);
    free(done);
    il_shapes_free(e.s);
    return st;
}
