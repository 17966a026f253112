/*
 * builtin.h - the built-in passes, one per file in passes/, listed for the registry in
 * manager.c. Internal to passes/.
 */
#ifndef IL_PASSES_BUILTIN_H
#define IL_PASSES_BUILTIN_H

#include "passes.h"

extern const il_pass il_pass_fuse_qdq;         /* fuse_qdq.c */
extern const il_pass il_pass_fuse_dynq;        /* fuse_dynq.c */
extern const il_pass il_pass_fold_constants;   /* fold_constants.c */
extern const il_pass il_pass_eliminate;        /* eliminate.c */
extern const il_pass il_pass_dead_nodes;       /* dead_nodes.c */
extern const il_pass il_pass_cse;              /* cse.c */
extern const il_pass il_pass_merge_chains;     /* merge_chains.c */
extern const il_pass il_pass_matmul_add_gemm;  /* matmul_add_gemm.c */
extern const il_pass il_pass_fold_bn;          /* fold_bn.c */
extern const il_pass il_pass_fuse_elementwise; /* fuse_elementwise.c */
extern const il_pass il_pass_fuse_gelu;        /* fuse_gelu.c */
extern const il_pass il_pass_fuse_layernorm;   /* fuse_layernorm.c */
extern const il_pass il_pass_fuse_attention;   /* fuse_attention.c */
extern const il_pass il_pass_fuse_shuffle;     /* fuse_shuffle.c */
extern const il_pass il_pass_fuse_residual;    /* fuse_residual.c */
extern const il_pass il_pass_fuse_conv_act;    /* fuse_act.c */
extern const il_pass il_pass_fuse_se_scale;    /* fuse_scale.c */
extern const il_pass il_pass_fuse_se_pool;     /* fuse_pool.c */
extern const il_pass il_pass_fuse_conv_pool;   /* fuse_conv_pool.c */
extern const il_pass il_pass_fuse_skip_layernorm; /* fuse_skip_layernorm.c */
extern const il_pass il_pass_lower_fused;      /* lower_fused.c */
extern const il_pass il_pass_insert_casts;     /* insert_casts.c */
extern const il_pass il_pass_int8;             /* quantize/pass.c (lossy) */

/* fuse_qdq.c: node k, an ai.inferlab QConv / QMatMul / QAdd, rewritten as DequantizeLinear, the
 * float op, its activation and QuantizeLinear (for lower-fused); 0 (nothing done) for other ops. */
int il_qdq_lower(il_graph *g, int k);
/* fuse_dynq.c: node k, a com.microsoft DynamicQuantizeMatMul, rewritten as the standard chain it
 * was fused from (DynamicQuantizeLinear, MatMulInteger, Cast, Mul [, Add]); 0 for other ops. */
int il_dynq_lower(il_graph *g, int k);

#endif
