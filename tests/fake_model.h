/*
 * fake_model.h - a fake model of known latency on a virtual clock, for the scheduler tests
 * (tests/test_bench.c, tests/test_bench_trust.c): figures come out exact.
 */
#ifndef IL_TEST_FAKE_MODEL_H
#define IL_TEST_FAKE_MODEL_H

#include <math.h>

#include "../bench/bench.h"

/* Each engine call takes ms_per_call; with cold_ms, call i takes ms_per_call + cold_ms *
 * exp(-i / tau) (a model that starts cold: page faults, lazily started thread pools, a CPU clock
 * ramping up); with grow > 0 it never settles: call i takes ms_per_call * (1 + grow)^i. */
typedef struct {
    double t, ms_per_call;
    int batch;
    int64_t calls;
    double cold_ms, tau, grow;
} fake;

static inline double v_now(void *c) { return ((fake *)c)->t; }
static inline void v_sleep(void *c, double t) {
    fake *f = c;
    if (t > f->t) f->t = t;
}
static inline il_status fake_query(void *c, int samples) {
    fake *f = c;
    int calls = (samples + f->batch - 1) / f->batch;
    for (int k = 0; k < calls; k++) {
        double i = (double)f->calls++;
        f->t += (f->grow > 0      ? f->ms_per_call * pow(1 + f->grow, i)
                 : f->cold_ms > 0 ? f->ms_per_call + f->cold_ms * exp(-i / f->tau)
                                  : f->ms_per_call) / 1e3;
    }
    return IL_OK;
}

#endif
