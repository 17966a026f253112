/*
 * load.c - what else the machine is doing, read from /proc: the load average, the runnable
 * processes besides ours, busy and stolen CPU time between two marks; and the OpenMP wait policy
 * that follows from it.
 *
 * Why it matters: with GOMP_SPINCOUNT=3000000 (spin) OpenMP's idle threads busy-wait for
 * milliseconds. On an idle machine that saves a futex wake-up per parallel region (a small
 * model's run is hundreds of regions); beside one other busy process the spinning threads take
 * the cores the working thread needs. Measured on the 2-core build machine, the demo-sized
 * student (zoo vgg, width 8), 2 threads, `run --repeat 300` interleaved, one process busy:
 * spin mean 1.12-1.17 ms, passive 0.32-0.34 ms; no busy loop (load average 0.3-1.6): spin 0.23-0.25 ms, passive
 * 0.85-0.91 ms. Neither policy is right everywhere, so the harness chooses by the load and
 * records the choice and the load with every run.
 */
#include "bench.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void il_load_mark_now(il_load_mark *m) {
    memset(m, 0, sizeof *m);
    m->running = -1;
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        unsigned long long v[8] = {0};
        if (!strncmp(line, "cpu ", 4) &&
            sscanf(line + 4, "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                   &v[6], &v[7]) >= 4) {
            /* user nice system idle iowait irq softirq steal (guest time is inside user) */
            m->total = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
            m->busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
            m->steal = v[7];
        } else if (!strncmp(line, "procs_running ", 14)) {
            m->running = atoi(line + 14);
        }
    }
    fclose(f);
}

static double load_average(void) {
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f && fscanf(f, "%lf", &l) != 1) l = -1;
    if (f) fclose(f);
    return l;
}

void il_load_between(const il_load_mark *a, const il_load_mark *b, il_machine_load *l) {
    double total = b->total > a->total ? (double)(b->total - a->total) : 0;
    l->cores = il_num_cores();
    l->load1 = load_average();
    if (l->load1 < 0) l->load1 = NAN;
    l->busy_pct = total > 0 ? 100.0 * (double)(b->busy - a->busy) / total : NAN;
    l->steal_pct = total > 0 ? 100.0 * (double)(b->steal - a->steal) / total : NAN;
    /* the reading process itself is one of the runnable ones */
    l->others_running = a->running > 0 ? a->running - 1 : -1;
}

const char *il_bench_choose_wait(int spin_helps, char *why, size_t n) {
    /* Two looks at the machine while this process sleeps for 30 ms: the CPU time others used in
     * between, and the fewest runnable processes at three moments 10 ms apart (a process that
     * runs for a moment, a shell or this one's parent, is not load; a compiler running
     * throughout is). Not the load average: it decays over a minute and counts this process's
     * own work - after `make demo`'s training step it stood at 1.4 on 2 cores with nothing else
     * running, and the passive policy it chose made the teacher 2.3x slower (1.21-1.36 ms
     * against 0.52 ms at p50), as every sleeping thread then wakes through a futex. */
    int others = 1 << 30;
    il_load_mark first, m;
    il_load_mark_now(&first);
    m = first;
    for (int i = 0; i < 3; i++) {
        if (i) il_load_mark_now(&m);
        if (m.running > 0 && m.running - 1 < others) others = m.running - 1;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    il_load_mark_now(&m);
    double total = m.total > first.total ? (double)(m.total - first.total) : 0;
    double busy = total > 0 ? 100.0 * (double)(m.busy - first.busy) / total : -1;
    int cores = il_num_cores();
    if (others == 1 << 30) others = -1;
    if (!spin_helps) {
        snprintf(why, n, "passive: the scenario keeps threads busy");
        return "passive";
    }
    /* busy: percent of all cores; others are using more than a quarter of one core */
    if (others != 0 || busy < 0 || busy * cores > 25.0) {
        snprintf(why, n, "passive: machine busy (%d other runnable, %.0f%% of %d cores busy)", others, busy, cores);
        return "passive";
    }
    snprintf(why, n, "spin: machine idle (%.0f%% of %d cores busy)", busy, cores);
    return "spin";
}
