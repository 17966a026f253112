/*
 * conv_cudnn.c - Conv / FusedConv on cuDNN (placeholder table until the cuDNN kernels land).
 */
#include "../ops/kernel.h"

const il_kernel il_kernels_cudnn[] = {{0}};
