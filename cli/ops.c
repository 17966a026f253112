/*
 * ops.c - `inferlab ops [--backend B] [--json] [--plugin P.so]...`: every op with its kernels
 * per backend and the dtypes each takes, as `inferlab passes` lists the passes.
 */
#include "cli.h"
#include "distill/distill.h"

#include <stdio.h>
#include <string.h>

static void dtypes_str(uint32_t m, char *b, size_t n) {
    b[0] = 0;
    if (!m) { snprintf(b, n, "any"); return; }
    for (int t = 0; t < 32; t++)
        if (m & IL_DT(t)) snprintf(b + strlen(b), n - strlen(b), "%s%s", b[0] ? "," : "", il_dtype_name((il_dtype)t));
}

static void json_str(const char *s) {
    putchar('"');
    for (; s && *s; s++) {
        if (*s == '"' || *s == '\\') printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20) printf("\\u%04x", *s);
        else putchar(*s);
    }
    putchar('"');
}

int cmd_ops(int argc, char **argv) {
    const char *backend = NULL;
    int json = 0;
    cli_engine e = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = cli_engine_arg(argc, argv, &i, &e);
        if (r < 0) return 2;
        if (r) continue;
        if (!strcmp(a, "--backend")) {
            if (i + 1 >= argc || (strcmp(argv[i + 1], "cpu") && strcmp(argv[i + 1], "cuda"))) {
                fprintf(stderr, "inferlab ops: --backend cpu|cuda\n");
                return 2;
            }
            backend = argv[++i];
        } else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: inferlab ops [--backend cpu|cuda] [--json] [--plugin P.so]...\n"
                   "  every op with its kernels per backend: name, the dtypes of input 0 it takes, whether it\n"
                   "  prepares state at plan build (packed weights, parsed attributes), its heuristic priority\n");
            return 0;
        } else { fprintf(stderr, "inferlab ops: unknown option '%s'\n", a); return 2; }
    }
    il_train_register_kernels();
    int nops, nk = 0, nall;
    const il_kernel *const *all = il_kernel_all(&nall);
    const il_op *const *ops = il_op_all(&nops);
    if (json) printf("[");
    int shown = 0;
    for (int i = 0; i < nops; i++) {
        const il_op *op = ops[i];
        if (il_op_find(op->domain, op->name) != op) continue; /* replaced by a later registration */
        const il_kernel *ks[32];
        int n = il_kernels_of(op->domain, op->name, backend, 0, ks, 32);
        if (!n && backend) continue;
        nk += n;
        const char *dom = op->domain && *op->domain ? op->domain : "ai.onnx";
        if (json) {
            printf("%s\n {\"domain\": ", shown ? "," : "");
            json_str(dom);
            printf(", \"op\": ");
            json_str(op->name);
            printf(", \"since_version\": %d, \"kernels\": [", op->since_version);
            for (int j = 0; j < n; j++) {
                char dt[256];
                dtypes_str(ks[j]->dtypes, dt, sizeof dt);
                printf("%s{\"backend\": ", j ? ", " : "");
                json_str(ks[j]->backend);
                printf(", \"name\": ");
                json_str(ks[j]->name);
                printf(", \"dtypes\": ");
                json_str(dt);
                printf(", \"prepared\": %s, \"priority\": %d, \"doc\": ", ks[j]->prepare ? "true" : "false",
                       ks[j]->priority);
                json_str(ks[j]->doc ? ks[j]->doc : "");
                printf("}");
            }
            for (int j = 0; j < nall; j++)
                if (all[j]->role == IL_KERNEL_BACKWARD && !strcmp(all[j]->op, op->name) && !*op->domain &&
                    (!backend || !strcmp(backend, all[j]->backend))) {
                    printf("%s{\"backend\": ", n ? ", " : "");
                    json_str(all[j]->backend);
                    printf(", \"name\": ");
                    json_str(all[j]->name);
                    printf(", \"role\": \"backward\"}");
                    n++;
                }
            printf("]}");
        } else {
            if (!shown) printf("%-28s %-12s %s\n", "op", "domain", "kernels (backend:name[dtypes], * = prepares state; backward = training)");
            printf("%-28s %-12s", op->name, dom);
            for (int j = 0; j < n; j++) {
                char dt[256];
                dtypes_str(ks[j]->dtypes, dt, sizeof dt);
                printf(" %s:%s%s%s%s%s", ks[j]->backend, ks[j]->name, ks[j]->prepare ? "*" : "",
                       strcmp(dt, "any") ? "[" : "", strcmp(dt, "any") ? dt : "", strcmp(dt, "any") ? "]" : "");
            }
            for (int j = 0; j < nall; j++)
                if (all[j]->role == IL_KERNEL_BACKWARD && !strcmp(all[j]->op, op->name) && !*op->domain &&
                    (!backend || !strcmp(backend, all[j]->backend)))
                    printf(" %s:%s", all[j]->backend, all[j]->name), nk++;
            printf("\n");
        }
        shown++;
    }
    if (json) printf("\n]\n");
    else printf("\n%d ops, %d kernels%s%s\n", shown, nk, backend ? " on " : "", backend ? backend : "");
    return 0;
}
