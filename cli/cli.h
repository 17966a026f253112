/*
 * cli.h - the command-line front end: one function per subcommand, argument helpers.
 * The CLI holds no logic of its own: it parses flags, calls the library, prints.
 */
#ifndef IL_CLI_H
#define IL_CLI_H

#include "engine/engine.h"

int cmd_info(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_check(int argc, char **argv);
/* Commands defined in their own files under cli/ as their modules land; weak so that the front
 * end links (and simply does not list them) before a module exists. */
#define IL_WEAK __attribute__((weak))
IL_WEAK int cmd_opt(int argc, char **argv);     /* cli/opt.c (passes/) */
IL_WEAK int cmd_passes(int argc, char **argv);  /* cli/opt.c */
IL_WEAK int cmd_bench(int argc, char **argv);   /* cli/bench.c (bench/) */
IL_WEAK int cmd_db(int argc, char **argv);      /* cli/db.c */
IL_WEAK int cmd_report(int argc, char **argv);  /* cli/report.c (reports/) */
IL_WEAK int cmd_zoo(int argc, char **argv);     /* cli/train.c (distill/) */
IL_WEAK int cmd_train(int argc, char **argv);   /* cli/train.c */
IL_WEAK int cmd_distill(int argc, char **argv); /* cli/train.c */
IL_WEAK int cmd_eval(int argc, char **argv);    /* cli/train.c */
IL_WEAK int cmd_quantize(int argc, char **argv); /* cli/quantize.c (quantize/) */
IL_WEAK int cmd_prune(int argc, char **argv);   /* cli/prune.c (prune/) */

int cmd_build(int argc, char **argv);  /* cli/build.c: MODEL.onnx -> model.plan */
int cmd_ops(int argc, char **argv);    /* cli/ops.c: ops and their kernels per backend */

/* cli/engine_opts.c: the flags of every command that builds a plan. */
typedef struct cli_engine {
    const char *kernels;      /* --kernel, joined with commas */
    int tactics;              /* --tactics */
    const char *timing_cache; /* --timing-cache */
    il_backend backend;       /* --backend cpu|cuda */
    int precision;            /* --precision fp32|tf32|fp16|bf16 (il_precision) */
    int graphs;               /* --graphs: capture and replay (CUDA graphs) */
    char kernels_buf[1024];
} cli_engine;
/* argv[*i] is one of the engine flags: 1 (consumed, *i past its value), 0 (not one), -1 (bad,
 * message printed). --plugin loads the plugin right away. */
int cli_engine_arg(int argc, char **argv, int *i, cli_engine *e);
int cli_engine_check(const cli_engine *e); /* 0 (message printed) when --kernel names nothing real */
void cli_engine_apply(const cli_engine *e, il_plan_opts *o);
extern const char *cli_engine_help;

/* Print "inferlab: <message>" for a failed status and return the exit code 1. */
int cli_fail(il_status st, const char *what);
/* Parse an integer/float flag value or fail with a message naming the flag. */
int cli_int(const char *flag, const char *s, long long *out);
int cli_double(const char *flag, const char *s, double *out);
/* Load and verify a model, printing the error on failure. */
il_graph *cli_load(const char *path);
/* Parse "name=value" dim bindings (--dim) into binds (static storage, up to 16). */
int cli_add_bind(const char *s, il_bind *binds, int *nb);
/* Make a random input tensor for graph input i, with symbolic dims bound. */
il_tensor *cli_random_input(const il_graph *g, int i, int64_t batch, const il_bind *b, int nb, uint64_t *rng);

/* Run the program again with OpenMP wait policy `want` (spin, passive, or auto: chosen from the
 * machine's load and spin_helps, see bench/load.c) unless the environment already sets one.
 * Returns when no re-run happens. */
void cli_wait_policy(const char *want, int spin_helps);
/* Check a --wait value (auto, spin, passive) into *out, or print why not and return 0. */
int cli_wait_flag(const char *val, const char **out);
/* Write s as a JSON string (quoted, escaped). */
void cli_json_str(FILE *f, const char *s);
/* cli/train.c: a labelled set (il_data_load's spec, split an il_split) prepared as model g's
 * metadata says (scale, geometry) and its preprocessing; the caller frees *d (il_data_free). */
struct il_dataset;
struct il_preproc;
il_status cli_model_data(const il_graph *g, const char *spec, int split, struct il_dataset **d, struct il_preproc *p);
/* Training-time augmentation `au` (none, crop, flip, crop+flip; crop pads 2 pixels below 32x32
 * images, 4 from 32x32 up) into p for the images of d; IL_ERR_INVALID for another word. */
il_status cli_augment(const char *au, const struct il_dataset *d, struct il_preproc *p);
/* Load every `--plugin P.so` of argv (pass plugins); 0 after printing the error. */
int cli_load_plugins(int argc, char **argv);

#endif
