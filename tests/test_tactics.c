/*
 * test_tactics.c - the timed tactic's charge of a pick in its plan (engine/tactics_cost.c),
 * without real timing: a test timer (il_tactics_set_timer) feeds synthetic costs per kernel and
 * per node in a built plan. On a Fire module (squeeze conv, two expand convs, their Concat, a
 * conv after it) the plain `fast` Concat is cheaper alone than oneDNN's, whose inputs the
 * expand convs write in place; charged what it does to its neighbours (each plain activation
 * costs a reorder, the in-place Concat copies nothing) the in-place one must win, and with free
 * reorders and copies the plain one. Then the timing cache: a second build runs nothing, another
 * context (batch) runs again. Every plan's outputs against the reference (layout_chain.h:
 * |got - want| <= 1e-4 + 1e-4 |want|).
 */
#include "layout_chain.h"

typedef struct {
    int charged;           /* 1: reorders and copies cost; 0: free */
    const char *fast3;     /* a 3x3 conv kernel cheaper than the others (alone and in the plan) */
    int spill;             /* a plan with the `fast` Concat slows the graph's output node by 5 ms */
    int alone_calls, plan_calls;
    int saw_in_place;      /* some plan run had the Concat written in place */
    int cat, e1;           /* values: the Concat's output and its first input */
} synth;

static double synth_alone(const il_plan *p, int k, const il_kernel *kn, void *user) {
    synth *s = user;
    s->alone_calls++;
    const il_node *n = &il_plan_graph(p)->nodes[k];
    int is3 = n->n_inputs > 1 && n->inputs[1] >= 0 && il_plan_graph(p)->values[n->inputs[1]].rank == 4 &&
              il_plan_graph(p)->values[n->inputs[1]].dims[3] == 3;
    if (s->fast3 && is3) return !strcmp(kn->name, s->fast3) ? 0.5e-3 : 1e-3;
    if (strcmp(n->op_type, "Concat")) return 1e-3; /* ties: the heuristic's stays */
    return !strcmp(kn->name, "fast") ? 0.5e-3 : !strcmp(kn->name, "dnnl") ? 1e-3 : 2e-3;
}

/* A node's cost in plan q: 1 ms, a Concat its alone cost (0 when written in place and charged),
 * plus 2 ms per plain activation it touches when charged */
static int synth_in_plan(il_plan *q, il_tensor *const *in, int n_in, double *times, void *user) {
    (void)in, (void)n_in;
    synth *s = user;
    const il_graph *g = il_plan_graph(q);
    s->plan_calls++;
    int64_t sz, at = il_plan_value_offset(q, s->cat, &sz);
    int in_place = at >= 0 && il_plan_value_offset(q, s->e1, &sz) == at;
    s->saw_in_place |= in_place;
    int fast_cat = 0;
    for (int k = 0; k < g->n_nodes; k++)
        fast_cat |= !g->nodes[k].dead && il_plan_kernel(q, k) && !strcmp(g->nodes[k].op_type, "Concat") &&
                    !strcmp(il_plan_kernel(q, k)->name, "fast");
    for (int k = 0; k < g->n_nodes; k++) {
        const il_node *n = &g->nodes[k];
        const il_kernel *kn = il_plan_kernel(q, k);
        times[k] = 0;
        if (n->dead || !kn) continue;
        int cat = !strcmp(n->op_type, "Concat");
        times[k] = !cat ? synth_alone(q, k, kn, &(synth){.fast3 = s->fast3})
                        : s->charged && in_place ? 0 : synth_alone(q, k, kn, &(synth){0});
        if (s->spill && fast_cat && n->outputs[0] >= 0 && g->values[n->outputs[0]].is_output) times[k] += 5e-3;
        for (int i = 0; s->charged && i < n->n_inputs + n->n_outputs; i++) {
            int v = i < n->n_inputs ? n->inputs[i] : n->outputs[i - n->n_inputs];
            const il_value *x = v >= 0 ? &g->values[v] : NULL;
            if (x && !x->constant && !x->is_input && !x->is_output && !il_plan_value_blocked(q, v)) times[k] += 2e-3;
        }
    }
    return 0;
}

/* A Fire module at batch (and a conv after it where tail); *cat, *e1: the Concat's output and
 * first input; *cat_node: its node */
static chain fire_tail(int64_t batch, int *cat, int *e1, int *cat_node, int tail) {
    chain b = chain_new(2, batch, 8, 15);
    int sq = conv(&b, b.g->inputs[0], 8, 16, 1, 1, 0, 1, "Relu", -1);
    *e1 = conv(&b, sq, 16, 32, 1, 1, 0, 1, "Relu", -1);
    int e3 = conv(&b, sq, 16, 64, 3, 1, 1, 1, "Relu", -1);
    *cat = node2(&b, "Concat", *e1, e3);
    *cat_node = b.g->values[*cat].producer;
    int y = conv(&b, *cat, 96, 8, 1, 1, 0, 1, NULL, -1);
    il_graph_add_output(b.g, tail ? conv(&b, y, 8, 8, 1, 1, 0, 1, "Relu", -1) : y);
    return b;
}

static chain fire(int64_t batch, int *cat, int *e1, int *cat_node) { return fire_tail(batch, cat, e1, cat_node, 0); }

static int have_dnnl_concat(void) {
    if (have_blocked_kernels() && il_kernel_find("", "Concat", "cpu", "dnnl")) return 1;
    fprintf(stderr, " skipped: this build has no oneDNN Concat ");
    return 0;
}

/* Build b timed with timer s (and cache, may be NULL); outputs checked; returns the plan. */
static il_plan *timed_plan(const chain *b, int64_t batch, synth *s, const char *cache, const char *what) {
    il_tactic_timer t = {synth_alone, synth_in_plan, s};
    il_tactics_set_timer(&t);
    il_plan_opts o = {.threads = 1, .tactics = IL_TACTICS_TIMED, .timing_cache = cache};
    il_plan *p = plan_checked(b->g, &o, batch, what);
    il_tactics_set_timer(NULL);
    return p;
}

/* The charge decides: alone prefers `fast`; charged, the in-place `dnnl`; free, `fast`. */
static void test_charged_concat(void) {
    if (!have_dnnl_concat()) return;
    int cat, e1, cn;
    chain b = fire(1, &cat, &e1, &cn);
    for (int charged = 1; charged >= 0; charged--) {
        synth s = {.charged = charged, .cat = cat, .e1 = e1};
        il_plan *p = timed_plan(&b, 1, &s, NULL, charged ? "charged Concat" : "free reorders");
        const char *want = charged ? "dnnl" : "fast", *got = il_plan_kernel(p, cn)->name;
        if (strcmp(got, want)) fprintf(stderr, "\n  charged %d: Concat runs %s, expected %s\n", charged, got, want);
        CU_ASSERT_STRING_EQUAL(got, want);
        CU_ASSERT_TRUE(s.alone_calls > 0);
        CU_ASSERT_TRUE(s.plan_calls >= 2 * 4); /* H and T: a warm-up and at least 3 rounds each */
        CU_ASSERT_TRUE(s.saw_in_place); /* the heuristic's plan writes the Concat in place */
        const char *why = il_plan_kernel_why(p, cn);
        CU_ASSERT_PTR_NOT_NULL_FATAL(why);
        CU_ASSERT_PTR_NOT_NULL(strstr(why, "alone: fast"));
        CU_ASSERT_PTR_NOT_NULL(strstr(why, charged ? ": heuristic" : ": timed"));
        expect_blocked(p, b.g, cat, charged, "the Concat's output");
        int segs, timed, cached;
        il_plan_segment_stats(p, &segs, &timed, &cached);
        CU_ASSERT_EQUAL(segs, 1);
        CU_ASSERT_EQUAL(timed, 1);
        CU_ASSERT_EQUAL(cached, 0);
        il_plan_free(p);
    }
    /* heuristic builds neither time nor charge */
    il_plan *p;
    IL_ASSERT_OK(il_plan_create(b.g, &(il_plan_opts){.threads = 1}, &p));
    CU_ASSERT_STRING_EQUAL(il_plan_kernel(p, cn)->name, "dnnl");
    CU_ASSERT_PTR_NULL(il_plan_kernel_why(p, cn));
    il_plan_free(p);
    il_graph_free(b.g);
}

/* Two picks in one segment: the 3x3 expand conv's (another native kernel, cheaper alone and in
 * the plan) and the Concat's (plain, cheaper alone, dearer charged). The timed plan (both) and
 * the heuristic's lose to the mixed ones (the conv's pick alone: the same-layout option and the
 * first flip plan), which the charge must find. */
static void test_mixed_segment(void) {
    if (!have_dnnl_concat()) return;
    int cat, e1, cn;
    chain b = fire(1, &cat, &e1, &cn);
    il_plan *h;
    IL_ASSERT_OK(il_plan_create(b.g, &(il_plan_opts){.threads = 1}, &h));
    int e3n = b.g->values[il_plan_graph(h)->nodes[cn].inputs[1]].producer;
    const char *heur3 = il_plan_kernel(h, e3n)->name, *other = !strcmp(heur3, "dnnl") ? "dnnl-wino" : "dnnl";
    il_plan_free(h);
    const il_kernel *ko = il_kernel_find("ai.inferlab", "FusedConv", "cpu", other);
    if (!ko) {
        fprintf(stderr, " skipped: no FusedConv kernel %s ", other);
        il_graph_free(b.g);
        return;
    }
    synth s = {.charged = 1, .fast3 = other, .cat = cat, .e1 = e1};
    il_plan *p = timed_plan(&b, 1, &s, NULL, "mixed segment");
    CU_ASSERT_STRING_EQUAL(il_plan_kernel(p, cn)->name, "dnnl");
    if (strcmp(il_plan_kernel(p, e3n)->name, other))
        fprintf(stderr, "\n  3x3 conv runs %s, expected %s (heuristic %s): %s\n", il_plan_kernel(p, e3n)->name, other,
                heur3, il_plan_kernel_why(p, e3n) ? il_plan_kernel_why(p, e3n) : "");
    CU_ASSERT_STRING_EQUAL(il_plan_kernel(p, e3n)->name, other);
    CU_ASSERT_TRUE(s.plan_calls >= 4 * 4); /* round 1 (H, T, maybe L) and round 2 (H, two flips) */
    CU_ASSERT_PTR_NOT_NULL(strstr(il_plan_kernel_why(p, cn), "(2 picks)"));
    il_plan_free(p);
    il_graph_free(b.g);
}

/* A pick cheaper in its segment whose plan slows a node outside every segment (the conv after
 * the module's output conv) is not taken by its segment: with free reorders `fast` wins the
 * segment's sum, but the heuristic's Concat stays; without the spill `fast` is kept. */
static void test_spill(void) {
    if (!have_dnnl_concat()) return;
    for (int spill = 1; spill >= 0; spill--) {
        int cat, e1, cn;
        chain b = fire_tail(1, &cat, &e1, &cn, 1);
        synth s = {.charged = 0, .spill = spill, .cat = cat, .e1 = e1};
        il_plan *p = timed_plan(&b, 1, &s, NULL, spill ? "spill" : "no spill");
        const char *want = spill ? "dnnl" : "fast", *got = il_plan_kernel(p, cn)->name;
        if (strcmp(got, want)) fprintf(stderr, "\n  spill %d: Concat runs %s, expected %s\n", spill, got, want);
        CU_ASSERT_STRING_EQUAL(got, want);
        /* the segment itself declines it (not only the whole-plan check after) */
        const char *why = il_plan_kernel_why(p, cn);
        CU_ASSERT_PTR_NOT_NULL_FATAL(why);
        CU_ASSERT_PTR_NOT_NULL(strstr(why, spill ? ": heuristic" : ": timed"));
        CU_ASSERT_PTR_NULL(strstr(why, "heuristic kept"));
        il_plan_free(p);
        il_graph_free(b.g);
    }
}

/* The cache keeps the charged choice: a second build runs no plan and times no node; a
 * cache entry's key holds the context (another batch: charged again). */
static void test_charge_cache(void) {
    if (!have_dnnl_concat()) return;
    const char *cache = il_test_tmp("charge.cache");
    remove(cache);
    int cat, e1, cn;
    chain b = fire(1, &cat, &e1, &cn);
    synth s = {.charged = 1, .cat = cat, .e1 = e1};
    il_plan *p = timed_plan(&b, 1, &s, cache, "first build");
    CU_ASSERT_STRING_EQUAL(il_plan_kernel(p, cn)->name, "dnnl");
    il_plan_free(p);
    FILE *f = fopen(cache, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    char line[4096];
    int seg_lines = 0;
    while (fgets(line, sizeof line, f)) seg_lines += !strncmp(line, "segments ", 9) && strstr(line, "\tdnnl\n");
    fclose(f);
    CU_ASSERT_EQUAL(seg_lines, 1);
    /* the second build: all from the cache, even where the timer would now decide otherwise */
    synth s2 = {.charged = 0, .cat = cat, .e1 = e1};
    p = timed_plan(&b, 1, &s2, cache, "second build");
    CU_ASSERT_EQUAL(s2.alone_calls, 0);
    CU_ASSERT_EQUAL(s2.plan_calls, 0);
    CU_ASSERT_STRING_EQUAL(il_plan_kernel(p, cn)->name, "dnnl");
    int segs, timed, cached;
    il_plan_segment_stats(p, &segs, &timed, &cached);
    CU_ASSERT_EQUAL(timed, 0);
    CU_ASSERT_EQUAL(cached, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(il_plan_kernel_why(p, cn), "timing cache"));
    il_plan_free(p);
    il_graph_free(b.g);
    /* batch 2: other shapes, other keys; the free timer now picks `fast` */
    b = fire(2, &cat, &e1, &cn);
    synth s3 = {.charged = 0, .cat = cat, .e1 = e1};
    p = timed_plan(&b, 2, &s3, cache, "batch 2");
    CU_ASSERT_TRUE(s3.alone_calls > 0);
    CU_ASSERT_TRUE(s3.plan_calls > 0);
    CU_ASSERT_STRING_EQUAL(il_plan_kernel(p, cn)->name, "fast");
    il_plan_free(p);
    il_graph_free(b.g);
}

/* The machine's own clock on a Fire module, batch 1 and 3, 1 and 2 threads: whatever it picks,
 * the outputs match the reference and each pick that differs from the heuristic's says why. */
static void test_real_clock(void) {
    for (int64_t batch = 1; batch <= 3; batch += 2)
        for (int threads = 1; threads <= 2; threads++) {
            int cat, e1, cn;
            chain b = fire(batch, &cat, &e1, &cn);
            il_plan_opts o = {.threads = threads, .tactics = IL_TACTICS_TIMED};
            char what[64];
            snprintf(what, sizeof what, "real clock, batch %lld, %d threads", (long long)batch, threads);
            il_plan *p = plan_checked(b.g, &o, batch, what);
            for (int k = 0; k < b.g->n_nodes; k++) {
                const char *why = il_plan_kernel_why(p, k);
                if (why && strstr(why, " < ")) CU_ASSERT_PTR_NOT_NULL(strstr(why, "charged"));
            }
            il_plan_free(p);
            il_graph_free(b.g);
        }
}

IL_SUITE("tactics", {"charged Concat", test_charged_concat}, {"two picks in a segment", test_mixed_segment},
         {"a pick that slows other nodes", test_spill}, {"charge and the cache", test_charge_cache},
         {"real clock", test_real_clock})
