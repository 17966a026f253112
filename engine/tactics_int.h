/*
 * tactics_int.h - internal to engine/: what the per-node timer (tactics.c) hands to the charge of
 * a choice in its plan (tactics_cost.c): the timing cache and the machine's or a test's timer.
 */
#ifndef IL_TACTICS_INT_H
#define IL_TACTICS_INT_H

#include "plan_int.h"

/* The timing cache: KEY -> VALUE lines (a kernel name, or a segment stage's names). */
typedef struct {
    char **keys, **names;
    int n, cap, dirty;
    int loaded; /* entries [0, loaded) came from the file; later ones from this build */
} il_tcache;

/* The value of key (NULL: none); whether the file it was loaded from had it. */
const char *il_tcache_get(const il_tcache *c, const char *key);
int il_tcache_from_file(const il_tcache *c, const char *key);
void il_tcache_put(il_tcache *c, const char *key, const char *name);

/* What makes two nodes time alike (op, opset, backend, threads, inputs, attributes): the cache
 * key of a node's alone timing, and part of a plan's context key. */
void il_tactics_node_key(const il_kctx *c, const char *backend, char *key, size_t n);

/* The timer in force (il_tactics_set_timer), NULL fields where the machine's clock is used. */
const il_tactic_timer *il_tactics_timer(void);

/* Per node, what the timed tactic knew (plan_int.h's tinfo). */
struct il_tactic_info {
    const il_kernel *heur; /* the heuristic's pick (the highest priority) */
    double alone, heur_alone; /* seconds alone of the timed pick and of heur; <0: not timed */
    int cached;               /* the alone pick came from the cache */
    char why[320];
};

/* After every node has its alone pick (p->kern): charge each pick that differs from the
 * heuristic's what it costs in the plan (tactics_cost.c), and keep the cheaper per segment. */
il_status il_tactics_charge(il_plan *p, il_tcache *cache);

#endif
