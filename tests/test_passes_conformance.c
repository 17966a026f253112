/*
 * test_passes_conformance.c - the property test of the passes: every built-in pass, and the -O2
 * pipeline, over every ONNX conformance model it changes (the node and pytorch-converted suites
 * of libonnx-testdata), with the suite's own inputs. A pass must not fail on a valid model; where
 * it rewrites something, the graph must verify, compute the same outputs as the original
 * (float32: rtol 1e-3, atol 1e-4) and stay as it is when the pass runs again.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../passes/passes.h"
#include "test.h"

#define SUITES "/usr/share/libonnx-testdata/data"

typedef struct {
    int changed, failed;
} tally;

/* Outputs of g on in, or NULL (the error cleared) when the engine cannot run it. */
static il_tensor **run_model(const il_graph *g, il_tensor **in, int *n) {
    il_plan_opts o = {.threads = 1};
    il_tensor **outs;
    if (il_run_model(g, in, g->n_inputs, &o, &outs, n)) {
        il_error_clear();
        return NULL;
    }
    return outs;
}

static void free_outs(il_tensor **o, int n) {
    for (int i = 0; o && i < n; i++) il_tensor_free(o[i]);
    free(o);
}

/* Apply pipeline to a copy of g; 1 when it changed the graph and a check failed. */
static int check(const char *model, const il_graph *g, const char *pipeline, il_tensor **in, il_tensor **want,
                 int nwant, tally *t) {
    il_graph *h = il_graph_clone(g);
    il_pass_stats st[32];
    int n = 0, changed = 0, bad = 0;
    il_status s = il_pipeline_run(h, pipeline, NULL, st, 32, &n);
    for (int i = 0; i < n; i++) changed += il_pass_changes(&st[i]);
    if (s) {
        printf("\n  %s: %s failed: %s", model, pipeline, il_errmsg());
        bad = 1;
    } else if (changed) {
        int ng;
        il_tensor **got = NULL;
        if ((s = il_graph_verify(h))) {
            printf("\n  %s: after %s the graph does not verify: %s", model, pipeline, il_errmsg());
            bad = 1;
        } else if (!(got = run_model(h, in, &ng)) || ng != nwant) {
            printf("\n  %s: after %s the graph no longer runs", model, pipeline);
            bad = 1;
        }
        for (int i = 0; !bad && i < ng; i++) {
            char msg[256];
            int64_t w;
            int f = il_dtype_is_float(want[i]->dtype) && want[i]->dtype != IL_F32 && want[i]->dtype != IL_F64;
            if (!il_tensor_allclose(got[i], want[i], f ? 1e-2 : 1e-3, f ? 1e-2 : 1e-4, &w, msg, sizeof msg)) {
                printf("\n  %s: %s changed output %d: %s", model, pipeline, i, msg);
                bad = 1;
            }
        }
        free_outs(got, ng);
        /* idempotence: the same pipeline again finds nothing */
        il_pass_stats again[32];
        int n2 = 0, more = 0;
        if (!bad && !il_pipeline_run(h, pipeline, NULL, again, 32, &n2))
            for (int i = 0; i < n2; i++) more += il_pass_changes(&again[i]);
        if (!bad && more && strchr(pipeline, ',') == NULL) {
            printf("\n  %s: %s is not idempotent (%d more rewrites)", model, pipeline, more);
            bad = 1;
        }
    }
    if (changed) t->changed++;
    t->failed += bad;
    il_graph_free(h);
    return bad;
}

static void run_suite(const char *suite, const char *const *passes, int np, tally *tl, int *models) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", SUITES, suite);
    DIR *d = opendir(dir);
    if (!d) {
        printf("\n  skipped: %s not installed", dir);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s/model.onnx", dir, e->d_name);
        il_graph *g;
        if (il_onnx_load(path, &g)) { il_error_clear(); continue; }
        if (il_graph_verify(g)) { il_error_clear(); il_graph_free(g); continue; }
        il_tensor **in = calloc((size_t)g->n_inputs + 1, sizeof *in);
        int ok = 1;
        for (int i = 0; i < g->n_inputs && ok; i++) {
            snprintf(path, sizeof path, "%s/%s/test_data_set_0/input_%d.pb", dir, e->d_name, i);
            if (il_tensor_load_pb(path, &in[i], NULL)) { il_error_clear(); ok = 0; }
        }
        int nw = 0;
        il_tensor **want = ok ? run_model(g, in, &nw) : NULL;
        if (want) {
            (*models)++;
            for (int p = 0; p < np; p++) check(e->d_name, g, passes[p], in, want, nw, &tl[p]);
        }
        free_outs(want, nw);
        for (int i = 0; i < g->n_inputs; i++) il_tensor_free(in[i]);
        free(in);
        il_graph_free(g);
    }
    closedir(d);
}

static void test_conformance_models(void) {
    const char *passes[32];
    int np = 0, n;
    const il_pass *const *all = il_pass_all(&n);
    for (int i = 0; i < n && np < 31; i++)
        if (!strncmp(all[i]->name, "test-", 5) || !strcmp(all[i]->name, "drop-double-relu")) continue; /* test doubles */
        else if (all[i]->lossy) continue; /* int8, fuse-qdq: outputs change on purpose (test_quantize, test_fuse_qdq) */
        else passes[np++] = all[i]->name;
    passes[np++] = il_pass_preset(2);
    tally tl[32] = {{0}};
    int models = 0;
    run_suite("node", passes, np, tl, &models);
    run_suite("pytorch-converted", passes, np, tl, &models);
    printf("\n  %d conformance models run; models changed (failed) per pass:", models);
    int failed = 0, found = 0;
    for (int p = 0; p < np; p++) {
        found += p < np - 1 && tl[p].changed > 0;
        printf("%s %s %d (%d)", p % 4 ? "," : "\n   ", p == np - 1 ? "-O2" : passes[p], tl[p].changed, tl[p].failed);
        failed += tl[p].failed;
    }
    printf("\n");
    CU_ASSERT_TRUE(models > 500); /* the suites are there and the engine runs them */
    CU_ASSERT_TRUE(found > 0 && tl[np - 1].changed > 0); /* the passes found work */
    CU_ASSERT_EQUAL(failed, 0);
}

IL_SUITE("passes-conformance", {"every pass over every conformance model it changes", test_conformance_models})
