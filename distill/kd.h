/*
 * kd.h - internal to distill/: the teacher side of knowledge distillation, used by il_fit.
 *
 * The teacher is any inference graph and runs through the engine's executor (il_plan_*), so
 * a fused, pruned or INT8 teacher teaches as well as the float one. For feature (hint)
 * distillation the named teacher tensor is made an extra graph output of a clone, and a
 * learned 1x1 adapter maps the student's tensor onto it (FitNets, Romero et al. 2015):
 *   L_hint = w * mean((A s - t)^2),  A [Ct, Cs] applied at every position.
 */
#ifndef IL_KD_H
#define IL_KD_H

#include "distill.h"

typedef struct kd_teacher kd_teacher;

/* With backend CUDA the teacher runs as the forward of a GPU trainer (its inference mode) when
 * all its ops have CUDA kernels, the hint tensor read back from it; else through the CPU engine.
 * A teacher for batches of up to `batch` images; hint names may both be NULL. */
il_status kd_create(const il_graph *teacher, const char *hint_teacher, const char *hint_student, double hint_weight,
                    int batch, int threads, uint64_t seed, il_backend backend, kd_teacher **out);
void kd_free(kd_teacher *k);
/* The teacher's preprocessing (from its metadata). */
const il_preproc *kd_preproc(const kd_teacher *k);
/* Run the teacher on x (float32 [n, C, H, W], the teacher's preprocessing); its logits. */
il_status kd_run(kd_teacher *k, const il_tensor *x, const il_tensor **logits);
/* Hint loss on the student's activation after a forward: adds its gradient to the student
 * (il_trainer_add_grad), updates the adapter with SGD at lr, returns the loss in *loss. */
il_status kd_hint(kd_teacher *k, il_trainer *student, double lr, double *loss);

#endif
