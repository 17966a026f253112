/* linalg.c - (being written) */
#include "kernel.h"

const il_op il_ops_linalg[] = {
    {0},
};
