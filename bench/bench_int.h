/*
 * bench_int.h - shared between the harness's own files (not a public interface).
 */
#ifndef IL_BENCH_INT_H
#define IL_BENCH_INT_H

#include "bench.h"

/* The evaluation set of a run: inputs (one float input, [n, sample...]) and, when the set is
 * labelled, the labels. Built from the model's data set (distill/) or seeded random inputs. */
typedef struct il_evalset {
    il_tensor *x;       /* [n, ...] float32, the model's input 0 with the batch dim = n */
    int32_t *y;         /* n labels, or NULL (random inputs: agreement only) */
    int64_t n;
    char name[64];      /* "fashion-mnist:test", "random" */
} il_evalset;

/* Apply v->pipeline to the model and save the result under cache_dir; path gets the file to
 * measure (v->model itself for O0). */
il_status il_bench_derive(const il_bench_opts *o, const il_variant *v, char *path, size_t n);
/* Model file facts: size, sha256, parameters, sparsity, precision, FLOPs per sample. */
il_status il_bench_model_facts(const char *path, const il_graph *g, il_run_record *r);
/* Inputs for timing: one tensor per graph input with batch b, from the evaluation set's first
 * samples when there is one, else seeded random values. Caller frees each. */
il_status il_bench_inputs(const il_graph *g, const il_evalset *e, int b, uint64_t seed, il_tensor **in);
/* The evaluation set for g: dataset spec (v->dataset, metadata, or guessed by shape) or random. */
il_status il_bench_evalset(const il_graph *g, const il_variant *v, int64_t limit, uint64_t seed, il_evalset *e);
void il_evalset_free(il_evalset *e);
/* Run g on e's inputs in batches of b on the given backend; *out [n, ...] output 0. */
il_status il_bench_outputs(const il_graph *g, const il_evalset *e, int b, il_backend bk, int threads, il_tensor **out);
/* Accuracy (top-1/top-5 when labels exist) and agreement with the parent's outputs. */
void il_bench_accuracy(const il_tensor *out, const il_evalset *e, il_run_record *r);
void il_bench_agreement(const il_tensor *out, const il_tensor *parent, il_run_record *r);
/* A peer engine (bench/peers/): one process per measurement, driven through the same trial
 * and QPS-search code as inferlab. inputs is "name=file.npy" lines, one per graph input. */
typedef struct il_peer {
    const il_bench_opts *o;
    const il_variant *v;
    const char *model, *inputs;
    int64_t peak_host_bytes, peak_device_bytes; /* the largest any measurement reported */
    char version[64];
    char gpu[128], gpu_cc[16], cuda_version[32], cudnn_version[32]; /* a GPU peer's device, as it reported */
} il_peer;
il_status il_peer_trial(void *peer, const il_scenario *sc, il_trial *out);
/* Run the peer on in_npy ([n, ...]) and write its output 0 to out_npy. */
il_status il_peer_eval(il_peer *p, const char *in_npy, const char *out_npy);

/* The user's inputs (inputs.c): bench --input NAME=FILE / --inputs DIR. */
int il_bench_has_inputs(const il_bench_opts *o);
/* Timing inputs at batch b: the user's where given (samples cut or repeated to b), else as
 * il_bench_inputs. in has g->n_inputs slots; the caller frees each. */
il_status il_bench_timing_inputs(const il_bench_opts *o, const il_graph *g, int b, il_tensor **in);
/* Evaluation inputs for any model: x[i] = [n, ...] for every input i, the user's (their first
 * input's sample count wins: *got_n) or random within each input's valid range. */
il_status il_bench_eval_inputs(const il_bench_opts *o, const il_graph *g, int64_t n, il_tensor **x, int64_t *got_n);
/* Run g over the n samples of x in batches of b; *out [n, ...] output 0 as float32. With plan
 * (built for g at batch b: the variant's own, its precision and kernels) that plan runs; else
 * one is made with po (batch set to b). */
il_status il_bench_eval_outputs(const il_graph *g, il_tensor **x, int64_t n, int b, const il_plan_opts *po,
                                il_plan *plan, il_tensor **out);

/* GPU runs (gpu.c): device memory used now (cudaMemGetInfo; -1 without a GPU); r's GPU, its
 * driver and library versions - from this process's CUDA runtime (peer NULL: inferlab) or from
 * what the peer reported - and how peak_device_bytes was measured. */
int64_t il_gpu_mem_used(void);
void il_gpu_facts(il_run_record *r, const il_peer *peer);

/* One variant being measured (runner.c), in phases so that sweep.c can interleave the trials
 * of several variants (A B A B) instead of measuring all of A, then all of B:
 *   il_meas_open   derive and load the model, plan it (or ready the peer's inputs); r is
 *                  initialized and stays the caller's;
 *   il_meas_trial  trial t (0, 1, ... in order; the first runs the QPS search when asked);
 *   il_meas_finish machine load, aggregate figures, validity, peak memory, profile, accuracy
 *                  and agreement;
 *   il_meas_free   releases m (not r). */
typedef struct il_meas il_meas;
il_status il_meas_open(const il_bench_opts *o, const il_variant *v, il_run_record *r, il_meas **m);
il_status il_meas_trial(il_meas *m, int t);
il_status il_meas_finish(il_meas *m);
void il_meas_free(il_meas *m);

#endif
