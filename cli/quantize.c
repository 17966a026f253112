/*
 * quantize.c - `inferlab quantize MODEL.onnx -o OUT.onnx [--calib SPEC] [--method M] ...`:
 * INT8 post-training quantization into the standard ONNX QDQ form (quantize/quantize.h),
 * or dynamic quantization of MatMul/Gemm; per-layer error analysis and accuracy-aware tuning.
 */
#include "cli.h"
#include "bench/bench.h"
#include "quantize/quantize.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: inferlab quantize MODEL.onnx -o OUT.onnx [--calib SPEC] [--method minmax|percentile|entropy|mse]\n"
            "                         [--percentile P] [--per-tensor] [--symmetric] [--exclude NODE,...] [--dynamic]\n"
            "                         [--analyze] [--target-drop POINTS] [--val SPEC] [--calib-cache FILE]\n"
            "                         [--plugin P.so]... [--dim NAME=V] [--threads N] [--json] [--quiet]\n"
            "  --calib SPEC     calibration data: fashion-mnist:train:512 (the default for 1x28x28 models;\n"
            "                   also mnist:DIR, cifar10:DIR, folder:DIR with [:train|:test][:N]), a folder of\n"
            "                   .npy inputs, or random:N (the default for other models: random:64)\n"
            "  --method M       the calibrator choosing each activation's range (default entropy); plugins add more\n"
            "  --percentile P   the percentile calibrator's cut (default 99.99)\n"
            "  --per-tensor     weights per tensor (default: per output channel, symmetric int8)\n"
            "  --symmetric      activations int8 symmetric (default: uint8 with a zero point)\n"
            "  --exclude NODES  keep these nodes (comma-separated names) in FP32\n"
            "  --dynamic        dynamic quantization of MatMul/Gemm (DynamicQuantizeLinear + MatMulInteger), no data\n"
            "  --analyze        per-layer SQNR and cosine between FP32 and INT8 activations, worst first\n"
            "  --db FILE        with --analyze: also into FILE's table quant_analysis (the bench results\n"
            "                   database), which `inferlab report` plots\n"
            "  --target-drop P  keep the costliest layers in FP32 one at a time until the top-1 drop on the\n"
            "                   validation set is at most P points\n"
            "  --val SPEC       validation set for --target-drop (default: the last 1000 Fashion-MNIST training\n"
            "                   images for 1x28x28 models, else random:256, where top-1 agreement with FP32 counts)\n"
            "  --calib-cache F  keep the calibration histograms in F and reuse them (any method) on the next run\n");
}

typedef struct {
    const char *model, *out, *method, *calib, *val, *cache, *exclude, *db;
    double percentile, target;
    int per_tensor, symmetric, dynamic, analyze, json, tune;
    long long threads;
    il_bind binds[16];
    int nb;
} qargs;

static int parse(int argc, char **argv, qargs *a) {
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char **str = !strcmp(s, "-o") ? &a->out : !strcmp(s, "--calib") ? &a->calib : !strcmp(s, "--method") ? &a->method
                         : !strcmp(s, "--val") ? &a->val : !strcmp(s, "--calib-cache") ? &a->cache
                         : !strcmp(s, "--exclude") ? &a->exclude : !strcmp(s, "--db") ? &a->db : NULL;
        if (str || !strcmp(s, "--plugin")) { /* plugins are loaded by cli_load_plugins */
            if (!v || !*v) { fprintf(stderr, "inferlab quantize: %s needs a value\n", s); return 2; }
            if (str) *str = v;
            i++;
        } else if (!strcmp(s, "--percentile")) {
            if (!cli_double(s, v, &a->percentile)) return 2;
            if (!(a->percentile > 0 && a->percentile <= 100)) {
                fprintf(stderr, "inferlab quantize: --percentile wants a number in (0, 100], got %s\n", v);
                return 2;
            }
            i++;
        } else if (!strcmp(s, "--target-drop")) {
            if (!cli_double(s, v, &a->target)) return 2;
            if (!(a->target >= 0 && a->target <= 100)) {
                fprintf(stderr, "inferlab quantize: --target-drop wants points in [0, 100], got %s\n", v);
                return 2;
            }
            a->tune = 1, i++;
        } else if (!strcmp(s, "--threads")) {
            if (!cli_int(s, v, &a->threads) || a->threads < 1) return 2;
            i++;
        } else if (!strcmp(s, "--dim")) {
            if (!cli_add_bind(v, a->binds, &a->nb)) return 2;
            i++;
        } else if (!strcmp(s, "--per-tensor")) a->per_tensor = 1;
        else if (!strcmp(s, "--symmetric")) a->symmetric = 1;
        else if (!strcmp(s, "--dynamic")) a->dynamic = 1;
        else if (!strcmp(s, "--analyze")) a->analyze = 1;
        else if (!strcmp(s, "--json")) a->json = 1;
        else if (!strcmp(s, "--help") || !strcmp(s, "-h")) { usage(stdout); return 1; }
        else if (s[0] == '-') { fprintf(stderr, "inferlab quantize: unknown option '%s'\n", s); return 2; }
        else if (a->model) { fprintf(stderr, "inferlab quantize: one model at a time\n"); return 2; }
        else a->model = s;
    }
    if (!a->model || !a->out) {
        fprintf(stderr, "inferlab quantize: %s\n", !a->model ? "no model given" : "no output file (-o OUT.onnx)");
        usage(stderr);
        return 2;
    }
    if (a->dynamic && (a->calib || a->method || a->analyze || a->tune || a->cache || a->symmetric)) {
        fprintf(stderr, "inferlab quantize: --dynamic needs no calibration: --calib, --method, --symmetric, --calib-cache, "
                        "--analyze and --target-drop do not apply\n");
        return 2;
    }
    if (a->db && !a->analyze) {
        fprintf(stderr, "inferlab quantize: --db keeps the per-layer analysis: give --analyze too\n");
        return 2;
    }
    return 0;
}

/* "a,b,c" into names (pointers into buf). */
static int split_names(const char *s, char *buf, size_t n, const char **names, int max) {
    int k = 0;
    snprintf(buf, n, "%s", s ? s : "");
    for (char *t = strtok(buf, ","); t && k < max; t = strtok(NULL, ","))
        if (*t) names[k++] = t;
    return k;
}

/* A model's bytes on disk, its external weights (MODEL.onnx.data) included. */
static long long file_bytes(const char *p) {
    struct stat sb;
    char data[4200];
    if (stat(p, &sb)) return -1;
    long long n = (long long)sb.st_size;
    snprintf(data, sizeof data, "%s.data", p);
    return n + (stat(data, &sb) ? 0 : (long long)sb.st_size);
}

static void print_layers(const il_quant_layer *l, int n, int json) {
    if (json) {
        printf(",\"analysis\":[");
        for (int i = 0; i < n; i++) {
            printf("%s{\"tensor\":", i ? "," : "");
            cli_json_str(stdout, l[i].tensor);
            printf(",\"node\":");
            cli_json_str(stdout, l[i].node);
            printf(",\"op\":");
            cli_json_str(stdout, l[i].op);
            if (isfinite(l[i].sqnr)) printf(",\"sqnr_db\":%.4f", l[i].sqnr);
            else printf(",\"sqnr_db\":null"); /* no error at all */
            printf(",\"cosine\":%.8f}", l[i].cosine);
        }
        printf("]");
        return;
    }
    printf("\nper-layer error, worst first (FP32 vs INT8 activations on the calibration set):\n");
    printf("  %-36s %-18s %10s %12s\n", "tensor", "op", "SQNR dB", "cosine");
    for (int i = 0; i < n; i++)
        printf("  %-36.36s %-18.18s %10.2f %12.6f\n", l[i].tensor, l[i].op, l[i].sqnr, l[i].cosine);
}

static int run_dynamic(const qargs *a, il_graph *g, const char **ex, int n_ex) {
    int done;
    il_status st = il_quant_dynamic(g, ex, n_ex, a->per_tensor, &done);
    if (st) return cli_fail(st, a->model);
    char json[512];
    snprintf(json, sizeof json, "{\"format\":\"dynamic\",\"per_channel\":%s,\"activations\":\"uint8\",\"weights\":\"int8\","
                                "\"quantized_nodes\":%d}", a->per_tensor ? "false" : "true", done);
    il_graph_set_meta(g, "inferlab.quantize", json);
    if ((st = il_onnx_save(g, a->out))) return cli_fail(st, a->out);
    long long b0 = file_bytes(a->model), b1 = file_bytes(a->out);
    if (a->json) {
        printf("{\"model\":");
        cli_json_str(stdout, a->model);
        printf(",\"output\":");
        cli_json_str(stdout, a->out);
        printf(",\"recipe\":%s,\"bytes_in\":%lld,\"bytes_out\":%lld}\n", json, b0, b1);
    } else {
        printf("%s: %d MatMul/Gemm quantized dynamically (int8 weights %s); wrote %s (%lld -> %lld bytes)\n", a->model,
               done, a->per_tensor ? "per tensor" : "per column", a->out, b0, b1);
    }
    return 0;
}

int cmd_quantize(int argc, char **argv) {
    qargs a = {0};
    int rc = parse(argc, argv, &a);
    if (rc) return rc == 1 ? 0 : rc;
    if (!cli_load_plugins(argc, argv)) return 1;
    if (a.method && !il_calib_find(a.method)) {
        int n;
        const il_calibrator *const *all = il_calib_all(&n);
        fprintf(stderr, "inferlab quantize: unknown --method '%s'; there are:", a.method);
        for (int i = 0; i < n; i++) fprintf(stderr, " %s", all[i]->name);
        fprintf(stderr, "\n");
        return 2;
    }
    char exbuf[4096];
    const char *ex[256];
    int n_ex = split_names(a.exclude, exbuf, sizeof exbuf, ex, 256);
    il_graph *g = cli_load(a.model);
    if (!g) return 1;
    if (a.dynamic) {
        rc = run_dynamic(&a, g, ex, n_ex);
        il_graph_free(g);
        return rc;
    }
    il_quant_opts o = {.method = a.method, .calib = a.calib, .percentile = a.percentile, .per_tensor = a.per_tensor,
                       .symmetric = a.symmetric, .cache = a.cache, .binds = a.binds, .n_binds = a.nb,
                       .threads = (int)a.threads, .log = a.json ? stderr : stdout};
    il_quant_ctx *q = NULL;
    il_graph *out = NULL;
    il_quant_stats qs = {0};
    il_quant_tune_result tr = {0};
    il_quant_layer *layers = NULL;
    int n_layers = 0;
    il_calib_data *val = NULL, *ad = NULL;
    il_status st = il_quant_calibrate(g, &o, &q);
    if (!st && a.tune) {
        int from_end = 0;
        const char *vs = a.val ? a.val : il_calib_default_val(g, &from_end);
        if (!(st = il_calib_data_load(il_quant_fp32(q), vs, 1, from_end, a.binds, a.nb, &val)))
            st = il_quant_tune(q, val, a.target, ex, n_ex, (int)a.threads, a.json ? stderr : stdout, &out, &tr);
        qs = tr.stats;
    } else if (!st) {
        st = il_quant_apply(q, ex, n_ex, &out, &qs);
    }
    if (!st && a.analyze) {
        const char *spec = il_quant_calib_spec(q);
        if (!(st = il_calib_data_load(il_quant_fp32(q), spec, 0, 0, a.binds, a.nb, &ad)))
            st = il_quant_analyze(il_quant_fp32(q), out, ad, (int)a.threads, &layers, &n_layers);
        char name[256], sha[65];
        if (!st && a.db) {
            il_model_name(a.model, name, sizeof name);
            if (!(st = il_sha256_file(a.model, sha)))
                st = il_quant_analysis_save(a.db, name, sha, a.method ? a.method : "entropy", layers, n_layers);
        }
    }
    if (!st) st = il_onnx_save(out, a.out);
    if (st) {
        rc = cli_fail(st, a.model);
    } else {
        long long b0 = file_bytes(a.model), b1 = file_bytes(a.out);
        const char *recipe = il_graph_get_meta(out, "inferlab.quantize");
        if (a.json) {
            printf("{\"model\":");
            cli_json_str(stdout, a.model);
            printf(",\"output\":");
            cli_json_str(stdout, a.out);
            printf(",\"recipe\":%s,\"tensors\":%d,\"weights\":%d,\"fp32_compute_nodes\":%d,\"cache_hit\":%s,"
                   "\"bytes_in\":%lld,\"bytes_out\":%lld",
                   recipe, qs.tensors, qs.weights, qs.fp32, il_quant_cache_hit(q) ? "true" : "false", b0, b1);
            if (a.tune) {
                printf(",\"target_drop\":{\"target_points\":%g,\"fp32_top1\":%.6f,\"int8_top1\":%.6f,\"kept\":[", a.target,
                       tr.fp32, tr.int8);
                for (int i = 0; i < tr.n_kept; i++) {
                    printf("%s", i ? "," : "");
                    cli_json_str(stdout, tr.kept[i]);
                }
                printf("]}");
            }
            if (a.analyze) print_layers(layers, n_layers, 1);
            printf("}\n");
        } else {
            printf("%s: %d nodes quantized (%d Relu/Clip folded), %d activations, %d weights int8 (%s), %d compute "
                   "nodes FP32; wrote %s (%lld -> %lld bytes, %.2fx smaller)\n",
                   a.model, qs.quantized, qs.relu_folded, qs.tensors, qs.weights,
                   qs.per_channel ? "per channel" : "per tensor", qs.fp32, a.out, b0, b1, b1 > 0 ? (double)b0 / b1 : 0);
            if (a.tune) {
                printf("target-drop %g points: top-1 %.2f%% against FP32 %.2f%%; kept in FP32:", a.target, 100 * tr.int8,
                       100 * tr.fp32);
                for (int i = 0; i < tr.n_kept; i++) printf(" %s", tr.kept[i]);
                printf("%s\n", tr.n_kept ? "" : " none");
            }
            if (a.analyze) print_layers(layers, n_layers, 0);
        }
    }
    for (int i = 0; i < tr.n_kept; i++) free(tr.kept[i]);
    free(tr.kept);
    free(layers);
    il_calib_data_free(val);
    il_calib_data_free(ad);
    il_graph_free(out);
    il_quant_free(q);
    il_graph_free(g);
    return rc;
}
