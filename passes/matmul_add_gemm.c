/*
 * matmul_add_gemm.c - pass "matmul-add-gemm": Add(MatMul(A, B), C) = Gemm(A, B, C) when A and B
 * are matrices (rank 2) and C broadcasts to the [M, N] result the way Gemm allows (rank <= 2,
 * each dim 1 or equal). One op and one pass over the output instead of two; Gemm is also
 * what fold-bn and fuse-conv-act build on.
 */
#include "pass_util.h"

/* C broadcasts unidirectionally to [m, n] (m may be unknown: -1). */
static int gemm_bias_ok(const pu_shapes *s, int c, int64_t m, int64_t n) {
    int r = pu_rank(s, c);
    if (r < 0 || r > 2) return 0;
    int64_t dn = r >= 1 ? pu_dim(s, c, r - 1) : 1, dm = r == 2 ? pu_dim(s, c, 0) : 1;
    if (dn != 1 && dn != n) return 0;
    return dm == 1 || (m >= 0 && dm == m);
}

static il_status run(il_graph *g, il_pass_stats *st) {
    pu_shapes s;
    pu_shapes_init(&s, g);
    int n_nodes = g->n_nodes;
    for (int k = 0; k < n_nodes; k++) {
        if (!pu_is(g, k, "MatMul") || g->nodes[k].n_inputs != 2) continue;
        int a = g->nodes[k].inputs[0], b = g->nodes[k].inputs[1], y = g->nodes[k].outputs[0];
        il_dtype dt = pu_dtype(&s, a);
        if (pu_rank(&s, a) != 2 || pu_rank(&s, b) != 2 || (dt != IL_F32 && dt != IL_F64)) continue;
        int add = pu_sole_consumer(g, y);
        if (!pu_is(g, add, "Add")) continue;
        int c = pu_other_input(g, add, y);
        int64_t n = pu_dim(&s, b, 1);
        if (c < 0 || c == y || n < 0 || !gemm_bias_ok(&s, c, pu_dim(&s, a, 0), n) || pu_dtype(&s, c) != dt) continue;
        int in[3] = {a, b, c}, out = g->nodes[add].outputs[0];
        pu_add_node(g, "Gemm", "", k, "_gemm", 3, in, 1, &out);
        pu_kill(g, add);
        il_pass_count(st, "MatMul+Add made Gemm", 1);
    }
    pu_shapes_free(&s);
    return IL_OK;
}

const il_pass il_pass_matmul_add_gemm = {"matmul-add-gemm", "MatMul(A, B) + C on matrices -> Gemm(A, B, C)", run};
