/*
 * passes.h - the public interface of inferlab's graph passes: what a pass is, the registry of
 * passes (built-ins and plugins), pipelines and presets, and the pass manager that runs a
 * pipeline with optional verification, statistics and IR dumps.
 *
 * A pass is a named function that rewrites an il_graph in place and counts what it changed:
 *
 *     static il_status run(il_graph *g, il_pass_stats *st) {
 *         ... find a pattern, rewrite it ...
 *         il_pass_count(st, "Relu pairs merged", 1);
 *         return IL_OK;
 *     }
 *     static const il_pass my_pass = {"merge-relu", "Relu(Relu(x)) -> Relu(x)", run};
 *
 * Contract of run(): leave the graph valid (il_graph_verify passes) and computing the same
 * outputs; count every rewrite with il_pass_count (a pass that counts nothing changed nothing,
 * which is how the manager and the tests check idempotence); return IL_OK, or an error with a
 * message when the graph is malformed - never a half-rewritten graph on purpose. Dead nodes
 * may be left marked dead: the manager compacts and re-sorts the graph after each pass.
 *
 * Plugins: a shared object that defines
 *
 *     il_status il_plugin_init(int abi) { IL_PLUGIN_CHECK_ABI(abi); return il_pass_register(&my_pass); }
 *
 * loaded with il_pass_load_plugin (the CLI's --plugin). See docs/passes.md.
 *
 * Ownership: il_pass structs given to il_pass_register must outlive the process (static data);
 * the registry keeps pointers to them. Pipelines copy the strings they are given.
 */
#ifndef IL_PASSES_H
#define IL_PASSES_H

#include "../engine/engine.h"

/* Bumped when il_pass, il_pass_stats, il_kernel or il_kctx change layout (plugins register
 * passes and kernels); a plugin built against another version is refused with a message
 * instead of crashing. 2: the kernel registry. 3: il_pass.lossy. 4: blocked layouts (il_kernel.layouts,
 * il_kctx.blocked_in/out). */
#define IL_PASS_ABI 5
#define IL_PLUGIN_CHECK_ABI(abi)                                                                       \
    do {                                                                                               \
        if ((abi) != IL_PASS_ABI)                                                                      \
            return il_error(IL_ERR_UNSUPPORTED, "plugin built for pass ABI %d, inferlab has %d",       \
                            IL_PASS_ABI, (abi));                                                       \
    } while (0)

#define IL_PASS_MAX_COUNTERS 8

/* What one run of one pass did. The pass fills counters through il_pass_count; the manager
 * fills the node counts and the time. */
typedef struct il_pass_stats {
    const char *pass;      /* the pass's name */
    int nodes_before, nodes_after;
    double seconds;
    int n_counters;
    struct {
        const char *what;  /* static string, e.g. "BatchNormalization folded" */
        int count;
    } counters[IL_PASS_MAX_COUNTERS];
} il_pass_stats;

typedef struct il_pass {
    const char *name;     /* used in pipelines: lower-case-with-dashes */
    const char *summary;  /* one line for `inferlab passes` */
    il_status (*run)(il_graph *g, il_pass_stats *st);
    /* 1: the pass changes the outputs on purpose (quantization, pruning): --verify checks its
     * result by top-1 agreement and cosine with the original on the model's evaluation data
     * (il_pass_opts.lossy_agree/lossy_cosine), not element by element. */
    int lossy;
} il_pass;

/* Add n to the counter named what (a string that outlives the stats, normally a literal). */
void il_pass_count(il_pass_stats *st, const char *what, int n);
/* Sum of all counters: 0 means the pass changed nothing. */
int il_pass_changes(const il_pass_stats *st);
/* "fold-bn: 20 BatchNormalization folded" (or "nothing to do") into buf. */
const char *il_pass_stats_str(const il_pass_stats *st, char *buf, size_t n);

/* ---------------------------------------------------------------- registry */

/* Register a pass (a plugin calls this from il_plugin_init). IL_ERR_INVALID when the name is
 * taken, empty or not lower-case-with-dashes, or run is NULL. */
il_status il_pass_register(const il_pass *p);
/* The pass with that name, or NULL. */
const il_pass *il_pass_find(const char *name);
/* All registered passes, built-ins first in pipeline order, then plugins; count in *n. */
const il_pass *const *il_pass_all(int *n);
/* Load a plugin: dlopen the file and call its il_plugin_init(IL_PASS_ABI). */
il_status il_pass_load_plugin(const char *path);

/* ---------------------------------------------------------------- pipelines */

/* The pipeline string of a preset level: 0 none, 1 cleanup, 2 cleanup + fusions, 3 + layout and
 * backend-specific rewrites (none yet, so the same as 2). NULL for another level. */
const char *il_pass_preset(int level);
/* Passes whose output holds only standard ONNX ops, and the pass that lowers ai.inferlab
 * fused ops back to standard ones (what `opt --portable` appends). */
#define IL_PASS_LOWER "lower-fused"

/* Check a comma-separated pipeline: every name registered. IL_ERR_INVALID naming the first
 * unknown one. */
il_status il_pipeline_check(const char *pipeline);

typedef struct il_pass_opts {
    int verify;          /* after each pass: il_graph_verify, then outputs vs the original graph */
    double rtol, atol;   /* float32 tolerance of verify; 0 gives 1e-3 and 1e-4 */
    int64_t batch;       /* first dim of random inputs when symbolic (0: 2) */
    const il_bind *binds;/* other symbolic dims of random inputs (unbound ones: 3) */
    int n_binds;
    uint64_t seed;       /* random inputs (0: 1); each check draws fresh inputs */
    const char *dump_after; /* a pass name ("all": every pass): write il_graph_dump after it */
    FILE *dump;          /* where dumps go (NULL: stdout) */
    FILE *log;           /* stats lines when stats is set (NULL: stderr) */
    int stats;           /* print one line per pass as it finishes */
    double lossy_agree;  /* lossy passes: least top-1 agreement with the original (0: 0.97) */
    double lossy_cosine; /* ... and least cosine similarity of output 0 (0: 0.98) */
} il_pass_opts;

/* Run one pass by name on g, filling *st (may be NULL). The graph is compacted and sorted
 * afterwards. */
il_status il_pass_run(il_graph *g, const char *name, il_pass_stats *st);

/* Run a pipeline. stats (may be NULL) receives one entry per pass run, up to max_stats;
 * *n_stats (may be NULL) the number run. With verify, the first pass whose result fails the
 * verifier or differs from the original graph stops the pipeline with an error naming the pass,
 * the output and the worst element; the graph is left as that pass made it. */
il_status il_pipeline_run(il_graph *g, const char *pipeline, const il_pass_opts *o, il_pass_stats *stats,
                          int max_stats, int *n_stats);

/* Compare the outputs of two graphs with the same inputs on fresh random inputs (drawn from
 * *rng, il_graph_fill_input). Float outputs are compared relative to the reference output's
 * scale s = max |want|: |got - want| <= atol*s + rtol*|want| (rtol/atol for float32; 1e-2/1e-2
 * for float16/bfloat16), cosine similarity >= 1 - 10 rtol, and each row's top-1 the same
 * (ties excepted); integers and bool exactly. IL_ERR_INVALID with a message naming the output
 * and its worst element otherwise. When a reference output is constant or zero even on inputs
 * scaled up to x100, IL_ERR_UNSUPPORTED "cannot verify: ...": such outputs cannot tell a wrong
 * rewrite from a right one. The check --verify runs after each pass. */
il_status il_graph_equivalent(const il_graph *want, const il_graph *got, const il_pass_opts *o, uint64_t *rng);

/* Live nodes of g (not marked dead). */
int il_graph_live_nodes(const il_graph *g);

/* Random values for graph input i (passes/inputs.c): floats in [-1, 1); integer ids below the
 * size of the table a Gather looks them up in; inputs named like a mask all ones; other
 * integers 0/1. t has the input's dtype and the shape to fill. */
void il_graph_fill_input(const il_graph *g, int i, il_tensor *t, uint64_t *rng);
/* The fixed batch of a model whose input 0 has a fixed first dim (rank >= 2), else 0. */
int64_t il_graph_fixed_batch(const il_graph *g);
/* The one batch rule: *batch = asked (> 0) or the model's fixed batch or 1; IL_ERR_SHAPE when
 * the model's batch is fixed and asked is another. */
il_status il_graph_batch(const il_graph *g, int64_t asked, int64_t *batch);
/* Fix input shapes from "NAME=DIMS" specs (DIMS: positive integers joined by 'x' or ','):
 * symbolic dims become those numbers, so Shape/Gather chains over them fold (fold-constants).
 * IL_ERR_INVALID for an unknown input or a bad spec, IL_ERR_SHAPE against a fixed dim. */
il_status il_graph_fix_shapes(il_graph *g, const char *const *specs, int n);

#endif
