/*
 * distill.c - the teacher side of knowledge distillation (kd.h): the teacher's plan, its
 * preprocessing, and the feature-hint adapter with its loss, gradient and update.
 * The logit loss itself (alpha T^2 KL + (1 - alpha) CE) is il_loss_kd in loss.c.
 */
#include "kd.h"
#include "engine/ops/kernel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct kd_teacher {
    il_graph *g;          /* the teacher, with the hint tensor as an extra output */
    il_plan *plan;
    il_trainer *gpu;      /* the teacher on the GPU (inference forward), NULL: the plan runs it */
    il_preproc pp;
    int hint_out;         /* plan output index of the teacher's hint tensor, -1: none */
    char *hint_teacher, *hint_student;
    double hint_weight;
    float *A, *mA, *dA;   /* adapter [ct, cs], its momentum and gradient */
    int64_t ct, cs;
    uint64_t rng;
};

il_status kd_create(const il_graph *teacher, const char *hint_teacher, const char *hint_student, double hint_weight,
                    int batch, int threads, uint64_t seed, il_backend backend, kd_teacher **out) {
    *out = NULL;
    if (!hint_teacher != !hint_student)
        return il_error(IL_ERR_INVALID, "feature distillation needs both a teacher and a student tensor name");
    kd_teacher *k = calloc(1, sizeof *k);
    k->g = il_graph_clone(teacher);
    k->hint_out = -1;
    k->hint_weight = hint_weight;
    k->rng = seed ? seed * 0xD1B54A32D192ED03ull : 77;
    il_status st = il_preproc_from_meta(teacher, &k->pp);
    if (st) goto fail;
    if (hint_teacher) {
        int v = il_graph_find_value(k->g, hint_teacher);
        if (v < 0 || (k->g->values[v].producer < 0 && !k->g->values[v].is_input)) {
            st = il_error(IL_ERR_INVALID, "the teacher has no computed tensor named '%s'", hint_teacher);
            goto fail;
        }
        k->hint_out = k->g->n_outputs;
        il_graph_add_output(k->g, v);
        k->hint_teacher = strdup(hint_teacher);
        k->hint_student = strdup(hint_student);
    }
    if (backend == IL_BACKEND_CUDA) {
        il_trainer_opts to = {.dtype = IL_F32, .threads = threads, .seed = seed, .backend = IL_BACKEND_CUDA};
        if (!il_trainer_create(k->g, &to, &k->gpu)) {
            *out = k;
            return IL_OK;
        }
        k->gpu = NULL; /* an op without a CUDA kernel: the CPU engine teaches */
    }
    il_plan_opts po = {.backend = IL_BACKEND_CPU, .threads = threads, .batch = batch};
    if ((st = il_plan_create(k->g, &po, &k->plan))) {
        il_error_wrap(st, "teacher: ");
        goto fail;
    }
    *out = k;
    return IL_OK;
fail:
    kd_free(k);
    return st;
}

void kd_free(kd_teacher *k) {
    if (!k) return;
    il_plan_free(k->plan);
    il_trainer_free(k->gpu);
    il_graph_free(k->g);
    free(k->hint_teacher), free(k->hint_student);
    free(k->A), free(k->mA), free(k->dA);
    free(k);
}

const il_preproc *kd_preproc(const kd_teacher *k) { return &k->pp; }

il_status kd_run(kd_teacher *k, const il_tensor *x, const il_tensor **logits) {
    if (k->gpu) {
        il_status st = il_trainer_forward(k->gpu, x, 0, logits);
        return st ? il_error_wrap(st, "teacher: ") : IL_OK;
    }
    il_tensor *in = (il_tensor *)x;
    il_status st = il_plan_run(k->plan, &in, 1);
    if (st) return il_error_wrap(st, "teacher: ");
    *logits = il_plan_output(k->plan, 0);
    return IL_OK;
}

static double randn(uint64_t *rng) {
    double u1 = il_rand_uniform(rng), u2 = il_rand_uniform(rng);
    return sqrt(-2.0 * log(u1 > 1e-300 ? u1 : 1e-300)) * cos(2.0 * M_PI * u2);
}

il_status kd_hint(kd_teacher *k, il_trainer *student, double lr, double *loss) {
    *loss = 0;
    if (k->hint_out < 0) return IL_OK;
    const il_tensor *t = k->gpu ? il_trainer_value(k->gpu, k->hint_teacher) : il_plan_output(k->plan, k->hint_out);
    const il_tensor *s = il_trainer_value(student, k->hint_student);
    if (!t) return il_error(IL_ERR_INVALID, "the teacher's tensor '%s' did not come back from the GPU", k->hint_teacher);
    if (!s) return il_error(IL_ERR_INVALID, "the student has no tensor named '%s'", k->hint_student);
    char a[96], b[96];
    int ok = s->dtype == IL_F32 && t->dtype == IL_F32 && s->rank == t->rank && s->rank >= 2 && s->dims[0] == t->dims[0];
    for (int i = 2; ok && i < s->rank; i++) ok = s->dims[i] == t->dims[i];
    if (!ok)
        return il_error(IL_ERR_SHAPE, "hint tensors must be float32 [N, C, ...] with the same N and spatial size: "
                        "student '%s' %s, teacher %s", k->hint_student, il_shape_str(s->rank, s->dims, a, sizeof a),
                        il_shape_str(t->rank, t->dims, b, sizeof b));
    int64_t n = s->dims[0], cs = s->dims[1], ct = t->dims[1], sp = il_tensor_numel(s) / (n * cs);
    if (!k->A) {
        k->ct = ct, k->cs = cs;
        k->A = malloc((size_t)(ct * cs) * sizeof(float));
        k->mA = calloc((size_t)(ct * cs), sizeof(float));
        k->dA = malloc((size_t)(ct * cs) * sizeof(float));
        for (int64_t i = 0; i < ct * cs; i++) k->A[i] = (float)(randn(&k->rng) / sqrt((double)cs));
    }
    float *r = malloc((size_t)(ct * sp) * sizeof(float));
    il_tensor *ds = il_tensor_new(IL_F32, s->rank, s->dims);
    if (!r || !ds) {
        free(r);
        il_tensor_free(ds);
        return IL_ERR_OOM;
    }
    memset(k->dA, 0, (size_t)(ct * cs) * sizeof(float));
    double scale = 2.0 * k->hint_weight / (double)il_tensor_numel(t), sum = 0;
    for (int64_t i = 0; i < n; i++) {
        const float *S = (const float *)s->data + i * cs * sp, *Tt = (const float *)t->data + i * ct * sp;
        il_sgemm(0, 0, ct, sp, cs, 1.0f, k->A, cs, S, sp, 0.0f, r, sp); /* r = A s */
        for (int64_t j = 0; j < ct * sp; j++) {
            r[j] -= Tt[j];
            sum += (double)r[j] * r[j];
            r[j] *= (float)scale; /* r is now dL/d(A s) */
        }
        il_sgemm(0, 1, ct, cs, sp, 1.0f, r, sp, S, sp, 1.0f, k->dA, cs);                         /* dA += r s^T */
        il_sgemm(1, 0, cs, sp, ct, 1.0f, k->A, cs, r, sp, 0.0f, (float *)ds->data + i * cs * sp, sp); /* ds = A^T r */
    }
    free(r);
    *loss = k->hint_weight * sum / (double)il_tensor_numel(t);
    for (int64_t i = 0; i < ct * cs; i++) {
        k->mA[i] = 0.9f * k->mA[i] + k->dA[i];
        k->A[i] -= (float)lr * k->mA[i];
    }
    il_status st = il_trainer_add_grad(student, k->hint_student, ds);
    il_tensor_free(ds);
    return st;
}
