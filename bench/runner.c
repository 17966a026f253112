/*
 * runner.c - measuring one variant in phases: open (derive the model, plan, inputs), trials
 * through the scenario schedulers (one call each, so sweep.c can interleave variants trial by
 * trial), finish (machine load, validity, peak memory, an optional profiled pass, accuracy and
 * agreement).
 *
 * Order inside a measurement matters for honest figures: the timed trials run first on seeded
 * random inputs, the host peak RSS is read right after them (model, plan, buffers and inputs,
 * not the evaluation set), then profiling (which perturbs timing) and evaluation follow.
 */
#include "bench_int.h"
#include "../passes/passes.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    il_plan *plan;
    il_tensor **in;
    int n_in, batch;
    int resident; /* a GPU plan timed on the device alone: inputs left there by a first run */
} query_ctx;

/* One query: the samples in batches of the plan's size (a multi-stream group may need
 * several engine calls). */
static il_status run_query(void *ctx, int samples) {
    query_ctx *q = ctx;
    il_status st = IL_OK;
    for (int done = 0; done < samples && !st; done += q->batch)
        st = q->resident ? il_plan_rerun(q->plan) : il_plan_run(q->plan, q->in, q->n_in);
    return st;
}

static int64_t peak_rss_bytes(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru)) return -1;
    return (int64_t)ru.ru_maxrss * 1024; /* Linux reports KiB */
}

/* Pool the trials into the run's figures: latency percentiles over every measured query,
 * throughput as mean and spread over trials. */
static void aggregate(il_run_record *r, int server) {
    int64_t total = 0;
    for (int t = 0; t < r->n_trials; t++) total += r->trials[t].n;
    double *all = malloc((size_t)(total ? total : 1) * sizeof *all), tp[256];
    int64_t k = 0;
    int met = 1;
    for (int t = 0; t < r->n_trials; t++) {
        if (all) memcpy(all + k, r->trials[t].lat_ms, (size_t)r->trials[t].n * sizeof *all);
        k += r->trials[t].n;
        if (t < 256) tp[t] = r->trials[t].throughput;
        met &= r->trials[t].bound_met;
    }
    il_lat_summarize(all, all ? total : 0, &r->lat);
    free(all);
    il_spread sp;
    il_spread_of(tp, r->n_trials < 256 ? r->n_trials : 256, &sp);
    r->throughput = sp.mean;
    r->throughput_stddev = sp.stddev;
    r->bound_met = server ? met : -1;
}

/* Server runs with --find-max-qps: estimate the capacity from a short single-stream probe,
 * then bisect between capacity/64 and 1.2x capacity. The trials then run at the found QPS. */
static il_status find_qps(const il_bench_opts *o, il_scenario *sc, il_measure_fn m, void *ctx, il_run_record *r) {
    il_scenario probe = *sc;
    il_trial t;
    probe.kind = IL_SC_SINGLE_STREAM;
    probe.min_seconds = 0.2;
    probe.min_queries = 16;
    il_status st = m(ctx, &probe, &t);
    if (st) return st;
    double cap = t.lat.p50 > 0 ? 1000.0 / t.lat.p50 : 1000;
    il_trial_free(&t);
    double best;
    if ((st = il_find_max_qps(sc, m, ctx, cap / 64, cap * 1.2, 5, &best, NULL))) return st;
    r->max_qps = best;
    sc->target_qps = best > 0 ? best : cap / 64;
    if (best <= 0) snprintf(r->note, sizeof r->note, "no QPS down to %.3g met the p99 bound", cap / 64);
    (void)o;
    return IL_OK;
}

/* Per-node times from a separate profiled plan, averaged over enough runs to be stable. */
static il_status profile(const il_graph *g, const il_plan_opts *po0, il_plan *loaded, il_tensor **in,
                         il_run_record *r) {
    il_plan_opts po = *po0;
    po.profile = 1;
    po.graphs = 0; /* per-node times need each node launched and timed on its own */
    il_plan *p = loaded;
    il_status st = IL_OK;
    if (loaded) il_plan_set_profile(loaded, 1); /* a plan file: its own kernels, timed as built */
    else st = il_plan_create(g, &po, &p);
    if (st) return st;
    double *sum = calloc((size_t)g->n_nodes + 1, sizeof *sum);
    int runs = 0;
    double t0 = il_now();
    st = il_plan_run(p, in, g->n_inputs); /* warm-up */
    while (!st && sum && (runs < 10 || il_now() - t0 < 0.3) && runs < 1000) {
        if ((st = il_plan_run(p, in, g->n_inputs))) break;
        const double *tm = il_plan_node_times(p);
        for (int k = 0; tm && k < g->n_nodes; k++) sum[k] += tm[k];
        runs++;
    }
    r->nodes = calloc((size_t)g->n_nodes + 1, sizeof *r->nodes);
    if (!st && sum && r->nodes) {
        for (int k = 0; k < g->n_nodes; k++) {
            if (g->nodes[k].dead) continue;
            il_node_time *nt = &r->nodes[r->n_nodes++];
            snprintf(nt->name, sizeof nt->name, "%s", g->nodes[k].name ? g->nodes[k].name : "");
            snprintf(nt->op_type, sizeof nt->op_type, "%s", g->nodes[k].op_type);
            const il_kernel *kn = il_plan_kernel(p, k);
            snprintf(nt->kernel, sizeof nt->kernel, "%s%s", kn ? kn->name : "", kn && il_plan_on_acc(p, k) ? "@cuda" : "");
            nt->ms = sum[k] / runs * 1e3;
            nt->macs = il_node_macs(g, il_plan_shapes(p), k);
        }
    }
    free(sum);
    if (loaded) il_plan_set_profile(loaded, 0);
    else il_plan_free(p);
    return st;
}

/* One variant being measured: everything from opening its model to its last trial, so that
 * the sweep can run the trials of several variants in turn (sweep.c). */
struct il_meas {
    const il_bench_opts *o;
    il_variant v;
    il_run_record *r;
    char path[IL_PATH_MAX], parent[IL_PATH_MAX];
    il_graph *g;
    il_scenario sc;
    il_measure_fn m;
    void *mctx;
    /* inferlab */
    il_plan_opts po;
    il_plan *p;
    il_tensor **in;
    query_ctx q;
    il_query_binding b;
    /* a peer: inputs as .npy files in dir, "name=path" lines in spec */
    il_peer peer;
    char dir[64];
    char *spec;
    il_load_mark mark0;
    double plan_load_s; /* a plan file's load time */
    int gpu;            /* inferlab on backend cuda: device memory measured (gpu.c) */
    int resident;       /* its queries rerun on the device alone (gpu_first_run) */
    int64_t dev_bytes;  /* its growth so far, -1 when unknown */
};

/* Device memory of a GPU variant: the growth over the plan's build (begin/end around it) and
 * over each trial (gpu.c says why these windows). */
static void dev_window(il_meas *m, int64_t *mark, int end) {
    if (!m->gpu) return;
    int64_t now = il_gpu_mem_used();
    if (!end) *mark = now;
    else if (now < 0 || *mark < 0) m->dev_bytes = -1;
    else if (m->dev_bytes >= 0 && now > *mark) m->dev_bytes += now - *mark;
}

/* A GPU plan is timed as the PyTorch peer is: on the device alone, its inputs put there by one
 * run now (which also captures its CUDA graph), each query a resident rerun that waits for the
 * device. Unless --copies asks for the host copies, or a node falls back to the cpu (a rerun
 * cannot run those): then every query is a whole run, and the note says so. */
static il_status gpu_first_run(il_meas *m) {
    if (!m->gpu) return IL_OK;
    int acc, fb;
    int64_t up, down;
    il_plan_copies(m->p, &acc, &fb, &up, &down);
    if (m->o->copies || fb) {
        snprintf(m->r->note, sizeof m->r->note, "timed with host copies of inputs and outputs (%s)",
                 fb ? "nodes fall back to the cpu" : "--copies");
        return IL_OK;
    }
    il_status st = il_plan_run(m->p, m->in, m->g->n_inputs);
    if (st) return st;
    m->resident = 1;
    snprintf(m->r->note, sizeof m->r->note, "device time: inputs resident on the GPU, outputs left there (as the "
             "PyTorch peer)");
    return IL_OK;
}

static il_status open_inferlab(il_meas *m) {
    const il_variant *v = &m->v;
    int prec = v->precision[0] ? il_precision_parse(v->precision) : IL_PREC_FP32;
    if (prec < 0) return il_error(IL_ERR_INVALID, "unknown precision '%s'", v->precision);
    m->po = (il_plan_opts){.backend = strcmp(v->backend, "cuda") ? IL_BACKEND_CPU : IL_BACKEND_CUDA,
                           .threads = v->threads, .batch = v->batch, .tactics = m->o->tactics,
                           .timing_cache = m->o->timing_cache, .precision = prec, .graphs = v->graphs};
    il_status st = IL_OK;
    if (!m->in) { /* a plan file's are made already (open_plan) */
        m->in = calloc((size_t)m->g->n_inputs + 1, sizeof *m->in);
        if (!m->in) return il_error(IL_ERR_OOM, "out of memory");
        st = il_bench_timing_inputs(m->o, m->g, v->batch, m->in);
    }
    int64_t mark = -1;
    if (!st && !m->p) {
        m->gpu = m->po.backend == IL_BACKEND_CUDA;
        dev_window(m, &mark, 0);
        st = il_plan_create(m->g, &m->po, &m->p);
        if (!st) st = gpu_first_run(m);
        if (!st) dev_window(m, &mark, 1);
    }
    if (st) return st;
    m->r->peak_activation_bytes = il_plan_peak_bytes(m->p);
    m->q = (query_ctx){m->p, m->in, m->g->n_inputs, v->batch, m->resident};
    m->b = (il_query_binding){run_query, &m->q};
    m->m = il_measure_query;
    m->mctx = &m->b;
    snprintf(m->r->engine_version, sizeof m->r->engine_version, "inferlab %s", IL_VERSION);
    return IL_OK;
}

/* Other engines know only standard ONNX: a variant with ai.inferlab fused ops is measured in its
 * portable form (lower-fused: the same graph, the fusions written back as standard ops, the
 * folding kept), saved beside the derived file; when some op cannot be lowered the variant is
 * refused with that reason. */
static il_status portable_form(il_meas *m) {
    int fused = 0;
    for (int k = 0; k < m->g->n_nodes; k++) fused += !m->g->nodes[k].dead && !strcmp(m->g->nodes[k].domain, "ai.inferlab");
    if (!fused) return IL_OK;
    il_graph *p = il_graph_clone(m->g);
    if (!p) return il_error(IL_ERR_OOM, "out of memory");
    il_status st = il_pass_run(p, "lower-fused", NULL);
    if (st) {
        il_graph_free(p);
        return il_error_wrap(st, "engine %s runs standard ONNX only, and this variant's %d fused op%s cannot all be "
                             "lowered: ", m->v.engine, fused, fused == 1 ? "" : "s");
    }
    char path[IL_PATH_MAX + 16], tmp[IL_PATH_MAX + 48];
    snprintf(path, sizeof path, "%.*s.portable.onnx", (int)(strlen(m->path) > 5 ? strlen(m->path) - 5 : strlen(m->path)),
             m->path);
    snprintf(tmp, sizeof tmp, "%s.tmp%d", path, (int)getpid());
    st = il_onnx_save(p, tmp);
    il_graph_free(p);
    if (!st && rename(tmp, path)) st = il_error(IL_ERR_IO, "cannot rename %s: %s", tmp, strerror(errno));
    if (st) {
        unlink(tmp);
        return st;
    }
    snprintf(m->path, sizeof m->path, "%.*s", (int)sizeof m->path - 1, path);
    snprintf(m->r->note, sizeof m->r->note, "%s measured the portable form (%d fused ops lowered to standard ONNX)",
             m->v.engine, fused);
    return IL_OK;
}

static il_status open_peer(il_meas *m) {
    il_status pst = portable_form(m);
    if (pst) return pst;
    const il_graph *g = m->g;
    snprintf(m->dir, sizeof m->dir, "/tmp/inferlab-peer-XXXXXX");
    if (!mkdtemp(m->dir)) {
        m->dir[0] = 0;
        return il_error(IL_ERR_IO, "cannot create a temporary folder: %s", strerror(errno));
    }
    m->in = calloc((size_t)g->n_inputs + 1, sizeof *m->in);
    m->spec = calloc((size_t)g->n_inputs + 1, IL_PATH_MAX);
    il_status st = m->in && m->spec ? il_bench_timing_inputs(m->o, g, m->v.batch, m->in) : IL_ERR_OOM;
    /* Inputs go as .npy files, one per graph input, "name=path" joined by '\n'. */
    for (int i = 0; !st && i < g->n_inputs; i++) {
        char f[96];
        snprintf(f, sizeof f, "%s/input_%d.npy", m->dir, i);
        st = il_tensor_save_npy(m->in[i], f);
        size_t used = strlen(m->spec);
        snprintf(m->spec + used, (size_t)(g->n_inputs + 1) * IL_PATH_MAX - used, "%s%s=%s", i ? "\n" : "",
                 g->values[g->inputs[i]].name, f);
    }
    m->peer = (il_peer){.o = m->o, .v = &m->v, .model = m->path, .inputs = m->spec, .peak_host_bytes = -1,
                        .peak_device_bytes = -1};
    m->m = il_peer_trial;
    m->mctx = &m->peer;
    return st;
}

void il_meas_free(il_meas *m) {
    if (!m) return;
    il_plan_free(m->p);
    for (int i = 0; m->in && m->g && i < m->g->n_inputs; i++) il_tensor_free(m->in[i]);
    free(m->in);
    free(m->spec);
    if (m->dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", m->dir);
        if (system(cmd)) {} /* a left-over temporary folder is harmless */
    }
    il_graph_free(m->g);
    free(m);
}

/* A plan file: loaded as built (its kernels, memory plan and state, and for a cuda plan its GPU,
 * precision and graphs); the graph is kept as a copy for the facts, the inputs and the parent's
 * comparison. The variant must name what the plan was built for (the CLI takes it from the
 * header: il_bench_plan_target). */
static il_status open_plan(il_meas *m) {
    const il_variant *v = &m->v;
    if (strcmp(v->engine, "inferlab"))
        return il_error(IL_ERR_UNSUPPORTED, "%s is an inferlab plan: %s runs the .onnx it was built from", v->model,
                        v->engine);
    il_variant built = *v;
    il_status st = il_bench_plan_target(m->path, &built);
    if (st) return st;
    if (strcmp(built.backend, v->backend) || strcmp(built.precision, v->precision) || built.graphs != v->graphs)
        return il_error(IL_ERR_INVALID, "%s was built for backend %s%s%s%s: measure it so (or build another plan)",
                        v->model, built.backend, built.precision[0] ? ", precision " : "", built.precision,
                        built.graphs ? ", CUDA graphs" : "");
    if (v->pipeline[0] && strcmp(v->pipeline, "O0"))
        return il_error(IL_ERR_INVALID, "%s is built already: give the pipeline to `inferlab build`, not to bench",
                        v->model);
    double t0 = il_now();
    il_plan_opts lo = {.threads = v->threads};
    int64_t mark = -1;
    m->gpu = !strcmp(v->backend, "cuda");
    dev_window(m, &mark, 0);
    st = il_plan_load(m->path, &lo, &m->p);
    if (st) return st;
    m->plan_load_s = il_now() - t0;
    /* inputs for the first run of a GPU plan (open_inferlab makes them for the rest) */
    m->g = il_graph_clone(il_plan_graph(m->p));
    m->in = m->g ? calloc((size_t)m->g->n_inputs + 1, sizeof *m->in) : NULL;
    if (!m->in) return il_error(IL_ERR_OOM, "out of memory");
    if ((st = il_bench_timing_inputs(m->o, m->g, v->batch, m->in)) || (st = gpu_first_run(m))) return st;
    dev_window(m, &mark, 1);
    return IL_OK;
}

il_status il_meas_open(const il_bench_opts *o, const il_variant *v, il_run_record *r, il_meas **out) {
    il_meas *m = calloc(1, sizeof *m);
    *out = NULL;
    il_record_init(r);
    if (!m) return il_error(IL_ERR_OOM, "out of memory");
    m->o = o;
    m->v = *v;
    m->r = r;
    m->dev_bytes = 0;
    r->v = *v;
    r->seed = o->seed;
    il_bench_timestamp(r->created_at, sizeof r->created_at);
    snprintf(r->experiment, sizeof r->experiment, "%s", o->experiment ? o->experiment : "");
    il_variant_label(v, r->variant, sizeof r->variant);
    il_provenance_collect(r->provenance, sizeof r->provenance);
    il_status st = IL_OK;
    if (il_plan_file_is(v->model) && v->pipeline[0] && strcmp(v->pipeline, "O0"))
        st = il_error(IL_ERR_INVALID, "%s is built already: give the pipeline to `inferlab build`, not to bench",
                      v->model);
    if (!st) st = il_bench_derive(o, v, m->path, sizeof m->path);
    if (!st && il_plan_file_is(m->path)) st = open_plan(m); /* built by `inferlab build`: no passes, no choice */
    else if (!st) st = il_onnx_load(m->path, &m->g);
    if (!st) st = il_graph_verify(m->g);
    if (!st) st = il_bench_model_facts(m->path, m->g, r);
    int64_t fixed = m->g ? il_graph_fixed_batch(m->g) : 0, use;
    if (!st && fixed > 1 && r->flops > 0) r->flops /= fixed; /* inferred at the model's batch: per sample */
    if (!st) st = il_graph_batch(m->g, v->batch, &use);
    /* The FP32 parent: given, or the model a pipeline derived from, or - for another engine or
     * backend - the same file run by inferlab on the CPU. */
    if (v->parent[0]) snprintf(m->parent, sizeof m->parent, "%s", v->parent);
    else if (strcmp(m->path, v->model) || strcmp(v->engine, "inferlab") || strcmp(v->backend, "cpu"))
        snprintf(m->parent, sizeof m->parent, "%s", v->model);
    m->sc = o->sc;
    m->sc.kind = v->scenario;
    m->sc.batch = v->batch;
    r->samples_per_query = v->scenario == IL_SC_MULTI_STREAM
                               ? (m->sc.samples_per_query > 0 ? m->sc.samples_per_query : 8)
                               : v->batch;
    if (!st) st = !strcmp(v->engine, "inferlab") ? open_inferlab(m) : open_peer(m);
    if (!st) {
        r->trials = calloc((size_t)(o->trials > 0 ? o->trials : 1), sizeof *r->trials);
        if (!r->trials) st = il_error(IL_ERR_OOM, "out of memory");
    }
    if (st) {
        il_error_wrap(st, "%s: ", r->variant);
        il_meas_free(m);
        return st;
    }
    *out = m;
    return IL_OK;
}

il_status il_meas_trial(il_meas *m, int t) {
    il_status st = IL_OK;
    if (t == 0) {
        il_load_mark_now(&m->mark0);
        if (m->v.scenario == IL_SC_SERVER && m->o->find_max_qps) st = find_qps(m->o, &m->sc, m->m, m->mctx, m->r);
        if (m->v.scenario == IL_SC_SERVER) {
            m->r->target_qps = m->sc.target_qps;
            m->r->latency_bound_ms = m->sc.latency_bound_ms;
        }
    }
    il_scenario sc = m->sc;
    sc.seed = m->o->seed + (uint64_t)t;
    int64_t mark = -1;
    dev_window(m, &mark, 0);
    if (!st) st = m->m(m->mctx, &sc, &m->r->trials[t]);
    if (!st) dev_window(m, &mark, 1);
    if (st) return il_error_wrap(st, "%s: ", m->r->variant);
    m->r->n_trials = t + 1;
    return IL_OK;
}

/* The OpenMP wait policy this process runs with: cli/main.c says why it chose it. */
static void wait_policy(char *buf, size_t n) {
    const char *why = getenv("INFERLAB_WAIT"), *spin = getenv("GOMP_SPINCOUNT"), *pol = getenv("OMP_WAIT_POLICY");
    if (why && why[0]) snprintf(buf, n, "%s", why);
    else if (pol && pol[0]) snprintf(buf, n, "OMP_WAIT_POLICY=%s (environment)", pol);
    else if (spin && spin[0]) snprintf(buf, n, "GOMP_SPINCOUNT=%s (environment)", spin);
    else snprintf(buf, n, "libgomp default");
}

/* Output 0 of the variant over the n samples of x (one tensor per graph input): by inferlab,
 * or by the peer from .npy files ("NAME=FILE" lines). */
static il_status variant_outputs(il_meas *m, il_tensor **x, int64_t n, il_tensor **out) {
    if (m->p) return il_bench_eval_outputs(m->g, x, n, m->v.batch, &m->po, m->p, out);
    char spec[8192] = "", ev_out[96];
    il_status st = IL_OK;
    for (int i = 0; i < m->g->n_inputs && !st; i++) {
        char f[96];
        size_t used = strlen(spec);
        snprintf(f, sizeof f, "%s/eval_in_%d.npy", m->dir, i);
        st = il_tensor_save_npy(x[i], f);
        snprintf(spec + used, sizeof spec - used, "%s%s=%s", i ? "\n" : "", m->g->values[m->g->inputs[i]].name, f);
    }
    snprintf(ev_out, sizeof ev_out, "%s/eval_out.npy", m->dir);
    if (!st) st = il_peer_eval(&m->peer, spec, ev_out);
    if (!st) st = il_tensor_load_npy(ev_out, out);
    (void)n;
    return st;
}

/* Agreement of out with the FP32 parent run by inferlab on the CPU over the same inputs. */
static il_status parent_agreement(il_meas *m, il_tensor **x, int64_t n, const il_tensor *out) {
    il_run_record *r = m->r;
    il_variant pv = m->v;
    il_graph *pg = NULL;
    il_tensor *pout = NULL;
    snprintf(pv.model, sizeof pv.model, "%s", m->parent);
    snprintf(pv.pipeline, sizeof pv.pipeline, "O0");
    snprintf(pv.engine, sizeof pv.engine, "inferlab");
    pv.label[0] = 0;
    il_variant_label(&pv, r->parent_variant, sizeof r->parent_variant);
    il_status st = il_sha256_file(m->parent, r->parent_sha256);
    char head[512];
    if (!st && il_plan_file_is(m->parent)) st = il_plan_file_read(m->parent, head, sizeof head, &pg); /* its graph */
    else if (!st) st = il_onnx_load(m->parent, &pg);
    il_plan_opts po = {.backend = IL_BACKEND_CPU, .threads = m->v.threads};
    if (!st) st = il_bench_eval_outputs(pg, x, n, m->v.batch, &po, NULL, &pout);
    if (!st) il_bench_agreement(out, pout, r);
    il_tensor_free(pout);
    il_graph_free(pg);
    return st;
}

il_status il_meas_finish(il_meas *m) {
    const il_bench_opts *o = m->o;
    const il_variant *v = &m->v;
    il_run_record *r = m->r;
    il_load_mark mark1;
    il_evalset e;
    il_tensor *out = NULL;
    il_status st = IL_OK;
    memset(&e, 0, sizeof e);
    il_load_mark_now(&mark1);
    il_load_between(&m->mark0, &mark1, &r->load);
    aggregate(r, v->scenario == IL_SC_SERVER);
    il_run_validate(r, &m->sc, o->max_spread);
    r->warmup_queries = r->n_trials ? r->trials[0].warmup_n : -1;
    wait_policy(r->wait_policy, sizeof r->wait_policy);
    /* The memory high-water mark of running the model (see the file comment). */
    if (!strcmp(v->engine, "inferlab")) {
        r->peak_host_bytes = o->no_fork ? -1 : peak_rss_bytes();
        if (m->gpu) r->peak_device_bytes = m->dev_bytes;
    } else {
        r->peak_host_bytes = m->peer.peak_host_bytes;
        r->peak_device_bytes = m->peer.peak_device_bytes;
        snprintf(r->engine_version, sizeof r->engine_version, "%s", m->peer.version);
    }
    if (!strcmp(v->backend, "cuda")) il_gpu_facts(r, strcmp(v->engine, "inferlab") ? &m->peer : NULL);
    if (m->p && o->profile) st = profile(m->g, &m->po, m->plan_load_s > 0 ? m->p : NULL, m->in, r);
    /* --eval: timing only for some engines (a peer's evaluation is one more process of it) */
    if (o->eval == IL_EVAL_NONE || (o->eval == IL_EVAL_INFERLAB && strcmp(v->engine, "inferlab"))) {
        if (st) il_error_wrap(st, "%s: ", r->variant);
        return st;
    }
    if (!st) st = il_bench_evalset(m->g, v, o->accuracy_samples, o->seed, &e);
    /* Random inputs only serve agreement with a parent: without one they would cost the time of
     * a whole evaluation and say nothing. The user's own inputs replace them. */
    if (!st && !e.y && (!m->parent[0] || il_bench_has_inputs(o))) il_evalset_free(&e);
    if (!st && e.x) {
        st = variant_outputs(m, &e.x, e.n, &out);
        if (!st) il_bench_accuracy(out, &e, r);
        if (!st && m->parent[0]) st = parent_agreement(m, &e.x, e.n, out);
    } else if (!st && m->parent[0]) {
        /* any other model with a parent (several inputs, integer ids, the user's inputs) */
        il_tensor **x = calloc((size_t)m->g->n_inputs + 1, sizeof *x);
        int64_t n = o->accuracy_samples > 0 && o->accuracy_samples < 64 ? o->accuracy_samples : 64;
        st = x ? il_bench_eval_inputs(o, m->g, n, x, &n) : il_error(IL_ERR_OOM, "out of memory");
        if (!st) st = variant_outputs(m, x, n, &out);
        if (!st) st = parent_agreement(m, x, n, out);
        for (int i = 0; x && i < m->g->n_inputs; i++) il_tensor_free(x[i]);
        free(x);
    }
    if (st) il_error_wrap(st, "%s: ", r->variant);
    il_tensor_free(out);
    il_evalset_free(&e);
    return st;
}

il_status il_bench_measure(const il_bench_opts *o, const il_variant *v, il_run_record *r) {
    il_meas *m;
    il_status st = il_meas_open(o, v, r, &m);
    for (int t = 0; !st && t < (o->trials > 0 ? o->trials : 1); t++) st = il_meas_trial(m, t);
    if (!st) st = il_meas_finish(m);
    il_meas_free(m);
    return st;
}

