/* conv.c - (being written) */
#include "kernel.h"

const il_op il_ops_conv[] = {
    {0},
};
