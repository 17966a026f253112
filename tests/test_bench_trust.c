/*
 * test_bench_trust.c - whether the harness's figures can be trusted (issue 14): the warm-up that
 * runs until latencies settle, `run --repeat` agreeing with `bench` on a fake model that starts
 * cold, MLPerf-style INVALID runs, and the machine-load record.
 */
#include <math.h>
#include <string.h>

#include "../bench/bench.h"
#include "fake_model.h"
#include "test.h"

#define NEAR(a, b, tol) CU_ASSERT(fabs((double)(a) - (double)(b)) <= (tol))

static void test_warmup_steady(void) {
    fake f = {0, 1.0, 1, 0, 9.0, 10, 0};
    il_clock ck = {v_now, v_sleep, &f};
    il_scenario sc;
    il_trial t;
    il_scenario_defaults(&sc, IL_SC_SINGLE_STREAM);
    sc.clock = &ck;
    sc.min_seconds = 0.5;
    sc.min_queries = 10;
    IL_ASSERT_OK(il_scenario_run(&sc, fake_query, &f, &t));
    /* the fixed 5 queries of before would have left 9 e^-0.5 = 5.5 ms of excess; settled is
     * when windows of 8 differ by < 5%: about 45 calls here */
    CU_ASSERT(t.warmup_n >= 30 && t.warmup_n <= 80);
    CU_ASSERT_EQUAL(t.steady, 1);
    NEAR(t.lat.p50, 1.0, 1e-3);
    CU_ASSERT(t.lat.max < 1.1);
    il_trial_free(&t);
    /* the bound: latencies that never settle end the warm-up after warmup_max_seconds, and the
     * trial says so */
    f = (fake){0, 1.0, 1, 0, 0, 1, 0.02};
    sc.warmup_max_seconds = 1;
    IL_ASSERT_OK(il_scenario_run(&sc, fake_query, &f, &t));
    CU_ASSERT_EQUAL(t.steady, 0);
    CU_ASSERT(t.warmup_n > 16 && t.warmup_n < 200);
    il_trial_free(&t);
    /* --warmup 0: no warm-up at all */
    f = (fake){0, 1.0, 1, 0, 9.0, 10, 0};
    sc.warmup = 0;
    IL_ASSERT_OK(il_scenario_run(&sc, fake_query, &f, &t));
    CU_ASSERT_EQUAL(t.warmup_n, 0);
    NEAR(t.lat.max, 10.0, 1e-9);
    il_trial_free(&t);
}

/* `run --repeat N` (cli/run.c: single-stream, warm-up 5 then steady, exactly N queries) and
 * `bench` (its defaults: 3 trials of >= 1 s and 64 queries) on the same cold fake must agree
 * within the spread bench states; run's old way (no warm-up, best of 1) did not. */
static void test_run_bench_agree(void) {
    fake f = {0, 2.0, 1, 0, 9.0, 10, 0};
    il_clock ck = {v_now, v_sleep, &f};
    il_scenario run_sc, bench_sc;
    il_trial rt, bt[3];
    il_scenario_defaults(&run_sc, IL_SC_SINGLE_STREAM);
    run_sc.clock = &ck;
    run_sc.min_seconds = 0;
    run_sc.min_queries = run_sc.max_queries = 10;
    IL_ASSERT_OK(il_scenario_run(&run_sc, fake_query, &f, &rt));

    f = (fake){0, 2.0, 1, 0, 9.0, 10, 0}; /* bench: a fresh process, cold again */
    il_bench_opts o;
    il_bench_defaults(&o);
    bench_sc = o.sc;
    bench_sc.clock = &ck;
    il_run_record r;
    il_record_init(&r);
    r.trials = bt;
    r.n_trials = 3;
    for (int i = 0; i < 3; i++) IL_ASSERT_OK(il_scenario_run(&bench_sc, fake_query, &f, &bt[i]));
    il_run_validate(&r, &bench_sc, 0);
    CU_ASSERT_EQUAL(r.valid, 1);
    CU_ASSERT(rt.lat.p50 >= r.p50_lo * (1 - r.max_spread) && rt.lat.p50 <= r.p50_hi * (1 + r.max_spread));
    NEAR(rt.lat.p50, 2.0, 0.2); /* within the 5% + decay the steady test leaves */

    f = (fake){0, 2.0, 1, 0, 9.0, 10, 0}; /* the old `run`: one cold call */
    run_sc.warmup = 0;
    run_sc.min_queries = run_sc.max_queries = 1;
    il_trial old;
    IL_ASSERT_OK(il_scenario_run(&run_sc, fake_query, &f, &old));
    CU_ASSERT(old.lat.p50 > r.p50_hi * (1 + r.max_spread));
    il_trial_free(&old);
    il_trial_free(&rt);
    for (int i = 0; i < 3; i++) il_trial_free(&bt[i]);
}

/* Synthetic trials: n queries over s seconds with the given p50 (all latencies equal). */
static void synth(il_trial *t, int64_t n, double s, double p50) {
    memset(t, 0, sizeof *t);
    t->n = n;
    t->seconds = s;
    t->lat.p50 = p50;
}

static void test_invalid_rule(void) {
    il_scenario sc;
    il_scenario_defaults(&sc, IL_SC_SINGLE_STREAM); /* 1 s and 64 queries */
    il_trial t[3];
    il_run_record r;
    il_record_init(&r);
    r.trials = t;
    r.n_trials = 3;
    synth(&t[0], 500, 1.0, 2.00), synth(&t[1], 490, 1.01, 2.05), synth(&t[2], 510, 1.0, 1.96);
    il_run_validate(&r, &sc, 0.10);
    CU_ASSERT_EQUAL(r.valid, 1);
    CU_ASSERT_STRING_EQUAL(r.invalid_reason, "");
    NEAR(r.p50_lo, 1.96, 1e-12);
    NEAR(r.p50_hi, 2.05, 1e-12);
    /* too few queries (LoadGen's minimum query count) */
    synth(&t[1], 63, 1.2, 2.0);
    il_run_validate(&r, &sc, 0.10);
    CU_ASSERT_EQUAL(r.valid, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.invalid_reason, "trial 2: 63 queries"));
    /* too short (minimum duration) */
    synth(&t[1], 500, 0.9, 2.0);
    il_run_validate(&r, &sc, 0.10);
    CU_ASSERT_EQUAL(r.valid, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.invalid_reason, "below the minimum"));
    /* trials that disagree: the process-dependent modes of issue 14 (0.108 vs 0.159 ms) */
    synth(&t[0], 500, 1.0, 0.108), synth(&t[1], 500, 1.0, 0.159), synth(&t[2], 500, 1.0, 0.110);
    il_run_validate(&r, &sc, 0.10);
    CU_ASSERT_EQUAL(r.valid, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.invalid_reason, "beyond the bound 10%"));
    il_run_validate(&r, &sc, 0.60); /* a looser stated bound accepts them */
    CU_ASSERT_EQUAL(r.valid, 1);
    r.n_trials = 0;
    il_run_validate(&r, &sc, 0.10);
    CU_ASSERT_EQUAL(r.valid, 0);
}

static void test_load_record(void) {
    il_load_mark a, b;
    il_machine_load l;
    il_load_mark_now(&a);
    CU_ASSERT(a.total > 0 && a.running >= 1);
    double t = il_now() + 0.05;
    volatile double x = 0;
    while (il_now() < t) x += 1; /* this process is busy: busy time must show */
    il_load_mark_now(&b);
    il_load_between(&a, &b, &l);
    CU_ASSERT(l.cores >= 1);
    CU_ASSERT(isfinite(l.load1) && l.load1 >= 0);
    CU_ASSERT(l.busy_pct > 0 && l.busy_pct <= 100);
    CU_ASSERT(l.steal_pct >= 0 && l.steal_pct <= 100);
    CU_ASSERT(l.others_running >= 0);
    char why[160];
    CU_ASSERT_STRING_EQUAL(il_bench_choose_wait(0, why, sizeof why), "passive"); /* offline: never spin */
    const char *w = il_bench_choose_wait(1, why, sizeof why);
    CU_ASSERT(!strcmp(w, "spin") || !strcmp(w, "passive"));
    CU_ASSERT_PTR_NOT_NULL(strstr(why, w));
}

IL_SUITE("bench-trust", {"warm-up to steady state", test_warmup_steady},
         {"run --repeat and bench agree", test_run_bench_agree}, {"INVALID rule", test_invalid_rule},
         {"machine load record", test_load_record})
