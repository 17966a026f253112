/*
 * plan_layout.c - which activations a plan keeps in the CPU kernels' native layout.
 *
 * oneDNN's fast convolutions and pools work on a layout of their own (on this project's AVX-512
 * Xeon with oneDNN 2.6 channels-last, elsewhere channels in blocks of one vector, nChw16c). A
 * kernel that meets plain NCHW tensors reorders its input into that layout and its output back
 * on every call: two extra passes over the activations per node, a large share of a small
 * network's convolutions (the Fashion-MNIST teacher) and of MobileNet's cheap 1x1 and depthwise
 * layers. As ONNX Runtime's NCHWc transformer does, the plan instead keeps a value native when
 * its producer can write it so and every consumer can read it so (each kernel says which of its
 * inputs and outputs can, il_kernel.layouts); the reorder then runs once, where a chain of such
 * kernels starts (its first kernel reads plain) or ends (its last writes plain). Graph inputs and
 * outputs, constants, values known at plan time and values of unknown shape stay plain, so
 * nothing outside the plan ever sees native bytes. A value that one plain kernel reads stays
 * plain too; its native readers reorder it themselves, as before. The plan reserves
 * il_blocked_bytes for a native value, which holds any of the layouts.
 *
 * An accelerator plan makes the same choice among the nodes placed on it, with the backend's
 * native layout: for cuda, channels-last (NHWC), which cuDNN's tensor-core convolutions read
 * and write directly (engine/cuda/conv_cudnn.c); a value read by a cpu node stays plain.
 */
#include "plan_int.h"

int il_cpu_channel_block(void) {
    static int b;
    if (!b) b = __builtin_cpu_supports("avx512f") ? 16 : 8;
    return b;
}

size_t il_blocked_bytes(const il_tensor *t) {
    int64_t b = il_cpu_channel_block();
    size_t n = (size_t)t->dims[0] * (size_t)((t->dims[1] + b - 1) / b * b) * il_dtype_size(t->dtype);
    for (int d = 2; d < t->rank; d++) n *= (size_t)t->dims[d];
    return n;
}

void il_plan_blocked_masks(const il_plan *p, int k, il_kctx *c) {
    const il_node *n = &p->g->nodes[k];
    c->blocked_in = c->blocked_out = 0;
    c->out_cstride = 0;
    c->out_over_in = 0;
    int y = n->n_outputs > 0 ? n->outputs[0] : -1;
    for (int i = 0; p->over && y >= 0 && p->over[y] >= 0 && i < n->n_inputs && i < 32 && !c->out_over_in; i++)
        if (n->inputs[i] == p->over[y]) c->out_over_in = (uint32_t)1 << i;
    if (!p->blocked) return;
    if (p->cstride && n->n_outputs > 0 && n->outputs[0] >= 0) c->out_cstride = p->cstride[n->outputs[0]];
    for (int i = 0; i < n->n_inputs && i < 32; i++)
        if (n->inputs[i] >= 0 && p->blocked[n->inputs[i]]) c->blocked_in |= (uint32_t)1 << i;
    for (int i = 0; i < n->n_outputs && i < 32; i++)
        if (n->outputs[i] >= 0 && p->blocked[n->outputs[i]]) c->blocked_out |= (uint32_t)1 << i;
}

/* A value the plan may hold blocked: computed at run time, float32 or 8-bit NCHW-like of known
 * shape. (uint8/int8 activations of the INT8 kernels are native channels-last: dnnl_q.h.) */
static int eligible(const il_plan *p, int v) {
    const il_value *x = &p->g->values[v];
    const il_tensor *t = &p->s->info[v];
    if (x->constant || p->s->known[v] || x->is_input || x->is_output || x->producer < 0) return 0;
    int dt_ok = t->dtype == IL_F32 || t->dtype == IL_U8 || t->dtype == IL_I8;
    return dt_ok && t->rank >= 3 && t->rank <= 5 && il_shape_known(t) && il_tensor_numel(t) > 0;
}

/* Concats written in place: where a Concat's kernel takes it (il_kernel.in_place: native
 * channels-last along the channels) and every input is a native value that only this Concat
 * reads, made by a kernel that can write a channel slice of a wider tensor (strided_out, no
 * residual input), each input is written straight into its channels of the output
 * (p->cat_root, cat_off, cstride; plan_slots lays it there) and the Concat has nothing left to
 * copy. SqueezeNet's Fire modules joined their two expand convs with a copy of both, 8% of the
 * run at batch 1. */
static void concat_in_place(il_plan *p) {
    const il_graph *g = p->g;
    int nv = g->n_values;
    int *uses = calloc((size_t)nv + 1, sizeof *uses);
    for (int k = 0; k < g->n_nodes && uses; k++)
        for (int i = 0; !g->nodes[k].dead && i < g->nodes[k].n_inputs; i++)
            if (g->nodes[k].inputs[i] >= 0) uses[g->nodes[k].inputs[i]]++;
    il_tensor inb[64], *in[64], outb[16], *out[16];
    for (int j = 0; j < p->n_order && uses && !p->acc; j++) {
        int k = p->order[j];
        const il_node *n = &g->nodes[k];
        const il_kernel *kn = p->kern[k];
        if (p->s->folded[k] || !kn || !kn->in_place || n->n_outputs != 1 || n->n_inputs > 64 || n->outputs[0] < 0)
            continue;
        int y = n->outputs[0], ok = p->blocked[y];
        il_kctx c;
        il_plan_node_view(p, k, inb, in, outb, out, &c);
        ok = ok && kn->in_place(&c);
        const il_tensor *ty = &p->s->info[y];
        int64_t coff = 0;
        for (int i = 0; i < n->n_inputs && ok; i++) {
            int x = n->inputs[i], pk = x >= 0 ? g->values[x].producer : -1;
            const il_node *pn = pk >= 0 ? &g->nodes[pk] : NULL;
            ok = pn && p->blocked[x] && uses[x] == 1 && !g->values[x].is_output && p->kern[pk] &&
                 p->kern[pk]->strided_out && !p->s->folded[pk] && pn->outputs[0] == x &&
                 !(pn->n_inputs > 3 && pn->inputs[3] >= 0) && p->cat_root[x] < 0 &&
                 coff * 4 + il_blocked_bytes(&p->s->info[x]) <= il_blocked_bytes(ty);
            coff += p->s->info[x >= 0 ? x : y].dims[1];
        }
        for (int i = 0, c0 = 0; i < n->n_inputs && ok; i++) {
            int x = n->inputs[i];
            p->cat_root[x] = y;
            p->cat_off[x] = (int64_t)c0 * (int64_t)sizeof(float);
            p->cstride[x] = ty->dims[1];
            c0 += (int)p->s->info[x].dims[1];
        }
    }
    free(uses);
}

/* Outputs written over an input: where a kernel offers it (il_kernel.writes_over: a
 * convolution's residual Z, which oneDNN's sum post-op reads from the destination itself) and
 * nothing reads that input after the node (a bottleneck's first conv reads it before), output 0
 * takes the input's slot (plan_slots), in the same layout and shape, and the kernel has nothing
 * to copy. ResNet-50's residual 1x1 convolutions copied Z
 * into Y first or read it through a binary add post-op, which oneDNN 2.6's brgconv does not take
 * (its jit_1x1 then ran: 512 -> 2048 at 7x7, one thread, weights cold, 1.31 against 0.89 ms). */
static void outputs_over_inputs(il_plan *p) {
    const il_graph *g = p->g;
    int *lastj = malloc(((size_t)g->n_values + 1) * sizeof *lastj); /* the step of each value's last reader */
    for (int v = 0; v < g->n_values && lastj; v++) lastj[v] = -1;
    for (int j = 0; j < p->n_order && lastj; j++)
        for (int i = 0; !p->s->folded[p->order[j]] && i < g->nodes[p->order[j]].n_inputs; i++)
            if (g->nodes[p->order[j]].inputs[i] >= 0) lastj[g->nodes[p->order[j]].inputs[i]] = j;
    il_tensor inb[64], *in[64], outb[16], *out[16];
    for (int j = 0; j < p->n_order && lastj && !p->acc; j++) {
        int k = p->order[j];
        const il_node *n = &g->nodes[k];
        const il_kernel *kn = p->kern[k];
        if (p->s->folded[k] || !kn || !kn->writes_over || n->n_outputs < 1 || n->outputs[0] < 0 || n->n_inputs > 64 ||
            n->n_outputs > 16)
            continue;
        il_kctx c;
        il_plan_node_view(p, k, inb, in, outb, out, &c);
        int i = kn->writes_over(&c), y = n->outputs[0], z = i >= 0 && i < n->n_inputs ? n->inputs[i] : -1, twice = 0;
        for (int e = 0; e < n->n_inputs && z >= 0; e++) twice |= e != i && n->inputs[e] == z;
        if (z < 0 || twice || lastj[z] != j || p->blocked[z] != p->blocked[y] || p->cat_root[z] >= 0 || p->cat_root[y] >= 0 ||
            p->cstride[y] || !eligible(p, z) || g->values[y].is_output)
            continue;
        const il_tensor *tz = &p->s->info[z], *ty = &p->s->info[y];
        if (tz->dtype == ty->dtype && tz->rank == ty->rank && !memcmp(tz->dims, ty->dims, (size_t)ty->rank * sizeof *ty->dims))
            p->over[y] = z;
    }
    free(lastj);
}

il_status il_plan_choose_layouts(il_plan *p) {
    const il_graph *g = p->g;
    int nv = g->n_values, nn = g->n_nodes;
    memset(p->blocked, 0, (size_t)nv);
    for (int v = 0; v < nv; v++) p->cat_root[v] = p->over[v] = -1, p->cat_off[v] = p->cstride[v] = 0;
    if (p->o.reference) return IL_OK; /* the reference reads plain */
    uint32_t *in_ok = calloc((size_t)nn + 1, sizeof *in_ok), *out_ok = calloc((size_t)nn + 1, sizeof *out_ok);
    /* per value: readers seen, and whether all of them read it blocked */
    int *readers = calloc((size_t)nv + 1, sizeof *readers);
    unsigned char *all_ok = malloc((size_t)nv + 1);
    if (!in_ok || !out_ok || !readers || !all_ok) {
        free(in_ok), free(out_ok), free(readers), free(all_ok);
        return il_error(IL_ERR_OOM, "out of memory choosing layouts");
    }
    memset(all_ok, 1, (size_t)nv + 1);
    il_tensor inb[64], *in[64], outb[16], *out[16];
    int any = 0;
    for (int j = 0; j < p->n_order; j++) {
        int k = p->order[j];
        const il_node *n = &g->nodes[k];
        if (p->s->folded[k]) continue;
        /* An accelerator plan: its kernels' native layout (cuda: channels-last) only, so a value
         * is native only between two of them; a cpu node there reads and writes plain. */
        int here = p->acc ? p->on_acc[k] : 1;
        if (here && p->kern[k] && p->kern[k]->layouts && n->n_inputs <= 64 && n->n_outputs <= 16) {
            il_kctx c;
            il_plan_node_view(p, k, inb, in, outb, out, &c);
            p->kern[k]->layouts(&c, &in_ok[k], &out_ok[k]);
            any |= out_ok[k] != 0;
        }
        for (int i = 0; i < n->n_inputs; i++) {
            int v = n->inputs[i];
            if (v < 0) continue;
            readers[v]++;
            if (i >= 32 || !(in_ok[k] >> i & 1)) all_ok[v] = 0;
        }
    }
    for (int j = 0; j < p->n_order && any; j++) {
        int k = p->order[j];
        const il_node *n = &g->nodes[k];
        for (int i = 0; i < n->n_outputs && i < 32; i++) {
            int v = n->outputs[i];
            if (v >= 0 && (out_ok[k] >> i & 1) && readers[v] > 0 && all_ok[v] && eligible(p, v)) p->blocked[v] = 1;
        }
    }
    free(in_ok), free(out_ok), free(readers), free(all_ok);
    if (any) concat_in_place(p);
    outputs_over_inputs(p);
    return IL_OK;
}

int il_plan_value_blocked(const il_plan *p, int v) {
    return p->blocked && v >= 0 && v < p->g->n_values && p->blocked[v];
}
