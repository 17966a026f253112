/* fused.c - ai.inferlab fused ops that passes/ rewrite graphs into (being written) */
#include "kernel.h"

const il_op il_ops_fused[] = {
    {0},
};
