/*
 * sweep.c - measuring a list of variants: one forked child per variant (so its memory
 * high-water mark is its own and a crash costs one variant), the trials of a group of variants
 * interleaved (A B C A B C ...), then each child's evaluation and its one store transaction.
 *
 * Why interleave: the speed a machine gives a process drifts (other users, the CPU's clock, a
 * neighbour's build starting); measuring all of A and then all of B puts that drift between A
 * and B and calls it a difference of variants. In turns, drift lands on every variant alike and
 * shows as each variant's spread over its trials (il_run_validate), where it is judged.
 *
 * Protocol with a child (pipes, one byte each way): the child opens its variant and answers
 * 'R' (or 'E' after printing why); then per command 't' it runs its next trial and answers 'D'
 * (or 'E'); on 'f' it finishes, stores, prints its line and exits. Children of a group wait,
 * blocked on read, while another measures.
 */
#include "bench_int.h"
#include "engine/cuda/sparselt.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- output: a progress bar on stderr that lines on stdout and messages do not overwrite */

static void clear_bar(const il_bench_opts *o) {
    if (o->progress) fprintf(stderr, "\r\033[K");
}

static void progress(const il_bench_opts *o, int done, int n, const char *phase, const char *what) {
    if (!o->progress) return;
    int w = 24, fill = n ? done * w / n : w;
    fprintf(stderr, "\r\033[K[");
    for (int i = 0; i < w; i++) fputc(i < fill ? '#' : '.', stderr);
    fprintf(stderr, "] %d/%d %-14s %.60s", done, n, phase, what);
    fflush(stderr);
}

/* A model pruned 2:4 (its inferlab.prune recipe) says whether this run ran any of it sparse. */
static void print_sparse24(const il_run_record *r) {
    if (!strstr(r->recipe, "\"nm\":\"2:4\"") || strcmp(r->v.engine, "inferlab")) return;
    int used = 0;
    for (int i = 0; i < r->n_nodes; i++) used += !strncmp(r->nodes[i].kernel, "cusparselt", 10);
    const char *no = il_sparse24_not_accelerated();
    if (used) printf("  2:4 weights: %d product%s ran on cuSPARSELt (cusparselt-2:4)\n", used, used == 1 ? "" : "s");
    else if (strcmp(r->v.backend, "cuda"))
        printf("  2:4 weights: not accelerated on the %s (no 2:4 kernel there; cuSPARSELt is a GPU library)\n", r->v.backend);
    else if (no) printf("  2:4 weights: %s\n", no);
    else if (!r->n_nodes) printf("  2:4 weights: cuSPARSELt present; --profile records which products ran on it\n");
    else printf("  2:4 weights: not accelerated in this run (cuSPARSELt present; no product took it: not fp16/bf16, "
                "or not faster than cuBLAS)\n");
}

static void print_run(const il_bench_opts *o, const il_run_record *r, int64_t id) {
    if (o->quiet) return;
    clear_bar(o);
    printf("run %lld: %-28s %-8s %-4s b%-3d %-13s p50 %8.3f ms (trials %.3f..%.3f)  p99 %8.3f ms  %10.1f samples/s",
           (long long)id, r->variant, r->v.engine, r->v.backend, r->v.batch, il_scenario_name(r->v.scenario), r->lat.p50,
           r->p50_lo, r->p50_hi, r->lat.p99, r->throughput);
    if (isfinite(r->top1)) printf("  top1 %.4f", r->top1);
    if (isfinite(r->agree_top1)) printf("  agree %.4f", r->agree_top1);
    if (isfinite(r->max_qps)) printf("  max QPS %.1f", r->max_qps);
    printf("\n");
    if (!r->valid) printf("  INVALID: %s\n", r->invalid_reason);
    if (r->load.others_running > 0 || (isfinite(r->load.steal_pct) && r->load.steal_pct > 1))
        printf("  machine busy: %d other runnable, load %.2f, steal %.1f%%\n", r->load.others_running, r->load.load1,
               r->load.steal_pct);
    print_sparse24(r);
    fflush(stdout);
}

static void report_error(const il_bench_opts *o, il_status st) {
    clear_bar(o);
    fprintf(stderr, "inferlab bench: %s\n", il_errmsg()[0] ? il_errmsg() : il_status_str(st));
}

static il_status store_run(const il_bench_opts *o, il_run_record *r) {
    il_store *s = NULL;
    int64_t id = 0;
    il_status st = il_store_open(o->db, &s);
    if (!st) st = il_store_insert(s, r, &id);
    il_store_close(s);
    if (!st) print_run(o, r, id);
    return st;
}

/* Spinning OpenMP threads go on spinning for a while after a trial (about 45 ms with
 * GOMP_SPINCOUNT=3000000, measured): the next variant's trial must not start beside them. */
static void settle(int group) {
    const char *spin = getenv("GOMP_SPINCOUNT"), *pol = getenv("OMP_WAIT_POLICY");
    if (group < 2 || !spin || (pol && !strcmp(pol, "passive"))) return;
    struct timespec ts = {0, 80 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

/* ---- in this process (--no-fork) */

static int run_group_here(const il_bench_opts *o, const il_variant *v, int n, int first, int total) {
    il_meas **m = calloc((size_t)n, sizeof *m);
    il_run_record *r = calloc((size_t)n, sizeof *r);
    int failed = 0, trials = o->trials > 0 ? o->trials : 1;
    if (!m || !r) {
        free(m);
        free(r);
        il_error(IL_ERR_OOM, "out of memory");
        report_error(o, IL_ERR_OOM);
        return n;
    }
    for (int i = 0; i < n; i++) {
        progress(o, first + i, total, "setup", v[i].model);
        il_status st = il_meas_open(o, &v[i], &r[i], &m[i]);
        if (st) report_error(o, st), failed++;
    }
    for (int t = 0; t < trials; t++)
        for (int i = 0; i < n; i++) {
            if (!m[i]) continue;
            char phase[32];
            snprintf(phase, sizeof phase, "trial %d/%d", t + 1, trials);
            progress(o, first + i, total, phase, r[i].variant);
            il_status st = il_meas_trial(m[i], t);
            if (st) report_error(o, st), failed++, il_meas_free(m[i]), m[i] = NULL;
        }
    for (int i = 0; i < n; i++) {
        if (!m[i]) {
            il_record_free(&r[i]);
            continue;
        }
        progress(o, first + i, total, "evaluation", r[i].variant);
        il_status st = il_meas_finish(m[i]);
        if (!st) st = store_run(o, &r[i]);
        if (st) report_error(o, st), failed++;
        il_meas_free(m[i]);
        il_record_free(&r[i]);
    }
    free(m);
    free(r);
    return failed;
}

/* ---- in children */

typedef struct {
    pid_t pid;
    int to, from; /* our ends of the command and answer pipes */
    char what[200];
} child;

static void child_main(const il_bench_opts *o, const il_variant *v, int in, int out, int group) {
    il_run_record r;
    il_meas *m = NULL;
    char cmd, ok = 'D';
    il_status st = il_meas_open(o, v, &r, &m);
    if (st) report_error(o, st);
    ok = st ? 'E' : 'R';
    if (write(out, &ok, 1) != 1 || st) _exit(1);
    for (int t = 0;; t++) {
        ssize_t k;
        while ((k = read(in, &cmd, 1)) < 0 && errno == EINTR) {}
        if (k != 1) _exit(1); /* the parent went away */
        if (cmd == 'f') break;
        st = il_meas_trial(m, t);
        if (st) report_error(o, st);
        else settle(group);
        ok = st ? 'E' : 'D';
        if (write(out, &ok, 1) != 1 || st) _exit(1);
    }
    st = il_meas_finish(m);
    if (!st) st = store_run(o, &r);
    if (st) report_error(o, st);
    il_meas_free(m);
    il_record_free(&r);
    fflush(stdout);
    fflush(stderr);
    _exit(st ? 1 : 0);
}

/* Send cmd to c and wait for its one-byte answer; 0 when it failed or went away. */
static int ask(child *c, char cmd) {
    char a = 0;
    ssize_t k;
    if (c->pid <= 0) return 0;
    if (cmd && write(c->to, &cmd, 1) != 1) return 0;
    while ((k = read(c->from, &a, 1)) < 0 && errno == EINTR) {}
    return k == 1 && (a == 'R' || a == 'D');
}

/* Reap c; returns 1 when it failed. */
static int reap(const il_bench_opts *o, child *c) {
    int ws = 0;
    if (c->pid <= 0) return 0;
    close(c->to);
    close(c->from);
    while (waitpid(c->pid, &ws, 0) < 0 && errno == EINTR) {}
    c->pid = 0;
    if (WIFSIGNALED(ws)) {
        clear_bar(o);
        fprintf(stderr, "inferlab bench: %s: the measuring process died of signal %d (%s); nothing was stored\n",
                c->what, WTERMSIG(ws), strsignal(WTERMSIG(ws)));
        return 1;
    }
    return WEXITSTATUS(ws) != 0;
}

static int run_group_forked(const il_bench_opts *o, const il_variant *v, int n, int first, int total) {
    child *c = calloc((size_t)n, sizeof *c);
    int failed = 0, trials = o->trials > 0 ? o->trials : 1;
    if (!c) return n;
    for (int i = 0; i < n; i++) {
        int a[2], b[2];
        il_variant_label(&v[i], c[i].what, sizeof c[i].what);
        snprintf(c[i].what + strlen(c[i].what), sizeof c[i].what - strlen(c[i].what), " %s b%d %s", v[i].backend,
                 v[i].batch, il_scenario_name(v[i].scenario));
        progress(o, first + i, total, "setup", c[i].what);
        fflush(stdout);
        fflush(stderr);
        if (pipe(a) || pipe(b)) {
            clear_bar(o);
            fprintf(stderr, "inferlab bench: pipe: %s\n", strerror(errno));
            failed++;
            continue;
        }
        pid_t pid = fork();
        if (pid == 0) {
            close(a[1]);
            close(b[0]);
            for (int j = 0; j < i; j++) close(c[j].to), close(c[j].from);
            child_main(o, &v[i], a[0], b[1], n);
        }
        close(a[0]);
        close(b[1]);
        c[i].pid = pid > 0 ? pid : 0;
        c[i].to = a[1];
        c[i].from = b[0];
        if (pid < 0) {
            clear_bar(o);
            fprintf(stderr, "inferlab bench: fork: %s\n", strerror(errno));
            close(a[1]);
            close(b[0]);
            failed++;
        } else if (!ask(&c[i], 0)) {
            reap(o, &c[i]);
            failed++;
        }
    }
    for (int t = 0; t < trials; t++)
        for (int i = 0; i < n; i++) {
            if (c[i].pid <= 0) continue;
            char phase[32];
            snprintf(phase, sizeof phase, "trial %d/%d", t + 1, trials);
            progress(o, first + i, total, phase, c[i].what);
            if (!ask(&c[i], 't')) {
                reap(o, &c[i]);
                failed++;
            }
        }
    for (int i = 0; i < n; i++) {
        if (c[i].pid <= 0) continue;
        progress(o, first + i, total, "evaluation", c[i].what);
        char f = 'f';
        if (write(c[i].to, &f, 1) != 1) {}
        failed += reap(o, &c[i]);
    }
    free(c);
    return failed;
}

il_status il_bench_run(const il_bench_opts *o, const il_variant *v, int n, int *failed) {
    *failed = 0;
    /* Create and migrate the database up front, so a bad path fails once, not per variant. */
    il_store *s;
    il_status st = il_store_open(o->db, &s);
    if (st) return st;
    il_store_close(s);
    int group = o->interleave > 0 ? o->interleave : 8;
    for (int i = 0; i < n; i += group) {
        int k = n - i < group ? n - i : group;
        *failed += o->no_fork ? run_group_here(o, v + i, k, i, n) : run_group_forked(o, v + i, k, i, n);
    }
    if (o->progress) {
        progress(o, n, n, "done", "");
        fputc('\n', stderr);
    }
    return IL_OK;
}
