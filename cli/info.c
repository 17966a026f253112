/*
 * info.c - `inferlab info MODEL.onnx [--batch N] [--dim NAME=V] [--json]`: what a model is
 * (inputs, outputs, opsets, op histogram, parameters), what each node computes at this batch
 * size (output shape, MACs), and the peak activation memory the planner lays out.
 */
#include "cli.h"
#include "passes/passes.h"

#include <stdlib.h>
#include <string.h>

static void json_shape(FILE *f, const il_tensor *t) {
    fputc('[', f);
    for (int i = 0; i < t->rank; i++) fprintf(f, "%s%lld", i ? "," : "", (long long)t->dims[i]);
    fputc(']', f);
}

/* [{"name":..,"dtype":..,"shape":[..]}, ...] for the values vs[0..n). */
static void json_values(FILE *f, const il_graph *g, const il_shapes *s, const int *vs, int n) {
    fputc('[', f);
    for (int i = 0; i < n; i++) {
        fprintf(f, "%s{\"name\":", i ? "," : "");
        cli_json_str(f, g->values[vs[i]].name);
        fprintf(f, ",\"dtype\":\"%s\",\"shape\":", il_dtype_name(s->info[vs[i]].dtype));
        json_shape(f, &s->info[vs[i]]);
        fputc('}', f);
    }
    fputc(']', f);
}

typedef struct {
    const char *op;
    int count;
    int64_t macs;
} hist;

int cmd_info(int argc, char **argv) {
    const char *path = NULL;
    long long batch = 0;
    int json = 0, nb = 0, nodes = 0, quiet = 0;
    il_bind binds[16];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--batch")) { if (!cli_int(a, i + 1 < argc ? argv[++i] : NULL, &batch) || batch < 1) return 2; }
        else if (!strcmp(a, "--dim")) { if (!cli_add_bind(i + 1 < argc ? argv[++i] : NULL, binds, &nb)) return 2; }
        else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--nodes")) nodes = 1;
        else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) quiet = 1;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: inferlab info MODEL.onnx [--batch N] [--dim NAME=VALUE] [--nodes] [--json] [--quiet]\n"
                   "  a summary: inputs, outputs, op histogram, parameters, compute, activation memory\n"
                   "  --nodes   also every node with its output shape and MACs (--json always lists them)\n"
                   "  --batch N for a model with a symbolic batch dim (a fixed batch is used as it is)\n"
                   "  --quiet   print nothing: only check that the model loads and plans\n");
            return 0;
        } else if (a[0] == '-') { fprintf(stderr, "inferlab info: unknown option '%s'\n", a); return 2; }
        else if (path) { fprintf(stderr, "inferlab info: one model at a time\n"); return 2; }
        else path = a;
    }
    if (!path) { fprintf(stderr, "usage: inferlab info MODEL.onnx [--batch N] [--json]\n"); return 2; }
    il_graph *g = cli_load(path);
    if (!g) return 1;
    int64_t use_batch;
    il_status bst = il_graph_batch(g, batch, &use_batch);
    if (bst) {
        il_graph_free(g);
        return cli_fail(bst, path);
    }
    int fixed = il_graph_fixed_batch(g) > 0;
    batch = use_batch;
    il_plan_opts po = {.batch = batch, .binds = binds, .n_binds = nb, .threads = 1};
    il_plan *p;
    il_status st = il_plan_create(g, &po, &p);
    if (st) { il_graph_free(g); return cli_fail(st, path); }
    const il_shapes *s = il_plan_shapes(p);
    int64_t nparam = 0, pbytes = 0, total_macs = 0;
    for (int v = 0; v < g->n_values; v++)
        if (g->values[v].constant) {
            nparam += il_tensor_numel(g->values[v].constant);
            pbytes += (int64_t)il_tensor_bytes(g->values[v].constant);
        }
    hist *h = calloc((size_t)g->n_nodes + 1, sizeof *h);
    int nh = 0;
    for (int k = 0; k < g->n_nodes; k++) {
        int64_t m = il_node_macs(g, s, k);
        total_macs += m;
        int j = 0;
        while (j < nh && strcmp(h[j].op, g->nodes[k].op_type)) j++;
        if (j == nh) h[nh++].op = g->nodes[k].op_type;
        h[j].count++;
        h[j].macs += m;
    }
    char b[256];
    FILE *f = stdout;
    if (quiet) {
    } else if (json) {
        fprintf(f, "{\"model\":");
        cli_json_str(f, path);
        fprintf(f, ",\"ir_version\":%lld,\"producer\":", (long long)g->ir_version);
        cli_json_str(f, g->producer_name ? g->producer_name : "");
        fprintf(f, ",\"opsets\":{");
        for (int i = 0; i < g->n_opsets; i++) {
            fprintf(f, "%s", i ? "," : "");
            cli_json_str(f, g->opsets[i].domain[0] ? g->opsets[i].domain : "ai.onnx");
            fprintf(f, ":%lld", (long long)g->opsets[i].version);
        }
        fprintf(f, "},\"batch\":%lld,\"batch_fixed\":%s,\"inputs\":", batch, fixed ? "true" : "false");
        json_values(f, g, s, g->inputs, g->n_inputs);
        fprintf(f, ",\"outputs\":");
        json_values(f, g, s, g->outputs, g->n_outputs);
        fprintf(f, ",\"ops\":{");
        for (int j = 0; j < nh; j++) {
            fprintf(f, "%s", j ? "," : "");
            cli_json_str(f, h[j].op);
            fprintf(f, ":%d", h[j].count);
        }
        fprintf(f, "},\"parameters\":%lld,\"parameter_bytes\":%lld,\"macs\":%lld,\"flops\":%lld,"
                   "\"peak_activation_bytes\":%lld,\"total_activation_bytes\":%lld,\"nodes\":[",
                (long long)nparam, (long long)pbytes, (long long)total_macs, 2 * (long long)total_macs,
                (long long)il_plan_peak_bytes(p), (long long)il_plan_total_bytes(p));
        for (int k = 0; k < g->n_nodes; k++) {
            const il_node *n = &g->nodes[k];
            fprintf(f, "%s{\"name\":", k ? "," : "");
            cli_json_str(f, n->name);
            fprintf(f, ",\"op\":");
            cli_json_str(f, n->op_type);
            fprintf(f, ",\"shape\":");
            if (n->n_outputs && n->outputs[0] >= 0) json_shape(f, &s->info[n->outputs[0]]);
            else fprintf(f, "[]");
            fprintf(f, ",\"macs\":%lld}", (long long)il_node_macs(g, s, k));
        }
        fprintf(f, "]}\n");
    } else {
        fprintf(f, "model     %s\n", path);
        fprintf(f, "ir        %lld, producer %s %s\n", (long long)g->ir_version, g->producer_name ? g->producer_name : "?",
                g->producer_version ? g->producer_version : "");
        fprintf(f, "opsets   ");
        for (int i = 0; i < g->n_opsets; i++)
            fprintf(f, " %s=%lld", g->opsets[i].domain[0] ? g->opsets[i].domain : "ai.onnx", (long long)g->opsets[i].version);
        fprintf(f, "\ninputs (batch %lld%s)\n", batch, fixed ? ", fixed by the model" : "");
        for (int i = 0; i < g->n_inputs; i++) {
            int v = g->inputs[i];
            fprintf(f, "  %-24s %s%s\n", g->values[v].name, il_dtype_name(s->info[v].dtype),
                    il_shape_str(s->info[v].rank, s->info[v].dims, b, sizeof b));
        }
        fprintf(f, "outputs\n");
        for (int i = 0; i < g->n_outputs; i++) {
            int v = g->outputs[i];
            fprintf(f, "  %-24s %s%s\n", g->values[v].name, il_dtype_name(s->info[v].dtype),
                    il_shape_str(s->info[v].rank, s->info[v].dims, b, sizeof b));
        }
        fprintf(f, "ops (%d nodes)\n", g->n_nodes);
        for (int j = 0; j < nh; j++) fprintf(f, "  %-24s %5d  %14lld MACs\n", h[j].op, h[j].count, (long long)h[j].macs);
        if (nodes) fprintf(f, "nodes\n");
        for (int k = 0; nodes && k < g->n_nodes; k++) {
            const il_node *n = &g->nodes[k];
            const il_tensor *o = n->n_outputs && n->outputs[0] >= 0 ? &s->info[n->outputs[0]] : NULL;
            fprintf(f, "  %-32s %-20s %-24s %14lld MACs%s\n", n->name, n->op_type,
                    o ? il_shape_str(o->rank, o->dims, b, sizeof b) : "-", (long long)il_node_macs(g, s, k),
                    s->folded[k] ? "  (folded)" : "");
        }
        if (!nodes) fprintf(f, "nodes        %d (`inferlab info --nodes` lists them)\n", g->n_nodes);
        fprintf(f, "parameters   %lld (%.2f MB)\n", (long long)nparam, (double)pbytes / 1e6);
        fprintf(f, "compute      %.3f GMACs, %.3f GFLOPs\n", (double)total_macs / 1e9, 2.0 * (double)total_macs / 1e9);
        fprintf(f, "activations  peak %.3f MB planned (%.3f MB if every value had its own buffer)\n",
                (double)il_plan_peak_bytes(p) / 1e6, (double)il_plan_total_bytes(p) / 1e6);
    }
    free(h);
    il_plan_free(p);
    il_graph_free(g);
    return 0;
}
