/*
 * peers.c - other engines in the same run: ONNX Runtime (bench/peers/ort_bench.js on Node with
 * the npm package onnxruntime-node, or bench/peers/ort_bench.py on Python's onnxruntime where
 * Node's is missing) and PyTorch (bench/peers/torch_bench.py, GPU machine).
 *
 * Protocol (docs/bench.md): the harness spawns the script once per measurement with the model,
 * threads, batch, inputs as .npy files and the scenario's parameters; the script schedules the
 * queries itself and prints one JSON object on stdout:
 *   {"engine": "onnxruntime", "version": "1.x", "latencies_ms": [...], "seconds": s,
 *    "samples": n, "peak_host_bytes": b, "peak_device_bytes": b|null}
 * or {"error": "..."} with a non-zero exit. A GPU peer adds "gpu", "gpu_cc", "cuda_version" and
 * "cudnn_version"; the harness passes --precision P and --graphs when the variant asks for them. With --eval-in/--eval-out it instead runs the
 * evaluation inputs and writes output 0 as .npy. JSON is read with libyaml (JSON is YAML).
 */
#include "bench_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml.h>

/* An executable on $PATH (or a path given with a '/'). */
static int on_path(const char *prog) {
    if (strchr(prog, '/')) return !access(prog, X_OK);
    const char *path = getenv("PATH");
    char cand[IL_PATH_MAX];
    for (const char *p = path ? path : "/usr/bin:/bin"; *p;) {
        const char *e = strchr(p, ':');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        snprintf(cand, sizeof cand, "%.*s/%s", (int)len, len ? p : ".", prog);
        if (!access(cand, X_OK)) return 1;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

/* The script file for this engine: --peers DIR, $INFERLAB_PEERS, or bench/peers beside the
 * binary's source tree (build/inferlab and build/X/inferlab both work), or under the current
 * folder. */
static int find_file(const il_bench_opts *o, const char *file, char *path, size_t n) {
    char exe[IL_PATH_MAX] = "", cand[5][IL_PATH_MAX + 64];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k > 0) exe[k] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) *slash = 0;
    int nc = 0;
    if (o->peers_dir) snprintf(cand[nc++], sizeof cand[0], "%s/%s", o->peers_dir, file);
    if (getenv("INFERLAB_PEERS")) snprintf(cand[nc++], sizeof cand[0], "%s/%s", getenv("INFERLAB_PEERS"), file);
    snprintf(cand[nc++], sizeof cand[0], "%s/../bench/peers/%s", exe, file);
    snprintf(cand[nc++], sizeof cand[0], "%s/../../bench/peers/%s", exe, file);
    snprintf(cand[nc++], sizeof cand[0], "bench/peers/%s", file);
    for (int i = 0; i < nc; i++)
        if (!access(cand[i], R_OK)) {
            snprintf(path, n, "%.*s", (int)n - 1, cand[i]);
            return 1;
        }
    return 0;
}

/* onnxruntime-node installed by `make deps`: node_modules/ of the repository holding the script,
 * or of the current folder. */
static int have_ort_node(const char *js) {
    char dir[IL_PATH_MAX], cand[IL_PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s", js);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else snprintf(dir, sizeof dir, ".");
    snprintf(cand, sizeof cand, "%s/../../node_modules/onnxruntime-node/package.json", dir);
    return !access(cand, R_OK) || !access("node_modules/onnxruntime-node/package.json", R_OK);
}

/* The script and interpreter for this engine. pytorch: torch_bench.py on $INFERLAB_PYTHON
 * (python3). onnxruntime: ort_bench.js on Node with onnxruntime-node when both are there, else
 * ort_bench.py on Python's onnxruntime (the GPU machine has no Node); $INFERLAB_ORT_PEER=js|py
 * forces one. */
static il_status find_script(const il_bench_opts *o, const char *engine, char *path, size_t n, const char **interp) {
    const char *python = getenv("INFERLAB_PYTHON") ? getenv("INFERLAB_PYTHON") : "python3";
    const char *node = getenv("INFERLAB_NODE") ? getenv("INFERLAB_NODE") : "node";
    *interp = python;
    if (!strcmp(engine, "pytorch")) {
        if (find_file(o, "torch_bench.py", path, n)) return IL_OK;
        return il_error(IL_ERR_IO, "engine %s: cannot find bench/peers/torch_bench.py (give --peers DIR)", engine);
    }
    const char *force = getenv("INFERLAB_ORT_PEER");
    char js[IL_PATH_MAX], py[IL_PATH_MAX];
    int have_js = find_file(o, "ort_bench.js", js, sizeof js), have_py = find_file(o, "ort_bench.py", py, sizeof py);
    int use_py;
    if (force && *force) use_py = !strcmp(force, "py") || !strcmp(force, "python");
    else use_py = have_py && !(have_js && on_path(node) && have_ort_node(js)) && on_path(python);
    if (use_py ? !have_py : !have_js)
        return il_error(IL_ERR_IO, "engine %s: cannot find bench/peers/%s (give --peers DIR)", engine,
                        use_py ? "ort_bench.py" : "ort_bench.js");
    *interp = use_py ? python : node;
    snprintf(path, n, "%.*s", (int)n - 1, use_py ? py : js);
    return IL_OK;
}

/* Run argv, collecting stdout (stderr passes through to ours). */
static il_status spawn(char *const argv[], char **out) {
    int fd[2];
    *out = NULL;
    if (pipe(fd)) return il_error(IL_ERR_IO, "pipe: %s", strerror(errno));
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return il_error(IL_ERR_INTERNAL, "fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        close(fd[1]);
        /* the wait policy cli/main.c set for inferlab's own OpenMP is not the peer's default */
        if (getenv("INFERLAB_SET_GOMP")) unsetenv("GOMP_SPINCOUNT"), unsetenv("OMP_WAIT_POLICY");
        execvp(argv[0], argv);
        fprintf(stderr, "inferlab bench: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(fd[1]);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    ssize_t r;
    while (buf && (r = read(fd[0], buf + len, cap - len - 1)) != 0) {
        if (r < 0) {
            if (errno == EINTR) continue;
            break;
        }
        len += (size_t)r;
        if (len + 1 == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) free(buf);
            buf = nb;
        }
    }
    close(fd[0]);
    int ws;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {}
    if (!buf) return il_error(IL_ERR_OOM, "out of memory reading %s", argv[0]);
    buf[len] = 0;
    *out = buf;
    if (WIFSIGNALED(ws)) return il_error(IL_ERR_INTERNAL, "%s %s died of signal %d", argv[0], argv[1], WTERMSIG(ws));
    if (WEXITSTATUS(ws) == 127) return il_error(IL_ERR_IO, "cannot run %s (is it installed? `make deps`)", argv[0]);
    if (WEXITSTATUS(ws) && !strstr(buf, "\"error\""))
        return il_error(IL_ERR_INTERNAL, "%s %s exited with status %d (its messages are above)", argv[0], argv[1],
                        WEXITSTATUS(ws));
    return IL_OK;
}

typedef struct {
    char error[512], version[64];
    char gpu[128], gpu_cc[16], cuda_version[32], cudnn_version[32];
    double seconds;
    int64_t samples, peak_host, peak_device;
    double *lat;
    int64_t n;
} peer_reply;

static const char *scalar(yaml_node_t *v) {
    return v && v->type == YAML_SCALAR_NODE ? (const char *)v->data.scalar.value : NULL;
}

static il_status parse_reply(const char *text, peer_reply *r) {
    yaml_parser_t p;
    yaml_document_t d;
    il_status st = IL_OK;
    memset(r, 0, sizeof *r);
    r->peak_host = r->peak_device = -1;
    r->seconds = NAN;
    const char *start = strchr(text, '{'); /* tolerate stray lines before the object */
    if (!start) return il_error(IL_ERR_PARSE, "peer printed no JSON object");
    yaml_parser_initialize(&p);
    yaml_parser_set_input_string(&p, (const unsigned char *)start, strlen(start));
    if (!yaml_parser_load(&p, &d)) {
        yaml_parser_delete(&p);
        return il_error(IL_ERR_PARSE, "peer output is not JSON: %s", p.problem ? p.problem : "?");
    }
    yaml_node_t *root = yaml_document_get_root_node(&d);
    if (!root || root->type != YAML_MAPPING_NODE) st = il_error(IL_ERR_PARSE, "peer output is not a JSON object");
    for (yaml_node_pair_t *q = root && !st ? root->data.mapping.pairs.start : NULL;
         q && q < root->data.mapping.pairs.top; q++) {
        const char *k = scalar(yaml_document_get_node(&d, q->key));
        yaml_node_t *v = yaml_document_get_node(&d, q->value);
        const char *s = scalar(v);
        if (!k) continue;
        int null = !s || !strcmp(s, "null");
        if (!strcmp(k, "error") && s) snprintf(r->error, sizeof r->error, "%s", s);
        else if (!strcmp(k, "version") && s) snprintf(r->version, sizeof r->version, "%s", s);
        else if (!strcmp(k, "gpu") && !null) snprintf(r->gpu, sizeof r->gpu, "%s", s);
        else if (!strcmp(k, "gpu_cc") && !null) snprintf(r->gpu_cc, sizeof r->gpu_cc, "%s", s);
        else if (!strcmp(k, "cuda_version") && !null) snprintf(r->cuda_version, sizeof r->cuda_version, "%s", s);
        else if (!strcmp(k, "cudnn_version") && !null) snprintf(r->cudnn_version, sizeof r->cudnn_version, "%s", s);
        else if (!strcmp(k, "seconds") && !null) r->seconds = strtod(s, NULL);
        else if (!strcmp(k, "samples") && !null) r->samples = strtoll(s, NULL, 10);
        else if (!strcmp(k, "peak_host_bytes") && !null) r->peak_host = strtoll(s, NULL, 10);
        else if (!strcmp(k, "peak_device_bytes") && !null) r->peak_device = strtoll(s, NULL, 10);
        else if (!strcmp(k, "latencies_ms") && v && v->type == YAML_SEQUENCE_NODE) {
            int64_t cnt = v->data.sequence.items.top - v->data.sequence.items.start;
            r->lat = malloc((size_t)(cnt ? cnt : 1) * sizeof *r->lat);
            if (!r->lat) { st = il_error(IL_ERR_OOM, "out of memory"); break; }
            for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
                const char *x = scalar(yaml_document_get_node(&d, *it));
                r->lat[r->n++] = x ? strtod(x, NULL) : NAN;
            }
        }
    }
    yaml_document_delete(&d);
    yaml_parser_delete(&p);
    if (!st && r->error[0]) st = il_error(IL_ERR_INTERNAL, "peer: %s", r->error);
    if (st) free(r->lat), r->lat = NULL;
    return st;
}

/* argv for one invocation: interpreter, script, model, threads, batch, inputs, then extra. */
static il_status run_peer(il_peer *p, char **extra, int n_extra, peer_reply *rep) {
    char script[IL_PATH_MAX + 64], thr[16], bat[16];
    const char *interp;
    memset(rep, 0, sizeof *rep);
    il_status st = find_script(p->o, p->v->engine, script, sizeof script, &interp);
    if (st) return st;
    char *argv[96];
    int a = 0;
    argv[a++] = (char *)interp;
    argv[a++] = script;
    argv[a++] = "--model", argv[a++] = (char *)p->model;
    snprintf(thr, sizeof thr, "%d", p->v->threads);
    snprintf(bat, sizeof bat, "%d", p->v->batch);
    argv[a++] = "--threads", argv[a++] = thr;
    argv[a++] = "--batch", argv[a++] = bat;
    argv[a++] = "--device", argv[a++] = (char *)p->v->backend;
    /* the arithmetic asked for (the sweep lets only the GPU peers have it) */
    if (p->v->precision[0]) argv[a++] = "--precision", argv[a++] = (char *)p->v->precision;
    if (p->v->graphs) argv[a++] = "--graphs";
    char *inputs = strdup(p->inputs ? p->inputs : "");
    for (char *line = strtok(inputs, "\n"); line && a < 60; line = strtok(NULL, "\n")) argv[a++] = "--input", argv[a++] = line;
    for (int i = 0; i < n_extra && a < 94; i++) argv[a++] = extra[i];
    argv[a] = NULL;
    char *out = NULL;
    st = spawn(argv, &out);
    free(inputs);
    if (out && (!st || strstr(out, "\"error\""))) {
        il_status ps = parse_reply(out, rep);
        if (ps) st = ps;
    }
    free(out);
    if (st) return il_error_wrap(st, "engine %s: ", p->v->engine);
    if (rep->version[0]) snprintf(p->version, sizeof p->version, "%.15s %.40s", p->v->engine, rep->version);
    if (rep->gpu[0]) {
        snprintf(p->gpu, sizeof p->gpu, "%s", rep->gpu);
        snprintf(p->gpu_cc, sizeof p->gpu_cc, "%s", rep->gpu_cc);
        snprintf(p->cuda_version, sizeof p->cuda_version, "%s", rep->cuda_version);
        snprintf(p->cudnn_version, sizeof p->cudnn_version, "%s", rep->cudnn_version);
    }
    return IL_OK;
}

il_status il_peer_trial(void *peer, const il_scenario *sc, il_trial *out) {
    il_peer *p = peer;
    char a[10][32];
    char *extra[20];
    int n = 0;
    snprintf(a[0], 32, "%s", il_scenario_name(sc->kind));
    snprintf(a[1], 32, "%d", sc->warmup);
    snprintf(a[2], 32, "%.6g", sc->min_seconds);
    snprintf(a[3], 32, "%lld", (long long)sc->min_queries);
    snprintf(a[4], 32, "%lld", (long long)sc->max_queries);
    snprintf(a[5], 32, "%.6g", sc->target_qps);
    snprintf(a[6], 32, "%d", sc->samples_per_query > 0 ? sc->samples_per_query : 8);
    snprintf(a[7], 32, "%llu", (unsigned long long)sc->seed);
    const char *flags[] = {"--scenario", "--warmup", "--min-seconds", "--min-queries", "--max-queries",
                           "--qps",      "--spq",    "--seed"};
    for (int i = 0; i < 8; i++) extra[n++] = (char *)flags[i], extra[n++] = a[i];
    peer_reply rep;
    il_status st = run_peer(p, extra, n, &rep);
    if (st) return st;
    if (rep.n == 0 || !(rep.seconds > 0)) {
        free(rep.lat);
        return il_error(IL_ERR_PARSE, "engine %s: the peer reported no latencies", p->v->engine);
    }
    memset(out, 0, sizeof *out);
    out->lat_ms = rep.lat;
    out->n = rep.n;
    out->samples = rep.samples;
    out->seconds = rep.seconds;
    out->throughput = (double)rep.samples / rep.seconds;
    out->qps = (double)rep.n / rep.seconds;
    il_lat_summarize(out->lat_ms, out->n, &out->lat);
    out->bound_met = sc->kind != IL_SC_SERVER || !(sc->latency_bound_ms > 0) || out->lat.p99 <= sc->latency_bound_ms;
    if (rep.peak_host > p->peak_host_bytes) p->peak_host_bytes = rep.peak_host;
    if (rep.peak_device > p->peak_device_bytes) p->peak_device_bytes = rep.peak_device;
    return IL_OK;
}

il_status il_peer_eval(il_peer *p, const char *in_npy, const char *out_npy) {
    /* one --eval-in per "NAME=FILE" line (several inputs), or one plain file */
    char *extra[36], *lines = strdup(in_npy);
    int n = 0;
    if (!lines) return il_error(IL_ERR_OOM, "out of memory");
    for (char *l = strtok(lines, "\n"); l && n < 32; l = strtok(NULL, "\n")) extra[n++] = "--eval-in", extra[n++] = l;
    extra[n++] = "--eval-out", extra[n++] = (char *)out_npy;
    peer_reply rep;
    il_status st = run_peer(p, extra, n, &rep);
    free(rep.lat);
    free(lines);
    return st;
}
