/* binary.c - (being written) */
#include "kernel.h"

const il_op il_ops_binary[] = {
    {0},
};
