/* norm.c - (being written) */
#include "kernel.h"

const il_op il_ops_norm[] = {
    {0},
};
