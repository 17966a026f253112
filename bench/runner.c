/*
 * runner.c - measuring variants: one forked child per variant (so its memory high-water mark is
 * its own and a crash costs one variant), timed trials through the scenario schedulers, an
 * optional profiled pass, accuracy and agreement, and one store transaction per run.
 *
 * Order inside a measurement matters for honest figures: the timed trials run first on seeded
 * random inputs, the host peak RSS is read right after them (model, plan, buffers and inputs,
 * not the evaluation set), then profiling (which perturbs timing) and evaluation follow.
 */
#include "bench_int.h"

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
} query_ctx;

/* One query: the samples in batches of the plan's size (a multi-stream group may need
 * several engine calls). */
static il_status run_query(void *ctx, int samples) {
    query_ctx *q = ctx;
    il_status st = IL_OK;
    for (int done = 0; done < samples && !st; done += q->batch) st = il_plan_run(q->plan, q->in, q->n_in);
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

/* The trials of one run; m/ctx measure one trial (in process or through a peer). */
static il_status trials(const il_bench_opts *o, const il_variant *v, il_measure_fn m, void *ctx, il_run_record *r) {
    il_scenario sc = o->sc;
    il_status st;
    sc.kind = v->scenario;
    sc.batch = v->batch;
    r->samples_per_query = v->scenario == IL_SC_MULTI_STREAM ? (sc.samples_per_query > 0 ? sc.samples_per_query : 8)
                                                             : v->batch;
    if (v->scenario == IL_SC_SERVER && o->find_max_qps && (st = find_qps(o, &sc, m, ctx, r))) return st;
    if (v->scenario == IL_SC_SERVER) {
        r->target_qps = sc.target_qps;
        r->latency_bound_ms = sc.latency_bound_ms;
    }
    r->trials = calloc((size_t)o->trials, sizeof *r->trials);
    if (!r->trials) return il_error(IL_ERR_OOM, "out of memory");
    for (int t = 0; t < o->trials; t++) {
        sc.seed = o->seed + (uint64_t)t;
        if ((st = m(ctx, &sc, &r->trials[t]))) return st;
        r->n_trials = t + 1;
    }
    aggregate(r, v->scenario == IL_SC_SERVER);
    return IL_OK;
}

/* Per-node times from a separate profiled plan, averaged over enough runs to be stable. */
static il_status profile(const il_graph *g, const il_plan_opts *po0, il_tensor **in, il_run_record *r) {
    il_plan_opts po = *po0;
    po.profile = 1;
    il_plan *p;
    il_status st = il_plan_create(g, &po, &p);
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
            nt->ms = sum[k] / runs * 1e3;
            nt->macs = il_node_macs(g, il_plan_shapes(p), k);
        }
    }
    free(sum);
    il_plan_free(p);
    return st;
}

static il_status measure_inferlab(const il_bench_opts *o, const il_variant *v, const il_graph *g, il_run_record *r) {
    il_plan_opts po = {.backend = strcmp(v->backend, "cuda") ? IL_BACKEND_CPU : IL_BACKEND_CUDA,
                       .threads = v->threads, .batch = v->batch};
    il_plan *p = NULL;
    il_tensor **in = calloc((size_t)g->n_inputs + 1, sizeof *in);
    if (!in) return il_error(IL_ERR_OOM, "out of memory");
    il_status st = il_bench_inputs(g, NULL, v->batch, o->seed, in);
    if (!st) st = il_plan_create(g, &po, &p);
    if (!st) {
        r->peak_activation_bytes = il_plan_peak_bytes(p);
        query_ctx q = {p, in, g->n_inputs, v->batch};
        il_query_binding b = {run_query, &q};
        st = trials(o, v, il_measure_query, &b, r);
    }
    /* The memory high-water mark of running the model (see the file comment). */
    r->peak_host_bytes = o->no_fork ? -1 : peak_rss_bytes();
    snprintf(r->engine_version, sizeof r->engine_version, "inferlab %s", IL_VERSION);
    if (!st && o->profile) st = profile(g, &po, in, r);
    il_plan_free(p);
    for (int i = 0; i < g->n_inputs; i++) il_tensor_free(in[i]);
    free(in);
    return st;
}

static il_status measure_peer(const il_bench_opts *o, const il_variant *v, const char *path, const il_graph *g,
                              const il_evalset *e, il_run_record *r, il_tensor **out) {
    char dir[] = "/tmp/inferlab-peer-XXXXXX", ev_in[64], ev_out[64];
    if (!mkdtemp(dir)) return il_error(IL_ERR_IO, "cannot create a temporary folder: %s", strerror(errno));
    il_tensor **in = calloc((size_t)g->n_inputs + 1, sizeof *in);
    il_status st = in ? il_bench_inputs(g, NULL, v->batch, o->seed, in) : IL_ERR_OOM;
    /* Inputs go as .npy files, one per graph input, "name=path" joined by '\n'. */
    char *spec = calloc((size_t)g->n_inputs + 1, IL_PATH_MAX);
    for (int i = 0; !st && spec && i < g->n_inputs; i++) {
        char f[96];
        snprintf(f, sizeof f, "%s/input_%d.npy", dir, i);
        st = il_tensor_save_npy(in[i], f);
        size_t used = strlen(spec);
        snprintf(spec + used, (size_t)(g->n_inputs + 1) * IL_PATH_MAX - used, "%s%s=%s", i ? "\n" : "",
                 g->values[g->inputs[i]].name, f);
    }
    snprintf(ev_in, sizeof ev_in, "%s/eval_in.npy", dir);
    snprintf(ev_out, sizeof ev_out, "%s/eval_out.npy", dir);
    if (!st && e->x) st = il_tensor_save_npy(e->x, ev_in);
    il_peer peer = {.o = o, .v = v, .model = path, .inputs = spec, .peak_host_bytes = -1, .peak_device_bytes = -1};
    if (!st) st = trials(o, v, il_peer_trial, &peer, r);
    if (!st && e->x) st = il_peer_eval(&peer, ev_in, ev_out);
    if (!st && e->x) st = il_tensor_load_npy(ev_out, out);
    r->peak_host_bytes = peer.peak_host_bytes;
    r->peak_device_bytes = peer.peak_device_bytes;
    snprintf(r->engine_version, sizeof r->engine_version, "%s", peer.version);
    for (int i = 0; in && i < g->n_inputs; i++) {
        char f[96];
        snprintf(f, sizeof f, "%s/input_%d.npy", dir, i);
        unlink(f);
        il_tensor_free(in[i]);
    }
    free(in);
    free(spec);
    unlink(ev_in);
    unlink(ev_out);
    rmdir(dir);
    return st;
}

il_status il_bench_measure(const il_bench_opts *o, const il_variant *v, il_run_record *r) {
    char path[IL_PATH_MAX], parent[IL_PATH_MAX] = "";
    il_graph *g = NULL, *pg = NULL;
    il_evalset e;
    il_tensor *out = NULL, *pout = NULL;
    memset(&e, 0, sizeof e);
    il_record_init(r);
    r->v = *v;
    r->seed = o->seed;
    il_bench_timestamp(r->created_at, sizeof r->created_at);
    snprintf(r->experiment, sizeof r->experiment, "%s", o->experiment ? o->experiment : "");
    il_variant_label(v, r->variant, sizeof r->variant);
    il_provenance_collect(r->provenance, sizeof r->provenance);
    il_status st = il_bench_derive(o, v, path, sizeof path);
    if (!st) st = il_onnx_load(path, &g);
    if (!st) st = il_graph_verify(g);
    if (!st) st = il_bench_model_facts(path, g, r);
    if (st) goto done;
    /* The FP32 parent: given, or the model a pipeline derived from, or - for another engine or
     * backend - the same file run by inferlab on the CPU. */
    if (v->parent[0]) snprintf(parent, sizeof parent, "%s", v->parent);
    else if (strcmp(path, v->model) || strcmp(v->engine, "inferlab") || strcmp(v->backend, "cpu"))
        snprintf(parent, sizeof parent, "%s", v->model);
    if (!strcmp(v->engine, "inferlab")) {
        if ((st = measure_inferlab(o, v, g, r))) goto done;
        if ((st = il_bench_evalset(g, v, o->accuracy_samples, o->seed, &e))) goto done;
        if (e.x && (st = il_bench_outputs(g, &e, v->batch, strcmp(v->backend, "cuda") ? IL_BACKEND_CPU : IL_BACKEND_CUDA,
                                          v->threads, &out)))
            goto done;
    } else {
        if ((st = il_bench_evalset(g, v, o->accuracy_samples, o->seed, &e))) goto done;
        if ((st = measure_peer(o, v, path, g, &e, r, &out))) goto done;
    }
    il_bench_accuracy(out, &e, r);
    if (parent[0] && e.x) {
        il_variant pv = *v;
        snprintf(pv.model, sizeof pv.model, "%s", parent);
        snprintf(pv.pipeline, sizeof pv.pipeline, "O0");
        snprintf(pv.engine, sizeof pv.engine, "inferlab");
        pv.label[0] = 0;
        il_variant_label(&pv, r->parent_variant, sizeof r->parent_variant);
        if ((st = il_sha256_file(parent, r->parent_sha256))) goto done;
        if ((st = il_onnx_load(parent, &pg))) goto done;
        if ((st = il_bench_outputs(pg, &e, v->batch, IL_BACKEND_CPU, v->threads, &pout)))
            goto done;
        il_bench_agreement(out, pout, r);
    }
done:
    if (st) il_error_wrap(st, "%s: ", r->variant);
    il_tensor_free(out);
    il_tensor_free(pout);
    il_evalset_free(&e);
    il_graph_free(g);
    il_graph_free(pg);
    return st;
}

/* ---- the sweep */

static void progress(const il_bench_opts *o, int done, int n, const char *what) {
    if (!o->progress) return;
    int w = 30, fill = n ? done * w / n : w;
    fprintf(stderr, "\r[");
    for (int i = 0; i < w; i++) fputc(i < fill ? '#' : '.', stderr);
    fprintf(stderr, "] %d/%d %-40.40s", done, n, what);
    if (done == n) fputc('\n', stderr);
    fflush(stderr);
}

static void print_run(const il_run_record *r, int64_t id) {
    printf("run %lld: %-28s %-8s %-4s b%-3d %-13s p50 %8.3f ms  p99 %8.3f ms  %10.1f samples/s", (long long)id,
           r->variant, r->v.engine, r->v.backend, r->v.batch, il_scenario_name(r->v.scenario), r->lat.p50, r->lat.p99,
           r->throughput);
    if (isfinite(r->top1)) printf("  top1 %.4f", r->top1);
    if (isfinite(r->agree_top1)) printf("  agree %.4f", r->agree_top1);
    if (isfinite(r->max_qps)) printf("  max QPS %.1f", r->max_qps);
    printf("\n");
    fflush(stdout);
}

/* Measure and store one variant (in the child). Returns the exit status. */
static int measure_and_store(const il_bench_opts *o, const il_variant *v) {
    il_run_record r;
    il_store *s = NULL;
    int64_t id = 0;
    il_status st = il_bench_measure(o, v, &r);
    if (!st) st = il_store_open(o->db, &s);
    if (!st) st = il_store_insert(s, &r, &id);
    il_store_close(s);
    if (st) fprintf(stderr, "inferlab bench: %s\n", il_errmsg()[0] ? il_errmsg() : il_status_str(st));
    else print_run(&r, id);
    il_record_free(&r);
    return st ? 1 : 0;
}

il_status il_bench_run(const il_bench_opts *o, const il_variant *v, int n, int *failed) {
    *failed = 0;
    /* Create and migrate the database up front, so a bad path fails once, not per variant. */
    il_store *s;
    il_status st = il_store_open(o->db, &s);
    if (st) return st;
    il_store_close(s);
    for (int i = 0; i < n; i++) {
        char what[200];
        il_variant_label(&v[i], what, sizeof what);
        snprintf(what + strlen(what), sizeof what - strlen(what), " %s b%d %s", v[i].backend, v[i].batch,
                 il_scenario_name(v[i].scenario));
        progress(o, i, n, what);
        if (o->no_fork) {
            *failed += measure_and_store(o, &v[i]) != 0;
            continue;
        }
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        if (pid < 0) return il_error(IL_ERR_INTERNAL, "fork: %s", strerror(errno));
        if (pid == 0) _exit(measure_and_store(o, &v[i]));
        int ws;
        while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {}
        if (WIFSIGNALED(ws)) {
            fprintf(stderr, "\ninferlab bench: %s: the measuring process died of signal %d (%s); nothing was stored\n",
                    what, WTERMSIG(ws), strsignal(WTERMSIG(ws)));
            (*failed)++;
        } else if (WEXITSTATUS(ws)) {
            (*failed)++;
        }
    }
    progress(o, n, n, "done");
    return IL_OK;
}
