/*
 * bench.h - the benchmark harness: latency statistics, scenarios after MLPerf LoadGen, variants
 * (model x pipeline x engine x backend x batch x threads x scenario) from comma lists or YAML
 * experiment files, provenance, peers (ONNX Runtime, PyTorch), and the SQLite results store.
 *
 * How a run flows: the CLI builds a list of il_variant (il_sweep_expand / il_experiment_load),
 * keeps its shard (il_variants_shard) and calls il_bench_run. Each variant is measured in a
 * forked child process so that its host memory high-water mark is its own, and the child writes
 * the whole run (summary, trials, raw per-query latencies, per-node times, provenance) into the
 * database in one transaction: a crash or kill leaves either the whole run or nothing.
 *
 * Ownership:
 *  - il_trial.lat_ms is allocated by il_scenario_run; free with il_trial_free.
 *  - il_sweep_expand / il_experiment_load return an array the caller frees with free().
 *  - il_store_open returns a handle closed with il_store_close; il_run_record is caller-owned
 *    (il_record_free frees what the harness allocated inside it).
 *
 * Errors: il_status and il_errmsg(), as in the engine.
 */
#ifndef IL_BENCH_H
#define IL_BENCH_H

#include <stdint.h>
#include <stdio.h>

#include "../engine/engine.h"

/* ---------------------------------------------------------------- statistics */

typedef struct il_lat_summary {
    int64_t n;
    double mean, stddev, min, p50, p90, p95, p99, max; /* same unit as the input */
} il_lat_summary;

/* Percentile q in [0,100] of n sorted values, linear interpolation between closest ranks
 * (NumPy's default "linear" method): rank = q/100*(n-1). NaN when n == 0. */
double il_percentile(const double *sorted, int64_t n, double q);
/* Summary of n values (not modified; sorted in a copy). stddev is the sample stddev (n-1). */
void il_lat_summarize(const double *x, int64_t n, il_lat_summary *s);

/* Spread of one figure over repeated trials. */
typedef struct il_spread {
    int n;
    double mean, stddev, min, max;
} il_spread;
void il_spread_of(const double *x, int n, il_spread *s);

/* ---------------------------------------------------------------- scenarios */

typedef enum {
    IL_SC_SINGLE_STREAM = 0, /* one query at a time, the next when the last completes */
    IL_SC_OFFLINE,           /* all samples at once: back-to-back batches, throughput */
    IL_SC_SERVER,            /* Poisson arrivals at target_qps; latency includes queueing */
    IL_SC_MULTI_STREAM,      /* one query = samples_per_query samples, back to back */
    IL_SC_COUNT
} il_scenario_kind;

const char *il_scenario_name(il_scenario_kind k);
/* "single-stream" ... ; IL_ERR_INVALID naming the choices otherwise. */
il_status il_scenario_parse(const char *s, il_scenario_kind *k);

/* Time source for schedulers. Tests pass a virtual clock so that a fake model of known latency
 * gives exact figures; NULL means the monotonic clock and nanosleep. */
typedef struct il_clock {
    double (*now)(void *ctx);                  /* seconds */
    void (*sleep_until)(void *ctx, double t);  /* returns at or after t */
    void *ctx;
} il_clock;

/* Runs one query of `samples` samples (the callee splits it into batches). */
typedef il_status (*il_query_fn)(void *ctx, int samples);

typedef struct il_scenario {
    il_scenario_kind kind;
    int batch;              /* samples per engine call (>= 1) */
    int samples_per_query;  /* multi-stream group size (0: 8) */
    int warmup;             /* at least this many unrecorded queries first (and 0.1 s), then more
                               until the latencies settle (see il_scenario_run) */
    double warmup_max_seconds; /* bound on the settling warm-up (0: 2 s) */
    double min_seconds;     /* measure at least this long ... */
    int64_t min_queries;    /* ... and at least this many queries */
    int64_t max_queries;    /* 0: no cap (the min_* limits end a measurement) */
    double target_qps;      /* server: mean arrival rate, queries/s */
    double latency_bound_ms;/* server: the p99 bound (0: none) */
    uint64_t seed;          /* server arrivals */
    const il_clock *clock;  /* NULL: real time */
} il_scenario;

/* Fill sensible defaults: warm-up 5 (then until steady), 1 s, 64 queries, server 50 QPS,
 * bound 10 ms. */
void il_scenario_defaults(il_scenario *sc, il_scenario_kind k);

/* One measurement. Latencies are per query in milliseconds, in issue order. */
typedef struct il_trial {
    double *lat_ms;
    int64_t n;              /* queries measured */
    int64_t samples;        /* samples processed in the measured window */
    double seconds;         /* measured window, first issue to last completion */
    double throughput;      /* samples per second */
    double qps;             /* queries completed per second */
    il_lat_summary lat;
    int bound_met;          /* server: p99 <= latency_bound_ms (1 when no bound) */
    int64_t warmup_n;       /* warm-up queries run before this trial */
    int steady;             /* the warm-up ended because latencies settled (0: hit its bound) */
} il_trial;

il_status il_scenario_run(const il_scenario *sc, il_query_fn fn, void *ctx, il_trial *out);
void il_trial_free(il_trial *t);

/* Server scenario: bisect the highest target QPS in [lo, hi] whose p99 meets the bound, in
 * `steps` measurements. *best is 0 when even lo fails; *at (may be NULL) gets the trial of the
 * best passing QPS. The measure callback lets peers run each probe out of process. */
typedef il_status (*il_measure_fn)(void *ctx, const il_scenario *sc, il_trial *out);
il_status il_find_max_qps(const il_scenario *sc, il_measure_fn measure, void *ctx, double lo, double hi,
                          int steps, double *best, il_trial *at);
/* The in-process measure callback over an il_query_fn: ctx is an il_query_binding. */
typedef struct il_query_binding {
    il_query_fn fn;
    void *ctx;
} il_query_binding;
il_status il_measure_query(void *binding, const il_scenario *sc, il_trial *out);

/* ---------------------------------------------------------------- variants */

#define IL_PATH_MAX 1024

typedef struct il_variant {
    char model[IL_PATH_MAX];    /* model file as given */
    char pipeline[256];         /* "O0" (as is), "O1".."O3", or passes joined with '+' or ',' */
    char engine[16];            /* "inferlab", "onnxruntime", "pytorch" */
    char backend[16];           /* "cpu", "cuda" */
    int batch, threads;         /* threads 0: all cores */
    il_scenario_kind scenario;
    char parent[IL_PATH_MAX];   /* FP32 parent for agreement ("" : the model itself when the
                                   pipeline derives from it) */
    char dataset[256];          /* labelled set spec (distill.h), "" : guessed from the model's
                                   metadata/shape, "none": no accuracy */
    char label[128];            /* variant name in tables; "" : derived */
    char precision[8];          /* an accelerator's arithmetic: fp32, tf32, fp16, bf16 ("" : not
                                   asked for, fp32 there; the cpu computes what the model says) */
    int graphs;                 /* CUDA graphs: the run captured once and replayed */
} il_variant;

/* Comma lists of each dimension (NULL: the default). */
typedef struct il_sweep {
    const char *models, *pipelines, *engines, *backends, *batches, *threads, *scenarios;
    const char *parent, *dataset, *label;
    const char *precisions;     /* fp32,tf32,fp16,bf16: backend cuda only (fp32 elsewhere) */
    const char *graphs;         /* on, off (default off): backend cuda only */
} il_sweep;

/* Expand the cross product. IL_ERR_INVALID on a bad item (a message names it), and on a
 * precision other than fp32 or graphs on with the cpu backend or the onnxruntime peer. */
il_status il_sweep_expand(const il_sweep *s, il_variant **out, int *n);
/* Keep the variants whose index i satisfies i % of == shard (shard in [0, of)). */
void il_variants_shard(il_variant *v, int *n, int shard, int of);
/* A model's name in tables: the file's stem (mlp.onnx -> mlp), or for model.onnx its folder's
 * (resnet50/model.onnx -> resnet50; a folder named onnx/ is skipped). */
void il_model_name(const char *path, char *buf, size_t n);
/* The label shown in tables: "model-name O2" (+ engine when not inferlab), the model named
 * after its folder when the file is model.onnx; cut to n-1 with il_label_short. */
void il_variant_label(const il_variant *v, char *buf, size_t n);
/* label itself when it has at most width characters, else its first width-9 and "~" and 8 hex
 * digits of its SHA-256: cut labels stay distinct. */
void il_label_short(const char *label, size_t width, char *out, size_t n);

/* ---------------------------------------------------------------- options */

typedef struct il_bench_opts {
    const char *db;          /* results database path */
    il_scenario sc;          /* timing parameters (kind and batch come from each variant) */
    int trials;              /* repeated measurements per run (>= 1) */
    int find_max_qps;        /* server: search the highest QPS meeting the bound */
    int profile;             /* per-node times into the database (a separate profiled pass) */
    int64_t accuracy_samples;/* samples used for accuracy and agreement (0: the whole set) */
    uint64_t seed;
    const char *cache_dir;   /* derived models (pipelines) are written here */
    const char *peers_dir;   /* where ort_bench.js / torch_bench.py live */
    const char *experiment;  /* name recorded with each run ("" : none) */
    int progress;            /* progress bar on stderr */
    double max_spread;       /* trials whose p50s differ by more than this fraction of their
                                median make the run INVALID (0: 0.10) */
    int interleave;          /* variants measured in turn, trial by trial (A B A B), in groups
                                of this many (0: 8; 1: one variant at a time) */
    int quiet;               /* no per-run lines on stdout */
    const char *const *inputs; /* "NAME=FILE" (.npy/.pb): the user's inputs, for timing and */
    int n_inputs;              /* agreement (others stay random within their valid range) */
    const char *inputs_dir;  /* a folder of NAME.npy / NAME.pb / input_K.pb files, or NULL */
    const char *const *shapes; /* "NAME=DIMS": input shapes fixed before the pipeline (so */
    int n_shapes;              /* Shape/Gather chains fold); O0 is then a derived file too */
    int no_fork;             /* measure in this process (debugging; RSS then not per variant) */
    int tactics;             /* inferlab's kernel choice: IL_TACTICS_HEURISTIC or _TIMED (engine.h) */
    const char *timing_cache;/* timed tactics: the cache file (NULL: none) */
    int verbose;
    int eval;                /* the accuracy/agreement pass after timing: IL_EVAL_ALL (default),
                                IL_EVAL_INFERLAB (not the peers: each costs another process), none */
    int copies;              /* GPU variants: time runs with the host copies of inputs and outputs
                                (0: the device alone, inputs resident, as the PyTorch peer) */
} il_bench_opts;

enum { IL_EVAL_ALL = 0, IL_EVAL_INFERLAB = 1, IL_EVAL_NONE = 2 };

void il_bench_defaults(il_bench_opts *o);

/* Read an experiment file (YAML). Top-level keys set options and defaults; `variants:` is a
 * list of groups, each expanded as a cross product of its lists. See docs/bench.md. */
il_status il_experiment_load(const char *path, il_bench_opts *o, il_variant **out, int *n);

/* ---------------------------------------------------------------- provenance */

/* Key/value facts about the machine and build (git commit, flags, compiler, CPU, cores, GPU,
 * driver, CUDA libraries, date); appended to kv as "key\tvalue\n" lines. */
void il_provenance_collect(char *kv, size_t n);
/* SHA-256 of a file as 64 hex digits. */
il_status il_sha256_file(const char *path, char hex[65]);
void il_sha256(const void *data, size_t len, unsigned char out[32]);
/* The current UTC time as "2024-05-01T12:00:00.123Z". */
void il_bench_timestamp(char *buf, size_t n);

/* ---------------------------------------------------------------- machine load */

/* What else the machine was doing: read from /proc before and after the trials. A figure
 * measured beside other busy processes is recorded with them, never silently. */
typedef struct il_machine_load {
    double load1;           /* 1-minute load average at the end */
    double steal_pct;       /* % of CPU time stolen by a hypervisor during the trials */
    double busy_pct;        /* % of all CPU time busy during the trials (ours included) */
    int others_running;     /* runnable processes besides this one, before the trials */
    int cores;
} il_machine_load;

/* Snapshot of /proc/stat and /proc/loadavg. */
typedef struct il_load_mark {
    unsigned long long busy, steal, total;
    int running;
} il_load_mark;
void il_load_mark_now(il_load_mark *m);
/* The load between two marks (before: taken when this process's threads were idle). */
void il_load_between(const il_load_mark *before, const il_load_mark *after, il_machine_load *l);
/* "spin" when the machine is idle (no other runnable process, load average below half the
 * cores) and spinning helps the scenario (single-stream, server: idle gaps between queries);
 * "passive" otherwise. why gets a short reason. */
const char *il_bench_choose_wait(int spin_helps, char *why, size_t n);

/* ---------------------------------------------------------------- the run record */

typedef struct il_node_time {
    char name[96], op_type[48], kernel[48]; /* kernel: the one the plan ran ("" when folded) */
    double ms;      /* mean per engine call */
    int64_t macs;   /* per engine call */
} il_node_time;

/* Everything stored for one run. Unknown figures are NaN (doubles) or -1 (integers). */
typedef struct il_run_record {
    il_variant v;
    char uuid[40], created_at[40], experiment[128];
    char model_name[256], variant[160], precision[16], engine_version[64];
    char model_sha256[65], parent_sha256[65], parent_variant[160];
    int64_t model_bytes, params, flops; /* flops: per sample, 2 x MACs */
    double sparsity;                    /* zero fraction of float weights of rank >= 2 */
    int samples_per_query;
    int n_trials;
    il_trial *trials;
    il_lat_summary lat;                 /* over every measured query of every trial */
    double throughput, throughput_stddev; /* mean and stddev over trials */
    double target_qps, latency_bound_ms, max_qps;
    int bound_met;                      /* -1: not a server run */
    int64_t peak_host_bytes, peak_device_bytes, peak_activation_bytes;
    char dataset[64];
    int64_t accuracy_samples;
    double top1, top5, agree_top1, max_abs_err, cosine;
    uint64_t seed;
    int n_nodes;
    il_node_time *nodes;
    char provenance[8192];              /* "key\tvalue\n" lines */
    char note[256];
    /* Trust in the figures (MLPerf LoadGen's VALID/INVALID): valid is 0 when a trial missed the
     * minimum duration or query count, or the trials' p50s disagree beyond the stated bound;
     * invalid_reason says which. p50_lo/p50_hi: the lowest and highest trial p50. */
    int valid;
    char invalid_reason[192];
    double p50_lo, p50_hi, max_spread;
    int64_t warmup_queries;             /* warm-up queries of the first trial */
    il_machine_load load;               /* the machine while the trials ran */
    char wait_policy[96];               /* OpenMP wait policy of the measuring process, and why */
    /* How the variant was made, as its model file says (metadata_props inferlab.quantize and
     * inferlab.prune, written by `inferlab quantize` / `prune`): one JSON object, "" when none.
     * layer_sparsity: JSON object {node name: zero fraction of its weight} for every Conv, Gemm
     * and MatMul with a constant weight. */
    char recipe[2048];
    char layer_sparsity[4096];
    /* GPU runs (backend cuda; "" elsewhere): the device and its software, as the engine that ran
     * saw them (inferlab: the CUDA runtime it loaded; PyTorch: what torch reports), and how
     * peak_device_bytes was measured. */
    char gpu[128], gpu_cc[16], gpu_driver[64], cuda_version[32], cublas_version[32], cudnn_version[32];
    char device_memory_how[160];
} il_run_record;

void il_record_init(il_run_record *r);
void il_record_free(il_run_record *r);
/* Set r->valid / invalid_reason / p50_lo / p50_hi from its trials against sc's minimums and
 * the spread bound (0: 0.10). */
void il_run_validate(il_run_record *r, const il_scenario *sc, double max_spread);

/* ---------------------------------------------------------------- the store */

typedef struct il_store il_store;

#define IL_STORE_VERSION 6

/* Open (creating) a results database and migrate it to IL_STORE_VERSION (WAL mode, busy
 * timeout so that concurrent writers wait instead of failing). A foreign file, an invalid or
 * newer schema is refused before anything is written. */
il_status il_store_open(const char *path, il_store **out);
/* Open an existing database for reading only (db list/show/export, report): never created,
 * migrated or switched to WAL; refused when missing, foreign, newer, empty or damaged (SQLite's
 * quick_check); an older schema is read through a migrated in-memory copy. */
il_status il_store_open_readonly(const char *path, il_store **out);
/* The same, stopping at schema version `version` (tests of migrations). */
il_status il_store_open_version(const char *path, int version, il_store **out);
void il_store_close(il_store *s);
int il_store_version(il_store *s);
/* Insert a whole run in one transaction; *id (may be NULL) gets its run id. */
il_status il_store_insert(il_store *s, const il_run_record *r, int64_t *id);
/* Copy every run of other that this database lacks (by uuid). other is only read (the columns
 * both schemas have are copied); it must exist, be inferlab's and not be this same file. */
il_status il_store_merge(il_store *s, const char *other, int *added, int *skipped);
/* `db list`, `db show RUN` (id or uuid prefix), `db export --csv` (the results view). */
il_status il_store_list(il_store *s, FILE *f);
il_status il_store_show(il_store *s, const char *run, FILE *f);
il_status il_store_export_csv(il_store *s, const char *table, FILE *f);
/* The underlying sqlite3* for reports and tests. */
void *il_store_sqlite(il_store *s);
/* Append n rows to a table of its own beside the runs (a pruning scan, an INT8 analysis) in the
 * results database at path, created with the results schema when missing: create_sql (CREATE
 * TABLE IF NOT EXISTS), then insert_sql once per row, bound by bind(stmt, i, ctx) with stmt a
 * sqlite3_stmt*, all in one transaction. what names the rows in the error message. */
il_status il_store_append_rows(const char *path, const char *what, const char *create_sql, const char *insert_sql,
                               int n, void (*bind)(void *stmt, int i, void *ctx), void *ctx);

/* ---------------------------------------------------------------- running */

/* Measure every variant and store one run per variant (per found QPS for --find-max-qps).
 * Failed variants are reported on stderr and counted in *failed; the rest go on. */
il_status il_bench_run(const il_bench_opts *o, const il_variant *v, int n, int *failed);
/* A plan file (`inferlab build`) fixes what it runs on: v's backend, precision and graphs from
 * its header (read without building it, so no GPU starts). */
il_status il_bench_plan_target(const char *path, il_variant *v);
/* Measure one variant in this process into r (no store). */
il_status il_bench_measure(const il_bench_opts *o, const il_variant *v, il_run_record *r);

#endif
